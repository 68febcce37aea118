//! IRC clients on the loop (`docs/irc.md`): each line of an IRC connection
//! is parsed ([`crate::protocol::irc::Message`]), run through registration
//! until the client has a nick ([`crate::protocol::irc::Registration`]),
//! then mapped onto the line protocol's typed commands (`irc_cmds.rs`),
//! which run exactly as a line client's do ([`EventLoop::run_command`]:
//! accounts, the cluster, the chat). What the chat answers comes back as
//! typed lines and is written in the IRC dialect by the fan-out cache;
//! what only IRC has (the welcome burst, `CAP`, `WHO`, `ISON`…) is written
//! here, straight into the client's queue as an answer.

use super::clients::Output;
use super::EventLoop;
use crate::chat::ClientId;
use crate::end_reason::EndReason;
use crate::net::transport::Framing;
use crate::net::ws;
use crate::protocol::irc::burst::{self, Lusers, ServerInfo};
use crate::protocol::irc::{self, Message, Numeric, ParseError, Rules};
use log::info;

use super::ircv3::OFFERED_CAPS;

/// The software and version IRC clients are told (`002`, `004`).
const VERSION: &str = concat!("loopchat-", env!("CARGO_PKG_VERSION"));

impl EventLoop {
    /// Whether connection `id` speaks IRC.
    pub(super) fn is_irc(&self, id: ClientId) -> bool {
        self.clients.conns.get(id).is_some_and(|c| c.irc.is_some())
    }

    /// The nick IRC numerics to `id` are addressed to (`*` before it has
    /// one).
    pub(super) fn irc_nick(&self, id: ClientId) -> String {
        self.clients
            .conns
            .get(id)
            .and_then(|c| c.irc.as_ref())
            .map_or_else(|| "*".to_string(), |irc| irc.nick.clone())
    }

    /// Queues IRC bytes written for client `id`, as an answer to its own
    /// command (so in order with the chat's answers).
    /// Over WebSocket each message is one frame (text, or binary for
    /// `binary.ircv3.net`), without its CR LF.
    pub(super) fn irc_send(&mut self, id: ClientId, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let framing = self
            .clients
            .conns
            .get(id)
            .map(|c| c.codec.encoder.framing());
        let frame = match framing {
            None => return,
            Some(Framing::Plain) => {
                return self.clients.queue_output(id, Output::Encoded(bytes), true);
            }
            Some(Framing::WebSocket) => ws::text_frame,
            Some(Framing::WebSocketBinary) => ws::binary_frame,
        };
        let mut framed = Vec::with_capacity(bytes.len() + 8);
        for message in bytes.split_inclusive(|&b| b == b'\n') {
            let message = message.strip_suffix(b"\n").unwrap_or(message);
            frame(message.strip_suffix(b"\r").unwrap_or(message), &mut framed);
        }
        self.clients
            .queue_output(id, Output::Encoded(&framed), true);
    }

    /// Writes a numeric to client `id` (from the server, to its nick).
    pub(super) fn irc_numeric(
        &mut self,
        id: ClientId,
        numeric: Numeric,
        params: &[&str],
        text: Option<&str>,
    ) {
        let nick = self.irc_nick(id);
        let mut out = Vec::new();
        irc::numeric::write(
            &mut out,
            &self.config.server_name,
            numeric,
            &nick,
            params,
            text,
        );
        self.irc_send(id, &out);
    }

    /// A line over the IRC limit: `417`, and nothing else happens.
    pub(super) fn irc_too_long(&mut self, id: ClientId) {
        self.irc_numeric(id, Numeric::InputTooLong, &[], None);
    }

    /// One complete line from an IRC client (without CR LF).
    pub(super) fn run_irc_line(&mut self, id: ClientId, bytes: &[u8]) {
        let Some(registered) = self
            .clients
            .conns
            .get(id)
            .and_then(|c| c.irc.as_ref())
            .map(|irc| irc.registered())
        else {
            return;
        };
        let message = match Message::parse(bytes) {
            Ok(message) => message,
            Err(ParseError::Empty) => return,
            Err(
                ParseError::BadCommand(_)
                | ParseError::ForbiddenByte
                | ParseError::InvalidUtf8 { command: None },
            ) if !registered => {
                // Not IRC at all (a TLS hello, an HTTP header, binary):
                // this connection only is closed.
                let mut out = Vec::new();
                Message::new("ERROR", &["Closing link: (not IRC)"])
                    .with_trailing()
                    .write(&mut out);
                self.irc_send(id, &out);
                self.close_gracefully(id, EndReason::NotIrc);
                return;
            }
            Err(err) => {
                let nick = self.irc_nick(id);
                let mut out = Vec::new();
                err.write_reply(&self.config.server_name, &nick, &mut out);
                self.irc_send(id, &out);
                return;
            }
        };
        match self.irc_label(id, &message) {
            Some(label) => self.run_labelled(id, &message, &label),
            None => self.run_irc_message(id, &message),
        }
    }

    /// One parsed message: registration's business, or a command.
    pub(super) fn run_irc_message(&mut self, id: ClientId, message: &Message<'_>) {
        if message.is("AUTHENTICATE") {
            // SASL, before or after registration.
            return self.irc_authenticate(id, message);
        }
        let chat = &self.chat;
        let Some(irc) = self.clients.irc_mut(id) else {
            return;
        };
        let taken = |nick: &str| chat.nick_taken_here(usize::MAX, nick);
        let rules = Rules {
            password: self.config.password.as_deref(),
            offered: OFFERED_CAPS,
            nick_taken: &taken,
        };
        let was_registered = irc.registered();
        let outcome = irc.registration.handle(message, &rules);
        let nick = irc.nick.clone();
        match outcome {
            irc::Outcome::Command => return self.run_irc_command(id, message),
            irc::Outcome::Quit(reason) if was_registered => {
                let command = crate::protocol::Command::Quit(reason);
                return self.run_command(id, ":quit", command, None);
            }
            irc::Outcome::Registered => return self.irc_registered(id),
            _ => {}
        }
        let mut out = Vec::new();
        outcome.write(&self.config.server_name, &nick, OFFERED_CAPS, &mut out);
        self.irc_send(id, &out);
        if was_registered {
            // A `CAP REQ` may have changed what the chat does for it.
            self.irc_caps_changed(id);
        }
        match outcome {
            irc::Outcome::Quit(_) => self.close_gracefully(id, EndReason::Quit),
            irc::Outcome::BadPassword => {
                let peer = self.clients.conns.get(id).map(|c| c.peer());
                if let Some(peer) = peer {
                    self.password_failed(peer.ip(), "PASS");
                }
                self.close_gracefully(id, EndReason::AuthFailed);
            }
            _ => {}
        }
    }

    /// Registration completed: the client enters the chat under its nick
    /// (with `--cluster`, once Redis has given it the nick: its input
    /// waits meanwhile).
    fn irc_registered(&mut self, id: ClientId) {
        let Some(nick) = self
            .clients
            .conns
            .get(id)
            .and_then(|c| c.irc.as_ref())
            .and_then(|irc| irc.registration.nick())
            .map(str::to_string)
        else {
            return;
        };
        if self.cluster.is_single() {
            return self.irc_enter(id, &nick);
        }
        if self.chat.nick_taken_here(usize::MAX, &nick) {
            return self.irc_nick_lost(id, &nick);
        }
        if !self.cluster_claim_for_irc(id, &nick) {
            return self.irc_cluster_unavailable(id);
        }
        if let Some(conn) = self.clients.conns.get_mut(id) {
            conn.account_wait = true;
        }
    }

    /// `ERROR`, and the connection closes: the cluster cannot be reached.
    fn irc_cluster_unavailable(&mut self, id: ClientId) {
        let mut out = Vec::new();
        Message::new("ERROR", &["Closing link: (cluster unavailable)"])
            .with_trailing()
            .write(&mut out);
        self.irc_send(id, &out);
        self.close_gracefully(id, EndReason::ClusterUnavailable);
    }

    /// Redis answered the claim of `nick` for IRC client `id` (`Err`: it
    /// could not): it enters the chat, or is told `433`, or `ERROR`.
    pub(super) fn irc_claim_answered(&mut self, id: ClientId, nick: &str, won: Result<bool, ()>) {
        let waiting = self.clients.conns.get(id).is_some_and(|c| {
            c.is_open()
                && c.irc
                    .as_ref()
                    .is_some_and(|irc| irc.registration.nick() == Some(nick))
        });
        if !waiting {
            if won == Ok(true) {
                self.cluster_release(nick);
            }
            return;
        }
        self.resume_input(id);
        match won {
            Ok(true) if !self.chat.nick_taken_here(usize::MAX, nick) => self.irc_enter(id, nick),
            Ok(true) => {
                self.cluster_release(nick);
                self.irc_nick_lost(id, nick);
            }
            Ok(false) => self.irc_nick_lost(id, nick),
            Err(()) => self.irc_cluster_unavailable(id),
        }
    }

    /// The nick registration asked for is someone else's: `433`, and
    /// registration waits for another `NICK`.
    fn irc_nick_lost(&mut self, id: ClientId, nick: &str) {
        if let Some(irc) = self.clients.irc_mut(id) {
            irc.registration.nick_lost();
        }
        let mut out = Vec::new();
        let server = &self.config.server_name;
        irc::numeric::write(&mut out, server, Numeric::NicknameInUse, "*", &[nick], None);
        self.irc_send(id, &out);
    }

    /// The client enters the chat under `nick`, in no room, and gets the
    /// welcome burst; `433` if the nick was taken meanwhile.
    fn irc_enter(&mut self, id: ClientId, nick: &str) {
        if !self.chat.connect_irc(id, nick) {
            return self.irc_nick_lost(id, nick);
        }
        let Some(irc) = self.clients.irc_mut(id) else {
            return;
        };
        let nick = nick.to_string();
        irc.nick = nick.clone();
        // (With --cluster its nick is claimed already: only its rooms.)
        self.cluster_after(id);
        let counts = self.irc_lusers();
        let out = self.irc_with_info(|info, out| burst::write_welcome(out, info, &nick, counts));
        self.irc_send(id, &out);
        self.irc_caps_changed(id);
        // Authenticated with SASL before `CAP END`: logged in now (under
        // the account's name, as `:login` does).
        self.chat.sasl_log_in(id, &mut self.clients);
        let peer = self.clients.conns.get(id).map(|c| c.peer());
        if let Some(peer) = peer.filter(|peer| self.logs.allow(peer.ip(), self.now)) {
            info!("{peer}: registered on IRC as {nick}");
        }
    }

    /// The counts `LUSERS` (and the welcome burst) report.
    pub(super) fn irc_lusers(&self) -> Lusers {
        let unknown = self
            .clients
            .conns
            .iter()
            .filter(|(_, c)| c.is_open() && c.irc.as_ref().is_some_and(|irc| !irc.registered()))
            .count();
        Lusers {
            users: self.chat.member_count(),
            invisible: 0,
            operators: self.chat.admins_online(),
            unknown,
            channels: self.chat.rooms_with_members(),
        }
    }

    /// `003`'s date: when this server started, as UTC.
    pub(super) fn irc_created(&self) -> String {
        self.started_utc.clone()
    }

    /// What `write` makes of the server's info (name, version, start,
    /// `CHATHISTORY` limit, MOTD): the welcome burst's and `MOTD`'s.
    fn irc_with_info(&self, write: impl FnOnce(&ServerInfo<'_>, &mut Vec<u8>)) -> Vec<u8> {
        let motd: Vec<&str> = self.config.motd.iter().map(String::as_str).collect();
        let created = self.irc_created();
        let info = ServerInfo {
            server: &self.config.server_name,
            network: &self.config.server_name,
            version: VERSION,
            created: &created,
            chathistory: Some(self.chathistory_max()),
            motd: &motd,
        };
        let mut out = Vec::new();
        write(&info, &mut out);
        out
    }

    /// `MOTD`: 375, the message of the day's lines (372), 376; or 422
    /// when there is none.
    pub(super) fn irc_motd(&mut self, id: ClientId) {
        let nick = self.irc_nick(id);
        let out = self.irc_with_info(|info, out| burst::write_motd(out, info, &nick));
        self.irc_send(id, &out);
    }

    /// An `OPER` login came back (`ok`: the password was right): `381`
    /// when the account administers the server, else `491` (a wrong
    /// password was answered `464` already).
    pub(super) fn irc_oper_done(&mut self, id: ClientId, ok: bool) {
        let pending = self.clients.irc_mut(id).and_then(|irc| irc.oper.take());
        if pending.is_none() || !ok {
            return;
        }
        if self.chat.is_admin(id) {
            self.irc_numeric(id, Numeric::YoureOper, &[], None);
        } else {
            self.irc_numeric(id, Numeric::NoOperHost, &[], None);
        }
    }
}
