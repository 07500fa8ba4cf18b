//! The form renderer over the real intake form (`schemas/intake.v1.json`): every field
//! renders as the input its type calls for, labelled in Albanian and in Serbian
//! Cyrillic, with the stored value shown (the chosen option selected, the yes/no radio
//! checked), and stored values render as their labels.

use std::collections::BTreeMap;
use std::sync::Arc;

use intake_shared::{FieldType, Form, FormRegistry, Lang, Value};
use intake_web::form::{field_input, field_input_with_error, field_value, form_inputs, label};

fn intake() -> Arc<Form> {
    FormRegistry::builtin().get("intake", 1).unwrap()
}

fn render(name: &str, value: Option<Value>, lang: Lang) -> String {
    let form = intake();
    let field = form.field(name).unwrap();
    field_input(&form, field, value.as_ref(), lang, &format!("f.{name}")).into_string()
}

#[test]
fn every_field_type_renders_with_its_label_in_sq_and_sr_cyrl() {
    let form = intake();
    let mut kinds = Vec::new();
    for lang in [Lang::Sq, Lang::SrCyrl] {
        for field in form.fields() {
            let html = field_input(&form, field, None, lang, &field.name).into_string();
            let text = label(field, lang);
            assert_eq!(text, field.label.0[lang.code()], "label from the form file");
            let id = format!("f-{}", field.name);
            match field.kind {
                FieldType::YesNo => {
                    assert!(html.contains(&format!("<legend>{text}")), "{html}");
                    let (yes, no) = if lang == Lang::Sq {
                        ("Po", "Jo")
                    } else {
                        ("Да", "Не")
                    };
                    assert!(
                        html.contains(&format!(r#"id="{id}-yes">{yes}</label>"#)),
                        "{html}"
                    );
                    assert!(
                        html.contains(&format!(r#"id="{id}-no">{no}</label>"#)),
                        "{html}"
                    );
                    assert_eq!(html.matches(r#"type="radio""#).count(), 2);
                }
                _ => assert!(
                    html.contains(&format!(r#"<label for="{id}">{text}"#)),
                    "{} in {lang}: {html}",
                    field.name
                ),
            }
            let control = match field.kind {
                FieldType::Text => format!(r#"<input type="text" id="{id}""#),
                FieldType::LongText => format!(r#"<textarea id="{id}""#),
                FieldType::Integer => {
                    format!(r#"<input type="number" inputmode="numeric" step="1" id="{id}""#)
                }
                FieldType::Date => format!(r#"<input type="date" id="{id}""#),
                FieldType::Choice => format!(r#"<select id="{id}""#),
                FieldType::YesNo => format!(
                    r#"<input type="radio" name="{}" value="yes" id="{id}-yes""#,
                    field.name
                ),
            };
            assert!(
                html.contains(&control),
                "{} wants {control}: {html}",
                field.name
            );
            if field.kind == FieldType::Choice {
                for c in form.choices(field) {
                    let option = format!(
                        r#"<option value="{}">{}</option>"#,
                        c.value,
                        c.label.get(lang, &c.value)
                    );
                    assert!(html.contains(&option), "{option}");
                }
                let blank = if lang == Lang::Sq {
                    "— zgjidhni —"
                } else {
                    "— изаберите —"
                };
                assert!(html.contains(&format!(r#"<option value="" selected>{blank}</option>"#)));
            }
            if let Some(hint) = &field.hint {
                assert!(html.contains(&format!(
                    r#"<p class="hint" id="{id}-hint">{}</p>"#,
                    hint.0[lang.code()]
                )));
                assert!(html.contains(&format!(r#"aria-describedby="{id}-hint""#)));
            }
            kinds.push(field.kind);
        }
    }
    for kind in [
        FieldType::Text,
        FieldType::LongText,
        FieldType::Integer,
        FieldType::Date,
        FieldType::Choice,
        FieldType::YesNo,
    ] {
        assert!(
            kinds.contains(&kind),
            "the intake form has no {kind:?} field"
        );
    }
}

#[test]
fn a_choice_shows_the_chosen_option_selected() {
    let html = render(
        "municipality",
        Some(Value::Text("gjilan".into())),
        Lang::SrCyrl,
    );
    assert!(
        html.contains(r#"<option value="gjilan" selected>Гњилане</option>"#),
        "{html}"
    );
    assert_eq!(
        html.matches(" selected").count(),
        1,
        "only the chosen option: {html}"
    );
    let html = render(
        "preferred_language",
        Some(Value::Text("rom".into())),
        Lang::Sq,
    );
    assert!(
        html.contains(r#"<option value="rom" selected>Romisht</option>"#),
        "{html}"
    );
}

#[test]
fn stored_values_fill_the_inputs() {
    let html = render("needs_interpreter", Some(Value::Bool(false)), Lang::Sq);
    assert!(
        html.contains(r#"value="no" id="f-f.needs_interpreter-no" checked"#),
        "{html}"
    );
    assert_eq!(html.matches("checked").count(), 1);
    let html = render("birth_year", Some(Value::Int(1987)), Lang::Sq);
    assert!(
        html.contains(r#"value="1987" min="1900" max="2030""#),
        "{html}"
    );
    let html = render(
        "incident_date",
        Some(Value::Text("2026-04-19".into())),
        Lang::Sq,
    );
    assert!(
        html.contains(
            r#"type="date" id="f-f.incident_date" name="f.incident_date" value="2026-04-19""#
        ),
        "{html}"
    );
    let html = render(
        "narrative",
        Some(Value::Text("\nFirst line\nsecond".into())),
        Lang::Sq,
    );
    // The newline after the start tag is eaten by the parser; the value's own survives.
    assert!(
        html.contains(">\n\nFirst line\nsecond</textarea>"),
        "{html}"
    );
    let html = render(
        "full_name",
        Some(Value::Text("Đorđe Đorđević".into())),
        Lang::SrCyrl,
    );
    assert!(
        html.contains(r#"value="Đorđe Đorđević" maxlength="200""#),
        "{html}"
    );
}

#[test]
fn required_fields_are_marked_not_enforced() {
    let html = render("full_name", None, Lang::Sq);
    assert!(
        html.contains(r#"<abbr class="req" title="e detyrueshme">*</abbr>"#),
        "{html}"
    );
    assert!(html.contains(r#"aria-required="true""#));
    assert!(
        !html.contains(" required"),
        "drafts may be saved incomplete: {html}"
    );
    assert!(!render("summary", None, Lang::Sq).contains("req"));
}

#[test]
fn relevance_is_a_data_attribute_only() {
    let html = render("language_requested", None, Lang::Sq);
    assert!(
        html.contains(r#"data-relevant-field="issue_type" data-relevant-equals="language_rights""#),
        "{html}"
    );
    assert!(!html.contains("hidden"));
}

#[test]
fn invalid_stored_data_stays_visible() {
    // A browser empties a number or date input it cannot parse: fall back to text.
    let html = render(
        "birth_year",
        Some(Value::Text("about 1980".into())),
        Lang::En,
    );
    assert!(
        html.contains(r#"type="text" id="f-f.birth_year" name="f.birth_year" value="about 1980""#),
        "{html}"
    );
    let html = render(
        "incident_date",
        Some(Value::Text("19/04/2026".into())),
        Lang::En,
    );
    assert!(
        html.contains(
            r#"type="text" id="f-f.incident_date" name="f.incident_date" value="19/04/2026""#
        ),
        "{html}"
    );
    let html = render(
        "municipality",
        Some(Value::Text("atlantis".into())),
        Lang::En,
    );
    assert!(
        html.contains(r#"<option value="atlantis" selected>atlantis</option>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<option value="">"#) && !html.contains(r#"<option value="" selected>"#)
    );
    let html = render(
        "consent_intake",
        Some(Value::Text("maybe".into())),
        Lang::En,
    );
    assert!(
        html.contains("maybe") && !html.contains("checked"),
        "{html}"
    );
}

#[test]
fn an_error_message_is_tied_to_its_input() {
    let form = intake();
    let field = form.field("birth_year").unwrap();
    let html = field_input_with_error(
        &form,
        field,
        Some(&Value::Int(1850)),
        Lang::En,
        "by",
        Some("between 1900 and 2030"),
    )
    .into_string();
    assert!(
        html.contains(r#"<div class="field invalid" data-field="birth_year">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"aria-describedby="f-by-error" aria-required"#)
            || html.contains(r#"aria-describedby="f-by-error""#)
    );
    assert!(html.contains(r#"aria-invalid="true""#));
    assert!(html.contains(r#"<p class="error" id="f-by-error">between 1900 and 2030</p>"#));
}

#[test]
fn values_render_as_their_labels() {
    let form = intake();
    let show = |name: &str, v: Value, lang: Lang| {
        field_value(&form, form.field(name).unwrap(), &v, lang).into_string()
    };
    assert_eq!(
        show("municipality", Value::Text("gjakove".into()), Lang::SrCyrl),
        "Ђаковица"
    );
    assert_eq!(
        show("needs_interpreter", Value::Bool(true), Lang::SrCyrl),
        "Да"
    );
    assert_eq!(
        show("needs_interpreter", Value::Bool(false), Lang::Sq),
        "Jo"
    );
    assert_eq!(show("birth_year", Value::Int(1987), Lang::Sq), "1987");
    assert_eq!(
        show(
            "narrative",
            Value::Text("one\r\ntwo\n\nthree".into()),
            Lang::En
        ),
        r#"<span class="longtext">one<br>two<br><br>three</span>"#
    );
    assert_eq!(
        show("summary", Value::Text("  ".into()), Lang::Sq),
        r#"<span class="muted">Pa përgjigje</span>"#
    );
    // Turkish has its own labels in the form; Bosnian too.
    assert_eq!(
        show("urgency", Value::Text("high".into()), Lang::Tr),
        "Yüksek"
    );
}

#[test]
fn the_whole_form_renders_in_order_with_errors() {
    let form = intake();
    let mut values = BTreeMap::new();
    values.insert("urgency".to_string(), Value::Text("critical".into()));
    let mut errors = BTreeMap::new();
    errors.insert("full_name".to_string(), "required".to_string());
    let html = form_inputs(&form, &values, &errors, Lang::SrLatn, "f.").into_string();
    let mut at = 0;
    for field in form.fields() {
        let pos = html[at..]
            .find(&format!(r#"data-field="{}""#, field.name))
            .unwrap_or_else(|| panic!("{} missing or out of order", field.name));
        at += pos;
    }
    assert!(html.contains(r#"<option value="critical" selected>Kritična</option>"#));
    assert_eq!(html.matches(r#"class="error""#).count(), 1);
}
