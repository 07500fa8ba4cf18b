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

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

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

/// Each device's heavy syncs at work (issue 16). A device sends its next push while
/// the server stores the last. With a permit free, that one takes it and both are at
/// work at once. With none free, it is not refused when the permit it lacks is held by
/// its own device's push before it: it waits, without a thread, for one of its own to
/// end and takes the permit given back. Otherwise a server with one permit would
/// refuse every push sent ahead.
///
/// A device's entry stays once made: a few dozen bytes for each device that ever sent
/// a heavy sync to this process.
#[derive(Debug, Default)]
pub struct DeviceTurns {
    devices: Mutex<HashMap<i64, Arc<DeviceWork>>>,
}

/// One device's heavy syncs at work, and a bell rung when one ends.
#[derive(Debug, Default)]
struct DeviceWork {
    at_work: AtomicUsize,
    ended: Notify,
}

/// A device's heavy sync at work, held with its permit; ends when dropped.
#[derive(Debug)]
pub struct AtWork {
    work: Arc<DeviceWork>,
}

impl Drop for AtWork {
    fn drop(&mut self) {
        self.work.at_work.fetch_sub(1, Ordering::AcqRel);
        self.work.ended.notify_waiters();
    }
}

impl DeviceTurns {
    fn of(&self, device: i64) -> Arc<DeviceWork> {
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        devices.entry(device).or_default().clone()
    }

    /// Whether `device` has a heavy sync at work now. (Asked of every sync: it makes
    /// no entry for a device that never sent a heavy one.)
    pub fn at_work(&self, device: i64) -> bool {
        let devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        devices
            .get(&device)
            .is_some_and(|w| w.at_work.load(Ordering::Acquire) > 0)
    }

    /// A permit for a heavy sync of `device`: one free now, or else, while one of the
    /// device's own heavy syncs is at work, the one it gives back (waiting up to
    /// `wait` in all). `None` when none came: the sync is answered busy.
    pub async fn enter(
        &self,
        gate: &Arc<Gate>,
        device: i64,
        wait: Duration,
    ) -> Option<(Permit, AtWork)> {
        let work = self.of(device);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Listening before looking: an end between the two is not missed.
            let ended = work.ended.notified();
            if let Some(permit) = gate.try_enter() {
                drop(ended);
                work.at_work.fetch_add(1, Ordering::AcqRel);
                return Some((permit, AtWork { work }));
            }
            if work.at_work.load(Ordering::Acquire) == 0 {
                return None;
            }
            tokio::time::timeout_at(deadline, ended).await.ok()?;
        }
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

    #[tokio::test]
    async fn a_device_waits_for_the_permit_its_own_sync_holds_and_no_other() {
        let gate = Gate::new(1);
        let turns = DeviceTurns::default();
        let wait = Duration::from_millis(50);
        let first = turns.enter(&gate, 1, wait).await.expect("the permit");
        assert!(turns.at_work(1) && !turns.at_work(2));
        assert_eq!(
            turns.devices.lock().unwrap().len(),
            1,
            "asking made no entry"
        );
        // Another device is refused at once, and so is device 1 while its first is
        // at work past the wait.
        assert!(
            turns
                .enter(&gate, 2, Duration::from_secs(60))
                .await
                .is_none()
        );
        assert!(turns.enter(&gate, 1, wait).await.is_none());
        // Device 1's next, waiting, takes the permit its first gives back.
        let (next, _) = tokio::join!(turns.enter(&gate, 1, Duration::from_secs(60)), async {
            tokio::time::sleep(wait).await;
            drop(first);
        });
        let next = next.expect("the permit given back");
        assert!(turns.at_work(1));
        assert_eq!(gate.in_use(), 1);
        drop(next);
        assert!(!turns.at_work(1));
        assert_eq!(gate.in_use(), 0);
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
