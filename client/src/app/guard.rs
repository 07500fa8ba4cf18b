//! The wall around every request, in one place (a middleware, so no handler can forget
//! it):
//!
//! - `Host` must be exactly `127.0.0.1:PORT`: a DNS name that a web page rebinds to
//!   127.0.0.1 carries its own name, so its requests are refused (421);
//! - an `Origin`, when the browser sends one, must be this app's (403): another page's
//!   form or fetch cannot act here;
//! - every path but the launch link needs this launch's session cookie (403): another
//!   local user, or a program, connecting to the port has nothing to show;
//! - every answer, refusals included, is `no-store` (pages hold case data), never
//!   framed, never sniffed, under a policy that runs no script and loads nothing from
//!   elsewhere (the dashboard's).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use super::state::AppState;
use super::{LAUNCH_PATH, cookies};

/// The dashboard's content security policy.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    ForeignHost,
    ForeignOrigin,
    NoSession,
}

/// Checks a request's `Host`, `Origin` and session cookie.
pub fn check(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    cookie: Option<&str>,
) -> Result<(), Refusal> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if host != Some(state.host().as_str()) {
        return Err(Refusal::ForeignHost);
    }
    let mut origins = headers.get_all(header::ORIGIN);
    if let Some(origin) = origins.next()
        && (origin.to_str().ok() != Some(state.origin().as_str()) || origins.next().is_some())
    {
        return Err(Refusal::ForeignOrigin);
    }
    if path == LAUNCH_PATH {
        return Ok(());
    }
    match cookie {
        Some(token) if state.session(token).is_some() => Ok(()),
        _ => Err(Refusal::NoSession),
    }
}

/// Adds the headers every answer carries.
pub fn secure_headers(headers: &mut HeaderMap) {
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, CSP),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// The middleware: refuses what [`check`] refuses, counts what passes as use of the
/// app (the idle lock), and adds [`secure_headers`] to every answer.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(actix_web::error::ErrorInternalServerError("no app state"));
    };
    let cookie = req
        .cookie(&cookies::session_name(state.port))
        .map(|c| c.value().to_string());
    let verdict = check(&state, req.headers(), req.path(), cookie.as_deref());
    let mut res = match verdict {
        Err(refusal) => {
            let resp = match refusal {
                // 421 Misdirected Request: this server does not answer for that name.
                Refusal::ForeignHost => HttpResponse::MisdirectedRequest().body("wrong host"),
                Refusal::ForeignOrigin => HttpResponse::Forbidden().body("wrong origin"),
                Refusal::NoSession => HttpResponse::Forbidden()
                    .content_type("text/plain; charset=utf-8")
                    .body("Open the app with the link `intake app` printed."),
            };
            req.into_response(resp).map_into_boxed_body()
        }
        Ok(()) => {
            state.touch();
            next.call(req).await?.map_into_boxed_body()
        }
    };
    secure_headers(res.headers_mut());
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderName;

    fn state() -> AppState {
        let config = super::super::Config {
            home: std::path::PathBuf::from("/nonexistent"),
            idle: super::super::DEFAULT_IDLE,
        };
        AppState::new(config, 4321, "s3cret")
    }

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn host_origin_and_session_are_checked() {
        let s = state();
        let host = (header::HOST, "127.0.0.1:4321");
        let ok = headers(std::slice::from_ref(&host));
        assert_eq!(check(&s, &ok, "/launch", None), Ok(()));
        assert_eq!(check(&s, &ok, "/", None), Err(Refusal::NoSession));
        let session = s.launch("s3cret").unwrap().unwrap();
        assert_eq!(check(&s, &ok, "/", Some(&session.token)), Ok(()));
        assert_eq!(check(&s, &ok, "/", Some("nope")), Err(Refusal::NoSession));
        for bad_host in [
            "localhost:4321",
            "127.0.0.1:4322",
            "evil.example:4321",
            "127.0.0.1",
        ] {
            let h = headers(&[(header::HOST, bad_host)]);
            assert_eq!(
                check(&s, &h, "/", Some(&session.token)),
                Err(Refusal::ForeignHost)
            );
        }
        assert_eq!(
            check(&s, &HeaderMap::new(), "/launch", None),
            Err(Refusal::ForeignHost)
        );
        let same = headers(&[host.clone(), (header::ORIGIN, "http://127.0.0.1:4321")]);
        assert_eq!(check(&s, &same, "/", Some(&session.token)), Ok(()));
        for bad_origin in [
            "http://evil.example",
            "null",
            "http://127.0.0.1:4322",
            "https://127.0.0.1:4321",
        ] {
            let h = headers(&[host.clone(), (header::ORIGIN, bad_origin)]);
            assert_eq!(
                check(&s, &h, "/", Some(&session.token)),
                Err(Refusal::ForeignOrigin)
            );
        }
    }

    #[test]
    fn the_secret_works_once() {
        let s = state();
        assert!(s.launch("wrong").unwrap().is_none());
        assert!(s.launch("s3cret").unwrap().is_some());
        assert!(s.launch("s3cret").unwrap().is_none());
    }
}
