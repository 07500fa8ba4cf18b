//! Syncing a device with the server: push the changes the server lacks, pull what the
//! device lacks page by page (each page committed with its cursor in one transaction),
//! report progress through a callback. [`enroll`] binds a device to a server first;
//! [`background`] runs syncs in a loop for host apps.
//!
//! The protocol is in `docs/PROTOCOL.md`; this module only carries it out.

pub mod background;
mod error;
mod http;

pub use error::{Permanent, SyncError};
pub use http::ensure_crypto_provider;

use std::collections::HashSet;
use std::time::Duration;

use intake_shared::RecordId;
use intake_shared::protocol::{Outcome, PROTOCOL_VERSION, RecordChanges, Rejection, SyncRequest};

use crate::store::{Enrolment, PageCommit, Store};

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncSummary {
    /// Records whose changes the server stored.
    pub sent: usize,
    /// Records whose changes the server refused (reasons on the records).
    pub refused: usize,
    /// Records received (new or changed).
    pub received: usize,
    /// Records dropped because this user may no longer see them.
    pub removed: usize,
    pub bytes_up: usize,
    pub bytes_down: usize,
    pub requests: usize,
    /// Records still holding changes the server does not have.
    pub unsynced: usize,
}

/// Progress during a sync, after each round trip.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub summary: SyncSummary,
    /// Whether the server has more to send.
    pub more: bool,
}

/// Tuning of a sync.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// The largest response page to ask for (bytes before compression).
    pub page_bytes: u32,
    /// Roughly how many bytes of changes to push per request.
    pub push_bytes: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        // Pages: a mebibyte of records compresses to about 160 KB, some 5 s on a 2G
        // link (~30 KB/s), so a cut connection costs seconds; and it holds enough
        // records (~800 new ones) for zstd to find what they share: a fresh pull of
        // 2,000 records is 1.30 x its floor in 1 MiB pages, 1.38 x in 512 KiB and
        // 1.52 x in 256 KiB (`docs/BENCHMARKS.md`). Pushes: a week of intake goes in
        // one request, a device's whole backlog in a few.
        SyncOptions {
            page_bytes: 1024 * 1024,
            push_bytes: 2 << 20,
        }
    }
}

fn wire(id: RecordId) -> [u8; 16] {
    *id.as_uuid().as_bytes()
}

fn record_id(w: &[u8; 16]) -> RecordId {
    RecordId::from_uuid(uuid::Uuid::from_bytes(*w))
}

/// Syncs `store` with the server it is enrolled with.
pub fn sync(
    store: &mut Store,
    options: &SyncOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<SyncSummary, SyncError> {
    let enrolment = store.enrolment()?.ok_or(SyncError::NotEnrolled)?;
    let transport = http::Transport::new(
        &enrolment.server,
        &enrolment.token,
        enrolment.ca_file.as_deref(),
    )?;
    let mut summary = SyncSummary::default();
    let mut want_docs: Vec<RecordId> = Vec::new();
    // Records pushed in this sync (stored or refused): not pushed again in the same run.
    let mut pushed: HashSet<RecordId> = HashSet::new();
    // Records sent again whole after the server said it lacked their history.
    let mut resent: HashSet<RecordId> = HashSet::new();
    loop {
        let outgoing = store.outgoing(options.push_bytes, &pushed)?;
        pushed.extend(outgoing.iter().map(|o| o.id));
        let request = SyncRequest {
            version: PROTOCOL_VERSION,
            cursor: store.cursor()?,
            page_bytes: options.page_bytes,
            push: outgoing
                .iter()
                .map(|o| RecordChanges {
                    record: wire(o.id),
                    changes: o.changes.clone(),
                })
                .collect(),
            want_docs: want_docs.iter().map(|id| wire(*id)).collect(),
        };
        let (response, moved) = transport.exchange(&request)?;
        summary.requests += 1;
        summary.bytes_up += moved.up;
        summary.bytes_down += moved.down;
        let mut page = PageCommit {
            cursor: response.cursor,
            ..PageCommit::default()
        };
        for (result, o) in response.results.iter().zip(&outgoing) {
            match &result.outcome {
                Outcome::Stored => {
                    summary.sent += 1;
                    page.stored.push((o.id, o.pushed.clone()));
                }
                Outcome::Rejected {
                    reason: Rejection::MissingDependencies,
                    message,
                } => {
                    // Not final: the record's whole history goes next, once more in
                    // this sync; if even that is refused, at the next sync.
                    if resent.insert(o.id) {
                        pushed.remove(&o.id);
                    } else {
                        summary.refused += 1;
                    }
                    page.resend
                        .push((o.id, format!("MissingDependencies: {message}")));
                }
                Outcome::Rejected { reason, message } => {
                    summary.refused += 1;
                    page.rejected.push((
                        o.id,
                        o.pushed.heads.clone(),
                        format!("{reason:?}: {message}"),
                    ));
                }
            }
        }
        page.docs = response
            .docs
            .into_iter()
            .map(|d| (record_id(&d.record), d.doc))
            .collect();
        page.changes = response
            .changes
            .into_iter()
            .map(|c| (record_id(&c.record), c.changes))
            .collect();
        page.removed = response.removed.iter().map(record_id).collect();
        let asked = want_docs.len();
        let result = store.commit_page(page)?;
        summary.received += result.received;
        summary.removed += result.removed;
        // Ask for a record whole at most once per sync, so a server that cannot supply
        // it does not make the loop spin.
        want_docs = result
            .want_docs
            .into_iter()
            .filter(|_| asked == 0)
            .collect();
        progress(&Progress {
            summary: summary.clone(),
            more: response.more,
        });
        let more_to_push = store.has_outgoing(&pushed)?;
        if !response.more && want_docs.is_empty() && !more_to_push {
            break;
        }
    }
    summary.unsynced = store.unsynced()?;
    Ok(summary)
}

/// Enrols this device with a server using a one-time code from an admin, and keeps
/// the token inside the encrypted store.
pub fn enroll(
    store: &mut Store,
    server: &str,
    code: &str,
    label: &str,
    ca_file: Option<&str>,
) -> Result<Enrolment, SyncError> {
    let client = http::client(ca_file, Duration::from_secs(60))?;
    let server = server.trim_end_matches('/');
    let resp = client
        .post(format!("{server}/v1/enroll"))
        .json(&serde_json::json!({
            "code": code,
            "actor": hex::encode(store.device_actor_prefix()),
            "label": label,
        }))
        .send()
        .map_err(http::classify)?;
    let status = resp.status();
    let body = resp.bytes().map_err(http::classify)?;
    if !status.is_success() {
        let message = http::server_message(status, &body);
        return Err(match status.as_u16() {
            401 | 409 | 400 | 422 => SyncError::Permanent {
                kind: Permanent::Enrolment,
                message,
            },
            _ => http::status_error(status, &body),
        });
    }
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| SyncError::Retryable(format!("garbled enrolment answer: {e}")))?;
    let field = |k: &str| v[k].as_str().map(str::to_string);
    let enrolment = Enrolment {
        server: server.to_string(),
        token: field("token")
            .ok_or_else(|| SyncError::Retryable("no token in the answer".into()))?,
        device_id: v["device_id"].as_i64().unwrap_or_default(),
        user: field("user").unwrap_or_default(),
        role: field("role").unwrap_or_default(),
        team: field("team"),
        ca_file: ca_file.map(str::to_string),
    };
    store.set_enrolment(&enrolment)?;
    Ok(enrolment)
}
