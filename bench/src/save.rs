//! `save`: local save latency with SQLCipher and durable commits (WAL,
//! `synchronous=FULL`): creating a record from a benchmark line (27 fields), and a
//! one-field edit of an existing record, each timed over `n` saves.

use std::path::Path;
use std::time::Instant;

use intake_client::{Key, Store};
use intake_shared::Value;

use crate::data::{KEY, read_lines};

/// Statistics of a series of durations, in milliseconds.
fn stats(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    serde_json::json!({
        "n": ms.len(),
        "median_ms": at(0.5),
        "p99_ms": at(0.99),
        "min_ms": ms[0],
        "max_ms": ms[ms.len() - 1],
    })
}

pub fn run(data: &Path, n: usize) -> anyhow::Result<()> {
    eprintln!("save: {n} creates and {n} edits");
    let mut lines = read_lines(&data.join("device-000-5000.jsonl"))?;
    lines.truncate(n);
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(dir.path(), &Key::from_bytes(KEY))?;
    let mut create = Vec::with_capacity(n);
    for line in &lines {
        let start = Instant::now();
        crate::data::create_line(&mut store, line)?;
        create.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let urgency = ["low", "medium", "high", "critical"];
    let mut edit = Vec::with_capacity(n);
    for (i, line) in lines.iter().enumerate() {
        let start = Instant::now();
        store.edit(line.id, |e| {
            e.set("urgency", Value::Text(urgency[i % 4].into()))
        })?;
        edit.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let out = serde_json::json!({
        "workload": "local_save_latency",
        "store": "SQLCipher, WAL, synchronous=FULL",
        "create_27_fields": stats(create),
        "edit_1_field": stats(edit),
        "target": "p99 <= 5 ms",
    });
    crate::measure::emit(&out);
    Ok(())
}
