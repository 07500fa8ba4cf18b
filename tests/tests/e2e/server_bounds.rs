//! Bounded work on the sync endpoint, against the real server over real HTTP.
//!
//! Heavy syncs (a body over 64 KiB as sent, or over 512 KiB decompressed) need one of
//! `max_heavy_syncs` permits: with every permit held, a heavy sync is answered
//! `503 busy` with a `Retry-After` and stores nothing — before its body is read when its
//! `Content-Length` says it is heavy, after 64 KiB of it when it is sent without a
//! length — while light syncs (a no-op, a small push, even a pull of a large page) go
//! through. The permits are held by the test itself, through the server's state, so
//! nothing depends on timing: the harness's server cannot hand its state out, so these
//! tests run a second instance over the same storage (as a deployment with several
//! instances would) and point the harness at it.
//!
//! Pushes take uncompressed change chunks only: a compressed change and a whole
//! document are refused as malformed before Automerge inflates them, while a record of
//! our own with a 2 MB narrative — a change Automerge would compress if asked — is
//! still accepted.

use std::io::Cursor;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use chrono::Utc;
use intake_server::gate::{Gate, HEAVY_BODY_BYTES, HEAVY_DECOMPRESSED_BYTES};
use intake_server::storage::{Role, Storage};
use intake_server::{Application, Limits, Settings};
use intake_shared::protocol::{
    CONTENT_TYPE, Outcome, RecordChanges, Rejection, SyncRequest, VERSION_HEADER,
};
use intake_shared::record::Identity;
use intake_shared::{FormRegistry, Record, RecordId, Value};
use intake_tests::craft::random_text;
use intake_tests::{Enrolled, TestServer, craft};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn start(limits: Limits) -> TestServer {
    TestServer::start_with(Settings {
        limits,
        ..Default::default()
    })
}

/// A second instance of the server over `server`'s storage, whose heavy-sync permits
/// the test can take; `server`'s helpers speak to it from now on.
struct Instance {
    gate: Arc<Gate>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl Instance {
    fn over(server: &mut TestServer, limits: Limits) -> Instance {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let settings = Settings {
            workers: 2,
            limits,
            ..Default::default()
        };
        let storage: Arc<dyn Storage> = server.storage.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app = Application::build(settings, storage, listener).expect("build");
                tx.send((app.handle(), app.state().heavy_syncs.clone()))
                    .unwrap();
                app.run().await.expect("server runs");
            })
        });
        let (handle, gate) = rx.recv().expect("server started");
        server.url = url;
        Instance {
            gate,
            handle,
            thread: Some(thread),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::System::new().block_on(handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An answer to a raw sync request: status, `Retry-After`, JSON error body if any.
struct Reply {
    status: u16,
    retry_after: Option<String>,
    error: serde_json::Value,
}

/// Posts a zstd body to the sync endpoint, with a length or (`chunked`) without.
fn post(server: &TestServer, token: &str, body: &[u8], chunked: bool) -> Reply {
    let body = if chunked {
        reqwest::blocking::Body::new(Cursor::new(body.to_vec()))
    } else {
        reqwest::blocking::Body::from(body.to_vec())
    };
    let resp = server
        .http()
        .post(format!("{}/v1/sync", server.url))
        .header(VERSION_HEADER, craft::request(0, vec![], vec![]).version)
        .header("content-type", CONTENT_TYPE)
        .header("content-encoding", "zstd")
        .bearer_auth(token)
        .body(body)
        .send()
        .expect("sync request");
    Reply {
        status: resp.status().as_u16(),
        retry_after: resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string()),
        error: resp.json().unwrap_or(serde_json::Value::Null),
    }
}

/// Sends a sync request's head announcing a body of `len` bytes, and nothing of the
/// body: the status line the server answers with (it must answer without the body).
fn status_line_before_the_body(server: &TestServer, token: &str, len: usize) -> String {
    use std::io::{BufRead, BufReader, Write};
    let addr = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    // A server waiting for the body fails the test instead of hanging it.
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let version = craft::request(0, vec![], vec![]).version;
    write!(
        stream,
        "POST /v1/sync HTTP/1.1\r\nhost: {addr}\r\n{VERSION_HEADER}: {version}\r\n\
         content-type: {CONTENT_TYPE}\r\ncontent-encoding: zstd\r\n\
         authorization: Bearer {token}\r\ncontent-length: {len}\r\n\r\n"
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

fn assert_busy(reply: &Reply) {
    assert_eq!(reply.status, 503, "{}", reply.error);
    assert_eq!(reply.error["error"], "busy", "{}", reply.error);
    let secs: u64 = reply
        .retry_after
        .as_deref()
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert!(secs >= 1);
}

/// Compressed as devices send bodies (and as `TestServer::sync` does).
fn zstd(req: &SyncRequest) -> Vec<u8> {
    zstd::bulk::compress(&req.encode(), 3).unwrap()
}

fn record(who: &Identity, n: u64, narrative: &str) -> Record {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    Record::create_with(
        RecordId::new_v7(1_790_000_000_000 + n, [n as u8; 10]),
        form,
        who,
        Utc::now(),
        |e| {
            e.set("full_name", Value::Text(format!("Person {n}")))?;
            e.set("narrative", Value::Text(narrative.into()))
        },
    )
    .unwrap()
}

fn stored(server: &TestServer, r: &Record) -> bool {
    server.storage.record(r.id()).unwrap().is_some()
}

/// 32 new records of 5,000 random letters each: a push well over 64 KiB compressed.
fn heavy_push(who: &Identity) -> (Vec<Record>, SyncRequest) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut records: Vec<Record> = (0..32)
        .map(|n| record(who, n, &random_text(&mut rng, 5_000)))
        .collect();
    let push = records.iter_mut().map(|r| craft::push_of(r, &[])).collect();
    let req = craft::request(0, push, vec![]);
    assert!(zstd(&req).len() > HEAVY_BODY_BYTES);
    (records, req)
}

fn all_stored(server: &TestServer, dev: &Enrolled, req: &SyncRequest) {
    let pushed: Vec<_> = req.push.iter().map(|p| p.record).collect();
    let reply = server.sync(Some(&dev.token), req);
    let answer = reply.answer(&pushed);
    assert!(
        answer.results.iter().all(|r| r.outcome == Outcome::Stored),
        "{:?}",
        answer.results
    );
}

#[test]
fn a_heavy_sync_finds_every_permit_taken_and_is_told_busy_while_light_ones_go_through() {
    let mut server = start(Limits::default());
    let a = server.user_device("arta", Role::Paralegal, Some("prizren"));
    let b = server.user_device("besa", Role::Supervisor, Some("prizren"));
    let instance = Instance::over(
        &mut server,
        Limits {
            max_heavy_syncs: 1,
            max_body_bytes: 256 << 10,
            ..Limits::default()
        },
    );
    let who = craft::identity(&a, "arta", 1);
    let (heavy, heavy_req) = heavy_push(&who);
    let body = zstd(&heavy_req);

    // The permit the test holds stands for another heavy sync at work.
    let held = instance.gate.try_enter().expect("the only permit");
    // Announced heavy by its Content-Length: refused before it is read.
    assert_busy(&post(&server, &a.token, &body, false));
    // Sent without a length: refused once 64 KiB of it have arrived.
    assert_busy(&post(&server, &a.token, &body, true));
    assert!(heavy.iter().all(|r| !stored(&server, r)));
    // Neither is read further than needed: a body over the size limit, which would
    // get a 413 once read, gets the 503; and a body announced heavy is answered before
    // a byte of it is sent.
    let oversize = vec![0x5a; 300 << 10];
    assert_busy(&post(&server, &a.token, &oversize, false));
    assert_busy(&post(&server, &a.token, &oversize, true));
    assert!(status_line_before_the_body(&server, &a.token, body.len()).starts_with("HTTP/1.1 503"),);

    // Light syncs go through meanwhile: a no-op, and a small push.
    let noop = server.sync(Some(&a.token), &craft::request(0, vec![], vec![]));
    assert_eq!(noop.status, 200);
    let mut small = record(&who, 100, "A few words.");
    let push = craft::request(0, vec![craft::push_of(&mut small, &[])], vec![]);
    let answer = server
        .sync(Some(&a.token), &push)
        .answer(&[craft::wire(small.id())]);
    assert_eq!(answer.results[0].outcome, Outcome::Stored);
    assert_eq!(instance.gate.in_use(), 1, "light syncs take no permit");

    // Once the permit is back, the same push is taken whole, and the permit it took
    // is given back with its answer.
    drop(held);
    all_stored(&server, &a, &heavy_req);
    assert!(heavy.iter().all(|r| stored(&server, r)));
    assert_eq!(instance.gate.in_use(), 0);

    // A page larger than 64 KiB is light too: asked for while every permit is taken,
    // it is served whole (compressed at a quicker level).
    let held = instance.gate.try_enter().expect("the only permit");
    let reply = server.sync(Some(&b.token), &craft::request(0, vec![], vec![]));
    let page = reply.answer(&[]);
    assert!(reply.body.len() > 64 << 10);
    assert_eq!(page.docs.len(), heavy.len() + 1);
    drop(held);
}

#[test]
fn a_small_body_that_inflates_past_the_light_size_needs_a_permit() {
    let mut server = start(Limits::default());
    let a = server.user_device("arta", Role::Paralegal, Some("prizren"));
    let instance = Instance::over(
        &mut server,
        Limits {
            max_heavy_syncs: 1,
            ..Limits::default()
        },
    );
    let mut r = record(&craft::identity(&a, "arta", 1), 1, "A few words.");
    let mut push = craft::push_of(&mut r, &[]);
    // Zeros: a few hundred bytes as sent, over 512 KiB once decompressed.
    push.changes = vec![vec![0; HEAVY_DECOMPRESSED_BYTES + 1]];
    let req = craft::request(0, vec![push], vec![]);
    let body = zstd(&req);
    assert!(body.len() < 4 << 10);

    let held = instance.gate.try_enter().expect("the only permit");
    assert_busy(&post(&server, &a.token, &body, false));
    drop(held);
    // With a permit free it is decoded, and refused for what it is.
    let answer = server
        .sync(Some(&a.token), &req)
        .answer(&[craft::wire(r.id())]);
    assert!(matches!(
        answer.results[0].outcome,
        Outcome::Rejected {
            reason: Rejection::Malformed,
            ..
        }
    ));
    assert!(!stored(&server, &r));
    assert_eq!(instance.gate.in_use(), 0);
}

/// The change that made `r`, as Automerge compresses it when asked (chunk type 2).
fn compressed_change(r: &mut Record) -> Vec<u8> {
    let raw = r.change_list_since(&[]).remove(0);
    let mut change = automerge::Change::from_bytes(raw).unwrap();
    let compressed = change.bytes().into_owned();
    assert_eq!(compressed[8], 2, "a compressed change chunk");
    compressed
}

#[test]
fn pushed_compressed_changes_and_documents_are_refused_as_malformed() {
    let server = start(Limits::default());
    let a = server.user_device("arta", Role::Paralegal, Some("prizren"));
    let who = craft::identity(&a, "arta", 1);
    let mut rng = StdRng::seed_from_u64(11);
    let mut records: Vec<Record> = (0..3)
        .map(|n| record(&who, n, &random_text(&mut rng, 2_000)))
        .collect();
    let mut pushes: Vec<RecordChanges> =
        records.iter_mut().map(|r| craft::push_of(r, &[])).collect();
    pushes[0].changes = vec![compressed_change(&mut records[0])];
    let document = records[1].save();
    assert_eq!(document[8], 0, "a document chunk");
    pushes[1].changes = vec![document];
    let req = craft::request(0, pushes, vec![]);
    let pushed: Vec<_> = req.push.iter().map(|p| p.record).collect();

    let answer = server.sync(Some(&a.token), &req).answer(&pushed);
    for result in &answer.results[..2] {
        match &result.outcome {
            Outcome::Rejected { reason, message } => {
                assert_eq!(*reason, Rejection::Malformed);
                assert!(
                    message.contains("compressed changes and documents are not accepted"),
                    "{message}"
                );
            }
            other => panic!("accepted: {other:?}"),
        }
    }
    // The rest of the push is judged as usual.
    assert_eq!(answer.results[2].outcome, Outcome::Stored);
    assert!(!stored(&server, &records[0]));
    assert!(!stored(&server, &records[1]));
    assert!(stored(&server, &records[2]));
}

#[test]
fn our_own_record_with_a_2_mb_narrative_is_accepted() {
    // One change of two million operations: the default operation limit would refuse
    // it as too large, which is not what this test is about.
    let server = start(Limits {
        max_ops_per_change: 2_100_000,
        max_document_bytes: 4 << 20,
        ..Limits::default()
    });
    let a = server.user_device("arta", Role::Paralegal, Some("prizren"));
    let mut rng = StdRng::seed_from_u64(13);
    let mut r = record(
        &craft::identity(&a, "arta", 1),
        1,
        &random_text(&mut rng, 2_000_000),
    );
    let push = craft::push_of(&mut r, &[]);
    assert!(
        push.changes.iter().all(|c| c[8] == 1),
        "uncompressed chunks"
    );
    assert!(push.changes[0].len() > 2_000_000);
    all_stored(&server, &a, &craft::request(0, vec![push], vec![]));
    assert!(stored(&server, &r));
}
