//! The server under measurement: a fresh `intake-bench-server` process over a fresh
//! temporary data directory, with users added directly in its store before it starts,
//! and its peak memory and CPU time read from `/proc/<pid>`.
//!
//! With `--backend postgres` ([`set_backend`]) the store is a new database on a
//! throwaway PostgreSQL cluster this benchmark starts (durable: `fsync` on), and
//! `--servers N` runs N server processes on it, as several stateless servers behind a
//! load balancer; CPU time is then the servers' sum, peak memory the largest server's.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, bail};
use intake_server::startup::init_postgres;
use intake_server::storage::postgres::PgStorage;
use intake_server::storage::sqlite::SqliteStorage;
use intake_server::storage::{Role, Storage};
use intake_server::{Settings, admin, init_store};
use intake_tests::postgres::Database;

/// Where the servers of this run keep their records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite store (the default), one server.
    Sqlite,
    /// PostgreSQL, with this many server processes on it.
    Postgres { servers: usize },
}

static BACKEND: OnceLock<Backend> = OnceLock::new();

/// Chooses the backend of every server this process starts (once, before the first).
pub fn set_backend(backend: Backend) {
    if let Backend::Postgres { .. } = backend {
        intake_tests::postgres::durable();
    }
    let _ = BACKEND.set(backend);
}

pub fn backend() -> Backend {
    *BACKEND.get().unwrap_or(&Backend::Sqlite)
}

/// A user to create before the server starts.
#[derive(Clone, Debug)]
pub struct UserSpec {
    pub name: String,
    pub role: Role,
    pub team: Option<String>,
}

impl UserSpec {
    pub fn paralegal(name: &str, team: &str) -> UserSpec {
        UserSpec {
            name: name.into(),
            role: Role::Paralegal,
            team: Some(team.into()),
        }
    }

    pub fn supervisor(name: &str, team: &str) -> UserSpec {
        UserSpec {
            name: name.into(),
            role: Role::Supervisor,
            team: Some(team.into()),
        }
    }
}

/// The running server processes (one, or several on one PostgreSQL database); killed
/// and their store removed when dropped.
pub struct ServerProcess {
    /// The first server's address.
    pub addr: SocketAddr,
    /// Every server's address (a load balancer spreads connections over them).
    pub addrs: Vec<SocketAddr>,
    procs: Vec<Proc>,
    store: Store,
}

struct Proc {
    child: Child,
    // Kept open so that the server never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

/// The servers' store: a data directory, and with PostgreSQL its database (dropped
/// after the processes, which `Drop` stops first).
struct Store {
    dir: tempfile::TempDir,
    database: Option<Database>,
}

/// The server binary built next to the benchmark's.
fn server_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("intake-bench-server");
    if !path.exists() {
        bail!(
            "{} not found: build every binary of the benchmark with `cargo build --release -p intake-bench --bins` (scripts/bench does)",
            path.display()
        );
    }
    Ok(path)
}

impl ServerProcess {
    /// Creates a store with `users`, starts the server on it, and returns it with each
    /// user's one-time enrolment code (in the order given).
    pub fn start(users: &[UserSpec]) -> anyhow::Result<(ServerProcess, Vec<String>)> {
        ServerProcess::start_with(users, None)
    }

    /// Like [`ServerProcess::start`]; with `tls` (certificate chain, key) the server
    /// speaks TLS.
    pub fn start_with(
        users: &[UserSpec],
        tls: Option<(&Path, &Path)>,
    ) -> anyhow::Result<(ServerProcess, Vec<String>)> {
        let dir = tempfile::Builder::new()
            .prefix("intake-bench-server")
            .tempdir()?;
        let (database, servers) = match backend() {
            Backend::Sqlite => (None, 1),
            Backend::Postgres { servers } => {
                let db = intake_tests::postgres::database("intake-bench")
                    .context("--backend postgres, but INTAKE_TEST_POSTGRES=skip")?;
                (Some(db), servers.max(1))
            }
        };
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        let storage: std::sync::Arc<dyn Storage> = match &database {
            None => init_store(&settings, None)?.0,
            Some(db) => init_postgres(&settings, &db.url)?.0,
        };
        let codes = users
            .iter()
            .map(|u| add_user(storage.as_ref(), u))
            .collect::<anyhow::Result<Vec<_>>>()?;
        drop(storage);
        let mut procs = Vec::new();
        let mut addrs = Vec::new();
        for _ in 0..servers {
            let (proc, addr) = spawn(dir.path(), database.as_ref(), tls)?;
            procs.push(proc);
            addrs.push(addr);
        }
        Ok((
            ServerProcess {
                addr: addrs[0],
                addrs,
                procs,
                store: Store { dir, database },
            },
            codes,
        ))
    }

    /// The store, opened again beside the running servers (SQLite lets a second
    /// connection write; PostgreSQL is shared anyway).
    fn storage(&self) -> anyhow::Result<Box<dyn Storage>> {
        Ok(match &self.store.database {
            None => Box::new(SqliteStorage::open(&self.db_path()?, &self.key()?)?),
            Some(db) => Box::new(PgStorage::connect(&db.url)?),
        })
    }

    /// Adds a user while the server runs.
    pub fn add_user(&self, user: &UserSpec) -> anyhow::Result<String> {
        add_user(self.storage()?.as_ref(), user)
    }

    /// A one-time code with which `name` (a supervisor or admin) sets her dashboard
    /// password, issued while the server runs, as `intake-server user password` does.
    pub fn sign_in_code(&self, name: &str) -> anyhow::Result<String> {
        Ok(admin::sign_in_code(self.storage()?.as_ref(), name, 60)?.code)
    }

    /// The server's database key (the key file `init` wrote in its data directory).
    /// SQLite only.
    pub fn key(&self) -> anyhow::Result<intake_server::storage::key::DbKey> {
        self.sqlite_only("the database key")?;
        let settings = Settings {
            data_dir: self.store.dir.path().to_path_buf(),
            ..Settings::default()
        };
        intake_server::load_key(&settings, None)
    }

    /// The server's SQLite file, e.g. for `2g` to read what it stored (read-only).
    pub fn db_path(&self) -> anyhow::Result<PathBuf> {
        self.sqlite_only("the database file")?;
        Ok(self.store.dir.path().join(intake_server::startup::DB_FILE))
    }

    fn sqlite_only(&self, what: &str) -> anyhow::Result<()> {
        if self.store.database.is_some() {
            bail!("{what}: this workload reads the SQLite file and runs on SQLite only");
        }
        Ok(())
    }

    /// The size of the servers' database, in bytes: SQLite's files (database and WAL),
    /// or PostgreSQL's `pg_database_size`.
    pub fn db_bytes(&self) -> anyhow::Result<u64> {
        match &self.store.database {
            None => {
                let base = self.db_path()?;
                Ok(["", "-wal"]
                    .iter()
                    .filter_map(|s| std::fs::metadata(format!("{}{s}", base.display())).ok())
                    .map(|m| m.len())
                    .sum())
            }
            Some(db) => {
                let mut client = postgres::Client::connect(&db.url, postgres::NoTls)?;
                let row = client.query_one("SELECT pg_database_size(current_database())", &[])?;
                Ok(row.get::<_, i64>(0) as u64)
            }
        }
    }

    fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.procs.iter().map(|p| p.child.id())
    }

    /// User plus system CPU time so far, in seconds, of all the servers together.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        self.pids().map(cpu_seconds).sum()
    }

    /// Peak resident memory (`VmHWM`) since start or the last [`Self::reset_peak`], MB:
    /// the largest server's.
    pub fn peak_rss_mb(&self) -> anyhow::Result<f64> {
        Ok(self.peak_rss_each_mb()?.into_iter().fold(0.0, f64::max))
    }

    /// Each server's peak resident memory, MB, in start order.
    pub fn peak_rss_each_mb(&self) -> anyhow::Result<Vec<f64>> {
        self.pids()
            .map(|pid| Ok(status_kb(pid, "VmHWM")? as f64 / 1024.0))
            .collect()
    }

    /// Resident memory now (`VmRSS`), MB: the largest server's.
    pub fn rss_mb(&self) -> anyhow::Result<f64> {
        self.pids()
            .map(|pid| Ok(status_kb(pid, "VmRSS")? as f64 / 1024.0))
            .try_fold(0.0, |m, r: anyhow::Result<f64>| Ok(f64::max(m, r?)))
    }

    /// Lowers the peak-RSS mark to the current RSS, so a phase reports its own peak.
    /// Returns false where the kernel refuses (the peak then counts from the start).
    pub fn reset_peak(&self) -> bool {
        // Every server's, even after one refuses.
        let done: Vec<bool> = self
            .pids()
            .map(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
            .collect();
        done.iter().all(|ok| *ok)
    }
}

/// Starts one `intake-bench-server` over `dir` (and `database`), and waits for it to
/// listen.
fn spawn(
    dir: &Path,
    database: Option<&Database>,
    tls: Option<(&Path, &Path)>,
) -> anyhow::Result<(Proc, SocketAddr)> {
    // INTAKE_BENCH_SERVER_PREFIX runs the server under a tool, e.g.
    // "valgrind --tool=callgrind --callgrind-out-file=/tmp/server.%p" (the pid read
    // from /proc is then the tool's, which is the same process).
    let prefix = std::env::var("INTAKE_BENCH_SERVER_PREFIX").unwrap_or_default();
    let mut words = prefix.split_whitespace();
    let mut command = match words.next() {
        Some(tool) => {
            let mut c = Command::new(tool);
            c.args(words).arg(server_binary()?);
            c
        }
        None => Command::new(server_binary()?),
    };
    if let Some((chain, key)) = tls {
        command
            .arg("--tls-cert")
            .arg(chain)
            .arg("--tls-key")
            .arg(key);
    }
    if let Some(db) = database {
        command.arg("--database").arg(&db.url);
    }
    let mut child = command
        .arg("--data")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting intake-bench-server")?;
    let mut stdout = BufReader::new(child.stdout.take().context("server stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    let Some(addr) = line.trim().strip_prefix("listening ") else {
        let _ = child.kill();
        bail!("the server did not start (it said {line:?})");
    };
    let addr = addr.parse().context("the server's address")?;
    Ok((
        Proc {
            child,
            _stdout: stdout,
        },
        addr,
    ))
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGTERM first: each server shuts down gracefully (and a profiler it runs
        // under writes its output); SIGKILL if it has not exited within a minute.
        for p in &self.procs {
            if let Some(pid) = rustix::process::Pid::from_raw(p.child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        for p in &mut self.procs {
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = p.child.try_wait() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

fn add_user(storage: &dyn Storage, u: &UserSpec) -> anyhow::Result<String> {
    Ok(admin::add_user(storage, &u.name, u.role, u.team.as_deref(), 24 * 60)?.enrolment_code)
}

/// A `kB` line of `/proc/<pid>/status`.
pub(crate) fn status_kb(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

/// `utime + stime` of `/proc/<pid>/stat` (fields 14 and 15), in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields
    // from after its closing parenthesis, where field 3 starts.
    let rest = &stat[stat.rfind(')').context("malformed stat")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .context("short stat")?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    Ok(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}
