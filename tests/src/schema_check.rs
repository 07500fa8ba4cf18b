//! Checks the client's and the server's migration tests share (issue 13, migrations
//! pinned): every shipped step pinned by its hash, a database's schema as SQLite keeps
//! it, its `user_version`, and every row a migration must keep. Those test files
//! include this file by path (`#[path]`): neither crate may depend on the other, nor
//! on this support crate, which depends on both.

use std::collections::BTreeSet;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

/// What is wrong with `steps` against their `pinned` SHA-256s: an edited step, an
/// unpinned one, a removed one. `what` names the steps ("store", "server"), `file` the
/// test file holding the pins.
pub fn pin_problems(what: &str, file: &str, steps: &[&str], pinned: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let hash = hex::encode(Sha256::digest(step.as_bytes()));
        match pinned.get(i) {
            Some(&p) if p == hash => {}
            Some(_) => problems.push(format!(
                "{what} migration step {} was edited: never edit a shipped migration: append a new one (its pinned hash no longer matches; got {hash})",
                i + 1
            )),
            None => problems.push(format!(
                "{what} migration step {} is not pinned: add \"{hash}\" to PINNED in {file} when it ships",
                i + 1
            )),
        }
    }
    if pinned.len() > steps.len() {
        problems.push(format!(
            "{} steps are pinned but only {} exist: never remove a shipped migration",
            pinned.len(),
            steps.len()
        ));
    }
    problems
}

pub fn user_version(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// Tables, indexes and triggers as SQLite keeps them (`ALTER TABLE` rewrites the
/// stored `CREATE TABLE`, so equal text means equal columns).
pub fn shape(conn: &Connection) -> BTreeSet<(String, String, String)> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Rows by table.
pub type Rows = Vec<(String, Vec<Vec<rusqlite::types::Value>>)>;

/// Every row of every table of `like` (the older database), read from `conn` in the
/// columns `like` has, by table: what a migration must keep.
pub fn rows(conn: &Connection, like: &Connection) -> Rows {
    let tables: Vec<String> = like
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let columns: Vec<String> = like
                .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let list = columns.join(", ");
            let mut stmt = conn
                .prepare(&format!("SELECT {list} FROM {t} ORDER BY {list}"))
                .unwrap();
            let n = columns.len();
            let rows = stmt
                .query_map([], |r| (0..n).map(|i| r.get(i)).collect())
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            (t, rows)
        })
        .collect()
}
