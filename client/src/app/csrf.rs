//! Random tokens (launch secret, session cookie, CSRF token) and comparing them in
//! time that does not depend on where they differ. Every state-changing form carries
//! the session's CSRF token: `SameSite=Strict` already keeps other sites' forms from
//! carrying the cookie, the token is a second, independent wall.

/// A fresh token: 32 random bytes, hex; an error, not a panic, when the OS random
/// source fails.
pub fn new_token() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| {
        std::io::Error::other(format!(
            "the OS random source failed ({e}): no token can be made"
        ))
    })?;
    Ok(hex::encode(b))
}

/// Whether `sent` is `expected`. Tokens have a fixed length, so only the contents'
/// comparison needs to be constant-time.
pub fn matches(expected: &str, sent: &str) -> bool {
    let (a, b) = (expected.as_bytes(), sent.as_bytes());
    !a.is_empty()
        && a.len() == b.len()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 64);
        assert!(matches(&t, &t));
        assert!(!matches(&t, &new_token().unwrap()));
        assert!(!matches(&t, &t[..63]));
        assert!(!matches(&t, ""));
        assert!(!matches("", ""), "an empty expected token never matches");
    }
}
