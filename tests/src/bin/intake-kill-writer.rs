//! A process for the kill test: writes records into a store in a loop and prints a
//! line after each save has returned, so the test knows exactly what was acknowledged
//! when it SIGKILLs this process at a random moment.
//!
//! Usage: `intake-kill-writer DIR KEY_HEX SEED`. Lines: `new ID` after a record was
//! created, `comment ID N` after the N-th comment on that record was saved.

use std::io::Write;

use anyhow::Context;
use intake_client::{Key, Store};
use intake_shared::Value;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().context("DIR")?;
    let key_hex = args.next().context("KEY_HEX")?;
    let mut seed: u64 = args.next().context("SEED")?.parse()?;
    let key: [u8; 32] = hex::decode(key_hex)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("key must be 32 bytes"))?;
    let mut store = Store::open(std::path::Path::new(&dir), &Key::from_bytes(key))?;
    let mut ids = Vec::new();
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if ids.is_empty() || seed.is_multiple_of(3) {
            let id = store.create("intake", |e| {
                e.set("full_name", Value::Text(format!("Kill Test {n}")))?;
                e.set("narrative", Value::Text("x".repeat((seed % 500) as usize)))
            })?;
            writeln!(out, "new {id}")?;
            ids.push((id, 0u64));
        } else {
            let i = (seed as usize / 3) % ids.len();
            let (id, count) = &mut ids[i];
            *count += 1;
            let c = *count;
            store.edit(*id, |e| e.add_comment(&format!("comment {c}")))?;
            writeln!(out, "comment {id} {c}")?;
        }
        out.flush()?;
    }
    Ok(())
}
