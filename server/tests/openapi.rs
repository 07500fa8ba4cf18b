//! The OpenAPI document (`docs/openapi.json`) stays true to the server: the copy the
//! server embeds and serves at `/openapi.json` is that file, it is OpenAPI 3.x JSON, it
//! documents every route in `intake_server::routes::ROUTES` and nothing else, and its
//! internal references and path parameters are consistent.
//!
//! The list itself comes from the table that registers the routes
//! (`intake_server::routes::route_table!`), and a test here calls every listed route
//! (and every dashboard route) on the real app to prove it is registered: the router
//! answers something other than 404/405 for a request without credentials, while an
//! unlisted path answers 404.

use std::collections::BTreeSet;
use std::sync::Arc;

use actix_web::App;
use actix_web::test as http;
use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn on_disk() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn document() -> Value {
    serde_json::from_str(&on_disk()).expect("docs/openapi.json is valid JSON")
}

/// Every (method, path) the document describes.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("a paths object");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item object");
        for method in item.keys().filter(|k| METHODS.contains(&k.as_str())) {
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

#[actix_web::test]
async fn the_server_serves_the_document_in_docs() {
    let app = http::init_service(App::new().configure(intake_server::routes::configure)).await;
    let resp = http::call_service(
        &app,
        http::TestRequest::get().uri("/openapi.json").to_request(),
    )
    .await;
    assert!(resp.status().is_success());
    let content_type = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body = http::read_body(resp).await;
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        on_disk(),
        "the embedded document is docs/openapi.json"
    );
}

#[test]
fn it_is_openapi_3() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3."), "OpenAPI 3.x, not {version}");
    assert!(doc["info"]["title"].is_string());
    assert!(doc["info"]["version"].is_string());
    assert!(
        doc["components"]["securitySchemes"]
            .as_object()
            .is_some_and(|s| s.values().any(|s| s["scheme"] == "bearer")),
        "a bearer token security scheme"
    );
    assert!(doc["components"]["schemas"]["Error"].is_object());
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let documented = operations(&document());
    let routes: BTreeSet<(String, String)> = intake_server::routes::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes not in docs/openapi.json: {missing:?}"
    );
    assert!(extra.is_empty(), "documented but not routes: {extra:?}");
}

#[test]
fn every_operation_is_complete() {
    let doc = document();
    let public = ["/health", "/openapi.json", "/v1/enroll"];
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][&method];
        let what = format!("{method} {path}");
        let responses = op["responses"].as_object().expect(&what);
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{what}: no success response"
        );
        assert!(op["summary"].is_string(), "{what}: no summary");
        if public.contains(&path.as_str()) {
            assert_eq!(
                op["security"],
                serde_json::json!([]),
                "{what} needs no token"
            );
        } else {
            assert!(op.get("security").is_none(), "{what} needs the token");
            assert!(responses.contains_key("401"), "{what}: no 401");
        }
        // Declared path parameters are exactly those in the path.
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(in_path, declared, "{what}: path parameters");
    }
    // The binary endpoint is described by its media type, not a JSON schema.
    let sync = &doc["paths"]["/v1/sync"]["post"];
    assert!(sync["requestBody"]["content"]["application/vnd.intake.sync"].is_object());
    assert!(sync["responses"]["200"]["content"]["application/vnd.intake.sync"].is_object());
    assert!(
        sync["responses"]["426"].is_object(),
        "old apps are told to update"
    );
}

#[test]
fn every_reference_resolves() {
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc = document();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r}: only local references"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

/// What the server's handlers reach, as the server builds it but with the admin API on
/// and the storage in `dir`.
fn state(dir: &std::path::Path) -> actix_web::web::Data<intake_server::AppState> {
    use intake_server::config::AdminApi;
    use intake_server::storage::key::DbKey;
    use intake_server::storage::sqlite::SqliteStorage;
    let key = DbKey::generate().unwrap();
    let storage = Arc::new(SqliteStorage::create(&dir.join("routes.db"), &key).unwrap());
    let settings = intake_server::Settings {
        admin_api: AdminApi::On,
        ..Default::default()
    };
    actix_web::web::Data::new(intake_server::AppState::new(storage, settings))
}

/// A concrete path for a route: each `{parameter}` becomes `1`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[actix_web::test]
async fn every_listed_route_is_registered_and_nothing_unlisted_answers() {
    let dir = tempfile::tempdir().unwrap();
    let app = http::init_service(
        App::new()
            .app_data(state(dir.path()))
            .configure(intake_server::routes::configure),
    )
    .await;
    // The status of a request without credentials.
    macro_rules! status_of {
        ($method:expr, $path:expr) => {{
            let req = match $method {
                "get" => http::TestRequest::get(),
                "post" => http::TestRequest::post(),
                other => panic!("a route with method {other}: teach this test to call it"),
            };
            http::call_service(&app, req.uri(&concrete($path)).to_request())
                .await
                .status()
                .as_u16()
        }};
    }
    let listed = intake_server::routes::ROUTES
        .iter()
        .chain(intake_server::web::DASHBOARD_ROUTES);
    let mut unrouted = Vec::new();
    for &(method, path) in listed {
        // The route's extractors or handler answer (401, 400, 403, a redirect to sign
        // in, 200), never the router's "no such route" or "no such method".
        let status = status_of!(method, path);
        if status == 404 || status == 405 {
            unrouted.push(format!("{method} {path}: {status}"));
        }
    }
    assert!(
        unrouted.is_empty(),
        "listed but not registered: {unrouted:#?}"
    );
    // And the router does answer 404 where nothing is listed (the check above can
    // fail), 404 or 405 for a listed path with a method not listed for it.
    for (method, path) in [
        ("get", "/v1/nothing"),
        ("post", "/v1/admin/nothing"),
        ("get", "/v1/records/1/more"),
        ("get", "/nothing"),
    ] {
        assert_eq!(
            status_of!(method, path),
            404,
            "{method} {path} is not listed"
        );
    }
    for (method, path) in [("post", "/v1/me"), ("get", "/v1/admin/users/1/code")] {
        let status = status_of!(method, path);
        assert!(
            status == 404 || status == 405,
            "{method} {path} is not listed: {status}"
        );
    }
}
