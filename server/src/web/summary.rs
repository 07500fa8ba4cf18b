//! The donor summary: counts of the records in scope by municipality, community,
//! gender, issue type, status and month, as a page (tables and bar charts drawn as
//! SVG on the server) and as CSV. A count under 5 is shown as "<5" so that no client
//! can be singled out; when a dimension would have exactly one such cell, the next
//! smallest is hidden too, so the hidden one cannot be worked out from the total
//! (secondary suppression). Counts come from the record index, not the documents.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use intake_shared::Lang;
use intake_web::chart::{Cell, bars};
use intake_web::i18n::{Msg, status_label, t};
use maud::{Markup, html};

use super::audit::{self, action};
use super::errors::WebError;
use super::pages::signed_page;
use super::records::{ListQuery, choice_label, intake_form};
use super::session::Signed;
use crate::policy::{self, Principal};
use crate::startup::AppState;
use crate::storage::Listed;

/// Counts under this are suppressed.
pub const THRESHOLD: u64 = 5;

/// The dimensions, in the order the page shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Municipality,
    Community,
    Gender,
    IssueType,
    Status,
    Month,
}

impl Dimension {
    pub const ALL: [Dimension; 6] = [
        Dimension::Municipality,
        Dimension::Community,
        Dimension::Gender,
        Dimension::IssueType,
        Dimension::Status,
        Dimension::Month,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Dimension::Municipality => "municipality",
            Dimension::Community => "community",
            Dimension::Gender => "gender",
            Dimension::IssueType => "issue_type",
            Dimension::Status => "status",
            Dimension::Month => "month",
        }
    }

    fn title(self, lang: Lang) -> &'static str {
        t(
            lang,
            match self {
                Dimension::Municipality => Msg::ByMunicipality,
                Dimension::Community => Msg::ByCommunity,
                Dimension::Gender => Msg::ByGender,
                Dimension::IssueType => Msg::ByIssueType,
                Dimension::Status => Msg::ByStatus,
                Dimension::Month => Msg::ByMonth,
            },
        )
    }

    /// The record's value in this dimension (`None`: not recorded).
    fn of(self, r: &Listed) -> Option<String> {
        let s = &r.summary;
        match self {
            Dimension::Municipality => s.municipality.clone(),
            Dimension::Community => s.community.clone(),
            Dimension::Gender => s.gender.clone(),
            Dimension::IssueType => s.issue_type.clone(),
            Dimension::Status => Some(r.status.clone()),
            Dimension::Month => s.created_at.map(|d| d.format("%Y-%m").to_string()),
        }
    }

    /// A value's label in `lang`.
    fn label(self, code: &str, lang: Lang) -> String {
        match self {
            Dimension::Status => status_label(lang, code).to_string(),
            Dimension::Month => code.to_string(),
            d => choice_label(&intake_form(), d.code(), code, lang),
        }
    }
}

/// One dimension's counts: (value code or `None` for not recorded, count), sorted by
/// code (months in order), with "not recorded" last.
pub fn counts(records: &[Listed], d: Dimension) -> Vec<(Option<String>, u64)> {
    let mut by: BTreeMap<Option<String>, u64> = BTreeMap::new();
    for r in records {
        *by.entry(d.of(r)).or_insert(0) += 1;
    }
    let mut out: Vec<_> = by.into_iter().filter(|(k, _)| k.is_some()).collect();
    let none = records.iter().filter(|r| d.of(r).is_none()).count() as u64;
    if none > 0 {
        out.push((None, none));
    }
    out
}

/// Which counts are shown: small ones become `Suppressed`, and a lone suppressed cell
/// takes the next smallest with it (else total minus the rest would reveal it).
pub fn suppress(counts: &[u64]) -> Vec<Cell> {
    let mut cells: Vec<Cell> = counts
        .iter()
        .map(|&n| {
            if n > 0 && n < THRESHOLD {
                Cell::Suppressed
            } else {
                Cell::Count(n)
            }
        })
        .collect();
    let hidden = cells
        .iter()
        .filter(|c| matches!(c, Cell::Suppressed))
        .count();
    if hidden == 1
        && let Some((i, _)) = counts
            .iter()
            .enumerate()
            .filter(|(i, n)| matches!(cells[*i], Cell::Count(_)) && **n > 0)
            .min_by_key(|(_, n)| **n)
    {
        cells[i] = Cell::Suppressed;
    }
    cells
}

/// The records a summary counts.
async fn in_scope(
    state: &web::Data<AppState>,
    p: &Principal,
    q: &ListQuery,
    lang: Lang,
) -> Result<Vec<Listed>, WebError> {
    let filter = q.filter(lang)?;
    let scope = policy::scope(p);
    let storage = state.storage.clone();
    Ok(web::block(move || storage.listed_all(&scope, &filter)).await??)
}

fn table(d: Dimension, rows: &[(Option<String>, u64)], lang: Lang) -> Markup {
    let cells = suppress(&rows.iter().map(|(_, n)| *n).collect::<Vec<_>>());
    let labelled: Vec<(String, Cell)> = rows
        .iter()
        .zip(cells)
        .map(|((k, _), c)| {
            let label = match k {
                Some(code) => d.label(code, lang),
                None => t(lang, Msg::NotRecorded).to_string(),
            };
            (label, c)
        })
        .collect();
    html! {
        section.dimension id=(d.code()) {
            h2 { (d.title(lang)) }
            div.twocol {
                table {
                    thead { tr { th scope="col" { (d.title(lang)) } th scope="col" { (t(lang, Msg::Count)) } } }
                    tbody {
                        @for (label, c) in &labelled {
                            tr { td { (label) } td.num { (c.text()) } }
                        }
                    }
                }
                (bars(d.title(lang), &labelled))
            }
        }
    }
}

/// `GET /summary`.
pub async fn page(
    who: Signed,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    who.supervisor()?;
    let lang = who.lang;
    let q = q.into_inner();
    let records = in_scope(&state, &who.principal(), &q, lang).await?;
    let total = records.len() as u64;
    let query = q.query_string();
    let body = html! {
        h1 { (t(lang, Msg::DonorSummary)) }
        form.filters method="get" action="/summary" {
            label { (t(lang, Msg::DateFrom)) input type="date" name="from" value=(q.from); }
            label { (t(lang, Msg::DateTo)) input type="date" name="to" value=(q.to); }
            button type="submit" { (t(lang, Msg::ApplyFilters)) }
        }
        p { strong { (t(lang, Msg::Total)) ": " (total) } }
        p.hint { (t(lang, Msg::SuppressedExplain)) }
        p { a.button href={ "/summary.csv?" (query) } { (t(lang, Msg::DownloadSummaryCsv)) } }
        @for d in Dimension::ALL {
            (table(d, &counts(&records, d), lang))
        }
    };
    audit::record(&state, &who, action::SUMMARY, q.describe(), Vec::new()).await?;
    Ok(super::html(signed_page(
        &who,
        t(lang, Msg::DonorSummary),
        "/summary",
        body,
    )))
}

/// The summary as CSV rows `dimension,value,label,count` (BOM, CRLF), suppressed
/// cells as `<5`.
pub fn csv(records: &[Listed], lang: Lang) -> Vec<u8> {
    let mut out = String::from("\u{feff}dimension,value,label,count\r\n");
    for d in Dimension::ALL {
        let rows = counts(records, d);
        let cells = suppress(&rows.iter().map(|(_, n)| *n).collect::<Vec<_>>());
        for ((k, _), c) in rows.iter().zip(cells) {
            let label = match k {
                Some(code) => d.label(code, lang),
                None => t(lang, Msg::NotRecorded).to_string(),
            };
            let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            out.push_str(&format!(
                "{},{},{},{}\r\n",
                d.code(),
                quote(k.as_deref().unwrap_or("")),
                quote(&label),
                c.text()
            ));
        }
    }
    out.push_str(&format!("total,,,{}\r\n", records.len()));
    out.into_bytes()
}

fn csv_response(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"intake-summary.csv\"",
        ))
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

/// `GET /summary.csv`.
pub async fn csv_page(
    who: Signed,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    who.supervisor()?;
    let q = q.into_inner();
    let records = in_scope(&state, &who.principal(), &q, who.lang).await?;
    audit::record(
        &state,
        &who,
        action::SUMMARY,
        format!("{} format=csv", q.describe()),
        Vec::new(),
    )
    .await?;
    Ok(csv_response(csv(&records, who.lang)))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ApiQuery {
    from: String,
    to: String,
    format: String,
    lang: String,
}

/// `GET /v1/summary?format=csv|json&from=&to=`: for scripts, with a device token.
pub async fn api(
    req: HttpRequest,
    p: Principal,
    state: web::Data<AppState>,
    q: web::Query<ApiQuery>,
) -> Result<HttpResponse, crate::error::ApiError> {
    let lang: Lang = q.lang.parse().unwrap_or(Lang::En);
    let list = ListQuery {
        from: q.from.clone(),
        to: q.to.clone(),
        ..ListQuery::default()
    };
    let records = in_scope(&state, &p, &list, lang)
        .await
        .map_err(super::export::api_error)?;
    let peer = crate::net::client_addr(&req);
    audit::record_api(&state, &p, peer, action::SUMMARY, list.describe())
        .await
        .map_err(super::export::api_error)?;
    match q.format.as_str() {
        "" | "json" => {
            let mut o = serde_json::Map::new();
            o.insert("total".into(), (records.len() as u64).into());
            for d in Dimension::ALL {
                let rows = counts(&records, d);
                let cells = suppress(&rows.iter().map(|(_, n)| *n).collect::<Vec<_>>());
                let items: Vec<serde_json::Value> = rows
                    .iter()
                    .zip(cells)
                    .map(|((k, _), c)| {
                        serde_json::json!({
                            "value": k,
                            "count": match c { Cell::Count(n) => serde_json::Value::from(n), Cell::Suppressed => "<5".into() },
                        })
                    })
                    .collect();
                o.insert(d.code().into(), items.into());
            }
            Ok(HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .json(o))
        }
        "csv" => Ok(csv_response(csv(&records, lang))),
        _ => Err(crate::error::ApiError::BadRequest(
            "format: csv or json".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cells_are_hidden_and_a_lone_one_takes_a_neighbour() {
        let shown = |cells: Vec<Cell>| cells.iter().map(|c| c.text()).collect::<Vec<_>>();
        assert_eq!(shown(suppress(&[12, 3, 7])), ["12", "<5", "<5"]);
        assert_eq!(shown(suppress(&[12, 3, 4, 9])), ["12", "<5", "<5", "9"]);
        assert_eq!(shown(suppress(&[12, 30])), ["12", "30"]);
        assert_eq!(shown(suppress(&[2])), ["<5"]);
    }
}
