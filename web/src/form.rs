//! The one form renderer of both web interfaces: a form field as an HTML input in a
//! language (the field app's case form, the dashboard's "new value" for a conflict), and
//! a stored value as text (the dashboard's case page, the field app's case summary).
//!
//! Stored data that breaks its form (a text in an integer field, a code no longer among
//! the choices) is shown as it is, never blanked: the invariant is that invalid data
//! stays visible until a person fixes it. That is why an integer or date input falls
//! back to a text input when the stored value does not fit it: browsers empty a number
//! or date input whose value they cannot parse.
//!
//! Required fields are marked, not enforced with the `required` attribute: a draft may
//! be saved incomplete, and completeness is checked on submission, with the form's
//! messages.

use std::collections::BTreeMap;

use intake_shared::form::Choice;
use intake_shared::{Field, FieldType, Form, Lang, Value};
use maud::{Markup, html};

use crate::i18n::{Msg, t};

/// A field's label in `lang` (following the fallback order; never blank).
pub fn label(field: &Field, lang: Lang) -> &str {
    field.label.get(lang, &field.name)
}

/// One field as a labelled input named `name`, showing `value` when there is one.
pub fn field_input(
    form: &Form,
    field: &Field,
    value: Option<&Value>,
    lang: Lang,
    name: &str,
) -> Markup {
    field_input_with_error(form, field, value, lang, name, None)
}

/// [`field_input`] with a message saying what is wrong with the value (the form's
/// translated message), tied to the input for screen readers.
pub fn field_input_with_error(
    form: &Form,
    field: &Field,
    value: Option<&Value>,
    lang: Lang,
    name: &str,
    error: Option<&str>,
) -> Markup {
    // An id may not contain spaces; names are ours, but keep ids valid whatever comes.
    let id: String = format!("f-{name}")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let hint = field.hint.as_ref().map(|h| h.get(lang, ""));
    let described: Vec<&str> = [
        hint.is_some().then_some(hint_id.as_str()),
        error.is_some().then_some(error_id.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let described = (!described.is_empty()).then(|| described.join(" "));
    let ctx = Ctx {
        id: &id,
        name,
        described: described.as_deref(),
        required: field.required,
        invalid: error.is_some(),
    };
    let relevant = field.relevant.as_ref();
    let text = value.map(ToString::to_string).unwrap_or_default();
    let hint_text = html! {
        @if let Some(hint) = hint { p.hint id=(hint_id) { (hint) } }
    };
    let error_box = html! {
        @if let Some(e) = error { p.error id=(error_id) { (e) } }
    };
    html! {
        @if field.kind == FieldType::YesNo {
            fieldset.field.invalid[error.is_some()]
                data-field=(field.name)
                data-relevant-field=[relevant.map(|r| &r.field)]
                data-relevant-equals=[relevant.map(|r| &r.equals)]
                role="radiogroup"
                aria-describedby=[ctx.described]
                aria-required=[ctx.required.then_some("true")]
                aria-invalid=[ctx.invalid.then_some("true")]
            {
                legend { (label(field, lang)) (required_mark(field, lang)) }
                (hint_text)
                (yes_no(form, lang, &ctx, value))
                (error_box)
            }
        } @else {
            div.field.invalid[error.is_some()]
                data-field=(field.name)
                data-relevant-field=[relevant.map(|r| &r.field)]
                data-relevant-equals=[relevant.map(|r| &r.equals)]
            {
                label for=(id) { (label(field, lang)) (required_mark(field, lang)) }
                (hint_text)
                @match field.kind {
                    FieldType::LongText => {
                        // The newline after the start tag is dropped by HTML parsers,
                        // so a value that starts with a line break keeps it.
                        textarea id=(ctx.id) name=(ctx.name) rows="6"
                            maxlength=[field.max_length]
                            aria-describedby=[ctx.described]
                            aria-required=[ctx.required.then_some("true")]
                            aria-invalid=[ctx.invalid.then_some("true")]
                        { "\n" (text) }
                    }
                    FieldType::Choice => (select(form.choices(field), lang, &ctx, value)),
                    FieldType::Integer if value.is_none_or(|v| matches!(v, Value::Int(_))) => {
                        input type="number" inputmode="numeric" step="1"
                            id=(ctx.id) name=(ctx.name) value=(text)
                            min=[field.min] max=[field.max]
                            aria-describedby=[ctx.described]
                            aria-required=[ctx.required.then_some("true")]
                            aria-invalid=[ctx.invalid.then_some("true")];
                    }
                    FieldType::Date if value.is_none_or(is_iso_date) => {
                        input type="date" id=(ctx.id) name=(ctx.name) value=(text)
                            aria-describedby=[ctx.described]
                            aria-required=[ctx.required.then_some("true")]
                            aria-invalid=[ctx.invalid.then_some("true")];
                    }
                    _ => {
                        input type="text" id=(ctx.id) name=(ctx.name) value=(text)
                            maxlength=[field.max_length]
                            aria-describedby=[ctx.described]
                            aria-required=[ctx.required.then_some("true")]
                            aria-invalid=[ctx.invalid.then_some("true")];
                    }
                }
                (error_box)
            }
        }
    }
}

/// Every relevant-or-not field of `form` as inputs, in the form's order, named
/// `{prefix}{field name}`: the field app's whole case form.
pub fn form_inputs(
    form: &Form,
    values: &BTreeMap<String, Value>,
    errors: &BTreeMap<String, String>,
    lang: Lang,
    prefix: &str,
) -> Markup {
    html! {
        @for field in form.fields() {
            (field_input_with_error(
                form,
                field,
                values.get(&field.name),
                lang,
                &format!("{prefix}{}", field.name),
                errors.get(&field.name).map(String::as_str),
            ))
        }
    }
}

/// A stored value as text: choices and yes/no by their label in `lang`, long text with
/// its line breaks kept, blank as "not answered".
pub fn field_value(form: &Form, field: &Field, value: &Value, lang: Lang) -> Markup {
    if value.is_blank() {
        return html! { span.muted { (t(lang, Msg::NotAnswered)) } };
    }
    let text = form.value_label(field, value, lang);
    html! {
        @if field.kind == FieldType::LongText {
            span.longtext {
                @for (i, line) in text.split('\n').enumerate() {
                    @if i > 0 { br; }
                    (line.strip_suffix('\r').unwrap_or(line))
                }
            }
        } @else {
            (text)
        }
    }
}

/// What every input of one field shares.
struct Ctx<'a> {
    id: &'a str,
    name: &'a str,
    described: Option<&'a str>,
    required: bool,
    invalid: bool,
}

fn required_mark(field: &Field, lang: Lang) -> Markup {
    html! {
        @if field.required {
            abbr.req title=(t(lang, Msg::Required)) { "*" }
        }
    }
}

fn is_iso_date(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        let b = s.as_bytes();
        b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    })
}

fn select(choices: &[Choice], lang: Lang, ctx: &Ctx, value: Option<&Value>) -> Markup {
    let chosen = value.filter(|v| !v.is_blank()).map(ToString::to_string);
    // A stored code that is no longer a choice is offered too, so saving the form does
    // not silently drop it.
    let unknown = chosen
        .as_deref()
        .filter(|c| !choices.iter().any(|ch| ch.value == *c));
    html! {
        select id=(ctx.id) name=(ctx.name)
            aria-describedby=[ctx.described]
            aria-required=[ctx.required.then_some("true")]
            aria-invalid=[ctx.invalid.then_some("true")]
        {
            option value="" selected[chosen.is_none()] { (t(lang, Msg::ChooseOne)) }
            @for c in choices {
                option value=(c.value) selected[chosen.as_deref() == Some(c.value.as_str())] {
                    (c.label.get(lang, &c.value))
                }
            }
            @if let Some(code) = unknown {
                option value=(code) selected { (code) }
            }
        }
    }
}

fn yes_no(form: &Form, lang: Lang, ctx: &Ctx, value: Option<&Value>) -> Markup {
    let current = match value {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    let options = [
        (true, "yes", form.yes_no.yes.get(lang, "yes")),
        (false, "no", form.yes_no.no.get(lang, "no")),
    ];
    html! {
        @for (b, code, text) in options {
            label.radio {
                input type="radio" name=(ctx.name) value=(code)
                    id={ (ctx.id) "-" (code) }
                    checked[current == Some(b)];
                (text)
            }
        }
        // A stored value that is not a boolean stays visible next to the choices.
        @if let Some(v) = value.filter(|v| !matches!(v, Value::Bool(_)) && !v.is_blank()) {
            span.muted { (v.to_string()) }
        }
    }
}
