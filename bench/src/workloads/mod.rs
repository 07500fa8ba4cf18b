//! The sync workloads of `../shared/bench/README.md`, one module each (W3 lives with
//! W1, which it starts from; `scale` and `fresh` with the 100,000-record setup).

pub mod scale;
pub mod tls;
pub mod w1;
pub mod w2;
pub mod w4;
