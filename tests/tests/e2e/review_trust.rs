//! The review workflow's trust rules, end to end against the real server (issue 10,
//! step 1): a change carries its own user's name or none; comments and follow-up
//! actions only grow; the status moves only as the writer's role allows from what the
//! writer saw, and never away from an approved, rejected or closed case by a
//! paralegal; two concurrent review decisions are a visible conflict, not a silent
//! winner; an assignee is an enabled user of the record's team.
//!
//! Every refusal is checked to the word (reason and message) and to leave the stored
//! record exactly as it was. Changes an honest app never makes are crafted with
//! Automerge directly; the rest are made with the record API or by real devices.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc};
use chrono::Utc;
use intake_server::storage::Role;
use intake_shared::protocol::{Outcome, RecordChanges, Rejection};
use intake_shared::record::Identity;
use intake_shared::{FormRegistry, Record, RecordId, ReviewStatus, Value};
use intake_tests::craft::{
    edit_of, identity, load, new_record, push, push_of, raw_change, record_id, text, wire,
};
use intake_tests::{Cell, Enrolled, TestDevice, TestServer};

/// The object at `key` of the root (a list or map the record was created with).
fn root_obj(doc: &AutoCommit, key: &str) -> ObjId {
    doc.get(ROOT, key).unwrap().expect("present").1
}

/// Entry `i` of the root list `list` (a comment or an action).
fn entry(doc: &AutoCommit, list: &str, i: usize) -> ObjId {
    let list = root_obj(doc, list);
    doc.get(&list, i).unwrap().expect("present").1
}

fn refused(reason: Rejection, message: &str) -> Outcome {
    Outcome::Rejected {
        reason,
        message: message.into(),
    }
}

/// Pushes each case and checks its outcome; a refused one must leave the record's
/// stored heads, document and metadata as they were (and a refused new record must
/// leave nothing). Returns the failures, described.
fn judge_all(
    server: &TestServer,
    cases: Vec<(&str, &Enrolled, RecordChanges, Outcome)>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (what, dev, changes, want) in cases {
        let id = RecordId::from_wire(&changes.record);
        let before = server.storage.record(id).unwrap();
        let got = push(server, &dev.token, changes);
        if got != want {
            // Shown at once too: a later step may not be reachable after this one.
            eprintln!("{what}: {got:?}, expected {want:?}");
            failures.push(format!("{what}: {got:?}, expected {want:?}"));
        }
        if want != Outcome::Stored {
            let after = server.storage.record(id).unwrap();
            let same = match (&before, &after) {
                (Some(b), Some(a)) => b.heads == a.heads && b.doc == a.doc && b.meta == a.meta,
                (None, None) => true,
                _ => false,
            };
            if !same {
                failures.push(format!("{what}: the refused push changed what is stored"));
            }
        }
    }
    failures
}

// ---------------------------------------------------------------------------------
// Rule 1: the author is the device's user.

#[test]
fn a_change_signed_with_another_users_name_is_refused() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let merita = server.user_device("merita", Role::Supervisor, Some("prizren"));
    let mut r = new_record(&identity(&drita, "drita", 1), 1);
    assert_eq!(
        push(&server, &drita.token, push_of(&mut r, &[])),
        Outcome::Stored
    );

    let foreign_author = refused(
        Rejection::ForeignActor,
        "a change names as its author someone who is not this device's user",
    );
    // Drita's own device, her own actor, but the supervisor's name on the change.
    let as_merita = identity(&drita, "merita", 2);
    let mut impostor = new_record(&as_merita, 2);
    let nameless = Identity {
        author: None,
        ..identity(&drita, "drita", 6)
    };
    let cases = vec![
        (
            "drita's device approving in merita's name",
            &drita,
            raw_change(&r, &as_merita, |d| d.put(ROOT, "status", "approved")),
            foreign_author.clone(),
        ),
        (
            "drita's device editing a field in merita's name",
            &drita,
            edit_of(&r, &identity(&drita, "merita", 3), |e| {
                e.set("village", text("Zhur"))
            }),
            foreign_author.clone(),
        ),
        (
            "merita's device commenting in drita's name",
            &merita,
            edit_of(&r, &identity(&merita, "drita", 4), |e| {
                e.add_comment("looks fine")
            }),
            foreign_author.clone(),
        ),
        (
            "a new record in merita's name",
            &drita,
            push_of(&mut impostor, &[]),
            foreign_author.clone(),
        ),
        (
            "the name differs only in case",
            &drita,
            edit_of(&r, &identity(&drita, "Drita", 5), |e| {
                e.set("village", text("Zhur"))
            }),
            foreign_author,
        ),
        // Made before the device knew its user: no author at all. Accepted, and the
        // server's log attributes it to the device, hence to drita.
        (
            "no author",
            &drita,
            edit_of(&r, &nameless, |e| e.set("village", text("Landovica"))),
            Outcome::Stored,
        ),
        (
            "her own name",
            &drita,
            edit_of(&r, &identity(&drita, "drita", 7), |e| {
                e.set("urgency", text("high"))
            }),
            Outcome::Stored,
        ),
    ];
    let failures = judge_all(&server, cases);
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(server.storage.record(impostor.id()).unwrap().is_none());

    // The nameless change is in the log under drita's device.
    let mut db = server.db();
    let stored = load(&server, &merita.token, r.id());
    assert_eq!(stored.get("village"), Some(text("Landovica")));
    let devices: Vec<i64> = db
        .rows(
            "SELECT DISTINCT device_id FROM log WHERE record_id = ?1",
            &[Cell::Bytes(wire(r.id()).to_vec())],
        )
        .iter()
        .map(|row| row[0].int())
        .collect();
    assert_eq!(devices, vec![drita.device_id]);
}

// ---------------------------------------------------------------------------------
// Rule 2: comments and actions only grow.

#[test]
fn comments_and_actions_only_grow() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let merita = server.user_device("merita", Role::Supervisor, Some("prizren"));
    let me = identity(&drita, "drita", 1);
    let mut r = new_record(&me, 1);
    let followup = FormRegistry::builtin().latest("followup").unwrap();
    r.edit(Utc::now(), |e| {
        e.add_comment("Met her at the school gate")?;
        e.add_action(
            &followup,
            &[
                ("date".to_string(), text("2026-04-20")),
                ("type".to_string(), text("visit")),
            ]
            .into_iter()
            .collect(),
        )
    })
    .unwrap();
    assert_eq!(
        push(&server, &drita.token, push_of(&mut r, &[])),
        Outcome::Stored
    );

    let comments = |message: &str| {
        refused(
            Rejection::ProtectedField,
            &format!("comments are append-only: {message}"),
        )
    };
    let actions = |message: &str| {
        refused(
            Rejection::ProtectedField,
            &format!("actions are append-only: {message}"),
        )
    };
    const DELETE: &str = "a change may not delete an entry";
    const REPLACE: &str = "a change may not replace an entry";
    const EDIT: &str = "a change may not edit an entry another change made";
    let sup = |n| identity(&merita, "merita", n);
    let mine = |n| identity(&drita, "drita", n);

    // A new record whose second change deletes the comment its first one made.
    let mut fresh = new_record(&mine(20), 2);
    fresh
        .edit(Utc::now(), |e| e.add_comment("first thoughts"))
        .unwrap();
    let mut fresh_push = push_of(&mut fresh, &[]);
    fresh_push.changes.extend(
        raw_change(&fresh, &mine(21), |d| {
            let list = root_obj(d, "comments");
            d.delete(&list, 0)
        })
        .changes,
    );

    let cases = vec![
        (
            "the supervisor deletes drita's comment",
            &merita,
            raw_change(&r, &sup(2), |d| {
                let list = root_obj(d, "comments");
                d.delete(&list, 0)
            }),
            comments(DELETE),
        ),
        (
            "the supervisor replaces drita's comment with another",
            &merita,
            raw_change(&r, &sup(3), |d| {
                let list = root_obj(d, "comments");
                let m = d.put_object(&list, 0, ObjType::Map)?;
                d.put(&m, "text", "nothing to see")
            }),
            comments(REPLACE),
        ),
        (
            "the supervisor rewrites the text of drita's comment",
            &merita,
            raw_change(&r, &sup(4), |d| {
                let c = entry(d, "comments", 0);
                d.put(&c, "text", "she was never there")
            }),
            comments(EDIT),
        ),
        (
            "drita rewrites her own earlier comment",
            &drita,
            raw_change(&r, &mine(5), |d| {
                let c = entry(d, "comments", 0);
                d.put(&c, "text", "Met her at home")
            }),
            comments(EDIT),
        ),
        (
            "drita removes the time of her comment",
            &drita,
            raw_change(&r, &mine(6), |d| {
                let c = entry(d, "comments", 0);
                d.delete(&c, "at")
            }),
            comments(EDIT),
        ),
        (
            "the supervisor hangs an object under drita's comment",
            &merita,
            raw_change(&r, &sup(7), |d| {
                let c = entry(d, "comments", 0);
                d.put_object(&c, "reply", ObjType::Map).map(drop)
            }),
            comments(EDIT),
        ),
        (
            "the supervisor deletes drita's action",
            &merita,
            raw_change(&r, &sup(8), |d| {
                let list = root_obj(d, "actions");
                d.delete(&list, 0)
            }),
            actions(DELETE),
        ),
        (
            "drita changes the type of her action",
            &drita,
            raw_change(&r, &mine(9), |d| {
                let a = entry(d, "actions", 0);
                d.put(&a, "type", "letter")
            }),
            actions(EDIT),
        ),
        (
            "drita adds an answer to her earlier action",
            &drita,
            raw_change(&r, &mine(10), |d| {
                let a = entry(d, "actions", 0);
                d.put(&a, "outcome", "resolved")
            }),
            actions(EDIT),
        ),
        (
            "a new record whose second change deletes its first comment",
            &drita,
            fresh_push,
            comments(DELETE),
        ),
        // What only grows the lists is accepted: the record API's append, and an
        // entry inserted before the others with its keys, in one change.
        (
            "the supervisor appends a comment",
            &merita,
            edit_of(&r, &sup(11), |e| e.add_comment("Call the director")),
            Outcome::Stored,
        ),
        (
            "drita inserts an action before the others, with its answers",
            &drita,
            raw_change(&r, &mine(12), |d| {
                let list = root_obj(d, "actions");
                let a = d.insert_object(&list, 0, ObjType::Map)?;
                d.put(&a, "form", "followup")?;
                d.put(&a, "form_version", 1_i64)?;
                d.put(&a, "type", "phone_call")
            }),
            Outcome::Stored,
        ),
    ];
    let failures = judge_all(&server, cases);
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(server.storage.record(record_id(2)).unwrap().is_none());
    let mut stored = load(&server, &merita.token, r.id());
    let texts: Vec<String> = stored.comments().into_iter().map(|c| c.text).collect();
    assert_eq!(texts, ["Met her at the school gate", "Call the director"]);
    assert_eq!(stored.actions().len(), 2);
}

// ---------------------------------------------------------------------------------
// Rule 3: status transitions.

#[test]
fn the_status_moves_only_as_the_role_allows_from_what_the_writer_saw() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let merita = server.user_device("merita", Role::Supervisor, Some("prizren"));
    let valbona = server.user_device("valbona", Role::Supervisor, Some("prizren"));
    let mine = |n| identity(&drita, "drita", n);
    let sup = |n| identity(&merita, "merita", n);
    let status = |s: &'static str| move |d: &mut AutoCommit| d.put(ROOT, "status", s);
    let protected = |message: &str| refused(Rejection::ProtectedField, message);

    let mut r = new_record(&mine(1), 1);
    assert_eq!(
        push(&server, &drita.token, push_of(&mut r, &[])),
        Outcome::Stored
    );
    let draft = r.clone();
    let mut failures = judge_all(
        &server,
        vec![
            (
                "drita approves her own draft",
                &drita,
                raw_change(&draft, &mine(2), status("approved")),
                protected("a paralegal may not change the status from draft to approved"),
            ),
            (
                "drita submits",
                &drita,
                edit_of(&draft, &mine(3), |e| {
                    e.set_status(ReviewStatus::Submitted, None)
                }),
                Outcome::Stored,
            ),
        ],
    );
    let submitted = load(&server, &drita.token, r.id());
    failures.extend(judge_all(
        &server,
        vec![
            (
                "drita takes her submission back to draft",
                &drita,
                raw_change(&submitted, &mine(4), status("draft")),
                protected("a paralegal may not change the status from submitted to draft"),
            ),
            (
                "merita sends it back",
                &merita,
                edit_of(&submitted, &sup(5), |e| {
                    e.set_status(ReviewStatus::NeedsChanges, Some("re-ask consent"))
                }),
                Outcome::Stored,
            ),
        ],
    ));
    // Drita sees "needs changes" and submits again offline. Meanwhile Valbona, who
    // saw only the submission, approves: from where each stood, each move is allowed,
    // and the server holds both decisions (a conflict). Drita's resubmission arrives
    // last: the case is approved now, so it is refused, although it was concurrent.
    let needs_changes = load(&server, &drita.token, r.id());
    let not_after_approval =
        protected("a paralegal may not change the status of a case that is approved");
    failures.extend(judge_all(
        &server,
        vec![
            (
                "valbona approves what she saw submitted",
                &valbona,
                raw_change(
                    &submitted,
                    &identity(&valbona, "valbona", 6),
                    status("approved"),
                ),
                Outcome::Stored,
            ),
            (
                "drita resubmits, not knowing it was approved",
                &drita,
                edit_of(&needs_changes, &mine(7), |e| {
                    e.set_status(ReviewStatus::Submitted, None)
                }),
                not_after_approval.clone(),
            ),
        ],
    ));
    // Merita settles the two decisions on approval: a status write from both values.
    let mut decided = load(&server, &merita.token, r.id());
    decided.set_identity(&sup(8));
    let before = decided.heads();
    decided
        .edit(Utc::now(), |e| e.set_status(ReviewStatus::Approved, None))
        .unwrap();
    failures.extend(judge_all(
        &server,
        vec![(
            "merita settles on approved",
            &merita,
            push_of(&mut decided, &before),
            Outcome::Stored,
        )],
    ));
    let approved = load(&server, &merita.token, r.id());
    failures.extend(judge_all(
        &server,
        vec![
            (
                "drita reopens the approved case",
                &drita,
                raw_change(&approved, &mine(9), status("submitted")),
                not_after_approval,
            ),
            (
                "merita sends the approved case back",
                &merita,
                raw_change(&approved, &sup(10), status("needs_changes")),
                protected("a supervisor may not change the status from approved to needs_changes"),
            ),
            (
                "merita closes the approved case",
                &merita,
                raw_change(&approved, &sup(11), status("closed")),
                Outcome::Stored,
            ),
        ],
    ));

    // A new record starts as a draft or submitted, whoever creates it.
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let one_change = |n: u64, who: Identity, s: ReviewStatus| {
        let mut r = Record::create_with(record_id(n), form.clone(), &who, Utc::now(), |e| {
            e.set("full_name", text("One Change"))?;
            e.set("consent_intake", Value::Bool(true))?;
            e.set_status(s, None)
        })
        .unwrap();
        push_of(&mut r, &[])
    };
    failures.extend(judge_all(
        &server,
        vec![
            (
                "drita creates a record already submitted",
                &drita,
                one_change(20, mine(20), ReviewStatus::Submitted),
                Outcome::Stored,
            ),
            (
                "merita creates a record already approved",
                &merita,
                one_change(21, sup(21), ReviewStatus::Approved),
                protected("a new record starts as draft or submitted, not approved"),
            ),
        ],
    ));

    // Rejected: an outcome only a supervisor sets, after which a paralegal cannot
    // touch the status.
    let mut second = new_record(&mine(22), 22);
    second
        .edit(Utc::now(), |e| e.set_status(ReviewStatus::Submitted, None))
        .unwrap();
    assert_eq!(
        push(&server, &drita.token, push_of(&mut second, &[])),
        Outcome::Stored
    );
    failures.extend(judge_all(
        &server,
        vec![
            (
                "drita rejects her own case",
                &drita,
                raw_change(&second, &mine(23), status("rejected")),
                protected("a paralegal may not change the status from submitted to rejected"),
            ),
            (
                "merita rejects it",
                &merita,
                raw_change(&second, &sup(24), status("rejected")),
                Outcome::Stored,
            ),
        ],
    ));
    let mut rejected = load(&server, &drita.token, second.id());
    if rejected.to_json()["status"] != "rejected" {
        failures.push(format!("not rejected: {}", rejected.to_json()["status"]));
    }
    failures.extend(judge_all(
        &server,
        vec![(
            "drita submits the rejected case again",
            &drita,
            raw_change(&rejected, &mine(25), status("submitted")),
            protected("a paralegal may not change the status of a case that is rejected"),
        )],
    ));
    assert!(failures.is_empty(), "{failures:#?}");
    let (_, json) = server.get(&format!("/v1/records/{}", r.id()), Some(&merita.token));
    assert_eq!(json["status"], "closed");
}

// ---------------------------------------------------------------------------------
// Rule 4: concurrent review decisions are a conflict.

#[test]
fn two_supervisors_deciding_one_case_offline_make_a_visible_conflict() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let mut valbona = TestDevice::enroll(&server, "valbona", Role::Supervisor, Some("prizren"));
    server.add_user("ajshe", Role::Paralegal, Some("prizren"));
    let id = drita.create(&[
        ("full_name", text("Ajshe Krasniqi")),
        ("consent_intake", Value::Bool(true)),
    ]);
    drita.edit(id, |e| e.set_status(ReviewStatus::Submitted, None));
    drita.sync().unwrap();
    merita.sync().unwrap();
    valbona.sync().unwrap();

    // Both decide the submitted case without seeing the other's decision.
    merita.edit(id, |e| {
        e.set_status(ReviewStatus::Approved, Some("well documented"))?;
        e.assign("drita")
    });
    valbona.edit(id, |e| {
        e.set_status(ReviewStatus::NeedsChanges, Some("re-ask consent"))?;
        e.assign("ajshe")
    });
    for dev in [&mut merita, &mut valbona] {
        let s = dev.sync().unwrap();
        assert_eq!((s.sent, s.refused), (1, 0), "{}: {s:?}", dev.name);
    }
    merita.sync().unwrap();
    drita.sync().unwrap();

    // Every device shows the same three review conflicts, with who, where and when.
    for dev in [&drita, &merita, &valbona] {
        let mut r = dev.record(id);
        assert!(r.has_conflicts(), "{}", dev.name);
        let conflicts = r.conflicts();
        let keys: Vec<&str> = conflicts.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            keys,
            ["assigned_to", "review_note", "status"],
            "{}",
            dev.name
        );
        let status = &conflicts[2];
        let mut values: Vec<(String, Option<String>)> = status
            .values
            .iter()
            .map(|v| (v.value.to_string(), v.author.clone()))
            .collect();
        values.sort();
        assert_eq!(
            values,
            [
                ("approved".to_string(), Some("merita".to_string())),
                ("needs_changes".to_string(), Some("valbona".to_string())),
            ]
        );
        assert!(status.values.iter().all(|v| v.at.is_some()));
        assert_ne!(status.values[0].device, status.values[1].device);
        let json = r.to_json();
        assert_eq!(
            json["conflicts"],
            serde_json::json!({}),
            "fields stay as they were"
        );
        assert_eq!(
            json["review_conflicts"]["status"].as_array().map(Vec::len),
            Some(2),
            "{json}"
        );
        // Values are listed by device, and devices' actors are random: look for both.
        let notes: Vec<&str> = json["review_conflicts"]["review_note"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["author"].as_str())
            .collect();
        assert!(
            notes.contains(&"merita") && notes.contains(&"valbona"),
            "{notes:?}"
        );
    }
    let token = merita.store.enrolment().unwrap().unwrap().token;
    let (_, json) = server.get(&format!("/v1/records/{id}"), Some(&token));
    assert_eq!(
        json["review_conflicts"]["status"].as_array().map(Vec::len),
        Some(2)
    );

    // Merita settles it: one decision, one note, one assignee, superseding both.
    merita.edit(id, |e| {
        e.resolve("status", text("needs_changes"))?;
        e.resolve("review_note", text("re-ask consent, then I approve"))?;
        e.resolve("assigned_to", text("drita"))
    });
    let s = merita.sync().unwrap();
    assert_eq!((s.sent, s.refused), (1, 0), "{s:?}");
    for dev in [&mut drita, &mut valbona] {
        dev.sync().unwrap();
    }
    for dev in [&drita, &merita, &valbona] {
        let mut r = dev.record(id);
        assert!(
            r.conflicts().is_empty() && !r.has_conflicts(),
            "{}",
            dev.name
        );
        assert_eq!(r.status(), ReviewStatus::NeedsChanges);
        assert_eq!(r.assigned_to().as_deref(), Some("drita"));
    }
}

// ---------------------------------------------------------------------------------
// Rule 5: the assignee.

#[test]
fn an_assignee_must_be_an_enabled_user_of_the_records_team() {
    let server = TestServer::start();
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let merita = server.user_device("merita", Role::Supervisor, Some("prizren"));
    server.add_user("ajshe", Role::Paralegal, Some("prizren"));
    server.add_user("dardan", Role::Paralegal, Some("prizren"));
    server.add_user("cvetko", Role::Paralegal, Some("gjilan"));
    assert!(server.storage.set_user_disabled("dardan", true).unwrap());
    let sup = |n| identity(&merita, "merita", n);
    let mut r = new_record(&identity(&drita, "drita", 1), 1);
    assert_eq!(
        push(&server, &drita.token, push_of(&mut r, &[])),
        Outcome::Stored
    );
    let not_assignable = |why: &str| {
        refused(
            Rejection::ProtectedField,
            &format!("assigned_to must name an enabled user of the record's team: {why}"),
        )
    };
    let mut stray = new_record(&sup(10), 2);
    stray.edit(Utc::now(), |e| e.assign("cvetko")).unwrap();
    let failures = judge_all(
        &server,
        vec![
            (
                "nobody of that name",
                &merita,
                edit_of(&r, &sup(2), |e| e.assign("nobody")),
                not_assignable("there is no such user"),
            ),
            (
                "a disabled user",
                &merita,
                edit_of(&r, &sup(3), |e| e.assign("dardan")),
                not_assignable("that user is disabled"),
            ),
            (
                "a user of another team",
                &merita,
                edit_of(&r, &sup(4), |e| e.assign("cvetko")),
                not_assignable("that user is not in the record's team"),
            ),
            (
                "a new record assigned to another team's user",
                &merita,
                push_of(&mut stray, &[]),
                not_assignable("that user is not in the record's team"),
            ),
            (
                "a colleague in the team",
                &merita,
                edit_of(&r, &sup(5), |e| e.assign("ajshe")),
                Outcome::Stored,
            ),
        ],
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(server.storage.record(stray.id()).unwrap().is_none());
    let assigned = load(&server, &merita.token, r.id());
    assert_eq!(assigned.assigned_to().as_deref(), Some("ajshe"));
    // Unassigning, by an empty name or by deleting the key, is the supervisor's.
    let failures = judge_all(
        &server,
        vec![
            (
                "drita unassigns",
                &drita,
                raw_change(&assigned, &identity(&drita, "drita", 6), |d| {
                    d.delete(ROOT, "assigned_to")
                }),
                refused(
                    Rejection::ProtectedField,
                    "only a supervisor may set assigned_to",
                ),
            ),
            (
                "merita unassigns with an empty name",
                &merita,
                edit_of(&assigned, &sup(7), |e| e.assign("")),
                Outcome::Stored,
            ),
        ],
    );
    assert!(failures.is_empty(), "{failures:#?}");
    let emptied = load(&server, &merita.token, r.id());
    let failures = judge_all(
        &server,
        vec![(
            "merita deletes the assignment",
            &merita,
            raw_change(&emptied, &sup(8), |d| d.delete(ROOT, "assigned_to")),
            Outcome::Stored,
        )],
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(
        server
            .storage
            .record(r.id())
            .unwrap()
            .unwrap()
            .meta
            .assigned_to,
        None
    );
}
