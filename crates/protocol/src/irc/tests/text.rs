//! CTCP ACTION, formatting codes, splitting.

use super::parse;
use crate::irc::text::{
    ctcp_action, is_ctcp, room_for_text, split_at_chars, strip_formatting, write_action,
    write_action_messages, write_text_messages,
};
use crate::irc::*;
use proptest::prelude::*;

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
