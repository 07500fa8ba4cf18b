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
        Ok(Some(session)) => HttpResponse::SeeOther()
            .cookie(cookies::session(state.port, session.token))
            .insert_header(("Location", "/"))
            .finish(),
        Err(e) => {
            let lang = cookies::lang_of(&req);
            HttpResponse::InternalServerError()
                .content_type("text/html; charset=utf-8")
                .body(message_page(lang, t(lang, Msg::ErrorTitle), &e.to_string()).into_string())
        }
        Ok(None) => {
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

/// A form posted while the store was locked (the idle lock struck while the paralegal
/// was typing a narrative): carried through the unlock page in hidden inputs, so what
/// she typed is not lost, and offered for saving once the store is open.
pub struct Carry {
    /// Where the form was posted (a case path).
    pub to: String,
    /// Its fields, without the CSRF token.
    pub pairs: Vec<(String, String)>,
}

/// The input name of a carried form's address, and the prefix of its fields.
const CARRY_TO: &str = "carry_to";
const CARRY_PREFIX: &str = "c.";

impl Carry {
    /// A form posted to `to`, unless `to` is not one of the case forms.
    pub fn new(to: &str, posted: &[(String, String)]) -> Option<Carry> {
        let to = intake_web::url::safe_back(to);
        to.starts_with("/cases/").then(|| Carry {
            to: to.to_string(),
            pairs: posted
                .iter()
                .filter(|(k, _)| k != intake_web::layout::CSRF_FIELD)
                .cloned()
                .collect(),
        })
    }

    /// The carried form inside the unlock form's post.
    fn read(posted: &[(String, String)]) -> Option<Carry> {
        let to = posted.iter().find(|(k, _)| k == CARRY_TO)?;
        let pairs: Vec<(String, String)> = posted
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(CARRY_PREFIX)?.to_string(), v.clone())))
            .collect();
        Carry::new(&to.1, &pairs)
    }

    fn hidden(&self, prefix: &str) -> Markup {
        html! {
            @for (k, v) in &self.pairs {
                input type="hidden" name={ (prefix) (k) } value=(v);
            }
        }
    }
}

/// The answer to a case form posted while the store is locked: the unlock page,
/// carrying the form.
pub fn locked_with(visit: &Visit, carry: Option<Carry>) -> HttpResponse {
    match carry {
        Some(carry) => html(unlock_page(
            visit,
            Some(t(visit.lang, Msg::NotSavedYet)),
            None,
            Some(&carry),
        )),
        None => see_other("/unlock"),
    }
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
        LockReason::RemoteWiped => t(visit.lang, Msg::RemoteWiped).to_string(),
    });
    html(unlock_page(&visit, status.as_deref(), None, None))
}

fn is_new(state: &AppState) -> bool {
    !state.config.home.join(DB_FILE).exists()
}

fn unlock_page(
    visit: &Visit,
    status: Option<&str>,
    error: Option<&str>,
    carry: Option<&Carry>,
) -> Markup {
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
                @if let Some(c) = carry {
                    input type="hidden" name=(CARRY_TO) value=(c.to);
                    (c.hidden(CARRY_PREFIX))
                }
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

/// The unlock form's post: its fields are read by name (no `Debug` anywhere: it holds
/// the passphrase), the rest is a carried form.
type UnlockPost = web::Form<Vec<(String, String)>>;

fn field<'a>(posted: &'a [(String, String)], name: &str) -> Option<&'a str> {
    posted
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Opens (or creates) the store with the typed passphrase.
pub async fn unlock(visit: Visit, form: UnlockPost) -> Result<HttpResponse, AppError> {
    let posted = form.into_inner();
    visit.check_csrf(field(&posted, "csrf").unwrap_or(""))?;
    let carry = Carry::read(&posted);
    if visit.state.is_unlocked() {
        return Ok(resume(&visit, carry));
    }
    let lang = visit.lang;
    let refuse = |msg: String| -> Result<HttpResponse, AppError> {
        let mut resp = HttpResponse::BadRequest();
        resp.content_type("text/html; charset=utf-8");
        Ok(resp.body(unlock_page(&visit, None, Some(&msg), carry.as_ref()).into_string()))
    };
    // Held in a zeroizing string from the form to the key derivation; the form's own
    // copies are wiped below, once read.
    let passphrase =
        zeroize::Zeroizing::new(field(&posted, "passphrase").unwrap_or("").to_string());
    let repeat_matches = field(&posted, "repeat") == Some(passphrase.as_str());
    wipe_secrets(posted);
    if is_new(&visit.state) {
        // Everything is checked before anything is written: a refused passphrase
        // leaves no salt behind.
        if !repeat_matches {
            return refuse(t(lang, Msg::PassphrasesDiffer).to_string());
        }
        if let Err(weak) = check_new(&passphrase) {
            return refuse(tf(lang, weak.msg(), &[("min", &MIN_CHARS.to_string())]));
        }
        // Issue 12: and a strength estimate (zxcvbn), as the library checks it.
        let inputs = crate::store::strength::default_user_inputs();
        if crate::store::strength::check_new_passphrase(&passphrase, &inputs).is_err() {
            return refuse(t(lang, Msg::PassphraseGuessable).to_string());
        }
    } else if passphrase.is_empty() {
        return refuse(t(lang, Msg::WrongPassphrase).to_string());
    }
    let home = visit.state.config.home.clone();
    let opened = web::block(move || -> Result<(Store, Key), StoreError> {
        let key = Key::from_passphrase(&home, &passphrase)?;
        Ok((Store::open(&home, &key)?, key))
    })
    .await?;
    match opened {
        Ok((store, key)) => {
            visit.state.unlocked(store, key);
            Ok(resume(&visit, carry))
        }
        Err(StoreError::WrongKey) => refuse(t(lang, Msg::WrongPassphrase).to_string()),
        Err(e) => refuse(tf(lang, Msg::StoreUnusable, &[("why", &e.to_string())])),
    }
}

/// Wipes the posted passphrase fields from memory once they have been read.
fn wipe_secrets(mut posted: Vec<(String, String)>) {
    use zeroize::Zeroize;
    for (k, v) in &mut posted {
        if k == "passphrase" || k == "repeat" {
            v.zeroize();
        }
    }
}

/// After unlocking: the cases, or the carried form to save with one press (it is not
/// saved without her: she sees what she is about to save, and the post carries this
/// session's CSRF token).
fn resume(visit: &Visit, carry: Option<Carry>) -> HttpResponse {
    let Some(carry) = carry else {
        return see_other("/cases");
    };
    let lang = visit.lang;
    let title = t(lang, Msg::SaveThemNow);
    html(super::pages::app_page(
        &visit.viewer(),
        title,
        html! {
            (notice(title))
            form method="post" action=(carry.to) novalidate {
                (csrf_input(&visit.session.csrf))
                (carry.hidden(""))
                button type="submit" { (t(lang, Msg::Save)) }
            }
        },
    ))
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
