//! Strict decoding of Automerge bytes from elsewhere. Automerge's own incremental load
//! silently ignores whatever follows the first bad chunk, and panics on some hostile
//! documents; both are wrong for bytes off the network. Here the input is split into
//! chunks by their header (magic, checksum, type, LEB128 length), every chunk must
//! decode, and each decode runs under `catch_unwind`.
//!
//! Pushed changes are held to more: only uncompressed change chunks ([`decode_pushed`]).
//! A compressed change or a whole document would have Automerge inflate them before
//! anything else can be checked — a small body can expand enormously (a decompression
//! bomb), and Automerge 0.12 panics on some such inputs — while our own devices only
//! ever push uncompressed change chunks (`save_after` and `get_changes` give every
//! change's raw, uncompressed bytes).

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

/// Why a pushed chunk is refused before it is decoded.
pub(super) const PUSH_TAKES_CHANGES_ONLY: &str =
    "compressed changes and documents are not accepted in a push; send uncompressed change chunks";

/// Decodes every change in `bytes` (change chunks, or whole documents), or fails.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<Change>, RecordError> {
    let mut changes = Vec::new();
    for (kind, chunk) in split(bytes)? {
        match kind {
            CHANGE | COMPRESSED_CHANGE => changes.push(change(chunk)?),
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

/// Decodes pushed changes: uncompressed change chunks only. Every chunk's type is
/// checked by its header byte before any chunk is decoded, so Automerge never inflates
/// a pushed byte.
pub(super) fn decode_pushed(bytes: &[u8]) -> Result<Vec<Change>, RecordError> {
    let chunks = split(bytes)?;
    if let Some((kind, _)) = chunks.iter().find(|(kind, _)| *kind != CHANGE) {
        return Err(match *kind {
            DOCUMENT | COMPRESSED_CHANGE => malformed(PUSH_TAKES_CHANGES_ONLY),
            other => malformed(format!("unsupported chunk type {other}")),
        });
    }
    chunks
        .into_iter()
        .map(|(_, chunk)| {
            let c = change(chunk)?;
            // Automerge decodes a change without looking at its checksum, but refuses
            // to load one whose checksum is wrong: stored, it would make its record
            // unreadable. (Found by the `ingest` fuzz target; packed pushes have their
            // checksums rebuilt, so only whole chunks, from version 1 or an upload,
            // can carry a wrong one.)
            if c.hash().0[..4] != chunk[4..8] {
                return Err(malformed("bad change: its checksum does not match"));
            }
            Ok(c)
        })
        .collect()
}

/// The hash of one change chunk as Automerge computes it: SHA-256 over the chunk's
/// type, length and body, so an uncompressed change is hashed without being decoded
/// (a device hashes every change it pulls, to keep the server's receipt of it); a
/// compressed one is decoded (its hash is over the uncompressed form). `None` when
/// the bytes are not exactly one change chunk whose checksum matches.
pub fn change_hash(bytes: &[u8]) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let [(kind, chunk)] = split(bytes).ok()?[..] else {
        return None;
    };
    match kind {
        CHANGE => {
            let hash: [u8; 32] = Sha256::digest(&chunk[8..]).into();
            (hash[..4] == chunk[4..8]).then_some(hash)
        }
        COMPRESSED_CHANGE => change(chunk).ok().map(|c| c.hash().0),
        _ => None,
    }
}

/// The hashes of every change in `bytes` (change chunks or whole documents, as a
/// record is sent), sorted and each once: the order in which the server lists a
/// document's receipts (protocol v6). Uncompressed change chunks are hashed without
/// being decoded. `None` when the bytes do not decode.
pub fn change_hashes(bytes: &[u8]) -> Option<Vec<[u8; 32]>> {
    let chunks = split(bytes).ok()?;
    let mut hashes: Vec<[u8; 32]> = if chunks.iter().all(|(kind, _)| *kind == CHANGE) {
        chunks
            .iter()
            .map(|(_, chunk)| change_hash(chunk))
            .collect::<Option<_>>()?
    } else {
        decode(bytes).ok()?.iter().map(|c| c.hash().0).collect()
    };
    hashes.sort_unstable();
    hashes.dedup();
    Some(hashes)
}

/// One change chunk (type 1 or 2), decoded under `catch_unwind`.
fn change(chunk: &[u8]) -> Result<Change, RecordError> {
    catch_unwind(|| Change::from_bytes(chunk.to_vec()))
        .map_err(|_| malformed("a change could not be decoded"))?
        .map_err(|e| malformed(format!("bad change: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pushed_change_with_a_wrong_checksum_is_refused() {
        let (raw, _, _) = three_forms();
        assert!(decode_pushed(&raw).is_ok());
        let mut damaged = raw.clone();
        damaged[5] ^= 1;
        let err = decode_pushed(&damaged).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }

    #[test]
    fn a_change_is_hashed_as_automerge_hashes_it_compressed_or_not() {
        let (raw, compressed, doc) = three_forms();
        let expected = change(&raw).unwrap().hash().0;
        assert_eq!(change_hash(&raw), Some(expected));
        assert_eq!(change_hash(&compressed), Some(expected));
        assert_ne!(raw, compressed, "the second form really is compressed");
        // Not one change: a document, two changes, a damaged checksum, nothing.
        assert_eq!(change_hash(&doc), None);
        assert_eq!(change_hash(&[raw.clone(), raw.clone()].concat()), None);
        let mut damaged = raw.clone();
        damaged[4] ^= 1;
        assert_eq!(change_hash(&damaged), None);
        assert_eq!(change_hash(&[]), None);
    }

    #[test]
    fn a_documents_change_hashes_are_listed_sorted_whatever_its_form() {
        use automerge::transaction::Transactable;
        let mut doc = AutoCommit::new();
        doc.put(automerge::ROOT, "a", 1).unwrap();
        doc.commit();
        doc.put(automerge::ROOT, "b", 2).unwrap();
        doc.commit();
        let mut expected: Vec<[u8; 32]> = doc.get_changes(&[]).iter().map(|c| c.hash().0).collect();
        expected.sort_unstable();
        let as_changes: Vec<u8> = doc
            .get_changes(&[])
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        assert_eq!(change_hashes(&as_changes), Some(expected.clone()));
        assert_eq!(change_hashes(&doc.save()), Some(expected));
        assert_eq!(change_hashes(b"not automerge"), None);
    }

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

    /// A document made by one change large enough that Automerge compresses it on
    /// request (`Change::bytes`: above 256 bytes): its change raw, its change
    /// compressed, and the whole document.
    fn three_forms() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        use automerge::transaction::Transactable;
        let mut doc = AutoCommit::new();
        doc.put(automerge::ROOT, "note", "a long enough note ".repeat(40))
            .unwrap();
        let mut change = doc.get_last_local_change().unwrap();
        let raw = change.raw_bytes().to_vec();
        let compressed = change.bytes().into_owned();
        let document = doc.save();
        assert_eq!(
            (raw[8], compressed[8], document[8]),
            (CHANGE, COMPRESSED_CHANGE, DOCUMENT)
        );
        (raw, compressed, document)
    }

    #[test]
    fn a_push_takes_uncompressed_change_chunks_only() {
        let (raw, compressed, document) = three_forms();
        // Bytes from storage or a pulled page may hold every kind.
        for bytes in [&raw, &compressed, &document] {
            assert_eq!(decode(bytes).unwrap().len(), 1);
        }
        assert_eq!(decode_pushed(&raw).unwrap().len(), 1);
        let refused = |bytes: &[u8]| match decode_pushed(bytes) {
            Err(RecordError::Malformed(m)) => m,
            other => panic!("accepted: {other:?}"),
        };
        for bytes in [
            compressed.clone(),
            document,
            [raw.clone(), compressed].concat(),
        ] {
            assert_eq!(refused(&bytes), PUSH_TAKES_CHANGES_ONLY);
        }
    }

    #[test]
    fn our_record_api_gives_uncompressed_change_chunks_only() {
        // What a device pushes comes from these three calls; Automerge would compress
        // a change this large if asked for `Change::bytes`, and they must not.
        use crate::record::{Identity, Record};
        let form = crate::FormRegistry::builtin().get("intake", 1).unwrap();
        let who = Identity {
            actor: vec![7; 20],
            author: Some("arta".into()),
        };
        let narrative: String = (0..64 << 10)
            .map(|i: u32| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
            .collect();
        let id = crate::RecordId::new_v7(1_790_000_000_000, [1; 10]);
        let at = chrono::Utc::now();
        let mut r = Record::create_with(id, form, &who, at, |e| {
            e.set("narrative", crate::Value::Text(narrative.clone()))
        })
        .unwrap();
        r.edit(at, |e| {
            e.set(
                "narrative",
                crate::Value::Text(format!("{narrative}, again")),
            )
        })
        .unwrap();
        let incremental = r.save_incremental();
        let since = r.changes_since(&[]);
        let list = r.change_list_since(&[]);
        let mut kinds: Vec<u8> = Vec::new();
        for bytes in [&incremental, &since].into_iter().chain(&list) {
            kinds.extend(split(bytes).unwrap().iter().map(|(kind, _)| *kind));
        }
        assert_eq!(kinds, vec![CHANGE; 6]);
        assert!(list[0].len() > 64 << 10);
        assert_eq!(decode_pushed(&list.concat()).unwrap().len(), 2);
    }

    #[test]
    fn a_pushed_compressed_chunk_is_refused_before_it_is_inflated() {
        // A type-2 chunk whose body is not DEFLATE at all: decoding it would fail with
        // another message (or worse); the header alone refuses it.
        let mut bomb = MAGIC.to_vec();
        bomb.extend([0, 0, 0, 0, COMPRESSED_CHANGE, 4, 0xde, 0xad, 0xbe, 0xef]);
        assert!(
            matches!(decode(&bomb), Err(RecordError::Malformed(m)) if m != PUSH_TAKES_CHANGES_ONLY)
        );
        assert!(
            matches!(decode_pushed(&bomb), Err(RecordError::Malformed(m)) if m == PUSH_TAKES_CHANGES_ONLY)
        );
        let mut bundle = MAGIC.to_vec();
        bundle.extend([0, 0, 0, 0, 3, 0]);
        assert!(
            matches!(decode_pushed(&bundle), Err(RecordError::Malformed(m)) if m == "unsupported chunk type 3")
        );
    }
}
