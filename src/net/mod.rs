//! The network side: bytes in and out of sockets, and nothing about chat.
//!
//! - [`connection`]: one client connection: its transport, its partial
//!   input, its queued output, and its phase, changed only by its
//!   transitions (open, close, linger, kill), its poll interest derived
//!   from its state.
//! - [`outbuf`]: the output queued for each client and the pool its
//!   buffers are borrowed from.
//! - [`transport`]: a connection's stream (socket bytes to plaintext: plain
//!   TCP or TLS) and codec (plaintext to lines and lines to queued bytes:
//!   the line protocol, or HTTP then WebSocket).
//! - [`framing`]: splits a byte stream into lines, enforcing the line limit
//!   without buffering over-long lines.
//! - [`http`]: the web address: request heads (httparse), the embedded chat
//!   page, the upgrade and the Origin rule.
//! - [`irc`]: an IRC connection's own state (registration, nick, caps).
//! - [`ws`]: WebSocket frames: a streaming decoder of client frames into
//!   lines, and the frames the server sends.
//! - [`tls`]: the server's TLS with rustls, driven sans-IO by the loop;
//!   certificate loading and reload.
//! - [`metrics_http`]: the `/metrics` listener's tiny HTTP/1.1 exchanges.
//! - [`fd_limit`]: raises the open-file limit for many clients.
//! - [`proxy`]: the PROXY protocol (v1, v2) header a trusted proxy sends
//!   first, as a pure parser over bytes, and `--trusted-proxy` ranges.
//! - [`sd_notify`]: tells systemd (`Type=notify`) the server is ready.

pub mod connection;
pub mod fd_limit;
pub mod framing;
pub mod http;
pub mod irc;
pub mod metrics_http;
pub mod outbuf;
pub mod proxy;
pub mod sd_notify;
pub mod tls;
pub mod transport;
pub mod ws;
