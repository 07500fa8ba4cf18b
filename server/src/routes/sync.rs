//! `POST /v1/sync`: the binary sync endpoint. The protocol version is checked from the
//! `Intake-Protocol` header before the body is read; the body is read within the size
//! limit. Everything after that is CPU work and runs on the blocking pool, never on an
//! async worker (where it would stall every other connection of that worker):
//! decompressing (zstd) within the decompressed limit, decoding, the sync engine, and
//! compressing the answer when the device accepts zstd.
//!
//! Every sync waits for a turn among `max_syncs_at_once` before its work, at most
//! `max_sync_wait_ms`, then is answered `503 busy`: past the knee, a quick refusal the
//! device retries, never a queue that ends in timeouts.
//! Heavy syncs (see `gate.rs`) hold a permit for all of that work; one that finds none
//! free is answered `503 busy` at once, before its body is read when its
//! `Content-Length` already says it is heavy, and in any case before anything is
//! decoded or stored; but not when the permit it lacks is its own device's, whose push
//! before it is at work: it waits for that one to give it back (`gate::DeviceTurns`).
//! Light syncs are never refused: an answer too large to compress at the protocol's
//! level without a permit is compressed at a quick level instead.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use intake_shared::RecordId;
use intake_shared::protocol::{
    CONTENT_TYPE, DecodeError, ExpandError, Incoming, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
    STORE_HEADER, SyncRequest, VERSION_HEADER, WireId, is_zstd_frame, the_one_with_prefix,
};

use crate::config::Limits;
use crate::error::ApiError;
use crate::gate::{
    Gate, HEAVY_ANSWER_BYTES, HEAVY_BODY_BYTES, HEAVY_DECOMPRESSED_BYTES, Permit, QUICK_LEVEL,
    RETRY_AFTER_SECS,
};
use crate::policy::Principal;
use crate::startup::AppState;
use crate::sync::{self, SyncError};
use intake_shared::protocol::LOCK_HEADER;

fn update_the_app(v: &str) -> ApiError {
    ApiError::UpgradeRequired(format!(
        "protocol version {v} is not supported (this server speaks {MIN_PROTOCOL_VERSION}–{PROTOCOL_VERSION}): please update the app"
    ))
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn busy() -> ApiError {
    ApiError::Busy(RETRY_AFTER_SECS)
}

/// How the request body is encoded.
#[derive(Clone, Copy)]
enum Encoding {
    Identity,
    Zstd,
    /// Version 7 without `content-encoding`: zstd if the body starts with zstd's magic
    /// number, else the message itself.
    Sniff,
}

pub async fn sync(
    req: HttpRequest,
    mut payload: web::Payload,
    p: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let version = header(&req, VERSION_HEADER)
        .ok_or_else(|| ApiError::BadRequest(format!("missing the {VERSION_HEADER} header")))?;
    let version = match version.trim().parse::<u16>() {
        Ok(v) if (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&v) => v,
        _ => return Err(update_the_app(version)),
    };
    // Version 7 heads (issue 16): a body without `content-encoding` is zstd, and the
    // answer is zstd whatever `accept-encoding` says. Older apps as before.
    let short_heads = version >= SHORT_HEADS_VERSION;
    let encoding = match header(&req, "content-encoding") {
        None if short_heads => Encoding::Sniff,
        None | Some("identity") => Encoding::Identity,
        Some("zstd") => Encoding::Zstd,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unsupported content-encoding {other}; use zstd"
            )));
        }
    };
    let accepts_zstd = short_heads
        || header(&req, "accept-encoding")
            .is_some_and(|v| v.split(',').any(|e| e.trim() == "zstd"));
    let limits = state.settings.limits.clone();
    let gate = state.heavy_syncs.clone();
    // A device whose heavy sync is at work sent this one ahead (a push while its last
    // is stored): with no permit free it waits below for its own to give one back,
    // and is not refused for it (`gate::DeviceTurns`).
    let own_at_work = state.device_turns.at_work(p.device.id);
    // A body announced heavy, with every permit taken: refused before a byte of it is
    // read. (Actix frames the body by this header, so it cannot be longer than it says.)
    let announced = header(&req, "content-length").and_then(|v| v.trim().parse::<usize>().ok());
    if announced.is_some_and(|n| n > HEAVY_BODY_BYTES) && !gate.has_room() && !own_at_work {
        return Err(busy());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limits.max_body_bytes {
            return Err(ApiError::TooLarge(format!(
                "the body is larger than {} bytes",
                limits.max_body_bytes
            )));
        }
        // A body sent without a length: the same question once it turns out heavy
        // (and for one with a length, again: the last permit may be gone by now).
        if body.len() <= HEAVY_BODY_BYTES
            && body.len() + chunk.len() > HEAVY_BODY_BYTES
            && !gate.has_room()
            && !own_at_work
        {
            return Err(busy());
        }
        body.extend_from_slice(&chunk);
    }
    // The permit is taken once the body is in, not while it arrives: a phone on a 2G
    // link takes minutes to send a large push, and permits held that long would let a
    // few slow uploads shut out every other heavy sync. The price: when the last
    // permit is taken by someone else during the upload, this one is refused after it
    // (nothing is stored; the device sends it again later).
    let wait = std::time::Duration::from_millis(limits.max_sync_wait_ms);
    let (permit, at_work) = if body.len() > HEAVY_BODY_BYTES {
        let (permit, at_work) = state
            .device_turns
            .enter(&gate, p.device.id, wait)
            .await
            .ok_or_else(busy)?;
        (Some(permit), Some(at_work))
    } else {
        (None, None)
    };
    // A turn among the syncs working at once, waited for without a thread; past
    // what the server can do, a device hears at once to come back later rather than
    // queueing until it times out (`[limits] max_syncs_at_once`, `max_sync_wait_ms`).
    // Taken once the body is in, like the permit, so slow uploads hold no turn.
    let turn = actix_web::rt::time::timeout(wait, state.sync_turns.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(busy)?;
    let storage = state.storage.clone();
    let store_id = storage.store_id().to_string();
    let data_dir = state.settings.data_dir.clone();
    let answer = web::block(move || {
        let _turn = turn;
        let _at_work = at_work;
        let mut work = Work {
            gate,
            permit,
            limits,
            sniffed: short_heads,
        };
        let bytes = work.decompress(&body, encoding)?;
        drop(body);
        let request = work.decode(&bytes)?;
        drop(bytes);
        let request = expand(storage.as_ref(), request)?;
        let known = request.known;
        let response =
            sync::handle(storage.as_ref(), &p, request, &work.limits).map_err(|e| match e {
                SyncError::TooLarge(m) => ApiError::TooLarge(m),
                SyncError::Malformed(m) => ApiError::Unprocessable(m),
                // Disk full: the operator's log line names the data directory.
                SyncError::Storage(crate::storage::StorageError::Full(cause)) => {
                    ApiError::StorageFull(format!("{} ({cause})", data_dir.display()))
                }
                SyncError::Storage(e) => e.into(),
            })?;
        Ok::<_, ApiError>((work.answer(response.encode(), accepts_zstd)?, known))
        // The permit, if any, is given back here, with the last of the work done.
    })
    .await??;
    let (answer, known) = answer;
    let lock_after_days = state.settings.lock_after_days;
    // Version 7: the store id and the lock only when the device does not know them.
    let repeat = !short_heads || !known.matches(&store_id, lock_after_days);
    let mut http = HttpResponse::Ok();
    // Version 7's answer is zstd by the protocol, and its type is known to the one
    // device that asked: 67 bytes of heads saved on every round trip. The `Date` stays:
    // the device reads the server's clock from it (issue 13).
    if !short_heads {
        http.content_type(CONTENT_TYPE);
        if answer.compressed {
            http.insert_header(("content-encoding", "zstd"));
        }
    }
    if repeat {
        http.insert_header((STORE_HEADER, store_id));
        // Lost phones (issue 12): devices enrolled before a change learn it here.
        http.insert_header((LOCK_HEADER, lock_after_days.to_string()));
    }
    if short_heads {
        http.extensions_mut().insert(BinaryAnswer);
    }
    Ok(http.body(answer.bytes))
}

/// Marks a successful version 7 sync answer: the security headers meant for browsers
/// (`startup::security_headers`) are left off it.
#[derive(Clone, Copy, Debug)]
pub struct BinaryAnswer;

/// The first protocol version whose heads leave out `content-type` and the encodings.
const SHORT_HEADS_VERSION: u16 = 7;

/// The request with the dependencies a version 7 device abbreviated put back, each
/// from its record's stored change hashes (`intake_shared::protocol::short`). A prefix
/// that names no stored change of its record, or several, or an expansion the push's
/// digest disowns, refuses the whole request with 409 `send_in_full` before anything is
/// judged: the device sends it again at once with its dependencies in full.
///
/// The hashes are looked up whoever asks, before access is checked (that is
/// `sync::handle`'s): a caller learns only whether a prefix it already knows names a
/// change of a record whose id it knows, no more than what `Stored` for a resent change
/// tells it today.
fn expand(
    storage: &dyn crate::storage::SyncStorage,
    incoming: Incoming,
) -> Result<SyncRequest, ApiError> {
    let mut known: HashMap<WireId, Vec<[u8; 32]>> = HashMap::new();
    for record in incoming.abbreviated_records() {
        // Every change the server stored with a receipt (issue 13), i.e. every change
        // stored since; one stored before has none, and is sent in full once.
        let hashes = storage
            .receipts(RecordId::from_wire(&record))?
            .into_keys()
            .collect();
        known.insert(record, hashes);
    }
    incoming
        .expand(|record, prefix| the_one_with_prefix(known.get(record)?, prefix))
        .map_err(|e| match e {
            ExpandError::SendInFull(m) => ApiError::SendInFull(m),
            ExpandError::Decode(e) => ApiError::BadRequest(format!("malformed sync request: {e}")),
        })
}

/// One sync's work on the blocking pool, with the heavy-sync permit it holds, if any.
struct Work {
    gate: Arc<Gate>,
    permit: Option<Permit>,
    limits: Limits,
    /// Version 7: the device tells a zstd answer by its first bytes.
    sniffed: bool,
}

/// An encoded answer, compressed or not.
struct Answer {
    bytes: Vec<u8>,
    compressed: bool,
}

impl Work {
    /// The body decompressed, within the decompressed limit. A light body found to
    /// decompress into a heavy one (see [`HEAVY_DECOMPRESSED_BYTES`]) takes a permit
    /// before it is decompressed further, or is refused.
    fn decompress(&mut self, body: &[u8], encoding: Encoding) -> Result<Vec<u8>, ApiError> {
        let max = self.limits.max_decompressed_bytes;
        let encoding = match encoding {
            Encoding::Sniff if is_zstd_frame(body) => Encoding::Zstd,
            Encoding::Sniff => Encoding::Identity,
            other => other,
        };
        let bytes = match encoding {
            // Light as sent means light here: it is at most `HEAVY_BODY_BYTES`.
            Encoding::Identity | Encoding::Sniff => body.to_vec(),
            Encoding::Zstd => {
                let bad = |e: std::io::Error| ApiError::BadRequest(format!("bad zstd body: {e}"));
                let mut decoder = zstd::stream::read::Decoder::new(body).map_err(bad)?;
                let mut out = Vec::new();
                if self.permit.is_none() {
                    let light = HEAVY_DECOMPRESSED_BYTES.min(max);
                    (&mut decoder)
                        .take(light as u64 + 1)
                        .read_to_end(&mut out)
                        .map_err(bad)?;
                    if out.len() <= light {
                        // The whole body, and light.
                        return Ok(out);
                    }
                    if out.len() > HEAVY_DECOMPRESSED_BYTES {
                        self.permit = Some(self.gate.try_enter().ok_or_else(busy)?);
                    }
                }
                let left = (max + 1).saturating_sub(out.len());
                decoder
                    .take(left as u64)
                    .read_to_end(&mut out)
                    .map_err(bad)?;
                out
            }
        };
        if bytes.len() > max {
            return Err(ApiError::TooLarge(format!(
                "the body decompresses to more than {max} bytes"
            )));
        }
        Ok(bytes)
    }

    /// The request, counted before it is decoded (version 7's abbreviated dependencies
    /// still to put back).
    fn decode(&self, bytes: &[u8]) -> Result<Incoming, ApiError> {
        let limits = &self.limits;
        // Count before decoding: an empty change is one byte on the wire and 24 in
        // memory, so 32 MiB of them (a 1 KB zstd body) would allocate ~800 MB before
        // the engine's count limits are checked.
        if let Some((records, changes)) = intake_shared::protocol::count_request_entries(bytes)
            && (changes > limits.max_changes_per_request
                || records > limits.max_records_per_request)
        {
            return Err(ApiError::TooLarge(format!(
                "{changes} changes and {records} records in one request; at most {} and {} are accepted",
                limits.max_changes_per_request, limits.max_records_per_request
            )));
        }
        SyncRequest::decode_incoming(bytes).map_err(|e| match e {
            // The header named a version we speak; a body that says otherwise is broken.
            DecodeError::Version(v) => ApiError::BadRequest(format!(
                "the body's protocol version {v} does not match the header"
            )),
            DecodeError::Malformed(m) => {
                ApiError::BadRequest(format!("malformed sync request: {m}"))
            }
        })
    }

    /// The encoded response, compressed when the device accepts zstd. A large answer
    /// is compressed at the protocol's level under a permit (the one held, or one free
    /// now); without one, at [`QUICK_LEVEL`]: the device still gets its page, a little
    /// larger, and is never refused for asking.
    fn answer(&mut self, response: Vec<u8>, accepts_zstd: bool) -> Result<Answer, ApiError> {
        if !accepts_zstd {
            return Ok(Answer {
                bytes: response,
                compressed: false,
            });
        }
        if response.len() > HEAVY_ANSWER_BYTES && self.permit.is_none() {
            self.permit = self.gate.try_enter();
        }
        let level = if response.len() <= HEAVY_ANSWER_BYTES || self.permit.is_some() {
            intake_shared::protocol::compression_level(response.len())
        } else {
            QUICK_LEVEL
        };
        // A large version 7 answer (a page) in frames compressed on every core
        // (`intake_par::frames`): its device reads them as one stream. Older apps get
        // one frame, as they always did.
        let bytes = if self.sniffed {
            intake_par::frames::compress(&response, level)
        } else {
            zstd::bulk::compress(&response, level)
        }
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
        // Version 7 says nothing of the encoding: a message that compression would
        // only make larger (a no-op's answer) goes as it is.
        if self.sniffed && bytes.len() >= response.len() {
            return Ok(Answer {
                bytes: response,
                compressed: false,
            });
        }
        Ok(Answer {
            bytes,
            compressed: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_version_7_answer_goes_in_frames_an_older_app_gets_one() {
        let plain: Vec<u8> = (0..3u64 << 19)
            .map(|i| b"page of records "[(i.wrapping_mul(2654435761) >> 9) as usize % 16])
            .collect();
        let work = |sniffed| Work {
            gate: Gate::new(1),
            permit: None,
            limits: Limits::default(),
            sniffed,
        };
        let frames = |bytes: &[u8]| {
            let mut rest = bytes;
            let mut n = 0;
            while !rest.is_empty() {
                let len = zstd::zstd_safe::find_frame_compressed_size(rest).unwrap();
                rest = &rest[len..];
                n += 1;
            }
            n
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let v7 = work(true).answer(plain.clone(), true).unwrap();
        assert_eq!(frames(&v7.bytes), cores.min(3));
        assert_eq!(
            zstd::bulk::decompress(&v7.bytes, plain.len()).unwrap(),
            plain
        );
        let v6 = work(false).answer(plain.clone(), true).unwrap();
        assert_eq!(frames(&v6.bytes), 1);
    }
}
