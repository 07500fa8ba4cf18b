//! A process for the server-kill test: the real server library on a given address over
//! a given data directory, so a test can SIGKILL it at random moments and start it again
//! on the same address and data.
//!
//! Usage: `intake-test-server DATA_DIR ADDR`, where DATA_DIR may instead be a
//! `postgres://` URL: several such processes on one database are several servers. Prints `listening` on stdout once the
//! socket is bound (connections made from then on wait in the backlog until served).
//! Quiet unless `TEST_LOG` is set.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use anyhow::Context;
use intake_server::{Application, Settings, open_backend};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let place = args.next().context("DATA_DIR")?;
    let addr: SocketAddr = args.next().context("ADDR")?.parse().context("ADDR")?;
    if std::env::var_os("TEST_LOG").is_some() {
        intake_server::telemetry::init("debug", false);
    }
    let mut settings = Settings {
        listen: addr,
        workers: 2,
        ..Settings::default()
    };
    if place.starts_with("postgres://") {
        settings.database =
            Some(intake_server::config::DatabaseUrl::try_from(place).map_err(anyhow::Error::msg)?);
    } else {
        settings.data_dir = PathBuf::from(place);
    }
    let storage = open_backend(&settings, None)?;
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let app = Application::build(settings, storage, listener)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()?;
    drop(out);
    actix_web::rt::System::new().block_on(app.run())?;
    Ok(())
}
