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
    /// Disk full (issue 13): nothing of the request was written. Answered 507 with a
    /// page that says so, not the generic error.
    #[error("storage full")]
    StorageFull(Lang),
    #[error("internal error")]
    Internal(Lang, #[source] anyhow::Error),
    /// The same form was posted at once more than once and another post was stored
    /// first: answered as that one was (a redirect to this local path).
    #[error("answered before")]
    AnsweredBefore(String),
}

impl WebError {
    pub fn internal(lang: Lang, e: impl Into<anyhow::Error>) -> WebError {
        WebError::Internal(lang, e.into())
    }

    fn lang(&self) -> Lang {
        match self {
            WebError::SignIn { .. } | WebError::AnsweredBefore(_) => Lang::Sq,
            WebError::Forbidden(l)
            | WebError::NotFound(l)
            | WebError::BadRequest(l, _)
            | WebError::Csrf(l)
            | WebError::TooMany(l, _)
            | WebError::StorageFull(l)
            | WebError::Internal(l, _) => *l,
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::SignIn { .. } | WebError::AnsweredBefore(_) => StatusCode::SEE_OTHER,
            WebError::Forbidden(_) | WebError::Csrf(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(..) => StatusCode::BAD_REQUEST,
            WebError::TooMany(..) => StatusCode::TOO_MANY_REQUESTS,
            WebError::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
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
        if let WebError::AnsweredBefore(to) = self {
            return HttpResponse::SeeOther()
                .insert_header(("Location", to.as_str()))
                .insert_header(("Cache-Control", "no-store"))
                .finish();
        }
        if let WebError::Internal(_, e) = self {
            // Our own errors' causes never hold record content, tokens or passwords.
            tracing::error!(error = format!("{e:#}"), "dashboard request failed");
        }
        if let WebError::StorageFull(_) = self {
            tracing::error!(
                "storage full: free space on the server's data directory; dashboard writes are refused until then"
            );
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
            WebError::StorageFull(_) => (
                t(lang, Msg::ErrorTitle),
                t(lang, Msg::StorageFull).to_string(),
            ),
            _ => (t(lang, Msg::ServerError), String::new()),
        };
        let body = super::pages::error_page(lang, title, &detail);
        let mut resp = HttpResponse::build(self.status_code());
        if let WebError::TooMany(_, secs) = self {
            resp.insert_header(("Retry-After", secs.to_string()));
        }
        if let WebError::StorageFull(_) = self {
            resp.insert_header((
                "Retry-After",
                crate::error::STORAGE_FULL_RETRY_SECS.to_string(),
            ));
        }
        super::html_headers(&mut resp);
        resp.body(body)
    }
}

impl From<crate::storage::StorageError> for WebError {
    fn from(e: crate::storage::StorageError) -> Self {
        if let crate::storage::StorageError::Full(_) = e {
            return WebError::StorageFull(Lang::En);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_a_507_page_that_says_so_in_the_users_language() {
        let e = WebError::from(crate::storage::StorageError::Full("SQLITE_FULL".into()));
        assert!(matches!(e, WebError::StorageFull(_)), "{e:?}");
        let resp = WebError::StorageFull(Lang::Sq).error_response();
        assert_eq!(resp.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(resp.headers().get("retry-after").unwrap(), "60");
        let body = actix_web::body::to_bytes(resp.into_body());
        let body = body_text(body);
        assert!(
            body.contains("Hapësira e ruajtjes së serverit është plot"),
            "{body}"
        );
    }

    fn body_text(
        body: impl std::future::Future<Output = Result<actix_web::web::Bytes, impl std::fmt::Debug>>,
    ) -> String {
        let bytes = actix_web::rt::System::new().block_on(body).unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
