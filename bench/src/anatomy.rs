//! `anatomy`: where the bytes and the CPU of a bulk sync go, record by record, without
//! a server. It takes the first `n` records of `device-000-5000.jsonl` as a device
//! stores them and reports, per record: the JSON line, the Automerge changes a push
//! carries, the compacted document a fresh device is sent (as saved now, and without
//! Automerge's internal DEFLATE), each compressed the way the transport does (zstd 3,
//! one request or page at a time) and at level 19; and the median time of each step the
//! client and the server take per record. The figures explain bytes ÷ floor and W1's
//! time; see `docs/BENCHMARKS.md`.
//!
//! "As saved" is `Record::save` (what devices keep as snapshots); "plain" is
//! `Record::save_plain`, what the server stores and sends.

use std::path::Path;
use std::time::Instant;

use intake_client::{Key, Store};
use intake_shared::protocol::{
    PROTOCOL_VERSION, RecordChanges, RecordDoc, SyncRequest, SyncResponse,
};
use intake_shared::record::{Incoming, decode_incoming};
use intake_shared::{FormRegistry, Record};
use serde_json::json;

use crate::data::{self, KEY, Template};

fn z(bytes: &[u8], level: i32) -> anyhow::Result<usize> {
    Ok(zstd::bulk::compress(bytes, level)?.len())
}

fn median_us(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2] * 10.0).round() / 10.0
}

/// Times `f` once per item, in microseconds.
fn time_each<T>(items: &[T], mut f: impl FnMut(&T) -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut v = Vec::with_capacity(items.len());
    for item in items {
        let start = Instant::now();
        f(item)?;
        v.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(median_us(v))
}

pub fn run(data_dir: &Path, n: usize) -> anyhow::Result<()> {
    let mut lines = data::read_lines(&data_dir.join("device-000-5000.jsonl"))?;
    lines.truncate(n);
    eprintln!("anatomy: {} records", lines.len());
    let template = Template::build(&lines)?;
    let dir = tempfile::tempdir()?;
    template.copy_to(dir.path())?;
    let store = Store::open(dir.path(), &Key::from_bytes(KEY))?;
    let forms = FormRegistry::builtin();

    let mut changes = Vec::new();
    let mut docs = Vec::new();
    let mut docs_plain = Vec::new();
    for l in &lines {
        let mut r = store.get(l.id)?;
        changes.push(r.change_list_since(&[]));
        let doc = r.save();
        docs_plain.push(r.save_plain());
        docs.push(doc);
    }
    let wire = |l: &data::Line| *l.id.as_uuid().as_bytes();
    let request = SyncRequest {
        version: PROTOCOL_VERSION,
        cursor: 0,
        page_bytes: intake_client::SyncOptions::default().page_bytes,
        push: lines
            .iter()
            .zip(&changes)
            .map(|(l, c)| RecordChanges {
                record: wire(l),
                changes: c.clone(),
            })
            .collect(),
        want_docs: Vec::new(),
        ..SyncRequest::default()
    }
    .encode();
    // The same request as protocol version 1 carried it: changes one after the other.
    let request_v1 = {
        let mut r = SyncRequest::decode(&request)?;
        r.version = 1;
        r.encode()
    };
    let page = |docs: &[Vec<u8>]| {
        SyncResponse {
            version: PROTOCOL_VERSION,
            results: Vec::new(),
            docs: lines
                .iter()
                .zip(docs)
                .map(|(l, d)| RecordDoc {
                    record: wire(l),
                    doc: d.clone(),
                })
                .collect(),
            changes: Vec::new(),
            removed: Vec::new(),
            cursor: 0,
            more: false,
            ..SyncResponse::default()
        }
        .encode()
    };
    let (page_now, page_plain) = (page(&docs), page(&docs_plain));
    // What the server sends a fresh device now: a record new with one change is stored
    // and sent as that change, packed with the others.
    let flat_changes: Vec<Vec<u8>> = changes.iter().map(|c| c.concat()).collect();
    let page_changes = page(&flat_changes);
    let json_text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
    let per = |bytes: usize| (bytes as f64 / lines.len() as f64).round();
    let sum = |v: &[Vec<u8>]| v.iter().map(Vec::len).sum::<usize>();
    let flat: Vec<Vec<u8>> = changes.iter().map(|c| c.concat()).collect();

    let bytes = json!({
        "json_line": { "raw": per(json_text.len()), "zstd3": per(z(json_text.as_bytes(), 3)?), "zstd19": per(data::floor_of(&lines)?) },
        "push_changes": {
            "changes_per_record": per(changes.iter().map(Vec::len).sum::<usize>()) ,
            "raw": per(sum(&flat)), "request_encoded": per(request.len()),
            "request_zstd3": per(z(&request, 3)?), "request_zstd12": per(z(&request, 12)?),
            "request_zstd19": per(z(&request, 19)?),
            "request_v1_encoded": per(request_v1.len()),
            "request_v1_zstd3": per(z(&request_v1, 3)?), "request_v1_zstd19": per(z(&request_v1, 19)?),
        },
        "pull_docs_as_saved": {
            "raw": per(sum(&docs)), "page_encoded": per(page_now.len()),
            "page_zstd3": per(z(&page_now, 3)?), "page_zstd19": per(z(&page_now, 19)?),
        },
        "pull_as_stored_single_change": {
            "page_encoded": per(page_changes.len()),
            "page_zstd3": per(z(&page_changes, 3)?), "page_zstd19": per(z(&page_changes, 19)?),
        },
        "pull_docs_save_nocompress": {
            "raw": per(sum(&docs_plain)), "page_encoded": per(page_plain.len()),
            "page_zstd3": per(z(&page_plain, 3)?), "page_zstd19": per(z(&page_plain, 19)?),
        },
        "push_results_zstd3": per(z(&results(&lines), 3)?),
    });
    // What a higher transport level would cost the sender, per record.
    let mut levels = serde_json::Map::new();
    for level in [3, 9, 12, 15, 19] {
        let start = Instant::now();
        let size = z(&request, level)?;
        let us = start.elapsed().as_secs_f64() * 1e6 / lines.len() as f64;
        levels.insert(
            format!("request_zstd{level}"),
            json!({ "bytes": per(size), "us": (us * 10.0).round() / 10.0 }),
        );
    }

    // The steps of a push and a fresh pull, per record, as client and server take them.
    let ids: Vec<_> = lines.iter().map(|l| l.id).collect();
    let client_get = time_each(&ids, |id| store.get(*id).map(drop).map_err(Into::into))?;
    let mut records: Vec<Record> = ids
        .iter()
        .map(|id| store.get(*id))
        .collect::<Result<_, _>>()?;
    let client_changes = {
        let mut v = Vec::new();
        for r in &mut records {
            let start = Instant::now();
            let _ = r.change_list_since(&[]);
            v.push(start.elapsed().as_secs_f64() * 1e6);
        }
        median_us(v)
    };
    // The server's path: decode each change once, build the record from the decoded
    // changes, save it without DEFLATE (`server/src/sync.rs` `prepare`).
    let server_decode = time_each(&flat, |b| decode_incoming(b).map(drop).map_err(Into::into))?;
    let decoded: Vec<Vec<Incoming>> = flat
        .iter()
        .map(|b| decode_incoming(b))
        .collect::<Result<_, _>>()?;
    let server_build = time_each(&decoded, |d| {
        let refs: Vec<&Incoming> = d.iter().collect();
        Record::from_incoming(&refs, forms)
            .map(drop)
            .map_err(Into::into)
    })?;
    let mut merged: Vec<Record> = decoded
        .iter()
        .map(|d| Record::from_incoming(&d.iter().collect::<Vec<_>>(), forms))
        .collect::<Result<_, _>>()?;
    let server_save = {
        let mut v = Vec::new();
        for r in &mut merged {
            let start = Instant::now();
            let _ = r.save_plain();
            v.push(start.elapsed().as_secs_f64() * 1e6);
        }
        median_us(v)
    };
    let device_load_doc = time_each(&docs, |d| {
        Record::load(d, forms).map(drop).map_err(Into::into)
    })?;
    let device_load_plain = time_each(&docs_plain, |d| {
        Record::load(d, forms).map(drop).map_err(Into::into)
    })?;

    crate::measure::emit(&json!({
        "workload": "anatomy",
        "records": lines.len(),
        "bytes_per_record": bytes,
        "push_compression_per_record": levels,
        "median_us_per_record": {
            "client_store_get": client_get,
            "client_change_list_since": client_changes,
            "server_decode_incoming": server_decode,
            "server_record_from_incoming": server_build,
            "server_record_save_plain": server_save,
            "device_record_load_doc": device_load_doc,
            "device_record_load_doc_nocompress": device_load_plain,
        },
    }));
    Ok(())
}

/// The results part of a push's answer: one `Stored` per record, as the server sends.
fn results(lines: &[data::Line]) -> Vec<u8> {
    use intake_shared::protocol::{Outcome, PushResult};
    SyncResponse {
        version: PROTOCOL_VERSION,
        results: lines
            .iter()
            .map(|l| PushResult {
                record: *l.id.as_uuid().as_bytes(),
                outcome: Outcome::Stored,
            })
            .collect(),
        docs: Vec::new(),
        changes: Vec::new(),
        removed: Vec::new(),
        cursor: 0,
        more: false,
        ..SyncResponse::default()
    }
    .encode()
}
