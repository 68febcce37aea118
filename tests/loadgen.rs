//! Small real load-generator runs against an in-process server: every
//! client connects, messages flow, nothing is lost. No timing thresholds:
//! this machine may be busy, correctness must not depend on it.

mod common;

use loopchat_loadgen::{self as loadgen, Mode, Options, Report};

fn run(flags: &[&str]) -> Report {
    let mut args = vec!["--quiet", "--warmup", "0.2", "--drain", "10"];
    args.extend_from_slice(flags);
    let opts = match <Options as argh::FromArgs>::from_args(&["loadgen"], &args) {
        Ok(o) => o,
        Err(e) => panic!("bad flags {args:?}: {}", e.output),
    };
    match loadgen::run(&opts) {
        Ok(r) => r,
        Err(e) => panic!("loadgen could not run: {e}"),
    }
}

fn assert_clean(r: &Report, clients: usize) {
    let text = r.to_text();
    assert_eq!(r.connected, clients, "{text}");
    assert_eq!(r.lost, 0, "{text}");
    assert!(r.ok(), "{text}");
}

#[test]
fn rate_mode_delivers_everything() {
    let r = run(&["--clients", "20", "--rate", "5", "--duration", "1"]);
    assert_clean(&r, 20);
    assert_eq!(r.mode, Some(Mode::Rate(5.0)));
    assert!(r.sent_total > 0, "{}", r.to_text());
    // Every message reaches every other client: 19 deliveries each.
    assert_eq!(r.delivered_total, r.sent_total * 19, "{}", r.to_text());
    assert!(r.latency_us.count > 0);
    // Welcomes, joins (client i sees its own and every later one), and at
    // least one barrier probe per client but the prober.
    assert!(r.setup_lines >= 20 + 20 * 21 / 2 + 19, "{}", r.to_text());
}

#[test]
fn rate_mode_without_spinning_delivers_everything() {
    // `--spin-us 0`: the load generator sleeps until each scheduled send.
    let r = run(&[
        "--clients",
        "20",
        "--rate",
        "50",
        "--duration",
        "1",
        "--spin-us",
        "0",
    ]);
    assert_clean(&r, 20);
    assert!(r.sent_total > 0, "{}", r.to_text());
    assert_eq!(r.delivered_total, r.sent_total * 19, "{}", r.to_text());
}

#[test]
fn flood_mode_delivers_everything() {
    let r = run(&["--clients", "10", "--flood", "4", "--duration", "1"]);
    assert_clean(&r, 10);
    assert!(r.delivered_window > 0, "{}", r.to_text());
    assert_eq!(r.delivered_total, r.sent_total * 9, "{}", r.to_text());
}

#[test]
fn tags_mode_reads_tagged_lines_and_expects_echoes() {
    let r = run(&[
        "--clients",
        "10",
        "--flood",
        "4",
        "--duration",
        "1",
        "--tags",
        "--room",
        "rust",
    ]);
    assert_clean(&r, 10);
    assert_eq!(
        r.echoed,
        0,
        "an echo with tags on is expected: {}",
        r.to_text()
    );
    assert_eq!(r.unknown_lines, 0, "{}", r.to_text());
    assert_eq!(r.delivered_total, r.sent_total * 9, "{}", r.to_text());
}

#[test]
fn some_senders_in_a_room() {
    let r = run(&[
        "--clients",
        "12",
        "--senders",
        "3",
        "--rate",
        "10",
        "--duration",
        "1",
        "--room",
        "bench",
        "--payload",
        "200",
    ]);
    assert_clean(&r, 12);
    assert_eq!(r.delivered_total, r.sent_total * 11, "{}", r.to_text());
}

#[test]
fn idle_mode_reports_memory() {
    let r = run(&["--clients", "30", "--idle", "--duration", "0.2"]);
    assert_clean(&r, 30);
    assert_eq!(r.sent_total, 0);
    let m = r.memory.expect("in-process memory is readable from /proc");
    assert!(m.before_kib > 0 && m.after_kib > 0, "{}", r.to_text());
}

#[test]
fn json_summary_is_one_line() {
    let r = run(&["--clients", "4", "--rate", "5", "--duration", "0.3"]);
    let j = r.to_json();
    assert!(!j.contains('\n'));
    assert!(j.starts_with('{') && j.ends_with('}'));
    assert!(j.contains("\"ok\":true"), "{j}");
}

#[test]
fn unreachable_server_fails_cleanly() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let addr = format!("127.0.0.1:{port}");
    let r = run(&[
        "--addr",
        &addr,
        "--clients",
        "3",
        "--duration",
        "0.2",
        "--setup-timeout",
        "5",
    ]);
    assert_eq!(r.connected, 0);
    assert_eq!(r.connect_failed, 3, "{}", r.to_text());
    assert!(!r.ok());
}

#[test]
fn websocket_mode_delivers_everything() {
    let r = run(&["--ws", "--clients", "10", "--flood", "4", "--duration", "1"]);
    assert_clean(&r, 10);
    // Totals, not the window: a starved machine may pause a whole second.
    assert!(r.sent_total > 0, "{}", r.to_text());
    assert_eq!(r.delivered_total, r.sent_total * 9, "{}", r.to_text());
    let r = run(&["--ws", "--clients", "12", "--rate", "5", "--duration", "1"]);
    assert_clean(&r, 12);
    assert_eq!(r.delivered_total, r.sent_total * 11, "{}", r.to_text());
}

#[test]
fn tls_mode_delivers_everything_over_tls_and_wss() {
    let pki = common::tls::TestPki::new();
    let cert = pki.cert_file.display().to_string();
    let key = pki.key_file.display().to_string();
    let ca = pki.ca_file.display().to_string();
    let tls = ["--tls", "--tls-cert", &cert, "--tls-key", &key, "--ca", &ca];
    let mut flags = tls.to_vec();
    flags.extend(["--clients", "10", "--flood", "4", "--duration", "1"]);
    let r = run(&flags);
    assert_clean(&r, 10);
    assert!(r.delivered_window > 0, "{}", r.to_text());
    assert_eq!(r.delivered_total, r.sent_total * 9, "{}", r.to_text());
    let mut flags = tls.to_vec();
    flags.extend(["--ws", "--clients", "8", "--rate", "5", "--duration", "1"]);
    let r = run(&flags);
    assert_clean(&r, 8);
    assert_eq!(r.delivered_total, r.sent_total * 7, "{}", r.to_text());
}

#[test]
fn login_attack_guesses_while_the_bystander_is_answered_and_the_owner_gets_in() {
    // The name's throttle at a test's scale: 2 failures at once, then one
    // a second, so the owner's login waits at most a second.
    let server = common::start_with(|config| {
        config.accounts.login_burst = 2;
        config.accounts.login_interval = std::time::Duration::from_secs(1);
        config.flood = loopchat::policy::limits::FloodLimit::OFF;
    });
    let addr = server.addr().to_string();
    let args = [
        "--quiet",
        "--attack",
        "login",
        "--addr",
        &addr,
        "--guessers",
        "6",
        "--duration",
        "1.5",
    ];
    let opts = match <Options as argh::FromArgs>::from_args(&["loadgen"], &args) {
        Ok(o) => o,
        Err(e) => panic!("bad flags {args:?}: {}", e.output),
    };
    let report = loadgen::run_attack(&opts).expect("the attack runs");
    let text = report.to_text();
    let login = report.login.as_ref().expect("a login report");
    // Each guesser from its own loopback address.
    assert_eq!((login.guessers, login.sources), (6, 6), "{text}");
    assert!(login.answered() > 0, "{text}");
    assert!(login.failed > 0, "{text}");
    assert_eq!((login.other, login.closed), (0, 0), "{text}");
    // The bystander was answered throughout.
    assert!(report.ping_count > 0, "{text}");
    assert_eq!(report.pings_unanswered, 0, "{text}");
    assert!(!report.probe_closed, "{text}");
    // No lockout: the right password logs in after the storm.
    assert!(login.owner_logged_in, "{text}");
    assert!(text.contains("LOGGED IN"), "{text}");
}
