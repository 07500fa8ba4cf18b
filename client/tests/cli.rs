//! End-to-end tests of the `intake` binary: each test runs the real executable on a
//! fresh encrypted store in a temporary directory and checks what it prints, its exit
//! code, and that wrong input changes nothing. Concurrent edits need two devices, so the
//! conflict test builds a second store with the library and merges it in.

use std::path::Path;
use std::process::{Command, Stdio};

use intake_client::store::{Key, Store};
use serde_json::{Value as Json, json};

const PASS: &str = "correct horse battery staple";

/// What one run of `intake` did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `intake --home HOME ARGS...` with `pass` as INTAKE_PASSPHRASE (or none), no
/// terminal, and nothing inherited from the developer's environment.
fn intake_with(home: &Path, pass: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intake"));
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("INTAKE_HOME")
        .env_remove("INTAKE_LANG")
        .env_remove("INTAKE_PASSPHRASE")
        .stdin(Stdio::null());
    if let Some(pass) = pass {
        cmd.env("INTAKE_PASSPHRASE", pass);
    }
    let out = cmd.output().expect("running intake");
    let run = Run {
        code: out.status.code().expect("intake exited normally"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    };
    // Whatever happens, the passphrase is never echoed.
    for p in [Some(PASS), pass].into_iter().flatten() {
        assert!(
            !run.stdout.contains(p) && !run.stderr.contains(p),
            "{args:?} printed the passphrase"
        );
    }
    run
}

fn intake(home: &Path, args: &[&str]) -> Run {
    intake_with(home, Some(PASS), args)
}

/// Runs a command that must succeed; returns its stdout.
fn ok(home: &Path, args: &[&str]) -> String {
    let run = intake(home, args);
    assert_eq!(run.code, 0, "intake {args:?} failed: {}", run.stderr);
    run.stdout
}

/// Runs a command that must fail with exit code 2; returns its stderr.
fn refused(home: &Path, args: &[&str]) -> String {
    let run = intake(home, args);
    assert_eq!(run.code, 2, "intake {args:?}: expected exit 2, got {run:?}");
    assert!(
        run.stderr.starts_with("intake: error: "),
        "{args:?}: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{args:?} printed {}", run.stdout);
    run.stderr
}

fn json_of(home: &Path, args: &[&str]) -> Json {
    serde_json::from_str(&ok(home, args)).expect("JSON output")
}

/// Creates an intake record with `--set` answers; returns its id.
fn new_record(home: &Path, sets: &[&str]) -> String {
    let mut args = vec!["new", "intake"];
    for s in sets {
        args.extend(["--set", s]);
    }
    let id = ok(home, &args).trim().to_string();
    assert_eq!(id.len(), 36, "not an id: {id}");
    id
}

fn show(home: &Path, id: &str) -> Json {
    json_of(home, &["show", id, "--json"])
}

#[test]
fn new_then_show_json_round_trips_typed_values() {
    let home = tempfile::tempdir().unwrap();
    let created = json_of(
        home.path(),
        &[
            "new",
            "intake",
            "--set",
            "full_name=Drita Krasniqi",
            "--set",
            "birth_year=1987",
            "--set",
            "needs_interpreter=yes",
            "--set",
            "intake_date=2026-04-19",
            "--set",
            "municipality=prizren",
            "--json",
        ],
    );
    let id = created["id"].as_str().expect("id").to_string();
    let record = show(home.path(), &id);
    assert_eq!(record["id"], json!(id));
    assert_eq!(record["form"], json!("intake"));
    assert_eq!(record["status"], json!("draft"));
    let fields = &record["fields"];
    assert_eq!(fields["full_name"], json!("Drita Krasniqi"));
    assert_eq!(fields["birth_year"], json!(1987));
    assert_eq!(fields["needs_interpreter"], json!(true));
    assert_eq!(fields["intake_date"], json!("2026-04-19"));
    assert_eq!(fields["municipality"], json!("prizren"));
    assert_eq!(record["conflicts"], json!({}));

    let human = ok(home.path(), &["show", &id]);
    assert!(
        human.starts_with(&format!("Case intake form {id} [draft]")),
        "{human}"
    );
    assert!(human.contains("  Full name: Drita Krasniqi\n"), "{human}");
    assert!(human.contains("  Needs an interpreter?: Yes\n"), "{human}");
    assert!(human.contains("  Municipality: Prizren\n"), "{human}");
}

#[test]
fn edit_changes_the_fields_named_and_keeps_the_others() {
    let home = tempfile::tempdir().unwrap();
    let id = new_record(
        home.path(),
        &["full_name=Arben", "urgency=low", "village=Zhur"],
    );
    let run = intake(
        home.path(),
        &[
            "edit",
            &id,
            "--set",
            "urgency=high",
            "--set",
            "household_size=6",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    intake(home.path(), &["edit", &id, "--clear", "village"]);
    let fields = show(home.path(), &id)["fields"].clone();
    assert_eq!(fields["urgency"], json!("high"));
    assert_eq!(fields["household_size"], json!(6));
    assert_eq!(fields["full_name"], json!("Arben"));
    assert_eq!(fields.get("village"), None);
}

#[test]
fn followup_appends_an_action_checked_against_the_followup_form() {
    let home = tempfile::tempdir().unwrap();
    let id = new_record(home.path(), &["full_name=Arben"]);
    ok(
        home.path(),
        &[
            "followup",
            &id,
            "--set",
            "date=2026-04-20",
            "--set",
            "type=visit",
            "--set",
            "next_step=Call the school",
        ],
    );
    let missing = refused(home.path(), &["followup", &id, "--set", "date=2026-04-21"]);
    assert!(missing.contains("(type)"), "{missing}");
    let bad = refused(
        home.path(),
        &[
            "followup",
            &id,
            "--set",
            "date=2026-04-21",
            "--set",
            "type=party",
        ],
    );
    assert!(bad.contains("visit"), "{bad}");

    let actions = show(home.path(), &id)["actions"].clone();
    assert_eq!(actions.as_array().unwrap().len(), 1, "{actions}");
    assert_eq!(actions[0]["form"], json!("followup"));
    assert_eq!(actions[0]["fields"]["type"], json!("visit"));
    assert_eq!(actions[0]["fields"]["date"], json!("2026-04-20"));
    assert_eq!(actions[0]["fields"]["next_step"], json!("Call the school"));
    let human = ok(home.path(), &["show", &id]);
    assert!(human.contains("Action type: Visit"), "{human}");
}

#[test]
fn comments_are_appended_and_an_empty_one_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let id = new_record(home.path(), &[]);
    ok(
        home.path(),
        &["comment", &id, "Re-check the birth certificate"],
    );
    refused(home.path(), &["comment", &id, "  "]);
    let comments = show(home.path(), &id)["comments"].clone();
    assert_eq!(comments.as_array().unwrap().len(), 1, "{comments}");
    assert_eq!(comments[0]["text"], json!("Re-check the birth certificate"));
    assert!(ok(home.path(), &["show", &id]).contains("Re-check the birth certificate"));
}

#[test]
fn list_filters_by_status() {
    let home = tempfile::tempdir().unwrap();
    let draft = new_record(home.path(), &["full_name=Arben", "municipality=gjakove"]);
    let done = new_record(
        home.path(),
        &["full_name=Drita", "consent_intake=yes", "urgency=high"],
    );
    ok(home.path(), &["submit", &done]);

    let ids = |list: Json| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(json_of(
            home.path(),
            &["list", "--status", "submitted", "--json"]
        )),
        [done.as_str()]
    );
    assert_eq!(
        ids(json_of(
            home.path(),
            &["list", "--status", "draft", "--json"]
        )),
        [draft.as_str()]
    );
    let all = json_of(home.path(), &["list", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["id"], json!(done), "most recently changed first");
    assert_eq!(all[0]["urgency"], json!("high"));

    let table = ok(home.path(), &["list"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains(&draft) && table.contains(&done), "{table}");
    assert!(
        table.contains("Gjakovë") || table.contains("Gjakov"),
        "{table}"
    );
    let sent = ok(home.path(), &["list", "--status", "submitted"]);
    assert!(sent.contains(&done) && !sent.contains(&draft), "{sent}");
    refused(home.path(), &["list", "--status", "lost"]);
}

#[test]
fn show_in_serbian_cyrillic_uses_cyrillic_labels() {
    let home = tempfile::tempdir().unwrap();
    let id = new_record(home.path(), &["full_name=Drita", "needs_interpreter=no"]);
    let human = ok(home.path(), &["show", &id, "--lang", "sr-Cyrl"]);
    assert!(human.starts_with("Образац за пријем случаја"), "{human}");
    assert!(human.contains("  Име и презиме: Drita\n"), "{human}");
    assert!(
        human.contains(": Не\n"),
        "yes/no labels are translated too: {human}"
    );

    // INTAKE_LANG is the default; --lang wins over it.
    let run = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["--home", home.path().to_str().unwrap(), "show", &id])
        .env("INTAKE_PASSPHRASE", PASS)
        .env("INTAKE_LANG", "sq")
        .env_remove("INTAKE_HOME")
        .output()
        .unwrap();
    assert!(
        String::from_utf8(run.stdout)
            .unwrap()
            .contains("Emri dhe mbiemri: Drita")
    );

    // Validation messages follow the language too.
    let err = refused(home.path(), &["submit", &id, "--lang", "sr-Cyrl"]);
    assert!(
        err.contains("Сагласност за евидентирање случаја (consent_intake): обавезно"),
        "{err}"
    );
}

#[test]
fn bad_choice_is_refused_listing_the_allowed_values_and_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let id = new_record(home.path(), &["municipality=prizren"]);
    let list_before = json_of(home.path(), &["list", "--json"]);
    let record_before = show(home.path(), &id);

    let err = refused(
        home.path(),
        &[
            "new",
            "intake",
            "--set",
            "full_name=X",
            "--set",
            "municipality=atlantis",
        ],
    );
    assert!(err.contains("municipality"), "{err}");
    assert!(
        err.contains("prishtine") && err.contains("zvecan"),
        "allowed values listed: {err}"
    );
    let err = refused(
        home.path(),
        &[
            "edit",
            &id,
            "--set",
            "urgency=high",
            "--set",
            "urgency=extreme",
        ],
    );
    assert!(err.contains("low, medium, high, critical"), "{err}");

    assert_eq!(json_of(home.path(), &["list", "--json"]), list_before);
    assert_eq!(show(home.path(), &id), record_before);
}

#[test]
fn input_errors_exit_2_with_a_clear_message() {
    let home = tempfile::tempdir().unwrap();
    let id = new_record(home.path(), &[]);
    let missing = "0193a000-0000-7000-8000-000000000000";
    let cases: &[(&[&str], &str)] = &[
        (
            &["new", "intake", "--set", "shoe_size=42"],
            "shoe_size: no such field",
        ),
        (
            &["edit", &id, "--set", "shoe_size=42"],
            "shoe_size: no such field",
        ),
        (
            &["new", "intake", "--set", "intake_date=19.04.2026"],
            "not a date (expected YYYY-MM-DD)",
        ),
        (
            &["new", "intake", "--set", "birth_year=nineteen"],
            "(birth_year): not a whole number",
        ),
        (
            &["new", "intake", "--set", "birth_year=1850"],
            "(birth_year): out of range 1900–2030",
        ),
        (
            &["new", "intake", "--set", "needs_interpreter=maybe"],
            "answer yes or no",
        ),
        (
            &["new", "intake", "--set", "full_name"],
            "expected FIELD=VALUE",
        ),
        (&["edit", &id, "--set", "urgency"], "expected FIELD=VALUE"),
        (&["new", "visa"], "unknown form \"visa\"; forms: intake"),
        (&["new", "followup"], "intake followup ID"),
        (&["show", "12345"], "not a record id"),
        (&["show", missing], "no record 0193a000"),
        (&["edit", missing, "--set", "urgency=high"], "no record"),
        (&["status", &id, "lost"], "unknown status"),
        (&["show", &id, "--lang", "de"], "unknown language"),
        (
            &["resolve", &id, "urgency", "high"],
            "no conflicting values",
        ),
    ];
    for (args, expected) in cases {
        let err = refused(home.path(), args);
        assert!(
            err.contains(expected),
            "intake {args:?}: {err:?} lacks {expected:?}"
        );
    }
    // Nothing above created or changed a record.
    let list = json_of(home.path(), &["list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(show(home.path(), &id)["fields"], json!({}));
}

#[test]
fn wrong_passphrase_exits_1_and_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let id = new_record(home.path(), &["full_name=Drita"]);
    for args in [&["list"][..], &["edit", &id, "--set", "full_name=Mallory"]] {
        let run = intake_with(home.path(), Some("not the passphrase"), args);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains("intake: error: "), "{}", run.stderr);
        assert!(run.stderr.contains("wrong passphrase"), "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    assert_eq!(
        show(home.path(), &id)["fields"]["full_name"],
        json!("Drita")
    );
}

#[test]
fn without_a_passphrase_or_a_terminal_the_error_says_how_to_give_one() {
    let home = tempfile::tempdir().unwrap();
    let run = intake_with(home.path(), None, &["list"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("INTAKE_PASSPHRASE"), "{}", run.stderr);
    assert!(
        !home.path().join("intake.db").exists(),
        "no store is created without a passphrase"
    );
}

#[test]
fn submit_of_an_incomplete_record_names_the_missing_fields() {
    let home = tempfile::tempdir().unwrap();
    let id = new_record(home.path(), &["urgency=high"]);
    let err = refused(home.path(), &["submit", &id]);
    assert!(err.contains("incomplete"), "{err}");
    assert!(
        err.contains("full_name") && err.contains("consent_intake"),
        "{err}"
    );
    assert_eq!(show(home.path(), &id)["status"], json!("draft"));

    ok(
        home.path(),
        &[
            "edit",
            &id,
            "--set",
            "full_name=Drita",
            "--set",
            "consent_intake=no",
        ],
    );
    ok(home.path(), &["submit", &id]);
    assert_eq!(show(home.path(), &id)["status"], json!("submitted"));

    // A supervisor sends it back; the paralegal sees why.
    ok(
        home.path(),
        &["status", &id, "needs_changes", "--note", "re-ask consent"],
    );
    let human = ok(home.path(), &["show", &id]);
    assert!(human.contains("[needs changes: re-ask consent]"), "{human}");
    let record = show(home.path(), &id);
    assert_eq!(record["status"], json!("needs_changes"));
    assert_eq!(record["review_note"], json!("re-ask consent"));
    assert!(ok(home.path(), &["list"]).contains("re-ask consent"));
}

/// Opens a store directory with the library, as a second device would.
fn open_store(dir: &Path) -> Store {
    let key = Key::from_passphrase(dir, PASS).unwrap();
    Store::open(dir, &key).unwrap()
}

#[test]
fn concurrent_edits_show_as_a_conflict_until_resolved() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let id = new_record(
        a.path(),
        &["full_name=Drita", "consent_intake=yes", "urgency=low"],
    );
    let record_id = id.parse().unwrap();
    {
        // Device B gets a copy of the record (what sync will do).
        let store_a = open_store(a.path());
        let mut store_b = open_store(b.path());
        let mut record = store_a.get(record_id).unwrap();
        record.set_identity(store_b.identity());
        store_b.save(&mut record).unwrap();
    }
    // Both devices change the urgency without seeing each other's change.
    ok(a.path(), &["edit", &id, "--set", "urgency=medium"]);
    ok(b.path(), &["edit", &id, "--set", "urgency=critical"]);
    {
        let mut store_a = open_store(a.path());
        let store_b = open_store(b.path());
        let mut rec_a = store_a.get(record_id).unwrap();
        let mut rec_b = store_b.get(record_id).unwrap();
        rec_a.merge(&mut rec_b).unwrap();
        store_a.save(&mut rec_a).unwrap();
    }

    let conflicts = json_of(a.path(), &["conflicts", "--json"]);
    let list = conflicts.as_array().unwrap();
    assert_eq!(list.len(), 1, "{conflicts}");
    assert_eq!(list[0]["id"], json!(id));
    assert_eq!(list[0]["conflicts"][0]["field"], json!("urgency"));
    let mut values: Vec<&str> = list[0]["conflicts"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, ["critical", "medium"]);
    let devices: Vec<&str> = list[0]["conflicts"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["device"].as_str().unwrap())
        .collect();
    assert_ne!(devices[0][..8], devices[1][..8], "two devices wrote them");

    let human = ok(a.path(), &["conflicts"]);
    assert!(
        human.contains(&id) && human.contains("Urgency (urgency)"),
        "{human}"
    );
    assert!(
        human.contains("Medium") && human.contains("Critical"),
        "{human}"
    );
    assert!(
        human.contains(&format!("device {}", &devices[0][..8])),
        "{human}"
    );
    let shown = ok(a.path(), &["show", &id]);
    assert!(shown.contains("Urgency: CONFLICT"), "{shown}");
    assert!(ok(a.path(), &["list"]).contains("conflict"));
    // Both values stay until someone chooses: the record cannot be submitted.
    let err = refused(a.path(), &["submit", &id]);
    assert!(err.contains("(urgency)"), "{err}");

    refused(a.path(), &["resolve", &id, "urgency", "extreme"]);
    ok(a.path(), &["resolve", &id, "urgency", "high"]);
    assert_eq!(json_of(a.path(), &["conflicts", "--json"]), json!([]));
    let record = show(a.path(), &id);
    assert_eq!(record["fields"]["urgency"], json!("high"));
    assert_eq!(record["conflicts"], json!({}));
    ok(a.path(), &["submit", &id]);
}

/// Two supervisors decide one submitted case on two devices: `show` lists both
/// decisions with who made them (human and JSON, apart from the field conflicts), and
/// `resolve ID status VALUE` settles it like a field.
#[test]
fn a_status_decided_twice_at_once_shows_as_a_conflict_until_resolved() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let id = new_record(a.path(), &["full_name=Drita", "consent_intake=yes"]);
    ok(a.path(), &["submit", &id]);
    ok(a.path(), &["user", "merita"]);
    let record_id = id.parse().unwrap();
    {
        let store_a = open_store(a.path());
        let mut store_b = open_store(b.path());
        store_b.set_user("valbona").unwrap();
        let mut record = store_a.get(record_id).unwrap();
        record.set_identity(store_b.identity());
        store_b.save(&mut record).unwrap();
    }
    ok(
        a.path(),
        &["status", &id, "approved", "--note", "well documented"],
    );
    ok(
        b.path(),
        &["status", &id, "needs_changes", "--note", "re-ask consent"],
    );
    {
        let mut store_a = open_store(a.path());
        let store_b = open_store(b.path());
        let mut rec_a = store_a.get(record_id).unwrap();
        let mut rec_b = store_b.get(record_id).unwrap();
        rec_a.merge(&mut rec_b).unwrap();
        store_a.save(&mut rec_a).unwrap();
    }

    let record = show(a.path(), &id);
    assert_eq!(record["conflicts"], json!({}), "no field is in conflict");
    let mut decisions: Vec<(&str, &str)> = record["review_conflicts"]["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["value"].as_str().unwrap(), v["author"].as_str().unwrap()))
        .collect();
    decisions.sort();
    assert_eq!(
        decisions,
        [("approved", "merita"), ("needs_changes", "valbona")]
    );
    assert_eq!(
        record["review_conflicts"]["review_note"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let shown = ok(a.path(), &["show", &id]);
    assert!(
        shown.contains(&format!(
            "status: CONFLICT, 2 values written at the same time \
             (choose one: intake resolve {id} status VALUE)"
        )),
        "{shown}"
    );
    assert!(shown.contains("approved [merita, device"), "{shown}");
    assert!(shown.contains("needs_changes [valbona, device"), "{shown}");
    let listed = json_of(a.path(), &["conflicts", "--json"]);
    assert_eq!(
        listed[0]["conflicts"][0]["kind"],
        json!("review"),
        "{listed}"
    );
    assert!(ok(a.path(), &["list"]).contains("conflict"));

    let err = refused(a.path(), &["resolve", &id, "status", "done"]);
    assert!(err.contains("unknown status \"done\""), "{err}");
    let err = refused(a.path(), &["resolve", &id, "assigned_to", "besa"]);
    assert!(err.contains("use `intake assign`"), "{err}");
    ok(a.path(), &["resolve", &id, "status", "needs-changes"]);
    ok(a.path(), &["resolve", &id, "review_note", "re-ask consent"]);
    let record = show(a.path(), &id);
    assert_eq!(record["review_conflicts"], json!({}));
    assert_eq!(record["status"], json!("needs_changes"));
    assert_eq!(record["review_note"], json!("re-ask consent"));
    assert_eq!(json_of(a.path(), &["conflicts", "--json"]), json!([]));
}

#[test]
fn help_describes_every_command() {
    let home = tempfile::tempdir().unwrap();
    let help = ok(home.path(), &["--help"]);
    for command in [
        "new",
        "edit",
        "followup",
        "comment",
        "submit",
        "status",
        "show",
        "list",
        "conflicts",
        "resolve",
    ] {
        assert!(
            help.contains(&format!("\n  {command} ")),
            "{command} missing from help:\n{help}"
        );
    }
    assert!(help.contains("INTAKE_PASSPHRASE"), "{help}");
    assert!(
        !home.path().join("intake.db").exists(),
        "--help opens no store"
    );
}
