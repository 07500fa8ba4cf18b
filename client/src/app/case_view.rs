//! A case's page as a view: status, the supervisor's note, each field conflict with
//! every value's author and time and a button per value, the case form, submit,
//! follow-up visits and comments. Rendering only; `case.rs` reads and writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use intake_shared::record::{Action, Comment, Conflict, ConflictKind};
use intake_shared::skew::Judged;
use intake_shared::{Form, RecordId, ReviewStatus, Value};
use intake_web::form::{field_value, form_inputs, label};
use intake_web::i18n::{Msg, t, tf};
use intake_web::layout::{csrf_input, error_box, notice, status_badge};
use maud::{Markup, html};

use super::case::followup_form;
use super::pages::app_page;
use super::typed::{ACTION_PREFIX, FIELD_PREFIX, Typed};
use super::visit::Visit;

/// Everything a case page shows, read from the store in one go.
pub(super) struct CaseView {
    pub(super) id: RecordId,
    pub(super) form: Arc<Form>,
    pub(super) values: BTreeMap<String, Value>,
    pub(super) status: ReviewStatus,
    pub(super) note: Option<String>,
    pub(super) conflicts: Vec<Conflict>,
    pub(super) comments: Vec<Comment>,
    pub(super) actions: Vec<Action>,
    /// Every change judged against the server's receipts, by hash (hex): which device
    /// times were clearly wrong (`Store::clock_marks`).
    pub(super) clock: HashMap<String, Judged>,
}

/// What a page shows besides the stored case: a notice, an error, the case form's
/// field errors and typed values, the follow-up form's.
#[derive(Default)]
pub(super) struct Shown {
    pub(super) notice: Option<String>,
    pub(super) error: Option<String>,
    pub(super) typed: Option<Typed>,
    pub(super) action: Option<Typed>,
}

fn when(at: &str) -> String {
    // RFC 3339 to "2026-11-28 11:05": enough for a person, the same in every language.
    at.get(..16).map_or(at.to_string(), |s| s.replace('T', " "))
}

/// After a time another device recorded: "⚠ device clock was wrong: …" when it was.
fn clock_mark(view: &CaseView, lang: intake_shared::Lang, change: &str) -> Markup {
    match view
        .clock
        .get(change)
        .and_then(|j| intake_web::clock::note(lang, j))
    {
        Some(note) => html! { " " strong.clock-wrong { "⚠ " (note) } },
        None => html! {},
    }
}

pub(super) fn case_page(visit: &Visit, view: &CaseView, shown: &Shown) -> Markup {
    let lang = visit.lang;
    let csrf = visit.session.csrf.as_str();
    let id = view.id;
    let name = view
        .values
        .get("full_name")
        .map(ToString::to_string)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| t(lang, Msg::Case).to_string());
    let no_errors: BTreeMap<String, String> = BTreeMap::new();
    let no_values: BTreeMap<String, Value> = BTreeMap::new();
    let (values, errors) = match &shown.typed {
        Some(tp) => (&tp.shown, &tp.errors),
        None => (&view.values, &no_errors),
    };
    let followup = followup_form().ok();
    let field_conflicts: Vec<&Conflict> = view
        .conflicts
        .iter()
        .filter(|c| c.kind == ConflictKind::Field)
        .collect();
    app_page(
        &visit.viewer(),
        &name,
        html! {
            h1 { (name) " " (status_badge(lang, view.status.as_str())) }
            @if let Some(n) = &shown.notice { (notice(n)) }
            @if let Some(e) = &shown.error { (error_box(e)) }
            @if view.status == ReviewStatus::NeedsChanges && let Some(note) = &view.note {
                div.note role="note" { strong { (t(lang, Msg::SupervisorNote)) ": " } (note) }
            }
            @if !field_conflicts.is_empty() {
                section.conflicts {
                    @for c in &field_conflicts {
                        @if let Some(field) = view.form.field(&c.field) {
                            div.conflict {
                                h2 { (tf(lang, Msg::ConflictIn, &[("field", label(field, lang))])) }
                                p { (t(lang, Msg::ConflictExplain)) }
                                ul {
                                    @for v in &c.values {
                                        li {
                                            strong { (field_value(&view.form, field, &v.value, lang)) }
                                            " "
                                            span.muted { (tf(lang, Msg::ValueBy, &[
                                                ("author", v.author.as_deref().unwrap_or(t(lang, Msg::UnknownAuthor))),
                                                ("time", &v.at.map(|a| a.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()),
                                            ])) (clock_mark(view, lang, &v.change)) }
                                            form method="post" action={ "/cases/" (id) "/resolve" } {
                                                (csrf_input(csrf))
                                                input type="hidden" name="field" value=(c.field);
                                                input type="hidden" name="value" value=(v.value.to_string());
                                                button type="submit" { (t(lang, Msg::ResolveWithThisValue)) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.case method="post" novalidate action={ "/cases/" (id) } {
                (csrf_input(csrf))
                (form_inputs(&view.form, values, errors, lang, FIELD_PREFIX))
                button type="submit" { (t(lang, Msg::Save)) }
            }
            @if matches!(view.status, ReviewStatus::Draft | ReviewStatus::NeedsChanges) {
                form method="post" action={ "/cases/" (id) "/submit" } {
                    (csrf_input(csrf))
                    button.primary type="submit" { (t(lang, Msg::SubmitForReview)) }
                }
            }
            section #followups {
                h2 { (t(lang, Msg::FollowUpActions)) }
                @if view.actions.is_empty() {
                    p.muted { (t(lang, Msg::NoFollowUpActions)) }
                }
                @for a in &view.actions {
                    div.action {
                        p.meta { (when(&a.at)) @if let Some(by) = &a.author { " · " (by) } (clock_mark(view, lang, &a.change)) }
                        @if let Some(f) = &followup {
                            dl {
                                @for field in f.fields() {
                                    @if let Some(v) = a.fields.get(&field.name) {
                                        dt { (label(field, lang)) }
                                        dd { (field_value(f, field, v, lang)) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(f) = &followup {
                    details open[shown.action.is_some()] {
                        summary { (t(lang, Msg::AddFollowUp)) }
                        form method="post" action={ "/cases/" (id) "/followup" } novalidate {
                            (csrf_input(csrf))
                            (form_inputs(f,
                                shown.action.as_ref().map_or(&no_values, |a| &a.shown),
                                shown.action.as_ref().map_or(&no_errors, |a| &a.errors),
                                lang, ACTION_PREFIX))
                            button type="submit" { (t(lang, Msg::AddFollowUp)) }
                        }
                    }
                }
            }
            section #comments {
                h2 { (t(lang, Msg::Comments)) }
                @if view.comments.is_empty() { p.muted { (t(lang, Msg::NoComments)) } }
                @for c in &view.comments {
                    div.comment {
                        p.meta { (when(&c.at)) @if let Some(by) = &c.author { " · " (by) } (clock_mark(view, lang, &c.change)) }
                        p { (c.text) }
                    }
                }
                form method="post" action={ "/cases/" (id) "/comment" } {
                    (csrf_input(csrf))
                    label for="comment-text" { (t(lang, Msg::Comment)) }
                    textarea #comment-text name="text" rows="3" {}
                    button type="submit" { (t(lang, Msg::AddComment)) }
                }
            }
        },
    )
}
