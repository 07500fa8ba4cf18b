//! The admin API: users and devices (the same operations as the `intake-server user`
//! and `device` commands). Off unless the `admin_api` setting turns it on (or on for
//! this machine only): a remote device token is then no key to the whole installation.
//! Only admins; anyone else gets 403. Every call that reaches a handler, allowed or
//! refused, goes into the audit trail with the user, the device and what was done
//! (names and ids, never a code or a token), before the answer is sent. A change's
//! entry is stored in the change's own transaction ([`write_entry`]); a listing's, a
//! refusal's and a failure's on their own.

use actix_web::guard::GuardContext;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::admin::{self, AdminError};
use crate::config::AdminApi;
use crate::error::ApiError;
use crate::policy::{self, Principal};
use crate::startup::AppState;
use crate::storage::{Audit, Role};
use crate::web::audit::{self, action};

/// Whether `/v1/admin/*` exists for this request (a route guard: when it does not, the
/// request answers 404 like any unknown route). `loopback` asks for the client address
/// after proxy resolution, so a request relayed by a proxy on this machine is not
/// taken for a local one.
pub fn enabled(ctx: &GuardContext<'_>) -> bool {
    let Some(state) = ctx.app_data::<web::Data<AppState>>() else {
        return false;
    };
    match state.settings.admin_api {
        AdminApi::Off => false,
        AdminApi::On => true,
        AdminApi::Loopback => {
            let head = ctx.head();
            crate::net::client_addr_of(head.peer_addr, &head.headers, &state.settings)
                .is_some_and(|ip| ip.is_loopback())
        }
    }
}

/// Lets only admins through; a refusal is written to the audit trail first.
async fn only_admin(
    req: &HttpRequest,
    p: &Principal,
    state: &web::Data<AppState>,
) -> Result<(), ApiError> {
    if policy::may_administer(p) {
        return Ok(());
    }
    let scope = format!("{} {}", req.method(), req.path());
    audit::record_api(
        state,
        p,
        crate::net::client_addr(req),
        action::ADMIN_REFUSED,
        scope,
    )
    .await
    .map_err(crate::web::export::api_error)?;
    Err(ApiError::Forbidden("only an admin may do this".into()))
}

/// The entry of an admin's change, for the storage to store with the change.
fn write_entry(req: &HttpRequest, p: &Principal, what: &str, scope: &str) -> Audit {
    audit::api_entry(
        p,
        crate::net::client_addr(req),
        what,
        format!("api {scope}"),
    )
}

/// Gives back the outcome of an admin's change whose entry went with it
/// ([`write_entry`]); a change that failed stored nothing, so its entry (with its
/// status) is written here. A call whose entry cannot be written fails.
async fn audited_write<T>(
    req: &HttpRequest,
    p: &Principal,
    state: &web::Data<AppState>,
    what: &str,
    scope: String,
    outcome: Result<T, ApiError>,
) -> Result<T, ApiError> {
    match outcome {
        Ok(v) => Ok(v),
        Err(e) => audited(req, p, state, what, scope, Err(e)).await,
    }
}

/// Writes what an admin's call did (or tried: a failure says its status), then gives
/// back its outcome. A call whose entry cannot be written fails.
async fn audited<T>(
    req: &HttpRequest,
    p: &Principal,
    state: &web::Data<AppState>,
    what: &str,
    scope: String,
    outcome: Result<T, ApiError>,
) -> Result<T, ApiError> {
    use actix_web::ResponseError;
    let scope = match &outcome {
        Ok(_) => format!("api {scope}"),
        Err(e) => format!("api {scope} failed={}", e.status_code().as_u16()),
    };
    audit::record_api(state, p, crate::net::client_addr(req), what, scope)
        .await
        .map_err(crate::web::export::api_error)?;
    outcome
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::BadName | AdminError::NeedsTeam(_) | AdminError::NoDashboard => {
                ApiError::Unprocessable(e.to_string())
            }
            AdminError::NoUser(_) => ApiError::NotFound,
            AdminError::Storage(e) => e.into(),
            AdminError::NoRandom(e) => e.into(),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub team: Option<String>,
}

pub async fn users(
    req: HttpRequest,
    p: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_admin(&req, &p, &state).await?;
    let storage = state.storage.clone();
    let outcome = web::block(move || storage.users())
        .await
        .map_err(ApiError::from)
        .and_then(|r| r.map_err(ApiError::from));
    let users = audited(&req, &p, &state, action::LIST_USERS, String::new(), outcome).await?;
    Ok(HttpResponse::Ok().json(users))
}

pub async fn add_user(
    req: HttpRequest,
    p: Principal,
    body: web::Json<NewUser>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_admin(&req, &p, &state).await?;
    let minutes = state.settings.enrolment_code_minutes;
    let storage = state.storage.clone();
    let b = body.into_inner();
    let scope = format!("user={} role={}", b.name, b.role.as_str());
    let entry = write_entry(&req, &p, action::ADD_USER, &scope);
    let outcome = web::block(move || {
        admin::add_user_audited(
            storage.as_ref(),
            &b.name,
            b.role,
            b.team.as_deref(),
            minutes,
            Some(&entry),
        )
    })
    .await
    .map_err(ApiError::from)
    .and_then(|r| r.map_err(ApiError::from));
    let enrolment = audited_write(&req, &p, &state, action::ADD_USER, scope, outcome).await?;
    Ok(HttpResponse::Created().json(enrolment))
}

pub async fn new_code(
    req: HttpRequest,
    p: Principal,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_admin(&req, &p, &state).await?;
    let minutes = state.settings.enrolment_code_minutes;
    let storage = state.storage.clone();
    let name = name.into_inner();
    let scope = format!("user={name}");
    let entry = write_entry(&req, &p, action::ENROLMENT_CODE, &scope);
    let outcome =
        web::block(move || admin::new_code_audited(storage.as_ref(), &name, minutes, Some(&entry)))
            .await
            .map_err(ApiError::from)
            .and_then(|r| r.map_err(ApiError::from));
    let enrolment = audited_write(&req, &p, &state, action::ENROLMENT_CODE, scope, outcome).await?;
    Ok(HttpResponse::Ok().json(enrolment))
}

pub async fn disable_user(
    req: HttpRequest,
    p: Principal,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_admin(&req, &p, &state).await?;
    let storage = state.storage.clone();
    let name = name.into_inner();
    let shown = name.clone();
    let scope = format!("user={name}");
    let entry = write_entry(&req, &p, action::DISABLE_USER, &scope);
    let outcome = web::block(move || storage.set_user_disabled_audited(&name, true, Some(&entry)))
        .await
        .map_err(ApiError::from)
        .and_then(|r| r.map_err(ApiError::from))
        .and_then(|found| {
            if found {
                Ok(())
            } else {
                Err(ApiError::NotFound)
            }
        });
    audited_write(&req, &p, &state, action::DISABLE_USER, scope, outcome).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "user": shown, "disabled": true })))
}

pub async fn devices(
    req: HttpRequest,
    p: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_admin(&req, &p, &state).await?;
    let storage = state.storage.clone();
    let outcome = web::block(move || storage.devices())
        .await
        .map_err(ApiError::from)
        .and_then(|r| r.map_err(ApiError::from));
    let devices = audited(
        &req,
        &p,
        &state,
        action::LIST_DEVICES,
        String::new(),
        outcome,
    )
    .await?;
    Ok(HttpResponse::Ok().json(devices))
}

/// The optional body of a revocation: `{"wipe": true}` also orders a wipe.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    #[serde(default)]
    pub wipe: bool,
}

pub async fn revoke_device(
    req: HttpRequest,
    p: Principal,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_admin(&req, &p, &state).await?;
    let scope = format!("device={}", id.as_str());
    // No body is a plain revocation (as before wipe orders existed); a body that is
    // not `{"wipe": bool}` is refused rather than read as "no wipe".
    let revoke: Result<Revoke, ApiError> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Revoke::default())
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("expected {{\"wipe\": true|false}}: {e}")))
    };
    let wipe = revoke.as_ref().is_ok_and(|r| r.wipe);
    let act = if wipe {
        action::WIPE_DEVICE
    } else {
        action::REVOKE_DEVICE
    };
    let entry = write_entry(&req, &p, act, &scope);
    let outcome = match (revoke, id.parse::<i64>()) {
        (Err(e), _) => Err(e),
        (_, Err(_)) => Err(ApiError::NotFound),
        (Ok(_), Ok(id)) => {
            let storage = state.storage.clone();
            web::block(move || {
                let now = chrono::Utc::now();
                admin::revoke_device_audited(storage.as_ref(), id, wipe, now, Some(&entry))
            })
            .await
            .map_err(ApiError::from)
            .and_then(|r| r.map_err(ApiError::from))
            .and_then(|found| {
                if found {
                    Ok(id)
                } else {
                    Err(ApiError::NotFound)
                }
            })
        }
    };
    let id = audited_write(&req, &p, &state, act, scope, outcome).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "device": id, "revoked": true, "wipe": wipe })))
}
