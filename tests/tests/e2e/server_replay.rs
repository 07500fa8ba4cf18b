//! Replaying sync requests is harmless: a session of two paralegals and their
//! supervisor (new records, edits, comments, a concurrent edit, a review, an assignment
//! and a reassignment) is recorded request by request; then every push is sent again,
//! twice, in a shuffled order (fixed seed). Every replay is answered 200 with every
//! record `Stored`, and the server's database — every row of the change log, the
//! records and the access revocations, in primary-key order — is byte-identical.

use std::collections::BTreeMap;

use chrono::Utc;
use intake_server::storage::Role;
use intake_shared::protocol::{Outcome, PROTOCOL_VERSION, RecordChanges, SyncRequest};
use intake_shared::record::{Identity, inspect_changes};
use intake_shared::{Edit, FormRegistry, Record, RecordError, RecordId, ReviewStatus, Value};
use intake_tests::{Backend, Enrolled, TestServer};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// A device in the session: its records, what the server has of each, its cursor.
struct Device {
    name: &'static str,
    enrolled: Enrolled,
    records: BTreeMap<RecordId, Record>,
    synced: BTreeMap<RecordId, Vec<[u8; 32]>>,
    cursor: u64,
}

/// One request as it was sent: the device's token and the compressed body.
struct Sent {
    token: String,
    body: Vec<u8>,
    /// The records pushed, in order (a version 2 answer names refusals by index).
    pushed: Vec<intake_shared::protocol::WireId>,
}

struct Session {
    server: TestServer,
    sent: Vec<Sent>,
    minted: u64,
}

impl Device {
    fn identity(&self) -> Identity {
        let mut actor = self.enrolled.actor.to_vec();
        actor.extend([0, 1]);
        Identity {
            actor,
            author: Some(self.name.into()),
        }
    }

    fn edit(&mut self, id: RecordId, f: impl FnOnce(&mut Edit<'_>) -> Result<(), RecordError>) {
        let who = self.identity();
        let r = self
            .records
            .get_mut(&id)
            .expect("the device holds the record");
        r.set_identity(&who);
        r.edit(Utc::now(), f).unwrap();
    }
}

impl Session {
    fn device(&self, name: &'static str, role: Role) -> Device {
        Device {
            name,
            enrolled: self.server.user_device(name, role, Some("prizren")),
            records: BTreeMap::new(),
            synced: BTreeMap::new(),
            cursor: 0,
        }
    }

    fn create(&mut self, dev: &mut Device, full_name: &str) -> RecordId {
        self.minted += 1;
        let form = FormRegistry::builtin().get("intake", 1).unwrap();
        let id = RecordId::new_v7(1_790_000_000_000 + self.minted, [self.minted as u8; 10]);
        let mut r = Record::create(id, form, &dev.identity(), Utc::now());
        r.edit(Utc::now(), |e| {
            e.set("full_name", Value::Text(full_name.into()))?;
            e.set("consent_intake", Value::Bool(true))?;
            e.set("municipality", Value::Text("prizren".into()))
        })
        .unwrap();
        dev.records.insert(id, r);
        id
    }

    /// Syncs until the device has every record it received changes of.
    fn sync(&mut self, dev: &mut Device) {
        let mut want = Vec::new();
        for _ in 0..3 {
            want = self.round_trip(dev, want);
            if want.is_empty() {
                return;
            }
        }
        panic!("{} still lacks {want:?}", dev.name);
    }

    /// One sync round trip: push what the server lacks, ask for `want_docs` whole, take
    /// in one page. Returns the records it got changes of but does not hold.
    fn round_trip(&mut self, dev: &mut Device, want_docs: Vec<[u8; 16]>) -> Vec<[u8; 16]> {
        let mut push = Vec::new();
        for (id, r) in &mut dev.records {
            let since = dev.synced.get(id).cloned().unwrap_or_default();
            if r.heads() == since {
                continue;
            }
            let changes = inspect_changes(&r.changes_since(&since))
                .unwrap()
                .into_iter()
                .map(|c| c.bytes)
                .collect();
            push.push(RecordChanges {
                record: *id.as_uuid().as_bytes(),
                changes,
            });
        }
        let req = SyncRequest {
            version: PROTOCOL_VERSION,
            cursor: dev.cursor,
            page_bytes: 1 << 20,
            push,
            want_docs,
            // The pulled changes whole: this session applies them as they come.
            full_deps: true,
            ..SyncRequest::default()
        };
        let body = zstd::bulk::compress(&req.encode(), 3).unwrap();
        self.sent.push(Sent {
            token: dev.enrolled.token.clone(),
            body: body.clone(),
            pushed: req.push.iter().map(|p| p.record).collect(),
        });
        let reply = self.server.sync_raw(
            Some(&dev.enrolled.token),
            body,
            Some("zstd"),
            PROTOCOL_VERSION,
        );
        let resp = reply.answer(&self.sent.last().unwrap().pushed);
        assert!(!resp.more, "the session fits in one page");
        for r in &resp.results {
            assert_eq!(r.outcome, Outcome::Stored, "{} pushed", dev.name);
        }
        for d in &resp.docs {
            let id = id_of(d.record);
            let doc = Record::load(&d.doc, FormRegistry::builtin()).unwrap();
            match dev.records.get_mut(&id) {
                Some(mine) => mine.merge(&mut doc.clone()).unwrap(),
                None => {
                    dev.records.insert(id, doc);
                }
            }
        }
        let mut lacking = Vec::new();
        for c in &resp.changes {
            let id = id_of(c.record);
            match dev.records.get_mut(&id) {
                Some(r) => {
                    for bytes in &c.changes {
                        r.apply(bytes).unwrap();
                    }
                }
                // Newly visible (assigned): its history is asked for whole.
                None => lacking.push(c.record),
            }
        }
        for id in &resp.removed {
            let id = id_of(*id);
            dev.records.remove(&id);
            dev.synced.remove(&id);
        }
        // Everything pushed is stored and everything pulled came from the server.
        for (id, r) in &mut dev.records {
            dev.synced.insert(*id, r.heads());
        }
        dev.cursor = resp.cursor;
        lacking
    }
}

fn id_of(wire: [u8; 16]) -> RecordId {
    hex::encode(wire).parse().unwrap()
}

/// Every row of the change log, the records and the access revocations (and the log's
/// sequence counter: SQLite's `sqlite_sequence`, PostgreSQL's `log_head`), in a fixed
/// order, as bytes.
fn dump(server: &TestServer) -> (Vec<u8>, [usize; 3]) {
    let counter = match server.backend {
        Backend::Sqlite => "SELECT * FROM sqlite_sequence",
        Backend::Postgres => "SELECT * FROM log_head",
    };
    let mut db = server.db();
    let mut out = Vec::new();
    let mut counts = [0; 3];
    for (i, query) in [
        "SELECT * FROM log",
        "SELECT * FROM records",
        "SELECT * FROM access_revoked",
        counter,
    ]
    .into_iter()
    .enumerate()
    {
        // Sorted here: PostgreSQL has no rowid, and any fixed order compares.
        let mut rows = db.rows(query, &[]);
        rows.sort();
        out.extend_from_slice(query.as_bytes());
        for row in rows {
            if let Some(n) = counts.get_mut(i) {
                *n += 1;
            }
            out.push(b'\n');
            for cell in row {
                out.extend_from_slice(format!("{cell:?}").as_bytes());
                out.push(b'|');
            }
        }
        out.push(b'\n');
    }
    (out, counts)
}

#[test]
fn replaying_every_push_twice_in_any_order_changes_nothing() {
    let mut s = Session {
        server: TestServer::start(),
        sent: Vec::new(),
        minted: 0,
    };
    let mut arta = s.device("arta", Role::Paralegal);
    let mut blerta = s.device("blerta", Role::Paralegal);
    let mut shpresa = s.device("shpresa", Role::Supervisor);
    let text = |t: &str| Value::Text(t.into());

    // Two paralegals record cases.
    let r1 = s.create(&mut arta, "Ajshe Berisha");
    let r2 = s.create(&mut arta, "Fatmir Gashi");
    let r3 = s.create(&mut arta, "Drita Krasniqi");
    s.sync(&mut arta);
    arta.edit(r1, |e| {
        e.set(
            "narrative",
            text("The school put the children in a separate class."),
        )?;
        e.add_comment("Follow up with the mediator")
    });
    arta.edit(r2, |e| e.set("village", text("Zhur")));
    arta.edit(r3, |e| e.set("issue_type", text("civil_documentation")));
    s.sync(&mut arta);
    let r4 = s.create(&mut blerta, "Sami Rama");
    let r5 = s.create(&mut blerta, "Violeta Hoxha");
    blerta.edit(r5, |e| e.set("urgency", text("high")));
    s.sync(&mut blerta);

    // The supervisor reviews: a comment, "needs changes", and a concurrent edit.
    s.sync(&mut shpresa);
    assert_eq!(shpresa.records.len(), 5);
    shpresa.edit(r1, |e| {
        e.add_comment("Did she agree to data sharing?")?;
        e.set_status(ReviewStatus::NeedsChanges, Some("re-ask consent"))
    });
    shpresa.edit(r2, |e| e.set("urgency", text("high")));
    shpresa.edit(r4, |e| e.add_comment("Call the school director"));
    arta.edit(r2, |e| e.set("urgency", text("low")));
    blerta.edit(r4, |e| e.set("village", text("Landovica")));
    s.sync(&mut shpresa);
    s.sync(&mut arta);
    s.sync(&mut blerta);

    // The paralegal answers the review; the supervisor approves, and settles r2.
    s.sync(&mut arta);
    arta.edit(r1, |e| {
        e.set("consent_data_sharing", Value::Bool(true))?;
        e.set_status(ReviewStatus::Submitted, None)
    });
    s.sync(&mut arta);
    s.sync(&mut shpresa);
    shpresa.edit(r1, |e| e.set_status(ReviewStatus::Approved, None));
    shpresa.edit(r2, |e| e.resolve("urgency", text("medium")));

    // A case the supervisor opens for arta, then hands to blerta.
    let r6 = s.create(&mut shpresa, "Besim Morina");
    shpresa.edit(r6, |e| e.assign("arta"));
    s.sync(&mut shpresa);
    s.sync(&mut arta);
    assert!(arta.records.contains_key(&r6));
    shpresa.edit(r6, |e| e.assign("blerta"));
    s.sync(&mut shpresa);
    s.sync(&mut arta);
    assert!(!arta.records.contains_key(&r6), "arta was told to drop r6");
    s.sync(&mut blerta);
    for dev in [&mut arta, &mut blerta, &mut shpresa] {
        s.sync(dev);
    }

    let (before, counts) = dump(&s.server);
    assert!(
        counts[0] > 20 && counts[1] == 6 && counts[2] == 1,
        "the session left log rows, records and a revocation: {counts:?}"
    );

    // Replay every push twice, shuffled.
    let pushes: Vec<&Sent> = s.sent.iter().filter(|r| !r.pushed.is_empty()).collect();
    let mut order: Vec<&Sent> = pushes.iter().chain(pushes.iter()).copied().collect();
    order.shuffle(&mut StdRng::seed_from_u64(0x5eed_1e55));
    let mut replies = 0;
    for sent in &order {
        let reply = s.server.sync_raw(
            Some(&sent.token),
            sent.body.clone(),
            Some("zstd"),
            PROTOCOL_VERSION,
        );
        let resp = reply.answer(&sent.pushed);
        assert_eq!(resp.results.len(), sent.pushed.len());
        for r in &resp.results {
            assert_eq!(
                r.outcome,
                Outcome::Stored,
                "a replay is answered like the original"
            );
        }
        replies += 1;
    }
    let (after, _) = dump(&s.server);
    let identical = before == after;
    eprintln!(
        "replay: {} requests in the session, {} pushes, {replies} replays (each twice, shuffled); \
         {} log rows, {} records, {} revocations; state identical: {identical}",
        s.sent.len(),
        pushes.len(),
        counts[0],
        counts[1],
        counts[2]
    );
    assert!(identical, "replaying pushes changed the server's state");

    // And the replicas still agree with the server.
    for dev in [&mut arta, &mut blerta, &mut shpresa] {
        s.sync(dev);
        for (id, r) in &mut dev.records {
            let stored =
                intake_server::storage::SyncStorage::record(s.server.storage.as_ref(), *id)
                    .unwrap()
                    .unwrap();
            assert_eq!(r.heads().concat(), stored.heads, "{} on {id}", dev.name);
        }
    }
}
