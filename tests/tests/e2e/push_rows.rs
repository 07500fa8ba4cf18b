//! What a device pushes: the change rows it saved, without loading records, and the
//! whole history where those rows are not the whole story — after a compaction folded
//! unpushed edits into a snapshot, or when the server lacks history the device thought
//! it had, or a store written before rows were marked. Either way the server ends up
//! with exactly what the device holds.

use intake_client::store::COMPACT_AFTER;
use intake_server::storage::Role;
use intake_shared::{RecordId, Value};
use intake_tests::craft::text;
use intake_tests::{TestDevice, TestServer};

/// The heads the server stores for a record.
fn server_heads(server: &TestServer, id: RecordId) -> Vec<u8> {
    server
        .storage
        .record(id)
        .unwrap()
        .expect("the server has the record")
        .heads
}

fn device_heads(device: &TestDevice, id: RecordId) -> Vec<u8> {
    device.record(id).heads().concat()
}

#[test]
fn offline_edits_reach_the_server_whole_even_after_compaction() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));

    let synced = drita.create(&[("full_name", text("Drita Krasniqi"))]);
    assert_eq!(drita.sync().unwrap().sent, 1);

    // Offline: enough edits of one record to compact it with unpushed changes inside
    // the snapshot, a new record edited a few times (several rows), and a record left
    // alone.
    let edits = COMPACT_AFTER + 8;
    for i in 0..edits {
        drita.edit(synced, |e| e.set("household_size", Value::Int(i % 20 + 1)));
    }
    // A narrative that does not compress to nothing: were its creating change sent
    // again with a later edit, that push would be kilobytes, not one small change.
    let words = [
        "school", "office", "birth", "paper", "refused", "teacher", "village",
    ];
    let narrative: Vec<&str> = (0..400u64)
        .map(|i| words[(i.wrapping_mul(2654435761) >> 7) as usize % words.len()])
        .collect();
    let fresh = drita.create(&[
        ("full_name", text("Jelena Jovanović")),
        ("narrative", text(narrative.join(" "))),
    ]);
    drita.edit(fresh, |e| e.set("urgency", text("high")));
    drita.edit(fresh, |e| e.add_comment("met at the school"));
    let untouched = drita.create(&[("full_name", text("Emine Shala"))]);

    let s = drita.sync().unwrap();
    assert_eq!((s.sent, s.refused, s.unsynced), (3, 0, 0), "{s:?}");
    assert_eq!(s.requests, 1, "nothing refused, nothing sent twice");
    for id in [synced, fresh, untouched] {
        assert_eq!(server_heads(&server, id), device_heads(&drita, id));
    }
    // Everything acknowledged is pushed once: the next sync sends nothing.
    assert_eq!(drita.sync().unwrap().sent, 0);

    // One more edit travels alone, as one small change.
    drita.edit(synced, |e| e.set("urgency", text("critical")));
    let s = drita.sync().unwrap();
    assert_eq!(s.sent, 1);
    assert!(s.bytes_up < 600, "{} bytes up for one edit", s.bytes_up);
    assert_eq!(server_heads(&server, synced), device_heads(&drita, synced));
    // And so does an edit of a record whose saved rows were pushed as they were: only
    // the rows after those the server acknowledged go.
    drita.edit(fresh, |e| e.set("urgency", text("critical")));
    let s = drita.sync().unwrap();
    assert_eq!(s.sent, 1);
    assert!(s.bytes_up < 600, "{} bytes up for one edit", s.bytes_up);
    assert_eq!(server_heads(&server, fresh), device_heads(&drita, fresh));

    merita.sync().unwrap();
    let r = merita.record(synced);
    assert_eq!(
        r.get("household_size"),
        Some(Value::Int((edits - 1) % 20 + 1))
    );
    assert_eq!(r.get("urgency"), Some(text("critical")));
    assert_eq!(merita.record(fresh).comments().len(), 1);
    assert_eq!(merita.record(fresh).get("urgency"), Some(text("critical")));
}

#[test]
fn a_server_lacking_history_is_sent_the_whole_record() {
    // The device syncs a record, edits it, and then meets a server that never had it
    // (as after a restore from an old backup). Its edit alone cannot be stored; the
    // device sends the whole history in the same sync.
    let old = TestServer::start();
    let mut drita = TestDevice::enroll(&old, "drita", Role::Paralegal, Some("prizren"));
    let id = drita.create(&[("full_name", text("Drita Krasniqi"))]);
    drita.sync().unwrap();
    drita.edit(id, |e| e.set("urgency", text("high")));

    let new = TestServer::start();
    let code = new.add_user("drita", Role::Paralegal, Some("prizren"));
    let actor: [u8; 16] = drita.store.device_actor_prefix().try_into().unwrap();
    let enrolled = new.enroll(&code, actor);
    let mut e = drita.store.enrolment().unwrap().unwrap();
    e.server = new.url.clone();
    e.token = enrolled.token;
    drita.store.set_enrolment(&e).unwrap();

    let s = drita.sync().unwrap();
    assert_eq!((s.sent, s.refused, s.unsynced), (1, 0, 0), "{s:?}");
    assert_eq!(s.requests, 2, "the refused edit, then the whole record");
    assert_eq!(server_heads(&new, id), device_heads(&drita, id));
    assert_eq!(drita.store.list(None).unwrap()[0].sync_error, None);
}

#[test]
fn a_store_from_before_push_rows_pushes_what_was_waiting_whole() {
    // A store written by the app before schema 3 has no `unpushed` marks: its rows
    // cannot tell what the server has. Its waiting records are pushed whole, once.
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let synced = drita.create(&[("full_name", text("Drita Krasniqi"))]);
    drita.sync().unwrap();
    drita.edit(synced, |e| e.set("urgency", text("high")));
    let fresh = drita.create(&[("full_name", text("Jelena Jovanović"))]);
    drita.edit(fresh, |e| e.set("urgency", text("low")));

    // Take the store back to schema 2, as the previous app left it.
    let dir = drita.dir.path().to_path_buf();
    let key = intake_client::Key::from_bytes([7; 32]);
    // Close the real store while its schema is changed (a scratch one stands in).
    let scratch = tempfile::tempdir().unwrap();
    drita.store = intake_client::Store::open(scratch.path(), &key).unwrap();
    let conn = rusqlite::Connection::open(dir.join(intake_client::store::DB_FILE)).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{}'\";
         DROP TABLE wanted; DROP TABLE download; DROP TABLE download_pieces; DROP TABLE receipts;
         ALTER TABLE records DROP COLUMN removal;
         ALTER TABLE changes DROP COLUMN unpushed;
         ALTER TABLE records DROP COLUMN push_all;
         ALTER TABLE records DROP COLUMN pushed_seq;
         PRAGMA user_version = 2;",
        "07".repeat(32)
    ))
    .unwrap();
    drop(conn);
    drita.store = intake_client::Store::open(&dir, &key).unwrap();
    assert_eq!(drita.store.unsynced().unwrap(), 2);
    // An edit after the upgrade is a marked row; the edit before it is not.
    drita.edit(synced, |e| e.set("phone", text("+383 44 000 001")));

    let s = drita.sync().unwrap();
    assert_eq!((s.sent, s.refused, s.unsynced), (2, 0, 0), "{s:?}");
    assert_eq!(s.requests, 1, "nothing refused for lack of history");
    for id in [synced, fresh] {
        assert_eq!(server_heads(&server, id), device_heads(&drita, id));
    }
    // From then on, rows: the next edit travels alone.
    drita.edit(fresh, |e| e.set("urgency", text("critical")));
    let s = drita.sync().unwrap();
    assert_eq!(s.sent, 1);
    assert!(s.bytes_up < 600, "{} bytes up for one edit", s.bytes_up);
}
