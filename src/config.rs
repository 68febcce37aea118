//! Server settings: every limit the server enforces, with its default.

use std::net::SocketAddr;
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
    /// Where to serve Prometheus metrics (`GET /metrics`), on a listener of
    /// its own. `None` (the default) serves none.
    pub metrics_addr: Option<SocketAddr>,
}

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
            metrics_addr: None,
        }
    }
}

impl Config {
    /// The default settings, listening on `127.0.0.1:0` (a free port): what
    /// tests and the in-process load generator start from.
    pub fn ephemeral() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        }
    }
}
