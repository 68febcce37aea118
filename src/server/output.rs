//! Output: closing a connection gracefully (its last line, then a shutdown
//! of the write side), announcing departures a work budget at a time, and
//! flushing each dirty connection's queued bytes once per turn.

use super::render::{RenderKey, Variant};
use crate::chat::ClientId;
use crate::end_reason::EndReason;
use crate::protocol::ServerLine;
use log::debug;
use mio::Token;
use std::io::{self};

use super::EventLoop;

impl EventLoop {
    /// Ends a connection that has left the chat, after what is queued for it
    /// is delivered (bounded by the close timeout).
    pub(super) fn close_gracefully(&mut self, id: ClientId, reason: EndReason) {
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        if !conn.is_open() {
            return;
        }
        self.open_count -= 1;
        let deadline = self.now + self.config.close_timeout;
        conn.close(reason, deadline);
        // A WebSocket ends with a close frame after its last line (after
        // the output held for history, when that is released).
        if conn.held.is_empty() {
            conn.codec
                .encoder
                .close(reason, &mut conn.output, &mut self.clients.pool);
        }
        self.next_timer_check = self.next_timer_check.min(deadline);
        self.clients.mark_dirty(id);
    }

    /// Queues each connection's last line, bypassing the output limit
    /// (rendered once for them all), and closes it gracefully.
    pub(super) fn queue_last_line(
        &mut self,
        ids: &[ClientId],
        line: &ServerLine<'_>,
        reason: EndReason,
    ) {
        self.clients.cache.new_line();
        for &id in ids {
            let clients = &mut self.clients;
            let Some(conn) = clients.conns.get_mut(id) else {
                continue;
            };
            let bytes = clients.cache.bytes(
                line,
                RenderKey::for_conn(conn, Variant::Plain),
                super::render::recipient_nick(conn),
            );
            if conn.held.is_empty() {
                conn.output.push(bytes, &mut clients.pool);
            } else {
                conn.held.push(0, bytes, &mut clients.held_bytes);
            }
            clients.metrics.lines_sent += 1;
            self.close_gracefully(id, reason);
        }
    }

    /// Lets the chat announce clients that left (cut off, failed, gone), in
    /// the order they left (biggest queue first when the global bound cut
    /// several at once), up to the work budget per turn: the rest wait for
    /// the next turn, so a thousand cuts in a big room do not stall everyone.
    pub(super) fn settle_departures(&mut self) {
        self.open_count -= std::mem::take(&mut self.clients.left_open);
        let budget = self.config.work_budget_bytes;
        // The client being read is not charged for the server's fan-out.
        let work = self.clients.work;
        while let Some((id, reason)) = self.clients.departures.next(budget) {
            self.clients.work = 0;
            self.chat.disconnect(id, reason, &mut self.clients);
            let done = self.clients.work;
            self.clients.departures.announced(id, done);
            // An announcement may cut off a full queue: count it now.
            self.open_count -= std::mem::take(&mut self.clients.left_open);
        }
        self.clients.work = work;
    }

    /// Writes each dirty connection's output once.
    pub(super) fn flush_dirty(&mut self) {
        self.clients.queued_since_flush = 0;
        loop {
            let dirty = std::mem::take(&mut self.clients.dirty);
            if dirty.is_empty() {
                return;
            }
            for id in dirty {
                self.flush_connection(id);
            }
            // A write error is a departure, whose announcement dirties others.
            self.settle_departures();
        }
    }

    fn flush_connection(&mut self, id: ClientId) {
        let clients = &mut self.clients;
        let Some(conn) = clients.conns.get_mut(id) else {
            return;
        };
        conn.take_off_flush_list();
        if conn.is_dead() || conn.write_failed() {
            return;
        }
        loop {
            if !conn.has_output() {
                break;
            }
            match conn.write_output() {
                Ok(written) => {
                    clients.metrics.bytes_sent += written as u64;
                    clients
                        .soft_outbuf
                        .observe(&mut conn.soft_since, conn.output.len(), self.now)
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                    clients.mark_dirty(id);
                    return;
                }
                Err(err) => {
                    debug!("{}: write: {err}", conn.peer());
                    if !conn.is_open() {
                        clients.kill(id, EndReason::WriteError);
                        return;
                    }
                    // The peer is gone, but lines it sent before it went may
                    // still wait in the socket and still count: the read
                    // path takes them, in order, then drops the connection.
                    clients.metrics.bytes_discarded += conn.fail_write(&mut clients.pool) as u64;
                    if conn.put_on_read_list() {
                        self.reads.ready.push(id);
                    }
                    return;
                }
            }
            // A closing TLS connection ends its session with close_notify
            // once every byte it is owed has gone to rustls.
            if !(conn.is_closing()
                && conn.output.is_empty()
                && conn.held.is_empty()
                && conn
                    .stream
                    .tls_session()
                    .is_some_and(|t| !t.is_handshaking() && t.close()))
            {
                break;
            }
        }
        let drained = !conn.has_output();
        if drained {
            conn.output.release(&mut clients.pool);
        }
        if drained && !conn.stream.tls_handshaking() && conn.held.is_empty() && conn.linger() {
            // Everything owed is with the kernel and the FIN follows it;
            // now wait for the peer's FIN so our close cannot send an RST.
            if conn.read_closed() {
                // Done: it keeps the reason it closed for.
                clients.kill(id, EndReason::ClosedByPeer);
                return;
            }
            if conn.put_on_read_list() {
                self.reads.ready.push(id);
            }
        }
        if let Err(err) = conn.update_interest(self.poll.registry(), Token(id)) {
            debug!("{}: reregister: {err}", conn.peer());
            clients.kill(id, EndReason::PollerError);
        }
    }
}
