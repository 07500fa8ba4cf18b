//! Running one test of the shared end-to-end binary by itself, in a fresh process.
//!
//! The end-to-end tests are one binary whose tests run in parallel threads. A few tests
//! measure the whole process (its peak resident memory, its open file descriptors and
//! threads) or install process-wide state (the global log subscriber that captures
//! every event): beside other tests their figures would be other tests' too, or their
//! state would leak into them. Such a test starts with `intake_tests::alone!(its_name)`:
//! the first time through, it runs the same binary again with only itself selected and
//! checks that it passed; in that child process the macro lets the body run.

use std::process::Command;

/// The variable that tells a child process which test it was started to run.
const VAR: &str = "INTAKE_TEST_ALONE";

/// Runs `test` (its path as libtest names it, `module::name`) alone in a child process of
/// this test binary. Returns `true` inside that child (run the body), `false` in the
/// parent once the child has passed; panics, with the child's output, if it failed.
pub fn alone(test: &str) -> bool {
    if std::env::var(VAR).as_deref() == Ok(test) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, test)
        .output()
        .expect("run the test binary again");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // Printed through the test harness, so it shows with the parent's result.
    eprintln!("{stderr}");
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{test} failed in its own process ({})",
        out.status
    );
    // A filter that matched nothing would "pass" without running the body.
    assert!(
        stdout.contains("1 passed"),
        "{test} did not run in its own process: is the name right?"
    );
    false
}

/// `alone!(test_fn_name)` at the top of a test: the rest of the test runs in a fresh
/// process of this binary, by itself (see the module doc).
#[macro_export]
macro_rules! alone {
    ($name:ident) => {
        // `module_path!()` starts with the crate (the test binary), which libtest leaves out.
        let path = concat!(module_path!(), "::", stringify!($name));
        let test = path.split_once("::").map_or(path, |(_, rest)| rest);
        if !$crate::alone::alone(test) {
            return;
        }
    };
}
