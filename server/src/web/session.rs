//! Who is using the dashboard: the [`Signed`] extractor finds the session of the
//! request's cookie (the token is looked up by its hash on every request, so signing
//! out, disabling the user or revoking her dashboard device ends it at once), slides
//! its idle expiry, and records the user and session in the request's span.
//! [`Visitor`] is the same for pages that need no session (sign-in): language and
//! address only.

use std::net::IpAddr;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::{Duration, Utc};
use intake_shared::Lang;

use super::cookies;
use super::errors::WebError;
use crate::auth::hash_secret;
use crate::policy::Principal;
use crate::startup::AppState;
use crate::storage::{Role, WebSession};

/// A session ends after this long without a request…
pub const IDLE: Duration = Duration::minutes(60);
/// …and at the latest this long after sign-in.
pub const LONGEST: Duration = Duration::hours(12);

/// A signed-in supervisor or admin.
pub struct Signed {
    pub session: WebSession,
    pub lang: Lang,
    /// Whether the server speaks TLS (cookies are then `Secure`).
    pub secure: bool,
    pub peer: Option<IpAddr>,
    /// The path and query of this request (the language switch comes back to it).
    pub here: String,
}

impl Signed {
    /// The user acting through her dashboard device: every change the dashboard makes
    /// is judged by the same policy as a change pushed from a phone.
    pub fn principal(&self) -> Principal {
        Principal {
            user: self.session.user.clone(),
            device: self.session.device.clone(),
        }
    }

    pub fn role(&self) -> Role {
        self.session.user.role
    }

    /// Refuses anyone but a supervisor of a team.
    pub fn supervisor(&self) -> Result<(), WebError> {
        match (self.session.user.role, &self.session.user.team) {
            (Role::Supervisor, Some(_)) => Ok(()),
            _ => Err(WebError::Forbidden(self.lang)),
        }
    }

    pub fn admin(&self) -> Result<(), WebError> {
        match self.session.user.role {
            Role::Admin => Ok(()),
            _ => Err(WebError::Forbidden(self.lang)),
        }
    }

    /// Checks a state-changing form's token against the session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        if super::csrf::matches(&self.session.csrf, sent) {
            Ok(())
        } else {
            Err(WebError::Csrf(self.lang))
        }
    }
}

/// The client address: the socket's peer, or behind a trusted proxy the address it
/// forwards (`crate::net`).
pub fn peer(req: &HttpRequest) -> Option<IpAddr> {
    crate::net::client_addr(req)
}

fn here(req: &HttpRequest) -> String {
    match req.uri().query() {
        Some(q) if !q.is_empty() => format!("{}?{q}", req.path()),
        _ => req.path().to_string(),
    }
}

impl FromRequest for Signed {
    type Error = WebError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req.cookie(cookies::SESSION).map(|c| c.value().to_string());
        let lang = cookies::lang_of(req);
        let peer = peer(req);
        let here = here(req);
        // Only a GET comes back after signing in; a form posted with an expired
        // session goes to the page it came from.
        let next = if req.method() == actix_web::http::Method::GET {
            here.clone()
        } else {
            "/".to_string()
        };
        Box::pin(async move {
            let state =
                state.ok_or_else(|| WebError::internal(lang, anyhow::anyhow!("no app state")))?;
            let secure = cookies::secure(&state.settings);
            let token = token
                .filter(|t| !t.is_empty())
                .ok_or_else(|| WebError::SignIn { next: next.clone() })?;
            let hash = hash_secret(&token);
            let storage = state.storage.clone();
            let now = Utc::now();
            let session = web::block(move || -> crate::storage::Result<Option<WebSession>> {
                let Some(s) = storage.session(hash, now)? else {
                    return Ok(None);
                };
                // Sliding idle expiry, never past the longest a session may live; written
                // at most once a minute, not on every page (each write is a disk sync).
                let expires = (now + IDLE).min(s.created_at + LONGEST);
                if expires - s.expires_at >= Duration::minutes(1) {
                    match storage.extend_session(s.id, expires) {
                        // Disk full (issue 13): reading the dashboard must still work
                        // while an administrator frees space; the session just keeps
                        // its current expiry.
                        Err(crate::storage::StorageError::Full(_)) => {
                            tracing::warn!(
                                "storage full: a session's idle expiry was not extended"
                            );
                        }
                        other => other?,
                    }
                }
                Ok(Some(s))
            })
            .await??
            .ok_or(WebError::SignIn { next })?;
            let span = tracing::Span::current();
            span.record("user", session.user.name.as_str());
            span.record("device", session.device.id);
            span.record("session", session.id);
            Ok(Signed {
                session,
                lang,
                secure,
                peer,
                here,
            })
        })
    }
}

/// Someone not (necessarily) signed in: the sign-in and set-password pages.
pub struct Visitor {
    pub lang: Lang,
    pub secure: bool,
    pub peer: Option<IpAddr>,
    pub here: String,
}

impl FromRequest for Visitor {
    type Error = WebError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let secure = req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|s| cookies::secure(&s.settings));
        std::future::ready(Ok(Visitor {
            lang: cookies::lang_of(req),
            secure,
            peer: peer(req),
            here: here(req),
        }))
    }
}
