//! Server settings: every limit the server enforces, with its default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// A client that sends nothing for this long is disconnected, so
    /// half-open peers do not live forever. `None` never times out.
    pub idle_timeout: Option<Duration>,
    /// How long a closing connection (quit, server full, shutdown) may take
    /// to receive its last line before it is dropped anyway.
    pub close_timeout: Duration,
    /// Bytes read from one client per loop turn before others are served;
    /// the rest waits for the next turn, so a flood cannot starve a `:ping`.
    pub read_budget_bytes: usize,
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
}

/// The TLS line address used when a certificate is given and no address is.
pub const DEFAULT_TLS_ADDR: &str = "127.0.0.1:7443";

/// The web address `cargo run --release` serves the chat page on.
pub const DEFAULT_WEB_ADDR: &str = "127.0.0.1:7879";

/// The address `cargo run --release` listens on.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 7878)),
            max_clients: 10_000,
            max_line_bytes: 4096,
            max_outbuf_bytes: 1024 * 1024,
            password: None,
            idle_timeout: Some(Duration::from_secs(300)),
            close_timeout: Duration::from_secs(5),
            read_budget_bytes: 64 * 1024,
            handle_signals: false,
            web_addr: Some(SocketAddr::from(([127, 0, 0, 1], 7879))),
            web_origins: Vec::new(),
            ws_ping_interval: Duration::from_secs(30),
            plain: true,
            tls_cert: None,
            tls_key: None,
            tls_addr: SocketAddr::from(([127, 0, 0, 1], 7443)),
        }
    }
}

impl Config {
    /// The default settings, listening on `127.0.0.1:0` (a free port, for
    /// the line protocol and for the web address): what tests and the
    /// in-process load generator start from.
    pub fn ephemeral() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            web_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            tls_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        }
    }
}
