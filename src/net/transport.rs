//! A connection's transport: how socket bytes become lines and lines become
//! socket bytes, whatever the client speaks.
//!
//! Two layers, so the event loop reads "readable → stream → codec → lines →
//! chat" and "queued bytes → stream → socket" for every kind of client:
//!
//! - the [`Stream`] turns socket bytes into plaintext bytes and queued
//!   plaintext into socket bytes: plain TCP passes them through (a TLS
//!   stream would decrypt and encrypt here);
//! - the [`Codec`] turns plaintext bytes into [`Input`]s (lines, for the
//!   chat) and lines into the bytes queued for the client: the line
//!   protocol passes a line through as it is; the web address reads one
//!   HTTP request head ([`crate::net::http`]) and, after an upgrade, WebSocket
//!   frames ([`crate::net::ws`]), one text message per line.
//!
//! The chat never sees either: it hands the loop complete lines through its
//! `Outbox`, and the loop asks the recipient's codec for the bytes to queue.

use crate::end_reason::EndReason;
use crate::net::framing::{Frame, LineFramer};
use crate::net::http::{Head, HeadReader};
use crate::net::outbuf::{BufferPool, OutputQueue};
use crate::net::tls::TlsSession;
use crate::net::ws;
use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

/// The byte layer of a connection: socket bytes in and out, plaintext to
/// and from the codec. Registered with the poller in place of its socket.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP: plaintext is what the socket carries.
    Plain(TcpStream),
    /// TLS over TCP: records on the socket, plaintext for the codec (see
    /// [`crate::net::tls`]). Boxed, so plain connections stay small.
    Tls(TcpStream, Box<TlsSession>),
}

impl Stream {
    /// A plain TCP stream.
    pub fn plain(socket: TcpStream) -> Self {
        Stream::Plain(socket)
    }

    /// A TLS stream that handshakes with the given session.
    pub fn tls(socket: TcpStream, session: TlsSession) -> Self {
        Stream::Tls(socket, Box::new(session))
    }

    /// The TCP socket underneath.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(socket) | Stream::Tls(socket, _) => socket,
        }
    }

    /// The TLS session, for a TLS stream.
    pub fn tls_session(&mut self) -> Option<&mut TlsSession> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(_, session) => Some(session),
        }
    }

    /// Whether this is a TLS stream whose handshake is not done yet.
    pub fn tls_handshaking(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(_, session) => session.is_handshaking(),
        }
    }

    /// Whether bytes the stream itself made (TLS handshake messages,
    /// encrypted records, `close_notify`) wait for the socket: write
    /// interest is needed even with no plaintext queued.
    pub fn wants_write(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(_, session) => session.wants_write(),
        }
    }

    /// Ends our sending side once everything owed was written (FIN after
    /// the last byte), so the peer reads all of it before the end. A TLS
    /// stream has sent `close_notify` before (see
    /// [`TlsSession::close`]).
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.socket().shutdown(Shutdown::Write)
    }
}

/// Reads plaintext: what the peer sent, decoded from the socket's bytes.
/// `Ok(0)` is the end of the stream; `WouldBlock` means nothing more now.
impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.read(buf),
            Stream::Tls(socket, session) => session.read(socket, buf),
        }
    }
}

/// Writes plaintext queued for the peer. Returns how much of `buf` was
/// taken; the rest stays queued in the connection's output.
impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.write(buf),
            Stream::Tls(socket, session) => session.write(buf, socket),
        }
    }

    /// Writes what the stream itself holds (TLS records); `WouldBlock`
    /// when the socket cannot take it all now.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(socket) => socket.flush(),
            Stream::Tls(socket, session) => session.flush(socket),
        }
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Plain(socket) | Stream::Tls(socket, _) => {
                socket.register(registry, token, interests)
            }
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Plain(socket) | Stream::Tls(socket, _) => {
                socket.reregister(registry, token, interests)
            }
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Plain(socket) | Stream::Tls(socket, _) => socket.deregister(registry),
        }
    }
}

/// One unit of decoded input, handed to the loop in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// A complete line without its terminator. May be empty; may be invalid
    /// UTF-8 (the loop answers that).
    Line(&'a [u8]),
    /// A line passed the limit; the rest of it is discarded as it arrives.
    TooLong,
    /// An HTTP request head (web address, before any upgrade).
    Request(&'a Head),
    /// Bytes to queue for the peer as they are (a WebSocket pong).
    Reply(&'a [u8]),
    /// The connection must end with this WebSocket close status: the peer
    /// closed, or broke the protocol. Nothing more is decoded.
    Close {
        /// The status of the close frame to send.
        code: u16,
        /// Why, for the disconnect log.
        reason: EndReason,
    },
}

/// The framing layer of a connection: a decoder from plaintext bytes to
/// [`Input`]s, and an encoder from lines to the bytes queued for the client.
/// They are apart so the loop can hold the decoder while replies to the same
/// client are encoded.
#[derive(Debug, Default)]
pub struct Codec {
    /// Input side; holds only unfinished input.
    pub decoder: Decoder,
    /// Output side.
    pub encoder: Encoder,
}

impl Codec {
    /// The line protocol (`\n`-terminated lines both ways).
    pub fn line() -> Self {
        Codec::default()
    }

    /// An HTTP request head first (web address); see [`Codec::websocket`].
    pub fn http() -> Self {
        Codec {
            decoder: Decoder::Http(HeadReader::default()),
            encoder: Encoder::Line,
        }
    }

    /// WebSocket after an upgrade: one text message per line.
    pub fn websocket() -> Self {
        Codec {
            decoder: Decoder::WebSocket(ws::Decoder::default()),
            encoder: Encoder::WebSocket(WebSocketOut::default()),
        }
    }

    /// IRC over WebSocket after an upgrade that chose `text.ircv3.net`, or
    /// `binary.ircv3.net` (`binary`: binary messages are lines too, and
    /// lines go out as binary frames).
    pub fn irc_websocket(binary: bool) -> Self {
        let mut decoder = ws::Decoder::default();
        if binary {
            decoder.allow_binary();
        }
        Codec {
            decoder: Decoder::WebSocket(decoder),
            encoder: Encoder::WebSocket(WebSocketOut {
                binary,
                ..WebSocketOut::default()
            }),
        }
    }

    /// Feeds plaintext bytes and calls `on_input` for every complete input
    /// they finish, in order. `max_line` is the line limit in bytes.
    pub fn decode(&mut self, input: &[u8], max_line: usize, on_input: impl FnMut(Input<'_>)) {
        self.decoder.decode(input, max_line, on_input);
    }

    /// Heap bytes held by the codec (unfinished input).
    pub fn capacity(&self) -> usize {
        match &self.decoder {
            Decoder::Line(framer) => framer.capacity(),
            Decoder::Http(head) => head.capacity(),
            Decoder::WebSocket(decoder) => decoder.capacity(),
        }
    }
}

/// The input side of a [`Codec`].
#[derive(Debug)]
pub enum Decoder {
    /// Lines ending with `\n`.
    Line(LineFramer),
    /// One HTTP request head.
    Http(HeadReader),
    /// WebSocket frames from a client. Inline, not boxed: a box per
    /// connection, allocated between the handshake's short-lived buffers,
    /// would pin a heap page for every few connections.
    WebSocket(ws::Decoder),
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::Line(LineFramer::default())
    }
}

impl Decoder {
    /// Whether input stopped inside a line (or a frame or message): the idle
    /// clock then runs from its first byte.
    pub fn mid_line(&self) -> bool {
        match self {
            Decoder::Line(framer) => framer.mid_line(),
            Decoder::Http(_) => false,
            Decoder::WebSocket(decoder) => decoder.mid_message(),
        }
    }

    /// See [`Codec::decode`].
    pub fn decode(&mut self, input: &[u8], max_line: usize, mut on_input: impl FnMut(Input<'_>)) {
        match self {
            Decoder::Line(framer) => framer.feed(input, max_line, |frame| match frame {
                Frame::Line(line) => on_input(Input::Line(line)),
                Frame::TooLong => on_input(Input::TooLong),
            }),
            Decoder::Http(reader) => {
                if let Some(head) = reader.feed(input) {
                    on_input(Input::Request(&head));
                }
            }
            Decoder::WebSocket(decoder) => {
                decoder.decode(input, max_line, &mut |event| match event {
                    ws::Event::Line(line) => on_input(Input::Line(line)),
                    ws::Event::TooLong => on_input(Input::TooLong),
                    ws::Event::Reply(bytes) => on_input(Input::Reply(bytes)),
                    ws::Event::Close { code, error } => on_input(Input::Close {
                        code,
                        reason: match error {
                            None => EndReason::ClosedByPeer,
                            Some(why) => EndReason::WebSocket { code, why },
                        },
                    }),
                })
            }
        }
    }
}

/// The output side of a [`Codec`].
#[derive(Debug, Default)]
pub enum Encoder {
    /// Lines are queued as they are.
    #[default]
    Line,
    /// Each line is one WebSocket text frame (binary for IRC's
    /// `binary.ircv3.net`).
    WebSocket(WebSocketOut),
}

/// Output state of a WebSocket connection.
#[derive(Debug, Default)]
pub struct WebSocketOut {
    /// A close frame was queued: nothing may follow it.
    close_sent: bool,
    /// When the last ping was queued.
    last_ping: Option<Instant>,
    /// Lines go out as binary frames (IRC's `binary.ircv3.net`).
    binary: bool,
}

impl Encoder {
    /// How this encoder carries a line: a fan-out's bytes are cached per
    /// framing (see `server::render`).
    pub fn framing(&self) -> Framing {
        match self {
            Encoder::Line => Framing::Plain,
            Encoder::WebSocket(out) if out.binary => Framing::WebSocketBinary,
            Encoder::WebSocket(_) => Framing::WebSocket,
        }
    }

    /// Whether this is a WebSocket connection.
    pub fn is_websocket(&self) -> bool {
        matches!(self, Encoder::WebSocket(_))
    }

    /// Queues the close frame that ends a WebSocket connection (once); for
    /// the line protocol, nothing. `reason` picks the status (see
    /// [`EndReason::close_code`]).
    pub fn close(&mut self, reason: EndReason, output: &mut OutputQueue, pool: &mut BufferPool) {
        self.close_with(reason.close_code(), output, pool);
    }

    /// Queues a close frame with `code` (once), for a WebSocket connection.
    pub fn close_with(&mut self, code: u16, output: &mut OutputQueue, pool: &mut BufferPool) {
        if let Encoder::WebSocket(out) = self {
            if !std::mem::replace(&mut out.close_sent, true) {
                output.push(&ws::close_frame(code), pool);
            }
        }
    }

    /// A ping frame to send when a WebSocket client has been silent for
    /// `interval` since its last input and our last ping (which is then
    /// now); `None` otherwise, and always for the line protocol.
    pub fn ping_if_silent(
        &mut self,
        now: Instant,
        last_input: Instant,
        interval: Duration,
    ) -> Option<[u8; 2]> {
        let Encoder::WebSocket(out) = self else {
            return None;
        };
        let since = out
            .last_ping
            .map_or(last_input, |ping| ping.max(last_input));
        if out.close_sent || now.saturating_duration_since(since) < interval {
            return None;
        }
        out.last_ping = Some(now);
        Some(ws::ping_frame())
    }
}

/// How a transport carries one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// As it is, ending in `\n`.
    Plain,
    /// As one WebSocket text frame, without its `\n`.
    WebSocket,
    /// As one WebSocket binary frame, without its line end (IRC's
    /// `binary.ircv3.net`; never the line protocol).
    WebSocketBinary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_websocket_costs_little() {
        let codec = std::mem::size_of::<Codec>();
        let decoder = std::mem::size_of::<ws::Decoder>();
        println!("Codec {codec} bytes inline in every connection, WebSocket decoder {decoder}");
        assert!(codec <= 160, "{codec}");
        assert_eq!(
            Codec::websocket().capacity(),
            0,
            "an idle WebSocket holds no heap"
        );
    }
}
