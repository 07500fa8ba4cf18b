//! End-to-end test support for Intake. The tests in `tests/tests/` drive real
//! processes over real encrypted stores; the harness for the real server and devices
//! (`TestServer`, `TestDevice`) grows here with the sync issues. The binary
//! `intake-kill-writer` is a helper process for the crash test.
