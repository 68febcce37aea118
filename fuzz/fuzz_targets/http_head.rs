//! Fuzz target `http_head`: see `loopchat::fuzzing::check_http_head` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_http_head(data);
});
