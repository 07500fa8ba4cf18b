//! Sync failures, classified: every error answers "retry later?". Being offline is a
//! state, not a failure of the app; a retryable error is worth trying again after a
//! backoff; a permanent one needs a person (the device was revoked, the app is too old,
//! the server refused the request) and carries the server's own reason.

/// Why a sync did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No connection to the server (no network, server down, DNS).
    #[error("offline: cannot reach the server ({0})")]
    Offline(String),
    /// Worth retrying later (timeouts, 5xx, 429, a cut connection).
    #[error("temporary problem, will retry: {0}")]
    Retryable(String),
    /// The server is busy with other heavy syncs (503 with `Retry-After`): the same
    /// request will do after that many seconds.
    #[error("the server is busy, will retry in {1} s: {0}")]
    Busy(String, u64),
    /// The server's disk is full (507 with `Retry-After`): nothing of the request was
    /// stored, the device keeps what it holds, and the same request will do once a
    /// person has freed space — not before that many seconds.
    #[error("temporary problem, will retry in {1} s: {0}")]
    StorageFull(String, u64),
    /// The server found a request too large (413): smaller ones will do.
    #[error("the server found a request too large: {0}")]
    TooLarge(String),
    /// Needs a person; retrying unchanged will fail the same way.
    #[error("{kind}: {message}")]
    Permanent { kind: Permanent, message: String },
    /// This device is not enrolled yet.
    #[error("this device is not enrolled: run `intake enroll --server URL --code CODE` first")]
    NotEnrolled,
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The kinds of permanent failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permanent {
    /// The token is unknown: the device was revoked or its user disabled.
    Revoked,
    /// The server speaks a newer protocol: update the app.
    UpdateApp,
    /// The server refused the request as too large or malformed.
    Refused,
    /// Enrolment failed (bad, used or expired code; device already enrolled).
    Enrolment,
    /// The device was revoked with a wipe order: its store has been destroyed (issue
    /// 12). A host app that keeps the store's key in the platform keystore must delete
    /// that key too.
    Wiped,
    /// The connection is not one this app will use: plain HTTP to another machine, a
    /// redirect, an answer larger than any the server sends. The message says what
    /// to do.
    Transport,
}

impl std::fmt::Display for Permanent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Permanent::Revoked => "device revoked",
            Permanent::UpdateApp => "update the app",
            Permanent::Refused => "refused by the server",
            Permanent::Enrolment => "enrolment failed",
            Permanent::Wiped => "device wiped",
            Permanent::Transport => "cannot talk to this server safely",
        })
    }
}

impl SyncError {
    /// Whether trying again later (unchanged) can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SyncError::Offline(_)
                | SyncError::Retryable(_)
                | SyncError::TooLarge(_)
                | SyncError::Busy(..)
                | SyncError::StorageFull(..)
        ) || matches!(self, SyncError::Store(e) if e.is_full())
    }

    /// How long the server asked the device to wait before it tries again (its
    /// `Retry-After`), when it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            SyncError::Busy(_, secs) | SyncError::StorageFull(_, secs) => {
                Some(std::time::Duration::from_secs(*secs))
            }
            _ => None,
        }
    }

    /// Whether a background loop must stop and wait for a person: the device was
    /// revoked (or wiped), the app is too old, or it was never enrolled. Anything else — a cut, a
    /// 5xx, even a 4xx that a proxy or an overloaded server may answer for a while —
    /// is retried after a backoff: giving up would strand what the device holds.
    pub fn stops_the_loop(&self) -> bool {
        matches!(
            self,
            SyncError::NotEnrolled
                | SyncError::Permanent {
                    kind: Permanent::Revoked | Permanent::UpdateApp | Permanent::Wiped,
                    ..
                }
        )
    }
}
