//! Quick wipe: when a device is about to be taken, the paralegal destroys every trace of
//! the app's data in under a second. The store is closed (the background sync is told
//! to stop without waiting for it), then every file in the store directory is
//! overwritten where that is cheap and removed: the salt first and synced to disk —
//! without it the passphrase no longer yields the key, so even blocks the file system
//! keeps are unreadable — then the database and its journals.

use actix_web::{HttpResponse, web};
use intake_web::i18n::{Msg, t, tn};
use intake_web::layout::csrf_input;
use maud::html;
use serde::Deserialize;

use super::errors::AppError;
use super::pages::app_page;
use super::visit::Visit;
use super::{html, see_other};

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

/// Overwrites and removes every file in `dir` (the salt first): the one
/// implementation in `crate::store`, shared with the wipe a server orders.
pub fn destroy(dir: &std::path::Path) -> std::io::Result<()> {
    crate::store::destroy_dir(dir)
}
