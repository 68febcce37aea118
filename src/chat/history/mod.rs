//! Chat history: `:history` answers from memory, a writer thread keeps it in
//! a SQLite file, and the event loop never waits on the disk.
//!
//! - [`tails`]: every room's newest lines in memory, owned by the chat
//!   state; accepted lines also wait there until the loop takes them.
//! - [`query`]: history by message id and by time (IRC `CHATHISTORY`),
//!   from the tails or, through the writer, from the file.
//! - [`store`]: the SQLite file (schema, migrations, batches, tails,
//!   retention).
//! - [`HistoryLink`] (here): the loop's end of the writer thread. Once per
//!   loop turn the loop hands it that turn's lines as one batch; the writer
//!   commits each batch in one transaction (several queued batches in one,
//!   when it lags), then acknowledges it on the loop's completion path
//!   ([`crate::chat::completion`]), which wakes the loop when it waits.
//!
//! Crash safety: a committed transaction survives `kill -9` (WAL with
//! `synchronous=NORMAL`). The loop holds back every reply to a client (and
//! whatever follows it for that client) until the batch holding that
//! client's earlier lines is committed, so a client that got the answer to a
//! later command (`:ping`) knows its lines are on disk. Lines to other
//! clients are not held.
//!
//! Tails: only `#lobby`'s is read at start; a room's tail is read back by
//! the writer (after the batches before it) when the room is created, and
//! `:history` there waits for it. Tails of rooms that no longer exist are
//! dropped past [`HistoryConfig::max_memory_bytes`].
//!
//! Backpressure: while more than [`HistoryConfig::max_in_flight`] lines
//! wait for the writer, clients with uncommitted lines are not read until
//! a commit arrives; their input waits in the kernel, TCP pushes back, and
//! nothing is dropped.

pub mod query;
pub mod store;
pub mod tails;
pub mod writer;

use crate::accounts::persist::{AccountWrite, Loaded};
use crate::chat::completion::Completer;
use log::{error, info};
use query::{FileQuery, Plan, QueryAnswer};
use std::path::PathBuf;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Instant;
use store::{NewLine, Retention, Store, StoredLine};
pub use tails::Tails;
use writer::Writer;
pub use writer::WriterPriority;

/// The `:history` maximum's floor (the protocol's default N is 20).
pub const MIN_HISTORY_MAX: usize = 20;
/// The history file the binary uses unless told otherwise.
pub const DEFAULT_FILE: &str = "loopchat-history.db";
/// The `--history-file` value that keeps history in memory only.
pub const MEMORY_ONLY: &str = ":memory:";

/// Batches the writer may have queued before the loop keeps lines back.
const CHANNEL_BATCHES: usize = 1024;

/// History settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryConfig {
    /// The SQLite file; `None` keeps history in memory only (lost at exit).
    pub file: Option<PathBuf>,
    /// The most lines `:history N` returns (and keeps per room in memory);
    /// at least [`MIN_HISTORY_MAX`].
    pub max_lines: usize,
    /// Days lines are kept; 0 keeps them forever.
    pub keep_days: u32,
    /// Lines kept per room in the file; 0 for no limit.
    pub keep_lines_per_room: u64,
    /// Lines accepted but not yet committed past which clients with
    /// uncommitted lines are read more slowly.
    pub max_in_flight: usize,
    /// Memory for the rooms' tails; past it, the tails of rooms that no
    /// longer exist are dropped (and loaded back from the file when the
    /// room is created again).
    pub max_memory_bytes: usize,
    /// How the writer thread is scheduled (see [`writer`]).
    pub writer_priority: WriterPriority,
    /// How long a batch may wait for the idle-priority writer before a
    /// normal-priority one takes over.
    pub writer_max_wait: std::time::Duration,
}

impl Default for HistoryConfig {
    /// In memory only, `:history` up to 100 lines, 30 days.
    fn default() -> Self {
        HistoryConfig {
            file: None,
            max_lines: 100,
            keep_days: 30,
            keep_lines_per_room: 0,
            max_in_flight: 50_000,
            max_memory_bytes: 64 * 1024 * 1024,
            writer_priority: WriterPriority::Idle,
            writer_max_wait: writer::MAX_WAIT,
        }
    }
}

impl HistoryConfig {
    fn max_age_secs(&self) -> Option<i64> {
        (self.keep_days > 0).then(|| i64::from(self.keep_days) * 86_400)
    }

    fn retention(&self) -> Retention {
        Retention {
            max_age_secs: self.max_age_secs(),
            max_lines_per_room: (self.keep_lines_per_room > 0).then_some(self.keep_lines_per_room),
        }
    }

    /// The `:history` maximum in force: the configured one, at least 20,
    /// and never more than the file keeps per room.
    pub fn effective_max(&self) -> usize {
        let mut max = self.max_lines.max(MIN_HISTORY_MAX);
        if self.keep_lines_per_room > 0 {
            max = max.min(usize::try_from(self.keep_lines_per_room).unwrap_or(usize::MAX));
        }
        max
    }
}

/// The history file could not be opened, migrated or read at start.
#[derive(Debug)]
pub struct OpenError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot use history file {}: {}",
            self.path.display(),
            self.reason
        )
    }
}

impl std::error::Error for OpenError {}

/// A batch on its way to the writer.
struct Batch {
    number: u64,
    lines: Vec<NewLine>,
    /// Rooms whose tails to read back once the lines are written.
    loads: Vec<String>,
    /// Changes to the accounts, written in the same transaction.
    accounts: Vec<AccountWrite>,
    /// History queries to answer from the file once the lines are written.
    queries: Vec<FileQuery>,
    /// When the loop handed it over (how long it waited tells the writer
    /// whether it keeps up).
    sent: Instant,
}

/// The writer's word on one batch.
#[derive(Debug)]
pub struct Ack {
    number: u64,
    lines: usize,
    /// Set when the batch could not be written: its rooms and line counts.
    failed: Option<Vec<(String, u64)>>,
    /// The tails asked for, read after the batch's lines were written;
    /// `None` when the file could not be read.
    loaded: Vec<(String, Option<Vec<StoredLine>>)>,
    /// The batch's queries, answered after its lines were written.
    answers: Vec<QueryAnswer>,
    /// Times so far the normal-priority writer took over from the idle one.
    promotions: u64,
}

/// The event loop's end of the history writer.
pub struct HistoryLink {
    /// `None` in memory-only mode, or once the writer is gone.
    tx: Option<SyncSender<Batch>>,
    /// Whether acknowledgements may still come: a writer was started and
    /// has not been found gone.
    acks_open: bool,
    threads: Vec<JoinHandle<()>>,
    /// Lines taken from the chat but not yet accepted by the channel; they
    /// go out as batch `next_batch`.
    unsent: Vec<NewLine>,
    /// Tail loads waiting with `unsent`.
    unsent_loads: Vec<String>,
    /// Account changes waiting with `unsent`.
    unsent_accounts: Vec<AccountWrite>,
    /// History queries waiting with `unsent`.
    unsent_queries: Vec<FileQuery>,
    /// Answers to history queries, until the loop takes them.
    answers: Vec<QueryAnswer>,
    /// The accounts read from the file at start, until the chat takes them.
    loaded_accounts: Option<Loaded>,
    /// A batch was promised by [`HistoryLink::mark_for_accounts`]: the
    /// next submit sends one, empty or not.
    owed: bool,
    next_batch: u64,
    /// Every batch up to this number has been committed (or has failed).
    acked: u64,
    /// Lines handed to the writer and not yet acknowledged.
    sent_lines: usize,
    max_in_flight: usize,
    /// What the writer has acknowledged so far, for the metrics.
    pub stats: WriterStats,
}

/// The history writer's work as the loop learns of it from
/// acknowledgements: plain counters, read when metrics are scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Chat lines committed to the history file.
    pub rows_written: u64,
    /// Batches (one per loop turn that accepted lines) committed.
    pub batches_written: u64,
    /// Batches that could not be written.
    pub batches_failed: u64,
    /// Chat lines in those batches: in memory, not in the file.
    pub rows_failed: u64,
    /// Times the idle-priority writer was starved and the normal-priority
    /// one took over.
    pub promotions: u64,
}

impl HistoryLink {
    /// Opens the history file, loads `#lobby`'s tail, and starts the
    /// writer thread, which acknowledges each commit through `done` (see
    /// [`HistoryLink::on_ack`]). In memory-only mode, starts nothing.
    pub fn start(config: &HistoryConfig, done: Completer) -> Result<(Self, Tails), OpenError> {
        let keep = config.effective_max();
        let mut link = HistoryLink {
            tx: None,
            acks_open: false,
            threads: Vec::new(),
            unsent: Vec::new(),
            unsent_loads: Vec::new(),
            unsent_accounts: Vec::new(),
            unsent_queries: Vec::new(),
            answers: Vec::new(),
            loaded_accounts: None,
            owed: false,
            next_batch: 1,
            acked: 0,
            sent_lines: 0,
            stats: WriterStats::default(),
            max_in_flight: config.max_in_flight.max(1),
        };
        let Some(path) = config.file.clone() else {
            let tails = Tails::new(
                keep,
                config.max_age_secs(),
                false,
                config.max_memory_bytes,
                1,
            );
            return Ok((link, tails));
        };
        let fail = |reason: String| OpenError {
            path: path.clone(),
            reason,
        };
        let started = Instant::now();
        let store = Store::open(&path).map_err(|err| fail(err.to_string()))?;
        let read = |err: rusqlite::Error| fail(format!("cannot read: {err}"));
        let next_id = store.next_id().map_err(read)?;
        let mut tails = Tails::new(
            keep,
            config.max_age_secs(),
            true,
            config.max_memory_bytes,
            next_id,
        );
        // Only #lobby exists at start; other rooms' tails are loaded when
        // the rooms are created.
        let lobby = store
            .load_tail(crate::protocol::LOBBY, keep)
            .map_err(read)?;
        let lines = lobby.len();
        tails.room_created(crate::protocol::LOBBY);
        tails.take_loads();
        tails.loaded(crate::protocol::LOBBY, lobby);
        // Every token is read; the accounts in memory drop the expired.
        let accounts = store.load_accounts(i64::MIN).map_err(read)?;
        info!(
            "history: {} opened, {lines} recent lines of {} and {} accounts loaded in {} ms",
            path.display(),
            crate::protocol::LOBBY,
            accounts.accounts.len(),
            started.elapsed().as_millis()
        );
        link.loaded_accounts = Some(accounts);
        let (tx, rx) = mpsc::sync_channel(CHANNEL_BATCHES);
        let retention = config.retention();
        let threads = Writer::new(store, rx, done, retention, keep, config.writer_max_wait)
            .spawn(config.writer_priority)
            .map_err(|err| fail(format!("cannot start the writer thread: {err}")))?;
        link.tx = Some(tx);
        link.acks_open = true;
        link.threads = threads;
        Ok((link, tails))
    }

    /// The accounts and tokens read from the history file at start (empty
    /// in memory-only mode); taken once.
    pub fn take_loaded_accounts(&mut self) -> Loaded {
        self.loaded_accounts.take().unwrap_or_default()
    }

    /// Hands changes to the accounts to the writer with this turn's batch
    /// (see [`HistoryLink::mark`] for what to wait for). Dropped when no
    /// writer runs: memory-only accounts.
    pub fn submit_accounts(&mut self, writes: Vec<AccountWrite>) {
        if self.tx.is_some() {
            self.unsent_accounts.extend(writes);
        }
    }

    /// The batch account changes made now go out with ([`HistoryLink::mark`]),
    /// promising that it is sent this turn even if nothing is in it, so an
    /// answer held for it (`* registered`, `* token`) is never held for a
    /// batch that does not come.
    pub fn mark_for_accounts(&mut self) -> u64 {
        self.owed = self.tx.is_some();
        self.mark()
    }

    /// The batch a line accepted now belongs to; 0 when no writer is
    /// running (nothing to wait for).
    pub fn mark(&self) -> u64 {
        if self.tx.is_some() {
            self.next_batch
        } else {
            0
        }
    }

    /// Asks the writer to read the lines `plan` selects in `room_key` from
    /// the file, after the lines accepted so far are written (use it when
    /// [`Tails::query`] says memory cannot answer). The answer comes back
    /// with `token` through [`HistoryLink::take_answers`], after a
    /// completion; at once, with no lines, when no writer runs.
    pub fn query(&mut self, token: u64, room_key: &str, plan: Plan, cutoff_ms: i64) {
        let query = FileQuery {
            token,
            room_key: room_key.to_string(),
            plan,
            cutoff_ms,
        };
        if self.tx.is_some() {
            self.unsent_queries.push(query);
        } else {
            self.answers.push(QueryAnswer { token, lines: None });
        }
    }

    /// Answers to [`HistoryLink::query`] that arrived, taken once.
    pub fn take_answers(&mut self) -> Vec<QueryAnswer> {
        std::mem::take(&mut self.answers)
    }

    /// Whether answers wait in [`HistoryLink::take_answers`].
    pub fn has_answers(&self) -> bool {
        !self.answers.is_empty()
    }

    /// Whether a writer thread runs (a history file is in use).
    pub fn writing(&self) -> bool {
        self.tx.is_some()
    }

    /// Chat lines accepted and not yet acknowledged by the writer: its lag.
    pub fn waiting_lines(&self) -> usize {
        self.sent_lines + self.unsent.len()
    }

    /// Every batch up to this one is committed or failed.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Whether so many lines wait for the writer that senders with
    /// uncommitted lines should not be read.
    pub fn congested(&self) -> bool {
        self.sent_lines + self.unsent.len() >= self.max_in_flight
    }

    /// End of a loop turn: takes the turn's accepted lines from `tails` and
    /// hands them to the writer as one batch. When the writer's queue is
    /// full they wait here and go with the next turn's.
    pub fn submit(&mut self, tails: &mut Tails) {
        if tails.pending_len() > 0 {
            let lines = tails.take_pending();
            if self.tx.is_none() {
                // The writer is gone: these lines will not reach the file.
                mark_all_unsaved(tails, &lines);
                return;
            }
            if self.unsent.is_empty() {
                self.unsent = lines;
            } else {
                self.unsent.extend(lines);
            }
        }
        self.unsent_loads.extend(tails.take_loads());
        let Some(tx) = &self.tx else {
            return;
        };
        if self.unsent.is_empty()
            && self.unsent_loads.is_empty()
            && self.unsent_accounts.is_empty()
            && self.unsent_queries.is_empty()
            && !self.owed
        {
            return;
        }
        let batch = Batch {
            number: self.next_batch,
            lines: std::mem::take(&mut self.unsent),
            loads: std::mem::take(&mut self.unsent_loads),
            accounts: std::mem::take(&mut self.unsent_accounts),
            queries: std::mem::take(&mut self.unsent_queries),
            sent: Instant::now(),
        };
        let count = batch.lines.len();
        match tx.try_send(batch) {
            Ok(()) => {
                self.next_batch += 1;
                self.sent_lines += count;
                self.owed = false;
            }
            Err(TrySendError::Full(batch)) => {
                self.unsent = batch.lines;
                self.unsent_loads = batch.loads;
                self.unsent_accounts = batch.accounts;
                self.unsent_queries = batch.queries;
            }
            Err(TrySendError::Disconnected(batch)) => {
                error!("history: the writer thread is gone; history is kept in memory only now");
                mark_all_unsaved(tails, &batch.lines);
                self.fail_queries(batch.queries);
                self.writer_gone();
            }
        }
    }

    /// Tails asked for while no writer runs (memory only, or the writer
    /// is gone) can never come: they are what memory has. Returns their
    /// rooms; called every turn.
    pub fn settle_loads(&mut self, tails: &mut Tails) -> Vec<String> {
        if self.tx.is_some() || self.unsent_loads.is_empty() {
            return Vec::new();
        }
        let rooms = std::mem::take(&mut self.unsent_loads);
        for room in &rooms {
            tails.loaded(room, Vec::new());
        }
        rooms
    }

    /// The writer acknowledged a batch (from the loop's completion path):
    /// lines of a failed batch are marked unsaved in `tails`, and tails
    /// read back are merged into it. Returns the rooms whose tails arrived.
    pub fn on_ack(&mut self, ack: Ack, tails: &mut Tails) -> Vec<String> {
        self.acked = self.acked.max(ack.number);
        self.sent_lines = self.sent_lines.saturating_sub(ack.lines);
        self.stats.promotions = self.stats.promotions.max(ack.promotions);
        let rows = ack.lines as u64;
        match (&ack.failed, rows) {
            (_, 0) => {}
            (Some(_), _) => {
                self.stats.batches_failed += 1;
                self.stats.rows_failed += rows;
            }
            (None, _) => {
                self.stats.batches_written += 1;
                self.stats.rows_written += rows;
            }
        }
        self.answers.extend(ack.answers);
        for (room, count) in ack.failed.into_iter().flatten() {
            tails.mark_unsaved(&room, count);
        }
        let mut rooms = Vec::new();
        for (room, lines) in ack.loaded {
            match lines {
                Some(lines) => tails.loaded(&room, lines),
                None => {
                    tails.mark_unreadable(&room);
                    tails.loaded(&room, Vec::new());
                }
            }
            rooms.push(room);
        }
        rooms
    }

    /// The completion path says the writer is gone (its thread ended):
    /// history is kept in memory only from now on, and everyone waiting on
    /// it is released. `None` when that was already known (or no writer
    /// ever ran); else the rooms whose tails will never come.
    pub fn on_writer_gone(&mut self, tails: &mut Tails) -> Option<Vec<String>> {
        if !std::mem::take(&mut self.acks_open) {
            return None;
        }
        if self.tx.is_some() {
            error!("history: the writer thread stopped; history is kept in memory only now");
            let unsent = std::mem::take(&mut self.unsent);
            mark_all_unsaved(tails, &unsent);
            self.writer_gone();
        }
        let queries = std::mem::take(&mut self.unsent_queries);
        self.fail_queries(queries);
        // Tails asked for and never delivered: what memory has.
        let rooms = tails.loading_rooms();
        for room in &rooms {
            tails.loaded(room, Vec::new());
        }
        self.unsent_loads.clear();
        Some(rooms)
    }

    /// Queries the writer will never answer: answered with no lines.
    fn fail_queries(&mut self, queries: Vec<FileQuery>) {
        let failed = queries.into_iter().map(|query| QueryAnswer {
            token: query.token,
            lines: None,
        });
        self.answers.extend(failed);
    }

    /// The writer died: release everyone waiting on it.
    fn writer_gone(&mut self) {
        self.tx = None;
        self.acked = self.next_batch;
        self.sent_lines = 0;
    }

    /// Hands over what is left and waits for the writer to commit it all.
    pub fn finish(&mut self) {
        if let Some(tx) = self.tx.take() {
            if !self.unsent.is_empty() || !self.unsent_accounts.is_empty() {
                let lines = std::mem::take(&mut self.unsent);
                let _ = tx.send(Batch {
                    number: self.next_batch,
                    lines,
                    loads: Vec::new(),
                    accounts: std::mem::take(&mut self.unsent_accounts),
                    queries: Vec::new(),
                    sent: Instant::now(),
                });
            }
        }
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                error!("history: the writer thread panicked");
            }
        }
    }
}

impl Drop for HistoryLink {
    fn drop(&mut self) {
        self.finish();
    }
}

fn mark_all_unsaved(tails: &mut Tails, lines: &[NewLine]) {
    for line in lines {
        tails.mark_unsaved(&line.room_key, 1);
    }
}

/// Output held back for one client until its earlier lines are committed:
/// a reply to a command that came after an uncommitted line of the same
/// client, and everything queued for that client after it (so order holds).
/// A `:history` waiting for its room's tail leaves a gap, filled when the
/// tail arrives.
#[derive(Debug, Default)]
pub struct HeldOutput {
    parts: std::collections::VecDeque<HeldPart>,
    bytes: usize,
}

#[derive(Debug)]
struct HeldPart {
    /// The batch that must be committed before this part goes out.
    mark: u64,
    bytes: Vec<u8>,
    /// An answer still to come: nothing after it goes out before it.
    gap: bool,
}

impl HeldOutput {
    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Holds `line` until batch `mark` is committed (0: only until what is
    /// held before it is released). `total` counts the bytes held by all
    /// clients together (for the global output bound).
    pub fn push(&mut self, mark: u64, line: &[u8], total: &mut usize) {
        self.bytes += line.len();
        *total += line.len();
        match self.parts.back_mut() {
            Some(last) if !last.gap && mark <= last.mark => last.bytes.extend_from_slice(line),
            _ => self.parts.push_back(HeldPart {
                mark,
                bytes: line.to_vec(),
                gap: false,
            }),
        }
    }

    /// Leaves room for an answer that is not ready yet: everything pushed
    /// after it waits for [`HeldOutput::fill_gap`].
    pub fn push_gap(&mut self) {
        self.parts.push_back(HeldPart {
            mark: 0,
            bytes: Vec::new(),
            gap: true,
        });
    }

    /// Puts `answer` into the first gap. Returns false if there is none.
    pub fn fill_gap(&mut self, answer: Vec<u8>, total: &mut usize) -> bool {
        let Some(part) = self.parts.iter_mut().find(|part| part.gap) else {
            return false;
        };
        self.bytes += answer.len();
        *total += answer.len();
        part.bytes = answer;
        part.gap = false;
        true
    }

    /// Hands every part whose batch is committed (up to `acked`), in order,
    /// to `release`, stopping at the first gap.
    pub fn release(&mut self, acked: u64, total: &mut usize, mut release: impl FnMut(&[u8])) {
        while let Some(part) = self.parts.front() {
            if part.gap || part.mark > acked {
                return;
            }
            if let Some(part) = self.parts.pop_front() {
                self.bytes -= part.bytes.len();
                *total -= part.bytes.len();
                release(&part.bytes);
            }
        }
    }

    /// Drops everything held (the connection is gone).
    pub fn clear(&mut self, total: &mut usize) {
        self.parts.clear();
        *total -= self.bytes;
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_output_is_released_in_order_as_batches_commit() {
        let mut held = HeldOutput::default();
        let mut total = 0;
        held.push(3, b"a\n", &mut total);
        held.push(0, b"b\n", &mut total);
        held.push(5, b"c\n", &mut total);
        held.push(4, b"d\n", &mut total);
        assert_eq!(held.len(), 8);
        assert_eq!(total, 8);
        let mut out = Vec::new();
        held.release(2, &mut total, |bytes| out.extend_from_slice(bytes));
        assert!(out.is_empty());
        held.release(4, &mut total, |bytes| out.extend_from_slice(bytes));
        assert_eq!(out, b"a\nb\n");
        held.release(5, &mut total, |bytes| out.extend_from_slice(bytes));
        assert_eq!(out, b"a\nb\nc\nd\n");
        assert!(held.is_empty());
        assert_eq!(held.len(), 0);
        assert_eq!(total, 0);
    }

    #[test]
    fn a_gap_holds_everything_after_it_until_filled() {
        let mut held = HeldOutput::default();
        let mut total = 0;
        held.push(1, b"a\n", &mut total);
        held.push_gap();
        held.push(0, b"c\n", &mut total);
        let mut out = Vec::new();
        held.release(9, &mut total, |bytes| out.extend_from_slice(bytes));
        assert_eq!(out, b"a\n");
        assert!(held.fill_gap(b"b1\nb2\n".to_vec(), &mut total));
        assert!(!held.fill_gap(Vec::new(), &mut total), "one gap only");
        held.release(9, &mut total, |bytes| out.extend_from_slice(bytes));
        assert_eq!(out, b"a\nb1\nb2\nc\n");
        assert!(held.is_empty());
        assert_eq!(total, 0);
        held.push(7, b"left\n", &mut total);
        held.clear(&mut total);
        assert_eq!(total, 0);
    }
}
