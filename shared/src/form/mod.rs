//! Form definitions: the fields of a form version, their types, choices, labels and
//! rules, parsed from the JSON files in `schemas/` (format in `docs/FORMS.md`).
//!
//! A [`Form`] is checked when it is parsed (unique names, known choice lists, labels in
//! every required language, `relevant` pointing at an earlier field), so the rest of
//! the code can trust it.

mod input;
mod registry;

pub use registry::{EMBEDDED, FormRegistry};

use std::collections::{BTreeMap, BTreeSet};

use crate::lang::{Labels, Lang};

/// The type of a field's answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// One line of text.
    Text,
    /// Free text stored as collaborative text: concurrent edits merge character-wise.
    LongText,
    Integer,
    /// A calendar date, stored as `YYYY-MM-DD`.
    Date,
    /// One code out of a list.
    Choice,
    /// Yes or no, stored as a boolean.
    YesNo,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::LongText => "long_text",
            FieldType::Integer => "integer",
            FieldType::Date => "date",
            FieldType::Choice => "choice",
            FieldType::YesNo => "yes_no",
        }
    }
}

/// One answer of a choice field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub value: String,
    pub label: Labels,
}

/// A field is asked only when an earlier field has a given value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relevant {
    pub field: String,
    pub equals: String,
}

/// One question of a form.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub label: Labels,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<Labels>,
    #[serde(default)]
    pub required: bool,
    /// Personal or identifying data: left out of exports unless asked, never logged.
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Choice>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice_list: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevant: Option<Relevant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
}

/// Labels of the two answers of every yes/no field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YesNoLabels {
    pub yes: Labels,
    pub no: Labels,
}

/// The file format, before its cross-references are checked.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FormFile {
    form: String,
    version: u32,
    title: Labels,
    languages: Vec<String>,
    yes_no: YesNoLabels,
    #[serde(default)]
    choice_lists: BTreeMap<String, Vec<Choice>>,
    fields: Vec<Field>,
}

/// A checked form version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    pub id: String,
    pub version: u32,
    pub title: Labels,
    pub languages: Vec<String>,
    pub yes_no: YesNoLabels,
    choice_lists: BTreeMap<String, Vec<Choice>>,
    fields: Vec<Field>,
}

/// A form file that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("form file is not valid: {0}")]
    Syntax(String),
    #[error("form {form}: {problem}")]
    Invalid { form: String, problem: String },
    #[error("unknown form {form} version {version}")]
    Unknown { form: String, version: u32 },
}

impl Form {
    /// Parses and checks a form file.
    pub fn from_json(text: &str) -> Result<Form, FormError> {
        let file: FormFile =
            serde_json::from_str(text).map_err(|e| FormError::Syntax(e.to_string()))?;
        let form = Form {
            id: file.form,
            version: file.version,
            title: file.title,
            languages: file.languages,
            yes_no: file.yes_no,
            choice_lists: file.choice_lists,
            fields: file.fields,
        };
        form.check()?;
        Ok(form)
    }

    fn check(&self) -> Result<(), FormError> {
        let bad = |problem: String| FormError::Invalid {
            form: format!("{}.v{}", self.id, self.version),
            problem,
        };
        let ident = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if !ident(&self.id) || self.version == 0 {
            return Err(bad("form id must be snake_case and version ≥ 1".into()));
        }
        let mut labels: Vec<(String, &Labels)> = vec![("title".into(), &self.title)];
        labels.push(("yes_no.yes".into(), &self.yes_no.yes));
        labels.push(("yes_no.no".into(), &self.yes_no.no));
        for (name, list) in &self.choice_lists {
            check_choices(list).map_err(|p| bad(format!("choice list {name}: {p}")))?;
            for c in list {
                labels.push((format!("choice list {name} value {}", c.value), &c.label));
            }
        }
        let mut seen = BTreeSet::new();
        for f in &self.fields {
            if !ident(&f.name) {
                return Err(bad(format!("field name {:?} must be snake_case", f.name)));
            }
            if !seen.insert(f.name.as_str()) {
                return Err(bad(format!("field {} defined twice", f.name)));
            }
            labels.push((format!("field {}", f.name), &f.label));
            if let Some(h) = &f.hint {
                labels.push((format!("hint of field {}", f.name), h));
            }
            match (f.kind, &f.choices, &f.choice_list) {
                (FieldType::Choice, Some(list), None) => {
                    check_choices(list).map_err(|p| bad(format!("field {}: {p}", f.name)))?;
                    for c in list {
                        labels.push((format!("field {} choice {}", f.name, c.value), &c.label));
                    }
                }
                (FieldType::Choice, None, Some(list)) if self.choice_lists.contains_key(list) => {}
                (FieldType::Choice, None, Some(list)) => {
                    return Err(bad(format!("field {}: no choice list {list}", f.name)));
                }
                (FieldType::Choice, _, _) => {
                    return Err(bad(format!(
                        "field {}: a choice field needs exactly one of choices or choice_list",
                        f.name
                    )));
                }
                (_, None, None) => {}
                _ => {
                    return Err(bad(format!(
                        "field {}: only choice fields have choices",
                        f.name
                    )));
                }
            }
            if (f.min.is_some() || f.max.is_some()) && f.kind != FieldType::Integer {
                return Err(bad(format!(
                    "field {}: min/max only apply to integers",
                    f.name
                )));
            }
            if f.max_length.is_some() && !matches!(f.kind, FieldType::Text | FieldType::LongText) {
                return Err(bad(format!(
                    "field {}: max_length only applies to text",
                    f.name
                )));
            }
            if let Some(r) = &f.relevant {
                // Only earlier fields: the form reads top to bottom, and no cycles.
                let earlier = self
                    .field(&r.field)
                    .filter(|e| seen.contains(e.name.as_str()));
                let Some(earlier) = earlier.filter(|e| e.name != f.name) else {
                    return Err(bad(format!(
                        "field {}: relevant refers to {}, which is not an earlier field",
                        f.name, r.field
                    )));
                };
                if earlier.kind == FieldType::Choice
                    && !self.choices(earlier).iter().any(|c| c.value == r.equals)
                {
                    return Err(bad(format!(
                        "field {}: relevant value {} is not a choice of {}",
                        f.name, r.equals, r.field
                    )));
                }
            }
        }
        for (what, l) in labels {
            let missing = l.missing_required();
            if !missing.is_empty() {
                let codes: Vec<&str> = missing.iter().map(|l| l.code()).collect();
                return Err(bad(format!("{what} has no label in {}", codes.join(", "))));
            }
        }
        Ok(())
    }

    /// The fields in the order they are asked.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The answers of a choice field (empty for other types).
    pub fn choices<'a>(&'a self, field: &'a Field) -> &'a [Choice] {
        match (&field.choices, &field.choice_list) {
            (Some(list), _) => list,
            (None, Some(name)) => self.choice_lists.get(name).map_or(&[], Vec::as_slice),
            (None, None) => &[],
        }
    }

    /// The label of a field's value in `lang` (choice labels, yes/no labels), or the
    /// value itself for free text.
    pub fn value_label(&self, field: &Field, value: &crate::Value, lang: Lang) -> String {
        use crate::Value;
        match (field.kind, value) {
            (FieldType::YesNo, Value::Bool(true)) => self.yes_no.yes.get(lang, "yes").into(),
            (FieldType::YesNo, Value::Bool(false)) => self.yes_no.no.get(lang, "no").into(),
            (FieldType::Choice, Value::Text(code)) => self
                .choices(field)
                .iter()
                .find(|c| &c.value == code)
                .map_or(code.clone(), |c| c.label.get(lang, code).to_string()),
            _ => value.to_string(),
        }
    }
}

fn check_choices(list: &[Choice]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    if list.is_empty() {
        return Err("no choices".into());
    }
    for c in list {
        if c.value.trim().is_empty() || !seen.insert(c.value.as_str()) {
            return Err(format!("choice value {:?} empty or repeated", c.value));
        }
    }
    Ok(())
}
