//! Three servers and one Redis: what the cluster shares besides room lines
//! (joins and leaves announced on every server, `:users` and `:rooms`
//! equal everywhere, a killed server's clients announced as lost).

use super::common::{Client, Lines, ServerProcess};
use super::engine::{redis, PATIENCE};
use super::servers::{clustered, join, join_as, settle, take_when_free};
use std::time::Instant;

/// Asks `line` and returns the first answer line starting with `prefix`
/// (announcements that come first are skipped).
fn answer(client: &mut Client, line: &str, prefix: &str) -> String {
    client.send(line);
    loop {
        let got = client.line();
        if got.starts_with(prefix) {
            return got;
        }
    }
}

/// Reads until every one of `lines` came, in any order (announcements of
/// one client's leaving several rooms come in its rooms' order).
fn expect_all(client: &mut Client, lines: &[&str]) {
    let mut left: Vec<&str> = lines.to_vec();
    while !left.is_empty() {
        let got = client.line();
        left.retain(|line| *line != got);
    }
}

#[test]
fn joins_leaves_and_renames_are_announced_on_every_server() {
    let Some(redis) = redis("the shared membership test") else {
        return;
    };
    let servers = [clustered(&redis), clustered(&redis), clustered(&redis)];
    let mut alice = join_as(servers[0].addr(), "alice");
    let mut bob = join_as(servers[1].addr(), "bob");
    let mut carol = join_as(servers[2].addr(), "carol");
    settle(&mut [&mut alice, &mut bob, &mut carol]);
    // A join on C reaches A and B as it reaches C's own members.
    alice.send(":join #rust");
    alice.skip_until("* alice joined #rust");
    bob.send(":join #rust");
    bob.skip_until("* bob joined #rust");
    alice.skip_until("* bob joined #rust");
    carol.send(":join #rust");
    loop {
        if untagged(&mut carol).1 == "* carol joined #rust" {
            break;
        }
    }
    for client in [&mut alice, &mut bob] {
        client.skip_until("* carol joined #rust");
    }
    // A rename on B, a part with its reason on C.
    bob.send(":nick robert");
    bob.skip_until("* bob is now known as robert");
    bob.nick = "robert".into();
    for client in [&mut alice, &mut carol] {
        client.skip_until("* bob is now known as robert");
    }
    carol.send(":part #rust off to lunch");
    carol.skip_until("* carol left #rust (off to lunch)");
    for client in [&mut alice, &mut bob] {
        client.skip_until("* carol left #rust (off to lunch)");
    }
    // A quit on A, with its reason, everywhere.
    alice.send(":quit see you");
    alice.skip_until("* bye");
    expect_all(
        &mut bob,
        // #rust is bob's current room, #lobby not.
        &[
            "[#lobby] * alice left #lobby (see you)",
            "* alice left #rust (see you)",
        ],
    );
    carol.skip_until("* alice left #lobby (see you)");
}

#[test]
fn users_and_rooms_are_the_same_on_every_server() {
    let Some(redis) = redis("the shared users test") else {
        return;
    };
    let servers = [clustered(&redis), clustered(&redis), clustered(&redis)];
    let mut alice = join_as(servers[0].addr(), "alice");
    let mut bob = join_as(servers[1].addr(), "bob");
    let mut carol = join_as(servers[2].addr(), "carol");
    let mut dave = join_as(servers[2].addr(), "dave");
    settle(&mut [&mut alice, &mut bob, &mut carol, &mut dave]);
    // #rust on A and B, #go on C only.
    for (client, room) in [
        (&mut alice, "#rust"),
        (&mut bob, "#rust"),
        (&mut dave, "#go"),
    ] {
        client.send(&format!(":join {room}"));
        client.skip_until(&format!("* {} joined {room}", client.nick));
    }
    let expected_rooms = "* rooms: #go (1), #lobby (4), #rust (2)";
    let expected = [
        ("#lobby", "* users in #lobby: alice bob carol dave"),
        ("#rust", "* users in #rust: alice bob"),
        ("#go", "* users in #go: dave"),
    ];
    for client in [&mut alice, &mut bob, &mut carol, &mut dave] {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let rooms = answer(client, ":rooms", "* rooms: ");
            if rooms == expected_rooms {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {rooms}", client.nick);
        }
        for (room, users) in expected {
            let got = answer(client, &format!(":users {room}"), "* users in ");
            // The first operator of a room is marked; who it is depends
            // on where the room was made: compare without the marks.
            assert_eq!(got.replace('@', ""), users, "{}", client.nick);
        }
    }
    // A room no one is in any more is gone everywhere.
    dave.send(":part #go");
    dave.skip_until("* dave left #go");
    for client in [&mut alice, &mut bob, &mut carol] {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let rooms = answer(client, ":rooms", "* rooms: ");
            if rooms == "* rooms: #lobby (4), #rust (2)" {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {rooms}", client.nick);
        }
        assert_eq!(
            answer(client, ":users #go", "! "),
            "! no such room #go",
            "{}",
            client.nick
        );
    }
}

#[test]
fn a_killed_servers_clients_are_announced_lost_and_their_nicks_freed() {
    let Some(redis) = redis("the server lost test") else {
        return;
    };
    let url = redis.url();
    let flags = ["--cluster", &url, "--cluster-nick-ttl", "2"];
    let dead = ServerProcess::start(&flags, None);
    let b = ServerProcess::start(&flags, None);
    let c = ServerProcess::start(&flags, None);
    let mut alice = join_as(dead.addr, "alice");
    let mut bob = join_as(b.addr, "bob");
    let mut carol = join_as(c.addr, "carol");
    alice.send(":join #rust");
    alice.skip_until("* alice joined #rust");
    bob.send(":join #rust");
    bob.skip_until("* bob joined #rust");
    settle(&mut [&mut alice, &mut bob, &mut carol]);
    dead.signal(libc::SIGKILL);
    alice.read_to_close();
    // Announced on both other servers, in every room alice was in.
    let killed = Instant::now();
    expect_all(
        &mut bob,
        &[
            "[#lobby] * alice left #lobby (server lost)",
            "* alice left #rust (server lost)",
        ],
    );
    carol.skip_until("* alice left #lobby (server lost)");
    assert!(killed.elapsed() < std::time::Duration::from_secs(30));
    // Gone from :users and :rooms everywhere, and the nick is free.
    for client in [&mut bob, &mut carol] {
        assert_eq!(
            answer(client, ":users #lobby", "* users in "),
            "* users in #lobby: bob carol"
        );
        assert_eq!(
            answer(client, ":rooms", "* rooms: "),
            "* rooms: #lobby (2), #rust (1)"
        );
    }
    let mut other = join(c.addr);
    take_when_free(&mut other, "alice");
}

/// The next line without its tags (tags on).
fn untagged(client: &mut Client) -> (Option<u64>, String) {
    let raw = client.line();
    let (tags, line) = loopchat::protocol::tags::parse_server_line(&raw).unwrap();
    (tags.id, line.to_string())
}

/// `:history 50` in the client's current room (tags on): each line's id,
/// room tag and text.
fn history(client: &mut Client) -> Vec<(Option<u64>, String)> {
    client.send(":history 50");
    client.send(":ping h");
    let mut lines = Vec::new();
    loop {
        let (id, line) = untagged(client);
        if line == "* pong h" {
            return lines;
        }
        if line.starts_with("[history ") {
            lines.push((id, line));
        }
    }
}

#[test]
fn history_and_its_ids_are_the_same_on_every_server() {
    let Some(redis) = redis("the shared history test") else {
        return;
    };
    let servers = [clustered(&redis), clustered(&redis), clustered(&redis)];
    let mut alice = join_as(servers[0].addr(), "alice");
    let mut bob = join_as(servers[1].addr(), "bob");
    let mut carol = join_as(servers[2].addr(), "carol");
    settle(&mut [&mut alice, &mut bob, &mut carol]);
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

#[test]
fn topics_and_bans_set_on_one_server_hold_on_every_server() {
    let Some(redis) = redis("the shared topics and bans test") else {
        return;
    };
    let servers = [clustered(&redis), clustered(&redis), clustered(&redis)];
    let mut alice = join_as(servers[0].addr(), "alice");
    let mut bob = join_as(servers[1].addr(), "bob");
    let mut carol = join_as(servers[2].addr(), "carol");
    settle(&mut [&mut alice, &mut bob, &mut carol]);
    // Alice makes #rust (its operator), bob joins it on B.
    alice.send(":join #rust");
    alice.skip_until("* alice joined #rust");
    bob.send(":join #rust");
    bob.skip_until("* bob joined #rust");
    alice.skip_until("* bob joined #rust");
    // A topic set on A is announced on B and shown by :topic there.
    alice.send(":topic all about rust");
    alice.skip_until("* alice set the topic of #rust: all about rust");
    bob.skip_until("* alice set the topic of #rust: all about rust");
    assert_eq!(
        answer(&mut bob, ":topic", "* topic "),
        "* topic #rust: all about rust"
    );
    // C, where #rust does not exist yet, gives it on the first join.
    carol.send(":join #rust");
    carol.skip_until("* carol joined #rust");
    carol.expect("* topic #rust: all about rust");
    // A ban on A takes carol out of #rust on C...
    alice.send(":ban carol");
    alice.skip_until("* carol was banned from #rust by alice");
    carol.skip_until("* carol was banned from #rust by alice");
    carol.skip_until("* carol was kicked from #rust by alice");
    bob.skip_until("* carol was kicked from #rust by alice");
    // ... and keeps her out there (#rust is gone on C: no member left).
    carol.send(":join #rust");
    carol.skip_until("! banned from #rust");
    // Nor on B, where #rust exists and checks its own copy of the bans:
    // carol leaves C and comes back on B.
    carol.send(":quit");
    carol.skip_until("* bye");
    let mut again = join(servers[1].addr());
    take_when_free(&mut again, "carol");
    again.send(":join #rust");
    again.skip_until("! banned from #rust");
    // Lifted on A: carol may join on B again.
    alice.send(":unban carol");
    alice.skip_until("* alice lifted the ban on carol in #rust");
    bob.skip_until("* alice lifted the ban on carol in #rust");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = answer(&mut again, ":join #rust", "");
        if got == "* carol joined #rust" {
            break;
        }
        assert_eq!(got, "! banned from #rust");
        assert!(Instant::now() < deadline, "the ban never lifted on B");
    }
}
