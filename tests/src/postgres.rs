//! A throwaway PostgreSQL cluster for the tests of the PostgreSQL backend (issue 14):
//! `initdb` and `pg_ctl` on a temporary directory, listening on 127.0.0.1 on a free
//! port only, stopped and removed when the last [`Database`] using it is dropped. Each
//! [`database`] call makes a new empty database on it, so tests running in parallel
//! never see each other's rows.
//!
//! Run as root (CI containers), the cluster's commands run as the `postgres` user
//! (`runuser`), since PostgreSQL refuses to run as root. The binaries come from
//! `INTAKE_TEST_PG_BIN`, else Debian's `/usr/lib/postgresql/<version>/bin`, else `PATH`.
//!
//! When PostgreSQL is not installed, [`database`] panics with what to do: these tests
//! never pass silently. `INTAKE_TEST_POSTGRES=skip` skips them knowingly: [`database`]
//! then returns `None` after writing a notice straight to stderr (past the test
//! harness's capture, so it shows even for a passing test).
//!
//! Std only (and `tempfile`): `server/tests/storage_conformance.rs` includes this file
//! by path, as it does `schema_check.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// A running cluster; stopped (immediately: it is thrown away) on drop.
pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// An empty database of its own on the shared cluster, which lives as long as it.
pub struct Database {
    /// `postgres://postgres@127.0.0.1:PORT/NAME` (trust authentication, loopback only).
    pub url: String,
    _cluster: Arc<Cluster>,
}

/// The cluster the databases of this process share while any is alive.
static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Whether the cluster this process starts syncs to disk ([`durable`]).
static DURABLE: AtomicBool = AtomicBool::new(false);

/// Makes the cluster this process starts next durable, as a production one is
/// (`fsync` on): the benchmark measures with it. Tests run without `fsync`, which only
/// matters when the machine crashes, to keep the suite quick.
pub fn durable() {
    DURABLE.store(true, Ordering::SeqCst);
}

/// A new empty database for `test`, or `None` when `INTAKE_TEST_POSTGRES=skip` (after
/// a loud notice naming `test`). Panics when PostgreSQL is missing or does not start.
pub fn database(test: &str) -> Option<Database> {
    if std::env::var("INTAKE_TEST_POSTGRES").as_deref() == Ok("skip") {
        // Straight to stderr: `eprintln!` would be captured and shown only on failure.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** NOT RUN: {test} (PostgreSQL), because INTAKE_TEST_POSTGRES=skip ***"
        );
        return None;
    }
    let cluster = {
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        match shared.upgrade() {
            Some(c) => c,
            None => {
                let c = Arc::new(Cluster::start());
                *shared = Arc::downgrade(&c);
                c
            }
        }
    };
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    cluster.run(
        "createdb",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            "postgres",
            &name,
        ],
    );
    Some(Database {
        url: cluster.url(&name),
        _cluster: cluster,
    })
}

/// Where the PostgreSQL binaries are: `INTAKE_TEST_PG_BIN`, Debian's newest
/// `/usr/lib/postgresql/<version>/bin`, or the directory of `initdb` on `PATH`.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("INTAKE_TEST_PG_BIN") {
        // Named but without initdb: as good as not installed (no silent fallback).
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Cluster {
    fn start() -> Cluster {
        let bin = bin_dir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed (no initdb found): these tests of the PostgreSQL \
                 backend were NOT RUN. Install it (scripts/deps installs Debian's postgresql), \
                 point INTAKE_TEST_PG_BIN at its bin directory, or set \
                 INTAKE_TEST_POSTGRES=skip to skip them knowingly."
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("intake-pg-")
            .tempdir()
            .expect("a temporary directory for the cluster");
        let as_postgres = is_root();
        if as_postgres {
            // PostgreSQL refuses to run as root: the cluster belongs to `postgres`.
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "chown of the cluster directory to postgres"
            );
        }
        let mut cluster = Cluster {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        // A port that was free a moment ago can be taken meanwhile: try a few.
        for _ in 0..5 {
            cluster.port = free_port();
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c max_connections=300",
                cluster.port,
                cluster.dir.path().display(),
                if DURABLE.load(Ordering::SeqCst) {
                    "on"
                } else {
                    "off"
                }
            );
            let log = cluster.dir.path().join("server.log");
            if cluster.try_run(
                "pg_ctl",
                &[
                    "-D",
                    &data,
                    "-l",
                    &log.to_string_lossy(),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    &options,
                    "start",
                ],
            ) {
                return cluster;
            }
        }
        let log =
            std::fs::read_to_string(cluster.dir.path().join("server.log")).unwrap_or_default();
        panic!("the throwaway PostgreSQL cluster did not start:\n{log}");
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        // The cluster directory, not the caller's: `postgres` may not enter it.
        c.current_dir(Path::new("/"));
        c
    }

    fn try_run(&self, program: &str, args: &[&str]) -> bool {
        self.command(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        // Thrown away: no checkpoint needed.
        let _ = self.try_run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
