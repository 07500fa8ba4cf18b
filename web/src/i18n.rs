//! The interface's own words (buttons, headings, messages) in every language, as opposed
//! to a form's labels, which come from the form file.
//!
//! Albanian, Serbian (Latin) and English are written by hand in `i18n/messages.rs`.
//! Serbian Cyrillic is generated once per process from the Latin text by
//! [`to_cyrillic`](crate::translit::to_cyrillic), so the two scripts never drift apart.
//! Turkish, Bosnian and Romani follow [`Lang::fallback_chain`] (Bosnian → Serbian Latin,
//! Turkish and Romani → Albanian), as form labels do.

mod messages;

use std::borrow::Cow;
use std::sync::OnceLock;

use intake_shared::Lang;

use crate::translit::to_cyrillic;
pub use messages::Msg;

/// The first language of a browser's `Accept-Language` header that is `offered`:
/// `sr` alone (and `hr`) is read as Latin script, what Serbian speakers in Kosovo
/// mostly type; `sr-Cyrl-*` and `sr-RS` as Cyrillic. Used by the dashboard and the
/// field app alike.
pub fn from_accept_language(header: &str, offered: &[Lang]) -> Option<Lang> {
    header
        .split(',')
        .map(|part| part.split(';').next().unwrap_or("").trim())
        .filter_map(accept_tag)
        .find(|l| offered.contains(l))
}

fn accept_tag(tag: &str) -> Option<Lang> {
    let lower = tag.to_ascii_lowercase();
    if lower.starts_with("sr-cyrl") || lower == "sr-rs" {
        return Some(Lang::SrCyrl);
    }
    if lower.starts_with("sr") || lower.starts_with("hr") {
        return Some(Lang::SrLatn);
    }
    lower.split('-').next().unwrap_or("").parse().ok()
}

/// The text of `msg` in `lang`, placeholders (`{n}`) left in.
pub fn t(lang: Lang, msg: Msg) -> &'static str {
    let [en, sq, sr] = msg.written();
    for l in lang.fallback_chain() {
        match l {
            Lang::En => return en,
            Lang::Sq => return sq,
            Lang::SrLatn => return sr,
            Lang::SrCyrl => return cyrillic(msg),
            Lang::Tr | Lang::Bs | Lang::Rom => continue,
        }
    }
    // Every chain ends in English and Albanian, which every message has.
    en
}

/// Every message in Serbian Cyrillic, generated on first use.
fn cyrillic(msg: Msg) -> &'static str {
    static CYRILLIC: OnceLock<Vec<String>> = OnceLock::new();
    CYRILLIC.get_or_init(|| {
        Msg::ALL
            .iter()
            .map(|m| to_cyrillic(m.written()[2]))
            .collect()
    })[msg as usize]
        .as_str()
}

/// The text of `msg` in `lang` with its `{name}` placeholders filled from `args`.
///
/// Placeholders are replaced in one pass over the template, so a value that itself
/// contains `{…}` (a user's name, say) is inserted as it is and never expanded. A
/// placeholder without an argument stays visible rather than vanishing.
pub fn tf(lang: Lang, msg: Msg, args: &[(&str, &str)]) -> String {
    fill(t(lang, msg), args).into_owned()
}

/// [`tf`] for the common single number `{n}`.
pub fn tn(lang: Lang, msg: Msg, n: u64) -> String {
    tf(lang, msg, &[("n", &n.to_string())])
}

fn fill<'a>(template: &'a str, args: &[(&str, &str)]) -> Cow<'a, str> {
    if !template.contains('{') {
        return Cow::Borrowed(template);
    }
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let key = &after[..close];
                match args.iter().find(|(k, _)| *k == key) {
                    Some((_, value)) => out.push_str(value),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The `{name}` placeholders of a text, in order.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        names.push(&after[..close]);
        rest = &after[close + 1..];
    }
    names
}

/// The message naming a review status given by its code (`draft`, `needs_changes`, …).
/// Codes are strings so that a status added later shows its code instead of failing to
/// compile here.
pub fn status_msg(code: &str) -> Option<Msg> {
    Some(match code {
        "draft" => Msg::StatusDraft,
        "submitted" => Msg::StatusSubmitted,
        "needs_changes" => Msg::StatusNeedsChanges,
        "approved" => Msg::StatusApproved,
        "rejected" => Msg::StatusRejected,
        "closed" => Msg::StatusClosed,
        _ => return None,
    })
}

/// A review status's name in `lang`, or its code when it has none.
pub fn status_label(lang: Lang, code: &str) -> &str {
    status_msg(code).map_or(code, |m| t(lang, m))
}

/// The message naming a user role given by its code (`paralegal`, `supervisor`, `admin`).
pub fn role_msg(code: &str) -> Option<Msg> {
    Some(match code {
        "paralegal" => Msg::RoleParalegal,
        "supervisor" => Msg::RoleSupervisor,
        "admin" => Msg::RoleAdmin,
        _ => return None,
    })
}

/// A role's name in `lang`, or its code when it has none.
pub fn role_label(lang: Lang, code: &str) -> &str {
    role_msg(code).map_or(code, |m| t(lang, m))
}

/// A language's name in itself, for the language switcher: a person looking for her
/// language recognises it written in that language, whatever the page is shown in.
pub fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Sq => "Shqip",
        Lang::SrLatn => "Srpski",
        Lang::SrCyrl => "Српски",
        Lang::En => "English",
        Lang::Tr => "Türkçe",
        Lang::Bs => "Bosanski",
        Lang::Rom => "Romani",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_languages_map_to_the_offered_ones() {
        let all = &Lang::ALL;
        assert_eq!(
            from_accept_language("sr-Cyrl-RS,sr;q=0.8", all),
            Some(Lang::SrCyrl)
        );
        assert_eq!(from_accept_language("sr", all), Some(Lang::SrLatn));
        assert_eq!(
            from_accept_language("de-DE, sq-AL;q=0.7", all),
            Some(Lang::Sq)
        );
        assert_eq!(from_accept_language("tr-TR", all), Some(Lang::Tr));
        assert_eq!(
            from_accept_language("tr-TR, en;q=0.5", &Lang::REQUIRED),
            Some(Lang::En)
        );
        assert_eq!(from_accept_language("de", all), None);
    }

    const WRITTEN: [Lang; 3] = [Lang::En, Lang::Sq, Lang::SrLatn];

    #[test]
    fn every_message_is_written_in_sq_sr_latn_and_en() {
        for &msg in Msg::ALL {
            for lang in WRITTEN {
                let text = t(lang, msg);
                assert!(!text.trim().is_empty(), "{msg:?} has no {lang} text");
            }
            // Hand-written languages differ from English unless the word is the same in
            // all of them ("Paralegal", "Status"): a copy-paste slip shows up as
            // Albanian *and* Serbian equal to English.
            let [en, sq, sr] = msg.written();
            assert!(
                !(en == sq && en == sr) || en.split_whitespace().count() == 1,
                "{msg:?} looks untranslated: {en:?}"
            );
        }
    }

    #[test]
    fn placeholders_are_the_same_in_every_language() {
        for &msg in Msg::ALL {
            let mut expected = placeholders(t(Lang::En, msg));
            expected.sort_unstable();
            for lang in Lang::ALL {
                let mut got = placeholders(t(lang, msg));
                got.sort_unstable();
                assert_eq!(got, expected, "{msg:?} in {lang}");
            }
        }
    }

    #[test]
    fn message_index_matches_its_position() {
        for (i, &msg) in Msg::ALL.iter().enumerate() {
            assert_eq!(msg as usize, i);
        }
    }

    #[test]
    fn cyrillic_is_generated_from_latin() {
        assert_eq!(t(Lang::SrCyrl, Msg::SignOut), "Одјави се");
        assert_eq!(t(Lang::SrCyrl, Msg::DownloadCsv), "Преузми CSV");
        assert_eq!(
            tf(
                Lang::SrCyrl,
                Msg::CasesShown,
                &[("n", "20"), ("total", "135")]
            ),
            "Приказано случајева: 20 од 135"
        );
        // Nothing Latin is left but placeholders and the kept codes.
        for &msg in Msg::ALL {
            let text = t(Lang::SrCyrl, msg);
            let mut stripped = text.to_string();
            for p in placeholders(text) {
                stripped = stripped.replace(&format!("{{{p}}}"), "");
            }
            for keep in crate::translit::KEEP {
                stripped = stripped.replace(keep, "");
            }
            assert!(
                !stripped.chars().any(|c| c.is_ascii_alphabetic()),
                "{msg:?}: {text}"
            );
        }
    }

    #[test]
    fn other_languages_follow_the_fallback_chain() {
        assert_eq!(t(Lang::Bs, Msg::SignIn), t(Lang::SrLatn, Msg::SignIn));
        assert_eq!(t(Lang::Tr, Msg::SignIn), t(Lang::Sq, Msg::SignIn));
        assert_eq!(t(Lang::Rom, Msg::SignIn), t(Lang::Sq, Msg::SignIn));
    }

    #[test]
    fn tf_fills_once_and_keeps_unknown_placeholders() {
        assert_eq!(
            tf(Lang::En, Msg::TooManyAttempts, &[("n", "15")]),
            "Too many attempts. Try again in 15 min."
        );
        assert_eq!(
            tn(Lang::Sq, Msg::TooManyAttempts, 3),
            "Shumë përpjekje. Provoni sërish pas 3 min."
        );
        // A value containing a placeholder is not expanded again.
        assert_eq!(
            tf(
                Lang::En,
                Msg::SignedInAs,
                &[("user", "{role}"), ("role", "admin")]
            ),
            "Signed in as {role} (admin)"
        );
        assert_eq!(
            tf(Lang::En, Msg::SignedInAs, &[("user", "vjosa")]),
            "Signed in as vjosa ({role})"
        );
    }

    #[test]
    fn status_and_role_codes_have_labels() {
        for code in [
            "draft",
            "submitted",
            "needs_changes",
            "approved",
            "rejected",
            "closed",
        ] {
            assert!(status_msg(code).is_some(), "{code}");
        }
        for status in intake_shared::ReviewStatus::ALL {
            assert!(status_msg(status.as_str()).is_some(), "{status}");
        }
        assert_eq!(
            status_label(Lang::SrCyrl, "needs_changes"),
            "Потребне измене"
        );
        assert_eq!(status_label(Lang::En, "archived"), "archived");
        assert_eq!(role_label(Lang::Sq, "supervisor"), "Mbikëqyrës");
    }
}
