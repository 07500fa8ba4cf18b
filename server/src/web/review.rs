//! What a supervisor does to a record from the dashboard. Each action is an Automerge
//! change the server makes on her behalf: the author is her name, the actor her
//! dashboard device's (with a fresh session part per action, so two tabs never reuse
//! a sequence number). The change then goes through exactly the path a change pushed
//! from her phone takes (`sync::store_changes`): the same policy judges it, it lands
//! in the change log, and the field gets it on the next sync. Links between records
//! are the exception: a supervisors' annotation kept by the server only.

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

/// Makes one change to record `id` as the signed-in supervisor and stores it as her
/// dashboard device's push. `Ok(Err(_))`: refused, nothing stored.
async fn act<F>(
    state: &web::Data<AppState>,
    who: &Signed,
    id: &str,
    f: F,
) -> Result<(RecordId, Result<(), Refused>), WebError>
where
    F: FnOnce(&mut Edit<'_>) -> Result<(), RecordError> + Send + 'static,
{
    who.supervisor()?;
    let lang = who.lang;
    let (id, stored) = readable(state, who, id).await?;
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
        let outcome =
            crate::sync::store_changes(storage.as_ref(), &principal, id, changes, &limits)?;
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
    .await?
    .map_err(|e| {
        WebError::internal(
            lang,
            e.context("Failed to change a record from the dashboard"),
        )
    })?;
    Ok((id, outcome))
}

fn back(id: RecordId, outcome: Result<(), Refused>, done: &str) -> HttpResponse {
    match outcome {
        Ok(()) => see_other(&format!("/records/{id}?done={done}")),
        Err(r) => see_other(&format!("/records/{id}?error={}", r.code())),
    }
}

#[derive(serde::Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
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
    let form = form.into_inner();
    let field = form.field.clone();
    let (id, outcome) = act(&state, &who, &path, move |e| {
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
    if outcome.is_ok() {
        audit::record(
            &state,
            &who,
            action::RESOLVE,
            format!("field={field}"),
            vec![id],
        )
        .await?;
    }
    Ok(back(id, outcome, "resolved"))
}

#[derive(serde::Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    csrf: String,
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
    let (id, outcome) = act(&state, &who, &path, move |e| {
        e.set_status(status, (!note.is_empty()).then_some(note.as_str()))
    })
    .await?;
    if outcome.is_ok() {
        audit::record(
            &state,
            &who,
            action::REVIEW,
            format!("status={status}"),
            vec![id],
        )
        .await?;
    }
    Ok(back(id, outcome, status.as_str()))
}

#[derive(serde::Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    csrf: String,
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
    let user = form.user.trim().to_string();
    if !team_users(&state, &who)
        .await?
        .iter()
        .any(|u| u.name == user)
    {
        let (id, _) = readable(&state, &who, &path).await?;
        return Ok(back(id, Err(Refused::Assignee), ""));
    }
    let to = user.clone();
    let (id, outcome) = act(&state, &who, &path, move |e| e.assign(&to)).await?;
    if outcome.is_ok() {
        audit::record(&state, &who, action::ASSIGN, format!("to={user}"), vec![id]).await?;
    }
    Ok(back(id, outcome, "assigned"))
}

#[derive(serde::Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    csrf: String,
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
    let text = form.into_inner().text;
    let (id, outcome) = act(&state, &who, &path, move |e| e.add_comment(&text)).await?;
    if outcome.is_ok() {
        audit::record(&state, &who, action::COMMENT, String::new(), vec![id]).await?;
    }
    Ok(back(id, outcome, "comment"))
}

#[derive(serde::Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf: String,
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
    let (a, _) = readable(&state, &who, &path).await?;
    let (b, _) = readable(&state, &who, &form.other).await?;
    if a == b {
        return Err(WebError::BadRequest(
            who.lang,
            "a record cannot be linked to itself".into(),
        ));
    }
    let storage = state.storage.clone();
    let by = who.session.user.name.clone();
    web::block(move || storage.link_records(a, b, &by, Utc::now())).await??;
    audit::record(&state, &who, action::LINK, String::new(), vec![a, b]).await?;
    if form.back == "/duplicates" {
        return Ok(see_other("/duplicates"));
    }
    Ok(see_other(&format!("/records/{a}?done=linked")))
}
