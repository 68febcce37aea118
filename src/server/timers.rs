//! Timers and completions: work finished on other threads (history commits,
//! releasing the replies held for them; tails read back, answering the
//! `:history` requests that waited for them), and the once-a-second checks
//! (deadlines, idle clients, pings, lockouts, soft output limits, log
//! summaries).

use super::render::{RenderKey, Variant};
use super::{EventLoop, TIMER_TICK};
use crate::chat::completion::Completion;
use crate::chat::Outbox;
use crate::end_reason::EndReason;
use crate::metrics::SlowLimit;
use crate::protocol::{Error, ServerLine};
use log::{info, warn};
use std::io::Write;
use std::sync::mpsc::TryRecvError;

impl EventLoop {
    /// Takes the completion path's news, once per turn: the history writer
    /// committed (or is gone), so output held for it is released and parked
    /// clients are read again; tails arrived, so the `:history` answers
    /// waiting for them are queued.
    pub(super) fn take_completions(&mut self) {
        let mut loaded = self.history.settle_loads(self.chat.history_mut());
        let mut acked_any = !loaded.is_empty();
        loop {
            match self.completions.try_recv() {
                Ok(Completion::History(ack)) => {
                    acked_any = true;
                    loaded.extend(self.history.on_ack(ack, self.chat.history_mut()));
                }
                Ok(Completion::HistoryGone) => {
                    if let Some(rooms) = self.history.on_writer_gone(self.chat.history_mut()) {
                        acked_any = true;
                        loaded.extend(rooms);
                    }
                }
                Ok(Completion::Accounts(finished)) => self.on_account_job(finished),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    // Every worker is gone: today, the history writer.
                    if let Some(rooms) = self.history.on_writer_gone(self.chat.history_mut()) {
                        acked_any = true;
                        loaded.extend(rooms);
                    }
                    break;
                }
            }
        }
        // `CHATHISTORY` answers the writer read from the file.
        self.irc_history_answers();
        if !acked_any {
            return;
        }
        self.release_held(!loaded.is_empty());
    }

    /// Releases the output held for history commits up to the writer's
    /// last, after answering the `:history` requests whose tails are here
    /// now (`answer_waits`), and reads parked clients again.
    pub(super) fn release_held(&mut self, answer_waits: bool) {
        let acked = self.history.acked();
        self.clients.history_acked = acked;
        if answer_waits {
            self.answer_history_waits();
        }
        for id in std::mem::take(&mut self.clients.held) {
            let clients = &mut self.clients;
            let Some(conn) = clients.conns.get_mut(id) else {
                continue;
            };
            if conn.held.is_empty() {
                continue;
            }
            let closing = conn.end_reason().filter(|_| conn.is_closing());
            let (output, pool) = (&mut conn.output, &mut clients.pool);
            conn.held.release(acked, &mut clients.held_bytes, |bytes| {
                output.push(bytes, pool)
            });
            if !conn.held.is_empty() {
                clients.held.push(id);
            } else if let Some(reason) = closing {
                // Its close frame waited for the held output.
                conn.codec.encoder.close(reason, output, pool);
            }
            clients.mark_dirty(id);
        }
        // Parked clients are still marked as on the read list.
        self.reads.unpark();
    }

    /// Puts the answers to `:history` commands whose tails arrived where
    /// their askers' output was left waiting. An answer that would pass the
    /// output limit cuts the asker off as too slow, as any output would.
    fn answer_history_waits(&mut self) {
        for wait in self.chat.take_ready_history_waits() {
            let id = wait.id;
            let Some(conn) = self.clients.conns.get(id) else {
                continue;
            };
            if conn.is_dead() || conn.held.is_empty() {
                continue;
            }
            let queued = conn.output.len() + conn.held.len();
            // One line at a time through the asker's dialect and framing
            // (a WebSocket client gets one text message per line).
            let key = RenderKey::for_conn(conn, Variant::Plain);
            // Its nick, for an IRC client's numerics (owned: the cache is
            // borrowed below).
            let recipient = conn.irc.as_ref().map(|irc| crate::net::irc::IrcState {
                nick: irc.nick.clone(),
                ..crate::net::irc::IrcState::new()
            });
            // The label of the `:history` line, on every line of its answer.
            let label = wait.label.filter(|_| conn.tags);
            let mut answer = Vec::new();
            let cache = &mut self.clients.cache;
            self.chat.history_answer(&wait, |line| {
                cache.new_line();
                let bytes = match &label {
                    Some(label) => cache.labelled(line, key, label),
                    None => cache.bytes(line, key, recipient.as_ref()),
                };
                answer.extend_from_slice(bytes);
            });
            if queued + answer.len() > self.clients.max_outbuf_bytes {
                warn!(
                    "{}: cut off, more than {} bytes of output queued (too slow)",
                    conn.peer(),
                    self.clients.max_outbuf_bytes
                );
                self.clients.cut_off(id);
                continue;
            }
            if let Some(conn) = self.clients.conns.get_mut(id) {
                conn.held.fill_gap(answer, &mut self.clients.held_bytes);
            }
        }
    }

    /// Idle (unfinished line) and auth timeouts, closing deadlines, lockout
    /// expiry and log summaries; runs every [`TIMER_TICK`].
    pub(super) fn check_timers(&mut self) {
        let mut next_check = self.now + TIMER_TICK;
        self.clients.pool.trim();
        debug_assert_eq!(
            self.clients.pool.lent_bytes(),
            self.clients
                .conns
                .iter()
                .map(|(_, conn)| conn.output.capacity())
                .sum::<usize>(),
            "the global output bound's accounting drifted"
        );
        debug_assert_eq!(
            self.clients.held_bytes,
            self.clients
                .conns
                .iter()
                .map(|(_, conn)| conn.held.len())
                .sum::<usize>(),
            "the held output's accounting drifted"
        );
        self.guard.prune(self.now);
        self.account_timers();
        self.log_summaries(false);
        let idle_limit = self.config.idle_timeout;
        let auth_limit = self
            .config
            .guard
            .auth_timeout
            .filter(|_| self.config.password.is_some());
        let register_limit = self.config.guard.auth_timeout;
        let mut idle = Vec::new();
        let mut expired = Vec::new();
        let mut pinged = Vec::new();
        let mut overstayed = Vec::new();
        for (id, conn) in self.clients.conns.iter_mut() {
            if conn.is_open() && self.clients.soft_outbuf.expired(conn.soft_since, self.now) {
                overstayed.push(id);
                continue;
            }
            if conn.is_open() {
                let silent = conn.codec.encoder.ping_if_silent(
                    self.now,
                    conn.last_input,
                    self.config.ws_ping_interval,
                );
                if let Some(ping) = silent {
                    // Straight to the socket when nothing else waits: an
                    // idle client's ping should not take a pooled buffer.
                    let written = if conn.output.is_empty() {
                        conn.stream.write(&ping).unwrap_or(0)
                    } else {
                        0
                    };
                    self.clients.metrics.bytes_sent += written as u64;
                    if written < ping.len() {
                        conn.output.push(&ping[written..], &mut self.clients.pool);
                        pinged.push(id);
                    }
                }
            }
            match conn.phase().deadline() {
                Some(deadline) if self.now >= deadline => expired.push(id),
                Some(deadline) => next_check = next_check.min(deadline),
                None if !conn.is_open() => {}
                None => {
                    // Only an unfinished line counts against the idle
                    // timeout: quiet is not dead. While the server holds a
                    // client's input back (flood control, budgets) the
                    // clock waits for it.
                    if conn.on_read_list() && conn.line_started.is_some() {
                        conn.line_started = Some(self.now);
                    }
                    let stalled = conn
                        .line_started
                        .zip(idle_limit)
                        .is_some_and(|(started, limit)| self.now - started >= limit);
                    if stalled {
                        idle.push((id, Error::IdleTimeout, EndReason::IdleTimeout));
                    } else if auth_limit.is_some_and(|limit| {
                        self.now - conn.accepted_at() >= limit && self.chat.awaiting_password(id)
                    }) || register_limit.is_some_and(|limit| {
                        // An IRC client must register within the auth timeout.
                        self.now - conn.accepted_at() >= limit
                            && conn.irc.as_ref().is_some_and(|irc| !irc.registered())
                    }) {
                        idle.push((id, Error::AuthTimeout, EndReason::AuthTimeout));
                    }
                }
            }
        }
        if let Some(endpoint) = self.scrapes.as_mut() {
            if let Some(deadline) = endpoint.expire(self.poll.registry(), self.now) {
                next_check = next_check.min(deadline);
            }
        }
        if let Some(deadline) = self.expire_proxy_waits(false) {
            next_check = next_check.min(deadline);
        }
        self.next_timer_check = next_check;
        for id in overstayed {
            if let Some(conn) = self.clients.conns.get(id) {
                warn!(
                    "{}: cut off, more than {} bytes of output queued for {:?} (too slow)",
                    conn.peer(),
                    self.clients.soft_outbuf.bytes,
                    self.clients.soft_outbuf.period.unwrap_or_default()
                );
            }
            self.clients.metrics.cut_off(SlowLimit::Soft);
            self.clients.cut_off(id);
        }
        for id in pinged {
            self.clients.mark_dirty(id);
        }
        for id in expired {
            let Some(conn) = self.clients.conns.get(id) else {
                continue;
            };
            // Past its deadline it ends for the reason it carries: a
            // handshake's timeout, a closing connection's own reason.
            let mut reason = conn.end_reason().unwrap_or(EndReason::CloseTimeout);
            if conn.stream.tls_handshaking() {
                if self.logs.allow(conn.peer().ip(), self.now) {
                    info!(
                        "{}: TLS handshake not done within the close timeout",
                        conn.peer()
                    );
                }
                reason = EndReason::TlsHandshakeTimeout;
            }
            self.clients.kill(id, reason);
        }
        for (id, notice, reason) in idle {
            self.clients.deliver(id, &ServerLine::Error(notice));
            // The notice may itself have cut a full queue off as too slow;
            // then that departure is already on its way, with its reason.
            if self.clients.conns.get(id).is_some_and(|c| c.is_open()) {
                self.clients.departures.push(id, None);
                self.close_gracefully(id, reason);
            }
        }
    }
}
