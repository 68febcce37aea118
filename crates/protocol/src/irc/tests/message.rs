//! Message format: parsing, limits, UTF8ONLY, writing.

use super::super::message::MAX_PARAMS;
use super::{params, parse};
use crate::irc::*;
use proptest::prelude::*;

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

}
