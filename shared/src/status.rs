//! The review status of a record: where it stands between the paralegal who records it
//! and the supervisor who reviews it. It syncs like any other change, so a paralegal
//! sees "needs changes" offline.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Being recorded; may be incomplete.
    Draft,
    /// Sent for review; the form's required fields are answered.
    Submitted,
    /// A supervisor sent it back with a note saying what to change.
    NeedsChanges,
    /// A supervisor accepted it.
    Approved,
    /// A supervisor turned it down (outside the mandate, a duplicate, …): no further
    /// work. Like `approved`, a decision the paralegal cannot undo.
    Rejected,
    /// Closed: no further work (kept for reporting). Reached from `approved`; older
    /// data holds it too.
    Closed,
}

impl ReviewStatus {
    pub const ALL: [ReviewStatus; 6] = [
        ReviewStatus::Draft,
        ReviewStatus::Submitted,
        ReviewStatus::NeedsChanges,
        ReviewStatus::Approved,
        ReviewStatus::Rejected,
        ReviewStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Draft => "draft",
            ReviewStatus::Submitted => "submitted",
            ReviewStatus::NeedsChanges => "needs_changes",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Rejected => "rejected",
            ReviewStatus::Closed => "closed",
        }
    }

    /// Statuses only a reviewer (supervisor) may set; the server enforces this (the
    /// transitions are in the server's policy).
    pub fn is_review_outcome(self) -> bool {
        matches!(
            self,
            ReviewStatus::NeedsChanges
                | ReviewStatus::Approved
                | ReviewStatus::Rejected
                | ReviewStatus::Closed
        )
    }

    /// Decisions a paralegal cannot move the case away from.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ReviewStatus::Approved | ReviewStatus::Rejected | ReviewStatus::Closed
        )
    }

    /// Statuses that require the form's required fields to be answered.
    pub fn requires_complete(self) -> bool {
        !matches!(self, ReviewStatus::Draft)
    }
}

impl fmt::Display for ReviewStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}; known: draft, submitted, needs_changes, approved, rejected, closed")]
pub struct UnknownStatus(pub String);

impl FromStr for ReviewStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReviewStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s.trim().replace('-', "_"))
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}
