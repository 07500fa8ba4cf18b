//! Moving an installation from its SQLite store to PostgreSQL (issue 14,
//! `intake-server migrate-data --to postgres://…`): every table copied row by row into
//! an empty PostgreSQL database (the same tables and columns, `postgres_schema.rs`
//! checks that), in one transaction, then checked against the source: every record's
//! heads, and the log (count, every entry's position and hash in order, the log head).
//! The store id goes along, and log positions are kept as they are, so devices keep
//! syncing with the cursors they hold: nothing is sent again and nothing is missed.
//!
//! The source must not change meanwhile: the data directory's serve lock is held for
//! the whole run, so `serve` cannot start (and a running one makes this refuse).

use std::collections::BTreeSet;

use postgres::types::ToSql;
use rusqlite::types::Value;

use crate::config::Settings;
use crate::startup::{DB_FILE, ServeLock};
use crate::storage::SyncStorage;
use crate::storage::key::DbKey;
use crate::storage::postgres::PgStorage;
use crate::storage::sqlite::{SqliteStorage, cipher};

/// The tables copied, in an order that puts every row after those it refers to.
pub const TABLES: &[&str] = &[
    "users",
    "enrolment_codes",
    "devices",
    "records",
    "log",
    "access_revoked",
    "late_grants",
    "uploads",
    "upload_pieces",
    "record_index",
    "passwords",
    "password_codes",
    "web_sessions",
    "audit",
    "audit_records",
    "record_links",
    "erasures",
    "erasure_users",
    "used_forms",
];

/// Tables not copied as rows: the store id is set on PostgreSQL's own row; the log head
/// is computed from the source; versions and attempt counters belong to each database.
pub const NOT_COPIED: &[&str] = &[
    "store_identity",
    "log_head",
    "schema_version",
    "attempt_counts",
];

/// What a migration copied and checked.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// Rows copied per table, in copy order.
    pub rows: Vec<(String, u64)>,
    /// Records whose heads were compared (all of them).
    pub records: usize,
    /// Log entries compared (all of them).
    pub log_entries: usize,
    /// The log head both databases hold.
    pub log_head: i64,
}

/// Copies the SQLite store of `settings` (opened with `key`) into the empty PostgreSQL
/// database at `url` and checks the copy. Refused, with nothing changed, when a server
/// runs on the data directory or the target already holds a store. Blocking.
pub fn migrate(settings: &Settings, key: &DbKey, url: &str) -> anyhow::Result<Report> {
    let path = settings.data_dir.join(DB_FILE);
    anyhow::ensure!(
        path.exists(),
        "{} holds no store ({} is missing)",
        settings.data_dir.display(),
        path.display()
    );
    let _lock = ServeLock::acquire(&settings.data_dir)?;
    // Opening migrates an older SQLite store to the current schema first, so that its
    // tables are PostgreSQL's.
    let source = SqliteStorage::open(&path, key)?;
    let ca = settings.database_ca.as_deref();
    let target = PgStorage::connect_with_ca(url, ca)?;
    anyhow::ensure!(
        target.users()?.is_empty(),
        "the PostgreSQL database already holds a store (it has users): nothing was changed"
    );
    let lite = cipher::connect(&path, key, true)?;
    let mut pg = PgStorage::client(url, ca)?;
    check_tables(&lite, &mut pg)?;

    let mut tx = pg.transaction()?;
    let mut rows = Vec::new();
    for table in TABLES {
        rows.push((table.to_string(), copy_table(&lite, &mut tx, table)?));
    }
    let store_id: String =
        lite.query_row("SELECT store_id FROM store_identity", [], |r| r.get(0))?;
    tx.execute("UPDATE store_identity SET store_id = $1", &[&store_id])?;
    let head = sqlite_log_head(&lite)?;
    tx.execute("UPDATE log_head SET seq = $1", &[&head])?;
    // Identity columns go on after the copied ids.
    for (table, column) in [
        ("users", "id"),
        ("devices", "id"),
        ("web_sessions", "id"),
        ("audit", "seq"),
    ] {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                               COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
            ),
            &[],
        )?;
    }
    tx.commit()?;

    // The check, through a new connection that reads what was committed.
    let target = PgStorage::connect_with_ca(url, ca)?;
    anyhow::ensure!(target.store_id() == store_id, "the store id was not kept");
    let records = check_heads(&lite, &mut pg, &source, &target)?;
    let log_entries = check_log(&lite, &mut pg, head)?;
    Ok(Report {
        rows,
        records,
        log_entries,
        log_head: head,
    })
}

/// Both databases must have the same tables (beside [`NOT_COPIED`]), with the same
/// columns, and [`TABLES`] must name every one: a table added to one schema and not
/// here would otherwise be left behind.
fn check_tables(lite: &rusqlite::Connection, pg: &mut postgres::Client) -> anyhow::Result<()> {
    let mut stmt = lite.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let lite_tables: BTreeSet<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let pg_tables: BTreeSet<String> = pg
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let listed: BTreeSet<String> = TABLES.iter().map(|t| t.to_string()).collect();
    let skip: BTreeSet<String> = NOT_COPIED.iter().map(|t| t.to_string()).collect();
    let lite_copied: BTreeSet<String> = lite_tables.difference(&skip).cloned().collect();
    let pg_copied: BTreeSet<String> = pg_tables.difference(&skip).cloned().collect();
    anyhow::ensure!(
        lite_copied == listed && pg_copied == listed,
        "the two schemas do not match what migrate-data copies (SQLite {lite_copied:?}, \
         PostgreSQL {pg_copied:?}): nothing was changed"
    );
    for table in TABLES {
        anyhow::ensure!(
            lite_columns(lite, table)?
                == pg_columns(pg, table)?.into_iter().map(|(c, _)| c).collect(),
            "table {table} has other columns on SQLite than on PostgreSQL: nothing was changed"
        );
    }
    Ok(())
}

fn lite_columns(lite: &rusqlite::Connection, table: &str) -> anyhow::Result<BTreeSet<String>> {
    let mut stmt = lite.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
    Ok(stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Columns and their PostgreSQL types, in column order.
fn pg_columns(
    pg: &mut impl postgres::GenericClient,
    table: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    Ok(pg
        .query(
            "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
             ORDER BY ordinal_position",
            &[&table],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Copies one table's rows, each value converted to its PostgreSQL column's type.
fn copy_table(
    lite: &rusqlite::Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &str,
) -> anyhow::Result<u64> {
    let columns = pg_columns(tx, table)?;
    let names: Vec<String> = columns.iter().map(|(c, _)| format!("\"{c}\"")).collect();
    let list = names.join(", ");
    let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    // `audit.seq` is generated always: the copy keeps the source's positions.
    let insert = tx.prepare(&format!(
        "INSERT INTO {table} ({list}) OVERRIDING SYSTEM VALUE VALUES ({})",
        params.join(", ")
    ))?;
    let mut stmt = lite.prepare(&format!("SELECT {list} FROM {table}"))?;
    let mut rows = stmt.query([])?;
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(columns.len());
        for (i, (column, ty)) in columns.iter().enumerate() {
            let value: Value = row.get(i)?;
            values.push(
                convert(value, ty)
                    .map_err(|e| anyhow::anyhow!("{table}.{column}: {e}: nothing was changed"))?,
            );
        }
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        tx.execute(&insert, &refs)?;
        copied += 1;
    }
    Ok(copied)
}

/// A SQLite value as the PostgreSQL type `ty` takes it. (Never the value in an error:
/// it may be a record's content.)
fn convert(value: Value, ty: &str) -> Result<Box<dyn ToSql + Sync>, String> {
    Ok(match (value, ty) {
        (Value::Null, "bigint") => Box::new(None::<i64>),
        (Value::Null, "integer") => Box::new(None::<i32>),
        (Value::Null, "boolean") => Box::new(None::<bool>),
        (Value::Null, "bytea") => Box::new(None::<Vec<u8>>),
        (Value::Null, "text") => Box::new(None::<String>),
        (Value::Integer(n), "bigint") => Box::new(n),
        (Value::Integer(n), "integer") => {
            Box::new(i32::try_from(n).map_err(|_| "an integer out of range".to_string())?)
        }
        (Value::Integer(n), "boolean") => Box::new(n != 0),
        (Value::Blob(b), "bytea") => Box::new(b),
        (Value::Text(t), "text") => Box::new(t),
        (_, ty) => return Err(format!("a value SQLite holds that {ty} cannot take")),
    })
}

/// SQLite's log head: the later of the log and the erasures (which take positions too).
fn sqlite_log_head(lite: &rusqlite::Connection) -> anyhow::Result<i64> {
    Ok(lite.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(seq) FROM log), 0),
                    COALESCE((SELECT MAX(seq) FROM erasures), 0))",
        [],
        |r| r.get(0),
    )?)
}

/// Every record's heads, read through each backend's own storage, are the same, and
/// PostgreSQL holds no other record.
fn check_heads(
    lite: &rusqlite::Connection,
    pg: &mut postgres::Client,
    source: &SqliteStorage,
    target: &PgStorage,
) -> anyhow::Result<usize> {
    let mut stmt = lite.prepare("SELECT id FROM records")?;
    let ids: Vec<Vec<u8>> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for bytes in &ids {
        let id = uuid::Uuid::from_slice(bytes)
            .map(intake_shared::RecordId::from_uuid)
            .map_err(|e| anyhow::anyhow!("a stored record id: {e}"))?;
        let from = source.record(id)?.map(|r| r.heads);
        let to = target.record(id)?.map(|r| r.heads);
        anyhow::ensure!(
            from.is_some() && from == to,
            "record {id}: its heads on PostgreSQL are not those on SQLite"
        );
    }
    let count: i64 = pg.query_one("SELECT COUNT(*) FROM records", &[])?.get(0);
    anyhow::ensure!(
        count as usize == ids.len(),
        "PostgreSQL holds {count} records, SQLite {}",
        ids.len()
    );
    Ok(ids.len())
}

/// The log: the same entries (position and hash) in the same order, and the same head.
fn check_log(
    lite: &rusqlite::Connection,
    pg: &mut postgres::Client,
    head: i64,
) -> anyhow::Result<usize> {
    let mut stmt = lite.prepare("SELECT seq, hash FROM log ORDER BY seq")?;
    let from: Vec<(i64, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let to: Vec<(i64, Vec<u8>)> = pg
        .query("SELECT seq, hash FROM log ORDER BY seq", &[])?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    anyhow::ensure!(
        from.len() == to.len(),
        "the log has {} entries on PostgreSQL, {} on SQLite",
        to.len(),
        from.len()
    );
    if let Some(at) = from.iter().zip(&to).position(|(a, b)| a != b) {
        anyhow::bail!("the log differs at entry {at} (position {})", from[at].0);
    }
    let pg_head: i64 = pg.query_one("SELECT seq FROM log_head", &[])?.get(0);
    anyhow::ensure!(
        pg_head == head,
        "the log head is {pg_head} on PostgreSQL, {head} on SQLite"
    );
    Ok(from.len())
}
