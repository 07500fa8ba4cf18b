//! Tidy checks that guard the architecture: `shared` stays free of I/O dependencies,
//! `client` and `server` never depend on each other, every Rust file opens with a `//!`
//! doc saying what it is for, and every schema in `schemas/` parses.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn dependencies(package: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(package).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn shared_has_no_io_dependency() {
    let io = [
        "tokio",
        "reqwest",
        "rusqlite",
        "actix-web",
        "actix-rt",
        "hyper",
        "mio",
        "async-std",
        "libsqlite3-sys",
    ];
    for dep in dependencies("shared") {
        assert!(
            !io.contains(&dep.as_str()),
            "shared must stay sans-IO but depends on {dep}"
        );
    }
}

#[test]
fn client_and_server_never_depend_on_each_other() {
    assert!(!dependencies("client").contains(&"intake-server".to_string()));
    assert!(!dependencies("server").contains(&"intake-client".to_string()));
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    for package in ["shared", "client", "server", "tests", "bench", "web"] {
        for sub in ["src", "tests", "benches", "examples"] {
            rust_files(&root().join(package).join(sub), &mut files);
        }
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` doc: {missing:?}");
}

#[test]
fn every_schema_parses() {
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("schemas")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        intake_shared::Form::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= 2);
}
