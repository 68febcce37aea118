//! The check of the IRC codec (`protocol::irc`): messages a client could
//! send, parsed, written and parsed again; and the text helpers the
//! connection will run on every relayed message.

use crate::protocol::irc::chathistory;
use crate::protocol::irc::mask;
use crate::protocol::irc::message::{is_middle, MAX_PARAMS};
use crate::protocol::irc::sasl::{Sasl, Step};
use crate::protocol::irc::text::{
    ctcp_action, split_at_chars, strip_formatting, write_action_messages, write_text_messages,
};
use crate::protocol::irc::{Cap, CapSet};
use crate::protocol::irc::{Message, ParseError, MAX_MESSAGE_BYTES, MAX_TAGS_BYTES};

/// Every line of the input (split at `\n`, one `\r` before it dropped, as
/// the framer does; bytes, not text, so non-UTF-8 reaches the parser):
///
/// - a parsed message has a command of letters and digits, at most 15
///   parameters, every parameter but the last a valid middle one (and the
///   last too unless it came after a `:`), no NUL, CR or LF anywhere, and
///   borrows from the line; a line over the limits never parses;
/// - written, it is one line ending in its only CR LF, and parses back to
///   the same message (the one exception: a 510-byte message whose
///   fifteenth parameter took the rest of the line, spaces included, needs
///   the `:` it lacked and so one byte over the limit: `TooLong`);
/// - a line that is not UTF-8 is refused as such, with a command only when
///   one was read before the bad byte;
/// - the text helpers on the line (lossy): formatting stripped leaves no
///   code and keeps every other character in order; a CTCP action is a
///   suffix of its text; split pieces fit and join back to the text; the
///   text written as `PRIVMSG`s (plain, and as actions) is messages of at
///   most 512 bytes whose texts join back to it (NUL and CR as spaces);
/// - a mask (the line's first 16 characters up to a space) matches the
///   next 16 characters exactly when a dynamic-programming model says so.
/// - read as `CHATHISTORY`, a request has a limit within the maximum and
///   its batch (or its `FAIL`) is messages that parse; read as
///   `AUTHENTICATE` (three times), SASL never panics and only verifies an
///   account with a password.
pub fn check_irc_message(data: &[u8]) {
    let max = usize::from(data.first().copied().unwrap_or(0));
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        check_line(line);
        check_text(&String::from_utf8_lossy(line), max);
    }
}

fn check_line(line: &[u8]) {
    let message = match Message::parse(line) {
        Ok(message) => message,
        Err(ParseError::InvalidUtf8 { command }) => {
            assert!(std::str::from_utf8(line).is_err(), "{line:?}");
            if let Some(command) = command {
                assert!(
                    inside(command, line) && command.bytes().all(|b| b.is_ascii_alphanumeric())
                );
            }
            return;
        }
        Err(ParseError::BadCommand(command)) => {
            assert!(inside(command, line) && !command.is_empty() && !command.contains(' '));
            return;
        }
        Err(_) => return,
    };
    assert!(std::str::from_utf8(line).is_ok());
    assert!(!line.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')));
    // The limits: at most 8191 bytes of tags (with `@` and spaces), then
    // at most 510.
    let text = std::str::from_utf8(line).unwrap_or_default();
    let body_start = match message.tags {
        Some(tags) => {
            let after = &text[tags.as_ptr() as usize - text.as_ptr() as usize + tags.len()..];
            let start = text.len() - after.trim_start_matches(' ').len();
            assert!(start <= MAX_TAGS_BYTES, "{start} bytes of tags");
            start
        }
        None => 0,
    };
    let body = text[body_start..].trim_start_matches(' ');
    assert!(body.len() <= MAX_MESSAGE_BYTES - 2, "{} bytes", body.len());
    assert!(!message.command.is_empty());
    assert!(message.command.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(inside(message.command, line));
    let params = message.params.as_slice();
    assert!(params.len() <= MAX_PARAMS);
    for (i, param) in params.iter().enumerate() {
        assert!(inside(param, line), "{param:?}");
        let last = i + 1 == params.len();
        if !last || !message.trailing {
            assert!(is_middle(param), "{param:?} in {text:?}");
        }
    }
    for part in [message.tags, message.source].into_iter().flatten() {
        assert!(inside(part, line) && !part.contains(' '));
    }

    let written = message.to_line();
    let one = written.strip_suffix("\r\n").expect("ends in CR LF");
    assert!(!one.contains(['\r', '\n', '\0']), "{written:?}");
    match Message::parse(one.as_bytes()) {
        Ok(again) => assert_eq!(again, message, "{text:?} written as {written:?}"),
        Err(ParseError::TooLong) => {
            assert_eq!(params.len(), MAX_PARAMS, "{text:?}");
            assert!(body.len() >= MAX_MESSAGE_BYTES - 3, "{text:?}");
        }
        Err(error) => panic!("{text:?} written as {written:?}: {error}"),
    }
    check_ircv3(&message);
}

/// IRCv3 on any message, as if it were `CHATHISTORY` or `AUTHENTICATE`:
/// a request read has a limit from 1 to the maximum and answers with lines
/// that parse; a refusal's `FAIL` parses; SASL never panics, and what it
/// verifies has an account and a password.
fn check_ircv3(message: &Message<'_>) {
    let as_history = Message {
        command: "CHATHISTORY",
        ..*message
    };
    let mut out = Vec::new();
    match chathistory::parse(&as_history, 50) {
        Ok(request) => {
            assert!((1..=50).contains(&request.limit));
            let batch = chathistory::Batch {
                server: "irc.test",
                id: "h1",
                target: request.target,
                caps: CapSet::of(&Cap::ALL),
            };
            let line = chathistory::Line {
                id: 1,
                time_ms: 0,
                nick: "nick",
                text: request.subcommand,
                action: false,
            };
            chathistory::write_batch(&batch, [line], &mut out);
        }
        Err(fail) => fail.write("irc.test", &mut out),
    }
    for line in out.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r\n").expect("CR LF");
        assert!(Message::parse(line).is_ok(), "{line:?}");
    }
    let mut sasl = Sasl::default();
    for _ in 0..3 {
        if let Step::Verify(credentials) = sasl.handle(message.param(0)) {
            assert!(!credentials.account.is_empty() && !credentials.password.is_empty());
        }
    }
}

/// Whether `part` lies within `line`'s bytes.
fn inside(part: &str, line: &[u8]) -> bool {
    let range = line.as_ptr_range();
    let start = part.as_ptr();
    range.start <= start && part.as_bytes().as_ptr_range().end <= range.end
}

fn check_text(text: &str, max: usize) {
    let plain = strip_formatting(text);
    assert!(!plain
        .chars()
        .any(crate::protocol::irc::text::is_format_code));
    // What is left is a subsequence of the text's characters.
    let mut chars = text.chars();
    for c in plain.chars() {
        assert!(chars.any(|t| t == c), "{text:?} stripped as {plain:?}");
    }
    if let Some(action) = ctcp_action(text) {
        assert!(text.contains(action));
    }
    check_relayed(text);
    check_mask(text);
    let pieces: Vec<&str> = split_at_chars(text, max).collect();
    assert_eq!(pieces.concat(), text);
    for piece in pieces {
        assert!(!piece.is_empty());
        assert!(
            piece.len() <= max || piece.chars().count() == 1,
            "{piece:?} over {max}"
        );
    }
}

/// The text as relayed `PRIVMSG`s and actions: each message fits, and the
/// pieces join back to the text.
fn check_relayed(text: &str) {
    let source = "carol!carol@loopchat";
    let expected = text.replace(['\0', '\r', '\n'], " ");
    let mut out = Vec::new();
    write_text_messages(&mut out, source, "PRIVMSG", "#rust", text);
    let mut joined = String::new();
    for_each_message(&out, |message| {
        joined.push_str(message.param(1).unwrap_or(""))
    });
    assert_eq!(joined, expected);
    out.clear();
    write_action_messages(&mut out, source, "#rust", text);
    joined.clear();
    for_each_message(&out, |message| {
        let action = ctcp_action(message.param(1).unwrap_or("")).expect("an action");
        joined.push_str(action);
    });
    assert_eq!(joined, expected);
}

/// Every CR LF-terminated message in `out`, parsed; each fits 512 bytes.
fn for_each_message(out: &[u8], mut each: impl FnMut(Message<'_>)) {
    let text = std::str::from_utf8(out).expect("UTF-8 out");
    let body = text.strip_suffix("\r\n").unwrap_or(text);
    if body.is_empty() {
        return;
    }
    for line in body.split("\r\n") {
        assert!(
            line.len() + 2 <= MAX_MESSAGE_BYTES,
            "{} bytes",
            line.len() + 2
        );
        each(Message::parse(line.as_bytes()).expect("a written message parses"));
    }
}

/// `mask::matches` against a table over (mask token, text character).
fn check_mask(text: &str) {
    let Some((mask, subject)) = text.split_once(' ') else {
        return;
    };
    let mask: String = mask.chars().take(16).collect();
    let subject: String = subject.chars().take(16).collect();
    // The mask as tokens: Some(c) a literal, None for `?`, and `*` apart.
    let mut tokens: Vec<Option<Option<char>>> = Vec::new();
    let mut chars = mask.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => None,
            '?' => Some(None),
            '\\' => Some(Some(chars.next().unwrap_or('\\'))),
            c => Some(Some(c)),
        });
    }
    let subject: Vec<char> = subject.chars().collect();
    // fits[i][j]: tokens[i..] match subject[j..].
    let (n, m) = (tokens.len(), subject.len());
    let mut fits = vec![vec![false; m + 1]; n + 1];
    fits[n][m] = true;
    for i in (0..n).rev() {
        for j in (0..=m).rev() {
            fits[i][j] = match tokens[i] {
                None => fits[i + 1][j] || (j < m && fits[i][j + 1]),
                Some(None) => j < m && fits[i + 1][j + 1],
                Some(Some(c)) => j < m && subject[j].eq_ignore_ascii_case(&c) && fits[i + 1][j + 1],
            };
        }
    }
    let subject: String = subject.into_iter().collect();
    assert_eq!(
        mask::matches(&mask, &subject),
        fits[0][0],
        "{mask:?} against {subject:?}"
    );
}
