//! The frame of every page: document head with the stylesheet inlined (one request per
//! page, nothing fetched from elsewhere), a header with navigation, the signed-in user
//! and sign-out, a language switcher that works without JavaScript, and `<main>`.
//! Also the small boxes pages share: notices, errors, the CSRF input, status badges.

use intake_shared::Lang;
use maud::{DOCTYPE, Markup, html};

use crate::i18n::{Msg, lang_name, role_label, status_label, t, tf};
use crate::url::encode;

/// The stylesheet, inlined in every page's `<head>`.
pub const STYLE: &str = include_str!("style.css");

/// The name of the hidden input that carries the CSRF token in every form.
pub const CSRF_FIELD: &str = "csrf";

/// Where the sign-out button posts.
pub const SIGN_OUT_PATH: &str = "/sign-out";

/// Where the language switcher links: `/lang?to=<code>&back=<path and query>`; the
/// server remembers the choice (a cookie) and redirects to `back` after checking it with
/// [`safe_back`](crate::url::safe_back).
pub const LANG_PATH: &str = "/lang";

/// One link of the main navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NavItem<'a> {
    pub href: &'a str,
    pub label: &'a str,
    /// Marks the link of the section the page belongs to. A link whose `href` is the
    /// current path is marked anyway.
    pub current: bool,
}

impl<'a> NavItem<'a> {
    pub fn new(href: &'a str, label: &'a str) -> NavItem<'a> {
        NavItem {
            href,
            label,
            current: false,
        }
    }
}

/// What the frame of a page shows around its body.
#[derive(Clone, Debug)]
pub struct Chrome<'a> {
    pub lang: Lang,
    /// The page's title, shown in the browser tab (the body carries its own `<h1>`).
    pub title: &'a str,
    /// The signed-in user's name and role code (`supervisor`; shown translated).
    pub user: Option<(&'a str, &'a str)>,
    pub nav: Vec<NavItem<'a>>,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: Option<&'a str>,
    /// The current path and query, where the language switcher comes back to.
    pub here: &'a str,
    /// The languages offered by the switcher (none: no switcher).
    pub languages: &'a [Lang],
}

/// A whole HTML page: `chrome` around `body`.
pub fn page(chrome: &Chrome, body: Markup) -> Markup {
    page_with_head(chrome, html! {}, body)
}

/// [`page`] with more in `<head>`: the field app's sync page refreshes itself with
/// `<meta http-equiv="refresh">` while a sync runs, which works without JavaScript.
pub fn page_with_head(chrome: &Chrome, head: Markup, body: Markup) -> Markup {
    let lang = chrome.lang;
    let path = chrome.here.split('?').next().unwrap_or("");
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (chrome.title) " · Intake" }
                style { (maud::PreEscaped(STYLE)) }
                (head)
            }
            body {
                a.skip href="#main" { (t(lang, Msg::SkipToContent)) }
                header {
                    @if !chrome.nav.is_empty() {
                        nav aria-label=(t(lang, Msg::MainNavigation)) {
                            ul {
                                @for item in &chrome.nav {
                                    li {
                                        a href=(item.href)
                                            aria-current=[(item.current || item.href == path).then_some("page")]
                                        { (item.label) }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some((user, role)) = chrome.user {
                        div.who {
                            span {
                                (tf(lang, Msg::SignedInAs, &[("user", user), ("role", role_label(lang, role))]))
                            }
                            form method="post" action=(SIGN_OUT_PATH) {
                                @if let Some(token) = chrome.csrf { (csrf_input(token)) }
                                button type="submit" { (t(lang, Msg::SignOut)) }
                            }
                        }
                    }
                    (language_switcher(lang, chrome.here, chrome.languages))
                }
                main #main { (body) }
            }
        }
    }
}

/// Links to `/lang?to=…&back=…`, one per language, each named in its own language; the
/// current one is not a link.
pub fn language_switcher(current: Lang, here: &str, languages: &[Lang]) -> Markup {
    let back = encode(here);
    html! {
        @if !languages.is_empty() {
            nav.langs aria-label=(t(current, Msg::Language)) {
                ul {
                    @for &l in languages {
                        li lang=(l.code()) {
                            @if l == current {
                                strong aria-current="true" { (lang_name(l)) }
                            } @else {
                                a href={ (LANG_PATH) "?to=" (encode(l.code())) "&back=" (back) }
                                    hreflang=(l.code()) { (lang_name(l)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The hidden input that carries the CSRF token; every state-changing form has one.
pub fn csrf_input(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

/// A confirmation after an action ("Saved."), announced politely to screen readers.
pub fn notice(text: &str) -> Markup {
    html! { div.notice role="status" { (text) } }
}

/// An error box, announced at once to screen readers.
pub fn error_box(text: &str) -> Markup {
    html! { div.error role="alert" { (text) } }
}

/// A review status as a coloured badge with its name in `lang`.
pub fn status_badge(lang: Lang, code: &str) -> Markup {
    html! { span class={ "status status-" (code) } { (status_label(lang, code)) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrome<'a>(nav: Vec<NavItem<'a>>) -> Chrome<'a> {
        Chrome {
            lang: Lang::SrCyrl,
            title: "Случајеви",
            user: Some(("vjosa", "supervisor")),
            nav,
            csrf: Some("tok123"),
            here: "/records?status=draft&q=Đorđe",
            languages: &Lang::REQUIRED,
        }
    }

    #[test]
    fn stylesheet_stays_small() {
        assert!(STYLE.len() < 6 * 1024, "style.css is {} bytes", STYLE.len());
    }

    #[test]
    fn page_has_lang_viewport_and_inline_style() {
        let html = page(&chrome(vec![]), html! { h1 { "x" } }).into_string();
        assert!(html.starts_with("<!DOCTYPE html><html lang=\"sr-Cyrl\">"));
        assert!(
            html.contains(
                r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
            )
        );
        assert!(html.contains("<style>"));
        assert!(!html.contains("<link"), "no stylesheet request");
        assert!(!html.contains("<script"), "no JavaScript");
        assert!(html.contains("<main id=\"main\"><h1>x</h1></main>"));
    }

    #[test]
    fn sign_out_is_a_post_with_the_csrf_token() {
        let html = page(&chrome(vec![]), html! {}).into_string();
        assert!(html.contains(r#"<form method="post" action="/sign-out"><input type="hidden" name="csrf" value="tok123"><button type="submit">Одјави се</button></form>"#), "{html}");
        assert!(html.contains("Пријављени сте као vjosa (Супервизор)"));
    }

    #[test]
    fn language_links_come_back_here() {
        let html = page(&chrome(vec![]), html! {}).into_string();
        assert!(html.contains(r#"<a href="/lang?to=sq&amp;back=%2Frecords%3Fstatus%3Ddraft%26q%3D%C4%90or%C4%91e" hreflang="sq">Shqip</a>"#), "{html}");
        assert!(html.contains(r#"<strong aria-current="true">Српски</strong>"#));
    }

    #[test]
    fn current_section_is_marked() {
        let html = page(
            &chrome(vec![
                NavItem::new("/records", "Случајеви"),
                NavItem::new("/summary", "Преглед"),
                NavItem {
                    current: true,
                    ..NavItem::new("/users", "Корисници")
                },
            ]),
            html! {},
        )
        .into_string();
        assert!(html.contains(r#"<a href="/records" aria-current="page">"#));
        assert!(html.contains(r#"<a href="/summary">"#));
        assert!(html.contains(r#"<a href="/users" aria-current="page">"#));
    }

    #[test]
    fn signed_out_page_has_no_user_box() {
        let c = Chrome {
            user: None,
            csrf: None,
            ..chrome(vec![])
        };
        let html = page(&c, html! {}).into_string();
        assert!(!html.contains("sign-out"));
    }
}
