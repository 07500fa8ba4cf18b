//! What the paralegal typed into a form, checked field by field against the form: the
//! values to write (only those that differ from what is stored, so an unchanged field
//! never adds a change that could conflict with someone else's), and for each value
//! that breaks its field the form's message in her language. Invalid input is kept and
//! shown as typed, never dropped.

use std::collections::BTreeMap;

use intake_shared::{FieldType, Form, Lang, Value};

/// The prefix of a case field's input name (`f.full_name`).
pub const FIELD_PREFIX: &str = "f.";
/// The prefix of a follow-up field's input name.
pub const ACTION_PREFIX: &str = "a.";

/// A form's posted fields, read.
#[derive(Debug, Default)]
pub struct Typed {
    /// Fields to write (`None`: clear the answer).
    pub changes: Vec<(String, Option<Value>)>,
    /// What is wrong with a field, in the user's language.
    pub errors: BTreeMap<String, String>,
    /// What the form shows afterwards: stored values overlaid with what was typed.
    pub shown: BTreeMap<String, Value>,
}

/// Reads the fields of `form` named `{prefix}{field}` from `posted` against `current`.
/// A field missing from the post (a yes/no left unchosen) is left as it is.
pub fn read(
    form: &Form,
    current: &BTreeMap<String, Value>,
    posted: &[(String, String)],
    prefix: &str,
    lang: Lang,
) -> Typed {
    let mut typed = Typed {
        shown: current.clone(),
        ..Typed::default()
    };
    for field in form.fields() {
        let name = format!("{prefix}{}", field.name);
        let Some((_, raw)) = posted.iter().find(|(k, _)| *k == name) else {
            continue;
        };
        // Browsers send line breaks as CRLF; the store keeps LF, so an untouched text
        // compares equal to what is stored.
        let input = raw.replace("\r\n", "\n");
        let stored = current.get(&field.name).filter(|v| !v.is_blank());
        if input.trim().is_empty() {
            if stored.is_some() {
                typed.changes.push((field.name.clone(), None));
            }
            typed.shown.remove(&field.name);
            continue;
        }
        let input = if field.kind == FieldType::LongText {
            input
        } else {
            input.trim().to_string()
        };
        match form.parse_input(&field.name, &input) {
            Ok(value) => {
                if stored != Some(&value) {
                    typed
                        .changes
                        .push((field.name.clone(), Some(value.clone())));
                }
                typed.shown.insert(field.name.clone(), value);
            }
            Err(rule) => {
                typed.errors.insert(field.name.clone(), rule.message(lang));
                typed.shown.insert(field.name.clone(), Value::Text(input));
            }
        }
    }
    typed
}

#[cfg(test)]
mod tests {
    use super::*;
    use intake_shared::FormRegistry;

    fn post(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_changed_fields_are_written_and_bad_ones_kept_with_a_message() {
        let form = FormRegistry::builtin().latest("intake").unwrap();
        let mut current = BTreeMap::new();
        current.insert("full_name".to_string(), Value::Text("Drita".into()));
        current.insert("narrative".to_string(), Value::Text("a\nb".into()));
        current.insert("urgency".to_string(), Value::Text("high".into()));
        let typed = read(
            &form,
            &current,
            &post(&[
                ("f.full_name", "Drita"),
                ("f.narrative", "a\r\nb"),
                ("f.urgency", ""),
                ("f.intake_date", "19.4.1990"),
                ("f.municipality", "prizren"),
            ]),
            FIELD_PREFIX,
            Lang::En,
        );
        // In the form's order; the unchanged name and narrative (CRLF from the
        // browser) are not written.
        assert_eq!(
            typed.changes,
            [
                (
                    "municipality".to_string(),
                    Some(Value::Text("prizren".into()))
                ),
                ("urgency".to_string(), None),
            ]
        );
        assert!(
            typed.errors.contains_key("intake_date"),
            "{:?}",
            typed.errors
        );
        assert_eq!(
            typed.shown.get("intake_date"),
            Some(&Value::Text("19.4.1990".into()))
        );
    }
}
