//! [`Clients`]: the connections and the output queued to them. The chat
//! state writes through it as its [`Outbox`]; it queues (encoding once per
//! fan-out), cuts off slow consumers, enforces the global output bound and
//! keeps the list of connections to flush this turn.

use crate::chat::{ChatEvent, ClientId, Outbox};
use crate::end_reason::EndReason;
use crate::metrics::{Metrics, SlowLimit};
use crate::net::connection::Connection;
use crate::net::outbuf::BufferPool;
use crate::net::transport::EncodeCache;
use crate::policy::limits::{self, Departures, SoftLimit};
use log::warn;
use slab::Slab;
use std::time::Instant;

/// The connections and everything needed to queue output to them; the chat
/// state writes through this as its [`Outbox`].
pub(super) struct Clients {
    pub(super) conns: Slab<Connection>,
    /// Connections with output queued this turn, each once.
    pub(super) dirty: Vec<ClientId>,
    /// Connections that left and must still leave the chat, with the reason
    /// their room is told; announced a work budget's worth per turn.
    pub(super) departures: Departures,
    /// Open connections that died since the loop last counted them.
    pub(super) left_open: usize,
    /// Connections that ended this turn, dropped at its end.
    pub(super) dead: Vec<ClientId>,
    pub(super) pool: BufferPool,
    /// The last line encoded for a non-line codec, so a fan-out encodes once.
    pub(super) encoded: EncodeCache,
    /// Bytes queued since the last flush; a storm (joins, leaves, a burst
    /// of short lines to a big room) is flushed early past
    /// [`super::FLUSH_EARLY_BYTES`] rather than held whole in memory.
    pub(super) queued_since_flush: usize,
    pub(super) max_outbuf_bytes: usize,
    /// The client whose command is running: lines to it are replies, held
    /// while it has uncommitted history lines.
    pub(super) replying_to: Option<ClientId>,
    /// History batches committed so far (see [`crate::chat::history::HistoryLink::acked`]).
    pub(super) history_acked: u64,
    /// Connections with held output, released as batches are committed.
    pub(super) held: Vec<ClientId>,
    /// Bytes held for all clients together (see [`crate::chat::history::HeldOutput`]): output
    /// memory as real as the pool's, so it counts toward
    /// `max_output_total_bytes`.
    pub(super) held_bytes: usize,
    /// Bound on `pool.lent_bytes()`, the output memory of all clients; 0: none.
    pub(super) max_output_total_bytes: usize,
    pub(super) soft_outbuf: SoftLimit,
    /// Output bytes queued since the client being read began its turn: the
    /// work its lines caused, held against `work_budget_bytes`.
    pub(super) work: usize,
    /// The loop turn's clock.
    pub(super) now: Instant,
    /// Counters, bumped where things happen; read only when scraped.
    pub(super) metrics: Metrics,
}

impl Outbox for Clients {
    fn send(&mut self, to: ClientId, line: &[u8]) {
        self.queue(to, line, true);
    }

    fn note(&mut self, event: ChatEvent) {
        match event {
            ChatEvent::RoomLine { recipients } => {
                self.metrics.room_lines += 1;
                self.metrics.fanout.observe(recipients as u64);
            }
            ChatEvent::PrivateMessage => self.metrics.private_messages += 1,
            ChatEvent::AuthFailure => self.metrics.auth_failures += 1,
        }
    }
}

impl Clients {
    /// Queues a line (`encode`: through the recipient's codec) or bytes
    /// already encoded for it (a WebSocket pong), under the output limit.
    pub(super) fn queue(&mut self, to: ClientId, line: &[u8], encode: bool) {
        self.work += line.len();
        let Some(conn) = self.conns.get_mut(to) else {
            return;
        };
        if !conn.is_open() || conn.write_failed() {
            return;
        }
        // Crash safety: this client must not see the answer to a later
        // command before its earlier lines are on disk (see
        // [`crate::chat::history`]); what follows a held line is held too.
        let reply_to_uncommitted =
            self.replying_to == Some(to) && conn.history_mark > self.history_acked;
        let hold = reply_to_uncommitted || !conn.held.is_empty();
        if conn.output.len() + conn.held.len() + line.len() > self.max_outbuf_bytes {
            // Not slow, perhaps, only busy: the queue may have grown within
            // this turn. Give the socket one chance to take it; a write
            // error is left for the flush to find.
            if let Ok(written) = conn.write_output() {
                self.metrics.bytes_sent += written as u64;
            }
        }
        if conn.output.len() + conn.held.len() + line.len() > self.max_outbuf_bytes {
            // Cut off now, inside the fan-out: a stuck client's write event
            // may never come.
            warn!(
                "{}: cut off, more than {} bytes of output queued (too slow)",
                conn.peer(),
                self.max_outbuf_bytes
            );
            self.metrics.cut_off(SlowLimit::Queue);
            self.cut_off(to);
            return;
        }
        let bytes = if encode {
            self.metrics.lines_sent += 1;
            conn.codec.encode(line, &mut self.encoded)
        } else {
            line
        };
        if hold {
            if conn.held.is_empty() {
                self.held.push(to);
            }
            let mark = if reply_to_uncommitted {
                conn.history_mark
            } else {
                0
            };
            conn.held.push(mark, bytes, &mut self.held_bytes);
            self.check_global_bound();
            return;
        }
        conn.output.push(bytes, &mut self.pool);
        self.soft_outbuf
            .observe(&mut conn.limits.soft_since, conn.output.len(), self.now);
        self.queued_since_flush += bytes.len();
        self.mark_dirty(to);
        self.check_global_bound();
    }

    /// Output memory of all clients: queued for their sockets (the pool's
    /// buffers) and held until their lines are committed.
    fn output_total(&self) -> usize {
        self.pool.lent_bytes() + self.held_bytes
    }

    fn check_global_bound(&mut self) {
        if self.max_output_total_bytes > 0 && self.output_total() > self.max_output_total_bytes {
            self.enforce_global_bound();
        }
    }

    /// Cuts a client off as a slow consumer: it gets nothing more, and its
    /// room is told `(too slow)` (a closing connection is simply dropped).
    pub(super) fn cut_off(&mut self, id: ClientId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.is_open() {
            // Not a silent departure: the room hears why.
            self.departures.push(id, Some("too slow"));
        }
        self.kill(id, EndReason::TooSlow);
    }

    /// The output memory of all clients together (queued and held for
    /// history) passed `max_output_total_bytes`: cut off the clients with
    /// the most output, queued plus held, until it is a margin below. Each
    /// gets one write first, so a reader that was only busy drains and
    /// keeps its place; held output cannot be written before its commit,
    /// so it stays counted.
    fn enforce_global_bound(&mut self) {
        let bound = self.max_output_total_bytes;
        let target = limits::eviction_target(bound);
        let holders = self
            .conns
            .iter()
            .filter(|(_, conn)| {
                !conn.is_dead() && (conn.output.capacity() > 0 || !conn.held.is_empty())
            })
            .map(|(id, conn)| (conn.output.len() + conn.held.len(), id))
            .collect();
        for id in limits::biggest_first(holders) {
            if self.output_total() <= target {
                return;
            }
            let conn = &mut self.conns[id];
            if !conn.write_failed() {
                let _ = conn.write_output();
            }
            if conn.output.is_empty() && conn.held.is_empty() && !conn.write_failed() {
                conn.output.release(&mut self.pool);
                continue;
            }
            warn!(
                "{}: cut off, {} bytes of output queued ({} of them held for history) \
                 when all clients together passed {} (too slow)",
                conn.peer(),
                conn.output.len() + conn.held.len(),
                conn.held.len(),
                bound
            );
            self.metrics.cut_off(SlowLimit::Global);
            self.cut_off(id);
        }
    }

    /// Puts a connection on the dirty list (once), to be flushed this turn.
    pub(super) fn mark_dirty(&mut self, id: ClientId) {
        if let Some(conn) = self.conns.get_mut(id) {
            if conn.put_on_flush_list() {
                self.dirty.push(id);
            }
        }
    }

    /// Ends a connection at once (error, reset): it leaves the chat silently
    /// at the end of this step and is dropped at the end of the turn.
    /// A connection already closing keeps the reason it is closing for (see
    /// [`Connection::kill`]).
    pub(super) fn kill(&mut self, id: ClientId, reason: EndReason) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let Some(killed) = conn.kill(reason, &mut self.pool, &mut self.held_bytes) else {
            return;
        };
        self.metrics.bytes_discarded += killed.discarded as u64;
        self.dead.push(id);
        if killed.was_open {
            // Silent, unless cut off: that departure is queued, with why.
            self.departures.push(id, None);
            self.left_open += 1;
        }
    }
}
