//! Registration (PASS, NICK, USER, CAP), the welcome burst, the numerics
//! around it, PING, QUIT, and input that is not IRC.

use crate::client::{irc_addr, numeric, start, start_with, Irc, SERVER};
use crate::common::{Client, Lines};

const VERSION: &str = concat!("loopchat-", env!("CARGO_PKG_VERSION"));

/// NICK and USER register: 001-004, 005 (ISUPPORT), LUSERS 251-255 and
/// 422 (no MOTD), each with the documents' parameters, from the server's
/// configured name.
#[test]
fn registration_sends_the_welcome_burst() {
    let server = start();
    let mut alice = Irc::connect(irc_addr(&server));
    alice.send("NICK alice");
    alice.send("USER alice 0 * :Alice Liddell");
    alice.expect(&numeric(
        "001",
        "alice",
        ":Welcome to the irc.test Network, alice",
    ));
    alice.expect(&numeric(
        "002",
        "alice",
        &format!(":Your host is {SERVER}, running version {VERSION}"),
    ));
    let created = alice.line();
    let prefix = numeric("003", "alice", ":This server was created ");
    assert!(created.starts_with(&prefix), "{created}");
    alice.expect(&numeric(
        "004",
        "alice",
        &format!("{SERVER} {VERSION} i bnot bo"),
    ));
    alice.expect(&numeric(
        "005",
        "alice",
        "CASEMAPPING=ascii CHANTYPES=# PREFIX=(o)@ CHANMODES=b,,,nt NICKLEN=32 \
         CHANNELLEN=33 TOPICLEN=390 NETWORK=irc.test UTF8ONLY CHATHISTORY=100 \
         MSGREFTYPES=msgid,timestamp :are supported by this server",
    ));
    alice.expect(&numeric(
        "251",
        "alice",
        ":There are 1 users and 0 invisible on 1 servers",
    ));
    alice.expect(&numeric("252", "alice", "0 :operator(s) online"));
    alice.expect(&numeric("253", "alice", "0 :unknown connection(s)"));
    alice.expect(&numeric("254", "alice", "0 :channels formed"));
    alice.expect(&numeric("255", "alice", ":I have 1 clients and 0 servers"));
    alice.expect(&numeric("422", "alice", ":MOTD File is missing"));
    assert!(alice.sync().is_empty());
}

/// With `--motd` lines: 375, a 372 per line, 376; `MOTD` sends it again.
#[test]
fn the_motd_is_sent_after_lusers_and_on_request() {
    let server = start_with(|config| config.motd = vec!["be kind".into(), "no spam".into()]);
    let mut alice = Irc::connect(irc_addr(&server));
    alice.send("NICK alice");
    alice.send("USER alice 0 * :Alice");
    alice.until(&numeric("255", "alice", ":I have 1 clients and 0 servers"));
    let motd = [
        numeric("375", "alice", ":- irc.test Message of the day - "),
        numeric("372", "alice", ":- be kind"),
        numeric("372", "alice", ":- no spam"),
        numeric("376", "alice", ":End of /MOTD command."),
    ];
    for line in &motd {
        alice.expect(line);
    }
    assert_eq!(alice.ask("MOTD"), motd);
}

/// `CAP LS 302` holds registration until `CAP END`, as irssi and WeeChat
/// negotiate; PING is answered meanwhile.
#[test]
fn cap_ls_holds_registration_until_cap_end() {
    let server = start();
    let mut alice = Irc::connect(irc_addr(&server));
    alice.send("CAP LS 302");
    alice.send("NICK alice");
    alice.send("USER alice 0 * :Alice");
    alice.expect(&format!(
        ":{SERVER} CAP * LS :cap-notify message-tags server-time echo-message batch labeled-response \
         multi-prefix userhost-in-names account-tag extended-join sasl=PLAIN draft/chathistory"
    ));
    alice.send("PING before-end");
    alice.expect(&format!(":{SERVER} PONG {SERVER} :before-end"));
    alice.send("CAP REQ :no-such-cap");
    alice.expect(&format!(":{SERVER} CAP * NAK :no-such-cap"));
    alice.send("CAP END");
    alice.expect(&numeric(
        "001",
        "alice",
        ":Welcome to the irc.test Network, alice",
    ));
}

/// Before registration, anything but CAP, PASS, NICK, USER, PING, PONG
/// and QUIT is `451`.
#[test]
fn commands_before_registration_are_451() {
    let server = start();
    let mut irc = Irc::connect(irc_addr(&server));
    irc.send("JOIN #rust");
    irc.expect(&numeric("451", "*", ":You have not registered"));
    irc.send("PRIVMSG #rust :hi");
    irc.expect(&numeric("451", "*", ":You have not registered"));
}

/// `NICK` without a nick is `431`; a nick outside the rules `432`; a nick
/// a line client has `433`; registration goes on after each.
#[test]
fn nick_errors_are_431_432_433() {
    let server = start();
    let mut line = Client::connect(server.addr());
    line.send(":nick bob");
    line.expect(&format!("* {} is now known as bob", line.nick));
    let mut irc = Irc::connect(irc_addr(&server));
    irc.send("NICK");
    irc.expect(&numeric("431", "*", ":No nickname given"));
    irc.send("NICK 9lives");
    irc.expect(&numeric("432", "*", "9lives :Erroneus nickname"));
    irc.send("NICK b[a]d");
    irc.expect(&numeric("432", "*", "b[a]d :Erroneus nickname"));
    irc.send("NICK Bob");
    irc.expect(&numeric("433", "*", "Bob :Nickname is already in use"));
    irc.send("NICK carol");
    irc.send("USER carol 0 * :Carol");
    irc.expect(&numeric(
        "001",
        "carol",
        ":Welcome to the irc.test Network, carol",
    ));
}

/// `USER` (or `PASS`) once registered is `462`; `USER` with too few
/// parameters `461`.
#[test]
fn reregistering_is_462_and_missing_parameters_461() {
    let server = start();
    let mut irc = Irc::connect(irc_addr(&server));
    irc.send("NICK alice");
    irc.send("USER alice");
    irc.expect(&numeric("461", "*", "USER :Not enough parameters"));
    irc.send("USER alice 0 * :Alice");
    irc.until(&numeric("422", "alice", ":MOTD File is missing"));
    irc.nick = "alice".into();
    assert_eq!(
        irc.ask("USER alice 0 * :Alice"),
        [numeric("462", "alice", ":You may not reregister")]
    );
    assert_eq!(
        irc.ask("PASS secret"),
        [numeric("462", "alice", ":You may not reregister")]
    );
    assert_eq!(
        irc.ask("JOIN"),
        [numeric("461", "alice", "JOIN :Not enough parameters")]
    );
}

/// A server password is `PASS`: the right one registers, a wrong one is
/// `464` then `ERROR`, and the connection closes.
#[test]
fn pass_is_the_server_password() {
    let server = start_with(|config| config.password = Some("sesame".into()));
    let mut wrong = Irc::connect(irc_addr(&server));
    wrong.send("PASS open");
    wrong.send("NICK mallory");
    wrong.send("USER mallory 0 * :M");
    wrong.expect(&numeric("464", "*", ":Password incorrect"));
    assert_eq!(
        wrong.expect_error_then_close(),
        "ERROR :Closing link: (Password incorrect)"
    );
    let mut none = Irc::connect(irc_addr(&server));
    none.send("NICK eve");
    none.send("USER eve 0 * :E");
    none.expect(&numeric("464", "*", ":Password incorrect"));
    none.expect_error_then_close();
    let mut right = Irc::connect(irc_addr(&server));
    right.send("PASS sesame");
    right.send("NICK alice");
    right.send("USER alice 0 * :A");
    right.expect(&numeric(
        "001",
        "alice",
        ":Welcome to the irc.test Network, alice",
    ));
}

/// `PING TOKEN` is `PONG SERVER :TOKEN`, before and after registration.
#[test]
fn ping_is_answered_with_pong() {
    let server = start();
    let mut irc = Irc::connect(irc_addr(&server));
    irc.send("PING :early bird");
    irc.expect(&format!(":{SERVER} PONG {SERVER} :early bird"));
    let mut alice = Irc::register(irc_addr(&server), "alice");
    alice.send("PING 12345");
    alice.expect(&format!(":{SERVER} PONG {SERVER} :12345"));
    alice.send("PING");
    alice.expect(&numeric("461", "alice", "PING :Not enough parameters"));
}

/// Unknown commands are `421`, whatever their case.
#[test]
fn unknown_commands_are_421() {
    let server = start();
    let mut alice = Irc::register(irc_addr(&server), "alice");
    assert_eq!(
        alice.ask("FROBNICATE now"),
        [numeric("421", "alice", "FROBNICATE :Unknown command")]
    );
}

/// An IRC client starts in no channel: line clients do not see it in
/// `#lobby`, and it is in no room until it joins one.
#[test]
fn irc_clients_start_in_no_channel() {
    let server = start();
    let mut line = Client::connect(server.addr());
    let alice = Irc::register(irc_addr(&server), "alice");
    let users = line.sync();
    assert!(users.is_empty(), "{users:?}");
    line.send(":users #lobby");
    let answer = line.line();
    assert_eq!(answer, format!("* users in #lobby: {}", line.nick));
    drop(alice);
}

/// `QUIT :reason`: `ERROR`, then the connection closes; the channels it
/// was in hear it leave with the reason.
#[test]
fn quit_sends_error_and_closes() {
    let server = start();
    let mut alice = Irc::register(irc_addr(&server), "alice");
    let mut line = Client::connect(server.addr());
    line.send(":nick bob");
    line.send(":join #rust");
    line.sync();
    alice.send("JOIN #rust");
    alice.sync();
    line.expect("* alice joined #rust");
    let mut carol = Irc::register(irc_addr(&server), "carol");
    carol.ask("JOIN #rust");
    alice.send("QUIT :gone fishing");
    assert_eq!(
        alice.until("ERROR :Closing link: alice (Quit)"),
        [format!(":carol!carol@{SERVER} JOIN #rust")]
    );
    alice.expect_closed();
    line.expect("* carol joined #rust");
    line.expect("* alice left #rust (gone fishing)");
    // IRC clients see a QUIT, not a PART; without a reason, `Client Quit`.
    carol.expect(&format!(":alice!alice@{SERVER} QUIT :gone fishing"));
    let mut dave = Irc::register(irc_addr(&server), "dave");
    dave.ask("JOIN #rust");
    carol.expect(&format!(":dave!dave@{SERVER} JOIN #rust"));
    drop(dave);
    carol.expect(&format!(":dave!dave@{SERVER} QUIT :Client Quit"));
}

/// A line that is not IRC at all (binary, a TLS hello) before
/// registration closes that connection only; others go on.
#[test]
fn garbage_closes_only_that_connection() {
    let server = start();
    let mut alice = Irc::register(irc_addr(&server), "alice");
    let mut garbage = Irc::connect(irc_addr(&server));
    garbage.send_bytes(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 \x00\xff\r\n");
    assert_eq!(
        garbage.expect_error_then_close(),
        "ERROR :Closing link: (not IRC)"
    );
    let mut nul = Irc::connect(irc_addr(&server));
    nul.send_bytes(b"NICK a\x00b\r\n");
    nul.expect_error_then_close();
    assert!(alice.sync().is_empty());
}

/// A line over 512 bytes is `417`; non-UTF-8 is `FAIL … INVALID_UTF8`;
/// the connection stays and its next command runs.
#[test]
fn long_lines_are_417_and_non_utf8_is_fail() {
    let server = start();
    let mut alice = Irc::register(irc_addr(&server), "alice");
    let long = format!("PRIVMSG bob :{}", "x".repeat(600));
    assert_eq!(
        alice.ask(&long),
        [numeric("417", "alice", ":Input line was too long")]
    );
    alice.send_bytes(b"PRIVMSG bob :caf\xe9\r\n");
    assert_eq!(
        alice.sync(),
        [format!(
            ":{SERVER} FAIL PRIVMSG INVALID_UTF8 :Message rejected, your IRC software MUST use \
             UTF-8 encoding on this network"
        )]
    );
    let huge = format!("PRIVMSG bob :{}", "y".repeat(20_000));
    assert_eq!(
        alice.ask(&huge),
        [numeric("417", "alice", ":Input line was too long")]
    );
}

/// With a certificate, IRC clients also connect over TLS (`--irc-tls-addr`)
/// and register as over TCP; without one there is no TLS IRC address.
#[test]
fn irc_over_tls_registers_and_chats() {
    use crate::common::tls::{TestPki, TlsClient};
    use std::io::Write;
    assert_eq!(start().irc_tls_addr(), None);
    let pki = TestPki::new();
    let server = start_with(|config| {
        config.tls_cert = Some(pki.cert_file.clone());
        config.tls_key = Some(pki.key_file.clone());
    });
    let addr = server.irc_tls_addr().expect("a TLS IRC address");
    let mut tls =
        TlsClient::try_connect_raw(addr, "localhost", pki.client_config()).expect("TLS handshake");
    tls.writer
        .write_all(b"NICK alice\r\nUSER alice 0 * :Alice\r\nPING tls\r\n")
        .unwrap();
    let mut lines = Vec::new();
    loop {
        let line = tls.line();
        let line = line.strip_suffix('\r').expect("CR LF").to_string();
        if line == format!(":{SERVER} PONG {SERVER} :tls") {
            break;
        }
        lines.push(line);
    }
    assert_eq!(
        lines.first().map(String::as_str),
        Some(":irc.test 001 alice :Welcome to the irc.test Network, alice")
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some(":irc.test 422 alice :MOTD File is missing")
    );
    let mut bob = Client::named(server.addr(), "bob");
    tls.writer.write_all(b"PRIVMSG bob :over TLS\r\n").unwrap();
    bob.expect("[pm] alice: over TLS");
}

/// An IRC client must register within the auth timeout; one that does
/// not is told `ERROR` and closed.
#[test]
fn registration_must_finish_within_the_auth_timeout() {
    let server = start_with(|config| {
        config.guard.auth_timeout = Some(std::time::Duration::from_secs(1));
    });
    let mut slow = Irc::connect(irc_addr(&server));
    slow.send("NICK slow");
    assert_eq!(
        slow.expect_error_then_close(),
        "ERROR :Closing link: * (auth timeout)"
    );
}

/// At shutdown an IRC client is told `ERROR` and closed.
#[test]
fn shutdown_sends_error() {
    let server = start();
    let mut alice = Irc::register(irc_addr(&server), "alice");
    let stopper = std::thread::spawn(move || server.stop());
    assert_eq!(
        alice.expect_error_then_close(),
        "ERROR :Closing link: irc.test (server shutting down)"
    );
    drop(alice);
    stopper.join().unwrap().unwrap();
}
