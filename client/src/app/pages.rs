//! What every page of the app shares: the toolkit's chrome (inline style, language
//! switch with all seven languages) around a page's own view, with the app's
//! navigation and a "Lock now" button when the store is open.

use intake_shared::Lang;
use intake_web::i18n::{Msg, t};
use intake_web::layout::{Chrome, NavItem, csrf_input, page, page_with_head};
use maud::{Markup, html};

/// Every language the forms carry: the app is used in the field, in the client's
/// language as much as the paralegal's.
pub const LANGUAGES: &[Lang] = &Lang::ALL;

/// Who is looking at a page: language, where she is (for the language switch) and,
/// once unlocked, the session's CSRF token.
pub struct Viewer<'a> {
    pub lang: Lang,
    pub here: &'a str,
    pub csrf: &'a str,
}

/// A page for an unlocked app: navigation, "Lock now", then `body`.
pub fn app_page(v: &Viewer, title: &str, body: Markup) -> Markup {
    page_of(v, title, html! {}, body)
}

/// [`app_page`] that reloads itself every `seconds` (the sync page while a sync runs).
pub fn app_page_refreshing(v: &Viewer, title: &str, seconds: u32, body: Markup) -> Markup {
    page_of(
        v,
        title,
        html! { meta http-equiv="refresh" content=(seconds); },
        body,
    )
}

fn page_of(v: &Viewer, title: &str, head: Markup, body: Markup) -> Markup {
    let lang = v.lang;
    let nav = vec![
        NavItem::new("/cases", t(lang, Msg::MyCases)),
        NavItem::new("/cases/new", t(lang, Msg::NewCase)),
        NavItem::new("/sync", t(lang, Msg::Sync)),
        NavItem::new("/device", t(lang, Msg::ThisDevice)),
        NavItem::new("/wipe", t(lang, Msg::QuickWipe)),
    ];
    let chrome = Chrome {
        lang,
        title,
        user: None,
        nav,
        csrf: None,
        here: v.here,
        languages: LANGUAGES,
    };
    page_with_head(
        &chrome,
        head,
        html! {
            form.actions method="post" action="/lock" {
                (csrf_input(v.csrf))
                button.secondary type="submit" { (t(lang, Msg::LockNow)) }
            }
            (body)
        },
    )
}

/// A page while the store is closed (unlock, create): no navigation.
pub fn locked_page(lang: Lang, here: &str, title: &str, body: Markup) -> Markup {
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

/// A page that only says something (errors, a used launch link).
pub fn message_page(lang: Lang, title: &str, detail: &str) -> Markup {
    locked_page(
        lang,
        "/",
        title,
        html! {
            h1 { (title) }
            @if !detail.is_empty() { p.error { (detail) } }
            p { a href="/" { (t(lang, Msg::BackToStart)) } }
        },
    )
}
