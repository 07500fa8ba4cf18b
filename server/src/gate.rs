//! The gate in front of heavy syncs: at most `[limits] max_heavy_syncs` of them do
//! their expensive work at once, and one that finds every permit taken is answered
//! `503 busy` at once instead of queueing. Without it, a burst of large pushes (or of
//! answers compressed at zstd's top levels) runs side by side on the blocking pool,
//! each slower for the others, and memory grows with every one of them.
//!
//! What counts as heavy is decided in `routes/sync.rs` with the sizes below; this
//! module only counts permits. It is non-blocking on purpose: a request never waits
//! for a permit while holding a thread, and the device already treats 503 as "retry
//! later".
//!
//! Per process by design, also when several servers share a PostgreSQL database
//! (issue 14): what the permits protect is this process's CPU and memory, which is
//! what a heavy sync uses up (the database write at its end is short). Each server of
//! N takes `max_heavy_syncs` of its own, as each has its own cores; a shared count
//! would let a burst on one server refuse syncs on an idle other.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A sync whose body is larger than this, as sent (compressed), is heavy. A device's
/// no-op sync or a push of a few edited records is a few KiB.
pub const HEAVY_BODY_BYTES: usize = 64 << 10;

/// A sync whose body decompresses to more than this is heavy, whatever its size as
/// sent: its decoding, judging and merging cost follows the decompressed bytes.
/// Eight times [`HEAVY_BODY_BYTES`]: more than an honest push compresses by, so a push
/// is rarely found heavy only after decompression.
pub const HEAVY_DECOMPRESSED_BYTES: usize = 8 * HEAVY_BODY_BYTES;

/// An answer larger than this is compressed at the protocol's level (up to 19, about
/// half a second a MiB) only under a permit; without one it is compressed at
/// [`QUICK_LEVEL`].
pub const HEAVY_ANSWER_BYTES: usize = 64 << 10;

/// The zstd level of a large answer when no permit is free: some hundred times quicker
/// than level 19, and about a third larger.
pub const QUICK_LEVEL: i32 = 3;

/// What a `503 busy` answer asks the device to wait, in seconds.
pub const RETRY_AFTER_SECS: u64 = 2;

/// A counting semaphore without waiting: [`Gate::try_enter`] takes a permit or says no.
#[derive(Debug)]
pub struct Gate {
    limit: usize,
    taken: AtomicUsize,
}

/// One heavy sync's permit; given back when dropped (also on an error or a panic).
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
}

impl Gate {
    /// A gate letting `limit` permits out at once (at least one).
    pub fn new(limit: usize) -> Arc<Gate> {
        Arc::new(Gate {
            limit: limit.max(1),
            taken: AtomicUsize::new(0),
        })
    }

    /// How many permits there are.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many permits are out now.
    pub fn in_use(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }

    /// Whether a permit is free now. Another request may take it before this one
    /// does: this only lets a request be refused before it reads its body.
    pub fn has_room(&self) -> bool {
        self.in_use() < self.limit
    }

    /// Takes a permit if one is free.
    pub fn try_enter(self: &Arc<Self>) -> Option<Permit> {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit { gate: self.clone() })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_counted_and_given_back() {
        let gate = Gate::new(2);
        let a = gate.try_enter().expect("a first permit");
        let b = gate.try_enter().expect("a second permit");
        assert!(!gate.has_room());
        assert!(gate.try_enter().is_none());
        drop(a);
        assert!(gate.has_room());
        let c = gate.try_enter().expect("the given-back permit");
        assert_eq!(gate.in_use(), 2);
        drop((b, c));
        assert_eq!(gate.in_use(), 0);
        assert_eq!(Gate::new(0).limit(), 1);
    }

    #[test]
    fn threads_never_take_more_permits_than_there_are() {
        let gate = Gate::new(3);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..2_000 {
                        if let Some(p) = gate.try_enter() {
                            most.fetch_max(gate.in_use(), Ordering::AcqRel);
                            drop(p);
                        }
                    }
                });
            }
        });
        assert!(most.load(Ordering::Acquire) <= 3);
        assert_eq!(gate.in_use(), 0);
    }
}
