//! The few rules a new store's passphrase must meet. The passphrase is the only thing
//! between a stolen laptop and the clients' stories (Argon2id slows guessing, it
//! cannot stop a guessable one), so it must be long and not a pattern; the reason for a
//! refusal is said in the user's language.

use intake_web::i18n::Msg;

/// The shortest passphrase accepted, in characters.
pub const MIN_CHARS: usize = 12;

/// Why a new passphrase is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weak {
    TooShort,
    /// One short piece over and over: `aaaaaaaaaaaa`, `abcabcabcabc`, or fewer than
    /// four different characters.
    Repeats,
    /// Neighbours in order: `123456789012`, `abcdefghijkl`, `qwertyuiopas`, backwards too.
    Run,
}

impl Weak {
    /// The message saying why.
    pub fn msg(self) -> Msg {
        match self {
            Weak::TooShort => Msg::PassphraseTooShort,
            Weak::Repeats => Msg::PassphraseRepeats,
            Weak::Run => Msg::PassphraseRun,
        }
    }
}

/// Keyboard rows (and the alphabet): a passphrase walking along one is a run.
const ROWS: &[&str] = &[
    "1234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "qwertzuiop",
    "yxcvbnm",
    "abcdefghijklmnopqrstuvwxyz",
];

/// Checks a new passphrase.
pub fn check_new(passphrase: &str) -> Result<(), Weak> {
    let chars: Vec<char> = passphrase.chars().collect();
    if chars.len() < MIN_CHARS {
        return Err(Weak::TooShort);
    }
    let distinct: std::collections::BTreeSet<char> = chars.iter().copied().collect();
    let repeats_a_piece = (1..=chars.len() / 2)
        .filter(|p| chars.len().is_multiple_of(*p))
        .any(|p| chars.chunks(p).all(|c| c == &chars[..p]));
    if distinct.len() < 4 || repeats_a_piece {
        return Err(Weak::Repeats);
    }
    if is_run(&passphrase.to_lowercase()) {
        return Err(Weak::Run);
    }
    Ok(())
}

/// Whether every character is the next (or every one the previous) along a row,
/// wrapping around the end of the row.
fn is_run(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let next = |row: &[char], a: char, b: char, back: bool| {
        row.iter().position(|&c| c == a).is_some_and(|i| {
            let j = if back {
                (i + row.len() - 1) % row.len()
            } else {
                (i + 1) % row.len()
            };
            row[j] == b
        })
    };
    ROWS.iter().any(|row| {
        let row: Vec<char> = row.chars().collect();
        [false, true]
            .into_iter()
            .any(|back| chars.windows(2).all(|w| next(&row, w[0], w[1], back)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passphrases_are_refused_with_a_reason() {
        assert_eq!(check_new("short words"), Err(Weak::TooShort));
        assert_eq!(check_new("ëëëëëëëëëëëëëë"), Err(Weak::Repeats));
        assert_eq!(check_new("abcabcabcabc"), Err(Weak::Repeats));
        assert_eq!(check_new("abababababab"), Err(Weak::Repeats));
        assert_eq!(check_new("123456789012"), Err(Weak::Run));
        assert_eq!(check_new("0987654321098"), Err(Weak::Run));
        assert_eq!(check_new("QWERTYUIOPqw"), Err(Weak::Run));
        assert_eq!(check_new("abcdefghijklm"), Err(Weak::Run));
        assert_eq!(check_new("lumi i bardhë në mal"), Ok(()));
        assert_eq!(check_new("correct horse battery"), Ok(()));
    }
}
