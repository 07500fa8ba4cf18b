//! Exports of the records a supervisor is looking at (the list's filter): CSV (UTF-8
//! with a byte-order mark, so spreadsheet apps keep Cyrillic and diacritics; one row
//! per record, one column per field; headers as labels in the chosen language or as
//! field codes) and JSON. Fields the form marks sensitive are left out unless the user
//! ticks them and her role allows it. Every export is in the audit trail with its
//! filter. The same exports answer scripts at `/v1/export` with a device token.

use actix_web::{HttpRequest, HttpResponse, web};
use intake_shared::{Form, FormRegistry, Lang, Record, Value};
use intake_web::i18n::{Msg, status_label, t};

use super::audit::{self, action};
use super::errors::WebError;
use super::records::{ListQuery, intake_form};
use super::session::Signed;
use crate::policy::{self, Principal};
use crate::startup::AppState;
use crate::storage::{Role, StoredRecord};

/// What an export asks for beyond the list's filter.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ExportQuery {
    pub status: String,
    pub municipality: String,
    pub issue_type: String,
    pub urgency: String,
    pub paralegal: String,
    pub conflicts: String,
    pub from: String,
    pub to: String,
    pub q: String,
    /// `codes` for field codes and choice codes; anything else: labels in the language.
    pub headers: String,
    /// `yes` to include the fields the form marks sensitive.
    pub sensitive: String,
    /// `csv` or `json` (the API; the pages have one path each).
    pub format: String,
    /// The language of labels (the API; pages use the user's).
    pub lang: String,
}

impl ExportQuery {
    pub fn list(&self) -> ListQuery {
        ListQuery {
            status: self.status.clone(),
            municipality: self.municipality.clone(),
            issue_type: self.issue_type.clone(),
            urgency: self.urgency.clone(),
            paralegal: self.paralegal.clone(),
            conflicts: self.conflicts.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            q: self.q.clone(),
            page: String::new(),
        }
    }
}

/// Whether a role may export sensitive fields: supervisors (who read whole records in
/// the dashboard anyway); a paralegal's device exporting her own records may not.
pub fn may_export_sensitive(role: Role) -> bool {
    role == Role::Supervisor
}

/// One exported record: its facts, then its fields in form order.
struct Row {
    facts: Vec<(&'static str, String)>,
    fields: Vec<(String, Option<Value>)>,
}

fn rows(records: Vec<StoredRecord>, form: &Form, sensitive: bool) -> Vec<Row> {
    let fields: Vec<&intake_shared::form::Field> = form
        .fields()
        .iter()
        .filter(|f| sensitive || !f.sensitive)
        .collect();
    // Reading each document is most of an export's work (about 0.7 ms a record):
    // spread over the cores like a push.
    crate::sync::par_map(&records, |s| {
            // A record the server cannot read is left out and logged (without content);
            // the rest of the export goes on.
        let record = match Record::load(&s.doc, FormRegistry::builtin()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(record = %s.meta.id, error = %e, "an exported record cannot be read");
                return None;
            }
        };
            let values = record.values();
            Some(Row {
                facts: vec![
                    ("id", s.meta.id.to_string()),
                    ("status", record.status().as_str().to_string()),
                    ("paralegal", s.meta.owner.clone()),
                    ("assigned_to", s.meta.assigned_to.clone().unwrap_or_default()),
                    ("created_at", record.created_at().map(|d| d.to_rfc3339()).unwrap_or_default()),
                    ("has_conflicts", if record.has_conflicts() { "yes" } else { "no" }.to_string()),
                ],
                fields: fields
                    .iter()
                    .map(|f| (f.name.clone(), values.get(&f.name).cloned()))
                    .collect(),
            })
    })
    .into_iter()
    .flatten()
    .collect()
}

/// A CSV cell: quoted when needed, and a leading `=`, `+`, `-` or `@` defused with an
/// apostrophe so a spreadsheet never runs a client's "name" as a formula.
fn cell(s: &str) -> String {
    let s = match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn fact_label(lang: Lang, key: &str) -> String {
    match key {
        "status" => t(lang, Msg::Status).into(),
        "paralegal" => t(lang, Msg::Paralegal).into(),
        "assigned_to" => t(lang, Msg::AssignedTo).into(),
        "created_at" => t(lang, Msg::Created).into(),
        "has_conflicts" => t(lang, Msg::Conflicts).into(),
        "id" => t(lang, Msg::CaseNumber).into(),
        other => other.into(),
    }
}

/// The CSV body: BOM, header row, one row per record, CRLF line ends (RFC 4180).
fn csv(rows: &[Row], form: &Form, lang: Lang, codes: bool) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    let header: Vec<String> = match rows.first() {
        Some(r) => r
            .facts
            .iter()
            .map(|(k, _)| {
                if codes {
                    k.to_string()
                } else {
                    fact_label(lang, k)
                }
            })
            .chain(
                r.fields
                    .iter()
                    .map(|(name, _)| match (codes, form.field(name)) {
                        (false, Some(f)) => intake_web::form::label(f, lang).to_string(),
                        _ => name.clone(),
                    }),
            )
            .collect(),
        None => vec!["id".into()],
    };
    out.push_str(&header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(","));
    out.push_str("\r\n");
    for r in rows {
        let facts = r.facts.iter().map(|(k, v)| match (*k, codes) {
            ("status", false) => status_label(lang, v).to_string(),
            _ => v.clone(),
        });
        let fields = r
            .fields
            .iter()
            .map(|(name, v)| match (v, form.field(name)) {
                (None, _) => String::new(),
                (Some(v), Some(f)) if !codes => form.value_label(f, v, lang),
                (Some(Value::Bool(b)), _) => if *b { "yes" } else { "no" }.to_string(),
                (Some(v), _) => v.to_string(),
            });
        let line: Vec<String> = facts.chain(fields).map(|c| cell(&c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// The JSON body: codes only (scripts want stable keys), every field present (null when
/// unanswered).
fn json(rows: &[Row]) -> Vec<u8> {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            for (k, v) in &r.facts {
                o.insert(
                    (*k).to_string(),
                    match *k {
                        "has_conflicts" => serde_json::Value::Bool(v == "yes"),
                        _ => serde_json::Value::String(v.clone()),
                    },
                );
            }
            let fields: serde_json::Map<String, serde_json::Value> = r
                .fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_ref().map_or(serde_json::Value::Null, Value::to_json),
                    )
                })
                .collect();
            o.insert("fields".into(), fields.into());
            serde_json::Value::Object(o)
        })
        .collect();
    serde_json::to_vec_pretty(&items).unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// Builds an export for `p` (the dashboard's supervisor through her dashboard device, or
/// a script's device) and writes its audit entry first.
async fn export(
    state: &web::Data<AppState>,
    p: &Principal,
    q: &ExportQuery,
    lang: Lang,
    format: Format,
) -> Result<(HttpResponse, String, usize), WebError> {
    let sensitive = q.sensitive == "yes";
    if sensitive && !may_export_sensitive(p.user.role) {
        return Err(WebError::Forbidden(lang));
    }
    let list = q.list();
    let filter = list.filter(lang)?;
    let scope = policy::scope(p);
    let storage = state.storage.clone();
    let codes = q.headers == "codes";
    let (body, count) = web::block(move || -> crate::storage::Result<(Vec<u8>, usize)> {
        let records = storage.records_matching(&scope, &filter)?;
        let form = intake_form();
        let rows = rows(records, &form, sensitive);
        let body = match format {
            Format::Csv => csv(&rows, &form, lang, codes),
            Format::Json => json(&rows),
        };
        Ok((body, rows.len()))
    })
    .await??;
    let (ctype, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
    };
    let name = format!(
        "intake-export-{}.{ext}",
        chrono::Utc::now().format("%Y%m%d-%H%M")
    );
    let resp = HttpResponse::Ok()
        .content_type(ctype)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body);
    let scope = format!(
        "{} format={ext} sensitive={} records={count}",
        list.describe(),
        if sensitive { "yes" } else { "no" }
    );
    Ok((resp, scope, count))
}

async fn page_export(
    who: Signed,
    state: web::Data<AppState>,
    q: ExportQuery,
    format: Format,
) -> Result<HttpResponse, WebError> {
    who.supervisor()?;
    let (resp, scope, _) = export(&state, &who.principal(), &q, who.lang, format).await?;
    audit::record(&state, &who, action::EXPORT, scope, Vec::new()).await?;
    Ok(resp)
}

/// `GET /export.csv`.
pub async fn csv_page(
    who: Signed,
    state: web::Data<AppState>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, WebError> {
    page_export(who, state, q.into_inner(), Format::Csv).await
}

/// `GET /export.json`.
pub async fn json_page(
    who: Signed,
    state: web::Data<AppState>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, WebError> {
    page_export(who, state, q.into_inner(), Format::Json).await
}

/// `GET /v1/export?format=csv|json&…`: the same export for scripts, with a device token.
pub async fn api(
    req: HttpRequest,
    p: Principal,
    state: web::Data<AppState>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, crate::error::ApiError> {
    let q = q.into_inner();
    let lang = q.lang.parse().unwrap_or(Lang::En);
    let format = match q.format.as_str() {
        "" | "csv" => Format::Csv,
        "json" => Format::Json,
        _ => {
            return Err(crate::error::ApiError::BadRequest(
                "format: csv or json".into(),
            ));
        }
    };
    let (resp, scope, _) = export(&state, &p, &q, lang, format)
        .await
        .map_err(api_error)?;
    audit::record_api(
        &state,
        &p,
        crate::net::client_addr(&req),
        action::EXPORT,
        scope,
    )
    .await
    .map_err(api_error)?;
    Ok(resp)
}

/// A dashboard error as the JSON API says it.
pub fn api_error(e: WebError) -> crate::error::ApiError {
    use crate::error::ApiError;
    match e {
        WebError::Forbidden(_) => {
            ApiError::Forbidden("your role may not export sensitive fields".into())
        }
        WebError::BadRequest(_, m) => ApiError::BadRequest(m),
        WebError::NotFound(_) => ApiError::NotFound,
        WebError::Internal(_, e) => ApiError::Internal(e),
        WebError::StorageFull(_) => {
            ApiError::StorageFull("the disk that holds the server's data directory".into())
        }
        other => ApiError::BadRequest(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("Đorđević"), "Đorđević");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"no\""), "\"say \"\"no\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-5"), "'-5");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
    }
}
