//! Languages the forms are labelled in, and the fallback order used when a label is
//! missing in the requested language, so that a label never shows blank.
//!
//! Order (documented in `docs/FORMS.md`): the requested language, then its close
//! relatives (Serbian scripts for each other, Bosnian → Serbian, Turkish and Romani →
//! Albanian, the language most speakers of those communities in Kosovo also read),
//! then English, then Albanian, then the code itself.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A language the user interface can be shown in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    Sq,
    SrLatn,
    SrCyrl,
    En,
    Tr,
    Bs,
    Rom,
}

impl Lang {
    /// Every supported language, in the order forms list them.
    pub const ALL: [Lang; 7] = [
        Lang::Sq,
        Lang::SrLatn,
        Lang::SrCyrl,
        Lang::En,
        Lang::Tr,
        Lang::Bs,
        Lang::Rom,
    ];

    /// Languages every form must label everything in.
    pub const REQUIRED: [Lang; 4] = [Lang::Sq, Lang::SrLatn, Lang::SrCyrl, Lang::En];

    /// The BCP 47 code used in form files and on the command line.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Sq => "sq",
            Lang::SrLatn => "sr-Latn",
            Lang::SrCyrl => "sr-Cyrl",
            Lang::En => "en",
            Lang::Tr => "tr",
            Lang::Bs => "bs",
            Lang::Rom => "rom",
        }
    }

    /// The languages to try, in order, when looking a label up for `self`.
    pub fn fallback_chain(self) -> Vec<Lang> {
        let relatives: &[Lang] = match self {
            Lang::SrCyrl => &[Lang::SrLatn],
            Lang::SrLatn => &[Lang::SrCyrl],
            Lang::Bs => &[Lang::SrLatn, Lang::SrCyrl],
            Lang::Tr | Lang::Rom => &[Lang::Sq],
            Lang::Sq | Lang::En => &[],
        };
        let mut chain = vec![self];
        for l in relatives.iter().chain(&[Lang::En, Lang::Sq]) {
            if !chain.contains(l) {
                chain.push(*l);
            }
        }
        chain
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A language code that is not one of [`Lang::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?}; known: sq, sr-Latn, sr-Cyrl, en, tr, bs, rom")]
pub struct UnknownLang(pub String);

impl FromStr for Lang {
    type Err = UnknownLang;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Accept the common spellings people type (case-insensitive, `_` for `-`).
        let norm = s.trim().replace('_', "-").to_ascii_lowercase();
        Ok(match norm.as_str() {
            "sq" | "sq-al" | "sq-xk" => Lang::Sq,
            "sr-latn" | "sr" => Lang::SrLatn,
            "sr-cyrl" => Lang::SrCyrl,
            "en" => Lang::En,
            "tr" => Lang::Tr,
            "bs" => Lang::Bs,
            "rom" | "rmy" => Lang::Rom,
            _ => return Err(UnknownLang(s.to_string())),
        })
    }
}

/// Labels of one thing (a form, field or choice) by language code.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Labels(pub BTreeMap<String, String>);

impl Labels {
    /// The label in `lang`, following [`Lang::fallback_chain`]; `code` when none is
    /// present, so the result is never blank.
    pub fn get<'a>(&'a self, lang: Lang, code: &'a str) -> &'a str {
        lang.fallback_chain()
            .into_iter()
            .find_map(|l| self.0.get(l.code()).filter(|s| !s.trim().is_empty()))
            .map(String::as_str)
            .unwrap_or(code)
    }

    /// The languages of [`Lang::REQUIRED`] that have no non-blank label.
    pub fn missing_required(&self) -> Vec<Lang> {
        Lang::REQUIRED
            .into_iter()
            .filter(|l| self.0.get(l.code()).is_none_or(|s| s.trim().is_empty()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_chain_ends_in_english_then_albanian() {
        assert_eq!(
            Lang::Bs.fallback_chain(),
            vec![Lang::Bs, Lang::SrLatn, Lang::SrCyrl, Lang::En, Lang::Sq]
        );
        assert_eq!(Lang::En.fallback_chain(), vec![Lang::En, Lang::Sq]);
        assert_eq!(
            Lang::Rom.fallback_chain(),
            vec![Lang::Rom, Lang::Sq, Lang::En]
        );
    }

    #[test]
    fn missing_label_falls_back_and_never_blank() {
        let mut l = Labels::default();
        assert_eq!(l.get(Lang::SrCyrl, "urgency"), "urgency");
        l.0.insert("sr-Latn".into(), "Hitnost".into());
        l.0.insert("sr-Cyrl".into(), "  ".into());
        assert_eq!(l.get(Lang::SrCyrl, "urgency"), "Hitnost");
        l.0.insert("en".into(), "Urgency".into());
        assert_eq!(l.get(Lang::Tr, "urgency"), "Urgency");
    }

    #[test]
    fn parses_codes_loosely() {
        assert_eq!("sr_cyrl".parse::<Lang>().unwrap(), Lang::SrCyrl);
        assert!("de".parse::<Lang>().is_err());
    }
}
