//! `cargo bench`: fan-out scenarios against an in-process server, one
//! markdown table row each, using the same `loopchat_loadgen` code as the
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

use loopchat_loadgen::{self as loadgen, Options, Report};

/// One benchmark: a name for the table and the flags that differ from the
/// bench defaults (`Options::default()` plus a short window, no progress).
struct Scenario {
    name: &'static str,
    flags: &'static [&'static str],
    /// Run the server as its own `loopchat` process rather than in-process:
    /// 10,000 clients need 20,000 descriptors in one process otherwise, and
    /// the server's memory is then its own.
    separate_server: bool,
}

/// The scenarios, in table order. Add a line to add a row.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "rate-100",
        flags: &["--clients", "100", "--rate", "2"],
        separate_server: false,
    },
    Scenario {
        name: "rate-500",
        flags: &["--clients", "500", "--rate", "2"],
        separate_server: false,
    },
    Scenario {
        name: "flood-100",
        flags: &["--clients", "100", "--flood", "4"],
        separate_server: false,
    },
    Scenario {
        name: "flood-500",
        flags: &["--clients", "500", "--flood", "4"],
        separate_server: false,
    },
    Scenario {
        name: "idle-2000",
        flags: &["--clients", "2000", "--idle", "--duration", "1"],
        separate_server: false,
    },
    // The same total delivery rate (about 500k/s) spread over 100, 1,000
    // and 10,000 clients: server CPU per million deliveries should not grow.
    Scenario {
        name: "scale-100",
        flags: &["--clients", "100", "--rate", "50"],
        separate_server: false,
    },
    Scenario {
        name: "scale-1000",
        flags: &["--clients", "1000", "--senders", "100", "--rate", "5"],
        separate_server: false,
    },
    Scenario {
        name: "scale-10000",
        flags: &["--clients", "10000", "--senders", "10", "--rate", "5"],
        separate_server: true,
    },
    // Memory per idle connection, and the join storm of 10,000 clients
    // (each join announced to everyone already in #lobby) as connect time.
    Scenario {
        name: "idle-10000",
        flags: &["--clients", "10000", "--idle", "--duration", "3"],
        separate_server: true,
    },
];

/// A `loopchat` server process for one scenario; killed when dropped.
struct ServerProcess {
    child: std::process::Child,
    addr: String,
}

impl ServerProcess {
    /// Starts the release binary on a free port and reads the address from
    /// its "listening on" log line.
    fn start() -> Result<ServerProcess, String> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"))
            .args(["--addr", "127.0.0.1:0", "--max-clients", "12000"])
            .args(["--idle-timeout", "0", "--history-file", ":memory:"])
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start loopchat: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = std::io::BufReader::new(stderr).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some((_, rest)) = line.split_once("listening on ") {
                        break rest.split_whitespace().next().unwrap_or("").to_string();
                    }
                }
                _ => return Err("loopchat exited before listening".into()),
            }
        };
        // Keep draining its log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(ServerProcess { child, addr })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Flags every scenario starts from: short windows so the whole set stays
/// around a minute on a small machine.
const BASE: &[&str] = &["--warmup", "1", "--duration", "3", "--quiet"];
/// What `--quick` changes (a scenario's own flags still win).
const QUICK: &[&str] = &["--warmup", "0.5", "--duration", "1", "--drain", "2"];

fn options(s: &Scenario, quick: bool, server: Option<&ServerProcess>) -> Result<Options, String> {
    let mut layers = vec![BASE];
    if quick {
        layers.push(QUICK);
    }
    layers.push(s.flags);
    let pid = server.map(|p| p.child.id().to_string());
    let target: Vec<&str> = match (server, &pid) {
        (Some(server), Some(pid)) => vec!["--addr", &server.addr, "--server-pid", pid],
        _ => Vec::new(),
    };
    layers.push(&target);
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
        let server = if s.separate_server {
            match ServerProcess::start() {
                Ok(server) => Some(server),
                Err(e) => {
                    eprintln!("{}: could not run: {e}", s.name);
                    failed.push(s.name);
                    continue;
                }
            }
        } else {
            None
        };
        let report = options(s, quick, server.as_ref())
            .and_then(|o| loadgen::run(&o).map_err(|e| e.to_string()));
        drop(server);
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
