//! Erasure and retention in SQLite: removing everything of a record for good, telling
//! devices in log order, and finding records closed long enough ago.
//!
//! The log has no index by record (every pushed change would pay for one), so a batch
//! of erasures scans it once. The log head must never go back when a record's last
//! entries go: each erasure takes a position from the log's own AUTOINCREMENT sequence
//! (a marker row inserted and deleted at once), kept in `erasures.seq`, and the head is
//! the larger of the two tables' last positions ([`head`]).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, named_params, params};

use super::{audit, key, rid, scope_sql};
use intake_shared::RecordId;

use crate::storage::{AuditEntry, Result, Scope};

/// The log position everything up to which a device may have pulled: the last change
/// or erasure, whichever is later.
pub(super) fn head(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT max(coalesce((SELECT max(seq) FROM log), 0),
                    coalesce((SELECT max(seq) FROM erasures), 0))",
    )?
    .query_row([], |r| r.get(0))
}

/// Whether `id` was erased (inside a write: a push prepared before an erasure must
/// not bring the record back).
pub(super) fn is_erased(conn: &Connection, id: RecordId) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM erasures WHERE record_id = ?1")?
        .query_row([key(id)], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn erase(
    conn: &mut Connection,
    erasures: &[(RecordId, AuditEntry)],
) -> Result<Vec<Option<u64>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut out = Vec::with_capacity(erasures.len());
    let mut erased = Vec::new();
    for (id, entry) in erasures {
        let k = key(*id);
        if is_erased(&tx, *id)? {
            out.push(None);
            continue;
        }
        // A record this database does not hold (a backup restored from before it was
        // made) is still marked erased, so that no device can bring it back; nobody is
        // told, as nobody here could see it.
        let (owner, team, assigned_to): (String, Option<String>, Option<String>) = tx
            .query_row(
                "SELECT owner, team, assigned_to FROM records WHERE id = ?1",
                [&k],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .unwrap_or_default();
        // A new position from the log's sequence: the marker row holds nothing and
        // goes with the record's own entries below.
        tx.execute(
            "INSERT INTO log (record_id, hash, device_id, bytes) VALUES (?1, randomblob(32), 0, x'')",
            [&k],
        )?;
        let seq = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO erasures (seq, record_id, owner, team, assigned_to, erased_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                seq,
                &k,
                owner,
                team,
                assigned_to,
                entry.at.timestamp_millis()
            ],
        )?;
        // Users reassigned away from it may still hold it: they are told too.
        tx.execute(
            "INSERT OR IGNORE INTO erasure_users (seq, user)
             SELECT ?1, user FROM access_revoked WHERE record_id = ?2",
            params![seq, &k],
        )?;
        for sql in [
            "DELETE FROM access_revoked WHERE record_id = ?1",
            "DELETE FROM late_grants WHERE record_id = ?1",
            "DELETE FROM upload_pieces WHERE device_id IN (SELECT device_id FROM uploads WHERE record_id = ?1)",
            "DELETE FROM uploads WHERE record_id = ?1",
            "DELETE FROM record_links WHERE a = ?1 OR b = ?1",
            "DELETE FROM record_index WHERE record_id = ?1",
            "DELETE FROM records WHERE id = ?1",
        ] {
            tx.execute(sql, [&k])?;
        }
        audit::insert(&tx, entry)?;
        erased.push(k);
        out.push(Some(seq as u64));
    }
    if !erased.is_empty() {
        // One scan of the log for the whole batch (see the module's doc).
        tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS erasing (record_id BLOB PRIMARY KEY)")?;
        {
            let mut put = tx.prepare("INSERT OR IGNORE INTO erasing (record_id) VALUES (?1)")?;
            for k in &erased {
                put.execute([k])?;
            }
        }
        tx.execute(
            "DELETE FROM log WHERE record_id IN (SELECT record_id FROM erasing)",
            [],
        )?;
        tx.execute("DELETE FROM erasing", [])?;
    }
    tx.commit()?;
    if !erased.is_empty() {
        checkpoint(conn);
    }
    Ok(out)
}

/// Copies the write-ahead log into the database and truncates it, so that no copy of
/// an erased record's pages stays in the log (`secure_delete` has zeroed them in the
/// database). A reader holding an old snapshot can keep it from completing: it is
/// then done by SQLite's next automatic checkpoint, and said in the server's log.
fn checkpoint(conn: &Connection) {
    let done = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    match done {
        Ok(0) => {}
        Ok(_) => tracing::warn!("the checkpoint after an erasure was blocked by a reader"),
        Err(e) => tracing::warn!(error = %e, "the checkpoint after an erasure failed"),
    }
}

pub(super) fn erased_ids(conn: &Connection) -> Result<Vec<RecordId>> {
    let mut stmt = conn.prepare("SELECT record_id FROM erasures ORDER BY seq")?;
    let ids = stmt
        .query_map([], |r| rid(r.get(0)?))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

pub(super) fn closed_before(
    conn: &Connection,
    cutoff: DateTime<Utc>,
) -> Result<Vec<(RecordId, DateTime<Utc>)>> {
    let mut stmt = conn.prepare(
        "SELECT record_id, closed_at FROM record_index
         WHERE closed_at IS NOT NULL AND closed_at <= ?1 ORDER BY closed_at",
    )?;
    let rows = stmt
        .query_map([cutoff.timestamp_millis()], |r| {
            Ok((
                rid(r.get(0)?)?,
                DateTime::from_timestamp_millis(r.get(1)?).unwrap_or_default(),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

pub(super) fn traces(conn: &Connection, id: RecordId) -> Result<Vec<&'static str>> {
    let k = key(id);
    let mut found = Vec::new();
    for (table, sql) in [
        ("records", "SELECT 1 FROM records WHERE id = ?1"),
        (
            "record_index",
            "SELECT 1 FROM record_index WHERE record_id = ?1",
        ),
        ("log", "SELECT 1 FROM log WHERE record_id = ?1"),
        (
            "access_revoked",
            "SELECT 1 FROM access_revoked WHERE record_id = ?1",
        ),
        (
            "late_grants",
            "SELECT 1 FROM late_grants WHERE record_id = ?1",
        ),
        ("uploads", "SELECT 1 FROM uploads WHERE record_id = ?1"),
        (
            "record_links",
            "SELECT 1 FROM record_links WHERE a = ?1 OR b = ?1",
        ),
    ] {
        if conn
            .query_row(&format!("{sql} LIMIT 1"), [&k], |_| Ok(()))
            .optional()?
            .is_some()
        {
            found.push(table);
        }
    }
    Ok(found)
}

/// Records erased in `(after, position]` that the user could see: by the scope's rule
/// over who the record belonged to when it was erased, or because the user was
/// reassigned away from it (their device may still hold it).
pub(super) fn erased_between(
    conn: &Connection,
    scope: &Scope,
    user: &str,
    after: i64,
    position: i64,
) -> rusqlite::Result<Vec<RecordId>> {
    let (cond, param) = scope_sql(scope);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT r.record_id, r.seq FROM erasures r
         WHERE r.seq > :after AND r.seq <= :position AND {cond}
         UNION
         SELECT e.record_id, e.seq FROM erasure_users u JOIN erasures e ON e.seq = u.seq
         WHERE u.user = :user AND u.seq > :after AND u.seq <= :position
         ORDER BY 2"
    ))?;
    stmt.query_map(
        named_params! {":after": after, ":position": position, ":scope": param, ":user": user},
        |r| rid(r.get(0)?),
    )?
    .collect()
}
