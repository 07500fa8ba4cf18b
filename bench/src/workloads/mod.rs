//! The sync workloads of `../shared/bench/README.md`, one module each (W3 lives with
//! W1, which it starts from; `scale` and `fresh` share the 20 × 5,000-record data),
//! and `tls`, which repeats W1 and W3 over TLS.

pub mod scale;
pub mod tls;
pub mod w1;
pub mod w2;
pub mod w4;
