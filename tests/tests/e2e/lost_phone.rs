//! Lost or seized phones (issue 12), end to end with the real server and the real
//! client: a revocation with a wipe order destroys the device's store at its next
//! contact (a sync or the background loop) and the server records the order, its
//! delivery and the device's confirmation; the CLI, the admin API and the dashboard
//! give the order; a device locks its records after the server's days without a
//! successful sync and a sync unlocks it (with an injected clock, no waiting); a new
//! store refuses a weak passphrase but an existing one still opens.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use intake_client::store::{Enrolment, SALT_FILE, StoreError, WeakPassphrase};
use intake_client::sync::background::SyncLoop;
use intake_client::sync::{Permanent, SyncError};
use intake_client::{Key, Store};
use intake_server::Settings;
use intake_server::storage::Role;
use intake_tests::craft::text;
use intake_tests::dashboard::Dashboard;
use intake_tests::{TestDevice, TestServer};
use intake_web::i18n::Msg;

/// A name that must not survive a wipe anywhere on disk.
const CANARY: &str = "Canary Krasniqi-Wipe";

fn device_status(server: &TestServer, id: i64) -> intake_server::storage::Device {
    server
        .storage
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.id == id)
        .expect("the device is listed")
}

/// The JSON error code of a 401 answer to a sync with `token`.
fn sync_refusal(server: &TestServer, token: &str) -> (u16, String) {
    let reply = server.sync(
        Some(token),
        &intake_tests::craft::request(0, vec![], vec![]),
    );
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    (
        reply.status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

fn post_wiped(server: &TestServer, token: &str) -> (u16, serde_json::Value) {
    server.post("/v1/wiped", Some(token), &serde_json::json!({}))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_wipe_order_destroys_the_store_at_the_next_sync_and_the_server_records_each_step() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let id = drita.create(&[("full_name", text(CANARY))]);
    drita.sync().unwrap();
    let enrolment = drita.store.enrolment().unwrap().unwrap();
    let device = enrolment.device_id;
    assert_eq!(device_status(&server, device).status(), "active");

    assert!(server.storage.order_wipe(device, Utc::now()).unwrap());
    let listed = device_status(&server, device);
    assert_eq!(listed.status(), "wipe ordered");
    assert!(listed.revoked && listed.wipe.ordered_at.is_some());

    // Unsynced work made after the order is lost with the store: that is the point.
    drita.edit(id, |e| e.set("urgency", text("high")));
    let err = drita.sync().unwrap_err();
    assert!(
        matches!(
            err,
            SyncError::Permanent {
                kind: Permanent::Wiped,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable() && err.stops_the_loop());
    assert!(err.to_string().contains("wiped"), "{err}");
    assert!(err.to_string().contains("the server was told"), "{err}");

    // Database, -wal/-shm, salt, everything in the directory: gone.
    let dir = drita.dir.path().to_path_buf();
    assert!(
        files_under(&dir).is_empty(),
        "left behind: {:?}",
        files_under(&dir)
    );
    // The handle is unusable, not an empty store that looks fine.
    assert!(drita.store.is_wiped());
    assert!(matches!(drita.store.list(None), Err(StoreError::Wiped)));
    assert!(matches!(drita.store.get(id), Err(StoreError::Wiped)));
    assert!(matches!(
        drita.store.create("intake", |_| Ok(())),
        Err(StoreError::Wiped)
    ));

    let listed = device_status(&server, device);
    assert_eq!(listed.status(), "wiped");
    let wiped_at = listed.wipe.wiped_at.expect("the confirmation is recorded");
    assert!(listed.wipe.sent_at.is_some());

    // Confirming again changes nothing; after it the token is dead like any revoked.
    assert_eq!(post_wiped(&server, &enrolment.token).0, 200);
    assert_eq!(device_status(&server, device).wipe.wiped_at, Some(wiped_at));
    assert_eq!(
        sync_refusal(&server, &enrolment.token),
        (401, "revoked".into())
    );
}

#[test]
fn the_order_is_recorded_as_sent_until_the_device_confirms_and_a_plain_revoke_wipes_nothing() {
    let server = TestServer::start();
    let lost = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let kept = server.user_device("besa", Role::Paralegal, Some("prizren"));

    // A device revoked earlier can still be ordered wiped; a plain revocation is not
    // a wipe order.
    assert!(server.storage.revoke_device(lost.device_id).unwrap());
    assert!(server.storage.revoke_device(kept.device_id).unwrap());
    assert_eq!(sync_refusal(&server, &lost.token), (401, "revoked".into()));
    assert!(
        server
            .storage
            .order_wipe(lost.device_id, Utc::now())
            .unwrap()
    );
    assert!(!server.storage.order_wipe(9_999, Utc::now()).unwrap());

    // Every contact gets the order until the device confirms; the first is recorded.
    assert_eq!(sync_refusal(&server, &lost.token), (401, "wipe".into()));
    let sent = device_status(&server, lost.device_id);
    assert_eq!(sent.status(), "wipe sent");
    let (status, _) = server.get("/v1/me", Some(&lost.token));
    assert_eq!(status, 401);
    assert_eq!(sync_refusal(&server, &lost.token), (401, "wipe".into()));
    assert_eq!(
        device_status(&server, lost.device_id).wipe.sent_at,
        sent.wipe.sent_at
    );

    // Only a device under a wipe order may confirm one.
    assert_eq!(post_wiped(&server, &kept.token).0, 401);
    assert_eq!(post_wiped(&server, "not-a-token").0, 401);
    assert_eq!(device_status(&server, kept.device_id).status(), "revoked");

    let (status, body) = post_wiped(&server, &lost.token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["device"], lost.device_id);
    assert_eq!(device_status(&server, lost.device_id).status(), "wiped");
    assert_eq!(sync_refusal(&server, &lost.token), (401, "revoked".into()));
}

#[test]
fn a_plain_revoke_keeps_the_devices_data() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let id = drita.create(&[("full_name", text(CANARY))]);
    let device = drita.store.enrolment().unwrap().unwrap().device_id;
    assert!(server.storage.revoke_device(device).unwrap());
    let err = drita.sync().unwrap_err();
    assert!(
        matches!(
            err,
            SyncError::Permanent {
                kind: Permanent::Revoked,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(drita.record(id).get("full_name"), Some(text(CANARY)));
    assert!(
        drita.dir.path().join(SALT_FILE).exists() || drita.dir.path().join("intake.db").exists()
    );
    assert_eq!(device_status(&server, device).status(), "revoked");
}

#[test]
fn the_background_loop_obeys_a_wipe_order() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    drita.create(&[("full_name", text(CANARY))]);
    let device = drita.store.enrolment().unwrap().unwrap().device_id;
    assert!(server.storage.order_wipe(device, Utc::now()).unwrap());

    let (tx, rx) = std::sync::mpsc::channel();
    let looping = SyncLoop::start(
        drita.dir.path().to_path_buf(),
        Key::from_bytes([7; 32]),
        Duration::from_secs(3600),
        move |report| {
            let _ = tx.send(format!("{report:?}"));
        },
    );
    let report = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the loop reports");
    assert!(report.contains("Wiped"), "{report}");
    looping.stop();
    assert!(files_under(drita.dir.path()).is_empty());
    assert_eq!(device_status(&server, device).status(), "wiped");
}

#[test]
fn the_admin_api_and_the_dashboard_order_wipes_and_the_dashboard_audits_it() {
    let server = TestServer::start_with_admin_api();
    let admin = server.enroll(&server.admin_code, [0xad; 16]);
    let one = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let two = server.user_device("besa", Role::Paralegal, Some("prizren"));

    // The API: a body of the wrong shape is refused and changes nothing.
    let path = format!("/v1/admin/devices/{}/revoke", one.device_id);
    for bad in [
        serde_json::json!({ "wipe": "yes" }),
        serde_json::json!({ "wype": true }),
    ] {
        let (status, body) = server.post(&path, Some(&admin.token), &bad);
        assert_eq!(status, 400, "{body}");
    }
    assert_eq!(device_status(&server, one.device_id).status(), "active");
    let (status, body) = server.post(
        &path,
        Some(&admin.token),
        &serde_json::json!({ "wipe": true }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wipe"], true);
    let (status, listed) = server.get("/v1/admin/devices", Some(&admin.token));
    assert_eq!(status, 200);
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == one.device_id)
        .unwrap()
        .clone();
    assert_eq!(row["revoked"], true);
    assert!(row["wipe"]["ordered_at"].is_string(), "{row}");
    assert!(row["wipe"]["wiped_at"].is_null(), "{row}");

    // The dashboard: both buttons for an active device; the wipe is audited.
    let dash = Dashboard::with_password(&server, "admin");
    let page = dash.get("/admin/devices");
    assert_eq!(page.status, 200);
    // The dashboard speaks Albanian until told otherwise.
    let said = |m| intake_web::i18n::t(intake_shared::Lang::Sq, m);
    assert!(
        page.body.contains(said(Msg::RevokeAndWipe)),
        "{}",
        page.body
    );
    assert!(page.body.contains(said(Msg::WipeOrdered)), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("/admin/devices/{}/wipe", two.device_id))
    );
    assert!(
        !page
            .body
            .contains(&format!("/admin/devices/{}/wipe", one.device_id))
    );
    let done = dash.submit(
        "/admin/devices",
        &format!("/admin/devices/{}/wipe", two.device_id),
        &[],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        device_status(&server, two.device_id).status(),
        "wipe ordered"
    );
    let trail = dash.get("/admin/audit?action=wipe_device");
    assert!(
        trail.body.contains(&format!("device={}", two.device_id)),
        "{}",
        trail.body
    );
}

/// A clock `days` ahead of the real one.
fn days_ahead(days: i64) -> intake_client::store::Clock {
    Arc::new(move || Utc::now() + chrono::Duration::days(days))
}

fn is_locked<T: std::fmt::Debug>(r: Result<T, StoreError>, days: u32) -> bool {
    match r {
        Err(StoreError::Locked { days: d }) => d == days,
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn a_device_locks_after_the_servers_days_without_a_sync_and_a_sync_unlocks_it() {
    let server = TestServer::start_with(Settings {
        lock_after_days: 30,
        ..Settings::default()
    });
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    assert_eq!(drita.store.lock_after_days().unwrap(), Some(30));
    let id = drita.create(&[("full_name", text("Drita"))]);

    drita.store.set_clock(days_ahead(29));
    assert_eq!(drita.store.list(None).unwrap().len(), 1);

    drita.store.set_clock(days_ahead(31));
    assert!(is_locked(drita.store.list(None), 30));
    assert!(is_locked(drita.store.get(id), 30));
    assert!(is_locked(drita.store.create("intake", |_| Ok(())), 30));
    assert!(is_locked(
        drita.store.edit(id, |e| e.set("urgency", text("high"))),
        30
    ));
    let message = drita.store.list(None).unwrap_err().to_string();
    assert_eq!(
        message,
        "no successful sync for 30 days: connect and sync to unlock"
    );

    // Syncing is allowed while locked, and a successful one unlocks.
    drita.sync().unwrap();
    assert_eq!(drita.store.list(None).unwrap().len(), 1);
    drita.edit(id, |e| e.set("urgency", text("high")));
}

#[test]
fn a_device_enrolled_before_the_setting_learns_it_from_the_sync_answer() {
    let server = TestServer::start_with(Settings {
        lock_after_days: 10,
        ..Settings::default()
    });
    // An enrolment made as an older server answered it: no lock setting in it.
    let code = server.add_user("drita", Role::Paralegal, Some("prizren"));
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), &Key::from_bytes([9; 32])).unwrap();
    let mut actor = [0u8; 16];
    actor.copy_from_slice(store.device_actor_prefix());
    let enrolled = server.enroll(&code, actor);
    store
        .set_enrolment(&Enrolment {
            server: server.url.clone(),
            token: enrolled.token,
            device_id: enrolled.device_id,
            user: "drita".into(),
            role: "paralegal".into(),
            team: Some("prizren".into()),
            ca_file: None,
            limits: None,
            insecure_http: false,
        })
        .unwrap();
    assert_eq!(store.lock_after_days().unwrap(), None);
    store.set_clock(days_ahead(365));
    assert!(store.list(None).is_ok(), "no limit known: no lock");

    store.set_clock(Arc::new(Utc::now));
    intake_client::sync(&mut store, &Default::default(), &mut |_| {}).unwrap();
    assert_eq!(store.lock_after_days().unwrap(), Some(10));
    store.set_clock(days_ahead(11));
    assert!(is_locked(store.list(None), 10));
}

#[test]
fn a_server_without_the_setting_never_locks_devices() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    drita.sync().unwrap();
    drita.store.set_clock(days_ahead(3650));
    assert!(drita.store.list(None).is_ok());
    assert_eq!(drita.store.lock_after_days().unwrap(), None);
}

#[test]
fn a_new_store_refuses_a_weak_passphrase_but_an_existing_one_still_opens() {
    let root = tempfile::tempdir().unwrap();
    let new = root.path().join("new");
    for weak in [
        "short",
        "password1234",
        "intake-intake-2024",
        "qwertyuiop123",
    ] {
        let err = Key::from_passphrase(&new, weak).unwrap_err();
        assert!(
            matches!(err, StoreError::WeakPassphrase(_)),
            "{weak}: {err:?}"
        );
        assert!(err.to_string().contains("random words"), "{err}");
        assert!(!new.exists(), "a refused passphrase creates nothing");
    }
    assert!(matches!(
        Key::from_passphrase(&new, "password1234").unwrap_err(),
        StoreError::WeakPassphrase(WeakPassphrase::Guessable { .. })
    ));
    let key = Key::from_passphrase(&new, "river candle orbit meadow").unwrap();
    Store::open(&new, &key).unwrap();

    // A store made before the rule, with a weak passphrase, still opens with it.
    let old = root.path().join("old");
    std::fs::create_dir(&old).unwrap();
    let salt = [3u8; 16];
    std::fs::write(old.join(SALT_FILE), salt).unwrap();
    let weak_key = Key::derive("password1234", &salt).unwrap();
    let mut store = Store::open(&old, &weak_key).unwrap();
    store.create("intake", |_| Ok(())).unwrap();
    drop(store);
    let again = Key::from_passphrase(&old, "password1234").unwrap();
    assert_eq!(
        Store::open(&old, &again).unwrap().list(None).unwrap().len(),
        1
    );
}

#[test]
fn the_lock_time_survives_reopening_and_counts_from_enrolment() {
    let server = TestServer::start_with(Settings {
        lock_after_days: 5,
        ..Settings::default()
    });
    let drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let at: DateTime<Utc> = drita.store.sync_ok_at().unwrap().expect("set at enrolment");
    assert!((Utc::now() - at).num_minutes() < 5);
    let TestDevice { store, dir, .. } = drita;
    drop(store);
    let mut store = Store::open(dir.path(), &Key::from_bytes([7; 32])).unwrap();
    store.set_clock(days_ahead(6));
    assert!(is_locked(store.list(None), 5));
}
