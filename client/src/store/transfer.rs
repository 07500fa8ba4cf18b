//! What the store keeps so that sync finishes on a link that keeps cutting: the
//! budgets the last syncs learned, the upload under way, the large item being received
//! in pieces, and the records to fetch whole. All of it survives a cut, a kill and a
//! restart; pieces are checked against their digest before they are used.

use std::collections::BTreeSet;

use intake_shared::RecordId;
use intake_shared::plan::{Budgets, Holdings, Upload};
use intake_shared::protocol::{ItemKind, Piece, Resume, WireId, pieces};
use rusqlite::{Connection, OptionalExtension, params};

use super::sync_state::{get_meta, set_meta, waiting};
use super::{Store, StoreError};

/// What a received piece came to.
#[derive(Debug)]
pub(crate) enum Taken {
    /// Kept; more pieces to come (or a repeat of one already kept).
    Kept,
    /// The last piece: the whole item, checked against its digest.
    Whole(Received),
    /// The last piece, but the whole does not match its digest: dropped, to be sent
    /// again. The page that carried it must not move the cursor past the item.
    Bad,
}

/// A large item received whole from its pieces, to be applied with its page.
#[derive(Debug)]
pub(crate) struct Received {
    pub record: RecordId,
    pub kind: ItemKind,
    pub bytes: Vec<u8>,
}

fn kind_code(kind: ItemKind) -> i64 {
    match kind {
        ItemKind::Doc => 0,
        ItemKind::Change => 1,
        ItemKind::Push => 2,
    }
}

fn kind_of(code: i64) -> ItemKind {
    match code {
        0 => ItemKind::Doc,
        1 => ItemKind::Change,
        _ => ItemKind::Push,
    }
}

impl Store {
    /// The budgets the last sync ended with (`None` before the first).
    pub fn budgets(&self) -> Result<Option<Budgets>, StoreError> {
        Ok(get_meta(&self.conn, "budgets")?.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    pub(crate) fn set_budgets(&self, b: Budgets) -> Result<(), StoreError> {
        let json = serde_json::to_vec(&b).map_err(|e| StoreError::Key(e.to_string()))?;
        set_meta(&self.conn, "budgets", &json)
    }

    /// The upload under way, if any.
    pub(crate) fn upload_state(&self) -> Result<Option<Upload>, StoreError> {
        Ok(get_meta(&self.conn, "upload")?.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    pub(crate) fn set_upload_state(&self, u: Option<Upload>) -> Result<(), StoreError> {
        match u {
            Some(u) => {
                let json = serde_json::to_vec(&u).map_err(|e| StoreError::Key(e.to_string()))?;
                set_meta(&self.conn, "upload", &json)
            }
            None => {
                self.conn
                    .execute("DELETE FROM meta WHERE key = 'upload'", [])?;
                Ok(())
            }
        }
    }

    /// Up to `limit` records to fetch whole.
    pub(crate) fn wanted(&self, limit: u32) -> Result<Vec<RecordId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record_id FROM wanted ORDER BY record_id LIMIT ?1")?;
        let ids = stmt
            .query_map([limit], |r| r.get::<_, String>(0))?
            .filter_map(|r| r.ok().and_then(|s| s.parse().ok()))
            .collect();
        Ok(ids)
    }

    /// What the plan needs to know to choose the next round trip.
    pub(crate) fn holdings(&self, tried: &BTreeSet<WireId>) -> Result<Holdings, StoreError> {
        let skip = tried.iter().map(RecordId::from_wire).collect();
        let wanted: i64 = self
            .conn
            .query_row("SELECT count(*) FROM wanted", [], |r| r.get(0))?;
        Ok(Holdings {
            to_push: waiting(&self.conn, &skip, false)?.len(),
            held: get_meta(&self.conn, "held_cursor")?.is_some(),
            wanted: wanted as usize,
            download: download_resume(&self.conn)?,
        })
    }
}

/// Where the large item being received stands.
fn download_resume(conn: &Connection) -> Result<Option<Resume>, StoreError> {
    let digest: Option<Vec<u8>> = conn
        .query_row("SELECT digest FROM download WHERE id = 1", [], |r| r.get(0))
        .optional()?;
    let Some(digest) = digest.and_then(|d| <[u8; 32]>::try_from(d).ok()) else {
        return Ok(None);
    };
    let have: i64 = conn.query_row(
        "SELECT coalesce(sum(length(bytes)), 0) FROM download_pieces",
        [],
        |r| r.get(0),
    )?;
    Ok(Some(Resume {
        digest,
        have: have as u32,
    }))
}

/// Keeps a received piece (in the page's transaction). Returns the whole item once its
/// last piece is in and the bytes match their digest; a piece of another item starts
/// over, and pieces that do not add up are dropped, so the server sends them again.
pub(crate) fn take_piece(conn: &Connection, piece: &Piece) -> Result<Taken, StoreError> {
    let held = download_resume(conn)?;
    let continues = held.is_some_and(|r| r.digest == piece.digest && r.have == piece.offset);
    if !continues {
        if held.is_some_and(|r| r.digest == piece.digest) {
            // A repeat of a piece already kept (its answer was cut): nothing new.
            return Ok(Taken::Kept);
        }
        clear_download(conn)?;
        if piece.offset != 0 {
            // The middle of an item this store holds nothing of: asked again from 0.
            return Ok(if piece.is_last() {
                Taken::Bad
            } else {
                Taken::Kept
            });
        }
        conn.execute(
            "INSERT INTO download (id, record_id, kind, digest, total) VALUES (1, ?1, ?2, ?3, ?4)",
            params![
                piece.record.to_vec(),
                kind_code(piece.kind),
                piece.digest.to_vec(),
                piece.total
            ],
        )?;
    }
    conn.execute(
        "INSERT INTO download_pieces (offset, bytes) VALUES (?1, ?2)",
        params![piece.offset, piece.bytes],
    )?;
    if !piece.is_last() {
        return Ok(Taken::Kept);
    }
    let mut bytes = Vec::with_capacity(piece.total as usize);
    {
        let mut stmt = conn.prepare("SELECT bytes FROM download_pieces ORDER BY offset")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            bytes.extend_from_slice(&r.get::<_, Vec<u8>>(0)?);
        }
    }
    let (record, kind): (Vec<u8>, i64) = conn.query_row(
        "SELECT record_id, kind FROM download WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    clear_download(conn)?;
    if bytes.len() != piece.total as usize || pieces::digest(&bytes) != piece.digest {
        return Ok(Taken::Bad);
    }
    let Ok(record) = <[u8; 16]>::try_from(record) else {
        return Ok(Taken::Bad);
    };
    Ok(Taken::Whole(Received {
        record: RecordId::from_wire(&record),
        kind: kind_of(kind),
        bytes,
    }))
}

fn clear_download(conn: &Connection) -> Result<(), StoreError> {
    conn.execute("DELETE FROM download_pieces", [])?;
    conn.execute("DELETE FROM download", [])?;
    Ok(())
}
