//! Accepting: new connections on every listener (plain line clients, TLS
//! line clients, the web address, metrics scrapers), socket setup and one
//! admission path, TLS and HTTP handshakes, and the upgrade to a WebSocket.
//!
//! Every chat connection goes the same way: admitted (or refused) on
//! accept, then handshaking until its transport is ready (a TLS handshake,
//! an HTTP upgrade; a plain line client is ready at once), then it joins
//! the chat: counted, connected, logged ([`EventLoop::join`]).

use super::{EventLoop, ListenerKind, FLUSH_EARLY_BYTES};
use crate::chat::ClientId;
use crate::end_reason::EndReason;
use crate::metrics::{Refusal, Standing, Transport};
use crate::net::connection::Connection;
use crate::net::http::{self, Head, Route, WebRules};
use crate::net::irc::IrcState;
use crate::net::tls::{CertStore, TlsSession};
use crate::net::transport::{Codec, Decoder, Stream};
use crate::policy::guard::{self};
use crate::policy::limits::ClientLimits;
use crate::protocol::irc::mask::Subprotocol;
use crate::protocol::{Dialect, Error};
use log::{debug, info, warn};
use mio::net::TcpStream;
use mio::Token;
use std::io::Write;
use std::net::SocketAddr;

/// Said in the clear to a plain client at the TLS line address: one line
/// it can read, then the connection closes.
const PLAIN_LINE_AT_TLS: &[u8] =
    b"! this port speaks TLS: connect with TLS (the example client: --tls), or to the plain port\n";
/// Said to a plain HTTP request at a web address that speaks HTTPS.
const PLAIN_HTTP_AT_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 49\r\n\
Connection: close\r\n\r\n\
this address speaks HTTPS: open it with https://\n";

/// Rejected connections (`! server full`) allowed to linger at once beyond
/// `max_clients`; past that they are closed without a goodbye.
const REJECT_RESERVE: usize = 64;

/// What the handshakes need: the certificate and the web address's rules.
pub(super) struct Transports {
    /// The certificate for new TLS handshakes (line and web); reloaded on
    /// SIGHUP.
    pub(super) certs: Option<CertStore>,
    /// Which origins may open a WebSocket.
    web_rules: WebRules,
    /// Set while a request is decoded when it upgraded its connection; the
    /// codec is switched once the decoder is back in the connection.
    pub(super) upgraded: bool,
}

impl Transports {
    /// With the certificate, if any, and the origins allowed besides the
    /// server's own; `irc`: IRC is served (then also over WebSocket).
    pub(super) fn new(
        certs: Option<CertStore>,
        allowed_origins: Vec<String>,
        irc: bool,
    ) -> Transports {
        Transports {
            web_rules: WebRules {
                allowed_origins,
                tls: certs.is_some(),
                irc,
            },
            certs,
            upgraded: false,
        }
    }
}

/// Caps a client socket's SO_SNDBUF (`bytes`, 0: leave the kernel's
/// autotuning), bounding the kernel memory a client that stops reading can
/// pin; see `--sndbuf-bytes`.
fn cap_send_buffer(socket: &TcpStream, bytes: usize, peer: SocketAddr) {
    if bytes > 0 {
        if let Err(err) = socket2::SockRef::from(socket).set_send_buffer_size(bytes) {
            debug!("{peer}: SO_SNDBUF: {err}");
        }
    }
}

impl EventLoop {
    /// Accepts what waits on every listener (a turn's worth each) and
    /// admits it.
    pub(super) fn accept_connections(&mut self) {
        // Out of `self` while admitting, which needs `&mut self`; nothing
        // on the admission path touches the list (only shutdown does).
        let mut listeners = std::mem::take(&mut self.listeners);
        for listener in &mut listeners {
            let kind = listener.kind;
            listener.accept(self.now, |socket, peer| self.admit(kind, socket, peer));
        }
        self.listeners = listeners;
    }

    /// Where an accepted socket goes: a scraper to the metrics endpoint; a
    /// connection from a trusted proxy aside until its PROXY header names
    /// the client ([`super::proxied`]); any other to [`Self::admit_socket`].
    fn admit(&mut self, kind: ListenerKind, socket: TcpStream, peer: SocketAddr) {
        if kind == ListenerKind::Metrics {
            if let Some(scrapes) = self.scrapes.as_mut() {
                scrapes.admit(socket, peer, self.poll.registry(), self.now);
            }
        } else if self.is_trusted_proxy(peer) {
            self.wait_for_proxy_header(socket, peer, kind);
        } else {
            self.admit_socket(kind, socket, peer);
        }
    }

    /// The one admission path of every chat connection, from `peer` (the
    /// client's real address when a trusted proxy named it): set up,
    /// admitted or refused (per address, and when the server is full), and
    /// inserted: a line client open at once, the others handshaking until
    /// their transport is ready.
    pub(super) fn admit_socket(
        &mut self,
        kind: ListenerKind,
        mut socket: TcpStream,
        peer: SocketAddr,
    ) {
        self.set_up_socket(&socket, peer);
        let id = self.clients.conns.vacant_key();
        // A line client is refused once `--max-clients` are open, and told
        // why while it lingers. One that handshakes first is counted only
        // when it joins; on accept it is refused only past the reserve.
        let handshakes = !matches!(kind, ListenerKind::Line | ListenerKind::Irc);
        let full = if handshakes {
            self.clients.conns.len() >= self.config.max_clients + REJECT_RESERVE
        } else {
            self.open_count >= self.config.max_clients
        };
        let refused = self.admission(id, peer, full);
        let lingering = self.clients.conns.len().saturating_sub(self.open_count);
        if let Some(why) = refused.filter(|_| handshakes || lingering >= REJECT_RESERVE) {
            self.refuse_at_once(kind, &mut socket, peer, why);
            return;
        }
        let Some(stream) = self.stream_for(kind, socket, peer) else {
            self.guard.release(id);
            return;
        };
        let limits = ClientLimits::new(&self.config.flood, self.now);
        let deadline = self.now + self.config.close_timeout;
        let conn = match kind {
            ListenerKind::TlsLine => Connection::handshaking(
                stream,
                Codec::line(),
                peer,
                limits,
                self.now,
                deadline,
                EndReason::TlsHandshakeTimeout,
            ),
            ListenerKind::Web => Connection::handshaking(
                stream,
                Codec::http(),
                peer,
                limits,
                self.now,
                deadline,
                EndReason::RequestHeadTimeout,
            ),
            ListenerKind::TlsIrc => Connection::handshaking(
                stream,
                Codec::line(),
                peer,
                limits,
                self.now,
                deadline,
                EndReason::TlsHandshakeTimeout,
            ),
            ListenerKind::Line | ListenerKind::Irc | ListenerKind::Metrics => {
                Connection::open(stream, Codec::line(), peer, limits, self.now)
            }
        };
        let mut conn = conn;
        if kind.is_irc() {
            conn.irc = Some(Box::new(IrcState::new()));
        }
        let Some(id) = self.insert_connection(conn) else {
            return;
        };
        if let Some(why) = refused {
            self.refuse_lingering(id, why);
            return;
        }
        if handshakes {
            // Its first bytes may already wait.
            self.put_on_read_list(id);
            self.next_timer_check = self.next_timer_check.min(deadline);
            return;
        }
        self.join(id, Transport::Tcp);
        if self.clients.queued_since_flush >= FLUSH_EARLY_BYTES {
            self.flush_dirty();
        }
    }

    /// Sets up an accepted socket: TCP_NODELAY, keepalive when configured,
    /// and the send-buffer cap. Failures are only logged (debug).
    fn set_up_socket(&self, socket: &TcpStream, peer: SocketAddr) {
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

    /// Refuses a connection without a slot: counted, sent a best-effort
    /// goodbye (a line client its refusal line, the plain web address a
    /// `503`; before a TLS handshake there is no way to say why), logged,
    /// and closed when the caller drops the socket.
    fn refuse_at_once(
        &mut self,
        kind: ListenerKind,
        socket: &mut TcpStream,
        peer: SocketAddr,
        why: Refusal,
    ) {
        self.count_refused(None, why);
        let reason = EndReason::Refused(why);
        match kind {
            ListenerKind::Line | ListenerKind::Irc => {
                let refusal = refusal_line(why, kind == ListenerKind::Irc);
                if let Ok(written) = socket.write(&refusal) {
                    self.clients.metrics.bytes_sent += written as u64;
                    self.clients.metrics.lines_sent += u64::from(written == refusal.len());
                }
                if self.logs.allow(peer.ip(), self.now) {
                    info!("{peer}: rejected ({reason})");
                }
                return;
            }
            // Over TLS a plain answer would only be a bad record.
            ListenerKind::Web if self.transports.certs.is_none() => {
                let _ = socket.write(http::UNAVAILABLE);
            }
            _ => {}
        }
        if self.logs.allow(peer.ip(), self.now) {
            let name = if kind == ListenerKind::Web {
                "web"
            } else {
                "TLS"
            };
            info!("{peer}: {name} connection refused ({reason})");
        }
    }

    /// Refuses a line client that has a slot: it gets its refusal line and
    /// closes gracefully, within the close timeout.
    fn refuse_lingering(&mut self, id: ClientId, why: Refusal) {
        let reason = EndReason::Refused(why);
        let deadline = self.now + self.config.close_timeout;
        let conn = &mut self.clients.conns[id];
        let peer = conn.peer();
        if self.logs.allow(peer.ip(), self.now) {
            info!("{peer}: rejected ({reason}, {} clients)", self.open_count);
        }
        conn.close(reason, deadline);
        let refusal = refusal_line(why, conn.irc.is_some());
        conn.output.push(&refusal, &mut self.clients.pool);
        self.clients.metrics.lines_sent += 1;
        self.count_refused(Some(id), why);
        self.next_timer_check = self.next_timer_check.min(deadline);
        self.clients.mark_dirty(id);
    }

    /// The byte layer for a connection accepted on `kind`: TLS with the
    /// current certificate on the TLS line address and on a web address
    /// with a certificate, else plain TCP; `None` when TLS cannot start
    /// (logged).
    fn stream_for(
        &self,
        kind: ListenerKind,
        socket: TcpStream,
        peer: SocketAddr,
    ) -> Option<Stream> {
        let certs = match (kind, &self.transports.certs) {
            (ListenerKind::TlsLine | ListenerKind::Web | ListenerKind::TlsIrc, Some(certs)) => {
                certs
            }
            _ => return Some(Stream::plain(socket)),
        };
        let answer: &'static [u8] = if kind == ListenerKind::Web {
            PLAIN_HTTP_AT_TLS
        } else {
            PLAIN_LINE_AT_TLS
        };
        match TlsSession::new(certs.config()) {
            Ok(session) => Some(Stream::tls(socket, session.with_plain_answer(answer))),
            Err(err) => {
                warn!("{peer}: cannot start TLS: {err}");
                None
            }
        }
    }

    /// Registers a new connection with the poller and inserts it under the
    /// slab key the caller admitted it under (the next vacant one). `None`
    /// when the registry refuses it (logged, the admission released).
    fn insert_connection(&mut self, mut conn: Connection) -> Option<ClientId> {
        let entry = self.clients.conns.vacant_entry();
        let id = entry.key();
        if let Err(err) = conn.register(self.poll.registry(), Token(id)) {
            warn!("{}: cannot register: {err}", conn.peer());
            self.guard.release(id);
            return None;
        }
        super::render::refresh_slots(&mut conn);
        entry.insert(conn);
        Some(id)
    }

    /// Puts a connection on the read list, unless it is on it already.
    fn put_on_read_list(&mut self, id: ClientId) {
        if let Some(conn) = self.clients.conns.get_mut(id) {
            if conn.put_on_read_list() {
                self.reads.ready.push(id);
            }
        }
    }

    /// A connection whose transport is ready joins the chat: counted as a
    /// client over `transport` and connected (welcomed, or asked for the
    /// password), or, when `--max-clients` are already open, told
    /// `! server full` and closed. Whether it joined.
    fn join(&mut self, id: ClientId, transport: Transport) -> bool {
        let Some(peer) = self.clients.conns.get(id).map(|c| c.peer()) else {
            return false;
        };
        self.open_count += 1;
        if self.open_count > self.config.max_clients {
            let others = self.open_count - 1;
            if transport == Transport::WebSocket {
                info!("{peer}: WebSocket rejected, server full ({others} clients)");
            } else if self.logs.allow(peer.ip(), self.now) {
                info!("{peer}: rejected (server full, {others} clients)");
            }
            let full = EndReason::Refused(Refusal::ServerFull);
            self.queue_last_line(&[id], &Error::ServerFull.into(), full);
            self.count_refused(Some(id), Refusal::ServerFull);
            return false;
        }
        if !self.cluster_admits(id) {
            return false;
        }
        self.count_accepted(id, transport);
        // Read it this turn: lines may already wait, and the welcome's flush
        // must not find a reset before they are read.
        self.put_on_read_list(id);
        if self.clients.conns.get(id).is_some_and(|c| c.irc.is_some()) {
            // It enters the chat when it registers (NICK, USER).
            if self.logs.allow(peer.ip(), self.now) {
                info!(
                    "{peer}: connected (IRC{})",
                    if transport == Transport::Tls {
                        " over TLS"
                    } else {
                        ""
                    }
                );
            }
            return true;
        }
        self.chat.connect(id, &mut self.clients);
        self.cluster_joined(id);
        if self.logs.allow(peer.ip(), self.now) {
            match (self.chat.nick(id), transport) {
                (Some(nick), Transport::Tcp) => info!("{peer}: connected as {nick}"),
                (Some(nick), Transport::Tls) => info!("{peer}: connected over TLS as {nick}"),
                (Some(nick), Transport::WebSocket) => {
                    info!("{peer}: connected as {nick} (WebSocket)")
                }
                (None, Transport::Tcp) => info!("{peer}: connected, password required"),
                (None, Transport::Tls) => info!("{peer}: connected over TLS, password required"),
                (None, Transport::WebSocket) => {
                    info!("{peer}: connected (WebSocket), password required")
                }
            }
        }
        true
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
        debug!("{}: TLS handshake done", conn.peer());
        if !matches!(conn.codec.decoder, Decoder::Line(_)) {
            // A web connection goes on to its request head.
            return;
        }
        if conn.finish_handshake() {
            self.join(id, Transport::Tls);
        }
    }

    /// Answers a request head: the page or an error (then the connection
    /// closes), or the upgrade to a WebSocket.
    pub(super) fn run_request(&mut self, id: ClientId, head: &Head) {
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        if !conn.is_handshaking() {
            return;
        }
        let (response, upgrade) = match head {
            Head::Request(request) => match self.transports.web_rules.route(request) {
                Route::Respond(response) => (response, false),
                Route::Upgrade(response) => (response, true),
                Route::UpgradeIrc(response, subprotocol) => {
                    // IRC over WebSocket: an IRC connection from now on.
                    let mut irc = IrcState::new();
                    irc.binary_frames = subprotocol == Subprotocol::Binary;
                    conn.irc = Some(Box::new(irc));
                    (response, true)
                }
            },
            Head::Refused(status) => (http::refusal(*status), false),
        };
        if let Head::Request(request) = head {
            debug!(
                "{}: {} {} -> {}",
                conn.peer(),
                request.method,
                request.path,
                String::from_utf8_lossy(&response[9..12])
            );
        }
        conn.output.push(&response, &mut self.clients.pool);
        if upgrade {
            self.transports.upgraded = true;
        } else {
            // Within its handshake deadline.
            conn.close(EndReason::HttpResponseSent, self.now);
        }
        self.clients.mark_dirty(id);
    }

    /// The upgrade was answered: the connection speaks WebSocket from now
    /// on and joins the chat like a TCP client (or hears `! server full`).
    pub(super) fn start_websocket(&mut self, id: ClientId, rest: &[u8]) {
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        conn.codec = match &conn.irc {
            Some(irc) => Codec::irc_websocket(irc.binary_frames),
            None => Codec::websocket(),
        };
        super::render::refresh_slots(conn);
        if conn.finish_handshake() && self.join(id, Transport::WebSocket) && !rest.is_empty() {
            self.run_input(id, rest);
        }
    }

    /// Counts a connection as a client over `transport`.
    fn count_accepted(&mut self, id: ClientId, transport: Transport) {
        if let Some(conn) = self.clients.conns.get_mut(id) {
            conn.set_standing(Standing::Admitted(transport));
            self.clients.metrics.accepted(transport);
        }
    }

    /// Counts a connection turned away (`None`: closed without a slot).
    fn count_refused(&mut self, id: Option<ClientId>, why: Refusal) {
        if let Some(conn) = id.and_then(|id| self.clients.conns.get_mut(id)) {
            conn.set_standing(Standing::Refused);
        }
        self.clients.metrics.refused(why);
    }

    /// Serves a readiness event on a scrape connection.
    pub(super) fn serve_scrape(&mut self, token: Token) {
        let Some(mut scrapes) = self.scrapes.take() else {
            return;
        };
        scrapes.ready(token, self.poll.registry(), || self.render_metrics());
        self.scrapes = Some(scrapes);
    }
}

/// The line a refused client is sent, as the line dialect writes it (or,
/// for an IRC client, as the IRC dialect does: an `ERROR`).
fn refusal_line(why: Refusal, irc: bool) -> Vec<u8> {
    let line = match why {
        Refusal::ServerFull => Error::ServerFull,
        Refusal::PerAddressLimit => Error::TooManyFromAddress,
    };
    let dialect = if irc { Dialect::Irc } else { Dialect::Line };
    let mut bytes = Vec::new();
    dialect.render(&line.into(), &mut bytes);
    bytes
}
