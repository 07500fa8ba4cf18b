//! Looking inside changes before accepting them: who made each change (its actor and
//! the author named in its message), what it depends on, how many operations it
//! holds, which top-level keys of the record it writes, and which objects below the
//! root (for the append-only check, `append.rs`). The server's policy decides on these
//! facts; decoding happens here, strictly and under `catch_unwind`, because the bytes
//! come off the network.

use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{Change, ScalarValue};

use super::RecordError;
use super::append::{ObjectWrites, object_writes};
use super::chunks;
use crate::value::Value;

/// A write to a top-level key of a record document (`status`, `assigned_to`, `fields`…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootWrite {
    pub key: String,
    /// The scalar written; `None` for deletions and for new objects (maps, lists).
    pub value: Option<Value>,
}

/// What one change is, as far as deciding whether to accept it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeInfo {
    pub hash: [u8; 32],
    /// The full actor id (device prefix + session).
    pub actor: Vec<u8>,
    pub seq: u64,
    /// The change's message: the name of the user who made it (see the module doc of
    /// [`record`](super)); `None` for a change made before the device knew its user.
    pub message: Option<String>,
    pub deps: Vec<[u8; 32]>,
    pub ops: usize,
    pub root_writes: Vec<RootWrite>,
    /// The change's canonical (uncompressed) chunk bytes: what is stored and sent on.
    pub bytes: Vec<u8>,
}

/// Decodes every change in `bytes` (one or more change chunks) and describes each.
pub fn inspect_changes(bytes: &[u8]) -> Result<Vec<ChangeInfo>, RecordError> {
    chunks::decode(bytes)?
        .into_iter()
        .map(|c| describe(&c).map(|(info, _)| info))
        .collect()
}

/// A change from elsewhere, decoded once: the facts a policy judges, and the change
/// itself, ready for [`Record::from_incoming`](super::Record::from_incoming) without
/// decoding its bytes again.
///
/// A change without dependencies — one that creates a record — is not decoded
/// operation by operation here: that costs about as much again as building the record
/// (a new intake record holds some 400 operations, one per character of its
/// narrative). Its root writes are read off the record it builds instead
/// ([`Record::creation`](super::Record::creation)), or decoded on demand
/// ([`Incoming::described`]).
#[derive(Clone, Debug)]
pub struct Incoming {
    /// Everything but, while [`Incoming::root_writes_pending`], `root_writes`.
    pub info: ChangeInfo,
    pub(super) change: Change,
    pending: bool,
    /// The objects below the root the change writes, for the append-only check,
    /// learned in the same pass as the root writes (`None` while those are pending).
    pub(super) writes: Option<Vec<ObjectWrites>>,
}

impl Incoming {
    /// Whether `info.root_writes` is still to be learned.
    pub fn root_writes_pending(&self) -> bool {
        self.pending
    }

    /// The whole facts, decoding the operations if that was put off.
    pub fn described(&self) -> Result<ChangeInfo, RecordError> {
        if self.pending {
            describe(&self.change).map(|(info, _)| info)
        } else {
            Ok(self.info.clone())
        }
    }
}

/// Like [`inspect_changes`], keeping the decoded changes (and putting off decoding the
/// operations of creating changes), for changes pushed from elsewhere: only
/// uncompressed change chunks are accepted. A compressed change or a whole document is
/// refused by its header as [`RecordError::Malformed`] before Automerge touches it (it
/// would have to inflate it first: a decompression bomb, and panics in Automerge 0.12).
pub fn decode_incoming(bytes: &[u8]) -> Result<Vec<Incoming>, RecordError> {
    chunks::decode_pushed(bytes)?
        .into_iter()
        .map(|change| {
            let pending = change.deps().is_empty();
            let (info, writes) = if pending {
                (facts(&change, change.len(), Vec::new()), None)
            } else {
                let (info, writes) = describe(&change)?;
                (info, Some(writes))
            };
            Ok(Incoming {
                info,
                change,
                pending,
                writes,
            })
        })
        .collect()
}

/// The writes at the root of a document as they stand: for a document made by one
/// change, that change's root writes (a key it wrote and then deleted again leaves no
/// trace either way).
pub(super) fn root_writes_of(doc: &automerge::AutoCommit) -> Vec<RootWrite> {
    use automerge::ReadDoc;
    doc.keys(automerge::ROOT)
        .map(|key| {
            let value = match doc.get(automerge::ROOT, &key) {
                Ok(Some((automerge::Value::Scalar(v), _))) => Some(scalar(&v)),
                _ => None,
            };
            RootWrite { key, value }
        })
        .collect()
}

/// The change's facts and the objects below the root it writes, from one decoding of
/// its operations.
fn describe(change: &Change) -> Result<(ChangeInfo, Vec<ObjectWrites>), RecordError> {
    let expanded = expand(change)?;
    let writes = object_writes(change, &expanded);
    let root_writes = expanded
        .operations
        .iter()
        .filter(|op| op.obj == ObjectId::Root)
        .filter_map(|op| match &op.key {
            Key::Map(k) => Some(RootWrite {
                key: k.to_string(),
                value: match &op.action {
                    OpType::Put(v) => Some(scalar(v)),
                    _ => None,
                },
            }),
            Key::Seq(_) => None,
        })
        .collect();
    Ok((
        facts(change, expanded.operations.len(), root_writes),
        writes,
    ))
}

/// A change's operations, decoded under a panic guard (the bytes come from elsewhere).
pub(super) fn expand(change: &Change) -> Result<automerge::ExpandedChange, RecordError> {
    catch_unwind(AssertUnwindSafe(|| change.decode()))
        .map_err(|_| RecordError::Malformed("a change's operations could not be decoded".into()))
}

fn facts(change: &Change, ops: usize, root_writes: Vec<RootWrite>) -> ChangeInfo {
    ChangeInfo {
        hash: change.hash().0,
        actor: change.actor_id().to_bytes().to_vec(),
        seq: change.seq(),
        message: change.message().map(str::to_string),
        deps: change.deps().iter().map(|h| h.0).collect(),
        ops,
        root_writes,
        bytes: change.raw_bytes().to_vec(),
    }
}

fn scalar(v: &ScalarValue) -> Value {
    match v {
        ScalarValue::Str(s) => Value::Text(s.to_string()),
        ScalarValue::Int(i) => Value::Int(*i),
        ScalarValue::Uint(u) => i64::try_from(*u).map_or(Value::Text(u.to_string()), Value::Int),
        ScalarValue::Boolean(b) => Value::Bool(*b),
        other => Value::Text(other.to_string()),
    }
}
