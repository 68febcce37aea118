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
//!   protocol passes a line through as it is.
//!
//! The chat never sees either: it hands the loop complete lines through its
//! `Outbox`, and the loop asks the recipient's codec for the bytes to queue.

use crate::framing::{Frame, LineFramer};
use crate::tls::TlsSession;
use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::Shutdown;

/// The byte layer of a connection: socket bytes in and out, plaintext to
/// and from the codec. Registered with the poller in place of its socket.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP: plaintext is what the socket carries.
    Plain(TcpStream),
    /// TLS over TCP: records on the socket, plaintext for the codec (see
    /// [`crate::tls`]). Boxed, so plain connections stay small.
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
}

/// The framing layer of a connection: plaintext bytes to [`Input`]s, and
/// lines to the bytes queued for the client.
#[derive(Debug)]
pub enum Codec {
    /// The line protocol: lines end with `\n`.
    Line(LineFramer),
}

impl Default for Codec {
    fn default() -> Self {
        Codec::Line(LineFramer::default())
    }
}

impl Codec {
    /// Feeds plaintext bytes and calls `on_input` for every complete input
    /// they finish, in order. `max_line` is the line limit in bytes.
    pub fn decode(&mut self, input: &[u8], max_line: usize, mut on_input: impl FnMut(Input<'_>)) {
        match self {
            Codec::Line(framer) => framer.feed(input, max_line, |frame| match frame {
                Frame::Line(line) => on_input(Input::Line(line)),
                Frame::TooLong => on_input(Input::TooLong),
            }),
        }
    }

    /// The bytes to queue for one line (which ends in `\n`). A fan-out
    /// calls this once per recipient with the same line; `cache` keeps the
    /// last encoding so every recipient of one kind gets the same bytes,
    /// encoded once.
    pub fn encode<'a>(&self, line: &'a [u8], cache: &'a mut EncodeCache) -> &'a [u8] {
        let _ = cache;
        match self {
            Codec::Line(_) => line,
        }
    }

    /// Heap bytes held by the codec (unfinished input).
    pub fn capacity(&self) -> usize {
        match self {
            Codec::Line(framer) => framer.capacity(),
        }
    }
}

/// The last line encoded for recipients whose codec does not queue lines as
/// they are, so a fan-out encodes its line once and copies the same bytes to
/// each of them.
#[derive(Debug, Default)]
pub struct EncodeCache {}
