//! A counting TCP proxy on loopback, in front of the server: what a device costs is
//! measured at the socket, so HTTP headers, framing and compression are all included.
//! The benchmark counts its workloads' bytes with it, and `e2e::small_syncs` bounds
//! them.
//!
//! It is a handler of the relay skeleton ([`crate::relay`]), which
//! accepts, connects each connection to the server, and stops it all on drop. Per
//! connection, each direction copies bytes and adds them to atomic counters as they are
//! read from the socket. Each direction also
//! follows HTTP/1.1 message framing (a head up to the blank line, then a body of
//! `Content-Length` bytes) to count requests and the bytes spent on heads. A message
//! framed any other way (chunked) is counted as `unframed` and ends the parsing of that
//! direction; the byte counts stay exact regardless.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::relay::{Conn, Handler, Relay, both_ways};

/// What went through the proxy since the last [`Proxy::reset`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Bytes from devices to the server.
    pub up: u64,
    /// Bytes from the server to devices.
    pub down: u64,
    /// Of `up`, bytes in request heads (request line and headers).
    pub head_up: u64,
    /// Of `down`, bytes in response heads (status line and headers).
    pub head_down: u64,
    pub requests: u64,
    pub responses: u64,
    pub connections: u64,
    /// Messages whose framing the proxy could not follow.
    pub unframed: u64,
}

#[derive(Default)]
struct Counters {
    up: AtomicU64,
    down: AtomicU64,
    head_up: AtomicU64,
    head_down: AtomicU64,
    requests: AtomicU64,
    responses: AtomicU64,
    connections: AtomicU64,
    unframed: AtomicU64,
}

impl Counters {
    fn all(&self) -> [&AtomicU64; 8] {
        [
            &self.up,
            &self.down,
            &self.head_up,
            &self.head_down,
            &self.requests,
            &self.responses,
            &self.connections,
            &self.unframed,
        ]
    }
}

/// The proxy's handler: the counters, and whether to follow HTTP framing.
struct Counting {
    counters: Counters,
    http: bool,
}

impl Handler for Counting {
    fn accepted(&self, _id: u64) {
        self.counters.connections.fetch_add(1, Relaxed);
    }

    fn serve(&self, conn: Conn) {
        let (mut up, mut down) = (self.framer(), self.framer());
        let c = &self.counters;
        both_ways(
            &conn,
            |bytes| count(c, &mut up, Direction::Up, bytes),
            |bytes| count(c, &mut down, Direction::Down, bytes),
        );
    }
}

impl Counting {
    fn framer(&self) -> Framer {
        Framer {
            gave_up: !self.http,
            ..Framer::default()
        }
    }
}

/// A running proxy; stops (listener, connections, threads) when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`: what devices are pointed at.
    pub url: String,
    relay: Relay<Counting>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards each connection to one of `upstreams`,
    /// in turn (as a round-robin load balancer does in front of several servers);
    /// follows HTTP framing when `http` (not over TLS, which it cannot read).
    pub fn start(upstreams: Vec<SocketAddr>, http: bool) -> io::Result<Proxy> {
        let counting = Counting {
            counters: Counters::default(),
            http,
        };
        let relay = Relay::start_many("bench-proxy", upstreams, counting)?;
        Ok(Proxy {
            url: format!("http://{}", relay.addr()),
            relay,
        })
    }

    /// Sets every counter to zero (between enrolment and the measured phase).
    pub fn reset(&self) {
        for c in self.relay.handler().counters.all() {
            c.store(0, Relaxed);
        }
    }

    pub fn counts(&self) -> Counts {
        let [
            up,
            down,
            head_up,
            head_down,
            requests,
            responses,
            connections,
            unframed,
        ] = self.relay.handler().counters.all().map(|c| c.load(Relaxed));
        Counts {
            up,
            down,
            head_up,
            head_down,
            requests,
            responses,
            connections,
            unframed,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// Counts `bytes`, just read from one direction's socket (before they are written on),
/// and the message heads the framer finds in them.
fn count(c: &Counters, framer: &mut Framer, dir: Direction, bytes: &[u8]) {
    let (total, heads, messages) = match dir {
        Direction::Up => (&c.up, &c.head_up, &c.requests),
        Direction::Down => (&c.down, &c.head_down, &c.responses),
    };
    total.fetch_add(bytes.len() as u64, Relaxed);
    framer.feed(bytes, |head| {
        heads.fetch_add(head.len() as u64, Relaxed);
        if *SHOW_HEADS {
            show_head(head);
        }
        let is_message = match dir {
            Direction::Up => {
                const METHODS: [&[u8]; 5] = [b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD "];
                METHODS.iter().any(|m| head.starts_with(m))
            }
            Direction::Down => head.starts_with(b"HTTP/"),
        };
        if is_message {
            messages.fetch_add(1, Relaxed);
        }
    });
    if framer.lost {
        c.unframed.fetch_add(1, Relaxed);
        framer.lost = false;
        framer.gave_up = true;
    }
}

/// Whether to print every head the proxy sees (`INTAKE_BENCH_HEADS=1`): where the
/// bytes of a small sync go (issue 16), read off the wire rather than guessed.
static SHOW_HEADS: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("INTAKE_BENCH_HEADS").is_some());

/// Where to write every message body as it crossed (`INTAKE_BENCH_BODIES=DIR`, one
/// file each, numbered in the order they ended): to take a small sync's body apart.
static BODIES: std::sync::LazyLock<Option<std::path::PathBuf>> =
    std::sync::LazyLock::new(|| std::env::var_os("INTAKE_BENCH_BODIES").map(Into::into));

fn keep_body(dir: &std::path::Path, body: &[u8]) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Relaxed);
    let _ = std::fs::write(dir.join(format!("{n:05}.bin")), body);
}

/// Prints one head to stderr, each line with its length on the wire (CRLF included).
/// A bearer token is never printed: only its length.
fn show_head(head: &[u8]) {
    let text = String::from_utf8_lossy(head);
    let mut out = format!("--- head, {} B\n", head.len());
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let shown = match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("authorization") => {
                format!("{name}: <{} characters>", value.trim().len())
            }
            _ => line.to_string(),
        };
        out.push_str(&format!("{:4}  {shown}\n", line.len() + 2));
    }
    eprint!("{out}");
}

/// Follows HTTP/1.1 messages framed by `Content-Length` in one direction.
#[derive(Default)]
struct Framer {
    head: Vec<u8>,
    /// The body so far, when bodies are kept ([`BODIES`]).
    body: Vec<u8>,
    body_left: u64,
    /// Set when a message is framed otherwise; reported once, then parsing stops.
    lost: bool,
    gave_up: bool,
}

impl Framer {
    /// Consumes `data`, calling `on_head` with every complete message head.
    fn feed(&mut self, mut data: &[u8], mut on_head: impl FnMut(&[u8])) {
        while !data.is_empty() && !self.gave_up && !self.lost {
            if self.body_left > 0 {
                let k = (self.body_left as usize).min(data.len());
                self.body_left -= k as u64;
                if let Some(dir) = BODIES.as_ref() {
                    self.body.extend_from_slice(&data[..k]);
                    if self.body_left == 0 {
                        keep_body(dir, &std::mem::take(&mut self.body));
                    }
                }
                data = &data[k..];
                continue;
            }
            let before = self.head.len();
            let search_from = before.saturating_sub(3);
            self.head.extend_from_slice(data);
            let Some(pos) = find(&self.head[search_from..], b"\r\n\r\n") else {
                return;
            };
            let end = search_from + pos + 4;
            data = &data[end - before..];
            let head = std::mem::take(&mut self.head);
            let head = &head[..end];
            on_head(head);
            match framing(head) {
                Some(len) => self.body_left = len,
                None => self.lost = true,
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body length of a message head: its `Content-Length`, 0 when there is none, or
/// `None` when the body is chunked.
fn framing(head: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(head);
    let mut len = 0;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if name == "content-length" {
            len = value.trim().parse().unwrap_or(0);
        } else if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
            return None;
        }
    }
    Some(len)
}
