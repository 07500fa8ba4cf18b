//! The field app (`intake app`): the paralegal's cases in her own browser, served by the
//! client on 127.0.0.1 only, built like the supervisor dashboard (server-rendered maud
//! views over the `intake-web` toolkit, no JavaScript, assets inline).
//!
//! Anyone on the machine can connect to a loopback port, and any web page the browser
//! opens can make it send requests there, so nothing is served on trust:
//!
//! - [`guard`]: every request must carry `Host: 127.0.0.1:PORT` (DNS rebinding), an
//!   `Origin` of this app when it has one, and the session cookie — which only the
//!   browser that opened the one-time launch link holds; every answer is `no-store`
//!   with the dashboard's content security policy;
//! - [`state`]: the per-launch secret and session, and the open store, dropped after
//!   an idle time and on "Lock now";
//! - [`cookies`], [`csrf`], [`errors`], [`pages`], [`visit`]: what every page shares;
//! - [`unlock`] and [`passphrase`]: unlocking, creating a store, locking;
//! - [`cases`]: the paralegal's case list; [`case`], [`case_view`] and [`typed`]: a case's page, new
//!   case and edit, submit, follow-ups, comments, conflicts;
//! - [`remote`]: sync (with progress, in the background too), enrolment, device;
//! - [`wipe`]: quick wipe.

pub mod case;
pub mod case_view;
pub mod cases;
pub mod cookies;
pub mod csrf;
pub mod errors;
pub mod guard;
pub mod pages;
pub mod passphrase;
pub mod remote;
pub mod state;
pub mod typed;
pub mod unlock;
pub mod visit;
pub mod wipe;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};

pub use state::{AppState, Clock};

/// The idle time after which the app locks itself unless told otherwise.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(5 * 60);

/// Where the launch link points; the only path served without the session cookie.
pub const LAUNCH_PATH: &str = "/launch";

/// How `intake app` was started.
#[derive(Clone, Debug)]
pub struct Config {
    /// The store directory.
    pub home: PathBuf,
    /// Time without a request after which the store is closed.
    pub idle: Duration,
}

/// The app, serving on its own thread until stopped.
pub struct RunningApp {
    port: u16,
    secret: String,
    state: Arc<AppState>,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl RunningApp {
    /// Starts the app on `listener` (bound to 127.0.0.1 by the caller; tests and
    /// `intake app` bind port 0).
    pub fn start(config: Config, listener: TcpListener) -> std::io::Result<RunningApp> {
        let port = listener.local_addr()?.port();
        let secret = csrf::new_token()?;
        let state = AppState::shared(config, port, &secret);
        state::start_reaper(Arc::downgrade(&state));
        let data = web::Data::from(state.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("intake-app".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::FormConfig::default().limit(256 * 1024))
                            .configure(configure)
                            .default_service(web::to(|| async {
                                Err::<HttpResponse, _>(errors::AppError::NotFound)
                            }))
                            .wrap(from_fn(guard::guard))
                    })
                    // One person, one browser: two workers keep a page answering while
                    // another request waits for Argon2.
                    .workers(2)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .listen(listener)?
                    .run();
                    let _ = tx.send(server.handle());
                    server.await
                })
            })?;
        let handle = rx
            .recv()
            .map_err(|_| std::io::Error::other("the app's server did not start"))?;
        Ok(RunningApp {
            port,
            secret,
            state,
            handle,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The one-time link that opens the app in a browser.
    pub fn launch_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}{LAUNCH_PATH}?secret={}",
            self.port, self.secret
        )
    }

    /// The app's clock, which tests move forward instead of sleeping.
    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    /// Whether a store is open (unlocked).
    pub fn is_unlocked(&self) -> bool {
        self.state.is_unlocked()
    }

    /// Serves until the process is stopped (Ctrl-C ends the process; the store's
    /// transactions are durable when each request returns).
    pub fn wait(mut self) -> std::io::Result<()> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| std::io::Error::other("the app's server panicked"))?,
            None => Ok(()),
        }
    }

    /// Stops serving and closes the store.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let handle = self.handle.clone();
        // Stopping needs a runtime of its own: the server's runs on its thread.
        actix_web::rt::System::new().block_on(handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.state.lock(None);
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown();
        }
    }
}

/// Every route of the app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(LAUNCH_PATH, web::get().to(unlock::launch))
        .route("/", web::get().to(cases::home))
        .route("/unlock", web::get().to(unlock::form))
        .route("/unlock", web::post().to(unlock::unlock))
        .route("/lock", web::post().to(unlock::lock_now))
        .route(
            intake_web::layout::LANG_PATH,
            web::get().to(unlock::switch_lang),
        )
        .route("/cases", web::get().to(cases::list))
        .route("/cases/new", web::get().to(case::new_form))
        .route("/cases/new", web::post().to(case::create))
        .route("/cases/{id}", web::get().to(case::show))
        .route("/cases/{id}", web::post().to(case::save))
        .route("/cases/{id}/submit", web::post().to(case::submit))
        .route("/cases/{id}/comment", web::post().to(case::comment))
        .route("/cases/{id}/followup", web::post().to(case::followup))
        .route("/cases/{id}/resolve", web::post().to(case::resolve))
        .route("/sync", web::get().to(remote::page))
        .route("/sync", web::post().to(remote::start))
        .route("/device", web::get().to(remote::device))
        .route("/device/enrol", web::post().to(remote::enrol))
        .route("/wipe", web::get().to(wipe::confirm))
        .route("/wipe", web::post().to(wipe::wipe));
}

/// A rendered page as a 200 answer (the guard adds the security headers).
pub fn html(markup: maud::Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// "See other": where a form goes after it was handled (post/redirect/get).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to.to_string()))
        .finish()
}

/// Opens `url` in the system browser when there is one; never fails (the address is
/// printed anyway).
pub fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let child = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        // Reap it so it does not linger as a zombie while the app runs.
        std::thread::spawn(move || child.wait());
    }
}
