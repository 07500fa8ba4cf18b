//! A pull asks for its next page while it commits the last (issue 16): the request for
//! page n+1 goes out between page n's arrival and its commit, yet the cursor is saved
//! only with page n's records. A device that dies with a page asked ahead holds what it
//! had committed, and its next sync pulls the uncommitted page again: nothing skipped,
//! nothing twice.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use intake_client::sync::{Observer, Received, Sending};
use intake_client::{Key, Store, SyncOptions};
use intake_server::storage::Role;
use intake_shared::RecordId;
use intake_tests::craft::text;
use intake_tests::{TestDevice, TestServer};

/// Small pages: a pull of the records below takes many round trips.
const PAGE_BYTES: u32 = 4096;
const RECORDS: usize = 60;

/// What a sync did, in order: requests going out, answers arriving, pages committed
/// (the progress callback runs after each commit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Sent,
    Arrived,
    /// A page that removed records arrived.
    ArrivedRemoving,
    Committed,
}

/// Logs events; panics (as a process killed there would stop) at the `die_at`-th
/// request sent before the page that arrived last is committed.
struct Log<'a> {
    events: &'a RefCell<Vec<Event>>,
    die_at: Option<usize>,
    ahead: usize,
}

impl Observer for Log<'_> {
    fn sending(&mut self, _request: &Sending) {
        let ahead = self.events.borrow().last() == Some(&Event::Arrived);
        self.events.borrow_mut().push(Event::Sent);
        if ahead {
            self.ahead += 1;
            if Some(self.ahead) == self.die_at {
                panic!("killed with a page asked ahead");
            }
        }
    }

    fn received(&mut self, answer: &Received) {
        self.events.borrow_mut().push(if answer.removed > 0 {
            Event::ArrivedRemoving
        } else {
            Event::Arrived
        });
    }
}

fn options() -> SyncOptions {
    SyncOptions {
        page_bytes: PAGE_BYTES,
        ..SyncOptions::default()
    }
}

/// A paralegal's device holding `RECORDS` synced records, and a fresh supervisor's.
fn setup(server: &TestServer) -> (TestDevice, TestDevice, Vec<RecordId>) {
    let mut drita = TestDevice::enroll(server, "drita", Role::Paralegal, Some("prizren"));
    let merita = TestDevice::enroll(server, "merita", Role::Supervisor, Some("prizren"));
    let ids = drita.create_cases(RECORDS);
    drita.sync().unwrap();
    (drita, merita, ids)
}

/// What one watched pull did.
struct Pulled {
    /// What the sync returned; `None` if it died (the observer panicked).
    summary: Option<intake_client::SyncSummary>,
    /// Records the committed pages brought.
    received: usize,
    events: Vec<Event>,
    /// Requests sent ahead of a commit.
    ahead: usize,
}

/// Pulls with every request, answer and commit logged, dying at the `die_at`-th request
/// sent ahead (see [`Log`]).
fn pull(device: &mut TestDevice, die_at: Option<usize>) -> Pulled {
    let events = RefCell::new(Vec::new());
    let mut log = Log {
        events: &events,
        die_at,
        ahead: 0,
    };
    let received = RefCell::new(0);
    let summary = catch_unwind(AssertUnwindSafe(|| {
        intake_client::sync_observed(
            &mut device.store,
            &options(),
            &mut |p| {
                events.borrow_mut().push(Event::Committed);
                *received.borrow_mut() = p.summary.received;
            },
            &mut log,
        )
        .unwrap()
    }))
    .ok();
    let ahead = log.ahead;
    Pulled {
        summary,
        received: received.into_inner(),
        events: events.into_inner(),
        ahead,
    }
}

fn assert_holds_all(merita: &TestDevice, drita: &TestDevice, ids: &[RecordId]) {
    assert_eq!(merita.store.list(None).unwrap().len(), ids.len());
    for id in ids {
        assert_eq!(merita.record(*id).heads(), drita.record(*id).heads());
    }
}

#[test]
fn a_pull_asks_for_the_next_page_before_committing_the_last_and_loses_nothing() {
    let server = TestServer::start();
    let (drita, mut merita, ids) = setup(&server);
    let Pulled {
        summary,
        events,
        ahead,
        ..
    } = pull(&mut merita, None);
    let summary = summary.expect("the pull finished");
    let pages = events.iter().filter(|e| **e == Event::Committed).count();
    assert!(pages >= 5, "a pull of {pages} pages proves nothing here");
    // Every page but the first was asked for while the one before it was committed.
    assert_eq!(ahead, pages - 1, "requests sent ahead: {events:?}");
    // And each was used: one request a page, none thrown away.
    assert_eq!(summary.requests, pages);
    assert_eq!(events.iter().filter(|e| **e == Event::Sent).count(), pages);
    assert_eq!(summary.received, RECORDS);
    assert_holds_all(&merita, &drita, &ids);
}

#[test]
fn a_device_killed_with_a_page_asked_ahead_pulls_that_page_again() {
    let server = TestServer::start();
    let (drita, mut merita, ids) = setup(&server);
    // Killed twice: at the first request sent ahead (page 1 arrived, not committed),
    // then in the next sync at the third (two pages committed, the third not).
    let mut held = 0;
    for die_at in [1, 3] {
        let Pulled {
            summary,
            received: committed,
            events,
            ..
        } = pull(&mut merita, Some(die_at));
        assert!(
            summary.is_none(),
            "the sync did not reach request {die_at} sent ahead"
        );
        // Opened again as after a kill, the store holds the pages committed and no
        // more: the records of the page whose next page was asked for are not there,
        // nor is a cursor past them.
        let TestDevice { name, store, dir } = merita;
        drop(store);
        let store = Store::open(dir.path(), &Key::from_bytes([7; 32])).unwrap();
        merita = TestDevice { name, store, dir };
        let now = merita.store.list(None).unwrap().len();
        assert_eq!(now, held + committed, "die_at {die_at}: {events:?}");
        assert!(now < RECORDS);
        held = now;
    }
    assert!(held > 0, "the second kill came after pages were committed");
    let summary = pull(&mut merita, None).summary.expect("the pull finished");
    // Exactly the records not committed before come, the page that was being
    // committed at each kill included: none skipped, none twice.
    assert_eq!(summary.received, RECORDS - held);
    assert_holds_all(&merita, &drita, &ids);
}

/// The server takes a request's cursor as every page before it committed, and ends
/// the grace of records those pages removed (a device may still deliver its edits of
/// them until then): so the page after one that removed records is never asked for
/// before that page is committed.
#[test]
fn no_page_is_asked_for_ahead_of_a_page_that_removed_records() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    server.add_user("ajshe", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let assigned = |merita: &mut TestDevice, n: usize| {
        let id = merita.create(&[
            ("full_name", text(format!("Person {n}"))),
            (
                "summary",
                text(format!("case {n}: {}", "words ".repeat(40))),
            ),
        ]);
        merita.edit(id, |e| e.assign("drita"));
        id
    };
    let first: Vec<RecordId> = (0..20).map(|n| assigned(&mut merita, n)).collect();
    merita.sync().unwrap();
    drita.sync().unwrap();
    assert!(first.iter().all(|id| drita.has(*id)));

    // Records leave her sight between pages of new ones.
    let mut later = Vec::new();
    for (k, id) in first.iter().take(3).enumerate() {
        later.extend((0..15).map(|n| assigned(&mut merita, 100 * (k + 1) + n)));
        merita.edit(*id, |e| e.assign("ajshe"));
        merita.sync().unwrap();
    }
    later.extend((0..15).map(|n| assigned(&mut merita, 900 + n)));
    merita.sync().unwrap();

    let Pulled {
        summary,
        events,
        ahead,
        ..
    } = pull(&mut drita, None);
    let summary = summary.expect("the pull finished");
    assert_eq!(summary.removed, 3, "{events:?}");
    assert!(events.contains(&Event::ArrivedRemoving), "{events:?}");
    assert!(ahead > 0, "pages were asked for ahead: {events:?}");
    for (i, e) in events.iter().enumerate() {
        if *e == Event::ArrivedRemoving {
            assert_eq!(events[i + 1], Event::Committed, "at {i}: {events:?}");
        }
    }
    assert!(first.iter().take(3).all(|id| !drita.has(*id)));
    assert!(later.iter().all(|id| drita.has(*id)));
}
