//! The history writer: commits the loop's batches to the SQLite file, prunes
//! in small steps when idle, and acknowledges each batch.
//!
//! Priority: saving history must not delay a delivery, so the writer runs
//! at idle priority (Linux `SCHED_IDLE`): it gets only the CPU time no other
//! thread on the machine wants, and a chat client's wake-up always goes
//! first. Idle priority alone could starve it when the machine is saturated
//! by other programs, and a thread cannot leave `SCHED_IDLE` without
//! privileges. So the writer's state moves between two threads: one at idle
//! priority, one at normal priority. It starts with the idle one; when a
//! batch has waited longer than `--history-writer-max-wait-ms` (default
//! [`MAX_WAIT`]) for it, that thread hands the state
//! to the normal one, which writes until it has kept up for a while and
//! then hands it back. Exactly one thread holds the state at a time; the
//! other waits on its channel.

use super::query::QueryAnswer;
use super::store::{NewLine, Retention, Store};
use super::{tails, Ack, Batch};
use crate::chat::completion::{Completer, Completion};
use log::{error, info, warn};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines the writer commits in one transaction at most when batches queue up.
const LINES_PER_COMMIT: usize = 10_000;
/// Lines deleted per pruning transaction, so the writer is never held long.
const PRUNE_STEP: usize = 500;
/// Pause between pruning passes.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// The default for [`super::HistoryConfig::writer_max_wait`]: a batch that
/// waited longer than this for the idle-priority thread means the writer is
/// starved (a busy chat gives it a core's spare moments within a few
/// milliseconds; a single busy program on every core, about 100 ms).
pub const MAX_WAIT: Duration = Duration::from_millis(500);
/// At normal priority, a batch this fresh counts as kept up.
const KEPT_UP: Duration = Duration::from_millis(20);
/// How long the normal-priority thread must keep up before it hands back;
/// doubled (up to [`MAX_CALM`]) each time the writer is starved again
/// within [`SOON`] of a hand-back, so a busy machine does not make it
/// switch back and forth.
const CALM: Duration = Duration::from_secs(10);
/// The longest the normal-priority thread waits before handing back.
const MAX_CALM: Duration = Duration::from_secs(300);
/// Starved again this soon after a hand-back: the next stay is longer.
const SOON: Duration = Duration::from_secs(60);

/// How the history writer is scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterPriority {
    /// Idle priority, with a normal-priority stand-in when starved.
    Idle,
    /// Normal priority, like the event loop.
    Normal,
}

impl std::str::FromStr for WriterPriority {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "idle" => Ok(WriterPriority::Idle),
            "normal" => Ok(WriterPriority::Normal),
            other => Err(format!("expected idle or normal, not {other:?}")),
        }
    }
}

impl std::fmt::Display for WriterPriority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriterPriority::Idle => "idle",
            WriterPriority::Normal => "normal",
        })
    }
}

/// Everything the writer needs, owned by whichever thread writes now.
pub(super) struct Writer {
    store: Store,
    rx: Receiver<Batch>,
    /// Where acknowledgements go: the loop's completion path.
    done: Completer,
    keep: usize,
    /// How long a batch may wait for the idle-priority thread.
    max_wait: Duration,
    pruner: Pruner,
    failing: bool,
    /// A batch taken by the idle thread and left for the normal one.
    carried: Option<Batch>,
    commits: u64,
    rows: u64,
    /// Times the normal-priority thread took over.
    promotions: u64,
    calm: Duration,
    last_handback: Option<Instant>,
}

/// Why a thread stopped writing.
enum Exit {
    /// The loop is gone and everything queued is committed.
    Done,
    /// The other thread should write now.
    HandOver,
}

impl Writer {
    pub(super) fn new(
        store: Store,
        rx: Receiver<Batch>,
        done: Completer,
        retention: Retention,
        keep: usize,
        max_wait: Duration,
    ) -> Self {
        Writer {
            store,
            rx,
            done,
            keep,
            max_wait,
            pruner: Pruner::new(retention),
            failing: false,
            carried: None,
            commits: 0,
            rows: 0,
            promotions: 0,
            calm: CALM,
            last_handback: None,
        }
    }

    /// Starts the writer's thread(s). With [`WriterPriority::Idle`] two
    /// threads start, the idle-priority one holding the writer; the other
    /// waits until it is needed.
    pub(super) fn spawn(self, priority: WriterPriority) -> std::io::Result<Vec<JoinHandle<()>>> {
        if priority == WriterPriority::Normal {
            let thread = std::thread::Builder::new()
                .name("history".into())
                .spawn(move || {
                    let mut writer = self;
                    writer.run(Mode::Only);
                    writer.finish();
                })?;
            return Ok(vec![thread]);
        }
        let (to_idle, idle_slot) = mpsc::channel::<Writer>();
        let (to_normal, normal_slot) = mpsc::channel::<Writer>();
        to_idle
            .send(self)
            .map_err(|_| std::io::Error::other("writer channel closed"))?;
        let normal = std::thread::Builder::new()
            .name("history-normal".into())
            .spawn(move || take_turns(Mode::Normal, normal_slot, to_idle))?;
        let idle = std::thread::Builder::new()
            .name("history-idle".into())
            .spawn(move || {
                set_idle_priority();
                take_turns(Mode::Idle, idle_slot, to_normal);
            })?;
        Ok(vec![idle, normal])
    }

    /// Commits batches as they come until the loop is gone or (by `mode`)
    /// the other thread should take over.
    fn run(&mut self, mode: Mode) -> Exit {
        let mut lagged_at = Instant::now();
        let mut group: Vec<Batch> = Vec::new();
        loop {
            if mode == Mode::Normal && lagged_at.elapsed() >= self.calm {
                return self.hand_back();
            }
            let first = match self.carried.take() {
                Some(batch) => batch,
                None => match self.rx.recv_timeout(self.wait(mode, lagged_at)) {
                    Ok(batch) => batch,
                    Err(RecvTimeoutError::Timeout) => {
                        // Time to hand back (checked above) or to prune.
                        if self.pruner.due() {
                            self.pruner.step(&mut self.store);
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return Exit::Done,
                },
            };
            let waited = first.sent.elapsed();
            match mode {
                Mode::Idle if waited > self.max_wait => {
                    self.carried = Some(first);
                    return self.promote(waited);
                }
                Mode::Normal if waited > KEPT_UP => lagged_at = Instant::now(),
                _ => {}
            }
            group.push(first);
            if !self.commit(&mut group) {
                return Exit::Done;
            }
        }
    }

    /// How long to wait for the next batch: until a pruning step is due,
    /// or (at normal priority) until it is time to hand back.
    fn wait(&self, mode: Mode, lagged_at: Instant) -> Duration {
        let prune = self.pruner.wait();
        if mode == Mode::Normal {
            prune.min(self.calm.saturating_sub(lagged_at.elapsed()))
        } else {
            prune
        }
    }

    fn promote(&mut self, waited: Duration) -> Exit {
        self.promotions += 1;
        if self.last_handback.is_some_and(|at| at.elapsed() < SOON) {
            // Starved again soon after: stay at normal priority longer.
            self.calm = (self.calm * 2).min(MAX_CALM);
        } else {
            self.calm = CALM;
        }
        info!(
            "history: a batch waited {} ms for the idle-priority writer (the machine is busy); \
             writing at normal priority until it keeps up for {} s",
            waited.as_millis(),
            self.calm.as_secs()
        );
        Exit::HandOver
    }

    fn hand_back(&mut self) -> Exit {
        info!(
            "history: the writer kept up for {} s; back to idle priority",
            self.calm.as_secs()
        );
        self.last_handback = Some(Instant::now());
        Exit::HandOver
    }

    /// Group commit: `group` (one batch) plus whatever else is queued, in
    /// one transaction; then each batch's acknowledgement. Returns false
    /// once the loop is gone.
    fn commit(&mut self, group: &mut Vec<Batch>) -> bool {
        let mut lines: usize = group.iter().map(|batch| batch.lines.len()).sum();
        while lines < LINES_PER_COMMIT {
            match self.rx.try_recv() {
                Ok(batch) => {
                    lines += batch.lines.len();
                    group.push(batch);
                }
                Err(_) => break,
            }
        }
        self.commits += 1;
        self.rows += lines as u64;
        let writes: Vec<_> = group
            .iter()
            .flat_map(|batch| batch.accounts.iter().cloned())
            .collect();
        let result = self
            .store
            .commit_batch(group.iter().flat_map(|batch| batch.lines.iter()), &writes);
        let failed = match result {
            Ok(_) => {
                if std::mem::take(&mut self.failing) {
                    warn!("history: writing to the history file works again");
                }
                false
            }
            Err(err) => {
                error!(
                    "history: CANNOT WRITE to the history file, {lines} lines and {} account \
                     changes lost: {err}; chat goes on, :history says so",
                    writes.len()
                );
                self.failing = true;
                true
            }
        };
        for batch in group.drain(..) {
            let rooms = failed.then(|| rooms_of(&batch.lines));
            let loaded = batch
                .loads
                .into_iter()
                .map(|room| match self.store.load_tail(&room, self.keep) {
                    Ok(lines) => (room, Some(lines)),
                    Err(err) => {
                        error!("history: CANNOT READ the history of {room}: {err}");
                        (room, None)
                    }
                })
                .collect();
            let answers = batch
                .queries
                .iter()
                .map(|query| QueryAnswer {
                    token: query.token,
                    lines: match self.store.query(query) {
                        Ok(lines) => Some(lines),
                        Err(err) => {
                            error!(
                                "history: CANNOT READ the history of {}: {err}",
                                query.room_key
                            );
                            None
                        }
                    },
                })
                .collect();
            let ack = Ack {
                number: batch.number,
                lines: batch.lines.len(),
                failed: rooms,
                loaded,
                answers,
                promotions: self.promotions,
            };
            if !self.done.send(Completion::History(ack)) {
                return false;
            }
        }
        self.done.wake();
        true
    }

    fn finish(&self) {
        info!(
            "history: writer done: {} lines in {} transactions",
            self.rows, self.commits
        );
    }
}

impl Drop for Writer {
    /// The writer is gone (the loop finished, or a writer thread
    /// panicked): the loop hears it on the completion path, which other
    /// workers keep open.
    fn drop(&mut self) {
        if self.done.send(Completion::HistoryGone) {
            self.done.wake();
        }
    }
}

/// Which thread runs [`Writer::run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The only thread (normal priority, no hand-over).
    Only,
    /// The idle-priority thread: hands over when starved.
    Idle,
    /// The normal-priority stand-in: hands back once it keeps up.
    Normal,
}

/// One of the two threads: writes whenever it holds the writer, passes it
/// on when told, and ends when the loop is gone (the thread that finishes
/// drops its sender, which ends the other).
fn take_turns(mode: Mode, slot: Receiver<Writer>, other: Sender<Writer>) {
    while let Ok(mut writer) = slot.recv() {
        match writer.run(mode) {
            Exit::Done => {
                writer.finish();
                return;
            }
            Exit::HandOver => {
                if let Err(mpsc::SendError(mut writer)) = other.send(writer) {
                    // The other thread is gone (it panicked): go on here.
                    writer.run(Mode::Only);
                    writer.finish();
                    return;
                }
            }
        }
    }
}

/// Moves the calling thread to idle priority (`SCHED_IDLE`); logs and goes
/// on at normal priority where that is refused.
fn set_idle_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler on the calling thread (pid 0) with a
        // valid parameter block.
        let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if result != 0 {
            warn!(
                "history: cannot give the writer idle priority ({}); it runs at normal priority",
                std::io::Error::last_os_error()
            );
        }
    }
}

fn rooms_of(lines: &[NewLine]) -> Vec<(String, u64)> {
    let mut rooms: Vec<(String, u64)> = Vec::new();
    for line in lines {
        match rooms.iter_mut().find(|(room, _)| **room == *line.room_key) {
            Some((_, count)) => *count += 1,
            None => rooms.push((line.room_key.to_string(), 1)),
        }
    }
    rooms
}

/// Retention pruning, one small transaction per step, between batches.
struct Pruner {
    retention: Retention,
    next_pass: Instant,
    /// Rooms still to visit in this pass; `None` between passes.
    rooms: Option<Vec<String>>,
    age_done: bool,
}

impl Pruner {
    fn new(retention: Retention) -> Self {
        Pruner {
            retention,
            // The first pass shortly after start, not in its way.
            next_pass: Instant::now() + Duration::from_secs(5),
            rooms: None,
            age_done: false,
        }
    }

    /// How long the writer may sleep before the next step is due.
    fn wait(&self) -> Duration {
        if self.rooms.is_some() {
            Duration::ZERO
        } else {
            self.next_pass.saturating_duration_since(Instant::now())
        }
    }

    /// Whether a step is due now.
    fn due(&self) -> bool {
        self.wait().is_zero()
    }

    fn step(&mut self, store: &mut Store) {
        let Some(rooms) = self.rooms.as_mut() else {
            self.rooms = Some(store.rooms());
            self.age_done = self.retention.max_age_secs.is_none();
            return;
        };
        let result = if !self.age_done {
            let age_ms = self
                .retention
                .max_age_secs
                .unwrap_or(0)
                .saturating_mul(1000);
            let cutoff = tails::unix_now_ms() - age_ms;
            store.prune_older_than(cutoff, PRUNE_STEP).map(|deleted| {
                self.age_done = deleted < PRUNE_STEP;
            })
        } else if let Some(room) = rooms.last() {
            let keep = self.retention.max_lines_per_room;
            store.prune_room(room, keep, PRUNE_STEP).map(|deleted| {
                if deleted < PRUNE_STEP {
                    rooms.pop();
                }
            })
        } else {
            self.rooms = None;
            self.next_pass = Instant::now() + PRUNE_INTERVAL;
            return;
        };
        if let Err(err) = result {
            warn!("history: pruning failed, trying again later: {err}");
            self.rooms = None;
            self.next_pass = Instant::now() + PRUNE_INTERVAL;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::completion::Completions;
    use mio::Waker;
    use std::sync::Arc;

    fn line(room: &str, ts: i64, i: usize) -> NewLine {
        let id = i64::try_from(i).unwrap() + if room == "#old" { 1 } else { 10_001 };
        NewLine::new(id, room.into(), ts, "x", format!("x: {i}").into())
    }

    #[test]
    fn a_pruning_pass_applies_both_limits_in_small_steps_then_rests() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        let now = tails::unix_now_ms();
        let mut lines: Vec<NewLine> = (0..1200)
            .map(|i| line("#old", now - 10 * 86_400_000, i))
            .collect();
        lines.extend((0..1500).map(|i| line("#busy", now, i)));
        store.insert_batch(&lines).unwrap();
        let mut pruner = Pruner::new(Retention {
            max_age_secs: Some(86_400),
            max_lines_per_room: Some(100),
        });
        pruner.next_pass = Instant::now();
        let mut steps = 0;
        loop {
            pruner.step(&mut store);
            steps += 1;
            if pruner.rooms.is_none() && steps > 1 {
                break;
            }
            assert!(steps < 100, "a pass ends");
        }
        // 1200 old lines at 500 a step, then 1400 of #busy at 500 a step.
        assert!(steps >= 3 + 3, "small steps: {steps}");
        assert!(
            pruner.wait() > Duration::from_secs(50),
            "rests until the next pass"
        );
        assert_eq!(store.rooms(), ["#busy"]);
        let tails = store.load_tails(1000).unwrap();
        assert_eq!(tails[0].1.len(), 100);
        assert_eq!(tails[0].1[99].line, "x: 1499");
    }

    /// A writer on a fresh file, the loop's ends of its channels, and the
    /// poll its waker belongs to.
    fn writer(dir: &std::path::Path) -> (Writer, mpsc::SyncSender<Batch>, Completions, mio::Poll) {
        let store = Store::open(&dir.join("h.db")).unwrap();
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, rx) = mpsc::sync_channel(16);
        let (acks, done) = Completions::new(waker);
        let retention = Retention {
            max_age_secs: None,
            max_lines_per_room: None,
        };
        (
            Writer::new(store, rx, done, retention, 100, MAX_WAIT),
            tx,
            acks,
            poll,
        )
    }

    /// The writer's next acknowledgement on the completion path.
    fn next_ack(acks: &mut Completions) -> Option<crate::chat::history::Ack> {
        match acks.try_recv() {
            Ok(Completion::History(ack)) => Some(ack),
            _ => None,
        }
    }

    fn batch(number: u64, age: Duration) -> Batch {
        let now = tails::unix_now_ms();
        Batch {
            number,
            lines: vec![line("#lobby", now, number as usize)],
            loads: Vec::new(),
            accounts: Vec::new(),
            queries: Vec::new(),
            sent: Instant::now().checked_sub(age).unwrap(),
        }
    }

    #[test]
    fn a_late_batch_goes_to_the_normal_thread_which_hands_back_once_it_keeps_up() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, tx, mut acks, _poll) = writer(dir.path());
        tx.send(batch(1, MAX_WAIT * 2)).unwrap();
        tx.send(batch(2, Duration::ZERO)).unwrap();
        assert!(matches!(writer.run(Mode::Idle), Exit::HandOver));
        assert!(
            next_ack(&mut acks).is_none(),
            "the late batch is carried over"
        );
        assert_eq!(writer.promotions, 1);
        assert_eq!(writer.calm, CALM);
        // The normal thread writes it first, then hands back after keeping
        // up for `calm`.
        writer.calm = Duration::from_millis(50);
        let started = Instant::now();
        assert!(matches!(writer.run(Mode::Normal), Exit::HandOver));
        assert!(started.elapsed() >= Duration::from_millis(50));
        let ack = next_ack(&mut acks).unwrap();
        assert_eq!((ack.number, ack.promotions), (1, 1));
        assert_eq!(
            next_ack(&mut acks).unwrap().number,
            2,
            "in the same transaction"
        );
        assert!(writer.last_handback.is_some());
        // Starved again soon after: the normal thread stays longer.
        tx.send(batch(3, MAX_WAIT * 2)).unwrap();
        assert!(matches!(writer.run(Mode::Idle), Exit::HandOver));
        assert_eq!(writer.calm, Duration::from_millis(100));
        drop(tx);
        assert!(matches!(writer.run(Mode::Normal), Exit::Done));
        assert_eq!(next_ack(&mut acks).unwrap().number, 3);
        assert_eq!(writer.rows, 3);
    }

    #[test]
    fn at_normal_priority_fresh_batches_do_not_keep_it_from_handing_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, tx, mut acks, _poll) = writer(dir.path());
        writer.calm = Duration::from_millis(30);
        let feeder = std::thread::spawn(move || {
            for number in 1.. {
                if tx.send(batch(number, Duration::ZERO)).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
                if number == 5_000 {
                    return;
                }
            }
        });
        assert!(matches!(writer.run(Mode::Normal), Exit::HandOver));
        assert!(next_ack(&mut acks).is_some());
        drop(writer);
        feeder.join().unwrap();
    }

    #[test]
    fn priorities_parse() {
        assert_eq!("idle".parse(), Ok(WriterPriority::Idle));
        assert_eq!("normal".parse(), Ok(WriterPriority::Normal));
        assert!("high".parse::<WriterPriority>().is_err());
    }
}
