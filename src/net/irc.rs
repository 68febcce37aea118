//! An IRC connection's own state (`docs/irc.md`): registration, the nick
//! its numerics name, the capabilities it negotiated, its away message.
//! The connection's business, not the chat's: the chat sees an IRC client
//! as a nick in rooms like any other once it has registered.

use crate::protocol::irc::sasl::Sasl;
use crate::protocol::irc::{delivery, CapSet, Registration};

/// What an IRC connection keeps besides its transport. Boxed in the
/// connection ([`crate::net::connection::Connection::irc`]), so line
/// clients pay one pointer.
#[derive(Debug, Default)]
pub struct IrcState {
    /// `PASS`, `NICK`, `USER`, `CAP` until registration completes; the
    /// negotiated capabilities after.
    pub registration: Registration,
    /// The nick its numerics are addressed to: `*` before registration,
    /// then its nick in the chat (kept up to date as it changes).
    pub nick: String,
    /// `AWAY TEXT`: shown to whoever messages or asks about it (`301`).
    pub away: Option<String>,
    /// User mode `+i` (accepted and shown; every user is listed anyway).
    pub invisible: bool,
    /// `OPER NAME …` was sent and its login runs: the login's answer is
    /// `381`, or `491` when NAME is not an administrator.
    pub oper: Option<String>,
    /// The SASL exchange (`AUTHENTICATE`) under way, if any.
    pub sasl: Sasl,
    /// SASL credentials are being checked by the accounts' worker: the
    /// answer (`900`/`903` or `904`) is still to come.
    pub sasl_waiting: bool,
    /// Numbers this connection's `chathistory` batches and history queries.
    pub history_seq: u32,
    /// `CHATHISTORY` requests waiting for the history file.
    pub history_waits: Vec<HistoryWait>,
    /// Over WebSocket with `binary.ircv3.net`: binary frames both ways.
    pub binary_frames: bool,
}

/// A `CHATHISTORY` request waiting for the history file: its token (the
/// connection's id in the high half, so an answer for a connection that
/// left, whose id was reused, finds nothing) and the channel as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryWait {
    /// Given to the writer with the query, and back with its answer.
    pub token: u64,
    /// The channel as the client named it (the batch's target).
    pub target: String,
}

impl IrcState {
    /// A connection that has sent nothing yet.
    pub fn new() -> IrcState {
        IrcState {
            nick: "*".to_string(),
            ..IrcState::default()
        }
    }

    /// Whether registration has completed (the client is in the chat).
    pub fn registered(&self) -> bool {
        self.registration.is_registered()
    }

    /// The capabilities that change the bytes of the lines it is sent
    /// (`server-time`, `message-tags`): part of its fan-out key.
    pub fn render_caps(&self) -> CapSet {
        delivery::render_caps(self.registration.caps())
    }
}
