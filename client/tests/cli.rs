//! End-to-end tests of the `intake` binary: each test runs the real executable on a
//! fresh encrypted store in a temporary directory and checks what it prints, its exit
//! code, and that wrong input changes nothing. Concurrent edits need two devices, so the
//! conflict test builds a second store with the library and merges it in.

use std::io::Write;
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

/// `intake --home HOME ARGS...` with `pass` as INTAKE_PASSPHRASE (or none), no
/// terminal, and nothing inherited from the developer's environment (no editor either).
fn intake_command(home: &Path, pass: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intake"));
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("INTAKE_HOME")
        .env_remove("INTAKE_LANG")
        .env_remove("INTAKE_PASSPHRASE")
        .env_remove("VISUAL")
        .env_remove("EDITOR")
        .stdin(Stdio::null());
    if let Some(pass) = pass {
        cmd.env("INTAKE_PASSPHRASE", pass);
    }
    cmd
}

/// Runs `intake --home HOME ARGS...` as [`intake_command`] prepares it.
fn intake_with(home: &Path, pass: Option<&str>, args: &[&str]) -> Run {
    finish(intake_command(home, pass, args), pass, args, None)
}

/// Runs `cmd`, writing `stdin` (if any) to its standard input, and checks that the
/// passphrase was not printed.
fn finish(mut cmd: Command, pass: Option<&str>, args: &[&str], stdin: Option<&[u8]>) -> Run {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running intake");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // intake may refuse before reading: a broken pipe is then expected.
        let _ = pipe.write_all(bytes);
    }
    let out = child.wait_with_output().expect("running intake");
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
        help.contains("@PATH") && help.contains("@-") && help.contains("--edit FIELD"),
        "values kept off the command line are explained: {help}"
    );
    assert!(
        !home.path().join("intake.db").exists(),
        "--help opens no store"
    );
}

// Values kept off the command line: `@PATH`, `@-`, `@@` and `--edit`.

/// Runs a command that must succeed, with `stdin` as its standard input.
fn ok_with_stdin(home: &Path, args: &[&str], stdin: &str) -> String {
    let run = finish(
        intake_command(home, Some(PASS), args),
        Some(PASS),
        args,
        Some(stdin.as_bytes()),
    );
    assert_eq!(run.code, 0, "intake {args:?} failed: {}", run.stderr);
    run.stdout
}

/// Runs a command with `EDITOR` set to `editor` (run by `sh`, with the file to edit as
/// its last argument).
fn with_editor(home: &Path, editor: &str, args: &[&str]) -> Run {
    let mut cmd = intake_command(home, Some(PASS), args);
    cmd.env("EDITOR", editor);
    finish(cmd, Some(PASS), args, None)
}

/// The editor of the editor tests: a script that notes what it was given (the file's
/// content, its path, the modes of the file and its directory, the passphrase if it
/// could see it) in `dir` and replaces
/// the content with `dir/after.txt`, then exits with `dir/exit` (0 when missing).
fn scripted_editor(dir: &Path) -> String {
    let script = dir.join("editor.sh");
    std::fs::write(
        &script,
        r#"d=$(dirname "$0")
cp "$1" "$d/before.txt"
printf '%s' "$1" > "$d/path"
printf '%s' "${INTAKE_PASSPHRASE-}" > "$d/passphrase"
stat -c '%a' "$1" "$(dirname "$1")" | tr '\n' ' ' > "$d/modes"
cat "$d/after.txt" > "$1"
exit $(cat "$d/exit" 2>/dev/null || echo 0)
"#,
    )
    .unwrap();
    format!("sh {}", script.display())
}

#[test]
fn values_come_from_files_with_their_trailing_newline_dropped() {
    let home = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let name = files.path().join("name.txt");
    let story = files.path().join("story.txt");
    let note = files.path().join("note.txt");
    std::fs::write(&name, "Drita Krasniqi\n").unwrap();
    std::fs::write(&story, "Line one.\n\nLine «two» — Ђорђевић.\n").unwrap();
    std::fs::write(&note, "re-ask consent\r\n").unwrap();
    let at = |p: &Path| format!("@{}", p.display());

    let id = new_record(
        home.path(),
        &[
            &format!("full_name={}", at(&name)),
            &format!("narrative={}", at(&story)),
            "village=@@Zhur",
            "consent_intake=yes",
        ],
    );
    let fields = show(home.path(), &id)["fields"].clone();
    assert_eq!(fields["full_name"], json!("Drita Krasniqi"));
    assert_eq!(
        fields["narrative"],
        json!("Line one.\n\nLine «two» — Ђорђевић."),
        "inner newlines are kept, only the last one is dropped"
    );
    assert_eq!(fields["village"], json!("@Zhur"), "@@ is a literal @");

    ok(home.path(), &["comment", &id, &at(&story)]);
    ok(home.path(), &["submit", &id]);
    ok(
        home.path(),
        &["status", &id, "needs_changes", "--note", &at(&note)],
    );
    let record = show(home.path(), &id);
    assert_eq!(
        record["comments"][0]["text"],
        json!("Line one.\n\nLine «two» — Ђорђевић.")
    );
    assert_eq!(record["review_note"], json!("re-ask consent"));
}

#[test]
fn values_come_from_standard_input() {
    let home = tempfile::tempdir().unwrap();
    let id = ok_with_stdin(
        home.path(),
        &[
            "new",
            "intake",
            "--set",
            "full_name=@-",
            "--set",
            "urgency=high",
        ],
        "Mirlinda Berisha\n",
    )
    .trim()
    .to_string();
    ok_with_stdin(
        home.path(),
        &["edit", &id, "--set", "narrative=@-"],
        "The children were placed\nin a separate class.\n",
    );
    ok_with_stdin(
        home.path(),
        &[
            "followup",
            &id,
            "--set",
            "date=2026-11-28",
            "--set",
            "type=visit",
            "--set",
            "outcome=@-",
        ],
        "met the director",
    );
    ok_with_stdin(home.path(), &["comment", &id, "@-"], "call after 17:00\n");
    let record = show(home.path(), &id);
    assert_eq!(record["fields"]["full_name"], json!("Mirlinda Berisha"));
    assert_eq!(record["fields"]["urgency"], json!("high"));
    assert_eq!(
        record["fields"]["narrative"],
        json!("The children were placed\nin a separate class.")
    );
    assert_eq!(
        record["actions"][0]["fields"]["outcome"],
        json!("met the director")
    );
    assert_eq!(record["comments"][0]["text"], json!("call after 17:00"));
}

#[test]
fn values_read_from_files_and_stdin_get_the_form_checks_of_typed_ones() {
    let home = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let long = files.path().join("long.txt");
    std::fs::write(&long, "x".repeat(201)).unwrap();
    let err = refused(
        home.path(),
        &[
            "new",
            "intake",
            "--set",
            &format!("full_name=@{}", long.display()),
        ],
    );
    assert!(err.contains("(full_name)"), "{err}");
    let run = finish(
        intake_command(
            home.path(),
            Some(PASS),
            &["new", "intake", "--set", "urgency=@-"],
        ),
        Some(PASS),
        &[],
        Some(b"extreme\n"),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("low, medium, high, critical"),
        "{}",
        run.stderr
    );
    assert_eq!(json_of(home.path(), &["list", "--json"]), json!([]));
}

#[test]
fn unreadable_values_exit_2_and_change_nothing() {
    let home = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let id = new_record(home.path(), &["full_name=Drita"]);
    let before = show(home.path(), &id);
    let missing = files.path().join("missing.txt");
    let latin1 = files.path().join("latin1.txt");
    std::fs::write(&latin1, b"Mirlinda Berisha, Ferizaj \xeb\n").unwrap();
    let huge = files.path().join("huge.txt");
    std::fs::write(&huge, vec![b'a'; (1 << 20) + 1]).unwrap();
    let (missing, latin1, huge) = (
        format!("narrative=@{}", missing.display()),
        format!("narrative=@{}", latin1.display()),
        format!("narrative=@{}", huge.display()),
    );
    let cases: &[(&[&str], &str)] = &[
        (&["edit", &id, "--set", &missing], "cannot read"),
        (&["new", "intake", "--set", &missing], "cannot read"),
        (&["edit", &id, "--set", &latin1], "is not UTF-8 text"),
        (&["edit", &id, "--set", &huge], "larger than 1 MiB"),
        (&["edit", &id, "--set", "narrative=@"], "needs a file name"),
        (
            &[
                "edit",
                &id,
                "--set",
                "full_name=@-",
                "--set",
                "narrative=@-",
            ],
            "standard input holds one value",
        ),
        (
            &[
                "new",
                "intake",
                "--set",
                "full_name=@-",
                "--edit",
                "narrative",
            ],
            "cannot be used together",
        ),
        (
            &["edit", &id, "--set", "narrative=x", "--edit", "narrative"],
            "both --set and --edit",
        ),
        (&["comment", &id, &missing[10..]], "cannot read"),
        (
            &["resolve", &id, "narrative", &missing[10..]],
            "cannot read",
        ),
        (
            &["status", &id, "draft", "--note", &latin1[10..]],
            "not UTF-8",
        ),
    ];
    for (args, expected) in cases {
        let err = refused(home.path(), args);
        assert!(
            err.contains(expected),
            "intake {args:?}: {err:?} lacks {expected:?}"
        );
    }
    assert_eq!(
        json_of(home.path(), &["list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(show(home.path(), &id), before);
}

#[test]
fn edit_opens_the_editor_on_a_private_file_prefilled_with_the_current_value() {
    let home = tempfile::tempdir().unwrap();
    let ed = tempfile::tempdir().unwrap();
    let editor = scripted_editor(ed.path());
    let note = |name: &str| std::fs::read_to_string(ed.path().join(name)).unwrap();

    std::fs::write(ed.path().join("after.txt"), "First account.\n").unwrap();
    let run = with_editor(
        home.path(),
        &editor,
        &[
            "new",
            "intake",
            "--set",
            "full_name=Drita",
            "--edit",
            "narrative",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.stdout.trim().to_string();
    assert_eq!(note("before.txt"), "", "a new value starts empty");
    assert_eq!(note("modes"), "600 700 ", "file and directory are private");
    assert_eq!(
        note("passphrase"),
        "",
        "the editor is not given the passphrase"
    );
    let used = std::path::PathBuf::from(note("path"));
    assert!(used.ends_with("narrative.txt"), "{used:?}");
    assert!(
        !used.parent().unwrap().exists(),
        "the editor's directory is removed: {used:?}"
    );

    std::fs::write(
        ed.path().join("after.txt"),
        "First account.\nSecond visit.\n",
    )
    .unwrap();
    let run = with_editor(home.path(), &editor, &["edit", &id, "--edit", "narrative"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(note("before.txt"), "First account.\n", "pre-filled");
    let fields = show(home.path(), &id)["fields"].clone();
    assert_eq!(fields["narrative"], json!("First account.\nSecond visit."));
    assert_eq!(fields["full_name"], json!("Drita"));

    // $VISUAL comes first; any field works, checked like a typed value.
    std::fs::write(ed.path().join("after.txt"), "critical\n").unwrap();
    let mut cmd = intake_command(home.path(), Some(PASS), &["edit", &id, "--edit", "urgency"]);
    cmd.env("VISUAL", &editor).env("EDITOR", "false");
    let run = finish(cmd, Some(PASS), &[], None);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        show(home.path(), &id)["fields"]["urgency"],
        json!("critical")
    );
    std::fs::write(ed.path().join("after.txt"), "extreme\n").unwrap();
    let run = with_editor(home.path(), &editor, &["edit", &id, "--edit", "urgency"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("low, medium, high, critical"),
        "{}",
        run.stderr
    );
    assert_eq!(
        show(home.path(), &id)["fields"]["urgency"],
        json!("critical")
    );
}

#[test]
fn an_unchanged_or_empty_edit_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let ed = tempfile::tempdir().unwrap();
    let editor = scripted_editor(ed.path());
    let id = new_record(home.path(), &["full_name=Drita", "narrative=Told once."]);
    let before = show(home.path(), &id);
    for after in ["Told once.\n", "", "  \n\n"] {
        std::fs::write(ed.path().join("after.txt"), after).unwrap();
        let run = with_editor(home.path(), &editor, &["edit", &id, "--edit", "narrative"]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stderr.contains("nothing to change"),
            "{after:?}: {}",
            run.stderr
        );
        assert_eq!(
            show(home.path(), &id),
            before,
            "{after:?} changed the record"
        );
    }
}

#[test]
fn a_failing_or_missing_editor_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let ed = tempfile::tempdir().unwrap();
    let editor = scripted_editor(ed.path());
    let id = new_record(home.path(), &["full_name=Drita", "narrative=Told once."]);
    let before = show(home.path(), &id);

    std::fs::write(ed.path().join("after.txt"), "Half-typed, then :cq").unwrap();
    std::fs::write(ed.path().join("exit"), "1").unwrap();
    let run = with_editor(home.path(), &editor, &["edit", &id, "--edit", "narrative"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    let used = std::path::PathBuf::from(std::fs::read_to_string(ed.path().join("path")).unwrap());
    assert!(
        !used.parent().unwrap().exists(),
        "removed after a failure too"
    );
    let run = with_editor(
        home.path(),
        &editor,
        &[
            "new",
            "intake",
            "--set",
            "full_name=Arben",
            "--edit",
            "narrative",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");

    let run = with_editor(
        home.path(),
        "/nonexistent/editor",
        &["edit", &id, "--edit", "narrative"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("set VISUAL or EDITOR"),
        "{}",
        run.stderr
    );

    // An unknown field is refused before any editor opens.
    std::fs::remove_file(ed.path().join("path")).unwrap();
    let run = with_editor(home.path(), &editor, &["edit", &id, "--edit", "shoe_size"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(!ed.path().join("path").exists(), "the editor was not run");

    assert_eq!(
        json_of(home.path(), &["list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(show(home.path(), &id), before);
}

/// The point of `@-`: while `intake` waits for the story on its standard input, the
/// process's argument list (what `ps` shows to every local user) holds none of it.
#[cfg(target_os = "linux")]
#[test]
fn a_narrative_given_on_standard_input_never_appears_in_the_process_arguments() {
    let home = tempfile::tempdir().unwrap();
    let story = "She was told the Roma class is 'for her own good'. Canary 7f3a9c.";
    let args = ["new", "intake", "--set", "narrative=@-", "--json"];
    let mut cmd = intake_command(home.path(), Some(PASS), &args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let cmdline = format!("/proc/{}/cmdline", child.id());
    // Until exec, /proc shows the test's own arguments: wait for intake's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let shown = loop {
        let shown = String::from_utf8_lossy(&std::fs::read(&cmdline).unwrap()).into_owned();
        if shown.contains("narrative=@-") {
            break shown;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "intake did not start: {shown}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    assert!(!shown.contains("Canary"), "{shown}");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(story.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: Json = serde_json::from_slice(&out.stdout).unwrap();
    let record = show(home.path(), id["id"].as_str().unwrap());
    assert_eq!(record["fields"]["narrative"], json!(story));
}

/// Text written on another device reaches this terminal: a comment, a field and a note
/// holding escape sequences and a bidirectional override are shown escaped in `show`,
/// `list` and `conflicts`, never acted on, while `--json` keeps the data as it is.
#[test]
fn other_peoples_text_never_drives_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    let hostile = "clear\x1b[2J\x1b]0;title\x07 \u{202e}fdp.exe";
    let id = new_record(home.path(), &[&format!("full_name={hostile}")]);
    ok(home.path(), &["comment", &id, hostile]);
    for args in [vec!["show", id.as_str()], vec!["list"]] {
        let out = ok(home.path(), &args);
        assert!(
            !out.chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{args:?} printed a control character: {out:?}"
        );
        assert!(!out.contains('\u{202e}'), "{args:?}: {out:?}");
    }
    let shown = ok(home.path(), &["show", &id]);
    assert!(shown.contains("clear\\u001b[2J"), "{shown:?}");
    let record = show(home.path(), &id);
    assert_eq!(record["fields"]["full_name"], json!(hostile));
    assert_eq!(record["comments"][0]["text"], json!(hostile));
}

/// Issue 12: a new store refuses a weak passphrase (and says what to use instead);
/// nothing is created, so the same command with a strong one starts afresh.
#[test]
fn a_new_store_refuses_a_weak_passphrase_and_creates_nothing() {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("store");
    for weak in ["password1234", "kratk0"] {
        let run = intake_with(&store, Some(weak), &["list"]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("random words"), "{}", run.stderr);
        assert!(run.stderr.contains("nothing was created"), "{}", run.stderr);
        assert!(!store.exists(), "a refused passphrase creates nothing");
    }
    let run = intake_with(&store, Some(PASS), &["list"]);
    assert_eq!(run.code, 0, "{run:?}");
}
