//! Getting in and locking up: the launch link traded for the session cookie, the
//! unlock page (the passphrase typed in the page, never in a URL or the environment),
//! creating a new store (passphrase twice, a strength check), "Lock now", and the
//! language switch.

use actix_web::{HttpRequest, HttpResponse, web};
use intake_shared::Lang;
use intake_web::i18n::{Msg, t, tf, tn};
use intake_web::layout::{csrf_input, error_box, notice};
use maud::{Markup, html};
use serde::Deserialize;

use super::errors::AppError;
use super::pages::{locked_page, message_page};
use super::passphrase::{MIN_CHARS, check_new};
use super::state::{AppState, LockReason};
use super::visit::Visit;
use super::{cookies, html, see_other};
use crate::store::{DB_FILE, StoreError};
use crate::{Key, Store};

#[derive(Deserialize)]
pub struct LaunchQuery {
    #[serde(default)]
    secret: String,
}

/// `/launch?secret=…`: the first and only use of the secret sets the session cookie and
/// goes to the start page; any other use gets a page saying the link is spent.
pub async fn launch(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LaunchQuery>,
) -> HttpResponse {
    match state.launch(&query.secret) {
        Some(session) => HttpResponse::SeeOther()
            .cookie(cookies::session(state.port, session.token))
            .insert_header(("Location", "/"))
            .finish(),
        None => {
            let lang = cookies::lang_of(&req);
            HttpResponse::Forbidden()
                .content_type("text/html; charset=utf-8")
                .body(
                    message_page(lang, t(lang, Msg::ErrorTitle), t(lang, Msg::LaunchLinkUsed))
                        .into_string(),
                )
        }
    }
}

/// The form's fields. No `Debug`: it holds the passphrase.
#[derive(Deserialize)]
pub struct UnlockForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    passphrase: String,
    repeat: Option<String>,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// The unlock page, or the new-store page when there is no store yet.
pub async fn form(visit: Visit) -> HttpResponse {
    if visit.state.is_unlocked() {
        return see_other("/cases");
    }
    let status = visit.state.last_lock().map(|r| match r {
        LockReason::Idle => {
            let minutes = visit.state.config.idle.as_secs().div_ceil(60);
            tn(visit.lang, Msg::LockedIdle, minutes)
        }
        LockReason::Asked => t(visit.lang, Msg::AppLocked).to_string(),
        LockReason::Wiped => t(visit.lang, Msg::Wiped).to_string(),
    });
    html(unlock_page(&visit, status.as_deref(), None))
}

fn is_new(state: &AppState) -> bool {
    !state.config.home.join(DB_FILE).exists()
}

fn unlock_page(visit: &Visit, status: Option<&str>, error: Option<&str>) -> Markup {
    let lang = visit.lang;
    let new = is_new(&visit.state);
    let title = t(
        lang,
        if new {
            Msg::NewStoreTitle
        } else {
            Msg::UnlockTitle
        },
    );
    locked_page(
        lang,
        &visit.here,
        title,
        html! {
            h1 { (title) }
            @if let Some(s) = status { (notice(s)) }
            @if let Some(e) = error { (error_box(e)) }
            form method="post" action="/unlock" {
                (csrf_input(&visit.session.csrf))
                @if new {
                    p { (t(lang, Msg::NewStoreHelp)) }
                    p.hint { (tf(lang, Msg::PassphraseTooShort, &[("min", &MIN_CHARS.to_string())])) }
                }
                div.field {
                    label for="passphrase" { (t(lang, Msg::Passphrase)) }
                    input #passphrase type="password" name="passphrase" required
                        autocomplete=(if new { "new-password" } else { "current-password" })
                        autofocus;
                }
                @if new {
                    div.field {
                        label for="repeat" { (t(lang, Msg::RepeatPassphrase)) }
                        input #repeat type="password" name="repeat" required
                            autocomplete="new-password";
                    }
                }
                button type="submit" { (t(lang, if new { Msg::CreateStore } else { Msg::Unlock })) }
            }
        },
    )
}

/// Opens (or creates) the store with the typed passphrase.
pub async fn unlock(visit: Visit, form: web::Form<UnlockForm>) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    visit.check_csrf(&form.csrf)?;
    if visit.state.is_unlocked() {
        return Ok(see_other("/cases"));
    }
    let lang = visit.lang;
    let refuse = |msg: String| -> Result<HttpResponse, AppError> {
        let mut resp = HttpResponse::BadRequest();
        resp.content_type("text/html; charset=utf-8");
        Ok(resp.body(unlock_page(&visit, None, Some(&msg)).into_string()))
    };
    if is_new(&visit.state) {
        // Everything is checked before anything is written: a refused passphrase
        // leaves no salt behind.
        if form.repeat.as_deref() != Some(form.passphrase.as_str()) {
            return refuse(t(lang, Msg::PassphrasesDiffer).to_string());
        }
        if let Err(weak) = check_new(&form.passphrase) {
            return refuse(tf(lang, weak.msg(), &[("min", &MIN_CHARS.to_string())]));
        }
    } else if form.passphrase.is_empty() {
        return refuse(t(lang, Msg::WrongPassphrase).to_string());
    }
    let home = visit.state.config.home.clone();
    let passphrase = form.passphrase;
    let opened = web::block(move || -> Result<(Store, Key), StoreError> {
        let key = Key::from_passphrase(&home, &passphrase)?;
        Ok((Store::open(&home, &key)?, key))
    })
    .await?;
    match opened {
        Ok((store, key)) => {
            visit.state.unlocked(store, key);
            Ok(see_other("/cases"))
        }
        Err(StoreError::WrongKey) => refuse(t(lang, Msg::WrongPassphrase).to_string()),
        Err(e) => refuse(tf(lang, Msg::StoreUnusable, &[("why", &e.to_string())])),
    }
}

/// "Lock now": closes the store at once.
pub async fn lock_now(visit: Visit, form: web::Form<CsrfForm>) -> Result<HttpResponse, AppError> {
    visit.check_csrf(&form.csrf)?;
    visit.state.lock(Some(LockReason::Asked));
    Ok(see_other("/unlock"))
}

#[derive(Deserialize)]
pub struct LangQuery {
    to: String,
    #[serde(default)]
    back: String,
}

/// `/lang?to=…&back=…`: remembers the language (a cookie kept across launches) and
/// goes back to the page it was chosen on.
pub async fn switch_lang(query: web::Query<LangQuery>) -> HttpResponse {
    let back = intake_web::url::safe_back(&query.back).to_string();
    match query.to.parse::<Lang>() {
        Ok(lang) => HttpResponse::SeeOther()
            .cookie(cookies::lang(lang))
            .insert_header(("Location", back))
            .finish(),
        Err(_) => see_other(&back),
    }
}
