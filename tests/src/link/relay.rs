//! The threads that carry a connection through the link, as the link's
//! [`crate::relay::Handler`] (the relay skeleton accepts connections and connects them
//! to the server): per connection a reader and a writer each way (see the model in
//! [`super`]). Readers charge the connection's budget and stamp chunks with their
//! delivery time; writers sleep until each is due.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Condvar, Mutex};
use std::thread::Scope;
use std::time::Instant;

use super::LinkConfig;
use crate::relay::{self, Handler, lock};

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

/// The link's state, shared by the connection threads and the owner.
pub(super) struct Shared {
    pub(super) config: LinkConfig,
    pub(super) counters: Counters,
    /// Set when the link is dropped; writers sleeping until a chunk is due wait on
    /// `wake` so that they notice at once.
    pub(super) stopped: Mutex<bool>,
    pub(super) wake: Condvar,
}

impl Handler for Shared {
    fn accepted(&self, _id: u64) {
        self.counters.connections.fetch_add(1, Ordering::SeqCst);
    }

    fn serve(&self, conn: relay::Conn) {
        connection(self, conn);
    }

    fn stop(&self) {
        *lock(&self.stopped) = true;
        // Writers waiting for a chunk to fall due give up now, not when it is due.
        self.wake.notify_all();
    }
}

impl Shared {
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
/// or the link stopping); the relay then closes both sockets.
fn connection(
    shared: &Shared,
    relay::Conn {
        id,
        client,
        upstream,
    }: relay::Conn,
) {
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
    // The relay shuts the sockets down and drops its clones of them too: the kernel
    // then closes them, and unread bytes (what a cut refused) reach the peer as a reset.
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
