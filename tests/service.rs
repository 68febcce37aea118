//! The systemd unit in docs/: `systemd-analyze verify` accepts it, its
//! command line runs, its descriptor limit covers max-clients, its
//! hardening is there; and the binary speaks systemd's notify protocol
//! (READY=1 once it serves, STOPPING=1 on SIGTERM).

mod common;

use common::{tool_or_skip, Client, ServerProcess, READ_TIMEOUT};
use std::os::unix::net::UnixDatagram;
use std::process::Command;

const UNIT: &str = include_str!("../docs/loopchat.service");
const INSTALLED_BINARY: &str = "/usr/local/bin/loopchat";

/// The value of `key=` in the unit (the first one).
fn directive<'a>(key: &str) -> &'a str {
    UNIT.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in docs/loopchat.service"))
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let Some(analyze) = tool_or_skip("systemd-analyze", "the unit check") else {
        return;
    };
    // The unit names the installed binary; verify checks that it exists, so
    // the copy checked names the one cargo built.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("loopchat.service");
    std::fs::write(
        &unit,
        UNIT.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_loopchat")),
    )
    .unwrap();
    let output = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Unknown keys and bad values are only warnings: any output fails.
    assert!(output.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn the_units_command_line_runs_and_its_descriptor_limit_covers_max_clients() {
    let exec_start = directive("ExecStart");
    let mut args: Vec<&str> = exec_start.split_whitespace().collect();
    assert_eq!(args.remove(0), INSTALLED_BINARY);
    // The settings file it names is the example one, installed.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/loopchat.example.toml");
    for arg in &mut args {
        if *arg == "/etc/loopchat/loopchat.toml" {
            *arg = example;
        }
    }
    let output = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(&args)
        .arg("--print-config")
        .output()
        .expect("run loopchat");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("history-file = \"/var/lib/loopchat/history.db\""));
    let max_clients: u64 = printed
        .lines()
        .find_map(|line| line.strip_prefix("max-clients = "))
        .and_then(|value| value.parse().ok())
        .expect("max-clients printed");
    let limit: u64 = directive("LimitNOFILE").parse().expect("a number");
    // The server's own need: one per client plus 32 spare (src/main.rs).
    assert!(
        limit >= max_clients + 32,
        "LimitNOFILE {limit} < {max_clients} + 32"
    );
    for (key, value) in [
        ("Type", "notify"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "loopchat"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ] {
        assert_eq!(directive(key), value, "{key}");
    }
}

#[test]
fn the_server_tells_systemd_when_it_is_ready_and_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let systemd = UnixDatagram::bind(&path).unwrap();
    systemd.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let server = ServerProcess::start_with_env(
        &[
            "--addr",
            "127.0.0.1:0",
            "--web-addr",
            "off",
            "--irc-addr",
            "off",
            "--history-file",
            ":memory:",
        ],
        None,
        &[("NOTIFY_SOCKET", path.as_os_str())],
    );
    let mut buf = [0u8; 64];
    let n = systemd.recv(&mut buf).expect("READY=1 from the server");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means serving, and a reload now is handled, not fatal.
    server.signal(libc::SIGHUP);
    server.expect_log("SIGHUP: no TLS certificate configured");
    drop(Client::connect(server.addr));
    server.signal(libc::SIGTERM);
    let n = systemd.recv(&mut buf).expect("STOPPING=1 from the server");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(server.wait_exit(READ_TIMEOUT).success());
}
