//! One client connection: its transport (stream and codec), its unfinished
//! input, its queued
//! output, and where it is in its life.
//!
//! An idle connection holds no buffers: input is read into the server's
//! shared scratch buffer and only an unfinished line is kept here; the
//! output buffer is borrowed from a [`BufferPool`] when a line is queued and
//! handed back once the socket has taken it all.

use crate::metrics::Standing;
use crate::net::transport::{Codec, Stream};
use crate::policy::limits::{ClientLimits, FloodLimit};
use mio::Interest;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Setting up its transport (an HTTP request head on the web address):
    /// not in the chat, not counted as a client, dropped at the deadline.
    Handshake {
        /// When it is dropped if the transport is still not ready.
        deadline: Instant,
    },
    /// Reading commands; in the chat (or waiting for its password).
    Open,
    /// Out of the chat; its last lines (`* bye`, `! server full`, ...) are
    /// being written. Once they are, the write side is shut down.
    Closing {
        /// When it is dropped even if the line was not taken.
        deadline: Instant,
    },
    /// Write side shut down; input is read and dropped until the peer closes
    /// too, so closing never sends an RST that could eat our last line.
    Lingering {
        /// When it is dropped even if the peer never closes.
        deadline: Instant,
    },
    /// Finished: dropped at the end of the loop turn, never written again.
    Dead,
}

impl Phase {
    /// The deadline of a closing connection.
    pub fn deadline(self) -> Option<Instant> {
        match self {
            Phase::Handshake { deadline }
            | Phase::Closing { deadline }
            | Phase::Lingering { deadline } => Some(deadline),
            Phase::Open | Phase::Dead => None,
        }
    }
}

/// A client connection.
#[derive(Debug)]
pub struct Connection {
    /// The byte layer (plain TCP), registered with the poller under the
    /// connection's slab key.
    pub stream: Stream,
    /// The peer's address, for logs.
    pub peer: SocketAddr,
    /// Where the connection is in its life; decides what input and output
    /// still mean for it.
    pub phase: Phase,
    /// Turns plaintext into lines and lines into queued bytes; holds only
    /// unfinished input.
    pub codec: Codec,
    /// Bytes queued for this client and not yet taken by the socket.
    pub output: OutputQueue,
    /// Set while the token is on the server's dirty list, so a connection
    /// that receives many lines in one turn is flushed once.
    pub queued_for_flush: bool,
    /// Set while the token is on the server's read list: readable, and not
    /// yet read to the end (edge-triggered readiness will not say so again).
    pub queued_for_read: bool,
    /// Whether WRITABLE interest is registered: only while output waits for
    /// socket space.
    pub wants_writable: bool,
    /// The poller reported the peer's FIN (or an error): input must be read
    /// to its end now, since no further edge will announce it.
    pub hangup_seen: bool,
    /// A write failed (the peer reset or went away): nothing more is queued
    /// for it, and it is dropped once its remaining input has been read.
    pub write_failed: bool,
    /// A read returned end of stream: the peer has shut down its sending side.
    pub read_closed: bool,
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
    pub accepted_at: Instant,
    /// Why the connection ended, for the disconnect log line; set once,
    /// when it leaves the `Open` phase.
    pub end_reason: &'static str,
    /// The history batch holding this client's latest chat line; replies
    /// wait in `held` until that batch is committed (see [`crate::chat::history`]).
    pub history_mark: u64,
    /// Output held back until the client's earlier lines are committed.
    pub held: crate::chat::history::HeldOutput,
    /// Flood control, deferred lines and the soft output limit's clock
    /// ([`crate::policy::limits`]).
    pub limits: ClientLimits,
    /// Whether it counts as a client (and over which transport) or was
    /// turned away, for the metrics.
    pub standing: Standing,
}

impl Connection {
    /// A freshly accepted connection.
    pub fn new(stream: Stream, codec: Codec, peer: SocketAddr, now: Instant) -> Self {
        Connection {
            stream,
            peer,
            phase: Phase::Open,
            codec,
            output: OutputQueue::default(),
            queued_for_flush: false,
            queued_for_read: false,
            wants_writable: false,
            hangup_seen: false,
            write_failed: false,
            read_closed: false,
            last_input: now,
            got_input: false,
            line_started: None,
            accepted_at: now,
            end_reason: "closed",
            history_mark: 0,
            held: Default::default(),
            limits: ClientLimits::new(&FloodLimit::default(), now),
            standing: Standing::Pending,
        }
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

    /// The readiness this connection needs from the poller now.
    pub fn interest(&self) -> Interest {
        if self.wants_writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }
}

/// Output queued for one client: a contiguous buffer and how much of it the
/// socket has already taken. Lines are appended whole, so one write sends
/// every line queued since the last one.
#[derive(Debug, Default)]
pub struct OutputQueue {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already written.
    sent: usize,
}

impl OutputQueue {
    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Whether nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Appends a line, taking a buffer from `pool` if this queue holds none.
    pub fn push(&mut self, line: &[u8], pool: &mut BufferPool) {
        if self.buf.capacity() == 0 {
            self.buf = pool.take();
        }
        let before = self.buf.capacity();
        self.buf.extend_from_slice(line);
        pool.lent += self.buf.capacity() - before;
    }

    /// Writes as much as the socket takes in one call. Returns the bytes
    /// written; `WouldBlock` and other errors are returned as they are.
    pub fn write_to(&mut self, socket: &mut impl Write) -> io::Result<usize> {
        let written = socket.write(&self.buf[self.sent..])?;
        self.sent += written;
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        } else if self.sent >= self.buf.len() / 2 {
            // Keep appends cheap and memory bounded without moving the
            // unsent tail on every short write.
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
        Ok(written)
    }

    /// Drops everything queued (a cut-off client gets nothing more) and
    /// gives the buffer back.
    pub fn discard(&mut self, pool: &mut BufferPool) {
        self.buf.clear();
        self.sent = 0;
        self.release(pool);
    }

    /// Hands an empty buffer back to the pool so an idle connection holds
    /// no output memory.
    pub fn release(&mut self, pool: &mut BufferPool) {
        if self.is_empty() && self.buf.capacity() > 0 {
            pool.put(std::mem::take(&mut self.buf));
            self.sent = 0;
        }
    }
}

/// Spare output buffers, so busy connections reuse memory instead of
/// allocating (and page-faulting) per burst, and idle connections hold none.
#[derive(Debug, Default)]
pub struct BufferPool {
    spare: Vec<Vec<u8>>,
    /// Capacity held in `spare`, bounded by [`Self::MAX_SPARE_BYTES`].
    spare_bytes: usize,
    /// Whether a buffer was taken since the last [`Self::trim`].
    taken_since_trim: bool,
    /// Capacity of the buffers lent out to output queues: the output
    /// memory of all clients, which the global output bound limits.
    lent: usize,
}

impl BufferPool {
    /// Memory the pool may hold for reuse; past it, returned buffers are
    /// freed. About what one turn queues at most before it is flushed.
    const MAX_SPARE_BYTES: usize = 16 * 1024 * 1024;
    /// What a new buffer starts with: a few lines. It grows as a client's
    /// turns need, and the grown buffer is what the pool hands out again.
    const INITIAL_CAPACITY: usize = 1024;

    /// An empty buffer, reused when one is spare.
    pub fn take(&mut self) -> Vec<u8> {
        self.taken_since_trim = true;
        let buf = match self.spare.pop() {
            Some(buf) => {
                self.spare_bytes -= buf.capacity();
                buf
            }
            None => Vec::with_capacity(Self::INITIAL_CAPACITY),
        };
        self.lent += buf.capacity();
        buf
    }

    /// Heap bytes held by all output queues together (their buffers'
    /// capacity, not only the bytes waiting in them).
    pub fn lent_bytes(&self) -> usize {
        self.lent
    }

    /// Called once a second: frees every spare buffer if none was taken
    /// since the last call (the burst is over), else half of them, so a busy
    /// server keeps what it keeps reusing and an idle one gives its memory
    /// back.
    pub fn trim(&mut self) {
        let keep = if self.taken_since_trim {
            self.spare.len() / 2
        } else {
            0
        };
        self.taken_since_trim = false;
        if self.spare.len() == keep {
            return;
        }
        for buf in self.spare.drain(keep..) {
            self.spare_bytes -= buf.capacity();
        }
        if self.spare.is_empty() {
            release_free_heap();
        }
    }

    /// Returns an emptied buffer.
    pub fn put(&mut self, mut buf: Vec<u8>) {
        self.lent = self.lent.saturating_sub(buf.capacity());
        if self.spare_bytes + buf.capacity() <= Self::MAX_SPARE_BYTES {
            buf.clear();
            self.spare_bytes += buf.capacity();
            self.spare.push(buf);
        }
    }
}

/// Asks the allocator to hand free heap pages back to the OS. glibc keeps
/// freed small blocks resident otherwise, so a burst of 10,000 buffers would
/// pin its memory long after the burst.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `room` bytes per call.
    struct Trickle {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_order_and_release_memory() {
        let mut pool = BufferPool::default();
        let mut queue = OutputQueue::default();
        let mut sink = Trickle {
            taken: Vec::new(),
            room: 3,
        };
        for i in 0..50 {
            queue.push(format!("line {i}\n").as_bytes(), &mut pool);
            queue.write_to(&mut sink).unwrap();
        }
        while !queue.is_empty() {
            queue.write_to(&mut sink).unwrap();
        }
        let expected: String = (0..50).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8(sink.taken).unwrap(), expected);
        assert_eq!(pool.lent_bytes(), queue.capacity());
        queue.release(&mut pool);
        assert_eq!(queue.capacity(), 0);
        assert_eq!(pool.spare.len(), 1);
        assert_eq!(pool.lent_bytes(), 0);
    }

    #[test]
    fn would_block_leaves_the_queue_intact() {
        let mut pool = BufferPool::default();
        let mut queue = OutputQueue::default();
        queue.push(b"hello\n", &mut pool);
        let mut full = Trickle {
            taken: Vec::new(),
            room: 0,
        };
        let err = queue.write_to(&mut full).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(queue.len(), 6);
    }
}
