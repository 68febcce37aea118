//! Fuzz target `tags`: see `loopchat::fuzzing::check_tags` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_tags(data);
});
