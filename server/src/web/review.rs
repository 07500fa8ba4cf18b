//! What a supervisor does to a record from the dashboard. Each action is an Automerge
//! change the server makes on her behalf: the author is her name, the actor her
//! dashboard device's (with a fresh session part per action, so two tabs never reuse
//! a sequence number). The change then goes through exactly the path a change pushed
//! from her phone takes (`sync::store_changes`): the same policy judges it, it lands
//! in the change log, and the field gets it on the next sync. Links between records
//! are the exception: a supervisors' annotation kept by the server only.
//!
//! Each action's audit entry is stored with its change, in one transaction. Each form
//! carries a one-time token (`once`, beside the CSRF token): stored with the change,
//! it makes a form posted again — its answer lost to the network or a server restart
//! — get the first answer again instead of a second comment or review.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use intake_shared::protocol::{Outcome, Rejection};
use intake_shared::record::{Edit, Identity};
use intake_shared::{FormRegistry, Record, RecordError, RecordId, ReviewStatus};

use super::audit::{self, action};
use super::errors::WebError;
use super::records::{readable, team_users};
use super::see_other;
use super::session::Signed;
use crate::startup::AppState;
use crate::storage::{Audit, StorageError, UsedForm};

/// Why an action did not happen, as the record page names it (`?error=`).
#[derive(Debug)]
enum Refused {
    /// The form's values are not valid (or required answers are missing).
    Fields,
    Transition,
    Assignee,
    Note,
}

impl Refused {
    fn code(&self) -> &'static str {
        match self {
            Refused::Fields => "fields",
            Refused::Transition => "transition",
            Refused::Assignee => "assignee",
            Refused::Note => "note",
        }
    }
}

/// What the trail says of an action and where its answer sends the browser.
struct Done<'a> {
    what: &'static str,
    scope: String,
    /// The `?done=` of the record page.
    done: &'a str,
    /// The form's one-time token (empty: a form rendered without one).
    once: &'a str,
}

/// Where the first post of a form with this one-time token was sent, when one was
/// stored: the form was posted again.
async fn first_path(
    state: &web::Data<AppState>,
    who: &Signed,
    once: &str,
) -> Result<Option<String>, WebError> {
    if once.is_empty() {
        return Ok(None);
    }
    let storage = state.storage.clone();
    let (user, token) = (who.session.user.name.clone(), once.to_string());
    Ok(web::block(move || storage.used_form(&user, &token)).await??)
}

/// The first answer to a form posted again, when there was one.
async fn answered_before(
    state: &web::Data<AppState>,
    who: &Signed,
    once: &str,
) -> Result<Option<HttpResponse>, WebError> {
    Ok(first_path(state, who, once).await?.map(|to| see_other(&to)))
}

/// A write refused because another post of the same form was stored first (posted
/// at once, so [`answered_before`] found nothing yet): answered as that post was.
async fn first_answer(state: &web::Data<AppState>, who: &Signed, once: &str) -> WebError {
    match first_path(state, who, once).await {
        Ok(Some(to)) => WebError::AnsweredBefore(to),
        Ok(None) => WebError::internal(who.lang, anyhow::anyhow!("a used form without an answer")),
        Err(e) => e,
    }
}

/// Whether `e` is a write refused because its form's token was used meanwhile.
fn form_used(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<crate::sync::SyncError>(),
        Some(crate::sync::SyncError::Storage(StorageError::FormUsed))
    ) || matches!(
        e.downcast_ref::<StorageError>(),
        Some(StorageError::FormUsed)
    )
}

/// The audit of an action on `ids`, with its form's token when it has one.
fn audit_of(who: &Signed, d: &Done<'_>, ids: Vec<RecordId>, answer: String) -> Audit {
    let form = (!d.once.is_empty()).then(|| UsedForm {
        token: d.once.to_string(),
        answer,
    });
    audit::entry(who, d.what, d.scope.clone(), ids, form)
}

/// Makes one change to record `id` as the signed-in supervisor and stores it as her
/// dashboard device's push, with the action's audit entry (and form token) in the same
/// transaction. `Ok(Err(_))`: refused, nothing stored.
async fn act<F>(
    state: &web::Data<AppState>,
    who: &Signed,
    id: &str,
    d: Done<'_>,
    f: F,
) -> Result<(RecordId, Result<(), Refused>), WebError>
where
    F: FnOnce(&mut Edit<'_>) -> Result<(), RecordError> + Send + 'static,
{
    who.supervisor()?;
    let lang = who.lang;
    let (id, stored) = readable(state, who, id).await?;
    let audit = audit_of(who, &d, vec![id], done_at(id, d.done));
    let storage = state.storage.clone();
    let principal = who.principal();
    let limits = state.settings.limits.clone();
    let outcome = web::block(move || -> anyhow::Result<Result<(), Refused>> {
        let mut record = Record::load(&stored.doc, FormRegistry::builtin())?;
        let mut actor = hex::decode(&principal.device.actor)?;
        let mut session = [0u8; 8];
        getrandom::fill(&mut session).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
        actor.extend_from_slice(&session);
        record.set_identity(&Identity {
            actor,
            author: Some(principal.user.name.clone()),
        });
        let heads: Vec<[u8; 32]> = stored
            .heads
            .chunks_exact(32)
            .map(|h| h.try_into().expect("32-byte chunks"))
            .collect();
        match record.edit(Utc::now(), f) {
            Ok(()) => {}
            Err(RecordError::Invalid { .. } | RecordError::Incomplete { .. }) => {
                return Ok(Err(Refused::Fields));
            }
            Err(e) => return Err(e.into()),
        }
        let changes = record.change_list_since(&heads);
        let outcome = crate::sync::store_changes(
            storage.as_ref(),
            &principal,
            id,
            changes,
            &limits,
            Some(&audit),
        )?;
        Ok(match outcome {
            Outcome::Stored => Ok(()),
            Outcome::Rejected { reason, message } => {
                tracing::info!(record = %id, ?reason, message, "a dashboard change was refused");
                Err(match reason {
                    Rejection::ProtectedField if message.contains("assign") => Refused::Assignee,
                    Rejection::ProtectedField => Refused::Transition,
                    _ => Refused::Fields,
                })
            }
        })
    })
    .await?;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) if form_used(&e) => return Err(first_answer(state, who, d.once).await),
        Err(e) => {
            return Err(WebError::internal(
                lang,
                e.context("Failed to change a record from the dashboard"),
            ));
        }
    };
    Ok((id, outcome))
}

/// Where a done action sends the browser.
fn done_at(id: RecordId, done: &str) -> String {
    format!("/records/{id}?done={done}")
}

fn back(id: RecordId, outcome: Result<(), Refused>, done: &str) -> HttpResponse {
    match outcome {
        Ok(()) => see_other(&done_at(id, done)),
        Err(r) => see_other(&format!("/records/{id}?error={}", r.code())),
    }
}

#[derive(serde::Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    /// The form's one-time token.
    #[serde(default)]
    once: String,
    field: String,
    #[serde(default)]
    value: String,
}

/// `POST /records/{id}/resolve`: settles a conflict with one of its values or a new
/// one; the resolution supersedes every concurrent value and is itself history.
pub async fn resolve(
    who: Signed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ResolveForm>,
) -> Result<HttpResponse, WebError> {
    who.check_csrf(&form.csrf)?;
    if let Some(again) = answered_before(&state, &who, &form.once).await? {
        return Ok(again);
    }
    let form = form.into_inner();
    let once = form.once.clone();
    let done = Done {
        what: action::RESOLVE,
        scope: format!("field={}", form.field),
        done: "resolved",
        once: &once,
    };
    let (id, outcome) = act(&state, &who, &path, done, move |e| {
        if e.form().field(&form.field).is_some() {
            let value = e
                .form()
                .parse_input(&form.field, &form.value)
                .map_err(|rule| RecordError::Invalid {
                    field: form.field.clone(),
                    rule,
                })?;
            e.resolve(&form.field, value)
        } else {
            // A review key (status, assignee, note): the record model checks it.
            e.resolve(&form.field, intake_shared::Value::Text(form.value.clone()))
        }
    })
    .await?;
    Ok(back(id, outcome, "resolved"))
}

#[derive(serde::Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    csrf: String,
    /// The form's one-time token.
    #[serde(default)]
    once: String,
    outcome: String,
    #[serde(default)]
    note: String,
}

/// `POST /records/{id}/review`: approve, send back with a note, or reject.
pub async fn decide(
    who: Signed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReviewForm>,
) -> Result<HttpResponse, WebError> {
    who.check_csrf(&form.csrf)?;
    if let Some(again) = answered_before(&state, &who, &form.once).await? {
        return Ok(again);
    }
    let lang = who.lang;
    let status: ReviewStatus = form
        .outcome
        .parse()
        .ok()
        .filter(|s| {
            matches!(
                s,
                ReviewStatus::Approved | ReviewStatus::NeedsChanges | ReviewStatus::Rejected
            )
        })
        .ok_or_else(|| WebError::BadRequest(lang, "outcome".into()))?;
    let note = form.note.trim().to_string();
    if status == ReviewStatus::NeedsChanges && note.is_empty() {
        let (id, _) = readable(&state, &who, &path).await?;
        return Ok(back(id, Err(Refused::Note), ""));
    }
    let done = Done {
        what: action::REVIEW,
        scope: format!("status={status}"),
        done: status.as_str(),
        once: &form.once,
    };
    let (id, outcome) = act(&state, &who, &path, done, move |e| {
        e.set_status(status, (!note.is_empty()).then_some(note.as_str()))
    })
    .await?;
    Ok(back(id, outcome, status.as_str()))
}

#[derive(serde::Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    csrf: String,
    /// The form's one-time token.
    #[serde(default)]
    once: String,
    user: String,
}

/// `POST /records/{id}/assign`: to an enabled member of the record's team (the policy
/// checks again when the change is stored).
pub async fn assign(
    who: Signed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<AssignForm>,
) -> Result<HttpResponse, WebError> {
    who.check_csrf(&form.csrf)?;
    if let Some(again) = answered_before(&state, &who, &form.once).await? {
        return Ok(again);
    }
    let user = form.user.trim().to_string();
    if !team_users(&state, &who)
        .await?
        .iter()
        .any(|u| u.name == user)
    {
        let (id, _) = readable(&state, &who, &path).await?;
        return Ok(back(id, Err(Refused::Assignee), ""));
    }
    let done = Done {
        what: action::ASSIGN,
        scope: format!("to={user}"),
        done: "assigned",
        once: &form.once,
    };
    let (id, outcome) = act(&state, &who, &path, done, move |e| e.assign(&user)).await?;
    Ok(back(id, outcome, "assigned"))
}

#[derive(serde::Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    csrf: String,
    /// The form's one-time token.
    #[serde(default)]
    once: String,
    text: String,
}

/// `POST /records/{id}/comment`.
pub async fn comment(
    who: Signed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CommentForm>,
) -> Result<HttpResponse, WebError> {
    who.check_csrf(&form.csrf)?;
    if let Some(again) = answered_before(&state, &who, &form.once).await? {
        return Ok(again);
    }
    let CommentForm { text, once, .. } = form.into_inner();
    let done = Done {
        what: action::COMMENT,
        scope: String::new(),
        done: "comment",
        once: &once,
    };
    let (id, outcome) = act(&state, &who, &path, done, move |e| e.add_comment(&text)).await?;
    Ok(back(id, outcome, "comment"))
}

#[derive(serde::Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf: String,
    /// The form's one-time token.
    #[serde(default)]
    once: String,
    other: String,
    #[serde(default)]
    back: String,
}

/// `POST /records/{id}/link`: marks two records as describing the same person; each
/// page then shows the other. Both must be records the supervisor may read.
pub async fn link(
    who: Signed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<LinkForm>,
) -> Result<HttpResponse, WebError> {
    who.check_csrf(&form.csrf)?;
    who.supervisor()?;
    if let Some(again) = answered_before(&state, &who, &form.once).await? {
        return Ok(again);
    }
    let (a, _) = readable(&state, &who, &path).await?;
    let (b, _) = readable(&state, &who, &form.other).await?;
    if a == b {
        return Err(WebError::BadRequest(
            who.lang,
            "a record cannot be linked to itself".into(),
        ));
    }
    let answer = if form.back == "/duplicates" {
        "/duplicates".to_string()
    } else {
        done_at(a, "linked")
    };
    let d = Done {
        what: action::LINK,
        scope: String::new(),
        done: "linked",
        once: &form.once,
    };
    let audit = audit_of(&who, &d, vec![a, b], answer.clone());
    let storage = state.storage.clone();
    let by = who.session.user.name.clone();
    match web::block(move || storage.link_records_audited(a, b, &by, Utc::now(), Some(&audit)))
        .await?
    {
        Ok(_) => Ok(see_other(&answer)),
        Err(StorageError::FormUsed) => Err(first_answer(&state, &who, &form.once).await),
        Err(e) => Err(e.into()),
    }
}
