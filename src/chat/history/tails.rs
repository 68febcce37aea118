//! The recent lines of every room, in memory: what `:history` answers from,
//! so answering never touches the disk. Plain data, owned by the chat state.
//!
//! Memory stays bounded: the tails of rooms that exist are always kept, but
//! once all tails together pass their byte budget, the tails of rooms that
//! no longer exist are dropped, least recently emptied first. When such a
//! room is created again its tail is loaded back from the history file by
//! the writer thread ([`Tails::take_loads`]); until it arrives the room is
//! `loading`, and `:history` there waits for it. Without a history file a
//! dropped tail is gone (and `:history` says the room's history is
//! incomplete).

use super::store::{NewLine, StoredLine};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Bytes a tail line costs besides its text (its `Box<str>`, id, time and
/// its slot in the deque), for the memory budget.
const LINE_OVERHEAD: usize = 48;

/// Most lines a turn's pending list is made ready for
/// ([`Tails::take_pending`]): a burst does not keep a big list allocated
/// while the server is idle (1,024 lines: 64 KiB).
const PENDING_PRESIZE: usize = 1024;

/// One line of a room's tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailLine {
    /// Its id in the history file (acceptance order).
    pub id: i64,
    /// When the server accepted it, Unix milliseconds.
    pub ts: i64,
    /// The line as delivered, without its `\n`.
    pub line: Arc<str>,
}

#[derive(Debug)]
struct RoomTail {
    /// The room key, shared with the lines queued for the file.
    key: Arc<str>,
    lines: VecDeque<TailLine>,
    bytes: usize,
    /// Waiting for its older lines from the history file.
    loading: bool,
    /// Waiting for its older lines from elsewhere ([`Tails::await_backlog`]).
    backlog: bool,
    /// The ids of the lines recorded while it waited (loading or backlog),
    /// in order: a `:history` asked meanwhile answers without those that
    /// came after it, which its asker gets live (see [`Tails::wait_mark`]).
    arrived_while_waiting: Vec<i64>,
}

/// Every resident room's newest lines (up to the `:history` maximum), plus
/// the lines accepted since the event loop last sent a batch to the writer.
#[derive(Debug)]
pub struct Tails {
    /// Lines kept per room: the `:history` maximum.
    keep: usize,
    /// Lines older than this many milliseconds are not shown (retention).
    max_age_ms: Option<i64>,
    /// Whether accepted lines are also queued for the file (and dropped
    /// tails can be loaded back from it).
    persist: bool,
    /// Budget for all tails together, in bytes.
    max_bytes: usize,
    bytes: usize,
    /// Resident tails, by room key (lower-cased name with `#`).
    rooms: HashMap<String, RoomTail>,
    /// Resident tails of rooms that do not exist now, least recently
    /// emptied first: what goes when the budget is passed.
    gone: VecDeque<String>,
    /// Lines of a room that could not be saved (or, in memory, were
    /// dropped) in this run.
    unsaved: HashMap<String, u64>,
    /// Rooms whose tail could not be read back from the file.
    unreadable: std::collections::HashSet<String>,
    /// Id of the next accepted line.
    next_id: i64,
    pending: Vec<NewLine>,
    loads: Vec<String>,
}

impl Tails {
    /// Empty tails keeping `keep` lines per room within `max_bytes`. With
    /// `persist` off, nothing is queued for a writer (history in memory
    /// only). `next_id` is the id the next accepted line gets; lines older
    /// than `max_age_secs` are not shown.
    pub fn new(
        keep: usize,
        max_age_secs: Option<i64>,
        persist: bool,
        max_bytes: usize,
        next_id: i64,
    ) -> Self {
        Tails {
            keep: keep.max(1),
            max_age_ms: max_age_secs.map(|secs| secs.saturating_mul(1000)),
            persist,
            max_bytes,
            bytes: 0,
            rooms: HashMap::new(),
            gone: VecDeque::new(),
            unsaved: HashMap::new(),
            unreadable: Default::default(),
            next_id,
            pending: Vec::new(),
            loads: Vec::new(),
        }
    }

    /// Tails kept in memory only, with no byte budget (unit tests).
    pub fn in_memory(keep: usize) -> Self {
        Tails::new(keep, None, false, usize::MAX, 1)
    }

    /// Whether lines go to a history file.
    pub fn persists(&self) -> bool {
        self.persist
    }

    /// The most lines `:history` can show.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Bytes held by all tails (as counted for the budget).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A room was created (first join): its tail must be resident. If it
    /// was dropped and a file keeps it, it is loaded back (see
    /// [`Tails::take_loads`]).
    pub fn room_created(&mut self, room_key: &str) {
        if self.rooms.contains_key(room_key) {
            self.gone.retain(|gone| gone != room_key);
            return;
        }
        let loading = self.persist;
        let mut tail = RoomTail::new(room_key);
        tail.loading = loading;
        self.rooms.insert(room_key.to_string(), tail);
        if loading {
            self.loads.push(room_key.to_string());
        }
    }

    /// A room emptied and disappeared: its tail may be dropped when memory
    /// is short.
    pub fn room_removed(&mut self, room_key: &str) {
        if self.rooms.contains_key(room_key) {
            self.gone.push_back(room_key.to_string());
            self.trim();
        }
    }

    /// Whether the room's tail is still being loaded from the file, or
    /// waits for its lines from elsewhere.
    pub fn is_loading(&self, room_key: &str) -> bool {
        self.rooms
            .get(room_key)
            .is_some_and(|tail| tail.loading || tail.backlog)
    }

    /// Rooms whose tails must be read from the file, taken once.
    pub fn take_loads(&mut self) -> Vec<String> {
        std::mem::take(&mut self.loads)
    }

    /// A room's tail as read from the file (oldest first), merged with the
    /// lines accepted meanwhile: by id, so a line in both counts once.
    pub fn loaded(&mut self, room_key: &str, stored: Vec<StoredLine>) {
        if let Some(tail) = self.rooms.get_mut(room_key) {
            tail.loading = false;
        }
        self.merge_older(room_key, stored);
    }

    /// Adds `stored`'s lines older than the tail's oldest to the tail.
    fn merge_older(&mut self, room_key: &str, stored: Vec<StoredLine>) {
        let Some(tail) = self.rooms.get_mut(room_key) else {
            return;
        };
        let newer: Vec<TailLine> = tail.lines.drain(..).collect();
        let first_newer = newer.first().map_or(i64::MAX, |line| line.id);
        self.bytes -= tail.bytes;
        tail.bytes = 0;
        let older = stored
            .into_iter()
            .filter(|line| line.id < first_newer)
            .map(|line| TailLine {
                id: line.id,
                ts: line.ts,
                line: line.line.into(),
            });
        for line in older.chain(newer) {
            push_bounded(tail, self.keep, line);
        }
        self.bytes += tail.bytes;
        // Not trimmed here: `:history` commands waiting for this tail are
        // answered from it first.
    }

    /// A room's lines read after the fact (with `--cluster`: its stream in
    /// Redis, for a room made here after lines were said in it while this
    /// server was not running), each with its sender's nick: added to the
    /// tail as [`Tails::loaded`] adds the file's, and queued for the file
    /// as well (one the file has already, by room and id, is left as it
    /// is there).
    pub fn backfilled(&mut self, room_key: &str, lines: Vec<(StoredLine, &str)>) {
        if let Some(tail) = self.rooms.get_mut(room_key) {
            tail.backlog = false;
        }
        if self.persist {
            if let Some(tail) = self.rooms.get(room_key) {
                let key = tail.key.clone();
                for (line, nick) in &lines {
                    let text: Arc<str> = line.line.as_str().into();
                    let new = NewLine::new(line.id, key.clone(), line.ts, nick, text);
                    self.pending.push(new);
                }
            }
        }
        let stored = lines.into_iter().map(|(line, _)| line).collect();
        self.merge_older(room_key, stored);
    }

    /// The room's older lines are on their way from elsewhere (with
    /// `--cluster`, its stream): a `:history` in it waits for them (see
    /// [`Tails::is_loading`]) until [`Tails::backfilled`].
    pub fn await_backlog(&mut self, room_key: &str) {
        if let Some(tail) = self.rooms.get_mut(room_key) {
            if !tail.loading && !tail.backlog {
                tail.arrived_while_waiting.clear();
            }
            tail.backlog = true;
        }
    }

    /// Records a line just accepted in `room_key` (lower-cased) from `nick`
    /// at `ts` (Unix milliseconds), as delivered (`line` without its `\n`).
    /// Returns its id: increasing, never reused (it goes on from the
    /// file's), the `id` tag of protocol 1.2.
    pub fn record(&mut self, room_key: &str, nick: &str, line: &str, ts: i64) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.record_as(room_key, id, nick, line, ts, true);
        id
    }

    /// Records a line the cluster numbered `id` (its room's id, the same
    /// on every server) at `ts` (the sending server's clock), as
    /// [`Tails::record`] does. `resident` is whether the room exists on
    /// this server: a tail made for a room that does not counts as one
    /// of a room gone (dropped first when memory is short).
    pub fn record_as(
        &mut self,
        room_key: &str,
        id: i64,
        nick: &str,
        line: &str,
        ts: i64,
        resident: bool,
    ) {
        let tail = match self.rooms.get_mut(room_key) {
            Some(tail) => tail,
            None => {
                if !resident {
                    self.gone.push_back(room_key.to_string());
                }
                self.rooms
                    .entry(room_key.to_string())
                    .or_insert_with(|| RoomTail::new(room_key))
            }
        };
        if tail.loading || tail.backlog {
            tail.arrived_while_waiting.push(id);
        } else if !tail.arrived_while_waiting.is_empty() {
            // Every `:history` that waited was answered when it stopped.
            tail.arrived_while_waiting = Vec::new();
        }
        let before = tail.bytes;
        let line: Arc<str> = line.into();
        push_bounded(
            tail,
            self.keep,
            TailLine {
                id,
                ts,
                line: line.clone(),
            },
        );
        self.bytes = self.bytes + tail.bytes - before;
        if self.persist {
            let key = tail.key.clone();
            self.pending.push(NewLine::new(id, key, ts, nick, line));
        }
        if self.bytes > self.max_bytes {
            self.trim();
        }
    }

    /// Drops the tails of rooms that no longer exist until the budget holds
    /// (not one still loading: someone may be waiting for it).
    fn trim(&mut self) {
        let mut loading = Vec::new();
        while self.bytes > self.max_bytes {
            let Some(key) = self.gone.pop_front() else {
                break;
            };
            if self.is_loading(&key) {
                loading.push(key);
                continue;
            }
            if let Some(tail) = self.rooms.remove(&key) {
                self.bytes -= tail.bytes;
                if !self.persist && !tail.lines.is_empty() {
                    // Nowhere to load it back from.
                    *self.unsaved.entry(key).or_default() += tail.lines.len() as u64;
                }
            }
        }
        for key in loading.into_iter().rev() {
            self.gone.push_front(key);
        }
    }

    /// Lines accepted and not yet handed to the writer.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Takes the lines accepted since the last call, in order. The next
    /// turn's list starts with room for as many (up to
    /// [`PENDING_PRESIZE`]): the batch goes to the writer thread, and a
    /// list grown from empty by doubling every turn copied each line about
    /// once more (a busy room: about 120 instructions a line).
    pub fn take_pending(&mut self) -> Vec<NewLine> {
        let next = Vec::with_capacity(self.pending.len().min(PENDING_PRESIZE));
        std::mem::replace(&mut self.pending, next)
    }

    /// Notes that `count` lines of `room_key` never reached the file.
    pub fn mark_unsaved(&mut self, room_key: &str, count: u64) {
        *self.unsaved.entry(room_key.to_string()).or_default() += count;
    }

    /// Notes that `room_key`'s tail could not be read back from the file.
    pub fn mark_unreadable(&mut self, room_key: &str) {
        self.unreadable.insert(room_key.to_string());
    }

    /// Whether `room_key`'s older lines could not be read from the file.
    pub fn unreadable(&self, room_key: &str) -> bool {
        self.unreadable.contains(room_key)
    }

    /// Rooms whose tails are still being loaded.
    pub fn loading_rooms(&self) -> Vec<String> {
        self.rooms
            .iter()
            .filter(|(_, tail)| tail.loading)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Lines of `room_key` that could not be saved in this run.
    pub fn unsaved(&self, room_key: &str) -> u64 {
        self.unsaved.get(room_key).copied().unwrap_or(0)
    }

    /// A resident room's tail (oldest first) and whether it is the room's
    /// whole history: no file behind it, or a loaded tail shorter than a
    /// tail keeps. `None` when the room's tail is not in memory.
    pub(super) fn room_lines(&self, room_key: &str) -> Option<(&VecDeque<TailLine>, bool)> {
        let tail = self.rooms.get(room_key)?;
        let complete = !self.persist || (!tail.loading && tail.lines.len() < self.keep);
        Some((&tail.lines, complete))
    }

    /// Lines older than this (Unix milliseconds) are past retention at
    /// `now_ms`.
    pub fn cutoff(&self, now_ms: i64) -> i64 {
        self.max_age_ms.map_or(i64::MIN, |age| now_ms - age)
    }

    /// The newest `n` lines of `room_key` still within retention at
    /// `now_ms` (Unix milliseconds), oldest first.
    pub fn recent(&self, room_key: &str, n: usize, now_ms: i64) -> Vec<&TailLine> {
        self.recent_as_of(room_key, n, now_ms, None)
    }

    /// Where a `:history` asked now, while the room's tail is still
    /// loading ([`Tails::is_loading`]), stands among the lines recorded
    /// meanwhile: give it to [`Tails::recent_as_of`] when answering.
    pub fn wait_mark(&self, room_key: &str) -> usize {
        self.rooms
            .get(room_key)
            .map_or(0, |tail| tail.arrived_while_waiting.len())
    }

    /// [`Tails::recent`] as of a `:history` asked at `mark` (its
    /// [`Tails::wait_mark`]): without the lines recorded after it, which
    /// went to its asker live.
    pub fn recent_as_of(
        &self,
        room_key: &str,
        n: usize,
        now_ms: i64,
        mark: Option<usize>,
    ) -> Vec<&TailLine> {
        let Some(tail) = self.rooms.get(room_key) else {
            return Vec::new();
        };
        // A rare path (answers that waited): a set, however many came.
        let later: std::collections::HashSet<i64> = mark
            .and_then(|mark| tail.arrived_while_waiting.get(mark..))
            .unwrap_or_default()
            .iter()
            .copied()
            .collect();
        let cutoff = self.cutoff(now_ms);
        let fresh = tail
            .lines
            .iter()
            .filter(|line| line.ts >= cutoff && !later.contains(&line.id));
        let total = fresh.clone().count();
        fresh.skip(total.saturating_sub(n)).collect()
    }
}

impl RoomTail {
    fn new(key: &str) -> Self {
        RoomTail {
            key: key.into(),
            lines: VecDeque::new(),
            bytes: 0,
            loading: false,
            backlog: false,
            arrived_while_waiting: Vec::new(),
        }
    }
}

fn line_cost(line: &TailLine) -> usize {
    line.line.len() + LINE_OVERHEAD
}

fn push_bounded(tail: &mut RoomTail, keep: usize, line: TailLine) {
    if tail.lines.len() == keep {
        if let Some(old) = tail.lines.pop_front() {
            tail.bytes -= line_cost(&old);
        }
    }
    tail.bytes += line_cost(&line);
    tail.lines.push_back(line);
}

/// The current time in Unix milliseconds: what history stores and the
/// `time` tag shows.
pub fn unix_now_ms() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(tails: &Tails, room: &str) -> Vec<String> {
        tails
            .recent(room, 100, 0)
            .iter()
            .map(|l| l.line.to_string())
            .collect()
    }

    #[test]
    fn tails_keep_the_newest_lines_and_queue_them_once() {
        let mut tails = Tails::new(3, None, true, usize::MAX, 7);
        for i in 0..5 {
            assert_eq!(tails.record("#a", "x", &format!("x: {i}"), i), 7 + i);
        }
        assert_eq!(tails.record("#b", "y", "* y waves", 9), 12);
        assert_eq!(shown(&tails, "#a"), ["x: 2", "x: 3", "x: 4"]);
        let last: Vec<&str> = tails.recent("#a", 1, 0).iter().map(|l| &*l.line).collect();
        assert_eq!(last, ["x: 4"]);
        assert!(tails.recent("#nope", 5, 0).is_empty());
        let pending = tails.take_pending();
        assert_eq!(pending.len(), 6);
        assert_eq!((pending[0].id, pending[5].id), (7, 12));
        assert_eq!(pending[5].nick(), "y");
        assert_eq!(pending[0].nick(), "x");
        assert_eq!(&*pending[0].room_key, "#a");
        assert_eq!(tails.pending_len(), 0);
        let mut memory_only = Tails::in_memory(3);
        memory_only.record("#a", "x", "x: 1", 1);
        assert_eq!(memory_only.pending_len(), 0);
    }

    #[test]
    fn lines_past_retention_are_not_shown() {
        let mut tails = Tails::new(10, Some(100), false, usize::MAX, 1);
        tails.record("#a", "x", "x: old", 1_000_000);
        tails.record("#a", "x", "x: new", 1_050_000);
        let shown: Vec<&str> = tails
            .recent("#a", 10, 1_100_001)
            .iter()
            .map(|l| &*l.line)
            .collect();
        assert_eq!(shown, ["x: new"]);
    }

    #[test]
    fn past_the_budget_tails_of_gone_rooms_are_dropped_and_loaded_back() {
        let line_bytes = "x: 0".len() + LINE_OVERHEAD;
        let mut tails = Tails::new(10, None, true, 12 * line_bytes, 1);
        tails.room_created("#a");
        assert_eq!(tails.take_loads(), ["#a"]);
        tails.loaded("#a", Vec::new());
        for i in 0..5 {
            tails.record("#a", "x", &format!("x: {i}"), 0);
        }
        tails.room_removed("#a");
        assert_eq!(tails.bytes(), 5 * line_bytes, "within budget: kept");
        tails.room_created("#a");
        assert!(tails.take_loads().is_empty(), "still resident");
        tails.room_removed("#a");
        tails.room_created("#b");
        assert_eq!(tails.take_loads(), ["#b"]);
        tails.loaded("#b", Vec::new());
        for i in 0..8 {
            tails.record("#b", "x", &format!("x: {i}"), 0);
        }
        // #b exists, so #a (gone) is dropped to stay within the budget.
        assert_eq!(tails.bytes(), 8 * line_bytes);
        assert!(shown(&tails, "#a").is_empty());
        tails.room_created("#a");
        assert!(tails.is_loading("#a"));
        assert_eq!(tails.take_loads(), ["#a"]);
        // A line accepted while loading, and already in the file's answer.
        tails.record("#a", "x", "x: new", 0);
        let from_file: Vec<StoredLine> = (1..=6)
            .map(|id| StoredLine {
                id,
                ts: 0,
                line: if id == 6 {
                    "x: new".into()
                } else {
                    format!("x: {}", id - 1)
                },
            })
            .collect();
        let new_id = tails.take_pending().last().unwrap().id;
        assert_eq!(new_id, 14, "ids go on from the file's");
        let mut from_file = from_file;
        from_file[5].id = new_id;
        tails.loaded("#a", from_file);
        assert!(!tails.is_loading("#a"));
        assert_eq!(
            shown(&tails, "#a"),
            ["x: 0", "x: 1", "x: 2", "x: 3", "x: 4", "x: new"]
        );
        assert_eq!(tails.unsaved("#a"), 0);
    }

    #[test]
    fn in_memory_a_dropped_tail_is_counted_as_lost() {
        let line_bytes = "x: 0".len() + LINE_OVERHEAD;
        let mut tails = Tails::new(10, None, false, 3 * line_bytes, 1);
        tails.room_created("#a");
        assert!(tails.take_loads().is_empty());
        for i in 0..3 {
            tails.record("#a", "x", &format!("x: {i}"), 0);
        }
        tails.room_removed("#a");
        tails.room_created("#b");
        tails.record("#b", "x", "x: 9", 0);
        assert!(shown(&tails, "#a").is_empty());
        assert_eq!(tails.unsaved("#a"), 3);
    }
}
