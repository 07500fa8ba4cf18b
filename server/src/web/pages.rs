//! What every dashboard page shares: the chrome (navigation for the user's role,
//! language switch, sign-out) around a page's own view, and the error page.

use intake_shared::Lang;
use intake_web::i18n::{Msg, t};
use intake_web::layout::{Chrome, NavItem, page};
use maud::{Markup, html};

use super::session::Signed;
use crate::storage::Role;

/// The languages the dashboard speaks.
pub const LANGUAGES: &[Lang] = &[Lang::Sq, Lang::SrLatn, Lang::SrCyrl, Lang::En];

/// A whole page for a signed-in user: `active` names the navigation entry it is under.
pub fn signed_page(who: &Signed, title: &str, active: &str, body: Markup) -> Markup {
    let lang = who.lang;
    let items: Vec<(&str, Msg)> = match who.role() {
        Role::Admin => vec![
            ("/admin/users", Msg::Users),
            ("/admin/devices", Msg::Devices),
            ("/admin/audit", Msg::AuditTrail),
            (super::erase::PATH, Msg::EraseRecord),
        ],
        _ => vec![
            ("/records", Msg::Cases),
            ("/duplicates", Msg::Duplicates),
            ("/summary", Msg::DonorSummary),
        ],
    };
    let nav = items
        .into_iter()
        .map(|(href, msg)| NavItem {
            href,
            label: t(lang, msg),
            current: href == active,
        })
        .collect();
    let chrome = Chrome {
        lang,
        title,
        user: Some((who.session.user.name.as_str(), who.role().as_str())),
        nav,
        csrf: Some(who.session.csrf.as_str()),
        here: &who.here,
        languages: LANGUAGES,
    };
    page(&chrome, body)
}

/// A page for someone not signed in (sign-in, set password, errors).
pub fn public_page(lang: Lang, title: &str, here: &str, body: Markup) -> Markup {
    let chrome = Chrome {
        lang,
        title,
        user: None,
        nav: Vec::new(),
        csrf: None,
        here,
        languages: LANGUAGES,
    };
    page(&chrome, body)
}

pub fn role_label(lang: Lang, role: Role) -> &'static str {
    t(
        lang,
        match role {
            Role::Paralegal => Msg::RoleParalegal,
            Role::Supervisor => Msg::RoleSupervisor,
            Role::Admin => Msg::RoleAdmin,
        },
    )
}

/// The page shown for an error (see `errors.rs`).
pub fn error_page(lang: Lang, title: &str, detail: &str) -> String {
    public_page(
        lang,
        title,
        "/",
        html! {
            h1 { (title) }
            @if !detail.is_empty() { p.error { (detail) } }
            p { a href="/" { (t(lang, Msg::BackToStart)) } }
        },
    )
    .into_string()
}
