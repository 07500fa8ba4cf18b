//! Enrolment and sync through the bindings: `enroll` binds the device to a server with
//! a one-time code, `sync` runs one sync now with a progress callback and returns a
//! typed summary, and a background sync (the library's `SyncLoop`) runs until the app
//! stops it, telling a listener when records changed. Both kinds of sync run on a
//! database connection of their own, so the app's reads and edits on the handle do not
//! wait for the network.
//!
//! `enroll` and `sync` **block** for network round trips (seconds on a 2G link, up to
//! the library's timeouts when the server does not answer): call them from a worker
//! (Android WorkManager, iOS BGTaskScheduler, or at least a background thread), never
//! from the UI thread. Starting and stopping the background sync return at once; its
//! listener is called on the loop's own thread.

use std::sync::{Arc, Weak};
use std::time::Duration;

use intake_client::sync::background::{Report, SyncLoop};
use intake_client::sync::{Permanent, Progress, SyncError, SyncOptions};
use intake_client::{Store, SyncSummary};

use crate::IntakeError;
use crate::store::{IntakeStore, State, locked, stop_detached};

/// What a sync did so far (during it, in a progress report) or in all (its result).
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Records whose changes the server stored.
    pub sent: u64,
    /// Records whose changes the server refused (reasons in each record's
    /// `sync_error`).
    pub refused: u64,
    /// Records received, new or changed.
    pub received: u64,
    /// Records dropped because this user may no longer see them.
    pub removed: u64,
    /// Records an administrator erased for good.
    pub erased: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub requests: u64,
    /// Round trips that failed (a cut, a timeout) and were tried again at once.
    pub retries: u64,
    /// Records still holding changes the server does not have.
    pub unsynced: u64,
    /// Whether the server has more to send (in progress reports; false at the end).
    pub more: bool,
}

impl SyncReport {
    fn new(s: &SyncSummary, more: bool) -> Self {
        let n = |v: usize| v as u64;
        SyncReport {
            sent: n(s.sent),
            refused: n(s.refused),
            received: n(s.received),
            removed: n(s.removed),
            erased: n(s.erased),
            bytes_up: n(s.bytes_up),
            bytes_down: n(s.bytes_down),
            requests: n(s.requests),
            retries: n(s.retries),
            unsynced: n(s.unsynced),
            more,
        }
    }

    /// Whether the sync changed what the store holds (records arrived, were dropped or
    /// erased): a list on screen must be read again.
    fn changed_records(&self) -> bool {
        self.received + self.removed + self.erased > 0
    }
}

/// Limits of one sync, for a metered or flaky link: the most it asks for at once.
/// Without them the library's defaults apply (1 MiB pages, 2 MiB pushes).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncSettings {
    /// The largest response page to ask for (bytes before compression).
    pub page_bytes: u32,
    /// Roughly how many bytes of changes to push per request.
    pub push_bytes: u64,
    /// The most records in one request.
    pub max_records: u32,
}

impl From<SyncSettings> for SyncOptions {
    fn from(s: SyncSettings) -> Self {
        SyncOptions {
            page_bytes: s.page_bytes,
            push_bytes: usize::try_from(s.push_bytes).unwrap_or(usize::MAX),
            max_records: s.max_records,
        }
    }
}

/// The server this device is enrolled with, and as whom.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct EnrolmentInfo {
    pub server: String,
    pub user: String,
    /// `paralegal`, `supervisor` or `admin`.
    pub role: String,
    pub team: Option<String>,
    pub device_id: i64,
}

impl From<intake_client::Enrolment> for EnrolmentInfo {
    fn from(e: intake_client::Enrolment) -> Self {
        EnrolmentInfo {
            server: e.server,
            user: e.user,
            role: e.role,
            team: e.team,
            device_id: e.device_id,
        }
    }
}

/// Told of a sync's progress after each round trip, on the thread that called
/// `sync`. It must return quickly and must not throw; to update the UI, post to the
/// main thread.
#[uniffi::export(with_foreign)]
pub trait SyncProgress: Send + Sync {
    fn on_progress(&self, report: SyncReport);
}

/// Told what the background sync did, on the loop's own thread (post to the main
/// thread to update the UI). Methods must return quickly and must not throw.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    /// A sync received, dropped or erased records: read the list again.
    fn records_changed(&self, report: SyncReport);
    /// A sync failed. `retryable`: the loop tries again after a backoff; otherwise
    /// (`stopped`) it has stopped and a person must act (the device was revoked or
    /// wiped, the app is too old, the device is not enrolled).
    fn sync_failed(&self, reason: String, retryable: bool, stopped: bool);
}

/// A connection of its own on the store of `handle`, for a sync.
fn own_connection(handle: &IntakeStore) -> Result<Store, IntakeError> {
    let key = handle.key()?;
    Ok(Store::open(&handle.dir, &key)?)
}

/// A sync that found the device wiped on the server's order destroyed the files; the
/// app's handle is closed as wiped too.
fn is_wiped(e: &SyncError) -> bool {
    matches!(
        e,
        SyncError::Permanent {
            kind: Permanent::Wiped,
            ..
        }
    )
}

#[uniffi::export]
impl IntakeStore {
    /// Enrols this device with `server` (`https://…`; plain `http://` only to this
    /// machine) using a one-time code from an administrator; `label` names the device
    /// in the server's device list. `ca_file`: a PEM file of a private CA the server's
    /// certificate is signed by. The token is kept inside the encrypted store. Blocks
    /// for a round trip.
    pub fn enroll(
        &self,
        server: String,
        code: String,
        label: String,
        ca_file: Option<String>,
    ) -> Result<EnrolmentInfo, IntakeError> {
        self.with_store(|store, _| {
            if let Some(existing) = store.enrolment()? {
                return Err(IntakeError::EnrolmentFailed {
                    reason: format!(
                        "this device is already enrolled with {} as {}",
                        existing.server, existing.user
                    ),
                });
            }
            Ok(intake_client::enroll(store, &server, &code, &label, ca_file.as_deref())?.into())
        })
    }

    /// The enrolment, if the device is enrolled. Blocks (a read).
    pub fn enrolment(&self) -> Result<Option<EnrolmentInfo>, IntakeError> {
        self.with_store(|store, _| Ok(store.enrolment()?.map(Into::into)))
    }

    /// How many records hold changes the server does not have. Blocks (a read).
    pub fn unsynced_count(&self) -> Result<u64, IntakeError> {
        self.with_store(|store, _| Ok(store.unsynced()? as u64))
    }

    /// Syncs now: sends what the server lacks, receives what this device lacks, page
    /// by page (each committed as it arrives: a cut loses at most the page in flight).
    /// `progress` is told after each round trip. Blocks for the whole sync. If the
    /// server ordered this device wiped, the store is destroyed and this is `Wiped`.
    pub fn sync(
        &self,
        progress: Option<Arc<dyn SyncProgress>>,
        settings: Option<SyncSettings>,
    ) -> Result<SyncReport, IntakeError> {
        let mut store = own_connection(self)?;
        let options = settings.map(SyncOptions::from).unwrap_or_default();
        let mut on_progress = |p: &Progress| {
            if let Some(progress) = &progress {
                progress.on_progress(SyncReport::new(&p.summary, p.more));
            }
        };
        match intake_client::sync(&mut store, &options, &mut on_progress) {
            Ok(summary) => Ok(SyncReport::new(&summary, false)),
            Err(e) => {
                if is_wiped(&e) {
                    drop(store);
                    self.wiped_remotely();
                }
                Err(e.into())
            }
        }
    }

    /// Starts syncing in the background every `interval_secs` (backing off after
    /// failures, stopping only when a person must act), telling `listener` what
    /// happened. A loop already running is replaced. Returns at once.
    pub fn start_background_sync(
        self: Arc<Self>,
        interval_secs: u64,
        listener: Arc<dyn SyncListener>,
    ) -> Result<(), IntakeError> {
        let key = self.key()?;
        let me: Weak<IntakeStore> = Arc::downgrade(&self);
        let report = move |report: &Report| match report {
            Ok(summary) => {
                let report = SyncReport::new(summary, false);
                if report.changed_records() {
                    listener.records_changed(report);
                }
            }
            Err(e) => {
                listener.sync_failed(e.to_string(), e.is_retryable(), e.stops_the_loop());
                if is_wiped(e) {
                    // On a thread of its own: closing the handle stops this loop,
                    // which waits for the thread this runs on.
                    let me = me.clone();
                    let _ = std::thread::Builder::new()
                        .name("intake-wiped".into())
                        .spawn(move || {
                            if let Some(handle) = me.upgrade() {
                                handle.wiped_remotely();
                            }
                        });
                }
            }
        };
        let started = SyncLoop::start(
            self.dir.clone(),
            key,
            Duration::from_secs(interval_secs.max(1)),
            report,
        );
        match &mut *locked(&self.state) {
            State::Open(o) => {
                stop_detached(o.background.replace(started));
                Ok(())
            }
            // Locked or wiped meanwhile: the loop just started goes too.
            State::Locked => {
                stop_detached(Some(started));
                Err(IntakeError::Locked)
            }
            State::Wiped => {
                stop_detached(Some(started));
                Err(IntakeError::Wiped)
            }
        }
    }

    /// Stops the background sync; a round trip in progress finishes on its own.
    /// Returns at once.
    pub fn stop_background_sync(&self) {
        if let State::Open(o) = &mut *locked(&self.state) {
            stop_detached(o.background.take());
        }
    }
}
