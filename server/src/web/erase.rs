//! The admins' page for erasing a record for good: the record's id, a reason (kept in
//! the audit trail) and the id typed again, so that a slip of the mouse or a pasted
//! wrong line erases nothing. Admins see no records, so the page asks for an id rather
//! than sitting on a record's page. The erasure itself is `crate::erase`, the same
//! function the command line uses; it writes the audit entry in its own transaction.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use intake_shared::RecordId;
use intake_web::i18n::{Msg, t, tf};
use intake_web::layout::{csrf_input, notice};
use maud::html;

use super::errors::WebError;
use super::pages::signed_page;
use super::session::Signed;
use crate::erase::{self, EraseError, MAX_REASON_CHARS, Requester};
use crate::startup::AppState;

/// Where the page lives.
pub const PATH: &str = "/admin/erase";

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct EraseQuery {
    /// The record just erased, to say so.
    done: String,
}

/// `GET /admin/erase`.
pub async fn form(who: Signed, q: web::Query<EraseQuery>) -> Result<HttpResponse, WebError> {
    who.admin()?;
    let lang = who.lang;
    // Only an id is echoed, and only when it is one.
    let done = q.done.parse::<RecordId>().ok();
    let body = html! {
        h1 { (t(lang, Msg::EraseRecord)) }
        @if let Some(id) = done { (notice(&tf(lang, Msg::CaseErased, &[("id", &id.to_string())]))) }
        p { (t(lang, Msg::EraseExplain)) }
        form method="post" action=(PATH) class="narrow" {
            (csrf_input(&who.session.csrf))
            label { (t(lang, Msg::CaseId)) input type="text" name="record" required autocomplete="off"; }
            label { (t(lang, Msg::EraseReason))
                textarea name="reason" required maxlength=(MAX_REASON_CHARS) {}
            }
            label { (t(lang, Msg::ConfirmCaseId)) input type="text" name="confirm" required autocomplete="off"; }
            button.danger type="submit" { (t(lang, Msg::EraseForGood)) }
        }
    };
    Ok(super::html(signed_page(
        &who,
        t(lang, Msg::EraseRecord),
        PATH,
        body,
    )))
}

#[derive(serde::Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    record: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    reason: String,
}

/// `POST /admin/erase`: erases when the id was typed twice alike and a reason given.
pub async fn erase(
    who: Signed,
    state: web::Data<AppState>,
    form: web::Form<EraseForm>,
) -> Result<HttpResponse, WebError> {
    who.admin()?;
    who.check_csrf(&form.csrf)?;
    let lang = who.lang;
    let id: RecordId = form
        .record
        .trim()
        .parse()
        .map_err(|_| WebError::NotFound(lang))?;
    if form.confirm.trim() != form.record.trim() {
        return Err(WebError::BadRequest(
            lang,
            t(lang, Msg::EraseMismatch).into(),
        ));
    }
    let reason =
        erase::check_reason(&form.reason).map_err(|e| WebError::BadRequest(lang, e.to_string()))?;
    let requester = Requester {
        user: Some(who.session.user.name.clone()),
        session: Some(who.session.id),
        device: Some(who.session.device.id),
        peer: who.peer.map(|p| p.to_string()),
        via: "dashboard",
    };
    let storage = state.storage.clone();
    let done =
        web::block(move || erase::erase(storage.as_ref(), id, &reason, &requester, Utc::now()))
            .await?;
    match done {
        Ok(_) => Ok(super::see_other(&format!("{PATH}?done={id}"))),
        // Missing and erased already look the same: there is nothing to erase.
        Err(EraseError::NoSuchRecord(_) | EraseError::AlreadyErased(_)) => {
            Err(WebError::NotFound(lang))
        }
        Err(EraseError::Storage(e)) => Err(WebError::internal(lang, e)),
        Err(e) => Err(WebError::BadRequest(lang, e.to_string())),
    }
}
