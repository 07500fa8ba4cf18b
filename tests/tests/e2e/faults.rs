//! Syncing over a link that breaks: 100 sync sessions by two paralegals and their
//! supervisor go through a proxy that breaks about one request in three (cut requests,
//! cut or truncated answers, delays, 502/503 from the proxy). Every failed sync must be
//! one worth retrying. Once the link is good again, every acknowledged edit is on the
//! server and on every device that may see it, exactly once, all replicas hold the same
//! heads, and no connection or thread is left behind (but the one connection the
//! devices' HTTP client keeps alive for the next sync).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use intake_server::storage::Scope;
use intake_shared::{FormRegistry, Record, RecordId, Value};
use intake_tests::craft::text;
use intake_tests::proxy::{FaultConfig, FaultProxy, ProxyStats};
use intake_tests::{CAST, SUPERVISOR, TestDevice, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SESSIONS: usize = 100;
const FAULT_RATE: f64 = 0.3;
/// The run's seed; `FAULT_SEED=<u64>` replays or explores another run.
const SEED: u64 = 0x1a7a_2024_0b5e_55ed;
const URGENCY: [&str; 4] = ["low", "medium", "high", "critical"];
/// Connections through the proxy that may stay open after the syncs: the client keeps
/// one HTTP client per server URL for the life of the process (shared by the three
/// devices, which sync one at a time), and it keeps its connections alive for the
/// next sync: two, once a push went out while another was out (`Trip::push_next`).
/// None, when the last requests through the proxy met a fault.
const KEPT_ALIVE: u64 = 2;

/// What one record must hold, from every edit a device acknowledged locally.
#[derive(Debug)]
struct Expected {
    creator: usize,
    /// The last value written to each field (each field has exactly one writer: the
    /// creator writes `full_name` and `village`, the supervisor `urgency` on others'
    /// records, so the last local write is the final value).
    fields: BTreeMap<&'static str, Value>,
    comments: Vec<String>,
    /// Words appended to the narrative, by the creator and the supervisor concurrently
    /// (a shared text: both appends must merge, each exactly once).
    words: Vec<String>,
}

/// Everything that was acknowledged locally, by record.
#[derive(Debug, Default)]
struct Ledger {
    records: BTreeMap<RecordId, Expected>,
}

impl Ledger {
    /// Records `device` may edit and already holds.
    fn writable(&self, device: usize, dev: &TestDevice) -> Vec<RecordId> {
        self.records
            .iter()
            .filter(|(id, e)| (e.creator == device || device == SUPERVISOR) && dev.has(**id))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Who may see a record: its creator and the supervisor.
    fn holders(&self, id: RecordId) -> Vec<usize> {
        let creator = self.records[&id].creator;
        if creator == SUPERVISOR {
            vec![SUPERVISOR]
        } else {
            vec![creator, SUPERVISOR]
        }
    }
}

/// One local edit by `d`, acknowledged (or the test fails) and written to the ledger.
fn edit(rng: &mut StdRng, ledger: &mut Ledger, devices: &mut [TestDevice], d: usize, tag: &str) {
    let dev = &mut devices[d];
    let writable = ledger.writable(d, dev);
    let op = if writable.is_empty() {
        0
    } else {
        rng.random_range(0..5)
    };
    if op == 0 {
        let name = format!("Case {tag}");
        let village = format!("village {tag}");
        let id = dev.create(&[("full_name", text(&name)), ("village", text(&village))]);
        let fields = BTreeMap::from([("full_name", text(name)), ("village", text(village))]);
        ledger.records.insert(
            id,
            Expected {
                creator: d,
                fields,
                comments: Vec::new(),
                words: Vec::new(),
            },
        );
        return;
    }
    let id = writable[rng.random_range(0..writable.len())];
    let expected = ledger.records.get_mut(&id).unwrap();
    match op {
        1 if expected.creator == d => {
            let v = text(format!("village {tag}"));
            dev.edit(id, |e| e.set("village", v.clone()));
            expected.fields.insert("village", v);
        }
        1 => {
            let v = text(URGENCY[rng.random_range(0..URGENCY.len())]);
            dev.edit(id, |e| e.set("urgency", v.clone()));
            expected.fields.insert("urgency", v);
        }
        2 | 3 => {
            let comment = format!("comment {tag}");
            dev.edit(id, |e| e.add_comment(&comment));
            expected.comments.push(comment);
        }
        _ => {
            let word = format!("[{tag}]");
            let current = dev
                .record(id)
                .get("narrative")
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let next = format!("{current} {word}");
            dev.edit(id, |e| e.set("narrative", text(next)));
            expected.words.push(word);
        }
    }
}

/// Problems found in one replica's copy of a record.
#[derive(Debug, Default)]
struct Findings {
    lost: Vec<String>,
    duplicated: Vec<String>,
}

/// Checks one replica's copy of `id` against what was acknowledged.
fn check_copy(where_: &str, id: RecordId, r: &mut Record, e: &Expected, f: &mut Findings) {
    for (field, value) in &e.fields {
        if r.get(field).as_ref() != Some(value) {
            f.lost.push(format!(
                "{where_}: record {id} field {field} is {:?}, the last acknowledged write was {value:?}",
                r.get(field)
            ));
        }
    }
    let comments: Vec<String> = r.comments().into_iter().map(|c| c.text).collect();
    for c in &e.comments {
        match comments.iter().filter(|x| *x == c).count() {
            0 => f.lost.push(format!("{where_}: record {id} lacks {c:?}")),
            1 => {}
            n => f
                .duplicated
                .push(format!("{where_}: record {id} has {c:?} {n} times")),
        }
    }
    if comments.len() > e.comments.len() {
        f.duplicated.push(format!(
            "{where_}: record {id} has {} comments, {} were written",
            comments.len(),
            e.comments.len()
        ));
    }
    let narrative = r
        .get("narrative")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    for w in &e.words {
        match narrative.matches(w.as_str()).count() {
            0 => f
                .lost
                .push(format!("{where_}: record {id} narrative lacks {w}")),
            1 => {}
            n => f
                .duplicated
                .push(format!("{where_}: record {id} narrative has {w} {n} times")),
        }
    }
}

/// Syncs with tiny pages and pushes, so one sync takes several round trips and a
/// fault can land after some pages were already committed.
fn sync_in_small_steps(
    dev: &mut TestDevice,
) -> Result<intake_client::SyncSummary, intake_client::SyncError> {
    let options = intake_client::SyncOptions {
        page_bytes: 1024,
        push_bytes: 600,
        ..Default::default()
    };
    intake_client::sync(&mut dev.store, &options, &mut |_| {})
}

/// Threads of this process (the in-process server's among them).
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Open file descriptors of this process: sockets the server leaked would show here.
fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Polls the proxy until its connections and threads are gone, but for the one
/// connection the devices' client keeps alive, for up to 2 s: this waits for sockets to
/// be closed, not for time to pass.
fn settle(proxy: &FaultProxy) -> ProxyStats {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let s = proxy.stats();
        if (s.connections_open <= KEPT_ALIVE && s.threads_alive <= KEPT_ALIVE)
            || Instant::now() > deadline
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_hundred_syncs_over_a_breaking_link_lose_and_duplicate_nothing() {
    // Measures or captures the whole process: by itself, not beside other tests.
    intake_tests::alone!(a_hundred_syncs_over_a_breaking_link_lose_and_duplicate_nothing);
    let started = Instant::now();
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let server = TestServer::start();
    let upstream: SocketAddr = server.url.strip_prefix("http://").unwrap().parse().unwrap();
    let proxy = FaultProxy::start(
        upstream,
        FaultConfig {
            fault_rate: FAULT_RATE,
            seed,
        },
    );
    let mut devices = TestDevice::enroll_all(&server, &CAST, "prizren");
    for d in &mut devices {
        d.point_at(&proxy.url());
    }
    let threads_before = thread_count();
    let fds_before = fd_count();

    let mut rng = StdRng::seed_from_u64(seed);
    let mut ledger = Ledger::default();
    // A sync tries a broken round trip again at once (`retried`), and gives up after
    // several in a row (`failed`): either shows the proxy broke syncs.
    let (mut failed, mut succeeded, mut retried) = (0, 0, 0);
    for session in 0..SESSIONS {
        let d = rng.random_range(0..devices.len());
        for k in 0..rng.random_range(1..=4) {
            let tag = format!("{session}.{k} by {}", CAST[d].0);
            edit(&mut rng, &mut ledger, &mut devices, d, &tag);
        }
        match sync_in_small_steps(&mut devices[d]) {
            Ok(summary) => {
                succeeded += 1;
                retried += summary.retries;
            }
            Err(e) => {
                assert!(
                    e.is_retryable(),
                    "session {session}: {} got a permanent error over a flaky link: {e:?}",
                    CAST[d].0
                );
                failed += 1;
            }
        }
    }
    let stats = settle(&proxy);

    // The link is good again: sync directly until a whole round moves nothing.
    for d in devices.iter_mut() {
        d.point_at(&server.url);
    }
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 5, "devices still exchanging after 4 rounds");
        let mut moved = 0;
        for d in devices.iter_mut() {
            let s = d
                .sync()
                .unwrap_or_else(|e| panic!("{}: sync over a good link failed: {e}", d.name));
            assert_eq!(s.refused, 0, "{}: the server refused a push: {s:?}", d.name);
            assert_eq!(s.unsynced, 0, "{}: {s:?}", d.name);
            moved += s.received + s.removed;
        }
        if moved == 0 {
            break;
        }
    }

    let mut findings = Findings::default();
    let mut diverged = Vec::new();
    let held_by_server = server
        .storage
        .record_metas(&Scope::Team("prizren".into()))
        .unwrap()
        .len();
    if held_by_server > ledger.records.len() {
        findings.duplicated.push(format!(
            "the server holds {held_by_server} records, {} were created",
            ledger.records.len()
        ));
    }
    for (id, e) in &ledger.records {
        let Some(stored) = server.storage.record(*id).unwrap() else {
            findings.lost.push(format!(
                "server: record {id} by {} missing",
                CAST[e.creator].0
            ));
            continue;
        };
        let mut on_server = Record::load(&stored.doc, FormRegistry::builtin()).unwrap();
        check_copy("server", *id, &mut on_server, e, &mut findings);
        let heads = on_server.heads();
        if stored.heads != heads.concat() {
            diverged.push(format!(
                "server: record {id}'s heads column is not its document's"
            ));
        }
        for h in ledger.holders(*id) {
            let dev = &devices[h];
            if !dev.has(*id) {
                findings
                    .lost
                    .push(format!("{}: record {id} missing", CAST[h].0));
                continue;
            }
            let mut copy = dev.record(*id);
            check_copy(CAST[h].0, *id, &mut copy, e, &mut findings);
            if copy.heads() != heads {
                diverged.push(format!("{}: record {id} has other heads", CAST[h].0));
            }
        }
        for (i, dev) in devices.iter().enumerate() {
            assert!(
                ledger.holders(*id).contains(&i) || !dev.has(*id),
                "{} holds {id}, a record she may not see",
                CAST[i].0
            );
        }
    }
    for (i, dev) in devices.iter().enumerate() {
        let held = dev.store.list(None).unwrap().len();
        let may = ledger
            .records
            .keys()
            .filter(|id| ledger.holders(**id).contains(&i))
            .count();
        if held > may {
            findings.duplicated.push(format!(
                "{} holds {held} records, expected {may}",
                CAST[i].0
            ));
        }
    }

    // With every sync over, the proxy must be idle but for the kept-alive connection.
    let after = settle(&proxy);
    let threads_after = thread_count();
    let fds_after = fd_count();
    let comments: usize = ledger.records.values().map(|e| e.comments.len()).sum();
    eprintln!(
        "faults: seed={seed} sessions={SESSIONS} ok={succeeded} failed_syncs={failed} retried={retried} {stats} records={} comments={comments} \
         lost={} duplicated={} converged={} (diverged={}) final_rounds={rounds} \
         proxy_open={} proxy_threads={} process_threads {threads_before}->{threads_after} \
         process_fds {fds_before}->{fds_after} in {:.1}s",
        ledger.records.len(),
        findings.lost.len(),
        findings.duplicated.len(),
        diverged.is_empty(),
        diverged.len(),
        after.connections_open,
        after.threads_alive,
        started.elapsed().as_secs_f64()
    );
    assert!(findings.lost.is_empty(), "lost: {:#?}", findings.lost);
    assert!(
        findings.duplicated.is_empty(),
        "duplicated: {:#?}",
        findings.duplicated
    );
    assert!(diverged.is_empty(), "not converged: {diverged:#?}");
    assert!(
        stats.faults() > 0 && failed + retried > 0,
        "the proxy must actually have broken syncs: {stats}"
    );
    assert!(
        after.connections_open <= KEPT_ALIVE,
        "connections left open: {after:?}"
    );
    assert!(
        after.threads_alive <= KEPT_ALIVE,
        "proxy threads left: {after:?}"
    );
    // Beyond 8 of slack: the devices keep two HTTP clients (one for the proxy's URL,
    // one for the server's), each with a runtime (a thread, three descriptors) and up
    // to `KEPT_ALIVE` kept-alive connections whose every end is in this process (the
    // client's socket, the proxy's six handles, the server's; two sockets for a direct
    // one). A leak per connection or per failed sync (dozens of each) still shows.
    assert!(
        threads_after <= threads_before + 2 + 8,
        "the process grew from {threads_before} to {threads_after} threads"
    );
    let kept = KEPT_ALIVE as usize;
    assert!(
        fds_after <= fds_before + 2 * 3 + kept * (8 + 2) + 8,
        "the process grew from {fds_before} to {fds_after} open files and sockets"
    );

    // Dropping the proxy also ends connections that are still open: an idle client
    // that never sends a request is closed, and the drop returns (its thread joined).
    let kept = proxy.stats().connections_open;
    let mut idle = TcpStream::connect(proxy.addr()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while proxy.stats().threads_alive == kept && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(proxy.stats().connections_open, kept + 1);
    drop(proxy);
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        idle.read(&mut [0u8; 1]).unwrap(),
        0,
        "the proxy closed the connection"
    );
}
