//! Pages are the size a version 3 device asks for, documents and changes alike, wanted
//! records included (each once); a push can ask for no page at all; and the budgets a
//! device learns on a bad link are kept for its next sync; and a fresh pull stores
//! every record with the list row it loads as.

use chrono::Utc;
use intake_server::storage::Role;
use intake_shared::protocol::{RecordChanges, Resume, SyncResponse};
use intake_shared::{FormRegistry, Record, RecordId, Value};
use intake_tests::craft::{identity, push_of, request, wire};
use intake_tests::proxy::{Fault, FaultConfig, FaultProxy};
use intake_tests::{Enrolled, TestDevice, TestServer};

fn record(dev: &Enrolled, n: u64) -> Record {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let mut r = Record::create(
        RecordId::new_v7(1_790_000_000_000 + n, [n as u8; 10]),
        form,
        &identity(dev, "drita", 9),
        Utc::now(),
    );
    r.edit(Utc::now(), |e| {
        e.set("full_name", Value::Text(format!("Person {n}")))?;
        e.set("narrative", Value::Text(format!("{n} ").repeat(300)))
    })
    .unwrap();
    r
}

/// The bytes of the items a page carries (documents, changes, a piece).
fn items(resp: &SyncResponse) -> usize {
    resp.docs.iter().map(|d| d.doc.len()).sum::<usize>()
        + resp
            .changes
            .iter()
            .flat_map(|c| &c.changes)
            .map(Vec::len)
            .sum::<usize>()
        + resp.piece.as_ref().map_or(0, |p| p.bytes.len())
}

#[test]
fn pages_hold_what_the_device_asked_for_documents_and_changes_alike() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let merita = server.user_device("merita", Role::Supervisor, Some("prizren"));
    let mut records: Vec<Record> = (0..30).map(|n| record(&drita, n)).collect();
    let push: Vec<RecordChanges> = records.iter_mut().map(|r| push_of(r, &[])).collect();
    server.sync(Some(&drita.token), &request(0, push, vec![]));

    const PAGE: u32 = 3000;
    let pull_all = |cursor: u64| {
        let (mut cursor, mut pages, mut seen) = (cursor, 0, 0);
        let mut resume = None;
        loop {
            let mut req = request(cursor, vec![], vec![]);
            req.page_bytes = PAGE;
            req.resume = resume;
            let resp = server.sync(Some(&merita.token), &req).response.unwrap();
            assert!(
                items(&resp) <= PAGE as usize,
                "page {pages}: {}",
                items(&resp)
            );
            seen += resp.docs.len() + resp.changes.iter().map(|c| c.changes.len()).sum::<usize>();
            // An item larger than the page comes in pieces (a device keeps them).
            resume = resp
                .piece
                .as_ref()
                .filter(|p| !p.is_last())
                .map(|p| Resume {
                    digest: p.digest,
                    have: p.offset + p.bytes.len() as u32,
                });
            seen += usize::from(resp.piece.as_ref().is_some_and(|p| p.is_last()));
            pages += 1;
            assert!(pages < 500, "no end");
            cursor = resp.cursor;
            if !resp.more {
                return (cursor, pages, seen);
            }
        }
    };
    // Whole documents for a fresh device.
    let (cursor, pages, seen) = pull_all(0);
    assert_eq!(seen, 30);
    assert!(pages >= 5, "{pages} pages");
    // Then changes.
    let mut edits = Vec::new();
    for r in records.iter_mut() {
        let before = r.heads();
        r.edit(Utc::now(), |e| {
            e.set("narrative", Value::Text("edited ".repeat(100)))
        })
        .unwrap();
        edits.push(push_of(r, &before));
    }
    server.sync(Some(&drita.token), &request(cursor, edits, vec![]));
    let (_, pages, seen) = pull_all(cursor);
    assert_eq!(seen, 30);
    assert!(pages >= 5, "{pages} pages");
}

#[test]
fn wanted_records_are_sent_once_and_within_the_page() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let merita = server.user_device("merita", Role::Supervisor, Some("prizren"));
    let mut records: Vec<Record> = (0..6).map(|n| record(&drita, n)).collect();
    let push: Vec<RecordChanges> = records.iter_mut().map(|r| push_of(r, &[])).collect();
    let head = server
        .sync(Some(&drita.token), &request(0, push, vec![]))
        .response
        .unwrap()
        .cursor;
    let id = wire(records[0].id());
    // The same record asked for three times comes once.
    let mut req = request(head, vec![], vec![id, id, id]);
    req.page_bytes = 1 << 20;
    let resp = server.sync(Some(&merita.token), &req).response.unwrap();
    assert_eq!(resp.docs.len(), 1);
    // Six asked for with room for about two: the rest wait for the next page, and
    // the cursor waits too.
    let all: Vec<[u8; 16]> = records.iter().map(|r| wire(r.id())).collect();
    let mut got = Vec::new();
    let mut rounds = 0;
    while got.len() < all.len() {
        let wanted: Vec<_> = all.iter().filter(|w| !got.contains(*w)).copied().collect();
        let mut req = request(head, vec![], wanted);
        req.page_bytes = 2000;
        let resp = server.sync(Some(&merita.token), &req).response.unwrap();
        assert!(items(&resp) <= 2000, "{}", items(&resp));
        assert_eq!(resp.cursor, head);
        assert_eq!(resp.more, got.len() + resp.docs.len() < all.len());
        got.extend(resp.docs.iter().map(|d| d.record));
        rounds += 1;
        assert!(rounds < 10);
    }
    assert!(rounds >= 3, "{rounds} rounds");
}

#[test]
fn a_push_can_ask_for_no_page() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let merita = server.user_device("merita", Role::Supervisor, Some("prizren"));
    let mut theirs = record(&drita, 1);
    server.sync(
        Some(&drita.token),
        &request(0, vec![push_of(&mut theirs, &[])], vec![]),
    );
    let mut mine = record(&merita, 2);
    let mut req = request(0, vec![push_of(&mut mine, &[])], vec![]);
    req.page_bytes = 0;
    let resp = server.sync(Some(&merita.token), &req).response.unwrap();
    assert!(resp.docs.is_empty() && resp.changes.is_empty() && !resp.more);
    assert_eq!(resp.cursor, 0);
    assert_eq!(resp.results.len(), 1);
}

#[test]
fn budgets_learned_on_a_bad_link_are_kept_for_the_next_sync() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    for i in 0..5 {
        drita.create(&[("full_name", Value::Text(format!("case {i}")))]);
    }
    let proxy = FaultProxy::start(
        server.url.trim_start_matches("http://").parse().unwrap(),
        FaultConfig {
            fault_rate: 0.0,
            seed: 2,
        },
    );
    // Three cuts in a row, then the link holds.
    proxy.script([
        Some(Fault::CutRequest),
        Some(Fault::CutResponse),
        Some(Fault::CutRequest),
    ]);
    drita.point_at(&proxy.url());
    let s = drita.sync().unwrap();
    assert_eq!(s.retries, 3);
    let learned = drita.store.budgets().unwrap().unwrap();
    let max = intake_client::SyncOptions::default();
    assert!(
        (learned.page as usize) < max.page_bytes as usize / 2
            && (learned.push as usize) < max.push_bytes / 2,
        "{learned:?}"
    );
    // The next sync starts there, and answers grow them back.
    drita.create(&[("full_name", Value::Text("one more".into()))]);
    drita.sync().unwrap();
    let after = drita.store.budgets().unwrap().unwrap();
    assert!(
        after.page > learned.page && after.push > learned.push,
        "{after:?}"
    );
}

/// What a device's list shows of every record it holds, by id, without the time each
/// row was written (a device's own clock).
fn list_rows(device: &TestDevice) -> Vec<intake_client::Summary> {
    let mut rows = device.store.list(None).unwrap();
    for row in &mut rows {
        row.updated_at.clear();
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows
}

/// Issue 16: a page's records new to the device are loaded on every core before they
/// are stored. Each must still be stored only as it loads, with the list row it loads
/// as, whether it came whole in the first pull or as changes later, beside records the
/// device merges.
#[test]
fn a_fresh_pull_stores_every_record_with_the_row_it_loads_as() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let municipalities = ["prizren", "decan", "dragash"];
    let urgencies = ["low", "medium", "high"];
    let create = |drita: &mut TestDevice, n: usize| {
        drita.create(&[
            ("full_name", Value::Text(format!("Person {n}"))),
            ("municipality", Value::Text(municipalities[n % 3].into())),
            ("urgency", Value::Text(urgencies[(n / 3) % 3].into())),
            (
                "summary",
                Value::Text(format!("case {n}: {}", "words ".repeat(n % 7))),
            ),
        ])
    };
    // Enough records for a page to be loaded on several threads (16 a thread at least).
    let ids: Vec<RecordId> = (0..48).map(|n| create(&mut drita, n)).collect();
    // Some with a second change: stored on the server as documents, not as one change.
    for id in ids.iter().step_by(6) {
        drita.edit(*id, |e| e.set("full_name", Value::Text("Renamed".into())));
    }
    drita.sync().unwrap();

    let first = merita.sync().unwrap();
    assert_eq!(first.received, 48);
    assert_eq!(list_rows(&merita), list_rows(&drita));
    for id in &ids {
        assert_eq!(merita.record(*id).heads(), drita.record(*id).heads());
    }

    // Then a page of changes: edits of records the supervisor holds (merged) and new
    // records (their whole history as changes, stored as they came).
    for id in &ids[..5] {
        drita.edit(*id, |e| e.set("urgency", Value::Text("high".into())));
    }
    let more: Vec<RecordId> = (48..80).map(|n| create(&mut drita, n)).collect();
    drita.sync().unwrap();
    let second = merita.sync().unwrap();
    assert_eq!(second.received, 5 + 32);
    assert_eq!(list_rows(&merita), list_rows(&drita));
    for id in ids.iter().chain(&more) {
        assert_eq!(merita.record(*id).heads(), drita.record(*id).heads());
    }
}
