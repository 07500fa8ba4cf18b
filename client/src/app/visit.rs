//! [`Visit`]: what a handler knows about the request it answers — the app's state, the
//! session the guard admitted (its CSRF token), the language and the current path —
//! and the checks every handler shares (CSRF, an open store).

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use intake_shared::Lang;

use super::cookies;
use super::errors::AppError;
use super::pages::Viewer;
use super::state::{AppState, Session};

pub struct Visit {
    pub state: web::Data<AppState>,
    pub session: Session,
    pub lang: Lang,
    /// The path and query of this request (the language switch comes back to it).
    pub here: String,
}

impl Visit {
    /// Checks a state-changing form's token against the session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), AppError> {
        if super::csrf::matches(&self.session.csrf, sent) {
            Ok(())
        } else {
            Err(AppError::Csrf(self.lang))
        }
    }

    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            lang: self.lang,
            here: &self.here,
            csrf: &self.session.csrf,
        }
    }

    /// Runs `f` on the open store on a blocking thread; [`AppError::Locked`] when the
    /// store is closed (the answer is then the unlock page).
    pub async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::Store) -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let state = self.state.clone();
        web::block(move || state.with_store(f))
            .await?
            .ok_or(AppError::Locked)
    }
}

impl FromRequest for Visit {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let lang = cookies::lang_of(req);
        let here = match req.uri().query() {
            Some(q) if !q.is_empty() => format!("{}?{q}", req.path()),
            _ => req.path().to_string(),
        };
        let visit = (|| {
            let state = req.app_data::<web::Data<AppState>>()?.clone();
            let token = req.cookie(&cookies::session_name(state.port))?;
            // The guard admitted the request, so the session exists; looking it up
            // again gives the handler its CSRF token.
            let session = state.session(token.value())?;
            Some(Visit {
                state,
                session,
                lang,
                here,
            })
        })();
        std::future::ready(visit.ok_or(AppError::Csrf(lang)))
    }
}
