//! The commands that talk to the server: `enroll` (bind this device with a one-time
//! code) and `sync` (send and receive). On a terminal, `sync` shows a progress line
//! and ends with a one-line summary; `--json` prints the summary for scripts.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use intake_client::sync::{Progress, SyncError, SyncOptions};

use crate::open;

pub fn enroll(
    home: Option<PathBuf>,
    server: &str,
    code: &str,
    label: &str,
    ca: Option<&Path>,
    insecure_http: bool,
) -> anyhow::Result<()> {
    // Before the passphrase is asked for: an address this app will not use is said at
    // once.
    intake_client::sync::check_server_url(server.trim(), insecure_http).map_err(explain)?;
    let mut store = open::store(home)?;
    if let Some(existing) = store.enrolment()? {
        anyhow::bail!(
            "this device is already enrolled with {} as {}; use a new --home for another enrolment",
            existing.server,
            existing.user
        );
    }
    let ca = ca.map(|p| p.display().to_string());
    let e = intake_client::enroll_with(
        &mut store,
        server,
        code,
        label,
        ca.as_deref(),
        insecure_http,
    )
    .map_err(explain)?;
    let team = e
        .team
        .as_deref()
        .map(|t| format!(", team {t}"))
        .unwrap_or_default();
    println!(
        "enrolled with {} as {} ({}{team}); run `intake sync` whenever you have signal",
        e.server, e.user, e.role
    );
    Ok(())
}

pub fn sync(home: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let mut store = open::store(home)?;
    let terminal = std::io::stderr().is_terminal() && !json;
    let mut on_progress = |p: &Progress| {
        if terminal {
            let s = &p.summary;
            let bar = if p.more { "receiving…" } else { "done" };
            // On a link that keeps dropping, say so: the sync is still getting there.
            let dropped = match s.retries {
                0 => String::new(),
                n => format!(" · link dropped {n}×, resumed"),
            };
            eprint!(
                "\r\x1b[2Ksync: sent {} · received {} · {} up / {} down{dropped} · {bar}",
                s.sent,
                s.received,
                human(s.bytes_up),
                human(s.bytes_down)
            );
            let _ = std::io::stderr().flush();
        }
    };
    let result = intake_client::sync(&mut store, &SyncOptions::default(), &mut on_progress);
    if terminal {
        eprintln!();
    }
    let s = result.map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        let mut line = format!(
            "synced: {} sent, {} received, {} removed, {} up / {} down in {} request{}",
            s.sent,
            s.received,
            s.removed,
            human(s.bytes_up),
            human(s.bytes_down),
            s.requests,
            if s.requests == 1 { "" } else { "s" }
        );
        if s.retries > 0 {
            line += &format!(
                "; the link dropped {} time{}, each time it picked up where it stopped",
                s.retries,
                if s.retries == 1 { "" } else { "s" }
            );
        }
        if s.refused > 0 {
            line += &format!("; {} refused by the server (see `intake list`)", s.refused);
        }
        if s.unsynced > 0 {
            line += &format!("; {} not yet synced", s.unsynced);
        }
        println!("{line}");
        if s.erased > 0 {
            // Said on a line of its own: unsynced edits of these records are gone too.
            println!(
                "{} record{} erased by your organisation: removed from this device, with any edits not synced",
                s.erased,
                if s.erased == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}

/// `intake rotate-token`.
pub fn rotate_token(home: Option<PathBuf>) -> anyhow::Result<()> {
    let mut store = open::store(home)?;
    intake_client::rotate_token(&mut store).map_err(explain)?;
    eprintln!("intake: this device has a new token; the old one ends with its first use");
    Ok(())
}

fn human(bytes: usize) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// Says what to do about a sync error.
fn explain(e: SyncError) -> anyhow::Error {
    let hint = match &e {
        SyncError::Offline(_) => {
            " — your records are safe on this device; sync again when you have signal"
        }
        SyncError::Retryable(_)
        | SyncError::TooLarge(_)
        | SyncError::Busy(..)
        | SyncError::StorageFull(..) => {
            " — nothing was lost, and what got through is kept: run `intake sync` again \
             and it continues where it stopped"
        }
        _ => "",
    };
    anyhow::anyhow!("{e}{hint}")
}
