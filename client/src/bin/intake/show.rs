//! `intake show`: one record for a person to read, in their language — answers in
//! form order with their labels, conflicting values (of fields, and of the status,
//! assignee or review note) with who wrote them, validation problems, comments and
//! follow-up actions — or the record's JSON view. Also the small text helpers the
//! other printing commands share.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, Local, Utc};
use intake_shared::record::ConflictKind;
use intake_shared::{Conflict, Form, FormRegistry, Lang, Record, RecordId, ReviewStatus, Value};

use crate::error::issue_line;
use crate::{commands, input, open};

/// `intake show ID [--json]`.
pub fn run(home: Option<PathBuf>, lang: Lang, id: &str, json: bool) -> anyhow::Result<()> {
    let id = input::record_id(id)?;
    let store = open::store(home)?;
    commands::warn_if_clock_wrong(&store, lang);
    let mut record = commands::load(&store, id)?;
    if json {
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&record.to_json())?
        ))
    } else {
        print(&render(&mut record, lang))
    }
}

/// Writes to stdout; a closed pipe (`intake list | head`) is not an error. What is
/// printed passes through [`terminal_safe`]: it holds other people's text.
pub fn print(text: &str) -> anyhow::Result<()> {
    let text = terminal_safe(text);
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `text` with every character that a terminal would act on instead of show written
/// as `\uXXXX`: C0 and C1 controls (ESC starts the sequences that move the cursor,
/// retitle the window or rewrite the screen) and the bidirectional overrides that make
/// a line read differently from what it holds. Records, comments and notes are written
/// by other people, on other devices; a supervisor reading them must see what is there.
/// Line breaks and tabs stay. The escape is JSON's own, so `--json` output stays valid
/// JSON with the same data (its C0 controls are already escaped by the serializer).
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    fn acts(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(acts) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if acts(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// "draft", "needs changes: re-ask consent".
pub fn status_text(status: ReviewStatus, note: Option<&str>) -> String {
    let status = status.as_str().replace('_', " ");
    match note.filter(|n| !n.trim().is_empty()) {
        Some(note) => format!("{status}: {note}"),
        None => status,
    }
}

/// A time as the user's clock shows it, to the minute.
pub fn when(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// An RFC 3339 time as [`when`] shows it; anything else as it is.
pub fn when_text(at: &str) -> String {
    DateTime::parse_from_rfc3339(at).map_or_else(|_| at.to_string(), |d| when(d.to_utc()))
}

/// A device id short enough to read (the first 8 hex digits).
pub fn short_device(device: &str) -> &str {
    device.get(..8).unwrap_or(device)
}

/// "Arta, device 1a2b3c4d, 2026-04-19 10:00", leaving out what is unknown.
pub fn provenance(author: Option<&str>, device: &str, at: Option<String>) -> String {
    let mut parts = Vec::new();
    parts.extend(author.map(str::to_string));
    if !device.is_empty() {
        parts.push(format!("device {}", short_device(device)));
    }
    parts.extend(at);
    parts.join(", ")
}

/// The label of a field's value in `lang`; a value that is not in the form (kept from
/// a newer or broken writer) is shown as it is.
pub fn value_text(form: Option<&Form>, field: &str, value: &Value, lang: Lang) -> String {
    match form.and_then(|form| form.field(field).map(|f| (form, f))) {
        Some((form, f)) => form.value_label(f, value, lang),
        None => value.to_string(),
    }
}

/// The record for a person to read.
pub fn render(record: &mut Record, lang: Lang) -> String {
    let form = record.form().clone();
    let mut out = String::new();
    let note = record.review_note();
    let _ = writeln!(
        out,
        "{} {} [{}]",
        form.title.get(lang, &form.id),
        record.id(),
        status_text(record.status(), note.as_deref())
    );
    if let Some(who) = record.assigned_to() {
        let _ = writeln!(out, "  assigned to: {who}");
    }
    let (conflicts, review): (Vec<Conflict>, Vec<Conflict>) = record
        .conflicts()
        .into_iter()
        .partition(|c| c.kind == ConflictKind::Field);
    // Two decisions made at the same time: the header shows one of them (the same on
    // every device), so each is listed before the answers.
    for c in &review {
        let label = c.field.replace('_', " ");
        write_conflict(&mut out, &form, record.id(), &label, c, lang);
    }
    let conflicts: BTreeMap<String, Conflict> = conflicts
        .into_iter()
        .map(|c| (c.field.clone(), c))
        .collect();
    let mut values = record.values();
    for f in form.fields() {
        let label = f.label.get(lang, &f.name);
        let value = values.remove(&f.name);
        if let Some(c) = conflicts.get(&f.name) {
            write_conflict(&mut out, &form, record.id(), label, c, lang);
        } else if let Some(v) = value {
            write_answer(&mut out, label, &form.value_label(f, &v, lang));
        }
    }
    // Answers the form does not know are kept, never dropped: show them too.
    for (name, v) in values {
        write_answer(
            &mut out,
            &format!("{name} (not in this form)"),
            &v.to_string(),
        );
    }
    let issues = record.validate();
    if !issues.is_empty() {
        out.push_str("Problems:\n");
        for i in &issues {
            let _ = writeln!(out, "  {}", issue_line(&form, i, lang));
        }
    }
    let comments = record.comments();
    if !comments.is_empty() {
        out.push_str("Comments:\n");
        for c in comments {
            let who = provenance(c.author.as_deref(), &c.device, Some(when_text(&c.at)));
            let _ = writeln!(out, "  {who}: {}", indent(&c.text, "    "));
        }
    }
    let actions = record.actions();
    if !actions.is_empty() {
        out.push_str("Follow-up actions:\n");
        for a in actions {
            let action_form = FormRegistry::builtin().get(&a.form, a.form_version).ok();
            let who = provenance(a.author.as_deref(), &a.device, Some(when_text(&a.at)));
            let _ = writeln!(out, "  {who}:");
            let mut fields = a.fields;
            let order: Vec<(String, String)> = action_form
                .iter()
                .flat_map(|f| f.fields())
                .map(|f| (f.name.clone(), f.label.get(lang, &f.name).to_string()))
                .collect();
            for (name, label) in order {
                if let Some(v) = fields.remove(&name) {
                    let text = value_text(action_form.as_deref(), &name, &v, lang);
                    out.push_str("  ");
                    write_answer(&mut out, &label, &text);
                }
            }
            for (name, v) in fields {
                out.push_str("  ");
                write_answer(&mut out, &name, &v.to_string());
            }
        }
    }
    out
}

fn write_answer(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "  {label}: {}", indent(value, "    "));
}

fn write_conflict(
    out: &mut String,
    form: &Form,
    id: RecordId,
    label: &str,
    c: &Conflict,
    lang: Lang,
) {
    let _ = writeln!(
        out,
        "  {label}: CONFLICT, {} values written at the same time \
         (choose one: intake resolve {id} {} VALUE)",
        c.values.len(),
        c.field
    );
    for v in &c.values {
        let who = provenance(v.author.as_deref(), &v.device, v.at.map(when));
        let text = value_text(Some(form), &c.field, &v.value, lang);
        let _ = writeln!(out, "      {} [{who}]", indent(&text, "        "));
    }
}

/// Indents every line after the first, so multi-line text stays under its label.
fn indent(text: &str, prefix: &str) -> String {
    text.replace('\n', &format!("\n{prefix}"))
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn what_a_terminal_would_act_on_is_shown_escaped() {
        // A colour change, a window retitle, a C1 CSI, a right-to-left override.
        let hostile = "ok\x1b[31mred\x1b]0;pwned\x07 \u{9b}2J \u{202e}txt.exe";
        let shown = terminal_safe(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert!(!shown.contains('\u{202e}'));
        assert_eq!(
            shown,
            "ok\\u001b[31mred\\u001b]0;pwned\\u0007 \\u009b2J \\u202etxt.exe"
        );
        // Ordinary text, line breaks and tabs, other scripts: unchanged and not copied.
        let plain = "Drita: \"nxënësit\"\n\tДрита — ok";
        assert!(matches!(
            terminal_safe(plain),
            std::borrow::Cow::Borrowed(_)
        ));
        // JSON stays JSON with the same data.
        let json =
            serde_json::to_string(&serde_json::json!({ "note": "a\u{9b}b\u{202e}" })).unwrap();
        let back: serde_json::Value = serde_json::from_str(&terminal_safe(&json)).unwrap();
        assert_eq!(back["note"], "a\u{9b}b\u{202e}");
    }
}
