//! The HTTP routes. JSON everywhere except the sync endpoint, which speaks the binary
//! protocol of `docs/PROTOCOL.md`, the exports (CSV too) and the dashboard's HTML pages
//! (`crate::web`, not part of the API). Every JSON endpoint is described in the OpenAPI
//! document served at `/openapi.json`.

mod admin;
mod enroll;
mod health;
mod records;
pub(crate) mod sync;
mod token;
mod wiped;

use actix_web::web;

/// One table of routes, expanded into both their registration and their list, so the
/// two cannot drift (issue 13): `method "path" => handler` entries become a
/// `register(cfg)` that adds each route to the root `ServiceConfig` (no `web::scope("")`:
/// an empty-prefix scope would swallow the dashboard's routes with 404), an optional
/// `scope "/prefix", fn name { ... }` section becomes a function building that scope
/// (its guard is added where it is used), and the list holds `(method, full path)` of
/// every entry, the scope's prefix included. The method is an `actix_web::web`
/// function name (`get`, `post`), which is also its lower-case OpenAPI name.
macro_rules! route_table {
    (
        $(#[$doc:meta])*
        $vis:vis const $list:ident, fn $register:ident;
        { $( $method:ident $path:expr => $handler:path ),* $(,)? }
        $( scope $prefix:literal, fn $scope:ident {
            $( $smethod:ident $spath:literal => $shandler:path ),* $(,)?
        } )?
    ) => {
        $(#[$doc])*
        $vis const $list: &[(&str, &str)] = &[
            $( (stringify!($method), $path), )*
            $( $( (stringify!($smethod), concat!($prefix, $spath)), )* )?
        ];

        fn $register(cfg: &mut ::actix_web::web::ServiceConfig) {
            $( cfg.route($path, ::actix_web::web::$method().to($handler)); )*
        }

        $(
            fn $scope() -> ::actix_web::Scope {
                ::actix_web::web::scope($prefix)
                    $( .route($spath, ::actix_web::web::$smethod().to($shandler)) )*
            }
        )?
    };
}
pub(crate) use route_table;

route_table! {
    /// Every route of the API, (method, full path): what the OpenAPI document must
    /// describe, and what the access matrix of the end-to-end tests must cover.
    pub const ROUTES, fn register_api;
    {
        get "/health" => health::health,
        get "/openapi.json" => health::openapi,
        post "/v1/enroll" => enroll::enroll,
        post "/v1/sync" => sync::sync,
        post "/v1/token" => token::rotate,
        get "/v1/me" => records::me,
        get "/v1/records" => records::list,
        get "/v1/records/{id}" => records::get,
        get "/v1/export" => crate::web::export::api,
        get "/v1/summary" => crate::web::summary::api,
        // Lost phones (issue 12): a device confirms the wipe it was ordered.
        post "/v1/wiped" => wiped::wiped,
    }
    scope "/v1/admin", fn admin_scope {
        get "/users" => admin::users,
        post "/users" => admin::add_user,
        post "/users/{name}/code" => admin::new_code,
        post "/users/{name}/disable" => admin::disable_user,
        get "/devices" => admin::devices,
        post "/devices/{id}/revoke" => admin::revoke_device,
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    register_api(cfg);
    // The admin API exists only where the `admin_api` setting allows (a guard: when it
    // fails, the request falls through to the 404 of an unknown route).
    cfg.service(admin_scope().guard(actix_web::guard::fn_guard(admin::enabled)));
    crate::web::configure(cfg);
}
