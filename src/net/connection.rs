//! One client connection: its transport (stream and codec), its unfinished
//! input, its queued output, and where it is in its life. The connection
//! owns its state: its phase changes only through its transitions (open,
//! close with a reason, linger, kill with a reason), and the readiness it
//! asks the poller for is derived from that state, as in rustls's
//! `tlsserver-mio` example.
//!
//! An idle connection holds no buffers: input is read into the server's
//! shared scratch buffer and only an unfinished line is kept here; the
//! output buffer is borrowed from a [`BufferPool`] when a line is queued and
//! handed back once the socket has taken it all (see [`crate::net::outbuf`]).

use crate::end_reason::EndReason;
use crate::metrics::Standing;
use crate::net::outbuf::{BufferPool, OutputQueue};
use crate::net::transport::{Codec, Stream};
use crate::policy::limits::ClientLimits;
use mio::{Interest, Registry, Token};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

/// Where a connection is in its life. Every phase after `Open` carries
/// the reason it ended (a handshake carries the timeout that ends it unless
/// something else does first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Setting up its transport (a TLS handshake, an HTTP request head):
    /// not in the chat, not counted as a client, dropped at the deadline.
    Handshake {
        /// When it is dropped if the transport is still not ready.
        deadline: Instant,
        /// What ends it at the deadline.
        timeout: EndReason,
    },
    /// Reading commands; in the chat (or waiting for its password).
    Open,
    /// Out of the chat; its last lines (`* bye`, `! server full`, ...) are
    /// being written. Once they are, the write side is shut down.
    Closing {
        /// When it is dropped even if the line was not taken.
        deadline: Instant,
        /// Why it is closing.
        reason: EndReason,
    },
    /// Write side shut down; input is read and dropped until the peer closes
    /// too, so closing never sends an RST that could eat our last line.
    Lingering {
        /// When it is dropped even if the peer never closes.
        deadline: Instant,
        /// Why it closed.
        reason: EndReason,
    },
    /// Finished: dropped at the end of the loop turn, never written again.
    Dead {
        /// Why it ended.
        reason: EndReason,
    },
}

impl Phase {
    /// The deadline of a handshaking or closing connection.
    pub fn deadline(self) -> Option<Instant> {
        match self {
            Phase::Handshake { deadline, .. }
            | Phase::Closing { deadline, .. }
            | Phase::Lingering { deadline, .. } => Some(deadline),
            Phase::Open | Phase::Dead { .. } => None,
        }
    }

    /// Why the connection ended (or, handshaking, what ends it at the
    /// deadline); `None` while it is open.
    pub fn end_reason(self) -> Option<EndReason> {
        match self {
            Phase::Handshake {
                timeout: reason, ..
            }
            | Phase::Closing { reason, .. }
            | Phase::Lingering { reason, .. }
            | Phase::Dead { reason } => Some(reason),
            Phase::Open => None,
        }
    }
}

/// What [`Connection::kill`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Killed {
    /// It was open (in the chat, counted against `--max-clients`): its room
    /// must be told and the open count lowered.
    pub was_open: bool,
    /// Queued output bytes thrown away.
    pub discarded: usize,
}

/// A client connection. Its phase, its place on the loop's lists and its
/// registered interest change only through the methods below; the parts
/// the loop drives directly (the stream, the codec, the queued and held
/// output, the limits, the activity clocks) are fields.
///
/// `repr(C)` keeps the fields in the order written: every fan-out touches
/// the first ones for each recipient (is it open, room in its queue,
/// anything held, the soft limit's clock, is it on the flush list), so
/// they fill the first two cache lines instead of being spread over the
/// struct's eight, and `align(64)` starts every slab slot on a line (about
/// 40 bytes more per connection). With hundreds of recipients per line, a
/// cache miss per recipient costs more than the instructions
/// (docs/benchmarks-fanout.md).
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Connection {
    /// Where the connection is in its life, and why it ended.
    phase: Phase,
    /// Bytes queued for this client and not yet taken by the socket.
    pub output: OutputQueue,
    /// On the loop's dirty list, so a connection that receives many lines
    /// in one turn is flushed once.
    on_flush_list: bool,
    /// A write failed (the peer reset or went away): nothing more is queued
    /// for it, and it is dropped once its remaining input has been read.
    write_failed: bool,
    /// Which of the server's cached renderings of a line this connection
    /// gets, for a room line meant plain and one meant prefixed: set by
    /// the server (`server::render::refresh_slots`) when it takes the
    /// connection in and whenever its codec or `tags` change, so the
    /// fan-out reads one byte here per recipient. Meaningless elsewhere.
    pub render_slots: [u8; 2],
    /// Open and no write failed ([`Connection::takes_output`]): the two
    /// facts a fan-out asks of every recipient, as one, kept by
    /// [`Connection::enter`] and [`Connection::fail_write`].
    takes_output: bool,
    /// On the loop's read list: readable, and not yet read to the end
    /// (edge-triggered readiness will not say so again).
    on_read_list: bool,
    /// The poller reported the peer's FIN (or an error): input must be read
    /// to its end now, since no further edge will announce it.
    hangup_seen: bool,
    /// A read returned end of stream: the peer has shut down its sending side.
    read_closed: bool,
    /// Whether it counts as a client (and over which transport) or was
    /// turned away, for the metrics.
    standing: Standing,
    /// Output held back until the client's earlier lines are committed.
    pub held: crate::chat::history::HeldOutput,
    /// When the output queue last went above the soft limit, while it stays
    /// above it ([`crate::policy::limits::SoftLimit`]).
    pub soft_since: Option<Instant>,
    /// The history batch holding this client's latest chat line; replies
    /// wait in `held` until that batch is committed (see [`crate::chat::history`]).
    pub history_mark: u64,
    /// With `--cluster`: the cluster's turn mark of its last chat line
    /// (see `RedisCluster::publish`); while Redis is behind, a client whose
    /// lines are not accepted yet is not read.
    pub cluster_mark: u64,
    /// An account command of this client waits for the hashing worker, its
    /// `CHATHISTORY` for the history file, or (with `--cluster`) its new
    /// nick for Redis: its input is not run (nor read) until the answer is
    /// queued (so a client has one such wait at a time, and its next lines
    /// run after it, as on one server).
    pub account_wait: bool,
    /// Tags on (protocol 1.2): its lines are written with the tag prefix.
    /// The chat state decides it ([`crate::chat::Outbox::set_tags`]); it
    /// is here so a fan-out picks the encoding from the connection alone.
    pub tags: bool,
    /// An IRC connection's state (`docs/irc.md`): `None` for line and
    /// WebSocket clients. A fan-out reads its nick and capabilities.
    pub irc: Option<Box<crate::net::irc::IrcState>>,
    /// Turns plaintext into lines and lines into queued bytes; holds only
    /// unfinished input.
    pub codec: Codec,
    /// The byte layer (plain TCP or TLS), registered with the poller under
    /// the connection's slab key.
    pub stream: Stream,
    /// The peer's address, for logs.
    peer: SocketAddr,
    /// The interest registered with the poller; see [`Self::interest`].
    registered: Interest,
    /// The last time this client sent anything.
    pub last_input: Instant,
    /// Whether any input has been read yet (the first bytes are checked
    /// for a PROXY header when proxies are trusted).
    pub got_input: bool,
    /// When the first byte of a line still unfinished arrived: the idle
    /// timeout runs from here. Bytes of an unfinished line never count as
    /// activity, so dribbling cannot hold a slot.
    pub line_started: Option<Instant>,
    /// When the connection was accepted, for the auth timeout.
    accepted_at: Instant,
    /// Flood control and deferred lines ([`crate::policy::limits`]).
    pub limits: ClientLimits,
}

impl Connection {
    /// A freshly accepted connection, open at once (a plain line client).
    pub fn open(
        stream: Stream,
        codec: Codec,
        peer: SocketAddr,
        limits: ClientLimits,
        now: Instant,
    ) -> Self {
        Connection {
            stream,
            codec,
            output: OutputQueue::default(),
            held: Default::default(),
            limits,
            last_input: now,
            got_input: false,
            line_started: None,
            history_mark: 0,
            cluster_mark: 0,
            account_wait: false,
            tags: false,
            irc: None,
            soft_since: None,
            peer,
            accepted_at: now,
            phase: Phase::Open,
            standing: Standing::Pending,
            registered: Interest::READABLE,
            on_flush_list: false,
            on_read_list: false,
            hangup_seen: false,
            write_failed: false,
            render_slots: [0; 2],
            takes_output: true,
            read_closed: false,
        }
    }

    /// A freshly accepted connection that must finish a handshake (TLS, an
    /// HTTP request head) by `deadline`, or end for `timeout`.
    pub fn handshaking(
        stream: Stream,
        codec: Codec,
        peer: SocketAddr,
        limits: ClientLimits,
        now: Instant,
        deadline: Instant,
        timeout: EndReason,
    ) -> Self {
        let mut conn = Connection::open(stream, codec, peer, limits, now);
        conn.enter(Phase::Handshake { deadline, timeout });
        conn
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// When the connection was accepted.
    pub fn accepted_at(&self) -> Instant {
        self.accepted_at
    }

    /// Where the connection is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether it is open: in the chat or waiting for its password.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether output may be queued for it: open, and no write failed.
    #[inline]
    pub fn takes_output(&self) -> bool {
        debug_assert_eq!(self.takes_output, self.is_open() && !self.write_failed);
        self.takes_output
    }

    /// Moves it to `phase`; every change of phase comes through here, so
    /// [`Connection::takes_output`] follows it.
    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.takes_output = phase == Phase::Open && !self.write_failed;
    }

    /// Whether it is still setting up its transport.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshake { .. })
    }

    /// Whether its last lines are still being written.
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing { .. })
    }

    /// Whether it has ended and waits to be dropped.
    pub fn is_dead(&self) -> bool {
        matches!(self.phase, Phase::Dead { .. })
    }

    /// Why it ended; see [`Phase::end_reason`].
    pub fn end_reason(&self) -> Option<EndReason> {
        self.phase.end_reason()
    }

    /// Handshake to `Open`: its transport is ready (a TLS handshake done, a
    /// WebSocket upgrade answered). False, and nothing changes, unless it
    /// was handshaking.
    pub fn finish_handshake(&mut self) -> bool {
        if !self.is_handshaking() {
            return false;
        }
        self.enter(Phase::Open);
        true
    }

    /// Open or handshaking to `Closing`: its last lines (already queued, or
    /// queued next) go out, then the write side is shut down. A connection
    /// that handshakes keeps its handshake deadline; an open one gets
    /// `deadline`. False, and nothing changes, if it was already closing or
    /// dead.
    pub fn close(&mut self, reason: EndReason, deadline: Instant) -> bool {
        let deadline = match self.phase {
            Phase::Open => deadline,
            Phase::Handshake { deadline, .. } => deadline,
            _ => return false,
        };
        self.enter(Phase::Closing { deadline, reason });
        true
    }

    /// Closing to `Lingering`: everything owed is with the kernel, so the
    /// write side is shut down (FIN after the last byte) and input is read
    /// and dropped until the peer closes too. False unless it was closing.
    pub fn linger(&mut self) -> bool {
        let Phase::Closing { deadline, reason } = self.phase else {
            return false;
        };
        let _ = self.stream.shutdown_write();
        self.enter(Phase::Lingering { deadline, reason });
        true
    }

    /// Ends the connection at once: nothing more is written, its output
    /// and held output are thrown away. An open or handshaking connection
    /// ends for `reason`; one already closing keeps the reason it is
    /// closing for (a handshake's only reason was its timeout placeholder,
    /// so what ended it is the truth). `None` if it was already dead.
    pub fn kill(
        &mut self,
        reason: EndReason,
        pool: &mut BufferPool,
        held_bytes: &mut usize,
    ) -> Option<Killed> {
        let reason = match self.phase {
            Phase::Dead { .. } => return None,
            Phase::Open | Phase::Handshake { .. } => reason,
            Phase::Closing { reason, .. } | Phase::Lingering { reason, .. } => reason,
        };
        let was_open = self.is_open();
        self.enter(Phase::Dead { reason });
        let discarded = self.output.len();
        self.output.discard(pool);
        self.held.clear(held_bytes);
        Some(Killed {
            was_open,
            discarded,
        })
    }

    /// Moves every deadline no later than `last` (a shutdown's grace).
    pub fn shorten_deadline(&mut self, last: Instant) {
        match &mut self.phase {
            Phase::Handshake { deadline, .. }
            | Phase::Closing { deadline, .. }
            | Phase::Lingering { deadline, .. } => *deadline = (*deadline).min(last),
            Phase::Open | Phase::Dead { .. } => {}
        }
    }

    /// Whether it counts as a client, was turned away, or neither yet.
    pub fn standing(&self) -> Standing {
        self.standing
    }

    /// Records how it counts for the metrics (once admitted or refused).
    pub fn set_standing(&mut self, standing: Standing) {
        self.standing = standing;
    }

    /// Puts it on the loop's read list; false if it already was (the caller
    /// pushes its id only on true).
    pub fn put_on_read_list(&mut self) -> bool {
        !std::mem::replace(&mut self.on_read_list, true)
    }

    /// Whether it is on the read list (or parked or throttled with unread
    /// input).
    pub fn on_read_list(&self) -> bool {
        self.on_read_list
    }

    /// Takes it off the read list: read to the end.
    pub fn take_off_read_list(&mut self) {
        self.on_read_list = false;
    }

    /// Puts it on the loop's dirty list; false if it already was.
    #[inline]
    pub fn put_on_flush_list(&mut self) -> bool {
        !std::mem::replace(&mut self.on_flush_list, true)
    }

    /// Takes it off the dirty list, as it is flushed.
    pub fn take_off_flush_list(&mut self) {
        self.on_flush_list = false;
    }

    /// Notes the poller reporting the peer's FIN or an error (`seen`);
    /// returns whether one was ever reported.
    pub fn note_hangup(&mut self, seen: bool) -> bool {
        self.hangup_seen |= seen;
        self.hangup_seen
    }

    /// Whether the poller reported the peer's FIN or an error.
    pub fn hangup_seen(&self) -> bool {
        self.hangup_seen
    }

    /// A write failed: the peer is gone. Its output is thrown away (the
    /// bytes are returned) and nothing more is queued for it; its input is
    /// still read to the end.
    pub fn fail_write(&mut self, pool: &mut BufferPool) -> usize {
        self.write_failed = true;
        self.takes_output = false;
        let discarded = self.output.len();
        self.output.discard(pool);
        discarded
    }

    /// Whether a write failed.
    #[inline]
    pub fn write_failed(&self) -> bool {
        self.write_failed
    }

    /// A read returned end of stream.
    pub fn note_read_closed(&mut self) {
        self.read_closed = true;
    }

    /// Whether the peer has shut down its sending side.
    pub fn read_closed(&self) -> bool {
        self.read_closed
    }

    /// Writes queued output to the stream: one write of everything queued
    /// (for TLS: one record per 16 KiB of it). With nothing queued, TLS
    /// records still waiting (handshake, `close_notify`) are written.
    pub fn write_output(&mut self) -> io::Result<usize> {
        if self.output.is_empty() {
            self.stream.flush()?;
            return Ok(0);
        }
        self.output.write_to(&mut self.stream)
    }

    /// Whether anything waits to go out: queued lines, or TLS records
    /// (handshake messages, encrypted lines, `close_notify`).
    pub fn has_output(&self) -> bool {
        !self.output.is_empty() || self.stream.wants_write()
    }

    /// The readiness this connection needs from the poller, derived from
    /// its state: always readable (input, the peer's FIN, TLS records),
    /// and writable while output waits for socket space.
    pub fn interest(&self) -> Interest {
        if self.has_output() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Registers the stream under `token` with the interest its state needs.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
        registry.register(&mut self.stream, token, interest)?;
        self.registered = interest;
        Ok(())
    }

    /// Re-registers the stream when the interest its state needs changed
    /// since it was last registered; no syscall otherwise.
    pub fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
        if interest != self.registered {
            registry.reregister(&mut self.stream, token, interest)?;
            self.registered = interest;
        }
        Ok(())
    }

    /// The interest last registered with the poller.
    pub fn registered_interest(&self) -> Interest {
        self.registered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::limits::FloodLimit;
    use std::io::Read;
    use std::time::Duration;

    /// A connection over a real loopback socket, and the peer's end.
    fn connection(now: Instant) -> (Connection, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, addr) = listener.accept().unwrap();
        socket.set_nonblocking(true).unwrap();
        let stream = Stream::plain(mio::net::TcpStream::from_std(socket));
        let limits = ClientLimits::new(&FloodLimit::default(), now);
        let conn = Connection::open(stream, Codec::line(), addr, limits, now);
        (conn, peer)
    }

    #[test]
    fn closing_lingers_then_dies_keeping_its_reason() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(5);
        let (mut conn, mut peer) = connection(now);
        let mut pool = BufferPool::default();
        let mut held_bytes = 0;
        assert!(conn.is_open());
        assert_eq!(conn.end_reason(), None);
        assert!(!conn.linger(), "only a closing connection lingers");

        assert!(conn.close(EndReason::Quit, deadline));
        assert!(conn.is_closing());
        assert_eq!(conn.end_reason(), Some(EndReason::Quit));
        assert_eq!(conn.phase().deadline(), Some(deadline));
        assert!(!conn.close(EndReason::IdleTimeout, deadline), "closes once");
        assert_eq!(conn.end_reason(), Some(EndReason::Quit));

        assert!(conn.linger());
        assert!(matches!(
            conn.phase(),
            Phase::Lingering {
                reason: EndReason::Quit,
                ..
            }
        ));
        // Lingering shut the write side down: the peer reads its end.
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(peer.read(&mut [0; 16]).unwrap(), 0);

        let killed = conn.kill(EndReason::WriteError, &mut pool, &mut held_bytes);
        assert_eq!(
            killed,
            Some(Killed {
                was_open: false,
                discarded: 0
            })
        );
        assert_eq!(
            conn.phase(),
            Phase::Dead {
                reason: EndReason::Quit
            }
        );
        assert_eq!(
            conn.kill(EndReason::ReadError, &mut pool, &mut held_bytes),
            None
        );
    }

    #[test]
    fn killing_an_open_connection_drops_its_output_and_names_the_reason() {
        let now = Instant::now();
        let (mut conn, _peer) = connection(now);
        let mut pool = BufferPool::default();
        let mut held_bytes = 0;
        conn.output.push(b"lost\n", &mut pool);
        let killed = conn.kill(EndReason::ResetByPeer, &mut pool, &mut held_bytes);
        assert_eq!(
            killed,
            Some(Killed {
                was_open: true,
                discarded: 5
            })
        );
        assert!(conn.is_dead());
        assert_eq!(conn.end_reason(), Some(EndReason::ResetByPeer));
        assert!(conn.output.is_empty());
        assert_eq!(pool.lent_bytes(), 0);
        assert!(!conn.close(EndReason::Quit, now), "the dead do not close");
    }

    #[test]
    fn a_handshake_opens_or_ends_for_what_ended_it() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(5);
        let mut pool = BufferPool::default();
        let mut held_bytes = 0;
        let handshaking = |now| {
            let (conn, peer) = connection(now);
            let Connection {
                stream,
                codec,
                limits,
                peer: addr,
                ..
            } = conn;
            let timeout = EndReason::TlsHandshakeTimeout;
            let conn = Connection::handshaking(stream, codec, addr, limits, now, deadline, timeout);
            (conn, peer)
        };

        let (mut conn, _peer) = handshaking(now);
        assert!(conn.is_handshaking());
        assert_eq!(conn.end_reason(), Some(EndReason::TlsHandshakeTimeout));
        assert!(conn.finish_handshake());
        assert!(conn.is_open());
        assert_eq!(conn.end_reason(), None);
        assert!(!conn.finish_handshake(), "opens once");

        // The timeout was only a placeholder: what ended it is the truth.
        let (mut conn, _peer) = handshaking(now);
        let killed = conn.kill(EndReason::TlsError, &mut pool, &mut held_bytes);
        assert_eq!(killed.map(|k| k.was_open), Some(false));
        assert_eq!(conn.end_reason(), Some(EndReason::TlsError));

        // A page served: closing within the handshake's own deadline.
        let (mut conn, _peer) = handshaking(now);
        assert!(conn.close(EndReason::HttpResponseSent, now + Duration::from_secs(60)));
        assert_eq!(conn.phase().deadline(), Some(deadline));

        // Shutdown's grace moves deadlines earlier, never later.
        conn.shorten_deadline(now + Duration::from_secs(1));
        assert_eq!(conn.phase().deadline(), Some(now + Duration::from_secs(1)));
        conn.shorten_deadline(now + Duration::from_secs(9));
        assert_eq!(conn.phase().deadline(), Some(now + Duration::from_secs(1)));
    }

    #[test]
    fn interest_follows_output_and_is_registered_only_when_it_changes() {
        let now = Instant::now();
        let (mut conn, mut peer) = connection(now);
        let mut pool = BufferPool::default();
        let mut poll = mio::Poll::new().unwrap();
        conn.register(poll.registry(), Token(7)).unwrap();
        assert_eq!(conn.interest(), Interest::READABLE);
        assert_eq!(conn.registered_interest(), Interest::READABLE);

        conn.output.push(b"hello\n", &mut pool);
        assert_eq!(conn.interest(), Interest::READABLE | Interest::WRITABLE);
        conn.update_interest(poll.registry(), Token(7)).unwrap();
        assert_eq!(
            conn.registered_interest(),
            Interest::READABLE | Interest::WRITABLE
        );
        // Registered for writing, and the socket has room: the poller says so.
        let mut events = mio::Events::with_capacity(8);
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert!(events
            .iter()
            .any(|e| e.token() == Token(7) && e.is_writable()));

        assert_eq!(conn.write_output().unwrap(), 6);
        assert_eq!(conn.interest(), Interest::READABLE);
        conn.update_interest(poll.registry(), Token(7)).unwrap();
        assert_eq!(conn.registered_interest(), Interest::READABLE);
        let mut line = [0; 6];
        peer.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"hello\n");
    }
}
