//! The SQLite history file: opening and migrating it, writing batches,
//! loading each room's tail, and pruning by retention in small steps.
//!
//! Only the writer thread (and [`super::HistoryLink::start`], before the
//! loop runs) touches a [`Store`]; the event loop never does.
//!
//! Schema of the chat lines (version 4, kept in `PRAGMA user_version`;
//! version 5 adds the accounts tables, see below):
//!
//! ```sql
//! CREATE TABLE rooms (
//!     id       INTEGER PRIMARY KEY,
//!     room_key TEXT NOT NULL UNIQUE  -- room name lower-cased, with its '#'
//! );
//! CREATE TABLE lines (
//!     room INTEGER NOT NULL REFERENCES rooms (id),
//!     id   INTEGER NOT NULL,         -- acceptance order (over all rooms)
//!     ts   INTEGER NOT NULL,         -- when accepted, Unix milliseconds (UTC)
//!     line TEXT NOT NULL,            -- as delivered: 'alice: hi' or '* alice waves'
//!     nick TEXT NOT NULL,            -- the sender's nick at the time
//!     PRIMARY KEY (room, id)
//! ) WITHOUT ROWID;
//! ```
//!
//! One B-tree holds the lines, clustered by room and then acceptance order,
//! so an insert touches one B-tree (version 2 also kept a `(room_key, id)`
//! index, about half of the writer's CPU per line) and a room's tail is one
//! range at the end of its key range. A room's lines refer to it by an
//! integer id, not a repeated TEXT key. Age pruning and the next id visit
//! each room (one B-tree seek each) rather than one global order.
//!
//! Version 1 had `lines` without `nick` and no `rooms` table; version 2 a
//! rowid table keyed by the TEXT `room_key` with a `(room_key, id)` index;
//! version 3 the tables above with `ts` in Unix seconds (version 4 keeps
//! milliseconds, for the `time` tag of protocol 1.2). All are migrated in
//! place on open.
//!
//! The accounts tables (`accounts`, `tokens`) belong to
//! [`crate::accounts::persist`]: its step ([`migrate_accounts`]) runs after
//! the chat lines' steps and moves the file to its version
//! ([`ACCOUNTS_SCHEMA_VERSION`], 5), and their writes go in the same
//! transaction as a batch's lines ([`Store::commit_batch`]).

use crate::accounts::persist::{
    self, migrate_accounts, AccountWrite, Loaded, ACCOUNTS_SCHEMA_VERSION,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::Path;
use std::sync::Arc;

/// The schema version this build writes: the chat lines' steps, then the
/// accounts tables' step.
pub const SCHEMA_VERSION: i64 = ACCOUNTS_SCHEMA_VERSION;
/// The version the chat lines' own steps reach.
const LINES_SCHEMA_VERSION: i64 = 4;

/// Lines one multi-row `INSERT` writes (5 parameters each).
const ROWS_PER_INSERT: usize = 32;

/// `INSERT OR IGNORE INTO lines ... VALUES (?, ?, ?, ?, ?), ...`, with
/// [`ROWS_PER_INSERT`] rows.
static INSERT_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let rows = vec!["(?, ?, ?, ?, ?)"; ROWS_PER_INSERT].join(", ");
    format!("INSERT OR IGNORE INTO lines (room, id, ts, line, nick) VALUES {rows}")
});

/// How long a writer waits for a lock held by another process (a `sqlite3`
/// shell reading the file, say) before the write fails.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// One accepted chat or `:me` line, on its way to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    /// Its id: the loop numbers lines as it accepts them, so a tail read
    /// back from the file merges with the lines in memory.
    pub id: i64,
    /// The room's name lower-cased, with its `#` (shared by its lines).
    pub room_key: Arc<str>,
    /// When the server accepted it, Unix milliseconds.
    pub ts: i64,
    /// The line as delivered, without its `\n` (shared with the tail in
    /// memory: one allocation per accepted line).
    pub line: Arc<str>,
    /// Where the sender's nick is in `line`.
    nick: std::ops::Range<usize>,
}

impl NewLine {
    /// A line `line` (`NICK: TEXT` or `* NICK TEXT`) from `nick`.
    pub fn new(id: i64, room_key: Arc<str>, ts: i64, nick: &str, line: Arc<str>) -> Self {
        let start = if line.starts_with(nick) { 0 } else { 2 };
        let end = (start + nick.len()).min(line.len());
        NewLine {
            id,
            room_key,
            ts,
            line,
            nick: start..end,
        }
    }

    /// The sender's nick when it was sent.
    pub fn nick(&self) -> &str {
        self.line.get(self.nick.clone()).unwrap_or_default()
    }
}

/// A line read back from the file: when, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    /// Its id (acceptance order).
    pub id: i64,
    /// When the server accepted it, Unix milliseconds.
    pub ts: i64,
    /// The line as delivered, without its `\n`.
    pub line: String,
}

/// How long history is kept: lines older than `max_age_secs`, and lines of
/// a room beyond its newest `max_lines_per_room`, are pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Age limit in seconds; `None` keeps lines forever.
    pub max_age_secs: Option<i64>,
    /// Lines kept per room; `None` for no limit.
    pub max_lines_per_room: Option<u64>,
}

/// An open history file.
pub struct Store {
    conn: Connection,
    /// Rooms that have a row in `rooms`, by key, with their integer id, so
    /// a batch inserts a room only the first time it speaks.
    known_rooms: std::collections::HashMap<String, i64>,
}

/// Errors with the history file, as text fit for the operator.
pub type StoreResult<T> = Result<T, rusqlite::Error>;

impl Store {
    /// Opens (creating if needed) the history file at `path`: WAL journal,
    /// `synchronous=NORMAL` (a committed transaction survives a crash of
    /// the process), then migrates it to [`SCHEMA_VERSION`]. Refuses a file
    /// that is not a loopchat history or comes from a newer loopchat.
    pub fn open(path: &Path) -> StoreResult<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(refuse(format!("cannot use WAL journal mode (got {mode})")));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut store = Store {
            conn,
            known_rooms: Default::default(),
        };
        store.migrate()?;
        let rooms: Vec<(String, i64)> = {
            let mut stmt = store.conn.prepare("SELECT room_key, id FROM rooms")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<StoreResult<_>>()?
        };
        store.known_rooms = rooms.into_iter().collect();
        Ok(store)
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> StoreResult<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
    }

    fn migrate(&mut self) -> StoreResult<()> {
        let version = self.schema_version()?;
        if version > SCHEMA_VERSION {
            return Err(refuse(format!(
                "schema version {version} is newer than this loopchat's ({SCHEMA_VERSION}); \
                 upgrade loopchat or move the file away"
            )));
        }
        if version == 0 {
            let tables: i64 = self.conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |row| row.get(0),
            )?;
            if tables > 0 {
                return Err(refuse(
                    "not a loopchat history file (it has tables but no schema version)".into(),
                ));
            }
            let tx = self.conn.transaction()?;
            tx.execute_batch(CREATE_TABLES)?;
            set_version(&tx, LINES_SCHEMA_VERSION)?;
            tx.commit()?;
            return migrate_accounts(&mut self.conn);
        }
        if version < 2 {
            // 1 -> 2: the sender's nick gets a column of its own (taken from
            // the line: 'nick: text' or '* nick text'), and the rooms table
            // lets pruning visit every room without scanning lines.
            let tx = self.conn.transaction()?;
            tx.execute_batch(
                "ALTER TABLE lines ADD COLUMN nick TEXT NOT NULL DEFAULT '';
                 UPDATE lines SET nick = CASE
                     WHEN line LIKE '* %'
                         THEN substr(line, 3, instr(substr(line, 3) || ' ', ' ') - 1)
                     ELSE substr(line, 1, instr(line || ': ', ': ') - 1)
                 END;
                 CREATE TABLE rooms (room_key TEXT PRIMARY KEY) WITHOUT ROWID;
                 INSERT OR IGNORE INTO rooms SELECT DISTINCT room_key FROM lines;",
            )?;
            set_version(&tx, 2)?;
            tx.commit()?;
        }
        if version < 3 {
            // 2 -> 3: rooms get integer ids and the lines move into one
            // B-tree clustered by (room, id); the old table and its index go.
            let tx = self.conn.transaction()?;
            tx.execute_batch(
                "ALTER TABLE rooms RENAME TO rooms_v2;
                 ALTER TABLE lines RENAME TO lines_v2;
                 DROP INDEX IF EXISTS lines_room_id;",
            )?;
            tx.execute_batch(CREATE_TABLES)?;
            tx.execute_batch(
                "INSERT INTO rooms (room_key)
                     SELECT room_key FROM rooms_v2
                     UNION SELECT room_key FROM lines_v2 ORDER BY 1;
                 INSERT INTO lines (room, id, ts, line, nick)
                     SELECT rooms.id, l.id, l.ts, l.line, l.nick
                     FROM lines_v2 AS l JOIN rooms ON rooms.room_key = l.room_key;
                 DROP TABLE lines_v2;
                 DROP TABLE rooms_v2;",
            )?;
            set_version(&tx, 3)?;
            tx.commit()?;
        }
        if version < 4 {
            // 3 -> 4: times in milliseconds (the `time` tag's precision);
            // a line stored in seconds keeps its second, at .000.
            let tx = self.conn.transaction()?;
            tx.execute_batch("UPDATE lines SET ts = ts * 1000;")?;
            set_version(&tx, 4)?;
            tx.commit()?;
        }
        migrate_accounts(&mut self.conn)
    }

    /// Every account, and the tokens used since `valid_since` (Unix
    /// seconds; older ones are deleted), for the accounts in memory.
    pub fn load_accounts(&self, valid_since: i64) -> StoreResult<Loaded> {
        persist::load(&self.conn, valid_since)
    }

    /// Writes `lines` in one transaction, in order.
    pub fn insert_batch<'a>(
        &mut self,
        lines: impl IntoIterator<Item = &'a NewLine>,
    ) -> StoreResult<usize> {
        self.commit_batch(lines, &[])
    }

    /// Writes `lines` and the accounts' `writes` in one transaction, in
    /// order. Returns how many lines were written.
    pub fn commit_batch<'a>(
        &mut self,
        lines: impl IntoIterator<Item = &'a NewLine>,
        writes: &[AccountWrite],
    ) -> StoreResult<usize> {
        let tx = self.conn.transaction()?;
        persist::apply(&tx, writes)?;
        let mut new_rooms: Vec<(String, i64)> = Vec::new();
        // Each line with its room's integer id (new rooms added first).
        let mut rows: Vec<(i64, &NewLine)> = Vec::new();
        {
            let mut add_room = tx.prepare_cached(
                "INSERT INTO rooms (room_key) VALUES (?1)
                     ON CONFLICT (room_key) DO UPDATE SET room_key = excluded.room_key
                     RETURNING id",
            )?;
            for line in lines {
                let room_key: &str = &line.room_key;
                let known = self.known_rooms.get(room_key).copied().or_else(|| {
                    new_rooms
                        .iter()
                        .find(|(key, _)| key == room_key)
                        .map(|&(_, id)| id)
                });
                let room = match known {
                    Some(room) => room,
                    None => {
                        let room: i64 = add_room.query_row([room_key], |row| row.get(0))?;
                        new_rooms.push((room_key.to_string(), room));
                        room
                    }
                };
                rows.push((room, line));
            }
        }
        {
            // A line whose (room, id) is taken is not written: only a
            // cluster whose Redis lost its data gives an id twice
            // (docs/cluster.md), and one such line must not fail the batch.
            // Full groups go [`ROWS_PER_INSERT`] to a statement, which
            // saves the per-statement share of SQLite's cost (about 9 % of
            // the instructions per line, `cargo bench --bench history`
            // under callgrind); the rest one by one.
            let mut many = tx.prepare_cached(&INSERT_MANY)?;
            let mut one = tx.prepare_cached(
                "INSERT OR IGNORE INTO lines (room, id, ts, line, nick) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut groups = rows.chunks_exact(ROWS_PER_INSERT);
            for group in &mut groups {
                for (i, &(room, line)) in group.iter().enumerate() {
                    let at = i * 5;
                    many.raw_bind_parameter(at + 1, room)?;
                    many.raw_bind_parameter(at + 2, line.id)?;
                    many.raw_bind_parameter(at + 3, line.ts)?;
                    many.raw_bind_parameter(at + 4, &*line.line)?;
                    many.raw_bind_parameter(at + 5, line.nick())?;
                }
                many.raw_execute()?;
            }
            for &(room, line) in groups.remainder() {
                one.execute(params![room, line.id, line.ts, &*line.line, line.nick()])?;
            }
        }
        let count = rows.len();
        tx.commit()?;
        self.known_rooms.extend(new_rooms);
        Ok(count)
    }

    /// The newest `n` lines of one room, oldest first: the end of the
    /// room's range of the `(room, id)` B-tree, so the cost does not depend
    /// on how long the history is.
    pub fn load_tail(&self, room_key: &str, n: usize) -> StoreResult<Vec<StoredLine>> {
        let Some(&room) = self.known_rooms.get(room_key) else {
            return Ok(Vec::new());
        };
        let mut tail = self.conn.prepare_cached(
            "SELECT id, ts, line FROM lines WHERE room = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let rows = tail.query_map(params![room, limit], |row| {
            Ok(StoredLine {
                id: row.get(0)?,
                ts: row.get(1)?,
                line: row.get(2)?,
            })
        })?;
        let mut lines: Vec<StoredLine> = rows.collect::<StoreResult<_>>()?;
        lines.reverse();
        Ok(lines)
    }

    /// The lines a history query selects, oldest first (see
    /// [`super::query::read`]).
    pub fn query(&self, query: &super::query::FileQuery) -> StoreResult<Vec<StoredLine>> {
        super::query::read(&self.conn, &query.room_key, &query.plan, query.cutoff_ms)
    }

    /// The newest `per_room` lines of every room that has any, by room key
    /// (for tools and tests; the server loads tails one room at a time).
    pub fn load_tails(&self, per_room: usize) -> StoreResult<Vec<(String, Vec<StoredLine>)>> {
        let mut keys: Vec<&String> = self.known_rooms.keys().collect();
        keys.sort();
        let mut rooms = Vec::new();
        for key in keys {
            let lines = self.load_tail(key, per_room)?;
            if !lines.is_empty() {
                rooms.push((key.clone(), lines));
            }
        }
        Ok(rooms)
    }

    /// The id the next line gets: one past the highest stored (a lookup at
    /// the end of each room's range, not a scan of the lines).
    pub fn next_id(&self) -> StoreResult<i64> {
        self.conn.query_row(
            "SELECT coalesce(max((SELECT max(id) FROM lines WHERE room = rooms.id)), 0) + 1
                 FROM rooms",
            [],
            |row| row.get(0),
        )
    }

    /// Number of lines stored, for logs and tests (a full count: not for
    /// the start-up path).
    pub fn count(&self) -> StoreResult<i64> {
        self.conn
            .query_row("SELECT count(*) FROM lines", [], |row| row.get(0))
    }

    /// Deletes at most `limit` lines older than `cutoff` (Unix milliseconds),
    /// each room's oldest first, in one short transaction. Looks only at
    /// the oldest `limit` rows of each room, so a pass that finds nothing
    /// to do costs one B-tree seek per room. Returns how many lines went.
    pub fn prune_older_than(&mut self, cutoff: i64, limit: usize) -> StoreResult<usize> {
        let mut rooms: Vec<i64> = self.known_rooms.values().copied().collect();
        rooms.sort_unstable();
        let tx = self.conn.transaction()?;
        let mut deleted = 0;
        {
            let mut prune = tx.prepare_cached(
                "DELETE FROM lines WHERE room = ?1 AND id IN (
                     SELECT id FROM (
                         SELECT id, ts FROM lines WHERE room = ?1 ORDER BY id LIMIT ?3)
                     WHERE ts < ?2)",
            )?;
            for room in rooms {
                if deleted >= limit {
                    break;
                }
                let left = i64::try_from(limit - deleted).unwrap_or(i64::MAX);
                deleted += prune.execute(params![room, cutoff, left])?;
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// Deletes at most `limit` of `room_key`'s lines beyond its newest
    /// `keep` (none with no `keep`), oldest first, and forgets the room once
    /// it has no line left. Returns how many lines went.
    ///
    /// Finding the newest line past `keep` steps over `keep` lines (SQLite
    /// has no cheaper OFFSET), so without a limit the room is not walked
    /// at all: only the one seek that finds whether it is empty.
    pub fn prune_room(
        &mut self,
        room_key: &str,
        keep: Option<u64>,
        limit: usize,
    ) -> StoreResult<usize> {
        let Some(&room) = self.known_rooms.get(room_key) else {
            return Ok(0);
        };
        let tx = self.conn.transaction()?;
        let newest_dropped: Option<i64> = match keep {
            Some(keep) => tx
                .query_row(
                    "SELECT id FROM lines WHERE room = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2",
                    params![room, i64::try_from(keep).unwrap_or(i64::MAX)],
                    |row| row.get(0),
                )
                .optional()?,
            None => None,
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let deleted = match newest_dropped {
            Some(last) => tx.execute(
                "DELETE FROM lines WHERE room = ?1 AND id IN (
                     SELECT id FROM lines WHERE room = ?1 AND id <= ?2
                     ORDER BY id LIMIT ?3)",
                params![room, last, limit],
            )?,
            None => 0,
        };
        let emptied = tx.execute(
            "DELETE FROM rooms WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM lines WHERE room = ?1)",
            [room],
        )?;
        tx.commit()?;
        if emptied > 0 {
            self.known_rooms.remove(room_key);
        }
        Ok(deleted)
    }

    /// The rooms that have history, in no particular order.
    pub fn rooms(&self) -> Vec<String> {
        self.known_rooms.keys().cloned().collect()
    }
}

/// The tables of the current schema (see the module comment; version 4
/// has version 3's tables, with `ts` in milliseconds).
const CREATE_TABLES: &str = "CREATE TABLE rooms (
         id       INTEGER PRIMARY KEY,
         room_key TEXT NOT NULL UNIQUE
     );
     CREATE TABLE lines (
         room INTEGER NOT NULL REFERENCES rooms (id),
         id   INTEGER NOT NULL,
         ts   INTEGER NOT NULL,
         line TEXT NOT NULL,
         nick TEXT NOT NULL,
         PRIMARY KEY (room, id)
     ) WITHOUT ROWID;";

fn set_version(tx: &Transaction<'_>, version: i64) -> StoreResult<()> {
    tx.pragma_update(None, "user_version", version)
}

/// An error for a file we refuse to use, with the reason.
fn refuse(reason: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
        Some(reason),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(room: &str, ts: i64, nick: &str, text: &str) -> NewLine {
        use std::sync::atomic::{AtomicI64, Ordering};
        static NEXT: AtomicI64 = AtomicI64::new(1);
        NewLine::new(
            NEXT.fetch_add(1, Ordering::Relaxed),
            room.into(),
            ts,
            nick,
            format!("{nick}: {text}").into(),
        )
    }

    fn texts(lines: &[StoredLine]) -> Vec<&str> {
        lines.iter().map(|l| l.line.as_str()).collect()
    }

    #[test]
    fn a_new_file_gets_the_current_schema_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        // Reopening an up-to-date file changes nothing.
        assert_eq!(
            Store::open(&path).unwrap().schema_version().unwrap(),
            SCHEMA_VERSION
        );
    }

    #[test]
    fn batches_are_written_in_order_and_tails_read_back_per_room() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut store = Store::open(&path).unwrap();
        let first: Vec<NewLine> = (0..5)
            .map(|i| {
                line(
                    if i % 2 == 0 { "#a" } else { "#b" },
                    100 + i,
                    "x",
                    &i.to_string(),
                )
            })
            .collect();
        assert_eq!(store.insert_batch(&first).unwrap(), 5);
        let second = [line("#a", 200, "y", "late")];
        store.insert_batch(&second).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.count().unwrap(), 6);
        let tails = store.load_tails(3).unwrap();
        assert_eq!(tails.len(), 2);
        assert_eq!(tails[0].0, "#a");
        assert_eq!(texts(&tails[0].1), ["x: 2", "x: 4", "y: late"]);
        assert_eq!(tails[0].1[2].ts, 200);
        assert_eq!(tails[1].0, "#b");
        assert_eq!(texts(&tails[1].1), ["x: 1", "x: 3"]);
    }

    #[test]
    fn a_failed_batch_leaves_nothing_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        store.insert_batch(&[line("#a", 1, "x", "kept")]).unwrap();
        // Make the second insert of the next batch fail.
        store
            .conn
            .execute_batch(
                "CREATE TRIGGER no_boom BEFORE INSERT ON lines WHEN NEW.line = 'x: boom'
                 BEGIN SELECT RAISE(ABORT, 'disk full, say'); END;",
            )
            .unwrap();
        let batch = [line("#a", 2, "x", "lost"), line("#a", 3, "x", "boom")];
        assert!(store.insert_batch(&batch).is_err());
        assert_eq!(texts(&store.load_tails(10).unwrap()[0].1), ["x: kept"]);
    }

    #[test]
    fn retention_by_age_prunes_oldest_first_in_small_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        let lines: Vec<NewLine> = (0..10)
            .map(|i| line("#a", i, "x", &i.to_string()))
            .collect();
        store.insert_batch(&lines).unwrap();
        assert_eq!(store.prune_older_than(7, 3).unwrap(), 3);
        assert_eq!(store.prune_older_than(7, 3).unwrap(), 3);
        assert_eq!(store.prune_older_than(7, 3).unwrap(), 1);
        assert_eq!(store.prune_older_than(7, 3).unwrap(), 0);
        let tails = store.load_tails(100).unwrap();
        assert_eq!(texts(&tails[0].1), ["x: 7", "x: 8", "x: 9"]);
    }

    #[test]
    fn a_batch_longer_than_one_insert_keeps_every_line_and_skips_a_taken_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        // 3 full groups of ROWS_PER_INSERT and 5 more, in two rooms (one of
        // them new mid-batch), with one id given twice inside a group.
        let total = ROWS_PER_INSERT * 3 + 5;
        let mut lines: Vec<NewLine> = (0..total)
            .map(|i| {
                let room = if i % 3 == 0 && i > 40 { "#b" } else { "#a" };
                let id = i64::try_from(i).unwrap() + 1;
                NewLine::new(id, room.into(), 7, "n", format!("n: {i}").into())
            })
            .collect();
        lines[ROWS_PER_INSERT + 3] = NewLine::new(2, "#a".into(), 7, "n", "n: again".into());
        store.insert_batch(&lines).unwrap();
        assert_eq!(store.count().unwrap(), i64::try_from(total).unwrap() - 1);
        let tails = store.load_tails(1000).unwrap();
        let (a, b) = (&tails[0].1, &tails[1].1);
        assert_eq!((tails[0].0.as_str(), tails[1].0.as_str()), ("#a", "#b"));
        assert!(!texts(a).contains(&"n: again"), "the taken id is skipped");
        assert_eq!(a[1].line, "n: 1", "the first line with id 2 stays");
        let expected_b: Vec<String> = (0..total)
            .filter(|i| i % 3 == 0 && *i > 40)
            .map(|i| format!("n: {i}"))
            .collect();
        assert_eq!(texts(b), expected_b);
        assert_eq!(a.len() + b.len(), total - 1);
        assert!(a.windows(2).all(|w| w[0].id < w[1].id));
    }

    #[test]
    fn retention_by_lines_per_room_and_emptied_rooms_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut store = Store::open(&path).unwrap();
        let mut lines: Vec<NewLine> = (0..10)
            .map(|i| line("#a", i, "x", &i.to_string()))
            .collect();
        lines.push(line("#b", 5, "y", "only"));
        store.insert_batch(&lines).unwrap();
        assert_eq!(store.prune_room("#a", Some(4), 4).unwrap(), 4);
        assert_eq!(store.prune_room("#a", Some(4), 4).unwrap(), 2);
        assert_eq!(store.prune_room("#a", Some(4), 4).unwrap(), 0);
        assert_eq!(store.prune_room("#b", Some(4), 4).unwrap(), 0);
        let tails = store.load_tails(100).unwrap();
        assert_eq!(texts(&tails[0].1), ["x: 6", "x: 7", "x: 8", "x: 9"]);
        assert_eq!(texts(&tails[1].1), ["y: only"]);
        // Age takes #b's only line; the room pass then forgets #b, with
        // or without a limit on lines.
        store.prune_older_than(6, 100).unwrap();
        assert_eq!(store.prune_room("#a", None, 4).unwrap(), 0);
        store.prune_room("#b", None, 4).unwrap();
        assert!(!store.rooms().contains(&"#b".to_string()));
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.rooms(), ["#a"]);
    }

    #[test]
    fn a_version_1_file_is_migrated_with_its_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "PRAGMA journal_mode=WAL;
                 CREATE TABLE lines (
                     id INTEGER PRIMARY KEY, room_key TEXT NOT NULL,
                     ts INTEGER NOT NULL, line TEXT NOT NULL);
                 CREATE INDEX lines_room_id ON lines (room_key, id);
                 INSERT INTO lines (room_key, ts, line) VALUES
                     ('#lobby', 10, 'alice: hello: world'),
                     ('#rust', 11, '* bob waves at you'),
                     ('#lobby', 12, 'carol: x');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        // 1 -> 2 -> 3 -> 4: the lines end in one B-tree clustered by (room, id),
        // referring to rooms by integer id; the old index is gone. (Then
        // the accounts' step adds its tables.)
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let objects: Vec<(String, String)> = {
            let mut stmt = store
                .conn
                .prepare(
                    "SELECT type, name FROM sqlite_master
                     WHERE name NOT LIKE 'sqlite_%'
                         AND name NOT IN ('accounts', 'tokens', 'tokens_account', 'account_keys')
                     ORDER BY name",
                )
                .unwrap();
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.map(Result::unwrap).collect()
        };
        assert_eq!(
            objects,
            [
                ("table".to_string(), "lines".to_string()),
                ("table".to_string(), "rooms".to_string())
            ]
        );
        let sql: String = store
            .conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'lines'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains("WITHOUT ROWID"), "{sql}");
        let by_room: Vec<(String, i64)> = {
            let mut stmt = store
                .conn
                .prepare(
                    "SELECT rooms.room_key, lines.id FROM lines
                     JOIN rooms ON rooms.id = lines.room ORDER BY lines.id",
                )
                .unwrap();
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.map(Result::unwrap).collect()
        };
        assert_eq!(
            by_room,
            [
                ("#lobby".to_string(), 1),
                ("#rust".to_string(), 2),
                ("#lobby".to_string(), 3)
            ]
        );
        let nicks: Vec<String> = {
            let mut stmt = store
                .conn
                .prepare("SELECT nick FROM lines ORDER BY id")
                .unwrap();
            let rows = stmt.query_map([], |r| r.get(0)).unwrap();
            rows.map(Result::unwrap).collect()
        };
        assert_eq!(nicks, ["alice", "bob", "carol"]);
        let mut rooms = store.rooms();
        rooms.sort();
        assert_eq!(rooms, ["#lobby", "#rust"]);
        let next = NewLine {
            id: store.next_id().unwrap(),
            ..line("#rust", 13, "dave", "new")
        };
        assert_eq!(next.id, 4);
        store.insert_batch(&[next]).unwrap();
        let tails = store.load_tails(10).unwrap();
        assert_eq!(texts(&tails[0].1), ["alice: hello: world", "carol: x"]);
        assert_eq!(texts(&tails[1].1), ["* bob waves at you", "dave: new"]);
    }

    #[test]
    fn a_version_3_file_gets_its_times_in_milliseconds_and_keeps_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "PRAGMA journal_mode=WAL;
                 {CREATE_TABLES}
                 INSERT INTO rooms (id, room_key) VALUES (1, '#lobby'), (2, '#rust');
                 INSERT INTO lines (room, id, ts, line, nick) VALUES
                     (1, 5, 1796638503, 'alice: hello', 'alice'),
                     (2, 6, 1796638504, '* bob waves', 'bob'),
                     (1, 9, 1796638509, 'carol: x', 'carol');
                 PRAGMA user_version = 3;"
            ))
            .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let lobby = store.load_tail("#lobby", 10).unwrap();
        assert_eq!(
            lobby,
            [
                StoredLine {
                    id: 5,
                    ts: 1_796_638_503_000,
                    line: "alice: hello".into()
                },
                StoredLine {
                    id: 9,
                    ts: 1_796_638_509_000,
                    line: "carol: x".into()
                }
            ]
        );
        let rust = store.load_tail("#rust", 10).unwrap();
        assert_eq!((rust[0].id, rust[0].ts), (6, 1_796_638_504_000));
        assert_eq!(store.next_id().unwrap(), 10, "ids go on, never reused");
        store
            .insert_batch(&[NewLine::new(
                10,
                "#rust".into(),
                1_796_638_600_123,
                "dave",
                "dave: new".into(),
            )])
            .unwrap();
        drop(store);
        // Opening it again migrates nothing twice.
        let store = Store::open(&path).unwrap();
        let rust = store.load_tail("#rust", 10).unwrap();
        assert_eq!(rust[0].ts, 1_796_638_504_000);
        assert_eq!((rust[1].id, rust[1].ts), (10, 1_796_638_600_123));
    }

    #[test]
    fn foreign_and_newer_files_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x);")
            .unwrap();
        let err = Store::open(&foreign).err().expect("refused").to_string();
        assert!(err.contains("not a loopchat history"), "{err}");
        let newer = dir.path().join("newer.db");
        Connection::open(&newer)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        let err = Store::open(&newer).err().expect("refused").to_string();
        assert!(err.contains("newer"), "{err}");
        let missing_dir = dir.path().join("no/such/dir/h.db");
        assert!(Store::open(&missing_dir).is_err());
    }
}
