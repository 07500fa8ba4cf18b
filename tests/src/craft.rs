//! Crafting sync messages by hand, for tests that speak the protocol directly: the
//! identity a device's edits carry, a record's changes as a push, a request.

use intake_shared::Record;
use intake_shared::RecordId;
use intake_shared::protocol::{PROTOCOL_VERSION, RecordChanges, SyncRequest};
use intake_shared::record::{Identity, inspect_changes};

use crate::Enrolled;

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

/// A protocol-v1 request with a 1 MiB page.
pub fn request(cursor: u64, push: Vec<RecordChanges>, want_docs: Vec<[u8; 16]>) -> SyncRequest {
    SyncRequest {
        version: PROTOCOL_VERSION,
        cursor,
        page_bytes: 1 << 20,
        push,
        want_docs,
        ..SyncRequest::default()
    }
}
