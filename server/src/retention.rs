//! Retention: records closed longer than `[retention] erase_closed_after_days` are
//! erased for good, by `intake-server retention` (with `--dry-run`, only listed) and
//! once a day by the running server when the setting is on.
//!
//! "Closed since" is the server's own clock: the record index keeps when a record's
//! status became `closed` (`closed_at`, cleared if it reopens), never a time a device
//! wrote. Every function takes `now`, so tests move time instead of waiting.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use intake_shared::RecordId;

use crate::erase::{self, EraseError, Requester};
use crate::storage::Storage;

/// The `[retention]` settings block.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Erase records closed more than this many days ago; 0 (the default): never.
    pub erase_closed_after_days: u32,
}

impl Retention {
    /// Whether retention is on.
    pub fn enabled(&self) -> bool {
        self.erase_closed_after_days > 0
    }

    /// The reason the audit trail gives.
    pub fn reason(&self) -> String {
        format!(
            "retention: closed more than {} days",
            self.erase_closed_after_days
        )
    }
}

/// Records retention would erase at `now`: closed at or before `now - days`, oldest
/// first, with since when. Nothing when retention is off.
pub fn due(
    storage: &dyn Storage,
    retention: &Retention,
    now: DateTime<Utc>,
) -> Result<Vec<(RecordId, DateTime<Utc>)>, EraseError> {
    if !retention.enabled() {
        return Ok(Vec::new());
    }
    let cutoff = now - chrono::Duration::days(i64::from(retention.erase_closed_after_days));
    Ok(storage.closed_before(cutoff)?)
}

/// Erases what [`due`] lists, in one transaction, with the retention reason in the
/// audit trail. Returns how many records were erased.
pub fn apply(
    storage: &dyn Storage,
    retention: &Retention,
    now: DateTime<Utc>,
) -> Result<usize, EraseError> {
    let ids: Vec<RecordId> = due(storage, retention, now)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let who = Requester {
        via: "retention",
        ..Requester::default()
    };
    erase::erase_all(storage, &ids, &retention.reason(), &who, now)
}

/// How often the running server applies retention.
pub const EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// Applies retention now and then once every [`EVERY`], on a thread of its own, for
/// as long as the process runs (`serve`). Nothing is started when retention is off.
pub fn spawn_daily(storage: Arc<dyn Storage>, retention: Retention) {
    if !retention.enabled() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            loop {
                match apply(storage.as_ref(), &retention, Utc::now()) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(erased = n, "retention erased closed records"),
                    Err(e) => tracing::error!(error = %e, "retention failed"),
                }
                std::thread::sleep(EVERY);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start retention");
    }
}
