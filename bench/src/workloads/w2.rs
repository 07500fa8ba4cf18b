//! W2 fleet: 20 devices (`fleet-20x100.jsonl`, 100 records each, one paralegal per
//! device, all in one team) sync concurrently, one thread each; then a fresh supervisor
//! device of that team pulls all 2,000 records. Upload and pull are reported apart.

use std::sync::Barrier;

use serde_json::json;

use crate::Ctx;
use crate::data;
use crate::device::Device;
use crate::measure::{emit, report};
use crate::rig::Rig;
use crate::server::UserSpec;

const TEAM: &str = "fleet";

pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let lines = data::read_lines(&ctx.data.join("fleet-20x100.jsonl"))?;
    let groups: Vec<Vec<data::Line>> = data::by_device(&lines)
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let upload_floor = groups
        .iter()
        .map(|g| data::floor_of(g))
        .sum::<anyhow::Result<usize>>()?;
    let pull_floor = data::floor_of(&lines)?;
    eprintln!("W2: building {} devices' stores", groups.len());
    let templates = data::build_templates(&groups, 2)?;
    let mut users: Vec<UserSpec> = (1..=groups.len())
        .map(|i| UserSpec::paralegal(&format!("para-{i:03}"), TEAM))
        .collect();
    users.push(UserSpec::supervisor("supervisor", TEAM));

    let (mut uploads, mut pulls) = (Vec::new(), Vec::new());
    for run in 1..=ctx.runs {
        eprintln!("W2: run {run}/{}", ctx.runs);
        let rig = Rig::start(&users)?;
        let mut devices = templates
            .iter()
            .enumerate()
            .map(|(i, t)| rig.device(i, Some(t)))
            .collect::<anyhow::Result<Vec<Device>>>()?;
        let mut supervisor = rig.device(groups.len(), None)?;

        let meter = rig.meter()?;
        let sent = sync_all(&mut devices)?;
        uploads.push(meter.finish()?);
        anyhow::ensure!(
            sent == lines.len(),
            "W2: {sent} of {} records stored",
            lines.len()
        );

        let meter = rig.meter()?;
        let summary = supervisor.sync()?;
        pulls.push(meter.finish()?);
        anyhow::ensure!(
            summary.received == lines.len(),
            "W2: the supervisor received {} of {} records",
            summary.received,
            lines.len()
        );
    }
    let devices = groups.len();
    emit(&report(
        "w2_fleet_upload",
        &uploads,
        Some(upload_floor),
        json!({ "devices": devices, "records": lines.len(), "floor_bytes_readme": 344_694 }),
    ));
    emit(&report(
        "w2_supervisor_pull",
        &pulls,
        Some(pull_floor),
        json!({ "records": lines.len(), "floor_bytes_readme": 249_136 }),
    ));
    Ok(())
}

/// Syncs every device at once, one thread each; returns how many records were stored.
pub fn sync_all(devices: &mut [Device]) -> anyhow::Result<usize> {
    let start = Barrier::new(devices.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter_mut()
            .map(|d| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    d.sync()
                })
            })
            .collect();
        let mut sent = 0;
        for h in handles {
            let summary = h.join().expect("sync thread")?;
            anyhow::ensure!(
                summary.unsynced == 0 && summary.refused == 0,
                "a device did not sync everything: {summary:?}"
            );
            sent += summary.sent;
        }
        Ok(sent)
    })
}
