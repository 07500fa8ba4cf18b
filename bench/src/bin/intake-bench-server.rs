//! `intake-bench-server`: the real Intake server in a process of its own, so that the
//! benchmark can read its peak memory and CPU time from `/proc` without counting the
//! devices'. It runs `intake_server`'s `Application` over `open_backend` exactly as
//! `intake-server serve` does, minus the banner and logging, and prints one line,
//! `listening ADDR`, once the socket is bound. With `--database` it runs on that
//! PostgreSQL database (several of them may share one) instead of the SQLite store in
//! `--data`.
//!
//! ```text
//! intake-bench-server --data DIR [--database postgres://…] [--listen 127.0.0.1:0]
//!     [--tls-cert PEM --tls-key PEM]
//! ```

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use intake_server::config::DatabaseUrl;
use intake_server::storage::Storage;
use intake_server::{Application, Settings, open_backend};

fn main() -> anyhow::Result<()> {
    let mut data: Option<PathBuf> = None;
    let mut listen = String::from("127.0.0.1:0");
    let (mut tls_cert, mut tls_key): (Option<PathBuf>, Option<PathBuf>) = (None, None);
    let mut database: Option<DatabaseUrl> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--data" => data = Some(args.next().context("--data DIR")?.into()),
            "--database" => {
                let url = args.next().context("--database URL")?;
                database = Some(DatabaseUrl::from_flag(&url).map_err(anyhow::Error::msg)?);
            }
            "--listen" => listen = args.next().context("--listen ADDR")?,
            "--tls-cert" => tls_cert = Some(args.next().context("--tls-cert PEM")?.into()),
            "--tls-key" => tls_key = Some(args.next().context("--tls-key PEM")?.into()),
            other => bail!("unknown option {other}"),
        }
    }
    let settings = Settings {
        data_dir: data.context("--data DIR is required")?,
        listen: listen.parse().context("--listen")?,
        tls_cert,
        tls_key,
        database,
        ..Settings::default()
    };
    let storage: Arc<dyn Storage> = open_backend(&settings, None)?;
    let listener = TcpListener::bind(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let app = Application::build(settings, storage, listener)?;
    // Only now is the socket bound and the server built: the benchmark may connect.
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {addr}")?;
    out.flush()?;
    drop(out);
    actix_web::rt::System::new().block_on(app.run())?;
    Ok(())
}
