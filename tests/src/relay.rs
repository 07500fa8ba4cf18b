//! The skeleton every loopback TCP relay of the test support shares: a listener on
//! `127.0.0.1:0` with its accept thread, per accepted connection a connection to the
//! upstream and a thread that hands both to the relay's [`Handler`], and a stop that
//! ends it all. The fault proxy ([`crate::proxy`]), the bad 2G link ([`crate::link`]),
//! the TLS test's counting relay and the benchmark's counting proxy are each a handler:
//! only what they do to bytes (faults, rate and cuts, counting) is their own.
//!
//! Dropping a [`Relay`] stops the listener (waking its blocking accept by connecting to
//! it), tells the handler ([`Handler::stop`]), shuts down both sockets of every live
//! connection, so every blocked read or write returns, and joins every connection
//! thread: a test that drops a relay leaves no thread and no socket behind.
//! It is plain `std::net` with a thread per connection.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// What a relay does with its connections: everything that is not the skeleton.
pub trait Handler: Send + Sync + 'static {
    /// Connection number `id` (0 for the first, in accept order) was accepted. Called on
    /// the accept thread before anything else happens to it, even if the upstream then
    /// refuses, so that counters see every connection at once.
    fn accepted(&self, _id: u64) {}

    /// Carries one connection until it ends, on the connection's own thread. Threads it
    /// starts must have ended when it returns (scoped threads): the relay joins only
    /// the connection's thread. Afterwards the relay shuts both sockets down.
    fn serve(&self, conn: Conn);

    /// The relay is stopping: wake whatever the handler's threads wait on other than
    /// their sockets (those are shut down right after this).
    fn stop(&self) {}
}

/// One accepted connection and its own connection to the upstream (both without
/// Nagle's delay: every relay here decides itself when bytes go, or counts them).
pub struct Conn {
    /// The connection's number, in accept order from 0.
    pub id: u64,
    pub client: TcpStream,
    pub upstream: TcpStream,
}

/// A running relay in front of an upstream; stopped (listener, connections, threads)
/// when dropped.
pub struct Relay<H: Handler> {
    addr: SocketAddr,
    inner: Arc<Inner<H>>,
    acceptor: Option<JoinHandle<()>>,
}

/// State shared by the accept thread, the connection threads and the owner.
struct Inner<H> {
    /// Where connections go: one address, or several taken in turn per connection (a
    /// round-robin load balancer in front of several servers).
    upstreams: Vec<SocketAddr>,
    /// Names the relay's threads (`NAME-accept`, `NAME-ID`).
    name: String,
    handler: H,
    stopped: AtomicBool,
    next_id: AtomicU64,
    accepted: AtomicU64,
    open: AtomicU64,
    threads_alive: AtomicU64,
    /// Clones of every live connection's two sockets, so a stop can unblock them.
    sockets: Mutex<HashMap<u64, [TcpStream; 2]>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl<H: Handler> Relay<H> {
    /// Listens on `127.0.0.1:0` and relays every connection to `upstream` through
    /// `handler`.
    pub fn start(name: &str, upstream: SocketAddr, handler: H) -> io::Result<Relay<H>> {
        Relay::start_many(name, vec![upstream], handler)
    }

    /// Like [`Relay::start`], relaying connection number `id` to
    /// `upstreams[id % upstreams.len()]`: a round-robin load balancer.
    pub fn start_many(name: &str, upstreams: Vec<SocketAddr>, handler: H) -> io::Result<Relay<H>> {
        if upstreams.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a relay needs an upstream",
            ));
        }
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            upstreams,
            name: name.to_string(),
            handler,
            stopped: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            open: AtomicU64::new(0),
            threads_alive: AtomicU64::new(0),
            sockets: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
        });
        let for_acceptor = inner.clone();
        let acceptor = std::thread::Builder::new()
            .name(format!("{name}-accept"))
            .spawn(move || accept_loop(listener, for_acceptor))?;
        Ok(Relay {
            addr,
            inner,
            acceptor: Some(acceptor),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The handler, e.g. to read its counters.
    pub fn handler(&self) -> &H {
        &self.inner.handler
    }

    /// Client connections accepted since the start.
    pub fn accepted(&self) -> u64 {
        self.inner.accepted.load(Ordering::SeqCst)
    }

    /// Client connections not yet closed.
    pub fn open(&self) -> u64 {
        self.inner.open.load(Ordering::SeqCst)
    }

    /// Connection threads still running (the accept thread is not counted).
    pub fn threads_alive(&self) -> u64 {
        self.inner.threads_alive.load(Ordering::SeqCst)
    }
}

impl<H: Handler> Drop for Relay<H> {
    fn drop(&mut self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.handler.stop();
        // Wake the blocking accept; it sees the flag and returns.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        // No connection starts from here on. Shutting the sockets down makes every
        // blocked read or write return, so each connection's thread ends.
        for pair in lock(&self.inner.sockets).values() {
            for s in pair {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let threads = std::mem::take(&mut *lock(&self.inner.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Locks a mutex; a panicking connection thread must not stop the relay's shutdown.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn accept_loop<H: Handler>(listener: TcpListener, inner: Arc<Inner<H>>) {
    for stream in listener.incoming() {
        if inner.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = stream else { continue };
        inner.accepted.fetch_add(1, Ordering::SeqCst);
        let id = inner.next_id.fetch_add(1, Ordering::SeqCst);
        inner.handler.accepted(id);
        // Counted here, before the thread runs, so a caller never sees a connection
        // accepted but not yet counted as open.
        inner.open.fetch_add(1, Ordering::SeqCst);
        inner.threads_alive.fetch_add(1, Ordering::SeqCst);
        let for_thread = inner.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{id}", inner.name))
            .spawn(move || {
                let _alive = Decrement(&for_thread.threads_alive);
                connection(&for_thread, id, client);
            });
        let mut threads = lock(&inner.threads);
        threads.retain(|t| !t.is_finished());
        match spawned {
            Ok(t) => threads.push(t),
            // The connection is dropped, i.e. closed: to its client, a cut.
            Err(_) => {
                inner.open.fetch_sub(1, Ordering::SeqCst);
                inner.threads_alive.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// Decrements a counter when dropped, also when the thread panics.
struct Decrement<'a>(&'a AtomicU64);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// When dropped (also on a panic in the handler): shuts connection `id`'s sockets down,
/// forgets them and counts the connection closed.
struct Closing<'a, H> {
    inner: &'a Inner<H>,
    id: u64,
}

impl<H> Drop for Closing<'_, H> {
    fn drop(&mut self) {
        if let Some(pair) = lock(&self.inner.sockets).remove(&self.id) {
            for s in &pair {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        self.inner.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Connects connection `id` to the upstream and hands both to the handler.
fn connection<H: Handler>(inner: &Inner<H>, id: u64, client: TcpStream) {
    let _closing = Closing { inner, id };
    let target = inner.upstreams[(id % inner.upstreams.len() as u64) as usize];
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    {
        let (Ok(c), Ok(u)) = (client.try_clone(), upstream.try_clone()) else {
            return;
        };
        let mut sockets = lock(&inner.sockets);
        // Checked under the lock `Drop` sweeps with: either this connection is in the
        // sweep, or it sees the flag here.
        if inner.stopped.load(Ordering::SeqCst) {
            return;
        }
        sockets.insert(id, [c, u]);
    }
    inner.handler.serve(Conn {
        id,
        client,
        upstream,
    });
    // `_closing` shuts the sockets down; the last handle dropped closes them, so bytes
    // a handler left unread reach the peer as a reset.
}

/// Copies `from` to `to` until `from` ends or either fails, showing each chunk to
/// `seen` as it is read, before it is written on; then ends `to`'s sending side, so a
/// half-close passes on (HTTP clients may close their sending side and still read).
pub fn pipe(mut from: &TcpStream, mut to: &TcpStream, mut seen: impl FnMut(&[u8])) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        seen(&buf[..n]);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Carries `conn` both ways byte for byte (client→server on a scoped thread of its
/// own), showing what goes up to `up` and what comes down to `down`; returns when both
/// directions have ended.
pub fn both_ways(conn: &Conn, up: impl FnMut(&[u8]) + Send, down: impl FnMut(&[u8])) {
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new()
            .name(format!("relay-{}-up", conn.id))
            .spawn_scoped(s, || pipe(&conn.client, &conn.upstream, up));
        if spawned.is_err() {
            // Without its other half the connection cannot work: end it.
            let _ = conn.client.shutdown(Shutdown::Both);
            let _ = conn.upstream.shutdown(Shutdown::Both);
            return;
        }
        pipe(&conn.upstream, &conn.client, down);
    });
}

/// A small deterministic generator (SplitMix64) for the relays' seeded faults and cuts:
/// the same seed replays the same run.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer in [0, n); 0 when n is 0.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}
