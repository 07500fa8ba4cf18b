//! User content and form text cannot become markup in any component: a hostile string
//! (`<script>`, an attribute break-out with `<img onerror>`, an apostrophe) is put into
//! every place a component splices text, and the output is read back with a small HTML
//! tokenizer that fails on any tag or attribute we do not emit, on any `on…` handler
//! and on any attribute value that is not double-quoted. The hostile text must also
//! come back intact after entity decoding: escaped, not dropped.

use intake_shared::{Form, Lang, Value};
use intake_web::chart::{Cell, bars};
use intake_web::form::{field_input, field_input_with_error, field_value, label};
use intake_web::layout::{Chrome, NavItem, error_box, notice, page, status_badge};
use intake_web::table::{Pager, pager};
use intake_web::{Msg, html, tf};

const PAYLOAD: &str = r#"<script>alert(1)</script> "><img src=x onerror=alert(1)> it's"#;

/// Tags the components emit; anything else in the output was injected.
const TAGS: &[&str] = &[
    "html", "head", "meta", "title", "style", "body", "a", "header", "nav", "ul", "li", "div",
    "span", "form", "input", "button", "strong", "main", "p", "label", "textarea", "select",
    "option", "fieldset", "legend", "abbr", "br", "figure", "svg", "g", "text", "rect", "section",
];

/// What the tokenizer saw: decoded text and attribute values.
#[derive(Default)]
struct Seen {
    texts: Vec<String>,
    attrs: Vec<(String, String, String)>,
}

impl Seen {
    fn has_text(&self, s: &str) -> bool {
        self.texts.iter().any(|t| t.contains(s))
    }
    fn has_attr(&self, name: &str, s: &str) -> bool {
        self.attrs
            .iter()
            .any(|(_, n, v)| n == name && v.contains(s))
    }
}

fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Tokenizes `html` as a browser would for the tags we emit, panicking on anything
/// that would run script or that we do not emit.
fn inert(html: &str) -> Seen {
    tokenize(html).unwrap_or_else(|e| panic!("{e} in:\n{html}"))
}

fn tokenize(html: &str) -> Result<Seen, String> {
    let mut seen = Seen::default();
    let mut rest = html;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            seen.texts.push(decode(rest));
            break;
        };
        seen.texts.push(decode(&rest[..open]));
        rest = &rest[open + 1..];
        if let Some(after) = rest.strip_prefix("!DOCTYPE html>") {
            rest = after;
            continue;
        }
        let closing = rest.starts_with('/');
        if closing {
            rest = &rest[1..];
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .ok_or("unterminated tag")?;
        let tag = rest[..name_end].to_ascii_lowercase();
        if !TAGS.contains(&tag.as_str()) {
            return Err(format!("unexpected <{tag}>"));
        }
        rest = &rest[name_end..];
        // Attributes, until '>'.
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('>') {
                rest = after;
                break;
            }
            if closing {
                return Err(format!("attribute on a closing tag </{tag}>"));
            }
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '=' || c == '>')
                .ok_or("unterminated attribute")?;
            let name = rest[..end].to_ascii_lowercase();
            if name.starts_with("on") || name.contains(['"', '\'', '<', '/']) {
                return Err(format!("injected attribute {name:?} on <{tag}>"));
            }
            rest = &rest[end..];
            let mut value = String::new();
            if let Some(after) = rest.strip_prefix('=') {
                let after = after
                    .strip_prefix('"')
                    .ok_or_else(|| format!("value of {name} on <{tag}> not double-quoted"))?;
                let close = after.find('"').ok_or("no closing quote")?;
                value = decode(&after[..close]);
                rest = &after[close + 1..];
            }
            let url = value.trim_start().to_ascii_lowercase();
            if ["href", "action", "src"].contains(&name.as_str()) && url.starts_with("javascript:")
            {
                return Err("script URL".into());
            }
            seen.attrs.push((tag.clone(), name, value));
        }
        // The stylesheet is raw text to the browser, up to its end tag.
        if !closing && tag == "style" {
            let end = rest.find("</style>").ok_or("style does not close")?;
            if rest[..end].contains('<') {
                return Err("markup inside <style>".into());
            }
            rest = &rest[end..];
        }
    }
    Ok(seen)
}

/// A form whose every label, hint and choice is the payload.
fn hostile_form() -> Form {
    let p = PAYLOAD.replace('"', "\\\"");
    let labels = format!(r#"{{"sq": "{p}", "sr-Latn": "{p}", "sr-Cyrl": "{p}", "en": "{p}"}}"#);
    let field = |name: &str, kind: &str, extra: &str| {
        format!(
            r#"{{"name": "{name}", "type": "{kind}", "label": {labels}, "hint": {labels}{extra}}}"#
        )
    };
    let fields = [
        field("t", "text", r#", "required": true"#),
        field("l", "long_text", ""),
        field("i", "integer", ""),
        field("d", "date", ""),
        field(
            "c",
            "choice",
            &format!(
                r#", "choices": [{{"value": "{p}", "label": {labels}}}, {{"value": "ok", "label": {labels}}}]"#
            ),
        ),
        field("y", "yes_no", ""),
    ];
    let json = format!(
        r#"{{"form": "evil", "version": 1, "title": {labels}, "languages": ["sq", "sr-Latn", "sr-Cyrl", "en"],
            "yes_no": {{"yes": {labels}, "no": {labels}}}, "fields": [{}]}}"#,
        fields.join(",")
    );
    Form::from_json(&json).unwrap()
}

#[test]
fn form_inputs_escape_values_labels_hints_and_options() {
    let form = hostile_form();
    let hostile = Value::Text(PAYLOAD.into());
    for lang in [Lang::Sq, Lang::SrCyrl, Lang::En] {
        for field in form.fields() {
            for value in [Some(&hostile), None] {
                let html =
                    field_input_with_error(&form, field, value, lang, PAYLOAD, Some(PAYLOAD))
                        .into_string();
                let seen = inert(&html);
                assert!(seen.has_text(PAYLOAD), "{} label lost: {html}", field.name);
                assert!(seen.has_attr("name", PAYLOAD), "{}: {html}", field.name);
            }
            let html = field_input(&form, field, Some(&hostile), lang, "v").into_string();
            let seen = inert(&html);
            match field.kind {
                intake_shared::FieldType::LongText => assert!(seen.has_text(PAYLOAD)),
                intake_shared::FieldType::YesNo => assert!(seen.has_text(PAYLOAD)),
                intake_shared::FieldType::Choice => {
                    assert!(seen.has_attr("value", PAYLOAD), "{html}")
                }
                _ => assert!(seen.has_attr("value", PAYLOAD), "{}: {html}", field.name),
            }
        }
    }
}

#[test]
fn field_values_and_labels_are_escaped() {
    let form = hostile_form();
    for field in form.fields() {
        let value = match field.kind {
            intake_shared::FieldType::YesNo => Value::Bool(true),
            _ => Value::Text(format!("{PAYLOAD}\n{PAYLOAD}")),
        };
        let html = field_value(&form, field, &value, Lang::SrLatn).into_string();
        assert!(inert(&html).has_text(PAYLOAD), "{}: {html}", field.name);
        let html = html! { span { (label(field, Lang::En)) } }.into_string();
        assert!(inert(&html).has_text(PAYLOAD));
    }
    let choice = form.field("c").unwrap();
    let html = field_value(&form, choice, &Value::Text(PAYLOAD.into()), Lang::Sq).into_string();
    assert!(inert(&html).has_text(PAYLOAD));
}

#[test]
fn chart_labels_and_title_are_escaped() {
    let svg = bars(
        PAYLOAD,
        &[
            (PAYLOAD.to_string(), Cell::Count(12)),
            (format!("{PAYLOAD}{PAYLOAD}"), Cell::Suppressed),
        ],
    )
    .into_string();
    let seen = inert(&svg);
    assert!(seen.has_attr("aria-label", PAYLOAD));
    assert!(
        seen.texts.iter().any(|t| t == PAYLOAD),
        "the <title> is the payload"
    );
    assert!(seen.has_text(&format!("{PAYLOAD}: 12")));
}

#[test]
fn page_chrome_escapes_title_user_nav_and_address() {
    let nav = vec![NavItem::new(PAYLOAD, PAYLOAD)];
    let here = format!("/records?q={PAYLOAD}");
    let chrome = Chrome {
        lang: Lang::Sq,
        title: PAYLOAD,
        user: Some((PAYLOAD, PAYLOAD)),
        nav,
        csrf: Some(PAYLOAD),
        here: &here,
        languages: &Lang::REQUIRED,
    };
    let body = html! {
        (notice(PAYLOAD))
        (error_box(PAYLOAD))
        (status_badge(Lang::Sq, PAYLOAD))
        p { (tf(Lang::Sq, Msg::CaseReassigned, &[("user", PAYLOAD)])) }
        (pager(Lang::Sq, &Pager { path: "/records", query: PAYLOAD, page: 2, per_page: 10, total: 50 }))
    };
    let html = page(&chrome, body).into_string();
    let seen = inert(&html);
    assert!(seen.has_text(&format!("{PAYLOAD} · Intake")), "title");
    assert!(seen.has_text(&format!("Jeni kyçur si {PAYLOAD} ({PAYLOAD})")));
    assert!(seen.has_attr("href", PAYLOAD) && seen.has_text(PAYLOAD));
    assert!(seen.has_attr("value", PAYLOAD), "csrf token");
    assert!(seen.has_attr("class", &format!("status-{PAYLOAD}")));
    // The switcher's "back" is percent-encoded: nothing of the payload survives raw.
    let back: Vec<_> = seen
        .attrs
        .iter()
        .filter(|(_, n, v)| n == "href" && v.starts_with("/lang"))
        .collect();
    assert_eq!(back.len(), 3);
    assert!(
        back.iter()
            .all(|(_, _, v)| !v.contains(['<', '"', '\'', ' '])),
        "{back:?}"
    );
}

#[test]
fn tokenizer_catches_injection() {
    // The check itself must be able to fail.
    for bad in [
        "<p><script>alert(1)</script></p>",
        r#"<input value="" onerror=alert(1)>"#,
        r#"<p title=x>"#,
        r#"<img src=x>"#,
    ] {
        assert!(tokenize(bad).is_err(), "{bad}");
    }
    assert!(tokenize(r#"<p title="it's &lt;b&gt;">x &amp; y</p>"#).is_ok());
}
