//! Deploying the server where other machines can reach it (issue 12, items 1, 2 and
//! part of 6): the server refuses plain HTTP off loopback unless a TLS proxy is in
//! front and believes `X-Forwarded-For` only from the proxies it was told of; its
//! answers carry the security headers; the admin API is off by default and audited when
//! on; enrolment attempts are limited per address and per code, atomically, with no
//! overall limit to exhaust; the client refuses plain HTTP to other machines, follows
//! no redirect and reads no answer past its cap. Real server, real HTTP on loopback;
//! the hostile servers are small loopback listeners of this file.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::{Arc, Barrier, Mutex};

use intake_client::sync::Permanent;
use intake_client::{Store, SyncError};
use intake_server::config::AdminApi;
use intake_server::net::Cidr;
use intake_server::storage::{AuditFilter, Role};
use intake_server::{Application, Settings, init_store};
use intake_tests::dashboard::{PASSWORD, hidden};
use intake_tests::{TestDevice, TestServer};
use serde_json::json;

/// A client whose connections come from `from` (any address of 127.0.0.0/8 is this
/// machine on Linux), so the server sees distinct peers without a network.
fn client_from(from: &str) -> reqwest::blocking::Client {
    intake_client::sync::ensure_crypto_provider();
    reqwest::blocking::Client::builder()
        .no_proxy()
        .local_address(from.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An enrolment attempt with a code that is not one.
fn wrong_code(
    http: &reqwest::blocking::Client,
    server: &TestServer,
    n: u32,
    xff: Option<&str>,
) -> u16 {
    let mut req = http.post(format!("{}/v1/enroll", server.url)).json(&json!({
        "code": format!("ZZZZ-ZZZZ-{n:04}"),
        "actor": hex::encode([0x42u8; 16]),
        "label": "guess",
    }));
    if let Some(x) = xff {
        req = req.header("X-Forwarded-For", x);
    }
    req.send().unwrap().status().as_u16()
}

fn behind_proxy(admin_api: AdminApi) -> Settings {
    Settings {
        behind_proxy: true,
        trusted_proxies: vec!["127.0.0.1".parse::<Cidr>().unwrap()],
        admin_api,
        ..Settings::default()
    }
}

fn audit(server: &TestServer) -> Vec<intake_server::storage::AuditEntry> {
    let (entries, _) = server
        .storage
        .audit_entries(&AuditFilter::default(), 0, 1000)
        .unwrap();
    entries.into_iter().map(|(_, e)| e).collect()
}

// ---------------------------------------------------------------- server transport

/// Builds the server on `listener` with `settings`; stops it at once if it started.
fn try_build(settings: Settings, listener: TcpListener) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        workers: 1,
        ..settings
    };
    let (storage, _) = init_store(&settings, None).unwrap();
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings, storage, listener)?;
        let handle = app.handle();
        let running = actix_web::rt::spawn(app.run());
        handle.stop(false).await;
        running.await??;
        Ok(())
    })
}

#[test]
fn plain_http_off_loopback_is_refused_unless_behind_a_trusted_proxy() {
    let public = || TcpListener::bind("0.0.0.0:0").unwrap();
    let e = try_build(Settings::default(), public())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("refusing to serve plain HTTP") && e.contains("behind_proxy"),
        "{e}"
    );
    let e = try_build(
        Settings {
            behind_proxy: true,
            ..Settings::default()
        },
        public(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("needs trusted_proxies"), "{e}");
    try_build(behind_proxy(AdminApi::Off), public()).expect("behind a named proxy");
    try_build(
        Settings::default(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .expect("plain HTTP on loopback");
}

#[test]
fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    intake_client::sync::ensure_crypto_provider();
    let server = TestServer::start_with(behind_proxy(AdminApi::On));
    let proxy = client_from("127.0.0.1");
    let stranger = client_from("127.0.0.2");
    // Through the proxy, twelve devices each get their own attempts...
    for i in 0..12 {
        let status = wrong_code(&proxy, &server, i, Some(&format!("203.0.113.{i}")));
        assert_eq!(status, 401, "attempt {i} through the proxy");
    }
    // ...but a peer that is not a proxy cannot pose as many devices.
    let statuses: Vec<u16> = (0..12)
        .map(|i| {
            wrong_code(
                &stranger,
                &server,
                100 + i,
                Some(&format!("198.51.100.{i}")),
            )
        })
        .collect();
    assert_eq!(statuses[..10], [401; 10]);
    assert_eq!(statuses[10..], [429, 429]);
    // The audit trail names the device's address, not the proxy's, nor a made-up one.
    let admin = server.enroll(&server.admin_code, [0xad; 16]);
    for (client, xff) in [(&proxy, "203.0.113.77"), (&stranger, "198.51.100.77")] {
        let resp = client
            .get(format!("{}/v1/admin/users", server.url))
            .bearer_auth(&admin.token)
            .header("X-Forwarded-For", xff)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    let peers: Vec<Option<String>> = audit(&server)
        .into_iter()
        .filter(|e| e.action == "list_users")
        .map(|e| e.peer)
        .collect();
    assert_eq!(
        peers,
        vec![
            Some("127.0.0.2".to_string()),
            Some("203.0.113.77".to_string())
        ],
        "newest first"
    );
}

#[test]
fn every_answer_says_nosniff_api_answers_no_store_and_https_hsts() {
    intake_client::sync::ensure_crypto_provider();
    let plain = TestServer::start();
    let http = client_from("127.0.0.1");
    let get =
        |server: &TestServer, path: &str| http.get(format!("{}{path}", server.url)).send().unwrap();
    for path in ["/health", "/v1/me", "/v1/nothing-here", "/login"] {
        let resp = get(&plain, path);
        assert_eq!(
            resp.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
        assert!(
            resp.headers().get("strict-transport-security").is_none(),
            "{path}"
        );
        if path.starts_with("/v1/") {
            assert_eq!(resp.headers()["cache-control"], "no-store", "{path}");
        }
    }
    let pre = get(&plain, "/login");
    let cookie = pre.headers()["set-cookie"].to_str().unwrap();
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );

    // Behind a TLS proxy browsers come over HTTPS: HSTS, and cookies that never go
    // over plain HTTP.
    let proxied = TestServer::start_with(behind_proxy(AdminApi::Off));
    for path in ["/health", "/v1/me"] {
        let resp = get(&proxied, path);
        assert_eq!(
            resp.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
    proxied.add_user("vesa", Role::Supervisor, Some("north"));
    let code = intake_server::admin::sign_in_code(proxied.storage.as_ref(), "vesa", 60)
        .unwrap()
        .code;
    let set = http
        .post(format!("{}/set-password", proxied.url))
        .form(&[
            ("code", code.as_str()),
            ("password", PASSWORD),
            ("again", PASSWORD),
        ])
        .send()
        .unwrap();
    assert_eq!(set.status().as_u16(), 200);
    let form = get(&proxied, "/login");
    let pre_cookie = form.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(pre_cookie.contains("; Secure"), "{pre_cookie}");
    let pre_value = pre_cookie.split(';').next().unwrap().to_string();
    let pre = hidden(&form.text().unwrap(), "pre").unwrap();
    let signed = http
        .post(format!("{}/login", proxied.url))
        .header("Cookie", pre_value)
        .form(&[
            ("pre", pre.as_str()),
            ("next", "/"),
            ("username", "vesa"),
            ("password", PASSWORD),
        ])
        .send()
        .unwrap();
    assert_eq!(signed.status().as_u16(), 303);
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("intake_session="))
        .expect("a session cookie");
    assert!(session.contains("; Secure"), "{session}");
}

// ---------------------------------------------------------------- the admin API

#[test]
fn the_admin_api_is_off_by_default() {
    intake_client::sync::ensure_crypto_provider();
    let server = TestServer::start();
    let admin = server.enroll(&server.admin_code, [0xad; 16]);
    let (status, unknown) = server.get("/v1/nothing-here", Some(&admin.token));
    assert_eq!(status, 404);
    for path in ["/v1/admin/users", "/v1/admin/devices"] {
        assert_eq!(server.get(path, Some(&admin.token)), (404, unknown.clone()));
        assert_eq!(
            server.get(path, None),
            (404, unknown.clone()),
            "no token either"
        );
    }
    let (status, _) = server.post(
        "/v1/admin/users",
        Some(&admin.token),
        &json!({ "name": "zana", "role": "paralegal" }),
    );
    assert_eq!(status, 404);
    assert!(server.storage.user("zana").unwrap().is_none());
}

#[test]
fn every_admin_api_call_allowed_or_refused_is_in_the_audit_trail() {
    intake_client::sync::ensure_crypto_provider();
    let server = TestServer::start_with_admin_api();
    let admin = server.enroll(&server.admin_code, [0xad; 16]);
    let besa = server.user_device("besa", Role::Paralegal, None);
    let (status, body) = server.post(
        "/v1/admin/users",
        Some(&admin.token),
        &json!({ "name": "zana", "role": "paralegal" }),
    );
    assert_eq!(status, 201);
    let code = body["enrolment_code"].as_str().unwrap().to_string();
    let (status, _) = server.post(
        "/v1/admin/users/zana/disable",
        Some(&besa.token),
        &json!({}),
    );
    assert_eq!(status, 403);
    let (status, _) = server.get("/v1/admin/devices", Some(&admin.token));
    assert_eq!(status, 200);
    let (status, _) = server.post(
        "/v1/admin/users/nobody/code",
        Some(&admin.token),
        &json!({}),
    );
    assert_eq!(status, 404);

    let entries = audit(&server);
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("no {action} in {entries:#?}"))
    };
    let added = find("add_user");
    assert_eq!(added.user.as_deref(), Some("admin"));
    assert_eq!(added.device, Some(admin.device_id));
    assert_eq!(added.scope, "api user=zana role=paralegal");
    assert_eq!(added.peer.as_deref(), Some("127.0.0.1"));
    let refused = find("admin_refused");
    assert_eq!(refused.user.as_deref(), Some("besa"));
    assert_eq!(refused.device, Some(besa.device_id));
    assert_eq!(refused.scope, "POST /v1/admin/users/zana/disable");
    assert_eq!(find("list_devices").user.as_deref(), Some("admin"));
    assert_eq!(find("enrolment_code").scope, "api user=nobody failed=404");
    // Names and ids, never a code or a token.
    let text = format!("{entries:?}");
    for secret in [code.as_str(), &admin.token, &besa.token, &server.admin_code] {
        assert!(!text.contains(secret));
    }
}

#[test]
fn a_loopback_admin_api_asks_the_client_address_not_the_proxys() {
    intake_client::sync::ensure_crypto_provider();
    let server = TestServer::start_with(behind_proxy(AdminApi::Loopback));
    let admin = server.enroll(&server.admin_code, [0xad; 16]);
    let http = client_from("127.0.0.1");
    let users = |xff: Option<&str>| {
        let mut req = http
            .get(format!("{}/v1/admin/users", server.url))
            .bearer_auth(&admin.token);
        if let Some(x) = xff {
            req = req.header("X-Forwarded-For", x);
        }
        req.send().unwrap().status().as_u16()
    };
    assert_eq!(users(None), 200, "an admin on the server's own machine");
    assert_eq!(
        users(Some("203.0.113.9")),
        404,
        "relayed by the proxy from afar"
    );
}

// ---------------------------------------------------------------- enrolment attempts

#[test]
fn an_attacker_cannot_block_enrolment_for_everyone() {
    intake_client::sync::ensure_crypto_provider();
    let server = TestServer::start();
    // Ten addresses, ten wrong codes each: on a limit of 100 overall, that was
    // everyone's enrolment blocked for ten minutes.
    for a in 10..20 {
        let http = client_from(&format!("127.0.0.{a}"));
        for n in 0..10 {
            assert_eq!(wrong_code(&http, &server, a * 100 + n, None), 401);
        }
        assert_eq!(
            wrong_code(&http, &server, a * 100 + 99, None),
            429,
            "per address"
        );
    }
    // A paralegal enrols from her own address with her valid code.
    let code = server.add_user("drita", Role::Paralegal, None);
    server.enroll(&code, [0xd1; 16]);
}

#[test]
fn concurrent_wrong_guesses_reach_the_store_at_most_per_address_times() {
    intake_client::sync::ensure_crypto_provider();
    let server = Arc::new(TestServer::start());
    let http = client_from("127.0.0.30");
    let n = 40;
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n as u32)
        .map(|i| {
            let (server, http, barrier) = (server.clone(), http.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                wrong_code(&http, &server, i, None)
            })
        })
        .collect();
    let mut statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort();
    // Only a lookup answers 401: exactly ten wrong codes were looked up.
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        n - 10,
        "{statuses:?}"
    );
}

// ---------------------------------------------------------------- the client

/// A hostile or misconfigured "server" on loopback: records each request (head and
/// body) and answers with `answer`, one connection at a time.
struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

fn fake(answer: impl Fn(&mut TcpStream) + Send + 'static) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            let head_end = loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break None,
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                }
                if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&got[..head_end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0usize);
            while got.len() < head_end + length {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&got).to_string());
            answer(&mut stream);
            let _ = stream.flush();
        }
    });
    Fake { url, seen }
}

fn device(server: &TestServer, name: &str) -> TestDevice {
    TestDevice::enroll(server, name, Role::Paralegal, None)
}

fn transport_error(e: SyncError) -> String {
    match e {
        SyncError::Permanent {
            kind: Permanent::Transport,
            message,
        } => message,
        other => panic!("not a transport error: {other}"),
    }
}

#[test]
fn plain_http_to_another_machine_is_refused_at_enrolment_and_at_every_sync() {
    intake_client::sync::ensure_crypto_provider();
    let server = TestServer::start();
    let code = server.add_user("arta", Role::Paralegal, None);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), &intake_client::Key::from_bytes([7; 32])).unwrap();
    let e = intake_client::enroll(&mut store, "http://192.0.2.1:8080", &code, "phone", None)
        .unwrap_err();
    let message = transport_error(e);
    assert!(
        message.contains("--insecure-http") && message.contains("https://"),
        "{message}"
    );
    assert!(store.enrolment().unwrap().is_none());
    // `localhost` is this machine.
    let local = server.url.replace("127.0.0.1", "localhost");
    intake_client::enroll(&mut store, &local, &code, "phone", None).expect("loopback by name");

    // An enrolment edited by hand to plain HTTP elsewhere: the token is not sent.
    let mut phone = device(&server, "besa");
    phone.point_at("http://192.0.2.1:8080");
    let message = transport_error(phone.sync().unwrap_err());
    assert!(message.contains("plain HTTP"), "{message}");
    // The user's explicit choice is kept: then it is the network that fails.
    let mut e = phone.store.enrolment().unwrap().unwrap();
    e.server = "http://192.0.2.1:8080".into();
    e.insecure_http = true;
    phone.store.set_enrolment(&e).unwrap();
    assert!(intake_client::sync::check_server_url(&e.server, e.insecure_http).is_ok());
}

#[test]
fn redirects_are_not_followed_and_neither_token_nor_code_leaves() {
    intake_client::sync::ensure_crypto_provider();
    let server = TestServer::start();
    let elsewhere = fake(|s| {
        let _ = s.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
    });
    let target = format!("{}/v1/sync", elsewhere.url);
    let answer = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let redirecting = fake(move |s| {
        let _ = s.write_all(answer.as_bytes());
    });
    let mut phone = device(&server, "arta");
    phone.point_at(&redirecting.url);
    let message = transport_error(phone.sync().unwrap_err());
    assert!(
        message.contains("307") && message.contains(&target),
        "{message}"
    );
    assert_eq!(redirecting.seen.lock().unwrap().len(), 1);

    // Enrolment: the code is in the body, which a 307 would carry along.
    let code = server.add_user("besa", Role::Paralegal, None);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), &intake_client::Key::from_bytes([7; 32])).unwrap();
    let e = intake_client::enroll(&mut store, &redirecting.url, &code, "phone", None).unwrap_err();
    assert!(transport_error(e).contains(&target));
    assert!(
        elsewhere.seen.lock().unwrap().is_empty(),
        "the redirect target got: {:?}",
        elsewhere.seen.lock().unwrap()
    );
}

/// The process's peak resident memory, in bytes.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[test]
fn a_zstd_bomb_is_a_clear_error_with_bounded_memory() {
    // Measures or captures the whole process: by itself, not beside other tests.
    intake_tests::alone!(a_zstd_bomb_is_a_clear_error_with_bounded_memory);
    intake_client::sync::ensure_crypto_provider();
    let server = TestServer::start();
    // zstd frames decode one after another: 4,096 frames of a mebibyte of zeros are
    // 4 GiB once decompressed, from a few hundred kilobytes.
    let frame = zstd::bulk::compress(&vec![0u8; 1 << 20], 3).unwrap();
    let bomb: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 4096)
        .collect();
    assert!(bomb.len() < (4 << 20));
    let bomb = Arc::new(bomb);
    let hostile = fake(move |s| {
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.intake.sync\r\ncontent-encoding: zstd\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            bomb.len()
        );
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(&bomb);
    });
    let mut phone = device(&server, "arta");
    phone.point_at(&hostile.url);
    let message = transport_error(phone.sync().unwrap_err());
    assert!(
        message.contains("decompresses to more than the 32 MiB"),
        "{message}"
    );
    assert_eq!(intake_client::sync::MAX_ANSWER_BYTES, 32 << 20);
    assert!(peak_memory() < 1 << 30, "peak {} MiB", peak_memory() >> 20);
}

#[test]
fn an_endless_answer_is_a_clear_error() {
    intake_client::sync::ensure_crypto_provider();
    let server = TestServer::start();
    // No length: the body ends when the connection does, here after 48 MiB (a bound
    // for this test only; without a cap the client would read until its timeout).
    let hostile = fake(|s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.intake.sync\r\nconnection: close\r\n\r\n");
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..48 {
            if s.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut phone = device(&server, "arta");
    phone.point_at(&hostile.url);
    let message = transport_error(phone.sync().unwrap_err());
    assert!(message.contains("larger than the 32 MiB"), "{message}");
}
