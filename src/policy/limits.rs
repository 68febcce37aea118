//! What one client may cost the others: flood control, fairness by work
//! done, the soft output limit over time, and the global bound on queued
//! output with eviction of the biggest queues.
//!
//! Everything here counts transport-neutral quantities: bytes read from a
//! client, complete lines it sent, bytes queued in its
//! [`OutputQueue`](crate::net::outbuf::OutputQueue). How bytes become lines
//! (plain TCP, TLS, WebSocket) is the connection's business; the server
//! calls in here with the counts.
//!
//! - **Flood control** ([`FloodLimit`], [`TokenBucket`]): two token buckets
//!   per client, lines per second and bytes per second, each as deep as
//!   `burst_secs` seconds of its rate. A client out of tokens is simply not
//!   read: its input waits in its socket, TCP pushes back on it, nothing is
//!   dropped or answered differently. Lines already read when the line
//!   bucket runs dry wait in [`ClientLimits::deferred`], in order.
//! - **Fairness by work** (`work_budget_bytes`): the output a client's lines
//!   cause in one loop turn (fan-out, `:users`, `:rooms` answers) is counted;
//!   past the budget its next lines wait for the next turn, like input past
//!   the read budget.
//! - **Soft output limit** ([`SoftLimit`]): a queue that stays above
//!   `bytes` for longer than `period` is a slow consumer even below the hard
//!   limit (Redis' `client-output-buffer-limit pubsub 32mb 8mb 60` shape).
//! - **Global bound** ([`biggest_first`]): when the output memory of all
//!   clients together passes the bound, the clients holding the most are cut
//!   off first until it is a margin below (Redis 7's `maxmemory-clients`).
//! - **Departures by the budget** ([`Departures`]): the fan-out the server
//!   causes itself (announcing clients cut off or gone) is held to the same
//!   per-turn budget as one client's lines: when the global bound cuts a
//!   thousand members of a big room at once, their `left` lines go out a
//!   budget's worth per turn, in order, with everyone served in between.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Per-client input rate limit. A rate of 0 turns that bucket off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloodLimit {
    /// Complete lines per second, sustained.
    pub lines_per_sec: u32,
    /// Input bytes per second, sustained.
    pub bytes_per_sec: u64,
    /// Depth of each bucket, in seconds of its rate: what may arrive at once
    /// after a quiet spell.
    pub burst_secs: u32,
}

impl FloodLimit {
    /// No flood control: what the load generator and benchmarks use.
    pub const OFF: FloodLimit = FloodLimit {
        lines_per_sec: 0,
        bytes_per_sec: 0,
        burst_secs: 0,
    };

    /// Whether any rate applies.
    pub fn is_on(&self) -> bool {
        self.lines_per_sec > 0 || self.bytes_per_sec > 0
    }

    fn burst(&self) -> f64 {
        f64::from(self.burst_secs.max(1))
    }

    /// Most lines that may arrive at once.
    pub fn line_burst(&self) -> f64 {
        f64::from(self.lines_per_sec) * self.burst()
    }

    /// Most bytes that may arrive at once.
    pub fn byte_burst(&self) -> f64 {
        self.bytes_per_sec as f64 * self.burst()
    }
}

impl Default for FloodLimit {
    /// Generous for people and ordinary bots (see docs/limits.md): 20 lines and
    /// 64 KiB per second, with 5 seconds' worth (100 lines, 320 KiB) at once.
    fn default() -> Self {
        FloodLimit {
            lines_per_sec: 20,
            bytes_per_sec: 64 * 1024,
            burst_secs: 5,
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `cap` held. Starts full.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(cap: f64, now: Instant) -> Self {
        TokenBucket {
            tokens: cap,
            last: now,
        }
    }

    /// Adds the tokens earned since the last call and returns what is held.
    pub fn refill(&mut self, rate: f64, cap: f64, now: Instant) -> f64 {
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * rate;
        self.tokens = (self.tokens + earned).min(cap);
        self.last = now;
        self.tokens
    }

    /// Spends `n` tokens (the balance may go below zero: a read may take a
    /// little more than was held, and is paid back before the next).
    pub fn take(&mut self, n: f64) {
        self.tokens -= n;
    }

    /// When the bucket will hold `need` tokens again, at `rate` a second.
    pub fn ready_at(&self, need: f64, rate: f64) -> Instant {
        let missing = (need - self.tokens).max(0.0);
        // Round up to a whole millisecond: the poller's timeout resolution.
        let wait = Duration::from_secs_f64(missing / rate.max(f64::MIN_POSITIVE));
        self.last + wait.max(Duration::from_millis(1)) + Duration::from_micros(999)
    }
}

/// Lines read from a client but not run yet, because it used its line
/// tokens or its work budget for this turn: packed in one buffer, each as a
/// 4-byte length and its bytes (`u32::MAX` and no bytes for a line that
/// passed the length limit), so a read of tiny lines costs at most 2.5
/// times its size, and an empty queue holds no memory.
#[derive(Debug, Default)]
pub struct HeldLines {
    buf: Vec<u8>,
    /// Start of the oldest line not taken yet.
    head: usize,
}

/// A held line, as [`HeldLines::pop_into`] returns it.
#[derive(Debug, PartialEq, Eq)]
pub enum Held {
    /// A complete line, copied into the caller's buffer.
    Line,
    /// A line that passed the length limit.
    TooLong,
}

const TOO_LONG: u32 = u32::MAX;

impl HeldLines {
    /// Whether no line waits.
    pub fn is_empty(&self) -> bool {
        self.head == self.buf.len()
    }

    /// Heap bytes held.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Queues a complete line.
    pub fn push_line(&mut self, line: &[u8]) {
        let len = u32::try_from(line.len()).unwrap_or(TOO_LONG - 1);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&line[..len as usize]);
    }

    /// Queues a line that passed the length limit.
    pub fn push_too_long(&mut self) {
        self.buf.extend_from_slice(&TOO_LONG.to_le_bytes());
    }

    /// Takes the oldest line, copying its bytes into `line`.
    pub fn pop_into(&mut self, line: &mut Vec<u8>) -> Option<Held> {
        if self.is_empty() {
            return None;
        }
        let at = self.head;
        let len = u32::from_le_bytes(self.buf[at..at + 4].try_into().expect("4 bytes"));
        self.head = at + 4;
        let held = if len == TOO_LONG {
            Held::TooLong
        } else {
            let end = self.head + len as usize;
            line.clear();
            line.extend_from_slice(&self.buf[self.head..end]);
            self.head = end;
            Held::Line
        };
        if self.is_empty() {
            self.clear();
        }
        Some(held)
    }

    /// Drops every held line and the buffer.
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        self.head = 0;
    }
}

/// The limits' per-client state, kept in each connection.
#[derive(Debug)]
pub struct ClientLimits {
    /// Lines per second.
    pub lines: TokenBucket,
    /// Bytes per second.
    pub bytes: TokenBucket,
    /// Lines read but not run yet, oldest first: at most one read's worth.
    /// No more is read until they have all run.
    pub deferred: HeldLines,
    /// While throttled: when the flood limit lets it be read again.
    pub wake_at: Option<Instant>,
    /// A WebSocket close (status, log reason) that came after held-back
    /// lines: it runs once they have.
    pub held_close: Option<(u16, crate::end_reason::EndReason)>,
}

impl ClientLimits {
    /// Full buckets: a new client may send a burst at once.
    pub fn new(flood: &FloodLimit, now: Instant) -> Self {
        ClientLimits {
            lines: TokenBucket::full(flood.line_burst(), now),
            bytes: TokenBucket::full(flood.byte_burst(), now),
            deferred: HeldLines::default(),
            wake_at: None,
            held_close: None,
        }
    }

    /// Whether one more line may run now under the line rate.
    pub fn take_line(&mut self, flood: &FloodLimit, now: Instant) -> bool {
        if flood.lines_per_sec == 0 {
            return true;
        }
        let rate = f64::from(flood.lines_per_sec);
        if self.lines.refill(rate, flood.line_burst(), now) >= 1.0 {
            self.lines.take(1.0);
            true
        } else {
            false
        }
    }

    /// When the next line token comes.
    pub fn line_ready_at(&self, flood: &FloodLimit) -> Instant {
        self.lines
            .ready_at(1.0, f64::from(flood.lines_per_sec.max(1)))
    }

    /// How many bytes may be read now: `Ok(max)`, or `Err(when)` when the
    /// byte bucket holds less than one read quantum.
    pub fn bytes_allowed(&mut self, flood: &FloodLimit, now: Instant) -> Result<usize, Instant> {
        if flood.bytes_per_sec == 0 {
            return Ok(usize::MAX);
        }
        let rate = flood.bytes_per_sec as f64;
        let cap = flood.byte_burst();
        // Wait for a worthwhile read, not a syscall per byte earned.
        let quantum = READ_QUANTUM.min(cap);
        let held = self.bytes.refill(rate, cap, now);
        if held >= quantum {
            Ok(held as usize)
        } else {
            Err(self.bytes.ready_at(quantum, rate))
        }
    }

    /// While lines wait for the line rate: when the next line token comes.
    pub fn line_wait(&mut self, flood: &FloodLimit, now: Instant) -> Option<Instant> {
        if flood.lines_per_sec == 0 {
            return None;
        }
        let rate = f64::from(flood.lines_per_sec);
        (self.lines.refill(rate, flood.line_burst(), now) < 1.0).then(|| self.line_ready_at(flood))
    }

    /// Counts bytes read.
    pub fn took_bytes(&mut self, flood: &FloodLimit, n: usize) {
        if flood.bytes_per_sec > 0 {
            self.bytes.take(n as f64);
        }
    }
}

/// Smallest read worth waking up for when throttled by bytes.
const READ_QUANTUM: f64 = 4096.0;

/// The soft output limit: a queue above `bytes` for `period` is too slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftLimit {
    /// Queued bytes above which the clock runs.
    pub bytes: usize,
    /// How long a queue may stay above `bytes`; `None` turns this off.
    pub period: Option<Duration>,
}

impl Default for SoftLimit {
    /// 256 KiB for 30 s: a reader slower than about 8 KiB/s under a
    /// sustained flood, or one that stops reading just under the hard limit.
    fn default() -> Self {
        SoftLimit {
            bytes: 256 * 1024,
            period: Some(Duration::from_secs(30)),
        }
    }
}

impl SoftLimit {
    /// Notes the queue length after output was queued or written.
    #[inline]
    pub fn observe(&self, state: &mut Option<Instant>, queued: usize, now: Instant) {
        if self.period.is_none() {
            return;
        }
        if queued > self.bytes {
            state.get_or_insert(now);
        } else {
            *state = None;
        }
    }

    /// [`SoftLimit::observe`] after output was only queued (never written),
    /// so the queue can only have grown: nothing to clear, and below the
    /// limit nothing to do but one comparison. The fan-out's per-recipient
    /// form.
    #[inline(always)]
    pub fn observe_growth(&self, state: &mut Option<Instant>, queued: usize, now: Instant) {
        if queued > self.bytes {
            self.observe(state, queued, now);
        }
    }

    /// Whether a queue above the limit since `since` has overstayed.
    pub fn expired(&self, since: Option<Instant>, now: Instant) -> bool {
        match (self.period, since) {
            (Some(period), Some(since)) => now.saturating_duration_since(since) >= period,
            _ => false,
        }
    }
}

/// The global bound's eviction order: given `(queued_bytes, id)` for every
/// client holding output, the ids biggest first (ties: lower id first). The
/// caller cuts them off in this order until the total is low enough. Cost:
/// one sort of the clients holding output, paid only when the bound is
/// passed; evicting down to a margin below it keeps that rare.
pub fn biggest_first(mut holders: Vec<(usize, usize)>) -> Vec<usize> {
    holders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    holders.into_iter().map(|(_, id)| id).collect()
}

/// How far below the global bound eviction goes, so the next passes are
/// rare: a sixteenth of the bound.
pub fn eviction_target(bound: usize) -> usize {
    bound - bound / 16
}

/// Clients that left without the chat being told yet (cut off, write
/// error, peer gone), announced in the order they left, a work budget's
/// worth per loop turn; the rest wait for the next turn (the loop polls
/// without sleeping while any wait). A pending client keeps its nick (the
/// chat frees it with the announcement) and its slot (the loop reaps it
/// only once [`Departures::is_pending`] is false).
#[derive(Debug, Default)]
pub struct Departures {
    queue: VecDeque<(usize, Option<&'static str>)>,
    pending: HashSet<usize>,
    /// Output the announcements queued this turn.
    work: usize,
}

impl Departures {
    /// A client left; `reason` is what its room is told (`None`: nothing).
    /// A client already waiting is not queued twice.
    pub fn push(&mut self, id: usize, reason: Option<&'static str>) {
        if self.pending.insert(id) {
            self.queue.push_back((id, reason));
        }
    }

    /// Whether `id` left and its departure is not announced yet: its slot
    /// must not be reused.
    pub fn is_pending(&self, id: usize) -> bool {
        self.pending.contains(&id)
    }

    /// Whether any departure waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many departures wait.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// A new loop turn: the budget is whole again.
    pub fn new_turn(&mut self) {
        self.work = 0;
    }

    /// The next departure to announce, if this turn's announcements have
    /// not used `budget` bytes of output yet (the first of a turn always
    /// goes, so every turn makes progress). The caller announces it, then
    /// calls [`Departures::announced`].
    pub fn next(&mut self, budget: usize) -> Option<(usize, Option<&'static str>)> {
        if self.work >= budget.max(1) && !self.queue.is_empty() {
            return None;
        }
        self.queue.pop_front()
    }

    /// `id`'s departure was announced, queuing `work` bytes of output.
    pub fn announced(&mut self, id: usize, work: usize) {
        self.pending.remove(&id);
        self.work += work.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn departures_go_in_order_a_budget_per_turn() {
        let mut departures = Departures::default();
        for id in [7, 3, 9, 3] {
            departures.push(id, Some("too slow"));
        }
        assert_eq!(departures.len(), 3, "a client is queued once");
        departures.new_turn();
        assert_eq!(departures.next(100), Some((7, Some("too slow"))));
        assert!(departures.is_pending(7), "pending until announced");
        departures.announced(7, 150);
        assert!(!departures.is_pending(7));
        assert_eq!(departures.next(100), None, "over budget: next turn");
        assert!(departures.is_pending(3) && departures.is_pending(9));
        departures.new_turn();
        assert_eq!(departures.next(100), Some((3, Some("too slow"))));
        departures.announced(3, 10);
        assert_eq!(departures.next(100), Some((9, Some("too slow"))));
        departures.announced(9, 10);
        assert!(departures.is_empty());
        assert_eq!(departures.next(100), None);
    }

    #[test]
    fn bucket_refills_at_its_rate_up_to_its_cap() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(10.0, t0);
        bucket.take(10.0);
        assert_eq!(bucket.refill(5.0, 10.0, t0), 0.0);
        let held = bucket.refill(5.0, 10.0, t0 + Duration::from_secs(1));
        assert!((held - 5.0).abs() < 1e-9);
        assert_eq!(bucket.refill(5.0, 10.0, t0 + Duration::from_secs(60)), 10.0);
    }

    #[test]
    fn line_limit_throttles_after_the_burst_and_says_when() {
        let flood = FloodLimit {
            lines_per_sec: 2,
            bytes_per_sec: 0,
            burst_secs: 3,
        };
        let t0 = Instant::now();
        let mut limits = ClientLimits::new(&flood, t0);
        for _ in 0..6 {
            assert!(limits.take_line(&flood, t0));
        }
        assert!(!limits.take_line(&flood, t0));
        let ready = limits.line_ready_at(&flood);
        assert!(ready >= t0 + Duration::from_millis(500));
        assert!(ready <= t0 + Duration::from_millis(502));
        assert!(limits.take_line(&flood, ready));
    }

    #[test]
    fn byte_limit_waits_for_a_quantum() {
        let flood = FloodLimit {
            lines_per_sec: 0,
            bytes_per_sec: 8192,
            burst_secs: 1,
        };
        let t0 = Instant::now();
        let mut limits = ClientLimits::new(&flood, t0);
        assert_eq!(limits.bytes_allowed(&flood, t0), Ok(8192));
        limits.took_bytes(&flood, 8192);
        let when = limits.bytes_allowed(&flood, t0).unwrap_err();
        assert!(when >= t0 + Duration::from_millis(500));
        assert!(limits.bytes_allowed(&flood, when).is_ok());
        assert!(limits.take_line(&flood, t0), "lines unlimited");
    }

    #[test]
    fn soft_limit_runs_only_while_above() {
        let soft = SoftLimit {
            bytes: 100,
            period: Some(Duration::from_secs(2)),
        };
        let t0 = Instant::now();
        let mut since = None;
        soft.observe(&mut since, 101, t0);
        soft.observe(&mut since, 500, t0 + Duration::from_secs(1));
        assert_eq!(since, Some(t0));
        assert!(!soft.expired(since, t0 + Duration::from_secs(1)));
        assert!(soft.expired(since, t0 + Duration::from_secs(2)));
        soft.observe(&mut since, 100, t0 + Duration::from_secs(2));
        assert!(!soft.expired(since, t0 + Duration::from_secs(9)));
    }

    #[test]
    fn held_lines_come_back_in_order_and_free_their_memory() {
        let mut held = HeldLines::default();
        held.push_line(b"one");
        held.push_too_long();
        held.push_line(b"");
        held.push_line(b"four");
        let mut line = Vec::new();
        assert_eq!(held.pop_into(&mut line), Some(Held::Line));
        assert_eq!(line, b"one");
        assert_eq!(held.pop_into(&mut line), Some(Held::TooLong));
        assert_eq!(held.pop_into(&mut line), Some(Held::Line));
        assert_eq!(line, b"");
        assert_eq!(held.pop_into(&mut line), Some(Held::Line));
        assert_eq!(line, b"four");
        assert_eq!(held.pop_into(&mut line), None);
        assert_eq!(held.capacity(), 0);
    }

    #[test]
    fn evictions_take_the_biggest_first() {
        let holders = vec![(10, 1), (500, 2), (300, 5), (40, 4), (300, 3)];
        assert_eq!(biggest_first(holders), vec![2, 3, 5, 4, 1]);
        assert_eq!(eviction_target(1600), 1500);
    }
}
