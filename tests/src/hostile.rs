//! Hostile but well-formed Automerge changes, built byte by byte (issue 13, item 2):
//! every chunk has the right magic, checksum, header and columns, and Automerge's own
//! parser accepts its framing; what makes it hostile is what its run-length encoding
//! declares (a billion operations, megabytes of repeated keys) or what it names
//! (thousands of actors). `tests/tests/e2e/hostile_docs.rs` pushes them at a real server.
//!
//! The change layout (Automerge's binary format): magic, checksum (first 4 bytes of
//! SHA-256 over type, length and body), type 1, body length (LEB128), then deps, actor,
//! seq, start op, time, message, other actors, column directory (spec, length), column
//! data, extra bytes. A column spec is `id << 4 | deflate bit 8 | type`.

use sha2::{Digest, Sha256};

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

pub fn uleb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn sleb(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

/// A change chunk around `body`, with its checksum.
pub fn chunk(body: &[u8]) -> Vec<u8> {
    let mut typed = vec![1u8];
    uleb(&mut typed, body.len() as u64);
    typed.extend_from_slice(body);
    let hash = Sha256::digest(&typed);
    [&MAGIC[..], &hash[..4], &typed].concat()
}

/// The parts of a change body this module rewrites.
#[derive(Clone, Debug)]
pub struct Body {
    pub deps: Vec<[u8; 32]>,
    pub actor: Vec<u8>,
    pub seq: u64,
    pub start_op: u64,
    pub time: i64,
    pub message: Vec<u8>,
    pub others: Vec<Vec<u8>>,
    /// (spec, data) in spec order.
    pub columns: Vec<(u32, Vec<u8>)>,
    pub extra: Vec<u8>,
}

impl Body {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        uleb(&mut b, self.deps.len() as u64);
        for d in &self.deps {
            b.extend_from_slice(d);
        }
        uleb(&mut b, self.actor.len() as u64);
        b.extend_from_slice(&self.actor);
        uleb(&mut b, self.seq);
        uleb(&mut b, self.start_op);
        sleb(&mut b, self.time);
        uleb(&mut b, self.message.len() as u64);
        b.extend_from_slice(&self.message);
        uleb(&mut b, self.others.len() as u64);
        for a in &self.others {
            uleb(&mut b, a.len() as u64);
            b.extend_from_slice(a);
        }
        uleb(&mut b, self.columns.len() as u64);
        for (spec, data) in &self.columns {
            uleb(&mut b, u64::from(*spec));
            uleb(&mut b, data.len() as u64);
        }
        for (_, data) in &self.columns {
            b.extend_from_slice(data);
        }
        b.extend_from_slice(&self.extra);
        b
    }

    pub fn chunk(&self) -> Vec<u8> {
        chunk(&self.encode())
    }

    /// Parses the body of a real (uncompressed) change chunk.
    pub fn parse(chunk: &[u8]) -> Body {
        assert!(chunk[..4] == MAGIC && chunk[8] == 1, "a change chunk");
        let mut r = &chunk[9..];
        let len = leb(&mut r) as usize;
        assert_eq!(r.len(), len);
        let deps = (0..leb(&mut r))
            .map(|_| take(&mut r, 32).try_into().unwrap())
            .collect();
        let n = leb(&mut r) as usize;
        let actor = take(&mut r, n).to_vec();
        let seq = leb(&mut r);
        let start_op = leb(&mut r);
        let time = leb(&mut r) as i64; // our changes' times are positive
        let n = leb(&mut r) as usize;
        let message = take(&mut r, n).to_vec();
        let others = (0..leb(&mut r))
            .map(|_| {
                let n = leb(&mut r) as usize;
                take(&mut r, n).to_vec()
            })
            .collect();
        let dir: Vec<(u32, usize)> = (0..leb(&mut r))
            .map(|_| (leb(&mut r) as u32, leb(&mut r) as usize))
            .collect();
        let columns = dir
            .into_iter()
            .map(|(spec, n)| (spec, take(&mut r, n).to_vec()))
            .collect();
        Body {
            deps,
            actor,
            seq,
            start_op,
            time,
            message,
            others,
            columns,
            extra: r.to_vec(),
        }
    }
}

fn leb(r: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for i in 0.. {
        let b = take(r, 1)[0];
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    v
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, rest) = r.split_at(n);
    *r = rest;
    head
}

/// A run-length column holding one run of `n` copies of `value` (already encoded).
fn run(n: u64, value: &[u8]) -> Vec<u8> {
    let mut c = Vec::new();
    sleb(&mut c, n as i64);
    c.extend_from_slice(value);
    c
}

fn uleb_of(v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    uleb(&mut out, v);
    out
}

/// `n` operations "put null at `key`" in one object, declared in a few bytes: one run
/// per column. `obj`: `None` for the root, else (actor index, counter) of a map.
pub fn put_run(obj: Option<(u64, u64)>, key: &[u8], n: u64) -> Vec<(u32, Vec<u8>)> {
    let mut key_value = uleb_of(key.len() as u64);
    key_value.extend_from_slice(key);
    let mut columns = Vec::new();
    if let Some((actor, counter)) = obj {
        columns.push((1, run(n, &uleb_of(actor)))); // objActor
        columns.push((2, run(n, &uleb_of(counter)))); // objCtr
    }
    columns.push((1 << 4 | 5, run(n, &key_value))); // keyStr
    columns.push((3 << 4 | 4, uleb_of(n))); // insert: a run of n falses
    columns.push((4 << 4 | 2, run(n, &uleb_of(1)))); // action: put
    columns.push((5 << 4 | 6, run(n, &uleb_of(0)))); // value: null
    columns.push((7 << 4, run(n, &uleb_of(0)))); // no predecessors
    columns
}

/// `n` operations "delete `key`" in one object (no predecessors), declared in a few
/// bytes like [`put_run`]'s puts.
pub fn delete_run(obj: Option<(u64, u64)>, key: &[u8], n: u64) -> Vec<(u32, Vec<u8>)> {
    let mut columns = put_run(obj, key, n);
    for (spec, data) in &mut columns {
        if *spec == 4 << 4 | 2 {
            *data = run(n, &uleb_of(3)); // action: delete
        }
    }
    columns
}

/// A change of `columns` by `actor`.
pub fn body(actor: &[u8], deps: Vec<[u8; 32]>, seq: u64, start_op: u64) -> Body {
    Body {
        deps,
        actor: actor.to_vec(),
        seq,
        start_op,
        time: 1_790_000_000_000,
        message: Vec::new(),
        others: Vec::new(),
        columns: Vec::new(),
        extra: Vec::new(),
    }
}
