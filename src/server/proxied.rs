//! Connections from a trusted proxy (`--trusted-proxy`) before their PROXY
//! header has arrived: kept aside, with tokens of their own, until the
//! header names the client's real address; then they are admitted like any
//! connection, under that address, so per-address limits, lockouts and logs
//! see the client and not the proxy.
//!
//! The header is read with `MSG_PEEK` and parsed by [`crate::net::proxy::parse`]
//! until it is whole; only then are exactly its bytes taken off the socket.
//! Whatever the client sent after it (a TLS hello, a request, chat lines)
//! stays in the socket for the connection's own transport, so nothing has
//! to be handed over. A header split across segments is peeked again when
//! the rest arrives. A malformed header, a connection that closes, or one
//! that sends no header within the close timeout is closed, that one only.

use super::{EventLoop, ListenerKind};
use crate::net::proxy::{self, Parse};
use log::{debug, info, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};
use slab::Slab;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Instant;

/// Proxied connections allowed to wait for their header at once; a proxy
/// sends it with the connection, so few ever wait. Past it, new ones from
/// proxies are closed (logged).
pub(super) const MAX_WAITING: usize = 4096;

/// One connection waiting for its header.
struct Waiting {
    socket: TcpStream,
    /// The proxy's address.
    peer: SocketAddr,
    /// The listener it came in on: where it goes once the header is read.
    listener: ListenerKind,
    deadline: Instant,
}

/// The connections waiting for a header, and the buffer headers are
/// peeked into.
pub(super) struct ProxyWaits {
    waiting: Slab<Waiting>,
    /// Token of slab key 0.
    first_token: usize,
    peek: Vec<u8>,
}

impl ProxyWaits {
    /// No connection waiting; slab key `k` is polled as token
    /// `first_token + k`.
    pub(super) fn new(first_token: usize) -> Self {
        ProxyWaits {
            waiting: Slab::new(),
            first_token,
            peek: Vec::new(),
        }
    }
}

impl EventLoop {
    /// Whether connections from `peer` must start with a PROXY header.
    pub(super) fn is_trusted_proxy(&self, peer: SocketAddr) -> bool {
        proxy::trusted(&self.config.trusted_proxies, peer.ip())
    }

    /// Keeps a connection from a trusted proxy aside until its header is
    /// read; tries to read it at once (it usually came with the connection).
    pub(super) fn wait_for_proxy_header(
        &mut self,
        mut socket: TcpStream,
        peer: SocketAddr,
        listener: ListenerKind,
    ) {
        let waits = &mut self.proxy_waits;
        if waits.waiting.len() >= MAX_WAITING {
            warn!(
                "{peer}: closed: {MAX_WAITING} proxied connections already wait for a PROXY header"
            );
            return;
        }
        let entry = waits.waiting.vacant_entry();
        let token = Token(waits.first_token + entry.key());
        if let Err(err) = self
            .poll
            .registry()
            .register(&mut socket, token, Interest::READABLE)
        {
            warn!("{peer}: cannot register: {err}");
            return;
        }
        entry.insert(Waiting {
            socket,
            peer,
            listener,
            deadline: self.now + self.config.close_timeout,
        });
        self.next_timer_check = self
            .next_timer_check
            .min(self.now + self.config.close_timeout);
        self.read_proxy_header(token);
    }

    /// A waiting connection is readable: peek at what it sent; once the
    /// header is whole, take it off the socket and admit the connection
    /// under the address it names.
    pub(super) fn read_proxy_header(&mut self, token: Token) {
        let waits = &mut self.proxy_waits;
        let key = token.0 - waits.first_token;
        let Some(waiting) = waits.waiting.get_mut(key) else {
            return;
        };
        if waits.peek.is_empty() {
            waits.peek = vec![0; proxy::V2_MAX_BYTES];
        }
        let peer = waiting.peer;
        let outcome = match waiting.socket.peek(&mut waits.peek) {
            Ok(0) => Err("closed before its PROXY header".to_string()),
            Ok(n) => match proxy::parse(&waits.peek[..n]) {
                Parse::Incomplete => return,
                Parse::Error(why) => Err(format!("bad PROXY header: {why}")),
                Parse::Done { source, consumed } => {
                    match take(&mut waiting.socket, &mut waits.peek[..consumed]) {
                        Ok(()) => Ok(source.unwrap_or(peer)),
                        Err(err) => Err(format!("reading its PROXY header: {err}")),
                    }
                }
            },
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return,
            Err(err) => Err(format!("reading its PROXY header: {err}")),
        };
        let mut waiting = waits.waiting.remove(key);
        let _ = self.poll.registry().deregister(&mut waiting.socket);
        match outcome {
            Ok(client) => {
                debug!("{peer}: PROXY header: client {client}");
                self.admit_socket(waiting.listener, waiting.socket, client);
            }
            Err(why) => {
                if self.logs.allow(peer.ip(), self.now) {
                    info!("{peer}: closed: {why}");
                }
            }
        }
    }

    /// Closes the waiting connections whose header is overdue (all of them
    /// at shutdown); returns the next deadline among the rest.
    pub(super) fn expire_proxy_waits(&mut self, all: bool) -> Option<Instant> {
        let now = self.now;
        let overdue: Vec<usize> = self
            .proxy_waits
            .waiting
            .iter()
            .filter(|(_, waiting)| all || waiting.deadline <= now)
            .map(|(key, _)| key)
            .collect();
        for key in overdue {
            let mut waiting = self.proxy_waits.waiting.remove(key);
            let _ = self.poll.registry().deregister(&mut waiting.socket);
            if !all && self.logs.allow(waiting.peer.ip(), now) {
                info!("{}: closed: no PROXY header in time", waiting.peer);
            }
        }
        self.proxy_waits
            .waiting
            .iter()
            .map(|(_, waiting)| waiting.deadline)
            .min()
    }
}

/// Reads exactly `header.len()` bytes, which a peek has just seen.
fn take(socket: &mut TcpStream, header: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < header.len() {
        match socket.read(&mut header[done..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
