//! The operations of one uncompressed change chunk, read straight off its columns.
//!
//! Automerge 0.12 offers a change's operations only as its "legacy" expansion, which
//! allocates an actor id and a string for every operation: for a new intake record
//! (some 450 operations, one per character of the narrative) that cost the server
//! about a million instructions, more than everything else it does with the record
//! (issue 16). [`Creation`](super::Creation) needs far less: each operation's object,
//! key, insertion flag, action, scalar value and whether it has predecessors, and
//! only for operations of the change's own actor. This reads exactly that, borrowing
//! strings from the chunk.
//!
//! It is a reader for the shape [`Creation`](super::Creation) accepts, not a general
//! decoder: anything outside it (another actor's ids, marks, a column it does not
//! know, a value type the apps never write) is `None`, and the caller leaves the change
//! to Automerge. The chunk has already been verified by `Change::from_bytes`; a column
//! that still does not parse here is `None` too. The column layout is Automerge's
//! binary format, as `declared.rs` describes it.

use super::declared::{Reader, chunk_columns};

/// An operation of the change, as far as [`Creation`](super::Creation) looks.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Op<'a> {
    /// The counter of the object written (the change's own actor), `None` for the root.
    pub obj: Option<u64>,
    pub key: Key<'a>,
    pub insert: bool,
    pub action: Action<'a>,
    /// The operation overwrites or deletes something (it has predecessors).
    pub has_pred: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Key<'a> {
    Map(&'a str),
    Head,
    /// After the element made by the change's own operation with this counter.
    After(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Action<'a> {
    /// Makes a map (0), list (2) or text (4).
    Make(u64),
    Put(Scalar<'a>),
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Scalar<'a> {
    Str(&'a str),
    Uint(u64),
    Int(i64),
    Bool(bool),
}

const OBJ_ACTOR: u32 = 1;
const OBJ_CTR: u32 = 2;
const KEY_ACTOR: u32 = 1 << 4 | 1;
const KEY_CTR: u32 = 1 << 4 | 3;
const KEY_STR: u32 = 1 << 4 | 5;
const INSERT: u32 = 3 << 4 | 4;
const ACTION: u32 = 4 << 4 | 2;
const VAL_META: u32 = 5 << 4 | 6;
const VAL: u32 = 5 << 4 | 7;
const PRED_GROUP: u32 = 7 << 4;
const PRED_ACTOR: u32 = 7 << 4 | 1;
const PRED_CTR: u32 = 7 << 4 | 3;
const EXPAND: u32 = 9 << 4 | 4;
const MARK_NAME: u32 = 10 << 4 | 5;

/// The operations of `chunk` (one whole uncompressed change chunk) with the change's
/// start op, or `None` when the change is outside what this reads (see the module doc).
pub(super) fn read(chunk: &[u8]) -> Option<(u64, Vec<Op<'_>>)> {
    let chunk = chunk_columns(chunk).ok()?;
    let mut cols = Columns::default();
    for (spec, data) in chunk.columns {
        let slot = match spec {
            OBJ_ACTOR => &mut cols.obj_actor,
            OBJ_CTR => &mut cols.obj_ctr,
            KEY_ACTOR => &mut cols.key_actor,
            KEY_CTR => &mut cols.key_ctr,
            KEY_STR => &mut cols.key_str,
            INSERT => &mut cols.insert,
            ACTION => &mut cols.action,
            VAL_META => &mut cols.val_meta,
            VAL => &mut cols.val,
            PRED_GROUP => &mut cols.pred_group,
            PRED_ACTOR | PRED_CTR => &mut cols.ignored,
            // Marks: never in a record's creation. An empty column is as good as none.
            EXPAND | MARK_NAME if data.is_empty() => &mut cols.ignored,
            _ => return None,
        };
        *slot = data;
    }
    cols.ops(chunk.start_op)
}

#[derive(Default)]
struct Columns<'a> {
    obj_actor: &'a [u8],
    obj_ctr: &'a [u8],
    key_actor: &'a [u8],
    key_ctr: &'a [u8],
    key_str: &'a [u8],
    insert: &'a [u8],
    action: &'a [u8],
    val_meta: &'a [u8],
    val: &'a [u8],
    pred_group: &'a [u8],
    ignored: &'a [u8],
}

impl<'a> Columns<'a> {
    fn ops(&self, start: u64) -> Option<(u64, Vec<Op<'a>>)> {
        let mut obj_actor = Rle::new(self.obj_actor, uleb);
        let mut obj_ctr = Rle::new(self.obj_ctr, uleb);
        let mut key_actor = Rle::new(self.key_actor, uleb);
        let mut key_ctr = Delta(Rle::new(self.key_ctr, sleb), 0);
        let mut key_str = Rle::new(self.key_str, string);
        let mut insert = Bools::new(self.insert);
        let mut action = Rle::new(self.action, uleb);
        let mut val_meta = Rle::new(self.val_meta, uleb);
        let mut val = Reader(self.val);
        let mut pred_group = Rle::new(self.pred_group, uleb);
        let mut ops = Vec::new();
        // The action column has an entry for every operation.
        while !action.done() {
            let obj = match (obj_actor.next()?, obj_ctr.next()?) {
                (None, None) => None,
                (Some(0), Some(ctr)) => Some(ctr),
                _ => return None,
            };
            let key = match (key_actor.next()?, key_ctr.next()?, key_str.next()?) {
                (None, None, Some(s)) => Key::Map(s),
                (None, Some(0), None) => Key::Head,
                (Some(0), Some(ctr), None) if ctr > 0 => Key::After(ctr as u64),
                _ => return None,
            };
            let insert = insert.next()?;
            let code = action.next()??;
            let meta = val_meta.next()?.unwrap_or(0);
            let (kind, len) = (meta & 15, meta >> 4);
            // Null, false and true take no raw bytes, whatever length the metadata
            // says (Automerge reads none for them); an app writes them with length 0.
            if kind <= 2 && len != 0 {
                return None;
            }
            let value = match kind {
                0 => None,
                1 => Some(Scalar::Bool(false)),
                2 => Some(Scalar::Bool(true)),
                3 => Some(Scalar::Uint(whole(val.take(len).ok()?, uleb)?)),
                4 => Some(Scalar::Int(whole(val.take(len).ok()?, sleb)?)),
                6 => Some(Scalar::Str(std::str::from_utf8(val.take(len).ok()?).ok()?)),
                _ => return None,
            };
            let action = match (code, value) {
                // Tables (6) are a relic Automerge 0.12 cannot write into: left to it.
                (0 | 2 | 4, None) => Action::Make(code),
                (1, Some(v)) => Action::Put(v),
                _ => return None,
            };
            let has_pred = pred_group.next()?.unwrap_or(0) > 0;
            ops.push(Op {
                obj,
                key,
                insert,
                action,
                has_pred,
            });
        }
        Some((start, ops))
    }
}

/// A run-length encoded column of unsigned numbers, signed numbers, strings or actor
/// indices (`V`, read by `read`). Reading past its end reads nulls, as Automerge does
/// for a column shorter than the others.
struct Rle<'a, V> {
    r: Reader<'a>,
    read: fn(&mut Reader<'a>) -> Option<V>,
    /// Items left in the current run, and what it is.
    left: u64,
    run: Run<V>,
}

#[derive(Clone, Copy)]
enum Run<V> {
    Null,
    Repeat(V),
    Literal,
}

impl<'a, V: Copy> Rle<'a, V> {
    fn new(data: &'a [u8], read: fn(&mut Reader<'a>) -> Option<V>) -> Rle<'a, V> {
        Rle {
            r: Reader(data),
            read,
            left: 0,
            run: Run::Null,
        }
    }

    fn done(&self) -> bool {
        self.left == 0 && self.r.is_empty()
    }

    /// The next item, `Some(None)` for a null; `None` if the column is bad.
    fn next(&mut self) -> Option<Option<V>> {
        if self.left == 0 {
            if self.r.is_empty() {
                return Some(None);
            }
            let header = self.r.sleb().ok()?;
            if header == 0 {
                self.run = Run::Null;
                self.left = self.r.uleb().ok()?;
            } else if header > 0 {
                self.run = Run::Repeat((self.read)(&mut self.r)?);
                self.left = header as u64;
            } else {
                self.run = Run::Literal;
                self.left = header.unsigned_abs();
            }
            if self.left == 0 {
                return None;
            }
        }
        self.left -= 1;
        match self.run {
            Run::Null => Some(None),
            Run::Repeat(v) => Some(Some(v)),
            Run::Literal => Some(Some((self.read)(&mut self.r)?)),
        }
    }
}

/// A number that is exactly `bytes`, as Automerge reads a value (bytes left over are an
/// error there).
fn whole<'a, V>(bytes: &'a [u8], read: fn(&mut Reader<'a>) -> Option<V>) -> Option<V> {
    let mut r = Reader(bytes);
    let v = read(&mut r)?;
    r.is_empty().then_some(v)
}

fn uleb(r: &mut Reader<'_>) -> Option<u64> {
    r.uleb().ok()
}

fn sleb(r: &mut Reader<'_>) -> Option<i64> {
    r.sleb().ok()
}

fn string<'a>(r: &mut Reader<'a>) -> Option<&'a str> {
    let n = r.uleb().ok()?;
    std::str::from_utf8(r.take(n).ok()?).ok()
}

/// A delta-encoded column: each item adds to the one before; nulls add nothing.
struct Delta<'a>(Rle<'a, i64>, i64);

impl Delta<'_> {
    fn next(&mut self) -> Option<Option<i64>> {
        match self.0.next()? {
            None => Some(None),
            Some(d) => {
                self.1 = self.1.checked_add(d)?;
                Some(Some(self.1))
            }
        }
    }
}

/// A boolean column: alternating run lengths, starting with a run of `false`.
struct Bools<'a> {
    r: Reader<'a>,
    value: bool,
    left: u64,
}

impl<'a> Bools<'a> {
    fn new(data: &'a [u8]) -> Bools<'a> {
        Bools {
            r: Reader(data),
            value: true,
            left: 0,
        }
    }

    fn next(&mut self) -> Option<bool> {
        while self.left == 0 {
            if self.r.is_empty() {
                return Some(false);
            }
            self.left = self.r.uleb().ok()?;
            self.value = !self.value;
        }
        self.left -= 1;
        Some(self.value)
    }
}

impl Scalar<'_> {
    /// As the record model reads a stored scalar (`inspect::scalar`).
    pub fn value(&self) -> crate::value::Value {
        use crate::value::Value;
        match self {
            Scalar::Str(s) => Value::Text(s.to_string()),
            Scalar::Int(i) => Value::Int(*i),
            Scalar::Uint(u) => i64::try_from(*u).map_or(Value::Text(u.to_string()), Value::Int),
            Scalar::Bool(b) => Value::Bool(*b),
        }
    }
}
