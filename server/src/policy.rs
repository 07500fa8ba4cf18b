//! The one place that decides who may do what. Handlers and the sync engine ask it;
//! storage only applies the [`Scope`] it computes. Tested as a matrix in
//! `tests/policy_matrix.rs` and end to end in the `intake-tests` crate.
//!
//! - A paralegal reads and writes the records they created or are assigned.
//! - A supervisor reads and writes the records of their team, and alone sets review
//!   outcomes (`needs_changes`, `approved`, `closed`), review notes and assignments.
//! - An admin manages users, devices and forms, and sees no records.
//! - A record's structure (`id`, `form`, `fields`, …) is written once, by the change
//!   that creates it.

use intake_shared::ReviewStatus;
use intake_shared::protocol::Rejection;
use intake_shared::record::ChangeInfo;

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

/// Checks one incoming change of record `record_id` against the caller's rights.
/// `creates` is true for the change that creates a new record (no dependencies).
pub fn check_change(
    p: &Principal,
    change: &ChangeInfo,
    record_id: &str,
    creates: bool,
) -> Result<(), (Rejection, String)> {
    let bound = hex::decode(&p.device.actor).unwrap_or_default();
    if change.actor.len() < 16 || change.actor[..16] != bound[..] {
        return Err((
            Rejection::ForeignActor,
            "a change was made by another device's actor".into(),
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
            "status" => {
                let status = w
                    .value
                    .as_ref()
                    .and_then(|v| v.as_str())
                    .and_then(|s| s.parse::<ReviewStatus>().ok());
                match status {
                    None => return refuse("status must be one of the review statuses".into()),
                    Some(s) if s.is_review_outcome() && !reviewer => {
                        return refuse(format!("only a supervisor may set the status {s}"));
                    }
                    Some(_) => {}
                }
            }
            "review_note" | "assigned_to" if !reviewer => {
                return refuse(format!("only a supervisor may set {}", w.key));
            }
            "review_note" | "assigned_to" => {}
            other => return refuse(format!("unknown top-level key {other}")),
        }
    }
    Ok(())
}
