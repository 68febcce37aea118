//! The Redis engine against a real redis-server. Each "node" is one
//! engine on its own `mio::Poll`, driven turn by turn the way the server's
//! loop drives it; every wait is bounded and event-driven, never a sleep.

use super::common::redis::Redis;
use loopchat::cluster::resp::Reply;
use loopchat::cluster::{ClusterEvent, ClusterSettings, RedisCluster, Unavailable};
use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// How long a test waits for what it expects before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// One engine on its own poller, and what it reported.
struct Node {
    poll: Poll,
    events: Events,
    engine: RedisCluster,
    seen: Vec<ClusterEvent>,
}

impl Node {
    fn new(redis: &Redis) -> Node {
        Node::with(redis, |_| {})
    }

    fn with(redis: &Redis, adjust: impl FnOnce(&mut ClusterSettings)) -> Node {
        let poll = Poll::new().unwrap();
        let mut settings = ClusterSettings::new(redis.addr());
        adjust(&mut settings);
        let engine = RedisCluster::new(settings, poll.registry(), [Token(1), Token(2)]);
        let mut node = Node {
            poll,
            events: Events::with_capacity(64),
            engine,
            seen: Vec::new(),
        };
        node.until("up", |node| node.engine.is_up());
        node
    }

    /// One loop turn: waits for readiness (at most until the engine's
    /// deadline, and at most 50 ms), hands the engine its events, runs its
    /// turn, keeps what it reported. Returns the other tokens that were
    /// ready.
    fn turn(&mut self) -> Vec<Token> {
        let now = Instant::now();
        let mut timeout = Duration::from_millis(50);
        if let Some(at) = self.engine.next_deadline() {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        poll_once(&mut self.poll, &mut self.events, timeout);
        let now = Instant::now();
        let mut others = Vec::new();
        for event in self.events.iter() {
            if self.engine.owns(event.token()) {
                self.engine.ready(event.token(), self.poll.registry(), now);
            } else {
                others.push(event.token());
            }
        }
        self.engine.turn(self.poll.registry(), now);
        self.seen.extend(self.engine.take_events());
        others
    }

    /// Turns until `done` holds; fails after [`PATIENCE`].
    fn until(&mut self, what: &str, mut done: impl FnMut(&mut Node) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "waited too long for {what}; saw {:?}",
                self.seen
            );
            self.turn();
        }
    }

    /// The ids and lines delivered in `room`, in delivery order.
    fn lines(&self, room: &str) -> Vec<(u64, String)> {
        self.seen
            .iter()
            .filter_map(|event| match event {
                ClusterEvent::Line { room: r, id, line } if r == room => {
                    Some((*id, String::from_utf8_lossy(line).into_owned()))
                }
                _ => None,
            })
            .collect()
    }

    fn lost(&self, room: &str) -> Vec<(u64, u64)> {
        self.seen
            .iter()
            .filter_map(|event| match event {
                ClusterEvent::Lost { room: r, from, to } if r == room => Some((*from, *to)),
                _ => None,
            })
            .collect()
    }

    fn count(&self, which: fn(&ClusterEvent) -> bool) -> usize {
        self.seen.iter().filter(|event| which(event)).count()
    }

    /// The answer to a nick claim.
    fn nick_answer(&mut self, ticket: u64) -> Result<bool, Unavailable> {
        let mut answer = None;
        self.until("a nick answer", |node| {
            answer = node.seen.iter().find_map(|event| match event {
                ClusterEvent::Nick { ticket: t, won, .. } if *t == ticket => Some(*won),
                _ => None,
            });
            answer.is_some()
        });
        answer.unwrap()
    }

    /// Claims `nick` and waits for the answer.
    fn claim(&mut self, nick: &str) -> Result<bool, Unavailable> {
        let ticket = self.engine.claim_nick(nick)?;
        self.nick_answer(ticket)
    }
}

/// One wait for readiness; a signal (a test's child process ending)
/// interrupting it is a turn with no event.
fn poll_once(poll: &mut Poll, events: &mut Events, timeout: Duration) {
    match poll.poll(events, Some(timeout)) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => events.clear(),
        Err(err) => panic!("poll: {err}"),
    }
}

pub fn redis(test: &str) -> Option<Redis> {
    Redis::start(test)
}

pub fn int(reply: Reply) -> i64 {
    reply
        .as_int()
        .unwrap_or_else(|| panic!("not an integer: {reply:?}"))
}

/// The number of calls Redis counted for a command (`INFO commandstats`).
fn calls(redis: &Redis, command: &str) -> u64 {
    let Reply::Bulk(info) = redis.cli(&["INFO", "commandstats"]) else {
        panic!("INFO answers a bulk string");
    };
    let info = String::from_utf8(info).unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

#[test]
fn lines_from_two_servers_reach_both_in_one_order() {
    let Some(redis) = redis("the cluster ordering test") else {
        return;
    };
    let mut a = Node::new(&redis);
    let mut b = Node::new(&redis);
    for turn in 0..20 {
        for i in 0..5 {
            a.engine
                .publish("#rust", format!("a{turn}.{i}").as_bytes())
                .unwrap();
            b.engine
                .publish("#rust", format!("b{turn}.{i}").as_bytes())
                .unwrap();
        }
        // Interleave the two servers' turns.
        a.turn();
        b.turn();
    }
    a.until("200 lines on a", |node| node.lines("#rust").len() == 200);
    b.until("200 lines on b", |node| node.lines("#rust").len() == 200);
    let on_a = a.lines("#rust");
    assert_eq!(on_a, b.lines("#rust"), "one order on both servers");
    let ids: Vec<u64> = on_a.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (1..=200).collect::<Vec<_>>(),
        "ids from 1, none skipped"
    );
    // Each sender's lines keep their order.
    for sender in ["a", "b"] {
        let mine: Vec<&String> = on_a
            .iter()
            .map(|(_, l)| l)
            .filter(|l| l.starts_with(sender))
            .collect();
        let expected: Vec<String> = (0..20)
            .flat_map(|t| (0..5).map(move |i| format!("{sender}{t}.{i}")))
            .collect();
        assert_eq!(mine.len(), 100);
        assert!(mine.iter().zip(&expected).all(|(got, want)| *got == want));
    }
    // The stream holds them too, under the same ids.
    assert_eq!(int(redis.cli(&["GET", "loopchat:room:#rust:seq"])), 200);
    assert_eq!(int(redis.cli(&["XLEN", "loopchat:room:#rust:log"])), 200);
    assert_eq!(a.count(|e| matches!(e, ClusterEvent::Lost { .. })), 0);
}

#[test]
fn a_turn_of_lines_for_a_room_is_one_call() {
    let Some(redis) = redis("the cluster pipelining test") else {
        return;
    };
    // (The engine's own calls, the servers alive and the membership
    // snapshot, come at its start and every third of the nick lifetime:
    // done before counting, and not due again during the test.)
    let mut a = Node::with(&redis, |s| s.nick_ttl = Duration::from_secs(30));
    a.until("the first snapshot", |node| {
        node.seen
            .iter()
            .any(|e| matches!(e, ClusterEvent::Members { .. }))
    });
    let before = calls(&redis, "fcall");
    for i in 0..500 {
        a.engine
            .publish("#a", format!("line {i}").as_bytes())
            .unwrap();
    }
    for i in 0..300 {
        a.engine
            .publish("#b", format!("line {i}").as_bytes())
            .unwrap();
    }
    let mark = a.engine.publish("#a", b"last").unwrap();
    assert_eq!(a.engine.in_flight(), 801);
    a.until("the turn accepted", |node| {
        node.engine.accepted_mark() >= mark
    });
    assert_eq!(
        calls(&redis, "fcall") - before,
        2,
        "one call per room for the turn"
    );
    assert_eq!(a.engine.stats().batches_sent, 2);
    assert_eq!(a.engine.in_flight(), 0);
    a.until("every line back", |node| {
        node.lines("#a").len() == 501 && node.lines("#b").len() == 300
    });
    assert_eq!(a.lines("#a").last().unwrap(), &(501, "last".to_string()));
    let accepted: Vec<(String, u64, usize)> = a
        .seen
        .iter()
        .filter_map(|e| match e {
            ClusterEvent::Accepted { room, first, count } => Some((room.clone(), *first, *count)),
            _ => None,
        })
        .collect();
    assert_eq!(
        accepted,
        vec![("#a".to_string(), 1, 501), ("#b".to_string(), 1, 300)]
    );
}

/// Publishes through the cluster's own function, as another server would.
fn publish_raw(redis: &Redis, room: &str, lines: &[&str]) {
    let seq = format!("loopchat:room:{room}:seq");
    let log = format!("loopchat:room:{room}:log");
    let mut args = vec![
        "FCALL",
        "loopchat_publish",
        "2",
        &seq,
        &log,
        "loopchat:lines",
        "10000",
        room,
    ];
    args.extend_from_slice(lines);
    int(redis.cli(&args));
}

#[test]
fn a_gap_is_filled_from_the_stream_and_a_lost_one_is_reported() {
    let Some(redis) = redis("the cluster gap test") else {
        return;
    };
    let mut a = Node::new(&redis);
    publish_raw(&redis, "#r", &["one", "two"]);
    a.until("the first lines", |node| node.lines("#r").len() == 2);
    // Lines 3 and 4 are numbered and stored but never published: a gap.
    redis.cli(&["INCRBY", "loopchat:room:#r:seq", "2"]);
    redis.cli(&["XADD", "loopchat:room:#r:log", "3-1", "l", "three"]);
    redis.cli(&["XADD", "loopchat:room:#r:log", "4-1", "l", "four"]);
    publish_raw(&redis, "#r", &["five"]);
    a.until("the gap filled", |node| node.lines("#r").len() == 5);
    let got: Vec<String> = a.lines("#r").into_iter().map(|(_, l)| l).collect();
    assert_eq!(got, ["one", "two", "three", "four", "five"]);
    assert_eq!(a.engine.stats().gaps, 1);
    // Lines 6 and 7 are numbered but gone from the stream: lost, reported,
    // and delivery goes on after them.
    redis.cli(&["INCRBY", "loopchat:room:#r:seq", "2"]);
    publish_raw(&redis, "#r", &["eight"]);
    a.until("the line after the loss", |node| {
        node.lines("#r").len() == 6
    });
    assert_eq!(a.lost("#r"), [(6, 7)]);
    assert_eq!(a.lines("#r").last().unwrap(), &(8, "eight".to_string()));
    let lost_at = a
        .seen
        .iter()
        .position(|e| matches!(e, ClusterEvent::Lost { .. }))
        .unwrap();
    let eight_at = a
        .seen
        .iter()
        .position(|e| matches!(e, ClusterEvent::Line { id: 8, .. }))
        .unwrap();
    assert!(
        lost_at < eight_at,
        "the loss is reported before the line after it"
    );
    assert_eq!(a.engine.stats().lines_lost, 2);
}

#[test]
fn a_killed_subscription_is_noticed_and_nothing_is_lost() {
    let Some(redis) = redis("the cluster pub/sub kill test") else {
        return;
    };
    let mut a = Node::new(&redis);
    publish_raw(&redis, "#r", &["before"]);
    a.until("the first line", |node| node.lines("#r").len() == 1);
    // Redis drops every subscriber (what `CLIENT KILL TYPE pubsub` does to
    // a node); lines are published before the node runs again, so it can
    // only get them from the stream.
    assert_eq!(int(redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"])), 1);
    publish_raw(&redis, "#r", &["during 1", "during 2"]);
    publish_raw(&redis, "#r", &["during 3"]);
    a.until("the subscription remade", |node| {
        node.engine.stats().disconnects == 1 && node.engine.stats().fills >= 1
    });
    // The cluster stays available meanwhile: the command connection is
    // fine, and nothing published meanwhile is lost.
    a.engine.publish("#r", b"mine").unwrap();
    publish_raw(&redis, "#r", &["after"]);
    a.until("every line", |node| node.lines("#r").len() == 6);
    let got: Vec<String> = a.lines("#r").into_iter().map(|(_, l)| l).collect();
    assert_eq!(got[..4], ["before", "during 1", "during 2", "during 3"]);
    let mut last_two = got[4..].to_vec();
    last_two.sort();
    assert_eq!(last_two, ["after", "mine"]);
    assert!(a.lost("#r").is_empty());
    assert_eq!(a.count(|e| *e == ClusterEvent::Down), 0);
}

#[test]
fn redis_restarted_the_node_reconnects_and_goes_on() {
    let Some(mut redis) = redis("the cluster Redis restart test") else {
        return;
    };
    let mut a = Node::with(&redis, |s| s.nick_ttl = Duration::from_secs(60));
    assert_eq!(a.claim("alice"), Ok(true));
    a.engine.publish("#r", b"one").unwrap();
    a.until("the line back", |node| node.lines("#r").len() == 1);
    redis.restart();
    a.until("down", |node| !node.engine.is_up());
    assert_eq!(a.engine.publish("#r", b"lost?"), Err(Unavailable));
    assert_eq!(a.engine.claim_nick("bob"), Err(Unavailable));
    a.until("up again", |node| node.engine.is_up());
    // The append-only file kept the room's sequence: ids go on.
    a.engine.publish("#r", b"two").unwrap();
    a.until("the next line", |node| node.lines("#r").len() == 2);
    assert_eq!(
        a.lines("#r"),
        [(1, "one".to_string()), (2, "two".to_string())]
    );
    // The nick is still this node's, refreshed on the way up.
    let Reply::Bulk(owner) = redis.cli(&["GET", "loopchat:nick:alice"]) else {
        panic!("alice is held")
    };
    assert_eq!(owner, a.engine.node().as_bytes());
}

#[test]
fn redis_restarted_empty_is_recovered_with_the_loss_reported() {
    let Some(mut redis) = redis("the cluster empty Redis restart test") else {
        return;
    };
    let mut a = Node::with(&redis, |s| s.nick_ttl = Duration::from_secs(60));
    assert_eq!(a.claim("alice"), Ok(true));
    a.engine.publish("#r", b"one").unwrap();
    a.until("the line back", |node| node.lines("#r").len() == 1);
    redis.restart_empty();
    a.until("up again", |node| {
        node.count(|e| *e == ClusterEvent::Up) == 2
    });
    // The nick is held again though Redis forgot it.
    a.until("alice held again", |_| {
        redis.cli(&["EXISTS", "loopchat:nick:alice"]) == Reply::Int(1)
    });
    a.engine.publish("#r", b"again").unwrap();
    a.until("the new line", |node| node.lines("#r").len() == 2);
    // The room starts over at 1, and the node knows why.
    assert_eq!(
        a.lines("#r"),
        [(1, "one".to_string()), (1, "again".to_string())]
    );
    assert_eq!(a.count(|e| *e == ClusterEvent::Restarted), 1);
    assert!(a.lost("#r").is_empty());
}

#[test]
fn a_nick_has_one_owner_held_while_it_lives_and_freed_when_it_dies() {
    let Some(redis) = redis("the cluster nick test") else {
        return;
    };
    let short = |s: &mut ClusterSettings| s.nick_ttl = Duration::from_millis(600);
    let mut a = Node::with(&redis, short);
    let mut b = Node::with(&redis, short);
    assert_eq!(a.claim("alice"), Ok(true));
    assert_eq!(b.claim("alice"), Ok(false));
    // Held across several lifetimes while A refreshes it.
    let refreshes = a.engine.stats().nick_refreshes;
    a.until("five refreshes", |node| {
        node.engine.stats().nick_refreshes >= refreshes + 5
    });
    assert_eq!(
        b.claim("alice"),
        Ok(false),
        "still held by its living owner"
    );
    // Released: free at once.
    a.engine.release_nick("alice");
    a.until("released", |_| {
        redis.cli(&["EXISTS", "loopchat:nick:alice"]) == Reply::Int(0)
    });
    assert_eq!(b.claim("alice"), Ok(true));
    // B dies without a word: the nick is free once its lifetime passes.
    drop(b);
    assert_eq!(a.claim("alice"), Ok(false), "held until it expires");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if a.claim("alice") == Ok(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alice freed within 30 s of its owner's death"
        );
        a.until("a ping's worth of turns", |node| {
            node.turn();
            true
        });
    }
    assert_eq!(a.engine.owned_nicks().collect::<Vec<_>>(), ["alice"]);
}

#[test]
fn two_servers_racing_for_a_nick_get_exactly_one_winner() {
    let Some(redis) = redis("the cluster nick race test") else {
        return;
    };
    let mut a = Node::new(&redis);
    let mut b = Node::new(&redis);
    for i in 0..300 {
        let nick = format!("racer{i}");
        // Both claims leave in the same turn of each server.
        let ta = a.engine.claim_nick(&nick).unwrap();
        let tb = b.engine.claim_nick(&nick).unwrap();
        a.turn();
        b.turn();
        let won = [a.nick_answer(ta).unwrap(), b.nick_answer(tb).unwrap()];
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{nick}: {won:?}");
    }
}

#[test]
fn guest_numbers_are_unique_across_servers() {
    let Some(redis) = redis("the cluster guest number test") else {
        return;
    };
    let mut a = Node::new(&redis);
    let mut b = Node::new(&redis);
    for _ in 0..50 {
        a.engine.guest_number().unwrap();
        b.engine.guest_number().unwrap();
    }
    let numbers = |node: &Node| -> Vec<u64> {
        node.seen
            .iter()
            .filter_map(|e| match e {
                ClusterEvent::Guest { number: Ok(n), .. } => Some(*n),
                _ => None,
            })
            .collect()
    };
    a.until("50 numbers", |node| numbers(node).len() == 50);
    b.until("50 numbers", |node| numbers(node).len() == 50);
    let mut all: Vec<u64> = numbers(&a).into_iter().chain(numbers(&b)).collect();
    all.sort();
    assert_eq!(all, (1..=100).collect::<Vec<_>>());
}

#[test]
fn a_stopped_redis_slows_the_sender_and_not_the_loop() {
    let Some(redis) = redis("the cluster backpressure test") else {
        return;
    };
    let mut a = Node::with(&redis, |s| s.max_in_flight_lines = 100);
    // Another socket on the same loop: an echo peer, standing for every
    // other client of the server.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    let mut other = MioStream::from_std(accepted);
    a.poll
        .registry()
        .register(&mut other, Token(7), Interest::READABLE)
        .unwrap();

    // Redis stops (SIGSTOP): nothing it is sent is answered.
    assert_eq!(unsafe { libc::kill(redis.pid(), libc::SIGSTOP) }, 0);
    let mut mark = 0;
    for turn in 0..3 {
        for i in 0..50 {
            mark = a
                .engine
                .publish("#r", format!("{turn}.{i}").as_bytes())
                .unwrap();
        }
        a.turn();
    }
    assert!(
        a.engine.congested(),
        "150 lines in flight, the limit is 100"
    );
    assert!(
        a.engine.accepted_mark() < mark,
        "the sender's lines are not accepted: it waits"
    );
    // The loop still serves everyone else: the echo peer is answered
    // while Redis is stopped.
    for round in 0..3 {
        peer.write_all(format!("ping {round}\n").as_bytes())
            .unwrap();
        let mut answered = false;
        a.until("the other socket served", |node| {
            if node.turn().contains(&Token(7)) {
                let mut buf = [0u8; 64];
                let n = other.read(&mut buf).unwrap();
                other.write_all(&buf[..n]).unwrap();
                answered = true;
            }
            answered
        });
        let mut buf = [0u8; 64];
        let n = peer.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("ping {round}\n").as_bytes());
        assert!(a.engine.congested() && a.engine.accepted_mark() < mark);
    }
    // Redis goes on: the lines are accepted and delivered, in order.
    assert_eq!(unsafe { libc::kill(redis.pid(), libc::SIGCONT) }, 0);
    a.until("accepted", |node| node.engine.accepted_mark() >= mark);
    assert!(!a.engine.congested());
    a.until("delivered", |node| node.lines("#r").len() == 150);
    let ids: Vec<u64> = a.lines("#r").iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (1..=150).collect::<Vec<_>>());
}

#[test]
fn an_address_where_nothing_listens_is_down_and_retried() {
    // Not Redis at all: a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut poll = Poll::new().unwrap();
    let settings = ClusterSettings::new(([127, 0, 0, 1], port).into());
    let mut engine = RedisCluster::new(settings, poll.registry(), [Token(1), Token(2)]);
    let mut events = Events::with_capacity(8);
    let mut disconnects = 0;
    let deadline = Instant::now() + PATIENCE;
    while disconnects < 2 {
        assert!(Instant::now() < deadline);
        let wait = engine
            .next_deadline()
            .map(|at| at.saturating_duration_since(Instant::now()));
        poll_once(
            &mut poll,
            &mut events,
            wait.unwrap_or(Duration::from_millis(50)),
        );
        for event in events.iter() {
            engine.ready(event.token(), poll.registry(), Instant::now());
        }
        engine.turn(poll.registry(), Instant::now());
        disconnects = engine.stats().disconnects;
    }
    assert!(!engine.is_up());
    assert_eq!(engine.publish("#r", b"x"), Err(Unavailable));
    assert!(
        engine.take_events().is_empty(),
        "never up, so never down either"
    );
}
