//! libFuzzer entry point for the `form_value` target; the body is `intake_fuzz::form_value`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| intake_fuzz::fuzz(data, intake_fuzz::form_value));
