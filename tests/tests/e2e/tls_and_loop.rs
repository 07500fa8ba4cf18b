//! TLS end to end (the server with a certificate, a device trusting only that CA, one
//! connection kept across syncs), and the background sync loop for host apps: it
//! syncs, reports, and stops cleanly.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use intake_server::Settings;
use intake_server::storage::Role;
use intake_shared::{FormRegistry, Record, ReviewStatus, Value};
use intake_tests::relay::{Conn, Handler, Relay, both_ways};
use intake_tests::tls::Certs;
use intake_tests::{TestDevice, TestServer};

/// A server with a fresh certificate for `localhost` from a fresh CA: the server and the
/// certificates (removed on drop); devices trust `certs.ca`.
fn tls_server() -> (TestServer, Certs) {
    let certs = Certs::make().unwrap();
    let settings = Settings {
        tls_cert: Some(certs.chain.clone()),
        tls_key: Some(certs.key.clone()),
        ..Settings::default()
    };
    (TestServer::start_with(settings), certs)
}

#[test]
fn a_device_enrols_and_syncs_over_tls_trusting_only_the_configured_ca() {
    let (server, certs) = tls_server();
    let port = server.url.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}");

    // Without the CA the platform roots do not know this certificate: refused.
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        intake_client::Store::open(dir.path(), &intake_client::Key::from_bytes([3; 32])).unwrap();
    let code = server.add_user("drita", Role::Paralegal, Some("prizren"));
    assert!(intake_client::enroll(&mut store, &url, &code, "phone", None).is_err());
    assert!(
        store.enrolment().unwrap().is_none(),
        "a failed enrolment stores nothing"
    );

    // Trusting exactly that certificate: enrolled, and syncs over TLS.
    let ca = certs.ca.display().to_string();
    intake_client::enroll(&mut store, &url, &code, "phone", Some(&ca)).unwrap();
    let id = store
        .create("intake", |e| {
            e.set("full_name", Value::Text("Over TLS".into()))
        })
        .unwrap();
    let summary = intake_client::sync(&mut store, &Default::default(), &mut |_| {}).unwrap();
    assert_eq!(summary.sent, 1);
    assert!(server.storage.record(id).unwrap().is_some());
}

/// Carries every connection byte for byte: TLS passes through it untouched (the fault
/// proxy reads HTTP framing, so it cannot carry TLS). The relay counts the connections
/// it accepts; dropping it closes every connection and joins every thread.
struct Verbatim;

impl Handler for Verbatim {
    fn serve(&self, conn: Conn) {
        both_ways(&conn, |_| {}, |_| {});
    }
}

#[test]
fn consecutive_syncs_over_tls_reuse_one_connection() {
    let (server, certs) = tls_server();
    let upstream: SocketAddr = server.url.strip_prefix("http://").unwrap().parse().unwrap();
    let relay = Relay::start("tls-relay", upstream, Verbatim).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        intake_client::Store::open(dir.path(), &intake_client::Key::from_bytes([5; 32])).unwrap();
    let code = server.add_user("drita", Role::Paralegal, Some("prizren"));
    let ca = certs.ca.display().to_string();
    let direct = format!("https://localhost:{}", upstream.port());
    let mut enrolment =
        intake_client::enroll(&mut store, &direct, &code, "phone", Some(&ca)).unwrap();
    // Syncs go through the relay; the certificate names `localhost`, so the URL does.
    enrolment.server = format!("https://localhost:{}", relay.addr().port());
    store.set_enrolment(&enrolment).unwrap();

    let id = store
        .create("intake", |e| e.set("full_name", Value::Text("Kept".into())))
        .unwrap();
    let first = intake_client::sync::sync(&mut store, &Default::default(), &mut |_| {}).unwrap();
    assert_eq!(first.sent, 1);
    store
        .edit(id, |e| e.set("village", Value::Text("Plemetin".into())))
        .unwrap();
    let second = intake_client::sync::sync(&mut store, &Default::default(), &mut |_| {}).unwrap();
    assert_eq!(second.sent, 1, "the second sync went through the relay too");
    let stored = server.storage.record(id).unwrap().expect("synced");
    let on_server = Record::load(&stored.doc, FormRegistry::builtin()).unwrap();
    assert_eq!(
        on_server.get("village"),
        Some(Value::Text("Plemetin".into()))
    );
    assert_eq!(
        relay.accepted(),
        1,
        "two syncs ({} and {} requests) opened more than one TCP connection (and TLS \
         handshake)",
        first.requests,
        second.requests
    );
}

#[test]
fn the_background_loop_syncs_reports_and_stops_cleanly() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let id = drita.create(&[
        ("full_name", Value::Text("Loop".into())),
        ("consent_intake", Value::Bool(true)),
    ]);
    drita.edit(id, |e| e.set_status(ReviewStatus::Submitted, None));
    let dir = drita.dir.path().to_path_buf();
    drop(drita.store);
    let (tx, rx) = mpsc::channel();
    let sync_loop = intake_client::sync::background::SyncLoop::start(
        dir,
        intake_client::Key::from_bytes([7; 32]),
        Duration::from_secs(3600),
        move |report| {
            let _ = tx.send(report.as_ref().map(|s| s.sent).map_err(|e| e.to_string()));
        },
    );
    // The first attempt happens at once; the next would be an hour later.
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), Ok(1));
    sync_loop.stop();
    assert!(
        rx.recv().is_err(),
        "the loop's thread has ended and dropped its reporter"
    );

    // The supervisor sends it back; the paralegal fixes it and submits again.
    merita.sync().unwrap();
    merita.edit(id, |e| {
        e.set_status(ReviewStatus::NeedsChanges, Some("add the village"))
    });
    merita.sync().unwrap();
    let mut again = TestDevice {
        name: "drita".into(),
        store: intake_client::Store::open(
            drita.dir.path(),
            &intake_client::Key::from_bytes([7; 32]),
        )
        .unwrap(),
        dir: drita.dir,
    };
    again.sync().unwrap();
    assert_eq!(again.record(id).status(), ReviewStatus::NeedsChanges);
    again.edit(id, |e| {
        e.set("village", Value::Text("Plemetin".into()))?;
        e.set_status(ReviewStatus::Submitted, None)
    });
    again.sync().unwrap();
    merita.sync().unwrap();
    let r = merita.record(id);
    assert_eq!(r.status(), ReviewStatus::Submitted);
    assert_eq!(r.get("village"), Some(Value::Text("Plemetin".into())));
}
