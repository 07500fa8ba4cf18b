//! The admins' pages: users (add, with the enrolment code and, for supervisors and
//! admins, the sign-in code shown once; a new sign-in code; a new enrolment code;
//! disable), devices (list, revoke) and the audit trail (filtered, paged). Admins see
//! no records. Every change here is in the audit trail.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use intake_web::i18n::{Msg, role_label, t};
use intake_web::layout::csrf_input;
use intake_web::table::{Pager, pager};
use maud::{Markup, html};

use super::audit::{self, action};
use super::errors::WebError;
use super::pages::signed_page;
use super::session::Signed;
use crate::admin::{self, AdminError, Enrolment, SignInCode};
use crate::startup::AppState;
use crate::storage::{AuditFilter, Role};

fn admin_error(lang: intake_shared::Lang, e: AdminError) -> WebError {
    match e {
        AdminError::Storage(crate::storage::StorageError::Exists(what)) => {
            WebError::BadRequest(lang, format!("{what} already exists"))
        }
        AdminError::Storage(e) => WebError::internal(lang, e),
        AdminError::NoRandom(e) => WebError::internal(lang, e),
        AdminError::NoUser(_) => WebError::NotFound(lang),
        other => WebError::BadRequest(lang, other.to_string()),
    }
}

/// Codes just issued, shown once on the page that answers the form.
#[derive(Default)]
struct Issued {
    enrolment: Option<Enrolment>,
    sign_in: Option<SignInCode>,
}

fn codes_box(lang: intake_shared::Lang, issued: &Issued) -> Markup {
    html! {
        @if issued.enrolment.is_some() || issued.sign_in.is_some() {
            section.notice.codes role="status" {
                p { strong { (t(lang, Msg::CodeShownOnce)) } }
                dl {
                    @if let Some(e) = &issued.enrolment {
                        dt { (e.user.name) ": " (t(lang, Msg::Enrolled)) }
                        dd { code.code { (e.enrolment_code) } " (" (e.expires_at.format("%Y-%m-%d %H:%M UTC")) ")" }
                    }
                    @if let Some(s) = &issued.sign_in {
                        dt { (s.user) ": " (t(lang, Msg::OneTimeCode)) " — " a href="/set-password" { "/set-password" } }
                        dd { code.code { (s.code) } " (" (s.expires_at.format("%Y-%m-%d %H:%M UTC")) ")" }
                    }
                }
            }
        }
    }
}

async fn users_page(
    who: &Signed,
    state: &web::Data<AppState>,
    issued: Issued,
) -> Result<HttpResponse, WebError> {
    let lang = who.lang;
    let storage = state.storage.clone();
    let users = web::block(move || storage.users()).await??;
    let csrf = &who.session.csrf;
    let body = html! {
        h1 { (t(lang, Msg::Users)) }
        (codes_box(lang, &issued))
        div.scroll {
        table {
            thead { tr {
                th scope="col" { (t(lang, Msg::User)) }
                th scope="col" { (t(lang, Msg::Role)) }
                th scope="col" { (t(lang, Msg::Team)) }
                th scope="col" { (t(lang, Msg::Status)) }
                th scope="col" { (t(lang, Msg::Actions)) }
            } }
            tbody {
                @for u in &users {
                    tr {
                        td { (u.name) }
                        td { (role_label(lang, u.role.as_str())) }
                        td { (u.team.as_deref().unwrap_or("—")) }
                        td { @if u.disabled { (t(lang, Msg::Disabled)) } @else { (t(lang, Msg::Active)) } }
                        td {
                            @if !u.disabled {
                                form.inline method="post" action={ "/admin/users/" (super::encode(&u.name)) "/code" } {
                                    (csrf_input(csrf)) button type="submit" { (t(lang, Msg::Enrolled)) " +" }
                                }
                                @if u.role != Role::Paralegal {
                                    " "
                                    form.inline method="post" action={ "/admin/users/" (super::encode(&u.name)) "/password" } {
                                        (csrf_input(csrf)) button type="submit" { (t(lang, Msg::ResetPassword)) }
                                    }
                                }
                                @if u.name != who.session.user.name {
                                    " "
                                    form.inline method="post" action={ "/admin/users/" (super::encode(&u.name)) "/disable" } {
                                        (csrf_input(csrf)) button.danger type="submit" { (t(lang, Msg::Disable)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        }
        h2 { (t(lang, Msg::AddUser)) }
        form method="post" action="/admin/users" class="narrow" {
            (csrf_input(csrf))
            label { (t(lang, Msg::Username)) input type="text" name="name" required pattern="[\\p{L}\\p{N}._-]{1,64}"; }
            label { (t(lang, Msg::Role))
                select name="role" {
                    option value="paralegal" { (role_label(lang, "paralegal")) }
                    option value="supervisor" { (role_label(lang, "supervisor")) }
                    option value="admin" { (role_label(lang, "admin")) }
                }
            }
            label { (t(lang, Msg::Team)) input type="text" name="team"; }
            button type="submit" { (t(lang, Msg::AddUser)) }
        }
    };
    Ok(super::html(signed_page(
        who,
        t(lang, Msg::Users),
        "/admin/users",
        body,
    )))
}

/// `GET /admin/users`.
pub async fn users(who: Signed, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    who.admin()?;
    users_page(&who, &state, Issued::default()).await
}

#[derive(serde::Deserialize)]
pub struct AddUserForm {
    #[serde(default)]
    csrf: String,
    name: String,
    role: String,
    #[serde(default)]
    team: String,
}

/// `POST /admin/users`: the answer shows the new user's codes once.
pub async fn add_user(
    who: Signed,
    state: web::Data<AppState>,
    form: web::Form<AddUserForm>,
) -> Result<HttpResponse, WebError> {
    who.admin()?;
    who.check_csrf(&form.csrf)?;
    let lang = who.lang;
    let role = Role::parse(&form.role).ok_or_else(|| WebError::BadRequest(lang, "role".into()))?;
    let name = form.name.trim().to_string();
    let team = Some(form.team.trim().to_string()).filter(|t| !t.is_empty());
    let storage = state.storage.clone();
    let minutes = state.settings.enrolment_code_minutes;
    let scope = format!("user={name} role={}", role.as_str());
    let entry = audit::entry(&who, action::ADD_USER, scope, Vec::new(), None);
    let issued = web::block(move || -> Result<Issued, AdminError> {
        let enrolment = admin::add_user_audited(
            storage.as_ref(),
            &name,
            role,
            team.as_deref(),
            minutes,
            Some(&entry),
        )?;
        let sign_in = match role {
            Role::Paralegal => None,
            _ => Some(admin::sign_in_code(storage.as_ref(), &name, minutes)?),
        };
        Ok(Issued {
            enrolment: Some(enrolment),
            sign_in,
        })
    })
    .await?
    .map_err(|e| admin_error(lang, e))?;
    users_page(&who, &state, issued).await
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/users/{name}/password`: a new sign-in code; the old password and every
/// session of that user end now.
pub async fn reset_password(
    who: Signed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    who.admin()?;
    who.check_csrf(&form.csrf)?;
    let lang = who.lang;
    let name = path.into_inner();
    let storage = state.storage.clone();
    let minutes = state.settings.enrolment_code_minutes;
    let entry = audit::entry(
        &who,
        action::RESET_PASSWORD,
        format!("user={name}"),
        Vec::new(),
        None,
    );
    let code = web::block(move || {
        admin::sign_in_code_audited(storage.as_ref(), &name, minutes, Some(&entry))
    })
    .await?
    .map_err(|e| admin_error(lang, e))?;
    users_page(
        &who,
        &state,
        Issued {
            enrolment: None,
            sign_in: Some(code),
        },
    )
    .await
}

/// `POST /admin/users/{name}/code`: a new enrolment code (a new or replaced phone).
pub async fn enrolment_code(
    who: Signed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    who.admin()?;
    who.check_csrf(&form.csrf)?;
    let lang = who.lang;
    let name = path.into_inner();
    let storage = state.storage.clone();
    let minutes = state.settings.enrolment_code_minutes;
    let entry = audit::entry(
        &who,
        action::ENROLMENT_CODE,
        format!("user={name}"),
        Vec::new(),
        None,
    );
    let enrolment =
        web::block(move || admin::new_code_audited(storage.as_ref(), &name, minutes, Some(&entry)))
            .await?
            .map_err(|e| admin_error(lang, e))?;
    users_page(
        &who,
        &state,
        Issued {
            enrolment: Some(enrolment),
            sign_in: None,
        },
    )
    .await
}

/// `POST /admin/users/{name}/disable`: her devices stop syncing and her sessions end
/// on their next request.
pub async fn disable(
    who: Signed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    who.admin()?;
    who.check_csrf(&form.csrf)?;
    let name = path.into_inner();
    if name == who.session.user.name {
        return Err(WebError::BadRequest(
            who.lang,
            "you cannot disable yourself".into(),
        ));
    }
    let storage = state.storage.clone();
    let entry = audit::entry(
        &who,
        action::DISABLE_USER,
        format!("user={name}"),
        Vec::new(),
        None,
    );
    if !web::block(move || storage.set_user_disabled_audited(&name, true, Some(&entry))).await?? {
        return Err(WebError::NotFound(who.lang));
    }
    Ok(super::see_other("/admin/users"))
}

/// `GET /admin/devices`.
pub async fn devices(who: Signed, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    who.admin()?;
    let lang = who.lang;
    let storage = state.storage.clone();
    let devices = web::block(move || storage.devices()).await??;
    let body = html! {
        h1 { (t(lang, Msg::Devices)) }
        @if devices.is_empty() { p.empty { (t(lang, Msg::NoDevices)) } }
        div.scroll {
        table {
            thead { tr {
                th scope="col" { "#" }
                th scope="col" { (t(lang, Msg::User)) }
                th scope="col" { (t(lang, Msg::Device)) }
                th scope="col" { (t(lang, Msg::Enrolled)) }
                th scope="col" { (t(lang, Msg::Status)) }
            } }
            tbody {
                @for d in &devices {
                    tr {
                        td { (d.id) }
                        td { (d.user) }
                        td { (d.label) }
                        td { (d.enrolled_at.format("%Y-%m-%d %H:%M")) }
                        td { (device_status(lang, d, &who.session.csrf)) }
                    }
                }
            }
        }
        }
    };
    Ok(super::html(signed_page(
        &who,
        t(lang, Msg::Devices),
        "/admin/devices",
        body,
    )))
}

/// A device's status cell: its state and the time of it, and the actions still open —
/// "Revoke" and "Revoke and wipe" for an active device, "Wipe" for a revoked one
/// (lost phones, issue 12).
fn device_status(lang: intake_shared::Lang, d: &crate::storage::Device, csrf: &str) -> Markup {
    let state = match d.status() {
        "wiped" => Msg::DeviceWiped,
        "wipe sent" => Msg::WipeSent,
        "wipe ordered" => Msg::WipeOrdered,
        "revoked" => Msg::Revoked,
        _ => Msg::Active,
    };
    html! {
        (t(lang, state))
        @if d.status() != "active" {
            " " span.muted { (d.status_at().format("%Y-%m-%d %H:%M")) }
        }
        @if !d.revoked {
            form.inline method="post" action={ "/admin/devices/" (d.id) "/revoke" } {
                (csrf_input(csrf))
                button.danger type="submit" { (t(lang, Msg::Revoke)) }
            }
        }
        @if d.wipe.ordered_at.is_none() {
            form.inline method="post" action={ "/admin/devices/" (d.id) "/wipe" } {
                (csrf_input(csrf))
                button.danger type="submit" {
                    (t(lang, if d.revoked { Msg::OrderWipe } else { Msg::RevokeAndWipe }))
                }
            }
        }
    }
}

/// `POST /admin/devices/{id}/wipe`: revoked (if it was not), and told to destroy its
/// store at its next contact.
pub async fn revoke_and_wipe(
    who: Signed,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    revoke_device(who, state, path.into_inner(), &form, true).await
}

/// `POST /admin/devices/{id}/revoke`: the device's next request is refused.
pub async fn revoke(
    who: Signed,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    revoke_device(who, state, path.into_inner(), &form, false).await
}

async fn revoke_device(
    who: Signed,
    state: web::Data<AppState>,
    id: i64,
    form: &CsrfForm,
    wipe: bool,
) -> Result<HttpResponse, WebError> {
    who.admin()?;
    who.check_csrf(&form.csrf)?;
    let storage = state.storage.clone();
    let now = chrono::Utc::now();
    let act = if wipe {
        action::WIPE_DEVICE
    } else {
        action::REVOKE_DEVICE
    };
    let entry = audit::entry(&who, act, format!("device={id}"), Vec::new(), None);
    if !web::block(move || {
        crate::admin::revoke_device_audited(storage.as_ref(), id, wipe, now, Some(&entry))
    })
    .await??
    {
        return Err(WebError::NotFound(who.lang));
    }
    Ok(super::see_other("/admin/devices"))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct AuditQuery {
    user: String,
    action: String,
    from: String,
    to: String,
    page: String,
}

const AUDIT_PER_PAGE: usize = 100;

/// `GET /admin/audit`: the trail, newest first, filtered by user, action and dates.
pub async fn audit_trail(
    who: Signed,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, WebError> {
    who.admin()?;
    let lang = who.lang;
    let day = |s: &str, end: bool| -> Option<DateTime<Utc>> {
        let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
        let t = if end {
            d.and_hms_opt(23, 59, 59)?
        } else {
            d.and_hms_opt(0, 0, 0)?
        };
        Some(t.and_utc())
    };
    let filter = AuditFilter {
        user: Some(q.user.trim().to_string()).filter(|s| !s.is_empty()),
        action: Some(q.action.trim().to_string()).filter(|s| !s.is_empty()),
        record: None,
        from: day(&q.from, false),
        to: day(&q.to, true),
    };
    let page = q.page.trim().parse::<u64>().unwrap_or(1).max(1);
    let storage = state.storage.clone();
    let offset = (page as usize - 1) * AUDIT_PER_PAGE;
    let (entries, total) =
        web::block(move || storage.audit_entries(&filter, offset, AUDIT_PER_PAGE)).await??;
    let query: String = [
        ("user", &q.user),
        ("action", &q.action),
        ("from", &q.from),
        ("to", &q.to),
    ]
    .iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(k, v)| format!("{k}={}", super::encode(v.trim())))
    .collect::<Vec<_>>()
    .join("&");
    let body = html! {
        h1 { (t(lang, Msg::AuditTrail)) }
        form.filters method="get" action="/admin/audit" {
            label { (t(lang, Msg::User)) input type="text" name="user" value=(q.user); }
            label { (t(lang, Msg::Action))
                select name="action" {
                    option value="" { (t(lang, Msg::Any)) }
                    @for a in action::ALL { option value=(a) selected[q.action == *a] { (a) } }
                }
            }
            label { (t(lang, Msg::DateFrom)) input type="date" name="from" value=(q.from); }
            label { (t(lang, Msg::DateTo)) input type="date" name="to" value=(q.to); }
            button type="submit" { (t(lang, Msg::ApplyFilters)) }
        }
        @if entries.is_empty() { p.empty { (t(lang, Msg::NoAuditEntries)) } }
        div.scroll {
        table.audit {
            thead { tr {
                th scope="col" { (t(lang, Msg::Time)) }
                th scope="col" { (t(lang, Msg::User)) }
                th scope="col" { (t(lang, Msg::DeviceOrSession)) }
                th scope="col" { (t(lang, Msg::Action)) }
                th scope="col" { (t(lang, Msg::Scope)) }
                th scope="col" { (t(lang, Msg::Address)) }
            } }
            tbody {
                @for (_, e) in &entries {
                    tr {
                        td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                        td { (e.user.as_deref().unwrap_or("—")) }
                        td {
                            @if let Some(s) = e.session { "session " (s) } @else if let Some(d) = e.device { "device " (d) }
                        }
                        td { (e.action) }
                        td {
                            (e.scope)
                            @for r in &e.records { " " a href={ "/records/" (r) } { code { (r.to_string().get(..8).unwrap_or("")) "…" } } }
                        }
                        td { (e.peer.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        }
        (pager(lang, &Pager { path: "/admin/audit", query: &query, page, per_page: AUDIT_PER_PAGE as u64, total: total as u64 }))
    };
    audit::record(&state, &who, action::VIEW_AUDIT, query.clone(), Vec::new()).await?;
    Ok(super::html(signed_page(
        &who,
        t(lang, Msg::AuditTrail),
        "/admin/audit",
        body,
    )))
}
