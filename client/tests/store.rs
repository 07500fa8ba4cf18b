//! The encrypted local store: round trips, persistence across reopen, wrong keys,
//! encryption at rest, compaction, concurrent writers, migrations.

use std::path::Path;

use intake_client::store::{COMPACT_AFTER, DB_FILE, Key, SCHEMA_VERSION, Store, StoreError};
use intake_shared::{ReviewStatus, Value};

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn key(n: u8) -> Key {
    Key::from_bytes([n; 32])
}

/// Every byte of the database, WAL and shared-memory files.
fn files_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.join(format!("{DB_FILE}{suffix}"));
        if let Ok(b) = std::fs::read(&p) {
            out.push((p.display().to_string(), b));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn records_survive_reopen_with_typed_values() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let mut store = Store::open(dir.path(), &key(1)).unwrap();
        store
            .create("intake", |e| {
                e.set("full_name", text("Ajshe Krasniqi"))?;
                e.set("birth_year", Value::Int(1979))?;
                e.set("needs_interpreter", Value::Bool(true))?;
                e.set("municipality", text("prizren"))
            })
            .unwrap()
    };
    let mut store = Store::open(dir.path(), &key(1)).unwrap();
    store
        .edit(id, |e| e.set("urgency", text("critical")))
        .unwrap();
    let r = store.get(id).unwrap();
    assert_eq!(r.get("birth_year"), Some(Value::Int(1979)));
    assert_eq!(r.get("needs_interpreter"), Some(Value::Bool(true)));
    assert_eq!(r.get("urgency"), Some(text("critical")));
    let list = store.list(None).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].municipality.as_deref(), Some("prizren"));
    assert_eq!(list[0].urgency.as_deref(), Some("critical"));
    assert_eq!(list[0].status, "draft");
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn a_bad_edit_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), &key(1)).unwrap();
    let id = store
        .create("intake", |e| e.set("urgency", text("low")))
        .unwrap();
    let err = store.edit(id, |e| {
        e.set("urgency", text("high"))?;
        e.set("gender", text("unknown"))
    });
    assert!(matches!(err, Err(StoreError::Record(_))));
    assert_eq!(store.get(id).unwrap().get("urgency"), Some(text("low")));
    assert!(
        store
            .create("intake", |e| e.set("municipality", text("atlantis")))
            .is_err()
    );
    assert_eq!(
        store.list(None).unwrap().len(),
        1,
        "a refused create leaves no record"
    );
}

#[test]
fn wrong_key_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let k = Key::from_passphrase(dir.path(), "right lantern pebble orbit").unwrap();
    {
        let mut store = Store::open(dir.path(), &k).unwrap();
        store
            .create("intake", |e| e.set("summary", text("x")))
            .unwrap();
    }
    let before = files_bytes(dir.path());
    let wrong = Key::from_passphrase(dir.path(), "wrong lantern pebble orbit").unwrap();
    let err = Store::open(dir.path(), &wrong).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey));
    assert_eq!(
        err.to_string(),
        "wrong passphrase or key, or this file is not an Intake store"
    );
    assert_eq!(
        files_bytes(dir.path()),
        before,
        "a wrong key must not touch the files"
    );
    assert_eq!(
        Store::open(dir.path(), &k)
            .unwrap()
            .list(None)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn nothing_readable_at_rest_in_database_wal_or_shm() {
    let dir = tempfile::tempdir().unwrap();
    let canary = "Zyrafete Canary-Kryeziu";
    let cyrillic = "Канаринка Јовановић";
    let mut store = Store::open(dir.path(), &key(9)).unwrap();
    for _ in 0..3 {
        let id = store
            .create("intake", |e| {
                e.set("full_name", text(canary))?;
                e.set(
                    "narrative",
                    text(&format!("{canary} told us {cyrillic} saw it")),
                )
            })
            .unwrap();
        store.edit(id, |e| e.add_comment(canary)).unwrap();
    }
    // Keep the connection open so the WAL still holds the latest pages.
    let files = files_bytes(dir.path());
    assert!(
        files.iter().any(|(p, _)| p.ends_with("-wal")),
        "WAL present"
    );
    for (path, bytes) in files {
        for needle in [
            canary,
            cyrillic,
            "Kryeziu",
            "narrative",
            "full_name",
            "CREATE TABLE",
        ] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{needle:?} readable in {path}"
            );
        }
    }
    drop(store);
}

#[test]
fn many_saves_are_compacted_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), &key(1)).unwrap();
    let id = store
        .create("intake", |e| e.set("household_size", Value::Int(1)))
        .unwrap();
    let n = COMPACT_AFTER * 3 + 5;
    for i in 2..=n {
        store
            .edit(id, |e| e.set("household_size", Value::Int(i % 50 + 1)))
            .unwrap();
        store
            .edit(id, |e| e.add_comment(&format!("visit {i}")))
            .unwrap();
    }
    drop(store);
    let store = Store::open(dir.path(), &key(1)).unwrap();
    let mut r = store.get(id).unwrap();
    assert_eq!(r.get("household_size"), Some(Value::Int(n % 50 + 1)));
    assert_eq!(r.comments().len() as i64, n - 1);
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "PRAGMA key = \"x'0101010101010101010101010101010101010101010101010101010101010101'\";",
    )
    .unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
        .unwrap();
    assert!(
        rows <= COMPACT_AFTER,
        "{rows} change rows left after compaction"
    );
}

#[test]
fn two_writers_on_one_record_keep_both_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Store::open(dir.path(), &key(1)).unwrap();
    let mut b = Store::open(dir.path(), &key(1)).unwrap();
    let id = a
        .create("intake", |e| e.set("urgency", text("low")))
        .unwrap();
    let mut ra = a.get(id).unwrap();
    let mut rb = b.get(id).unwrap();
    ra.edit(chrono::Utc::now(), |e| {
        e.set("phone", text("+383 44 123 456"))
    })
    .unwrap();
    rb.edit(chrono::Utc::now(), |e| e.set("village", text("Plemetin")))
        .unwrap();
    a.save(&mut ra).unwrap();
    b.save(&mut rb).unwrap(); // stale: does not know a's change
    let r = a.get(id).unwrap();
    assert_eq!(r.get("phone"), Some(text("+383 44 123 456")));
    assert_eq!(r.get("village"), Some(text("Plemetin")));
}

#[test]
fn review_status_and_list_filter() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), &key(1)).unwrap();
    let done = store
        .create("intake", |e| {
            e.set("full_name", text("Merita Gashi"))?;
            e.set("consent_intake", Value::Bool(true))
        })
        .unwrap();
    store
        .create("intake", |e| e.set("summary", text("draft")))
        .unwrap();
    store
        .edit(done, |e| e.set_status(ReviewStatus::Submitted, None))
        .unwrap();
    let submitted = store.list(Some(ReviewStatus::Submitted)).unwrap();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].id, done.to_string());
    assert_eq!(store.list(Some(ReviewStatus::Draft)).unwrap().len(), 1);
}

#[test]
fn migrations_set_the_version_and_a_newer_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), &key(3)).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "PRAGMA key = \"x'0303030303030303030303030303030303030303030303030303030303030303'\";",
    )
    .unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(dir.path(), &key(3)),
        Err(StoreError::TooNew { .. })
    ));
}

#[test]
fn a_missing_salt_is_an_error_not_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let k = Key::from_passphrase(dir.path(), "river candle orbit meadow").unwrap();
    drop(Store::open(dir.path(), &k).unwrap());
    std::fs::remove_file(dir.path().join(intake_client::store::SALT_FILE)).unwrap();
    assert!(matches!(
        Key::from_passphrase(dir.path(), "river candle orbit meadow"),
        Err(StoreError::Key(_))
    ));
    assert!(Key::from_passphrase(dir.path(), "").is_err());
}
