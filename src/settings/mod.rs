//! Settings: the server's flags, the `--config` file that may hold them,
//! and the [`Config`] they make.
//!
//! One struct, [`Flags`], is both the command line (argh) and the file
//! (serde, TOML): every flag is a key of the same name and none can be
//! forgotten in either. Every field is an `Option` (or an empty list, or a
//! switch), so a value says whether it was given at all: the command line
//! is laid over the file, the file over [`Flags::defaults`], with
//! [`Flags::or`]. (argh's own defaults would hide which flags were typed.)
//! A switch can only be turned on: one set in the file stays on.
//!
//! [`file`] reads the file with errors that name the key and the line, and
//! prints the effective settings; [`Reload`] re-reads it on SIGHUP.

use crate::accounts::{AccountsConfig, MAX_PASSWORD_BYTES};
use crate::chat::history::{self, HistoryConfig};
use crate::chat::rooms::MIN_ROOMS_PER_CLIENT;
use crate::cluster::ClusterSettings;
use crate::config::{parse_addr, Config};
use crate::net::proxy::Cidr;
use crate::policy::guard::{GuardConfig, Keepalive};
use crate::policy::limits::{FloodLimit, SoftLimit};
use argh::FromArgs;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod file;
pub mod help;
mod text;

pub use file::{load, Reload, Reloaded};

/// A line-based chat server on one thread. Try it with `nc 127.0.0.1 7878`,
/// a browser on http://127.0.0.1:7879/
/// or `cargo run --example client`. Log level from RUST_LOG (default info).
#[derive(FromArgs, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Flags {
    /// read settings from this TOML file: every flag is a key of the same
    /// name (`max-clients = 500`); flags given here win over the file;
    /// SIGHUP re-reads it (see loopchat.example.toml)
    #[argh(option)]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// print the effective settings (defaults, the file, then the flags) as
    /// TOML, the password shown as ***, and exit
    #[argh(switch)]
    #[serde(skip)]
    pub print_config: bool,

    /// address to listen on: IP:PORT, [IPv6]:PORT or HOST:PORT, resolved at
    /// start (default 127.0.0.1:7878)
    #[argh(option, from_str_fn(parse_addr))]
    #[serde(with = "text::addr")]
    pub addr: Option<SocketAddr>,

    /// open connections allowed at once; the next gets `! server full`
    /// (default 10000)
    #[argh(option)]
    pub max_clients: Option<usize>,

    /// longest line a client may send, in bytes (default 4096)
    #[argh(option)]
    pub max_line_bytes: Option<usize>,

    /// output bytes queued for one client before it is cut off as too slow
    /// (default 1048576)
    #[argh(option)]
    pub max_outbuf_bytes: Option<usize>,

    /// server password; also read from LOOPCHAT_PASSWORD so it need not
    /// appear in `ps` (default: none)
    #[argh(option)]
    pub password: Option<String>,

    /// seconds a client may take to finish a line it started; a client that
    /// sends nothing is never timed out (quiet is not dead); 0 never times
    /// out (default 30)
    #[argh(option)]
    pub idle_timeout: Option<u64>,

    /// open connections allowed from one address (IPv6: one /64); the next
    /// gets `! too many connections from your address`; 0: no limit
    /// (default 16)
    #[argh(option)]
    pub max_per_address: Option<usize>,

    /// apply --max-per-address to loopback clients too (exempt by default)
    #[argh(switch)]
    pub limit_loopback: bool,

    /// connect and disconnect lines one address (IPv6: one /64) may log per
    /// 10 s; the rest are counted in one `and N more` line (default 20)
    #[argh(option)]
    pub log_lines_per_address: Option<u32>,

    /// connect and disconnect lines all addresses together may log per
    /// 10 s, summarised the same way (default 1000)
    #[argh(option)]
    pub log_lines_total: Option<u32>,

    /// seconds a connection to a password server may stay unauthenticated;
    /// 0: no limit (default 30)
    #[argh(option)]
    pub auth_timeout: Option<u64>,

    /// wrong passwords from one address, over any connections, that lock it
    /// out of `:auth` for --auth-lockout seconds (default 5)
    #[argh(option)]
    pub auth_max_failures: Option<u32>,

    /// seconds an address stays locked out after too many wrong passwords
    /// (default 60)
    #[argh(option)]
    pub auth_lockout: Option<u64>,

    /// seconds of silence before TCP keepalive probes a client; 0 turns
    /// keepalive off (default 60)
    #[argh(option)]
    pub keepalive_idle: Option<u64>,

    /// seconds between TCP keepalive probes (default 10)
    #[argh(option)]
    pub keepalive_interval: Option<u64>,

    /// unanswered keepalive probes before a client is dropped as dead
    /// (default 6)
    #[argh(option)]
    pub keepalive_count: Option<u32>,

    /// seconds a closing connection may take to receive its last line
    /// (bye, server full) before it is dropped; a shutdown waits at most
    /// 3 s whatever this says (default 5)
    #[argh(option)]
    pub close_timeout: Option<u64>,

    /// bytes read from one client per loop turn before others are served
    /// (default 65536)
    #[argh(option)]
    pub read_budget_bytes: Option<usize>,

    /// output memory of all clients together; past it the clients holding
    /// the most are cut off as too slow; 0: no bound (default 268435456)
    #[argh(option)]
    pub max_output_total_bytes: Option<usize>,

    /// output bytes a client's queue may hold for longer than
    /// --soft-outbuf-secs before it is cut off as too slow (default 262144)
    #[argh(option)]
    pub soft_outbuf_bytes: Option<usize>,

    /// seconds a queue may stay above --soft-outbuf-bytes; 0: no soft
    /// limit (default 30)
    #[argh(option)]
    pub soft_outbuf_secs: Option<u64>,

    /// output bytes one client's lines may cause per loop turn (fan-out and
    /// answers) before its next lines wait for the next turn; departures
    /// are announced this much per turn too (default 1048576)
    #[argh(option)]
    pub work_budget_bytes: Option<usize>,

    /// flood control: lines per second a client may send, sustained; 0: no
    /// line limit (default 20)
    #[argh(option)]
    pub flood_lines_per_sec: Option<u32>,

    /// flood control: bytes per second a client may send, sustained; 0: no
    /// byte limit (default 65536)
    #[argh(option)]
    pub flood_bytes_per_sec: Option<u64>,

    /// flood control: seconds' worth of each rate a client may send at once
    /// (default 5)
    #[argh(option)]
    pub flood_burst_secs: Option<u32>,

    /// SO_SNDBUF of each client socket, bounding the kernel memory a client
    /// that stops reading pins; 0: the kernel's autotuning (default 131072)
    #[argh(option)]
    pub sndbuf_bytes: Option<usize>,
    /// where to serve the chat page and WebSocket (`GET /`, `GET /ws`), or
    /// `off`; with --tls-cert it speaks only HTTPS and wss (default
    /// 127.0.0.1:7879)
    #[argh(option)]
    pub web_addr: Option<String>,

    /// an origin allowed to open a WebSocket besides the page's own, e.g.
    /// `https://chat.example.org`; repeat for more (default: none)
    #[argh(option)]
    pub web_origin: Vec<String>,

    /// seconds a WebSocket client may stay silent before it is pinged
    /// (default 30)
    #[argh(option)]
    pub ws_ping_interval: Option<u64>,

    /// TLS certificate chain, PEM. With --tls-key: line clients over TLS on
    /// --tls-addr, and the web address speaks only HTTPS/wss; SIGHUP
    /// re-reads both files (default: none, no TLS)
    #[argh(option)]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key, PEM, matching --tls-cert (default: none)
    #[argh(option)]
    pub tls_key: Option<PathBuf>,

    /// address for line clients over TLS, used with --tls-cert
    /// (default 127.0.0.1:7443)
    #[argh(option)]
    pub tls_addr: Option<SocketAddr>,

    /// with TLS configured, do not listen for plain line clients on --addr
    #[argh(switch)]
    pub no_plain: bool,
    /// chat history file (SQLite, created if missing); `:memory:` keeps
    /// history in memory only, lost at exit (default loopchat-history.db in
    /// the working directory)
    #[argh(option)]
    pub history_file: Option<PathBuf>,

    /// the most lines `:history N` returns, at least 20 (default 100)
    #[argh(option)]
    pub history_max: Option<usize>,

    /// days chat history is kept; 0 keeps it forever (default 30)
    #[argh(option)]
    pub history_keep_days: Option<u32>,

    /// lines of history kept per room; 0 for no limit, else at least
    /// --history-max (default 0)
    #[argh(option)]
    pub history_keep_lines: Option<u64>,

    /// chat lines waiting for the history file past which their senders are
    /// read more slowly (default 50000)
    #[argh(option)]
    pub history_queue: Option<usize>,

    /// memory for the rooms' recent lines; past it, those of rooms that no
    /// longer exist are dropped and read back from the file when needed
    /// (default 67108864)
    #[argh(option)]
    pub history_memory_bytes: Option<usize>,

    /// scheduling of the history writer: idle (uses only CPU time nothing
    /// else wants; a normal-priority stand-in takes over when it falls
    /// behind) or normal (default idle)
    #[argh(option)]
    #[serde(with = "text::parsed")]
    pub history_writer_priority: Option<history::WriterPriority>,

    /// milliseconds a batch of chat lines may wait for the idle-priority
    /// history writer before a normal-priority one takes over (default 500)
    #[argh(option)]
    pub history_writer_max_wait_ms: Option<u64>,

    /// accounts: the shortest password accepted, in bytes (the longest is
    /// 256) (default 8)
    #[argh(option)]
    pub min_password_bytes: Option<usize>,

    /// accounts: days a login token stays valid after its last use
    /// (default 30)
    #[argh(option)]
    pub token_days: Option<u32>,

    /// accounts: registrations allowed from one address (IPv6: one /64)
    /// per hour; 0: no limit (default 5)
    #[argh(option)]
    pub registrations_per_address: Option<u32>,

    /// accounts: registrations allowed over the whole server per hour; 0:
    /// no limit (default 100)
    #[argh(option)]
    pub registrations_per_hour: Option<u32>,

    /// accounts: password hashing jobs that may wait for the hashing
    /// thread; past it `! server busy` (default 64)
    #[argh(option)]
    pub accounts_queue: Option<usize>,

    /// accounts: failed logins of one name allowed at once before they
    /// are slowed (default 5)
    #[argh(option)]
    pub login_burst: Option<u32>,

    /// accounts: then one login of that name per this many seconds; the
    /// answer waits, the account is never locked (default 60)
    #[argh(option)]
    pub login_interval_secs: Option<u64>,

    /// accept passwords (:register, :login, :passwd) on plain connections
    /// from non-loopback addresses; off because anyone on the path can
    /// read them there: use TLS
    #[argh(switch)]
    pub allow_plain_passwords: bool,

    /// serve Prometheus metrics at http://ADDR/metrics, e.g.
    /// 127.0.0.1:9878; keep it on loopback or a private network (default:
    /// no metrics listener)
    #[argh(option)]
    pub metrics_addr: Option<SocketAddr>,

    /// a proxy allowed to send a PROXY protocol header (v1 or v2) naming
    /// the client's real address, as an address or range (10.0.0.0/8);
    /// repeat for more. Connections from these must start with the header;
    /// any other connection sending one is closed (default: none, no PROXY
    /// protocol)
    #[argh(option)]
    #[serde(with = "text::list")]
    pub trusted_proxy: Vec<Cidr>,

    /// the Redis of a cluster, redis://HOST:PORT: every server started with
    /// the same one is one chat; also read from LOOPCHAT_CLUSTER (default:
    /// none, this server alone)
    #[argh(option)]
    pub cluster: Option<String>,

    /// lines kept per room in the cluster's Redis to fill a server's gaps;
    /// older ones a server missed disconnect the members who missed them
    /// (default 10000)
    #[argh(option)]
    pub cluster_stream_lines: Option<u64>,

    /// chat lines sent to the cluster's Redis and not yet answered past
    /// which their senders are read more slowly (default 20000)
    #[argh(option)]
    pub cluster_max_in_flight: Option<usize>,

    /// seconds a nick stays taken after its server stops refreshing it
    /// (it died or lost Redis), 1 to 30 (default 20)
    #[argh(option)]
    pub cluster_nick_ttl: Option<u64>,
    /// rooms one client may be in at once, `#lobby` included; at least 20
    /// (default 20)
    #[argh(option)]
    pub max_rooms_per_client: Option<usize>,

    /// an account that administers the server once logged in (an operator
    /// of every room it is in, its :kick and :ban work in every room);
    /// repeat for more (default: none)
    #[argh(option)]
    pub admin: Vec<String>,

    /// where IRC clients connect (irssi, WeeChat, bots; docs/irc.md), or
    /// `off` (default 127.0.0.1:6667)
    #[argh(option)]
    pub irc_addr: Option<String>,

    /// where IRC clients connect over TLS, used with --tls-cert, or `off`
    /// (default 127.0.0.1:6697)
    #[argh(option)]
    pub irc_tls_addr: Option<String>,

    /// the server's name as IRC clients see it (numerics' source, 001-004,
    /// PONG, nickmasks): letters, digits, `.` and `-` (default loopchat)
    #[argh(option)]
    pub server_name: Option<String>,

    /// a line of the message of the day IRC clients get after registering;
    /// repeat for more (default: none, 422)
    #[argh(option)]
    pub motd: Vec<String>,
}

impl Flags {
    /// Every setting at its default: the bottom layer. Options without a
    /// default (password, certificate, metrics address) stay `None`.
    pub fn defaults() -> Flags {
        let config = Config::default();
        let guard = GuardConfig::default();
        let keepalive = guard.keepalive.unwrap_or(Keepalive {
            idle: Duration::ZERO,
            interval: Duration::ZERO,
            count: 0,
        });
        let history = HistoryConfig::default();
        let accounts = AccountsConfig::default();
        let cluster = ClusterSettings::new(SocketAddr::from(([127, 0, 0, 1], 6379)));
        Flags {
            addr: Some(config.addr),
            max_clients: Some(config.max_clients),
            max_line_bytes: Some(config.max_line_bytes),
            max_outbuf_bytes: Some(config.max_outbuf_bytes),
            idle_timeout: Some(secs(config.idle_timeout)),
            max_per_address: Some(guard.max_per_address),
            log_lines_per_address: Some(guard.log_lines_per_address),
            log_lines_total: Some(guard.log_lines_total),
            auth_timeout: Some(secs(guard.auth_timeout)),
            auth_max_failures: Some(guard.auth_max_failures),
            auth_lockout: Some(guard.auth_lockout.as_secs()),
            keepalive_idle: Some(keepalive.idle.as_secs()),
            keepalive_interval: Some(keepalive.interval.as_secs()),
            keepalive_count: Some(keepalive.count),
            close_timeout: Some(config.close_timeout.as_secs()),
            read_budget_bytes: Some(config.read_budget_bytes),
            max_output_total_bytes: Some(config.max_output_total_bytes),
            soft_outbuf_bytes: Some(config.soft_outbuf.bytes),
            soft_outbuf_secs: Some(secs(config.soft_outbuf.period)),
            work_budget_bytes: Some(config.work_budget_bytes),
            flood_lines_per_sec: Some(config.flood.lines_per_sec),
            flood_bytes_per_sec: Some(config.flood.bytes_per_sec),
            flood_burst_secs: Some(config.flood.burst_secs),
            sndbuf_bytes: Some(config.send_buffer_bytes),
            web_addr: Some(crate::config::DEFAULT_WEB_ADDR.to_string()),
            ws_ping_interval: Some(config.ws_ping_interval.as_secs()),
            tls_addr: Some(config.tls_addr),
            history_file: Some(history::DEFAULT_FILE.into()),
            history_max: Some(history.max_lines),
            history_keep_days: Some(history.keep_days),
            history_keep_lines: Some(history.keep_lines_per_room),
            history_queue: Some(history.max_in_flight),
            history_memory_bytes: Some(history.max_memory_bytes),
            history_writer_priority: Some(history.writer_priority),
            history_writer_max_wait_ms: Some(history.writer_max_wait.as_millis() as u64),
            min_password_bytes: Some(accounts.min_password_bytes),
            token_days: Some(accounts.token_days),
            registrations_per_address: Some(accounts.registrations_per_address),
            registrations_per_hour: Some(accounts.registrations_per_hour),
            accounts_queue: Some(accounts.queue),
            login_burst: Some(accounts.login_burst),
            login_interval_secs: Some(accounts.login_interval.as_secs()),
            cluster_stream_lines: Some(cluster.stream_len),
            cluster_max_in_flight: Some(cluster.max_in_flight_lines),
            cluster_nick_ttl: Some(cluster.nick_ttl.as_secs()),
            max_rooms_per_client: Some(config.max_rooms_per_client),
            irc_addr: Some(DEFAULT_IRC_ADDR.to_string()),
            irc_tls_addr: Some(DEFAULT_IRC_TLS_ADDR.to_string()),
            server_name: Some(config.server_name.clone()),
            ..Flags::default()
        }
    }

    /// These settings laid over `lower`: each value given here wins, the
    /// rest comes from `lower`. (Written out field by field so that a new
    /// flag without a line here does not compile.)
    pub fn or(self, lower: Flags) -> Flags {
        fn list<T>(upper: Vec<T>, lower: Vec<T>) -> Vec<T> {
            if upper.is_empty() {
                lower
            } else {
                upper
            }
        }
        Flags {
            config: self.config.or(lower.config),
            print_config: self.print_config || lower.print_config,
            addr: self.addr.or(lower.addr),
            max_clients: self.max_clients.or(lower.max_clients),
            max_line_bytes: self.max_line_bytes.or(lower.max_line_bytes),
            max_outbuf_bytes: self.max_outbuf_bytes.or(lower.max_outbuf_bytes),
            password: self.password.or(lower.password),
            idle_timeout: self.idle_timeout.or(lower.idle_timeout),
            max_per_address: self.max_per_address.or(lower.max_per_address),
            limit_loopback: self.limit_loopback || lower.limit_loopback,
            log_lines_per_address: self.log_lines_per_address.or(lower.log_lines_per_address),
            log_lines_total: self.log_lines_total.or(lower.log_lines_total),
            auth_timeout: self.auth_timeout.or(lower.auth_timeout),
            auth_max_failures: self.auth_max_failures.or(lower.auth_max_failures),
            auth_lockout: self.auth_lockout.or(lower.auth_lockout),
            keepalive_idle: self.keepalive_idle.or(lower.keepalive_idle),
            keepalive_interval: self.keepalive_interval.or(lower.keepalive_interval),
            keepalive_count: self.keepalive_count.or(lower.keepalive_count),
            close_timeout: self.close_timeout.or(lower.close_timeout),
            read_budget_bytes: self.read_budget_bytes.or(lower.read_budget_bytes),
            max_output_total_bytes: self.max_output_total_bytes.or(lower.max_output_total_bytes),
            soft_outbuf_bytes: self.soft_outbuf_bytes.or(lower.soft_outbuf_bytes),
            soft_outbuf_secs: self.soft_outbuf_secs.or(lower.soft_outbuf_secs),
            work_budget_bytes: self.work_budget_bytes.or(lower.work_budget_bytes),
            flood_lines_per_sec: self.flood_lines_per_sec.or(lower.flood_lines_per_sec),
            flood_bytes_per_sec: self.flood_bytes_per_sec.or(lower.flood_bytes_per_sec),
            flood_burst_secs: self.flood_burst_secs.or(lower.flood_burst_secs),
            sndbuf_bytes: self.sndbuf_bytes.or(lower.sndbuf_bytes),
            web_addr: self.web_addr.or(lower.web_addr),
            web_origin: list(self.web_origin, lower.web_origin),
            ws_ping_interval: self.ws_ping_interval.or(lower.ws_ping_interval),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            tls_addr: self.tls_addr.or(lower.tls_addr),
            no_plain: self.no_plain || lower.no_plain,
            history_file: self.history_file.or(lower.history_file),
            history_max: self.history_max.or(lower.history_max),
            history_keep_days: self.history_keep_days.or(lower.history_keep_days),
            history_keep_lines: self.history_keep_lines.or(lower.history_keep_lines),
            history_queue: self.history_queue.or(lower.history_queue),
            history_memory_bytes: self.history_memory_bytes.or(lower.history_memory_bytes),
            history_writer_priority: self
                .history_writer_priority
                .or(lower.history_writer_priority),
            history_writer_max_wait_ms: self
                .history_writer_max_wait_ms
                .or(lower.history_writer_max_wait_ms),
            min_password_bytes: self.min_password_bytes.or(lower.min_password_bytes),
            token_days: self.token_days.or(lower.token_days),
            registrations_per_address: self
                .registrations_per_address
                .or(lower.registrations_per_address),
            registrations_per_hour: self.registrations_per_hour.or(lower.registrations_per_hour),
            accounts_queue: self.accounts_queue.or(lower.accounts_queue),
            login_burst: self.login_burst.or(lower.login_burst),
            login_interval_secs: self.login_interval_secs.or(lower.login_interval_secs),
            allow_plain_passwords: self.allow_plain_passwords || lower.allow_plain_passwords,
            metrics_addr: self.metrics_addr.or(lower.metrics_addr),
            trusted_proxy: list(self.trusted_proxy, lower.trusted_proxy),
            cluster: self.cluster.or(lower.cluster),
            cluster_stream_lines: self.cluster_stream_lines.or(lower.cluster_stream_lines),
            cluster_max_in_flight: self.cluster_max_in_flight.or(lower.cluster_max_in_flight),
            cluster_nick_ttl: self.cluster_nick_ttl.or(lower.cluster_nick_ttl),
            max_rooms_per_client: self.max_rooms_per_client.or(lower.max_rooms_per_client),
            admin: list(self.admin, lower.admin),
            irc_addr: self.irc_addr.or(lower.irc_addr),
            irc_tls_addr: self.irc_tls_addr.or(lower.irc_tls_addr),
            server_name: self.server_name.or(lower.server_name),
            motd: list(self.motd, lower.motd),
        }
    }

    /// The server settings these flags make (unset ones at their
    /// defaults), or what is wrong with them, naming the flag.
    pub fn to_config(&self) -> Result<Config, String> {
        // Every field with a default is `Some` after this, so the
        // `unwrap_or_default`s below never apply.
        let f = self.clone().or(Flags::defaults());
        let max_clients = f.max_clients.unwrap_or_default();
        let max_line_bytes = f.max_line_bytes.unwrap_or_default();
        let max_outbuf_bytes = f.max_outbuf_bytes.unwrap_or_default();
        if max_clients == 0 || max_line_bytes == 0 || max_outbuf_bytes == 0 {
            return Err("max-clients, max-line-bytes and max-outbuf-bytes must be above 0".into());
        }
        let history_max = f.history_max.unwrap_or_default();
        if history_max < history::MIN_HISTORY_MAX {
            return Err(format!(
                "history-max must be at least {}",
                history::MIN_HISTORY_MAX
            ));
        }
        let keep_lines = f.history_keep_lines.unwrap_or_default();
        if keep_lines != 0 && keep_lines < u64::try_from(history_max).unwrap_or(u64::MAX) {
            return Err("history-keep-lines must be 0 or at least history-max".into());
        }
        let history_file = f
            .history_file
            .clone()
            .filter(|file| file.as_os_str() != history::MEMORY_ONLY);
        let irc_addr = optional_addr("irc-addr", f.irc_addr.as_deref(), DEFAULT_IRC_ADDR)?;
        let irc_tls_addr = optional_addr(
            "irc-tls-addr",
            f.irc_tls_addr.as_deref(),
            DEFAULT_IRC_TLS_ADDR,
        )?;
        let server_name = f.server_name.clone().unwrap_or_default();
        if !is_server_name(&server_name) {
            return Err(format!(
                "server-name {server_name:?}: 1 to 63 letters, digits, `.` and `-`"
            ));
        }
        let web_addr = match f.web_addr.as_deref().unwrap_or_default() {
            "off" | "none" | "" => None,
            text => Some(text.parse::<SocketAddr>().map_err(|err| {
                format!("web-addr {text}: {err} (an address like 127.0.0.1:7879, or off)")
            })?),
        };
        if f.tls_cert.is_some() != f.tls_key.is_some() {
            return Err("tls-cert and tls-key go together".into());
        }
        if f.no_plain && f.tls_cert.is_none() {
            return Err("no-plain needs TLS (tls-cert and tls-key)".into());
        }
        let max_rooms_per_client = f.max_rooms_per_client.unwrap_or_default();
        if max_rooms_per_client < MIN_ROOMS_PER_CLIENT {
            return Err(format!(
                "max-rooms-per-client must be at least {MIN_ROOMS_PER_CLIENT}"
            ));
        }
        if let Some(bad) = f
            .admin
            .iter()
            .find(|name| !crate::protocol::is_valid_name(name))
        {
            return Err(format!("admin {bad}: not a valid account name"));
        }
        let keepalive_idle = f.keepalive_idle.unwrap_or_default();
        let accounts = accounts_config(&f)?;
        let nick_ttl = f.cluster_nick_ttl.unwrap_or_default();
        if !(1..=30).contains(&nick_ttl) {
            return Err("cluster-nick-ttl must be 1 to 30 (seconds)".into());
        }
        let cluster = match f.cluster.as_deref().filter(|url| !url.is_empty()) {
            None => None,
            Some(url) => Some(ClusterSettings {
                stream_len: f.cluster_stream_lines.unwrap_or_default().max(1),
                max_in_flight_lines: f.cluster_max_in_flight.unwrap_or_default().max(1),
                nick_ttl: Duration::from_secs(nick_ttl),
                ..ClusterSettings::new(
                    crate::cluster::parse_address(url).map_err(|err| format!("cluster: {err}"))?,
                )
            }),
        };
        Ok(Config {
            addr: f.addr.unwrap_or(Config::default().addr),
            max_clients,
            max_line_bytes,
            max_outbuf_bytes,
            password: f.password.clone().filter(|password| !password.is_empty()),
            idle_timeout: seconds_or_never(f.idle_timeout),
            close_timeout: Duration::from_secs(f.close_timeout.unwrap_or_default()),
            guard: GuardConfig {
                max_per_address: f.max_per_address.unwrap_or_default(),
                limit_loopback: f.limit_loopback,
                auth_timeout: seconds_or_never(f.auth_timeout),
                auth_max_failures: f.auth_max_failures.unwrap_or_default().max(1),
                auth_lockout: Duration::from_secs(f.auth_lockout.unwrap_or_default()),
                keepalive: (keepalive_idle > 0).then(|| Keepalive {
                    idle: Duration::from_secs(keepalive_idle),
                    interval: Duration::from_secs(f.keepalive_interval.unwrap_or_default().max(1)),
                    count: f.keepalive_count.unwrap_or_default().max(1),
                }),
                log_lines_per_address: f.log_lines_per_address.unwrap_or_default(),
                log_lines_total: f.log_lines_total.unwrap_or_default(),
            },
            read_budget_bytes: f.read_budget_bytes.unwrap_or_default().max(1),
            max_output_total_bytes: f.max_output_total_bytes.unwrap_or_default(),
            soft_outbuf: SoftLimit {
                bytes: f.soft_outbuf_bytes.unwrap_or_default(),
                period: seconds_or_never(f.soft_outbuf_secs),
            },
            work_budget_bytes: f.work_budget_bytes.unwrap_or_default().max(1),
            flood: FloodLimit {
                lines_per_sec: f.flood_lines_per_sec.unwrap_or_default(),
                bytes_per_sec: f.flood_bytes_per_sec.unwrap_or_default(),
                burst_secs: f.flood_burst_secs.unwrap_or_default().max(1),
            },
            send_buffer_bytes: f.sndbuf_bytes.unwrap_or_default(),
            handle_signals: false,
            web_addr,
            web_origins: f.web_origin.clone(),
            ws_ping_interval: Duration::from_secs(f.ws_ping_interval.unwrap_or_default().max(1)),
            plain: !f.no_plain,
            tls_cert: f.tls_cert.clone(),
            tls_key: f.tls_key.clone(),
            tls_addr: f.tls_addr.unwrap_or(Config::default().tls_addr),
            history: HistoryConfig {
                file: history_file,
                max_lines: history_max,
                keep_days: f.history_keep_days.unwrap_or_default(),
                keep_lines_per_room: keep_lines,
                max_in_flight: f.history_queue.unwrap_or_default().max(1),
                max_memory_bytes: f.history_memory_bytes.unwrap_or_default(),
                writer_priority: f
                    .history_writer_priority
                    .unwrap_or(HistoryConfig::default().writer_priority),
                writer_max_wait: Duration::from_millis(
                    f.history_writer_max_wait_ms.unwrap_or_default(),
                ),
            },
            accounts,
            metrics_addr: f.metrics_addr,
            trusted_proxies: f.trusted_proxy.clone(),
            cluster,
            max_rooms_per_client,
            admins: f.admin.clone(),
            irc_addr,
            irc_tls_addr,
            server_name,
            motd: f.motd.clone(),
        })
    }
}

/// The IRC address when none is given.
pub const DEFAULT_IRC_ADDR: &str = "127.0.0.1:6667";

/// The TLS IRC address when none is given.
pub const DEFAULT_IRC_TLS_ADDR: &str = "127.0.0.1:6697";

/// An address flag that `off` turns off: `None` then, else the address.
fn optional_addr(
    flag: &str,
    text: Option<&str>,
    example: &str,
) -> Result<Option<SocketAddr>, String> {
    match text.unwrap_or_default() {
        "off" | "none" | "" => Ok(None),
        text => crate::config::parse_addr(text)
            .map(Some)
            .map_err(|err| format!("{flag} {text}: {err} (an address like {example}, or off)")),
    }
}

/// Whether `name` may be the server's name: what IRC clients accept as a
/// host name in a nickmask and a numeric's source.
fn is_server_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !name.starts_with(['.', '-'])
}

/// The account settings of `f` (every value set), or what is wrong.
fn accounts_config(f: &Flags) -> Result<AccountsConfig, String> {
    let min_password_bytes = f.min_password_bytes.unwrap_or_default();
    if !(1..=MAX_PASSWORD_BYTES).contains(&min_password_bytes) {
        return Err(format!(
            "min-password-bytes must be 1 to {MAX_PASSWORD_BYTES}"
        ));
    }
    let token_days = f.token_days.unwrap_or_default();
    let login_interval_secs = f.login_interval_secs.unwrap_or_default();
    if token_days == 0 || login_interval_secs == 0 {
        return Err("token-days and login-interval-secs must be above 0".into());
    }
    Ok(AccountsConfig {
        min_password_bytes,
        token_days,
        registrations_per_address: f.registrations_per_address.unwrap_or_default(),
        registrations_per_hour: f.registrations_per_hour.unwrap_or_default(),
        queue: f.accounts_queue.unwrap_or_default().max(1),
        login_burst: f.login_burst.unwrap_or_default().max(1),
        login_interval: Duration::from_secs(login_interval_secs),
        allow_plain_passwords: f.allow_plain_passwords,
    })
}

/// A setting in seconds where 0 (or unset) means no limit.
fn seconds_or_never(seconds: Option<u64>) -> Option<Duration> {
    seconds
        .filter(|&seconds| seconds > 0)
        .map(Duration::from_secs)
}

/// The flag value of a duration where 0 means never.
fn secs(duration: Option<Duration>) -> u64 {
    duration.map_or(0, |duration| duration.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key set away from its default, in the file's syntax.
    const EVERY_KEY: &str = r#"
        addr = "127.0.0.1:1001"
        max-clients = 11
        max-line-bytes = 12
        max-outbuf-bytes = 13
        password = "p"
        idle-timeout = 14
        max-per-address = 15
        limit-loopback = true
        log-lines-per-address = 46
        log-lines-total = 47
        auth-timeout = 16
        auth-max-failures = 17
        auth-lockout = 18
        keepalive-idle = 19
        keepalive-interval = 20
        keepalive-count = 21
        close-timeout = 22
        read-budget-bytes = 23
        max-output-total-bytes = 24
        soft-outbuf-bytes = 25
        soft-outbuf-secs = 26
        work-budget-bytes = 27
        flood-lines-per-sec = 28
        flood-bytes-per-sec = 29
        flood-burst-secs = 30
        sndbuf-bytes = 31
        web-addr = "off"
        web-origin = ["https://a.example"]
        ws-ping-interval = 32
        tls-cert = "c.pem"
        tls-key = "k.pem"
        tls-addr = "127.0.0.1:1002"
        no-plain = true
        history-file = "h.db"
        history-max = 33
        history-keep-days = 34
        history-keep-lines = 35
        history-queue = 36
        history-memory-bytes = 37
        history-writer-priority = "normal"
        history-writer-max-wait-ms = 38
        min-password-bytes = 39
        token-days = 40
        registrations-per-address = 41
        registrations-per-hour = 42
        accounts-queue = 43
        login-burst = 44
        login-interval-secs = 45
        allow-plain-passwords = true
        metrics-addr = "127.0.0.1:1003"
        trusted-proxy = ["10.0.0.0/8"]
        cluster = "redis://127.0.0.1:1004"
        cluster-stream-lines = 39
        cluster-max-in-flight = 40
        cluster-nick-ttl = 3
        max-rooms-per-client = 39
        admin = ["root"]
        irc-addr = "off"
        irc-tls-addr = "127.0.0.1:1005"
        server-name = "irc.example.org"
        motd = ["hello"]
    "#;

    #[test]
    fn every_key_reaches_the_server_config() {
        let file = file::parse("every", EVERY_KEY).unwrap();
        let changed = file.to_config().unwrap();
        let default = Flags::defaults().to_config().unwrap();
        // Destructured, so a new setting must be added here.
        let Config {
            addr,
            max_clients,
            max_line_bytes,
            max_outbuf_bytes,
            password,
            idle_timeout,
            close_timeout,
            guard,
            read_budget_bytes,
            max_output_total_bytes,
            soft_outbuf,
            work_budget_bytes,
            flood,
            send_buffer_bytes,
            handle_signals: _,
            web_addr,
            web_origins,
            ws_ping_interval,
            plain,
            tls_cert,
            tls_key,
            tls_addr,
            history,
            accounts,
            metrics_addr,
            trusted_proxies,
            cluster,
            max_rooms_per_client,
            admins,
            irc_addr,
            irc_tls_addr,
            server_name,
            motd,
        } = &changed;
        let pairs: Vec<(&str, String, String)> = vec![
            ("addr", format!("{addr:?}"), format!("{:?}", default.addr)),
            (
                "max-clients",
                format!("{max_clients}"),
                format!("{}", default.max_clients),
            ),
            (
                "max-line-bytes",
                format!("{max_line_bytes}"),
                format!("{}", default.max_line_bytes),
            ),
            (
                "max-outbuf-bytes",
                format!("{max_outbuf_bytes}"),
                format!("{}", default.max_outbuf_bytes),
            ),
            (
                "password",
                format!("{password:?}"),
                format!("{:?}", default.password),
            ),
            (
                "idle-timeout",
                format!("{idle_timeout:?}"),
                format!("{:?}", default.idle_timeout),
            ),
            (
                "close-timeout",
                format!("{close_timeout:?}"),
                format!("{:?}", default.close_timeout),
            ),
            (
                "read-budget-bytes",
                format!("{read_budget_bytes}"),
                format!("{}", default.read_budget_bytes),
            ),
            (
                "max-output-total-bytes",
                format!("{max_output_total_bytes}"),
                format!("{}", default.max_output_total_bytes),
            ),
            (
                "work-budget-bytes",
                format!("{work_budget_bytes}"),
                format!("{}", default.work_budget_bytes),
            ),
            (
                "sndbuf-bytes",
                format!("{send_buffer_bytes}"),
                format!("{}", default.send_buffer_bytes),
            ),
            (
                "web-addr",
                format!("{web_addr:?}"),
                format!("{:?}", default.web_addr),
            ),
            (
                "web-origin",
                format!("{web_origins:?}"),
                format!("{:?}", default.web_origins),
            ),
            (
                "ws-ping-interval",
                format!("{ws_ping_interval:?}"),
                format!("{:?}", default.ws_ping_interval),
            ),
            ("no-plain", format!("{plain}"), format!("{}", default.plain)),
            (
                "tls-cert",
                format!("{tls_cert:?}"),
                format!("{:?}", default.tls_cert),
            ),
            (
                "tls-key",
                format!("{tls_key:?}"),
                format!("{:?}", default.tls_key),
            ),
            (
                "tls-addr",
                format!("{tls_addr:?}"),
                format!("{:?}", default.tls_addr),
            ),
            (
                "metrics-addr",
                format!("{metrics_addr:?}"),
                format!("{:?}", default.metrics_addr),
            ),
            (
                "trusted-proxy",
                format!("{trusted_proxies:?}"),
                format!("{:?}", default.trusted_proxies),
            ),
            (
                "max-rooms-per-client",
                format!("{max_rooms_per_client}"),
                format!("{}", default.max_rooms_per_client),
            ),
            (
                "admin",
                format!("{admins:?}"),
                format!("{:?}", default.admins),
            ),
            (
                "irc-addr",
                format!("{irc_addr:?}"),
                format!("{:?}", default.irc_addr),
            ),
            (
                "irc-tls-addr",
                format!("{irc_tls_addr:?}"),
                format!("{:?}", default.irc_tls_addr),
            ),
            (
                "server-name",
                format!("{server_name:?}"),
                format!("{:?}", default.server_name),
            ),
            ("motd", format!("{motd:?}"), format!("{:?}", default.motd)),
        ];
        for (key, got, default) in pairs {
            assert_ne!(got, default, "{key} did not reach the config");
        }
        assert_eq!(
            (soft_outbuf.bytes, soft_outbuf.period),
            (25, Some(Duration::from_secs(26)))
        );
        assert_eq!(
            (flood.lines_per_sec, flood.bytes_per_sec, flood.burst_secs),
            (28, 29, 30)
        );
        assert_eq!(guard.max_per_address, 15);
        assert!(guard.limit_loopback);
        assert_eq!(
            (guard.log_lines_per_address, guard.log_lines_total),
            (46, 47)
        );
        assert_eq!(guard.auth_timeout, Some(Duration::from_secs(16)));
        assert_eq!(guard.auth_max_failures, 17);
        assert_eq!(guard.auth_lockout, Duration::from_secs(18));
        assert_eq!(
            guard.keepalive,
            Some(Keepalive {
                idle: Duration::from_secs(19),
                interval: Duration::from_secs(20),
                count: 21
            })
        );
        assert_eq!(history.file, Some(PathBuf::from("h.db")));
        assert_eq!(
            (
                history.max_lines,
                history.keep_days,
                history.keep_lines_per_room
            ),
            (33, 34, 35)
        );
        assert_eq!((history.max_in_flight, history.max_memory_bytes), (36, 37));
        assert_eq!(history.writer_priority, history::WriterPriority::Normal);
        assert_eq!(history.writer_max_wait, Duration::from_millis(38));
        assert_eq!(
            *accounts,
            AccountsConfig {
                min_password_bytes: 39,
                token_days: 40,
                registrations_per_address: 41,
                registrations_per_hour: 42,
                queue: 43,
                login_burst: 44,
                login_interval: Duration::from_secs(45),
                allow_plain_passwords: true,
            }
        );
        let cluster = cluster.as_ref().expect("cluster reached the config");
        assert_eq!(cluster.addr, SocketAddr::from(([127, 0, 0, 1], 1004)));
        assert_eq!((cluster.stream_len, cluster.max_in_flight_lines), (39, 40));
        assert_eq!(cluster.nick_ttl, Duration::from_secs(3));
        assert!(default.cluster.is_none());
        // The file printed back is the same settings.
        let printed = file::print(&file);
        let mut again = file::parse("printed", &printed).unwrap();
        assert_eq!(again.password.as_deref(), Some("***"));
        again.password = file.password.clone();
        assert_eq!(again, file);
    }

    #[test]
    fn the_command_line_wins_over_the_file_and_the_file_over_defaults() {
        let file = file::parse(
            "f",
            "max-clients = 5\nflood-burst-secs = 2\nweb-origin = [\"https://f\"]",
        )
        .unwrap();
        let command_line = Flags {
            max_clients: Some(7),
            web_origin: vec!["https://c".into()],
            ..Flags::default()
        };
        let config = command_line.or(file).to_config().unwrap();
        assert_eq!(config.max_clients, 7);
        assert_eq!(config.flood.burst_secs, 2);
        assert_eq!(
            config.flood.lines_per_sec,
            FloodLimit::default().lines_per_sec
        );
        assert_eq!(config.web_origins, ["https://c"]);
    }
}
