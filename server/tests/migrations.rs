//! The server database's migrations, pinned: every shipped step keeps the SHA-256 it
//! shipped with; a database from every earlier schema version (committed fixtures
//! under `tests/fixtures/`) opens with today's server with all its rows intact; an
//! `intake-server` killed while it migrates leaves a database at a step boundary whose
//! schema is that version's; a database from a newer server is refused.
//!
//! The fixtures are plaintext, as every server before database encryption wrote them:
//! opening one also runs the encryption in place a real upgrade runs. `INTAKE_BLESS=1`
//! writes the fixture of a version that has none (after a step is appended).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use intake_server::storage::SyncStorage;
use intake_server::storage::key::DbKey;
use intake_server::storage::schema::{self, CURRENT};
use intake_server::storage::sqlite::{SqliteStorage, cipher};
use intake_shared::record::{Identity, inspect_changes};
use intake_shared::{FormRegistry, Record, RecordId, Value};
use rusqlite::Connection;

#[path = "../../tests/src/schema_check.rs"]
mod schema_check;
use schema_check::{rows, shape, user_version};

/// The SHA-256 of every shipped step, in order. Never change an entry: a shipped step
/// is never edited. A new step gets its hash appended here when it ships.
const PINNED: &[&str] = &[
    // 1
    "e2a1aa7fdf8a75edf786b3e89c8dce8ae28be00bfed3c661e7cfd15ee5ef323b",
    // 2
    "045bfd47a9d2ba06fe64b4f5bdacad884dee0db6237c102c183eea8d58ae3560",
    // 3
    "f4583370b6f2b087ac65fdc9847e4f31d7567dbbdb5bc0552164b07af9454284",
    // 4
    "c8b05b43bcd1e3ce364872bcf3845ae009d4462faf1b3b71d7e57e8c4ce8397f",
    // 5
    "21134f23d2d22b64c16d1d652cad404354d7c048555a0e383d6265578e6f64bf",
    // 6
    "4b9cb31841bfa379dee679e8054efda1b9cc37b5777b6203627941cac64765fa",
    // 7
    "72160ce5a8d27e9231b8bf3be9084b8c27a7aae2f7f52463124abe28d147d8ae",
    // 8
    "4a0624b3acba9be1ec0e8a94932216b1d0a2b92f4ba57a8584ffd80ab2516a1c",
    // 9
    "ab07b8767d95e44e74796e8ca66a63064c99a1b26dfefc5f7c31548dc7efb726",
    // 10
    "a3e8e948468d4848c9d3edde4df912ee70a6c3217310c0aa7b260cf634a97aa5",
    // 11
    "25169a6dfc1674be0c7f05735e652a902666a363d352d1b1de146156fd88442b",
];

#[test]
fn every_shipped_step_is_pinned_by_its_hash() {
    let problems = schema_check::pin_problems(
        "server",
        "server/tests/migrations.rs",
        schema::steps(),
        PINNED,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Held by every test here that opens databases in this process. Encrypting in place
/// runs `sqlcipher_export` on a connection without a key; while another thread of the
/// same process closes SQLCipher connections it intermittently fails ("no such
/// function: sqlcipher_export", or "unable to open database" for the new file). A
/// server encrypts once, at start, before any other connection: only tests meet it.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn key() -> DbKey {
    DbKey::from_bytes([0x5a; 32])
}

fn fixture(version: i64) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/db-v{version}.sqlite"))
}

/// A record as the server stores it: id, saved document, heads, and its changes as
/// (hash, bytes) for the log.
type Made = (RecordId, Vec<u8>, Vec<u8>, Vec<([u8; 32], Vec<u8>)>);

/// A record made on device `actor`.
fn record(n: u8, actor: &[u8]) -> Made {
    let at = |s: i64| Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap();
    let mut who = actor.to_vec();
    who.extend([0, 0, 0, n]);
    let who = Identity {
        actor: who,
        author: Some("ana".into()),
    };
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let id = RecordId::new_v7(1_790_000_000_000 + u64::from(n), [n; 10]);
    let mut r = Record::create(id, form, &who, at(0));
    r.edit(at(1), |e| {
        e.set("full_name", Value::Text(format!("Person {n}")))
    })
    .unwrap();
    let changes = inspect_changes(&r.changes_since(&[]))
        .unwrap()
        .into_iter()
        .map(|c| (c.hash, c.bytes))
        .collect();
    (id, r.save(), r.heads().concat(), changes)
}

/// Writes the fixture of `version`: the steps up to it, then users, devices and records
/// with their log, in SQL valid at every version (the tables of step 1).
fn bless(version: i64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let mut conn = Connection::open(&path).unwrap();
    // Small pages keep the committed files small (a table or index takes a page).
    conn.execute_batch("PRAGMA page_size = 512;").unwrap();
    schema::migrate_to(&mut conn, version).unwrap();
    conn.execute_batch(
        "INSERT INTO users (id, name, role, team, disabled, created_at) VALUES
            (1, 'ana', 'paralegal', 'north', 0, 1790000000),
            (2, 'besa', 'supervisor', 'north', 0, 1790000000),
            (3, 'drita', 'paralegal', 'south', 1, 1790000000);
         INSERT INTO devices (id, user_id, token_hash, actor, label, enrolled_at, revoked_at) VALUES
            (1, 1, zeroblob(31) || x'01', x'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 'ana phone', 1790000100, NULL),
            (2, 2, zeroblob(31) || x'02', x'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2', 'besa tablet', 1790000200, NULL),
            (3, 3, zeroblob(31) || x'03', x'd3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3', 'drita phone', 1790000300, 1790000400);",
    )
    .unwrap();
    for n in 1..=3u8 {
        let (id, doc, heads, changes) = record(n, &[0xa1; 16]);
        let mut last = 0i64;
        for (hash, bytes) in changes {
            conn.execute(
                "INSERT INTO log (record_id, hash, device_id, bytes) VALUES (?1, ?2, 1, ?3)",
                rusqlite::params![id.as_uuid().as_bytes().as_slice(), hash.as_slice(), bytes],
            )
            .unwrap();
            last = conn.last_insert_rowid();
        }
        conn.execute(
            "INSERT INTO records (id, owner, team, assigned_to, status, doc, heads, last_seq)
             VALUES (?1, 'ana', 'north', NULL, 'draft', ?2, ?3, ?4)",
            rusqlite::params![id.as_uuid().as_bytes().as_slice(), doc, heads, last],
        )
        .unwrap();
    }
    conn.execute_batch("VACUUM;").unwrap();
    drop(conn);
    std::fs::create_dir_all(fixture(version).parent().unwrap()).unwrap();
    std::fs::copy(&path, fixture(version)).unwrap();
}

fn fixtures() -> Vec<(i64, PathBuf)> {
    (1..CURRENT)
        .map(|v| {
            let path = fixture(v);
            // Only a missing version is written: a committed fixture stays what the
            // older server left.
            if std::env::var_os("INTAKE_BLESS").is_some() && !path.exists() {
                bless(v);
            }
            assert!(
                path.exists(),
                "missing fixture {}: the database of schema {v}; run with INTAKE_BLESS=1 once",
                path.display()
            );
            (v, path)
        })
        .collect()
}

/// The schema a database at `version` has: a fresh one migrated that far.
fn shape_at(version: i64) -> BTreeSet<(String, String, String)> {
    let mut conn = Connection::open_in_memory().unwrap();
    schema::migrate_to(&mut conn, version).unwrap();
    shape(&conn)
}

fn is_plaintext(path: &Path) -> bool {
    std::fs::read(path)
        .unwrap()
        .starts_with(b"SQLite format 3\0")
}

#[test]
fn a_database_of_every_earlier_version_opens_with_all_its_data() {
    let _serial = serial();
    let fixtures = fixtures();
    assert_eq!(fixtures.len() as i64, CURRENT - 1);
    for (version, path) in fixtures {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("intake-server.db");
        std::fs::copy(&path, &db).unwrap();
        let old = Connection::open(&path).unwrap();
        assert_eq!(user_version(&old), version, "{}", path.display());
        assert_eq!(shape(&old), shape_at(version), "fixture {version}");

        let storage = SqliteStorage::open(&db, &key())
            .unwrap_or_else(|e| panic!("schema {version} does not open: {e}"));
        drop(storage);
        assert!(!is_plaintext(&db), "schema {version}: left unencrypted");
        let conn = cipher::connect(&db, &key(), true).unwrap();
        assert_eq!(user_version(&conn), CURRENT, "from schema {version}");
        assert_eq!(shape(&conn), shape_at(CURRENT), "from schema {version}");
        assert_eq!(
            rows(&conn, &old),
            rows(&old, &old),
            "rows of schema {version} changed by the migration"
        );
        drop(conn);

        // And today's server reads them.
        let storage = SqliteStorage::open(&db, &key()).unwrap();
        let users: Vec<_> = storage
            .users()
            .unwrap()
            .into_iter()
            .map(|u| (u.name, u.disabled))
            .collect();
        assert_eq!(
            users,
            [
                ("ana".into(), false),
                ("besa".into(), false),
                ("drita".into(), true)
            ],
            "from schema {version}"
        );
        let devices = storage.devices().unwrap();
        assert_eq!(devices.len(), 3, "from schema {version}");
        assert_eq!(
            devices.iter().filter(|d| d.revoked).count(),
            1,
            "from schema {version}"
        );
        assert_eq!(intake_server::index::backfill(&storage).unwrap(), 3);
        for n in 1..=3u8 {
            let (id, ..) = record(n, &[0xa1; 16]);
            let stored = storage.record(id).unwrap().expect("record kept");
            let r = Record::load(&stored.doc, FormRegistry::builtin()).unwrap();
            assert_eq!(
                r.get("full_name"),
                Some(Value::Text(format!("Person {n}"))),
                "from schema {version}"
            );
        }
    }
}

fn server(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_intake-server"));
    c.arg("--data").arg(data);
    c.env_remove("INTAKE_SERVER_KEY")
        .env_remove("INTAKE_SERVER_KEY_FILE")
        .env_remove("INTAKE_SERVER_DATA")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// A data directory holding a copy of `db` and the test key.
fn data_dir(root: &Path, db: &Path) -> PathBuf {
    let data = root.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(db, data.join("intake-server.db")).unwrap();
    key()
        .write_new_file(&data.join("intake-server.key"))
        .unwrap();
    data
}

#[test]
fn a_server_killed_while_migrating_leaves_a_step_boundary() {
    let _serial = serial();
    // The oldest database: an upgrade runs every step and the encryption.
    let oldest = fixture(1);
    let old = Connection::open(&oldest).unwrap();
    let before = rows(&old, &old);
    let shapes: Vec<_> = (0..=CURRENT).map(shape_at).collect();

    // How long an upgrade takes when it is not killed.
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path(), &oldest);
    let start = Instant::now();
    let out = server(&data)
        .args(["user", "list", "--json"])
        .output()
        .unwrap();
    let full = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Kills spread over that time and a little past it, with a jitter.
    const RUNS: u32 = 50;
    let mut seen = BTreeSet::new();
    let mut seed = 0x2545_f491_u64;
    for run in 0..RUNS {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let jitter = (seed >> 33) % 1_000;
        let delay =
            full.mul_f64(1.2 * f64::from(run) / f64::from(RUNS)) + Duration::from_micros(jitter);
        let root = tempfile::tempdir().unwrap();
        let data = data_dir(root.path(), &oldest);
        let mut child = server(&data)
            .args(["user", "list", "--json"])
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();

        let db = data.join("intake-server.db");
        let plaintext = is_plaintext(&db);
        let conn = if plaintext {
            Connection::open(&db).unwrap()
        } else {
            cipher::connect(&db, &key(), false).unwrap()
        };
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "run {run}");
        let version = user_version(&conn);
        assert!(
            (1..=CURRENT).contains(&version),
            "run {run}: schema {version}"
        );
        assert_eq!(
            shape(&conn),
            shapes[version as usize],
            "run {run}: the schema is not that of version {version}"
        );
        assert_eq!(rows(&conn, &old), before, "run {run}: rows lost");
        drop(conn);
        seen.insert((plaintext, version));

        // Today's server finishes the upgrade.
        let storage = SqliteStorage::open(&db, &key()).unwrap();
        assert_eq!(storage.users().unwrap().len(), 3, "run {run}");
    }
    eprintln!("upgrade took {full:?}; (plaintext, version) left by kills: {seen:?}");
    // The kill at once leaves the old database: the test saw the start; and some kills
    // landed between the encryption and the last step, where a step could be cut.
    assert!(seen.contains(&(true, 1)), "{seen:?}");
    assert!(
        seen.iter().any(|&(plaintext, v)| !plaintext && v < CURRENT),
        "no kill landed during the migration: {seen:?}"
    );
}

#[test]
fn a_database_from_a_newer_server_is_refused() {
    let _serial = serial();
    let root = tempfile::tempdir().unwrap();
    let db = root.path().join("intake-server.db");
    drop(SqliteStorage::create(&db, &key()).unwrap());
    let conn = cipher::connect(&db, &key(), false).unwrap();
    conn.pragma_update(None, "user_version", CURRENT + 1)
        .unwrap();
    drop(conn);

    let expected = format!(
        "this database was written by a newer intake-server (schema {}; this one knows {CURRENT}): upgrade the server",
        CURRENT + 1
    );
    let err = SqliteStorage::open(&db, &key()).unwrap_err();
    assert!(err.to_string().contains(&expected), "{err}");

    // `serve` stops before it listens, saying so.
    let data = data_dir(root.path(), &db);
    let out = server(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&expected), "{stderr}");
    let conn = cipher::connect(&data.join("intake-server.db"), &key(), true).unwrap();
    assert_eq!(user_version(&conn), CURRENT + 1, "the database was changed");
}
