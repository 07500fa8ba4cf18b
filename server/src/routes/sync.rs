//! `POST /v1/sync`: the binary sync endpoint. The protocol version is checked from the
//! `Intake-Protocol` header before the body is read; the body is read within the size
//! limit, decompressed (zstd) within the decompressed limit, decoded, and handed to the
//! sync engine on the blocking pool. The answer is compressed when the device accepts
//! zstd.

use std::io::Read;

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use intake_shared::protocol::{
    CONTENT_TYPE, DecodeError, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, SyncRequest, VERSION_HEADER,
};

use crate::error::ApiError;
use crate::policy::Principal;
use crate::startup::AppState;
use crate::sync::{self, SyncError};

fn update_the_app(v: &str) -> ApiError {
    ApiError::UpgradeRequired(format!(
        "protocol version {v} is not supported (this server speaks {MIN_PROTOCOL_VERSION}–{PROTOCOL_VERSION}): please update the app"
    ))
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub async fn sync(
    req: HttpRequest,
    mut payload: web::Payload,
    p: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let version = header(&req, VERSION_HEADER)
        .ok_or_else(|| ApiError::BadRequest(format!("missing the {VERSION_HEADER} header")))?;
    match version.trim().parse::<u16>() {
        Ok(v) if (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&v) => {}
        _ => return Err(update_the_app(version)),
    }
    let limits = state.settings.limits.clone();
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
        body.extend_from_slice(&chunk);
    }
    let bytes = match header(&req, "content-encoding") {
        None | Some("identity") => body.to_vec(),
        Some("zstd") => {
            let decoder = zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| ApiError::BadRequest(format!("bad zstd body: {e}")))?;
            let mut out = Vec::new();
            decoder
                .take(limits.max_decompressed_bytes as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::BadRequest(format!("bad zstd body: {e}")))?;
            out
        }
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unsupported content-encoding {other}; use zstd"
            )));
        }
    };
    if bytes.len() > limits.max_decompressed_bytes {
        return Err(ApiError::TooLarge(format!(
            "the body decompresses to more than {} bytes",
            limits.max_decompressed_bytes
        )));
    }
    let storage = state.storage.clone();
    let response = web::block(move || -> Result<Vec<u8>, ApiError> {
        // Count before decoding: an empty change is one byte on the wire and 24 in
        // memory, so 32 MiB of them (a 1 KB zstd body) would allocate ~800 MB before
        // the engine's count limits are checked.
        if let Some((records, changes)) = intake_shared::protocol::count_request_entries(&bytes)
            && (changes > limits.max_changes_per_request
                || records > limits.max_records_per_request)
        {
            return Err(ApiError::TooLarge(format!(
                "{changes} changes and {records} records in one request; at most {} and {} are accepted",
                limits.max_changes_per_request, limits.max_records_per_request
            )));
        }
        let request = SyncRequest::decode(&bytes).map_err(|e| match e {
            // The header named a version we speak; a body that says otherwise is broken.
            DecodeError::Version(v) => ApiError::BadRequest(format!(
                "the body's protocol version {v} does not match the header"
            )),
            DecodeError::Malformed(m) => {
                ApiError::BadRequest(format!("malformed sync request: {m}"))
            }
        })?;
        let response =
            sync::handle(storage.as_ref(), &p, request, &limits).map_err(|e| match e {
                SyncError::TooLarge(m) => ApiError::TooLarge(m),
                SyncError::Malformed(m) => ApiError::Unprocessable(m),
                SyncError::Storage(e) => e.into(),
            })?;
        Ok(response.encode())
    })
    .await??;
    let accepts_zstd =
        header(&req, "accept-encoding").is_some_and(|v| v.split(',').any(|e| e.trim() == "zstd"));
    let mut http = HttpResponse::Ok();
    http.content_type(CONTENT_TYPE);
    if accepts_zstd {
        let level = intake_shared::protocol::compression_level(response.len());
        let compressed = zstd::bulk::compress(&response, level)
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
        http.insert_header(("content-encoding", "zstd"));
        Ok(http.body(compressed))
    } else {
        Ok(http.body(response))
    }
}
