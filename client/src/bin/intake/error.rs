//! Failures and exit codes. A mistake in what the user typed (unknown field, bad
//! choice, unknown record, incomplete record, ...) is an [`InputError`] and exits with
//! 2; everything else exits with 1. Library errors about input are turned into
//! `InputError`s here, with their messages in the user's language.

use std::fmt;
use std::process::ExitCode;

use intake_client::StoreError;
use intake_shared::{Form, Issue, Lang, RecordError};

/// Wrong input: the command changed nothing, and running it again as typed will not
/// help. Exit code 2.
#[derive(Debug)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Shorthand for returning an [`InputError`].
pub fn input(message: impl Into<String>) -> anyhow::Error {
    InputError(message.into()).into()
}

/// 2 for wrong input, 1 for any other failure.
pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<InputError>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// A record error, with field problems told in `lang` using `form`'s labels.
pub fn record(e: RecordError, form: &Form, lang: Lang) -> anyhow::Error {
    match e {
        RecordError::Invalid { field, rule } => {
            input(issue_line(form, &Issue { field, rule }, lang))
        }
        RecordError::Incomplete { issues } => {
            let lines: Vec<String> = issues
                .iter()
                .map(|i| format!("\n  {}", issue_line(form, i, lang)))
                .collect();
            input(format!("the record is incomplete:{}", lines.concat()))
        }
        other => other.into(),
    }
}

/// A store error; record errors are told as [`record`] does.
pub fn store(e: StoreError, form: &Form, lang: Lang) -> anyhow::Error {
    match e {
        StoreError::Record(e) => record(e, form, lang),
        StoreError::NotFound(id) => input(format!("no record {id}")),
        other => other.into(),
    }
}

/// One problem in words: "Full name (full_name): required: please answer". The field
/// name is kept because it is what `--set` takes.
pub fn issue_line(form: &Form, issue: &Issue, lang: Lang) -> String {
    match form.field(&issue.field) {
        Some(f) => format!(
            "{} ({}): {}",
            f.label.get(lang, &f.name),
            f.name,
            issue.rule.message(lang)
        ),
        None => issue.message(lang),
    }
}
