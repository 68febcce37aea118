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
    carol.skip_until("* carol joined #rust");
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
