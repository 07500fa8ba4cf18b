//! W1 bulk upload and W3 incremental sync (which starts where W1 N=5,000 ends).
//!
//! W1: one device holds N records created offline (N = 1,000 and 5,000, the first lines
//! of `device-000-5000.jsonl`) and syncs; the time runs from the start of its sync until
//! it returns, which is after the server has answered that every record is durably
//! stored. W3: the same device then edits 2 fields of the first 10 records and syncs,
//! then syncs with nothing changed.

use serde_json::json;

use crate::Ctx;
use crate::data::{self, Line, Template, URGENCY};
use crate::device::Device;
use crate::measure::{Sample, emit, report};
use crate::rig::Rig;
use crate::server::UserSpec;

/// W3's edit target: bytes on the wire for 10 two-field edits, and round trips.
pub const EDIT_TARGET_BYTES: u64 = 3_000;
/// W3's no-op target.
pub const NOOP_TARGET_BYTES: u64 = 600;

/// Runs W1 for N = 1,000 (when `w1`) and 5,000, and W3 after each N = 5,000 run (when
/// `w3`), printing the reports asked for.
pub fn run(ctx: &Ctx, w1: bool, w3: bool) -> anyhow::Result<()> {
    let lines = data::read_lines(&ctx.data.join("device-000-5000.jsonl"))?;
    if w1 {
        let n = 1_000;
        eprintln!("W1 N={n}: building the device's store");
        let template = Template::build(&lines[..n])?;
        let mut samples = Vec::new();
        for run in 1..=ctx.runs {
            eprintln!("W1 N={n}: run {run}/{}", ctx.runs);
            let (_rig, _device, sample) = upload(&template)?;
            samples.push(sample);
        }
        emit(&w1_report(n, &samples, &lines[..n])?);
    }
    let n = 5_000;
    eprintln!("W1 N={n}: building the device's store");
    let template = Template::build(&lines[..n])?;
    let (mut uploads, mut edits, mut noops) = (Vec::new(), Vec::new(), Vec::new());
    let mut edit_floor = 0;
    for run in 1..=ctx.runs {
        eprintln!("W1 N={n}: run {run}/{}", ctx.runs);
        let (rig, mut device, sample) = upload(&template)?;
        uploads.push(sample);
        if w3 {
            eprintln!("W3: run {run}/{}", ctx.runs);
            let (edit, floor) = edit_and_sync(&rig, &mut device, &lines[..10])?;
            edit_floor = floor;
            edits.push(edit);
            noops.push(noop(&rig, &mut device)?);
        }
    }
    if w1 {
        emit(&w1_report(n, &uploads, &lines)?);
    }
    if w3 {
        emit(&edit_report(
            "w3_edit_10_records",
            5_000,
            &edits,
            edit_floor,
        ));
        emit(&noop_report("w3_noop", 5_000, &noops));
    }
    Ok(())
}

/// A fresh server, the device enrolled, and its first (measured) sync.
fn upload(template: &Template) -> anyhow::Result<(Rig, Device, Sample)> {
    let rig = Rig::start(&[UserSpec::paralegal("para-000", "north")])?;
    let mut device = rig.device(0, Some(template))?;
    let meter = rig.meter()?;
    let summary = device.sync()?;
    let sample = meter.finish()?;
    anyhow::ensure!(
        summary.sent == template.records && summary.unsynced == 0 && summary.refused == 0,
        "W1: the server did not store every record: {summary:?}"
    );
    Ok((rig, device, sample))
}

fn w1_report(n: usize, samples: &[Sample], lines: &[Line]) -> anyhow::Result<serde_json::Value> {
    Ok(report(
        &format!("w1_bulk_upload_{n}"),
        samples,
        Some(data::floor_of(&lines[..n])?),
        json!({ "records": n, "floor_bytes_readme": if n == 1_000 { 129_624 } else { 585_273 } }),
    ))
}

/// W3's edit: for each of `lines` (record k = 1…10 of the batch), `urgency` becomes the
/// next value after the record's own and `follow_up_date` 2026-12-0k. Returns the
/// edits as JSON lines, for the floor.
pub fn edit_ten(device: &mut Device, lines: &[Line]) -> anyhow::Result<Vec<String>> {
    let mut edits = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let urgency = data::next_in(&URGENCY, line.text_field("urgency"), 1)?;
        let date = format!("2026-12-{:02}", k + 1);
        device.store.edit(line.id, |e| {
            e.set("urgency", intake_shared::Value::Text(urgency.into()))?;
            e.set("follow_up_date", intake_shared::Value::Text(date.clone()))
        })?;
        edits.push(data::edit_line(
            line.id,
            &[("urgency", urgency), ("follow_up_date", &date)],
        ));
    }
    Ok(edits)
}

/// Edits `lines` as W3 says and measures the sync that follows; returns the sample
/// and the floor of those edits.
pub fn edit_and_sync(
    rig: &Rig,
    device: &mut Device,
    lines: &[Line],
) -> anyhow::Result<(Sample, usize)> {
    let edits = edit_ten(device, lines)?;
    let meter = rig.meter()?;
    let summary = device.sync()?;
    let sample = meter.finish()?;
    anyhow::ensure!(
        summary.sent == lines.len() && summary.unsynced == 0,
        "W3: the edits were not all stored: {summary:?}"
    );
    Ok((sample, data::floor(&edits)?))
}

/// A measured sync with nothing to send and nothing to receive.
pub fn noop(rig: &Rig, device: &mut Device) -> anyhow::Result<Sample> {
    let meter = rig.meter()?;
    let summary = device.sync()?;
    let sample = meter.finish()?;
    anyhow::ensure!(
        summary.sent == 0 && summary.received == 0,
        "a no-op sync moved records: {summary:?}"
    );
    Ok(sample)
}

pub fn edit_report(workload: &str, stored: usize, s: &[Sample], floor: usize) -> serde_json::Value {
    let mut r = report(
        workload,
        s,
        Some(floor),
        json!({ "records_stored": stored }),
    );
    let (bytes, trips) = (r["bytes_total"].as_u64(), r["requests"].as_u64());
    r["target"] = format!("<= {EDIT_TARGET_BYTES} B incl. headers, 1 round trip").into();
    r["target_met"] = (bytes <= Some(EDIT_TARGET_BYTES) && trips == Some(1)).into();
    r
}

pub fn noop_report(workload: &str, stored: usize, s: &[Sample]) -> serde_json::Value {
    let mut r = report(workload, s, None, json!({ "records_stored": stored }));
    let (bytes, trips) = (r["bytes_total"].as_u64(), r["requests"].as_u64());
    r["target"] = format!("<= {NOOP_TARGET_BYTES} B incl. headers, 1 round trip").into();
    r["target_met"] = (bytes <= Some(NOOP_TARGET_BYTES) && trips == Some(1)).into();
    r
}
