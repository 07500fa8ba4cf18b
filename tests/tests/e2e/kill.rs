//! Crash safety of the local store: a process writing records is SIGKILLed at random
//! moments, 200 times; after each kill every save that had returned is present and
//! `PRAGMA integrity_check` is ok. Records and comments accumulate across runs, so
//! later kills land in compactions too.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use intake_client::{Key, Store};
use intake_shared::RecordId;

const RUNS: u32 = 200;
const KEY: [u8; 32] = [0x5a; 32];

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_save() {
    let dir = tempfile::tempdir().unwrap();
    // Create the store first so every run measures writes, not creation.
    drop(Store::open(dir.path(), &Key::from_bytes(KEY)).unwrap());
    let mut acked: BTreeMap<RecordId, u64> = BTreeMap::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut total_lines = 0;
    for run in 0..RUNS {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut child = Command::new(env!("CARGO_BIN_EXE_intake-kill-writer"))
            .arg(dir.path())
            .arg(hex::encode(KEY))
            .arg((seed >> 1).to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Kill after a random number of acknowledged saves (0–20) plus a random delay
        // of up to 3 ms, so the kill lands anywhere inside a save.
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let wanted = (seed >> 33) % 21;
        let mut seen = Vec::new();
        while (seen.len() as u64) < wanted {
            match lines.next() {
                Some(Ok(line)) => seen.push(line),
                _ => break,
            }
        }
        std::thread::sleep(Duration::from_micros((seed >> 20) % 3000));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Lines printed before the kill but not yet read are acknowledged saves too.
        seen.extend(lines.map_while(Result::ok));
        total_lines += seen.len();
        let mut this_run = BTreeSet::new();
        for line in &seen {
            let parts: Vec<&str> = line.split(' ').collect();
            let id: RecordId = parts[1].parse().unwrap();
            this_run.insert(id);
            match parts[0] {
                "new" => {
                    acked.entry(id).or_insert(0);
                }
                "comment" => {
                    let n: u64 = parts[2].parse().unwrap();
                    let e = acked.entry(id).or_insert(0);
                    *e = (*e).max(n);
                }
                other => panic!("unexpected line {other}"),
            }
        }
        let store = Store::open(dir.path(), &Key::from_bytes(KEY)).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok", "run {run}");
        // Every record acknowledged so far is listed…
        let listed: BTreeSet<String> = store
            .list(None)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        for id in acked.keys() {
            assert!(
                listed.contains(&id.to_string()),
                "run {run}: acknowledged record {id} lost"
            );
        }
        // …and those this run wrote open with every acknowledged comment (a record is
        // only ever written by the run that created it).
        for (id, comments) in this_run.iter().map(|id| (id, acked[id])) {
            let mut r = store
                .get(*id)
                .unwrap_or_else(|e| panic!("run {run}: acknowledged record {id} lost: {e}"));
            // A comment counter restarts per process, so count at least what was acked.
            assert!(
                r.comments().len() as u64 >= comments,
                "run {run}: record {id} has fewer comments than acknowledged"
            );
        }
    }
    eprintln!(
        "kill test: {RUNS} SIGKILLs, {total_lines} acknowledged saves, {} records, every one present, integrity ok after each kill",
        acked.len()
    );
    assert!(
        total_lines > 1000,
        "the writer must actually have written ({total_lines} saves)"
    );
}
