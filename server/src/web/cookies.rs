//! The dashboard's cookies, in one place: the session cookie (an opaque 256-bit token,
//! stored hashed on the server, `HttpOnly`, `SameSite=Strict`, `Secure` under TLS or behind a TLS proxy) and
//! the remembered language (not a secret). Nothing else is kept in cookies.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use intake_shared::Lang;

/// The session token's cookie.
pub const SESSION: &str = "intake_session";
/// The chosen language's cookie, kept across sign-outs.
pub const LANG: &str = "intake_lang";
/// A random value bound to the sign-in form before there is a session (login CSRF).
pub const PRE: &str = "intake_pre";

/// Whether cookies are `Secure`: when browsers reach the server over HTTPS, its own
/// TLS or a TLS-terminating proxy's (`behind_proxy`). A session cookie sent once over
/// plain HTTP is a session anyone on the network can take.
pub fn secure(settings: &crate::config::Settings) -> bool {
    settings.https()
}

/// A cookie with the attributes every dashboard cookie has.
fn base(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish()
}

/// The session cookie: it lives as long as the browser (the server ends idle and
/// old sessions on its own).
pub fn session(token: String, secure: bool) -> Cookie<'static> {
    base(SESSION, token, secure)
}

/// Removes the session cookie.
pub fn clear_session(secure: bool) -> Cookie<'static> {
    let mut c = base(SESSION, String::new(), secure);
    c.make_removal();
    c
}

pub fn pre(value: String, secure: bool) -> Cookie<'static> {
    base(PRE, value, secure)
}

/// The language cookie, remembered for a year.
pub fn lang(lang: Lang, secure: bool) -> Cookie<'static> {
    let mut c = base(LANG, lang.code().to_string(), secure);
    c.set_max_age(Duration::days(365));
    c
}

/// The language the request asks for: its cookie, else the browser's first
/// `Accept-Language` we speak, else Albanian (most of the NGO's staff).
pub fn lang_of(req: &HttpRequest) -> Lang {
    if let Some(l) = req
        .cookie(LANG)
        .and_then(|c| c.value().parse::<Lang>().ok())
        .filter(|l| Lang::REQUIRED.contains(l))
    {
        return l;
    }
    req.headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| intake_web::i18n::from_accept_language(v, &Lang::REQUIRED))
        .unwrap_or(Lang::Sq)
}
