//! A background sync loop for host apps: syncs every `interval`, backs off with jitter
//! after failures (offline, cut, 5xx, a passing 4xx), stops only when a person must act
//! (the device was revoked, the app is too old), and stops cleanly when asked. It opens its own store handle (its own Automerge session).

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{SyncError, SyncOptions, SyncSummary, sync};
use crate::store::{Key, Store};

/// What the loop reports after each attempt.
pub type Report = Result<SyncSummary, SyncError>;

/// A running loop; dropping it stops it too.
pub struct SyncLoop {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SyncLoop {
    /// Starts syncing the store in `dir` every `interval`; `report` is called after
    /// every attempt (from the loop's thread).
    pub fn start(
        dir: PathBuf,
        key: Key,
        interval: Duration,
        mut report: impl FnMut(&Report) + Send + 'static,
    ) -> SyncLoop {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut store = match Store::open(&dir, &key) {
                Ok(s) => s,
                Err(e) => return report(&Err(e.into())),
            };
            let mut failures = 0u32;
            loop {
                let result = sync(&mut store, &SyncOptions::default(), &mut |_| {});
                let wait = match &result {
                    Ok(_) => {
                        failures = 0;
                        interval
                    }
                    Err(e) if e.stops_the_loop() => {
                        report(&result);
                        return; // revoked, or the app is too old: a person must act
                    }
                    Err(e) => {
                        failures += 1;
                        next_wait(e, backoff(interval, failures))
                    }
                };
                report(&result);
                match rx.recv_timeout(wait) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => return, // asked to stop, or the handle is gone
                }
            }
        });
        SyncLoop {
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// Stops the loop and waits for a sync in progress to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SyncLoop {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How long the loop waits after a failed sync: its backoff, or longer when the server
/// asked for longer (`Retry-After` of a 507 storage full, which ends a sync at once).
pub fn next_wait(e: &SyncError, backoff: Duration) -> Duration {
    e.retry_after().map_or(backoff, |asked| asked.max(backoff))
}

/// Exponential backoff from `base`, capped at 15 minutes, with ±25 % jitter so that a
/// fleet of devices coming back into signal does not retry in lockstep.
pub fn backoff(base: Duration, failures: u32) -> Duration {
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    backoff_with(
        base,
        failures,
        f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX),
    )
}

/// [`backoff`] with its random draw given: `unit` in [0, 1] picks the jitter between
/// 0.75× (0) and 1.25× (1) of `base` doubled per failure up to the cap. Separate so
/// that a test can give the draw (a seeded generator) and check exact values.
pub fn backoff_with(base: Duration, failures: u32, unit: f64) -> Duration {
    let exp = base
        .saturating_mul(1u32 << failures.min(10))
        .min(Duration::from_secs(900));
    exp.mul_f64(0.75 + 0.5 * unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_servers_retry_after_outlasts_a_short_backoff() {
        let base = Duration::from_secs(15);
        let full = SyncError::StorageFull("the server's storage is full".into(), 60);
        assert_eq!(next_wait(&full, base), Duration::from_secs(60));
        // A backoff already longer than the server asked stays.
        assert_eq!(
            next_wait(&full, Duration::from_secs(900)),
            Duration::from_secs(900)
        );
        let cut = SyncError::Retryable("cut".into());
        assert_eq!(next_wait(&cut, base), base);
    }

    /// A seeded generator (SplitMix64) of draws in [0, 1]: the same numbers on every
    /// run, so a failure here is reproduced as it was seen.
    struct Seeded(u64);

    impl Seeded {
        fn unit(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn backoff_doubles_per_failure_up_to_the_cap_with_jitter_between_its_ends() {
        let base = Duration::from_secs(10);
        let secs = |d: Duration| d.as_secs_f64();
        // The jitter's ends and its middle, exactly: 0.75×, 1×, 1.25× of 2 × base.
        assert_eq!(backoff_with(base, 1, 0.0), Duration::from_secs(15));
        assert_eq!(backoff_with(base, 1, 0.5), Duration::from_secs(20));
        assert_eq!(backoff_with(base, 1, 1.0), Duration::from_secs(25));
        // A draw out of range is held to the ends.
        assert_eq!(backoff_with(base, 1, 7.0), Duration::from_secs(25));
        assert_eq!(backoff_with(base, 1, -1.0), Duration::from_secs(15));
        // Doubling per failure until 900 s: 20, 40, 80, 160, 320, 640, then 900.
        let mut want = 10.0;
        for failures in 1..=6 {
            want *= 2.0;
            assert_eq!(secs(backoff_with(base, failures, 0.5)), want, "{failures}");
        }
        for failures in [7, 8, 10, 11, 30, u32::MAX] {
            assert_eq!(backoff_with(base, failures, 0.5), Duration::from_secs(900));
            assert_eq!(backoff_with(base, failures, 0.0), Duration::from_secs(675));
            assert_eq!(backoff_with(base, failures, 1.0), Duration::from_secs(1125));
        }
        // A long base is capped from the first failure.
        assert_eq!(
            backoff_with(Duration::from_secs(600), 1, 0.5),
            Duration::from_secs(900)
        );

        // Over 1,000 seeded draws the waits spread over both sides of the middle and
        // nearly to both ends: devices that failed together do not retry together.
        let mut rng = Seeded(13);
        let waits: Vec<f64> = (0..1000)
            .map(|_| secs(backoff_with(base, 1, rng.unit())))
            .collect();
        let below = waits.iter().filter(|&&w| w < 20.0).count();
        let above = waits.iter().filter(|&&w| w > 20.0).count();
        assert!(below > 400 && above > 400, "{below} below, {above} above");
        let min = waits.iter().cloned().fold(f64::MAX, f64::min);
        let max = waits.iter().cloned().fold(f64::MIN, f64::max);
        assert!((15.0..15.5).contains(&min), "min {min}");
        assert!((24.5..=25.0).contains(&max), "max {max}");
        let mut distinct = waits.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        assert!(distinct.len() > 900, "{} distinct waits", distinct.len());

        // And the real draw stays within the ends.
        for _ in 0..100 {
            let w = secs(backoff(base, 1));
            assert!((15.0..=25.0).contains(&w), "{w}");
        }
    }
}
