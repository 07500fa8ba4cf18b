//! `POST /v1/wiped`: a device under a wipe order reports that it destroyed its store
//! (issue 12, lost phones). It authenticates with the token it still holds in memory —
//! revoked, so the `Principal` extractor would refuse it — and the server records the
//! time of the first report. Repeating the report changes nothing; after it the token
//! is dead like any revoked one (the wipe answer is no longer given).

use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth;
use crate::error::ApiError;
use crate::startup::AppState;

pub async fn wiped(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let token = auth::bearer(&req).ok_or_else(|| {
        ApiError::Unauthorized(
            "unauthenticated",
            "this request needs a device token (Authorization: Bearer …)".into(),
        )
    })?;
    let hash = auth::hash_secret(&token);
    let storage = state.storage.clone();
    let device = web::block(move || storage.confirm_wipe(hash, chrono::Utc::now()))
        .await??
        .ok_or_else(|| {
            ApiError::Unauthorized("revoked", "no wipe was ordered for this device".into())
        })?;
    tracing::info!(device, "device reported its store wiped");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "device": device, "wiped": true })))
}
