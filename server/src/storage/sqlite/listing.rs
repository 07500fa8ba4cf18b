//! The record index in SQLite: each record's summary in `record_index`, written with
//! the record, with the record's scope columns, status and log position repeated, so
//! that lists, filters, counts and duplicate hints read this table alone (`records`
//! rows carry documents); and links between records.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use intake_shared::RecordId;
use rusqlite::types::ToSql;
use rusqlite::{Connection, TransactionBehavior, params};

use super::{key, rid, scope_sql};
use crate::storage::{
    Audit, ListFilter, Listed, RecordMeta, RecordSummary, RecordWrite, Result, Scope, StorageError,
    StoredRecord,
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

/// Indexes a record as `write` stores it, in its transaction: `last_seq` is the
/// record's new log position, `now` the time of the write.
pub(super) fn put_written(
    conn: &Connection,
    w: &RecordWrite,
    last_seq: i64,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let s = &w.summary;
    // Owner and team never change after creation, as in `records`; nor does the
    // creation time the record was first indexed with (the sync engine judged the
    // device's clock then: see `intake_shared::skew::creation_time`).
    conn.prepare_cached(
        "INSERT INTO record_index (record_id, owner, team, assigned_to, status, last_seq, form,
             created_at, updated_at, name_key, birth_year, municipality, community, gender,
             issue_type, urgency, has_conflicts, name)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
         ON CONFLICT (record_id) DO UPDATE SET assigned_to = excluded.assigned_to,
             status = excluded.status, last_seq = excluded.last_seq, form = excluded.form,
             created_at = COALESCE(record_index.created_at, excluded.created_at),
             updated_at = excluded.updated_at,
             name_key = excluded.name_key, birth_year = excluded.birth_year,
             municipality = excluded.municipality, community = excluded.community,
             gender = excluded.gender, issue_type = excluded.issue_type,
             urgency = excluded.urgency, has_conflicts = excluded.has_conflicts,
             name = excluded.name",
    )?
    .execute(params![
        key(w.meta.id),
        w.meta.owner,
        w.meta.team,
        w.meta.assigned_to,
        w.status,
        last_seq,
        s.form,
        s.created_at.map(created_text),
        now.timestamp_millis(),
        s.name_key,
        s.birth_year,
        s.municipality,
        s.community,
        s.gender,
        s.issue_type,
        s.urgency,
        s.has_conflicts,
        s.name,
    ])?;
    Ok(())
}

/// Sets a stored record's summary, the rest of its index row copied from `records`.
/// Not a write of the record: an existing row keeps its `updated_at`, a new one gets
/// `now`. Returns false when there is no such record.
fn put_summary(
    conn: &Connection,
    id: RecordId,
    s: &RecordSummary,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    // (The `WHERE` also keeps SQLite from reading `ON CONFLICT` as a join clause.)
    let n = conn
        .prepare_cached(
            "INSERT INTO record_index (record_id, owner, team, assigned_to, status, last_seq,
                 form, created_at, updated_at, name_key, birth_year, municipality, community,
                 gender, issue_type, urgency, has_conflicts, name)
             SELECT r.id, r.owner, r.team, r.assigned_to, r.status, r.last_seq,
                 ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13
             FROM records r WHERE r.id = ?1
             ON CONFLICT (record_id) DO UPDATE SET owner = excluded.owner,
                 team = excluded.team, assigned_to = excluded.assigned_to,
                 status = excluded.status, last_seq = excluded.last_seq, form = excluded.form,
                 created_at = excluded.created_at, name_key = excluded.name_key,
                 birth_year = excluded.birth_year, municipality = excluded.municipality,
                 community = excluded.community, gender = excluded.gender,
                 issue_type = excluded.issue_type, urgency = excluded.urgency,
                 has_conflicts = excluded.has_conflicts, name = excluded.name",
        )?
        .execute(params![
            key(id),
            s.form,
            s.created_at.map(created_text),
            now.timestamp_millis(),
            s.name_key,
            s.birth_year,
            s.municipality,
            s.community,
            s.gender,
            s.issue_type,
            s.urgency,
            s.has_conflicts,
            s.name,
        ])?;
    Ok(n > 0)
}

/// The columns of a [`Listed`], over `record_index r` (named like `records` so that
/// [`scope_sql`] applies to it).
const LISTED_COLUMNS: &str = "r.record_id, r.owner, r.team, r.assigned_to, r.status, r.form,
    r.created_at, r.updated_at, r.name_key, r.birth_year, r.municipality, r.community, r.gender,
    r.issue_type, r.urgency, r.has_conflicts, r.name";

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
            name: r.get(16)?,
        },
        updated_at: from_ms(r.get(7)?),
    })
}

/// The `WHERE` condition of a scope and a filter over `record_index r`, and its named
/// parameters.
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
        equal("r.municipality", ":municipality", &filter.municipality);
        equal("r.issue_type", ":issue_type", &filter.issue_type);
        equal("r.urgency", ":urgency", &filter.urgency);
        if let Some(p) = &filter.paralegal {
            sql.push_str(" AND (r.owner = :paralegal OR r.assigned_to = :paralegal)");
            params.push((":paralegal", Box::new(p.clone())));
        }
        if let Some(c) = filter.has_conflicts {
            sql.push_str(" AND r.has_conflicts = :conflicts");
            params.push((":conflicts", Box::new(c)));
        }
        // A date compares as the start of its day with the stored text (see
        // `created_text`); the end is the start of the next day, exclusive.
        if let Some(from) = filter.from {
            sql.push_str(" AND r.created_at >= :from");
            params.push((":from", Box::new(day(from))));
        }
        if let Some(to) = filter.to {
            sql.push_str(" AND r.created_at < :to");
            let next = to
                .succ_opt()
                .map(day)
                .unwrap_or_else(|| "9999-99-99".into());
            params.push((":to", Box::new(next)));
        }
        if let Some(name) = &filter.name {
            let folded = intake_shared::fold(name);
            if !folded.is_empty() {
                sql.push_str(" AND instr(r.name_key, :name) > 0");
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
        &format!("SELECT count(*) FROM record_index r WHERE {}", cond.sql),
        &*cond.params(),
        |r| r.get(0),
    )?;
    let mut params = cond.params();
    let (limit, offset) = (limit_sql(limit), limit_sql(offset));
    params.push((":limit", &limit));
    params.push((":offset", &offset));
    let page = tx
        .prepare(&format!(
            "SELECT {LISTED_COLUMNS} FROM record_index r
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
            "SELECT {LISTED_COLUMNS} FROM record_index r WHERE {} ORDER BY r.last_seq DESC",
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
            "SELECT d.id, d.owner, d.team, d.assigned_to, d.doc, d.heads
             FROM record_index r JOIN records d ON d.id = r.record_id
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
                 SELECT r.name_key, r.birth_year, r.municipality FROM record_index r
                 WHERE {cond} AND r.name_key != ''
                 GROUP BY r.name_key, r.birth_year, r.municipality HAVING count(*) > 1
             )
             SELECT {LISTED_COLUMNS} FROM person p
             JOIN record_index r ON r.name_key = p.name_key AND r.birth_year IS p.birth_year
                 AND r.municipality IS p.municipality
             WHERE {cond}
             ORDER BY r.name_key, r.birth_year, r.municipality, r.last_seq DESC"
        ))?
        .query_map(&[(":scope", &param as &dyn ToSql)], listed_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(crate::storage::dashboard::group_duplicates(rows))
}

pub(super) fn link(
    conn: &mut Connection,
    a: RecordId,
    b: RecordId,
    by: &str,
    at: DateTime<Utc>,
    audit: Option<&Audit>,
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
    super::audit::with(&tx, audit)?;
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
        if !put_summary(&tx, *id, summary, now)? {
            return Err(StorageError::Backend(format!("no record {id}")));
        }
    }
    tx.commit()?;
    Ok(())
}
