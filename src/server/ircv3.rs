//! IRCv3 on the loop (`docs/irc.md`, "IRCv3"): `draft/chathistory` from
//! the history store, SASL `PLAIN` through the accounts' worker, and what
//! the negotiated capabilities change for a client (`echo-message`).
//!
//! - `CHATHISTORY`: answered from the room's tail in memory when it is
//!   sure to hold the answer ([`crate::chat::history::query`]), else read
//!   from the history file by the writer thread after the lines accepted
//!   before it; the answer comes back on the completion path
//!   ([`EventLoop::irc_history_answers`]). The loop never reads the file.
//! - `AUTHENTICATE`: [`crate::protocol::irc::sasl`] decodes the exchange;
//!   the credentials go to the hashing worker as a login would
//!   ([`crate::chat::Chat::sasl_verify`]), throttled alike; its answer
//!   comes back to [`EventLoop::irc_sasl_done`] (`900`/`903` or `904`). A
//!   client that authenticated before registering is logged in as it
//!   enters the chat.

use super::EventLoop;
use crate::chat::history::query;
use crate::chat::history::tails::unix_now_ms;
use crate::chat::ClientId;
use crate::net::irc::HistoryWait;
use crate::net::transport::Framing;
use crate::net::ws;
use crate::protocol::irc::chathistory::{self, Batch, Fail, Line};
use crate::protocol::irc::sasl::{self, Step};
use crate::protocol::irc::{delivery, Cap, CapSet, Message, Numeric};

/// The longest label accepted (IRCv3 `labeled-response`: servers may
/// ignore longer ones); a longer label is not answered with one.
const MAX_LABEL_BYTES: usize = 64;

/// The capabilities offered in `CAP LS` (and accepted in `CAP REQ`): those
/// whose behaviour the server has. `multi-prefix` holds trivially (the only
/// prefix is `@`); `cap-notify` too (the offer never changes while a
/// client is connected, so there is never a `CAP NEW` or `CAP DEL`).
pub(super) const OFFERED_CAPS: CapSet = CapSet::EMPTY
    .with(Cap::CapNotify)
    .with(Cap::MessageTags)
    .with(Cap::ServerTime)
    .with(Cap::EchoMessage)
    .with(Cap::Batch)
    .with(Cap::LabeledResponse)
    .with(Cap::MultiPrefix)
    .with(Cap::UserhostInNames)
    .with(Cap::AccountTag)
    .with(Cap::ExtendedJoin)
    .with(Cap::Sasl)
    .with(Cap::ChatHistory);

impl EventLoop {
    /// The most lines one `CHATHISTORY` gives (`CHATHISTORY=` in `005`):
    /// the `:history` maximum.
    pub(super) fn chathistory_max(&self) -> usize {
        self.config.history.effective_max()
    }

    /// `CHATHISTORY …` from a registered client.
    pub(super) fn irc_chathistory(&mut self, id: ClientId, message: &Message<'_>) {
        let server = self.config.server_name.clone();
        let request = match chathistory::parse(message, self.chathistory_max()) {
            Ok(request) => request,
            Err(fail) => {
                let mut out = Vec::new();
                fail.write(&server, &mut out);
                return self.irc_send(id, &out);
            }
        };
        let member = self
            .chat
            .irc_membership(id, request.target)
            .unwrap_or(false);
        if !member {
            let mut out = Vec::new();
            Fail::InvalidTarget(request.subcommand, request.target).write(&server, &mut out);
            return self.irc_send(id, &out);
        }
        let key = request.target.to_ascii_lowercase();
        let plan = query::plan(request.selector, request.limit);
        let now = unix_now_ms();
        let tails = self.chat.history_mut();
        if let Some(lines) = tails.query(&key, &plan, now) {
            let lines = lines.iter().map(|l| (l.id, l.ts, &*l.line));
            return self.irc_send_history(id, request.target, lines);
        }
        let cutoff = tails.cutoff(now);
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        // Its next lines wait for the answer: one read of the file at a
        // time per client, and its answers stay in order.
        conn.account_wait = true;
        let Some(irc) = conn.irc.as_deref_mut() else {
            return;
        };
        irc.history_seq = irc.history_seq.wrapping_add(1);
        let token = (id as u64) << 32 | u64::from(irc.history_seq);
        irc.history_waits.push(HistoryWait {
            token,
            target: request.target.to_string(),
        });
        self.history.query(token, &key, plan, cutoff);
        // Without a writer the answer (nothing) is there at once.
        self.irc_history_answers();
    }

    /// Answers the `CHATHISTORY` requests whose lines came from the file
    /// (`MESSAGE_ERROR` when it could not be read); called on every turn's
    /// completions.
    pub(super) fn irc_history_answers(&mut self) {
        for answer in self.history.take_answers() {
            let id = (answer.token >> 32) as ClientId;
            let Some(irc) = self.clients.irc_mut(id) else {
                continue;
            };
            let Some(at) = irc
                .history_waits
                .iter()
                .position(|w| w.token == answer.token)
            else {
                continue;
            };
            let wait = irc.history_waits.remove(at);
            self.resume_input(id);
            match answer.lines {
                Some(lines) => {
                    let lines = lines.iter().map(|l| (l.id, l.ts, l.line.as_str()));
                    self.irc_send_history(id, &wait.target, lines);
                }
                None => {
                    let mut out = Vec::new();
                    let server = self.config.server_name.clone();
                    Fail::MessageError("CHATHISTORY", &wait.target).write(&server, &mut out);
                    self.irc_send(id, &out);
                }
            }
        }
    }

    /// Sends `lines` (id, time, as delivered; oldest first) to `id` as a
    /// `chathistory` batch for `target`, tagged as its caps allow.
    fn irc_send_history<'l>(
        &mut self,
        id: ClientId,
        target: &str,
        lines: impl Iterator<Item = (i64, i64, &'l str)>,
    ) {
        let Some(irc) = self.clients.irc_mut(id) else {
            return;
        };
        irc.history_seq = irc.history_seq.wrapping_add(1);
        let batch_id = format!("ch{}", irc.history_seq);
        let caps = irc.registration.caps();
        let batch = Batch {
            server: &self.config.server_name,
            id: &batch_id,
            target,
            caps,
        };
        let mut out = Vec::new();
        let lines = lines.filter_map(|(line_id, ts, text)| Line::from_delivered(line_id, ts, text));
        chathistory::write_batch(&batch, lines, &mut out);
        self.irc_send(id, &out);
    }

    /// `AUTHENTICATE …`, before or after registration.
    pub(super) fn irc_authenticate(&mut self, id: ClientId, message: &Message<'_>) {
        if self.chat.sasl_account(id).is_some() {
            return self.sasl_numeric(id, Numeric::SaslAlready, &[], None);
        }
        let Some(irc) = self.clients.irc_mut(id) else {
            return;
        };
        if !irc.registration.caps().contains(Cap::Sasl) {
            // SASL is for clients that asked for it.
            return self.sasl_numeric(id, Numeric::SaslFail, &[], None);
        }
        if irc.sasl_waiting {
            // Its verification runs; the client must wait for the answer.
            return;
        }
        match irc.sasl.handle(message.param(0)) {
            Step::Continue => {
                let mut out = Vec::new();
                Message::new("AUTHENTICATE", &["+"]).write(&mut out);
                self.irc_send(id, &out);
            }
            Step::More => {}
            Step::Verify(credentials) => {
                irc.sasl_waiting = true;
                self.chat
                    .sasl_verify(id, &credentials.account, &credentials.password);
                self.dispatch_account_jobs();
            }
            Step::Fail => self.sasl_numeric(id, Numeric::SaslFail, &[], None),
            Step::Mechanisms => {
                self.sasl_numeric(id, Numeric::SaslMechs, &[sasl::MECHANISMS], None);
                self.sasl_numeric(id, Numeric::SaslFail, &[], None);
            }
            Step::TooLong => self.sasl_numeric(id, Numeric::SaslTooLong, &[], None),
            Step::Aborted => self.sasl_numeric(id, Numeric::SaslAborted, &[], None),
            Step::NeedMoreParams => {
                self.sasl_numeric(id, Numeric::NeedMoreParams, &["AUTHENTICATE"], None)
            }
        }
    }

    /// A SASL verification came back (`ok`: the password was right):
    /// `900` and `903`, or `904`. Nothing for a connection that is not
    /// waiting for one.
    pub(super) fn irc_sasl_done(&mut self, id: ClientId, ok: bool) {
        let Some(irc) = self.clients.irc_mut(id) else {
            return;
        };
        if !std::mem::take(&mut irc.sasl_waiting) {
            return;
        }
        let account = self.chat.sasl_account(id).map(str::to_string);
        match account.filter(|_| ok) {
            Some(account) => {
                let nick = self.irc_nick(id);
                let who = if nick == "*" {
                    account.as_str()
                } else {
                    nick.as_str()
                };
                let mask = crate::protocol::irc::mask::nickmask(who, &self.config.server_name);
                let text = format!("You are now logged in as {account}");
                self.sasl_numeric(id, Numeric::LoggedIn, &[&mask, &account], Some(&text));
                self.sasl_numeric(id, Numeric::SaslSuccess, &[], None);
            }
            None => self.sasl_numeric(id, Numeric::SaslFail, &[], None),
        }
    }

    /// A SASL numeric: to the nick the client chose even before it is
    /// registered (irssi and WeeChat send `NICK` before `AUTHENTICATE`).
    fn sasl_numeric(
        &mut self,
        id: ClientId,
        numeric: Numeric,
        params: &[&str],
        text: Option<&str>,
    ) {
        let Some(irc) = self.clients.conns.get(id).and_then(|c| c.irc.as_deref()) else {
            return;
        };
        let nick = match irc.registration.nick() {
            Some(nick) if irc.nick == "*" => nick.to_string(),
            _ => irc.nick.clone(),
        };
        let mut out = Vec::new();
        let server = &self.config.server_name;
        crate::protocol::irc::numeric::write(&mut out, server, numeric, &nick, params, text);
        self.irc_send(id, &out);
    }

    /// The `label` tag of `message`, when its client has
    /// `labeled-response` (and the label is one: 1 to 64 bytes). `QUIT`
    /// is never labelled (its `ERROR` is the connection's last line).
    pub(super) fn irc_label(&self, id: ClientId, message: &Message<'_>) -> Option<String> {
        let irc = self.clients.conns.get(id)?.irc.as_deref()?;
        if !irc.registration.caps().contains(Cap::LabeledResponse) || message.is("QUIT") {
            return None;
        }
        let (_, value) = message.tags().find(|(key, _)| *key == "label")?;
        let label = crate::protocol::tags::unescape(value);
        (!label.is_empty() && label.len() <= MAX_LABEL_BYTES).then(|| label.into_owned())
    }

    /// Runs a labelled message: its client's answers are gathered while it
    /// runs, then sent labelled (`ACK` for none, a `labeled-response`
    /// batch for several). Answers that come later (a SASL check, history
    /// read from the file) are not part of it.
    pub(super) fn run_labelled(&mut self, id: ClientId, message: &Message<'_>, label: &str) {
        self.clients.capture = Some((id, Vec::new()));
        self.run_irc_message(id, message);
        let Some((_, gathered)) = self.clients.capture.take() else {
            return;
        };
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        // Over WebSocket the answers were framed: one message a frame.
        let plain = if conn.codec.encoder.framing() == Framing::Plain {
            gathered
        } else {
            let mut plain = Vec::with_capacity(gathered.len());
            for payload in ws::payloads(&gathered) {
                plain.extend_from_slice(payload);
                plain.extend_from_slice(b"\r\n");
            }
            plain
        };
        let Some(irc) = conn.irc.as_deref_mut() else {
            return;
        };
        irc.history_seq = irc.history_seq.wrapping_add(1);
        let batch_id = format!("lr{}", irc.history_seq);
        let mut out = Vec::with_capacity(plain.len() + 64);
        delivery::write_labelled(&self.config.server_name, label, &batch_id, &plain, &mut out);
        self.irc_send(id, &out);
    }

    /// What a client's capabilities change once it is in the chat (at
    /// registration, and after each `CAP REQ`): `echo-message`.
    pub(super) fn irc_caps_changed(&mut self, id: ClientId) {
        let echo = self
            .clients
            .conns
            .get(id)
            .and_then(|c| c.irc.as_ref())
            .is_some_and(|irc| irc.registration.caps().contains(Cap::EchoMessage));
        self.chat.set_echo(id, echo);
    }
}
