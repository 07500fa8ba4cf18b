//! Devices syncing through the real server with the real client: offline work by two
//! paralegals and a supervisor converges; same-field conflicts stay visible everywhere
//! until resolved; different fields and narratives merge; a review reaches the field;
//! a reassignment removes the record from the old device; a revoked device is refused
//! and keeps its data.

use intake_server::storage::Role;
use intake_shared::{ReviewStatus, Value};
use intake_tests::craft::text;
use intake_tests::{TestDevice, TestServer};

fn converged(devices: &mut [&mut TestDevice], id: intake_shared::RecordId) {
    let mut first = devices[0].record(id);
    let heads = first.heads();
    let json = first.to_json();
    for d in devices.iter_mut().skip(1) {
        let mut r = d.record(id);
        assert_eq!(r.heads(), heads, "{} has other heads", d.name);
        assert_eq!(r.to_json(), json, "{} shows other values", d.name);
    }
}

#[test]
fn offline_work_converges_and_conflicts_stay_visible_until_resolved() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut ajshe = TestDevice::enroll(&server, "ajshe", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));

    let id = drita.create(&[
        ("full_name", text("Jelena Jovanović")),
        ("urgency", text("high")),
        (
            "narrative",
            text("The school placed the children in a separate class."),
        ),
    ]);
    let other = ajshe.create(&[("full_name", text("Emine Shala"))]);
    drita.sync().unwrap();
    ajshe.sync().unwrap();
    let s = merita.sync().unwrap();
    assert_eq!(s.received, 2);

    // Offline: both edit the same record (supervisor and paralegal).
    drita.edit(id, |e| e.set("urgency", text("critical")));
    drita.edit(id, |e| e.set("phone", text("+383 44 000 051")));
    drita.edit(id, |e| {
        e.set(
            "narrative",
            text("Yesterday the school placed the children in a separate class."),
        )
    });
    merita.edit(id, |e| e.set("urgency", text("low")));
    merita.edit(id, |e| e.set("referred_by", text("school")));
    merita.edit(id, |e| {
        e.set(
            "narrative",
            text("The school placed the children in a separate class, says the mother."),
        )
    });
    for _ in 0..2 {
        drita.sync().unwrap();
        merita.sync().unwrap();
    }
    converged(&mut [&mut drita, &mut merita], id);
    let mut r = drita.record(id);
    assert_eq!(r.get("phone"), Some(text("+383 44 000 051")));
    assert_eq!(r.get("referred_by"), Some(text("school")));
    assert_eq!(
        r.get("narrative"),
        Some(text(
            "Yesterday the school placed the children in a separate class, says the mother."
        ))
    );
    let conflicts = r.conflicts();
    assert_eq!(conflicts.len(), 1);
    let authors: Vec<_> = conflicts[0]
        .values
        .iter()
        .map(|v| v.author.clone().unwrap())
        .collect();
    assert!(authors.contains(&"drita".to_string()) && authors.contains(&"merita".to_string()));

    // Resolved on one device, resolved everywhere.
    merita.edit(id, |e| e.resolve("urgency", text("high")));
    merita.sync().unwrap();
    drita.sync().unwrap();
    converged(&mut [&mut drita, &mut merita], id);
    assert!(drita.record(id).conflicts().is_empty());
    // Ajshe (same team, not assigned) never received drita's record.
    ajshe.sync().unwrap();
    assert!(!ajshe.has(id) && ajshe.has(other));
}

#[test]
fn a_review_reaches_the_field_and_a_reassignment_removes_the_record() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut ajshe = TestDevice::enroll(&server, "ajshe", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    let id = merita.create(&[
        ("full_name", text("Ajshe Krasniqi")),
        ("consent_intake", Value::Bool(true)),
    ]);
    merita.edit(id, |e| e.assign("drita"));
    merita.sync().unwrap();
    drita.sync().unwrap();
    assert!(drita.has(id), "assigned records reach the assignee");
    drita.edit(id, |e| e.set_status(ReviewStatus::Submitted, None));
    drita.sync().unwrap();
    merita.sync().unwrap();
    merita.edit(id, |e| {
        e.set_status(ReviewStatus::NeedsChanges, Some("re-ask consent"))
    });
    merita.sync().unwrap();
    drita.sync().unwrap();
    let r = drita.record(id);
    assert_eq!(r.status(), ReviewStatus::NeedsChanges);
    assert_eq!(r.review_note().as_deref(), Some("re-ask consent"));
    let listed = drita.store.list(None).unwrap();
    assert_eq!(listed[0].review_note.as_deref(), Some("re-ask consent"));

    // Drita edits offline; meanwhile the record is reassigned to Ajshe.
    drita.edit(id, |e| e.set("phone", text("+383 49 111 222")));
    merita.edit(id, |e| e.assign("ajshe"));
    merita.sync().unwrap();
    let s = drita.sync().unwrap();
    assert_eq!(s.removed, 1, "{s:?}");
    assert!(!drita.has(id), "the record left the old device");
    ajshe.sync().unwrap();
    merita.sync().unwrap();
    assert_eq!(
        ajshe.record(id).get("phone"),
        Some(text("+383 49 111 222")),
        "her last edit was pushed first"
    );
    converged(&mut [&mut ajshe, &mut merita], id);
}

#[test]
fn a_revoked_device_is_refused_clearly_and_keeps_its_data() {
    let server = TestServer::start();
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let id = drita.create(&[("full_name", text("Drita's case"))]);
    drita.sync().unwrap();
    let device = drita.store.enrolment().unwrap().unwrap().device_id;
    assert!(
        intake_server::storage::SyncStorage::revoke_device(server.storage.as_ref(), device)
            .unwrap()
    );
    drita.edit(id, |e| e.set("urgency", text("high")));
    let err = drita.sync().unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("revoked"), "{err}");
    assert_eq!(
        drita.record(id).get("urgency"),
        Some(text("high")),
        "local data kept"
    );
    assert_eq!(drita.store.unsynced().unwrap(), 1);
}
