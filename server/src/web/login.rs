//! Signing in and out, setting a password with a one-time code, and the language
//! switch. A session token is 32 random bytes in an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` under TLS), stored hashed; a new one on every sign-in. Failed
//! sign-ins are limited per account and per address, and written to the audit trail.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use intake_shared::Lang;
use intake_web::i18n::{Msg, t, tf};
use maud::{Markup, html};

use super::audit::{self, action};
use super::errors::WebError;
use super::pages::public_page;
use super::session::{IDLE, Signed, Visitor};
use super::{cookies, csrf, html_headers, local_path, password, see_other};
use crate::auth::Refused;
use crate::auth::{hash_secret, new_token, normalize_code};
use crate::startup::AppState;
use crate::storage::{AuditEntry, Role};

/// `/`: the start page of the signed-in user's role, else sign-in.
pub async fn home(who: Option<Signed>) -> HttpResponse {
    match who.map(|w| w.role()) {
        Some(Role::Admin) => see_other("/admin/users"),
        Some(_) => see_other("/records"),
        None => see_other("/login"),
    }
}

#[derive(serde::Deserialize)]
pub struct Next {
    #[serde(default)]
    next: String,
}

fn login_view(lang: Lang, pre: &str, next: &str, name: &str, error: Option<&str>) -> Markup {
    html! {
        h1 { (t(lang, Msg::SignIn)) }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form method="post" action="/login" class="narrow" {
            input type="hidden" name="pre" value=(pre);
            input type="hidden" name="next" value=(next);
            label { (t(lang, Msg::Username))
                input type="text" name="username" value=(name) autocomplete="username" required autofocus; }
            label { (t(lang, Msg::Password))
                input type="password" name="password" autocomplete="current-password" required; }
            button type="submit" { (t(lang, Msg::SignIn)) }
        }
        p { a href="/set-password" { (t(lang, Msg::SetPasswordWithCode)) } }
    }
}

fn login_response(
    v: &Visitor,
    status: actix_web::http::StatusCode,
    pre: Option<String>,
    next: &str,
    name: &str,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let (pre, fresh) = match pre {
        Some(p) if !p.is_empty() => (p, false),
        _ => (
            csrf::new_token().map_err(|e| WebError::internal(v.lang, e))?,
            true,
        ),
    };
    let body = public_page(
        v.lang,
        t(v.lang, Msg::SignIn),
        &v.here,
        login_view(v.lang, &pre, local_path(next), name, error),
    );
    let mut resp = HttpResponse::build(status);
    html_headers(&mut resp);
    if fresh {
        resp.cookie(cookies::pre(pre, v.secure));
    }
    Ok(resp.body(body.into_string()))
}

/// `GET /login`.
pub async fn form(
    req: HttpRequest,
    v: Visitor,
    q: web::Query<Next>,
) -> Result<HttpResponse, WebError> {
    let pre = req.cookie(cookies::PRE).map(|c| c.value().to_string());
    login_response(&v, actix_web::http::StatusCode::OK, pre, &q.next, "", None)
}

#[derive(serde::Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    pre: String,
    #[serde(default)]
    next: String,
    username: String,
    password: String,
}

/// `POST /login`.
pub async fn sign_in(
    req: HttpRequest,
    v: Visitor,
    state: web::Data<AppState>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    let lang = v.lang;
    let cookie = req.cookie(cookies::PRE).map(|c| c.value().to_string());
    if !cookie
        .as_deref()
        .is_some_and(|c| csrf::matches(c, &form.pre))
    {
        return Err(WebError::Csrf(lang));
    }
    let name = form.username.trim().to_string();
    let addr = v.peer.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    // Counted before the password is checked (see `limiter.rs`); given back below
    // when it is right.
    // Off the async workers: shared by several servers, the counters are in the database.
    let limits = state.clone();
    let account = name.clone();
    let attempt = match web::block(move || limits.signin_limiter.reserve(&account, addr)).await? {
        Ok(a) => a,
        Err(Refused::Wait(secs)) => return Err(WebError::TooMany(lang, secs)),
        Err(Refused::Storage(e)) => return Err(e.into()),
    };
    let storage = state.storage.clone();
    let typed = form.password;
    let lookup = name.clone();
    // Argon2 takes tens of milliseconds of CPU: off the async workers.
    let found = web::block(
        move || -> crate::storage::Result<Option<crate::storage::User>> {
            match storage.password(&lookup)? {
                Some((user, phc)) if password::verify(&phc, &typed) => Ok(Some(user)),
                Some(_) => Ok(None),
                None => {
                    let _ = password::verify(password::decoy(), &typed);
                    Ok(None)
                }
            }
        },
    )
    .await??;
    let user = match found {
        Some(u) if matches!(u.role, Role::Supervisor | Role::Admin) => u,
        _ => {
            drop(attempt);
            // The name typed is kept only when it is a user's: a password typed into
            // the name box must not land in the trail.
            let known = {
                let storage = state.storage.clone();
                let n = name.clone();
                web::block(move || storage.user(&n)).await??.map(|u| u.name)
            };
            audit::write(
                &state,
                AuditEntry {
                    at: Utc::now(),
                    user: known,
                    device: None,
                    session: None,
                    action: action::SIGN_IN_FAILED.into(),
                    scope: String::new(),
                    records: Vec::new(),
                    peer: v.peer.map(|p| p.to_string()),
                },
            )
            .await?;
            return login_response(
                &v,
                actix_web::http::StatusCode::UNAUTHORIZED,
                cookie,
                &form.next,
                &name,
                Some(t(lang, Msg::WrongCredentials)),
            );
        }
    };
    let limits = state.clone();
    web::block(move || limits.signin_limiter.succeeded(attempt)).await?;
    let (token, hash) = new_token().map_err(|e| WebError::internal(lang, e))?;
    let csrf_token = csrf::new_token().map_err(|e| WebError::internal(lang, e))?;
    let storage = state.storage.clone();
    let now = Utc::now();
    let user_name = user.name.clone();
    let session =
        web::block(move || storage.create_session(hash, &user_name, &csrf_token, now, now + IDLE))
            .await??
            .ok_or_else(|| WebError::internal(lang, anyhow::anyhow!("the user went away")))?;
    audit::write(
        &state,
        AuditEntry {
            at: now,
            user: Some(user.name.clone()),
            device: Some(session.device.id),
            session: Some(session.id),
            action: action::SIGN_IN.into(),
            scope: String::new(),
            records: Vec::new(),
            peer: v.peer.map(|p| p.to_string()),
        },
    )
    .await?;
    tracing::info!(user = %user.name, session = session.id, "signed in");
    let to = match local_path(&form.next) {
        "/" | "/login" => "/",
        p => p,
    };
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", to.to_string()))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(cookies::session(token, v.secure))
        .finish())
}

#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`.
pub async fn sign_out(
    req: HttpRequest,
    who: Signed,
    state: web::Data<AppState>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    who.check_csrf(&form.csrf)?;
    let token = req
        .cookie(cookies::SESSION)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let storage = state.storage.clone();
    let hash = hash_secret(&token);
    web::block(move || storage.end_session(hash)).await??;
    audit::record(&state, &who, action::SIGN_OUT, String::new(), Vec::new()).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/login"))
        .cookie(cookies::clear_session(who.secure))
        .finish())
}

fn password_view(lang: Lang, error: Option<&str>, done: bool) -> Markup {
    html! {
        h1 { (t(lang, Msg::SetPassword)) }
        @if done {
            p.notice role="status" { (t(lang, Msg::PasswordSet)) }
            p { a href="/login" { (t(lang, Msg::SignIn)) } }
        } @else {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            p { (t(lang, Msg::SetPasswordHelp)) }
            form method="post" action="/set-password" class="narrow" {
                label { (t(lang, Msg::OneTimeCode))
                    input type="text" name="code" autocomplete="one-time-code" required autofocus; }
                label { (t(lang, Msg::NewPassword))
                    input type="password" name="password" autocomplete="new-password" required minlength=(password::MIN_LEN); }
                label { (t(lang, Msg::RepeatPassword))
                    input type="password" name="again" autocomplete="new-password" required minlength=(password::MIN_LEN); }
                button type="submit" { (t(lang, Msg::SetPassword)) }
            }
        }
    }
}

/// `GET /set-password`.
pub async fn password_form(v: Visitor) -> HttpResponse {
    super::html(public_page(
        v.lang,
        t(v.lang, Msg::SetPassword),
        &v.here,
        password_view(v.lang, None, false),
    ))
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    code: String,
    password: String,
    again: String,
}

/// `POST /set-password`: the one-time code is the credential (like enrolment), so the
/// form needs no session; guessing codes is limited per address.
pub async fn set_password(
    v: Visitor,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    let lang = v.lang;
    let addr = v.peer.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let again = |text: String| {
        let mut resp = HttpResponse::BadRequest();
        html_headers(&mut resp);
        let view = password_view(lang, Some(&text), false);
        resp.body(public_page(lang, t(lang, Msg::SetPassword), &v.here, view).into_string())
    };
    if form.password != form.again {
        return Ok(again(t(lang, Msg::PasswordsDiffer).to_string()));
    }
    match password::check_new("", &form.password) {
        Err(password::Weak::TooShort) => {
            let min = password::MIN_LEN.to_string();
            return Ok(again(tf(lang, Msg::PasswordTooShort, &[("min", &min)])));
        }
        Err(password::Weak::Guessable) => {
            return Ok(again(t(lang, Msg::PasswordGuessable).to_string()));
        }
        Ok(()) => {}
    }
    // The slot is taken before the code is looked up, and only once the form is
    // otherwise right, so retyping a mismatched password costs no attempt (see
    // `AttemptLimiter`).
    let code_hash = hash_secret(&normalize_code(&form.code));
    let limits = state.clone();
    let attempt = match web::block(move || limits.enrol_limiter.reserve(addr, code_hash)).await? {
        Ok(a) => a,
        Err(Refused::Wait(secs)) => return Err(WebError::TooMany(lang, secs)),
        Err(Refused::Storage(e)) => return Err(e.into()),
    };
    let typed = form.password.clone();
    let storage = state.storage.clone();
    let user = web::block(move || -> anyhow::Result<Option<crate::storage::User>> {
        let phc = password::hash(&typed)?;
        Ok(storage.redeem_password_code(code_hash, Utc::now(), &phc)?)
    })
    .await?
    .map_err(|e| WebError::internal(lang, e))?;
    let Some(user) = user else {
        return Ok(again(t(lang, Msg::CodeInvalid).to_string()));
    };
    let limits = state.clone();
    web::block(move || limits.enrol_limiter.succeeded(attempt)).await?;
    audit::write(
        &state,
        AuditEntry {
            at: Utc::now(),
            user: Some(user.name),
            device: None,
            session: None,
            action: action::SET_PASSWORD.into(),
            scope: String::new(),
            records: Vec::new(),
            peer: v.peer.map(|p| p.to_string()),
        },
    )
    .await?;
    Ok(super::html(public_page(
        lang,
        t(lang, Msg::SetPassword),
        &v.here,
        password_view(lang, None, true),
    )))
}

#[derive(serde::Deserialize)]
pub struct Switch {
    to: String,
    #[serde(default)]
    back: String,
}

/// `GET /lang?to=sr-Cyrl&back=/records`: remembers the language in a cookie and goes
/// back. Changes nothing but the reader's own preference, so a plain link will do.
pub async fn switch_lang(v: Visitor, q: web::Query<Switch>) -> HttpResponse {
    let lang =
        q.to.parse::<Lang>()
            .ok()
            .filter(|l| super::pages::LANGUAGES.contains(l))
            .unwrap_or(v.lang);
    HttpResponse::SeeOther()
        .insert_header(("Location", local_path(&q.back).to_string()))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(cookies::lang(lang, v.secure))
        .finish()
}
