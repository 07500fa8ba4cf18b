//! Proves the browser harness (`intake_tests::browser`) before the dashboard's tests
//! lean on it: a real headless chromium fills and submits a form on a loopback page and
//! the answer is read back through the DOM; an escaped `<img onerror>` payload stays
//! inert while an unescaped copy runs (so an XSS check built on `eval` can fail); a
//! screenshot is a PNG of the window, and the window narrows to a phone; the real
//! server's `/health` reads in the browser; and dropping a `Browser` in a failing test
//! leaves no chromedriver or chromium behind.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Mutex;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use intake_tests::TestServer;
use intake_tests::browser::{Browser, CHROMEDRIVER, MOBILE_WIDTH, WINDOW};
use serde_json::Value;

/// The payload of the XSS checks: sets a global when it runs.
const PAYLOAD: &str = r#"<img src=x onerror="window.pwned=1">"#;

/// A few pages on `127.0.0.1:0`, served by actix-web on a thread of its own.
struct Site {
    url: String,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html><head><meta charset=utf-8><title>t</title></head>\
             <body>{body}</body></html>"
        ))
}

async fn form() -> HttpResponse {
    html(
        "<form id=intake method=post action=/result>\
           <input id=name name=name value=placeholder>\
           <select id=urgency name=urgency>\
             <option value=low>Low</option><option value=high>High</option>\
           </select>\
           <button>Send</button>\
         </form>"
            .into(),
    )
}

/// Echoes what was submitted, escaped, and sets a session-like cookie.
async fn result(fields: web::Form<HashMap<String, String>>) -> HttpResponse {
    let field = |name: &str| escape(fields.get(name).map_or("", String::as_str));
    let mut reply = html(format!(
        "<h1>Received</h1><dl id=result><dt>name</dt><dd id=name>{}</dd>\
         <dt>urgency</dt><dd id=urgency>{}</dd></dl><a id=again href=/form>Again</a>",
        field("name"),
        field("urgency")
    ));
    reply.headers_mut().insert(
        actix_web::http::header::SET_COOKIE,
        "seen=1; Path=/; HttpOnly; SameSite=Strict".parse().unwrap(),
    );
    reply
}

impl Site {
    fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(|| {
                    App::new()
                        .route("/form", web::get().to(form))
                        .route("/result", web::post().to(result))
                        .route(
                            "/escaped",
                            web::get().to(|| async {
                                html(format!("<p id=payload>{}</p>", escape(PAYLOAD)))
                            }),
                        )
                        .route(
                            "/raw",
                            web::get()
                                .to(|| async { html(format!("<p id=payload>{PAYLOAD}</p>")) }),
                        )
                })
                .workers(1)
                .listen(listener)
                .expect("listen")
                .run();
                tx.send(server.handle()).unwrap();
                server.await.expect("site runs");
            })
        });
        let handle = rx.recv().expect("site started");
        Site {
            url,
            handle,
            thread: Some(thread),
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_form_is_filled_submitted_and_read_back_through_the_dom() {
    let site = Site::start();
    let b = Browser::start();
    // Startup times, for the harness's report (`--nocapture` shows them).
    eprintln!("browser startup: {:?}", b.startup);
    b.goto(&format!("{}/form", site.url));
    // Cyrillic, diacritics and markup: typed as a person would, escaped by the page.
    let name = "Ђорђевић Đorđe <b>x</b>";
    b.fill("#name", name);
    b.select("#urgency", "high");
    b.submit_form("#intake");

    assert_eq!(b.current_url(), format!("{}/result", site.url));
    assert_eq!(b.text("h1"), "Received");
    assert_eq!(b.text("#name"), name);
    assert_eq!(b.text("#urgency"), "high");
    assert_eq!(b.texts("#result dt"), ["name", "urgency"]);
    assert_eq!(b.texts(".absent"), Vec::<String>::new());
    assert_eq!(
        b.eval("return document.querySelectorAll('#name b').length"),
        0
    );

    let cookies = b.cookies();
    let seen = cookies
        .iter()
        .find(|c| c.name == "seen")
        .unwrap_or_else(|| panic!("no `seen` cookie in {cookies:?}"));
    assert_eq!(seen.value, "1");
    assert!(seen.http_only, "{seen:?}");
    assert!(!seen.secure, "{seen:?}");
    assert_eq!(seen.same_site.as_deref(), Some("Strict"));

    // A link click navigates; the form is fresh again.
    b.follow("#again");
    assert_eq!(b.current_url(), format!("{}/form", site.url));
    assert_eq!(
        b.eval("return document.querySelector('#name').value"),
        "placeholder"
    );
}

#[test]
fn an_escaped_payload_stays_inert_and_an_unescaped_one_runs() {
    let site = Site::start();
    let b = Browser::start();

    // The check can fail: the same payload, unescaped, runs.
    b.goto(&format!("{}/raw", site.url));
    b.wait_until("return window.pwned === 1");
    assert_eq!(
        b.eval("return document.querySelectorAll('#payload img').length"),
        1
    );

    // Escaped, it is text: shown as written, no element, no global. The image's error
    // would have fired before the page's load event, which `goto` waits for.
    b.goto(&format!("{}/escaped", site.url));
    assert_eq!(b.text("#payload"), PAYLOAD);
    assert_eq!(
        b.eval("return document.querySelectorAll('#payload img').length"),
        0
    );
    assert_eq!(b.eval("return typeof window.pwned"), "undefined");
}

/// The width and height of a PNG, after checking its signature, header and end.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 45, "too short for a PNG: {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[12..16], b"IHDR", "the first chunk is the header");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert!(
        png.ends_with(b"\0\0\0\0IEND\xae\x42\x60\x82"),
        "the PNG ends with IEND"
    );
    (be(16), be(20))
}

#[test]
fn a_screenshot_is_a_png_of_the_window_which_narrows_to_a_phone() {
    let site = Site::start();
    let b = Browser::start();
    b.goto(&format!("{}/form", site.url));
    let viewport = |b: &Browser| {
        let v = b.eval("return [innerWidth, innerHeight, devicePixelRatio]");
        let n = |i: usize| v[i].as_f64().unwrap();
        (n(0), n(1), n(2))
    };

    let (width, height, ratio) = viewport(&b);
    assert_eq!((width, ratio), (f64::from(WINDOW.0), 1.0));
    let path = b.dir().join("wide.png");
    let png = b.screenshot(&path);
    assert_eq!(std::fs::read(&path).unwrap(), png, "the file holds the PNG");
    assert_eq!(png_size(&png), (WINDOW.0, height as u32));
    assert!(height <= f64::from(WINDOW.1) && height > 600.0, "{height}");

    b.set_width(MOBILE_WIDTH);
    let (width, narrow_height, _) = viewport(&b);
    assert_eq!(width, f64::from(MOBILE_WIDTH));
    let png = b.screenshot(b.dir().join("narrow.png"));
    assert_eq!(png_size(&png), (MOBILE_WIDTH, narrow_height as u32));
}

#[test]
fn the_real_server_health_reads_in_the_browser() {
    let server = TestServer::start();
    let b = Browser::start();
    b.goto(&format!("{}/health", server.url));
    let shown = b.text("body");
    let health: Value =
        serde_json::from_str(&shown).unwrap_or_else(|e| panic!("{e}: not JSON: {shown:?}"));
    assert_eq!(health["status"], "ok", "{health}");
}

/// Whether `pid` runs (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| !matches!(state, 'Z' | 'X'))
    })
}

#[test]
fn dropping_the_browser_in_a_failing_test_leaves_no_process_or_profile() {
    let seen = Mutex::new((Vec::new(), None));
    let failed = std::panic::catch_unwind(|| {
        let b = Browser::start();
        b.goto("data:text/html,<p id=p>up</p>");
        assert_eq!(b.text("#p"), "up");
        let named: Vec<(u32, String)> = b
            .processes()
            .into_iter()
            .map(|p| {
                let name = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                (p, name.trim().to_string())
            })
            .collect();
        *seen.lock().unwrap() = (named, Some(b.dir().to_path_buf()));
        panic!("a test fails while the browser runs");
    });
    assert!(failed.is_err());
    let (named, dir) = seen.into_inner().unwrap();
    // chromedriver, chromium's browser process and its helpers (zygotes, renderer, ...).
    assert!(named.iter().any(|(_, n)| n == "chromedriver"), "{named:?}");
    let chromium = named.iter().filter(|(_, n)| n == "chromium").count();
    assert!(chromium >= 3, "{named:?}");
    let left: Vec<_> = named.iter().filter(|(p, _)| alive(*p)).collect();
    assert!(left.is_empty(), "still running after drop: {left:?}");
    let dir = dir.unwrap();
    assert!(!dir.exists(), "{} not removed", dir.display());
}

#[test]
fn a_missing_binary_is_named_with_its_package() {
    let missing = Browser::check_binaries(Path::new("/nowhere/chromium"), Path::new(CHROMEDRIVER))
        .unwrap_err();
    assert!(
        missing.contains("/nowhere/chromium (Debian package chromium)"),
        "{missing}"
    );
    assert!(!missing.contains("chromium-driver"), "{missing}");
    assert!(missing.contains("scripts/deps"), "{missing}");
    // Here both are installed (scripts/deps ran); absence fails, it is never skipped.
    Browser::available().unwrap();
}
