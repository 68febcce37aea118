//! Fuzz target `framing`: see `loopchat::fuzzing::check_framing` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_framing(data);
});
