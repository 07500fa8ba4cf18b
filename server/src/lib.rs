//! Intake's sync server: where every device's work meets. Enrolment and device tokens
//! ([`auth`]), who may do what ([`policy`]), the batched resumable sync protocol
//! ([`sync`]), the supervisors' and admins' JSON API ([`routes`]), all over storage
//! behind a trait ([`storage`]) with SQLite embedded. `main.rs` is a thin binary over
//! this library; tests run the real server on `127.0.0.1:0` via [`startup`].

pub mod admin;
pub mod auth;
pub mod backup;
pub mod config;
pub mod erase;
pub mod error;
pub mod gate;
pub mod index;
pub mod migrate_data;
pub mod net;
pub mod pg_restore;
pub mod policy;
pub mod retention;
pub mod routes;
pub mod startup;
pub mod storage;
pub mod sync;
pub mod telemetry;
pub mod tls;
pub mod web;

pub use config::{Limits, Settings};
pub use startup::{
    AppState, Application, init_backend, init_store, load_key, open_backend, open_store,
};
