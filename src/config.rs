//! Server settings: every limit the server enforces, with its default.

use crate::accounts::AccountsConfig;
use crate::chat::history::HistoryConfig;
use crate::net::proxy::Cidr;
use crate::policy::guard::GuardConfig;
use crate::policy::limits::{FloodLimit, SoftLimit};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::protocol::{DEFAULT_ADDR, DEFAULT_TLS_ADDR, DEFAULT_WEB_ADDR};

/// Everything a [`crate::Server`] needs to know before it binds.
///
/// The binary fills this from its flags; tests and the load generator build
/// it directly, usually with `addr` on port 0.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen. Port 0 asks the OS for a free port; read the real one
    /// back with [`crate::Server::local_addr`].
    pub addr: SocketAddr,
    /// Open connections allowed at once, authenticated or not. The next one
    /// gets `! server full` and is closed.
    pub max_clients: usize,
    /// Longest line a client may send, not counting `\n` or a `\r` before it.
    pub max_line_bytes: usize,
    /// Bytes the server will queue for one client before cutting it off as a
    /// slow consumer.
    pub max_outbuf_bytes: usize,
    /// When set, clients must send `:auth PASSWORD` before anything else.
    pub password: Option<String>,
    /// A client that starts a line and does not finish it within this long
    /// is disconnected (`! idle timeout`), so a connection cannot hold its
    /// slot by dribbling bytes. Only complete lines count: a client that
    /// reads and never sends stays (quiet is not dead; TCP keepalive finds
    /// dead peers). `None` never times out.
    pub idle_timeout: Option<Duration>,
    /// How long a closing connection (quit, server full, shutdown) may take
    /// to receive its last line before it is dropped anyway. At shutdown
    /// the server waits at most [`SHUTDOWN_GRACE`] whatever this says.
    pub close_timeout: Duration,
    /// Per-address connection limit, password lockout, auth timeout, TCP
    /// keepalive.
    pub guard: GuardConfig,
    /// Bytes read from one client per loop turn before others are served;
    /// the rest waits for the next turn, so a flood cannot starve a `:ping`.
    pub read_budget_bytes: usize,
    /// Bound on the output memory of all clients together; past it the
    /// clients holding the most are cut off as too slow until it fits.
    /// 0: no global bound.
    pub max_output_total_bytes: usize,
    /// Output queued for one client may stay above `soft_outbuf.bytes` for
    /// at most `soft_outbuf.period` before it is cut off as too slow.
    pub soft_outbuf: SoftLimit,
    /// Output bytes the lines of one client may cause per loop turn (its
    /// fan-out and answers); its further lines wait for the next turn.
    pub work_budget_bytes: usize,
    /// Per-client input rate limit; [`FloodLimit::OFF`] turns it off.
    pub flood: FloodLimit,
    /// SO_SNDBUF set on every accepted socket, bounding the kernel memory a
    /// client that stops reading can pin; 0 leaves the kernel's autotuning.
    pub send_buffer_bytes: usize,
    /// Install SIGINT/SIGTERM handlers that shut the server down. The binary
    /// sets this; embedded servers (tests, loadgen) use a
    /// [`crate::ShutdownHandle`] instead.
    pub handle_signals: bool,
    /// Where to serve the chat page and WebSocket (`GET /`, `GET /ws`);
    /// `None` turns the web address off.
    pub web_addr: Option<SocketAddr>,
    /// Origins allowed to open a WebSocket besides the server's own
    /// (`http://` + the request's `Host`), e.g. `https://chat.example.org`.
    pub web_origins: Vec<String>,
    /// A WebSocket client silent for this long is pinged; its pong counts
    /// as activity.
    pub ws_ping_interval: Duration,
    /// Listen for plain TCP line clients on `addr`. Can be turned off when
    /// TLS is configured.
    pub plain: bool,
    /// Certificate chain (PEM) for TLS; with `tls_key`, the server also
    /// listens for TLS line clients on `tls_addr`, and the web address
    /// speaks only TLS (HTTPS and `wss://`).
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) matching `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Where TLS line clients connect, when a certificate is configured.
    pub tls_addr: SocketAddr,
    /// Chat history: the file (none keeps it in memory only: the default
    /// here, so tests and embedded servers write no file; the binary's
    /// default is `loopchat-history.db`), the `:history` maximum,
    /// retention, the writer's backlog and the tails' memory.
    pub history: HistoryConfig,
    /// Accounts: password bounds, token span, throttles, the hashing
    /// queue, plain-connection passwords.
    pub accounts: AccountsConfig,
    /// Where to serve Prometheus metrics (`GET /metrics`), on a listener of
    /// its own. `None` (the default) serves none.
    pub metrics_addr: Option<SocketAddr>,
    /// Peers allowed to send a PROXY protocol header naming the client's
    /// real address (see [`crate::net::proxy`]). Empty: no PROXY protocol.
    pub trusted_proxies: Vec<Cidr>,
    /// The cluster's Redis and how it is used (`--cluster`); `None`: this
    /// server is alone (see [`crate::cluster`]).
    pub cluster: Option<crate::cluster::ClusterSettings>,
    /// Rooms one client may be in at once, `#lobby` included (protocol
    /// 1.2; at least [`crate::chat::rooms::MIN_ROOMS_PER_CLIENT`]).
    pub max_rooms_per_client: usize,
    /// Where IRC clients connect (`--irc-addr`, `docs/irc.md`); `None`
    /// turns the IRC address off.
    pub irc_addr: Option<SocketAddr>,
    /// Where IRC clients connect over TLS (`--irc-tls-addr`), used only
    /// when a certificate is configured; `None` turns it off.
    pub irc_tls_addr: Option<SocketAddr>,
    /// The server's name as IRC clients see it (`--server-name`): the
    /// source of numerics, the host of every nickmask, `001`–`004`, `PONG`.
    pub server_name: String,
    /// The message of the day IRC clients get after registration (`--motd`,
    /// one line per entry); empty: `422`.
    pub motd: Vec<String>,
    /// Accounts named server administrators (`--admin`): operators of
    /// every room they are in once logged in. Kept for the accounts to
    /// come; no client can be one yet.
    pub admins: Vec<String>,
}

/// The longest a shutdown waits for clients to take their goodbye and
/// close, whatever the close timeout, so the process exits within 5 s.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Parses a listening address for any address flag: `127.0.0.1:7878`,
/// `[::1]:7878`, or a host name such as `localhost:7000`, resolved now
/// (the first address the resolver returns is used).
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    if text
        .rsplit_once(':')
        .is_none_or(|(host, _)| host.is_empty())
    {
        return Err(format!(
            "{text:?} is not HOST:PORT (e.g. localhost:7000 or [::1]:7878)"
        ));
    }
    text.to_socket_addrs()
        .map_err(|err| format!("cannot resolve {text:?}: {err}"))?
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 7878)),
            max_clients: 10_000,
            max_line_bytes: 4096,
            max_outbuf_bytes: 1024 * 1024,
            password: None,
            idle_timeout: Some(Duration::from_secs(30)),
            close_timeout: Duration::from_secs(5),
            guard: GuardConfig::default(),
            read_budget_bytes: 64 * 1024,
            max_output_total_bytes: 256 * 1024 * 1024,
            soft_outbuf: SoftLimit::default(),
            work_budget_bytes: 1024 * 1024,
            flood: FloodLimit::default(),
            send_buffer_bytes: 128 * 1024,
            handle_signals: false,
            web_addr: Some(SocketAddr::from(([127, 0, 0, 1], 7879))),
            web_origins: Vec::new(),
            ws_ping_interval: Duration::from_secs(30),
            plain: true,
            tls_cert: None,
            tls_key: None,
            tls_addr: SocketAddr::from(([127, 0, 0, 1], 7443)),
            history: HistoryConfig::default(),
            accounts: AccountsConfig::default(),
            metrics_addr: None,
            trusted_proxies: Vec::new(),
            cluster: None,
            max_rooms_per_client: crate::chat::rooms::DEFAULT_ROOMS_PER_CLIENT,
            admins: Vec::new(),
            irc_addr: Some(SocketAddr::from(([127, 0, 0, 1], 6667))),
            irc_tls_addr: Some(SocketAddr::from(([127, 0, 0, 1], 6697))),
            server_name: DEFAULT_SERVER_NAME.to_string(),
            motd: Vec::new(),
        }
    }
}

/// The server's name when `--server-name` does not give one.
pub const DEFAULT_SERVER_NAME: &str = "loopchat";

impl Config {
    /// The default settings, listening on `127.0.0.1:0` (a free port, for
    /// the line protocol, the web address and the IRC addresses): what tests and the
    /// in-process load generator start from.
    pub fn ephemeral() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            web_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            tls_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            irc_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            irc_tls_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_host_names_and_ipv6() {
        assert_eq!(
            parse_addr("127.0.0.1:7000").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 7000))
        );
        assert_eq!(
            parse_addr("[::1]:7878").unwrap(),
            "[::1]:7878".parse().unwrap()
        );
        let local = parse_addr("localhost:7000").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 7000, "{local}");
        assert!(parse_addr("localhost").unwrap_err().contains("HOST:PORT"));
        assert!(parse_addr(":7000").is_err());
        assert!(parse_addr("no-such-host.invalid:7000").is_err());
    }
}
