//! Items larger than what a request may carry cross in resumable pieces (protocol v3):
//! a record with a long narrative goes up and comes down in pieces of the budget, the
//! pieces kept across cut requests and a reopened store; and a page held back because
//! it removed a record that was edited during the sync is released only after the
//! edit has reached the server.

use intake_client::{Key, Store, SyncOptions};
use intake_server::Settings;
use intake_server::storage::Role;
use intake_shared::protocol::{ItemKind, Outcome, Piece, Rejection, pieces as wire_pieces};
use intake_tests::craft::text;
use intake_tests::craft::{self, push_of, wire};
use intake_tests::proxy::{Fault, FaultConfig, FaultProxy};
use intake_tests::{TestDevice, TestServer};

/// Pieces of at most `bytes` each way.
fn small(bytes: u32) -> SyncOptions {
    SyncOptions {
        page_bytes: bytes,
        push_bytes: bytes as usize,
        ..SyncOptions::default()
    }
}

/// A narrative of about `len` bytes that does not compress to nothing.
fn narrative(len: usize) -> String {
    let words = [
        "shkolla",
        "klasa",
        "nxënësit",
        "drejtori",
        "prindërit",
        "komuna",
        "dokumentet",
        "regjistrimi",
        "gjuha",
        "ndarja",
        "romë",
        "ashkali",
        "egjiptianë",
        "vendim",
    ];
    let mut out = String::with_capacity(len + 16);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(words[(x % words.len() as u64) as usize]);
        out.push(if x.is_multiple_of(11) { '.' } else { ' ' });
    }
    out
}

/// The default limits take a record with a long narrative (one operation per
/// character).
fn big_server() -> TestServer {
    TestServer::start_with(Settings::default())
}

#[test]
fn a_large_record_crosses_both_ways_in_pieces() {
    let server = big_server();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let long = narrative(1 << 20);
    let id = drita.create(&[
        ("full_name", text("Mirlinda Berisha")),
        ("narrative", text(long.clone())),
    ]);
    let small_one = drita.create(&[("full_name", text("Emine Shala"))]);

    let up = intake_client::sync(&mut drita.store, &small(64 << 10), &mut |_| {}).unwrap();
    assert_eq!(up.sent, 2, "{up:?}");
    assert!(
        up.requests > 10,
        "a 1 MB record in 64 KiB pieces takes many requests: {up:?}"
    );
    assert_eq!(up.unsynced, 0);

    let down = intake_client::sync(&mut merita.store, &small(64 << 10), &mut |_| {}).unwrap();
    assert_eq!(down.received, 2, "{down:?}");
    assert!(down.requests > 10, "pulled in pieces: {down:?}");
    let mut mine = drita.record(id);
    let mut theirs = merita.record(id);
    assert_eq!(theirs.get("narrative"), Some(text(long)));
    assert_eq!(mine.heads(), theirs.heads());
    assert!(merita.has(small_one));
}

#[test]
fn pieces_survive_cut_requests_and_a_reopened_store() {
    let server = big_server();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let long = narrative(600 << 10);
    let id = drita.create(&[("narrative", text(long.clone()))]);

    // Every third request is cut, in either direction.
    for (dev, name) in [(&mut drita, "up"), (&mut merita, "down")] {
        let proxy = FaultProxy::start(
            server.url.trim_start_matches("http://").parse().unwrap(),
            FaultConfig {
                fault_rate: 0.0,
                seed: 3,
            },
        );
        proxy.script(
            (0..200)
                .map(|i| {
                    (i % 3 == 2).then_some(if i % 2 == 0 {
                        Fault::CutRequest
                    } else {
                        Fault::CutResponse
                    })
                })
                .collect::<Vec<_>>(),
        );
        dev.point_at(&proxy.url());
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(attempts < 100, "{name}: no end");
            // A new handle each time: what was received must come from the store.
            let dir = dev.dir.path().to_path_buf();
            let mut store = Store::open(&dir, &Key::from_bytes([7; 32])).unwrap();
            match intake_client::sync(&mut store, &small(48 << 10), &mut |_| {}) {
                Ok(s) if s.unsynced == 0 => break,
                Ok(_) => continue,
                Err(e) => assert!(e.is_retryable(), "{name}: {e}"),
            }
        }
        assert!(proxy.stats().faults() > 0, "{name}: nothing was cut");
        dev.point_at(&server.url);
    }
    assert_eq!(merita.record(id).get("narrative"), Some(text(long)));
    assert_eq!(drita.record(id).heads(), merita.record(id).heads());
}

#[test]
fn a_page_that_removes_a_record_edited_during_the_sync_waits_for_the_edit() {
    let server = TestServer::start();
    let mut besa = TestDevice::enroll(&server, "besa", Role::Paralegal, Some("prizren"));
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    // Besa's case, assigned to Drita, who has it on her device.
    let x = besa.create(&[("full_name", text("Vesna Petrović"))]);
    besa.sync().unwrap();
    merita.sync().unwrap();
    merita.edit(x, |e| e.assign("drita"));
    merita.sync().unwrap();
    drita.sync().unwrap();
    assert!(drita.has(x));
    // Drita works offline on other cases; meanwhile X is given to someone else.
    for i in 0..3 {
        drita.create(&[("full_name", text(format!("case {i}")))]);
    }
    // Meanwhile her supervisor gives her six cases with long narratives, then gives X
    // to someone else: the pages that bring her the six come before the one that
    // tells her X is gone.
    for i in 0..6 {
        let id = merita.create(&[
            ("full_name", text(format!("assigned {i}"))),
            ("narrative", text(narrative(6000))),
        ]);
        merita.edit(id, |e| e.assign("drita"));
    }
    merita.sync().unwrap();
    merita.edit(x, |e| e.assign("besa"));
    merita.sync().unwrap();

    // She had also edited X offline: her first request pushes it with her new cases.
    // Right after it, she edits X again through another handle on the store (a sync
    // pushes a record once): the page that then removes X finds it unsynced.
    drita.edit(x, |e| e.set("village", text("Zhur")));
    let dir = drita.dir.path().to_path_buf();
    let mut edited = false;
    let summary = intake_client::sync(&mut drita.store, &small(16 << 10), &mut |_| {
        if !edited {
            edited = true;
            let mut other = Store::open(&dir, &Key::from_bytes([7; 32])).unwrap();
            other
                .edit(x, |e| e.set("phone", text("+383 44 123 456")))
                .unwrap();
        }
    })
    .unwrap();
    assert!(edited);
    let stored = server.storage.as_ref();
    let on_server = stored.record(x).unwrap().unwrap();
    let doc = intake_shared::Record::load(&on_server.doc, intake_shared::FormRegistry::builtin())
        .unwrap();
    assert_eq!(doc.get("village"), Some(text("Zhur")));
    assert_eq!(
        doc.get("phone"),
        Some(text("+383 44 123 456")),
        "the edit made during the sync reached the server: {summary:?}"
    );
    assert!(!drita.has(x), "then the record left her device");
    assert_eq!(
        drita.store.list(None).unwrap().len(),
        9,
        "her 3 and the 6 given to her"
    );
    assert_eq!(drita.store.unsynced().unwrap(), 0);
    // And her device can no longer deliver to it.
    drita.sync().unwrap();
    assert!(!stored.late_grant(device_id(&drita), x).unwrap());
}

fn device_id(d: &TestDevice) -> i64 {
    d.store.enrolment().unwrap().unwrap().device_id
}

#[test]
fn the_proxy_script_is_used() {
    // Guards the helper this file relies on: a scripted fault is met.
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let proxy = FaultProxy::start(
        server.url.trim_start_matches("http://").parse().unwrap(),
        FaultConfig {
            fault_rate: 0.0,
            seed: 1,
        },
    );
    proxy.script(vec![Some(Fault::BadGateway), Some(Fault::BadGateway)]);
    drita.point_at(&proxy.url());
    drita.create(&[("full_name", text("x"))]);
    let s = drita.sync().unwrap();
    assert_eq!(s.retries, 2, "{s:?}");
}

#[test]
fn pieces_that_do_not_match_their_digest_are_dropped_and_fetched_again() {
    let server = big_server();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let long = narrative(300 << 10);
    let id = drita.create(&[("narrative", text(long.clone()))]);
    drita.sync().unwrap();

    // Merita's pull is cut after a few pieces have been kept.
    let proxy = FaultProxy::start(
        server.url.trim_start_matches("http://").parse().unwrap(),
        FaultConfig {
            fault_rate: 0.0,
            seed: 5,
        },
    );
    proxy.fail_from(4, Fault::BadGateway);
    merita.point_at(&proxy.url());
    assert!(intake_client::sync(&mut merita.store, &small(32 << 10), &mut |_| {}).is_err());
    // Damage what was kept, as a bad flash sector would.
    let db = merita.dir.path().join(intake_client::store::DB_FILE);
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "07".repeat(32)))
        .unwrap();
    let damaged = conn
        .execute(
            "UPDATE download_pieces SET bytes = zeroblob(length(bytes)) WHERE offset = 0",
            [],
        )
        .unwrap();
    assert_eq!(damaged, 1, "a piece was kept before the cut");
    drop(conn);

    merita.point_at(&server.url);
    let s = intake_client::sync(&mut merita.store, &small(32 << 10), &mut |_| {}).unwrap();
    assert_eq!(s.received, 1, "{s:?}");
    assert_eq!(merita.record(id).get("narrative"), Some(text(long)));
}

#[test]
fn an_older_app_gets_a_large_item_whole_and_version_3_gets_pieces() {
    let server = big_server();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let merita = server.user_device("merita", Role::Supervisor, Some("prizren"));
    let id = drita.create(&[("narrative", text(narrative(100 << 10)))]);
    drita.sync().unwrap();
    for version in [2, 3] {
        let mut req = craft::request(0, vec![], vec![]);
        req.version = version;
        req.page_bytes = 8 << 10;
        let resp = server.sync(Some(&merita.token), &req).response.unwrap();
        if version == 2 {
            assert_eq!(resp.docs.len(), 1);
            assert!(resp.piece.is_none());
        } else {
            let piece = resp.piece.expect("a piece");
            assert!(resp.docs.is_empty() && resp.changes.is_empty());
            assert_eq!((piece.record, piece.offset), (wire(id), 0));
            assert!(piece.bytes.len() <= 8 << 10);
            assert!(resp.more);
            assert_eq!(resp.cursor, 0, "the cursor waits for the last piece");
        }
    }
}

#[test]
fn an_upload_that_does_not_match_its_digest_is_refused_and_dropped() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let mut record = intake_shared::Record::create(
        intake_shared::RecordId::new_v7(1_790_000_000_000, [4; 10]),
        intake_shared::FormRegistry::builtin()
            .get("intake", 1)
            .unwrap(),
        &craft::identity(&drita, "drita", 1),
        chrono::Utc::now(),
    );
    let whole = wire_pieces::encode_upload(&push_of(&mut record, &[]));
    let honest = wire_pieces::digest(&whole);
    let mut lying = honest;
    lying[0] ^= 1;
    let send = |digest, from: usize| {
        let mut req = craft::request(0, vec![], vec![]);
        req.page_bytes = 0;
        req.upload = Some(Piece::of(
            wire(record.id()),
            ItemKind::Push,
            digest,
            &whole,
            from,
            1000,
        ));
        server
            .sync(Some(&drita.token), &req)
            .response
            .unwrap()
            .upload
            .unwrap()
    };
    let mut from = 0;
    let ack = loop {
        let ack = send(lying, from);
        if ack.outcome.is_some() {
            break ack;
        }
        assert_eq!(ack.have as usize, (from + 1000).min(whole.len()));
        from = ack.have as usize;
    };
    assert!(matches!(
        ack.outcome,
        Some(Outcome::Rejected {
            reason: Rejection::Malformed,
            ..
        })
    ));
    assert_eq!(ack.have, 0, "dropped: start over");
    assert!(server.storage.record(record.id()).unwrap().is_none());
    // Honest pieces go through.
    let mut from = 0;
    let ack = loop {
        let ack = send(honest, from);
        if ack.outcome.is_some() {
            break ack;
        }
        from = ack.have as usize;
    };
    assert_eq!(ack.outcome, Some(Outcome::Stored));
    assert!(server.storage.record(record.id()).unwrap().is_some());
}

/// What the store holds of the item being received, read with the raw key.
fn pieces_held(dir: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join(intake_client::store::DB_FILE)).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "07".repeat(32)))
        .unwrap();
    conn.query_row(
        "SELECT coalesce(sum(length(bytes)), 0) FROM download_pieces",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn pieces_survive_sigkill_of_the_syncing_process() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let server = big_server();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let long = narrative(400 << 10);
    let id = drita.create(&[("narrative", text(long.clone()))]);
    drita.sync().unwrap();
    let dir = merita.dir.path().to_path_buf();
    drop(merita.store);

    // Killed after 2, 3, 4… answered round trips: what it held before each kill is
    // still there, and the next process goes on from it.
    let mut held = Vec::new();
    for kill_after in 2..6 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_intake-sync-device"))
            .arg(&dir)
            .arg("07".repeat(32))
            .arg((24 << 10).to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for _ in 0..kill_after {
            lines.next().unwrap().unwrap();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        held.push(pieces_held(&dir));
    }
    assert!(held[0] > 0, "pieces were kept: {held:?}");
    assert!(
        held.windows(2).all(|w| w[1] > w[0]),
        "each process went on from what the last one kept: {held:?}"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_intake-sync-device"))
        .arg(&dir)
        .arg("07".repeat(32))
        .arg((24 << 10).to_string())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let store = Store::open(&dir, &Key::from_bytes([7; 32])).unwrap();
    assert_eq!(store.get(id).unwrap().get("narrative"), Some(text(long)));
    assert_eq!(pieces_held(&dir), 0, "nothing left over");
}

#[test]
fn a_record_too_large_for_the_server_is_refused_alone_and_the_rest_go() {
    let mut settings = Settings::default();
    settings.limits.max_decompressed_bytes = 96 << 10;
    let server = TestServer::start_with(settings);
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    // Created first, so it is first in line.
    let huge = drita.create(&[("narrative", text(narrative(200 << 10)))]);
    let small_ones: Vec<_> = (0..3)
        .map(|i| drita.create(&[("full_name", text(format!("case {i}")))]))
        .collect();
    let s = intake_client::sync(&mut drita.store, &small(32 << 10), &mut |_| {}).unwrap();
    assert_eq!((s.sent, s.refused, s.unsynced), (3, 1, 1), "{s:?}");
    for id in small_ones {
        assert!(server.storage.record(id).unwrap().is_some());
    }
    assert!(server.storage.record(huge).unwrap().is_none());
    let listed = drita.store.list(None).unwrap();
    let why = listed
        .iter()
        .find(|r| r.id == huge.to_string())
        .and_then(|r| r.sync_error.clone())
        .unwrap();
    assert!(why.starts_with("TooLarge"), "{why}");
}
