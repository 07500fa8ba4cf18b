//! W4 concurrent edits: a paralegal's device and a supervisor's both hold records 1–100
//! of `device-000-5000.jsonl` and edit them offline — records 1–50 the same field
//! (`urgency`, to different values), records 51–100 different fields (`phone` on the
//! device, `referred_by` on the supervisor's). Then device, supervisor and device sync
//! (the measured phase), and the replicas are checked: both different-field edits kept,
//! both same-field values visible as a conflict, and the same heads on both sides.

use intake_shared::Value;
use serde_json::json;

use crate::Ctx;
use crate::data::{self, Line, REFERRED_BY, Template, URGENCY};
use crate::device::Device;
use crate::measure::{emit, report};
use crate::rig::Rig;
use crate::server::UserSpec;

const RECORDS: usize = 100;
const SAME_FIELD: usize = 50;

/// What the replicas hold after the three syncs.
#[derive(Default)]
struct Outcome {
    kept_both_different_field: usize,
    conflicts_visible_same_field: usize,
    converged: usize,
}

pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let mut lines = data::read_lines(&ctx.data.join("device-000-5000.jsonl"))?;
    lines.truncate(RECORDS);
    let template = Template::build(&lines)?;
    let users = [
        UserSpec::paralegal("para-000", "north"),
        UserSpec::supervisor("supervisor", "north"),
    ];
    let (mut samples, mut outcomes, mut floor) = (Vec::new(), Vec::new(), 0);
    for run in 1..=ctx.runs {
        eprintln!("W4: run {run}/{}", ctx.runs);
        let rig = Rig::start(&users)?;
        let mut device = rig.device(0, Some(&template))?;
        let mut supervisor = rig.device(1, None)?;
        anyhow::ensure!(device.sync()?.sent == RECORDS, "W4: upload incomplete");
        anyhow::ensure!(
            supervisor.sync()?.received == RECORDS,
            "W4: the supervisor did not receive every record"
        );
        let (device_edits, supervisor_edits) = edit_both(&mut device, &mut supervisor, &lines)?;
        // Each side's edits travel up once and down once.
        floor = 2 * (data::floor(&device_edits)? + data::floor(&supervisor_edits)?);

        let meter = rig.meter()?;
        device.sync()?;
        supervisor.sync()?;
        device.sync()?;
        samples.push(meter.finish()?);
        outcomes.push(check(&device, &supervisor, &lines)?);
    }
    let last = outcomes.last().expect("at least one run");
    let all_runs_same = outcomes.iter().all(|o| {
        (
            o.kept_both_different_field,
            o.conflicts_visible_same_field,
            o.converged,
        ) == (
            last.kept_both_different_field,
            last.conflicts_visible_same_field,
            last.converged,
        )
    });
    emit(&report(
        "w4_concurrent_edits",
        &samples,
        Some(floor),
        json!({
            "records": RECORDS,
            "floor_bytes_readme": 9_148,
            "syncs": "device, supervisor, device",
            "kept_both_different_field": last.kept_both_different_field,
            "different_field_pairs": RECORDS - SAME_FIELD,
            "conflicts_visible_same_field": last.conflicts_visible_same_field,
            "same_field_pairs": SAME_FIELD,
            "converged": last.converged == RECORDS,
            "converged_records": last.converged,
            "outcome_same_in_every_run": all_runs_same,
        }),
    ));
    Ok(())
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

/// The offline edits of both sides, as README's W4 says; returns each side's edits as
/// JSON lines for the floor.
fn edit_both(
    device: &mut Device,
    supervisor: &mut Device,
    lines: &[Line],
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    for (i, line) in lines.iter().enumerate() {
        if i < SAME_FIELD {
            let own = line.text_field("urgency");
            let d = data::next_in(&URGENCY, own, 1)?;
            let s = data::next_in(&URGENCY, own, 2)?;
            device.store.edit(line.id, |e| e.set("urgency", text(d)))?;
            supervisor
                .store
                .edit(line.id, |e| e.set("urgency", text(s)))?;
            mine.push(data::edit_line(line.id, &[("urgency", d)]));
            theirs.push(data::edit_line(line.id, &[("urgency", s)]));
        } else {
            let phone = format!("+383 44 000 {:03}", i + 1);
            let referred = data::next_in(&REFERRED_BY, line.text_field("referred_by"), 1)?;
            device
                .store
                .edit(line.id, |e| e.set("phone", text(&phone)))?;
            supervisor
                .store
                .edit(line.id, |e| e.set("referred_by", text(referred)))?;
            mine.push(data::edit_line(line.id, &[("phone", &phone)]));
            theirs.push(data::edit_line(line.id, &[("referred_by", referred)]));
        }
    }
    Ok((mine, theirs))
}

/// Counts, over both replicas, what README's W4 asks for.
fn check(device: &Device, supervisor: &Device, lines: &[Line]) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    for (i, line) in lines.iter().enumerate() {
        let mut a = device.store.get(line.id)?;
        let mut b = supervisor.store.get(line.id)?;
        if a.heads() == b.heads() {
            out.converged += 1;
        }
        if i < SAME_FIELD {
            let own = line.text_field("urgency");
            let want = [
                text(data::next_in(&URGENCY, own, 1)?),
                text(data::next_in(&URGENCY, own, 2)?),
            ];
            let visible = |r: &mut intake_shared::Record| {
                r.conflicts().iter().any(|c| {
                    c.field == "urgency"
                        && c.values.len() == 2
                        && want.iter().all(|w| c.values.iter().any(|v| v.value == *w))
                })
            };
            if visible(&mut a) && visible(&mut b) {
                out.conflicts_visible_same_field += 1;
            }
        } else {
            let phone = text(&format!("+383 44 000 {:03}", i + 1));
            let referred = text(data::next_in(
                &REFERRED_BY,
                line.text_field("referred_by"),
                1,
            )?);
            let kept = |r: &intake_shared::Record| {
                r.get("phone") == Some(phone.clone())
                    && r.get("referred_by") == Some(referred.clone())
            };
            if kept(&a) && kept(&b) {
                out.kept_both_different_field += 1;
            }
        }
    }
    Ok(out)
}
