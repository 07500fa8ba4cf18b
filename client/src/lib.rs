//! Intake's client library: what a field app embeds. It keeps records in a local,
//! encrypted store and (with the sync issue) syncs them with the server. The `intake`
//! command-line client is a thin layer over it.

pub mod store;

pub use store::{Key, Store, StoreError, Summary};
