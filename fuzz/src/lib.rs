//! The bodies of Intake's fuzz targets: each takes the fuzzer's bytes and drives the
//! production decoding and merging code with them the way the server or the device
//! does, with no `catch_unwind` of its own. A panic here is a bug of ours: the only
//! panics production tolerates are Automerge's, inside the `catch_unwind`s `shared`
//! already has around every decode and merge of untrusted bytes.
//!
//! The same file is compiled into a stable test (`shared/tests/fuzz_replay.rs`) that
//! replays every committed corpus and crash input, so machines without cargo-fuzz
//! still run them.
//!
//! Input layout, every target: the low bit of the first byte picks the mode. Raw: the
//! rest is what arrives on the wire. Wrapped: the rest is split into pieces (a length
//! byte, then that many bytes) and each piece becomes the body of a well-formed
//! Automerge change chunk (magic, checksum, type, length: [`change_chunk`]), so the
//! fuzzer spends its time past the first check, inside the change decoder and the merge.
//! The other bits of the first byte pick variants (a stored record or none, …).

use std::sync::{Arc, OnceLock};

use intake_shared::pack::{self, Packed};
use intake_shared::protocol::{
    PROTOCOL_VERSION, RecordChanges, RecordDoc, SyncRequest, SyncResponse, count_request_entries,
};
use intake_shared::record::{Identity, Incoming, decode_incoming};
use intake_shared::{Form, FormRegistry, Lang, Record, RecordId, Value};
use sha2::{Digest, Sha256};

/// Runs `target` on `data` as a fuzz target: panics that production catches (Automerge's,
/// inside `shared`'s `catch_unwind`s) unwind quietly to those; one that escapes `target`
/// is reported with its message and aborts, which libFuzzer counts as a crash.
/// (libfuzzer-sys's own panic hook aborts on every panic, caught or not.)
pub fn fuzz(data: &[u8], target: Target) {
    use std::cell::RefCell;
    thread_local!(static LAST: RefCell<String> = const { RefCell::new(String::new()) });
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            LAST.with(|l| *l.borrow_mut() = info.to_string());
        }))
    });
    if std::panic::catch_unwind(|| target(data)).is_err() {
        LAST.with(|l| eprintln!("uncaught panic: {}", l.borrow()));
        std::process::abort();
    }
}

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHANGE: u8 = 1;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by name, for the replay test and the seed writer.
pub const TARGETS: [(&str, Target); 5] = [
    ("sync_request", sync_request),
    ("unpack", unpack),
    ("ingest", ingest),
    ("apply_page", apply_page),
    ("form_value", form_value),
];

/// A change chunk around `body`, framed as Automerge frames one: the checksum is the
/// first 4 bytes of SHA-256 over the chunk type, the body's length (LEB128) and the body.
pub fn change_chunk(body: &[u8]) -> Vec<u8> {
    let mut typed = vec![CHANGE];
    let mut n = body.len() as u64;
    while n >= 0x80 {
        typed.push((n as u8) | 0x80);
        n >>= 7;
    }
    typed.push(n as u8);
    typed.extend_from_slice(body);
    let hash = Sha256::digest(&typed);
    [&MAGIC[..], &hash[..4], &typed].concat()
}

/// The body of a change chunk (what [`change_chunk`] wraps), for seeds made from real
/// changes. `None` for anything that is not one uncompressed change chunk.
pub fn change_body(chunk: &[u8]) -> Option<&[u8]> {
    if chunk.len() < 10 || chunk[..4] != MAGIC || chunk[8] != CHANGE {
        return None;
    }
    let mut at = 9;
    while *chunk.get(at)? & 0x80 != 0 {
        at += 1;
    }
    Some(&chunk[at + 1..])
}

/// The mode bits and the rest of an input.
fn mode(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(b, rest)| (*b, rest))
}

/// Splits `rest` into length-prefixed pieces (at most 64).
fn pieces(mut rest: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        out.push(&tail[..n]);
        rest = &tail[n..];
        if out.len() == 64 {
            break;
        }
    }
    out
}

/// The changes an input carries: its pieces, wrapped as change chunks or as they are.
fn changes(wrapped: bool, rest: &[u8]) -> Vec<Vec<u8>> {
    pieces(rest)
        .into_iter()
        .map(|p| if wrapped { change_chunk(p) } else { p.to_vec() })
        .collect()
}

/// The record every target that needs one finds stored: made once, with the real form
/// and a fixed time and actor, so inputs replay the same everywhere.
pub fn stored() -> &'static (RecordId, Vec<u8>) {
    static STORED: OnceLock<(RecordId, Vec<u8>)> = OnceLock::new();
    STORED.get_or_init(|| {
        let id = RecordId::new_v7(1_790_000_000_000, [3; 10]);
        let form = FormRegistry::builtin()
            .get("intake", 1)
            .expect("builtin form");
        let mut r = Record::create_with(id, form, &identity(), at(), |e| {
            e.set("narrative", Value::Text("seed narrative".into()))
        })
        .expect("a fixture record");
        r.edit(at(), |e| e.add_comment("a first comment"))
            .expect("a fixture comment");
        (id, r.save_plain())
    })
}

/// The fixture record, loaded as the server and the device load a stored one.
pub fn stored_record() -> Record {
    Record::load(&stored().1, FormRegistry::builtin()).expect("the fixture record loads")
}

pub fn identity() -> Identity {
    Identity {
        actor: vec![7; 16],
        author: Some("arta".into()),
    }
}

pub fn at() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("a fixed time")
}

/// The server's sync request decoder, as `routes/sync.rs` runs it: counted without
/// decoding, then decoded; then every pushed change inspected as `sync.rs` does.
/// Whatever decodes must have been counted exactly: the count is what refuses an
/// oversized request before it is decoded.
pub fn sync_request(data: &[u8]) {
    let Some((m, rest)) = mode(data) else { return };
    let bytes = if m & 1 == 0 {
        rest.to_vec()
    } else {
        let (version, rest) = rest.split_first().unwrap_or((&0, &[]));
        SyncRequest {
            version: 1 + u16::from(*version) % PROTOCOL_VERSION,
            cursor: u64::from(m >> 1),
            page_bytes: 0,
            push: vec![RecordChanges {
                record: stored().0.wire(),
                changes: changes(true, rest),
            }],
            want_docs: vec![[9; 16]],
            upload: None,
            resume: None,
            known: Default::default(),
            full_deps: false,
        }
        .encode()
    };
    let counted = count_request_entries(&bytes);
    let Ok(req) = SyncRequest::decode(&bytes) else {
        return;
    };
    let changes: usize = req.push.iter().map(|r| r.changes.len()).sum();
    assert_eq!(
        counted,
        Some((req.push.len() + req.want_docs.len(), changes)),
        "a decodable request must be counted exactly"
    );
    for r in &req.push {
        for c in &r.changes {
            if let Ok(decoded) = decode_incoming(c) {
                for i in &decoded {
                    let _ = i.described();
                }
            }
        }
    }
}

/// The packed-change unpacker. Raw: postcard bytes of a [`Packed`], unpacked (as a
/// version 2+ request or response is); whatever unpacks packs again to the same
/// changes. Wrapped: well-formed change chunks packed and unpacked come back byte for
/// byte (a change's hash, which names it everywhere, is computed over those bytes).
pub fn unpack(data: &[u8]) {
    let _ = unpacked(data);
}

fn unpacked(data: &[u8]) -> Option<()> {
    let (m, rest) = mode(data)?;
    let records: Vec<RecordChanges> = if m & 1 == 0 {
        let packed: Packed = postcard::from_bytes(rest).ok()?;
        let _ = pack::unpack_docs(&packed);
        pack::unpack(&packed).ok()?
    } else {
        // Two records, so that column data of several changes interleaves.
        let mut all = changes(true, rest);
        let second = all.split_off(all.len() / 2);
        vec![
            RecordChanges {
                record: stored().0.wire(),
                changes: all,
            },
            RecordChanges {
                record: [m; 16],
                changes: second,
            },
        ]
    };
    let again = pack::unpack(&pack::pack(&records)).expect("what was packed unpacks");
    assert_eq!(again, records, "packing changed a change");
    Some(())
}

/// Whether `ingest` takes `data` as a new record made by one creating change that the
/// server reads off its operations (`Creation`), the path whose agreement with
/// Automerge `ingest` checks: the replay test wants the corpus to reach it.
pub fn ingest_reads_a_creation(data: &[u8]) -> bool {
    let Some((m, rest)) = mode(data) else {
        return false;
    };
    let changes = changes(m & 1 == 1, rest);
    if m & 2 == 2 || changes.len() != 1 {
        return false;
    }
    matches!(decode_incoming(&changes[0]).as_deref(),
        Ok([c]) if c.creation(FormRegistry::builtin()).is_some())
}

/// Change ingestion on the server: a pushed batch for one record judged and merged as
/// `server/src/sync.rs` (`inspect`, `prepare`, `judge_in_document`) does, minus the
/// storage and the policy (who may write what), against the fixture record (mode bit
/// 1) or none.
pub fn ingest(data: &[u8]) {
    let Some((m, rest)) = mode(data) else { return };
    let (id, _) = stored();
    let mut incoming: Vec<Incoming> = Vec::new();
    for bytes in changes(m & 1 == 1, rest) {
        // The server reads what a change declares before Automerge decodes it (its
        // column directory and run headers): that reader must never panic, and a
        // change it finds declaring more than the server's cheap-operation bound is
        // refused there, so not walked here either.
        if let Ok(d) = intake_shared::record::declared(&bytes)
            && d.ops.saturating_sub(d.deletes) > bytes.len() as u64 + (64 << 10)
        {
            return;
        }
        match decode_incoming(&bytes) {
            Ok(mut one) if one.len() == 1 => incoming.push(one.remove(0)),
            _ => return, // Refused: `Rejection::Malformed`.
        }
    }
    let mut record = (m & 2 == 2).then(stored_record);
    let stored_status = record
        .as_ref()
        .map(|r| r.review_values("status"))
        .unwrap_or_default();
    let new: Vec<&Incoming> = match record.as_mut() {
        Some(r) => incoming
            .iter()
            .filter(|c| !r.has_change(&c.info.hash))
            .collect(),
        None => incoming.iter().collect(),
    };
    if new.is_empty() {
        return;
    }
    let (built, infos) = match (&record, new.as_slice()) {
        (None, [only]) if only.root_writes_pending() => {
            // The server stores a creating change it can read without building it
            // (`Creation`): whatever it reads, Automerge must build, and read the same.
            if let Some(created) = only.creation(FormRegistry::builtin())
                && let Err(e) = created.verify(only, FormRegistry::builtin())
            {
                panic!("a creation read without building disagrees: {e}");
            }
            match Record::creation(only, FormRegistry::builtin()) {
                Ok((built, info)) => (Some(built), vec![info]),
                Err(_) => return,
            }
        }
        _ => match new.iter().map(|c| c.described()).collect() {
            Ok(infos) => (None, infos),
            Err(_) => return,
        },
    };
    if record.is_none() {
        let here: Vec<[u8; 32]> = infos.iter().map(|c| c.hash).collect();
        if infos
            .iter()
            .any(|c| c.deps.iter().any(|d| !here.contains(d)))
        {
            return;
        }
    }
    let built_alone = built.is_some();
    let merged = match (built, record) {
        (Some(built), _) => Ok(built),
        (None, Some(r)) => r.with_incoming(&new),
        (None, None) => Record::from_incoming(&new, FormRegistry::builtin()),
    };
    let Ok(mut record) = merged else { return };
    if record.id() != *id {
        return;
    }
    for (change, info) in new.iter().zip(&infos) {
        if !built_alone && record.check_appends(change).is_err() {
            return;
        }
        let _ = stored_status.len();
        let _ = record.review_values_at("status", &info.deps);
        let _ = record.review_values_at("status", &[info.hash]);
        let _ = record.review_values_at("assigned_to", &[info.hash]);
    }
    let (doc, merged) = match new.as_slice() {
        [only] if m & 2 == 0 => (only.info.bytes.clone(), false),
        _ => (record.save_plain(), true),
    };
    // As the server does: a merged document that does not load again is refused (the
    // first crash of this target; in release builds Automerge 0.12 can merge hostile
    // changes into operations out of order, which its own `debug_assert` would catch).
    if merged && Record::load(&doc, FormRegistry::builtin()).is_err() {
        return;
    }
    let _ = (record.assigned_to(), record.status(), record.heads());
    let _ = (record.validate(), record.has_conflicts(), record.to_json());
}

/// The device applying a pull page, as `client/src/sync/http.rs` decodes it and
/// `client/src/store/sync_state.rs` (`commit_page`) takes in each document and each
/// record's changes: applied to the fixture record when the device holds it (mode bit
/// 1), loaded as a new record otherwise.
pub fn apply_page(data: &[u8]) {
    let Some((m, rest)) = mode(data) else { return };
    let bytes = if m & 1 == 0 {
        rest.to_vec()
    } else {
        SyncResponse {
            version: PROTOCOL_VERSION,
            changes: vec![RecordChanges {
                record: stored().0.wire(),
                changes: changes(true, rest),
            }],
            // Every dependency in full: the changes reach the store as they are.
            in_full: true,
            ..SyncResponse::default()
        }
        .encode()
    };
    let Ok(mut page) = SyncResponse::decode(&bytes, &[]) else {
        return;
    };
    // Version 8: prefixes this reader holds no change for, or a digest that does not
    // hold, are what a device asks again in full for; nothing of such a page is kept.
    if page.expand(|_, _| None).is_err() {
        return;
    }
    let incoming = page
        .docs
        .into_iter()
        .map(|d| d.doc)
        .chain(page.changes.into_iter().map(|c| c.changes.concat()));
    for bytes in incoming {
        let merged = if m & 2 == 2 {
            let mut r = stored_record();
            r.apply(&bytes).map(|()| r)
        } else {
            Record::load(&bytes, FormRegistry::builtin())
        };
        let Ok(mut record) = merged else { continue };
        let _ = (record.id(), record.is_complete_history());
        record.set_identity(&identity());
        let saved = record.save();
        let _ = (record.validate(), record.has_conflicts(), record.to_json());
        let _ = (record.comments(), record.actions(), record.conflicts());
        // Not asserted: the client stores its records its own way (`save_in`), and
        // whether a record that loads wrongly here is unreadable there is not yet known.
        let _ = Record::load(&saved, FormRegistry::builtin());
    }
}

/// Form value parsing: what a person types (`intake --set FIELD=VALUE`, the field
/// app's inputs, imported JSON) parsed against a field of a builtin form; and, wrapped,
/// values arriving in a change applied to the fixture record, validated against its
/// form. Every error is rendered in every language.
pub fn form_value(data: &[u8]) {
    let Some((m, rest)) = mode(data) else { return };
    if m & 1 == 1 {
        let mut r = stored_record();
        for c in changes(true, rest) {
            let _ = r.apply(&c);
        }
        for issue in r.validate() {
            for lang in LANGS {
                let _ = issue.message(lang);
            }
        }
        let _ = r.values();
        return;
    }
    let forms: Vec<&Arc<Form>> = FormRegistry::builtin().iter().collect();
    let Some((&pick, input)) = rest.split_first() else {
        return;
    };
    let form = forms[usize::from(m >> 1) % forms.len()];
    let fields = form.fields();
    let field = &fields[usize::from(pick) % fields.len()];
    let input = String::from_utf8_lossy(input);
    let render = |rule: intake_shared::Rule| {
        for lang in LANGS {
            let _ = rule.message(lang);
        }
    };
    match form.parse_input(&field.name, &input) {
        Ok(value) => {
            assert!(
                form.check_value(field, &value).is_ok(),
                "parsed but invalid"
            );
            let made = Record::create_with(stored().0, form.clone(), &identity(), at(), |e| {
                e.set(&field.name, value.clone())
            });
            let mut made = made.expect("a parsed value is accepted by its field");
            assert_eq!(made.get(&field.name), Some(value), "stored value differs");
            let _ = made.to_json();
        }
        Err(rule) => render(rule),
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&input)
        && let Some(value) = Value::from_json(&json)
        && let Err(rule) = form.check_value(field, &value)
    {
        render(rule);
    }
}

const LANGS: [Lang; 7] = [
    Lang::Sq,
    Lang::SrLatn,
    Lang::SrCyrl,
    Lang::En,
    Lang::Tr,
    Lang::Bs,
    Lang::Rom,
];

/// A creating change of a record with a name, a short text and a comment list, in
/// fewer than 255 bytes.
fn small_creation() -> Vec<u8> {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutoCommit, ObjType, ROOT};
    let mut doc = AutoCommit::new().with_actor(ActorId::from(&[7u8; 16][..]));
    let seed = (|| -> Result<(), automerge::AutomergeError> {
        doc.put(ROOT, "id", stored().0.to_string())?;
        doc.put(ROOT, "form", "intake")?;
        doc.put(ROOT, "form_version", 1i64)?;
        doc.put(ROOT, "status", "draft")?;
        let fields = doc.put_object(ROOT, "fields", ObjType::Map)?;
        doc.put(&fields, "full_name", "Ana")?;
        doc.put(&fields, "birth_year", 1990i64)?;
        let text = doc.put_object(&fields, "narrative", ObjType::Text)?;
        doc.splice_text(&text, 0, 0, "ë!")?;
        doc.put_object(ROOT, "comments", ObjType::List)?;
        Ok(())
    })();
    seed.expect("a fresh document takes these writes");
    doc.commit();
    let chunk = doc.get_changes(&[])[0].raw_bytes().to_vec();
    assert!(
        chunk.len() <= 255,
        "the small creation is {} bytes",
        chunk.len()
    );
    chunk
}

/// Seed inputs made from real data: the committed protocol fixtures and the fixture
/// record's own changes, in both modes. (`INTAKE_FUZZ_WRITE_SEEDS=1` on the replay test
/// writes them to `fuzz/corpus/`.)
pub fn seeds(fixtures: &[Vec<u8>]) -> Vec<(&'static str, Vec<u8>)> {
    let mut r = stored_record();
    r.set_identity(&identity());
    let before = r.heads();
    r.edit(at(), |e| {
        e.set("narrative", Value::Text("an edited narrative".into()))?;
        e.add_comment("a second comment")
    })
    .expect("a fixture edit");
    let follow_up = r.change_list_since(&before);
    let all = r.change_list_since(&[]);
    let framed = |chunks: &[Vec<u8>]| -> Vec<u8> {
        chunks
            .iter()
            .filter_map(|c| change_body(c))
            .flat_map(|b| {
                // A piece is at most 255 bytes: longer bodies are seeded cut short
                // (the fuzzer grows them back).
                let b = &b[..b.len().min(255)];
                std::iter::once(b.len() as u8).chain(b.iter().copied())
            })
            .collect()
    };
    let raw_pieces = |chunks: &[Vec<u8>]| -> Vec<u8> {
        chunks
            .iter()
            .flat_map(|c| {
                let c = &c[..c.len().min(255)];
                std::iter::once(c.len() as u8).chain(c.iter().copied())
            })
            .collect()
    };
    let mut out = Vec::new();
    for f in fixtures {
        out.push(("sync_request", [&[0u8][..], f].concat()));
        out.push(("apply_page", [&[0u8][..], f].concat()));
        out.push(("apply_page", [&[2u8][..], f].concat()));
        if let Ok(req) = SyncRequest::decode(f) {
            let packed = pack::pack(&req.push);
            out.push((
                "unpack",
                [vec![0], postcard::to_allocvec(&packed).unwrap()].concat(),
            ));
        }
    }
    // A new record small enough for one piece (at most 255 bytes), of the shape the
    // server reads off its operations without building it (`Creation`): the fuzzer
    // mutates it, and `ingest` checks each reading against Automerge's.
    let small = vec![small_creation()];
    out.push(("ingest", [vec![1], framed(&small)].concat()));
    out.push(("ingest", [vec![0], raw_pieces(&small)].concat()));
    for (mode, chunks) in [(2u8, &follow_up), (0, &all)] {
        out.push(("sync_request", [vec![1, 3], framed(chunks)].concat()));
        out.push(("unpack", [vec![1], framed(chunks)].concat()));
        out.push(("ingest", [vec![mode | 1], framed(chunks)].concat()));
        out.push(("ingest", [vec![mode], raw_pieces(chunks)].concat()));
        out.push(("apply_page", [vec![mode | 1], framed(chunks)].concat()));
        out.push(("form_value", [vec![1], framed(chunks)].concat()));
    }
    let (id, doc) = stored();
    let page = SyncResponse {
        version: PROTOCOL_VERSION,
        docs: vec![RecordDoc {
            record: id.wire(),
            doc: doc.clone(),
        }],
        ..SyncResponse::default()
    };
    out.push(("apply_page", [vec![0], page.encode()].concat()));
    for (pick, input) in [
        (0u8, "2026-04-19"),
        (1, "yes"),
        (2, "42"),
        (3, "roma"),
        (4, "jo"),
        (5, "\"text\""),
        (6, "true"),
    ] {
        for form in 0..4u8 {
            out.push((
                "form_value",
                [vec![form << 1, pick], input.as_bytes().to_vec()].concat(),
            ));
        }
    }
    out
}
