//! [`Clients`]: the connections and the output queued to them. The chat
//! state writes typed lines through it as its [`Outbox`]; it renders each
//! line once per fan-out and recipient key ([`LineCache`]), queues it,
//! holds answers that wait for history commits, cuts off slow consumers,
//! enforces the global output bound and keeps the list of connections to
//! flush this turn.

use super::render::{recipient, LineCache, RenderKey, Variant, IRC_SLOT};
use crate::chat::{ChatEvent, ClientId, Delivery, Outbox};
use crate::end_reason::EndReason;
use crate::metrics::{Metrics, SlowLimit};
use crate::net::connection::Connection;
use crate::net::outbuf::BufferPool;
use crate::policy::limits::{self, Departures, SoftLimit};
use crate::protocol::tags::Label;
use crate::protocol::{Event, ServerLine};
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
    /// The line being queued, rendered once per recipient key.
    pub(super) cache: LineCache,
    /// Bytes queued since the last flush; a storm (joins, leaves, a burst
    /// of short lines to a big room) is flushed early past
    /// [`super::FLUSH_EARLY_BYTES`] rather than held whole in memory.
    pub(super) queued_since_flush: usize,
    pub(super) max_outbuf_bytes: usize,
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
    /// The label of the command being run ([`Outbox::answering`]): every
    /// answer queued meanwhile to a client with tags on carries it.
    pub(super) label: Option<Label>,
    /// An IRC command with a `label` (`labeled-response`) runs: its
    /// client's answers are gathered here, as rendered, to be sent in
    /// one labelled frame when it is done.
    pub(super) capture: Option<(ClientId, Vec<u8>)>,
    /// The account of the next fan-out's sender ([`Outbox::sender_account`]).
    pub(super) next_account: Option<String>,
    /// The next fan-out's plain line dialect bytes, when the chat rendered
    /// them already ([`Outbox::rendered_plain`]; `has_next_plain`): swapped
    /// into the cache, whose old buffer is kept here for the next line.
    pub(super) next_plain: Vec<u8>,
    pub(super) has_next_plain: bool,
}

impl Outbox for Clients {
    #[inline]
    fn queue(&mut self, to: ClientId, line: &ServerLine<'_>, how: Delivery) {
        let variant = Variant::of(how.prefixed);
        self.queue_output(to, Output::Line(line, variant), how.answer);
    }

    fn new_line(&mut self) {
        self.cache.new_line();
        // A sender's account and a rendering hold for the fan-out they
        // were given for only.
        self.next_account = None;
        self.has_next_plain = false;
    }

    /// The fan-out loop, specialised: each recipient in the common case
    /// costs a key lookup, a copy and a flush-list check, inline; what is
    /// the same for every recipient (the counters of work, lines and bytes
    /// queued) is added once per fan-out. Anything rarer goes through
    /// [`Clients::queue_output`], as the provided method would. The room's
    /// two parts are two runs of the same loop, one per variant: nothing
    /// is asked per recipient but its connection's key.
    fn fan_out(
        &mut self,
        current: &[ClientId],
        others: &[ClientId],
        except: Option<ClientId>,
        asker: Option<ClientId>,
        line: &ServerLine<'_>,
    ) -> usize {
        let account = self.next_account.take();
        let plain = self.has_next_plain;
        self.new_line();
        self.cache.account = account;
        if plain {
            debug_assert_eq!(
                self.next_plain,
                {
                    let mut check = Vec::new();
                    crate::protocol::Dialect::Line.render(line, &mut check);
                    check
                },
                "the chat's plain rendering is the fan-out's"
            );
            self.cache.preset_plain(&mut self.next_plain);
        }
        let mut sums = FanOutSums::default();
        self.fan_out_line(current, Variant::Plain, except, asker, line, &mut sums);
        if !others.is_empty() {
            self.fan_out_line(others, Variant::Prefixed, except, asker, line, &mut sums);
        }
        self.work += sums.queued;
        self.queued_since_flush += sums.queued;
        self.metrics.lines_sent += sums.lines;
        sums.recipients
    }

    fn set_tags(&mut self, to: ClientId, on: bool) {
        if let Some(conn) = self.conns.get_mut(to) {
            conn.tags = on;
            super::render::refresh_slots(conn);
        }
    }

    fn answering(&mut self, label: Option<Label>) {
        self.label = label;
    }

    fn sender_account(&mut self, account: Option<&str>) {
        self.next_account = account.map(str::to_string);
    }

    fn rendered_plain(&mut self, bytes: &[u8]) {
        self.next_plain.clear();
        self.next_plain.extend_from_slice(bytes);
        self.has_next_plain = true;
    }

    fn note(&mut self, event: ChatEvent) {
        match event {
            ChatEvent::RoomLine { recipients } => {
                self.metrics.room_lines += 1;
                self.metrics.fanout.observe(recipients as u64);
            }
            ChatEvent::PrivateMessage => self.metrics.private_messages += 1,
            ChatEvent::AuthFailure => self.metrics.auth_failures += 1,
            ChatEvent::Login { token, ok } => {
                let accounts = &mut self.metrics.accounts;
                match (token, ok) {
                    (false, true) => accounts.password_logins += 1,
                    (true, true) => accounts.token_logins += 1,
                    (false, false) => accounts.password_failures += 1,
                    (true, false) => accounts.token_failures += 1,
                }
            }
            ChatEvent::Registered => self.metrics.accounts.registrations += 1,
            ChatEvent::TokenIssued => self.metrics.accounts.tokens_issued += 1,
        }
    }
}

/// What the fast path of one fan-out queued, added to the counters once.
#[derive(Default)]
struct FanOutSums {
    /// Members it went to (`except` left out).
    recipients: usize,
    /// Bytes queued by the fast path.
    queued: usize,
    /// Lines queued by the fast path.
    lines: u64,
}

/// What [`Clients::queue_output`] queues.
#[derive(Clone, Copy)]
pub(super) enum Output<'a> {
    /// A line in a variant, rendered for the recipient through
    /// [`Clients::cache`] (the caller has started the line there with
    /// `new_line`).
    Line(&'a ServerLine<'a>, Variant),
    /// Bytes already encoded for the recipient (a WebSocket pong).
    Encoded(&'a [u8]),
    /// A line answering a labelled command, for a recipient with tags on:
    /// its shared tagged bytes with the label added
    /// ([`LineCache::labelled`]).
    Labelled(&'a ServerLine<'a>, &'a Label),
}

impl Clients {
    /// The IRC state of connection `id`, when it is an IRC client.
    pub(super) fn irc_mut(&mut self, id: ClientId) -> Option<&mut crate::net::irc::IrcState> {
        self.conns.get_mut(id).and_then(|c| c.irc.as_deref_mut())
    }

    /// Queues output for `to`, under the output limit. `answer`: it answers
    /// `to`'s own command, so it waits while `to` has chat lines not yet
    /// committed to the history file.
    ///
    /// This runs once per recipient of every fan-out, so its common case
    /// (an open client, nothing held, room in its buffer) is kept small
    /// enough to inline into the fan-out loop; everything rarer (holding for
    /// history, cutting off, growing a buffer and so checking the global
    /// bound) is in out-of-line functions.
    #[inline(always)]
    pub(super) fn queue_output(&mut self, to: ClientId, what: Output<'_>, answer: bool) {
        let Some(conn) = self.conns.get_mut(to) else {
            return;
        };
        if !conn.is_open() || conn.write_failed() {
            return;
        }
        if let (Some(irc), Output::Line(ServerLine::Event(Event::Renamed { old, new }), _)) =
            (conn.irc.as_deref_mut(), what)
        {
            // An IRC client's numerics name it by its nick as of now.
            if irc.nick.eq_ignore_ascii_case(old) {
                irc.nick = new.to_string();
            }
        }
        // An answer to a labelled command carries its label (tags on).
        let label = if answer && conn.tags {
            self.label
        } else {
            None
        };
        let what = match (what, &label) {
            (Output::Line(line, _), Some(label)) => Output::Labelled(line, label),
            (what, _) => what,
        };
        let bytes = rendered(&mut self.cache, conn, what);
        self.work += bytes.len();
        if let Some((who, gathered)) = &mut self.capture {
            if answer && *who == to {
                gathered.extend_from_slice(bytes);
                return;
            }
        }
        // Crash safety: this client must not see the answer to a later
        // command before its earlier lines are on disk (see
        // [`crate::chat::history`]); what follows a held line is held too.
        let answer_to_uncommitted = answer && conn.history_mark > self.history_acked;
        let over = conn.output.len() + conn.held.len() + bytes.len() > self.max_outbuf_bytes;
        if over || answer_to_uncommitted || !conn.held.is_empty() {
            self.queue_rarely(to, what, over, answer_to_uncommitted);
            return;
        }
        self.push_output(to, what);
    }

    /// The body of [`Outbox::fan_out`] for one part of a room, every
    /// member getting `variant`, the line already started in the cache.
    /// Adds to `sums` what the caller counts once.
    ///
    /// Per recipient in the common case: one comparison with the one
    /// member that needs care (`except` or `asker`; the callers give one
    /// or neither), its connection, its cache slot (a byte the connection
    /// keeps, [`super::render::refresh_slots`]), the room left in its
    /// queue, the copy, the soft limit's clock and the flush list.
    #[inline(always)]
    fn fan_out_line(
        &mut self,
        members: &[ClientId],
        variant: Variant,
        except: Option<ClientId>,
        asker: Option<ClientId>,
        line: &ServerLine<'_>,
        sums: &mut FanOutSums,
    ) {
        let stop_at = match (except, asker) {
            (Some(e), Some(a)) if e != a => {
                return self.fan_out_generally(members, variant, except, asker, line, sums);
            }
            // No slab key is usize::MAX.
            (e, a) => e.or(a).unwrap_or(usize::MAX),
        };
        let v = variant.fan_out_index();
        // Bytes and lines queued by the fast path below, counted once.
        let mut queued = 0;
        let mut lines = 0;
        // Members left out (`except`), for the recipients' count.
        let mut skipped = 0;
        for &member in members {
            if member == stop_at {
                if Some(member) == except {
                    skipped += 1;
                } else {
                    // An answer (which may wait for history): the general
                    // path, which counts for itself.
                    self.queue_output(member, Output::Line(line, variant), true);
                }
                continue;
            }
            let Some(conn) = self.conns.get_mut(member) else {
                continue;
            };
            if !conn.takes_output() {
                continue;
            }
            let slot = conn.render_slots[v];
            let bytes = if slot == IRC_SLOT {
                let key = RenderKey::for_conn(conn, variant);
                self.cache.bytes(line, key, recipient(conn))
            } else {
                debug_assert_eq!(
                    slot,
                    RenderKey::for_conn(conn, variant).slot(),
                    "{}: render slots not refreshed",
                    conn.peer()
                );
                self.cache.bytes_at(line, slot, || {
                    RenderKey::of(&conn.codec.encoder, conn.tags, variant)
                })
            };
            // Held output first: with none, the limit is the queue's alone.
            if !conn.held.is_empty() || conn.output.len() + bytes.len() > self.max_outbuf_bytes {
                // Held output or a full queue: the general path, which
                // counts for itself.
                self.queue_output(member, Output::Line(line, variant), false);
                continue;
            }
            let grew = conn.output.append(bytes, &mut self.pool);
            queued += bytes.len();
            lines += 1;
            self.soft_outbuf
                .observe_growth(&mut conn.soft_since, conn.output.len(), self.now);
            if conn.put_on_flush_list() {
                self.dirty.push(member);
            }
            if grew {
                self.check_global_bound_cold();
            }
        }
        sums.recipients += members.len() - skipped;
        sums.queued += queued;
        sums.lines += lines;
    }

    /// [`Clients::fan_out_line`] with both an `except` and another
    /// `asker` (no caller does this today): every member through
    /// [`Clients::queue_output`].
    #[cold]
    #[inline(never)]
    fn fan_out_generally(
        &mut self,
        members: &[ClientId],
        variant: Variant,
        except: Option<ClientId>,
        asker: Option<ClientId>,
        line: &ServerLine<'_>,
        sums: &mut FanOutSums,
    ) {
        for &member in members {
            if Some(member) == except {
                continue;
            }
            sums.recipients += 1;
            let answer = Some(member) == asker;
            self.queue_output(member, Output::Line(line, variant), answer);
        }
    }

    /// Appends a line to an open client's queue (nothing held for it, room
    /// under its limit) and marks it for this turn's flush. The line is
    /// already in the cache for this recipient's key: rendering it again
    /// is a lookup.
    #[inline(always)]
    fn push_output(&mut self, to: ClientId, what: Output<'_>) {
        let conn = &mut self.conns[to];
        let bytes = rendered(&mut self.cache, conn, what);
        if let Output::Line(..) | Output::Labelled(..) = what {
            self.metrics.lines_sent += 1;
        }
        let grew = conn.output.append(bytes, &mut self.pool);
        self.soft_outbuf
            .observe(&mut conn.soft_since, conn.output.len(), self.now);
        self.queued_since_flush += bytes.len();
        if conn.put_on_flush_list() {
            self.dirty.push(to);
        }
        // The output memory of all clients only grows when a buffer is
        // taken or grown: checking the global bound then is checking it
        // after every line.
        if grew {
            self.check_global_bound();
        }
    }

    /// [`Clients::queue_output`] when the line would pass the client's
    /// output limit (`over`) or must be held for history.
    #[cold]
    #[inline(never)]
    fn queue_rarely(
        &mut self,
        to: ClientId,
        what: Output<'_>,
        over: bool,
        answer_to_uncommitted: bool,
    ) {
        if over && !self.make_room(to, what) {
            return;
        }
        if answer_to_uncommitted || !self.conns[to].held.is_empty() {
            self.hold(to, what, answer_to_uncommitted);
        } else {
            self.push_output(to, what);
        }
    }

    /// `to`'s queue would pass `max_outbuf_bytes` with `what`.
    /// Not slow, perhaps, only busy: the queue may have grown within this
    /// turn, so the socket gets one chance to take it (a write error is left
    /// for the flush to find). Returns whether there is room now; if not,
    /// the client is cut off, inside the fan-out: a stuck client's write
    /// event may never come.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, to: ClientId, what: Output<'_>) -> bool {
        let conn = &mut self.conns[to];
        if let Ok(written) = conn.write_output() {
            self.metrics.bytes_sent += written as u64;
            // Every write is observed, so the fan-out's observe_growth
            // never sees a stale clock.
            self.soft_outbuf
                .observe(&mut conn.soft_since, conn.output.len(), self.now);
        }
        let extra = rendered(&mut self.cache, conn, what).len();
        if conn.output.len() + conn.held.len() + extra <= self.max_outbuf_bytes {
            return true;
        }
        warn!(
            "{}: cut off, more than {} bytes of output queued (too slow)",
            conn.peer(),
            self.max_outbuf_bytes
        );
        self.metrics.cut_off(SlowLimit::Queue);
        self.cut_off(to);
        false
    }

    /// Holds a line for `to` until its earlier lines are committed (see
    /// [`crate::chat::history::HeldOutput`]).
    #[cold]
    #[inline(never)]
    fn hold(&mut self, to: ClientId, what: Output<'_>, answer_to_uncommitted: bool) {
        let conn = &mut self.conns[to];
        let bytes = rendered(&mut self.cache, conn, what);
        if let Output::Line(..) | Output::Labelled(..) = what {
            self.metrics.lines_sent += 1;
        }
        if conn.held.is_empty() {
            self.held.push(to);
        }
        let mark = if answer_to_uncommitted {
            conn.history_mark
        } else {
            0
        };
        conn.held.push(mark, bytes, &mut self.held_bytes);
        self.check_global_bound();
    }

    /// Output memory of all clients: queued for their sockets (the pool's
    /// buffers) and held until their lines are committed.
    fn output_total(&self) -> usize {
        self.pool.lent_bytes() + self.held_bytes
    }

    /// [`Clients::check_global_bound`] out of line, for the fan-out's loop,
    /// where a buffer grows rarely.
    #[cold]
    #[inline(never)]
    fn check_global_bound_cold(&mut self) {
        self.check_global_bound();
    }

    #[inline]
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
    #[cold]
    #[inline(never)]
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
                self.soft_outbuf
                    .observe(&mut conn.soft_since, conn.output.len(), self.now);
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

/// `what` as it is queued for `conn`: a line rendered for its key (once
/// per fan-out and key, through `cache`), or bytes already encoded for it.
#[inline(always)]
fn rendered<'a>(cache: &'a mut LineCache, conn: &Connection, what: Output<'a>) -> &'a [u8] {
    match what {
        Output::Line(line, variant) => {
            cache.bytes(line, RenderKey::for_conn(conn, variant), recipient(conn))
        }
        Output::Labelled(line, label) => cache.labelled(
            line,
            RenderKey::of(&conn.codec.encoder, true, Variant::Plain),
            label,
        ),
        Output::Encoded(bytes) => bytes,
    }
}
