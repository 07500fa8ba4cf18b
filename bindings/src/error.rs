//! The one error type every exported call throws: a typed enum an app can branch on
//! (show the passphrase screen again, ask for signal, tell the user the phone was
//! wiped), made from the client library's `StoreError` and `SyncError` here so the
//! library keeps no FFI types. Messages shown to a person (a value that breaks its
//! field, an incomplete record) are in the store's language; nothing here carries a
//! record's content, a token or a key.

use intake_client::sync::Permanent;
use intake_client::{StoreError, SyncError};
use intake_shared::{Form, Issue, Lang, RecordError};

/// Why a call failed. A failed call changed nothing.
///
/// In Kotlin this is `IntakeException` (with one subclass per variant), in Swift the
/// `IntakeError` enum, in Python the `IntakeError` exception and its subclasses.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum IntakeError {
    /// The passphrase or key does not open this store (or the file is not a store).
    /// Nothing was written.
    #[error("wrong passphrase or key")]
    WrongPassphrase,
    /// `open_*` found no store in the directory: create one first.
    #[error("there is no store in this directory")]
    NoStore,
    /// `create_*` found a store already there.
    #[error("a store already exists in this directory")]
    StoreExists,
    /// A new store's passphrase is too weak; `reason` says why and what to do.
    #[error("{reason}")]
    WeakPassphrase { reason: String },
    /// A raw key that is not 32 bytes, or a key or salt that cannot be used.
    #[error("{reason}")]
    BadKey { reason: String },
    /// This handle was closed with `lock()`: open the store again.
    #[error("the store is locked: open it again")]
    Locked,
    /// No successful sync for the server's limit (`days`): records stay closed until a
    /// sync succeeds, which stays allowed.
    #[error("no successful sync for {days} days: connect and sync to unlock")]
    SyncOverdue { days: u32 },
    /// The store was destroyed (quick wipe, or the server's wipe order). An app that
    /// keeps the key in the platform keystore deletes it now.
    #[error("this store was wiped")]
    Wiped,
    /// The device is not enrolled with a server yet.
    #[error("this device is not enrolled")]
    NotEnrolled,
    /// The server no longer accepts this device (revoked, or its user disabled).
    #[error("this device was revoked: {reason}")]
    Revoked { reason: String },
    /// The server speaks a newer protocol: the app must be updated.
    #[error("update the app: {reason}")]
    UpdateApp { reason: String },
    /// No connection to the server. Retry later (the background sync does).
    #[error("offline: {reason}")]
    Offline { reason: String },
    /// A temporary failure (timeout, cut connection, busy server). Retry later, not
    /// before `retry_after_secs` when the server said so.
    #[error("temporary problem: {reason}")]
    Retryable {
        reason: String,
        retry_after_secs: Option<u64>,
    },
    /// Enrolment failed (bad, used or expired code; device already enrolled).
    #[error("enrolment failed: {reason}")]
    EnrolmentFailed { reason: String },
    /// The server refused the request, or the connection is not one the library will
    /// use (plain HTTP to another machine, a redirect). Needs a person.
    #[error("refused: {reason}")]
    Refused { reason: String },
    /// A value breaks its field; `reason` is the form's message in the store's
    /// language, `label` the field's label in it.
    #[error("{label}: {reason}")]
    InvalidValue {
        field: String,
        label: String,
        reason: String,
    },
    /// A status past draft needs the required fields answered and no open conflict;
    /// `issues` lists what is missing, in the store's language.
    #[error("the record is incomplete")]
    Incomplete {
        issues: Vec<crate::view::ValidationIssue>,
    },
    /// No record with this id in the store.
    #[error("no record {id}")]
    NotFound { id: String },
    /// An argument the library cannot use: a malformed id, an unknown language, form,
    /// status or field, nothing to resolve.
    #[error("{reason}")]
    InvalidInput { reason: String },
    /// The device's storage is full: nothing was saved by this call; free space and
    /// try again.
    #[error("the device storage is full")]
    StorageFull,
    /// The store was written by a newer app.
    #[error("{reason}")]
    TooNew { reason: String },
    /// Anything else (a damaged record, a database or file error). Its text names no
    /// record content.
    #[error("{reason}")]
    Internal { reason: String },
}

impl IntakeError {
    pub(crate) fn input(reason: impl Into<String>) -> Self {
        IntakeError::InvalidInput {
            reason: reason.into(),
        }
    }

    /// A record error, with field problems told in `lang` using `form`'s labels.
    pub(crate) fn record(e: RecordError, form: &Form, lang: Lang) -> Self {
        match e {
            RecordError::Invalid { field, rule } => IntakeError::InvalidValue {
                label: form
                    .field(&field)
                    .map_or(field.clone(), |f| f.label.get(lang, &f.name).to_string()),
                reason: rule.message(lang),
                field,
            },
            RecordError::Incomplete { issues } => IntakeError::Incomplete {
                issues: issues
                    .iter()
                    .map(|i| crate::view::ValidationIssue::new(form, i, lang))
                    .collect(),
            },
            other => IntakeError::Internal {
                reason: other.to_string(),
            },
        }
    }

    /// A store error; record errors are told as [`IntakeError::record`] does.
    pub(crate) fn store(e: StoreError, form: &Form, lang: Lang) -> Self {
        match e {
            StoreError::Record(e) => IntakeError::record(e, form, lang),
            other => other.into(),
        }
    }

    /// A value that breaks `field`, from the form's parser.
    pub(crate) fn invalid(form: &Form, issue: Issue, lang: Lang) -> Self {
        IntakeError::record(
            RecordError::Invalid {
                field: issue.field,
                rule: issue.rule,
            },
            form,
            lang,
        )
    }
}

impl From<StoreError> for IntakeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::WrongKey => IntakeError::WrongPassphrase,
            StoreError::WeakPassphrase(w) => IntakeError::WeakPassphrase {
                reason: w.to_string(),
            },
            StoreError::Key(reason) => IntakeError::BadKey { reason },
            StoreError::Locked { days } => IntakeError::SyncOverdue { days },
            StoreError::Wiped => IntakeError::Wiped,
            StoreError::NotFound(id) => IntakeError::NotFound { id: id.to_string() },
            StoreError::Full(_) => IntakeError::StorageFull,
            e @ StoreError::TooNew { .. } => IntakeError::TooNew {
                reason: e.to_string(),
            },
            // Without a form to label them: messages in English (the library's own).
            e @ (StoreError::Record(_) | StoreError::Exists(_)) => IntakeError::InvalidInput {
                reason: e.to_string(),
            },
            other => IntakeError::Internal {
                reason: other.to_string(),
            },
        }
    }
}

impl From<SyncError> for IntakeError {
    fn from(e: SyncError) -> Self {
        let retry_after_secs = e.retry_after().map(|d| d.as_secs());
        match e {
            SyncError::Offline(reason) => IntakeError::Offline { reason },
            e @ (SyncError::Retryable(_)
            | SyncError::Busy(..)
            | SyncError::StorageFull(..)
            | SyncError::TooLarge(_)) => IntakeError::Retryable {
                reason: e.to_string(),
                retry_after_secs,
            },
            SyncError::Permanent { kind, message } => match kind {
                Permanent::Revoked => IntakeError::Revoked { reason: message },
                Permanent::Wiped => IntakeError::Wiped,
                Permanent::UpdateApp => IntakeError::UpdateApp { reason: message },
                Permanent::Enrolment => IntakeError::EnrolmentFailed { reason: message },
                Permanent::Refused | Permanent::Transport => {
                    IntakeError::Refused { reason: message }
                }
            },
            SyncError::NotEnrolled => IntakeError::NotEnrolled,
            SyncError::Store(e) => e.into(),
        }
    }
}
