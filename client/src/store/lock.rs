//! Lock after N days without a successful sync (issue 12). A server can set
//! `lock_after_days`; the device learns it at enrolment and from every sync answer,
//! and keeps it with the time of its last successful sync (both in `meta`, inside the
//! encrypted store). Past the limit, reading and writing records fails with
//! [`StoreError::Locked`] until a sync succeeds — which stays allowed, so a device
//! that finds signal again unlocks itself. A phone found in a drawer months later
//! shows nothing to whoever learned its passphrase, unless they can also sync, which
//! needs the device's token to be still valid (revoke it).
//!
//! The time is the store's clock ([`Store::set_clock`], the system clock unless a test
//! or host app injects one). A clock set back defeats the lock: see
//! `docs/SECURITY.md`.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::sync_state::{get_meta, set_meta};
use super::{Store, StoreError};

/// Where the store's "now" comes from.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// How stale the stored time of the last successful sync may get before a sync writes
/// it again: a sync that changes nothing should write (almost) nothing, and the lock
/// counts in days.
const WRITE_GRAIN: Duration = Duration::hours(1);

const LOCK_AFTER_DAYS: &str = "lock_after_days";
const SYNC_OK_AT: &str = "sync_ok_at";

impl Store {
    /// Sets where this store's "now" comes from (for the lock after N days; a test
    /// moves it instead of waiting days).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The store's "now".
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The server's setting, as last learned: lock after this many days without a
    /// successful sync (`None`: never).
    pub fn lock_after_days(&self) -> Result<Option<u32>, StoreError> {
        Ok(get_meta(&self.conn, LOCK_AFTER_DAYS)?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|d| *d > 0))
    }

    /// When a sync last succeeded (or the device enrolled), for the lock.
    pub fn sync_ok_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(get_meta(&self.conn, SYNC_OK_AT)?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|d| d.with_timezone(&Utc)))
    }

    /// Records a successful sync (or an enrolment) and the server's setting, if it
    /// said one (`Some(0)`: no lock). Writes only what changed, and the time only when
    /// it moved by more than [`WRITE_GRAIN`].
    pub(crate) fn note_sync_ok(&self, lock_after_days: Option<u32>) -> Result<(), StoreError> {
        let now = self.now();
        if let Some(days) = lock_after_days
            && self.lock_after_days()?.unwrap_or(0) != days
        {
            set_meta(&self.conn, LOCK_AFTER_DAYS, days.to_string().as_bytes())?;
        }
        // A stored time ahead of "now" (a clock that ran ahead, then was corrected)
        // is kept, so the lock comes later than it should (a wrong clock weakens it
        // either way: docs/SECURITY.md); rewriting it would let two handles whose
        // clocks disagree lock each other right after a sync.
        let stale = self.sync_ok_at()?.is_none_or(|at| now - at >= WRITE_GRAIN);
        if stale {
            set_meta(&self.conn, SYNC_OK_AT, now.to_rfc3339().as_bytes())?;
        }
        Ok(())
    }

    /// `Err(Locked)` when the server's limit has passed since the last successful
    /// sync. A store never enrolled, or enrolled with a server that sets no limit, is
    /// never locked.
    pub fn check_not_locked(&self) -> Result<(), StoreError> {
        let Some(days) = self.lock_after_days()? else {
            return Ok(());
        };
        let Some(at) = self.sync_ok_at()? else {
            return Ok(());
        };
        if self.now() - at >= Duration::days(i64::from(days)) {
            return Err(StoreError::Locked { days });
        }
        Ok(())
    }
}
