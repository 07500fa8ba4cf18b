//! Intake's benchmark program. It prints one JSON object per measurement on stdout for
//! a person or a script to compare (progress goes to stderr); it asserts nothing.
//! Run it in release mode:
//!
//! ```text
//! cargo run --release -p intake-bench -- COMMAND
//!     [--runs 3] [--n 1000] [--scale-devices 20] [--data ../shared/bench]
//!     [--backend sqlite|postgres] [--servers 1]
//! ```
//!
//! `--backend postgres` runs every server on a new database of a throwaway PostgreSQL
//! cluster (Debian's `postgresql`, as the tests use it), `--servers N` N server
//! processes on it behind the counting proxy.
//!
//! Commands: `w1`, `w2`, `w3`, `w4` (the workloads of `../shared/bench/README.md`),
//! `scale` (W3 and a supervisor's pull with 100,000 records stored), `fresh` (that pull
//! with 10,000 stored), `tls` (W1 N=1,000 and W3 over TLS), `save` (local save
//! latency), `2g` (W5: W1's push, W2's pull and a 2 MB record over the bad 2G link and
//! a clean one, and a device process SIGKILLed there; about 25 minutes, not part of
//! `all`), `load` (N light devices syncing at once for `--seconds`, a sync every
//! `--interval` seconds each, for each N of `--devices 50,200,1000`; not part of `all`),
//! `dashboard` (the web dashboard's pages with 10,000 records stored; not part
//! of `all`), `all` (all the others but those two); and two diagnostics, `floors` (the floors computed
//! here beside README's) and `anatomy` (bytes and CPU per record, step by step).
//! `docs/BENCHMARKS.md` says what each measures and holds the latest figures.
//!
//! Every sync workload runs a fresh `intake-bench-server` process (built next to this
//! program) per run, with a counting proxy in front of it ([`proxy`]), and real client
//! devices ([`device`]).

mod anatomy;
mod data;
mod device;
mod floors;
mod measure;
use intake_tests::counting as proxy;
mod rig;
mod save;
mod server;
mod workloads;

use std::path::PathBuf;

use anyhow::{Context, bail};

/// What every workload needs to know.
pub struct Ctx {
    /// `../shared/bench`: the JSONL files and `gen_dataset.py`.
    pub data: PathBuf,
    /// Runs per measurement (each on a fresh server, where the workload allows).
    pub runs: usize,
    /// Devices of 5,000 records each in `scale` (20: 100,000 records).
    pub scale_devices: usize,
}

const USAGE: &str = "usage: intake-bench all|w1|w2|w3|w4|2g|dashboard|load|save|scale|fresh|tls|floors|anatomy \
[--runs N] [--n N] [--scale-devices N] [--data DIR] [--backend sqlite|postgres] [--servers N] \
[--devices 50,200,1000] [--seconds 60] [--interval 10] [--workers N (0: one per device)]";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "help".into());
    let mut n = 1000usize;
    let mut ctx = Ctx {
        data: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/bench")),
        runs: 3,
        scale_devices: 20,
    };
    let (mut postgres, mut servers) = (false, 1usize);
    let mut load = workloads::load::LoadSpec {
        devices: vec![50, 200, 1000],
        seconds: 60,
        interval_s: 10.0,
        // 0: one per device, so a device never waits for another's sync to start
        // its own (as phones don't): past the knee, the queueing is the server's.
        workers: 0,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--n" => n = value()?.parse()?,
            "--runs" => ctx.runs = value()?.parse::<usize>()?.max(1),
            "--scale-devices" => ctx.scale_devices = value()?.parse()?,
            "--data" => ctx.data = value()?.into(),
            "--backend" => {
                postgres = match value()?.as_str() {
                    "sqlite" => false,
                    "postgres" => true,
                    other => bail!("--backend {other}: sqlite or postgres\n{USAGE}"),
                }
            }
            "--servers" => servers = value()?.parse::<usize>()?.max(1),
            "--devices" => {
                load.devices = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--seconds" => load.seconds = value()?.parse()?,
            "--interval" => load.interval_s = value()?.parse()?,
            "--workers" => load.workers = value()?.parse::<usize>()?.max(1),
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    if servers > 1 && !postgres {
        bail!(
            "--servers {servers}: several servers share a PostgreSQL database only (--backend postgres)"
        );
    }
    server::set_backend(if postgres {
        server::Backend::Postgres { servers }
    } else {
        server::Backend::Sqlite
    });
    use workloads::{dashboard, scale, tls, twog, w1, w2, w4};
    match command.as_str() {
        "save" => save::run(&ctx.data, n),
        "w1" => w1::run(&ctx, true, false),
        "w3" => w1::run(&ctx, false, true),
        "w2" => w2::run(&ctx),
        "w4" => w4::run(&ctx),
        "2g" => twog::run(&ctx),
        "dashboard" => dashboard::run(&ctx),
        "load" => workloads::load::run(&ctx, &load),
        "scale" => scale::scale(&ctx),
        "fresh" => scale::fresh(&ctx),
        "tls" => tls::run(&ctx),
        "floors" => floors::run(&ctx),
        "anatomy" => anatomy::run(&ctx.data, n),
        "all" => {
            save::run(&ctx.data, n)?;
            w1::run(&ctx, true, true)?;
            w2::run(&ctx)?;
            w4::run(&ctx)?;
            scale::fresh(&ctx)?;
            tls::run(&ctx)?;
            scale::scale(&ctx)
        }
        _ => {
            eprintln!("{USAGE}");
            Ok(())
        }
    }
}
