//! The record index in SQLite: each record's summary in `record_index`, written with
//! the record; lists, filters and duplicate hints read it joined to `records` (never a
//! document), and links between records.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use intake_shared::RecordId;
use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{key, rid, scope_sql};
use crate::storage::{
    ListFilter, Listed, RecordMeta, RecordSummary, Result, Scope, StorageError, StoredRecord,
};

/// `created_at` as stored: fixed-width UTC RFC 3339 with nanoseconds, so that text
/// order is time order and a date (`2026-11-27`) compares as the start of its day.
fn created_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn created_from_text(s: Option<String>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Writes a record's summary. `updated_at`: the time of this write, or `None` to keep
/// the row's (a summary recomputed, not a write) — a new row then gets `now`.
pub(super) fn put_summary(
    conn: &Connection,
    id: RecordId,
    s: &RecordSummary,
    updated_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let keep = updated_at.is_none();
    let updated = updated_at.unwrap_or(now).timestamp_millis();
    conn.prepare_cached(
        "INSERT INTO record_index (record_id, form, created_at, updated_at, name_key, birth_year,
             municipality, community, gender, issue_type, urgency, has_conflicts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (record_id) DO UPDATE SET form = excluded.form,
             created_at = excluded.created_at,
             updated_at = CASE WHEN ?13 THEN record_index.updated_at ELSE excluded.updated_at END,
             name_key = excluded.name_key, birth_year = excluded.birth_year,
             municipality = excluded.municipality, community = excluded.community,
             gender = excluded.gender, issue_type = excluded.issue_type,
             urgency = excluded.urgency, has_conflicts = excluded.has_conflicts",
    )?
    .execute(params![
        key(id),
        s.form,
        s.created_at.map(created_text),
        updated,
        s.name_key,
        s.birth_year,
        s.municipality,
        s.community,
        s.gender,
        s.issue_type,
        s.urgency,
        s.has_conflicts,
        keep,
    ])?;
    Ok(())
}

/// The columns of a [`Listed`], over `records r` joined to `record_index i`.
const LISTED_COLUMNS: &str = "r.id, r.owner, r.team, r.assigned_to, r.status, i.form, i.created_at,
    i.updated_at, i.name_key, i.birth_year, i.municipality, i.community, i.gender, i.issue_type,
    i.urgency, i.has_conflicts";

fn listed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Listed> {
    Ok(Listed {
        meta: RecordMeta {
            id: rid(r.get(0)?)?,
            owner: r.get(1)?,
            team: r.get(2)?,
            assigned_to: r.get(3)?,
        },
        status: r.get(4)?,
        summary: RecordSummary {
            form: r.get(5)?,
            created_at: created_from_text(r.get(6)?),
            name_key: r.get(8)?,
            birth_year: r.get(9)?,
            municipality: r.get(10)?,
            community: r.get(11)?,
            gender: r.get(12)?,
            issue_type: r.get(13)?,
            urgency: r.get(14)?,
            has_conflicts: r.get(15)?,
        },
        updated_at: from_ms(r.get(7)?),
    })
}

/// The `WHERE` condition of a scope and a filter over `records r` and
/// `record_index i`, and its named parameters.
struct Condition {
    sql: String,
    params: Vec<(&'static str, Box<dyn ToSql>)>,
}

impl Condition {
    fn new(scope: &Scope, filter: &ListFilter) -> Condition {
        let (scope_cond, scope_param) = scope_sql(scope);
        let mut sql = scope_cond.to_string();
        let mut params: Vec<(&'static str, Box<dyn ToSql>)> =
            vec![(":scope", Box::new(scope_param))];
        let mut equal = |column: &str, name: &'static str, value: &Option<String>| {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {column} = {name}"));
                params.push((name, Box::new(v.clone())));
            }
        };
        equal("r.status", ":status", &filter.status);
        equal("i.municipality", ":municipality", &filter.municipality);
        equal("i.issue_type", ":issue_type", &filter.issue_type);
        equal("i.urgency", ":urgency", &filter.urgency);
        if let Some(p) = &filter.paralegal {
            sql.push_str(" AND (r.owner = :paralegal OR r.assigned_to = :paralegal)");
            params.push((":paralegal", Box::new(p.clone())));
        }
        if let Some(c) = filter.has_conflicts {
            sql.push_str(" AND i.has_conflicts = :conflicts");
            params.push((":conflicts", Box::new(c)));
        }
        // A date compares as the start of its day with the stored text (see
        // `created_text`); the end is the start of the next day, exclusive.
        if let Some(from) = filter.from {
            sql.push_str(" AND i.created_at >= :from");
            params.push((":from", Box::new(day(from))));
        }
        if let Some(to) = filter.to {
            sql.push_str(" AND i.created_at < :to");
            let next = to
                .succ_opt()
                .map(day)
                .unwrap_or_else(|| "9999-99-99".into());
            params.push((":to", Box::new(next)));
        }
        if let Some(name) = &filter.name {
            let folded = intake_shared::fold(name);
            if !folded.is_empty() {
                sql.push_str(" AND instr(i.name_key, :name) > 0");
                params.push((":name", Box::new(folded)));
            }
        }
        Condition { sql, params }
    }

    fn params(&self) -> Vec<(&str, &dyn ToSql)> {
        self.params.iter().map(|(n, v)| (*n, v.as_ref())).collect()
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn limit_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(super) fn list(
    conn: &Connection,
    scope: &Scope,
    filter: &ListFilter,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Listed>, usize)> {
    let cond = Condition::new(scope, filter);
    // One read transaction: the page and the total come from the same snapshot.
    let tx = conn.unchecked_transaction()?;
    let total: i64 = tx.query_row(
        &format!(
            "SELECT count(*) FROM records r JOIN record_index i ON i.record_id = r.id WHERE {}",
            cond.sql
        ),
        &*cond.params(),
        |r| r.get(0),
    )?;
    let mut params = cond.params();
    let (limit, offset) = (limit_sql(limit), limit_sql(offset));
    params.push((":limit", &limit));
    params.push((":offset", &offset));
    let page = tx
        .prepare(&format!(
            "SELECT {LISTED_COLUMNS} FROM records r JOIN record_index i ON i.record_id = r.id
             WHERE {} ORDER BY r.last_seq DESC LIMIT :limit OFFSET :offset",
            cond.sql
        ))?
        .query_map(&*params, listed_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    tx.finish()?;
    Ok((page, total as usize))
}

pub(super) fn listed_all(
    conn: &Connection,
    scope: &Scope,
    filter: &ListFilter,
) -> Result<Vec<Listed>> {
    let cond = Condition::new(scope, filter);
    let all = conn
        .prepare(&format!(
            "SELECT {LISTED_COLUMNS} FROM records r JOIN record_index i ON i.record_id = r.id
             WHERE {} ORDER BY r.last_seq DESC",
            cond.sql
        ))?
        .query_map(&*cond.params(), listed_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(all)
}

pub(super) fn records_matching(
    conn: &Connection,
    scope: &Scope,
    filter: &ListFilter,
) -> Result<Vec<StoredRecord>> {
    let cond = Condition::new(scope, filter);
    let records = conn
        .prepare(&format!(
            "SELECT r.id, r.owner, r.team, r.assigned_to, r.doc, r.heads
             FROM records r JOIN record_index i ON i.record_id = r.id
             WHERE {} ORDER BY r.last_seq DESC",
            cond.sql
        ))?
        .query_map(&*cond.params(), stored_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(records)
}

fn stored_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord {
        meta: RecordMeta {
            id: rid(r.get(0)?)?,
            owner: r.get(1)?,
            team: r.get(2)?,
            assigned_to: r.get(3)?,
        },
        doc: r.get(4)?,
        heads: r.get(5)?,
    })
}

pub(super) fn duplicate_groups(conn: &Connection, scope: &Scope) -> Result<Vec<Vec<Listed>>> {
    let (cond, param) = scope_sql(scope);
    // The groups are found first, on the index alone; only their members are read.
    let rows = conn
        .prepare(&format!(
            "WITH person AS (
                 SELECT i.name_key, i.birth_year, i.municipality
                 FROM records r JOIN record_index i ON i.record_id = r.id
                 WHERE {cond} AND i.name_key != ''
                 GROUP BY i.name_key, i.birth_year, i.municipality HAVING count(*) > 1
             )
             SELECT {LISTED_COLUMNS} FROM person p
             JOIN record_index i ON i.name_key = p.name_key AND i.birth_year IS p.birth_year
                 AND i.municipality IS p.municipality
             JOIN records r ON r.id = i.record_id
             WHERE {cond}
             ORDER BY i.name_key, i.birth_year, i.municipality, r.last_seq DESC"
        ))?
        .query_map(&[(":scope", &param as &dyn ToSql)], listed_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut groups: Vec<Vec<Listed>> = Vec::new();
    for row in rows {
        let same = |l: &Listed| {
            l.summary.name_key == row.summary.name_key
                && l.summary.birth_year == row.summary.birth_year
                && l.summary.municipality == row.summary.municipality
        };
        match groups.last_mut() {
            Some(group) if same(&group[0]) => group.push(row),
            _ => groups.push(vec![row]),
        }
    }
    Ok(groups)
}

pub(super) fn link(
    conn: &mut Connection,
    a: RecordId,
    b: RecordId,
    by: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    if a == b {
        return Err(StorageError::Backend(
            "a record cannot be linked to itself".into(),
        ));
    }
    // Each pair once, in byte order (SQLite compares blobs bytewise, as `Vec` does).
    let (a, b) = if key(a) < key(b) { (a, b) } else { (b, a) };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row(
        "SELECT count(*) FROM records WHERE id IN (?1, ?2)",
        params![key(a), key(b)],
        |r| r.get(0),
    )?;
    if found != 2 {
        return Err(StorageError::Backend(
            "only stored records can be linked".into(),
        ));
    }
    tx.execute(
        "INSERT INTO record_links (a, b, linked_by, linked_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (a, b) DO NOTHING",
        params![key(a), key(b), by, at.timestamp()],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn linked(conn: &Connection, id: RecordId) -> Result<Vec<RecordId>> {
    let ids = conn
        .prepare(
            "SELECT b, linked_at FROM record_links WHERE a = ?1
             UNION ALL SELECT a, linked_at FROM record_links WHERE b = ?1
             ORDER BY 2, 1",
        )?
        .query_map([key(id)], |r| rid(r.get(0)?))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ids)
}

pub(super) fn unindexed(conn: &Connection, limit: usize) -> Result<Vec<StoredRecord>> {
    let records = conn
        .prepare(
            "SELECT r.id, r.owner, r.team, r.assigned_to, r.doc, r.heads FROM records r
             WHERE NOT EXISTS (SELECT 1 FROM record_index i WHERE i.record_id = r.id)
             LIMIT ?1",
        )?
        .query_map([limit_sql(limit)], stored_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(records)
}

pub(super) fn set_summaries(
    conn: &mut Connection,
    summaries: &[(RecordId, RecordSummary)],
) -> Result<()> {
    let now = Utc::now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (id, summary) in summaries {
        let stored = tx
            .query_row(
                "SELECT 1 FROM records WHERE id = ?1",
                [key(*id)],
                |_| Ok(()),
            )
            .optional()?;
        if stored.is_none() {
            return Err(StorageError::Backend(format!("no record {id}")));
        }
        put_summary(&tx, *id, summary, None, now)?;
    }
    tx.commit()?;
    Ok(())
}
