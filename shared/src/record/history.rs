//! The history of one field, read from the document's changes: every change that set,
//! cleared or (for a long text) edited it, with the value it left, the device, the
//! author and the time. "Who last set it" is the newest of these. This is what a
//! supervisor reads before settling a conflict or correcting an answer.

use std::collections::HashSet;

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{ActorId, ChangeHash, ObjId as ExId, ObjType, ReadDoc};
use chrono::{DateTime, Utc};

use super::Record;
use super::conflict::device_of;
use super::read::value_of;
use crate::value::Value;

/// One change to a field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldEvent {
    /// What the field held right after the change (as its author saw it); `None`
    /// when the change cleared it.
    pub value: Option<Value>,
    /// The writing device (the device part of the actor id, hex).
    pub device: String,
    pub author: Option<String>,
    pub at: Option<DateTime<Utc>>,
    /// The change's hash, hex.
    pub change: String,
}

impl Record {
    /// Every change that touched field `name`, oldest first (causal order).
    pub fn field_history(&mut self, name: &str) -> Vec<FieldEvent> {
        let (fields_counter, fields_actor) = match &self.fields {
            ExId::Id(counter, actor, _) => (*counter, actor.clone()),
            ExId::Root => return Vec::new(),
        };
        let is_fields = |obj: &ObjectId| matches!(obj, ObjectId::Id(op) if op.0 == fields_counter && op.1 == fields_actor);
        // Text objects ever put under this key: edits inside them are edits of it.
        let mut texts: HashSet<(u64, ActorId)> = HashSet::new();
        let mut touching: Vec<(ChangeHash, ActorId, Option<String>, i64)> = Vec::new();
        for change in self.doc.get_changes(&[]) {
            let expanded = change.decode();
            let start = expanded.start_op.get();
            let mut touched = false;
            for (i, op) in expanded.operations.iter().enumerate() {
                let on_key = is_fields(&op.obj) && matches!(&op.key, Key::Map(k) if k == name);
                if on_key {
                    touched = true;
                    if matches!(op.action, OpType::Make(ObjType::Text)) {
                        texts.insert((start + i as u64, expanded.actor_id.clone()));
                    }
                } else if let ObjectId::Id(obj) = &op.obj
                    && texts.contains(&(obj.0, obj.1.clone()))
                {
                    touched = true;
                }
            }
            if touched {
                touching.push((
                    change.hash(),
                    change.actor_id().clone(),
                    change
                        .message()
                        .map(str::to_string)
                        .filter(|m| !m.is_empty()),
                    change.timestamp(),
                ));
            }
        }
        touching
            .into_iter()
            .map(|(hash, actor, author, time)| FieldEvent {
                value: self.value_at(name, &[hash]),
                device: device_of(&actor),
                author,
                at: DateTime::<Utc>::from_timestamp_millis(time),
                change: hash.0.iter().map(|b| format!("{b:02x}")).collect(),
            })
            .collect()
    }

    /// The newest change to field `name` (the one a person means by "who last set
    /// it"), if any change ever touched it.
    pub fn last_set(&mut self, name: &str) -> Option<FieldEvent> {
        self.field_history(name).pop()
    }

    /// Field `name` as it stood at `heads`.
    fn value_at(&self, name: &str, heads: &[ChangeHash]) -> Option<Value> {
        match self.doc.get_at(&self.fields, name, heads) {
            Ok(Some((automerge::Value::Object(ObjType::Text), id))) => Some(Value::Text(
                self.doc.text_at(&id, heads).unwrap_or_default(),
            )),
            Ok(Some((v, id))) => Some(value_of(&self.doc, &v, &id)),
            _ => None,
        }
    }
}
