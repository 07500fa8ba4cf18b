//! The store's 32-byte SQLCipher key: supplied by the host app (from the phone's
//! keystore), or derived from a passphrase with Argon2id for the CLI. The salt is not
//! secret; it lives beside the database so the same passphrase gives the same key.

use std::fmt;
use std::path::Path;

use super::StoreError;

/// A 32-byte database key. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([redacted])")
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
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, &mut out)
            .map_err(|e| StoreError::Key(e.to_string()))?;
        Ok(Key(out))
    }

    /// The key for the store in `dir` from a passphrase: reads `intake.salt`, or
    /// creates it when the store does not exist yet.
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
                super::create_private_dir(dir)?;
                let mut salt = vec![0u8; SALT_LEN];
                getrandom::fill(&mut salt).map_err(|e| StoreError::Key(e.to_string()))?;
                super::write_new_file(&salt_path, &salt)?;
                salt
            }
            Err(e) => return Err(StoreError::Io(e)),
        };
        Key::derive(passphrase, &salt)
    }

    /// SQLCipher's raw-key syntax, so SQLCipher does not run its own KDF on top.
    pub(super) fn pragma_value(&self) -> String {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        format!("\"x'{hex}'\"")
    }
}
