//! Errors of the HTTP API. Each maps to a status code and a JSON body
//! `{"error": code, "message": text}`; bad input is always a 4xx with a message, and an
//! unexpected failure is logged with its cause but answered without details. A server
//! too busy for more heavy work answers 503 with a `Retry-After`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// How long a device waits before it tries again after `507 storage full`: freeing
/// space takes a person, so sooner is wasted.
pub const STORAGE_FULL_RETRY_SECS: u64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{1}")]
    Unauthorized(&'static str, String),
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// Protocol version 7: a pushed change's abbreviated dependency could not be put
    /// back. Nothing was judged or stored; the device sends the request again with its
    /// dependencies in full (409 `send_in_full`).
    #[error("{0}")]
    SendInFull(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    UpgradeRequired(String),
    #[error("too many attempts; try again in {0} seconds")]
    TooManyRequests(u64),
    /// Every permit for heavy work is taken: nothing was done, try again in that many
    /// seconds.
    #[error("the server is busy with other large syncs; try again in {0} seconds")]
    Busy(u64),
    /// Disk full (issue 13): the server's storage is full. Nothing of the request was
    /// stored; the same request succeeds once an administrator frees space. Answered
    /// `507 Insufficient Storage` with a `Retry-After`: devices keep what they hold and
    /// try again later. The string names the place to free (for the operator's log).
    #[error(
        "the server's storage is full: nothing of this request was stored; try again in {STORAGE_FULL_RETRY_SECS} seconds"
    )]
    StorageFull(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(code, _) => code,
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Conflict(_) => "conflict",
            ApiError::SendInFull(_) => "send_in_full",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::UpgradeRequired(_) => "update_the_app",
            ApiError::TooManyRequests(_) => "rate_limited",
            ApiError::Busy(_) => "busy",
            ApiError::StorageFull(_) => "storage_full",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(..) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) | ApiError::SendInFull(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::UpgradeRequired(_) => StatusCode::UPGRADE_REQUIRED,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(e) = self {
            // The cause chain of our own errors never holds record content or tokens.
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        if let ApiError::StorageFull(place) = self {
            // For the operator: what to do, and where. No record content: the cause is
            // SQLite's or the file system's message, and `place` a path.
            tracing::error!(
                "storage full: free space on {place}; writes are refused (507) until then"
            );
        }
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::TooManyRequests(secs) | ApiError::Busy(secs) = self {
            resp.insert_header(("Retry-After", secs.to_string()));
        }
        if let ApiError::StorageFull(_) = self {
            resp.insert_header(("Retry-After", STORAGE_FULL_RETRY_SECS.to_string()));
        }
        resp.json(serde_json::json!({ "error": self.code(), "message": self.to_string() }))
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        match e {
            crate::storage::StorageError::Exists(what) => {
                ApiError::Conflict(format!("{what} already exists"))
            }
            crate::storage::StorageError::Full(cause) => ApiError::StorageFull(format!(
                "the disk that holds the server's data directory ({cause})"
            )),
            other => ApiError::Internal(anyhow::Error::new(other).context("Failed to use storage")),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(anyhow::anyhow!("a blocking task failed: {e}"))
    }
}
