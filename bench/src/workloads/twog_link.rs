//! The machinery of `2g` ([`super::twog`], [`super::twog_kill`]): README's W5 link, a
//! device that retries as the app's loop would, one phase measured over the link, and
//! what the server stored (read from its SQLite file) to check the phase against.
//!
//! The path is device → [`Link`] → the counting proxy → server. Bytes and connections
//! are the link's (what it delivered: bytes of a cut request count as far as they got);
//! requests and HTTP heads are the proxy's, i.e. what reached the server. Devices enrol
//! through the proxy, then are pointed at the link: enrolment is not measured.
//!
//! A device retries as the field app's loop would ([`until_done`]): sync with the
//! default options; after a failed sync wait `background::backoff(1 s, failures)`;
//! stop when a sync succeeds with nothing left unsynced (for a pull: and it received
//! nothing new).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use intake_client::sync::background::backoff;
use intake_client::{Store, SyncOptions, SyncSummary};
use intake_shared::RecordId;
use intake_tests::link::{Link, LinkConfig, LinkStats};
use serde_json::{Value as Json, json};

use crate::measure::Sample;
use crate::proxy::Counts;
use crate::rig::Rig;
use crate::server::ServerProcess;

/// The seed of the link's cuts (README: "random generator seeded with 7").
pub const SEED: u64 = 7;
/// A run not finished after this long counts as failed (README).
pub const DEADLINE: Duration = Duration::from_secs(30 * 60);
/// The team of every user here.
pub const TEAM: &str = "fleet";

/// README's W5 link: 40 KB/s each way, 300 ms added each way (so a 600 ms round trip),
/// each connection cut after 30–150 KB, seed 7.
pub fn bad_link() -> LinkConfig {
    LinkConfig {
        rtt: Duration::from_millis(600),
        ..LinkConfig::two_g(SEED)
    }
}

/// The link a phase runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`bad_link`].
    Cut,
    /// The same rate and delay, never cut.
    Clean,
}

impl Kind {
    pub fn config(self) -> LinkConfig {
        match self {
            Kind::Cut => bad_link(),
            Kind::Clean => bad_link().without_cuts(),
        }
    }

    /// The suffix of the workload's name: the bad link is the plain name.
    pub fn suffix(self) -> &'static str {
        match self {
            Kind::Cut => "",
            Kind::Clean => "_clean",
        }
    }

    pub fn describe(self) -> Json {
        let c = self.config();
        json!({
            "kind": if self == Kind::Cut { "2g_cut" } else { "2g_clean" },
            "bytes_per_sec": c.bytes_per_sec,
            "rtt_ms": c.rtt.as_millis() as u64,
            "cut_min": c.cut_min,
            "cut_max": c.cut_max,
            "seed": c.seed,
        })
    }
}

/// When a device has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// A sync succeeded with nothing left unsynced.
    Pushed,
    /// That, and the sync received nothing new.
    Pulled,
}

/// What a device's syncs did until it finished (or the deadline passed).
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Calls to `intake_client::sync`.
    pub attempts: usize,
    /// Of those, the ones that returned an error.
    pub failed: usize,
    /// The sum of `SyncSummary::retries` of the syncs that succeeded (a failed sync
    /// returns no summary; it ended after up to `plan::RETRY_LIMIT` retries in a row).
    pub retries: usize,
    /// Sums over the successful syncs.
    pub sent: usize,
    pub received: usize,
    pub round_trips: usize,
    pub unsynced: usize,
    pub completed: bool,
}

impl Outcome {
    fn add(&mut self, s: &SyncSummary) {
        self.retries += s.retries;
        self.sent += s.sent;
        self.received += s.received;
        self.round_trips += s.requests;
        self.unsynced = s.unsynced;
    }
}

/// Syncs `store` as the app's loop would until it has finished, or `deadline` passed,
/// or the error is one the app's loop stops at (revoked, too old).
pub fn until_done(store: &mut Store, until: Until, deadline: Instant, label: &str) -> Outcome {
    let mut out = Outcome::default();
    let mut failures = 0u32;
    while Instant::now() < deadline {
        out.attempts += 1;
        match intake_client::sync(store, &SyncOptions::default(), &mut |_| {}) {
            Ok(s) => {
                failures = 0;
                out.add(&s);
                if s.unsynced == 0 && (until == Until::Pushed || s.received == 0) {
                    out.completed = true;
                    break;
                }
            }
            Err(e) => {
                out.failed += 1;
                eprintln!("  {label}: sync {} failed: {e}", out.attempts);
                if e.stops_the_loop() {
                    break;
                }
                failures += 1;
                let left = deadline.saturating_duration_since(Instant::now());
                std::thread::sleep(backoff(Duration::from_secs(1), failures).min(left));
            }
        }
    }
    out
}

/// Points a device enrolled elsewhere at `url`, as `tests/src/lib.rs` `point_at` does.
pub fn point_at(store: &mut Store, url: &str) -> anyhow::Result<()> {
    let mut e = store.enrolment()?.context("the device is not enrolled")?;
    e.server = url.to_string();
    store.set_enrolment(&e)?;
    Ok(())
}

/// One measured phase over a link.
pub struct Phase {
    pub sample: Sample,
    pub outcome: Outcome,
    pub link: LinkStats,
    /// Whether the checks after it held (false when it did not complete).
    pub verified: bool,
}

/// Measures `work` over `link`: the server's figures from the meter, bytes and
/// connections from the link, requests and heads from the proxy behind it.
pub fn measured(
    rig: &Rig,
    link: &Link,
    work: impl FnOnce() -> Outcome,
) -> anyhow::Result<(Sample, Outcome, LinkStats)> {
    let meter = rig.meter()?;
    link.reset();
    let outcome = work();
    let mut sample = meter.finish()?;
    let stats = link.stats();
    sample.net = Counts {
        up: stats.bytes_up,
        down: stats.bytes_down,
        connections: stats.connections,
        ..sample.net
    };
    Ok((sample, outcome, stats))
}

/// What the server stored, read from its SQLite file (read-only, while it runs).
pub struct Stored {
    /// Each record's heads (sorted, concatenated).
    pub heads: HashMap<RecordId, Vec<u8>>,
    /// Rows of the change log: one per change stored.
    pub log_rows: u64,
}

/// Reads what `server` stored, as [`Stored`].
pub fn stored(server: &ServerProcess) -> anyhow::Result<Stored> {
    let conn =
        intake_server::storage::sqlite::cipher::connect(&server.db_path()?, &server.key()?, true)?;
    let mut heads = HashMap::new();
    let mut stmt = conn.prepare("SELECT id, heads FROM records")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: Vec<u8> = row.get(0)?;
        let id: [u8; 16] = id.try_into().ok().context("a record id of 16 bytes")?;
        heads.insert(RecordId::from_uuid(uuid::Uuid::from_bytes(id)), row.get(1)?);
    }
    let log_rows: i64 = conn.query_row("SELECT count(*) FROM log", [], |r| r.get(0))?;
    Ok(Stored {
        heads,
        log_rows: log_rows.try_into()?,
    })
}

/// A device's heads of `id` as the server keeps them; `None` when it lacks the record.
pub fn device_heads(store: &Store, id: RecordId) -> anyhow::Result<Option<Vec<u8>>> {
    if !store.exists(id)? {
        return Ok(None);
    }
    Ok(Some(store.get(id)?.heads().concat()))
}

/// How many of `ids` have the same heads on the device and the server.
pub fn same_heads(store: &Store, server: &Stored, ids: &[RecordId]) -> anyhow::Result<usize> {
    let mut same = 0;
    for id in ids {
        if let (Some(d), Some(s)) = (device_heads(store, *id)?, server.heads.get(id))
            && d == *s
        {
            same += 1;
        }
    }
    Ok(same)
}

/// The 2G fields of a report: medians over the phases, each run's own values, and
/// whether every run completed and passed its checks.
pub fn twog_fields(kind: Kind, phases: &[Phase]) -> Json {
    let med = |f: &dyn Fn(&Phase) -> u64| {
        let mut v: Vec<u64> = phases.iter().map(f).collect();
        v.sort_unstable();
        match v.len() {
            0 => 0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]).div_ceil(2),
        }
    };
    let per_run: Vec<Json> = phases
        .iter()
        .map(|p| {
            json!({
                "wall_ms": (p.sample.wall_ms * 10.0).round() / 10.0,
                "bytes_up": p.sample.net.up,
                "bytes_down": p.sample.net.down,
                "requests": p.sample.net.requests,
                "connections": p.link.connections,
                "attempts": p.outcome.attempts,
                "failed_syncs": p.outcome.failed,
                "retries": p.outcome.retries,
                "cuts": p.link.cuts,
                "cuts_mid_request": p.link.cuts_up,
                "cuts_mid_response": p.link.cuts_down,
                "completed": p.outcome.completed,
                "verified": p.verified,
            })
        })
        .collect();
    json!({
        "link": kind.describe(),
        "attempts": med(&|p| p.outcome.attempts as u64),
        "failed_syncs": med(&|p| p.outcome.failed as u64),
        "retries": med(&|p| p.outcome.retries as u64),
        "round_trips_answered": med(&|p| p.outcome.round_trips as u64),
        "cuts": med(&|p| p.link.cuts),
        "cuts_mid_request": med(&|p| p.link.cuts_up),
        "cuts_mid_response": med(&|p| p.link.cuts_down),
        "completed": phases.iter().all(|p| p.outcome.completed),
        "verified": phases.iter().all(|p| p.verified),
        "per_run": per_run,
    })
}

/// `extra`'s fields added to `report`.
pub fn merge(report: &mut Json, extra: Json) {
    if let (Json::Object(r), Json::Object(e)) = (report, extra) {
        r.extend(e);
    }
}
