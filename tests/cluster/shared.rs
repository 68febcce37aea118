//! Three servers and one Redis: what the cluster shares besides room lines
//! (joins and leaves announced on every server, `:users` and `:rooms`
//! equal everywhere, a killed server's clients announced as lost, nicks
//! raced for, `:e2e` and `:pm` echoes, accounts). Rooms' topics, bans and
//! operators are in `shared_rooms`, history in `shared_history`.

use super::common::{Client, Lines, ServerProcess};
use super::engine::{redis, PATIENCE};
use super::servers::{
    clustered, join, join_as, settle, take_when_free, three_servers, two_servers,
};
use std::time::Instant;

/// Asks `line` and returns the first answer line starting with `prefix`
/// (announcements that come first are skipped).
pub fn answer(client: &mut Client, line: &str, prefix: &str) -> String {
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
    let (_servers, mut alice, mut bob, mut carol) = three_servers(&redis);
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
pub fn untagged(client: &mut Client) -> (Option<u64>, String) {
    let raw = client.line();
    let (tags, line) = loopchat::protocol::tags::parse_server_line(&raw).unwrap();
    (tags.id, line.to_string())
}

/// `:history 50` in the client's current room (tags on): each line's id,
/// room tag and text.
pub fn history(client: &mut Client) -> Vec<(Option<u64>, String)> {
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
/// Reads `client`'s answer to `:nick NICK`: whether it won.
fn nick_answer(client: &mut Client, nick: &str) -> bool {
    let won = format!("* {} is now known as {nick}", client.nick);
    let lost = format!("! nick {nick} is taken");
    loop {
        let line = client.line();
        if line == won {
            client.nick = nick.to_owned();
            return true;
        }
        if line == lost {
            return false;
        }
    }
}

#[test]
fn two_servers_claiming_one_nick_a_thousand_times_have_one_winner_each_time() {
    let Some(redis) = redis("the server nick race test") else {
        return;
    };
    let (a, b) = (clustered(&redis), clustered(&redis));
    let mut alice = join(a.addr());
    let mut bob = join(b.addr());
    settle(&mut [&mut alice, &mut bob]);
    for i in 0..1000 {
        let nick = format!("racer{i}");
        // Both ask before either answer is read.
        alice.send(&format!(":nick {nick}"));
        bob.send(&format!(":nick {nick}"));
        let won = [nick_answer(&mut alice, &nick), nick_answer(&mut bob, &nick)];
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{nick}: {won:?}");
    }
}

#[test]
fn e2e_and_tagged_pm_echoes_cross_servers_and_a_login_claims_its_nick() {
    let Some(redis) = redis("the cross-server accounts test") else {
        return;
    };
    // Registered (so logged in) on their own servers.
    let ([a, b], mut alice, mut bob) = two_servers(&redis);
    for client in [&mut alice, &mut bob] {
        client.send(":register hunter22");
        client.skip_until(&format!("* registered {}", client.nick));
    }
    // :e2e reaches a logged-in recipient on the other server, opaque.
    alice.send(":e2e bob v1.a.00.Zz");
    bob.skip_until("[e2e] alice: v1.a.00.Zz");
    bob.send(":e2e ALICE v1.b.01.Yy");
    alice.skip_until("[e2e] bob: v1.b.01.Yy");
    alice.send(":e2e nobody v1.a.00.Zz");
    alice.skip_until("! no such user nobody");
    // A client of B that is not logged in: refused as on one server.
    let guest = join(b.addr());
    let seen = format!("* whois {}: guest, rooms #lobby", guest.nick);
    whois_until(&mut alice, &guest.nick, &seen);
    alice.send(&format!(":e2e {} v1.a.00.Zz", guest.nick));
    alice.skip_until(&format!("! {} is not logged in", guest.nick));
    // With tags on, a pm to another server's client is echoed, naming it.
    alice.send(":tags on");
    alice.send(":pm bob psst");
    bob.skip_until("[pm] alice: psst");
    loop {
        let raw = alice.line();
        let (tags, line) = loopchat::protocol::tags::parse_server_line(&raw).unwrap();
        if line == "[pm] alice: psst" {
            assert_eq!(tags.to.as_deref(), Some("bob"), "{raw}");
            break;
        }
    }
    alice.send(":tags off");
    // A login claims its nick in Redis, as :nick does: carol logs out
    // (her nick is free) and in again on A; then no one on B may take it.
    let mut carol = join_as(a.addr(), "carol");
    carol.send(":register hunter22");
    carol.skip_until("* registered carol");
    carol.send(":logout");
    carol.skip_until("* logged out");
    carol.send(":login carol hunter22");
    carol.skip_until("* logged in as carol");
    carol.sync();
    let mut other = join(b.addr());
    assert_eq!(
        answer(&mut other, ":nick carol", "! "),
        "! nick carol is taken"
    );
}

#[test]
fn an_account_registered_on_one_server_logs_in_on_every_server() {
    let Some(redis) = redis("the shared accounts test") else {
        return;
    };
    let (a, b) = (clustered(&redis), clustered(&redis));
    let mut alice = join_as(a.addr(), "alice");
    alice.send(":register hunter22");
    alice.skip_until("* registered alice");
    let key = format!("{}BA", "A".repeat(41));
    alice.send(&format!(":key {key}"));
    alice.skip_until("* key published");
    alice.send(":token");
    let token = loop {
        let line = alice.line();
        if let Some(token) = line.strip_prefix("* token ") {
            break token.to_owned();
        }
    };
    alice.send(":quit");
    alice.skip_until("* bye");
    // B heard of the account, its key and its token as they were made.
    let mut bob = join(b.addr());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = answer(&mut bob, ":keys alice", "");
        if got == format!("* keys alice: {key}") {
            break;
        }
        assert!(Instant::now() < deadline, "{got}");
    }
    assert_eq!(
        answer(&mut bob, ":login alice hunter22", "* logged in as"),
        "* logged in as alice"
    );
    bob.send(":quit");
    bob.skip_until("* bye");
    let mut again = join(b.addr());
    let got = answer(&mut again, &format!(":resume {token}"), "");
    assert!(
        got.ends_with("is now known as alice") || got == "* logged in as alice",
        "{got}"
    );
    again.skip_until("* logged in as alice");
    again.send(":quit");
    again.skip_until("* bye");
    // A server started afterwards reads the account from Redis, and the
    // token (issued and used before it started) too.
    let c = clustered(&redis);
    let mut device = join(c.addr());
    let got = answer(&mut device, &format!(":resume {token}"), "");
    assert!(
        got.ends_with("is now known as alice") || got == "* logged in as alice",
        "{got}"
    );
    device.skip_until("* logged in as alice");
    device.send(":quit");
    device.skip_until("* bye");
    let mut carol = join(c.addr());
    assert_eq!(
        answer(&mut carol, ":login alice hunter22", "* logged in as"),
        "* logged in as alice"
    );
    // A password changed on C revokes the token on every server, and on
    // one started later: it does not come back from Redis.
    let mut on_b = join(b.addr());
    carol.send(":passwd hunter22 swordfish9");
    carol.skip_until("* password changed");
    // B has applied the change once it delivers a line C published after
    // it (one subscription, in Redis's order).
    carol.send("after the change");
    on_b.skip_until("alice: after the change");
    assert_eq!(
        answer(&mut on_b, &format!(":resume {token}"), ""),
        "! login failed"
    );
    let d = clustered(&redis);
    let mut late_device = join(d.addr());
    assert_eq!(
        answer(&mut late_device, &format!(":resume {token}"), ""),
        "! login failed"
    );
    assert_eq!(
        answer(&mut late_device, ":login alice hunter22", "! "),
        "! login failed"
    );
    assert_eq!(
        answer(
            &mut late_device,
            ":login alice swordfish9",
            "* logged in as"
        ),
        "* logged in as alice"
    );
    late_device.send(":quit");
    late_device.skip_until("* bye");
    // And a name registered on one server cannot be registered again on
    // another.
    let mut other = join_as(c.addr(), "dave");
    other.send(":register hunter22");
    other.skip_until("* registered dave");
    other.send(":quit");
    other.skip_until("* bye");
    // (Taken until C's release lands; registered once A has heard.)
    let mut late = join(a.addr());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = answer(&mut late, ":nick dave", "! nick dave");
        if got == "! nick dave is registered" {
            break;
        }
        assert_eq!(got, "! nick dave is taken");
        assert!(Instant::now() < deadline, "{got}");
    }
}

#[test]
fn after_redis_was_paused_past_the_lifetimes_every_server_sees_everyone_again() {
    let Some(redis) = redis("the paused Redis membership test") else {
        return;
    };
    // Lifetimes of 2 s: a pause of 4 s outlives every server's.
    let start = || {
        let mut config = super::servers::config_for(redis.addr());
        config.flood = loopchat::policy::limits::FloodLimit::OFF;
        if let Some(cluster) = &mut config.cluster {
            cluster.nick_ttl = std::time::Duration::from_secs(2);
        }
        loopchat::Server::bind(config).unwrap().spawn().unwrap()
    };
    let (a, b) = (start(), start());
    let mut alice = join_as(a.addr(), "alice");
    let mut bob = join_as(b.addr(), "bob");
    settle(&mut [&mut alice, &mut bob]);
    assert_eq!(unsafe { libc::kill(redis.pid(), libc::SIGSTOP) }, 0);
    // (The length of the fault, not a wait for something to happen.)
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(unsafe { libc::kill(redis.pid(), libc::SIGCONT) }, 0);
    // Whoever Redis counted lost came back: both servers list both again
    // (after, maybe, announcing one as lost and joining again), and each
    // nick is still its holder's.
    settle(&mut [&mut alice, &mut bob]);
    assert_eq!(
        answer(&mut bob, ":nick alice", "! "),
        "! nick alice is taken"
    );
    assert_eq!(answer(&mut alice, ":nick bob", "! "), "! nick bob is taken");
}

#[test]
fn a_server_that_stops_says_so_at_once() {
    let Some(redis) = redis("the clean stop test") else {
        return;
    };
    let a = clustered(&redis);
    let url = redis.url();
    // Lifetimes of 20 s (the default): the announcement below comes long
    // before another server could count this one lost.
    let b = ServerProcess::start(&["--cluster", &url], None);
    let mut alice = join_as(a.addr(), "alice");
    let mut bob = join_as(b.addr, "bob");
    settle(&mut [&mut alice, &mut bob]);
    b.signal(libc::SIGTERM);
    bob.read_to_close();
    assert_eq!(
        alice.skip_until_prefix("* bob left #lobby"),
        "* bob left #lobby (server shutting down)"
    );
    assert_eq!(
        answer(&mut alice, ":users #lobby", "* users in "),
        "* users in #lobby: alice"
    );
    // Its nicks were released before it said so: free at once.
    alice.send(":nick bob");
    alice.skip_until("* alice is now known as bob");
}

trait SkipPrefix {
    fn skip_until_prefix(&mut self, prefix: &str) -> String;
}

impl SkipPrefix for Client {
    /// Reads lines until one starting with `prefix`, and returns it.
    fn skip_until_prefix(&mut self, prefix: &str) -> String {
        loop {
            let line = self.line();
            if line.starts_with(prefix) {
                return line;
            }
        }
    }
}

/// Asks `:whois NICK` until the answer is `expected` (the asker's server
/// hears of other servers' changes a moment after they are made).
fn whois_until(client: &mut Client, nick: &str, expected: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = answer(client, &format!(":whois {nick}"), "");
        if got == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{got} (waiting for {expected})");
    }
}

#[test]
fn whois_answers_for_another_servers_clients() {
    let Some(redis) = redis("the cluster whois test") else {
        return;
    };
    let (_servers, mut alice, mut bob, mut carol) = three_servers(&redis);
    // A guest on C, as A sees it, in the rooms C says it is in.
    whois_until(&mut alice, "carol", "* whois carol: guest, rooms #lobby");
    carol.send(":join #Rust");
    carol.skip_until("* carol joined #Rust");
    whois_until(
        &mut alice,
        "CAROL",
        "* whois carol: guest, rooms #lobby #Rust",
    );
    // A registered account on B: logged in, since only its holder may
    // use the name.
    bob.send(":register hunter22");
    bob.skip_until("* registered bob");
    whois_until(&mut alice, "bob", "* whois bob: account bob, rooms #lobby");
    // Nobody anywhere.
    assert_eq!(
        answer(&mut alice, ":whois nobody", ""),
        "! no such user nobody"
    );
}

#[test]
fn a_server_back_after_a_password_change_takes_the_new_hash_from_redis() {
    let Some(redis) = redis("the missed password change test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // B keeps its accounts in a file, so when it comes back it knows
    // alice already, with the hash it had then.
    let b_config = || {
        let mut config = super::servers::config_for(redis.addr());
        config.flood = loopchat::policy::limits::FloodLimit::OFF;
        config.history.file = Some(dir.path().join("b.db"));
        config
    };
    let a = clustered(&redis);
    let b = loopchat::Server::bind(b_config()).unwrap().spawn().unwrap();
    let mut alice = join_as(a.addr(), "alice");
    alice.send(":register hunter22");
    alice.skip_until("* registered alice");
    let mut bob = join(b.addr());
    log_in(&mut bob, "alice", "hunter22");
    bob.send(":quit");
    bob.skip_until("* bye");
    // B stops (its file holds alice); her password changes meanwhile, on
    // A (where bob's login may have closed alice's first connection:
    // `* logged in elsewhere`).
    b.stop().unwrap();
    drop(alice);
    let mut alice = join(a.addr());
    log_in(&mut alice, "alice", "hunter22");
    alice.send(":passwd hunter22 swordfish9");
    alice.skip_until("* password changed");
    let b = loopchat::Server::bind(b_config()).unwrap().spawn().unwrap();
    let mut back = join(b.addr());
    assert_eq!(
        answer(&mut back, ":login alice hunter22", ""),
        "! login failed"
    );
    let got = answer(&mut back, ":login alice swordfish9", "");
    assert!(
        got.ends_with("is now known as alice") || got == "* logged in as alice",
        "{got}"
    );
}

/// `:login NAME PASSWORD` until it is answered `* logged in as NAME` (the
/// server may not have heard of an account made elsewhere a moment ago).
fn log_in(client: &mut Client, name: &str, password: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        client.send(&format!(":login {name} {password}"));
        loop {
            let line = client.line();
            if line == format!("* logged in as {name}") {
                return;
            }
            if line == "! login failed" {
                break;
            }
        }
        assert!(Instant::now() < deadline, "{name} never logged in");
    }
}

#[test]
fn a_login_on_another_server_takes_over_the_first_connection() {
    let Some(redis) = redis("the cross-server takeover test") else {
        return;
    };
    let (a, b) = (clustered(&redis), clustered(&redis));
    let mut first = join_as(a.addr(), "alice");
    first.send(":register hunter22");
    first.skip_until("* registered alice");
    let mut bob = join_as(a.addr(), "bob");
    let mut second = join(b.addr());
    settle(&mut [&mut first, &mut bob, &mut second]);
    // Logged in on B: the connection on A is told and closes, and its
    // rooms see it leave, as on one server.
    log_in(&mut second, "alice", "hunter22");
    first.skip_until("* logged in elsewhere");
    first.read_to_close();
    bob.skip_until("* alice left #lobby (logged in elsewhere)");
    second.send("hello from B");
    bob.skip_until("alice: hello from B");
    // B holds the nick in Redis now: a login back on A takes it from B.
    let mut third = join(a.addr());
    log_in(&mut third, "alice", "hunter22");
    second.skip_until("* logged in elsewhere");
    second.read_to_close();
    bob.skip_until("* alice left #lobby (logged in elsewhere)");
    third.send("hello from A");
    bob.skip_until("alice: hello from A");
}
