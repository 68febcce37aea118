//! `draft/chathistory`: every subcommand with msgid and timestamp
//! references, the reply in its `chathistory` batch, the `FAIL`s, and
//! lines older than the tails read from a real history file.

use crate::client::{irc_addr, start, start_with, Irc, SERVER};
use crate::common::{Client, Lines};
use crate::{split_tags, tag, with_caps};
use loopchat::chat::history::HistoryConfig;

const CAPS: &str = "batch server-time message-tags draft/chathistory";

/// A line client that said `count` lines (`line 0`, `line 1`, …) in
/// `#rust`; returns it and each line's id, from its own tagged echoes.
fn said_lines(server: &loopchat::RunningServer, count: usize) -> (Client, Vec<u64>) {
    let mut line = Client::named(server.addr(), "carol");
    line.send(":join #rust");
    line.expect("* carol joined #rust");
    line.send(":tags on");
    let on = line.line();
    assert!(on.ends_with(" * tags on"), "{on}");
    let mut ids = Vec::new();
    for i in 0..count {
        line.send(&format!("line {i}"));
        let echo = line.line();
        let (tags, text) = loopchat::protocol::tags::parse_server_line(&echo).unwrap();
        assert_eq!(text, format!("carol: line {i}"));
        ids.push(tags.id.unwrap());
    }
    (line, ids)
}

/// Sends `CHATHISTORY <args>` and reads the batch: returns the texts of
/// its messages (checking each carries the batch, a time and its msgid),
/// and their msgids.
fn history(irc: &mut Irc, args: &str) -> (Vec<String>, Vec<u64>) {
    irc.send(&format!("CHATHISTORY {args}"));
    let open = irc.line();
    let (tags, rest) = split_tags(&open);
    assert!(tags.is_empty(), "{open}");
    let id = rest
        .strip_prefix(&format!(":{SERVER} BATCH +"))
        .and_then(|rest| rest.strip_suffix(" chathistory #rust"))
        .unwrap_or_else(|| panic!("a chathistory batch, not {open}"))
        .to_string();
    let mut texts = Vec::new();
    let mut ids = Vec::new();
    loop {
        let line = irc.line();
        if line == format!(":{SERVER} BATCH -{id}") {
            return (texts, ids);
        }
        assert_eq!(tag(&line, "batch").as_deref(), Some(id.as_str()), "{line}");
        assert!(tag(&line, "time").is_some(), "{line}");
        ids.push(tag(&line, "msgid").expect("msgid").parse().unwrap());
        let message = split_tags(&line).1;
        let text = message
            .strip_prefix(&format!(":carol!carol@{SERVER} PRIVMSG #rust :"))
            .unwrap_or_else(|| panic!("{line}"));
        texts.push(text.to_string());
    }
}

fn texts(numbers: impl IntoIterator<Item = usize>) -> Vec<String> {
    numbers.into_iter().map(|i| format!("line {i}")).collect()
}

/// Every subcommand, by msgid and by timestamp, from the tails in memory.
#[test]
fn every_subcommand_answers_in_a_chathistory_batch() {
    let server = start();
    let (_carol, ids) = said_lines(&server, 10);
    let mut irc = with_caps(irc_addr(&server), "reader", CAPS);
    irc.ask("JOIN #rust");
    let id = |i: usize| ids[i];
    let cases: Vec<(String, Vec<usize>)> = vec![
        ("LATEST #rust * 3".into(), vec![7, 8, 9]),
        (format!("LATEST #rust msgid={} 100", id(6)), vec![7, 8, 9]),
        (format!("BEFORE #rust msgid={} 2", id(5)), vec![3, 4]),
        (format!("AFTER #rust msgid={} 3", id(5)), vec![6, 7, 8]),
        (format!("AROUND #rust msgid={} 3", id(5)), vec![4, 5, 6]),
        (
            format!("BETWEEN #rust msgid={} msgid={} 10", id(2), id(6)),
            vec![3, 4, 5],
        ),
        (
            format!("BETWEEN #rust msgid={} msgid={} 2", id(9), id(2)),
            vec![7, 8],
        ),
        ("AFTER #rust msgid=999999 5".into(), vec![]),
    ];
    for (args, want) in cases {
        let (got, got_ids) = history(&mut irc, &args);
        assert_eq!(got, texts(want.iter().copied()), "{args}");
        let want_ids: Vec<u64> = want.iter().map(|&i| id(i)).collect();
        assert_eq!(got_ids, want_ids, "{args}");
    }
    // By time: each line's time (several may share a millisecond), and
    // line 5's as the reference; what each request must select follows
    // from the times.
    irc.send("CHATHISTORY LATEST #rust * 10");
    let all = irc.until_batch_end();
    let times: Vec<String> = all[1..11]
        .iter()
        .map(|line| tag(line, "time").unwrap())
        .collect();
    let at = times[5].clone();
    let before_t: Vec<usize> = (0..10).filter(|&i| times[i] < at).collect();
    let after_t: Vec<usize> = (0..10).filter(|&i| times[i] > at).collect();
    let (before, _) = history(&mut irc, &format!("BEFORE #rust timestamp={at} 2"));
    let want = &before_t[before_t.len().saturating_sub(2)..];
    assert_eq!(before, texts(want.iter().copied()));
    let (after, _) = history(&mut irc, &format!("AFTER #rust timestamp={at} 100"));
    assert_eq!(after, texts(after_t.iter().copied()));
    let (latest, _) = history(&mut irc, &format!("LATEST #rust timestamp={at} 100"));
    assert_eq!(
        latest, after,
        "LATEST after a time, with room for all, is AFTER it"
    );
    let (around, _) = history(&mut irc, &format!("AROUND #rust timestamp={at} 100"));
    assert!(
        around.contains(&"line 5".to_string()),
        "the moment's own lines: {around:?}"
    );
}

/// Requests the server cannot answer: the specification's `FAIL`s.
#[test]
fn bad_requests_are_fails() {
    let server = start();
    let (_carol, _) = said_lines(&server, 1);
    let mut irc = with_caps(irc_addr(&server), "reader", CAPS);
    let fail = |rest: &str| format!(":{SERVER} FAIL CHATHISTORY {rest}");
    assert_eq!(
        irc.ask("CHATHISTORY LATEST #rust * 10"),
        [fail(
            "INVALID_TARGET LATEST #rust :Messages could not be retrieved"
        )],
        "not a member"
    );
    irc.ask("JOIN #rust");
    assert_eq!(
        irc.ask("CHATHISTORY LATEST #rust"),
        [fail("NEED_MORE_PARAMS LATEST :Missing parameters")]
    );
    assert_eq!(
        irc.ask("CHATHISTORY BEFORE #rust msgid=x 10"),
        [fail("INVALID_PARAMS BEFORE msgid=x :Invalid parameters")]
    );
    assert_eq!(
        irc.ask("CHATHISTORY LATEST #rust * 0"),
        [fail("INVALID_PARAMS LATEST 0 :Invalid parameters")]
    );
    assert_eq!(
        irc.ask("CHATHISTORY TARGETS * * 10"),
        [fail("UNKNOWN_COMMAND TARGETS :Unknown command")]
    );
    assert_eq!(
        irc.ask("CHATHISTORY LATEST #nowhere * 10"),
        [fail(
            "INVALID_TARGET LATEST #nowhere :Messages could not be retrieved"
        )]
    );
}

/// Lines older than the room's tail in memory (20 lines here) come from
/// a real history file, read by the writer thread; the answer is in order
/// and complete.
#[test]
fn older_lines_come_from_the_history_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(|config| {
        config.history = HistoryConfig {
            file: Some(dir.path().join("history.db")),
            max_lines: 20,
            ..HistoryConfig::default()
        }
    });
    let (_carol, ids) = said_lines(&server, 30);
    let mut irc = with_caps(irc_addr(&server), "reader", CAPS);
    irc.ask("JOIN #rust");
    // 005 says CHATHISTORY=20: a larger limit is lowered to it.
    let (latest, got_ids) = history(&mut irc, "LATEST #rust * 100");
    assert_eq!(latest, texts(10..30));
    assert_eq!(got_ids, ids[10..30]);
    let (before, _) = history(&mut irc, &format!("BEFORE #rust msgid={} 5", ids[12]));
    assert_eq!(before, texts(7..12), "older than the tail: from the file");
    let (around, _) = history(&mut irc, &format!("AROUND #rust msgid={} 4", ids[2]));
    assert_eq!(around, texts(0..4));
    let (between, _) = history(
        &mut irc,
        &format!("BETWEEN #rust msgid={} msgid={} 20", ids[0], ids[29]),
    );
    assert_eq!(between, texts(1..21));
}

/// Without `batch` the lines come bare of it, each still a `PRIVMSG`.
#[test]
fn without_batch_the_lines_come_alone() {
    let server = start();
    let (_carol, _) = said_lines(&server, 2);
    let mut irc = with_caps(irc_addr(&server), "plain", "draft/chathistory");
    irc.ask("JOIN #rust");
    assert_eq!(
        irc.ask("CHATHISTORY LATEST #rust * 5"),
        [
            format!(":carol!carol@{SERVER} PRIVMSG #rust :line 0"),
            format!(":carol!carol@{SERVER} PRIVMSG #rust :line 1"),
        ]
    );
}

trait UntilBatchEnd {
    fn until_batch_end(&mut self) -> Vec<String>;
}

impl UntilBatchEnd for Irc {
    /// The lines up to and with the next `BATCH -…`.
    fn until_batch_end(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let end = line.contains(" BATCH -");
            lines.push(line);
            if end {
                return lines;
            }
        }
    }
}
