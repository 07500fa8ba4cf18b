//! A process for the server-kill test: the real server library on a given address over
//! a given data directory, so a test can SIGKILL it at random moments and start it again
//! on the same address and data.
//!
//! Usage: `intake-test-server DATA_DIR ADDR`. Prints `listening` on stdout once the
//! socket is bound (connections made from then on wait in the backlog until served).
//! Quiet unless `TEST_LOG` is set.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use anyhow::Context;
use intake_server::{Application, Settings, open_store};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let data_dir = PathBuf::from(args.next().context("DATA_DIR")?);
    let addr: SocketAddr = args.next().context("ADDR")?.parse().context("ADDR")?;
    if std::env::var_os("TEST_LOG").is_some() {
        intake_server::telemetry::init("debug", false);
    }
    let settings = Settings {
        listen: addr,
        data_dir,
        workers: 2,
        ..Settings::default()
    };
    let storage = open_store(&settings, None)?;
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let app = Application::build(settings, storage, listener)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()?;
    drop(out);
    actix_web::rt::System::new().block_on(app.run())?;
    Ok(())
}
