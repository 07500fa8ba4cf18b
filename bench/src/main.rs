//! Intake's benchmark program. It prints one JSON object per measurement for a person
//! or a script to compare; it asserts nothing. Run it in release mode:
//!
//! ```text
//! cargo run --release -p intake-bench -- save [--n 1000] [--data ../shared/bench]
//! ```
//!
//! `save`: local save latency with SQLCipher and durable commits (WAL,
//! `synchronous=FULL`): creating a record from a benchmark line (27 fields), and a
//! one-field edit of an existing record, each timed over `n` saves.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use intake_client::{Key, Store};
use intake_shared::{RecordId, Value};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "help".into());
    let mut n = 1000usize;
    let mut data = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/bench"));
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--n" => n = args.next().context("--n N")?.parse()?,
            "--data" => data = args.next().context("--data DIR")?.into(),
            other => bail!("unknown option {other}"),
        }
    }
    match command.as_str() {
        "save" => save_latency(&data, n),
        _ => {
            eprintln!("usage: intake-bench save [--n N] [--data DIR]");
            Ok(())
        }
    }
}

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

fn save_latency(data: &std::path::Path, n: usize) -> anyhow::Result<()> {
    let file = data.join("device-000-5000.jsonl");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .take(n)
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(dir.path(), &Key::from_bytes([7; 32]))?;
    let mut create = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    for line in &lines {
        let id: RecordId = line["id"].as_str().context("id")?.parse()?;
        let fields = line["fields"].as_object().context("fields")?;
        let start = Instant::now();
        store.create_with_id(id, "intake", |e| {
            for (name, v) in fields {
                match Value::from_json(v) {
                    Some(v) if !v.is_blank() => e.set(name, v)?,
                    _ => {}
                }
            }
            Ok(())
        })?;
        create.push(start.elapsed().as_secs_f64() * 1e3);
        ids.push(id);
    }
    let urgency = ["low", "medium", "high", "critical"];
    let mut edit = Vec::with_capacity(n);
    for (i, id) in ids.iter().enumerate() {
        let start = Instant::now();
        store.edit(*id, |e| {
            e.set("urgency", Value::Text(urgency[i % 4].into()))
        })?;
        edit.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let out = serde_json::json!({
        "workload": "local_save_latency",
        "store": "SQLCipher, WAL, synchronous=FULL",
        "create_27_fields": stats(create),
        "edit_1_field": stats(edit),
    });
    println!("{out}");
    Ok(())
}
