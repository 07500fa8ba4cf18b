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
    /// No successful sync for the server's limit (issue 12): the cases stay closed
    /// until a sync succeeds; the page links to the sync page.
    #[error("locked: no successful sync for {1} days")]
    SyncLocked(Lang, u32),
}

impl AppError {
    /// An unexpected failure — except a store locked for lack of a sync, which is
    /// expected and said plainly wherever a page meets it.
    pub fn internal(lang: Lang, e: impl Into<anyhow::Error>) -> AppError {
        let e = e.into();
        if let Some(crate::StoreError::Locked { days }) = e.downcast_ref::<crate::StoreError>() {
            return AppError::SyncLocked(lang, *days);
        }
        AppError::Internal(lang, e)
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
            AppError::SyncLocked(..) => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Locked = self {
            return super::see_other("/unlock");
        }
        if let AppError::SyncLocked(lang, days) = self {
            let lang = *lang;
            let detail =
                intake_web::i18n::tf(lang, Msg::SyncLocked, &[("days", &days.to_string())]);
            let title = t(lang, Msg::Sync);
            return HttpResponse::build(self.status_code())
                .content_type("text/html; charset=utf-8")
                .body(
                    super::pages::locked_page(
                        lang,
                        "/sync",
                        title,
                        maud::html! {
                            h1 { (title) }
                            p.error role="alert" { (detail) }
                            p { a href="/sync" { (t(lang, Msg::SyncNow)) } }
                        },
                    )
                    .into_string(),
                );
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
            AppError::Locked | AppError::SyncLocked(..) => unreachable!("answered above"),
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
