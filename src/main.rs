//! `loopchat`: parses flags, sets up logging, and runs the server.

use argh::FromArgs;
use log::{error, info, warn, LevelFilter};
use loopchat::chat::history::{self, HistoryConfig};
use loopchat::config::parse_addr;
use loopchat::policy::guard::{GuardConfig, Keepalive};
use loopchat::{Config, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// A line-based chat server on one thread. Try it with `nc 127.0.0.1 7878`,
/// a browser on http://127.0.0.1:7879/
/// or `cargo run --example client`. Log level from RUST_LOG (default info).
#[derive(FromArgs)]
struct Flags {
    /// address to listen on: IP:PORT, [IPv6]:PORT or HOST:PORT, resolved at
    /// start (default 127.0.0.1:7878)
    #[argh(
        option,
        default = "loopchat::config::DEFAULT_ADDR.parse().expect(\"valid default\")",
        from_str_fn(parse_addr)
    )]
    addr: SocketAddr,

    /// open connections allowed at once; the next gets `! server full`
    /// (default 10000)
    #[argh(option, default = "Config::default().max_clients")]
    max_clients: usize,

    /// longest line a client may send, in bytes (default 4096)
    #[argh(option, default = "Config::default().max_line_bytes")]
    max_line_bytes: usize,

    /// output bytes queued for one client before it is cut off as too slow
    /// (default 1048576)
    #[argh(option, default = "Config::default().max_outbuf_bytes")]
    max_outbuf_bytes: usize,

    /// server password; also read from LOOPCHAT_PASSWORD so it need not
    /// appear in `ps` (default: none)
    #[argh(option)]
    password: Option<String>,

    /// seconds a client may take to finish a line it started; a client that
    /// sends nothing is never timed out (quiet is not dead); 0 never times
    /// out (default 30)
    #[argh(option, default = "30")]
    idle_timeout: u64,

    /// open connections allowed from one address (IPv6: one /64); the next
    /// gets `! too many connections from your address`; 0: no limit
    /// (default 16)
    #[argh(option, default = "GuardConfig::default().max_per_address")]
    max_per_address: usize,

    /// apply --max-per-address to loopback clients too (exempt by default)
    #[argh(switch)]
    limit_loopback: bool,

    /// seconds a connection to a password server may stay unauthenticated;
    /// 0: no limit (default 30)
    #[argh(option, default = "30")]
    auth_timeout: u64,

    /// wrong passwords from one address, over any connections, that lock it
    /// out of `:auth` for --auth-lockout seconds (default 5)
    #[argh(option, default = "GuardConfig::default().auth_max_failures")]
    auth_max_failures: u32,

    /// seconds an address stays locked out after too many wrong passwords
    /// (default 60)
    #[argh(option, default = "60")]
    auth_lockout: u64,

    /// seconds of silence before TCP keepalive probes a client; 0 turns
    /// keepalive off (default 60)
    #[argh(option, default = "60")]
    keepalive_idle: u64,

    /// seconds between TCP keepalive probes (default 10)
    #[argh(option, default = "10")]
    keepalive_interval: u64,

    /// unanswered keepalive probes before a client is dropped as dead
    /// (default 6)
    #[argh(option, default = "6")]
    keepalive_count: u32,

    /// seconds a closing connection may take to receive its last line
    /// (bye, server full) before it is dropped; a shutdown waits at most
    /// 3 s whatever this says (default 5)
    #[argh(option, default = "5")]
    close_timeout: u64,

    /// bytes read from one client per loop turn before others are served
    /// (default 65536)
    #[argh(option, default = "Config::default().read_budget_bytes")]
    read_budget_bytes: usize,

    /// output memory of all clients together; past it the clients holding
    /// the most are cut off as too slow; 0: no bound (default 268435456)
    #[argh(option, default = "Config::default().max_output_total_bytes")]
    max_output_total_bytes: usize,

    /// output bytes a client's queue may hold for longer than
    /// --soft-outbuf-secs before it is cut off as too slow (default 262144)
    #[argh(option, default = "Config::default().soft_outbuf.bytes")]
    soft_outbuf_bytes: usize,

    /// seconds a queue may stay above --soft-outbuf-bytes; 0: no soft
    /// limit (default 30)
    #[argh(option, default = "30")]
    soft_outbuf_secs: u64,

    /// output bytes one client's lines may cause per loop turn (fan-out and
    /// answers) before its next lines wait for the next turn; departures
    /// are announced this much per turn too (default 1048576)
    #[argh(option, default = "Config::default().work_budget_bytes")]
    work_budget_bytes: usize,

    /// flood control: lines per second a client may send, sustained; 0: no
    /// line limit (default 20)
    #[argh(option, default = "Config::default().flood.lines_per_sec")]
    flood_lines_per_sec: u32,

    /// flood control: bytes per second a client may send, sustained; 0: no
    /// byte limit (default 65536)
    #[argh(option, default = "Config::default().flood.bytes_per_sec")]
    flood_bytes_per_sec: u64,

    /// flood control: seconds' worth of each rate a client may send at once
    /// (default 5)
    #[argh(option, default = "Config::default().flood.burst_secs")]
    flood_burst_secs: u32,

    /// SO_SNDBUF of each client socket, bounding the kernel memory a client
    /// that stops reading pins; 0: the kernel's autotuning (default 131072)
    #[argh(option, default = "Config::default().send_buffer_bytes")]
    sndbuf_bytes: usize,
    /// where to serve the chat page and WebSocket (`GET /`, `GET /ws`), or
    /// `off`; with --tls-cert it speaks only HTTPS and wss (default
    /// 127.0.0.1:7879)
    #[argh(option, default = "loopchat::config::DEFAULT_WEB_ADDR.to_string()")]
    web_addr: String,

    /// an origin allowed to open a WebSocket besides the page's own, e.g.
    /// `https://chat.example.org`; repeat for more (default: none)
    #[argh(option)]
    web_origin: Vec<String>,

    /// seconds a WebSocket client may stay silent before it is pinged
    /// (default 30)
    #[argh(option, default = "30")]
    ws_ping_interval: u64,

    /// TLS certificate chain, PEM. With --tls-key: line clients over TLS on
    /// --tls-addr, and the web address speaks only HTTPS/wss; SIGHUP
    /// re-reads both files (default: none, no TLS)
    #[argh(option)]
    tls_cert: Option<PathBuf>,

    /// TLS private key, PEM, matching --tls-cert (default: none)
    #[argh(option)]
    tls_key: Option<PathBuf>,

    /// address for line clients over TLS, used with --tls-cert
    /// (default 127.0.0.1:7443)
    #[argh(
        option,
        default = "loopchat::config::DEFAULT_TLS_ADDR.parse().expect(\"valid default\")"
    )]
    tls_addr: SocketAddr,

    /// with TLS configured, do not listen for plain line clients on --addr
    #[argh(switch)]
    no_plain: bool,
    /// chat history file (SQLite, created if missing); `:memory:` keeps
    /// history in memory only, lost at exit (default loopchat-history.db in
    /// the working directory)
    #[argh(option, default = "history::DEFAULT_FILE.into()")]
    history_file: PathBuf,

    /// the most lines `:history N` returns, at least 20 (default 100)
    #[argh(option, default = "HistoryConfig::default().max_lines")]
    history_max: usize,

    /// days chat history is kept; 0 keeps it forever (default 30)
    #[argh(option, default = "HistoryConfig::default().keep_days")]
    history_keep_days: u32,

    /// lines of history kept per room; 0 for no limit, else at least
    /// --history-max (default 0)
    #[argh(option, default = "HistoryConfig::default().keep_lines_per_room")]
    history_keep_lines: u64,

    /// chat lines waiting for the history file past which their senders are
    /// read more slowly (default 50000)
    #[argh(option, default = "HistoryConfig::default().max_in_flight")]
    history_queue: usize,

    /// memory for the rooms' recent lines; past it, those of rooms that no
    /// longer exist are dropped and read back from the file when needed
    /// (default 67108864)
    #[argh(option, default = "HistoryConfig::default().max_memory_bytes")]
    history_memory_bytes: usize,

    /// scheduling of the history writer: idle (uses only CPU time nothing
    /// else wants; a normal-priority stand-in takes over when it falls
    /// behind) or normal (default idle)
    #[argh(option, default = "HistoryConfig::default().writer_priority")]
    history_writer_priority: history::WriterPriority,

    /// milliseconds a batch of chat lines may wait for the idle-priority
    /// history writer before a normal-priority one takes over (default 500)
    #[argh(
        option,
        default = "HistoryConfig::default().writer_max_wait.as_millis() as u64"
    )]
    history_writer_max_wait_ms: u64,

    /// serve Prometheus metrics at http://ADDR/metrics, e.g.
    /// 127.0.0.1:9878; keep it on loopback or a private network (default:
    /// no metrics listener)
    #[argh(option)]
    metrics_addr: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let flags: Flags = loopchat::protocol::cli::from_env(env!("CARGO_PKG_VERSION"));
    if let Err(err) = simple_logger::SimpleLogger::new()
        .with_level(LevelFilter::Info)
        .env()
        .init()
    {
        eprintln!("loopchat: cannot set up logging: {err}");
    }
    let password = flags
        .password
        .or_else(|| std::env::var("LOOPCHAT_PASSWORD").ok())
        .filter(|password| !password.is_empty());
    if flags.max_clients == 0 || flags.max_line_bytes == 0 || flags.max_outbuf_bytes == 0 {
        eprintln!(
            "loopchat: --max-clients, --max-line-bytes and --max-outbuf-bytes must be above 0"
        );
        return ExitCode::from(2);
    }
    if flags.history_max < history::MIN_HISTORY_MAX {
        eprintln!(
            "loopchat: --history-max must be at least {}",
            history::MIN_HISTORY_MAX
        );
        return ExitCode::from(2);
    }
    if flags.history_keep_lines != 0
        && flags.history_keep_lines < u64::try_from(flags.history_max).unwrap_or(u64::MAX)
    {
        eprintln!("loopchat: --history-keep-lines must be 0 or at least --history-max");
        return ExitCode::from(2);
    }
    let history_file = (flags.history_file.as_os_str() != history::MEMORY_ONLY)
        .then(|| flags.history_file.clone());
    let web_addr = match flags.web_addr.as_str() {
        "off" | "none" | "" => None,
        text => {
            match text.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(err) => {
                    eprintln!("loopchat: --web-addr {text}: {err} (an address like 127.0.0.1:7879, or off)");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let config = Config {
        addr: flags.addr,
        max_clients: flags.max_clients,
        max_line_bytes: flags.max_line_bytes,
        max_outbuf_bytes: flags.max_outbuf_bytes,
        password,
        idle_timeout: seconds_or_never(flags.idle_timeout),
        close_timeout: Duration::from_secs(flags.close_timeout),
        guard: GuardConfig {
            max_per_address: flags.max_per_address,
            limit_loopback: flags.limit_loopback,
            auth_timeout: seconds_or_never(flags.auth_timeout),
            auth_max_failures: flags.auth_max_failures.max(1),
            auth_lockout: Duration::from_secs(flags.auth_lockout),
            keepalive: (flags.keepalive_idle > 0).then(|| Keepalive {
                idle: Duration::from_secs(flags.keepalive_idle),
                interval: Duration::from_secs(flags.keepalive_interval.max(1)),
                count: flags.keepalive_count.max(1),
            }),
        },
        read_budget_bytes: flags.read_budget_bytes.max(1),
        max_output_total_bytes: flags.max_output_total_bytes,
        soft_outbuf: loopchat::policy::limits::SoftLimit {
            bytes: flags.soft_outbuf_bytes,
            period: (flags.soft_outbuf_secs > 0)
                .then(|| Duration::from_secs(flags.soft_outbuf_secs)),
        },
        work_budget_bytes: flags.work_budget_bytes.max(1),
        flood: loopchat::policy::limits::FloodLimit {
            lines_per_sec: flags.flood_lines_per_sec,
            bytes_per_sec: flags.flood_bytes_per_sec,
            burst_secs: flags.flood_burst_secs.max(1),
        },
        send_buffer_bytes: flags.sndbuf_bytes,
        handle_signals: true,
        web_addr,
        web_origins: flags.web_origin,
        ws_ping_interval: Duration::from_secs(flags.ws_ping_interval.max(1)),
        plain: !flags.no_plain,
        tls_cert: flags.tls_cert,
        tls_key: flags.tls_key,
        tls_addr: flags.tls_addr,
        history: HistoryConfig {
            file: history_file,
            max_lines: flags.history_max,
            keep_days: flags.history_keep_days,
            keep_lines_per_room: flags.history_keep_lines,
            max_in_flight: flags.history_queue.max(1),
            max_memory_bytes: flags.history_memory_bytes,
            writer_priority: flags.history_writer_priority,
            writer_max_wait: Duration::from_millis(flags.history_writer_max_wait_ms),
        },
        metrics_addr: flags.metrics_addr,
    };
    if config.tls_cert.is_some() != config.tls_key.is_some() {
        eprintln!("loopchat: --tls-cert and --tls-key go together");
        return ExitCode::from(2);
    }
    if flags.no_plain && config.tls_cert.is_none() {
        eprintln!("loopchat: --no-plain needs TLS (--tls-cert and --tls-key)");
        return ExitCode::from(2);
    }
    let with_tls = config.tls_cert.is_some();
    raise_descriptor_limit(config.max_clients);
    let with_password = config.password.is_some();
    let web_addr_flag = flags.web_addr.clone();
    let tls_addr_text = if with_tls {
        format!(", TLS address {}", flags.tls_addr)
    } else {
        String::new()
    };
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(err) if err.kind() == std::io::ErrorKind::InvalidInput => {
            error!("cannot start: {err}");
            return ExitCode::FAILURE;
        }
        Err(err) => {
            let metrics_text = flags
                .metrics_addr
                .map(|metrics| format!(", metrics address {metrics}"))
                .unwrap_or_default();
            match history::open_error(&err) {
                Some(err) => error!("{err}"),
                None => error!(
                    "cannot listen on {} or web address {web_addr_flag}{tls_addr_text}{metrics_text}: {err}",
                    flags.addr
                ),
            }
            return ExitCode::FAILURE;
        }
    };
    info!(
        "listening on {}{}",
        server.local_addr(),
        if with_password {
            " (password required)"
        } else {
            ""
        }
    );
    match server.web_addr() {
        Some(web) if with_tls => info!("chat page on https://{web}/ (WebSocket at wss://{web}/ws)"),
        Some(web) => info!("chat page on http://{web}/ (WebSocket at ws://{web}/ws)"),
        None => {}
    }
    if let Some(tls_addr) = server.tls_addr() {
        info!("TLS line clients on {tls_addr}");
    }
    if let Some(metrics) = server.metrics_addr() {
        info!("metrics on http://{metrics}/metrics");
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("event loop failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A flag in seconds where 0 means no limit.
fn seconds_or_never(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// Descriptors the server needs besides one per client: stdio, the poller,
/// the listener, the waker, the signal pipe, and some slack.
const SPARE_DESCRIPTORS: u64 = 32;

/// Raises the soft descriptor limit toward `max_clients` (as Redis does), so
/// the default 1024 does not silently cap the server; warns when it cannot.
/// Past the limit the server keeps serving and retries accepting, so this is
/// about capacity, not safety.
fn raise_descriptor_limit(max_clients: usize) {
    let wanted = u64::try_from(max_clients)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE_DESCRIPTORS);
    match loopchat::net::fd_limit::raise(wanted) {
        Ok(limit) if limit < wanted => warn!(
            "only {limit} file descriptors (ulimit -n): fewer than --max-clients {max_clients} \
             can connect; raise the hard limit to serve them all"
        ),
        Ok(_) => {}
        Err(err) => warn!("cannot read the file descriptor limit: {err}"),
    }
}
