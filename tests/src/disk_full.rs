//! Disk-full support (issue 13): a small size-limited file system ([`SmallFs`], a
//! `tmpfs` mounted with `size=` in a private temporary directory, unmounted in `Drop`
//! even when a test fails) that a filler file fills to leave only a little room, and
//! [`FullServer`], the real server with its data directory on such a file system
//! (`TestServer` always makes its own directory on the ordinary disk).
//!
//! Mounting needs root (CAP_SYS_ADMIN). Without it a test fails and says so, unless
//! `INTAKE_TEST_NO_MOUNT=1` is set: then [`SmallFs::mount`] answers `None` and the test
//! prints that it did not run.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use intake_server::storage::sqlite::SqliteStorage;
use intake_server::storage::{Role, Storage};
use intake_server::{Application, Settings, admin, init_store};

/// The environment variable that lets the disk-full tests pass without running where
/// mounting is not permitted.
pub const NO_MOUNT_ENV: &str = "INTAKE_TEST_NO_MOUNT";

/// A `tmpfs` of a fixed size, mounted on a private temporary directory.
pub struct SmallFs {
    dir: tempfile::TempDir,
    filler: PathBuf,
}

impl SmallFs {
    /// Mounts a `tmpfs` of `bytes`. Panics (saying why) when mounting is not
    /// permitted, unless [`NO_MOUNT_ENV`] is set, when it answers `None`.
    pub fn mount(bytes: u64) -> Option<SmallFs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("tmpfs")
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Some(format!("cannot run mount: {e}")),
        };
        if let Some(why) = why {
            if std::env::var_os(NO_MOUNT_ENV).is_some() {
                eprintln!("disk-full test NOT RUN ({NO_MOUNT_ENV} is set): mount failed: {why}");
                return None;
            }
            panic!(
                "the disk-full tests mount a small tmpfs and need root (CAP_SYS_ADMIN); \
                 `mount -t tmpfs` failed: {why}. Run them as root, or set {NO_MOUNT_ENV}=1 \
                 to skip them knowingly"
            );
        }
        let filler = dir.path().join("filler");
        Some(SmallFs { dir, filler })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system with a filler file until only about `room` bytes are
    /// left (written until `ENOSPC`, then cut back by `room`).
    pub fn fill_leaving(&self, room: u64) {
        let mut f = File::options()
            .create(true)
            .append(true)
            .open(&self.filler)
            .expect("filler");
        let chunk = vec![0xa5u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::StorageFull => break,
                Err(e) => panic!("filler: {e}"),
            }
        }
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(room)).expect("cut the filler");
    }

    /// Removes the filler: the space is free again.
    pub fn free(&self) {
        std::fs::remove_file(&self.filler).expect("remove the filler");
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Lazily if something still holds a file there: the mount must not outlive
        // the test, and the directory is then removed by `TempDir`.
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// The real server over a data directory the test chose (on a [`SmallFs`]).
pub struct FullServer {
    pub url: String,
    pub storage: Arc<SqliteStorage>,
    pub data_dir: PathBuf,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    pub http: reqwest::blocking::Client,
}

impl FullServer {
    pub fn start(data_dir: &Path) -> FullServer {
        if std::env::var_os("TEST_LOG").is_some() {
            intake_server::telemetry::init("debug", false);
        }
        let settings = Settings {
            data_dir: data_dir.to_path_buf(),
            workers: 2,
            ..Settings::default()
        };
        let (storage, _first) = init_store(&settings, None).expect("create the store");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let dyn_storage: Arc<dyn Storage> = storage.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app =
                    Application::build(settings, dyn_storage, listener).expect("build the server");
                tx.send(app.handle()).unwrap();
                app.run().await.expect("server runs");
            })
        });
        let handle = rx.recv().expect("server started");
        intake_client::sync::ensure_crypto_provider();
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        FullServer {
            url,
            storage,
            data_dir: data_dir.to_path_buf(),
            handle,
            thread: Some(thread),
            http,
        }
    }

    /// Adds a user directly in the store; returns their enrolment code.
    pub fn add_user(&self, name: &str, role: Role, team: Option<&str>) -> String {
        admin::add_user(self.storage.as_ref(), name, role, team, 60)
            .expect("add user")
            .enrolment_code
    }

    /// A device of a new user `name`: the real client with its store in `dir`.
    pub fn device(
        &self,
        dir: &Path,
        name: &str,
        role: Role,
        team: Option<&str>,
    ) -> intake_client::Store {
        let code = self.add_user(name, role, team);
        let mut store =
            intake_client::Store::open(dir, &intake_client::Key::from_bytes([7; 32])).unwrap();
        intake_client::enroll(&mut store, &self.url, &code, name, None).expect("enrol");
        store
    }

    /// The server's database key (from the key file `init_store` wrote).
    pub fn key(&self) -> intake_server::storage::key::DbKey {
        intake_server::load_key(
            &Settings {
                data_dir: self.data_dir.clone(),
                ..Settings::default()
            },
            None,
        )
        .expect("the server's key")
    }
}

impl Drop for FullServer {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::System::new().block_on(handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        crate::wait_released(&self.storage);
    }
}
