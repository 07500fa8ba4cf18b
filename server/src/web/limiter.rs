//! Limits failed sign-ins per account and per address, in fixed windows that expire,
//! so guessing a password is slow and a mistyping supervisor waits minutes, not
//! forever. Addresses are client addresses (`crate::net`: behind a trusted proxy, the
//! one it forwards), an IPv6 address counted by its /64. Counted in the process's
//! memory, or, when several servers share a PostgreSQL database, in the database
//! ([`SignInLimiter::shared`], `storage/postgres/attempts.rs`): an attacker spreading
//! guesses over N servers must not get N times the attempts. A successful sign-in does
//! not reset the address's count: an attacker with one account of her own could
//! otherwise wash her failures away.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::{Refused, counter_key, give_back_shared, take_shared};
use crate::storage::{Counted, SharedAttempts};

/// Failed sign-ins allowed per window.
#[derive(Debug, Clone, Copy)]
pub struct SignInLimits {
    pub window: Duration,
    pub per_account: u32,
    pub per_address: u32,
}

impl Default for SignInLimits {
    fn default() -> Self {
        // Ten wrong passwords per account and thirty per address in 15 minutes.
        SignInLimits {
            window: Duration::from_secs(15 * 60),
            per_account: 10,
            per_address: 30,
        }
    }
}

#[derive(Debug)]
struct Window {
    started: Instant,
    accounts: HashMap<String, u32>,
    addresses: HashMap<IpAddr, u32>,
}

pub struct SignInLimiter {
    limits: SignInLimits,
    state: Mutex<Window>,
    shared: Option<std::sync::Arc<dyn SharedAttempts>>,
}

impl std::fmt::Debug for SignInLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInLimiter")
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl SignInLimiter {
    pub fn new(limits: SignInLimits) -> SignInLimiter {
        SignInLimiter {
            limits,
            state: Mutex::new(Window {
                started: Instant::now(),
                accounts: HashMap::new(),
                addresses: HashMap::new(),
            }),
            shared: None,
        }
    }

    /// Counts in `shared` (the database several servers share) instead of in memory,
    /// when there is one. Then `reserve` and `succeeded` reach the database: call them
    /// off the async workers.
    pub fn shared(mut self, shared: Option<std::sync::Arc<dyn SharedAttempts>>) -> Self {
        self.shared = shared;
        self
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if w.started.elapsed() >= self.limits.window {
            *w = Window {
                started: Instant::now(),
                accounts: HashMap::new(),
                addresses: HashMap::new(),
            };
        }
        w
    }

    /// Counts a sign-in attempt before the password is checked, or `Err(seconds to
    /// wait)` when the account or the address has failed too often. Check and count are
    /// one step under the lock, so concurrent guesses cannot all pass the check before
    /// any of them is counted; a right password gives its slot back
    /// ([`SignInLimiter::succeeded`]).
    pub fn reserve(&self, account: &str, addr: IpAddr) -> Result<Attempt, Refused> {
        let account = account.to_lowercase();
        let addr = crate::net::limit_key(addr);
        if let Some(shared) = &self.shared {
            let keys = [
                (
                    counter_key("signin-account", account.as_bytes()),
                    self.limits.per_account,
                ),
                (
                    counter_key("signin-address", addr.to_string().as_bytes()),
                    self.limits.per_address,
                ),
            ];
            let counted = take_shared(shared.as_ref(), &keys, self.limits.window)?;
            return Ok(Attempt {
                account,
                addr,
                window: Instant::now(),
                shared: Some(counted),
            });
        }
        let mut w = self.window();
        let over = w.accounts.get(&account).copied().unwrap_or(0) >= self.limits.per_account
            || w.addresses.get(&addr).copied().unwrap_or(0) >= self.limits.per_address;
        if over {
            let left = self.limits.window.saturating_sub(w.started.elapsed());
            return Err(Refused::Wait(left.as_secs().max(1)));
        }
        *w.accounts.entry(account.clone()).or_insert(0) += 1;
        *w.addresses.entry(addr).or_insert(0) += 1;
        Ok(Attempt {
            account,
            addr,
            window: w.started,
            shared: None,
        })
    }

    /// The attempt signed in: its slot is given back (in the window it was counted in).
    pub fn succeeded(&self, attempt: Attempt) {
        if let (Some(shared), Some(counted)) = (&self.shared, &attempt.shared) {
            give_back_shared(shared.as_ref(), counted);
            return;
        }
        let mut w = self.window();
        if w.started != attempt.window {
            return;
        }
        if let Some(n) = w.accounts.get_mut(&attempt.account) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = w.addresses.get_mut(&attempt.addr) {
            *n = n.saturating_sub(1);
        }
    }
}

/// A counted sign-in attempt (see [`SignInLimiter::reserve`]); dropped, it stays
/// counted as a failure.
#[derive(Debug)]
#[must_use = "a right password gives the slot back with `succeeded`"]
pub struct Attempt {
    account: String,
    addr: IpAddr,
    window: Instant,
    /// Counted in the shared counters (the keys and their windows' ends).
    shared: Option<Counted>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_addresses_are_limited_apart() {
        let l = SignInLimiter::new(SignInLimits {
            window: Duration::from_secs(600),
            per_account: 2,
            per_address: 3,
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        drop(l.reserve("Vesa", a).unwrap());
        drop(l.reserve("vesa", b).unwrap());
        assert!(
            l.reserve("vesa", "127.0.0.3".parse().unwrap()).is_err(),
            "per account"
        );
        let ok = l.reserve("arta", b).unwrap();
        l.succeeded(ok);
        drop(l.reserve("arta", a).unwrap());
        drop(l.reserve("drita", a).unwrap());
        assert!(l.reserve("lule", a).is_err(), "per address");
        assert!(l.reserve("lule", b).is_ok());
    }

    #[test]
    fn concurrent_wrong_passwords_are_checked_at_most_per_account_times() {
        let l = SignInLimiter::new(SignInLimits {
            window: Duration::from_secs(600),
            per_account: 10,
            per_address: 1000,
        });
        let checked = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for i in 0..32u8 {
                let (l, checked) = (&l, &checked);
                s.spawn(move || {
                    let addr = IpAddr::from([10, 0, 0, i]);
                    if let Ok(attempt) = l.reserve("vesa", addr) {
                        // The password check would run here; it fails.
                        checked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        drop(attempt);
                    }
                });
            }
        });
        assert_eq!(checked.load(std::sync::atomic::Ordering::SeqCst), 10);
    }

    #[test]
    fn a_right_password_gives_its_slot_back() {
        let l = SignInLimiter::new(SignInLimits {
            window: Duration::from_secs(600),
            per_account: 1,
            per_address: 1,
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..5 {
            let attempt = l.reserve("vesa", a).unwrap();
            l.succeeded(attempt);
        }
        drop(l.reserve("vesa", a).unwrap());
        assert!(l.reserve("vesa", a).is_err());
    }
}
