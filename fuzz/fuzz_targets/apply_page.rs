//! libFuzzer entry point for the `apply_page` target; the body is `intake_fuzz::apply_page`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| intake_fuzz::fuzz(data, intake_fuzz::apply_page));
