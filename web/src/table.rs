//! Paging of long lists: "21–40 of 135" and previous/next links that keep every other
//! parameter of the query (the filters), so paging never loses what was filtered.

use intake_shared::Lang;
use maud::{Markup, html};

use crate::i18n::{Msg, t, tf};
use crate::url::with_param;

/// The query parameter that holds the page number (from 1).
pub const PAGE_PARAM: &str = "page";

/// Where a list is, in its pages.
#[derive(Clone, Copy, Debug)]
pub struct Pager<'a> {
    /// The list's path (`/records`).
    pub path: &'a str,
    /// The current query string, already encoded, without `?`.
    pub query: &'a str,
    /// The current page, from 1.
    pub page: u64,
    pub per_page: u64,
    /// How many items match in all.
    pub total: u64,
}

impl Pager<'_> {
    /// The number of pages (at least 1, so an empty list is on page 1 of 1).
    pub fn pages(&self) -> u64 {
        self.total.div_ceil(self.per_page.max(1)).max(1)
    }

    /// The items shown, 1-based and inclusive; `None` when the page is past the end.
    pub fn range(&self) -> Option<(u64, u64)> {
        let per = self.per_page.max(1);
        let from = self.page.max(1).saturating_sub(1).saturating_mul(per) + 1;
        (from <= self.total).then(|| (from, (from + per - 1).min(self.total)))
    }
}

/// "from–to of total" with links to the previous and next pages (nothing when the list
/// is empty).
pub fn pager(lang: Lang, p: &Pager) -> Markup {
    let page = p.page.max(1);
    // Past the end (a filter narrowed the list), "previous" leads to the last page.
    let prev = (page > 1).then(|| {
        let to = (page - 1).min(p.pages());
        with_param(p.path, p.query, PAGE_PARAM, &to.to_string())
    });
    let next = (page < p.pages())
        .then(|| with_param(p.path, p.query, PAGE_PARAM, &(page + 1).to_string()));
    html! {
        @if p.total > 0 {
            nav.pager aria-label=(t(lang, Msg::Pages)) {
                @if let Some(href) = prev {
                    a href=(href) rel="prev" { "← " (t(lang, Msg::PreviousPage)) }
                }
                @if let Some((from, to)) = p.range() {
                    span {
                        (tf(lang, Msg::RangeOf, &[
                            ("from", &from.to_string()),
                            ("to", &to.to_string()),
                            ("total", &p.total.to_string()),
                        ]))
                    }
                }
                @if let Some(href) = next {
                    a href=(href) rel="next" { (t(lang, Msg::NextPage)) " →" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(page: u64, total: u64) -> Pager<'static> {
        Pager {
            path: "/records",
            query: "status=submitted&page=2&q=%C4%90or%C4%91e",
            page,
            per_page: 20,
            total,
        }
    }

    #[test]
    fn middle_page_links_both_ways_keeping_filters() {
        let html = pager(Lang::En, &at(2, 135)).into_string();
        assert!(
            html.contains(
                r#"href="/records?status=submitted&amp;q=%C4%90or%C4%91e&amp;page=1" rel="prev""#
            ),
            "{html}"
        );
        assert!(html.contains(
            r#"href="/records?status=submitted&amp;q=%C4%90or%C4%91e&amp;page=3" rel="next""#
        ));
        assert!(html.contains("21–40 of 135"));
    }

    #[test]
    fn ends_have_one_link_and_the_last_range_is_short() {
        let first = pager(Lang::SrLatn, &at(1, 135)).into_string();
        assert!(!first.contains("rel=\"prev\"") && first.contains("rel=\"next\""));
        assert!(first.contains("1–20 od 135"));
        let last = pager(Lang::Sq, &at(7, 135)).into_string();
        assert!(last.contains("rel=\"prev\"") && !last.contains("rel=\"next\""));
        assert!(last.contains("121–135 nga 135"));
    }

    #[test]
    fn empty_and_past_the_end() {
        assert_eq!(pager(Lang::En, &at(1, 0)).into_string(), "");
        assert_eq!(at(9, 135).range(), None);
        let past = pager(Lang::En, &at(9, 135)).into_string();
        assert!(past.contains("page=7\" rel=\"prev\""), "{past}");
        assert_eq!(at(1, 0).pages(), 1);
        assert_eq!(at(1, 40).pages(), 2);
    }
}
