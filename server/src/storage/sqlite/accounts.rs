//! Dashboard sign-in in SQLite: passwords (PHC strings) set through one-time codes,
//! browser sessions, and each user's server-side dashboard device.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::{DEVICE_COLUMNS, USER_COLUMNS, device_row, from_ts, ts, user_row, user_row_at};
use crate::storage::{Audit, DASHBOARD_LABEL, Device, Result, StorageError, User, WebSession};

/// Ends every live session of a user, in the caller's transaction.
pub(super) fn end_sessions_of(tx: &Transaction<'_>, user: &str, now: DateTime<Utc>) -> Result<()> {
    tx.execute(
        "UPDATE web_sessions SET ended_at = ?2
         WHERE ended_at IS NULL AND user_id = (SELECT id FROM users WHERE name = ?1)",
        params![user, ts(now)],
    )?;
    Ok(())
}

pub(super) fn set_user_disabled(
    conn: &mut Connection,
    name: &str,
    disabled: bool,
    audit: Option<&Audit>,
) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = tx.execute(
        "UPDATE users SET disabled = ?2 WHERE name = ?1",
        params![name, disabled],
    )? > 0;
    if found && disabled {
        // A disabled user's browsers are signed out for good, not just refused while
        // she is disabled: enabling her again does not bring old cookies back.
        end_sessions_of(&tx, name, Utc::now())?;
    }
    if found {
        super::audit::with(&tx, audit)?;
    }
    tx.commit()?;
    Ok(found)
}

pub(super) fn reset_password(
    conn: &mut Connection,
    user: &str,
    code_hash: [u8; 32],
    expires: DateTime<Utc>,
    audit: Option<&Audit>,
) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let id: Option<i64> = tx
        .query_row("SELECT id FROM users WHERE name = ?1", [user], |r| r.get(0))
        .optional()?;
    let Some(id) = id else { return Ok(false) };
    tx.execute("DELETE FROM passwords WHERE user_id = ?1", [id])?;
    // Only the newest code works: a code shown to the wrong person is superseded.
    tx.execute(
        "DELETE FROM password_codes WHERE user_id = ?1 AND used_at IS NULL",
        [id],
    )?;
    tx.execute(
        "INSERT INTO password_codes (code_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![code_hash.to_vec(), id, ts(expires)],
    )?;
    end_sessions_of(&tx, user, Utc::now())?;
    super::audit::with(&tx, audit)?;
    tx.commit()?;
    Ok(true)
}

pub(super) fn redeem_password_code(
    conn: &mut Connection,
    code_hash: [u8; 32],
    now: DateTime<Utc>,
    phc: &str,
) -> Result<Option<User>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let user = tx
        .query_row(
            &format!(
                "SELECT {USER_COLUMNS} FROM password_codes c JOIN users u ON u.id = c.user_id
                 WHERE c.code_hash = ?1 AND c.used_at IS NULL AND c.expires_at > ?2 AND NOT u.disabled"
            ),
            params![code_hash.to_vec(), ts(now)],
            user_row,
        )
        .optional()?;
    let Some(user) = user else { return Ok(None) };
    tx.execute(
        "UPDATE password_codes SET used_at = ?2 WHERE code_hash = ?1",
        params![code_hash.to_vec(), ts(now)],
    )?;
    tx.execute(
        "INSERT INTO passwords (user_id, phc, set_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, set_at = excluded.set_at",
        params![user.id, phc, ts(now)],
    )?;
    tx.commit()?;
    Ok(Some(user))
}

pub(super) fn password(conn: &Connection, user: &str) -> Result<Option<(User, String)>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {USER_COLUMNS}, p.phc FROM users u JOIN passwords p ON p.user_id = u.id
                 WHERE u.name = ?1 AND NOT u.disabled"
            ),
            [user],
            |r| Ok((user_row(r)?, r.get(5)?)),
        )
        .optional()?)
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| StorageError::Backend(format!("no random bytes: {e}")))?;
    Ok(bytes)
}

/// The user's live dashboard device, created when she has none.
fn dashboard_device(tx: &Transaction<'_>, user: &User, now: DateTime<Utc>) -> Result<Device> {
    let select = format!(
        "SELECT {DEVICE_COLUMNS} FROM devices d JOIN users u ON u.id = d.user_id
         WHERE d.user_id = ?1 AND d.dashboard AND d.revoked_at IS NULL"
    );
    if let Some(device) = tx
        .query_row(&select, [user.id], |r| device_row(r, 0))
        .optional()?
    {
        return Ok(device);
    }
    // A random token hash: no token hashes to it, so the device never syncs; it exists
    // to bind an actor to the user, like a phone's.
    tx.execute(
        "INSERT INTO devices (user_id, token_hash, actor, label, enrolled_at, dashboard)
         VALUES (?1, ?2, ?3, ?4, ?5, 1)",
        params![
            user.id,
            random::<32>()?.to_vec(),
            random::<16>()?.to_vec(),
            DASHBOARD_LABEL,
            ts(now)
        ],
    )?;
    Ok(tx.query_row(&select, [user.id], |r| device_row(r, 0))?)
}

pub(super) fn create_session(
    conn: &mut Connection,
    token_hash: [u8; 32],
    user: &str,
    csrf: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<Option<WebSession>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let user = tx
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = ?1 AND NOT u.disabled"),
            [user],
            user_row,
        )
        .optional()?;
    let Some(user) = user else { return Ok(None) };
    let device = dashboard_device(&tx, &user, now)?;
    tx.execute(
        "INSERT INTO web_sessions (token_hash, user_id, device_id, csrf, created_at, last_seen, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        params![token_hash.to_vec(), user.id, device.id, csrf, ts(now), ts(expires)],
    )?;
    let id = tx.last_insert_rowid();
    tx.commit()?;
    Ok(Some(WebSession {
        id,
        user,
        device,
        csrf: csrf.into(),
        created_at: from_ts(ts(now)),
        expires_at: from_ts(ts(expires)),
    }))
}

/// How stale `last_seen` may get before a request writes it: a durable write for
/// every page view would cost each one a disk sync.
const LAST_SEEN_GRAIN_SECONDS: i64 = 60;

pub(super) fn session(
    conn: &Connection,
    token_hash: [u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<WebSession>> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT s.id, s.csrf, s.created_at, s.expires_at, s.last_seen, {USER_COLUMNS}, {DEVICE_COLUMNS}
             FROM web_sessions s JOIN users u ON u.id = s.user_id JOIN devices d ON d.id = s.device_id
             WHERE s.token_hash = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2
               AND NOT u.disabled AND d.revoked_at IS NULL"
        ))?
        .query_row(params![token_hash.to_vec(), ts(now)], |r| {
            let session = WebSession {
                id: r.get(0)?,
                csrf: r.get(1)?,
                created_at: from_ts(r.get(2)?),
                expires_at: from_ts(r.get(3)?),
                user: user_row_at(r, 5)?,
                device: device_row(r, 10)?,
            };
            Ok((session, r.get::<_, i64>(4)?))
        })
        .optional()?;
    let Some((session, last_seen)) = found else {
        return Ok(None);
    };
    if ts(now) - last_seen >= LAST_SEEN_GRAIN_SECONDS {
        conn.execute(
            "UPDATE web_sessions SET last_seen = ?2 WHERE id = ?1",
            params![session.id, ts(now)],
        )?;
    }
    Ok(Some(session))
}

pub(super) fn extend_session(conn: &Connection, id: i64, expires: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "UPDATE web_sessions SET expires_at = ?2 WHERE id = ?1 AND ended_at IS NULL",
        params![id, ts(expires)],
    )?;
    Ok(())
}

pub(super) fn end_session(conn: &Connection, token_hash: [u8; 32]) -> Result<()> {
    conn.execute(
        "UPDATE web_sessions SET ended_at = ?2 WHERE token_hash = ?1 AND ended_at IS NULL",
        params![token_hash.to_vec(), ts(Utc::now())],
    )?;
    Ok(())
}

/// The enabled user and live device of a token: the device's current token, or the
/// one it rotated away from while that is still in its grace period. The first request
/// with the current token ends the grace period: the device has the new one.
pub(super) fn principal(
    conn: &Connection,
    token_hash: [u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<(User, Device)>> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT d.token_hash = ?1, d.prev_token_hash IS NOT NULL, {USER_COLUMNS}, {DEVICE_COLUMNS}
             FROM devices d JOIN users u ON u.id = d.user_id
             WHERE (d.token_hash = ?1 OR (d.prev_token_hash = ?1 AND d.prev_token_until > ?2))
               AND d.revoked_at IS NULL AND NOT u.disabled"
        ))?
        .query_row(params![token_hash.to_vec(), ts(now)], |r| {
            Ok((
                user_row_at(r, 2)?,
                device_row(r, 7)?,
                r.get::<_, bool>(0)?,
                r.get::<_, bool>(1)?,
            ))
        })
        .optional()?;
    let Some((user, device, current, grace)) = found else {
        return Ok(None);
    };
    if current && grace {
        conn.execute(
            "UPDATE devices SET prev_token_hash = NULL, prev_token_until = NULL WHERE id = ?1",
            [device.id],
        )?;
    }
    Ok(Some((user, device)))
}

/// See [`crate::storage::Storage::rotate_token`]. The token that asked becomes the
/// previous one, whichever it was: after a lost answer the device still holds it, and
/// it is the only one the device can use to ask again.
pub(super) fn rotate_token(
    conn: &Connection,
    id: i64,
    used_hash: [u8; 32],
    new_hash: [u8; 32],
    grace_until: DateTime<Utc>,
) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE devices SET prev_token_hash = ?2, prev_token_until = ?4, token_hash = ?3
         WHERE id = ?1 AND revoked_at IS NULL",
        params![id, used_hash.to_vec(), new_hash.to_vec(), ts(grace_until)],
    )? > 0)
}
