//! The audit trail in SQLite: `audit` holds one row per entry, `audit_records` the
//! records each names (in order, indexed by record for "who touched this case").
//! Triggers in the schema refuse every UPDATE and DELETE of either table.

use chrono::{DateTime, Utc};
use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{key, rid};
use crate::storage::{Audit, AuditEntry, AuditFilter, Result, StorageError};

/// How long a used form token is kept (a day, in milliseconds): longer than any
/// dashboard session lives, so a form can never be posted after its token is gone.
const FORM_TOKENS_KEPT_MS: i64 = 24 * 60 * 60 * 1000;

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(super) fn append(conn: &mut Connection, e: &AuditEntry) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    insert(&tx, e)?;
    tx.commit()?;
    Ok(())
}

/// Stores a write's [`Audit`] inside the write's transaction: its entry, and its form's
/// one-time token. A token already used is [`StorageError::FormUsed`]: the caller's
/// transaction rolls back, so the write is not stored twice.
pub(super) fn with(tx: &Connection, audit: Option<&Audit>) -> Result<()> {
    let Some(audit) = audit else { return Ok(()) };
    if let Some(form) = &audit.form {
        let n = tx.execute(
            "INSERT INTO used_forms (token, user, answer, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (token) DO NOTHING",
            params![
                form.token,
                audit.entry.user.as_deref().unwrap_or(""),
                form.answer,
                audit.entry.at.timestamp_millis()
            ],
        )?;
        if n == 0 {
            return Err(StorageError::FormUsed);
        }
        // A token matters while its form can still be posted: for the life of the
        // session that rendered it (12 hours at most). A day on, it is forgotten.
        tx.execute(
            "DELETE FROM used_forms WHERE at < ?1",
            [audit.entry.at.timestamp_millis() - FORM_TOKENS_KEPT_MS],
        )?;
    }
    insert(tx, &audit.entry)
}

/// The answer a used form token got, for `user`'s forms only.
pub(super) fn used_form(conn: &Connection, user: &str, token: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT answer FROM used_forms WHERE token = ?1 AND user = ?2",
            params![token, user],
            |r| r.get(0),
        )
        .optional()?)
}

/// Appends an entry inside the caller's transaction (an erasure and its entry are
/// written together).
pub(super) fn insert(tx: &Connection, e: &AuditEntry) -> Result<()> {
    tx.execute(
        "INSERT INTO audit (at, user, device_id, session_id, action, scope, peer)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            e.at.timestamp_millis(),
            e.user,
            e.device,
            e.session,
            e.action,
            e.scope,
            e.peer
        ],
    )?;
    let seq = tx.last_insert_rowid();
    let mut insert =
        tx.prepare_cached("INSERT INTO audit_records (seq, pos, record_id) VALUES (?1, ?2, ?3)")?;
    for (pos, id) in e.records.iter().enumerate() {
        insert.execute(params![seq, pos as i64, key(*id)])?;
    }
    Ok(())
}

pub(super) fn entries(
    conn: &Connection,
    filter: &AuditFilter,
    offset: usize,
    limit: usize,
) -> Result<(Vec<(i64, AuditEntry)>, usize)> {
    let mut sql = String::from("1");
    let mut params: Vec<(&str, Box<dyn ToSql>)> = Vec::new();
    if let Some(user) = &filter.user {
        sql.push_str(" AND a.user = :user");
        params.push((":user", Box::new(user.clone())));
    }
    if let Some(action) = &filter.action {
        sql.push_str(" AND a.action = :action");
        params.push((":action", Box::new(action.clone())));
    }
    if let Some(record) = filter.record {
        sql.push_str(" AND a.seq IN (SELECT seq FROM audit_records WHERE record_id = :record)");
        params.push((":record", Box::new(key(record))));
    }
    if let Some(from) = filter.from {
        sql.push_str(" AND a.at >= :from");
        params.push((":from", Box::new(from.timestamp_millis())));
    }
    if let Some(to) = filter.to {
        sql.push_str(" AND a.at <= :to");
        params.push((":to", Box::new(to.timestamp_millis())));
    }
    let mut bound: Vec<(&str, &dyn ToSql)> = params.iter().map(|(n, v)| (*n, v.as_ref())).collect();

    // One read transaction: the page and the total come from the same snapshot.
    let tx = conn.unchecked_transaction()?;
    let total: i64 = tx.query_row(
        &format!("SELECT count(*) FROM audit a WHERE {sql}"),
        &*bound,
        |r| r.get(0),
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    bound.push((":limit", &limit));
    bound.push((":offset", &offset));
    let mut page: Vec<(i64, AuditEntry)> = tx
        .prepare(&format!(
            "SELECT a.seq, a.at, a.user, a.device_id, a.session_id, a.action, a.scope, a.peer
             FROM audit a WHERE {sql} ORDER BY a.seq DESC LIMIT :limit OFFSET :offset"
        ))?
        .query_map(&*bound, |r| {
            Ok((
                r.get(0)?,
                AuditEntry {
                    at: from_ms(r.get(1)?),
                    user: r.get(2)?,
                    device: r.get(3)?,
                    session: r.get(4)?,
                    action: r.get(5)?,
                    scope: r.get(6)?,
                    records: Vec::new(),
                    peer: r.get(7)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    {
        let mut records =
            tx.prepare_cached("SELECT record_id FROM audit_records WHERE seq = ?1 ORDER BY pos")?;
        for (seq, entry) in &mut page {
            entry.records = records
                .query_map([*seq], |r| rid(r.get(0)?))?
                .collect::<rusqlite::Result<_>>()?;
        }
    }
    tx.finish()?;
    Ok((page, total as usize))
}
