//! The server's part of end-to-end encrypted private messages (protocol
//! 1.2, `:key`, `:keys`, `:e2e`) over real sockets: the key directory and
//! its 8-key limit, the relay byte for byte, the refusals' exact lines,
//! keys kept across a restart, and a payload that reaches neither the history file (nor its `-wal`)
//! nor the server's log while a plain line beside it does reach the file.

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::Duration;

/// Sends `line` and returns every line answered before a pong.
fn ask(client: &mut Client, line: &str) -> Vec<String> {
    client.send(line);
    client.sync()
}

/// A client named `nick` that registered it (and so is logged in).
fn registered(addr: SocketAddr, nick: &str) -> Client {
    let mut client = Client::named(addr, nick);
    client.send(":register hunter22");
    client.expect(&format!("* registered {nick}"));
    client
}

/// The `i`th of some distinct valid keys: 43 characters of base64url,
/// the last one carrying zero bits.
fn key(i: u8) -> String {
    format!("{}{}A", "A".repeat(41), char::from(b'A' + i))
}

/// A payload with every printable ASCII character but space.
fn every_printable() -> String {
    (b'!'..=b'~').map(char::from).collect()
}

#[test]
fn keys_are_published_listed_and_limited_to_8_per_account() {
    let server = start();
    let mut alice = registered(server.addr(), "alice");
    let mut bob = registered(server.addr(), "bob");
    alice.sync();
    assert_eq!(ask(&mut bob, ":keys alice"), ["* keys alice: none"]);
    assert_eq!(ask(&mut alice, ":key"), ["! usage: :key KEY"]);
    assert_eq!(ask(&mut alice, ":keys"), ["! usage: :keys NICK"]);
    for bad in [
        "short".to_string(),
        format!("{}B", &key(0)[..42]), // low bits set in the last character
        format!("{}=", &key(0)[..42]),
        format!("{} extra", key(0)),
    ] {
        assert_eq!(
            ask(&mut alice, &format!(":key {bad}")),
            ["! invalid key"],
            "{bad}"
        );
    }
    for i in 0..9 {
        assert_eq!(
            ask(&mut alice, &format!(":key {}", key(i))),
            ["* key published"]
        );
    }
    // The ninth dropped the oldest; oldest first.
    let kept: Vec<String> = (1..9).map(key).collect();
    assert_eq!(
        ask(&mut bob, ":keys alice"),
        [format!("* keys alice: {}", kept.join(" "))]
    );
    assert_eq!(
        ask(&mut bob, ":keys ALICE"),
        [format!("* keys ALICE: {}", kept.join(" "))]
    );
    assert_eq!(ask(&mut alice, ":keys nobody"), ["* keys nobody: none"]);
    // A guest may look keys up, never publish.
    let mut guest = Client::connect(server.addr());
    assert_eq!(
        ask(&mut guest, &format!(":key {}", key(0))),
        ["! log in first"]
    );
    assert_eq!(
        ask(&mut guest, ":keys alice"),
        [format!("* keys alice: {}", kept.join(" "))]
    );
    // The help lists the commands.
    assert!(ask(&mut guest, ":help").contains(
        &"* :key KEY, :keys NICK, :e2e NICK PAYLOAD - end-to-end encryption: publish your \
          device's key, list an account's keys, relay an encrypted payload (logged in)"
            .to_string()
    ));
}

#[test]
fn a_payload_is_relayed_byte_for_byte_and_refusals_are_exact() {
    let server = start();
    let mut alice = registered(server.addr(), "alice");
    let mut bob = registered(server.addr(), "bob");
    let mut carol = Client::connect(server.addr());
    let guest = carol.nick.clone();
    alice.sync();
    bob.sync();

    let payload = format!("v1.m.0123456789abcdef.7.{}", every_printable());
    assert!(ask(&mut alice, &format!(":e2e bob {payload}")).is_empty());
    assert_eq!(bob.sync(), [format!("[e2e] alice: {payload}")]);
    // Both ways, to a nick in another letter case.
    assert!(ask(&mut bob, ":e2e ALICE v1.a.00.Zz").is_empty());
    assert_eq!(alice.sync(), ["[e2e] bob: v1.a.00.Zz"]);

    // Refusals, each to the sender only.
    assert_eq!(ask(&mut carol, ":e2e alice v1.a.00.Zz"), ["! log in first"]);
    assert_eq!(
        ask(&mut alice, ":e2e nobody v1.a.00.Zz"),
        ["! no such user nobody"]
    );
    assert_eq!(
        ask(&mut alice, &format!(":e2e {guest} v1.a.00.Zz")),
        [format!("! {guest} is not logged in")]
    );
    for malformed in [":e2e bob", ":e2e bob two words", ":e2e bob héllo", ":e2e"] {
        assert_eq!(
            ask(&mut alice, malformed),
            ["! usage: :e2e NICK PAYLOAD"],
            "{malformed}"
        );
    }
    // A control character is not printable ASCII either.
    alice.send_bytes(b":e2e bob a\x01b\n");
    assert_eq!(alice.sync(), ["! usage: :e2e NICK PAYLOAD"]);
    // None of it reached anyone else.
    assert!(bob.sync().is_empty());
    assert!(carol.sync().is_empty());
    // A peer that logs out is no longer reachable.
    assert_eq!(ask(&mut bob, ":logout")[0], "* logged out");
    let bob_now = bob.sync();
    assert!(bob_now.is_empty(), "{bob_now:?}");
    let renamed = alice.sync();
    let guest_bob = renamed[0]
        .strip_prefix("* bob is now known as ")
        .unwrap_or_else(|| panic!("{renamed:?}"))
        .to_string();
    assert_eq!(
        ask(&mut alice, &format!(":e2e {guest_bob} v1.a.00.Zz")),
        [format!("! {guest_bob} is not logged in")]
    );
}

#[test]
fn a_payload_is_never_in_the_history_file_nor_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut server = ServerProcess::start(&["--history-file", path.to_str().unwrap()], None);
    let mut alice = registered(server.addr, "alice");
    let mut bob = registered(server.addr, "bob");
    alice.sync();
    bob.sync();
    let canary = "v1.m.0123456789abcdef.1.canary-e2e-4711-xyzzy";
    let control = "plain control line 4711 plugh";
    for i in 0..9 {
        assert_eq!(
            ask(&mut alice, &format!(":key {}", key(i))),
            ["* key published"]
        );
    }
    alice.send(control);
    alice.send(&format!(":e2e bob {canary}"));
    alice.sync();
    assert_eq!(
        bob.sync(),
        [
            format!("alice: {control}"),
            format!("[e2e] alice: {canary}")
        ]
    );
    drop((alice, bob));
    server.signal(libc::SIGTERM);
    assert!(server.child.wait().unwrap().success());
    // The log: every line the server wrote, to its end.
    let mut log = Vec::new();
    while let Ok(line) = server.log.recv_timeout(Duration::from_secs(10)) {
        log.push(line);
    }
    assert!(log.iter().all(|line| !line.contains("canary")), "{log:?}");

    let mut file = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("history.db-wal")) {
        file.extend(wal);
    }
    let contains = |needle: &str| {
        file.windows(needle.len())
            .any(|window| window == needle.as_bytes())
    };
    assert!(contains(control), "the control line is in the history file");
    assert!(!contains("canary"), "the payload is not");
    // And through SQLite: the history holds the control line only.
    let db = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut found_control = false;
    for table in tables {
        let dump: Vec<String> = db
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .unwrap()
            .query_map([], |row| {
                let mut text = String::new();
                let mut i = 0;
                while let Ok(value) = row.get_ref(i) {
                    if let Ok(s) = value.as_str() {
                        text.push_str(s);
                    }
                    i += 1;
                }
                Ok(text)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        found_control |= dump.iter().any(|row| row.contains(control));
        assert!(dump.iter().all(|row| !row.contains("canary")), "{table}");
    }
    assert!(found_control);
    drop(db);

    // The keys are stored with the account: a restart keeps the 8 newest.
    let server = ServerProcess::start(&["--history-file", path.to_str().unwrap()], None);
    let mut guest = Client::connect(server.addr);
    let kept: Vec<String> = (1..9).map(key).collect();
    assert_eq!(
        ask(&mut guest, ":keys alice"),
        [format!("* keys alice: {}", kept.join(" "))]
    );
    assert_eq!(ask(&mut guest, ":keys bob"), ["* keys bob: none"]);
}

/// One side of a conversation through the real server: a logged-in
/// connection and the terminal client's end-to-end library.
struct Side {
    client: Client,
    e2e: loopchat_client::e2e::E2e,
    shown: Vec<loopchat_client::e2e::Shown>,
    /// Every line the server sent this side.
    heard: Vec<String>,
}

impl Side {
    fn new(addr: SocketAddr, nick: &str) -> Side {
        let mut client = registered(addr, nick);
        let e2e = loopchat_client::e2e::E2e::with(
            loopchat_client::e2e::KeyPair::generate(),
            loopchat_client::e2e::Pins::in_memory(),
            "loopchat",
            nick,
        );
        assert_eq!(ask(&mut client, &e2e.publish()), ["* key published"]);
        Side {
            client,
            e2e,
            shown: Vec::new(),
            heard: Vec::new(),
        }
    }

    /// Reads what the server sent, hands `[e2e]` lines to the library and
    /// sends its answers; whether anything came.
    fn turn(&mut self) -> bool {
        let lines = self.client.sync();
        for line in &lines {
            if let Some((answers, shown)) = self.e2e.on_line(line) {
                for answer in answers {
                    self.client.send(&answer);
                }
                self.shown.extend(shown);
            }
        }
        self.heard.extend(lines.iter().cloned());
        !lines.is_empty()
    }
}

/// Runs both sides until neither hears anything more.
fn pump(a: &mut Side, b: &mut Side) {
    while a.turn() | b.turn() {}
}

fn messages(side: &Side) -> Vec<(String, String)> {
    side.shown
        .iter()
        .filter_map(|shown| match shown {
            loopchat_client::e2e::Shown::Message { peer, text } => {
                Some((peer.clone(), text.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_terminal_clients_library_talks_end_to_end_through_the_server() {
    let server = start();
    let mut alice = Side::new(server.addr(), "alice");
    let mut bob = Side::new(server.addr(), "bob");
    pump(&mut alice, &mut bob);
    alice.heard.clear();
    bob.heard.clear();
    // Each sees the other's published key.
    let bob_key = bob.e2e.public_key();
    assert_eq!(
        ask(&mut alice.client, ":keys bob"),
        [format!("* keys bob: {bob_key}")]
    );

    let lines = alice.e2e.send("bob", "the canary 4711 to bob").unwrap();
    assert_eq!(lines[0], ":keys bob", "the directory before the handshake");
    for line in lines {
        assert!(
            line == ":keys bob" || line.starts_with(":e2e bob v1."),
            "{line}"
        );
        alice.client.send(&line);
    }
    pump(&mut alice, &mut bob);
    assert!(alice.e2e.is_secure("bob") && bob.e2e.is_secure("alice"));
    assert_eq!(
        messages(&bob),
        [("alice".to_string(), "the canary 4711 to bob".to_string())]
    );
    for line in bob.e2e.send("alice", "and back 0815").unwrap() {
        bob.client.send(&line);
    }
    pump(&mut alice, &mut bob);
    assert_eq!(
        messages(&alice),
        [("bob".to_string(), "and back 0815".to_string())]
    );
    assert_eq!(
        alice.e2e.safety_number("bob"),
        bob.e2e.safety_number("alice")
    );
    // On the wire, both ways: relayed lines only (and the directory's
    // answer alice's library asked for before its handshake), never the text.
    assert!(alice.heard.contains(&format!("* keys bob: {bob_key}")));
    for line in alice.heard.iter().chain(&bob.heard) {
        assert!(
            line.starts_with("[e2e] ") || line.starts_with("* keys bob: "),
            "{line}"
        );
        assert!(!line.contains("canary") && !line.contains("0815"), "{line}");
    }
}
