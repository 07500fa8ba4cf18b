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

/// Every dashboard route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(login::home))
        .route("/login", web::get().to(login::form))
        .route("/login", web::post().to(login::sign_in))
        .route(
            intake_web::layout::SIGN_OUT_PATH,
            web::post().to(login::sign_out),
        )
        .route("/set-password", web::get().to(login::password_form))
        .route("/set-password", web::post().to(login::set_password))
        .route("/lang", web::get().to(login::switch_lang))
        .route("/records", web::get().to(records::list))
        .route("/records/{id}", web::get().to(records::show))
        .route("/records/{id}/resolve", web::post().to(review::resolve))
        .route("/records/{id}/review", web::post().to(review::decide))
        .route("/records/{id}/assign", web::post().to(review::assign))
        .route("/records/{id}/comment", web::post().to(review::comment))
        .route("/records/{id}/link", web::post().to(review::link))
        .route("/duplicates", web::get().to(records::duplicates))
        .route("/export.csv", web::get().to(export::csv_page))
        .route("/export.json", web::get().to(export::json_page))
        .route("/summary", web::get().to(summary::page))
        .route("/summary.csv", web::get().to(summary::csv_page))
        .route("/admin/users", web::get().to(admin::users))
        .route("/admin/users", web::post().to(admin::add_user))
        .route(
            "/admin/users/{name}/password",
            web::post().to(admin::reset_password),
        )
        .route(
            "/admin/users/{name}/code",
            web::post().to(admin::enrolment_code),
        )
        .route(
            "/admin/users/{name}/disable",
            web::post().to(admin::disable),
        )
        .route("/admin/devices", web::get().to(admin::devices))
        .route("/admin/devices/{id}/revoke", web::post().to(admin::revoke))
        .route(
            "/admin/devices/{id}/wipe",
            web::post().to(admin::revoke_and_wipe),
        )
        .route("/admin/audit", web::get().to(admin::audit_trail))
        .route(erase::PATH, web::get().to(erase::form))
        .route(erase::PATH, web::post().to(erase::erase));
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
