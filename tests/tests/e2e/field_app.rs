//! The field app (`intake app`) over real HTTP: the app started in-process on
//! 127.0.0.1:0 with its own store directory, requests written by hand on a TCP socket
//! so that every header (`Host`, `Origin`, `Cookie`) is exactly what a test says.
//!
//! What is shown: only the browser that opened the one-time launch link gets in
//! (another local user's request, a foreign `Origin`, a foreign `Host` are refused);
//! every answer is `no-store` under the content security policy; a new store needs a
//! strong passphrase typed twice; a wrong passphrase changes nothing; the store is
//! closed after the idle time and on "Lock now".

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use intake_client::app::{Config, DEFAULT_IDLE, RunningApp};
use intake_client::{Key, Store};
use intake_server::storage::Role;
use intake_shared::{FieldType, Form, FormRegistry, Lang, RecordId, ReviewStatus, Rule, Value};
use intake_tests::link::{Link, LinkConfig};
use intake_tests::{TestDevice, TestServer};
use intake_web::form::label;
use intake_web::i18n::{Msg, t};

const PASSPHRASE: &str = "lumi i bardhë në mal";

/// An answer: status, headers (names lower-case), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn location(&self) -> &str {
        self.header("location").unwrap_or("")
    }
}

/// One HTTP/1.1 request with exactly `headers` (plus `Connection: close` and the
/// body's length).
fn raw(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the app");
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes a form value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The app under test with the browser that launched it: its session cookie and the
/// CSRF token of the pages it got.
struct Browser {
    app: RunningApp,
    home: tempfile::TempDir,
    cookie: String,
    lang: Option<&'static str>,
}

impl Browser {
    fn start(idle: Duration) -> Browser {
        let home = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let config = Config {
            home: home.path().join("store"),
            idle,
        };
        let app = RunningApp::start(config, listener).expect("start the app");
        let url = app.launch_url();
        let path = &url[url.find("/launch").unwrap()..];
        let port = app.port();
        let launched = raw(
            port,
            "GET",
            path,
            &[("Host", &format!("127.0.0.1:{port}"))],
            "",
        );
        assert_eq!(launched.status, 303, "{}", launched.body);
        assert_eq!(launched.location(), "/");
        let set = launched.header("set-cookie").expect("a session cookie");
        let cookie = set.split(';').next().unwrap().to_string();
        Browser {
            app,
            home,
            cookie,
            lang: None,
        }
    }

    fn port(&self) -> u16 {
        self.app.port()
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    fn cookies(&self) -> String {
        match self.lang {
            Some(l) => format!("{}; intake_app_lang={l}", self.cookie),
            None => self.cookie.clone(),
        }
    }

    fn get(&self, path: &str) -> Answer {
        let host = self.host();
        let cookies = self.cookies();
        raw(
            self.port(),
            "GET",
            path,
            &[("Host", &host), ("Cookie", &cookies)],
            "",
        )
    }

    /// Posts a form from one of the app's pages (with its `Origin`).
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let host = self.host();
        let origin = format!("http://{host}");
        let cookies = self.cookies();
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        raw(
            self.port(),
            "POST",
            path,
            &[("Host", &host), ("Origin", &origin), ("Cookie", &cookies)],
            &body.join("&"),
        )
    }

    /// The CSRF token of the page at `path`.
    fn csrf(&self, path: &str) -> String {
        let page = self.get(path);
        csrf_of(&page.body).unwrap_or_else(|| panic!("no CSRF token in {path}: {}", page.body))
    }

    fn store_dir(&self) -> std::path::PathBuf {
        self.home.path().join("store")
    }

    /// Creates the store through the new-store page.
    fn create_store(&self) {
        let csrf = self.csrf("/unlock");
        let done = self.post(
            "/unlock",
            &[
                ("csrf", &csrf),
                ("passphrase", PASSPHRASE),
                ("repeat", PASSPHRASE),
            ],
        );
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.location(), "/cases");
        assert!(self.app.is_unlocked());
    }
}

fn csrf_of(html: &str) -> Option<String> {
    let at = html.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
    Some(html[at..].split('"').next()?.to_string())
}

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_request_without_the_session_cookie_is_refused() {
    let b = Browser::start(DEFAULT_IDLE);
    let host = b.host();
    let other = format!("intake_app_{}=0000", b.port());
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/cases"),
        ("GET", "/unlock"),
        ("POST", "/lock"),
    ] {
        let none = raw(b.port(), method, path, &[("Host", &host)], "");
        assert_eq!(none.status, 403, "{method} {path} without a cookie");
        let forged = raw(
            b.port(),
            method,
            path,
            &[("Host", &host), ("Cookie", &other)],
            "",
        );
        assert_eq!(forged.status, 403, "{method} {path} with a made-up cookie");
    }
    // The browser that launched the app gets in.
    assert_eq!(b.get("/unlock").status, 200);
}

#[test]
fn a_foreign_origin_is_refused() {
    let b = Browser::start(DEFAULT_IDLE);
    let host = b.host();
    let cookie = b.cookies();
    for origin in [
        "http://evil.example",
        "null",
        &format!("http://localhost:{}", b.port()),
        &format!("http://127.0.0.1:{}", b.port() as u32 + 1),
    ] {
        for (method, path) in [("GET", "/unlock"), ("POST", "/unlock"), ("POST", "/lock")] {
            let a = raw(
                b.port(),
                method,
                path,
                &[("Host", &host), ("Cookie", &cookie), ("Origin", origin)],
                "",
            );
            assert_eq!(a.status, 403, "{method} {path} from {origin}");
        }
    }
    let ours = format!("http://{host}");
    let a = raw(
        b.port(),
        "GET",
        "/unlock",
        &[("Host", &host), ("Cookie", &cookie), ("Origin", &ours)],
        "",
    );
    assert_eq!(a.status, 200);
}

#[test]
fn a_foreign_host_is_refused() {
    let b = Browser::start(DEFAULT_IDLE);
    let cookie = b.cookies();
    let port = b.port();
    // A name rebound to 127.0.0.1 by a web page's DNS carries that name.
    for host in [
        format!("evil.example:{port}"),
        format!("localhost:{port}"),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{}", port as u32 + 1),
    ] {
        let a = raw(
            port,
            "GET",
            "/unlock",
            &[("Host", &host), ("Cookie", &cookie)],
            "",
        );
        assert_eq!(a.status, 421, "Host: {host}");
    }
    let no_host = raw(port, "GET", "/unlock", &[("Cookie", &cookie)], "");
    assert!(
        no_host.status == 421 || no_host.status == 400,
        "{}",
        no_host.status
    );
    // Not even the launch link answers to another name.
    let url = b.app.launch_url();
    let a = raw(
        port,
        "GET",
        &url[url.find("/launch").unwrap()..],
        &[("Host", "evil.example")],
        "",
    );
    assert_eq!(a.status, 421);
}

#[test]
fn the_launch_secret_works_once_for_a_cookie_that_is_not_the_secret() {
    let home = tempfile::tempdir().unwrap();
    let app = RunningApp::start(
        Config {
            home: home.path().to_path_buf(),
            idle: DEFAULT_IDLE,
        },
        TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .unwrap();
    let port = app.port();
    let host = format!("127.0.0.1:{port}");
    let url = app.launch_url();
    let path = &url[url.find("/launch").unwrap()..];
    let secret = &path[path.find("secret=").unwrap() + 7..];
    assert_eq!(secret.len(), 64, "32 random bytes, hex");

    let wrong = raw(port, "GET", "/launch?secret=00", &[("Host", &host)], "");
    assert_eq!(wrong.status, 403);
    assert!(wrong.header("set-cookie").is_none());

    let first = raw(port, "GET", path, &[("Host", &host)], "");
    assert_eq!(first.status, 303);
    assert_eq!(first.location(), "/");
    let set = first.header("set-cookie").unwrap();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap();
    let value = cookie.split_once('=').unwrap().1;
    assert_eq!(value.len(), 64);
    assert_ne!(value, secret, "the cookie is never the secret");

    let again = raw(port, "GET", path, &[("Host", &host)], "");
    assert_eq!(again.status, 403, "the link works once");
    assert!(again.header("set-cookie").is_none());
    // The cookie the first use got still works.
    let page = raw(
        port,
        "GET",
        "/unlock",
        &[("Host", &host), ("Cookie", cookie)],
        "",
    );
    assert_eq!(page.status, 200);
}

#[test]
fn every_answer_is_no_store_under_the_policy() {
    let b = Browser::start(DEFAULT_IDLE);
    let host = b.host();
    let answers = [
        b.get("/unlock"),
        b.get("/"),
        b.get("/no-such-page"),
        raw(b.port(), "GET", "/unlock", &[("Host", &host)], ""),
        raw(b.port(), "GET", "/unlock", &[("Host", "evil.example")], ""),
        b.post("/lock", &[("csrf", "wrong")]),
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 303, 404, 403, 421, 403]);
    for a in &answers {
        assert_eq!(a.header("cache-control"), Some("no-store"), "{}", a.status);
        let csp = a.header("content-security-policy").unwrap_or("");
        assert!(csp.starts_with("default-src 'none'"), "{}: {csp}", a.status);
        assert!(csp.contains("frame-ancestors 'none'"));
    }
    // Nothing is fetched from elsewhere: styles are inline, there is no script.
    let page = &answers[0].body;
    assert!(page.contains("<style>"));
    assert!(!page.contains("<script"));
    assert!(!page.contains("<link"));
    assert!(!page.contains("http://") && !page.contains("https://"));
}

#[test]
fn a_new_store_needs_a_strong_passphrase_typed_twice() {
    let mut b = Browser::start(DEFAULT_IDLE);
    b.lang = Some("sr-Latn");
    let csrf = b.csrf("/unlock");
    let page = b.get("/unlock");
    assert!(
        page.body.contains(r#"name="repeat""#),
        "a new store asks twice"
    );

    let differ = b.post(
        "/unlock",
        &[
            ("csrf", &csrf),
            ("passphrase", PASSPHRASE),
            ("repeat", "lumi i bardhë në male"),
        ],
    );
    assert_eq!(differ.status, 400);
    assert!(
        differ.body.contains("Lozinke se ne poklapaju."),
        "{}",
        differ.body
    );

    let short = b.post(
        "/unlock",
        &[
            ("csrf", &csrf),
            ("passphrase", "kratko"),
            ("repeat", "kratko"),
        ],
    );
    assert_eq!(short.status, 400);
    assert!(short.body.contains("najmanje 12 znakova"), "{}", short.body);

    let run = b.post(
        "/unlock",
        &[
            ("csrf", &csrf),
            ("passphrase", "123456789012"),
            ("repeat", "123456789012"),
        ],
    );
    assert!(run.body.contains("niz susednih tastera"), "{}", run.body);

    b.lang = Some("en");
    let repeats = b.post(
        "/unlock",
        &[
            ("csrf", &csrf),
            ("passphrase", "abcabcabcabc"),
            ("repeat", "abcabcabcabc"),
        ],
    );
    assert!(
        repeats.body.contains("repeats the same few characters"),
        "{}",
        repeats.body
    );
    // Issue 12: long enough and no pattern, but a strength estimate finds it guessable.
    let guessable = b.post(
        "/unlock",
        &[
            ("csrf", &csrf),
            ("passphrase", "password1234"),
            ("repeat", "password1234"),
        ],
    );
    assert_eq!(guessable.status, 400);
    assert!(
        guessable.body.contains("too easy to guess") && guessable.body.contains("random words"),
        "{}",
        guessable.body
    );

    assert!(!b.app.is_unlocked());
    assert!(
        !b.store_dir().exists() || snapshot(&b.store_dir()).is_empty(),
        "a refused passphrase writes nothing"
    );

    let no_csrf = b.post(
        "/unlock",
        &[("passphrase", PASSPHRASE), ("repeat", PASSPHRASE)],
    );
    assert_eq!(no_csrf.status, 403);
    assert!(!b.app.is_unlocked());

    b.create_store();
    assert!(b.store_dir().join("intake.db").exists());
    assert_eq!(b.get("/cases").status, 200);
}

#[test]
fn a_wrong_passphrase_says_so_and_changes_nothing() {
    let mut b = Browser::start(DEFAULT_IDLE);
    b.create_store();
    let csrf = b.csrf("/cases");
    assert_eq!(b.post("/lock", &[("csrf", &csrf)]).status, 303);
    assert!(!b.app.is_unlocked());
    let before = snapshot(&b.store_dir());

    b.lang = Some("sq");
    let page = b.get("/unlock");
    assert!(
        !page.body.contains(r#"name="repeat""#),
        "an existing store asks once"
    );
    let wrong = b.post(
        "/unlock",
        &[("csrf", &csrf), ("passphrase", "lumi i zi në mal")],
    );
    assert_eq!(wrong.status, 400);
    assert!(
        wrong
            .body
            .contains("Fjalëkalim i gabuar. Asgjë nuk u ndryshua"),
        "{}",
        wrong.body
    );
    assert!(!b.app.is_unlocked());
    assert_eq!(snapshot(&b.store_dir()), before, "nothing touched");

    let right = b.post("/unlock", &[("csrf", &csrf), ("passphrase", PASSPHRASE)]);
    assert_eq!(right.status, 303);
    assert!(b.app.is_unlocked());
}

#[test]
fn lock_now_closes_the_store() {
    let b = Browser::start(DEFAULT_IDLE);
    b.create_store();
    let csrf = b.csrf("/cases");
    assert_eq!(b.post("/lock", &[("csrf", "not the token")]).status, 403);
    assert!(b.app.is_unlocked(), "a form without the token does nothing");

    let locked = b.post("/lock", &[("csrf", &csrf)]);
    assert_eq!(locked.status, 303);
    assert_eq!(locked.location(), "/unlock");
    assert!(!b.app.is_unlocked());
    let cases = b.get("/cases");
    assert_eq!(cases.status, 303);
    assert_eq!(cases.location(), "/unlock");
    let page = b.get("/unlock");
    assert!(
        page.body.contains("Aplikacioni është kyçur."),
        "{}",
        page.body
    );
}

#[test]
fn the_store_is_closed_after_the_idle_time() {
    let mut b = Browser::start(Duration::from_secs(5 * 60));
    b.lang = Some("en");
    b.create_store();
    // Use just before the limit keeps it open…
    b.app.clock().advance(Duration::from_secs(4 * 60));
    assert_eq!(b.get("/cases").status, 200);
    b.app.clock().advance(Duration::from_secs(4 * 60));
    assert_eq!(
        b.get("/cases").status,
        200,
        "the idle time counts from the last request"
    );
    assert!(b.app.is_unlocked());

    // …and without a request, the store is closed on its own: moving the clock wakes
    // the app's idle check, no request needed.
    b.app.clock().advance(Duration::from_secs(5 * 60));
    let deadline = Instant::now() + Duration::from_secs(10);
    // Waiting for the reaper thread to act on the moved clock, not for time to pass.
    while b.app.is_unlocked() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!b.app.is_unlocked(), "closed without a request");
    let cases = b.get("/cases");
    assert_eq!(cases.status, 303);
    assert_eq!(cases.location(), "/unlock");
    let page = b.get("/unlock");
    assert!(
        page.body.contains("locked itself after 5 min."),
        "{}",
        page.body
    );
}

// ---- My cases, a case's page

impl Browser {
    /// Runs `f` on the store opened beside the app (as a sync or another device's
    /// change arriving would), with the app locked meanwhile.
    fn beside<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let csrf = self.csrf_any();
        assert_eq!(self.post("/lock", &[("csrf", &csrf)]).status, 303);
        let key = Key::from_passphrase(&self.store_dir(), PASSPHRASE).unwrap();
        let mut store = Store::open(&self.store_dir(), &key).unwrap();
        let out = f(&mut store);
        drop(store);
        let back = self.post("/unlock", &[("csrf", &csrf), ("passphrase", PASSPHRASE)]);
        assert_eq!(back.status, 303);
        out
    }

    /// The CSRF token from whichever page the app shows now.
    fn csrf_any(&self) -> String {
        let page = self.get("/unlock");
        let page = if page.status == 303 {
            self.get("/cases")
        } else {
            page
        };
        csrf_of(&page.body).expect("a CSRF token")
    }

    /// Creates a case through the new-case form; returns its id.
    fn new_case(&self, fields: &[(&str, &str)]) -> (RecordId, Answer) {
        let csrf = self.csrf("/cases/new");
        let mut form = vec![("csrf".to_string(), csrf)];
        form.extend(
            fields
                .iter()
                .map(|(k, v)| (format!("f.{k}"), v.to_string())),
        );
        let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let a = self.post("/cases/new", &refs);
        let page = if a.status == 303 {
            a.location().to_string()
        } else {
            find_action(&a.body)
        };
        let id = page
            .trim_start_matches("/cases/")
            .split(['?', '/', '#'])
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("no case id in {page:?}: {}", a.body));
        (id, a)
    }
}

fn find_action(html: &str) -> String {
    let at = html
        .find(r#"form class="case" method="post" novalidate action=""#)
        .expect("the case form");
    let rest = &html[at + r#"form class="case" method="post" novalidate action=""#.len()..];
    rest.split('"').next().unwrap().to_string()
}

/// Answers for every required field of `form`: the first choice, a date, a number in
/// range, "yes", some text.
fn required_answers(form: &Form) -> Vec<(String, String)> {
    form.fields()
        .iter()
        .filter(|f| f.required)
        .map(|f| {
            let v = match f.kind {
                FieldType::Choice => form.choices(f)[0].value.clone(),
                FieldType::Date => "2026-04-19".into(),
                FieldType::Integer => f.min.unwrap_or(1).to_string(),
                FieldType::YesNo => "yes".into(),
                _ => "Drita Krasniqi".into(),
            };
            (f.name.clone(), v)
        })
        .collect()
}

#[test]
fn a_new_case_is_saved_at_once_and_a_bad_value_gets_the_forms_message() {
    let mut b = Browser::start(DEFAULT_IDLE);
    b.create_store();
    b.lang = Some("sr-Cyrl");
    let (id, bad) = b.new_case(&[
        ("full_name", "Ђорђе Јовановић"),
        ("birth_year", "тысяча"),
        ("municipality", "prizren"),
    ]);
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("Проверите означена поља."),
        "{}",
        bad.body
    );
    // The field's own message, in Cyrillic, next to the typed value kept as typed.
    let form = FormRegistry::builtin().latest("intake").unwrap();
    let expected = Rule::NotAnInteger.message(Lang::SrCyrl);
    assert!(bad.body.contains(&expected), "{expected}: {}", bad.body);
    assert!(bad.body.contains(r#"value="тысяча""#));
    assert!(bad.body.contains(r#"aria-invalid="true""#));

    // Fixed on the case's page.
    let csrf = b.csrf(&format!("/cases/{id}"));
    let fixed = b.post(
        &format!("/cases/{id}"),
        &[("csrf", &csrf), ("f.birth_year", "1990")],
    );
    assert_eq!(fixed.status, 303, "{}", fixed.body);
    let page = b.get(fixed.location());
    assert!(page.body.contains("Сачувано."), "{}", page.body);

    // Durable as soon as the answer came: the store, opened on its own, has it all.
    let record = b.beside(|s| {
        let r = s.get(id).unwrap();
        (
            r.get("full_name"),
            r.get("birth_year"),
            r.get("municipality"),
        )
    });
    assert_eq!(record.0, Some(Value::Text("Ђорђе Јовановић".into())));
    assert_eq!(record.1, Some(Value::Int(1990)));
    assert_eq!(record.2, Some(Value::Text("prizren".into())));
    let _ = form;

    // An edit that changes nothing writes nothing.
    let csrf = b.csrf(&format!("/cases/{id}"));
    let changes_before = b.beside(|s| s.get(id).unwrap().change_count());
    let same = b.post(
        &format!("/cases/{id}"),
        &[
            ("csrf", &csrf),
            ("f.birth_year", "1990"),
            ("f.full_name", "Ђорђе Јовановић"),
        ],
    );
    assert_eq!(same.status, 303);
    assert_eq!(
        b.beside(|s| s.get(id).unwrap().change_count()),
        changes_before
    );
}

#[test]
fn submit_names_what_is_missing_then_sends_the_case() {
    let mut b = Browser::start(DEFAULT_IDLE);
    b.create_store();
    b.lang = Some("en");
    let (id, created) = b.new_case(&[("full_name", "Drita Krasniqi")]);
    assert_eq!(created.status, 303);
    let csrf = b.csrf(&format!("/cases/{id}"));
    let refused = b.post(&format!("/cases/{id}/submit"), &[("csrf", &csrf)]);
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("these required fields are empty"),
        "{}",
        refused.body
    );
    let form = FormRegistry::builtin().latest("intake").unwrap();
    let municipality = label(form.field("municipality").unwrap(), Lang::En);
    assert!(
        refused.body.contains(municipality),
        "{municipality}: {}",
        refused.body
    );
    assert_eq!(
        b.beside(|s| s.get(id).unwrap().status()),
        ReviewStatus::Draft
    );

    let answers = required_answers(&form);
    let mut fields = vec![("csrf".to_string(), csrf.clone())];
    fields.extend(answers.iter().map(|(k, v)| (format!("f.{k}"), v.clone())));
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(b.post(&format!("/cases/{id}"), &refs).status, 303);
    let sent = b.post(&format!("/cases/{id}/submit"), &[("csrf", &csrf)]);
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert!(
        b.get(sent.location())
            .body
            .contains("The case is submitted for review.")
    );
    assert_eq!(
        b.beside(|s| s.get(id).unwrap().status()),
        ReviewStatus::Submitted
    );
}

#[test]
fn my_cases_show_needs_changes_first_with_the_note_then_drafts() {
    let mut b = Browser::start(DEFAULT_IDLE);
    b.create_store();
    b.lang = Some("en");
    let form = FormRegistry::builtin().latest("intake").unwrap();
    // Statuses past draft need the required fields answered.
    let complete = |overrides: &[(&str, &str)]| -> RecordId {
        let mut answers = required_answers(&form);
        for (k, v) in overrides {
            answers.retain(|(n, _)| n != k);
            answers.push((k.to_string(), v.to_string()));
        }
        let refs: Vec<(&str, &str)> = answers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (id, a) = b.new_case(&refs);
        assert_eq!(a.status, 303, "{}", a.body);
        id
    };
    let submitted = complete(&[("full_name", "Submitted Person")]);
    let back = complete(&[("full_name", "Sent Back Person"), ("urgency", "high")]);
    let (draft, _) = b.new_case(&[("full_name", "Draft Person"), ("municipality", "prizren")]);
    // The supervisor's decisions arrive (as a sync would bring them).
    b.beside(|s| {
        s.edit(submitted, |e| e.set_status(ReviewStatus::Closed, None))
            .unwrap();
        s.edit(back, |e| {
            e.set_status(ReviewStatus::NeedsChanges, Some("re-ask consent"))
        })
        .unwrap();
    });
    let list = b.get("/cases").body;
    let at = |name: &str| {
        list.find(name)
            .unwrap_or_else(|| panic!("{name} in {list}"))
    };
    assert!(at("Sent Back Person") < at("Draft Person"));
    assert!(at("Draft Person") < at("Submitted Person"));
    assert!(
        list.contains("re-ask consent"),
        "the supervisor's note is shown"
    );
    assert!(list.contains("Supervisor&#39;s note") || list.contains("Supervisor's note"));
    assert!(list.contains("Not synced yet"), "nothing has been synced");
    assert!(list.contains("Needs changes"));
    let high = form.value_label(
        form.field("urgency").unwrap(),
        &Value::Text("high".into()),
        Lang::En,
    );
    assert!(list.contains(&format!("Urgency: {high}")), "{list}");
    let _ = draft;
}

#[test]
fn a_conflict_shows_each_value_with_its_author_and_a_button_for_each() {
    let mut b = Browser::start(DEFAULT_IDLE);
    b.create_store();
    b.lang = Some("en");
    let (id, _) = b.new_case(&[("full_name", "Drita Krasniqi"), ("village", "Zym")]);
    // Two devices' concurrent edits of one field, merged in the store.
    b.beside(|s| {
        let key = Key::from_passphrase(&b.store_dir(), PASSPHRASE).unwrap();
        let mut other = Store::open(&b.store_dir(), &key).unwrap();
        s.set_user("vjosa").unwrap();
        other.set_user("arben").unwrap();
        let mut mine = s.get(id).unwrap();
        let mut theirs = other.get(id).unwrap();
        mine.edit(chrono::Utc::now(), |e| {
            e.set("village", Value::Text("Lubizhdë".into()))
        })
        .unwrap();
        theirs
            .edit(chrono::Utc::now(), |e| {
                e.set("village", Value::Text("Hoçë".into()))
            })
            .unwrap();
        s.save(&mut mine).unwrap();
        other.save(&mut theirs).unwrap();
    });
    assert!(b.get("/cases").body.contains(">Conflict<"));
    let page = b.get(&format!("/cases/{id}")).body;
    assert!(page.contains("Conflict in"), "{page}");
    assert!(page.contains("Lubizhdë") && page.contains("Hoçë"));
    assert!(
        page.contains("by vjosa, ") && page.contains("by arben, "),
        "{page}"
    );
    assert_eq!(page.matches("Keep this value").count(), 2);

    let csrf = csrf_of(&page).unwrap();
    let kept = b.post(
        &format!("/cases/{id}/resolve"),
        &[("csrf", &csrf), ("field", "village"), ("value", "Hoçë")],
    );
    assert_eq!(kept.status, 303);
    let page = b.get(kept.location()).body;
    assert!(!page.contains("Keep this value"));
    let village = b.beside(|s| {
        let mut r = s.get(id).unwrap();
        (r.get("village"), r.conflicts().len())
    });
    assert_eq!(village, (Some(Value::Text("Hoçë".into())), 0));
}

#[test]
fn follow_up_visits_and_comments_are_added() {
    let mut b = Browser::start(DEFAULT_IDLE);
    b.create_store();
    b.lang = Some("sq");
    let (id, _) = b.new_case(&[("full_name", "Drita Krasniqi")]);
    let csrf = b.csrf(&format!("/cases/{id}"));
    let followup = FormRegistry::builtin().latest("followup").unwrap();
    // A bad date: the follow-up form's message, nothing added.
    let mut fields = vec![("csrf".to_string(), csrf.clone())];
    for (k, v) in required_answers(&followup) {
        let v = if k == "date" { "nesër".to_string() } else { v };
        fields.push((format!("a.{k}"), v));
    }
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let bad = b.post(&format!("/cases/{id}/followup"), &refs);
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains(&Rule::NotADate.message(Lang::Sq)),
        "{}",
        bad.body
    );
    assert!(b.beside(|s| s.get(id).unwrap().actions().is_empty()));

    let mut fields = vec![("csrf".to_string(), csrf.clone())];
    fields.extend(
        required_answers(&followup)
            .into_iter()
            .map(|(k, v)| (format!("a.{k}"), v)),
    );
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let added = b.post(&format!("/cases/{id}/followup"), &refs);
    assert_eq!(added.status, 303, "{}", added.body);

    let commented = b.post(
        &format!("/cases/{id}/comment"),
        &[("csrf", &csrf), ("text", "Klientja kërkon përkthyes.")],
    );
    assert_eq!(commented.status, 303);
    let page = b.get(&format!("/cases/{id}")).body;
    assert!(page.contains("Klientja kërkon përkthyes."));
    assert!(!page.contains(t(Lang::Sq, Msg::NoFollowUpActions)));
    let (actions, comments) = b.beside(|s| {
        let mut r = s.get(id).unwrap();
        (r.actions().len(), r.comments().len())
    });
    assert_eq!((actions, comments), (1, 1));
}

#[test]
fn the_language_switch_offers_all_seven_and_is_remembered() {
    let b = Browser::start(DEFAULT_IDLE);
    let page = b.get("/unlock").body;
    for lang in Lang::ALL {
        assert!(
            page.contains(&format!("hreflang=\"{}\"", lang.code())) || lang == Lang::Sq,
            "{lang} offered"
        );
    }
    let switched = b.get("/lang?to=tr&back=%2Funlock");
    assert_eq!(switched.status, 303);
    assert_eq!(switched.location(), "/unlock");
    let set = switched.header("set-cookie").unwrap();
    assert!(
        set.starts_with("intake_app_lang=tr;") && set.contains("Max-Age="),
        "{set}"
    );
    // A crafted "back" stays on the app.
    assert_eq!(b.get("/lang?to=bs&back=%2F%2Fevil.example").location(), "/");
}

// ---- Sync, enrolment, device

impl Browser {
    /// Starts a sync from the sync page and reloads the page, as its refresh does,
    /// until the sync is over; returns the last page.
    fn sync_and_wait(&self) -> String {
        let csrf = self.csrf("/sync");
        let started = self.post("/sync", &[("csrf", &csrf)]);
        assert_eq!(started.status, 303);
        assert_eq!(started.location(), "/sync");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = self.get("/sync").body;
            if !page.contains(r#"http-equiv="refresh""#) {
                return page;
            }
            assert!(Instant::now() < deadline, "the sync did not end: {page}");
            // The page's own refresh is 2 s; the test reloads sooner.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn enrol_sync_and_the_supervisors_decision_comes_back_first() {
    let server = TestServer::start();
    let mut b = Browser::start(DEFAULT_IDLE);
    b.lang = Some("en");
    b.create_store();
    assert!(
        b.get("/sync")
            .body
            .contains("This device is not enrolled with a server yet.")
    );

    let form = FormRegistry::builtin().latest("intake").unwrap();
    let mut answers = required_answers(&form);
    answers.retain(|(k, _)| k != "full_name");
    answers.push(("full_name".into(), "Drita Krasniqi".into()));
    let refs: Vec<(&str, &str)> = answers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (id, _) = b.new_case(&refs);
    let (draft, _) = b.new_case(&[("full_name", "Draft Person")]);
    let csrf = b.csrf("/device");
    assert_eq!(
        b.post(&format!("/cases/{id}/submit"), &[("csrf", &csrf)])
            .status,
        303
    );

    // A wrong code: said in plain words, nothing enrolled.
    let code = server.add_user("vesa", Role::Paralegal, Some("prizren"));
    let wrong = b.post(
        "/device/enrol",
        &[
            ("csrf", &csrf),
            ("server", &server.url),
            ("code", "AAAA-BBBB-CCCC"),
        ],
    );
    assert_eq!(wrong.status, 400);
    assert!(
        wrong.body.contains("Enrolment failed: the code is wrong"),
        "{}",
        wrong.body
    );
    let enrolled = b.post(
        "/device/enrol",
        &[
            ("csrf", &csrf),
            ("server", &server.url),
            ("code", &code),
            ("label", "laptop"),
        ],
    );
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    assert!(enrolled.body.contains("The device is enrolled."));
    let device = b.get("/device").body;
    assert!(
        device.contains("<dd>vesa</dd>") && device.contains(&server.url),
        "{device}"
    );
    assert!(device.contains(&b.store_dir().display().to_string()));

    let done = b.sync_and_wait();
    assert!(done.contains("Last sync: 20"), "{done}");
    assert!(!done.contains("did not finish"), "{done}");
    assert!(
        !b.get("/cases").body.contains("Not synced yet"),
        "everything went up"
    );
    // The time is kept in the store, so the next launch still knows it.
    let kept = b
        .beside(|s| s.last_sync().unwrap())
        .expect("a last sync time");
    assert!(done.contains(&kept.format("%Y-%m-%d").to_string()));

    // The supervisor finds the case and sends it back with a note.
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    merita.sync().unwrap();
    assert!(merita.has(id));
    assert!(merita.has(draft));
    merita.edit(id, |e| {
        e.set_status(ReviewStatus::NeedsChanges, Some("re-ask consent"))
    });
    merita.sync().unwrap();

    b.sync_and_wait();
    let list = b.get("/cases").body;
    let back = list.find("Drita Krasniqi").unwrap();
    assert!(
        back < list.find("Draft Person").unwrap(),
        "needs changes shows first"
    );
    assert!(list.contains("re-ask consent"));

    // The server gone: the failure in plain words.
    drop(server);
    let failed = b.sync_and_wait();
    assert!(failed.contains("The server cannot be reached"), "{failed}");
}

#[test]
fn a_comment_from_a_phone_whose_clock_was_a_year_ahead_is_marked() {
    // Issue 13, clock skew: the app shows beside another device's time that its clock
    // was clearly wrong (judged from the server's receipts it pulled), and nothing
    // beside times from a device whose clock was right.
    let server = TestServer::start();
    let mut b = Browser::start(DEFAULT_IDLE);
    b.lang = Some("en");
    b.create_store();
    let (id, _) = b.new_case(&[("full_name", "Drita Krasniqi")]);
    let code = server.add_user("vesa", Role::Paralegal, Some("prizren"));
    let csrf = b.csrf("/device");
    let enrolled = b.post(
        "/device/enrol",
        &[("csrf", &csrf), ("server", &server.url), ("code", &code)],
    );
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    b.sync_and_wait();

    let mut ahead = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let year = chrono::Duration::days(365);
    ahead
        .store
        .set_clock(std::sync::Arc::new(move || chrono::Utc::now() + year));
    let mut right = TestDevice::enroll(&server, "arben", Role::Supervisor, Some("prizren"));
    let followup = FormRegistry::builtin().latest("followup").unwrap();
    for d in [&mut ahead, &mut right] {
        d.sync().unwrap();
        let by = d.name.clone();
        d.edit(id, |e| {
            e.add_comment(&format!("note from {by}"))?;
            e.add_action(
                &followup,
                &[
                    ("date".to_string(), Value::Text("2026-04-20".into())),
                    ("type".to_string(), Value::Text("visit".into())),
                ]
                .into_iter()
                .collect(),
            )
        });
        d.sync().unwrap();
    }
    b.sync_and_wait();

    let page = b.get(&format!("/cases/{id}")).body;
    let entry = |marker: &str, by: &str| -> String {
        let section = &page[page.find(marker).unwrap()..];
        let at = section
            .find(&format!("· {by}"))
            .unwrap_or_else(|| panic!("{by} in {section}"));
        let line = &section[at..];
        line[..line.find("</p>").unwrap()].to_string()
    };
    let wrong = "device clock was wrong: at least 1 yr. ahead (received by the server 20";
    for marker in ["id=\"comments\"", "id=\"followups\""] {
        let marked = entry(marker, "merita");
        assert!(marked.contains(wrong), "{marker}: {marked}");
        let plain = entry(marker, "arben");
        assert!(
            !plain.contains("device clock was wrong"),
            "{marker}: {plain}"
        );
    }
}

// ---- Quick wipe

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The first of `files` holding `canary`.
fn has_canary(files: &[std::path::PathBuf], canary: &str) -> Option<std::path::PathBuf> {
    files
        .iter()
        .find(|f| {
            let bytes = std::fs::read(f).unwrap();
            bytes.windows(canary.len()).any(|w| w == canary.as_bytes())
        })
        .cloned()
}

#[test]
fn the_canary_search_finds_a_name_in_the_clear() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), b"..Zqxwvbek..").unwrap();
    let mut files = Vec::new();
    files_under(dir.path(), &mut files);
    assert!(has_canary(&files, "Zqxwvbek").is_some());
}

#[test]
fn quick_wipe_destroys_every_file_in_under_a_second() {
    const CANARY: &str = "Zqxwvbek Canarysson";
    let mut b = Browser::start(DEFAULT_IDLE);
    b.lang = Some("en");
    b.create_store();
    let (id, _) = b.new_case(&[("full_name", CANARY), ("narrative", CANARY)]);
    let csrf = b.csrf(&format!("/cases/{id}"));
    let commented = b.post(
        &format!("/cases/{id}/comment"),
        &[("csrf", &csrf), ("text", CANARY)],
    );
    assert_eq!(commented.status, 303);
    assert!(b.store_dir().join("intake.salt").exists());
    assert!(b.store_dir().join("intake.db").exists());

    // Before: the store's files exist, and the canary is in none of them in the clear
    // (SQLCipher), so the check below can only pass because the files are gone or
    // clean, not because the search cannot see the name.
    let mut before = Vec::new();
    files_under(b.home.path(), &mut before);
    assert!(before.len() >= 2, "{before:?}");
    assert_eq!(has_canary(&before, CANARY), None, "the store is encrypted");

    let confirm = b.get("/wipe");
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.body.contains("Cases not synced yet: 1"),
        "{}",
        confirm.body
    );
    assert!(
        b.store_dir().join("intake.db").exists(),
        "the confirmation page destroys nothing"
    );
    assert_eq!(b.post("/wipe", &[("csrf", "wrong")]).status, 403);
    assert!(b.store_dir().join("intake.db").exists());

    let started = Instant::now();
    let wiped = b.post("/wipe", &[("csrf", &csrf)]);
    let took = started.elapsed();
    assert_eq!(wiped.status, 303);
    assert!(took < Duration::from_secs(1), "the wipe took {took:?}");
    assert!(!b.app.is_unlocked());
    for name in ["intake.db", "intake.db-wal", "intake.db-shm", "intake.salt"] {
        assert!(!b.store_dir().join(name).exists(), "{name} is left");
    }
    let mut files = Vec::new();
    files_under(b.home.path(), &mut files);
    assert_eq!(has_canary(&files, CANARY), None);
    assert!(files.is_empty(), "left behind: {files:?}");

    // The app says so and offers a new store.
    let page = b.get(wiped.location());
    assert!(page.body.contains("has been destroyed"), "{}", page.body);
    assert!(page.body.contains(r#"name="repeat""#), "the new-store form");
    assert_eq!(b.get(&format!("/cases/{id}")).location(), "/unlock");
}

// ---- In a real browser, at phone width

/// Where screenshots go: `INTAKE_SCREENSHOTS` when set (to refresh the committed ones
/// in `docs/screenshots/`), else the browser's own temporary directory.
fn shot(browser: &intake_tests::browser::Browser, name: &str) {
    let dir = std::env::var_os("INTAKE_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| browser.dir().to_path_buf());
    let png = browser.screenshot(dir.join(name));
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
}

/// Reloads the sync page until the sync it shows is over (the page refreshes itself
/// while one runs).
fn wait_for_sync(browser: &intake_tests::browser::Browser, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        browser.goto(&format!("{base}/sync"));
        let running =
            browser.eval("return document.querySelector('meta[http-equiv=refresh]') !== null");
        if running == serde_json::Value::Bool(false) {
            return;
        }
        assert!(Instant::now() < deadline, "the sync did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_paralegal_records_a_case_on_a_phone_in_cyrillic_and_the_supervisor_sends_it_back() {
    use intake_tests::browser::{Browser as Chromium, MOBILE_WIDTH, PHONE};
    let started = Instant::now();
    let server = TestServer::start();
    let code = server.add_user("drita", Role::Paralegal, Some("prizren"));
    let home = tempfile::tempdir().unwrap();
    let app = RunningApp::start(
        Config {
            home: home.path().join("store"),
            idle: DEFAULT_IDLE,
        },
        TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    // The device syncs over the link of the DESIGN (40 KB/s, 300 ms round trips), so a
    // sync lasts long enough to be seen in progress.
    let upstream = server.url.trim_start_matches("http://").parse().unwrap();
    let link = Link::start(upstream, LinkConfig::two_g(11).without_cuts());
    let link_url = format!("http://{}", link.addr());
    let browser = Chromium::start();
    // The window of a small phone, 360 × 740, as issue 11 asks.
    browser.set_size(PHONE);

    // The launch link, then a new store, in Serbian Cyrillic.
    browser.goto(&app.launch_url());
    browser.follow("a[hreflang='sr-Cyrl']");
    assert_eq!(browser.text("h1"), "Направите складиште за своје случајеве");
    browser.fill("#passphrase", PASSPHRASE);
    browser.fill("#repeat", PASSPHRASE);
    browser.submit_form("form[action='/unlock']");
    browser.wait_until("return location.pathname === '/cases'");
    assert!(app.is_unlocked());

    // Enrol this device.
    browser.goto(&format!("{base}/device"));
    browser.fill("#server", &link_url);
    browser.fill("#code", &code);
    browser.submit_form("form[action='/device/enrol']");
    browser.wait_for("div.notice");

    // A new case with a year of birth out of range: the form's message in Cyrillic.
    browser.goto(&format!("{base}/cases/new"));
    browser.fill("[name='f.full_name']", "Ђорђе Јовановић");
    browser.fill("[name='f.birth_year']", "1800");
    browser.submit_form("form.case");
    browser.wait_for(".field.invalid");
    let message = browser.text(".field.invalid p.error");
    assert_eq!(
        message,
        Rule::OutOfRange {
            min: Some(1900),
            max: Some(2030)
        }
        .message(Lang::SrCyrl)
    );
    assert!(
        browser
            .text("div.error")
            .contains("Проверите означена поља")
    );
    browser.eval("document.querySelector('.field.invalid').scrollIntoView({block: 'center'})");
    shot(&browser, "app-new-case-sr-Cyrl.png");
    let width = browser.eval("return document.documentElement.scrollWidth");
    assert!(
        width.as_u64().unwrap() <= u64::from(MOBILE_WIDTH),
        "no sideways scrolling: {width}"
    );

    // Fixed, consent given, saved; then submitted.
    browser.fill("[name='f.birth_year']", "1990");
    browser.click("input[name='f.consent_intake'][value='yes']");
    browser.submit_form("form.case");
    browser.wait_until(
        "return location.search.includes('saved=1') && document.readyState === 'complete'",
    );
    assert_eq!(browser.text("div.notice"), "Сачувано.");
    let id: RecordId = browser
        .current_url()
        .split("/cases/")
        .nth(1)
        .unwrap()
        .split(['?', '#'])
        .next()
        .unwrap()
        .parse()
        .unwrap();
    browser.submit_form("form[action$='/submit']");
    // The previous page had a notice too: wait for the new page's address.
    browser.wait_until(
        "return location.search.includes('done=submitted') && document.readyState === 'complete'",
    );
    assert_eq!(browser.text("div.notice"), "Случај је послат на преглед.");

    // Synced, in Serbian Latin.
    browser.goto(&format!("{base}/sync"));
    browser.follow("a[hreflang='sr-Latn']");
    browser.submit_form("form[action='/sync']");
    // The page refreshes itself while the sync runs (the previous page is /sync too:
    // wait for the new one rather than read the old).
    browser.wait_until(
        "return document.querySelector('meta[http-equiv=refresh]') !== null \
         && document.readyState === 'complete'",
    );
    assert!(browser.text("div.notice").contains("Sinhronizacija u toku"));
    assert!(browser.text("p.progress").starts_with("Poslato: "));
    shot(&browser, "app-sync-sr-Latn.png");
    wait_for_sync(&browser, &base);
    assert!(browser.text("main").contains("Sinhronizacija je završena."));
    assert!(
        browser
            .text("main")
            .contains("Poslednja sinhronizacija: 20")
    );

    // The supervisor finds it and sends it back.
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    merita.sync().unwrap();
    assert!(merita.has(id), "the case reached the supervisor");
    assert_eq!(
        merita.record(id).get("full_name"),
        Some(Value::Text("Ђорђе Јовановић".into()))
    );
    merita.edit(id, |e| {
        e.set_status(ReviewStatus::NeedsChanges, Some("Pyet sërish për pëlqimin"))
    });
    merita.sync().unwrap();

    // Another case, a draft, so that the order shows.
    browser.goto(&format!("{base}/cases/new"));
    browser.fill("[name='f.full_name']", "Drita Krasniqi");
    browser.submit_form("form.case");
    browser.wait_for("div.notice");
    browser.goto(&format!("{base}/sync"));
    browser.submit_form("form[action='/sync']");
    browser.wait_until(
        "return document.querySelector('meta[http-equiv=refresh]') !== null \
         && document.readyState === 'complete'",
    );
    wait_for_sync(&browser, &base);

    // My cases, in Albanian: what came back from review first, with the note.
    browser.goto(&format!("{base}/cases"));
    browser.follow("a[hreflang='sq']");
    let statuses = browser
        .eval("return [...document.querySelectorAll('li.case')].map(li => li.dataset.status)");
    assert_eq!(statuses, serde_json::json!(["needs_changes", "draft"]));
    assert!(
        browser
            .text("li.case p.note")
            .contains("Pyet sërish për pëlqimin")
    );
    assert!(browser.text("li.case strong").contains("Ђорђе Јовановић"));
    shot(&browser, "app-my-cases-sq.png");
    eprintln!("field app browser test: {:?}", started.elapsed());
}

#[test]
fn pages_stay_small_and_a_save_is_durable_when_its_answer_comes() {
    let mut b = Browser::start(DEFAULT_IDLE);
    b.lang = Some("sr-Cyrl");
    b.create_store();
    let (id, _) = b.new_case(&[("full_name", "Ђорђе Јовановић")]);
    let csrf = b.csrf(&format!("/cases/{id}"));
    // The answer to a save comes after the store's transaction has committed
    // (synchronous=FULL), so this is the time from the click to the record durable.
    let started = Instant::now();
    let saved = b.post(
        &format!("/cases/{id}"),
        &[
            ("csrf", &csrf),
            ("f.narrative", "Në zyrën e gjendjes civile…"),
        ],
    );
    let save = started.elapsed();
    assert_eq!(saved.status, 303);
    let mut weights = Vec::new();
    for path in [
        "/cases",
        "/cases/new",
        &format!("/cases/{id}"),
        "/sync",
        "/device",
        "/wipe",
    ] {
        let page = b.get(path);
        assert_eq!(page.status, 200, "{path}");
        weights.push((path.to_string(), page.body.len()));
    }
    let page = b.get("/unlock");
    assert_eq!(
        page.status, 303,
        "unlocked: the unlock page goes to the cases"
    );
    eprintln!("field app: save answered (durable) in {save:?}; page weights: {weights:?}");
    assert!(save < Duration::from_secs(2), "{save:?}");
    for (path, bytes) in &weights {
        // One request per page, styles inline; the case form is the heaviest.
        assert!(*bytes < 96 * 1024, "{path} is {bytes} bytes");
    }
    assert_eq!(
        b.beside(|s| s.get(id).unwrap().get("narrative")),
        Some(Value::Text("Në zyrën e gjendjes civile…".into()))
    );
}

#[test]
fn a_form_sent_after_the_idle_lock_is_kept_through_the_unlock_page() {
    let mut b = Browser::start(Duration::from_secs(5 * 60));
    b.lang = Some("en");
    b.create_store();
    let (id, _) = b.new_case(&[("full_name", "Drita Krasniqi")]);
    let csrf = b.csrf(&format!("/cases/{id}"));
    // She types a long narrative; no request meanwhile, so the app locks itself.
    b.app.clock().advance(Duration::from_secs(6 * 60));
    let narrative = "Line one\r\nLine two with \"quotes\" & <angles>";
    let sent = b.post(
        &format!("/cases/{id}"),
        &[("csrf", &csrf), ("f.narrative", narrative)],
    );
    assert_eq!(sent.status, 200);
    assert!(!b.app.is_unlocked());
    assert!(
        sent.body.contains("so they are not saved yet"),
        "{}",
        sent.body
    );
    assert!(sent.body.contains(r#"name="c.f.narrative""#));

    // Unlocking carries it (a wrong passphrase first: still carried).
    let carried = [
        ("csrf", csrf.as_str()),
        ("carry_to", &format!("/cases/{id}")),
        ("c.f.narrative", narrative),
    ];
    let mut wrong = carried.to_vec();
    wrong.push(("passphrase", "not the passphrase"));
    let again = b.post("/unlock", &wrong);
    assert_eq!(again.status, 400);
    assert!(again.body.contains(r#"name="c.f.narrative""#));
    let mut right = carried.to_vec();
    right.push(("passphrase", PASSPHRASE));
    let resumed = b.post("/unlock", &right);
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert!(b.app.is_unlocked());
    assert!(
        resumed
            .body
            .contains("Your last changes are not saved yet.")
    );
    assert!(resumed.body.contains(&format!(r#"action="/cases/{id}""#)));

    // One press saves it, as typed: the page holds it intact.
    let marker = r#"name="f.narrative" value=""#;
    let at = resumed.body.find(marker).expect("the carried field") + marker.len();
    let held = resumed.body[at..].split('"').next().unwrap();
    let held = held
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    assert_eq!(held, narrative);
    let saved = b.post(
        &format!("/cases/{id}"),
        &[("csrf", &csrf), ("f.narrative", &held)],
    );
    assert_eq!(saved.status, 303);
    assert_eq!(
        b.beside(|s| s.get(id).unwrap().get("narrative")),
        Some(Value::Text(narrative.replace("\r\n", "\n")))
    );
    // A carried address off the case pages is dropped, not followed.
    let csrf = b.csrf("/cases");
    assert_eq!(b.post("/lock", &[("csrf", &csrf)]).status, 303);
    let elsewhere = b.post(
        "/unlock",
        &[
            ("csrf", &csrf),
            ("carry_to", "//evil.example/"),
            ("c.x", "y"),
            ("passphrase", PASSPHRASE),
        ],
    );
    assert_eq!(elsewhere.status, 303);
    assert_eq!(elsewhere.location(), "/cases");
}

// ---- Lost phones (issue 12): the lock after N days and a wipe order, in the app.

#[test]
fn the_app_locks_its_pages_after_the_servers_days_without_a_sync_and_a_sync_unlocks_them() {
    let server = TestServer::start_with(intake_server::Settings {
        lock_after_days: 2,
        ..intake_server::Settings::default()
    });
    // An idle lock far beyond the days the clock is moved.
    let mut b = Browser::start(Duration::from_secs(400 * 24 * 3600));
    b.lang = Some("en");
    b.create_store();
    let code = server.add_user("vesa", Role::Paralegal, Some("prizren"));
    let csrf = b.csrf("/device");
    let enrolled = b.post(
        "/device/enrol",
        &[("csrf", &csrf), ("server", &server.url), ("code", &code)],
    );
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    let (id, _) = b.new_case(&[("full_name", "Drita Krasniqi")]);
    assert_eq!(b.get("/cases").status, 200);

    b.app.clock().advance(Duration::from_secs(3 * 24 * 3600));
    for path in ["/cases".to_string(), format!("/cases/{id}")] {
        let locked = b.get(&path);
        assert_eq!(locked.status, 403, "{path}: {}", locked.body);
        assert!(
            locked
                .body
                .contains("No successful sync for 2 days: connect and sync to unlock."),
            "{}",
            locked.body
        );
        assert!(!locked.body.contains("Drita Krasniqi"));
    }
    // The sync page stays open, and a successful sync unlocks.
    let done = b.sync_and_wait();
    assert!(!done.contains("did not finish"), "{done}");
    assert_eq!(b.get("/cases").status, 200);
}

#[test]
fn a_wipe_order_reaching_the_apps_background_sync_destroys_its_store_and_says_why() {
    let server = TestServer::start();
    let mut b = Browser::start(DEFAULT_IDLE);
    b.lang = Some("en");
    b.create_store();
    let code = server.add_user("vesa", Role::Paralegal, Some("prizren"));
    let csrf = b.csrf("/device");
    let enrolled = b.post(
        "/device/enrol",
        &[("csrf", &csrf), ("server", &server.url), ("code", &code)],
    );
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    b.new_case(&[("full_name", "Canary Wipe-Order")]);
    // The order is given while the app is locked; unlocking starts the background
    // sync, whose first contact meets it.
    let device = b.beside(|s| {
        let device = s.enrolment().unwrap().unwrap().device_id;
        assert!(
            intake_server::storage::Storage::order_wipe(
                server.storage.as_ref(),
                device,
                chrono::Utc::now()
            )
            .unwrap()
        );
        device
    });
    // Polling what the app shows, as a person would reload, not waiting for time.
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.app.is_unlocked() {
        assert!(
            Instant::now() < deadline,
            "the app never obeyed the wipe order"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut files = Vec::new();
    if b.store_dir().exists() {
        files_under(&b.store_dir(), &mut files);
    }
    assert!(files.is_empty(), "left behind: {files:?}");
    let page = b.get("/unlock");
    assert!(
        page.body
            .contains("your administrator ordered its data destroyed"),
        "{}",
        page.body
    );
    let listed = intake_server::storage::SyncStorage::devices(server.storage.as_ref()).unwrap();
    let row = listed.iter().find(|d| d.id == device).unwrap();
    assert_eq!(row.status(), "wiped");
}
