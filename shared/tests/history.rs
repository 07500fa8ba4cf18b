//! A field's history read from the document: who set, cleared or edited it, when and
//! on which device, and what it held after each change — what the dashboard shows as
//! "last set by" and "history".

use chrono::{DateTime, TimeZone, Utc};
use intake_shared::record::Identity;
use intake_shared::{FormRegistry, Record, RecordId, Value};

fn t(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 9, minute, 0).unwrap()
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

#[test]
fn every_change_to_a_field_is_listed_with_its_author_and_value() {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let id = RecordId::new_v7(1_700_000_000_000, [3; 10]);
    let mut r = Record::create_with(id, form, &who(1, "drita"), t(0), |e| {
        e.set("full_name", text("Jelena Gergur"))?;
        e.set("urgency", text("low"))
    })
    .unwrap();
    r.edit(t(5), |e| e.set("urgency", text("high"))).unwrap();
    let mut office = Record::load(&r.save(), FormRegistry::builtin()).unwrap();
    office.set_identity(&who(2, "vesa"));
    office
        .edit(t(9), |e| e.set("full_name", text("Jelena Gërguri")))
        .unwrap();
    office.edit(t(12), |e| e.clear("urgency")).unwrap();

    let names = office.field_history("full_name");
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0].value, Some(text("Jelena Gergur")));
    assert_eq!(names[0].author.as_deref(), Some("drita"));
    assert_eq!(names[0].device, "01".repeat(16));
    assert_eq!(names[1].value, Some(text("Jelena Gërguri")));
    assert_eq!(names[1].author.as_deref(), Some("vesa"));
    assert_eq!(names[1].at, Some(t(9)));

    let urgency = office.field_history("urgency");
    let values: Vec<_> = urgency.iter().map(|e| e.value.clone()).collect();
    assert_eq!(values, vec![Some(text("low")), Some(text("high")), None]);
    let last = office.last_set("urgency").unwrap();
    assert_eq!(
        (last.author.as_deref(), last.at),
        (Some("vesa"), Some(t(12)))
    );
    assert!(office.field_history("phone").is_empty());
}

#[test]
fn edits_inside_a_narrative_are_its_history() {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let id = RecordId::new_v7(1_700_000_000_000, [4; 10]);
    let mut r = Record::create_with(id, form, &who(1, "drita"), t(0), |e| {
        e.set("narrative", text("The school placed the children apart."))
    })
    .unwrap();
    r.set_identity(&who(2, "vesa"));
    r.edit(t(3), |e| {
        e.set(
            "narrative",
            text("The school placed the Roma children apart."),
        )
    })
    .unwrap();
    let history = r.field_history("narrative");
    let last = history.last().unwrap();
    assert_eq!(last.author.as_deref(), Some("vesa"));
    assert_eq!(
        last.value,
        Some(text("The school placed the Roma children apart."))
    );
    assert!(
        history
            .iter()
            .any(|e| e.value == Some(text("The school placed the children apart."))),
        "{history:?}"
    );
}
