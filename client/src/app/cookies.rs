//! The app's cookies, in one place: the session cookie (random, never the launch
//! secret; `HttpOnly`, `SameSite=Strict`; no `Secure`, the app speaks plain HTTP on
//! loopback) and the remembered language.
//!
//! Browsers do not separate cookies by port, so the session cookie's name carries the
//! port: two apps running at once (or a stale cookie of an earlier launch) do not
//! overwrite each other. The language cookie is deliberately shared across launches.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use intake_shared::Lang;

/// The language cookie.
pub const LANG: &str = "intake_app_lang";

/// The session cookie's name for the app on `port`.
pub fn session_name(port: u16) -> String {
    format!("intake_app_{port}")
}

pub fn session(port: u16, token: String) -> Cookie<'static> {
    Cookie::build(session_name(port), token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish()
}

/// The language cookie, remembered for a year.
pub fn lang(lang: Lang) -> Cookie<'static> {
    Cookie::build(LANG, lang.code().to_string())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(Duration::days(365))
        .finish()
}

/// The language of the request: its cookie, else the browser's first language we
/// speak, else Albanian.
pub fn lang_of(req: &HttpRequest) -> Lang {
    if let Some(l) = req
        .cookie(LANG)
        .and_then(|c| c.value().parse::<Lang>().ok())
    {
        return l;
    }
    req.headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| intake_web::i18n::from_accept_language(v, &Lang::ALL))
        .unwrap_or(Lang::Sq)
}
