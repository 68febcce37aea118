//! One IRC message: parsing a client's line, rendering a message into a
//! buffer the caller reuses. Follows the Modern IRC documents' "Message
//! Format" (`modern.ircdocs.horse`, client-to-server structure):
//!
//! ```text
//! message ::= ['@' <tags> SPACE] [':' <source> SPACE] <command> <parameters>
//! ```
//!
//! - Parts and parameters are separated by one or more spaces; a parameter
//!   starting with `:` is the last one and takes the rest of the line,
//!   spaces included (the "trailing" parameter, no different from the
//!   others once its `:` is stripped).
//! - At most [`MAX_PARAMS`] parameters, as RFC 2812 has it: the fifteenth
//!   takes the rest of the line even without a `:`. The message never
//!   allocates: the parameters are slices of the line.
//! - Lengths: the part after the tags may be 510 bytes (512 with CR LF,
//!   [`MAX_MESSAGE_BYTES`]); the tags, `@` and their space included, up to
//!   [`MAX_TAGS_BYTES`] more. Longer is [`ParseError::TooLong`] (the server
//!   answers `417`).
//! - UTF8ONLY: a line that is not UTF-8 is [`ParseError::InvalidUtf8`],
//!   with the command when it could still be read (the server answers
//!   `FAIL <command> INVALID_UTF8`, or `FAIL *`).
//! - NUL, CR and LF never appear inside a message: a line holding one is
//!   [`ParseError::ForbiddenByte`] (the framer has already cut at LF and
//!   dropped one CR before it).
//!
//! Rendering ([`Message::write`]) puts `:` before the last parameter
//! exactly when it needs one (empty, holding a space, or starting with `:`),
//! so parse → write → parse gives back the same message; it never writes
//! NUL, CR or LF inside a message (each becomes a space), so one message
//! is always one line.

use std::fmt;

/// The longest message without its tags, CR LF included.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// The most bytes of tags (the `@`, the tags and the space after them) a
/// message may carry in front of its [`MAX_MESSAGE_BYTES`].
pub const MAX_TAGS_BYTES: usize = 8191;

/// The longest line a client may send, without CR LF: what the framer of
/// an IRC connection must accept.
pub const MAX_LINE_BYTES: usize = MAX_TAGS_BYTES + MAX_MESSAGE_BYTES - 2;

/// The most parameters a message has (RFC 2812): the last one takes the
/// rest of the line.
pub const MAX_PARAMS: usize = 15;

/// Why a line is not a message the server can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// No command: an empty line, or only tags and a source. The Modern
    /// documents say to ignore it silently.
    Empty,
    /// Over [`MAX_MESSAGE_BYTES`] without the tags, or tags over
    /// [`MAX_TAGS_BYTES`]: `417 ERR_INPUTTOOLONG`.
    TooLong,
    /// Not UTF-8 (the server advertises `UTF8ONLY`): `FAIL <command>
    /// INVALID_UTF8`, with the command when it could be read.
    InvalidUtf8 {
        /// The command, when the bytes up to it are UTF-8 and it is one.
        command: Option<&'a str>,
    },
    /// A NUL, or a CR not at the end: not part of any message.
    ForbiddenByte,
    /// A command that is neither letters nor digits (`421` when it can be
    /// shown, as it always can: it holds no space).
    BadCommand(&'a str),
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("no command"),
            ParseError::TooLong => f.write_str("input line was too long"),
            ParseError::InvalidUtf8 { .. } => f.write_str("not UTF-8"),
            ParseError::ForbiddenByte => f.write_str("a NUL or CR inside the line"),
            ParseError::BadCommand(command) => write!(f, "bad command {command:?}"),
        }
    }
}

impl std::error::Error for ParseError<'_> {}

/// The text of `FAIL … INVALID_UTF8`, as the IRCv3 UTF8ONLY specification
/// words it.
pub const INVALID_UTF8_TEXT: &str =
    "Message rejected, your IRC software MUST use UTF-8 encoding on this network";

impl ParseError<'_> {
    /// Appends what the server answers, from `server` to `client` (its
    /// nick, `*` before it has one): `417` for [`ParseError::TooLong`],
    /// `FAIL <command> INVALID_UTF8` (`*` when the command could not be
    /// read) for [`ParseError::InvalidUtf8`], `421` for
    /// [`ParseError::BadCommand`]; nothing for an empty line or a
    /// forbidden byte (the documents: ignore it).
    pub fn write_reply(&self, server: &str, client: &str, out: &mut Vec<u8>) {
        use super::numeric::{self, Numeric};
        match self {
            ParseError::Empty | ParseError::ForbiddenByte => {}
            ParseError::TooLong => {
                numeric::write(out, server, Numeric::InputTooLong, client, &[], None)
            }
            ParseError::InvalidUtf8 { command } => {
                let command = command.unwrap_or("*");
                Message::new("FAIL", &[command, "INVALID_UTF8", INVALID_UTF8_TEXT])
                    .from_source(server)
                    .with_trailing()
                    .write(out)
            }
            ParseError::BadCommand(command) => numeric::write(
                out,
                server,
                Numeric::UnknownCommand,
                client,
                &[command],
                None,
            ),
        }
    }
}

/// The parameters of a message: up to [`MAX_PARAMS`] slices, no heap.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    len: usize,
    items: [&'a str; MAX_PARAMS],
}

impl<'a> Params<'a> {
    /// Parameters from a slice; `None` when there are more than
    /// [`MAX_PARAMS`].
    pub fn new(params: &[&'a str]) -> Option<Self> {
        let mut out = Params::default();
        for &param in params {
            out.push(param)?;
        }
        Some(out)
    }

    /// Adds one; `None` when there are already [`MAX_PARAMS`].
    pub fn push(&mut self, param: &'a str) -> Option<()> {
        *self.items.get_mut(self.len)? = param;
        self.len += 1;
        Some(())
    }

    /// The parameters, in order.
    pub fn as_slice(&self) -> &[&'a str] {
        &self.items[..self.len]
    }
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// One IRC message, borrowing from the line it was parsed from (or from
/// the strings it was built from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The tags as sent, without the `@`: `KEY[=VALUE];…`, values escaped
    /// (read them with [`Message::tags`]).
    pub tags: Option<&'a str>,
    /// Where the message comes from (`nick!user@host` or a server name),
    /// without the `:`. Clients must not send one; the server ignores it.
    pub source: Option<&'a str>,
    /// The command as sent (`PRIVMSG`, `privmsg`, `001`): compare it with
    /// [`Message::is`].
    pub command: &'a str,
    /// The parameters, the trailing one's `:` stripped.
    pub params: Params<'a>,
    /// Whether the last parameter is written after a `:` even when it
    /// does not need one (as parsed: whether it came with one). Servers
    /// write text (a message, a numeric's text) this way, as the documents
    /// show it.
    pub trailing: bool,
}

impl<'a> Message<'a> {
    /// A message with no tags and no source.
    pub fn new(command: &'a str, params: &[&'a str]) -> Self {
        Message {
            tags: None,
            source: None,
            command,
            params: Params::new(params).expect("at most 15 parameters"),
            trailing: false,
        }
    }

    /// The same message with its last parameter written after a `:`.
    pub fn with_trailing(self) -> Self {
        Message {
            trailing: true,
            ..self
        }
    }

    /// The same message from `source`.
    pub fn from_source(self, source: &'a str) -> Self {
        Message {
            source: Some(source),
            ..self
        }
    }

    /// Whether the command is `name`, ignoring ASCII case (IRC commands
    /// are case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.command.eq_ignore_ascii_case(name)
    }

    /// Parameter `i`, if there is one.
    pub fn param(&self, i: usize) -> Option<&'a str> {
        self.params.as_slice().get(i).copied()
    }

    /// The tags, in order: each key with its value still escaped (empty
    /// when the tag has no `=`). Unescape values with
    /// [`crate::tags::unescape`]. Empty pieces (`;;`) are skipped.
    pub fn tags(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.tags
            .unwrap_or("")
            .split(';')
            .filter(|tag| !tag.is_empty())
            .map(|tag| tag.split_once('=').unwrap_or((tag, "")))
    }

    /// Parses one line from a client, without its line end.
    pub fn parse(line: &'a [u8]) -> Result<Message<'a>, ParseError<'a>> {
        let line = match std::str::from_utf8(line) {
            Ok(line) => line,
            Err(error) => {
                let valid = std::str::from_utf8(&line[..error.valid_up_to()]).unwrap_or("");
                let command = match parse_str(valid) {
                    // The command must have ended before the bad byte.
                    Ok(message) if valid[message.command_end(valid)..].starts_with(' ') => {
                        Some(message.command)
                    }
                    _ => None,
                };
                return Err(ParseError::InvalidUtf8 { command });
            }
        };
        parse_str(line)
    }

    /// Where the command ends in `line` (the line it was parsed from).
    fn command_end(&self, line: &str) -> usize {
        self.command.as_ptr() as usize - line.as_ptr() as usize + self.command.len()
    }

    /// Appends the message and its CR LF to `out`. The caller reuses `out`
    /// (clear it, or keep appending a batch): nothing is allocated once it
    /// has grown to a line's size. A middle parameter that could not be
    /// read back as one (empty, holding a space, starting with `:`) is a
    /// bug in the caller; it is written with `*` in its place.
    pub fn write(&self, out: &mut Vec<u8>) {
        if let Some(tags) = self.tags {
            out.push(b'@');
            put_clean(tags, out);
            out.push(b' ');
        }
        if let Some(source) = self.source {
            out.push(b':');
            put_clean(source, out);
            out.push(b' ');
        }
        put_clean(self.command, out);
        let params = self.params.as_slice();
        if let Some((last, middle)) = params.split_last() {
            for param in middle {
                out.push(b' ');
                if is_middle(param) {
                    put_clean(param, out);
                } else {
                    debug_assert!(false, "middle parameter {param:?}");
                    out.push(b'*');
                }
            }
            out.push(b' ');
            if self.trailing || !is_middle(last) {
                out.push(b':');
            }
            put_clean(last, out);
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The message as a `String` with its CR LF: for tests and logs.
    pub fn to_line(&self) -> String {
        let mut out = Vec::new();
        self.write(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Whether `param` can be sent as a middle parameter (without `:`).
pub fn is_middle(param: &str) -> bool {
    !param.is_empty() && !param.starts_with(':') && !param.contains(' ')
}

/// Appends `text`, NUL, CR and LF replaced by spaces.
fn put_clean(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    if !bytes.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        out.extend_from_slice(bytes);
        return;
    }
    out.extend(bytes.iter().map(|&b| match b {
        0 | b'\r' | b'\n' => b' ',
        b => b,
    }));
}

/// Splits `text` at its first space: the text before it, and the rest from
/// the space on (`""` when there is none).
fn until_space(text: &str) -> (&str, &str) {
    match text.find(' ') {
        Some(end) => (&text[..end], &text[end..]),
        None => (text, ""),
    }
}

/// Splits off one space-delimited word at the start of `rest` (after any
/// spaces), returning it and what follows it.
fn word(rest: &str) -> (&str, &str) {
    until_space(rest.trim_start_matches(' '))
}

fn parse_str(line: &str) -> Result<Message<'_>, ParseError<'_>> {
    if line.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(ParseError::ForbiddenByte);
    }
    let mut rest = line;
    let mut tags = None;
    if let Some(after) = rest.strip_prefix('@') {
        let (tag_text, after_tags) = until_space(after);
        // `@`, the tags and the spaces after them.
        let tags_len = line.len() - after_tags.trim_start_matches(' ').len();
        if tags_len > MAX_TAGS_BYTES {
            return Err(ParseError::TooLong);
        }
        tags = Some(tag_text);
        rest = after_tags;
    }
    let rest_trimmed = rest.trim_start_matches(' ');
    if rest_trimmed.len() > MAX_MESSAGE_BYTES - 2 {
        return Err(ParseError::TooLong);
    }
    rest = rest_trimmed;
    let mut source = None;
    if let Some(after) = rest.strip_prefix(':') {
        let (src, after_source) = until_space(after);
        source = Some(src);
        rest = after_source;
    }
    let (command, mut rest) = word(rest);
    if command.is_empty() {
        return Err(ParseError::Empty);
    }
    if !command.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ParseError::BadCommand(command));
    }
    let mut params = Params::default();
    let mut trailing = false;
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(last) = rest.strip_prefix(':') {
            params.push(last);
            trailing = true;
            break;
        }
        if params.len == MAX_PARAMS - 1 {
            // RFC 2812: the fifteenth parameter is the rest of the line.
            let last = rest.trim_end_matches(' ');
            params.push(last);
            trailing = !is_middle(last);
            break;
        }
        let (param, after) = word(rest);
        params.push(param);
        rest = after;
    }
    Ok(Message {
        tags,
        source,
        command,
        params,
        trailing,
    })
}
