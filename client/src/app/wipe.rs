//! Quick wipe: when a device is about to be taken, the paralegal destroys every trace of
//! the app's data in under a second. The store is closed (the background sync is told
//! to stop without waiting for it), then every file in the store directory is
//! overwritten where that is cheap and removed: the salt first and synced to disk —
//! without it the passphrase no longer yields the key, so even blocks the file system
//! keeps are unreadable — then the database and its journals.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use actix_web::{HttpResponse, web};
use intake_web::i18n::{Msg, t, tn};
use intake_web::layout::csrf_input;
use maud::html;
use serde::Deserialize;

use super::errors::AppError;
use super::pages::app_page;
use super::visit::Visit;
use super::{html, see_other};
use crate::store::SALT_FILE;

/// Files larger than this are overwritten only up to it (SQLCipher encrypts every
/// page, so the point is speed, not secrecy of what is left).
const OVERWRITE_AT_MOST: u64 = 64 * 1024 * 1024;

/// `/wipe`: what will be destroyed, and the button.
pub async fn confirm(visit: Visit) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    let unsynced = visit
        .store(|s| s.unsynced())
        .await?
        .map_err(|e| AppError::internal(lang, e))?;
    let title = t(lang, Msg::QuickWipe);
    Ok(html(app_page(
        &visit.viewer(),
        title,
        html! {
            h1 { (title) }
            div.error role="alert" { (tn(lang, Msg::WipeExplain, unsynced as u64)) }
            form.actions method="post" action="/wipe" {
                (csrf_input(&visit.session.csrf))
                button.danger type="submit" { (t(lang, Msg::WipeNow)) }
                a.button.secondary href="/cases" { (t(lang, Msg::Cancel)) }
            }
        },
    )))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Destroys the store and goes to the new-store page, which says so.
pub async fn wipe(visit: Visit, form: web::Form<CsrfOnly>) -> Result<HttpResponse, AppError> {
    visit.check_csrf(&form.csrf)?;
    // Like every page of cases, only for whoever unlocked the store.
    if !visit.state.is_unlocked() {
        return Err(AppError::Locked);
    }
    let state = visit.state.clone();
    web::block(move || state.wipe())
        .await?
        .map_err(|e| AppError::internal(visit.lang, e))?;
    Ok(see_other("/unlock"))
}

/// Overwrites and removes every file in `dir` (the salt first), then `dir` itself if
/// it is then empty. A missing directory is already wiped.
pub fn destroy(dir: &Path) -> std::io::Result<()> {
    let mut files: Vec<_> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    files.sort_by_key(|p| p.file_name() != Some(std::ffi::OsStr::new(SALT_FILE)));
    for path in &files {
        overwrite(path)?;
        fs::remove_file(path)?;
    }
    // Not an error if something else lives there (a user's own file in --home).
    let _ = fs::remove_dir(dir);
    Ok(())
}

fn overwrite(path: &Path) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    let len = f.metadata()?.len().min(OVERWRITE_AT_MOST);
    let zeros = vec![0u8; 64 * 1024];
    f.seek(SeekFrom::Start(0))?;
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_removed_and_a_missing_dir_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        fs::create_dir(&store).unwrap();
        for name in ["intake.db", "intake.db-wal", "intake.db-shm", SALT_FILE] {
            fs::write(store.join(name), b"Drita Krasniqi").unwrap();
        }
        destroy(&store).unwrap();
        assert!(!store.exists());
        destroy(&store).unwrap();
    }
}
