//! Whether this device's clock is clearly wrong (issue 13, clock skew). Every sync
//! answer carries the server's time in its HTTP `Date` header; the store keeps how far
//! its own clock stood from it at the last answer (in `meta`). A device whose clock is
//! off by more than [`CLEARLY_WRONG`] says so wherever it shows times (the CLI's
//! `show` and `list`, the field app), because the times it records are that clock's:
//! the supervisors' dashboard marks them too, from the server's receipts. No decision
//! reads it.

use chrono::{DateTime, Duration, Utc};
pub use intake_shared::skew::{CLEARLY_WRONG, ClockError};

use super::sync_state::{get_meta, set_meta};
use super::{Store, StoreError};

/// The device clock minus the server's, in milliseconds, at the last answer.
const CLOCK_OFFSET: &str = "clock_offset_ms";

/// `Date` has whole seconds, and the answer took a moment to arrive: an offset this
/// small is noise.
const PRECISION: Duration = Duration::seconds(2);

impl Store {
    /// Notes the server's time from an answer just received (`None`: it sent none).
    /// Writes only when the offset moved by more than the header's precision.
    pub(crate) fn note_server_time(&self, server: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        let Some(server) = server else {
            return Ok(());
        };
        let offset = (self.now() - server).num_milliseconds();
        let known = self.clock_offset()?;
        if known.is_none_or(|k| (k - Duration::milliseconds(offset)).abs() > PRECISION) {
            set_meta(&self.conn, CLOCK_OFFSET, offset.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// How far this device's clock stood from the server's at the last sync answer.
    pub fn clock_offset(&self) -> Result<Option<Duration>, StoreError> {
        Ok(get_meta(&self.conn, CLOCK_OFFSET)?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<i64>().ok())
            .map(Duration::milliseconds))
    }

    /// Set when this device's clock was clearly wrong at the last sync: ahead of or
    /// behind the server's by more than [`CLEARLY_WRONG`].
    pub fn clock_error(&self) -> Result<Option<ClockError>, StoreError> {
        Ok(self.clock_offset()?.and_then(|d| {
            if d > CLEARLY_WRONG + PRECISION {
                Some(ClockError::Ahead(d))
            } else if -d > CLEARLY_WRONG + PRECISION {
                Some(ClockError::Behind(-d))
            } else {
                None
            }
        }))
    }
}

/// The server's time from an HTTP `Date` header (`Sat, 28 Nov 2026 17:00:50 GMT`).
pub(crate) fn http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_header_parses() {
        let d = http_date("Sat, 28 Nov 2026 17:00:50 GMT").unwrap();
        assert_eq!(d.to_rfc3339(), "2026-11-28T17:00:50+00:00");
        assert_eq!(http_date("yesterday"), None);
    }
}
