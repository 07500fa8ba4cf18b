//! Wipe orders for lost phones in SQLite (issue 12): an admin's order, the time the
//! server first gave it to the device, and the device's confirmation. The three times
//! live on the device's row; a wipe order always comes with a revocation, so the token
//! opens nothing else while the order stands.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::ts;
use crate::storage::{Audit, Result};

pub(super) fn order_wipe(
    conn: &mut Connection,
    id: i64,
    now: DateTime<Utc>,
    audit: Option<&Audit>,
) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // A device revoked earlier keeps its revocation time; a second order keeps the
    // first one's.
    let found = tx.execute(
        "UPDATE devices SET revoked_at = coalesce(revoked_at, ?2),
                            wipe_ordered_at = coalesce(wipe_ordered_at, ?2)
         WHERE id = ?1",
        params![id, ts(now)],
    )? > 0;
    if found {
        super::audit::with(&tx, audit)?;
    }
    tx.commit()?;
    Ok(found)
}

pub(super) fn wipe_order(
    conn: &Connection,
    token_hash: [u8; 32],
    now: DateTime<Utc>,
) -> Result<bool> {
    // Whatever the user's state: a disabled user's lost phone must still be wiped.
    Ok(conn.execute(
        "UPDATE devices SET wipe_sent_at = coalesce(wipe_sent_at, ?2)
         WHERE token_hash = ?1 AND wipe_ordered_at IS NOT NULL AND wiped_at IS NULL",
        params![token_hash.to_vec(), ts(now)],
    )? > 0)
}

pub(super) fn confirm_wipe(
    conn: &Connection,
    token_hash: [u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    // A confirmation implies the order reached the device, even if the answer that
    // carried it was never recorded (it always is; this keeps the times consistent).
    Ok(conn
        .query_row(
            "UPDATE devices SET wiped_at = coalesce(wiped_at, ?2),
                                wipe_sent_at = coalesce(wipe_sent_at, ?2)
             WHERE token_hash = ?1 AND wipe_ordered_at IS NOT NULL
             RETURNING id",
            params![token_hash.to_vec(), ts(now)],
            |r| r.get(0),
        )
        .optional()?)
}
