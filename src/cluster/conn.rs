//! One non-blocking connection to Redis on the loop's `mio::Poll`: bytes
//! queued to send, bytes read and cut into replies, and the reconnect
//! clock. It knows nothing of what the replies mean (the engine keeps the
//! queue of what each awaited reply answers).
//!
//! Registered once for readable and writable: mio is edge-triggered, so a
//! writable edge comes only after a full send buffer drains, and an idle
//! connection costs nothing. A connect in progress finishes on the first
//! writable edge; commands queued before that go out then.

use super::resp::{self, ProtocolError, Reply};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Bytes read from one connection per call before the loop's other work
/// gets its turn; the rest is read on the next turn.
const READ_PER_CALL: usize = 1024 * 1024;
/// The first wait before reconnecting; doubled after each failure up to
/// [`MAX_BACKOFF`], back to this once a reply arrives.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Why a connection ended.
#[derive(Debug)]
pub enum ConnError {
    /// Redis closed it (or was killed, or `CLIENT KILL`ed it).
    Closed,
    /// The socket failed (connect refused, reset, ...).
    Io(io::Error),
    /// Redis sent bytes that are not RESP2.
    Protocol(ProtocolError),
    /// The engine got a reply it did not expect.
    Unexpected(String),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Closed => write!(f, "closed by Redis"),
            ConnError::Io(err) => write!(f, "{err}"),
            ConnError::Protocol(err) => write!(f, "{err}"),
            ConnError::Unexpected(what) => write!(f, "unexpected reply: {what}"),
        }
    }
}

/// One connection and its buffers.
pub struct RedisConn {
    addr: SocketAddr,
    token: Token,
    stream: Option<TcpStream>,
    /// The connect finished (the first writable or readable edge came).
    connected: bool,
    /// Commands queued, from `sent` on not yet with the kernel.
    out: Vec<u8>,
    sent: usize,
    /// Bytes read and not yet a whole reply.
    input: Vec<u8>,
    /// The last read stopped at [`READ_PER_CALL`], not at `WouldBlock`:
    /// no new edge will come, so the next turn reads on.
    read_again: bool,
    backoff: Duration,
    /// When to try connecting again, while there is no socket.
    retry_at: Option<Instant>,
}

impl RedisConn {
    /// A connection to `addr`, not yet started (see [`RedisConn::start`]).
    pub fn new(addr: SocketAddr, token: Token) -> Self {
        RedisConn {
            addr,
            token,
            stream: None,
            connected: false,
            out: Vec::new(),
            sent: 0,
            input: Vec::new(),
            read_again: false,
            backoff: MIN_BACKOFF,
            retry_at: Some(Instant::now()),
        }
    }

    /// This connection's poll token.
    pub fn token(&self) -> Token {
        self.token
    }

    /// Starts connecting (non-blocking). On failure the connection is
    /// scheduled for another try and the error returned.
    pub fn start(&mut self, registry: &Registry, now: Instant) -> io::Result<()> {
        self.retry_at = None;
        let result = TcpStream::connect(self.addr).and_then(|mut stream| {
            registry.register(
                &mut stream,
                self.token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(stream)
        });
        match result {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                self.stream = Some(stream);
                self.connected = false;
                Ok(())
            }
            Err(err) => {
                self.schedule_retry(now);
                Err(err)
            }
        }
    }

    /// Whether a socket exists (connected or connecting).
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Whether a reconnection attempt is due.
    pub fn retry_due(&self, now: Instant) -> bool {
        self.stream.is_none() && self.retry_at.is_some_and(|at| at <= now)
    }

    /// When the next reconnection attempt is due, while closed.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Whether input is left to read without waiting for an edge.
    pub fn read_again(&self) -> bool {
        self.read_again
    }

    /// Bytes queued and not yet sent.
    pub fn unsent(&self) -> usize {
        self.out.len() - self.sent
    }

    /// The send queue, to encode commands into ([`resp::encode`]).
    pub fn queue(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Handles a readiness event (or a turn with input left): finishes the
    /// connect, reads what is there and decodes every whole reply into
    /// `replies`, then sends what is queued.
    pub fn ready(&mut self, replies: &mut Vec<Reply>) -> Result<(), ConnError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        if !self.connected {
            if let Some(err) = stream.take_error().map_err(ConnError::Io)? {
                return Err(ConnError::Io(err));
            }
            match stream.peer_addr() {
                Ok(_) => self.connected = true,
                Err(err) if err.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(err) => return Err(ConnError::Io(err)),
            }
        }
        self.read_again = false;
        let mut read = 0;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => {
                    self.input.extend_from_slice(&chunk[..n]);
                    read += n;
                    if read >= READ_PER_CALL {
                        self.read_again = true;
                        break;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(ConnError::Io(err)),
            }
        }
        let mut at = 0;
        while let Some((reply, used)) =
            resp::decode(&self.input[at..]).map_err(ConnError::Protocol)?
        {
            replies.push(reply);
            at += used;
        }
        self.input.drain(..at);
        if !replies.is_empty() {
            self.backoff = MIN_BACKOFF;
        }
        self.send()
    }

    /// Sends what is queued, as far as the kernel takes it.
    pub fn send(&mut self) -> Result<(), ConnError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        if !self.connected {
            return Ok(());
        }
        while self.sent < self.out.len() {
            match stream.write(&self.out[self.sent..]) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(ConnError::Io(err)),
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        } else if self.sent > 64 * 1024 && self.sent * 2 > self.out.len() {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        Ok(())
    }

    /// Drops the socket and everything queued on it; the next attempt is
    /// due after the backoff.
    pub fn close(&mut self, registry: &Registry, now: Instant) {
        if let Some(mut stream) = self.stream.take() {
            let _ = registry.deregister(&mut stream);
        }
        self.connected = false;
        self.out.clear();
        self.sent = 0;
        self.input.clear();
        self.read_again = false;
        self.schedule_retry(now);
    }

    fn schedule_retry(&mut self, now: Instant) {
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}
