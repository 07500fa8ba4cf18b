//! Same-field conflicts as a first-class state: every concurrent value of a field, with
//! the device, author and time of the change that wrote it, read from the history.
//! Concurrent values of a review key (status, assignee, review note: two supervisors
//! deciding one case offline) are conflicts the same way, marked as such.

use automerge::{ObjId, ReadDoc};
use chrono::{DateTime, Utc};

use super::Record;
use super::read::value_of;
use crate::value::Value;

/// One of several values written concurrently to a field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConflictValue {
    pub value: Value,
    /// The device (the 16-byte device part of the writing actor, hex) that wrote it.
    pub device: String,
    /// The user named as the change's author (its message), when the device knew it.
    pub author: Option<String>,
    /// When the device says the change was made.
    pub at: Option<DateTime<Utc>>,
    /// The hash of the change that wrote it, hex (to find its receipt on the server;
    /// not in the JSON, which stays as it was).
    #[serde(skip)]
    pub change: String,
}

/// What holds the conflicting values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// A field of the form (`conflict.field` is its name).
    Field,
    /// A review key of the record: `status`, `assigned_to` or `review_note`
    /// ([`REVIEW_KEYS`](super::REVIEW_KEYS)).
    Review,
}

/// A field, or a review key, holding more than one concurrent value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Conflict {
    /// The field's name, or the review key.
    pub field: String,
    pub kind: ConflictKind,
    /// Sorted by device so that every replica lists them in the same order.
    pub values: Vec<ConflictValue>,
}

impl Record {
    /// Every conflict: the fields' by field name, then the review keys' by key.
    pub fn conflicts(&mut self) -> Vec<Conflict> {
        let fields = self.fields.clone();
        let mut out = self.conflicts_in(&fields, ConflictKind::Field);
        out.extend(self.conflicts_in(&automerge::ROOT, ConflictKind::Review));
        out
    }

    /// The conflicts of the keys of `obj` (the fields map, or the root's review keys).
    fn conflicts_in(&mut self, obj: &ObjId, kind: ConflictKind) -> Vec<Conflict> {
        let keys: Vec<String> = match kind {
            ConflictKind::Field => self.doc.keys(obj).collect(),
            ConflictKind::Review => super::REVIEW_KEYS.iter().map(|k| k.to_string()).collect(),
        };
        let mut out = Vec::new();
        for key in keys {
            let all = self.doc.get_all(obj, key.as_str()).unwrap_or_default();
            if all.len() < 2 {
                continue;
            }
            let mut values: Vec<ConflictValue> = all
                .iter()
                .map(|(v, id)| (value_of(&self.doc, v, id), id.clone()))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|(value, id)| {
                    let (device, author, at) = self.op_provenance(&id);
                    ConflictValue {
                        value,
                        device,
                        author,
                        at,
                        change: self.change_of(&id),
                    }
                })
                .collect();
            values.sort_by(|a, b| (&a.device, &a.value).cmp(&(&b.device, &b.value)));
            out.push(Conflict {
                field: key,
                kind,
                values,
            });
        }
        out
    }

    /// Whether a review key holds concurrent values.
    pub(super) fn has_review_conflicts(&self) -> bool {
        super::REVIEW_KEYS.iter().any(|k| {
            self.doc
                .get_all(automerge::ROOT, *k)
                .is_ok_and(|all| all.len() > 1)
        })
    }

    /// Device and author of the change that created an object (a comment, an action).
    pub(super) fn provenance(&mut self, obj: &ObjId) -> (String, Option<String>) {
        let (device, author, _) = self.op_provenance(obj);
        (device, author)
    }

    /// The hash (hex) of the change that made an operation or object, or empty.
    pub(super) fn change_of(&mut self, op: &ObjId) -> String {
        self.doc
            .hash_for_opid(op)
            .map(|h| h.0.iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default()
    }

    fn op_provenance(&mut self, op: &ObjId) -> (String, Option<String>, Option<DateTime<Utc>>) {
        let Some(hash) = self.doc.hash_for_opid(op) else {
            return (String::new(), None, None);
        };
        match self.doc.get_change_meta_by_hash(&hash) {
            Some(meta) => (
                device_of(meta.actor.as_ref()),
                meta.message
                    .map(|m| m.into_owned())
                    .filter(|m| !m.is_empty()),
                DateTime::<Utc>::from_timestamp_millis(meta.timestamp),
            ),
            None => (String::new(), None, None),
        }
    }
}

/// The device part of an actor id: its first 16 bytes (the rest names a session on that
/// device; see the client store), in hex.
pub(super) fn device_of(actor: &automerge::ActorId) -> String {
    let bytes = actor.to_bytes();
    let device = &bytes[..bytes.len().min(16)];
    device.iter().map(|b| format!("{b:02x}")).collect()
}
