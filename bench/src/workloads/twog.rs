//! `2g`: W5 of `../shared/bench/README.md`, the same work as W1 and W2's pull over the
//! field's bad 2G link, and the same again over a clean link of the same rate and delay
//! (how a phase is measured there, and how a device retries: [`super::twog_link`]).
//!
//! Scenarios, each on a fresh server: a device pushes W1's 5,000 records; a fresh
//! supervisor pulls W2's 2,000 (loaded straight through the proxy beforehand, not
//! measured); one record with a ~2 MB narrative is pushed, then pulled by a fresh
//! supervisor. [`super::twog_kill`] adds the fourth: a device process SIGKILLed at
//! random moments during the push and during the pull. Scenarios 1–3 run `--runs`
//! times over each link, the two links alternating so that noise hits both alike.

use std::time::Instant;

use anyhow::Context;
use intake_client::Store;
use intake_shared::{RecordId, Value};
use intake_tests::link::{Link, LinkStats};
use serde_json::{Value as Json, json};

use super::twog_link::{
    DEADLINE, Kind, Outcome, Phase, TEAM, Until, device_heads, measured, merge, point_at,
    same_heads, stored, twog_fields, until_done,
};
use crate::Ctx;
use crate::data::{self, Line, Template};
use crate::device::Device;
use crate::measure::{Sample, emit, report};
use crate::rig::Rig;
use crate::server::UserSpec;
use crate::workloads::{twog_kill, w2};

/// The large record's narrative, in bytes of UTF-8.
const NARRATIVE_BYTES: usize = 2_000_000;

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
    const WORDS: &str = "shkolla klasa nxënësit drejtori prindërit komuna dokumentet \
        regjistrimi gjuha ndarja romë ashkali egjiptianë vendimi mësuesja fëmijët lagjja \
        zyra çështja ankesa gjykata vërtetimi letërnjoftimi certifikata lindjes pronës \
        kërkesa përgjigje muaj javë herë nuk kanë pranuar thanë se duhet të paguajnë për \
        në me dhe por gjithashtu përkthyesi shërbimi çmimi";
    let vocabulary: Vec<&str> = WORDS.split_whitespace().collect();
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
            let word = vocabulary[(r % vocabulary.len() as u64) as usize];
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
