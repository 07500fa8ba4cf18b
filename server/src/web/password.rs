//! Dashboard passwords: Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes),
//! stored as PHC strings, and the few rules a chosen password must meet. Passwords are
//! only ever set by the user herself, through a one-time code an admin hands over
//! (like a device's enrolment code), so no admin ever knows one.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// The shortest password accepted.
pub const MIN_LEN: usize = 10;

/// Why a chosen password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weak {
    TooShort,
    /// Made of one repeated character, a run like `1234567890`, or the user's name.
    Guessable,
}

/// Checks a new password for `user`.
pub fn check_new(user: &str, password: &str) -> Result<(), Weak> {
    let chars: Vec<char> = password.chars().collect();
    if chars.len() < MIN_LEN {
        return Err(Weak::TooShort);
    }
    let lower = password.to_lowercase();
    let distinct: std::collections::BTreeSet<char> = chars.iter().copied().collect();
    // "1234567890", "abcdefghij", "9876543210": each character the next one along
    // (on the keyboard's number row, 0 follows 9).
    let step = |a: char, b: char| {
        (b as i64 - a as i64).abs() == 1 || matches!((a, b), ('9', '0') | ('0', '9'))
    };
    let run = chars.windows(2).all(|w| step(w[0], w[1]));
    if distinct.len() < 4 || run || (!user.is_empty() && lower.contains(&user.to_lowercase())) {
        return Err(Weak::Guessable);
    }
    Ok(())
}

/// The PHC string of a password, with a fresh salt.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

/// Whether `password` is the one `phc` was made from.
pub fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of nothing in particular, verified against when the user does not exist,
/// so a wrong name costs the same time as a wrong password (no user enumeration by
/// timing).
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("not a password anyone has").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash("Prishtinë 2026 ëç").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "Prishtinë 2026 ëç"));
        assert!(!verify(&h, "prishtinë 2026 ëç"));
        assert!(!verify("not a hash", "x"));
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert_eq!(check_new("vesa", "short"), Err(Weak::TooShort));
        assert_eq!(check_new("vesa", "aaaaaaaaaaaa"), Err(Weak::Guessable));
        assert_eq!(check_new("vesa", "1234567890"), Err(Weak::Guessable));
        assert_eq!(check_new("vesa", "vesa-vesa-2026"), Err(Weak::Guessable));
        assert_eq!(check_new("vesa", "lumi i bardhë në mal"), Ok(()));
    }
}
