//! History queries by message id and by time (IRCv3 `draft/chathistory`:
//! LATEST, BEFORE, AFTER, AROUND, BETWEEN), answered from the tails in
//! memory when they hold the answer, else from the history file by the
//! writer thread, never by the loop.
//!
//! A request becomes one or two [`Range`]s ([`plan`]): lines strictly
//! after one reference and strictly before another, counted from the
//! oldest or from the newest end, up to a limit. Lines are ordered by their
//! id (acceptance order); a time reference compares with the line's time.
//!
//! [`Tails::query`] answers from memory when the room's tail is sure to
//! hold every line the ranges select: the tail is the room's whole history
//! (no file, or fewer lines than a tail keeps), or the selected lines stop
//! before the tail's oldest. Otherwise it says `None`, and the loop asks
//! the writer ([`super::HistoryLink::query`]): the writer reads the file
//! after committing the batches before the request, so the file then holds
//! every line accepted before it, and the answer arrives on the completion
//! path with the batch's acknowledgement ([`super::HistoryLink::take_answers`]).

use super::store::StoredLine;
use super::tails::{TailLine, Tails};
use crate::protocol::irc::chathistory::{MsgRef, Selector};
use rusqlite::{params, Connection};

/// Which end of a range a limit counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The oldest lines of the range (AFTER, BETWEEN forwards).
    Oldest,
    /// The newest lines of the range (LATEST, BEFORE, BETWEEN backwards).
    Newest,
}

/// Lines of one room strictly between two references, `limit` of them
/// from one end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// Only lines after this one (or this moment); `None`: from the first.
    pub after: Option<MsgRef>,
    /// Only lines before this one (or this moment); `None`: to the last.
    pub before: Option<MsgRef>,
    /// Which end the limit counts from.
    pub from: End,
    /// The most lines.
    pub limit: usize,
}

impl Range {
    /// Whether a line (its id and time) is inside the range's bounds.
    pub fn contains(&self, id: i64, ts: i64) -> bool {
        let after = match self.after {
            None => true,
            Some(MsgRef::Id(x)) => id > x,
            Some(MsgRef::Time(t)) => ts > t,
        };
        let before = match self.before {
            None => true,
            Some(MsgRef::Id(x)) => id < x,
            Some(MsgRef::Time(t)) => ts < t,
        };
        after && before
    }

    /// Whether the bounds leave nothing between them (both of one kind,
    /// the lower not below the upper).
    pub fn is_empty(&self) -> bool {
        match (self.after, self.before) {
            (Some(MsgRef::Id(a)), Some(MsgRef::Id(b))) => a >= b,
            (Some(MsgRef::Time(a)), Some(MsgRef::Time(b))) => a >= b,
            _ => self.limit == 0,
        }
    }
}

/// The same reference, moved so that "after it" includes it: AROUND shows
/// the referenced line (ids and milliseconds are integers).
fn just_before(at: MsgRef) -> MsgRef {
    match at {
        MsgRef::Id(x) => MsgRef::Id(x.saturating_sub(1)),
        MsgRef::Time(t) => MsgRef::Time(t.saturating_sub(1)),
    }
}

/// What a request reads: one or two ranges, and the most lines in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The ranges (their lines together, in id order, are the answer).
    pub ranges: Vec<Range>,
    /// The most lines in all.
    pub limit: usize,
}

/// The ranges a request reads, at most `limit` lines in all:
///
/// - `LATEST *`: the newest; `LATEST ref`: the newest after `ref`.
/// - `BEFORE ref`: the newest before it; `AFTER ref`: the oldest after it.
/// - `AROUND ref`: half the limit (rounded down) of the newest before it,
///   the rest from it on, oldest first (so the referenced line is shown).
/// - `BETWEEN a b`: strictly between, counted from `a`: forwards when `a`
///   is the older, backwards when it is the newer. A msgid and a timestamp
///   cannot be compared before reading, so both directions are read; the
///   one that does not apply selects nothing.
pub fn plan(selector: Selector, limit: usize) -> Plan {
    let range = |after, before, from, limit| Range {
        after,
        before,
        from,
        limit,
    };
    let ranges = match selector {
        Selector::Latest(after) => vec![range(after, None, End::Newest, limit)],
        Selector::Before(at) => vec![range(None, Some(at), End::Newest, limit)],
        Selector::After(at) => vec![range(Some(at), None, End::Oldest, limit)],
        Selector::Around(at) => {
            let before = limit / 2;
            let mut ranges = vec![range(
                Some(just_before(at)),
                None,
                End::Oldest,
                limit - before,
            )];
            if before > 0 {
                ranges.insert(0, range(None, Some(at), End::Newest, before));
            }
            ranges
        }
        Selector::Between(a, b) => vec![
            range(Some(a), Some(b), End::Oldest, limit),
            range(Some(b), Some(a), End::Newest, limit),
        ],
    };
    Plan { ranges, limit }
}

impl Plan {
    /// The lines the plan selects from `lines` (in id order): each range's
    /// own, then all of them in id order without repeats, at most the
    /// plan's limit.
    pub fn select<'a, L: 'a>(
        &self,
        lines: impl DoubleEndedIterator<Item = &'a L> + Clone,
        key: impl Fn(&L) -> (i64, i64),
    ) -> Vec<&'a L> {
        let mut out: Vec<&L> = Vec::new();
        for range in &self.ranges {
            let inside = |line: &&L| {
                let (id, ts) = key(line);
                range.contains(id, ts)
            };
            match range.from {
                End::Oldest => out.extend(lines.clone().filter(inside).take(range.limit)),
                End::Newest => {
                    let start = out.len();
                    out.extend(lines.clone().rev().filter(inside).take(range.limit));
                    out[start..].reverse();
                }
            }
        }
        self.finish(&mut out, |line| key(line).0);
        out
    }

    /// Sorts by id, drops repeats, keeps at most the limit.
    fn finish<T>(&self, out: &mut Vec<T>, id: impl Fn(&T) -> i64) {
        out.sort_by_key(|line| id(line));
        out.dedup_by_key(|line| id(line));
        out.truncate(self.limit);
    }
}

/// Whether everything `range` selects is in a tail whose oldest line is
/// `first` and that is not the room's whole history.
fn covered_by(range: &Range, first: &TailLine, inside_count: usize) -> bool {
    if range.is_empty() {
        return true;
    }
    // Lines older than the tail are all at or before `first` (by id; by
    // time too, since times grow with ids).
    let starts_in_tail = match range.after {
        None => false,
        Some(MsgRef::Id(x)) => x >= first.id,
        Some(MsgRef::Time(t)) => t >= first.ts,
    };
    let ends_before_tail = match range.before {
        None => false,
        Some(MsgRef::Id(x)) => x <= first.id,
        Some(MsgRef::Time(t)) => t <= first.ts,
    };
    if ends_before_tail {
        // Everything it selects is older than the tail.
        return false;
    }
    starts_in_tail || (range.from == End::Newest && inside_count >= range.limit)
}

impl Tails {
    /// The lines of `room_key` the ranges select, oldest first, within
    /// retention at `now_ms`, when memory is sure to hold them all; `None`
    /// when the history file must answer (see the module comment).
    pub fn query(&self, room_key: &str, plan: &Plan, now_ms: i64) -> Option<Vec<TailLine>> {
        let Some((lines, complete)) = self.room_lines(room_key) else {
            // Not in memory: the file has it, or (no file) nothing does.
            return (!self.persists()).then(Vec::new);
        };
        let cutoff = self.cutoff(now_ms);
        let fresh = lines.iter().filter(|line| line.ts >= cutoff);
        let key = |line: &TailLine| (line.id, line.ts);
        if !complete {
            let first = lines.front()?;
            for range in &plan.ranges {
                let inside = fresh.clone().filter(|l| range.contains(l.id, l.ts)).count();
                if !covered_by(range, first, inside) {
                    return None;
                }
            }
        }
        let selected = plan.select(fresh, key);
        Some(selected.into_iter().cloned().collect())
    }
}

/// One query for the writer to answer from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileQuery {
    /// The asker's token, given back with the answer.
    pub token: u64,
    /// The room's key (lower-cased, with its `#`).
    pub room_key: String,
    /// What to read.
    pub plan: Plan,
    /// Lines older than this (Unix milliseconds) are past retention.
    pub cutoff_ms: i64,
}

/// The writer's answer to a [`FileQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAnswer {
    /// The asker's token.
    pub token: u64,
    /// The lines, oldest first; `None` when the file could not be read.
    pub lines: Option<Vec<StoredLine>>,
}

/// Reads the lines of `room_key` the ranges select from the history file,
/// oldest first, none older than `cutoff_ms`. Each range is one walk of
/// the room's part of the `(room, id)` B-tree from one end, stopping at its
/// limit.
pub fn read(
    conn: &Connection,
    room_key: &str,
    plan: &Plan,
    cutoff_ms: i64,
) -> rusqlite::Result<Vec<StoredLine>> {
    let mut out = Vec::new();
    for range in &plan.ranges {
        let (after_id, after_ts) = bounds(range.after, i64::MIN);
        let (before_id, before_ts) = bounds(range.before, i64::MAX);
        let sql = match range.from {
            End::Oldest => {
                "SELECT id, ts, line FROM lines
                 WHERE room = (SELECT id FROM rooms WHERE room_key = ?1)
                   AND id > ?2 AND id < ?3 AND ts > ?4 AND ts < ?5 AND ts >= ?6
                 ORDER BY id ASC LIMIT ?7"
            }
            End::Newest => {
                "SELECT id, ts, line FROM lines
                 WHERE room = (SELECT id FROM rooms WHERE room_key = ?1)
                   AND id > ?2 AND id < ?3 AND ts > ?4 AND ts < ?5 AND ts >= ?6
                 ORDER BY id DESC LIMIT ?7"
            }
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let limit = i64::try_from(range.limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(
            params![room_key, after_id, before_id, after_ts, before_ts, cutoff_ms, limit],
            |row| {
                Ok(StoredLine {
                    id: row.get(0)?,
                    ts: row.get(1)?,
                    line: row.get(2)?,
                })
            },
        )?;
        for row in rows {
            out.push(row?);
        }
    }
    plan.finish(&mut out, |line| line.id);
    Ok(out)
}

/// A reference as `(id bound, time bound)` for the SQL above; the other
/// kind gets the open value `open`.
fn bounds(at: Option<MsgRef>, open: i64) -> (i64, i64) {
    match at {
        None => (open, open),
        Some(MsgRef::Id(x)) => (x, open),
        Some(MsgRef::Time(t)) => (open, t),
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
