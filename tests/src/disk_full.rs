//! Disk-full support (issue 13): a small size-limited file system ([`SmallFs`], a
//! `tmpfs` mounted with `size=` in a private temporary directory, unmounted in `Drop`
//! even when a test fails) that a filler file fills to leave only a little room; the
//! server goes on it with `TestServer::start_sqlite_in`, a device with [`device`].
//!
//! Mounting needs root (CAP_SYS_ADMIN). Without it a test fails and says so, unless
//! `INTAKE_TEST_NO_MOUNT=1` is set: then [`SmallFs::mount`] answers `None` and the test
//! prints that it did not run.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use intake_server::storage::Role;

use crate::TestServer;

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

/// A device of a new user `name` of `server`: the real client with its store in `dir`
/// (on a [`SmallFs`], where [`crate::TestDevice`] cannot put it).
pub fn device(
    server: &TestServer,
    dir: &Path,
    name: &str,
    role: Role,
    team: Option<&str>,
) -> intake_client::Store {
    let code = server.add_user(name, role, team);
    let mut store =
        intake_client::Store::open(dir, &intake_client::Key::from_bytes([7; 32])).unwrap();
    intake_client::enroll(&mut store, &server.url, &code, name, None).expect("enrol");
    store
}
