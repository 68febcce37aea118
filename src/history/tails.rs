//! The recent lines of every room, in memory: what `:history` answers from,
//! so answering never touches the disk. Plain data, owned by the chat state.

use super::store::{NewLine, StoredLine};
use std::collections::{HashMap, VecDeque};

/// One line of a room's tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailLine {
    /// When the server accepted it, Unix seconds.
    pub ts: i64,
    /// The line as delivered, without its `\n`.
    pub line: Box<str>,
}

#[derive(Debug, Default)]
struct RoomTail {
    lines: VecDeque<TailLine>,
    /// Lines of this room that could not be written to the file in this run.
    unsaved: u64,
}

/// Every room's newest lines (up to the `:history` maximum), plus the lines
/// accepted since the event loop last sent a batch to the writer.
#[derive(Debug)]
pub struct Tails {
    /// Lines kept per room: the `:history` maximum.
    keep: usize,
    /// Lines older than this many seconds are not shown (retention).
    max_age_secs: Option<i64>,
    /// Whether accepted lines are also queued for the file.
    persist: bool,
    /// By room key (lower-cased name with `#`).
    rooms: HashMap<String, RoomTail>,
    pending: Vec<NewLine>,
}

impl Tails {
    /// Empty tails keeping `keep` lines per room. With `persist` off,
    /// nothing is queued for a writer (history in memory only).
    pub fn new(keep: usize, max_age_secs: Option<i64>, persist: bool) -> Self {
        Tails {
            keep: keep.max(1),
            max_age_secs,
            persist,
            rooms: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// The most lines `:history` can show.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Fills a room's tail from the file at start-up (oldest first).
    pub fn load(&mut self, room_key: String, lines: Vec<StoredLine>) {
        let tail = self.rooms.entry(room_key).or_default();
        for line in lines {
            push_bounded(
                &mut tail.lines,
                self.keep,
                TailLine {
                    ts: line.ts,
                    line: line.line.into_boxed_str(),
                },
            );
        }
    }

    /// Records a line just accepted in `room_key` (lower-cased) from `nick`,
    /// as delivered (`line` without its `\n`).
    pub fn record(&mut self, room_key: &str, nick: &str, line: &str, ts: i64) {
        let tail = match self.rooms.get_mut(room_key) {
            Some(tail) => tail,
            None => self.rooms.entry(room_key.to_string()).or_default(),
        };
        push_bounded(
            &mut tail.lines,
            self.keep,
            TailLine {
                ts,
                line: line.into(),
            },
        );
        if self.persist {
            self.pending.push(NewLine {
                room_key: room_key.to_string(),
                ts,
                nick: nick.to_string(),
                line: line.to_string(),
            });
        }
    }

    /// Lines accepted and not yet handed to the writer.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Takes the lines accepted since the last call, in order.
    pub fn take_pending(&mut self) -> Vec<NewLine> {
        std::mem::take(&mut self.pending)
    }

    /// Notes that `count` lines of `room_key` never reached the file.
    pub fn mark_unsaved(&mut self, room_key: &str, count: u64) {
        self.rooms.entry(room_key.to_string()).or_default().unsaved += count;
    }

    /// Lines of `room_key` that could not be saved in this run.
    pub fn unsaved(&self, room_key: &str) -> u64 {
        self.rooms.get(room_key).map_or(0, |tail| tail.unsaved)
    }

    /// The newest `n` lines of `room_key` still within retention at `now`,
    /// oldest first.
    pub fn recent(&self, room_key: &str, n: usize, now: i64) -> Vec<&TailLine> {
        let Some(tail) = self.rooms.get(room_key) else {
            return Vec::new();
        };
        let cutoff = self.max_age_secs.map_or(i64::MIN, |age| now - age);
        let fresh = tail.lines.iter().filter(|line| line.ts >= cutoff);
        let total = fresh.clone().count();
        fresh.skip(total.saturating_sub(n)).collect()
    }
}

fn push_bounded(lines: &mut VecDeque<TailLine>, keep: usize, line: TailLine) {
    if lines.len() == keep {
        lines.pop_front();
    }
    lines.push_back(line);
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Formats Unix seconds as UTC `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_342_503), "2026-11-22T10:15:03Z");
        assert_eq!(format_utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn tails_keep_the_newest_lines_and_queue_them_once() {
        let mut tails = Tails::new(3, None, true);
        for i in 0..5 {
            tails.record("#a", "x", &format!("x: {i}"), i);
        }
        tails.record("#b", "y", "* y waves", 9);
        let recent: Vec<&str> = tails.recent("#a", 10, 0).iter().map(|l| &*l.line).collect();
        assert_eq!(recent, ["x: 2", "x: 3", "x: 4"]);
        let last: Vec<&str> = tails.recent("#a", 1, 0).iter().map(|l| &*l.line).collect();
        assert_eq!(last, ["x: 4"]);
        assert!(tails.recent("#nope", 5, 0).is_empty());
        let pending = tails.take_pending();
        assert_eq!(pending.len(), 6);
        assert_eq!(pending[5].nick, "y");
        assert_eq!(tails.pending_len(), 0);
        let mut memory_only = Tails::new(3, None, false);
        memory_only.record("#a", "x", "x: 1", 1);
        assert_eq!(memory_only.pending_len(), 0);
    }

    #[test]
    fn lines_past_retention_are_not_shown() {
        let mut tails = Tails::new(10, Some(100), false);
        tails.record("#a", "x", "x: old", 1000);
        tails.record("#a", "x", "x: new", 1050);
        let shown: Vec<&str> = tails
            .recent("#a", 10, 1120)
            .iter()
            .map(|l| &*l.line)
            .collect();
        assert_eq!(shown, ["x: new"]);
    }
}
