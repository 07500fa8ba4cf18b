//! `floors`: the floors of README's workloads as this program computes them, beside
//! README's own figures, to show that every bytes ÷ floor uses the same floor.

use serde_json::json;

use crate::Ctx;
use crate::data::{self, REFERRED_BY, URGENCY};

pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let w1 = data::read_lines(&ctx.data.join("device-000-5000.jsonl"))?;
    let fleet = data::read_lines(&ctx.data.join("fleet-20x100.jsonl"))?;
    let fleet_up = data::by_device(&fleet)
        .iter()
        .map(|(_, g)| data::floor_of(g))
        .sum::<anyhow::Result<usize>>()?;
    let mut w3 = Vec::new();
    for (k, l) in w1[..10].iter().enumerate() {
        let urgency = data::next_in(&URGENCY, l.text_field("urgency"), 1)?;
        let date = format!("2026-12-{:02}", k + 1);
        w3.push(data::edit_line(
            l.id,
            &[("urgency", urgency), ("follow_up_date", &date)],
        ));
    }
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    for (i, l) in w1[..100].iter().enumerate() {
        if i < 50 {
            let own = l.text_field("urgency");
            mine.push(data::edit_line(
                l.id,
                &[("urgency", data::next_in(&URGENCY, own, 1)?)],
            ));
            theirs.push(data::edit_line(
                l.id,
                &[("urgency", data::next_in(&URGENCY, own, 2)?)],
            ));
        } else {
            let phone = format!("+383 44 000 {:03}", i + 1);
            let referred = data::next_in(&REFERRED_BY, l.text_field("referred_by"), 1)?;
            mine.push(data::edit_line(l.id, &[("phone", &phone)]));
            theirs.push(data::edit_line(l.id, &[("referred_by", referred)]));
        }
    }
    let pairs = [
        ("w1_5000", data::floor_of(&w1)?, 585_273),
        ("w1_1000", data::floor_of(&w1[..1000])?, 129_624),
        ("w2_upload", fleet_up, 344_694),
        ("w2_pull", data::floor_of(&fleet)?, 249_136),
        ("w3_edit", data::floor(&w3)?, 361),
        (
            "w4",
            2 * (data::floor(&mine)? + data::floor(&theirs)?),
            9_148,
        ),
    ];
    let mut out = json!({ "workload": "floors" });
    for (name, ours, readme) in pairs {
        out[name] = json!({ "computed": ours, "readme": readme, "same": ours == readme });
    }
    crate::measure::emit(&out);
    Ok(())
}
