//! The record index, links and the audit trail's reads on PostgreSQL: the same queries
//! as SQLite's `listing.rs` and `audit.rs`, with positional parameters. `record_index`
//! is written with each record by [`super::log`]; here it is read, and its summaries
//! set for records stored before it.

use chrono::{DateTime, NaiveDate, Utc};
use intake_shared::RecordId;
use postgres::Client;
use postgres::types::ToSql;

use super::audit::audit_with;
use super::log::created_text;
use super::{key, rid, scope_sql};
use crate::storage::{
    Audit, ListFilter, Listed, RecordMeta, RecordSummary, Result, Scope, StorageError, StoredRecord,
};

pub(super) type Param = Box<dyn ToSql + Sync>;

pub(super) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn created_from_text(s: Option<String>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn limit_sql(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref()).collect()
}

/// The columns of a [`Listed`], over `record_index r`.
const LISTED_COLUMNS: &str = "r.record_id, r.owner, r.team, r.assigned_to, r.status, r.form,
    r.created_at, r.updated_at, r.name_key, r.birth_year, r.municipality, r.community, r.gender,
    r.issue_type, r.urgency, r.has_conflicts, r.name";

fn listed_row(r: &postgres::Row) -> Result<Listed> {
    Ok(Listed {
        meta: RecordMeta {
            id: rid(r.get(0))?,
            owner: r.get(1),
            team: r.get(2),
            assigned_to: r.get(3),
        },
        status: r.get(4),
        summary: RecordSummary {
            form: r.get(5),
            created_at: created_from_text(r.get(6)),
            name_key: r.get(8),
            birth_year: r.get(9),
            municipality: r.get(10),
            community: r.get(11),
            gender: r.get(12),
            issue_type: r.get(13),
            urgency: r.get(14),
            has_conflicts: r.get(15),
            name: r.get(16),
        },
        updated_at: from_ms(r.get(7)),
    })
}

fn stored_row(r: &postgres::Row) -> Result<StoredRecord> {
    Ok(StoredRecord {
        meta: RecordMeta {
            id: rid(r.get(0))?,
            owner: r.get(1),
            team: r.get(2),
            assigned_to: r.get(3),
        },
        doc: r.get(4),
        heads: r.get(5),
    })
}

/// The `WHERE` condition of a scope and a filter over `record_index r`, and its
/// parameters (`$1`, `$2`, … in order).
struct Condition {
    sql: String,
    params: Vec<Param>,
}

impl Condition {
    fn new(scope: &Scope, filter: &ListFilter) -> Condition {
        let (scope_cond, scope_param) = scope_sql(scope, 1);
        let mut c = Condition {
            sql: scope_cond,
            params: vec![Box::new(scope_param)],
        };
        let equal = |c: &mut Condition, column: &str, value: &Option<String>| {
            if let Some(v) = value {
                c.and(&format!("{column} = $"), Box::new(v.clone()));
            }
        };
        equal(&mut c, "r.status", &filter.status);
        equal(&mut c, "r.municipality", &filter.municipality);
        equal(&mut c, "r.issue_type", &filter.issue_type);
        equal(&mut c, "r.urgency", &filter.urgency);
        if let Some(p) = &filter.paralegal {
            let n = c.params.len() + 1;
            c.sql
                .push_str(&format!(" AND (r.owner = ${n} OR r.assigned_to = ${n})"));
            c.params.push(Box::new(p.clone()));
        }
        if let Some(conflicts) = filter.has_conflicts {
            c.and("r.has_conflicts = $", Box::new(conflicts));
        }
        // A date compares as the start of its day with the stored text; the end is the
        // start of the next day, exclusive (as in SQLite).
        if let Some(from) = filter.from {
            c.and("r.created_at >= $", Box::new(day(from)));
        }
        if let Some(to) = filter.to {
            let next = to
                .succ_opt()
                .map(day)
                .unwrap_or_else(|| "9999-99-99".into());
            c.and("r.created_at < $", Box::new(next));
        }
        if let Some(name) = &filter.name {
            let folded = intake_shared::fold(name);
            if !folded.is_empty() {
                let n = c.params.len() + 1;
                c.sql
                    .push_str(&format!(" AND strpos(r.name_key, ${n}) > 0"));
                c.params.push(Box::new(folded));
            }
        }
        c
    }

    /// Adds ` AND {sql}{n}` with the next parameter number.
    fn and(&mut self, sql: &str, param: Param) {
        self.params.push(param);
        self.sql
            .push_str(&format!(" AND {sql}{}", self.params.len()));
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub(super) fn list(
    client: &mut Client,
    scope: &Scope,
    filter: &ListFilter,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Listed>, usize)> {
    let mut cond = Condition::new(scope, filter);
    // One snapshot: the page and the total agree.
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let total: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM record_index r WHERE {}", cond.sql),
            &refs(&cond.params),
        )?
        .get(0);
    let n = cond.params.len();
    cond.params.push(Box::new(limit_sql(limit)));
    cond.params.push(Box::new(limit_sql(offset)));
    let page = tx
        .query(
            &format!(
                "SELECT {LISTED_COLUMNS} FROM record_index r
                 WHERE {} ORDER BY r.last_seq DESC LIMIT ${} OFFSET ${}",
                cond.sql,
                n + 1,
                n + 2
            ),
            &refs(&cond.params),
        )?
        .iter()
        .map(listed_row)
        .collect::<Result<Vec<_>>>()?;
    tx.commit()?;
    Ok((page, total as usize))
}

pub(super) fn listed_all(
    client: &mut Client,
    scope: &Scope,
    filter: &ListFilter,
) -> Result<Vec<Listed>> {
    let cond = Condition::new(scope, filter);
    client
        .query(
            &format!(
                "SELECT {LISTED_COLUMNS} FROM record_index r WHERE {} ORDER BY r.last_seq DESC",
                cond.sql
            ),
            &refs(&cond.params),
        )?
        .iter()
        .map(listed_row)
        .collect()
}

pub(super) fn records_matching(
    client: &mut Client,
    scope: &Scope,
    filter: &ListFilter,
) -> Result<Vec<StoredRecord>> {
    let cond = Condition::new(scope, filter);
    client
        .query(
            &format!(
                "SELECT d.id, d.owner, d.team, d.assigned_to, d.doc, d.heads
                 FROM record_index r JOIN records d ON d.id = r.record_id
                 WHERE {} ORDER BY r.last_seq DESC",
                cond.sql
            ),
            &refs(&cond.params),
        )?
        .iter()
        .map(stored_row)
        .collect()
}

pub(super) fn duplicate_groups(client: &mut Client, scope: &Scope) -> Result<Vec<Vec<Listed>>> {
    let (cond, param) = scope_sql(scope, 1);
    // The groups are found first, on the index alone; only their members are read.
    // `NULLS FIRST`: SQLite's order, so both backends list groups alike.
    let rows = client
        .query(
            &format!(
                "WITH person AS (
                     SELECT r.name_key, r.birth_year, r.municipality FROM record_index r
                     WHERE {cond} AND r.name_key != ''
                     GROUP BY r.name_key, r.birth_year, r.municipality HAVING count(*) > 1
                 )
                 SELECT {LISTED_COLUMNS} FROM person p
                 JOIN record_index r ON r.name_key = p.name_key
                     AND r.birth_year IS NOT DISTINCT FROM p.birth_year
                     AND r.municipality IS NOT DISTINCT FROM p.municipality
                 WHERE {cond}
                 ORDER BY r.name_key, r.birth_year NULLS FIRST, r.municipality NULLS FIRST,
                     r.last_seq DESC"
            ),
            &[&param],
        )?
        .iter()
        .map(listed_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(crate::storage::dashboard::group_duplicates(rows))
}

pub(super) fn link(
    client: &mut Client,
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
    // Each pair once, in byte order (PostgreSQL compares `BYTEA` bytewise, as `Vec`).
    let (a, b) = if key(a) < key(b) { (a, b) } else { (b, a) };
    let mut tx = client.transaction()?;
    let found: i64 = tx
        .query_one(
            "SELECT count(*) FROM records WHERE id IN ($1, $2)",
            &[&key(a), &key(b)],
        )?
        .get(0);
    if found != 2 {
        return Err(StorageError::Backend(
            "only stored records can be linked".into(),
        ));
    }
    tx.execute(
        "INSERT INTO record_links (a, b, linked_by, linked_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (a, b) DO NOTHING",
        &[&key(a), &key(b), &by, &at.timestamp()],
    )?;
    audit_with(&mut tx, audit)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn linked(client: &mut Client, id: RecordId) -> Result<Vec<RecordId>> {
    client
        .query(
            "SELECT b, linked_at FROM record_links WHERE a = $1
             UNION ALL SELECT a, linked_at FROM record_links WHERE b = $1
             ORDER BY 2, 1",
            &[&key(id)],
        )?
        .iter()
        .map(|r| rid(r.get(0)))
        .collect()
}

pub(super) fn unindexed(client: &mut Client, limit: usize) -> Result<Vec<StoredRecord>> {
    client
        .query(
            "SELECT r.id, r.owner, r.team, r.assigned_to, r.doc, r.heads FROM records r
             WHERE NOT EXISTS (SELECT 1 FROM record_index i WHERE i.record_id = r.id)
             LIMIT $1",
            &[&limit_sql(limit)],
        )?
        .iter()
        .map(stored_row)
        .collect()
}

/// Sets stored records' summaries, the rest of each index row copied from `records`.
/// Not a write of the record: an existing row keeps its `updated_at`, a new one gets
/// now.
pub(super) fn set_summaries(
    client: &mut Client,
    summaries: &[(RecordId, RecordSummary)],
) -> Result<()> {
    let now = Utc::now().timestamp_millis();
    let mut tx = client.transaction()?;
    for (id, s) in summaries {
        let n = tx.execute(
            "INSERT INTO record_index (record_id, owner, team, assigned_to, status, last_seq,
                 form, created_at, updated_at, name_key, birth_year, municipality, community,
                 gender, issue_type, urgency, has_conflicts, name)
             SELECT r.id, r.owner, r.team, r.assigned_to, r.status, r.last_seq,
                 $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
             FROM records r WHERE r.id = $1
             ON CONFLICT (record_id) DO UPDATE SET owner = excluded.owner,
                 team = excluded.team, assigned_to = excluded.assigned_to,
                 status = excluded.status, last_seq = excluded.last_seq, form = excluded.form,
                 created_at = excluded.created_at, name_key = excluded.name_key,
                 birth_year = excluded.birth_year, municipality = excluded.municipality,
                 community = excluded.community, gender = excluded.gender,
                 issue_type = excluded.issue_type, urgency = excluded.urgency,
                 has_conflicts = excluded.has_conflicts, name = excluded.name",
            &[
                &key(*id),
                &s.form,
                &s.created_at.map(created_text),
                &now,
                &s.name_key,
                &s.birth_year,
                &s.municipality,
                &s.community,
                &s.gender,
                &s.issue_type,
                &s.urgency,
                &s.has_conflicts,
                &s.name,
            ],
        )?;
        if n == 0 {
            return Err(StorageError::Backend(format!("no record {id}")));
        }
    }
    tx.commit()?;
    Ok(())
}
