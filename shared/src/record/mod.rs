//! The record model: one case as one Automerge document. This is the only module that
//! speaks Automerge; everything else speaks in records, fields, conflicts and bytes.
//!
//! Document layout (root map):
//! - `id`, `form`, `form_version`, `created_at`: fixed at creation;
//! - `fields`: one key per form field, so concurrent edits of different fields merge;
//!   `long_text` fields are Automerge text, so concurrent edits of one narrative merge
//!   character-wise;
//! - `status`, `review_note`, `assigned_to`: review state, synced like everything else;
//!   concurrent values of one are a conflict like a field's (`review.rs`);
//! - `comments`, `actions`: append-only lists of maps (the server refuses anything
//!   else: `append.rs`).
//!
//! Who wrote what comes from the history: the change's actor is the device (bound to a
//! user on the server), its message the user's name, its time the clock of the device.
//! (Automerge 0.12's own "author" feature mints a random actor per author, which would
//! break the actor-to-device binding the server checks, so we do not use it.)

mod append;
mod chunks;
mod conflict;
mod created;
mod declared;
mod edit;
mod history;
mod inspect;
mod ops;
mod read;
mod review;
mod times;

pub use append::AppendOnly;
pub use chunks::{change_hash, change_hashes};
pub use conflict::{Conflict, ConflictKind, ConflictValue};
pub use created::Creation;
pub use declared::{Declared, declared};
pub use edit::Edit;
pub use history::FieldEvent;
pub use inspect::{ChangeInfo, Incoming, RootWrite, decode_incoming, inspect_changes};
pub use read::{Action, Comment};
pub use review::{REVIEW_KEYS, is_review_key};

/// Splits concatenated Automerge chunks (what [`Record::changes_since`] returns) into
/// one slice per chunk, by their headers alone, without decoding them: a store pushes
/// the changes it saved this way without loading the record. Bytes that are not whole
/// chunks are an error.
pub fn split_chunks(bytes: &[u8]) -> Result<Vec<&[u8]>, RecordError> {
    Ok(chunks::split(bytes)?.into_iter().map(|(_, c)| c).collect())
}

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use automerge::{
    ActorId, AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, transaction::Transactable,
};
use chrono::{DateTime, Utc};

use crate::form::{FieldType, Form, FormError, FormRegistry};
use crate::ids::RecordId;
use crate::status::ReviewStatus;
use crate::validate::{Issue, Rule};

/// Who is editing: the device's Automerge actor and, once known, the user's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The device's actor id (16 random bytes, bound to the device at enrolment).
    pub actor: Vec<u8>,
    /// The user's name, recorded as the author of every change.
    pub author: Option<String>,
}

/// Why a record operation failed. Nothing is changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{field}: {}", rule.message(crate::Lang::En))]
    Invalid { field: String, rule: Rule },
    #[error("the record is incomplete: {}", issues.iter().map(|i| i.message(crate::Lang::En)).collect::<Vec<_>>().join("; "))]
    Incomplete { issues: Vec<Issue> },
    #[error("not a valid record: {0}")]
    Malformed(String),
    #[error("changes depend on changes that are not here")]
    MissingDependencies,
    #[error(transparent)]
    Form(#[from] FormError),
}

/// One case record. Its `Debug` names the record, never its content: a record that
/// reaches a log line or a panic message must not carry a client's story with it.
#[derive(Clone)]
pub struct Record {
    doc: AutoCommit,
    id: RecordId,
    form: Arc<Form>,
    fields: ObjId,
    /// Written as the message of every change this replica makes.
    author: Option<String>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("id", &self.id)
            .field("form", &self.form.id)
            .finish_non_exhaustive()
    }
}

impl Record {
    /// Starts a new record for `form`, as a draft.
    pub fn create(id: RecordId, form: Arc<Form>, who: &Identity, at: DateTime<Utc>) -> Record {
        Record::create_with(id, form, who, at, |_| Ok(())).expect("an empty first edit cannot fail")
    }

    /// Starts a new record and fills it in with `f`, as one change: the record and its
    /// first answers travel and are stored together. Nothing is created if `f` fails.
    pub fn create_with(
        id: RecordId,
        form: Arc<Form>,
        who: &Identity,
        at: DateTime<Utc>,
        f: impl FnOnce(&mut Edit<'_>) -> Result<(), RecordError>,
    ) -> Result<Record, RecordError> {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(who.actor.as_slice()));
        let root = automerge::ROOT;
        // These puts cannot fail on a fresh document: the root exists and is a map.
        let fields = (|| -> Result<ObjId, automerge::AutomergeError> {
            doc.put(&root, "id", id.to_string())?;
            doc.put(&root, "form", form.id.as_str())?;
            doc.put(&root, "form_version", i64::from(form.version))?;
            doc.put(&root, "created_at", at.to_rfc3339())?;
            doc.put(&root, "status", ReviewStatus::Draft.as_str())?;
            let fields = doc.put_object(&root, "fields", ObjType::Map)?;
            // Long texts exist from the start so that every device edits the same text
            // object; two devices creating it concurrently would make a conflict.
            for f in form
                .fields()
                .iter()
                .filter(|f| f.kind == FieldType::LongText)
            {
                doc.put_object(&fields, f.name.as_str(), ObjType::Text)?;
            }
            doc.put_object(&root, "comments", ObjType::List)?;
            doc.put_object(&root, "actions", ObjType::List)?;
            Ok(fields)
        })()
        .expect("initialising a fresh document");
        let mut record = Record {
            doc,
            id,
            form,
            fields,
            author: who.author.clone(),
        };
        // The initialisation is still uncommitted: `edit` commits it with `f`'s work.
        record.edit(at, f)?;
        Ok(record)
    }

    /// Loads a record from bytes (a full save, or changes), which may come from the
    /// network: a panic inside Automerge on hostile input is turned into an error.
    pub fn load(bytes: &[u8], forms: &FormRegistry) -> Result<Record, RecordError> {
        let doc = catch_unwind(|| {
            let options =
                automerge::LoadOptions::new().on_partial_load(automerge::OnPartialLoad::Error);
            AutoCommit::load_with_options(bytes, options)
        })
        .map_err(|_| RecordError::Malformed("the document could not be decoded".into()))?
        .map_err(|e| RecordError::Malformed(e.to_string()))?;
        Record::from_doc(doc, forms)
    }

    fn from_doc(doc: AutoCommit, forms: &FormRegistry) -> Result<Record, RecordError> {
        let root = automerge::ROOT;
        let text = |key: &str| match doc.get(&root, key) {
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Str(s) => Some(s.to_string()),
                _ => None,
            },
            _ => None,
        };
        let id = text("id")
            .and_then(|s| s.parse::<RecordId>().ok())
            .ok_or_else(|| RecordError::Malformed("no record id".into()))?;
        let form_id = text("form").ok_or_else(|| RecordError::Malformed("no form".into()))?;
        let version = match doc.get(&root, "form_version") {
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Int(v) => u32::try_from(*v).ok(),
                ScalarValue::Uint(v) => u32::try_from(*v).ok(),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| RecordError::Malformed("no form version".into()))?;
        let fields = match doc.get(&root, "fields") {
            Ok(Some((automerge::Value::Object(ObjType::Map), id))) => id,
            _ => return Err(RecordError::Malformed("no fields map".into())),
        };
        let form = forms.get(&form_id, version)?;
        Ok(Record {
            doc,
            id,
            form,
            fields,
            author: None,
        })
    }

    /// Sets who the following edits are by (actor and author).
    pub fn set_identity(&mut self, who: &Identity) {
        self.doc.set_actor(ActorId::from(who.actor.as_slice()));
        self.author = who.author.clone();
    }

    /// Merges changes from elsewhere (another device, the server). The bytes may be
    /// hostile: they are applied to a copy under `catch_unwind`, and the record is
    /// replaced only on success, so a bad input changes nothing.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        let changes = chunks::decode(bytes)?;
        if changes.is_empty() {
            return Ok(());
        }
        let mut copy = self.doc.clone();
        apply_strictly(&mut copy, changes)?;
        self.doc = copy;
        Ok(())
    }

    /// A record made of decoded changes from elsewhere: the whole history of a record
    /// new to this replica. Cheaper than [`Record::load`] of their bytes, which would
    /// decode them a second time.
    pub fn from_incoming(
        changes: &[&Incoming],
        forms: &FormRegistry,
    ) -> Result<Record, RecordError> {
        let mut doc = AutoCommit::new();
        apply_strictly(&mut doc, changes.iter().map(|c| c.change.clone()).collect())?;
        Record::from_doc(doc, forms)
    }

    /// A record new to this replica made by one creating change (no dependencies),
    /// and that change's whole facts, its root writes read off the record: the cheap
    /// way to take in a new record (see [`Incoming`]).
    pub fn creation(
        change: &Incoming,
        forms: &FormRegistry,
    ) -> Result<(Record, ChangeInfo), RecordError> {
        if !change.info.deps.is_empty() {
            return Err(RecordError::MissingDependencies);
        }
        let mut doc = AutoCommit::new();
        apply_strictly(&mut doc, vec![change.change.clone()])?;
        let info = ChangeInfo {
            root_writes: inspect::root_writes_of(&doc),
            ..change.info.clone()
        };
        Ok((Record::from_doc(doc, forms)?, info))
    }

    /// This record with decoded changes from elsewhere merged in; consumed, so that a
    /// failure (hostile changes) leaves nothing half-applied behind and needs no copy.
    pub fn with_incoming(mut self, changes: &[&Incoming]) -> Result<Record, RecordError> {
        apply_strictly(
            &mut self.doc,
            changes.iter().map(|c| c.change.clone()).collect(),
        )?;
        Ok(self)
    }

    /// Merges everything `other` holds that this record lacks.
    pub fn merge(&mut self, other: &mut Record) -> Result<(), RecordError> {
        let bytes = other.doc.save_after(&self.doc.get_heads());
        self.apply(&bytes)
    }

    /// The whole record, compacted (what a store keeps as a snapshot).
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Like [`Record::save`], without the DEFLATE Automerge applies to large columns:
    /// about 40% larger, but a batch of such documents compresses as a whole (zstd
    /// finds what records share; DEFLATEd columns look random to it), and it is ten
    /// times quicker to write. What the server stores and sends.
    pub fn save_plain(&mut self) -> Vec<u8> {
        self.doc.save_nocompress()
    }

    /// The changes made since the last `save` or `save_incremental` (what a store
    /// appends on each save instead of rewriting the record).
    pub fn save_incremental(&mut self) -> Vec<u8> {
        self.doc.save_incremental()
    }

    /// The changes this record has that a replica at `heads` lacks.
    pub fn changes_since(&mut self, heads: &[[u8; 32]]) -> Vec<u8> {
        let heads: Vec<_> = heads.iter().map(|h| automerge::ChangeHash(*h)).collect();
        self.doc.save_after(&heads)
    }

    /// Like [`Record::changes_since`], one entry per change (what the sync protocol
    /// carries), in causal order.
    pub fn change_list_since(&mut self, heads: &[[u8; 32]]) -> Vec<Vec<u8>> {
        let heads: Vec<_> = heads.iter().map(|h| automerge::ChangeHash(*h)).collect();
        self.doc
            .get_changes(&heads)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    }

    /// The current heads (hashes of the latest changes), sorted: equal heads mean equal
    /// documents.
    /// How many operations the document holds: what a change can delete at most. (The
    /// server bounds a pushed change's declared deletions by it: a few bytes can
    /// declare a million deletions, each built in memory.)
    pub fn op_count(&self) -> u64 {
        use automerge::ReadDoc;
        self.doc.stats().num_ops
    }

    pub fn heads(&mut self) -> Vec<[u8; 32]> {
        let mut heads: Vec<[u8; 32]> = self.doc.get_heads().into_iter().map(|h| h.0).collect();
        heads.sort();
        heads
    }

    /// Whether every change this record holds has its dependencies here too (a record
    /// loaded from changes whose history is elsewhere has not).
    pub fn is_complete_history(&mut self) -> bool {
        self.doc.get_missing_deps(&[]).is_empty()
    }

    /// Whether the history holds the change with this hash.
    pub fn has_change(&mut self, hash: &[u8; 32]) -> bool {
        self.doc
            .get_change_by_hash(&automerge::ChangeHash(*hash))
            .is_some()
    }

    /// The changes this record holds, each as canonical chunk bytes, in causal order.
    pub fn all_changes(&mut self) -> Vec<Vec<u8>> {
        self.doc
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    }

    /// How many changes the history holds.
    pub fn change_count(&mut self) -> usize {
        self.doc.get_changes(&[]).len()
    }

    /// Makes changes in one commit. On `Err`, everything `f` did is rolled back.
    pub fn edit<T>(
        &mut self,
        at: DateTime<Utc>,
        f: impl FnOnce(&mut Edit<'_>) -> Result<T, RecordError>,
    ) -> Result<T, RecordError> {
        let mut edit = Edit {
            doc: &mut self.doc,
            form: &self.form,
            fields: &self.fields,
            at,
        };
        match f(&mut edit) {
            Ok(t) => {
                self.doc
                    .commit_with(commit_options(at, self.author.as_deref()));
                Ok(t)
            }
            Err(e) => {
                self.doc.rollback();
                Err(e)
            }
        }
    }

    pub fn id(&self) -> RecordId {
        self.id
    }

    /// The form version this record was started with.
    pub fn form(&self) -> &Arc<Form> {
        &self.form
    }
}

/// Applies changes from elsewhere under `catch_unwind` (Automerge panics on some hostile
/// input), refusing changes whose dependencies are missing: Automerge would queue them
/// invisibly, and a record must always be exactly what its heads say.
fn apply_strictly(
    doc: &mut AutoCommit,
    changes: Vec<automerge::Change>,
) -> Result<(), RecordError> {
    catch_unwind(AssertUnwindSafe(|| doc.apply_changes(changes)))
        .map_err(|_| RecordError::Malformed("changes could not be applied".into()))?
        .map_err(|e| RecordError::Malformed(e.to_string()))?;
    if !doc.get_missing_deps(&[]).is_empty() {
        return Err(RecordError::MissingDependencies);
    }
    Ok(())
}

fn commit_options(
    at: DateTime<Utc>,
    author: Option<&str>,
) -> automerge::transaction::CommitOptions {
    let options = automerge::transaction::CommitOptions::default().with_time(at.timestamp_millis());
    match author {
        Some(a) => options.with_message(a),
        None => options,
    }
}
