//! Issue 16, the bytes of small syncs, counted at the socket through the counting
//! proxy (`intake_tests::counting`): a no-op sync and a 10-record edit with protocol
//! version 7's heads and abbreviated dependencies, and the way back when the server
//! cannot put a dependency back (409 `send_in_full`, then the same request in full);
//! version 8's pulled changes with abbreviated dependencies, and in full when asked.

use intake_server::storage::Role;
use intake_shared::protocol::{ExpandError, Outcome, PROTOCOL_VERSION, RecordChanges, SyncRequest};
use intake_shared::{RecordId, Value};
use intake_tests::counting::Proxy;
use intake_tests::craft::{identity, load, push_of, request, text};
use intake_tests::db::Cell;
use intake_tests::{TestDevice, TestServer};

/// A device with `n` records of its own, synced, then pointed at a counting proxy in
/// front of the server, with one sync through it done (the connection opened).
fn device_behind_proxy(server: &TestServer, n: u64) -> (TestDevice, Vec<RecordId>, Proxy) {
    let mut dev = TestDevice::enroll(server, "drita", Role::Paralegal, Some("prizren"));
    let ids = (0..n)
        .map(|k| {
            dev.create(&[
                ("full_name", text(format!("Person {k}"))),
                ("urgency", text("low")),
            ])
        })
        .collect();
    dev.sync().unwrap();
    let addr = server.url.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(vec![addr], true).unwrap();
    dev.point_at(&proxy.url);
    dev.sync().unwrap();
    (dev, ids, proxy)
}

#[test]
fn a_no_op_costs_at_most_600_bytes_and_ten_edits_at_most_900() {
    let server = TestServer::start();
    let (mut dev, ids, proxy) = device_behind_proxy(&server, 10);

    proxy.reset();
    dev.sync().unwrap();
    let noop = proxy.counts();
    eprintln!("no-op: {noop:?}");
    assert_eq!((noop.requests, noop.responses), (1, 1), "{noop:?}");
    assert!(noop.up + noop.down <= 600, "{noop:?}");
    // Its request (33 bytes of message at most) is smaller as it is than as a zstd
    // frame (about 42 here), so it goes as it is.
    assert!(noop.up - noop.head_up <= 33, "{noop:?}");

    // W3's edit: two fields of each of 10 records, one sync.
    for (k, id) in ids.iter().enumerate() {
        dev.edit(*id, |e| {
            e.set("urgency", text("high"))?;
            e.set("follow_up_date", text(format!("2026-12-{:02}", k + 1)))
        });
    }
    proxy.reset();
    let summary = dev.sync().unwrap();
    let edit = proxy.counts();
    eprintln!("10 edits: {edit:?}");
    assert_eq!(summary.sent, 10, "{summary:?}");
    // One round trip: every dependency was put back from its prefix.
    assert_eq!((edit.requests, edit.responses), (1, 1), "{edit:?}");
    assert!(edit.up + edit.down <= 900, "{edit:?}");
    let token = server_token(&server);
    for id in &ids {
        let stored = load(&server, &token, *id);
        assert_eq!(stored.get("urgency"), Some(Value::Text("high".into())));
    }
}

/// A token of a supervisor of the team, to read what the server holds.
fn server_token(server: &TestServer) -> String {
    server
        .user_device("merita", Role::Supervisor, Some("prizren"))
        .token
}

#[test]
fn an_unknown_prefix_is_sent_again_in_full_and_stored_once() {
    let server = TestServer::start();
    let (mut dev, ids, proxy) = device_behind_proxy(&server, 2);
    // The server forgets when it stored the first record's changes (as for changes
    // stored before it kept receipts): their hashes are no longer looked up by prefix.
    let forgotten = server
        .db()
        .execute(
            "UPDATE log SET received_at = NULL WHERE record_id = ?1",
            &[Cell::Bytes(ids[0].wire().to_vec())],
        )
        .unwrap();
    assert!(forgotten > 0);
    for id in &ids {
        dev.edit(*id, |e| e.set("urgency", text("high")));
    }
    proxy.reset();
    let summary = dev.sync().unwrap();
    let counts = proxy.counts();
    // Refused whole (409), then the same push in full: both records stored once.
    assert_eq!(counts.requests, 2, "{counts:?}");
    assert_eq!(summary.sent, 2, "{summary:?}");
    let token = server_token(&server);
    for id in &ids {
        assert_eq!(
            load(&server, &token, *id).get("urgency"),
            Some(Value::Text("high".into()))
        );
    }
    let edits = server.db().count(
        "SELECT COUNT(*) FROM log WHERE record_id = ?1",
        &[Cell::Bytes(ids[1].wire().to_vec())],
    );
    assert_eq!(edits, 2, "the creating change and one edit");
}

#[test]
fn a_prefix_of_a_change_the_server_lacks_stores_nothing() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let who = identity(&drita, "drita", 0x0102_0304);
    let mut r = intake_tests::craft::new_record(&who, 1);
    let created = r.heads();
    r.edit(chrono::Utc::now(), |e| e.set("urgency", text("high")))
        .unwrap();
    // The edit alone: its dependency, the creating change, never reached the server.
    let edit: RecordChanges = push_of(&mut r, &created);
    let req = request(0, vec![edit.clone()], vec![]);
    let body = zstd::bulk::compress(&req.encode(), 3).unwrap();
    let reply = server.sync_raw(Some(&drita.token), body, None, req.version);
    assert_eq!(
        reply.status,
        409,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let error: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(error["error"], "send_in_full");
    assert_eq!(server.db().count("SELECT COUNT(*) FROM log", &[]), 0);
    // In full, it is judged as ever: its dependency is missing.
    let body = zstd::bulk::compress(&req.encode_in_full(), 3).unwrap();
    let reply = server.sync_raw(Some(&drita.token), body, None, req.version);
    let answer = reply.answer(&[edit.record]);
    assert!(
        matches!(
            &answer.results[0].outcome,
            Outcome::Rejected {
                reason: intake_shared::protocol::Rejection::MissingDependencies,
                ..
            }
        ),
        "{:?}",
        answer.results
    );
    assert_eq!(server.db().count("SELECT COUNT(*) FROM log", &[]), 0);
}

/// The heads of one sync answer to a no-op request in `version`, sent with the heads
/// of that version's app.
fn answer_heads(
    server: &TestServer,
    token: &str,
    req: &intake_shared::protocol::SyncRequest,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    use intake_shared::protocol::{CONTENT_TYPE, VERSION_HEADER};
    let body = zstd::bulk::compress(&req.encode(), 3).unwrap();
    let mut post = server
        .http()
        .post(format!("{}/v1/sync", server.url))
        .bearer_auth(token)
        .header(VERSION_HEADER, req.version.to_string())
        .body(body);
    if req.version < 7 {
        post = post
            .header("content-type", CONTENT_TYPE)
            .header("content-encoding", "zstd")
            .header("accept-encoding", "zstd");
    }
    let resp = post.send().unwrap();
    let status = resp.status().as_u16();
    let heads = resp.headers().clone();
    (status, heads, resp.bytes().unwrap().to_vec())
}

#[test]
fn older_apps_get_the_heads_they_always_got_and_version_7_only_what_it_lacks() {
    use intake_shared::protocol::{Known, SyncResponse};
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let all = [
        "content-type",
        "content-encoding",
        "intake-store",
        "intake-lock-after-days",
        "x-content-type-options",
        "cache-control",
        "date",
    ];
    let mut store_id = String::new();
    for version in 1..=6 {
        let mut req = request(0, vec![], vec![]);
        req.version = version;
        let (status, heads, body) = answer_heads(&server, &drita.token, &req);
        assert_eq!(status, 200, "v{version}");
        for name in all {
            assert!(
                heads.contains_key(name),
                "v{version} lacks {name}: {heads:?}"
            );
        }
        assert_eq!(heads["content-type"], "application/vnd.intake.sync");
        assert_eq!(heads["content-encoding"], "zstd");
        assert_eq!(heads["x-content-type-options"], "nosniff");
        assert_eq!(heads["cache-control"], "no-store");
        let plain = zstd::stream::decode_all(&body[..]).unwrap();
        assert_eq!(SyncResponse::decode(&plain, &[]).unwrap().version, version);
        store_id = heads["intake-store"].to_str().unwrap().to_string();
    }
    // Version 7 (and the app's, 8, which keeps its heads), knowing nothing yet: the
    // store id and the lock, no type, no encoding (the body is zstd all the same),
    // none of the browsers' headers.
    let mut req = request(0, vec![], vec![]);
    assert_eq!(req.version, PROTOCOL_VERSION);
    let (status, heads, body) = answer_heads(&server, &drita.token, &req);
    assert_eq!(status, 200);
    let present: Vec<_> = all.iter().filter(|n| heads.contains_key(**n)).collect();
    assert_eq!(
        present,
        [&"intake-store", &"intake-lock-after-days", &"date"],
        "{heads:?}"
    );
    // Zstd or not, as its first bytes say.
    let plain = if intake_shared::protocol::is_zstd_frame(&body) {
        zstd::stream::decode_all(&body[..]).unwrap()
    } else {
        body
    };
    assert_eq!(
        SyncResponse::decode(&plain, &[]).unwrap().version,
        PROTOCOL_VERSION
    );
    // Knowing them: only the date. Knowing another lock, or another store: both again.
    req.known = Known::new(Some(&store_id), 0);
    let (_, heads, _) = answer_heads(&server, &drita.token, &req);
    let present: Vec<_> = all.iter().filter(|n| heads.contains_key(**n)).collect();
    assert_eq!(present, [&"date"], "{heads:?}");
    for known in [
        Known::new(Some(&store_id), 30),
        Known::new(Some("ffffffffffffffff0000000000000000"), 0),
    ] {
        req.known = known;
        let (_, heads, _) = answer_heads(&server, &drita.token, &req);
        assert_eq!(heads["intake-store"].to_str().unwrap(), store_id);
        assert_eq!(heads["intake-lock-after-days"], "0");
    }
    // An error answer to version 7 keeps every header it always had.
    let (status, heads, _) = answer_heads(&server, "0".repeat(64).as_str(), &req);
    assert_eq!(status, 401);
    assert_eq!(heads["x-content-type-options"], "nosniff");
    assert_eq!(heads["cache-control"], "no-store");
    assert_eq!(heads["content-type"], "application/json");
}

#[test]
fn pulled_edits_come_with_abbreviated_dependencies_and_in_full_when_asked() {
    // Protocol 8: a page's changes name their dependencies outside the page by prefix.
    let server = TestServer::start();
    let (mut drita, ids, _proxy) = device_behind_proxy(&server, 10);
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    assert_eq!(merita.sync().unwrap().received, 10);
    let cursor = merita.store.cursor().unwrap();
    for id in &ids {
        drita.edit(*id, |e| e.set("urgency", text("high")));
    }
    assert_eq!(drita.sync().unwrap().sent, 10);

    // On the wire: the page after Merita's cursor, asked with another supervisor's
    // token. Each edit depends on its record's creating change, outside the page.
    let besa = server.user_device("besa", Role::Supervisor, Some("prizren"));
    let req = SyncRequest {
        version: PROTOCOL_VERSION,
        cursor,
        page_bytes: 1 << 20,
        ..SyncRequest::default()
    };
    let short = server.sync(Some(&besa.token), &req);
    let page = short.response.clone().expect("a page");
    assert_eq!(page.changes.len(), 10);
    assert_eq!(page.abbreviated_records().len(), 10);
    // A reader that holds none of the records cannot put them back: it asks again
    // with every dependency in full, and gets the same changes, whole.
    let mut unread = page.clone();
    assert!(matches!(
        unread.expand(|_, _| None),
        Err(ExpandError::SendInFull(_))
    ));
    let full_req = SyncRequest {
        full_deps: true,
        ..req.clone()
    };
    let full = server.sync(Some(&besa.token), &full_req);
    let mut whole = full.response.clone().expect("a page");
    assert!(whole.short.is_empty());
    whole.expand(|_, _| None).unwrap();
    assert_eq!(whole.cursor, page.cursor);
    // 26 bytes of message saved an edit (a 32-byte hash is 4, and an index and a
    // count), less the digest and the list's length, 9 bytes.
    assert_eq!(full.body.len() - short.body.len(), 10 * 26 - 9);

    // The device puts them back from what it holds: one round trip, nothing asked
    // again, and it holds what Drita holds.
    let pulled = merita.sync().unwrap();
    assert_eq!((pulled.requests, pulled.received), (1, 10), "{pulled:?}");
    for id in &ids {
        assert_eq!(merita.record(*id).heads(), drita.record(*id).heads());
    }
    assert_eq!(whole.changes.len(), 10);
}

#[test]
fn a_device_that_cannot_put_a_dependency_back_asks_for_the_page_in_full() {
    // A record reassigned to Blerta reaches her as the change that assigned it, whose
    // dependency, the record's history, she never held.
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut blerta = TestDevice::enroll(&server, "blerta", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let id = drita.create(&[("full_name", text("Drita Krasniqi"))]);
    drita.sync().unwrap();
    assert_eq!(blerta.sync().unwrap().received, 0);
    merita.sync().unwrap();
    merita.edit(id, |e| e.assign("blerta"));
    merita.sync().unwrap();

    let addr = server.url.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(vec![addr], true).unwrap();
    blerta.point_at(&proxy.url);
    let s = blerta.sync().unwrap();
    let counts = proxy.counts();
    // The page with the dependency as a prefix she cannot put back; the same page in
    // full, whose change she cannot apply without the history; the record whole.
    assert_eq!(counts.requests, 3, "{counts:?} {s:?}");
    assert_eq!((s.requests, s.received, s.unsynced), (2, 1, 0), "{s:?}");
    // Every body that crossed is in the sync's count, the answer not kept too.
    assert_eq!(
        (s.bytes_up + s.bytes_down) as u64,
        counts.up - counts.head_up + counts.down - counts.head_down
    );
    assert_eq!(blerta.record(id).heads(), merita.record(id).heads());
}
