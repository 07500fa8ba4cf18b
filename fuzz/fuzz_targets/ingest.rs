//! libFuzzer entry point for the `ingest` target; the body is `intake_fuzz::ingest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| intake_fuzz::fuzz(data, intake_fuzz::ingest));
