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
//! as one batch ([`crate::chat::history`]); its commits wake the loop through the
//! same waker as a shutdown request, and release replies held for them.
//!
//! This file holds the public API ([`Server`], [`RunningServer`],
//! [`ShutdownHandle`]) and the loop itself (`EventLoop`: its state, setup
//! and one turn). The steps live in child modules, each an `impl EventLoop`
//! block:
//! - `accept`: step 2's accepting on every listener, admission, TLS and HTTP
//!   handshakes, the upgrade to WebSocket, metrics scrapes;
//! - `input`: step 3, reading and running lines and frames;
//! - `output`: steps 4 and 5, departures, graceful closes and flushing;
//! - `timers`: history commits and `:history` waits, and the once-a-second
//!   checks (deadlines, idle clients, pings, soft limits);
//! - `lifecycle`: step 6's reaping, signals, shutdown, certificate and
//!   settings reload (SIGHUP) and the metrics text;
//! - `proxied`: connections from a trusted proxy until their PROXY header
//!   names the client;
//! - `clients`: `Clients`, the connections and their queued output, which
//!   the chat writes through as its [`crate::chat::Outbox`].

use crate::chat::history::{HistoryLink, Tails};
use crate::chat::{Chat, ClientId};
use crate::metrics::Metrics;
use crate::net::connection::BufferPool;
use crate::net::http::WebRules;
use crate::net::metrics_http::{self, Endpoint};
use crate::net::tls::CertStore;
use crate::net::transport::EncodeCache;
use crate::policy::guard::Guard;
use crate::policy::limits::Departures;
use crate::policy::logsum::LogSummary;
use crate::settings::Reload;
use crate::Config;
use log::{info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod accept;
mod clients;
mod input;
mod lifecycle;
mod output;
mod proxied;
mod timers;

use clients::Clients;

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
/// Connections from trusted proxies waiting for their PROXY header take the
/// tokens from here up to just below [`FIRST_SCRAPE`].
const FIRST_PROXIED: usize = FIRST_SCRAPE - proxied::MAX_WAITING;

/// Output queued in one turn past which it is written out before the turn
/// goes on, so a fan-out storm costs this much memory, not the whole storm.
const FLUSH_EARLY_BYTES: usize = 8 * 1024 * 1024;
/// Events taken from the poller per turn.
const EVENTS_PER_TURN: usize = 1024;

/// How often the idle timeout is checked; closing deadlines are checked when
/// they fall due.
const TIMER_TICK: Duration = Duration::from_secs(1);

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
    /// The settings file SIGHUP reads again, if the server has one.
    reload: Option<Reload>,
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
            .map_err(crate::chat::history::into_io)?;
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
            reload: None,
        })
    }

    /// Has SIGHUP read `reload`'s settings file again (see
    /// [`crate::settings::Reload`]); `None` leaves SIGHUP to the
    /// certificate alone.
    pub fn with_reload(mut self, reload: Option<Reload>) -> Server {
        self.reload = reload;
        self
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

/// The running loop's state.
struct EventLoop {
    config: Config,
    poll: Poll,
    listener: Option<TcpListener>,
    /// The web address's listener; see [`crate::net::http`].
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
    /// Connections from trusted proxies waiting for their PROXY header.
    proxy_waits: proxied::ProxyWaits,
    /// The settings file SIGHUP reads again, if any.
    reload: Option<Reload>,
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
    /// A held-back line being run (see [`crate::policy::limits::ClientLimits::deferred`]).
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
            reload,
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
            // Listening, and SIGHUP handled from here on: ready for systemd.
            if let Err(err) = crate::net::sd_notify::notify("READY=1") {
                warn!("cannot tell systemd the server is ready: {err}");
            }
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
            proxy_waits: proxied::ProxyWaits::new(FIRST_PROXIED),
            reload,
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
                    Token(id) if id >= FIRST_PROXIED => self.read_proxy_header(Token(id)),
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
}
