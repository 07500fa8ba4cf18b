//! What the app answers when something is wrong: a page in the user's language, never
//! a stack trace. A locked store is a redirect to the unlock page; an unexpected
//! failure is logged to the terminal without record content and shown without details.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use intake_shared::Lang;
use intake_web::i18n::{Msg, t};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The store is closed: unlock first.
    #[error("locked")]
    Locked,
    #[error("not found")]
    NotFound,
    /// Bad input, with a message already in the user's language.
    #[error("{1}")]
    BadRequest(Lang, String),
    /// A form without the session's CSRF token.
    #[error("stale form")]
    Csrf(Lang),
    #[error("internal error")]
    Internal(Lang, #[source] anyhow::Error),
}

impl AppError {
    pub fn internal(lang: Lang, e: impl Into<anyhow::Error>) -> AppError {
        AppError::Internal(lang, e.into())
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Locked => StatusCode::SEE_OTHER,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(..) => StatusCode::BAD_REQUEST,
            AppError::Csrf(_) => StatusCode::FORBIDDEN,
            AppError::Internal(..) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Locked = self {
            return super::see_other("/unlock");
        }
        if let AppError::Internal(_, e) = self {
            // Our own errors' causes never hold record content or passphrases.
            eprintln!("intake app: a request failed: {e:#}");
        }
        let (lang, title, detail) = match self {
            AppError::NotFound => (Lang::Sq, t(Lang::Sq, Msg::NotFound), String::new()),
            AppError::BadRequest(l, m) => (*l, t(*l, Msg::ErrorTitle), m.clone()),
            AppError::Csrf(l) => (*l, t(*l, Msg::FormExpired), String::new()),
            AppError::Internal(l, _) => (*l, t(*l, Msg::ErrorTitle), String::new()),
            AppError::Locked => unreachable!("answered above"),
        };
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(super::pages::message_page(lang, title, &detail).into_string())
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Internal(Lang::En, anyhow::anyhow!("a blocking task failed: {e}"))
    }
}
