//! The record index: what lists, filters, donor counts and duplicate hints need of a
//! record ([`RecordSummary`]), computed from the record when it is written and kept
//! beside it by storage, so that a list of 10,000 records loads no document.
//! [`backfill`] indexes records stored before the index existed.

use intake_shared::record::Creation;
use intake_shared::{FormRegistry, Record, Value};

use crate::storage::{RecordSummary, Storage};

/// The summary of a record, from its current values (a field in conflict counts with
/// the value Automerge shows; `has_conflicts` says there is more).
pub fn summarize(record: &Record) -> RecordSummary {
    summary_of(
        &record.form().id,
        record.created_at(),
        |name| record.get(name),
        record.has_conflicts(),
    )
}

/// The summary of a new record read off its creating change, without its document
/// (`Creation`: nothing in it is in conflict).
pub fn summarize_creation(created: &Creation) -> RecordSummary {
    summary_of(
        &created.form().id,
        created.created_at(),
        |name| created.get(name),
        false,
    )
}

/// A summary from a record's form, creation time and field values, however read.
fn summary_of(
    form: &str,
    created_at: Option<chrono::DateTime<chrono::Utc>>,
    get: impl Fn(&str) -> Option<Value>,
    has_conflicts: bool,
) -> RecordSummary {
    // Only the fields the index keeps are read: reading every value would read the
    // narrative's text too, a third of the server's work on a pushed record.
    let text = |name: &str| match get(name) {
        Some(Value::Text(s)) if !s.trim().is_empty() => Some(s),
        _ => None,
    };
    // A birth year typed as text (data that breaks the form is kept, not dropped)
    // still counts when it reads as a number.
    let birth_year = match get("birth_year").as_ref() {
        Some(Value::Int(y)) => Some(*y),
        Some(Value::Text(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let name = text("full_name").unwrap_or_default();
    RecordSummary {
        form: form.to_string(),
        created_at,
        name_key: intake_shared::fold(&name),
        name,
        birth_year,
        municipality: text("municipality"),
        community: text("community"),
        gender: text("gender"),
        issue_type: text("issue_type"),
        urgency: text("urgency"),
        has_conflicts,
    }
}

/// How many records one backfill transaction indexes.
const BATCH: usize = 256;

/// Indexes every stored record that has no summary (a database from before the
/// index), a batch per transaction; returns how many. A record the server cannot
/// read is indexed with an empty summary, so it is listed (and looked at) rather than
/// read again at every start.
pub fn backfill(storage: &dyn Storage) -> anyhow::Result<usize> {
    let mut done = 0;
    loop {
        let batch = storage.unindexed(BATCH)?;
        if batch.is_empty() {
            return Ok(done);
        }
        let summaries: Vec<_> = batch
            .iter()
            .map(|stored| {
                let summary = match Record::load(&stored.doc, FormRegistry::builtin()) {
                    Ok(record) => summarize(&record),
                    Err(e) => {
                        tracing::error!(record = %stored.meta.id, error = %e,
                            "a stored record cannot be read; it is listed without a summary");
                        RecordSummary::default()
                    }
                };
                (stored.meta.id, summary)
            })
            .collect();
        storage.set_summaries(&summaries)?;
        done += summaries.len();
    }
}
