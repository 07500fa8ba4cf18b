//! `load`: many devices syncing at once for a fixed time (issue 16). N simulated
//! devices, in this process, each sync every `--interval` seconds on a fixed schedule
//! (a sync that starts late does not push the next one back, so the offered load stays
//! N / interval syncs a second whatever the server does). Half of the syncs push an
//! edit of one of the device's own records, the others are no-ops; every sync pulls
//! what its team (20 devices) sent since its cursor. Reported: syncs a second,
//! latency (p50, p99, max) measured from when the sync was due, so time spent waiting
//! for a free worker counts (no coordinated omission), errors by kind, and the
//! server's CPU and peak memory.
//!
//! A device here is a light stand-in for the app: it keeps its token, its cursor and
//! its own few records (real `Record`s, so its edits are real Automerge changes), and
//! speaks the protocol as the app does (zstd request, `intake-protocol` header), but
//! it does not store what it pulls. That keeps a thousand of them within one process
//! and leaves the two cores to the server.

use std::collections::{BTreeMap, BinaryHeap};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use intake_shared::protocol::{CONTENT_TYPE, SyncResponse, VERSION_HEADER};
use intake_shared::record::Identity;
use intake_shared::{Record, Value};
use intake_tests::craft;
use serde_json::json;

use crate::Ctx;
use crate::measure::{emit, spread};
use crate::rig::Rig;
use crate::server::UserSpec;

/// Devices per team: a device pulls what its team sends.
const TEAM: usize = 20;
/// Records each device holds and edits.
const OWN_RECORDS: u64 = 5;
/// A sync that takes longer than this is a timeout (a phone gives up about then).
const TIMEOUT: Duration = Duration::from_secs(30);

/// What `load` is told.
pub struct LoadSpec {
    pub devices: Vec<usize>,
    pub seconds: u64,
    pub interval_s: f64,
    /// Concurrent requests the stand-ins may have open (threads); 0: one per device.
    pub workers: usize,
}

pub fn run(ctx: &Ctx, spec: &LoadSpec) -> anyhow::Result<()> {
    // reqwest is built without a crypto provider in this workspace.
    intake_client::sync::ensure_crypto_provider();
    for &n in &spec.devices {
        for run in 1..=ctx.runs {
            eprintln!("load: {n} devices, run {run}/{}", ctx.runs);
            emit(&one(n, spec)?);
        }
    }
    Ok(())
}

/// One device's state.
struct Sim {
    token: String,
    cursor: u64,
    records: Vec<Record>,
    rng: u64,
}

/// What one sync came to.
struct Outcome {
    /// From when it was due to its answer.
    latency: Duration,
    /// How late it started (all workers busy).
    late: Duration,
    error: Option<String>,
    edited: bool,
}

fn one(n: usize, spec: &LoadSpec) -> anyhow::Result<serde_json::Value> {
    let workers = if spec.workers == 0 {
        n
    } else {
        spec.workers.min(n)
    };
    let users: Vec<UserSpec> = (0..n)
        .map(|i| UserSpec::paralegal(&format!("para-{i:04}"), &format!("team-{}", i / TEAM)))
        .collect();
    let rig = Rig::start(&users)?;
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .pool_max_idle_per_host(workers)
        .build()?;
    eprintln!("  enrolling {n} devices and loading their records");
    let started = Instant::now();
    let mut sims = Vec::with_capacity(n);
    for (i, code) in rig.codes.iter().enumerate() {
        let mut actor = [0u8; 16];
        actor[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        actor[8..].copy_from_slice(b"loadtest");
        let token = enroll(&http, &rig.proxy.url, code, actor)?;
        let mut who_actor = actor.to_vec();
        who_actor.extend(1u32.to_be_bytes());
        let who = Identity {
            actor: who_actor,
            author: Some(users[i].name.clone()),
        };
        let records = (0..OWN_RECORDS)
            .map(|k| craft::new_record(&who, (i as u64) * 1000 + k))
            .collect();
        let mut sim = Sim {
            token,
            cursor: 0,
            records,
            rng: 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1),
        };
        // The first sync pushes its records: not measured.
        let push = sim
            .records
            .iter_mut()
            .map(|r| craft::push_of(r, &[]))
            .collect();
        sim.sync(&http, &rig.proxy.url, push)?;
        sims.push(Mutex::new(sim));
    }
    // Each device's team has pushed by now; one more round brings every cursor to the
    // head, so the measured syncs pull only what is sent during the run.
    for sim in &sims {
        sim.lock()
            .unwrap()
            .sync(&http, &rig.proxy.url, Vec::new())?;
    }
    eprintln!(
        "  ready in {:.1} s; {} s of syncs every {} s each",
        started.elapsed().as_secs_f64(),
        spec.seconds,
        spec.interval_s
    );

    let meter = rig.meter()?;
    let interval = Duration::from_secs_f64(spec.interval_s);
    let begin = Instant::now() + Duration::from_millis(200);
    let end = begin + Duration::from_secs(spec.seconds);
    // Due times spread evenly over the first interval, then every interval.
    let queue: BinaryHeap<std::cmp::Reverse<(Instant, usize)>> = (0..n)
        .map(|i| std::cmp::Reverse((begin + interval.mul_f64(i as f64 / n as f64), i)))
        .collect();
    let queue: Queue = (Mutex::new(queue), Condvar::new());
    let outcomes: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                loop {
                    let Some((due, i)) = next_due(&queue, end) else {
                        return;
                    };
                    let now = Instant::now();
                    if now < due {
                        std::thread::sleep(due - now);
                    }
                    let late = Instant::now().saturating_duration_since(due);
                    let mut sim = sims[i].lock().unwrap();
                    let edited = sim.coin();
                    let push = if edited { vec![sim.edit()] } else { Vec::new() };
                    let result = sim.sync(&http, &rig.proxy.url, push);
                    drop(sim);
                    let outcome = Outcome {
                        latency: due.elapsed(),
                        late,
                        error: result.err().map(|e| kind(&e)),
                        edited,
                    };
                    outcomes.lock().unwrap().push(outcome);
                    let (lock, wake) = &queue;
                    lock.lock()
                        .unwrap()
                        .push(std::cmp::Reverse((due + interval, i)));
                    wake.notify_one();
                }
            });
        }
    });
    let wall = begin.elapsed().as_secs_f64();
    let sample = meter.finish()?;
    let outcomes = outcomes.into_inner().unwrap();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut latencies: Vec<f64> = outcomes.iter().map(|o| ms(o.latency)).collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for o in &outcomes {
        if let Some(e) = &o.error {
            *errors.entry(e.clone()).or_default() += 1;
        }
    }
    let late: Vec<f64> = outcomes.iter().map(|o| ms(o.late)).collect();
    let round = |x: f64| (x * 10.0).round() / 10.0;
    Ok(json!({
        "workload": format!("load_{n}_devices"),
        "devices": n,
        "seconds": spec.seconds,
        "interval_s": spec.interval_s,
        "offered_syncs_per_s": round(n as f64 / spec.interval_s),
        "syncs": outcomes.len(),
        "syncs_per_s": round(outcomes.len() as f64 / wall),
        "edit_syncs": outcomes.iter().filter(|o| o.edited).count(),
        "latency_ms": {
            "p50": round(pct(0.50)),
            "p99": round(pct(0.99)),
            "max": round(latencies.last().copied().unwrap_or(0.0)),
        },
        "late_start_ms": spread(&late, 1),
        "errors": errors,
        "error_count": outcomes.iter().filter(|o| o.error.is_some()).count(),
        "workers": workers,
        "server_cpu_s": (sample.server_cpu_s * 1000.0).round() / 1000.0,
        "server_cpu_share": (sample.server_cpu_s / wall * 100.0).round() / 100.0,
        "server_peak_rss_mb": round(sample.server_peak_rss_mb),
        "bytes_up": sample.net.up,
        "bytes_down": sample.net.down,
        "target": "200 devices, a sync every 10 s each: p99 <= 500 ms, 0 errors",
    }))
}

/// The devices by when their next sync is due (earliest first), and the workers'
/// wake-up call when one comes back.
type Queue = (
    Mutex<BinaryHeap<std::cmp::Reverse<(Instant, usize)>>>,
    Condvar,
);

/// The next (due time, device) before `end`, or `None` once the run is over.
fn next_due(queue: &Queue, end: Instant) -> Option<(Instant, usize)> {
    let (lock, wake) = queue;
    let mut heap = lock.lock().unwrap();
    loop {
        if let Some(std::cmp::Reverse((due, i))) = heap.pop() {
            return (due < end).then_some((due, i));
        }
        // Every device is being synced by another worker: wait for one to come back.
        if Instant::now() >= end {
            return None;
        }
        heap = wake
            .wait_timeout(heap, Duration::from_millis(100))
            .unwrap()
            .0;
    }
}

/// An error's kind, for counting: the HTTP status, or what went wrong on the way.
fn kind(e: &anyhow::Error) -> String {
    if let Some(status) = e.downcast_ref::<Status>() {
        return format!("http_{}", status.0);
    }
    match e.downcast_ref::<reqwest::Error>() {
        Some(r) if r.is_timeout() => "timeout".into(),
        Some(r) if r.is_connect() => "connect".into(),
        Some(_) => "transport".into(),
        None => "other".into(),
    }
}

/// A sync answered with another status than 200.
#[derive(Debug)]
struct Status(u16);

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.0)
    }
}

impl std::error::Error for Status {}

impl Sim {
    /// A fair coin from the device's own generator (xorshift: no shared lock).
    fn coin(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng & 1 == 1
    }

    /// Edits one of its records (a new full name) and returns the change as a push.
    fn edit(&mut self) -> intake_shared::protocol::RecordChanges {
        let k = (self.rng >> 8) as usize % self.records.len();
        let value = format!("Person {} edited {}", k, self.rng % 10_000);
        let record = &mut self.records[k];
        let before = record.heads();
        record
            .edit(Utc::now(), |e| e.set("full_name", Value::Text(value)))
            .expect("an edit of its own record");
        craft::push_of(record, &before)
    }

    /// One sync: pushes `push`, then pulls pages until the server has no more.
    fn sync(
        &mut self,
        http: &reqwest::blocking::Client,
        url: &str,
        mut push: Vec<intake_shared::protocol::RecordChanges>,
    ) -> anyhow::Result<()> {
        loop {
            let pushed: Vec<_> = push.iter().map(|p| p.record).collect();
            let request = craft::request(self.cursor, std::mem::take(&mut push), Vec::new());
            let body = zstd::bulk::compress(&request.encode(), 3)?;
            let reply = http
                .post(format!("{url}/v1/sync"))
                .header(VERSION_HEADER, request.version.to_string())
                .header("content-type", CONTENT_TYPE)
                .header("content-encoding", "zstd")
                .header("accept-encoding", "zstd")
                .bearer_auth(&self.token)
                .body(body)
                .send()?;
            let status = reply.status().as_u16();
            // From protocol version 7 a successful answer says nothing of its
            // encoding: zstd by its first bytes.
            let said = reply.headers().get("content-encoding").map(|v| v == "zstd");
            let bytes = reply.bytes()?;
            let encoded = said.unwrap_or(intake_shared::protocol::is_zstd_frame(&bytes));
            if status != 200 {
                return Err(Status(status).into());
            }
            let bytes = if encoded {
                zstd::stream::decode_all(&bytes[..])?
            } else {
                bytes.to_vec()
            };
            let answer = SyncResponse::decode(&bytes, &pushed)?;
            self.cursor = answer.cursor;
            if !answer.more {
                return Ok(());
            }
        }
    }
}

/// Enrols one device over HTTP; returns its token.
fn enroll(
    http: &reqwest::blocking::Client,
    url: &str,
    code: &str,
    actor: [u8; 16],
) -> anyhow::Result<String> {
    let reply = http
        .post(format!("{url}/v1/enroll"))
        .json(&json!({ "code": code, "actor": hex(&actor), "label": "load" }))
        .send()?;
    let status = reply.status().as_u16();
    anyhow::ensure!(status == 200, "enrolment: HTTP {status}");
    let body: serde_json::Value = reply.json()?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("enrolment: no token"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
