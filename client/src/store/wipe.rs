//! Destroying a store: the field app's quick wipe and the wipe a server orders for a
//! lost or seized device (issue 12) share this one implementation. Every file in the
//! store directory is overwritten where that is cheap and removed: the salt first and
//! synced to disk — without it the passphrase no longer yields the key, so even blocks
//! the file system keeps are unreadable — then the database, its `-wal`/`-shm`
//! journals and anything else the client kept there (downloads in pieces live inside
//! the database; the CLI's editor files live in a private directory of their own and
//! are removed when the editor closes).
//!
//! A host app that keeps the key in the platform keystore must drop that key too:
//! it learns of a wipe from `SyncError::Permanent { kind: Permanent::Wiped, .. }`.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use rusqlite::Connection;

use super::{SALT_FILE, Store, StoreError};

/// Files larger than this are overwritten only up to it (SQLCipher encrypts every
/// page, so the point is speed, not secrecy of what is left).
const OVERWRITE_AT_MOST: u64 = 64 * 1024 * 1024;

/// Overwrites and removes every file in `dir` (the salt first), then `dir` itself if
/// it is then empty. A missing directory is already wiped.
pub fn destroy_dir(dir: &Path) -> std::io::Result<()> {
    let mut files: Vec<_> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    files.sort_by_key(|p| p.file_name() != Some(std::ffi::OsStr::new(SALT_FILE)));
    // A file already gone is wiped: two handles of one store (the field app's sync
    // and its background sync) may both be told to wipe at once.
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    };
    for path in &files {
        gone(overwrite(path))?;
        gone(fs::remove_file(path))?;
    }
    // Not an error if something else lives there (a user's own file in --home).
    let _ = fs::remove_dir(dir);
    Ok(())
}

fn overwrite(path: &Path) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    let len = f.metadata()?.len().min(OVERWRITE_AT_MOST);
    let zeros = vec![0u8; 64 * 1024];
    f.seek(SeekFrom::Start(0))?;
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_data()
}

impl Store {
    /// Destroys this store on the server's order: closes its database connection (so
    /// nothing writes the files again), then destroys every file of its directory.
    /// From then on every record operation answers [`StoreError::Wiped`]; the handle
    /// holds only an empty database in memory.
    pub fn destroy(&mut self) -> Result<(), StoreError> {
        self.wiped = true;
        let closed = std::mem::replace(&mut self.conn, Connection::open_in_memory()?);
        // A close that fails leaves the connection to be dropped; the files go anyway.
        let _ = closed.close();
        destroy_dir(&self.dir)?;
        Ok(())
    }

    /// Whether [`Store::destroy`] ran on this handle.
    pub fn is_wiped(&self) -> bool {
        self.wiped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_removed_and_a_missing_dir_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        fs::create_dir(&store).unwrap();
        for name in ["intake.db", "intake.db-wal", "intake.db-shm", SALT_FILE] {
            fs::write(store.join(name), b"Drita Krasniqi").unwrap();
        }
        destroy_dir(&store).unwrap();
        assert!(!store.exists());
        destroy_dir(&store).unwrap();
    }
}
