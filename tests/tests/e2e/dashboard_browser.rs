//! The dashboard in a real headless Chromium, as a supervisor uses it: she sets her
//! password with a one-time code, signs in, filters the list, opens a record with a
//! conflict and settles it, approves another, exports CSV (read back with Python's
//! `csv` module); then the paralegal's device, after a sync, shows both decisions. Also:
//! hostile names and narratives stay inert text in the DOM of every page, and the
//! screenshots in `docs/screenshots/` (written there when `INTAKE_SCREENSHOTS` names a
//! directory).

use std::path::PathBuf;
use std::time::Instant;

use intake_server::storage::Role;
use intake_shared::{ReviewStatus, Value};
use intake_tests::browser::Browser;
use intake_tests::craft::text;
use intake_tests::dashboard::PASSWORD;
use intake_tests::{TestDevice, TestServer};

/// Where screenshots go: `INTAKE_SCREENSHOTS` when set (to refresh the committed ones),
/// else the browser's own temporary directory.
fn shot(browser: &Browser, name: &str) -> PathBuf {
    let dir = std::env::var_os("INTAKE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| browser.dir().to_path_buf());
    let path = dir.join(name);
    let png = browser.screenshot(&path);
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    path
}

/// Sets `name`'s password through the page and signs her in, in `browser`.
fn sign_in(browser: &Browser, server: &TestServer, name: &str) {
    let code = intake_server::admin::sign_in_code(server.storage.as_ref(), name, 60)
        .unwrap()
        .code;
    browser.goto(&format!("{}/set-password", server.url));
    browser.fill("input[name=code]", &code);
    browser.fill("input[name=password]", PASSWORD);
    browser.fill("input[name=again]", PASSWORD);
    browser.submit_form("form[action='/set-password']");
    browser.wait_for("p.notice");
    browser.goto(&format!("{}/login", server.url));
    browser.fill("input[name=username]", name);
    browser.fill("input[name=password]", PASSWORD);
    browser.submit_form("form[action='/login']");
    // Signed in: the sign-in page has gone (waiting, as the navigation may still run).
    browser
        .wait_until("return location.pathname !== '/login' && document.readyState === 'complete'");
}

/// A record as a paralegal records it, submitted.
fn intake(device: &mut TestDevice, name: &str, municipality: &str) -> intake_shared::RecordId {
    let id = device.create(&[
        ("full_name", text(name)),
        ("consent_intake", Value::Bool(true)),
        ("municipality", text(municipality)),
        ("issue_type", text("language_rights")),
        ("community", text("roma")),
        ("gender", text("female")),
        ("urgency", text("medium")),
        ("phone", text("+383 44 000 111")),
        (
            "narrative",
            text("Në zyrën e gjendjes civile nuk i dhanë formularin në gjuhën serbe."),
        ),
    ]);
    device.edit(id, |e| e.set_status(ReviewStatus::Submitted, None));
    id
}

#[test]
fn a_supervisor_settles_a_conflict_approves_and_exports_and_the_field_sees_it() {
    let started = Instant::now();
    let server = TestServer::start();
    server.add_user("vesa", Role::Supervisor, Some("prizren"));
    let mut phone = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let conflicted = intake(&mut phone, "Ђорђе Ђорђевић", "prizren");
    let other = intake(&mut phone, "Shpresa Gërguri", "gjakove");
    phone.sync().unwrap();
    // Her second device (a tablet) changes the urgency while the phone does too,
    // both offline: a conflict the supervisor must settle.
    let code = intake_server::admin::new_code(server.storage.as_ref(), "drita", 60)
        .unwrap()
        .enrolment_code;
    let mut tablet = TestDevice::enroll_with_code(&server, "drita", &code);
    tablet.sync().unwrap();
    phone.edit(conflicted, |e| e.set("urgency", text("high")));
    tablet.edit(conflicted, |e| e.set("urgency", text("critical")));
    phone.sync().unwrap();
    tablet.sync().unwrap();

    let browser = Browser::start();
    sign_in(&browser, &server, "vesa");
    // Filter: only records with conflicts.
    browser.goto(&format!("{}/records", server.url));
    browser.select("select[name=conflicts]", "yes");
    browser.submit_form("form.filters");
    browser.wait_until(
        "return location.search.includes('conflicts=yes') && document.readyState === 'complete'",
    );
    let rows = browser.texts("table.records tbody tr");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("Ђорђе Ђорђевић"));
    browser.click("table.records tbody a");
    browser.wait_until("return document.querySelector('section.conflicts') !== null");
    assert!(browser.current_url().contains(&conflicted.to_string()));
    let values = browser.texts("section.conflicts li");
    assert_eq!(values.len(), 2, "{values:?}");
    assert!(
        values.iter().all(|v| v.contains("drita")),
        "each value names its author"
    );
    // Settle it with the tablet's value.
    let critical = browser.eval(
        "return [...document.querySelectorAll('section.conflicts li form')]
            .findIndex(f => f.querySelector('input[name=value]').value === 'critical')",
    );
    let n = critical.as_i64().expect("the value critical is offered") + 1;
    browser.click(&format!("section.conflicts li:nth-child({n}) button"));
    browser.wait_until(
        "return location.search.includes('done=resolved') && document.readyState === 'complete'",
    );
    assert!(
        !browser.texts(".notice").is_empty(),
        "the page says it is settled"
    );
    assert!(
        browser.texts("section.conflicts").is_empty(),
        "no conflict left"
    );

    // Approve the other record.
    browser.goto(&format!("{}/records/{other}", server.url));
    browser.click("button[value=approved]");
    browser.wait_until(
        "return location.search.includes('done=approved') && document.readyState === 'complete'",
    );

    // Export CSV with the browser's own session.
    let session = browser
        .cookies()
        .into_iter()
        .find(|c| c.name == "intake_session")
        .expect("the session cookie");
    let csv = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/export.csv?headers=labels", server.url))
        .header("Cookie", format!("intake_session={}", session.value))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let file = browser.dir().join("export.csv");
    std::fs::write(&file, &csv).unwrap();
    // Python's csv module, as an office's script or spreadsheet import reads it.
    let script = r#"
import csv, sys
with open(sys.argv[1], encoding="utf-8-sig", newline="") as f:
    rows = list(csv.DictReader(f))
print(len(rows))
print("|".join(rows[0].keys()))
print("|".join(sorted(r.get("Komuna", "") for r in rows)))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "2", "{out}");
    assert!(
        lines[1].contains("Komuna"),
        "headers are labels in Albanian: {}",
        lines[1]
    );
    assert!(
        !lines[1].contains("Emri dhe mbiemri"),
        "no name column by default: {}",
        lines[1]
    );
    assert!(
        !lines[1].contains("Numri i telefonit"),
        "no phone column by default: {}",
        lines[1]
    );
    assert_eq!(lines[2], "Gjakovë|Prizren", "diacritics intact: {out}");

    // The field sees both decisions after its next sync.
    phone.sync().unwrap();
    let settled = phone.record(conflicted);
    assert_eq!(settled.get("urgency"), Some(text("critical")));
    assert!(!settled.has_conflicts());
    assert_eq!(phone.record(other).status(), ReviewStatus::Approved);
    eprintln!(
        "browser flow (sign in, filter, resolve, approve, export, field sync): {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn hostile_names_and_narratives_stay_inert_in_every_page() {
    let server = TestServer::start();
    server.add_user("vesa", Role::Supervisor, Some("prizren"));
    let mut phone = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let name = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">";
    let narrative = "\"><svg onload=\"window.pwned=3\"><img src=x onerror=window.pwned=4>";
    let ids: Vec<_> = (0..2)
        .map(|_| {
            let id = phone.create(&[
                ("full_name", text(name)),
                ("consent_intake", Value::Bool(true)),
                ("narrative", text(narrative)),
                ("municipality", text("prizren")),
                ("birth_year", Value::Int(1988)),
            ]);
            phone.edit(id, |e| e.add_comment(narrative));
            id
        })
        .collect();
    phone.sync().unwrap();
    let browser = Browser::start();
    sign_in(&browser, &server, "vesa");
    for path in [
        "/records".to_string(),
        format!("/records?q={}", intake_server::web::encode("<script>")),
        format!("/records/{}", ids[0]),
        format!("/records/{}?history=narrative", ids[0]),
        format!("/records/{}?history=full_name", ids[0]),
        "/duplicates".to_string(),
        "/summary".to_string(),
    ] {
        browser.goto(&format!("{}{path}", server.url));
        let dom = browser.eval(
            "return {
                pwned: typeof window.pwned,
                scripts: document.scripts.length,
                imgs: document.querySelectorAll('img[src=x]').length,
                svgs: document.querySelectorAll('svg[onload]').length,
                handlers: [...document.querySelectorAll('*')].filter(e =>
                    [...e.attributes].some(a => a.name.startsWith('on'))).length,
            }",
        );
        assert_eq!(dom["pwned"], "undefined", "{path}: {dom}");
        assert_eq!(dom["scripts"], 0, "{path}: {dom}");
        assert_eq!(dom["imgs"], 0, "{path}: {dom}");
        assert_eq!(dom["svgs"], 0, "{path}: {dom}");
        assert_eq!(dom["handlers"], 0, "{path}: {dom}");
    }
    // The text itself is shown, as text.
    browser.goto(&format!("{}/records/{}", server.url, ids[0]));
    assert!(
        browser
            .text("h1")
            .contains("<script>window.pwned=1</script>")
    );
}

#[test]
fn screenshots_of_the_list_a_conflict_and_the_donor_summary() {
    let server = TestServer::start();
    server.add_user("vesa", Role::Supervisor, Some("prizren"));
    let mut phone = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let people = [
        (
            "Ђорђе Ђорђевић",
            "gracanice",
            "serb",
            "male",
            "language_rights",
        ),
        (
            "Shpresa Gërguri",
            "gjakove",
            "ashkali",
            "female",
            "civil_documentation",
        ),
        (
            "Elmaze Berisha",
            "prizren",
            "roma",
            "female",
            "school_segregation",
        ),
        (
            "Fatmire Krasniqi",
            "prizren",
            "egyptian",
            "female",
            "school_segregation",
        ),
        (
            "Sabit Gashi",
            "ferizaj",
            "roma",
            "male",
            "civil_documentation",
        ),
        (
            "Merita Hoxha",
            "prizren",
            "ashkali",
            "female",
            "school_segregation",
        ),
        (
            "Драгана Јовановић",
            "gracanice",
            "serb",
            "female",
            "language_rights",
        ),
        (
            "Arbër Kelmendi",
            "prizren",
            "roma",
            "male",
            "social_assistance",
        ),
        (
            "Zana Morina",
            "gjakove",
            "egyptian",
            "female",
            "civil_documentation",
        ),
        (
            "Luljeta Rama",
            "prizren",
            "roma",
            "female",
            "school_segregation",
        ),
        (
            "Ćamil Đurić",
            "prizren",
            "bosniak",
            "male",
            "lgbtq_discrimination",
        ),
        (
            "Ana Petrović",
            "gracanice",
            "serb",
            "female",
            "language_rights",
        ),
    ];
    let mut ids = Vec::new();
    for (name, municipality, community, gender, issue) in people {
        let id = phone.create(&[
            ("full_name", text(name)),
            ("consent_intake", Value::Bool(true)),
            ("municipality", text(municipality)),
            ("community", text(community)),
            ("gender", text(gender)),
            ("issue_type", text(issue)),
            ("urgency", text("medium")),
            ("birth_year", Value::Int(1985)),
        ]);
        phone.edit(id, |e| e.set_status(ReviewStatus::Submitted, None));
        ids.push(id);
    }
    phone.sync().unwrap();
    let code = intake_server::admin::new_code(server.storage.as_ref(), "drita", 60)
        .unwrap()
        .enrolment_code;
    let mut tablet = TestDevice::enroll_with_code(&server, "drita", &code);
    tablet.sync().unwrap();
    phone.edit(ids[1], |e| e.set("urgency", text("high")));
    tablet.edit(ids[1], |e| e.set("urgency", text("critical")));
    phone.sync().unwrap();
    tablet.sync().unwrap();

    let browser = Browser::start();
    sign_in(&browser, &server, "vesa");
    browser.goto(&format!("{}/lang?to=sr-Cyrl&back=/records", server.url));
    assert_eq!(
        browser.eval("return document.documentElement.lang"),
        "sr-Cyrl"
    );
    shot(&browser, "list-sr-Cyrl.png");
    browser.goto(&format!(
        "{}/lang?to=sq&back=/records/{}",
        server.url, ids[1]
    ));
    assert!(!browser.texts("section.conflicts").is_empty());
    shot(&browser, "record-conflict-sq.png");
    browser.goto(&format!("{}/lang?to=en&back=/summary", server.url));
    assert!(browser.text("h1").contains("Donor"));
    shot(&browser, "donor-summary-en.png");
    // The list on a phone: no sideways scrolling of the page itself.
    browser.set_width(intake_tests::browser::MOBILE_WIDTH);
    browser.goto(&format!("{}/records", server.url));
    let overflow =
        browser.eval("return document.documentElement.scrollWidth <= window.innerWidth + 1");
    assert_eq!(overflow, true, "the page fits a 360 px screen");
}
