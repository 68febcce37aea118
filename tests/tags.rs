//! Tags (protocol 1.2, section "Tags") against the server binary over real
//! sockets: `:tags on|off`, the tag prefix, `time`, `room`, `id` (equal for
//! every member and in `:history`, kept across a restart with a history
//! file), the echo of chat, `:me` and `:pm`, labels on answers, echoes and
//! errors, and `! bad tags`. None of it disconnects anyone.

mod common;
mod ws_support;

use common::{Client, Lines, ServerProcess};
use loopchat::protocol::tags::{parse_server_line, parse_time_ms};
use std::path::Path;
use std::time::Duration;

/// One line from a client with tags on, split: its tags and the line as it
/// would read without them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tagged {
    time: String,
    room: Option<String>,
    id: Option<u64>,
    to: Option<String>,
    label: Option<String>,
    line: String,
}

/// Reads `raw` as a tagged line: it must have a valid prefix with a `time`
/// in the protocol's format, and only the keys the protocol names.
fn tagged(raw: &str) -> Tagged {
    let (tags, line) = parse_server_line(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
    let prefix = raw.strip_suffix(line).expect("the line follows its prefix");
    let time = prefix
        .strip_prefix("@time=")
        .and_then(|rest| rest.get(..24))
        .unwrap_or_else(|| panic!("time first: {raw:?}"));
    assert!(parse_time_ms(time).is_some(), "{raw:?}");
    assert_eq!(tags.time_ms, parse_time_ms(time));
    for pair in prefix.trim_start_matches('@').trim_end().split(';') {
        let key = pair.split('=').next().unwrap();
        assert!(
            ["time", "room", "id", "to", "label"].contains(&key),
            "{raw:?}"
        );
    }
    Tagged {
        time: time.to_string(),
        room: tags.room.map(|r| r.into_owned()),
        id: tags.id,
        to: tags.to.map(|t| t.into_owned()),
        label: tags.label.map(|l| l.into_owned()),
        line: line.to_string(),
    }
}

/// The next line of a client with tags on, read as [`tagged`].
fn next(client: &mut Client) -> Tagged {
    let raw = client.line();
    tagged(&raw)
}

/// `:ping sync` for a client with tags on: everything sent before it is
/// handled; returns the lines that came before the (tagged) pong.
fn sync_tagged(client: &mut Client) -> Vec<Tagged> {
    client.send(":ping sync");
    let mut before = Vec::new();
    loop {
        let line = next(client);
        if line.line == "* pong sync" && line.label.is_none() {
            return before;
        }
        before.push(line);
    }
}

/// A client named `nick` with tags on (its `* tags on` read and checked).
fn with_tags(addr: std::net::SocketAddr, nick: &str) -> Client {
    let mut client = Client::named(addr, nick);
    client.send(":tags on");
    let on = next(&mut client);
    assert_eq!(on.line, "* tags on");
    assert_eq!((on.room, on.id, on.label), (None, None, None));
    client
}

fn server() -> ServerProcess {
    ServerProcess::start(&[], None)
}

#[test]
fn tags_on_off_and_usage() {
    let server = server();
    let mut alice = Client::named(server.addr, "alice");
    let mut bob = Client::named(server.addr, "bob");
    alice.sync();
    alice.send(":tags maybe");
    alice.expect("! usage: :tags on|off");
    alice.send(":tags on");
    let on = next(&mut alice);
    assert_eq!(on.line, "* tags on");
    alice.send(":tags");
    assert_eq!(next(&mut alice).line, "! usage: :tags on|off");
    alice.send(":ping x");
    assert_eq!(next(&mut alice).line, "* pong x");
    // Another client's tags are its own business.
    bob.send(":ping y");
    bob.expect("* pong y");
    alice.send(":tags off");
    alice.expect("* tags off");
    alice.send(":ping z");
    alice.expect("* pong z");
    bob.send("still plain");
    alice.expect("bob: still plain");
    bob.assert_quiet();
}

#[test]
fn ids_and_times_are_the_same_for_every_member_and_in_history() {
    let server = server();
    let mut alice = with_tags(server.addr, "alice");
    let mut bob = with_tags(server.addr, "bob");
    let mut carol = with_tags(server.addr, "carol");
    let mut dave = Client::named(server.addr, "dave");
    sync_tagged(&mut alice);
    sync_tagged(&mut bob);
    sync_tagged(&mut carol);
    // One after the other: each sender's pong says its line was handled.
    alice.send("hello");
    let mut seen_by_alice = sync_tagged(&mut alice);
    bob.send(":me waves");
    let mut seen_by_bob = sync_tagged(&mut bob);
    let plain = dave.sync();
    dave.send("plain sender");
    dave.sync();
    seen_by_alice.extend(sync_tagged(&mut alice));
    seen_by_bob.extend(sync_tagged(&mut bob));
    // Each tagged member gets all three lines, the senders their echo.
    let seen = [seen_by_alice, seen_by_bob, sync_tagged(&mut carol)];
    assert_eq!(seen[0], seen[1], "the same bytes for everyone");
    assert_eq!(seen[0], seen[2], "the same bytes for everyone");
    let lines: Vec<&str> = seen[0].iter().map(|l| l.line.as_str()).collect();
    assert_eq!(lines, ["alice: hello", "* bob waves", "dave: plain sender"]);
    assert!(seen[0].iter().all(|l| l.room.as_deref() == Some("#lobby")));
    let ids: Vec<u64> = seen[0].iter().map(|l| l.id.expect("an id")).collect();
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
    assert!(seen[0].iter().all(|l| l.label.is_none() && l.to.is_none()));
    let times: Vec<i64> = seen[0]
        .iter()
        .map(|l| parse_time_ms(&l.time).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // dave (tags off) sees the lines as in version 1.1, and no echo.
    assert_eq!(plain, ["alice: hello", "* bob waves"]);
    // :history replays them with the same ids and times.
    carol.send(":history 3");
    let header = next(&mut carol);
    assert_eq!(header.line, "* history #lobby: 3 lines");
    assert_eq!((header.room, header.id), (None, None));
    for first in &seen[0] {
        let past = next(&mut carol);
        assert_eq!(past.id, first.id);
        assert_eq!(past.time, first.time);
        assert_eq!(past.room.as_deref(), Some("#lobby"));
        let second = format!("{}Z", &first.time[..19]);
        assert_eq!(past.line, format!("[history {second}] {}", first.line));
    }
    // A new line gets a higher id than any before.
    dave.send("later");
    let later = next(&mut carol);
    assert_eq!(later.line, "dave: later");
    assert!(later.id.unwrap() > ids[2]);
}

#[test]
fn the_sender_gets_the_echo_of_its_chat_me_and_pm() {
    let server = server();
    let mut alice = with_tags(server.addr, "alice");
    let mut bob = Client::named(server.addr, "bob");
    sync_tagged(&mut alice);
    alice.send("hi bob");
    let echo = next(&mut alice);
    assert_eq!(echo.line, "alice: hi bob");
    assert_eq!(echo.room.as_deref(), Some("#lobby"));
    assert!(echo.id.is_some());
    bob.expect("alice: hi bob");
    alice.send(":me nods");
    let echo = next(&mut alice);
    assert_eq!(echo.line, "* alice nods");
    assert!(echo.id.is_some());
    bob.expect("* alice nods");
    alice.send(":pm BOB psst");
    let echo = next(&mut alice);
    assert_eq!(echo.line, "[pm] alice: psst");
    assert_eq!(echo.to.as_deref(), Some("bob"), "the recipient's nick");
    assert_eq!((echo.room, echo.id), (None, None));
    bob.expect("[pm] alice: psst");
    // Without tags, no echo, as in version 1.1.
    bob.send("back");
    bob.send(":pm alice back");
    bob.assert_quiet();
    assert_eq!(next(&mut alice).line, "bob: back");
    let pm = next(&mut alice);
    assert_eq!((pm.line.as_str(), pm.to), ("[pm] bob: back", None));
    assert!(sync_tagged(&mut alice).is_empty());
}

#[test]
fn labels_come_back_on_answers_echoes_and_errors() {
    let server = server();
    let mut alice = with_tags(server.addr, "alice");
    let mut bob = with_tags(server.addr, "bob");
    sync_tagged(&mut alice);
    // An error.
    alice.send("@label=x :nick 9");
    let error = next(&mut alice);
    assert_eq!(error.line, "! invalid name 9");
    assert_eq!(error.label.as_deref(), Some("x"));
    // Reply lines of a command, other client tags ignored.
    alice.send("@label=L-1;+draft/x=y;a=b\\sc :users");
    let users = next(&mut alice);
    assert_eq!(users.line, "* users in #lobby: alice bob");
    assert_eq!(users.label.as_deref(), Some("L-1"));
    // The echo carries the label, the others' copies do not.
    alice.send("@label=7 @all lunch?");
    let echo = next(&mut alice);
    assert_eq!(echo.line, "alice: @all lunch?");
    assert_eq!(echo.label.as_deref(), Some("7"));
    let theirs = next(&mut bob);
    assert_eq!(theirs.line, "alice: @all lunch?");
    assert_eq!(theirs.label, None);
    assert_eq!((theirs.id, &theirs.time), (echo.id, &echo.time));
    // A rename: the renamer's copy answers the command.
    alice.send("@label=n :nick alicia");
    let mine = next(&mut alice);
    assert_eq!(mine.line, "* alice is now known as alicia");
    assert_eq!(mine.label.as_deref(), Some("n"));
    let theirs = next(&mut bob);
    assert_eq!(
        (theirs.line.as_str(), theirs.label),
        (mine.line.as_str(), None)
    );
    // Every line of a multi-line answer.
    alice.send("@label=h :history 2");
    let answer: Vec<Tagged> = (0..2).map(|_| next(&mut alice)).collect();
    assert!(answer.iter().all(|l| l.label.as_deref() == Some("h")));
    assert_eq!(answer[0].line, "* history #lobby: 1 line");
    assert_eq!(answer[1].id, echo.id);
    // A private message's echo.
    alice.send("@label=p :pm bob hi");
    let echo = next(&mut alice);
    assert_eq!(echo.line, "[pm] alicia: hi");
    assert_eq!(
        (echo.to.as_deref(), echo.label.as_deref()),
        (Some("bob"), Some("p"))
    );
    let theirs = next(&mut bob);
    assert_eq!((theirs.to, theirs.label), (None, None));
    assert!(sync_tagged(&mut alice).is_empty());
    assert!(sync_tagged(&mut bob).is_empty());
}

#[test]
fn bad_tags_are_refused_and_nobody_is_disconnected() {
    let server = server();
    let mut alice = with_tags(server.addr, "alice");
    let mut bob = Client::named(server.addr, "bob");
    sync_tagged(&mut alice);
    let too_long = format!("@label={} :ping", "a".repeat(65));
    for bad in [
        "@all hi",
        "@label=1",
        "@label=1 ",
        "@ hi",
        "@label=a;;b=c hi",
        "@=1 hi",
        "@label=no.dots :ping",
        too_long.as_str(),
    ] {
        alice.send(bad);
        let refused = next(&mut alice);
        assert_eq!(refused.line, "! bad tags", "{bad:?}");
        assert_eq!(refused.label, None, "{bad:?}: the prefix is not trusted");
    }
    let fits = "a".repeat(64);
    alice.send(&format!("@label={fits} :ping"));
    let pong = next(&mut alice);
    assert_eq!(
        (pong.line.as_str(), pong.label.as_deref()),
        ("* pong", Some(fits.as_str()))
    );
    // Nothing reached the room, and bob with tags off chats `@all hi`.
    bob.assert_quiet();
    bob.send("@all hi");
    bob.send("@label=1 :ping");
    assert_eq!(next(&mut alice).line, "bob: @all hi");
    assert_eq!(next(&mut alice).line, "bob: @label=1 :ping");
    bob.assert_quiet();
    // Both still connected and chatting.
    alice.send("still here");
    bob.expect("alice: still here");
    assert_eq!(next(&mut alice).line, "alice: still here");
}

#[test]
fn tagged_room_lines_carry_the_room_and_no_id() {
    let server = server();
    let mut alice = with_tags(server.addr, "alice");
    let mut bob = Client::connect(server.addr);
    let joined = next(&mut alice);
    assert_eq!(joined.line, format!("* {} joined #lobby", bob.nick));
    assert_eq!((joined.room.as_deref(), joined.id), (Some("#lobby"), None));
    bob.send(":quit gone; home");
    bob.skip_until("* bye");
    let left = next(&mut alice);
    assert_eq!(
        left.line,
        format!("* {} left #lobby (gone; home)", bob.nick)
    );
    assert_eq!(left.room.as_deref(), Some("#lobby"));
    alice.send(":join Rust");
    let mine = next(&mut alice);
    assert_eq!(mine.line, "* alice joined #Rust");
    assert_eq!(mine.room.as_deref(), Some("#Rust"));
}

#[test]
fn a_tagged_line_of_another_room_has_its_room_tag_and_no_prefix() {
    let server = server();
    let mut alice = with_tags(server.addr, "alice");
    let mut carol = Client::named(server.addr, "carol");
    let mut dave = Client::named(server.addr, "dave");
    for client in [&mut carol, &mut dave] {
        client.send(":join rust");
        client.skip_until(&format!("* {} joined #rust", client.nick));
    }
    alice.send(":join rust");
    sync_tagged(&mut alice);
    carol.sync();
    // alice and carol are in #lobby and #rust, #rust current; dave speaks
    // in #rust, then in #lobby after switching to it.
    dave.send("in rust");
    dave.send(":join lobby");
    dave.skip_until("* current room #lobby");
    dave.send("in the lobby");
    dave.sync();
    let lines = sync_tagged(&mut alice);
    let shown: Vec<(&str, Option<&str>)> = lines
        .iter()
        .map(|l| (l.line.as_str(), l.room.as_deref()))
        .collect();
    assert_eq!(
        shown,
        [
            ("dave: in rust", Some("#rust")),
            ("dave: in the lobby", Some("#lobby")),
        ],
        "the room tag instead of the [#room] prefix"
    );
    assert!(lines[0].id < lines[1].id);
    assert_eq!(
        carol.sync(),
        ["dave: in rust", "[#lobby] dave: in the lobby"]
    );
}

/// Starts the binary with its history in `path`.
fn with_file(path: &Path) -> ServerProcess {
    ServerProcess::start(&["--history-file", path.to_str().unwrap()], None)
}

#[test]
fn ids_and_times_survive_a_restart_with_a_history_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let server = with_file(&path);
    let mut alice = with_tags(server.addr, "alice");
    alice.send("before");
    alice.send(":me restarts");
    let before = [next(&mut alice), next(&mut alice)];
    // The pong follows the commit: both lines are on disk.
    sync_tagged(&mut alice);
    drop(alice);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    let server = with_file(&path);
    let mut bob = with_tags(server.addr, "bob");
    bob.send(":history");
    assert_eq!(next(&mut bob).line, "* history #lobby: 2 lines");
    for first in &before {
        let past = next(&mut bob);
        assert_eq!((past.id, &past.time), (first.id, &first.time));
        assert!(past.line.ends_with(&first.line), "{past:?}");
    }
    bob.send("after");
    let after = next(&mut bob);
    assert!(
        after.id.unwrap() > before[1].id.unwrap(),
        "ids are never reused"
    );
}

#[test]
fn a_websocket_client_gets_the_same_tagged_bytes_as_a_tcp_client() {
    use ws_support::{tung_send, tung_text, tung_welcome, tungstenite_client};
    let server = common::start();
    let mut tcp = with_tags(server.addr(), "tcpuser");
    let mut ws = tungstenite_client(server.web_addr().expect("a web address"));
    tung_welcome(&mut ws);
    tung_send(&mut ws, ":nick webuser");
    tung_text(&mut ws);
    tung_send(&mut ws, ":tags on");
    assert_eq!(tagged(&tung_text(&mut ws)).line, "* tags on");
    sync_tagged(&mut tcp);
    tcp.send("hello both");
    let over_tcp = tcp.line();
    let over_ws = tung_text(&mut ws);
    assert_eq!(
        over_ws, over_tcp,
        "one tagged encoding, framed for WebSocket"
    );
    assert_eq!(tagged(&over_ws).line, "tcpuser: hello both");
    tung_send(&mut ws, "@label=w1 from the page");
    let echo = tagged(&tung_text(&mut ws));
    assert_eq!(
        (echo.line.as_str(), echo.label.as_deref()),
        ("webuser: from the page", Some("w1"))
    );
    let theirs = next(&mut tcp);
    assert_eq!((theirs.id, theirs.label), (echo.id, None));
}

#[test]
fn a_history_answer_that_waits_for_its_room_keeps_ids_times_and_label() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let server = with_file(&path);
    let mut alice = with_tags(server.addr, "alice");
    alice.send(":join Rust");
    assert_eq!(next(&mut alice).line, "* alice joined #Rust");
    alice.send("in rust");
    let first = next(&mut alice);
    sync_tagged(&mut alice);
    drop(alice);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    // After a restart #rust's tail is read from the file when the room is
    // created again: a :history in the same write waits for it.
    let server = with_file(&path);
    let mut bob = with_tags(server.addr, "bob");
    bob.send_bytes(b"@label=j :join rust\n@label=h :history\n@label=p :ping\n");
    let joined = next(&mut bob);
    assert_eq!(joined.line, "* bob joined #rust");
    assert_eq!(joined.label.as_deref(), Some("j"));
    let header = next(&mut bob);
    assert_eq!(header.line, "* history #rust: 1 line");
    assert_eq!(header.label.as_deref(), Some("h"));
    let past = next(&mut bob);
    assert_eq!(past.label.as_deref(), Some("h"));
    assert_eq!((past.id, &past.time), (first.id, &first.time));
    assert_eq!(past.room.as_deref(), Some("#rust"));
    assert!(past.line.ends_with("] alice: in rust"), "{past:?}");
    let pong = next(&mut bob);
    assert_eq!(
        (pong.line.as_str(), pong.label.as_deref()),
        ("* pong", Some("p"))
    );
}
