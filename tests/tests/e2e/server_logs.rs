//! The server's logs never hold record content, device tokens or enrolment codes, even
//! at TRACE for every target (the server's own, actix's, Automerge's, SQLite's): this
//! binary installs a capturing subscriber before the server starts, drives enrolment,
//! pushes and pulls of records carrying a canary name, and the error paths (bad token,
//! bad code, refused pushes, hostile bytes), then searches the captured log. Nothing
//! is left out of the capture: the server's threads, the HTTP client's, and the test
//! thread that plays the devices (whose Automerge documents hold the canary too). With
//! `TEST_LOG` set the capture is also written to stderr.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::Utc;
use intake_shared::protocol::{Outcome, PROTOCOL_VERSION, RecordChanges};
use intake_shared::{FormRegistry, Record, RecordId, ReviewStatus, Value};
use intake_tests::craft::{identity, push_of, request};
use intake_tests::dashboard::Dashboard;
use intake_tests::{Enrolled, TestServer};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter};

/// A name and a narrative no log line may ever show.
const CANARY: &str = "Zyrafete Canary-Kryeziu";
const CANARY_NARRATIVE: &str =
    "Canary narrative: the school in Kryeziu-Canary village seated her apart";

static CAPTURED: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>, bool);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        if self.1 {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (TRACE, every target) as the global default, before
/// any server starts; `intake_server::telemetry::init` then leaves it in place.
fn capture_everything() -> Arc<Mutex<Vec<u8>>> {
    CAPTURED
        .get_or_init(|| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let writer = Capture(buf.clone(), std::env::var_os("TEST_LOG").is_some());
            tracing_subscriber::registry()
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(move || writer.clone())
                        .with_filter(filter::LevelFilter::TRACE),
                )
                .try_init()
                .expect("no other subscriber is installed in this test binary");
            buf
        })
        .clone()
}

fn canary_record(dev: &Enrolled, name: &str, n: u64) -> Record {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let mut r = Record::create(
        RecordId::new_v7(1_790_000_000_000 + n, [n as u8; 10]),
        form,
        &identity(dev, name, 0x0707),
        Utc::now(),
    );
    r.edit(Utc::now(), |e| {
        e.set("full_name", Value::Text(format!("{CANARY} {n}")))?;
        e.set("narrative", Value::Text(CANARY_NARRATIVE.into()))?;
        e.set("village", Value::Text("Canary-Kryeziu mahalla".into()))?;
        e.set("consent_intake", Value::Bool(true))?;
        e.add_comment(&format!("{CANARY} asked us not to call before noon"))
    })
    .unwrap();
    r
}

fn hostile_fixture() -> Vec<u8> {
    let hex = include_str!("../../../shared/tests/fixtures/automerge-0.12-load-panic.hex");
    hex::decode(hex.trim()).unwrap()
}

#[test]
fn server_logs_hold_no_record_content_tokens_or_codes() {
    // Measures or captures the whole process: by itself, not beside other tests.
    intake_tests::alone!(server_logs_hold_no_record_content_tokens_or_codes);
    let captured = capture_everything();
    // The admin API's answers carry codes: they must stay out of the log too.
    let server = TestServer::start_with_admin_api();
    let mut codes = vec![server.admin_code.clone()];
    let admin = server.enroll(&server.admin_code, [0xad; 16]);

    // Users are added over the admin API, so their codes cross the server's HTTP layer.
    let mut add = |name: &str, role: &str| {
        let (status, body) = server.post(
            "/v1/admin/users",
            Some(&admin.token),
            &json!({ "name": name, "role": role, "team": "prizren" }),
        );
        assert_eq!(status, 201, "{body}");
        let code = body["enrolment_code"].as_str().unwrap().to_string();
        codes.push(code.clone());
        code
    };
    let zana_code = add("zana", "paralegal");
    let mimoza_code = add("mimoza", "supervisor");
    let besnik_code = add("besnik", "paralegal");
    let zana = server.enroll(&zana_code, [0x21; 16]);
    let mimoza = server.enroll(&mimoza_code, [0x22; 16]);
    let besnik = server.enroll(&besnik_code, [0x23; 16]);
    let (status, body) = server.post("/v1/admin/users/zana/code", Some(&admin.token), &json!({}));
    assert_eq!(status, 200);
    let spare_code = body["enrolment_code"].as_str().unwrap().to_string();
    codes.push(spare_code.clone());
    let spare = server.enroll(&spare_code, [0x24; 16]);
    let tokens = [&admin, &zana, &mimoza, &besnik, &spare].map(|d| d.token.clone());

    // Records carrying the canary: pushed, pulled whole and by change, read as JSON.
    let mut records: Vec<Record> = (0..3).map(|n| canary_record(&zana, "zana", n)).collect();
    let push: Vec<_> = records.iter_mut().map(|r| push_of(r, &[])).collect();
    let resp = server
        .sync(Some(&zana.token), &request(0, push, vec![]))
        .response
        .unwrap();
    assert!(resp.results.iter().all(|r| r.outcome == Outcome::Stored));
    let pulled = server
        .sync(Some(&mimoza.token), &request(0, vec![], vec![]))
        .response
        .unwrap();
    assert_eq!(pulled.docs.len(), 3);
    let before = records[0].heads();
    records[0]
        .edit(Utc::now(), |e| {
            e.set(
                "summary",
                Value::Text(format!("{CANARY} was refused a birth certificate")),
            )?;
            e.set_status(ReviewStatus::Submitted, None)
        })
        .unwrap();
    let edit = push_of(&mut records[0], &before);
    server.sync(
        Some(&zana.token),
        &request(pulled.cursor, vec![edit.clone()], vec![]),
    );
    let changes = server
        .sync(Some(&mimoza.token), &request(pulled.cursor, vec![], vec![]))
        .response
        .unwrap();
    assert_eq!(changes.changes.len(), 1);
    let id = records[0].id().to_string();
    let (status, json) = server.get(&format!("/v1/records/{id}"), Some(&mimoza.token));
    assert_eq!(status, 200);
    assert!(json.to_string().contains(CANARY), "the API itself shows it");
    assert_eq!(server.get("/v1/records", Some(&mimoza.token)).0, 200);
    assert_eq!(server.get("/v1/me", Some(&zana.token)).0, 200);

    // Error paths.
    let bogus_token = "f".repeat(64);
    assert_eq!(server.get("/v1/me", Some(&bogus_token)).0, 401);
    assert_eq!(
        server
            .sync(Some(&bogus_token), &request(0, vec![], vec![]))
            .status,
        401
    );
    let (status, _) = server.post(
        "/v1/enroll",
        None,
        &json!({ "code": "ZZZZ-ZZZZ-ZZZZ", "actor": hex::encode([0x31; 16]) }),
    );
    assert_eq!(status, 401, "a wrong code");
    let (status, _) = server.post(
        "/v1/enroll",
        None,
        &json!({ "code": zana_code, "actor": hex::encode([0x32; 16]) }),
    );
    assert_eq!(status, 401, "a used code");
    let (status, _) = server.post(
        "/v1/enroll",
        None,
        &json!({ "code": CANARY, "actor": CANARY, "label": CANARY, "canary": CANARY }),
    );
    assert_eq!(status, 400, "content in a malformed enrolment");
    // Besnik may not write Zana's record; Zana may not approve her own.
    let mut foreign = records[1].clone();
    foreign.set_identity(&identity(&besnik, "besnik", 0x0707));
    let before = foreign.heads();
    foreign
        .edit(Utc::now(), |e| {
            e.set("full_name", Value::Text(format!("{CANARY} (overwritten)")))
        })
        .unwrap();
    let resp = server
        .sync(
            Some(&besnik.token),
            &request(1, vec![push_of(&mut foreign, &before)], vec![]),
        )
        .response
        .unwrap();
    assert!(matches!(resp.results[0].outcome, Outcome::Rejected { .. }));
    let mut approved = records[2].clone();
    let before = approved.heads();
    approved
        .edit(Utc::now(), |e| {
            e.set_status(ReviewStatus::Approved, Some(CANARY))
        })
        .unwrap();
    let resp = server
        .sync(
            Some(&zana.token),
            &request(1, vec![push_of(&mut approved, &before)], vec![]),
        )
        .response
        .unwrap();
    assert!(matches!(resp.results[0].outcome, Outcome::Rejected { .. }));
    // Hostile bytes, and garbage bodies.
    let hostile = RecordChanges {
        record: *records[2].id().as_uuid().as_bytes(),
        changes: vec![hostile_fixture()],
    };
    let resp = server
        .sync(Some(&zana.token), &request(1, vec![hostile], vec![]))
        .response
        .unwrap();
    assert!(matches!(resp.results[0].outcome, Outcome::Rejected { .. }));
    // A whole document where one change belongs: the server decodes it (re-encoding
    // its changes) before refusing it.
    let whole = RecordChanges {
        record: *records[0].id().as_uuid().as_bytes(),
        changes: vec![records[0].save()],
    };
    let resp = server
        .sync(Some(&zana.token), &request(1, vec![whole], vec![]))
        .response
        .unwrap();
    assert!(matches!(resp.results[0].outcome, Outcome::Rejected { .. }));
    let garbage = format!("{CANARY} {CANARY_NARRATIVE}").into_bytes();
    assert_eq!(
        server
            .sync_raw(Some(&zana.token), garbage, None, PROTOCOL_VERSION)
            .status,
        400
    );
    // A revoked device and a disabled user are turned away.
    let (status, _) = server.post(
        &format!("/v1/admin/devices/{}/revoke", spare.device_id),
        Some(&admin.token),
        &json!({}),
    );
    assert_eq!(status, 200);
    assert_eq!(server.get("/v1/me", Some(&spare.token)).0, 401);
    let (status, _) = server.post(
        "/v1/admin/users/besnik/disable",
        Some(&admin.token),
        &json!({}),
    );
    assert_eq!(status, 200);
    assert_eq!(server.get("/v1/records", Some(&besnik.token)).0, 401);
    assert_eq!(server.get("/health", None).0, 200);

    // The dashboard: a supervisor signs in, searches for the canary by name, reads the
    // record and its history, exports it with sensitive fields, and comments with it.
    let dash = Dashboard::with_password(&server, "mimoza");
    let q = intake_server::web::encode(CANARY);
    assert_eq!(dash.get(&format!("/records?q={q}")).status, 200);
    let page = format!("/records/{id}");
    assert!(dash.get(&page).body.contains("Canary-Kryeziu"));
    assert_eq!(dash.get(&format!("{page}?history=full_name")).status, 200);
    let export = dash.get(&format!("/export.csv?sensitive=yes&q={q}"));
    assert!(export.body.contains(CANARY), "the export itself has it");
    let commented = dash.submit(&page, &format!("{page}/comment"), &[("text", CANARY)]);
    assert_eq!(commented.status, 303);
    let wrong = Dashboard::new(&server).sign_in("mimoza", CANARY);
    assert_eq!(
        wrong.status, 401,
        "a wrong password (the canary) is not logged either"
    );
    drop(server);

    let log = String::from_utf8_lossy(&captured.lock().unwrap()).into_owned();
    assert!(
        log.contains("request") && log.contains("/v1/sync") && log.contains("device enrolled"),
        "the capture holds the server's request log ({} bytes)",
        log.len()
    );
    // Request lines say who: the device and user of a sync, the user and session of a
    // dashboard page.
    assert!(
        log.lines().any(|l| l.contains("/v1/sync")
            && l.contains("device=")
            && l.contains("user=\"zana\"")),
        "a sync's request line names its device and user"
    );
    assert!(
        log.lines().any(|l| l.contains("/records/{id}")
            && l.contains("session=")
            && l.contains("user=\"mimoza\"")),
        "a dashboard request line names its user and session"
    );
    let mut secrets: Vec<(String, &str)> = vec![
        (CANARY.into(), "the canary name"),
        ("Canary-Kryeziu".into(), "part of the canary name"),
        ("Kryeziu-Canary".into(), "the canary narrative"),
        ("Bearer".into(), "an Authorization header"),
    ];
    for t in &tokens {
        secrets.push((t.clone(), "a device token"));
        secrets.push((t[..16].to_string(), "a device token's prefix"));
    }
    secrets.push((
        intake_tests::dashboard::PASSWORD.into(),
        "a dashboard password",
    ));
    for c in &codes {
        secrets.push((c.clone(), "an enrolment code"));
        secrets.push((c.replace('-', ""), "an enrolment code without dashes"));
    }
    let leaks: Vec<String> = secrets
        .iter()
        .filter(|(s, _)| log.contains(s.as_str()))
        .map(|(s, what)| format!("{what}: {s}"))
        .collect();
    eprintln!(
        "captured {} bytes, {} lines of log; {} secrets searched, {} found",
        log.len(),
        log.lines().count(),
        secrets.len(),
        leaks.len()
    );
    assert!(leaks.is_empty(), "the log leaks {leaks:#?}");
}
