//! A loopback TCP proxy that breaks HTTP/1.1 traffic on purpose, one request at a time,
//! so tests can check that syncing over a bad link loses nothing and duplicates nothing.
//!
//! Devices keep connections alive, so faults are chosen per request, not per connection:
//! the proxy reads just enough HTTP framing to find request and response boundaries (the
//! head up to `\r\n\r\n`, a `Content-Length` body; chunked responses are followed, a
//! response without either is streamed until the server closes). Chunked requests are
//! refused by closing the connection: the client always sends `Content-Length`.
//!
//! With probability `fault_rate` a request meets one [`Fault`], chosen by a generator
//! seeded from the configured seed and the request's number, so a run can be replayed.
//! A test can also decide for itself what happens to the next requests
//! ([`FaultProxy::script`]) or to every request from the n-th on
//! ([`FaultProxy::fail_from`]), including answers the random choice never makes
//! ([`Fault::Status`]: the proxy refuses with a status of the test's choosing).
//! It is a [`crate::relay::Handler`]: the relay skeleton accepts, connects, tracks the
//! connection threads, and on drop stops the listener, shuts down every connection and
//! joins every thread.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::relay::{Conn, Handler, Relay, SplitMix, lock};

/// How often and how reproducibly the proxy breaks requests.
#[derive(Clone, Copy, Debug)]
pub struct FaultConfig {
    /// The probability (0.0–1.0) that a request meets a fault.
    pub fault_rate: f64,
    /// Seeds the choice of faults: the same seed and request order give the same faults.
    pub seed: u64,
}

/// What can happen to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Part of the request body reaches the server, then both sides are closed.
    CutRequest,
    /// The server answers; part of the answer's body reaches the client, then close.
    CutResponse,
    /// The server answers; only the answer's head reaches the client, then close.
    Truncate,
    /// The request is held 20–200 ms, then forwarded normally.
    Delay,
    /// The proxy answers 502 itself (the server never sees the request), then closes.
    BadGateway,
    /// The proxy answers 503 itself, then closes.
    Unavailable,
    /// The proxy answers this status itself (the server never sees the request), with a
    /// JSON error body, then closes: a 4xx a server or a middlebox could send. Only by
    /// a test's plan, never by chance.
    Status(u16),
}

impl Fault {
    /// The faults chosen by chance. Never extended: the seeded runs of `faults.rs`
    /// depend on this list as it is.
    const ALL: [Fault; 6] = [
        Fault::CutRequest,
        Fault::CutResponse,
        Fault::Truncate,
        Fault::Delay,
        Fault::BadGateway,
        Fault::Unavailable,
    ];

    /// The fault's counter: the random ones first, then `Status`.
    fn index(self) -> usize {
        match self {
            Fault::Status(_) => Fault::ALL.len(),
            f => Fault::ALL.iter().position(|a| *a == f).unwrap_or(0),
        }
    }
}

/// What the test has decided about the next requests, ahead of the random choice.
#[derive(Debug, Default)]
struct Plan {
    /// The next requests meet these, one each, in order (`None`: passed on untouched).
    script: VecDeque<Option<Fault>>,
    /// From this request number on (counted from 0, as [`ProxyStats::requests`]),
    /// every request meets this fault.
    from: Option<(u64, Fault)>,
}

impl Plan {
    /// What request `n` meets, if the plan decides it.
    fn take(&mut self, n: u64) -> Option<Option<Fault>> {
        if let Some(next) = self.script.pop_front() {
            return Some(next);
        }
        match self.from {
            Some((from, fault)) if n >= from => Some(Some(fault)),
            _ => None,
        }
    }
}

/// Live counters, updated by the connection threads (connections and threads are
/// counted by the relay).
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    faults: [AtomicU64; 7],
}

/// A snapshot of the proxy's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Requests read from clients (each met at most one fault).
    pub requests: u64,
    pub cut_request: u64,
    pub cut_response: u64,
    pub truncate: u64,
    pub delay: u64,
    pub bad_gateway: u64,
    pub unavailable: u64,
    /// Requests answered with a status of the test's choosing ([`Fault::Status`]).
    pub status: u64,
    /// Client connections accepted since the start.
    pub connections_opened: u64,
    /// Client connections not yet closed.
    pub connections_open: u64,
    /// Connection threads still running (the listener's own thread is not counted).
    pub threads_alive: u64,
}

impl ProxyStats {
    /// Every fault injected, of any kind.
    pub fn faults(&self) -> u64 {
        self.cut_request
            + self.cut_response
            + self.truncate
            + self.delay
            + self.bad_gateway
            + self.unavailable
            + self.status
    }
}

impl fmt::Display for ProxyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests={} faults={} (cut_request={} cut_response={} truncate={} delay={} 502={} 503={} status={}) connections={}",
            self.requests,
            self.faults(),
            self.cut_request,
            self.cut_response,
            self.truncate,
            self.delay,
            self.bad_gateway,
            self.unavailable,
            self.status,
            self.connections_opened
        )
    }
}

/// What the proxy does to each connection, shared by its connection threads and the
/// owner.
struct Faults {
    config: FaultConfig,
    plan: Mutex<Plan>,
    counters: Counters,
}

impl Handler for Faults {
    fn serve(&self, conn: Conn) {
        let _ = relay(self, conn.client, conn.upstream);
    }
}

/// The running proxy; stopped (listener, connections, threads) when dropped.
pub struct FaultProxy {
    relay: Relay<Faults>,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` in front of `upstream`.
    pub fn start(upstream: SocketAddr, config: FaultConfig) -> FaultProxy {
        let faults = Faults {
            config,
            plan: Mutex::new(Plan::default()),
            counters: Counters::default(),
        };
        let relay =
            Relay::start("fault-proxy", upstream, faults).expect("start the proxy on loopback");
        FaultProxy { relay }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.relay.addr()
    }

    /// The base URL to point a device at.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The next requests meet `faults`, one each, in order (`None`: passed on
    /// untouched); after them the plan of [`FaultProxy::fail_from`], then chance,
    /// decide again. Adds to what is already scripted.
    pub fn script(&self, faults: impl IntoIterator<Item = Option<Fault>>) {
        lock(&self.relay.handler().plan).script.extend(faults);
    }

    /// Every request from the `n`-th on (counted from 0 since the proxy started, as
    /// [`ProxyStats::requests`] counts) meets `fault`, until [`FaultProxy::heal`].
    pub fn fail_from(&self, n: u64, fault: Fault) {
        lock(&self.relay.handler().plan).from = Some((n, fault));
    }

    /// Forgets the script and `fail_from`: from the next request on, only chance
    /// (`fault_rate`) breaks requests.
    pub fn heal(&self) {
        *lock(&self.relay.handler().plan) = Plan::default();
    }

    /// The counters as they are now.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.relay.handler().counters;
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        let fault = |f: Fault| get(&c.faults[f.index()]);
        ProxyStats {
            requests: get(&c.requests),
            cut_request: fault(Fault::CutRequest),
            cut_response: fault(Fault::CutResponse),
            truncate: fault(Fault::Truncate),
            delay: fault(Fault::Delay),
            bad_gateway: fault(Fault::BadGateway),
            unavailable: fault(Fault::Unavailable),
            status: fault(Fault::Status(0)),
            connections_opened: self.relay.accepted(),
            connections_open: self.relay.open(),
            threads_alive: self.relay.threads_alive(),
        }
    }
}

/// The largest request or response head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;
/// The largest request body the proxy holds in memory.
const MAX_BODY: usize = 256 << 20;

/// An HTTP head as read from the wire, with what framing needs.
struct Head {
    raw: Vec<u8>,
    /// The method (requests) or status code (responses): the first two words.
    first: String,
    second: String,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
}

/// Reads a head up to the blank line; `None` on a clean end of stream before it.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut raw = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = r
            .by_ref()
            .take((MAX_HEAD - raw.len()) as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            if raw.is_empty() {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(&line);
        if raw.len() > MAX_HEAD || !line.ends_with(b"\n") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            if lines.is_empty() {
                // Blank lines before a request line are allowed (RFC 9112 §2.2).
                raw.clear();
                continue;
            }
            break;
        }
        lines.push(text);
    }
    let mut words = lines[0].split_whitespace();
    let first = words.next().unwrap_or_default().to_string();
    let second = words.next().unwrap_or_default().to_string();
    let mut head = Head {
        raw,
        first,
        second,
        content_length: None,
        chunked: false,
        close: false,
    };
    for line in &lines[1..] {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = value
                    .parse()
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "content-length"))?;
                head.content_length = Some(n);
            }
            "transfer-encoding" => head.chunked = value.split(',').any(|t| t.trim() == "chunked"),
            "connection" => head.close |= value.split(',').any(|t| t.trim() == "close"),
            _ => {}
        }
    }
    Ok(Some(head))
}

/// How a response body ends.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

fn response_framing(request: &Head, response: &Head) -> Framing {
    let status: u16 = response.second.parse().unwrap_or(0);
    if request.first.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
        Framing::Length(0)
    } else if response.chunked {
        Framing::Chunked
    } else if let Some(n) = response.content_length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    }
}

/// Reads a whole body as it is on the wire (chunk framing included).
fn read_body(r: &mut impl BufRead, framing: &Framing) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match framing {
        Framing::Length(n) => {
            out.resize(*n, 0);
            r.read_exact(&mut out)?;
        }
        Framing::UntilClose => {
            r.read_to_end(&mut out)?;
        }
        Framing::Chunked => loop {
            let mut line = Vec::new();
            r.by_ref().take(4096).read_until(b'\n', &mut line)?;
            if !line.ends_with(b"\n") {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            out.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line);
            let size_text = text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk size"))?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let mut t = Vec::new();
                    r.by_ref().take(4096).read_until(b'\n', &mut t)?;
                    if !t.ends_with(b"\n") {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    out.extend_from_slice(&t);
                    if t == b"\r\n" || t == b"\n" {
                        return Ok(out);
                    }
                }
            }
            let start = out.len();
            out.resize(start + size + 2, 0);
            r.read_exact(&mut out[start..])?;
        },
    }
    Ok(out)
}

/// The proxy's own error answer.
fn error_response(status: u16) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Injected",
    };
    let body = format!("{{\"message\":\"{status} injected by the fault proxy\"}}");
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Relays requests one by one, injecting at most one fault into each. Returning closes
/// the connection (the relay shuts both sockets down).
fn relay(shared: &Faults, client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    let mut from_server = BufReader::new(upstream.try_clone()?);
    let mut to_server = upstream;
    loop {
        let Some(request) = read_head(&mut from_client)? else {
            return Ok(());
        };
        if request.chunked {
            // Outside what this proxy frames; the client never sends it.
            return Ok(());
        }
        let length = request.content_length.unwrap_or(0);
        if length > MAX_BODY {
            return Ok(());
        }
        let body = read_body(&mut from_client, &Framing::Length(length))?;
        let c = &shared.counters;
        let n = c.requests.fetch_add(1, Ordering::SeqCst);
        let mut rng = SplitMix(shared.config.seed ^ n.wrapping_mul(0xa076_1d64_78bd_642f));
        // A test's plan comes first; chance decides only the requests it leaves open
        // (each request has its own generator, so the seeded sequence of the others
        // is unchanged).
        let planned = lock(&shared.plan).take(n);
        let fault = planned.unwrap_or_else(|| {
            (rng.unit() < shared.config.fault_rate).then(|| Fault::ALL[rng.below(Fault::ALL.len())])
        });
        if let Some(f) = fault {
            c.faults[f.index()].fetch_add(1, Ordering::SeqCst);
        }
        match fault {
            Some(Fault::BadGateway) => return to_client.write_all(&error_response(502)),
            Some(Fault::Unavailable) => return to_client.write_all(&error_response(503)),
            Some(Fault::Status(status)) => return to_client.write_all(&error_response(status)),
            Some(Fault::CutRequest) => {
                // Some of the body (none at all is a cut too), never all of it; a
                // request without a body is cut inside its head.
                let whole = [request.raw.as_slice(), body.as_slice()].concat();
                let cut = if body.is_empty() {
                    rng.below(request.raw.len())
                } else {
                    request.raw.len() + rng.below(body.len())
                };
                return to_server.write_all(&whole[..cut]);
            }
            Some(Fault::Delay) => {
                // Holding traffic is what a slow link does; this sleep is the fault.
                std::thread::sleep(Duration::from_millis(20 + rng.below(181) as u64));
            }
            _ => {}
        }
        to_server.write_all(&request.raw)?;
        to_server.write_all(&body)?;
        to_server.flush()?;
        let response = loop {
            let Some(head) = read_head(&mut from_server)? else {
                // The server closed without answering: so does the proxy.
                return Ok(());
            };
            let status: u16 = head.second.parse().unwrap_or(0);
            if (100..200).contains(&status) && status != 101 {
                // Interim answers (100 Continue) pass through; the real one follows.
                to_client.write_all(&head.raw)?;
                continue;
            }
            break head;
        };
        let framing = response_framing(&request, &response);
        match fault {
            Some(Fault::Truncate) => return to_client.write_all(&response.raw),
            Some(Fault::CutResponse) => {
                let body = read_body(&mut from_server, &framing)?;
                let cut = if body.is_empty() {
                    rng.below(response.raw.len())
                } else {
                    response.raw.len() + rng.below(body.len())
                };
                let whole = [response.raw.as_slice(), body.as_slice()].concat();
                return to_client.write_all(&whole[..cut]);
            }
            _ => {}
        }
        to_client.write_all(&response.raw)?;
        match framing {
            Framing::Length(n) => {
                let copied = io::copy(&mut (&mut from_server).take(n as u64), &mut to_client)?;
                if copied < n as u64 {
                    // The server closed mid-body: pass the cut on.
                    return Ok(());
                }
            }
            Framing::Chunked => {
                let body = read_body(&mut from_server, &framing)?;
                to_client.write_all(&body)?;
            }
            Framing::UntilClose => {
                io::copy(&mut from_server, &mut to_client)?;
                return Ok(());
            }
        }
        to_client.flush()?;
        if request.close || response.close {
            return Ok(());
        }
    }
}
