//! WebSocket (RFC 6455) over the loop's own buffers: a streaming decoder of
//! client frames into lines, and the few frames the server sends.
//!
//! tungstenite parses and formats the frame headers; the rest is ours,
//! because the protocol asks for what a message-at-a-time library cannot
//! give: a text message longer than the line limit is answered and then
//! discarded as it arrives, whatever its size, and the connection stays
//! open. So the decoder never holds more than one line (plus a `\r\n`) of a
//! message, validates UTF-8 as the bytes come (failing fast), and keeps
//! nothing at all between messages.
//!
//! Server frames are unmasked, so a text frame is the same bytes for every
//! recipient: a fan-out frames it once (`server::render::LineCache`).

use crate::end_reason::WsViolation;
use std::io::Cursor;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Close status: normal closure (`:quit`, or echoing a peer's close).
pub const CLOSE_NORMAL: u16 = 1000;
/// Close status: the server is going away (shutdown).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close status: a violation of RFC 6455 §5.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close status: a binary message, which the line protocol does not take.
pub const CLOSE_UNSUPPORTED: u16 = 1003;
/// Close status: a text message that is not UTF-8.
pub const CLOSE_INVALID_DATA: u16 = 1007;
/// Close status: the server is full; try again later.
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// What the decoder found in the client's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text message, its one trailing `\n` or `\r\n` dropped.
    Line(&'a [u8]),
    /// A text message passed the line limit; the rest of it is discarded.
    TooLong,
    /// Bytes to send back as they are (a pong answering a ping).
    Reply(&'a [u8]),
    /// The connection must close with this status: the peer closed (its
    /// code echoed) or broke the protocol. Nothing more is decoded.
    Close {
        /// The status for our close frame.
        code: u16,
        /// The protocol rule the peer broke, for the disconnect log;
        /// `None` when the peer closed properly.
        error: Option<WsViolation>,
    },
}

/// The frame being read.
#[derive(Debug)]
struct FrameState {
    kind: FrameKind,
    is_final: bool,
    /// Payload bytes still to come.
    remaining: u64,
    mask: [u8; 4],
    /// Payload bytes already unmasked, modulo 4.
    mask_at: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    /// Text, or a continuation of a text message.
    Text,
    Ping,
    Pong,
    Close,
}

/// Decodes one client's frames into lines. Idle, it holds no heap memory.
#[derive(Debug, Default)]
pub struct Decoder {
    /// A frame header that arrived in pieces (14 bytes at most).
    head: [u8; 14],
    head_len: u8,
    frame: Option<FrameState>,
    /// A text message has begun and its final frame has not arrived.
    in_message: bool,
    /// The message so far, at most the line limit plus a `\r\n`.
    message: Vec<u8>,
    /// The message passed the limit: its remaining bytes are dropped.
    discarding: bool,
    utf8: Utf8Check,
    /// A control frame's payload (125 bytes at most).
    control: Vec<u8>,
    /// A close was decided; everything after it is ignored.
    closed: bool,
    /// Binary messages are lines too (IRC's `binary.ircv3.net`); else a
    /// binary message closes the connection (1003).
    binary_ok: bool,
    /// The message being read is binary: its bytes are not checked as
    /// UTF-8 here (the IRC codec answers a bad line itself).
    in_binary: bool,
}

impl Decoder {
    /// Feeds bytes from the client and calls `on_event` for each event they
    /// complete, in order. `max_line` is the line limit in bytes.
    pub fn decode(
        &mut self,
        mut input: &[u8],
        max_line: usize,
        on_event: &mut impl FnMut(Event<'_>),
    ) {
        while !input.is_empty() && !self.closed {
            let Some(frame) = self.frame.as_mut() else {
                input = self.read_header(input, max_line, on_event);
                continue;
            };
            let n = usize::try_from(frame.remaining)
                .unwrap_or(usize::MAX)
                .min(input.len());
            let (chunk, rest) = input.split_at(n);
            input = rest;
            self.payload(chunk, max_line, on_event);
            if self.frame.as_ref().is_some_and(|f| f.remaining == 0) {
                self.finish_frame(max_line, on_event);
            }
        }
    }

    /// Takes binary messages as lines from now on (IRC over WebSocket's
    /// `binary.ircv3.net`).
    pub fn allow_binary(&mut self) {
        self.binary_ok = true;
    }

    /// Whether input stopped inside a frame or a fragmented message.
    pub fn mid_message(&self) -> bool {
        self.head_len > 0 || self.frame.is_some() || self.in_message
    }

    /// Heap bytes held (an unfinished message or control frame).
    pub fn capacity(&self) -> usize {
        self.message.capacity() + self.control.capacity()
    }

    /// Takes header bytes from `input`; returns what is left of it.
    fn read_header<'a>(
        &mut self,
        input: &'a [u8],
        max_line: usize,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> &'a [u8] {
        let before = usize::from(self.head_len);
        let take = (self.head.len() - before).min(input.len());
        self.head[before..before + take].copy_from_slice(&input[..take]);
        let mut cursor = Cursor::new(&self.head[..before + take]);
        match FrameHeader::parse(&mut cursor) {
            Ok(None) => {
                // At most 14: `take` is bounded by the header's room.
                self.head_len = (before + take) as u8;
                &[]
            }
            Ok(Some((header, length))) => {
                let used = cursor.position() as usize - before;
                self.head_len = 0;
                match self.start_frame(&header, length) {
                    Ok(()) => {
                        if length == 0 {
                            self.finish_frame(max_line, on_event);
                        }
                    }
                    Err((code, reason)) => self.fail(code, reason, on_event),
                }
                &input[used..]
            }
            Err(_) => {
                self.fail(CLOSE_PROTOCOL_ERROR, WsViolation::ReservedOpcode, on_event);
                &[]
            }
        }
    }

    /// Checks a frame header against RFC 6455 §5 and the message state.
    fn start_frame(&mut self, header: &FrameHeader, length: u64) -> Result<(), (u16, WsViolation)> {
        const PROTOCOL: u16 = CLOSE_PROTOCOL_ERROR;
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err((PROTOCOL, WsViolation::ReservedBits));
        }
        let Some(mask) = header.mask else {
            return Err((PROTOCOL, WsViolation::Unmasked));
        };
        if length > i64::MAX as u64 {
            return Err((PROTOCOL, WsViolation::LengthOutOfRange));
        }
        let kind = match header.opcode {
            OpCode::Control(control) => {
                if !header.is_final {
                    return Err((PROTOCOL, WsViolation::FragmentedControl));
                }
                if length > 125 {
                    return Err((PROTOCOL, WsViolation::ControlTooLong));
                }
                match control {
                    Control::Ping => FrameKind::Ping,
                    Control::Pong => FrameKind::Pong,
                    Control::Close => FrameKind::Close,
                    Control::Reserved(_) => return Err((PROTOCOL, WsViolation::ReservedOpcode)),
                }
            }
            OpCode::Data(Data::Continue) => {
                if !self.in_message {
                    return Err((PROTOCOL, WsViolation::ContinuationWithoutMessage));
                }
                FrameKind::Text
            }
            OpCode::Data(Data::Text) => {
                if self.in_message {
                    return Err((PROTOCOL, WsViolation::MessageInsideFragmented));
                }
                self.in_message = true;
                self.in_binary = false;
                self.discarding = false;
                self.utf8 = Utf8Check::default();
                FrameKind::Text
            }
            OpCode::Data(Data::Binary) => {
                if self.in_message {
                    return Err((PROTOCOL, WsViolation::MessageInsideFragmented));
                }
                if !self.binary_ok {
                    return Err((CLOSE_UNSUPPORTED, WsViolation::BinaryMessage));
                }
                self.in_message = true;
                self.in_binary = true;
                self.discarding = false;
                FrameKind::Text
            }
            OpCode::Data(Data::Reserved(_)) => return Err((PROTOCOL, WsViolation::ReservedOpcode)),
        };
        self.frame = Some(FrameState {
            kind,
            is_final: header.is_final,
            remaining: length,
            mask,
            mask_at: 0,
        });
        Ok(())
    }

    /// Unmasks and takes in payload bytes of the current frame.
    fn payload(&mut self, chunk: &[u8], max_line: usize, on_event: &mut impl FnMut(Event<'_>)) {
        let Some(frame) = self.frame.as_mut() else {
            return;
        };
        frame.remaining -= chunk.len() as u64;
        let (kind, mask, mut mask_at) = (frame.kind, frame.mask, usize::from(frame.mask_at));
        let mut plain = [0u8; 512];
        for piece in chunk.chunks(plain.len()) {
            let plain = &mut plain[..piece.len()];
            for (i, (out, byte)) in plain.iter_mut().zip(piece).enumerate() {
                *out = byte ^ mask[(mask_at + i) % 4];
            }
            mask_at = (mask_at + piece.len()) % 4;
            if kind != FrameKind::Text {
                self.control.extend_from_slice(plain);
                continue;
            }
            // Room for the line and the `\r\n` that may end it.
            let room = max_line
                .saturating_add(2)
                .saturating_sub(self.message.len());
            if !self.discarding && plain.len() > room {
                // The limit and a bad byte are reported in the order their
                // bytes come, however the reads split them: the bytes up to
                // the one past the limit are checked first (a fuzzing
                // finding, docs/fuzzing.md).
                let (upto, after) = plain.split_at(room + 1);
                if !self.in_binary && !self.utf8.feed(upto) {
                    self.fail(CLOSE_INVALID_DATA, WsViolation::InvalidUtf8, on_event);
                    return;
                }
                self.message = Vec::new();
                self.discarding = true;
                on_event(Event::TooLong);
                if !self.in_binary && !self.utf8.feed(after) {
                    self.fail(CLOSE_INVALID_DATA, WsViolation::InvalidUtf8, on_event);
                    return;
                }
                continue;
            }
            if !self.in_binary && !self.utf8.feed(plain) {
                self.fail(CLOSE_INVALID_DATA, WsViolation::InvalidUtf8, on_event);
                return;
            }
            if !self.discarding {
                self.message.extend_from_slice(plain);
            }
        }
        if let Some(frame) = self.frame.as_mut() {
            frame.mask_at = mask_at as u8; // below 4
        }
    }

    /// The current frame's payload is complete.
    fn finish_frame(&mut self, max_line: usize, on_event: &mut impl FnMut(Event<'_>)) {
        let Some(frame) = self.frame.take() else {
            return;
        };
        match frame.kind {
            FrameKind::Text => {
                if !frame.is_final {
                    return;
                }
                self.in_message = false;
                if !std::mem::take(&mut self.in_binary) && !self.utf8.is_complete() {
                    self.fail(CLOSE_INVALID_DATA, WsViolation::InvalidUtf8, on_event);
                    return;
                }
                if std::mem::take(&mut self.discarding) {
                    return;
                }
                let message = std::mem::take(&mut self.message);
                let line = message
                    .strip_suffix(b"\r\n")
                    .or_else(|| message.strip_suffix(b"\n"))
                    .unwrap_or(&message);
                if line.len() > max_line {
                    on_event(Event::TooLong);
                } else {
                    on_event(Event::Line(line));
                }
            }
            FrameKind::Ping => {
                let payload = std::mem::take(&mut self.control);
                let mut pong = [0u8; 2 + 125];
                let len = control_frame(Control::Pong, &payload, &mut pong);
                on_event(Event::Reply(&pong[..len]));
            }
            FrameKind::Pong => self.control = Vec::new(),
            FrameKind::Close => {
                let payload = std::mem::take(&mut self.control);
                let (code, error) = match payload.as_slice() {
                    [] => (CLOSE_NORMAL, None),
                    [_] => (CLOSE_PROTOCOL_ERROR, Some(WsViolation::BadCloseFrame)),
                    [high, low, text @ ..] => {
                        let code = u16::from_be_bytes([*high, *low]);
                        if !close_code_allowed(code) {
                            (CLOSE_PROTOCOL_ERROR, Some(WsViolation::BadCloseCode))
                        } else if std::str::from_utf8(text).is_err() {
                            (CLOSE_INVALID_DATA, Some(WsViolation::InvalidUtf8))
                        } else {
                            (code, None)
                        }
                    }
                };
                self.end(code, error, on_event);
            }
        }
    }

    /// Stops decoding and asks for a close with `code`, the peer having
    /// broken the protocol (`why`).
    fn fail(&mut self, code: u16, why: WsViolation, on_event: &mut impl FnMut(Event<'_>)) {
        self.end(code, Some(why), on_event);
    }

    /// Stops decoding and asks for a close with `code`.
    fn end(&mut self, code: u16, error: Option<WsViolation>, on_event: &mut impl FnMut(Event<'_>)) {
        self.closed = true;
        self.frame = None;
        self.message = Vec::new();
        self.control = Vec::new();
        on_event(Event::Close { code, error });
    }
}

/// Whether a peer may send this status in a close frame (RFC 6455 §7.4).
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Writes an unmasked control frame into `out`; returns its length.
fn control_frame(control: Control, payload: &[u8], out: &mut [u8; 127]) -> usize {
    let payload = &payload[..payload.len().min(125)];
    out[0] = 0x80 | u8::from(OpCode::Control(control));
    out[1] = payload.len() as u8;
    out[2..2 + payload.len()].copy_from_slice(payload);
    2 + payload.len()
}

/// Appends one unmasked text frame carrying `payload` to `out`.
pub fn text_frame(payload: &[u8], out: &mut Vec<u8>) {
    data_frame(Data::Text, payload, out);
}

/// The payloads of the unmasked frames in `frames` (as the server wrote
/// them), in order; a frame cut short ends the list.
pub fn payloads(mut frames: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while frames.len() >= 2 {
        let (start, len): (usize, usize) = match frames[1] & 0x7f {
            126 if frames.len() >= 4 => {
                (4, usize::from(u16::from_be_bytes([frames[2], frames[3]])))
            }
            127 if frames.len() >= 10 => {
                let mut len = [0u8; 8];
                len.copy_from_slice(&frames[2..10]);
                (
                    10,
                    usize::try_from(u64::from_be_bytes(len)).unwrap_or(usize::MAX),
                )
            }
            126 | 127 => break,
            n => (2, usize::from(n)),
        };
        let Some(payload) = frames.get(start..start.saturating_add(len)) else {
            break;
        };
        out.push(payload);
        frames = &frames[start + len..];
    }
    out
}

/// Appends one unmasked binary frame carrying `payload` to `out` (IRC's
/// `binary.ircv3.net`).
pub fn binary_frame(payload: &[u8], out: &mut Vec<u8>) {
    data_frame(Data::Binary, payload, out);
}

fn data_frame(data: Data, payload: &[u8], out: &mut Vec<u8>) {
    let header = FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::Data(data),
        mask: None,
    };
    // Writing into a Vec cannot fail.
    let _ = header.format(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Appends one masked frame, as a client sends it: `first` is the frame's
/// first byte (FIN, reserved bits and opcode, e.g. `0x81` for a final text
/// frame), written as given so tests can also build malformed frames. For
/// the load generator and the tests; the server itself never masks.
pub fn masked_frame(out: &mut Vec<u8>, first: u8, mask: [u8; 4], payload: &[u8]) {
    out.push(first);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// A close frame with `code` and no reason.
pub fn close_frame(code: u16) -> [u8; 4] {
    let [high, low] = code.to_be_bytes();
    [
        0x80 | u8::from(OpCode::Control(Control::Close)),
        2,
        high,
        low,
    ]
}

/// An empty ping frame.
pub fn ping_frame() -> [u8; 2] {
    [0x80 | u8::from(OpCode::Control(Control::Ping)), 0]
}

/// Checks UTF-8 across chunk boundaries, failing at the first bad byte.
#[derive(Debug, Default, Clone, Copy)]
struct Utf8Check {
    /// The start of a character whose last bytes have not come yet.
    pending: [u8; 4],
    pending_len: u8,
}

impl Utf8Check {
    /// Takes the next bytes; false once they cannot be UTF-8.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        if self.pending_len > 0 {
            let width = match self.pending[0] {
                0xC2..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let have = usize::from(self.pending_len);
            let take = (width - have).min(bytes.len());
            self.pending[have..have + take].copy_from_slice(&bytes[..take]);
            self.pending_len = (have + take) as u8; // at most 4
            bytes = &bytes[take..];
            match std::str::from_utf8(&self.pending[..usize::from(self.pending_len)]) {
                Ok(_) => self.pending_len = 0,
                Err(err) if err.error_len().is_some() => return false,
                Err(_) => return bytes.is_empty(),
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(err) if err.error_len().is_some() => false,
            Err(err) => {
                let tail = &bytes[err.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8; // at most 3
                true
            }
        }
    }

    /// Whether the bytes so far end on a character boundary.
    fn is_complete(&self) -> bool {
        self.pending_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::end_reason::{EndReason, Refusal};

    #[test]
    fn end_reasons_close_with_these_statuses() {
        assert_eq!(EndReason::Quit.close_code(), CLOSE_NORMAL);
        assert_eq!(EndReason::ServerShutdown.close_code(), CLOSE_GOING_AWAY);
        let full = EndReason::Refused(Refusal::ServerFull);
        assert_eq!(full.close_code(), CLOSE_TRY_AGAIN_LATER);
    }

    /// A masked client frame.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        masked_frame(&mut out, first, [0x12, 0x34, 0x56, 0x78], payload);
        out
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Line(String),
        TooLong,
        Reply(Vec<u8>),
        Close(u16),
    }

    #[test]
    fn binary_messages_are_lines_only_where_allowed_and_unchecked_as_utf8() {
        let mut bytes = client_frame(0x82, b"PRIVMSG #a :\xff\xfe\r\n");
        bytes.extend(client_frame(0x02, b"NICK "));
        bytes.extend(client_frame(0x80, b"bob"));
        bytes.extend(client_frame(0x81, b"text too"));
        bytes.extend(client_frame(0x82, &[b'x'; 20]));
        let mut decoder = Decoder::default();
        decoder.allow_binary();
        let mut lines = Vec::new();
        decoder.decode(&bytes, 16, &mut |event| {
            lines.push(match event {
                Event::Line(line) => line.to_vec(),
                Event::TooLong => b"(too long)".to_vec(),
                other => panic!("{other:?}"),
            })
        });
        let want: [&[u8]; 4] = [
            b"PRIVMSG #a :\xff\xfe",
            b"NICK bob",
            b"text too",
            b"(too long)",
        ];
        assert_eq!(lines, want);
        // Not allowed (the line protocol, text.ircv3.net): 1003.
        let refused = decode_chunks(&[&client_frame(0x82, b"hi")], 16);
        assert_eq!(refused, [Owned::Close(CLOSE_UNSUPPORTED)]);
        let mut frame = Vec::new();
        binary_frame(b"hi", &mut frame);
        assert_eq!(frame, b"\x82\x02hi");
    }

    fn decode_chunks(chunks: &[&[u8]], max: usize) -> Vec<Owned> {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.decode(chunk, max, &mut |event| {
                out.push(match event {
                    Event::Line(l) => Owned::Line(String::from_utf8(l.to_vec()).unwrap()),
                    Event::TooLong => Owned::TooLong,
                    Event::Reply(r) => Owned::Reply(r.to_vec()),
                    Event::Close { code, .. } => Owned::Close(code),
                })
            });
        }
        out
    }

    #[test]
    fn any_split_decodes_the_same() {
        let mut input = client_frame(0x81, b"hello\n");
        input.extend(client_frame(0x01, "h\u{e9}".as_bytes()));
        input.extend(client_frame(0x89, b"p"));
        input.extend(client_frame(0x80, "llo \u{20ac}".as_bytes()));
        input.extend(client_frame(0x81, &[b'x'; 300]));
        input.extend(client_frame(0x81, b"ok\r\n"));
        let whole = decode_chunks(&[&input], 100);
        assert_eq!(
            whole,
            vec![
                Owned::Line("hello".into()),
                Owned::Reply(vec![0x8a, 1, b'p']),
                Owned::Line("h\u{e9}llo \u{20ac}".into()),
                Owned::TooLong,
                Owned::Line("ok".into()),
            ]
        );
        for a in 0..=input.len() {
            for b in (a..=input.len()).step_by(7) {
                let got = decode_chunks(&[&input[..a], &input[a..b], &input[b..]], 100);
                assert_eq!(got, whole, "split at {a} and {b}");
            }
        }
    }

    /// Fuzzing finding (docs/fuzzing.md): a text frame passing the limit
    /// with a bad UTF-8 byte after that point gave "too long, then close"
    /// when read in pieces but only the close when read at once. Now both
    /// say what the bytes say in order, at every split.
    #[test]
    fn limit_and_bad_utf8_are_reported_in_byte_order_at_any_split() {
        for (bad_at, expected) in [
            (150, vec![Owned::TooLong, Owned::Close(1007)]),
            (102, vec![Owned::Close(1007)]),
            (50, vec![Owned::Close(1007)]),
        ] {
            let mut payload = vec![b'a'; 300];
            payload[bad_at] = 0xff;
            let input = client_frame(0x81, &payload);
            for at in 0..=input.len() {
                let got = decode_chunks(&[&input[..at], &input[at..]], 100);
                assert_eq!(got, expected, "bad byte at {bad_at}, split at {at}");
            }
        }
    }

    #[test]
    fn huge_message_is_not_buffered() {
        let mut decoder = Decoder::default();
        let mut head = vec![0x81, 0x80 | 127];
        head.extend_from_slice(&(1u64 << 40).to_be_bytes());
        head.extend_from_slice(&[0, 0, 0, 0]);
        let mut events = 0;
        decoder.decode(&head, 64, &mut |_| events += 1);
        for _ in 0..100 {
            decoder.decode(&[b'a'; 4096], 64, &mut |e| {
                assert_eq!(e, Event::TooLong);
                events += 1;
            });
            assert!(decoder.capacity() <= 128);
        }
        assert_eq!(events, 1);
    }

    #[test]
    fn utf8_is_checked_across_chunks() {
        let mut check = Utf8Check::default();
        let euro = "\u{20ac}".as_bytes();
        assert!(check.feed(&euro[..1]));
        assert!(check.feed(&euro[1..2]));
        assert!(!check.is_complete());
        assert!(check.feed(&euro[2..]));
        assert!(check.is_complete());
        let mut bad = Utf8Check::default();
        assert!(!bad.feed(&[0xe0, 0x80]));
        let mut surrogate = Utf8Check::default();
        assert!(surrogate.feed(&[0xed]));
        assert!(!surrogate.feed(&[0xa0, 0x80]));
    }

    #[test]
    fn violations_close_with_their_status() {
        let unmasked = [0x81, 0x01, b'a'];
        assert_eq!(decode_chunks(&[&unmasked], 10), vec![Owned::Close(1002)]);
        assert_eq!(
            decode_chunks(&[&client_frame(0x82, b"a")], 10),
            vec![Owned::Close(1003)]
        );
        assert_eq!(
            decode_chunks(&[&client_frame(0x81, &[0xff])], 10),
            vec![Owned::Close(1007)]
        );
        assert_eq!(
            decode_chunks(&[&client_frame(0xc1, b"a")], 10),
            vec![Owned::Close(1002)]
        );
        assert_eq!(
            decode_chunks(&[&client_frame(0x09, b"")], 10),
            vec![Owned::Close(1002)]
        );
        assert_eq!(
            decode_chunks(&[&client_frame(0x88, &[0x03, 0xe8])], 10),
            vec![Owned::Close(1000)]
        );
        assert_eq!(
            decode_chunks(&[&client_frame(0x88, &[0x03, 0xed])], 10),
            vec![Owned::Close(1002)]
        );
    }
}
