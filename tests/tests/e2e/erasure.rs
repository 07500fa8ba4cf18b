//! Erasing a client's record for good, and retention, end to end: the real server, real
//! devices with their own stores, real HTTP. What is erased leaves no trace in the
//! server's tables, database file or write-ahead log; devices that hold it drop it
//! (unsynced edits too); a late push is refused and never brings it back; another
//! team's devices are not told; retention lists before it erases; the dashboard's
//! erasure needs an admin and the id typed twice.

use chrono::{Duration, Utc};
use intake_server::erase::{self, Requester};
use intake_server::retention::{self, Retention};
use intake_server::storage::{AuditFilter, Role};
use intake_shared::protocol::{Outcome, PROTOCOL_VERSION, RecordChanges, Rejection, SyncRequest};
use intake_shared::{RecordId, ReviewStatus, Value};
use intake_tests::craft::text;
use intake_tests::dashboard::Dashboard;
use intake_tests::{Backend, TestDevice, TestServer};

/// What the client told her paralegal: it must be nowhere once the record is erased.
const STORY: &str = "Zebra-okapi 7731: the teacher sent him to the back row again";

/// A submitted intake of `name`, whose narrative is `STORY` then the name.
fn intake(device: &mut TestDevice, name: &str) -> RecordId {
    let id = device.create(&[
        ("full_name", text(name)),
        ("consent_intake", Value::Bool(true)),
        ("municipality", text("prizren")),
        ("issue_type", text("school_segregation")),
        ("birth_year", Value::Int(1990)),
        ("phone", text("+383 44 123 456")),
        ("narrative", text(format!("{STORY} ({name})"))),
    ]);
    device.edit(id, |e| e.set_status(ReviewStatus::Submitted, None));
    id
}

fn erase_now(server: &TestServer, id: RecordId) -> u64 {
    let who = Requester {
        via: "test",
        ..Requester::default()
    };
    erase::erase(
        server.storage.as_ref(),
        id,
        "the client asked",
        &who,
        Utc::now(),
    )
    .expect("erased")
}

/// The server's database file and write-ahead log, as bytes on disk.
/// Every page of the server's database file and of its WAL, decrypted: free pages and
/// superseded WAL frames included, which SQL cannot reach. An erased record must not be
/// in any of them; encryption alone would make that check pass without proving it.
fn raw_database(server: &TestServer) -> Vec<u8> {
    let db = server.data_dir().join(intake_server::startup::DB_FILE);
    let key: [u8; 32] = hex::decode(server.key().to_hex().as_str())
        .unwrap()
        .try_into()
        .unwrap();
    let mut plain = Vec::new();
    let file = std::fs::read(&db).unwrap();
    for (i, page) in file.chunks_exact(PAGE).enumerate() {
        plain.extend(decrypt_page(&key, i as u32 + 1, page));
    }
    let mut wal = db.into_os_string();
    wal.push("-wal");
    let wal = std::fs::read(wal).unwrap_or_default();
    // A WAL is a 32-byte header, then frames: a 24-byte header (page number first),
    // then the page as the database file would hold it.
    if wal.len() > 32 {
        for frame in wal[32..].chunks_exact(24 + PAGE) {
            let number = u32::from_be_bytes(frame[..4].try_into().unwrap());
            plain.extend(decrypt_page(&key, number, &frame[24..]));
        }
    }
    plain
}

/// SQLCipher 4's defaults, as the server uses them.
const PAGE: usize = 4096;
/// Each page ends with its IV (16 bytes) and HMAC (64 bytes).
const RESERVE: usize = 80;

/// One SQLCipher 4 page, decrypted: AES-256-CBC under the raw key with the page's own
/// IV; page 1 starts with the file's salt, in the clear.
fn decrypt_page(key: &[u8; 32], number: u32, page: &[u8]) -> Vec<u8> {
    use aes::cipher::{BlockDecrypt, KeyInit, generic_array::GenericArray};
    let aes = aes::Aes256::new(GenericArray::from_slice(key));
    let start = if number == 1 { 16 } else { 0 };
    let body = &page[start..PAGE - RESERVE];
    let mut previous: [u8; 16] = page[PAGE - RESERVE..PAGE - RESERVE + 16]
        .try_into()
        .unwrap();
    let mut out = Vec::with_capacity(body.len());
    for block in body.chunks_exact(16) {
        let mut b = GenericArray::clone_from_slice(block);
        aes.decrypt_block(&mut b);
        out.extend(b.iter().zip(previous).map(|(p, c)| p ^ c));
        previous = block.try_into().unwrap();
    }
    out
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn token(device: &TestDevice) -> String {
    device.store.enrolment().unwrap().unwrap().token
}

/// A page asked for at `cursor` by this device, over raw HTTP in `version`.
fn page_at(server: &TestServer, device: &TestDevice, cursor: u64, version: u16) -> Vec<RecordId> {
    let reply = server.sync(
        Some(&token(device)),
        &SyncRequest {
            version,
            cursor,
            page_bytes: 1 << 20,
            ..SyncRequest::default()
        },
    );
    let answer = reply.answer(&[]);
    assert!(answer.cursor >= cursor, "the cursor never goes back");
    let named = if version >= 4 {
        &answer.erased
    } else {
        &answer.removed
    };
    named.iter().map(RecordId::from_wire).collect()
}

#[test]
fn erasure_removes_everything_and_the_log_head_never_goes_back() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let kept = intake(&mut drita, "Arben Krasniqi");
    let gone = intake(&mut drita, "Besnik Gashi");
    drita.sync().unwrap();
    // Its entries are the last ones in the log.
    drita.edit(gone, |e| e.set("full_name", text("Besnik Gashi Jr")));
    drita.sync().unwrap();
    server
        .storage
        .link_records(kept, gone, "vesa", Utc::now())
        .unwrap();
    let mut vesa = TestDevice::enroll(&server, "vesa", Role::Supervisor, Some("prizren"));
    vesa.sync().unwrap();
    assert!(vesa.has(gone));
    let before = vesa.store.cursor().unwrap();
    let story = format!("{STORY} (Besnik Gashi)");
    // The bytes on disk are the SQLite store's: PostgreSQL leaves an erased row's
    // bytes in dead tuples until a vacuum (`storage/postgres/erasure.rs`); what the
    // server serves and says after an erasure is checked on both.
    let files = server.backend == Backend::Sqlite;
    assert!(
        !files || holds(&raw_database(&server), &story),
        "the test looks for bytes that are there before"
    );

    erase_now(&server, gone);

    let storage = server.storage.as_ref();
    assert_eq!(storage.traces(gone).unwrap(), Vec::<&str>::new());
    assert!(storage.record(gone).unwrap().is_none());
    assert!(storage.linked(kept).unwrap().is_empty());
    assert!(
        storage.record(kept).unwrap().is_some(),
        "only that record goes"
    );
    if files {
        assert!(holds(
            &raw_database(&server),
            &format!("{STORY} (Arben Krasniqi)")
        ));
        assert!(
            !holds(&raw_database(&server), &story),
            "the story is gone from the database file and its log"
        );
    }
    let (audit, _) = storage
        .audit_entries(
            &AuditFilter {
                record: Some(gone),
                action: Some(erase::ACTION.into()),
                ..AuditFilter::default()
            },
            0,
            10,
        )
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert!(audit[0].1.scope.contains("reason=the client asked"));

    // A device at the old head moves on, never back, and is told.
    assert_eq!(page_at(&server, &vesa, before, PROTOCOL_VERSION), [gone]);
    let summary = vesa.sync().unwrap();
    assert_eq!(summary.erased, 1);
    assert!(!vesa.has(gone) && vesa.has(kept));
    assert!(vesa.store.cursor().unwrap() > before);
    // Later work is logged after the erasure and reaches everyone.
    let later = intake(&mut drita, "Drita's next case");
    drita.sync().unwrap();
    vesa.sync().unwrap();
    assert!(vesa.has(later));
}

#[test]
fn devices_that_hold_it_drop_it_with_their_unsynced_edits() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let gone = intake(&mut drita, "Besnik Gashi");
    drita.sync().unwrap();
    let mut vesa = TestDevice::enroll(&server, "vesa", Role::Supervisor, Some("prizren"));
    vesa.sync().unwrap();
    // Drita keeps working on it offline; her edit is erased with the record.
    drita.edit(gone, |e| {
        e.set("full_name", text("Besnik Gashi, corrected"))
    });
    assert_eq!(drita.store.unsynced().unwrap(), 1);

    erase_now(&server, gone);

    let summary = drita.sync().unwrap();
    assert_eq!(summary.erased, 1);
    assert_eq!(summary.unsynced, 0);
    assert!(!drita.has(gone));
    assert_eq!(vesa.sync().unwrap().erased, 1);
    assert!(!vesa.has(gone));
    assert!(server.storage.record(gone).unwrap().is_none());
    assert_eq!(server.storage.traces(gone).unwrap(), Vec::<&str>::new());
    // Told once: the next sync has nothing more to say.
    assert_eq!(drita.sync().unwrap().erased, 0);
}

#[test]
fn a_late_push_is_refused_for_good_and_never_recreates_it() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let gone = intake(&mut drita, "Besnik Gashi");
    let mut held = drita.record(gone);
    let everything = held.all_changes();
    drita.sync().unwrap();
    erase_now(&server, gone);

    // The record's whole history pushed again, as a device that never heard: refused,
    // in version 4 as erased, in version 3 as forbidden (and named in `removed`).
    for (version, reason) in [
        (PROTOCOL_VERSION, Rejection::Erased),
        (3, Rejection::Forbidden),
    ] {
        let reply = server.sync(
            Some(&token(&drita)),
            &SyncRequest {
                version,
                cursor: 0,
                page_bytes: 1 << 20,
                push: vec![RecordChanges {
                    record: gone.wire(),
                    changes: everything.clone(),
                }],
                ..SyncRequest::default()
            },
        );
        let answer = reply.answer(&[gone.wire()]);
        assert!(
            matches!(&answer.results[0].outcome, Outcome::Rejected { reason: r, .. } if *r == reason),
            "v{version}: {:?}",
            answer.results
        );
        assert!(server.storage.record(gone).unwrap().is_none(), "v{version}");
    }
    assert_eq!(
        page_at(&server, &drita, 1, 3),
        [gone],
        "older apps: removed"
    );

    // Through the app: an edit made offline is pushed, refused, and dropped.
    drita.edit(gone, |e| e.set("full_name", text("Besnik Gashi, offline")));
    let summary = drita.sync().unwrap();
    assert_eq!(summary.erased, 1);
    assert!(!drita.has(gone));
    assert!(server.storage.record(gone).unwrap().is_none());
    assert_eq!(server.storage.traces(gone).unwrap(), Vec::<&str>::new());
}

#[test]
fn another_teams_devices_are_not_told() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let gone = intake(&mut drita, "Besnik Gashi");
    drita.sync().unwrap();
    let mut vesa = TestDevice::enroll(&server, "vesa", Role::Supervisor, Some("prizren"));
    let mut fatos = TestDevice::enroll(&server, "fatos", Role::Paralegal, Some("peja"));
    let mut luan = TestDevice::enroll(&server, "luan", Role::Supervisor, Some("peja"));
    for d in [&mut vesa, &mut fatos, &mut luan] {
        d.sync().unwrap();
    }
    let cursors: Vec<u64> = [&vesa, &fatos, &luan]
        .iter()
        .map(|d| d.store.cursor().unwrap())
        .collect();
    erase_now(&server, gone);
    assert_eq!(
        page_at(&server, &vesa, cursors[0], PROTOCOL_VERSION),
        [gone]
    );
    for (d, cursor) in [(&fatos, cursors[1]), (&luan, cursors[2])] {
        assert!(
            page_at(&server, d, cursor, PROTOCOL_VERSION).is_empty(),
            "{}",
            d.name
        );
        assert!(page_at(&server, d, cursor, 3).is_empty(), "{}: v3", d.name);
    }
}

#[test]
fn retention_lists_on_a_dry_run_and_erases_with_its_reason() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let closed = intake(&mut drita, "Besnik Gashi");
    let open = intake(&mut drita, "Arben Krasniqi");
    drita.sync().unwrap();
    let mut vesa = TestDevice::enroll(&server, "vesa", Role::Supervisor, Some("prizren"));
    vesa.sync().unwrap();
    vesa.edit(closed, |e| e.set_status(ReviewStatus::Approved, None));
    vesa.edit(closed, |e| e.set_status(ReviewStatus::Closed, None));
    vesa.sync().unwrap();

    let storage = server.storage.as_ref();
    let r = Retention {
        erase_closed_after_days: 30,
    };
    let now = Utc::now();
    assert!(
        retention::due(storage, &Retention::default(), now + Duration::days(400))
            .unwrap()
            .is_empty(),
        "off by default"
    );
    assert!(
        retention::due(storage, &r, now + Duration::days(29))
            .unwrap()
            .is_empty()
    );
    let due = retention::due(storage, &r, now + Duration::days(31)).unwrap();
    assert_eq!(due.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [closed]);
    assert!(
        (due[0].1 - now).num_minutes().abs() < 5,
        "closed since now, by the server"
    );
    // The dry run changed nothing.
    assert!(storage.record(closed).unwrap().is_some());
    assert!(storage.erased_ids().unwrap().is_empty());

    assert_eq!(
        retention::apply(storage, &r, now + Duration::days(31)).unwrap(),
        1
    );
    assert!(storage.record(closed).unwrap().is_none());
    assert!(storage.record(open).unwrap().is_some());
    let (audit, _) = storage
        .audit_entries(
            &AuditFilter {
                record: Some(closed),
                ..AuditFilter::default()
            },
            0,
            10,
        )
        .unwrap();
    assert!(
        audit[0]
            .1
            .scope
            .contains("retention: closed more than 30 days")
    );
    assert_eq!(drita.sync().unwrap().erased, 1);
    assert!(!drita.has(closed) && drita.has(open));
}

#[test]
fn the_dashboard_erasure_needs_an_admin_and_the_id_typed_again() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let gone = intake(&mut drita, "Besnik Gashi");
    drita.sync().unwrap();
    let id = gone.to_string();
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    assert_eq!(vesa.get("/admin/erase").status, 403);
    let csrf = vesa.get("/records").csrf();
    let tried = vesa.post(
        "/admin/erase",
        &[
            ("csrf", &csrf),
            ("record", &id),
            ("confirm", &id),
            ("reason", "why not"),
        ],
    );
    assert_eq!(tried.status, 403, "a supervisor may not erase");
    assert!(server.storage.record(gone).unwrap().is_some());

    let admin = Dashboard::with_password(&server, "admin");
    let other = RecordId::new_v7(1_790_000_000_000, [1; 10]).to_string();
    for (confirm, reason) in [(other.as_str(), "the client asked"), (id.as_str(), "  ")] {
        let refused = admin.submit(
            "/admin/erase",
            "/admin/erase",
            &[("record", &id), ("confirm", confirm), ("reason", reason)],
        );
        assert_eq!(refused.status, 400, "{confirm:?} {reason:?}");
        assert!(server.storage.record(gone).unwrap().is_some());
    }
    let done = admin.submit(
        "/admin/erase",
        "/admin/erase",
        &[
            ("record", &id),
            ("confirm", &id),
            ("reason", "the client asked"),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(server.storage.record(gone).unwrap().is_none());
    assert!(
        admin
            .get(done.location.as_deref().unwrap())
            .body
            .contains(&id)
    );
    let (audit, _) = server
        .storage
        .audit_entries(
            &AuditFilter {
                record: Some(gone),
                action: Some(erase::ACTION.into()),
                ..AuditFilter::default()
            },
            0,
            10,
        )
        .unwrap();
    assert_eq!(audit[0].1.user.as_deref(), Some("admin"));
    assert!(audit[0].1.scope.contains("the client asked"));
    // Erasing it again: there is nothing to erase.
    let again = admin.submit(
        "/admin/erase",
        "/admin/erase",
        &[("record", &id), ("confirm", &id), ("reason", "twice")],
    );
    assert_eq!(again.status, 404);
}
