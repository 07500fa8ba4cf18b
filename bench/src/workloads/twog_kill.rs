//! `2g`'s fourth scenario: the device is a process of its own (`intake-bench-device`),
//! SIGKILLed at random moments over the bad link, during W1's push of 5,000 and,
//! separately, during W2's fresh pull of 2,000; after the kills it runs to completion.
//! Then nothing may be lost or stored twice, and device and server must converge.
//!
//! The moments are drawn from a generator seeded with [`SEED`], uniformly over
//! [`KILL_AFTER`] after each start. The window is a compromise: with 0.5–15 s the push
//! was done after 7 kills and the pull after 4; with 0.5–3 s no process of the pull
//! lived long enough to finish a round trip (a page takes 2–4 s from a start here), so
//! every kill fell before the first answer. With 0.5–4 s the push takes all 20 kills
//! and the pull 18–20, both finishing round trips between them. A process that
//! finishes before its moment has done the work: the kills stop there, and the report
//! says how many there were and how many round trips the killed processes completed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use intake_client::{Key, Store};
use intake_shared::RecordId;
use intake_tests::link::Link;
use serde_json::json;

use super::twog::Fleet;
use super::twog_link::{self as twog, DEADLINE, Kind, Outcome, Phase, point_at, stored};
use crate::data::{self, KEY, Line, Template};
use crate::measure::{emit, report};
use crate::proxy::Counts;
use crate::rig::Rig;
use crate::server::UserSpec;

/// Kills per scenario.
const KILLS: usize = 20;
/// A kill falls this long after the process started, uniformly (seconds).
const KILL_AFTER: (f64, f64) = (0.5, 4.0);
/// Seeds the kill moments.
const SEED: u64 = 7;

pub fn run(lines: &[Line], template: &Template, fleet: &Fleet) -> anyhow::Result<()> {
    let mut moments = Moments(SEED);

    eprintln!("2g SIGKILL during the push of 5,000");
    let rig = Rig::start(&[UserSpec::paralegal("para-000", twog::TEAM)])?;
    let dir = enrolled_dir(&rig, 0, Some(template))?;
    let (phase, lives) = killed(&rig, dir.path(), &mut moments)?;
    let made: Vec<RecordId> = lines.iter().map(|l| l.id).collect();
    let device = Store::open(dir.path(), &Key::from_bytes(KEY))?;
    let changes = change_count(&device, &made)?;
    let checks = check(&rig, &device, &made, &made, changes)?;
    emit_kills(
        "2g_sigkill_push_5000",
        phase,
        &lives,
        checks,
        data::floor_of(lines)?,
    );
    drop((device, dir, rig));

    eprintln!("2g SIGKILL during the fresh pull of 2,000");
    let (rig, fleet_devices) = fleet.load()?;
    let dir = enrolled_dir(&rig, fleet.supervisor(), None)?;
    let (phase, lives) = killed(&rig, dir.path(), &mut moments)?;
    let made: Vec<RecordId> = fleet.lines.iter().map(|l| l.id).collect();
    let changes = fleet_devices
        .iter()
        .map(|d| change_count(&d.store, &made))
        .sum::<anyhow::Result<u64>>()?;
    let supervisor = Store::open(dir.path(), &Key::from_bytes(KEY))?;
    let server_ids: Vec<RecordId> = stored(&rig.server)?.heads.into_keys().collect();
    let checks = check(&rig, &supervisor, &made, &server_ids, changes)?;
    emit_kills(
        "2g_sigkill_pull_2000",
        phase,
        &lives,
        checks,
        data::floor_of(&fleet.lines)?,
    );
    Ok(())
}

/// Seeded kill moments (SplitMix64).
struct Moments(u64);

impl Moments {
    fn next(&mut self) -> Duration {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(KILL_AFTER.0 + unit * (KILL_AFTER.1 - KILL_AFTER.0))
    }
}

/// A device store of user number `user` (holding `template`'s records, if any),
/// enrolled through the proxy and closed, in a directory of its own.
pub(crate) fn enrolled_dir(
    rig: &Rig,
    user: usize,
    template: Option<&Template>,
) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("intake-bench-device")
        .tempdir()?;
    if let Some(t) = template {
        t.copy_to(dir.path())?;
    }
    let mut store = Store::open(dir.path(), &Key::from_bytes(KEY))?;
    let label = format!("bench-{user}");
    intake_client::enroll(&mut store, &rig.proxy.url, &rig.codes[user], &label, None)?;
    Ok(dir)
}

/// How the device processes went.
#[derive(Default)]
struct Lives {
    kills: usize,
    /// Whether a process finished before all [`KILLS`] were spent.
    finished_early: bool,
    /// Round trips answered and committed by processes that were killed later: the
    /// work the kills did not undo.
    answered_before_kills: usize,
    outcome: Outcome,
}

/// Runs the device in `dir` over a fresh bad link: killed up to [`KILLS`] times, then
/// left to finish (within [`DEADLINE`] of the first start). Measured like a phase.
fn killed(rig: &Rig, dir: &Path, moments: &mut Moments) -> anyhow::Result<(Phase, Lives)> {
    let link = Link::start(rig.proxy_addr()?, Kind::Cut.config());
    {
        let mut store = Store::open(dir, &Key::from_bytes(KEY))?;
        point_at(&mut store, &link.url())?;
    }
    let meter = rig.meter()?;
    link.reset();
    let deadline = Instant::now() + DEADLINE;
    let mut lives = Lives::default();
    while lives.kills < KILLS {
        let after = moments.next();
        let kill_at = (Instant::now() + after).min(deadline);
        match life(dir, kill_at, &mut lives.outcome)? {
            (End::Killed, trips) => {
                lives.kills += 1;
                lives.answered_before_kills += trips;
            }
            (End::Exited, _) => {
                lives.finished_early = true;
                eprintln!("  finished before kill {}", lives.kills + 1);
                break;
            }
        }
        eprintln!(
            "  kill {} of {KILLS}, {after:.1?} after its start",
            lives.kills
        );
    }
    if !lives.finished_early && matches!(life(dir, deadline, &mut lives.outcome)?, (End::Killed, _))
    {
        eprintln!("  not finished after {DEADLINE:?}");
    }
    let mut sample = meter.finish()?;
    let stats = link.stats();
    sample.net = Counts {
        up: stats.bytes_up,
        down: stats.bytes_down,
        connections: stats.connections,
        ..sample.net
    };
    let phase = Phase {
        sample,
        outcome: lives.outcome.clone(),
        link: stats,
        verified: false,
    };
    Ok((phase, lives))
}

enum End {
    Killed,
    /// The device finished (exit 0).
    Exited,
}

/// The device binary built next to the benchmark's.
pub(crate) fn device_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("intake-bench-device");
    if !path.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p intake-bench`",
            path.display()
        );
    }
    Ok(path)
}

/// One process of the device, SIGKILLed at `kill_at` unless it exits first; its
/// lines are added to `outcome`. Returns how it ended and its answered round trips.
fn life(dir: &Path, kill_at: Instant, outcome: &mut Outcome) -> anyhow::Result<(End, usize)> {
    let key: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    let mut child = Command::new(device_binary()?)
        .arg("--dir")
        .arg(dir)
        .args(["--key", &key])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting intake-bench-device")?;
    let stdout = child.stdout.take().context("device stdout")?;
    // Its lines are read as they come, so that a pipe never fills while it runs.
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let end = loop {
        if let Some(status) = child.try_wait()? {
            anyhow::ensure!(status.success(), "intake-bench-device failed: {status}");
            break End::Exited;
        }
        if Instant::now() >= kill_at {
            let pid = rustix::process::Pid::from_raw(child.id() as i32).context("pid")?;
            // It may have exited just now: then the kill finds nobody, which is fine.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            let status = child.wait()?;
            break if status.success() {
                End::Exited
            } else {
                End::Killed
            };
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let lines = reader.join().expect("device reader");
    tally(&lines, outcome);
    let trips = lines.iter().filter(|l| l.starts_with("trip ")).count();
    Ok((end, trips))
}

/// Adds what the device printed (see `intake-bench-device`) to `outcome`.
fn tally(lines: &[String], o: &mut Outcome) {
    for line in lines {
        let mut words = line.split_whitespace();
        let (Some("sync"), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let fields: Vec<(&str, usize)> = words
            .filter_map(|w| {
                let (k, v) = w.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map_or(0, |(_, v)| *v);
        match what {
            "start" => o.attempts += 1,
            "failed" => o.failed += 1,
            "ok" => {
                o.retries += get("retries");
                o.sent += get("sent");
                o.received += get("received");
                o.round_trips += get("requests");
                o.unsynced = get("unsynced");
                o.completed = o.unsynced == 0 && get("received") == 0;
            }
            _ => {}
        }
    }
}

/// How many changes `ids` hold on `store` (those it has).
fn change_count(store: &Store, ids: &[RecordId]) -> anyhow::Result<u64> {
    let mut n = 0;
    for id in ids {
        if store.exists(*id)? {
            n += store.get(*id)?.change_count() as u64;
        }
    }
    Ok(n)
}

/// What the checks found.
struct Checks {
    /// Records the devices made that the server lacks.
    lost_on_server: usize,
    /// Records the device must hold that it lacks.
    lost_on_device: usize,
    /// Server log rows beyond one per change made (negative: changes missing).
    duplicated: i64,
    converged_records: usize,
    expected: usize,
    log_rows: u64,
    changes: u64,
}

/// `made`: the records the devices made; `expected`: the records `device` must hold
/// with the server's heads; `changes`: how many changes the devices made (the server's
/// log must hold each exactly once).
fn check(
    rig: &Rig,
    device: &Store,
    made: &[RecordId],
    expected: &[RecordId],
    changes: u64,
) -> anyhow::Result<Checks> {
    let server = stored(&rig.server)?;
    let lost_on_server = made
        .iter()
        .filter(|id| !server.heads.contains_key(id))
        .count();
    let (mut lost_on_device, mut converged_records) = (0, 0);
    for id in expected {
        match twog::device_heads(device, *id)? {
            None => lost_on_device += 1,
            Some(h) if server.heads.get(id) == Some(&h) => converged_records += 1,
            Some(_) => {}
        }
    }
    Ok(Checks {
        lost_on_server,
        lost_on_device,
        duplicated: server.log_rows as i64 - changes as i64,
        converged_records,
        expected: expected.len(),
        log_rows: server.log_rows,
        changes,
    })
}

fn emit_kills(name: &str, mut phase: Phase, lives: &Lives, c: Checks, floor: usize) {
    let lost = c.lost_on_server + c.lost_on_device;
    let converged = c.converged_records == c.expected;
    let verified = lives.outcome.completed && lost == 0 && c.duplicated == 0 && converged;
    phase.verified = verified;
    let mut r = report(
        name,
        &[phase.sample],
        Some(floor),
        twog::twog_fields(Kind::Cut, std::slice::from_ref(&phase)),
    );
    twog::merge(
        &mut r,
        json!({
            "kills": lives.kills,
            "kills_planned": KILLS,
            "kill_after_s": [KILL_AFTER.0, KILL_AFTER.1],
            "finished_before_last_kill": lives.finished_early,
            "round_trips_answered_before_kills": lives.answered_before_kills,
            "lost": lost,
            "lost_on_server": c.lost_on_server,
            "lost_on_device": c.lost_on_device,
            "duplicated": c.duplicated,
            "log_rows": c.log_rows,
            "changes_made": c.changes,
            "converged": converged,
            "converged_records": c.converged_records,
            "verified": verified,
        }),
    );
    emit(&r);
}
