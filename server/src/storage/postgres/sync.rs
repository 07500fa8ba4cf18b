//! [`SyncStorage`] on PostgreSQL: users, enrolment, devices and their tokens, records,
//! late grants and uploads here; storing a push and paging a pull in [`super::log`].
//! The same rules as SQLite's (`storage/sqlite.rs`), with row locks where SQLite's
//! single writer settled a race between servers.

use chrono::{DateTime, Utc};
use intake_shared::RecordId;
use intake_shared::protocol::Piece;

use super::*;

impl SyncStorage for PgStorage {
    fn store_id(&self) -> &str {
        &self.store_id
    }

    fn shared_attempts(&self) -> Option<std::sync::Arc<dyn SharedAttempts>> {
        Some(std::sync::Arc::new(attempts::PgAttempts {
            pool: self.pool.clone(),
        }))
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
        audit::audit_with(&mut tx, audit)?;
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
            audit::audit_with(&mut tx, audit)?;
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
        audit::audit_with(&mut tx, audit)?;
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
            audit::audit_with(&mut tx, audit)?;
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
