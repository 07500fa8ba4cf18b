//! A push sends the next push while the server stores the last (issue 16): push n+1 is
//! read from the store, compressed and sent before push n is answered, yet each answer
//! is committed alone and in order. A device that dies with pushes out holds exactly
//! what it committed; its next sync pushes the rest again, the server keeps each
//! change once, and the cursor never goes back.

use std::panic::{AssertUnwindSafe, catch_unwind};

use intake_client::sync::{Observer, Received, Sending};
use intake_client::{Key, Store, SyncOptions, SyncSummary};
use intake_server::config::{Limits, Settings};
use intake_server::gate::HEAVY_BODY_BYTES;
use intake_server::storage::Role;
use intake_shared::{RecordId, Value};
use intake_tests::craft::random_text;
use intake_tests::{TestDevice, TestServer};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Small pushes: the records below take many of them.
const PUSH_BYTES: usize = 4096;
const RECORDS: usize = 60;

/// Counts requests out and answers in; panics (as a process killed there would stop)
/// when the `die_at`-th answer arrives while another request is out, before it is
/// committed.
struct Log {
    out: usize,
    /// Requests sent while another was out.
    ahead: usize,
    /// Answers that arrived while another request was out.
    overlapped: usize,
    die_at: Option<usize>,
}

impl Observer for Log {
    fn sending(&mut self, request: &Sending) {
        assert!(request.push_records > 0, "only pushes in these syncs");
        if self.out > 0 {
            self.ahead += 1;
        }
        self.out += 1;
    }

    fn received(&mut self, _answer: &Received) {
        self.out -= 1;
        if self.out > 0 {
            self.overlapped += 1;
            if Some(self.overlapped) == self.die_at {
                panic!("killed with a push out");
            }
        }
    }
}

fn options() -> SyncOptions {
    options_of(PUSH_BYTES)
}

fn options_of(push_bytes: usize) -> SyncOptions {
    SyncOptions {
        push_bytes,
        ..SyncOptions::default()
    }
}

/// A paralegal's device holding `RECORDS` records made offline.
fn offline_device(server: &TestServer) -> (TestDevice, Vec<RecordId>) {
    let mut drita = TestDevice::enroll(server, "drita", Role::Paralegal, Some("prizren"));
    let ids = drita.create_cases(RECORDS);
    (drita, ids)
}

/// One watched sync: what it returned (`None` if it died) and what the log saw.
fn push(device: &mut TestDevice, die_at: Option<usize>) -> (Option<SyncSummary>, Log) {
    push_with(device, &options(), die_at)
}

fn push_with(
    device: &mut TestDevice,
    options: &SyncOptions,
    die_at: Option<usize>,
) -> (Option<SyncSummary>, Log) {
    let mut log = Log {
        out: 0,
        ahead: 0,
        overlapped: 0,
        die_at,
    };
    let summary = catch_unwind(AssertUnwindSafe(|| {
        intake_client::sync_observed(&mut device.store, options, &mut |_| {}, &mut log).unwrap()
    }))
    .ok();
    (summary, log)
}

/// The server holds every record as the device does, and the device nothing unsynced.
fn assert_all_on_server(server: &TestServer, drita: &TestDevice, ids: &[RecordId]) {
    for id in ids {
        let stored = server.storage.record(*id).unwrap().expect("on the server");
        assert_eq!(stored.heads, drita.record(*id).heads().concat());
    }
    assert_eq!(drita.store.unsynced().unwrap(), 0);
}

#[test]
fn a_push_goes_out_while_the_last_is_stored_and_nothing_is_lost() {
    let server = TestServer::start();
    let (mut drita, ids) = offline_device(&server);
    let (summary, log) = push(&mut drita, None);
    let summary = summary.expect("the sync finished");
    assert!(
        summary.requests >= 5,
        "{} pushes prove nothing here",
        summary.requests
    );
    // Every push but the first went out while the one before it was being stored, and
    // none was thrown away: one request a push.
    assert_eq!(log.ahead, summary.requests - 1, "{summary:?}");
    assert_eq!(summary.sent, RECORDS);
    assert_eq!(summary.refused, 0);
    assert_all_on_server(&server, &drita, &ids);
    // The pushes sent ahead asked for no page, and their answers did not take the
    // cursor back to where they were built (before the first push's page moved it):
    // the next sync pulls on from there, and finds nothing but the device's own.
    let cursor = drita.store.cursor().unwrap();
    assert!(
        cursor > 0,
        "the cursor went back to where the pushes were built"
    );
    let again = drita.sync().unwrap();
    assert_eq!((again.requests, again.sent, again.received), (1, 0, 0));
    assert!(drita.store.cursor().unwrap() >= cursor);
}

#[test]
fn a_device_killed_with_pushes_out_pushes_them_again_and_the_server_keeps_each_once() {
    let server = TestServer::start();
    let (mut drita, ids) = offline_device(&server);
    // Killed when the second answer arrives with a push still out: that answer and
    // the one still out reached the server, and the device committed neither.
    let (summary, log) = push(&mut drita, Some(2));
    assert!(summary.is_none(), "the sync was not killed: {}", log.ahead);
    let TestDevice { name, store, dir } = drita;
    drop(store);
    let store = Store::open(dir.path(), &Key::from_bytes([7; 32])).unwrap();
    drita = TestDevice { name, store, dir };
    let left = drita.store.unsynced().unwrap();
    assert!(
        left > 0 && left < RECORDS,
        "{left} records unsynced after the kill"
    );
    let on_server = ids
        .iter()
        .filter(|id| server.storage.record(**id).unwrap().is_some())
        .count();
    assert!(
        on_server > RECORDS - left,
        "the server stored pushes the device never committed ({on_server} on it, \
         {left} unsynced here)"
    );

    let summary = drita.sync().unwrap();
    // Exactly what was not committed goes again, each accepted: the server ignores
    // what it already has.
    assert_eq!(summary.sent, left, "{summary:?}");
    assert_eq!(summary.refused, 0);
    assert_all_on_server(&server, &drita, &ids);
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let pulled = merita.sync().unwrap();
    assert_eq!(pulled.received, RECORDS);
    for id in &ids {
        assert_eq!(merita.record(*id).heads(), drita.record(*id).heads());
    }
}

#[test]
fn a_push_sent_ahead_waits_for_its_own_device_on_a_server_of_one_permit() {
    // One heavy sync at a time on this server. A device's push sent ahead arrives
    // while its push before holds that permit: it waits for it, and is not refused.
    let server = TestServer::start_with(Settings {
        limits: Limits {
            max_heavy_syncs: 1,
            ..Limits::default()
        },
        ..Settings::default()
    });
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    // Letters at random: about 3 KB a record however compressed, so that each push of
    // 128 KiB is heavy (over 64 KiB as sent).
    let mut rng = StdRng::seed_from_u64(16);
    let ids: Vec<RecordId> = (0..72)
        .map(|n| {
            drita.create(&[
                ("full_name", Value::Text(format!("Person {n}"))),
                ("narrative", Value::Text(random_text(&mut rng, 5_000))),
            ])
        })
        .collect();
    let (summary, log) = push_with(&mut drita, &options_of(128 << 10), None);
    let summary = summary.expect("the sync finished");
    assert!(summary.requests >= 3, "{summary:?}");
    assert!(
        summary.bytes_up > summary.requests * HEAVY_BODY_BYTES,
        "the pushes were not heavy: {summary:?}"
    );
    assert_eq!(log.ahead, summary.requests - 1, "{summary:?}");
    // No push was answered busy (and none waited the two seconds that asks).
    assert_eq!(summary.retries, 0, "{summary:?}");
    assert_eq!(summary.sent, ids.len());
    assert_all_on_server(&server, &drita, &ids);
}

#[test]
fn a_record_a_page_changes_while_its_push_is_out_ends_the_sync_synced() {
    // Drita's records are on the server; a supervisor edits every fifth. Drita then
    // edits every record offline: her sync pushes them in many pushes, and the page of
    // the first brings the supervisor's edits, some of records in the push already
    // sent ahead. That push pushed heads those records no longer have: it is not
    // taken, and they go again with what they hold now. The sync ends with nothing
    // unsynced and the server holding what Drita holds.
    let server = TestServer::start();
    let (mut drita, ids) = offline_device(&server);
    assert_eq!(drita.sync().unwrap().unsynced, 0);
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    merita.sync().unwrap();
    let edited: Vec<RecordId> = ids.iter().copied().step_by(5).collect();
    for id in &edited {
        merita.edit(*id, |e| e.set("urgency", Value::Text("high".into())));
    }
    assert_eq!(merita.sync().unwrap().sent, edited.len());

    for id in &ids {
        drita.edit(*id, |e| {
            e.set("phone", Value::Text(format!("+383 44 {id}")))
        });
    }
    let (summary, log) = push(&mut drita, None);
    let summary = summary.expect("the sync finished");
    assert!(log.ahead > 0, "no push went ahead: {summary:?}");
    assert_eq!(summary.received, edited.len(), "{summary:?}");
    assert_eq!((summary.unsynced, summary.refused), (0, 0), "{summary:?}");
    assert_all_on_server(&server, &drita, &ids);
    for id in &edited {
        assert_eq!(
            drita.record(*id).get("urgency"),
            Some(Value::Text("high".into()))
        );
    }
}
