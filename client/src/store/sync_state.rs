//! What the store keeps for sync: the enrolment (server, token — inside the encrypted
//! database, never elsewhere), the pull cursor, which records hold changes the server
//! lacks, and committing one received page with its cursor in one transaction, so a
//! cut connection resumes exactly where it stopped.

use std::collections::HashSet;
use std::fmt;

use intake_shared::{Record, RecordError, RecordId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Origin, Store, StoreError, insert_received, save_in};

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
    pub stored: Vec<(RecordId, Pushed)>,
    pub rejected: Vec<(RecordId, Vec<u8>, String)>,
    /// Records the server lacks history of (`MissingDependencies`): push them whole.
    pub resend: Vec<(RecordId, String)>,
    pub docs: Vec<(RecordId, Vec<u8>)>,
    pub changes: Vec<(RecordId, Vec<Vec<u8>>)>,
    pub removed: Vec<RecordId>,
    pub cursor: u64,
}

/// What committing a page did.
#[derive(Debug, Default)]
pub(crate) struct PageResult {
    pub received: usize,
    pub removed: usize,
    /// Records whose history this device lacks: ask for them whole.
    pub want_docs: Vec<RecordId>,
    /// Records removed by the server but kept because they still hold changes it
    /// refused (nothing saved is ever dropped silently).
    pub kept: usize,
}

fn get_meta(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

fn set_meta(conn: &Connection, key: &str, value: &[u8]) -> Result<(), StoreError> {
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
    /// The enrolment, once `intake enroll` has run.
    pub fn enrolment(&self) -> Result<Option<Enrolment>, StoreError> {
        get_meta(&self.conn, "enrolment")?
            .map(|v| {
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Key(format!("damaged enrolment: {e}")))
            })
            .transpose()
    }

    /// Records the enrolment; the user's name becomes the author of later changes.
    pub fn set_enrolment(&mut self, e: &Enrolment) -> Result<(), StoreError> {
        let json = serde_json::to_vec(e).map_err(|e| StoreError::Key(e.to_string()))?;
        set_meta(&self.conn, "enrolment", &json)?;
        self.set_user(&e.user)
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
    pub(crate) fn outgoing(
        &self,
        budget: usize,
        skip: &HashSet<RecordId>,
    ) -> Result<Vec<Outgoing>, StoreError> {
        // One read transaction: the rows read belong to the heads read.
        let tx = self.conn.unchecked_transaction()?;
        let waiting = waiting(&tx, skip)?;
        let mut rows_of = tx.prepare_cached(
            "SELECT seq, bytes FROM changes WHERE record_id = ?1 AND unpushed = 1 ORDER BY seq",
        )?;
        let mut out = Vec::new();
        let mut used = 0;
        for w in waiting {
            let mut changes = Vec::new();
            let mut upto_seq = 0;
            if !w.push_all {
                let mut rows = rows_of.query([w.id.to_string()])?;
                while let Some(row) = rows.next()? {
                    upto_seq = row.get(0)?;
                    let bytes: Vec<u8> = row.get(1)?;
                    let chunks = intake_shared::record::split_chunks(&bytes).map_err(|e| {
                        StoreError::Damaged {
                            id: w.id.to_string(),
                            why: e.to_string(),
                        }
                    })?;
                    changes.extend(chunks.into_iter().map(<[u8]>::to_vec));
                }
            }
            if changes.is_empty() {
                // `push_all`, or dirty without unpushed rows (which the rules above
                // never leave, but a record must not be stuck if they did).
                upto_seq = tx.query_row(
                    "SELECT coalesce(max(seq), 0) FROM changes WHERE record_id = ?1",
                    [w.id.to_string()],
                    |r| r.get(0),
                )?;
                let mut record = Store::load_in(&tx, &w.id.to_string(), self.forms)?;
                changes =
                    record.change_list_since(&heads_of(w.synced.as_deref().unwrap_or_default()));
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
        Ok(out)
    }

    /// Whether any record not in `skip` has changes to push.
    pub(crate) fn has_outgoing(&self, skip: &HashSet<RecordId>) -> Result<bool, StoreError> {
        Ok(!waiting(&self.conn, skip)?.is_empty())
    }

    /// Commits one page in one transaction: push outcomes, received documents and
    /// changes, removals, and the new cursor.
    pub(crate) fn commit_page(&mut self, page: PageCommit) -> Result<PageResult, StoreError> {
        let forms = self.forms;
        let identity = self.identity.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut result = PageResult::default();
        for (id, pushed) in &page.stored {
            // Rows read for the push are on the server now. `push_all` ends once the
            // record holds nothing more; if it was saved since, a compaction may have
            // folded new changes into the snapshot, so it stays until then.
            tx.execute(
                "UPDATE records SET synced_heads = ?2, dirty = (heads IS NOT ?2), rejected_heads = NULL,
                     sync_error = NULL, push_all = CASE WHEN heads IS ?2 THEN 0 ELSE push_all END
                 WHERE id = ?1",
                params![id.to_string(), pushed.heads],
            )?;
            tx.execute(
                "UPDATE changes SET unpushed = 0 WHERE record_id = ?1 AND unpushed = 1 AND seq <= ?2",
                params![id.to_string(), pushed.upto_seq],
            )?;
        }
        for (id, message) in &page.resend {
            // The server lacks history we believed it had (restored from a backup?):
            // push everything next time; the server ignores what it has.
            tx.execute(
                "UPDATE records SET synced_heads = NULL, push_all = 1, sync_error = ?2 WHERE id = ?1",
                params![id.to_string(), message],
            )?;
        }
        for (id, heads, message) in &page.rejected {
            tx.execute(
                "UPDATE records SET rejected_heads = ?2, sync_error = ?3 WHERE id = ?1",
                params![id.to_string(), heads, message],
            )?;
        }
        let incoming = page
            .docs
            .iter()
            .map(|(id, doc)| (*id, std::slice::from_ref(doc)))
            .chain(page.changes.iter().map(|(id, c)| (*id, c.as_slice())));
        for (id, chunks) in incoming {
            let key = id.to_string();
            let was_dirty: Option<bool> = tx
                .query_row("SELECT dirty FROM records WHERE id = ?1", [&key], |r| {
                    r.get(0)
                })
                .optional()?;
            let bytes: Vec<u8> = chunks.concat();
            let merged = match was_dirty {
                Some(_) => Store::load_in(&tx, &key, forms).and_then(|mut r| {
                    r.apply(&bytes)?;
                    Ok(r)
                }),
                None => match Record::load(&bytes, forms) {
                    Ok(mut record) => {
                        if record.id() == id && record.is_complete_history() {
                            // New here and whole (a document, or all of its changes):
                            // stored as it came.
                            insert_received(&tx, &mut record, &bytes)?;
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
                Err(StoreError::Record(RecordError::MissingDependencies)) => {
                    result.want_docs.push(id);
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
        for id in &page.removed {
            let key = id.to_string();
            let dirty: Option<bool> = tx
                .query_row("SELECT dirty FROM records WHERE id = ?1", [&key], |r| {
                    r.get(0)
                })
                .optional()?;
            match dirty {
                Some(true) => {
                    tx.execute(
                        "UPDATE records SET sync_error = 'access removed: changes the server did not take are kept here' WHERE id = ?1",
                        [&key],
                    )?;
                    result.kept += 1;
                }
                Some(false) => {
                    tx.execute("DELETE FROM changes WHERE record_id = ?1", [&key])?;
                    tx.execute("DELETE FROM records WHERE id = ?1", [&key])?;
                    result.removed += 1;
                }
                None => {}
            }
        }
        set_meta(&tx, "cursor", &page.cursor.to_be_bytes())?;
        tx.commit()?;
        Ok(result)
    }
}

/// A record waiting to be pushed.
struct Waiting {
    id: RecordId,
    heads: Vec<u8>,
    synced: Option<Vec<u8>>,
    push_all: bool,
}

/// Records with changes to push, not refused at their current heads, not in `skip`.
fn waiting(conn: &Connection, skip: &HashSet<RecordId>) -> Result<Vec<Waiting>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, heads, synced_heads, push_all FROM records
         WHERE dirty = 1 AND (rejected_heads IS NULL OR rejected_heads IS NOT heads) ORDER BY id",
    )?;
    let mut out = Vec::new();
    let mut rows = stmt.query([])?;
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
        });
    }
    Ok(out)
}
