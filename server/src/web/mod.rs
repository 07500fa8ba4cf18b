//! The supervisors' and admins' web dashboard: server-rendered HTML (maud views over
//! the `intake-web` toolkit shared with the field app), working without JavaScript,
//! in sq, sr-Latn, sr-Cyrl and en.
//!
//! - [`cookies`], [`csrf`], [`session`], [`errors`], [`limiter`], [`password`]: the
//!   plumbing every page shares, each in one place;
//! - [`login`]: sign-in, sign-out, setting a password with a one-time code, language;
//! - [`records`]: the record list, a record's page, duplicate hints;
//! - [`review`]: what a supervisor does to a record (resolve, approve, send back,
//!   reject, reassign, comment, link) — each an Automerge change made by the server on
//!   her behalf through her dashboard device, judged by the same policy as a push;
//! - [`export`] and [`summary`]: CSV/JSON exports and the donor summary (pages and API);
//! - [`admin`]: users, devices and the audit trail; [`audit`] writes the trail;
//!   [`erase`]: erasing a record for good (admins).

pub mod admin;
pub mod audit;
pub mod clock;
pub mod cookies;
pub mod csrf;
pub mod erase;
pub mod errors;
pub mod export;
pub mod limiter;
pub mod login;
pub mod pages;
pub mod password;
pub mod records;
pub mod review;
pub mod session;
pub mod summary;

use actix_web::{HttpResponse, HttpResponseBuilder, web};

crate::routes::route_table! {
    /// Every dashboard route, (method, path), from the same table that registers them:
    /// for tests that must reach every page (these are HTML, not in the OpenAPI
    /// document).
    pub const DASHBOARD_ROUTES, fn register;
    {
        get "/" => login::home,
        get "/login" => login::form,
        post "/login" => login::sign_in,
        post intake_web::layout::SIGN_OUT_PATH => login::sign_out,
        get "/set-password" => login::password_form,
        post "/set-password" => login::set_password,
        get "/lang" => login::switch_lang,
        get "/records" => records::list,
        get "/records/{id}" => records::show,
        post "/records/{id}/resolve" => review::resolve,
        post "/records/{id}/review" => review::decide,
        post "/records/{id}/assign" => review::assign,
        post "/records/{id}/comment" => review::comment,
        post "/records/{id}/link" => review::link,
        get "/duplicates" => records::duplicates,
        get "/export.csv" => export::csv_page,
        get "/export.json" => export::json_page,
        get "/summary" => summary::page,
        get "/summary.csv" => summary::csv_page,
        get "/admin/users" => admin::users,
        post "/admin/users" => admin::add_user,
        post "/admin/users/{name}/password" => admin::reset_password,
        post "/admin/users/{name}/code" => admin::enrolment_code,
        post "/admin/users/{name}/disable" => admin::disable,
        get "/admin/devices" => admin::devices,
        post "/admin/devices/{id}/revoke" => admin::revoke,
        post "/admin/devices/{id}/wipe" => admin::revoke_and_wipe,
        get "/admin/audit" => admin::audit_trail,
        get erase::PATH => erase::form,
        post erase::PATH => erase::erase,
    }
}

/// Every dashboard route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg);
}

/// Headers every dashboard page carries: never cached (pages hold case data), never
/// framed, no content sniffing, and a policy that runs no script and loads nothing
/// from elsewhere (styles are inline in the page).
pub fn html_headers(resp: &mut HttpResponseBuilder) {
    resp.content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
}

/// A rendered page as a 200 answer.
pub fn html(markup: maud::Markup) -> HttpResponse {
    let mut resp = HttpResponse::Ok();
    html_headers(&mut resp);
    resp.body(markup.into_string())
}

/// "See other": where a form goes after it was handled (post/redirect/get).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to.to_string()))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A path to come back to after signing in or switching language: only a local path
/// of ours (never `//elsewhere` or a full URL), else the start page.
pub fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_come_back() {
        assert_eq!(
            local_path("/records?status=submitted"),
            "/records?status=submitted"
        );
        assert_eq!(local_path("//evil.example/x"), "/");
        assert_eq!(local_path("https://evil.example"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(encode("a b/ë"), "a%20b%2F%C3%AB");
    }
}
