//! Erasure and retention on PostgreSQL: removing every row of a record for good, in one
//! transaction with its audit entry, and telling devices in log order.
//!
//! An erasure takes its log position from `log_head` like a write (under the same row
//! lock), so the head never goes back when a record's last entries go, and a reader
//! never passes an erasure still being committed. Unlike SQLite (`secure_delete` and a
//! checkpoint), PostgreSQL leaves the deleted rows' bytes in dead tuples until a vacuum
//! reuses their space, and in its write-ahead log until recycled: `docs/SECURITY.md`
//! says what that means for erasure on PostgreSQL.

use chrono::{DateTime, Utc};
use intake_shared::RecordId;
use postgres::Client;

use super::audit::insert_audit;
use super::{key, rid};
use crate::storage::{AuditEntry, Result};

pub(super) fn erase(
    client: &mut Client,
    erasures: &[(RecordId, AuditEntry)],
) -> Result<Vec<Option<u64>>> {
    let mut tx = client.transaction()?;
    let mut head: i64 = tx
        .query_one("SELECT seq FROM log_head FOR UPDATE", &[])?
        .get(0);
    let mut out = Vec::with_capacity(erasures.len());
    let mut erased: Vec<Vec<u8>> = Vec::new();
    for (id, entry) in erasures {
        let k = key(*id);
        if tx
            .query_opt("SELECT 1 FROM erasures WHERE record_id = $1", &[&k])?
            .is_some()
        {
            out.push(None);
            continue;
        }
        // A record this database does not hold (a backup restored from before it was
        // made) is still marked erased, so that no device can bring it back; nobody is
        // told, as nobody here could see it.
        let (owner, team, assigned_to): (String, Option<String>, Option<String>) = tx
            .query_opt(
                "SELECT owner, team, assigned_to FROM records WHERE id = $1",
                &[&k],
            )?
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .unwrap_or_default();
        head += 1;
        let seq = head;
        tx.execute(
            "INSERT INTO erasures (seq, record_id, owner, team, assigned_to, erased_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &seq,
                &k,
                &owner,
                &team,
                &assigned_to,
                &entry.at.timestamp_millis(),
            ],
        )?;
        // Users reassigned away from it may still hold it: they are told too.
        tx.execute(
            r#"INSERT INTO erasure_users (seq, "user")
               SELECT $1, "user" FROM access_revoked WHERE record_id = $2
               ON CONFLICT DO NOTHING"#,
            &[&seq, &k],
        )?;
        for sql in [
            "DELETE FROM access_revoked WHERE record_id = $1",
            "DELETE FROM late_grants WHERE record_id = $1",
            "DELETE FROM upload_pieces WHERE device_id IN (SELECT device_id FROM uploads WHERE record_id = $1)",
            "DELETE FROM uploads WHERE record_id = $1",
            "DELETE FROM record_links WHERE a = $1 OR b = $1",
            "DELETE FROM record_index WHERE record_id = $1",
            "DELETE FROM records WHERE id = $1",
        ] {
            tx.execute(sql, &[&k])?;
        }
        insert_audit(&mut tx, entry)?;
        erased.push(k);
        out.push(Some(seq as u64));
    }
    if !erased.is_empty() {
        // One scan of the log for the whole batch (it has no index by record).
        tx.execute("DELETE FROM log WHERE record_id = ANY($1)", &[&erased])?;
        tx.execute("UPDATE log_head SET seq = $1", &[&head])?;
    }
    tx.commit()?;
    Ok(out)
}

pub(super) fn erased(client: &mut Client, id: RecordId) -> Result<bool> {
    Ok(client
        .query_opt("SELECT 1 FROM erasures WHERE record_id = $1", &[&key(id)])?
        .is_some())
}

pub(super) fn erased_ids(client: &mut Client) -> Result<Vec<RecordId>> {
    client
        .query("SELECT record_id FROM erasures ORDER BY seq", &[])?
        .iter()
        .map(|r| rid(r.get(0)))
        .collect()
}

pub(super) fn closed_before(
    client: &mut Client,
    cutoff: DateTime<Utc>,
) -> Result<Vec<(RecordId, DateTime<Utc>)>> {
    client
        .query(
            "SELECT record_id, closed_at FROM record_index
             WHERE closed_at IS NOT NULL AND closed_at <= $1 ORDER BY closed_at",
            &[&cutoff.timestamp_millis()],
        )?
        .iter()
        .map(|r| {
            Ok((
                rid(r.get(0))?,
                DateTime::from_timestamp_millis(r.get(1)).unwrap_or_default(),
            ))
        })
        .collect()
}

pub(super) fn traces(client: &mut Client, id: RecordId) -> Result<Vec<&'static str>> {
    let k = key(id);
    let mut found = Vec::new();
    for (table, sql) in [
        ("records", "SELECT 1 FROM records WHERE id = $1"),
        (
            "record_index",
            "SELECT 1 FROM record_index WHERE record_id = $1",
        ),
        ("log", "SELECT 1 FROM log WHERE record_id = $1"),
        (
            "access_revoked",
            "SELECT 1 FROM access_revoked WHERE record_id = $1",
        ),
        (
            "late_grants",
            "SELECT 1 FROM late_grants WHERE record_id = $1",
        ),
        ("uploads", "SELECT 1 FROM uploads WHERE record_id = $1"),
        (
            "record_links",
            "SELECT 1 FROM record_links WHERE a = $1 OR b = $1",
        ),
    ] {
        if client
            .query_opt(&format!("{sql} LIMIT 1"), &[&k])?
            .is_some()
        {
            found.push(table);
        }
    }
    Ok(found)
}
