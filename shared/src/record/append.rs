//! Comments and follow-up actions are append-only: what someone wrote there stays as
//! they wrote it. A change may add entries to the `comments` and `actions` lists, and
//! fill in the entries it adds, but not delete an entry, put another value in an
//! entry's place, or write into an entry that another change made — not even the same
//! author's earlier one. This judges a change from elsewhere by its operations, against
//! the document that holds it (where the objects it writes to can be placed).

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::legacy::{ObjectId, OpType};
use automerge::{ActorId, Change, ObjId, ObjType, ReadDoc};

use super::{Incoming, Record};

/// The append-only lists of a record.
const LISTS: [&str; 2] = ["comments", "actions"];

/// How a change breaks the append-only rule. `list` is `comments` or `actions`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppendOnly {
    #[error("{list} are append-only: a change may not delete an entry")]
    Deleted { list: &'static str },
    #[error("{list} are append-only: a change may not replace an entry")]
    Replaced { list: &'static str },
    #[error("{list} are append-only: a change may not edit an entry another change made")]
    Edited { list: &'static str },
    /// The change's operations could not be decoded, or an object it writes to could
    /// not be placed in the document (hostile bytes; Automerge 0.12 may panic on them).
    #[error("a change's operations could not be read")]
    Unreadable,
}

/// How a change writes to one object below the root that it did not make itself (what
/// it makes, it may fill in as it likes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ObjectWrites {
    /// The operation that made the object: its counter and actor.
    obj: (u64, ActorId),
    /// It deletes something in it.
    deletes: bool,
    /// It writes something in it other than an insertion or a deletion: a put over an
    /// existing key or element, an increment, a mark.
    overwrites: bool,
}

/// The objects below the root `change` writes and did not make, each once, in the
/// order first written.
pub(super) fn object_writes(
    change: &Change,
    expanded: &automerge::ExpandedChange,
) -> Vec<ObjectWrites> {
    let actor = change.actor_id();
    let first = change.start_op().get();
    let made_here = first..first.saturating_add(change.len() as u64);
    let mut out: Vec<ObjectWrites> = Vec::new();
    for op in &expanded.operations {
        let ObjectId::Id(id) = &op.obj else {
            continue; // The root: its keys are the policy's.
        };
        if id.1 == *actor && made_here.contains(&id.0) {
            continue; // An entry this change adds, or something inside it.
        }
        // A long text edit writes hundreds of operations to one object: look back at
        // the last object first.
        let i = match out.iter().rposition(|w| w.obj.0 == id.0 && w.obj.1 == id.1) {
            Some(i) => i,
            None => {
                out.push(ObjectWrites {
                    obj: (id.0, id.1.clone()),
                    deletes: false,
                    overwrites: false,
                });
                out.len() - 1
            }
        };
        match op.action {
            OpType::Delete => out[i].deletes = true,
            OpType::Make(_) | OpType::Put(_) if op.insert => {}
            _ => out[i].overwrites = true,
        }
    }
    out
}

impl Record {
    /// Checks that `change`, already merged into this record, only adds to `comments`
    /// and `actions`. The lists are the ones this document holds; the change that
    /// creates them (a record's first) writes only into objects it makes itself, and
    /// passes.
    pub fn check_appends(&self, change: &Incoming) -> Result<(), AppendOnly> {
        let lists: Vec<(ObjId, &'static str)> = LISTS
            .iter()
            .flat_map(|name| {
                self.doc
                    .get_all(automerge::ROOT, *name)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(v, _)| matches!(v, automerge::Value::Object(ObjType::List)))
                    .map(move |(_, id)| (id, *name))
            })
            .collect();
        if lists.is_empty() {
            return Ok(());
        }
        // Learned when the change was decoded, except for a change that depends on
        // nothing (its operations are decoded only when needed: `Incoming`).
        let writes = match &change.writes {
            Some(writes) => Cow::Borrowed(writes),
            None => {
                let expanded =
                    super::inspect::expand(&change.change).map_err(|_| AppendOnly::Unreadable)?;
                Cow::Owned(object_writes(&change.change, &expanded))
            }
        };
        for w in writes.iter() {
            // The index part of an id is only a hint; Automerge looks the actor up.
            let obj = ObjId::Id(w.obj.0, w.obj.1.clone(), usize::MAX);
            if let Some((_, list)) = lists.iter().find(|(l, _)| *l == obj) {
                if w.deletes {
                    return Err(AppendOnly::Deleted { list });
                }
                if w.overwrites {
                    return Err(AppendOnly::Replaced { list });
                }
                continue; // Insertions only.
            }
            if let Some(list) = self.list_holding(&obj, &lists)? {
                return Err(AppendOnly::Edited { list });
            }
        }
        Ok(())
    }

    /// Which of `lists` holds `obj` at any depth (deleted entries included), if any.
    fn list_holding(
        &self,
        obj: &ObjId,
        lists: &[(ObjId, &'static str)],
    ) -> Result<Option<&'static str>, AppendOnly> {
        let parents = self.doc.parents(obj).map_err(|_| AppendOnly::Unreadable)?;
        // Walking the parents unwraps inside Automerge; a document that fails it is
        // hostile, not a reason to stop the server.
        let path: Vec<ObjId> = catch_unwind(AssertUnwindSafe(|| parents.map(|p| p.obj).collect()))
            .map_err(|_| AppendOnly::Unreadable)?;
        Ok(path
            .iter()
            .find_map(|p| lists.iter().find(|(l, _)| l == p).map(|(_, name)| *name)))
    }
}
