//! The fuzz targets on stable Rust: every committed corpus input (`fuzz/corpus/`) and
//! every crash the fuzzer found (`shared/tests/fixtures/fuzz/`) replayed through the
//! same target bodies `cargo fuzz` runs (`fuzz/src/lib.rs`, compiled in here), so a
//! machine without the fuzzer still exercises them and a fixed crash stays fixed.
//! A target panics when production code would: the test fails naming the input.

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)] // Helpers the seed writer and the fuzz binaries use.
mod targets;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files of `dir/target`, sorted; none if the directory does not exist.
fn inputs(dir: &Path, target: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(target))
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"));
    files.sort();
    files
}

/// Runs every input of `dir` through its target; the names of those that panicked.
fn replay(dir: &Path) -> (usize, Vec<String>) {
    let mut count = 0;
    let mut failed = Vec::new();
    for (name, target) in targets::TARGETS {
        for file in inputs(dir, name) {
            let data = std::fs::read(&file).unwrap();
            count += 1;
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    (count, failed)
}

#[test]
fn every_committed_corpus_input_replays_cleanly() {
    let (count, failed) = replay(&root().join("fuzz/corpus"));
    assert!(count >= 50, "the seed corpus is missing ({count} inputs)");
    assert!(failed.is_empty(), "corpus inputs that panic: {failed:#?}");
}

/// The committed corpus reaches the server's reading of a creating change without
/// building it, so the replay (and every fuzz run, which starts from the corpus)
/// checks that reading against Automerge's.
#[test]
fn the_corpus_reaches_the_creations_read_off_their_operations() {
    let reached = inputs(&root().join("fuzz/corpus"), "ingest")
        .iter()
        .filter(|f| targets::ingest_reads_a_creation(&std::fs::read(f).unwrap()))
        .count();
    assert!(reached >= 2, "{reached} ingest inputs reach it");
}

#[test]
fn every_crash_the_fuzzer_found_is_now_a_clean_error() {
    let (_, failed) = replay(&root().join("shared/tests/fixtures/fuzz"));
    assert!(
        failed.is_empty(),
        "crash fixtures that panic again: {failed:#?}"
    );
}

#[test]
fn a_wrapped_input_is_a_change_chunk_automerge_accepts() {
    // The wrapping exists to get the fuzzer past the first check: a real change's body,
    // wrapped again, must be the same chunk, byte for byte (checksum included).
    let mut r = targets::stored_record();
    for chunk in r.all_changes() {
        let body = targets::change_body(&chunk).expect("an uncompressed change chunk");
        assert_eq!(targets::change_chunk(body), chunk);
    }
}

/// Writes the seed corpus from real data (`INTAKE_FUZZ_WRITE_SEEDS=1`); otherwise
/// checks that every seed is committed, so the corpus cannot silently go stale.
#[test]
fn the_seed_corpus_is_made_of_real_data() {
    let fixtures: Vec<Vec<u8>> = ["request", "response"]
        .iter()
        .flat_map(|kind| (1..=5).map(move |v| format!("sync-v{v}-{kind}.hex")))
        .map(|name| {
            let hex =
                std::fs::read_to_string(root().join("shared/tests/fixtures").join(name)).unwrap();
            (0..hex.trim().len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect();
    let write = std::env::var_os("INTAKE_FUZZ_WRITE_SEEDS").is_some();
    let mut missing = Vec::new();
    for (target, data) in targets::seeds(&fixtures) {
        let digest: String =
            sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&data))
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect();
        let path = root()
            .join("fuzz/corpus")
            .join(target)
            .join(format!("seed-{digest}"));
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &data).unwrap();
        } else if std::fs::read(&path).ok().as_ref() != Some(&data) {
            missing.push(path.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "seeds not committed (INTAKE_FUZZ_WRITE_SEEDS=1 writes them): {missing:#?}"
    );
}
