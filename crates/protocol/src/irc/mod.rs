//! IRC, sans I/O: the codec an IRC connection will run on the transport
//! seam (`docs/irc.md`). Bytes never come in here and nothing is sent from
//! here: a connection hands in one line at a time and gets typed values
//! back, and it asks for messages to be rendered into its own buffer.
//!
//! - [`message`]: parsing a client's line into a [`Message`] (tags, source,
//!   command, parameters; the 512-byte and 8191-byte limits; UTF8ONLY)
//!   and rendering one into a reused buffer.
//! - [`numeric`]: the numeric replies, with the Modern IRC documents'
//!   parameters and texts.
//! - [`caps`]: the IRCv3 capabilities the server offers, as a set.
//! - [`chathistory`]: `CHATHISTORY` requests, their `FAIL`s, and the
//!   reply as a `chathistory` batch.
//! - [`registration`]: PASS, NICK, USER and CAP (LS 302, REQ, LIST, END)
//!   as a state machine yielding typed outcomes.
//! - [`render`]: the chat's typed lines as IRC messages (the IRC dialect).
//! - [`replies`]: `NAMES` split to fit 512 bytes, a channel's topic.
//! - [`sasl`]: SASL `PLAIN` over `AUTHENTICATE`, as a state machine.
//! - [`burst`]: the welcome burst (`001`–`005`, LUSERS, MOTD).
//! - [`command`]: a registered client's message as a typed command (what
//!   the connection maps onto chat operations), or the numeric refusing it.
//! - [`delivery`]: the tags the negotiated capabilities put on what a
//!   client is sent, and the `labeled-response` frame of an answer.
//! - [`mask`]: wildcard masks (bans, `WHO`), nickmasks, and the IRC
//!   WebSocket subprotocol a client's offer picks.
//! - [`text`]: CTCP `ACTION` and `:me`, stripping IRC formatting codes,
//!   splitting a long line at character boundaries.

pub mod burst;
pub mod caps;
pub mod chathistory;
pub mod command;
pub mod delivery;
pub mod mask;
pub mod message;
pub mod numeric;
pub mod registration;
pub mod render;
pub mod replies;
pub mod sasl;
pub mod text;

pub use caps::{Cap, CapSet};
pub use message::{Message, ParseError, MAX_LINE_BYTES, MAX_MESSAGE_BYTES, MAX_TAGS_BYTES};
pub use numeric::Numeric;
pub use registration::{Outcome, Registration, Rules};

#[cfg(test)]
mod tests;
