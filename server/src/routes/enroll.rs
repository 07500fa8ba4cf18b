//! `POST /v1/enroll`: a device trades a one-time enrolment code for a token, and binds
//! its Automerge actor id to itself. Attempts are limited per client address and per
//! code (`auth::AttemptLimiter`); a right code does not count.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use crate::auth;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::storage::{NewDevice, StorageError};
use intake_shared::protocol::{DeviceLimits, EnrolAnswer, EnrolRequest, PROTOCOL_VERSION};

pub async fn enroll(
    req: HttpRequest,
    body: web::Json<EnrolRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let addr = crate::net::client_addr(&req).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let body = body.into_inner();
    let actor: [u8; 16] = hex::decode(body.actor.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            ApiError::BadRequest("actor must be 16 bytes in hex (32 characters)".into())
        })?;
    if body.label.chars().count() > 100 {
        return Err(ApiError::BadRequest("label: at most 100 characters".into()));
    }
    let code_hash = auth::hash_secret(&auth::normalize_code(&body.code));
    // The slot is taken before the code is looked up, in one step with the check: many
    // guesses at once from one address cannot all slip past a check made before any of
    // them was counted.
    // Off the async workers: shared by several servers, the counters are in the database.
    let limits = state.clone();
    let attempt = web::block(move || limits.enrol_limiter.reserve(addr, code_hash)).await??;
    let (token, token_hash) = auth::new_token()?;
    let storage = state.storage.clone();
    let label = body.label.clone();
    let found = web::block(move || {
        storage.enrol(
            code_hash,
            Utc::now(),
            NewDevice {
                token_hash,
                actor,
                label,
            },
        )
    })
    .await?;
    let (user, device) = match found {
        Ok(Some(found)) => {
            let limits = state.clone();
            web::block(move || limits.enrol_limiter.succeeded(attempt)).await?;
            found
        }
        Ok(None) => {
            return Err(ApiError::Unauthorized(
                "bad_code",
                "this enrolment code is unknown, used or expired: ask an admin for a new one"
                    .into(),
            ));
        }
        Err(StorageError::ActorTaken) => {
            return Err(ApiError::Conflict(
                "this device was enrolled for another user before: reset the app's store (a \
                 new store gets a new identity) and enrol again"
                    .into(),
            ));
        }
        Err(StorageError::Exists(_)) => {
            return Err(ApiError::Conflict(
                "this device is already enrolled; an admin can revoke it first".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(
        device = device.id,
        role = user.role.as_str(),
        "device enrolled"
    );
    let limits = &state.settings.limits;
    let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    Ok(HttpResponse::Ok().json(EnrolAnswer {
        token,
        device_id: device.id,
        user: user.name,
        role: user.role.as_str().to_string(),
        team: user.team,
        protocol: PROTOCOL_VERSION,
        limits: Some(DeviceLimits {
            max_records_per_request: clamp(limits.max_records_per_request),
            max_body_bytes: clamp(limits.max_body_bytes),
        }),
        store: Some(state.storage.store_id().to_string()),
        lock_after_days: Some(state.settings.lock_after_days),
    }))
}
