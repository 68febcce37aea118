//! Three servers and one Redis: `:history` and the history files' ids the
//! same on every server, and a server started later reading what was said
//! before from the rooms' streams.

use super::common::{Client, Lines, ServerProcess};
use super::engine::{redis, PATIENCE};
use super::servers::{clustered, join, join_as, settle, three_servers};
use super::shared::{history, untagged};
use std::time::Instant;

#[test]
fn history_and_its_ids_are_the_same_on_every_server() {
    let Some(redis) = redis("the shared history test") else {
        return;
    };
    let (_servers, mut alice, mut bob, mut carol) = three_servers(&redis);
    // #rust on A and B only: C has no member there while it is spoken in.
    for client in [&mut alice, &mut bob] {
        client.send(":join #rust");
        client.skip_until(&format!("* {} joined #rust", client.nick));
    }
    alice.skip_until("* bob joined #rust");
    alice.send(":join #lobby");
    bob.send(":join #lobby");
    for client in [&mut alice, &mut bob, &mut carol] {
        client.send(":tags on");
        loop {
            if untagged(client).1 == "* tags on" {
                break;
            }
        }
    }
    // Everyone says something in #lobby; alice and bob in #rust.
    for round in 0..5 {
        alice.send(&format!("lobby a{round}"));
        bob.send(&format!("lobby b{round}"));
        carol.send(&format!("lobby c{round}"));
    }
    alice.send(":join #rust");
    bob.send(":join #rust");
    for round in 0..5 {
        alice.send(&format!("rust a{round}"));
        bob.send(&format!("rust b{round}"));
    }
    // Everyone has every line (tags on: the senders get their echoes).
    let mut seen = Vec::new();
    for client in [&mut alice, &mut bob, &mut carol] {
        let mut ids = Vec::new();
        let wanted = if client.nick == "carol" { 15 } else { 25 };
        while ids.len() < wanted {
            let (id, line) = untagged(client);
            if line.contains(": lobby ") || line.contains(": rust ") {
                ids.push((id.expect("a room line has an id"), line));
            }
        }
        seen.push(ids);
    }
    let lobby = |lines: &[(u64, String)]| -> Vec<(u64, String)> {
        lines
            .iter()
            .filter(|(_, l)| l.contains("lobby "))
            .map(|(id, l)| (*id, l.trim_start_matches("[#lobby] ").to_string()))
            .collect()
    };
    // One order, with the cluster's ids, on every server.
    assert_eq!(lobby(&seen[0]), lobby(&seen[1]));
    assert_eq!(lobby(&seen[0]), lobby(&seen[2]));
    // :history in #lobby: the same lines with the same ids and times.
    alice.send(":join #lobby");
    bob.send(":join #lobby");
    let lobby_history: Vec<_> = [&mut alice, &mut bob, &mut carol]
        .into_iter()
        .map(history)
        .collect();
    assert_eq!(lobby_history[0].len(), 15, "{:?}", lobby_history[0]);
    assert_eq!(lobby_history[0], lobby_history[1]);
    assert_eq!(lobby_history[0], lobby_history[2]);
    let ids: Vec<u64> = lobby_history[0].iter().map(|(id, _)| id.unwrap()).collect();
    let shown: Vec<u64> = lobby(&seen[2]).iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, shown);
    // #rust: carol's server had no member there, and has its history too.
    carol.send(":join #rust");
    loop {
        if untagged(&mut carol).1 == "* carol joined #rust" {
            break;
        }
    }
    alice.send(":join #rust");
    let rust_history: Vec<_> = [&mut alice, &mut carol].into_iter().map(history).collect();
    assert_eq!(rust_history[0].len(), 10, "{:?}", rust_history[0]);
    assert_eq!(rust_history[0], rust_history[1]);
    let ids: Vec<u64> = rust_history[0].iter().map(|(id, _)| id.unwrap()).collect();
    assert_eq!(ids, (1..=10).collect::<Vec<u64>>());
}

/// A history file's lines as another program sees them: room, id, time,
/// line.
fn stored(path: &std::path::Path) -> Vec<(String, i64, i64, String)> {
    let conn = rusqlite::Connection::open(path).expect("open the history file");
    let mut stmt = conn
        .prepare(
            "SELECT rooms.room_key, lines.id, lines.ts, lines.line FROM lines
             JOIN rooms ON rooms.id = lines.room ORDER BY rooms.room_key, lines.id",
        )
        .expect("query");
    let rows = stmt
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .expect("rows");
    rows.map(Result::unwrap).collect()
}

#[test]
fn every_servers_history_file_holds_the_same_lines_with_the_same_ids() {
    let Some(redis) = redis("the shared history file test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let paths: Vec<String> = (0..3)
        .map(|i| dir.path().join(format!("h{i}.db")).display().to_string())
        .collect();
    let servers: Vec<ServerProcess> = paths
        .iter()
        .map(|path| ServerProcess::start(&["--cluster", &url, "--history-file", path], None))
        .collect();
    let mut alice = join_as(servers[0].addr, "alice");
    let mut bob = join_as(servers[1].addr, "bob");
    let mut carol = join_as(servers[2].addr, "carol");
    settle(&mut [&mut alice, &mut bob, &mut carol]);
    alice.send(":join #rust");
    alice.skip_until("* alice joined #rust");
    bob.send(":join #rust");
    bob.skip_until("* bob joined #rust");
    alice.skip_until("* bob joined #rust");
    for i in 0..10 {
        alice.send(&format!("rust {i}"));
        bob.send(&format!("rust {i}"));
    }
    bob.skip_until("alice: rust 9");
    alice.skip_until("bob: rust 9");
    carol.send("in the lobby");
    alice.skip_until("[#lobby] carol: in the lobby");
    bob.skip_until("[#lobby] carol: in the lobby");
    for server in servers {
        server.signal(libc::SIGTERM);
        assert!(server.wait_exit(PATIENCE).success());
    }
    let files: Vec<_> = paths
        .iter()
        .map(|p| stored(std::path::Path::new(p)))
        .collect();
    assert_eq!(files[0].len(), 21, "{:?}", files[0]);
    assert_eq!(files[0], files[1]);
    // Carol's server had no member in #rust and keeps its lines too.
    assert_eq!(files[0], files[2]);
    let rust_ids: Vec<i64> = files[0]
        .iter()
        .filter(|(room, ..)| room == "#rust")
        .map(|(_, id, ..)| *id)
        .collect();
    assert_eq!(rust_ids, (1..=20).collect::<Vec<i64>>());
}

/// `alice` makes #rust and says `rust N` there `rust` times, then `lobby N`
/// in #lobby `lobby` times, and waits until Redis numbered the last (tags
/// on: she gets her own lines back then).
fn says_in_rust_then_lobby(alice: &mut Client, rust: usize, lobby: usize) {
    alice.send(":join #rust");
    alice.skip_until("* alice joined #rust");
    alice.send(":tags on");
    for i in 0..rust {
        alice.send(&format!("rust {i}"));
    }
    alice.send(":join #lobby");
    for i in 0..lobby {
        alice.send(&format!("lobby {i}"));
    }
    let last = format!("alice: lobby {}", lobby - 1);
    while untagged(alice).1 != last {}
}

#[test]
fn a_server_started_later_reads_what_was_said_before_from_the_streams() {
    let Some(redis) = redis("the backlog test") else {
        return;
    };
    let a = clustered(&redis);
    let mut alice = join_as(a.addr(), "alice");
    says_in_rust_then_lobby(&mut alice, 5, 3);
    let said = history(&mut alice);
    assert_eq!(said.len(), 3, "{said:?}");
    // B starts now: its #lobby, and #rust once a member makes it there,
    // have what was said before (with the same ids).
    let b = clustered(&redis);
    let mut bob = join(b.addr());
    bob.send(":tags on");
    let deadline = Instant::now() + PATIENCE;
    loop {
        if history(&mut bob) == said {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", history(&mut bob));
    }
    alice.send(":join #rust");
    let rust = history(&mut alice);
    assert_eq!(rust.len(), 5, "{rust:?}");
    // Asked with the `:join` that makes #rust on B: the answer waits for
    // the stream's lines (the page asks just so), and is the room's
    // history as of the question: bob's line right after it comes live
    // (his echo), not in the answer too.
    bob.send_bytes(b":join #rust\n:history 50\nright after\n:ping h\n");
    // The pong comes at once, the echo once Redis numbered the line.
    let echo = format!("{}: right after", bob.nick);
    let (mut answer, mut ponged, mut echoed) = (Vec::new(), false, false);
    while !(ponged && echoed) {
        let (id, line) = untagged(&mut bob);
        if line.starts_with("[history ") {
            assert!(!ponged && !echoed, "history after its end: {line}");
            answer.push((id, line));
            continue;
        }
        ponged |= line == "* pong h";
        echoed |= line == echo;
    }
    assert_eq!(answer, rust);
}

#[test]
fn a_server_started_later_writes_what_it_read_from_the_streams_to_its_file() {
    let Some(redis) = redis("the backlog file test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let a = ServerProcess::start(&["--cluster", &url, "--history-file", &path("a.db")], None);
    let mut alice = join_as(a.addr, "alice");
    says_in_rust_then_lobby(&mut alice, 5, 1);
    // B starts after the lines were said; bob makes #rust there, so B
    // reads its stream (and #lobby's).
    let b = ServerProcess::start(&["--cluster", &url, "--history-file", &path("b.db")], None);
    let mut bob = join(b.addr);
    bob.send(":join #rust");
    bob.send(":tags on");
    let deadline = Instant::now() + PATIENCE;
    while history(&mut bob).len() < 5 {
        assert!(Instant::now() < deadline, "B never read #rust's stream");
    }
    for server in [a, b] {
        server.signal(libc::SIGTERM);
        assert!(server.wait_exit(PATIENCE).success());
    }
    // B's file has A's lines of both rooms, with the same ids and times.
    let (in_a, in_b) = (
        stored(dir.path().join("a.db").as_path()),
        stored(dir.path().join("b.db").as_path()),
    );
    assert_eq!(in_a.len(), 6, "{in_a:?}");
    assert_eq!(in_b, in_a);
}
