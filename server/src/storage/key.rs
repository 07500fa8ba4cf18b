//! The server database's 32-byte SQLCipher key: where it comes from (a key file only
//! the server's user may read, or `INTAKE_SERVER_KEY`; never a command-line flag, which
//! any local user can read in the process list) and how it is written by
//! `intake-server init`. The key lives in zeroizing memory and never prints.

use std::fmt;
use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

/// A 32-byte database key. `Debug` never prints it; its bytes are wiped when dropped.
#[derive(Clone)]
pub struct DbKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for DbKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DbKey([redacted])")
    }
}

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
}

impl DbKey {
    pub fn from_bytes(bytes: [u8; 32]) -> DbKey {
        DbKey(Zeroizing::new(bytes))
    }

    /// A new random key.
    pub fn generate() -> Result<DbKey, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut bytes[..])
            .map_err(|e| KeyError::Invalid(format!("no randomness for a new key: {e}")))?;
        Ok(DbKey(bytes))
    }

    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<DbKey, KeyError> {
        let text = text.trim();
        let mut bytes = Zeroizing::new([0u8; 32]);
        if text.len() != 64 || hex::decode_to_slice(text, &mut bytes[..]).is_err() {
            return Err(KeyError::Invalid(
                "the key must be 64 hexadecimal digits (32 bytes)".into(),
            ));
        }
        Ok(DbKey(bytes))
    }

    /// The key as 64 hex digits, in memory that is wiped when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&self.0[..]))
    }

    /// SQLCipher's raw-key syntax (`x'…'`), so SQLCipher uses these bytes as the key
    /// instead of running its own KDF over a passphrase.
    pub(crate) fn sql_literal(&self) -> Zeroizing<String> {
        let hex = self.to_hex();
        Zeroizing::new(format!("\"x'{}'\"", hex.as_str()))
    }

    /// Reads a key file: 64 hex digits. Refused when group or others may read or write
    /// it: a key everyone on the machine can read protects nothing.
    pub fn read_file(path: &Path) -> Result<DbKey, KeyError> {
        let meta = std::fs::metadata(path).map_err(|e| {
            KeyError::Io(format!(
                "cannot read the database key file {}: {e}",
                path.display()
            ))
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Invalid(format!(
                    "the database key file {} has mode {mode:03o}: others may read it; \
                     make it readable by the server's user only (chmod 600 {})",
                    path.display(),
                    path.display()
                )));
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            KeyError::Io(format!(
                "cannot read the database key file {}: {e}",
                path.display()
            ))
        })?);
        DbKey::from_hex(&text).map_err(|e| {
            KeyError::Invalid(format!("the database key file {}: {e}", path.display()))
        })
    }

    /// Writes the key to a new file of mode 0600; never replaces an existing file.
    pub fn write_new_file(&self, path: &Path) -> Result<(), KeyError> {
        let fail = |e: std::io::Error| {
            KeyError::Io(format!(
                "cannot write the database key file {}: {e}",
                path.display()
            ))
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(fail)?;
        file.write_all(self.to_hex().as_bytes()).map_err(fail)?;
        file.write_all(b"\n").map_err(fail)?;
        file.sync_all().map_err(fail)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_print_and_bad_hex_is_refused() {
        let key = DbKey::from_hex(&"ab".repeat(32)).unwrap();
        assert!(!format!("{key:?}").contains("ab"));
        assert!(DbKey::from_hex("abcd").is_err());
        assert!(DbKey::from_hex(&"zz".repeat(32)).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = DbKey::generate().unwrap();
        key.write_new_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(DbKey::read_file(&path).unwrap().to_hex(), key.to_hex());
        assert!(key.write_new_file(&path).is_err(), "never overwrites");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = DbKey::read_file(&path).unwrap_err().to_string();
        assert!(e.contains("mode 640"), "{e}");
    }
}
