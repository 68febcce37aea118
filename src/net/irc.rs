//! An IRC connection's own state (`docs/irc.md`): registration, the nick
//! its numerics name, the capabilities it negotiated, its away message.
//! The connection's business, not the chat's: the chat sees an IRC client
//! as a nick in rooms like any other once it has registered.

use crate::protocol::irc::{CapSet, Registration};

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

    /// The capabilities that change the bytes of the lines it is sent:
    /// part of its fan-out key. None yet (the capabilities that do, such
    /// as `server-time` and `message-tags`, are to come).
    pub fn render_caps(&self) -> CapSet {
        CapSet::EMPTY
    }
}
