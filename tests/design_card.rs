//! The design card's three commands, run from the repository root exactly
//! as the README writes them: `cargo run --release` (the server),
//! `cargo run --example client` (piped) and
//! `cargo run --bin loadgen -- --clients N` (briefly, against that server).
//! Each must exit as a user expects and say what a user reads.

mod common;

use common::{Lines, ServerProcess};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `cargo ARGS` from the repository root.
fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(env!("CARGO_MANIFEST_DIR")).args(args);
    command
}

/// Builds first, so the server's "listening on" line is not waited for
/// through a whole release build.
fn build(args: &[&str]) {
    let status = cargo(args).status().expect("run cargo build");
    assert!(status.success(), "cargo {args:?} failed");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_three_commands_work_from_the_root() {
    build(&["build", "--release", "--quiet"]);
    build(&[
        "build",
        "--quiet",
        "--example",
        "client",
        "--bin",
        "loadgen",
    ]);

    // 1. `cargo run --release`: the server.
    let server = ServerProcess::start_command(
        cargo(&["run", "--release", "--quiet", "--"]),
        &["--flood-lines-per-sec", "0"],
        None,
    );
    let addr = server.addr.to_string();

    // 2. `cargo run --example client`, piped: says a line, reads it back
    //    from a second client.
    let mut watcher = common::Client::named(server.addr, "watcher");
    let mut client = cargo(&["run", "--quiet", "--example", "client", "--"])
        .args(["--addr", &addr, "--nick", "cardtester"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    client
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(b"hello from the design card\n:quit\n")
        .expect("write to the client");
    watcher.skip_until("cardtester: hello from the design card");
    let out: Output = client.wait_with_output().expect("client exits");
    assert!(out.status.success(), "client: {}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains(" is now known as cardtester"),
        "client printed {shown}"
    );

    // 3. `cargo run --bin loadgen -- --clients 5`, briefly, against it.
    let out = cargo(&["run", "--quiet", "--bin", "loadgen", "--"])
        .args(["--clients", "5", "--addr", &addr, "--duration", "1"])
        .args(["--warmup", "0.2", "--drain", "10"])
        .output()
        .expect("run the load generator");
    let report = text(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen failed: {report}{}",
        text(&out.stderr)
    );
    assert!(
        report
            .lines()
            .any(|l| l.trim_start().starts_with("result") && l.trim_end().ends_with(" OK")),
        "loadgen printed {report}"
    );
    assert!(report.contains("5/5 connected"), "loadgen printed {report}");

    // --version and -h on all three.
    for (args, name) in [
        (
            &["run", "--release", "--quiet", "--", "--version"][..],
            "loopchat",
        ),
        (
            &["run", "--quiet", "--example", "client", "--", "-V"][..],
            "client",
        ),
        (
            &["run", "--quiet", "--bin", "loadgen", "--", "--version"][..],
            "loadgen",
        ),
    ] {
        let out = cargo(args).output().expect("run --version");
        assert!(out.status.success());
        assert_eq!(
            text(&out.stdout).trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION"))
        );
        let help_args: Vec<&str> = args[..args.len() - 1]
            .iter()
            .copied()
            .chain(["-h"])
            .collect();
        let out = cargo(&help_args).output().expect("run -h");
        assert!(out.status.success());
        assert!(text(&out.stdout).starts_with(&format!("Usage: {name}")));
    }

    // The server stops cleanly on SIGTERM, as a user's Ctrl-C would.
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "server exit status {status}");
}
