//! `tls`: W1 (N = 1,000) and W3's 10-edit and no-op syncs again, with the server
//! speaking TLS as it does in production (the other workloads run plain HTTP on
//! loopback, as README asks). The proxy then counts TLS records, handshakes included;
//! requests are counted by the client, since the proxy cannot read them.
//!
//! The certificates are the tests' (`intake_tests::tls::Certs`): a CA the devices trust
//! (their `ca_file`) and a server certificate for 127.0.0.1, sent as a two-certificate
//! chain like a public CA's leaf and intermediate, with ECDSA P-256 keys (Let's Encrypt's
//! default). Until session 6 they were RSA 2048 from the `openssl` command, whose larger
//! certificates and signatures cost more bytes per handshake.

use anyhow::Context;
use serde_json::json;

pub use intake_tests::tls::Certs;

use crate::Ctx;
use crate::data::{self, Template};
use crate::measure::{emit, report};
use crate::rig::Rig;
use crate::server::UserSpec;
use crate::workloads::w1;

pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let n = 1_000;
    let lines = data::read_lines(&ctx.data.join("device-000-5000.jsonl"))?;
    let certs = Certs::make()?;
    eprintln!("tls: building the device's store");
    let template = Template::build(&lines[..n])?;
    let (mut uploads, mut edits, mut noops) = (Vec::new(), Vec::new(), Vec::new());
    let (mut trips_up, mut trips_edit, mut trips_noop) = (Vec::new(), Vec::new(), Vec::new());
    let mut floor = 0;
    for run in 1..=ctx.runs {
        eprintln!("tls: run {run}/{}", ctx.runs);
        let rig = Rig::start_tls(&[UserSpec::paralegal("para-000", "north")], &certs)?;
        let mut device = rig.device(0, Some(&template))?;
        let meter = rig.meter()?;
        let summary = device.sync()?;
        uploads.push(meter.finish()?);
        anyhow::ensure!(summary.sent == n, "tls: upload incomplete: {summary:?}");
        trips_up.push(summary.requests);

        let edited = w1::edit_ten(&mut device, &lines[..10])?;
        floor = data::floor(&edited)?;
        let meter = rig.meter()?;
        let summary = device.sync()?;
        edits.push(meter.finish()?);
        trips_edit.push(summary.requests);

        let meter = rig.meter()?;
        let summary = device.sync()?;
        noops.push(meter.finish()?);
        trips_noop.push(summary.requests);
    }
    let finish = |mut r: serde_json::Value, trips: &[usize], target: Option<u64>| {
        let mut t = trips.to_vec();
        t.sort_unstable();
        let requests = t[t.len() / 2];
        r["requests"] = requests.into();
        strip_heads(&mut r);
        r["transport"] = "TLS 1.3, RSA 2048, chain of 2 certificates".into();
        if let Some(bytes) = target {
            r["target"] = format!("<= {bytes} B incl. headers, 1 round trip").into();
            r["target_met"] = (r["bytes_total"].as_u64() <= Some(bytes) && requests == 1).into();
        }
        r
    };
    let w1_floor = data::floor_of(&lines[..n])?;
    let name = format!("tls_w1_bulk_upload_{n}");
    let upload = report(&name, &uploads, Some(w1_floor), json!({ "records": n }));
    emit(&finish(upload, &trips_up, None));
    let edit = report("tls_w3_edit_10_records", &edits, Some(floor), json!({}));
    emit(&finish(edit, &trips_edit, Some(w1::EDIT_TARGET_BYTES)));
    let noop = report("tls_w3_noop", &noops, None, json!({}));
    emit(&finish(noop, &trips_noop, Some(w1::NOOP_TARGET_BYTES)));
    kept_client(ctx, &certs)
}

/// The no-op sync again, spoken directly with the client's exact request and headers,
/// over one HTTP client kept across syncs, as the client library keeps its own: back to
/// back, the connection is reused (what `tls_w3_noop` measures too); with a new
/// connection per sync (as when syncs are further apart than the server's 75 s
/// keep-alive), the TLS session is resumed from its ticket, without certificates.
fn kept_client(ctx: &Ctx, certs: &Certs) -> anyhow::Result<()> {
    for (name, reuse) in [
        ("tls_noop_client_kept_connection_reused", true),
        ("tls_noop_client_kept_session_resumed", false),
    ] {
        let rig = Rig::start_tls(&[UserSpec::paralegal("para-000", "north")], certs)?;
        let device = rig.device(0, None)?;
        let enrolment = device.store.enrolment()?.context("enrolled")?;
        intake_client::sync::ensure_crypto_provider();
        let pem = std::fs::read(&certs.ca)?;
        let mut builder = reqwest::blocking::Client::builder()
            .user_agent(concat!("intake/", env!("CARGO_PKG_VERSION")))
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem)?);
        if !reuse {
            builder = builder.pool_max_idle_per_host(0);
        }
        let client = builder.build()?;
        // The first sync of a kept client pays the full handshake; later ones do not.
        raw_noop(&client, &enrolment.server, &enrolment.token)?;
        let mut samples = Vec::new();
        for _ in 0..ctx.runs {
            let meter = rig.meter()?;
            raw_noop(&client, &enrolment.server, &enrolment.token)?;
            samples.push(meter.finish()?);
        }
        let mut r = report(name, &samples, None, json!({}));
        // The proxy cannot read TLS: each measured sync is one request by construction.
        r["requests"] = 1.into();
        strip_heads(&mut r);
        r["transport"] = "TLS 1.3, RSA 2048, chain of 2 certificates".into();
        r["target"] = format!("<= {} B incl. headers, 1 round trip", w1::NOOP_TARGET_BYTES).into();
        r["target_met"] = (r["bytes_total"].as_u64() <= Some(w1::NOOP_TARGET_BYTES)).into();
        emit(&r);
    }
    Ok(())
}

/// Over TLS the proxy sees no HTTP heads: leave out counts that would read as zero.
fn strip_heads(r: &mut serde_json::Value) {
    if let Some(o) = r.as_object_mut() {
        o.remove("header_bytes_up");
        o.remove("header_bytes_down");
    }
}

/// One no-op sync request, byte for byte what `intake_client::sync` sends.
fn raw_noop(client: &reqwest::blocking::Client, server: &str, token: &str) -> anyhow::Result<()> {
    use intake_shared::protocol::{CONTENT_TYPE, PROTOCOL_VERSION, SyncRequest, VERSION_HEADER};
    let request = SyncRequest {
        version: PROTOCOL_VERSION,
        cursor: 0,
        page_bytes: intake_client::SyncOptions::default().page_bytes,
        push: Vec::new(),
        want_docs: Vec::new(),
        ..SyncRequest::default()
    };
    let plain = request.encode();
    let body = zstd::bulk::compress(
        &plain,
        intake_shared::protocol::compression_level(plain.len()),
    )?;
    let resp = client
        .post(format!("{server}/v1/sync"))
        .bearer_auth(token)
        .header(VERSION_HEADER, PROTOCOL_VERSION.to_string())
        .header("content-type", CONTENT_TYPE)
        .header("content-encoding", "zstd")
        .header("accept-encoding", "zstd")
        .body(body)
        .send()?;
    anyhow::ensure!(resp.status().is_success(), "no-op sync: {}", resp.status());
    resp.bytes()?;
    Ok(())
}
