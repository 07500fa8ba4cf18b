//! Horizontal bar charts as inline SVG, for the donor summary: no JavaScript, no
//! request, readable by screen readers (a `<title>`, `role="img"`, every number written
//! out) and printable.
//!
//! A suppressed cell (a count under 5, shown "<5" so that no client can be singled out)
//! carries no number at all, so its bar cannot give the count away: it is drawn as a
//! short dashed outline of a fixed width, whatever the other bars are.

use maud::{Markup, html};

/// One value of a chart or table of counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Count(u64),
    /// Too small to show; written "<5".
    Suppressed,
}

impl Cell {
    /// How the cell is written in tables, CSV and charts.
    pub fn text(self) -> String {
        match self {
            Cell::Count(n) => n.to_string(),
            Cell::Suppressed => SUPPRESSED_TEXT.to_string(),
        }
    }
}

/// What a suppressed cell shows.
pub const SUPPRESSED_TEXT: &str = "<5";

/// Width of the drawing in SVG units; it scales to its container (at most 28rem), so
/// on a 360 px phone its 14-unit text is about 13 px.
const WIDTH: u32 = 360;
/// Room at the right for the number after the longest bar.
const NUMBER_ROOM: u32 = 56;
/// Each row: a label line, then its bar.
const ROW: u32 = 40;
const BAR_HEIGHT: u32 = 14;
/// A suppressed cell's bar: short, the same for every chart.
pub const SUPPRESSED_WIDTH: u32 = 12;
/// Longest label drawn in full; a longer one is cut with "…" (the full label stays in
/// the row's `<title>`).
const LABEL_CHARS: usize = 46;

/// A bar chart of `rows` (label, count) titled `title`, bars in the given order and
/// scaled to the largest count.
pub fn bars(title: &str, rows: &[(String, Cell)]) -> Markup {
    let max = rows
        .iter()
        .filter_map(|(_, c)| match c {
            Cell::Count(n) => Some(*n),
            Cell::Suppressed => None,
        })
        .max()
        .unwrap_or(0);
    let span = WIDTH - NUMBER_ROOM;
    let height = ROW * rows.len() as u32 + 8;
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
                viewBox={ "0 0 " (WIDTH) " " (height) } width=(WIDTH) height=(height)
                font-family="system-ui, sans-serif" font-size="14"
            {
                title { (title) }
                @for (i, (label, cell)) in rows.iter().enumerate() {
                    @let top = ROW * i as u32;
                    @let bar_y = top + 20;
                    g {
                        title { (label) ": " (cell.text()) }
                        text x="0" y=(top + 15) fill="#1b1b1b" { (shorten(label)) }
                        @match cell {
                            Cell::Count(n) => {
                                @let w = bar_width(*n, max, span);
                                // SVG elements need an end tag: inside HTML, `<rect>` alone
                                // would swallow the number that follows.
                                rect x="0" y=(bar_y) width=(w) height=(BAR_HEIGHT) fill="#0b4f8a" {}
                                text x=(w + 6) y=(bar_y + 12) fill="#1b1b1b" { (n) }
                            }
                            Cell::Suppressed => {
                                rect x="0.5" y={ (bar_y) ".5" } width=(SUPPRESSED_WIDTH)
                                    height=(BAR_HEIGHT - 1) fill="none" stroke="#555"
                                    stroke-dasharray="3 2" {}
                                text x=(SUPPRESSED_WIDTH + 6) y=(bar_y + 12) fill="#1b1b1b" {
                                    (SUPPRESSED_TEXT)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A bar's length: proportional to the largest count, at least 2 units for a non-zero
/// count so that it stays visible.
fn bar_width(n: u64, max: u64, span: u32) -> u32 {
    if n == 0 || max == 0 {
        return 0;
    }
    let w = (u128::from(n) * u128::from(span) / u128::from(max)) as u32;
    w.max(2)
}

fn shorten(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rects(svg: &str) -> Vec<String> {
        svg.match_indices("<rect")
            .map(|(i, _)| svg[i..].split('>').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn bars_scale_to_the_largest_count() {
        let svg = bars(
            "By municipality",
            &[
                ("Prishtinë".into(), Cell::Count(608)),
                ("Gjilan".into(), Cell::Count(304)),
                ("Junik".into(), Cell::Count(0)),
            ],
        )
        .into_string();
        let r = rects(&svg);
        assert!(r[0].contains(r#"width="304""#), "{}", r[0]);
        assert!(r[1].contains(r#"width="152""#), "{}", r[1]);
        assert!(r[2].contains(r#"width="0""#), "{}", r[2]);
        assert!(svg.contains(">608</text>") && svg.contains(">0</text>"));
        assert_eq!(svg.matches("<rect").count(), svg.matches("</rect>").count());
        assert!(svg.contains(r#"role="img""#) && svg.contains("<title>By municipality</title>"));
    }

    #[test]
    fn suppressed_bar_is_short_and_the_same_whatever_the_scale() {
        for max in [6, 10_000] {
            let svg = bars(
                "x",
                &[
                    ("a".into(), Cell::Count(max)),
                    ("b".into(), Cell::Suppressed),
                ],
            )
            .into_string();
            let r = rects(&svg);
            assert!(r[1].contains(r#"width="12""#), "{}", r[1]);
            assert!(r[1].contains(r#"fill="none""#));
            assert!(svg.contains(">&lt;5</text>"));
            assert!(svg.contains("<title>b: &lt;5</title>"));
        }
    }

    #[test]
    fn tiny_counts_stay_visible_and_long_labels_are_cut() {
        assert_eq!(bar_width(5, 1_000_000, 344), 2);
        assert_eq!(bar_width(u64::MAX, u64::MAX, 344), 344);
        let long = "x".repeat(80);
        let svg = bars("t", &[(long.clone(), Cell::Count(1))]).into_string();
        assert!(svg.contains(&format!("<title>{long}: 1</title>")));
        assert!(svg.contains(&format!(">{}…</text>", "x".repeat(45))));
    }

    #[test]
    fn empty_chart_is_still_valid() {
        let svg = bars("none", &[]).into_string();
        assert!(svg.contains(r#"viewBox="0 0 360 8""#));
    }
}
