//! The record model's known situations: typed fields, concurrent edits, conflicts and
//! their resolution (of fields and of review decisions), validation that reports
//! without dropping, what a change left and saw, appends, hostile bytes.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use intake_shared::record::{ConflictKind, Identity, Incoming, decode_incoming};
use intake_shared::{Form, FormRegistry, Record, RecordError, RecordId, ReviewStatus, Rule, Value};

fn t(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, minute, 0).unwrap()
}

fn who(n: u8, name: &str) -> Identity {
    Identity {
        actor: vec![n; 16],
        author: Some(name.to_string()),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn new_record() -> Record {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let mut r = Record::create(
        RecordId::new_v7(1_700_000_000_000, [7; 10]),
        form,
        &who(1, "drita"),
        t(0),
    );
    r.edit(t(1), |e| {
        e.set("full_name", text("Jelena Gërguri"))?;
        e.set("urgency", text("high"))?;
        e.set(
            "narrative",
            text("The school placed the children in a separate class."),
        )
    })
    .unwrap();
    r
}

/// A second replica of `r` on another device.
fn fork(r: &mut Record, n: u8, name: &str) -> Record {
    let mut copy = Record::load(&r.save(), FormRegistry::builtin()).unwrap();
    copy.set_identity(&who(n, name));
    copy
}

fn sync(a: &mut Record, b: &mut Record) {
    a.merge(b).unwrap();
    b.merge(a).unwrap();
}

#[test]
fn typed_values_round_trip_through_save_and_load() {
    let mut r = new_record();
    r.edit(t(2), |e| {
        e.set("birth_year", Value::Int(1989))?;
        e.set("consent_intake", Value::Bool(true))?;
        e.set("intake_date", text("2026-04-19"))
    })
    .unwrap();
    let loaded = Record::load(&r.save(), FormRegistry::builtin()).unwrap();
    assert_eq!(loaded.get("birth_year"), Some(Value::Int(1989)));
    assert_eq!(loaded.get("consent_intake"), Some(Value::Bool(true)));
    assert_eq!(loaded.get("full_name"), Some(text("Jelena Gërguri")));
    assert_eq!(loaded.values(), r.values());
    assert_eq!(loaded.id(), r.id());
}

#[test]
fn bad_values_are_refused_with_the_rule_and_change_nothing() {
    let mut r = new_record();
    let heads = r.heads();
    let err = r.edit(t(2), |e| {
        e.set("summary", text("ok"))?;
        e.set("urgency", text("urgent"))
    });
    match err {
        Err(RecordError::Invalid {
            field,
            rule: Rule::NotAChoice { allowed },
        }) => {
            assert_eq!(field, "urgency");
            assert_eq!(allowed, ["low", "medium", "high", "critical"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        r.edit(t(2), |e| e.set("shoe_size", Value::Int(40))),
        Err(RecordError::Invalid {
            rule: Rule::UnknownField,
            ..
        })
    ));
    assert!(matches!(
        r.edit(t(2), |e| e.set("incident_date", text("31/08/2025"))),
        Err(RecordError::Invalid {
            rule: Rule::NotADate,
            ..
        })
    ));
    assert_eq!(
        r.heads(),
        heads,
        "a refused edit must leave no change behind"
    );
    assert_eq!(r.get("summary"), None);
}

#[test]
fn different_fields_edited_concurrently_both_survive() {
    let mut a = new_record();
    let mut b = fork(&mut a, 2, "merita");
    a.edit(t(3), |e| e.set("phone", text("+383 44 000 051")))
        .unwrap();
    b.edit(t(4), |e| e.set("referred_by", text("school")))
        .unwrap();
    sync(&mut a, &mut b);
    assert_eq!(a.heads(), b.heads());
    for r in [&a, &b] {
        assert_eq!(r.get("phone"), Some(text("+383 44 000 051")));
        assert_eq!(r.get("referred_by"), Some(text("school")));
    }
    assert!(a.conflicts().is_empty());
}

#[test]
fn same_field_conflict_shows_every_value_until_resolved() {
    let mut a = new_record();
    let mut b = fork(&mut a, 2, "merita");
    a.edit(t(3), |e| e.set("urgency", text("critical")))
        .unwrap();
    b.edit(t(4), |e| e.set("urgency", text("low"))).unwrap();
    sync(&mut a, &mut b);
    let conflicts = a.conflicts();
    assert_eq!(conflicts, b.conflicts());
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(c.field, "urgency");
    let seen: Vec<_> = c
        .values
        .iter()
        .map(|v| (v.value.clone(), v.author.clone().unwrap(), v.at.unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            (text("critical"), "drita".to_string(), t(3)),
            (text("low"), "merita".to_string(), t(4))
        ]
    );
    assert_eq!(c.values[0].device, hex(&[1; 16]));
    assert!(a.has_conflicts());
    // A conflict blocks submission but not drafting.
    let err = a
        .edit(t(5), |e| e.set_status(ReviewStatus::Submitted, None))
        .unwrap_err();
    assert!(
        matches!(err, RecordError::Incomplete { ref issues } if issues.iter().any(|i| i.rule == Rule::Conflict))
    );

    let before = a.change_count();
    b.edit(t(6), |e| e.resolve("urgency", text("high")))
        .unwrap();
    sync(&mut a, &mut b);
    assert_eq!(
        a.change_count(),
        before + 1,
        "the resolution is part of the history"
    );
    for r in [&mut a, &mut b] {
        assert!(r.conflicts().is_empty());
        assert_eq!(r.get("urgency"), Some(text("high")));
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn narrative_edited_concurrently_merges_character_wise() {
    let mut a = new_record();
    let mut b = fork(&mut a, 2, "merita");
    a.edit(t(3), |e| {
        e.set(
            "narrative",
            text("Yesterday the school placed the children in a separate class."),
        )
    })
    .unwrap();
    b.edit(t(4), |e| {
        e.set(
            "narrative",
            text("The school placed the children in a separate class, says the mother."),
        )
    })
    .unwrap();
    sync(&mut a, &mut b);
    let merged =
        text("Yesterday the school placed the children in a separate class, says the mother.");
    assert_eq!(a.get("narrative"), Some(merged.clone()));
    assert_eq!(b.get("narrative"), Some(merged));
    assert!(a.conflicts().is_empty());
}

#[test]
fn a_draft_may_be_incomplete_but_submitting_needs_the_required_fields() {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let mut r = Record::create(RecordId::new_v7(1, [0; 10]), form, &who(1, "drita"), t(0));
    assert!(r.validate().is_empty(), "an empty draft has no issues");
    let err = r
        .edit(t(1), |e| e.set_status(ReviewStatus::Submitted, None))
        .unwrap_err();
    let RecordError::Incomplete { issues } = err else {
        panic!()
    };
    let missing: Vec<_> = issues.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(missing, ["full_name", "consent_intake"]);
    assert_eq!(
        issues[0].message(intake_shared::Lang::SrCyrl),
        "full_name: обавезно: молимо одговорите"
    );
    assert_eq!(r.status(), ReviewStatus::Draft);
    r.edit(t(2), |e| {
        e.set("full_name", text("Ajshe Krasniqi"))?;
        e.set("consent_intake", Value::Bool(false))?;
        e.set_status(ReviewStatus::Submitted, None)
    })
    .unwrap();
    assert_eq!(r.status(), ReviewStatus::Submitted);
    r.edit(t(3), |e| {
        e.set_status(ReviewStatus::NeedsChanges, Some("re-ask consent"))
    })
    .unwrap();
    assert_eq!(r.review_note().as_deref(), Some("re-ask consent"));
}

#[test]
fn data_that_breaks_the_form_is_reported_never_dropped() {
    // A writer whose form let `urgency` be free text (an older or broken app).
    let builtin = FormRegistry::builtin().get("intake", 1).unwrap();
    let json = intake_shared::form::EMBEDDED
        .iter()
        .find(|(n, _)| *n == "intake.v1.json")
        .unwrap()
        .1;
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    let fields = v["fields"].as_array_mut().unwrap();
    let urgency = fields.iter_mut().find(|f| f["name"] == "urgency").unwrap();
    urgency["type"] = "text".into();
    urgency.as_object_mut().unwrap().remove("choices");
    let loose = Form::from_json(&v.to_string()).unwrap();
    let mut loose_forms = FormRegistry::default();
    loose_forms.insert(loose);
    let mut r = Record::create(
        RecordId::new_v7(1, [0; 10]),
        loose_forms.get("intake", 1).unwrap(),
        &who(3, "x"),
        t(0),
    );
    r.edit(t(1), |e| e.set("urgency", text("very urgent")))
        .unwrap();

    let read = Record::load(&r.save(), FormRegistry::builtin()).unwrap();
    assert_eq!(read.form().fields(), builtin.fields());
    assert_eq!(read.get("urgency"), Some(text("very urgent")), "kept");
    let issues = read.validate();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].field, "urgency");
    assert!(matches!(issues[0].rule, Rule::NotAChoice { .. }));
}

#[test]
fn comments_and_follow_up_actions_append_and_merge() {
    let followup = FormRegistry::builtin().get("followup", 1).unwrap();
    let mut a = new_record();
    let mut b = fork(&mut a, 2, "merita");
    a.edit(t(3), |e| e.add_comment("called the school"))
        .unwrap();
    b.edit(t(4), |e| e.add_comment("re-ask consent")).unwrap();
    let mut action = BTreeMap::new();
    action.insert("date".to_string(), text("2026-11-20"));
    action.insert("type".to_string(), text("visit"));
    action.insert("outcome".to_string(), text("met the director"));
    b.edit(t(5), |e| e.add_action(&followup, &action)).unwrap();
    action.insert("type".to_string(), text("party"));
    assert!(b.edit(t(5), |e| e.add_action(&followup, &action)).is_err());
    sync(&mut a, &mut b);
    let comments = a.comments();
    assert_eq!(comments, b.comments());
    assert_eq!(comments.len(), 2);
    assert!(
        comments
            .iter()
            .any(|c| c.text == "re-ask consent" && c.author.as_deref() == Some("merita"))
    );
    let actions = a.actions();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].fields["type"], text("visit"));
    assert_eq!(actions[0].author.as_deref(), Some("merita"));
}

#[test]
fn an_old_form_version_still_opens_after_a_new_one_exists() {
    let mut r = new_record();
    let bytes = r.save();
    let json = intake_shared::form::EMBEDDED
        .iter()
        .find(|(n, _)| *n == "intake.v1.json")
        .unwrap()
        .1;
    let v2 = json.replacen("\"version\": 1", "\"version\": 2", 1);
    let mut forms = FormRegistry::builtin().clone();
    forms.insert(Form::from_json(&v2).unwrap());
    assert_eq!(forms.latest("intake").unwrap().version, 2);
    let old = Record::load(&bytes, &forms).unwrap();
    assert_eq!(old.form().version, 1);
    assert_eq!(old.get("urgency"), Some(text("high")));
}

#[test]
fn hostile_bytes_are_an_error_not_a_panic() {
    let hex = include_str!("fixtures/automerge-0.12-load-panic.hex").trim();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert!(Record::load(&bytes, FormRegistry::builtin()).is_err());
    let mut r = new_record();
    let heads = r.heads();
    assert!(r.apply(&bytes).is_err());
    let mut good_then_garbage = r.changes_since(&[]);
    good_then_garbage.extend_from_slice(b"garbage");
    assert!(
        r.apply(&good_then_garbage).is_err(),
        "a bad tail is not silently ignored"
    );
    assert!(r.apply(b"not automerge at all").is_err());
    assert!(Record::load(&[], FormRegistry::builtin()).is_err());
    assert_eq!(r.heads(), heads);
}

/// A submitted copy of `new_record()`, answered enough to be decided.
fn submitted() -> Record {
    let mut r = new_record();
    r.edit(t(2), |e| {
        e.set("consent_intake", Value::Bool(true))?;
        e.set_status(ReviewStatus::Submitted, None)
    })
    .unwrap();
    r
}

#[test]
fn concurrent_review_decisions_are_conflicts_with_provenance_until_resolved() {
    let mut base = submitted();
    let mut a = fork(&mut base, 2, "merita");
    let mut b = fork(&mut base, 3, "valbona");
    a.edit(t(10), |e| {
        e.set_status(ReviewStatus::Approved, Some("well documented"))?;
        e.assign("drita")
    })
    .unwrap();
    b.edit(t(11), |e| {
        e.set_status(ReviewStatus::NeedsChanges, Some("re-ask consent"))?;
        e.assign("ajshe")
    })
    .unwrap();
    sync(&mut a, &mut b);

    let conflicts = a.conflicts();
    assert_eq!(conflicts, b.conflicts(), "every replica lists the same");
    let keys: Vec<(&str, ConflictKind)> = conflicts
        .iter()
        .map(|c| (c.field.as_str(), c.kind))
        .collect();
    assert_eq!(
        keys,
        [
            ("assigned_to", ConflictKind::Review),
            ("review_note", ConflictKind::Review),
            ("status", ConflictKind::Review),
        ]
    );
    let status: Vec<_> = conflicts[2]
        .values
        .iter()
        .map(|v| {
            (
                v.value.clone(),
                v.device.clone(),
                v.author.clone().unwrap(),
                v.at.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            (text("approved"), hex(&[2; 16]), "merita".into(), t(10)),
            (
                text("needs_changes"),
                hex(&[3; 16]),
                "valbona".into(),
                t(11)
            ),
        ]
    );
    assert!(a.has_conflicts() && b.has_conflicts());
    assert_eq!(a.status(), b.status(), "one deterministic winner meanwhile");
    assert_eq!(a.review_values("status").len(), 2);
    let json = a.to_json();
    assert_eq!(
        json["conflicts"],
        serde_json::json!({}),
        "no field conflicts"
    );
    assert_eq!(json["review_conflicts"]["status"][1]["author"], "valbona");
    assert_eq!(json["review_conflicts"]["assigned_to"][0]["value"], "drita");
    // A conflicting status does not block the other edits, nor a field conflict's.
    assert!(a.validate().is_empty(), "{:?}", a.validate());

    // Not a status.
    let err = a
        .edit(t(12), |e| e.resolve("status", text("done")))
        .unwrap_err();
    assert!(
        matches!(err, RecordError::Invalid { ref field, rule: Rule::NotAChoice { ref allowed } }
            if field == "status" && allowed.len() == ReviewStatus::ALL.len()),
        "{err:?}"
    );
    // Settled on either value — the winner (which Automerge writes as deleting the
    // other) or the other one — one value is left, on every replica.
    let winner = a.status();
    for choice in [winner, ReviewStatus::Rejected] {
        let mut x = a.clone();
        let mut y = b.clone();
        x.set_identity(&who(2, "merita"));
        x.edit(t(13), |e| {
            e.resolve("status", text(choice.as_str()))?;
            e.resolve("review_note", text("settled"))?;
            e.resolve("assigned_to", text("drita"))
        })
        .unwrap();
        sync(&mut x, &mut y);
        for r in [&mut x, &mut y] {
            assert!(r.conflicts().is_empty() && !r.has_conflicts(), "{choice}");
            assert_eq!(r.status(), choice);
            assert_eq!(r.review_note().as_deref(), Some("settled"));
            assert_eq!(r.assigned_to().as_deref(), Some("drita"));
        }
        let resolution = x.heads();
        assert_eq!(
            x.review_values_at("status", &resolution),
            [text(choice.as_str())]
        );
    }
}

#[test]
fn review_values_at_heads_are_what_a_writer_saw() {
    let mut r = new_record();
    let created = r.heads();
    assert_eq!(r.review_values_at("status", &[]), Vec::<Value>::new());
    assert_eq!(r.review_values_at("status", &created), [text("draft")]);
    let mut s = submitted();
    let after = s.heads();
    s.edit(t(20), |e| e.set_status(ReviewStatus::Rejected, None))
        .unwrap();
    assert_eq!(s.review_values_at("status", &after), [text("submitted")]);
    assert_eq!(s.review_values("status"), [text("rejected")]);
    assert_eq!(
        s.review_values_at("assigned_to", &after),
        Vec::<Value>::new()
    );
    assert_eq!(s.to_json()["status"], "rejected");
}

/// Every change the record API makes passes the append-only check: the server must
/// not refuse what an honest app does (crafted breaches are refused end to end, in
/// `tests/tests/e2e/review_trust.rs`).
#[test]
fn what_the_record_api_writes_only_appends() {
    let followup = FormRegistry::builtin().get("followup", 1).unwrap();
    let mut action = BTreeMap::new();
    action.insert("date".to_string(), text("2026-11-20"));
    action.insert("type".to_string(), text("visit"));
    let mut a = new_record();
    a.edit(t(2), |e| e.add_comment("first")).unwrap();
    let mut b = fork(&mut a, 2, "merita");
    let since = b.heads();
    b.edit(t(3), |e| e.add_comment("second")).unwrap();
    b.edit(t(4), |e| e.add_action(&followup, &action)).unwrap();
    b.edit(t(5), |e| {
        e.add_comment("third")?;
        e.add_action(&followup, &action)?;
        e.set("urgency", text("low"))?;
        e.set("narrative", text("The school placed the children apart."))
    })
    .unwrap();
    a.edit(t(6), |e| e.add_comment("concurrent")).unwrap();
    let theirs = decode_incoming(&b.changes_since(&since)).unwrap();
    assert_eq!(theirs.len(), 3);
    let refs: Vec<&Incoming> = theirs.iter().collect();
    let merged = a.clone().with_incoming(&refs).unwrap();
    for change in &theirs {
        assert_eq!(merged.check_appends(change), Ok(()));
    }
    let mut merged = merged;
    assert_eq!(merged.comments().len(), 4);
    // A record's first change makes the lists, and passes too.
    let mut fresh = new_record();
    let all = decode_incoming(&fresh.changes_since(&[])).unwrap();
    let refs: Vec<&Incoming> = all.iter().collect();
    let built = Record::from_incoming(&refs, FormRegistry::builtin()).unwrap();
    for change in &all {
        assert_eq!(built.check_appends(change), Ok(()));
    }
}

/// A record in a log line or a panic message names itself, never its content.
#[test]
fn a_records_debug_output_holds_no_content() {
    let mut r = new_record();
    r.edit(t(5), |e| e.set("full_name", text("Secret Clientname")))
        .unwrap();
    let shown = format!("{r:?}");
    assert!(shown.contains(&r.id().to_string()), "{shown}");
    assert!(!shown.contains("Secret"), "{shown}");
}
