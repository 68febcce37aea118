//! Accepting: new connections on every listener (plain line clients, TLS
//! line clients, the web address, metrics scrapers), socket setup and
//! admission, TLS and HTTP handshakes, and the upgrade to a WebSocket.

use super::{EventLoop, Listener, FLUSH_EARLY_BYTES};
use crate::chat::ClientId;
use crate::metrics::{Refusal, Standing, Transport};
use crate::net::connection::{Connection, Phase};
use crate::net::http::{self, Head, Route};
use crate::net::tls::TlsSession;
use crate::net::transport::{Codec, Decoder, Stream};
use crate::policy::guard::{self};
use crate::policy::limits::ClientLimits;
use log::{debug, info, warn};
use mio::{Interest, Token};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// Accepts per loop turn, so a connection storm cannot starve chat.
const ACCEPTS_PER_TURN: usize = 256;

/// How long to wait before accepting again after `accept` failed for lack
/// of descriptors or memory; the backlog is retried, not left to rot.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Rejected connections (`! server full`) allowed to linger at once beyond
/// `max_clients`; past that they are closed without a goodbye.
const REJECT_RESERVE: usize = 64;

/// Caps a client socket's SO_SNDBUF (`bytes`, 0: leave the kernel's
/// autotuning), bounding the kernel memory a client that stops reading can
/// pin; see `--sndbuf-bytes`.
fn cap_send_buffer(socket: &mio::net::TcpStream, bytes: usize, peer: SocketAddr) {
    if bytes > 0 {
        if let Err(err) = socket2::SockRef::from(socket).set_send_buffer_size(bytes) {
            debug!("{peer}: SO_SNDBUF: {err}");
        }
    }
}

impl EventLoop {
    /// Accepts until the backlog is empty, the per-turn cap is reached, or
    /// accepting fails for lack of resources (then it is retried on a timer:
    /// with edge-triggered readiness no new event would come for the
    /// connections already waiting).
    pub(super) fn accept_connections(&mut self, from: Listener) {
        if let Some(retry_at) = self.accept_retry_at {
            if self.now < retry_at {
                return;
            }
            self.accept_retry_at = None;
        }
        for _ in 0..ACCEPTS_PER_TURN {
            let listener = match from {
                Listener::Line => self.listener.as_ref(),
                Listener::Web => self.web_listener.as_ref(),
                Listener::TlsLine => self.tls_listener.as_ref(),
            };
            let Some(listener) = listener else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => {
                    if std::mem::take(&mut self.accept_failing) {
                        info!("accepting connections again");
                    }
                    if self.is_trusted_proxy(peer) {
                        self.wait_for_proxy_header(socket, peer, from);
                    } else {
                        self.admit_socket(from, socket, peer);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    match from {
                        Listener::Line => self.accept_pending = false,
                        Listener::Web => self.web_accept_pending = false,
                        Listener::TlsLine => self.tls_accept_pending = false,
                    }
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
                    if !std::mem::replace(&mut self.accept_failing, true) {
                        warn!(
                            "accept failed: {err}; retrying every {} ms",
                            ACCEPT_RETRY.as_millis()
                        );
                    }
                    self.accept_retry_at = Some(self.now + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// Takes an accepted connection from `peer` (the client's real address
    /// when a trusted proxy named it) onto the listener's path.
    pub(super) fn admit_socket(
        &mut self,
        from: Listener,
        socket: mio::net::TcpStream,
        peer: SocketAddr,
    ) {
        match from {
            Listener::Line => self.add_connection(socket, peer),
            Listener::Web => self.add_web_connection(socket, peer),
            Listener::TlsLine => self.add_tls_connection(socket, peer),
        }
    }

    /// Sets up an accepted socket: TCP_NODELAY, keepalive when configured,
    /// and the send-buffer cap. Failures are only logged (debug).
    fn set_up_socket(&self, socket: &mio::net::TcpStream, peer: SocketAddr) {
        // We batch lines ourselves; Nagle would only add latency.
        if let Err(err) = socket.set_nodelay(true) {
            debug!("{peer}: TCP_NODELAY: {err}");
        }
        if let Some(keepalive) = &self.config.guard.keepalive {
            if let Err(err) = guard::set_keepalive(socket, keepalive) {
                debug!("{peer}: TCP keepalive: {err}");
            }
        }
        cap_send_buffer(socket, self.config.send_buffer_bytes, peer);
    }

    /// Why a new connection from `peer` is turned away, if it is: the
    /// server is `full`, or (asked only when not full) the per-address
    /// guard refuses it. An admitted one is counted by the guard under `id`.
    fn admission(&mut self, id: ClientId, peer: SocketAddr, full: bool) -> Option<Refusal> {
        if full {
            Some(Refusal::ServerFull)
        } else if !self.guard.admit(id, peer.ip()) {
            Some(Refusal::PerAddressLimit)
        } else {
            None
        }
    }

    /// Admission for a connection that handshakes before it counts as a
    /// client (TLS, web): full once the slab holds `--max-clients` plus the
    /// reject reserve. A refused one is counted, sent `goodbye` (best
    /// effort), logged as a `kind` connection refused, and closed when the
    /// caller drops it. The slab key it is admitted under, or `None`.
    fn admit_handshaking(
        &mut self,
        socket: &mut mio::net::TcpStream,
        peer: SocketAddr,
        kind: &str,
        goodbye: Option<&[u8]>,
    ) -> Option<ClientId> {
        let id = self.clients.conns.vacant_key();
        let over = self.clients.conns.len() >= self.config.max_clients + REJECT_RESERVE;
        let Some(why) = self.admission(id, peer, over) else {
            return Some(id);
        };
        self.count_refused(None, why);
        if let Some(goodbye) = goodbye {
            let _ = socket.write(goodbye);
        }
        if self.logs.allow(peer.ip(), self.now) {
            info!(
                "{peer}: {kind} connection refused ({})",
                refusal_reason(why)
            );
        }
        None
    }

    fn add_connection(&mut self, mut socket: mio::net::TcpStream, peer: SocketAddr) {
        self.set_up_socket(&socket, peer);
        let id = self.clients.conns.vacant_key();
        let refused = self.admission(id, peer, self.open_count >= self.config.max_clients);
        let lingering = self.clients.conns.len().saturating_sub(self.open_count);
        if let Some(why) = refused.filter(|_| lingering >= REJECT_RESERVE) {
            // Too many rejections already lingering: a best-effort goodbye.
            self.count_refused(None, why);
            let (refusal, reason) = (refusal_line(why), refusal_reason(why));
            if let Ok(written) = socket.write(refusal) {
                self.clients.metrics.bytes_sent += written as u64;
                self.clients.metrics.lines_sent += u64::from(written == refusal.len());
            }
            if self.logs.allow(peer.ip(), self.now) {
                info!("{peer}: rejected ({reason})");
            }
            return;
        }
        let stream = Stream::plain(socket);
        let Some(id) = self.insert_connection(stream, Codec::default(), peer) else {
            return;
        };
        if let Some(why) = refused {
            let conn = &mut self.clients.conns[id];
            let (refusal, reason) = (refusal_line(why), refusal_reason(why));
            if self.logs.allow(peer.ip(), self.now) {
                info!("{peer}: rejected ({reason}, {} clients)", self.open_count);
            }
            let deadline = self.now + self.config.close_timeout;
            conn.phase = Phase::Closing { deadline };
            conn.end_reason = reason;
            conn.output.push(refusal, &mut self.clients.pool);
            self.clients.metrics.lines_sent += 1;
            self.count_refused(Some(id), why);
            self.next_timer_check = self.next_timer_check.min(deadline);
            self.clients.mark_dirty(id);
            return;
        }
        self.open_count += 1;
        self.count_accepted(id, Transport::Tcp);
        // Read it this turn: lines may already wait, and the welcome's flush
        // must not find a reset before they are read.
        if let Some(conn) = self.clients.conns.get_mut(id) {
            conn.queued_for_read = true;
            self.to_read.push(id);
        }
        self.chat.connect(id, &mut self.clients);
        if self.logs.allow(peer.ip(), self.now) {
            match self.chat.nick(id) {
                Some(nick) => info!("{peer}: connected as {nick}"),
                None => info!("{peer}: connected, password required"),
            }
        }
        if self.clients.queued_since_flush >= FLUSH_EARLY_BYTES {
            self.flush_dirty();
        }
    }

    /// A line client on the TLS address: it handshakes first, within the
    /// close timeout, and joins the chat (counting as a client) once the
    /// handshake is done; see [`Self::after_tls_read`].
    fn add_tls_connection(&mut self, mut socket: mio::net::TcpStream, peer: SocketAddr) {
        self.set_up_socket(&socket, peer);
        // Before a handshake there is no way to say why: just closed.
        let Some(id) = self.admit_handshaking(&mut socket, peer, "TLS", None) else {
            return;
        };
        let Some(stream) = self.tls_stream(socket, peer) else {
            self.guard.release(id);
            return;
        };
        self.add_handshaking(stream, Codec::default(), peer, "TLS handshake timeout");
    }

    /// A TLS stream with the current certificate, or `None` (logged).
    fn tls_stream(&self, socket: mio::net::TcpStream, peer: SocketAddr) -> Option<Stream> {
        let certs = self.certs.as_ref()?;
        match TlsSession::new(certs.config()) {
            Ok(session) => Some(Stream::tls(socket, session)),
            Err(err) => {
                warn!("{peer}: cannot start TLS: {err}");
                None
            }
        }
    }

    /// Registers `stream` for reading and inserts its connection, with flood
    /// limits starting now, under the slab key the caller admitted it
    /// under (the next vacant one). `None` when the registry refuses it
    /// (logged, the admission released).
    fn insert_connection(
        &mut self,
        mut stream: Stream,
        codec: Codec,
        peer: SocketAddr,
    ) -> Option<ClientId> {
        let entry = self.clients.conns.vacant_entry();
        let id = entry.key();
        if let Err(err) = self
            .poll
            .registry()
            .register(&mut stream, Token(id), Interest::READABLE)
        {
            warn!("{peer}: cannot register: {err}");
            self.guard.release(id);
            return None;
        }
        let conn = entry.insert(Connection::new(stream, codec, peer, self.now));
        conn.limits = ClientLimits::new(&self.config.flood, self.now);
        Some(id)
    }

    /// Registers a connection that must finish a handshake (TLS, HTTP)
    /// within the close timeout before it counts as a client.
    fn add_handshaking(
        &mut self,
        stream: Stream,
        codec: Codec,
        peer: SocketAddr,
        timeout_reason: &'static str,
    ) {
        // The caller has admitted it under the slab key this entry gets.
        let Some(id) = self.insert_connection(stream, codec, peer) else {
            return;
        };
        let deadline = self.now + self.config.close_timeout;
        let conn = &mut self.clients.conns[id];
        conn.phase = Phase::Handshake { deadline };
        conn.end_reason = timeout_reason;
        conn.queued_for_read = true;
        self.to_read.push(id);
        self.next_timer_check = self.next_timer_check.min(deadline);
    }

    /// After TLS input: a finished handshake lets a line client into the
    /// chat, and handshake records to answer are flushed this turn.
    pub(super) fn after_tls_read(&mut self, id: ClientId) {
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        let Some(tls) = conn.stream.tls_session() else {
            return;
        };
        let established = tls.take_established();
        if tls.wants_write() || established {
            self.clients.mark_dirty(id);
        }
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        if !established {
            return;
        }
        debug!("{}: TLS handshake done", conn.peer);
        if !matches!(conn.phase, Phase::Handshake { .. })
            || !matches!(conn.codec.decoder, Decoder::Line(_))
        {
            // A web connection goes on to its request head.
            return;
        }
        conn.phase = Phase::Open;
        conn.end_reason = "closed";
        self.open_count += 1;
        let peer = conn.peer;
        if self.open_count > self.config.max_clients {
            if self.logs.allow(peer.ip(), self.now) {
                info!(
                    "{peer}: rejected (server full, {} clients)",
                    self.open_count - 1
                );
            }
            self.queue_last_line(id, b"! server full\n", "server full");
            self.count_refused(Some(id), Refusal::ServerFull);
            return;
        }
        self.count_accepted(id, Transport::Tls);
        self.chat.connect(id, &mut self.clients);
        if self.logs.allow(peer.ip(), self.now) {
            match self.chat.nick(id) {
                Some(nick) => info!("{peer}: connected over TLS as {nick}"),
                None => info!("{peer}: connected over TLS, password required"),
            }
        }
    }

    /// A connection on the web address: it sends an HTTP request head first,
    /// within the close timeout, and counts as a client only once upgraded.
    fn add_web_connection(&mut self, mut socket: mio::net::TcpStream, peer: SocketAddr) {
        self.set_up_socket(&socket, peer);
        // Best effort, and no lingering: a page or upgrade refused.
        // (Over TLS a plain answer would only be a bad record.)
        let goodbye = self.certs.is_none().then_some(http::UNAVAILABLE);
        let Some(id) = self.admit_handshaking(&mut socket, peer, "web", goodbye) else {
            return;
        };
        // With a certificate the web address speaks only TLS (HTTPS, wss).
        let stream = if self.certs.is_some() {
            match self.tls_stream(socket, peer) {
                Some(stream) => stream,
                None => {
                    self.guard.release(id);
                    return;
                }
            }
        } else {
            Stream::plain(socket)
        };
        self.add_handshaking(stream, Codec::http(), peer, "request head timeout");
    }

    /// Answers a request head: the page or an error (then the connection
    /// closes), or the upgrade to a WebSocket.
    pub(super) fn run_request(&mut self, id: ClientId, head: &Head) {
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        let Phase::Handshake { deadline } = conn.phase else {
            return;
        };
        let (response, upgrade) = match head {
            Head::Request(request) => match self.web_rules.route(request) {
                Route::Respond(response) => (response, false),
                Route::Upgrade(response) => (response, true),
            },
            Head::Refused(status) => (http::refusal(*status), false),
        };
        if let Head::Request(request) = head {
            debug!(
                "{}: {} {} -> {}",
                conn.peer,
                request.method,
                request.path,
                String::from_utf8_lossy(&response[9..12])
            );
        }
        conn.output.push(&response, &mut self.clients.pool);
        if upgrade {
            self.upgraded = true;
        } else {
            conn.phase = Phase::Closing { deadline };
            conn.end_reason = "http response sent";
        }
        self.clients.mark_dirty(id);
    }

    /// The upgrade was answered: the connection speaks WebSocket from now
    /// on and joins the chat like a TCP client (or hears `! server full`).
    pub(super) fn start_websocket(&mut self, id: ClientId, rest: &[u8]) {
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        conn.codec = Codec::websocket();
        conn.phase = Phase::Open;
        conn.end_reason = "closed";
        self.open_count += 1;
        if self.open_count > self.config.max_clients {
            info!(
                "{}: WebSocket rejected, server full ({} clients)",
                conn.peer,
                self.open_count - 1
            );
            self.queue_last_line(id, b"! server full\n", "server full");
            self.count_refused(Some(id), Refusal::ServerFull);
            return;
        }
        let peer = conn.peer;
        self.count_accepted(id, Transport::WebSocket);
        self.chat.connect(id, &mut self.clients);
        if self.logs.allow(peer.ip(), self.now) {
            match self.chat.nick(id) {
                Some(nick) => info!("{peer}: connected as {nick} (WebSocket)"),
                None => info!("{peer}: connected (WebSocket), password required"),
            }
        }
        if !rest.is_empty() {
            self.run_input(id, rest);
        }
    }

    /// Counts a connection as a client over `transport`.
    fn count_accepted(&mut self, id: ClientId, transport: Transport) {
        if let Some(conn) = self.clients.conns.get_mut(id) {
            conn.standing = Standing::Admitted(transport);
            self.clients.metrics.accepted(transport);
        }
    }

    /// Counts a connection turned away (`None`: closed without a slot).
    fn count_refused(&mut self, id: Option<ClientId>, why: Refusal) {
        if let Some(conn) = id.and_then(|id| self.clients.conns.get_mut(id)) {
            conn.standing = Standing::Refused;
        }
        self.clients.metrics.refused(why);
    }

    /// Accepts waiting scrapers on the metrics listener.
    pub(super) fn accept_scrapes(&mut self) {
        self.metrics_accept_pending = match self.metrics_endpoint.as_mut() {
            Some(endpoint) => endpoint.accept(self.poll.registry(), self.now),
            None => false,
        };
    }

    /// Serves a readiness event on a scrape connection.
    pub(super) fn serve_scrape(&mut self, token: Token) {
        let Some(mut endpoint) = self.metrics_endpoint.take() else {
            return;
        };
        endpoint.ready(token, self.poll.registry(), || self.render_metrics());
        self.metrics_endpoint = Some(endpoint);
    }
}

/// The line a refused line client is sent.
fn refusal_line(why: Refusal) -> &'static [u8] {
    match why {
        Refusal::ServerFull => b"! server full\n",
        Refusal::PerAddressLimit => b"! too many connections from your address\n",
    }
}

/// Why a connection was refused, as logs and end reasons say it.
fn refusal_reason(why: Refusal) -> &'static str {
    match why {
        Refusal::ServerFull => "server full",
        Refusal::PerAddressLimit => "too many from address",
    }
}
