//! Building and running the server: on any listener, stoppable, so tests run the real
//! server on `127.0.0.1:0`. The store is made once by [`init_store`] (`intake-server
//! init`: the data directory, the database key, the encrypted database and the first
//! admin) and opened by [`open_store`], which refuses a missing one, so a mistyped data
//! directory never starts an empty installation. With a PostgreSQL `database`
//! (issue 14) [`init_postgres`] and [`open_postgres`] do the same there;
//! [`init_backend`] and [`open_backend`] choose by the settings.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};

use crate::admin::{self, Enrolment, SignInCode};
use crate::auth::AttemptLimiter;
use crate::config::Settings;
use crate::gate::Gate;
use crate::storage::key::DbKey;
use crate::storage::postgres::PgStorage;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{Role, Storage, SyncStorage};

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
    /// Turns for syncs doing their work (`[limits] max_syncs_at_once`): a sync waits
    /// for one without holding a thread, up to `max_sync_wait_ms` (`routes/sync.rs`).
    pub sync_turns: Arc<tokio::sync::Semaphore>,
    /// Each device's heavy syncs, one at a time (`gate::DeviceTurns`).
    pub device_turns: Arc<crate::gate::DeviceTurns>,
}

/// The database file in the data directory.
pub const DB_FILE: &str = "intake-server.db";

/// The lock file `serve` holds (and `restore` tries) in the data directory.
pub const LOCK_FILE: &str = "intake-server.lock";

/// What `init` made: the first admin's one-time codes, shown once. (No `Debug`: the
/// codes must not reach a log line by accident.)
#[derive(serde::Serialize)]
pub struct FirstAdmin {
    /// The enrolment code for the admin's device.
    pub enrolment: Enrolment,
    /// The one-time code to set the admin's dashboard password.
    pub sign_in: SignInCode,
    /// Where the key file was written, if `init` wrote one.
    pub key_file: Option<std::path::PathBuf>,
}

/// The database key: `INTAKE_SERVER_KEY` (`env_key`, 64 hex digits) if given, else
/// the key file of `settings`.
pub fn load_key(settings: &Settings, env_key: Option<&str>) -> anyhow::Result<DbKey> {
    match env_key {
        Some(hex) => DbKey::from_hex(hex).map_err(|e| anyhow::anyhow!("INTAKE_SERVER_KEY: {e}")),
        None => {
            let path = settings.key_file_path();
            if !path.exists() {
                anyhow::bail!(
                    "no database key: {} does not exist and INTAKE_SERVER_KEY is not set \
                     (intake-server init writes the key file)",
                    path.display()
                );
            }
            Ok(DbKey::read_file(&path)?)
        }
    }
}

/// The SQLite functions ([`init_store`], [`open_store`]) refuse settings that name a
/// PostgreSQL database: making or opening the data directory's store instead would
/// serve the wrong data. [`init_backend`] and [`open_backend`] choose by the settings.
fn sqlite_only(settings: &Settings) -> anyhow::Result<()> {
    if settings.database.is_some() {
        anyhow::bail!(
            "a PostgreSQL database is configured (`database`, INTAKE_SERVER_DATABASE or \
             --database): this is the SQLite store's function; nothing was changed"
        );
    }
    Ok(())
}

/// What `backup` and `restore` answer on PostgreSQL: the database's own tools do that
/// better (consistent while servers run, point-in-time recovery), and the server must not
/// pretend to. Nothing is changed.
pub const PG_BACKUP_REFUSAL: &str = "backup and restore of a PostgreSQL installation are \
     PostgreSQL's own tools: pg_dump and pg_restore (docs/OPERATIONS.md, PostgreSQL). \
     Nothing was changed";

/// Creates a new installation where the settings say: the SQLite store in the data
/// directory ([`init_store`]), or the PostgreSQL database of `database`
/// ([`init_postgres`]).
pub fn init_backend(
    settings: &Settings,
    env_key: Option<&str>,
) -> anyhow::Result<(Arc<dyn Storage>, FirstAdmin)> {
    match &settings.database {
        None => {
            let (storage, first) = init_store(settings, env_key)?;
            Ok((storage, first))
        }
        Some(url) => {
            let (storage, first) = init_postgres(settings, url.expose())?;
            Ok((storage, first))
        }
    }
}

/// Opens the installation the settings name: the SQLite store in the data directory
/// ([`open_store`]) or the PostgreSQL database of `database` ([`open_postgres`]).
pub fn open_backend(
    settings: &Settings,
    env_key: Option<&str>,
) -> anyhow::Result<Arc<dyn Storage>> {
    match &settings.database {
        None => Ok(open_store(settings, env_key)?),
        Some(url) => Ok(open_postgres(
            url.expose(),
            settings.database_ca.as_deref(),
        )?),
    }
}

/// Creates a new installation in the (empty, or already migrated but unused) PostgreSQL
/// database at `url`: its tables, then the first admin. Refused when the database
/// already holds users: a second `init` would otherwise add a second admin to a running
/// installation. No key file: PostgreSQL does not use the SQLCipher key (what protects
/// its data at rest is in `docs/SECURITY.md`). Blocking: never on an async executor.
pub fn init_postgres(
    settings: &Settings,
    url: &str,
) -> anyhow::Result<(Arc<PgStorage>, FirstAdmin)> {
    let storage = Arc::new(PgStorage::connect_with_ca(
        url,
        settings.database_ca.as_deref(),
    )?);
    if !storage.users()?.is_empty() {
        anyhow::bail!(
            "the PostgreSQL database already holds a store (it has users): nothing was changed"
        );
    }
    let first = first_admin(storage.as_ref(), settings, None)?;
    Ok((storage, first))
}

/// The first admin of a new installation, on either backend: her one-time enrolment
/// and sign-in codes; `key_file`, where `init` wrote the SQLite key (if it did).
fn first_admin(
    storage: &dyn Storage,
    settings: &Settings,
    key_file: Option<std::path::PathBuf>,
) -> anyhow::Result<FirstAdmin> {
    let minutes = settings.enrolment_code_minutes;
    Ok(FirstAdmin {
        enrolment: admin::add_user(storage, "admin", Role::Admin, None, minutes)?,
        sign_in: admin::sign_in_code(storage, "admin", minutes)?,
        key_file,
    })
}

/// Opens the installation in the PostgreSQL database at `url` (migrating it to this
/// server's schema), refusing one that `init` has not made (no users), and indexes
/// records stored before the record index, as [`open_store`] does. `ca`: the setting
/// `database_ca`. Blocking.
pub fn open_postgres(url: &str, ca: Option<&Path>) -> anyhow::Result<Arc<PgStorage>> {
    let storage = Arc::new(PgStorage::connect_with_ca(url, ca)?);
    if storage.users()?.is_empty() {
        anyhow::bail!(
            "the PostgreSQL database holds no store (no users): check `database` (or \
             INTAKE_SERVER_DATABASE, --database), or create an installation there with \
             `intake-server init`"
        );
    }
    let indexed = crate::index::backfill(storage.as_ref())?;
    if indexed > 0 {
        tracing::info!(records = indexed, "records indexed for the dashboard");
    }
    Ok(storage)
}

/// Creates a new installation in the data directory: the directory (mode 0700), the
/// database key file (mode 0600, unless the key comes from `INTAKE_SERVER_KEY` or a key
/// file already exists), the encrypted database and the first admin, whose one-time
/// codes are returned. Refused when the directory already holds a store.
pub fn init_store(
    settings: &Settings,
    env_key: Option<&str>,
) -> anyhow::Result<(Arc<SqliteStorage>, FirstAdmin)> {
    sqlite_only(settings)?;
    let dir = &settings.data_dir;
    let db = dir.join(DB_FILE);
    if db.exists() {
        anyhow::bail!(
            "{} already holds a store ({}): nothing was changed",
            dir.display(),
            db.display()
        );
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    restrict(dir)?;
    let key_path = settings.key_file_path();
    let (key, written) = match env_key {
        Some(_) => (load_key(settings, env_key)?, None),
        None if key_path.exists() => (DbKey::read_file(&key_path)?, None),
        None => {
            let key = DbKey::generate()?;
            key.write_new_file(&key_path)?;
            (key, Some(key_path))
        }
    };
    let storage = Arc::new(SqliteStorage::create(&db, &key)?);
    let first = first_admin(storage.as_ref(), settings, written)?;
    Ok((storage, first))
}

/// Opens the store in the data directory with the key from `env_key` or the key file,
/// refusing a missing directory or database (with the path and what to run), and
/// indexes records stored before the record index existed.
pub fn open_store(
    settings: &Settings,
    env_key: Option<&str>,
) -> anyhow::Result<Arc<SqliteStorage>> {
    sqlite_only(settings)?;
    let dir = &settings.data_dir;
    let db = dir.join(DB_FILE);
    if !dir.is_dir() {
        anyhow::bail!(
            "the data directory {} does not exist: check --data (or INTAKE_SERVER_DATA), \
             or create an installation there with `intake-server init`",
            dir.display()
        );
    }
    if !db.exists() {
        anyhow::bail!(
            "{} holds no store ({} is missing): check --data (or INTAKE_SERVER_DATA), \
             or create an installation there with `intake-server init`",
            dir.display(),
            db.display()
        );
    }
    restrict(dir)?;
    let key = load_key(settings, env_key)?;
    let storage = Arc::new(SqliteStorage::open(&db, &key)?);
    // A database from before the record index gets one before anything is served.
    let indexed = crate::index::backfill(storage.as_ref())?;
    if indexed > 0 {
        tracing::info!(records = indexed, "records indexed for the dashboard");
    }
    Ok(storage)
}

#[cfg(unix)]
fn restrict(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // The server can read every record: its directory is for its own user only. A
    // directory left open to others is worth stopping for, not a warning.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
        anyhow::anyhow!(
            "cannot restrict {} to mode 0700 (its owner only): {e}",
            dir.display()
        )
    })
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// The lock a running server holds on its data directory: `restore` refuses to replace
/// the database under a running server. Released when dropped (or the process ends).
#[derive(Debug)]
pub struct ServeLock {
    _file: std::fs::File,
}

impl ServeLock {
    /// Takes the data directory's lock, or says that a server holds it.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<ServeLock> {
        let path = data_dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "a server is running on {} (it holds {}): stop it first",
                data_dir.display(),
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                anyhow::bail!("cannot lock {}: {e}", path.display())
            }
        }
    }
}

impl AppState {
    /// The state every worker shares: the storage, the settings, and the gates and
    /// limiters they size.
    pub fn new(storage: Arc<dyn Storage>, settings: Settings) -> AppState {
        // Several servers on one PostgreSQL database count attempts in it (`auth.rs`).
        let attempts = storage.shared_attempts();
        AppState {
            heavy_syncs: Gate::new(settings.limits.heavy_syncs()),
            sync_turns: Arc::new(tokio::sync::Semaphore::new(settings.limits.syncs_at_once())),
            device_turns: Arc::default(),
            storage,
            settings,
            // 10 failed codes per address (an IPv6 /64) and 10 tries of any one code per
            // 10 minutes: guessing a 60-bit code is hopeless, a mistyping user waits
            // minutes, not forever, and no overall limit lets one attacker shut
            // everyone else out.
            enrol_limiter: AttemptLimiter::new(Duration::from_secs(600), 10, 10)
                .shared(attempts.clone()),
            signin_limiter: crate::web::limiter::SignInLimiter::new(Default::default())
                .shared(attempts),
        }
    }
}

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
        let state = web::Data::new(AppState::new(storage, settings));
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

/// Headers on every answer but a version 7 sync's, errors and unknown routes included: browsers must not
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
    // A version 7 sync answer (binary, to a device that posted with its token) goes
    // without them: no browser renders it, no cache keeps the answer to a POST that
    // does not say it may, and HSTS means something only to browsers, which get it
    // with every other answer. 58 bytes of every sync round trip (101 over HTTPS).
    if res
        .response()
        .extensions()
        .contains::<crate::routes::sync::BinaryAnswer>()
    {
        return Ok(res);
    }
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
