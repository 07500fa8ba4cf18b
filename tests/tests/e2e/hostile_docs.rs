//! Hostile but well-formed documents (issue 13, item 2): an enrolled device pushes
//! Automerge changes with the right header, checksum and columns, built to exhaust the
//! server — a billion operations declared in a few bytes of run-length encoding (and a
//! million, within the operation limit, in 150 bytes), thousands of actors, maps nested thousands deep, keys that inflate a hundredfold
//! through repeat runs, a DEFLATE-compressed column. Each is refused (that record
//! `TooLarge` or `Malformed`, as the protocol answers a change over its limits) quickly,
//! before Automerge walks its operations, and nothing of it is stored.
//!
//! The load test runs the server as its own process (`intake-test-server`, default
//! limits) and has 20 threads push such changes for a few seconds while an honest
//! device edits and syncs: the server's peak RSS (`VmHWM`) stays under 300 MB and
//! every honest sync succeeds. It prints the time to refuse each kind and the honest
//! sync times with and without the attack (median, min, max).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjId, ObjType, ROOT, ReadDoc};
use intake_server::startup::init_postgres;
use intake_server::storage::{Role, Storage};
use intake_server::{Settings, admin, init_store};
use intake_shared::protocol::{
    CONTENT_TYPE, Outcome, RecordChanges, Rejection, SyncRequest, SyncResponse, VERSION_HEADER,
};
use intake_shared::{Record, RecordId, Value};
use intake_tests::craft::{edit_of, identity, load, new_record, push_of, request, text, wire};
use intake_tests::hostile::{Body, body, delete_run, put_run};
use intake_tests::{Backend, Enrolled, TestDevice, TestServer};

/// The kinds of hostile change, each refused for its own reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A billion operations declared by one run per column (a creating change).
    Ops,
    /// A million writes of one short key in `fields`, in 150 bytes, within
    /// `max_ops_per_change`: built, the server held ~750 MB for it, and stored it.
    CheapOps,
    /// A record's creation naming 5,000 actors.
    Actors,
    /// A comment appended as a map with 5,000 maps nested inside it.
    Nesting,
    /// 60,000 writes of one 2,000-byte key in `fields` (few enough operations for
    /// their bytes): ~120 MB of keys once expanded.
    RepeatedKey,
    /// An edit whose action column is DEFLATE-compressed: 1 KB inflating to 1 MB.
    Deflate,
    /// A million deletions in `fields` in 100 bytes, of a record holding a few dozen
    /// operations: decoded, the server held ~390 MB for it before refusing it.
    Deletions,
}

const KINDS: [Kind; 7] = [
    Kind::Ops,
    Kind::CheapOps,
    Kind::Actors,
    Kind::Nesting,
    Kind::RepeatedKey,
    Kind::Deflate,
    Kind::Deletions,
];

impl Kind {
    /// The reason it is refused for and a word its message holds.
    fn expected(self) -> (Rejection, &'static str) {
        match self {
            Kind::Ops => (Rejection::TooLarge, "operations"),
            Kind::CheapOps => (Rejection::TooLarge, "other than deletions"),
            Kind::Actors => (Rejection::TooLarge, "actors"),
            Kind::Nesting => (Rejection::TooLarge, "objects"),
            Kind::RepeatedKey => (Rejection::TooLarge, "inflate"),
            Kind::Deflate => (Rejection::Malformed, "compressed"),
            Kind::Deletions => (Rejection::TooLarge, "more than the record holds"),
        }
    }
}

/// An honest record the hostile device made and the server stored: what the hostile
/// edits depend on.
struct Stored {
    record: Record,
    heads: Vec<[u8; 32]>,
}

/// The one change `doc` made since it was loaded, as raw (uncompressed) chunk bytes.
fn last_change(doc: &mut AutoCommit) -> Vec<u8> {
    doc.commit();
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

/// A hostile push of `kind` by `dev` (session numbers keep the actors apart): the
/// record it is for and its one change.
fn hostile(kind: Kind, dev: &Enrolled, stored: &mut Stored, n: u64) -> RecordChanges {
    let session = 100 + n as u32;
    let me = identity(dev, "arta", session).actor;
    let fresh = wire(RecordId::new_v7(1_790_000_000_000 + n, [0xee; 10]));
    let on_stored = wire(stored.record.id());
    let (record, change) = match kind {
        Kind::Ops => {
            let mut b = body(&me, vec![], 1, 1);
            b.columns = put_run(None, b"k", 1_000_000_000);
            (fresh, b.chunk())
        }
        Kind::Actors => {
            let mut honest = new_record(&identity(dev, "arta", session), 1000 + n);
            let push = push_of(&mut honest, &[]);
            let mut b = Body::parse(&push.changes[0]);
            // Unused actors after the used ones: the operations' actor indices stay
            // what they were, and the change stays a valid record's creation.
            b.others
                .extend((0..5000u32).map(|i| [&[0xac; 12][..], &i.to_be_bytes()[..]].concat()));
            (push.record, b.chunk())
        }
        Kind::Nesting => {
            let mut doc = AutoCommit::load(&stored.record.save())
                .unwrap()
                .with_actor(ActorId::from(me.clone()));
            let (_, comments) = doc.get(ROOT, "comments").unwrap().unwrap();
            let at = doc.length(&comments);
            let mut obj = doc.insert_object(&comments, at, ObjType::Map).unwrap();
            for _ in 0..5000 {
                obj = doc.put_object(&obj, "n", ObjType::Map).unwrap();
            }
            (on_stored, last_change(&mut doc))
        }
        Kind::RepeatedKey | Kind::CheapOps | Kind::Deletions => {
            let doc = AutoCommit::load(&stored.record.save()).unwrap();
            let (_, fields) = doc.get(ROOT, "fields").unwrap().unwrap();
            let ObjId::Id(counter, actor, _) = fields else {
                panic!("fields is an object")
            };
            let mut b = body(&me, stored.heads.clone(), 1, 1 << 20);
            b.others = vec![actor.to_bytes().to_vec()];
            b.columns = match kind {
                Kind::CheapOps => put_run(Some((1, counter)), b"k", 1_000_000),
                Kind::Deletions => delete_run(Some((1, counter)), b"k", 1_000_000),
                _ => put_run(Some((1, counter)), &[b'x'; 2000], 60_000),
            };
            (on_stored, b.chunk())
        }
        Kind::Deflate => {
            let mut doc = AutoCommit::load(&stored.record.save())
                .unwrap()
                .with_actor(ActorId::from(me.clone()));
            let (_, fields) = doc.get(ROOT, "fields").unwrap().unwrap();
            doc.put(&fields, "full_name", "Person again").unwrap();
            let mut b = Body::parse(&last_change(&mut doc));
            // The action column becomes a literal run of a million puts, compressed:
            // about a kilobyte that inflates a thousandfold.
            let (spec, data) = b
                .columns
                .iter_mut()
                .find(|(s, _)| *s == 4 << 4 | 2)
                .unwrap();
            let mut literal = Vec::new();
            intake_tests::hostile::sleb(&mut literal, -1_000_000);
            literal.resize(literal.len() + 1_000_000, 1);
            let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
            std::io::Write::write_all(&mut z, &literal).unwrap();
            *data = z.finish().unwrap();
            *spec |= 8;
            (on_stored, b.chunk())
        }
    };
    RecordChanges {
        record,
        changes: vec![change],
    }
}

/// What the server holds, as one value: equal before and after means nothing stored.
fn holdings(server: &TestServer) -> Vec<(String, Vec<u8>)> {
    let mut db = server.db();
    let mut out = Vec::new();
    for (table, query) in [
        ("records", "SELECT id, doc FROM records ORDER BY id"),
        ("log", "SELECT seq, bytes FROM log ORDER BY seq"),
    ] {
        out.extend(
            db.rows(query, &[])
                .into_iter()
                .map(|row| (format!("{table} {:?}", row[0]), row[1].bytes().to_vec())),
        );
    }
    out
}

/// The server, the hostile device and its honest record, stored.
fn setup() -> (TestServer, Enrolled, Stored) {
    let server = TestServer::start();
    let a = server.user_device("arta", Role::Paralegal, Some("prizren"));
    let mut record = new_record(&identity(&a, "arta", 1), 1);
    let push = push_of(&mut record, &[]);
    let reply = server.sync(Some(&a.token), &request(0, vec![push.clone()], vec![]));
    let answer = reply.answer(&[push.record]);
    assert_eq!(answer.results[0].outcome, Outcome::Stored);
    let heads = record.heads();
    (server, a, Stored { record, heads })
}

/// Pushes one hostile change and checks it is refused for its reason, quickly, with
/// nothing stored.
fn refused(kind: Kind) {
    let (server, a, mut stored) = setup();
    let push = hostile(kind, &a, &mut stored, 0);
    let size = push.changes[0].len();
    let before = holdings(&server);
    // What is compared sees what is stored: the honest record and its log entries.
    assert!(
        ["records", "log"]
            .iter()
            .all(|t| before.iter().any(|(k, _)| k.starts_with(t))),
        "{kind:?}: the honest record is not in what is compared"
    );
    let started = Instant::now();
    let reply = server.sync(Some(&a.token), &request(0, vec![push.clone()], vec![]));
    let took = started.elapsed();
    let answer = reply.answer(&[push.record]);
    let (reason, word) = kind.expected();
    match &answer.results[0].outcome {
        Outcome::Rejected { reason: r, message } => {
            assert_eq!(*r, reason, "{kind:?}: {message}");
            assert!(message.contains(word), "{kind:?}: {message}");
            eprintln!("{kind:?} ({size} B): refused in {took:?}: {message}");
        }
        other => panic!("{kind:?} was not refused: {other:?}"),
    }
    assert_eq!(holdings(&server), before, "{kind:?}: something was stored");
    // Refused by its declared shape, not after walking it: a billion operations take
    // Automerge minutes, a million built operations seconds.
    assert!(took < Duration::from_secs(2), "{kind:?} took {took:?}");
}

#[test]
fn a_billion_operations_in_a_few_bytes_are_refused_unwalked() {
    refused(Kind::Ops);
}

#[test]
fn a_million_operations_in_150_bytes_are_refused_unbuilt() {
    refused(Kind::CheapOps);
}

#[test]
fn a_change_naming_thousands_of_actors_is_refused() {
    refused(Kind::Actors);
}

#[test]
fn maps_nested_thousands_deep_are_refused() {
    refused(Kind::Nesting);
}

#[test]
fn a_key_repeated_into_a_hundred_megabytes_is_refused() {
    refused(Kind::RepeatedKey);
}

#[test]
fn a_deflated_column_is_refused_uninflated() {
    refused(Kind::Deflate);
}

#[test]
fn a_million_deletions_of_what_the_record_does_not_hold_are_refused_undecoded() {
    refused(Kind::Deletions);
}

#[test]
fn an_honest_device_pushing_the_same_shapes_small_is_stored() {
    // The limits refuse the hostile sizes only: a comment with a few nested maps, a
    // few repeated writes of one short key and a change naming a few actors are
    // judged as before (and stored where the policy takes them).
    let (server, a, mut stored) = setup();
    let me = identity(&a, "arta", 7).actor;
    let mut doc = AutoCommit::load(&stored.record.save())
        .unwrap()
        .with_actor(ActorId::from(me));
    let (_, comments) = doc.get(ROOT, "comments").unwrap().unwrap();
    let mut obj = doc.insert_object(&comments, 0, ObjType::Map).unwrap();
    for _ in 0..3 {
        obj = doc.put_object(&obj, "n", ObjType::Map).unwrap();
    }
    let push = RecordChanges {
        record: wire(stored.record.id()),
        changes: vec![last_change(&mut doc)],
    };
    let answer = server
        .sync(Some(&a.token), &request(0, vec![push.clone()], vec![]))
        .answer(&[push.record]);
    assert_eq!(answer.results[0].outcome, Outcome::Stored);
}

#[test]
fn clearing_a_long_narrative_is_stored() {
    // The honest shape of many deletions in few bytes: a paralegal clears an 80,000
    // character narrative. Its change declares more deletions than its bytes could
    // insert, so the server counts what the record holds (more) and takes it.
    let (server, a, mut stored) = setup();
    let who = identity(&a, "arta", 8);
    let long = "A long testimony, told again and again. ".repeat(2_000);
    let chars = long.chars().count() as u64;
    let first = edit_of(&stored.record, &who, |e| {
        e.set("narrative", text(long.clone()))
    });
    assert_eq!(
        server
            .sync(Some(&a.token), &request(0, vec![first.clone()], vec![]))
            .answer(&[first.record])
            .results[0]
            .outcome,
        Outcome::Stored
    );
    stored.record = load(&server, &a.token, stored.record.id());
    let who = identity(&a, "arta", 9);
    let clear = edit_of(&stored.record, &who, |e| e.set("narrative", text("")));
    let declared = intake_shared::record::declared(&clear.changes[0]).unwrap();
    assert!(
        declared.deletes >= chars && clear.changes[0].len() < 1 << 10,
        "{chars} deletions in a small change: {declared:?}, {} B",
        clear.changes[0].len()
    );
    let answer = server
        .sync(Some(&a.token), &request(0, vec![clear.clone()], vec![]))
        .answer(&[clear.record]);
    assert_eq!(answer.results[0].outcome, Outcome::Stored);
    let now = load(&server, &a.token, stored.record.id());
    assert_eq!(now.get("narrative"), Some(text("")));
}

// ---------------------------------------------------------------------------------
// The load test: the server in its own process.

/// The server as a child process, killed and reaped when dropped (also on a failure).
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `VmHWM` (peak) and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

fn post_sync(
    http: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    req: &SyncRequest,
) -> reqwest::Result<(u16, Vec<u8>)> {
    let body = zstd::bulk::compress(&req.encode(), 3).unwrap();
    let resp = http
        .post(format!("{url}/v1/sync"))
        .header(VERSION_HEADER, req.version.to_string())
        .header("content-type", CONTENT_TYPE)
        .header("content-encoding", "zstd")
        .bearer_auth(token)
        .body(body)
        .send()?;
    let status = resp.status().as_u16();
    let mut body = resp.bytes()?.to_vec();
    // A version 7 answer is zstd when it starts with zstd's magic number.
    if status == 200 && intake_shared::protocol::is_zstd_frame(&body) {
        body = zstd::stream::decode_all(&body[..]).unwrap();
    }
    Ok((status, body))
}

fn enrol_over_http(
    http: &reqwest::blocking::Client,
    url: &str,
    code: &str,
    actor: [u8; 16],
) -> Enrolled {
    let resp = http
        .post(format!("{url}/v1/enroll"))
        .json(&serde_json::json!({ "code": code, "actor": hex::encode(actor), "label": "hostile" }))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().unwrap();
    Enrolled {
        token: body["token"].as_str().unwrap().into(),
        device_id: body["device_id"].as_i64().unwrap(),
        actor,
    }
}

/// Median, min and max, for the note.
fn figures(mut d: Vec<Duration>) -> String {
    if d.is_empty() {
        return "none".into();
    }
    d.sort();
    format!(
        "median {:?}, min {:?}, max {:?} (n={})",
        d[d.len() / 2],
        d[0],
        d[d.len() - 1],
        d.len()
    )
}

/// One honest round: an edit, then a sync; its time, or why it failed.
fn honest_round(dev: &mut TestDevice, id: RecordId, i: usize) -> Result<Duration, String> {
    dev.edit(id, |e| {
        e.set("full_name", Value::Text(format!("Honest {i}")))
    });
    let started = Instant::now();
    let summary = dev.sync();
    let took = started.elapsed();
    summary
        .map(|_| took)
        .map_err(|e| format!("honest sync {i} failed: {e}"))
}

/// What one hostile upload got: `Ok` when refused as its kind should be.
fn judge(
    kind: Kind,
    push: &RecordChanges,
    reply: reqwest::Result<(u16, Vec<u8>)>,
) -> Result<(), String> {
    let (status, body) = reply.map_err(|e| format!("{kind:?}: no answer: {e}"))?;
    if status != 200 {
        return Err(format!(
            "{kind:?}: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let answer = SyncResponse::decode(&body, &[push.record]).map_err(|e| e.to_string())?;
    match &answer.results[0].outcome {
        Outcome::Rejected { reason, .. } if *reason == kind.expected().0 => Ok(()),
        other => Err(format!("{kind:?}: {other:?}")),
    }
}

const ATTACKERS: usize = 20;
const ATTACK: Duration = Duration::from_secs(4);
const RSS_LIMIT_KIB: u64 = 300 * 1024;

#[test]
fn twenty_hostile_uploads_in_parallel_leave_memory_bounded_and_honest_syncs_working() {
    intake_client::sync::ensure_crypto_provider();
    let data = tempfile::tempdir().unwrap();
    let addr: SocketAddr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}");
    let settings = Settings {
        listen: addr,
        data_dir: data.path().to_path_buf(),
        ..Settings::default()
    };
    // The server process runs on this run's backend: over the data directory, or over
    // a database of its own (kept until after the process is killed, below).
    let (storage, place, _database): (Arc<dyn Storage>, String, _) = match Backend::from_env() {
        Backend::Sqlite => {
            let (storage, _) = init_store(&settings, None).unwrap();
            (storage, data.path().to_string_lossy().into_owned(), None)
        }
        Backend::Postgres => {
            let db = intake_tests::postgres::database("twenty_hostile_uploads")
                .expect("PostgreSQL for this run's backend");
            let (storage, _) = init_postgres(&settings, &db.url).unwrap();
            (storage, db.url.clone(), Some(db))
        }
    };
    let code = |name| {
        admin::add_user(storage.as_ref(), name, Role::Paralegal, Some("prizren"), 60)
            .unwrap()
            .enrolment_code
    };
    let (hostile_code, honest_code) = (code("arta"), code("drita"));
    drop(storage);
    let mut child = Command::new(env!("CARGO_BIN_EXE_intake-test-server"))
        .arg(&place)
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start intake-test-server");
    let stdout = child.stdout.take().unwrap();
    let server = ServerProcess(child);
    let pid = server.0.id();
    let mut lines = BufReader::new(stdout).lines();
    assert!(
        matches!(lines.next(), Some(Ok(l)) if l.starts_with("listening")),
        "the server did not start"
    );
    let http = reqwest::blocking::Client::new();

    // The hostile device, with an honest record of its own stored first.
    let a = enrol_over_http(&http, &url, &hostile_code, [0xa7; 16]);
    let mut record = new_record(&identity(&a, "arta", 1), 1);
    let push = push_of(&mut record, &[]);
    let (status, body) = post_sync(
        &http,
        &url,
        &a.token,
        &request(0, vec![push.clone()], vec![]),
    )
    .unwrap();
    assert_eq!(status, 200);
    let answer = SyncResponse::decode(&body, &[push.record]).unwrap();
    assert_eq!(answer.results[0].outcome, Outcome::Stored);
    let heads = record.heads();
    let mut stored = Stored { record, heads };
    // Every thread's kinds, built once (the threads measure the server, not us).
    let pushes: Arc<Vec<(Kind, RecordChanges)>> = Arc::new(
        (0..ATTACKERS)
            .flat_map(|t| KINDS.iter().map(move |k| (t, *k)))
            .map(|(t, k)| (k, hostile(k, &a, &mut stored, t as u64)))
            .collect(),
    );

    // The honest device: its record, then syncs without an attack.
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        intake_client::Store::open(dir.path(), &intake_client::Key::from_bytes([7; 32])).unwrap();
    intake_client::enroll(&mut store, &url, &honest_code, "drita", None).unwrap();
    let mut honest = TestDevice {
        name: "drita".into(),
        store,
        dir,
    };
    let id = honest.create(&[("full_name", Value::Text("Honest".into()))]);
    honest.sync().unwrap();
    let quiet: Vec<Duration> = (0..10)
        .map(|i| honest_round(&mut honest, id, i).unwrap())
        .collect();
    let (hwm_before, _) = memory_kib(pid).expect("the server's /proc status");

    // The attack, with a sampler of the server's memory.
    let stop = Arc::new(AtomicBool::new(false));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak_rss) = (stop.clone(), peak_rss.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Some((_, rss)) = memory_kib(pid) {
                    peak_rss.fetch_max(rss, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|t| {
            let (pushes, url, token) = (pushes.clone(), url.clone(), a.token.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                // (kind, time to the answer, how it was answered)
                let mut seen: Vec<(Kind, Duration, Result<(), String>)> = Vec::new();
                let deadline = Instant::now() + ATTACK;
                let mine = &pushes[t * KINDS.len()..(t + 1) * KINDS.len()];
                let mut i = t;
                while Instant::now() < deadline {
                    let (kind, push) = &mine[i % KINDS.len()];
                    i += 1;
                    let req = request(0, vec![push.clone()], vec![]);
                    let started = Instant::now();
                    let reply = post_sync(&http, &url, &token, &req);
                    seen.push((*kind, started.elapsed(), judge(*kind, push, reply)));
                }
                seen
            })
        })
        .collect();
    let mut during = Vec::new();
    let attack_started = Instant::now();
    let mut i = 100;
    while attack_started.elapsed() < ATTACK {
        during.push(honest_round(&mut honest, id, i));
        i += 1;
    }
    let seen: Vec<_> = attackers
        .into_iter()
        .flat_map(|a| a.join().expect("an attacker thread"))
        .collect();
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let (hwm, rss) = memory_kib(pid).expect("the server's /proc status");

    for kind in KINDS {
        let of_kind: Vec<Duration> = seen
            .iter()
            .filter(|(k, _, r)| *k == kind && r.is_ok())
            .map(|(_, d, _)| *d)
            .collect();
        eprintln!("refusing {kind:?}: {}", figures(of_kind));
    }
    let wrong: Vec<&String> = seen
        .iter()
        .filter_map(|(_, _, r)| r.as_ref().err())
        .collect();
    let honest_failed: Vec<&String> = during.iter().filter_map(|r| r.as_ref().err()).collect();
    let during: Vec<Duration> = during
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    eprintln!(
        "{} hostile uploads, {} not refused as they should be; server peak RSS (VmHWM) {} MiB \
         (before the attack {} MiB, sampled peak {} MiB, now {} MiB)",
        seen.len(),
        wrong.len(),
        hwm / 1024,
        hwm_before / 1024,
        peak_rss.load(Ordering::SeqCst) / 1024,
        rss / 1024
    );
    eprintln!("honest sync without the attack: {}", figures(quiet));
    eprintln!(
        "honest sync during the attack:  {}",
        figures(during.clone())
    );
    assert!(
        hwm < RSS_LIMIT_KIB,
        "the server's peak RSS was {} MiB",
        hwm / 1024
    );
    assert!(
        wrong.is_empty(),
        "{} hostile uploads not refused, first: {}",
        wrong.len(),
        wrong[0]
    );
    assert!(honest_failed.is_empty(), "{honest_failed:?}");
    assert!(
        during.len() >= 3,
        "the honest device synced only {} times",
        during.len()
    );
    for kind in KINDS {
        assert!(
            seen.iter().any(|(k, _, _)| *k == kind),
            "{kind:?} was never sent"
        );
    }
    drop(server);
}
