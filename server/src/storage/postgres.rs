//! The PostgreSQL storage (issue 14), for installations that run several stateless
//! servers on one database. [`PgStorage`] implements [`SyncStorage`] here (accounts,
//! enrolment, devices, records, the change log and its pages, uploads, receipts) and
//! the rest of [`Storage`] in its submodules: [`listing`] (the record index, links, the
//! audit trail's reads), [`accounts`] (passwords, sessions, wipe orders), [`erasure`].
//! The storage conformance suite runs every case on both backends. The server itself
//! is not wired to it yet (`startup::check_backend` refuses a configured database).
//!
//! Blocking `postgres` client with an r2d2 pool: the storage trait is synchronous and
//! handlers call it on actix's blocking pool, like SQLite. Each call takes a pooled
//! connection for its own transaction.
//!
//! Log order is commit order: every write locks the one row of `log_head` first and
//! takes its positions from it ([`log`]); a pull serves entries up to the head its
//! snapshot saw. See `docs/ARCHITECTURE.md`, "PostgreSQL".

mod accounts;
mod erasure;
mod listing;
mod log;
pub mod schema;

use ::postgres::NoTls;
use ::postgres::error::SqlState;
use chrono::{DateTime, Utc};
use intake_shared::RecordId;
use intake_shared::protocol::Piece;
use r2d2_postgres::PostgresConnectionManager;

use super::*;
// The same cursors as SQLite's (the high bit marks the whole-documents phase), so that
// an installation moved between backends keeps its devices' cursors.
use super::sqlite::DOCS_PHASE;

type Pool = r2d2_postgres::r2d2::Pool<PostgresConnectionManager<NoTls>>;
type Conn = r2d2_postgres::r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// How many connections one server process keeps at most: actix's blocking pool runs
/// more threads than that, and a call waits for a free connection rather than opening
/// one per thread (PostgreSQL's own limit is shared by every server).
const POOL_SIZE: u32 = 16;

pub struct PgStorage {
    pool: Pool,
    store_id: String,
}

impl std::fmt::Debug for PgStorage {
    // Never the URL: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStorage")
    }
}

impl From<::postgres::Error> for StorageError {
    fn from(e: ::postgres::Error) -> Self {
        // A database error's own message and code (its `Display` says only "db
        // error"); never its detail, which can quote the row's values.
        let text = match e.as_db_error() {
            Some(db) => format!("PostgreSQL {}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        if e.code() == Some(&SqlState::DISK_FULL) {
            StorageError::Full(text)
        } else {
            StorageError::Backend(text)
        }
    }
}

fn pool_error(e: r2d2_postgres::r2d2::Error) -> StorageError {
    StorageError::Backend(format!("PostgreSQL connection: {e}"))
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

fn key(id: RecordId) -> Vec<u8> {
    id.as_uuid().as_bytes().to_vec()
}

fn rid(bytes: &[u8]) -> Result<RecordId> {
    uuid::Uuid::from_slice(bytes)
        .map(RecordId::from_uuid)
        .map_err(|e| StorageError::Backend(format!("a stored record id: {e}")))
}

/// The SQL condition of a scope over `records r` (or a table with its scope columns),
/// with its parameter as `$n`.
fn scope_sql(scope: &Scope, n: usize) -> (String, Option<String>) {
    match scope {
        Scope::Own(user) => (
            format!("(r.owner = ${n} OR r.assigned_to = ${n})"),
            Some(user.clone()),
        ),
        Scope::Team(team) => (format!("r.team = ${n}"), Some(team.clone())),
        // The parameter appears in every variant so every query binds the same list.
        Scope::Nothing => (format!("(${n}::TEXT IS NULL AND FALSE)"), None),
    }
}

const USER_COLUMNS: &str = "u.id, u.name, u.role, u.team, u.disabled";

/// A user from [`USER_COLUMNS`] starting at column `at`.
fn user_row(r: &::postgres::Row, at: usize) -> User {
    let role: String = r.get(at + 2);
    User {
        id: r.get(at),
        name: r.get(at + 1),
        role: Role::parse(&role).unwrap_or(Role::Paralegal),
        team: r.get(at + 3),
        disabled: r.get(at + 4),
    }
}

const DEVICE_COLUMNS: &str =
    "d.id, u.name, d.actor, d.label, d.enrolled_at, d.revoked_at IS NOT NULL,
     d.revoked_at, d.wipe_ordered_at, d.wipe_sent_at, d.wiped_at";

fn device_row(r: &::postgres::Row, at: usize) -> Device {
    Device {
        id: r.get(at),
        user: r.get(at + 1),
        actor: hex::encode(r.get::<_, Vec<u8>>(at + 2)),
        label: r.get(at + 3),
        enrolled_at: from_ts(r.get(at + 4)),
        revoked: r.get(at + 5),
        revoked_at: r.get::<_, Option<i64>>(at + 6).map(from_ts),
        wipe: WipeState {
            ordered_at: r.get::<_, Option<i64>>(at + 7).map(from_ts),
            sent_at: r.get::<_, Option<i64>>(at + 8).map(from_ts),
            wiped_at: r.get::<_, Option<i64>>(at + 9).map(from_ts),
        },
    }
}

impl PgStorage {
    /// Connects to the database at `url` (`postgres://user:password@host/db`), migrates
    /// it to this server's schema and reads its store id. An empty database is set up
    /// from nothing; one written by a newer server is refused.
    pub fn connect(url: &str) -> Result<PgStorage> {
        // The parse error names what is wrong, never the URL (it may carry a password).
        let config: ::postgres::Config = url
            .parse()
            .map_err(|e| StorageError::Backend(format!("the PostgreSQL URL: {e}")))?;
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            // Opened on first use: a server whose database is briefly unreachable at
            // start fails its first requests, not its start.
            .min_idle(Some(0))
            .build(manager)
            .map_err(pool_error)?;
        let mut conn = pool.get().map_err(pool_error)?;
        schema::migrate(&mut conn)?;
        let store_id = conn
            .query_one("SELECT store_id FROM store_identity", &[])?
            .get(0);
        drop(conn);
        Ok(PgStorage { pool, store_id })
    }

    fn conn(&self) -> Result<Conn> {
        self.pool.get().map_err(pool_error)
    }
}

impl SyncStorage for PgStorage {
    fn store_id(&self) -> &str {
        &self.store_id
    }

    fn create_user_audited(
        &self,
        name: &str,
        role: Role,
        team: Option<&str>,
        audit: Option<&Audit>,
    ) -> Result<User> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let row = tx.query_opt(
            "INSERT INTO users (name, role, team, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING RETURNING id",
            &[&name, &role.as_str(), &team, &ts(Utc::now())],
        )?;
        let Some(row) = row else {
            return Err(StorageError::Exists(format!("user {name}")));
        };
        let user = User {
            id: row.get(0),
            name: name.into(),
            role,
            team: team.map(Into::into),
            disabled: false,
        };
        log::audit_with(&mut tx, audit)?;
        tx.commit()?;
        Ok(user)
    }

    fn user(&self, name: &str) -> Result<Option<User>> {
        Ok(self
            .conn()?
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = $1"),
                &[&name],
            )?
            .map(|r| user_row(&r, 0)))
    }

    fn users(&self) -> Result<Vec<User>> {
        Ok(self
            .conn()?
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.name"),
                &[],
            )?
            .iter()
            .map(|r| user_row(r, 0))
            .collect())
    }

    fn set_user_disabled_audited(
        &self,
        name: &str,
        disabled: bool,
        audit: Option<&Audit>,
    ) -> Result<bool> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let found = tx.execute(
            "UPDATE users SET disabled = $2 WHERE name = $1",
            &[&name, &disabled],
        )? > 0;
        if found && disabled {
            // A disabled user's browsers are signed out for good, not just refused
            // while she is disabled (as in SQLite).
            tx.execute(
                "UPDATE web_sessions SET ended_at = $2
                 WHERE ended_at IS NULL AND user_id = (SELECT id FROM users WHERE name = $1)",
                &[&name, &ts(Utc::now())],
            )?;
        }
        if found {
            log::audit_with(&mut tx, audit)?;
        }
        tx.commit()?;
        Ok(found)
    }

    fn add_enrolment_code_audited(
        &self,
        user: &str,
        code_hash: [u8; 32],
        expires: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let n = tx.execute(
            "INSERT INTO enrolment_codes (code_hash, user_id, expires_at)
             SELECT $1, id, $3 FROM users WHERE name = $2",
            &[&&code_hash[..], &user, &ts(expires)],
        )?;
        if n == 0 {
            return Err(StorageError::Backend(format!("no user {user}")));
        }
        log::audit_with(&mut tx, audit)?;
        tx.commit()?;
        Ok(())
    }

    fn enrol(
        &self,
        code_hash: [u8; 32],
        now: DateTime<Utc>,
        device: NewDevice,
    ) -> Result<Option<(User, Device)>> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // `FOR UPDATE OF c`: two servers redeeming the same code at once take turns,
        // and the second finds it used.
        let user = tx
            .query_opt(
                &format!(
                    "SELECT {USER_COLUMNS} FROM enrolment_codes c JOIN users u ON u.id = c.user_id
                     WHERE c.code_hash = $1 AND c.used_at IS NULL AND c.expires_at > $2
                       AND NOT u.disabled
                     FOR UPDATE OF c"
                ),
                &[&&code_hash[..], &ts(now)],
            )?
            .map(|r| user_row(&r, 0));
        let Some(user) = user else { return Ok(None) };
        // Checked before the code is spent, so a refused device's code stays usable
        // once the phone's store has been reset (a new store has a new actor).
        let other = tx.query_opt(
            "SELECT user_id FROM devices WHERE actor = $1 AND user_id != $2 LIMIT 1",
            &[&&device.actor[..], &user.id],
        )?;
        if other.is_some() {
            return Err(StorageError::ActorTaken);
        }
        tx.execute(
            "UPDATE enrolment_codes SET used_at = $2 WHERE code_hash = $1",
            &[&&code_hash[..], &ts(now)],
        )?;
        let inserted = tx.query_one(
            "INSERT INTO devices (user_id, token_hash, actor, label, enrolled_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &user.id,
                &&device.token_hash[..],
                &&device.actor[..],
                &device.label,
                &ts(now),
            ],
        );
        let id: i64 = match inserted {
            Ok(row) => row.get(0),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Err(StorageError::Exists("a device with this actor id".into()));
            }
            Err(e) => return Err(e.into()),
        };
        let dev = tx.query_one(
            &format!(
                "SELECT {DEVICE_COLUMNS} FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = $1"
            ),
            &[&id],
        )?;
        let dev = device_row(&dev, 0);
        tx.commit()?;
        Ok(Some((user, dev)))
    }

    fn principal(&self, token_hash: [u8; 32]) -> Result<Option<(User, Device)>> {
        let mut conn = self.conn()?;
        let found = conn.query_opt(
            &format!(
                "SELECT d.token_hash = $1, d.prev_token_hash IS NOT NULL, {USER_COLUMNS}, {DEVICE_COLUMNS}
                 FROM devices d JOIN users u ON u.id = d.user_id
                 WHERE (d.token_hash = $1 OR (d.prev_token_hash = $1 AND d.prev_token_until > $2))
                   AND d.revoked_at IS NULL AND NOT u.disabled"
            ),
            &[&&token_hash[..], &ts(Utc::now())],
        )?;
        let Some(r) = found else { return Ok(None) };
        let (current, grace): (bool, bool) = (r.get(0), r.get(1));
        let (user, device) = (user_row(&r, 2), device_row(&r, 7));
        if current && grace {
            // The first request with the current token ends the grace period of the
            // previous one: the device has the new one.
            conn.execute(
                "UPDATE devices SET prev_token_hash = NULL, prev_token_until = NULL WHERE id = $1",
                &[&device.id],
            )?;
        }
        Ok(Some((user, device)))
    }

    fn devices(&self) -> Result<Vec<Device>> {
        Ok(self
            .conn()?
            .query(
                &format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices d JOIN users u ON u.id = d.user_id ORDER BY d.id"
                ),
                &[],
            )?
            .iter()
            .map(|r| device_row(r, 0))
            .collect())
    }

    fn revoke_device_audited(&self, id: i64, audit: Option<&Audit>) -> Result<bool> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let found = tx.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
            &[&id, &ts(Utc::now())],
        )? > 0;
        if found {
            log::audit_with(&mut tx, audit)?;
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
        Ok(self.conn()?.execute(
            "UPDATE devices SET prev_token_hash = $2, prev_token_until = $4, token_hash = $3
             WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &&used_hash[..], &&new_hash[..], &ts(grace_until)],
        )? > 0)
    }

    fn record(&self, id: RecordId) -> Result<Option<StoredRecord>> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT owner, team, assigned_to, doc, heads FROM records WHERE id = $1",
                &[&key(id)],
            )?
            .map(|r| StoredRecord {
                meta: RecordMeta {
                    id,
                    owner: r.get(0),
                    team: r.get(1),
                    assigned_to: r.get(2),
                },
                doc: r.get(3),
                heads: r.get(4),
            }))
    }

    fn late_grant(&self, device: i64, id: RecordId) -> Result<bool> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT 1 FROM late_grants WHERE device_id = $1 AND record_id = $2 AND NOT closed",
                &[&device, &key(id)],
            )?
            .is_some())
    }

    fn announce_removals(&self, device: i64, records: &[RecordId], cursor: u64) -> Result<()> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        for id in records {
            // The first page that told the device counts; a page repeated after a cut
            // announces nothing new.
            tx.execute(
                "UPDATE late_grants SET announced = $3
                 WHERE device_id = $1 AND record_id = $2 AND announced IS NULL",
                &[&device, &key(*id), &(cursor as i64)],
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
        // One statement: nearly every request has nothing to close, and an UPDATE that
        // matches no row costs PostgreSQL no durable commit.
        self.conn()?.execute(
            "UPDATE late_grants SET closed = TRUE
             WHERE device_id = $1 AND NOT closed AND announced IS NOT NULL AND announced <= $2",
            &[&device, &(cursor as i64)],
        )?;
        Ok(())
    }

    fn put_piece(&self, device: i64, piece: &Piece) -> Result<u32> {
        log::put_piece(&mut *self.conn()?, device, piece)
    }

    fn upload(&self, device: i64, digest: &[u8; 32]) -> Result<Option<Vec<u8>>> {
        let mut conn = self.conn()?;
        let whole = conn.query_opt(
            "SELECT total, have FROM uploads WHERE device_id = $1 AND digest = $2",
            &[&device, &&digest[..]],
        )?;
        let Some((total, have)) = whole
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
            .filter(|(t, h)| t == h)
        else {
            return Ok(None);
        };
        let mut bytes = Vec::with_capacity(total as usize);
        for r in conn.query(
            r#"SELECT bytes FROM upload_pieces WHERE device_id = $1 AND "offset" < $2 ORDER BY "offset""#,
            &[&device, &have],
        )? {
            bytes.extend_from_slice(r.get::<_, &[u8]>(0));
        }
        Ok((bytes.len() as i64 == total).then_some(bytes))
    }

    fn drop_upload(&self, device: i64) -> Result<()> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute("DELETE FROM upload_pieces WHERE device_id = $1", &[&device])?;
        tx.execute("DELETE FROM uploads WHERE device_id = $1", &[&device])?;
        tx.commit()?;
        Ok(())
    }

    fn record_metas(&self, scope: &Scope) -> Result<Vec<(RecordMeta, String)>> {
        let (cond, param) = scope_sql(scope, 1);
        self.conn()?
            .query(
                &format!(
                    "SELECT r.id, r.owner, r.team, r.assigned_to, r.status FROM records r
                     WHERE {cond} ORDER BY r.last_seq DESC"
                ),
                &[&param],
            )?
            .iter()
            .map(|r| {
                Ok((
                    RecordMeta {
                        id: rid(r.get(0))?,
                        owner: r.get(1),
                        team: r.get(2),
                        assigned_to: r.get(3),
                    },
                    r.get(4),
                ))
            })
            .collect()
    }

    fn write_audited(
        &self,
        writes: &[RecordWrite],
        device: i64,
        audit: Option<&Audit>,
    ) -> Result<u64> {
        log::write(&mut *self.conn()?, writes, device, audit)
    }

    fn pull(&self, req: &PullRequest<'_>) -> Result<Page> {
        log::pull(&mut *self.conn()?, req)
    }

    fn receipts(&self, id: RecordId) -> Result<HashMap<[u8; 32], DateTime<Utc>>> {
        let rows = self.conn()?.query(
            "SELECT hash, received_at FROM log WHERE record_id = $1 AND received_at IS NOT NULL",
            &[&key(id)],
        )?;
        let mut out = HashMap::new();
        for r in rows {
            let hash: &[u8] = r.get(0);
            if let (Ok(hash), Some(at)) = (
                <[u8; 32]>::try_from(hash),
                DateTime::from_timestamp_millis(r.get(1)),
            ) {
                out.insert(hash, at);
            }
        }
        Ok(out)
    }
}

impl Storage for PgStorage {
    fn order_wipe_audited(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<bool> {
        accounts::order_wipe(&mut *self.conn()?, id, now, audit)
    }

    fn wipe_order(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<bool> {
        accounts::wipe_order(&mut *self.conn()?, token_hash, now)
    }

    fn confirm_wipe(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<Option<i64>> {
        accounts::confirm_wipe(&mut *self.conn()?, token_hash, now)
    }

    fn list_records(
        &self,
        scope: &Scope,
        filter: &ListFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Listed>, usize)> {
        listing::list(&mut *self.conn()?, scope, filter, offset, limit)
    }

    fn listed_all(&self, scope: &Scope, filter: &ListFilter) -> Result<Vec<Listed>> {
        listing::listed_all(&mut *self.conn()?, scope, filter)
    }

    fn records_matching(&self, scope: &Scope, filter: &ListFilter) -> Result<Vec<StoredRecord>> {
        listing::records_matching(&mut *self.conn()?, scope, filter)
    }

    fn duplicate_groups(&self, scope: &Scope) -> Result<Vec<Vec<Listed>>> {
        listing::duplicate_groups(&mut *self.conn()?, scope)
    }

    fn link_records_audited(
        &self,
        a: RecordId,
        b: RecordId,
        by: &str,
        at: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<()> {
        listing::link(&mut *self.conn()?, a, b, by, at, audit)
    }

    fn linked(&self, id: RecordId) -> Result<Vec<RecordId>> {
        listing::linked(&mut *self.conn()?, id)
    }

    fn unindexed(&self, limit: usize) -> Result<Vec<StoredRecord>> {
        listing::unindexed(&mut *self.conn()?, limit)
    }

    fn set_summaries(&self, summaries: &[(RecordId, RecordSummary)]) -> Result<()> {
        listing::set_summaries(&mut *self.conn()?, summaries)
    }

    fn reset_password_audited(
        &self,
        user: &str,
        code_hash: [u8; 32],
        expires: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<bool> {
        accounts::reset_password(&mut *self.conn()?, user, code_hash, expires, audit)
    }

    fn redeem_password_code(
        &self,
        code_hash: [u8; 32],
        now: DateTime<Utc>,
        phc: &str,
    ) -> Result<Option<User>> {
        accounts::redeem_password_code(&mut *self.conn()?, code_hash, now, phc)
    }

    fn password(&self, user: &str) -> Result<Option<(User, String)>> {
        accounts::password(&mut *self.conn()?, user)
    }

    fn create_session(
        &self,
        token_hash: [u8; 32],
        user: &str,
        csrf: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<Option<WebSession>> {
        accounts::create_session(&mut *self.conn()?, token_hash, user, csrf, now, expires)
    }

    fn session(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<Option<WebSession>> {
        accounts::session(&mut *self.conn()?, token_hash, now)
    }

    fn extend_session(&self, id: i64, expires: DateTime<Utc>) -> Result<()> {
        accounts::extend_session(&mut *self.conn()?, id, expires)
    }

    fn end_session(&self, token_hash: [u8; 32]) -> Result<()> {
        accounts::end_session(&mut *self.conn()?, token_hash)
    }

    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        listing::append_audit(&mut *self.conn()?, entry)
    }

    fn used_form(&self, user: &str, token: &str) -> Result<Option<String>> {
        listing::used_form(&mut *self.conn()?, user, token)
    }

    fn audit_entries(
        &self,
        filter: &AuditFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<(i64, AuditEntry)>, usize)> {
        listing::audit_entries(&mut *self.conn()?, filter, offset, limit)
    }

    fn device_users(&self) -> Result<HashMap<String, (i64, String, String)>> {
        // An actor re-enrolled after a revocation belongs to two rows; the newer wins.
        Ok(self
            .conn()?
            .query(
                "SELECT d.actor, d.id, u.name, d.label FROM devices d JOIN users u ON u.id = d.user_id
                 ORDER BY d.id",
                &[],
            )?
            .iter()
            .map(|r| {
                (
                    hex::encode(r.get::<_, &[u8]>(0)),
                    (r.get(1), r.get(2), r.get(3)),
                )
            })
            .collect())
    }

    fn erase(&self, erasures: &[(RecordId, AuditEntry)]) -> Result<Vec<Option<u64>>> {
        erasure::erase(&mut *self.conn()?, erasures)
    }

    fn erased(&self, id: RecordId) -> Result<bool> {
        erasure::erased(&mut *self.conn()?, id)
    }

    fn erased_ids(&self) -> Result<Vec<RecordId>> {
        erasure::erased_ids(&mut *self.conn()?)
    }

    fn closed_before(&self, cutoff: DateTime<Utc>) -> Result<Vec<(RecordId, DateTime<Utc>)>> {
        erasure::closed_before(&mut *self.conn()?, cutoff)
    }

    fn traces(&self, id: RecordId) -> Result<Vec<&'static str>> {
        erasure::traces(&mut *self.conn()?, id)
    }
}
