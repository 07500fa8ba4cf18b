//! The forms, for an app to draw its screens: each field's name, type, label, hint
//! and choices in a chosen language (with the fallback chain of
//! `intake_shared::lang`, so a label is never blank), its required mark and when it
//! applies; and the check of one typed value against its field, with the form's
//! message in that language. None of these calls does I/O: they read the forms built
//! into the library and may run on any thread.

use std::sync::Arc;

use intake_shared::{FieldType, Form, FormRegistry, Issue, Lang, Value};

use crate::IntakeError;

/// The form of follow-up actions (`IntakeStore::add_followup`); records are not
/// started with it.
pub const FOLLOWUP_FORM: &str = "followup";

/// A field's type, which says which input to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// Free text; concurrent edits on two devices merge character by character.
    LongText,
    Integer,
    /// A calendar date, typed and stored as `YYYY-MM-DD`.
    Date,
    /// One code out of `FieldDef::choices`.
    Choice,
    /// Yes or no (typed as `yes`/`no`, `po`/`jo`, `da`/`ne`, `true`/`false`).
    YesNo,
}

impl From<FieldType> for FieldKind {
    fn from(t: FieldType) -> Self {
        match t {
            FieldType::Text => FieldKind::Text,
            FieldType::LongText => FieldKind::LongText,
            FieldType::Integer => FieldKind::Integer,
            FieldType::Date => FieldKind::Date,
            FieldType::Choice => FieldKind::Choice,
            FieldType::YesNo => FieldKind::YesNo,
        }
    }
}

/// One answer of a choice field: the code stored, and its label.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ChoiceDef {
    pub value: String,
    pub label: String,
}

/// A field that applies only when another field holds a value (`field == equals`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Relevance {
    pub field: String,
    pub equals: String,
}

/// One question of a form, labelled in the language asked for.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct FieldDef {
    pub name: String,
    pub kind: FieldKind,
    pub label: String,
    pub hint: Option<String>,
    /// Must be answered before the record leaves draft.
    pub required: bool,
    /// Personal or identifying data: an app must not log it or put it in
    /// notifications.
    pub sensitive: bool,
    /// The answers of a choice field, in form order (empty otherwise).
    pub choices: Vec<ChoiceDef>,
    pub relevant: Option<Relevance>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub max_length: Option<u32>,
}

/// A form version with its fields in order.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct FormDef {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub fields: Vec<FieldDef>,
}

/// Parses a language code (`sq`, `sr-Latn`, `sr-Cyrl`, `en`, `tr`, `bs`, `rom`).
pub(crate) fn lang(code: &str) -> Result<Lang, IntakeError> {
    code.parse()
        .map_err(|e: intake_shared::lang::UnknownLang| IntakeError::input(e.to_string()))
}

/// The latest version of form `id`.
pub(crate) fn latest(id: &str) -> Result<Arc<Form>, IntakeError> {
    FormRegistry::builtin()
        .latest(id)
        .map_err(|_| IntakeError::input(format!("unknown form {id:?}")))
}

/// Parses what a person typed for `field` of `form`; a value that breaks the field is
/// [`IntakeError::InvalidValue`] with the message in `lang`.
pub(crate) fn parse(
    form: &Form,
    field: &str,
    input: &str,
    lang: Lang,
) -> Result<Value, IntakeError> {
    form.parse_input(field, input).map_err(|rule| {
        IntakeError::invalid(
            form,
            Issue {
                field: field.to_string(),
                rule,
            },
            lang,
        )
    })
}

/// The codes of the languages the forms are labelled in.
#[uniffi::export]
pub fn languages() -> Vec<String> {
    Lang::ALL.iter().map(|l| l.code().to_string()).collect()
}

/// The ids of the forms records can be started with (not the follow-up form).
#[uniffi::export]
pub fn record_forms() -> Vec<String> {
    let mut ids: Vec<String> = FormRegistry::builtin()
        .iter()
        .map(|f| f.id.clone())
        .filter(|id| id != FOLLOWUP_FORM)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The latest version of form `form_id` (`"followup"` for follow-up actions),
/// labelled in `lang`.
#[uniffi::export]
pub fn form(form_id: String, lang: String) -> Result<FormDef, IntakeError> {
    let lang = self::lang(&lang)?;
    Ok(form_def(latest(&form_id)?.as_ref(), lang))
}

/// Checks one typed value for `field` of the latest `form_id`: nothing when it is
/// acceptable, else [`IntakeError::InvalidValue`] with the form's message in `lang`.
/// A blank value passes (whether it is required is checked on submit).
#[uniffi::export]
pub fn validate_value(
    form_id: String,
    field: String,
    value: String,
    lang: String,
) -> Result<(), IntakeError> {
    let lang = self::lang(&lang)?;
    parse(latest(&form_id)?.as_ref(), &field, &value, lang).map(|_| ())
}

pub(crate) fn form_def(form: &Form, lang: Lang) -> FormDef {
    FormDef {
        id: form.id.clone(),
        version: form.version,
        title: form.title.get(lang, &form.id).to_string(),
        fields: form
            .fields()
            .iter()
            .map(|f| FieldDef {
                name: f.name.clone(),
                kind: f.kind.into(),
                label: f.label.get(lang, &f.name).to_string(),
                hint: f.hint.as_ref().map(|h| h.get(lang, "").to_string()),
                required: f.required,
                sensitive: f.sensitive,
                choices: form
                    .choices(f)
                    .iter()
                    .map(|c| ChoiceDef {
                        value: c.value.clone(),
                        label: c.label.get(lang, &c.value).to_string(),
                    })
                    .collect(),
                relevant: f.relevant.as_ref().map(|r| Relevance {
                    field: r.field.clone(),
                    equals: r.equals.clone(),
                }),
                min: f.min,
                max: f.max,
                max_length: f.max_length.map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
            })
            .collect(),
    }
}
