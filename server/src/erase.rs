//! Erasing a client's record for good: the one way in for the command line
//! (`intake-server record erase`), the admins' dashboard page and retention.
//!
//! An erasure removes everything of the record that holds its content (document, every
//! log entry, index row, links, grants, upload pieces) in one transaction with its
//! audit entry (who, when, the record's id, the reason). Ids are not content: earlier
//! audit entries naming the record stay. Devices whose user could see the record drop
//! it on their next sync, unsynced edits included, and a push to it is refused for
//! good (`docs/PROTOCOL.md`, "Erased records"). Exports are made on demand and never
//! kept; backups keep the record until they are rotated out (`docs/OPERATIONS.md`).

use chrono::{DateTime, Utc};
use intake_shared::RecordId;

use crate::storage::{AuditEntry, Storage, StorageError};

/// The audit trail's name for an erasure (stable: admins filter by it).
pub const ACTION: &str = "erase_record";
/// The longest reason kept.
pub const MAX_REASON_CHARS: usize = 500;

/// Who asks for an erasure, as the audit trail names them.
#[derive(Clone, Debug, Default)]
pub struct Requester {
    /// The signed-in admin; `None` for the command line and retention.
    pub user: Option<String>,
    pub session: Option<i64>,
    pub device: Option<i64>,
    pub peer: Option<String>,
    /// How it was asked: `dashboard`, `command line`, `retention`, `restore`.
    pub via: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("a reason is required")]
    NoReason,
    #[error("the reason is longer than {MAX_REASON_CHARS} characters")]
    ReasonTooLong,
    #[error("the reason may not hold control characters")]
    ReasonControl,
    #[error("there is no record {0}")]
    NoSuchRecord(RecordId),
    #[error("record {0} was erased already")]
    AlreadyErased(RecordId),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The reason, trimmed, or why it cannot be kept.
pub fn check_reason(reason: &str) -> Result<String, EraseError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(EraseError::NoReason);
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(EraseError::ReasonTooLong);
    }
    if reason.chars().any(char::is_control) {
        return Err(EraseError::ReasonControl);
    }
    Ok(reason.to_string())
}

fn entry(id: RecordId, reason: &str, who: &Requester, now: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        at: now,
        user: who.user.clone(),
        device: who.device,
        session: who.session,
        action: ACTION.to_string(),
        scope: format!("via={} reason={reason}", who.via),
        records: vec![id],
        peer: who.peer.clone(),
    }
}

/// Erases one stored record for good; returns the log position the erasure took.
pub fn erase(
    storage: &dyn Storage,
    id: RecordId,
    reason: &str,
    who: &Requester,
    now: DateTime<Utc>,
) -> Result<u64, EraseError> {
    let reason = check_reason(reason)?;
    if storage.erased(id)? {
        return Err(EraseError::AlreadyErased(id));
    }
    if storage.record(id)?.is_none() {
        return Err(EraseError::NoSuchRecord(id));
    }
    match storage
        .erase(&[(id, entry(id, &reason, who, now))])?
        .first()
    {
        Some(Some(seq)) => Ok(*seq),
        // Erased by someone else between the look and the erasure.
        _ => Err(EraseError::AlreadyErased(id)),
    }
}

/// Erases several records in one transaction (retention): those erased already are
/// skipped. Returns how many were erased now.
pub fn erase_all(
    storage: &dyn Storage,
    ids: &[RecordId],
    reason: &str,
    who: &Requester,
    now: DateTime<Utc>,
) -> Result<usize, EraseError> {
    let reason = check_reason(reason)?;
    let batch: Vec<(RecordId, AuditEntry)> = ids
        .iter()
        .map(|id| (*id, entry(*id, &reason, who, now)))
        .collect();
    Ok(storage.erase(&batch)?.iter().flatten().count())
}

/// After a backup is restored: erases in `restored` every record erased in the
/// database it replaces (`erased`, from [`Storage::erased_ids`] of the old one,
/// read before it is replaced). A record the backup predates is marked erased all
/// the same, so no device can bring it back. Returns how many were erased now.
pub fn reapply(
    restored: &dyn Storage,
    erased: &[RecordId],
    now: DateTime<Utc>,
) -> Result<usize, EraseError> {
    let who = Requester {
        via: "restore",
        ..Requester::default()
    };
    erase_all(
        restored,
        erased,
        "erased before this backup was restored",
        &who,
        now,
    )
}
