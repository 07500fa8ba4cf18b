//! The local store: records as Automerge changes in an encrypted SQLite database
//! (SQLCipher), with a queryable projection kept in the same transaction.
//!
//! Each save appends only the changes the stored record lacks — never rewrites the
//! record — in one durable transaction (WAL, `synchronous=FULL`), so a save that has
//! returned survives the app being killed. Every [`COMPACT_AFTER`] appended rows the
//! record is compacted into one snapshot.

mod clock_check;
mod key;
mod lock;
mod receipts;
mod schema;
pub mod strength;
mod sync_state;
mod transfer;
mod wipe;

pub(crate) use clock_check::http_date;
pub use clock_check::{CLEARLY_WRONG, ClockError};
pub use key::Key;
pub use lock::{Clock, system_clock};
pub use schema::CURRENT as SCHEMA_VERSION;
pub use schema::steps as migration_steps;
pub use strength::WeakPassphrase;
pub use sync_state::Enrolment;
pub(crate) use sync_state::{Outgoing, PageCommit};
pub use wipe::destroy_dir;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use intake_shared::record::{Creation, Identity, decode_incoming};
use intake_shared::{Conflict, Edit, FormRegistry, Record, RecordError, RecordId, ReviewStatus};
use rusqlite::{Connection, OptionalExtension, ToSql, TransactionBehavior, params};

/// The database file inside a store directory.
pub const DB_FILE: &str = "intake.db";
/// The Argon2 salt beside it (CLI passphrase stores only).
pub const SALT_FILE: &str = "intake.salt";
/// Appended change rows per record before it is compacted into a snapshot.
pub const COMPACT_AFTER: i64 = 32;

/// Why a store operation failed. A failed operation changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("wrong passphrase or key, or this file is not an Intake store")]
    WrongKey,
    #[error("key: {0}")]
    Key(String),
    #[error(
        "this store was written by a newer app (schema {version}; this app knows {supported}): update the app"
    )]
    TooNew { version: i64, supported: i64 },
    #[error("no record {0}")]
    NotFound(RecordId),
    #[error("a record {0} already exists")]
    Exists(RecordId),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("the stored record {id} is damaged: {why}")]
    Damaged { id: String, why: String },
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    #[error("file: {0}")]
    Io(std::io::Error),
    // Lost phones (issue 12).
    /// A new store's passphrase is too weak; the message says why and what to do.
    #[error("{0}")]
    WeakPassphrase(#[from] WeakPassphrase),
    /// The SQLite linked into this build is not SQLCipher: the store would not be
    /// encrypted, so nothing is opened or created.
    #[error(
        "this build's SQLite has no encryption (SQLCipher is not linked: PRAGMA cipher_version is empty); \
         refusing to open or create an unencrypted store"
    )]
    NoCipher,
    /// No successful sync for the server's limit: records stay closed until one.
    #[error("no successful sync for {days} days: connect and sync to unlock")]
    Locked { days: u32 },
    /// The server ordered this device wiped and its store was destroyed.
    #[error("this store was wiped on the order of the server's administrator")]
    Wiped,
    // Disk full (issue 13).
    /// The device's storage is full (SQLite's `SQLITE_FULL`, or `ENOSPC` from a file
    /// write). What failed changed nothing and everything saved before is intact: free
    /// some space and do it again. The cause is kept for the log, not shown.
    #[error(
        "the device storage is full: nothing was saved by this action, and everything saved before is safe; \
         free some space on this device, then try again"
    )]
    Full(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<rusqlite::Error> for StoreError {
    /// `SQLITE_FULL` becomes [`StoreError::Full`]: SQLite answers it when a write
    /// (database, WAL, journal or a temporary file) met `ENOSPC`, and a person must
    /// be told to free space, not shown "database or disk is full".
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            StoreError::Full(Box::new(e))
        } else {
            StoreError::Sqlite(e)
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull {
            StoreError::Full(Box::new(e))
        } else {
            StoreError::Io(e)
        }
    }
}

impl StoreError {
    /// Whether the device's storage is full: the same action succeeds once space is
    /// freed, so a sync that failed this way is retried later, not given up.
    pub fn is_full(&self) -> bool {
        matches!(self, StoreError::Full(_))
    }
}

/// One row of [`Store::list`]: what a list screen shows without opening the record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub id: String,
    pub form: String,
    pub form_version: u32,
    pub status: String,
    pub review_note: Option<String>,
    pub assigned_to: Option<String>,
    pub municipality: Option<String>,
    pub issue_type: Option<String>,
    pub urgency: Option<String>,
    pub summary: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: String,
    pub has_conflicts: bool,
    /// Holds changes the server does not have yet.
    pub unsynced: bool,
    /// Why the server refused this record's last push, if it did.
    pub sync_error: Option<String>,
}

/// An open local store.
///
/// ```no_run
/// use intake_client::store::{Key, Store};
/// use intake_shared::Value;
///
/// let dir = std::path::Path::new("/tmp/intake-example");
/// let key = Key::from_passphrase(dir, "correct horse battery staple")?;
/// let mut store = Store::open(dir, &key)?;
/// let id = store.create("intake", |e| {
///     e.set("full_name", Value::Text("Drita Krasniqi".into()))?;
///     e.set("urgency", Value::Text("high".into()))
/// })?;
/// store.edit(id, |e| e.set("municipality", Value::Text("prizren".into())))?;
/// let mut record = store.get(id)?;
/// assert_eq!(record.get("urgency"), Some(Value::Text("high".into())));
/// # Ok::<(), intake_client::store::StoreError>(())
/// ```
pub struct Store {
    conn: Connection,
    identity: Identity,
    forms: &'static FormRegistry,
    dir: PathBuf,
    /// "Now" for the lock after N days without a sync (`lock.rs`) and the device time
    /// of the changes this store makes.
    clock: Clock,
    /// The files were destroyed on the server's order (`wipe.rs`): every record
    /// operation answers [`StoreError::Wiped`].
    wiped: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir` with `key`. A wrong key is
    /// [`StoreError::WrongKey`] and writes nothing.
    pub fn open(dir: &Path, key: &Key) -> Result<Store, StoreError> {
        // Before anything is created: a build without SQLCipher would write the
        // cases in plain text.
        check_cipher()?;
        create_private_dir(dir)?;
        let mut conn = Connection::open(dir.join(DB_FILE))?;
        // SQLCipher logs a failed key check to stderr; the error we return says it better.
        conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
        {
            let pragma = zeroize::Zeroizing::new(format!("PRAGMA key = {};", *key.pragma_value()));
            conn.execute_batch(&pragma)?;
        }
        // The first read is where SQLCipher finds out whether the key is right; nothing
        // has been written before it.
        match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        }) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::NotADatabase =>
            {
                return Err(StoreError::WrongKey);
            }
            Err(e) => return Err(e.into()),
        }
        // A page cache of 16 MiB, not SQLite's 2 MB: a push or a pull page touches a few
        // MB of change rows, and with 2 MB a large store decrypted the same pages again
        // within one sync (committing W1's push of 1,666 records: 82 ms -> 13 ms). It
        // is an upper bound, reached only by a store that large.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA secure_delete = ON;
             PRAGMA cache_size = -16384;",
        )?;
        schema::migrate(&mut conn)?;
        // Automerge requires that one actor never makes two changes concurrently (each
        // change has a sequence number per actor). Two handles on one store — two
        // processes, or a host app and a background sync — would do exactly that with
        // a shared actor, so every open gets its own: the device's 16 bytes, which the
        // server binds to the device, followed by 4 random session bytes.
        let mut actor = Self::device_actor(&conn)?;
        let mut session = [0u8; 4];
        getrandom::fill(&mut session).map_err(|e| StoreError::Key(e.to_string()))?;
        actor.extend_from_slice(&session);
        let author = conn
            .query_row("SELECT value FROM meta WHERE key = 'user'", [], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional()?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        Ok(Store {
            conn,
            identity: Identity { actor, author },
            forms: FormRegistry::builtin(),
            dir: dir.to_path_buf(),
            clock: system_clock(),
            wiped: false,
        })
    }

    /// Whether records may be read or written now: not after a wipe, not past the lock
    /// after N days without a sync.
    fn usable(&self) -> Result<(), StoreError> {
        if self.wiped {
            return Err(StoreError::Wiped);
        }
        self.check_not_locked()
    }

    /// This device's actor prefix: 16 random bytes minted with the store, bound to the
    /// device on the server at enrolment; every actor this store writes with starts
    /// with them.
    fn device_actor(conn: &Connection) -> Result<Vec<u8>, StoreError> {
        let existing: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE key = 'actor'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(actor) = existing {
            return Ok(actor);
        }
        let mut actor = vec![0u8; 16];
        getrandom::fill(&mut actor).map_err(|e| StoreError::Key(e.to_string()))?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('actor', ?1)",
            [&actor],
        )?;
        Ok(actor)
    }

    /// Who this store's edits are by (actor = device prefix + session, author).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The device's actor prefix (see [`Store::open`]).
    pub fn device_actor_prefix(&self) -> &[u8] {
        &self.identity.actor[..16]
    }

    /// Records the user's name, written as the author of every later change.
    pub fn set_user(&mut self, name: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('user', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [name.as_bytes()],
        )?;
        self.identity.author = Some(name.to_string());
        Ok(())
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The forms this store opens records with.
    pub fn forms(&self) -> &'static FormRegistry {
        self.forms
    }

    /// Creates a record of the latest version of `form`, fills it in with `f`, and
    /// saves it; nothing is stored if `f` fails.
    pub fn create(
        &mut self,
        form: &str,
        f: impl FnOnce(&mut Edit<'_>) -> Result<(), RecordError>,
    ) -> Result<RecordId, StoreError> {
        self.usable()?;
        // The store's clock ([`Store::set_clock`]): a test gives a device a skewed one.
        let now = self.now();
        let form = self.forms.latest(form).map_err(RecordError::from)?;
        let id = new_record_id(now)?;
        let mut record = Record::create_with(id, form, &self.identity, now, f)?;
        self.save(&mut record)?;
        Ok(id)
    }

    /// Like [`Store::create`] with a given id: for records that already have one
    /// (imported from another system). An id already in the store is refused.
    pub fn create_with_id(
        &mut self,
        id: RecordId,
        form: &str,
        f: impl FnOnce(&mut Edit<'_>) -> Result<(), RecordError>,
    ) -> Result<(), StoreError> {
        self.usable()?;
        if self.exists(id)? {
            return Err(StoreError::Exists(id));
        }
        // The store's clock ([`Store::set_clock`]): a test gives a device a skewed one.
        let now = self.now();
        let form = self.forms.latest(form).map_err(RecordError::from)?;
        let mut record = Record::create_with(id, form, &self.identity, now, f)?;
        self.save(&mut record)
    }

    /// Whether a record is in the store.
    pub fn exists(&self, id: RecordId) -> Result<bool, StoreError> {
        self.usable()?;
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM records WHERE id = ?1",
                [id.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Loads, edits (one change, timestamped now) and saves a record.
    pub fn edit<T>(
        &mut self,
        id: RecordId,
        f: impl FnOnce(&mut Edit<'_>) -> Result<T, RecordError>,
    ) -> Result<T, StoreError> {
        self.usable()?;
        let mut record = self.get(id)?;
        let out = record.edit(self.now(), f)?;
        self.save(&mut record)?;
        Ok(out)
    }

    /// Loads a record (snapshot plus the changes appended since).
    pub fn get(&self, id: RecordId) -> Result<Record, StoreError> {
        self.usable()?;
        let mut record =
            Store::load_in(&self.conn, &id.to_string(), self.forms).map_err(|e| match e {
                StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows) => {
                    StoreError::NotFound(id)
                }
                e => e,
            })?;
        record.set_identity(&self.identity);
        Ok(record)
    }

    /// Saves what `record` has that the store lacks, and its projection, in one
    /// transaction. Changes saved meanwhile by someone else stay: the stored record is
    /// the union of both.
    pub fn save(&mut self, record: &mut Record) -> Result<(), StoreError> {
        self.usable()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        save_in(&tx, self.forms, record, Origin::Local)?;
        tx.commit()?;
        Ok(())
    }

    fn load_in(conn: &Connection, key: &str, forms: &FormRegistry) -> Result<Record, StoreError> {
        let mut bytes: Vec<u8> = conn
            .query_row("SELECT snapshot FROM records WHERE id = ?1", [key], |r| {
                r.get::<_, Option<Vec<u8>>>(0)
            })?
            .unwrap_or_default();
        let mut stmt =
            conn.prepare_cached("SELECT bytes FROM changes WHERE record_id = ?1 ORDER BY seq")?;
        for row in stmt.query_map([key], |r| r.get::<_, Vec<u8>>(0))? {
            bytes.extend(row?);
        }
        Record::load(&bytes, forms).map_err(|e| StoreError::Damaged {
            id: key.to_string(),
            why: e.to_string(),
        })
    }

    /// Records, newest first, optionally only those in `status`.
    pub fn list(&self, status: Option<ReviewStatus>) -> Result<Vec<Summary>, StoreError> {
        self.usable()?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM records WHERE ?1 IS NULL OR status = ?1
             ORDER BY updated_at DESC, id"
        ))?;
        let rows = stmt.query_map([status.map(|s| s.as_str())], summary_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One record's list row, without reading the others (`None`: not here).
    pub fn summary(&self, id: RecordId) -> Result<Option<Summary>, StoreError> {
        self.usable()?;
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM records WHERE id = ?1"
            ))?
            .query_row([id.to_string()], summary_row)
            .optional()?)
    }

    /// Every record with an unresolved field conflict, with its conflicts.
    pub fn conflicts(&self) -> Result<Vec<(RecordId, Vec<Conflict>)>, StoreError> {
        self.usable()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM records WHERE has_conflicts ORDER BY id")?;
        let ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for id in ids {
            let id: RecordId =
                id.parse()
                    .map_err(|e: intake_shared::ids::BadRecordId| StoreError::Damaged {
                        id: e.0.clone(),
                        why: "bad id".into(),
                    })?;
            let mut record = self.get(id)?;
            out.push((id, record.conflicts()));
        }
        Ok(out)
    }

    /// Checks the database file (`PRAGMA integrity_check`).
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

/// The projection columns of a record.
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Projection {
    id: String,
    form: String,
    form_version: u32,
    status: &'static str,
    review_note: Option<String>,
    assigned_to: Option<String>,
    municipality: Option<String>,
    issue_type: Option<String>,
    urgency: Option<String>,
    summary: Option<String>,
    created_at: Option<String>,
    has_conflicts: bool,
    heads: Vec<u8>,
    /// When this projection was taken: the row's `updated_at`.
    written_at: String,
}

impl Projection {
    /// The values the `records` statements bind as ?1–?14 (id, the projection, the
    /// time of this write, heads), then `last` as ?15.
    fn row<'a>(&'a self, last: &'a dyn ToSql) -> [&'a dyn ToSql; 15] {
        [
            &self.id as &dyn ToSql,
            &self.form,
            &self.form_version,
            &self.status,
            &self.review_note,
            &self.assigned_to,
            &self.municipality,
            &self.issue_type,
            &self.urgency,
            &self.summary,
            &self.created_at,
            &self.written_at,
            &self.has_conflicts,
            &self.heads,
            last,
        ]
    }
}

/// What a list row is taken from: a loaded record, or a record new to the store read
/// off its one creating change (`Creation`, see [`Received::load`]).
trait Facts {
    fn id(&self) -> RecordId;
    fn form(&self) -> &intake_shared::Form;
    fn get(&self, name: &str) -> Option<intake_shared::Value>;
    fn status(&self) -> ReviewStatus;
    fn review_note(&self) -> Option<String>;
    fn assigned_to(&self) -> Option<String>;
    fn created_at(&self) -> Option<DateTime<Utc>>;
    fn has_conflicts(&self) -> bool;
    fn heads(&mut self) -> Vec<u8>;
}

impl Facts for Record {
    fn id(&self) -> RecordId {
        Record::id(self)
    }
    fn form(&self) -> &intake_shared::Form {
        Record::form(self)
    }
    fn get(&self, name: &str) -> Option<intake_shared::Value> {
        Record::get(self, name)
    }
    fn status(&self) -> ReviewStatus {
        Record::status(self)
    }
    fn review_note(&self) -> Option<String> {
        Record::review_note(self)
    }
    fn assigned_to(&self) -> Option<String> {
        Record::assigned_to(self)
    }
    fn created_at(&self) -> Option<DateTime<Utc>> {
        Record::created_at(self)
    }
    fn has_conflicts(&self) -> bool {
        Record::has_conflicts(self)
    }
    fn heads(&mut self) -> Vec<u8> {
        Record::heads(self).concat()
    }
}

impl Facts for Creation {
    fn id(&self) -> RecordId {
        Creation::id(self)
    }
    fn form(&self) -> &intake_shared::Form {
        Creation::form(self)
    }
    fn get(&self, name: &str) -> Option<intake_shared::Value> {
        Creation::get(self, name)
    }
    fn status(&self) -> ReviewStatus {
        Creation::status(self)
    }
    fn review_note(&self) -> Option<String> {
        Creation::review_note(self)
    }
    fn assigned_to(&self) -> Option<String> {
        Creation::assigned_to(self)
    }
    fn created_at(&self) -> Option<DateTime<Utc>> {
        Creation::created_at(self)
    }
    fn has_conflicts(&self) -> bool {
        false // One change: nothing concurrent.
    }
    fn heads(&mut self) -> Vec<u8> {
        self.info().hash.to_vec()
    }
}

fn projection(r: &mut impl Facts) -> Projection {
    let text = |name: &str| {
        r.get(name)
            .and_then(|v| v.as_str().map(str::to_string))
            .filter(|s| !s.is_empty())
    };
    Projection {
        id: r.id().to_string(),
        form: r.form().id.clone(),
        form_version: r.form().version,
        status: r.status().as_str(),
        review_note: r.review_note(),
        assigned_to: r.assigned_to(),
        municipality: text("municipality"),
        issue_type: text("issue_type"),
        urgency: text("urgency"),
        summary: text("summary"),
        created_at: r.created_at().map(|d: DateTime<Utc>| d.to_rfc3339()),
        has_conflicts: r.has_conflicts(),
        heads: r.heads(),
        written_at: Utc::now().to_rfc3339(),
    }
}

/// A new UUIDv7 from the clock and the OS random source.
fn new_record_id(now: DateTime<Utc>) -> Result<RecordId, StoreError> {
    let mut random = [0u8; 10];
    getrandom::fill(&mut random).map_err(|e| StoreError::Key(e.to_string()))?;
    Ok(RecordId::new_v7(
        now.timestamp_millis().max(0) as u64,
        random,
    ))
}

/// Refuses a SQLite without SQLCipher (`PRAGMA cipher_version` empty): checked once
/// per process, on a connection in memory, so nothing is created before it.
pub(crate) fn check_cipher() -> Result<(), StoreError> {
    static LINKED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let linked = *LINKED.get_or_init(|| {
        Connection::open_in_memory()
            .and_then(|c| {
                c.query_row("PRAGMA cipher_version", [], |r| r.get::<_, String>(0))
                    .optional()
            })
            .map(|v| cipher_reported(v.as_deref()))
            .unwrap_or(false)
    });
    if linked {
        Ok(())
    } else {
        Err(StoreError::NoCipher)
    }
}

/// What `PRAGMA cipher_version` answered says SQLCipher is there: plain SQLite
/// ignores the unknown pragma and returns no row (or an empty one).
fn cipher_reported(version: Option<&str>) -> bool {
    version.is_some_and(|v| !v.trim().is_empty())
}

/// Creates `dir` readable by its owner only: the store holds people's cases.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    Ok(())
}

/// Writes a file that must not exist yet, durably.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Where the changes a save adds come from: it decides whether they are to be pushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Made here: the server lacks them until it answers `Stored`.
    Local,
    /// Received from the server, which has them.
    Server,
}

/// Saves what `record` has that the stored copy lacks, and its projection, inside the
/// caller's transaction. Changes saved meanwhile by someone else stay: the stored
/// record is the union of both. Returns whether anything was written.
pub(crate) fn save_in(
    tx: &Connection,
    forms: &FormRegistry,
    record: &mut Record,
    origin: Origin,
) -> Result<bool, StoreError> {
    let key = record.id().to_string();
    let stored: Option<(Vec<u8>, i64)> = tx
        .query_row(
            "SELECT heads, change_rows FROM records WHERE id = ?1",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let stored_heads: Vec<[u8; 32]> = stored
        .as_ref()
        .map(|(h, _)| {
            h.chunks_exact(32)
                .map(|c| c.try_into().expect("32-byte chunk"))
                .collect()
        })
        .unwrap_or_default();
    let new = record.changes_since(&stored_heads);
    if new.is_empty() && stored.is_some() {
        return Ok(false);
    }
    let change_rows = stored.as_ref().map_or(0, |(_, n)| *n) + 1;
    // The projection and any snapshot describe the union of what was stored and
    // what we add; usually the record already holds everything stored.
    let mut union;
    let target = if stored_heads.iter().all(|h| record.has_change(h)) {
        record
    } else {
        union = Store::load_in(tx, &key, forms)?;
        union.merge(record)?;
        &mut union
    };
    let p = projection(target);
    tx.prepare_cached(
        "INSERT INTO records (id, form, form_version, status, review_note, assigned_to,
             municipality, issue_type, urgency, summary, created_at, updated_at,
             has_conflicts, heads, snapshot, change_rows)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL, ?15)
         ON CONFLICT (id) DO UPDATE SET
             status = excluded.status, review_note = excluded.review_note,
             assigned_to = excluded.assigned_to, municipality = excluded.municipality,
             issue_type = excluded.issue_type, urgency = excluded.urgency,
             summary = excluded.summary, updated_at = excluded.updated_at,
             has_conflicts = excluded.has_conflicts, heads = excluded.heads,
             change_rows = excluded.change_rows,
             dirty = excluded.heads IS NOT records.synced_heads",
    )?
    .execute(&p.row(&change_rows)[..])?;
    if change_rows > COMPACT_AFTER {
        // Unpushed changes folded into the snapshot are no longer rows a push can
        // send as they are: the next push derives them from the document.
        tx.execute(
            "UPDATE records SET snapshot = ?2, change_rows = 0, push_all = (push_all OR dirty)
             WHERE id = ?1",
            params![key, target.save()],
        )?;
        tx.execute("DELETE FROM changes WHERE record_id = ?1", [&key])?;
    } else {
        tx.prepare_cached("INSERT INTO changes (record_id, bytes, unpushed) VALUES (?1, ?2, ?3)")?
            .execute(params![key, new, origin == Origin::Local])?;
    }
    Ok(true)
}

/// A record received whole from the server (a document, or its complete history as
/// changes), loaded and read for its row, before any transaction: what
/// [`insert_received`] stores. `None` when the bytes do not load as the whole record
/// `id` (the caller then takes the slow path, which says why).
///
/// Loading is nearly all of the cost of a pulled record (some 0.4 ms: Automerge applies
/// a new record's ~400 operations one by one), and it needs nothing of the store, so a
/// page's new records are loaded on every core ([`par_map`]) while the database waits;
/// only the projection is kept, not the document, so a page's worth of documents is
/// never held at once.
pub(crate) struct Received {
    projection: Projection,
}

impl Received {
    pub(crate) fn load(id: RecordId, bytes: &[u8], forms: &FormRegistry) -> Option<Received> {
        // Most records a device receives new are one creating change (the server sends
        // a record made by one change as that change): read off its operations, a
        // quarter of the work of loading it, when it has the plain shape an app
        // writes. What keeps "a stored record loads" true then is what keeps it true
        // on the server, which took the same change in the same way: `Creation`.
        if let Ok(mut changes) = decode_incoming(bytes)
            && changes.len() == 1
            && let Some(mut created) = changes.remove(0).creation(forms)
            && created.id() == id
        {
            return Some(Received {
                projection: projection(&mut created),
            });
        }
        let mut record = Record::load(bytes, forms).ok()?;
        (record.id() == id && record.is_complete_history()).then(|| Received::of(&mut record))
    }

    /// What `record`, loaded from the received bytes, is stored as.
    pub(crate) fn of(record: &mut Record) -> Received {
        Received {
            projection: projection(record),
        }
    }
}

/// Stores a record this store did not have, received whole from the server, inside the
/// caller's transaction: the bytes become the record's snapshot as they came, instead
/// of being derived again from the loaded record (which re-encodes every change), and
/// the record is marked as synced. `received` is what they loaded as
/// ([`Received::load`]): a record is stored only once it has loaded.
pub(crate) fn insert_received(
    tx: &Connection,
    received: &Received,
    bytes: &[u8],
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO records (id, form, form_version, status, review_note, assigned_to,
             municipality, issue_type, urgency, summary, created_at, updated_at,
             has_conflicts, heads, snapshot, change_rows, synced_heads, dirty, push_all)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 0, ?14, 0, 0)",
    )?
    .execute(&received.projection.row(&bytes)[..])?;
    Ok(())
}

/// The least work worth a thread of its own: a few milliseconds of loading.
const ITEMS_PER_THREAD: usize = 16;

/// A page's new records mapped on every core when there are enough of them.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    intake_par::par_map(items, ITEMS_PER_THREAD, f)
}

/// The columns of a [`Summary`], in the order [`summary_row`] reads them.
const SUMMARY_COLUMNS: &str = "id, form, form_version, status, review_note, assigned_to,
    municipality, issue_type, urgency, summary, created_at, updated_at, has_conflicts,
    dirty, sync_error";

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Summary> {
    Ok(Summary {
        id: r.get(0)?,
        form: r.get(1)?,
        form_version: r.get(2)?,
        status: r.get(3)?,
        review_note: r.get(4)?,
        assigned_to: r.get(5)?,
        municipality: r.get(6)?,
        issue_type: r.get(7)?,
        urgency: r.get(8)?,
        summary: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        has_conflicts: r.get(12)?,
        unsynced: r.get(13)?,
        sync_error: r.get(14)?,
    })
}

#[cfg(test)]
mod cipher_tests {
    use super::*;

    #[test]
    fn an_empty_cipher_version_means_no_encryption() {
        assert!(!cipher_reported(None));
        assert!(!cipher_reported(Some("")));
        assert!(cipher_reported(Some("4.6.1 community")));
        // This build links SQLCipher, so the real check passes.
        assert!(check_cipher().is_ok());
    }
}

#[cfg(test)]
mod received_tests {
    use super::*;
    use intake_shared::Value;

    /// A record new to the store made by one creating change is read off its
    /// operations, and its list row is the row loading it gives.
    #[test]
    fn a_creating_change_is_listed_as_loading_it_would_list_it() {
        let forms = FormRegistry::builtin();
        let who = Identity {
            actor: vec![5; 16],
            author: Some("drita".into()),
        };
        let at = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let id = RecordId::new_v7(1_790_000_000_000, [9; 10]);
        let form = forms.latest("intake").unwrap();
        let mut record = Record::create_with(id, form, &who, at, |e| {
            e.set("municipality", Value::Text("prizren".into()))?;
            e.set("narrative", Value::Text("Shkolla e ndarë 🙂".into()))
        })
        .unwrap();
        let changes = record.change_list_since(&[]);
        let [bytes] = changes.as_slice() else {
            panic!("one creating change")
        };
        // The row read off the change (the way `Received::load` takes for it) is the
        // row of the loaded record, and so is what `Received::load` gives.
        let mut created = decode_incoming(bytes)
            .unwrap()
            .remove(0)
            .creation(forms)
            .unwrap();
        let mut read = projection(&mut created);
        let mut fast = Received::load(id, bytes, forms).unwrap().projection;
        let mut slow = Received::of(&mut Record::load(bytes, forms).unwrap()).projection;
        for row in [&mut read, &mut fast, &mut slow] {
            row.written_at.clear();
        }
        assert_eq!(read, slow);
        assert_eq!(fast, slow);
        assert_eq!(read.municipality.as_deref(), Some("prizren"));
        // Not the record asked for: not taken.
        assert!(Received::load(RecordId::new_v7(1, [1; 10]), bytes, forms).is_none());
    }
}
