//! The policy (`server/src/policy.rs`) as tables: who sees and writes which records
//! (each role against each relation to a record), and which top-level writes of a
//! change each role may make, with the actor check first. `ChangeInfo` values are built
//! by hand: the policy judges facts about a change, not Automerge bytes.

use chrono::{TimeZone, Utc};
use intake_server::policy::{self, Principal};
use intake_server::storage::{Device, RecordMeta, Role, Scope, User};
use intake_shared::protocol::Rejection;
use intake_shared::record::{ChangeInfo, RootWrite};
use intake_shared::{RecordId, Value};

/// The actor prefix bound to every caller's device in these tables.
const BOUND: [u8; 16] = [0xab; 16];

fn principal(name: &str, role: Role, team: Option<&str>) -> Principal {
    Principal {
        user: User {
            id: 1,
            name: name.into(),
            role,
            team: team.map(Into::into),
            disabled: false,
        },
        device: Device {
            id: 7,
            user: name.into(),
            actor: hex::encode(BOUND),
            label: "phone".into(),
            enrolled_at: Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap(),
            revoked: false,
        },
    }
}

/// A paralegal, a supervisor, a supervisor without a team, and an admin.
fn callers() -> [(&'static str, Principal); 4] {
    [
        (
            "paralegal",
            principal("drita", Role::Paralegal, Some("prizren")),
        ),
        (
            "supervisor",
            principal("merita", Role::Supervisor, Some("prizren")),
        ),
        (
            "supervisor without a team",
            principal("nora", Role::Supervisor, None),
        ),
        ("admin", principal("admin", Role::Admin, None)),
    ]
}

fn record_id() -> RecordId {
    RecordId::new_v7(1_790_000_000_000, [7; 10])
}

fn meta(owner: &str, team: Option<&str>, assigned_to: Option<&str>) -> RecordMeta {
    RecordMeta {
        id: record_id(),
        owner: owner.into(),
        team: team.map(Into::into),
        assigned_to: assigned_to.map(Into::into),
    }
}

/// A record's relation to the caller `p`.
fn related(relation: &str, p: &Principal) -> RecordMeta {
    let me = p.user.name.as_str();
    match relation {
        "own" => meta(me, p.user.team.as_deref(), None),
        "assigned" => meta("besa", Some("prizren"), Some(me)),
        "assigned, other team" => meta("fatos", Some("peja"), Some(me)),
        "same team" => meta("besa", Some("prizren"), None),
        "same team, assigned to another" => meta("besa", Some("prizren"), Some("fatos")),
        "other team" => meta("fatos", Some("peja"), None),
        "no team" => meta("ghost", None, None),
        other => panic!("no relation {other}"),
    }
}

#[test]
fn scopes_by_role() {
    let [(_, paralegal), (_, supervisor), (_, teamless), (_, admin)] = callers();
    assert_eq!(policy::scope(&paralegal), Scope::Own("drita".into()));
    assert_eq!(policy::scope(&supervisor), Scope::Team("prizren".into()));
    assert_eq!(policy::scope(&teamless), Scope::Nothing);
    assert_eq!(policy::scope(&admin), Scope::Nothing);
    // A paralegal's team does not widen what they see.
    let teamless_paralegal = principal("drita", Role::Paralegal, None);
    assert_eq!(
        policy::scope(&teamless_paralegal),
        Scope::Own("drita".into())
    );
    // An admin with a team still sees no records.
    let admin_in_a_team = principal("admin", Role::Admin, Some("prizren"));
    assert_eq!(policy::scope(&admin_in_a_team), Scope::Nothing);
}

#[test]
fn who_reads_and_writes_which_record() {
    // Columns: paralegal, supervisor, supervisor without a team, admin.
    let table: &[(&str, [bool; 4])] = &[
        ("own", [true, true, false, false]),
        ("assigned", [true, true, false, false]),
        ("assigned, other team", [true, false, false, false]),
        ("same team", [false, true, false, false]),
        (
            "same team, assigned to another",
            [false, true, false, false],
        ),
        ("other team", [false, false, false, false]),
        ("no team", [false, false, false, false]),
    ];
    let callers = callers();
    for (relation, expected) in table {
        for ((who, p), expected) in callers.iter().zip(expected) {
            let meta = related(relation, p);
            assert_eq!(
                policy::may_read(p, &meta),
                *expected,
                "may_read: {who} × {relation}"
            );
            assert_eq!(
                policy::may_write(p, Some(&meta)),
                *expected,
                "may_write: {who} × {relation}"
            );
        }
    }
}

#[test]
fn who_creates_and_who_administers() {
    let [(_, paralegal), (_, supervisor), _, (_, admin)] = callers();
    for (who, p, creates, administers) in [
        ("paralegal", &paralegal, true, false),
        ("supervisor", &supervisor, true, false),
        ("admin", &admin, false, true),
    ] {
        assert_eq!(policy::may_write(p, None), creates, "create: {who}");
        assert_eq!(policy::may_administer(p), administers, "administer: {who}");
    }
    let [_, _, (_, teamless), _] = callers();
    assert!(!policy::may_administer(&teamless));
}

/// A supervisor without a team sees nothing (`Scope::Nothing`), so a record it
/// created could never be read or written again by it — nor by anyone else, as the
/// record would have no team. Creating must be refused like every other write.
#[test]
fn a_supervisor_without_a_team_may_not_create_what_it_could_never_see() {
    let [_, _, (_, teamless), _] = callers();
    let created = RecordMeta {
        id: record_id(),
        owner: teamless.user.name.clone(),
        team: None,
        assigned_to: None,
    };
    assert!(
        !policy::may_read(&teamless, &created),
        "the created record is out of its scope"
    );
    assert!(
        !policy::may_write(&teamless, None),
        "may_write(None) lets a supervisor without a team create a record it can never see or edit again"
    );
}

// ---------------------------------------------------------------------------------
// Checking changes.

fn actor(prefix: &[u8], suffix: &[u8]) -> Vec<u8> {
    [prefix, suffix].concat()
}

fn change(actor: Vec<u8>, root_writes: Vec<RootWrite>) -> ChangeInfo {
    ChangeInfo {
        hash: [1; 32],
        actor,
        seq: 1,
        message: None,
        deps: Vec::new(),
        ops: root_writes.len(),
        root_writes,
        bytes: Vec::new(),
    }
}

fn put(key: &str, value: Value) -> RootWrite {
    RootWrite {
        key: key.into(),
        value: Some(value),
    }
}

fn text(key: &str, value: &str) -> RootWrite {
    put(key, Value::Text(value.into()))
}

/// A deletion, or a new object (map, list, text): no scalar value.
fn object(key: &str) -> RootWrite {
    RootWrite {
        key: key.into(),
        value: None,
    }
}

/// What `Record::create` writes at the root.
fn creating_writes() -> Vec<RootWrite> {
    vec![
        text("id", &record_id().to_string()),
        text("form", "intake"),
        put("form_version", Value::Int(1)),
        text("created_at", "2026-11-27T09:00:00+00:00"),
        text("status", "draft"),
        object("fields"),
        object("comments"),
        object("actions"),
    ]
}

/// (what, top-level writes, whether the change creates the record, the expected
/// verdict for [paralegal, supervisor, supervisor without a team, admin]).
type WriteCase = (&'static str, Vec<RootWrite>, bool, [Option<Rejection>; 4]);

const OK: Option<Rejection> = None;
const PROTECTED: Option<Rejection> = Some(Rejection::ProtectedField);

fn check(p: &Principal, change: &ChangeInfo, creates: bool) -> Option<Rejection> {
    match policy::check_change(p, change, &record_id().to_string(), creates) {
        Ok(()) => None,
        Err((reason, message)) => {
            assert!(!message.is_empty(), "a refusal says why");
            Some(reason)
        }
    }
}

#[test]
fn which_top_level_writes_each_role_may_make() {
    let id = record_id().to_string();
    let other_id = RecordId::new_v7(1_790_000_000_001, [8; 10]).to_string();
    let mut table: Vec<WriteCase> = vec![
        ("no top-level write", vec![], false, [OK; 4]),
        (
            "status draft",
            vec![text("status", "draft")],
            false,
            [OK; 4],
        ),
        (
            "status submitted",
            vec![text("status", "submitted")],
            false,
            [OK; 4],
        ),
        (
            "status needs_changes",
            vec![text("status", "needs_changes")],
            false,
            [PROTECTED, OK, OK, PROTECTED],
        ),
        (
            "status approved",
            vec![text("status", "approved")],
            false,
            [PROTECTED, OK, OK, PROTECTED],
        ),
        (
            "status closed",
            vec![text("status", "closed")],
            false,
            [PROTECTED, OK, OK, PROTECTED],
        ),
        (
            "status approved in the creating change",
            vec![text("status", "approved")],
            true,
            [PROTECTED, OK, OK, PROTECTED],
        ),
        (
            "status garbage",
            vec![text("status", "garbage")],
            false,
            [PROTECTED; 4],
        ),
        (
            "status not text",
            vec![put("status", Value::Int(2))],
            false,
            [PROTECTED; 4],
        ),
        (
            "status deleted",
            vec![object("status")],
            false,
            [PROTECTED; 4],
        ),
        (
            "review_note",
            vec![text("review_note", "re-ask consent")],
            false,
            [PROTECTED, OK, OK, PROTECTED],
        ),
        (
            "review_note deleted",
            vec![object("review_note")],
            false,
            [PROTECTED, OK, OK, PROTECTED],
        ),
        (
            "assigned_to",
            vec![text("assigned_to", "besa")],
            false,
            [PROTECTED, OK, OK, PROTECTED],
        ),
        (
            "needs_changes with a note",
            vec![
                text("status", "needs_changes"),
                text("review_note", "re-ask consent"),
            ],
            false,
            [PROTECTED, OK, OK, PROTECTED],
        ),
        (
            "submitted, then an assignment",
            vec![text("status", "submitted"), text("assigned_to", "besa")],
            false,
            [PROTECTED, OK, OK, PROTECTED],
        ),
        ("the creating change", creating_writes(), true, [OK; 4]),
        (
            "the creating change, later",
            creating_writes(),
            false,
            [PROTECTED; 4],
        ),
        (
            "id of another record",
            vec![text("id", &other_id)],
            true,
            [PROTECTED; 4],
        ),
        (
            "id not text",
            vec![put("id", Value::Int(1))],
            true,
            [PROTECTED; 4],
        ),
        ("id deleted", vec![object("id")], true, [PROTECTED; 4]),
        ("id", vec![text("id", &id)], true, [OK; 4]),
        (
            "unknown key",
            vec![text("owner", "fatos")],
            false,
            [PROTECTED; 4],
        ),
        (
            "unknown key when created",
            vec![text("team", "peja")],
            true,
            [PROTECTED; 4],
        ),
        ("empty key", vec![text("", "x")], true, [PROTECTED; 4]),
    ];
    // Every structure key: allowed in the creating change only, for every role.
    for (key, write) in [
        ("id", text("id", &id)),
        ("form", text("form", "intake")),
        ("form_version", put("form_version", Value::Int(1))),
        ("created_at", text("created_at", "2026-11-27T09:00:00Z")),
        ("fields", object("fields")),
        ("comments", object("comments")),
        ("actions", object("actions")),
    ] {
        table.push((key, vec![write.clone()], true, [OK; 4]));
        table.push((key, vec![write], false, [PROTECTED; 4]));
    }

    let callers = callers();
    for (what, writes, creates, expected) in &table {
        let c = change(actor(&BOUND, &[0, 0, 0, 1]), writes.clone());
        for ((who, p), expected) in callers.iter().zip(expected) {
            assert_eq!(
                check(p, &c, *creates),
                *expected,
                "{who}: {what} (creates: {creates})"
            );
        }
    }
}

#[test]
fn a_change_must_carry_the_devices_actor() {
    let mut other = BOUND;
    other[15] ^= 1;
    // (what, actor, expected)
    let table: Vec<(&str, Vec<u8>, Option<Rejection>)> = vec![
        ("prefix and session", actor(&BOUND, &[1, 2, 3, 4]), OK),
        ("the prefix alone", BOUND.to_vec(), OK),
        ("a longer session part", actor(&BOUND, &[9; 16]), OK),
        (
            "another device's prefix",
            actor(&[0xcd; 16], &[1, 2, 3, 4]),
            Some(Rejection::ForeignActor),
        ),
        (
            "one byte off",
            actor(&other, &[1, 2, 3, 4]),
            Some(Rejection::ForeignActor),
        ),
        (
            "the prefix shifted",
            actor(&[0, 0, 0, 0], &BOUND),
            Some(Rejection::ForeignActor),
        ),
        (
            "too short",
            BOUND[..15].to_vec(),
            Some(Rejection::ForeignActor),
        ),
        ("empty", Vec::new(), Some(Rejection::ForeignActor)),
    ];
    for (_, p) in callers() {
        for (what, actor, expected) in &table {
            for creates in [false, true] {
                let c = change(actor.clone(), vec![text("status", "submitted")]);
                assert_eq!(check(&p, &c, creates), *expected, "{}: {what}", p.user.name);
            }
        }
    }
}

#[test]
fn the_actor_is_checked_before_anything_else() {
    let [(_, paralegal), (_, supervisor), ..] = callers();
    let foreign = actor(&[0xcd; 16], &[1, 2, 3, 4]);
    let c = change(
        foreign,
        vec![text("status", "approved"), text("owner", "x")],
    );
    for p in [&paralegal, &supervisor] {
        assert_eq!(check(p, &c, false), Some(Rejection::ForeignActor));
    }
}

#[test]
fn a_device_without_a_valid_bound_actor_writes_nothing() {
    let mut p = principal("drita", Role::Paralegal, Some("prizren"));
    for bound in ["", "not hex", &hex::encode([0xab; 8])] {
        p.device.actor = bound.to_string();
        let c = change(actor(&BOUND, &[1, 2, 3, 4]), vec![]);
        assert_eq!(
            check(&p, &c, false),
            Some(Rejection::ForeignActor),
            "bound actor {bound:?}"
        );
    }
}
