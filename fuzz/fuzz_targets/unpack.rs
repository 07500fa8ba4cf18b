//! libFuzzer entry point for the `unpack` target; the body is `intake_fuzz::unpack`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| intake_fuzz::fuzz(data, intake_fuzz::unpack));
