//! The embedded SQLite storage: one file, WAL, `synchronous=FULL`, so a push is
//! acknowledged only once it is durable. One connection behind a mutex: SQLite has a
//! single writer anyway, and nothing slow (no decoding of device bytes) ever runs while
//! the mutex is held.
//!
//! The dashboard's tables live in submodules: [`listing`] (the record index, lists,
//! duplicates, links), [`accounts`] (passwords, browser sessions), [`audit`];
//! [`erasure`] removes a record for good. The database is encrypted with SQLCipher
//! ([`cipher`]).

mod accounts;
mod audit;
pub mod cipher;
mod erasure;
mod listing;
mod wipe;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use intake_shared::RecordId;
use intake_shared::protocol::Piece;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, TransactionBehavior, named_params, params,
};

use super::key::DbKey;

use super::*;

pub struct SqliteStorage {
    conn: Mutex<Connection>,
    /// This database's store id, read once at open (only `restore`, with the server
    /// stopped, replaces it).
    store_id: String,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStorage")
    }
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

fn rid(bytes: Vec<u8>) -> rusqlite::Result<RecordId> {
    uuid::Uuid::from_slice(&bytes)
        .map(RecordId::from_uuid)
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
        })
}

fn key(id: RecordId) -> Vec<u8> {
    id.as_uuid().as_bytes().to_vec()
}

/// The SQL condition and parameter of a scope over `records r`.
fn scope_sql(scope: &Scope) -> (&'static str, Option<String>) {
    match scope {
        Scope::Own(user) => (
            "(r.owner = :scope OR r.assigned_to = :scope)",
            Some(user.clone()),
        ),
        Scope::Team(team) => ("r.team = :scope", Some(team.clone())),
        // `:scope` appears in every variant so every query binds the same names.
        Scope::Nothing => ("(:scope IS NULL AND 0)", None),
    }
}

const USER_COLUMNS: &str = "u.id, u.name, u.role, u.team, u.disabled";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    user_row_at(r, 0)
}

/// A user from [`USER_COLUMNS`] starting at column `at`.
fn user_row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<User> {
    let role: String = r.get(at + 2)?;
    Ok(User {
        id: r.get(at)?,
        name: r.get(at + 1)?,
        role: Role::parse(&role).unwrap_or(Role::Paralegal),
        team: r.get(at + 3)?,
        disabled: r.get(at + 4)?,
    })
}

const DEVICE_COLUMNS: &str =
    "d.id, u.name, d.actor, d.label, d.enrolled_at, d.revoked_at IS NOT NULL,
     d.revoked_at, d.wipe_ordered_at, d.wipe_sent_at, d.wiped_at";

fn device_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(at)?,
        user: r.get(at + 1)?,
        actor: hex::encode(r.get::<_, Vec<u8>>(at + 2)?),
        label: r.get(at + 3)?,
        enrolled_at: from_ts(r.get(at + 4)?),
        revoked: r.get(at + 5)?,
        revoked_at: r.get::<_, Option<i64>>(at + 6)?.map(from_ts),
        wipe: WipeState {
            ordered_at: r.get::<_, Option<i64>>(at + 7)?.map(from_ts),
            sent_at: r.get::<_, Option<i64>>(at + 8)?.map(from_ts),
            wiped_at: r.get::<_, Option<i64>>(at + 9)?.map(from_ts),
        },
    })
}

impl SqliteStorage {
    /// Opens the existing database at `path` with `key`; a missing file is refused
    /// (a mistyped path must not start an empty installation). A plaintext database
    /// from before encryption is encrypted in place first.
    pub fn open(path: &Path, key: &DbKey) -> Result<SqliteStorage> {
        if !path.exists() {
            return Err(StorageError::Backend(format!(
                "no server database at {}",
                path.display()
            )));
        }
        if cipher::is_plaintext(path)? {
            cipher::encrypt_in_place(path, key)?;
        }
        SqliteStorage::connect(path, key, OpenFlags::SQLITE_OPEN_READ_WRITE)
    }

    /// Creates a new database at `path`, encrypted with `key`; an existing file is
    /// refused.
    pub fn create(path: &Path, key: &DbKey) -> Result<SqliteStorage> {
        cipher::new_private_file(path)?;
        SqliteStorage::connect(path, key, OpenFlags::SQLITE_OPEN_READ_WRITE)
    }

    fn connect(path: &Path, key: &DbKey, flags: OpenFlags) -> Result<SqliteStorage> {
        let mut conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        cipher::unlock(&conn, path, key)?;
        // A 32 MiB page cache (SQLite's default is 2 MiB): records are keyed by random
        // ids, so a large push touches pages all over the tables and their indexes, and
        // with the default cache a 5,000-record push spent a sixth of its time
        // re-reading them.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -32768;",
        )?;
        // What is deleted is overwritten, not just unlinked: an erased record's content
        // must not stay readable in free pages of the file. Deletes are rare here
        // (erasures, upload pieces, sessions), so the extra writes cost little.
        conn.execute_batch("PRAGMA secure_delete = ON;")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > schema::CURRENT {
            return Err(StorageError::Backend(schema::too_new(version)));
        }
        schema::migrate(&mut conn)?;
        let store_id = conn.query_row("SELECT store_id FROM store_identity", [], |r| r.get(0))?;
        Ok(SqliteStorage {
            conn: Mutex::new(conn),
            store_id,
        })
    }

    /// Gives the database a new random store id (a restored backup must not pass for
    /// the store the devices last spoke to). Takes effect at the next open.
    pub fn renew_store_id(&self) -> Result<String> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|e| StorageError::Backend(format!("no randomness for a store id: {e}")))?;
        let id = hex::encode(bytes);
        self.conn()
            .execute("UPDATE store_identity SET store_id = ?1", [&id])?;
        Ok(id)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions
        // roll back on drop), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SyncStorage for SqliteStorage {
    fn store_id(&self) -> &str {
        &self.store_id
    }

    fn shared_attempts(&self) -> Option<std::sync::Arc<dyn SharedAttempts>> {
        // One server per SQLite store: its limiters count in memory.
        None
    }

    fn create_user_audited(
        &self,
        name: &str,
        role: Role,
        team: Option<&str>,
        audit: Option<&Audit>,
    ) -> Result<User> {
        let mut conn = self.conn();
        let conn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = conn.execute(
            "INSERT INTO users (name, role, team, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING",
            params![name, role.as_str(), team, ts(Utc::now())],
        )?;
        if n == 0 {
            return Err(StorageError::Exists(format!("user {name}")));
        }
        let user = User {
            id: conn.last_insert_rowid(),
            name: name.into(),
            role,
            team: team.map(Into::into),
            disabled: false,
        };
        audit::with(&conn, audit)?;
        conn.commit()?;
        Ok(user)
    }

    fn user(&self, name: &str) -> Result<Option<User>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = ?1"),
                [name],
                user_row,
            )
            .optional()?)
    }

    fn users(&self) -> Result<Vec<User>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users u ORDER BY u.name"
        ))?;
        let users = stmt
            .query_map([], user_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(users)
    }

    fn set_user_disabled_audited(
        &self,
        name: &str,
        disabled: bool,
        audit: Option<&Audit>,
    ) -> Result<bool> {
        accounts::set_user_disabled(&mut self.conn(), name, disabled, audit)
    }

    fn add_enrolment_code_audited(
        &self,
        user: &str,
        code_hash: [u8; 32],
        expires: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "INSERT INTO enrolment_codes (code_hash, user_id, expires_at)
             SELECT ?1, id, ?3 FROM users WHERE name = ?2",
            params![code_hash.to_vec(), user, ts(expires)],
        )?;
        if n == 0 {
            return Err(StorageError::Backend(format!("no user {user}")));
        }
        audit::with(&tx, audit)?;
        tx.commit()?;
        Ok(())
    }

    fn enrol(
        &self,
        code_hash: [u8; 32],
        now: DateTime<Utc>,
        device: NewDevice,
    ) -> Result<Option<(User, Device)>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let user = tx
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS} FROM enrolment_codes c JOIN users u ON u.id = c.user_id
                     WHERE c.code_hash = ?1 AND c.used_at IS NULL AND c.expires_at > ?2 AND NOT u.disabled"
                ),
                params![code_hash.to_vec(), ts(now)],
                user_row,
            )
            .optional()?;
        let Some(user) = user else { return Ok(None) };
        // Checked before the code is spent, so a refused device's code stays usable
        // once the phone's store has been reset (a new store has a new actor).
        let other: Option<i64> = tx
            .query_row(
                "SELECT user_id FROM devices WHERE actor = ?1 AND user_id != ?2 LIMIT 1",
                params![device.actor.to_vec(), user.id],
                |r| r.get(0),
            )
            .optional()?;
        if other.is_some() {
            return Err(StorageError::ActorTaken);
        }
        tx.execute(
            "UPDATE enrolment_codes SET used_at = ?2 WHERE code_hash = ?1",
            params![code_hash.to_vec(), ts(now)],
        )?;
        let inserted = tx.execute(
            "INSERT INTO devices (user_id, token_hash, actor, label, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user.id, device.token_hash.to_vec(), device.actor.to_vec(), device.label, ts(now)],
        );
        match inserted {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(StorageError::Exists("a device with this actor id".into()));
            }
            Err(e) => return Err(e.into()),
        }
        let id = tx.last_insert_rowid();
        let dev = tx.query_row(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?1"),
            [id],
            |r| device_row(r, 0),
        )?;
        tx.commit()?;
        Ok(Some((user, dev)))
    }

    fn principal(&self, token_hash: [u8; 32]) -> Result<Option<(User, Device)>> {
        accounts::principal(&self.conn(), token_hash, Utc::now())
    }

    fn devices(&self) -> Result<Vec<Device>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN users u ON u.id = d.user_id ORDER BY d.id"
        ))?;
        let devices = stmt
            .query_map([], |r| device_row(r, 0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(devices)
    }

    fn revoke_device_audited(&self, id: i64, audit: Option<&Audit>) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = tx.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
            params![id, ts(Utc::now())],
        )? > 0;
        if found {
            audit::with(&tx, audit)?;
        }
        tx.commit()?;
        Ok(found)
    }

    fn rotate_token(
        &self,
        id: i64,
        used_hash: [u8; 32],
        new_hash: [u8; 32],
        grace_until: DateTime<Utc>,
    ) -> Result<bool> {
        accounts::rotate_token(&self.conn(), id, used_hash, new_hash, grace_until)
    }

    fn record(&self, id: RecordId) -> Result<Option<StoredRecord>> {
        let conn = self.conn();
        // Cached: a push reads every record it touches, thousands in a bulk upload.
        let mut stmt = conn.prepare_cached(
            "SELECT owner, team, assigned_to, doc, heads FROM records WHERE id = ?1",
        )?;
        Ok(stmt
            .query_row([key(id)], |r| {
                Ok(StoredRecord {
                    meta: RecordMeta {
                        id,
                        owner: r.get(0)?,
                        team: r.get(1)?,
                        assigned_to: r.get(2)?,
                    },
                    doc: r.get(3)?,
                    heads: r.get(4)?,
                })
            })
            .optional()?)
    }

    fn late_grant(&self, device: i64, id: RecordId) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM late_grants WHERE device_id = ?1 AND record_id = ?2 AND closed = 0",
                params![device, key(id)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn announce_removals(&self, device: i64, records: &[RecordId], cursor: u64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for id in records {
            // The first page that told the device counts; a page repeated after a cut
            // announces nothing new.
            tx.execute(
                "UPDATE late_grants SET announced = ?3
                 WHERE device_id = ?1 AND record_id = ?2 AND announced IS NULL",
                params![device, key(*id), cursor as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn close_late_grants(&self, device: i64, cursor: u64) -> Result<()> {
        if cursor & DOCS_PHASE != 0 {
            // A position in a first pull: no page with removals has been committed.
            return Ok(());
        }
        let conn = self.conn();
        // Read first: nearly every request has nothing to close, and a write
        // transaction would cost it a durable commit.
        let open: Option<i64> = conn
            .prepare_cached(
                "SELECT 1 FROM late_grants
                 WHERE device_id = ?1 AND closed = 0 AND announced IS NOT NULL AND announced <= ?2 LIMIT 1",
            )?
            .query_row(params![device, cursor as i64], |r| r.get(0))
            .optional()?;
        if open.is_some() {
            conn.execute(
                "UPDATE late_grants SET closed = 1
                 WHERE device_id = ?1 AND closed = 0 AND announced IS NOT NULL AND announced <= ?2",
                params![device, cursor as i64],
            )?;
        }
        Ok(())
    }

    fn put_piece(&self, device: i64, piece: &Piece) -> Result<u32> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held: Option<(Vec<u8>, Vec<u8>, i64, i64)> = tx
            .query_row(
                "SELECT record_id, digest, total, have FROM uploads WHERE device_id = ?1",
                [device],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let offset = u64::from(piece.offset);
        let end = offset + piece.bytes.len() as u64;
        let same = held.as_ref().is_some_and(|(record, digest, total, _)| {
            record[..] == piece.record[..]
                && digest[..] == piece.digest[..]
                && *total == i64::from(piece.total)
        });
        let have = if same {
            let have = held.map_or(0, |h| h.3) as u64;
            if offset <= have && end > have {
                // A piece repeated after a cut overlaps what is held: keep its new tail.
                let tail = &piece.bytes[(have - offset) as usize..];
                tx.execute(
                    "INSERT INTO upload_pieces (device_id, offset, bytes) VALUES (?1, ?2, ?3)",
                    params![device, have as i64, tail],
                )?;
                tx.execute(
                    "UPDATE uploads SET have = ?2 WHERE device_id = ?1",
                    params![device, end as i64],
                )?;
                end
            } else {
                have
            }
        } else if offset == 0 {
            // A new upload replaces the device's previous one.
            tx.execute("DELETE FROM upload_pieces WHERE device_id = ?1", [device])?;
            tx.execute(
                "INSERT INTO uploads (device_id, record_id, digest, total, have) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (device_id) DO UPDATE SET record_id = excluded.record_id,
                     digest = excluded.digest, total = excluded.total, have = excluded.have",
                params![device, piece.record.to_vec(), piece.digest.to_vec(), piece.total, end as i64],
            )?;
            tx.execute(
                "INSERT INTO upload_pieces (device_id, offset, bytes) VALUES (?1, 0, ?2)",
                params![device, piece.bytes],
            )?;
            end
        } else {
            // Not the start, and not of the upload held: the device must start over.
            0
        };
        tx.commit()?;
        Ok(have as u32)
    }

    fn upload(&self, device: i64, digest: &[u8; 32]) -> Result<Option<Vec<u8>>> {
        let conn = self.conn();
        let whole: Option<(i64, i64)> = conn
            .query_row(
                "SELECT total, have FROM uploads WHERE device_id = ?1 AND digest = ?2",
                params![device, digest.to_vec()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((total, have)) = whole.filter(|(t, h)| t == h) else {
            return Ok(None);
        };
        let mut stmt = conn.prepare(
            "SELECT bytes FROM upload_pieces WHERE device_id = ?1 AND offset < ?2 ORDER BY offset",
        )?;
        let mut bytes = Vec::with_capacity(total as usize);
        let mut rows = stmt.query(params![device, have])?;
        while let Some(r) = rows.next()? {
            bytes.extend_from_slice(&r.get::<_, Vec<u8>>(0)?);
        }
        Ok((bytes.len() as i64 == total).then_some(bytes))
    }

    fn drop_upload(&self, device: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM upload_pieces WHERE device_id = ?1", [device])?;
        tx.execute("DELETE FROM uploads WHERE device_id = ?1", [device])?;
        tx.commit()?;
        Ok(())
    }

    fn record_metas(&self, scope: &Scope) -> Result<Vec<(RecordMeta, String)>> {
        let (cond, param) = scope_sql(scope);
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT r.id, r.owner, r.team, r.assigned_to, r.status FROM records r WHERE {cond} ORDER BY r.last_seq DESC"
        ))?;
        let rows = stmt
            .query_map(named_params! {":scope": param}, |r| {
                Ok((
                    RecordMeta {
                        id: rid(r.get(0)?)?,
                        owner: r.get(1)?,
                        team: r.get(2)?,
                        assigned_to: r.get(3)?,
                    },
                    r.get(4)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn write_audited(
        &self,
        writes: &[RecordWrite],
        device: i64,
        audit: Option<&Audit>,
    ) -> Result<u64> {
        let now = Utc::now();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for w in writes {
            let current: Option<Vec<u8>> = tx
                .prepare_cached("SELECT heads FROM records WHERE id = ?1")?
                .query_row([key(w.meta.id)], |r| r.get(0))
                .optional()?;
            if current != w.expected_heads {
                return Err(StorageError::Stale);
            }
            if current.is_none() && erasure::is_erased(&tx, w.meta.id)? {
                // Erased while the push was prepared: prepared again, it is refused.
                return Err(StorageError::Stale);
            }
            let mut last_seq = None;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO log (record_id, hash, device_id, bytes, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (hash) DO NOTHING",
                )?;
                // The server's receipt, in milliseconds: what pages show beside a
                // change's device time (issue 13, clock skew). A replay keeps the first.
                let received = now.timestamp_millis();
                for (hash, bytes) in &w.new_changes {
                    if insert.execute(params![
                        key(w.meta.id),
                        hash.to_vec(),
                        device,
                        bytes,
                        received
                    ])? > 0
                    {
                        last_seq = Some(tx.last_insert_rowid());
                    }
                }
            }
            let Some(last_seq) = last_seq else { continue };
            tx.prepare_cached(
                "INSERT INTO records (id, owner, team, assigned_to, status, doc, heads, last_seq, sole_device)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (id) DO UPDATE SET assigned_to = excluded.assigned_to, status = excluded.status,
                     doc = excluded.doc, heads = excluded.heads, last_seq = excluded.last_seq,
                     sole_device = CASE WHEN records.sole_device = excluded.sole_device THEN excluded.sole_device END",
            )?
            .execute(params![
                key(w.meta.id), w.meta.owner, w.meta.team, w.meta.assigned_to, w.status, w.doc, w.heads, last_seq, device
            ])?;
            listing::put_written(&tx, w, last_seq, now)?;
            for user in &w.revoked_from {
                tx.execute(
                    "INSERT INTO access_revoked (seq, user, record_id) VALUES (?1, ?2, ?3)",
                    params![last_seq, user, key(w.meta.id)],
                )?;
                // Each of the user's devices may still deliver what it wrote before it
                // knew, until it has committed the page that tells it.
                tx.execute(
                    "INSERT INTO late_grants (device_id, record_id, revoked_seq)
                     SELECT d.id, ?2, ?1 FROM devices d JOIN users u ON u.id = d.user_id
                     WHERE u.name = ?3 AND d.revoked_at IS NULL
                     ON CONFLICT (device_id, record_id) DO UPDATE SET
                         revoked_seq = excluded.revoked_seq, announced = NULL, closed = 0",
                    params![last_seq, key(w.meta.id), user],
                )?;
            }
        }
        audit::with(&tx, audit)?;
        let position = erasure::head(&tx)?;
        tx.commit()?;
        Ok(position as u64)
    }

    fn pull(&self, req: &PullRequest<'_>) -> Result<Page> {
        let mut conn = self.conn();
        // One read transaction: every query sees the same snapshot, so the cursor we
        // hand out covers exactly what was considered, and the receipts exactly the
        // documents sent.
        let tx = conn.transaction()?;
        let mut page = pull_in(&tx, req)?;
        page.doc_receipts = doc_receipts(&tx, &page.docs)?;
        Ok(page)
    }

    // Clock skew (issue 13).
    fn receipts(&self, id: RecordId) -> Result<HashMap<[u8; 32], DateTime<Utc>>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT hash, received_at FROM log WHERE record_id = ?1 AND received_at IS NOT NULL",
        )?;
        let rows = stmt.query_map([key(id)], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (hash, at) = row?;
            if let (Ok(hash), Some(at)) = (
                <[u8; 32]>::try_from(hash),
                DateTime::from_timestamp_millis(at),
            ) {
                out.insert(hash, at);
            }
        }
        Ok(out)
    }
}

impl Storage for SqliteStorage {
    fn order_wipe_audited(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<bool> {
        wipe::order_wipe(&mut self.conn(), id, now, audit)
    }

    fn wipe_order(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<bool> {
        wipe::wipe_order(&self.conn(), token_hash, now)
    }

    fn confirm_wipe(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<Option<i64>> {
        wipe::confirm_wipe(&self.conn(), token_hash, now)
    }

    fn list_records(
        &self,
        scope: &Scope,
        filter: &ListFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Listed>, usize)> {
        listing::list(&self.conn(), scope, filter, offset, limit)
    }

    fn listed_all(&self, scope: &Scope, filter: &ListFilter) -> Result<Vec<Listed>> {
        listing::listed_all(&self.conn(), scope, filter)
    }

    fn records_matching(&self, scope: &Scope, filter: &ListFilter) -> Result<Vec<StoredRecord>> {
        listing::records_matching(&self.conn(), scope, filter)
    }

    fn duplicate_groups(&self, scope: &Scope) -> Result<Vec<Vec<Listed>>> {
        listing::duplicate_groups(&self.conn(), scope)
    }

    fn link_records_audited(
        &self,
        a: RecordId,
        b: RecordId,
        by: &str,
        at: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<()> {
        listing::link(&mut self.conn(), a, b, by, at, audit)
    }

    fn linked(&self, id: RecordId) -> Result<Vec<RecordId>> {
        listing::linked(&self.conn(), id)
    }

    fn unindexed(&self, limit: usize) -> Result<Vec<StoredRecord>> {
        listing::unindexed(&self.conn(), limit)
    }

    fn set_summaries(&self, summaries: &[(RecordId, RecordSummary)]) -> Result<()> {
        listing::set_summaries(&mut self.conn(), summaries)
    }

    fn reset_password_audited(
        &self,
        user: &str,
        code_hash: [u8; 32],
        expires: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<bool> {
        accounts::reset_password(&mut self.conn(), user, code_hash, expires, audit)
    }

    fn redeem_password_code(
        &self,
        code_hash: [u8; 32],
        now: DateTime<Utc>,
        phc: &str,
    ) -> Result<Option<User>> {
        accounts::redeem_password_code(&mut self.conn(), code_hash, now, phc)
    }

    fn password(&self, user: &str) -> Result<Option<(User, String)>> {
        accounts::password(&self.conn(), user)
    }

    fn create_session(
        &self,
        token_hash: [u8; 32],
        user: &str,
        csrf: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<Option<WebSession>> {
        accounts::create_session(&mut self.conn(), token_hash, user, csrf, now, expires)
    }

    fn session(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<Option<WebSession>> {
        accounts::session(&self.conn(), token_hash, now)
    }

    fn extend_session(&self, id: i64, expires: DateTime<Utc>) -> Result<()> {
        accounts::extend_session(&self.conn(), id, expires)
    }

    fn end_session(&self, token_hash: [u8; 32]) -> Result<()> {
        accounts::end_session(&self.conn(), token_hash)
    }

    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        audit::append(&mut self.conn(), entry)
    }

    fn used_form(&self, user: &str, token: &str) -> Result<Option<String>> {
        audit::used_form(&self.conn(), user, token)
    }

    fn audit_entries(
        &self,
        filter: &AuditFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<(i64, AuditEntry)>, usize)> {
        audit::entries(&self.conn(), filter, offset, limit)
    }

    fn device_users(&self) -> Result<HashMap<String, (i64, String, String)>> {
        let conn = self.conn();
        // An actor re-enrolled after a revocation belongs to two rows; the newer wins.
        let mut stmt = conn.prepare(
            "SELECT d.actor, d.id, u.name, d.label FROM devices d JOIN users u ON u.id = d.user_id
             ORDER BY d.id",
        )?;
        let devices = stmt
            .query_map([], |r| {
                Ok((
                    hex::encode(r.get::<_, Vec<u8>>(0)?),
                    (r.get(1)?, r.get(2)?, r.get(3)?),
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(devices)
    }

    fn erase(&self, erasures: &[(RecordId, AuditEntry)]) -> Result<Vec<Option<u64>>> {
        erasure::erase(&mut self.conn(), erasures)
    }

    fn erased(&self, id: RecordId) -> Result<bool> {
        Ok(erasure::is_erased(&self.conn(), id)?)
    }

    fn erased_ids(&self) -> Result<Vec<RecordId>> {
        erasure::erased_ids(&self.conn())
    }

    fn closed_before(&self, cutoff: DateTime<Utc>) -> Result<Vec<(RecordId, DateTime<Utc>)>> {
        erasure::closed_before(&self.conn(), cutoff)
    }

    fn traces(&self, id: RecordId) -> Result<Vec<&'static str>> {
        erasure::traces(&self.conn(), id)
    }
}

/// The high bit of a cursor marks a position in the whole-documents phase of a fresh
/// device's first pull (see `docs/PROTOCOL.md`); cursors are opaque to devices.
pub const DOCS_PHASE: u64 = 1 << 63;

/// One page of what a device lacks, read in the caller's transaction ([`Storage::pull`]).
fn pull_in(tx: &rusqlite::Transaction<'_>, req: &PullRequest<'_>) -> Result<Page> {
    let (cond, param) = scope_sql(req.scope);
    let head = erasure::head(tx)?;
    let mut page = Page::default();
    let mut used = 0usize;
    let fits = |used: usize, size: usize, any: bool| !any || used + size <= req.budget;

    // Wanted records first, each once, within the budget like the rest.
    let mut wanted = std::collections::HashSet::new();
    for id in req.want_docs {
        if !wanted.insert(*id) {
            continue;
        }
        let doc: Option<Vec<u8>> = tx
            .query_row(
                &format!("SELECT r.doc FROM records r WHERE r.id = :id AND {cond}"),
                named_params! {":id": key(*id), ":scope": param},
                |r| r.get(0),
            )
            .optional()?;
        let Some(doc) = doc else {
            page.unavailable.push(*id);
            continue;
        };
        if !fits(used, doc.len() + 20, !page.docs.is_empty()) {
            // The rest are asked for again with the next page; the cursor stays.
            page.more = true;
            page.cursor = req.cursor;
            return Ok(page);
        }
        used += doc.len() + 20;
        page.docs.push((*id, doc));
    }

    let docs_phase = req.cursor == 0 || req.cursor & DOCS_PHASE != 0;
    // Revocations in (removed_after, position] are reported with this page.
    let (position, removed_after) = if docs_phase {
        // A device that has nothing gets whole compacted documents, in the order
        // of their last change; its position in that order is the cursor. Records
        // made only by this device are not sent back to it.
        let after = (req.cursor & !DOCS_PHASE) as i64;
        let mut stmt = tx.prepare(&format!(
            "SELECT r.id, r.doc, r.last_seq FROM records r
             WHERE r.last_seq > :after AND r.last_seq <= :head AND r.sole_device IS NOT :device AND {cond}
             ORDER BY r.last_seq"
        ))?;
        let mut rows = stmt.query(
            named_params! {":after": after, ":head": head, ":device": req.device, ":scope": param},
        )?;
        let mut position = after;
        while let Some(r) = rows.next()? {
            let doc: Vec<u8> = r.get(1)?;
            if !fits(used, doc.len() + 20, !page.docs.is_empty()) {
                page.more = true;
                break;
            }
            used += doc.len() + 20;
            page.docs.push((rid(r.get(0)?)?, doc));
            position = r.get(2)?;
        }
        if page.more {
            page.cursor = DOCS_PHASE | position as u64;
            return Ok(page);
        }
        // The whole phase is done: any record of this user's history that was
        // sent in an earlier page and reassigned away since must be dropped.
        (head, 0)
    } else {
        let mut stmt = tx.prepare(&format!(
            "SELECT l.seq, l.record_id, l.bytes, l.received_at FROM log l JOIN records r ON r.id = l.record_id
             WHERE l.seq > :cursor AND l.seq <= :head AND l.device_id != :device AND {cond} ORDER BY l.seq"
        ))?;
        let mut rows = stmt.query(named_params! {
            ":cursor": req.cursor as i64, ":head": head, ":device": req.device, ":scope": param,
        })?;
        // Until something is sent the position stays where the device is: wanted
        // documents may already fill the page.
        let mut position = req.cursor as i64;
        while let Some(r) = rows.next()? {
            let bytes: Vec<u8> = r.get(2)?;
            let any = !page.changes.is_empty() || !page.docs.is_empty();
            if !fits(used, bytes.len() + 20, any) {
                page.more = true;
                break;
            }
            used += bytes.len() + 20;
            let seq: i64 = r.get(0)?;
            page.changes.push(LogEntry {
                seq: seq as u64,
                record: rid(r.get(1)?)?,
                bytes,
                received_at: r.get(3)?,
            });
            position = seq;
        }
        if !page.more {
            position = head;
        }
        (position, req.cursor as i64)
    };
    let mut revoked = tx.prepare(&format!(
        "SELECT DISTINCT a.record_id FROM access_revoked a
         WHERE a.user = :user AND a.seq > :cursor AND a.seq <= :position
           AND NOT EXISTS (SELECT 1 FROM records r WHERE r.id = a.record_id AND {cond})"
    ))?;
    page.removed = revoked
        .query_map(
            named_params! {
                ":user": req.user, ":cursor": removed_after, ":position": position, ":scope": param,
            },
            |r| rid(r.get(0)?),
        )?
        .collect::<rusqlite::Result<_>>()?;
    page.erased = erasure::erased_between(tx, req.scope, req.user, removed_after, position)?;
    page.cursor = position as u64;
    Ok(page)
}

/// The server's receipts (milliseconds) of each document's changes, one list per
/// document, each in the order of the changes' hashes: a device that loads the document
/// sorts its changes' hashes the same way and pairs them up (protocol v6).
fn doc_receipts(
    tx: &rusqlite::Transaction<'_>,
    docs: &[(RecordId, Vec<u8>)],
) -> Result<Vec<Vec<Option<i64>>>> {
    let mut stmt =
        tx.prepare_cached("SELECT received_at FROM log WHERE record_id = ?1 ORDER BY hash")?;
    docs.iter()
        .map(|(id, _)| {
            Ok(stmt
                .query_map([key(*id)], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .collect()
}
