//! My cases: the paralegal's records, what came back from review first (needs
//! changes, with the supervisor's note), then drafts, then the rest; each with its
//! status, urgency, municipality, and marks for what is not synced yet and for
//! conflicts.

use actix_web::HttpResponse;
use intake_shared::{FormRegistry, Lang};
use intake_web::i18n::{Msg, t};
use intake_web::layout::status_badge;
use maud::{Markup, html};

use super::errors::AppError;
use super::pages::app_page;
use super::visit::Visit;
use super::{html, see_other};
use crate::Summary;

/// `/`: the case list when unlocked, else the unlock page.
pub async fn home(visit: Visit) -> HttpResponse {
    if visit.state.is_unlocked() {
        see_other("/cases")
    } else {
        see_other("/unlock")
    }
}

/// The order of the list: needs changes, drafts, the rest; newest first within each
/// (the store lists newest first and the sort is stable).
fn rank(status: &str) -> u8 {
    match status {
        "needs_changes" => 0,
        "draft" => 1,
        _ => 2,
    }
}

pub fn sort<T>(cases: &mut [T], status: impl Fn(&T) -> &str) {
    cases.sort_by_key(|c| rank(status(c)));
}

/// A choice field's value by its label in `lang`, from the record's own form version.
fn choice_label(
    forms: &FormRegistry,
    case: &Summary,
    field: &str,
    code: &str,
    lang: Lang,
) -> String {
    forms
        .get(&case.form, case.form_version)
        .ok()
        .and_then(|form| {
            let f = form.field(field)?;
            Some(form.value_label(f, &intake_shared::Value::Text(code.to_string()), lang))
        })
        .unwrap_or_else(|| code.to_string())
}

/// `/cases`.
pub async fn list(visit: Visit) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    let (mut cases, forms, clock) = visit
        .store(|s| -> Result<_, crate::StoreError> {
            // The name is not in the list's projection (it is sensitive, and the
            // projection is what a server-side listing could see); on her own device
            // the paralegal sees whom each case is about, read from the record.
            let mut cases = Vec::new();
            for summary in s.list(None)? {
                let name = summary
                    .id
                    .parse()
                    .ok()
                    .and_then(|id| s.get(id).ok())
                    .and_then(|r| r.get("full_name"))
                    .map(|v| v.to_string());
                cases.push(Listed { summary, name });
            }
            // Issue 13: a clock found clearly wrong at the last sync is said first.
            Ok((cases, s.forms(), s.clock_error().ok().flatten()))
        })
        .await?
        .map_err(|e| AppError::internal(lang, e))?;
    sort(&mut cases, |c| &c.summary.status);
    let title = t(lang, Msg::MyCases);
    Ok(html(app_page(
        &visit.viewer(),
        title,
        html! {
            h1 { (title) }
            @if let Some(e) = clock {
                (intake_web::layout::error_box(&intake_web::clock::this_device(lang, e)))
            }
            p { a.button href="/cases/new" { (t(lang, Msg::NewCase)) } }
            @if cases.is_empty() {
                p.muted { (t(lang, Msg::NoCasesYet)) }
            } @else {
                ul.cases {
                    @for case in &cases { (row(forms, case, lang)) }
                }
            }
        },
    )))
}

/// A case of the list: its projection and the client's name.
struct Listed {
    summary: Summary,
    name: Option<String>,
}

fn row(forms: &FormRegistry, listed: &Listed, lang: Lang) -> Markup {
    let case = &listed.summary;
    let name = listed
        .name
        .as_deref()
        .or(case.summary.as_deref())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(t(lang, Msg::Case));
    let mut meta = Vec::new();
    if let Some(u) = &case.urgency {
        meta.push(format!(
            "{}: {}",
            t(lang, Msg::Urgency),
            choice_label(forms, case, "urgency", u, lang)
        ));
    }
    if let Some(m) = &case.municipality {
        meta.push(format!(
            "{}: {}",
            t(lang, Msg::Municipality),
            choice_label(forms, case, "municipality", m, lang)
        ));
    }
    html! {
        li.case data-status=(case.status) {
            a href={ "/cases/" (case.id) } { strong { (name) } }
            " " (status_badge(lang, &case.status))
            @if case.unsynced { " " span.mark.unsynced { (t(lang, Msg::NotSynced)) } }
            @if case.has_conflicts { " " span.mark.conflict { (t(lang, Msg::HasConflict)) } }
            @if case.status == "needs_changes" && let Some(note) = &case.review_note {
                p.note { (t(lang, Msg::SupervisorNote)) ": " (note) }
            }
            @if !meta.is_empty() { p.meta { (meta.join(" · ")) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, status: &str) -> Summary {
        Summary {
            id: id.into(),
            form: "intake".into(),
            form_version: 1,
            status: status.into(),
            review_note: None,
            assigned_to: None,
            municipality: None,
            issue_type: None,
            urgency: None,
            summary: None,
            created_at: None,
            updated_at: String::new(),
            has_conflicts: false,
            unsynced: false,
            sync_error: None,
        }
    }

    #[test]
    fn needs_changes_come_first_then_drafts() {
        let mut cases = vec![
            case("a", "submitted"),
            case("b", "draft"),
            case("c", "needs_changes"),
            case("d", "approved"),
            case("e", "draft"),
        ];
        sort(&mut cases, |c| &c.status);
        let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "e", "a", "d"]);
    }
}
