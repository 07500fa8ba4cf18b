//! The record list (filters, search by name across case, diacritics and script, pages),
//! a record's page (every field with who last set it, a field's history, conflicts with
//! each value's author, device and time, comments, follow-up actions, review, reassign,
//! links) and the duplicate hints. Only records of the supervisor's team are ever
//! listed or shown; another team's record is "not found", like a missing one.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use chrono::NaiveDate;
use intake_shared::{Form, FormRegistry, Lang, Record, RecordId, Value};
use intake_web::i18n::{Msg, status_label, t, tf};
use intake_web::layout::{csrf_input, status_badge};
use intake_web::table::{Pager, pager};
use maud::{Markup, html};

use super::audit::{self, action};
use super::clock::mark as clock_mark;
use super::errors::WebError;
use super::pages::signed_page;
use super::session::Signed;
use crate::policy;
use crate::startup::AppState;
use crate::storage::{Device, ListFilter, Listed, Scope, StoredRecord, User};

/// Records on one page of the list.
pub const PER_PAGE: usize = 50;

/// The list's filters, as they come in the query string (also used by the exports and
/// the donor summary, so "export what I am looking at" is the same filter).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ListQuery {
    pub status: String,
    pub municipality: String,
    pub issue_type: String,
    pub urgency: String,
    pub paralegal: String,
    /// `yes`, `no` or empty.
    pub conflicts: String,
    pub from: String,
    pub to: String,
    /// A name, as typed.
    pub q: String,
    /// Kept as text: a filter shared with other forms' fields (exports) must not fail
    /// to parse as a whole because one number is odd.
    pub page: String,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl ListQuery {
    /// The storage filter; a malformed date is a clear error, not an empty list.
    pub fn filter(&self, lang: Lang) -> Result<ListFilter, WebError> {
        let date = |s: &str| -> Result<Option<NaiveDate>, WebError> {
            match some(s) {
                None => Ok(None),
                Some(d) => NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| {
                        WebError::BadRequest(
                            lang,
                            format!("{}: YYYY-MM-DD", t(lang, Msg::DateFrom)),
                        )
                    }),
            }
        };
        Ok(ListFilter {
            status: some(&self.status),
            municipality: some(&self.municipality),
            issue_type: some(&self.issue_type),
            urgency: some(&self.urgency),
            paralegal: some(&self.paralegal),
            has_conflicts: match self.conflicts.as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            },
            from: date(&self.from)?,
            to: date(&self.to)?,
            name: some(&self.q),
        })
    }

    /// The filters as a query string (without the page), for links that keep them.
    pub fn query_string(&self) -> String {
        let pairs = [
            ("status", &self.status),
            ("municipality", &self.municipality),
            ("issue_type", &self.issue_type),
            ("urgency", &self.urgency),
            ("paralegal", &self.paralegal),
            ("conflicts", &self.conflicts),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
        ];
        pairs
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", super::encode(v.trim())))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The filter as the audit trail records it: which filters, never the name searched
    /// for (a client's name is case data).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = [
            ("status", &self.status),
            ("municipality", &self.municipality),
            ("issue_type", &self.issue_type),
            ("urgency", &self.urgency),
            ("paralegal", &self.paralegal),
            ("conflicts", &self.conflicts),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", v.trim()))
        .collect();
        if !self.q.trim().is_empty() {
            parts.push("name=(searched)".into());
        }
        if parts.is_empty() {
            "all".into()
        } else {
            parts.join(" ")
        }
    }
}

/// The intake form's newest version: its choice lists label the filters.
pub fn intake_form() -> std::sync::Arc<Form> {
    FormRegistry::builtin()
        .latest("intake")
        .expect("the intake form is built in")
}

/// A choice field's code shown by its label in `lang`.
pub fn choice_label(form: &Form, field: &str, code: &str, lang: Lang) -> String {
    match form.field(field) {
        Some(f) => form.value_label(f, &Value::Text(code.to_string()), lang),
        None => code.to_string(),
    }
}

/// Enabled users of the supervisor's team (paralegal filter, reassignment).
pub async fn team_users(state: &web::Data<AppState>, who: &Signed) -> Result<Vec<User>, WebError> {
    let storage = state.storage.clone();
    let team = who.session.user.team.clone();
    let users = web::block(move || storage.users()).await??;
    Ok(users
        .into_iter()
        .filter(|u| !u.disabled && u.team.is_some() && u.team == team)
        .collect())
}

fn select(
    name: &str,
    label: &str,
    current: &str,
    options: &[(String, String)],
    any: &str,
) -> Markup {
    html! {
        label { (label)
            select name=(name) {
                option value="" selected[current.is_empty()] { (any) }
                @for (value, text) in options {
                    option value=(value) selected[current == value] { (text) }
                }
            }
        }
    }
}

fn choice_options(form: &Form, field: &str, lang: Lang) -> Vec<(String, String)> {
    match form.field(field) {
        Some(f) => form
            .choices(f)
            .iter()
            .map(|c| (c.value.clone(), c.label.get(lang, &c.value).to_string()))
            .collect(),
        None => Vec::new(),
    }
}

const STATUSES: [&str; 6] = [
    "draft",
    "submitted",
    "needs_changes",
    "approved",
    "rejected",
    "closed",
];

fn filter_form(lang: Lang, q: &ListQuery, form: &Form, team: &[User]) -> Markup {
    let any = t(lang, Msg::Any);
    let field_label = |name: &str| {
        form.field(name)
            .map(|f| intake_web::form::label(f, lang).to_string())
            .unwrap_or_else(|| name.to_string())
    };
    let statuses: Vec<(String, String)> = STATUSES
        .iter()
        .map(|s| (s.to_string(), status_label(lang, s).to_string()))
        .collect();
    let people: Vec<(String, String)> = team
        .iter()
        .map(|u| (u.name.clone(), u.name.clone()))
        .collect();
    let conflicts = vec![(
        "yes".to_string(),
        t(lang, Msg::OnlyWithConflicts).to_string(),
    )];
    html! {
        form.filters method="get" action="/records" role="search" aria-label=(t(lang, Msg::Filters)) {
                label { (t(lang, Msg::SearchByName))
                    input type="search" name="q" value=(q.q) autocomplete="off"; }
                (select("status", t(lang, Msg::Status), &q.status, &statuses, any))
                (select("municipality", &field_label("municipality"), &q.municipality, &choice_options(form, "municipality", lang), any))
                (select("issue_type", &field_label("issue_type"), &q.issue_type, &choice_options(form, "issue_type", lang), any))
                (select("urgency", &field_label("urgency"), &q.urgency, &choice_options(form, "urgency", lang), any))
                (select("paralegal", t(lang, Msg::Paralegal), &q.paralegal, &people, any))
                (select("conflicts", t(lang, Msg::Conflicts), &q.conflicts, &conflicts, any))
                label { (t(lang, Msg::DateFrom)) input type="date" name="from" value=(q.from); }
                label { (t(lang, Msg::DateTo)) input type="date" name="to" value=(q.to); }
                span { button type="submit" { (t(lang, Msg::ApplyFilters)) }
                " " a href="/records" { (t(lang, Msg::ClearFilters)) } }
        }
    }
}

/// The export box under the list: the same filter, sensitive columns only if ticked.
fn export_form(lang: Lang, q: &ListQuery) -> Markup {
    let hidden = [
        ("status", &q.status),
        ("municipality", &q.municipality),
        ("issue_type", &q.issue_type),
        ("urgency", &q.urgency),
        ("paralegal", &q.paralegal),
        ("conflicts", &q.conflicts),
        ("from", &q.from),
        ("to", &q.to),
        ("q", &q.q),
    ];
    html! {
        form.export method="get" action="/export.csv" {
            fieldset {
                legend { (t(lang, Msg::Export)) }
                @for (k, v) in hidden {
                    @if !v.is_empty() { input type="hidden" name=(k) value=(v); }
                }
                p { (t(lang, Msg::ExportScope)) }
                label { (t(lang, Msg::ColumnHeaders))
                    select name="headers" {
                        option value="labels" { (t(lang, Msg::HeadersAsLabels)) }
                        option value="codes" { (t(lang, Msg::HeadersAsCodes)) }
                    }
                }
                label.check { input type="checkbox" name="sensitive" value="yes"; " " (t(lang, Msg::IncludeSensitive)) }
                p.hint { (t(lang, Msg::SensitiveExplain)) }
                button type="submit" { (t(lang, Msg::DownloadCsv)) }
                " "
                button type="submit" formaction="/export.json" { (t(lang, Msg::DownloadJson)) }
            }
        }
    }
}

fn date_of(d: Option<chrono::DateTime<chrono::Utc>>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn list_table(lang: Lang, form: &Form, rows: &[Listed]) -> Markup {
    html! {
        div.scroll {
        table.records {
            thead { tr {
                th scope="col" { (t(lang, Msg::Name)) }
                th scope="col" { (t(lang, Msg::Status)) }
                th scope="col" { (t(lang, Msg::Municipality)) }
                th scope="col" { (t(lang, Msg::IssueType)) }
                th scope="col" { (t(lang, Msg::Urgency)) }
                th scope="col" { (t(lang, Msg::Paralegal)) }
                th scope="col" { (t(lang, Msg::Created)) }
                th scope="col" { (t(lang, Msg::Conflicts)) }
            } }
            tbody {
                @for r in rows {
                    tr {
                        td { a href={ "/records/" (r.meta.id) } {
                            @if r.summary.name.trim().is_empty() { "—" } @else { (r.summary.name) }
                        } }
                        td { (status_badge(lang, &r.status)) }
                        td { (r.summary.municipality.as_deref().map(|m| choice_label(form, "municipality", m, lang)).unwrap_or_default()) }
                        td { (r.summary.issue_type.as_deref().map(|m| choice_label(form, "issue_type", m, lang)).unwrap_or_default()) }
                        td { (r.summary.urgency.as_deref().map(|m| choice_label(form, "urgency", m, lang)).unwrap_or_default()) }
                        td { (r.meta.assigned_to.as_deref().unwrap_or(&r.meta.owner)) }
                        td { (date_of(r.summary.created_at)) }
                        td { @if r.summary.has_conflicts { strong.conflict { "⚠ " (t(lang, Msg::Open)) } } }
                    }
                }
            }
        }
        }
    }
}

/// `GET /records`.
pub async fn list(
    who: Signed,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    who.supervisor()?;
    let lang = who.lang;
    let q = q.into_inner();
    let filter = q.filter(lang)?;
    let page = q.page.trim().parse::<u64>().unwrap_or(1).max(1);
    let scope = policy::scope(&who.principal());
    let storage = state.storage.clone();
    let offset = (page as usize - 1).saturating_mul(PER_PAGE);
    let (rows, total) =
        web::block(move || storage.list_records(&scope, &filter, offset, PER_PAGE)).await??;
    let team = team_users(&state, &who).await?;
    let form = intake_form();
    let query = q.query_string();
    let body = html! {
        h1 { (t(lang, Msg::Cases)) }
        (filter_form(lang, &q, &form, &team))
        p.count { (tf(lang, Msg::CasesShown, &[("n", &rows.len().to_string()), ("total", &total.to_string())])) }
        @if rows.is_empty() {
            p.empty { (t(lang, Msg::NoCasesMatch)) }
        } @else {
            (list_table(lang, &form, &rows))
        }
        (pager(lang, &Pager { path: "/records", query: &query, page, per_page: PER_PAGE as u64, total: total as u64 }))
        (export_form(lang, &q))
    };
    audit::record(&state, &who, action::LIST, q.describe(), Vec::new()).await?;
    Ok(super::html(signed_page(
        &who,
        t(lang, Msg::Cases),
        "/records",
        body,
    )))
}

/// A stored record the signed-in user may read, or "not found".
pub async fn readable(
    state: &web::Data<AppState>,
    who: &Signed,
    id: &str,
) -> Result<(RecordId, StoredRecord), WebError> {
    let lang = who.lang;
    let id: RecordId = id.parse().map_err(|_| WebError::NotFound(lang))?;
    let storage = state.storage.clone();
    let stored = web::block(move || storage.record(id)).await??;
    let p = who.principal();
    let stored = stored
        .filter(|s| policy::may_read(&p, &s.meta))
        .ok_or(WebError::NotFound(lang))?;
    Ok((id, stored))
}

/// Who a device is, by the device part of an actor id.
pub async fn devices_by_actor(
    state: &web::Data<AppState>,
) -> Result<HashMap<String, Device>, WebError> {
    let storage = state.storage.clone();
    let devices = web::block(move || storage.devices()).await??;
    Ok(devices.into_iter().map(|d| (d.actor.clone(), d)).collect())
}

/// "vesa (dashboard)", "drita (Drita's phone)": who wrote something, from the change's
/// author, else the user the device is bound to.
fn who_wrote(devices: &HashMap<String, Device>, device: &str, author: Option<&str>) -> String {
    let d = devices.get(device);
    let user = author
        .map(str::to_string)
        .or_else(|| d.map(|d| d.user.clone()))
        .unwrap_or_else(|| "?".into());
    match d {
        Some(d) => format!("{user} ({})", d.label),
        None => format!("{user} ({})", &device[..device.len().min(8)]),
    }
}

fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// A value as a form field shows it, or as text for review keys.
fn show_value(form: &Form, field: &str, value: &Value, lang: Lang) -> Markup {
    match form.field(field) {
        Some(f) => intake_web::form::field_value(form, f, value, lang),
        None if field == "status" => html! { (status_label(lang, &value.to_string())) },
        None => html! { (value.to_string()) },
    }
}

/// A value as it would be typed back (the resolve buttons send it).
pub fn typed(value: &Value) -> String {
    match value {
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        other => other.to_string(),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ShowQuery {
    history: String,
    done: String,
    error: String,
}

/// `GET /records/{id}`.
pub async fn show(
    who: Signed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<ShowQuery>,
) -> Result<HttpResponse, WebError> {
    who.supervisor()?;
    let lang = who.lang;
    let (id, stored) = readable(&state, &who, &path).await?;
    let devices = devices_by_actor(&state).await?;
    let team = team_users(&state, &who).await?;
    let storage = state.storage.clone();
    let scope = policy::scope(&who.principal());
    let p = who.principal();
    let (linked, similar) = web::block(move || -> crate::storage::Result<_> {
        // Links are made between records the linker could read; still, show only
        // those this user may read now.
        let mut linked = storage.linked(id)?;
        linked.retain(|l| {
            storage
                .record(*l)
                .ok()
                .flatten()
                .is_some_and(|r| policy::may_read(&p, &r.meta))
        });
        let similar = similar_to(storage.as_ref(), &scope, id)?;
        Ok((linked, similar))
    })
    .await??;
    let history = q.history.clone();
    let storage = state.storage.clone();
    let view = web::block(move || -> anyhow::Result<RecordView> {
        let mut record = Record::load(&stored.doc, FormRegistry::builtin())?;
        let clock = super::clock::judge(storage.as_ref(), &mut record)?;
        Ok(RecordView::build(record, &stored, &history, clock))
    })
    .await?
    .map_err(|e| WebError::internal(lang, e.context("Failed to read a stored record")))?;
    let title = if view.name.trim().is_empty() {
        id.to_string()
    } else {
        view.name.clone()
    };
    let body = view.render(&who, &devices, &team, &linked, &similar, &q);
    audit::record(&state, &who, action::VIEW_RECORD, String::new(), vec![id]).await?;
    Ok(super::html(signed_page(&who, &title, "/records", body)))
}

/// Other records of the scope that probably describe the same person (see
/// [`duplicates`]), not yet linked.
fn similar_to(
    storage: &dyn crate::storage::Storage,
    scope: &Scope,
    id: RecordId,
) -> crate::storage::Result<Vec<Listed>> {
    let groups = storage.duplicate_groups(scope)?;
    Ok(groups
        .into_iter()
        .find(|g| g.iter().any(|l| l.meta.id == id))
        .map(|g| g.into_iter().filter(|l| l.meta.id != id).collect())
        .unwrap_or_default())
}

/// Everything a record page shows, read from the document once.
struct RecordView {
    id: RecordId,
    name: String,
    form: std::sync::Arc<Form>,
    status: String,
    review_note: Option<String>,
    assigned_to: Option<String>,
    owner: String,
    created: Option<chrono::DateTime<chrono::Utc>>,
    values: std::collections::BTreeMap<String, Value>,
    last_set: HashMap<String, intake_shared::FieldEvent>,
    conflicts: Vec<intake_shared::Conflict>,
    comments: Vec<intake_shared::record::Comment>,
    actions: Vec<intake_shared::record::Action>,
    issues: Vec<intake_shared::Issue>,
    history: Option<(String, Vec<intake_shared::FieldEvent>)>,
    /// Each change's receipt and clock judgement (issue 13), by hash (hex).
    clock: super::clock::Judgements,
}

impl RecordView {
    fn build(
        mut record: Record,
        stored: &StoredRecord,
        history: &str,
        clock: super::clock::Judgements,
    ) -> RecordView {
        let form = record.form().clone();
        let values = record.values();
        let mut last_set = HashMap::new();
        for f in form.fields() {
            if let Some(e) = record.last_set(&f.name) {
                last_set.insert(f.name.clone(), e);
            }
        }
        let history = form
            .field(history)
            .map(|f| (f.name.clone(), record.field_history(&f.name)));
        RecordView {
            id: record.id(),
            name: values
                .get("full_name")
                .map(|v| v.to_string())
                .unwrap_or_default(),
            status: record.status().as_str().to_string(),
            review_note: record.review_note(),
            assigned_to: record.assigned_to(),
            owner: stored.meta.owner.clone(),
            created: record.created_at(),
            conflicts: record.conflicts(),
            comments: record.comments(),
            actions: record.actions(),
            issues: record.validate(),
            values,
            last_set,
            history,
            form,
            clock,
        }
    }

    fn render(
        &self,
        who: &Signed,
        devices: &HashMap<String, Device>,
        team: &[User],
        linked: &[RecordId],
        similar: &[Listed],
        q: &ShowQuery,
    ) -> Markup {
        let lang = who.lang;
        let csrf = &who.session.csrf;
        let form = &self.form;
        let base = format!("/records/{}", self.id);
        let label_of = |name: &str| -> String {
            match name {
                "status" => t(lang, Msg::Status).to_string(),
                "assigned_to" => t(lang, Msg::AssignedTo).to_string(),
                "review_note" => t(lang, Msg::ReviewNote).to_string(),
                other => form
                    .field(other)
                    .map(|f| intake_web::form::label(f, lang).to_string())
                    .unwrap_or_else(|| other.to_string()),
            }
        };
        let done = match q.done.as_str() {
            "approved" => Some(Msg::CaseApproved),
            "needs_changes" => Some(Msg::CaseSentBack),
            "rejected" => Some(Msg::CaseRejected),
            "resolved" => Some(Msg::ConflictResolved),
            "assigned" => Some(Msg::CaseReassigned),
            "comment" => Some(Msg::CommentAdded),
            "linked" => Some(Msg::CasesLinked),
            _ => None,
        };
        let error = match q.error.as_str() {
            "" => None,
            "assignee" => Some(Msg::AssigneeInvalid),
            "transition" => Some(Msg::TransitionNotAllowed),
            "changed" => Some(Msg::ChangedMeanwhile),
            "note" => Some(Msg::ReviewNoteNeeded),
            _ => Some(Msg::CheckFields),
        };
        html! {
            p { a href="/records" { "← " (t(lang, Msg::BackToList)) } }
            h1 { @if self.name.trim().is_empty() { (self.id) } @else { (self.name) } " " (status_badge(lang, &self.status)) }
            @if let Some(m) = done { (intake_web::layout::notice(t(lang, m))) }
            @if let Some(m) = error { (intake_web::layout::error_box(t(lang, m))) }
            dl.meta {
                dt { (t(lang, Msg::CaseNumber)) } dd { code { (self.id) } }
                dt { (t(lang, Msg::Paralegal)) } dd { (self.owner) }
                dt { (t(lang, Msg::AssignedTo)) } dd { (self.assigned_to.as_deref().unwrap_or("—")) }
                dt { (t(lang, Msg::Created)) } dd { (when(self.created)) (clock_mark(lang, &self.clock, &self.clock.creation)) }
                @if let Some(note) = &self.review_note {
                    dt { (t(lang, Msg::ReviewNote)) } dd { (note) }
                }
            }
            @if !self.conflicts.is_empty() {
                section.conflicts id="conflicts" {
                    h2 { "⚠ " (t(lang, Msg::Conflicts)) }
                    p { (t(lang, Msg::ConflictExplain)) }
                    @for c in &self.conflicts {
                        article.conflict data-field=(c.field) {
                            h3 { (tf(lang, Msg::ConflictIn, &[("field", &label_of(&c.field))])) }
                            ul {
                                @for v in &c.values {
                                    li {
                                        form method="post" action={ (base) "/resolve" } {
                                            (csrf_input(csrf))
                                            (super::csrf::once_input())
                                            input type="hidden" name="field" value=(c.field);
                                            input type="hidden" name="value" value=(typed(&v.value));
                                            strong.value { (show_value(form, &c.field, &v.value, lang)) }
                                            " — " (who_wrote(devices, &v.device, v.author.as_deref())) ", " (when(v.at)) (clock_mark(lang, &self.clock, &v.change)) " "
                                            button type="submit" { (t(lang, Msg::ResolveWithThisValue)) }
                                        }
                                    }
                                }
                            }
                            @if let Some(f) = form.field(&c.field) {
                                form.new-value method="post" action={ (base) "/resolve" } {
                                    (csrf_input(csrf))
                                    (super::csrf::once_input())
                                    input type="hidden" name="field" value=(c.field);
                                    (intake_web::form::field_input(form, f, None, lang, "value"))
                                    button type="submit" { (t(lang, Msg::ResolveWithNewValue)) }
                                }
                            }
                        }
                    }
                }
            }
            section.review {
                h2 { (t(lang, Msg::Review)) }
                form method="post" action={ (base) "/review" } {
                    (csrf_input(csrf))
                    (super::csrf::once_input())
                    label { (t(lang, Msg::ReviewNote))
                        textarea name="note" rows="2" {} }
                    button type="submit" name="outcome" value="approved" { (t(lang, Msg::Approve)) }
                    " "
                    button type="submit" name="outcome" value="needs_changes" { (t(lang, Msg::RequestChanges)) }
                    " "
                    button type="submit" name="outcome" value="rejected" class="danger" { (t(lang, Msg::Reject)) }
                }
                form method="post" action={ (base) "/assign" } {
                    (csrf_input(csrf))
                    (super::csrf::once_input())
                    label { (t(lang, Msg::AssignTo))
                        select name="user" {
                            @for u in team {
                                option value=(u.name) selected[self.assigned_to.as_deref() == Some(u.name.as_str())] { (u.name) }
                            }
                        }
                    }
                    button type="submit" { (t(lang, Msg::Reassign)) }
                }
            }
            @if !self.issues.is_empty() {
                section.issues {
                    ul { @for i in &self.issues { li { (label_of(&i.field)) ": " (i.message(lang)) } } }
                }
            }
            section.fields {
                h2 { (form.title.get(lang, &form.id)) }
                div.scroll {
                table {
                    thead { tr {
                        th scope="col" { (t(lang, Msg::Field)) }
                        th scope="col" { (t(lang, Msg::Value)) }
                        th scope="col" { (t(lang, Msg::LastSetBy)) }
                        th scope="col" { (t(lang, Msg::History)) }
                    } }
                    tbody {
                        @for f in form.fields() {
                            tr {
                                th scope="row" { (intake_web::form::label(f, lang)) }
                                td { @match self.values.get(&f.name) {
                                    Some(v) => (intake_web::form::field_value(form, f, v, lang)),
                                    None => span.muted { (t(lang, Msg::NotAnswered)) },
                                } }
                                td { @if let Some(e) = self.last_set.get(&f.name) {
                                    (who_wrote(devices, &e.device, e.author.as_deref())) br; small { (when(e.at)) (clock_mark(lang, &self.clock, &e.change)) }
                                } }
                                td { a href={ (base) "?history=" (f.name) "#history" } { (t(lang, Msg::ShowHistory)) } }
                            }
                        }
                    }
                }
                }
            }
            @if let Some((name, events)) = &self.history {
                section #history {
                    h2 { (tf(lang, Msg::FieldHistory, &[("field", &label_of(name))])) }
                    @if events.is_empty() { p { (t(lang, Msg::NoHistory)) } }
                    ol {
                        @for e in events {
                            li {
                                (when(e.at)) (clock_mark(lang, &self.clock, &e.change)) " — " (who_wrote(devices, &e.device, e.author.as_deref())) ": "
                                @match &e.value {
                                    Some(v) => strong { (show_value(form, name, v, lang)) },
                                    None => em { (t(lang, Msg::NotAnswered)) },
                                }
                            }
                        }
                    }
                }
            }
            section.comments {
                h2 { (t(lang, Msg::Comments)) }
                @if self.comments.is_empty() { p.muted { (t(lang, Msg::NoComments)) } }
                ul { @for c in &self.comments {
                    li { blockquote { (c.text) } small { (who_wrote(devices, &c.device, c.author.as_deref())) ", " (c.at) (clock_mark(lang, &self.clock, &c.change)) } }
                } }
                form method="post" action={ (base) "/comment" } {
                    (csrf_input(csrf))
                    (super::csrf::once_input())
                    label { (t(lang, Msg::Comment)) textarea name="text" rows="3" required {} }
                    button type="submit" { (t(lang, Msg::AddComment)) }
                }
            }
            section.actions {
                h2 { (t(lang, Msg::FollowUpActions)) }
                @if self.actions.is_empty() { p.muted { (t(lang, Msg::NoFollowUpActions)) } }
                ul { @for a in &self.actions {
                    li {
                        (action_summary(a, lang))
                        br; small { (who_wrote(devices, &a.device, a.author.as_deref())) ", " (a.at) }
                    }
                } }
            }
            section.links {
                h2 { (t(lang, Msg::LinkedCases)) }
                ul { @for l in linked { li { a href={ "/records/" (l) } { code { (l) } } } } }
                @if !similar.is_empty() {
                    p { (t(lang, Msg::DuplicatesExplain)) }
                    ul { @for s in similar {
                        @if !linked.contains(&s.meta.id) {
                            li {
                                a href={ "/records/" (s.meta.id) } { (s.summary.name) } " "
                                form.inline method="post" action={ (base) "/link" } {
                                    (csrf_input(csrf))
                                    (super::csrf::once_input())
                                    input type="hidden" name="other" value=(s.meta.id);
                                    button type="submit" { (t(lang, Msg::LinkCases)) }
                                }
                            }
                        }
                    } }
                }
            }
        }
    }
}

/// A follow-up action in one line: its type and date, by the follow-up form's labels.
fn action_summary(a: &intake_shared::record::Action, lang: Lang) -> Markup {
    let form = FormRegistry::builtin().get(&a.form, a.form_version).ok();
    html! {
        @for (k, v) in &a.fields {
            @match form.as_ref().and_then(|f| f.field(k).map(|fld| (f, fld))) {
                Some((f, fld)) => { span.kv { (intake_web::form::label(fld, lang)) ": " (intake_web::form::field_value(f, fld, v, lang)) } " " },
                None => { span.kv { (k) ": " (v.to_string()) } " " },
            }
        }
    }
}

/// Groups of probable duplicates on one page: each group is a small table, and a page
/// must stay small at 10,000 records (57 groups were 81 KB).
pub const GROUPS_PER_PAGE: usize = 20;

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct PageQuery {
    page: String,
}

/// `GET /duplicates`: groups of records that probably describe the same person: the
/// same name once case, diacritics and script are folded away, the same birth year and
/// municipality.
pub async fn duplicates(
    who: Signed,
    state: web::Data<AppState>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, WebError> {
    who.supervisor()?;
    let lang = who.lang;
    let scope = policy::scope(&who.principal());
    let storage = state.storage.clone();
    let page = q.page.trim().parse::<u64>().unwrap_or(1).max(1);
    let (groups, links, total) = web::block(move || -> crate::storage::Result<_> {
        let all = storage.duplicate_groups(&scope)?;
        let total = all.len();
        let groups: Vec<Vec<Listed>> = all
            .into_iter()
            .skip((page as usize - 1) * GROUPS_PER_PAGE)
            .take(GROUPS_PER_PAGE)
            .collect();
        let mut links = HashMap::new();
        for g in &groups {
            for l in g {
                links.insert(l.meta.id, storage.linked(l.meta.id)?);
            }
        }
        Ok((groups, links, total))
    })
    .await??;
    let form = intake_form();
    let body = html! {
        h1 { (t(lang, Msg::Duplicates)) }
        (pager(lang, &Pager { path: "/duplicates", query: "", page, per_page: GROUPS_PER_PAGE as u64, total: total as u64 }))
        p { (t(lang, Msg::DuplicatesExplain)) }
        @if groups.is_empty() { p.empty { (t(lang, Msg::NoDuplicates)) } }
        @for g in &groups {
            section.group {
                (list_table(lang, &form, g))
                @let first = &g[0];
                @for other in &g[1..] {
                    @let done = links.get(&first.meta.id).is_some_and(|l| l.contains(&other.meta.id));
                    @if done {
                        p { "✓ " (t(lang, Msg::Linked)) ": " (first.summary.name) " ↔ " (other.summary.name) }
                    } @else {
                        form.inline method="post" action={ "/records/" (first.meta.id) "/link" } {
                            (csrf_input(&who.session.csrf))
                            (super::csrf::once_input())
                            input type="hidden" name="other" value=(other.meta.id);
                            input type="hidden" name="back" value="/duplicates";
                            button type="submit" { (t(lang, Msg::LinkCases)) ": " (first.summary.name) " ↔ " (other.summary.name) }
                        }
                    }
                }
            }
        }
    };
    Ok(super::html(signed_page(
        &who,
        t(lang, Msg::Duplicates),
        "/duplicates",
        body,
    )))
}
