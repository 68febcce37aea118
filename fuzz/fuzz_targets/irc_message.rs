//! Fuzz target `irc_message`: see `loopchat::fuzzing::check_irc_message` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_irc_message(data);
});
