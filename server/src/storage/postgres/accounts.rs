//! Dashboard sign-in and lost phones on PostgreSQL: passwords (PHC strings) set through
//! one-time codes, browser sessions with each user's server-side dashboard device, and
//! wipe orders (issue 12). The same rules as SQLite's `accounts.rs` and `wipe.rs`.

use chrono::{DateTime, Utc};
use postgres::{Client, Transaction};

use super::audit::audit_with;
use super::{DEVICE_COLUMNS, USER_COLUMNS, device_row, from_ts, ts, user_row};
use crate::storage::{Audit, DASHBOARD_LABEL, Device, Result, StorageError, User, WebSession};

/// Ends every live session of a user, in the caller's transaction.
fn end_sessions_of(tx: &mut Transaction<'_>, user_id: i64, now: DateTime<Utc>) -> Result<()> {
    tx.execute(
        "UPDATE web_sessions SET ended_at = $2 WHERE ended_at IS NULL AND user_id = $1",
        &[&user_id, &ts(now)],
    )?;
    Ok(())
}

pub(super) fn reset_password(
    client: &mut Client,
    user: &str,
    code_hash: [u8; 32],
    expires: DateTime<Utc>,
    audit: Option<&Audit>,
) -> Result<bool> {
    let mut tx = client.transaction()?;
    let Some(row) = tx.query_opt("SELECT id FROM users WHERE name = $1 FOR UPDATE", &[&user])?
    else {
        return Ok(false);
    };
    let id: i64 = row.get(0);
    tx.execute("DELETE FROM passwords WHERE user_id = $1", &[&id])?;
    // Only the newest code works: a code shown to the wrong person is superseded.
    tx.execute(
        "DELETE FROM password_codes WHERE user_id = $1 AND used_at IS NULL",
        &[&id],
    )?;
    tx.execute(
        "INSERT INTO password_codes (code_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        &[&&code_hash[..], &id, &ts(expires)],
    )?;
    end_sessions_of(&mut tx, id, Utc::now())?;
    audit_with(&mut tx, audit)?;
    tx.commit()?;
    Ok(true)
}

pub(super) fn redeem_password_code(
    client: &mut Client,
    code_hash: [u8; 32],
    now: DateTime<Utc>,
    phc: &str,
) -> Result<Option<User>> {
    let mut tx = client.transaction()?;
    // Locked: two servers redeeming the same code at once take turns.
    let user = tx
        .query_opt(
            &format!(
                "SELECT {USER_COLUMNS} FROM password_codes c JOIN users u ON u.id = c.user_id
                 WHERE c.code_hash = $1 AND c.used_at IS NULL AND c.expires_at > $2
                   AND NOT u.disabled
                 FOR UPDATE OF c"
            ),
            &[&&code_hash[..], &ts(now)],
        )?
        .map(|r| user_row(&r, 0));
    let Some(user) = user else { return Ok(None) };
    tx.execute(
        "UPDATE password_codes SET used_at = $2 WHERE code_hash = $1",
        &[&&code_hash[..], &ts(now)],
    )?;
    tx.execute(
        "INSERT INTO passwords (user_id, phc, set_at) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, set_at = excluded.set_at",
        &[&user.id, &phc, &ts(now)],
    )?;
    tx.commit()?;
    Ok(Some(user))
}

pub(super) fn password(client: &mut Client, user: &str) -> Result<Option<(User, String)>> {
    Ok(client
        .query_opt(
            &format!(
                "SELECT {USER_COLUMNS}, p.phc FROM users u JOIN passwords p ON p.user_id = u.id
                 WHERE u.name = $1 AND NOT u.disabled"
            ),
            &[&user],
        )?
        .map(|r| (user_row(&r, 0), r.get(5))))
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| StorageError::Backend(format!("no random bytes: {e}")))?;
    Ok(bytes)
}

/// The user's live dashboard device, created when she has none. The caller holds the
/// user's row locked, so two servers signing her in at once make one device.
fn dashboard_device(tx: &mut Transaction<'_>, user: &User, now: DateTime<Utc>) -> Result<Device> {
    let select = format!(
        "SELECT {DEVICE_COLUMNS} FROM devices d JOIN users u ON u.id = d.user_id
         WHERE d.user_id = $1 AND d.dashboard AND d.revoked_at IS NULL"
    );
    if let Some(r) = tx.query_opt(&select, &[&user.id])? {
        return Ok(device_row(&r, 0));
    }
    // A random token hash: no token hashes to it, so the device never syncs; it exists
    // to bind an actor to the user, like a phone's.
    tx.execute(
        "INSERT INTO devices (user_id, token_hash, actor, label, enrolled_at, dashboard)
         VALUES ($1, $2, $3, $4, $5, TRUE)",
        &[
            &user.id,
            &&random::<32>()?[..],
            &&random::<16>()?[..],
            &DASHBOARD_LABEL,
            &ts(now),
        ],
    )?;
    Ok(device_row(&tx.query_one(&select, &[&user.id])?, 0))
}

pub(super) fn create_session(
    client: &mut Client,
    token_hash: [u8; 32],
    user: &str,
    csrf: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<Option<WebSession>> {
    let mut tx = client.transaction()?;
    let user = tx
        .query_opt(
            &format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE u.name = $1 AND NOT u.disabled
                 FOR UPDATE"
            ),
            &[&user],
        )?
        .map(|r| user_row(&r, 0));
    let Some(user) = user else { return Ok(None) };
    let device = dashboard_device(&mut tx, &user, now)?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO web_sessions (token_hash, user_id, device_id, csrf, created_at, last_seen, expires_at)
             VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING id",
            &[&&token_hash[..], &user.id, &device.id, &csrf, &ts(now), &ts(expires)],
        )?
        .get(0);
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

/// How stale `last_seen` may get before a request writes it (as in SQLite).
const LAST_SEEN_GRAIN_SECONDS: i64 = 60;

pub(super) fn session(
    client: &mut Client,
    token_hash: [u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<WebSession>> {
    let found = client.query_opt(
        &format!(
            "SELECT s.id, s.csrf, s.created_at, s.expires_at, s.last_seen, {USER_COLUMNS}, {DEVICE_COLUMNS}
             FROM web_sessions s JOIN users u ON u.id = s.user_id JOIN devices d ON d.id = s.device_id
             WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2
               AND NOT u.disabled AND d.revoked_at IS NULL"
        ),
        &[&&token_hash[..], &ts(now)],
    )?;
    let Some(r) = found else { return Ok(None) };
    let session = WebSession {
        id: r.get(0),
        csrf: r.get(1),
        created_at: from_ts(r.get(2)),
        expires_at: from_ts(r.get(3)),
        user: user_row(&r, 5),
        device: device_row(&r, 10),
    };
    let last_seen: i64 = r.get(4);
    if ts(now) - last_seen >= LAST_SEEN_GRAIN_SECONDS {
        client.execute(
            "UPDATE web_sessions SET last_seen = $2 WHERE id = $1",
            &[&session.id, &ts(now)],
        )?;
    }
    Ok(Some(session))
}

pub(super) fn extend_session(client: &mut Client, id: i64, expires: DateTime<Utc>) -> Result<()> {
    client.execute(
        "UPDATE web_sessions SET expires_at = $2 WHERE id = $1 AND ended_at IS NULL",
        &[&id, &ts(expires)],
    )?;
    Ok(())
}

pub(super) fn end_session(client: &mut Client, token_hash: [u8; 32]) -> Result<()> {
    client.execute(
        "UPDATE web_sessions SET ended_at = $2 WHERE token_hash = $1 AND ended_at IS NULL",
        &[&&token_hash[..], &ts(Utc::now())],
    )?;
    Ok(())
}

pub(super) fn order_wipe(
    client: &mut Client,
    id: i64,
    now: DateTime<Utc>,
    audit: Option<&Audit>,
) -> Result<bool> {
    let mut tx = client.transaction()?;
    // A device revoked earlier keeps its revocation time; a second order keeps the
    // first one's.
    let found = tx.execute(
        "UPDATE devices SET revoked_at = coalesce(revoked_at, $2),
                            wipe_ordered_at = coalesce(wipe_ordered_at, $2)
         WHERE id = $1",
        &[&id, &ts(now)],
    )? > 0;
    if found {
        audit_with(&mut tx, audit)?;
    }
    tx.commit()?;
    Ok(found)
}

pub(super) fn wipe_order(
    client: &mut Client,
    token_hash: [u8; 32],
    now: DateTime<Utc>,
) -> Result<bool> {
    // Whatever the user's state: a disabled user's lost phone must still be wiped.
    Ok(client.execute(
        "UPDATE devices SET wipe_sent_at = coalesce(wipe_sent_at, $2)
         WHERE token_hash = $1 AND wipe_ordered_at IS NOT NULL AND wiped_at IS NULL",
        &[&&token_hash[..], &ts(now)],
    )? > 0)
}

pub(super) fn confirm_wipe(
    client: &mut Client,
    token_hash: [u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    // A confirmation implies the order reached the device.
    Ok(client
        .query_opt(
            "UPDATE devices SET wiped_at = coalesce(wiped_at, $2),
                                wipe_sent_at = coalesce(wipe_sent_at, $2)
             WHERE token_hash = $1 AND wipe_ordered_at IS NOT NULL
             RETURNING id",
            &[&&token_hash[..], &ts(now)],
        )?
        .map(|r| r.get(0)))
}
