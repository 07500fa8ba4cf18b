//! The store's 32-byte SQLCipher key: supplied by the host app (from the phone's
//! keystore), or derived from a passphrase with Argon2id for the CLI. The salt is not
//! secret; it lives beside the database so the same passphrase gives the same key.
//!
//! Keys and the strings built from them are wiped from memory when dropped (`zeroize`),
//! so a phone taken while the app runs, or a core dump, holds as few copies as we can
//! help. A new store's passphrase must be strong (`super::strength`).

use std::fmt;
use std::path::Path;

use zeroize::{Zeroize, Zeroizing};

use super::StoreError;

/// A 32-byte database key. `Debug` never prints it; dropping it overwrites it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([redacted])")
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Argon2id cost: RFC 9106's second recommended option (64 MiB, 3 passes), which a
/// phone can afford once per app start and which makes guessing a passphrase from a
/// stolen device slow.
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 3;
const SALT_LEN: usize = 16;

impl Key {
    /// Wraps a key the host app keeps (e.g. in the Android Keystore).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// Derives a key from a passphrase and salt with Argon2id.
    pub fn derive(passphrase: &str, salt: &[u8]) -> Result<Key, StoreError> {
        use argon2::{Algorithm, Argon2, Params, Version};
        let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, Some(32))
            .map_err(|e| StoreError::Key(e.to_string()))?;
        // Argon2 writes straight into the key, so no copy of its output is left behind
        // (a `[u8; 32]` moved into a `Key` would be copied, the original not wiped).
        let mut key = Key([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, &mut key.0)
            .map_err(|e| StoreError::Key(e.to_string()))?;
        Ok(key)
    }

    /// The key for the store in `dir` from a passphrase: reads `intake.salt`, or
    /// creates it when the store does not exist yet — then only for a passphrase
    /// strong enough (`super::strength::check_new_passphrase`, with the computer's
    /// user name and "intake" as words a guesser would try). An existing store opens
    /// whatever its passphrase, so nobody is locked out of what they have.
    pub fn from_passphrase(dir: &Path, passphrase: &str) -> Result<Key, StoreError> {
        if passphrase.is_empty() {
            return Err(StoreError::Key("the passphrase is empty".into()));
        }
        let salt_path = dir.join(super::SALT_FILE);
        let salt = match std::fs::read(&salt_path) {
            Ok(salt) if salt.len() == SALT_LEN => salt,
            Ok(_) => {
                return Err(StoreError::Key(format!(
                    "{} is damaged",
                    salt_path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if dir.join(super::DB_FILE).exists() {
                    return Err(StoreError::Key(format!(
                        "{} is missing: without it the passphrase cannot open the store",
                        salt_path.display()
                    )));
                }
                // Checked before anything is written: a refused passphrase leaves
                // no salt and no directory behind.
                super::strength::check_new_passphrase(
                    passphrase,
                    &super::strength::default_user_inputs(),
                )?;
                super::check_cipher()?;
                super::create_private_dir(dir)?;
                let mut salt = vec![0u8; SALT_LEN];
                getrandom::fill(&mut salt).map_err(|e| StoreError::Key(e.to_string()))?;
                super::write_new_file(&salt_path, &salt)?;
                salt
            }
            Err(e) => return Err(e.into()),
        };
        Key::derive(passphrase, &salt)
    }

    /// SQLCipher's raw-key syntax, so SQLCipher does not run its own KDF on top. The
    /// hex string is wiped when dropped.
    pub(super) fn pragma_value(&self) -> Zeroizing<String> {
        let mut hex = Zeroizing::new(String::with_capacity(64 + 5));
        hex.push_str("\"x'");
        for b in &self.0 {
            // `write!` into the zeroizing string: no temporary `String` per byte.
            let _ = fmt::Write::write_fmt(&mut *hex, format_args!("{b:02x}"));
        }
        hex.push_str("'\"");
        hex
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pragma_value_is_the_raw_key_in_hex() {
        let key = Key::from_bytes([0xab; 32]);
        let v = key.pragma_value();
        assert_eq!(v.len(), 64 + 5);
        assert!(v.starts_with("\"x'abab") && v.ends_with("ab'\""), "{}", *v);
    }
}
