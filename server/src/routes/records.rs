//! The supervisors' read API: `GET /v1/me`, `GET /v1/records` (records the caller may
//! see) and `GET /v1/records/{id}`. A record the caller may not see answers exactly
//! like a missing one: 404 with the same body.

use actix_web::{HttpResponse, web};
use intake_shared::{FormRegistry, Record, RecordId};

use crate::error::ApiError;
use crate::policy::{self, Principal};
use crate::startup::AppState;

pub async fn me(p: Principal) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "user": p.user.name,
        "role": p.user.role,
        "team": p.user.team,
        "device_id": p.device.id,
    }))
}

pub async fn list(p: Principal, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let storage = state.storage.clone();
    let scope = policy::scope(&p);
    let metas = web::block(move || storage.record_metas(&scope)).await??;
    let rows: Vec<_> = metas
        .into_iter()
        .map(|(m, status)| {
            serde_json::json!({
                "id": m.id.to_string(), "owner": m.owner, "team": m.team,
                "assigned_to": m.assigned_to, "status": status,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

pub async fn get(
    p: Principal,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // A malformed id is as missing as any other.
    let id: RecordId = id.parse().map_err(|_| ApiError::NotFound)?;
    let storage = state.storage.clone();
    let stored = web::block(move || storage.record(id)).await??;
    let stored = stored
        .filter(|s| policy::may_read(&p, &s.meta))
        .ok_or(ApiError::NotFound)?;
    let json = web::block(move || -> Result<serde_json::Value, ApiError> {
        let mut record = Record::load(&stored.doc, FormRegistry::builtin()).map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("Failed to read a stored record"))
        })?;
        let mut json = record.to_json();
        json["owner"] = stored.meta.owner.into();
        json["team"] = stored.meta.team.into();
        Ok(json)
    })
    .await??;
    Ok(HttpResponse::Ok().json(json))
}
