//! Intake's client library: what a field app embeds. It keeps records in a local,
//! encrypted store and syncs them with the server. The `intake`
//! command-line client is a thin layer over it, and so is the field app (`intake app`,
//! [`app`]): the same store behind pages in the paralegal's browser.

pub mod app;
pub mod store;
pub mod sync;

pub use store::{Enrolment, Key, Store, StoreError, Summary};
pub use sync::{
    SyncError, SyncOptions, SyncSummary, enroll, enroll_with, rotate_token, sync, sync_observed,
};
