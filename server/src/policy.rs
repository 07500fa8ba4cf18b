//! The one place that decides who may do what. Handlers and the sync engine ask it;
//! storage only applies the [`Scope`] it computes. Tested as a matrix in
//! `tests/policy_matrix.rs` and end to end in the `intake-tests` crate
//! (`review_trust.rs`, `server_access.rs`).
//!
//! - A paralegal reads and writes the records they created or are assigned.
//! - A supervisor reads and writes the records of their team, and alone writes review
//!   notes and assignments; the status moves as [`may_set_status`] says.
//! - An admin manages users, devices and forms, and sees no records.
//! - A record's structure (`id`, `form`, `fields`, …) is written once, by the change
//!   that creates it.
//! - A change names its author (its message): the device's user, or nobody (a change
//!   made before the device knew its user is the device's, hence its user's, by the
//!   device's binding).
//! - An assignee is an enabled user of the record's team.

use intake_shared::protocol::Rejection;
use intake_shared::record::ChangeInfo;
use intake_shared::{ReviewStatus, Value};

use crate::storage::{Device, RecordMeta, Role, Scope, User};

/// An authenticated caller: an enabled user on an unrevoked device.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user: User,
    pub device: Device,
}

/// The records a caller may see.
pub fn scope(p: &Principal) -> Scope {
    match (p.user.role, &p.user.team) {
        (Role::Paralegal, _) => Scope::Own(p.user.name.clone()),
        (Role::Supervisor, Some(team)) => Scope::Team(team.clone()),
        (Role::Supervisor, None) | (Role::Admin, _) => Scope::Nothing,
    }
}

/// Whether a caller may read a record (the same rule as [`scope`]).
pub fn may_read(p: &Principal, meta: &RecordMeta) -> bool {
    match scope(p) {
        Scope::Own(user) => {
            meta.owner == user || meta.assigned_to.as_deref() == Some(user.as_str())
        }
        Scope::Team(team) => meta.team.as_deref() == Some(team.as_str()),
        Scope::Nothing => false,
    }
}

/// Whether a caller may write a record; `None` asks about creating a new one.
pub fn may_write(p: &Principal, meta: Option<&RecordMeta>) -> bool {
    match meta {
        Some(meta) => may_read(p, meta),
        // Only someone who will see the record afterwards may create it: a supervisor
        // without a team would make a record nobody can read.
        None => match p.user.role {
            Role::Paralegal => true,
            Role::Supervisor => p.user.team.is_some(),
            Role::Admin => false,
        },
    }
}

/// Whether a caller may manage users and devices.
pub fn may_administer(p: &Principal) -> bool {
    p.user.role == Role::Admin
}

/// Keys a record's creating change writes, and no later change may.
const STRUCTURE: [&str; 7] = [
    "id",
    "form",
    "form_version",
    "created_at",
    "fields",
    "comments",
    "actions",
];

/// A refusal: its reason and a message for the device (never record content).
pub type Refusal = (Rejection, String);

/// Checks one incoming change of record `record_id` against the caller's rights, by
/// what the change itself says: its actor, its author and the top-level keys it writes.
/// `creates` is true for the change that creates a new record (no dependencies). What
/// depends on the document (status moves, the assignee, appends) is judged once the
/// change is merged: [`check_status`], [`check_assignee`].
pub fn check_change(
    p: &Principal,
    change: &ChangeInfo,
    record_id: &str,
    creates: bool,
) -> Result<(), Refusal> {
    let bound = hex::decode(&p.device.actor).unwrap_or_default();
    if change.actor.len() < 16 || change.actor[..16] != bound[..] {
        return Err((
            Rejection::ForeignActor,
            "a change was made by another device's actor".into(),
        ));
    }
    // The author shown for every value, comment and decision is the change's message:
    // it must be the device's user. The name is compared exactly (it is what the device
    // was told at enrolment) and never echoed back.
    if let Some(author) = change.message.as_deref()
        && !author.is_empty()
        && author != p.user.name
    {
        return Err((
            Rejection::ForeignActor,
            "a change names as its author someone who is not this device's user".into(),
        ));
    }
    let reviewer = p.user.role == Role::Supervisor;
    for w in &change.root_writes {
        let refuse = |why: String| Err((Rejection::ProtectedField, why));
        match w.key.as_str() {
            k if STRUCTURE.contains(&k) => {
                if !creates {
                    return refuse(format!("{k} is written only when a record is created"));
                }
                if k == "id" && w.value.as_ref().and_then(|v| v.as_str()) != Some(record_id) {
                    return refuse("the document's id is not the record's id".into());
                }
            }
            // A deletion (`None`) may be a resolution: writing the winning value of a
            // conflict deletes the others. What it leaves is judged by `check_status`.
            "status" => {
                if let Some(v) = &w.value
                    && status_of(v).is_none()
                {
                    return refuse(STATUS_VALUES.into());
                }
            }
            "review_note" | "assigned_to" if !reviewer => {
                return refuse(format!("only a supervisor may set {}", w.key));
            }
            "assigned_to" if w.value.as_ref().is_some_and(|v| v.as_str().is_none()) => {
                return refuse("assigned_to must be a user's name".into());
            }
            "review_note" | "assigned_to" => {}
            other => return refuse(format!("unknown top-level key {other}")),
        }
    }
    Ok(())
}

const STATUS_VALUES: &str = "status must be one of the review statuses";

fn status_of(v: &Value) -> Option<ReviewStatus> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// Whether `role` may set the status `to` on a case whose status it saw as `from`
/// (`None`: the record is new). The whole table:
///
/// | from | paralegal | supervisor |
/// |---|---|---|
/// | (new record) | draft, submitted | draft, submitted |
/// | draft | submitted | submitted, needs_changes, approved, rejected |
/// | submitted | — | needs_changes, approved, rejected |
/// | needs_changes | submitted | submitted, approved, rejected |
/// | approved | — | closed |
/// | rejected, closed | — | — |
///
/// Writing the status a case already has is no move, and allowed (not to an admin,
/// who writes no records). A supervisor decides any case still open (draft, submitted
/// or sent back): a draft she reviews in the office, or a case she sent back and then
/// settles herself. A decision stands: only `approved` moves on, to `closed`.
pub fn may_set_status(role: Role, from: Option<ReviewStatus>, to: ReviewStatus) -> bool {
    use ReviewStatus::*;
    match (role, from, to) {
        (Role::Admin, _, _) => false,
        (_, Some(from), to) if from == to => true,
        (_, None, Draft | Submitted) => true,
        (_, Some(Draft | NeedsChanges), Submitted) => true,
        (
            Role::Supervisor,
            Some(Draft | Submitted | NeedsChanges),
            NeedsChanges | Approved | Rejected,
        ) => true,
        (Role::Supervisor, Some(Approved), Closed) => true,
        _ => false,
    }
}

/// Checks a change that writes the status. `seen`: the values the document held at
/// the change's dependencies, what its writer saw (several: a conflict, any of which
/// counts as "from"; none: a new record). `left`: the values right after the change.
/// `stored`: the server's values before this push. A paralegal may not touch the
/// status of a case that is approved, rejected or closed on the server, even by a
/// change made before she knew.
pub fn check_status(
    p: &Principal,
    seen: &[Value],
    left: &[Value],
    stored: &[Value],
) -> Result<(), Refusal> {
    let refuse = |why: String| Err((Rejection::ProtectedField, why));
    let role = p.user.role;
    let left: Vec<ReviewStatus> = match left.iter().map(status_of).collect() {
        Some(left) => left,
        None => return refuse(STATUS_VALUES.into()),
    };
    if left.is_empty() {
        return refuse(STATUS_VALUES.into());
    }
    if role == Role::Paralegal
        && let Some(decided) = stored.iter().filter_map(status_of).find(|s| s.is_final())
    {
        return refuse(format!(
            "a paralegal may not change the status of a case that is {decided}"
        ));
    }
    // A status another app does not know reads as `submitted` (`Record::status`).
    let mut from: Vec<ReviewStatus> = seen
        .iter()
        .map(|v| status_of(v).unwrap_or(ReviewStatus::Submitted))
        .collect();
    from.sort_by_key(|s| s.as_str());
    from.dedup();
    for to in left {
        if from.is_empty() {
            if !may_set_status(role, None, to) {
                return refuse(format!(
                    "a new record starts as draft or submitted, not {to}"
                ));
            }
        } else if !from.iter().any(|f| may_set_status(role, Some(*f), to)) {
            let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
            return refuse(format!(
                "a {} may not change the status from {} to {to}",
                role.as_str(),
                from.join(" or ")
            ));
        }
    }
    Ok(())
}

/// Checks the user a change assigns the record to (`None`: no user of that name), for
/// a record of `team`. Unassigning (an empty name, a deletion) is no assignee and is
/// not asked about; who may write `assigned_to` at all is [`check_change`]'s.
pub fn check_assignee(assignee: Option<&User>, team: Option<&str>) -> Result<(), Refusal> {
    let why = match assignee {
        None => "there is no such user",
        Some(u) if u.disabled => "that user is disabled",
        Some(u) if team.is_none() || u.team.as_deref() != team => {
            "that user is not in the record's team"
        }
        Some(_) => return Ok(()),
    };
    Err((
        Rejection::ProtectedField,
        format!("assigned_to must name an enabled user of the record's team: {why}"),
    ))
}
