//! What the store keeps for sync: the enrolment (server, token — inside the encrypted
//! database, never elsewhere), the pull cursor, which records hold changes the server
//! lacks, and committing one received page with its cursor in one transaction, so a
//! cut connection resumes exactly where it stopped.

use std::collections::HashSet;
use std::fmt;

use intake_shared::protocol::{ItemKind, Piece, the_one_with_prefix};
use intake_shared::{Record, RecordError, RecordId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::transfer::{Taken, take_piece};
use super::{Origin, Received, Store, StoreError, insert_received, par_map, save_in};

/// This device's enrolment with a server.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Enrolment {
    pub server: String,
    /// The device token; `Debug` never prints it.
    pub token: String,
    pub device_id: i64,
    pub user: String,
    pub role: String,
    pub team: Option<String>,
    /// A CA certificate file to trust instead of the platform's roots.
    pub ca_file: Option<String>,
    /// The server's limits for a device's requests (absent for enrolments made
    /// before servers said).
    #[serde(default)]
    pub limits: Option<intake_shared::protocol::DeviceLimits>,
    /// The user asked at enrolment (`--insecure-http`) to sync over plain HTTP with a
    /// server that is not on this machine. Without it such an address is refused, at
    /// enrolment and at every sync, so an enrolment edited by hand cannot turn it on.
    #[serde(default)]
    pub insecure_http: bool,
}

impl fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrolment")
            .field("server", &self.server)
            .field("token", &"[redacted]")
            .field("device_id", &self.device_id)
            .field("user", &self.user)
            .field("role", &self.role)
            .finish()
    }
}

/// A record that cannot be read for a push, and why.
pub(crate) type Damaged = (RecordId, String);

/// A record with changes to push.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub id: RecordId,
    /// What the server will have of it once it answers `Stored`.
    pub pushed: Pushed,
    pub changes: Vec<Vec<u8>>,
}

/// What a push of one record covers: its heads, and its change rows up to `upto_seq`.
#[derive(Clone, Debug)]
pub(crate) struct Pushed {
    pub heads: Vec<u8>,
    pub upto_seq: i64,
}

/// One received page and what happened to the pushes, to commit atomically.
#[derive(Debug, Default)]
pub(crate) struct PageCommit {
    /// A piece of a large item (kept; applied with the page once whole).
    pub piece: Option<Piece>,
    /// Wanted records the server will not send: stop asking.
    pub unavailable: Vec<RecordId>,
    pub stored: Vec<(RecordId, Pushed)>,
    pub rejected: Vec<(RecordId, Vec<u8>, String)>,
    /// Records the server lacks history of (`MissingDependencies`): push them whole;
    /// `true` when this was already the second try in this sync.
    pub resend: Vec<(RecordId, String, bool)>,
    pub docs: Vec<(RecordId, Vec<u8>)>,
    pub changes: Vec<(RecordId, Vec<Vec<u8>>)>,
    pub removed: Vec<RecordId>,
    /// Records erased for good on the server (named in the page, or a push to them
    /// refused): dropped whole, unsynced edits too.
    pub erased: Vec<RecordId>,
    /// When the server stored pulled changes (seconds since the epoch, its clock), by
    /// record and change hash: shown beside device times, never used to decide.
    pub receipts: Vec<(RecordId, [u8; 32], i64)>,
    pub cursor: u64,
}

/// What committing a page did.
#[derive(Debug, Default)]
pub(crate) struct PageResult {
    pub received: usize,
    pub removed: usize,
    /// Records whose history this device lacks, now wanted whole.
    pub wanted: usize,
    /// A large item ended in this page but did not match its digest: the cursor stayed
    /// before it, and it must be asked for again.
    pub item_bad: bool,
    /// Records removed by the server but kept because they still hold changes it
    /// refused (nothing saved is ever dropped silently).
    pub kept: usize,
    /// Records dropped because they were erased for good.
    pub erased: usize,
}

pub(super) fn get_meta(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(super) fn set_meta(conn: &Connection, key: &str, value: &[u8]) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

fn heads_of(bytes: &[u8]) -> Vec<[u8; 32]> {
    bytes
        .chunks_exact(32)
        .map(|c| c.try_into().expect("32-byte chunk"))
        .collect()
}

impl Store {
    /// Puts back the dependencies a version 8 answer sent as prefixes (issue 16), from
    /// the changes this device holds of each record, and checks the answer's digest.
    /// A dependency is looked for first among the record's heads and the heads the
    /// server acknowledged (where a change pulled from the server nearly always
    /// starts), then among every change the record holds (its saved rows, hashed
    /// without decoding, and its snapshot, which is loaded). `SendInFull` when a
    /// prefix names none of them, or several, or the digest disagrees: the device then
    /// asks for the answer in full and keeps nothing of this one.
    pub(crate) fn expand_answer(
        &self,
        response: &mut intake_shared::protocol::SyncResponse,
    ) -> Result<(), intake_shared::protocol::ExpandError> {
        // Per record: its heads and acknowledged heads, and every change hash once
        // needed.
        type Known = (Vec<[u8; 32]>, Option<Vec<[u8; 32]>>);
        let mut seen: std::collections::HashMap<[u8; 16], Known> = Default::default();
        response.expand(|record, prefix| {
            let id = RecordId::from_wire(record).to_string();
            let (quick, all) = seen.entry(*record).or_insert_with(|| {
                let quick = self
                    .conn
                    .query_row(
                        "SELECT heads, synced_heads FROM records WHERE id = ?1",
                        [&id],
                        |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Option<Vec<u8>>>(1)?)),
                    )
                    .optional()
                    .ok()
                    .flatten()
                    .map(|(heads, synced)| {
                        let mut quick = heads_of(&heads);
                        quick.extend(heads_of(synced.as_deref().unwrap_or_default()));
                        quick.sort_unstable();
                        quick.dedup();
                        quick
                    })
                    .unwrap_or_default();
                (quick, None)
            });
            if let Some(hash) = the_one_with_prefix(quick, prefix) {
                return Some(hash);
            }
            let all = all.get_or_insert_with(|| self.change_hashes_of(&id).unwrap_or_default());
            the_one_with_prefix(all, prefix)
        })
    }

    /// Every change hash the store holds of record `id`: its snapshot's and its saved
    /// rows'.
    fn change_hashes_of(&self, id: &str) -> Result<Vec<[u8; 32]>, StoreError> {
        let mut hashes = Vec::new();
        let snapshot: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT snapshot FROM records WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .flatten();
        if let Some(doc) = snapshot {
            hashes.extend(intake_shared::record::change_hashes(&doc).unwrap_or_default());
        }
        let mut rows = self
            .conn
            .prepare_cached("SELECT bytes FROM changes WHERE record_id = ?1")?;
        let mut rows = rows.query([id])?;
        while let Some(row) = rows.next()? {
            let bytes: Vec<u8> = row.get(0)?;
            hashes.extend(intake_shared::record::change_hashes(&bytes).unwrap_or_default());
        }
        hashes.sort_unstable();
        hashes.dedup();
        Ok(hashes)
    }

    /// The enrolment, once `intake enroll` has run.
    pub fn enrolment(&self) -> Result<Option<Enrolment>, StoreError> {
        get_meta(&self.conn, "enrolment")?
            .map(|v| {
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Key(format!("damaged enrolment: {e}")))
            })
            .transpose()
    }

    /// When a sync of this store last finished (for the field app's pages); `None`
    /// before the first. Written by the app, not by `sync` itself, so a sync that
    /// changes nothing still writes nothing of its own.
    pub fn last_sync(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        Ok(get_meta(&self.conn, "last_sync")?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
            .map(|d| d.with_timezone(&chrono::Utc)))
    }

    pub fn set_last_sync(&self, at: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
        set_meta(&self.conn, "last_sync", at.to_rfc3339().as_bytes())
    }

    /// Records the enrolment; the user's name becomes the author of later changes.
    pub fn set_enrolment(&mut self, e: &Enrolment) -> Result<(), StoreError> {
        let json = serde_json::to_vec(e).map_err(|e| StoreError::Key(e.to_string()))?;
        set_meta(&self.conn, "enrolment", &json)?;
        self.set_user(&e.user)
    }

    /// The store id of the server, as its last answer gave it (`None` before the
    /// first answer, or from a server too old to say).
    pub fn server_store(&self) -> Result<Option<String>, StoreError> {
        Ok(get_meta(&self.conn, "server_store")?.and_then(|v| String::from_utf8(v).ok()))
    }

    pub(crate) fn set_server_store(&self, id: &str) -> Result<(), StoreError> {
        set_meta(&self.conn, "server_store", id.as_bytes())
    }

    /// The server answered with another store id: it was restored from a backup and
    /// may lack anything this device believed it had, and its log positions are not
    /// the ones the device's cursor counts in. In one transaction: every record is to
    /// be pushed whole (the server ignores, by hash, the changes it has), the cursor
    /// goes back to the start, the transfers under way and the records wanted are
    /// forgotten, and the new id is kept. A page held back for records being removed
    /// is held at the start instead, so they still go once pushed. Returns how many
    /// records will be pushed.
    pub(crate) fn forget_server(&mut self, id: &str) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let records = tx.execute(
            "UPDATE records SET synced_heads = NULL, dirty = 1, push_all = 1,
                 rejected_heads = NULL, sync_error = NULL",
            [],
        )?;
        tx.execute("DELETE FROM wanted", [])?;
        tx.execute("DELETE FROM download_pieces", [])?;
        tx.execute("DELETE FROM download", [])?;
        tx.execute("DELETE FROM meta WHERE key IN ('cursor', 'upload')", [])?;
        if get_meta(&tx, "held_cursor")?.is_some() {
            set_meta(&tx, "held_cursor", &0u64.to_be_bytes())?;
        }
        set_meta(&tx, "server_store", id.as_bytes())?;
        tx.commit()?;
        Ok(records)
    }

    /// The pull cursor (0 before the first sync).
    pub fn cursor(&self) -> Result<u64, StoreError> {
        Ok(get_meta(&self.conn, "cursor")?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// How many records hold changes the server does not have yet.
    pub fn unsynced(&self) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM records WHERE dirty = 1", [], |r| {
                r.get::<_, i64>(0)
            })? as usize)
    }

    /// Records with changes to push (not those refused at exactly these heads, nor
    /// those in `skip`), up to about `budget` bytes of changes; at least one record
    /// when any is waiting.
    ///
    /// A record's changes are its unpushed change rows, sent as they were saved: no
    /// record is loaded, which is what makes a week of offline work quick to push.
    /// Only a record whose rows are not the whole story (`push_all`) is loaded, and
    /// sends everything after the heads the server acknowledged.
    ///
    /// At most `max_records` records; `held_only` takes only records whose removal holds
    /// a page back (whatever `skip` says: they must go before the cursor moves on). A
    /// record that cannot be read is left out and returned with why, alone: the others
    /// still go.
    pub(crate) fn outgoing(
        &self,
        budget: usize,
        max_records: usize,
        skip: &HashSet<RecordId>,
        held_only: bool,
    ) -> Result<(Vec<Outgoing>, Vec<Damaged>), StoreError> {
        // One read transaction: the rows read belong to the heads read.
        let tx = self.conn.unchecked_transaction()?;
        let none = HashSet::new();
        let waiting = waiting(&tx, if held_only { &none } else { skip }, held_only)?;
        let mut damaged = Vec::new();
        let mut rows_of = tx.prepare_cached(
            "SELECT seq, bytes FROM changes
             WHERE record_id = ?1 AND unpushed = 1 AND seq > ?2 ORDER BY seq",
        )?;
        let mut out = Vec::new();
        let mut used = 0;
        for w in waiting {
            if out.len() >= max_records.max(1) {
                break;
            }
            let mut changes = Vec::new();
            let mut upto_seq = 0;
            let mut bad = None;
            if !w.push_all {
                let mut rows = rows_of.query(params![w.id.to_string(), w.pushed_seq])?;
                while let Some(row) = rows.next()? {
                    upto_seq = row.get(0)?;
                    let bytes: Vec<u8> = row.get(1)?;
                    match intake_shared::record::split_chunks(&bytes) {
                        Ok(chunks) => changes.extend(chunks.into_iter().map(<[u8]>::to_vec)),
                        Err(e) => bad = Some(e.to_string()),
                    }
                }
            }
            if changes.is_empty() && bad.is_none() {
                // `push_all`, or dirty without unpushed rows (which the rules above
                // never leave, but a record must not be stuck if they did).
                upto_seq = tx.query_row(
                    "SELECT coalesce(max(seq), 0) FROM changes WHERE record_id = ?1",
                    [w.id.to_string()],
                    |r| r.get(0),
                )?;
                match Store::load_in(&tx, &w.id.to_string(), self.forms) {
                    Ok(mut record) => {
                        changes = record
                            .change_list_since(&heads_of(w.synced.as_deref().unwrap_or_default()))
                    }
                    Err(e) => bad = Some(e.to_string()),
                }
            }
            if let Some(why) = bad {
                damaged.push((w.id, why));
                continue;
            }
            let size: usize = changes.iter().map(Vec::len).sum();
            if !out.is_empty() && used + size > budget {
                break;
            }
            used += size;
            out.push(Outgoing {
                id: w.id,
                pushed: Pushed {
                    heads: w.heads,
                    upto_seq,
                },
                changes,
            });
        }
        Ok((out, damaged))
    }

    /// Marks records that cannot be read for a push: they keep their changes, say why,
    /// and are not offered again until they change.
    pub(crate) fn mark_damaged(&self, damaged: &[Damaged]) -> Result<(), StoreError> {
        for (id, why) in damaged {
            self.conn.execute(
                "UPDATE records SET rejected_heads = heads, sync_error = ?2 WHERE id = ?1",
                params![id.to_string(), format!("cannot be read for sync: {why}")],
            )?;
        }
        Ok(())
    }

    /// Commits one page in one transaction: push outcomes, received documents and
    /// changes (and a piece of a large item), records wanted whole, removals, and the
    /// new cursor — or, when a removed record still holds unsynced edits, the cursor is
    /// held back until they are pushed (see [`Store::holdings`]).
    pub(crate) fn commit_page(&mut self, mut page: PageCommit) -> Result<PageResult, StoreError> {
        let forms = self.forms;
        let identity = self.identity.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut result = PageResult::default();
        for (id, pushed) in &page.stored {
            // Rows read for the push are on the server now: every change row up to
            // `upto_seq` (one number on the record, not a flag rewritten on each row).
            // `push_all` ends once the record holds nothing more; if it was saved
            // since, a compaction may have folded new changes into the snapshot, so it
            // stays until then.
            tx.prepare_cached(
                "UPDATE records SET synced_heads = ?2, dirty = (heads IS NOT ?2), rejected_heads = NULL,
                     sync_error = NULL, push_all = CASE WHEN heads IS ?2 THEN 0 ELSE push_all END,
                     pushed_seq = max(pushed_seq, ?3)
                 WHERE id = ?1",
            )?
            .execute(params![id.to_string(), pushed.heads, pushed.upto_seq])?;
        }
        for (id, message, second) in &page.resend {
            // The server lacks history we believed it had (restored from a backup?):
            // push everything next time; the server ignores what it has. A record
            // being removed has no next time: after a second refusal it is kept here.
            tx.execute(
                "UPDATE records SET synced_heads = NULL, push_all = 1, sync_error = ?2,
                     rejected_heads = CASE WHEN ?3 AND removal = 1 THEN heads ELSE rejected_heads END
                 WHERE id = ?1",
                params![id.to_string(), message, second],
            )?;
        }
        for (id, heads, message) in &page.rejected {
            tx.execute(
                "UPDATE records SET rejected_heads = ?2, sync_error = ?3 WHERE id = ?1",
                params![id.to_string(), heads, message],
            )?;
        }
        let taken = match &page.piece {
            Some(piece) => take_piece(&tx, piece)?,
            None => Taken::Kept,
        };
        // A large item whose pieces do not add up is asked for again: the cursor and
        // the removals of the page that ended it wait until it arrives whole.
        let item_bad = matches!(taken, Taken::Bad);
        // Taken, not copied: a page is up to a mebibyte of documents.
        let mut incoming: Vec<(RecordId, Vec<u8>, bool)> = std::mem::take(&mut page.docs)
            .into_iter()
            .map(|(id, doc)| (id, doc, true))
            .chain(page.changes.iter().map(|(id, c)| (*id, c.concat(), false)))
            .collect();
        if let Taken::Whole(item) = taken {
            incoming.push((item.record, item.bytes, item.kind == ItemKind::Doc));
        }
        for id in &page.unavailable {
            tx.execute("DELETE FROM wanted WHERE record_id = ?1", [id.to_string()])?;
        }
        super::receipts::keep(&tx, &page.receipts)?;
        // Records new here that the page holds once are loaded first, on every core
        // (see `Received`); the rest (merges, a record twice in one page: its second
        // item merges into the first) take the path below one by one.
        let new_here = {
            let mut seen = HashSet::new();
            let twice: HashSet<RecordId> = incoming
                .iter()
                .filter(|(id, _, _)| !seen.insert(*id))
                .map(|(id, _, _)| *id)
                .collect();
            let mut stmt = tx.prepare_cached("SELECT 1 FROM records WHERE id = ?1")?;
            let mut new_here = Vec::with_capacity(incoming.len());
            for (id, _, _) in &incoming {
                new_here.push(!twice.contains(id) && !stmt.exists([id.to_string()])?);
            }
            new_here
        };
        let jobs: Vec<_> = incoming.iter().zip(&new_here).collect();
        let loaded = par_map(&jobs, |((id, bytes, _), new)| {
            if **new {
                Received::load(*id, bytes, forms)
            } else {
                None
            }
        });
        for ((id, bytes, is_doc), received) in incoming.into_iter().zip(loaded) {
            if let Some(received) = received {
                if is_doc {
                    tx.execute("DELETE FROM wanted WHERE record_id = ?1", [id.to_string()])?;
                }
                insert_received(&tx, &received, &bytes)?;
                result.received += 1;
                continue;
            }
            let key = id.to_string();
            if is_doc {
                tx.execute("DELETE FROM wanted WHERE record_id = ?1", [&key])?;
            }
            let was_dirty: Option<bool> = tx
                .query_row("SELECT dirty FROM records WHERE id = ?1", [&key], |r| {
                    r.get(0)
                })
                .optional()?;
            let merged = match was_dirty {
                Some(_) => Store::load_in(&tx, &key, forms).and_then(|mut r| {
                    r.apply(&bytes)?;
                    Ok(r)
                }),
                // Most records new here were stored above; this is the first of two
                // items of one record in a page, or one not whole, or one that does not load.
                None => match Record::load(&bytes, forms) {
                    Ok(mut record) => {
                        if record.id() == id && record.is_complete_history() {
                            // New here and whole (a document, or all of its changes):
                            // stored as it came.
                            insert_received(&tx, &Received::of(&mut record), &bytes)?;
                            result.received += 1;
                            continue;
                        }
                        Ok(record)
                    }
                    Err(e) => Err(StoreError::from(e)),
                },
            };
            let mut record = match merged {
                Ok(r) => r,
                // Changes of a record this device lacks the history of (it was just
                // given access): Automerge calls a lone later change malformed when
                // it is loaded as a new document, and lacking history when applied.
                Err(StoreError::Record(RecordError::MissingDependencies))
                | Err(StoreError::Record(RecordError::Malformed(_)))
                    if !is_doc =>
                {
                    // Kept with the cursor that passes these changes, in this
                    // transaction: asked for until the server sends it or says it won't.
                    tx.execute(
                        "INSERT INTO wanted (record_id) VALUES (?1) ON CONFLICT DO NOTHING",
                        [&key],
                    )?;
                    result.wanted += 1;
                    continue;
                }
                Err(StoreError::Record(_)) if is_doc && was_dirty.is_none() => {
                    // A whole record this app cannot read: asking again would bring the
                    // same bytes. The server keeps it; nothing here is lost.
                    continue;
                }
                Err(e) => return Err(e),
            };
            record.set_identity(&identity);
            save_in(&tx, forms, &mut record, Origin::Server)?;
            if was_dirty != Some(true) {
                // Nothing of ours was waiting: the server has exactly what we now hold.
                tx.execute(
                    "UPDATE records SET synced_heads = heads, dirty = 0, push_all = 0 WHERE id = ?1",
                    [&key],
                )?;
            }
            result.received += 1;
        }
        let mut hold = false;
        let removed: &[RecordId] = if item_bad { &[] } else { &page.removed };
        for id in removed {
            let key = id.to_string();
            let state: Option<(bool, bool)> = tx
                .query_row(
                    "SELECT dirty, rejected_heads IS heads FROM records WHERE id = ?1",
                    [&key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            tx.execute("DELETE FROM wanted WHERE record_id = ?1", [&key])?;
            match state {
                Some((true, false)) => {
                    // Unsynced edits the server has not refused: they go first, then
                    // the record goes, then the cursor moves past this page.
                    tx.execute("UPDATE records SET removal = 1 WHERE id = ?1", [&key])?;
                    hold = true;
                }
                Some((true, true)) => {
                    tx.execute(
                        "UPDATE records SET sync_error = 'access removed: changes the server did not take are kept here' WHERE id = ?1",
                        [&key],
                    )?;
                    result.kept += 1;
                }
                Some((false, _)) => {
                    purge(&tx, &key)?;
                    result.removed += 1;
                }
                None => {}
            }
        }
        // Erased records go whole, whatever they hold: an erasure is the organisation's
        // decision, and the server takes nothing of them any more. Done even when the
        // cursor stays (the page comes again and says so again: dropping is idempotent).
        for id in &page.erased {
            result.erased += erase_local(&tx, *id)?;
        }
        if item_bad {
            // The cursor stays before the item.
        } else if hold {
            set_meta(&tx, "held_cursor", &page.cursor.to_be_bytes())?;
        } else if get_meta(&tx, "held_cursor")?.is_none() {
            set_meta(&tx, "cursor", &page.cursor.to_be_bytes())?;
        }
        result.removed += release_held(&tx)?;
        result.item_bad = item_bad;
        tx.commit()?;
        Ok(result)
    }

    /// Moves a held cursor on once no removed record still waits to be pushed (for
    /// a store left so by an interrupted sync).
    pub(crate) fn release_held(&mut self) -> Result<usize, StoreError> {
        // Nearly always nothing is held: no write transaction for that.
        if get_meta(&self.conn, "held_cursor")?.is_none() {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = release_held(&tx)?;
        tx.commit()?;
        Ok(n)
    }
}

/// Deletes a record and its changes.
fn purge(conn: &Connection, key: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM changes WHERE record_id = ?1", [key])?;
    conn.execute("DELETE FROM receipts WHERE record_id = ?1", [key])?;
    conn.execute("DELETE FROM records WHERE id = ?1", [key])?;
    Ok(())
}

/// Drops everything this store holds of an erased record: its rows and changes (the
/// projection is its row), whether it is wanted, and a transfer of it under way.
/// Returns 1 when the record was here.
fn erase_local(conn: &Connection, id: RecordId) -> Result<usize, StoreError> {
    let key = id.to_string();
    let here = conn
        .query_row("SELECT 1 FROM records WHERE id = ?1", [&key], |_| Ok(()))
        .optional()?
        .is_some();
    purge(conn, &key)?;
    conn.execute("DELETE FROM wanted WHERE record_id = ?1", [&key])?;
    let receiving: Option<Vec<u8>> = conn
        .query_row("SELECT record_id FROM download WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    if receiving.as_deref() == Some(&id.wire()[..]) {
        conn.execute("DELETE FROM download_pieces", [])?;
        conn.execute("DELETE FROM download", [])?;
    }
    let uploading = get_meta(conn, "upload")?
        .and_then(|v| serde_json::from_slice::<intake_shared::plan::Upload>(&v).ok());
    if uploading.is_some_and(|u| u.record == id.wire()) {
        conn.execute("DELETE FROM meta WHERE key = 'upload'", [])?;
    }
    Ok(usize::from(here))
}

/// When a page's cursor is held and none of the records it removed still waits to be
/// pushed: purges those the server now has, keeps (with why) those it refused, and
/// moves the cursor on. Returns how many records were purged.
fn release_held(conn: &Connection) -> Result<usize, StoreError> {
    let Some(held) = get_meta(conn, "held_cursor")? else {
        return Ok(0);
    };
    let waiting: i64 = conn.query_row(
        "SELECT count(*) FROM records WHERE removal = 1 AND dirty = 1
             AND (rejected_heads IS NULL OR rejected_heads IS NOT heads)",
        [],
        |r| r.get(0),
    )?;
    if waiting > 0 {
        return Ok(0);
    }
    let mut purged = 0;
    let gone: Vec<String> = conn
        .prepare("SELECT id FROM records WHERE removal = 1 AND dirty = 0")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for key in gone {
        purge(conn, &key)?;
        purged += 1;
    }
    conn.execute(
        "UPDATE records SET removal = 0,
             sync_error = 'access removed: changes the server did not take are kept here'
         WHERE removal = 1",
        [],
    )?;
    set_meta(conn, "cursor", &held)?;
    conn.execute("DELETE FROM meta WHERE key = 'held_cursor'", [])?;
    Ok(purged)
}

/// A record waiting to be pushed.
pub(super) struct Waiting {
    id: RecordId,
    heads: Vec<u8>,
    synced: Option<Vec<u8>>,
    push_all: bool,
    /// Change rows up to this one are on the server (schema step 6).
    pushed_seq: i64,
}

/// Records with changes to push, not refused at their current heads, not in `skip`
/// (only those whose removal holds a page back, when `held_only`).
pub(super) fn waiting(
    conn: &Connection,
    skip: &HashSet<RecordId>,
    held_only: bool,
) -> Result<Vec<Waiting>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, heads, synced_heads, push_all, pushed_seq FROM records
         WHERE dirty = 1 AND (rejected_heads IS NULL OR rejected_heads IS NOT heads)
           AND (?1 = 0 OR removal = 1)
         ORDER BY removal DESC, id",
    )?;
    let mut out = Vec::new();
    let mut rows = stmt.query([held_only])?;
    while let Some(r) = rows.next()? {
        let Ok(id) = r.get::<_, String>(0)?.parse::<RecordId>() else {
            continue;
        };
        if skip.contains(&id) {
            continue;
        }
        out.push(Waiting {
            id,
            heads: r.get(1)?,
            synced: r.get(2)?,
            push_all: r.get(3)?,
            pushed_seq: r.get(4)?,
        });
    }
    Ok(out)
}
