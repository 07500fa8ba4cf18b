//! Logging: structured `tracing` events, filtered by `RUST_LOG` (default `info`).
//! What is logged is chosen so that it never holds record content, tokens, enrolment
//! codes or keys: requests are logged by route pattern, status and timing, never by
//! headers or bodies.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are ignored, which tests rely on).
pub fn init(default: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
