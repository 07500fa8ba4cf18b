//! Storage behind a trait, so that the backend is a choice, not a rewrite. The SQLite
//! implementation ([`sqlite::SqliteStorage`]) is the embedded default; the PostgreSQL
//! one ([`postgres::PgStorage`], issue 14) is for several servers on one database.
//! [`SyncStorage`] is the part sync needs, [`Storage`] adds the rest.
//! `tests/storage_conformance.rs` is written against the traits and runs on both
//! backends.
//!
//! Storage is policy-free: it keeps users, devices, enrolment codes, records and the
//! append-only change log, and filters by a [`Scope`] that the policy module computes.
//! Calls are blocking; handlers run them on actix's blocking pool.
//!
//! Besides what sync needs, storage keeps what the supervisors' dashboard needs: a
//! summary of every record beside it (lists, filters, donor counts, duplicate hints),
//! links between records, passwords and browser sessions, and the append-only audit
//! trail.

mod dashboard;
pub mod key;
pub mod postgres;
pub mod schema;
pub mod sqlite;

pub use dashboard::{
    Audit, AuditEntry, AuditFilter, DASHBOARD_LABEL, ListFilter, Listed, RecordSummary, UsedForm,
    WebSession,
};

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use intake_shared::RecordId;
use intake_shared::protocol::Piece;

/// A user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Paralegal,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Paralegal => "paralegal",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "paralegal" => Some(Role::Paralegal),
            "supervisor" => Some(Role::Supervisor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub team: Option<String>,
    pub disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Device {
    pub id: i64,
    pub user: String,
    /// The 16-byte actor prefix bound to this device at enrolment, hex.
    pub actor: String,
    pub label: String,
    pub enrolled_at: DateTime<Utc>,
    pub revoked: bool,
    /// Lost phones (issue 12): when the device was revoked, and where a wipe order
    /// stands (see [`WipeState`]).
    pub revoked_at: Option<DateTime<Utc>>,
    pub wipe: WipeState,
}

/// Where a device's wipe order stands: ordered by an admin, sent (the server answered
/// the device's token with the order), confirmed by the device. Each with its time.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WipeState {
    pub ordered_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub wiped_at: Option<DateTime<Utc>>,
}

impl Device {
    /// What an admin's device list says: `active`, `revoked`, `wipe ordered`,
    /// `wipe sent` or `wiped`.
    pub fn status(&self) -> &'static str {
        match (&self.wipe, self.revoked) {
            (
                WipeState {
                    wiped_at: Some(_), ..
                },
                _,
            ) => "wiped",
            (
                WipeState {
                    sent_at: Some(_), ..
                },
                _,
            ) => "wipe sent",
            (
                WipeState {
                    ordered_at: Some(_),
                    ..
                },
                _,
            ) => "wipe ordered",
            (_, true) => "revoked",
            (_, false) => "active",
        }
    }

    /// The time of the step [`Device::status`] names (enrolment when active).
    pub fn status_at(&self) -> DateTime<Utc> {
        self.wipe
            .wiped_at
            .or(self.wipe.sent_at)
            .or(self.wipe.ordered_at)
            .or(self.revoked_at)
            .unwrap_or(self.enrolled_at)
    }
}

/// What a new device brings to enrolment.
#[derive(Clone, Debug)]
pub struct NewDevice {
    pub token_hash: [u8; 32],
    pub actor: [u8; 16],
    pub label: String,
}

/// Who may see which records; computed by the policy module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Records the user created or is assigned to.
    Own(String),
    /// Records of a team.
    Team(String),
    /// No records at all.
    Nothing,
}

/// Who a record belongs to, as access decisions need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    pub id: RecordId,
    /// The user whose device created it.
    pub owner: String,
    /// The owner's team when it was created.
    pub team: Option<String>,
    pub assigned_to: Option<String>,
}

/// A record as stored.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub meta: RecordMeta,
    /// The compacted Automerge document.
    pub doc: Vec<u8>,
    /// Sorted heads, concatenated.
    pub heads: Vec<u8>,
}

/// One record's part of a push, ready to store.
#[derive(Clone, Debug)]
pub struct RecordWrite {
    pub meta: RecordMeta,
    /// The review status, for lists.
    pub status: String,
    pub doc: Vec<u8>,
    pub heads: Vec<u8>,
    /// The heads the record had when the write was prepared (`None`: it was new). If
    /// they changed meanwhile the whole batch is refused as stale and redone.
    pub expected_heads: Option<Vec<u8>>,
    /// Changes the server did not have: (hash, bytes), in causal order.
    pub new_changes: Vec<([u8; 32], Vec<u8>)>,
    /// Users who lose sight of this record with this write (reassignment).
    pub revoked_from: Vec<String>,
    /// The record's summary after this write, stored with it in the same transaction.
    pub summary: RecordSummary,
}

/// An entry of the change log, as pulled.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub seq: u64,
    pub record: RecordId,
    pub bytes: Vec<u8>,
    /// When this server stored the change (its clock, milliseconds since the epoch);
    /// `None` for changes stored before it kept receipts (schema 9).
    pub received_at: Option<i64>,
}

/// One page of what a device lacks.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// Wanted records that are missing or not in scope (the two look the same).
    pub unavailable: Vec<RecordId>,
    pub docs: Vec<(RecordId, Vec<u8>)>,
    /// The server's receipts (milliseconds) of each document's changes, one list per
    /// document in `docs`, each ordered by change hash.
    pub doc_receipts: Vec<Vec<Option<i64>>>,
    pub changes: Vec<LogEntry>,
    pub removed: Vec<RecordId>,
    /// Records erased for good since the cursor that the user could see.
    pub erased: Vec<RecordId>,
    pub cursor: u64,
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0} already exists")]
    Exists(String),
    #[error("a record changed while the push was prepared")]
    Stale,
    /// An enrolment offered an actor id already bound to another user's device. An
    /// actor is bound to one user for good: changes it signed are that user's, and
    /// binding it to someone else would hand them that history.
    #[error("this device's actor id belongs to another user")]
    ActorTaken,
    /// A dashboard form's one-time token was already used: another post of the same
    /// form (a double tap, a retry) was stored first. Nothing of this write is stored;
    /// the first post's answer stands ([`Storage::used_form`]).
    #[error("this form was posted already")]
    FormUsed,
    #[error("storage: {0}")]
    Backend(String),
    /// Disk full (issue 13): a write met `SQLITE_FULL` (SQLite's answer to `ENOSPC` on
    /// the database, its WAL or a temporary file) or `ENOSPC` itself. The transaction
    /// rolled back whole: nothing of it is stored. Transient: the same request succeeds
    /// once space is freed.
    #[error("storage full: {0}")]
    Full(String),
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        // `sqlcipher_export` (backups) reports a full disk inside the SQL function as
        // a plain SQLITE_ERROR carrying SQLITE_FULL's own text.
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
            || e.to_string().contains("database or disk is full")
        {
            StorageError::Full(e.to_string())
        } else {
            StorageError::Backend(e.to_string())
        }
    }
}

impl StorageError {
    /// An I/O error on `path`: `ENOSPC` is [`StorageError::Full`], anything else a
    /// backend failure. (For file writes outside SQLite: backups, key files.)
    pub fn io(path: &std::path::Path, e: std::io::Error) -> StorageError {
        if e.kind() == std::io::ErrorKind::StorageFull {
            StorageError::Full(format!("{}: {e}", path.display()))
        } else {
            StorageError::Backend(format!("{}: {e}", path.display()))
        }
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// The counters one attempt was counted on: each key with the end of its window.
pub type Counted = Vec<([u8; 32], i64)>;

/// Attempt counters shared by every server process on one database (issue 14), for
/// the limiters of `auth.rs` and `web/limiter.rs`: a key is the SHA-256 of what is
/// counted, with its limit, in fixed windows of `window_secs`.
pub trait SharedAttempts: Send + Sync {
    /// Counts one attempt against every key, all or none: the keys with the end of the
    /// window each was counted in (to give back), or `Err(seconds to wait)` when one of
    /// them is at its limit. Check and count are one step, under the keys' locks.
    fn take(
        &self,
        keys: &[([u8; 32], u32)],
        window_secs: i64,
        now: i64,
    ) -> Result<std::result::Result<Counted, u64>>;
    /// Gives back what [`SharedAttempts::take`] counted (a right code or password),
    /// in the windows it was counted in.
    fn give_back(&self, counted: &[([u8; 32], i64)]) -> Result<()>;
}

/// What sync needs: accounts, enrolment, devices and tokens, records, the change log
/// and its pages, uploads in pieces, receipts. (The PostgreSQL backend, issue 14, was
/// built and tested on this part first.)
pub trait SyncStorage: Send + Sync + 'static {
    /// This store's id: random, made when the database was created and replaced by
    /// `intake-server restore`, so devices can tell that the server was rolled back to
    /// a backup (every sync answer carries it).
    fn store_id(&self) -> &str;

    /// The attempt counters every server on this database shares, or `None` when the
    /// store has one server only (SQLite: `serve` holds the data directory's lock), so
    /// that the limiters count in the process's memory.
    fn shared_attempts(&self) -> Option<std::sync::Arc<dyn SharedAttempts>>;

    // Every write a dashboard or admin action makes has an `_audited` form that stores
    // the action's [`Audit`] (its entry, and a form's one-time token) in the write's
    // own transaction; the plain form stores the write alone (the CLI, sync).

    // Users.
    fn create_user(&self, name: &str, role: Role, team: Option<&str>) -> Result<User> {
        self.create_user_audited(name, role, team, None)
    }
    fn create_user_audited(
        &self,
        name: &str,
        role: Role,
        team: Option<&str>,
        audit: Option<&Audit>,
    ) -> Result<User>;
    fn user(&self, name: &str) -> Result<Option<User>>;
    fn users(&self) -> Result<Vec<User>>;
    /// Returns false when there is no such user. Disabling also ends the user's browser
    /// sessions.
    fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<bool> {
        self.set_user_disabled_audited(name, disabled, None)
    }
    fn set_user_disabled_audited(
        &self,
        name: &str,
        disabled: bool,
        audit: Option<&Audit>,
    ) -> Result<bool>;

    // Enrolment.
    fn add_enrolment_code(
        &self,
        user: &str,
        code_hash: [u8; 32],
        expires: DateTime<Utc>,
    ) -> Result<()> {
        self.add_enrolment_code_audited(user, code_hash, expires, None)
    }
    fn add_enrolment_code_audited(
        &self,
        user: &str,
        code_hash: [u8; 32],
        expires: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<()>;
    /// Redeems an unexpired, unused code for an enabled user and binds the device, in
    /// one transaction. `None` when the code is unknown, used, expired, or its user
    /// disabled.
    fn enrol(
        &self,
        code_hash: [u8; 32],
        now: DateTime<Utc>,
        device: NewDevice,
    ) -> Result<Option<(User, Device)>>;

    // Devices.
    /// The enabled user and unrevoked device of a token.
    fn principal(&self, token_hash: [u8; 32]) -> Result<Option<(User, Device)>>;
    fn devices(&self) -> Result<Vec<Device>>;
    /// Returns false when there is no such device.
    fn revoke_device(&self, id: i64) -> Result<bool> {
        self.revoke_device_audited(id, None)
    }
    fn revoke_device_audited(&self, id: i64, audit: Option<&Audit>) -> Result<bool>;
    /// Gives the live device `id` the token `new_hash`; the token that asked
    /// (`used_hash`) stays valid until `grace_until` or until the new one is first used.
    /// Returns false when the device is not live.
    fn rotate_token(
        &self,
        id: i64,
        used_hash: [u8; 32],
        new_hash: [u8; 32],
        grace_until: DateTime<Utc>,
    ) -> Result<bool>;

    // Records.
    fn record(&self, id: RecordId) -> Result<Option<StoredRecord>>;
    /// Whether `device` may still deliver edits to record `id` that its user lost
    /// sight of by a reassignment: it holds a grant the server has not closed.
    fn late_grant(&self, device: i64, id: RecordId) -> Result<bool>;
    /// Notes that a page with `cursor` told `device` that it lost these records.
    fn announce_removals(&self, device: i64, records: &[RecordId], cursor: u64) -> Result<()>;
    /// `device` sent `cursor`: it has committed every page up to there, so grants
    /// announced at or before it close.
    fn close_late_grants(&self, device: i64, cursor: u64) -> Result<()>;
    /// Keeps a piece of `device`'s upload (a new digest at offset 0 replaces its
    /// previous upload) and returns how many bytes of that upload it holds in order.
    fn put_piece(&self, device: i64, piece: &Piece) -> Result<u32>;
    /// The whole upload with `digest`, once every byte of it is held.
    fn upload(&self, device: i64, digest: &[u8; 32]) -> Result<Option<Vec<u8>>>;
    /// Forgets `device`'s upload (its bytes did not match their digest).
    fn drop_upload(&self, device: i64) -> Result<()>;
    /// Records within `scope`, most recently changed first, with their status.
    fn record_metas(&self, scope: &Scope) -> Result<Vec<(RecordMeta, String)>>;
    /// Stores a push durably in one transaction and returns the new log position.
    fn write(&self, writes: &[RecordWrite], device: i64) -> Result<u64> {
        self.write_audited(writes, device, None)
    }
    /// [`Storage::write`] with a dashboard action's [`Audit`] in the same transaction.
    /// A form token already used refuses the whole write ([`StorageError::FormUsed`]).
    fn write_audited(
        &self,
        writes: &[RecordWrite],
        device: i64,
        audit: Option<&Audit>,
    ) -> Result<u64>;
    /// One page of what a device at `cursor` lacks: whole documents when `cursor` is 0,
    /// else changes (not those `device` sent) — in both cases only within `scope` —
    /// plus records `user` lost sight of. `want_docs` come first, each once, within
    /// the budget like everything else; those not in scope are named `unavailable`.
    /// Every page holds at least one item when one is waiting, even one larger than the
    /// budget (the sync engine sends that one in pieces to devices that take them).
    fn pull(&self, req: &PullRequest<'_>) -> Result<Page>;

    // Clock skew (issue 13).
    /// When the server stored each of a record's changes (its clock), by change hash.
    /// Changes stored before the server kept receipts are missing.
    fn receipts(&self, id: RecordId) -> Result<HashMap<[u8; 32], DateTime<Utc>>>;
}

/// Everything the server keeps: [`SyncStorage`] and the rest (lost phones, the
/// dashboard's index, passwords, sessions, the audit trail, erasure and retention).
pub trait Storage: SyncStorage {
    // Lost phones (issue 12).
    /// Revokes the device (if it is not already) and orders it to wipe its store on its
    /// next contact. Returns false when there is no such device.
    fn order_wipe(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        self.order_wipe_audited(id, now, None)
    }
    fn order_wipe_audited(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<bool>;
    /// Whether the token belongs to a device under a wipe order it has not confirmed;
    /// if so, records that the order was sent (the first time).
    fn wipe_order(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<bool>;
    /// Records the device's confirmation that it wiped its store (idempotent: the first
    /// time counts). `None` when the token is of no device under a wipe order.
    fn confirm_wipe(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<Option<i64>>;

    // The record index (what lists and summaries read instead of documents).
    /// One page of the records within `scope` that match `filter`, most recently
    /// written first, and how many match in all.
    fn list_records(
        &self,
        scope: &Scope,
        filter: &ListFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Listed>, usize)>;
    /// Every record within `scope` that matches `filter`, most recently written first
    /// (for summaries).
    fn listed_all(&self, scope: &Scope, filter: &ListFilter) -> Result<Vec<Listed>>;
    /// The stored records within `scope` that match `filter`, most recently written
    /// first (for exports).
    fn records_matching(&self, scope: &Scope, filter: &ListFilter) -> Result<Vec<StoredRecord>>;
    /// Records within `scope` that probably describe the same person: groups of more
    /// than one with the same non-empty `name_key`, the same `birth_year` and the same
    /// `municipality` (unknown counts as the same, like any value). Groups in
    /// `name_key` order, each most recently written first.
    fn duplicate_groups(&self, scope: &Scope) -> Result<Vec<Vec<Listed>>>;
    /// Links two records so that each shows the other; linking again changes nothing.
    /// Both must exist; a record is not linked to itself.
    fn link_records(&self, a: RecordId, b: RecordId, by: &str, at: DateTime<Utc>) -> Result<()> {
        self.link_records_audited(a, b, by, at, None)
    }
    fn link_records_audited(
        &self,
        a: RecordId,
        b: RecordId,
        by: &str,
        at: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<()>;
    /// The records linked to `id`, whatever their scope: the caller shows only those
    /// the user may see.
    fn linked(&self, id: RecordId) -> Result<Vec<RecordId>>;
    /// Up to `limit` stored records that have no summary yet (stored before the index
    /// existed).
    fn unindexed(&self, limit: usize) -> Result<Vec<StoredRecord>>;
    /// Sets the summaries of stored records, in one transaction.
    fn set_summaries(&self, summaries: &[(RecordId, RecordSummary)]) -> Result<()>;
    /// Sets one stored record's summary.
    fn set_summary(&self, id: RecordId, summary: &RecordSummary) -> Result<()> {
        self.set_summaries(&[(id, summary.clone())])
    }

    // Passwords: the server hashes (Argon2id); storage keeps PHC strings.
    /// Removes the user's password, ends their browser sessions and stores a new
    /// one-time code (earlier unused codes of the user no longer work). False: no user.
    fn reset_password(
        &self,
        user: &str,
        code_hash: [u8; 32],
        expires: DateTime<Utc>,
    ) -> Result<bool> {
        self.reset_password_audited(user, code_hash, expires, None)
    }
    fn reset_password_audited(
        &self,
        user: &str,
        code_hash: [u8; 32],
        expires: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<bool>;
    /// Redeems an unused, unexpired code of an enabled user: sets the password to `phc`
    /// and marks the code used, in one transaction. `None` when the code is unknown,
    /// used, expired, or its user disabled.
    fn redeem_password_code(
        &self,
        code_hash: [u8; 32],
        now: DateTime<Utc>,
        phc: &str,
    ) -> Result<Option<User>>;
    /// An enabled user and their password's PHC string, if they have one.
    fn password(&self, user: &str) -> Result<Option<(User, String)>>;

    // Browser sessions.
    /// Starts a session for an enabled user (`None`: no such enabled user). The first
    /// time — and again after an admin revoked it — this creates the user's dashboard
    /// device: a device with a random actor and a token hash nobody holds, labelled
    /// [`DASHBOARD_LABEL`].
    fn create_session(
        &self,
        token_hash: [u8; 32],
        user: &str,
        csrf: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<Option<WebSession>>;
    /// The live session of a token, noting that it was seen now. `None` when the token
    /// is unknown, the session expired or ended, its user disabled, or its device
    /// revoked.
    fn session(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<Option<WebSession>>;
    /// Moves a session's expiry (idle expiry is the caller's policy).
    fn extend_session(&self, id: i64, expires: DateTime<Utc>) -> Result<()>;
    /// Ends the session of a token (sign-out); an unknown token is no error.
    fn end_session(&self, token_hash: [u8; 32]) -> Result<()>;

    // Audit trail.
    /// Appends an entry; entries are never changed or removed. (Reads and refusals;
    /// a write's entry goes with the write, through its `_audited` form.)
    fn audit(&self, entry: &AuditEntry) -> Result<()>;
    /// The answer the first submission of a dashboard form with this one-time token got
    /// (`user`'s forms only); `None` when it was never stored.
    fn used_form(&self, user: &str, token: &str) -> Result<Option<String>>;
    /// One page of the entries matching `filter`, newest first, with their sequence
    /// numbers, and how many match in all.
    fn audit_entries(
        &self,
        filter: &AuditFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<(i64, AuditEntry)>, usize)>;

    /// Every device (revoked ones too) by its actor (hex): its id, user and label, to
    /// say who made a change and on which device.
    fn device_users(&self) -> Result<HashMap<String, (i64, String, String)>>;

    // Erasure and retention (`crate::erase`, `crate::retention` decide and audit).
    /// Erases each record for good, in one transaction with its audit entry: its
    /// document, every log entry, its index row, links, late grants, pending upload
    /// pieces and reassignment rows. Each erasure takes a new log position, which
    /// devices whose user could see the record are told in (`Page::erased`). Returns,
    /// per record, that position, or `None` when it was erased already. A record not
    /// stored here is marked erased all the same (a database restored from a backup
    /// older than the record must not take it back from a device). Afterwards no copy
    /// of the erased pages is left in the database file or its write-ahead log (secure
    /// delete, then a checkpoint).
    fn erase(&self, erasures: &[(RecordId, AuditEntry)]) -> Result<Vec<Option<u64>>>;
    /// Whether `id` was erased: a push to it is refused, never stored again.
    fn erased(&self, id: RecordId) -> Result<bool>;
    /// Every erased record, in erasure order (to erase them again in a database
    /// restored from a backup made before).
    fn erased_ids(&self) -> Result<Vec<RecordId>>;
    /// Records closed at or before `cutoff` (server time), and since when, oldest first.
    fn closed_before(&self, cutoff: DateTime<Utc>) -> Result<Vec<(RecordId, DateTime<Utc>)>>;
    /// The tables that still hold a row naming `id`, beyond the audit trail and the
    /// erasure itself: empty for an erased record.
    fn traces(&self, id: RecordId) -> Result<Vec<&'static str>>;
}

/// The arguments of [`Storage::pull`].
#[derive(Clone, Debug)]
pub struct PullRequest<'a> {
    pub scope: &'a Scope,
    pub user: &'a str,
    pub device: i64,
    pub cursor: u64,
    pub budget: usize,
    pub want_docs: &'a [RecordId],
}
