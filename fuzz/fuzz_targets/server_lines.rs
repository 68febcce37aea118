//! Fuzz target `server_lines`: see `loopchat::fuzzing::check_server_lines` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_server_lines(data);
});
