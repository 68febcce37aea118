//! Fuzz target `cluster_messages`: see `loopchat::fuzzing::check_cluster_messages` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat::fuzzing::check_cluster_messages(data);
});
