//! The read path: which connections are read this turn (and which wait for
//! flood control), reading a budget of bytes through the transport, and
//! running the lines and frames that arrive: chat commands, replies,
//! password counting, a peer's close.

use super::clients::Output;
use super::{EventLoop, FLUSH_EARLY_BYTES};
use crate::chat::{AuthResult, Awaited, ClientId, Outbox, Outcome};
use crate::cluster::Cluster;
use crate::end_reason::EndReason;
use crate::net::connection::Phase;
use crate::net::proxy;
use crate::net::transport::{Decoder, Input};
use crate::policy::guard::AuthFailure;
use crate::policy::limits::Held;
use crate::protocol::{self, Command, Error};
use log::{debug, info, warn};
use std::io::{self, Read};
use std::time::Instant;

/// Largest read from a client under a line rate limit: lines past its
/// tokens wait in the connection, so this bounds what they hold (at most
/// 2.5 times this, for one-byte lines).
const FLOOD_READ_BYTES: usize = 16 * 1024;

/// What a connection's read this turn left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadState {
    /// Read to the end: the next input raises a new readiness event.
    Done,
    /// Input or held-back lines are left: serve it again next turn.
    Again,
    /// Flood control holds it back until then.
    WaitUntil(Instant),
    /// An account command waits for the hashing worker.
    Paused,
}

/// The connections waiting to be read, and the buffers reads use.
pub(super) struct Reads {
    /// Connections with unread input: readable this turn, or left over from
    /// an earlier turn when they used up their read budget.
    pub(super) ready: Vec<ClientId>,
    /// Connections with unread input held back by flood control until their
    /// `limits.wake_at`; they are on no other list meanwhile.
    pub(super) throttled: Vec<ClientId>,
    /// Connections not read while the history writer is behind; back on
    /// the read list after its next commit.
    pub(super) parked: Vec<ClientId>,
    /// Connections not read while an account command of theirs waits for
    /// the hashing worker; back on the read list with its answer.
    pub(super) paused: Vec<ClientId>,
    /// Shared read buffer: every read lands here, so idle connections need
    /// no input buffer of their own.
    scratch: Vec<u8>,
    /// A held-back line being run (see [`crate::limits::ClientLimits::deferred`]).
    held_line: Vec<u8>,
}

impl Reads {
    /// Empty lists and a read buffer for `read_budget_bytes` (within 1 KiB
    /// to 16 MiB).
    pub(super) fn new(read_budget_bytes: usize) -> Reads {
        Reads {
            ready: Vec::new(),
            throttled: Vec::new(),
            parked: Vec::new(),
            paused: Vec::new(),
            scratch: vec![0; read_budget_bytes.clamp(1024, 16 * 1024 * 1024)],
            held_line: Vec::new(),
        }
    }

    /// Parked connections go back on the read list (a commit came).
    pub(super) fn unpark(&mut self) {
        self.ready.append(&mut self.parked);
    }

    /// Takes a dropped connection off every list, so its slot reused next
    /// turn does not inherit its place.
    pub(super) fn forget(&mut self, id: ClientId) {
        self.ready.retain(|&queued| queued != id);
        self.parked.retain(|&queued| queued != id);
        self.paused.retain(|&queued| queued != id);
        self.throttled.retain(|&queued| queued != id);
    }
}

impl EventLoop {
    /// Reads every connection on the read list once, up to its budget.
    /// While the history writer is behind, a client whose lines are not yet
    /// committed is parked instead, until the next commit.
    pub(super) fn read_ready_connections(&mut self) {
        let ready = std::mem::take(&mut self.reads.ready);
        for id in ready {
            if self.history.congested() {
                let acked = self.history.acked();
                if let Some(conn) = self.clients.conns.get(id) {
                    if conn.is_open() && conn.history_mark > acked {
                        self.reads.parked.push(id);
                        continue;
                    }
                }
            }
            if let Cluster::Redis(redis) = &self.cluster {
                if redis.congested() {
                    let accepted = redis.accepted_mark();
                    if let Some(conn) = self.clients.conns.get(id) {
                        if conn.is_open() && conn.cluster_mark > accepted {
                            self.reads.parked.push(id);
                            continue;
                        }
                    }
                }
            }
            let state = self.read_connection(id);
            if let Some(conn) = self.clients.conns.get_mut(id) {
                if state == ReadState::Done {
                    conn.take_off_read_list();
                }
                if state != ReadState::Done && conn.line_started.is_some() {
                    // The server holds this input back, not the client: the
                    // idle clock of its unfinished line starts over.
                    conn.line_started = Some(self.now);
                }
                match state {
                    ReadState::Done => {}
                    ReadState::Again => self.reads.ready.push(id),
                    ReadState::Paused => self.reads.paused.push(id),
                    ReadState::WaitUntil(at) => {
                        conn.limits.wake_at = Some(at);
                        self.reads.throttled.push(id);
                        self.clients.metrics.flood_throttles += 1;
                    }
                }
            }
            self.settle_departures();
        }
    }

    /// Puts the throttled connections whose time has come back on the
    /// read list.
    pub(super) fn wake_throttled(&mut self) {
        let mut i = 0;
        while i < self.reads.throttled.len() {
            let id = self.reads.throttled[i];
            let conn = self.clients.conns.get_mut(id);
            let due = conn
                .as_ref()
                .is_none_or(|c| c.limits.wake_at <= Some(self.now));
            if due {
                self.reads.throttled.swap_remove(i);
                if let Some(conn) = conn {
                    conn.limits.wake_at = None;
                    self.reads.ready.push(id);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Serves one connection for this turn: lines held back earlier first,
    /// then its socket, up to its read budget, its work budget and its flood
    /// limit.
    fn read_connection(&mut self, id: ClientId) -> ReadState {
        self.clients.work = 0;
        let state = match self.run_deferred(id) {
            Some(state) => state,
            None => {
                let mut scratch = std::mem::take(&mut self.reads.scratch);
                let state = self.read_into(id, &mut scratch);
                self.reads.scratch = scratch;
                state
            }
        };
        let write_failed = self.clients.conns.get(id).is_some_and(|c| c.write_failed());
        if write_failed && state == ReadState::Done {
            // Everything the peer sent before it went has been run.
            self.clients.kill(id, EndReason::WriteError);
        }
        state
    }

    /// Runs the lines held back from earlier turns while the limits allow
    /// (then a WebSocket close that came after them); `Some` when the
    /// connection must not be read further this turn.
    fn run_deferred(&mut self, id: ClientId) -> Option<ReadState> {
        loop {
            let conn = self.clients.conns.get_mut(id)?;
            if !conn.is_open() {
                conn.limits.deferred.clear();
                conn.limits.held_close = None;
                return None;
            }
            if conn.limits.deferred.is_empty() {
                if let Some((code, reason)) = conn.limits.held_close.take() {
                    self.run_frame_now(id, Input::Close { code, reason });
                    return None;
                }
                return self.held_back(id);
            }
            if !self.may_run_line(id) {
                return self.held_back(id);
            }
            let conn = self.clients.conns.get_mut(id)?;
            let mut line = std::mem::take(&mut self.reads.held_line);
            match conn.limits.deferred.pop_into(&mut line) {
                Some(Held::Line) => self.run_frame_now(id, Input::Line(&line)),
                Some(Held::TooLong) => self.run_frame_now(id, Input::TooLong),
                None => {}
            }
            self.reads.held_line = line;
        }
    }

    /// Whether the connection's next line may run now: it is within its
    /// work budget for this turn and has a line token. Takes the token.
    fn may_run_line(&mut self, id: ClientId) -> bool {
        if self.clients.work >= self.config.work_budget_bytes.max(1) {
            return false;
        }
        if self
            .clients
            .conns
            .get(id)
            .is_some_and(|conn| conn.account_wait)
        {
            return false;
        }
        let flood = self.config.flood;
        self.clients
            .conns
            .get_mut(id)
            .is_some_and(|conn| conn.limits.take_line(&flood, self.now))
    }

    /// `Some` when the connection must stop for this turn: lines are held
    /// back (until a line token comes, or the next turn for the work
    /// budget), or its lines have done their turn's work.
    fn held_back(&mut self, id: ClientId) -> Option<ReadState> {
        let conn = self.clients.conns.get_mut(id)?;
        if !conn.is_open() {
            conn.limits.deferred.clear();
            conn.limits.held_close = None;
            return None;
        }
        if conn.account_wait {
            return Some(ReadState::Paused);
        }
        let over_budget = self.clients.work >= self.config.work_budget_bytes.max(1);
        if conn.limits.deferred.is_empty() && conn.limits.held_close.is_none() {
            return over_budget.then_some(ReadState::Again);
        }
        if over_budget || conn.limits.deferred.is_empty() {
            return Some(ReadState::Again);
        }
        Some(match conn.limits.line_wait(&self.config.flood, self.now) {
            Some(at) => ReadState::WaitUntil(at),
            None => ReadState::Again,
        })
    }

    fn read_into(&mut self, id: ClientId, scratch: &mut [u8]) -> ReadState {
        let mut budget = self.config.read_budget_bytes.max(1);
        let flood = self.config.flood;
        loop {
            let Some(conn) = self.clients.conns.get_mut(id) else {
                return ReadState::Done;
            };
            if conn.is_dead() {
                return ReadState::Done;
            }
            let mut want = budget.min(scratch.len());
            let open = conn.is_open();
            if open {
                // Flood control: a client out of tokens is not read; its
                // input waits in its socket and TCP pushes back. Reads are
                // small, so what its line rate holds back stays small.
                if flood.lines_per_sec > 0 {
                    want = want.min(FLOOD_READ_BYTES);
                }
                match conn.limits.bytes_allowed(&flood, self.now) {
                    Ok(allowed) => want = want.min(allowed),
                    Err(at) => return ReadState::WaitUntil(at),
                }
            }
            let result = conn.stream.read(&mut scratch[..want]);
            let is_tls = conn.stream.tls_session().is_some();
            if is_tls {
                self.after_tls_read(id);
            }
            let Some(conn) = self.clients.conns.get_mut(id) else {
                return ReadState::Done;
            };
            match result {
                Ok(0) => {
                    conn.note_read_closed();
                    self.on_peer_closed(id);
                    return ReadState::Done;
                }
                Ok(n) => {
                    if !std::mem::replace(&mut conn.got_input, true)
                        && !self.config.trusted_proxies.is_empty()
                        && proxy::starts_with_header(&scratch[..n])
                    {
                        // Only a trusted proxy may name another address.
                        let peer = conn.peer();
                        if self.logs.allow(peer.ip(), self.now) {
                            info!("{peer}: closed: PROXY header from an untrusted address");
                        }
                        self.clients.kill(id, EndReason::UntrustedProxyHeader);
                        return ReadState::Done;
                    }
                    conn.last_input = self.now;
                    self.clients.metrics.bytes_received += n as u64;
                    if open {
                        conn.limits.took_bytes(&flood, n);
                    }
                    if conn.is_open() || conn.is_handshaking() {
                        self.run_input(id, &scratch[..n]);
                    }
                    if let Some(state) = self.held_back(id) {
                        return state;
                    }
                    // A short read emptied the socket and the next byte to
                    // arrive raises a new edge, so the WouldBlock read is
                    // saved, unless the FIN already arrived: no edge follows
                    // that, so read on to the end of the stream.
                    // TLS decrypts record by record: a short read says
                    // nothing about the socket, so read on to WouldBlock.
                    let hangup_seen = self.clients.conns.get(id).is_some_and(|c| c.hangup_seen());
                    if n < want && !hangup_seen && !is_tls {
                        return ReadState::Done;
                    }
                    budget -= n;
                    if budget == 0 {
                        return ReadState::Again;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return ReadState::Done,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if is_tls && err.kind() == io::ErrorKind::InvalidData => {
                    // Not TLS, a bad record, a failed handshake: the alert
                    // has been sent; this connection only is closed.
                    let peer = conn.peer();
                    if self.logs.allow(peer.ip(), self.now) {
                        info!("{peer}: TLS error: {err}");
                    }
                    self.clients.kill(id, EndReason::TlsError);
                    return ReadState::Done;
                }
                Err(err) => {
                    debug!("{}: read: {err}", conn.peer());
                    let reason = match err.kind() {
                        io::ErrorKind::ConnectionReset => EndReason::ResetByPeer,
                        // Keepalive probes (or retransmissions) unanswered.
                        io::ErrorKind::TimedOut => EndReason::DeadPeer,
                        _ => EndReason::ReadError,
                    };
                    self.clients.kill(id, reason);
                    return ReadState::Done;
                }
            }
        }
    }

    /// Frames input and runs each complete line.
    pub(super) fn run_input(&mut self, id: ClientId, input: &[u8]) {
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        // The decoder is held here while its inputs run; the encoder stays
        // in the connection, so replies to this client are encoded as usual.
        let mut decoder = std::mem::take(&mut conn.codec.decoder);
        let mut finished = false;
        let max_line = if conn.irc.is_some() {
            crate::protocol::irc::MAX_LINE_BYTES
        } else {
            self.config.max_line_bytes
        };
        decoder.decode(input, max_line, |input| {
            finished = true;
            self.run_frame(id, input)
        });
        let upgraded = std::mem::take(&mut self.transports.upgraded);
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        // The idle clock runs from the first byte of an unfinished line;
        // more bytes of it do not reset it.
        conn.line_started = match (decoder.mid_line(), conn.line_started) {
            (false, _) => None,
            (true, Some(started)) if !finished => Some(started),
            (true, _) => Some(self.now),
        };
        conn.codec.decoder = decoder;
        if upgraded {
            let rest = match &mut conn.codec.decoder {
                Decoder::Http(reader) => reader.take_rest(),
                _ => Vec::new(),
            };
            self.start_websocket(id, &rest);
        }
    }

    /// Runs one decoded input now, or holds a line back (in order) when
    /// earlier lines wait or the limits say so; see [`crate::policy::limits`].
    fn run_frame(&mut self, id: ClientId, input: Input<'_>) {
        let Some(conn) = self.clients.conns.get(id) else {
            return;
        };
        if !conn.is_open() {
            return self.run_frame_now(id, input);
        }
        let waiting = !conn.limits.deferred.is_empty();
        match input {
            Input::Line([]) | Input::Request(_) | Input::Reply(_) => {}
            Input::Close { code, reason } if waiting => {
                // After the lines before it; nothing more is decoded.
                if let Some(conn) = self.clients.conns.get_mut(id) {
                    conn.limits.held_close = Some((code, reason));
                }
                return;
            }
            Input::Close { .. } => {}
            Input::Line(_) | Input::TooLong => {
                if waiting || !self.may_run_line(id) {
                    if let Some(conn) = self.clients.conns.get_mut(id) {
                        match input {
                            Input::TooLong => conn.limits.deferred.push_too_long(),
                            Input::Line(line) => conn.limits.deferred.push_line(line),
                            _ => {}
                        }
                    }
                    return;
                }
            }
        }
        self.run_frame_now(id, input);
    }

    fn run_frame_now(&mut self, id: ClientId, input: Input<'_>) {
        if let Input::Request(head) = input {
            self.run_request(id, head);
            return;
        }
        if !self.clients.conns.get(id).is_some_and(|c| c.is_open()) {
            return;
        }
        if matches!(input, Input::TooLong) || matches!(input, Input::Line(line) if !line.is_empty())
        {
            self.clients.metrics.lines_received += 1;
        }
        match input {
            Input::Request(_) => {}
            Input::Reply(bytes) => self.clients.queue_output(id, Output::Encoded(bytes), false),
            Input::Close { code, reason } => {
                self.clients.departures.push(id, None);
                if let Some(conn) = self.clients.conns.get_mut(id) {
                    // With output held for history, the close frame follows
                    // it when it is released (see take_history_acks).
                    if conn.held.is_empty() {
                        conn.codec.encoder.close_with(
                            code,
                            &mut conn.output,
                            &mut self.clients.pool,
                        );
                    }
                }
                self.close_gracefully(id, reason);
            }
            Input::Line([]) => {}
            Input::Line(bytes) if self.is_irc(id) => self.run_irc_line(id, bytes),
            Input::TooLong if self.is_irc(id) => self.irc_too_long(id),
            Input::Line(bytes) => match std::str::from_utf8(bytes) {
                Ok(line) => {
                    // With tags on, the tag prefix comes off first (its
                    // label is kept for every answer to the line).
                    let (label, line) = match self.chat.client_line(id, line) {
                        Ok(tagged) => (tagged.label, tagged.line),
                        Err(_) => return self.clients.reply(id, &Error::BadTags.into()),
                    };
                    let command = protocol::parse(line);
                    let auth =
                        self.chat.awaiting_password(id) && matches!(command, Command::Auth(_));
                    if auth && self.refuse_locked_out(id) {
                        return;
                    }
                    self.run_command(id, line, command, label);
                }
                Err(_) => self.clients.reply(id, &Error::InvalidUtf8.into()),
            },
            Input::TooLong => {
                let max = self.config.max_line_bytes;
                self.clients.reply(id, &Error::LineTooLong { max }.into());
            }
        }
    }

    /// Runs one typed command for client `id` (parsed from `line`, which
    /// the chat shows back for an unknown command; `label` from its tags)
    /// the way every client's commands run: account checks, the cluster
    /// with `--cluster`, the chat, and what its outcome asks of the loop.
    /// Line clients' lines and IRC clients' commands both come here.
    pub(super) fn run_command(
        &mut self,
        id: ClientId,
        line: &str,
        command: Command<'_>,
        label: Option<crate::protocol::tags::Label>,
    ) {
        if self.refuse_account_command(id, &command) {
            return;
        }
        if command == Command::Token {
            // `* token` promises the token is stored: it waits
            // for the batch that writes it.
            if let Some(conn) = self.clients.conns.get_mut(id) {
                conn.history_mark = self.history.mark_for_accounts();
            }
        }
        if !self.cluster.is_single() {
            // What the cluster answers (now, or when Redis has) carries
            // the line's label, as the chat's answers do.
            self.clients.label = label;
            let taken = self.cluster_command(id, &command);
            self.clients.label = None;
            if taken {
                return;
            }
        }
        let outcome = self
            .chat
            .apply_labelled(id, line, command, label, &mut self.clients);
        if !self.cluster.is_single() {
            self.cluster_after(id);
        }
        self.after_command(id, outcome);
        if self.clients.queued_since_flush >= FLUSH_EARLY_BYTES {
            self.settle_departures();
            self.flush_dirty();
        }
    }

    /// Acts on what a command did: its accepted chat lines make its later
    /// answers wait for their commit, an answer waiting for a room's tail
    /// holds everything after it, an `:auth` is counted against the
    /// address, and a `:quit` (or the last wrong password) closes.
    fn after_command(&mut self, id: ClientId, outcome: Outcome) {
        if let Some(conn) = self.clients.conns.get_mut(id) {
            if outcome.recorded > 0 {
                conn.history_mark = self.history.mark();
            }
            if outcome.waits_for == Some(Awaited::HistoryTail) {
                // :history in a room whose tail is still loading: its
                // answer, and all after it, wait for the tail.
                if conn.held.is_empty() {
                    self.clients.held.push(id);
                }
                conn.held.push_gap();
            }
        }
        if outcome.waits_for == Some(Awaited::Password) {
            self.dispatch_account_jobs();
        }
        for other in self.chat.take_taken_over() {
            self.close_gracefully(other, EndReason::LoggedInElsewhere);
        }
        let reason = match outcome.auth {
            Some(result) => self.count_auth(id, result, outcome.close),
            None => EndReason::Quit,
        };
        if outcome.close {
            self.close_gracefully(id, reason);
        }
    }

    /// An `:auth` from an address locked out after too many wrong
    /// passwords: refused whatever the password, and the connection closed.
    fn refuse_locked_out(&mut self, id: ClientId) -> bool {
        let Some(peer) = self.clients.conns.get(id).map(|c| c.peer()) else {
            return false;
        };
        let Some(left) = self.guard.auth_locked(peer.ip(), self.now) else {
            return false;
        };
        let retry_secs = left.as_secs().max(1);
        self.chat.disconnect(id, None, &mut self.clients);
        self.queue_last_line(
            &[id],
            &Error::LockedOut { retry_secs }.into(),
            EndReason::AuthLockout,
        );
        true
    }

    /// After an `:auth` ran: counts a wrong password against the address
    /// (logging a lockout once, and closing the connection when it locked
    /// its address out) or forgives it on success. `closing`: the attempt
    /// already closes the connection. Returns the reason should the attempt
    /// have closed the connection.
    fn count_auth(&mut self, id: ClientId, result: AuthResult, closing: bool) -> EndReason {
        let Some(peer) = self.clients.conns.get(id).map(|c| c.peer()) else {
            return EndReason::AuthFailed;
        };
        if result == AuthResult::Accepted {
            self.guard.auth_succeeded(peer.ip());
            return EndReason::Quit;
        }
        if self.password_failed(peer.ip(), ":auth") {
            if !closing {
                self.refuse_locked_out(id);
            }
            return EndReason::AuthLockout;
        }
        EndReason::AuthFailed
    }

    /// Counts a wrong password (`:auth`, `:login`, `:passwd`) against the
    /// address `ip`. Returns whether that locked the address out, which is
    /// then counted and logged once, naming the commands it now `refused`.
    pub(super) fn password_failed(&mut self, ip: std::net::IpAddr, refused: &str) -> bool {
        let AuthFailure::LockedOut {
            key,
            failures,
            lockout,
        } = self.guard.auth_failed(ip, self.now)
        else {
            return false;
        };
        self.clients.metrics.auth_lockouts += 1;
        warn!(
            "{key}: {failures} wrong passwords, {refused} refused for {} s",
            lockout.as_secs()
        );
        true
    }

    /// The peer shut down its sending side (or closed). Complete lines were
    /// handled as they arrived; an unterminated last line is dropped.
    fn on_peer_closed(&mut self, id: ClientId) {
        let Some(conn) = self.clients.conns.get(id) else {
            return;
        };
        match conn.phase() {
            Phase::Open => {
                self.clients.departures.push(id, None);
                self.close_gracefully(id, EndReason::ClosedByPeer);
                if self.clients.queued_since_flush >= FLUSH_EARLY_BYTES {
                    self.flush_dirty();
                }
            }
            // Done: it keeps the reason it closed for.
            Phase::Lingering { reason, .. } => self.clients.kill(id, reason),
            Phase::Handshake { .. } => self.clients.kill(id, EndReason::ClosedByPeer),
            Phase::Closing { .. } | Phase::Dead { .. } => {}
        }
    }
}
