//! The review keys at the root of a record — `status`, `assigned_to`, `review_note` —
//! as the server's policy needs them: every concurrent value of one, now or as the
//! document stood at some heads (what the writer of a change saw, and what the change
//! left). A status conflict is thus judged by all of its values, never by a winner
//! Automerge picked.

use automerge::{ChangeHash, ReadDoc};

use super::Record;
use super::read::value_of;
use crate::value::Value;

/// The top-level keys a review writes. Concurrent values of one are a conflict like a
/// field's ([`ConflictKind::Review`](super::ConflictKind::Review)), settled by
/// [`Edit::resolve`](super::Edit::resolve) with the key as the name.
pub const REVIEW_KEYS: [&str; 3] = ["assigned_to", "review_note", "status"];

/// Whether `name` is one of [`REVIEW_KEYS`] rather than a form field.
pub fn is_review_key(name: &str) -> bool {
    REVIEW_KEYS.contains(&name)
}

impl Record {
    /// Every value the top-level `key` holds now (more than one: a conflict).
    pub fn review_values(&self, key: &str) -> Vec<Value> {
        self.doc
            .get_all(automerge::ROOT, key)
            .unwrap_or_default()
            .iter()
            .map(|(v, id)| value_of(&self.doc, v, id))
            .collect()
    }

    /// Every value the top-level `key` held in the document at `heads`: at a change's
    /// dependencies, what its writer saw; at the change's own hash, what it left. No
    /// heads (a record's first change depends on nothing): no values.
    pub fn review_values_at(&self, key: &str, heads: &[[u8; 32]]) -> Vec<Value> {
        if heads.is_empty() {
            return Vec::new();
        }
        let heads: Vec<ChangeHash> = heads.iter().map(|h| ChangeHash(*h)).collect();
        self.doc
            .get_all_at(automerge::ROOT, key, &heads)
            .unwrap_or_default()
            .iter()
            .map(|(v, id)| value_of(&self.doc, v, id))
            .collect()
    }
}
