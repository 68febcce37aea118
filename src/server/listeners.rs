//! The listening sockets as one list: each [`Listener`] has its kind, its
//! socket, its poll token and its own accept state (whether connections may
//! wait in its backlog, and when to retry after accepting failed for lack
//! of resources). Adding a listener (IRC, say) adds a [`ListenerKind`] and
//! an entry, not fields; and [`BindError`], [`StartError`]: what
//! [`super::Server::bind`] says when it cannot start.

use crate::chat::history::OpenError;
use log::{info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long to wait before accepting again after `accept` failed for lack
/// of descriptors or memory; the backlog is retried, not left to rot.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// What a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Line clients over plain TCP (`--addr`).
    Line,
    /// Line clients over TLS (`--tls-addr`).
    TlsLine,
    /// The web address (`--web-addr`): the page and WebSocket, over TLS
    /// when the server has a certificate.
    Web,
    /// The `/metrics` endpoint (`--metrics-addr`).
    Metrics,
    /// IRC clients over plain TCP (`--irc-addr`).
    Irc,
    /// IRC clients over TLS (`--irc-tls-addr`).
    TlsIrc,
}

impl ListenerKind {
    /// Its name in messages (`cannot listen on the web address ...`).
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Line => "line address",
            ListenerKind::TlsLine => "TLS line address",
            ListenerKind::Web => "web address",
            ListenerKind::Metrics => "metrics address",
            ListenerKind::Irc => "IRC address",
            ListenerKind::TlsIrc => "TLS IRC address",
        }
    }

    /// Whether its connections speak IRC.
    pub fn is_irc(self) -> bool {
        matches!(self, ListenerKind::Irc | ListenerKind::TlsIrc)
    }

    /// Whether its connections are chat clients (not metrics scrapers).
    pub fn is_chat(self) -> bool {
        self != ListenerKind::Metrics
    }

    /// Connections accepted per loop turn, so a connection storm cannot
    /// starve the chat (or, on the metrics port, hold up a turn).
    fn accepts_per_turn(self) -> usize {
        match self {
            ListenerKind::Metrics => 64,
            _ => 256,
        }
    }
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A listener that could not be bound (or registered with the poller).
#[derive(Debug)]
pub struct BindError {
    /// Which listener.
    pub listener: ListenerKind,
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the system said.
    pub source: io::Error,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot listen on the {} {}: {}",
            self.listener, self.addr, self.source
        )
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Why [`super::Server::bind`] could not start a server.
#[derive(Debug)]
pub enum StartError {
    /// A listener could not be bound.
    Bind(BindError),
    /// The TLS certificate or key is missing, unreadable or does not fit.
    Tls(String),
    /// The history file cannot be used.
    History(OpenError),
    /// The poller (or its waker) could not be set up.
    Poller(io::Error),
    /// The cluster's address is not a Redis this server can use.
    Cluster(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bind(err) => err.fmt(f),
            StartError::Tls(err) => f.write_str(err),
            StartError::History(err) => err.fmt(f),
            StartError::Poller(err) => write!(f, "cannot set up the poller: {err}"),
            StartError::Cluster(err) => f.write_str(err),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Bind(err) => Some(err),
            StartError::Tls(_) | StartError::Cluster(_) => None,
            StartError::History(err) => Some(err),
            StartError::Poller(err) => Some(err),
        }
    }
}

impl From<BindError> for StartError {
    fn from(err: BindError) -> Self {
        StartError::Bind(err)
    }
}

/// For callers that treat every start-up failure as an `io::Error` (the
/// load generator, `?` in tests): the kind is kept where there is one.
impl From<StartError> for io::Error {
    fn from(err: StartError) -> Self {
        let kind = match &err {
            StartError::Bind(bind) => bind.source.kind(),
            StartError::Poller(source) => source.kind(),
            StartError::Tls(_) => io::ErrorKind::InvalidInput,
            StartError::History(_) => io::ErrorKind::Other,
            StartError::Cluster(_) => io::ErrorKind::ConnectionRefused,
        };
        io::Error::new(kind, err)
    }
}

/// One listening socket and its accept state.
#[derive(Debug)]
pub(super) struct Listener {
    /// What it accepts.
    pub(super) kind: ListenerKind,
    socket: TcpListener,
    /// Its poll token.
    pub(super) token: Token,
    /// The address actually bound.
    pub(super) addr: SocketAddr,
    /// Connections may wait in its backlog: readiness said so and the last
    /// round of accepts did not reach `WouldBlock` (edge-triggered
    /// readiness will not say so again).
    pending: bool,
    /// Accepting failed for lack of resources: not before then.
    retry_at: Option<Instant>,
    /// Accepting is failing; logged once, not per retry.
    failing: bool,
}

impl Listener {
    /// Binds `addr` and registers the socket under `token`.
    pub(super) fn bind(
        kind: ListenerKind,
        addr: SocketAddr,
        registry: &Registry,
        token: Token,
    ) -> Result<Listener, BindError> {
        let fail = |source| BindError {
            listener: kind,
            addr,
            source,
        };
        let mut socket = TcpListener::bind(addr).map_err(fail)?;
        registry
            .register(&mut socket, token, Interest::READABLE)
            .map_err(fail)?;
        Ok(Listener {
            kind,
            addr: socket.local_addr().map_err(fail)?,
            socket,
            token,
            pending: false,
            retry_at: None,
            failing: false,
        })
    }

    /// The poller said connections wait.
    pub(super) fn readable(&mut self) {
        self.pending = true;
    }

    /// When it wants to accept next: `None` when nothing waits in its
    /// backlog, `now` when connections wait, the retry time after accepting
    /// failed for lack of resources.
    pub(super) fn accept_due(&self, now: Instant) -> Option<Instant> {
        self.pending.then(|| self.retry_at.unwrap_or(now))
    }

    /// Accepts waiting connections, at most a turn's worth, handing each to
    /// `admit`. Stops at `WouldBlock` (nothing waits), at the per-turn cap
    /// (more may wait: still pending), or when accepting fails for lack of
    /// resources (then retried on a timer: with edge-triggered readiness no
    /// new event would come for the connections already waiting).
    pub(super) fn accept(&mut self, now: Instant, mut admit: impl FnMut(TcpStream, SocketAddr)) {
        if !self.pending {
            return;
        }
        if let Some(retry_at) = self.retry_at {
            if now < retry_at {
                return;
            }
            self.retry_at = None;
        }
        for _ in 0..self.kind.accepts_per_turn() {
            match self.socket.accept() {
                Ok((socket, peer)) => {
                    if std::mem::take(&mut self.failing) {
                        info!("accepting connections again on the {}", self.kind);
                    }
                    admit(socket, peer);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.pending = false;
                    return;
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(err) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: keep serving the
                    // clients we have and try the backlog again shortly.
                    if !std::mem::replace(&mut self.failing, true) {
                        warn!(
                            "accept failed on the {}: {err}; retrying every {} ms",
                            self.kind,
                            ACCEPT_RETRY.as_millis()
                        );
                    }
                    self.retry_at = Some(now + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// Stops listening: the socket leaves the poller (and closes when
    /// dropped).
    pub(super) fn close(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_errors_name_the_listener_and_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let poll = mio::Poll::new().unwrap();
        let err = Listener::bind(ListenerKind::Web, addr, poll.registry(), Token(0)).unwrap_err();
        assert_eq!(err.listener, ListenerKind::Web);
        assert_eq!(err.addr, addr);
        assert_eq!(err.source.kind(), io::ErrorKind::AddrInUse);
        let text = StartError::from(err).to_string();
        assert!(
            text.starts_with(&format!("cannot listen on the web address {addr}: ")),
            "{text}"
        );
    }

    #[test]
    fn accepting_stops_at_would_block_and_waits_for_the_next_edge() {
        let poll = mio::Poll::new().unwrap();
        let any = "127.0.0.1:0".parse().unwrap();
        let mut listener =
            Listener::bind(ListenerKind::Line, any, poll.registry(), Token(0)).unwrap();
        let _a = std::net::TcpStream::connect(listener.addr).unwrap();
        let _b = std::net::TcpStream::connect(listener.addr).unwrap();
        let now = Instant::now();
        let mut peers = Vec::new();
        // Not readable yet: nothing is accepted.
        listener.accept(now, |_, peer| peers.push(peer));
        assert!(peers.is_empty());
        assert_eq!(listener.accept_due(now), None);
        listener.readable();
        assert_eq!(listener.accept_due(now), Some(now));
        // Over loopback both are in the backlog once connect returned; the
        // loop only guards against a slow kernel, bounded by a deadline.
        let deadline = now + Duration::from_secs(10);
        while peers.len() < 2 && Instant::now() < deadline {
            listener.readable();
            listener.accept(Instant::now(), |_, peer| peers.push(peer));
        }
        assert_eq!(peers.len(), 2);
        assert_eq!(listener.accept_due(now), None, "WouldBlock ends the round");
    }
}
