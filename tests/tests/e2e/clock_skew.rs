//! Clock skew (issue 13): five devices of one paralegal, whose clocks are correct, a
//! year ahead, a year behind, five hours ahead and three hours behind, create and edit
//! the same records through the real server, with a supervisor reviewing on the
//! dashboard. Proves that no decision depends on a device's clock: the same season
//! with every clock correct ends with the same values, the same conflicts (exactly
//! where edits were concurrent), the same review state and the same order of history
//! and comments (causal, not by device time); nothing is lost and every replica
//! converges. And that the record page shows the server's receipt beside a device
//! time and says when the device's clock was clearly wrong, and never when it was
//! right.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use intake_server::storage::Role;
use intake_shared::{FormRegistry, Record, RecordId, ReviewStatus, Value};
use intake_tests::craft::text;
use intake_tests::dashboard::Dashboard;
use intake_tests::{TestDevice, TestServer};

/// The clocks of the five devices: correct, a year ahead, a year behind, five hours
/// ahead, three hours behind.
fn skewed() -> [Duration; 5] {
    [
        Duration::zero(),
        Duration::days(365),
        -Duration::days(365),
        Duration::hours(5),
        -Duration::hours(3),
    ]
}

/// The same season's devices with every clock correct.
fn correct() -> [Duration; 5] {
    [Duration::zero(); 5]
}

/// A field season: the server, the five devices (device `i` created `ids[i]`) and the
/// supervisor's dashboard, after everything below has happened and synced.
struct Season {
    server: TestServer,
    devices: Vec<TestDevice>,
    ids: Vec<RecordId>,
    /// The conflicts device 0 saw right after the concurrent round, before anyone
    /// resolved them: `(record index, field, values)`.
    conflicts_seen: Vec<(usize, String, Vec<Value>)>,
}

/// Every device syncs, in order, twice: after that each holds everything.
fn sync_all(devices: &mut [TestDevice]) {
    for _ in 0..2 {
        for d in devices.iter_mut() {
            d.sync().unwrap_or_else(|e| panic!("{} syncs: {e}", d.name));
        }
    }
}

/// Fields that device `i` sets, each on its own, in the "different fields" round.
const OWN_FIELDS: [&str; 5] = [
    "village",
    "phone",
    "institution_name",
    "summary",
    "personal_id_number",
];

/// The order in which devices edit `urgency` of record 3 one after another, each
/// having seen the previous edit, and what each sets.
const CHAIN: [(usize, &str); 5] = [
    (1, "high"),
    (2, "low"),
    (3, "medium"),
    (4, "critical"),
    (0, "high"),
];

fn season(clocks: [Duration; 5]) -> Season {
    let server = TestServer::start();
    let mut devices = Vec::new();
    let first = server.add_user("drita", Role::Paralegal, Some("prizren"));
    for (i, offset) in clocks.iter().enumerate() {
        let code = if i == 0 {
            first.clone()
        } else {
            intake_server::admin::new_code(server.storage.as_ref(), "drita", 60)
                .unwrap()
                .enrolment_code
        };
        let mut d = TestDevice::enroll_with_code(&server, "drita", &code);
        d.name = format!("device {i}");
        let offset = *offset;
        d.store.set_clock(Arc::new(move || Utc::now() + offset));
        devices.push(d);
    }
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");

    // Each device opens a case; everyone gets everything.
    let ids: Vec<RecordId> = (0..5)
        .map(|i| {
            devices[i].create(&[
                ("full_name", text(format!("Case {i}"))),
                ("consent_intake", Value::Bool(true)),
                ("municipality", text("prizren")),
            ])
        })
        .collect();
    sync_all(&mut devices);

    // Concurrent round, all offline: the same field of record 0, a different field
    // each of record 1, a comment each on record 2.
    for (i, d) in devices.iter_mut().enumerate() {
        d.edit(ids[0], |e| {
            e.set("village", text(format!("village of {i}")))
        });
        d.edit(ids[1], |e| {
            e.set(OWN_FIELDS[i], text(format!("answer of {i}")))
        });
        d.edit(ids[2], |e| e.add_comment(&format!("comment of {i}")));
    }
    sync_all(&mut devices);
    let mut conflicts_seen = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        for c in devices[0].record(*id).conflicts() {
            let mut values: Vec<Value> = c.values.into_iter().map(|v| v.value).collect();
            values.sort_by_key(|v| v.to_string());
            conflicts_seen.push((n, c.field, values));
        }
    }
    // The supervisor settles the conflict and comments; then a year-behind device
    // replies, having seen it all: its reply comes after, whatever its clock says.
    let page = format!("/records/{}", ids[0]);
    let settled = vesa.submit(
        &page,
        &format!("{page}/resolve"),
        &[("field", "village"), ("value", "village of 3")],
    );
    assert_eq!(settled.status, 303, "{}", settled.body);
    let page = format!("/records/{}", ids[2]);
    let commented = vesa.submit(
        &page,
        &format!("{page}/comment"),
        &[("text", "supervisor: call first")],
    );
    assert_eq!(commented.status, 303, "{}", commented.body);
    devices[2].sync().unwrap();
    devices[2].edit(ids[2], |e| e.add_comment("reply of 2"));
    sync_all(&mut devices);

    // A causal chain on record 3: each device sees the previous edit, then edits.
    for (i, value) in CHAIN {
        devices[i].sync().unwrap();
        devices[i].edit(ids[3], |e| e.set("urgency", text(value)));
        devices[i].sync().unwrap();
    }

    // Review of record 4: the five-hours-ahead device submits, the supervisor sends
    // it back, the three-hours-behind device answers and resubmits, she approves.
    devices[3].sync().unwrap();
    devices[3].edit(ids[4], |e| e.set_status(ReviewStatus::Submitted, None));
    devices[3].sync().unwrap();
    let page = format!("/records/{}", ids[4]);
    let back = vesa.submit(
        &page,
        &format!("{page}/review"),
        &[("outcome", "needs_changes"), ("note", "re-ask consent")],
    );
    assert_eq!(back.status, 303, "{}", back.body);
    devices[4].sync().unwrap();
    assert_eq!(
        devices[4].record(ids[4]).status(),
        ReviewStatus::NeedsChanges
    );
    devices[4].edit(ids[4], |e| {
        e.set("consent_data_sharing", Value::Bool(true))?;
        e.set_status(ReviewStatus::Submitted, None)
    });
    devices[4].sync().unwrap();
    let approved = vesa.submit(&page, &format!("{page}/review"), &[("outcome", "approved")]);
    assert_eq!(approved.status, 303, "{}", approved.body);
    sync_all(&mut devices);

    Season {
        server,
        devices,
        ids,
        conflicts_seen,
    }
}

/// What a person would see of a record, without hashes or times (which differ
/// between two seasons).
#[derive(Debug, PartialEq)]
struct Seen {
    values: BTreeMap<String, Value>,
    status: ReviewStatus,
    note: Option<String>,
    conflicts: Vec<String>,
    /// Comments in list order, except that the five written concurrently are sorted
    /// among themselves (their relative order comes from random actor ids, not from
    /// clocks, and differs between any two seasons).
    comments: Vec<String>,
    urgency_history: Vec<Option<Value>>,
}

fn seen(record: &mut Record) -> Seen {
    let mut comments: Vec<String> = record.comments().into_iter().map(|c| c.text).collect();
    let concurrent = comments.len().min(5);
    comments[..concurrent].sort();
    Seen {
        values: record.values(),
        status: record.status(),
        note: record.review_note(),
        conflicts: record.conflicts().into_iter().map(|c| c.field).collect(),
        comments,
        urgency_history: record
            .field_history("urgency")
            .into_iter()
            .map(|e| e.value)
            .collect(),
    }
}

/// Every replica (the five devices and the server) holds the same document; returns
/// what it shows, record by record.
fn converged(s: &Season) -> Vec<Seen> {
    s.ids
        .iter()
        .map(|id| {
            let stored = s
                .server
                .storage
                .record(*id)
                .unwrap()
                .expect("on the server");
            let mut on_server = Record::load(&stored.doc, FormRegistry::builtin()).unwrap();
            let heads = on_server.heads();
            for d in &s.devices {
                assert_eq!(d.record(*id).heads(), heads, "{} converged on {id}", d.name);
            }
            seen(&mut on_server)
        })
        .collect()
}

#[test]
fn skewed_clocks_change_no_decision_and_lose_or_reorder_nothing() {
    let right = season(correct());
    let wrong = season(skewed());
    let (right_seen, wrong_seen) = (converged(&right), converged(&wrong));

    // The clocks really were skewed: the year-ahead device's edit in the chain is
    // stamped a year after the year-behind device's edit that follows it.
    let mut chain = wrong.devices[0].record(wrong.ids[3]);
    let history = chain.field_history("urgency");
    assert_eq!(history.len(), CHAIN.len());
    let (ahead, behind) = (history[0].at.unwrap(), history[1].at.unwrap());
    assert!(
        ahead - behind > Duration::days(700),
        "device times as the clocks said: {ahead} then {behind}"
    );

    // Same conflicts, exactly where edits were concurrent: record 0's village, with
    // every device's value; none from the different fields, comments or the chain.
    let expected: Vec<(usize, String, Vec<Value>)> = vec![(
        0,
        "village".into(),
        (0..5).map(|i| text(format!("village of {i}"))).collect(),
    )];
    assert_eq!(right.conflicts_seen, expected, "correct clocks");
    assert_eq!(wrong.conflicts_seen, expected, "skewed clocks");

    // Same values, review state, comments and history, record by record.
    assert_eq!(wrong_seen, right_seen);

    // Nothing lost, nothing reordered.
    let s = &wrong_seen;
    assert_eq!(s[0].values["village"], text("village of 3"), "resolved");
    for (i, field) in OWN_FIELDS.iter().enumerate() {
        assert_eq!(
            s[1].values.get(*field),
            Some(&text(format!("answer of {i}")))
        );
    }
    assert_eq!(s[2].comments.len(), 7, "{:?}", s[2].comments);
    assert_eq!(
        s[2].comments[5..],
        ["supervisor: call first".to_string(), "reply of 2".into()],
        "a reply made after reading comes after, though its clock is a year behind"
    );
    assert_eq!(
        s[3].urgency_history,
        CHAIN
            .iter()
            .map(|(_, v)| Some(text(*v)))
            .collect::<Vec<_>>(),
        "history in causal order"
    );
    assert_eq!(s[3].values["urgency"], text("high"), "the last edit wins");
    assert!(s.iter().all(|r| r.conflicts.is_empty()));
    assert_eq!(s[4].status, ReviewStatus::Approved);
    assert_eq!(s[4].note.as_deref(), Some("re-ask consent"));
    assert_eq!(s[4].values["consent_data_sharing"], Value::Bool(true));
}

#[test]
fn the_record_page_says_when_a_device_clock_was_wrong() {
    let s = season(skewed());
    let vesa = english(Dashboard::with_password(&s.server, "vesa"));

    // The chain on record 3, in the field's history: one entry per edit, in causal
    // order, each with the server's receipt; the four wrong clocks marked with how
    // wrong they clearly were, the correct one not.
    let page = vesa.get(&format!("/records/{}?history=urgency", s.ids[3]));
    assert_eq!(page.status, 200);
    let history = section(&page.body, "id=\"history\"");
    let entries: Vec<&str> = history.split("<li>").skip(1).collect();
    assert_eq!(entries.len(), CHAIN.len(), "{history}");
    let expected = [
        Some("device clock was wrong: at least 1 yr. ahead"),
        Some("device clock was wrong: at least 1 yr. behind"),
        Some("device clock was wrong: at least 5 h ahead"),
        Some("device clock was wrong: at least 3 h behind"),
        None,
    ];
    for (entry, mark) in entries.iter().zip(expected) {
        assert!(
            entry.contains("received by the server"),
            "the receipt is shown: {entry}"
        );
        match mark {
            Some(m) => assert!(entry.contains(m), "{m:?} in {entry}"),
            None => assert!(!entry.contains("device clock was wrong"), "{entry}"),
        }
    }

    // Comments: the year-behind device's reply follows what it read (marked
    // behind); the supervisor's, written on the server's clock, is not marked.
    let page = vesa.get(&format!("/records/{}", s.ids[2]));
    let comments = section(&page.body, "class=\"comments\"");
    let items: Vec<&str> = comments.split("<li>").skip(1).collect();
    assert_eq!(items.len(), 7, "{comments}");
    let supervisor = items
        .iter()
        .find(|c| c.contains("supervisor: call first"))
        .unwrap();
    assert!(
        !supervisor.contains("device clock was wrong"),
        "{supervisor}"
    );
    let reply = items.iter().find(|c| c.contains("reply of 2")).unwrap();
    assert!(
        reply.contains("device clock was wrong: at least 1 yr. behind"),
        "{reply}"
    );
    // The creation time a year-ahead phone wrote is marked too.
    let created = vesa.get(&format!("/records/{}", s.ids[1]));
    let meta = section(&created.body, "class=\"meta\"");
    let meta = &meta[..meta.find("</dl>").unwrap_or(meta.len())];
    assert!(
        meta.contains("device clock was wrong: at least 1 yr. ahead"),
        "{meta}"
    );
    let ahead = items.iter().find(|c| c.contains("comment of 1")).unwrap();
    assert!(
        ahead.contains("device clock was wrong: at least 1 yr. ahead"),
        "{ahead}"
    );
    let right = items.iter().find(|c| c.contains("comment of 0")).unwrap();
    assert!(!right.contains("device clock was wrong"), "{right}");

    // A season with every clock correct shows receipts and not one mark.
    let fine = season(correct());
    let vesa = english(Dashboard::with_password(&fine.server, "vesa"));
    for id in &fine.ids {
        let page = vesa.get(&format!("/records/{id}?history=urgency"));
        assert!(page.body.contains("received by the server"));
        assert!(
            !page.body.contains("device clock was wrong"),
            "{}",
            page.body
        );
    }
}

/// The dashboard in English (it starts in Albanian), so the marks read as asserted.
fn english(d: Dashboard) -> Dashboard {
    let switched = d.get("/lang?to=en&back=/records");
    assert_eq!(switched.status, 303, "{}", switched.body);
    d
}

/// The HTML from the tag holding `marker` to the end of its section.
fn section<'a>(body: &'a str, marker: &str) -> &'a str {
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {body}"));
    let rest = &body[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

#[test]
fn a_wrong_clock_does_not_move_a_case_to_another_day() {
    // Date filters and donor counts by month read the indexed creation time: the
    // device's time, unless its clock was clearly wrong (then the server's receipt).
    // All five cases were opened today; counted by their device times, the year-ahead
    // and year-behind ones would fall a year away.
    let s = season(skewed());
    let today = Utc::now().date_naive();
    let filter = intake_server::storage::ListFilter {
        from: Some(today - Duration::days(1)),
        to: Some(today + Duration::days(1)),
        ..Default::default()
    };
    let scope = intake_server::storage::Scope::Team("prizren".into());
    let (listed, total) = s
        .server
        .storage
        .list_records(&scope, &filter, 0, 100)
        .unwrap();
    let mut counted: Vec<RecordId> = listed.iter().map(|l| l.meta.id).collect();
    counted.sort();
    let mut ids = s.ids.clone();
    ids.sort();
    assert_eq!((counted, total), (ids, 5), "every case counts today");
    // The correct device keeps its own time (offline work keeps its day). The others
    // were clearly wrong: ahead of the receipt (+1 y, +5 h) or before the device was
    // enrolled (-1 y, -3 h: all were enrolled just now), so the receipt counts. The
    // record page still shows each device's own time, marked.
    for (i, id) in s.ids.iter().enumerate() {
        let indexed = listed
            .iter()
            .find(|l| l.meta.id == *id)
            .and_then(|l| l.summary.created_at)
            .unwrap();
        let on_device = s.devices[i].record(*id).created_at().unwrap();
        if i == 0 {
            assert_eq!(indexed, on_device, "device {i}: its own time stands");
        } else {
            assert_ne!(indexed, on_device, "device {i}: its clock was wrong");
            assert!(
                (indexed - Utc::now()).num_minutes().abs() < 10,
                "device {i}: {indexed}"
            );
        }
    }
}

#[test]
fn each_device_learns_from_its_sync_answers_whether_its_own_clock_is_wrong() {
    // Every answer carries the server's time (HTTP `Date`): a device whose clock is off
    // by more than an hour says so where it shows times (CLI `list`/`show`, the field
    // app's case list), in its user's language.
    use intake_client::store::ClockError;
    let s = season(skewed());
    let found: Vec<Option<ClockError>> = s
        .devices
        .iter()
        .map(|d| d.store.clock_error().unwrap())
        .collect();
    let about = |e: Option<ClockError>| match e {
        Some(ClockError::Ahead(d)) => Some(d.num_minutes()),
        Some(ClockError::Behind(d)) => Some(-d.num_minutes()),
        None => None,
    };
    let near = |got: Option<i64>, want: i64| got.is_some_and(|g| (g - want).abs() <= 2);
    assert_eq!(found[0], None, "the correct clock");
    assert!(near(about(found[1]), 365 * 24 * 60), "{:?}", found[1]);
    assert!(near(about(found[2]), -365 * 24 * 60), "{:?}", found[2]);
    assert!(near(about(found[3]), 5 * 60), "{:?}", found[3]);
    assert!(near(about(found[4]), -3 * 60), "{:?}", found[4]);
    let warning = intake_web::clock::this_device(intake_shared::Lang::Sq, found[1].unwrap());
    assert!(warning.contains("përpara"), "{warning}");
    // All clocks correct: no device warns.
    let s = season(correct());
    for d in &s.devices {
        assert_eq!(d.store.clock_error().unwrap(), None, "{}", d.name);
    }
}

#[test]
fn a_device_says_when_another_devices_clock_was_wrong_as_the_dashboard_does() {
    // Every pulled change comes with the server's receipt (protocol v6), kept by the
    // device: it judges other devices' times as the dashboard does, so the CLI and the
    // field app mark a comment written on a year-ahead phone, and not one from a phone
    // whose clock was right.
    use intake_shared::skew::ClockError;
    let mut s = season(skewed());
    let watcher = &mut s.devices[0];
    let mut record = watcher.record(s.ids[2]);
    let on_device = watcher.store.clock_marks(&mut record).unwrap();
    let others = same_verdicts_as_the_dashboard(&s.server, &watcher.store, &mut record);
    assert!(others >= 6, "{others} changes of other devices");
    // A device enrolled after the season gets the records whole in its first pull
    // (documents, with their receipts in hash order): the same verdicts.
    let mut arta = TestDevice::enroll(&s.server, "arta", Role::Supervisor, Some("prizren"));
    arta.sync().unwrap();
    for id in &s.ids {
        let mut whole = arta.record(*id);
        let judged = same_verdicts_as_the_dashboard(&s.server, &arta.store, &mut whole);
        assert_eq!(
            judged,
            whole.change_times().len(),
            "every change has its receipt"
        );
    }

    // What the device shows beside each comment.
    let comments = record.comments();
    let mark = |text: &str| {
        let c = comments.iter().find(|c| c.text == text).unwrap();
        on_device[&c.change].error
    };
    assert!(
        matches!(mark("comment of 1"), Some(ClockError::Ahead(d)) if d.num_days() >= 364),
        "{:?}",
        mark("comment of 1")
    );
    assert!(matches!(mark("comment of 3"), Some(ClockError::Ahead(d)) if d.num_hours() >= 4));
    assert!(matches!(mark("reply of 2"), Some(ClockError::Behind(d)) if d.num_days() >= 364));
    assert_eq!(mark("comment of 0"), None, "its own clock was right");
    assert_eq!(mark("supervisor: call first"), None, "the server's clock");
    let shown = intake_web::clock::note(
        intake_shared::Lang::En,
        &on_device[&comments
            .iter()
            .find(|c| c.text == "comment of 1")
            .unwrap()
            .change],
    )
    .unwrap();
    assert!(
        shown
            .starts_with("device clock was wrong: at least 1 yr. ahead (received by the server 20"),
        "{shown}"
    );

    // A season with every clock right: receipts, and not one mark.
    let mut fine = season(correct());
    for id in fine.ids.clone() {
        let d = &mut fine.devices[0];
        let mut record = d.record(id);
        let marks = d.store.clock_marks(&mut record).unwrap();
        assert!(marks.values().any(|j| j.received.is_some()));
        assert!(marks.values().all(|j| j.error.is_none()), "{marks:?}");
    }
}

/// Checks that `store` judges every change of `record` made by another device as the
/// dashboard does, with the server's receipt to the second; returns how many it checked.
fn same_verdicts_as_the_dashboard(
    server: &TestServer,
    store: &intake_client::Store,
    record: &mut Record,
) -> usize {
    use intake_shared::skew::ClockError;
    let on_device = store.clock_marks(record).unwrap();
    let on_server = intake_server::web::clock::judge(server.storage.as_ref(), record)
        .unwrap()
        .by_change;
    // A change names its device by the first 16 bytes of its actor.
    let me = hex::encode(&store.identity().actor[..16]);
    let mine: std::collections::HashSet<String> = record
        .change_times()
        .into_iter()
        .filter(|c| c.device == me)
        .map(|c| hex::encode(c.hash))
        .collect();
    // The same verdict; amounts agree to the second (receipts travel in seconds).
    let signed = |e: Option<ClockError>| match e {
        Some(ClockError::Ahead(d)) => Some(d.num_milliseconds()),
        Some(ClockError::Behind(d)) => Some(-d.num_milliseconds()),
        None => None,
    };
    let mut checked = 0;
    for (change, server) in &on_server {
        let device = &on_device[change];
        if mine.contains(change) {
            assert_eq!(device.received, None, "its own changes were never pulled");
            continue;
        }
        checked += 1;
        match (signed(device.error), signed(server.error)) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1000, "{change}: {a} vs {b}"),
            (a, b) => assert_eq!(a, b, "{change}"),
        }
        assert_eq!(
            device.received.map(|t| t.timestamp()),
            server.received.map(|t| t.timestamp()),
            "{change}"
        );
    }
    checked
}
