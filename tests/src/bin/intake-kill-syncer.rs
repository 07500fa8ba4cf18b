//! A process for the client-kill test (`tests/tests/e2e/kill_mid_sync.rs`): a device that
//! saves a few edits, then syncs, a few times over, printing a line at every point the
//! test needs to know about, so that when the test SIGKILLs it the last line printed
//! says where the kill landed and the lines before it say which saves were
//! acknowledged. With a pause point it stops, after an answer arrived and before it is
//! committed, until a line comes on stdin: the test kills it there, deterministically.
//!
//! Usage: `intake-kill-syncer DIR KEY_HEX TAG SEED CYCLES PAUSE BYTES`, PAUSE one of
//! `none`, `push` (the first answer that acknowledges pushed records), `pull` (the
//! first answer that carries records or changes). Lines, each flushed before the next
//! step starts:
//! `start` (store open), `new ID` and `comment ID TEXT` (after the save returned),
//! `send push=N page=B` (before a request goes out), `received push=N docs=D
//! changes=C` (answer in, not committed), `paused`, `round N` (an answer committed),
//! `synced` (a sync ended with nothing left to push), `retry` (a sync failed and is
//! tried again). Exits 0 after CYCLES cycles.

use std::io::{BufRead, Write};

use anyhow::Context;
use intake_client::sync::{Observer, Received, Sending};
use intake_client::{Key, Store, SyncOptions};
use intake_shared::{RecordId, Value};

/// Prints each point of the sync, and pauses at the chosen one.
struct Printer {
    pause: String,
    paused: bool,
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the test is gone; the process is about to be killed.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl Observer for Printer {
    fn sending(&mut self, r: &Sending) {
        say(&format!(
            "send push={} page={}",
            r.push_records, r.page_bytes
        ));
    }

    fn received(&mut self, a: &Received) {
        say(&format!(
            "received push={} docs={} changes={}",
            a.push_results, a.docs, a.changes
        ));
        let hit = match self.pause.as_str() {
            "push" => a.push_results > 0,
            "pull" => a.docs + a.changes > 0,
            _ => false,
        };
        if hit && !self.paused {
            self.paused = true;
            say("paused");
            // Blocks until the test writes a line (it kills this process instead).
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
        }
    }
}

/// xorshift64: the child needs a few random choices and no crate for them.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, key_hex, tag, seed, cycles, pause, bytes] = args.as_slice() else {
        anyhow::bail!("usage: intake-kill-syncer DIR KEY_HEX TAG SEED CYCLES PAUSE BYTES");
    };
    let key: [u8; 32] = hex::decode(key_hex)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("key must be 32 bytes"))?;
    let mut seed: u64 = seed.parse::<u64>().context("SEED")? | 1;
    let cycles: u32 = cycles.parse().context("CYCLES")?;
    let bytes: u32 = bytes.parse().context("BYTES")?;
    let mut store = Store::open(std::path::Path::new(dir), &Key::from_bytes(key))?;
    say("start");
    let options = SyncOptions {
        page_bytes: bytes,
        push_bytes: bytes as usize,
        ..SyncOptions::default()
    };
    let mut printer = Printer {
        pause: pause.clone(),
        paused: false,
    };
    let mut n = 0u64;
    for _ in 0..cycles {
        for _ in 0..1 + next(&mut seed) % 3 {
            n += 1;
            let ids: Vec<RecordId> = store
                .list(None)?
                .into_iter()
                .map(|s| s.id.parse())
                .collect::<Result<_, _>>()?;
            let pick = next(&mut seed);
            // Each save is announced before and after: a kill between the commit
            // and the second line leaves a save the test must accept but not expect.
            if ids.is_empty() || pick.is_multiple_of(3) {
                let name = format!("Case {tag}.{n}");
                say(&format!("saving new {name}"));
                let id = store.create("intake", |e| {
                    e.set("full_name", Value::Text(name.clone()))?;
                    e.set("narrative", Value::Text(format!("Told in {tag}.{n}.")))
                })?;
                say(&format!("new {id} {name}"));
            } else {
                let id = ids[(pick / 3) as usize % ids.len()];
                let text = format!("{tag}.{n}");
                say(&format!("saving comment {id} {text}"));
                store.edit(id, |e| e.add_comment(&text))?;
                say(&format!("comment {id} {text}"));
            }
        }
        loop {
            let mut rounds = 0u64;
            let result = intake_client::sync_observed(
                &mut store,
                &options,
                &mut |_| {
                    rounds += 1;
                    say(&format!("round {rounds}"));
                },
                &mut printer,
            );
            match result {
                Ok(s) if s.unsynced == 0 => break,
                Ok(_) => say("retry"),
                Err(e) if e.is_retryable() => say("retry"),
                Err(e) => return Err(e.into()),
            }
        }
        say("synced");
    }
    Ok(())
}
