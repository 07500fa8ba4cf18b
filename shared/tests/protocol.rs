//! The wire contract: the encoding of protocol v1 to v8 messages is pinned by
//! committed fixtures (a shipped message never changes shape), versions are checked
//! before anything else, and malformed bytes are errors.

use intake_shared::protocol::*;

fn request() -> SyncRequest {
    SyncRequest {
        version: 1,
        cursor: 300,
        page_bytes: 65_536,
        push: vec![RecordChanges {
            record: [0x01; 16],
            changes: vec![vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3], vec![9; 3]],
        }],
        want_docs: vec![[0x02; 16]],
        ..SyncRequest::default()
    }
}

fn response() -> SyncResponse {
    SyncResponse {
        version: 1,
        results: vec![
            PushResult {
                record: [0x01; 16],
                outcome: Outcome::Stored,
            },
            PushResult {
                record: [0x03; 16],
                outcome: Outcome::Rejected {
                    reason: Rejection::ProtectedField,
                    message: "status".into(),
                },
            },
        ],
        docs: vec![RecordDoc {
            record: [0x02; 16],
            doc: vec![7; 4],
        }],
        changes: vec![RecordChanges {
            record: [0x04; 16],
            changes: vec![vec![5; 2]],
        }],
        removed: vec![[0x05; 16]],
        cursor: 301,
        more: true,
        ..SyncResponse::default()
    }
}

fn fixture(name: &str, bytes: &[u8]) {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if std::env::var_os("INTAKE_BLESS").is_some() {
        std::fs::write(&path, &hex).unwrap();
    }
    let pinned = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing fixture {path}; run with INTAKE_BLESS=1 once"));
    assert_eq!(
        pinned.trim(),
        hex,
        "the encoding of {name} changed: a shipped message must never change shape"
    );
}

/// The records `request()`'s answer covers, in push order.
const PUSHED: [WireId; 2] = [[0x01; 16], [0x03; 16]];

#[test]
fn v1_encoding_is_pinned() {
    fixture("sync-v1-request.hex", &request().encode());
    fixture("sync-v1-response.hex", &response().encode());
    assert_eq!(SyncRequest::decode(&request().encode()).unwrap(), request());
    assert_eq!(
        SyncResponse::decode(&response().encode(), &PUSHED).unwrap(),
        response()
    );
}

#[test]
fn v2_encoding_is_pinned_and_names_only_refusals() {
    let mut req = request();
    req.version = 2;
    let mut resp = response();
    resp.version = 2;
    fixture("sync-v2-request.hex", &req.encode());
    fixture("sync-v2-response.hex", &resp.encode());
    assert_eq!(SyncRequest::decode(&req.encode()).unwrap(), req);
    assert_eq!(SyncResponse::decode(&resp.encode(), &PUSHED).unwrap(), resp);
    // The answer repeats neither pushed id: the refusal is named by its index.
    let encoded = resp.encode();
    for id in PUSHED {
        assert!(!encoded.windows(16).any(|w| w == id), "{id:?} repeated");
    }
    // A refusal of a record that was not pushed is a malformed answer.
    assert!(matches!(
        SyncResponse::decode(&resp.encode(), &PUSHED[..1]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v3_encoding_is_pinned_with_its_pieces() {
    let mut req = request();
    req.version = 3;
    req.page_bytes = 0;
    req.upload = Some(Piece {
        record: [0x06; 16],
        kind: ItemKind::Push,
        digest: [0x0a; 32],
        total: 300,
        offset: 128,
        bytes: vec![0x0b; 3],
    });
    req.resume = Some(Resume {
        digest: [0x0c; 32],
        have: 65_536,
    });
    let mut resp = response();
    resp.version = 3;
    resp.unavailable = vec![[0x07; 16]];
    resp.piece = Some(Piece {
        record: [0x08; 16],
        kind: ItemKind::Doc,
        digest: [0x0c; 32],
        total: 70_000,
        offset: 65_536,
        bytes: vec![0x0d; 2],
    });
    resp.upload = Some(UploadAck {
        digest: [0x0a; 32],
        have: 300,
        outcome: Some(Outcome::Stored),
    });
    fixture("sync-v3-request.hex", &req.encode());
    fixture("sync-v3-response.hex", &resp.encode());
    assert_eq!(SyncRequest::decode(&req.encode()).unwrap(), req);
    assert_eq!(SyncResponse::decode(&resp.encode(), &PUSHED).unwrap(), resp);
    // Without pieces, version 3 is version 2's bytes (bar the version) and four
    // `None`/empty fields: nothing else moved.
    let (mut plain, mut v2) = (request(), request());
    plain.version = 3;
    v2.version = 2;
    let (a, b) = (plain.encode(), v2.encode());
    assert_eq!(a[1..a.len() - 2], b[1..]);
    assert_eq!(a[a.len() - 2..], [0, 0]);
    // Older versions carry no pieces: a server never sends them one.
    let mut old = resp.clone();
    old.version = 2;
    let back = SyncResponse::decode(&old.encode(), &PUSHED).unwrap();
    assert_eq!((back.piece, back.upload), (None, None));
}

#[test]
fn v4_encoding_is_pinned_and_older_versions_hear_of_erasure_as_they_can() {
    let mut req = request();
    req.version = 4;
    let mut resp = response();
    resp.version = 4;
    resp.erased = vec![[0x09; 16]];
    resp.results[1].outcome = Outcome::Rejected {
        reason: Rejection::Erased,
        message: "erased".into(),
    };
    fixture("sync-v4-request.hex", &req.encode());
    fixture("sync-v4-response.hex", &resp.encode());
    assert_eq!(SyncRequest::decode(&req.encode()).unwrap(), req);
    assert_eq!(SyncResponse::decode(&resp.encode(), &PUSHED).unwrap(), resp);
    // The request is version 3's layout; the answer is version 3's and `erased`.
    let mut v3 = req.clone();
    v3.version = 3;
    assert_eq!(req.encode()[1..], v3.encode()[1..]);
    // An older app is told what it understands: the erased record is removed, and the
    // refusal is `Forbidden` (a variant it could not decode otherwise).
    for version in [1, 2, 3] {
        let mut old = resp.clone();
        old.version = version;
        let back = SyncResponse::decode(&old.encode(), &PUSHED).unwrap();
        assert!(back.erased.is_empty(), "v{version}");
        assert_eq!(back.removed, vec![[0x05; 16], [0x09; 16]], "v{version}");
        assert!(
            matches!(
                &back.results[1].outcome,
                Outcome::Rejected {
                    reason: Rejection::Forbidden,
                    ..
                }
            ),
            "v{version}"
        );
    }
}

#[test]
fn v5_encoding_is_pinned_and_is_version_4_with_a_digest_of_the_push() {
    let mut req = request();
    req.version = 5;
    let mut resp = response();
    resp.version = 5;
    fixture("sync-v5-request.hex", &req.encode());
    fixture("sync-v5-response.hex", &resp.encode());
    assert_eq!(SyncRequest::decode(&req.encode()).unwrap(), req);
    assert_eq!(SyncResponse::decode(&resp.encode(), &PUSHED).unwrap(), resp);
    // The request is version 4's bytes and then 8 of digest; the answer is version 4's.
    let (mut v4, mut v4_resp) = (req.clone(), resp.clone());
    v4.version = 4;
    v4_resp.version = 4;
    let (a, b) = (req.encode(), v4.encode());
    assert_eq!(a[1..a.len() - 8], b[1..]);
    assert_eq!(
        a[a.len() - 8..],
        intake_shared::protocol::push_digest(&req.push)
    );
    assert_eq!(resp.encode()[1..], v4_resp.encode()[1..]);
}

#[test]
fn v6_encoding_is_pinned_and_is_version_5_with_the_receipts_of_pulled_changes() {
    let mut req = request();
    req.version = 6;
    let mut resp = response();
    resp.version = 6;
    resp.changes.push(RecordChanges {
        record: [0x06; 16],
        changes: vec![vec![6; 3], vec![7; 3], vec![8; 3]],
    });
    // Four changes: stored at these moments, the third before receipts were kept;
    // the document's two changes, in the order of their hashes.
    let at = 1_795_000_000;
    resp.received = vec![Some(at), Some(at + 2), None, Some(at + 1)];
    resp.doc_received = vec![vec![Some(at - 60), Some(at - 120)]];
    fixture("sync-v6-request.hex", &req.encode());
    fixture("sync-v6-response.hex", &resp.encode());
    assert_eq!(SyncRequest::decode(&req.encode()).unwrap(), req);
    assert_eq!(SyncResponse::decode(&resp.encode(), &PUSHED).unwrap(), resp);
    // The request is version 5's layout; the answer is version 5's and then the
    // receipts: a byte each after the first (5 bytes) but for the unknown one, then
    // the document's, continuing the running sum (a byte each), with the lengths.
    let (mut v5, mut v5_resp) = (req.clone(), resp.clone());
    v5.version = 5;
    v5_resp.version = 5;
    assert_eq!(req.encode()[1..], v5.encode()[1..]);
    let (a, b) = (resp.encode(), v5_resp.encode());
    assert_eq!(a[1..b.len()], b[1..]);
    assert_eq!(a.len() - b.len(), (1 + 5 + 1 + 5 + 5) + (1 + 1 + 1 + 1));
    // An older app gets no receipts; a v6 answer whose receipts do not match its
    // changes or documents is malformed.
    let back = SyncResponse::decode(&v5_resp.encode(), &PUSHED).unwrap();
    assert!(back.received.is_empty() && back.doc_received.is_empty());
    let mut short = b.clone();
    short[0] = 6;
    short.extend([1, 0, 1, 0]);
    assert!(matches!(
        SyncResponse::decode(&short, &PUSHED),
        Err(DecodeError::Malformed(m)) if m.contains("receipts for 1 changes and 1 documents in an answer with 4 and 1")
    ));
}

#[test]
fn unknown_versions_ask_for_an_update() {
    let mut old = request();
    old.version = 0;
    let err = SyncRequest::decode(&old.encode()).unwrap_err();
    assert_eq!(err, DecodeError::Version(0));
    assert!(err.to_string().contains("please update"));
    let mut future = request();
    future.version = PROTOCOL_VERSION + 1;
    assert_eq!(
        SyncRequest::decode(&future.encode()).unwrap_err(),
        DecodeError::Version(PROTOCOL_VERSION + 1)
    );
}

#[test]
fn malformed_messages_are_errors() {
    let bytes = request().encode();
    for bad in [&bytes[..bytes.len() - 1], &[][..], &[0xff, 0xff, 0xff][..]] {
        assert!(SyncRequest::decode(bad).is_err());
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        SyncRequest::decode(&trailing),
        Err(DecodeError::Malformed(_))
    ));
}

/// A record created and then edited at fixed times by a fixed actor: the same bytes on
/// every run. Its two changes: the creating one, and an edit depending on it.
fn created_and_edited() -> (WireId, Vec<u8>, Vec<u8>) {
    use intake_shared::record::Identity;
    use intake_shared::{FormRegistry, Record, RecordId, Value};
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let who = Identity {
        actor: vec![7; 20],
        author: Some("drita".into()),
    };
    let at = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    let mut r = Record::create(RecordId::new_v7(1_790_000_000_000, [3; 10]), form, &who, at);
    let created = r.heads();
    r.edit(at, |e| e.set("urgency", Value::Text("high".into())))
        .unwrap();
    let mut all = r.all_changes();
    assert_eq!(all.len(), 2);
    let edit = all.pop().unwrap();
    let first = all.pop().unwrap();
    assert_eq!(created.len(), 1);
    (r.id().wire(), first, edit)
}

/// A resolver that puts back, for any prefix, another change than the one meant: one
/// with the same first bytes.
fn another_with(_: &WireId, prefix: &Prefix) -> Option<[u8; 32]> {
    let mut other = [0xee; 32];
    other[..4].copy_from_slice(prefix);
    Some(other)
}

#[test]
fn v7_encoding_is_pinned_and_abbreviates_dependencies_the_server_holds() {
    let (id, first, edit) = created_and_edited();
    // The edit alone (its dependency, the creating change, is on the server): sent
    // without it, and 4 bytes of its hash beside the pack.
    let mut req = request();
    req.version = 7;
    req.push = vec![RecordChanges {
        record: id,
        changes: vec![edit.clone()],
    }];
    let mut resp = response();
    resp.version = 7;
    resp.received = vec![Some(1_795_000_000)];
    resp.doc_received = vec![vec![]];
    fixture("sync-v7-request.hex", &req.encode());
    fixture("sync-v7-response.hex", &resp.encode());
    // The answer is version 6's layout.
    let mut v6_resp = resp.clone();
    v6_resp.version = 6;
    assert_eq!(resp.encode()[1..], v6_resp.encode()[1..]);
    assert_eq!(SyncResponse::decode(&resp.encode(), &PUSHED).unwrap(), resp);

    // Abbreviated: 32 bytes of hash become 4, and the count and index 2: 26 fewer.
    let (short, full) = (req.encode(), req.encode_in_full());
    assert_eq!(
        full.len() - short.len(),
        32 - 4 - 2,
        "{} {}",
        full.len(),
        short.len()
    );
    // In full, it is version 5's bytes, an empty list, and what the device knows of
    // the server (here nothing: 8 zero bytes of store id, lock 0).
    let mut v5 = req.clone();
    v5.version = 5;
    assert_eq!(full[1..full.len() - 10], v5.encode()[1..]);
    assert_eq!(full[full.len() - 10..], [0; 10]);
    assert_eq!(SyncRequest::decode(&full).unwrap(), req);
    let mut knows = req.clone();
    knows.known = Known::new(Some("0123456789abcdef0123456789abcdef"), 30);
    let encoded = knows.encode_in_full();
    assert_eq!(
        encoded[encoded.len() - 9..],
        [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 30]
    );
    assert_eq!(SyncRequest::decode(&encoded).unwrap(), knows);
    assert!(knows.known.matches("0123456789abcdef99999999ffffffff", 30));
    assert!(!knows.known.matches("0123456789abcdef99999999ffffffff", 31));
    assert!(!knows.known.matches("1123456789abcdef0123456789abcdef", 30));
    assert!(!Known::default().matches("00000000000000000000000000000000", 0));

    // The server puts the dependency back from the record's stored changes.
    let first_hash: [u8; 32] =
        intake_shared::Record::load(&first, intake_shared::FormRegistry::builtin())
            .unwrap()
            .heads()[0];
    let incoming = SyncRequest::decode_incoming(&short).unwrap();
    assert_eq!(incoming.abbreviated_records(), vec![id]);
    let mut asked = Vec::new();
    let back = incoming
        .expand(|record, prefix| {
            asked.push((*record, *prefix));
            first_hash.starts_with(prefix).then_some(first_hash)
        })
        .unwrap();
    assert_eq!(back, req);
    assert_eq!(asked, vec![(id, first_hash[..4].try_into().unwrap())]);

    // Without the record's changes (a decoder that holds none), it cannot be read.
    assert!(matches!(
        SyncRequest::decode(&short),
        Err(DecodeError::Malformed(_))
    ));
    // A prefix that names nothing, or a wrong change: send it in full, never a guess.
    let unknown = SyncRequest::decode_incoming(&short)
        .unwrap()
        .expand(|_, _| None);
    assert!(
        matches!(unknown, Err(ExpandError::SendInFull(_))),
        "{unknown:?}"
    );
    let wrong = SyncRequest::decode_incoming(&short)
        .unwrap()
        .expand(another_with);
    assert!(
        matches!(wrong, Err(ExpandError::SendInFull(_))),
        "{wrong:?}"
    );

    // Pushed whole (both changes), nothing is abbreviated: the dependency is in the push.
    req.push[0].changes = vec![first, edit];
    assert_eq!(req.encode(), req.encode_in_full());
    let incoming = SyncRequest::decode_incoming(&req.encode()).unwrap();
    assert!(incoming.abbreviated_records().is_empty());
}

#[test]
fn v7_abbreviations_out_of_order_or_past_the_push_are_malformed() {
    let (id, _, edit) = created_and_edited();
    let req = SyncRequest {
        version: 7,
        push: vec![RecordChanges {
            record: id,
            changes: vec![edit],
        }],
        ..SyncRequest::default()
    };
    let short = req.encode();
    // Before the 9 bytes of what the device knows, the list: 1 entry, change 0, 1
    // prefix of 4 bytes.
    let n = short.len() - 9;
    assert_eq!(short[n - 7..n - 4], [1, 0, 1]);
    let mut past = short.clone();
    past[n - 6] = 1;
    let full = req.encode_in_full();
    let m = full.len() - 9;
    assert_eq!(full[m - 1], 0, "an empty list");
    let mut sent_in_full = full[..m - 1].to_vec();
    sent_in_full.extend_from_slice(&short[n - 7..]);
    for bad in [past, sent_in_full] {
        let got = SyncRequest::decode_incoming(&bad)
            .unwrap()
            .expand(|_, _| Some([0; 32]));
        assert!(matches!(got, Err(ExpandError::Decode(_))), "{got:?}");
    }
}

#[test]
fn v8_encoding_is_pinned_and_abbreviates_the_answers_dependencies_the_device_holds() {
    let (id, first, edit) = created_and_edited();
    let first_hash: [u8; 32] =
        intake_shared::Record::load(&first, intake_shared::FormRegistry::builtin())
            .unwrap()
            .heads()[0];
    // The request is version 7's, then whether the answer goes in full.
    let mut req = request();
    req.version = 8;
    let mut v7_req = req.clone();
    v7_req.version = 7;
    let encoded = req.encode();
    assert_eq!(encoded[1..encoded.len() - 1], v7_req.encode()[1..]);
    assert_eq!(encoded[encoded.len() - 1], 0);
    req.full_deps = true;
    assert_eq!(*req.encode().last().unwrap(), 1);
    assert_eq!(SyncRequest::decode(&req.encode()).unwrap(), req);
    fixture("sync-v8-request.hex", &req.encode());

    // An answer pulling the edit alone: its dependency, the creating change, is one the
    // device holds (outside the page), so it goes as 4 bytes of its hash.
    let mut resp = response();
    resp.version = 8;
    resp.changes = vec![RecordChanges {
        record: id,
        changes: vec![edit.clone()],
    }];
    resp.received = vec![Some(1_795_000_000)];
    resp.doc_received = vec![vec![]];
    let short = resp.encode();
    fixture("sync-v8-response.hex", &short);
    let in_full = SyncResponse {
        in_full: true,
        ..resp.clone()
    }
    .encode();
    // 32 bytes of hash are 4, and an index and a count; the list and the digest are
    // 10 bytes more, where an answer with nothing abbreviated has one.
    assert_eq!(in_full.len() + 9 - short.len(), 32 - 4 - 2);
    let mut decoded = SyncResponse::decode(&short, &PUSHED).unwrap();
    assert_eq!(decoded.abbreviated_records(), vec![id]);
    assert_ne!(
        decoded.changes, resp.changes,
        "the edit came without its dependency"
    );
    let mut asked = Vec::new();
    decoded
        .expand(|record, prefix| {
            asked.push((*record, *prefix));
            first_hash.starts_with(prefix).then_some(first_hash)
        })
        .unwrap();
    assert_eq!(decoded.changes, resp.changes);
    assert_eq!(asked, vec![(id, first_hash[..4].try_into().unwrap())]);
    assert!(decoded.short.is_empty() && decoded.digest.is_none());
    // Asked in full, it decodes whole, one byte longer than version 6's answer.
    let mut whole = SyncResponse::decode(&in_full, &PUSHED).unwrap();
    assert!(whole.short.is_empty() && whole.digest.is_none());
    whole.expand(|_, _| None).unwrap();
    assert_eq!(whole.changes, resp.changes);
    let v6 = SyncResponse {
        version: 6,
        ..resp.clone()
    }
    .encode();
    assert_eq!(in_full[1..], [&v6[1..], &[0][..]].concat()[..]);

    // A prefix the device cannot put back, or one put back wrong: ask in full.
    let unknown = SyncResponse::decode(&short, &PUSHED)
        .unwrap()
        .expand(|_, _| None);
    assert!(
        matches!(unknown, Err(ExpandError::SendInFull(_))),
        "{unknown:?}"
    );
    let wrong = SyncResponse::decode(&short, &PUSHED)
        .unwrap()
        .expand(another_with);
    assert!(
        matches!(wrong, Err(ExpandError::SendInFull(_))),
        "{wrong:?}"
    );

    // Both changes in the page: the dependency is in it, nothing is abbreviated.
    resp.changes[0].changes = vec![first, edit];
    resp.received = vec![Some(1_795_000_000); 2];
    assert!(
        SyncResponse::decode(&resp.encode(), &PUSHED)
            .unwrap()
            .short
            .is_empty()
    );
}
