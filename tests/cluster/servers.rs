//! loopchat servers with `--cluster`: the start-up check, `/metrics`,
//! chat across servers, nicks unique across servers, Redis lost and back,
//! the subscription killed mid-flood, a server killed.

use super::common::redis::Redis;
use super::common::{Client, Lines, ServerProcess};
use super::engine::{redis, PATIENCE};
use loopchat::cluster::ClusterSettings;
use loopchat::RunningServer;
use loopchat::{Config, Server, StartError};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

pub fn config_for(addr: SocketAddr) -> Config {
    let mut config = Config::ephemeral();
    config.history.file = None;
    config.cluster = Some(ClusterSettings::new(addr));
    config
}

fn start_error(config: Config) -> String {
    match Server::bind(config) {
        Err(err @ StartError::Cluster(_)) => err.to_string(),
        Err(other) => panic!("another start error: {other}"),
        Ok(_) => panic!("the server started"),
    }
}

#[test]
fn an_address_where_nothing_listens_fails_the_start_clearly() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = start_error(config_for(SocketAddr::from(([127, 0, 0, 1], port))));
    assert!(
        err.starts_with(&format!(
            "cannot reach the cluster's Redis at 127.0.0.1:{port}: "
        )),
        "{err}"
    );
}

#[test]
fn an_address_that_is_not_redis_fails_the_start_clearly() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let web = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    let err = start_error(config_for(addr));
    assert_eq!(
        err,
        format!("{addr} is not a Redis server (it answered something else)")
    );
    web.join().unwrap();
}

#[test]
fn the_binary_says_why_it_cannot_start_from_the_flag_or_the_environment() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let base = [
        "--addr",
        "127.0.0.1:0",
        "--web-addr",
        "off",
        "--irc-addr",
        "off",
        "--history-file",
        ":memory:",
    ];
    let with_flag = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(base)
        .args(["--cluster", &url])
        .env_remove("LOOPCHAT_CLUSTER")
        .output()
        .unwrap();
    let with_env = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(base)
        .env("LOOPCHAT_CLUSTER", &url)
        .output()
        .unwrap();
    for output in [with_flag, with_env] {
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "cannot reach the cluster's Redis at 127.0.0.1:{port}"
            )),
            "{stderr}"
        );
    }
}

fn fetch_metrics(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn a_clustered_server_shows_its_redis_in_metrics() {
    let Some(redis) = redis("the cluster metrics test") else {
        return;
    };
    let mut config = config_for(redis.addr());
    config.metrics_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = Server::bind(config).unwrap().spawn().unwrap();
    let metrics = server.metrics_addr().unwrap();
    // Connected a moment after the start: asked again until it is.
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let text = fetch_metrics(metrics);
        if text.contains("\nloopchat_cluster_up 1\n") {
            break text;
        }
        assert!(Instant::now() < deadline, "never up: {text}");
    };
    for family in [
        "loopchat_cluster_lag_lines 0",
        "loopchat_cluster_disconnects_total 0",
        "loopchat_cluster_lines_lost_total 0",
    ] {
        assert!(
            text.contains(&format!("\n{family}\n")),
            "{family} in {text}"
        );
    }
    // A server alone has none of them.
    let alone = Server::bind(Config {
        metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Config::ephemeral()
    })
    .unwrap()
    .spawn()
    .unwrap();
    assert!(!fetch_metrics(alone.metrics_addr().unwrap()).contains("loopchat_cluster"));
}

/// A clustered server on free ports, flood control off.
pub fn clustered(redis: &Redis) -> RunningServer {
    let mut config = config_for(redis.addr());
    config.flood = loopchat::policy::limits::FloodLimit::OFF;
    Server::bind(config).unwrap().spawn().unwrap()
}

/// A client of a clustered server, once the server is connected to Redis
/// (until then a new client is told `! cluster unavailable` and closed).
pub fn join(addr: SocketAddr) -> Client {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut client = Client::connect_raw(addr);
        let first = client.line();
        if first == "! cluster unavailable" {
            client.expect_closed();
            assert!(Instant::now() < deadline, "the server never reached Redis");
            continue;
        }
        assert!(first.starts_with("* welcome "), "{first}");
        client.nick = first["* welcome ".len()..].to_string();
        client.expect(&format!("* {} joined #lobby", client.nick));
        return client;
    }
}

/// Three servers sharing `redis`, with alice on the first, bob on the
/// second and carol on the third, each seeing all three in `#lobby`.
pub fn three_servers(redis: &Redis) -> ([RunningServer; 3], Client, Client, Client) {
    let servers = [clustered(redis), clustered(redis), clustered(redis)];
    let mut alice = join_as(servers[0].addr(), "alice");
    let mut bob = join_as(servers[1].addr(), "bob");
    let mut carol = join_as(servers[2].addr(), "carol");
    settle(&mut [&mut alice, &mut bob, &mut carol]);
    (servers, alice, bob, carol)
}

/// Two clustered servers, alice on the first and bob on the second, each
/// known on the other.
pub fn two_servers(redis: &Redis) -> ([RunningServer; 2], Client, Client) {
    let servers = [clustered(redis), clustered(redis)];
    let mut alice = join_as(servers[0].addr(), "alice");
    let mut bob = join_as(servers[1].addr(), "bob");
    settle(&mut [&mut alice, &mut bob]);
    (servers, alice, bob)
}

/// Waits until every client's `:users #lobby` lists exactly the clients
/// given (the servers have heard of every join, leave and rename), then
/// reads past what each was told meanwhile.
pub fn settle(clients: &mut [&mut Client]) {
    let mut nicks: Vec<String> = clients
        .iter()
        .map(|c| c.nick.to_ascii_lowercase())
        .collect();
    nicks.sort();
    for client in clients.iter_mut() {
        let deadline = Instant::now() + PATIENCE;
        loop {
            client.send(":users #lobby");
            let mut got = lobby_users(client);
            got.sort();
            if got == nicks {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "never settled: {got:?} against {nicks:?}"
            );
        }
    }
    for client in clients.iter_mut() {
        client.sync();
    }
}

/// Reads up to the answer to `:users #lobby`: its nicks, lower case,
/// without `@`.
pub fn lobby_users(client: &mut Client) -> Vec<String> {
    loop {
        let line = client.line();
        if let Some(list) = line.strip_prefix("* users in #lobby: ") {
            return list
                .split(' ')
                .map(|n| n.trim_start_matches('@').to_ascii_lowercase())
                .collect();
        }
    }
}

/// [`join`], then `:nick NICK`.
pub fn join_as(addr: SocketAddr, nick: &str) -> Client {
    let mut client = join(addr);
    client.send(&format!(":nick {nick}"));
    // Other servers' clients' joins and renames may come first.
    client.skip_until(&format!("* {} is now known as {nick}", client.nick));
    client.nick = nick.to_string();
    client
}

/// A `:nick` and the lines after it, sent together: as on one server, the
/// lines run after the nick's answer (its claim in Redis): under the new
/// nick when it was won, under the old one after `! nick ... is taken`.
#[test]
fn lines_after_a_nick_run_once_it_is_answered() {
    let Some(redis) = redis("the nick order test") else {
        return;
    };
    let (a, b) = (clustered(&redis), clustered(&redis));
    let mut alice = join_as(a.addr(), "alice");
    alice.send(":join #rust");
    alice.skip_until("* alice joined #rust");
    let mut guest = join(b.addr());
    guest.send_bytes(b":nick bob\n:join #rust\nhello from bob\n");
    let joined = loop {
        let line = alice.line();
        if line.ends_with(" joined #rust") {
            break line;
        }
    };
    assert_eq!(joined, "* bob joined #rust");
    alice.expect("bob: hello from bob");
    // Taken: the answer first, then the join under the guest nick.
    let mut other = join(b.addr());
    other.send_bytes(b":nick alice\n:join #rust\n");
    let answers: Vec<String> = (0..2)
        .map(|_| loop {
            let line = other.line();
            if line.starts_with("! ") || line.ends_with(" joined #rust") {
                break line;
            }
        })
        .collect();
    assert_eq!(
        answers,
        [
            "! nick alice is taken".to_string(),
            format!("* {} joined #rust", other.nick)
        ]
    );
}

#[test]
fn a_line_said_on_one_server_reaches_the_room_on_every_server_in_one_order() {
    let Some(redis) = redis("the cross-server chat test") else {
        return;
    };
    let a = clustered(&redis);
    let b = clustered(&redis);
    // Guests get numbers unique across the servers.
    let guests: Vec<Client> = [a.addr(), b.addr(), a.addr(), b.addr()]
        .into_iter()
        .map(join)
        .collect();
    let mut unique: Vec<&str> = guests.iter().map(|g| g.nick.as_str()).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{unique:?}");
    for mut guest in guests {
        guest.send(":quit");
        guest.skip_until("* bye");
    }
    let mut alice = join_as(a.addr(), "alice");
    let mut carol = join_as(a.addr(), "carol");
    let mut bob = join_as(b.addr(), "bob");
    settle(&mut [&mut alice, &mut carol, &mut bob]);
    alice.send("hello from A");
    bob.send("hello from B");
    alice.send(":me waves");
    let got_bob = [bob.line(), bob.line()];
    assert_eq!(got_bob, ["alice: hello from A", "* alice waves"]);
    assert_eq!(alice.line(), "bob: hello from B");
    // Carol, on alice's server, gets all three in the one order every
    // server delivers them in.
    let got_carol = [carol.line(), carol.line(), carol.line()];
    let mut expected = vec!["alice: hello from A", "bob: hello from B", "* alice waves"];
    expected.sort();
    let mut sorted = got_carol.clone();
    sorted.sort();
    assert_eq!(sorted.to_vec(), expected);
    assert!(
        got_carol.iter().position(|l| l == "alice: hello from A")
            < got_carol.iter().position(|l| l == "* alice waves"),
        "one sender's lines keep their order: {got_carol:?}"
    );
    // A flood from one server arrives whole and in order on the other.
    for i in 0..300 {
        alice.send(&format!("line {i}"));
    }
    for i in 0..300 {
        bob.expect(&format!("alice: line {i}"));
    }
    // The sender never gets its own lines back.
    assert!(alice.sync().iter().all(|l| !l.starts_with("alice: ")));
}

#[test]
fn a_nick_is_unique_across_servers_and_freed_when_its_holder_leaves() {
    let Some(redis) = redis("the cross-server nick test") else {
        return;
    };
    let a = clustered(&redis);
    let b = clustered(&redis);
    let mut alice = join_as(a.addr(), "alice");
    let mut other = join(b.addr());
    settle(&mut [&mut alice, &mut other]);
    other.send(":nick ALICE");
    other.expect("! nick ALICE is taken");
    // Its holder renames: the old nick is free again.
    alice.send(":nick alicia");
    alice.expect("* alice is now known as alicia");
    take_when_free(&mut other, "alice");
    // A holder that quits frees its nick too.
    alice.send(":quit");
    alice.skip_until("* bye");
    let mut third = join(b.addr());
    take_when_free(&mut third, "alicia");
}

/// Asks for `nick` until it is given (its release by another server is on
/// its way: "taken" until it lands, never anything else).
pub fn take_when_free(client: &mut Client, nick: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        client.send(&format!(":nick {nick}"));
        // Others' joins, leaves and renames may come first.
        let answer = loop {
            let line = client.line();
            if line.starts_with("! ") || line.starts_with(&format!("* {} ", client.nick)) {
                break line;
            }
        };
        if answer == format!("* {} is now known as {nick}", client.nick) {
            client.nick = nick.to_string();
            return;
        }
        assert_eq!(answer, format!("! nick {nick} is taken"));
        assert!(Instant::now() < deadline, "{nick} never freed");
    }
}

#[test]
fn a_line_in_flight_when_redis_dies_is_answered_cluster_unavailable() {
    let Some(mut redis) = redis("the failed batch test") else {
        return;
    };
    let (_servers, mut alice, mut bob) = two_servers(&redis);
    // Redis stops: alice's line goes out and is not answered...
    assert_eq!(unsafe { libc::kill(redis.pid(), libc::SIGSTOP) }, 0);
    alice.send("into the void");
    alice.send(":ping taken");
    alice.skip_until("* pong taken");
    // ... then dies: the call fails, and alice is told, unasked.
    redis.kill();
    alice.skip_until("! cluster unavailable");
    bob.send(":ping b");
    let before = bob.skip_until("* pong b");
    assert!(
        !before.iter().any(|l| l.contains("into the void")),
        "{before:?}"
    );
}

#[test]
fn redis_lost_the_servers_say_so_and_resume_when_it_is_back() {
    let Some(mut redis) = redis("the cluster unavailable test") else {
        return;
    };
    let ([a, _b], mut alice, mut bob) = two_servers(&redis);
    redis.kill();
    // Redis is gone: chat lines and nicks are refused, :ping still works.
    // (A line taken before the server noticed is answered when its call
    // fails, which may be after the pong.)
    let deadline = Instant::now() + PATIENCE;
    loop {
        alice.send("anyone?");
        alice.send(":ping 1");
        let lines = alice.skip_until("* pong 1");
        if !lines.is_empty() {
            assert!(
                lines.iter().all(|line| line == "! cluster unavailable"),
                "{lines:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never unavailable");
    }
    alice.send(":nick alicia");
    alice.expect("! cluster unavailable");
    alice.send(":e2e bob v1.a.00.Zz");
    alice.expect("! cluster unavailable");
    // A new client is told and closed.
    let mut late = Client::connect_raw(a.addr());
    late.expect("! cluster unavailable");
    late.expect_closed();
    redis.restart();
    // Back: the next line that is taken reaches bob.
    let deadline = Instant::now() + PATIENCE;
    loop {
        alice.send("back again");
        alice.send(":ping 2");
        let mut lines = alice.skip_until("* pong 2");
        // (Joins and leaves the servers publish again once it is back.)
        lines.retain(|line| !line.starts_with("* bob "));
        if lines.is_empty() {
            break;
        }
        assert_eq!(lines, ["! cluster unavailable"]);
        assert!(Instant::now() < deadline, "never back");
    }
    let before = bob.skip_until("alice: back again");
    assert!(
        before.iter().all(|l| l.starts_with("* alice ")),
        "{before:?}"
    );
}

#[test]
fn the_subscription_killed_mid_flood_loses_no_line() {
    let Some(redis) = redis("the pub/sub kill test") else {
        return;
    };
    let (_servers, mut alice, mut bob) = two_servers(&redis);
    for i in 0..2000 {
        alice.send(&format!("line {i}"));
        if i % 500 == 250 {
            // Redis drops both servers' subscriptions.
            redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
        }
    }
    // Every line arrives, in order, or bob is disconnected: here the
    // streams hold them all, so every one arrives.
    for i in 0..2000 {
        bob.expect(&format!("alice: line {i}"));
    }
}

#[test]
fn a_killed_server_frees_its_nicks_within_their_lifetime() {
    let Some(redis) = redis("the killed server test") else {
        return;
    };
    let url = redis.url();
    let dead = ServerProcess::start(&["--cluster", &url, "--cluster-nick-ttl", "1"], None);
    let mut alice = join_as(dead.addr, "alice");
    let b = clustered(&redis);
    let mut other = join(b.addr());
    other.send(":nick alice");
    other.skip_until("! nick alice is taken");
    dead.signal(libc::SIGKILL);
    alice.read_to_close();
    take_when_free(&mut other, "alice");
}

#[test]
fn ids_are_the_clusters_on_every_server_and_the_sender_with_tags_gets_its_echo() {
    use loopchat::protocol::tags::parse_server_line;
    let Some(redis) = redis("the cluster ids test") else {
        return;
    };
    let (_servers, mut alice, mut bob) = two_servers(&redis);
    for client in [&mut alice, &mut bob] {
        client.send(":tags on");
        client.skip_until_tagged("* tags on");
    }
    alice.send("first");
    bob.send("second");
    let mut ids = Vec::new();
    for client in [&mut alice, &mut bob] {
        let mut got = Vec::new();
        for _ in 0..2 {
            let raw = client.line();
            let (tags, line) = parse_server_line(&raw).unwrap();
            got.push((tags.id.expect("room lines carry an id"), line.to_string()));
        }
        ids.push(got);
    }
    // Both servers show both lines (alice's own echo included) with the
    // ids Redis gave them, in that order.
    assert_eq!(ids[0], ids[1]);
    let numbers: Vec<u64> = ids[0].iter().map(|(id, _)| *id).collect();
    assert_eq!(numbers[1], numbers[0] + 1, "{ids:?}");
}

/// Reads `client`'s lines until one that, without its tags, is `wanted`:
/// its label.
fn label_of(client: &mut Client, wanted: &str) -> Option<String> {
    loop {
        let raw = client.line();
        let (tags, line) = loopchat::protocol::tags::parse_server_line(&raw).unwrap();
        if line == wanted {
            return tags.label.map(String::from);
        }
    }
}

#[test]
fn labels_come_back_on_answers_that_cross_redis() {
    let Some(redis) = redis("the cluster labels test") else {
        return;
    };
    let (_servers, mut alice, mut bob) = two_servers(&redis);
    for client in [&mut alice, &mut bob] {
        client.send(":tags on");
        client.skip_until_tagged("* tags on");
    }
    // A room line's echo (made when the line comes back from Redis); a
    // private message's echo, answered once the other server took it, and
    // its error when no server has the recipient; a rename, answered once
    // Redis has the claim, lost then won: each carries its line's label.
    for (line, answer, label) in [
        ("@label=say1 hello", "alice: hello", "say1"),
        ("@label=act2 :me waves", "* alice waves", "act2"),
        ("@label=pm3 :pm bob psst", "[pm] alice: psst", "pm3"),
        ("@label=pm4 :pm nobody psst", "! no such user nobody", "pm4"),
        ("@label=nick5 :nick bob", "! nick bob is taken", "nick5"),
        (
            "@label=nick6 :nick alicia",
            "* alice is now known as alicia",
            "nick6",
        ),
    ] {
        alice.send(line);
        assert_eq!(
            label_of(&mut alice, answer).as_deref(),
            Some(label),
            "{line}"
        );
    }
    // The other server's client gets the same lines without a label.
    for line in [
        "alice: hello",
        "* alice waves",
        "[pm] alice: psst",
        "* alice is now known as alicia",
    ] {
        assert_eq!(label_of(&mut bob, line), None, "{line}");
    }
}

trait SkipTagged {
    fn skip_until_tagged(&mut self, line: &str);
}

impl SkipTagged for Client {
    /// Reads lines until one that, without its tags, is `line`.
    fn skip_until_tagged(&mut self, wanted: &str) {
        loop {
            let raw = self.line();
            let (_, line) = loopchat::protocol::tags::parse_server_line(&raw).unwrap();
            if line == wanted {
                return;
            }
        }
    }
}

#[test]
fn a_private_message_reaches_a_client_of_another_server() {
    let Some(redis) = redis("the cross-server pm test") else {
        return;
    };
    let (_servers, mut alice, mut bob) = two_servers(&redis);
    alice.send(":pm bob psst");
    bob.expect("[pm] alice: psst");
    bob.send(":msg ALICE back at you");
    alice.expect("[pm] bob: back at you");
    // No one by that name on any server.
    alice.send(":pm nobody hello?");
    alice.expect("! no such user nobody");
    // Gone from its server: no longer reachable.
    bob.send(":quit");
    bob.skip_until("* bye");
    // (The answer comes when Redis has answered: after the pong, maybe.)
    let deadline = Instant::now() + PATIENCE;
    loop {
        alice.send(":pm bob still there?");
        alice.send(":ping p");
        let mut lines = alice.skip_until("* pong p");
        lines.retain(|l| l != "* bob left #lobby");
        assert!(lines.iter().all(|l| l == "! no such user bob"), "{lines:?}");
        if !lines.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "bob never gone");
    }
}

#[test]
fn rooms_joined_on_both_servers_share_their_lines() {
    let Some(redis) = redis("the cross-server rooms test") else {
        return;
    };
    let (_servers, mut alice, mut bob) = two_servers(&redis);
    for client in [&mut alice, &mut bob] {
        client.send(":join #rust");
        client.skip_until(&format!("* {} joined #rust", client.nick));
    }
    alice.send("in rust");
    // Alice's join reaches bob first if she joined after him.
    let before = bob.skip_until("alice: in rust");
    assert!(
        before.iter().all(|l| l == "* alice joined #rust"),
        "{before:?}"
    );
    // Bob's current room is #rust; a line in #lobby reaches him prefixed.
    alice.send(":join #lobby");
    alice.sync();
    alice.send("in the lobby");
    bob.expect("[#lobby] alice: in the lobby");
}
