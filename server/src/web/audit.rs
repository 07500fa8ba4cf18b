//! Writing the audit trail: who did what, when, from where. Every dashboard action
//! that reads case data in bulk goes through [`record`], which writes before the
//! answer is sent: an action whose trail entry cannot be written fails instead of
//! going unrecorded. Every action that changes something builds its entry with
//! [`entry`] (or [`api_entry`]) and hands it to the storage write, which stores both
//! in one transaction: a server stopped between a change and its entry would leave a
//! change nobody can account for.

use actix_web::web;
use chrono::Utc;
use intake_shared::RecordId;

use super::errors::WebError;
use super::session::Signed;
use crate::policy::Principal;
use crate::startup::AppState;
use crate::storage::{Audit, AuditEntry, UsedForm};

/// The kinds of action the trail names (stable strings: admins filter by them).
pub mod action {
    pub const SIGN_IN: &str = "sign_in";
    pub const SIGN_IN_FAILED: &str = "sign_in_failed";
    pub const SIGN_OUT: &str = "sign_out";
    pub const SET_PASSWORD: &str = "set_password";
    pub const VIEW_RECORD: &str = "view_record";
    pub const LIST: &str = "list_records";
    pub const EXPORT: &str = "export";
    pub const SUMMARY: &str = "donor_summary";
    pub const REVIEW: &str = "review";
    pub const RESOLVE: &str = "resolve";
    pub const ASSIGN: &str = "assign";
    pub const COMMENT: &str = "comment";
    pub const LINK: &str = "link";
    pub const ADD_USER: &str = "add_user";
    pub const RESET_PASSWORD: &str = "reset_password";
    pub const ENROLMENT_CODE: &str = "enrolment_code";
    pub const DISABLE_USER: &str = "disable_user";
    pub const REVOKE_DEVICE: &str = "revoke_device";
    pub const VIEW_AUDIT: &str = "view_audit";
    /// Lost phones (issue 12): a device revoked with an order to wipe its store.
    pub const WIPE_DEVICE: &str = "wipe_device";
    pub const ERASE_RECORD: &str = crate::erase::ACTION;
    /// The admin API's listings (its changes use the actions above).
    pub const LIST_USERS: &str = "list_users";
    pub const LIST_DEVICES: &str = "list_devices";
    /// A call to the admin API by someone who is not an admin.
    pub const ADMIN_REFUSED: &str = "admin_refused";
    pub const ALL: &[&str] = &[
        SIGN_IN,
        SIGN_IN_FAILED,
        SIGN_OUT,
        SET_PASSWORD,
        VIEW_RECORD,
        LIST,
        EXPORT,
        SUMMARY,
        REVIEW,
        RESOLVE,
        ASSIGN,
        COMMENT,
        LINK,
        ADD_USER,
        RESET_PASSWORD,
        ENROLMENT_CODE,
        DISABLE_USER,
        REVOKE_DEVICE,
        VIEW_AUDIT,
        WIPE_DEVICE,
        ERASE_RECORD,
        LIST_USERS,
        LIST_DEVICES,
        ADMIN_REFUSED,
    ];
}

/// The entry of a signed-in user's action.
fn signed_entry(who: &Signed, what: &str, scope: String, records: Vec<RecordId>) -> AuditEntry {
    AuditEntry {
        at: Utc::now(),
        user: Some(who.session.user.name.clone()),
        device: Some(who.session.device.id),
        session: Some(who.session.id),
        action: what.to_string(),
        scope,
        records,
        peer: who.peer.map(|p| p.to_string()),
    }
}

/// The entry of a signed-in user's write, for the storage to store with the write;
/// `form` is the form's one-time token and the answer to give it.
pub fn entry(
    who: &Signed,
    what: &str,
    scope: String,
    records: Vec<RecordId>,
    form: Option<UsedForm>,
) -> Audit {
    Audit {
        entry: signed_entry(who, what, scope, records),
        form,
    }
}

/// The entry of a device's write through the HTTP API, for the storage to store with
/// the write.
pub fn api_entry(
    who: &Principal,
    peer: Option<std::net::IpAddr>,
    what: &str,
    scope: String,
) -> Audit {
    Audit {
        entry: api_audit_entry(who, peer, what, scope),
        form: None,
    }
}

fn api_audit_entry(
    who: &Principal,
    peer: Option<std::net::IpAddr>,
    what: &str,
    scope: String,
) -> AuditEntry {
    AuditEntry {
        at: Utc::now(),
        user: Some(who.user.name.clone()),
        device: Some(who.device.id),
        session: None,
        action: what.to_string(),
        scope,
        records: Vec::new(),
        peer: peer.map(|p| p.to_string()),
    }
}

/// Writes one entry for a signed-in user's action (reads; writes hand [`entry`] to
/// their storage write instead).
pub async fn record(
    state: &web::Data<AppState>,
    who: &Signed,
    what: &str,
    scope: String,
    records: Vec<RecordId>,
) -> Result<(), WebError> {
    let entry = signed_entry(who, what, scope, records);
    write(state, entry).await.map_err(|e| match e {
        WebError::Internal(_, e) => WebError::Internal(who.lang, e),
        WebError::StorageFull(_) => WebError::StorageFull(who.lang),
        e => e,
    })
}

/// Writes one entry for a device's action through the HTTP API (reads, refusals and
/// failed writes: a stored write's entry went with it).
pub async fn record_api(
    state: &web::Data<AppState>,
    who: &Principal,
    peer: Option<std::net::IpAddr>,
    what: &str,
    scope: String,
) -> Result<(), WebError> {
    write(state, api_audit_entry(who, peer, what, scope)).await
}

/// Writes an entry as it is (sign-in attempts, before there is a session).
pub async fn write(state: &web::Data<AppState>, entry: AuditEntry) -> Result<(), WebError> {
    let storage = state.storage.clone();
    web::block(move || storage.audit(&entry)).await??;
    Ok(())
}
