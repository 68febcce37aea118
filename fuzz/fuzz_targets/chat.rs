//! Fuzz target `chat`: see `loopchat::fuzzing::check_chat` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_chat(data);
});
