//! A counting TCP proxy on loopback, in front of the server: what a device costs is
//! measured at the socket, so HTTP headers, framing and compression are all included.
//!
//! Every accepted connection gets a connection to the server and a thread per
//! direction that copies bytes and adds them to atomic counters. Each direction also
//! follows HTTP/1.1 message framing (a head up to the blank line, then a body of
//! `Content-Length` bytes) to count requests and the bytes spent on heads. A message
//! framed any other way (chunked) is counted as `unframed` and ends the parsing of that
//! direction; the byte counts stay exact regardless.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;

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

/// A running proxy; stops accepting when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`: what devices are pointed at.
    pub url: String,
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `upstream`; follows
    /// HTTP framing when `http` (not over TLS, which it cannot read).
    pub fn start(upstream: SocketAddr, http: bool) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (counters, stop) = (counters.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    counters.connections.fetch_add(1, Relaxed);
                    let counters = counters.clone();
                    std::thread::spawn(move || {
                        if let Err(e) = relay(conn, upstream, &counters, http) {
                            eprintln!("proxy: connection failed: {e}");
                        }
                    });
                }
            })
        };
        Ok(Proxy {
            url: format!("http://{addr}"),
            addr,
            counters,
            stop,
            accept: Some(accept),
        })
    }

    /// Sets every counter to zero (between enrolment and the measured phase).
    pub fn reset(&self) {
        for c in self.counters.all() {
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
        ] = self.counters.all().map(|c| c.load(Relaxed));
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

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Carries one connection both ways until either side closes.
fn relay(client: TcpStream, upstream: SocketAddr, c: &Arc<Counters>, http: bool) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let up = {
        let (from, to, c) = (client.try_clone()?, server.try_clone()?, c.clone());
        std::thread::spawn(move || pump(from, to, Direction::Up, &c, http))
    };
    pump(server, client, Direction::Down, c, http);
    let _ = up.join();
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

fn pump(mut from: TcpStream, mut to: TcpStream, dir: Direction, c: &Counters, http: bool) {
    let mut framer = Framer {
        gave_up: !http,
        ..Framer::default()
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (bytes, heads, messages) = match dir {
            Direction::Up => (&c.up, &c.head_up, &c.requests),
            Direction::Down => (&c.down, &c.head_down, &c.responses),
        };
        bytes.fetch_add(n as u64, Relaxed);
        framer.feed(&buf[..n], |head| {
            heads.fetch_add(head.len() as u64, Relaxed);
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
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Follows HTTP/1.1 messages framed by `Content-Length` in one direction.
#[derive(Default)]
struct Framer {
    head: Vec<u8>,
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
