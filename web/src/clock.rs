//! Saying that a device clock was wrong, in the reader's language (issue 13, clock
//! skew): beside a device time on the dashboard's record page ("device clock was
//! wrong: at least 1 yr. ahead"), and on the device itself when its own clock is off
//! ("This device's clock is at least 1 yr. ahead of the server's…").

use intake_shared::Lang;
use intake_shared::skew::{self, ClockError, Judged, RoughUnit};

use crate::i18n::{Msg, tf, tn};

/// How wrong, as the messages below put it ("at least N <unit>"): a rough amount.
fn amount(lang: Lang, e: ClockError) -> String {
    let (ClockError::Ahead(d) | ClockError::Behind(d)) = e;
    let (n, unit) = skew::rough(d);
    let unit = match unit {
        RoughUnit::Years => Msg::RoughYears,
        RoughUnit::Days => Msg::RoughDays,
        RoughUnit::Hours => Msg::RoughHours,
    };
    tn(lang, unit, n.max(0) as u64)
}

/// The mark beside a time another device recorded: "device clock was wrong: …".
pub fn was_wrong(lang: Lang, e: ClockError) -> String {
    let msg = match e {
        ClockError::Ahead(_) => Msg::ClockAhead,
        ClockError::Behind(_) => Msg::ClockBehind,
    };
    tf(lang, msg, &[("amount", &amount(lang, e))])
}

/// What a device (the CLI, the field app) shows after a time another device recorded:
/// nothing when its clock was right; else "device clock was wrong: at least … (received
/// by the server …)", the receipt being the time to trust.
pub fn note(lang: Lang, judged: &Judged) -> Option<String> {
    let mut out = was_wrong(lang, judged.error?);
    if let Some(at) = judged.received {
        let when = at.format("%Y-%m-%d %H:%M UTC").to_string();
        out.push_str(&format!(
            " ({})",
            tf(lang, Msg::ReceivedAt, &[("when", &when)])
        ));
    }
    Some(out)
}

/// The warning a device shows about its own clock, as the last sync answer found it.
pub fn this_device(lang: Lang, e: ClockError) -> String {
    let msg = match e {
        ClockError::Ahead(_) => Msg::ThisClockAhead,
        ClockError::Behind(_) => Msg::ThisClockBehind,
    };
    tf(lang, msg, &[("amount", &amount(lang, e))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_ahead_reads_as_a_year_in_each_language() {
        let e = ClockError::Ahead(intake_shared::skew::CLEARLY_WRONG * (24 * 366));
        assert!(
            this_device(Lang::En, e).contains("ahead"),
            "{}",
            this_device(Lang::En, e)
        );
        assert!(was_wrong(Lang::En, e).contains("ahead"));
        let at = chrono::DateTime::from_timestamp(1_795_000_000, 0);
        let judged = Judged {
            received: at,
            error: Some(e),
        };
        assert_eq!(
            note(Lang::En, &judged).as_deref(),
            Some(
                "device clock was wrong: at least 1 yr. ahead (received by the server 2026-11-18 11:06 UTC)"
            )
        );
        let right = Judged {
            received: at,
            error: None,
        };
        assert_eq!(note(Lang::En, &right), None);
        for lang in [Lang::Sq, Lang::SrLatn, Lang::SrCyrl] {
            assert_ne!(this_device(lang, e), this_device(Lang::En, e), "{lang:?}");
        }
    }
}
