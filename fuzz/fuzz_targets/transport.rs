//! Fuzz target `transport`: see `loopchat::fuzzing::check_transport` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_transport(data);
});
