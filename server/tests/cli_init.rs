//! The `intake-server` binary as an administrator meets it: `init` only on a terminal
//! or with `--json`, and only once; `serve`, `user` and `device` refuse a missing or
//! mistyped data directory instead of creating an installation; `backup` never
//! overwrites; `restore` refuses while `serve` runs; a PostgreSQL `database` is
//! refused by every command until that backend is complete (issue 14), and never
//! with a password on the command line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn server(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_intake-server"));
    c.arg("--data").arg(data);
    c.env_remove("INTAKE_SERVER_KEY")
        .env_remove("INTAKE_SERVER_KEY_FILE")
        .env_remove("INTAKE_SERVER_DATA")
        .env_remove("INTAKE_SERVER_DATABASE")
        .stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("run intake-server")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn init_needs_a_terminal_or_json_and_runs_once() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // Output captured (not a terminal), no --json: refused, nothing created.
    let o = run(server(&data).arg("init"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--json"), "{}", stderr(&o));
    assert!(!data.exists(), "init created something while refusing");

    let o = run(server(&data).args(["init", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["enrolment"]["enrolment_code"].is_string(), "{v}");
    assert!(v["sign_in"]["code"].is_string(), "{v}");
    assert!(data.join("intake-server.key").exists());

    let o = run(server(&data).args(["init", "--json"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("already holds a store"),
        "{}",
        stderr(&o)
    );

    let o = run(server(&data).args(["user", "list", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"admin\""));
}

#[test]
fn serve_user_and_device_refuse_a_missing_data_directory() {
    let root = tempfile::tempdir().unwrap();
    let typo = root.path().join("intake-dat");
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["user", "list"],
        &[
            "user",
            "add",
            "drita",
            "--role",
            "paralegal",
            "--team",
            "prizren",
        ],
        &["device", "list"],
        &["backup", "--to", "/nonexistent/x.db"],
    ] {
        let o = run(server(&typo).args(args));
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert!(e.contains(&typo.display().to_string()), "{args:?}: {e}");
        assert!(
            args[0] == "backup" || e.contains("intake-server init"),
            "{args:?}: {e}"
        );
        assert!(!typo.exists(), "{args:?} created the directory");
    }
}

#[test]
fn backup_never_overwrites_and_restore_waits_for_the_server_to_stop() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    assert!(run(server(&data).args(["init", "--json"])).status.success());
    let file = root.path().join("backup.db");
    let o = run(server(&data).args(["backup", "--to"]).arg(&file));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(server(&data).args(["backup", "--to"]).arg(&file));
    assert!(!o.status.success(), "a backup overwrote a file");

    let mut serving = server(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serving.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line}");
    let o = run(server(&data).arg("restore").arg(&file));
    let _ = serving.kill();
    let _ = serving.wait();
    assert!(!o.status.success(), "restored under a running server");
    assert!(stderr(&o).contains("a server is running"), "{}", stderr(&o));

    let o = run(server(&data).args(["restore", "--json"]).arg(&file));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let aside = v["replaced"]
        .as_str()
        .expect("the replaced database is kept");
    assert!(Path::new(aside).exists());
}

#[test]
fn a_postgres_database_is_refused_until_the_backend_is_complete() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let url = "postgres://intake@127.0.0.1:1/intake";
    for args in [
        &["--database", url, "init", "--json"][..],
        &["--database", url, "serve"],
        &["--database", url, "user", "list"],
    ] {
        let o = run(server(&data).args(args));
        assert!(!o.status.success(), "{args:?}");
        assert!(
            stderr(&o).contains("not supported by this server yet"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = run(server(&data)
        .args(["init", "--json"])
        .env("INTAKE_SERVER_DATABASE", url));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not supported by this server yet"));
    assert!(!data.exists(), "nothing was created");

    // A password on the command line is refused, and not repeated.
    let o = run(server(&data).args(["--database", "postgres://intake:s3cret@db/intake", "serve"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("INTAKE_SERVER_DATABASE"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("s3cret"), "{}", stderr(&o));
}
