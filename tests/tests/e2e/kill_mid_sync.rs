//! Kills mid-sync (issue 13, item 5).
//!
//! `sigkilled_client_mid_sync_loses_nothing`: a supervisor's device runs as its own
//! process (`intake-kill-syncer`): it saves a few edits and syncs, against the real
//! server, while two paralegals' devices keep creating and commenting. It is SIGKILLed
//! at least 50 times (`KILL_MID_SYNC_RUNS`): a quarter of the runs the moment it has
//! received an answer acknowledging a push and before committing it, a quarter the
//! moment it has received a pull page and before committing it (the child pauses there
//! and says so: deterministic), the rest at a random moment or as a request goes out.
//! Where each kill landed is read off the last line the child printed. After every
//! kill the store opens, passes `PRAGMA integrity_check` and holds every save the child
//! had acknowledged; the next run reopens it and syncs again. At the end: nothing lost
//! (every acknowledged save and every server-side record on the device, every comment
//! everywhere it belongs), nothing duplicated (records, comments, log entries on the
//! server, change rows on the device), every replica at the server's heads.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use intake_client::{Key, Store};
use intake_server::storage::{Role, Scope, SyncStorage};
use intake_shared::{FormRegistry, Record, RecordId, Value};
use intake_tests::kill_mid_sync::{Findings, check_copy, check_database, check_log};
use intake_tests::{TestDevice, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The key `TestDevice` opens stores with.
const KEY: [u8; 32] = [7; 32];
const SEED: u64 = 0x0c11_e47d_ead0_5eed;
/// The child's push and page budget: small, so one sync is several round trips.
const BYTES: &str = "1024";
/// Longest wait for the child's next line before the test gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// How many kills a scenario aims for: `KILL_MID_SYNC_RUNS`, at least 50 by default.
fn runs() -> usize {
    std::env::var("KILL_MID_SYNC_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

fn seed() -> u64 {
    std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED)
}

/// The child process, SIGKILLed and reaped when dropped (a failing test leaves none).
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where a kill aims.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Aim {
    /// Paused after an answer that acknowledges pushed records, before its commit.
    PausedPush,
    /// Paused after an answer that carries a pull page, before its commit.
    PausedPull,
    /// After a random delay within a typical run.
    Random,
    /// As soon as the child says a pushing (or, else, pull-only) request goes out.
    AtSend { push: bool },
}

/// Where kills landed, from the child's last line.
#[derive(Debug, Default)]
struct Landed {
    /// During a request that pushes (its answer not yet received).
    push: usize,
    /// During a request that only pulls.
    pull: usize,
    /// An answer received, not (wholly) committed; `paused` of them deterministically.
    received: usize,
    paused_push: usize,
    paused_pull: usize,
    /// Between round trips, or in saves, or opening the store.
    between: usize,
    saving: usize,
    starting: usize,
    /// Runs that ended by themselves before the kill came.
    finished: usize,
}

impl Landed {
    fn kills(&self) -> usize {
        self.push + self.pull + self.received + self.between + self.saving + self.starting
    }

    fn note(&mut self, last: Option<&str>) {
        let last = last.unwrap_or("");
        if last.starts_with("send push=0 ") {
            self.pull += 1;
        } else if last.starts_with("send ") {
            self.push += 1;
        } else if last.starts_with("received ") || last == "paused" {
            self.received += 1;
        } else if last.starts_with("round ") || last == "retry" {
            self.between += 1;
        } else if last.starts_with("new ")
            || last.starts_with("comment ")
            || last.starts_with("saving ")
            || last == "synced"
        {
            self.saving += 1;
        } else {
            self.starting += 1;
        }
    }
}

/// Records and comments written, by record, with who created it (0 = the child); and
/// the child's saves announced but never confirmed (killed before it said so, maybe
/// after the commit): accepted if they exist, never expected.
#[derive(Debug, Default)]
struct Ledger {
    records: BTreeMap<RecordId, (usize, Vec<String>)>,
    /// Full names of new records whose save was announced, not confirmed.
    maybe_new: BTreeSet<String>,
    /// Comments whose save was announced, not confirmed.
    maybe_comments: BTreeSet<(RecordId, String)>,
}

impl Ledger {
    fn read(&mut self, line: &str) {
        if let Some(name) = line.strip_prefix("saving new ") {
            self.maybe_new.insert(name.to_string());
            return;
        }
        if let Some(rest) = line.strip_prefix("saving comment ") {
            let (id, text) = rest.split_once(' ').unwrap();
            self.maybe_comments
                .insert((id.parse().unwrap(), text.to_string()));
            return;
        }
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("new"), Some(id), Some(name)) => {
                self.maybe_new.remove(name);
                self.records.insert(id.parse().unwrap(), (0, Vec::new()));
            }
            (Some("comment"), Some(id), Some(text)) => {
                let id: RecordId = id.parse().unwrap();
                self.maybe_comments.remove(&(id, text.to_string()));
                // A record the child created without saying so (killed right after
                // its commit) can be commented on in a later run.
                self.records
                    .entry(id)
                    .or_insert((0, Vec::new()))
                    .1
                    .push(text.to_string());
            }
            _ => {}
        }
    }

    /// Once everything has synced: the unconfirmed saves the server holds were
    /// committed before the kill, so they count as written; the others never were.
    /// A record on the server that is in neither list was never created by anyone.
    fn settle(&mut self, storage: &dyn intake_server::storage::Storage, ids: &BTreeSet<RecordId>) {
        let load = |id: &RecordId| {
            storage
                .record(*id)
                .unwrap()
                .map(|stored| Record::load(&stored.doc, FormRegistry::builtin()).unwrap())
        };
        for id in ids {
            if self.records.contains_key(id) {
                continue;
            }
            let Some(r) = load(id) else { continue };
            if let Some(name) = r.get("full_name").map(|v| v.to_string())
                && self.maybe_new.remove(&name)
            {
                self.records.insert(*id, (0, Vec::new()));
            }
        }
        for (id, text) in std::mem::take(&mut self.maybe_comments) {
            let Some(mut r) = load(&id) else { continue };
            if r.comments().iter().any(|c| c.text == text) {
                self.records
                    .entry(id)
                    .or_insert((0, Vec::new()))
                    .1
                    .push(text);
            }
        }
    }
}

/// Runs the child; its stdout lines arrive on the receiver with the time they came.
fn spawn(
    dir: &Path,
    tag: &str,
    seed: u64,
    cycles: u32,
    pause: &str,
) -> (Kid, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_intake-kill-syncer"))
        .arg(dir)
        .arg(hex::encode(KEY))
        .arg(tag)
        .arg(seed.to_string())
        .arg(cycles.to_string())
        .arg(pause)
        .arg(BYTES)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start intake-kill-syncer");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Kid(child), rx)
}

/// A paralegal's few edits on her own records, then a sync.
fn paralegal_edits(
    rng: &mut StdRng,
    ledger: &mut Ledger,
    dev: &mut TestDevice,
    who: usize,
    run: usize,
) {
    for k in 0..rng.random_range(1..=3) {
        let tag = format!("{}.{run}.{k}", dev.name);
        let own: Vec<RecordId> = ledger
            .records
            .iter()
            .filter(|(_, (creator, _))| *creator == who)
            .map(|(id, _)| *id)
            .collect();
        if own.is_empty() || rng.random_bool(0.4) {
            let id = dev.create(&[
                ("full_name", Value::Text(format!("Case {tag}"))),
                (
                    "narrative",
                    Value::Text(format!(
                        "Told on visit {tag}. {}",
                        "x".repeat(rng.random_range(0..400))
                    )),
                ),
            ]);
            ledger.records.insert(id, (who, Vec::new()));
        } else {
            let id = own[rng.random_range(0..own.len())];
            dev.edit(id, |e| e.add_comment(&tag));
            ledger.records.get_mut(&id).unwrap().1.push(tag);
        }
    }
    let s = dev
        .sync()
        .unwrap_or_else(|e| panic!("{}: sync failed: {e}", dev.name));
    assert_eq!((s.refused, s.unsynced), (0, 0), "{}: {s:?}", dev.name);
}

/// Checks a store right after a kill: it opens, it is whole, and it holds every save
/// the child acknowledged so far.
fn check_after_kill(dir: &Path, ledger: &Ledger, run: usize) {
    let store = Store::open(dir, &Key::from_bytes(KEY)).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok", "run {run}");
    for (id, (creator, comments)) in &ledger.records {
        if *creator != 0 {
            continue;
        }
        let mut r = store
            .get(*id)
            .unwrap_or_else(|e| panic!("run {run}: acknowledged record {id} lost: {e}"));
        let texts: Vec<String> = r.comments().into_iter().map(|c| c.text).collect();
        for c in comments {
            assert!(
                texts.contains(c),
                "run {run}: acknowledged comment {c:?} on {id} lost"
            );
        }
    }
}

/// Change rows the device holds twice for one record (a page applied twice).
fn device_duplicate_rows(dir: &Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("intake.db")).unwrap();
    db.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(KEY)))
        .unwrap();
    db.query_row(
        "SELECT count(*) FROM (SELECT 1 FROM changes GROUP BY record_id, bytes HAVING count(*) > 1)",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn sigkilled_client_mid_sync_loses_nothing() {
    let started = Instant::now();
    let server = TestServer::start();
    let mut others = [
        TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren")),
        TestDevice::enroll(&server, "ajshe", Role::Paralegal, Some("prizren")),
    ];
    // The killed device: a supervisor, who sees every record of the team.
    let TestDevice { store, dir, .. } =
        TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    drop(store);
    let dir_path = dir.path().to_path_buf();

    let seed = seed();
    let runs = runs();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ledger = Ledger::default();
    let mut landed = Landed::default();
    // How long a run takes until its first sync ends: the window random kills land in.
    let mut durations: Vec<Duration> = Vec::new();
    let mut run = 0;
    while landed.kills() < runs {
        run += 1;
        assert!(
            run <= runs * 2,
            "only {} kills landed in {} runs: {landed:?}",
            landed.kills(),
            run - 1
        );
        let aim = match run % 4 {
            0 => Aim::PausedPush,
            1 => Aim::PausedPull,
            2 => Aim::Random,
            _ => Aim::AtSend {
                push: rng.random_bool(0.5),
            },
        };
        let pause = match aim {
            Aim::PausedPush => "push",
            Aim::PausedPull => "pull",
            _ => "none",
        };
        let spawned = Instant::now();
        let (kid, lines) = spawn(&dir_path, &format!("merita.{run}"), rng.random(), 2, pause);
        // The others edit while the child saves and syncs.
        for (i, dev) in others.iter_mut().enumerate() {
            if rng.random_bool(0.7) {
                paralegal_edits(&mut rng, &mut ledger, dev, i + 1, run);
            }
        }
        let mut seen: Vec<String> = Vec::new();
        let wanted = |line: &str| match aim {
            Aim::PausedPush | Aim::PausedPull => line == "paused",
            Aim::AtSend { push: true } => {
                line.starts_with("send ") && !line.starts_with("send push=0 ")
            }
            Aim::AtSend { push: false } => line.starts_with("send push=0 "),
            Aim::Random => false,
        };
        if aim == Aim::Random {
            durations.sort();
            let typical = durations
                .get(durations.len() / 2)
                .copied()
                .unwrap_or(Duration::from_millis(200));
            let at = Duration::from_micros(rng.random_range(0..typical.as_micros() as u64 + 1));
            // A random moment: the wait chooses when, it waits for nothing.
            std::thread::sleep(at.saturating_sub(spawned.elapsed()));
        } else {
            loop {
                match lines.recv_timeout(PATIENCE) {
                    Ok(line) => {
                        if line == "synced" && durations.len() < 64 {
                            durations.push(spawned.elapsed());
                        }
                        let hit = wanted(&line);
                        seen.push(line);
                        if hit {
                            break;
                        }
                    }
                    // The child ended on its own (no such moment came).
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        panic!("run {run}: the child said nothing for {PATIENCE:?} after {seen:?}")
                    }
                }
            }
        }
        let mut kid = kid;
        let ended_alone = kid.0.try_wait().unwrap().is_some();
        kid.0.kill().unwrap(); // SIGKILL on Unix
        let status = kid.0.wait().unwrap();
        // Lines printed before the kill but not yet read count too: the last one says
        // where it landed.
        seen.extend(lines.iter());
        for line in &seen {
            ledger.read(line);
        }
        if ended_alone {
            assert!(
                status.success(),
                "run {run}: the child failed: {status:?} after {seen:?}"
            );
            landed.finished += 1;
        } else {
            landed.note(seen.last().map(String::as_str));
            match (aim, seen.last().map(String::as_str)) {
                (Aim::PausedPush, Some("paused")) => landed.paused_push += 1,
                (Aim::PausedPull, Some("paused")) => landed.paused_pull += 1,
                _ => {}
            }
        }
        check_after_kill(&dir_path, &ledger, run);
    }

    // No more kills: the child syncs to the end once, then everyone syncs until a
    // whole round moves nothing.
    let (mut kid, lines) = spawn(&dir_path, "merita.last", 1, 1, "none");
    // Bounded: a sync that never ends (say, a push stored again at every replay) fails
    // here instead of hanging the suite.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Vec<String> = Vec::new();
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => last.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "the last sync did not end within 60 s; its last lines: {:?}",
                &last[last.len().saturating_sub(5)..]
            ),
        }
    }
    let status = kid.0.wait().unwrap();
    assert!(status.success(), "the last run failed: {last:?}");
    for line in &last {
        ledger.read(line);
    }
    let mut merita = TestDevice {
        name: "merita".into(),
        store: Store::open(&dir_path, &Key::from_bytes(KEY)).unwrap(),
        dir,
    };
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 5, "devices still exchanging after 4 rounds");
        let mut moved = 0;
        for d in others.iter_mut().chain(std::iter::once(&mut merita)) {
            let s = d
                .sync()
                .unwrap_or_else(|e| panic!("{}: sync failed: {e}", d.name));
            assert_eq!((s.refused, s.unsynced), (0, 0), "{}: {s:?}", d.name);
            moved += s.received + s.removed;
        }
        if moved == 0 {
            break;
        }
    }

    let mut lost = Vec::new();
    let mut duplicated = Vec::new();
    let mut diverged = Vec::new();
    // Every record on the server, on the device, and on the paralegal who made it.
    let on_server_ids: BTreeSet<RecordId> = server
        .storage
        .record_metas(&Scope::Team("prizren".into()))
        .unwrap()
        .into_iter()
        .map(|(m, _)| m.id)
        .collect();
    ledger.settle(server.storage.as_ref(), &on_server_ids);
    for id in &on_server_ids {
        if !merita.has(*id) {
            lost.push(format!("server record {id} missing on the killed device"));
        }
        if !ledger.records.contains_key(id) {
            duplicated.push(format!("server record {id} was never created"));
        }
    }
    let mut db = server.db();
    for (id, (creator, comments)) in &ledger.records {
        let Some(stored) = server.storage.record(*id).unwrap() else {
            lost.push(format!("record {id} missing on the server"));
            continue;
        };
        let mut server_copy = Record::load(&stored.doc, FormRegistry::builtin()).unwrap();
        let mut f = Findings::default();
        check_log(&mut db, *id, &mut server_copy, &mut f);
        lost.extend(f.lost);
        duplicated.extend(f.duplicated);
        let heads = server_copy.heads();
        let mut copies = vec![("server".to_string(), server_copy)];
        let mut holders = vec![&merita];
        if *creator > 0 {
            holders.push(&others[creator - 1]);
        }
        for dev in holders {
            if dev.has(*id) {
                copies.push((dev.name.clone(), dev.record(*id)));
            } else {
                lost.push(format!("{}: record {id} missing", dev.name));
            }
        }
        for (who, mut r) in copies {
            let mut f = Findings::default();
            check_copy(&who, &mut r, &heads, comments, &mut f);
            lost.extend(f.lost);
            duplicated.extend(f.duplicated);
            diverged.extend(f.diverged);
        }
    }
    let mut f = Findings::default();
    let (integrity, entries) = check_database(&mut db, &mut f);
    duplicated.extend(f.duplicated);
    let device_integrity = merita.store.integrity_check().unwrap();
    let twice = device_duplicate_rows(merita.dir.path());
    if twice > 0 {
        duplicated.push(format!("the device holds {twice} change rows twice"));
    }

    let comments: usize = ledger.records.values().map(|(_, c)| c.len()).sum();
    eprintln!(
        "kill_mid_sync client: seed={seed} runs={run} kills={} (in push {}, in pull {}, \
         answer received before commit {} of which paused deterministically after a push \
         acknowledgement {} and after a pull page {}; between round trips {}, in saves {}, \
         opening the store {}; runs that finished before the kill {}) records={} \
         comments={comments} log_entries={entries} lost={} duplicated={} converged={} \
         server_integrity={integrity} device_integrity={device_integrity} \
         final_rounds={rounds} in {:.1}s",
        landed.kills(),
        landed.push,
        landed.pull,
        landed.received,
        landed.paused_push,
        landed.paused_pull,
        landed.between,
        landed.saving,
        landed.starting,
        landed.finished,
        ledger.records.len(),
        lost.len(),
        duplicated.len(),
        diverged.is_empty(),
        started.elapsed().as_secs_f64()
    );
    assert!(lost.is_empty(), "lost: {lost:#?}");
    assert!(duplicated.is_empty(), "duplicated: {duplicated:#?}");
    assert!(diverged.is_empty(), "not converged: {diverged:#?}");
    assert_eq!(integrity, "ok");
    assert_eq!(device_integrity, "ok");
    assert!(
        landed.push > 0 && landed.pull > 0 && landed.paused_push > 0 && landed.paused_pull > 0,
        "kills must land in push, in pull and between an answer and its commit: {landed:?}"
    );
}

/// A write during a session in which the server may be killed: through the
/// dashboard's forms (a supervisor's comment or review, an admin adding a user or
/// revoking a device), or a paralegal's push.
#[derive(Clone, Debug)]
enum Write {
    Comment { record: RecordId, text: String },
    Review { record: RecordId, note: String },
    AddUser { name: String },
    Revoke { device: i64 },
    Push { record: RecordId, text: String },
}

impl Write {
    fn kind(&self) -> &'static str {
        match self {
            Write::Comment { .. } => "comment",
            Write::Review { .. } => "review",
            Write::AddUser { .. } => "add_user",
            Write::Revoke { .. } => "revoke",
            Write::Push { .. } => "push",
        }
    }
}

/// A signed-in dashboard (a browser without JavaScript) whose requests may meet a
/// killed server: errors are returned, not panicked on.
struct Browser {
    dash: intake_tests::dashboard::Dashboard,
    csrf: String,
}

impl Browser {
    /// Sets `name`'s password with her one-time code, signs her in and takes the
    /// session's CSRF token from `page`.
    fn sign_in(url: &str, name: &str, code: &str, page: &str) -> Browser {
        let dash = intake_tests::dashboard::Dashboard {
            url: url.to_string(),
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        };
        let set = dash.set_password(code, intake_tests::dashboard::PASSWORD);
        assert_eq!(set.status, 200, "{}", set.body);
        let signed = dash.sign_in(name, intake_tests::dashboard::PASSWORD);
        assert_eq!(signed.status, 303, "{}", signed.body);
        // One CSRF token per session: any page's forms carry it.
        let csrf = dash.get(page).csrf();
        Browser { dash, csrf }
    }

    /// Posts a form; `Ok(true)` when the server answered that it did it, `Ok(false)`
    /// when it answered otherwise, `Err` when no answer came.
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Result<bool, String> {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        let resp = self
            .dash
            .http
            .post(format!("{}{path}", self.dash.url))
            .form(&form)
            .send()
            .map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        // The whole answer must arrive: a page cut off by the kill is no answer.
        let body = resp.text().map_err(|e| format!("{e:?}"))?;
        let done = match status {
            303 => !location.contains("error="),
            200 => !body.contains("class=\"error"),
            _ => false,
        };
        if !done {
            eprintln!(
                "{path}: {status} {location} {}",
                &body[..body.len().min(2000)]
            );
        }
        Ok(done)
    }
}

/// A complete case, submitted: a supervisor may send it back for changes.
fn submitted_case(dev: &mut TestDevice, name: &str) -> RecordId {
    let text = |s: &str| Value::Text(s.to_string());
    let id = dev.create(&[
        ("full_name", text(name)),
        ("consent_intake", Value::Bool(true)),
        ("municipality", text("prizren")),
        ("issue_type", text("school_segregation")),
        ("birth_year", Value::Int(1990)),
        ("phone", text("+383 44 123 456")),
    ]);
    dev.edit(id, |e| {
        e.set_status(intake_shared::ReviewStatus::Submitted, None)
    });
    id
}

/// Does `w`; `Ok(true)`: answered as done, `Err`: no answer (the server died).
fn perform(
    w: &Write,
    supervisor: &Browser,
    admin: &Browser,
    drita: &mut TestDevice,
) -> Result<bool, String> {
    match w {
        Write::Comment { record, text } => supervisor.post(
            &format!("/records/{record}/comment"),
            &[("text", text.as_str())],
        ),
        Write::Review { record, note } => supervisor.post(
            &format!("/records/{record}/review"),
            &[("outcome", "needs_changes"), ("note", note.as_str())],
        ),
        Write::AddUser { name } => admin.post(
            "/admin/users",
            &[
                ("name", name.as_str()),
                ("role", "paralegal"),
                ("team", "prizren"),
            ],
        ),
        Write::Revoke { device } => admin.post(&format!("/admin/devices/{device}/revoke"), &[]),
        Write::Push { .. } => match drita.sync() {
            Ok(s) => Ok(s.refused == 0 && s.unsynced == 0),
            Err(e) if e.is_retryable() => Err(e.to_string()),
            Err(e) => panic!("a permanent error from a killed server: {e:?}"),
        },
    }
}

/// Whether the server holds `w` (read from its database, the server running).
fn present(w: &Write, db: &Path, key: &intake_server::storage::key::DbKey) -> bool {
    use intake_server::storage::sqlite::SqliteStorage;
    let storage = SqliteStorage::open(db, key).unwrap();
    let record = |id: &RecordId| {
        let stored = storage.record(*id).unwrap().expect("the record exists");
        Record::load(&stored.doc, FormRegistry::builtin()).unwrap()
    };
    match w {
        Write::Comment { record: id, text } | Write::Push { record: id, text } => {
            record(id).comments().iter().any(|c| &c.text == text)
        }
        Write::Review { record: id, note } => {
            record(id).review_note().as_deref() == Some(note.as_str())
        }
        Write::AddUser { name } => storage.user(name).unwrap().is_some(),
        Write::Revoke { device } => {
            let db = intake_server::storage::sqlite::cipher::connect(db, key, true).unwrap();
            db.query_row(
                "SELECT revoked_at IS NOT NULL FROM devices WHERE id = ?1",
                [device],
                |r| r.get(0),
            )
            .unwrap()
        }
    }
}

/// What has been written to the tables the writes touch: grows with every commit of
/// one (record changes, users, revocations, the audit trail; not sign-in sessions).
fn written(db: &rusqlite::Connection) -> Option<(i64, i64, i64, i64)> {
    db.query_row(
        "SELECT (SELECT ifnull(max(seq), 0) FROM log), (SELECT count(*) FROM users), \
         (SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL), \
         (SELECT ifnull(max(seq), 0) FROM audit)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .ok()
}

/// When a session kills the server.
enum ServerKill {
    /// This long after the write starts.
    After(Duration),
    /// The moment the write's first commit is visible in the database: the answer
    /// has not left yet, so this aims at "stored but unanswered".
    AtCommit(rusqlite::Connection),
}

#[test]
fn sigkilled_server_during_dashboard_and_admin_writes_loses_nothing() {
    use intake_server::storage::sqlite::SqliteStorage;
    use intake_server::{Settings, admin, init_store, load_key};
    use intake_tests::kill_mid_sync::{ServerProcess, free_address};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let started = Instant::now();
    // reqwest's rustls needs its provider installed before the first client is built.
    intake_client::sync::ensure_crypto_provider();
    let data = tempfile::tempdir().unwrap();
    let addr = free_address();
    let url = format!("http://{addr}");
    let settings = Settings {
        listen: addr,
        data_dir: data.path().to_path_buf(),
        ..Settings::default()
    };
    // Users and codes exist before the first start; the revocable devices are
    // enrolled over HTTP once it runs.
    let (admin_code, merita_code, drita_code, spare_codes) = {
        let (storage, first) = init_store(&settings, None).unwrap();
        let s = storage.as_ref();
        admin::add_user(s, "merita", Role::Supervisor, Some("prizren"), 60).unwrap();
        let drita = admin::add_user(s, "drita", Role::Paralegal, Some("prizren"), 60).unwrap();
        let spare: Vec<String> = (0..40)
            .map(|i| {
                admin::add_user(
                    s,
                    &format!("spare{i}"),
                    Role::Paralegal,
                    Some("prizren"),
                    60,
                )
                .unwrap()
                .enrolment_code
            })
            .collect();
        let merita = admin::sign_in_code(s, "merita", 60).unwrap().code;
        (first.sign_in.code, merita, drita.enrolment_code, spare)
    };
    let db_path = data.path().join(intake_server::startup::DB_FILE);
    let key = load_key(&settings, None).unwrap();
    let mut server = ServerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_intake-test-server")),
        data.path(),
        addr,
    );
    let supervisor = Browser::sign_in(&url, "merita", &merita_code, "/records");
    let admin_browser = Browser::sign_in(&url, "admin", &admin_code, "/admin/users");
    let mut drita = {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), &Key::from_bytes(KEY)).unwrap();
        intake_client::enroll(&mut store, &url, &drita_code, "drita", None).unwrap();
        TestDevice {
            name: "drita".into(),
            store,
            dir,
        }
    };
    let mut devices: Vec<i64> = spare_codes
        .iter()
        .map(|code| {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open(dir.path(), &Key::from_bytes(KEY)).unwrap();
            intake_client::enroll(&mut store, &url, code, "spare", None)
                .unwrap()
                .device_id
        })
        .collect();
    let mut records: Vec<RecordId> = (0..6)
        .map(|i| submitted_case(&mut drita, &format!("Case {i}")))
        .collect();
    drita.sync().unwrap();

    let runs = runs().max(1);
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    // Comments written (by any way), by record, to find duplicates at the end.
    let mut comments: BTreeMap<RecordId, Vec<String>> = BTreeMap::new();
    let mut users: Vec<String> = Vec::new();
    let mut revoked: Vec<i64> = Vec::new();
    let mut kills = 0;
    let (mut aimed_random, mut aimed_commit) = (0, 0);
    // By kind: (sessions, answered, stored but unanswered, not stored then done again).
    let mut by_kind: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
    let mut lost: Vec<String> = Vec::new();
    let mut unkilled: Vec<Duration> = Vec::new();
    let mut session = 0;
    while kills < runs {
        session += 1;
        assert!(
            session <= runs * 3,
            "only {kills} kills in {} sessions",
            session - 1
        );
        let tag = format!("s{session}");
        let record = records[rng.random_range(0..records.len())];
        let w = match rng.random_range(0..10) {
            0..=2 => Write::Comment {
                record,
                text: format!("supervisor comment {tag}"),
            },
            3 | 4 => Write::Review {
                record,
                note: format!("re-ask consent {tag}"),
            },
            5 | 6 => Write::AddUser {
                name: format!("user{session}"),
            },
            7 if !devices.is_empty() => Write::Revoke {
                device: devices.remove(rng.random_range(0..devices.len())),
            },
            _ => {
                let text = format!("paralegal comment {tag}");
                if rng.random_bool(0.2) {
                    records.push(submitted_case(&mut drita, &format!("Case {tag}")));
                }
                drita.edit(record, |e| e.add_comment(&text));
                Write::Push { record, text }
            }
        };
        let kill = match rng.random_range(0..10) {
            0 | 1 => None,
            2..=4 => {
                aimed_random += 1;
                unkilled.sort();
                let typical = unkilled
                    .get(unkilled.len() / 2)
                    .copied()
                    .unwrap_or(Duration::from_millis(20));
                Some(ServerKill::After(Duration::from_micros(
                    rng.random_range(0..typical.as_micros() as u64 * 3 / 2 + 1),
                )))
            }
            _ => {
                aimed_commit += 1;
                let db =
                    intake_server::storage::sqlite::cipher::connect(&db_path, &key, true).unwrap();
                Some(ServerKill::AtCommit(db))
            }
        };
        let done = Arc::new(AtomicBool::new(false));
        let killer = kill.map(|k| {
            let child = server.child.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                match k {
                    // The wait picks a random moment; it waits for nothing.
                    ServerKill::After(d) => std::thread::sleep(d),
                    ServerKill::AtCommit(db) => {
                        // Watches for an event (a commit), without sleeping.
                        let before = written(&db);
                        loop {
                            let now = written(&db);
                            if now.is_some() && now != before {
                                break;
                            }
                            if done.load(Ordering::SeqCst) {
                                return false;
                            }
                            std::thread::yield_now();
                        }
                    }
                }
                ServerProcess::kill(&child)
            })
        });
        let began = Instant::now();
        let answer = perform(&w, &supervisor, &admin_browser, &mut drita);
        let took = began.elapsed();
        done.store(true, Ordering::SeqCst);
        let killed = killer.map(|k| k.join().unwrap()).unwrap_or(false);
        if killed {
            kills += 1;
            server.restart();
        } else if answer.is_ok() {
            unkilled.push(took);
        }
        let tally = by_kind.entry(w.kind()).or_default();
        tally.0 += 1;
        match answer {
            Ok(true) => {
                tally.1 += 1;
                if !present(&w, &db_path, &key) {
                    lost.push(format!("session {session}: answered {w:?} is missing"));
                }
            }
            Ok(false) => panic!("session {session}: the server refused {w:?}"),
            Err(e) => {
                assert!(killed, "session {session}: {w:?} failed with no kill: {e}");
                if present(&w, &db_path, &key) {
                    // Committed, then killed before the answer left: a person sees
                    // it done when she looks again; a device's retry must not
                    // duplicate it.
                    tally.2 += 1;
                } else {
                    tally.3 += 1;
                    // Not stored: done again, as a person (or the device) would.
                    let again = perform(&w, &supervisor, &admin_browser, &mut drita);
                    assert_eq!(again, Ok(true), "session {session}: {w:?} again");
                    if !present(&w, &db_path, &key) {
                        lost.push(format!("session {session}: {w:?} done again is missing"));
                    }
                }
            }
        }
        match &w {
            Write::Comment { record, text } | Write::Push { record, text } => {
                comments.entry(*record).or_default().push(text.clone())
            }
            Write::AddUser { name } => users.push(name.clone()),
            Write::Revoke { device } => revoked.push(*device),
            Write::Review { .. } => {}
        }
    }

    // No more kills: drita syncs until nothing moves (a push stored unanswered is
    // sent again here, if no later sync did).
    for _ in 0..3 {
        let s = drita.sync().unwrap();
        assert_eq!((s.refused, s.unsynced), (0, 0), "{s:?}");
        if s.received == 0 {
            break;
        }
    }
    let storage = SqliteStorage::open(&db_path, &key).unwrap();
    let mut db = intake_tests::Db::Sqlite(
        intake_server::storage::sqlite::cipher::connect(&db_path, &key, true).unwrap(),
    );
    let mut duplicated = Vec::new();
    let mut diverged = Vec::new();
    for id in &records {
        let stored = storage.record(*id).unwrap().expect("record on the server");
        let mut on_server = Record::load(&stored.doc, FormRegistry::builtin()).unwrap();
        let mut f = Findings::default();
        check_log(&mut db, *id, &mut on_server, &mut f);
        lost.extend(f.lost);
        duplicated.extend(f.duplicated);
        let mut on_device = drita.record(*id);
        if on_server.heads() != on_device.heads() {
            diverged.push(format!("record {id}"));
        }
        let wanted = comments.get(id).cloned().unwrap_or_default();
        for (who, r) in [("server", &mut on_server), ("drita", &mut on_device)] {
            let texts: Vec<String> = r.comments().into_iter().map(|c| c.text).collect();
            if texts.len() != wanted.len() {
                duplicated.push(format!(
                    "{who}: record {id} has {} comments, {} were written",
                    texts.len(),
                    wanted.len()
                ));
            }
            for c in &wanted {
                match texts.iter().filter(|t| *t == c).count() {
                    0 => lost.push(format!("{who}: record {id} lacks {c:?}")),
                    1 => {}
                    n => duplicated.push(format!("{who}: record {id} has {c:?} {n} times")),
                }
            }
        }
    }
    for name in &users {
        if storage.user(name).unwrap().is_none() {
            lost.push(format!("user {name}"));
        }
    }
    for device in &revoked {
        let gone = db.count(
            "SELECT revoked_at IS NOT NULL FROM devices WHERE id = ?1",
            &[intake_tests::Cell::Int(*device)],
        ) == 1;
        if !gone {
            lost.push(format!("revocation of device {device}"));
        }
    }
    let mut f = Findings::default();
    let (integrity, entries) = check_database(&mut db, &mut f);
    duplicated.extend(f.duplicated);
    // The audit trail: exactly one entry per dashboard and admin write, answered or
    // not. Each session's write ends stored once (answered, stored but unanswered, or
    // not stored and done again), and a write and its entry commit together, so a kill
    // between them cannot leave a write without its entry.
    let mut audited = |action: &str| -> i64 {
        db.count(
            "SELECT count(*) FROM audit WHERE action = ?1",
            &[intake_tests::Cell::Text(action.into())],
        )
    };
    let mut unaudited = Vec::new();
    for (kind, action) in [
        ("comment", "comment"),
        ("review", "review"),
        ("add_user", "add_user"),
        ("revoke", "revoke_device"),
    ] {
        let writes = by_kind.get(kind).map_or(0, |t| t.0) as i64;
        let entries = audited(action);
        if entries > writes {
            duplicated.push(format!(
                "{entries} audit entries {action} for {writes} writes"
            ));
        }
        if entries < writes {
            unaudited.push(format!("{kind} {}", writes - entries));
        }
    }

    let stored_unanswered: usize = by_kind.values().map(|t| t.2).sum();
    let rows: Vec<String> = by_kind
        .iter()
        .map(|(k, t)| {
            format!(
                "{k}: sessions {} answered {} stored-unanswered {} unstored-redone {}",
                t.0, t.1, t.2, t.3
            )
        })
        .collect();
    eprintln!(
        "kill_mid_sync server: seed={seed} sessions={session} kills={kills} (aimed at random \
         {aimed_random}, at the write's commit {aimed_commit}) stored_but_unanswered=\
         {stored_unanswered} [{}] writes without an audit entry [{}] records={} \
         log_entries={entries} lost={} duplicated={} converged={} integrity={integrity} \
         in {:.1}s",
        rows.join("; "),
        unaudited.join(", "),
        records.len(),
        lost.len(),
        duplicated.len(),
        diverged.is_empty(),
        started.elapsed().as_secs_f64()
    );
    assert!(lost.is_empty(), "lost: {lost:#?}");
    assert!(duplicated.is_empty(), "duplicated: {duplicated:#?}");
    assert!(diverged.is_empty(), "not converged: {diverged:#?}");
    assert!(
        unaudited.is_empty(),
        "stored writes without an audit entry: {unaudited:?}"
    );
    assert_eq!(integrity, "ok");
    assert!(
        stored_unanswered > 0,
        "the hardest case (a write stored, its answer lost with the server) never happened: {rows:?}"
    );
}
