//! Fuzz target `command`: see `loopchat::fuzzing::check_command` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_command(data);
});
