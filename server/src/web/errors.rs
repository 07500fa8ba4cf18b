//! What the dashboard answers when something is wrong: a page in the user's language,
//! never a JSON body or a stack trace. Not signed in is a redirect to the sign-in page
//! (which comes back afterwards); a record the user may not see is "not found", exactly
//! like a missing one; an unexpected failure is logged with its cause and shown
//! without details.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use intake_shared::Lang;
use intake_web::i18n::{Msg, t};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No valid session: sign in, then come back to `next` (a local path).
    #[error("sign in first")]
    SignIn { next: String },
    #[error("forbidden")]
    Forbidden(Lang),
    #[error("not found")]
    NotFound(Lang),
    /// Bad input, with a message already in the user's language.
    #[error("{1}")]
    BadRequest(Lang, String),
    /// A form without its CSRF token, or with another session's.
    #[error("stale form")]
    Csrf(Lang),
    #[error("too many attempts")]
    TooMany(Lang, u64),
    #[error("internal error")]
    Internal(Lang, #[source] anyhow::Error),
}

impl WebError {
    pub fn internal(lang: Lang, e: impl Into<anyhow::Error>) -> WebError {
        WebError::Internal(lang, e.into())
    }

    fn lang(&self) -> Lang {
        match self {
            WebError::SignIn { .. } => Lang::Sq,
            WebError::Forbidden(l)
            | WebError::NotFound(l)
            | WebError::BadRequest(l, _)
            | WebError::Csrf(l)
            | WebError::TooMany(l, _)
            | WebError::Internal(l, _) => *l,
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::SignIn { .. } => StatusCode::SEE_OTHER,
            WebError::Forbidden(_) | WebError::Csrf(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(..) => StatusCode::BAD_REQUEST,
            WebError::TooMany(..) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(..) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let WebError::SignIn { next } = self {
            let to = format!("/login?next={}", super::encode(next));
            return HttpResponse::SeeOther()
                .insert_header(("Location", to))
                .insert_header(("Cache-Control", "no-store"))
                .finish();
        }
        if let WebError::Internal(_, e) = self {
            // Our own errors' causes never hold record content, tokens or passwords.
            tracing::error!(error = format!("{e:#}"), "dashboard request failed");
        }
        let lang = self.lang();
        let (title, detail) = match self {
            WebError::Forbidden(_) => (t(lang, Msg::Forbidden), String::new()),
            WebError::NotFound(_) => (t(lang, Msg::NotFound), String::new()),
            WebError::BadRequest(_, m) => (t(lang, Msg::ErrorTitle), m.clone()),
            WebError::Csrf(_) => (t(lang, Msg::FormExpired), String::new()),
            WebError::TooMany(_, secs) => (
                t(lang, Msg::ErrorTitle),
                intake_web::i18n::tf(
                    lang,
                    Msg::TooManyAttempts,
                    &[("n", &secs.div_ceil(60).to_string())],
                ),
            ),
            _ => (t(lang, Msg::ServerError), String::new()),
        };
        let body = super::pages::error_page(lang, title, &detail);
        let mut resp = HttpResponse::build(self.status_code());
        if let WebError::TooMany(_, secs) = self {
            resp.insert_header(("Retry-After", secs.to_string()));
        }
        super::html_headers(&mut resp);
        resp.body(body)
    }
}

impl From<crate::storage::StorageError> for WebError {
    fn from(e: crate::storage::StorageError) -> Self {
        WebError::Internal(
            Lang::En,
            anyhow::Error::new(e).context("Failed to use storage"),
        )
    }
}

impl From<actix_web::error::BlockingError> for WebError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        WebError::Internal(Lang::En, anyhow::anyhow!("a blocking task failed: {e}"))
    }
}
