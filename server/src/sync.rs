//! The sync engine: takes a decoded [`SyncRequest`] from an authenticated device,
//! checks and stores what it pushes, and answers with one page of what it lacks.
//!
//! Every pushed change is decoded strictly and inspected (actor, author, operations,
//! top-level writes) before the policy module judges it; merging happens on a copy of
//! the stored document, outside the storage lock, and what a change does to the
//! document (appends, status moves, the assignee) is judged on that copy. The whole
//! push is then written in one durable transaction, which refuses to overwrite a
//! record that changed meanwhile (the push is prepared again). Replaying a request
//! stores nothing new: changes are identified by hash.

use std::collections::HashSet;

use intake_shared::protocol::{
    ItemKind, Outcome, Piece, PushResult, RecordChanges, RecordDoc, Rejection, SyncRequest,
    SyncResponse, UploadAck, pieces,
};
use intake_shared::record::{AppendOnly, ChangeInfo, Creation, Incoming, decode_incoming};
use intake_shared::{FormRegistry, Record, RecordError, RecordId, Value};

use crate::config::Limits;
use crate::policy::{self, Principal};
use crate::storage::{
    Audit, PullRequest, RecordMeta, RecordSummary, RecordWrite, Storage, StorageError,
};

/// A request that breaks a limit or cannot be used at all; nothing is stored.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// How often a push is prepared again when records changed under it.
const STALE_RETRIES: usize = 8;

/// Handles one sync request.
pub fn handle(
    storage: &dyn Storage,
    p: &Principal,
    mut req: SyncRequest,
    limits: &Limits,
) -> Result<SyncResponse, SyncError> {
    let changes: usize = req.push.iter().map(|r| r.changes.len()).sum();
    if changes > limits.max_changes_per_request {
        return Err(SyncError::TooLarge(format!(
            "{changes} changes in one request; at most {} are accepted",
            limits.max_changes_per_request
        )));
    }
    if req.push.len() + req.want_docs.len() > limits.max_records_per_request {
        return Err(SyncError::TooLarge(format!(
            "too many records in one request; at most {}",
            limits.max_records_per_request
        )));
    }
    let mut seen = HashSet::new();
    if req.push.iter().any(|r| !seen.insert(r.record)) {
        return Err(SyncError::Malformed(
            "a record appears twice in one push".into(),
        ));
    }

    // A piece of an upload is kept first; once the upload is whole, its record is
    // judged with the rest of the push (and its outcome answered with the piece).
    let mut upload = None;
    let mut upload_judged = false;
    if let Some(piece) = req.upload.take() {
        let (ack, whole) = receive_piece(storage, p, &piece, limits)?;
        if let Some(changes) = whole {
            if !seen.insert(changes.record) {
                return Err(SyncError::Malformed(
                    "the upload's record is also in the push".into(),
                ));
            }
            req.push.push(changes);
            upload_judged = true;
        }
        upload = Some(ack);
    }

    // The device has committed every page up to its cursor: the removals those pages
    // announced are known to it, and its grace to deliver them ends. (A device holds
    // back the cursor of a page that removed records it still has edits of, until it
    // has pushed them.)
    storage.close_late_grants(p.device.id, req.cursor)?;
    let mut results = store_push(storage, p, &req.push, limits, None)?;
    if upload_judged && let Some(ack) = upload.as_mut() {
        ack.outcome = results.pop().map(|r| r.outcome);
    }

    let mut response = SyncResponse {
        version: req.version,
        results,
        cursor: req.cursor,
        upload,
        // Version 8: dependencies as prefixes unless the device asked them in full.
        in_full: req.full_deps,
        ..SyncResponse::default()
    };
    if req.version >= 3 && req.page_bytes == 0 {
        // A push that asked for no page: its answer stays small.
        return Ok(response);
    }
    // Version 3 pages are honoured down to 1 KiB (and sent in pieces below that item
    // size); older apps' pages at least 1 KiB. At most the limit; a limit set below
    // 1 KiB wins (`clamp` would panic).
    let budget = (req.page_bytes as usize)
        .max(1024)
        .min(limits.max_page_bytes);
    let want: Vec<RecordId> = req.want_docs.iter().map(RecordId::from_wire).collect();
    let scope = policy::scope(p);
    let page = storage.pull(&PullRequest {
        scope: &scope,
        user: &p.user.name,
        device: p.device.id,
        cursor: req.cursor,
        budget,
        want_docs: &want,
    })?;
    response.unavailable = page.unavailable.iter().map(RecordId::wire).collect();
    response.cursor = page.cursor;
    response.more = page.more;
    response.removed = page.removed.iter().map(RecordId::wire).collect();
    response.erased = page.erased.iter().map(RecordId::wire).collect();
    let oversized = match (page.docs.as_slice(), page.changes.as_slice()) {
        ([(id, doc)], []) if doc.len() + PAGE_ITEM_COST > budget => {
            Some((*id, ItemKind::Doc, doc.as_slice()))
        }
        ([], [entry]) if entry.bytes.len() + PAGE_ITEM_COST > budget => {
            Some((entry.record, ItemKind::Change, entry.bytes.as_slice()))
        }
        _ => None,
    };
    match oversized {
        Some((id, kind, item)) if req.version >= 3 => {
            // Larger than the page: a piece of it, from where the device's copy ends.
            // The cursor moves past the item only with its last piece.
            let digest = pieces::digest(item);
            let from = match req.resume {
                Some(r) if r.digest == digest => r.have as usize,
                _ => 0,
            };
            let piece = Piece::of(id.wire(), kind, digest, item, from, budget - ITEM_OVERHEAD);
            if !piece.is_last() {
                response.cursor = req.cursor;
                response.more = true;
                response.removed.clear();
                response.erased.clear();
            }
            response.piece = Some(piece);
        }
        _ => {
            response.docs = page
                .docs
                .into_iter()
                .map(|(id, doc)| RecordDoc {
                    record: id.wire(),
                    doc,
                })
                .collect();
            // Seconds on the wire: receipts are shown to the minute.
            let seconds = |ms: Option<i64>| ms.map(|ms| ms.div_euclid(1000));
            response.received = page
                .changes
                .iter()
                .map(|e| seconds(e.received_at))
                .collect();
            response.doc_received = page
                .doc_receipts
                .iter()
                .map(|d| d.iter().map(|at| seconds(*at)).collect())
                .collect();
            response.changes = group(page.changes);
        }
    }
    if !response.removed.is_empty() {
        let removed: Vec<RecordId> = response.removed.iter().map(RecordId::from_wire).collect();
        storage.announce_removals(p.device.id, &removed, response.cursor)?;
    }
    Ok(response)
}

/// What storage counts for an item of a page beyond its bytes: an item that fits the
/// page so goes whole.
const PAGE_ITEM_COST: usize = 20;
/// A piece's bytes are the page less this (its record, digest and lengths, with room
/// to spare).
const ITEM_OVERHEAD: usize = 128;

/// Consecutive changes of one record in one entry, in log order.
fn group(entries: Vec<crate::storage::LogEntry>) -> Vec<RecordChanges> {
    let mut changes: Vec<RecordChanges> = Vec::new();
    for entry in entries {
        let w = entry.record.wire();
        match changes.last_mut() {
            Some(last) if last.record == w => last.changes.push(entry.bytes),
            _ => changes.push(RecordChanges {
                record: w,
                changes: vec![entry.bytes],
            }),
        }
    }
    changes
}

/// Keeps one piece of an upload. When the upload is whole and its bytes match their
/// digest, returns its record's changes, to be judged with the push.
fn receive_piece(
    storage: &dyn Storage,
    p: &Principal,
    piece: &Piece,
    limits: &Limits,
) -> Result<(UploadAck, Option<RecordChanges>), SyncError> {
    if piece.kind != ItemKind::Push {
        return Err(SyncError::Malformed("an upload carries a push".into()));
    }
    if u64::from(piece.offset) + piece.bytes.len() as u64 > u64::from(piece.total) {
        return Err(SyncError::Malformed("a piece ends past its upload".into()));
    }
    if piece.total as usize > limits.max_decompressed_bytes {
        // That record alone is refused (a 413 would hold back every record queued
        // behind it on the device); nothing of it is kept.
        return Ok((
            UploadAck {
                digest: piece.digest,
                have: 0,
                outcome: Some(Outcome::Rejected {
                    reason: Rejection::TooLarge,
                    message: format!(
                        "the record's changes are {} bytes; at most {} are accepted",
                        piece.total, limits.max_decompressed_bytes
                    ),
                }),
            },
            None,
        ));
    }
    let have = storage.put_piece(p.device.id, piece)?;
    let mut ack = UploadAck {
        digest: piece.digest,
        have,
        outcome: None,
    };
    if have != piece.total {
        return Ok((ack, None));
    }
    let Some(bytes) = storage.upload(p.device.id, &piece.digest)? else {
        return Ok((ack, None));
    };
    let refuse = |ack: &mut UploadAck, why: String| {
        ack.outcome = Some(Outcome::Rejected {
            reason: Rejection::Malformed,
            message: why,
        });
    };
    if pieces::digest(&bytes) != piece.digest {
        // Pieces that do not add up: forget them, so the device starts over.
        storage.drop_upload(p.device.id)?;
        ack.have = 0;
        refuse(&mut ack, "the upload does not match its digest".into());
        return Ok((ack, None));
    }
    match pieces::decode_upload(&bytes) {
        Ok(changes) if changes.record == piece.record => Ok((ack, Some(changes))),
        Ok(_) => {
            refuse(&mut ack, "the upload is of another record".into());
            Ok((ack, None))
        }
        Err(e) => {
            refuse(&mut ack, e.to_string());
            Ok((ack, None))
        }
    }
}

/// Judges, merges and durably stores a push; one result per pushed record, in order.
/// `audit` (a dashboard action's) is stored in the same transaction when every record
/// of the push is stored, and not at all when one is refused.
fn store_push(
    storage: &dyn Storage,
    p: &Principal,
    push: &[RecordChanges],
    limits: &Limits,
    audit: Option<&Audit>,
) -> Result<Vec<PushResult>, SyncError> {
    // Decode and inspect every change before touching storage. Records are decoded,
    // judged and merged independently of each other: the work is spread over the
    // cores (W1's 5,000 new records are CPU-bound here).
    let inspected: Vec<Inspected> = par_map(push, |r| inspect(storage, r, limits));

    let mut results = Vec::new();
    for attempt in 0.. {
        let mut writes = Vec::new();
        results.clear();
        let jobs: Vec<(&RecordChanges, &Inspected)> = push.iter().zip(&inspected).collect();
        let prepared = par_map(&jobs, |(push, changes)| match changes {
            Err((reason, message)) => Ok(Err((*reason, message.clone()))),
            Ok(changes) => prepare(
                storage,
                p,
                RecordId::from_wire(&push.record),
                changes,
                limits,
            ),
        });
        for (push, outcome) in push.iter().zip(prepared) {
            results.push(PushResult {
                record: push.record,
                outcome: match outcome? {
                    Ok(Some(write)) => {
                        writes.push(write);
                        Outcome::Stored
                    }
                    Ok(None) => Outcome::Stored,
                    Err((reason, message)) => Outcome::Rejected { reason, message },
                },
            });
        }
        let audit = audit.filter(|_| results.iter().all(|r| matches!(r.outcome, Outcome::Stored)));
        match storage.write_audited(&writes, p.device.id, audit) {
            Ok(_) => break,
            Err(StorageError::Stale) if attempt < STALE_RETRIES => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(results)
}

/// A record's pushed changes, decoded, or why they cannot be.
type Inspected = Result<Vec<Incoming>, (Rejection, String)>;

/// Decodes a record's pushed changes, one change chunk each, within the limits.
fn inspect(storage: &dyn Storage, push: &RecordChanges, limits: &Limits) -> Inspected {
    let mut out = Vec::with_capacity(push.changes.len());
    // Deletions are the one operation an honest change holds many of in few bytes (a
    // cleared narrative), so the per-byte bound leaves them out; but each is built in
    // memory (~390 bytes) when the change is decoded, and a million of them fit in
    // 100 bytes. Beyond what the pushed bytes could have inserted, a change can only
    // delete what the record already holds.
    let (mut deletes, mut size) = (0u64, 0usize);
    for bytes in &push.changes {
        if let Some(d) = refuse_declared(bytes, limits)? {
            deletes += d.deletes;
        }
        size += bytes.len();
    }
    if deletes > (size + CHEAP_OPS_SLACK) as u64 {
        let held = held_ops(storage, RecordId::from_wire(&push.record));
        if deletes > held.saturating_add((size + CHEAP_OPS_SLACK) as u64) {
            return Err((
                Rejection::TooLarge,
                // The count the record holds is not said: it may be someone else's.
                format!("the changes declare {deletes} deletions, more than the record holds"),
            ));
        }
    }
    for bytes in &push.changes {
        let mut decoded =
            decode_incoming(bytes).map_err(|e| (Rejection::Malformed, e.to_string()))?;
        if decoded.len() != 1 {
            return Err((
                Rejection::Malformed,
                "each entry must hold exactly one change".into(),
            ));
        }
        let change = decoded.remove(0);
        if change.info.ops > limits.max_ops_per_change {
            return Err((
                Rejection::TooLarge,
                format!(
                    "a change has {} operations; at most {} are accepted",
                    change.info.ops, limits.max_ops_per_change
                ),
            ));
        }
        out.push(change);
    }
    Ok(out)
}

/// How many operations other than deletions a change may declare beyond its size in
/// bytes (see [`refuse_declared`]).
const CHEAP_OPS_SLACK: usize = 64 << 10;

/// Refuses a change by what its bytes declare, before Automerge walks or builds a
/// single operation of it (see `intake_shared::record::declared`): a few bytes of
/// run-length encoding can declare a billion operations, thousands of nested maps or
/// megabytes of repeated keys. A chunk this cannot read is left to the strict decoding
/// that follows, which refuses it with Automerge's own reason.
fn refuse_declared(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Option<intake_shared::record::Declared>, (Rejection, String)> {
    let Ok(d) = intake_shared::record::declared(bytes) else {
        return Ok(None);
    };
    let too_large = |what: String| Err((Rejection::TooLarge, what));
    if d.compressed {
        return Err((
            Rejection::Malformed,
            "a change has a compressed (DEFLATE) column; send uncompressed changes".into(),
        ));
    }
    if d.ops > limits.max_ops_per_change as u64 {
        return too_large(format!(
            "a change declares {} operations; at most {} are accepted",
            d.ops, limits.max_ops_per_change
        ));
    }
    // Every operation but a deletion costs an honest change at least a byte (the
    // character it inserts, the key or value it writes); a change declaring far more
    // than its size is run-length encoding repeating one operation, which the server
    // would build in memory a million times over (~750 bytes each).
    let not_deletes = d.ops.saturating_sub(d.deletes);
    if not_deletes > (bytes.len() + CHEAP_OPS_SLACK) as u64 {
        return too_large(format!(
            "a change declares {} operations other than deletions in {} bytes",
            not_deletes,
            bytes.len()
        ));
    }
    if d.actors > limits.max_actors_per_change {
        return too_large(format!(
            "a change names {} actors; at most {} are accepted",
            d.actors, limits.max_actors_per_change
        ));
    }
    if d.objects > limits.max_objects_per_change as u64 {
        return too_large(format!(
            "a change makes {} objects; at most {} are accepted",
            d.objects, limits.max_objects_per_change
        ));
    }
    if d.inflated_bytes > limits.max_inflated_bytes_per_change as u64 {
        return too_large(format!(
            "a change's repeated values inflate by {} bytes; at most {} are accepted",
            d.inflated_bytes, limits.max_inflated_bytes_per_change
        ));
    }
    Ok(Some(d))
}

/// How many operations the stored record `id` holds (0 for a new record, or a stored
/// one that cannot be read). Loads the record: asked only of a push declaring more
/// deletions than its bytes could have inserted, which an honest device sends when it
/// clears a long narrative. A storage failure refuses nothing here: the push meets it
/// again, and reports it, when it is prepared.
fn held_ops(storage: &dyn Storage, id: RecordId) -> u64 {
    match storage.record(id) {
        Ok(Some(s)) => Record::load(&s.doc, FormRegistry::builtin()).map_or(0, |r| r.op_count()),
        Ok(None) => 0,
        Err(_) => u64::MAX,
    }
}

/// The least work worth a thread of its own (records of one push).
const RECORDS_PER_THREAD: usize = 16;

/// A push's records mapped on every core when there are enough of them.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    intake_par::par_map(items, RECORDS_PER_THREAD, f)
}

type Prepared = Result<Option<RecordWrite>, (Rejection, String)>;

/// Judges and merges one record's changes against what is stored. `Ok(None)`: the
/// server already has every change.
fn prepare(
    storage: &dyn Storage,
    p: &Principal,
    id: RecordId,
    changes: &[Incoming],
    limits: &Limits,
) -> Result<Prepared, SyncError> {
    let forbidden = || {
        Ok(Err((
            Rejection::Forbidden,
            "this record is not one you may write".to_string(),
        )))
    };
    if storage.erased(id)? {
        // Erased for good: whatever the device holds of it is not taken, now or later,
        // so the record is never made again. The device drops it.
        return Ok(Err((
            Rejection::Erased,
            "this record was erased by your organisation".to_string(),
        )));
    }
    let stored = storage.record(id)?;
    let id_text = id.to_string();
    let (mut record, meta, expected, previous_assignee) = match &stored {
        Some(s) => {
            let record = match Record::load(&s.doc, FormRegistry::builtin()) {
                Ok(r) => r,
                Err(e) => {
                    // Refused alone: the rest of the request is judged as usual.
                    tracing::error!(record = %id, error = %e, "a stored record cannot be read");
                    return Ok(Err((
                        Rejection::Malformed,
                        "the server cannot read its copy of this record; an admin must look at it"
                            .into(),
                    )));
                }
            };
            (
                Some(record),
                s.meta.clone(),
                Some(s.heads.clone()),
                s.meta.assigned_to.clone(),
            )
        }
        None => {
            if !policy::may_write(p, None) {
                return forbidden();
            }
            let meta = RecordMeta {
                id,
                owner: p.user.name.clone(),
                team: p.user.team.clone(),
                assigned_to: None,
            };
            (None, meta, None, None)
        }
    };
    // The status the server holds before this push: a paralegal may not move a case
    // away from a decision, even by a change made before she knew of it.
    let stored_status = record
        .as_ref()
        .map(|r| r.review_values("status"))
        .unwrap_or_default();
    let new: Vec<&Incoming> = match record.as_mut() {
        Some(r) => changes
            .iter()
            .filter(|c| !r.has_change(&c.info.hash))
            .collect(),
        None => changes.iter().collect(),
    };
    if new.is_empty() {
        // A replay of what is stored is answered `Stored`, whatever the caller's access
        // now: the device that lost its answer must not keep changes the server has.
        return Ok(Ok(None));
    }
    if let Some(s) = &stored
        && !policy::may_write(p, Some(&s.meta))
        && !storage.late_grant(p.device.id, id)?
    {
        // Someone reassigned away from a record may still deliver the edits they made
        // offline before they knew: the server's grant says until when.
        return forbidden();
    }
    // A new record made by one creating change of the plain shape an app writes is
    // read off its operations, without building its document (`Creation`).
    if record.is_none()
        && let [only] = new.as_slice()
        && let Some(created) = only.creation(FormRegistry::builtin())
    {
        return prepare_created(storage, p, id, meta, only, &created, limits);
    }
    // A new record made by one creating change is built first and the change's root
    // writes read off it, instead of decoding its every operation as well (about a
    // third of the server's work on a new record). Other changes put off that way are
    // decoded now.
    let (built, new_infos) = match (&record, new.as_slice()) {
        (None, [only]) if only.root_writes_pending() => {
            match Record::creation(only, FormRegistry::builtin()) {
                Ok((built, info)) => (Some(built), vec![info]),
                Err(e) => return Ok(Err(refusal(e))),
            }
        }
        _ => match new.iter().map(|c| c.described()).collect() {
            Ok(infos) => (None, infos),
            Err(e) => return Ok(Err(refusal(e))),
        },
    };
    let new_infos: Vec<&ChangeInfo> = new_infos.iter().collect();
    for c in &new_infos {
        let creates = record.is_none() && c.deps.is_empty();
        if let Err(refusal) = policy::check_change(p, c, &id_text, creates) {
            return Ok(Err(refusal));
        }
    }
    if record.is_none() {
        // A new record's history must all be here: what it depends on is nowhere else.
        let here: HashSet<[u8; 32]> = new_infos.iter().map(|c| c.hash).collect();
        if new_infos
            .iter()
            .any(|c| c.deps.iter().any(|d| !here.contains(d)))
        {
            return Ok(Err(refusal(RecordError::MissingDependencies)));
        }
    }
    // A record built from its one creating change holds nothing another change made:
    // its appends need no look (decoding its operations is what the fast way saves).
    let built_alone = built.is_some();
    let merged = match (built, record) {
        (Some(built), _) => Ok(built),
        (None, Some(r)) => r.with_incoming(&new),
        (None, None) => Record::from_incoming(&new, FormRegistry::builtin()),
    };
    let mut record = match merged {
        Ok(r) => r,
        Err(e) => return Ok(Err(refusal(e))),
    };
    if record.id() != id {
        return Ok(Err((
            Rejection::Malformed,
            "the document's id is not the record's id".into(),
        )));
    }
    for (change, info) in new.iter().zip(&new_infos) {
        let team = meta.team.as_deref();
        if let Err(refusal) = judge_in_document(
            storage,
            p,
            &record,
            change,
            info,
            &stored_status,
            team,
            built_alone,
        )? {
            return Ok(Err(refusal));
        }
    }
    // A record new with one change is stored as that change: Automerge loads change
    // chunks as a document, and a fresh device is sent the change, which packs and
    // compresses well beside other records' changes (a saved document does not
    // transpose). Its next write stores a document.
    let (doc, merged) = match (&expected, new.as_slice()) {
        (None, [only]) => (only.info.bytes.clone(), false),
        _ => (record.save_plain(), true),
    };
    // A merged document must load again before it replaces the stored one. Found by
    // fuzzing (`fuzz/`, target `ingest`): some hostile changes leave Automerge 0.12's
    // operations out of order after a merge (a `debug_assert` in Automerge, so only
    // release builds get this far), and the saved document then fails to load
    // ("mismatching heads"): stored, it would make the record unreadable for everyone.
    // (A record stored as its one creating change is loaded from that change.)
    if merged && Record::load(&doc, FormRegistry::builtin()).is_err() {
        return Ok(Err((
            Rejection::Malformed,
            "these changes make a document that cannot be read back".into(),
        )));
    }
    if let Some(refusal) = too_large(&doc, limits) {
        return Ok(Err(refusal));
    }
    // Store new changes in causal order, so every device can apply them in log order.
    let ordered = causal_order(&new_infos);
    let assigned_to = record.assigned_to();
    let revoked_from = match &previous_assignee {
        Some(old) if assigned_to.as_deref() != Some(old.as_str()) && *old != meta.owner => {
            vec![old.clone()]
        }
        _ => Vec::new(),
    };
    Ok(Ok(Some(RecordWrite {
        meta: RecordMeta {
            assigned_to,
            ..meta
        },
        status: record.status().as_str().to_string(),
        heads: record.heads().concat(),
        doc,
        expected_heads: expected,
        new_changes: ordered,
        revoked_from,
        summary: {
            let summary = crate::index::summarize(&record);
            if stored.is_none() {
                first_summary(summary, p)
            } else {
                summary
            }
        },
    })))
}

/// A new record's summary, its creation time counted (date filters, donor counts by
/// month) from the device's time unless its clock was clearly wrong. Kept from then on:
/// storage never replaces a record's indexed creation time.
fn first_summary(mut summary: RecordSummary, p: &Principal) -> RecordSummary {
    summary.created_at = Some(intake_shared::skew::creation_time(
        summary.created_at,
        chrono::Utc::now(),
        p.device.enrolled_at,
    ));
    summary
}

/// [`prepare`] for a new record read off its one creating change: the same judgement
/// on the same facts, without the document.
fn prepare_created(
    storage: &dyn Storage,
    p: &Principal,
    id: RecordId,
    meta: RecordMeta,
    change: &Incoming,
    created: &Creation,
    limits: &Limits,
) -> Result<Prepared, SyncError> {
    let info = created.info();
    if let Err(refusal) = policy::check_change(p, info, &id.to_string(), true) {
        return Ok(Err(refusal));
    }
    if created.id() != id {
        return Ok(Err((
            Rejection::Malformed,
            "the document's id is not the record's id".into(),
        )));
    }
    let writes = |key: &str| info.root_writes.iter().any(|w| w.key == key);
    if writes("status") {
        // Nothing was seen before a record's first change, and nothing was stored.
        let left = created.review_values("status");
        if let Err(refusal) = policy::check_status(p, &[], &left, &[]) {
            return Ok(Err(refusal));
        }
    }
    if writes("assigned_to")
        && let Err(refusal) = check_assignees(
            storage,
            created.review_values("assigned_to"),
            meta.team.as_deref(),
        )?
    {
        return Ok(Err(refusal));
    }
    let doc = change.info.bytes.clone();
    if let Some(refusal) = too_large(&doc, limits) {
        return Ok(Err(refusal));
    }
    Ok(Ok(Some(RecordWrite {
        meta: RecordMeta {
            assigned_to: created.assigned_to(),
            ..meta
        },
        status: created.status().as_str().to_string(),
        heads: info.hash.to_vec(),
        doc: doc.clone(),
        expected_heads: None,
        new_changes: vec![(info.hash, doc)],
        revoked_from: Vec::new(),
        summary: first_summary(crate::index::summarize_creation(created), p),
    })))
}

/// Judges what a change does to the document it was made on, on the merged copy that
/// holds it and everything it depends on: comments and actions only grow, the status
/// moves as the writer's role allows from what the writer saw, an assignee is an
/// enabled user of the record's `team`. (`check_change` has judged the change's own
/// facts before the merge.)
#[allow(clippy::too_many_arguments)] // One call site; a struct would only rename them.
fn judge_in_document(
    storage: &dyn Storage,
    p: &Principal,
    record: &Record,
    change: &Incoming,
    info: &ChangeInfo,
    stored_status: &[Value],
    team: Option<&str>,
    built_alone: bool,
) -> Result<Result<(), (Rejection, String)>, SyncError> {
    if !built_alone && let Err(e) = record.check_appends(change) {
        let reason = match e {
            AppendOnly::Unreadable => Rejection::Malformed,
            _ => Rejection::ProtectedField,
        };
        return Ok(Err((reason, e.to_string())));
    }
    let writes = |key: &str| info.root_writes.iter().any(|w| w.key == key);
    if writes("status") {
        // What the writer saw is the document at the change's dependencies; what it
        // left, the document at the change itself (a resolution to the winning value
        // is written as a deletion of the others).
        let seen = record.review_values_at("status", &info.deps);
        let left = record.review_values_at("status", &[info.hash]);
        if let Err(refusal) = policy::check_status(p, &seen, &left, stored_status) {
            return Ok(Err(refusal));
        }
    }
    if writes("assigned_to") {
        let names = record.review_values_at("assigned_to", &[info.hash]);
        return check_assignees(storage, names, team);
    }
    Ok(Ok(()))
}

/// Refuses a document larger than the limit.
fn too_large(doc: &[u8], limits: &Limits) -> Option<(Rejection, String)> {
    (doc.len() > limits.max_document_bytes).then(|| {
        (
            Rejection::TooLarge,
            format!(
                "the record would grow to {} bytes; at most {} are accepted",
                doc.len(),
                limits.max_document_bytes
            ),
        )
    })
}

/// Every assignee a change leaves must be an enabled user of the record's `team`.
fn check_assignees(
    storage: &dyn Storage,
    names: Vec<Value>,
    team: Option<&str>,
) -> Result<Result<(), (Rejection, String)>, SyncError> {
    for name in names {
        let Value::Text(name) = name else { continue };
        if name.is_empty() {
            continue; // Unassigned.
        }
        let user = storage.user(&name)?;
        if let Err(refusal) = policy::check_assignee(user.as_ref(), team) {
            return Ok(Err(refusal));
        }
    }
    Ok(Ok(()))
}

/// Why changes that cannot make a record are refused.
fn refusal(e: RecordError) -> (Rejection, String) {
    match e {
        RecordError::MissingDependencies => (
            Rejection::MissingDependencies,
            "changes depend on changes the server does not have: push those too".into(),
        ),
        e => (Rejection::Malformed, e.to_string()),
    }
}

/// Orders changes so each comes after those of its dependencies that are in the set
/// (devices may push in any order).
fn causal_order(changes: &[&ChangeInfo]) -> Vec<([u8; 32], Vec<u8>)> {
    let in_set: HashSet<[u8; 32]> = changes.iter().map(|c| c.hash).collect();
    let mut placed: HashSet<[u8; 32]> = HashSet::new();
    let mut out = Vec::with_capacity(changes.len());
    let mut pending: Vec<&ChangeInfo> = changes.to_vec();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|c| {
            if c.deps
                .iter()
                .all(|d| !in_set.contains(d) || placed.contains(d))
            {
                placed.insert(c.hash);
                out.push((c.hash, c.bytes.clone()));
                false
            } else {
                true
            }
        });
        if pending.len() == before {
            // Hashes make cycles impossible; keep whatever is left as it came.
            out.extend(pending.drain(..).map(|c| (c.hash, c.bytes.clone())));
        }
    }
    out
}

/// Judges and stores changes made on the server on a user's behalf (the dashboard's
/// actions) exactly as if `p`'s device had pushed them: the same policy, the same log,
/// so they reach the field on the next sync like any other change. The action's
/// `audit` is stored with the changes, in one transaction, when they are stored.
pub fn store_changes(
    storage: &dyn Storage,
    p: &Principal,
    record: RecordId,
    changes: Vec<Vec<u8>>,
    limits: &Limits,
    audit: Option<&Audit>,
) -> Result<Outcome, SyncError> {
    let push = [RecordChanges {
        record: record.wire(),
        changes,
    }];
    let mut results = store_push(storage, p, &push, limits, audit)?;
    Ok(results.pop().map(|r| r.outcome).unwrap_or(Outcome::Stored))
}
