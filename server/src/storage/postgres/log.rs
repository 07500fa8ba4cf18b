//! The change log on PostgreSQL: storing a push with its heads compare-and-swap, and
//! paging a pull by cursor, correct with any number of concurrent writers on any
//! number of servers.
//!
//! Every write transaction first locks the one row of `log_head`
//! (`SELECT … FOR UPDATE`) and takes its log positions from it, one after the other,
//! writing the new head back before it commits. Writers therefore hold the lock from
//! their first position to their commit, so positions are handed out in commit order:
//! when a reader can see position `n`, every position below `n` is committed too. A
//! pull runs in one `REPEATABLE READ` snapshot and serves entries up to the head that
//! snapshot holds, never past it — with a plain sequence, a transaction that took 41
//! and commits after another that took 42 would be skipped by a reader that saw 42 and
//! moved its cursor past 41.
//!
//! The same lock makes the heads compare-and-swap hold: a write reads a record's
//! heads only once it holds the lock (`READ COMMITTED`, so each statement sees every
//! write committed before it), and no other write can change them until it commits.
//! Writes are serialised, as they are in SQLite; decoding and merging happen before,
//! outside any transaction.

use chrono::Utc;
use postgres::Transaction;
use postgres::types::ToSql;

use super::audit::audit_with;
use super::{DOCS_PHASE, key, rid, scope_sql};
use crate::storage::dashboard::RecordSummary;
use crate::storage::{Audit, LogEntry, Page, PullRequest, RecordWrite, Result, StorageError};
use intake_shared::RecordId;
use intake_shared::protocol::Piece;

/// Rows a pull fetches from the database at a time: a page stops once its budget is
/// full, so it must not load every document of a fresh device's first pull.
const FETCH: i32 = 64;

/// Stores a push in one transaction (see the module's doc) and returns the log head.
pub(super) fn write(
    client: &mut postgres::Client,
    writes: &[RecordWrite],
    device: i64,
    audit: Option<&Audit>,
) -> Result<u64> {
    let now = Utc::now();
    // The server's receipt, in milliseconds (issue 13); a replay keeps the first.
    let received = now.timestamp_millis();
    let mut tx = client.transaction()?;
    let mut head: i64 = tx
        .query_one("SELECT seq FROM log_head FOR UPDATE", &[])?
        .get(0);
    let select_heads = tx.prepare("SELECT heads FROM records WHERE id = $1")?;
    let insert_log = tx.prepare(
        "INSERT INTO log (seq, record_id, hash, device_id, bytes, received_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (hash) DO NOTHING",
    )?;
    for w in writes {
        let id = key(w.meta.id);
        let current: Option<Vec<u8>> = tx.query_opt(&select_heads, &[&id])?.map(|r| r.get(0));
        if current != w.expected_heads {
            return Err(StorageError::Stale);
        }
        if current.is_none() && is_erased(&mut tx, w.meta.id)? {
            // Erased while the push was prepared: prepared again, it is refused.
            return Err(StorageError::Stale);
        }
        let mut last_seq = None;
        for (hash, bytes) in &w.new_changes {
            // A change already held (a replay) takes no position.
            let n = tx.execute(
                &insert_log,
                &[&(head + 1), &id, &&hash[..], &device, bytes, &received],
            )?;
            if n > 0 {
                head += 1;
                last_seq = Some(head);
            }
        }
        let Some(last_seq) = last_seq else { continue };
        tx.execute(
            "INSERT INTO records (id, owner, team, assigned_to, status, doc, heads, last_seq, sole_device)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET assigned_to = excluded.assigned_to,
                 status = excluded.status, doc = excluded.doc, heads = excluded.heads,
                 last_seq = excluded.last_seq,
                 sole_device = CASE WHEN records.sole_device = excluded.sole_device
                     THEN excluded.sole_device END",
            &[
                &id,
                &w.meta.owner,
                &w.meta.team,
                &w.meta.assigned_to,
                &w.status,
                &w.doc,
                &w.heads,
                &last_seq,
                &device,
            ],
        )?;
        put_written(&mut tx, w, last_seq, now)?;
        for user in &w.revoked_from {
            tx.execute(
                r#"INSERT INTO access_revoked (seq, "user", record_id) VALUES ($1, $2, $3)"#,
                &[&last_seq, user, &id],
            )?;
            // Each of the user's devices may still deliver what it wrote before it
            // knew, until it has committed the page that tells it.
            tx.execute(
                "INSERT INTO late_grants (device_id, record_id, revoked_seq)
                 SELECT d.id, $2, $1 FROM devices d JOIN users u ON u.id = d.user_id
                 WHERE u.name = $3 AND d.revoked_at IS NULL
                 ON CONFLICT (device_id, record_id) DO UPDATE SET
                     revoked_seq = excluded.revoked_seq, announced = NULL, closed = FALSE",
                &[&last_seq, &id, user],
            )?;
        }
    }
    audit_with(&mut tx, audit)?;
    tx.execute("UPDATE log_head SET seq = $1", &[&head])?;
    tx.commit()?;
    Ok(head as u64)
}

/// `created_at` as stored: fixed-width UTC RFC 3339 with nanoseconds (as in SQLite),
/// so that text order is time order.
pub(super) fn created_text(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Indexes a record as `write` stores it, in its transaction. Owner, team and the
/// first indexed creation time never change (as in SQLite's `listing::put_written`).
fn put_written(
    tx: &mut Transaction<'_>,
    w: &RecordWrite,
    last_seq: i64,
    now: chrono::DateTime<Utc>,
) -> Result<()> {
    let s: &RecordSummary = &w.summary;
    tx.execute(
        "INSERT INTO record_index (record_id, owner, team, assigned_to, status, last_seq, form,
             created_at, updated_at, name_key, birth_year, municipality, community, gender,
             issue_type, urgency, has_conflicts, name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (record_id) DO UPDATE SET assigned_to = excluded.assigned_to,
             status = excluded.status, last_seq = excluded.last_seq, form = excluded.form,
             created_at = COALESCE(record_index.created_at, excluded.created_at),
             updated_at = excluded.updated_at,
             name_key = excluded.name_key, birth_year = excluded.birth_year,
             municipality = excluded.municipality, community = excluded.community,
             gender = excluded.gender, issue_type = excluded.issue_type,
             urgency = excluded.urgency, has_conflicts = excluded.has_conflicts,
             name = excluded.name",
        &[
            &key(w.meta.id),
            &w.meta.owner,
            &w.meta.team,
            &w.meta.assigned_to,
            &w.status,
            &last_seq,
            &s.form,
            &s.created_at.map(created_text),
            &now.timestamp_millis(),
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
    Ok(())
}

fn is_erased(tx: &mut Transaction<'_>, id: RecordId) -> Result<bool> {
    Ok(tx
        .query_opt("SELECT 1 FROM erasures WHERE record_id = $1", &[&key(id)])?
        .is_some())
}

/// Keeps a piece of `device`'s upload; see [`crate::storage::SyncStorage::put_piece`].
pub(super) fn put_piece(client: &mut postgres::Client, device: i64, piece: &Piece) -> Result<u32> {
    let mut tx = client.transaction()?;
    // Locked: two servers given the same piece twice (a retry through another server)
    // take turns.
    let held = tx.query_opt(
        "SELECT record_id, digest, total, have FROM uploads WHERE device_id = $1 FOR UPDATE",
        &[&device],
    )?;
    let offset = u64::from(piece.offset);
    let end = offset + piece.bytes.len() as u64;
    let same = held.as_ref().is_some_and(|r| {
        r.get::<_, &[u8]>(0) == &piece.record[..]
            && r.get::<_, &[u8]>(1) == &piece.digest[..]
            && r.get::<_, i64>(2) == i64::from(piece.total)
    });
    let have = if same {
        let have = held.map_or(0, |r| r.get::<_, i64>(3)) as u64;
        if offset <= have && end > have {
            // A piece repeated after a cut overlaps what is held: keep its new tail.
            let tail = &piece.bytes[(have - offset) as usize..];
            tx.execute(
                r#"INSERT INTO upload_pieces (device_id, "offset", bytes) VALUES ($1, $2, $3)"#,
                &[&device, &(have as i64), &tail],
            )?;
            tx.execute(
                "UPDATE uploads SET have = $2 WHERE device_id = $1",
                &[&device, &(end as i64)],
            )?;
            end
        } else {
            have
        }
    } else if offset == 0 {
        // A new upload replaces the device's previous one.
        tx.execute("DELETE FROM upload_pieces WHERE device_id = $1", &[&device])?;
        tx.execute(
            "INSERT INTO uploads (device_id, record_id, digest, total, have) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (device_id) DO UPDATE SET record_id = excluded.record_id,
                 digest = excluded.digest, total = excluded.total, have = excluded.have",
            &[
                &device,
                &&piece.record[..],
                &&piece.digest[..],
                &i64::from(piece.total),
                &(end as i64),
            ],
        )?;
        tx.execute(
            r#"INSERT INTO upload_pieces (device_id, "offset", bytes) VALUES ($1, 0, $2)"#,
            &[&device, &piece.bytes],
        )?;
        end
    } else {
        // Not the start, and not of the upload held: the device must start over.
        0
    };
    tx.commit()?;
    Ok(have as u32)
}

/// One page of what a device lacks; see [`crate::storage::SyncStorage::pull`]. The
/// same rules as SQLite's, over one `REPEATABLE READ` snapshot whose `log_head` bounds
/// everything served.
pub(super) fn pull(client: &mut postgres::Client, req: &PullRequest<'_>) -> Result<Page> {
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let mut page = pull_in(&mut tx, req)?;
    // In the same snapshot: the receipts are exactly those of the documents sent.
    page.doc_receipts = doc_receipts(&mut tx, &page.docs)?;
    Ok(page)
}

/// The server's receipts (milliseconds) of each document's changes, one list per
/// document, each in the order of the changes' hashes (bytewise, as SQLite orders
/// them): what protocol v6 sends with documents.
fn doc_receipts(
    tx: &mut Transaction<'_>,
    docs: &[(RecordId, Vec<u8>)],
) -> Result<Vec<Vec<Option<i64>>>> {
    let stmt = tx.prepare("SELECT received_at FROM log WHERE record_id = $1 ORDER BY hash")?;
    let mut out = Vec::with_capacity(docs.len());
    for (id, _) in docs {
        out.push(
            tx.query(&stmt, &[&key(*id)])?
                .iter()
                .map(|r| r.get(0))
                .collect(),
        );
    }
    Ok(out)
}

/// [`pull`] inside its snapshot.
fn pull_in(tx: &mut Transaction<'_>, req: &PullRequest<'_>) -> Result<Page> {
    let head: i64 = tx.query_one("SELECT seq FROM log_head", &[])?.get(0);
    let mut page = Page::default();
    let mut used = 0usize;
    let fits = |used: usize, size: usize, any: bool| !any || used + size <= req.budget;

    // Wanted records first, each once, within the budget like the rest.
    let mut wanted = std::collections::HashSet::new();
    let (cond, scope) = scope_sql(req.scope, 2);
    for id in req.want_docs {
        if !wanted.insert(*id) {
            continue;
        }
        let doc: Option<Vec<u8>> = tx
            .query_opt(
                &format!("SELECT r.doc FROM records r WHERE r.id = $1 AND {cond}"),
                &[&key(*id), &scope],
            )?
            .map(|r| r.get(0));
        let Some(doc) = doc else {
            page.unavailable.push(*id);
            continue;
        };
        if !fits(used, doc.len() + 20, !page.docs.is_empty()) {
            // The rest are asked for again with the next page; the cursor stays.
            page.more = true;
            page.cursor = req.cursor;
            return Ok(page);
        }
        used += doc.len() + 20;
        page.docs.push((*id, doc));
    }

    let docs_phase = req.cursor == 0 || req.cursor & DOCS_PHASE != 0;
    let (cond, scope) = scope_sql(req.scope, 4);
    // Revocations in (removed_after, position] are reported with this page.
    let (position, removed_after) = if docs_phase {
        // Whole compacted documents in the order of their last change; records made
        // only by this device are not sent back to it.
        let after = (req.cursor & !DOCS_PHASE) as i64;
        let sql = format!(
            "SELECT r.id, r.doc, r.last_seq FROM records r
             WHERE r.last_seq > $1 AND r.last_seq <= $2 AND r.sole_device IS DISTINCT FROM $3
               AND {cond}
             ORDER BY r.last_seq"
        );
        let params: [&(dyn ToSql + Sync); 4] = [&after, &head, &req.device, &scope];
        let portal = tx.bind(sql.as_str(), &params)?;
        let mut position = after;
        'rows: loop {
            let rows = tx.query_portal(&portal, FETCH)?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let doc: Vec<u8> = r.get(1);
                if !fits(used, doc.len() + 20, !page.docs.is_empty()) {
                    page.more = true;
                    break 'rows;
                }
                used += doc.len() + 20;
                page.docs.push((rid(r.get(0))?, doc));
                position = r.get(2);
            }
        }
        if page.more {
            page.cursor = DOCS_PHASE | position as u64;
            return Ok(page);
        }
        // The whole phase is done: any record of this user's history that was sent
        // in an earlier page and reassigned away since must be dropped.
        (head, 0)
    } else {
        let sql = format!(
            "SELECT l.seq, l.record_id, l.bytes, l.received_at FROM log l JOIN records r ON r.id = l.record_id
             WHERE l.seq > $1 AND l.seq <= $2 AND l.device_id != $3 AND {cond}
             ORDER BY l.seq"
        );
        let cursor = req.cursor as i64;
        let params: [&(dyn ToSql + Sync); 4] = [&cursor, &head, &req.device, &scope];
        let portal = tx.bind(sql.as_str(), &params)?;
        // Until something is sent the position stays where the device is: wanted
        // documents may already fill the page.
        let mut position = cursor;
        'rows: loop {
            let rows = tx.query_portal(&portal, FETCH)?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let bytes: Vec<u8> = r.get(2);
                let any = !page.changes.is_empty() || !page.docs.is_empty();
                if !fits(used, bytes.len() + 20, any) {
                    page.more = true;
                    break 'rows;
                }
                used += bytes.len() + 20;
                let seq: i64 = r.get(0);
                page.changes.push(LogEntry {
                    seq: seq as u64,
                    record: rid(r.get(1))?,
                    bytes,
                    received_at: r.get(3),
                });
                position = seq;
            }
        }
        if !page.more {
            position = head;
        }
        (position, cursor)
    };
    let (cond, scope) = scope_sql(req.scope, 4);
    page.removed = tx
        .query(
            &format!(
                r#"SELECT DISTINCT a.record_id FROM access_revoked a
                   WHERE a."user" = $1 AND a.seq > $2 AND a.seq <= $3
                     AND NOT EXISTS (SELECT 1 FROM records r WHERE r.id = a.record_id AND {cond})"#
            ),
            &[&req.user, &removed_after, &position, &scope],
        )?
        .iter()
        .map(|r| rid(r.get(0)))
        .collect::<Result<_>>()?;
    page.erased = erased_between(tx, req, removed_after, position)?;
    page.cursor = position as u64;
    Ok(page)
}

/// Records erased in `(after, position]` that the user could see: by the scope's rule
/// over who the record belonged to when it was erased, or because the user was
/// reassigned away from it.
fn erased_between(
    tx: &mut Transaction<'_>,
    req: &PullRequest<'_>,
    after: i64,
    position: i64,
) -> Result<Vec<RecordId>> {
    let (cond, scope) = scope_sql(req.scope, 3);
    tx.query(
        &format!(
            r#"SELECT r.record_id, r.seq FROM erasures r
               WHERE r.seq > $1 AND r.seq <= $2 AND {cond}
               UNION
               SELECT e.record_id, e.seq FROM erasure_users u JOIN erasures e ON e.seq = u.seq
               WHERE u."user" = $4 AND u.seq > $1 AND u.seq <= $2
               ORDER BY 2"#
        ),
        &[&after, &position, &scope, &req.user],
    )?
    .iter()
    .map(|r| rid(r.get(0)))
    .collect()
}
