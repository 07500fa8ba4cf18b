//! What a pushed change chunk *declares* it holds, read off its raw bytes without
//! expanding anything: how many operations its run-length encoded columns add up to,
//! how many actors it names, how many objects (maps, lists, texts) it makes, how many
//! bytes its repeated strings inflate to, and whether a column is DEFLATE-compressed.
//!
//! Automerge's own decoding (`Change::from_bytes`) walks every operation a column
//! declares, and the server's inspection then builds them all in memory: a few bytes
//! saying "repeat this operation 10^9 times" cost minutes of CPU and gigabytes before
//! any limit could look at the count. Here the column directory and the run headers are
//! parsed, each run counted by its header (a run of n copies costs one read, whatever
//! n), so the cost follows the chunk's bytes and a hostile change is refused before
//! Automerge sees it. Automerge's binary format: a column's spec is `id << 4 | deflate
//! bit (8) | type`; types 0 (group), 1 (actor), 2 (integer), 5 (string) and 6 (value
//! metadata) are run-length encoded (signed LEB128 header: n > 0 a run of n copies of
//! one value, n < 0 a literal run of -n values, 0 a run of nulls whose count follows),
//! 3 (delta) is the same over signed values, 4 (boolean) is alternating run lengths,
//! and 7 (raw values) is plain bytes.

use super::RecordError;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHANGE: u8 = 1;
/// The action column (id 4, integer): the operation kinds.
const ACTION: u32 = 4 << 4 | 2;
/// The action numbers that make an object: map, list, text, table.
const MAKES: [u64; 4] = [0, 2, 4, 6];
const DELETE: u64 = 3;
const DEFLATE: u32 = 8;

/// What one change chunk declares (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Declared {
    /// The most items any column declares: at least the operations Automerge would
    /// walk.
    pub ops: u64,
    /// The change's own actor and the other actors it names.
    pub actors: usize,
    /// Operations that make an object: an upper bound on how deep this change nests.
    pub objects: u64,
    /// Deletions (the only operations an honest change holds many of in few bytes: a
    /// cleared narrative is a run of deletions).
    pub deletes: u64,
    /// Bytes that runs of repeated strings add beyond what the chunk spells out.
    pub inflated_bytes: u64,
    /// Some column carries the DEFLATE bit.
    pub compressed: bool,
}

fn malformed(why: &str) -> RecordError {
    RecordError::Malformed(format!("bad change: {why}"))
}

/// A reader that never reads past its end.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: u64) -> Result<&'a [u8], RecordError> {
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.0.len())
            .ok_or_else(|| malformed("truncated"))?;
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(super) fn uleb(&mut self) -> Result<u64, RecordError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.take(1)?[0];
            value |= u64::from(b & 0x7f)
                .checked_shl(7 * i)
                .ok_or_else(|| malformed("bad number"))?;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("bad number"))
    }

    pub(super) fn sleb(&mut self) -> Result<i64, RecordError> {
        let mut value: i64 = 0;
        for i in 0..10 {
            let b = self.take(1)?[0];
            value |= i64::from(b & 0x7f)
                .checked_shl(7 * i)
                .ok_or_else(|| malformed("bad number"))?;
            if b & 0x80 == 0 {
                if i < 9 && b & 0x40 != 0 {
                    value |= -1i64 << (7 * (i + 1));
                }
                return Ok(value);
            }
        }
        Err(malformed("bad number"))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A change chunk's header as far as its columns: the start op, how many other actors
/// it names, and each column's spec and bytes. Reads the header and the column
/// directory only (what [`declared`] and the creation reader, `ops.rs`, both need).
pub(super) struct Chunk<'a> {
    pub start_op: u64,
    pub other_actors: u64,
    pub columns: Vec<(u32, &'a [u8])>,
}

pub(super) fn chunk_columns(chunk: &[u8]) -> Result<Chunk<'_>, RecordError> {
    if chunk.len() < 9 || chunk[..4] != MAGIC || chunk[8] != CHANGE {
        return Err(malformed("not an uncompressed change chunk"));
    }
    let mut r = Reader(&chunk[9..]);
    let len = r.uleb()?;
    let mut r = Reader(r.take(len)?);
    let deps = r.uleb()?;
    r.take(deps.checked_mul(32).ok_or_else(|| malformed("truncated"))?)?;
    let actor = r.uleb()?;
    r.take(actor)?;
    r.uleb()?; // sequence number
    let start_op = r.uleb()?;
    r.sleb()?; // time
    let message = r.uleb()?;
    r.take(message)?;
    let others = r.uleb()?;
    // Each actor takes at least its length byte: a count beyond the bytes left is a lie.
    if others > r.0.len() as u64 {
        return Err(malformed("truncated"));
    }
    for _ in 0..others {
        let n = r.uleb()?;
        r.take(n)?;
    }
    let count = r.uleb()?;
    if count > r.0.len() as u64 {
        return Err(malformed("truncated"));
    }
    let mut directory = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let spec = u32::try_from(r.uleb()?).map_err(|_| malformed("bad column spec"))?;
        directory.push((spec, r.uleb()?));
    }
    let mut columns = Vec::with_capacity(directory.len());
    for (spec, len) in directory {
        columns.push((spec, r.take(len)?));
    }
    Ok(Chunk {
        start_op,
        other_actors: others,
        columns,
    })
}

/// Reads what `chunk` (one whole change chunk, header included) declares. Costs a pass
/// over its bytes; nothing is allocated beyond the column directory.
pub fn declared(chunk: &[u8]) -> Result<Declared, RecordError> {
    let chunk = chunk_columns(chunk)?;
    let mut out = Declared {
        actors: 1 + chunk.other_actors as usize,
        ..Declared::default()
    };
    for (spec, data) in chunk.columns {
        if spec & DEFLATE != 0 {
            // Its runs cannot be read without inflating it: refused on this alone.
            out.compressed = true;
            continue;
        }
        let counted = count_column(spec, data);
        out.ops = out.ops.max(counted.items);
        out.inflated_bytes = out.inflated_bytes.saturating_add(counted.inflated);
        if spec == ACTION {
            out.objects = counted.makes;
            out.deletes = counted.deletes;
        }
    }
    Ok(out)
}

/// One column's declared items, repeated-string bytes and (for the action column)
/// object-making operations.
#[derive(Default)]
struct Counted {
    items: u64,
    inflated: u64,
    makes: u64,
    deletes: u64,
}

/// Counts stop at the first byte that does not parse, keeping what came before: Automerge
/// decodes a column lazily and walks every operation before the bad byte, so a run of
/// a billion followed by garbage must still count as a billion.
fn count_column(spec: u32, data: &[u8]) -> Counted {
    let mut c = Counted::default();
    let _ = count_into(spec, data, &mut c);
    c
}

fn count_into(spec: u32, data: &[u8], c: &mut Counted) -> Result<(), RecordError> {
    let mut r = Reader(data);
    let kind = spec & 7;
    match kind {
        7 => {} // Raw values: plain bytes, counted by the value metadata column.
        4 => {
            // Booleans: alternating run lengths.
            while !r.is_empty() {
                c.items = c.items.saturating_add(r.uleb()?);
            }
        }
        _ => {
            while !r.is_empty() {
                let header = r.sleb()?;
                if header == 0 {
                    c.items = c.items.saturating_add(r.uleb()?);
                    continue;
                }
                let (n, repeated) = (header.unsigned_abs(), header > 0);
                c.items = c.items.saturating_add(n);
                // A repeat run holds one value; a literal run holds n of them, each
                // at least a byte: their count is checked against what is left.
                let values = if repeated { 1 } else { n };
                if values > r.0.len() as u64 {
                    return Err(malformed("truncated column"));
                }
                for _ in 0..values {
                    let value = if kind == 5 {
                        let len = r.uleb()?;
                        r.take(len)?;
                        len
                    } else if kind == 3 {
                        r.sleb()?;
                        0
                    } else {
                        r.uleb()?
                    };
                    let copies = if repeated { n } else { 1 };
                    if kind == 5 && repeated {
                        c.inflated = c.inflated.saturating_add(value.saturating_mul(n - 1));
                    }
                    if spec == ACTION && MAKES.contains(&value) {
                        c.makes = c.makes.saturating_add(copies);
                    }
                    if spec == ACTION && value == DELETE {
                        c.deletes = c.deletes.saturating_add(copies);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    #[test]
    fn an_ordinary_change_declares_what_it_holds() {
        let mut doc = AutoCommit::new();
        let fields = doc.put_object(ROOT, "fields", ObjType::Map).unwrap();
        doc.put(&fields, "name", "Arta").unwrap();
        let text = doc.put_object(&fields, "narrative", ObjType::Text).unwrap();
        doc.splice_text(&text, 0, 0, "hello there").unwrap();
        doc.put_object(ROOT, "comments", ObjType::List).unwrap();
        let change = doc.get_last_local_change().unwrap();
        let d = declared(change.raw_bytes()).unwrap();
        // Automerge's own count: 4 objects and puts, 11 characters.
        assert_eq!(d.ops, change.len() as u64);
        assert_eq!(d.ops, 15);
        assert_eq!((d.actors, d.objects, d.compressed), (1, 3, false));
        assert_eq!(d.inflated_bytes, 0);
    }

    #[test]
    fn a_run_followed_by_garbage_still_counts() {
        // A run of a billion puts, then a byte that is no run header: Automerge would
        // walk the billion before it met the byte.
        let mut column = vec![0x80, 0x94, 0xeb, 0xdc, 0x03, 0x01]; // sleb 10^9, value 1
        column.push(0x80); // an unfinished number
        let c = count_column(ACTION, &column);
        assert_eq!((c.items, c.makes), (1_000_000_000, 0));
    }

    #[test]
    fn signed_numbers() {
        assert_eq!(Reader(&[0x7f]).sleb().unwrap(), -1);
        assert_eq!(Reader(&[0x3f]).sleb().unwrap(), 63);
        assert_eq!(Reader(&[0x80, 0x7f]).sleb().unwrap(), -128);
        assert!(declared(&[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 9]).is_err());
    }
}
