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
//! as one batch ([`crate::chat::history`]); its commits come back on the
//! loop's one completion path ([`crate::chat::completion`]), taken at the
//! start of each turn (its waker is the shutdown request's too), and
//! release replies held for them.
//!
//! This file holds the public API ([`Server`], [`RunningServer`],
//! [`ShutdownHandle`]) and the loop itself (`EventLoop`: its state, setup
//! and one turn). The steps live in child modules, each an `impl EventLoop`
//! block:
//! - `listeners`: the listening sockets as one list, each with its kind,
//!   token and accept state, and the errors of binding them;
//! - `accept`: step 2's accepting on every listener, one admission path,
//!   TLS and HTTP handshakes, the upgrade to WebSocket, metrics scrapes;
//! - `input`: step 3, reading and running lines and frames;
//! - `output`: steps 4 and 5, departures, graceful closes and flushing;
//! - `timers`: history commits and `:history` waits, and the once-a-second
//!   checks (deadlines, idle clients, pings, soft limits);
//! - `lifecycle`: step 6's reaping, signals, shutdown, certificate and
//!   settings reload (SIGHUP) and the metrics text;
//! - `proxied`: connections from a trusted proxy until their PROXY header
//!   names the client;
//! - `clients`: `Clients`, the connections and their queued output, which
//!   the chat writes through as its [`crate::chat::Outbox`];
//! - `render`: the line being sent, rendered once per dialect and framing;
//! - `cluster`: with `--cluster`, the Redis engine's readiness, its turn,
//!   the commands that go through it and the events it reports;
//!   `cluster_presence`: membership across servers (joins, leaves,
//!   renames, quits published and mirrored; servers lost);
//!   `cluster_accounts`: account changes published and applied.
//! - `accounts`: the hashing worker's end, held-back logins, the login
//!   throttle and registration limits, the checks before password commands.
//! - `irc`: IRC connections' lines: parsing, registration, the welcome
//!   burst, `OPER`'s answer (`docs/irc.md`);
//! - `irc_cmds`: a registered IRC client's commands, mapped onto the line
//!   protocol's typed commands or answered from the chat's views.

use crate::chat::completion::Completions;
use crate::chat::history::{HistoryLink, Tails};
use crate::chat::Chat;
use crate::cluster::{Cluster, RedisCluster};
use crate::metrics::Metrics;
use crate::net::metrics_http::{self, Endpoint};
use crate::net::outbuf::BufferPool;
use crate::net::tls::CertStore;
use crate::policy::guard::Guard;
use crate::policy::limits::Departures;
use crate::policy::logsum::LogSummary;
use crate::settings::Reload;
use crate::Config;
use log::{info, warn};
use mio::{Events, Poll, Token, Waker};
use slab::Slab;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod accept;
mod accounts;
mod clients;
mod cluster;
pub(crate) mod cluster_accounts;
pub(crate) mod cluster_presence;
mod input;
mod irc;
mod irc_cmds;
mod ircv3;
mod lifecycle;
mod listeners;
mod output;
mod proxied;
mod render;
mod timers;

use accept::Transports;
use clients::Clients;
use input::Reads;
use lifecycle::Life;
use listeners::Listener;
pub use listeners::{BindError, ListenerKind, StartError};

/// Connection tokens are slab keys; these sit above any key.
const WAKER: Token = Token(usize::MAX);
const SIGNALS: Token = Token(usize::MAX - 1);
/// Listener `i` of the list has token `FIRST_LISTENER - i`.
const FIRST_LISTENER: usize = usize::MAX - 2;
/// Room for this many listeners (four kinds today).
const MAX_LISTENERS: usize = 8;
/// Metrics scrape connections take the tokens from here up to just below
/// the last listener's.
const FIRST_SCRAPE: usize = FIRST_LISTENER - MAX_LISTENERS - metrics_http::MAX_SCRAPES + 1;
/// Connections from trusted proxies waiting for their PROXY header take the
/// tokens from here up to just below [`FIRST_SCRAPE`].
const FIRST_PROXIED: usize = FIRST_SCRAPE - proxied::MAX_WAITING;

/// The cluster's two Redis connections (command, subscriber), just below
/// the connections waiting for a PROXY header.
const CLUSTER_CMD: Token = Token(FIRST_PROXIED - 1);
const CLUSTER_SUB: Token = Token(FIRST_PROXIED - 2);

/// Output queued in one turn past which it is written out before the turn
/// goes on, so a fan-out storm costs this much memory, not the whole storm.
const FLUSH_EARLY_BYTES: usize = 8 * 1024 * 1024;
/// Events taken from the poller per turn.
const EVENTS_PER_TURN: usize = 1024;

/// How often the idle timeout is checked; closing deadlines are checked when
/// they fall due.
const TIMER_TICK: Duration = Duration::from_secs(1);

/// A bound chat server, ready to [`run`](Server::run).
pub struct Server {
    config: Config,
    poll: Poll,
    /// Every listening socket: line, TLS line, web, metrics, as configured.
    listeners: Vec<Listener>,
    /// The certificate of the TLS line address and of the web address
    /// (which then speaks only TLS), when configured.
    certs: Option<CertStore>,
    shutdown: ShutdownHandle,
    history: HistoryLink,
    completions: Completions,
    tails: Tails,
    /// The hashing worker and the account limits.
    accounts: accounts::AccountsLink,
    /// The accounts read from the history file.
    stored_accounts: crate::accounts::Accounts,
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
    irc_addr: Option<SocketAddr>,
    irc_tls_addr: Option<SocketAddr>,
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

    /// The IRC address, unless turned off.
    pub fn irc_addr(&self) -> Option<SocketAddr> {
        self.irc_addr
    }

    /// The TLS IRC address, when the server has a certificate.
    pub fn irc_tls_addr(&self) -> Option<SocketAddr> {
        self.irc_tls_addr
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
    /// Binds the listening sockets and starts the history writer. Port 0
    /// picks a free port; see [`local_addr`](Server::local_addr). The error
    /// says what failed: which listener on which address, the certificate,
    /// the history file, or the poller.
    pub fn bind(config: Config) -> Result<Server, StartError> {
        let poll = Poll::new().map_err(StartError::Poller)?;
        if let Some(cluster) = &config.cluster {
            // The one blocking Redis call: a wrong address fails the start.
            let version =
                crate::cluster::probe::probe(cluster.addr).map_err(StartError::Cluster)?;
            info!("cluster: redis {version} at {}", cluster.addr);
        }
        let certs = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(CertStore::load(cert, key).map_err(StartError::Tls)?),
            (None, None) => None,
            _ => {
                return Err(StartError::Tls(
                    "TLS needs both a certificate and a key".into(),
                ))
            }
        };
        let mut wanted = Vec::new();
        if certs.is_some() {
            wanted.push((ListenerKind::TlsLine, config.tls_addr));
        }
        if config.plain || certs.is_none() {
            wanted.push((ListenerKind::Line, config.addr));
        }
        if let Some(addr) = config.web_addr {
            wanted.push((ListenerKind::Web, addr));
        }
        if let Some(addr) = config.metrics_addr {
            wanted.push((ListenerKind::Metrics, addr));
        }
        if let Some(addr) = config.irc_addr {
            wanted.push((ListenerKind::Irc, addr));
        }
        if let Some(addr) = config.irc_tls_addr.filter(|_| certs.is_some()) {
            wanted.push((ListenerKind::TlsIrc, addr));
        }
        debug_assert!(wanted.len() <= MAX_LISTENERS);
        let mut listeners = Vec::with_capacity(wanted.len());
        for (i, (kind, addr)) in wanted.into_iter().enumerate() {
            let token = Token(FIRST_LISTENER - i);
            listeners.push(Listener::bind(kind, addr, poll.registry(), token)?);
        }
        let waker = Waker::new(poll.registry(), WAKER).map_err(StartError::Poller)?;
        let shutdown = ShutdownHandle {
            requested: Arc::new(AtomicBool::new(false)),
            waker: Arc::new(waker),
        };
        // mio allows one waker per poller: the completion path shares it.
        let (completions, completer) = Completions::new(shutdown.waker.clone());
        let accounts = accounts::AccountsLink::start(&config.accounts, completer.clone())
            .map_err(StartError::Poller)?;
        let (mut history, tails) =
            HistoryLink::start(&config.history, completer).map_err(StartError::History)?;
        let stored_accounts = crate::accounts::Accounts::load(
            config.accounts.clone(),
            history.take_loaded_accounts(),
            crate::chat::history::tails::unix_now_ms() / 1000,
        );
        Ok(Server {
            accounts,
            stored_accounts,
            config,
            poll,
            listeners,
            certs,
            shutdown,
            history,
            completions,
            tails,
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

    /// The address a listener of this kind actually bound, if there is one.
    pub fn listener_addr(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|listener| listener.kind == kind)
            .map(|listener| listener.addr)
    }

    /// The line address actually bound (the TLS line address when plain
    /// TCP is turned off).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener_addr(ListenerKind::Line)
            .or(self.tls_addr())
            .expect("a plain listener is bound when TLS is not")
    }

    /// The TLS line address actually bound, when the server has a
    /// certificate.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.listener_addr(ListenerKind::TlsLine)
    }

    /// The web address actually bound (page and WebSocket), unless off.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.listener_addr(ListenerKind::Web)
    }

    /// A handle to stop the server from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// The IRC address actually bound, unless off.
    pub fn irc_addr(&self) -> Option<SocketAddr> {
        self.listener_addr(ListenerKind::Irc)
    }

    /// The TLS IRC address actually bound, when the server has a
    /// certificate and the address is not off.
    pub fn irc_tls_addr(&self) -> Option<SocketAddr> {
        self.listener_addr(ListenerKind::TlsIrc)
    }

    /// The address `/metrics` is served on, when
    /// [`Config::metrics_addr`] asked for it.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.listener_addr(ListenerKind::Metrics)
    }

    /// Runs the event loop on this thread until shutdown. Returns an error
    /// only if the poller itself fails; client errors end only that client.
    pub fn run(self) -> io::Result<()> {
        EventLoop::new(self)?.run()
    }

    /// Runs the event loop on a new thread.
    pub fn spawn(self) -> io::Result<RunningServer> {
        let addr = self.local_addr();
        let web_addr = self.web_addr();
        let tls_addr = self.tls_addr();
        let metrics_addr = self.metrics_addr();
        let irc_addr = self.irc_addr();
        let irc_tls_addr = self.irc_tls_addr();
        let shutdown = self.shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("loopchat".into())
            .spawn(move || self.run())?;
        Ok(RunningServer {
            addr,
            web_addr,
            tls_addr,
            metrics_addr,
            irc_addr,
            irc_tls_addr,
            shutdown,
            thread: Some(thread),
        })
    }
}

/// The running loop's state. What only one step uses is grouped in a
/// struct owned by that step's file: [`Transports`] (accept), [`Reads`]
/// (input), [`Life`] (lifecycle), [`Clients`] (the connections).
struct EventLoop {
    config: Config,
    poll: Poll,
    /// Every listening socket with its accept state; the chat listeners
    /// leave the list when shutdown begins.
    listeners: Vec<Listener>,
    /// What handshakes need: the certificate, the web rules.
    transports: Transports,
    /// Shutdown requests and signals.
    life: Life,
    clients: Clients,
    chat: Chat,
    /// The history writer's end in the loop.
    history: HistoryLink,
    /// The hashing worker, held-back logins, the account limits.
    accounts: accounts::AccountsLink,
    /// The read, throttled and parked lists, and the read buffers.
    reads: Reads,
    /// Work finished on other threads (history commits), taken once a turn.
    completions: Completions,
    /// Per-address connection counts and password lockouts.
    guard: Guard,
    /// Which connect/disconnect lines are logged, and the summaries of
    /// those left out.
    logs: LogSummary,
    /// The `/metrics` scrapes, when a metrics listener is configured.
    scrapes: Option<Endpoint>,
    /// Connections from trusted proxies waiting for their PROXY header.
    proxy_waits: proxied::ProxyWaits,
    /// The settings file SIGHUP reads again, if any.
    reload: Option<Reload>,
    /// The cluster's Redis, or `Single` (no `--cluster`).
    cluster: Cluster,
    /// What the loop keeps about the cluster: nick claims, guest numbers.
    cluster_link: cluster::ClusterLink,
    /// Connections in `Open` phase, authenticated or not: what
    /// `max_clients` counts.
    open_count: usize,
    /// When the loop started, as UTC text (IRC's `003`).
    started_utc: String,
    next_timer_check: Instant,
    now: Instant,
}

impl EventLoop {
    fn new(server: Server) -> io::Result<Self> {
        let Server {
            config,
            poll,
            listeners,
            certs,
            shutdown,
            history,
            completions,
            tails,
            accounts,
            stored_accounts,
            reload,
        } = server;
        let life = Life::new(shutdown, config.handle_signals, poll.registry(), SIGNALS)?;
        let now = Instant::now();
        let scrapes = listeners
            .iter()
            .any(|listener| listener.kind == ListenerKind::Metrics)
            .then(|| Endpoint::new(FIRST_SCRAPE, config.close_timeout));
        let cluster = match &config.cluster {
            Some(settings) => Cluster::Redis(Box::new(RedisCluster::new(
                settings.clone(),
                poll.registry(),
                [CLUSTER_CMD, CLUSTER_SUB],
            ))),
            None => Cluster::Single,
        };
        let mut chat = Chat::new(config.password.clone())
            .with_max_rooms_per_client(config.max_rooms_per_client)
            .with_history(tails)
            .with_accounts(stored_accounts)
            .with_admins(&config.admins);
        if !cluster.is_single() {
            chat.share_membership();
        }
        Ok(EventLoop {
            cluster,
            cluster_link: cluster::ClusterLink::default(),
            chat,
            history,
            accounts,
            completions,
            guard: Guard::new(config.guard.clone()),
            logs: LogSummary::new(
                now,
                config.guard.log_lines_per_address,
                config.guard.log_lines_total,
            ),
            clients: Clients {
                conns: Slab::new(),
                dirty: Vec::new(),
                departures: Departures::default(),
                left_open: 0,
                dead: Vec::new(),
                pool: BufferPool::default(),
                cache: render::LineCache::new(&config.server_name),
                queued_since_flush: 0,
                max_outbuf_bytes: config.max_outbuf_bytes,
                history_acked: 0,
                held: Vec::new(),
                held_bytes: 0,
                max_output_total_bytes: config.max_output_total_bytes,
                soft_outbuf: config.soft_outbuf,
                work: 0,
                now,
                metrics: Metrics::default(),
                label: None,
                capture: None,
                next_account: None,
                next_plain: Vec::new(),
                has_next_plain: false,
            },
            scrapes,
            reads: Reads::new(config.read_budget_bytes),
            transports: Transports::new(
                certs,
                config.web_origins.clone(),
                config.irc_addr.is_some(),
            ),
            listeners,
            proxy_waits: proxied::ProxyWaits::new(FIRST_PROXIED),
            reload,
            config,
            poll,
            life,
            open_count: 0,
            started_utc: crate::protocol::time::format_utc(
                crate::chat::history::tails::unix_now_ms() / 1000,
            ),
            next_timer_check: now + TIMER_TICK,
            now,
        })
    }

    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_PER_TURN);
        loop {
            let timeout = if self.completions.waiting() {
                // A completion came in before the loop asked to be woken.
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
            self.take_completions();
            for event in events.iter() {
                match event.token() {
                    // Completions were taken above.
                    WAKER if self.life.shutdown_requested() => {
                        self.begin_shutdown("shutdown requested")
                    }
                    WAKER => {}
                    SIGNALS => self.take_signals(),
                    token @ (CLUSTER_CMD | CLUSTER_SUB) => self.cluster_ready(token),
                    token @ Token(id) if id >= FIRST_SCRAPE => {
                        match self.listeners.iter_mut().find(|l| l.token == token) {
                            Some(listener) => listener.readable(),
                            None => self.serve_scrape(token),
                        }
                    }
                    Token(id) if id >= FIRST_PROXIED => self.read_proxy_header(Token(id)),
                    Token(id) => {
                        let Some(conn) = self.clients.conns.get_mut(id) else {
                            continue;
                        };
                        // The peer's FIN may come in the same edge as its last
                        // data; remember it, or a short read would miss it.
                        let hangup = conn.note_hangup(event.is_read_closed() || event.is_error());
                        if (event.is_readable() || hangup) && conn.put_on_read_list() {
                            self.reads.ready.push(id);
                        }
                        if event.is_writable() && conn.has_output() {
                            self.clients.mark_dirty(id);
                        }
                    }
                }
            }
            self.accept_connections();
            self.read_ready_connections();
            self.settle_departures();
            let writes = self.chat.accounts_mut().take_writes();
            if !writes.is_empty() {
                self.cluster_accounts(&writes);
                self.history.submit_accounts(writes);
            }
            self.cluster_turn();
            self.history.submit(self.chat.history_mut());
            self.flush_dirty();
            if self.now >= self.next_timer_check {
                self.check_timers();
                self.settle_departures();
                self.flush_dirty();
            }
            self.reap_dead();
            self.cluster_share();
            if let Cluster::Redis(redis) = &mut self.cluster {
                // The nicks of those who left are released now.
                redis.flush(self.poll.registry(), self.now);
            }
            // Workers wake the loop only while someone waits for a
            // commit; otherwise their completions wait for the next turn.
            let waiting = !self.clients.held.is_empty()
                || !self.reads.parked.is_empty()
                || !self.reads.paused.is_empty();
            self.completions.want_wake(waiting);
            let turn = self.now.elapsed().as_nanos();
            self.clients.metrics.turn.observe(turn as u64);
            if self.life.shutting_down && self.clients.conns.is_empty() {
                self.cluster_leave();
                self.accounts.finish();
                self.history
                    .submit_accounts(self.chat.accounts_mut().take_writes());
                self.history.finish();
                self.log_summaries(true);
                info!("shut down");
                return Ok(());
            }
        }
    }

    /// Zero while work is left over from the last turn, else until the next
    /// timer check, accept retry or throttled client's wake-up.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.reads.ready.is_empty() || !self.clients.departures.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut wake_at = self.next_timer_check;
        if let Some(at) = self.accounts.next_due() {
            wake_at = wake_at.min(at);
        }
        for listener in &self.listeners {
            if let Some(at) = listener.accept_due(self.now) {
                wake_at = wake_at.min(at);
            }
        }
        if let Cluster::Redis(redis) = &self.cluster {
            if let Some(at) = redis.next_deadline() {
                wake_at = wake_at.min(at);
            }
        }
        for &id in &self.reads.throttled {
            if let Some(at) = self.clients.conns.get(id).and_then(|c| c.limits.wake_at) {
                wake_at = wake_at.min(at);
            }
        }
        Some(wake_at.saturating_duration_since(Instant::now()))
    }
}
