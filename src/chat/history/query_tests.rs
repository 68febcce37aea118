//! History queries over a real SQLite file, the tails in memory, and the
//! writer thread: the same request gives the same lines from each, and a
//! tail answers only when it is sure to hold them all.

use super::*;
use crate::chat::completion::{Completion, Completions};
use crate::chat::history::store::Store;
use crate::chat::history::{HistoryConfig, HistoryLink};
use crate::protocol::irc::chathistory::{self, Request};
use crate::protocol::irc::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Twelve lines alternating between `#a` (ids 1, 3, … 11) and `#b` (2, 4,
/// … 12), each at `id × 1000` ms, recorded in `tails`.
fn record(tails: &mut Tails) {
    for id in 1..=12 {
        let (room, nick) = if id % 2 == 1 {
            ("#a", "ann")
        } else {
            ("#b", "bob")
        };
        let line = format!("{nick}: line {id}");
        assert_eq!(tails.record(room, nick, &line, id * 1000), id);
    }
}

/// The plan of `CHATHISTORY <args>` (limit at most 100).
fn plan_of(args: &str) -> Plan {
    let line = format!("CHATHISTORY {args}");
    let message = Message::parse(line.as_bytes()).unwrap();
    let Request {
        selector, limit, ..
    } = chathistory::parse(&message, 100).unwrap();
    plan(selector, limit)
}

/// What the file gives for `plan` in `room`.
fn file(
    store: &Store,
    room: &str,
    plan: &Plan,
    cutoff_ms: i64,
) -> rusqlite::Result<Vec<StoredLine>> {
    store.query(&FileQuery {
        token: 0,
        room_key: room.to_string(),
        plan: plan.clone(),
        cutoff_ms,
    })
}

fn ids<T>(lines: &[T], id: impl Fn(&T) -> i64) -> Vec<i64> {
    lines.iter().map(id).collect()
}

/// `#a`'s requests: what they select, and whether a tail of its newest
/// four lines (5, 7, 9, 11) is sure to hold all of it.
const CASES: &[(&str, &[i64], bool)] = &[
    ("LATEST #a * 3", &[7, 9, 11], true),
    ("LATEST #a * 10", &[1, 3, 5, 7, 9, 11], false),
    ("LATEST #a msgid=5 10", &[7, 9, 11], true),
    ("LATEST #a msgid=3 10", &[5, 7, 9, 11], false),
    (
        "LATEST #a timestamp=1970-01-01T00:00:08.500Z 10",
        &[9, 11],
        true,
    ),
    ("BEFORE #a msgid=9 2", &[5, 7], true),
    ("BEFORE #a msgid=9 3", &[3, 5, 7], false),
    (
        "BEFORE #a timestamp=1970-01-01T00:00:09.000Z 2",
        &[5, 7],
        true,
    ),
    ("BEFORE #a msgid=5 10", &[1, 3], false),
    ("AFTER #a msgid=3 2", &[5, 7], false),
    ("AFTER #a msgid=7 10", &[9, 11], true),
    ("AFTER #a timestamp=1970-01-01T00:00:06.500Z 1", &[7], true),
    ("AFTER #a msgid=11 5", &[], true),
    ("AROUND #a msgid=7 4", &[3, 5, 7, 9], false),
    ("AROUND #a msgid=9 3", &[7, 9, 11], true),
    ("AROUND #a msgid=9 1", &[9], true),
    (
        "AROUND #a timestamp=1970-01-01T00:00:09.000Z 3",
        &[7, 9, 11],
        true,
    ),
    ("BETWEEN #a msgid=3 msgid=11 2", &[5, 7], false),
    ("BETWEEN #a msgid=11 msgid=3 2", &[7, 9], true),
    ("BETWEEN #a msgid=5 msgid=11 10", &[7, 9], true),
    (
        "BETWEEN #a timestamp=1970-01-01T00:00:04.000Z msgid=10 5",
        &[5, 7, 9],
        false,
    ),
    (
        "BETWEEN #a msgid=10 timestamp=1970-01-01T00:00:04.000Z 5",
        &[5, 7, 9],
        false,
    ),
];

#[test]
fn the_file_and_a_whole_tail_give_each_request_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("h.db")).unwrap();
    let mut writing = Tails::new(100, None, true, usize::MAX, 1);
    record(&mut writing);
    store.insert_batch(&writing.take_pending()).unwrap();
    let mut memory = Tails::in_memory(100);
    record(&mut memory);
    for &(args, want, _) in CASES {
        let plan = plan_of(args);
        let from_file = file(&store, "#a", &plan, i64::MIN).unwrap();
        assert_eq!(ids(&from_file, |l| l.id), want, "file: {args}");
        let from_memory = memory
            .query("#a", &plan, 0)
            .expect("memory is all there is");
        assert_eq!(ids(&from_memory, |l| l.id), want, "memory: {args}");
        let texts: Vec<&str> = from_file.iter().map(|l| l.line.as_str()).collect();
        let expected: Vec<String> = want.iter().map(|id| format!("ann: line {id}")).collect();
        assert_eq!(texts, expected, "{args}");
    }
    // A room nobody spoke in: nothing, from either.
    let plan = plan_of("LATEST #zz * 10");
    assert!(file(&store, "#zz", &plan, i64::MIN).unwrap().is_empty());
    assert_eq!(memory.query("#zz", &plan, 0), Some(Vec::new()));
}

#[test]
fn a_partial_tail_answers_only_what_it_surely_holds() {
    let mut tails = Tails::new(4, None, true, usize::MAX, 1);
    tails.room_created("#a");
    tails.room_created("#b");
    tails.take_loads();
    tails.loaded("#a", Vec::new());
    tails.loaded("#b", Vec::new());
    record(&mut tails);
    for &(args, want, covered) in CASES {
        let answer = tails.query("#a", &plan_of(args), 0);
        if covered {
            let lines = answer.unwrap_or_else(|| panic!("{args}: memory holds it"));
            assert_eq!(ids(&lines, |l| l.id), want, "{args}");
        } else {
            assert_eq!(answer, None, "{args}: the file must answer");
        }
    }
    // A room whose tail is not in memory, or still loading: the file.
    assert_eq!(tails.query("#gone", &plan_of("LATEST #gone * 1"), 0), None);
    tails.room_created("#new");
    assert!(tails.is_loading("#new"));
    assert_eq!(tails.query("#new", &plan_of("LATEST #new * 1"), 0), None);
    // A tail shorter than a tail keeps is the room's whole history.
    tails.loaded("#new", Vec::new());
    tails.record("#new", "cy", "cy: only", 99_000);
    let all = tails
        .query("#new", &plan_of("LATEST #new * 50"), 0)
        .unwrap();
    assert_eq!(ids(&all, |l| l.id), [13]);
}

#[test]
fn lines_past_retention_are_not_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("h.db")).unwrap();
    // Retention of 5 s at 12 s: lines at 7 s and later are kept.
    let mut tails = Tails::new(100, Some(5), true, usize::MAX, 1);
    record(&mut tails);
    store.insert_batch(&tails.take_pending()).unwrap();
    let plan = plan_of("LATEST #a * 10");
    let cutoff = tails.cutoff(12_000);
    assert_eq!(cutoff, 7_000);
    let from_file = file(&store, "#a", &plan, cutoff).unwrap();
    assert_eq!(ids(&from_file, |l| l.id), [7, 9, 11]);
    let mut memory = Tails::new(100, Some(5), false, usize::MAX, 1);
    record(&mut memory);
    let from_memory = memory.query("#a", &plan, 12_000).unwrap();
    assert_eq!(ids(&from_memory, |l| l.id), [7, 9, 11]);
}

/// Waits (with a bound) for the writer's completions until an answer to a
/// query is there.
fn wait_for_answers(
    link: &mut HistoryLink,
    tails: &mut Tails,
    completions: &mut Completions,
    poll: &mut mio::Poll,
) -> Vec<QueryAnswer> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut events = mio::Events::with_capacity(4);
    completions.want_wake(true);
    loop {
        while let Ok(done) = completions.try_recv() {
            if let Completion::History(ack) = done {
                link.on_ack(ack, tails);
            }
        }
        if link.has_answers() {
            return link.take_answers();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no answer from the writer");
        poll.poll(&mut events, Some(left)).unwrap();
    }
}

#[test]
fn the_writer_answers_from_the_file_after_the_lines_before_the_query() {
    let dir = tempfile::tempdir().unwrap();
    let config = HistoryConfig {
        file: Some(dir.path().join("h.db")),
        max_lines: 20,
        ..HistoryConfig::default()
    };
    let mut poll = mio::Poll::new().unwrap();
    let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
    let (mut completions, completer) = Completions::new(waker);
    let (mut link, mut tails) = HistoryLink::start(&config, completer).unwrap();
    tails.room_created("#a");
    link.submit(&mut tails);
    wait_for_loads(&mut link, &mut tails, &mut completions, &mut poll);
    // 30 lines: more than the tail keeps (20), none committed yet.
    let now = crate::chat::history::tails::unix_now_ms();
    for i in 0..30 {
        tails.record("#a", "ann", &format!("ann: {i}"), now + i);
    }
    let plan = plan_of("LATEST #a * 25");
    assert_eq!(tails.query("#a", &plan, now), None, "20 lines in memory");
    link.query(7, "#a", plan, tails.cutoff(now));
    // The query goes in the same batch as the lines: read after them.
    link.submit(&mut tails);
    let answers = wait_for_answers(&mut link, &mut tails, &mut completions, &mut poll);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].token, 7);
    let lines = answers[0].lines.as_ref().expect("the file was read");
    let texts: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
    let want: Vec<String> = (5..30).map(|i| format!("ann: {i}")).collect();
    assert_eq!(texts, want);
    link.finish();
    // With no writer, a query is answered at once, with no lines.
    link.query(8, "#a", plan_of("LATEST #a * 1"), i64::MIN);
    let answers = link.take_answers();
    assert_eq!((answers[0].token, answers[0].lines.clone()), (8, None));
}

/// Waits until every tail asked for has arrived.
fn wait_for_loads(
    link: &mut HistoryLink,
    tails: &mut Tails,
    completions: &mut Completions,
    poll: &mut mio::Poll,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut events = mio::Events::with_capacity(4);
    completions.want_wake(true);
    while !tails.loading_rooms().is_empty() {
        while let Ok(done) = completions.try_recv() {
            if let Completion::History(ack) = done {
                link.on_ack(ack, tails);
            }
        }
        if tails.loading_rooms().is_empty() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the tail never came");
        poll.poll(&mut events, Some(left)).unwrap();
    }
}
