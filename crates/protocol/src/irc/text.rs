//! Message text between IRC and the line protocol: CTCP `ACTION` (IRC's
//! `/me`) and `:me`, IRC formatting codes, and splitting a long line into
//! messages that fit IRC's 512 bytes.

use super::message::Message;
use std::borrow::Cow;

/// The CTCP delimiter.
const CTCP: char = '\x01';

/// The action of a `PRIVMSG` text that is a CTCP `ACTION`
/// (`\x01ACTION waves\x01` is `waves`): the text of a `:me`. The closing
/// `\x01` may be missing (the Modern CTCP document allows it); an `ACTION`
/// without text is the empty action. `None` for any other text.
pub fn ctcp_action(text: &str) -> Option<&str> {
    let body = text.strip_prefix(CTCP)?;
    let body = body.strip_suffix(CTCP).unwrap_or(body);
    let rest = body.strip_prefix("ACTION")?;
    if rest.is_empty() {
        return Some("");
    }
    rest.strip_prefix(' ')
}

/// Whether a `PRIVMSG`/`NOTICE` text is a CTCP message (of any kind).
pub fn is_ctcp(text: &str) -> bool {
    text.starts_with(CTCP)
}

/// Appends the `PRIVMSG` text that carries the action `text` (a `:me`):
/// `\x01ACTION text\x01`.
pub fn write_action(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\x01ACTION ");
    out.extend_from_slice(text.as_bytes());
    out.push(0x01);
}

/// Whether `c` starts or is an IRC formatting code: bold `\x02`, colour
/// `\x03`, hex colour `\x04`, reset `\x0f`, monospace `\x11`, reverse
/// `\x16`, italics `\x1d`, strikethrough `\x1e`, underline `\x1f`.
pub fn is_format_code(c: char) -> bool {
    matches!(
        c,
        '\x02' | '\x03' | '\x04' | '\x0f' | '\x11' | '\x16' | '\x1d' | '\x1e' | '\x1f'
    )
}

/// `text` without IRC formatting codes, as line and WebSocket clients get
/// it: the codes above and the colours' arguments (`\x03` with up to two
/// digits, then `,` and up to two digits; `\x04` with six hex digits, then
/// `,` and six more) are removed, everything else is kept (other control
/// characters are the line protocol's business: `sanitize`). Borrows when
/// there is nothing to remove.
pub fn strip_formatting(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_format_code) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        at += 1;
        match b {
            0x03 => at = skip_colour(bytes, at, 2, |b| b.is_ascii_digit()),
            0x04 => at = skip_colour(bytes, at, 6, |b| b.is_ascii_hexdigit()),
            0x02 | 0x0f | 0x11 | 0x16 | 0x1d | 0x1e | 0x1f => {}
            _ => {
                // Copy the rest of this character (UTF-8 continuation
                // bytes are never codes).
                let start = at - 1;
                while at < bytes.len() && (bytes[at] & 0xc0) == 0x80 {
                    at += 1;
                }
                out.push_str(&text[start..at]);
            }
        }
    }
    Cow::Owned(out)
}

/// After a colour code at `at`: skips the foreground (up to `max` bytes
/// matching `digit`; exactly `max` for hex colours), then `,` and the
/// background when one follows.
fn skip_colour(bytes: &[u8], at: usize, max: usize, digit: impl Fn(u8) -> bool) -> usize {
    let exact = max == 6;
    let colour = |from: usize| -> usize {
        let n = bytes[from.min(bytes.len())..]
            .iter()
            .take(max)
            .take_while(|&&b| digit(b))
            .count();
        if exact && n != max {
            0
        } else {
            n
        }
    };
    let fg = colour(at);
    if fg == 0 {
        return at;
    }
    let at = at + fg;
    if bytes.get(at) == Some(&b',') {
        let bg = colour(at + 1);
        if bg > 0 {
            return at + 1 + bg;
        }
    }
    at
}

/// Splits `text` into pieces of at most `max` bytes, each ending at a
/// character boundary, so that each fits a message whose other bytes take
/// the rest of 512 (`max` = 510 minus the bytes of `:source PRIVMSG
/// #room :`). The pieces joined are `text`. A `max` smaller than a
/// character still makes progress: that character alone is a piece.
pub fn split_at_chars(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = max.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, after) = rest.split_at(end);
        rest = after;
        Some(piece)
    })
}

/// The bytes left for a message's last parameter when the message is
/// `:SOURCE COMMAND TARGET :` (the usual shape of a relayed `PRIVMSG`):
/// what [`split_at_chars`] is given.
pub fn room_for_text(source: &str, command: &str, target: &str) -> usize {
    // ':' source ' ' command ' ' target ' ' ':' ... CR LF
    let used = 1 + source.len() + 1 + command.len() + 1 + target.len() + 2;
    (super::MAX_MESSAGE_BYTES - 2).saturating_sub(used)
}

/// Appends `text` from `source` to `target` as `COMMAND` messages
/// (`PRIVMSG` or `NOTICE`), as many as it takes for each to fit
/// [`super::MAX_MESSAGE_BYTES`], split at character boundaries: how a
/// line client's long line reaches IRC clients. Nothing for an empty text.
pub fn write_text_messages(
    out: &mut Vec<u8>,
    source: &str,
    command: &str,
    target: &str,
    text: &str,
) {
    let room = room_for_text(source, command, target);
    for piece in split_at_chars(text, room) {
        Message::new(command, &[target, piece])
            .from_source(source)
            .with_trailing()
            .write(out);
    }
}

/// Appends the action `text` (a `:me`) from `source` to `target` as CTCP
/// `ACTION` `PRIVMSG`s, split like [`write_text_messages`], each piece in
/// its own `\x01ACTION …\x01` so every message is a whole action.
pub fn write_action_messages(out: &mut Vec<u8>, source: &str, target: &str, text: &str) {
    // "\x01ACTION " and the closing "\x01".
    let room = room_for_text(source, "PRIVMSG", target).saturating_sub(9);
    let mut action = Vec::with_capacity(text.len().min(room) + 9);
    let mut pieces = split_at_chars(text, room).peekable();
    if pieces.peek().is_none() {
        write_action("", &mut action);
        write_text_message(out, source, target, &action);
        return;
    }
    for piece in pieces {
        action.clear();
        write_action(piece, &mut action);
        write_text_message(out, source, target, &action);
    }
}

/// One `PRIVMSG` of `text` (UTF-8 bytes built here).
fn write_text_message(out: &mut Vec<u8>, source: &str, target: &str, text: &[u8]) {
    let text = std::str::from_utf8(text).unwrap_or_default();
    Message::new("PRIVMSG", &[target, text])
        .from_source(source)
        .with_trailing()
        .write(out);
}
