//! The HTTP routes. JSON everywhere except the sync endpoint, which speaks the binary
//! protocol of `docs/PROTOCOL.md`, the exports (CSV too) and the dashboard's HTML pages
//! (`crate::web`, not part of the API). Every JSON endpoint is described in the OpenAPI
//! document served at `/openapi.json`.

mod admin;
mod enroll;
mod health;
mod records;
mod sync;
mod token;
mod wiped;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/openapi.json", web::get().to(health::openapi))
        .route("/v1/enroll", web::post().to(enroll::enroll))
        .route("/v1/sync", web::post().to(sync::sync))
        .route("/v1/token", web::post().to(token::rotate))
        .route("/v1/me", web::get().to(records::me))
        .route("/v1/records", web::get().to(records::list))
        .route("/v1/records/{id}", web::get().to(records::get))
        .route("/v1/export", web::get().to(crate::web::export::api))
        .route("/v1/summary", web::get().to(crate::web::summary::api))
        // Lost phones (issue 12): a device confirms the wipe it was ordered.
        .route("/v1/wiped", web::post().to(wiped::wiped));
    // The admin API exists only where the `admin_api` setting allows (a guard: when it
    // fails, the request falls through to the 404 of an unknown route).
    cfg.service(
        web::scope("/v1/admin")
            .guard(actix_web::guard::fn_guard(admin::enabled))
            .route("/users", web::get().to(admin::users))
            .route("/users", web::post().to(admin::add_user))
            .route("/users/{name}/code", web::post().to(admin::new_code))
            .route("/users/{name}/disable", web::post().to(admin::disable_user))
            .route("/devices", web::get().to(admin::devices))
            .route("/devices/{id}/revoke", web::post().to(admin::revoke_device)),
    );
    crate::web::configure(cfg);
}

/// Every route, for the OpenAPI completeness test: (method, path).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/openapi.json"),
    ("post", "/v1/enroll"),
    ("post", "/v1/sync"),
    ("post", "/v1/token"),
    ("get", "/v1/me"),
    ("get", "/v1/records"),
    ("get", "/v1/records/{id}"),
    ("get", "/v1/admin/users"),
    ("post", "/v1/admin/users"),
    ("post", "/v1/admin/users/{name}/code"),
    ("post", "/v1/admin/users/{name}/disable"),
    ("get", "/v1/admin/devices"),
    ("post", "/v1/admin/devices/{id}/revoke"),
    ("get", "/v1/export"),
    ("get", "/v1/summary"),
    ("post", "/v1/wiped"),
];
