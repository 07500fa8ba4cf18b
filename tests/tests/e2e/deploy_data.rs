//! Deploying the server safely, part "data": `init` makes an installation and nothing
//! else does; the server's database is encrypted at rest (a plaintext one from before
//! is encrypted in place); backups are encrypted, consistent while syncs run and never
//! overwrite; a restore is refused under a running server or from a bad backup; and
//! after a restore every device pushes again what the backup lacks, so nothing is lost.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use intake_server::backup;
use intake_server::startup::{DB_FILE, ServeLock};
use intake_server::storage::key::DbKey;
use intake_server::storage::sqlite::{SqliteStorage, cipher};
use intake_server::storage::{Role, Scope, Storage, SyncStorage, schema};
use intake_server::{Application, Settings, admin, init_store, load_key, open_store};
use intake_shared::RecordId;
use intake_tests::TestDevice;
use intake_tests::craft::text;

fn settings(dir: &Path) -> Settings {
    Settings {
        data_dir: dir.to_path_buf(),
        workers: 2,
        ..Settings::default()
    }
}

/// The real server over a data directory, on an address it keeps across restarts
/// (devices are enrolled with its URL).
struct Served {
    url: String,
    addr: SocketAddr,
    storage: Option<Arc<SqliteStorage>>,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<()>>,
    lock: Option<ServeLock>,
}

impl Served {
    fn start(settings: &Settings, addr: SocketAddr) -> Served {
        let storage = open_store(settings, None).expect("open the store");
        // As `serve` does: the lock that keeps `restore` away.
        let lock = ServeLock::acquire(&settings.data_dir).expect("the serve lock");
        let listener = TcpListener::bind(addr).expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let dyn_storage: Arc<dyn Storage> = storage.clone();
        let settings = settings.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app = Application::build(settings, dyn_storage, listener).expect("build");
                tx.send(app.handle()).unwrap();
                app.run().await.expect("server runs");
            })
        });
        let handle = rx.recv().expect("server started");
        intake_client::sync::ensure_crypto_provider();
        Served {
            url: format!("http://{addr}"),
            addr,
            storage: Some(storage),
            handle: Some(handle),
            thread: Some(thread),
            lock: Some(lock),
        }
    }

    fn storage(&self) -> &SqliteStorage {
        self.storage.as_ref().expect("running")
    }

    /// Stops the server and closes its database (and its lock).
    fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            actix_web::rt::System::new().block_on(handle.stop(true));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(storage) = &self.storage {
            intake_tests::wait_released(storage);
        }
        self.storage = None;
        self.lock = None;
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}

fn device(served: &Served, name: &str, team: &str) -> TestDevice {
    let code = admin::add_user(served.storage(), name, Role::Paralegal, Some(team), 60)
        .unwrap()
        .enrolment_code;
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        intake_client::Store::open(dir.path(), &intake_client::Key::from_bytes([7; 32])).unwrap();
    intake_client::enroll(&mut store, &served.url, &code, name, None).expect("enrol");
    TestDevice {
        name: name.into(),
        store,
        dir,
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every byte of the database's files (the database, its WAL).
fn db_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(b) = std::fs::read(dir.join(format!("{DB_FILE}{suffix}"))) {
            all.extend(b);
        }
    }
    all
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_creates_an_encrypted_store_and_nothing_else_creates_one() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let s = settings(&dir);

    // A missing directory, or one without a store: refused, naming the path and `init`.
    let missing = open_store(&s, None)
        .map(drop)
        .expect_err("refused")
        .to_string();
    assert!(missing.contains(&dir.display().to_string()), "{missing}");
    assert!(missing.contains("intake-server init"), "{missing}");
    assert!(!dir.exists(), "opening created the directory");
    std::fs::create_dir(&dir).unwrap();
    let empty = open_store(&s, None)
        .map(drop)
        .expect_err("refused")
        .to_string();
    assert!(empty.contains("intake-server init"), "{empty}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing created"
    );

    let (storage, first) = init_store(&s, None).unwrap();
    assert!(!first.enrolment.enrolment_code.is_empty() && !first.sign_in.code.is_empty());
    assert_eq!(storage.users().unwrap().len(), 1);
    drop(storage);
    let db = dir.join(DB_FILE);
    let head = std::fs::read(&db).unwrap();
    assert!(
        !head.starts_with(b"SQLite format 3\0"),
        "the database is in clear"
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&s.key_file_path()), 0o600);
    }
    // A second init changes nothing.
    let again = init_store(&s, None)
        .map(drop)
        .expect_err("refused")
        .to_string();
    assert!(again.contains("already holds a store"), "{again}");

    // A wrong key: a clear error, and the file is untouched.
    let before = std::fs::read(&db).unwrap();
    let other = "11".repeat(32);
    let wrong = open_store(&s, Some(&other))
        .map(drop)
        .expect_err("refused")
        .to_string();
    assert!(wrong.contains("cannot be opened with this key"), "{wrong}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    // A key file others may read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = s.key_file_path();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = open_store(&s, None)
            .map(drop)
            .expect_err("refused")
            .to_string();
        assert!(open.contains("mode 644"), "{open}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let reopened = open_store(&s, None).unwrap();
    assert_eq!(reopened.users().unwrap().len(), 1);
}

#[test]
fn a_plaintext_database_from_before_is_encrypted_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_FILE);
    // What the server wrote before encryption: a plain SQLite file with the schema.
    {
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
        schema::migrate_to(&mut conn, schema::CURRENT - 1).unwrap();
        conn.execute(
            "INSERT INTO users (name, role, team, created_at) VALUES ('Valbona-Plaintext', 'admin', NULL, 0)",
            [],
        )
        .unwrap();
    }
    assert!(contains(&db_bytes(dir.path()), "Valbona-Plaintext"));
    let key = DbKey::from_bytes([9; 32]);
    let s = settings(dir.path());
    let storage = open_store(&s, Some(key.to_hex().as_str())).unwrap();
    assert_eq!(storage.users().unwrap()[0].name, "Valbona-Plaintext");
    drop(storage);
    assert!(
        !contains(&db_bytes(dir.path()), "Valbona-Plaintext"),
        "the name is still readable in the database files"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [DB_FILE], "a copy was left behind: {names:?}");
    // Only the key opens it now.
    assert!(cipher::connect(&db, &DbKey::from_bytes([8; 32]), true).is_err());
    assert!(
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("SELECT count(*) FROM users", [], |r| r.get::<_, i64>(0))
            .is_err()
    );
}

#[test]
fn backups_are_encrypted_consistent_while_syncing_and_never_overwrite() {
    let data = tempfile::tempdir().unwrap();
    let s = settings(data.path());
    init_store(&s, None).unwrap();
    let served = Served::start(&s, "127.0.0.1:0".parse().unwrap());
    let mut drita = device(&served, "drita", "prizren");
    let narrative = "Mirlinda-Berisha was refused a birth certificate at the municipality";
    let id = drita.create(&[
        ("full_name", text("Mirlinda Berisha")),
        ("narrative", text(narrative)),
    ]);
    drita.sync().unwrap();
    assert!(
        !contains(&db_bytes(data.path()), "Mirlinda-Berisha"),
        "the live database is in clear"
    );

    // Backups taken while another device keeps syncing new records.
    let mut busy = device(&served, "arben", "prizren");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut n = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            busy.create(&[("full_name", text(format!("Case {n}")))]);
            busy.sync().unwrap();
            n += 1;
        }
        n
    });
    let key = load_key(&s, None).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..3 {
        let file = out.path().join(format!("backup-{i}.db"));
        let report = backup::backup(&s, &key, &file).unwrap();
        assert!(report.bytes > 0);
        files.push(file);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let synced_during = writer.join().unwrap();
    assert!(synced_during > 0, "no sync ran during the backups");

    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !contains(&bytes, "Mirlinda-Berisha"),
            "the backup is in clear"
        );
        assert!(!bytes.starts_with(b"SQLite format 3\0"));
        #[cfg(unix)]
        assert_eq!(mode(file), 0o600);
        // It opens with the key only, and is whole.
        assert!(cipher::connect(file, &DbKey::from_bytes([1; 32]), true).is_err());
        backup::check_backup(file, &key).unwrap();
        let conn = cipher::connect(file, &key, true).unwrap();
        let (records, log): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM log)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        // Consistent: every record's changes are in the log of the same moment.
        let logged: i64 = conn
            .query_row("SELECT count(DISTINCT record_id) FROM log", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(records, logged, "records and log from different moments");
        assert!(log >= records && records >= 1);
        let restored = SqliteStorage::open(file, &key).unwrap();
        assert!(restored.record(id).unwrap().is_some());
    }
    // Never over an existing file, which stays as it was.
    let before = std::fs::read(&files[0]).unwrap();
    let refused = backup::backup(&s, &key, &files[0])
        .map(drop)
        .expect_err("refused");
    assert!(refused.to_string().contains("exists"), "{refused}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), before);
}

#[test]
fn restore_is_refused_under_a_running_server_and_from_a_bad_backup() {
    let data = tempfile::tempdir().unwrap();
    let s = settings(data.path());
    init_store(&s, None).unwrap();
    let key = load_key(&s, None).unwrap();
    let out = tempfile::tempdir().unwrap();
    let good = out.path().join("good.db");
    backup::backup(&s, &key, &good).unwrap();
    let db = data.path().join(DB_FILE);

    let mut served = Served::start(&s, "127.0.0.1:0".parse().unwrap());
    let before = std::fs::read(&db).unwrap();
    let running = backup::restore(&s, &key, &good)
        .map(drop)
        .expect_err("refused");
    assert!(
        running.to_string().contains("a server is running"),
        "{running}"
    );
    served.stop();
    assert_eq!(std::fs::read(&db).unwrap(), before, "the database changed");

    // Another key's backup, and a damaged one: refused, nothing changed.
    let other = DbKey::from_bytes([3; 32]);
    let wrong = backup::restore(&s, &other, &good)
        .map(drop)
        .expect_err("refused");
    assert!(
        wrong.to_string().contains("cannot be opened with this key"),
        "{wrong}"
    );
    let damaged = out.path().join("damaged.db");
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes.len() / 2;
    for b in &mut bytes[at..at + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    assert!(backup::restore(&s, &key, &damaged).is_err());
    assert_eq!(std::fs::read(&db).unwrap(), before, "the database changed");
    let names: Vec<PathBuf> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.to_string_lossy().contains("replaced") || p.to_string_lossy().contains("restoring")
        })
        .collect();
    assert!(names.is_empty(), "left behind: {names:?}");
}

/// Counts of what the server holds.
fn counts(storage: &SqliteStorage, dir: &Path, key: &DbKey) -> (usize, i64, i64) {
    let records = storage
        .record_metas(&Scope::Team("prizren".into()))
        .unwrap()
        .len();
    let conn = cipher::connect(&dir.join(DB_FILE), key, true).unwrap();
    let (log, distinct) = conn
        .query_row("SELECT count(*), count(DISTINCT hash) FROM log", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    (records, log, distinct)
}

#[test]
fn after_a_restore_devices_push_again_and_nothing_is_lost() {
    let data = tempfile::tempdir().unwrap();
    let s = settings(data.path());
    init_store(&s, None).unwrap();
    let key = load_key(&s, None).unwrap();
    let mut served = Served::start(&s, "127.0.0.1:0".parse().unwrap());
    let addr = served.addr;
    let names = ["drita", "arben", "fatime"];
    let mut devices: Vec<TestDevice> = names
        .iter()
        .map(|n| device(&served, n, "prizren"))
        .collect();
    let mut ids: Vec<Vec<RecordId>> = vec![Vec::new(); devices.len()];

    // Before the backup: two records each, one edited.
    for (d, dev) in devices.iter_mut().enumerate() {
        for i in 0..2 {
            ids[d].push(dev.create(&[("full_name", text(format!("{} before {i}", dev.name)))]));
        }
        dev.edit(ids[d][0], |e| e.add_comment("edited before the backup"));
        dev.sync().unwrap();
    }
    let (records_at_backup, log_at_backup, _) = counts(served.storage(), data.path(), &key);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("backup.db");
    backup::backup(&s, &key, &file).unwrap();

    // After it: a new record each, and edits of records the backup already has.
    for (d, dev) in devices.iter_mut().enumerate() {
        ids[d].push(dev.create(&[("full_name", text(format!("{} after", dev.name)))]));
        dev.edit(ids[d][0], |e| e.add_comment("edited after the backup"));
        dev.edit(ids[d][1], |e| e.set("urgency", text("high")));
        dev.sync().unwrap();
        assert_eq!(dev.store.unsynced().unwrap(), 0);
    }
    let (records_before, log_before, _) = counts(served.storage(), data.path(), &key);
    assert!(records_before > records_at_backup && log_before > log_at_backup);

    served.stop();
    let report = backup::restore(&s, &key, &file).unwrap();
    let aside = report
        .replaced
        .clone()
        .expect("the replaced database is kept");
    assert!(aside.exists());
    let served = Served::start(&s, addr);
    assert_eq!(served.storage().store_id(), report.store_id);
    let (records_restored, log_restored, _) = counts(served.storage(), data.path(), &key);
    assert_eq!(
        (records_restored, log_restored),
        (records_at_backup, log_at_backup)
    );

    let mut resynced = Vec::new();
    for dev in devices.iter_mut() {
        let summary = dev.sync().unwrap();
        assert_eq!(summary.refused, 0, "{}: {summary:?}", dev.name);
        assert_eq!(summary.unsynced, 0, "{}: {summary:?}", dev.name);
        resynced.push(summary.sent);
    }
    let (records_after, log_after, distinct_after) = counts(served.storage(), data.path(), &key);
    assert_eq!(records_after, records_before, "records lost or duplicated");
    assert_eq!(log_after, log_before, "log entries lost or duplicated");
    assert_eq!(log_after, distinct_after, "a change is in the log twice");
    for (d, dev) in devices.iter().enumerate() {
        for id in &ids[d] {
            let stored = served
                .storage()
                .record(*id)
                .unwrap()
                .expect("on the server");
            assert_eq!(
                stored.heads,
                dev.record(*id).heads().concat(),
                "{}: {id}",
                dev.name
            );
        }
    }
    // A second sync moves nothing.
    for dev in devices.iter_mut() {
        let again = dev.sync().unwrap();
        assert_eq!(
            (again.sent, again.received, again.refused),
            (0, 0, 0),
            "{}: {again:?}",
            dev.name
        );
    }
    println!(
        "restore scenario: at backup {records_at_backup} records / {log_at_backup} log entries; \
         before restore {records_before} / {log_before}; restored {records_restored} / {log_restored}; \
         after every device synced {records_after} / {log_after} ({distinct_after} distinct); \
         records pushed again per device {resynced:?}"
    );
}

/// A record erased after the backup was taken stays erased through a restore: the
/// restore erases it again in the restored store, and the device that still holds it
/// (it had not synced since) pushes it to the restored server in vain and drops it.
#[test]
fn a_restore_never_brings_back_a_record_erased_after_the_backup() {
    let data = tempfile::tempdir().unwrap();
    let s = settings(data.path());
    init_store(&s, None).unwrap();
    let key = load_key(&s, None).unwrap();
    let mut served = Served::start(&s, "127.0.0.1:0".parse().unwrap());
    let addr = served.addr;
    let mut dev = device(&served, "drita", "prizren");
    let erased = dev.create(&[("full_name", text("Client who asked to be forgotten"))]);
    let kept = dev.create(&[("full_name", text("Another client"))]);
    dev.sync().unwrap();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("backup.db");
    backup::backup(&s, &key, &file).unwrap();

    let who = intake_server::erase::Requester {
        via: "command line",
        ..Default::default()
    };
    intake_server::erase::erase(
        served.storage(),
        erased,
        "the client withdrew consent",
        &who,
        chrono::Utc::now(),
    )
    .unwrap();
    served.stop();

    let report = backup::restore(&s, &key, &file).unwrap();
    assert_eq!(report.reapplied.map(|r| r.erasures), Some(1));
    let served = Served::start(&s, addr);
    assert!(served.storage().record(erased).unwrap().is_none());
    assert_eq!(served.storage().traces(erased).unwrap(), Vec::<&str>::new());
    assert!(served.storage().record(kept).unwrap().is_some());

    // The device pushes everything again to the restored store: the erased record is
    // refused for good and dropped, the other one is simply there already.
    assert!(dev.has(erased));
    let summary = dev.sync().unwrap();
    assert_eq!(summary.erased, 1, "{summary:?}");
    assert!(!dev.has(erased));
    assert!(dev.has(kept));
    assert!(served.storage().record(erased).unwrap().is_none());
    assert_eq!(dev.store.unsynced().unwrap(), 0);
}

/// A phone revoked (with a wipe order) and a user disabled after the backup stay so
/// through a restore: the backup still had them live, and a restore must not give a
/// lost phone its access back.
#[test]
fn a_restore_never_brings_back_a_revoked_phone_or_a_disabled_user() {
    let data = tempfile::tempdir().unwrap();
    let s = settings(data.path());
    init_store(&s, None).unwrap();
    let key = load_key(&s, None).unwrap();
    let mut served = Served::start(&s, "127.0.0.1:0".parse().unwrap());
    let addr = served.addr;
    let mut lost = device(&served, "drita", "prizren");
    let mut gone = device(&served, "arben", "prizren");
    lost.create(&[("full_name", text("A client"))]);
    lost.sync().unwrap();
    gone.sync().unwrap();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("backup.db");
    backup::backup(&s, &key, &file).unwrap();

    let lost_id = lost.store.enrolment().unwrap().unwrap().device_id;
    assert!(
        served
            .storage()
            .order_wipe(lost_id, chrono::Utc::now())
            .unwrap()
    );
    assert!(served.storage().set_user_disabled("arben", true).unwrap());
    served.stop();

    let report = backup::restore(&s, &key, &file).unwrap();
    let again = report.reapplied.expect("the replaced database was read");
    assert_eq!(
        (again.revocations, again.disabled_users),
        (1, 1),
        "{again:?}"
    );
    let served = Served::start(&s, addr);
    let devices = served.storage().devices().unwrap();
    let d = devices.iter().find(|d| d.id == lost_id).unwrap();
    assert!(d.revoked && d.wipe.ordered_at.is_some(), "{d:?}");
    assert!(served.storage().user("arben").unwrap().unwrap().disabled);

    // The lost phone is told to wipe at its next contact; the disabled user is refused.
    let wiped = lost.sync().unwrap_err();
    assert!(
        matches!(
            wiped,
            intake_client::SyncError::Permanent {
                kind: intake_client::sync::Permanent::Wiped,
                ..
            }
        ),
        "{wiped}"
    );
    let refused = gone.sync().unwrap_err();
    assert!(
        matches!(
            refused,
            intake_client::SyncError::Permanent {
                kind: intake_client::sync::Permanent::Revoked,
                ..
            }
        ),
        "{refused}"
    );
}
