//! Measuring one phase (a sync, or several at once) and reporting several runs of it
//! as one JSON object: wall time as median, min and max; every other figure as the
//! median over runs (byte counts barely vary); bytes ÷ floor from the median total.

use std::time::Instant;

use serde_json::{Value as Json, json};

use crate::proxy::{Counts, Proxy};
use crate::server::ServerProcess;

/// What one measured phase cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub wall_ms: f64,
    pub net: Counts,
    /// Peak resident memory of the server during the phase (or since its start, where
    /// the kernel does not let the mark be reset).
    pub server_peak_rss_mb: f64,
    /// Server CPU time (user + system) spent during the phase.
    pub server_cpu_s: f64,
}

impl Sample {
    pub fn bytes(&self) -> u64 {
        self.net.up + self.net.down
    }
}

/// A phase being measured: counters reset at the start, read at [`Meter::finish`].
pub struct Meter<'a> {
    server: &'a ServerProcess,
    proxy: &'a Proxy,
    cpu0: f64,
    peak_reset: bool,
    started: Instant,
}

impl<'a> Meter<'a> {
    pub fn start(server: &'a ServerProcess, proxy: &'a Proxy) -> anyhow::Result<Meter<'a>> {
        proxy.reset();
        let peak_reset = server.reset_peak();
        let cpu0 = server.cpu_seconds()?;
        Ok(Meter {
            server,
            proxy,
            cpu0,
            peak_reset,
            started: Instant::now(),
        })
    }

    pub fn finish(self) -> anyhow::Result<Sample> {
        let wall_ms = self.started.elapsed().as_secs_f64() * 1e3;
        // The proxy's threads may still be forwarding the last bytes of an answer the
        // client has already read; they have been counted as they were read, so the
        // counts are final once the device has its answer.
        let net = self.proxy.counts();
        if !self.peak_reset {
            eprintln!("  (peak RSS could not be reset: it counts from the server's start)");
        }
        Ok(Sample {
            wall_ms,
            net,
            server_peak_rss_mb: self.server.peak_rss_mb()?,
            server_cpu_s: self.server.cpu_seconds()? - self.cpu0,
        })
    }
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn median_u(v: impl Iterator<Item = u64>) -> u64 {
    median_f(v.map(|x| x as f64).collect()).round() as u64
}

fn round(x: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (x * p).round() / p
}

/// Median, min and max of a series.
pub fn spread(v: &[f64], places: i32) -> Json {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    json!({
        "median": round(median_f(v.to_vec()), places),
        "min": round(min, places),
        "max": round(max, places),
    })
}

/// The report of `samples` (one per run) of `workload`, with `floor` when the
/// workload has one, and `extra` fields merged in.
pub fn report(workload: &str, samples: &[Sample], floor: Option<usize>, extra: Json) -> Json {
    let wall: Vec<f64> = samples.iter().map(|s| s.wall_ms).collect();
    let med = |f: fn(&Sample) -> u64| median_u(samples.iter().map(f));
    let bytes = med(Sample::bytes);
    let mut out = json!({
        "workload": workload,
        "runs": samples.len(),
        "wall_ms": spread(&wall, 1),
        "bytes_up": med(|s| s.net.up),
        "bytes_down": med(|s| s.net.down),
        "bytes_total": bytes,
        "header_bytes_up": med(|s| s.net.head_up),
        "header_bytes_down": med(|s| s.net.head_down),
        "requests": med(|s| s.net.requests),
        "connections": med(|s| s.net.connections),
        "server_peak_rss_mb": round(median_f(samples.iter().map(|s| s.server_peak_rss_mb).collect()), 1),
        "server_cpu_s": round(median_f(samples.iter().map(|s| s.server_cpu_s).collect()), 3),
    });
    if let crate::server::Backend::Postgres { servers } = crate::server::backend() {
        // SQLite is the default and says nothing, so earlier reports read the same.
        out["backend"] = "postgres".into();
        out["servers"] = servers.into();
    }
    if let Some(floor) = floor {
        out["floor_bytes"] = floor.into();
        out["bytes_over_floor"] = round(bytes as f64 / floor as f64, 2).into();
    }
    if samples.iter().any(|s| s.net.unframed > 0) {
        out["unframed_messages"] = med(|s| s.net.unframed).into();
    }
    if let (Json::Object(out), Json::Object(extra)) = (&mut out, extra) {
        out.extend(extra);
    }
    out
}

/// Prints one report line on stdout (progress goes to stderr).
pub fn emit(report: &Json) {
    println!("{report}");
}
