//! The store's migrations, pinned: every shipped step keeps the SHA-256 it shipped
//! with, and a store from every earlier schema version (committed fixtures under
//! `tests/fixtures/`, SQLCipher-encrypted with a fixed test key, as every store is)
//! opens with today's app with all its rows intact; an app killed while it migrates
//! (this test binary, run again as a child that opens the store) leaves a store at a
//! step boundary whose schema is that version's. `INTAKE_BLESS=1` writes the
//! fixture of a version that has none (after a step is appended).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use intake_client::store::{DB_FILE, Key, SCHEMA_VERSION, Store, migration_steps};
use intake_shared::record::Identity;
use intake_shared::{FormRegistry, Record, RecordId, Value};
use rusqlite::Connection;

#[path = "../../tests/src/schema_check.rs"]
mod schema_check;
use schema_check::{rows, shape, user_version};

/// The SHA-256 of every shipped step, in order. Never change an entry: a shipped step
/// is never edited. A new step gets its hash appended here when it ships.
const PINNED: &[&str] = &[
    // 1
    "490b35dbfea457e3c08dd6718037739fcabb4de551591489badc5eecfc814501",
    // 2
    "c9871fdbe29e67fbffd058bd1220b7a339c5c478cb204d100ad5112038cfafe0",
    // 3
    "7913e700b3f53d7dbea223e63b7698fb8ff6af6f58b4ee238380844e10c8f709",
    // 4
    "ea726c37bc2ac7e7b64f6866cbe4006ed960610a80c9f6442e629d32ca2f215d",
    // 5
    "cd4dbcd3e8c4e55790ebb2349b690c1d38baf501299411d3307c0a6922ea331f",
    // 6
    "df58131a2b57a4e227c7e02934809f39175c8bee45edcfdc4a54f4b9aaa4e039",
];

#[test]
fn every_shipped_step_is_pinned_by_its_hash() {
    let problems = schema_check::pin_problems(
        "store",
        "client/tests/migrations.rs",
        migration_steps(),
        PINNED,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

const KEY: [u8; 32] = [0x3c; 32];

/// Opens `path` with the test key, as the store does (SQLCipher's raw-key syntax).
fn keyed(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(KEY)))
        .unwrap();
    conn
}

fn fixture(version: i64) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/store-v{version}.sqlite"))
}

/// Runs the shipped steps up to `version`, each in one transaction, as the store does.
fn migrate_to(conn: &mut Connection, version: i64) {
    for (i, step) in migration_steps().iter().enumerate().take(version as usize) {
        let tx = conn.transaction().unwrap();
        tx.execute_batch(step).unwrap();
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .unwrap();
        tx.commit().unwrap();
    }
}

/// A record as the device made it: its id and the changes of its one save.
fn record(n: u8) -> (RecordId, Vec<u8>, Vec<u8>) {
    let at = |s: i64| Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap();
    let who = Identity {
        actor: vec![0xa1; 20],
        author: Some("ana".into()),
    };
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let id = RecordId::new_v7(1_790_000_000_000 + u64::from(n), [n; 10]);
    let mut r = Record::create(id, form, &who, at(0));
    r.edit(at(1), |e| {
        e.set("full_name", Value::Text(format!("Person {n}")))
    })
    .unwrap();
    (id, r.changes_since(&[]), r.heads().concat())
}

/// Writes the fixture of `version`: the steps up to it, the device's meta rows and two
/// records, in SQL valid at every version (the tables of step 1).
fn bless(version: i64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let mut conn = keyed(&path);
    migrate_to(&mut conn, version);
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('actor', ?1), ('user', CAST('ana' AS BLOB))",
        [vec![0xa1u8; 16]],
    )
    .unwrap();
    for n in 1..=2u8 {
        let (id, changes, heads) = record(n);
        conn.execute(
            "INSERT INTO records (id, form, form_version, status, summary, created_at,
                 updated_at, has_conflicts, heads, snapshot, change_rows)
             VALUES (?1, 'intake', 1, 'draft', ?2, '2026-09-21T13:46:40Z',
                 '2026-09-21T13:46:41Z', 0, ?3, NULL, 1)",
            rusqlite::params![id.to_string(), format!("Person {n}"), heads],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO changes (record_id, bytes) VALUES (?1, ?2)",
            rusqlite::params![id.to_string(), changes],
        )
        .unwrap();
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    std::fs::create_dir_all(fixture(version).parent().unwrap()).unwrap();
    std::fs::copy(&path, fixture(version)).unwrap();
}

fn shape_at(version: i64) -> BTreeSet<(String, String, String)> {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate_to(&mut conn, version);
    shape(&conn)
}

#[test]
fn a_store_of_every_earlier_version_opens_with_all_its_data() {
    for version in 1..SCHEMA_VERSION {
        let path = fixture(version);
        // Only a missing version is written: a committed fixture stays what the
        // older app left.
        if std::env::var_os("INTAKE_BLESS").is_some() && !path.exists() {
            bless(version);
        }
        assert!(
            path.exists(),
            "missing fixture {}: the store of schema {version}; run with INTAKE_BLESS=1 once",
            path.display()
        );
        let old = keyed(&path);
        assert_eq!(user_version(&old), version, "{}", path.display());
        assert_eq!(shape(&old), shape_at(version), "fixture {version}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&path, dir.path().join(DB_FILE)).unwrap();
        let store = Store::open(dir.path(), &Key::from_bytes(KEY))
            .unwrap_or_else(|e| panic!("schema {version} does not open: {e}"));
        assert_eq!(
            store.device_actor_prefix(),
            [0xa1; 16],
            "from schema {version}"
        );
        let listed = store.list(None).unwrap();
        assert_eq!(listed.len(), 2, "from schema {version}");
        for n in 1..=2u8 {
            let (id, ..) = record(n);
            let r = store.get(id).unwrap();
            assert_eq!(
                r.get("full_name"),
                Some(Value::Text(format!("Person {n}"))),
                "from schema {version}"
            );
        }
        drop(store);

        let conn = keyed(&dir.path().join(DB_FILE));
        assert_eq!(user_version(&conn), SCHEMA_VERSION, "from schema {version}");
        assert_eq!(
            shape(&conn),
            shape_at(SCHEMA_VERSION),
            "from schema {version}"
        );
        assert_eq!(
            rows(&conn, &old),
            rows(&old, &old),
            "rows of schema {version} changed by the migration"
        );
    }
}

/// Set in the child the kill test starts: the store directory to open.
const CHILD: &str = "INTAKE_MIGRATIONS_CHILD";

#[test]
fn an_app_killed_while_migrating_leaves_a_step_boundary() {
    // In the child: open the store (which migrates it) and stop.
    if let Some(dir) = std::env::var_os(CHILD) {
        drop(Store::open(Path::new(&dir), &Key::from_bytes(KEY)).unwrap());
        return;
    }
    // The oldest store: an upgrade runs every step.
    let oldest = fixture(1);
    let old = keyed(&oldest);
    let before = rows(&old, &old);
    let shapes: Vec<_> = (0..=SCHEMA_VERSION).map(shape_at).collect();
    let child = |dir: &Path| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args([
            "--exact",
            "an_app_killed_while_migrating_leaves_a_step_boundary",
            "--test-threads=1",
        ])
        .env(CHILD, dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        c
    };
    let copy = |root: &Path| {
        let dir = root.join("store");
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(&oldest, dir.join(DB_FILE)).unwrap();
        dir
    };

    // How long an upgrade takes when it is not killed.
    let root = tempfile::tempdir().unwrap();
    let dir = copy(root.path());
    let start = std::time::Instant::now();
    assert!(child(&dir).status().unwrap().success());
    let full = start.elapsed();
    assert_eq!(user_version(&keyed(&dir.join(DB_FILE))), SCHEMA_VERSION);

    // Kills spread over that time and a little past it, with a jitter.
    const RUNS: u32 = 50;
    let mut seen = BTreeSet::new();
    let mut seed = 0x9e37_79b9_u64;
    for run in 0..RUNS {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let jitter = std::time::Duration::from_micros((seed >> 33) % 500);
        let delay = full.mul_f64(1.2 * f64::from(run) / f64::from(RUNS)) + jitter;
        let root = tempfile::tempdir().unwrap();
        let dir = copy(root.path());
        let mut c = child(&dir).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = c.kill();
        let _ = c.wait();

        let conn = keyed(&dir.join(DB_FILE));
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "run {run}");
        let version = user_version(&conn);
        assert!(
            (1..=SCHEMA_VERSION).contains(&version),
            "run {run}: schema {version}"
        );
        assert_eq!(
            shape(&conn),
            shapes[version as usize],
            "run {run}: the schema is not that of version {version}"
        );
        assert_eq!(rows(&conn, &old), before, "run {run}: rows lost");
        drop(conn);
        seen.insert(version);

        // Today's app finishes the upgrade.
        let store = Store::open(&dir, &Key::from_bytes(KEY)).unwrap();
        assert_eq!(store.list(None).unwrap().len(), 2, "run {run}");
    }
    eprintln!("upgrade took {full:?}; versions left by kills: {seen:?}");
    // The kills saw both ends: the old store, and the upgraded one.
    assert!(
        seen.contains(&1) && seen.contains(&SCHEMA_VERSION),
        "{seen:?}"
    );
}
