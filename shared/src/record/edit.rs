//! Changing a record. Every mutation goes through [`Edit`], inside
//! [`Record::edit`](super::Record::edit), so that one user action is one Automerge
//! change, checked against the form before anything is written.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, transaction::Transactable};
use chrono::{DateTime, Utc};

use super::RecordError;
use crate::form::{FieldType, Form};
use crate::status::ReviewStatus;
use crate::validate::Rule;
use crate::value::Value;

/// An open edit of one record; see [`Record::edit`](super::Record::edit).
pub struct Edit<'a> {
    pub(super) doc: &'a mut AutoCommit,
    pub(super) form: &'a Form,
    pub(super) fields: &'a ObjId,
    pub(super) at: DateTime<Utc>,
}

/// Automerge errors inside an edit mean the document is not shaped as we wrote it.
fn am(e: automerge::AutomergeError) -> RecordError {
    RecordError::Malformed(e.to_string())
}

impl Edit<'_> {
    /// The form version of the record being edited (to parse input against).
    pub fn form(&self) -> &Form {
        self.form
    }

    /// Sets a field. The value is checked against the form first; a long text is
    /// updated in place (a character diff), so a concurrent edit elsewhere in the same
    /// text merges instead of conflicting.
    pub fn set(&mut self, name: &str, value: Value) -> Result<(), RecordError> {
        let kind = self.checked(name, &value)?;
        if kind == FieldType::LongText {
            let Value::Text(text) = value else {
                unreachable!("checked() accepts only text for long_text")
            };
            let existing = self.doc.get_all(self.fields, name).map_err(am)?;
            if let [(automerge::Value::Object(ObjType::Text), obj)] = existing.as_slice() {
                let obj = obj.clone();
                return self.doc.update_text(&obj, text).map_err(am);
            }
            // No text yet, or a conflict between texts: a new text supersedes all.
            return self.put_text(name, &text);
        }
        self.put_scalar(name, value)
    }

    /// Settles a conflict: writes `value`, which supersedes every concurrent value.
    /// The resolution is a change like any other, so it is part of the history.
    /// `name` is a form field or a review key ([`REVIEW_KEYS`](super::REVIEW_KEYS)):
    /// a status is checked like [`Edit::set_status`] (and the server judges it as a
    /// status change from every conflicting value), an assignee or a note is text.
    pub fn resolve(&mut self, name: &str, value: Value) -> Result<(), RecordError> {
        if super::is_review_key(name) {
            return self.resolve_review(name, value);
        }
        let kind = self.checked(name, &value)?;
        match (kind, value) {
            (FieldType::LongText, Value::Text(text)) => self.put_text(name, &text),
            (_, value) => self.put_scalar(name, value),
        }
    }

    fn resolve_review(&mut self, key: &str, value: Value) -> Result<(), RecordError> {
        let Value::Text(text) = value else {
            return Err(RecordError::Invalid {
                field: key.to_string(),
                rule: Rule::WrongType { expected: "text" },
            });
        };
        match key {
            "status" => {
                let status = text.parse().map_err(|_| RecordError::Invalid {
                    field: key.to_string(),
                    rule: Rule::NotAChoice {
                        allowed: ReviewStatus::ALL
                            .iter()
                            .map(|s| s.as_str().to_string())
                            .collect(),
                    },
                })?;
                self.set_status(status, None)
            }
            _ => self.doc.put(&automerge::ROOT, key, text.trim()).map_err(am),
        }
    }

    /// Removes a field's answer.
    pub fn clear(&mut self, name: &str) -> Result<(), RecordError> {
        self.form.field(name).ok_or_else(|| RecordError::Invalid {
            field: name.to_string(),
            rule: Rule::UnknownField,
        })?;
        self.doc.delete(self.fields, name).map_err(am)
    }

    /// Sets the review status, and the reviewer's note ("re-ask consent") when one is
    /// given; without one the previous note stays (a paralegal resubmitting does not
    /// erase what the supervisor asked). Statuses past `draft` require the required
    /// fields answered and no open conflict.
    pub fn set_status(
        &mut self,
        status: ReviewStatus,
        note: Option<&str>,
    ) -> Result<(), RecordError> {
        if status.requires_complete() {
            let (values, conflicted) = super::read::values_and_conflicted(self.doc, self.fields);
            let issues: Vec<_> = self
                .form
                .validate(&values, &conflicted, status)
                .into_iter()
                .filter(|i| matches!(i.rule, Rule::Required | Rule::Conflict))
                .collect();
            if !issues.is_empty() {
                return Err(RecordError::Incomplete { issues });
            }
        }
        let root = automerge::ROOT;
        self.doc.put(&root, "status", status.as_str()).map_err(am)?;
        match note {
            Some(note) => self.doc.put(&root, "review_note", note).map_err(am),
            None => Ok(()),
        }
    }

    /// Assigns the record to a user (by name).
    pub fn assign(&mut self, user: &str) -> Result<(), RecordError> {
        self.doc
            .put(&automerge::ROOT, "assigned_to", user)
            .map_err(am)
    }

    /// Appends a comment.
    pub fn add_comment(&mut self, text: &str) -> Result<(), RecordError> {
        if text.trim().is_empty() {
            return Err(RecordError::Invalid {
                field: "comment".into(),
                rule: Rule::Required,
            });
        }
        let list = self.list("comments")?;
        let idx = self.doc.length(&list);
        let map = self
            .doc
            .insert_object(&list, idx, ObjType::Map)
            .map_err(am)?;
        self.doc.put(&map, "text", text).map_err(am)?;
        self.doc.put(&map, "at", self.at.to_rfc3339()).map_err(am)
    }

    /// Appends a follow-up action, checked against the follow-up `form`.
    pub fn add_action(
        &mut self,
        form: &Form,
        values: &BTreeMap<String, Value>,
    ) -> Result<(), RecordError> {
        let issues = form.validate(values, &[], ReviewStatus::Submitted);
        if !issues.is_empty() {
            return Err(RecordError::Incomplete { issues });
        }
        let list = self.list("actions")?;
        let idx = self.doc.length(&list);
        let map = self
            .doc
            .insert_object(&list, idx, ObjType::Map)
            .map_err(am)?;
        self.doc.put(&map, "form", form.id.as_str()).map_err(am)?;
        self.doc
            .put(&map, "form_version", i64::from(form.version))
            .map_err(am)?;
        self.doc.put(&map, "at", self.at.to_rfc3339()).map_err(am)?;
        for (k, v) in values {
            self.doc
                .put(&map, k.as_str(), super::read::to_scalar(v.clone()))
                .map_err(am)?;
        }
        Ok(())
    }

    fn checked(&self, name: &str, value: &Value) -> Result<FieldType, RecordError> {
        let invalid = |rule| RecordError::Invalid {
            field: name.to_string(),
            rule,
        };
        let field = self
            .form
            .field(name)
            .ok_or_else(|| invalid(Rule::UnknownField))?;
        self.form.check_value(field, value).map_err(invalid)?;
        // Blank passes check_value for every type, but a blank must still be text.
        if field.kind == FieldType::LongText && !matches!(value, Value::Text(_)) {
            return Err(invalid(Rule::WrongType {
                expected: "long_text",
            }));
        }
        Ok(field.kind)
    }

    fn put_scalar(&mut self, name: &str, value: Value) -> Result<(), RecordError> {
        self.doc
            .put(self.fields, name, super::read::to_scalar(value))
            .map_err(am)
    }

    fn put_text(&mut self, name: &str, text: &str) -> Result<(), RecordError> {
        let obj = self
            .doc
            .put_object(self.fields, name, ObjType::Text)
            .map_err(am)?;
        self.doc.splice_text(&obj, 0, 0, text).map_err(am)
    }

    fn list(&mut self, key: &str) -> Result<ObjId, RecordError> {
        match self.doc.get(automerge::ROOT, key).map_err(am)? {
            Some((automerge::Value::Object(ObjType::List), id)) => Ok(id),
            _ => Err(RecordError::Malformed(format!("no {key} list"))),
        }
    }
}
