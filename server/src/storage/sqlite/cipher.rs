//! SQLCipher for the server's database: opening a connection with the key (and
//! refusing a build where SQLCipher is not linked, or a wrong key, before anything is
//! written), encrypting a database from before encryption in place, and exporting a
//! consistent encrypted copy of a live database (`intake-server backup`).

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::super::key::DbKey;
use super::super::{Result, StorageError};

/// The first 16 bytes of every plaintext SQLite database. An encrypted one starts with
/// random bytes (its salt).
const PLAINTEXT_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether `path` is a plaintext SQLite database (one from before encryption).
pub(crate) fn is_plaintext(path: &Path) -> Result<bool> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io(path, e)),
    };
    let mut head = [0u8; 16];
    match file.read_exact(&mut head) {
        Ok(()) => Ok(&head == PLAINTEXT_HEADER),
        // Shorter than a header: an empty file, which SQLite treats as a new database.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(io(path, e)),
    }
}

fn io(path: &Path, e: std::io::Error) -> StorageError {
    StorageError::io(path, e)
}

/// Keys `conn`, checks that SQLCipher is linked and that the key opens the database,
/// and turns on `secure_delete` (deleted rows are overwritten, not left in free
/// pages). Nothing is written before the key is known to be right.
pub(crate) fn unlock(conn: &Connection, path: &Path, key: &DbKey) -> Result<()> {
    let version: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .ok();
    if version.as_deref().is_none_or(str::is_empty) {
        // A build against plain SQLite would write records in clear.
        return Err(StorageError::Backend(
            "SQLCipher is not linked into this server: refusing to store records unencrypted"
                .into(),
        ));
    }
    conn.execute_batch(&format!("PRAGMA key = {};", key.sql_literal().as_str()))?;
    // The key is checked by the first read of the database.
    if let Err(e) = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        return Err(match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => StorageError::Backend(format!(
                "{} cannot be opened with this key (a wrong key, or not an Intake server database); nothing was changed",
                path.display()
            )),
            _ => e.into(),
        });
    }
    conn.execute_batch("PRAGMA secure_delete = ON;")?;
    Ok(())
}

/// Opens `path` (which must exist) with `key`, read-only or not, with no migration:
/// for backups, restores and tests that look at the database directly.
pub fn connect(path: &Path, key: &DbKey, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if !path.exists() {
        return Err(StorageError::Backend(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(path, flags)?;
    unlock(&conn, path, key)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Copies everything `conn`'s main database holds into `to`, a new empty file, as a
/// database encrypted with `key`, inside one read transaction: the copy is one
/// consistent moment of the database even while syncs write (WAL readers are not
/// blocked and do not block). `user_version` (the schema version) is copied too, which
/// `sqlcipher_export` leaves out.
pub(crate) fn export(conn: &Connection, to: &Path, key: &DbKey) -> Result<()> {
    let to_text = to
        .to_str()
        .ok_or_else(|| StorageError::Backend(format!("{}: not a UTF-8 path", to.display())))?;
    conn.execute(
        &format!(
            "ATTACH DATABASE ?1 AS export KEY {}",
            key.sql_literal().as_str()
        ),
        [to_text],
    )?;
    let exported = (|| -> Result<()> {
        conn.execute_batch("BEGIN")?;
        let done = (|| -> Result<()> {
            // The first read fixes the snapshot the whole export copies.
            let version: i64 = conn.query_row("PRAGMA main.user_version", [], |r| r.get(0))?;
            conn.query_row("SELECT sqlcipher_export('export')", [], |_| Ok(()))?;
            conn.execute_batch(&format!("PRAGMA export.user_version = {version};"))?;
            Ok(())
        })();
        match done {
            Ok(()) => Ok(conn.execute_batch("COMMIT")?),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    })();
    let detached = conn.execute_batch("DETACH DATABASE export");
    exported?;
    detached?;
    let file = std::fs::File::open(to).map_err(|e| io(to, e))?;
    file.sync_all().map_err(|e| io(to, e))?;
    Ok(())
}

/// Encrypts the plaintext database at `path` in place with `key`: exported into a new
/// encrypted file beside it, made durable, then renamed over the original in one step,
/// so a crash leaves either the old database or the new one, never half of each. No
/// plaintext copy is left in the directory (the old file's blocks on the disk are
/// another matter: see `docs/OPERATIONS.md`).
pub(crate) fn encrypt_in_place(path: &Path, key: &DbKey) -> Result<()> {
    let tmp = sibling(path, ".encrypting");
    // A leftover of an interrupted attempt holds nothing the original does not.
    remove_if_present(&tmp)?;
    {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let version: Option<String> = conn
            .query_row("PRAGMA cipher_version", [], |r| r.get(0))
            .ok();
        if version.as_deref().is_none_or(str::is_empty) {
            return Err(StorageError::Backend(
                "SQLCipher is not linked into this server: cannot encrypt the database".into(),
            ));
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Everything in the WAL goes into the main file first, and the WAL goes away:
        // the renamed file must not meet a plaintext WAL.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")?;
        new_private_file(&tmp)?;
        if let Err(e) = export(&conn, &tmp, key) {
            drop(conn);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    }
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_present(&sibling(path, suffix))?;
    }
    sync_dir(path)?;
    tracing::info!(path = %path.display(), "the server database was encrypted in place");
    Ok(())
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path, e)),
    }
}

/// Creates a new empty file of mode 0600; refuses an existing one.
pub fn new_private_file(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(drop).map_err(|e| io(path, e))
}

/// Makes a rename in `path`'s directory durable.
pub fn sync_dir(path: &Path) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
