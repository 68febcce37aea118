//! The chat side: plain data, no sockets.
//!
//! - [`state`]: nicks, rooms and fan-out; commands in, lines out through
//!   the [`Outbox`] trait, so it is unit-tested without a network.
//! - [`history`]: `:history` from per-room tails in memory, and the SQLite
//!   history file written by a thread of its own, fed once per loop turn.
//!
//! The commands themselves are parsed by the shared protocol crate
//! ([`crate::protocol`]).

pub mod history;
pub mod state;

pub use state::*;
