//! Reading a record: current values, review state, comments and actions, validation,
//! and the JSON view that `intake show --json` prints.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue};
use chrono::{DateTime, Utc};

use super::{ConflictKind, Record};
use crate::status::ReviewStatus;
use crate::validate::Issue;
use crate::value::Value;

/// A comment on a record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Comment {
    pub text: String,
    pub at: String,
    /// The device (the device part of the actor id, hex) that wrote it.
    pub device: String,
    pub author: Option<String>,
    /// The hash of the change that appended it, hex (to find its receipt on the
    /// server; not in the JSON, which stays as it was).
    #[serde(skip)]
    pub change: String,
}

/// A follow-up action (visit, letter, complaint filed, …).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Action {
    pub form: String,
    pub form_version: u32,
    pub at: String,
    pub device: String,
    pub author: Option<String>,
    pub fields: BTreeMap<String, Value>,
    /// The hash of the change that appended it, hex (to find its receipt; not in the
    /// JSON, which stays as it was).
    #[serde(skip)]
    pub change: String,
}

pub(super) fn to_scalar(v: Value) -> ScalarValue {
    match v {
        Value::Bool(b) => ScalarValue::Boolean(b),
        Value::Int(i) => ScalarValue::Int(i),
        Value::Text(s) => ScalarValue::Str(s.into()),
    }
}

/// A stored value as a [`Value`]; text objects are read as their text. Shapes we never
/// write (floats, bytes, nested maps) come from a foreign or broken writer and are shown
/// as text rather than dropped.
pub(super) fn value_of(doc: &AutoCommit, v: &automerge::Value<'_>, id: &ObjId) -> Value {
    match v {
        automerge::Value::Object(ObjType::Text) => Value::Text(doc.text(id).unwrap_or_default()),
        automerge::Value::Object(t) => Value::Text(format!("<{t:?}>")),
        automerge::Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Boolean(b) => Value::Bool(*b),
            ScalarValue::Int(i) => Value::Int(*i),
            ScalarValue::Uint(u) => {
                i64::try_from(*u).map_or(Value::Text(u.to_string()), Value::Int)
            }
            ScalarValue::Str(s) => Value::Text(s.to_string()),
            other => Value::Text(other.to_string()),
        },
    }
}

/// Current values (Automerge's deterministic winner where there is a conflict) and
/// the names of fields holding more than one concurrent value.
pub(super) fn values_and_conflicted(
    doc: &AutoCommit,
    fields: &ObjId,
) -> (BTreeMap<String, Value>, Vec<String>) {
    let mut values = BTreeMap::new();
    let mut conflicted = Vec::new();
    for key in doc.keys(fields) {
        let all = doc.get_all(fields, key.as_str()).unwrap_or_default();
        if all.len() > 1 {
            conflicted.push(key.clone());
        }
        if let Ok(Some((v, id))) = doc.get(fields, key.as_str()) {
            values.insert(key, value_of(doc, &v, &id));
        }
    }
    (values, conflicted)
}

/// A stored status as the record model reads it: an unknown one (from a newer app)
/// reads as `submitted` (see [`Record::status`]).
pub(super) fn status_of(stored: Option<String>) -> ReviewStatus {
    stored
        .and_then(|s| s.parse().ok())
        .unwrap_or(ReviewStatus::Submitted)
}

/// An empty note or assignee is none.
pub(super) fn non_empty(stored: Option<String>) -> Option<String> {
    stored.filter(|s| !s.is_empty())
}

/// A stored RFC 3339 time, if it is one.
pub(super) fn time_of(stored: Option<String>) -> Option<DateTime<Utc>> {
    stored
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// One map of a list: its keys, the device and author that appended it, and the hash
/// (hex) of the change that did.
type ListEntry = (BTreeMap<String, Value>, String, Option<String>, String);

impl Record {
    fn root_str(&self, key: &str) -> Option<String> {
        match self.doc.get(automerge::ROOT, key) {
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Str(s) => Some(s.to_string()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Current field values. Long texts that are still empty are left out.
    pub fn values(&self) -> BTreeMap<String, Value> {
        let (mut values, _) = values_and_conflicted(&self.doc, &self.fields);
        values.retain(|_, v| !matches!(v, Value::Text(s) if s.is_empty()));
        values
    }

    /// One field's current value.
    pub fn get(&self, name: &str) -> Option<Value> {
        match self.doc.get(&self.fields, name) {
            Ok(Some((v, id))) => Some(value_of(&self.doc, &v, &id)),
            _ => None,
        }
    }

    /// The review status; an unknown status (from a newer app) reads as `submitted`,
    /// the state that puts it in front of a reviewer. While two statuses conflict, this
    /// is Automerge's deterministic winner, the same on every replica; the conflict is
    /// in [`Record::conflicts`].
    pub fn status(&self) -> ReviewStatus {
        status_of(self.root_str("status"))
    }

    /// The reviewer's note that came with the status, if any.
    pub fn review_note(&self) -> Option<String> {
        non_empty(self.root_str("review_note"))
    }

    pub fn assigned_to(&self) -> Option<String> {
        non_empty(self.root_str("assigned_to"))
    }

    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        time_of(self.root_str("created_at"))
    }

    /// Validation issues of the current values for the current status.
    pub fn validate(&self) -> Vec<Issue> {
        let (values, conflicted) = values_and_conflicted(&self.doc, &self.fields);
        self.form.validate(&values, &conflicted, self.status())
    }

    /// Whether any field or review key holds concurrent values.
    pub fn has_conflicts(&self) -> bool {
        // Counting concurrent values reads no value (a narrative's text is not read):
        // the server asks this of every record it stores.
        // One pass over the fields map, Automerge flagging each key with concurrent
        // values, instead of seeking every key again (`get_all`): 12 % of a device's
        // pull when each new record was loaded for its list row.
        let fields_conflict = self
            .doc
            .map_range(&self.fields, ..)
            .any(|item| item.conflict);
        fields_conflict || self.has_review_conflicts()
    }

    /// The maps of a root list (comments, actions) in list order, each with the device
    /// and author that appended it and the hash (hex) of the change that did.
    fn list_maps(&mut self, key: &str) -> Vec<ListEntry> {
        let Ok(Some((automerge::Value::Object(ObjType::List), list))) =
            self.doc.get(automerge::ROOT, key)
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for i in 0..self.doc.length(&list) {
            let Ok(Some((automerge::Value::Object(ObjType::Map), map))) = self.doc.get(&list, i)
            else {
                continue;
            };
            let mut entry = BTreeMap::new();
            for k in self.doc.keys(&map) {
                if let Ok(Some((v, id))) = self.doc.get(&map, k.as_str()) {
                    entry.insert(k, value_of(&self.doc, &v, &id));
                }
            }
            let (device, author) = self.provenance(&map);
            let change = self.change_of(&map);
            out.push((entry, device, author, change));
        }
        out
    }

    /// Comments, oldest first (in list order, which every replica agrees on).
    pub fn comments(&mut self) -> Vec<Comment> {
        self.list_maps("comments")
            .into_iter()
            .map(|(mut m, device, author, change)| Comment {
                text: take_text(&mut m, "text"),
                at: take_text(&mut m, "at"),
                device,
                author,
                change,
            })
            .collect()
    }

    /// Follow-up actions, in the order they were appended.
    pub fn actions(&mut self) -> Vec<Action> {
        self.list_maps("actions")
            .into_iter()
            .map(|(mut m, device, author, change)| Action {
                form: take_text(&mut m, "form"),
                form_version: match m.remove("form_version") {
                    Some(Value::Int(v)) => u32::try_from(v).unwrap_or(0),
                    _ => 0,
                },
                at: take_text(&mut m, "at"),
                device,
                author,
                fields: m,
                change,
            })
            .collect()
    }

    /// Everything `intake show --json` prints.
    pub fn to_json(&mut self) -> serde_json::Value {
        let fields: serde_json::Map<_, _> = self
            .values()
            .into_iter()
            .map(|(k, v)| (k, v.to_json()))
            .collect();
        // Field conflicts stay under `conflicts`, shaped as before (readers look each
        // key up in the form); the review keys' have a map of their own.
        let mut conflicts = serde_json::Map::new();
        let mut review_conflicts = serde_json::Map::new();
        for c in self.conflicts() {
            let values = serde_json::to_value(c.values).unwrap_or_default();
            match c.kind {
                ConflictKind::Field => conflicts.insert(c.field, values),
                ConflictKind::Review => review_conflicts.insert(c.field, values),
            };
        }
        serde_json::json!({
            "id": self.id.to_string(),
            "form": self.form.id,
            "form_version": self.form.version,
            "status": self.status().as_str(),
            "review_note": self.review_note(),
            "assigned_to": self.assigned_to(),
            "created_at": self.created_at().map(|d| d.to_rfc3339()),
            "fields": fields,
            "conflicts": conflicts,
            "review_conflicts": review_conflicts,
            "actions": self.actions(),
            "comments": self.comments(),
            "issues": self.validate(),
        })
    }
}

fn take_text(m: &mut BTreeMap<String, Value>, key: &str) -> String {
    match m.remove(key) {
        Some(Value::Text(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    }
}
