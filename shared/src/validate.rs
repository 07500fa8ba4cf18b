//! Validation of a record against its form. Problems are reported as [`Issue`]s naming
//! the field and the [`Rule`] broken; the data itself is never changed or dropped —
//! invalid data stays visible so a person can fix it. Messages are translated.

use std::collections::BTreeMap;

use crate::form::Form;
use crate::lang::Lang;
use crate::status::ReviewStatus;
use crate::value::Value;

/// What is wrong with a field's value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// The form has no such field.
    UnknownField,
    /// A required field is unanswered (checked for every status but `draft`).
    Required,
    /// The stored value has the wrong shape for the field type.
    WrongType {
        expected: &'static str,
    },
    NotAChoice {
        allowed: Vec<String>,
    },
    NotADate,
    NotAnInteger,
    NotYesNo,
    OutOfRange {
        min: Option<i64>,
        max: Option<i64>,
    },
    TooLong {
        max: usize,
    },
    /// Concurrent values are waiting for someone to choose (blocks submission).
    Conflict,
}

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Issue {
    pub field: String,
    #[serde(flatten)]
    pub rule: Rule,
}

impl Issue {
    /// The problem in words, in `lang` (English where no translation exists).
    pub fn message(&self, lang: Lang) -> String {
        format!("{}: {}", self.field, self.rule.message(lang))
    }
}

impl Rule {
    /// The rule in words, in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        let chain = lang.fallback_chain();
        let pick = |msgs: [(Lang, &str); 4]| {
            chain
                .iter()
                .find_map(|l| {
                    msgs.iter()
                        .find(|(m, _)| m == l)
                        .map(|(_, s)| s.to_string())
                })
                .unwrap_or_else(|| msgs[0].1.to_string())
        };
        use Lang::*;
        match self {
            Rule::UnknownField => pick([
                (En, "no such field in this form"),
                (Sq, "kjo fushë nuk ekziston në këtë formular"),
                (SrLatn, "ovo polje ne postoji u ovom obrascu"),
                (SrCyrl, "ово поље не постоји у овом обрасцу"),
            ]),
            Rule::Required => pick([
                (En, "required: please answer"),
                (Sq, "e detyrueshme: ju lutem plotësoni"),
                (SrLatn, "obavezno: molimo odgovorite"),
                (SrCyrl, "обавезно: молимо одговорите"),
            ]),
            Rule::WrongType { expected } => {
                pick([
                    (En, "wrong kind of value, expected"),
                    (Sq, "lloj i gabuar i vlerës, pritej"),
                    (SrLatn, "pogrešna vrsta vrednosti, očekivano"),
                    (SrCyrl, "погрешна врста вредности, очекивано"),
                ]) + " "
                    + expected
            }
            Rule::NotAChoice { allowed } => {
                pick([
                    (En, "not one of the choices; allowed:"),
                    (Sq, "nuk është nga zgjedhjet; të lejuara:"),
                    (SrLatn, "nije jedan od izbora; dozvoljeno:"),
                    (SrCyrl, "није један од избора; дозвољено:"),
                ]) + " "
                    + &allowed.join(", ")
            }
            Rule::NotADate => pick([
                (En, "not a date (expected YYYY-MM-DD)"),
                (Sq, "nuk është datë (pritej VVVV-MM-DD)"),
                (SrLatn, "nije datum (očekivano GGGG-MM-DD)"),
                (SrCyrl, "није датум (очекивано ГГГГ-ММ-ДД)"),
            ]),
            Rule::NotAnInteger => pick([
                (En, "not a whole number"),
                (Sq, "nuk është numër i plotë"),
                (SrLatn, "nije ceo broj"),
                (SrCyrl, "није цео број"),
            ]),
            Rule::NotYesNo => pick([
                (En, "answer yes or no"),
                (Sq, "përgjigjuni po ose jo"),
                (SrLatn, "odgovorite da ili ne"),
                (SrCyrl, "одговорите да или не"),
            ]),
            Rule::OutOfRange { min, max } => {
                let range = format!(
                    "{}–{}",
                    min.map_or("…".into(), |m| m.to_string()),
                    max.map_or("…".into(), |m| m.to_string())
                );
                pick([
                    (En, "out of range"),
                    (Sq, "jashtë kufijve"),
                    (SrLatn, "van opsega"),
                    (SrCyrl, "ван опсега"),
                ]) + " "
                    + &range
            }
            Rule::TooLong { max } => {
                pick([
                    (En, "too long; at most this many characters:"),
                    (Sq, "shumë i gjatë; numri maksimal i shkronjave:"),
                    (SrLatn, "predugačko; najviše znakova:"),
                    (SrCyrl, "предугачко; највише знакова:"),
                ]) + " "
                    + &max.to_string()
            }
            Rule::Conflict => pick([
                (En, "two values were recorded at the same time: choose one"),
                (Sq, "dy vlera u regjistruan njëkohësisht: zgjidhni njërën"),
                (
                    SrLatn,
                    "dve vrednosti su upisane istovremeno: izaberite jednu",
                ),
                (
                    SrCyrl,
                    "две вредности су уписане истовремено: изаберите једну",
                ),
            ]),
        }
    }
}

impl Form {
    /// Checks current values against the form for a record in `status`.
    ///
    /// `values` are the current field values; `conflicted` the fields holding more than
    /// one concurrent value. Unknown fields and bad values are reported in every status
    /// (they are kept, never dropped); required fields and conflicts only block
    /// statuses past `draft`. Fields whose `relevant` condition is false are not
    /// required.
    pub fn validate(
        &self,
        values: &BTreeMap<String, Value>,
        conflicted: &[String],
        status: ReviewStatus,
    ) -> Vec<Issue> {
        let mut issues = Vec::new();
        let push = |issues: &mut Vec<Issue>, field: &str, rule| {
            issues.push(Issue {
                field: field.to_string(),
                rule,
            })
        };
        for (name, v) in values {
            match self.field(name) {
                None => push(&mut issues, name, Rule::UnknownField),
                Some(f) => {
                    if let Err(rule) = self.check_value(f, v) {
                        push(&mut issues, name, rule);
                    }
                }
            }
        }
        if status.requires_complete() {
            for f in self.fields() {
                let relevant = f.relevant.as_ref().is_none_or(|r| {
                    values.get(&r.field).and_then(Value::as_str) == Some(r.equals.as_str())
                });
                let answered = values.get(&f.name).is_some_and(|v| !v.is_blank());
                // A required yes/no needs an answer, not a "yes": a recorded "no" (no
                // consent) is information the supervisor must see.
                if f.required && relevant && !answered {
                    push(&mut issues, &f.name, Rule::Required);
                }
            }
            for name in conflicted {
                push(&mut issues, name, Rule::Conflict);
            }
        }
        issues
    }
}
