//! The chat side: plain data, no sockets.
//!
//! - [`state`]: nicks, rooms and fan-out; commands in, lines out through
//!   the [`Outbox`] trait, so it is unit-tested without a network. It
//!   words what [`rooms`] decides.
//! - [`history`]: `:history` from per-room tails in memory, and the SQLite
//!   history file written by a thread of its own, fed once per loop turn.
//! - [`completion`]: what those threads finish, handed back to the event
//!   loop along one channel and its one waker.
//! - [`rooms`]: the room model of protocol 1.2 (several rooms per client,
//!   a current room, operators, bans, topics) as plain data with typed
//!   results, no wording.
//! - [`remote`]: with `--cluster`, the other servers' clients (nick,
//!   rooms, server) as this server mirrors them, for `:users`, `:rooms`
//!   and the announcements of their joins and leaves.
//! - [`keys`]: the key directory of `:key`/`:keys` and the checks on keys
//!   and `:e2e` payloads (end-to-end encryption, `docs/e2e.md`); not yet
//!   used by [`state`] (it needs accounts).
//!
//! The commands themselves are parsed by the shared protocol crate
//! ([`crate::protocol`]).

pub mod completion;
pub mod history;
pub mod keys;
pub mod remote;
pub mod rooms;
pub mod state;

pub use state::*;
