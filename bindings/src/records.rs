//! The record calls of `IntakeStore`: create, edit (set and clear), follow-up,
//! comment, submit, set status with a note, assign, resolve a conflict, list with
//! filters and show. Each is one change to one record, saved in one transaction, or
//! an error and no change; values are checked against the record's form first, and a
//! value that breaks its field is `InvalidValue` with the form's message in the
//! store's language. Every call blocks (SQLCipher I/O): not on the UI thread.

use std::collections::BTreeMap;

use intake_shared::record::is_review_key;
use intake_shared::{Form, Issue, Lang, ReviewStatus, Rule, Value};

use crate::IntakeError;
use crate::forms::{self, FOLLOWUP_FORM};
use crate::store::{FieldInput, IntakeStore, record_id};
use crate::view::{self, RecordFilter, RecordSummary, RecordView, Status};

/// Parses every answer against `form`, in the order given; the first bad one is the
/// error, and nothing is written.
fn parse_all(
    form: &Form,
    values: &[FieldInput],
    lang: Lang,
) -> Result<Vec<(String, Value)>, IntakeError> {
    values
        .iter()
        .map(|v| {
            Ok((
                v.field.clone(),
                forms::parse(form, &v.field, &v.value, lang)?,
            ))
        })
        .collect()
}

#[uniffi::export]
impl IntakeStore {
    /// Creates a record of the latest version of `form_id` with these answers (a
    /// draft); returns its id.
    pub fn create_record(
        &self,
        form_id: String,
        values: Vec<FieldInput>,
    ) -> Result<String, IntakeError> {
        if form_id == FOLLOWUP_FORM {
            return Err(IntakeError::input(
                "followup is the form of follow-up actions: use add_followup",
            ));
        }
        let form = forms::latest(&form_id)?;
        self.with_store(|store, lang| {
            let answers = parse_all(&form, &values, lang)?;
            let id = store
                .create(&form.id, |e| {
                    answers.into_iter().try_for_each(|(f, v)| e.set(&f, v))
                })
                .map_err(|e| IntakeError::store(e, &form, lang))?;
            Ok(id.to_string())
        })
    }

    /// Sets the answers in `set` and clears the fields in `clear`, as one change. An
    /// edit screen may send every answer it shows: Automerge writes nothing for an
    /// answer equal to the stored one, so it cannot conflict with someone else's edit
    /// of that field.
    pub fn edit_record(
        &self,
        id: String,
        set: Vec<FieldInput>,
        clear: Vec<String>,
    ) -> Result<(), IntakeError> {
        let id = record_id(&id)?;
        self.with_store(|store, lang| {
            let record = store.get(id)?;
            let form = record.form().clone();
            let answers = parse_all(&form, &set, lang)?;
            for field in &clear {
                if form.field(field).is_none() {
                    let issue = Issue {
                        field: field.clone(),
                        rule: Rule::UnknownField,
                    };
                    return Err(IntakeError::invalid(&form, issue, lang));
                }
            }
            if answers.is_empty() && clear.is_empty() {
                return Ok(());
            }
            store
                .edit(id, |e| {
                    answers.into_iter().try_for_each(|(f, v)| e.set(&f, v))?;
                    clear.iter().try_for_each(|f| e.clear(f))
                })
                .map_err(|e| IntakeError::store(e, &form, lang))
        })
    }

    /// Appends a follow-up action (the `followup` form: its required answers must be
    /// given; incomplete is `Incomplete`).
    pub fn add_followup(&self, id: String, values: Vec<FieldInput>) -> Result<(), IntakeError> {
        let id = record_id(&id)?;
        let form = forms::latest(FOLLOWUP_FORM)?;
        self.with_store(|store, lang| {
            let values: BTreeMap<String, Value> =
                parse_all(&form, &values, lang)?.into_iter().collect();
            store
                .edit(id, |e| e.add_action(&form, &values))
                .map_err(|e| IntakeError::store(e, &form, lang))
        })
    }

    /// Appends a comment (not blank).
    pub fn add_comment(&self, id: String, text: String) -> Result<(), IntakeError> {
        self.change(&id, |e| e.add_comment(&text))
    }

    /// Sends a draft (or a record sent back) for review: `set_status(Submitted)`.
    pub fn submit(&self, id: String) -> Result<(), IntakeError> {
        self.set_status(id, Status::Submitted, None)
    }

    /// Sets the review status, with the reviewer's note when given (without one the
    /// previous note stays). A status past draft needs the required answers and no
    /// open conflict (`Incomplete` lists what is missing). Which moves a role may make
    /// is the server's to judge: a refused one comes back as the record's
    /// `sync_error` after the next sync.
    pub fn set_status(
        &self,
        id: String,
        status: Status,
        note: Option<String>,
    ) -> Result<(), IntakeError> {
        let status = ReviewStatus::from(status);
        self.change(&id, |e| e.set_status(status, note.as_deref()))
    }

    /// Assigns the record to a user, by name (supervisors; the server checks the
    /// role).
    pub fn assign(&self, id: String, user: String) -> Result<(), IntakeError> {
        let user = user.trim().to_string();
        if user.is_empty() {
            return Err(IntakeError::input("the user name is empty"));
        }
        self.change(&id, |e| e.assign(&user))
    }

    /// Settles a conflict: writes `value` (as typed, checked like an answer; for the
    /// `status` key a status name such as `approved`) over every concurrent value of
    /// `field` (a form field, or `status`, `assigned_to`, `review_note`). A field
    /// without concurrent values is `InvalidInput`: change it with `edit_record`.
    pub fn resolve_conflict(
        &self,
        id: String,
        field: String,
        value: String,
    ) -> Result<(), IntakeError> {
        let id = record_id(&id)?;
        self.with_store(|store, lang| {
            let mut record = store.get(id)?;
            let form = record.form().clone();
            if !record.conflicts().iter().any(|c| c.field == field) {
                return Err(IntakeError::input(format!(
                    "{field} has no conflicting values in {id}"
                )));
            }
            let value = if is_review_key(&field) {
                match field.as_str() {
                    "status" => Value::Text(
                        value
                            .parse::<ReviewStatus>()
                            .map_err(|e| IntakeError::input(e.to_string()))?
                            .as_str()
                            .to_string(),
                    ),
                    _ => Value::Text(value),
                }
            } else {
                forms::parse(&form, &field, &value, lang)?
            };
            store
                .edit(id, |e| e.resolve(&field, value))
                .map_err(|e| IntakeError::store(e, &form, lang))
        })
    }

    /// Records, most recently changed first, that pass `filter`.
    pub fn list_records(&self, filter: RecordFilter) -> Result<Vec<RecordSummary>, IntakeError> {
        self.with_store(|store, lang| {
            Ok(store
                .list(filter.status())?
                .into_iter()
                .filter(|s| filter.keeps(s))
                .map(|s| view::summary(s, lang))
                .collect())
        })
    }

    /// One record, labelled in the store's language.
    pub fn show_record(&self, id: String) -> Result<RecordView, IntakeError> {
        let id = record_id(&id)?;
        self.with_store(|store, lang| {
            let mut record = store.get(id)?;
            let row = store.summary(id)?;
            let marks = store.clock_marks(&mut record)?;
            Ok(view::record(&mut record, row.as_ref(), &marks, lang))
        })
    }

    /// The form of record `id` (the version it was created with), labelled in the
    /// store's language: what its edit screen shows.
    pub fn record_form(&self, id: String) -> Result<forms::FormDef, IntakeError> {
        let id = record_id(&id)?;
        self.with_store(|store, lang| Ok(forms::form_def(store.get(id)?.form(), lang)))
    }
}
