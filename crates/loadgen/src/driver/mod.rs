//! The event loop that drives every client: connect, barrier, send, receive,
//! drain, close. One thread, one `mio::Poll`, one token per client, so the
//! load generator's cost grows with traffic, not with a thread per client.
//!
//! Sockets are registered edge-triggered for reading and writing. Output is
//! appended to a per-client buffer and flushed once per loop turn, so a
//! flood sender's messages leave in as few writes as possible.
//!
//! This file holds the state and the phases (setup, barrier, run, drain,
//! closing); [`net`] the sockets and waiting, [`traffic`] the measured
//! messages and the meaning of server lines, [`summary`] progress lines and
//! the final report.

mod net;
mod summary;
mod traffic;
mod ws;

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Poll};

use super::report::Report;
use super::sys;
use super::tracker::SeqTracker;
use super::{Mode, Plan};
use loopchat::ShutdownHandle;

/// Bytes read per `read` call; one buffer shared by every client.
const READ_CHUNK: usize = 64 * 1024;
/// A server line longer than this is not a chat line we sent: dropped.
const MAX_PARTIAL_LINE: usize = 64 * 1024;
/// A sender whose socket already holds this much unsent output skips
/// messages rather than buffering without bound (the server is not reading).
const SEND_BACKLOG_LIMIT: usize = 1 << 20;
/// Notes kept for the report; the rest are only counted.
const MAX_NOTES: usize = 12;
/// How often the barrier probe is repeated while some client lacks it.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest sleep in `poll`, so timers are checked regularly.
const TICK: Duration = Duration::from_millis(100);
/// How often the drain recounts outstanding deliveries.
const DRAIN_CHECK: Duration = Duration::from_millis(50);
/// How long the in-process server gets to close every connection (its own
/// close timeout is 5 s).
const CLOSE_GRACE: Duration = Duration::from_secs(8);
/// Protocol limit on nick length.
const MAX_NICK: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not yet connecting.
    Idle,
    /// TCP connect in progress.
    Connecting,
    /// Connected, waiting for the welcome (and the room join).
    Handshake,
    /// Welcomed and in the room.
    Ready,
    Closed,
}

struct Client {
    sock: Option<TcpStream>,
    /// The TLS session over `sock`, with `--tls`.
    tls: Option<Box<rustls::ClientConnection>>,
    state: State,
    /// When its connect started, for the connect-time histogram.
    started: Instant,
    /// Nick from the welcome, inline so idle clients own no heap memory.
    nick: [u8; MAX_NICK],
    nick_len: u8,
    /// Unfinished last line; empty (and unallocated) most of the time.
    rbuf: Vec<u8>,
    /// Output not yet taken by the kernel.
    wbuf: Vec<u8>,
    /// The last write hit `WouldBlock`: wait for a writable event.
    blocked: bool,
    /// Already in the dirty list.
    dirty: bool,
    /// Got a barrier probe.
    probe_seen: bool,
    /// `--ws`: where its WebSocket is.
    ws: ws::WsState,
    /// `--ws`: bytes at the start of `wbuf` already framed for the wire.
    framed: usize,
}

impl Client {
    fn new(now: Instant) -> Client {
        Client {
            sock: None,
            tls: None,
            state: State::Idle,
            started: now,
            nick: [0; MAX_NICK],
            nick_len: 0,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            blocked: false,
            dirty: false,
            probe_seen: false,
            ws: ws::WsState::Off,
            framed: 0,
        }
    }

    fn nick(&self) -> &[u8] {
        &self.nick[..self.nick_len as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Setup,
    Barrier,
    /// Warmup and measured window (the hold, with `--idle`).
    Run,
    Drain,
    Closing,
    Done,
}

/// One in-flight flood message: its number and how many receivers still
/// owe it.
#[derive(Clone, Copy, Default)]
struct Slot {
    seq: u32,
    remaining: u32,
}

#[derive(Clone, Copy)]
struct CpuSnap {
    at: Instant,
    thread: Duration,
    process: Duration,
    server: Option<Duration>,
    machine: Option<(u64, u64)>,
}

/// Latency-style histogram in microseconds, up to an hour.
fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, 3_600_000_000, 3) {
        Ok(h) => h,
        // Unreachable: the bounds are constants hdrhistogram accepts.
        Err(e) => panic!("histogram bounds: {e:?}"),
    }
}

/// The whole run's state; see the module doc.
pub(crate) struct Driver<'a> {
    plan: &'a Plan,
    poll: Poll,
    clients: Vec<Client>,
    dirty: Vec<usize>,
    scratch: Vec<u8>,
    /// Plaintext decrypted from one read, with `--tls`.
    plain: Vec<u8>,
    base: Instant,
    phase: Phase,
    shutdown: Option<ShutdownHandle>,

    // Setup and barrier.
    next_connect: usize,
    /// Clients connecting or awaiting their welcome.
    in_progress: usize,
    ready: usize,
    open: usize,
    connect_failed: usize,
    connect_us: Histogram<u64>,
    setup_deadline: Instant,
    t_all_ready: Option<Instant>,
    barrier_deadline: Instant,
    probe_round: u32,
    probe_from: usize,
    probe_at: Instant,
    probe_hits: usize,
    barrier_ok: bool,
    connected: usize,
    t_run: Instant,

    // Sending.
    w0: Instant,
    w1: Instant,
    w0_ns: u64,
    w1_ns: u64,
    /// Rate mode: index of the next scheduled message over all senders.
    next_send: u64,
    interval_ns: f64,
    /// Messages sent per sender: the next sequence number.
    seq: Vec<u32>,
    window: usize,
    slots: Vec<Slot>,
    inflight: Vec<u32>,
    wanting: Vec<usize>,
    want_flag: Vec<bool>,
    drain_deadline: Instant,
    drain_checked: Instant,
    outstanding: u64,
    closing_deadline: Instant,

    // Measurements.
    tracker: SeqTracker,
    latency: Histogram<u64>,
    send_lag: Histogram<u64>,
    cpu0: Option<CpuSnap>,
    cpu1: Option<CpuSnap>,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    report: Report,
    notes_dropped: usize,
    shutdown_lines: usize,

    // Progress.
    next_progress: Instant,
    last_sent: u64,
    last_delivered: u64,
}

impl<'a> Driver<'a> {
    /// Allocates every client's state up front, so memory measured after
    /// this point is the server's, not the load generator's.
    pub(crate) fn new(plan: &'a Plan) -> std::io::Result<Driver<'a>> {
        let now = Instant::now();
        let n = plan.clients;
        let k = plan.senders;
        let window = match plan.mode {
            Mode::Flood(w) => w,
            _ => 0,
        };
        let interval_ns = match plan.mode {
            Mode::Rate(r) if r > 0.0 && k > 0 => 1e9 / (r * k as f64),
            _ => f64::INFINITY,
        };
        let report = Report {
            target: plan.target.clone(),
            mode: Some(plan.mode),
            clients: n,
            senders: k,
            payload: plan.payload,
            warmup_s: plan.warmup.as_secs_f64(),
            duration_s: plan.duration.as_secs_f64(),
            ..Report::default()
        };
        let driver = Driver {
            plan,
            poll: Poll::new()?,
            clients: (0..n).map(|_| Client::new(now)).collect(),
            dirty: Vec::with_capacity(k.max(16)),
            // Non-zero fill so its pages are resident before memory is read.
            scratch: vec![b'.'; READ_CHUNK],
            plain: Vec::new(),
            base: now,
            phase: Phase::Setup,
            shutdown: None,
            next_connect: 0,
            in_progress: 0,
            ready: 0,
            open: 0,
            connect_failed: 0,
            connect_us: histogram(),
            setup_deadline: now + plan.setup_timeout,
            t_all_ready: None,
            barrier_deadline: now,
            probe_round: 0,
            probe_from: 0,
            probe_at: now,
            probe_hits: 0,
            barrier_ok: false,
            connected: 0,
            t_run: now,
            w0: now,
            w1: now,
            w0_ns: u64::MAX,
            w1_ns: u64::MAX,
            next_send: 0,
            interval_ns,
            seq: vec![0; k],
            window,
            slots: vec![Slot::default(); k * window],
            inflight: vec![0; k],
            wanting: Vec::with_capacity(k),
            want_flag: vec![false; k],
            drain_deadline: now,
            drain_checked: now,
            outstanding: 0,
            closing_deadline: now,
            tracker: SeqTracker::new(n, k),
            latency: histogram(),
            send_lag: histogram(),
            cpu0: None,
            cpu1: None,
            rss_before: None,
            rss_after: None,
            report,
            notes_dropped: 0,
            shutdown_lines: 0,
            next_progress: now + Duration::from_secs(1),
            last_sent: 0,
            last_delivered: 0,
        };
        Ok(driver)
    }

    /// Runs every phase to the end and returns the report. `shutdown` stops
    /// the in-process server once the measurement is over, so connections
    /// close the way the server closes them.
    pub(crate) fn run(mut self, shutdown: Option<ShutdownHandle>) -> Report {
        self.shutdown = shutdown;
        if self.plan.mode == Mode::Idle {
            self.rss_before = self.rss();
        }
        let p = self.plan;
        // Every phase has its own deadline; this one only guards against a
        // bug in them, so the process always ends by itself.
        let hard_end = self.base
            + p.setup_timeout * 2
            + p.warmup
            + p.duration
            + p.drain
            + CLOSE_GRACE
            + Duration::from_secs(10);
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if now >= hard_end {
                self.note(format!(
                    "gave up in phase {:?}: overall time limit",
                    self.phase
                ));
                break;
            }
            self.step(now);
            if self.phase == Phase::Done {
                break;
            }
            self.flush_dirty();
            self.progress(now);
            let (wait, send_due) = self.wait(Instant::now());
            if let Err(e) = self.poll_for(&mut events, wait, send_due) {
                self.note(format!("poll failed: {e}"));
                break;
            }
            for ev in events.iter() {
                self.on_event(ev);
            }
        }
        for i in 0..self.clients.len() {
            self.drop_socket(i);
        }
        self.finish()
    }

    /// Nanoseconds since the run's start: the clock every marker carries.
    fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// Keeps a detail for the report; past `MAX_NOTES` only counts it, so a
    /// thousand identical failures do not bury the summary.
    fn note(&mut self, s: String) {
        if self.report.notes.len() < MAX_NOTES {
            self.report.notes.push(s);
        } else {
            self.notes_dropped += 1;
        }
    }

    /// The server's resident memory: this process's when it runs in-process.
    fn rss(&self) -> Option<u64> {
        if self.plan.in_process {
            sys::vm_rss_kib(None)
        } else {
            self.plan.server_pid.and_then(|p| sys::vm_rss_kib(Some(p)))
        }
    }

    /// CPU counters now, to be diffed over the measured window.
    fn cpu_snap(&self) -> CpuSnap {
        let server = match (self.plan.server_tid, self.plan.server_pid) {
            (Some(tid), _) => sys::proc_cpu(None, Some(tid)),
            (None, Some(pid)) => sys::proc_cpu(Some(pid), None),
            (None, None) => None,
        };
        CpuSnap {
            at: Instant::now(),
            thread: sys::thread_cpu(),
            process: sys::process_cpu(),
            server,
            machine: sys::machine_ticks(),
        }
    }

    /// Advances the current phase: connects, timeouts, scheduled sends,
    /// phase changes. Called once per loop turn, before `poll`.
    fn step(&mut self, now: Instant) {
        match self.phase {
            Phase::Setup => {
                self.start_connects(now);
                if self.next_connect == self.clients.len() && self.in_progress == 0 {
                    self.start_barrier(now);
                } else if now >= self.setup_deadline {
                    let late = self.in_progress + self.clients.len() - self.next_connect;
                    self.note(format!(
                        "setup timed out after {:?}: {late} clients not ready",
                        self.plan.setup_timeout
                    ));
                    for i in 0..self.clients.len() {
                        if self.clients[i].state != State::Ready {
                            self.fail_quietly(i);
                        }
                    }
                    self.start_barrier(now);
                }
            }
            Phase::Barrier => {
                if self.barrier_done() {
                    self.barrier_ok = true;
                    self.start_run(now);
                } else if now >= self.barrier_deadline {
                    self.note(format!(
                        "barrier timed out: probe reached {} of {} clients",
                        self.probe_hits,
                        self.ready.saturating_sub(1)
                    ));
                    self.start_run(now);
                } else if now >= self.probe_at + PROBE_INTERVAL
                    || self.clients[self.probe_from].state != State::Ready
                {
                    self.send_probe(now);
                }
            }
            Phase::Run => {
                if self.cpu0.is_none() && now >= self.w0 {
                    self.cpu0 = Some(self.cpu_snap());
                }
                if now >= self.w1 {
                    self.cpu1 = Some(self.cpu_snap());
                    if self.plan.mode == Mode::Idle {
                        self.rss_after = self.rss();
                        self.start_closing(now);
                    } else {
                        self.phase = Phase::Drain;
                        self.drain_deadline = now + self.plan.drain;
                        self.drain_checked = now;
                        self.outstanding = self.count_outstanding();
                    }
                    return;
                }
                match self.plan.mode {
                    Mode::Rate(_) => self.send_due(now),
                    Mode::Flood(_) => self.fill_windows(now),
                    Mode::Idle => {}
                }
            }
            Phase::Drain => {
                if now >= self.drain_checked + DRAIN_CHECK {
                    self.drain_checked = now;
                    self.outstanding = self.count_outstanding();
                }
                if self.outstanding == 0 || now >= self.drain_deadline {
                    self.outstanding = self.count_outstanding();
                    self.report.drain_incomplete = self.outstanding > 0;
                    self.report.lost = self.outstanding + self.tracker.forgotten();
                    self.start_closing(now);
                }
            }
            Phase::Closing => {
                if self.open == 0 {
                    self.phase = Phase::Done;
                } else if now >= self.closing_deadline {
                    self.note(format!(
                        "{} connections still open {:?} after the server was told to shut down",
                        self.open, CLOSE_GRACE
                    ));
                    self.phase = Phase::Done;
                }
            }
            Phase::Done => {}
        }
    }

    /// Every client has settled (ready or failed): prove they are all in
    /// the room before measuring anything.
    fn start_barrier(&mut self, now: Instant) {
        self.t_all_ready = Some(now);
        self.phase = Phase::Barrier;
        self.barrier_deadline = now + self.plan.setup_timeout;
        if self.ready >= 2 {
            self.send_probe(now);
        }
    }

    /// Whether every ready client but the prober has got a probe.
    fn barrier_done(&self) -> bool {
        if self.ready < 2 {
            return true;
        }
        let sender_has = usize::from(self.clients[self.probe_from].probe_seen);
        // The probe's sender never receives its own probe.
        self.probe_hits - sender_has + 1 >= self.ready
    }

    /// Starts sending (or the idle hold) and fixes the measured window.
    fn start_run(&mut self, now: Instant) {
        let p = self.plan;
        self.report.setup_s = self
            .t_all_ready
            .map_or(0.0, |t| t.duration_since(self.base).as_secs_f64());
        self.report.barrier_s = self
            .t_all_ready
            .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        self.connected = self.ready;
        let needed = if p.mode == Mode::Idle { 1 } else { 2 };
        if self.ready < needed {
            self.note(format!(
                "only {} clients ready: nothing to measure",
                self.ready
            ));
            self.start_closing(now);
            return;
        }
        self.phase = Phase::Run;
        self.t_run = now;
        self.w0 = now + p.warmup;
        self.w1 = self.w0 + p.duration;
        self.w0_ns = self.ns(self.w0);
        self.w1_ns = self.ns(self.w1);
        if let Mode::Flood(_) = p.mode {
            for s in 0..p.senders {
                self.want(s);
            }
        }
    }

    /// The measurement is over: close every connection.
    fn start_closing(&mut self, now: Instant) {
        self.phase = Phase::Closing;
        self.closing_deadline = now + CLOSE_GRACE;
        match &self.shutdown {
            // Let the server close its side: no storm of leave lines, and
            // its shutdown path gets exercised too.
            Some(h) => h.shutdown(),
            None => {
                for i in 0..self.clients.len() {
                    self.drop_socket(i);
                }
            }
        }
    }
}
