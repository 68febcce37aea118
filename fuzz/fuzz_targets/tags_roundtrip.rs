//! Fuzz target `tags_roundtrip`: see `loopchat::fuzzing::check_tags_roundtrip` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_tags_roundtrip(data);
});
