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
                    Err(_) => {
                        failures += 1;
                        backoff(interval, failures)
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

/// Exponential backoff from `base`, capped at 15 minutes, with ±25 % jitter so that a
/// fleet of devices coming back into signal does not retry in lockstep.
pub fn backoff(base: Duration, failures: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << failures.min(10))
        .min(Duration::from_secs(900));
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let jitter = (u16::from_le_bytes(r) as f64 / u16::MAX as f64) * 0.5 + 0.75;
    exp.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_secs(10);
        let one = backoff(base, 1);
        assert!(
            one >= Duration::from_secs(15) && one <= Duration::from_secs(25),
            "{one:?}"
        );
        let many = backoff(base, 30);
        assert!(
            many <= Duration::from_secs(1125) && many >= Duration::from_secs(675),
            "{many:?}"
        );
    }
}
