//! UniFFI bindings of Intake's client library (issue 15): what a field app on Android
//! (Kotlin) or iOS (Swift) calls, generated from these definitions by
//! `scripts/bindings` and tested here through Python (`bindings/python/tests/`).
//!
//! The library itself keeps no FFI types: this crate converts its records and errors
//! into the typed records, enums and the one error enum ([`IntakeError`]) that the
//! generated code exposes, and calls the same library functions the `intake` CLI and
//! the field app call. `docs/EMBEDDING.md` shows how an app embeds it.
//!
//! Blocking: the form calls ([`form`], [`validate_value`], [`languages`],
//! [`record_forms`]) do no I/O. Every [`IntakeStore`] method except `set_language`,
//! `lock`, `start_background_sync` and `stop_background_sync` blocks on the database,
//! and `enroll` and `sync` on the network too: apps call them off the UI thread.

mod error;
mod forms;
mod records;
mod store;
mod sync;
mod view;

pub use error::IntakeError;
pub use forms::{
    ChoiceDef, FieldDef, FieldKind, FormDef, Relevance, form, languages, record_forms,
    validate_value,
};
pub use store::{FieldInput, IntakeStore};
pub use sync::{EnrolmentInfo, SyncListener, SyncProgress, SyncReport, SyncSettings};
pub use view::{
    ActionView, CommentView, ConflictValueView, ConflictView, FieldEntry, FieldValue, RecordFilter,
    RecordSummary, RecordView, Status, ValidationIssue,
};

uniffi::setup_scaffolding!();
