//! A process for the sync kill test: syncs a device's store with small requests until
//! nothing is left, printing `round N` after each answered round trip (its answer is
//! committed by then), so the test can SIGKILL it between or inside round trips.
//!
//! Usage: `intake-sync-device DIR KEY_HEX BYTES` (BYTES: the push and page budget).
//! Exits 0 once a sync has ended with nothing left to push.

use std::io::Write;

use anyhow::Context;
use intake_client::{Key, Store, SyncOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().context("DIR")?;
    let key: [u8; 32] = hex::decode(args.next().context("KEY_HEX")?)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("key must be 32 bytes"))?;
    let bytes: u32 = args.next().context("BYTES")?.parse()?;
    let mut store = Store::open(std::path::Path::new(&dir), &Key::from_bytes(key))?;
    let options = SyncOptions {
        page_bytes: bytes,
        push_bytes: bytes as usize,
        ..SyncOptions::default()
    };
    let mut rounds = 0u64;
    loop {
        let result = intake_client::sync(&mut store, &options, &mut |_| {
            rounds += 1;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "round {rounds}");
            let _ = out.flush();
        });
        match result {
            Ok(s) if s.unsynced == 0 => return Ok(()),
            Ok(_) => {}
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(e.into()),
        }
    }
}
