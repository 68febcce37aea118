//! SASL `PLAIN` (`AUTHENTICATE`) through the accounts' worker: before
//! registration as irssi and WeeChat do it, after it, and its refusals.

use crate::client::{irc_addr, numeric, start, Irc, SERVER};
use crate::common::{Client, Lines};
use crate::with_caps;
use base64::Engine;

/// An account `name` with `password`, registered by a line client that
/// then leaves (so the name is free).
fn account(server: &loopchat::RunningServer, name: &str, password: &str) {
    let mut line = Client::named(server.addr(), name);
    line.send(&format!(":register {password}"));
    line.expect(&format!("* registered {name}"));
    line.send(":quit");
    line.read_to_close();
}

fn plain(authzid: &str, authcid: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{authzid}\0{authcid}\0{password}"))
}

/// The exchange before registration: `AUTHENTICATE PLAIN`, `+`, the
/// payload, `900` and `903`; then `CAP END` registers, logged in (WHOIS
/// says so).
#[test]
fn plain_before_registration_logs_in() {
    let server = start();
    account(&server, "dana", "correct horse");
    let mut irc = Irc::connect(irc_addr(&server));
    irc.send("CAP LS 302");
    irc.send("NICK dana");
    irc.send("USER dana 0 * :Dana");
    irc.line();
    irc.send("CAP REQ :sasl");
    irc.expect(&format!(":{SERVER} CAP * ACK :sasl"));
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send(&format!(
        "AUTHENTICATE {}",
        plain("dana", "dana", "correct horse")
    ));
    irc.expect(&numeric(
        "900",
        "dana",
        &format!("dana!dana@{SERVER} dana :You are now logged in as dana"),
    ));
    irc.expect(&numeric("903", "dana", ":SASL authentication successful"));
    irc.send("AUTHENTICATE PLAIN");
    irc.expect(&numeric(
        "907",
        "dana",
        ":You have already authenticated using SASL",
    ));
    irc.send("CAP END");
    irc.until(&numeric("422", "dana", ":MOTD File is missing"));
    irc.nick = "dana".into();
    let mut other = Client::connect(server.addr());
    other.send(":whois dana");
    let whois = other.sync();
    assert!(
        whois
            .iter()
            .any(|line| line.contains("dana") && line.contains("account dana")),
        "{whois:?}"
    );
}

/// A wrong password is `904` (after the worker checked it); the client
/// may try again, and registers as a guest of its own nick without.
#[test]
fn a_wrong_password_is_904_and_another_try_may_follow() {
    let server = start();
    account(&server, "erin", "right password");
    let mut irc = Irc::connect(irc_addr(&server));
    irc.send("CAP LS 302");
    irc.line();
    irc.send("CAP REQ :sasl");
    irc.line();
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send(&format!(
        "AUTHENTICATE {}",
        plain("", "erin", "wrong password")
    ));
    irc.expect(&numeric("904", "*", ":SASL authentication failed"));
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send(&format!(
        "AUTHENTICATE {}",
        plain("", "erin", "right password")
    ));
    irc.expect(&numeric(
        "900",
        "*",
        &format!("erin!erin@{SERVER} erin :You are now logged in as erin"),
    ));
    irc.expect(&numeric("903", "*", ":SASL authentication successful"));
}

/// Refusals that need no worker: an unknown mechanism (`908` then `904`),
/// an abort (`906`), a payload that is not PLAIN's (`904`), too long
/// (`905`), no parameter (`461`), and `AUTHENTICATE` without the cap.
#[test]
fn refusals_are_the_specifications_numerics() {
    let server = start();
    let mut irc = Irc::connect(irc_addr(&server));
    irc.send("AUTHENTICATE PLAIN");
    irc.expect(&numeric("904", "*", ":SASL authentication failed"));
    irc.send("CAP REQ :sasl");
    irc.line();
    irc.send("AUTHENTICATE EXTERNAL");
    irc.expect(&numeric("908", "*", "PLAIN :are available SASL mechanisms"));
    irc.expect(&numeric("904", "*", ":SASL authentication failed"));
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send("AUTHENTICATE *");
    irc.expect(&numeric("906", "*", ":SASL authentication aborted"));
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send("AUTHENTICATE bm90IHBsYWlu");
    irc.expect(&numeric("904", "*", ":SASL authentication failed"));
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send(&format!("AUTHENTICATE {}", "A".repeat(401)));
    irc.expect(&numeric("905", "*", ":SASL message too long"));
    irc.send("AUTHENTICATE");
    irc.expect(&numeric("461", "*", "AUTHENTICATE :Not enough parameters"));
}

/// After registration: the exchange logs the client in (it takes the
/// account's name, as `:login` does).
#[test]
fn plain_after_registration_logs_in_and_renames() {
    let server = start();
    account(&server, "fay", "fay's password");
    let mut irc = with_caps(irc_addr(&server), "guesty", "sasl");
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send(&format!(
        "AUTHENTICATE {}",
        plain("", "fay", "fay's password")
    ));
    let lines = irc.until(&numeric("903", "fay", ":SASL authentication successful"));
    assert!(
        lines.contains(&format!(":guesty!guesty@{SERVER} NICK fay")),
        "{lines:?}"
    );
}
