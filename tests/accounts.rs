//! Accounts (protocol 1.2) over real sockets, against real servers: the
//! commands' exact lines, the nick rules, takeover, tokens across
//! restarts and `kill -9` of the binary with a real history file, the
//! throttle and limits, passwords refused on a plain connection from a
//! non-loopback address, the metrics, and a log without secrets.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// Sends `line` and returns every line answered before a pong.
fn ask(client: &mut Client, line: &str) -> Vec<String> {
    client.send(line);
    client.sync()
}

/// A client named `nick` that registered it with `password`.
fn registered(addr: SocketAddr, nick: &str, password: &str) -> Client {
    let mut client = Client::named(addr, nick);
    client.send(&format!(":register {password}"));
    client.expect(&format!("* registered {nick}"));
    client
}

/// A guest that logs in to `name`: its rename, then the login line.
fn logged_in(addr: SocketAddr, name: &str, password: &str) -> Client {
    let mut client = Client::connect(addr);
    client.send(&format!(":login {name} {password}"));
    client.expect(&format!("* {} is now known as {name}", client.nick));
    client.expect(&format!("* logged in as {name}"));
    client.nick = name.to_string();
    client
}

#[test]
fn register_then_the_name_is_refused_to_others_and_login_takes_it() {
    let server = start();
    let mut alice = registered(server.addr(), "alice", "hunter22");
    assert_eq!(
        ask(&mut alice, ":whois alice"),
        ["* whois alice: account alice, rooms #lobby"]
    );
    alice.send(":quit");
    alice.skip_until("* bye");

    let mut guest = Client::connect(server.addr());
    let nick = guest.nick.clone();
    assert_eq!(
        ask(&mut guest, ":nick alice"),
        ["! nick alice is registered"]
    );
    assert_eq!(
        ask(&mut guest, ":nick ALICE"),
        ["! nick ALICE is registered"]
    );
    assert_eq!(
        ask(&mut guest, &format!(":whois {nick}")),
        [format!("* whois {nick}: guest, rooms #lobby")]
    );
    // Logging in renames the guest (announced as any nick change) first.
    guest.send(":login alice hunter22");
    guest.expect(&format!("* {nick} is now known as alice"));
    guest.expect("* logged in as alice");
    // A logged-in client keeps the name; only its letter case may change.
    assert_eq!(
        ask(&mut guest, ":nick bob"),
        ["! logged in as alice (:logout first)"]
    );
    assert_eq!(
        ask(&mut guest, ":nick Alice"),
        ["* alice is now known as Alice"]
    );
    assert_eq!(
        ask(&mut guest, ":whois alice"),
        ["* whois Alice: account alice, rooms #lobby"]
    );
}

#[test]
fn bad_account_commands_get_clear_errors() {
    let server = start();
    let mut guest = Client::connect(server.addr());
    let nick = guest.nick.clone();
    for (line, answer) in [
        (
            ":register hunter22",
            "! guest nicks cannot be registered (:nick NAME first)",
        ),
        (":register", "! usage: :register PASSWORD"),
        (":login alice", "! usage: :login NAME PASSWORD"),
        (":resume", "! usage: :resume TOKEN"),
        (":passwd old", "! usage: :passwd OLD NEW"),
        (":whois", "! usage: :whois NICK"),
        (":token", "! log in first"),
        (":logout", "! log in first"),
        (":passwd hunter22 hunter23", "! log in first"),
        (":resume garbage token with spaces", "! login failed"),
        (
            ":resume lc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "! login failed",
        ),
        (":whois nobody", "! no such user nobody"),
    ] {
        assert_eq!(ask(&mut guest, line), [answer], "{line}");
    }
    assert_eq!(
        ask(&mut guest, ":nick carol"),
        [format!("* {nick} is now known as carol")]
    );
    assert_eq!(
        ask(&mut guest, ":register short"),
        ["! password must be 8 to 256 bytes"]
    );
    let long = "x".repeat(257);
    assert_eq!(
        ask(&mut guest, &format!(":register {long}")),
        ["! password must be 8 to 256 bytes"]
    );
    // The error names the bounds in force.
    let strict = start_with(|config| config.accounts.min_password_bytes = 12);
    let mut dave = Client::named(strict.addr(), "dave");
    assert_eq!(
        ask(&mut dave, ":register hunter22"),
        ["! password must be 12 to 256 bytes"]
    );
    let mut carol = registered(server.addr(), "erin", "hunter22");
    assert_eq!(
        ask(&mut carol, ":register hunter22"),
        ["! erin is already registered"]
    );
}

/// `GET /metrics` of `addr`: every sample by name and labels.
fn metrics(addr: SocketAddr) -> std::collections::HashMap<String, f64> {
    let mut stream = TcpStream::connect(addr).expect("connect to metrics");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: loopchat\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").expect("a body").1;
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (key, value) = line.rsplit_once(' ').expect("a value");
            (key.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

fn with_metrics(config: &mut loopchat::Config) {
    config.metrics_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
}

#[test]
fn an_unknown_name_gets_the_same_answer_and_the_same_work_as_a_wrong_password() {
    let server = start_with(with_metrics);
    let metrics_addr = server.metrics_addr().unwrap();
    let _alice = registered(server.addr(), "alice", "hunter22");
    let hashes = |addr| metrics(addr)["loopchat_password_hashes_total"];
    let before = hashes(metrics_addr);
    let mut mallory = Client::connect(server.addr());
    assert_eq!(
        ask(&mut mallory, ":login alice wrong-password"),
        ["! login failed"]
    );
    let after_wrong = hashes(metrics_addr);
    assert_eq!(
        ask(&mut mallory, ":login nobody wrong-password"),
        ["! login failed"]
    );
    let after_unknown = hashes(metrics_addr);
    // One Argon2id verification each: the unknown name against the dummy
    // hash, with the same parameters.
    assert_eq!(after_wrong - before, 1.0);
    assert_eq!(after_unknown - after_wrong, 1.0);
    assert_eq!(
        ask(&mut mallory, ":login 12345 wrong-password"),
        ["! login failed"]
    );
    let samples = metrics(metrics_addr);
    assert_eq!(
        samples["loopchat_login_failures_total{method=\"password\"}"],
        3.0
    );
    assert_eq!(samples["loopchat_registrations_total"], 1.0);
    assert_eq!(samples["loopchat_accounts"], 1.0);
    assert_eq!(samples["loopchat_logged_in"], 1.0);
    assert_eq!(samples["loopchat_password_queue_depth"], 0.0);
}

#[test]
fn lines_after_a_login_wait_for_it_and_run_as_the_account() {
    let server = start();
    let mut alice = registered(server.addr(), "alice", "hunter22");
    alice.send(":logout");
    alice.sync();
    let mut bob = Client::named(server.addr(), "bob");
    let mut guest = Client::connect(server.addr());
    let nick = guest.nick.clone();
    bob.skip_until(&format!("* {nick} joined #lobby"));
    // Sent at once: the chat line must not run before the login's answer.
    guest.send_bytes(b":login alice hunter22\nhello as alice\n:whois alice\n");
    guest.expect(&format!("* {nick} is now known as alice"));
    guest.expect("* logged in as alice");
    guest.expect("* whois alice: account alice, rooms #lobby");
    bob.skip_until(&format!("* {nick} is now known as alice"));
    bob.expect("alice: hello as alice");
}

#[test]
fn a_second_login_takes_over_and_the_first_connection_closes() {
    let server = start();
    let mut first = registered(server.addr(), "alice", "hunter22");
    let mut bob = Client::named(server.addr(), "bob");
    let mut second = Client::connect(server.addr());
    let nick = second.nick.clone();
    bob.skip_until(&format!("* {nick} joined #lobby"));
    first.skip_until(&format!("* {nick} joined #lobby"));
    second.send(":login ALICE hunter22");
    first.expect("* logged in elsewhere");
    first.expect_closed();
    bob.expect("* alice left #lobby (logged in elsewhere)");
    bob.expect(&format!("* {nick} is now known as alice"));
    second.expect("* alice left #lobby (logged in elsewhere)");
    second.expect(&format!("* {nick} is now known as alice"));
    second.expect("* logged in as alice");
}

#[test]
fn logout_gives_a_guest_nick_and_whois_says_guest() {
    let server = start();
    let mut alice = registered(server.addr(), "alice", "hunter22");
    alice.send(":logout");
    alice.expect("* logged out");
    let line = alice.line();
    let guest = line
        .strip_prefix("* alice is now known as ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    assert!(loopchat::protocol::is_guest_nick(&guest), "{guest}");
    assert_eq!(
        ask(&mut alice, &format!(":whois {guest}")),
        [format!("* whois {guest}: guest, rooms #lobby")]
    );
    assert_eq!(
        ask(&mut alice, ":nick alice"),
        ["! nick alice is registered"]
    );
}

/// The server binary on a history file in `dir`.
fn binary(path: &Path, extra: &[&str]) -> ServerProcess {
    let mut flags = vec!["--history-file", path.to_str().unwrap()];
    flags.extend_from_slice(extra);
    ServerProcess::start(&flags, None)
}

fn token_of(client: &mut Client) -> String {
    client.send(":token");
    let line = client.line();
    let token = line
        .strip_prefix("* token ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    assert!((20..=128).contains(&token.len()));
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    token
}

/// A new client's answer to `:resume TOKEN` (its last line: others may
/// leave the room meanwhile).
fn resume(addr: SocketAddr, token: &str) -> String {
    let mut client = Client::connect(addr);
    let lines = ask(&mut client, &format!(":resume {token}"));
    lines.last().cloned().unwrap_or_default()
}

#[test]
fn an_account_survives_kill_9_right_after_registered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let server = binary(&path, &[]);
    let mut alice = Client::named(server.addr, "alice");
    alice.send(":register hunter22");
    alice.expect("* registered alice");
    server.signal(libc::SIGKILL);
    assert!(!server.wait_exit(Duration::from_secs(10)).success());

    let server = binary(&path, &[]);
    let mut guest = Client::connect(server.addr);
    assert_eq!(
        ask(&mut guest, ":nick alice"),
        ["! nick alice is registered"]
    );
    let nick = guest.nick.clone();
    assert_eq!(
        ask(&mut guest, ":login alice hunter22"),
        [
            format!("* {nick} is now known as alice"),
            "* logged in as alice".into()
        ]
    );
}

#[test]
fn a_token_survives_restarts_and_dies_on_logout_and_on_passwd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let server = binary(&path, &[]);
    let mut alice = registered(server.addr, "alice", "hunter22");
    let phone = token_of(&mut alice);
    let laptop = token_of(&mut alice);
    // Acknowledged: committed, so kill -9 keeps them.
    server.signal(libc::SIGKILL);
    assert!(!server.wait_exit(Duration::from_secs(10)).success());

    let server = binary(&path, &[]);
    let mut on_phone = Client::connect(server.addr);
    let nick = on_phone.nick.clone();
    assert_eq!(
        ask(&mut on_phone, &format!(":resume {phone}")),
        [
            format!("* {nick} is now known as alice"),
            "* logged in as alice".into()
        ]
    );
    // :logout revokes the token this connection logged in with, only.
    assert_eq!(ask(&mut on_phone, ":logout")[0], "* logged out");
    assert_eq!(resume(server.addr, &phone), "! login failed");
    let mut on_laptop = Client::connect(server.addr);
    assert_eq!(
        ask(&mut on_laptop, &format!(":resume {laptop}"))
            .last()
            .unwrap(),
        "* logged in as alice"
    );
    // A graceful restart keeps it too.
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    let server = binary(&path, &[]);
    let mut again = Client::connect(server.addr);
    assert_eq!(
        ask(&mut again, &format!(":resume {laptop}"))
            .last()
            .unwrap(),
        "* logged in as alice"
    );
    // :passwd revokes every token; a wrong OLD changes nothing.
    assert_eq!(
        ask(&mut again, ":passwd wrong-one new-password"),
        ["! login failed"]
    );
    let spare = token_of(&mut again);
    assert_eq!(
        ask(&mut again, ":passwd hunter22 new-password"),
        ["* password changed"]
    );
    assert_eq!(resume(server.addr, &laptop), "! login failed");
    assert_eq!(resume(server.addr, &spare), "! login failed");
    let mut check = Client::connect(server.addr);
    assert_eq!(
        ask(&mut check, ":login alice hunter22").last().unwrap(),
        "! login failed"
    );
    assert_eq!(
        ask(&mut check, ":login alice new-password").last().unwrap(),
        "* logged in as alice"
    );
}

#[test]
fn failed_logins_are_slowed_and_never_lock_the_owner_out() {
    let server = start_with(|config| {
        with_metrics(config);
        config.accounts.login_burst = 1;
        config.accounts.login_interval = Duration::from_secs(1);
        // The address lockout would stop this guesser first.
        config.guard.auth_max_failures = 100;
    });
    let mut alice = registered(server.addr(), "alice", "hunter22");
    alice.send(":logout");
    alice.sync();
    let mut mallory = Client::connect(server.addr());
    for _ in 0..3 {
        assert_eq!(ask(&mut mallory, ":login alice guess"), ["! login failed"]);
    }
    let samples = metrics(server.metrics_addr().unwrap());
    assert_eq!(samples["loopchat_logins_throttled_total"], 2.0);
    // The owner still gets in (at worst one interval late).
    logged_in(server.addr(), "alice", "hunter22");
}

#[test]
fn a_full_hashing_queue_answers_server_busy_and_loses_nothing() {
    let server = start_with(|config| {
        with_metrics(config);
        // One job may wait beside the running one; neither the name's
        // throttle nor the address lockout (every client is on 127.0.0.1)
        // gets in the way.
        config.accounts.queue = 1;
        config.accounts.login_burst = u32::MAX;
        config.guard.auth_max_failures = u32::MAX;
        config.flood = loopchat::policy::limits::FloodLimit::OFF;
    });
    let addr = server.addr();
    let mut alice = registered(addr, "alice", "hunter22");
    alice.send(":logout");
    alice.sync();
    let mut bystander = Client::named(addr, "bystander");
    let mut guessers: Vec<Client> = (0..8).map(|_| Client::connect(addr)).collect();
    let (mut failed, mut busy) = (0, 0);
    // Eight logins at once against one running job and one waiting:
    // some are refused. Rounds until one was, at most ten.
    for _round in 0..10 {
        for guesser in &mut guessers {
            guesser.send(":login alice wrong-password");
        }
        // Everyone else is answered while the jobs wait or run.
        bystander.sync();
        for guesser in &mut guessers {
            // Each login gets exactly one answer, then the client's input
            // goes on: its ping is answered after it.
            let answer = loop {
                let line = guesser.line();
                if line.starts_with("! ") {
                    break line;
                }
            };
            let lines = guesser.sync();
            match answer.as_str() {
                "! login failed" => failed += 1,
                "! server busy" => busy += 1,
                other => panic!("unexpected answer {other:?}"),
            }
            assert!(
                lines.iter().all(|l| !l.starts_with('!')),
                "a second answer: {lines:?}"
            );
        }
        if busy > 0 {
            break;
        }
    }
    assert!(busy > 0, "{failed} logins failed, none refused as busy");
    assert!(failed > 0, "every login was refused as busy");
    let samples = metrics(server.metrics_addr().unwrap());
    assert_eq!(samples["loopchat_accounts_busy_total"], busy as f64);
    // The queue took nothing away from the owner.
    logged_in(addr, "alice", "hunter22");
}

#[test]
fn registrations_are_limited_per_address() {
    let server = start_with(|config| config.accounts.registrations_per_address = 2);
    let _alice = registered(server.addr(), "alice", "hunter22");
    let _bob = registered(server.addr(), "bob", "hunter22");
    let mut carol = Client::named(server.addr(), "carol");
    assert_eq!(
        ask(&mut carol, ":register hunter22"),
        ["! too many registrations, try again later"]
    );
}

/// A local IPv4 address that is not loopback (this machine's own), if
/// there is one.
fn non_loopback_address() -> Option<IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut entry = list;
    while !entry.is_null() && found.is_none() {
        // SAFETY: a node of the list getifaddrs returned.
        let ifa = unsafe { &*entry };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr of its family.
            let family = unsafe { (*ifa.ifa_addr).sa_family };
            if i32::from(family) == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() && !ip.is_unspecified() {
                    found = Some(IpAddr::V4(ip));
                }
            }
        }
        entry = ifa.ifa_next;
    }
    // SAFETY: the list getifaddrs returned.
    unsafe { libc::freeifaddrs(list) };
    found
}

#[test]
fn passwords_are_refused_on_a_plain_connection_from_another_address_not_over_tls() {
    let Some(ip) = non_loopback_address() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI machines have a non-loopback address"
        );
        eprintln!("skipped: this machine has no non-loopback IPv4 address");
        return;
    };
    // Listening on the machine's own address: a client connecting to it
    // comes from that address, which is not loopback.
    let server = start_with(|config| config.addr = SocketAddr::new(ip, 0));
    let mut remote = Client::named(server.addr(), "alice");
    for line in [
        ":register hunter22",
        ":login alice hunter22",
        ":passwd hunter22 hunter23",
    ] {
        assert_eq!(
            ask(&mut remote, line),
            ["! use TLS to send a password"],
            "{line}"
        );
    }
    // Tokens are not passwords.
    assert_eq!(
        ask(
            &mut remote,
            ":resume lc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ),
        ["! login failed"]
    );
    // Over TLS from the same address, passwords are fine.
    let pki = common::tls::TestPki::new();
    let secure = start_with(|config| {
        config.addr = SocketAddr::new(ip, 0);
        config.tls_addr = SocketAddr::new(ip, 0);
        config.tls_cert = Some(pki.cert_file.clone());
        config.tls_key = Some(pki.key_file.clone());
    });
    let mut over_tls = common::tls::TlsClient::connect(secure.tls_addr().unwrap(), &pki);
    over_tls.send(":nick alice");
    over_tls.skip_until(&format!("* {} is now known as alice", over_tls.nick));
    over_tls.send(":register hunter22");
    over_tls.expect("* registered alice");
    let allowed = start_with(|config| {
        config.addr = SocketAddr::new(ip, 0);
        config.accounts.allow_plain_passwords = true;
    });
    let mut remote = Client::named(allowed.addr(), "alice");
    assert_eq!(
        ask(&mut remote, ":register hunter22"),
        ["* registered alice"]
    );
}

#[test]
fn the_log_never_shows_a_password_or_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let server = binary(&path, &[]);
    let password = "correct-horse-battery";
    let mut alice = registered(server.addr, "alice", password);
    let token = token_of(&mut alice);
    let mut other = Client::connect(server.addr);
    ask(&mut other, &format!(":login alice {password}"));
    ask(&mut other, ":login alice wrong-horse-battery");
    resume(server.addr, &token);
    drop(alice);
    drop(other);
    server.signal(libc::SIGTERM);
    let mut log = Vec::new();
    while let Ok(line) = server.log.recv_timeout(Duration::from_secs(10)) {
        log.push(line);
    }
    assert!(log.iter().any(|line| line.contains("shut down")), "{log:?}");
    for line in &log {
        assert!(!line.contains("horse-battery"), "{line}");
        assert!(!line.contains(&token), "{line}");
    }
}

#[test]
fn an_administrator_kicks_in_a_room_it_did_not_create_once_logged_in() {
    let server = start_with(|config| config.admins = vec!["Root".into()]);
    let addr = server.addr();
    let mut bob = Client::named(addr, "bob");
    bob.send(":join rust");
    bob.sync();
    let mut carol = Client::named(addr, "carol");
    carol.send(":join rust");
    carol.sync();
    let mut root = Client::named(addr, "root");
    root.send(":join rust");
    root.sync();
    // Named root but not logged in: no more than anyone else.
    assert_eq!(
        ask(&mut root, ":kick carol"),
        ["! not an operator of #rust"]
    );
    root.send(":register hunter22");
    root.expect("* registered root");
    root.send(":kick carol spam");
    root.skip_until("* carol was kicked from #rust by root (spam)");
    carol.skip_until("* carol was kicked from #rust by root (spam)");
    bob.skip_until("* carol was kicked from #rust by root (spam)");
    // Logged out, it is an ordinary member again.
    root.send(":logout");
    root.expect("* logged out");
    root.sync();
    assert_eq!(
        ask(&mut root, ":kick bob").last().unwrap(),
        "! not an operator of #rust"
    );
}
