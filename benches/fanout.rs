//! `cargo bench`: fan-out scenarios against an in-process server, one
//! markdown table row each, using the same `loopchat::loadgen` code as the
//! `loadgen` binary (a row here equals a `loadgen` run with the same flags).
//!
//! ```text
//! cargo bench                            # every scenario, 3 s measured each
//! cargo bench --bench fanout -- --quick   # shorter windows, a smoke test
//! cargo bench --bench fanout -- flood    # only scenarios named *flood*
//! ```
//!
//! Exits non-zero when a scenario fails (lost messages, failed clients), so
//! a regression in correctness is not hidden behind a table of numbers.

use loopchat::loadgen::{self, Options, Report};

/// One benchmark: a name for the table and the flags that differ from the
/// bench defaults (`Options::default()` plus a short window, no progress).
struct Scenario {
    name: &'static str,
    flags: &'static [&'static str],
}

/// The scenarios, in table order. Add a line to add a row.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "rate-100",
        flags: &["--clients", "100", "--rate", "2"],
    },
    Scenario {
        name: "rate-500",
        flags: &["--clients", "500", "--rate", "2"],
    },
    Scenario {
        name: "flood-100",
        flags: &["--clients", "100", "--flood", "4"],
    },
    Scenario {
        name: "flood-500",
        flags: &["--clients", "500", "--flood", "4"],
    },
    Scenario {
        name: "idle-2000",
        flags: &["--clients", "2000", "--idle", "--duration", "1"],
    },
];

/// Flags every scenario starts from: short windows so the whole set stays
/// around a minute on a small machine.
const BASE: &[&str] = &["--warmup", "1", "--duration", "3", "--quiet"];
/// What `--quick` changes (a scenario's own flags still win).
const QUICK: &[&str] = &["--warmup", "0.5", "--duration", "1", "--drain", "2"];

fn options(s: &Scenario, quick: bool) -> Result<Options, String> {
    let mut layers = vec![BASE];
    if quick {
        layers.push(QUICK);
    }
    layers.push(s.flags);
    let args = merge(&layers);
    <Options as argh::FromArgs>::from_args(&["loadgen"], &args).map_err(|e| e.output)
}

/// Flags from several layers, a later layer's value replacing an earlier
/// one's (argh refuses a flag given twice). A flag followed by a word not
/// starting with `--` takes it as its value; otherwise it is a switch.
fn merge<'a>(layers: &[&[&'a str]]) -> Vec<&'a str> {
    let mut flags: Vec<(&str, Option<&str>)> = Vec::new();
    for layer in layers {
        let mut words = layer.iter().peekable();
        while let Some(&flag) = words.next() {
            let value = words.next_if(|w| !w.starts_with("--")).copied();
            match flags.iter_mut().find(|(f, _)| *f == flag) {
                Some(slot) => slot.1 = value,
                None => flags.push((flag, value)),
            }
        }
    }
    flags
        .into_iter()
        .flat_map(|(f, v)| std::iter::once(f).chain(v))
        .collect()
}

fn main() {
    // cargo passes `--bench`; anything else not a flag selects scenarios.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let chosen: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|s| filters.is_empty() || filters.iter().any(|f| s.name.contains(f.as_str())))
        .collect();

    println!("{}", Report::markdown_header());
    let mut failed = Vec::new();
    for s in chosen {
        let report = options(s, quick).and_then(|o| loadgen::run(&o).map_err(|e| e.to_string()));
        match report {
            Ok(r) => {
                println!("{}", r.markdown_row(s.name));
                let f = r.failures();
                if !f.is_empty() {
                    eprintln!("{}: FAILED: {}", s.name, f.join("; "));
                    for n in &r.notes {
                        eprintln!("  note: {n}");
                    }
                    failed.push(s.name);
                }
            }
            Err(e) => {
                eprintln!("{}: could not run: {e}", s.name);
                failed.push(s.name);
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("failed scenarios: {}", failed.join(", "));
        std::process::exit(1);
    }
}
