//! Crafting records and sync messages by hand, for tests that speak the protocol
//! directly: the identity a device's edits carry, numbered records, a record's changes
//! as a push (made with the record API, or with Automerge directly for what an honest
//! app never sends), a request, one push and one fetch over the real server.

use automerge::{ActorId, AutoCommit};
use chrono::Utc;
use intake_shared::protocol::{Outcome, PROTOCOL_VERSION, RecordChanges, SyncRequest};
use intake_shared::record::{Identity, inspect_changes};
use intake_shared::{Edit, FormRegistry, Record, RecordError, RecordId, Value};
use rand::Rng;

use crate::{Enrolled, TestServer};

/// A cursor past the end of the log: a pull at it returns only what is asked by id.
pub const PAST_THE_END: u64 = 1 << 40;

/// A text value.
pub fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// `n` random lowercase letters: text that compresses about as badly as real text can.
pub fn random_text(rng: &mut impl Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// The `n`th test record id (distinct for every `n`, time-ordered like real ids).
pub fn record_id(n: u64) -> RecordId {
    RecordId::new_v7(1_790_000_000_000 + n, [(n % 251) as u8; 10])
}

/// A complete new record `n` (full name and consent answered) as `who` creates it: the
/// creating change, then one with the answers.
pub fn new_record(who: &Identity, n: u64) -> Record {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let mut r = Record::create(record_id(n), form, who, Utc::now());
    r.edit(Utc::now(), |e| {
        e.set("full_name", text(format!("Person {n}")))?;
        e.set("consent_intake", Value::Bool(true))
    })
    .unwrap();
    r
}

/// The identity of one session on an enrolled device: its bound 16-byte actor prefix
/// plus `session`, with `name` as the author.
pub fn identity(dev: &Enrolled, name: &str, session: u32) -> Identity {
    let mut actor = dev.actor.to_vec();
    actor.extend(session.to_be_bytes());
    Identity {
        actor,
        author: Some(name.into()),
    }
}

/// A record id on the wire.
pub fn wire(id: RecordId) -> [u8; 16] {
    *id.as_uuid().as_bytes()
}

/// The changes `r` has after `since`, one change chunk per entry, as a push.
pub fn push_of(r: &mut Record, since: &[[u8; 32]]) -> RecordChanges {
    let changes = inspect_changes(&r.changes_since(since))
        .expect("our own changes decode")
        .into_iter()
        .map(|c| c.bytes)
        .collect();
    RecordChanges {
        record: wire(r.id()),
        changes,
    }
}

/// A request of the app's protocol version with a 1 MiB page, its answer's changes
/// with every dependency in full (version 8): tests that read a page as it comes
/// hold none of the changes a prefix would name.
pub fn request(cursor: u64, push: Vec<RecordChanges>, want_docs: Vec<[u8; 16]>) -> SyncRequest {
    SyncRequest {
        version: PROTOCOL_VERSION,
        cursor,
        page_bytes: 1 << 20,
        push,
        want_docs,
        full_deps: true,
        ..SyncRequest::default()
    }
}

/// The changes one edit of (a copy of) `r` by `who` makes, with the record API.
pub fn edit_of(
    r: &Record,
    who: &Identity,
    edit: impl FnOnce(&mut Edit<'_>) -> Result<(), RecordError>,
) -> RecordChanges {
    let mut copy = r.clone();
    copy.set_identity(who);
    let before = copy.heads();
    copy.edit(Utc::now(), edit).unwrap();
    push_of(&mut copy, &before)
}

/// A change made with Automerge directly on a copy of `r` (what a tampered app could
/// send): `f` edits the document as `who`, with `who`'s author name as the message.
pub fn raw_change(
    r: &Record,
    who: &Identity,
    f: impl FnOnce(&mut AutoCommit) -> Result<(), automerge::AutomergeError>,
) -> RecordChanges {
    let mut copy = r.clone();
    let mut doc = AutoCommit::load(&copy.save())
        .unwrap()
        .with_actor(ActorId::from(who.actor.as_slice()));
    let heads = doc.get_heads();
    f(&mut doc).unwrap();
    let mut options =
        automerge::transaction::CommitOptions::default().with_time(Utc::now().timestamp_millis());
    if let Some(author) = &who.author {
        options = options.with_message(author.clone());
    }
    doc.commit_with(options);
    let changes: Vec<Vec<u8>> = inspect_changes(&doc.save_after(&heads))
        .unwrap()
        .into_iter()
        .map(|c| c.bytes)
        .collect();
    assert_eq!(changes.len(), 1, "the edit makes one change");
    RecordChanges {
        record: wire(r.id()),
        changes,
    }
}

/// Pushes one record's changes as `token`'s device and returns its outcome (the reply
/// must be a 200).
pub fn push(server: &TestServer, token: &str, changes: RecordChanges) -> Outcome {
    let reply = server.sync(Some(token), &request(PAST_THE_END, vec![changes], vec![]));
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.response.unwrap().results.remove(0).outcome
}

/// The record as the server holds it, fetched whole by `token`'s device.
pub fn load(server: &TestServer, token: &str, id: RecordId) -> Record {
    let resp = server
        .sync(Some(token), &request(PAST_THE_END, vec![], vec![wire(id)]))
        .response
        .unwrap();
    Record::load(&resp.docs[0].doc, FormRegistry::builtin()).unwrap()
}
