//! The server's receipts of the changes this device pulled (issue 13, clock skew). A
//! change carries the time its device's clock gave it, and that clock can be a year
//! off; the server says when it stored each change it sends (protocol v6), and the
//! store keeps that by record and change hash. [`Store::clock_marks`] judges a record's
//! changes with them ([`intake_shared::skew::judge`], as the dashboard does), so the
//! CLI and the field app can say beside a time when the device that wrote it had a
//! clearly wrong clock. Shown only: no decision reads a receipt.

use std::collections::HashMap;

use chrono::DateTime;
use intake_shared::skew::{self, Judged};
use intake_shared::{Record, RecordId};
use rusqlite::{Connection, params};

use super::{Store, StoreError};

/// Keeps receipts that came with a page, inside the page's transaction. A change
/// pulled again (after a restore of the server) keeps its first receipt.
pub(super) fn keep(
    conn: &Connection,
    receipts: &[(RecordId, [u8; 32], i64)],
) -> Result<(), StoreError> {
    if receipts.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO receipts (record_id, hash, received_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )?;
    for (id, hash, at) in receipts {
        stmt.execute(params![id.to_string(), &hash[..], at])?;
    }
    Ok(())
}

impl Store {
    /// Every change of `record` judged against the server's receipts this store holds,
    /// by change hash (hex, as [`intake_shared::Comment::change`] and the other read
    /// types name it). A change this device made itself has no receipt here; it is
    /// still judged against what it follows, and the device warns about its own clock
    /// separately ([`Store::clock_error`]).
    pub fn clock_marks(&self, record: &mut Record) -> Result<HashMap<String, Judged>, StoreError> {
        self.usable()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash, received_at FROM receipts WHERE record_id = ?1")?;
        let rows = stmt.query_map([record.id().to_string()], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut received = HashMap::new();
        for row in rows {
            let (hash, at) = row?;
            if let (Ok(hash), Some(at)) =
                (<[u8; 32]>::try_from(hash), DateTime::from_timestamp(at, 0))
            {
                received.insert(hash, at);
            }
        }
        Ok(skew::judge(&record.change_times(), &received)
            .into_iter()
            .map(|(hash, judged)| (hex::encode(hash), judged))
            .collect())
    }
}
