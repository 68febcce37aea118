//! Protocol 1.2, "Rooms", against a real server over real sockets: several
//! rooms at once, the current room, the `[#ROOM] ` prefix, `:part`,
//! `:users ROOM`, the per-client limit, renames and departures in every
//! room, and a WebSocket and a TCP client sharing two rooms. Each test
//! asserts the protocol's exact lines.

mod common;
mod ws_support;

use common::*;
use ws_support::{tung_send, tung_text, tung_welcome, tungstenite_client};

const NOT_IN_ANY_ROOM: &str = "not in any room (try :join ROOM)";

/// `client` joins `room` (typed as created, without `#`) and reads up to
/// its own joined line.
fn join(client: &mut Client, room: &str) {
    client.send(&format!(":join {room}"));
    client.skip_until(&format!("* {} joined #{room}", client.nick));
}

/// Reads a WebSocket client's messages up to the answer to a `:ping`.
fn ws_sync(ws: &mut ws_support::Tung) -> Vec<String> {
    tung_send(ws, ":ping sync");
    std::iter::from_fn(|| Some(tung_text(ws)))
        .take_while(|text| text != "* pong sync")
        .collect()
}

#[test]
fn join_keeps_the_rooms_one_was_in() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    join(&mut alice, "rust");
    bob.assert_quiet(); // no left line: alice is still in #lobby
    assert_eq!(ask(&mut bob, ":users"), ["* users in #lobby: alice bob"]);
    assert_eq!(ask(&mut alice, ":join lobby"), ["* current room #lobby"]);
    bob.assert_quiet(); // a switch is told to the client alone
    assert_eq!(ask(&mut alice, ":join lobby"), ["! already in #lobby"]);
    assert_eq!(
        ask(&mut alice, ":rooms"),
        ["* rooms: #lobby (2), #rust (1)"]
    );
}

#[test]
fn the_room_prefix_follows_the_current_room() {
    let server = start();
    let [mut bob, mut carol, mut dave] = named(server.addr(), ["bob", "carol", "dave"]);
    join(&mut dave, "rust");
    dave.send(":part lobby");
    dave.expect("[#lobby] * dave left #lobby");
    join(&mut bob, "rust"); // bob: #lobby and #rust, #rust current
    bob.sync();
    carol.sync();
    dave.sync();

    carol.send("hi");
    bob.expect("[#lobby] carol: hi");
    dave.send("yo");
    bob.expect("dave: yo");
    carol.send(":me waves");
    bob.expect("[#lobby] * carol waves");

    assert_eq!(ask(&mut bob, ":join lobby"), ["* current room #lobby"]);
    carol.send("hi");
    bob.expect("carol: hi");
    dave.send("yo");
    bob.expect("[#rust] dave: yo");
    let newcomer = Client::connect(server.addr());
    bob.expect(&format!("* {} joined #lobby", newcomer.nick));
    carol.expect(&format!("* {} joined #lobby", newcomer.nick));
    dave.send(":nick david");
    bob.expect("* dave is now known as david"); // a rename has no prefix
    carol.assert_quiet(); // carol shares no room with dave
    dave.expect("* dave is now known as david");
}

#[test]
fn part_of_the_current_room_makes_the_last_current_one_current() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    join(&mut alice, "rust");
    join(&mut bob, "rust");
    alice.expect("* bob joined #rust");
    join(&mut alice, "go");
    assert_eq!(ask(&mut alice, ":join rust"), ["* current room #rust"]);

    assert_eq!(
        ask(&mut alice, ":part"),
        ["* alice left #rust", "* current room #go"]
    );
    bob.expect("* alice left #rust");
    assert_eq!(
        ask(&mut alice, ":part lobby gone (for now)"),
        ["[#lobby] * alice left #lobby (gone (for now))"]
    );
    bob.expect("[#lobby] * alice left #lobby (gone (for now))");
    assert_eq!(ask(&mut alice, ":part #rust"), ["! not in #rust"]);
    assert_eq!(ask(&mut alice, ":part Nowhere"), ["! not in #Nowhere"]);
    assert_eq!(ask(&mut alice, ":part 9lives"), ["! invalid name 9lives"]);
    bob.assert_quiet();
    assert_eq!(
        ask(&mut bob, ":rooms"),
        ["* rooms: #go (1), #lobby (1), #rust (1)"]
    );
}

#[test]
fn without_a_room_chat_is_refused_until_a_join() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    assert_eq!(
        ask(&mut alice, ":part"),
        ["* alice left #lobby", &format!("* {NOT_IN_ANY_ROOM}")]
    );
    bob.expect("* alice left #lobby");
    for line in [
        "hello?",
        ":me waits",
        ":history 5",
        ":topic",
        ":part",
        ":users",
    ] {
        assert_eq!(
            ask(&mut alice, line),
            [format!("! {NOT_IN_ANY_ROOM}")],
            "{line}"
        );
    }
    bob.assert_quiet();
    assert_eq!(ask(&mut alice, ":pm bob still here"), Vec::<String>::new());
    bob.expect("[pm] alice: still here");
    assert_eq!(ask(&mut alice, ":users lobby"), ["* users in #lobby: bob"]);
    join(&mut alice, "lobby");
    bob.expect("* alice joined #lobby");
    alice.send("back");
    bob.expect("alice: back");
}

#[test]
fn the_twenty_first_room_is_too_many() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    for n in 1..20 {
        join(&mut alice, &format!("r{n}"));
    }
    assert_eq!(ask(&mut alice, ":join r20"), ["! too many rooms (max 20)"]);
    assert_eq!(ask(&mut alice, ":join r3"), ["* current room #r3"]);
    assert_eq!(
        ask(&mut bob, ":users r20"),
        ["! no such room #r20"],
        "nothing changed"
    );
    alice.send(":part r1");
    alice.expect("[#r1] * alice left #r1");
    join(&mut alice, "r20");
    bob.assert_quiet();
}

#[test]
fn the_room_limit_is_the_operators_setting() {
    let server = start_with(|config| config.max_rooms_per_client = 22);
    let mut alice = Client::named(server.addr(), "alice");
    for n in 1..22 {
        join(&mut alice, &format!("r{n}"));
    }
    assert_eq!(ask(&mut alice, ":join r22"), ["! too many rooms (max 22)"]);
}

#[test]
fn users_names_any_room_and_refuses_one_that_does_not_exist() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "Bob", "carol"]);
    join(&mut alice, "Rust");
    bob.send(":join rust");
    bob.expect("* Bob joined #Rust");
    assert_eq!(
        ask(&mut carol, ":users #RUST"),
        ["* users in #Rust: @alice Bob"]
    );
    assert_eq!(
        ask(&mut carol, ":users nowhere"),
        ["! no such room #nowhere"]
    );
    assert_eq!(
        ask(&mut carol, ":users"),
        ["* users in #lobby: alice Bob carol"]
    );
}

#[test]
fn a_rename_reaches_someone_sharing_two_rooms_once() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "bob", "carol"]);
    join(&mut alice, "rust");
    join(&mut bob, "rust");
    join(&mut carol, "go");
    carol.send(":part lobby");
    carol.expect("[#lobby] * carol left #lobby");
    alice.sync();
    bob.sync();

    alice.send(":nick alicia");
    alice.expect("* alice is now known as alicia");
    bob.expect("* alice is now known as alicia");
    bob.assert_quiet(); // once, though they share #lobby and #rust
    carol.assert_quiet();
}

#[test]
fn a_quit_is_announced_in_every_room() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "bob", "carol"]);
    join(&mut alice, "rust");
    join(&mut bob, "rust");
    join(&mut alice, "go");
    join(&mut carol, "go");
    bob.send(":join lobby");
    bob.sync();
    alice.sync();
    carol.sync();

    alice.send(":quit tea");
    alice.expect("* bye");
    let mut seen = vec![bob.line(), bob.line()];
    seen.sort();
    assert_eq!(
        seen,
        [
            "* alice left #lobby (tea)",
            "[#rust] * alice left #rust (tea)"
        ]
    );
    let mut seen = vec![carol.line(), carol.line()];
    seen.sort();
    assert_eq!(
        seen,
        [
            "* alice left #go (tea)",
            "[#lobby] * alice left #lobby (tea)"
        ]
    );
    assert_eq!(
        ask(&mut bob, ":rooms"),
        ["* rooms: #go (1), #lobby (2), #rust (1)"]
    );
}

#[test]
fn a_websocket_and_a_tcp_client_in_two_shared_rooms_see_the_same_lines() {
    let server = start();
    let mut tcp = Client::named(server.addr(), "tcpuser");
    let mut ws = tungstenite_client(server.web_addr().expect("web address"));
    let ws_nick = tung_welcome(&mut ws);
    tcp.expect(&format!("* {ws_nick} joined #lobby"));
    tung_send(&mut ws, ":nick webuser");
    assert_eq!(
        tung_text(&mut ws),
        format!("* {ws_nick} is now known as webuser")
    );
    tcp.expect(&format!("* {ws_nick} is now known as webuser"));
    join(&mut tcp, "rust");
    tung_send(&mut ws, ":join rust");
    assert_eq!(tung_text(&mut ws), "* webuser joined #rust");
    tcp.expect("* webuser joined #rust");
    let [mut talker] = named(server.addr(), ["talker"]); // #lobby only
    let arrival = tcp.sync();
    assert_eq!(
        ws_sync(&mut ws),
        arrival,
        "the same lines, the same prefixes"
    );

    // Both have #rust current: #lobby's lines come prefixed to both.
    talker.send("from the lobby");
    tcp.expect("[#lobby] talker: from the lobby");
    assert_eq!(tung_text(&mut ws), "[#lobby] talker: from the lobby");
    tcp.send("in rust");
    assert_eq!(tung_text(&mut ws), "tcpuser: in rust");
    tung_send(&mut ws, ":me waves");
    tcp.expect("* webuser waves");

    // The WebSocket client makes #lobby current: now it is the other way.
    tung_send(&mut ws, ":join lobby");
    assert_eq!(tung_text(&mut ws), "* current room #lobby");
    talker.send("again");
    assert_eq!(tung_text(&mut ws), "talker: again");
    tcp.expect("[#lobby] talker: again");
    tcp.send("still rust");
    assert_eq!(tung_text(&mut ws), "[#rust] tcpuser: still rust");
    tung_send(&mut ws, ":part rust");
    assert_eq!(tung_text(&mut ws), "[#rust] * webuser left #rust");
    tcp.expect("* webuser left #rust");
}

#[test]
fn a_client_in_twenty_rooms_that_stops_reading_is_cut_off_and_leaves_them_all() {
    // A flood on purpose: flood control off.
    let server = start_with(|c| {
        c.max_outbuf_bytes = 256 * 1024;
        c.flood = loopchat::policy::limits::FloodLimit::OFF;
    });
    let [mut alice, mut bob, mut slow] = named(server.addr(), ["alice", "bob", "slow"]);
    for n in 1..20 {
        join(&mut slow, &format!("r{n}"));
        join(&mut bob, &format!("r{n}"));
    }
    bob.sync();
    alice.sync();
    // `slow` never reads while alice floods #lobby; bob, who has #r19
    // current, reads everything.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooder = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let batch: String = (0..500).map(|i| format!("{i:0>90}\n")).collect();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                alice.send_bytes(batch.as_bytes());
                alice.sync(); // keep pace with the server
            }
        })
    };
    let mut n = 0;
    let mut left = Vec::new();
    while left.len() < 20 {
        let line = bob.line();
        if line.contains("* slow left #") {
            left.push(line);
            continue;
        }
        assert_eq!(
            line,
            format!("[#lobby] alice: {:0>90}", n % 500),
            "in order"
        );
        n += 1;
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    flooder.join().expect("flooder");
    left.sort();
    let mut expected: Vec<String> = (1..19)
        .map(|n| format!("[#r{n}] * slow left #r{n} (too slow)"))
        .collect();
    expected.push("* slow left #r19 (too slow)".to_string());
    expected.push("[#lobby] * slow left #lobby (too slow)".to_string());
    expected.sort();
    assert_eq!(left, expected, "announced once in each of its 20 rooms");
    bob.send(":users r7");
    bob.skip_until("* users in #r7: bob"); // slow is gone
}
