//! Tidy checks that guard what `docs/ARCHITECTURE.md` claims: `shared` stays free of
//! I/O (no I/O crate among its dependencies, direct or transitive, and no file, network,
//! thread, process or clock call in its code), only `shared/src/record/` names Automerge
//! types, `client` and `server` never depend on each other, the client library keeps no
//! FFI types (UniFFI lives in `bindings` only), every Rust file opens with a `//!` doc
//! saying what it is for, and every schema in `schemas/` parses.

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
fn client_and_server_never_depend_on_each_other() {
    assert!(!dependencies("client").contains(&"intake-server".to_string()));
    assert!(!dependencies("server").contains(&"intake-client".to_string()));
}

#[test]
fn only_the_bindings_crate_depends_on_uniffi() {
    // Issue 15: the library stays a Rust API; its FFI conversions live in bindings/.
    for package in ["shared", "client", "server", "web"] {
        assert!(
            !dependencies(package).contains(&"uniffi".to_string()),
            "{package} depends on uniffi"
        );
    }
    assert!(dependencies("bindings").contains(&"uniffi".to_string()));
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
    for package in [
        "shared", "client", "server", "tests", "bench", "web", "bindings",
    ] {
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

/// Crates that do I/O (or are runtimes for it): `shared` must not reach any of them,
/// not even through another dependency.
const IO_CRATES: [&str; 14] = [
    "tokio",
    "mio",
    "socket2",
    "reqwest",
    "hyper",
    "rusqlite",
    "libsqlite3-sys",
    "actix-web",
    "actix-rt",
    "actix-server",
    "async-std",
    "openssl-sys",
    "ring",
    "rustls",
];

#[test]
fn shared_reaches_no_io_crate_even_transitively() {
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["tree", "--offline", "-p", "intake-shared", "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}"])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: std::collections::BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // The tree must really be shared's: a wrong invocation would pass with no crates.
    assert!(
        crates.contains("intake-shared") && crates.contains("automerge"),
        "{crates:?}"
    );
    let io: Vec<_> = crates.iter().filter(|c| IO_CRATES.contains(c)).collect();
    assert!(io.is_empty(), "shared must stay sans-IO but reaches {io:?}");
}

/// `text` without its `#[cfg(test)]` modules: tests may do what the code itself may not.
/// Counts braces outside string, char and comment text to find where a module ends.
fn without_test_modules(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find('{') else { break };
        // Skip to the end of the item after the attribute. Brace chars become another
        // char of the same length, so positions still index `after`.
        let counted = after.replace("'{'", "'_'").replace("'}'", "'_'");
        let (mut depth, mut end) = (0usize, after.len());
        let mut in_str = false;
        let mut prev = ' ';
        for (i, c) in counted[open..].char_indices() {
            match c {
                '"' if prev != '\\' && prev != '\'' => in_str = !in_str,
                '{' if !in_str => depth += 1,
                '}' if !in_str => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
            prev = if prev == '\\' && c == '\\' { ' ' } else { c };
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The non-test code of every Rust file under `dir`, with its path from the root.
fn code_under(dir: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&root().join(dir), &mut files);
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let code: String = without_test_modules(&text)
                .lines()
                // Comments and docs may name anything.
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            (p.strip_prefix(root()).unwrap().display().to_string(), code)
        })
        .collect()
}

#[test]
fn shared_code_touches_no_file_network_thread_process_or_clock() {
    let forbidden = [
        "std::fs",
        "std::net",
        "std::thread",
        "std::process",
        "std::env",
        "Utc::now",
        "Local::now",
        "SystemTime::now",
        "Instant::now",
    ];
    let files = code_under("shared/src");
    assert!(files.len() > 10, "found only {} files", files.len());
    let mut found = Vec::new();
    for (path, code) in &files {
        for word in forbidden {
            if code.contains(word) {
                found.push(format!("{path}: {word}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "shared is sans-IO (time comes in as an argument): {found:?}"
    );
}

#[test]
fn only_shared_src_record_names_automerge() {
    let mut found = Vec::new();
    for dir in [
        "shared/src",
        "client/src",
        "server/src",
        "web/src",
        "bench/src",
        "bindings/src",
    ] {
        for (path, code) in code_under(dir) {
            if path.starts_with("shared/src/record/") {
                continue;
            }
            if code.contains("automerge::") || code.contains("use automerge") {
                found.push(path);
            }
        }
    }
    assert!(
        found.is_empty(),
        "Automerge types outside shared/src/record/: {found:?}"
    );
    // Nor may another crate depend on it directly (the tests' dev-dependency crafts
    // hostile changes; it is not code that ships).
    for package in ["client", "server", "web", "bench", "bindings"] {
        assert!(
            !dependencies(package).contains(&"automerge".to_string()),
            "{package} depends on automerge"
        );
    }
}

#[test]
fn test_modules_are_cut_out_and_the_rest_kept() {
    // The checks above are only as good as this cut: code after a test module counts.
    let text = "fn a() { let s = \"}{\"; }\n#[cfg(test)]\nmod tests {\n fn t() { let c = '}'; Utc::now(); }\n}\nfn b() {}\n";
    let code = without_test_modules(text);
    assert!(!code.contains("Utc::now"), "{code}");
    assert!(
        code.contains("fn a()") && code.contains("fn b() {}"),
        "{code}"
    );
}
