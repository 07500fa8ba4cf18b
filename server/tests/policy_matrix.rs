//! The policy (`server/src/policy.rs`) as tables: who sees and writes which records
//! (each role against each relation to a record), which top-level writes of a change
//! each role may make, with the actor and author checks first, how each role may move
//! the status, and who may be assigned. `ChangeInfo` values are built by hand: the
//! policy judges facts about a change, not Automerge bytes.

use chrono::{TimeZone, Utc};
use intake_server::policy::{self, Principal};
use intake_server::storage::{Device, RecordMeta, Role, Scope, User};
use intake_shared::protocol::Rejection;
use intake_shared::record::{ChangeInfo, RootWrite};
use intake_shared::{RecordId, ReviewStatus, Value};

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
            revoked_at: None,
            wipe: Default::default(),
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
        // Which status each role may move to, from what, is judged on the document
        // once the change is merged (`check_status`, tables below): here only that
        // the value is a status at all.
        (
            "status needs_changes",
            vec![text("status", "needs_changes")],
            false,
            [OK; 4],
        ),
        (
            "status approved",
            vec![text("status", "approved")],
            false,
            [OK; 4],
        ),
        (
            "status rejected",
            vec![text("status", "rejected")],
            false,
            [OK; 4],
        ),
        (
            "status closed",
            vec![text("status", "closed")],
            false,
            [OK; 4],
        ),
        (
            "status approved in the creating change",
            vec![text("status", "approved")],
            true,
            [OK; 4],
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
        // A deletion may be a resolution (writing a conflict's winning value deletes
        // the others): `check_status` refuses it when it leaves no status.
        ("status deleted", vec![object("status")], false, [OK; 4]),
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
            "assigned_to not text",
            vec![put("assigned_to", Value::Int(7))],
            false,
            [PROTECTED; 4],
        ),
        (
            "assigned_to deleted",
            vec![object("assigned_to")],
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

// ---------------------------------------------------------------------------------
// The author a change names.

/// (what, the change's message, the verdict for [the paralegal drita, the supervisor
/// merita]).
type AuthorCase = (&'static str, Option<&'static str>, [Option<Rejection>; 2]);

#[test]
fn a_change_names_its_devices_user_or_nobody() {
    let [(_, paralegal), (_, supervisor), ..] = callers();
    let foreign = Some(Rejection::ForeignActor);
    let table: &[AuthorCase] = &[
        (
            "no author (made before the device knew its user)",
            None,
            [OK; 2],
        ),
        ("an empty author", Some(""), [OK; 2]),
        ("drita", Some("drita"), [OK, foreign]),
        ("merita", Some("merita"), [foreign, OK]),
        ("another case", Some("Drita"), [foreign; 2]),
        ("trailing space", Some("drita "), [foreign; 2]),
        ("someone else", Some("fatos"), [foreign; 2]),
    ];
    for (what, message, expected) in table {
        for (p, expected) in [&paralegal, &supervisor].into_iter().zip(expected) {
            let mut c = change(actor(&BOUND, &[0, 0, 0, 1]), vec![]);
            c.message = message.map(Into::into);
            for creates in [false, true] {
                assert_eq!(
                    check(p, &c, creates),
                    *expected,
                    "{}: {what} (creates: {creates})",
                    p.user.name
                );
            }
        }
    }
    // The refusal says what is wrong without repeating the name it carries.
    let mut c = change(actor(&BOUND, &[0, 0, 0, 1]), vec![]);
    c.message = Some("fatos".into());
    let (reason, message) =
        policy::check_change(&paralegal, &c, &record_id().to_string(), false).unwrap_err();
    assert_eq!(reason, Rejection::ForeignActor);
    assert_eq!(
        message,
        "a change names as its author someone who is not this device's user"
    );
    // The actor is checked first: another device's actor with the right name is that.
    let mut c = change(actor(&[0xcd; 16], &[0, 0, 0, 1]), vec![]);
    c.message = Some("drita".into());
    let (_, message) =
        policy::check_change(&paralegal, &c, &record_id().to_string(), false).unwrap_err();
    assert_eq!(message, "a change was made by another device's actor");
}

// ---------------------------------------------------------------------------------
// Moving the status.

/// Every move each role may make, `None` standing for a new record; anything not
/// listed is refused (checked over every pair below).
#[rustfmt::skip] // A table reads best aligned.
const MOVES: &[(Role, Option<&str>, &[&str])] = &[
    (Role::Paralegal,  None,                  &["draft", "submitted"]),
    (Role::Paralegal,  Some("draft"),         &["draft", "submitted"]),
    (Role::Paralegal,  Some("submitted"),     &["submitted"]),
    (Role::Paralegal,  Some("needs_changes"), &["needs_changes", "submitted"]),
    (Role::Paralegal,  Some("approved"),      &["approved"]),
    (Role::Paralegal,  Some("rejected"),      &["rejected"]),
    (Role::Paralegal,  Some("closed"),        &["closed"]),
    (Role::Supervisor, None,                  &["draft", "submitted"]),
    (Role::Supervisor, Some("draft"),         &["draft", "submitted", "needs_changes", "approved", "rejected"]),
    (Role::Supervisor, Some("submitted"),     &["submitted", "needs_changes", "approved", "rejected"]),
    (Role::Supervisor, Some("needs_changes"), &["needs_changes", "submitted", "approved", "rejected"]),
    (Role::Supervisor, Some("approved"),      &["approved", "closed"]),
    (Role::Supervisor, Some("rejected"),      &["rejected"]),
    (Role::Supervisor, Some("closed"),        &["closed"]),
    (Role::Admin,      None,                  &[]),
];

#[test]
fn who_may_move_the_status_from_what_to_what() {
    let froms = std::iter::once(None).chain(ReviewStatus::ALL.map(Some));
    let mut cells = 0;
    for role in [Role::Paralegal, Role::Supervisor, Role::Admin] {
        for from in froms.clone() {
            let allowed: &[&str] = MOVES
                .iter()
                .find(|(r, f, _)| *r == role && *f == from.map(ReviewStatus::as_str))
                .map_or(&[], |(_, _, to)| to);
            for to in ReviewStatus::ALL {
                cells += 1;
                assert_eq!(
                    policy::may_set_status(role, from, to),
                    allowed.contains(&to.as_str()),
                    "{} from {from:?} to {to}",
                    role.as_str()
                );
            }
        }
    }
    assert_eq!(cells, 3 * 7 * 6);
}

fn statuses(values: &[&str]) -> Vec<Value> {
    values.iter().map(|v| Value::Text(v.to_string())).collect()
}

/// `check_status` with the values the writer saw, the change left and the server held.
fn status_verdict(
    p: &Principal,
    seen: &[&str],
    left: &[&str],
    stored: &[&str],
) -> Result<(), String> {
    policy::check_status(p, &statuses(seen), &statuses(left), &statuses(stored)).map_err(
        |(reason, message)| {
            assert_eq!(reason, Rejection::ProtectedField);
            message
        },
    )
}

/// (who, the statuses the writer saw, those the change left, those the server held,
/// the verdict: `Ok` or the exact refusal).
type StatusCase<'a> = (
    &'a Principal,
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
    Result<(), &'a str>,
);

#[test]
fn a_status_write_is_judged_from_what_the_writer_saw_and_what_the_server_holds() {
    let [(_, paralegal), (_, supervisor), ..] = callers();
    let p = &paralegal;
    let s = &supervisor;
    // (who, seen, left, stored, expected: Ok or the exact refusal)
    let table: &[StatusCase] = &[
        (p, &[], &["draft"], &[], Ok(())),
        (p, &[], &["submitted"], &[], Ok(())),
        (
            s,
            &[],
            &["approved"],
            &[],
            Err("a new record starts as draft or submitted, not approved"),
        ),
        (p, &["draft"], &["submitted"], &["draft"], Ok(())),
        (
            p,
            &["submitted"],
            &["draft"],
            &["submitted"],
            Err("a paralegal may not change the status from submitted to draft"),
        ),
        (
            p,
            &["draft"],
            &["approved"],
            &["draft"],
            Err("a paralegal may not change the status from draft to approved"),
        ),
        (s, &["submitted"], &["approved"], &["submitted"], Ok(())),
        (s, &["submitted"], &["rejected"], &["submitted"], Ok(())),
        (
            s,
            &["approved"],
            &["needs_changes"],
            &["approved"],
            Err("a supervisor may not change the status from approved to needs_changes"),
        ),
        (
            s,
            &["rejected"],
            &["submitted"],
            &["rejected"],
            Err("a supervisor may not change the status from rejected to submitted"),
        ),
        (s, &["approved"], &["closed"], &["approved"], Ok(())),
        // Two supervisors deciding the same submitted case offline: both saw it
        // submitted; the second arrives after the first is stored, and is a conflict,
        // not a refusal.
        (s, &["submitted"], &["needs_changes"], &["approved"], Ok(())),
        // A conflict at the writer's deps: any of its values counts as "from" — the
        // resolution chooses one of them, or a status reachable from one.
        (
            s,
            &["approved", "needs_changes"],
            &["approved"],
            &["approved", "needs_changes"],
            Ok(()),
        ),
        (
            s,
            &["approved", "needs_changes"],
            &["closed"],
            &["approved", "needs_changes"],
            Ok(()),
        ),
        (
            s,
            &["approved", "rejected"],
            &["draft"],
            &["approved", "rejected"],
            Err("a supervisor may not change the status from approved or rejected to draft"),
        ),
        // A paralegal cannot touch the status of a decided case, even concurrently
        // (she saw it sent back and submits again; it was approved meanwhile).
        (
            p,
            &["needs_changes"],
            &["submitted"],
            &["approved"],
            Err("a paralegal may not change the status of a case that is approved"),
        ),
        (
            p,
            &["needs_changes"],
            &["submitted"],
            &["needs_changes", "approved"],
            Err("a paralegal may not change the status of a case that is approved"),
        ),
        (
            p,
            &["approved"],
            &["approved"],
            &["approved"],
            Err("a paralegal may not change the status of a case that is approved"),
        ),
        (
            p,
            &["rejected"],
            &["submitted"],
            &["rejected"],
            Err("a paralegal may not change the status of a case that is rejected"),
        ),
        (
            p,
            &["closed"],
            &["submitted"],
            &["closed"],
            Err("a paralegal may not change the status of a case that is closed"),
        ),
        (
            p,
            &["needs_changes"],
            &["submitted"],
            &["needs_changes"],
            Ok(()),
        ),
        // A status the server does not know (a newer app's) counts as submitted.
        (s, &["escalated"], &["approved"], &["escalated"], Ok(())),
        (
            p,
            &["escalated"],
            &["draft"],
            &["escalated"],
            Err("a paralegal may not change the status from submitted to draft"),
        ),
        // What the change leaves must be a status.
        (
            s,
            &["submitted"],
            &[],
            &["submitted"],
            Err("status must be one of the review statuses"),
        ),
        (
            s,
            &["submitted"],
            &["escalated"],
            &["submitted"],
            Err("status must be one of the review statuses"),
        ),
    ];
    for (who, seen, left, stored, expected) in table {
        assert_eq!(
            status_verdict(who, seen, left, stored),
            expected.map_err(str::to_string),
            "{}: saw {seen:?}, left {left:?}, stored {stored:?}",
            who.user.name
        );
    }
}

// ---------------------------------------------------------------------------------
// The assignee.

/// (what, the user named (if any), the record's team, the verdict).
type AssigneeCase = (
    &'static str,
    Option<User>,
    Option<&'static str>,
    Result<(), String>,
);

#[test]
fn an_assignee_is_an_enabled_user_of_the_records_team() {
    let user = |team: Option<&str>, disabled: bool| User {
        id: 3,
        name: "besa".into(),
        role: Role::Paralegal,
        team: team.map(Into::into),
        disabled,
    };
    let supervisor = User {
        role: Role::Supervisor,
        ..user(Some("prizren"), false)
    };
    let why = |w: &str| {
        Err(format!(
            "assigned_to must name an enabled user of the record's team: {w}"
        ))
    };
    let table: Vec<AssigneeCase> = vec![
        (
            "a paralegal of the team",
            Some(user(Some("prizren"), false)),
            Some("prizren"),
            Ok(()),
        ),
        (
            "a supervisor of the team",
            Some(supervisor),
            Some("prizren"),
            Ok(()),
        ),
        (
            "no such user",
            None,
            Some("prizren"),
            why("there is no such user"),
        ),
        (
            "disabled",
            Some(user(Some("prizren"), true)),
            Some("prizren"),
            why("that user is disabled"),
        ),
        (
            "another team",
            Some(user(Some("peja"), false)),
            Some("prizren"),
            why("that user is not in the record's team"),
        ),
        (
            "no team",
            Some(user(None, false)),
            Some("prizren"),
            why("that user is not in the record's team"),
        ),
        (
            "a record without a team",
            Some(user(None, false)),
            None,
            why("that user is not in the record's team"),
        ),
    ];
    for (what, assignee, team, expected) in table {
        let got = policy::check_assignee(assignee.as_ref(), team).map_err(|(reason, message)| {
            assert_eq!(reason, Rejection::ProtectedField, "{what}");
            message
        });
        assert_eq!(got, expected, "{what}");
    }
}
