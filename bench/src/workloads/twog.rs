//! `2g`: W5 of `../shared/bench/README.md`, the same work as W1 and W2's pull over the
//! field's bad 2G link, and the same again over a clean link of the same rate and delay.
//!
//! Scenarios, each on a fresh server: a device pushes W1's 5,000 records; a fresh
//! supervisor pulls W2's 2,000 (loaded straight through the proxy beforehand, not
//! measured); one record with a ~2 MB narrative is pushed, then pulled by a fresh
//! supervisor. [`super::twog_kill`] adds the fourth: a device process SIGKILLed at
//! random moments during the push and during the pull.
//!
//! The path is device → [`Link`] → the counting proxy → server. Bytes and connections
//! are the link's (what it delivered, so bytes lost to a cut count where they arrived);
//! requests and HTTP heads are the proxy's, i.e. what reached the server. Devices enrol
//! through the proxy, then are pointed at the link: enrolment is not measured.
//!
//! A device retries as the field app's loop would ([`until_done`]): sync; after a
//! failed sync wait `background::backoff(1 s, failures)`; stop when a sync succeeds with
//! nothing left unsynced (for a pull: and it received nothing new).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use intake_client::sync::background::backoff;
use intake_client::{Store, SyncOptions, SyncSummary};
use intake_shared::{RecordId, Value};
use intake_tests::link::{Link, LinkConfig, LinkStats};
use serde_json::{Value as Json, json};

use crate::Ctx;
use crate::data::{self, Line, Template};
use crate::device::Device;
use crate::measure::{Sample, emit, report};
use crate::proxy::Counts;
use crate::rig::Rig;
use crate::server::{ServerProcess, UserSpec};
use crate::workloads::{twog_kill, w2};

/// The seed of the link's cuts (README: "random generator seeded with 7").
pub const SEED: u64 = 7;
/// A run not finished after this long counts as failed (README).
pub const DEADLINE: Duration = Duration::from_secs(30 * 60);
/// The team of every user here.
pub const TEAM: &str = "fleet";
/// The large record's narrative, in bytes of UTF-8.
const NARRATIVE_BYTES: usize = 2_000_000;

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
    fn suffix(self) -> &'static str {
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

pub fn stored(server: &ServerProcess) -> anyhow::Result<Stored> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        server.db_path(),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
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
fn same_heads(store: &Store, server: &Stored, ids: &[RecordId]) -> anyhow::Result<usize> {
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

/// W2's fleet: 20 devices' lines and stores, and its users (the supervisor last).
pub struct Fleet {
    pub lines: Vec<Line>,
    pub templates: Vec<Template>,
    pub users: Vec<UserSpec>,
}

impl Fleet {
    pub fn build(ctx: &Ctx) -> anyhow::Result<Fleet> {
        let lines = data::read_lines(&ctx.data.join("fleet-20x100.jsonl"))?;
        let groups: Vec<Vec<Line>> = data::by_device(&lines)
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        eprintln!("2g: building the fleet's {} stores", groups.len());
        let templates = data::build_templates(&groups, 2)?;
        let mut users: Vec<UserSpec> = (1..=groups.len())
            .map(|i| UserSpec::paralegal(&format!("para-{i:03}"), TEAM))
            .collect();
        users.push(UserSpec::supervisor("supervisor", TEAM));
        Ok(Fleet {
            lines,
            templates,
            users,
        })
    }

    /// The supervisor's index in `users` (and `Rig::codes`).
    pub fn supervisor(&self) -> usize {
        self.templates.len()
    }

    /// A fresh server holding the fleet's records, synced through the proxy as W2 does
    /// (not measured); the fleet's devices are returned with it.
    pub fn load(&self) -> anyhow::Result<(Rig, Vec<Device>)> {
        let rig = Rig::start(&self.users)?;
        let mut devices = self
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| rig.device(i, Some(t)))
            .collect::<anyhow::Result<Vec<Device>>>()?;
        let sent = w2::sync_all(&mut devices)?;
        anyhow::ensure!(sent == self.lines.len(), "2g: the fleet stored {sent}");
        Ok((rig, devices))
    }
}

/// A narrative of about `len` bytes: sentences of Albanian words (with their ë and
/// ç), numbers and punctuation from a seeded generator, so that it compresses like
/// prose, not like one letter repeated.
pub fn narrative(len: usize) -> String {
    const WORDS: [&str; 48] = [
        "shkolla",
        "klasa",
        "nxënësit",
        "drejtori",
        "prindërit",
        "komuna",
        "dokumentet",
        "regjistrimi",
        "gjuha",
        "ndarja",
        "romë",
        "ashkali",
        "egjiptianë",
        "vendimi",
        "mësuesja",
        "fëmijët",
        "lagjja",
        "zyra",
        "çështja",
        "ankesa",
        "gjykata",
        "vërtetimi",
        "letërnjoftimi",
        "certifikata",
        "lindjes",
        "pronës",
        "kërkesa",
        "përgjigje",
        "muaj",
        "javë",
        "herë",
        "nuk",
        "kanë",
        "pranuar",
        "thanë",
        "se",
        "duhet",
        "të",
        "paguajnë",
        "për",
        "në",
        "me",
        "dhe",
        "por",
        "gjithashtu",
        "përkthyesi",
        "shërbimi",
        "çmimi",
    ];
    let mut out = String::with_capacity(len + 64);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    while out.len() < len {
        let words = 6 + next() % 15;
        for w in 0..words {
            let r = next();
            let word = WORDS[(r % WORDS.len() as u64) as usize];
            if w == 0 {
                let mut c = word.chars();
                out.extend(c.next().into_iter().flat_map(char::to_uppercase));
                out.push_str(c.as_str());
            } else if r % 13 == 0 {
                out.push_str(&format!("{}", 1 + (r >> 8) % 2025));
            } else {
                out.push_str(word);
            }
            out.push_str(match (w + 1 == words, r % 9) {
                (true, 0) => "?\n",
                (true, 1..=2) => ".\n\n",
                (true, _) => ". ",
                (false, 0) => ", ",
                _ => " ",
            });
        }
    }
    out
}

/// The large record: its line (for the floor and the check) and a store holding it.
pub struct Large {
    pub line: Line,
    pub narrative: String,
    pub template: Template,
}

impl Large {
    pub fn build() -> anyhow::Result<Large> {
        let narrative = narrative(NARRATIVE_BYTES);
        let id = RecordId::new_v7(1_764_288_000_000, [7; 10]);
        let fields = json!({ "full_name": "Mirlinda Berisha", "narrative": narrative });
        let text = json!({ "id": id.to_string(), "form": "intake", "fields": fields }).to_string();
        let line = Line {
            id,
            device: "device-large".into(),
            fields: fields.as_object().context("fields")?.clone(),
            text,
        };
        eprintln!("2g: creating the {} B record", narrative.len());
        let template = Template::build(std::slice::from_ref(&line))?;
        Ok(Large {
            line,
            narrative,
            template,
        })
    }
}

/// The runs of one phase over one kind of link.
struct Series {
    kind: Kind,
    phases: Vec<Phase>,
}

impl Series {
    fn new(kind: Kind) -> Series {
        Series {
            kind,
            phases: Vec::new(),
        }
    }

    fn push(&mut self, (sample, outcome, link): (Sample, Outcome, LinkStats), verified: bool) {
        self.phases.push(Phase {
            sample,
            outcome,
            link,
            verified,
        });
    }

    fn emit(&self, name: &str, floor: usize, extra: Json) {
        let samples: Vec<Sample> = self.phases.iter().map(|p| p.sample).collect();
        let mut r = report(
            &format!("{name}{}", self.kind.suffix()),
            &samples,
            Some(floor),
            twog_fields(self.kind, &self.phases),
        );
        merge(&mut r, extra);
        emit(&r);
    }
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

/// Whether `check` held; says why on stderr when not (the run still counts).
fn verify(label: &str, check: anyhow::Result<()>) -> bool {
    match check {
        Ok(()) => true,
        Err(e) => {
            eprintln!("  {label}: NOT VERIFIED: {e:#}");
            false
        }
    }
}

const KINDS: [Kind; 2] = [Kind::Cut, Kind::Clean];

pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let lines = data::read_lines(&ctx.data.join("device-000-5000.jsonl"))?;
    eprintln!("2g: building the 5,000-record device's store");
    let template = Template::build(&lines)?;
    let fleet = Fleet::build(ctx)?;
    let large = Large::build()?;

    let mut series = KINDS.map(Series::new);
    for run in 1..=ctx.runs {
        for (s, kind) in series.iter_mut().zip(KINDS) {
            let label = format!("2g push 5,000 ({kind:?}) run {run}/{}", ctx.runs);
            eprintln!("{label}");
            let rig = Rig::start(&[UserSpec::paralegal("para-000", TEAM)])?;
            let mut device = rig.device(0, Some(&template))?;
            let link = Link::start(rig.proxy_addr()?, kind.config());
            point_at(&mut device.store, &link.url())?;
            let deadline = Instant::now() + DEADLINE;
            let phase = measured(&rig, &link, || {
                until_done(&mut device.store, Until::Pushed, deadline, &label)
            })?;
            let ok = phase.1.completed
                && verify(&label, check_push(&rig, &device.store, &lines, &phase.1));
            s.push(phase, ok);
        }
    }
    let floor = data::floor_of(&lines)?;
    for s in &series {
        s.emit("2g_push_5000", floor, json!({ "records": lines.len() }));
    }

    let mut series = KINDS.map(Series::new);
    for run in 1..=ctx.runs {
        for (s, kind) in series.iter_mut().zip(KINDS) {
            let label = format!("2g fresh pull 2,000 ({kind:?}) run {run}/{}", ctx.runs);
            eprintln!("{label}");
            let (rig, _fleet) = fleet.load()?;
            let mut supervisor = rig.device(fleet.supervisor(), None)?;
            let link = Link::start(rig.proxy_addr()?, kind.config());
            point_at(&mut supervisor.store, &link.url())?;
            let deadline = Instant::now() + DEADLINE;
            let phase = measured(&rig, &link, || {
                until_done(&mut supervisor.store, Until::Pulled, deadline, &label)
            })?;
            let ok = phase.1.completed
                && verify(
                    &label,
                    check_pull(&rig, &supervisor.store, &fleet, &phase.1),
                );
            s.push(phase, ok);
        }
    }
    let floor = data::floor_of(&fleet.lines)?;
    for s in &series {
        s.emit(
            "2g_fresh_pull_2000",
            floor,
            json!({ "records": fleet.lines.len() }),
        );
    }

    large_record(ctx, &large)?;
    twog_kill::run(&lines, &template, &fleet)
}

/// Scenario 1's checks: every record on the server, with the device's heads.
fn check_push(rig: &Rig, store: &Store, lines: &[Line], o: &Outcome) -> anyhow::Result<()> {
    let server = stored(&rig.server)?;
    let ids: Vec<RecordId> = lines.iter().map(|l| l.id).collect();
    let on_server = ids
        .iter()
        .filter(|id| server.heads.contains_key(id))
        .count();
    anyhow::ensure!(
        o.sent >= lines.len() && o.unsynced == 0,
        "the syncs sent {} records, {} left unsynced",
        o.sent,
        o.unsynced
    );
    anyhow::ensure!(
        on_server == lines.len() && server.heads.len() == lines.len(),
        "the server holds {} records, {on_server} of the device's {}",
        server.heads.len(),
        lines.len()
    );
    let same = same_heads(store, &server, &ids)?;
    anyhow::ensure!(
        same == ids.len(),
        "{same} of {} with equal heads",
        ids.len()
    );
    Ok(())
}

/// Scenario 2's checks: all 2,000 received, each with the server's heads.
fn check_pull(rig: &Rig, store: &Store, fleet: &Fleet, o: &Outcome) -> anyhow::Result<()> {
    let server = stored(&rig.server)?;
    let ids: Vec<RecordId> = fleet.lines.iter().map(|l| l.id).collect();
    anyhow::ensure!(
        o.received == ids.len(),
        "received {} of {}",
        o.received,
        ids.len()
    );
    let same = same_heads(store, &server, &ids)?;
    anyhow::ensure!(
        same == ids.len(),
        "{same} of {} with equal heads",
        ids.len()
    );
    Ok(())
}

/// Scenario 3: the large record pushed by its device, then pulled by a fresh
/// supervisor, each over a link of its own (so each meets the link's first budgets).
fn large_record(ctx: &Ctx, large: &Large) -> anyhow::Result<()> {
    let (mut pushes, mut pulls) = (KINDS.map(Series::new), KINDS.map(Series::new));
    let users = [
        UserSpec::paralegal("para-000", TEAM),
        UserSpec::supervisor("supervisor", TEAM),
    ];
    for run in 1..=ctx.runs {
        for ((push, pull), kind) in pushes.iter_mut().zip(pulls.iter_mut()).zip(KINDS) {
            let label = format!("2g large record ({kind:?}) run {run}/{}", ctx.runs);
            eprintln!("{label}: push");
            let rig = Rig::start(&users)?;
            let mut device = rig.device(0, Some(&large.template))?;
            let mut supervisor = rig.device(1, None)?;
            let link = Link::start(rig.proxy_addr()?, kind.config());
            point_at(&mut device.store, &link.url())?;
            let deadline = Instant::now() + DEADLINE;
            let phase = measured(&rig, &link, || {
                until_done(&mut device.store, Until::Pushed, deadline, &label)
            })?;
            let pushed = phase.1.completed;
            let ok = pushed && verify(&label, check_large(&rig, &device.store, large, None));
            push.push(phase, ok);
            drop(link);

            eprintln!("{label}: pull");
            let link = Link::start(rig.proxy_addr()?, kind.config());
            point_at(&mut supervisor.store, &link.url())?;
            let deadline = Instant::now() + DEADLINE;
            let phase = measured(&rig, &link, || {
                until_done(&mut supervisor.store, Until::Pulled, deadline, &label)
            })?;
            let ok = pushed
                && phase.1.completed
                && verify(
                    &label,
                    check_large(&rig, &supervisor.store, large, Some(&device.store)),
                );
            pull.push(phase, ok);
        }
    }
    let floor = data::floor_of(std::slice::from_ref(&large.line))?;
    let extra = json!({ "narrative_bytes": large.narrative.len(), "records": 1 });
    for s in &pushes {
        s.emit("2g_large_record_push", floor, extra.clone());
    }
    for s in &pulls {
        s.emit("2g_large_record_pull", floor, extra.clone());
    }
    Ok(())
}

/// The large record on `store` has its narrative byte for byte and the server's heads
/// (and, for the supervisor, the author's device's heads too).
fn check_large(
    rig: &Rig,
    store: &Store,
    large: &Large,
    author: Option<&Store>,
) -> anyhow::Result<()> {
    let id = large.line.id;
    let server = stored(&rig.server)?;
    let record = store.get(id)?;
    anyhow::ensure!(
        record.get("narrative") == Some(Value::Text(large.narrative.clone())),
        "the narrative differs"
    );
    let mine = device_heads(store, id)?;
    anyhow::ensure!(
        mine.is_some() && mine.as_ref() == server.heads.get(&id),
        "heads differ from the server's"
    );
    if let Some(author) = author {
        anyhow::ensure!(
            device_heads(author, id)? == mine,
            "heads differ from the author's"
        );
    }
    Ok(())
}
