//! Parsing what the user typed: record ids, languages, statuses, form ids and
//! answers of `FIELD=VALUE` (checked against the form before anything is opened or
//! written). Every failure here is an [`InputError`](crate::error::InputError).

use std::sync::Arc;

use intake_shared::form::EMBEDDED;
use intake_shared::{Form, FormRegistry, Issue, Lang, RecordId, ReviewStatus, Rule, Value};

use crate::error::{input, issue_line};

/// The form of follow-up actions; it is not a form records are started with.
pub const FOLLOWUP_FORM: &str = "followup";

pub fn lang(code: &str) -> anyhow::Result<Lang> {
    code.parse().map_err(|e| input(format!("--lang: {e}")))
}

pub fn record_id(text: &str) -> anyhow::Result<RecordId> {
    text.parse().map_err(|e| input(format!("{e}")))
}

pub fn status(text: &str) -> anyhow::Result<ReviewStatus> {
    text.parse().map_err(|e| input(format!("{e}")))
}

/// The latest version of a form records can be started with.
pub fn record_form(id: &str) -> anyhow::Result<Arc<Form>> {
    let known = record_form_ids();
    if id == FOLLOWUP_FORM {
        return Err(input(format!(
            "{FOLLOWUP_FORM} is the form of follow-up actions: use `intake followup ID`; \
             forms for new records: {}",
            known.join(", ")
        )));
    }
    FormRegistry::builtin()
        .latest(id)
        .map_err(|_| input(format!("unknown form {id:?}; forms: {}", known.join(", "))))
}

/// The latest follow-up form.
pub fn followup_form() -> anyhow::Result<Arc<Form>> {
    Ok(FormRegistry::builtin().latest(FOLLOWUP_FORM)?)
}

/// Ids of the built-in forms records can be started with. The registry cannot list
/// its forms, so this reads the embedded file names (`<id>.v<version>.json`) and keeps
/// those the registry knows.
fn record_form_ids() -> Vec<String> {
    let mut ids: Vec<String> = EMBEDDED
        .iter()
        .filter_map(|(name, _)| name.split('.').next())
        .filter(|id| *id != FOLLOWUP_FORM && FormRegistry::builtin().latest(id).is_ok())
        .map(str::to_string)
        .collect();
    ids.dedup();
    ids
}

/// Parses `FIELD=VALUE` answers (already read by [`crate::source::assignments`])
/// against `form`, in the order given.
pub fn answers(
    form: &Form,
    given: &[(String, String)],
    lang: Lang,
) -> anyhow::Result<Vec<(String, Value)>> {
    given
        .iter()
        .map(|(field, value)| Ok((field.clone(), value_for(form, field, value, lang)?)))
        .collect()
}

/// Checks that `form` has `field`, before an editor is opened for it.
pub fn known_field(form: &Form, field: &str, lang: Lang) -> anyhow::Result<()> {
    match form.field(field) {
        Some(_) => Ok(()),
        None => Err(field_error(form, field, Rule::UnknownField, lang)),
    }
}

/// Parses one answer for `field` of `form`; the message names the field and, for a
/// choice, lists the allowed values.
pub fn value_for(form: &Form, field: &str, value: &str, lang: Lang) -> anyhow::Result<Value> {
    form.parse_input(field, value)
        .map_err(|rule| field_error(form, field, rule, lang))
}

/// What is wrong with `field`, in `lang`; an unknown field lists the form's fields.
fn field_error(form: &Form, field: &str, rule: Rule, lang: Lang) -> anyhow::Error {
    let issue = Issue {
        field: field.to_string(),
        rule,
    };
    let mut message = issue_line(form, &issue, lang);
    if form.field(field).is_none() {
        let names: Vec<&str> = form.fields().iter().map(|f| f.name.as_str()).collect();
        message += &format!("; fields of {}: {}", form.id, names.join(", "));
    }
    input(message)
}
