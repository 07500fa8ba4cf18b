//! The supervisors' dashboard over real HTTP, as a browser without JavaScript uses it:
//! signing in with a password set by a one-time code, cookies and CSRF, the record
//! list's filters and search, review actions that reach the field on the next sync,
//! exports, the donor summary, the audit trail, and what other teams never see.
//! (`dashboard_browser.rs` drives the same pages in a real headless Chromium.)

use intake_server::storage::{AuditFilter, Role};
use intake_shared::{ReviewStatus, Value};
use intake_tests::craft::text;
use intake_tests::dashboard::{Dashboard, PASSWORD, hidden};
use intake_tests::{TestDevice, TestServer};

/// A paralegal of team `prizren` with a submitted record per name.
fn field_work(server: &TestServer, names: &[&str]) -> (TestDevice, Vec<intake_shared::RecordId>) {
    let mut drita = TestDevice::enroll(server, "drita", Role::Paralegal, Some("prizren"));
    let ids = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let id = drita.create(&[
                ("full_name", text(*name)),
                ("consent_intake", Value::Bool(true)),
                (
                    "municipality",
                    text(if i % 2 == 0 { "prizren" } else { "gjakove" }),
                ),
                ("issue_type", text("school_segregation")),
                ("birth_year", Value::Int(1990)),
                ("phone", text("+383 44 123 456")),
            ]);
            drita.edit(id, |e| e.set_status(ReviewStatus::Submitted, None));
            id
        })
        .collect();
    drita.sync().expect("sync");
    (drita, ids)
}

#[test]
fn a_password_is_set_with_a_one_time_code_and_sign_in_sets_a_strict_cookie() {
    let server = TestServer::start();
    server.add_user("vesa", Role::Supervisor, Some("prizren"));
    let code = intake_server::admin::sign_in_code(server.storage.as_ref(), "vesa", 60)
        .unwrap()
        .code;
    let d = Dashboard::new(&server);
    assert_eq!(
        d.get("/records").status,
        303,
        "not signed in: to the sign-in page"
    );
    assert_eq!(d.set_password("WRONG-CODE-0000", PASSWORD).status, 400);
    assert_eq!(d.set_password(&code, "short").status, 400, "too short");
    assert_eq!(
        d.set_password(&code, "aaaaaaaaaaaaaa").status,
        400,
        "guessable"
    );
    assert_eq!(d.set_password(&code, PASSWORD).status, 200);
    assert_eq!(
        d.set_password(&code, "another good phrase 77").status,
        400,
        "a code works once"
    );

    let wrong = d.sign_in("vesa", "not her password at all");
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .headers
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap().contains("intake_session="))
    );
    let ok = d.sign_in("vesa", PASSWORD);
    assert_eq!(ok.status, 303, "{}", ok.body);
    let cookie = ok
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("intake_session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );
    let list = d.get("/records");
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.headers["cache-control"], "no-store");
    assert!(
        list.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );

    // A paralegal has no dashboard at all.
    server.add_user("drita", Role::Paralegal, Some("prizren"));
    assert!(intake_server::admin::sign_in_code(server.storage.as_ref(), "drita", 60).is_err());
}

#[test]
fn forms_without_the_sessions_csrf_token_change_nothing() {
    let server = TestServer::start();
    let (_drita, ids) = field_work(&server, &["Arta Berisha"]);
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let path = format!("/records/{}/review", ids[0]);
    for token in ["", "0000"] {
        let refused = vesa.post(&path, &[("csrf", token), ("outcome", "approved")]);
        assert_eq!(refused.status, 403, "{}", refused.body);
    }
    // Another session's token is no better.
    let other = Dashboard::new(&server);
    assert_eq!(other.sign_in("vesa", PASSWORD).status, 303);
    let foreign = other.get(&format!("/records/{}", ids[0])).csrf();
    let refused = vesa.post(
        &path,
        &[("csrf", foreign.as_str()), ("outcome", "approved")],
    );
    assert_eq!(refused.status, 403);
    let stored = server.storage.record(ids[0]).unwrap().unwrap();
    let record =
        intake_shared::Record::load(&stored.doc, intake_shared::FormRegistry::builtin()).unwrap();
    assert_eq!(record.status(), ReviewStatus::Submitted);

    // The sign-in form is bound to its own cookie: a forged sign-in is refused.
    let fresh = Dashboard::new(&server);
    let forged = fresh.post(
        "/login",
        &[
            ("pre", "forged"),
            ("username", "vesa"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(forged.status, 403);
}

#[test]
fn wrong_passwords_are_limited_per_account_and_audited() {
    let server = TestServer::start();
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let d = Dashboard::new(&server);
    for _ in 0..10 {
        assert_eq!(d.sign_in("vesa", "a wrong guess here").status, 401);
    }
    let blocked = d.sign_in("vesa", PASSWORD);
    assert_eq!(blocked.status, 429, "even the right password waits now");
    assert!(blocked.headers.contains_key("retry-after"));
    // Her existing session is not affected.
    assert_eq!(vesa.get("/records").status, 200);
    let (entries, _) = server
        .storage
        .audit_entries(
            &AuditFilter {
                action: Some("sign_in_failed".into()),
                ..AuditFilter::default()
            },
            0,
            100,
        )
        .unwrap();
    assert_eq!(entries.len(), 10);
    assert!(
        entries
            .iter()
            .all(|(_, e)| e.user.as_deref() == Some("vesa"))
    );
}

#[test]
fn signing_out_or_being_disabled_ends_the_session() {
    let server = TestServer::start();
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let page = vesa.get("/records");
    assert_eq!(page.status, 200);
    let out = vesa.post("/sign-out", &[("csrf", page.csrf().as_str())]);
    assert_eq!(out.status, 303);
    assert_eq!(vesa.get("/records").status, 303);

    let again = Dashboard::with_password(&server, "vesa");
    assert_eq!(again.get("/records").status, 200);
    server.storage.set_user_disabled("vesa", true).unwrap();
    assert_eq!(
        again.get("/records").status,
        303,
        "disabled: signed out at once"
    );
}

#[test]
fn the_list_filters_and_finds_a_name_in_any_script_or_spelling() {
    let server = TestServer::start();
    let (_drita, ids) = field_work(
        &server,
        &[
            "Đorđe Đorđević",
            "Djordje Djordjevic",
            "Ђорђе Ђорђевић",
            "Arta Berisha",
        ],
    );
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let all = vesa.get("/records");
    assert_eq!(all.status, 200);
    for id in &ids {
        assert!(all.body.contains(&id.to_string()));
    }
    for q in ["Ђорђевић", "djordjevic", "ĐORĐEVIĆ"] {
        let found = vesa.get(&format!("/records?q={}", intake_server::web::encode(q)));
        let n = ids[..3]
            .iter()
            .filter(|id| found.body.contains(&id.to_string()))
            .count();
        assert_eq!(n, 3, "{q} finds all three spellings");
        assert!(
            !found.body.contains(&ids[3].to_string()),
            "{q} does not find Arta"
        );
    }
    let gjakove = vesa.get("/records?municipality=gjakove");
    assert!(gjakove.body.contains(&ids[1].to_string()));
    assert!(!gjakove.body.contains(&ids[0].to_string()));
    let bad = vesa.get("/records?from=yesterday");
    assert_eq!(
        bad.status, 400,
        "a malformed date is an error, not an empty list"
    );

    // Another team's supervisor sees none of it, and a record page answers as missing.
    let other = Dashboard::supervisor(&server, "besa", "peje");
    let theirs = other.get("/records");
    assert!(ids.iter().all(|id| !theirs.body.contains(&id.to_string())));
    assert_eq!(other.get(&format!("/records/{}", ids[0])).status, 404);
    assert_eq!(other.get("/records/not-an-id").status, 404);
}

#[test]
fn a_review_from_the_dashboard_reaches_the_paralegals_device() {
    let server = TestServer::start();
    let (mut drita, ids) = field_work(&server, &["Arta Berisha", "Lule Krasniqi"]);
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let page = format!("/records/{}", ids[0]);
    let approved = vesa.submit(&page, &format!("{page}/review"), &[("outcome", "approved")]);
    assert_eq!(approved.status, 303, "{}", approved.body);
    assert_eq!(
        approved.location.as_deref(),
        Some(format!("{page}?done=approved").as_str())
    );
    let page2 = format!("/records/{}", ids[1]);
    let no_note = vesa.submit(
        &page2,
        &format!("{page2}/review"),
        &[("outcome", "needs_changes")],
    );
    assert!(
        no_note.location.unwrap().contains("error=note"),
        "sending back needs a note"
    );
    let sent_back = vesa.submit(
        &page2,
        &format!("{page2}/review"),
        &[
            ("outcome", "needs_changes"),
            ("note", "Ask again for consent to share."),
        ],
    );
    assert_eq!(sent_back.status, 303);
    let commented = vesa.submit(
        &page2,
        &format!("{page2}/comment"),
        &[("text", "Call before visiting.")],
    );
    assert_eq!(commented.status, 303);

    drita.sync().unwrap();
    let mut first = drita.record(ids[0]);
    assert_eq!(first.status(), ReviewStatus::Approved);
    let mut second = drita.record(ids[1]);
    assert_eq!(second.status(), ReviewStatus::NeedsChanges);
    assert_eq!(
        second.review_note().as_deref(),
        Some("Ask again for consent to share.")
    );
    let comments = second.comments();
    assert_eq!(comments.len(), 1);
    assert_eq!(
        comments[0].author.as_deref(),
        Some("vesa"),
        "the author is the supervisor"
    );
    let _ = first.heads();
    // The comment names her, from her dashboard device.
    let shown = vesa.get(&page2);
    assert!(shown.body.contains("vesa (dashboard)"), "{}", shown.body);
}

/// A supervisor whose answer was lost (the network, a server restart) posts the same
/// form again: its one-time token makes the second post answer as the first did, with
/// nothing written twice — not the change, not its audit entry. A new form is a new
/// action.
#[test]
fn a_form_posted_again_is_answered_as_before_and_stored_once() {
    let server = TestServer::start();
    let (mut drita, ids) = field_work(&server, &["Arta Berisha"]);
    let id = ids[0];
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let page = format!("/records/{id}");
    let text = [("text", "Call before visiting.")];

    let comment = vesa.form(&page, &format!("{page}/comment"));
    assert!(
        comment.once.is_some(),
        "the comment form has a one-time token"
    );
    let first = vesa.submit_form(&comment, &text);
    assert_eq!(first.status, 303, "{}", first.body);
    let again = vesa.submit_form(&comment, &text);
    assert_eq!(
        (again.status, again.location.as_deref()),
        (303, Some(format!("{page}?done=comment").as_str())),
        "the same form again answers as the first time"
    );
    let review = vesa.form(&page, &format!("{page}/review"));
    let note = [
        ("outcome", "needs_changes"),
        ("note", "Ask again for consent."),
    ];
    for _ in 0..2 {
        let r = vesa.submit_form(&review, &note);
        assert_eq!(r.location, Some(format!("{page}?done=needs_changes")));
    }
    // Another form (a fresh page): another comment.
    let second = vesa.submit(&page, &format!("{page}/comment"), &text);
    assert_eq!(second.status, 303, "{}", second.body);

    let entries = |action: &str| {
        let filter = AuditFilter {
            action: Some(action.into()),
            record: Some(id),
            ..AuditFilter::default()
        };
        server.storage.audit_entries(&filter, 0, 100).unwrap().1
    };
    assert_eq!(entries("comment"), 2, "one audit entry per comment stored");
    assert_eq!(
        entries("review"),
        1,
        "one audit entry for the review posted twice"
    );
    drita.sync().unwrap();
    for (who, mut r) in [
        ("server", {
            let stored = server.storage.record(id).unwrap().unwrap();
            intake_shared::Record::load(&stored.doc, intake_shared::FormRegistry::builtin())
                .unwrap()
        }),
        ("drita", drita.record(id)),
    ] {
        let texts: Vec<String> = r.comments().into_iter().map(|c| c.text).collect();
        assert_eq!(texts, vec![text[0].1; 2], "{who}: two forms, two comments");
    }
}

/// The same form posted several times at once (a double tap, a browser retrying while
/// the first is still in flight): every post gets the first answer, nothing is stored
/// twice, and none is an error.
#[test]
fn the_same_form_posted_at_once_is_stored_once_and_every_post_answered() {
    let server = TestServer::start();
    let (_drita, ids) = field_work(&server, &["Arta Berisha"]);
    let id = ids[0];
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let page = format!("/records/{id}");
    let comment = vesa.form(&page, &format!("{page}/comment"));
    let answers: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let posts: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let r = vesa.submit_form(&comment, &[("text", "Call first.")]);
                    (r.status, r.location)
                })
            })
            .collect();
        posts.into_iter().map(|p| p.join().unwrap()).collect()
    });
    for a in &answers {
        assert_eq!(
            a,
            &(303, Some(format!("{page}?done=comment"))),
            "{answers:?}"
        );
    }
    let stored = server.storage.record(id).unwrap().unwrap();
    let mut r =
        intake_shared::Record::load(&stored.doc, intake_shared::FormRegistry::builtin()).unwrap();
    assert_eq!(r.comments().len(), 1, "one comment for one form");
    let filter = AuditFilter {
        action: Some("comment".into()),
        record: Some(id),
        ..AuditFilter::default()
    };
    assert_eq!(server.storage.audit_entries(&filter, 0, 100).unwrap().1, 1);
}

#[test]
fn exports_leave_sensitive_fields_out_unless_ticked() {
    let server = TestServer::start();
    let (_drita, ids) = field_work(&server, &["Ђорђе Ђорђевић", "Arta Gërguri"]);
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let csv = vesa.get("/export.csv?headers=codes");
    assert_eq!(csv.status, 200);
    assert!(
        csv.body.starts_with('\u{feff}'),
        "a BOM for spreadsheet apps"
    );
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let header = csv.body.lines().next().unwrap();
    assert!(header.contains("municipality"));
    for sensitive in ["full_name", "phone", "personal_id_number", "narrative"] {
        assert!(
            !header.contains(sensitive),
            "{sensitive} left out by default: {header}"
        );
    }
    assert!(!csv.body.contains("+383"));
    let with = vesa.get("/export.csv?headers=codes&sensitive=yes");
    assert!(with.body.contains("Ђорђе Ђорђевић") && with.body.contains("Arta Gërguri"));
    let json: serde_json::Value =
        serde_json::from_str(&vesa.get("/export.json?municipality=prizren").body).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["id"], ids[0].to_string());
    assert!(json[0]["fields"].get("full_name").is_none());

    // Every export is in the audit trail with its filter.
    let (entries, _) = server
        .storage
        .audit_entries(
            &AuditFilter {
                action: Some("export".into()),
                ..AuditFilter::default()
            },
            0,
            10,
        )
        .unwrap();
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .iter()
            .any(|(_, e)| e.scope.contains("municipality=prizren")
                && e.scope.contains("format=json"))
    );
    assert!(
        entries
            .iter()
            .any(|(_, e)| e.scope.contains("sensitive=yes"))
    );
}

#[test]
fn the_donor_summary_hides_counts_under_five() {
    let server = TestServer::start();
    let names: Vec<String> = (0..8).map(|i| format!("Person {i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    field_work(&server, &refs);
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let page = vesa.get("/summary");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<svg"), "bars drawn on the server");
    let csv = vesa.get("/summary.csv").body;
    // 4 in Prizren and 4 in Gjakovë: both under 5.
    let line = |dim: &str, value: &str| {
        csv.lines()
            .find(|l| l.starts_with(&format!("{dim},\"{value}\"")))
            .unwrap_or_else(|| panic!("{dim}={value} in {csv}"))
            .to_string()
    };
    assert!(line("municipality", "prizren").ends_with(",<5"));
    assert!(line("issue_type", "school_segregation").ends_with(",8"));
    assert!(csv.contains("total,,,8"));
}

#[test]
fn the_audit_trail_is_read_by_admins_only_and_cannot_be_rewritten() {
    let server = TestServer::start();
    let (_drita, ids) = field_work(&server, &["Arta Berisha"]);
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    assert_eq!(vesa.get(&format!("/records/{}", ids[0])).status, 200);
    assert_eq!(
        vesa.get("/admin/audit").status,
        403,
        "supervisors do not read the trail"
    );
    let admin = Dashboard::with_password(&server, "admin");
    let trail = admin.get("/admin/audit?user=vesa");
    assert_eq!(trail.status, 200);
    assert!(trail.body.contains("view_record") && trail.body.contains("sign_in"));
    assert_eq!(admin.get("/records").status, 403, "admins see no records");
    // The trail is append-only in the database itself.
    let mut db = server.db();
    assert!(db.count("SELECT count(*) FROM audit", &[]) > 0);
    assert!(db.execute("DELETE FROM audit", &[]).is_err());
    assert!(
        db.execute("UPDATE audit SET \"user\" = 'nobody'", &[])
            .is_err()
    );
}

#[test]
fn user_content_is_escaped_on_every_page() {
    let server = TestServer::start();
    let payload = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">";
    // Three, so that the first and the third are duplicate hints of each other.
    let (_drita, ids) = field_work(&server, &[payload, payload, payload]);
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    for path in [
        "/records".to_string(),
        format!("/records/{}", ids[0]),
        format!("/records/{}?history=full_name", ids[0]),
        "/duplicates".to_string(),
    ] {
        let page = vesa.get(&path);
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains("<script>window"), "{path}");
        assert!(!page.body.contains("<img src=x"), "{path}");
        assert!(
            page.body.contains("&lt;script&gt;"),
            "{path} shows the text"
        );
    }
}

#[test]
fn pages_stay_small() {
    let server = TestServer::start();
    let names: Vec<String> = (0..60).map(|i| format!("Klienti Numër {i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (_drita, ids) = field_work(&server, &refs);
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let admin = Dashboard::with_password(&server, "admin");
    let mut weights = Vec::new();
    for (who, path) in [
        (&vesa, "/records".to_string()),
        (&vesa, format!("/records/{}", ids[0])),
        (&vesa, "/summary".to_string()),
        (&vesa, "/duplicates".to_string()),
        (&admin, "/admin/users".to_string()),
        (&admin, "/admin/devices".to_string()),
        (&admin, "/admin/audit".to_string()),
    ] {
        let page = who.get(&path);
        assert_eq!(page.status, 200, "{path}");
        weights.push((path.clone(), page.body.len()));
        assert!(
            page.body.len() < 60 * 1024,
            "{path}: {} bytes",
            page.body.len()
        );
    }
    eprintln!("page weights: {weights:?}");
    assert!(hidden(&vesa.get("/records").body, "csrf").is_some());
}

#[test]
fn probable_duplicates_are_hinted_and_a_link_shows_from_both_sides() {
    let server = TestServer::start();
    // The first and the third: same person (name in two scripts), year, municipality.
    let (_drita, ids) = field_work(
        &server,
        &["Драгана Јовановић", "Arta Berisha", "dragana jovanovic"],
    );
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let hints = vesa.get("/duplicates");
    assert!(hints.body.contains(&ids[0].to_string()) && hints.body.contains(&ids[2].to_string()));
    assert!(!hints.body.contains(&ids[1].to_string()));
    let page = format!("/records/{}", ids[0]);
    assert!(
        vesa.get(&page)
            .body
            .contains(&format!("name=\"other\" value=\"{}\"", ids[2]))
    );
    let linked = vesa.submit(
        &page,
        &format!("{page}/link"),
        &[("other", &ids[2].to_string())],
    );
    assert_eq!(linked.status, 303);
    let other = vesa.get(&format!("/records/{}", ids[2]));
    assert!(
        other
            .body
            .contains(&format!("href=\"/records/{}\"", ids[0])),
        "the link shows from the other side"
    );
    // Another team cannot link to (or learn of) these records.
    let besa = Dashboard::supervisor(&server, "besa", "peje");
    let refused = besa.post(
        &format!("{page}/link"),
        &[("csrf", "x"), ("other", &ids[2].to_string())],
    );
    assert_eq!(refused.status, 403, "CSRF first");
    assert!(server.storage.linked(ids[0]).unwrap().contains(&ids[2]));
}

#[test]
fn two_supervisors_deciding_at_once_make_a_status_conflict_the_dashboard_settles() {
    let server = TestServer::start();
    let (mut drita, ids) = field_work(&server, &["Arta Berisha"]);
    let mut mira = TestDevice::enroll(&server, "mira", Role::Supervisor, Some("prizren"));
    mira.sync().unwrap();
    // Offline, Mira sends it back; meanwhile Vesa approves it in the dashboard.
    mira.edit(ids[0], |e| {
        e.set_status(ReviewStatus::NeedsChanges, Some("check the dates"))
    });
    let vesa = Dashboard::supervisor(&server, "vesa", "prizren");
    let page = format!("/records/{}", ids[0]);
    assert_eq!(
        vesa.submit(&page, &format!("{page}/review"), &[("outcome", "approved")])
            .status,
        303
    );
    mira.sync().unwrap();

    let shown = vesa.get(&page);
    assert!(
        shown.body.contains("data-field=\"status\""),
        "a status conflict is shown"
    );
    assert!(
        vesa.get("/records?conflicts=yes")
            .body
            .contains(&ids[0].to_string())
    );
    let settled = vesa.submit(
        &page,
        &format!("{page}/resolve"),
        &[("field", "status"), ("value", "needs_changes")],
    );
    assert_eq!(
        settled.location.as_deref(),
        Some(format!("{page}?done=resolved").as_str())
    );
    assert!(!vesa.get(&page).body.contains("data-field=\"status\""));
    drita.sync().unwrap();
    let record = drita.record(ids[0]);
    assert_eq!(record.status(), ReviewStatus::NeedsChanges);
    assert!(!record.has_conflicts());
}
