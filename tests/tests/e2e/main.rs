//! The end-to-end suite as one test binary: the real server on 127.0.0.1:0, real
//! clients with their own encrypted stores, real HTTP, real processes. Each module is one
//! subject and its `//!` says what it proves; helpers shared between modules live in the
//! support crate (`intake_tests`, `tests/src/`), never copied from one module to another.
//!
//! One binary, not one per file: each binary links the whole stack (~80 MB, seconds of
//! linking), and tests of one binary run in parallel. A test that measures the whole
//! process (peak memory, open descriptors) or installs process-wide state (the global log
//! subscriber) runs itself in a fresh process of this binary with `intake_tests::alone!`.

mod browser_harness;
mod clock_skew;
mod dashboard;
mod dashboard_browser;
mod deploy_data;
mod deploy_transport;
mod disk_full;
mod erasure;
mod faults;
mod field_app;
mod hardening;
mod hostile_docs;
mod kill;
mod kill_mid_sync;
mod link;
mod lost_phone;
mod pages;
mod pieces;
mod postgres_restore;
mod postgres_servers;
mod postgres_tls;
mod pull_ahead;
mod push_ahead;
mod push_rows;
mod relays;
mod review_trust;
mod server_access;
mod server_bounds;
mod server_kill;
mod server_limits;
mod server_logs;
mod server_replay;
mod server_sync;
mod small_syncs;
mod stranding;
mod sync_e2e;
mod sync_turns;
mod tidy;
mod tls_and_loop;
