//! The load generator: many chat clients on one `mio` event loop, measuring
//! how fast and how faithfully a loopchat server fans messages out.
//!
//! Shared by the `loadgen` binary (`cargo run --release --bin loadgen`) and
//! `cargo bench` (`benches/fanout.rs`), so a benchmark row and a loadgen run
//! with the same [`Options`] measure exactly the same thing.
//!
//! # What a run does
//!
//! 1. Without `--addr` it starts a [`loopchat::Server`] on `127.0.0.1:0` on its
//!    own thread, so a fresh clone needs nothing else running.
//! 2. It connects `--clients` non-blocking sockets (a bounded number at a
//!    time, spread over several `127.0.0.x` source addresses when one
//!    address's ephemeral ports would run out) and waits for every welcome.
//! 3. Barrier: one client sends a probe line and the run only starts once
//!    every other client has received it, which proves every client is in
//!    the room. Connect and join traffic is counted apart from the chat
//!    deliveries measured later.
//! 4. The first `--senders` clients send chat lines, either open loop at
//!    `--rate` messages per second each, or closed loop with `--flood W`
//!    messages in flight each. Every line carries a [`marker`] with sender,
//!    sequence number and send time, so every receiver measures latency and
//!    detects lost, duplicated and reordered messages.
//! 5. After `--warmup` plus `--duration` seconds the senders stop, the
//!    deliveries still on their way are drained, and a [`Report`] is built.
//!
//! `--idle` instead holds the clients connected and reports the server's
//! resident memory per connection.
//!
//! `--ws` runs any of these over WebSocket: each client upgrades on the
//! server's web address and sends and receives one text message per line.

pub mod attack;
mod driver;
pub mod marker;
pub mod report;
pub mod sys;
pub mod tracker;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use argh::FromArgs;

pub use report::Report;

/// Messages per second per sender when neither `--rate` nor `--flood` is
/// given: enough to exercise fan-out at 500 clients without saturating a
/// small machine.
pub const DEFAULT_RATE: f64 = 2.0;

/// Sender/receiver pairs the sequence tracker may hold (4 bytes each); past
/// this the run is refused rather than eating gigabytes. Fewer `--senders`
/// keeps large client counts within it.
pub const MAX_PAIRS: usize = 32 * 1024 * 1024;

/// Load generator for loopchat: N clients on one event loop, K of them
/// sending; reports deliveries per second, latency percentiles, loss and
/// CPU. Without --addr it starts a server in-process.
#[derive(FromArgs, Clone, Debug, PartialEq)]
pub struct Options {
    /// server to load, HOST:PORT (default: start one in-process on
    /// 127.0.0.1:0); give it several times (servers of one cluster) and
    /// client i connects to the (i mod N)-th
    #[argh(option)]
    pub addr: Vec<String>,

    /// client connections (default 500)
    #[argh(option, default = "500")]
    pub clients: usize,

    /// how many of the clients send (default: all of them)
    #[argh(option)]
    pub senders: Option<usize>,

    /// open loop: messages per second per sender (the default mode; default
    /// 2; 0 means --idle)
    #[argh(option)]
    pub rate: Option<f64>,

    /// closed loop instead of --rate: each sender keeps W messages in
    /// flight; a message leaves flight once every other client received it
    #[argh(option)]
    pub flood: Option<usize>,

    /// only connect the clients, hold them for --duration and report the
    /// server's memory per connection
    #[argh(switch)]
    pub idle: bool,

    /// bytes of chat text per message, marker included (default 64)
    #[argh(option, default = "64")]
    pub payload: usize,

    /// measured seconds (default 10)
    #[argh(option, default = "10.0")]
    pub duration: f64,

    /// seconds of sending before the measurement starts (default 1)
    #[argh(option, default = "1.0")]
    pub warmup: f64,

    /// seconds to wait for outstanding deliveries after sending stops
    /// (default 5)
    #[argh(option, default = "5.0")]
    pub drain: f64,

    /// seconds allowed for connecting every client and for the barrier,
    /// each (default 60)
    #[argh(option, default = "60.0")]
    pub setup_timeout: f64,

    /// with --rate: microseconds before each scheduled send spent polling
    /// without sleeping, so the send leaves on time; 0 sleeps instead (the
    /// load generator then leaves the CPU to the servers, and its late
    /// wake-ups count as latency) (default 250)
    #[argh(option, default = "250")]
    pub spin_us: u64,

    /// connections connecting or awaiting their welcome at once, so the
    /// server's listen backlog is not overrun (default 64)
    #[argh(option, default = "64")]
    pub connect_concurrency: usize,

    /// spread the clients over this many source addresses 127.0.0.1,
    /// 127.0.0.2, ... (default: as many as the ephemeral port range needs;
    /// loopback targets only)
    #[argh(option)]
    pub source_ips: Option<usize>,

    /// room the clients :join before the run (default: stay in #lobby)
    #[argh(option)]
    pub room: Option<String>,

    /// password for servers started with one (sent as :auth)
    #[argh(option)]
    pub password: Option<String>,

    /// pid of an external server (with --addr), to report its CPU and
    /// memory
    #[argh(option)]
    pub server_pid: Option<u32>,

    /// connect with TLS; without --addr the in-process server serves TLS
    /// with --tls-cert and --tls-key
    #[argh(switch)]
    pub tls: bool,

    /// with --tls and no --addr: the in-process server's certificate (PEM)
    #[argh(option)]
    pub tls_cert: Option<std::path::PathBuf>,

    /// with --tls and no --addr: the in-process server's key (PEM)
    #[argh(option)]
    pub tls_key: Option<std::path::PathBuf>,

    /// with --tls: trust this PEM file (default: --tls-cert when given,
    /// else the system's roots)
    #[argh(option)]
    pub ca: Option<std::path::PathBuf>,

    /// print the summary as one JSON object instead of text
    #[argh(switch)]
    pub json: bool,

    /// no progress lines on stderr
    #[argh(switch)]
    pub quiet: bool,

    /// run an attack instead of a load test: flood (one flooder in a room
    /// of --clients, --slow-readers of them never reading), rooms (two
    /// clients pipelining :rooms/:users over --clients rooms), pm (a :pm
    /// burst at a reading victim) or login (--guessers clients sending
    /// wrong passwords for one account); a probe measures :ping meanwhile
    #[argh(option)]
    pub attack: Option<String>,

    /// with --attack login: clients sending wrong passwords, each as fast
    /// as it is answered (default 200)
    #[argh(option, default = "200")]
    pub guessers: usize,

    /// with --attack login: loopback source addresses the guessers are
    /// spread over, 127.0.0.2, 127.0.0.3, ..., so the server's
    /// per-address limits see them as a botnet's many addresses; 0 lets
    /// the kernel choose (all from 127.0.0.1, the bystander's address)
    /// (default: one per guesser, IPv4 loopback --addr only)
    #[argh(option)]
    pub guesser_sources: Option<usize>,

    /// milliseconds between the probe's pings, after the answer to the
    /// last (default 100; 10 with --attack login)
    #[argh(option)]
    pub probe_interval_ms: Option<u64>,

    /// with --attack flood: members that never read (4 KiB receive buffer)
    /// (default 0)
    #[argh(option, default = "0")]
    pub slow_readers: usize,

    /// every client speaks WebSocket (one text message per line) to the
    /// server's web address instead of TCP lines; with --addr, give the web
    /// address (e.g. 127.0.0.1:7879)
    #[argh(switch)]
    pub ws: bool,

    /// every client turns tags on (`:tags on`, protocol 1.2) before the
    /// run: lines arrive tagged, and each sender gets its own lines back
    /// (not counted as errors)
    #[argh(switch)]
    pub tags: bool,
}

impl Default for Options {
    /// The defaults documented in `--help`, taken from the argh attributes
    /// so they are written down only once.
    fn default() -> Self {
        match Options::from_args(&["loadgen"], &[]) {
            Ok(o) => o,
            // Unreachable: every field has a default or is optional.
            Err(e) => panic!("loadgen defaults do not parse: {}", e.output),
        }
    }
}

/// How the senders send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Open loop: each sender sends this many messages per second on a fixed
    /// schedule, whatever the server does; latency counts from the scheduled
    /// time, so a stall is not hidden by sending later (coordinated
    /// omission).
    Rate(f64),
    /// Closed loop: each sender keeps this many messages in flight, sending
    /// the next as soon as every other client received one.
    Flood(usize),
    /// Nobody sends: connect, hold, measure memory.
    Idle,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Rate(r) => write!(f, "rate {r}/s per sender"),
            Mode::Flood(w) => write!(f, "flood window {w}"),
            Mode::Idle => write!(f, "idle"),
        }
    }
}

impl Options {
    /// The sending mode these options ask for, or why they contradict.
    pub fn mode(&self) -> Result<Mode, String> {
        if let Some(r) = self.rate {
            if !r.is_finite() || r < 0.0 {
                return Err(format!("--rate {r}: give a finite number >= 0"));
            }
        }
        if self.idle || self.rate == Some(0.0) || self.senders == Some(0) {
            return Ok(Mode::Idle);
        }
        match (self.rate, self.flood) {
            (Some(_), Some(_)) => Err("--rate and --flood exclude each other".into()),
            (_, Some(0)) => Err("--flood 0: the window must be at least 1".into()),
            (None, Some(w)) => Ok(Mode::Flood(w)),
            (r, None) => Ok(Mode::Rate(r.unwrap_or(DEFAULT_RATE))),
        }
    }

    /// Number of sending clients these options ask for.
    pub fn sender_count(&self) -> usize {
        match self.mode() {
            Ok(Mode::Idle) | Err(_) => 0,
            Ok(_) => self.senders.unwrap_or(self.clients).min(self.clients),
        }
    }
}

/// Everything [`run`] resolved from [`Options`] before the first connect.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The first server's address (the one named in the report).
    pub addr: SocketAddr,
    /// Every server's address: client i connects to `addrs[i % len]`.
    pub addrs: Vec<SocketAddr>,
    pub target: String,
    pub in_process: bool,
    pub clients: usize,
    pub senders: usize,
    pub mode: Mode,
    pub payload: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
    pub setup_timeout: Duration,
    /// Polling without sleeping before a scheduled send (`--spin-us`).
    pub spin: Duration,
    pub connect_concurrency: usize,
    /// Source address per client slot (client i uses `sources[i % len]`);
    /// empty means let the kernel choose.
    pub sources: Vec<IpAddr>,
    /// `#`-prefixed room to join, when not staying in `#lobby`.
    pub room: Option<String>,
    pub password: Option<String>,
    pub quiet: bool,
    /// Clients speak WebSocket to `addr` (a web address).
    pub ws: bool,
    /// Clients turn tags on: lines arrive tagged, senders get echoes.
    pub tags: bool,
    pub server_pid: Option<u32>,
    /// Thread id of the in-process server, for its CPU time.
    pub server_tid: Option<u32>,
    /// TLS: the client configuration and the name the server's
    /// certificate is checked against.
    pub tls: Option<(
        std::sync::Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

fn secs(name: &str, v: f64) -> io::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| invalid(format!("--{name} {v}: give a number of seconds >= 0")))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Runs one load test as `opts` describes and returns its report.
///
/// Errors are problems that stop the run before it starts (bad options, no
/// file descriptors, the in-process server failing to bind); everything that
/// goes wrong once clients connect ends up in the [`Report`], whose
/// [`Report::failures`] decides the exit status.
pub fn run(opts: &Options) -> io::Result<Report> {
    let mode = opts.mode().map_err(invalid)?;
    let min_clients = if mode == Mode::Idle { 1 } else { 2 };
    if opts.clients < min_clients {
        return Err(invalid(format!(
            "--clients {}: need at least {min_clients} ({mode})",
            opts.clients
        )));
    }
    let senders = opts.sender_count();
    if senders.saturating_mul(opts.clients) > MAX_PAIRS {
        return Err(invalid(format!(
            "{} senders x {} clients is too many pairs to track; use fewer --senders",
            senders, opts.clients
        )));
    }
    let room = match opts.room.as_deref() {
        None => None,
        Some(r) => {
            let r = r.trim_start_matches('#');
            if r.is_empty() || r.eq_ignore_ascii_case("lobby") {
                None
            } else {
                Some(format!("#{r}"))
            }
        }
    };

    // The in-process server holds one descriptor per client too.
    let in_process = opts.addr.is_empty();
    let per_client = if in_process { 2 } else { 1 };
    let need = (opts.clients as u64) * per_client + 64;
    sys::raise_nofile(need).map_err(io::Error::other)?;

    let tls = if opts.tls {
        let ca = opts.ca.as_deref().or(opts.tls_cert.as_deref());
        let config = loopchat_client::tls::client_config(ca).map_err(invalid)?;
        let host = match opts.addr.first() {
            Some(a) => loopchat_client::tls::server_name_of(a).to_string(),
            None => "localhost".to_string(),
        };
        let name = rustls::pki_types::ServerName::try_from(host)
            .map_err(|e| invalid(format!("--addr: not a server name for TLS: {e}")))?;
        Some((config, name))
    } else {
        None
    };
    if opts.addr.is_empty() && opts.tls && (opts.tls_cert.is_none() || opts.tls_key.is_none()) {
        return Err(invalid(
            "--tls without --addr needs --tls-cert and --tls-key for the in-process server".into(),
        ));
    }

    let mut running = None;
    let mut server_tid = None;
    let mut addrs = Vec::with_capacity(opts.addr.len());
    for a in &opts.addr {
        addrs.push(
            a.to_socket_addrs()?
                .next()
                .ok_or_else(|| invalid(format!("--addr {a}: resolves to nothing")))?,
        );
    }
    let addr = match addrs.first() {
        Some(&a) => a,
        None => {
            let mut config = loopchat::Config::ephemeral();
            config.max_clients = config.max_clients.max(opts.clients + 16);
            // Idle clients in a long --idle hold must not be timed out.
            config.idle_timeout = None;
            // It measures fan-out, not flood control: senders go flat out.
            config.flood = loopchat::policy::limits::FloodLimit::OFF;
            if opts.tls {
                config.tls_cert = opts.tls_cert.clone();
                config.tls_key = opts.tls_key.clone();
            }
            let server = loopchat::Server::bind(config)?;
            let before = sys::task_ids();
            let r = server.spawn()?;
            // The one new thread is the server's; its CPU is read from
            // /proc so other threads (test harness, ...) are not counted.
            let new: Vec<u32> = sys::task_ids()
                .into_iter()
                .filter(|t| !before.contains(t))
                .collect();
            if new.len() == 1 {
                server_tid = Some(new[0]);
            }
            let a = if opts.ws {
                r.web_addr()
                    .ok_or_else(|| invalid("--ws: the server has no web address".into()))?
            } else if opts.tls {
                r.tls_addr()
                    .ok_or_else(|| invalid("--tls: the server has no TLS address".into()))?
            } else {
                r.addr()
            };
            running = Some(r);
            addrs.push(a);
            a
        }
    };
    let sources = choose_sources(addr, opts.clients, opts.source_ips)?;
    let servers = match addrs.len() {
        1 => String::new(),
        n => format!(" and {} more (clients spread over {n})", n - 1),
    };
    let plan = Plan {
        addr,
        addrs,
        target: match (in_process, opts.ws) {
            (true, false) => format!("in-process server {addr}"),
            (true, true) => format!("in-process server, WebSocket ws://{addr}/ws"),
            (false, false) => format!("server {addr}{servers}"),
            (false, true) => format!("server, WebSocket ws://{addr}/ws{servers}"),
        },
        in_process,
        clients: opts.clients,
        senders,
        mode,
        payload: opts.payload,
        warmup: if mode == Mode::Idle {
            Duration::ZERO
        } else {
            secs("warmup", opts.warmup)?
        },
        duration: secs("duration", opts.duration)?,
        drain: secs("drain", opts.drain)?,
        setup_timeout: secs("setup-timeout", opts.setup_timeout)?,
        spin: Duration::from_micros(opts.spin_us),
        connect_concurrency: opts.connect_concurrency.max(1),
        sources,
        room,
        password: opts.password.clone(),
        quiet: opts.quiet,
        ws: opts.ws,
        tags: opts.tags,
        server_pid: opts.server_pid,
        server_tid,
        tls,
    };
    let shutdown = running.as_ref().map(|r| r.shutdown_handle());
    let mut report = driver::Driver::new(&plan)?.run(shutdown);
    if let Some(r) = running {
        if let Err(e) = r.stop() {
            report
                .notes
                .push(format!("in-process server stopped with: {e}"));
            report.server_failed = true;
        }
    }
    Ok(report)
}

/// Runs `--attack` (see [`attack`]): against `--addr`, or an in-process
/// server with the default limits (flood control on, except for `login`,
/// whose probe pings every 10 ms: 100 lines a second, over the default
/// flood control's 20).
pub fn run_attack(opts: &Options) -> io::Result<attack::AttackReport> {
    let kind: attack::Attack = opts
        .attack
        .as_deref()
        .unwrap_or("flood")
        .parse()
        .map_err(invalid)?;
    let connections = match kind {
        attack::Attack::Login => opts.guessers,
        _ => opts.clients,
    };
    sys::raise_nofile(connections as u64 * 2 + 64).map_err(io::Error::other)?;
    match opts.addr.first() {
        Some(a) => {
            let addr = a
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| invalid(format!("--addr {a}: resolves to nothing")))?;
            attack::run(opts, kind, addr, opts.server_pid, false)
        }
        None => {
            let mut config = loopchat::Config::ephemeral();
            config.max_clients = config.max_clients.max(connections + 16);
            config.idle_timeout = None;
            if kind == attack::Attack::Login {
                config.flood = loopchat::policy::limits::FloodLimit::OFF;
            }
            let running = loopchat::Server::bind(config)?.spawn()?;
            let report = attack::run(opts, kind, running.addr(), None, true);
            running.stop()?;
            report
        }
    }
}

/// Source addresses for `clients` connections to `target`: none (kernel's
/// choice) when one address has ports enough, else `127.0.0.1..=N`.
fn choose_sources(
    target: SocketAddr,
    clients: usize,
    asked: Option<usize>,
) -> io::Result<Vec<IpAddr>> {
    // Half the range: earlier runs' TIME_WAIT sockets may hold the rest.
    let per_ip = (sys::ephemeral_port_count() / 2).max(1) as usize;
    let n = match asked {
        Some(n) => n.max(1),
        None => clients.div_ceil(per_ip),
    };
    if n <= 1 {
        return Ok(Vec::new());
    }
    if !target.ip().is_loopback() || !target.is_ipv4() {
        return Err(invalid(format!(
            "{clients} clients need {n} source addresses, which only works for \
             an IPv4 loopback --addr; use --source-ips 1 to try anyway"
        )));
    }
    if n > 254 {
        return Err(invalid(format!("--source-ips {n}: at most 254")));
    }
    Ok((1..=n as u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        match Options::from_args(&["loadgen"], args) {
            Ok(o) => o,
            Err(e) => panic!("{args:?}: {}", e.output),
        }
    }

    #[test]
    fn defaults_match_help() {
        let o = Options::default();
        assert_eq!(o.clients, 500);
        assert_eq!(o.payload, 64);
        assert_eq!(o.duration, 10.0);
        assert_eq!(o.warmup, 1.0);
        assert_eq!(o.mode(), Ok(Mode::Rate(DEFAULT_RATE)));
        assert_eq!(o.sender_count(), 500);
    }

    #[test]
    fn modes() {
        assert_eq!(parse(&["--flood", "4"]).mode(), Ok(Mode::Flood(4)));
        assert_eq!(parse(&["--rate", "0"]).mode(), Ok(Mode::Idle));
        assert_eq!(parse(&["--senders", "0"]).mode(), Ok(Mode::Idle));
        assert_eq!(parse(&["--idle"]).sender_count(), 0);
        assert!(parse(&["--rate", "1", "--flood", "2"]).mode().is_err());
        assert!(parse(&["--flood", "0"]).mode().is_err());
        assert!(parse(&["--rate", "-1"]).mode().is_err());
        assert_eq!(
            parse(&["--clients", "10", "--senders", "99"]).sender_count(),
            10
        );
    }

    #[test]
    fn sources_only_when_needed() {
        let lo: SocketAddr = ([127, 0, 0, 1], 7878).into();
        assert!(choose_sources(lo, 100, None).unwrap().is_empty());
        let three = choose_sources(lo, 100, Some(3)).unwrap();
        assert_eq!(three.len(), 3);
        assert_eq!(three[2], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
        let remote: SocketAddr = ([10, 0, 0, 1], 7878).into();
        assert!(choose_sources(remote, 100, Some(2)).is_err());
    }

    #[test]
    fn several_servers() {
        let o = parse(&["--addr", "127.0.0.1:1", "--addr", "127.0.0.1:2"]);
        assert_eq!(o.addr, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert!(Options::default().addr.is_empty());
    }
}
