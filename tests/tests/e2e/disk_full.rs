//! Disk full (issue 13), on the device and on the server, each over a small `tmpfs`
//! (`intake_tests::disk_full::SmallFs`, unmounted in `Drop`) filled by a filler file to
//! leave a little room.
//!
//! - Device: saves until the store meets `SQLITE_FULL`; each failing save is
//!   `StoreError::Full` ("the device storage is full", what the CLI and the field app
//!   print), every save that returned Ok is still there after reopening the store, a
//!   sync pulling more than fits fails as retryable without moving the cursor to the
//!   end; once the filler is gone the next sync brings everything, nothing lost or
//!   duplicated (same ids and heads as the server), `integrity_check` ok.
//! - Server: devices push until the server's disk is full: the sync answers `507
//!   storage_full` with a `Retry-After`, which the device treats as transient, keeping
//!   its unsent changes, and honours (the sync ends at once instead of retrying into
//!   the full disk, and reports the wait); nothing is half-stored (every stored record loads, the
//!   database checks ok), a backup onto the full disk fails and leaves no file; after
//!   freeing space the next syncs push everything and every replica converges.
//!
//! Needs root to mount; set `INTAKE_TEST_NO_MOUNT=1` to skip knowingly elsewhere.

use intake_client::{Key, Store, StoreError, SyncError, SyncOptions};
use intake_server::storage::Role;
use intake_shared::protocol::{CONTENT_TYPE, VERSION_HEADER};
use intake_shared::{RecordId, Value};
use intake_tests::craft::{push_of, request};

use intake_tests::disk_full::{SmallFs, device};
use intake_tests::{TestDevice, TestServer};

/// The file systems: large enough for everything once the filler is gone.
const FS_BYTES: u64 = 24 << 20;

/// Text that neither Automerge nor zstd can shrink much (hex of an xorshift stream),
/// so that the bytes stored are about the bytes asked for.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut s = String::with_capacity(len);
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{x:016x}"));
    }
    s.truncate(len);
    s
}

fn create(store: &mut Store, n: u64, bytes: usize) -> Result<RecordId, StoreError> {
    store.create("intake", |e| {
        e.set("full_name", Value::Text(format!("Person {n}")))?;
        e.set("narrative", Value::Text(noise(n, bytes)))
    })
}

fn sync(store: &mut Store) -> Result<intake_client::SyncSummary, SyncError> {
    intake_client::sync(store, &SyncOptions::default(), &mut |_| {})
}

/// Sorted heads, concatenated, as the server keeps them.
fn heads(store: &Store, id: RecordId) -> Vec<u8> {
    let mut h = store.get(id).expect("record present").heads();
    h.sort();
    h.concat()
}

fn ids(store: &Store) -> Vec<String> {
    let mut ids: Vec<String> = store
        .list(None)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn device_storage_full_fails_saves_and_pulls_cleanly_and_resumes_after_freeing() {
    let Some(fs) = SmallFs::mount(FS_BYTES) else {
        return;
    };
    let server = TestServer::start();
    // What the device will pull: ~600 KB, more than the room left.
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let seeded: Vec<RecordId> = (0..15)
        .map(|n| create(&mut drita.store, 1000 + n, 40_000).unwrap())
        .collect();
    drita.sync().unwrap();

    let dir = fs.path().join("device");
    let key = Key::from_bytes([7; 32]);
    let code = server.add_user("merita", Role::Supervisor, Some("prizren"));
    let mut store = Store::open(&dir, &key).unwrap();
    intake_client::enroll(&mut store, &server.url, &code, "merita", None).unwrap();

    fs.fill_leaving(256 * 1024);
    let mut saved = Vec::new();
    let mut full = None;
    for n in 0..200 {
        match create(&mut store, n, 8_000) {
            Ok(id) => saved.push((id, n)),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let e = full.expect("200 saves of 8 KB fit in 256 KB?");
    assert!(e.is_full(), "a save on a full disk: {e:?}");
    assert!(
        e.to_string().contains("device storage is full"),
        "what the person sees: {e}"
    );
    assert!(
        !saved.is_empty(),
        "not one save fitted: the room left is too small"
    );
    // Another failing save: still the same clear error, never a panic or damage.
    let again = create(&mut store, 999, 8_000).unwrap_err();
    assert!(again.is_full(), "{again:?}");

    // A pull of 600 KB cannot fit: the sync fails as retryable, keeps the cursor
    // short of the end and says why.
    let e = sync(&mut store).unwrap_err();
    assert!(
        matches!(&e, SyncError::Store(s) if s.is_full()),
        "a sync on a full disk: {e:?}"
    );
    assert!(e.is_retryable() && !e.stops_the_loop(), "{e:?}");
    assert!(e.to_string().contains("device storage is full"), "{e}");
    let cursor_when_full = store.cursor().unwrap();

    // Everything saved before is there, read by a new handle on the still-full disk.
    drop(store);
    let store = Store::open(&dir, &key).expect("the store opens on a full disk");
    for &(id, n) in &saved {
        let r = store.get(id).expect("a saved record is readable");
        assert_eq!(r.get("full_name"), Some(Value::Text(format!("Person {n}"))));
    }
    assert_eq!(store.integrity_check().unwrap(), "ok");
    drop(store);

    // Space freed: the next sync brings everything, once; saving works again.
    fs.free();
    let mut store = Store::open(&dir, &key).unwrap();
    sync(&mut store).expect("a sync after freeing space");
    assert!(
        store.cursor().unwrap() > cursor_when_full,
        "the failed sync's cursor had not stopped short of the end"
    );
    assert_eq!(store.unsynced().unwrap(), 0);
    let mut want: Vec<String> = seeded
        .iter()
        .chain(saved.iter().map(|(id, _)| id))
        .map(ToString::to_string)
        .collect();
    want.sort();
    assert_eq!(ids(&store), want, "lost or duplicated records");
    for id in seeded.iter().chain(saved.iter().map(|(id, _)| id)) {
        let on_server = server.storage.record(*id).unwrap().expect("on the server");
        assert_eq!(heads(&store, *id), on_server.heads, "{id} differs");
    }
    for id in &seeded {
        assert_eq!(heads(&store, *id), heads(&drita.store, *id));
    }
    create(&mut store, 5000, 8_000).expect("saving works again");
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn server_storage_full_answers_507_devices_keep_changes_and_resume() {
    let Some(fs) = SmallFs::mount(FS_BYTES) else {
        return;
    };
    let data = fs.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = TestServer::start_sqlite_in(&data, intake_server::Settings::default());
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut devices = [
        device(
            &server,
            dirs[0].path(),
            "drita",
            Role::Paralegal,
            Some("prizren"),
        ),
        device(
            &server,
            dirs[1].path(),
            "ajshe",
            Role::Paralegal,
            Some("prizren"),
        ),
        device(
            &server,
            dirs[2].path(),
            "merita",
            Role::Supervisor,
            Some("prizren"),
        ),
    ];
    let mut created = Vec::new();
    let mut n = 0;
    for d in devices.iter_mut() {
        for _ in 0..3 {
            n += 1;
            created.push(create(d, n, 20_000).unwrap());
        }
        sync(d).unwrap();
    }

    fs.fill_leaving(128 * 1024);
    // Devices write and push until the server's disk is full.
    let mut failed = None;
    'rounds: for _ in 0..40 {
        for (i, d) in devices.iter_mut().enumerate() {
            for _ in 0..2 {
                n += 1;
                created.push(create(d, n, 40_000).unwrap());
            }
            if let Err(e) = sync(d) {
                failed = Some((i, e));
                break 'rounds;
            }
        }
    }
    let (who, e) = failed.expect("the server's disk never filled");
    assert!(
        e.is_retryable() && !e.stops_the_loop(),
        "storage full is transient for the device: {e:?}"
    );
    assert!(
        e.to_string().contains("server's storage is full"),
        "the device is told why: {e}"
    );
    // It honours the answer's Retry-After: the sync ends at once (no retry within it,
    // which would meet the same full disk), and the host's loop waits that long.
    assert_eq!(
        e.retry_after(),
        Some(std::time::Duration::from_secs(60)),
        "the 507's Retry-After is the device's wait: {e:?}"
    );
    let unsent = devices[who].unsynced().unwrap();
    assert!(unsent > 0, "the device kept nothing to send");

    // The answer itself: 507, a Retry-After, a JSON error that says so.
    let d = &devices[who];
    let id = d
        .list(None)
        .unwrap()
        .into_iter()
        .find(|s| s.unsynced)
        .map(|s| s.id.parse::<RecordId>().unwrap())
        .unwrap();
    let mut r = d.get(id).unwrap();
    let req = request(d.cursor().unwrap(), vec![push_of(&mut r, &[])], vec![]);
    let token = d.enrolment().unwrap().unwrap().token;
    let resp = server
        .http()
        .post(format!("{}/v1/sync", server.url))
        .bearer_auth(token)
        .header(VERSION_HEADER, req.version.to_string())
        .header("content-type", CONTENT_TYPE)
        .body(req.encode())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 507);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("60")
    );
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["error"], "storage_full", "{body}");
    assert!(server.storage.record(id).unwrap().is_none(), "half-stored");

    // Reads still work while full: health, and what is stored loads whole.
    let health = server
        .http()
        .get(format!("{}/health", server.url))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let db = server.data_dir().join(intake_server::startup::DB_FILE);
    let conn = intake_server::storage::sqlite::cipher::connect(&db, &server.key(), true).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(conn);
    let forms = intake_shared::FormRegistry::builtin();
    for id in &created {
        if let Some(s) = server.storage.record(*id).unwrap() {
            intake_shared::Record::load(&s.doc, forms).expect("a stored record loads");
        }
    }

    // A backup onto the full disk fails, says why, and leaves no file.
    let settings = intake_server::Settings {
        data_dir: server.data_dir().to_path_buf(),
        ..intake_server::Settings::default()
    };
    let to = fs.path().join("backup.db");
    let e = intake_server::backup::backup(&settings, &server.key(), &to).unwrap_err();
    assert!(format!("{e:#}").contains("storage full"), "{e:#}");
    assert!(!to.exists(), "a partial backup was left");

    // Space freed: pushes, then pulls, and everyone converges; nothing lost or doubled.
    fs.free();
    for _ in 0..2 {
        for d in devices.iter_mut() {
            sync(d).expect("a sync after freeing space");
        }
    }
    let mut want: Vec<String> = created.iter().map(ToString::to_string).collect();
    want.sort();
    // The supervisor sees the whole team's records.
    assert_eq!(
        ids(&devices[2]),
        want,
        "lost or duplicated on the supervisor's device"
    );
    for d in &devices {
        assert_eq!(d.unsynced().unwrap(), 0);
        for s in d.list(None).unwrap() {
            let id: RecordId = s.id.parse().unwrap();
            let stored = server.storage.record(id).unwrap().expect("on the server");
            assert_eq!(heads(d, id), stored.heads, "{id} has not converged");
        }
    }
    let conn = intake_server::storage::sqlite::cipher::connect(&db, &server.key(), true).unwrap();
    let count: i64 = conn
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        count as usize,
        created.len(),
        "the server holds other records"
    );
}
