//! The mark beside a device time on the record page (issue 13, clock skew): the
//! server's receipt of the change, and "device clock was wrong" when
//! [`intake_shared::skew::judge`] says it clearly was. A device time is only shown,
//! never used to decide anything; this keeps a year-off phone from misleading the
//! person reading it.

use std::collections::HashMap;

use intake_shared::Record;
use intake_shared::skew::{self, Judged};
use intake_web::i18n::{Msg, tf};
use maud::{Markup, html};

use crate::storage::Storage;

/// Every change of a record, judged, by hash (hex).
#[derive(Debug, Default)]
pub struct Judgements {
    pub by_change: HashMap<String, Judged>,
    /// The change that created the record (it wrote `created_at`), hex.
    pub creation: String,
}

/// Judges `record`'s change times against the server's receipts.
pub fn judge(storage: &dyn Storage, record: &mut Record) -> crate::storage::Result<Judgements> {
    let received = storage.receipts(record.id())?;
    let changes = record.change_times();
    let creation = changes
        .iter()
        .find(|c| c.deps.is_empty())
        .map(|c| hex::encode(c.hash))
        .unwrap_or_default();
    let by_change = skew::judge(&changes, &received)
        .into_iter()
        .map(|(h, j)| (hex::encode(h), j))
        .collect();
    Ok(Judgements {
        by_change,
        creation,
    })
}

/// What follows a device time: the receipt, and the warning when the clock was wrong.
pub fn mark(lang: intake_shared::Lang, judged: &Judgements, change: &str) -> Markup {
    let Some(j) = judged.by_change.get(change) else {
        return html! {};
    };
    html! {
        @if let Some(got) = j.received {
            " " span.received { "(" (tf(lang, Msg::ReceivedAt, &[("when", &got.format("%Y-%m-%d %H:%M UTC").to_string())])) ")" }
        }
        @if let Some(e) = j.error {
            " " strong.clock-wrong { "⚠ " (intake_web::clock::was_wrong(lang, e)) }
        }
    }
}
