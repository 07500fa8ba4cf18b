//! `intake list` and `intake conflicts`: many records at a glance, as a table for a
//! person (choice codes shown by their labels in the user's language) or as JSON for a
//! script.

use std::fmt::Write as _;
use std::path::PathBuf;

use intake_client::Summary;
use intake_shared::{FormRegistry, Lang};

use crate::show::{marked, print, provenance, status_text, value_text, when, when_text};
use crate::{input, open};

/// `intake list [--status S] [--json]`.
pub fn list(
    home: Option<PathBuf>,
    lang: Lang,
    status: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let status = status.map(input::status).transpose()?;
    let store = open::store(home)?;
    crate::commands::warn_if_clock_wrong(&store, lang);
    let rows = store.list(status)?;
    if json {
        return print(&format!("{}\n", serde_json::to_string_pretty(&rows)?));
    }
    if rows.is_empty() {
        eprintln!("intake: no records");
        return Ok(());
    }
    let headers = [
        "ID",
        "STATUS",
        "MUNICIPALITY",
        "ISSUE",
        "URGENCY",
        "UPDATED",
        "CONFLICT",
        "NOTE",
    ];
    let table: Vec<Vec<String>> = rows.iter().map(|s| row(s, lang)).collect();
    print(&format_table(&headers, &table))
}

fn row(s: &Summary, lang: Lang) -> Vec<String> {
    let form = FormRegistry::builtin().get(&s.form, s.form_version).ok();
    let label = |field: &str, code: &Option<String>| {
        code.as_ref().map_or(String::new(), |c| {
            value_text(
                form.as_deref(),
                field,
                &intake_shared::Value::Text(c.clone()),
                lang,
            )
        })
    };
    let status = s
        .status
        .parse()
        .map_or_else(|_| s.status.clone(), |st| status_text(st, None));
    vec![
        s.id.clone(),
        status,
        label("municipality", &s.municipality),
        label("issue_type", &s.issue_type),
        label("urgency", &s.urgency),
        when_text(&s.updated_at),
        if s.has_conflicts {
            "conflict".into()
        } else {
            String::new()
        },
        // What needs the reader's attention: the server's refusal, else the note.
        match (&s.sync_error, s.unsynced) {
            (Some(e), _) => format!("not synced: {e}"),
            (None, true) => format!(
                "{} (not synced yet)",
                s.review_note.clone().unwrap_or_default()
            )
            .trim()
            .into(),
            (None, false) => s.review_note.clone().unwrap_or_default(),
        },
    ]
}

/// Columns padded to their widest cell (counting characters, so Cyrillic and
/// Albanian labels line up); the last column is not padded.
fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&header).chain(rows) {
        let last = r.len().saturating_sub(1);
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = if i == last {
                    0
                } else {
                    widths[i] - cell.chars().count()
                };
                format!("{cell}{}", " ".repeat(pad))
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// `intake conflicts [--json]`.
pub fn conflicts(home: Option<PathBuf>, lang: Lang, json: bool) -> anyhow::Result<()> {
    let store = open::store(home)?;
    let all = store.conflicts()?;
    if json {
        let out: Vec<serde_json::Value> = all
            .iter()
            .map(|(id, conflicts)| serde_json::json!({ "id": id.to_string(), "conflicts": conflicts }))
            .collect();
        return print(&format!("{}\n", serde_json::to_string_pretty(&out)?));
    }
    if all.is_empty() {
        eprintln!("intake: no conflicts");
        return Ok(());
    }
    let mut out = String::new();
    for (id, conflicts) in all {
        let _ = writeln!(out, "{id}");
        // The record's own form version gives the labels.
        let mut record = store.get(id).ok();
        let form = record.as_ref().map(|r| r.form().clone());
        let marks = match record.as_mut() {
            Some(r) => store.clock_marks(r)?,
            None => Default::default(),
        };
        for c in conflicts {
            let label = form
                .as_ref()
                .and_then(|f| f.field(&c.field))
                .map_or(c.field.as_str(), |f| f.label.get(lang, &f.name));
            let _ = writeln!(out, "  {label} ({}):", c.field);
            for v in &c.values {
                let at = v.at.map(|at| marked(when(at), &marks, &v.change, lang));
                let who = provenance(v.author.as_deref(), &v.device, at);
                let text = value_text(form.as_deref(), &c.field, &v.value, lang);
                let _ = writeln!(out, "    {text} [{who}]");
            }
        }
    }
    out.push_str("Choose a value with: intake resolve ID FIELD VALUE\n");
    print(&out)
}
