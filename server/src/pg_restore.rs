//! After `pg_restore` (issue 14): what `intake-server restore` does for SQLite once the
//! backup is in place, for a PostgreSQL database restored with PostgreSQL's own tools.
//! `intake-server after-restore` runs it on the restored database before any server
//! serves it:
//!
//! - a new store id, so that every device pushes again what the backup lacks (a
//!   restored database still carries the id devices last spoke to, and they would
//!   believe it holds all they sent: what they pushed after the backup would be lost);
//! - with the replaced database (`--replaced`), the erasures, revocations (with their
//!   wipe orders) and disabled users it decided since the backup, done again
//!   ([`crate::backup::after_restore`]), so a restore never brings back an erased
//!   client's record or a lost phone.
//!
//! Refused while a server is connected to the database: servers read the store id when
//! they connect, and one still serving the old id would undo the first point.

use std::path::Path;

use crate::backup::{Carried, Reapplied, after_restore};
use crate::storage::postgres::{APPLICATION_NAME, PgStorage};

/// What [`after_pg_restore`] did.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// The restored database's new store id.
    pub store_id: String,
    /// What was done again; `None` without a replaced database.
    pub reapplied: Option<Reapplied>,
}

/// Prepares the restored database at `url` for serving; `replaced`: the database it
/// replaces, to read what was decided since the backup. `ca`: `database_ca`.
pub fn after_pg_restore(
    url: &str,
    replaced: Option<&str>,
    ca: Option<&Path>,
) -> anyhow::Result<Report> {
    let mut check = PgStorage::client(url, ca)?;
    let servers = server_connections(&mut check)?;
    anyhow::ensure!(
        servers == 0,
        "{servers} connection(s) of a running intake-server use this database: stop every \
         server first (nothing was changed)"
    );
    drop(check);
    let carried = match replaced {
        Some(old) => Some(Carried::read(&PgStorage::connect_with_ca(old, ca)?)?),
        None => None,
    };
    let restored = PgStorage::connect_with_ca(url, ca)?;
    let reapplied = match &carried {
        Some(c) => Some(after_restore(&restored, c)?),
        None => None,
    };
    // Last: if the steps above fail, running the command again still renews it.
    let store_id = restored.renew_store_id()?;
    Ok(Report {
        store_id,
        reapplied,
    })
}

/// How many connections of running servers (`application_name` [`APPLICATION_NAME`])
/// other than `client`'s own use `client`'s database.
pub fn server_connections(client: &mut postgres::Client) -> anyhow::Result<i64> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = $1
               AND pid <> pg_backend_pid()",
            &[&APPLICATION_NAME],
        )?
        .get(0))
}
