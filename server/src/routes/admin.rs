//! The admin API: users and devices (the same operations as the `intake-server user`
//! and `device` commands). Only admins; anyone else gets 403.

use actix_web::{HttpResponse, web};

use crate::admin::{self, AdminError};
use crate::error::ApiError;
use crate::policy::{self, Principal};
use crate::startup::AppState;
use crate::storage::Role;

fn only_admin(p: &Principal) -> Result<(), ApiError> {
    if policy::may_administer(p) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only an admin may do this".into()))
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::BadName | AdminError::NeedsTeam(_) | AdminError::NoDashboard => {
                ApiError::Unprocessable(e.to_string())
            }
            AdminError::NoUser(_) => ApiError::NotFound,
            AdminError::Storage(e) => e.into(),
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

pub async fn users(p: Principal, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    only_admin(&p)?;
    let storage = state.storage.clone();
    Ok(HttpResponse::Ok().json(web::block(move || storage.users()).await??))
}

pub async fn add_user(
    p: Principal,
    body: web::Json<NewUser>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_admin(&p)?;
    let minutes = state.settings.enrolment_code_minutes;
    let storage = state.storage.clone();
    let b = body.into_inner();
    let enrolment = web::block(move || {
        admin::add_user(
            storage.as_ref(),
            &b.name,
            b.role,
            b.team.as_deref(),
            minutes,
        )
    })
    .await??;
    Ok(HttpResponse::Created().json(enrolment))
}

pub async fn new_code(
    p: Principal,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_admin(&p)?;
    let minutes = state.settings.enrolment_code_minutes;
    let storage = state.storage.clone();
    let enrolment = web::block(move || admin::new_code(storage.as_ref(), &name, minutes)).await??;
    Ok(HttpResponse::Ok().json(enrolment))
}

pub async fn disable_user(
    p: Principal,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_admin(&p)?;
    let storage = state.storage.clone();
    let name = name.into_inner();
    let shown = name.clone();
    if web::block(move || storage.set_user_disabled(&name, true)).await?? {
        Ok(HttpResponse::Ok().json(serde_json::json!({ "user": shown, "disabled": true })))
    } else {
        Err(ApiError::NotFound)
    }
}

pub async fn devices(p: Principal, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    only_admin(&p)?;
    let storage = state.storage.clone();
    Ok(HttpResponse::Ok().json(web::block(move || storage.devices()).await??))
}

/// The optional body of a revocation: `{"wipe": true}` also orders a wipe.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    #[serde(default)]
    pub wipe: bool,
}

pub async fn revoke_device(
    p: Principal,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_admin(&p)?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound)?;
    // No body is a plain revocation (as before wipe orders existed); a body that is
    // not `{"wipe": bool}` is refused rather than read as "no wipe".
    let revoke: Revoke = if body.iter().all(u8::is_ascii_whitespace) {
        Revoke::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("expected {{\"wipe\": true|false}}: {e}")))?
    };
    let wipe = revoke.wipe;
    let storage = state.storage.clone();
    let found = web::block(move || {
        if wipe {
            storage.order_wipe(id, chrono::Utc::now())
        } else {
            storage.revoke_device(id)
        }
    })
    .await??;
    if found {
        Ok(HttpResponse::Ok()
            .json(serde_json::json!({ "device": id, "revoked": true, "wipe": wipe })))
    } else {
        Err(ApiError::NotFound)
    }
}
