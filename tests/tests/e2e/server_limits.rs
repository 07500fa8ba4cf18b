//! Limits on everything that comes off the network, against the real server started
//! with small limits: oversize and inflating bodies, too many changes or records, too
//! many operations in a change, a document growing past its limit, malformed bodies
//! and headers, an old protocol version, garbage enrolments and hostile Automerge bytes.
//! Each gets a 4xx with a JSON message (or a 200 whose push is rejected with the right
//! reason) — never a 5xx — and the server's database is byte-for-byte what it was.
//! Guessing enrolment codes is rate-limited with a `Retry-After` (its window expiring is
//! covered by the unit test in `server/src/auth.rs`). Two regressions: a page limit
//! below the minimum page is honoured instead of panicking, and a tiny body of millions
//! of empty changes is refused by count before it is decoded (it used to allocate
//! ~800 MB first).

use chrono::Utc;
use intake_server::storage::Role;
use intake_server::{Limits, Settings};
use intake_shared::Value;
use intake_shared::protocol::{
    Outcome, PROTOCOL_VERSION, RecordChanges, Rejection, SyncRequest, VERSION_HEADER,
};
use intake_tests::craft::push_of;
use intake_tests::craft::{identity, new_record, random_text};
use intake_tests::{Cell, SyncReply, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const LIMITS: Limits = Limits {
    max_body_bytes: 64 << 10,
    max_decompressed_bytes: 256 << 10,
    max_changes_per_request: 40,
    max_records_per_request: 20,
    max_ops_per_change: 500,
    max_document_bytes: 8 << 10,
    max_page_bytes: 64 << 10,
    max_heavy_syncs: 0,
    max_syncs_at_once: 0,
    max_sync_wait_ms: 5_000,
    max_actors_per_change: 1024,
    max_objects_per_change: 1024,
    max_inflated_bytes_per_change: 1 << 20,
};

fn start(limits: Limits) -> TestServer {
    TestServer::start_with(Settings {
        limits,
        // Bad input to the admin API is among the cases.
        admin_api: intake_server::config::AdminApi::On,
        ..Default::default()
    })
}

fn request(push: Vec<RecordChanges>) -> SyncRequest {
    SyncRequest {
        version: PROTOCOL_VERSION,
        cursor: 1 << 40,
        page_bytes: 1 << 20,
        push,
        want_docs: vec![],
        ..SyncRequest::default()
    }
}

/// Every row of every table of the server's database, in primary-key order, as bytes:
/// equal dumps mean nothing was stored.
fn dump(server: &TestServer) -> Vec<u8> {
    let mut db = server.db();
    let mut out = Vec::new();
    for table in [
        "users",
        "enrolment_codes",
        "devices",
        "records",
        "log",
        "access_revoked",
    ] {
        // Sorted here: PostgreSQL has no rowid, and any fixed order compares.
        let mut rows = db.rows(&format!("SELECT * FROM {table}"), &[]);
        rows.sort();
        out.extend_from_slice(table.as_bytes());
        for row in rows {
            out.push(b'\n');
            for cell in row {
                out.extend_from_slice(format!("{cell:?}").as_bytes());
                out.push(b'|');
            }
        }
        out.push(b'\n');
    }
    out
}

/// What a request is expected to get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// This status, with a JSON error body.
    Status(u16),
    /// A 200 whose (single) push was rejected for this reason.
    Rejected(Rejection),
}

/// A POST to the sync endpoint with full control of the headers.
fn post_sync(
    server: &TestServer,
    token: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> SyncReply {
    let mut req = server
        .http()
        .post(format!("{}/v1/sync", server.url))
        .bearer_auth(token)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().unwrap();
    SyncReply {
        status: resp.status().as_u16(),
        response: None,
        body: resp.bytes().unwrap().to_vec(),
    }
}

/// A POST to `/v1/enroll` with a raw body and content type.
fn post_enroll(server: &TestServer, body: impl Into<Vec<u8>>, content_type: &str) -> SyncReply {
    let resp = server
        .http()
        .post(format!("{}/v1/enroll", server.url))
        .header("content-type", content_type)
        .body(body.into())
        .send()
        .unwrap();
    SyncReply {
        status: resp.status().as_u16(),
        response: None,
        body: resp.bytes().unwrap().to_vec(),
    }
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(bytes, 3).unwrap()
}

#[test]
fn hostile_requests_get_a_4xx_and_store_nothing() {
    let server = start(LIMITS);
    let a = server.user_device("arta", Role::Paralegal, Some("prizren"));
    let admin = server.enroll(&server.admin_code, [0xad; 16]);
    let spare_code = server.add_user("besa", Role::Paralegal, Some("prizren"));
    let mut rng = StdRng::seed_from_u64(0x1a7e_57a7);
    let token = a.token.as_str();

    // What the server legitimately holds before the attack: a record of some size.
    let mut grown = new_record(&identity(&a, "arta", 1), 1);
    let mut narrative = String::new();
    for _ in 0..8 {
        // Appending costs one operation per new character.
        narrative.push_str(&random_text(&mut rng, 400));
        let text = narrative.clone();
        grown
            .edit(Utc::now(), |e| e.set("narrative", Value::Text(text)))
            .unwrap();
    }
    let reply = server.sync(Some(token), &request(vec![push_of(&mut grown, &[])]));
    assert_eq!(reply.response.unwrap().results[0].outcome, Outcome::Stored);
    let before_attack = dump(&server);
    let grown_row = format!(
        "{:?}",
        Cell::Bytes(grown.id().as_uuid().as_bytes().to_vec())
    );
    assert!(
        String::from_utf8_lossy(&before_attack).contains(&grown_row),
        "the dump sees the stored record"
    );
    let grown_heads = grown.heads();

    let v = PROTOCOL_VERSION.to_string();
    let sync_headers = |encoding: &'static str| {
        vec![
            (VERSION_HEADER, v.clone()),
            ("content-type", "application/vnd.intake.sync".to_string()),
            ("content-encoding", encoding.to_string()),
        ]
    };
    let send = |body: Vec<u8>, headers: Vec<(&str, String)>| {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_sync(&server, token, body, &headers)
    };
    let sync = |req: &SyncRequest| server.sync(Some(token), req);
    let mut cases: Vec<(&str, Want, SyncReply)> = Vec::new();

    // Sizes.
    let noise: Vec<u8> = (0..(LIMITS.max_body_bytes * 2))
        .map(|_| rng.random())
        .collect();
    cases.push((
        "an oversize compressed body",
        Want::Status(413),
        send(noise.clone(), sync_headers("zstd")),
    ));
    cases.push((
        "an oversize plain body",
        Want::Status(413),
        send(noise, sync_headers("identity")),
    ));
    let bomb = zstd::bulk::compress(&vec![0u8; 50 << 20], 1).unwrap();
    assert!(bomb.len() < LIMITS.max_body_bytes);
    cases.push((
        "a small body inflating to 50 MB",
        Want::Status(413),
        send(bomb, sync_headers("zstd")),
    ));
    let mut valid_prefix = request(vec![]);
    valid_prefix.want_docs = vec![[0; 16]; (LIMITS.max_decompressed_bytes / 16) + 1];
    cases.push((
        "a valid request just past the decompressed limit",
        Want::Status(413),
        sync(&valid_prefix),
    ));
    let mut many = new_record(&identity(&a, "arta", 2), 2);
    for i in 0..LIMITS.max_changes_per_request {
        many.edit(Utc::now(), |e| {
            e.set("household_size", Value::Int(1 + i as i64 % 40))
        })
        .unwrap();
    }
    let many_changes = push_of(&mut many, &[]);
    assert!(many_changes.changes.len() > LIMITS.max_changes_per_request);
    cases.push((
        "too many changes in one request",
        Want::Status(413),
        sync(&request(vec![many_changes])),
    ));
    let too_many_records: Vec<RecordChanges> = (0..=LIMITS.max_records_per_request as u64)
        .map(|n| push_of(&mut new_record(&identity(&a, "arta", 3), 100 + n), &[]))
        .collect();
    cases.push((
        "too many records in one request",
        Want::Status(413),
        sync(&request(too_many_records)),
    ));
    let mut wanting = request(vec![]);
    wanting.want_docs = vec![[7; 16]; LIMITS.max_records_per_request + 1];
    cases.push((
        "too many documents wanted",
        Want::Status(413),
        sync(&wanting),
    ));
    let mut long = new_record(&identity(&a, "arta", 4), 4);
    let text = random_text(&mut rng, LIMITS.max_ops_per_change + 100);
    long.edit(Utc::now(), |e| e.set("narrative", Value::Text(text)))
        .unwrap();
    cases.push((
        "a change with too many operations",
        Want::Rejected(Rejection::TooLarge),
        sync(&request(vec![push_of(&mut long, &[])])),
    ));
    let mut growing = grown.clone();
    growing.set_identity(&identity(&a, "arta", 5));
    for _ in 0..30 {
        narrative.push_str(&random_text(&mut rng, 450));
        let text = narrative.clone();
        growing
            .edit(Utc::now(), |e| e.set("narrative", Value::Text(text)))
            .unwrap();
    }
    let size = growing.save().len();
    assert!(size > LIMITS.max_document_bytes);
    cases.push((
        "a document growing past its limit",
        Want::Rejected(Rejection::TooLarge),
        sync(&request(vec![push_of(&mut growing, &grown_heads)])),
    ));

    // Malformed bodies and headers.
    let valid = request(vec![push_of(
        &mut new_record(&identity(&a, "arta", 6), 6),
        &[],
    )]);
    let encoded = valid.encode();
    let random: Vec<u8> = (0..3000).map(|_| rng.random()).collect();
    cases.push((
        "random bytes",
        Want::Status(400),
        send(random.clone(), sync_headers("identity")),
    ));
    cases.push((
        "random bytes said to be zstd",
        Want::Status(400),
        send(random, sync_headers("zstd")),
    ));
    cases.push((
        "an empty body",
        Want::Status(400),
        send(vec![], sync_headers("zstd")),
    ));
    cases.push((
        "truncated postcard",
        Want::Status(400),
        send(zstd(&encoded[..encoded.len() / 2]), sync_headers("zstd")),
    ));
    let mut trailing = encoded.clone();
    trailing.extend_from_slice(b"trailing");
    cases.push((
        "trailing bytes",
        Want::Status(400),
        send(zstd(&trailing), sync_headers("zstd")),
    ));
    let compressed = zstd(&encoded);
    cases.push((
        "a truncated zstd frame",
        Want::Status(400),
        send(
            compressed[..compressed.len() - 9].to_vec(),
            sync_headers("zstd"),
        ),
    ));
    cases.push((
        "an unknown content-encoding",
        Want::Status(400),
        send(compressed.clone(), sync_headers("gzip")),
    ));
    cases.push((
        "zstd said to be plain",
        Want::Status(400),
        send(compressed.clone(), sync_headers("identity")),
    ));
    let mut no_version = sync_headers("zstd");
    no_version.remove(0);
    cases.push((
        "no protocol header",
        Want::Status(400),
        send(compressed.clone(), no_version),
    ));
    let next = (PROTOCOL_VERSION + 1).to_string();
    for version in [next.as_str(), "0", "65535"] {
        let mut headers = sync_headers("zstd");
        headers[0].1 = version.into();
        cases.push((
            "an unknown protocol version",
            Want::Status(426),
            send(compressed.clone(), headers),
        ));
    }
    let mut newer = valid.clone();
    newer.version = PROTOCOL_VERSION + 1;
    cases.push((
        "a body whose version is not the header's",
        Want::Status(400),
        send(zstd(&newer.encode()), sync_headers("zstd")),
    ));
    let mut twice = valid.clone();
    twice.push.push(twice.push[0].clone());
    cases.push((
        "one record twice in a push",
        Want::Status(422),
        sync(&twice),
    ));

    // Hostile or broken changes.
    let fixture = include_str!("../../../shared/tests/fixtures/automerge-0.12-load-panic.hex");
    let target = *grown.id().as_uuid().as_bytes();
    let one = |changes: Vec<Vec<u8>>| {
        request(vec![RecordChanges {
            record: target,
            changes,
        }])
    };
    cases.push((
        "the Automerge 0.12 load-panic fixture as a change",
        Want::Rejected(Rejection::Malformed),
        sync(&one(vec![hex::decode(fixture.trim()).unwrap()])),
    ));
    cases.push((
        "the fixture as a new record",
        Want::Rejected(Rejection::Malformed),
        sync(&request(vec![RecordChanges {
            record: [0x42; 16],
            changes: vec![hex::decode(fixture.trim()).unwrap()],
        }])),
    ));
    cases.push((
        "bytes that are not Automerge",
        Want::Rejected(Rejection::Malformed),
        sync(&one(vec![b"not automerge at all".to_vec()])),
    ));
    cases.push((
        "an empty change",
        Want::Rejected(Rejection::Malformed),
        sync(&one(vec![vec![]])),
    ));
    let mut two = grown.clone();
    two.set_identity(&identity(&a, "arta", 7));
    two.edit(Utc::now(), |e| e.set("village", Value::Text("Zhur".into())))
        .unwrap();
    two.edit(Utc::now(), |e| e.set("village", Value::Text("Zym".into())))
        .unwrap();
    let both: Vec<u8> = two.changes_since(&grown_heads);
    cases.push((
        "two changes in one entry",
        Want::Rejected(Rejection::Malformed),
        sync(&one(vec![both])),
    ));
    let second_only = push_of(&mut two, &grown_heads).changes[1].clone();
    cases.push((
        "a change whose history the server lacks",
        Want::Rejected(Rejection::MissingDependencies),
        sync(&one(vec![second_only])),
    ));
    let mut whole = grown.clone();
    cases.push((
        "a whole document where a change belongs",
        Want::Rejected(Rejection::Malformed),
        sync(&one(vec![whole.save()])),
    ));

    // Enrolment and the JSON API.
    let actor = hex::encode([0x31; 16]);
    for (what, body) in [
        ("JSON garbage to /v1/enroll", b"{\"code\": [1, 2".to_vec()),
        (
            "not JSON at all to /v1/enroll",
            vec![0xff, 0xfe, 0x00, 0x01],
        ),
        (
            "an enrolment without a code",
            br#"{"actor": "00"}"#.to_vec(),
        ),
        (
            "an enrolment with an unknown field",
            json!({ "code": spare_code, "actor": actor, "role": "admin" })
                .to_string()
                .into_bytes(),
        ),
        (
            "a bad actor (not hex)",
            json!({ "code": spare_code, "actor": "zz".repeat(16) })
                .to_string()
                .into_bytes(),
        ),
        (
            "a bad actor (too short)",
            json!({ "code": spare_code, "actor": "ab".repeat(8) })
                .to_string()
                .into_bytes(),
        ),
        (
            "a label of 101 characters",
            json!({ "code": spare_code, "actor": actor, "label": "x".repeat(101) })
                .to_string()
                .into_bytes(),
        ),
        (
            "an enrolment body over 64 KiB",
            json!({ "code": spare_code, "actor": actor, "label": "x".repeat(70_000) })
                .to_string()
                .into_bytes(),
        ),
    ] {
        cases.push((
            what,
            Want::Status(400),
            post_enroll(&server, body, "application/json"),
        ));
    }
    cases.push((
        "an enrolment that is not said to be JSON",
        Want::Status(400),
        post_enroll(
            &server,
            json!({ "code": spare_code, "actor": actor }).to_string(),
            "text/plain",
        ),
    ));
    let get = |path: &str| {
        let (status, body) = server.get(path, Some(token));
        SyncReply {
            status,
            response: None,
            body: body.to_string().into_bytes(),
        }
    };
    cases.push((
        "a record id that is not one",
        Want::Status(404),
        get("/v1/records/not-a-uuid"),
    ));
    cases.push((
        "an unknown route",
        Want::Status(404),
        get("/v1/nothing-here"),
    ));
    let (status, body) = server.post(
        "/v1/admin/users",
        Some(&admin.token),
        &json!({ "name": "no spaces allowed", "role": "paralegal" }),
    );
    cases.push((
        "an admin adding a user with a bad name",
        Want::Status(422),
        SyncReply {
            status,
            response: None,
            body: body.to_string().into_bytes(),
        },
    ));
    let (status, body) = server.post(
        "/v1/admin/users",
        Some(&admin.token),
        &json!({ "name": "noteam", "role": "supervisor" }),
    );
    cases.push((
        "an admin adding a supervisor without a team",
        Want::Status(422),
        SyncReply {
            status,
            response: None,
            body: body.to_string().into_bytes(),
        },
    ));

    let mut failures = Vec::new();
    let mut server_errors = 0;
    for (what, want, reply) in &cases {
        if reply.status >= 500 {
            server_errors += 1;
        }
        let body = String::from_utf8_lossy(&reply.body);
        let ok = match want {
            Want::Status(status) => {
                let json: serde_json::Value =
                    serde_json::from_slice(&reply.body).unwrap_or_default();
                reply.status == *status
                    && json["error"].is_string()
                    && json["message"].as_str().is_some_and(|m| !m.is_empty())
                    && (*status != 426 || body.contains("update"))
            }
            Want::Rejected(reason) => {
                let outcome = reply
                    .response
                    .as_ref()
                    .and_then(|r| r.results.first())
                    .map(|r| r.outcome.clone());
                matches!(outcome, Some(Outcome::Rejected { reason: got, .. }) if got == *reason)
            }
        };
        if !ok {
            let shown: String = body.chars().take(300).collect();
            failures.push(format!(
                "{what}: expected {want:?}, got {} {shown}",
                reply.status
            ));
        }
    }
    let unchanged = dump(&server) == before_attack;
    eprintln!(
        "limits: {} hostile requests, {server_errors} answered 5xx, {} answered otherwise than expected, database unchanged: {unchanged}",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(server_errors, 0);
    assert!(unchanged, "a hostile request stored something");
    let stored = server.storage.record(grown.id()).unwrap().unwrap();
    assert_eq!(stored.heads, grown_heads.concat());

    // Still healthy, still serving, and the code a bad enrolment carried still works.
    assert_eq!(server.get("/health", None).0, 200);
    let mut fine = new_record(&identity(&a, "arta", 8), 8);
    let reply = server.sync(Some(token), &request(vec![push_of(&mut fine, &[])]));
    assert_eq!(reply.response.unwrap().results[0].outcome, Outcome::Stored);
    server.enroll(&spare_code, [0x31; 16]);
}

#[test]
fn guessing_enrolment_codes_is_rate_limited_with_a_retry_after() {
    let server = start(LIMITS);
    let good_code = server.add_user("besa", Role::Paralegal, Some("prizren"));
    let before = dump(&server);
    assert!(
        String::from_utf8_lossy(&before).contains("Text(\"besa\")"),
        "the dump sees the stored user"
    );
    let attempt = |code: &str| {
        server
            .http()
            .post(format!("{}/v1/enroll", server.url))
            .json(&json!({ "code": code, "actor": hex::encode([0x31; 16]) }))
            .send()
            .unwrap()
    };
    for i in 0..10 {
        let resp = attempt(&format!("WRNG-C0DE-{i:04}"));
        assert_eq!(resp.status().as_u16(), 401, "wrong code {i}");
    }
    let resp = attempt("WRNG-C0DE-0011");
    assert_eq!(resp.status().as_u16(), 429);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=600).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["error"], "rate_limited");
    // While the window lasts the address is turned away before any code is looked at,
    // so a right code does not tell a guesser anything; the window expires (auth.rs
    // `limiter_blocks_then_forgets`), so nobody is locked out for good.
    assert_eq!(attempt(&good_code).status().as_u16(), 429);
    assert_eq!(dump(&server), before, "nothing was enrolled");
    assert_eq!(server.get("/health", None).0, 200);
}

#[test]
fn a_page_limit_below_the_minimum_page_is_honoured_not_a_panic() {
    // Regression: `clamp(1024, max_page_bytes)` panicked when the limit was below 1 KiB,
    // so every sync answered 500.
    let server = start(Limits {
        max_page_bytes: 512,
        ..LIMITS
    });
    let a = server.user_device("arta", Role::Paralegal, Some("prizren"));
    let b = server.user_device("besa", Role::Supervisor, Some("prizren"));
    let push: Vec<_> = (0..3)
        .map(|n| push_of(&mut new_record(&identity(&a, "arta", 1), n), &[]))
        .collect();
    let reply = server.sync(Some(&a.token), &request(push));
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let mut cursor = 0;
    let mut docs = 0;
    for _ in 0..10 {
        let mut req = request(vec![]);
        req.cursor = cursor;
        req.page_bytes = 100;
        let resp = server.sync(Some(&b.token), &req).response.unwrap();
        assert!(resp.docs.len() <= 1, "one document per page at most");
        docs += resp.docs.len();
        cursor = resp.cursor;
        if !resp.more {
            break;
        }
    }
    assert_eq!(docs, 3);
}

/// The process's peak resident memory in KiB (Linux), or `None` elsewhere.
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn push_leb(body: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        body.push((n as u8) | 0x80);
        n >>= 7;
    }
    body.push(n as u8);
}

/// A sync request of `version` pushing one record with `n` empty changes, written by
/// hand (encoding it would allocate them).
fn empty_changes_body(version: u16, n: usize) -> Vec<u8> {
    let mut body = vec![version as u8, 0, 0, 1];
    if version == 1 {
        // push: one record, its id, n changes of length 0; no wanted documents.
        body.extend([0x42; 16]);
        push_leb(&mut body, n);
        body.resize(body.len() + n, 0);
    } else {
        // Packed: one record by id (variant 0) with n changes, n kinds "verbatim",
        // empty headers, columns and extras, n empty verbatim chunks.
        body.push(0);
        body.extend([0x42; 16]);
        push_leb(&mut body, n);
        push_leb(&mut body, n);
        body.resize(body.len() + n, 1);
        body.extend([0, 0, 0]);
        push_leb(&mut body, n);
        body.resize(body.len() + n, 0);
    }
    body.push(0);
    body
}

#[test]
fn a_kilobyte_of_empty_changes_is_refused_before_it_is_decoded() {
    // Measures or captures the whole process: by itself, not beside other tests.
    intake_tests::alone!(a_kilobyte_of_empty_changes_is_refused_before_it_is_decoded);
    // Regression: the count limits were checked after decoding, and an empty change is
    // one byte on the wire but 24 in memory: this ~1 KB body, within the default 32 MiB
    // decompressed limit, made the server allocate ~800 MB before answering 413.
    let server = start(Limits {
        max_decompressed_bytes: 32 << 20,
        ..LIMITS
    });
    let a = server.user_device("arta", Role::Paralegal, Some("prizren"));
    // Version 2 spends two bytes a change (its kind, its empty chunk).
    for (version, n) in [(1, (32 << 20) - 64), (PROTOCOL_VERSION, (16 << 20) - 64)] {
        let body = empty_changes_body(version, n);
        assert!(body.len() <= 32 << 20);
        assert_eq!(
            intake_shared::protocol::count_request_entries(&body),
            Some((1, n))
        );
        let compressed = zstd::bulk::compress(&body, 3).unwrap();
        drop(body);
        assert!(compressed.len() < 4096, "{} bytes", compressed.len());

        let before = peak_kib();
        let reply = server.sync_raw(Some(&a.token), compressed, Some("zstd"), version);
        let after = peak_kib();
        assert_eq!(
            reply.status,
            413,
            "v{version}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let grew_mib = after.zip(before).map(|(a, b)| (a - b) / 1024);
        eprintln!(
            "v{version}: {n} empty changes in a 1 KB body: 413, peak memory grew by {grew_mib:?} MiB"
        );
        if let Some(grew) = grew_mib {
            // Decoding first grew it by ~770 MiB; it runs alone in its process, so
            // the growth is this request's.
            assert!(grew < 500, "decoding allocated {grew} MiB");
        }
    }
    assert_eq!(server.get("/health", None).0, 200);
}
