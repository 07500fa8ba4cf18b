//! `intake show`: one record for a person to read, in their language — answers in
//! form order with their labels, conflicting values (of fields, and of the status,
//! assignee or review note) with who wrote them, validation problems, comments and
//! follow-up actions — or the record's JSON view. Also the small text helpers the
//! other printing commands share.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, Local, Utc};
use intake_shared::record::ConflictKind;
use intake_shared::skew::Judged;
use intake_shared::{Conflict, Form, FormRegistry, Lang, Record, RecordId, ReviewStatus, Value};

use crate::error::issue_line;
use crate::{commands, input, open};

/// `intake show ID [--json]`.
pub fn run(home: Option<PathBuf>, lang: Lang, id: &str, json: bool) -> anyhow::Result<()> {
    let id = input::record_id(id)?;
    let store = open::store(home)?;
    commands::warn_if_clock_wrong(&store, lang);
    let mut record = commands::load(&store, id)?;
    let marks = store.clock_marks(&mut record)?;
    if json {
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&record.to_json())?
        ))
    } else {
        print(&render(&mut record, lang, &marks))
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

/// Every change of a record judged against the server's receipts, by hash (hex):
/// [`intake_client::Store::clock_marks`].
pub type Marks = HashMap<String, Judged>;

/// A device time, and after it, when the clock of the device that wrote `change` was
/// clearly wrong, the mark saying so with the server's receipt (issue 13, clock skew).
pub fn marked(at: String, marks: &Marks, change: &str, lang: Lang) -> String {
    match marks
        .get(change)
        .and_then(|j| intake_web::clock::note(lang, j))
    {
        Some(note) => format!("{at} ⚠ {note}"),
        None => at,
    }
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

/// The record for a person to read; `marks` say which device times were clearly wrong.
pub fn render(record: &mut Record, lang: Lang, marks: &Marks) -> String {
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
        write_conflict(&mut out, &form, record.id(), &label, c, lang, marks);
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
            write_conflict(&mut out, &form, record.id(), label, c, lang, marks);
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
            let at = marked(when_text(&c.at), marks, &c.change, lang);
            let who = provenance(c.author.as_deref(), &c.device, Some(at));
            let _ = writeln!(out, "  {who}: {}", indent(&c.text, "    "));
        }
    }
    let actions = record.actions();
    if !actions.is_empty() {
        out.push_str("Follow-up actions:\n");
        for a in actions {
            let action_form = FormRegistry::builtin().get(&a.form, a.form_version).ok();
            let at = marked(when_text(&a.at), marks, &a.change, lang);
            let who = provenance(a.author.as_deref(), &a.device, Some(at));
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
    marks: &Marks,
) {
    let _ = writeln!(
        out,
        "  {label}: CONFLICT, {} values written at the same time \
         (choose one: intake resolve {id} {} VALUE)",
        c.values.len(),
        c.field
    );
    for v in &c.values {
        let at = v.at.map(|at| marked(when(at), marks, &v.change, lang));
        let who = provenance(v.author.as_deref(), &v.device, at);
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
    fn a_time_from_a_clock_that_was_clearly_wrong_is_marked_and_no_other() {
        use chrono::{Duration, Utc};
        use intake_shared::record::Identity;
        use intake_shared::skew::{ClockError, Judged};
        use intake_shared::{FormRegistry, Lang, Record, RecordId, Value};

        let form = FormRegistry::builtin().get("intake", 1).unwrap();
        let followup = FormRegistry::builtin().latest("followup").unwrap();
        let who = |n: u8, name: &str| Identity {
            actor: vec![n; 20],
            author: Some(name.into()),
        };
        let now = Utc::now();
        let mut record = Record::create(RecordId::from_wire(&[7; 16]), form, &who(1, "drita"), now);
        record.edit(now, |e| e.add_comment("on time")).unwrap();
        record.set_identity(&who(2, "merita"));
        let visit: std::collections::BTreeMap<String, Value> = [
            ("date".to_string(), Value::Text("2026-04-20".into())),
            ("type".to_string(), Value::Text("visit".into())),
        ]
        .into_iter()
        .collect();
        record
            .edit(now + Duration::days(366), |e| {
                e.add_comment("from the future")?;
                e.add_action(&followup, &visit)
            })
            .unwrap();
        let comments = record.comments();
        let ahead = Judged {
            received: Some(now),
            error: Some(ClockError::Ahead(Duration::days(366))),
        };
        let marks: super::Marks = [
            (comments[1].change.clone(), ahead),
            (comments[0].change.clone(), Judged::default()),
        ]
        .into_iter()
        .collect();
        let shown = super::render(&mut record, Lang::En, &marks);
        let line = |text: &str| {
            shown
                .lines()
                .find(|l| l.contains(text))
                .unwrap()
                .to_string()
        };
        let mark = "⚠ device clock was wrong: at least 1 yr. ahead (received by the server ";
        assert!(line("from the future").contains(mark), "{shown}");
        assert!(!line("on time").contains("⚠"), "{shown}");
        // The action came in the same change: marked too.
        let actions = &shown[shown.find("Follow-up actions:").unwrap()..];
        let action = actions.lines().nth(1).unwrap();
        assert!(action.ends_with(':') && action.contains(mark), "{shown}");
        // Without marks, nothing is said.
        let plain = super::render(&mut record, Lang::En, &super::Marks::new());
        assert!(!plain.contains('⚠'), "{plain}");
    }

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
