//! Packing a batch of Automerge changes so that it compresses as a whole (protocol
//! version 2).
//!
//! An Automerge change is itself columnar: its operations are stored column by column
//! (keys, actions, values, …), each column compact on its own. A batch of changes sent
//! one after the other interleaves those columns change by change, so zstd sees the
//! value column of one record, then the key column of the next, and finds few long
//! matches. Here the batch is transposed: the header of every change together, then
//! column 1 of every change, column 2 of every change, and so on. The names and
//! choices every record repeats then sit next to each other. The checksum of each
//! change (4 bytes that look random, and are derived from the rest) is left out and
//! computed again, and so is the record id of a change that spells it (a new record's
//! first change writes its `id`). 5,000 intake records, with their ids: 175 B a record
//! at zstd 19 sent as they are, 139 B packed (`intake-bench anatomy`).
//!
//! Unpacking gives back every change byte for byte: the change's hash, which names it
//! everywhere, is computed over those bytes. A chunk that is not an ordinary change
//! (say a compressed change) travels verbatim. Unpacking reads untrusted bytes: every
//! length is checked against what is there, every stream must be used up exactly, and
//! nothing is allocated beyond the size of the input and a few bytes a change.
//!
//! The change chunk layout this relies on (Automerge's binary format): magic (4 bytes),
//! checksum (4), chunk type (1 = change), body length (LEB128), then the body: the
//! dependencies (count, 32-byte hashes), actor (length, bytes), sequence number, start
//! op, time (LEB128 each), message (length, UTF-8), other actors (count, each length and
//! bytes), the column directory (count, each spec and length), the column data in that
//! order, and any extra bytes to the end.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::protocol::{DecodeError, RecordChanges, WireId};

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHANGE: u8 = 1;
/// How a change travels.
const TRANSPOSED: u8 = 0;
const VERBATIM: u8 = 1;

/// Which record a packed entry is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum RecordRef {
    /// Its 16 bytes.
    Id(WireId),
    /// Its id's text (the hyphenated lowercase UUID) is at this byte offset of its
    /// first change, as in a change that creates a record and writes its `id`. The id
    /// then travels once, not twice: 16 random bytes saved a new record.
    TextAt(u32),
}

/// The length of a UUID's hyphenated text.
const UUID_TEXT: usize = 36;

/// A batch of records' changes, transposed (its postcard encoding is the wire format).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed {
    /// Each record and how many of the changes below are its, in order.
    records: Vec<(RecordRef, u32)>,
    /// Per change: [`TRANSPOSED`] or [`VERBATIM`].
    kinds: Vec<u8>,
    /// Per transposed change: its body up to the end of the column directory, then the
    /// length of its extra bytes (LEB128).
    headers: Vec<u8>,
    /// Per column spec, in order of first appearance: the data of that column of every
    /// transposed change that has it, in change order.
    columns: Vec<(u32, Vec<u8>)>,
    /// The extra bytes of every transposed change.
    extras: Vec<u8>,
    /// The whole chunks of changes that travel verbatim.
    verbatim: Vec<Vec<u8>>,
}

/// A reader over a byte slice that never reads past its end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    /// An unsigned LEB128 number of at most 10 bytes; signed ones have the same shape,
    /// so this also skips them.
    fn leb(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = *self.take(1)?.first()?;
            value |= u64::from(b & 0x7f).checked_shl(7 * i)?;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.leb()?).ok()
    }

    /// A count of items of at least `min` bytes each, checked against what is left.
    fn count(&mut self, min: usize) -> Option<usize> {
        let n = self.len()?;
        (n.checked_mul(min)? <= self.bytes.len()).then_some(n)
    }
}

fn push_leb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The column directory of a change body: the length of the body up to its end, and
/// the (spec, length) of each column.
type Directory = (usize, Vec<(u32, usize)>);

/// Reads a change body up to the end of its column directory.
fn directory(body: &[u8]) -> Option<Directory> {
    let mut r = Reader { bytes: body };
    let deps = r.count(32)?;
    r.take(deps * 32)?;
    let actor = r.len()?;
    r.take(actor)?;
    r.leb()?; // sequence number
    r.leb()?; // start op
    r.leb()?; // time (signed)
    let message = r.len()?;
    r.take(message)?;
    let others = r.count(1)?;
    for _ in 0..others {
        let n = r.len()?;
        r.take(n)?;
    }
    let n = r.count(2)?;
    let mut columns = Vec::with_capacity(n);
    for _ in 0..n {
        let spec = u32::try_from(r.leb()?).ok()?;
        columns.push((spec, r.len()?));
    }
    Some((body.len() - r.bytes.len(), columns))
}

/// Splits a whole change chunk into its body, if it is an ordinary change.
fn change_body(chunk: &[u8]) -> Option<&[u8]> {
    let mut r = Reader { bytes: chunk };
    if r.take(4)? != MAGIC {
        return None;
    }
    r.take(4)?;
    if *r.take(1)?.first()? != CHANGE {
        return None;
    }
    let len = r.len()?;
    (r.bytes.len() == len).then_some(r.bytes)
}

/// Wraps a change body into a chunk, computing its checksum as Automerge does: the first
/// 4 bytes of SHA-256 over the chunk type, the body's length and the body.
fn chunk(body: &[u8]) -> Vec<u8> {
    let mut typed = Vec::with_capacity(body.len() + 11);
    typed.push(CHANGE);
    push_leb(&mut typed, body.len() as u64);
    typed.extend_from_slice(body);
    let hash = Sha256::digest(&typed);
    let mut out = Vec::with_capacity(typed.len() + 8);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&hash[..4]);
    out.extend_from_slice(&typed);
    out
}

/// The hash that names an ordinary change chunk (Automerge's rule: SHA-256 over the
/// chunk type, the body's length and the body), if `chunk` is one.
pub(crate) fn change_hash(chunk: &[u8]) -> Option<crate::protocol::Hash> {
    let body = change_body(chunk)?;
    let mut typed = Vec::with_capacity(body.len() + 11);
    typed.push(CHANGE);
    push_leb(&mut typed, body.len() as u64);
    typed.extend_from_slice(body);
    Some(Sha256::digest(&typed).into())
}

/// An ordinary change chunk's dependencies, and the chunk with none (its checksum
/// computed again), if it has any and [`with_deps`] gives `chunk` back byte for byte
/// from the two: protocol version 7 sends the second and abbreviates the first.
pub(crate) fn strip_deps(chunk: &[u8]) -> Option<(Vec<crate::protocol::Hash>, Vec<u8>)> {
    let body = change_body(chunk)?;
    let mut r = Reader { bytes: body };
    let n = r.count(32)?;
    if n == 0 {
        return None;
    }
    let deps: Vec<crate::protocol::Hash> = r
        .take(n * 32)?
        .chunks_exact(32)
        .map(|d| d.try_into().expect("32 bytes"))
        .collect();
    let mut rest = Vec::with_capacity(r.bytes.len() + 1);
    push_leb(&mut rest, 0);
    rest.extend_from_slice(r.bytes);
    let stripped = self::chunk(&rest);
    // A chunk whose checksum or length encoding is not the canonical one would come
    // back different: it travels as it is.
    (with_deps(&stripped, &deps)?.as_slice() == chunk).then_some((deps, stripped))
}

/// The change chunk `stripped` (one without dependencies) with `deps` put back, its
/// checksum computed again; `None` if `stripped` is not such a chunk.
pub(crate) fn with_deps(stripped: &[u8], deps: &[crate::protocol::Hash]) -> Option<Vec<u8>> {
    let body = change_body(stripped)?;
    let mut r = Reader { bytes: body };
    if r.len()? != 0 {
        return None;
    }
    let mut full = Vec::with_capacity(body.len() + 2 + deps.len() * 32);
    push_leb(&mut full, deps.len() as u64);
    for d in deps {
        full.extend_from_slice(d);
    }
    full.extend_from_slice(r.bytes);
    Some(chunk(&full))
}

/// Packs whole records (a document, or a record's changes, as stored): each is split
/// into its chunks, so that change chunks are transposed like any pushed change.
pub fn pack_docs(docs: &[crate::protocol::RecordDoc]) -> Packed {
    let records: Vec<RecordChanges> = docs
        .iter()
        .map(|d| RecordChanges {
            record: d.record,
            // Bytes that are not whole chunks stay one piece, and travel verbatim.
            changes: crate::record::split_chunks(&d.doc)
                .unwrap_or_else(|_| vec![&d.doc[..]])
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect(),
        })
        .collect();
    pack(&records)
}

/// Unpacks what [`pack_docs`] made.
pub fn unpack_docs(p: &Packed) -> Result<Vec<crate::protocol::RecordDoc>, DecodeError> {
    Ok(unpack(p)?
        .into_iter()
        .map(|r| crate::protocol::RecordDoc {
            record: r.record,
            doc: r.changes.concat(),
        })
        .collect())
}

/// How to name `r`'s record: by where its first change spells its id, if it does.
fn record_ref(r: &RecordChanges) -> RecordRef {
    let text = uuid::Uuid::from_bytes(r.record).hyphenated().to_string();
    r.changes
        .first()
        .and_then(|first| first.windows(UUID_TEXT).position(|w| w == text.as_bytes()))
        .and_then(|at| u32::try_from(at).ok())
        .map_or(RecordRef::Id(r.record), RecordRef::TextAt)
}

/// The record id spelled at `at` of `first`, which must be the canonical text.
fn id_at(first: Option<&Vec<u8>>, at: u32) -> Result<WireId, DecodeError> {
    let text = first
        .and_then(|c| c.get(at as usize..(at as usize).checked_add(UUID_TEXT)?))
        .ok_or_else(|| malformed("a record's id is not where it is said to be"))?;
    let id = uuid::Uuid::try_parse_ascii(text)
        .ok()
        .filter(|id| id.hyphenated().to_string().as_bytes() == text)
        .ok_or_else(|| malformed("a record's id is not a UUID's text"))?;
    Ok(*id.as_bytes())
}

/// Packs records' changes (each entry one whole change chunk).
pub fn pack(records: &[RecordChanges]) -> Packed {
    let mut p = Packed::default();
    let mut column_index: Vec<u32> = Vec::new();
    for r in records {
        p.records.push((
            record_ref(r),
            u32::try_from(r.changes.len()).expect("fewer than 2^32 changes"),
        ));
        for change in &r.changes {
            let parsed = change_body(change).and_then(|body| {
                let (dir_len, columns) = directory(body)?;
                // Checked: column lengths are read from the chunk and may add up past
                // `usize::MAX`, which would wrap and pass (a fuzzer found it).
                let data = columns
                    .iter()
                    .try_fold(0usize, |sum, (_, n)| sum.checked_add(*n))?;
                (dir_len.checked_add(data)? <= body.len()).then_some((body, dir_len, columns))
            });
            // A change that does not check out exactly as written travels as it is.
            let Some((body, dir_len, columns)) = parsed else {
                p.kinds.push(VERBATIM);
                p.verbatim.push(change.clone());
                continue;
            };
            p.kinds.push(TRANSPOSED);
            p.headers.extend_from_slice(&body[..dir_len]);
            let mut at = dir_len;
            for (spec, n) in columns {
                let i = match column_index.iter().position(|s| *s == spec) {
                    Some(i) => i,
                    None => {
                        column_index.push(spec);
                        p.columns.push((spec, Vec::new()));
                        p.columns.len() - 1
                    }
                };
                p.columns[i].1.extend_from_slice(&body[at..at + n]);
                at += n;
            }
            push_leb(&mut p.headers, (body.len() - at) as u64);
            p.extras.extend_from_slice(&body[at..]);
        }
    }
    p
}

fn malformed(why: &str) -> DecodeError {
    DecodeError::Malformed(format!("packed changes: {why}"))
}

/// Unpacks what [`pack`] made, exactly; any inconsistency is an error.
pub fn unpack(p: &Packed) -> Result<Vec<RecordChanges>, DecodeError> {
    let total: usize = p
        .records
        .iter()
        .try_fold(0usize, |sum, (_, n)| sum.checked_add(*n as usize))
        .ok_or_else(|| malformed("too many changes"))?;
    if total != p.kinds.len() {
        return Err(malformed("change counts do not add up"));
    }
    let mut headers = Reader { bytes: &p.headers };
    let mut extras = Reader { bytes: &p.extras };
    let mut columns: Vec<(u32, Reader<'_>)> = p
        .columns
        .iter()
        .map(|(spec, data)| (*spec, Reader { bytes: data }))
        .collect();
    let mut verbatim = p.verbatim.iter();
    let mut kinds = p.kinds.iter();
    let mut out = Vec::with_capacity(p.records.len());
    for (record, n) in &p.records {
        let mut changes = Vec::with_capacity(*n as usize);
        for _ in 0..*n {
            match kinds.next() {
                Some(&TRANSPOSED) => {
                    let (dir_len, dir) =
                        directory(headers.bytes).ok_or_else(|| malformed("bad change header"))?;
                    let mut body = headers.take(dir_len).expect("measured above").to_vec();
                    for (spec, len) in dir {
                        let column = columns
                            .iter_mut()
                            .find(|(s, _)| *s == spec)
                            .ok_or_else(|| malformed("a column is missing"))?;
                        let data = column
                            .1
                            .take(len)
                            .ok_or_else(|| malformed("a column is too short"))?;
                        body.extend_from_slice(data);
                    }
                    let extra = headers
                        .len()
                        .ok_or_else(|| malformed("bad change header"))?;
                    let extra = extras
                        .take(extra)
                        .ok_or_else(|| malformed("extra bytes are too short"))?;
                    body.extend_from_slice(extra);
                    changes.push(chunk(&body));
                }
                Some(&VERBATIM) => changes.push(
                    verbatim
                        .next()
                        .ok_or_else(|| malformed("a verbatim change is missing"))?
                        .clone(),
                ),
                _ => return Err(malformed("bad change kind")),
            }
        }
        let record = match record {
            RecordRef::Id(id) => *id,
            RecordRef::TextAt(at) => id_at(changes.first(), *at)?,
        };
        out.push(RecordChanges { record, changes });
    }
    let used_up = headers.bytes.is_empty()
        && extras.bytes.is_empty()
        && verbatim.next().is_none()
        && columns.iter().all(|(_, r)| r.bytes.is_empty());
    if !used_up {
        return Err(malformed("bytes left over"));
    }
    Ok(out)
}

impl Packed {
    /// How many records and changes this holds, without unpacking: for limits.
    pub fn counts(&self) -> (usize, usize) {
        (self.records.len(), self.kinds.len())
    }

    /// How many changes travel verbatim rather than transposed.
    pub fn verbatim(&self) -> usize {
        self.verbatim.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb_round_trip_and_bounds() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            push_leb(&mut b, v);
            assert_eq!(Reader { bytes: &b }.leb(), Some(v));
        }
        assert_eq!(Reader { bytes: &[0x80] }.leb(), None);
        assert_eq!(Reader { bytes: &[0xff; 11] }.leb(), None);
        assert_eq!(Reader { bytes: &[5, 1] }.count(1), None);
    }

    #[test]
    fn odd_chunks_travel_verbatim() {
        let records = vec![RecordChanges {
            record: [1; 16],
            changes: vec![
                vec![],
                vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2, 0],
                vec![9; 40],
            ],
        }];
        let p = pack(&records);
        assert_eq!(p.kinds, vec![VERBATIM; 3]);
        assert_eq!(unpack(&p).unwrap(), records);
    }
}
