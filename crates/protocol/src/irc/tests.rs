//! The IRC codec against the Modern IRC documents' examples
//! (`modern.ircdocs.horse`: message format, numerics, registration) and
//! the IRCv3 specifications it follows.

use super::burst::{self, Lusers, ServerInfo};
use super::message::{is_middle, MAX_PARAMS};
use super::numeric;
use super::text::{
    ctcp_action, is_ctcp, room_for_text, split_at_chars, strip_formatting, write_action,
    write_action_messages, write_text_messages,
};
use super::*;
use proptest::prelude::*;

fn parse(line: &str) -> Message<'_> {
    Message::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

fn params<'a>(message: &Message<'a>) -> Vec<&'a str> {
    message.params.as_slice().to_vec()
}

// ---- Message format ---------------------------------------------------

#[test]
fn the_documents_complete_examples_parse() {
    let m = parse(":irc.example.com CAP LS * :multi-prefix extended-join sasl");
    assert_eq!(m.source, Some("irc.example.com"));
    assert_eq!(m.command, "CAP");
    assert_eq!(params(&m), ["LS", "*", "multi-prefix extended-join sasl"]);

    let m = parse("@id=234AB :dan!d@localhost PRIVMSG #chan :Hey what's up!");
    assert_eq!(m.tags, Some("id=234AB"));
    assert_eq!(m.source, Some("dan!d@localhost"));
    assert_eq!(m.command, "PRIVMSG");
    assert_eq!(params(&m), ["#chan", "Hey what's up!"]);

    let m = parse("CAP REQ :sasl");
    assert_eq!((m.tags, m.source), (None, None));
    assert_eq!(params(&m), ["REQ", "sasl"]);
}

#[test]
fn the_documents_tag_examples_read_as_their_json() {
    let m = parse("@id=123AB;rose PING x");
    assert_eq!(
        m.tags().collect::<Vec<_>>(),
        [("id", "123AB"), ("rose", "")]
    );
    let m = parse("@url=;netsplit=tur,ty PING x");
    assert_eq!(
        m.tags().collect::<Vec<_>>(),
        [("url", ""), ("netsplit", "tur,ty")]
    );
    let m = parse("@label=a\\sb PING x");
    let (_, value) = m.tags().next().unwrap();
    assert_eq!(crate::tags::unescape(value), "a b");
}

#[test]
fn the_documents_parameter_examples_read_as_their_json() {
    for (line, expected) in [
        (":irc.example.com CAP * LIST :", &["*", "LIST", ""][..]),
        (
            "CAP * LS :multi-prefix sasl",
            &["*", "LS", "multi-prefix sasl"],
        ),
        (
            "CAP REQ :sasl message-tags foo",
            &["REQ", "sasl message-tags foo"],
        ),
        (":dan!d@localhost PRIVMSG #chan :Hey!", &["#chan", "Hey!"]),
        (":dan!d@localhost PRIVMSG #chan Hey!", &["#chan", "Hey!"]),
        (":dan!d@localhost PRIVMSG #chan ::-)", &["#chan", ":-)"]),
    ] {
        assert_eq!(params(&parse(line)), expected, "{line:?}");
    }
}

#[test]
fn several_spaces_separate_like_one_and_trailing_spaces_are_kept() {
    let m = parse("PRIVMSG   #a    :hi  there  ");
    assert_eq!(params(&m), ["#a", "hi  there  "]);
    let m = parse("  NICK   alice   ");
    assert_eq!(m.command, "NICK");
    assert_eq!(params(&m), ["alice"]);
    let m = parse("JOIN");
    assert!(params(&m).is_empty());
}

#[test]
fn commands_are_case_insensitive_and_numerics_are_commands() {
    let m = parse("privmsg #a :x");
    assert!(m.is("PRIVMSG") && m.is("PrivMsg"));
    let m = parse(":loopchat 001 alice :Welcome");
    assert_eq!(m.command, "001");
}

#[test]
fn the_fifteenth_parameter_takes_the_rest_of_the_line() {
    let line = "CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17";
    let m = parse(line);
    assert_eq!(m.params.as_slice().len(), MAX_PARAMS);
    assert_eq!(m.param(14), Some("15 16 17"));
    let again = m.to_line();
    assert_eq!(again, "CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 :15 16 17\r\n");
    assert_eq!(parse(again.trim_end()), m);
}

#[test]
fn lines_with_no_command_are_empty_and_are_ignored() {
    for line in ["", "   ", "@a=b", "@a=b ", ":source", ":source   "] {
        assert_eq!(
            Message::parse(line.as_bytes()),
            Err(ParseError::Empty),
            "{line:?}"
        );
    }
}

#[test]
fn a_command_of_other_characters_is_refused_with_it() {
    assert_eq!(
        Message::parse(b"PRIV.MSG #a x"),
        Err(ParseError::BadCommand("PRIV.MSG"))
    );
    assert_eq!(
        Message::parse(b"GET / HTTP/1.1"),
        Ok(Message::new("GET", &["/", "HTTP/1.1"]))
    );
}

#[test]
fn the_message_may_be_510_bytes_without_tags_and_no_more() {
    let at_limit = format!("PRIVMSG #a :{}", "x".repeat(510 - 12));
    assert_eq!(at_limit.len(), 510);
    assert!(Message::parse(at_limit.as_bytes()).is_ok());
    let over = format!("{at_limit}x");
    assert_eq!(Message::parse(over.as_bytes()), Err(ParseError::TooLong));
    // Tags do not count towards the 510 bytes.
    let tagged = format!("@label=1 {at_limit}");
    assert!(Message::parse(tagged.as_bytes()).is_ok());
}

#[test]
fn tags_may_take_8191_bytes_with_their_at_and_space() {
    let tags = |len: usize| format!("@a={} ", "v".repeat(len - 4));
    let ok = format!("{}PING x", tags(MAX_TAGS_BYTES));
    assert_eq!(ok.find("PING"), Some(MAX_TAGS_BYTES));
    assert!(Message::parse(ok.as_bytes()).is_ok());
    let over = format!("{}PING x", tags(MAX_TAGS_BYTES + 1));
    assert_eq!(Message::parse(over.as_bytes()), Err(ParseError::TooLong));
    assert_eq!(MAX_LINE_BYTES, MAX_TAGS_BYTES + 510);
}

#[test]
fn non_utf8_is_refused_with_the_command_when_it_can_be_read() {
    assert_eq!(
        Message::parse(b"PRIVMSG #ircv3 :caf\xe9"),
        Err(ParseError::InvalidUtf8 {
            command: Some("PRIVMSG")
        })
    );
    assert_eq!(
        Message::parse(b"USER u s e :\xff"),
        Err(ParseError::InvalidUtf8 {
            command: Some("USER")
        })
    );
    assert_eq!(
        Message::parse(b"PRIV\xffMSG #a x"),
        Err(ParseError::InvalidUtf8 { command: None })
    );
    assert_eq!(
        Message::parse(b"\xff"),
        Err(ParseError::InvalidUtf8 { command: None })
    );
}

#[test]
fn parse_errors_are_answered_as_the_documents_say() {
    let reply = |line: &[u8]| {
        let mut out = Vec::new();
        Message::parse(line)
            .unwrap_err()
            .write_reply("loopchat", "alice", &mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        reply(format!("PRIVMSG #a :{}", "x".repeat(600)).as_bytes()),
        ":loopchat 417 alice :Input line was too long\r\n"
    );
    assert_eq!(
        reply(b"PRIVMSG #ircv3 :\xff"),
        ":loopchat FAIL PRIVMSG INVALID_UTF8 :Message rejected, your IRC software MUST use UTF-8 encoding on this network\r\n"
    );
    assert_eq!(
        reply(b"\xff"),
        ":loopchat FAIL * INVALID_UTF8 :Message rejected, your IRC software MUST use UTF-8 encoding on this network\r\n"
    );
    assert_eq!(
        reply(b"PRIV.MSG x"),
        ":loopchat 421 alice PRIV.MSG :Unknown command\r\n"
    );
    assert_eq!(reply(b""), "");
    assert_eq!(reply(b"PING a\0b"), "");
}

#[test]
fn nul_and_cr_inside_a_line_are_refused() {
    for line in [
        &b"PRIVMSG #a :a\0b"[..],
        b"PRIVMSG #a :a\rb",
        b"PRIVMSG #a :a\nb",
    ] {
        assert_eq!(Message::parse(line), Err(ParseError::ForbiddenByte));
    }
}

#[test]
fn writing_puts_a_colon_only_where_the_last_parameter_needs_one() {
    let line = |m: Message<'_>| m.to_line();
    assert_eq!(
        line(Message::new("PRIVMSG", &["#a", "hi"])),
        "PRIVMSG #a hi\r\n"
    );
    assert_eq!(
        line(Message::new("PRIVMSG", &["#a", "hi there"])),
        "PRIVMSG #a :hi there\r\n"
    );
    assert_eq!(
        line(Message::new("PRIVMSG", &["#a", ":-)"])),
        "PRIVMSG #a ::-)\r\n"
    );
    assert_eq!(
        line(Message::new("CAP", &["*", "LIST", ""])),
        "CAP * LIST :\r\n"
    );
    assert_eq!(line(Message::new("QUIT", &[])), "QUIT\r\n");
    let tagged = Message {
        tags: Some("time=2026-12-07T10:15:03.123Z;msgid=8412"),
        ..Message::new("PRIVMSG", &["#a", "hi there"]).from_source("alice!alice@loopchat")
    };
    assert_eq!(
        tagged.to_line(),
        "@time=2026-12-07T10:15:03.123Z;msgid=8412 :alice!alice@loopchat PRIVMSG #a :hi there\r\n"
    );
}

#[test]
fn writing_never_makes_two_lines() {
    let m = Message::new("PRIVMSG", &["#a", "one\r\nQUIT :two\0"]);
    assert_eq!(m.to_line(), "PRIVMSG #a :one  QUIT :two \r\n");
}

#[test]
fn writing_appends_to_a_reused_buffer() {
    let mut out = Vec::with_capacity(64);
    Message::new("PING", &["a"]).write(&mut out);
    Message::new("PING", &["b"]).write(&mut out);
    assert_eq!(out, b"PING a\r\nPING b\r\n");
    let capacity = out.capacity();
    out.clear();
    Message::new("PING", &["c"]).write(&mut out);
    assert_eq!(out.capacity(), capacity);
}

// ---- Numerics -----------------------------------------------------------

fn numeric_line(numeric: Numeric, client: &str, params: &[&str], text: Option<&str>) -> String {
    let mut out = Vec::new();
    numeric::write(&mut out, "loopchat", numeric, client, params, text);
    String::from_utf8(out).unwrap()
}

#[test]
fn error_numerics_have_the_documents_parameters_and_texts() {
    use Numeric::*;
    for (numeric, params, expected) in [
        (
            NoSuchNick,
            &["bob"][..],
            ":loopchat 401 alice bob :No such nick/channel",
        ),
        (
            NoSuchChannel,
            &["#nope"],
            ":loopchat 403 alice #nope :No such channel",
        ),
        (
            CannotSendToChan,
            &["#a"],
            ":loopchat 404 alice #a :Cannot send to channel",
        ),
        (NoTextToSend, &[], ":loopchat 412 alice :No text to send"),
        (
            InputTooLong,
            &[],
            ":loopchat 417 alice :Input line was too long",
        ),
        (
            UnknownCommand,
            &["FOO"],
            ":loopchat 421 alice FOO :Unknown command",
        ),
        (
            NoNicknameGiven,
            &[],
            ":loopchat 431 alice :No nickname given",
        ),
        (
            ErroneusNickname,
            &["1x"],
            ":loopchat 432 alice 1x :Erroneus nickname",
        ),
        (
            NicknameInUse,
            &["bob"],
            ":loopchat 433 alice bob :Nickname is already in use",
        ),
        (
            NotOnChannel,
            &["#a"],
            ":loopchat 442 alice #a :You're not on that channel",
        ),
        (
            NotRegistered,
            &[],
            ":loopchat 451 alice :You have not registered",
        ),
        (
            NeedMoreParams,
            &["USER"],
            ":loopchat 461 alice USER :Not enough parameters",
        ),
        (
            AlreadyRegistered,
            &[],
            ":loopchat 462 alice :You may not reregister",
        ),
        (
            PasswdMismatch,
            &[],
            ":loopchat 464 alice :Password incorrect",
        ),
        (
            ChanOPrivsNeeded,
            &["#a"],
            ":loopchat 482 alice #a :You're not channel operator",
        ),
        (
            NoOperHost,
            &[],
            ":loopchat 491 alice :No O-lines for your host",
        ),
        (
            YoureOper,
            &[],
            ":loopchat 381 alice :You are now an IRC operator",
        ),
    ] {
        assert_eq!(
            numeric_line(numeric, "alice", params, None),
            format!("{expected}\r\n"),
            "{}",
            numeric.name()
        );
    }
    assert_eq!(
        numeric_line(
            NoRecipient,
            "alice",
            &[],
            Some(&numeric::no_recipient_text("PRIVMSG"))
        ),
        ":loopchat 411 alice :No recipient given (PRIVMSG)\r\n"
    );
}

#[test]
fn channel_replies_have_the_documents_shapes() {
    use Numeric::*;
    for (line, expected) in [
        (
            numeric_line(NamReply, "alice", &["=", "#rust"], Some("@alice bob")),
            ":loopchat 353 alice = #rust :@alice bob",
        ),
        (
            numeric_line(EndOfNames, "alice", &["#rust"], None),
            ":loopchat 366 alice #rust :End of /NAMES list",
        ),
        (
            numeric_line(List, "alice", &["#rust", "2"], Some("Rust talk")),
            ":loopchat 322 alice #rust 2 :Rust talk",
        ),
        (
            numeric_line(ListEnd, "alice", &[], None),
            ":loopchat 323 alice :End of /LIST",
        ),
        (
            numeric_line(Topic, "alice", &["#rust"], Some("Rust talk")),
            ":loopchat 332 alice #rust :Rust talk",
        ),
        (
            numeric_line(NoTopic, "alice", &["#rust"], None),
            ":loopchat 331 alice #rust :No topic is set",
        ),
        (
            numeric_line(TopicWhoTime, "alice", &["#rust", "bob", "1796638503"], None),
            ":loopchat 333 alice #rust bob 1796638503",
        ),
        (
            numeric_line(
                WhoReply,
                "alice",
                &["#rust", "bob", "loopchat", "loopchat", "bob", "H@"],
                Some("0 Bob"),
            ),
            ":loopchat 352 alice #rust bob loopchat loopchat bob H@ :0 Bob",
        ),
        (
            numeric_line(EndOfWho, "alice", &["#rust"], None),
            ":loopchat 315 alice #rust :End of WHO list",
        ),
        (
            numeric_line(
                WhoisUser,
                "alice",
                &["bob", "bob", "loopchat", "*"],
                Some("Bob"),
            ),
            ":loopchat 311 alice bob bob loopchat * :Bob",
        ),
        (
            numeric_line(EndOfWhois, "alice", &["bob"], None),
            ":loopchat 318 alice bob :End of /WHOIS list",
        ),
        (
            numeric_line(ChannelModeIs, "alice", &["#rust", "+nt"], None),
            ":loopchat 324 alice #rust +nt",
        ),
        (
            numeric_line(BanList, "alice", &["#rust", "eve!*@*"], None),
            ":loopchat 367 alice #rust eve!*@*",
        ),
        (
            numeric_line(EndOfBanList, "alice", &["#rust"], None),
            ":loopchat 368 alice #rust :End of channel ban list",
        ),
    ] {
        assert_eq!(line, format!("{expected}\r\n"));
    }
}

#[test]
fn the_numerics_table_is_consistent() {
    let mut codes = std::collections::HashSet::new();
    for &numeric in Numeric::ALL {
        let code = numeric.code();
        assert!(code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()));
        assert!(codes.insert(code), "{code} twice");
        let name = numeric.name();
        let error = code.starts_with('4') || matches!(code, "501" | "502" | "904" | "907");
        assert_eq!(name.starts_with("ERR_"), error, "{name} {code}");
        assert!(error || name.starts_with("RPL_"), "{name}");
        if let Some(text) = numeric.text() {
            assert!(text.is_ascii() && !text.is_empty());
        }
    }
}

// ---- Registration -------------------------------------------------------

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
            Outcome::Registered {
                nick,
                user,
                realname,
            } => format!("REGISTERED {nick} {user} {realname}"),
            Outcome::Command => "COMMAND".to_owned(),
            outcome => {
                let outcome = outcome.clone();
                let mut out = Vec::new();
                let client = "*";
                outcome.write(
                    "loopchat",
                    client,
                    &Registration::new(),
                    rules.offered,
                    &mut out,
                );
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
            ":loopchat 462 * :You may not reregister\r\n",
            ":loopchat 462 * :You may not reregister\r\n",
            "COMMAND",
            "COMMAND",
            ":loopchat CAP * LS :cap-notify message-tags server-time echo-message multi-prefix\r\n",
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
        Outcome::Registered { .. }
    ));
    state.nick_lost();
    assert!(!state.is_registered() && state.nick().is_none());
    assert!(matches!(
        state.handle(&parse("NICK alice2"), &rules),
        Outcome::Registered { nick: "alice2", .. }
    ));
}

// ---- The welcome burst ----------------------------------------------------

fn info<'a>(motd: &'a [&'a str], chathistory: Option<usize>) -> ServerInfo<'a> {
    ServerInfo {
        server: "loopchat",
        network: "loopchat",
        version: "loopchat-0.1.0",
        created: "2026-12-07T10:00:00Z",
        chathistory,
        motd,
    }
}

#[test]
fn the_welcome_burst_is_001_to_005_lusers_and_motd_in_order() {
    let mut out = Vec::new();
    let counts = Lusers {
        users: 3,
        invisible: 1,
        operators: 0,
        unknown: 2,
        channels: 1,
    };
    burst::write_welcome(&mut out, &info(&["be nice"], Some(100)), "alice", counts);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    let codes: Vec<&str> = lines.iter().map(|l| parse(l).command).collect();
    assert_eq!(
        codes,
        [
            "001", "002", "003", "004", "005", "251", "252", "253", "254", "255", "375", "372",
            "376"
        ]
    );
    assert_eq!(
        lines[0],
        ":loopchat 001 alice :Welcome to the loopchat Network, alice"
    );
    assert_eq!(
        lines[1],
        ":loopchat 002 alice :Your host is loopchat, running version loopchat-0.1.0"
    );
    assert_eq!(
        lines[2],
        ":loopchat 003 alice :This server was created 2026-12-07T10:00:00Z"
    );
    assert_eq!(
        lines[3],
        ":loopchat 004 alice loopchat loopchat-0.1.0 i bnot bo"
    );
    assert_eq!(
        lines[4],
        ":loopchat 005 alice CASEMAPPING=ascii CHANTYPES=# PREFIX=(o)@ CHANMODES=b,,,nt \
         NICKLEN=32 CHANNELLEN=33 TOPICLEN=390 NETWORK=loopchat UTF8ONLY CHATHISTORY=100 \
         MSGREFTYPES=timestamp,msgid :are supported by this server"
    );
    assert_eq!(
        lines[5],
        ":loopchat 251 alice :There are 2 users and 1 invisible on 1 servers"
    );
    assert_eq!(lines[6], ":loopchat 252 alice 0 :operator(s) online");
    assert_eq!(lines[7], ":loopchat 253 alice 2 :unknown connection(s)");
    assert_eq!(lines[8], ":loopchat 254 alice 1 :channels formed");
    assert_eq!(
        lines[9],
        ":loopchat 255 alice :I have 3 clients and 0 servers"
    );
    assert_eq!(
        lines[10],
        ":loopchat 375 alice :- loopchat Message of the day - "
    );
    assert_eq!(lines[11], ":loopchat 372 alice :- be nice");
    assert_eq!(lines[12], ":loopchat 376 alice :End of /MOTD command.");
}

#[test]
fn no_motd_is_422_and_isupport_stays_within_the_limits() {
    let mut out = Vec::new();
    burst::write_motd(&mut out, &info(&[], None), "alice");
    assert_eq!(out, b":loopchat 422 alice :MOTD File is missing\r\n");
    let tokens = burst::isupport_tokens(&info(&[], None));
    assert!(!tokens.iter().any(|t| t.starts_with("CHATHISTORY")));
    let odd = ServerInfo {
        network: "my net=1\\é",
        ..info(&[], None)
    };
    let tokens = burst::isupport_tokens(&odd);
    assert!(tokens.contains(&"NETWORK=my\\x20net\\x3D1\\x5C".to_owned()));
    for token in &tokens {
        assert!(token.is_ascii() && is_middle(token), "{token}");
    }
    assert!(tokens.len() <= burst::ISUPPORT_PER_LINE);
}

// ---- Text: CTCP ACTION, formatting, splitting -----------------------------

#[test]
fn ctcp_action_is_me_and_back() {
    assert_eq!(ctcp_action("\x01ACTION waves\x01"), Some("waves"));
    assert_eq!(ctcp_action("\x01ACTION waves"), Some("waves"));
    assert_eq!(ctcp_action("\x01ACTION\x01"), Some(""));
    assert_eq!(ctcp_action("\x01ACTION  two\x01"), Some(" two"));
    assert_eq!(ctcp_action("\x01VERSION\x01"), None);
    assert_eq!(ctcp_action("\x01ACTIONS x\x01"), None);
    assert_eq!(ctcp_action("ACTION waves"), None);
    assert!(is_ctcp("\x01VERSION\x01") && !is_ctcp("hi"));
    let mut out = Vec::new();
    write_action("waves at #rust", &mut out);
    assert_eq!(out, b"\x01ACTION waves at #rust\x01");
    assert_eq!(
        ctcp_action(std::str::from_utf8(&out).unwrap()),
        Some("waves at #rust")
    );
}

#[test]
fn formatting_codes_are_stripped_with_their_colour_arguments() {
    for (text, plain) in [
        ("plain", "plain"),
        ("\x02bold\x02 and \x1ditalic\x1d", "bold and italic"),
        (
            "\x1funder\x1f\x1estrike\x1e\x11mono\x11\x16rev\x16\x0freset",
            "understrikemonorevreset",
        ),
        ("\x0304red", "red"),
        ("\x034red", "red"),
        ("\x0304,12red on blue", "red on blue"),
        ("\x03,12x", ",12x"),
        ("\x031234", "34"),
        ("\x0304,x", ",x"),
        ("\x03x", "x"),
        ("\x03", ""),
        ("\x04FF0000red", "red"),
        ("\x04FF0000,00FF00x", "x"),
        ("\x04FF00red", "FF00red"),
        ("é\x02ü\x03 12", "éü 12"),
        ("tab\tand\x07bell", "tab\tand\x07bell"),
    ] {
        assert_eq!(strip_formatting(text), plain, "{text:?}");
    }
    assert!(matches!(
        strip_formatting("plain"),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn long_lines_split_at_character_boundaries_within_the_room() {
    let text = "é".repeat(300);
    let pieces: Vec<&str> = split_at_chars(&text, 101).collect();
    assert!(pieces.iter().all(|p| p.len() <= 101 && p.len() == 100));
    assert_eq!(pieces.concat(), text);
    assert_eq!(
        split_at_chars("abc", 0).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(split_at_chars("", 10).count(), 0);
    let room = room_for_text("alice!alice@loopchat", "PRIVMSG", "#rust");
    let long = "x".repeat(1000);
    for piece in split_at_chars(&long, room) {
        let m = Message::new("PRIVMSG", &["#rust", piece]).from_source("alice!alice@loopchat");
        // Every piece has a space-free text here, so no `:`: one spare byte.
        assert!(m.to_line().len() <= MAX_MESSAGE_BYTES);
    }
    let words = "a ".repeat(400);
    for piece in split_at_chars(&words, room) {
        let m = Message::new("PRIVMSG", &["#rust", piece]).from_source("alice!alice@loopchat");
        assert!(
            m.to_line().len() <= MAX_MESSAGE_BYTES,
            "{}",
            m.to_line().len()
        );
    }
}

#[test]
fn a_long_line_reaches_irc_as_several_whole_messages() {
    let source = "carol!carol@loopchat";
    let text = format!("{}{}", "ab ".repeat(150), "é".repeat(200));
    let mut out = Vec::new();
    write_text_messages(&mut out, source, "PRIVMSG", "#rust", &text);
    let all = String::from_utf8(out).unwrap();
    let mut joined = String::new();
    let lines: Vec<&str> = all.split_terminator("\r\n").collect();
    assert!(lines.len() >= 2);
    for line in &lines {
        assert!(line.len() + 2 <= MAX_MESSAGE_BYTES, "{}", line.len());
        let m = parse(line);
        assert_eq!(
            (m.source, m.command, m.param(0)),
            (Some(source), "PRIVMSG", Some("#rust"))
        );
        joined.push_str(m.param(1).unwrap());
    }
    assert_eq!(joined, text);

    let mut out = Vec::new();
    write_action_messages(&mut out, source, "#rust", &"waves ".repeat(120));
    let all = String::from_utf8(out).unwrap();
    let mut joined = String::new();
    for line in all.split_terminator("\r\n") {
        assert!(line.len() + 2 <= MAX_MESSAGE_BYTES);
        joined.push_str(ctcp_action(parse(line).param(1).unwrap()).unwrap());
    }
    assert_eq!(joined, "waves ".repeat(120));
    let mut out = Vec::new();
    write_action_messages(&mut out, source, "#rust", "");
    assert_eq!(
        out,
        b":carol!carol@loopchat PRIVMSG #rust :\x01ACTION \x01\r\n"
    );
    let mut out = Vec::new();
    write_text_messages(&mut out, source, "PRIVMSG", "#rust", "");
    assert!(out.is_empty());
}

proptest! {
    /// Parse, write, parse again: the same message, whatever the line.
    #[test]
    fn any_message_round_trips(line in "(@[a-z=;]{0,8} )?(:[a-z!@.]{0,8} )?[A-Za-z0-9]{1,8}( {1,2}[^\r\n\0 :]{1,5}){0,17}( :[^\r\n\0]{0,20})?") {
        if let Ok(message) = Message::parse(line.as_bytes()) {
            let written = message.to_line();
            let again = written.strip_suffix("\r\n").unwrap();
            prop_assert_eq!(Message::parse(again.as_bytes()), Ok(message));
        }
    }

    /// Splitting gives back the text in pieces that fit.
    #[test]
    fn splitting_keeps_the_text(text in "\\PC{0,200}", max in 1usize..40) {
        let pieces: Vec<&str> = split_at_chars(&text, max).collect();
        prop_assert_eq!(pieces.concat(), text.clone());
        for piece in pieces {
            prop_assert!(piece.len() <= max || piece.chars().count() == 1);
        }
    }
}
