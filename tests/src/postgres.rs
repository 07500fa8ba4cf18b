//! A throwaway PostgreSQL cluster for the tests of the PostgreSQL backend (issue 14):
//! `initdb` and `pg_ctl` on a temporary directory, listening on 127.0.0.1 on a free
//! port only, started by the first [`database`] call and stopped and removed when the
//! test process ends. Each [`database`] call makes a new empty database on it, so tests
//! running in parallel never see each other's rows; it is dropped with its [`Database`].
//!
//! One cluster for the whole process, not one per burst of tests: the end-to-end suite
//! on PostgreSQL starts some 200 servers one after another, and a cluster stopped
//! whenever no test happened to hold a database cost an `initdb` and a start (seconds)
//! each time. A process cannot run code when it ends, so a watchdog child (`sh`) waits
//! for the end of its stdin, a pipe only this process holds, which closes however the
//! process ends (even killed), then stops the cluster and removes its directory.
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
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// A running cluster, for the rest of the process (see the module doc for who stops it).
pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    /// The watchdog that stops the cluster when this process ends; never waited for.
    _watchdog: Option<Child>,
}

/// An empty database of its own on the shared cluster, dropped (with any connection
/// still open to it) when this is: 200 databases left behind would hold a gigabyte.
pub struct Database {
    /// `postgres://postgres@127.0.0.1:PORT/NAME` (trust authentication, loopback only).
    pub url: String,
    name: String,
    cluster: &'static Cluster,
}

/// The cluster the databases of this process share, started by the first [`database`].
static SHARED: OnceLock<Cluster> = OnceLock::new();
/// Held while the cluster starts, so that two tests asking at once start one cluster
/// (and a failed start is retried, and reported, by the next test).
static STARTING: Mutex<()> = Mutex::new(());
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
    if skipped(test) {
        return None;
    }
    let cluster = match SHARED.get() {
        Some(c) => c,
        None => {
            let _starting = STARTING.lock().unwrap_or_else(|p| p.into_inner());
            match SHARED.get() {
                Some(c) => c,
                None => {
                    let _ = SHARED.set(Cluster::start(None));
                    SHARED.get().expect("just set")
                }
            }
        }
    };
    let name = cluster.create_database();
    Some(Database {
        url: cluster.url(&name),
        name,
        cluster,
    })
}

impl Database {
    /// Backs this database up with `pg_dump -Fc` (consistent while servers write) and
    /// restores it with `pg_restore` into a new database on the same cluster: what an
    /// operator does with PostgreSQL's own tools. Returns the dump's copy.
    pub fn dump(&self) -> Dump {
        let cluster = self.cluster;
        let file = cluster.dir.path().join(format!(
            "dump-{}.pgdump",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file_arg = file.to_string_lossy().into_owned();
        cluster.run("pg_dump", &["-Fc", "-f", &file_arg, "-d", &self.url]);
        Dump { file }
    }

    /// A new database on the same cluster holding what `dump` held (`pg_restore`).
    pub fn restore(&self, dump: &Dump) -> Database {
        let cluster = self.cluster;
        let name = cluster.create_database();
        let url = cluster.url(&name);
        let file = dump.file.to_string_lossy().into_owned();
        cluster.run("pg_restore", &["--no-owner", "-d", &url, &file]);
        Database { url, name, cluster }
    }
}

/// A `pg_dump -Fc` file in the cluster's directory (removed with it).
pub struct Dump {
    file: PathBuf,
}

/// Whether `INTAKE_TEST_POSTGRES=skip` skips `test` (after a loud notice).
fn skipped(test: &str) -> bool {
    if std::env::var("INTAKE_TEST_POSTGRES").as_deref() == Ok("skip") {
        // Straight to stderr: `eprintln!` would be captured and shown only on failure.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** NOT RUN: {test} (PostgreSQL), because INTAKE_TEST_POSTGRES=skip ***"
        );
        return true;
    }
    false
}

/// A new empty database on a cluster of its own that speaks TLS only on TCP (a plain
/// connection is refused by its `pg_hba.conf`), with the certificate chain `cert` and
/// its private key `key` (PEM). `None` as [`database`] says.
pub fn tls_database(test: &str, cert: &Path, key: &Path) -> Option<Database> {
    if skipped(test) {
        return None;
    }
    // A cluster of its own for the rest of the process, stopped by its watchdog like
    // the shared one.
    let cluster: &'static Cluster = Box::leak(Box::new(Cluster::start(Some((cert, key)))));
    let name = cluster.create_database();
    Some(Database {
        url: cluster.url(&name),
        name,
        cluster,
    })
}

impl Drop for Database {
    fn drop(&mut self) {
        // `--force` ends the connections a pool may still hold; a failure only leaves
        // the database to the cluster's removal at the end of the process.
        let port = self.cluster.port.to_string();
        let _ = self.cluster.try_run(
            "dropdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "--force",
                "--if-exists",
                &self.name,
            ],
        );
    }
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
    /// A new empty database on this cluster; returns its name.
    fn create_database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                &name,
            ],
        );
        name
    }

    /// A new cluster; with `tls` (certificate chain, key) it speaks TLS only on TCP.
    fn start(tls: Option<(&Path, &Path)>) -> Cluster {
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
            _watchdog: None,
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
        let mut tls_options = String::new();
        if let Some((cert, key)) = tls {
            tls_options = cluster.speak_tls_only(cert, key);
        }
        // A port that was free a moment ago can be taken meanwhile: try a few.
        for _ in 0..5 {
            cluster.port = free_port();
            let options = format!(
                "{tls_options} -p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c max_connections=300",
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
                cluster._watchdog = Some(cluster.watchdog());
                return cluster;
            }
        }
        let log =
            std::fs::read_to_string(cluster.dir.path().join("server.log")).unwrap_or_default();
        panic!("the throwaway PostgreSQL cluster did not start:\n{log}");
    }

    /// Installs `cert` and `key` in the cluster's directory and a `pg_hba.conf` that
    /// refuses plain TCP; returns the server options that turn TLS on.
    fn speak_tls_only(&self, cert: &Path, key: &Path) -> String {
        let dir = self.dir.path();
        let (cert_to, key_to) = (dir.join("server.crt"), dir.join("server.key"));
        std::fs::copy(cert, &cert_to).expect("copy the certificate");
        std::fs::copy(key, &key_to).expect("copy the key");
        // PostgreSQL refuses a key others may read.
        std::fs::set_permissions(&key_to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("key mode");
        // The first matching line wins: TCP with TLS is trusted, TCP without refused.
        std::fs::write(
            Path::new(&self.data()).join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("pg_hba.conf");
        if self.as_postgres {
            for f in [&cert_to, &key_to] {
                let status = Command::new("chown")
                    .arg("postgres:")
                    .arg(f)
                    .status()
                    .expect("chown");
                assert!(status.success(), "chown of {}", f.display());
            }
        }
        format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            cert_to.display(),
            key_to.display()
        )
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

impl Cluster {
    /// The child that stops the cluster (immediately: it is thrown away) and removes
    /// its directory once this process's end closes the child's stdin. It ignores the
    /// terminal's interrupt, which reaches the whole process group on Ctrl-C, so that
    /// an interrupted run still cleans up.
    fn watchdog(&self) -> Child {
        let stop = self.command_line("pg_ctl");
        let script = r#"trap '' INT TERM HUP
cat >/dev/null
"$@" -D "$DATA" -m immediate -w stop >/dev/null 2>&1
rm -rf "$DIR""#;
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("watchdog")
            .args(&stop)
            .env("DATA", self.data())
            .env("DIR", self.dir.path())
            .current_dir(Path::new("/"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the cluster's watchdog (sh)")
    }

    /// `program` of the cluster as a command line (as [`Cluster::command`] runs it).
    fn command_line(&self, program: &str) -> Vec<std::ffi::OsString> {
        let mut line: Vec<std::ffi::OsString> = Vec::new();
        if self.as_postgres {
            line.extend(["runuser", "-u", "postgres", "--"].map(Into::into));
        }
        line.push(self.bin.join(program).into_os_string());
        line
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
