//! `intake-bench-device`: one enrolled device syncing in a process of its own, so that
//! `intake-bench 2g` can SIGKILL it at any moment, as a phone's OS kills an app. It
//! opens the store, syncs as the app's loop would until done, and exits 0:
//!
//! ```text
//! intake-bench-device --dir D --key HEX
//! ```
//!
//! The loop is `workloads::twog::until_done`'s: sync with the default options; after a
//! failed sync wait `background::backoff(1 s, failures)`; done when a sync succeeds
//! with nothing unsynced and nothing received (a pushing device receives nothing: the
//! server does not send a device its own records back). It exits 1 at an error the
//! app's loop stops at (revoked, too old).
//!
//! It prints, for `2g` to add up: `sync start` before each sync; `trip requests=N
//! sent=N received=N retries=N ms=N` after each answered round trip (ms: since the
//! process started); `sync ok sent=N
//! received=N requests=N retries=N unsynced=N` or `sync failed` after each sync. Never
//! record content, tokens or keys.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use intake_client::sync::background::backoff;
use intake_client::{Key, Store, SyncOptions};

fn main() -> anyhow::Result<()> {
    let (mut dir, mut key): (Option<PathBuf>, Option<[u8; 32]>) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--dir" => dir = Some(args.next().context("--dir D")?.into()),
            "--key" => key = Some(parse_key(&args.next().context("--key HEX")?)?),
            other => bail!("unknown option {other}"),
        }
    }
    let dir = dir.context("--dir D is required")?;
    let key = Key::from_bytes(key.context("--key HEX is required")?);
    let mut store = Store::open(&dir, &key)?;
    let mut out = std::io::stdout();
    let started = std::time::Instant::now();
    let mut failures = 0u32;
    loop {
        writeln!(out, "sync start")?;
        let result = intake_client::sync(&mut store, &SyncOptions::default(), &mut |p| {
            let s = &p.summary;
            // A closed pipe must not stop the sync: the parent reads to the end.
            let _ = writeln!(
                std::io::stdout(),
                "trip requests={} sent={} received={} retries={} ms={}",
                s.requests,
                s.sent,
                s.received,
                s.retries,
                started.elapsed().as_millis()
            );
        });
        match result {
            Ok(s) => {
                writeln!(
                    out,
                    "sync ok sent={} received={} requests={} retries={} unsynced={}",
                    s.sent, s.received, s.requests, s.retries, s.unsynced
                )?;
                failures = 0;
                if s.unsynced == 0 && s.received == 0 {
                    return Ok(());
                }
            }
            Err(e) => {
                writeln!(out, "sync failed")?;
                eprintln!("intake-bench-device: sync failed: {e}");
                if e.stops_the_loop() {
                    bail!("the app's loop would stop here: {e}");
                }
                failures += 1;
                std::thread::sleep(backoff(Duration::from_secs(1), failures));
            }
        }
    }
}

/// 64 hexadecimal digits.
fn parse_key(hex: &str) -> anyhow::Result<[u8; 32]> {
    anyhow::ensure!(
        hex.len() == 64 && hex.is_ascii(),
        "--key takes 64 hexadecimal digits"
    );
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).context("--key: not hex")?;
    }
    Ok(key)
}
