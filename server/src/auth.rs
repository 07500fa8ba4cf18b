//! Authentication: enrolment codes, device tokens, and the limiter on guessing.
//!
//! A device token is 32 bytes from the OS random source, shown to the device once (hex)
//! and stored only as its SHA-256; it travels only in `Authorization: Bearer …`. Every
//! request looks the token up again, so revoking a device or disabling a user takes
//! effect on the very next request. Enrolment codes are short (12 characters of
//! Crockford base32, 60 bits), one-time and short-lived; failed attempts are limited
//! per address and overall, in windows that expire, so a legitimate user is never
//! locked out for good.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::policy::Principal;
use crate::startup::AppState;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source is available");
    b
}

/// A new device token and its hash.
pub fn new_token() -> (String, [u8; 32]) {
    let token = hex::encode(random::<32>());
    let hash = hash_secret(&token);
    (token, hash)
}

/// A new enrolment code, formatted `XXXX-XXXX-XXXX`, and its hash.
pub fn new_enrolment_code() -> (String, [u8; 32]) {
    let bytes = random::<12>();
    let chars: String = bytes
        .iter()
        .map(|b| CROCKFORD[(b & 31) as usize] as char)
        .collect();
    let code = format!("{}-{}-{}", &chars[..4], &chars[4..8], &chars[8..]);
    let hash = hash_secret(&normalize_code(&code));
    (code, hash)
}

/// Codes are typed by people: case, dashes and spaces do not matter, and the
/// look-alikes Crockford base32 leaves out are read as what they resemble.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Limits failed attempts (enrolment codes, later passwords) per client address and
/// overall, in fixed windows.
#[derive(Debug)]
pub struct AttemptLimiter {
    window: Duration,
    per_address: u32,
    overall: u32,
    state: Mutex<(Instant, HashMap<IpAddr, u32>, u32)>,
}

impl AttemptLimiter {
    pub fn new(window: Duration, per_address: u32, overall: u32) -> AttemptLimiter {
        AttemptLimiter {
            window,
            per_address,
            overall,
            state: Mutex::new((Instant::now(), HashMap::new(), 0)),
        }
    }

    /// `Err(seconds to wait)` when this address (or everyone) has failed too often.
    pub fn check(&self, addr: IpAddr) -> Result<(), u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = s.0.elapsed();
        if elapsed >= self.window {
            *s = (Instant::now(), HashMap::new(), 0);
        }
        let wait = (self.window.saturating_sub(s.0.elapsed())).as_secs().max(1);
        if s.2 >= self.overall || s.1.get(&addr).copied().unwrap_or(0) >= self.per_address {
            return Err(wait);
        }
        Ok(())
    }

    pub fn failed(&self, addr: IpAddr) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *s.1.entry(addr).or_insert(0) += 1;
        s.2 += 1;
    }
}

/// The bearer token of a request, if it has one.
pub(crate) fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_string())
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))?;
            let token = token.ok_or_else(|| {
                ApiError::Unauthorized(
                    "unauthenticated",
                    "this request needs a device token (Authorization: Bearer …)".into(),
                )
            })?;
            let hash = hash_secret(&token);
            let storage = state.storage.clone();
            let found = web::block(move || storage.principal(hash)).await??;
            let Some((user, device)) = found else {
                return Err(refused(&state, hash).await);
            };
            let span = tracing::Span::current();
            span.record("device", device.id);
            span.record("user", user.name.as_str());
            Ok(Principal { user, device })
        })
    }
}

/// Why a token opened nothing: a device under a wipe order is told to wipe (issue
/// 12; the order is recorded as sent), any other is plainly revoked. Looked up only
/// for refused tokens, so a live device's requests cost nothing more.
async fn refused(state: &web::Data<AppState>, hash: [u8; 32]) -> ApiError {
    let storage = state.storage.clone();
    match web::block(move || storage.wipe_order(hash, chrono::Utc::now())).await {
        Ok(Ok(true)) => ApiError::Unauthorized(
            "wipe",
            "this device was revoked and must erase its store: wipe it and report to /v1/wiped"
                .into(),
        ),
        Ok(Ok(false)) => ApiError::Unauthorized(
            "revoked",
            "this device is not enrolled, was revoked, or its user was disabled: ask an admin"
                .into(),
        ),
        Ok(Err(e)) => e.into(),
        Err(e) => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_survive_human_typing() {
        let (code, hash) = new_enrolment_code();
        assert_eq!(code.len(), 14);
        assert_eq!(
            hash_secret(&normalize_code(&code.to_lowercase().replace('-', " "))),
            hash
        );
        assert_eq!(normalize_code("o1l-i"), "0111");
    }

    #[test]
    fn limiter_blocks_then_forgets() {
        let l = AttemptLimiter::new(Duration::from_millis(0), 2, 100);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        l.failed(a);
        l.failed(a);
        // A zero-length window has always expired: nobody stays locked out.
        assert!(l.check(a).is_ok());
        let l = AttemptLimiter::new(Duration::from_secs(600), 2, 3);
        l.failed(a);
        l.failed(a);
        assert!(l.check(a).is_err());
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(l.check(b).is_ok());
        l.failed(b);
        assert!(
            l.check(b).is_err(),
            "the overall limit holds across addresses"
        );
    }
}
