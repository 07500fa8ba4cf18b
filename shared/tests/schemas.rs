//! Every file in `schemas/` parses and passes the form checks, and every one of them is
//! embedded in the build (a schema that is not embedded could never be opened).

use intake_shared::form::EMBEDDED;
use intake_shared::{Form, FormRegistry, Lang};

#[test]
fn every_schema_file_parses_and_is_embedded() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.ends_with(".json"),
            "unexpected file in schemas/: {name}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let form = Form::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            name,
            format!("{}.v{}.json", form.id, form.version),
            "file name must be <form>.v<version>.json"
        );
        assert!(
            EMBEDDED.iter().any(|(n, _)| *n == name),
            "{name} is not embedded in form::registry::EMBEDDED"
        );
        n += 1;
    }
    assert!(n >= 2);
}

#[test]
fn intake_form_has_the_benchmark_fields_and_municipalities() {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let names: Vec<&str> = form.fields().iter().map(|f| f.name.as_str()).collect();
    // The benchmark data (../shared/bench) uses exactly these names, in this order.
    let bench_fields = [
        "intake_date",
        "full_name",
        "gender",
        "birth_year",
        "community",
        "preferred_language",
        "needs_interpreter",
        "municipality",
        "village",
        "phone",
        "safe_to_contact",
        "personal_id_number",
        "has_civil_documents",
        "household_size",
        "issue_type",
        "institution_type",
        "institution_name",
        "incident_date",
        "language_requested",
        "language_provided",
        "urgency",
        "referred_by",
        "consent_intake",
        "consent_data_sharing",
        "summary",
        "narrative",
        "follow_up_date",
    ];
    assert_eq!(names, bench_fields);
    let muni = form.field("municipality").unwrap();
    assert_eq!(form.choices(muni).len(), 38);
    for code in [
        "dragash",
        "mitrovica_north",
        "zubin_potok",
        "gracanice",
        "leposaviq",
    ] {
        assert!(form.choices(muni).iter().any(|c| c.value == code), "{code}");
    }
    assert!(
        form.field("full_name").unwrap().required && form.field("full_name").unwrap().sensitive
    );
    assert!(form.field("consent_intake").unwrap().required);
}

#[test]
fn labels_exist_in_the_required_languages() {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    for f in form.fields() {
        for lang in Lang::REQUIRED {
            assert_ne!(f.label.get(lang, ""), "", "{} in {lang}", f.name);
        }
    }
    let urgency = form.field("urgency").unwrap();
    let v = intake_shared::Value::Text("high".into());
    assert_ne!(form.value_label(urgency, &v, Lang::SrCyrl), "high");
}

#[test]
fn broken_forms_are_refused_with_a_reason() {
    let good = FormRegistry::builtin().get("followup", 1).unwrap();
    let text = EMBEDDED
        .iter()
        .find(|(n, _)| *n == "followup.v1.json")
        .unwrap()
        .1;
    assert_eq!(*Form::from_json(text).unwrap().fields(), *good.fields());
    let cases = [
        (text.replace("\"en\":", "\"xx\":"), "no label in en"),
        (
            text.replacen("\"name\": \"type\"", "\"name\": \"date\"", 1),
            "defined twice",
        ),
        (
            text.replacen("\"type\": \"date\"", "\"type\": \"datum\"", 1),
            "not valid",
        ),
        (
            text.replacen(
                "\"form\": \"followup\"",
                "\"form\": \"followup\", \"extra\": 1",
                1,
            ),
            "unknown field",
        ),
    ];
    for (bad, why) in cases {
        assert_ne!(bad, text, "mutation did not apply for {why}");
        let err = Form::from_json(&bad).unwrap_err().to_string();
        assert!(err.contains(why), "{err:?} should mention {why:?}");
    }
}
