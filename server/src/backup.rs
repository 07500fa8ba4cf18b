//! `intake-server backup` and `restore`: an online, consistent copy of the encrypted
//! database (encrypted with the same key, written to a new file of mode 0600), and
//! putting such a copy back in place of the database while no server runs, with a new
//! store id so that devices push again what the backup lacks.

use std::path::{Path, PathBuf};

use intake_shared::RecordId;

use crate::config::Settings;
use crate::startup::{DB_FILE, ServeLock};
use crate::storage::Storage;
use crate::storage::key::DbKey;
use crate::storage::schema;
use crate::storage::sqlite::{SqliteStorage, cipher};

/// What a backup wrote.
#[derive(Debug, serde::Serialize)]
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
}

/// Copies the live database into `to`, a new file (an existing one is never
/// overwritten), encrypted with the same key. Safe while the server runs: the copy is
/// made inside one read transaction, so it is one moment of the database, and syncs go
/// on meanwhile (WAL).
pub fn backup(settings: &Settings, key: &DbKey, to: &Path) -> anyhow::Result<BackupReport> {
    let db = settings.data_dir.join(DB_FILE);
    if !db.exists() {
        anyhow::bail!(
            "{} holds no store ({} is missing): check --data",
            settings.data_dir.display(),
            db.display()
        );
    }
    // Read-write: an attached database opens with the main one's flags, and the
    // export writes into it. The live database is only read.
    let conn = cipher::connect(&db, key, false)?;
    // Created here, mode 0600, refusing an existing file; removed again on failure.
    cipher::new_private_file(to).map_err(|e| anyhow::anyhow!("backup file: {e}"))?;
    if let Err(e) = cipher::export(&conn, to, key) {
        let _ = std::fs::remove_file(to);
        return Err(anyhow::anyhow!("backup failed, nothing kept: {e}"));
    }
    cipher::sync_dir(to)?;
    let bytes = std::fs::metadata(to)?.len();
    Ok(BackupReport {
        file: to.to_path_buf(),
        bytes,
    })
}

/// What a restore did.
#[derive(Debug, serde::Serialize)]
pub struct RestoreReport {
    /// Where the database that was replaced now is (`None` when there was none).
    pub replaced: Option<PathBuf>,
    /// The restored store's new id.
    pub store_id: String,
    /// What the replaced database had decided since the backup and was done again in
    /// the restored one: erasures, revocations, disabled users (`None`: the replaced
    /// database could not be read; do them again by hand).
    pub reapplied: Option<Reapplied>,
}

/// Checks a backup: it opens with `key`, passes `PRAGMA integrity_check`, and its
/// schema is not newer than this server's.
pub fn check_backup(from: &Path, key: &DbKey) -> anyhow::Result<()> {
    let conn = cipher::connect(from, key, true)
        .map_err(|e| anyhow::anyhow!("the backup {} cannot be used: {e}", from.display()))?;
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        anyhow::bail!(
            "the backup {} is damaged (integrity check: {verdict}); nothing was changed",
            from.display()
        );
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > schema::CURRENT {
        anyhow::bail!(
            "the backup has schema {version}, newer than this server's {}: restore it with a newer server",
            schema::CURRENT
        );
    }
    Ok(())
}

/// Puts the backup `from` in place of the data directory's database. Refused while a
/// server runs on the directory (it holds the lock), for a backup that does not open
/// with the key or fails its integrity check, and on a missing data directory. The
/// database replaced is kept beside it as `intake-server.db.replaced-<time>` (with its
/// `-wal`/`-shm`, if any). The restored store gets a new store id.
pub fn restore(settings: &Settings, key: &DbKey, from: &Path) -> anyhow::Result<RestoreReport> {
    let dir = &settings.data_dir;
    if !dir.is_dir() {
        anyhow::bail!(
            "the data directory {} does not exist: check --data (on a new machine, create it \
             with mode 0700 and put the key file in it first)",
            dir.display()
        );
    }
    // Held to the end, so no server starts in the middle either.
    let _lock = ServeLock::acquire(dir)?;
    check_backup(from, key)?;
    let db = dir.join(DB_FILE);
    let incoming = cipher::sibling(&db, ".restoring");
    for stale in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(cipher::sibling(&incoming, stale));
    }
    cipher::new_private_file(&incoming)?;
    std::fs::copy(from, &incoming)?;
    // `copy` gives the copy the backup's permissions: the database is the server's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&incoming, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::File::open(&incoming)?.sync_all()?;
    // Opened as the server will open it (migrations included), and given its new id;
    // closed before the swap, which folds its WAL back in.
    let store_id = {
        let storage = SqliteStorage::open(&incoming, key)?;
        storage.renew_store_id()?
    };
    // What the database being replaced decided since the backup and a restore must not
    // undo: erasures, revoked devices (a lost phone must not come back to life) and
    // disabled users. Read before the swap. A damaged database may not say; the restore
    // goes on and the report tells.
    let carried = if db.exists() {
        match SqliteStorage::open(&db, key).and_then(|old| Carried::read(&old)) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the database replaced");
                None
            }
        }
    } else {
        Some(Carried::default())
    };
    let replaced = if db.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let aside = cipher::sibling(&db, &format!(".replaced-{stamp}"));
        // The WAL and shared memory belong to the old file: next to the restored one
        // SQLite would apply them to it.
        for suffix in ["-wal", "-shm"] {
            let from = cipher::sibling(&db, suffix);
            if from.exists() {
                std::fs::rename(&from, cipher::sibling(&aside, suffix))?;
            }
        }
        std::fs::rename(&db, &aside)?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&incoming, &db)?;
    cipher::sync_dir(&db)?;
    let storage = SqliteStorage::open(&db, key)?;
    let reapplied = match &carried {
        Some(c) => Some(after_restore(&storage, c)?),
        None => None,
    };
    Ok(RestoreReport {
        replaced,
        store_id,
        reapplied,
    })
}

/// What the replaced database decided that the restored one must keep.
#[derive(Debug, Default)]
pub struct Carried {
    /// Records erased.
    pub erased: Vec<RecordId>,
    /// Devices revoked: (id, actor prefix, whether a wipe was ordered).
    pub revoked: Vec<(i64, String, bool)>,
    /// Users disabled.
    pub disabled: Vec<String>,
}

impl Carried {
    pub fn read(old: &dyn Storage) -> crate::storage::Result<Carried> {
        Ok(Carried {
            erased: old.erased_ids()?,
            revoked: old
                .devices()?
                .into_iter()
                .filter(|d| d.revoked)
                .map(|d| (d.id, d.actor, d.wipe.ordered_at.is_some()))
                .collect(),
            disabled: old
                .users()?
                .into_iter()
                .filter(|u| u.disabled)
                .map(|u| u.name)
                .collect(),
        })
    }
}

/// What [`after_restore`] did again in the restored store.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Reapplied {
    pub erasures: usize,
    pub revocations: usize,
    pub disabled_users: usize,
}

/// Runs on the restored store, after it is in place and before any server serves it:
/// erasures made after the backup was taken (which the backup still holds) are made
/// again, so a restore never brings an erased client's record back; devices revoked
/// since are revoked again (with their wipe order), and users disabled since are
/// disabled again, so a lost phone or a departed user does not come back to life.
/// A device is the same one when its id and actor match (ids are never reused).
pub fn after_restore(storage: &dyn Storage, carried: &Carried) -> anyhow::Result<Reapplied> {
    let now = chrono::Utc::now();
    let mut done = Reapplied {
        erasures: crate::erase::reapply(storage, &carried.erased, now)?,
        ..Reapplied::default()
    };
    let live: std::collections::HashMap<i64, String> = storage
        .devices()?
        .into_iter()
        .filter(|d| !d.revoked)
        .map(|d| (d.id, d.actor))
        .collect();
    for (id, actor, wipe) in &carried.revoked {
        if live.get(id) != Some(actor) {
            continue;
        }
        crate::admin::revoke_device(storage, *id, *wipe, now)?;
        done.revocations += 1;
    }
    for name in &carried.disabled {
        let enabled = storage.user(name)?.is_some_and(|u| !u.disabled);
        if enabled && storage.set_user_disabled(name, true)? {
            done.disabled_users += 1;
        }
    }
    Ok(done)
}
