//! `GET /health` (is the server up and its store readable) and `GET /openapi.json`.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::startup::AppState;

pub async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let storage = state.storage.clone();
    web::block(move || storage.users().map(|_| ())).await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": intake_shared::protocol::PROTOCOL_VERSION,
    })))
}

/// The OpenAPI description of the JSON endpoints (`docs/openapi.json`).
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}
