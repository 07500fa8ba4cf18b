//! The sync endpoint end to end with the real server: pushing new records and edits,
//! pulling them on another device (whole documents first, then changes by cursor),
//! paging by byte budget, idempotent replays.

use chrono::Utc;
use intake_server::storage::Role;
use intake_shared::protocol::{Outcome, PROTOCOL_VERSION, RecordChanges, SyncRequest};
use intake_shared::{FormRegistry, Record, RecordId, Value};
use intake_tests::craft::{identity, push_of};
use intake_tests::{Enrolled, TestServer};

fn new_record(dev: &Enrolled, name: &str, n: u64) -> Record {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let mut r = Record::create(
        RecordId::new_v7(1_790_000_000_000 + n, [n as u8; 10]),
        form,
        &identity(dev, name, 0x0102_0304),
        Utc::now(),
    );
    r.edit(Utc::now(), |e| {
        e.set("full_name", Value::Text(format!("Person {n}")))?;
        e.set("urgency", Value::Text("high".into()))
    })
    .unwrap();
    r
}

fn request(cursor: u64, push: Vec<RecordChanges>) -> SyncRequest {
    SyncRequest {
        version: PROTOCOL_VERSION,
        cursor,
        page_bytes: 1 << 20,
        push,
        want_docs: vec![],
        // Pulled changes whole: these tests compare them as they come.
        full_deps: true,
        ..SyncRequest::default()
    }
}

#[test]
fn a_paralegals_records_reach_her_supervisor_and_edits_follow() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let merita = server.user_device("merita", Role::Supervisor, Some("prizren"));
    let mut records: Vec<Record> = (0..5).map(|n| new_record(&drita, "drita", n)).collect();
    let push: Vec<_> = records.iter_mut().map(|r| push_of(r, &[])).collect();
    let reply = server.sync(Some(&drita.token), &request(0, push));
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let resp = reply.response.unwrap();
    assert!(
        resp.results.iter().all(|r| r.outcome == Outcome::Stored),
        "{:?}",
        resp.results
    );

    // A fresh supervisor device gets whole documents.
    let reply = server.sync(Some(&merita.token), &request(0, vec![]));
    let resp = reply.response.unwrap();
    assert_eq!(resp.docs.len(), 5);
    assert!(!resp.more);
    let cursor = resp.cursor;
    let mut copies: Vec<Record> = resp
        .docs
        .iter()
        .map(|d| Record::load(&d.doc, FormRegistry::builtin()).unwrap())
        .collect();

    // An edit travels as a change, by cursor.
    let before = records[0].heads();
    records[0]
        .edit(Utc::now(), |e| {
            e.set("urgency", Value::Text("critical".into()))
        })
        .unwrap();
    let push = push_of(&mut records[0], &before);
    let resp = server
        .sync(Some(&drita.token), &request(cursor, vec![push.clone()]))
        .response
        .unwrap();
    assert!(
        resp.changes.is_empty(),
        "a device does not get its own changes back"
    );
    let resp = server
        .sync(Some(&merita.token), &request(cursor, vec![]))
        .response
        .unwrap();
    assert_eq!(resp.changes.len(), 1);
    let target = copies
        .iter_mut()
        .find(|c| c.id() == records[0].id())
        .unwrap();
    for c in &resp.changes[0].changes {
        target.apply(c).unwrap();
    }
    assert_eq!(target.heads(), records[0].heads());
    assert_eq!(target.get("urgency"), Some(Value::Text("critical".into())));

    // Replaying the push changes nothing; a no-op sync returns nothing.
    let again = server
        .sync(Some(&drita.token), &request(resp.cursor, vec![push]))
        .response
        .unwrap();
    assert_eq!(again.results[0].outcome, Outcome::Stored);
    let noop = server
        .sync(Some(&merita.token), &request(resp.cursor, vec![]))
        .response
        .unwrap();
    assert!(noop.changes.is_empty() && noop.docs.is_empty());
    assert_eq!(noop.cursor, resp.cursor);
}

#[test]
fn pages_follow_the_byte_budget_and_resume_by_cursor() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let merita = server.user_device("merita", Role::Supervisor, Some("prizren"));
    let mut records: Vec<Record> = (0..20).map(|n| new_record(&drita, "drita", n)).collect();
    let push: Vec<_> = records.iter_mut().map(|r| push_of(r, &[])).collect();
    server.sync(Some(&drita.token), &request(0, push));
    // What a page's budget counts (the server's `PAGE_ITEM_COST`): each document's
    // bytes and 20 for its framing.
    const ITEM_COST: usize = 20;
    const BUDGET: usize = 2048;
    let mut cursor = 0;
    let mut pages: Vec<Vec<usize>> = Vec::new();
    let mut got: Vec<[u8; 16]> = Vec::new();
    loop {
        let mut req = request(cursor, vec![]);
        req.page_bytes = BUDGET as u32;
        let reply = server.sync(Some(&merita.token), &req);
        let resp = reply.response.unwrap();
        let sizes: Vec<usize> = resp.docs.iter().map(|d| d.doc.len() + ITEM_COST).collect();
        let used: usize = sizes.iter().sum();
        let n = pages.len();
        assert!(
            resp.piece.is_none(),
            "page {n}: no item is larger than the page"
        );
        // Within the budget, counted as the server counts it and as encoded on the
        // wire (the answer's own fields add a few bytes), unless one item alone is
        // larger than the budget.
        if sizes.len() > 1 {
            assert!(used <= BUDGET, "page {n}: {used} bytes of items");
            assert!(
                reply.body.len() <= BUDGET + 64,
                "page {n}: {} bytes encoded",
                reply.body.len()
            );
        }
        assert!(
            !(resp.more && sizes.is_empty()),
            "page {n} is empty but says more"
        );
        got.extend(resp.docs.iter().map(|d| d.record));
        pages.push(sizes);
        cursor = resp.cursor;
        if !resp.more {
            break;
        }
    }
    // Each record exactly once.
    let distinct: std::collections::BTreeSet<_> = got.iter().collect();
    assert_eq!(distinct.len(), 20, "every record arrives");
    assert_eq!(got.len(), 20, "no record arrives twice");
    // Pages are filled: a page ends only where the next page's first item would not
    // have fit in it.
    for (n, pair) in pages.windows(2).enumerate() {
        let used: usize = pair[0].iter().sum();
        let next = pair[1][0];
        assert!(
            used + next > BUDGET,
            "page {n} ({used} bytes) ended although the next item ({next}) fit"
        );
    }
    assert!(
        pages.len() > 3,
        "a small budget means several pages ({})",
        pages.len()
    );
    eprintln!("page item bytes: {pages:?}");
}

#[test]
fn each_version_is_answered_in_its_own_layout() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let mut ok = new_record(&drita, "drita", 1);
    let mut foreign = new_record(&drita, "drita", 2);
    // Pushed under another record's id: refused.
    let mut wrong = push_of(&mut foreign, &[]);
    wrong.record = [9; 16];
    for version in [1, 2, 3] {
        let mut req = request(0, vec![push_of(&mut ok, &[]), wrong.clone()]);
        req.version = version;
        let reply = server.sync(Some(&drita.token), &req);
        let resp = reply.response.unwrap();
        assert_eq!(resp.version, version);
        assert_eq!(resp.results[0].outcome, Outcome::Stored);
        assert!(matches!(resp.results[1].outcome, Outcome::Rejected { .. }));
        // Version 1 repeats every pushed id; versions 2 and 3 name refusals by index.
        let ok_id = ok.id();
        let contains_id = reply
            .body
            .windows(16)
            .any(|w| w == ok_id.as_uuid().as_bytes());
        assert_eq!(contains_id, version == 1, "version {version}");
    }
}
