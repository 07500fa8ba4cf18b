//! libFuzzer entry point for the `sync_request` target; the body is `intake_fuzz::sync_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| intake_fuzz::fuzz(data, intake_fuzz::sync_request));
