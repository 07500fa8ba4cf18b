//! How strong a new store's passphrase must be (issue 12). The passphrase is all that
//! stands between a lost or seized phone or laptop and the clients' stories: Argon2id
//! makes each guess slow, it cannot make a guessable passphrase safe. So a new store
//! needs at least [`MIN_CHARS`] characters and a zxcvbn score of at least
//! [`MIN_SCORE`] (of 4: "safely unguessable" against an offline attacker with a slow
//! hash), judged with the user's name and the app's name as words a guesser tries.
//!
//! Only creating a store is checked: an existing store opens with whatever passphrase
//! made it, so nobody is locked out of the cases they hold.

/// The shortest passphrase accepted, in characters.
pub const MIN_CHARS: usize = 12;
/// The lowest zxcvbn score accepted (0–4).
pub const MIN_SCORE: u8 = 3;
/// zxcvbn's matching grows faster than the input; past this many characters a
/// passphrase is judged on its start (a long one is not short of strength there).
const JUDGED_CHARS: usize = 100;

/// Why a new passphrase was refused. Its message says why and what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassphrase {
    #[error(
        "the passphrase is too short: it needs at least {MIN_CHARS} characters. \
         Use four or more random words, e.g. \"river candle orbit meadow\""
    )]
    TooShort,
    #[error(
        "the passphrase is too easy to guess (strength {score} of 4, at least {MIN_SCORE} \
         needed){why}. Use four or more random words that do not form a phrase, e.g. \
         \"river candle orbit meadow\", not names, dates or your user name"
    )]
    Guessable {
        score: u8,
        /// zxcvbn's warning, as ": <warning>", or empty.
        why: String,
    },
}

/// Words a guesser would try first: the app's name and the computer's user name.
pub fn default_user_inputs() -> Vec<String> {
    let mut inputs = vec!["intake".to_string()];
    for var in ["USER", "LOGNAME", "USERNAME"] {
        if let Ok(name) = std::env::var(var)
            && !name.is_empty()
            && !inputs.contains(&name)
        {
            inputs.push(name);
        }
    }
    inputs
}

/// Checks a new store's passphrase; `user_inputs` are words a guesser would try (the
/// user's name, "intake").
pub fn check_new_passphrase(
    passphrase: &str,
    user_inputs: &[String],
) -> Result<(), WeakPassphrase> {
    if passphrase.chars().count() < MIN_CHARS {
        return Err(WeakPassphrase::TooShort);
    }
    let judged: String = passphrase.chars().take(JUDGED_CHARS).collect();
    let judged = zeroize::Zeroizing::new(judged);
    let inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
    let entropy = zxcvbn::zxcvbn(&judged, &inputs);
    let score = u8::from(entropy.score());
    if score >= MIN_SCORE {
        return Ok(());
    }
    let why = entropy
        .feedback()
        .and_then(|f| f.warning())
        // zxcvbn's warnings end with a full stop; the message goes on after it.
        .map(|w| format!(": {}", w.to_string().trim_end_matches('.')))
        .unwrap_or_default();
    Err(WeakPassphrase::Guessable { score, why })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Vec<String> {
        vec!["intake".into(), "drita".into()]
    }

    #[test]
    fn short_and_guessable_passphrases_are_refused_with_a_reason() {
        assert_eq!(
            check_new_passphrase("pass", &inputs()),
            Err(WeakPassphrase::TooShort)
        );
        for weak in [
            "password1234",
            "123456789012",
            "aaaaaaaaaaaaaaaa",
            "qwertyuiopasdf",
            "drita12345678",
            "intakeintake2024",
        ] {
            let Err(e) = check_new_passphrase(weak, &inputs()) else {
                panic!("{weak} was accepted");
            };
            assert!(matches!(e, WeakPassphrase::Guessable { .. }), "{weak}: {e}");
            assert!(e.to_string().contains("random words"), "{e}");
        }
    }

    #[test]
    fn random_words_are_accepted() {
        for strong in [
            "correct horse battery staple",
            "river candle orbit meadow",
            "lumi i bardhë në mal",
            "wrong-turn pebble 7 lanterns",
        ] {
            assert_eq!(check_new_passphrase(strong, &inputs()), Ok(()), "{strong}");
        }
    }
}
