//! The audit trail on PostgreSQL: `audit` holds one row per entry, `audit_records` the
//! records each names (in order); triggers in the schema refuse every UPDATE, DELETE
//! and TRUNCATE of either. A write's entry and its form's one-time token are stored in
//! the write's own transaction ([`audit_with`]).

use postgres::{Client, Transaction};

use super::listing::{Param, from_ms, limit_sql, refs};
use super::{key, rid};
use crate::storage::{Audit, AuditEntry, AuditFilter, Result, StorageError};

/// Stores a write's [`Audit`] inside the write's transaction: its entry, and its form's
/// one-time token. A token already used is [`StorageError::FormUsed`]: the caller's
/// transaction rolls back, so the write is not stored twice.
pub(super) fn audit_with(tx: &mut Transaction<'_>, audit: Option<&Audit>) -> Result<()> {
    let Some(audit) = audit else { return Ok(()) };
    if let Some(form) = &audit.form {
        let n = tx.execute(
            r#"INSERT INTO used_forms (token, "user", answer, at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (token) DO NOTHING"#,
            &[
                &form.token,
                &audit.entry.user.as_deref().unwrap_or(""),
                &form.answer,
                &audit.entry.at.timestamp_millis(),
            ],
        )?;
        if n == 0 {
            return Err(StorageError::FormUsed);
        }
        // Kept while its form can still be posted (a session lives 12 hours at most),
        // forgotten a day on, as SQLite does.
        tx.execute(
            "DELETE FROM used_forms WHERE at < $1",
            &[&(audit.entry.at.timestamp_millis() - 24 * 60 * 60 * 1000)],
        )?;
    }
    insert_audit(tx, &audit.entry)
}

/// Appends an audit entry inside the caller's transaction.
pub(super) fn insert_audit(tx: &mut Transaction<'_>, e: &AuditEntry) -> Result<()> {
    let seq: i64 = tx
        .query_one(
            r#"INSERT INTO audit (at, "user", device_id, session_id, action, scope, peer)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq"#,
            &[
                &e.at.timestamp_millis(),
                &e.user,
                &e.device,
                &e.session,
                &e.action,
                &e.scope,
                &e.peer,
            ],
        )?
        .get(0);
    for (pos, id) in e.records.iter().enumerate() {
        tx.execute(
            "INSERT INTO audit_records (seq, pos, record_id) VALUES ($1, $2, $3)",
            &[&seq, &(pos as i64), &key(*id)],
        )?;
    }
    Ok(())
}

/// Appends a read's or a refusal's entry on its own.
pub(super) fn append_audit(client: &mut Client, e: &AuditEntry) -> Result<()> {
    let mut tx = client.transaction()?;
    insert_audit(&mut tx, e)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn used_form(client: &mut Client, user: &str, token: &str) -> Result<Option<String>> {
    Ok(client
        .query_opt(
            r#"SELECT answer FROM used_forms WHERE token = $1 AND "user" = $2"#,
            &[&token, &user],
        )?
        .map(|r| r.get(0)))
}

pub(super) fn audit_entries(
    client: &mut Client,
    filter: &AuditFilter,
    offset: usize,
    limit: usize,
) -> Result<(Vec<(i64, AuditEntry)>, usize)> {
    let mut sql = String::from("TRUE");
    let mut params: Vec<Param> = Vec::new();
    let mut and = |cond: &str, p: Param| {
        params.push(p);
        sql.push_str(&format!(" AND {cond}{}", params.len()));
    };
    if let Some(user) = &filter.user {
        and(r#"a."user" = $"#, Box::new(user.clone()));
    }
    if let Some(action) = &filter.action {
        and("a.action = $", Box::new(action.clone()));
    }
    if let Some(record) = filter.record {
        params.push(Box::new(key(record)));
        sql.push_str(&format!(
            " AND a.seq IN (SELECT seq FROM audit_records WHERE record_id = ${})",
            params.len()
        ));
    }
    if let Some(from) = filter.from {
        params.push(Box::new(from.timestamp_millis()));
        sql.push_str(&format!(" AND a.at >= ${}", params.len()));
    }
    if let Some(to) = filter.to {
        params.push(Box::new(to.timestamp_millis()));
        sql.push_str(&format!(" AND a.at <= ${}", params.len()));
    }
    // One snapshot: the page and the total agree.
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let total: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM audit a WHERE {sql}"),
            &refs(&params),
        )?
        .get(0);
    let n = params.len();
    params.push(Box::new(limit_sql(limit)));
    params.push(Box::new(limit_sql(offset)));
    let mut page: Vec<(i64, AuditEntry)> = tx
        .query(
            &format!(
                r#"SELECT a.seq, a.at, a."user", a.device_id, a.session_id, a.action, a.scope, a.peer
                   FROM audit a WHERE {sql} ORDER BY a.seq DESC LIMIT ${} OFFSET ${}"#,
                n + 1,
                n + 2
            ),
            &refs(&params),
        )?
        .iter()
        .map(|r| {
            (
                r.get(0),
                AuditEntry {
                    at: from_ms(r.get(1)),
                    user: r.get(2),
                    device: r.get(3),
                    session: r.get(4),
                    action: r.get(5),
                    scope: r.get(6),
                    records: Vec::new(),
                    peer: r.get(7),
                },
            )
        })
        .collect();
    let records = tx.prepare("SELECT record_id FROM audit_records WHERE seq = $1 ORDER BY pos")?;
    for (seq, entry) in &mut page {
        entry.records = tx
            .query(&records, &[seq])?
            .iter()
            .map(|r| rid(r.get(0)))
            .collect::<Result<_>>()?;
    }
    tx.commit()?;
    Ok((page, total as usize))
}
