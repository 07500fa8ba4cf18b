//! The PostgreSQL storage (issue 14), for installations that run several stateless
//! servers on one database: connecting, the pool, the helpers every query shares.
//! [`PgStorage`] implements [`SyncStorage`] in [`sync`] (accounts, enrolment, devices,
//! records, uploads) and [`log`] (storing pushes, paging pulls), the rest of [`Storage`]
//! in [`storage`], over [`listing`] (the record index, links), [`audit`] (the trail),
//! [`accounts`] (passwords, sessions, wipe orders) and [`erasure`]; the attempt
//! counters all servers share in [`attempts`].
//! The storage conformance suite runs every case on both backends. The server runs on
//! it when `database` is set (`startup::open_backend`).
//!
//! Blocking `postgres` client with an r2d2 pool: the storage trait is synchronous and
//! handlers call it on actix's blocking pool, like SQLite. Each call takes a pooled
//! connection for its own transaction.
//!
//! Log order is commit order: every write locks the one row of `log_head` first and
//! takes its positions from it ([`log`]); a pull serves entries up to the head its
//! snapshot saw. See `docs/ARCHITECTURE.md`, "PostgreSQL".

mod accounts;
mod attempts;
mod audit;
mod erasure;
mod listing;
mod log;
pub mod schema;
mod storage;
mod sync;
mod tls;

use ::postgres::error::SqlState;
use chrono::{DateTime, Utc};
use intake_shared::RecordId;
use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::*;
// The same cursors as SQLite's (the high bit marks the whole-documents phase), so that
// an installation moved between backends keeps its devices' cursors.
use super::sqlite::DOCS_PHASE;

type R2d2Pool = r2d2_postgres::r2d2::Pool<PostgresConnectionManager<MakeRustlsConnect>>;
type Conn = r2d2_postgres::r2d2::PooledConnection<PostgresConnectionManager<MakeRustlsConnect>>;

/// The pool of connections (cloned handles share it), which closes its connections
/// on a thread of its own when the last handle is dropped. The `postgres` client
/// closes a connection by blocking on its own small runtime, and that panics on a
/// thread that drives an async runtime: a stopping server drops its state on actix's,
/// so it aborted instead of exiting (`cli_init`
/// `every_command_runs_on_postgres_but_backup_and_restore` stops one with SIGTERM).
#[derive(Clone)]
pub(super) struct Pool(Option<R2d2Pool>);

impl Pool {
    fn get(&self) -> std::result::Result<Conn, r2d2_postgres::r2d2::Error> {
        self.0.as_ref().expect("the pool lives until dropped").get()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            // Most drops are of one handle among several and close nothing; only the
            // last closes connections, and a thread per drop is cheap next to that.
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

/// How many connections one server process keeps at most: actix's blocking pool runs
/// more threads than that, and a call waits for a free connection rather than opening
/// one per thread (PostgreSQL's own limit is shared by every server).
const POOL_SIZE: u32 = 16;

pub struct PgStorage {
    pool: Pool,
    store_id: String,
}

impl std::fmt::Debug for PgStorage {
    // Never the URL: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStorage")
    }
}

impl From<::postgres::Error> for StorageError {
    fn from(e: ::postgres::Error) -> Self {
        // A database error's own message and code (its `Display` says only "db
        // error"); never its detail, which can quote the row's values.
        let text = match e.as_db_error() {
            Some(db) => format!("PostgreSQL {}: {}", db.code().code(), db.message()),
            // The causes too: "error performing TLS handshake" alone does not say
            // that the certificate's issuer is unknown.
            None => {
                let mut text = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    text.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                text
            }
        };
        if e.code() == Some(&SqlState::DISK_FULL) {
            StorageError::Full(text)
        } else {
            StorageError::Backend(text)
        }
    }
}

fn pool_error(e: r2d2_postgres::r2d2::Error) -> StorageError {
    StorageError::Backend(format!("PostgreSQL connection: {e}"))
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

fn key(id: RecordId) -> Vec<u8> {
    id.as_uuid().as_bytes().to_vec()
}

fn rid(bytes: &[u8]) -> Result<RecordId> {
    uuid::Uuid::from_slice(bytes)
        .map(RecordId::from_uuid)
        .map_err(|e| StorageError::Backend(format!("a stored record id: {e}")))
}

/// The SQL condition of a scope over `records r` (or a table with its scope columns),
/// with its parameter as `$n`.
fn scope_sql(scope: &Scope, n: usize) -> (String, Option<String>) {
    match scope {
        Scope::Own(user) => (
            format!("(r.owner = ${n} OR r.assigned_to = ${n})"),
            Some(user.clone()),
        ),
        Scope::Team(team) => (format!("r.team = ${n}"), Some(team.clone())),
        // The parameter appears in every variant so every query binds the same list.
        Scope::Nothing => (format!("(${n}::TEXT IS NULL AND FALSE)"), None),
    }
}

const USER_COLUMNS: &str = "u.id, u.name, u.role, u.team, u.disabled";

/// A user from [`USER_COLUMNS`] starting at column `at`.
fn user_row(r: &::postgres::Row, at: usize) -> User {
    let role: String = r.get(at + 2);
    User {
        id: r.get(at),
        name: r.get(at + 1),
        role: Role::parse(&role).unwrap_or(Role::Paralegal),
        team: r.get(at + 3),
        disabled: r.get(at + 4),
    }
}

const DEVICE_COLUMNS: &str =
    "d.id, u.name, d.actor, d.label, d.enrolled_at, d.revoked_at IS NOT NULL,
     d.revoked_at, d.wipe_ordered_at, d.wipe_sent_at, d.wiped_at";

fn device_row(r: &::postgres::Row, at: usize) -> Device {
    Device {
        id: r.get(at),
        user: r.get(at + 1),
        actor: hex::encode(r.get::<_, Vec<u8>>(at + 2)),
        label: r.get(at + 3),
        enrolled_at: from_ts(r.get(at + 4)),
        revoked: r.get(at + 5),
        revoked_at: r.get::<_, Option<i64>>(at + 6).map(from_ts),
        wipe: WipeState {
            ordered_at: r.get::<_, Option<i64>>(at + 7).map(from_ts),
            sent_at: r.get::<_, Option<i64>>(at + 8).map(from_ts),
            wiped_at: r.get::<_, Option<i64>>(at + 9).map(from_ts),
        },
    }
}

/// The `application_name` of every connection a server opens.
pub const APPLICATION_NAME: &str = "intake-server";

/// The parsed URL and its TLS connector, `sslmode` settled by [`tls::connector`].
fn settle(
    url: &str,
    ca: Option<&std::path::Path>,
) -> Result<(::postgres::Config, MakeRustlsConnect)> {
    // The parse error names what is wrong, never the URL (it may carry a password).
    let mut config: ::postgres::Config = url
        .parse()
        .map_err(|e| StorageError::Backend(format!("the PostgreSQL URL: {e}")))?;
    let tls = tls::connector(&mut config, ca)?;
    // Names the servers' connections in `pg_stat_activity`: `after-restore` refuses to
    // run while a server uses the database.
    config.application_name(APPLICATION_NAME);
    Ok((config, tls))
}

impl PgStorage {
    /// Connects to the database at `url` (`postgres://user:password@host/db`), migrates
    /// it to this server's schema and reads its store id. An empty database is set up
    /// from nothing; one written by a newer server is refused. A database on another
    /// machine is reached over TLS checked against the system's CAs ([`tls`]).
    pub fn connect(url: &str) -> Result<PgStorage> {
        PgStorage::connect_with_ca(url, None)
    }

    /// Like [`PgStorage::connect`], checking the database's TLS certificate against the
    /// CA certificates in the PEM file `ca` (the setting `database_ca`) when given.
    pub fn connect_with_ca(url: &str, ca: Option<&std::path::Path>) -> Result<PgStorage> {
        let (config, tls) = settle(url, ca)?;
        // The first connection directly, not through the pool: r2d2 retries a failing
        // connection until its timeout, and a wrong certificate or password should be
        // told at once.
        let mut client = config.connect(tls.clone())?;
        schema::migrate(&mut client)?;
        let store_id = client
            .query_one("SELECT store_id FROM store_identity", &[])?
            .get(0);
        drop(client);
        let manager = PostgresConnectionManager::new(config, tls);
        let pool = R2d2Pool::builder()
            .max_size(POOL_SIZE)
            // One connection kept open even when idle, so that a running server shows
            // in `pg_stat_activity` (`after-restore` refuses to run under one); the
            // first connection above already proved the database reachable, and the
            // pool opens it in the background.
            .min_idle(Some(1))
            .build_unchecked(manager);
        let pool = Pool(Some(pool));
        Ok(PgStorage { pool, store_id })
    }

    /// One connection of its own to the database at `url`, by the same TLS rules as
    /// the pool's ([`tls`]): `migrate-data` copies an installation through it.
    pub fn client(url: &str, ca: Option<&std::path::Path>) -> Result<::postgres::Client> {
        let (config, tls) = settle(url, ca)?;
        Ok(config.connect(tls)?)
    }

    /// Gives the database a new random store id, as SQLite's `renew_store_id` does
    /// after a restore: devices that see it push again what it lacks. Servers read
    /// the id when they connect, so it takes effect for servers started after.
    pub fn renew_store_id(&self) -> Result<String> {
        let mut conn = self.conn()?;
        let row = conn.query_one(
            "UPDATE store_identity SET store_id = replace(gen_random_uuid()::text, '-', '')
             RETURNING store_id",
            &[],
        )?;
        Ok(row.get(0))
    }

    fn conn(&self) -> Result<Conn> {
        self.pool.get().map_err(pool_error)
    }
}
