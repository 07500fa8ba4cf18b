//! Page weight: the frame every page pays for (head, inlined stylesheet, navigation,
//! user box, language switcher) stays under 10 KB, leaving room for content under the
//! dashboard's 60 KB limit on a slow office connection.

use intake_shared::Lang;
use intake_web::i18n::{Msg, t};
use intake_web::layout::{Chrome, NavItem, page};
use intake_web::{Markup, html};

fn empty_page(lang: Lang) -> String {
    let nav = [
        ("/records", Msg::Cases),
        ("/duplicates", Msg::Duplicates),
        ("/summary", Msg::DonorSummary),
        ("/export", Msg::Export),
        ("/users", Msg::Users),
        ("/devices", Msg::Devices),
        ("/audit", Msg::AuditTrail),
    ]
    .into_iter()
    .map(|(href, msg)| NavItem::new(href, t(lang, msg)))
    .collect();
    let chrome = Chrome {
        lang,
        title: t(lang, Msg::Cases),
        user: Some(("administrator.with.a.long.name", "admin")),
        nav,
        csrf: Some("0123456789abcdef0123456789abcdef0123456789abcdef"),
        here: "/records?status=submitted&municipality=gjilan&page=3",
        languages: &Lang::REQUIRED,
    };
    let body: Markup = html! {};
    page(&chrome, body).into_string()
}

#[test]
fn an_empty_page_is_under_10_kb_in_every_language() {
    for lang in Lang::ALL {
        let html = empty_page(lang);
        println!("{lang}: {} bytes", html.len());
        assert!(html.len() < 10 * 1024, "{lang}: {} bytes", html.len());
        // The stylesheet is in the page (one request), the body is empty.
        assert!(html.contains("<style>") && html.contains("<main id=\"main\"></main>"));
    }
}
