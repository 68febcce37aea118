//! `:history` and the history file, against real servers over real sockets:
//! in-process servers for the format, and the real binary as a child
//! process for restarts, `kill -9` and start-up errors. Every history file
//! lives in a temporary directory.

mod common;
mod ws_support;

use common::*;
use loopchat::chat::history::HistoryConfig;
use loopchat::policy::limits::FloodLimit;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Sends `line` and returns every line answered before a pong.
fn ask(client: &mut Client, line: &str) -> Vec<String> {
    client.send(line);
    client.sync()
}

/// The `:history` answer without its `[history TIME] ` prefixes; checks the
/// header's count and each prefix's shape on the way.
fn history(client: &mut Client, command: &str) -> (String, Vec<String>) {
    let mut lines = ask(client, command);
    assert!(!lines.is_empty(), "no answer to {command}");
    let header = lines.remove(0);
    let count: usize = header
        .rsplit_once(": ")
        .and_then(|(_, count)| count.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("header {header:?}"));
    let bodies: Vec<String> = lines
        .iter()
        .take(count)
        .map(|line| strip_time(line).to_string())
        .collect();
    assert_eq!(bodies.len(), count, "{header:?} then {lines:?}");
    (header, bodies)
}

/// `[history YYYY-MM-DDTHH:MM:SSZ] rest` -> `rest`, checking the time is
/// well formed and within a minute of now.
fn strip_time(line: &str) -> &str {
    let rest = line
        .strip_prefix("[history ")
        .unwrap_or_else(|| panic!("not a history line: {line:?}"));
    let (time, body) = rest.split_once("] ").expect("time then line");
    let b = time.as_bytes();
    assert_eq!(b.len(), 20, "{time:?}");
    for (i, &c) in b.iter().enumerate() {
        let expected_digit = !matches!(i, 4 | 7 | 10 | 13 | 16 | 19);
        assert_eq!(c.is_ascii_digit(), expected_digit, "{time:?}");
    }
    assert_eq!(
        (b[4], b[7], b[10], b[13], b[16], b[19]),
        (b'-', b'-', b'T', b':', b':', b'Z')
    );
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let now = now.as_secs() as i64;
    let shown = utc_seconds(time);
    assert!((now - shown).abs() < 60, "{time:?} is not now");
    body
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` back to Unix seconds (days from civil).
fn utc_seconds(time: &str) -> i64 {
    let n = |range: std::ops::Range<usize>| time[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// Two named clients in `#lobby`, every join and rename line drained.
fn pair(addr: std::net::SocketAddr) -> (Client, Client) {
    let mut alice = Client::named(addr, "alice");
    let mut bob = Client::named(addr, "bob");
    alice.sync();
    bob.sync();
    (alice, bob)
}

fn with_file(path: &Path) -> impl FnOnce(&mut loopchat::Config) + '_ {
    move |config| config.history.file = Some(path.to_path_buf())
}

#[test]
fn default_is_twenty_lines_oldest_first_chat_and_me_as_delivered() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    for i in 1..=24 {
        alice.send(&format!("line {i}"));
    }
    alice.send(":me waves \x1b[2J");
    alice.send("::colon");
    bob.skip_until("alice: :colon");
    let (header, lines) = history(&mut bob, ":history");
    assert_eq!(header, "* history #lobby: 20 lines");
    let mut expected: Vec<String> = (7..=24).map(|i| format!("alice: line {i}")).collect();
    expected.push("* alice waves \u{fffd}[2J".into());
    expected.push("alice: :colon".into());
    assert_eq!(lines, expected);
    // The sender sees the same history, its own lines included.
    assert_eq!(history(&mut alice, ":history").1, expected);
}

#[test]
fn explicit_n_clamping_and_one_line() {
    let server = start_with(|config| config.history.max_lines = 30);
    let (mut alice, mut bob) = pair(server.addr());
    for i in 1..=40 {
        alice.send(&format!("m{i}"));
    }
    bob.skip_until("alice: m40");
    let (header, lines) = history(&mut bob, ":history 3");
    assert_eq!(header, "* history #lobby: 3 lines");
    assert_eq!(lines, ["alice: m38", "alice: m39", "alice: m40"]);
    let (header, lines) = history(&mut bob, ":HISTORY 1");
    assert_eq!(header, "* history #lobby: 1 line");
    assert_eq!(lines, ["alice: m40"]);
    assert_eq!(
        history(&mut bob, ":history 0002").1,
        ["alice: m39", "alice: m40"]
    );
    let (header, lines) = history(&mut bob, ":history 31");
    assert_eq!(
        header, "* history #lobby: 30 lines",
        "clamped to the maximum"
    );
    assert_eq!(lines[0], "alice: m11");
    let huge = format!(":history {}", "9".repeat(200));
    assert_eq!(history(&mut bob, &huge).0, "* history #lobby: 30 lines");
    // A trailing space is no argument: the default.
    assert_eq!(
        history(&mut bob, ":history ").0,
        "* history #lobby: 20 lines"
    );
}

#[test]
fn a_maximum_below_twenty_is_raised_to_twenty() {
    let server = start_with(|config| config.history.max_lines = 5);
    let (mut alice, mut bob) = pair(server.addr());
    for i in 1..=25 {
        alice.send(&format!("m{i}"));
    }
    bob.skip_until("alice: m25");
    assert_eq!(
        history(&mut bob, ":history 50").0,
        "* history #lobby: 20 lines"
    );
}

#[test]
fn bad_arguments_get_the_usage() {
    let server = start();
    let mut alice = Client::connect(server.addr());
    for bad in [
        "0", "00", "-1", "+3", "1.5", "abc", "5 6", " 5", "٣", "0x10",
    ] {
        let answer = ask(&mut alice, &format!(":history {bad}"));
        assert_eq!(answer, ["! usage: :history [N]"], "{bad:?}");
    }
}

#[test]
fn an_empty_room_has_zero_lines_and_rooms_keep_their_spelling() {
    let server = start();
    let mut alice = Client::named(server.addr(), "alice");
    alice.send(":join RustLang");
    alice.skip_until("* alice joined #RustLang");
    assert_eq!(
        ask(&mut alice, ":history"),
        ["* history #RustLang: 0 lines"]
    );
}

#[test]
fn pms_joins_leaves_renames_commands_and_errors_are_never_stored() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send("kept 1");
    alice.send(":pm bob secret");
    alice.send(":nick alicia");
    alice.send(":join side");
    alice.send(":join lobby");
    alice.send(":users");
    alice.send(":rooms");
    alice.send(":ping tok");
    alice.send(":bogus");
    alice.send(":nick");
    alice.send(":me kept 2");
    alice.send(":quit bye all");
    bob.skip_until("* alicia left #lobby (bye all)");
    let (header, lines) = history(&mut bob, ":history 100");
    assert_eq!(header, "* history #lobby: 2 lines");
    assert_eq!(lines, ["alice: kept 1", "* alicia kept 2"]);
}

#[test]
fn history_is_per_room_and_a_recreated_room_shows_its_earlier_lines() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send(":join Rust");
    alice.skip_until("* alice joined #Rust");
    alice.send("first in rust");
    alice.send(":me leaves");
    alice.send(":part");
    alice.skip_until("* current room #lobby");
    // #Rust is empty now and gone; joining it again makes a new room.
    bob.send(":join rUST");
    bob.skip_until("* bob joined #rUST");
    let (header, lines) = history(&mut bob, ":history");
    assert_eq!(header, "* history #rUST: 2 lines");
    assert_eq!(lines, ["alice: first in rust", "* alice leaves"]);
    assert_eq!(ask(&mut alice, ":history"), ["* history #lobby: 0 lines"]);
}

#[test]
fn history_needs_authentication_first() {
    let server = start_with(|config| config.password = Some("pw".into()));
    let mut alice = Client::connect_raw(server.addr());
    alice.expect("* password required");
    alice.send(":history");
    alice.expect("! authenticate first: :auth PASSWORD");
}

/// The history file as another program sees it.
fn stored_lines(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("open the history file");
    let mut stmt = conn
        .prepare("SELECT line FROM lines ORDER BY id")
        .expect("query");
    let rows = stmt.query_map([], |row| row.get(0)).expect("rows");
    rows.map(Result::unwrap).collect()
}

#[test]
fn an_in_process_server_writes_its_file_and_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    {
        let server = start_with(with_file(&path));
        let (mut alice, bob) = pair(server.addr());
        alice.send("persisted");
        alice.send(":pm bob not stored");
        alice.sync();
        // The pong came after the commit: the line is on disk now.
        assert_eq!(stored_lines(&path), ["alice: persisted"]);
        drop((alice, bob));
        server.stop().unwrap();
    }
    let server = start_with(with_file(&path));
    let mut carol = Client::connect(server.addr());
    assert_eq!(history(&mut carol, ":history").1, ["alice: persisted"]);
}

#[test]
fn a_write_error_while_running_is_told_by_history_and_chat_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let server = start_with(with_file(&path));
    let (mut alice, mut bob) = pair(server.addr());
    alice.send("saved");
    alice.sync();
    // Another program makes every further write fail, as a full disk would.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER full BEFORE INSERT ON lines
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    alice.send("not saved");
    alice.sync();
    bob.skip_until("alice: not saved");
    let answer = ask(&mut bob, ":history");
    assert_eq!(
        answer,
        [
            "* history #lobby: 2 lines",
            answer[1].as_str(),
            answer[2].as_str(),
            "! history incomplete: 1 line of #lobby could not be saved to disk and will be \
             missing after a restart",
        ]
    );
    assert_eq!(strip_time(&answer[2]), "alice: not saved");
    assert_eq!(stored_lines(&path), ["alice: saved"]);
    // Chat goes on.
    alice.send("still chatting");
    bob.expect("alice: still chatting");
}

#[test]
fn a_stalled_writer_slows_senders_but_loses_nothing_and_pings_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let server = start_with(|config| {
        config.flood = FloodLimit::OFF;
        config.history = HistoryConfig {
            file: Some(path.clone()),
            max_in_flight: 50,
            ..HistoryConfig::default()
        }
    });
    let (mut alice, mut bob) = pair(server.addr());
    let mut carol = Client::connect(server.addr());
    carol.sync();
    bob.sync();
    alice.sync();
    // Another program holds the write lock: the writer waits (a slow disk).
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE;").unwrap();
    let chunk =
        |from: usize| -> String { (from..from + 1000).map(|i| format!("f{i}\n")).collect() };
    alice.send_bytes(chunk(0).as_bytes());
    for i in 0..1000 {
        bob.expect(&format!("alice: f{i}"));
    }
    // More than 50 lines wait for the writer: Alice is read no further...
    alice.send_bytes(chunk(1000).as_bytes());
    // ...while a client with nothing uncommitted is served.
    carol.send(":ping still here");
    carol.skip_until("* pong still here");
    bob.assert_quiet();
    blocker.execute_batch("COMMIT;").unwrap();
    for i in 1000..2000 {
        bob.expect(&format!("alice: f{i}"));
    }
    alice.sync();
    let stored = stored_lines(&path);
    assert_eq!(stored.len(), 2000);
    assert_eq!(stored[1999], "alice: f1999");
}

// ------------------------------------------------- the real binary

/// Starts the binary with its history in `path`.
fn binary(path: &Path, extra: &[&str]) -> ServerProcess {
    let file = path.to_str().expect("utf-8 path");
    let mut flags = vec!["--history-file", file];
    flags.extend_from_slice(extra);
    ServerProcess::start(&flags, None)
}

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    (dir, path)
}

#[test]
fn history_survives_a_graceful_restart() {
    let (_dir, path) = temp_db();
    let server = binary(&path, &[]);
    let (mut alice, mut bob) = pair(server.addr);
    alice.send("before restart");
    alice.send(":me is here");
    bob.skip_until("* alice is here");
    let before = ask(&mut bob, ":history");
    drop((alice, bob));
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    let server = binary(&path, &[]);
    let mut carol = Client::connect(server.addr);
    let after = ask(&mut carol, ":history");
    assert_eq!(after, before, "same lines, same times");
    assert_eq!(after.len(), 3);
}

#[test]
fn lines_acknowledged_by_a_ping_survive_kill_9() {
    let (_dir, path) = temp_db();
    let server = binary(&path, &NO_FLOOD_CONTROL);
    let (mut alice, mut bob) = pair(server.addr);
    let burst: String = (0..500).map(|i| format!("burst {i}\n")).collect();
    alice.send_bytes(burst.as_bytes());
    alice.send("last words");
    // The pong is the acknowledgement: everything before it is committed.
    alice.sync();
    bob.sync();
    server.signal(libc::SIGKILL);
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(!status.success());

    let server = binary(&path, &["--history-max", "1000"]);
    let mut carol = Client::connect(server.addr);
    let (header, lines) = history(&mut carol, ":history 1000");
    assert_eq!(header, "* history #lobby: 501 lines");
    assert_eq!(lines[0], "alice: burst 0");
    assert_eq!(lines[499], "alice: burst 499");
    assert_eq!(lines[500], "alice: last words");
}

#[test]
fn a_history_file_that_cannot_be_opened_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [dir.path().join("no/such/dir/h.db"), {
        let foreign = dir.path().join("foreign.db");
        std::fs::write(
            &foreign,
            b"this is not a database at all, just text\n".repeat(200),
        )
        .unwrap();
        foreign
    }];
    for path in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"))
            .args([
                "--addr",
                "127.0.0.1:0",
                "--irc-addr",
                "off",
                "--history-file",
            ])
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run the binary");
        assert!(!output.status.success(), "{path:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("cannot use history file") && stderr.contains(path.to_str().unwrap()),
            "{stderr}"
        );
        assert!(!stderr.contains("listening on"), "{stderr}");
    }
}

#[test]
fn memory_only_history_writes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"));
    command
        .current_dir(dir.path())
        .args(["--addr", "127.0.0.1:0", "--history-file", ":memory:"])
        .args(["--irc-addr", "off"])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut log = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let addr = loop {
        let line = log.next().expect("a log line").unwrap();
        if let Some((_, rest)) = line.split_once("listening on ") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let (mut alice, mut bob) = pair(addr);
    alice.send("in memory");
    bob.expect("alice: in memory");
    assert_eq!(history(&mut bob, ":history").1, ["alice: in memory"]);
    let _ = child.kill();
    let _ = child.wait();
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(files.is_empty(), "{files:?}");
}

#[test]
fn a_reply_waits_until_the_senders_earlier_lines_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let server = start_with(with_file(&path));
    let (mut alice, mut bob) = pair(server.addr());
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE;").unwrap();
    alice.send("must be on disk before the pong");
    alice.send(":ping ack");
    // Others get the line at once, and the server answers them.
    bob.expect("alice: must be on disk before the pong");
    bob.sync();
    // Alice's pong is held while her line cannot be committed.
    alice
        .writer
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let early = alice.try_line();
    assert!(early.is_err(), "pong before the commit: {early:?}");
    alice.writer.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    blocker.execute_batch("COMMIT;").unwrap();
    alice.expect("* pong ack");
    assert_eq!(
        stored_lines(&path),
        ["alice: must be on disk before the pong"]
    );
}

#[test]
fn held_output_counts_toward_the_global_output_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let server = start_with(|config| {
        config.history.file = Some(path.clone());
        config.flood = FloodLimit::OFF;
        // Far above what is queued for any one client here...
        config.max_outbuf_bytes = 8 * 1024 * 1024;
        // ...but not for all of them together.
        config.max_output_total_bytes = 256 * 1024;
    });
    let (mut alice, mut bob) = pair(server.addr());
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE;").unwrap();
    // Alice's pong, and everything for her after it, is held until her
    // line is committed, which the blocker prevents.
    alice.send("waiting for the disk");
    alice.send(":ping held");
    bob.expect("alice: waiting for the disk");
    // About 400 KB of Bob's lines for Alice, all held: past the global
    // bound, while her socket queue stays empty.
    let long = "y".repeat(400);
    let lines: String = (0..1000).map(|i| format!("{i} {long}\n")).collect();
    bob.send_bytes(lines.as_bytes());
    bob.skip_until("* alice left #lobby (too slow)");
    blocker.execute_batch("COMMIT;").unwrap();
    // Bob's lines are all kept, and the server goes on.
    assert_eq!(ask(&mut bob, ":users"), ["* users in #lobby: bob"]);
    wait_for(Duration::from_secs(10), || {
        stored_lines(&path).len() == 1001
    });
}

#[test]
fn the_documented_query_lists_a_rooms_last_lines_with_debians_sqlite3() {
    if std::process::Command::new("sqlite3")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install sqlite3 (.ci/run does)"
        );
        eprintln!("skipped: no sqlite3 command (apt-get install sqlite3)");
        return;
    }
    let (_dir, path) = temp_db();
    let server = binary(&path, &[]);
    let (mut alice, mut bob) = pair(server.addr);
    alice.send(":join Rust");
    alice.skip_until("* alice joined #Rust");
    for i in 1..=25 {
        alice.send(&format!("r{i}"));
    }
    alice.send(":me is done");
    alice.sync();
    bob.send("lobby line");
    bob.sync();
    alice.skip_until("[#lobby] bob: lobby line"); // alice is in #lobby too
                                                  // The query from docs/history.md, word for word.
    let query = "SELECT * FROM (
  SELECT id, strftime('%Y-%m-%dT%H:%M:%SZ', ts / 1000, 'unixepoch') AS time, line
  FROM lines WHERE room = (SELECT id FROM rooms WHERE room_key = lower('#Rust'))
  ORDER BY id DESC LIMIT 20
) ORDER BY id";
    let doc = include_str!("../docs/history.md");
    assert!(doc.contains(query), "docs/history.md query changed");
    let output = std::process::Command::new("sqlite3")
        .arg(&path)
        .arg(query)
        .output()
        .expect("run sqlite3");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 20, "{text}");
    let last = rows[19].splitn(3, '|').collect::<Vec<_>>();
    assert_eq!(last[2], "* alice is done");
    utc_seconds(last[1]);
    assert!(rows[0].ends_with("|alice: r7"), "{text}");
    // The same lines as :history, times included.
    let history_lines = ask(&mut alice, ":history");
    for (row, shown) in rows.iter().zip(&history_lines[1..]) {
        let fields: Vec<&str> = row.splitn(3, '|').collect();
        assert_eq!(*shown, format!("[history {}] {}", fields[1], fields[2]));
    }
}

/// A server whose memory drops the tail of a room that is gone at once,
/// with alice and bob in `#lobby` and `#a` gone after alice said the
/// `old` lines there (committed): the next `:join a` reads its tail from
/// the file.
fn a_dropped_tail(path: &Path, old: &[&str]) -> (loopchat::RunningServer, Client, Client) {
    let server = start_with(|config| {
        config.history.file = Some(path.to_path_buf());
        config.history.max_memory_bytes = 1;
    });
    let (mut alice, bob) = pair(server.addr());
    alice.send(":join a");
    alice.skip_until("* alice joined #a");
    for line in old {
        alice.send(line);
    }
    // Committed, and #a's first (empty) tail read: #a is not loading when
    // it empties, so its tail is dropped then.
    alice.sync();
    alice.send(":part");
    alice.skip_until("* current room #lobby");
    (server, alice, bob)
}

/// The `:history` answer up to `* pong after`: its header and bodies.
fn answer_until_pong(client: &mut Client) -> (String, Vec<String>) {
    let mut answer = client.skip_until("* pong after");
    let header = answer.remove(0);
    let bodies = answer.iter().map(|l| strip_time(l).to_string()).collect();
    (header, bodies)
}

#[test]
fn a_dropped_tail_is_read_back_when_its_room_is_created_again() {
    let dir = tempfile::tempdir().unwrap();
    let old = ["old 1", "old 2", "old 3"];
    let (_server, _alice, mut bob) = a_dropped_tail(&dir.path().join("h.db"), &old);
    // Join, speak, ask and ping in one write: the answer comes in order,
    // with the lines read back from the file and the new one once.
    bob.send_bytes(b":join A\nnew line\n:history\n:ping after\n");
    bob.expect("* bob joined #A");
    let (header, bodies) = answer_until_pong(&mut bob);
    assert_eq!(header, "* history #A: 4 lines");
    assert_eq!(
        bodies,
        [
            "alice: old 1",
            "alice: old 2",
            "alice: old 3",
            "bob: new line"
        ]
    );
}

/// A `:history` that waits for its room's tail answers with what the room
/// had when it was asked: a line said right after it goes to the members
/// live, not into the answer too (a client without ids would show it
/// twice; the full-screen client showed its own line twice).
#[test]
fn a_history_that_waits_for_the_file_answers_as_of_when_it_was_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, _alice, mut bob) = a_dropped_tail(&dir.path().join("h.db"), &["old"]);
    // Bob's :history waits for the file, and his next line is accepted
    // before the file answers.
    bob.send_bytes(b":join a\nbefore\n:history\nafter\n:ping after\n");
    bob.expect("* bob joined #a");
    let (header, bodies) = answer_until_pong(&mut bob);
    assert_eq!(header, "* history #a: 2 lines");
    assert_eq!(bodies, ["alice: old", "bob: before"]);
    // Asked again, it has them all.
    let (header, bodies) = history(&mut bob, ":history");
    assert_eq!(header, "* history #a: 3 lines");
    assert_eq!(bodies, ["alice: old", "bob: before", "bob: after"]);
}

#[test]
fn rooms_other_than_the_lobby_keep_their_history_across_a_restart() {
    let (_dir, path) = temp_db();
    let server = binary(&path, &[]);
    let mut alice = Client::named(server.addr, "alice");
    alice.send(":join Rust");
    alice.skip_until("* alice joined #Rust");
    alice.send("before the restart");
    alice.sync();
    drop(alice);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    let server = binary(&path, &[]);
    let mut carol = Client::connect(server.addr);
    carol.send_bytes(b":join rust\n:history\n");
    carol.expect(&format!("* {} joined #rust", carol.nick));
    carol.expect("* history #rust: 1 line");
    assert_eq!(strip_time(&carol.line()), "alice: before the restart");
}

#[test]
fn in_memory_only_a_dropped_tail_is_reported_not_hidden() {
    let server = start_with(|config| config.history.max_memory_bytes = 1);
    let (mut alice, mut bob) = pair(server.addr());
    alice.send(":join a");
    alice.skip_until("* alice joined #a");
    alice.send("gone 1");
    alice.send("gone 2");
    alice.send(":part");
    alice.skip_until("* current room #lobby");
    bob.send(":join a");
    bob.skip_until("* bob joined #a");
    assert_eq!(
        ask(&mut bob, ":history"),
        [
            "* history #a: 0 lines",
            "! history incomplete: 2 lines of #a were dropped from memory (history is kept in \
             memory only)"
        ]
    );
}

#[test]
fn history_asked_while_its_tail_loads_is_answered_before_the_goodbye() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(with_file(&dir.path().join("h.db")));
    let mut alice = Client::named(server.addr(), "alice");
    // A room's tail is read from the file when the room is created.
    alice.send_bytes(b":join fresh\n:history\n:quit\n");
    alice.expect("* alice joined #fresh");
    alice.expect("* history #fresh: 0 lines");
    alice.expect("* bye");
    alice.expect_closed();
}

#[test]
fn waiting_history_answers_count_toward_the_output_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let server = start_with(|config| {
        config.history.file = Some(path.clone());
        config.history.max_memory_bytes = 1;
        config.max_outbuf_bytes = 16 * 1024;
        config.flood = FloodLimit::OFF;
    });
    let (mut alice, mut bob) = pair(server.addr());
    alice.send(":join big");
    alice.skip_until("* alice joined #big");
    let long = "x".repeat(300);
    for _ in 0..30 {
        alice.send(&long);
    }
    // Her lines committed, and so #big's (empty) tail read before them.
    alice.sync();
    alice.send(":part");
    alice.skip_until("* current room #lobby");
    // #big's tail was dropped; asking for it 100 times while it loads
    // would queue about 1 MB of answers for a client that reads nothing.
    let asks = ":history 100\n".repeat(100);
    bob.send_bytes(format!(":join big\n{asks}").as_bytes());
    let mut lines = 0;
    while let Ok(Some(_)) = bob.try_line() {
        lines += 1;
        assert!(lines < 20_000, "never cut off");
    }
    assert!(
        lines < 100 * 31,
        "cut off before every answer: {lines} lines"
    );
    // Bob kept #lobby (version 1.2): its room hears why he went.
    alice.expect("* bob left #lobby (too slow)");
    // Bob is gone from the chat; the server goes on.
    assert_eq!(ask(&mut alice, ":rooms"), ["* rooms: #lobby (1)"]);
}

#[test]
fn over_websocket_each_history_line_is_a_message_and_the_close_comes_after_them() {
    use ws_support::{tung_send, tung_text, tung_welcome, tungstenite_client};
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(with_file(&dir.path().join("h.db")));
    let mut alice = Client::named(server.addr(), "alice");
    alice.send("one");
    alice.send(":me two");
    alice.sync();
    let mut ws = tungstenite_client(server.web_addr().expect("web address"));
    let nick = tung_welcome(&mut ws);
    // A chat line, then commands whose answers wait: for its commit, then
    // for a new room's tail; then :quit, whose close frame comes last.
    for text in ["mine", ":history", ":join fresh", ":history", ":quit"] {
        tung_send(&mut ws, text);
    }
    assert_eq!(tung_text(&mut ws), "* history #lobby: 3 lines");
    let lines: Vec<String> = (0..3)
        .map(|_| strip_time(&tung_text(&mut ws)).to_string())
        .collect();
    assert_eq!(
        lines,
        ["alice: one", "* alice two", &format!("{nick}: mine")]
    );
    assert_eq!(tung_text(&mut ws), format!("* {nick} joined #fresh"));
    assert_eq!(tung_text(&mut ws), "* history #fresh: 0 lines");
    assert_eq!(tung_text(&mut ws), "* bye");
    match ws.read().expect("the close frame") {
        tungstenite::Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected close 1000, got {other:?}"),
    }
}

// ------------------------------------------------- the writer's priority

/// The writer threads of server `pid`: (thread name, scheduling policy).
fn writer_threads(pid: u32) -> Vec<(String, u32)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap();
        let name = &stat[stat.find('(').unwrap() + 1..stat.rfind(')').unwrap()];
        // Field 41 of stat is the policy; fields after the name start at 3.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        if name.starts_with("history") {
            threads.push((name.to_string(), fields[41 - 3].parse().unwrap()));
        }
    }
    threads.sort();
    threads
}

/// Pins every thread of process `pid` (or, with 0, the calling thread) to `cpu`.
fn pin(pid: u32, cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and
    // sched_setaffinity get valid pointers.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let tids: Vec<i32> = if pid == 0 {
            vec![0]
        } else {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .unwrap()
                .map(|task| task.unwrap().file_name().to_str().unwrap().parse().unwrap())
                .collect()
        };
        for tid in tids {
            let size = std::mem::size_of::<libc::cpu_set_t>();
            assert_eq!(libc::sched_setaffinity(tid, size, &set), 0, "pin {tid}");
        }
    }
}

/// The first CPU this process may run on.
fn some_cpu() -> usize {
    // SAFETY: sched_getaffinity fills the zeroed set it is given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        assert_eq!(libc::sched_getaffinity(0, size, &mut set), 0);
        (0..libc::CPU_SETSIZE as usize)
            .find(|&cpu| libc::CPU_ISSET(cpu, &set))
            .unwrap()
    }
}

#[test]
fn the_writer_runs_at_idle_priority_unless_told_otherwise() {
    let (_dir, path) = temp_db();
    let server = binary(&path, &[]);
    // Threads name themselves once they run.
    wait_for(READ_TIMEOUT, || writer_threads(server.pid()).len() == 2);
    // SCHED_IDLE is 5; the stand-in waits at normal priority (0).
    assert_eq!(
        writer_threads(server.pid()),
        [
            ("history-idle".to_string(), 5),
            ("history-normal".to_string(), 0)
        ]
    );
    let (_dir, path) = temp_db();
    let server = binary(&path, &["--history-writer-priority", "normal"]);
    wait_for(READ_TIMEOUT, || writer_threads(server.pid()).len() == 1);
    assert_eq!(writer_threads(server.pid()), [("history".to_string(), 0)]);
    let (mut alice, mut bob) = pair(server.addr);
    alice.send("written at normal priority");
    alice.sync();
    bob.sync();
    assert_eq!(stored_lines(&path), ["alice: written at normal priority"]);
}

#[test]
fn a_starved_idle_writer_hands_over_and_acknowledged_lines_are_committed() {
    let (_dir, path) = temp_db();
    // Next to one busy program an idle-priority thread waits about 100 ms
    // for the CPU; the default 500 ms takes several busy programs per core.
    let server = binary(&path, &["--history-writer-max-wait-ms", "20"]);
    let (mut alice, mut bob) = pair(server.addr);
    // The whole server shares one CPU with a busy thread: the idle-priority
    // writer gets (almost) nothing.
    let cpu = some_cpu();
    pin(server.pid(), cpu);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hog = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            pin(0, cpu);
            let started = std::time::Instant::now();
            // Bounded: the test is over long before.
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && started.elapsed() < Duration::from_secs(60)
            {
                std::hint::spin_loop();
            }
        })
    };
    let mut handed_over = false;
    let mut sent = 0;
    while !handed_over && sent < 40 {
        alice.send(&format!("while the CPU is busy {sent}"));
        sent += 1;
        // The pong comes only once the line is committed.
        alice.sync();
        handed_over = server
            .log
            .try_iter()
            .any(|line| line.contains("writing at normal priority"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hog.join().unwrap();
    assert!(handed_over, "no hand-over in {sent} acknowledged lines");
    bob.sync();
    let stored = stored_lines(&path);
    assert_eq!(stored.len(), sent);
    assert_eq!(
        stored.last().map(String::as_str),
        Some(format!("alice: while the CPU is busy {}", sent - 1).as_str())
    );
}
