//! The `--config` file on the real binary: settings from the file reach the
//! running server (a test per group), the command line wins, each error
//! names its key and line, `--print-config` round-trips and hides the
//! password, the example file is every flag at its default, and SIGHUP
//! re-reads the file (a good one changes flood control on the running
//! server, a broken one changes nothing).

mod common;

use common::{Client, Lines, ServerProcess, READ_TIMEOUT};
use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary to completion (a settings error or `--print-config`).
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(args)
        .env_remove("LOOPCHAT_PASSWORD")
        .output()
        .expect("run the loopchat binary")
}

/// A settings file in a temporary directory, with the lines every test
/// server needs (free ports, no history file) before `extra`.
fn settings_file(dir: &Path, extra: &str) -> String {
    let path = dir.join("loopchat.toml");
    write(&path, extra);
    path.to_str().expect("utf-8 path").to_string()
}

fn write(path: &Path, extra: &str) {
    let text =
        format!("addr = \"127.0.0.1:0\"\nweb-addr = \"off\"\nirc-addr = \"off\"\nhistory-file = \":memory:\"\n{extra}");
    std::fs::write(path, text).expect("write the settings file");
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn limits_from_the_file_apply_to_clients() {
    let dir = tempfile::tempdir().unwrap();
    let file = settings_file(dir.path(), "max-line-bytes = 10\n");
    let server = ServerProcess::start_exactly(&["--config", &file], None);
    let mut client = Client::connect(server.addr);
    client.send("this line is too long");
    assert_eq!(client.line(), "! line too long (max 10 bytes)");
}

#[test]
fn the_guard_from_the_file_counts_addresses_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let file = settings_file(dir.path(), "max-per-address = 1\nlimit-loopback = true\n");
    let server = ServerProcess::start_exactly(&["--config", &file], None);
    let _first = Client::connect(server.addr);
    let mut second = Client::connect_raw(server.addr);
    second.expect("! too many connections from your address");
    drop(server);
    // The same file, with the limit raised on the command line.
    let server = ServerProcess::start_exactly(&["--config", &file, "--max-per-address", "2"], None);
    let _first = Client::connect(server.addr);
    let _second = Client::connect(server.addr);
    let mut third = Client::connect_raw(server.addr);
    third.expect("! too many connections from your address");
}

#[test]
fn the_password_and_history_from_the_file_apply() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.db");
    let file = dir.path().join("loopchat.toml");
    // Written whole: this file names its own history file.
    std::fs::write(
        &file,
        format!(
            "addr = \"127.0.0.1:0\"\nweb-addr = \"off\"\nirc-addr = \"off\"\npassword = \"s3cret\"\n\
             history-file = {:?}\nhistory-max = 25\n",
            history.to_str().unwrap()
        ),
    )
    .unwrap();
    let server = ServerProcess::start_exactly(&["--config", file.to_str().unwrap()], None);
    let mut client = Client::connect_raw(server.addr);
    client.expect("* password required");
    client.send(":auth s3cret");
    client.read_welcome();
    client.send("kept");
    client.sync();
    assert!(history.exists(), "the history file from the settings file");
}

#[test]
fn listeners_from_the_file_are_bound() {
    let dir = tempfile::tempdir().unwrap();
    let file = settings_file(dir.path(), "metrics-addr = \"127.0.0.1:0\"\n");
    let server = ServerProcess::start_exactly(&["--config", &file], None);
    let metrics = fetch_metrics(server.metrics_addr());
    assert!(
        metrics.contains("loopchat_clients_limit 10000"),
        "{metrics}"
    );
}

/// GET /metrics over a plain socket.
fn fetch_metrics(addr: std::net::SocketAddr) -> String {
    use std::io::Write;
    let mut stream = TcpStream::connect(addr).expect("connect to /metrics");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read /metrics");
    response
}

/// The value of an unlabelled metric.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn each_settings_error_names_its_key_and_line_and_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "max-clients = 5\nmax-cleints = 6\n",
            "loopchat.toml:6: unknown key `max-cleints`",
        ),
        (
            "flood-lines-per-sec = \"fast\"\n",
            "loopchat.toml:5: flood-lines-per-sec: invalid type: string \"fast\"",
        ),
        (
            "trusted-proxy = \"10.0.0.0/8\"\n",
            "loopchat.toml:5: trusted-proxy: invalid type: string",
        ),
        (
            "trusted-proxy = [\"10.0.0.0/40\"]\n",
            "loopchat.toml:5: trusted-proxy: \"10.0.0.0/40\": the prefix length must be 0 to 32",
        ),
        (
            "history-writer-priority = \"high\"\n",
            "loopchat.toml:5: history-writer-priority: expected idle or normal, not \"high\"",
        ),
        ("addr = [\n", "loopchat.toml:5"),
        ("history-max = 3\n", "history-max must be at least 20"),
        ("tls-cert = \"c.pem\"\n", "tls-cert and tls-key go together"),
    ];
    for (extra, expected) in cases {
        let file = settings_file(dir.path(), extra);
        // The same error whether starting or only printing the settings.
        for output in [
            run(&["--config", &file]),
            run(&["--config", &file, "--print-config"]),
        ] {
            let message = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{extra}: {message}");
            assert!(message.contains(expected), "{extra:?}: {message}");
            assert!(output.stdout.is_empty(), "nothing printed: {extra:?}");
        }
    }
    let output = run(&["--config", "/no/such/loopchat.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot read /no/such/loopchat.toml: No such file"));
}

#[test]
fn print_config_round_trips_and_masks_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = settings_file(
        dir.path(),
        "password = \"hunter2\"\nflood-burst-secs = 9\ntrusted-proxy = [\"10.0.0.0/8\"]\n",
    );
    let output = run(&["--config", &file, "--max-clients", "77", "--print-config"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(!printed.contains("hunter2"), "{printed}");
    for line in [
        "password = \"***\"",
        "max-clients = 77",
        "flood-burst-secs = 9",
        "trusted-proxy = [\"10.0.0.0/8\"]",
        "flood-lines-per-sec = 20",
    ] {
        assert!(printed.lines().any(|l| l == line), "{line} in {printed}");
    }
    let again_path = dir.path().join("printed.toml");
    std::fs::write(&again_path, &printed).unwrap();
    let again = run(&["--config", again_path.to_str().unwrap(), "--print-config"]);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), printed);
}

#[test]
fn the_example_file_is_every_flag_at_its_default() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/loopchat.example.toml");
    let with_example = run(&["--config", example, "--print-config"]);
    assert!(with_example.status.success(), "{}", stderr(&with_example));
    let defaults = run(&["--print-config"]);
    assert_eq!(with_example.stdout, defaults.stdout);
    // Every flag but --config and --print-config is a key in the example,
    // set or (without a default) commented out with an example value.
    let help = String::from_utf8(run(&["--help"]).stdout).unwrap();
    let text = std::fs::read_to_string(example).unwrap();
    let usage = help.lines().next().expect("a usage line");
    let flags: Vec<&str> = usage
        .split_whitespace()
        .filter_map(|word| word.trim_start_matches('[').strip_prefix("--"))
        .map(|flag| flag.trim_end_matches(']'))
        .filter(|flag| !["config", "print-config", "help"].contains(flag))
        .collect();
    assert!(flags.len() > 35, "{flags:?}");
    for flag in flags {
        let set = text.lines().any(|line| {
            line.trim_start_matches("# ")
                .strip_prefix(flag)
                .is_some_and(|rest| rest.starts_with(" = "))
        });
        assert!(set, "--{flag} has no key in loopchat.example.toml");
    }
}

#[test]
fn sighup_changes_flood_control_on_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loopchat.toml");
    let base = "metrics-addr = \"127.0.0.1:0\"\nflood-lines-per-sec = 0\nflood-bytes-per-sec = 0\n";
    write(&path, base);
    let server = ServerProcess::start_exactly(&["--config", path.to_str().unwrap()], None);
    let metrics_addr = server.metrics_addr();
    let throttles = || {
        metric(
            &fetch_metrics(metrics_addr),
            "loopchat_flood_throttles_total",
        )
    };
    // Once a client is served, the loop (and its signal handler) runs.
    let mut client = Client::connect(server.addr);
    client.send_bytes(b"a\nb\nc\nd\n");
    client.sync();
    assert_eq!(throttles(), 0, "no flood control yet");
    // One line a second, one at once; and max-clients, which needs a restart.
    write(
        &path,
        &format!("{base}flood-lines-per-sec = 1\nflood-burst-secs = 1\nmax-clients = 9\n")
            .replace("flood-lines-per-sec = 0\n", ""),
    );
    server.signal(libc::SIGHUP);
    server.expect_log("SIGHUP: flood-burst-secs 5 -> 1");
    server.expect_log("SIGHUP: flood-lines-per-sec 0 -> 1");
    server.expect_log("SIGHUP: max-clients 10000 -> 9 needs a restart");
    // The client connected before the reload is held to the new rate.
    client.send_bytes(b"e\nf\n");
    client.sync();
    assert!(throttles() > 0, "flood control after SIGHUP");
    let metrics = fetch_metrics(metrics_addr);
    assert_eq!(metric(&metrics, "loopchat_clients_limit"), 10000);
}

#[test]
fn sighup_with_a_broken_file_keeps_the_running_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loopchat.toml");
    write(&path, "max-line-bytes = 10\n");
    let server = ServerProcess::start_exactly(&["--config", path.to_str().unwrap()], None);
    // Once a client is served, the loop (and its signal handler) runs.
    let mut client = Client::connect(server.addr);
    std::fs::write(&path, "max-line-bytes = 10\nmax-line-bytes = \"x\"\n").unwrap();
    server.signal(libc::SIGHUP);
    let line = server.expect_log("SIGHUP: keeping the running settings");
    assert!(line.contains("loopchat.toml:2"), "{line}");
    client.send("still too long");
    assert_eq!(client.line(), "! line too long (max 10 bytes)");
    // A file that parses but is not valid is refused too.
    write(&path, "max-line-bytes = 0\n");
    server.signal(libc::SIGHUP);
    let line = server.expect_log("SIGHUP: keeping the running settings");
    assert!(line.contains("must be above 0"), "{line}");
    client.send("also too long");
    assert_eq!(client.line(), "! line too long (max 10 bytes)");
}

#[test]
fn sighup_trusts_a_new_proxy_and_lowers_the_per_address_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loopchat.toml");
    write(&path, "max-per-address = 4\n");
    let server = ServerProcess::start_exactly(&["--config", path.to_str().unwrap()], None);
    // Once a client is served, the loop (and its signal handler) runs.
    let mut direct = Client::connect(server.addr);
    write(
        &path,
        "max-per-address = 1\ntrusted-proxy = [\"127.0.0.1\"]\n",
    );
    server.signal(libc::SIGHUP);
    server.expect_log("SIGHUP: max-per-address 4 -> 1");
    server.expect_log("SIGHUP: trusted-proxy [] -> [\"127.0.0.1/32\"]");
    // The client connected before stays; new connections from 127.0.0.1
    // must now name their client, and each named address counts alone.
    let header = "PROXY TCP4 192.0.2.44 127.0.0.1 5000 7878\r\n";
    let mut first = Client::connect_raw(server.addr);
    first.send_bytes(header.as_bytes());
    first.read_welcome();
    let mut second = Client::connect_raw(server.addr);
    second.send_bytes(header.as_bytes());
    second.expect("! too many connections from your address");
    direct.send("still here");
    direct.sync();
}

/// `--help` names the addresses the other flags (and a `--config` file)
/// configure, not the defaults.
#[test]
fn help_names_the_configured_addresses() {
    let default = String::from_utf8(run(&["--help"]).stdout).unwrap();
    assert!(
        default.contains("Try it with `nc 127.0.0.1 7878`, a browser on http://127.0.0.1:7879/"),
        "{default}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("loopchat.toml");
    std::fs::write(&file, "web-addr = \"127.0.0.1:18080\"\n").unwrap();
    let output = run(&[
        "--addr",
        "127.0.0.1:17000",
        "--config",
        file.to_str().unwrap(),
        "-h",
    ]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(
        help.contains("Try it with `nc 127.0.0.1 17000`, a browser on http://127.0.0.1:18080/"),
        "{help}"
    );
}
