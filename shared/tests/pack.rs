//! Packed changes (protocol v2): real Automerge changes come back byte for byte and are
//! transposed, not carried verbatim; hostile packed bytes are errors, never panics or
//! wrong changes.

use chrono::Utc;
use intake_shared::pack::{pack, unpack};
use intake_shared::protocol::{RecordChanges, SyncRequest};
use intake_shared::record::Identity;
use intake_shared::{FormRegistry, Record, RecordId, Value};
use proptest::prelude::*;

/// Records with a history of several kinds of change, as a device would push them.
fn histories(n: u8, narrative: &str, comments: usize) -> Vec<RecordChanges> {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    (0..n)
        .map(|i| {
            let who = Identity {
                actor: vec![i; 20],
                author: Some(format!("user {i}")),
            };
            let id = RecordId::new_v7(1_790_000_000_000 + u64::from(i), [i; 10]);
            let mut r = Record::create_with(id, form.clone(), &who, Utc::now(), |e| {
                e.set("full_name", Value::Text(format!("Drita Krasniqi {i}")))?;
                e.set("urgency", Value::Text("high".into()))?;
                e.set("narrative", Value::Text(narrative.into()))
            })
            .unwrap();
            for c in 0..comments {
                r.edit(Utc::now(), |e| e.add_comment(&format!("visit {c}")))
                    .unwrap();
            }
            r.edit(Utc::now(), |e| e.set("household_size", Value::Int(4)))
                .unwrap();
            RecordChanges {
                record: *id.as_uuid().as_bytes(),
                changes: r.all_changes(),
            }
        })
        .collect()
}

#[test]
fn real_changes_come_back_byte_for_byte_and_are_transposed() {
    let records = histories(20, "Fëmijët u ndanë në një klasë të veçantë. Дјеца.", 3);
    let packed = pack(&records);
    assert_eq!(packed.verbatim(), 0, "every real change is transposed");
    assert_eq!(packed.counts(), (20, 20 * 5));
    assert_eq!(unpack(&packed).unwrap(), records);
    // A new record's id travels once, as the text its first change writes.
    let wire = postcard::to_allocvec(&packed).unwrap();
    for r in &records {
        assert!(!wire.windows(16).any(|w| w == r.record), "id sent twice");
    }
    // And they are changes Automerge reads, with their original hashes.
    for r in unpack(&packed).unwrap() {
        let mut record = Record::load(&r.changes.concat(), FormRegistry::builtin()).unwrap();
        assert_eq!(record.change_count(), 5);
    }
}

#[test]
fn packing_shrinks_a_batch_after_compression() {
    let records = histories(100, &"The school placed the children apart. ".repeat(10), 0);
    let plain = SyncRequest {
        version: 1,
        cursor: 0,
        page_bytes: 1 << 20,
        push: records.clone(),
        want_docs: vec![],
        ..SyncRequest::default()
    };
    let packed = SyncRequest {
        version: 2,
        ..plain.clone()
    };
    let z = |r: &SyncRequest| zstd_len(&r.encode());
    assert!(
        z(&packed) < z(&plain),
        "packed {} vs plain {}",
        z(&packed),
        z(&plain)
    );
}

fn zstd_len(bytes: &[u8]) -> usize {
    zstd::bulk::compress(bytes, 19).unwrap().len()
}

/// A request of `version` pushing three small records' histories.
fn sample(version: u16) -> SyncRequest {
    SyncRequest {
        version,
        cursor: 7,
        page_bytes: 1 << 16,
        push: histories(3, "text", 1),
        want_docs: vec![[9; 16]],
        ..SyncRequest::default()
    }
}

/// `req` encoded, then damaged: bytes flipped (never by zero), perhaps cut short.
fn damaged(req: &SyncRequest, flips: &[(usize, u8)], cut: usize, truncate: bool) -> Vec<u8> {
    let mut bytes = req.encode();
    for &(at, x) in flips {
        let at = at % bytes.len();
        bytes[at] ^= x | 1;
    }
    if truncate {
        bytes.truncate(cut % bytes.len());
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any corruption of a packed request decodes to an error or to a request that
    /// encodes back to the same bytes: never a panic. (Version 2 to 4 packs carry no
    /// digest, and one can unpack into other valid changes: see the next test.)
    #[test]
    fn corrupted_packed_requests_are_errors(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
        truncate in any::<bool>(),
    ) {
        let bytes = damaged(&sample(2), &flips, cut, truncate);
        if let Ok(decoded) = SyncRequest::decode(&bytes) {
            prop_assert_eq!(SyncRequest::decode(&decoded.encode()).unwrap(), decoded);
        }
    }

    /// Version 5: a corrupted request decodes to an error or to a request whose push is
    /// exactly the one sent (only its other fields can have changed): nothing unsent is
    /// ever decoded. The push's digest is what guarantees it; the same corruption of a
    /// version 4 request (no digest) decodes to other valid changes (found by this
    /// test's first version).
    #[test]
    fn a_corrupted_v5_request_never_decodes_to_changes_that_were_not_sent(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
        truncate in any::<bool>(),
    ) {
        let req = sample(5);
        let bytes = damaged(&req, &flips, cut, truncate);
        if let Ok(decoded) = SyncRequest::decode(&bytes) {
            prop_assert_eq!(decoded.push, req.push);
        }
    }
}

#[test]
fn a_v5_push_that_does_not_match_its_digest_is_refused() {
    // One byte of one change's text flipped inside the pack: the change still
    // unpacks (its checksum is made again) but the push no longer matches.
    let req = SyncRequest {
        version: 5,
        push: histories(2, "a narrative of some length", 0),
        ..SyncRequest::default()
    };
    let bytes = req.encode();
    let needle = b"a narrative of some length";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the text is in the pack");
    let mut damaged = bytes.clone();
    damaged[at + 2] ^= 0x20;
    let e = SyncRequest::decode(&damaged).unwrap_err();
    assert!(e.to_string().contains("digest"), "{e}");
    // As version 4 (no digest), the same damage decodes to a change never sent.
    let mut v4 = req.clone();
    v4.version = 4;
    let bytes = v4.encode();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut damaged = bytes.clone();
    damaged[at + 2] ^= 0x20;
    let decoded = SyncRequest::decode(&damaged).unwrap();
    assert_ne!(decoded.push, v4.push);
}

#[test]
fn whole_records_travel_as_documents_or_as_their_changes() {
    use intake_shared::pack::{pack_docs, unpack_docs};
    use intake_shared::protocol::RecordDoc;
    let records = histories(3, "narrative", 2);
    let form = FormRegistry::builtin();
    let mut docs: Vec<RecordDoc> = records
        .iter()
        .map(|r| RecordDoc {
            record: r.record,
            doc: r.changes.concat(),
        })
        .collect();
    // A compacted document travels verbatim (one chunk), and loads as the same record.
    let mut saved = Record::load(&docs[0].doc, form).unwrap();
    docs.push(RecordDoc {
        record: [8; 16],
        doc: saved.save_plain(),
    });
    docs.push(RecordDoc {
        record: [9; 16],
        doc: vec![1, 2, 3],
    });
    let packed = pack_docs(&docs);
    assert_eq!(packed.verbatim(), 2, "the document and the odd bytes");
    assert_eq!(packed.counts().1, 3 * 4 + 2);
    assert_eq!(unpack_docs(&packed).unwrap(), docs);
}
