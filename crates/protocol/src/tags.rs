//! Tags (protocol 1.2, section "Tags"): the `@KEY=VALUE;KEY=VALUE ` prefix
//! a line may carry, in both directions. Pure functions over `&str` and the
//! caller's buffers; no I/O, no state.
//!
//! - **Client lines.** [`parse_client_line`] splits a line's tag prefix from
//!   the line and keeps its `label` (the only client tag that counts), or
//!   says why the prefix is not a valid one ([`TagError`], every kind
//!   answered with the one line [`BAD_TAGS_LINE`]). The caller calls it only
//!   for a client with tags on: with tags off a line starting with `@` is
//!   ordinary chat.
//! - **Server lines.** [`ServerTags::write_prefix`] appends a prefix
//!   (`time`, `room`, `id`, `to`, `label`, in that order) to a buffer the
//!   caller reuses, so a fan-out renders its tagged encoding once and every
//!   tagged recipient gets a copy of the same bytes. `label` comes last so
//!   that [`insert_label`] can turn that shared encoding into the sender's
//!   labelled echo with two copies, without rendering again.
//! - **Reading server lines** (the example client, tests):
//!   [`parse_server_line`] gives the known tags back, values unescaped.
//! - **Values** are escaped as in IRCv3 message tags ([`escape_into`],
//!   [`unescape`]): `;` as `\:`, space as `\s`, `\` as `\\`, CR as `\r`, LF
//!   as `\n`; unescaping drops the `\` of an unknown escape (`\b` is `b`)
//!   and a lone `\` at the end.
//! - **Time** (`time` tag): UTC as `YYYY-MM-DDTHH:MM:SS.mmmZ`
//!   ([`write_time_ms`], [`parse_time_ms`]).
//!
//! What makes a valid prefix (protocol 1.2 and IRCv3 message-tags): `@`,
//! one or more `KEY=VALUE` pairs separated by `;`, one space, then a
//! non-empty line. A KEY is any non-empty text without `=`, `;` or space
//! (IRCv3: key names are opaque, never rejected for their spelling); a VALUE
//! may be empty. When a key repeats, the last one counts (IRCv3). `label`'s
//! value, unescaped, must be 1 to [`MAX_LABEL_BYTES`] of `A-Z a-z 0-9 _ -`.
//! A pair without `=` is refused although IRCv3 allows it: with tags on,
//! `@bob see you` is then `! bad tags` rather than silently the chat line
//! `see you`.

use crate::time::{civil_from_days, days_from_civil, days_in_month};
use std::borrow::Cow;
use std::fmt;

/// The longest `label` value a client may send, in bytes.
pub const MAX_LABEL_BYTES: usize = 64;

/// The protocol's answer to a line whose tag prefix is not valid, whatever
/// is wrong with it (every [`TagError`]).
pub const BAD_TAGS_LINE: &str = "! bad tags";

/// The key of the client tag that counts.
pub const LABEL: &str = "label";

/// Why a line starting with `@` has no valid tag prefix. The client is
/// told [`BAD_TAGS_LINE`] for each; the kinds are for tests and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagError {
    /// No space after the tags, so no line follows them (`@label=1`).
    NoSpace,
    /// Nothing after the prefix's space (`@label=1 `).
    NoLine,
    /// An empty tag: nothing between `@` and the space, two `;` in a row, or
    /// a `;` before the space (`@ hi`, `@a=1;;b=2 hi`, `@a=1; hi`).
    EmptyTag,
    /// A tag without `=` (`@bob hi`).
    NoValue,
    /// A tag whose key is empty (`@=1 hi`).
    EmptyKey,
    /// A `label` that is empty or has a character other than
    /// `A-Z a-z 0-9 _ -` once unescaped.
    BadLabel,
    /// A `label` longer than [`MAX_LABEL_BYTES`] once unescaped.
    LabelTooLong,
}

impl TagError {
    /// What is wrong, in a few words, for logs and test messages.
    pub fn reason(self) -> &'static str {
        match self {
            TagError::NoSpace => "no space after the tags",
            TagError::NoLine => "no line after the tags",
            TagError::EmptyTag => "an empty tag",
            TagError::NoValue => "a tag without =",
            TagError::EmptyKey => "a tag with an empty key",
            TagError::BadLabel => "a label outside 1-64 of A-Z a-z 0-9 _ -",
            TagError::LabelTooLong => "a label over 64 bytes",
        }
    }
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for TagError {}

/// A valid `label` value: 1 to [`MAX_LABEL_BYTES`] of `A-Z a-z 0-9 _ -`,
/// held inline (no allocation), so the server can keep the label of the line
/// it is answering for as long as the answer takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Label {
    len: u8,
    bytes: [u8; MAX_LABEL_BYTES],
}

impl Label {
    /// `value` as a label, if it is a valid one (already unescaped).
    pub fn new(value: &str) -> Result<Label, TagError> {
        let bytes = value.as_bytes();
        if bytes.is_empty() || !bytes.iter().all(|&b| is_label_byte(b)) {
            return Err(TagError::BadLabel);
        }
        if bytes.len() > MAX_LABEL_BYTES {
            return Err(TagError::LabelTooLong);
        }
        let mut label = Label {
            len: bytes.len() as u8,
            bytes: [0; MAX_LABEL_BYTES],
        };
        label.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(label)
    }

    /// The label as sent (it never needs escaping).
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Label({:?})", self.as_str())
    }
}

/// Whether `b` may be part of a label.
fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A client line with its tag prefix taken off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLine<'a> {
    /// The `label` it carried, if any: every line sent in direct answer to
    /// this one carries it back.
    pub label: Option<Label>,
    /// The line as usual (a chat line or a command), after the prefix.
    pub line: &'a str,
}

/// Splits the tag prefix off a client line (of a client with tags on). A
/// line not starting with `@` comes back whole, without a label.
///
/// ```
/// # use loopchat_protocol::tags::{parse_client_line, TagError};
/// let labelled = parse_client_line("@label=7 @all lunch?").unwrap();
/// assert_eq!(labelled.label.unwrap().as_str(), "7");
/// assert_eq!(labelled.line, "@all lunch?");
/// assert_eq!(parse_client_line("@all lunch?"), Err(TagError::NoValue));
/// ```
pub fn parse_client_line(line: &str) -> Result<ClientLine<'_>, TagError> {
    let Some((tags, rest)) = split_prefix(line)? else {
        return Ok(ClientLine { label: None, line });
    };
    let mut label = None;
    for_each_tag(tags, |key, value| {
        if key == LABEL {
            label = Some(value);
        }
    })?;
    let label = match label {
        Some(value) => Some(Label::new(&unescape(value))?),
        None => None,
    };
    Ok(ClientLine { label, line: rest })
}

/// `Ok(None)` when `line` has no tag prefix, else its tags (without the `@`)
/// and the line after the prefix's space.
fn split_prefix(line: &str) -> Result<Option<(&str, &str)>, TagError> {
    let Some(after_at) = line.strip_prefix('@') else {
        return Ok(None);
    };
    let (tags, rest) = after_at.split_once(' ').ok_or(TagError::NoSpace)?;
    if rest.is_empty() {
        return Err(TagError::NoLine);
    }
    Ok(Some((tags, rest)))
}

/// Checks every `KEY=VALUE` pair of `tags` and hands each to `tag`, in
/// order, the value still escaped.
fn for_each_tag<'a>(tags: &'a str, mut tag: impl FnMut(&'a str, &'a str)) -> Result<(), TagError> {
    for pair in tags.split(';') {
        if pair.is_empty() {
            return Err(TagError::EmptyTag);
        }
        let (key, value) = pair.split_once('=').ok_or(TagError::NoValue)?;
        if key.is_empty() {
            return Err(TagError::EmptyKey);
        }
        tag(key, value);
    }
    Ok(())
}

/// Appends `value` escaped as an IRCv3 tag value: `;` `\:`, space `\s`,
/// `\` `\\`, CR `\r`, LF `\n`. The result never contains `;`, space, CR or
/// LF. Copies runs of plain bytes at once; nicks, room names, labels, ids
/// and times have nothing to escape.
pub fn escape_into(value: &str, out: &mut Vec<u8>) {
    let bytes = value.as_bytes();
    let mut plain = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b';' => b"\\:",
            b' ' => b"\\s",
            b'\\' => b"\\\\",
            b'\r' => b"\\r",
            b'\n' => b"\\n",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..at]);
        out.extend_from_slice(escaped);
        plain = at + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
}

/// `value` escaped as an IRCv3 tag value (see [`escape_into`]); borrows
/// when there is nothing to escape.
pub fn escape(value: &str) -> Cow<'_, str> {
    if !value.contains([';', ' ', '\\', '\r', '\n']) {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len() + 8);
    escape_into(value, &mut out);
    // Escaping replaces ASCII bytes with ASCII bytes: still UTF-8.
    Cow::Owned(String::from_utf8(out).unwrap_or_default())
}

/// An IRCv3 tag value unescaped: `\:` `;`, `\s` space, `\\` `\`, `\r` CR,
/// `\n` LF; any other escaped character stands for itself (`\b` is `b`) and
/// a lone `\` at the end is dropped. Borrows when there is no `\`.
pub fn unescape(value: &str) -> Cow<'_, str> {
    if !value.contains('\\') {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Cow::Owned(out)
}

/// The tags of one line the server sends to a client with tags on. Values
/// borrow from the chat state; [`ServerTags::write_prefix`] renders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerTags<'a> {
    /// `time`: when the server produced the line, or accepted the chat line
    /// it carries, in milliseconds since the Unix epoch. On every line.
    pub time_ms: i64,
    /// `room`: the room a room line (or a `[history …]` line) belongs to,
    /// as currently spelled, with its `#`.
    pub room: Option<&'a str>,
    /// `id`: a chat, `:me` or history line's number in its room.
    pub id: Option<u64>,
    /// `to`: the recipient's nick, on the echo of a private message.
    pub to: Option<&'a str>,
    /// `label`: on every line sent in direct answer to a labelled line.
    pub label: Option<&'a str>,
}

impl<'a> ServerTags<'a> {
    /// Only `time`: the tags of a line that is not a room line and answers
    /// no label.
    pub fn at(time_ms: i64) -> Self {
        ServerTags {
            time_ms,
            room: None,
            id: None,
            to: None,
            label: None,
        }
    }

    /// Appends the prefix, `@time=…;room=…;id=…;to=…;label=… ` (the tags
    /// that are set, in this order, values escaped, ending in one space).
    /// Allocates nothing once `out` has grown to a line's size.
    ///
    /// ```
    /// # use loopchat_protocol::tags::ServerTags;
    /// let mut line = Vec::new();
    /// ServerTags { room: Some("#rust"), id: Some(8412), ..ServerTags::at(1_796_638_503_123) }
    ///     .write_prefix(&mut line);
    /// line.extend_from_slice(b"alice: hello\n");
    /// assert_eq!(line, b"@time=2026-12-07T10:15:03.123Z;room=#rust;id=8412 alice: hello\n");
    /// ```
    pub fn write_prefix(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"@time=");
        write_time_ms(self.time_ms, out);
        if let Some(room) = self.room {
            out.extend_from_slice(b";room=");
            escape_into(room, out);
        }
        if let Some(id) = self.id {
            out.extend_from_slice(b";id=");
            write_decimal(id, out);
        }
        if let Some(to) = self.to {
            out.extend_from_slice(b";to=");
            escape_into(to, out);
        }
        if let Some(label) = self.label {
            out.extend_from_slice(b";label=");
            escape_into(label, out);
        }
        out.push(b' ');
    }
}

/// Appends `tagged` (a line rendered with [`ServerTags::write_prefix`] and
/// no label, as a fan-out shares it) with `label=LABEL` added as its last
/// tag: the sender's labelled echo, from the shared bytes with two copies.
/// A line without a tag prefix gets one holding only the label.
pub fn insert_label(tagged: &[u8], label: &str, out: &mut Vec<u8>) {
    let end_of_tags = match tagged.first() {
        Some(b'@') => tagged.iter().position(|&b| b == b' '),
        _ => None,
    };
    match end_of_tags {
        Some(space) => {
            out.extend_from_slice(&tagged[..space]);
            out.extend_from_slice(b";label=");
            escape_into(label, out);
            out.extend_from_slice(&tagged[space..]);
        }
        None => {
            out.extend_from_slice(b"@label=");
            escape_into(label, out);
            out.push(b' ');
            out.extend_from_slice(tagged);
        }
    }
}

/// The tags a client knows, read from a server line, values unescaped.
/// Unknown keys are ignored, as the protocol asks of clients, and so is a
/// known key whose value cannot be read (a `time` or `id` that is not one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedTags<'a> {
    /// `time`, in milliseconds since the Unix epoch.
    pub time_ms: Option<i64>,
    /// `room`.
    pub room: Option<Cow<'a, str>>,
    /// `id`.
    pub id: Option<u64>,
    /// `to`.
    pub to: Option<Cow<'a, str>>,
    /// `label`.
    pub label: Option<Cow<'a, str>>,
}

impl ParsedTags<'_> {
    /// The same tags as [`ServerTags`] (for comparisons), when `time` was
    /// there: the server puts it on every line.
    pub fn as_server_tags(&self) -> Option<ServerTags<'_>> {
        Some(ServerTags {
            time_ms: self.time_ms?,
            room: self.room.as_deref(),
            id: self.id,
            to: self.to.as_deref(),
            label: self.label.as_deref(),
        })
    }
}

/// Splits a line from the server into its tags and the line after them
/// (as it would read without tags). A line without a prefix comes back
/// whole with no tags; a prefix that is not valid is an error.
pub fn parse_server_line(line: &str) -> Result<(ParsedTags<'_>, &str), TagError> {
    let Some((tags, rest)) = split_prefix(line)? else {
        return Ok((ParsedTags::default(), line));
    };
    let mut parsed = ParsedTags::default();
    for_each_tag(tags, |key, value| match key {
        "time" => parsed.time_ms = parse_time_ms(value),
        "room" => parsed.room = Some(unescape(value)),
        "id" => parsed.id = value.parse().ok().filter(|_| is_decimal(value)),
        "to" => parsed.to = Some(unescape(value)),
        LABEL => parsed.label = Some(unescape(value)),
        _ => {}
    })?;
    Ok((parsed, rest))
}

/// Whether `text` is one or more ASCII digits (`u64::from_str` also takes
/// a leading `+`).
fn is_decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Appends `n` in decimal.
fn write_decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Writes `n` (0 ≤ n < 10^digits.len()) into `digits`, zero-padded.
fn put_padded(mut n: u32, digits: &mut [u8]) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Appends `ms` (milliseconds since the Unix epoch) as UTC
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the `time` tag's format, built on the stack
/// and appended at once. Years outside 0000–9999 are written with as many
/// digits as they need (and a `-`).
pub fn write_time_ms(ms: i64, out: &mut Vec<u8>) {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000) as u32;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400) as u32;
    let mut stamp = *b"0000-00-00T00:00:00.000Z";
    put_padded(month, &mut stamp[5..7]);
    put_padded(day, &mut stamp[8..10]);
    put_padded(of_day / 3600, &mut stamp[11..13]);
    put_padded(of_day / 60 % 60, &mut stamp[14..16]);
    put_padded(of_day % 60, &mut stamp[17..19]);
    put_padded(millis, &mut stamp[20..23]);
    if (0..=9999).contains(&year) {
        put_padded(year as u32, &mut stamp[..4]);
        out.extend_from_slice(&stamp);
    } else {
        out.extend_from_slice(year.to_string().as_bytes());
        out.extend_from_slice(&stamp[4..]);
    }
}

/// Reads a `time` tag, `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, years 0000–9999),
/// into milliseconds since the Unix epoch; `None` for anything else.
pub fn parse_time_ms(stamp: &str) -> Option<i64> {
    let b = stamp.as_bytes();
    let shape = b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    if !shape {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let digits = &b[from..to];
        digits.iter().all(u8::is_ascii_digit).then(|| {
            digits
                .iter()
                .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let millis = number(20, 23)?;
    let month = u32::try_from(month).ok().filter(|m| (1..=12).contains(m))?;
    let day = u32::try_from(day)
        .ok()
        .filter(|&d| d >= 1 && d <= days_in_month(year, month))?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) + millis)
}

#[cfg(test)]
mod tests;
