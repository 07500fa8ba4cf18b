//! Strict decoding of Automerge bytes from elsewhere. Automerge's own incremental load
//! silently ignores whatever follows the first bad chunk, and panics on some hostile
//! documents; both are wrong for bytes off the network. Here the input is split into
//! chunks by their header (magic, checksum, type, LEB128 length), every chunk must
//! decode, and each decode runs under `catch_unwind`.

use std::panic::catch_unwind;

use automerge::{AutoCommit, Change, LoadOptions, OnPartialLoad};

use super::RecordError;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;

fn malformed(why: impl Into<String>) -> RecordError {
    RecordError::Malformed(why.into())
}

/// Splits `bytes` into whole chunks (header included), without decoding them.
pub(super) fn split(mut bytes: &[u8]) -> Result<Vec<(u8, &[u8])>, RecordError> {
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 9 || bytes[..4] != MAGIC {
            return Err(malformed("not Automerge data (bad chunk header)"));
        }
        let kind = bytes[8];
        let (len, leb_len) = uleb128(&bytes[9..]).ok_or_else(|| malformed("bad chunk length"))?;
        let total = 9usize
            .checked_add(leb_len)
            .and_then(|n| n.checked_add(usize::try_from(len).ok()?))
            .filter(|n| *n <= bytes.len())
            .ok_or_else(|| malformed("truncated chunk"))?;
        chunks.push((kind, &bytes[..total]));
        bytes = &bytes[total..];
    }
    Ok(chunks)
}

fn uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Decodes every change in `bytes` (change chunks, or whole documents), or fails.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<Change>, RecordError> {
    let mut changes = Vec::new();
    for (kind, chunk) in split(bytes)? {
        match kind {
            CHANGE | COMPRESSED_CHANGE => {
                let change = catch_unwind(|| Change::from_bytes(chunk.to_vec()))
                    .map_err(|_| malformed("a change could not be decoded"))?
                    .map_err(|e| malformed(format!("bad change: {e}")))?;
                changes.push(change);
            }
            DOCUMENT => {
                let mut doc = catch_unwind(|| {
                    let options = LoadOptions::new().on_partial_load(OnPartialLoad::Error);
                    AutoCommit::load_with_options(chunk, options)
                })
                .map_err(|_| malformed("a document could not be decoded"))?
                .map_err(|e| malformed(format!("bad document: {e}")))?;
                changes.extend(doc.get_changes(&[]));
            }
            other => return Err(malformed(format!("unsupported chunk type {other}"))),
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_and_truncation() {
        assert_eq!(uleb128(&[0x7f]), Some((127, 1)));
        assert_eq!(uleb128(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(uleb128(&[0x80]), None);
        let mut chunk = MAGIC.to_vec();
        chunk.extend([0, 0, 0, 0, CHANGE, 5, 1, 2]);
        assert!(matches!(split(&chunk), Err(RecordError::Malformed(_))));
        assert!(split(&[]).unwrap().is_empty());
    }
}
