//! The invariants the fuzz targets check, one `check_*` function per target.
//!
//! Each takes the fuzzer's raw bytes, feeds them through the same code the
//! server runs on a connection's input (split as TCP would split them), and
//! panics when something that must hold does not. The `fuzz/` crate's
//! targets are one-line calls of these, and `tests/fuzz_corpus.rs` runs every
//! file of the kept corpora (`fuzz/corpus/<target>/`) through them in the
//! ordinary `cargo test`, so there is one copy of the rules. See
//! `docs/fuzzing.md`.
//!
//! Most targets read the input as [`Split`]: a byte for the line limit, a
//! byte for how many reads, the reads' lengths, then the stream itself.

use crate::chat::{Chat, ClientId, Delivery, Outbox};
use crate::net::framing::{Frame, LineFramer};
use crate::net::http::{Head, HeadReader, Request, Route, WebRules, MAX_HEAD_BYTES};
use crate::net::proxy::{self, Parse};
use crate::net::transport::{Codec, Decoder, Input};
use crate::net::ws;
use crate::protocol::{self, Command, Dialect, ServerLine};
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

mod cluster;
mod irc;
mod lines;
mod resp;
mod tags;

pub use cluster::check_cluster_messages;
pub use irc::check_irc_message;
pub use lines::check_server_lines;
pub use resp::check_resp;
pub use tags::{check_tags, check_tags_roundtrip};

/// A target's check: panics when the input breaks an invariant.
pub type Check = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` and its
/// `fuzz/corpus/<name>/`, with its check.
pub const TARGETS: [(&str, Check); 14] = [
    ("framing", check_framing),
    ("command", check_command),
    ("chat", check_chat),
    ("http_head", check_http_head),
    ("ws_decode", check_ws_decode),
    ("ws_roundtrip", check_ws_roundtrip),
    ("transport", check_transport),
    ("proxy_header", check_proxy_header),
    ("tags", check_tags),
    ("tags_roundtrip", check_tags_roundtrip),
    ("server_lines", check_server_lines),
    ("irc_message", check_irc_message),
    ("resp", check_resp),
    ("cluster_messages", check_cluster_messages),
];

/// A fuzz input read as a line limit and a byte stream cut into reads.
#[derive(Debug)]
pub struct Split<'a> {
    /// The line limit (`--max-line-bytes`): 0 to 249, or one of a few large
    /// values including the server's default and `usize::MAX`.
    pub max_line: usize,
    /// The reads, in order; together they are [`Split::stream`].
    pub chunks: Vec<&'a [u8]>,
    /// The whole stream.
    pub stream: &'a [u8],
}

impl<'a> Split<'a> {
    /// Byte 0 picks the limit, byte 1 % 8 the number of cuts, the next bytes
    /// (one per cut) the lengths of the reads before the last; the rest is
    /// the stream. Missing bytes count as zero.
    pub fn new(data: &'a [u8]) -> Self {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        let max_line = match byte(0) {
            small @ 0..=249 => usize::from(small),
            250 => 1024,
            251 => 4096,
            252 => 65535,
            253 => 65536,
            254 => usize::MAX - 1,
            _ => usize::MAX,
        };
        let cuts = usize::from(byte(1) % 8);
        let start = (2 + cuts).min(data.len());
        let stream = &data[start..];
        let mut chunks = Vec::with_capacity(cuts + 1);
        let mut rest = stream;
        for i in 0..cuts {
            let len = usize::from(byte(2 + i)).min(rest.len());
            let (chunk, after) = rest.split_at(len);
            chunks.push(chunk);
            rest = after;
        }
        chunks.push(rest);
        Split {
            max_line,
            chunks,
            stream,
        }
    }
}

/// Byte 1's high bit, which [`Split`] leaves alone: a switch for a target.
fn flag(data: &[u8]) -> bool {
    data.get(1).is_some_and(|b| b & 0x80 != 0)
}

/// Heap a `Vec<u8>` may hold after growing one `extend_from_slice` at a time
/// to at most `len` bytes: amortized doubling, 8 bytes at least.
fn grown_capacity(len: usize) -> usize {
    len.saturating_mul(2).max(8)
}

/// An input as the tests compare it: owned.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Line(Vec<u8>),
    TooLong,
    Request(String),
    Reply(Vec<u8>),
    Close(u16),
}

/// Line framing (`framing::LineFramer`), split anywhere: it yields exactly
/// the lines of a one-piece model of the protocol, none over the limit and
/// none holding a `\n`, and never holds more than the limit plus a `\r`.
pub fn check_framing(data: &[u8]) {
    let split = Split::new(data);
    let max = split.max_line;
    let mut framer = LineFramer::default();
    let mut seen = Vec::new();
    for chunk in &split.chunks {
        framer.feed(chunk, max, |frame| match frame {
            Frame::Line(line) => {
                assert!(line.len() <= max, "line of {} over {max}", line.len());
                assert!(!line.contains(&b'\n'), "line holds a newline");
                seen.push(Seen::Line(line.to_vec()));
            }
            Frame::TooLong => seen.push(Seen::TooLong),
        });
        let held = framer.pending_bytes();
        assert!(held <= max.saturating_add(1), "holds {held} over {max}+1");
        assert!(framer.capacity() <= grown_capacity(max.saturating_add(1)));
    }
    assert_eq!(seen, framing_model(split.stream, max), "{split:?}");
    let tail = split.stream.rsplit(|&b| b == b'\n').next().unwrap_or(&[]);
    assert_eq!(framer.mid_line(), !tail.is_empty());
}

/// The line protocol on a whole stream, written the obvious way: every
/// `\n`-terminated line, one `\r` before its `\n` dropped, is a line or too
/// long; an unterminated tail is reported too long once it passes the limit
/// plus the `\r` it might still end with.
fn framing_model(stream: &[u8], max: usize) -> Vec<Seen> {
    let mut pieces: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let tail = pieces.pop().unwrap_or(&[]);
    let mut out: Vec<Seen> = pieces
        .into_iter()
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > max {
                Seen::TooLong
            } else {
                Seen::Line(line.to_vec())
            }
        })
        .collect();
    if tail.len() > max.saturating_add(1) {
        out.push(Seen::TooLong);
    }
    out
}

/// Command parsing (`protocol::parse`) of every line of the input, as the
/// server gets them (split at `\n`, UTF-8 only): what it returns borrows
/// from the line and agrees with it, and sanitized text has no control
/// character left.
pub fn check_command(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        check_line(line);
    }
}

/// The invariants of one parsed line.
fn check_line(line: &str) {
    let command = protocol::parse(line);
    let inside = |part: &str| {
        let range = line.as_bytes().as_ptr_range();
        let start = part.as_ptr();
        assert!(
            range.start <= start && start <= range.end && part.len() <= line.len(),
            "{part:?} does not borrow from {line:?}"
        );
    };
    let is_name = |name: &str| !name.is_empty() && !name.contains(' ');
    match command {
        Command::Chat(text) => {
            let expected = match line.strip_prefix("::") {
                Some(_) => &line[1..],
                None => line,
            };
            assert_eq!(text, expected);
            assert!(!line.starts_with(':') || line.starts_with("::"));
            check_sanitize(text);
        }
        Command::Nick(name)
        | Command::Join(name)
        | Command::Op(name)
        | Command::Deop(name)
        | Command::Ban(name)
        | Command::Unban(name)
        | Command::Users(Some(name))
        | Command::Part {
            room: Some(name),
            reason: None,
        } => {
            inside(name);
            assert!(is_name(name), "{name:?}");
        }
        Command::PrivateMessage { to, text } => {
            inside(to);
            inside(text);
            assert!(is_name(to) && !text.is_empty(), "{to:?} {text:?}");
            check_sanitize(text);
        }
        Command::Login { name, password } => {
            inside(name);
            inside(password);
            assert!(is_name(name) && !password.is_empty(), "{name:?}");
        }
        Command::Passwd { old, new } => {
            inside(old);
            inside(new);
            assert!(is_name(old) && !new.is_empty(), "{old:?}");
        }
        Command::Whois(name) | Command::Keys(name) => {
            inside(name);
            assert!(is_name(name), "{name:?}");
        }
        Command::E2e { to, payload } => {
            inside(to);
            inside(payload);
            assert!(is_name(to) && !payload.is_empty(), "{to:?} {payload:?}");
        }
        Command::Register(text) | Command::Resume(text) | Command::Key(text) => {
            inside(text);
            assert!(!text.is_empty());
        }
        Command::Me(text) | Command::Auth(text) => {
            inside(text);
            assert!(!text.is_empty());
            check_sanitize(text);
        }
        Command::Ping(arg) | Command::Quit(arg) | Command::History(arg) => {
            if let Some(arg) = arg {
                inside(arg);
                assert!(!arg.is_empty());
                check_sanitize(arg);
                for max in [0, 1, 20, 1000, usize::MAX] {
                    check_history_count(arg, max);
                }
            }
        }
        Command::Unknown(word) => {
            inside(word);
            assert!(word.starts_with(':') && !word.contains(' '), "{word:?}");
            assert!(line.starts_with(word));
        }
        Command::Tags(on) => {
            let arg = line.split_once(' ').map(|(_, arg)| arg);
            let expected = if on { "on" } else { "off" };
            assert!(arg.is_some_and(|arg| arg.eq_ignore_ascii_case(expected)));
        }
        Command::Part {
            room: Some(name),
            reason: Some(text),
        }
        | Command::Kick {
            nick: name,
            reason: Some(text),
        } => {
            inside(name);
            inside(text);
            assert!(is_name(name) && !text.is_empty(), "{name:?} {text:?}");
        }
        Command::Kick { nick, reason: None } => {
            inside(nick);
            assert!(is_name(nick), "{nick:?}");
        }
        Command::Topic(Some(text)) => {
            inside(text);
            assert!(!text.is_empty());
            check_sanitize(text);
        }
        Command::Part {
            room: None,
            reason: Some(_),
        } => panic!("a reason without a room: {line:?}"),
        Command::Help
        | Command::Users(None)
        | Command::Part {
            room: None,
            reason: None,
        }
        | Command::Topic(None)
        | Command::Bans
        | Command::Rooms
        | Command::Token
        | Command::Logout
        | Command::Usage(_) => {}
    }
    for name in line.split(' ') {
        if protocol::is_valid_name(name) {
            assert!(name.len() <= protocol::MAX_NAME_BYTES && name.is_ascii());
        }
    }
}

/// `sanitize` leaves no control character (but TAB), changes nothing else,
/// and borrows exactly when there was nothing to replace.
fn check_sanitize(text: &str) {
    let clean = protocol::sanitize(text);
    // IRC formatting codes are kept: the line dialect removes them when it
    // renders, IRC clients get them (protocol 1.2, "IRC").
    let forbidden = |c: char| {
        ((c.is_control() && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c))
            && !protocol::irc::text::is_format_code(c)
    };
    assert!(!clean.chars().any(forbidden), "{clean:?}");
    assert_eq!(clean.chars().count(), text.chars().count());
    for (before, after) in text.chars().zip(clean.chars()) {
        assert!(before == after || (forbidden(before) && after == '\u{fffd}'));
    }
    let untouched = !text.chars().any(forbidden);
    assert_eq!(
        matches!(clean, std::borrow::Cow::Borrowed(_)),
        untouched,
        "{text:?}"
    );
}

/// `history_count` against arithmetic on the digits: 1..=max for a positive
/// decimal number (clamped), nothing for anything else.
fn check_history_count(arg: &str, max: usize) {
    let got = protocol::history_count(Some(arg), max);
    let digits = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit());
    let value = arg.trim_start_matches('0');
    let expected = if !digits || value.is_empty() {
        None
    } else if value.len() > 20 {
        Some(max)
    } else {
        // 20 digits fit in a u128.
        let n: u128 = value.parse().expect("digits");
        Some(usize::try_from(n).unwrap_or(usize::MAX).min(max))
    };
    assert_eq!(got, expected, "{arg:?} max {max}");
}

/// Everything the chat queued, by recipient, written as the server does:
/// tagged (with the command's label on answers) for clients with tags on.
#[derive(Default)]
struct Recorder {
    sent: Vec<(ClientId, Vec<u8>)>,
    tagged: Vec<ClientId>,
    label: Option<protocol::tags::Label>,
}

impl Outbox for Recorder {
    fn queue(&mut self, to: ClientId, line: &ServerLine<'_>, how: Delivery) {
        let mut bytes = Vec::new();
        if self.tagged.contains(&to) {
            let mut shared = Vec::new();
            Dialect::Line.render_tagged(line, 1_796_638_503_123, &mut shared);
            match self.label.filter(|_| how.answer) {
                Some(label) => protocol::tags::insert_label(&shared, label.as_str(), &mut bytes),
                None => bytes = shared,
            }
            // The prefix reads back, and the line after it is the plain one.
            let text = std::str::from_utf8(&bytes).expect("lines are UTF-8");
            let (tags, rest) = protocol::tags::parse_server_line(text).expect("a valid prefix");
            assert_eq!(
                tags.label.as_deref(),
                self.label
                    .filter(|_| how.answer)
                    .as_ref()
                    .map(|l| l.as_str())
            );
            let mut plain = Vec::new();
            Dialect::Line.render(line, &mut plain);
            assert_eq!(rest.as_bytes(), plain, "{text:?}");
        } else if how.prefixed {
            Dialect::Line.render_prefixed(line, &mut bytes);
        } else {
            Dialect::Line.render(line, &mut bytes);
        }
        self.sent.push((to, bytes));
    }

    fn set_tags(&mut self, to: ClientId, on: bool) {
        self.tagged.retain(|&id| id != to);
        if on {
            self.tagged.push(to);
        }
    }

    fn answering(&mut self, label: Option<protocol::tags::Label>) {
        self.label = label;
    }
}

/// Lines from client 0 through the framer and the chat
/// (`Chat::handle_line`), with clients 1 and 2 in `#lobby`, 2 with tags
/// on: every line the server queues is one UTF-8 line ending in its only
/// `\n`, no line that reaches another client holds a control character
/// (sanitizing), and a tagged line's prefix reads back, with the label of
/// the command it answers, before the plain line. Byte 1's high bit puts
/// a password on the server.
pub fn check_chat(data: &[u8]) {
    let split = Split::new(data);
    let password = flag(data).then(|| "pw".to_string());
    let mut chat = Chat::new(password);
    let mut out = Recorder::default();
    for id in [1, 2, 0] {
        chat.connect(id, &mut out);
    }
    // Clients 1 and 2 authenticate when there is a password.
    chat.handle_line(1, ":auth pw", &mut out);
    chat.handle_line(2, ":auth pw", &mut out);
    chat.handle_line(2, ":tags on", &mut out);
    let mut framer = LineFramer::default();
    let mut closed = false;
    for chunk in &split.chunks {
        framer.feed(chunk, split.max_line.max(1), |frame| {
            let Frame::Line(line) = frame else { return };
            let Ok(line) = std::str::from_utf8(line) else {
                return;
            };
            if closed || line.is_empty() {
                return;
            }
            closed = chat.handle_line(0, line, &mut out).close;
        });
    }
    chat.disconnect(0, Some("gone"), &mut out);
    for (to, line) in &out.sent {
        let text = std::str::from_utf8(line).expect("lines are UTF-8");
        let body = text.strip_suffix('\n').expect("a line ends in \\n");
        assert!(!body.contains('\n'), "two lines in one: {text:?}");
        if *to != 0 {
            let forbidden =
                |c: char| (c.is_control() && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c);
            assert!(!body.chars().any(forbidden), "to {to}: {text:?}");
        }
    }
}

/// HTTP request heads (`http::HeadReader`), split anywhere: never holds
/// more than the head limit while waiting, gives the same head (and the
/// same bytes after it) as in one piece, and every answer `route` makes is
/// a well-formed response whose `Content-Length` is its body.
pub fn check_http_head(data: &[u8]) {
    let split = Split::new(data);
    let mut whole = HeadReader::default();
    let whole_head = whole.feed(split.stream);
    let mut reader = HeadReader::default();
    let mut head = None;
    let mut fed = 0;
    for chunk in &split.chunks {
        fed += chunk.len();
        if let Some(got) = reader.feed(chunk) {
            assert!(head.is_none(), "two heads");
            head = Some((got, fed));
        } else if head.is_none() {
            assert!(reader.capacity() <= grown_capacity(MAX_HEAD_BYTES));
        }
    }
    match (&whole_head, &head) {
        (None, None) => {}
        (Some(Head::Request(a)), Some((Head::Request(b), _))) => {
            assert_eq!(a, b);
            // The bytes after the head, as the upgrade hands them over.
            assert_eq!(whole.take_rest(), reader.take_rest());
        }
        // Where a malformed byte sits past the limit, pieces may hit the
        // limit first.
        (Some(Head::Refused(_)), Some((Head::Refused(_), _))) => {}
        _ => panic!("whole {whole_head:?}, in pieces {head:?}"),
    }
    if let Some(Head::Request(request)) = &whole_head {
        check_request(request);
    }
    if let Some((Head::Refused(status), _)) = &head {
        check_response(&crate::net::http::refusal(*status), false, *status);
    }
}

/// A parsed request and every answer to it.
fn check_request(request: &Request) {
    assert!(!request.path.contains(['?', '#']), "{:?}", request.path);
    for rules in [
        WebRules::default(),
        WebRules {
            allowed_origins: vec!["https://friend.example".into(), "null".into()],
            tls: true,
            irc: true,
        },
    ] {
        match rules.route(request) {
            Route::Respond(response) => {
                check_response(&response, request.method == "HEAD", 0);
            }
            Route::Upgrade(response) => {
                assert_eq!(request.path, crate::net::http::WS_PATH);
                assert_ne!(request.origin.as_deref(), Some("null"));
                let key = request.ws_key.as_deref().expect("upgrade has a key");
                let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
                let text = String::from_utf8(response).expect("ASCII response");
                assert!(text.starts_with("HTTP/1.1 101 "));
                assert!(text.ends_with("\r\n\r\n"));
                assert!(text.contains(&format!("Sec-WebSocket-Accept: {accept}\r\n")));
                assert!(!text.contains("Sec-WebSocket-Protocol"));
            }
            Route::UpgradeIrc(response, subprotocol) => {
                assert!(rules.irc);
                assert!(["/", crate::net::http::WS_PATH].contains(&request.path.as_str()));
                let offered = request.ws_protocols.as_deref().expect("offered");
                assert!(offered.contains(subprotocol.name()));
                let text = String::from_utf8(response).expect("ASCII response");
                assert!(text.starts_with("HTTP/1.1 101 "));
                let header = format!("Sec-WebSocket-Protocol: {}\r\n", subprotocol.name());
                assert!(text.contains(&header));
            }
        }
    }
}

/// A response parses as HTTP/1.1 with a `Content-Length` that is its body
/// (the body left out for `HEAD`), and `status` when not 0.
fn check_response(response: &[u8], head_only: bool, status: u16) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = parsed.parse(response) else {
        panic!("bad response {:?}", String::from_utf8_lossy(response));
    };
    if status != 0 {
        assert_eq!(parsed.code, Some(status));
    }
    let length = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| {
            std::str::from_utf8(h.value)
                .expect("ASCII")
                .parse::<usize>()
        });
    let length = length.expect("Content-Length").expect("a number");
    let body = response.len() - len;
    assert_eq!(body, if head_only { 0 } else { length });
}

/// A server-side WebSocket decoder with its events checked as they come:
/// no line over the limit or not UTF-8, pongs well formed, nothing after a
/// close, and never more held than a line (plus `\r\n`) and a control frame.
struct CheckedDecoder {
    decoder: ws::Decoder,
    seen: Vec<Seen>,
    max: usize,
}

impl CheckedDecoder {
    fn new(max: usize) -> Self {
        CheckedDecoder {
            decoder: ws::Decoder::default(),
            seen: Vec::new(),
            max,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        let (max, seen) = (self.max, &mut self.seen);
        self.decoder.decode(chunk, max, &mut |event| {
            seen.push(ws_event(event, max));
        });
        let held = self.decoder.capacity();
        assert!(held <= ws_capacity(max), "holds {held}");
    }
}

/// The most heap a WebSocket decoder may hold: a line plus its `\r\n`, and
/// a control frame's payload.
fn ws_capacity(max: usize) -> usize {
    grown_capacity(max.saturating_add(2)).saturating_add(grown_capacity(125))
}

/// One decoder event, checked and owned.
fn ws_event(event: ws::Event<'_>, max: usize) -> Seen {
    match event {
        ws::Event::Line(line) => {
            assert!(line.len() <= max, "line of {} over {max}", line.len());
            assert!(std::str::from_utf8(line).is_ok(), "line not UTF-8");
            Seen::Line(line.to_vec())
        }
        ws::Event::TooLong => Seen::TooLong,
        ws::Event::Reply(pong) => {
            assert_eq!(pong[0], 0x8a, "a pong, final, unmasked");
            assert!(pong[1] <= 125 && pong.len() == 2 + usize::from(pong[1]));
            Seen::Reply(pong.to_vec())
        }
        ws::Event::Close { code, .. } => Seen::Close(code),
    }
}

/// The WebSocket decoder (`ws::Decoder`) on arbitrary client bytes, split
/// anywhere: the checks of [`CheckedDecoder`], at most one close and it
/// last, and the same events as in one piece.
pub fn check_ws_decode(data: &[u8]) {
    let split = Split::new(data);
    let mut pieces = CheckedDecoder::new(split.max_line);
    for chunk in &split.chunks {
        pieces.feed(chunk);
    }
    let mut whole = CheckedDecoder::new(split.max_line);
    whole.feed(split.stream);
    assert_eq!(pieces.seen, whole.seen, "{split:?}");
    let closes = pieces
        .seen
        .iter()
        .filter(|e| matches!(e, Seen::Close(_)))
        .count();
    assert!(closes <= 1);
    if closes == 1 {
        assert!(matches!(pieces.seen.last(), Some(Seen::Close(_))));
    }
}

/// Render, then decode: the input's text lines, each sent by a client as
/// masked frames (fragmented where the input says, a ping between
/// fragments), come out of the decoder as the same lines (or too long),
/// in order, whatever the read splits; and each line the server sends
/// (`ws::text_frame`, as the fan-out cache frames it) is one final,
/// unmasked text frame of it.
pub fn check_ws_roundtrip(data: &[u8]) {
    let split = Split::new(data);
    let max = split.max_line;
    let text = String::from_utf8_lossy(split.stream);
    let sizes: Vec<usize> = split.chunks.iter().map(|c| c.len() % 64 + 1).collect();
    let mask = [0x5a, data.len() as u8, 0x0f, 0xf0];
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let bytes = line.as_bytes();
        let size = sizes[n % sizes.len()];
        let mut fragments: Vec<&[u8]> = bytes.chunks(size).collect();
        if fragments.is_empty() {
            fragments.push(&[]);
        }
        let last = fragments.len() - 1;
        // A message is reported too long as soon as its bytes pass the
        // limit plus a `\r\n` (before a ping that follows), or at its end
        // when the line is over the limit.
        let mut sent = 0;
        let mut too_long = false;
        for (i, fragment) in fragments.iter().enumerate() {
            let opcode = if i == 0 { 0x1 } else { 0x0 };
            let fin = if i == last { 0x80 } else { 0 };
            ws::masked_frame(&mut wire, fin | opcode, mask, fragment);
            sent += fragment.len();
            if !too_long && sent > max.saturating_add(2) {
                too_long = true;
                expected.push(Seen::TooLong);
            }
            if i == 0 && last > 0 {
                let ping = &fragment[..fragment.len().min(125)];
                ws::masked_frame(&mut wire, 0x89, mask, ping);
                let mut pong = vec![0x8a, ping.len() as u8];
                pong.extend_from_slice(ping);
                expected.push(Seen::Reply(pong));
            }
        }
        if bytes.len() <= max {
            expected.push(Seen::Line(bytes.to_vec()));
        } else if !too_long {
            expected.push(Seen::TooLong);
        }
        check_server_frame(bytes);
    }
    let mut decoder = CheckedDecoder::new(max);
    let mut rest = wire.as_slice();
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, after) = rest.split_at((size * 7).min(rest.len()));
        decoder.feed(chunk);
        rest = after;
    }
    assert_eq!(decoder.seen, expected);
    assert!(!decoder.decoder.mid_message());
}

/// The frame the server queues for `line` is one final, unmasked text
/// frame carrying it, as a client's frame parser reads it.
fn check_server_frame(line: &[u8]) {
    let mut frame = Vec::new();
    ws::text_frame(line, &mut frame);
    let frame = frame.as_slice();
    let mut cursor = Cursor::new(frame);
    let (header, length) = FrameHeader::parse(&mut cursor)
        .expect("a frame header")
        .expect("a whole header");
    assert!(header.is_final && header.mask.is_none());
    assert_eq!(header.opcode, OpCode::Data(Data::Text));
    let payload = &frame[cursor.position() as usize..];
    assert_eq!(length, payload.len() as u64);
    assert_eq!(payload, line);
}

/// The web address's codec path as the server drives it
/// (`transport::Codec`): an HTTP head, the route's answer, and after an
/// upgrade WebSocket frames, starting with the bytes that came behind the
/// head; or, with byte 1's high bit clear, the line protocol's codec.
/// Lines stay within the limit; what follows a refused or answered head is
/// never decoded; lines the codec encodes come back out of a frame parser.
pub fn check_transport(data: &[u8]) {
    let split = Split::new(data);
    let max = split.max_line;
    let web = flag(data);
    let mut codec = if web { Codec::http() } else { Codec::line() };
    let mut seen = Vec::new();
    let mut chunks = split.chunks.iter().map(|c| c.to_vec()).collect::<Vec<_>>();
    chunks.reverse();
    let mut closed = false;
    while let Some(chunk) = chunks.pop() {
        if closed {
            break;
        }
        let mut answer = None;
        codec.decode(&chunk, max, |input| {
            assert!(answer.is_none(), "input after the head: {input:?}");
            seen.push(match input {
                Input::Line(line) => {
                    assert!(line.len() <= max);
                    Seen::Line(line.to_vec())
                }
                Input::TooLong => Seen::TooLong,
                Input::Request(head) => {
                    let route = match head {
                        Head::Request(request) => WebRules::default().route(request),
                        Head::Refused(status) => Route::Respond(crate::net::http::refusal(*status)),
                    };
                    let status = match &route {
                        Route::Respond(bytes)
                        | Route::Upgrade(bytes)
                        | Route::UpgradeIrc(bytes, _) => bytes[9..12].to_vec(),
                    };
                    answer = Some(route);
                    Seen::Request(String::from_utf8(status).expect("status"))
                }
                Input::Reply(pong) => Seen::Reply(pong.to_vec()),
                Input::Close { code, .. } => {
                    closed = true;
                    Seen::Close(code)
                }
            });
        });
        match answer {
            Some(Route::Upgrade(_) | Route::UpgradeIrc(..)) => {
                let Decoder::Http(reader) = &mut codec.decoder else {
                    panic!("a head from a codec that reads no heads");
                };
                let rest = reader.take_rest();
                codec = Codec::websocket();
                chunks.push(rest);
            }
            // The server answers and closes: nothing more is read.
            Some(Route::Respond(_)) => break,
            None => {}
        }
        let bound = match codec.decoder {
            Decoder::Line(_) => grown_capacity(max.saturating_add(1)),
            Decoder::Http(_) => grown_capacity(MAX_HEAD_BYTES),
            Decoder::WebSocket(_) => ws_capacity(max),
        };
        assert!(codec.capacity() <= bound, "holds {}", codec.capacity());
    }
    for event in &seen {
        if let Seen::Line(line) = event {
            if codec.encoder.is_websocket() {
                check_server_frame(line);
            }
        }
    }
    if !web {
        assert_eq!(seen, framing_model(split.stream, max));
    }
}

/// The PROXY protocol header parser (`net::proxy::parse`), called as the
/// server calls it: on every longer prefix of what has arrived. The answer
/// is "incomplete" until it is decided, then the same for every longer
/// prefix; a header never takes more than its version's limit, nor is a
/// buffer of the server's peek size ever "incomplete"; a source address
/// comes back out of a v1 and a v2 header rendered from it.
pub fn check_proxy_header(data: &[u8]) {
    let split = Split::new(data);
    let stream = split.stream;
    let whole = proxy::parse(stream);
    let mut ends: Vec<usize> = (0..=stream.len().min(160)).collect();
    let mut at = 0;
    for chunk in &split.chunks {
        at += chunk.len();
        ends.push(at);
    }
    let mut decided: Option<(usize, Parse)> = None;
    ends.sort_unstable();
    for end in ends {
        let got = proxy::parse(&stream[..end]);
        match (decided, got) {
            (None, Parse::Incomplete) => {}
            (None, decision) => decided = Some((end, decision)),
            (Some((_, before)), now) => assert_eq!(before, now, "decided, then changed at {end}"),
        }
    }
    if let Some((_, decision)) = decided {
        assert_eq!(decision, whole);
    }
    match whole {
        Parse::Incomplete => {
            let limit = if stream.first() == Some(&b'P') {
                proxy::V1_MAX_BYTES
            } else {
                proxy::V2_MAX_BYTES
            };
            assert!(
                stream.len() < limit,
                "incomplete with {} bytes",
                stream.len()
            );
        }
        Parse::Done { source, consumed } => {
            assert!(proxy::starts_with_header(stream));
            let limit = if stream[0] == b'P' {
                proxy::V1_MAX_BYTES
            } else {
                proxy::V2_MAX_BYTES
            };
            assert!(
                consumed <= stream.len() && consumed <= limit,
                "took {consumed}"
            );
            assert_eq!(proxy::parse(&stream[..consumed]), whole, "the header alone");
            if let Some(source) = source {
                for header in [proxy_v1(source), proxy_v2(source)] {
                    let again = proxy::parse(&header);
                    let expected = Parse::Done {
                        source: Some(source),
                        consumed: header.len(),
                    };
                    assert_eq!(again, expected, "{header:?}");
                }
            }
        }
        Parse::Error(_) => {}
    }
}

/// A PROXY v1 header from `source` (to the same address).
fn proxy_v1(source: SocketAddr) -> Vec<u8> {
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    let (ip, port) = (source.ip(), source.port());
    format!("PROXY {family} {ip} {ip} {port} {port}\r\n").into_bytes()
}

/// A PROXY v2 header from `source` (to the same address).
fn proxy_v2(source: SocketAddr) -> Vec<u8> {
    let mut block = Vec::new();
    let family = match source.ip() {
        IpAddr::V4(ip) => {
            block.extend_from_slice(&ip.octets());
            block.extend_from_slice(&ip.octets());
            0x11
        }
        IpAddr::V6(ip) => {
            block.extend_from_slice(&ip.octets());
            block.extend_from_slice(&ip.octets());
            0x21
        }
    };
    block.extend_from_slice(&source.port().to_be_bytes());
    block.extend_from_slice(&source.port().to_be_bytes());
    let mut header = proxy::V2_SIGNATURE.to_vec();
    header.extend_from_slice(&[0x21, family]);
    header.extend_from_slice(&(block.len() as u16).to_be_bytes());
    header.extend_from_slice(&block);
    header
}
