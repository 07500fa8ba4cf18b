//! End-to-end test support for Intake: [`TestServer`] runs the real server on
//! `127.0.0.1:0` over temporary storage (stopped and removed in `Drop`): a data
//! directory on SQLite, or a database of its own on a throwaway PostgreSQL cluster
//! when `INTAKE_TEST_BACKEND=postgres` ([`Backend`]). Typed helpers add users, enrol
//! devices and speak the sync protocol over real HTTP. Quiet unless `TEST_LOG` is set.
//! The binary `intake-kill-writer` is a helper process for the crash test.

pub mod alone;
pub mod browser;
pub mod counting;
pub mod craft;
pub mod dashboard;
pub mod db;
pub mod disk_full;
pub mod hostile;
pub mod kill_mid_sync;
pub mod link;
pub mod pg_server;
pub mod postgres;
pub mod proxy;
pub mod relay;
pub mod schema_check;
pub mod tls;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use intake_server::storage::{Role, Storage};
use intake_server::{Application, Settings, admin, init_store};
use intake_shared::protocol::{CONTENT_TYPE, SyncRequest, SyncResponse, VERSION_HEADER};

pub use db::{Cell, Db};

/// The storage backend a [`TestServer`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLCipher store in a temporary data directory (the default).
    Sqlite,
    /// A new database of its own on the throwaway cluster of [`postgres`].
    Postgres,
}

impl Backend {
    /// The backend of this test run: `INTAKE_TEST_BACKEND` (`sqlite`, the default, or
    /// `postgres`). A run asked for PostgreSQL never falls back to SQLite: with
    /// `INTAKE_TEST_POSTGRES=skip` too, or an unknown name, every server start panics
    /// saying so, rather than passing tests that ran on the other backend.
    pub fn from_env() -> Backend {
        match std::env::var("INTAKE_TEST_BACKEND").as_deref() {
            Err(_) | Ok("" | "sqlite") => Backend::Sqlite,
            Ok("postgres") => {
                if std::env::var("INTAKE_TEST_POSTGRES").as_deref() == Ok("skip") {
                    panic!(
                        "INTAKE_TEST_BACKEND=postgres and INTAKE_TEST_POSTGRES=skip contradict \
                         each other: this run was asked to test the PostgreSQL backend and \
                         would test nothing on it (nothing ran on SQLite instead either)"
                    );
                }
                Backend::Postgres
            }
            Ok(other) => {
                panic!("INTAKE_TEST_BACKEND={other:?}: unknown backend (`sqlite` or `postgres`)")
            }
        }
    }
}

/// The real server, on a free loopback port, over its own temporary storage: a data
/// directory on SQLite, a database of its own on PostgreSQL ([`Backend::from_env`]).
pub struct TestServer {
    pub url: String,
    /// The server's storage, for looking at what it holds (never for changing it
    /// behind the server's back).
    pub storage: Arc<dyn Storage>,
    pub backend: Backend,
    /// SQLite: the server's data directory (its database, key file and lock).
    data_dir: Option<PathBuf>,
    /// The temporary directory holding `data_dir`, removed on drop (none when the test
    /// chose the directory: [`TestServer::start_sqlite_in`]).
    _tmp: Option<tempfile::TempDir>,
    /// The first admin's enrolment code.
    pub admin_code: String,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    http: reqwest::blocking::Client,
    /// PostgreSQL: the server's database, dropped after everything above (the fields
    /// drop in this order, after [`Drop`] has stopped the server).
    database: Option<postgres::Database>,
}

/// A device's credentials after enrolment.
#[derive(Clone, Debug)]
pub struct Enrolled {
    pub token: String,
    pub device_id: i64,
    pub actor: [u8; 16],
}

/// A sync answer: status, and the decoded response when it was a 200.
#[derive(Debug)]
pub struct SyncReply {
    pub status: u16,
    pub response: Option<SyncResponse>,
    /// The raw body (a JSON error for non-200 answers).
    pub body: Vec<u8>,
}

impl SyncReply {
    /// The decoded answer to a 200 reply whose request pushed `pushed`, in order.
    pub fn answer(&self, pushed: &[intake_shared::protocol::WireId]) -> SyncResponse {
        assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
        SyncResponse::decode(&self.body, pushed).expect("a valid sync response")
    }
}

impl TestServer {
    /// The server on this run's backend ([`Backend::from_env`]).
    pub fn start() -> TestServer {
        TestServer::start_with(Settings::default())
    }

    /// The server with its HTTP admin API turned on (`admin_api = "on"`; it is off by
    /// default), for tests that administer through `/v1/admin/*`.
    pub fn start_with_admin_api() -> TestServer {
        TestServer::start_with(Settings {
            admin_api: intake_server::config::AdminApi::On,
            ..Settings::default()
        })
    }

    /// The server with `settings` on this run's backend ([`Backend::from_env`]).
    pub fn start_with(settings: Settings) -> TestServer {
        match Backend::from_env() {
            Backend::Sqlite => TestServer::start_sqlite_with(settings),
            Backend::Postgres => TestServer::start_postgres_with(settings),
        }
    }

    /// The server on SQLite whatever the run's backend, for a test about the SQLite
    /// store's own files (listed in `docs/ARCHITECTURE.md`, "Tests").
    pub fn start_sqlite() -> TestServer {
        TestServer::start_sqlite_with(Settings::default())
    }

    /// [`TestServer::start_sqlite`] with `settings`.
    pub fn start_sqlite_with(settings: Settings) -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut server = TestServer::start_sqlite_in(tmp.path(), settings);
        server._tmp = Some(tmp);
        server
    }

    /// The server on SQLite over `data_dir`, a directory the test chose (e.g. on a
    /// small file system), which it keeps.
    pub fn start_sqlite_in(data_dir: &Path, mut settings: Settings) -> TestServer {
        settings.data_dir = data_dir.to_path_buf();
        let (storage, first) = init_store(&settings, None).expect("create the store");
        let mut server = TestServer::serve(settings, storage, first.enrolment.enrolment_code);
        server.data_dir = Some(data_dir.to_path_buf());
        server
    }

    /// The server on a new PostgreSQL database of its own, created as `intake-server
    /// init` creates one (`startup::init_postgres`: the tables, then the first admin).
    pub fn start_postgres_with(settings: Settings) -> TestServer {
        let test = std::thread::current()
            .name()
            .unwrap_or("a test server")
            .to_string();
        // `None` only under INTAKE_TEST_POSTGRES=skip, which `Backend::from_env` refuses
        // with PostgreSQL; a test asking for PostgreSQL itself must not pass unrun.
        let database = postgres::database(&test).unwrap_or_else(|| {
            panic!("{test} runs on PostgreSQL, which INTAKE_TEST_POSTGRES=skip turned off")
        });
        let (storage, first) = intake_server::startup::init_postgres(&settings, &database.url)
            .expect("create the store on PostgreSQL");
        let mut server = TestServer::serve(settings, storage, first.enrolment.enrolment_code);
        server.backend = Backend::Postgres;
        server.database = Some(database);
        server
    }

    /// Runs `Application` over `storage` on a free loopback port.
    fn serve(mut settings: Settings, storage: Arc<dyn Storage>, admin_code: String) -> TestServer {
        // reqwest is built without a crypto provider in this workspace: the tests' HTTP
        // client (and any other a test builds) needs one installed first.
        intake_client::sync::ensure_crypto_provider();
        if std::env::var_os("TEST_LOG").is_some() {
            intake_server::telemetry::init("debug", false);
        }
        settings.workers = 2;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let app_storage = storage.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app =
                    Application::build(settings, app_storage, listener).expect("build the server");
                tx.send(app.handle()).unwrap();
                app.run().await.expect("server runs");
            })
        });
        let handle = rx.recv().expect("server started");
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        TestServer {
            url,
            storage,
            backend: Backend::Sqlite,
            data_dir: None,
            _tmp: None,
            admin_code,
            handle,
            thread: Some(thread),
            http,
            database: None,
        }
    }

    /// SQLite: the server's data directory (its database, key file and lock). Panics
    /// on PostgreSQL: a test that needs it is about the SQLite store's files and starts
    /// its server with [`TestServer::start_sqlite`].
    pub fn data_dir(&self) -> &Path {
        self.data_dir
            .as_deref()
            .expect("a SQLite-only helper: start this test's server with TestServer::start_sqlite")
    }

    /// A connection to the server's database, whichever the backend, for tests that
    /// look at (or damage) what it holds in its tables.
    pub fn db(&self) -> Db {
        match &self.database {
            Some(database) => Db::postgres(&database.url),
            None => Db::Sqlite(self.raw_db(false)),
        }
    }

    /// Adds a user directly in the store; returns their enrolment code.
    pub fn add_user(&self, name: &str, role: Role, team: Option<&str>) -> String {
        admin::add_user(self.storage.as_ref(), name, role, team, 60)
            .expect("add user")
            .enrolment_code
    }

    /// Enrols a device with `code` over HTTP.
    pub fn enroll(&self, code: &str, actor: [u8; 16]) -> Enrolled {
        let resp = self
            .http
            .post(format!("{}/v1/enroll", self.url))
            .json(
                &serde_json::json!({ "code": code, "actor": hex::encode(actor), "label": "test" }),
            )
            .send()
            .expect("enroll request");
        assert_eq!(
            resp.status().as_u16(),
            200,
            "enrolment failed: {:?}",
            resp.text()
        );
        let body: serde_json::Value = resp.json().unwrap();
        Enrolled {
            token: body["token"].as_str().unwrap().into(),
            device_id: body["device_id"].as_i64().unwrap(),
            actor,
        }
    }

    /// Adds a user and enrols one device for them, with a fresh random actor.
    pub fn user_device(&self, name: &str, role: Role, team: Option<&str>) -> Enrolled {
        let code = self.add_user(name, role, team);
        let mut actor = [0u8; 16];
        for (i, b) in name
            .bytes()
            .chain(std::iter::repeat(0x5a))
            .take(16)
            .enumerate()
        {
            actor[i] = b ^ (i as u8);
        }
        self.enroll(&code, actor)
    }

    /// SQLite: the server's database key (from the key file `init_store` wrote).
    pub fn key(&self) -> intake_server::storage::key::DbKey {
        intake_server::load_key(
            &Settings {
                data_dir: self.data_dir().to_path_buf(),
                ..Settings::default()
            },
            None,
        )
        .expect("the server's key")
    }

    /// SQLite: a direct connection to the server's encrypted database file (for
    /// tables on either backend, [`TestServer::db`]).
    pub fn raw_db(&self, read_only: bool) -> rusqlite::Connection {
        let path = self.data_dir().join(intake_server::startup::DB_FILE);
        intake_server::storage::sqlite::cipher::connect(&path, &self.key(), read_only)
            .expect("open the server database")
    }

    pub fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    /// Posts a sync request (zstd-compressed, as devices send it) in its version. As
    /// the app does, a version 7 request the server cannot expand (409 `send_in_full`)
    /// is sent again at once with its dependencies in full.
    pub fn sync(&self, token: Option<&str>, req: &SyncRequest) -> SyncReply {
        let body = zstd::bulk::compress(&req.encode(), 3).unwrap();
        let mut reply = self.sync_raw(token, body, Some("zstd"), req.version);
        if reply.status == 409 && String::from_utf8_lossy(&reply.body).contains("send_in_full") {
            let body = zstd::bulk::compress(&req.encode_in_full(), 3).unwrap();
            reply = self.sync_raw(token, body, Some("zstd"), req.version);
        }
        if reply.status == 200 {
            let pushed: Vec<_> = req.push.iter().map(|p| p.record).collect();
            reply.response =
                Some(SyncResponse::decode(&reply.body, &pushed).expect("a valid sync response"));
        }
        reply
    }

    /// Posts raw bytes to the sync endpoint.
    pub fn sync_raw(
        &self,
        token: Option<&str>,
        body: Vec<u8>,
        encoding: Option<&str>,
        version: u16,
    ) -> SyncReply {
        let mut req = self
            .http
            .post(format!("{}/v1/sync", self.url))
            .header(VERSION_HEADER, version.to_string())
            .header("content-type", CONTENT_TYPE)
            .header("accept-encoding", "zstd")
            .body(body);
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().expect("sync request");
        let status = resp.status().as_u16();
        // From version 7 a successful answer says nothing: zstd by its first bytes.
        let said = resp.headers().get("content-encoding").map(|v| v == "zstd");
        let mut body = resp.bytes().unwrap().to_vec();
        let compressed = said.unwrap_or(
            status == 200 && version >= 7 && intake_shared::protocol::is_zstd_frame(&body),
        );
        if compressed {
            body = zstd::stream::decode_all(&body[..]).unwrap();
        }
        // Without the request, a version 2 answer decodes as if nothing was pushed
        // (refusals then fail to decode: use `sync` to see them).
        let response = (status == 200)
            .then(|| SyncResponse::decode(&body, &[]).ok())
            .flatten();
        SyncReply {
            status,
            response,
            body,
        }
    }

    /// A GET with an optional token: (status, JSON body).
    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(serde_json::Value::Null))
    }

    /// A POST of JSON with an optional token: (status, JSON body).
    pub fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.post(format!("{}{path}", self.url)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(serde_json::Value::Null))
    }
}

/// The cast of the randomized scenarios (a breaking link, server kills): two paralegals
/// of team `prizren` and their supervisor, at [`SUPERVISOR`]; she sees and edits every
/// record of the team.
pub const CAST: [(&str, Role); 3] = [
    ("drita", Role::Paralegal),
    ("ajshe", Role::Paralegal),
    ("merita", Role::Supervisor),
];

/// The supervisor's index in [`CAST`].
pub const SUPERVISOR: usize = 2;

/// A device: the real client library with its own encrypted store, enrolled with a
/// [`TestServer`].
pub struct TestDevice {
    pub name: String,
    pub store: intake_client::Store,
    pub dir: tempfile::TempDir,
}

impl TestDevice {
    /// Adds user `name` to the server and enrols a new device for them.
    pub fn enroll(server: &TestServer, name: &str, role: Role, team: Option<&str>) -> TestDevice {
        let code = server.add_user(name, role, team);
        TestDevice::enroll_with_code(server, name, &code)
    }

    /// Adds each `(name, role)` of `people` to `team` and enrols a device for each, in
    /// that order: the cast of the randomized scenarios.
    pub fn enroll_all(server: &TestServer, people: &[(&str, Role)], team: &str) -> Vec<TestDevice> {
        people
            .iter()
            .map(|&(name, role)| TestDevice::enroll(server, name, role, Some(team)))
            .collect()
    }

    /// Enrols a new device with an existing code (e.g. a second device of a user).
    pub fn enroll_with_code(server: &TestServer, name: &str, code: &str) -> TestDevice {
        TestDevice::enroll_at(&server.url, name, code)
    }

    /// Enrols a new device with the server at `url` (one that is not a [`TestServer`],
    /// such as a server process a test kills).
    pub fn enroll_at(url: &str, name: &str, code: &str) -> TestDevice {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store =
            intake_client::Store::open(dir.path(), &intake_client::Key::from_bytes([7; 32]))
                .expect("store");
        intake_client::enroll(&mut store, url, code, name, None).expect("enrol");
        TestDevice {
            name: name.to_string(),
            store,
            dir,
        }
    }

    /// Syncs through `url` instead of the enrolled server (e.g. a fault proxy).
    pub fn point_at(&mut self, url: &str) {
        let mut e = self.store.enrolment().unwrap().unwrap();
        e.server = url.to_string();
        self.store.set_enrolment(&e).unwrap();
    }

    pub fn sync(&mut self) -> Result<intake_client::SyncSummary, intake_client::SyncError> {
        intake_client::sync(
            &mut self.store,
            &intake_client::SyncOptions::default(),
            &mut |_| {},
        )
    }

    /// Creates an intake record with these answers.
    pub fn create(&mut self, fields: &[(&str, intake_shared::Value)]) -> intake_shared::RecordId {
        self.store
            .create("intake", |e| {
                fields.iter().try_for_each(|(k, v)| e.set(k, v.clone()))
            })
            .expect("create")
    }

    /// Creates `n` intake records with a name and a summary of some 250 characters
    /// ("Person k", "case k: words words …"): enough for a sync of small pages or
    /// pushes to take several round trips.
    pub fn create_cases(&mut self, n: usize) -> Vec<intake_shared::RecordId> {
        (0..n)
            .map(|k| {
                self.create(&[
                    (
                        "full_name",
                        intake_shared::Value::Text(format!("Person {k}")),
                    ),
                    (
                        "summary",
                        intake_shared::Value::Text(format!("case {k}: {}", "words ".repeat(40))),
                    ),
                ])
            })
            .collect()
    }

    /// Edits a record as this device's user.
    pub fn edit<T>(
        &mut self,
        id: intake_shared::RecordId,
        f: impl FnOnce(&mut intake_shared::Edit<'_>) -> Result<T, intake_shared::RecordError>,
    ) -> T {
        self.store.edit(id, f).expect("edit")
    }

    pub fn record(&self, id: intake_shared::RecordId) -> intake_shared::Record {
        self.store.get(id).expect("record present")
    }

    pub fn has(&self, id: intake_shared::RecordId) -> bool {
        self.store.exists(id).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stopping needs a runtime of its own: the server's runs on its thread.
        actix_web::rt::System::new().block_on(handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        wait_released(&self.storage);
    }
}

/// Waits (at most 10 s) until `shared` is held only by the caller. The server's worker
/// threads drop their handles on the store a moment after a stop returns, and the last
/// one closes the SQLCipher connections. A test process that exits meanwhile can crash
/// on its way out (SIGSEGV, seen once in CI after every test had passed): OpenSSL, which
/// SQLCipher encrypts with, frees its state in an `atexit` handler while that thread is
/// still using it. Waiting here makes the store close on the test's own thread.
pub fn wait_released<T: ?Sized>(shared: &Arc<T>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Arc::strong_count(shared) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
