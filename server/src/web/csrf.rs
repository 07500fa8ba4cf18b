//! Cross-site request forgery: every state-changing form carries a token bound to the
//! session (kept with it on the server), compared in constant time. The sign-in form,
//! before there is a session, is bound instead to a random cookie of its own (double
//! submit), so another site cannot sign a browser in to an account of its choosing.
//! `SameSite=Strict` cookies already keep other sites' forms from carrying the session;
//! the token is the second, independent wall.

use sha2::{Digest, Sha256};

/// A fresh token: 32 random bytes, hex; an error, not a panic, when the OS random
/// source fails.
pub fn new_token() -> Result<String, crate::auth::NoRandom> {
    crate::auth::random_hex::<32>()
}

/// The field of a write form's one-time token (see [`once_input`]).
pub const ONCE_FIELD: &str = "once";

/// A write form's one-time token, as a hidden input beside the CSRF token: a fresh
/// random nonce per rendered form. The server stores it with the form's change, so the
/// same form posted twice (its first answer lost) is answered as the first time, not
/// stored twice. Without a random source the form goes without one (it still works,
/// as forms did before tokens) rather than the page failing.
pub fn once_input() -> maud::Markup {
    let token = crate::auth::random_hex::<16>().unwrap_or_default();
    maud::html! {
        @if !token.is_empty() { input type="hidden" name=(ONCE_FIELD) value=(token); }
    }
}

/// Whether `sent` is `expected`, in time that does not depend on where they differ.
pub fn matches(expected: &str, sent: &str) -> bool {
    // Comparing digests makes the comparison's length fixed too.
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(sent.as_bytes());
    !expected.is_empty()
        && a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        let t = new_token().unwrap();
        assert!(matches(&t, &t));
        assert!(!matches(&t, &new_token().unwrap()));
        assert!(!matches(&t, ""));
        assert!(!matches("", ""), "an empty expected token never matches");
    }
}
