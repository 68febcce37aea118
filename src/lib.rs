//! loopchat: a line-based chat server on one thread and one `mio` event loop.
//!
//! # Layout
//!
//! This crate is the server (library and binary) of a Cargo workspace; its
//! siblings are `crates/protocol` (what both ends share, re-exported here
//! as [`protocol`]), `crates/loadgen` (the load generator) and
//! `crates/client` (the terminal client and the client side of TLS). The
//! server's folders show its layers; each folder's `mod.rs` lists its files:
//!
//! - [`server`]: the event loop. Accepts, reads, runs commands, flushes
//!   output once per turn, reaps closed connections, shuts down. Its
//!   `mod.rs` holds the public API and one loop turn; child modules hold the
//!   steps: `listeners` (the listening sockets as a list, bind errors),
//!   `accept` (one admission path, handshakes, WebSocket upgrade),
//!   `input` (reading, running lines), `output` (closing, flushing),
//!   `timers` (history commits, periodic checks), `lifecycle` (reaping,
//!   signals, shutdown, certificate and settings reload, metrics text),
//!   `proxied` (connections from a trusted proxy until their PROXY header
//!   is read), `clients` (the connections and their output, the chat's
//!   `Outbox`), `cluster` (with `--cluster`: the Redis engine's events,
//!   and the commands that go through it), `cluster_presence` (who is
//!   where across servers), `irc` and `irc_cmds` (IRC clients:
//!   registration, then their commands mapped onto the chat's typed
//!   commands, `docs/irc.md`), `ircv3` (`CHATHISTORY`, SASL, what the
//!   negotiated capabilities change).
//! - [`net`]: the network side, bytes and sockets with no chat in them:
//!   connections, transports (plain TCP or TLS; the line codec or HTTP then
//!   WebSocket), line framing, HTTP, WebSocket frames, the server's TLS,
//!   the `/metrics` listener, the open-file limit, an IRC connection's own
//!   state (`net::irc`).
//! - [`chat`]: the chat side, plain data with no sockets: nicks, rooms and
//!   fan-out (a command comes in typed, its lines go out typed through the
//!   [`chat::Outbox`] trait, and what the connection must do comes back as
//!   a [`chat::Outcome`]), `chat::history` (the per-room tails in memory
//!   and the SQLite history file written by a thread of its own),
//!   `chat::completion` (work finished on those threads, handed back to
//!   the loop along one channel and its one waker) and `chat::remote` (with
//!   `--cluster`, the other servers' clients mirrored).
//! - [`accounts`]: the accounts engine (protocol 1.2): Argon2id password
//!   hashes made on a worker thread with a bounded queue, login tokens of
//!   which only a digest is kept, throttles that slow guessing and never
//!   lock, the accounts in memory and their tables in the history file.
//!   Depends on nothing else of the crate.
//! - [`policy`]: the rules that keep one client from hurting the others:
//!   flood control, fairness, output bounds and departures (`limits`),
//!   per-address limits and lockouts (`guard`), log summaries (`logsum`).
//! - [`cluster`]: several servers, one chat, through Redis: a sans-IO
//!   Redis client on the loop's poller (RESP, a pipelined command
//!   connection and a subscriber connection, reconnecting with backoff),
//!   each room's lines numbered, stored and published by one Redis
//!   function call per room per turn and delivered in id order with gaps
//!   filled or reported lost, nicks held with an expiry, guest numbers,
//!   each server's membership published and the servers alive;
//!   [`cluster::Cluster`] is `Single` without `--cluster`. Uses only `mio`.
//! - [`end_reason`]: why a connection ended ([`end_reason::EndReason`]):
//!   its log text, metrics label and WebSocket close status; depends on
//!   nothing, so `net`, `policy` and `metrics` all use it.
//! - [`metrics`]: counters the loop keeps as plain integers, rendered in
//!   the Prometheus text format when scraped, and the `process_*` metrics.
//! - [`config`]: every setting the server enforces, with its default.
//! - [`settings`]: the flags and the `--config` TOML file (one struct for
//!   both), `--print-config`, and re-reading the file on SIGHUP.
//!
//! Dependencies point one way, with no circles: `server` uses all the
//! others; `net` uses `policy` (a connection's limits), `metrics` and
//! `chat`'s history types; `policy` and `metrics` use `chat`'s types;
//! `chat` uses only `protocol` and `accounts`; `settings` (used by
//! `server` and the binary) uses `config` and the types it fills;
//! `end_reason` and `accounts` use nothing of the crate.
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

pub mod accounts;
pub mod chat;
pub mod cluster;
pub mod config;
pub mod end_reason;
/// The invariants of the fuzz targets (`fuzz/`), shared with the corpus
/// test; not part of the server's API.
#[doc(hidden)]
pub mod fuzzing;
pub mod metrics;
pub mod net;
pub mod policy;
pub mod server;
pub mod settings;

/// The protocol code both ends share (commands, names, constants): the
/// `loopchat-protocol` crate, under the name the server has always used.
pub use loopchat_protocol as protocol;

pub use config::Config;
pub use server::{BindError, ListenerKind, RunningServer, Server, ShutdownHandle, StartError};
