//! The HTTP transport: blocking reqwest clients kept for the life of the process, zstd
//! both ways, the token only in the `Authorization` header, and HTTP failures turned
//! into classified [`SyncError`]s. When a CA file is configured, only it is trusted.
//!
//! What a network attacker or a hostile server could do to the device is bounded here:
//! plain `http://` is refused unless the server is on this machine (or the user said
//! `--insecure-http` at enrolment), redirects are not followed (the token would go to
//! wherever they point) but reported, and no answer is read or decompressed past
//! [`MAX_ANSWER_BYTES`]: more is an error, never a silent truncation.
//!
//! A host app's background loop syncs again and again, and one sync is several round
//! trips. A client built per sync would open a new TCP connection and make a full TLS
//! handshake (about 2.6 KB, most of it the certificate chain) every time. So
//! [`Transport::new`] takes its client from a process-wide cache, one per (server, CA
//! file): the next sync reuses a kept-alive connection when there is one (this client keeps
//! idle connections 60 s; the server keeps them 75 s), and otherwise resumes the TLS
//! session from the ticket the client's rustls config remembers, which skips the
//! certificate chain. A client holds no credentials (the token goes with each request),
//! so devices in one process syncing with the same server may share it.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use intake_shared::protocol::{
    DecodeError, PROTOCOL_VERSION, STORE_HEADER, SyncRequest, SyncResponse, VERSION_HEADER,
    compression_level, is_zstd_frame,
};

use intake_shared::protocol::LOCK_HEADER;

use super::error::{Permanent, SyncError};

/// The most of one answer the device reads, as sent and again once decompressed. The
/// server's pages are at most what the device asks for (1 MiB by default, never over
/// the server's `max_page_bytes`, 4 MiB by default); this leaves room for servers tuned
/// up, and keeps a hostile answer (a zstd bomb, an endless body) from exhausting a
/// phone's memory.
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// The most of an enrolment answer (a few hundred bytes of JSON) the device reads.
const MAX_ENROL_ANSWER_BYTES: usize = 1 << 20;

fn transport_error(message: String) -> SyncError {
    SyncError::Permanent {
        kind: Permanent::Transport,
        message,
    }
}

/// Whether a host name or address is this machine: `localhost`, 127.0.0.0/8, `::1`.
fn is_loopback_host(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Checks a server address before anything is sent to it: `https://`, or `http://` to
/// this machine, or `http://` anywhere when the user asked for it (`insecure_http`).
pub fn check_server_url(server: &str, insecure_http: bool) -> Result<(), SyncError> {
    let url = reqwest::Url::parse(server.trim()).map_err(|e| {
        transport_error(format!(
            "{server:?} is not a server address ({e}); it looks like https://intake.example.org"
        ))
    })?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if insecure_http || is_loopback_host(&url) => Ok(()),
        "http" => Err(transport_error(format!(
            "{server} is plain HTTP to another machine: the device token and the records \
             would cross the network unencrypted. Use the server's https:// address; only \
             on a network you control and trust, enrol again with --insecure-http"
        ))),
        other => Err(transport_error(format!(
            "{server}: {other}:// is not a server address; use https://"
        ))),
    }
}

/// A redirect is not followed (the token, or the enrolment code, would go to wherever
/// it points): it is a permanent error that says where it pointed.
fn redirect_error(status: reqwest::StatusCode, headers: &reqwest::header::HeaderMap) -> SyncError {
    let to = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(nowhere)");
    // Only the address: a query could carry anything.
    let to: String = to
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    transport_error(format!(
        "the server answered {status}, a redirect to {to}; this app does not follow \
         redirects. If that address is the server's, enrol again with it"
    ))
}

/// Reads at most `cap` bytes of an answer's body; more is an error.
pub(crate) fn read_capped(
    resp: reqwest::blocking::Response,
    cap: usize,
) -> Result<Vec<u8>, SyncError> {
    use std::io::Read;
    let too_large = || {
        transport_error(format!(
            "the server's answer is larger than the {} MiB this app reads: not an answer \
             this server sends (a misconfigured proxy in between?)",
            cap >> 20
        ))
    };
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    resp.take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| SyncError::Retryable(format!("reading the answer: {e}")))?;
    if out.len() > cap {
        return Err(too_large());
    }
    Ok(out)
}

/// Decompresses a zstd answer, stopping past `cap` bytes: a small answer that would
/// expand without end (a zstd bomb) is an error after `cap` bytes, not a full memory.
pub(crate) fn decompress_capped(bytes: &[u8], cap: usize) -> Result<Vec<u8>, SyncError> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::new(bytes)
        .map_err(|e| SyncError::Retryable(format!("bad compressed response: {e}")))?;
    let mut out = Vec::new();
    decoder
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| SyncError::Retryable(format!("bad compressed response: {e}")))?;
    if out.len() > cap {
        return Err(transport_error(format!(
            "the server's answer decompresses to more than the {} MiB this app reads: \
             not an answer this server sends",
            cap >> 20
        )));
    }
    Ok(out)
}

pub(crate) struct Transport {
    client: reqwest::blocking::Client,
    base: String,
    token: String,
}

/// Bytes moved by one exchange (bodies as sent, compressed).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Moved {
    pub up: usize,
    pub down: usize,
    /// The server's lock after N days, if the answer said it (issue 12).
    pub lock_after_days: Option<u32>,
    /// The server's time, from the answer's `Date` header (clock skew, issue 13).
    pub server_date: Option<chrono::DateTime<chrono::Utc>>,
}

/// Installs ring as the process's rustls crypto provider: reqwest is built without a
/// default one (its default pulls aws-lc, which needs extra build tools). Any other
/// reqwest client in the process needs this too. Installing twice is harmless.
pub fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client trusting `ca_file` only, or the platform's roots.
pub(crate) fn client(
    ca_file: Option<&str>,
    timeout: Duration,
) -> Result<reqwest::blocking::Client, SyncError> {
    ensure_crypto_provider();
    let mut builder = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        // Below the server's 75 s keep-alive, so a kept connection is never reused at
        // the moment the server closes it.
        .pool_idle_timeout(Duration::from_secs(60))
        .timeout(timeout)
        // The token goes with every request: never to wherever a redirect points.
        .redirect(reqwest::redirect::Policy::none());
    // No `user-agent`: nothing reads it, and it cost every sync request 26 bytes
    // (issue 16). reqwest's own `accept: */*` cannot be taken off a request.
    // No `tcp_nodelay(true)`: reqwest 0.13 already sets TCP_NODELAY by default, so a
    // small request is not held back by Nagle's algorithm waiting for an ACK.
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| SyncError::Permanent {
            kind: Permanent::Refused,
            message: format!("CA file {path}: {e}"),
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| SyncError::Permanent {
                kind: Permanent::Refused,
                message: format!("CA file {path}: {e}"),
            })?;
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| SyncError::Permanent {
        kind: Permanent::Refused,
        message: format!("HTTP client: {e}"),
    })
}

/// (server base URL, CA file path).
type ClientKey = (String, Option<String>);

/// The sync clients of this process. Never emptied: a process talks to one server (a
/// handful in tests), and each client costs one idle background thread of reqwest's.
static SYNC_CLIENTS: LazyLock<Mutex<HashMap<ClientKey, reqwest::blocking::Client>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The sync client for `base` trusting `ca_file`, built on first use. Clones share one
/// connection pool and one TLS session cache.
///
/// The CA file is read once, when the client is built: if it later changes on disk, the
/// client keeps trusting what it held then until the process restarts. Acceptable: a
/// CA file is replaced rarely (a new certificate authority for the server), and a
/// restart of the app picks it up. A failed build is not cached: the next sync tries
/// again, reading the file anew.
fn shared_client(
    base: &str,
    ca_file: Option<&str>,
) -> Result<reqwest::blocking::Client, SyncError> {
    // A panic elsewhere while holding the lock cannot leave the map half-changed.
    let mut clients = SYNC_CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
    let key = (base.to_string(), ca_file.map(str::to_string));
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    // Built under the lock, so concurrent first syncs build one client, not several.
    let built = client(ca_file, Duration::from_secs(120))?;
    clients.insert(key, built.clone());
    Ok(built)
}

/// Classifies a transport error (no HTTP status).
pub(crate) fn classify(e: reqwest::Error) -> SyncError {
    if e.is_connect() {
        SyncError::Offline(without_url(&e))
    } else {
        SyncError::Retryable(without_url(&e))
    }
}

/// reqwest errors name the URL; ours never holds secrets, but keep messages short.
fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url (") {
        e.truncate(i);
    }
    e
}

/// The server's `message` from a JSON error body, or the status.
pub(crate) fn server_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("HTTP {status}"))
}

/// The server's error code (`{"error": code}`) of a JSON error body.
fn server_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
}

/// The error code of a 401 that orders the device to wipe its store.
const WIPE_CODE: &str = "wipe";

/// The error code of a 409 to a version 7 sync whose abbreviated dependencies the
/// server could not put back: send the request again with them in full.
const SEND_IN_FULL: &str = "send_in_full";

/// How one round trip failed: an error, or the server asking for the dependencies in
/// full (with the bytes that exchange moved).
enum Refusal {
    Error(SyncError),
    SendInFull { up: usize, down: usize },
}

impl From<SyncError> for Refusal {
    fn from(e: SyncError) -> Refusal {
        Refusal::Error(e)
    }
}

impl Refusal {
    /// A second `send_in_full` (to a request with nothing abbreviated) is a server
    /// that does not follow the protocol.
    fn into_error(self) -> SyncError {
        match self {
            Refusal::Error(e) => e,
            Refusal::SendInFull { .. } => SyncError::Permanent {
                kind: Permanent::Refused,
                message: "the server asked for dependencies in full to a request that \
                          sent them so"
                    .into(),
            },
        }
    }
}

/// An enrolment answer: a redirect is reported, the body read up to a small cap.
pub(crate) fn enrol_answer(
    resp: reqwest::blocking::Response,
) -> Result<(reqwest::StatusCode, Vec<u8>), SyncError> {
    let status = resp.status();
    if status.is_redirection() {
        return Err(redirect_error(status, resp.headers()));
    }
    Ok((status, read_capped(resp, MAX_ENROL_ANSWER_BYTES)?))
}

/// Classifies a non-success HTTP answer.
pub(crate) fn status_error(status: reqwest::StatusCode, body: &[u8]) -> SyncError {
    let message = server_message(status, body);
    match status.as_u16() {
        // Lost phones (issue 12): revoked with a wipe order.
        401 if server_code(body).as_deref() == Some(WIPE_CODE) => SyncError::Permanent {
            kind: Permanent::Wiped,
            message,
        },
        401 => SyncError::Permanent {
            kind: Permanent::Revoked,
            message,
        },
        426 => SyncError::Permanent {
            kind: Permanent::UpdateApp,
            message,
        },
        408 | 429 | 500..=599 => SyncError::Retryable(message),
        413 => SyncError::TooLarge(message),
        _ => SyncError::Permanent {
            kind: Permanent::Refused,
            message,
        },
    }
}

impl Transport {
    pub(crate) fn new(
        server: &str,
        token: &str,
        ca_file: Option<&str>,
    ) -> Result<Transport, SyncError> {
        let base = server.trim_end_matches('/').to_string();
        Ok(Transport {
            client: shared_client(&base, ca_file)?,
            base,
            token: token.to_string(),
        })
    }

    /// One sync round trip: the answer, the bytes moved, and the server's store id
    /// (absent from older servers).
    pub(crate) fn exchange(
        &self,
        req: &SyncRequest,
    ) -> Result<(SyncResponse, Moved, Option<String>), SyncError> {
        match self.exchange_encoded(req, req.encode()) {
            // Version 7: the server could not put back a dependency this device
            // abbreviated (it holds none or several changes with that prefix, e.g. after
            // a restore). Nothing was judged or stored: the same request again at once,
            // every dependency in full, counting the bytes of both.
            Err(Refusal::SendInFull { up, down }) => {
                let (response, mut moved, store_id) = self
                    .exchange_encoded(req, req.encode_in_full())
                    .map_err(Refusal::into_error)?;
                moved.up += up;
                moved.down += down;
                Ok((response, moved, store_id))
            }
            other => other.map_err(Refusal::into_error),
        }
    }

    /// One HTTP round trip with `plain`, the encoding of `req`.
    fn exchange_encoded(
        &self,
        req: &SyncRequest,
        plain: Vec<u8>,
    ) -> Result<(SyncResponse, Moved, Option<String>), Refusal> {
        // A large push in frames compressed on every core (`intake_par::frames`).
        let compressed = intake_par::frames::compress(&plain, compression_level(plain.len()))
            .map_err(|e| SyncError::Retryable(e.to_string()))?;
        // A message that compression only makes larger (a no-op's) goes as it is: the
        // server tells a zstd body by its first bytes.
        let body = if compressed.len() < plain.len() {
            compressed
        } else {
            plain
        };
        let up = body.len();
        // Version 7's heads say only what a sync needs (issue 16): a body and an answer
        // are zstd when they start with zstd's magic number, so neither
        // `content-encoding` nor `accept-encoding` travels, and nothing reads a
        // `content-type` here.
        let resp = self
            .client
            .post(format!("{}/v1/sync", self.base))
            .bearer_auth(&self.token)
            .header(VERSION_HEADER, PROTOCOL_VERSION.to_string())
            .body(body)
            .send()
            .map_err(classify)?;
        let status = resp.status();
        // A version 7 answer says nothing of its encoding: see its first bytes below.
        let encoding = resp.headers().get("content-encoding").map(|v| v == "zstd");
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let store_id = resp
            .headers()
            .get(STORE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let lock_after_days = resp
            .headers()
            .get(LOCK_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let server_date = resp
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::store::http_date);
        if status.is_redirection() {
            return Err(redirect_error(status, resp.headers()).into());
        }
        let bytes = read_capped(resp, MAX_ANSWER_BYTES)?;
        let down = bytes.len();
        if let Some(secs) = retry_after {
            match status.as_u16() {
                503 => return Err(SyncError::Busy(server_message(status, &bytes), secs).into()),
                507 => {
                    return Err(SyncError::StorageFull(server_message(status, &bytes), secs).into());
                }
                _ => {}
            }
        }
        if status.as_u16() == 409 && server_code(&bytes).as_deref() == Some(SEND_IN_FULL) {
            return Err(Refusal::SendInFull { up, down });
        }
        if !status.is_success() {
            return Err(status_error(status, &bytes).into());
        }
        let plain = if encoding.unwrap_or_else(|| is_zstd_frame(&bytes)) {
            decompress_capped(&bytes, MAX_ANSWER_BYTES)?
        } else {
            bytes
        };
        let pushed: Vec<_> = req.push.iter().map(|p| p.record).collect();
        let response = SyncResponse::decode(&plain, &pushed).map_err(|e| match e {
            DecodeError::Version(_) => SyncError::Permanent {
                kind: Permanent::UpdateApp,
                message: e.to_string(),
            },
            DecodeError::Malformed(m) => SyncError::Retryable(format!("garbled response: {m}")),
        })?;
        Ok((
            response,
            Moved {
                up,
                down,
                lock_after_days,
                server_date,
            },
            store_id,
        ))
    }

    /// Tells the server this device wiped its store (`POST /v1/wiped`, issue 12), with
    /// the token still held in memory; a few quick tries, since the device will not
    /// come back. Whether it arrived: if not, the server keeps showing "wipe sent".
    pub(crate) fn report_wiped(&self) -> bool {
        for attempt in 0..3u64 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250 * attempt));
            }
            let sent = self
                .client
                .post(format!("{}/v1/wiped", self.base))
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(10))
                .send();
            if let Ok(resp) = sent
                && resp.status().is_success()
            {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(server: &str, insecure: bool) -> bool {
        matches!(
            check_server_url(server, insecure),
            Err(SyncError::Permanent {
                kind: Permanent::Transport,
                ..
            })
        )
    }

    #[test]
    fn an_answer_in_several_frames_is_read_whole() {
        let plain: Vec<u8> = (0..3u64 << 19)
            .map(|i| b"page of records "[(i.wrapping_mul(2654435761) >> 9) as usize % 16])
            .collect();
        let mut framed = Vec::new();
        for part in plain.chunks(plain.len() / 3) {
            framed.extend(zstd::bulk::compress(part, 3).unwrap());
        }
        assert_eq!(decompress_capped(&framed, plain.len()).unwrap(), plain);
        assert!(decompress_capped(&framed, plain.len() - 1).is_err());
    }

    #[test]
    fn plain_http_only_to_this_machine_unless_asked() {
        for ok in [
            "https://intake.example.org",
            "http://127.0.0.1:8080",
            "http://127.8.0.1",
            "http://localhost:8080/",
            "http://LOCALHOST",
            "http://[::1]:8080",
        ] {
            assert!(!refused(ok, false), "{ok}");
        }
        for bad in [
            "http://intake.example.org",
            "http://192.168.1.10:8080",
            "http://[2001:db8::1]",
            "http://localhost.evil.example",
            "ftp://intake.example.org",
            "intake.example.org",
        ] {
            assert!(refused(bad, false), "{bad}");
        }
        assert!(!refused("http://192.168.1.10:8080", true));
        assert!(refused("ftp://intake.example.org", true));
    }

    #[test]
    fn decompression_stops_at_the_cap() {
        let small = zstd::bulk::compress(&[1u8; 1000], 3).unwrap();
        assert_eq!(decompress_capped(&small, 1000).unwrap().len(), 1000);
        assert!(matches!(
            decompress_capped(&small, 999),
            Err(SyncError::Permanent {
                kind: Permanent::Transport,
                ..
            })
        ));
    }
}
