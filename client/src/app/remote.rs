//! Sync, enrolment and device information. A sync started from the page runs on a
//! thread of its own with its own store handle (so pages stay usable), reporting
//! progress (records, bytes) that the sync page shows, refreshing itself with
//! `<meta http-equiv=refresh>` while it runs — no JavaScript. While the store is open
//! and the device enrolled, `client::sync::background` syncs every few minutes. A
//! failure is said in plain words from `SyncError`'s classification.

use std::sync::Mutex;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use intake_shared::Lang;
use intake_web::i18n::{Msg, t, tf};
use intake_web::layout::{csrf_input, error_box, notice};
use maud::{Markup, html};
use serde::Deserialize;

use super::errors::AppError;
use super::pages::{app_page, app_page_refreshing};
use super::state::locked;
use super::visit::Visit;
use super::{html, see_other};
use crate::store::Enrolment;
use crate::sync::{Permanent, Progress, SyncError, SyncOptions, SyncSummary};

/// How often the background sync runs while the app is open.
pub const BACKGROUND_EVERY: Duration = Duration::from_secs(5 * 60);

/// Why the last sync did not finish, as the page says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    Offline,
    Temporary,
    Revoked,
    UpdateApp,
    Refused(String),
    NotEnrolled,
    Enrolment,
    Store(String),
    /// Revoked with a wipe order: the store was destroyed (issue 12).
    Wiped,
}

/// Whether a sync ended in the server's wipe order (the store is gone).
pub fn is_wiped(result: &Result<SyncSummary, SyncError>) -> bool {
    matches!(
        result,
        Err(SyncError::Permanent {
            kind: Permanent::Wiped,
            ..
        })
    )
}

impl Problem {
    pub fn of(e: &SyncError) -> Problem {
        match e {
            SyncError::Offline(_) => Problem::Offline,
            SyncError::Retryable(_)
            | SyncError::Busy(..)
            | SyncError::StorageFull(..)
            | SyncError::TooLarge(_) => Problem::Temporary,
            SyncError::Permanent { kind, message } => match kind {
                Permanent::Revoked => Problem::Revoked,
                Permanent::UpdateApp => Problem::UpdateApp,
                Permanent::Enrolment => Problem::Enrolment,
                Permanent::Refused | Permanent::Transport => Problem::Refused(message.clone()),
                Permanent::Wiped => Problem::Wiped,
            },
            SyncError::NotEnrolled => Problem::NotEnrolled,
            SyncError::Store(e) => Problem::Store(e.to_string()),
        }
    }

    /// The problem in plain words, in `lang`.
    pub fn words(&self, lang: Lang) -> String {
        match self {
            Problem::Offline => t(lang, Msg::SyncOffline).into(),
            Problem::Temporary => t(lang, Msg::SyncTemporary).into(),
            Problem::Revoked => t(lang, Msg::SyncRevoked).into(),
            Problem::UpdateApp => t(lang, Msg::SyncUpdateApp).into(),
            Problem::Refused(why) => tf(lang, Msg::SyncRefused, &[("why", why)]),
            Problem::NotEnrolled => t(lang, Msg::NotEnrolled).into(),
            Problem::Enrolment => t(lang, Msg::EnrolFailed).into(),
            Problem::Store(why) => tf(lang, Msg::StoreFailed, &[("why", why)]),
            Problem::Wiped => t(lang, Msg::RemoteWiped).into(),
        }
    }
}

/// What the sync page shows.
#[derive(Clone, Debug, Default)]
pub struct SyncStatus {
    /// A sync started from the page is running, with its progress so far.
    pub running: Option<SyncSummary>,
    pub last_ok: Option<DateTime<Utc>>,
    pub last_summary: Option<SyncSummary>,
    /// Why the last sync failed, unless one succeeded since.
    pub problem: Option<Problem>,
}

/// Records the outcome of a sync (the page's or the background loop's).
pub fn record(status: &Mutex<SyncStatus>, result: &Result<SyncSummary, SyncError>) {
    let mut s = locked(status);
    match result {
        Ok(summary) => {
            s.last_ok = Some(Utc::now());
            s.last_summary = Some(summary.clone());
            s.problem = None;
        }
        Err(e) => s.problem = Some(Problem::of(e)),
    }
}

/// `/sync`.
pub async fn page(visit: Visit) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    let (enrolled, stored) = visit
        .store(|s| -> Result<_, crate::StoreError> {
            Ok((s.enrolment()?.is_some(), s.last_sync()?))
        })
        .await?
        .map_err(|e| AppError::internal(lang, e))?;
    let mut status = locked(&visit.state.sync).clone();
    status.last_ok = status.last_ok.max(stored);
    let title = t(lang, Msg::Sync);
    let body = html! {
        h1 { (title) }
        @if let Some(progress) = &status.running {
            (notice(t(lang, Msg::SyncRunning)))
            p.progress { (progress_line(lang, progress)) }
        } @else if let Some(p) = &status.problem {
            (error_box(&format!("{}: {}", t(lang, Msg::LastSyncFailed), p.words(lang))))
        } @else if let Some(summary) = &status.last_summary {
            (notice(t(lang, Msg::SyncDone)))
            p.progress { (progress_line(lang, summary)) }
            @if summary.erased > 0 {
                p.erased { (tf(lang, Msg::SyncErased, &[("n", &summary.erased.to_string())])) }
            }
        }
        p { (t(lang, Msg::LastSync)) ": " (last_sync(lang, status.last_ok)) }
        @if !enrolled {
            p { (t(lang, Msg::NotEnrolled)) " " a href="/device" { (t(lang, Msg::EnrolDevice)) } }
        } @else if status.running.is_none() {
            form method="post" action="/sync" {
                (csrf_input(&visit.session.csrf))
                button type="submit" { (t(lang, Msg::SyncNow)) }
            }
        }
    };
    let viewer = visit.viewer();
    Ok(html(if status.running.is_some() {
        app_page_refreshing(&viewer, title, 2, body)
    } else {
        app_page(&viewer, title, body)
    }))
}

fn progress_line(lang: Lang, s: &SyncSummary) -> String {
    let kb = (s.bytes_up + s.bytes_down).div_ceil(1024);
    tf(
        lang,
        Msg::SyncProgress,
        &[
            ("sent", &s.sent.to_string()),
            ("received", &s.received.to_string()),
            ("kb", &kb.to_string()),
        ],
    )
}

fn last_sync(lang: Lang, at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || t(lang, Msg::Never).to_string(),
        |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Starts a sync on its own thread (unless one is running) and goes to the sync page.
pub async fn start(visit: Visit, form: web::Form<CsrfOnly>) -> Result<HttpResponse, AppError> {
    visit.check_csrf(&form.csrf)?;
    let key = visit.state.key().ok_or(AppError::Locked)?;
    {
        let mut s = locked(&visit.state.sync);
        if s.running.is_some() {
            return Ok(see_other("/sync"));
        }
        s.running = Some(SyncSummary::default());
    }
    let status = visit.state.sync.clone();
    let state = visit.state.clone();
    let dir = visit.state.config.home.clone();
    let spawned = std::thread::Builder::new()
        .name("intake-app-sync".into())
        .spawn(move || {
            let result = crate::Store::open(&dir, &key)
                .map_err(SyncError::from)
                .and_then(|mut store| {
                    store.set_clock(state.store_clock());
                    let summary =
                        crate::sync(&mut store, &SyncOptions::default(), &mut |p: &Progress| {
                            locked(&status).running = Some(p.summary.clone());
                        })?;
                    store.set_last_sync(Utc::now())?;
                    Ok(summary)
                });
            // Closed before the page stops saying "running": what it shows next is
            // the wipe, never the cases of a store that is gone.
            if is_wiped(&result) {
                state.wiped_remotely();
            }
            record(&status, &result);
            locked(&status).running = None;
        });
    if let Err(e) = spawned {
        locked(&visit.state.sync).running = None;
        return Err(AppError::internal(visit.lang, e));
    }
    Ok(see_other("/sync"))
}

/// `/device`: who and where this device is, or the enrolment form.
pub async fn device(visit: Visit) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    let (enrolment, unsynced) = visit
        .store(|s| -> Result<_, crate::StoreError> {
            Ok((s.enrolment()?, (s.unsynced()?, s.last_sync()?)))
        })
        .await?
        .map_err(|e| AppError::internal(lang, e))?;
    Ok(html(device_page(
        &visit,
        enrolment.as_ref(),
        unsynced,
        None,
        None,
    )))
}

/// `counts`: cases not synced yet, and when a sync last finished (as the store
/// remembers it).
fn device_page(
    visit: &Visit,
    enrolment: Option<&Enrolment>,
    counts: (usize, Option<DateTime<Utc>>),
    done: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let lang = visit.lang;
    let title = t(lang, Msg::ThisDevice);
    let (unsynced, stored) = counts;
    let last_ok = locked(&visit.state.sync).last_ok.max(stored);
    app_page(
        &visit.viewer(),
        title,
        html! {
            h1 { (title) }
            @if let Some(d) = done { (notice(d)) }
            @if let Some(e) = error { (error_box(e)) }
            dl.meta {
                @if let Some(e) = enrolment {
                    dt { (t(lang, Msg::User)) } dd { (e.user) }
                    dt { (t(lang, Msg::Server)) } dd { (e.server) }
                    dt { (t(lang, Msg::DeviceNumber)) } dd { (e.device_id) }
                }
                dt { (t(lang, Msg::StorePath)) } dd { (visit.state.config.home.display().to_string()) }
                dt { (t(lang, Msg::LastSync)) } dd { (last_sync(lang, last_ok)) }
                dt { (t(lang, Msg::UnsyncedCount)) } dd { (unsynced) }
            }
            @if enrolment.is_none() {
                h2 { (t(lang, Msg::EnrolDevice)) }
                form method="post" action="/device/enrol" {
                    (csrf_input(&visit.session.csrf))
                    div.field {
                        label for="server" { (t(lang, Msg::ServerAddress)) }
                        input #server type="url" name="server" required placeholder="https://";
                    }
                    div.field {
                        label for="code" { (t(lang, Msg::OneTimeCode)) }
                        input #code type="text" name="code" required autocomplete="off"
                            autocapitalize="characters";
                    }
                    div.field {
                        label for="label" { (t(lang, Msg::DeviceName)) }
                        input #label type="text" name="label";
                    }
                    button type="submit" { (t(lang, Msg::EnrolDevice)) }
                }
            }
        },
    )
}

/// The enrolment form. No `Debug`: it holds the one-time code.
#[derive(Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    csrf: String,
    server: String,
    code: String,
    #[serde(default)]
    label: String,
}

/// Enrols the device with the one-time code, then starts the background sync.
pub async fn enrol(visit: Visit, form: web::Form<EnrolForm>) -> Result<HttpResponse, AppError> {
    let lang = visit.lang;
    let form = form.into_inner();
    visit.check_csrf(&form.csrf)?;
    let server = form.server.trim().to_string();
    let code = form.code.trim().to_string();
    let label = form.label.trim().to_string();
    let result = visit
        .store(move |s| -> Result<_, SyncError> {
            let e = crate::enroll(s, &server, &code, &label, None)?;
            s.set_user(&e.user)?;
            Ok((e, (s.unsynced()?, None)))
        })
        .await?;
    match result {
        Ok((e, unsynced)) => {
            visit.state.start_background();
            Ok(html(device_page(
                &visit,
                Some(&e),
                unsynced,
                Some(t(lang, Msg::DeviceEnrolled)),
                None,
            )))
        }
        Err(err) => {
            let unsynced = visit
                .store(|s| s.unsynced().map(|n| (n, None)))
                .await?
                .map_err(|e| AppError::internal(lang, e))?;
            let words = Problem::of(&err).words(lang);
            let mut resp = HttpResponse::BadRequest();
            resp.content_type("text/html; charset=utf-8");
            Ok(resp.body(device_page(&visit, None, unsynced, None, Some(&words)).into_string()))
        }
    }
}
