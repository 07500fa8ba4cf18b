//! The PostgreSQL database's migrations (issue 14), on a throwaway cluster
//! (`tests/src/postgres.rs`): every shipped step pinned by its SHA-256, as SQLite's are
//! in `migrations.rs`; an empty database is made into the current schema, with the
//! same tables and columns as SQLite's (so that moving an installation is a copy);
//! opening it again changes nothing; a database of every earlier version is migrated
//! with its rows; servers starting together on an empty database
//! migrate it once; a database from a newer server is refused and left alone; the
//! audit trail refuses to be changed, whoever asks.

use std::collections::{BTreeMap, BTreeSet};

use intake_server::storage::SyncStorage;
use intake_server::storage::key::DbKey;
use intake_server::storage::postgres::{PgStorage, schema};
use intake_server::storage::sqlite::{SqliteStorage, cipher};
use intake_server::storage::{AuditEntry, AuditFilter, Role, Storage, StorageError};
use intake_shared::RecordId;
use postgres::{Client, NoTls};

// Each file that includes the cluster uses a part of it.
#[allow(dead_code)]
#[path = "../../tests/src/postgres.rs"]
mod pg_cluster;
// Only `pin_problems` of the shared migration checks applies here (the rest reads
// SQLite databases).
#[allow(dead_code)]
#[path = "../../tests/src/schema_check.rs"]
mod schema_check;

/// The SHA-256 of every shipped PostgreSQL step, in order. Never change an entry.
const PINNED: &[&str] = &[
    // 1
    "dd7cf747efc37db1d17b79981cd02e644c4683649d2ab3b76a67db8555d4dda1",
    // 2
    "25169a6dfc1674be0c7f05735e652a902666a363d352d1b1de146156fd88442b",
    // 3
    "b8578f1b48e518b39a1a7591c4e518fc8a5fc2a251ef48013edb3db973a4c40c",
];

#[test]
fn every_shipped_step_is_pinned_by_its_hash() {
    let problems = schema_check::pin_problems(
        "PostgreSQL",
        "server/tests/postgres_schema.rs",
        schema::steps(),
        PINNED,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every table and its columns.
type Columns = BTreeMap<String, BTreeSet<String>>;

fn pg_columns(client: &mut Client) -> Columns {
    let mut out = Columns::new();
    for r in client
        .query(
            "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns
             WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
    {
        out.entry(r.get(0)).or_default().insert(r.get(1));
    }
    out
}

fn sqlite_columns() -> Columns {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intake-server.db");
    let key = DbKey::from_bytes([0x42; 32]);
    drop(SqliteStorage::create(&path, &key).unwrap());
    let conn = cipher::connect(&path, &key, true).unwrap();
    let mut tables = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap();
    let tables: Vec<String> = tables
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Columns::new();
    for table in tables {
        let mut info = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap();
        let columns = info
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.insert(table, columns);
    }
    out
}

#[test]
fn an_empty_database_gets_the_current_schema_and_opening_it_again_changes_nothing() {
    let Some(db) = pg_cluster::database("an_empty_database_gets_the_current_schema") else {
        return;
    };
    let mut client = Client::connect(&db.url, NoTls).unwrap();
    assert_eq!(schema::version(&mut client).unwrap(), 0, "empty");
    let store = PgStorage::connect(&db.url).unwrap();
    assert_eq!(schema::version(&mut client).unwrap(), schema::CURRENT);

    // SQLite's tables with SQLite's columns, and what several servers need besides.
    let mut pg = pg_columns(&mut client);
    let mut sqlite = sqlite_columns();
    for (table, column) in [("store_identity", "one"), ("schema_version", "one")] {
        pg.get_mut(table).unwrap().remove(column);
    }
    sqlite.get_mut("store_identity").unwrap().remove("only");
    assert_eq!(
        pg.remove("log_head")
            .map(|c| c.into_iter().collect::<Vec<_>>()),
        Some(vec!["one".to_string(), "seq".to_string()])
    );
    // The attempt counters several servers share (SQLite's server counts in memory).
    assert_eq!(
        pg.remove("attempt_counts")
            .map(|c| c.into_iter().collect::<Vec<_>>()),
        Some(vec![
            "count".to_string(),
            "key".to_string(),
            "window_end".to_string()
        ])
    );
    assert_eq!(
        pg.remove("schema_version")
            .map(|c| c.into_iter().collect::<Vec<_>>()),
        Some(vec!["version".to_string()])
    );
    assert_eq!(pg, sqlite, "the same tables and columns as SQLite's schema");

    store
        .create_user("drita", Role::Paralegal, Some("prizren"))
        .unwrap();
    let id = store.store_id().to_string();
    assert_eq!(id.len(), 32, "128 random bits, hex");
    drop(store);
    let again = PgStorage::connect(&db.url).unwrap();
    assert_eq!(again.store_id(), id, "the same store");
    assert_eq!(schema::version(&mut client).unwrap(), schema::CURRENT);
    assert!(again.user("drita").unwrap().is_some(), "rows kept");
}

/// A database left by each earlier server (its steps only, with a user and a record's
/// log entry written then) opens in today's server: every later step runs, the schema is
/// what an empty database gets, and the rows written before are there.
#[test]
fn a_database_of_every_earlier_version_is_migrated_with_its_rows() {
    let Some(fresh) = pg_cluster::database("earlier_versions_fresh") else {
        return;
    };
    drop(PgStorage::connect(&fresh.url).unwrap());
    let current = pg_columns(&mut Client::connect(&fresh.url, NoTls).unwrap());
    for version in 1..schema::CURRENT {
        let Some(db) = pg_cluster::database(&format!("earlier_version_{version}")) else {
            return;
        };
        let mut client = Client::connect(&db.url, NoTls).unwrap();
        schema::migrate_to(&mut client, version).unwrap();
        assert_eq!(schema::version(&mut client).unwrap(), version);
        client
            .execute(
                "INSERT INTO users (name, role, team, created_at) VALUES ('drita', 'paralegal', 'prizren', 1)",
                &[],
            )
            .unwrap();
        client
            .execute(
                "INSERT INTO log (seq, record_id, hash, device_id, bytes, received_at)
                 VALUES (1, $1, $2, 1, $3, 1795000000000)",
                &[&vec![7u8; 16], &vec![9u8; 32], &vec![1u8, 2, 3]],
            )
            .unwrap();
        let store = PgStorage::connect(&db.url).unwrap();
        assert_eq!(
            schema::version(&mut client).unwrap(),
            schema::CURRENT,
            "from {version}"
        );
        assert_eq!(pg_columns(&mut client), current, "from {version}");
        let drita = store
            .user("drita")
            .unwrap()
            .expect("the user written before");
        assert_eq!(drita.team.as_deref(), Some("prizren"));
        let receipts = store.receipts(RecordId::from_wire(&[7; 16])).unwrap();
        assert_eq!(
            receipts.len(),
            1,
            "the log entry written before, from {version}"
        );
    }
}

#[test]
fn servers_starting_together_on_an_empty_database_migrate_it_once() {
    let Some(db) = pg_cluster::database("servers_starting_together") else {
        return;
    };
    let barrier = std::sync::Barrier::new(6);
    let ids: Vec<String> = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    PgStorage::connect(&db.url).unwrap().store_id().to_string()
                })
            })
            .collect();
        starting.into_iter().map(|s| s.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|id| *id == ids[0]), "one store: {ids:?}");
    let mut client = Client::connect(&db.url, NoTls).unwrap();
    assert_eq!(schema::version(&mut client).unwrap(), schema::CURRENT);
    let identities: i64 = client
        .query_one("SELECT count(*) FROM store_identity", &[])
        .unwrap()
        .get(0);
    assert_eq!(identities, 1);
}

#[test]
fn a_database_from_a_newer_server_is_refused_and_left_alone() {
    let Some(db) = pg_cluster::database("a_database_from_a_newer_server") else {
        return;
    };
    drop(PgStorage::connect(&db.url).unwrap());
    let mut client = Client::connect(&db.url, NoTls).unwrap();
    let newer = schema::CURRENT + 1;
    client
        .execute("UPDATE schema_version SET version = $1", &[&newer])
        .unwrap();
    match PgStorage::connect(&db.url) {
        Err(StorageError::Backend(e)) => {
            assert!(e.contains("newer intake-server"), "{e}")
        }
        Err(e) => panic!("refused for the wrong reason: {e}"),
        Ok(_) => panic!("a newer server's database was opened"),
    }
    assert_eq!(schema::version(&mut client).unwrap(), newer, "left alone");
}

#[test]
fn the_audit_trail_refuses_update_delete_and_truncate() {
    let Some(db) = pg_cluster::database("the_audit_trail_refuses_update_delete_and_truncate")
    else {
        return;
    };
    let store = PgStorage::connect(&db.url).unwrap();
    let record = RecordId::new_v7(1_790_000_000_000, [1; 10]);
    store
        .audit(&AuditEntry {
            at: chrono::Utc::now(),
            user: Some("merita".into()),
            device: None,
            session: Some(1),
            action: "view_record".into(),
            scope: String::new(),
            records: vec![record],
            peer: None,
        })
        .unwrap();
    // Whoever connects to the database (not only this server's code) cannot rewrite it.
    let mut client = Client::connect(&db.url, NoTls).unwrap();
    for statement in [
        "UPDATE audit SET action = 'nothing'",
        "DELETE FROM audit",
        "TRUNCATE audit",
        "UPDATE audit_records SET record_id = '\\x00'",
        "DELETE FROM audit_records",
        "TRUNCATE audit_records",
    ] {
        let refused = client.batch_execute(statement);
        let message = refused
            .as_ref()
            .err()
            .and_then(|e| e.as_db_error())
            .map(|e| e.message().to_string());
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.contains("append-only")),
            "{statement}: {refused:?}"
        );
    }
    let (entries, total) = store.audit_entries(&AuditFilter::default(), 0, 10).unwrap();
    assert_eq!(total, 1);
    assert_eq!(entries[0].1.action, "view_record");
    assert_eq!(entries[0].1.records, [record]);
}
