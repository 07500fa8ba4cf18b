//! A real headless browser for the dashboard's tests: [`Browser`] starts Debian's
//! `chromedriver` on a free loopback port, opens a WebDriver session (through fantoccini)
//! on headless `/usr/bin/chromium` with a fresh profile in a temporary directory, and
//! offers typed helpers that act as a person does: go to a page, fill and submit forms,
//! click, read what the page shows, take screenshots, and check the DOM with a script.
//!
//! fantoccini is async; a `Browser` owns a current-thread tokio runtime and blocks on
//! each command, so a browser test is a plain `#[test]` next to the blocking
//! [`crate::TestServer`] (whose reqwest client must not run inside a runtime). Hence a
//! `Browser` must not be used from async code.
//!
//! Helpers panic with the selector and the page's address when something is missing,
//! like the rest of the harness; [`Browser::texts`] and [`Browser::eval`] check absence.
//! Dropping a `Browser`, also while a failing test unwinds, kills chromedriver and every
//! process it started (found by the temporary directory they all name), then removes
//! the profile. The binaries come from `scripts/deps`; when one is missing,
//! [`Browser::available`] says which, and [`Browser::start`] fails with that.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Debian's chromium (package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver (package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The window a session starts with: a laptop screen.
pub const WINDOW: (u32, u32) = (1280, 900);
/// The width of a small phone, for the mobile layout checks.
pub const MOBILE_WIDTH: u32 = 360;
/// A small phone's window, width × height.
pub const PHONE: (u32, u32) = (360, 740);

/// How long chromedriver may take to answer "ready" (a loaded 2-core CI machine).
const DRIVER_WITHIN: Duration = Duration::from_secs(15);
/// How long chromium may take to start and open the session.
const SESSION_WITHIN: Duration = Duration::from_secs(30);
/// How long a page may take to load, and a script to run, before the command fails.
const PAGE_LOAD_WITHIN: Duration = Duration::from_secs(15);
const SCRIPT_WITHIN: Duration = Duration::from_secs(5);
/// How long [`Browser::wait_for`] and [`Browser::wait_until`] wait.
const WAIT_WITHIN: Duration = Duration::from_secs(5);
/// How long the browser's processes may take to die once killed.
const KILL_WITHIN: Duration = Duration::from_secs(3);

/// How long starting took, for reports.
#[derive(Clone, Copy, Debug)]
pub struct Startup {
    /// From spawning chromedriver to its `/status` answering ready.
    pub driver: Duration,
    /// From then to an open session (chromium started).
    pub session: Duration,
}

/// A cookie as the browser holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    /// `"Strict"`, `"Lax"` or `"None"`, as the browser reports it.
    pub same_site: Option<String>,
}

/// A headless chromium driven over WebDriver; see the module doc.
pub struct Browser {
    /// `None` only while starting and while dropping.
    client: Option<Client>,
    rt: tokio::runtime::Runtime,
    driver: Child,
    /// Holds the profile, chromium's `TMPDIR` and chromedriver's log; removed last.
    dir: tempfile::TempDir,
    pub startup: Startup,
}

impl Browser {
    /// Whether the browser tests can run here: `Err` names each missing binary and its
    /// Debian package. Absence is a failure, not a reason to skip: `scripts/deps`
    /// installs both.
    pub fn available() -> Result<(), String> {
        Browser::check_binaries(Path::new(CHROMIUM), Path::new(CHROMEDRIVER))
    }

    /// [`Browser::available`] for given paths (so its message can be tested).
    pub fn check_binaries(chromium: &Path, chromedriver: &Path) -> Result<(), String> {
        let missing: Vec<String> = [(chromium, "chromium"), (chromedriver, "chromium-driver")]
            .into_iter()
            .filter(|(path, _)| !path.is_file())
            .map(|(path, package)| format!("{} (Debian package {package})", path.display()))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the browser tests need {}: run scripts/deps (as root or with sudo)",
                missing.join(" and ")
            ))
        }
    }

    /// Starts chromedriver and a headless chromium with a [`WINDOW`]-sized window.
    pub fn start() -> Browser {
        if let Err(e) = Browser::available() {
            panic!("{e}");
        }
        let dir = tempfile::Builder::new()
            .prefix("intake-browser-")
            .tempdir()
            .expect("temp dir");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("browser TMPDIR");
        let log = dir.path().join("chromedriver.log");
        let began = Instant::now();
        let (driver, port) = start_driver(&tmp, &log);
        let driver_ready = began.elapsed();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        // From here on, a panic drops `browser` and so stops chromedriver.
        let mut browser = Browser {
            client: None,
            rt,
            driver,
            dir,
            startup: Startup {
                driver: driver_ready,
                session: Duration::ZERO,
            },
        };
        let profile = browser.dir.path().join("profile");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    // Containers and CI run as root, where the sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    // /dev/shm is 64 MB in containers; chromium crashes when it fills.
                    "--disable-dev-shm-usage",
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "timeouts": {
                "pageLoad": PAGE_LOAD_WITHIN.as_millis() as u64,
                "script": SCRIPT_WITHIN.as_millis() as u64,
                // No implicit wait: checking that something is absent must not wait.
                "implicit": 0,
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let url = format!("http://127.0.0.1:{port}");
        let session_began = Instant::now();
        // The timer needs the runtime: it is made inside `block_on`.
        let connected = browser.rt.block_on(async {
            let mut builder =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            builder.capabilities(capabilities);
            tokio::time::timeout(SESSION_WITHIN, builder.connect(&url)).await
        });
        match connected {
            Ok(Ok(client)) => browser.client = Some(client),
            Ok(Err(e)) => panic!(
                "chromedriver could not start chromium: {e}\n{}",
                log_tail(&log)
            ),
            Err(_) => panic!(
                "chromium did not start within {SESSION_WITHIN:?}\n{}",
                log_tail(&log)
            ),
        }
        browser.startup.session = session_began.elapsed();
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("an open session")
    }

    /// Runs one WebDriver command, or panics saying what failed and where.
    #[track_caller]
    fn run<T>(
        &self,
        what: &str,
        command: impl AsyncFnOnce(&Client) -> Result<T, fantoccini::error::CmdError>,
    ) -> T {
        match self.rt.block_on(command(self.client())) {
            Ok(value) => value,
            Err(e) => {
                let url = self
                    .rt
                    .block_on(self.client().current_url())
                    .map(|u| u.to_string())
                    .unwrap_or_else(|_| "an unknown page".into());
                panic!("browser: {what} failed on {url}: {e}")
            }
        }
    }

    /// Loads `url` and waits until it has loaded (images and scripts included).
    #[track_caller]
    pub fn goto(&self, url: &str) {
        self.run(&format!("going to {url}"), async |c| c.goto(url).await)
    }

    /// The address of the page shown now (after redirects).
    #[track_caller]
    pub fn current_url(&self) -> String {
        self.run("reading the address", async |c| c.current_url().await)
            .to_string()
    }

    /// Clicks the element matching `css`, as a person would (it must be visible). A
    /// navigation it starts has loaded when this returns.
    #[track_caller]
    pub fn click(&self, css: &str) {
        self.run(&format!("clicking {css}"), async |c| {
            c.find(Locator::Css(css)).await?.click().await
        })
    }

    /// Replaces the text of the input or textarea matching `css` by typing `text`.
    #[track_caller]
    pub fn fill(&self, css: &str, text: &str) {
        self.run(&format!("filling {css}"), async |c| {
            let field = c.find(Locator::Css(css)).await?;
            field.clear().await?;
            field.send_keys(text).await
        })
    }

    /// Chooses the option with `value` in the select matching `css`.
    #[track_caller]
    pub fn select(&self, css: &str, value: &str) {
        self.run(&format!("choosing {value:?} in {css}"), async |c| {
            c.find(Locator::Css(css))
                .await?
                .select_by_value(value)
                .await
        })
    }

    /// Clicks the link or button matching `css` and returns once the page it leads to
    /// has loaded (see [`Browser::submit_form`] for why this waits on its own).
    #[track_caller]
    pub fn follow(&self, css: &str) {
        self.eval("window.__intake_before_submit = true; return null");
        self.click(css);
        self.wait_until(
            "return window.__intake_before_submit !== true && document.readyState === 'complete'",
        );
    }

    /// Submits the form matching `css` by clicking its first submit button (a `<button>`
    /// without a type is one); to press a particular one, [`Browser::click`] it. Returns
    /// once the page the form leads to has loaded: WebDriver's click may return while
    /// the old page is still shown (it failed CI once), so the old document is marked
    /// and this waits for a document without the mark.
    #[track_caller]
    pub fn submit_form(&self, css: &str) {
        self.eval("window.__intake_before_submit = true; return null");
        self.run(&format!("submitting {css}"), async |c| {
            c.form(Locator::Css(css))
                .await?
                .submit_with(Locator::Css(
                    "button:not([type]), button[type=submit], input[type=submit]",
                ))
                .await
        });
        self.wait_until(
            "return window.__intake_before_submit !== true && document.readyState === 'complete'",
        );
    }

    /// The text a person sees in the element matching `css` (hidden text excluded).
    #[track_caller]
    pub fn text(&self, css: &str) -> String {
        self.run(&format!("reading {css}"), async |c| {
            c.find(Locator::Css(css)).await?.text().await
        })
    }

    /// The visible text of every element matching `css`, in document order; empty when
    /// there is none.
    #[track_caller]
    pub fn texts(&self, css: &str) -> Vec<String> {
        self.run(&format!("reading every {css}"), async |c| {
            let mut texts = Vec::new();
            for element in c.find_all(Locator::Css(css)).await? {
                texts.push(element.text().await?);
            }
            Ok(texts)
        })
    }

    /// Runs `js` in the page as the body of a function and returns what it returns
    /// (`null` without a `return`): e.g. `return typeof window.pwned` or
    /// `return document.querySelectorAll('script').length`.
    #[track_caller]
    pub fn eval(&self, js: &str) -> Value {
        self.run("running a script", async |c| {
            c.execute(js, Vec::new()).await
        })
    }

    /// Waits (at most a few seconds) until an element matches `css`, e.g. after a
    /// script changed the page.
    #[track_caller]
    pub fn wait_for(&self, css: &str) {
        self.run(&format!("waiting for {css}"), async |c| {
            c.wait()
                .at_most(WAIT_WITHIN)
                .for_element(Locator::Css(css))
                .await
                .map(drop)
        })
    }

    /// Waits (at most a few seconds) until `js`, run as by [`Browser::eval`], returns
    /// `true`; for what happens after the page has loaded.
    #[track_caller]
    pub fn wait_until(&self, js: &str) {
        let until = Instant::now() + WAIT_WITHIN;
        while self.eval(js) != Value::Bool(true) {
            assert!(
                Instant::now() < until,
                "browser: {js:?} still not true after {WAIT_WITHIN:?} on {}",
                self.current_url()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The cookies the browser holds for the page shown now, `HttpOnly` ones included.
    #[track_caller]
    pub fn cookies(&self) -> Vec<Cookie> {
        let all = self.run("reading cookies", async |c| c.get_all_cookies().await);
        all.into_iter()
            .map(|c| Cookie {
                name: c.name().to_string(),
                value: c.value().to_string(),
                path: c.path().map(str::to_string),
                domain: c.domain().map(str::to_string),
                secure: c.secure().unwrap_or(false),
                http_only: c.http_only().unwrap_or(false),
                same_site: c.same_site().map(|s| s.to_string()),
            })
            .collect()
    }

    /// Resizes the window to `width` × `height` CSS pixels ([`PHONE`] for a small
    /// phone).
    #[track_caller]
    pub fn set_size(&self, (width, height): (u32, u32)) {
        self.run(&format!("resizing to {width} × {height}"), async |c| {
            c.set_window_size(width, height).await
        })
    }

    /// Resizes the window to `width` CSS pixels, keeping its height; [`MOBILE_WIDTH`]
    /// for the phone layout, [`WINDOW`]`.0` to go back.
    #[track_caller]
    pub fn set_width(&self, width: u32) {
        self.run(&format!("resizing to {width} px"), async |c| {
            let (_, height) = c.get_window_size().await?;
            c.set_window_size(width, height as u32).await
        })
    }

    /// Writes what the window shows now to `path` as a PNG; returns its bytes. That is the
    /// page's viewport: 1280 × 761 in the 1280 × 900 window, as headless chromium keeps
    /// room for the toolbars it does not draw.
    #[track_caller]
    pub fn screenshot(&self, path: impl AsRef<Path>) -> Vec<u8> {
        let png = self.run("taking a screenshot", async |c| c.screenshot().await);
        let path = path.as_ref();
        std::fs::write(path, &png)
            .unwrap_or_else(|e| panic!("writing the screenshot {}: {e}", path.display()));
        png
    }

    /// The temporary directory holding the profile; removed when the `Browser` is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Chromedriver's process id and those of every process it started (chromium's
    /// browser, renderers, helpers), for checking that nothing outlives the `Browser`.
    pub fn processes(&self) -> Vec<u32> {
        processes_of(self.dir.path())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // No WebDriver "end session": it costs a fifth of a second per test (chromium
        // shutting down cleanly), and a hung browser, maybe why the test failed, would
        // not answer it. Killing is the same whether the test passed or not.
        drop(self.client.take());
        // Kill chromedriver and everything it started (see `processes_of`), and wait
        // until they are gone so that the profile can be removed.
        let until = Instant::now() + KILL_WITHIN;
        // A dying process stops naming the directory (its command line and environment
        // read empty once its memory is released) before it is a zombie: remember every
        // process killed and wait for each of them too (this raced under load in CI).
        let mut killed: Vec<u32> = Vec::new();
        loop {
            let mut left = processes_of(self.dir.path());
            let dying: Vec<u32> = killed
                .iter()
                .copied()
                .filter(|p| alive(*p) && !left.contains(p))
                .collect();
            left.extend(dying);
            if left.is_empty() || Instant::now() > until {
                break;
            }
            for &pid in &left {
                if !killed.contains(&pid) {
                    killed.push(pid);
                }
            }
            for pid in left {
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            // Reaps chromedriver (our child); the others are reaped by init.
            let _ = self.driver.try_wait();
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Starts chromedriver on a free loopback port and waits until it is ready. The port is
/// found by binding port 0 and letting go, so another process can take it in between:
/// chromedriver then exits at once, and a new port is tried.
fn start_driver(tmp: &Path, log: &Path) -> (Child, u16) {
    let mut last = String::new();
    for _ in 0..3 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            // Everything chromium writes (and can leave behind when killed) stays in our
            // directory, and every process it starts can be found by this variable.
            .env("TMPDIR", tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let until = Instant::now() + DRIVER_WITHIN;
        let mut pause = Duration::from_millis(2);
        loop {
            if let Some(status) = child.try_wait().expect("chromedriver's status") {
                last = format!("chromedriver exited ({status})\n{}", log_tail(log));
                break;
            }
            if driver_ready(port) {
                return (child, port);
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromedriver was not ready within {DRIVER_WITHIN:?}\n{}",
                    log_tail(log)
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
    panic!("chromedriver did not start: {last}")
}

/// Whether chromedriver on `port` answers `/status` with `ready: true`. Plain HTTP/1.1
/// over a socket (chromedriver refuses 1.0); the answer ends at its `Content-Length`,
/// as chromedriver keeps the connection open despite `Connection: close`.
fn driver_ready(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request =
        format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&answer);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        });
        let Some(length) = length else {
            return false;
        };
        if body.len() >= length {
            return serde_json::from_str::<Value>(&body[..length])
                .is_ok_and(|status| status["value"]["ready"] == Value::Bool(true));
        }
    }
}

/// The last lines of chromedriver's log, for failure messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("chromedriver log ({}):\n{tail}", log.display())
}

/// Live processes (not zombies) that mention `dir/` in their command line or their
/// environment: chromedriver and the crash handlers inherit `TMPDIR=dir/tmp`; chromium's
/// helpers overwrite their environment with their title but are given
/// `--user-data-dir=dir/profile`. The directory's name is random, so nothing else does.
fn processes_of(dir: &Path) -> Vec<u32> {
    let mut needle = dir.as_os_str().as_encoded_bytes().to_vec();
    needle.push(b'/');
    let mentions = |file: String| {
        // Other users' processes are unreadable, and a process may end meanwhile.
        std::fs::read(file).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            (mentions(format!("/proc/{pid}/cmdline")) || mentions(format!("/proc/{pid}/environ")))
                && alive(*pid)
        })
        .collect()
}

/// Whether `pid` runs: it exists and is not a zombie waiting to be reaped.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // "pid (comm) state ...": comm may hold spaces and parentheses.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| !matches!(state, 'Z' | 'X'))
    })
}
