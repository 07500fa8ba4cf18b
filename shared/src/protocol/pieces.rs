//! Resumable pieces (protocol version 3): an item too large for what gets through a bad
//! link between two cuts crosses as byte ranges of its encoding, each naming the
//! SHA-256 digest of the whole, so that pieces received before a cut, a kill or a
//! restart are kept, resumed from, and checked before the item is used.
//!
//! Up, the item is one record's pushed changes ([`encode_upload`]); down, it is one
//! whole record or one logged change, as a page would have carried it. The receiver
//! keeps the bytes it has in order and says how many (`have`); the sender sends the next
//! range from there. A different digest means the item changed (an edit meanwhile): the
//! receiver starts again from 0.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{DecodeError, Hash, Outcome, RecordChanges, WireId};

/// What a piece is a piece of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemKind {
    /// A whole record, as in a page's `docs`.
    Doc,
    /// One logged change of a record, as in a page's `changes`.
    Change,
    /// One record's pushed changes ([`encode_upload`]).
    Push,
}

/// A byte range of an item: `bytes` are the item's bytes from `offset` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    pub record: WireId,
    pub kind: ItemKind,
    /// SHA-256 of the whole item.
    pub digest: Hash,
    /// The whole item's length.
    pub total: u32,
    pub offset: u32,
    pub bytes: Vec<u8>,
}

impl Piece {
    /// Whether this piece ends the item.
    pub fn is_last(&self) -> bool {
        u64::from(self.offset) + self.bytes.len() as u64 == u64::from(self.total)
    }

    /// The piece of `item` (digest `digest`) that starts at `offset`, at most `len`
    /// bytes long (at least one byte when any is left).
    pub fn of(
        record: WireId,
        kind: ItemKind,
        digest: Hash,
        item: &[u8],
        offset: usize,
        len: usize,
    ) -> Piece {
        let offset = offset.min(item.len());
        let end = offset.saturating_add(len.max(1)).min(item.len());
        Piece {
            record,
            kind,
            digest,
            total: u32::try_from(item.len()).unwrap_or(u32::MAX),
            offset: u32::try_from(offset).unwrap_or(u32::MAX),
            bytes: item[offset..end].to_vec(),
        }
    }
}

/// The device holds the first `have` bytes of the item with this digest: the next
/// page should continue it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub digest: Hash,
    pub have: u32,
}

/// How much of the device's upload the server holds, and, once it holds all of it,
/// what became of the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadAck {
    pub digest: Hash,
    pub have: u32,
    /// `Some` once the whole item has arrived and was judged like any pushed record.
    pub outcome: Option<Outcome>,
}

/// SHA-256 of an item.
pub fn digest(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// The bytes an upload carries: one record's pushed changes, encoded (postcard).
pub fn encode_upload(changes: &RecordChanges) -> Vec<u8> {
    postcard::to_allocvec(changes).expect("encoding to a Vec cannot fail")
}

/// Decodes a whole upload, exactly.
pub fn decode_upload(bytes: &[u8]) -> Result<RecordChanges, DecodeError> {
    let (changes, rest) = postcard::take_from_bytes::<RecordChanges>(bytes)
        .map_err(|e| DecodeError::Malformed(format!("upload: {e}")))?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "upload: {} trailing bytes",
            rest.len()
        )));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_an_item_exactly() {
        let item: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let d = digest(&item);
        let mut have = Vec::new();
        while have.len() < item.len() {
            let p = Piece::of([1; 16], ItemKind::Doc, d, &item, have.len(), 300);
            assert_eq!(p.offset as usize, have.len());
            have.extend_from_slice(&p.bytes);
            assert_eq!(p.is_last(), have.len() == item.len());
        }
        assert_eq!(have, item);
        assert_eq!(digest(&have), d);
        let empty = Piece::of([1; 16], ItemKind::Doc, d, &item, 5000, 300);
        assert!(empty.bytes.is_empty() && empty.is_last());
    }

    #[test]
    fn an_upload_decodes_exactly() {
        let rc = RecordChanges {
            record: [4; 16],
            changes: vec![vec![1, 2, 3], vec![]],
        };
        let bytes = encode_upload(&rc);
        assert_eq!(decode_upload(&bytes).unwrap(), rc);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_upload(&longer).is_err());
        assert!(decode_upload(&bytes[..bytes.len() - 1]).is_err());
    }
}
