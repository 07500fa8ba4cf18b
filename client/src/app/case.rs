//! One case: what its forms do (new case, edit, submit, follow-up, comment, resolving
//! a conflict); the page itself is `case_view.rs`. Every submit is saved at
//! once, in one durable store transaction (`Store::edit` or `Store::create`), so a
//! closed browser or a dead battery loses nothing that was sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{HttpResponse, web};
use intake_shared::{Form, FormRegistry, Lang, RecordError, RecordId, ReviewStatus, Rule, Value};
use intake_web::form::{form_inputs, label};
use intake_web::i18n::{Msg, t, tf};
use intake_web::layout::csrf_input;
use maud::html;
use serde::Deserialize;

use super::case_view::{CaseView, Shown, case_page};
use super::errors::AppError;
use super::pages::app_page;
use super::typed::{self, ACTION_PREFIX, FIELD_PREFIX};
use super::unlock::{Carry, locked_with};
use super::visit::Visit;
use super::{html, see_other};
use crate::StoreError;

/// The form a new case is recorded with.
pub const CASE_FORM: &str = "intake";
/// The form of follow-up visits.
pub const FOLLOWUP_FORM: &str = "followup";

fn parse_id(id: &str) -> Result<RecordId, AppError> {
    id.parse().map_err(|_| AppError::NotFound)
}

fn store_error(lang: Lang, e: StoreError) -> AppError {
    match e {
        StoreError::NotFound(_) => AppError::NotFound,
        e => AppError::internal(lang, e),
    }
}

async fn load(visit: &Visit, id: RecordId) -> Result<CaseView, AppError> {
    let lang = visit.lang;
    visit
        .store(move |s| -> Result<CaseView, StoreError> {
            let mut r = s.get(id)?;
            Ok(CaseView {
                id,
                form: r.form().clone(),
                values: r.values(),
                status: r.status(),
                note: r.review_note(),
                conflicts: r.conflicts(),
                comments: r.comments(),
                actions: r.actions(),
                clock: s.clock_marks(&mut r)?,
            })
        })
        .await?
        .map_err(|e| store_error(lang, e))
}

pub(super) fn followup_form() -> Result<Arc<Form>, AppError> {
    FormRegistry::builtin()
        .latest(FOLLOWUP_FORM)
        .map_err(|e| AppError::internal(Lang::En, e))
}

/// `/cases/new`: an empty case form.
pub async fn new_form(visit: Visit) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    if !visit.state.is_unlocked() {
        return Err(AppError::Locked);
    }
    let form = FormRegistry::builtin()
        .latest(CASE_FORM)
        .map_err(|e| AppError::internal(lang, e))?;
    let title = t(lang, Msg::NewCase);
    Ok(html(app_page(
        &visit.viewer(),
        title,
        html! {
            h1 { (title) }
            form.case method="post" novalidate action="/cases/new" {
                (csrf_input(&visit.session.csrf))
                (form_inputs(&form, &BTreeMap::new(), &BTreeMap::new(), lang, FIELD_PREFIX))
                button type="submit" { (t(lang, Msg::Save)) }
            }
        },
    )))
}

/// Posts of the case form: the CSRF token and the fields. The forms are `novalidate`:
/// a browser's own messages (a number out of range) come in the browser's language, not
/// the one chosen in the app, and would stop a draft from being saved; the app checks
/// every value with the form's message instead.
type Posted = web::Form<Vec<(String, String)>>;

fn csrf_of(posted: &[(String, String)]) -> &str {
    posted
        .iter()
        .find(|(k, _)| k == intake_web::layout::CSRF_FIELD)
        .map_or("", |(_, v)| v.as_str())
}

/// Creates the case with every valid value typed, in one transaction; values that
/// break their field are shown back with the form's message, on the new case's page.
pub async fn create(visit: Visit, posted: Posted) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    visit.check_csrf(csrf_of(&posted))?;
    if !visit.state.is_unlocked() {
        return Ok(locked_with(&visit, Carry::new("/cases/new", &posted)));
    }
    let form = FormRegistry::builtin()
        .latest(CASE_FORM)
        .map_err(|e| AppError::internal(lang, e))?;
    let typed = typed::read(&form, &BTreeMap::new(), &posted, FIELD_PREFIX, lang);
    let changes = typed.changes.clone();
    let id = visit
        .store(move |s| {
            s.create(CASE_FORM, |e| {
                for (name, value) in &changes {
                    if let Some(v) = value {
                        e.set(name, v.clone())?;
                    }
                }
                Ok(())
            })
        })
        .await?
        .map_err(|e| AppError::internal(lang, e))?;
    if typed.errors.is_empty() {
        return Ok(see_other(&format!("/cases/{id}?saved=1")));
    }
    let view = load(&visit, id).await?;
    let shown = Shown {
        error: Some(t(lang, Msg::CheckFields).to_string()),
        typed: Some(typed),
        ..Shown::default()
    };
    Ok(page_answer(&visit, &view, shown, true))
}

#[derive(Deserialize)]
pub struct PageQuery {
    saved: Option<String>,
    done: Option<String>,
}

/// `/cases/{id}`.
pub async fn show(
    visit: Visit,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    let id = parse_id(&id)?;
    let view = load(&visit, id).await?;
    let notice = match (query.saved.is_some(), query.done.as_deref()) {
        (true, _) => Some(t(lang, Msg::Saved)),
        (_, Some("submitted")) => Some(t(lang, Msg::CaseSubmitted)),
        (_, Some("comment")) => Some(t(lang, Msg::CommentAdded)),
        (_, Some("followup")) => Some(t(lang, Msg::FollowUpAdded)),
        (_, Some("resolved")) => Some(t(lang, Msg::ConflictResolved)),
        _ => None,
    };
    let shown = Shown {
        notice: notice.map(str::to_string),
        ..Shown::default()
    };
    Ok(page_answer(&visit, &view, shown, false))
}

fn page_answer(visit: &Visit, view: &CaseView, shown: Shown, bad: bool) -> HttpResponse {
    let body = case_page(visit, view, &shown).into_string();
    let mut resp = if bad {
        HttpResponse::BadRequest()
    } else {
        HttpResponse::Ok()
    };
    resp.content_type("text/html; charset=utf-8").body(body)
}

/// Saves the case form: every changed field in one `Store::edit`.
pub async fn save(
    visit: Visit,
    id: web::Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    visit.check_csrf(csrf_of(&posted))?;
    let id = parse_id(&id)?;
    if !visit.state.is_unlocked() {
        return Ok(locked_with(
            &visit,
            Carry::new(&format!("/cases/{id}"), &posted),
        ));
    }
    let view = load(&visit, id).await?;
    let typed = typed::read(&view.form, &view.values, &posted, FIELD_PREFIX, lang);
    if !typed.changes.is_empty() {
        let changes = typed.changes.clone();
        visit
            .store(move |s| {
                s.edit(id, |e| {
                    for (name, value) in &changes {
                        match value {
                            Some(v) => e.set(name, v.clone())?,
                            None => e.clear(name)?,
                        }
                    }
                    Ok(())
                })
            })
            .await?
            .map_err(|e| store_error(lang, e))?;
    }
    if typed.errors.is_empty() {
        return Ok(see_other(&format!("/cases/{id}?saved=1")));
    }
    let view = load(&visit, id).await?;
    let shown = Shown {
        error: Some(t(lang, Msg::CheckFields).to_string()),
        typed: Some(typed),
        ..Shown::default()
    };
    Ok(page_answer(&visit, &view, shown, true))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Sends the case for review, or names the required fields still empty.
pub async fn submit(
    visit: Visit,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    visit.check_csrf(&form.csrf)?;
    let id = parse_id(&id)?;
    let done = visit
        .store(move |s| s.edit(id, |e| e.set_status(ReviewStatus::Submitted, None)))
        .await?;
    match done {
        Ok(()) => Ok(see_other(&format!("/cases/{id}?done=submitted"))),
        Err(StoreError::Record(RecordError::Incomplete { issues })) => {
            let view = load(&visit, id).await?;
            let missing: Vec<&str> = issues
                .iter()
                .map(|i| {
                    view.form
                        .field(&i.field)
                        .map_or(i.field.as_str(), |f| label(f, lang))
                })
                .collect();
            let mut error = tf(
                lang,
                Msg::MissingToSubmit,
                &[("fields", &missing.join(", "))],
            );
            if issues.iter().any(|i| i.rule == Rule::Conflict) {
                error.push(' ');
                error.push_str(t(lang, Msg::ConflictExplain));
            }
            let shown = Shown {
                error: Some(error),
                ..Shown::default()
            };
            Ok(page_answer(&visit, &view, shown, true))
        }
        Err(e) => Err(store_error(lang, e)),
    }
}

pub async fn comment(
    visit: Visit,
    id: web::Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    visit.check_csrf(csrf_of(&posted))?;
    let id = parse_id(&id)?;
    if !visit.state.is_unlocked() {
        let to = format!("/cases/{id}/comment");
        return Ok(locked_with(&visit, Carry::new(&to, &posted)));
    }
    let text = posted
        .iter()
        .find(|(k, _)| k == "text")
        .map_or(String::new(), |(_, v)| v.replace("\r\n", "\n"));
    if text.trim().is_empty() {
        return Ok(see_other(&format!("/cases/{id}")));
    }
    visit
        .store(move |s| s.edit(id, |e| e.add_comment(&text)))
        .await?
        .map_err(|e| store_error(lang, e))?;
    Ok(see_other(&format!("/cases/{id}?done=comment#comments")))
}

/// Adds a follow-up visit from the follow-up form; a bad value is shown back.
pub async fn followup(
    visit: Visit,
    id: web::Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    visit.check_csrf(csrf_of(&posted))?;
    let id = parse_id(&id)?;
    if !visit.state.is_unlocked() {
        let to = format!("/cases/{id}/followup");
        return Ok(locked_with(&visit, Carry::new(&to, &posted)));
    }
    let form = followup_form()?;
    let typed = typed::read(&form, &BTreeMap::new(), &posted, ACTION_PREFIX, lang);
    let mut problem = (!typed.errors.is_empty()).then(|| t(lang, Msg::CheckFields).to_string());
    if problem.is_none() {
        let values: BTreeMap<String, Value> = typed.shown.clone();
        let f = form.clone();
        let done = visit
            .store(move |s| s.edit(id, |e| e.add_action(&f, &values)))
            .await?;
        match done {
            Ok(()) => return Ok(see_other(&format!("/cases/{id}?done=followup#followups"))),
            Err(StoreError::Record(RecordError::Incomplete { issues })) => {
                let missing: Vec<&str> = issues
                    .iter()
                    .map(|i| {
                        form.field(&i.field)
                            .map_or(i.field.as_str(), |f| label(f, lang))
                    })
                    .collect();
                problem = Some(tf(
                    lang,
                    Msg::MissingToSubmit,
                    &[("fields", &missing.join(", "))],
                ));
            }
            Err(e) => return Err(store_error(lang, e)),
        }
    }
    let view = load(&visit, id).await?;
    let shown = Shown {
        error: problem,
        action: Some(typed),
        ..Shown::default()
    };
    Ok(page_answer(&visit, &view, shown, true))
}

#[derive(Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    field: String,
    value: String,
}

/// Settles a field's conflict with the chosen value (a change that supersedes every
/// concurrent one).
pub async fn resolve(
    visit: Visit,
    id: web::Path<String>,
    form: web::Form<ResolveForm>,
) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    let form = form.into_inner();
    visit.check_csrf(&form.csrf)?;
    let id = parse_id(&id)?;
    let view = load(&visit, id).await?;
    let value = view
        .form
        .parse_input(&form.field, &form.value)
        .map_err(|rule| AppError::BadRequest(lang, rule.message(lang)))?;
    let field = form.field;
    visit
        .store(move |s| s.edit(id, |e| e.resolve(&field, value)))
        .await?
        .map_err(|e| store_error(lang, e))?;
    Ok(see_other(&format!("/cases/{id}?done=resolved")))
}
