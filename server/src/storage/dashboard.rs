//! What the supervisors' dashboard reads and writes through [`super::Storage`]: record
//! summaries and the filters over them, browser sessions, audit entries.

use chrono::{DateTime, NaiveDate, Utc};
use intake_shared::RecordId;

use super::{Device, RecordMeta, User};

/// What lists, filters, summaries and duplicate hints need of a record, kept beside it
/// so that a list of 10,000 records never loads a document. Computed from the record
/// by `crate::index::summarize`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecordSummary {
    /// The form's id (`intake`).
    pub form: String,
    /// The record's own creation time (the device's clock).
    pub created_at: Option<DateTime<Utc>>,
    /// `intake_shared::fold(full_name)`; empty when there is no name.
    pub name_key: String,
    /// The client's name as written (`full_name`), for lists; empty when there is none.
    pub name: String,
    pub birth_year: Option<i64>,
    pub municipality: Option<String>,
    pub community: Option<String>,
    pub gender: Option<String>,
    pub issue_type: Option<String>,
    pub urgency: Option<String>,
    pub has_conflicts: bool,
}

/// Which records a list, a summary or an export covers, within a [`Scope`]. Every
/// `None` matches everything; the conditions that are set must all hold.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// The review status (`submitted`, …).
    pub status: Option<String>,
    pub municipality: Option<String>,
    pub issue_type: Option<String>,
    pub urgency: Option<String>,
    /// A user who owns the record or is assigned to it.
    pub paralegal: Option<String>,
    pub has_conflicts: Option<bool>,
    /// On the record's `created_at`, as a UTC date, both ends inclusive. A record
    /// without `created_at` matches no date condition.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// As typed: storage folds it and matches it as a substring of `name_key`, so that
    /// case, diacritics and script do not matter. Blank matches everything.
    pub name: Option<String>,
}

/// Rows ordered by name key, birth year and municipality, cut into the groups of
/// possible duplicates those three define (what both backends' `duplicate_groups`
/// read in that order).
pub fn group_duplicates(rows: Vec<Listed>) -> Vec<Vec<Listed>> {
    let mut groups: Vec<Vec<Listed>> = Vec::new();
    for row in rows {
        let same = |l: &Listed| {
            l.summary.name_key == row.summary.name_key
                && l.summary.birth_year == row.summary.birth_year
                && l.summary.municipality == row.summary.municipality
        };
        match groups.last_mut() {
            Some(group) if same(&group[0]) => group.push(row),
            _ => groups.push(vec![row]),
        }
    }
    groups
}

/// One line of a record list.
#[derive(Clone, Debug)]
pub struct Listed {
    pub meta: RecordMeta,
    pub status: String,
    pub summary: RecordSummary,
    /// The server's time of the last write of the record (for a record stored before
    /// the index existed: when it was indexed).
    pub updated_at: DateTime<Utc>,
}

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct WebSession {
    pub id: i64,
    pub user: User,
    /// The user's server-side dashboard device: the actor of every change the
    /// dashboard makes on her behalf.
    pub device: Device,
    /// The session's CSRF token, as the caller chose it.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The label of every dashboard device (a user has at most one live one).
pub const DASHBOARD_LABEL: &str = "dashboard";

/// One entry of the audit trail: who did what, when, from where.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub user: Option<String>,
    /// The device, for actions over the sync API.
    pub device: Option<i64>,
    /// The browser session, for actions in the dashboard.
    pub session: Option<i64>,
    /// What was done (`sign_in`, `view_record`, `export`, …).
    pub action: String,
    /// What it covered, in words: a filter, a user's name, a scope.
    pub scope: String,
    pub records: Vec<RecordId>,
    /// The peer address.
    pub peer: Option<String>,
}

/// What a dashboard or admin write leaves beside itself, stored in the write's own
/// transaction: its audit entry and, for a form, the form's one-time token. A server
/// killed mid-write then leaves both or neither: an audit trail that can miss an action
/// is not one, and a form posted again after a lost answer must find its token used.
#[derive(Clone, Debug)]
pub struct Audit {
    pub entry: AuditEntry,
    pub form: Option<UsedForm>,
}

/// A dashboard form's one-time token (a random nonce rendered into the form) and the
/// answer its first submission got, to give again when it is posted again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsedForm {
    pub token: String,
    /// Where the first answer sent the browser (a path of this dashboard).
    pub answer: String,
}

/// Which audit entries to read. Every `None` matches everything.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub user: Option<String>,
    pub action: Option<String>,
    /// Entries naming this record.
    pub record: Option<RecordId>,
    /// Both ends inclusive.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}
