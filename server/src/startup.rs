//! Building and running the server: on any listener, stoppable, so tests run the real
//! server on `127.0.0.1:0`. `open_store` creates the data directory and database on
//! first start, with an admin account and its enrolment code, and indexes records stored
//! before the record index existed.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};

use crate::admin::{self, Enrolment};
use crate::auth::AttemptLimiter;
use crate::config::Settings;
use crate::gate::Gate;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{Role, Storage};

/// What every handler can reach.
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub settings: Settings,
    pub enrol_limiter: AttemptLimiter,
    /// Failed dashboard sign-ins, per account and per address.
    pub signin_limiter: crate::web::limiter::SignInLimiter,
    /// Permits for heavy syncs (`[limits] max_heavy_syncs`). Public so that a test
    /// can hold them all and see the server answer 503 without timing anything.
    pub heavy_syncs: Arc<Gate>,
}

/// The database file in the data directory.
pub const DB_FILE: &str = "intake-server.db";

/// Opens the store in the data directory, creating it — and the first admin, whose
/// enrolment code is returned once — when it does not exist.
pub fn open_store(settings: &Settings) -> anyhow::Result<(Arc<SqliteStorage>, Option<Enrolment>)> {
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    restrict(dir);
    let storage = Arc::new(SqliteStorage::open(&dir.join(DB_FILE))?);
    // A database from before the record index gets one before anything is served.
    let indexed = crate::index::backfill(storage.as_ref())?;
    if indexed > 0 {
        tracing::info!(records = indexed, "records indexed for the dashboard");
    }
    let first = if storage.users()?.is_empty() {
        Some(admin::add_user(
            storage.as_ref(),
            "admin",
            Role::Admin,
            None,
            settings.enrolment_code_minutes,
        )?)
    } else {
        None
    };
    Ok((storage, first))
}

#[cfg(unix)]
fn restrict(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // The server can read every record: its directory is for its own user only.
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn restrict(_: &Path) {}

/// A built server, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Builds the server on `listener` over `storage`.
    pub fn build(
        settings: Settings,
        storage: Arc<dyn Storage>,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        let port = listener.local_addr()?.port();
        settings.check_transport(listener.local_addr()?)?;
        let workers = settings.workers;
        let tls = crate::tls::server_config(&settings)?;
        let heavy_syncs = Gate::new(settings.limits.heavy_syncs());
        let state = web::Data::new(AppState {
            storage,
            settings,
            heavy_syncs,
            // 10 failed codes per address (an IPv6 /64) and 10 tries of any one code per
            // 10 minutes: guessing a 60-bit code is hopeless, a mistyping user waits
            // minutes, not forever, and no overall limit lets one attacker shut
            // everyone else out.
            enrol_limiter: AttemptLimiter::new(Duration::from_secs(600), 10, 10),
            signin_limiter: crate::web::limiter::SignInLimiter::new(Default::default()),
        });
        let shared = state.clone();
        let mut server =
            HttpServer::new(move || {
                App::new()
                    .app_data(shared.clone())
                    .app_data(web::JsonConfig::default().limit(64 * 1024).error_handler(
                        |err, _| {
                            let message = format!("invalid JSON body: {err}");
                            crate::error::ApiError::BadRequest(message).into()
                        },
                    ))
                    .app_data(
                        web::PathConfig::default()
                            .error_handler(|_, _| crate::error::ApiError::NotFound.into()),
                    )
                    .wrap(from_fn(security_headers))
                    .wrap(from_fn(log_request))
                    .configure(crate::routes::configure)
                    .default_service(web::to(|| async {
                        Err::<actix_web::HttpResponse, _>(crate::error::ApiError::NotFound)
                    }))
            })
            // A device sends its next request when it has prepared it, which on a phone
            // can take more than actix's default 5 s; a closed connection costs the next
            // request a new TCP connection and TLS handshake. 75 s is nginx's default.
            .keep_alive(Duration::from_secs(75))
            .shutdown_timeout(10);
        if workers > 0 {
            server = server.workers(workers);
        }
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config)?,
            None => server.listen(listener)?,
        }
        .run();
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What every handler reaches (for tests: the heavy-sync permits).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle to stop the server (gracefully or not).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Runs until stopped.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Headers on every answer, errors and unknown routes included: browsers must not
/// guess content types (`nosniff`), nothing of the API may be kept by a cache on the
/// phone or a proxy on the way (`no-store` on `/v1/*`; the dashboard's pages set it
/// themselves), and over HTTPS browsers are told to use nothing else for a year (HSTS;
/// behind a proxy the proxy terminates TLS, so the server says it for it).
async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use actix_web::http::header::{self, HeaderValue};
    let api = req.path().starts_with("/v1/");
    let https = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.settings.https());
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    Ok(res)
}

/// One log line per request: method, route pattern (never the query or headers),
/// status and time, inside a request span that the authentication extractors fill with
/// the user, device and dashboard session. Paths hold at most record ids, never content.
async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "(unmatched)".into());
    let span = tracing::info_span!(
        "request",
        method,
        route,
        user = tracing::field::Empty,
        device = tracing::field::Empty,
        session = tracing::field::Empty,
    );
    let res = next.call(req).instrument(span.clone()).await?;
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    Ok(res)
}
