//! Fuzz target `resp`: see `loopchat::fuzzing::check_resp` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_resp(data);
});
