//! `draft/chathistory`: requests, refusals and the batch, against the
//! IRCv3 specification's grammar and examples.

use super::parse;
use crate::irc::caps::{Cap, CapSet};
use crate::irc::chathistory::{self, Batch, Fail, Line, MsgRef, Request, Selector};

fn request(line: &str) -> Result<Request<'_>, Fail<'_>> {
    // The lines outlive the parsed message in these tests.
    let line: &'static str = Box::leak(line.to_owned().into_boxed_str());
    chathistory::parse(&parse(line), 100)
}

fn fail_line(fail: Fail<'_>) -> String {
    let mut out = Vec::new();
    fail.write("loopchat", &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn every_subcommand_reads_with_msgid_and_timestamp_references() {
    let time = MsgRef::Time(1_546_612_406_123);
    let cases = [
        ("CHATHISTORY LATEST #rust * 50", Selector::Latest(None), 50),
        (
            "CHATHISTORY LATEST #rust msgid=42 10",
            Selector::Latest(Some(MsgRef::Id(42))),
            10,
        ),
        (
            "CHATHISTORY BEFORE #rust timestamp=2019-01-04T14:33:26.123Z 5",
            Selector::Before(time),
            5,
        ),
        (
            "chathistory after #rust msgid=7 500",
            Selector::After(MsgRef::Id(7)),
            100,
        ),
        (
            "CHATHISTORY AROUND #rust msgid=9 4",
            Selector::Around(MsgRef::Id(9)),
            4,
        ),
        (
            "CHATHISTORY BETWEEN #rust msgid=20 timestamp=2019-01-04T14:33:26.123Z 3",
            Selector::Between(MsgRef::Id(20), time),
            3,
        ),
    ];
    for (line, selector, limit) in cases {
        let request = request(line).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        assert_eq!(request.selector, selector, "{line}");
        assert_eq!(request.limit, limit, "{line}: limit lowered to the maximum");
        assert_eq!(request.target, "#rust");
    }
}

#[test]
fn bad_requests_get_the_specifications_fail_lines() {
    let cases = [
        (
            "CHATHISTORY",
            "FAIL CHATHISTORY NEED_MORE_PARAMS * :Missing parameters",
        ),
        (
            "CHATHISTORY BEFORE #rust 10",
            "FAIL CHATHISTORY NEED_MORE_PARAMS BEFORE :Missing parameters",
        ),
        (
            "CHATHISTORY BETWEEN #rust msgid=1 10",
            "FAIL CHATHISTORY NEED_MORE_PARAMS BETWEEN :Missing parameters",
        ),
        (
            "CHATHISTORY TARGETS timestamp=2019-01-04T14:33:26.123Z \
             timestamp=2019-01-05T14:33:26.123Z 10",
            "FAIL CHATHISTORY UNKNOWN_COMMAND TARGETS :Unknown command",
        ),
        (
            "CHATHISTORY BEFORE #rust msgid=abc 10",
            "FAIL CHATHISTORY INVALID_PARAMS BEFORE msgid=abc :Invalid parameters",
        ),
        (
            "CHATHISTORY AFTER #rust timestamp=yesterday 10",
            "FAIL CHATHISTORY INVALID_PARAMS AFTER timestamp=yesterday :Invalid parameters",
        ),
        (
            "CHATHISTORY AFTER #rust id=5 10",
            "FAIL CHATHISTORY INVALID_PARAMS AFTER id=5 :Invalid parameters",
        ),
        (
            "CHATHISTORY LATEST #rust * 0",
            "FAIL CHATHISTORY INVALID_PARAMS LATEST 0 :Invalid parameters",
        ),
        (
            "CHATHISTORY LATEST #rust * -3",
            "FAIL CHATHISTORY INVALID_PARAMS LATEST -3 :Invalid parameters",
        ),
        (
            "CHATHISTORY LATEST #rust * many",
            "FAIL CHATHISTORY INVALID_PARAMS LATEST many :Invalid parameters",
        ),
        (
            "CHATHISTORY LATEST #rust * +3",
            "FAIL CHATHISTORY INVALID_PARAMS LATEST +3 :Invalid parameters",
        ),
    ];
    for (line, want) in cases {
        let fail = request(line).expect_err(line);
        assert_eq!(fail_line(fail), format!(":loopchat {want}\r\n"), "{line}");
    }
    assert_eq!(
        fail_line(Fail::InvalidTarget("LATEST", "#nope")),
        ":loopchat FAIL CHATHISTORY INVALID_TARGET LATEST #nope :Messages could not be retrieved\r\n"
    );
    assert_eq!(
        fail_line(Fail::MessageError("BEFORE", "#rust")),
        ":loopchat FAIL CHATHISTORY MESSAGE_ERROR BEFORE #rust :Messages could not be retrieved\r\n"
    );
}

#[test]
fn delivered_lines_read_back_as_messages_and_actions() {
    let said = Line::from_delivered(3, 10, "alice: hi: there").unwrap();
    assert_eq!(
        (said.nick, said.text, said.action),
        ("alice", "hi: there", false)
    );
    let action = Line::from_delivered(4, 11, "* bob waves at you").unwrap();
    assert_eq!(
        (action.nick, action.text, action.action),
        ("bob", "waves at you", true)
    );
    assert_eq!(Line::from_delivered(5, 12, "alice: ").unwrap().text, "");
    assert!(Line::from_delivered(6, 13, "no separator").is_none());
    assert!(Line::from_delivered(7, 14, ": no nick").is_none());
}

fn lines() -> Vec<Line<'static>> {
    vec![
        Line::from_delivered(41, 1_546_612_406_123, "alice: hello").unwrap(),
        Line::from_delivered(42, 1_546_612_407_000, "* bob waves").unwrap(),
    ]
}

#[test]
fn the_reply_is_a_chathistory_batch_with_time_and_msgid_tags() {
    let caps = CapSet::of(&[Cap::Batch, Cap::ServerTime, Cap::MessageTags]);
    let batch = Batch {
        server: "loopchat",
        id: "h1",
        target: "#rust",
        caps,
    };
    let mut out = Vec::new();
    chathistory::write_batch(&batch, lines(), &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        ":loopchat BATCH +h1 chathistory #rust\r\n\
         @batch=h1;time=2019-01-04T14:33:26.123Z;msgid=41 :alice!alice@loopchat PRIVMSG #rust :hello\r\n\
         @batch=h1;time=2019-01-04T14:33:27.000Z;msgid=42 :bob!bob@loopchat PRIVMSG #rust :\x01ACTION waves\x01\r\n\
         :loopchat BATCH -h1\r\n"
    );
    let mut empty = Vec::new();
    chathistory::write_batch(&batch, Vec::new(), &mut empty);
    assert_eq!(
        String::from_utf8(empty).unwrap(),
        ":loopchat BATCH +h1 chathistory #rust\r\n:loopchat BATCH -h1\r\n",
        "nothing to show is an empty batch"
    );
}

#[test]
fn without_the_caps_the_lines_come_bare_or_with_only_what_was_asked() {
    let mut out = Vec::new();
    let bare = Batch {
        server: "loopchat",
        id: "h2",
        target: "#rust",
        caps: CapSet::EMPTY,
    };
    chathistory::write_batch(&bare, lines(), &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        ":alice!alice@loopchat PRIVMSG #rust :hello\r\n\
         :bob!bob@loopchat PRIVMSG #rust :\x01ACTION waves\x01\r\n"
    );
    let mut out = Vec::new();
    let time_only = Batch {
        caps: CapSet::of(&[Cap::ServerTime]),
        ..bare
    };
    chathistory::write_batch(&time_only, lines().into_iter().take(1), &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "@time=2019-01-04T14:33:26.123Z :alice!alice@loopchat PRIVMSG #rust :hello\r\n"
    );
}

#[test]
fn a_long_history_line_is_split_and_every_piece_keeps_its_tags() {
    let text = "é".repeat(400);
    let delivered = format!("alice: {text}");
    let line = Line::from_delivered(9, 0, &delivered).unwrap();
    let batch = Batch {
        server: "loopchat",
        id: "h3",
        target: "#rust",
        caps: CapSet::of(&[Cap::Batch, Cap::MessageTags]),
    };
    let mut out = Vec::new();
    chathistory::write_batch(&batch, [line], &mut out);
    let out = String::from_utf8(out).unwrap();
    let messages: Vec<&str> = out.split_terminator("\r\n").collect();
    assert_eq!(messages.len(), 4, "open, two pieces, close");
    let mut joined = String::new();
    for message in &messages[1..3] {
        let parsed = parse(message);
        assert_eq!(parsed.tags, Some("batch=h3;msgid=9"));
        let untagged = &message[message.find(' ').unwrap() + 1..];
        assert!(untagged.len() + 2 <= 512, "{} bytes", untagged.len() + 2);
        joined.push_str(parsed.param(1).unwrap());
    }
    assert_eq!(joined, text);
}
