//! What the app shows, as typed records: a row of the list, and one record with its
//! answers (labelled in the store's language, in form order), conflicts with who wrote
//! each value on which device and when, the review status and note, comments,
//! follow-up actions and validation problems. Built from the client library's own
//! readers (`Record::values`, `conflicts`, `comments`, `actions`, `validate`), the same
//! the `intake show` command and the field app use.

use std::collections::HashMap;

use intake_client::Summary;
use intake_shared::record::ConflictKind;
use intake_shared::skew::Judged;
use intake_shared::{Form, FormRegistry, Issue, Lang, Record, ReviewStatus, Value};

/// A record's review status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Status {
    Draft,
    Submitted,
    NeedsChanges,
    Approved,
    Rejected,
    Closed,
}

impl From<ReviewStatus> for Status {
    fn from(s: ReviewStatus) -> Self {
        match s {
            ReviewStatus::Draft => Status::Draft,
            ReviewStatus::Submitted => Status::Submitted,
            ReviewStatus::NeedsChanges => Status::NeedsChanges,
            ReviewStatus::Approved => Status::Approved,
            ReviewStatus::Rejected => Status::Rejected,
            ReviewStatus::Closed => Status::Closed,
        }
    }
}

impl From<Status> for ReviewStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Draft => ReviewStatus::Draft,
            Status::Submitted => ReviewStatus::Submitted,
            Status::NeedsChanges => ReviewStatus::NeedsChanges,
            Status::Approved => ReviewStatus::Approved,
            Status::Rejected => ReviewStatus::Rejected,
            Status::Closed => ReviewStatus::Closed,
        }
    }
}

/// A stored value, as its type.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum FieldValue {
    Text { value: String },
    Integer { value: i64 },
    YesNo { value: bool },
}

impl From<Value> for FieldValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Text(value) => FieldValue::Text { value },
            Value::Int(value) => FieldValue::Integer { value },
            Value::Bool(value) => FieldValue::YesNo { value },
        }
    }
}

/// One problem with one field, in the store's language.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ValidationIssue {
    pub field: String,
    /// The field's label ("Full name"), or its name when the form has no such field.
    pub label: String,
    pub message: String,
}

impl ValidationIssue {
    pub(crate) fn new(form: &Form, issue: &Issue, lang: Lang) -> Self {
        ValidationIssue {
            field: issue.field.clone(),
            label: form.field(&issue.field).map_or(issue.field.clone(), |f| {
                f.label.get(lang, &f.name).to_string()
            }),
            message: issue.rule.message(lang),
        }
    }
}

/// One answer of a record.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct FieldEntry {
    pub name: String,
    /// The field's label; for an answer the form does not know (kept from a newer
    /// app), its name.
    pub label: String,
    pub value: FieldValue,
    /// The value as a person reads it: a choice's or a yes/no's label.
    pub display: String,
}

/// One of several values written to a field at the same time on different devices.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ConflictValueView {
    pub value: FieldValue,
    pub display: String,
    pub author: Option<String>,
    /// The device that wrote it (hex; its first 8 digits are enough to tell apart).
    pub device: String,
    /// When that device says it was written (RFC 3339).
    pub at: Option<String>,
    /// Set when that device's clock was clearly wrong: what to show after `at`.
    pub clock_note: Option<String>,
}

/// A field, or a review key (`status`, `assigned_to`, `review_note`), holding
/// concurrent values until someone chooses (`IntakeStore::resolve_conflict`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ConflictView {
    pub field: String,
    pub label: String,
    /// A review key rather than a form field.
    pub review: bool,
    pub values: Vec<ConflictValueView>,
}

/// A comment, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct CommentView {
    pub text: String,
    pub author: Option<String>,
    pub device: String,
    pub at: String,
    /// Set when the writing device's clock was clearly wrong, in the store's language
    /// ("device clock was wrong: at least 1 yr. ahead (received by the server …)"):
    /// show it after `at`, which that clock gave.
    pub clock_note: Option<String>,
}

/// A follow-up action (visit, letter, complaint filed, ...).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ActionView {
    pub form: String,
    pub author: Option<String>,
    pub device: String,
    pub at: String,
    /// Set when the writing device's clock was clearly wrong: what to show after `at`.
    pub clock_note: Option<String>,
    pub fields: Vec<FieldEntry>,
}

/// One record, for its screen.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RecordView {
    pub id: String,
    pub form: String,
    pub form_version: u32,
    /// The form's title in the store's language.
    pub title: String,
    pub status: Status,
    pub review_note: Option<String>,
    pub assigned_to: Option<String>,
    pub created_at: Option<String>,
    /// Answers in form order, then any the form does not know.
    pub fields: Vec<FieldEntry>,
    pub conflicts: Vec<ConflictView>,
    pub comments: Vec<CommentView>,
    pub actions: Vec<ActionView>,
    /// What keeps the record from its status (required answers, open conflicts,
    /// values that break their field), in the store's language.
    pub issues: Vec<ValidationIssue>,
    /// Holds changes the server does not have yet.
    pub unsynced: bool,
    /// Why the server refused this record's last changes, if it did.
    pub sync_error: Option<String>,
}

/// One row of the list.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RecordSummary {
    pub id: String,
    pub form: String,
    pub status: Status,
    pub review_note: Option<String>,
    pub assigned_to: Option<String>,
    /// Labels (in the store's language) of the fields a list shows.
    pub municipality: Option<String>,
    pub issue_type: Option<String>,
    pub urgency: Option<String>,
    pub summary: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: String,
    pub has_conflicts: bool,
    pub unsynced: bool,
    pub sync_error: Option<String>,
}

/// Which records `IntakeStore::list_records` returns; every condition set must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct RecordFilter {
    #[uniffi(default = None)]
    pub status: Option<Status>,
    /// Only records a supervisor sent back (status `needs_changes`).
    #[uniffi(default = false)]
    pub needs_changes: bool,
    /// Only records holding changes the server does not have.
    #[uniffi(default = false)]
    pub unsynced: bool,
    /// Only records with a conflict to resolve.
    #[uniffi(default = false)]
    pub has_conflicts: bool,
}

impl RecordFilter {
    /// The status to ask the store for (it filters by one status itself).
    pub(crate) fn status(&self) -> Option<ReviewStatus> {
        match (self.needs_changes, self.status) {
            (true, _) => Some(ReviewStatus::NeedsChanges),
            (false, s) => s.map(Into::into),
        }
    }

    pub(crate) fn keeps(&self, s: &Summary) -> bool {
        (!self.unsynced || s.unsynced) && (!self.has_conflicts || s.has_conflicts)
    }
}

fn display(form: Option<&Form>, field: &str, value: &Value, lang: Lang) -> String {
    match form.and_then(|form| form.field(field).map(|f| (form, f))) {
        Some((form, f)) => form.value_label(f, value, lang),
        None => value.to_string(),
    }
}

fn status_of(text: &str) -> Status {
    // An unknown status (from a newer app) reads as submitted, as `Record::status` does.
    text.parse::<ReviewStatus>()
        .unwrap_or(ReviewStatus::Submitted)
        .into()
}

pub(crate) fn summary(s: Summary, lang: Lang) -> RecordSummary {
    let form = FormRegistry::builtin().get(&s.form, s.form_version).ok();
    let label = |field: &str, code: Option<String>| {
        code.map(|c| display(form.as_deref(), field, &Value::Text(c), lang))
    };
    RecordSummary {
        status: status_of(&s.status),
        municipality: label("municipality", s.municipality),
        issue_type: label("issue_type", s.issue_type),
        urgency: label("urgency", s.urgency),
        id: s.id,
        form: s.form,
        review_note: s.review_note,
        assigned_to: s.assigned_to,
        summary: s.summary,
        created_at: s.created_at,
        updated_at: s.updated_at,
        has_conflicts: s.has_conflicts,
        unsynced: s.unsynced,
        sync_error: s.sync_error,
    }
}

/// `record` for its screen; `row` is its list row (sync state), when found; `marks`
/// say which device times were clearly wrong (`Store::clock_marks`).
pub(crate) fn record(
    record: &mut Record,
    row: Option<&Summary>,
    marks: &HashMap<String, Judged>,
    lang: Lang,
) -> RecordView {
    let note = |change: &str| {
        marks
            .get(change)
            .and_then(|j| intake_web::clock::note(lang, j))
    };
    let form = record.form().clone();
    let mut values = record.values();
    let mut fields = Vec::new();
    for f in form.fields() {
        if let Some(v) = values.remove(&f.name) {
            fields.push(FieldEntry {
                name: f.name.clone(),
                label: f.label.get(lang, &f.name).to_string(),
                display: form.value_label(f, &v, lang),
                value: v.into(),
            });
        }
    }
    // Answers the form does not know are kept, never dropped: shown too.
    fields.extend(values.into_iter().map(|(name, v)| FieldEntry {
        label: name.clone(),
        name,
        display: v.to_string(),
        value: v.into(),
    }));
    let conflicts = record
        .conflicts()
        .into_iter()
        .map(|c| {
            let review = c.kind == ConflictKind::Review;
            ConflictView {
                label: form
                    .field(&c.field)
                    .filter(|_| !review)
                    .map_or(c.field.clone(), |f| f.label.get(lang, &f.name).to_string()),
                values: c
                    .values
                    .into_iter()
                    .map(|v| ConflictValueView {
                        display: display(Some(&form), &c.field, &v.value, lang),
                        value: v.value.into(),
                        author: v.author,
                        device: v.device,
                        at: v.at.map(|t| t.to_rfc3339()),
                        clock_note: note(&v.change),
                    })
                    .collect(),
                field: c.field,
                review,
            }
        })
        .collect();
    let comments = record
        .comments()
        .into_iter()
        .map(|c| CommentView {
            text: c.text,
            author: c.author,
            device: c.device,
            at: c.at,
            clock_note: note(&c.change),
        })
        .collect();
    let actions = record
        .actions()
        .into_iter()
        .map(|a| {
            let action_form = FormRegistry::builtin().get(&a.form, a.form_version).ok();
            let mut values = a.fields;
            let mut fields: Vec<FieldEntry> = Vec::new();
            for f in action_form.iter().flat_map(|f| f.fields()) {
                if let Some(v) = values.remove(&f.name) {
                    fields.push(FieldEntry {
                        name: f.name.clone(),
                        label: f.label.get(lang, &f.name).to_string(),
                        display: display(action_form.as_deref(), &f.name, &v, lang),
                        value: v.into(),
                    });
                }
            }
            fields.extend(values.into_iter().map(|(name, v)| FieldEntry {
                label: name.clone(),
                name,
                display: v.to_string(),
                value: v.into(),
            }));
            ActionView {
                form: a.form,
                author: a.author,
                device: a.device,
                at: a.at,
                clock_note: note(&a.change),
                fields,
            }
        })
        .collect();
    let issues = record
        .validate()
        .iter()
        .map(|i| ValidationIssue::new(&form, i, lang))
        .collect();
    RecordView {
        id: record.id().to_string(),
        form: form.id.clone(),
        form_version: form.version,
        title: form.title.get(lang, &form.id).to_string(),
        status: record.status().into(),
        review_note: record.review_note(),
        assigned_to: record.assigned_to(),
        created_at: record.created_at().map(|t| t.to_rfc3339()),
        fields,
        conflicts,
        comments,
        actions,
        issues,
        unsynced: row.is_some_and(|r| r.unsynced),
        sync_error: row.and_then(|r| r.sync_error.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::{Duration, Utc};
    use intake_shared::record::Identity;
    use intake_shared::skew::{ClockError, Judged};
    use intake_shared::{FormRegistry, Lang, Record, RecordId};

    #[test]
    fn a_comment_from_a_clock_that_was_clearly_wrong_carries_the_note() {
        let form = FormRegistry::builtin().get("intake", 1).unwrap();
        let who = Identity {
            actor: vec![1; 20],
            author: Some("drita".into()),
        };
        let now = Utc::now();
        let mut record = Record::create(RecordId::from_wire(&[7; 16]), form, &who, now);
        record.edit(now, |e| e.add_comment("on time")).unwrap();
        record
            .edit(now + Duration::days(400), |e| {
                e.add_comment("from the future")
            })
            .unwrap();
        let future = record.comments()[1].change.clone();
        let marks: HashMap<String, Judged> = [(
            future,
            Judged {
                received: Some(now),
                error: Some(ClockError::Ahead(Duration::days(400))),
            },
        )]
        .into_iter()
        .collect();
        let view = super::record(&mut record, None, &marks, Lang::SrCyrl);
        assert_eq!(view.comments[0].clock_note, None);
        let note = view.comments[1].clock_note.as_deref().expect("marked");
        // In the store's language, with the server's receipt.
        assert!(
            note.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)),
            "{note}"
        );
        assert!(
            note.contains(&now.format("%Y-%m-%d %H:%M").to_string()),
            "{note}"
        );
        let plain = super::record(&mut record, None, &HashMap::new(), Lang::SrCyrl);
        assert!(plain.comments.iter().all(|c| c.clock_note.is_none()));
    }
}
