//! `POST /v1/token`: a device trades its token for a new one. A token lives as long as
//! its device unless rotated; rotating limits what a token copied from a phone, a backup
//! or a proxy's log is worth. The old token keeps working until the device first uses
//! the new one (which ends it at once) or for `TOKEN_GRACE_DAYS`, so an answer cut on a
//! 2G link never locks a device out with its unsynced records.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use intake_shared::protocol::{TOKEN_GRACE_DAYS, TokenAnswer};

use crate::auth;
use crate::error::ApiError;
use crate::policy::Principal;
use crate::startup::AppState;

pub async fn rotate(
    req: HttpRequest,
    p: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // The extractor found the device by this very header.
    let used = auth::bearer(&req).ok_or_else(|| {
        ApiError::Unauthorized(
            "unauthenticated",
            "this request needs a device token".into(),
        )
    })?;
    let used_hash = auth::hash_secret(&used);
    let (token, new_hash) = auth::new_token()?;
    let grace_until = Utc::now() + Duration::days(TOKEN_GRACE_DAYS);
    let storage = state.storage.clone();
    let device = p.device.id;
    let rotated =
        web::block(move || storage.rotate_token(device, used_hash, new_hash, grace_until))
            .await??;
    if !rotated {
        // Revoked between the lookup and now.
        return Err(ApiError::Unauthorized(
            "revoked",
            "this device is not enrolled, was revoked, or its user was disabled: ask an admin"
                .into(),
        ));
    }
    tracing::info!(device, "device token rotated");
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(TokenAnswer {
            token,
            device_id: device,
        }))
}
