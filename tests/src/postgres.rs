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
    if skipped(test) {
        return None;
    }
    let cluster = {
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        match shared.upgrade() {
            Some(c) => c,
            None => {
                let c = Arc::new(Cluster::start(None));
                *shared = Arc::downgrade(&c);
                c
            }
        }
    };
    let name = cluster.create_database();
    Some(Database {
        url: cluster.url(&name),
        _cluster: cluster,
    })
}

impl Database {
    /// Backs this database up with `pg_dump -Fc` (consistent while servers write) and
    /// restores it with `pg_restore` into a new database on the same cluster: what an
    /// operator does with PostgreSQL's own tools. Returns the dump's copy.
    pub fn dump(&self) -> Dump {
        let cluster = &self._cluster;
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
        let cluster = &self._cluster;
        let name = cluster.create_database();
        let url = cluster.url(&name);
        let file = dump.file.to_string_lossy().into_owned();
        cluster.run("pg_restore", &["--no-owner", "-d", &url, &file]);
        Database {
            url,
            _cluster: cluster.clone(),
        }
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
    let cluster = Arc::new(Cluster::start(Some((cert, key))));
    let name = cluster.create_database();
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
