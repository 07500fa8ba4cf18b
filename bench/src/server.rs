//! The server under measurement: a fresh `intake-bench-server` process over a fresh
//! temporary data directory, with users added directly in its store before it starts,
//! and its peak memory and CPU time read from `/proc/<pid>`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use anyhow::{Context, bail};
use intake_server::storage::Role;
use intake_server::storage::sqlite::SqliteStorage;
use intake_server::{Settings, admin, init_store};

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

/// A running server process; killed and its directory removed when dropped.
pub struct ServerProcess {
    pub addr: SocketAddr,
    child: Child,
    // Kept open so that the server never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    dir: tempfile::TempDir,
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
        let codes = {
            let settings = Settings {
                data_dir: dir.path().to_path_buf(),
                ..Settings::default()
            };
            let (storage, _first_admin) = init_store(&settings, None)?;
            users
                .iter()
                .map(|u| add_user(storage.as_ref(), u))
                .collect::<anyhow::Result<Vec<_>>>()?
        };
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
        let mut child = command
            .arg("--data")
            .arg(dir.path())
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
            ServerProcess {
                addr,
                child,
                _stdout: stdout,
                dir,
            },
            codes,
        ))
    }

    /// Adds a user while the server runs (SQLite lets a second connection write).
    pub fn add_user(&self, user: &UserSpec) -> anyhow::Result<String> {
        let storage = SqliteStorage::open(&self.db_path(), &self.key()?)?;
        add_user(&storage, user)
    }

    /// A one-time code with which `name` (a supervisor or admin) sets her dashboard
    /// password, issued while the server runs, as `intake-server user password` does.
    pub fn sign_in_code(&self, name: &str) -> anyhow::Result<String> {
        let storage = SqliteStorage::open(&self.db_path(), &self.key()?)?;
        Ok(admin::sign_in_code(&storage, name, 60)?.code)
    }

    /// The server's database key (the key file `init` wrote in its data directory).
    pub fn key(&self) -> anyhow::Result<intake_server::storage::key::DbKey> {
        let settings = Settings {
            data_dir: self.dir.path().to_path_buf(),
            ..Settings::default()
        };
        intake_server::load_key(&settings, None)
    }

    /// The server's SQLite file, e.g. for `2g` to read what it stored (read-only).
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join(intake_server::startup::DB_FILE)
    }

    /// The size of the server's database files (database and WAL), in bytes.
    pub fn db_bytes(&self) -> u64 {
        let base = self.db_path();
        ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", base.display())).ok())
            .map(|m| m.len())
            .sum()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User plus system CPU time so far, in seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid())
    }

    /// Peak resident memory (`VmHWM`) since start or the last [`Self::reset_peak`], MB.
    pub fn peak_rss_mb(&self) -> anyhow::Result<f64> {
        Ok(status_kb(self.pid(), "VmHWM")? as f64 / 1024.0)
    }

    /// Resident memory now (`VmRSS`), MB.
    pub fn rss_mb(&self) -> anyhow::Result<f64> {
        Ok(status_kb(self.pid(), "VmRSS")? as f64 / 1024.0)
    }

    /// Lowers the peak-RSS mark to the current RSS, so a phase reports its own peak.
    /// Returns false where the kernel refuses (the peak then counts from the start).
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").is_ok()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGTERM first: the server shuts down gracefully (and a profiler it runs under
        // writes its output); SIGKILL if it has not exited within a minute.
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn add_user(storage: &SqliteStorage, u: &UserSpec) -> anyhow::Result<String> {
    Ok(admin::add_user(storage, &u.name, u.role, u.team.as_deref(), 24 * 60)?.enrolment_code)
}

/// A `kB` line of `/proc/<pid>/status`.
fn status_kb(pid: u32, key: &str) -> anyhow::Result<u64> {
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
