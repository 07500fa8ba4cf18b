//! The `intake-server` binary as an administrator meets it: `init` only on a terminal
//! or with `--json`, and only once; `serve`, `user` and `device` refuse a missing or
//! mistyped data directory instead of creating an installation; `backup` never
//! overwrites; `restore` refuses while `serve` runs; with a PostgreSQL `database`
//! (issue 14) every command runs there but `backup` and `restore`, which point at
//! PostgreSQL's own tools, and the URL never has a password on the command line;
//! `migrate-data` moves an installation there once.

use std::io::{BufRead, BufReader, Read};
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

// Each file that includes the cluster uses a part of it.
#[allow(dead_code)]
#[path = "../../tests/src/postgres.rs"]
mod pg_cluster;

#[test]
fn every_command_runs_on_postgres_but_backup_and_restore() {
    let Some(db) =
        pg_cluster::database("cli_init::every_command_runs_on_postgres_but_backup_and_restore")
    else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let on_pg = |args: &[&str]| {
        let mut c = server(&data);
        c.args(args).env("INTAKE_SERVER_DATABASE", &db.url);
        c
    };
    // Before `init`: the database holds no store, and `serve` says so.
    let o = run(&mut on_pg(&["user", "list"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("holds no store"), "{}", stderr(&o));

    let o = run(&mut on_pg(&["init", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["enrolment"]["enrolment_code"].is_string(), "{v}");
    assert!(v["sign_in"]["code"].is_string(), "{v}");
    assert!(
        v["key_file"].is_null(),
        "no SQLCipher key for PostgreSQL: {v}"
    );
    assert!(!data.exists(), "init on PostgreSQL made a data directory");
    let o = run(&mut on_pg(&["init", "--json"]));
    assert!(!o.status.success(), "a second init");
    assert!(
        stderr(&o).contains("already holds a store"),
        "{}",
        stderr(&o)
    );

    let o = run(&mut on_pg(&[
        "user",
        "add",
        "drita",
        "--role",
        "paralegal",
        "--team",
        "prizren",
        "--json",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&mut on_pg(&["user", "list", "--json"]));
    let users = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        users.contains("\"admin\"") && users.contains("\"drita\""),
        "{users}"
    );
    let o = run(&mut on_pg(&["user", "disable", "drita"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&mut on_pg(&["device", "list", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&mut on_pg(&[
        "record",
        "erase",
        "7f0c8a4e-3d2b-4c1a-9e8f-0a1b2c3d4e5f",
        "--reason",
        "asked by the client",
        "--yes",
    ]));
    assert!(!o.status.success(), "erased a record that does not exist");
    assert!(stderr(&o).contains("7f0c8a4e"), "{}", stderr(&o));
    let o = run(on_pg(&["retention", "--dry-run"]).env("INTAKE_SERVER_RETENTION_DAYS", "30"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 record(s)"));

    // Backup and restore are PostgreSQL's own tools there.
    let file = root.path().join("backup.db");
    let file_arg = file.to_string_lossy().into_owned();
    for args in [
        &["backup", "--to", file_arg.as_str()][..],
        &["restore", file_arg.as_str()],
    ] {
        let o = run(&mut on_pg(args));
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains("pg_dump"), "{args:?}: {}", stderr(&o));
        assert!(!file.exists());
    }

    // `serve` serves from it, and never prints the URL (it may carry a password).
    let mut serving = on_pg(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    // Kept open while the server runs: it logs its requests to stdout.
    let mut out = BufReader::new(serving.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    let health = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(|url| get(url, "/health"));
    // A service manager stops it with SIGTERM: it must stop cleanly. (Its connections
    // were once dropped inside the async runtime, where the PostgreSQL client's own
    // blocking close panics: the process aborted instead of exiting.)
    let term = Command::new("kill")
        .args(["-TERM", &serving.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let mut err = String::new();
    let _ = serving.stderr.take().unwrap().read_to_string(&mut err);
    let status = serving.wait().unwrap();
    assert!(
        status.success() && !err.contains("panicked"),
        "serve on PostgreSQL did not stop cleanly on SIGTERM ({status}): {err}"
    );
    // The migration's `IF NOT EXISTS` on a database already set up is not news.
    assert!(!err.contains("NOTICE"), "{err}");
    assert!(line.contains("data in PostgreSQL"), "{line}");
    assert!(!line.contains(&db.url), "{line}");
    let health = health.expect("a URL in the listening line");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(!data.exists(), "serve on PostgreSQL made a data directory");

    // A password on the command line is still refused, and not repeated.
    let o = run(server(&data).args(["--database", "postgres://intake:s3cret@db/intake", "serve"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("INTAKE_SERVER_DATABASE"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("s3cret"), "{}", stderr(&o));
}

/// A plain HTTP/1.1 GET on loopback: the status line and what follows.
fn get(url: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the server");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // Up to the end, or to a reset after the answer came (the server may close the
    // connection hard once it has answered `Connection: close`).
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if !answer.is_empty() => {
                let _ = e;
                break;
            }
            Err(e) => panic!("reading the answer to GET {path}: {e}"),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn migrate_data_moves_an_installation_once_and_never_takes_a_password_flag() {
    let Some(db) = pg_cluster::database(
        "cli_init::migrate_data_moves_an_installation_once_and_never_takes_a_password_flag",
    ) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    assert!(run(server(&data).args(["init", "--json"])).status.success());
    let o = run(server(&data).args(["migrate-data", "--to", "postgres://intake:s3cret@db/x"]));
    assert!(!o.status.success());
    assert!(!stderr(&o).contains("s3cret"), "{}", stderr(&o));

    let o = run(server(&data).args(["migrate-data", "--json", "--to", &db.url]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rows"][0], serde_json::json!(["users", 1]), "{v}");
    let o = run(server(&data).args(["migrate-data", "--to", &db.url]));
    assert!(!o.status.success(), "migrated twice");
    assert!(
        stderr(&o).contains("already holds a store"),
        "{}",
        stderr(&o)
    );

    // The installation answers from PostgreSQL now.
    let o = run(server(&data)
        .args(["user", "list", "--json"])
        .env("INTAKE_SERVER_DATABASE", &db.url));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"admin\""));
}
