//! loopchat: a line-based chat server on one thread and one `mio` event loop.
//!
//! # Layout
//!
//! - [`server`]: the event loop. Accepts, reads, runs commands, flushes
//!   output once per turn, reaps closed connections, shuts down. Its
//!   `mod.rs` holds the public API and one loop turn; child modules hold the
//!   steps: `accept` (listeners, admission, handshakes, WebSocket upgrade),
//!   `input` (reading, running lines), `output` (closing, flushing),
//!   `timers` (history commits, periodic checks), `lifecycle` (reaping,
//!   signals, shutdown, certificate reload, metrics text) and `clients`
//!   (the connections and their output, the chat's `Outbox`).
//! - [`fd_limit`]: raises the open-file limit for many clients.
//! - [`connection`]: one client connection: its transport, its partial input
//!   and its queued output.
//! - [`transport`]: a connection's stream (socket bytes to plaintext: plain
//!   TCP or TLS) and codec (plaintext to lines and lines to queued bytes: the line
//!   protocol, or HTTP then WebSocket).
//! - [`http`]: the web address: request heads (httparse), the embedded chat
//!   page, the upgrade and the Origin rule.
//! - [`ws`]: WebSocket frames: a streaming decoder of client frames into
//!   lines, and the frames the server sends (one text frame per line,
//!   encoded once per fan-out).
//! - [`guard`]: limits across connections: per-address connection counts,
//!   password failures and lockouts, TCP keepalive settings.
//! - [`logsum`]: summarises per-connection log lines, so churn from one
//!   address cannot fill a disk.
//! - [`limits`]: flood control, fairness by output work, the soft output
//!   limit over time, the global output bound with eviction, and departures
//!   announced a work budget at a time.
//! - [`framing`]: splits a byte stream into lines, enforcing the line limit
//!   without buffering over-long lines.
//! - [`protocol`]: parses one line into a [`protocol::Command`]; no sockets.
//! - [`tls`]: TLS with rustls, driven sans-IO by the loop; certificate
//!   loading and reload; the blocking client side for the example client.
//! - [`chat`]: nicks, rooms and fan-out as plain data; output goes through the
//!   [`chat::Outbox`] trait, so it is unit-tested without a network.
//! - [`history`]: `:history` from per-room tails in memory, and the SQLite
//!   history file written by a thread of its own, fed once per loop turn
//!   (`history::tails`, `history::store`, and `history::writer`: the writer
//!   thread at idle priority, with a normal-priority twin when starved).
//! - [`metrics`]: counters the loop keeps as plain integers, rendered in
//!   the Prometheus text format when scraped, and the `process_*` metrics.
//! - [`metrics_http`]: the `/metrics` listener: tiny HTTP/1.1 exchanges
//!   served by the event loop.
//! - [`loadgen`]: the load generator shared by the `loadgen` binary and
//!   `cargo bench`.
//!
//! The binary (`src/main.rs`), the tests and the load generator all start the
//! same [`Server`]:
//!
//! ```no_run
//! let server = loopchat::Server::bind(loopchat::Config::default())?;
//! println!("listening on {}", server.local_addr());
//! server.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```

#![warn(missing_docs)]

pub mod chat;
pub mod config;
pub mod connection;
pub mod fd_limit;
pub mod framing;
/// The invariants of the fuzz targets (`fuzz/`), shared with the corpus
/// test; not part of the server's API.
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod history;
pub mod http;
pub mod limits;
pub mod loadgen;
pub mod logsum;
pub mod metrics;
pub mod metrics_http;
pub mod protocol;
pub mod server;
pub mod tls;
pub mod transport;
pub mod ws;

pub use config::Config;
pub use server::{RunningServer, Server, ShutdownHandle};
