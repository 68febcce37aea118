//! The event loop: one thread, one `mio::Poll`, a slab of connections.
//!
//! Each turn of the loop:
//! 1. waits for readiness (not at all while some client still has unread
//!    input, see below);
//! 2. accepts new connections and notes which sockets became readable or
//!    writable;
//! 3. reads each readable socket, at most `read_budget_bytes` per turn, and
//!    runs the complete lines. mio is edge-triggered: a socket not read to
//!    the end gets no new event, so it stays on the read list and is served
//!    again next turn, after everyone else had their share;
//! 4. announces clients cut off during the turn (slow consumers, errors);
//! 5. writes each client's queued output once, so every line queued for it
//!    in this turn leaves in one syscall; WRITABLE interest is registered
//!    only for clients whose socket did not take everything;
//! 6. drops the connections that ended. Nothing is freed in the middle of a
//!    turn, so no event or fan-out ever reaches a reused slab slot.
//!
//! Between 4 and 5 the turn's accepted chat lines go to the history writer
//! as one batch ([`crate::history`]); its commits wake the loop through the
//! same waker as a shutdown request, and release replies held for them.

use crate::chat::{Chat, ChatEvent, ClientId, Outbox, Outcome};
use crate::config::SHUTDOWN_GRACE;
use crate::connection::{BufferPool, Connection, Phase};
use crate::guard::{self, AuthFailure, Guard};
use crate::history::{HistoryLink, Tails};
use crate::http::{self, Head, Route, WebRules};
use crate::limits::{self, ClientLimits, Departures, Held, SoftLimit};
use crate::logsum::LogSummary;
use crate::metrics::{
    self, HistorySnapshot, Metrics, Refusal, SlowLimit, Snapshot, Standing, Transport,
};
use crate::metrics_http::{self, Endpoint};
use crate::protocol::{self, Command};
use crate::tls::{CertStore, TlsSession};
use crate::transport::{Codec, Decoder, EncodeCache, Input, Stream};
use crate::Config;
use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connection tokens are slab keys; these sit above any key.
const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const WEB_LISTENER: Token = Token(usize::MAX - 3);
const TLS_LISTENER: Token = Token(usize::MAX - 4);
/// The metrics listener; its scrape connections take the tokens from
/// [`FIRST_SCRAPE`] up to just below it.
const METRICS: Token = Token(usize::MAX - 5);
const FIRST_SCRAPE: usize = usize::MAX - 5 - metrics_http::MAX_SCRAPES;

/// Accepts per loop turn, so a connection storm cannot starve chat.
const ACCEPTS_PER_TURN: usize = 256;
/// How long to wait before accepting again after `accept` failed for lack
/// of descriptors or memory; the backlog is retried, not left to rot.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Rejected connections (`! server full`) allowed to linger at once beyond
/// `max_clients`; past that they are closed without a goodbye.
const REJECT_RESERVE: usize = 64;
/// Output queued in one turn past which it is written out before the turn
/// goes on, so a fan-out storm costs this much memory, not the whole storm.
const FLUSH_EARLY_BYTES: usize = 8 * 1024 * 1024;
/// Largest read from a client under a line rate limit: lines past its
/// tokens wait in the connection, so this bounds what they hold (at most
/// 2.5 times this, for one-byte lines).
const FLOOD_READ_BYTES: usize = 16 * 1024;
/// Events taken from the poller per turn.
const EVENTS_PER_TURN: usize = 1024;
/// How often the idle timeout is checked; closing deadlines are checked when
/// they fall due.
const TIMER_TICK: Duration = Duration::from_secs(1);

/// What a connection's read this turn left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadState {
    /// Read to the end: the next input raises a new readiness event.
    Done,
    /// Input or held-back lines are left: serve it again next turn.
    Again,
    /// Flood control holds it back until then.
    WaitUntil(Instant),
}

/// Which listener a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listener {
    /// Plain TCP line clients.
    Line,
    /// The web address: HTTP and WebSocket (over TLS with a certificate).
    Web,
    /// TLS line clients.
    TlsLine,
}

/// A bound chat server, ready to [`run`](Server::run).
pub struct Server {
    config: Config,
    poll: Poll,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    /// The web address's listener (page and WebSocket), unless turned off.
    web_listener: Option<TcpListener>,
    /// The TLS line listener and the certificate (also the web address's,
    /// which then speaks only TLS), when configured.
    tls: Option<(TcpListener, CertStore)>,
    tls_addr: Option<SocketAddr>,
    shutdown: ShutdownHandle,
    history: HistoryLink,
    tails: Tails,
    metrics: Option<Endpoint>,
}

/// Stops a running server from any thread; cheap to clone.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    requested: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    /// Asks the server to shut down: it stops accepting, says
    /// `* server shutting down` to every client, closes them all within the
    /// close timeout or [`crate::config::SHUTDOWN_GRACE`], whichever is
    /// shorter, and [`Server::run`] returns.
    pub fn shutdown(&self) {
        self.requested.store(true, Ordering::SeqCst);
        if let Err(err) = self.waker.wake() {
            warn!("could not wake the server for shutdown: {err}");
        }
    }
}

/// A server running on its own thread (see [`Server::spawn`]). Dropping it
/// shuts the server down and waits for it.
pub struct RunningServer {
    addr: SocketAddr,
    web_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    shutdown: ShutdownHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The web address (page and WebSocket), unless turned off.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web_addr
    }

    /// The TLS line address, when the server has a certificate.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// A handle that stops the server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// The address `/metrics` is served on, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Shuts the server down and waits for its thread to finish.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown.shutdown();
        self.join()
    }

    fn join(&mut self) -> io::Result<()> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("server thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown.shutdown();
            let _ = self.join();
        }
    }
}

impl Server {
    /// Binds the listening socket. Port 0 picks a free port; see
    /// [`local_addr`](Server::local_addr).
    pub fn bind(config: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let store = CertStore::load(cert, key)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let mut listener = TcpListener::bind(config.tls_addr)?;
                poll.registry()
                    .register(&mut listener, TLS_LISTENER, Interest::READABLE)?;
                Some((listener, store))
            }
            (None, None) => None,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "TLS needs both a certificate and a key",
                ))
            }
        };
        let tls_addr = match &tls {
            Some((listener, _)) => Some(listener.local_addr()?),
            None => None,
        };
        let listener = if config.plain || tls.is_none() {
            let mut listener = TcpListener::bind(config.addr)?;
            poll.registry()
                .register(&mut listener, LISTENER, Interest::READABLE)?;
            Some(listener)
        } else {
            None
        };
        let local_addr = match (&listener, tls_addr) {
            (Some(listener), _) => listener.local_addr()?,
            (None, Some(addr)) => addr,
            (None, None) => unreachable!("a plain listener is bound when TLS is not"),
        };
        let web_listener = match config.web_addr {
            Some(addr) => {
                let mut web = TcpListener::bind(addr)?;
                poll.registry()
                    .register(&mut web, WEB_LISTENER, Interest::READABLE)?;
                Some(web)
            }
            None => None,
        };
        let waker = Waker::new(poll.registry(), WAKER)?;
        let metrics = match config.metrics_addr {
            Some(addr) => Some(Endpoint::bind(
                addr,
                poll.registry(),
                METRICS,
                FIRST_SCRAPE,
                config.close_timeout,
            )?),
            None => None,
        };
        let shutdown = ShutdownHandle {
            requested: Arc::new(AtomicBool::new(false)),
            waker: Arc::new(waker),
        };
        // mio allows one waker per poller: the history writer shares it.
        let (history, tails) = HistoryLink::start(&config.history, shutdown.waker.clone())
            .map_err(crate::history::into_io)?;
        Ok(Server {
            config,
            poll,
            listener,
            local_addr,
            web_listener,
            tls,
            tls_addr,
            shutdown,
            history,
            tails,
            metrics,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The TLS line address actually bound, when the server has a
    /// certificate.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The web address actually bound (page and WebSocket), unless off.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web_listener
            .as_ref()
            .and_then(|web| web.local_addr().ok())
    }

    /// A handle to stop the server from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// The address `/metrics` is served on, when
    /// [`Config::metrics_addr`] asked for it.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(Endpoint::local_addr)
    }

    /// Runs the event loop on this thread until shutdown. Returns an error
    /// only if the poller itself fails; client errors end only that client.
    pub fn run(self) -> io::Result<()> {
        EventLoop::new(self)?.run()
    }

    /// Runs the event loop on a new thread.
    pub fn spawn(self) -> io::Result<RunningServer> {
        let addr = self.local_addr;
        let web_addr = self.web_addr();
        let tls_addr = self.tls_addr;
        let metrics_addr = self.metrics_addr();
        let shutdown = self.shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("loopchat".into())
            .spawn(move || self.run())?;
        Ok(RunningServer {
            addr,
            web_addr,
            tls_addr,
            metrics_addr,
            shutdown,
            thread: Some(thread),
        })
    }
}

/// The connections and everything needed to queue output to them; the chat
/// state writes through this as its [`Outbox`].
struct Clients {
    conns: Slab<Connection>,
    /// Connections with output queued this turn, each once.
    dirty: Vec<ClientId>,
    /// Connections that left and must still leave the chat, with the reason
    /// their room is told; announced a work budget's worth per turn.
    departures: Departures,
    /// Open connections that died since the loop last counted them.
    left_open: usize,
    /// Connections that ended this turn, dropped at its end.
    dead: Vec<ClientId>,
    pool: BufferPool,
    /// The last line encoded for a non-line codec, so a fan-out encodes once.
    encoded: EncodeCache,
    /// Bytes queued since the last flush; a storm (joins, leaves, a burst
    /// of short lines to a big room) is flushed early past
    /// [`FLUSH_EARLY_BYTES`] rather than held whole in memory.
    queued_since_flush: usize,
    max_outbuf_bytes: usize,
    /// The client whose command is running: lines to it are replies, held
    /// while it has uncommitted history lines.
    replying_to: Option<ClientId>,
    /// History batches committed so far (see [`HistoryLink::acked`]).
    history_acked: u64,
    /// Connections with held output, released as batches are committed.
    held: Vec<ClientId>,
    /// Bytes held for all clients together (see [`HeldOutput`]): output
    /// memory as real as the pool's, so it counts toward
    /// `max_output_total_bytes`.
    held_bytes: usize,
    /// Bound on `pool.lent_bytes()`, the output memory of all clients; 0: none.
    max_output_total_bytes: usize,
    soft_outbuf: SoftLimit,
    /// Output bytes queued since the client being read began its turn: the
    /// work its lines caused, held against `work_budget_bytes`.
    work: usize,
    /// The loop turn's clock.
    now: Instant,
    /// Counters, bumped where things happen; read only when scraped.
    metrics: Metrics,
}

impl Outbox for Clients {
    fn send(&mut self, to: ClientId, line: &[u8]) {
        self.queue(to, line, true);
    }

    fn note(&mut self, event: ChatEvent) {
        match event {
            ChatEvent::RoomLine { recipients } => {
                self.metrics.room_lines += 1;
                self.metrics.fanout.observe(recipients as u64);
            }
            ChatEvent::PrivateMessage => self.metrics.private_messages += 1,
            ChatEvent::AuthFailure => self.metrics.auth_failures += 1,
        }
    }
}

impl Clients {
    /// Queues a line (`encode`: through the recipient's codec) or bytes
    /// already encoded for it (a WebSocket pong), under the output limit.
    fn queue(&mut self, to: ClientId, line: &[u8], encode: bool) {
        self.work += line.len();
        let Some(conn) = self.conns.get_mut(to) else {
            return;
        };
        if conn.phase != Phase::Open || conn.write_failed {
            return;
        }
        // Crash safety: this client must not see the answer to a later
        // command before its earlier lines are on disk (see
        // [`crate::history`]); what follows a held line is held too.
        let reply_to_uncommitted =
            self.replying_to == Some(to) && conn.history_mark > self.history_acked;
        let hold = reply_to_uncommitted || !conn.held.is_empty();
        if conn.output.len() + conn.held.len() + line.len() > self.max_outbuf_bytes {
            // Not slow, perhaps, only busy: the queue may have grown within
            // this turn. Give the socket one chance to take it; a write
            // error is left for the flush to find.
            if let Ok(written) = conn.write_output() {
                self.metrics.bytes_sent += written as u64;
            }
        }
        if conn.output.len() + conn.held.len() + line.len() > self.max_outbuf_bytes {
            // Cut off now, inside the fan-out: a stuck client's write event
            // may never come.
            warn!(
                "{}: cut off, more than {} bytes of output queued (too slow)",
                conn.peer, self.max_outbuf_bytes
            );
            self.metrics.cut_off(SlowLimit::Queue);
            self.cut_off(to);
            return;
        }
        let bytes = if encode {
            self.metrics.lines_sent += 1;
            conn.codec.encode(line, &mut self.encoded)
        } else {
            line
        };
        if hold {
            if conn.held.is_empty() {
                self.held.push(to);
            }
            let mark = if reply_to_uncommitted {
                conn.history_mark
            } else {
                0
            };
            conn.held.push(mark, bytes, &mut self.held_bytes);
            self.check_global_bound();
            return;
        }
        conn.output.push(bytes, &mut self.pool);
        self.soft_outbuf
            .observe(&mut conn.limits.soft_since, conn.output.len(), self.now);
        self.queued_since_flush += bytes.len();
        self.mark_dirty(to);
        self.check_global_bound();
    }

    /// Output memory of all clients: queued for their sockets (the pool's
    /// buffers) and held until their lines are committed.
    fn output_total(&self) -> usize {
        self.pool.lent_bytes() + self.held_bytes
    }

    fn check_global_bound(&mut self) {
        if self.max_output_total_bytes > 0 && self.output_total() > self.max_output_total_bytes {
            self.enforce_global_bound();
        }
    }

    /// Cuts a client off as a slow consumer: it gets nothing more, and its
    /// room is told `(too slow)` (a closing connection is simply dropped).
    fn cut_off(&mut self, id: ClientId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        match conn.phase {
            Phase::Dead => {}
            Phase::Open => {
                self.metrics.bytes_discarded += conn.output.len() as u64;
                conn.output.discard(&mut self.pool);
                conn.held.clear(&mut self.held_bytes);
                conn.phase = Phase::Dead;
                conn.end_reason = "too slow";
                self.departures.push(id, Some("too slow"));
                self.left_open += 1;
                self.dead.push(id);
            }
            _ => self.kill(id, "too slow"),
        }
    }

    /// The output memory of all clients together (queued and held for
    /// history) passed `max_output_total_bytes`: cut off the clients with
    /// the most output, queued plus held, until it is a margin below. Each
    /// gets one write first, so a reader that was only busy drains and
    /// keeps its place; held output cannot be written before its commit,
    /// so it stays counted.
    fn enforce_global_bound(&mut self) {
        let bound = self.max_output_total_bytes;
        let target = limits::eviction_target(bound);
        let holders = self
            .conns
            .iter()
            .filter(|(_, conn)| {
                conn.phase != Phase::Dead && (conn.output.capacity() > 0 || !conn.held.is_empty())
            })
            .map(|(id, conn)| (conn.output.len() + conn.held.len(), id))
            .collect();
        for id in limits::biggest_first(holders) {
            if self.output_total() <= target {
                return;
            }
            let conn = &mut self.conns[id];
            if !conn.write_failed {
                let _ = conn.write_output();
            }
            if conn.output.is_empty() && conn.held.is_empty() && !conn.write_failed {
                conn.output.release(&mut self.pool);
                continue;
            }
            warn!(
                "{}: cut off, {} bytes of output queued ({} of them held for history) \
                 when all clients together passed {} (too slow)",
                conn.peer,
                conn.output.len() + conn.held.len(),
                conn.held.len(),
                bound
            );
            self.metrics.cut_off(SlowLimit::Global);
            self.cut_off(id);
        }
    }

    fn mark_dirty(&mut self, id: ClientId) {
        if let Some(conn) = self.conns.get_mut(id) {
            if !conn.queued_for_flush {
                conn.queued_for_flush = true;
                self.dirty.push(id);
            }
        }
    }

    /// Ends a connection at once (error, reset): it leaves the chat silently
    /// at the end of this step and is dropped at the end of the turn.
    /// A connection already closing keeps the reason it is closing for.
    fn kill(&mut self, id: ClientId, reason: &'static str) {
        if let Some(conn) = self.conns.get_mut(id) {
            if conn.phase != Phase::Dead {
                let was_open = conn.phase == Phase::Open;
                conn.phase = Phase::Dead;
                if was_open {
                    conn.end_reason = reason;
                }
                self.metrics.bytes_discarded += conn.output.len() as u64;
                conn.output.discard(&mut self.pool);
                conn.held.clear(&mut self.held_bytes);
                self.dead.push(id);
                if was_open {
                    self.departures.push(id, None);
                    self.left_open += 1;
                }
            }
        }
    }
}

/// The running loop's state.
struct EventLoop {
    config: Config,
    poll: Poll,
    listener: Option<TcpListener>,
    /// The web address's listener; see [`crate::http`].
    web_listener: Option<TcpListener>,
    /// The web listener has connections waiting.
    web_accept_pending: bool,
    /// Which origins may open a WebSocket.
    web_rules: WebRules,
    /// Set while a request is decoded when it upgraded its connection; the
    /// codec is switched once the decoder is back in the connection.
    upgraded: bool,
    /// The TLS line listener, when configured.
    tls_listener: Option<TcpListener>,
    /// The certificate for new TLS handshakes (line and web); reloaded on
    /// SIGHUP.
    certs: Option<CertStore>,
    /// The TLS listener has connections waiting.
    tls_accept_pending: bool,
    shutdown: ShutdownHandle,
    /// Kept alive so signal handlers stay registered; `None` when the server
    /// does not handle signals.
    signals: Option<signal_hook_mio::v1_0::Signals>,
    clients: Clients,
    chat: Chat,
    /// The history writer's end in the loop.
    history: HistoryLink,
    /// Connections not read while the history writer is behind; back on
    /// the read list after its next commit.
    parked: Vec<ClientId>,
    /// Per-address connection counts and password lockouts.
    guard: Guard,
    /// Which connect/disconnect lines are logged, and the summaries of
    /// those left out.
    logs: LogSummary,
    /// The `/metrics` listener and its scrapes, when configured.
    metrics_endpoint: Option<Endpoint>,
    /// Whether the last round of scrape accepts stopped at its cap.
    metrics_accept_pending: bool,
    /// Connections with unread input: readable this turn, or left over from
    /// an earlier turn when they used up their read budget.
    to_read: Vec<ClientId>,
    /// Connections with unread input held back by flood control until their
    /// `limits.wake_at`; they are on no other list meanwhile.
    throttled: Vec<ClientId>,
    /// Connections in `Open` phase, authenticated or not: what
    /// `max_clients` counts.
    open_count: usize,
    /// Shared read buffer: every read lands here, so idle connections need
    /// no input buffer of their own.
    scratch: Vec<u8>,
    /// A held-back line being run (see [`ClientLimits::deferred`]).
    held_line: Vec<u8>,
    /// When accepting failed for lack of resources, when to try again.
    accept_retry_at: Option<Instant>,
    /// Whether the last accept round stopped before the backlog was empty.
    accept_pending: bool,
    /// Accepting is failing for lack of resources; logged once, not per retry.
    accept_failing: bool,
    /// Set once shutdown began; the loop ends when no connection is left.
    shutting_down: bool,
    next_timer_check: Instant,
    now: Instant,
}

impl EventLoop {
    fn new(server: Server) -> io::Result<Self> {
        let Server {
            config,
            poll,
            listener,
            web_listener,
            tls,
            shutdown,
            history,
            tails,
            metrics,
            ..
        } = server;
        let (tls_listener, certs) = tls.unzip();
        let signals = if config.handle_signals {
            let mut signals = signal_hook_mio::v1_0::Signals::new([
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGTERM,
                signal_hook::consts::SIGHUP,
            ])?;
            poll.registry()
                .register(&mut signals, SIGNALS, Interest::READABLE)?;
            Some(signals)
        } else {
            None
        };
        let now = Instant::now();
        Ok(EventLoop {
            chat: Chat::new(config.password.clone()).with_history(tails),
            history,
            parked: Vec::new(),
            guard: Guard::new(config.guard.clone()),
            logs: LogSummary::new(now),
            clients: Clients {
                conns: Slab::new(),
                dirty: Vec::new(),
                departures: Departures::default(),
                left_open: 0,
                dead: Vec::new(),
                pool: BufferPool::default(),
                encoded: EncodeCache::default(),
                queued_since_flush: 0,
                max_outbuf_bytes: config.max_outbuf_bytes,
                replying_to: None,
                history_acked: 0,
                held: Vec::new(),
                held_bytes: 0,
                max_output_total_bytes: config.max_output_total_bytes,
                soft_outbuf: config.soft_outbuf,
                work: 0,
                now,
                metrics: Metrics::default(),
            },
            metrics_endpoint: metrics,
            metrics_accept_pending: false,
            scratch: vec![0; config.read_budget_bytes.clamp(1024, 16 * 1024 * 1024)],
            held_line: Vec::new(),
            web_rules: WebRules {
                allowed_origins: config.web_origins.clone(),
                tls: certs.is_some(),
            },
            web_listener,
            web_accept_pending: false,
            upgraded: false,
            config,
            poll,
            listener,
            tls_listener,
            certs,
            tls_accept_pending: false,
            shutdown,
            signals,
            to_read: Vec::new(),
            throttled: Vec::new(),
            open_count: 0,
            accept_retry_at: None,
            accept_pending: false,
            accept_failing: false,
            shutting_down: false,
            next_timer_check: now + TIMER_TICK,
            now,
        })
    }

    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_PER_TURN);
        loop {
            let timeout = if self.history.acks_waiting() {
                // A commit came in before the loop asked to be woken.
                Some(Duration::ZERO)
            } else {
                self.poll_timeout()
            };
            if let Err(err) = self.poll.poll(&mut events, timeout) {
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            self.now = Instant::now();
            self.clients.now = self.now;
            self.clients.departures.new_turn();
            self.wake_throttled();
            self.take_history_acks();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_pending = true,
                    WEB_LISTENER => self.web_accept_pending = true,
                    TLS_LISTENER => self.tls_accept_pending = true,
                    WAKER => {
                        if self.shutdown.requested.load(Ordering::SeqCst) {
                            self.begin_shutdown("shutdown requested");
                        }
                        self.take_history_acks();
                    }
                    SIGNALS => self.take_signals(),
                    METRICS => self.metrics_accept_pending = true,
                    Token(id) if id >= FIRST_SCRAPE => self.serve_scrape(Token(id)),
                    Token(id) => {
                        let Some(conn) = self.clients.conns.get_mut(id) else {
                            continue;
                        };
                        // The peer's FIN may come in the same edge as its last
                        // data; remember it, or a short read would miss it.
                        conn.hangup_seen |= event.is_read_closed() || event.is_error();
                        let readable = event.is_readable() || conn.hangup_seen;
                        if readable && !conn.queued_for_read {
                            conn.queued_for_read = true;
                            self.to_read.push(id);
                        }
                        if event.is_writable() && conn.has_output() {
                            self.clients.mark_dirty(id);
                        }
                    }
                }
            }
            if self.accept_pending && !self.shutting_down {
                self.accept_connections(Listener::Line);
            }
            if self.web_accept_pending && !self.shutting_down {
                self.accept_connections(Listener::Web);
            }
            if self.tls_accept_pending && !self.shutting_down {
                self.accept_connections(Listener::TlsLine);
            }
            if self.metrics_accept_pending {
                self.accept_scrapes();
            }
            self.read_ready_connections();
            self.settle_departures();
            self.history.submit(self.chat.history_mut());
            self.flush_dirty();
            if self.now >= self.next_timer_check {
                // A writer that died without a word is noticed here too.
                self.take_history_acks();
                self.check_timers();
                self.settle_departures();
                self.flush_dirty();
            }
            self.reap_dead();
            // The history writer wakes the loop only while someone waits
            // for a commit; otherwise its acknowledgements wait for the
            // next turn.
            let waiting = !self.clients.held.is_empty() || !self.parked.is_empty();
            self.history.want_wake(waiting);
            let turn = self.now.elapsed().as_nanos();
            self.clients.metrics.turn.observe(turn as u64);
            if self.shutting_down && self.clients.conns.is_empty() {
                self.history.finish();
                self.log_summaries(true);
                info!("shut down");
                return Ok(());
            }
        }
    }

    /// Zero while work is left over from the last turn, else until the next
    /// timer check.
    fn poll_timeout(&self) -> Option<Duration> {
        let accept_pending =
            self.accept_pending || self.web_accept_pending || self.tls_accept_pending;
        if !self.to_read.is_empty()
            || !self.clients.departures.is_empty()
            || (accept_pending && self.accept_retry_at.is_none())
            || self.metrics_accept_pending
        {
            return Some(Duration::ZERO);
        }
        let mut wake_at = self.next_timer_check;
        if let Some(retry) = self.accept_retry_at {
            wake_at = wake_at.min(retry);
        }
        for &id in &self.throttled {
            if let Some(at) = self.clients.conns.get(id).and_then(|c| c.limits.wake_at) {
                wake_at = wake_at.min(at);
            }
        }
        Some(wake_at.saturating_duration_since(Instant::now()))
    }

    /// SIGINT/SIGTERM start a graceful shutdown; a second one, while
    /// clients are still taking their goodbye, closes them all at once.
    fn take_signals(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        let received: Vec<i32> = signals.pending().collect();
        for signal in received {
            if signal == signal_hook::consts::SIGHUP {
                self.reload_certificate();
                continue;
            }
            let name = if signal == signal_hook::consts::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            if self.shutting_down {
                info!("{name} again: closing every connection now");
                let ids: Vec<ClientId> = self.clients.conns.iter().map(|(id, _)| id).collect();
                for id in ids {
                    self.clients.kill(id, "server shutdown");
                }
            } else {
                self.begin_shutdown(name);
            }
        }
    }

    /// Re-reads the certificate and key: new handshakes get the new
    /// certificate, connected clients keep their sessions, and a broken file
    /// keeps the old certificate.
    fn reload_certificate(&mut self) {
        match self.certs.as_mut() {
            None => info!("SIGHUP: no TLS certificate configured, nothing to reload"),
            Some(certs) => match certs.reload() {
                Ok(()) => info!("SIGHUP: TLS certificate reloaded; new connections get it"),
                Err(err) => warn!("SIGHUP: keeping the old TLS certificate: {err}"),
            },
        }
    }

    /// Accepts until the backlog is empty, the per-turn cap is reached, or
    /// accepting fails for lack of resources (then it is retried on a timer:
    /// with edge-triggered readiness no new event would come for the
    /// connections already waiting).
    fn accept_connections(&mut self, from: Listener) {
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
                    match from {
                        Listener::Line => self.add_connection(socket, peer),
                        Listener::Web => self.add_web_connection(socket, peer),
                        Listener::TlsLine => self.add_tls_connection(socket, peer),
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

    fn add_connection(&mut self, mut socket: mio::net::TcpStream, peer: SocketAddr) {
        // We batch lines ourselves; Nagle would only add latency.
        if let Err(err) = socket.set_nodelay(true) {
            debug!("{peer}: TCP_NODELAY: {err}");
        }
        if let Some(keepalive) = &self.config.guard.keepalive {
            if let Err(err) = guard::set_keepalive(&socket, keepalive) {
                debug!("{peer}: TCP keepalive: {err}");
            }
        }
        cap_send_buffer(&socket, self.config.send_buffer_bytes, peer);
        let id = self.clients.conns.vacant_key();
        let full = self.open_count >= self.config.max_clients;
        let crowded = !full && !self.guard.admit(id, peer.ip());
        let (refusal, reason, refused_why): (&[u8], _, _) = if full {
            (b"! server full\n", "server full", Refusal::ServerFull)
        } else {
            (
                b"! too many connections from your address\n",
                "too many from address",
                Refusal::PerAddressLimit,
            )
        };
        let lingering = self.clients.conns.len().saturating_sub(self.open_count);
        if (full || crowded) && lingering >= REJECT_RESERVE {
            // Too many rejections already lingering: a best-effort goodbye.
            self.count_refused(None, refused_why);
            if let Ok(written) = socket.write(refusal) {
                self.clients.metrics.bytes_sent += written as u64;
                self.clients.metrics.lines_sent += u64::from(written == refusal.len());
            }
            if self.logs.allow(peer.ip(), self.now) {
                info!("{peer}: rejected ({reason})");
            }
            return;
        }
        let entry = self.clients.conns.vacant_entry();
        if let Err(err) = self
            .poll
            .registry()
            .register(&mut socket, Token(id), Interest::READABLE)
        {
            warn!("{peer}: cannot register: {err}");
            self.guard.release(id);
            return;
        }
        let stream = Stream::plain(socket);
        let conn = entry.insert(Connection::new(stream, Codec::default(), peer, self.now));
        conn.limits = ClientLimits::new(&self.config.flood, self.now);
        if full || crowded {
            if self.logs.allow(peer.ip(), self.now) {
                info!("{peer}: rejected ({reason}, {} clients)", self.open_count);
            }
            let deadline = self.now + self.config.close_timeout;
            conn.phase = Phase::Closing { deadline };
            conn.end_reason = reason;
            conn.output.push(refusal, &mut self.clients.pool);
            self.clients.metrics.lines_sent += 1;
            self.count_refused(Some(id), refused_why);
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
    fn add_tls_connection(&mut self, socket: mio::net::TcpStream, peer: SocketAddr) {
        if let Err(err) = socket.set_nodelay(true) {
            debug!("{peer}: TCP_NODELAY: {err}");
        }
        if let Some(keepalive) = &self.config.guard.keepalive {
            if let Err(err) = guard::set_keepalive(&socket, keepalive) {
                debug!("{peer}: TCP keepalive: {err}");
            }
        }
        cap_send_buffer(&socket, self.config.send_buffer_bytes, peer);
        let id = self.clients.conns.vacant_key();
        let over = self.clients.conns.len() >= self.config.max_clients + REJECT_RESERVE;
        if over || !self.guard.admit(id, peer.ip()) {
            self.count_refused(None, Refusal::full_or_crowded(over));
            // Before a handshake there is no way to say why: just closed.
            if self.logs.allow(peer.ip(), self.now) {
                let why = if over {
                    "server full"
                } else {
                    "too many from address"
                };
                info!("{peer}: TLS connection refused ({why})");
            }
            return;
        }
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

    /// Registers a connection that must finish a handshake (TLS, HTTP)
    /// within the close timeout before it counts as a client.
    fn add_handshaking(
        &mut self,
        mut stream: Stream,
        codec: Codec,
        peer: SocketAddr,
        timeout_reason: &'static str,
    ) {
        // The caller has admitted it under the slab key this entry gets.
        let entry = self.clients.conns.vacant_entry();
        let id = entry.key();
        if let Err(err) = self
            .poll
            .registry()
            .register(&mut stream, Token(id), Interest::READABLE)
        {
            warn!("{peer}: cannot register: {err}");
            self.guard.release(id);
            return;
        }
        let deadline = self.now + self.config.close_timeout;
        let conn = entry.insert(Connection::new(stream, codec, peer, self.now));
        conn.limits = ClientLimits::new(&self.config.flood, self.now);
        conn.phase = Phase::Handshake { deadline };
        conn.end_reason = timeout_reason;
        conn.queued_for_read = true;
        self.to_read.push(id);
        self.next_timer_check = self.next_timer_check.min(deadline);
    }

    /// After TLS input: a finished handshake lets a line client into the
    /// chat, and handshake records to answer are flushed this turn.
    fn after_tls_read(&mut self, id: ClientId) {
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
    fn add_web_connection(&mut self, socket: mio::net::TcpStream, peer: SocketAddr) {
        if let Err(err) = socket.set_nodelay(true) {
            debug!("{peer}: TCP_NODELAY: {err}");
        }
        if let Some(keepalive) = &self.config.guard.keepalive {
            if let Err(err) = guard::set_keepalive(&socket, keepalive) {
                debug!("{peer}: TCP keepalive: {err}");
            }
        }
        cap_send_buffer(&socket, self.config.send_buffer_bytes, peer);
        let id = self.clients.conns.vacant_key();
        let over = self.clients.conns.len() >= self.config.max_clients + REJECT_RESERVE;
        if over || !self.guard.admit(id, peer.ip()) {
            self.count_refused(None, Refusal::full_or_crowded(over));
            // Best effort, and no lingering: a page or upgrade refused.
            // (Over TLS a plain answer would only be a bad record.)
            let mut socket = socket;
            if self.certs.is_none() {
                let _ = socket.write(http::UNAVAILABLE);
            }
            if self.logs.allow(peer.ip(), self.now) {
                let why = if over {
                    "server full"
                } else {
                    "too many from address"
                };
                info!("{peer}: web connection refused ({why})");
            }
            return;
        }
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
    fn run_request(&mut self, id: ClientId, head: &Head) {
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
    fn start_websocket(&mut self, id: ClientId, rest: &[u8]) {
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

    /// Reads every connection on the read list once, up to its budget.
    /// While the history writer is behind, a client whose lines are not yet
    /// committed is parked instead, until the next commit.
    fn read_ready_connections(&mut self) {
        let ready = std::mem::take(&mut self.to_read);
        for id in ready {
            if self.history.congested() {
                let acked = self.history.acked();
                if let Some(conn) = self.clients.conns.get(id) {
                    if conn.phase == Phase::Open && conn.history_mark > acked {
                        self.parked.push(id);
                        continue;
                    }
                }
            }
            let state = self.read_connection(id);
            if let Some(conn) = self.clients.conns.get_mut(id) {
                conn.queued_for_read = state != ReadState::Done;
                if state != ReadState::Done && conn.line_started.is_some() {
                    // The server holds this input back, not the client: the
                    // idle clock of its unfinished line starts over.
                    conn.line_started = Some(self.now);
                }
                match state {
                    ReadState::Done => {}
                    ReadState::Again => self.to_read.push(id),
                    ReadState::WaitUntil(at) => {
                        conn.limits.wake_at = Some(at);
                        self.throttled.push(id);
                        self.clients.metrics.flood_throttles += 1;
                    }
                }
            }
            self.settle_departures();
        }
    }

    /// Puts the throttled connections whose time has come back on the
    /// read list.
    fn wake_throttled(&mut self) {
        let mut i = 0;
        while i < self.throttled.len() {
            let id = self.throttled[i];
            let conn = self.clients.conns.get_mut(id);
            let due = conn
                .as_ref()
                .is_none_or(|c| c.limits.wake_at <= Some(self.now));
            if due {
                self.throttled.swap_remove(i);
                if let Some(conn) = conn {
                    conn.limits.wake_at = None;
                    self.to_read.push(id);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Serves one connection for this turn: lines held back earlier first,
    /// then its socket, up to its read budget, its work budget and its flood
    /// limit.
    fn read_connection(&mut self, id: ClientId) -> ReadState {
        self.clients.work = 0;
        let state = match self.run_deferred(id) {
            Some(state) => state,
            None => {
                let mut scratch = std::mem::take(&mut self.scratch);
                let state = self.read_into(id, &mut scratch);
                self.scratch = scratch;
                state
            }
        };
        let write_failed = self.clients.conns.get(id).is_some_and(|c| c.write_failed);
        if write_failed && state == ReadState::Done {
            // Everything the peer sent before it went has been run.
            self.clients.kill(id, "write error");
        }
        state
    }

    /// Runs the lines held back from earlier turns while the limits allow
    /// (then a WebSocket close that came after them); `Some` when the
    /// connection must not be read further this turn.
    fn run_deferred(&mut self, id: ClientId) -> Option<ReadState> {
        loop {
            let conn = self.clients.conns.get_mut(id)?;
            if conn.phase != Phase::Open {
                conn.limits.deferred.clear();
                conn.limits.held_close = None;
                return None;
            }
            if conn.limits.deferred.is_empty() {
                if let Some((code, reason)) = conn.limits.held_close.take() {
                    self.run_frame_now(id, Input::Close { code, reason });
                    return None;
                }
                return self.held_back(id);
            }
            if !self.may_run_line(id) {
                return self.held_back(id);
            }
            let conn = self.clients.conns.get_mut(id)?;
            let mut line = std::mem::take(&mut self.held_line);
            match conn.limits.deferred.pop_into(&mut line) {
                Some(Held::Line) => self.run_frame_now(id, Input::Line(&line)),
                Some(Held::TooLong) => self.run_frame_now(id, Input::TooLong),
                None => {}
            }
            self.held_line = line;
        }
    }

    /// Whether the connection's next line may run now: it is within its
    /// work budget for this turn and has a line token. Takes the token.
    fn may_run_line(&mut self, id: ClientId) -> bool {
        if self.clients.work >= self.config.work_budget_bytes.max(1) {
            return false;
        }
        let flood = self.config.flood;
        self.clients
            .conns
            .get_mut(id)
            .is_some_and(|conn| conn.limits.take_line(&flood, self.now))
    }

    /// `Some` when the connection must stop for this turn: lines are held
    /// back (until a line token comes, or the next turn for the work
    /// budget), or its lines have done their turn's work.
    fn held_back(&mut self, id: ClientId) -> Option<ReadState> {
        let conn = self.clients.conns.get_mut(id)?;
        if conn.phase != Phase::Open {
            conn.limits.deferred.clear();
            conn.limits.held_close = None;
            return None;
        }
        let over_budget = self.clients.work >= self.config.work_budget_bytes.max(1);
        if conn.limits.deferred.is_empty() && conn.limits.held_close.is_none() {
            return over_budget.then_some(ReadState::Again);
        }
        if over_budget || conn.limits.deferred.is_empty() {
            return Some(ReadState::Again);
        }
        Some(match conn.limits.line_wait(&self.config.flood, self.now) {
            Some(at) => ReadState::WaitUntil(at),
            None => ReadState::Again,
        })
    }

    fn read_into(&mut self, id: ClientId, scratch: &mut [u8]) -> ReadState {
        let mut budget = self.config.read_budget_bytes.max(1);
        let flood = self.config.flood;
        loop {
            let Some(conn) = self.clients.conns.get_mut(id) else {
                return ReadState::Done;
            };
            if conn.phase == Phase::Dead {
                return ReadState::Done;
            }
            let mut want = budget.min(scratch.len());
            let open = conn.phase == Phase::Open;
            if open {
                // Flood control: a client out of tokens is not read; its
                // input waits in its socket and TCP pushes back. Reads are
                // small, so what its line rate holds back stays small.
                if flood.lines_per_sec > 0 {
                    want = want.min(FLOOD_READ_BYTES);
                }
                match conn.limits.bytes_allowed(&flood, self.now) {
                    Ok(allowed) => want = want.min(allowed),
                    Err(at) => return ReadState::WaitUntil(at),
                }
            }
            let result = conn.stream.read(&mut scratch[..want]);
            let is_tls = conn.stream.tls_session().is_some();
            if is_tls {
                self.after_tls_read(id);
            }
            let Some(conn) = self.clients.conns.get_mut(id) else {
                return ReadState::Done;
            };
            match result {
                Ok(0) => {
                    conn.read_closed = true;
                    self.on_peer_closed(id);
                    return ReadState::Done;
                }
                Ok(n) => {
                    conn.last_input = self.now;
                    self.clients.metrics.bytes_received += n as u64;
                    if open {
                        conn.limits.took_bytes(&flood, n);
                    }
                    if matches!(conn.phase, Phase::Open | Phase::Handshake { .. }) {
                        self.run_input(id, &scratch[..n]);
                    }
                    if let Some(state) = self.held_back(id) {
                        return state;
                    }
                    // A short read emptied the socket and the next byte to
                    // arrive raises a new edge, so the WouldBlock read is
                    // saved, unless the FIN already arrived: no edge follows
                    // that, so read on to the end of the stream.
                    // TLS decrypts record by record: a short read says
                    // nothing about the socket, so read on to WouldBlock.
                    let hangup_seen = self.clients.conns.get(id).is_some_and(|c| c.hangup_seen);
                    if n < want && !hangup_seen && !is_tls {
                        return ReadState::Done;
                    }
                    budget -= n;
                    if budget == 0 {
                        return ReadState::Again;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return ReadState::Done,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if is_tls && err.kind() == io::ErrorKind::InvalidData => {
                    // Not TLS, a bad record, a failed handshake: the alert
                    // has been sent; this connection only is closed.
                    let peer = conn.peer;
                    if self.logs.allow(peer.ip(), self.now) {
                        info!("{peer}: TLS error: {err}");
                    }
                    self.clients.kill(id, "TLS error");
                    return ReadState::Done;
                }
                Err(err) => {
                    debug!("{}: read: {err}", conn.peer);
                    let reason = match err.kind() {
                        io::ErrorKind::ConnectionReset => "reset by peer",
                        // Keepalive probes (or retransmissions) unanswered.
                        io::ErrorKind::TimedOut => "dead peer (timed out)",
                        _ => "read error",
                    };
                    self.clients.kill(id, reason);
                    return ReadState::Done;
                }
            }
        }
    }

    /// Frames input and runs each complete line.
    fn run_input(&mut self, id: ClientId, input: &[u8]) {
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        // The decoder is held here while its inputs run; the encoder stays
        // in the connection, so replies to this client are encoded as usual.
        let mut decoder = std::mem::take(&mut conn.codec.decoder);
        let mut finished = false;
        decoder.decode(input, self.config.max_line_bytes, |input| {
            finished = true;
            self.run_frame(id, input)
        });
        let upgraded = std::mem::take(&mut self.upgraded);
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        // The idle clock runs from the first byte of an unfinished line;
        // more bytes of it do not reset it.
        conn.line_started = match (decoder.mid_line(), conn.line_started) {
            (false, _) => None,
            (true, Some(started)) if !finished => Some(started),
            (true, _) => Some(self.now),
        };
        conn.codec.decoder = decoder;
        if upgraded {
            let rest = match &mut conn.codec.decoder {
                Decoder::Http(reader) => reader.take_rest(),
                _ => Vec::new(),
            };
            self.start_websocket(id, &rest);
        }
    }

    /// Runs one decoded input now, or holds a line back (in order) when
    /// earlier lines wait or the limits say so; see [`crate::limits`].
    fn run_frame(&mut self, id: ClientId, input: Input<'_>) {
        let Some(conn) = self.clients.conns.get(id) else {
            return;
        };
        if conn.phase != Phase::Open {
            return self.run_frame_now(id, input);
        }
        let waiting = !conn.limits.deferred.is_empty();
        match input {
            Input::Line([]) | Input::Request(_) | Input::Reply(_) => {}
            Input::Close { code, reason } if waiting => {
                // After the lines before it; nothing more is decoded.
                if let Some(conn) = self.clients.conns.get_mut(id) {
                    conn.limits.held_close = Some((code, reason));
                }
                return;
            }
            Input::Close { .. } => {}
            Input::Line(_) | Input::TooLong => {
                if waiting || !self.may_run_line(id) {
                    if let Some(conn) = self.clients.conns.get_mut(id) {
                        match input {
                            Input::TooLong => conn.limits.deferred.push_too_long(),
                            Input::Line(line) => conn.limits.deferred.push_line(line),
                            _ => {}
                        }
                    }
                    return;
                }
            }
        }
        self.run_frame_now(id, input);
    }

    fn run_frame_now(&mut self, id: ClientId, input: Input<'_>) {
        let phase = self.clients.conns.get(id).map(|c| c.phase);
        if let Input::Request(head) = input {
            self.run_request(id, head);
            return;
        }
        if phase != Some(Phase::Open) {
            return;
        }
        if matches!(input, Input::TooLong) || matches!(input, Input::Line(line) if !line.is_empty())
        {
            self.clients.metrics.lines_received += 1;
        }
        match input {
            Input::Request(_) => {}
            Input::Reply(bytes) => self.clients.queue(id, bytes, false),
            Input::Close { code, reason } => {
                self.clients.departures.push(id, None);
                if let Some(conn) = self.clients.conns.get_mut(id) {
                    // With output held for history, the close frame follows
                    // it when it is released (see take_history_acks).
                    if conn.held.is_empty() {
                        conn.codec.encoder.close_with(
                            code,
                            &mut conn.output,
                            &mut self.clients.pool,
                        );
                    }
                }
                self.close_gracefully(id, reason);
            }
            Input::Line([]) => {}
            Input::Line(bytes) => match std::str::from_utf8(bytes) {
                Ok(line) => {
                    let auth = self.chat.awaiting_password(id)
                        && matches!(protocol::parse(line), Command::Auth(_));
                    if auth && self.refuse_locked_out(id) {
                        return;
                    }
                    let accepted = self.chat.history_pending();
                    let waiting = self.chat.history_waits();
                    self.clients.replying_to = Some(id);
                    let outcome = self.chat.handle_line(id, line, &mut self.clients);
                    self.clients.replying_to = None;
                    if self.chat.history_pending() > accepted {
                        if let Some(conn) = self.clients.conns.get_mut(id) {
                            conn.history_mark = self.history.mark();
                        }
                    }
                    if self.chat.history_waits() > waiting {
                        // :history in a room whose tail is still loading:
                        // its answer, and all after it, wait for the tail.
                        if let Some(conn) = self.clients.conns.get_mut(id) {
                            if conn.held.is_empty() {
                                self.clients.held.push(id);
                            }
                            conn.held.push_gap();
                        }
                    }
                    let reason = if auth {
                        self.count_auth(id, outcome)
                    } else {
                        "quit"
                    };
                    if outcome == Outcome::Close {
                        self.close_gracefully(id, reason);
                    }
                    if self.clients.queued_since_flush >= FLUSH_EARLY_BYTES {
                        self.settle_departures();
                        self.flush_dirty();
                    }
                }
                Err(_) => self.reply(id, b"! invalid UTF-8\n"),
            },
            Input::TooLong => {
                let reply = format!(
                    "! line too long (max {} bytes)\n",
                    self.config.max_line_bytes
                );
                self.reply(id, reply.as_bytes());
            }
        }
    }

    /// Answers a client's own line: held, like a command's answer, while
    /// the client has uncommitted history lines.
    fn reply(&mut self, id: ClientId, line: &[u8]) {
        self.clients.replying_to = Some(id);
        self.clients.send(id, line);
        self.clients.replying_to = None;
    }

    /// An `:auth` from an address locked out after too many wrong
    /// passwords: refused whatever the password, and the connection closed.
    fn refuse_locked_out(&mut self, id: ClientId) -> bool {
        let Some(peer) = self.clients.conns.get(id).map(|c| c.peer) else {
            return false;
        };
        let Some(left) = self.guard.auth_locked(peer.ip(), self.now) else {
            return false;
        };
        let line = format!(
            "! too many attempts from your address, try again in {} s\n",
            left.as_secs().max(1)
        );
        self.chat.disconnect(id, None, &mut self.clients);
        self.queue_last_line(id, line.as_bytes(), "auth lockout");
        true
    }

    /// After an `:auth` ran: counts a wrong password against the address
    /// (logging a lockout once, and closing the connection when it locked
    /// its address out) or forgives it on success. Returns the reason should
    /// the attempt have closed the connection.
    fn count_auth(&mut self, id: ClientId, outcome: Outcome) -> &'static str {
        let Some(peer) = self.clients.conns.get(id).map(|c| c.peer) else {
            return "auth failed";
        };
        if self.chat.nick(id).is_some() {
            self.guard.auth_succeeded(peer.ip());
            return "quit";
        }
        if let AuthFailure::LockedOut {
            key,
            failures,
            lockout,
        } = self.guard.auth_failed(peer.ip(), self.now)
        {
            self.clients.metrics.auth_lockouts += 1;
            warn!(
                "{key}: {failures} wrong passwords, :auth refused for {} s",
                lockout.as_secs()
            );
            if outcome == Outcome::Continue {
                self.refuse_locked_out(id);
            }
            return "auth lockout";
        }
        "auth failed"
    }

    /// The peer shut down its sending side (or closed). Complete lines were
    /// handled as they arrived; an unterminated last line is dropped.
    fn on_peer_closed(&mut self, id: ClientId) {
        let Some(conn) = self.clients.conns.get(id) else {
            return;
        };
        match conn.phase {
            Phase::Open => {
                self.clients.departures.push(id, None);
                self.close_gracefully(id, "closed by peer");
                if self.clients.queued_since_flush >= FLUSH_EARLY_BYTES {
                    self.flush_dirty();
                }
            }
            Phase::Lingering { .. } => self.clients.kill(id, conn.end_reason),
            Phase::Handshake { .. } => self.clients.kill(id, "closed by peer"),
            Phase::Closing { .. } | Phase::Dead => {}
        }
    }

    /// Ends a connection that has left the chat, after what is queued for it
    /// is delivered (bounded by the close timeout).
    fn close_gracefully(&mut self, id: ClientId, reason: &'static str) {
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        if conn.phase != Phase::Open {
            return;
        }
        self.open_count -= 1;
        let deadline = self.now + self.config.close_timeout;
        conn.phase = Phase::Closing { deadline };
        conn.end_reason = reason;
        // A WebSocket ends with a close frame after its last line (after
        // the output held for history, when that is released).
        if conn.held.is_empty() {
            conn.codec
                .encoder
                .close(reason, &mut conn.output, &mut self.clients.pool);
        }
        self.next_timer_check = self.next_timer_check.min(deadline);
        self.clients.mark_dirty(id);
    }

    /// Queues a connection's last line, bypassing the output limit, and
    /// closes it gracefully.
    fn queue_last_line(&mut self, id: ClientId, line: &[u8], reason: &'static str) {
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        let bytes = conn.codec.encode(line, &mut self.clients.encoded);
        if conn.held.is_empty() {
            conn.output.push(bytes, &mut self.clients.pool);
        } else {
            conn.held.push(0, bytes, &mut self.clients.held_bytes);
        }
        self.clients.metrics.lines_sent += 1;
        self.close_gracefully(id, reason);
    }

    /// Lets the chat announce clients that left (cut off, failed, gone), in
    /// the order they left (biggest queue first when the global bound cut
    /// several at once), up to the work budget per turn: the rest wait for
    /// the next turn, so a thousand cuts in a big room do not stall everyone.
    fn settle_departures(&mut self) {
        self.open_count -= std::mem::take(&mut self.clients.left_open);
        let budget = self.config.work_budget_bytes;
        // The client being read is not charged for the server's fan-out.
        let work = self.clients.work;
        while let Some((id, reason)) = self.clients.departures.next(budget) {
            self.clients.work = 0;
            self.chat.disconnect(id, reason, &mut self.clients);
            let done = self.clients.work;
            self.clients.departures.announced(id, done);
            // An announcement may cut off a full queue: count it now.
            self.open_count -= std::mem::take(&mut self.clients.left_open);
        }
        self.clients.work = work;
    }

    /// Writes each dirty connection's output once.
    fn flush_dirty(&mut self) {
        self.clients.queued_since_flush = 0;
        loop {
            let dirty = std::mem::take(&mut self.clients.dirty);
            if dirty.is_empty() {
                return;
            }
            for id in dirty {
                self.flush_connection(id);
            }
            // A write error is a departure, whose announcement dirties others.
            self.settle_departures();
        }
    }

    fn flush_connection(&mut self, id: ClientId) {
        let clients = &mut self.clients;
        let Some(conn) = clients.conns.get_mut(id) else {
            return;
        };
        conn.queued_for_flush = false;
        if conn.phase == Phase::Dead || conn.write_failed {
            return;
        }
        loop {
            if !conn.has_output() {
                break;
            }
            match conn.write_output() {
                Ok(written) => {
                    clients.metrics.bytes_sent += written as u64;
                    clients.soft_outbuf.observe(
                        &mut conn.limits.soft_since,
                        conn.output.len(),
                        self.now,
                    )
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                    clients.mark_dirty(id);
                    return;
                }
                Err(err) => {
                    debug!("{}: write: {err}", conn.peer);
                    clients.metrics.bytes_discarded += conn.output.len() as u64;
                    conn.output.discard(&mut clients.pool);
                    if conn.phase != Phase::Open {
                        clients.kill(id, "write error");
                        return;
                    }
                    // The peer is gone, but lines it sent before it went may
                    // still wait in the socket and still count: the read
                    // path takes them, in order, then drops the connection.
                    conn.write_failed = true;
                    if !conn.queued_for_read {
                        conn.queued_for_read = true;
                        self.to_read.push(id);
                    }
                    return;
                }
            }
            // A closing TLS connection ends its session with close_notify
            // once every byte it is owed has gone to rustls.
            let closing = matches!(conn.phase, Phase::Closing { .. });
            if !(closing
                && conn.output.is_empty()
                && conn.held.is_empty()
                && conn
                    .stream
                    .tls_session()
                    .is_some_and(|t| !t.is_handshaking() && t.close()))
            {
                break;
            }
        }
        let drained = !conn.has_output();
        let handshaking = conn.stream.tls_handshaking();
        if drained {
            conn.output.release(&mut clients.pool);
        }
        if drained && !handshaking && conn.held.is_empty() {
            if let Phase::Closing { deadline } = conn.phase {
                // Everything owed is with the kernel: FIN after it, then
                // wait for the peer's FIN so our close cannot send an RST.
                let _ = conn.stream.shutdown_write();
                conn.phase = Phase::Lingering { deadline };
                if conn.read_closed {
                    let reason = conn.end_reason;
                    clients.kill(id, reason);
                    return;
                }
                if !conn.queued_for_read {
                    conn.queued_for_read = true;
                    self.to_read.push(id);
                }
            }
        }
        if conn.wants_writable == drained {
            conn.wants_writable = !drained;
            let interest = conn.interest();
            if let Err(err) = self
                .poll
                .registry()
                .reregister(&mut conn.stream, Token(id), interest)
            {
                debug!("{}: reregister: {err}", conn.peer);
                clients.kill(id, "poller error");
            }
        }
    }

    /// The history writer committed: releases output held for it and reads
    /// parked clients again.
    fn take_history_acks(&mut self) {
        let (acked_any, loaded) = self.history.take_acks(self.chat.history_mut());
        if !acked_any && loaded.is_empty() {
            return;
        }
        let acked = self.history.acked();
        self.clients.history_acked = acked;
        if !loaded.is_empty() {
            self.answer_history_waits();
        }
        for id in std::mem::take(&mut self.clients.held) {
            let clients = &mut self.clients;
            let Some(conn) = clients.conns.get_mut(id) else {
                continue;
            };
            if conn.held.is_empty() {
                continue;
            }
            let (output, pool) = (&mut conn.output, &mut clients.pool);
            conn.held.release(acked, &mut clients.held_bytes, |bytes| {
                output.push(bytes, pool)
            });
            if !conn.held.is_empty() {
                clients.held.push(id);
            } else if matches!(conn.phase, Phase::Closing { .. }) {
                // Its close frame waited for the held output.
                let reason = conn.end_reason;
                conn.codec.encoder.close(reason, output, pool);
            }
            clients.mark_dirty(id);
        }
        // Parked clients still have `queued_for_read` set.
        self.to_read.append(&mut self.parked);
    }

    /// Puts the answers to `:history` commands whose tails arrived where
    /// their askers' output was left waiting. An answer that would pass the
    /// output limit cuts the asker off as too slow, as any output would.
    fn answer_history_waits(&mut self) {
        for wait in self.chat.take_ready_history_waits() {
            let id = wait.id;
            let Some(conn) = self.clients.conns.get(id) else {
                continue;
            };
            if conn.phase == Phase::Dead || conn.held.is_empty() {
                continue;
            }
            let queued = conn.output.len() + conn.held.len();
            let answer = self.chat.history_answer(&wait);
            if queued + answer.len() > self.clients.max_outbuf_bytes {
                warn!(
                    "{}: cut off, more than {} bytes of output queued (too slow)",
                    conn.peer, self.clients.max_outbuf_bytes
                );
                self.clients.cut_off(id);
                continue;
            }
            if let Some(conn) = self.clients.conns.get_mut(id) {
                // One line at a time through the asker's codec (a WebSocket
                // client gets one text message per line).
                let mut encoded = Vec::with_capacity(answer.len());
                for line in answer.split_inclusive(|&byte| byte == b'\n') {
                    encoded.extend_from_slice(conn.codec.encode(line, &mut self.clients.encoded));
                }
                conn.held.fill_gap(encoded, &mut self.clients.held_bytes);
            }
        }
    }

    /// Idle (unfinished line) and auth timeouts, closing deadlines, lockout
    /// expiry and log summaries; runs every [`TIMER_TICK`].
    fn check_timers(&mut self) {
        let mut next_check = self.now + TIMER_TICK;
        self.clients.pool.trim();
        debug_assert_eq!(
            self.clients.pool.lent_bytes(),
            self.clients
                .conns
                .iter()
                .map(|(_, conn)| conn.output.capacity())
                .sum::<usize>(),
            "the global output bound's accounting drifted"
        );
        debug_assert_eq!(
            self.clients.held_bytes,
            self.clients
                .conns
                .iter()
                .map(|(_, conn)| conn.held.len())
                .sum::<usize>(),
            "the held output's accounting drifted"
        );
        self.guard.prune(self.now);
        self.log_summaries(false);
        let idle_limit = self.config.idle_timeout;
        let auth_limit = self
            .config
            .guard
            .auth_timeout
            .filter(|_| self.config.password.is_some());
        let mut idle = Vec::new();
        let mut expired = Vec::new();
        let mut pinged = Vec::new();
        let mut overstayed = Vec::new();
        for (id, conn) in self.clients.conns.iter_mut() {
            if conn.phase == Phase::Open
                && self
                    .clients
                    .soft_outbuf
                    .expired(conn.limits.soft_since, self.now)
            {
                overstayed.push(id);
                continue;
            }
            if conn.phase == Phase::Open {
                let silent = conn.codec.encoder.ping_if_silent(
                    self.now,
                    conn.last_input,
                    self.config.ws_ping_interval,
                );
                if let Some(ping) = silent {
                    // Straight to the socket when nothing else waits: an
                    // idle client's ping should not take a pooled buffer.
                    let written = if conn.output.is_empty() {
                        conn.stream.write(&ping).unwrap_or(0)
                    } else {
                        0
                    };
                    if written < ping.len() {
                        conn.output.push(&ping[written..], &mut self.clients.pool);
                        pinged.push(id);
                    }
                }
            }
            match conn.phase.deadline() {
                Some(deadline) if self.now >= deadline => expired.push(id),
                Some(deadline) => next_check = next_check.min(deadline),
                None if conn.phase != Phase::Open => {}
                None => {
                    // Only an unfinished line counts against the idle
                    // timeout: quiet is not dead. While the server holds a
                    // client's input back (flood control, budgets) the
                    // clock waits for it.
                    if conn.queued_for_read && conn.line_started.is_some() {
                        conn.line_started = Some(self.now);
                    }
                    let stalled = conn
                        .line_started
                        .zip(idle_limit)
                        .is_some_and(|(started, limit)| self.now - started >= limit);
                    if stalled {
                        idle.push((id, &b"! idle timeout\n"[..], "idle timeout"));
                    } else if auth_limit.is_some_and(|limit| {
                        self.now - conn.accepted_at >= limit && self.chat.awaiting_password(id)
                    }) {
                        idle.push((id, &b"! auth timeout\n"[..], "auth timeout"));
                    }
                }
            }
        }
        if let Some(endpoint) = self.metrics_endpoint.as_mut() {
            if let Some(deadline) = endpoint.expire(self.poll.registry(), self.now) {
                next_check = next_check.min(deadline);
            }
        }
        self.next_timer_check = next_check;
        for id in overstayed {
            if let Some(conn) = self.clients.conns.get(id) {
                warn!(
                    "{}: cut off, more than {} bytes of output queued for {:?} (too slow)",
                    conn.peer,
                    self.clients.soft_outbuf.bytes,
                    self.clients.soft_outbuf.period.unwrap_or_default()
                );
            }
            self.clients.metrics.cut_off(SlowLimit::Soft);
            self.clients.cut_off(id);
        }
        for id in pinged {
            self.clients.mark_dirty(id);
        }
        for id in expired {
            let reason = match self.clients.conns.get(id) {
                Some(conn) if conn.stream.tls_handshaking() => {
                    if self.logs.allow(conn.peer.ip(), self.now) {
                        info!(
                            "{}: TLS handshake not done within the close timeout",
                            conn.peer
                        );
                    }
                    "TLS handshake timeout"
                }
                _ => "close timeout",
            };
            self.clients.kill(id, reason);
        }
        for (id, notice, reason) in idle {
            self.clients.send(id, notice);
            // The notice may itself have cut a full queue off as too slow;
            // then that departure is already on its way, with its reason.
            if self.clients.conns.get(id).map(|c| c.phase) == Some(Phase::Open) {
                self.clients.departures.push(id, None);
                self.close_gracefully(id, reason);
            }
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
    fn accept_scrapes(&mut self) {
        self.metrics_accept_pending = match self.metrics_endpoint.as_mut() {
            Some(endpoint) => endpoint.accept(self.poll.registry(), self.now),
            None => false,
        };
    }

    /// Serves a readiness event on a scrape connection.
    fn serve_scrape(&mut self, token: Token) {
        let Some(mut endpoint) = self.metrics_endpoint.take() else {
            return;
        };
        endpoint.ready(token, self.poll.registry(), || self.render_metrics());
        self.metrics_endpoint = Some(endpoint);
    }

    /// The metrics text: the counters, plus gauges measured now by walking
    /// the connections (only a scrape pays for that walk).
    fn render_metrics(&self) -> String {
        let mut snapshot = Snapshot {
            clients: self.open_count as u64,
            clients_limit: self.config.max_clients as u64,
            output_queue_limit_bytes: self.config.max_outbuf_bytes as u64,
            output_buffer_bytes: self.clients.pool.lent_bytes() as u64,
            output_buffer_limit_bytes: self.config.max_output_total_bytes as u64,
            rooms: self.chat.room_count() as u64,
            history: self.config.history.file.is_some().then(|| HistorySnapshot {
                stats: self.history.stats,
                waiting_lines: self.history.waiting_lines() as u64,
                writer_up: self.history.writing(),
            }),
            ..Snapshot::default()
        };
        for (_, conn) in self.clients.conns.iter() {
            // Output held until the history commit counts as queued.
            let queued = (conn.output.len() + conn.held.len()) as u64;
            snapshot.output_queued_bytes += queued;
            snapshot.output_queued_max_bytes = snapshot.output_queued_max_bytes.max(queued);
            if let (Standing::Admitted(transport), false) =
                (conn.standing, conn.phase == Phase::Dead)
            {
                snapshot.count_open(transport);
            }
        }
        metrics::render(&self.clients.metrics, &snapshot)
    }

    /// Logs a summary line for each address whose connect and disconnect
    /// lines were left out in the window just closed (every window when
    /// `all`).
    fn log_summaries(&mut self, all: bool) {
        for line in self.logs.summaries(self.now, all) {
            info!("{line}");
        }
    }

    /// Drops the connections that ended this turn.
    fn reap_dead(&mut self) {
        let dead = std::mem::take(&mut self.clients.dead);
        for id in dead {
            if self.clients.conns.get(id).map(|c| c.phase) != Some(Phase::Dead) {
                continue;
            }
            if self.clients.departures.is_pending(id) {
                // Its room has not been told yet: the slot (and the nick)
                // stay taken until then.
                self.clients.dead.push(id);
                continue;
            }
            let mut conn = self.clients.conns.remove(id);
            conn.held.clear(&mut self.clients.held_bytes);
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.chat.forget_history_waits(id);
            if conn.queued_for_read {
                // The slot may be reused next turn; the read list must not
                // carry this id over to a stranger.
                self.to_read.retain(|&queued| queued != id);
                self.parked.retain(|&queued| queued != id);
                self.throttled.retain(|&queued| queued != id);
            }
            self.guard.release(id);
            if let Standing::Admitted(_) = conn.standing {
                self.clients.metrics.disconnected(conn.end_reason);
            }
            let nick = self.chat.departed_nick(id);
            if self.logs.allow(conn.peer.ip(), self.now) {
                match nick {
                    Some(nick) => info!("{}: {nick} disconnected ({})", conn.peer, conn.end_reason),
                    None => info!("{}: disconnected ({})", conn.peer, conn.end_reason),
                }
            }
        }
    }

    /// Stops accepting and tells everyone; the loop ends once every
    /// connection has taken its last line or passed the close timeout.
    fn begin_shutdown(&mut self, why: &str) {
        if self.shutting_down {
            return;
        }
        info!(
            "{why}: shutting down, {} connections to close",
            self.clients.conns.len()
        );
        self.shutting_down = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        if let Some(mut listener) = self.web_listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        if let Some(mut listener) = self.tls_listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let handshakes: Vec<ClientId> = self
            .clients
            .conns
            .iter()
            .filter(|(_, conn)| matches!(conn.phase, Phase::Handshake { .. }))
            .map(|(id, _)| id)
            .collect();
        for id in handshakes {
            self.clients.kill(id, "server shutdown");
        }
        let open: Vec<ClientId> = self
            .clients
            .conns
            .iter()
            .filter(|(_, conn)| conn.phase == Phase::Open)
            .map(|(id, _)| id)
            .collect();
        for id in open {
            self.queue_last_line(id, b"* server shutting down\n", "server shutdown");
        }
        // Told or not, everyone is gone within the grace, whatever the close
        // timeout: the process must exit within 5 s even if peers never
        // read or never close.
        let last = self.now + self.config.close_timeout.min(SHUTDOWN_GRACE);
        for (_, conn) in self.clients.conns.iter_mut() {
            match &mut conn.phase {
                Phase::Handshake { deadline }
                | Phase::Closing { deadline }
                | Phase::Lingering { deadline } => {
                    *deadline = (*deadline).min(last);
                }
                Phase::Open | Phase::Dead => {}
            }
        }
        self.next_timer_check = self.now;
    }
}

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
