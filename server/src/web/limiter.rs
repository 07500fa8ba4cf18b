//! Limits failed sign-ins per account and per address, in fixed windows that expire,
//! so guessing a password is slow and a mistyping supervisor waits minutes, not
//! forever. Addresses are client addresses (`crate::net`: behind a trusted proxy, the
//! one it forwards), an IPv6 address counted by its /64. Per process by design for now (the PostgreSQL issue moves shared state into
//! the database). A successful sign-in does not reset the address's count: an attacker
//! with one account of her own could otherwise wash her failures away.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

#[derive(Debug)]
pub struct SignInLimiter {
    limits: SignInLimits,
    state: Mutex<Window>,
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
        }
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

    /// `Err(seconds to wait)` when the account or the address has failed too often.
    pub fn check(&self, account: &str, addr: IpAddr) -> Result<(), u64> {
        let w = self.window();
        let account = account.to_lowercase();
        let addr = crate::net::limit_key(addr);
        let over = w.accounts.get(&account).copied().unwrap_or(0) >= self.limits.per_account
            || w.addresses.get(&addr).copied().unwrap_or(0) >= self.limits.per_address;
        if over {
            let left = self.limits.window.saturating_sub(w.started.elapsed());
            return Err(left.as_secs().max(1));
        }
        Ok(())
    }

    pub fn failed(&self, account: &str, addr: IpAddr) {
        let mut w = self.window();
        *w.accounts.entry(account.to_lowercase()).or_insert(0) += 1;
        *w.addresses.entry(crate::net::limit_key(addr)).or_insert(0) += 1;
    }
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
        l.failed("Vesa", a);
        l.failed("vesa", b);
        assert!(
            l.check("vesa", "127.0.0.3".parse().unwrap()).is_err(),
            "per account"
        );
        assert!(l.check("arta", b).is_ok());
        l.failed("arta", a);
        l.failed("drita", a);
        assert!(l.check("lule", a).is_err(), "per address");
        assert!(l.check("lule", b).is_ok());
    }
}
