//! The real server over PostgreSQL (issue 14): [`PgServer`] runs `Application` on a
//! free loopback port over a `PgStorage`, as [`crate::TestServer`] does over SQLite;
//! several of them on one database are several stateless servers behind a load
//! balancer. (`intake-server serve` with a `database` runs the same `Application`;
//! `server/tests/cli_init.rs` tests the binary's commands there.)

use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use intake_server::storage::postgres::PgStorage;
use intake_server::storage::{Role, Storage};
use intake_server::{Application, Settings, admin};

pub struct PgServer {
    pub url: String,
    /// The server's own connection pool on the shared database, for looking at what it
    /// holds.
    pub storage: Arc<PgStorage>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl PgServer {
    /// A server on the database at `database_url` (migrated on first use).
    pub fn start(database_url: &str) -> PgServer {
        PgServer::start_with(
            database_url,
            Settings {
                workers: 2,
                ..Settings::default()
            },
        )
    }

    /// A server on the database at `database_url` with `settings` (e.g. the admin API
    /// on).
    pub fn start_with(database_url: &str, settings: Settings) -> PgServer {
        intake_client::sync::ensure_crypto_provider();
        let storage = Arc::new(
            PgStorage::connect_with_ca(database_url, settings.database_ca.as_deref())
                .expect("connect to PostgreSQL"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let dyn_storage: Arc<dyn Storage> = storage.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app =
                    Application::build(settings, dyn_storage, listener).expect("build the server");
                tx.send(app.handle()).unwrap();
                app.run().await.expect("server runs");
            })
        });
        let handle = rx.recv().expect("server started");
        PgServer {
            url,
            storage,
            handle,
            thread: Some(thread),
        }
    }

    /// Adds a user through this server's storage; returns their enrolment code.
    pub fn add_user(&self, name: &str, role: Role, team: Option<&str>) -> String {
        admin::add_user(self.storage.as_ref(), name, role, team, 60)
            .expect("add user")
            .enrolment_code
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Stopping needs a runtime of its own: the server's runs on its thread.
        actix_web::rt::System::new().block_on(self.handle.clone().stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        crate::wait_released(&self.storage);
    }
}
