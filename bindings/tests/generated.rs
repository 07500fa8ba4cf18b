//! The committed Kotlin and Swift bindings (`bindings/generated/`) are what
//! `scripts/bindings` generates from this build: regenerated into a temporary
//! directory and compared file by file, so an API change that was not followed by
//! `scripts/bindings` fails here instead of reaching an app as stale bindings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file under `dir`, by path relative to it.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn committed_kotlin_and_swift_are_current() {
    let bindgen = Path::new(env!("CARGO_BIN_EXE_uniffi-bindgen"));
    // The cdylib of this package: `cargo build` puts it beside the binaries, `cargo
    // test` (a clean checkout's CI) only in `deps/`. The newer of the two is this build.
    let name = format!(
        "{}intake_bindings{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let dir = bindgen.parent().unwrap();
    let lib = [dir.join(&name), dir.join("deps").join(&name)]
        .into_iter()
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("{name} was not built in {}", dir.display()));
    let fresh = tempfile::tempdir().unwrap();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("generated");
    for language in ["kotlin", "swift"] {
        let out = fresh.path().join(language);
        // As scripts/bindings runs it.
        let status = Command::new(bindgen)
            .args([
                "generate",
                "--no-format",
                "--language",
                language,
                "--out-dir",
            ])
            .arg(&out)
            .arg(&lib)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "uniffi-bindgen failed for {language}");
        let (want, have) = (files(&out), files(&committed.join(language)));
        let names = |m: &BTreeMap<PathBuf, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&have),
            names(&want),
            "bindings/generated/{language} has other files than scripts/bindings makes: run scripts/bindings"
        );
        for (name, bytes) in &want {
            assert!(
                have[name] == *bytes,
                "bindings/generated/{language}/{} is stale: run scripts/bindings and commit the result",
                name.display()
            );
        }
    }
}
