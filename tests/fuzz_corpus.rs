//! The fuzz corpora in the ordinary test suite: every file kept under
//! `fuzz/corpus/<target>/` goes through the same invariant checks the fuzz
//! targets run (`loopchat::fuzzing`), so a parser change that breaks one is
//! caught by `cargo test` even where libFuzzer is not built.
//! See docs/fuzzing.md.

use std::path::Path;

/// Runs every corpus file of every target through its check; a failing
/// file is named (its check panics with what broke).
#[test]
fn every_corpus_file_keeps_the_invariants() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut total = 0;
    for (target, check) in loopchat::fuzzing::TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(
            files.len() >= 5,
            "{target}: a kept corpus of a few inputs at least, found {}",
            files.len()
        );
        for file in files {
            let data = std::fs::read(&file).expect("corpus file");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", file.display());
            total += 1;
        }
    }
    println!("{total} corpus files checked");
}

/// The fuzz crate has a target for every check and a check for every
/// target, so neither side is forgotten when one is added.
#[test]
fn every_fuzz_target_has_a_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut targets: Vec<String> = std::fs::read_dir(&dir)
        .expect("fuzz/fuzz_targets")
        .map(|entry| {
            let path = entry.expect("entry").path();
            path.file_stem().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    targets.sort();
    let mut checks: Vec<String> = loopchat::fuzzing::TARGETS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    checks.sort();
    assert_eq!(targets, checks);
    let manifest = std::fs::read_to_string(dir.with_file_name("Cargo.toml")).expect("manifest");
    for name in checks {
        let source = std::fs::read_to_string(dir.join(format!("{name}.rs"))).expect("target");
        assert!(
            source.contains(&format!("loopchat::fuzzing::check_{name}(")),
            "{name}.rs calls its check"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} in fuzz/Cargo.toml"
        );
    }
}
