//! Fuzz target `ws_decode`: see `loopchat::fuzzing::check_ws_decode` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_ws_decode(data);
});
