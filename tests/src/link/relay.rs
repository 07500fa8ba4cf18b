//! The threads that carry connections through the link: a listener that accepts them,
//! and per connection a reader and a writer each way (see the model in [`super`]).
//! Readers charge the connection's budget and stamp chunks with their delivery time;
//! writers sleep until each is due.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, Scope};
use std::time::Instant;

use super::LinkConfig;

/// The most a reader takes from a socket at once: small enough that delivery stays
/// smooth at 40 KB/s (4 KiB is 0.1 s of link time).
const CHUNK: usize = 4096;
/// Chunks waiting per direction: 64 KiB, some 1.6 s at 2G speed, about what a 2G
/// network buffers for one phone.
const QUEUE: usize = 16;

/// Which way bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Up,
    Down,
}

/// Live counters, updated by the connection threads.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) bytes_up: AtomicU64,
    pub(super) bytes_down: AtomicU64,
    pub(super) connections: AtomicU64,
    pub(super) cuts_up: AtomicU64,
    pub(super) cuts_down: AtomicU64,
}

impl Counters {
    fn bytes(&self, dir: Dir) -> &AtomicU64 {
        match dir {
            Dir::Up => &self.bytes_up,
            Dir::Down => &self.bytes_down,
        }
    }

    fn cuts(&self, dir: Dir) -> &AtomicU64 {
        match dir {
            Dir::Up => &self.cuts_up,
            Dir::Down => &self.cuts_down,
        }
    }
}

/// State shared by the listener, the connection threads and the owner.
pub(super) struct Shared {
    pub(super) upstream: SocketAddr,
    pub(super) config: LinkConfig,
    pub(super) counters: Counters,
    /// Set when the link is dropped; writers sleeping until a chunk is due wait on
    /// `wake` so that they notice at once.
    pub(super) stopped: Mutex<bool>,
    pub(super) wake: Condvar,
    pub(super) next_connection: AtomicU64,
    /// Clones of every live connection's sockets, so `Drop` can unblock their threads.
    pub(super) sockets: Mutex<HashMap<u64, [TcpStream; 2]>>,
    pub(super) threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn stopped(&self) -> bool {
        *lock(&self.stopped)
    }

    /// Sleeps until `due`; false if the link stopped first.
    fn wait_until(&self, due: Instant) -> bool {
        let mut stopped = lock(&self.stopped);
        loop {
            if *stopped {
                return false;
            }
            let now = Instant::now();
            if now >= due {
                return true;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, due - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// Locks a mutex; a panicking connection thread must not stop the link's shutdown.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped() {
            return;
        }
        let Ok(client) = stream else { continue };
        shared.counters.connections.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
        let for_thread = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("link-{id}"))
            .spawn(move || connection(&for_thread, id, client));
        let mut threads = lock(&shared.threads);
        threads.retain(|t| !t.is_finished());
        // A connection whose thread cannot start is dropped, i.e. closed: a cut too.
        if let Ok(t) = spawned {
            threads.push(t);
        }
    }
}

/// One client connection and its way to the server.
struct Conn<'a> {
    shared: &'a Shared,
    client: TcpStream,
    upstream: TcpStream,
    /// Bytes the connection may still carry, both directions together; `None`: no cuts.
    budget: Option<AtomicU64>,
}

impl Conn<'_> {
    /// Takes up to `want` bytes from the budget: how many were granted, and whether
    /// this took the last of it.
    fn take(&self, want: u64) -> (u64, bool) {
        let Some(budget) = &self.budget else {
            return (want, false);
        };
        let left = budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                Some(left - left.min(want))
            })
            .unwrap_or(0);
        let granted = left.min(want);
        (granted, left > 0 && granted == left)
    }

    /// The budget ran out forwarding `dir`: count the cut and stop the other direction's
    /// reader (a shut read half ends its blocking read); both writers still deliver what
    /// was granted before the sockets close.
    fn cut(&self, dir: Dir) {
        self.shared
            .counters
            .cuts(dir)
            .fetch_add(1, Ordering::SeqCst);
        let other_source = match dir {
            Dir::Up => &self.upstream,
            Dir::Down => &self.client,
        };
        let _ = other_source.shutdown(Shutdown::Read);
    }

    /// Ends the connection at once (a peer went away, or a thread could not start).
    fn kill(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

/// Serves one client connection until both directions end (by end of stream, a cut
/// or the link stopping), then closes both sockets.
fn connection(shared: &Shared, id: u64, client: TcpStream) {
    let Ok(upstream) = TcpStream::connect(shared.upstream) else {
        return;
    };
    // The link decides when bytes go; Nagle must not hold a chunk back on top of that.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    {
        let (Ok(c), Ok(u)) = (client.try_clone(), upstream.try_clone()) else {
            return;
        };
        let mut sockets = lock(&shared.sockets);
        // Checked under the lock `Drop` sweeps with: either this connection is in the
        // sweep, or it sees the flag here.
        if shared.stopped() {
            return;
        }
        sockets.insert(id, [c, u]);
    }
    let conn = Conn {
        shared,
        client,
        upstream,
        budget: shared.config.budget(id).map(AtomicU64::new),
    };
    let (up_tx, up_rx) = mpsc::sync_channel(QUEUE);
    let (down_tx, down_rx) = mpsc::sync_channel(QUEUE);
    std::thread::scope(|s| {
        let conn = &conn;
        spawn(s, conn, format!("link-{id}-up-read"), move || {
            read_side(conn, Dir::Up, up_tx)
        });
        spawn(s, conn, format!("link-{id}-up-write"), move || {
            write_side(conn, Dir::Up, up_rx)
        });
        spawn(s, conn, format!("link-{id}-down-read"), move || {
            read_side(conn, Dir::Down, down_tx)
        });
        write_side(conn, Dir::Down, down_rx);
    });
    // Dropping the registered clones too makes the kernel close the sockets; unread
    // bytes (what a cut refused) then reach the peer as a reset.
    lock(&shared.sockets).remove(&id);
    conn.kill();
}

/// Starts one of a connection's threads; if it cannot start, its channel end is dropped
/// with the closure and the connection is ended.
fn spawn<'scope>(
    s: &'scope Scope<'scope, '_>,
    conn: &Conn<'_>,
    name: String,
    f: impl FnOnce() + Send + 'scope,
) {
    if std::thread::Builder::new()
        .name(name)
        .spawn_scoped(s, f)
        .is_err()
    {
        conn.kill();
    }
}

/// A chunk of bytes and when it reaches the other end.
struct Chunk {
    due: Instant,
    bytes: Vec<u8>,
}

/// Reads one direction's source, charges the budget and queues each chunk with its
/// delivery time. Ends at end of stream, on an error, or at a cut.
fn read_side(conn: &Conn<'_>, dir: Dir, queue: SyncSender<Chunk>) {
    let config = &conn.shared.config;
    let mut from = match dir {
        Dir::Up => &conn.client,
        Dir::Down => &conn.upstream,
    };
    // When the previous chunk has finished leaving.
    let mut free_at = Instant::now();
    let mut buf = [0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A reset ends this direction like an end of stream; the other finishes
            // on its own (a write to the gone peer fails and ends the connection).
            Err(_) => return,
        };
        let (granted, last) = conn.take(n as u64);
        if granted > 0 {
            let left = free_at.max(Instant::now()) + config.serialisation(granted);
            free_at = left;
            let chunk = Chunk {
                due: left + config.rtt / 2,
                bytes: buf[..granted as usize].to_vec(),
            };
            if queue.send(chunk).is_err() {
                return;
            }
        }
        if last {
            conn.cut(dir);
        }
        if granted < n as u64 || last {
            // Cut: by this direction, or by the other one since the last read.
            return;
        }
    }
}

/// Delivers one direction's chunks when they fall due, then passes the end of stream on.
fn write_side(conn: &Conn<'_>, dir: Dir, queue: Receiver<Chunk>) {
    let mut to = match dir {
        Dir::Up => &conn.upstream,
        Dir::Down => &conn.client,
    };
    for chunk in queue {
        if !conn.shared.wait_until(chunk.due) {
            return;
        }
        if to.write_all(&chunk.bytes).is_err() {
            conn.kill();
            return;
        }
        conn.shared
            .counters
            .bytes(dir)
            .fetch_add(chunk.bytes.len() as u64, Ordering::SeqCst);
    }
    // The reader ended: a half-close carries an end of stream on (HTTP clients may
    // close their sending side and still read the answer); after a cut, the
    // connection closes whole once both writers are done.
    let _ = to.shutdown(Shutdown::Write);
}
