//! Registration: PASS, NICK, USER, CAP.

use super::parse;
use crate::irc::*;

fn rules<'r>(password: Option<&'r str>, taken: &'r dyn Fn(&str) -> bool) -> Rules<'r> {
    Rules {
        password,
        offered: CapSet::of(&[
            Cap::CapNotify,
            Cap::MessageTags,
            Cap::ServerTime,
            Cap::MultiPrefix,
            Cap::EchoMessage,
        ]),
        nick_taken: taken,
    }
}

/// Runs `lines` through a registration; the outcomes as the server writes
/// them (and `Registered` as `REGISTERED nick user realname`).
fn run(lines: &[&str], password: Option<&str>) -> (Registration, Vec<String>) {
    let taken = |nick: &str| nick.eq_ignore_ascii_case("bob");
    let rules = rules(password, &taken);
    let mut state = Registration::new();
    let mut seen = Vec::new();
    for line in lines {
        let message = parse(line);
        let outcome = state.handle(&message, &rules);
        let text = match &outcome {
            Outcome::Registered => {
                let (user, realname) = state.user().unwrap();
                format!("REGISTERED {} {user} {realname}", state.nick().unwrap())
            }
            Outcome::Command => "COMMAND".to_owned(),
            outcome => {
                let mut out = Vec::new();
                // The client's nick once it has one, as the server sends.
                let client = state
                    .nick()
                    .filter(|_| state.is_registered())
                    .unwrap_or("*");
                outcome.write("loopchat", client, rules.offered, &mut out);
                String::from_utf8(out).unwrap()
            }
        };
        seen.push(text);
    }
    (state, seen)
}

#[test]
fn nick_then_user_registers_without_cap() {
    let (state, seen) = run(&["NICK alice", "USER alice 0 * :Alice Liddell"], None);
    assert_eq!(seen, ["", "REGISTERED alice alice Alice Liddell"]);
    assert!(state.is_registered());
    assert_eq!(state.nick(), Some("alice"));
}

#[test]
fn irssi_and_weechat_negotiate_then_register_on_cap_end() {
    let (state, seen) = run(
        &[
            "CAP LS 302",
            "NICK alice",
            "USER root 0 * :root",
            "CAP REQ :multi-prefix server-time",
            "CAP END",
        ],
        None,
    );
    assert_eq!(
        seen,
        [
            ":loopchat CAP * LS :cap-notify message-tags server-time echo-message multi-prefix\r\n",
            "",
            "",
            ":loopchat CAP * ACK :multi-prefix server-time\r\n",
            "REGISTERED alice root root",
        ]
    );
    assert!(state.cap_302());
    assert!(state.caps().contains(Cap::MultiPrefix));
    assert!(state.caps().contains(Cap::ServerTime));
    // cap-notify is implied by 302.
    assert!(state.caps().contains(Cap::CapNotify));
    assert!(!state.caps().contains(Cap::EchoMessage));
}

#[test]
fn cap_ls_302_shows_values_and_plain_ls_does_not() {
    let offered = CapSet::of(&[Cap::Sasl, Cap::MessageTags]);
    assert_eq!(offered.to_list(true), "message-tags sasl=PLAIN");
    assert_eq!(offered.to_list(false), "message-tags sasl");
}

#[test]
fn cap_req_is_all_or_nothing_and_minus_removes() {
    let offered = CapSet::of(&[Cap::MessageTags, Cap::ServerTime]);
    let some = CapSet::apply_request(CapSet::EMPTY, "message-tags server-time", offered).unwrap();
    assert!(some.contains(Cap::MessageTags) && some.contains(Cap::ServerTime));
    assert_eq!(
        CapSet::apply_request(some, "server-time sasl", offered),
        None
    );
    assert_eq!(CapSet::apply_request(some, "bogus", offered), None);
    assert_eq!(CapSet::apply_request(some, "", offered), None);
    let fewer = CapSet::apply_request(some, "-server-time", offered).unwrap();
    assert!(!fewer.contains(Cap::ServerTime) && fewer.contains(Cap::MessageTags));
    let (_, seen) = run(&["CAP REQ :sasl", "CAP REQ :message-tags"], None);
    assert_eq!(
        seen,
        [
            ":loopchat CAP * NAK :sasl\r\n",
            ":loopchat CAP * ACK :message-tags\r\n"
        ]
    );
}

#[test]
fn cap_list_and_bad_cap_subcommands() {
    let (_, seen) = run(&["CAP LIST", "CAP FOO", "CAP"], None);
    assert_eq!(
        seen,
        [
            ":loopchat CAP * LIST :\r\n",
            ":loopchat 410 * FOO :Invalid CAP command\r\n",
            ":loopchat 461 * CAP :Not enough parameters\r\n",
        ]
    );
}

#[test]
fn registration_errors_are_the_documents_numerics() {
    let (state, seen) = run(
        &[
            "NICK",
            "NICK :",
            "NICK 1alice",
            "NICK server",
            "NICK a.b",
            "NICK bob",
            "USER alice 0 *",
            "PASS",
            "JOIN #rust",
            "PRIVMSG #rust :hi",
        ],
        None,
    );
    assert_eq!(
        seen,
        [
            ":loopchat 431 * :No nickname given\r\n",
            ":loopchat 431 * :No nickname given\r\n",
            ":loopchat 432 * 1alice :Erroneus nickname\r\n",
            ":loopchat 432 * server :Erroneus nickname\r\n",
            ":loopchat 432 * a.b :Erroneus nickname\r\n",
            ":loopchat 433 * bob :Nickname is already in use\r\n",
            ":loopchat 461 * USER :Not enough parameters\r\n",
            ":loopchat 461 * PASS :Not enough parameters\r\n",
            ":loopchat 451 * :You have not registered\r\n",
            ":loopchat 451 * :You have not registered\r\n",
        ]
    );
    assert!(!state.is_registered());
}

#[test]
fn after_registration_pass_and_user_are_462_and_the_rest_is_chat() {
    let (_, seen) = run(
        &[
            "NICK alice",
            "USER alice 0 * :A",
            "PASS secret",
            "USER alice 0 * :A",
            "JOIN #rust",
            "NICK alicia",
            "CAP LS",
        ],
        None,
    );
    assert_eq!(
        seen[2..],
        [
            ":loopchat 462 alice :You may not reregister\r\n",
            ":loopchat 462 alice :You may not reregister\r\n",
            "COMMAND",
            "COMMAND",
            ":loopchat CAP alice LS :cap-notify message-tags server-time echo-message multi-prefix\r\n",
        ]
    );
}

#[test]
fn the_server_password_is_checked_when_registration_completes() {
    let (state, seen) = run(&["NICK alice", "USER a 0 * :A"], Some("pw"));
    assert_eq!(
        seen[1],
        ":loopchat 464 * :Password incorrect\r\nERROR :Closing link: (Password incorrect)\r\n"
    );
    assert!(!state.is_registered());
    let (_, seen) = run(&["PASS nope", "NICK alice", "USER a 0 * :A"], Some("pw"));
    assert!(seen[2].starts_with(":loopchat 464 * :Password incorrect\r\n"));
    let (state, seen) = run(&["PASS pw", "NICK alice", "USER a 0 * :A"], Some("pw"));
    assert_eq!(seen[2], "REGISTERED alice a A");
    assert!(state.is_registered());
}

#[test]
fn ping_pong_and_quit_work_before_registration() {
    let (_, seen) = run(
        &["PING :abc", "PONG x", "PING", "QUIT :bye now", "QUIT"],
        None,
    );
    assert_eq!(
        seen,
        [
            ":loopchat PONG loopchat :abc\r\n",
            "",
            ":loopchat 461 * PING :Not enough parameters\r\n",
            "ERROR :Closing link: (bye now)\r\n",
            "ERROR :Closing link: (Client Quit)\r\n",
        ]
    );
}

#[test]
fn a_lost_nick_waits_for_another() {
    let taken = |_: &str| false;
    let rules = rules(None, &taken);
    let mut state = Registration::new();
    state.handle(&parse("NICK alice"), &rules);
    assert!(matches!(
        state.handle(&parse("USER a 0 * :A"), &rules),
        Outcome::Registered
    ));
    state.nick_lost();
    assert!(!state.is_registered() && state.nick().is_none());
    assert_eq!(
        state.handle(&parse("NICK alice2"), &rules),
        Outcome::Registered
    );
    assert_eq!(state.nick(), Some("alice2"));
}
