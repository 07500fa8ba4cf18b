//! Turning what a person typed into a stored value, and checking a stored value
//! against its field. Both answer with a [`Rule`] naming what is wrong, so callers can
//! show a translated message.

use chrono::NaiveDate;

use super::{Field, FieldType, Form};
use crate::validate::Rule;
use crate::value::Value;

impl Form {
    /// Parses user input for `field` ("2026-04-19", "yes", "roma", "42", …).
    pub fn parse_input(&self, field: &str, input: &str) -> Result<Value, Rule> {
        let f = self.field(field).ok_or(Rule::UnknownField)?;
        let value = match f.kind {
            FieldType::Text | FieldType::LongText | FieldType::Choice | FieldType::Date => {
                Value::Text(input.to_string())
            }
            FieldType::Integer => input
                .trim()
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| Rule::NotAnInteger)?,
            FieldType::YesNo => Value::Bool(parse_yes_no(input).ok_or(Rule::NotYesNo)?),
        };
        self.check_value(f, &value)?;
        Ok(value)
    }

    /// Checks a stored value against its field. Blank text is "unanswered" and passes
    /// here; required-ness is checked by [`Form::validate`](crate::Form::validate).
    pub fn check_value(&self, f: &Field, value: &Value) -> Result<(), Rule> {
        if value.is_blank() {
            return Ok(());
        }
        match (f.kind, value) {
            (FieldType::Text | FieldType::LongText, Value::Text(s)) => match f.max_length {
                Some(max) if s.chars().count() > max => Err(Rule::TooLong { max }),
                _ => Ok(()),
            },
            (FieldType::Date, Value::Text(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|_| ())
                .map_err(|_| Rule::NotADate),
            (FieldType::Choice, Value::Text(s)) => {
                let choices = self.choices(f);
                if choices.iter().any(|c| &c.value == s) {
                    Ok(())
                } else {
                    Err(Rule::NotAChoice {
                        allowed: choices.iter().map(|c| c.value.clone()).collect(),
                    })
                }
            }
            (FieldType::Integer, Value::Int(i)) => {
                if f.min.is_some_and(|m| *i < m) || f.max.is_some_and(|m| *i > m) {
                    Err(Rule::OutOfRange {
                        min: f.min,
                        max: f.max,
                    })
                } else {
                    Ok(())
                }
            }
            (FieldType::YesNo, Value::Bool(_)) => Ok(()),
            (kind, _) => Err(Rule::WrongType {
                expected: kind.as_str(),
            }),
        }
    }
}

/// Yes/no in the languages people type on the command line, plus the JSON booleans.
fn parse_yes_no(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "po" | "da" | "да" | "evet" | "ova" => Some(true),
        "no" | "n" | "false" | "0" | "jo" | "ne" | "не" | "hayır" | "hayir" | "na" => {
            Some(false)
        }
        _ => None,
    }
}
