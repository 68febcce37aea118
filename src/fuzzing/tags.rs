//! The checks of the tag prefix (protocol 1.2, `protocol::tags`): the
//! `tags` target reads lines a client (or a server) could send, the
//! `tags_roundtrip` target renders tags and reads them back.

use crate::protocol::tags::{
    self, escape, escape_into, insert_label, parse_client_line, parse_server_line, parse_time_ms,
    unescape, write_time_ms, ServerTags, TagError, MAX_LABEL_BYTES,
};
use std::borrow::Cow;

/// Every line of the input (UTF-8, lossy; split at `\n` as the framer
/// does) through `parse_client_line`, `parse_server_line`, `escape`,
/// `unescape` and `parse_time_ms`:
///
/// - the client parse agrees with a model of the prefix written the obvious
///   way (the same line after the prefix, the same label, the same error);
/// - the line it gives back is a suffix of the input line, non-empty when
///   there was a prefix; a label is 1 to 64 of `A-Z a-z 0-9 _ -`;
/// - the server parse accepts every prefix the client parse accepts, gives
///   the same line back and the same label, and refuses only the same
///   shapes (never for a label);
/// - `unescape(escape(v)) == v`, `escape` leaves no `;`, space, CR or LF,
///   borrows exactly when there was nothing to escape, and agrees with
///   `escape_into`; `unescape` borrows exactly when there is no `\`;
/// - a `time` the parser accepts is written back byte for byte.
pub fn check_tags(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        check_client_line(line);
        check_server_line(line);
        check_escape(line);
        check_time_text(line);
    }
}

/// What the prefix of a client line must give, written without the
/// parser's helpers: `@`, `KEY=VALUE` pairs split at `;`, one space, a
/// non-empty line; the last `label` counts and must be valid unescaped.
fn client_model(line: &str) -> Result<(Option<String>, &str), TagError> {
    let Some(after) = line.strip_prefix('@') else {
        return Ok((None, line));
    };
    let Some(space) = after.find(' ') else {
        return Err(TagError::NoSpace);
    };
    let (prefix, rest) = (&after[..space], &after[space + 1..]);
    if rest.is_empty() {
        return Err(TagError::NoLine);
    }
    let mut label = None;
    for pair in prefix.split(';') {
        if pair.is_empty() {
            return Err(TagError::EmptyTag);
        }
        let Some(eq) = pair.find('=') else {
            return Err(TagError::NoValue);
        };
        if eq == 0 {
            return Err(TagError::EmptyKey);
        }
        if &pair[..eq] == "label" {
            label = Some(&pair[eq + 1..]);
        }
    }
    let label = match label {
        None => None,
        Some(value) => {
            let value = unescape_model(value);
            let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
            if value.is_empty() || !value.bytes().all(allowed) {
                return Err(TagError::BadLabel);
            }
            if value.len() > MAX_LABEL_BYTES {
                return Err(TagError::LabelTooLong);
            }
            Some(value)
        }
    };
    Ok((label, rest))
}

/// IRCv3 unescaping, one character at a time.
fn unescape_model(value: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            out.push(match c {
                ':' => ';',
                's' => ' ',
                'r' => '\r',
                'n' => '\n',
                other => other,
            });
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `part` is a suffix of `line`, in `line`'s own bytes.
fn is_suffix_of(part: &str, line: &str) -> bool {
    let range = line.as_bytes().as_ptr_range();
    part.as_ptr() >= range.start && part.as_bytes().as_ptr_range().end == range.end
}

fn check_client_line(line: &str) {
    let parsed = parse_client_line(line);
    let model = client_model(line);
    match (&parsed, &model) {
        (Ok(got), Ok((label, rest))) => {
            assert_eq!(got.line, *rest, "{line:?}");
            assert!(is_suffix_of(got.line, line), "{line:?}");
            assert_eq!(got.label.map(|l| l.as_str().to_owned()), *label, "{line:?}");
            if let Some(label) = got.label {
                let text = label.as_str();
                assert!((1..=MAX_LABEL_BYTES).contains(&text.len()), "{line:?}");
                assert_eq!(tags::Label::new(text), Ok(label));
            }
            if line.starts_with('@') {
                assert!(!got.line.is_empty() && got.line.len() < line.len());
            } else {
                assert_eq!(got.line, line);
            }
        }
        (Err(got), Err(expected)) => assert_eq!(got, expected, "{line:?}"),
        _ => panic!("{line:?}: parsed {parsed:?}, the model says {model:?}"),
    }
}

fn check_server_line(line: &str) {
    let server = parse_server_line(line);
    match (parse_client_line(line), &server) {
        (Ok(client), Ok((parsed, rest))) => {
            assert_eq!(client.line, *rest, "{line:?}");
            if let Some(label) = client.label {
                assert_eq!(parsed.label.as_deref(), Some(label.as_str()), "{line:?}");
            }
        }
        (Err(TagError::BadLabel | TagError::LabelTooLong), Ok((_, rest))) => {
            assert!(is_suffix_of(rest, line));
        }
        (Err(client), Err(server)) => assert_eq!(client, *server, "{line:?}"),
        (client, server) => panic!("{line:?}: client {client:?}, server {server:?}"),
    }
    if let Ok((parsed, rest)) = server {
        assert!(is_suffix_of(rest, line), "{line:?}");
        if let Some(ms) = parsed.time_ms {
            let mut out = Vec::new();
            write_time_ms(ms, &mut out);
            assert!(line.contains(&*String::from_utf8_lossy(&out)), "{line:?}");
        }
    }
}

fn check_escape(value: &str) {
    let escaped = escape(value);
    assert!(
        !escaped.contains([';', ' ', '\r', '\n']),
        "{value:?} escaped as {escaped:?}"
    );
    let plain = !value.contains([';', ' ', '\\', '\r', '\n']);
    assert_eq!(matches!(escaped, Cow::Borrowed(_)), plain, "{value:?}");
    let mut into = Vec::new();
    escape_into(value, &mut into);
    assert_eq!(into, escaped.as_bytes(), "{value:?}");
    assert_eq!(unescape(&escaped), value, "{value:?}");
    // Unescaping any text: the model's answer, borrowed without a `\`.
    let unescaped = unescape(value);
    assert_eq!(unescaped, unescape_model(value), "{value:?}");
    assert_eq!(
        matches!(unescaped, Cow::Borrowed(_)),
        !value.contains('\\'),
        "{value:?}"
    );
}

fn check_time_text(text: &str) {
    for candidate in [text, text.get(..24).unwrap_or(text)] {
        if let Some(ms) = parse_time_ms(candidate) {
            let mut out = Vec::new();
            write_time_ms(ms, &mut out);
            assert_eq!(out, candidate.as_bytes(), "{candidate:?} read as {ms}");
        }
    }
}

/// Renders tags from the input and reads them back: bytes 0..8 the time
/// (any `i64`), byte 8 which tags are set, bytes 9..17 the `id`, then the
/// room, recipient, label and line, separated by `\n` (UTF-8, lossy):
///
/// - `parse_time_ms(write_time_ms(ms)) == ms` for every time in years
///   0000–9999, `None` for the others (their years do not fit the format);
/// - `write_prefix` then the line reads back through `parse_server_line`
///   as the same tags (values unescaped) and the same line; with an empty
///   line, as [`TagError::NoLine`];
/// - `insert_label` on the shared rendering without a label gives exactly
///   the rendering with it;
/// - `write_prefix` appends to what the buffer held and touches nothing
///   before it.
pub fn check_tags_roundtrip(data: &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let word = |from: usize| std::array::from_fn::<u8, 8, _>(|i| byte(from + i));
    let time_ms = i64::from_le_bytes(word(0));
    let set = byte(8);
    let id = u64::from_le_bytes(word(9));
    let text = String::from_utf8_lossy(data.get(17..).unwrap_or_default());
    let mut parts = text.splitn(4, '\n');
    let mut next = || parts.next().unwrap_or("");
    let (room, to, label, line) = (next(), next(), next(), next());
    let line = line.replace('\n', " ");

    let mut stamp = Vec::new();
    write_time_ms(time_ms, &mut stamp);
    let stamp = String::from_utf8(stamp).expect("a time is ASCII");
    let year = stamp.split('-').next().unwrap_or("");
    let in_range = stamp.len() == 24 && !stamp.starts_with('-');
    assert_eq!(in_range, year.len() == 4, "{time_ms} as {stamp:?}");
    assert_eq!(
        parse_time_ms(&stamp),
        in_range.then_some(time_ms),
        "{time_ms} as {stamp:?}"
    );

    let tags = ServerTags {
        time_ms,
        room: (set & 1 != 0).then_some(room),
        id: (set & 2 != 0).then_some(id),
        to: (set & 4 != 0).then_some(to),
        label: (set & 8 != 0).then_some(label),
    };
    let before = b"kept";
    let mut out = before.to_vec();
    tags.write_prefix(&mut out);
    assert!(out.starts_with(before));
    let prefix_len = out.len() - before.len();
    out.extend_from_slice(line.as_bytes());
    let rendered = std::str::from_utf8(&out[before.len()..]).expect("UTF-8 in, UTF-8 out");
    assert_eq!(
        rendered[..prefix_len].matches(' ').count(),
        1,
        "{rendered:?}"
    );
    match parse_server_line(rendered) {
        Ok((parsed, rest)) => {
            assert!(!line.is_empty());
            assert_eq!(rest, line, "{rendered:?}");
            assert_eq!(parsed.time_ms, in_range.then_some(time_ms), "{rendered:?}");
            let expected = ServerTags {
                time_ms: parsed.time_ms.unwrap_or(time_ms),
                ..tags
            };
            let got = ServerTags {
                time_ms: parsed.time_ms.unwrap_or(time_ms),
                room: parsed.room.as_deref(),
                id: parsed.id,
                to: parsed.to.as_deref(),
                label: parsed.label.as_deref(),
            };
            assert_eq!(got, expected, "{rendered:?}");
        }
        Err(error) => {
            assert!(line.is_empty(), "{rendered:?}: {error}");
            assert_eq!(error, TagError::NoLine);
        }
    }

    // The sender's labelled echo from the shared bytes.
    let shared_tags = ServerTags {
        label: None,
        ..tags
    };
    let mut shared = Vec::new();
    shared_tags.write_prefix(&mut shared);
    shared.extend_from_slice(line.as_bytes());
    let mut direct = Vec::new();
    ServerTags {
        label: Some(label),
        ..shared_tags
    }
    .write_prefix(&mut direct);
    direct.extend_from_slice(line.as_bytes());
    let mut inserted = Vec::new();
    insert_label(&shared, label, &mut inserted);
    assert_eq!(
        String::from_utf8_lossy(&inserted),
        String::from_utf8_lossy(&direct)
    );
}
