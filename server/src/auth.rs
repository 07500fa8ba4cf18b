//! Authentication: enrolment codes, device tokens, and the limiter on guessing.
//!
//! A device token is 32 bytes from the OS random source, shown to the device once (hex)
//! and stored only as its SHA-256; it travels only in `Authorization: Bearer …`. Every
//! request looks the token up again, so revoking a device or disabling a user takes
//! effect on the very next request. Enrolment codes are short (12 characters of
//! Crockford base32, 60 bits), one-time and short-lived; attempts are limited per
//! address and per code, in windows that expire, so a legitimate user is never locked
//! out for good, and there is no overall limit an attacker could use up for everyone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::policy::Principal;
use crate::startup::AppState;
use crate::storage::{Counted, SharedAttempts, StorageError};

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The OS random source failed (a broken or seccomp-restricted system): no token or
/// code can be made, and a request that needs one fails instead of the server panicking.
#[derive(Debug, thiserror::Error)]
#[error("the OS random source failed ({0}): no token or code can be made")]
pub struct NoRandom(String);

fn random<const N: usize>() -> Result<[u8; N], NoRandom> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| NoRandom(e.to_string()))?;
    Ok(b)
}

/// `N` random bytes, hex.
pub fn random_hex<const N: usize>() -> Result<String, NoRandom> {
    Ok(hex::encode(random::<N>()?))
}

impl From<NoRandom> for ApiError {
    fn from(e: NoRandom) -> Self {
        ApiError::Internal(anyhow::Error::new(e))
    }
}

/// A new device token and its hash.
pub fn new_token() -> Result<(String, [u8; 32]), NoRandom> {
    let token = hex::encode(random::<32>()?);
    let hash = hash_secret(&token);
    Ok((token, hash))
}

/// A new enrolment code, formatted `XXXX-XXXX-XXXX`, and its hash.
pub fn new_enrolment_code() -> Result<(String, [u8; 32]), NoRandom> {
    let bytes = random::<12>()?;
    let chars: String = bytes
        .iter()
        .map(|b| CROCKFORD[(b & 31) as usize] as char)
        .collect();
    let code = format!("{}-{}-{}", &chars[..4], &chars[4..8], &chars[8..]);
    let hash = hash_secret(&normalize_code(&code));
    Ok((code, hash))
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

/// Limits attempts with one-time codes (enrolment, dashboard password codes) per
/// client address (an IPv6 address by its /64) and per code presented, in fixed windows
/// that expire. There is deliberately no overall limit: it would let one attacker, by
/// exhausting it, keep every legitimate device from enrolling.
///
/// An attempt first [`reserves`](AttemptLimiter::reserve) its slot, under the same lock
/// that checks the counts, and only then looks the code up; a right code gives its slot
/// back ([`AttemptLimiter::succeeded`]). So however many wrong guesses arrive at once
/// from one address, at most `per_address` of them reach the database per window.
///
/// Counted in this process's memory, or, when several servers share a PostgreSQL
/// database ([`AttemptLimiter::shared`]), in the database: otherwise an attacker who
/// spreads guesses over N servers would get N times the attempts. Shared, `reserve`
/// and `succeeded` reach the database: call them off the async workers (`web::block`).
pub struct AttemptLimiter {
    window: Duration,
    per_address: u32,
    per_code: u32,
    state: Mutex<Attempts>,
    shared: Option<std::sync::Arc<dyn SharedAttempts>>,
}

impl std::fmt::Debug for AttemptLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptLimiter")
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a limiter let an attempt not through.
#[derive(Debug)]
pub enum Refused {
    /// Too many attempts: wait this many seconds.
    Wait(u64),
    /// The shared counters could not be reached (PostgreSQL).
    Storage(StorageError),
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Wait(secs) => ApiError::TooManyRequests(secs),
            Refused::Storage(e) => e.into(),
        }
    }
}

/// The key of a shared counter: the SHA-256 of what is counted, so that the database
/// keeps no address, code or account name.
pub(crate) fn counter_key(kind: &str, what: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(what);
    h.finalize().into()
}

/// Takes one attempt on the shared counters `keys`, as [`AttemptLimiter::reserve`] and
/// the sign-in limiter do in memory.
pub(crate) fn take_shared(
    shared: &dyn SharedAttempts,
    keys: &[([u8; 32], u32)],
    window: Duration,
) -> Result<Counted, Refused> {
    let now = chrono::Utc::now().timestamp();
    match shared.take(keys, window.as_secs() as i64, now) {
        Ok(Ok(counted)) => Ok(counted),
        Ok(Err(secs)) => Err(Refused::Wait(secs)),
        Err(e) => Err(Refused::Storage(e)),
    }
}

/// Gives a shared attempt back; a failure only costs the user that slot, so it is
/// logged, not answered.
pub(crate) fn give_back_shared(shared: &dyn SharedAttempts, counted: &[([u8; 32], i64)]) {
    if let Err(e) = shared.give_back(counted) {
        tracing::warn!(error = %e, "could not give back an attempt slot");
    }
}

#[derive(Debug)]
struct Attempts {
    started: Instant,
    /// Which window this is, so a slot reserved in an earlier one is not given back
    /// to the counts of a later one.
    generation: u64,
    addresses: HashMap<IpAddr, u32>,
    codes: HashMap<[u8; 32], u32>,
}

/// A slot taken by one attempt: given back when the code was right, kept otherwise.
#[derive(Debug)]
#[must_use = "a right code gives its slot back with AttemptLimiter::succeeded"]
pub struct Attempt {
    generation: u64,
    address: IpAddr,
    code: [u8; 32],
    /// Counted in the shared counters (the keys and their windows' ends).
    shared: Option<Counted>,
}

impl AttemptLimiter {
    pub fn new(window: Duration, per_address: u32, per_code: u32) -> AttemptLimiter {
        AttemptLimiter {
            window,
            per_address,
            per_code,
            state: Mutex::new(Attempts {
                started: Instant::now(),
                generation: 0,
                addresses: HashMap::new(),
                codes: HashMap::new(),
            }),
            shared: None,
        }
    }

    /// Counts in `shared` (the database several servers share) instead of in memory,
    /// when there is one.
    pub fn shared(mut self, shared: Option<std::sync::Arc<dyn SharedAttempts>>) -> Self {
        self.shared = shared;
        self
    }

    /// Takes a slot for an attempt from `addr` with the code whose hash is `code`, or
    /// refuses with the seconds to wait when this address, or this code, has used all
    /// of its own.
    pub fn reserve(&self, addr: IpAddr, code: [u8; 32]) -> Result<Attempt, Refused> {
        match &self.shared {
            Some(shared) => {
                let address = crate::net::limit_key(addr);
                let keys = [
                    (
                        counter_key("code-address", address.to_string().as_bytes()),
                        self.per_address,
                    ),
                    (counter_key("code", &code), self.per_code),
                ];
                let counted = take_shared(shared.as_ref(), &keys, self.window)?;
                Ok(Attempt {
                    generation: 0,
                    address,
                    code,
                    shared: Some(counted),
                })
            }
            None => self
                .reserve_at(addr, code, Instant::now())
                .map_err(Refused::Wait),
        }
    }

    fn reserve_at(&self, addr: IpAddr, code: [u8; 32], now: Instant) -> Result<Attempt, u64> {
        let address = crate::net::limit_key(addr);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(s.started) >= self.window {
            s.started = now;
            s.generation += 1;
            s.addresses.clear();
            s.codes.clear();
        }
        let by_address = s.addresses.get(&address).copied().unwrap_or(0);
        let by_code = s.codes.get(&code).copied().unwrap_or(0);
        if by_address >= self.per_address || by_code >= self.per_code {
            let left = self
                .window
                .saturating_sub(now.saturating_duration_since(s.started));
            return Err(left.as_secs().max(1));
        }
        *s.addresses.entry(address).or_insert(0) += 1;
        *s.codes.entry(code).or_insert(0) += 1;
        Ok(Attempt {
            generation: s.generation,
            address,
            code,
            shared: None,
        })
    }

    /// The code was right: its slot goes back, so people enrolling one phone after
    /// another from one office never run into the limit.
    pub fn succeeded(&self, attempt: Attempt) {
        if let (Some(shared), Some(counted)) = (&self.shared, &attempt.shared) {
            give_back_shared(shared.as_ref(), counted);
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.generation != attempt.generation {
            return;
        }
        if let Some(n) = s.addresses.get_mut(&attempt.address) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = s.codes.get_mut(&attempt.code) {
            *n = n.saturating_sub(1);
        }
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
        let (code, hash) = new_enrolment_code().unwrap();
        assert_eq!(code.len(), 14);
        assert_eq!(
            hash_secret(&normalize_code(&code.to_lowercase().replace('-', " "))),
            hash
        );
        assert_eq!(normalize_code("o1l-i"), "0111");
    }

    fn code(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn limiter_blocks_then_forgets() {
        let l = AttemptLimiter::new(Duration::from_secs(600), 2, 100);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        let _ = l.reserve_at(a, code(1), t0).unwrap();
        let _ = l.reserve_at(a, code(2), t0).unwrap();
        assert!(l.reserve_at(a, code(3), t0).is_err());
        // The window expires: nobody stays locked out for good.
        assert!(
            l.reserve_at(a, code(3), t0 + Duration::from_secs(600))
                .is_ok()
        );
    }

    #[test]
    fn no_overall_limit_blocks_everyone() {
        let l = AttemptLimiter::new(Duration::from_secs(600), 10, 10);
        // An attacker from a thousand addresses, ten wrong codes each...
        for i in 0..1000u32 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            for j in 0..10u8 {
                let mut c = [j; 32];
                c[..4].copy_from_slice(&i.to_be_bytes());
                let _ = l.reserve(addr, c).unwrap();
            }
        }
        // ...and a paralegal from her own office still gets her attempt.
        assert!(l.reserve("192.0.2.1".parse().unwrap(), code(200)).is_ok());
    }

    #[test]
    fn limits_hold_per_64_and_per_code() {
        let l = AttemptLimiter::new(Duration::from_secs(600), 3, 2);
        for (n, host) in ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
            .iter()
            .enumerate()
        {
            let _ = l.reserve(host.parse().unwrap(), code(n as u8)).unwrap();
        }
        assert!(
            l.reserve("2001:db8::ffff".parse().unwrap(), code(9))
                .is_err(),
            "one /64 is one address"
        );
        assert!(
            l.reserve("2001:db8:0:1::1".parse().unwrap(), code(9))
                .is_ok()
        );
        // One code tried from everywhere.
        assert!(l.reserve("192.0.2.1".parse().unwrap(), code(7)).is_ok());
        assert!(l.reserve("192.0.2.2".parse().unwrap(), code(7)).is_ok());
        assert!(l.reserve("192.0.2.3".parse().unwrap(), code(7)).is_err());
    }

    #[test]
    fn a_right_code_gives_its_slot_back() {
        let l = AttemptLimiter::new(Duration::from_secs(600), 2, 10);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for n in 0..20 {
            let attempt = l.reserve(a, code(n)).unwrap();
            l.succeeded(attempt);
        }
        let _ = l.reserve(a, code(100)).unwrap();
        let _ = l.reserve(a, code(101)).unwrap();
        assert!(l.reserve(a, code(102)).is_err());
    }

    /// Many wrong guesses at once from one address: the check and the count are one
    /// step, so no more than `per_address` of them get to look the code up.
    #[test]
    fn concurrent_guesses_reach_the_store_at_most_per_address_times() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let l = std::sync::Arc::new(AttemptLimiter::new(Duration::from_secs(600), 5, 100));
        let lookups = std::sync::Arc::new(AtomicU32::new(0));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(32));
        let threads: Vec<_> = (0..32u8)
            .map(|i| {
                let (l, lookups, barrier) = (l.clone(), lookups.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    if let Ok(_attempt) = l.reserve("192.0.2.9".parse().unwrap(), code(i)) {
                        // The "database lookup", slow enough for the others to pile in.
                        lookups.fetch_add(1, Ordering::SeqCst);
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(lookups.load(Ordering::SeqCst), 5);
    }
}
