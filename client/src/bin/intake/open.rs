//! Opening the store: where it lives (`--home`, `INTAKE_HOME`, the platform data
//! directory), the passphrase (`INTAKE_PASSPHRASE`, else asked on the terminal, twice
//! for a new store) and the key derived from it. The passphrase is never printed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use intake_client::store::DB_FILE;
use intake_client::{Key, Store};

use crate::error::input;

/// The environment variable holding the passphrase, for scripts and tests.
const PASSPHRASE_ENV: &str = "INTAKE_PASSPHRASE";

/// A passphrase that never shows in `Debug` output and is wiped from memory when
/// dropped.
struct Passphrase(zeroize::Zeroizing<String>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase([redacted])")
    }
}

/// The store directory: `--home`/`INTAKE_HOME` (clap reads both), else the platform's
/// data directory.
pub fn home(home: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match home {
        Some(dir) => Ok(dir),
        None => dirs::data_dir()
            .map(|d| d.join("intake"))
            .ok_or_else(|| input("no data directory is known on this system: pass --home DIR")),
    }
}

/// Opens (creating if needed) the store in `home`.
pub fn store(home: Option<PathBuf>) -> anyhow::Result<Store> {
    let home = self::home(home)?;
    let is_new = !home.join(DB_FILE).exists();
    let passphrase = passphrase(&home, is_new)?;
    if is_new {
        // Said as wrong input (exit 2), before anything is created.
        intake_client::store::strength::check_new_passphrase(
            &passphrase.0,
            &intake_client::store::strength::default_user_inputs(),
        )
        .map_err(|e| input(format!("{e}; nothing was created")))?;
    }
    let key = Key::from_passphrase(&home, &passphrase.0)
        .with_context(|| format!("cannot open the store in {}", home.display()))?;
    let store = Store::open(&home, &key)
        .with_context(|| format!("cannot open the store in {}", home.display()))?;
    if is_new {
        eprintln!("intake: created a new store in {}", home.display());
    }
    Ok(store)
}

fn passphrase(home: &Path, is_new: bool) -> anyhow::Result<Passphrase> {
    match std::env::var(PASSPHRASE_ENV) {
        Ok(p) => return Ok(Passphrase(zeroize::Zeroizing::new(p))),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(input(format!("{PASSPHRASE_ENV} is not valid UTF-8")));
        }
        Err(std::env::VarError::NotPresent) => {}
    }
    if !std::io::stdin().is_terminal() {
        return Err(input(format!(
            "no passphrase: set {PASSPHRASE_ENV} or run intake on a terminal"
        )));
    }
    let ask = |prompt: String| -> anyhow::Result<Passphrase> {
        rpassword::prompt_password(prompt)
            .map(|p| Passphrase(zeroize::Zeroizing::new(p)))
            .context("cannot read the passphrase from the terminal")
    };
    if !is_new {
        return ask(format!("Passphrase for {}: ", home.display()));
    }
    eprintln!(
        "intake: no store in {} yet; choose a passphrase for a new one.",
        home.display()
    );
    eprintln!("        Without it the records cannot be read: keep it safe.");
    let first = ask("New passphrase: ".into())?;
    if first.0.is_empty() {
        return Err(input("the passphrase is empty"));
    }
    let second = ask("Repeat the passphrase: ".into())?;
    if *first.0 != *second.0 {
        return Err(input("the passphrases do not match; nothing was created"));
    }
    Ok(first)
}
