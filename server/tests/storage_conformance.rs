//! Conformance tests for the [`Storage`] trait: what every backend must do, written
//! against `&dyn Storage` only. Each behaviour is one function; the `conformance!` table
//! at the bottom runs every behaviour on a fresh store of every backend, as its own
//! `#[test]`. A new backend (PostgreSQL) adds one line there and an `open_…` function.
//!
//! Records are real: built with `intake_shared::Record`, their changes cut into
//! (hash, bytes) with `inspect_changes`, and stored as the sync engine would store them.
//! A short section before the table holds SQLite-only tests (stores an earlier server
//! created).

use chrono::{DateTime, Duration, TimeZone, Utc};
use intake_server::storage::sqlite::SqliteStorage;
use intake_server::storage::{
    Device, NewDevice, Page, PullRequest, RecordMeta, RecordWrite, Role, Scope, Storage,
    StorageError,
};
use intake_shared::record::{Identity, inspect_changes};
use intake_shared::{FormRegistry, Record, RecordId, Value};

// ---------------------------------------------------------------------------------
// Backends.

/// A store under test, and whatever must outlive it (a temporary directory).
struct Fixture {
    storage: Box<dyn Storage>,
    _dir: tempfile::TempDir,
}

fn open_sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&dir.path().join("intake-server.db")).unwrap();
    Fixture {
        storage: Box::new(storage),
        _dir: dir,
    }
}

// ---------------------------------------------------------------------------------
// Helpers.

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

/// 32 bytes distinct per (tag, n): code hashes, token hashes.
fn bytes32(tag: u8, n: u8) -> [u8; 32] {
    let mut b = [tag; 32];
    b[0] = n;
    b
}

fn new_device(n: u8) -> NewDevice {
    NewDevice {
        token_hash: bytes32(0x70, n),
        actor: [n; 16],
        label: format!("phone {n}"),
    }
}

/// Enrols device `n` (actor `[n; 16]`, token `bytes32(0x70, n)`) for `user`.
fn enrol(s: &dyn Storage, user: &str, n: u8) -> Device {
    let code = bytes32(0xc0, n);
    s.add_enrolment_code(user, code, at(60)).unwrap();
    s.enrol(code, at(0), new_device(n)).unwrap().unwrap().1
}

/// The usual cast: two paralegals in Prizren, one in Peja, a supervisor in Prizren.
fn team(s: &dyn Storage) -> [Device; 4] {
    s.create_user("drita", Role::Paralegal, Some("prizren"))
        .unwrap();
    s.create_user("besa", Role::Paralegal, Some("prizren"))
        .unwrap();
    s.create_user("fatos", Role::Paralegal, Some("peja"))
        .unwrap();
    s.create_user("merita", Role::Supervisor, Some("prizren"))
        .unwrap();
    [
        enrol(s, "drita", 1),
        enrol(s, "besa", 2),
        enrol(s, "fatos", 3),
        enrol(s, "merita", 4),
    ]
}

fn own(user: &str) -> Scope {
    Scope::Own(user.into())
}

fn prizren() -> Scope {
    Scope::Team("prizren".into())
}

/// One case as a device holds it, and what the server has stored of it.
struct Case {
    record: Record,
    meta: RecordMeta,
    /// The heads last written to the store (`None`: never written).
    stored: Option<Vec<[u8; 32]>>,
}

impl Case {
    /// A new case recorded on `device` of `owner` (of `team`).
    fn new(n: u8, device: &Device, team: Option<&str>) -> Case {
        let mut actor = hex::decode(&device.actor).unwrap();
        actor.extend([0, 0, 0, n]);
        let who = Identity {
            actor,
            author: Some(device.user.clone()),
        };
        let form = FormRegistry::builtin().get("intake", 1).unwrap();
        let id = RecordId::new_v7(1_790_000_000_000 + u64::from(n), [n; 10]);
        let mut record = Record::create(id, form, &who, at(0));
        record
            .edit(at(1), |e| {
                e.set("full_name", Value::Text(format!("Person {n}")))
            })
            .unwrap();
        Case {
            record,
            meta: RecordMeta {
                id,
                owner: device.user.clone(),
                team: team.map(Into::into),
                assigned_to: None,
            },
            stored: None,
        }
    }

    fn id(&self) -> RecordId {
        self.meta.id
    }

    /// One more change: a new full name.
    fn rename(&mut self, name: &str) {
        self.record
            .edit(at(2), |e| e.set("full_name", Value::Text(name.into())))
            .unwrap();
    }

    /// One more change: an assignment.
    fn assign(&mut self, user: &str) {
        self.record.edit(at(3), |e| e.assign(user)).unwrap();
    }

    /// The changes the store lacks, as (hash, bytes), in causal order.
    fn unstored(&mut self) -> Vec<([u8; 32], Vec<u8>)> {
        let since = self.stored.clone().unwrap_or_default();
        let bytes = self.record.changes_since(&since);
        inspect_changes(&bytes)
            .unwrap()
            .into_iter()
            .map(|c| (c.hash, c.bytes))
            .collect()
    }

    /// What the sync engine would store for this case now.
    fn write(&mut self) -> RecordWrite {
        let new_changes = self.unstored();
        RecordWrite {
            meta: RecordMeta {
                assigned_to: self.record.assigned_to(),
                ..self.meta.clone()
            },
            status: self.record.status().as_str().into(),
            doc: self.record.save(),
            heads: self.record.heads().concat(),
            expected_heads: self.stored.as_ref().map(|h| h.concat()),
            new_changes,
            revoked_from: Vec::new(),
            summary: intake_server::index::summarize(&self.record),
        }
    }

    /// Marks what [`Case::write`] returned as stored.
    fn stored(&mut self) {
        self.meta.assigned_to = self.record.assigned_to();
        self.stored = Some(self.record.heads());
    }

    /// Writes what the store lacks, from `device`; returns the log position.
    fn save(&mut self, s: &dyn Storage, device: &Device) -> u64 {
        let w = self.write();
        let position = s.write(&[w], device.id).unwrap();
        self.stored();
        position
    }
}

fn pull(
    s: &dyn Storage,
    scope: &Scope,
    device: &Device,
    cursor: u64,
    budget: usize,
    want_docs: &[RecordId],
) -> Page {
    s.pull(&PullRequest {
        scope,
        user: &device.user,
        device: device.id,
        cursor,
        budget,
        want_docs,
    })
    .unwrap()
}

/// Pulls page after page until `more` is false; every page holds at least one item
/// while more are waiting. Returns the pages.
fn pull_all(
    s: &dyn Storage,
    scope: &Scope,
    device: &Device,
    mut cursor: u64,
    budget: usize,
) -> Vec<Page> {
    let mut pages = Vec::new();
    for _ in 0..1000 {
        let page = pull(s, scope, device, cursor, budget, &[]);
        cursor = page.cursor;
        let more = page.more;
        if more {
            assert!(
                !page.docs.is_empty() || !page.changes.is_empty(),
                "a page with more waiting must carry at least one item"
            );
        }
        pages.push(page);
        if !more {
            return pages;
        }
    }
    panic!("paging never ended");
}

fn doc_ids(pages: &[Page]) -> Vec<RecordId> {
    pages
        .iter()
        .flat_map(|p| p.docs.iter().map(|(id, _)| *id))
        .collect()
}

fn change_bytes(pages: &[Page]) -> Vec<Vec<u8>> {
    pages
        .iter()
        .flat_map(|p| p.changes.iter().map(|c| c.bytes.clone()))
        .collect()
}

fn sorted(mut ids: Vec<RecordId>) -> Vec<RecordId> {
    ids.sort();
    ids
}

// ---------------------------------------------------------------------------------
// Users.

fn users_are_created_found_and_unique(s: &dyn Storage) {
    let drita = s
        .create_user("drita", Role::Paralegal, Some("prizren"))
        .unwrap();
    assert_eq!(drita.name, "drita");
    assert_eq!(drita.role, Role::Paralegal);
    assert_eq!(drita.team.as_deref(), Some("prizren"));
    assert!(!drita.disabled);
    s.create_user("admin", Role::Admin, None).unwrap();
    assert_eq!(s.user("drita").unwrap(), Some(drita.clone()));
    assert_eq!(s.user("nobody").unwrap(), None);
    assert!(matches!(
        s.create_user("drita", Role::Supervisor, Some("peja")),
        Err(StorageError::Exists(_))
    ));
    assert_eq!(
        s.user("drita").unwrap(),
        Some(drita),
        "a refused duplicate changes nothing"
    );
    let names: Vec<String> = s.users().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["admin", "drita"]);
}

fn users_are_disabled_and_enabled(s: &dyn Storage) {
    s.create_user("drita", Role::Paralegal, Some("prizren"))
        .unwrap();
    assert!(s.set_user_disabled("drita", true).unwrap());
    assert!(s.user("drita").unwrap().unwrap().disabled);
    assert!(!s.set_user_disabled("nobody", true).unwrap());
    assert!(s.set_user_disabled("drita", false).unwrap());
    assert!(!s.user("drita").unwrap().unwrap().disabled);
}

// ---------------------------------------------------------------------------------
// Enrolment and devices.

fn an_enrolment_code_is_redeemed_once(s: &dyn Storage) {
    s.create_user("drita", Role::Paralegal, Some("prizren"))
        .unwrap();
    let code = bytes32(0xc0, 1);
    s.add_enrolment_code("drita", code, at(60)).unwrap();
    let (user, device) = s.enrol(code, at(0), new_device(1)).unwrap().unwrap();
    assert_eq!(user.name, "drita");
    assert_eq!(device.user, "drita");
    assert_eq!(device.actor, hex::encode([1u8; 16]));
    assert_eq!(device.label, "phone 1");
    assert!(!device.revoked);
    assert_eq!(
        s.enrol(code, at(1), new_device(2)).unwrap().map(|d| d.1.id),
        None,
        "a used code is refused"
    );
    assert_eq!(s.devices().unwrap(), vec![device]);
}

fn expired_unknown_and_disabled_codes_do_not_enrol(s: &dyn Storage) {
    s.create_user("drita", Role::Paralegal, Some("prizren"))
        .unwrap();
    s.create_user("besa", Role::Paralegal, Some("prizren"))
        .unwrap();
    let expired = bytes32(0xc0, 1);
    s.add_enrolment_code("drita", expired, at(60)).unwrap();
    assert!(s.enrol(expired, at(61), new_device(1)).unwrap().is_none());
    assert!(
        s.enrol(bytes32(0xc0, 99), at(0), new_device(1))
            .unwrap()
            .is_none()
    );
    let disabled = bytes32(0xc0, 2);
    s.add_enrolment_code("besa", disabled, at(60)).unwrap();
    s.set_user_disabled("besa", true).unwrap();
    assert!(s.enrol(disabled, at(0), new_device(2)).unwrap().is_none());
    assert!(s.devices().unwrap().is_empty());
    // The same code works once the user is enabled again: a refusal used nothing up.
    s.set_user_disabled("besa", false).unwrap();
    assert!(s.enrol(disabled, at(0), new_device(2)).unwrap().is_some());
}

fn a_live_actor_enrols_once_and_a_revoked_one_again(s: &dyn Storage) {
    s.create_user("drita", Role::Paralegal, Some("prizren"))
        .unwrap();
    let first = enrol(s, "drita", 1);
    let code = bytes32(0xc0, 2);
    s.add_enrolment_code("drita", code, at(60)).unwrap();
    let same_actor = NewDevice {
        actor: [1; 16],
        ..new_device(2)
    };
    assert!(matches!(
        s.enrol(code, at(0), same_actor.clone()),
        Err(StorageError::Exists(_))
    ));
    assert_eq!(s.devices().unwrap().len(), 1, "nothing was enrolled");
    // The refused enrolment used nothing up: the code still works with another actor.
    let second = s.enrol(code, at(0), new_device(2)).unwrap().unwrap().1;
    assert_ne!(second.id, first.id);
    // A revoked device's actor may be bound again (a reset phone keeps its store).
    assert!(s.revoke_device(first.id).unwrap());
    let code = bytes32(0xc0, 3);
    s.add_enrolment_code("drita", code, at(60)).unwrap();
    let third = NewDevice {
        token_hash: bytes32(0x70, 3),
        ..same_actor
    };
    let again = s.enrol(code, at(0), third).unwrap().unwrap().1;
    assert_eq!(again.actor, first.actor);
}

fn principals_need_a_live_device_and_an_enabled_user(s: &dyn Storage) {
    s.create_user("drita", Role::Paralegal, Some("prizren"))
        .unwrap();
    s.create_user("besa", Role::Paralegal, Some("prizren"))
        .unwrap();
    let phone = enrol(s, "drita", 1);
    let laptop = enrol(s, "drita", 2);
    let besa = enrol(s, "besa", 3);
    let (user, device) = s.principal(bytes32(0x70, 1)).unwrap().unwrap();
    assert_eq!((user.name.as_str(), device.id), ("drita", phone.id));
    assert!(s.principal(bytes32(0x70, 99)).unwrap().is_none());

    assert!(s.revoke_device(phone.id).unwrap());
    assert!(s.principal(bytes32(0x70, 1)).unwrap().is_none());
    assert!(
        s.principal(bytes32(0x70, 2)).unwrap().is_some(),
        "revoking one device leaves the user's others"
    );
    assert!(!s.revoke_device(9_999).unwrap());
    let listed = s.devices().unwrap();
    assert!(listed.iter().any(|d| d.id == phone.id && d.revoked));
    assert!(listed.iter().any(|d| d.id == laptop.id && !d.revoked));

    s.set_user_disabled("drita", true).unwrap();
    assert!(s.principal(bytes32(0x70, 2)).unwrap().is_none());
    assert_eq!(
        s.principal(bytes32(0x70, 3)).unwrap().unwrap().1.id,
        besa.id
    );
    s.set_user_disabled("drita", false).unwrap();
    assert!(s.principal(bytes32(0x70, 2)).unwrap().is_some());
    assert!(
        s.principal(bytes32(0x70, 1)).unwrap().is_none(),
        "a revoked device stays revoked"
    );
}

// ---------------------------------------------------------------------------------
// Records: writing, and pulling whole documents.

fn written_records_are_read_back(s: &dyn Storage) {
    let [drita, ..] = team(s);
    let mut case = Case::new(1, &drita, Some("prizren"));
    assert!(s.record(case.id()).unwrap().is_none());
    let position = case.save(s, &drita);
    assert!(position > 0, "a log position after the changes written");
    let stored = s.record(case.id()).unwrap().unwrap();
    assert_eq!(stored.meta, case.meta);
    assert_eq!(stored.heads, case.record.heads().concat());
    let mut loaded = Record::load(&stored.doc, FormRegistry::builtin()).unwrap();
    assert_eq!(loaded.heads(), case.record.heads());
    assert_eq!(loaded.values(), case.record.values());
    let metas = s.record_metas(&own("drita")).unwrap();
    assert_eq!(metas, vec![(case.meta.clone(), "draft".to_string())]);
}

fn the_documents_phase_sends_whole_documents_in_last_change_order(s: &dyn Storage) {
    let [drita, besa, ..] = team(s);
    let mut a = Case::new(1, &drita, Some("prizren"));
    let mut b = Case::new(2, &drita, Some("prizren"));
    let mut c = Case::new(3, &drita, Some("prizren"));
    a.save(s, &drita);
    b.save(s, &drita);
    c.save(s, &drita);
    a.rename("Mirlinda Berisha");
    let head = a.save(s, &drita);

    // A fresh device of the same user.
    let laptop = enrol(s, "drita", 9);
    let page = pull(s, &own("drita"), &laptop, 0, 1 << 20, &[]);
    let ids: Vec<RecordId> = page.docs.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [b.id(), c.id(), a.id()], "ordered by last change");
    assert!(page.changes.is_empty() && page.removed.is_empty());
    assert!(!page.more);
    assert_eq!(page.cursor, head);
    let mut loaded = Record::load(&page.docs[2].1, FormRegistry::builtin()).unwrap();
    assert_eq!(loaded.heads(), a.record.heads());
    // Whole documents are only those in scope.
    assert!(
        pull(s, &own("besa"), &besa, 0, 1 << 20, &[])
            .docs
            .is_empty()
    );
}

/// A device that pushed its week of work on its first sync is not sent that work back:
/// records only it wrote are left out of its documents phase, and nothing else is.
fn the_documents_phase_skips_records_only_this_device_wrote(s: &dyn Storage) {
    let [drita, besa, ..] = team(s);
    let laptop = enrol(s, "drita", 9);
    let mut alone = Case::new(1, &drita, Some("prizren"));
    let mut shared = Case::new(2, &drita, Some("prizren"));
    let mut lent = Case::new(3, &besa, Some("prizren"));
    lent.assign("drita");
    alone.save(s, &drita);
    shared.save(s, &drita);
    lent.save(s, &besa);
    shared.rename("edited on the laptop");
    let head = shared.save(s, &laptop);

    let phone = pull_all(s, &own("drita"), &drita, 0, 1 << 20);
    assert_eq!(doc_ids(&phone), [lent.id(), shared.id()]);
    assert_eq!(phone.last().unwrap().cursor, head);
    let laptop_pages = pull_all(s, &own("drita"), &laptop, 0, 1 << 20);
    assert_eq!(doc_ids(&laptop_pages), [alone.id(), lent.id(), shared.id()]);
    // Asked for by name, a record is sent whoever wrote it.
    let wanted = pull(s, &own("drita"), &drita, head, 1 << 20, &[alone.id()]);
    assert_eq!(doc_ids(std::slice::from_ref(&wanted)), [alone.id()]);
}

fn the_documents_phase_pages_by_budget_and_resumes(s: &dyn Storage) {
    let [drita, ..] = team(s);
    let mut cases: Vec<Case> = (1..=4)
        .map(|n| Case::new(n, &drita, Some("prizren")))
        .collect();
    let mut head = 0;
    for case in &mut cases {
        head = case.save(s, &drita);
    }
    let expected: Vec<RecordId> = cases.iter().map(Case::id).collect();
    let laptop = enrol(s, "drita", 9);

    // A budget smaller than any document still gets one document per page.
    let pages = pull_all(s, &own("drita"), &laptop, 0, 1);
    assert_eq!(pages.len(), 4);
    assert!(pages.iter().all(|p| p.docs.len() == 1));
    assert_eq!(doc_ids(&pages), expected);
    assert_eq!(pages.last().unwrap().cursor, head);
    for page in &pages[..3] {
        assert_ne!(page.cursor, 0, "a page's cursor resumes after it");
    }

    // A budget of about two documents: fewer pages, the same documents, in order.
    let size = pages[0].docs[0].1.len();
    let pages = pull_all(s, &own("drita"), &laptop, 0, 2 * size + 64);
    assert!(pages.len() < 4);
    assert_eq!(doc_ids(&pages), expected);

    // Resuming mid-way (a cut connection) sends exactly the rest.
    let first = pull(s, &own("drita"), &laptop, 0, 1, &[]);
    let rest = pull_all(s, &own("drita"), &laptop, first.cursor, 1 << 20);
    let mut ids = doc_ids(std::slice::from_ref(&first));
    ids.extend(doc_ids(&rest));
    assert_eq!(ids, expected);

    // At the end, the changes phase: nothing new.
    let idle = pull(s, &own("drita"), &laptop, head, 1 << 20, &[]);
    assert!(idle.docs.is_empty() && idle.changes.is_empty() && idle.removed.is_empty());
    assert_eq!(idle.cursor, head);
    assert!(!idle.more);
}

fn a_record_changed_during_the_documents_phase_is_sent_again(s: &dyn Storage) {
    let [drita, ..] = team(s);
    let mut a = Case::new(1, &drita, Some("prizren"));
    let mut b = Case::new(2, &drita, Some("prizren"));
    a.save(s, &drita);
    b.save(s, &drita);
    let laptop = enrol(s, "drita", 9);
    let first = pull(s, &own("drita"), &laptop, 0, 1, &[]);
    assert_eq!(doc_ids(std::slice::from_ref(&first)), [a.id()]);
    a.rename("changed meanwhile");
    let head = a.save(s, &drita);
    let rest = pull_all(s, &own("drita"), &laptop, first.cursor, 1 << 20);
    assert_eq!(doc_ids(&rest), [b.id(), a.id()]);
    let (_, doc) = rest.last().unwrap().docs.last().unwrap();
    let mut loaded = Record::load(doc, FormRegistry::builtin()).unwrap();
    assert_eq!(loaded.heads(), a.record.heads());
    assert_eq!(rest.last().unwrap().cursor, head);
}

// ---------------------------------------------------------------------------------
// Records: pulling changes.

fn the_changes_phase_sends_what_other_devices_wrote(s: &dyn Storage) {
    let [drita, ..] = team(s);
    let laptop = enrol(s, "drita", 9);
    let mut case = Case::new(1, &drita, Some("prizren"));
    let start = case.save(s, &drita);
    let mut replica = Record::load(
        &pull(s, &own("drita"), &laptop, 0, 1 << 20, &[]).docs[0].1,
        FormRegistry::builtin(),
    )
    .unwrap();

    case.rename("Jelena Gërguri");
    case.rename("Jelena Gërguri-Krasniqi");
    let expected: Vec<Vec<u8>> = case.unstored().into_iter().map(|c| c.1).collect();
    let head = case.save(s, &drita);

    let page = pull(s, &own("drita"), &laptop, start, 1 << 20, &[]);
    assert_eq!(change_bytes(std::slice::from_ref(&page)), expected);
    assert!(page.changes.iter().all(|c| c.record == case.id()));
    assert!(page.changes.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(page.changes.iter().all(|c| c.seq > start && c.seq <= head));
    assert!(page.docs.is_empty() && !page.more);
    assert_eq!(page.cursor, head);
    for change in &page.changes {
        replica.apply(&change.bytes).unwrap();
    }
    assert_eq!(replica.heads(), case.record.heads());

    // The device that wrote them is not sent its own changes back.
    let own_page = pull(s, &own("drita"), &drita, start, 1 << 20, &[]);
    assert!(own_page.changes.is_empty());
    assert_eq!(own_page.cursor, head);
}

fn the_changes_phase_pages_by_budget(s: &dyn Storage) {
    let [drita, _, _, merita] = team(s);
    let mut case = Case::new(1, &drita, Some("prizren"));
    let start = case.save(s, &drita);
    for n in 0..5 {
        case.rename(&format!("name {n}"));
    }
    let expected: Vec<Vec<u8>> = case.unstored().into_iter().map(|c| c.1).collect();
    let head = case.save(s, &drita);

    let pages = pull_all(s, &prizren(), &merita, start, 1);
    assert_eq!(pages.len(), 5, "one change per page when none fits");
    assert_eq!(change_bytes(&pages), expected);
    assert_eq!(pages.last().unwrap().cursor, head);
    let cursors: Vec<u64> = pages.iter().map(|p| p.cursor).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]));

    // Resuming from any page's cursor sends exactly what followed it.
    let rest = pull_all(s, &prizren(), &merita, pages[1].cursor, 1 << 20);
    assert_eq!(change_bytes(&rest), expected[2..]);
}

fn pulls_and_lists_keep_to_the_scope(s: &dyn Storage) {
    let [drita, besa, fatos, merita] = team(s);
    let mut by_drita = Case::new(1, &drita, Some("prizren"));
    let mut by_besa = Case::new(2, &besa, Some("prizren"));
    let mut by_fatos = Case::new(3, &fatos, Some("peja"));
    let mut for_drita = Case::new(4, &besa, Some("prizren"));
    for_drita.assign("drita");
    by_drita.save(s, &drita);
    by_besa.save(s, &besa);
    by_fatos.save(s, &fatos);
    let start = for_drita.save(s, &besa);

    // Whole documents, read on a fresh device of each user (a writer is not sent back
    // what it alone wrote, which is not what this case is about).
    let docs = |scope: &Scope, n: u8| {
        let user = match scope {
            Scope::Own(user) => user.clone(),
            _ => "merita".to_string(),
        };
        let reader = enrol(s, &user, n);
        sorted(doc_ids(&pull_all(s, scope, &reader, 0, 1 << 20)))
    };
    let ids = |cases: &[&Case]| sorted(cases.iter().map(|c| c.id()).collect());
    assert_eq!(
        docs(&own("drita"), 11),
        ids(&[&by_drita, &for_drita]),
        "own and assigned"
    );
    assert_eq!(docs(&own("besa"), 12), ids(&[&by_besa, &for_drita]));
    assert_eq!(docs(&own("fatos"), 13), ids(&[&by_fatos]));
    assert_eq!(
        docs(&prizren(), 14),
        ids(&[&by_drita, &by_besa, &for_drita])
    );
    assert!(docs(&Scope::Nothing, 15).is_empty());
    let nothing = pull(s, &Scope::Nothing, &merita, 0, 1 << 20, &[]);
    assert!(!nothing.more);

    let listed = |scope: &Scope| {
        sorted(
            s.record_metas(scope)
                .unwrap()
                .into_iter()
                .map(|(m, _)| m.id)
                .collect(),
        )
    };
    assert_eq!(listed(&own("drita")), ids(&[&by_drita, &for_drita]));
    assert_eq!(listed(&prizren()), ids(&[&by_drita, &by_besa, &for_drita]));
    assert!(listed(&Scope::Nothing).is_empty());
    let recent = s.record_metas(&prizren()).unwrap();
    assert_eq!(
        recent[0].0.id,
        for_drita.id(),
        "most recently changed first"
    );

    // Changes too: Fatos's edit reaches Peja's scope, not Prizren's or Drita's.
    by_fatos.rename("changed in Peja");
    by_fatos.save(s, &fatos);
    by_besa.rename("changed by Besa");
    by_besa.save(s, &besa);
    let changes_for = |scope: &Scope, device: &Device| {
        let pages = pull_all(s, scope, device, start, 1 << 20);
        pages
            .iter()
            .flat_map(|p| p.changes.iter().map(|c| c.record))
            .collect::<Vec<_>>()
    };
    assert!(changes_for(&own("drita"), &drita).is_empty());
    assert_eq!(changes_for(&prizren(), &merita), [by_besa.id()]);
    assert_eq!(
        changes_for(&Scope::Team("peja".into()), &besa),
        [by_fatos.id()]
    );
    assert!(changes_for(&Scope::Nothing, &merita).is_empty());
}

fn want_docs_are_answered_only_within_scope(s: &dyn Storage) {
    let [drita, besa, fatos, merita] = team(s);
    let mut mine = Case::new(1, &drita, Some("prizren"));
    let mut besas = Case::new(2, &besa, Some("prizren"));
    let mut peja = Case::new(3, &fatos, Some("peja"));
    mine.save(s, &drita);
    besas.save(s, &besa);
    let head = peja.save(s, &fatos);
    let unknown = RecordId::new_v7(1_790_000_000_999, [9; 10]);
    let want = [mine.id(), besas.id(), peja.id(), unknown];

    let page = pull(s, &own("drita"), &drita, head, 1 << 20, &want);
    let ids: Vec<RecordId> = page.docs.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [mine.id()]);
    let mut loaded = Record::load(&page.docs[0].1, FormRegistry::builtin()).unwrap();
    assert_eq!(loaded.heads(), mine.record.heads());

    let page = pull(s, &prizren(), &merita, head, 1 << 20, &want);
    let ids = sorted(page.docs.iter().map(|(id, _)| *id).collect());
    assert_eq!(ids, sorted(vec![mine.id(), besas.id()]));

    let page = pull(s, &Scope::Nothing, &merita, head, 1 << 20, &want);
    assert!(page.docs.is_empty());
}

/// A device asks for whole documents and has changes waiting: documents that fill the
/// page must not make it skip the changes (the cursor may only pass what was sent).
fn want_docs_filling_the_page_do_not_skip_changes(s: &dyn Storage) {
    let [drita, ..] = team(s);
    let laptop = enrol(s, "drita", 9);
    let mut wanted = Case::new(1, &drita, Some("prizren"));
    let mut edited = Case::new(2, &drita, Some("prizren"));
    wanted.save(s, &drita);
    let start = edited.save(s, &drita);
    edited.rename("edited on the phone");
    let expected: Vec<Vec<u8>> = edited.unstored().into_iter().map(|c| c.1).collect();
    let head = edited.save(s, &drita);

    let first = pull(s, &own("drita"), &laptop, start, 1, &[wanted.id()]);
    assert_eq!(doc_ids(std::slice::from_ref(&first)), [wanted.id()]);
    let mut pages = vec![first.clone()];
    if first.more {
        pages.extend(pull_all(s, &own("drita"), &laptop, first.cursor, 1 << 20));
    }
    assert!(
        change_bytes(&pages) == expected,
        "the edit after the cursor was never sent (first page's cursor {}, head {head})",
        first.cursor
    );
    assert_eq!(pages.last().unwrap().cursor, head);
}

// ---------------------------------------------------------------------------------
// Records: losing access.

fn a_reassigned_record_is_removed_for_who_lost_it(s: &dyn Storage) {
    let [drita, besa, fatos, merita] = team(s);
    let mut case = Case::new(1, &besa, Some("prizren"));
    case.assign("drita");
    let start = case.save(s, &besa);
    assert_eq!(
        doc_ids(&pull_all(s, &own("drita"), &drita, 0, 1 << 20)),
        [case.id()]
    );

    // Merita reassigns it to Fatos: Drita loses sight of it.
    case.assign("fatos");
    let mut w = case.write();
    w.revoked_from = vec!["drita".into()];
    let head = s.write(&[w], merita.id).unwrap();
    case.stored();

    let page = pull(s, &own("drita"), &drita, start, 1 << 20, &[]);
    assert_eq!(page.removed, [case.id()]);
    assert!(page.changes.is_empty(), "no content of a record she lost");
    assert_eq!(page.cursor, head);
    assert!(
        pull(s, &own("drita"), &drita, head, 1 << 20, &[])
            .removed
            .is_empty(),
        "reported once"
    );
    // Who still sees it is told nothing of the kind, and gets the change.
    let owner = pull(s, &own("besa"), &besa, start, 1 << 20, &[]);
    assert!(owner.removed.is_empty());
    assert_eq!(owner.changes.len(), 1);
    let fatos_page = pull(s, &own("fatos"), &fatos, start, 1 << 20, &[]);
    assert!(fatos_page.removed.is_empty());
    assert!(s.record_metas(&own("drita")).unwrap().is_empty());

    // Given back before she synced: nothing to remove.
    case.assign("drita");
    case.save(s, &merita);
    let back = pull(s, &own("drita"), &drita, start, 1 << 20, &[]);
    assert!(back.removed.is_empty());
    assert!(!back.changes.is_empty());
}

/// Reassignment away gives each of the user's devices a grant to deliver late edits;
/// the grant closes once the device has sent a cursor at or past the page that
/// announced the removal, and a cursor sent later cannot reopen it.
fn late_grants_follow_what_the_server_announced(s: &dyn Storage) {
    let [drita, besa, fatos, merita] = team(s);
    let mut case = Case::new(1, &besa, Some("prizren"));
    case.assign("drita");
    case.save(s, &besa);
    let other = Case::new(2, &besa, Some("prizren"));
    assert!(!s.late_grant(drita.id, case.id()).unwrap());

    case.assign("fatos");
    let mut w = case.write();
    w.revoked_from = vec!["drita".into()];
    s.write(&[w], merita.id).unwrap();
    case.stored();
    assert!(s.late_grant(drita.id, case.id()).unwrap());
    assert!(!s.late_grant(besa.id, case.id()).unwrap());
    assert!(!s.late_grant(fatos.id, case.id()).unwrap());
    assert!(!s.late_grant(drita.id, other.id()).unwrap());

    // Not announced yet: any cursor leaves it open.
    s.close_late_grants(drita.id, 1_000_000).unwrap();
    assert!(s.late_grant(drita.id, case.id()).unwrap());
    s.announce_removals(drita.id, &[case.id()], 50).unwrap();
    // A repeated page does not move the announcement later.
    s.announce_removals(drita.id, &[case.id()], 70).unwrap();
    s.close_late_grants(drita.id, 49).unwrap();
    s.close_late_grants(drita.id, (1 << 63) | 60).unwrap();
    assert!(
        s.late_grant(drita.id, case.id()).unwrap(),
        "not yet committed"
    );
    s.close_late_grants(drita.id, 50).unwrap();
    assert!(!s.late_grant(drita.id, case.id()).unwrap());
    // An old cursor sent later does not reopen it.
    s.close_late_grants(drita.id, 1).unwrap();
    assert!(!s.late_grant(drita.id, case.id()).unwrap());

    // A device enrolled after the reassignment gets no grant.
    let second = enrol(s, "drita", 9);
    assert!(!s.late_grant(second.id, case.id()).unwrap());
}

/// Pieces of an upload are kept in order, survive repeats, are replaced by a new
/// upload, and come back whole only when every byte is there.
fn uploads_are_kept_piece_by_piece(s: &dyn Storage) {
    use intake_shared::protocol::{ItemKind, Piece, pieces};
    let [drita, besa, ..] = team(s);
    let item: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
    let digest = pieces::digest(&item);
    let piece =
        |from: usize, len: usize| Piece::of([1; 16], ItemKind::Push, digest, &item, from, len);
    assert_eq!(s.put_piece(drita.id, &piece(0, 4000)).unwrap(), 4000);
    assert_eq!(s.upload(drita.id, &digest).unwrap(), None);
    // A piece past what is held is not kept; one that overlaps adds its tail.
    assert_eq!(s.put_piece(drita.id, &piece(6000, 1000)).unwrap(), 4000);
    assert_eq!(s.put_piece(drita.id, &piece(3000, 4000)).unwrap(), 7000);
    // The same piece again changes nothing.
    assert_eq!(s.put_piece(drita.id, &piece(3000, 4000)).unwrap(), 7000);
    // Another device's upload is its own.
    assert_eq!(s.put_piece(besa.id, &piece(7000, 3000)).unwrap(), 0);
    assert_eq!(s.put_piece(drita.id, &piece(7000, 3000)).unwrap(), 10_000);
    assert_eq!(s.upload(drita.id, &digest).unwrap(), Some(item.clone()));
    assert_eq!(s.upload(drita.id, &[0; 32]).unwrap(), None);
    // The last piece repeated (its answer lost): still whole.
    assert_eq!(s.put_piece(drita.id, &piece(7000, 3000)).unwrap(), 10_000);
    // A new upload replaces it; a piece of another digest past 0 is not kept.
    let next: Vec<u8> = vec![5; 300];
    let nd = pieces::digest(&next);
    let other = Piece::of([2; 16], ItemKind::Push, nd, &next, 100, 100);
    assert_eq!(s.put_piece(drita.id, &other).unwrap(), 0);
    assert_eq!(s.upload(drita.id, &digest).unwrap(), Some(item));
    let first = Piece::of([2; 16], ItemKind::Push, nd, &next, 0, 300);
    assert_eq!(s.put_piece(drita.id, &first).unwrap(), 300);
    assert_eq!(s.upload(drita.id, &digest).unwrap(), None);
    assert_eq!(s.upload(drita.id, &nd).unwrap(), Some(next));
    s.drop_upload(drita.id).unwrap();
    assert_eq!(s.upload(drita.id, &nd).unwrap(), None);
}

/// A device still in its documents phase when it loses sight of a record it was
/// already sent must still be told to remove it.
fn access_lost_during_the_documents_phase_is_reported(s: &dyn Storage) {
    let [drita, besa, _, merita] = team(s);
    let mut lent = Case::new(1, &besa, Some("prizren"));
    lent.assign("drita");
    lent.save(s, &besa);
    let mut mine = Case::new(2, &drita, Some("prizren"));
    mine.save(s, &drita);

    let laptop = enrol(s, "drita", 9);
    let first = pull(s, &own("drita"), &laptop, 0, 1, &[]);
    assert_eq!(doc_ids(std::slice::from_ref(&first)), [lent.id()]);
    assert!(first.more);

    lent.assign("besa");
    let mut w = lent.write();
    w.revoked_from = vec!["drita".into()];
    s.write(&[w], merita.id).unwrap();
    lent.stored();

    let mut pages = pull_all(s, &own("drita"), &laptop, first.cursor, 1);
    let cursor = pages.last().unwrap().cursor;
    pages.push(pull(s, &own("drita"), &laptop, cursor, 1 << 20, &[]));
    let removed: Vec<RecordId> = pages.iter().flat_map(|p| p.removed.clone()).collect();
    assert_eq!(
        removed,
        [lent.id()],
        "the laptop keeps a record Drita may no longer see"
    );
}

// ---------------------------------------------------------------------------------
// Records: concurrency and idempotency.

fn a_stale_write_is_refused_whole(s: &dyn Storage) {
    let [drita, besa, ..] = team(s);
    let mut existing = Case::new(1, &drita, Some("prizren"));
    let head = existing.save(s, &drita);

    // Besa's push was prepared against heads that are not the stored ones.
    let mut fresh = Case::new(2, &besa, Some("prizren"));
    existing.rename("prepared against old heads");
    let mut stale = existing.write();
    stale.expected_heads = Some(vec![0; 32]);
    let result = s.write(&[fresh.write(), stale], besa.id);
    assert!(matches!(result, Err(StorageError::Stale)), "{result:?}");
    assert!(
        s.record(fresh.id()).unwrap().is_none(),
        "nothing of the batch"
    );
    let stored = s.record(existing.id()).unwrap().unwrap();
    assert_ne!(stored.heads, existing.record.heads().concat());
    assert!(
        pull(s, &own("drita"), &besa, head, 1 << 20, &[])
            .changes
            .is_empty()
    );

    // A "new" record that exists meanwhile is stale too.
    let mut copy = existing.write();
    copy.expected_heads = None;
    assert!(matches!(
        s.write(&[copy], besa.id),
        Err(StorageError::Stale)
    ));

    // Prepared again against what is stored, it goes through.
    let position = s
        .write(&[fresh.write(), existing.write()], besa.id)
        .unwrap();
    assert!(position > head);
    assert!(s.record(fresh.id()).unwrap().is_some());
}

fn a_change_written_twice_is_stored_once(s: &dyn Storage) {
    let [drita, _, _, merita] = team(s);
    let mut before = Case::new(1, &drita, Some("prizren"));
    let start = before.save(s, &drita);
    let mut case = Case::new(2, &drita, Some("prizren"));
    let mut w = case.write();
    let head = s.write(std::slice::from_ref(&w), drita.id).unwrap();
    case.stored();
    assert!(head > start);

    // The same push again (the answer was lost): nothing new.
    w.expected_heads = Some(case.record.heads().concat());
    assert_eq!(s.write(&[w], drita.id).unwrap(), head);

    // A push holding one stored and one new change appends only the new one.
    assert!(case.unstored().is_empty());
    case.rename("one more");
    let mut w = case.write();
    let first_change = inspect_changes(&case.record.changes_since(&[])).unwrap()[0].clone();
    w.new_changes
        .insert(0, (first_change.hash, first_change.bytes));
    let next = s.write(&[w], drita.id).unwrap();
    assert!(
        next > head,
        "log positions only grow (they need not be contiguous)"
    );

    let pages = pull_all(s, &prizren(), &merita, start, 1 << 20);
    let expected: Vec<Vec<u8>> = inspect_changes(&case.record.changes_since(&[]))
        .unwrap()
        .into_iter()
        .map(|c| c.bytes)
        .collect();
    assert_eq!(expected.len(), 3);
    assert_eq!(
        change_bytes(&pages),
        expected,
        "each change once in the log"
    );
}

// ---------------------------------------------------------------------------------
// SQLite only: stores created by an earlier server.

/// Migration 1 exactly as it shipped with the first sync server (commit `ab8e24f`,
/// `server/src/storage/schema.rs`). Migrations only grow: a server must open a store
/// that an earlier server created, migrate it, and work with it.
const SHIPPED_SCHEMA_1: &str = "
    CREATE TABLE users (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        role       TEXT NOT NULL,
        team       TEXT,
        disabled   INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE enrolment_codes (
        code_hash  BLOB PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id),
        expires_at INTEGER NOT NULL,
        used_at    INTEGER
    );
    CREATE TABLE devices (
        id          INTEGER PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES users(id),
        token_hash  BLOB NOT NULL UNIQUE,
        actor       BLOB NOT NULL,
        label       TEXT NOT NULL,
        enrolled_at INTEGER NOT NULL,
        revoked_at  INTEGER
    );
    CREATE UNIQUE INDEX devices_live_actor ON devices(actor) WHERE revoked_at IS NULL;
    CREATE TABLE records (
        id          BLOB PRIMARY KEY,
        owner       TEXT NOT NULL,
        team        TEXT,
        assigned_to TEXT,
        status      TEXT NOT NULL,
        doc         BLOB NOT NULL,
        heads       BLOB NOT NULL,
        last_seq    INTEGER NOT NULL
    );
    CREATE INDEX records_owner ON records(owner);
    CREATE INDEX records_assigned ON records(assigned_to);
    CREATE INDEX records_team ON records(team, last_seq);
    CREATE INDEX records_last_seq ON records(last_seq);
    CREATE TABLE log (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id BLOB NOT NULL,
        hash      BLOB NOT NULL UNIQUE,
        device_id INTEGER NOT NULL,
        bytes     BLOB NOT NULL
    );
    CREATE TABLE access_revoked (
        seq       INTEGER NOT NULL,
        user      TEXT NOT NULL,
        record_id BLOB NOT NULL
    );
    CREATE INDEX access_revoked_user ON access_revoked(user, seq);
    PRAGMA user_version = 1;
";

#[test]
fn sqlite_store_created_by_schema_1_still_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intake-server.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(SHIPPED_SCHEMA_1)
        .unwrap();
    let store = SqliteStorage::open(&path).unwrap();
    let s: &dyn Storage = &store;
    let [drita, ..] = team(s);
    let mut case = Case::new(1, &drita, Some("prizren"));
    let written = s.write(&[case.write()], drita.id);
    assert!(
        written.is_ok(),
        "a push to a store created by the first server fails: {written:?}"
    );
    let laptop = enrol(s, "drita", 9);
    let pulled = s.pull(&PullRequest {
        scope: &own("drita"),
        user: "drita",
        device: laptop.id,
        cursor: 0,
        budget: 1 << 20,
        want_docs: &[],
    });
    assert!(
        pulled.is_ok_and(|p| p.docs.len() == 1),
        "a fresh device cannot pull from a store created by the first server"
    );
}

// ---------------------------------------------------------------------------------
// Every behaviour, on every backend.

macro_rules! backend {
    ($backend:ident, $open:ident, [$($case:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[test]
                fn $case() {
                    let fixture = super::$open();
                    super::$case(fixture.storage.as_ref());
                }
            )*
        }
    };
}

macro_rules! conformance {
    (backends: [$($backend:ident => $open:ident),* $(,)?], cases: $cases:tt $(,)?) => {
        $( backend!($backend, $open, $cases); )*
    };
}

conformance! {
    backends: [
        sqlite => open_sqlite,
    ],
    cases: [
        users_are_created_found_and_unique,
        users_are_disabled_and_enabled,
        an_enrolment_code_is_redeemed_once,
        expired_unknown_and_disabled_codes_do_not_enrol,
        a_live_actor_enrols_once_and_a_revoked_one_again,
        principals_need_a_live_device_and_an_enabled_user,
        written_records_are_read_back,
        the_documents_phase_sends_whole_documents_in_last_change_order,
        the_documents_phase_skips_records_only_this_device_wrote,
        the_documents_phase_pages_by_budget_and_resumes,
        a_record_changed_during_the_documents_phase_is_sent_again,
        the_changes_phase_sends_what_other_devices_wrote,
        the_changes_phase_pages_by_budget,
        pulls_and_lists_keep_to_the_scope,
        want_docs_are_answered_only_within_scope,
        want_docs_filling_the_page_do_not_skip_changes,
        a_reassigned_record_is_removed_for_who_lost_it,
        late_grants_follow_what_the_server_announced,
        uploads_are_kept_piece_by_piece,
        access_lost_during_the_documents_phase_is_reported,
        a_stale_write_is_refused_whole,
        a_change_written_twice_is_stored_once,
    ],
}
