//! The sync workloads of `../shared/bench/README.md`, one module each (W3 lives with
//! W1, which it starts from; `scale` and `fresh` share the 20 × 5,000-record data),
//! `tls`, which repeats W1 and W3 over TLS, and `twog` (with `twog_kill` and
//! `twog_link`), W5: W1's push, W2's pull and a large record over the bad 2G link, and a
//! device SIGKILLed there. `dashboard` measures the supervisors' web dashboard with
//! 10,000 records stored (issue 10). `load` runs many light stand-in devices syncing at
//! once for a fixed time (issue 16).

pub mod dashboard;
pub mod load;
pub mod scale;
pub mod tls;
pub mod twog;
pub mod twog_kill;
pub mod twog_link;
pub mod w1;
pub mod w2;
pub mod w4;
