//! Restoring a PostgreSQL installation with PostgreSQL's own tools (issue 14):
//! `pg_dump -Fc` while a server runs, `pg_restore` into a new database, then
//! `intake-server after-restore` (`intake_server::pg_restore`) before serving it. What
//! `e2e::deploy_data` proves for the SQLite `restore`, here for `pg_restore`: devices
//! push again what the backup lacks, and nothing decided since the backup (an
//! erasure, a revoked phone) comes back.

use chrono::Utc;
use intake_server::erase::{self, Requester};
use intake_server::pg_restore::{after_pg_restore, server_connections};
use intake_server::storage::postgres::PgStorage;
use intake_server::storage::{Role, SyncStorage};
use intake_shared::Value;
use intake_tests::TestDevice;
use intake_tests::pg_server::PgServer;

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn after_pg_restore_devices_push_again_and_nothing_decided_since_comes_back() {
    let Some(db) = intake_tests::postgres::database(
        "postgres_restore::after_pg_restore_devices_push_again_and_nothing_decided_since_comes_back",
    ) else {
        return;
    };
    let server = PgServer::start(&db.url);
    let drita_code = server.add_user("drita", Role::Paralegal, Some("prizren"));
    let besa_code = server.add_user("besa", Role::Paralegal, Some("prizren"));
    let mut drita = TestDevice::enroll_at(&server.url, "drita", &drita_code);
    let mut besa = TestDevice::enroll_at(&server.url, "besa", &besa_code);
    let r1 = drita.create(&[("full_name", text("Arta Krasniqi"))]);
    let r2 = drita.create(&[("full_name", text("Blerta Gashi"))]);
    let r3 = besa.create(&[("full_name", text("Dita Hoxha"))]);
    drita.sync().expect("sync");
    besa.sync().expect("sync");

    let backup = db.dump();

    // Since the backup: a new record, an erasure, a revoked phone with a wipe order.
    let r4 = drita.create(&[("full_name", text("Fjolla Berisha"))]);
    drita.sync().expect("sync");
    let storage = server.storage.as_ref();
    let who = Requester {
        via: "test",
        ..Requester::default()
    };
    erase::erase(storage, r1, "the client asked", &who, Utc::now()).expect("erased");
    let besa_device = storage
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.user == "besa")
        .unwrap()
        .id;
    intake_server::admin::revoke_device(storage, besa_device, true, Utc::now()).unwrap();

    // The database is lost; the backup goes into a new one, under the running server
    // first: refused, since that server would keep serving the old store id.
    let restored = db.restore(&backup);
    let early = PgServer::start(&restored.url);
    wait_for_server_connections(&restored.url, |n| n > 0);
    let refusal = after_pg_restore(&restored.url, Some(&db.url), None)
        .expect_err("after-restore ran under a running server")
        .to_string();
    assert!(refusal.contains("stop every server"), "{refusal}");
    drop(early);
    drop(server);
    wait_for_server_connections(&restored.url, |n| n == 0);
    let report = after_pg_restore(&restored.url, Some(&db.url), None).expect("after-restore");
    let again = report.reapplied.expect("read the replaced database");
    assert_eq!((again.erasures, again.revocations), (1, 1), "{again:?}");

    let server = PgServer::start(&restored.url);
    drita.point_at(&server.url);
    besa.point_at(&server.url);
    let summary = drita.sync().expect("sync with the restored server");
    // r4 existed only after the backup: pushed again. r1 was erased since: dropped.
    let storage = server.storage.as_ref();
    assert!(
        storage.record(r4).unwrap().is_some(),
        "a record pushed after the backup was lost ({summary:?})"
    );
    assert!(storage.record(r2).unwrap().is_some());
    assert!(storage.record(r3).unwrap().is_some());
    assert!(
        storage.record(r1).unwrap().is_none(),
        "an erased record came back"
    );
    assert!(!drita.has(r1), "the device kept an erased record");
    // The revoked phone stays revoked, and is wiped at its next contact.
    let besa_now = storage
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.id == besa_device)
        .unwrap();
    assert!(
        besa_now.revoked && besa_now.wipe.ordered_at.is_some(),
        "{besa_now:?}"
    );
    assert!(besa.sync().is_err(), "a revoked phone synced");
}

/// Waits (up to 10 s) until the servers' connections to the database at `url` number
/// `ok`: a server's pool opens and closes them in the background.
fn wait_for_server_connections(url: &str, ok: impl Fn(i64) -> bool) {
    let mut client = PgStorage::client(url, None).expect("a client");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = server_connections(&mut client).unwrap();
        if ok(n) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} server connection(s)"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
