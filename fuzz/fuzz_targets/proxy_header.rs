//! Fuzz target `proxy_header`: see `loopchat::fuzzing::check_proxy_header` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_proxy_header(data);
});
