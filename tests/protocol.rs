//! Protocol tests: sessions, every command, every server line and the
//! guarantees of `docs/protocol.md`, against a real server over real sockets.
//! Malformed input (framing, line limit, UTF-8, control characters,
//! half-close) is in `bad_input.rs`.
//!
//! To check that a client did NOT receive a line, `Client::assert_quiet` does a
//! `:ping` round trip on it: the server handles lines in order, so anything
//! it owed that client would arrive before the pong.

mod common;

use common::*;
use loopchat::RunningServer;
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

/// Connects one client per nick, in order, renames each, then drains the
/// join and rename lines every one of them saw.
fn named<const N: usize>(addr: SocketAddr, nicks: [&str; N]) -> [Client; N] {
    let mut clients: [Client; N] = std::array::from_fn(|i| Client::named(addr, nicks[i]));
    for client in &mut clients {
        client.sync();
    }
    clients
}

/// Moves `client` from `#lobby` to `room` (typed without `#`, new or
/// spelled as created): joins it, then parts `#lobby` (version 1.2 keeps
/// the rooms one was in), and reads up to its own left line. Only for
/// setup: whoever is in either room sees lines too.
fn move_to(client: &mut Client, room: &str) {
    client.send(&format!(":join {room}"));
    client.skip_until(&format!("* {} joined #{room}", client.nick));
    client.send(":part lobby");
    client.skip_until(&format!("[#lobby] * {} left #lobby", client.nick));
}

/// Sends `line` and returns every line answered before a pong.
fn ask(client: &mut Client, line: &str) -> Vec<String> {
    client.send(line);
    client.sync()
}

/// The `:users` line `client` gets.
fn users(client: &mut Client) -> String {
    client.send(":users");
    client.line()
}

/// The `:rooms` line `client` gets.
fn rooms(client: &mut Client) -> String {
    client.send(":rooms");
    client.line()
}

/// Starts a server with a password.
fn start_with_password(password: &str) -> RunningServer {
    let password = password.to_string();
    start_with(move |c| c.password = Some(password))
}

/// Authenticates a raw client on a password server; returns its guest nick.
fn authenticate(client: &mut Client, password: &str) -> String {
    client.send(&format!(":auth {password}"));
    client.read_welcome()
}

// ---------------------------------------------------------------- defaults

#[test]
fn defaults_are_the_documented_ones() {
    let config = loopchat::Config::default();
    assert_eq!(config.addr, "127.0.0.1:7878".parse().unwrap());
    assert_eq!(config.max_line_bytes, 4096);
    assert_eq!(config.max_outbuf_bytes, 1024 * 1024);
    assert_eq!(config.password, None);
    assert_eq!(config.close_timeout, Duration::from_secs(5));
}

// ---------------------------------------------------------------- sessions

#[test]
fn welcome_and_own_join_are_the_first_lines_ending_in_lf_only() {
    let server = start();
    let mut first = Client::connect_raw(server.addr());
    let mut bytes = vec![0; "* welcome guest1\n* guest1 joined #lobby\n".len()];
    std::io::Read::read_exact(&mut first.reader, &mut bytes).expect("welcome bytes");
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "* welcome guest1\n* guest1 joined #lobby\n"
    );
}

#[test]
fn guest_numbers_count_up_from_one() {
    let server = start();
    let first = Client::connect(server.addr());
    let second = Client::connect(server.addr());
    let third = Client::connect(server.addr());
    assert_eq!(
        [first.nick, second.nick, third.nick],
        ["guest1", "guest2", "guest3"]
    );
}

#[test]
fn guest_numbers_are_not_reused_after_a_guest_leaves() {
    let server = start();
    let mut first = Client::connect(server.addr());
    let _second = Client::connect(server.addr());
    first.send(":quit");
    first.skip_until("* bye");
    first.expect_closed();
    drop(first);
    let third = Client::connect(server.addr());
    assert_eq!(third.nick, "guest3");
}

#[test]
fn guest_numbers_skip_nicks_in_use_case_insensitively() {
    let server = start();
    let _taker = Client::named(server.addr(), "GUEST2"); // was guest1
    let next = Client::connect(server.addr());
    assert_eq!(next.nick, "guest3", "guest2 is in use as GUEST2");
}

#[test]
fn guest_numbers_skip_a_later_nick_in_use() {
    let server = start();
    let _taker = Client::named(server.addr(), "GUEST3"); // was guest1
    let second = Client::connect(server.addr());
    let third = Client::connect(server.addr());
    assert_eq!(second.nick, "guest2");
    assert_eq!(third.nick, "guest4", "guest3 is in use as GUEST3");
}

#[test]
fn join_line_goes_to_every_lobby_member_and_the_newcomer() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "bob", "carol"]);
    move_to(&mut carol, "rust");
    alice.expect("* carol left #lobby");
    bob.expect("* carol left #lobby");

    let newcomer = Client::connect(server.addr()); // reads its own join line
    alice.expect(&format!("* {} joined #lobby", newcomer.nick));
    bob.expect(&format!("* {} joined #lobby", newcomer.nick));
    carol.assert_quiet();
}

// ---------------------------------------------------------------- chat

#[test]
fn chat_reaches_everyone_else_in_the_room_but_not_the_sender() {
    let server = start();
    let [mut alice, mut bob, mut carol, mut dave] =
        named(server.addr(), ["alice", "bob", "carol", "dave"]);
    move_to(&mut dave, "rust");
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect("* dave left #lobby");
    }

    alice.send("hello");
    bob.expect("alice: hello");
    carol.expect("alice: hello");
    alice.assert_quiet();
    dave.assert_quiet();
}

#[test]
fn chat_in_a_room_stays_in_that_room() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "bob", "carol"]);
    move_to(&mut alice, "rust");
    move_to(&mut bob, "rust");
    alice.expect("* bob joined #rust");
    carol.skip_until("* bob left #lobby");

    bob.send("in rust");
    alice.expect("bob: in rust");
    carol.assert_quiet();
}

#[test]
fn double_colon_sends_chat_starting_with_one_colon() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send("::nick bob");
    bob.expect("alice: :nick bob");
    alice.send(":::)");
    bob.expect("alice: ::)");
    alice.send("::");
    bob.expect("alice: :");
    alice.assert_quiet();
    assert_eq!(users(&mut alice), "* users in #lobby: alice bob");
}

#[test]
fn spaces_only_line_is_delivered_verbatim() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send("   ");
    bob.expect("alice:    ");
    alice.send(" ");
    bob.expect("alice:  ");
}

#[test]
fn chat_text_is_delivered_verbatim_with_its_spaces() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send("  two  spaces\tand a tab  ");
    bob.expect("alice:   two  spaces\tand a tab  ");
    alice.send("héllo wörld ✓ 🦀");
    bob.expect("alice: héllo wörld ✓ 🦀");
}

// ---------------------------------------------------------------- :help

fn command_word(help_line: &str) -> &str {
    help_line
        .strip_prefix("* ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("help line {help_line:?}"))
}

/// The rows of `:help` on a server with or without a password.
fn expected_len(with_auth: bool) -> usize {
    loopchat::protocol::HelpRow::rows(with_auth).count()
}

#[test]
fn help_lists_every_command_one_star_line_each() {
    let server = start();
    let mut alice = Client::connect(server.addr());
    let help = ask(&mut alice, ":help");
    assert_eq!(help.len(), expected_len(false), "{help:?}");
    assert!(help.iter().all(|l| l.starts_with("* :")), "{help:?}");
    let words: BTreeSet<&str> = help.iter().map(|l| command_word(l)).collect();
    // The operators' commands share one line, as they share one row of
    // the protocol's table.
    let expected: BTreeSet<&str> = [
        ":help",
        ":nick",
        ":pm",
        ":users",
        ":join",
        ":part",
        ":rooms",
        ":me",
        ":ping",
        ":quit",
        ":history",
        ":tags",
        ":topic",
        ":op",
        ":register",
        ":login",
        ":token",
        ":logout",
        ":passwd",
        ":whois",
        // `:key`, `:keys` and `:e2e` share one line (version 1.2).
        ":key",
    ]
    .into();
    assert_eq!(words, expected, "{help:?}");
}

#[test]
fn help_puts_pm_and_msg_on_one_line() {
    let server = start();
    let mut alice = Client::connect(server.addr());
    let help = ask(&mut alice, ":help");
    let pm: Vec<&String> = help.iter().filter(|l| l.contains(":pm")).collect();
    assert_eq!(pm.len(), 1, "{help:?}");
    assert!(pm[0].contains(":msg"), "{help:?}");
    assert_eq!(help.iter().filter(|l| l.contains(":msg")).count(), 1);
}

#[test]
fn help_without_password_does_not_list_auth() {
    let server = start();
    let mut alice = Client::connect(server.addr());
    let help = ask(&mut alice, ":help");
    assert!(!help.iter().any(|l| l.contains(":auth")), "{help:?}");
}

#[test]
fn help_with_password_adds_an_auth_line() {
    let server = start_with_password("s3cret");
    let mut alice = Client::connect_raw(server.addr());
    alice.expect("* password required");
    authenticate(&mut alice, "s3cret");
    let help = ask(&mut alice, ":help");
    assert_eq!(help.len(), expected_len(true), "{help:?}");
    assert!(help.iter().all(|l| l.starts_with("* :")), "{help:?}");
    assert_eq!(
        help.iter().filter(|l| command_word(l) == ":auth").count(),
        1,
        "{help:?}"
    );
}

#[test]
fn help_does_not_reach_others() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    ask(&mut alice, ":help");
    bob.assert_quiet();
}

// ---------------------------------------------------------------- :nick

#[test]
fn nick_change_is_announced_to_the_room_including_the_renamer() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "bob", "carol"]);
    move_to(&mut carol, "rust");
    alice.expect("* carol left #lobby");
    bob.expect("* carol left #lobby");

    alice.send(":nick alicia");
    alice.expect("* alice is now known as alicia");
    bob.expect("* alice is now known as alicia");
    carol.assert_quiet();
    assert_eq!(users(&mut bob), "* users in #lobby: alicia bob");
}

#[test]
fn new_nick_is_used_for_chat_and_pm() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":nick alicia");
    alice.expect("* alice is now known as alicia");
    bob.expect("* alice is now known as alicia");
    alice.send("hi");
    bob.expect("alicia: hi");
    bob.send(":pm alicia yo");
    alice.expect("[pm] bob: yo");
    bob.send(":pm alice yo");
    bob.expect("! no such user alice");
}

#[test]
fn nick_accepts_letters_digits_underscore_and_dash() {
    let server = start();
    let mut alice = Client::connect(server.addr());
    let guest = alice.nick.clone();
    alice.send(":nick a-B_9");
    alice.expect(&format!("* {guest} is now known as a-B_9"));
    alice.send(":nick Z");
    alice.expect("* a-B_9 is now known as Z");
}

#[test]
fn nick_of_32_chars_is_valid() {
    let server = start();
    let mut alice = Client::named(server.addr(), "alice");
    let name = format!("a{}", "b".repeat(31));
    alice.send(&format!(":nick {name}"));
    alice.expect(&format!("* alice is now known as {name}"));
}

#[test]
fn nick_of_33_chars_is_invalid() {
    let server = start();
    let mut alice = Client::named(server.addr(), "alice");
    let name = format!("a{}", "b".repeat(32));
    alice.send(&format!(":nick {name}"));
    alice.expect(&format!("! invalid name {name}"));
    assert_eq!(users(&mut alice), "* users in #lobby: alice");
}

#[test]
fn nick_must_start_with_a_letter() {
    let server = start();
    let mut alice = Client::named(server.addr(), "alice");
    for name in ["1abc", "9", "_abc", "-abc", "*star", "!bang", "[pm]"] {
        alice.send(&format!(":nick {name}"));
        alice.expect(&format!("! invalid name {name}"));
    }
    assert_eq!(users(&mut alice), "* users in #lobby: alice");
}

#[test]
fn nick_with_other_characters_is_invalid() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    for name in [
        "al!ce", "al.ce", "a*b", "a#b", "a:b", "élan", "aé", "a+b", "[x]",
    ] {
        alice.send(&format!(":nick {name}"));
        alice.expect(&format!("! invalid name {name}"));
    }
    assert_eq!(users(&mut alice), "* users in #lobby: alice bob");
    bob.assert_quiet();
}

#[test]
fn nick_in_use_is_taken_compared_case_insensitively() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":nick bob");
    alice.expect("! nick bob is taken");
    alice.send(":nick BOB");
    alice.expect("! nick BOB is taken");
    alice.send(":nick bOb");
    alice.expect("! nick bOb is taken");
    bob.assert_quiet();
    assert_eq!(users(&mut alice), "* users in #lobby: alice bob");
}

#[test]
fn nick_in_use_in_another_room_is_taken() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    move_to(&mut bob, "rust");
    alice.expect("* bob left #lobby");
    alice.send(":nick Bob");
    alice.expect("! nick Bob is taken");
}

#[test]
fn own_nick_case_change_is_allowed_and_announced() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":nick ALICE");
    alice.expect("* alice is now known as ALICE");
    bob.expect("* alice is now known as ALICE");
    assert_eq!(users(&mut bob), "* users in #lobby: ALICE bob");
}

#[test]
fn old_nick_is_free_after_a_rename() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":nick alicia");
    alice.expect("* alice is now known as alicia");
    bob.expect("* alice is now known as alicia");
    bob.send(":nick Alice");
    bob.expect("* bob is now known as Alice");
    alice.expect("* bob is now known as Alice");
}

#[test]
fn nick_name_is_only_the_next_word() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":nick carl and more words");
    alice.expect("* alice is now known as carl");
    bob.expect("* alice is now known as carl");
}

// ---------------------------------------------------------------- :pm / :msg

#[test]
fn pm_reaches_the_recipient_wherever_they_are_and_no_one_else() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "bob", "carol"]);
    move_to(&mut bob, "rust");
    alice.expect("* bob left #lobby");
    carol.expect("* bob left #lobby");

    alice.send(":pm bob hello there");
    bob.expect("[pm] alice: hello there");
    alice.assert_quiet(); // no echo for the sender
    carol.assert_quiet();
}

#[test]
fn pm_recipient_is_matched_case_insensitively() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "Bob"]);
    alice.send(":pm bOB hi");
    bob.expect("[pm] alice: hi");
    alice.send(":pm BOB hi again");
    bob.expect("[pm] alice: hi again");
    alice.assert_quiet();
}

#[test]
fn msg_is_an_alias_of_pm() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":msg bob psst");
    bob.expect("[pm] alice: psst");
    alice.assert_quiet();
}

#[test]
fn pm_to_yourself_reaches_you() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":pm alice note to self");
    alice.expect("[pm] alice: note to self");
    alice.send(":pm ALICE again");
    alice.expect("[pm] alice: again");
    alice.assert_quiet();
    bob.assert_quiet();
}

#[test]
fn pm_to_nobody_is_no_such_user_as_typed() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":pm Nobody hi");
    alice.expect("! no such user Nobody");
    alice.send(":msg carol hi");
    alice.expect("! no such user carol");
    bob.assert_quiet();
}

#[test]
fn pm_text_is_the_rest_of_the_line_verbatim() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":pm bob a  b :c ");
    bob.expect("[pm] alice: a  b :c ");
}

// ---------------------------------------------------------------- :users

#[test]
fn users_lists_the_room_sorted_by_lowercase_including_the_asker() {
    let server = start();
    let [mut carol, _bob, mut alice] = named(server.addr(), ["carol", "Bob", "alice"]);
    // Byte order would put "Bob" first.
    assert_eq!(users(&mut alice), "* users in #lobby: alice Bob carol");
    assert_eq!(users(&mut carol), "* users in #lobby: alice Bob carol");
}

#[test]
fn users_lists_only_the_current_room() {
    let server = start();
    let [mut alice, _bob, mut dave] = named(server.addr(), ["alice", "bob", "dave"]);
    move_to(&mut dave, "Rust");
    alice.expect("* dave left #lobby");
    assert_eq!(users(&mut dave), "* users in #Rust: @dave");
    assert_eq!(users(&mut alice), "* users in #lobby: alice bob");
}

// ---------------------------------------------------------------- :join

#[test]
fn join_keeps_the_old_room_and_announces_the_join_to_the_new_one() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "bob", "carol"]);
    move_to(&mut carol, "rust");
    alice.expect("* carol left #lobby");
    bob.expect("* carol left #lobby");

    alice.send(":join rust");
    alice.expect("* alice joined #rust");
    carol.expect("* alice joined #rust");
    bob.assert_quiet(); // version 1.2: alice is still in #lobby
    assert_eq!(users(&mut alice), "* users in #rust: alice @carol");
    assert_eq!(users(&mut bob), "* users in #lobby: alice bob");
    alice.assert_quiet();
}

#[test]
fn join_hash_is_optional() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":join #rust");
    alice.expect("* alice joined #rust");
    bob.send(":join rust");
    bob.expect("* bob joined #rust");
    alice.expect("* bob joined #rust");
    assert_eq!(users(&mut bob), "* users in #rust: @alice bob");
}

#[test]
fn join_back_to_lobby() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    move_to(&mut alice, "rust");
    bob.expect("* alice left #lobby");
    alice.send(":join lobby");
    alice.expect("* alice joined #lobby");
    bob.expect("* alice joined #lobby");
}

#[test]
fn room_keeps_the_spelling_of_the_join_that_created_it() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":join RuSt");
    alice.expect("* alice joined #RuSt");
    bob.send(":join #rust");
    bob.expect("* bob joined #RuSt");
    alice.expect("* bob joined #RuSt");
    assert_eq!(rooms(&mut bob), "* rooms: #lobby (2), #RuSt (2)");
    assert_eq!(users(&mut bob), "* users in #RuSt: @alice bob");
}

#[test]
fn lobby_is_matched_case_insensitively() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    move_to(&mut alice, "rust");
    bob.expect("* alice left #lobby");
    alice.send(":join #LOBBY");
    alice.expect("* alice joined #lobby");
    bob.expect("* alice joined #lobby");
}

#[test]
fn join_the_current_room_is_already_in() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":join #lobby");
    alice.expect("! already in #lobby");
    move_to(&mut alice, "rust");
    bob.expect("* alice left #lobby");
    alice.send(":join #rust");
    alice.expect("! already in #rust");
    alice.send(":join #RUST");
    alice.expect("! already in #RUST"); // as typed
    bob.assert_quiet();
    assert_eq!(users(&mut alice), "* users in #rust: @alice");
}

#[test]
fn join_invalid_room_name_is_refused_as_typed() {
    let server = start();
    let mut alice = Client::named(server.addr(), "alice");
    let too_long = format!("r{}", "x".repeat(32));
    for room in ["9lives", "bad.room", "_x", "é", too_long.as_str()] {
        alice.send(&format!(":join {room}"));
        alice.expect(&format!("! invalid name {room}"));
    }
    assert_eq!(users(&mut alice), "* users in #lobby: alice");
    assert_eq!(rooms(&mut alice), "* rooms: #lobby (1)");
}

#[test]
fn room_name_of_32_chars_is_valid() {
    let server = start();
    let mut alice = Client::named(server.addr(), "alice");
    let room = format!("r{}", "x".repeat(31));
    move_to(&mut alice, &room);
}

#[test]
fn join_room_is_only_the_next_word() {
    let server = start();
    let mut alice = Client::named(server.addr(), "alice");
    alice.send(":join rust and more");
    alice.expect("* alice joined #rust");
}

#[test]
fn empty_rooms_disappear_but_lobby_stays_as_zero() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    move_to(&mut alice, "rust");
    bob.expect("* alice left #lobby");
    move_to(&mut bob, "rust");
    alice.expect("* bob joined #rust");
    assert_eq!(rooms(&mut alice), "* rooms: #lobby (0), #rust (2)");

    for client in [&mut alice, &mut bob] {
        client.send(":join go");
        client.send(":part rust");
        client.skip_until(&format!("[#rust] * {} left #rust", client.nick));
    }
    alice.skip_until("* bob joined #go");
    assert_eq!(rooms(&mut bob), "* rooms: #go (2), #lobby (0)");
}

#[test]
fn room_emptied_by_a_quit_disappears() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    move_to(&mut alice, "rust");
    bob.expect("* alice left #lobby");
    alice.send(":quit");
    alice.expect("* bye");
    assert_eq!(rooms(&mut bob), "* rooms: #lobby (1)");
}

#[test]
fn room_created_again_after_disappearing_takes_the_new_spelling() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    move_to(&mut alice, "Rust");
    bob.expect("* alice left #lobby");
    alice.send(":join lobby");
    alice.send(":part Rust");
    alice.skip_until("[#Rust] * alice left #Rust");
    bob.expect("* alice joined #lobby");
    move_to(&mut bob, "rust");
    alice.expect("* bob left #lobby");
    assert_eq!(rooms(&mut alice), "* rooms: #lobby (1), #rust (1)");
}

// ---------------------------------------------------------------- :rooms

#[test]
fn rooms_lists_every_room_with_counts_sorted_by_lowercase() {
    let server = start();
    let [mut a, mut b, mut c, mut d] = named(server.addr(), ["a", "b", "c", "d"]);
    move_to(&mut a, "Beta");
    move_to(&mut b, "alpha");
    move_to(&mut c, "Zed");
    move_to(&mut d, "alpha");
    for client in [&mut a, &mut b, &mut c, &mut d] {
        client.sync();
    }
    // Byte order would be #Beta, #Zed, #alpha, #lobby.
    let expected = "* rooms: #alpha (2), #Beta (1), #lobby (0), #Zed (1)";
    assert_eq!(rooms(&mut c), expected);
    assert_eq!(rooms(&mut a), expected);
}

#[test]
fn rooms_with_only_the_lobby() {
    let server = start();
    let [mut alice, _bob] = named(server.addr(), ["alice", "bob"]);
    assert_eq!(rooms(&mut alice), "* rooms: #lobby (2)");
}

// ---------------------------------------------------------------- :me

#[test]
fn me_is_an_action_line_to_everyone_else_in_the_room() {
    let server = start();
    let [mut alice, mut bob, mut carol, mut dave] =
        named(server.addr(), ["alice", "bob", "carol", "dave"]);
    move_to(&mut dave, "rust");
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect("* dave left #lobby");
    }
    alice.send(":me waves");
    bob.expect("* alice waves");
    carol.expect("* alice waves");
    alice.assert_quiet();
    dave.assert_quiet();
}

#[test]
fn me_text_is_the_rest_of_the_line_verbatim() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":me waves  twice :) ");
    bob.expect("* alice waves  twice :) ");
}

// ---------------------------------------------------------------- :ping

#[test]
fn ping_answers_pong() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":ping");
    alice.expect("* pong");
    bob.assert_quiet();
}

#[test]
fn ping_token_is_echoed_verbatim() {
    let server = start();
    let mut alice = Client::connect(server.addr());
    alice.send(":ping tok");
    alice.expect("* pong tok");
    alice.send(":ping a  b c ");
    alice.expect("* pong a  b c ");
    alice.send(":ping 42");
    alice.expect("* pong 42");
}

// ---------------------------------------------------------------- :quit

#[test]
fn quit_says_bye_then_closes_and_the_room_sees_the_leave() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":quit");
    alice.expect("* bye");
    alice.expect_closed();
    bob.expect("* alice left #lobby");
    assert_eq!(users(&mut bob), "* users in #lobby: bob");
}

#[test]
fn quit_reason_is_shown_to_the_room() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":quit gone  fishing ");
    alice.expect("* bye");
    alice.expect_closed();
    bob.expect("* alice left #lobby (gone  fishing )");
}

#[test]
fn quit_is_announced_only_in_the_quitters_room() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "bob", "carol"]);
    move_to(&mut alice, "rust");
    move_to(&mut bob, "rust");
    alice.expect("* bob joined #rust");
    carol.skip_until("* bob left #lobby");

    alice.send(":quit later");
    alice.expect("* bye");
    alice.expect_closed();
    bob.expect("* alice left #rust (later)");
    carol.assert_quiet();
}

#[test]
fn lines_after_quit_are_not_handled() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send_bytes(b":quit\nnot delivered\n");
    alice.expect("* bye");
    alice.expect_closed();
    bob.expect("* alice left #lobby");
    bob.assert_quiet();
}

// ---------------------------------------------------------------- errors

#[test]
fn unknown_command_is_reported_as_typed() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":foo");
    alice.expect("! unknown command :foo (try :help)");
    alice.send(":FooBar with args");
    alice.expect("! unknown command :FooBar (try :help)");
    bob.assert_quiet();
}

#[test]
fn missing_argument_gets_usage() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    for (line, usage) in [
        (":nick", "! usage: :nick NAME"),
        (":pm", "! usage: :pm NAME TEXT"),
        (":pm bob", "! usage: :pm NAME TEXT"),
        (":join", "! usage: :join ROOM"),
        (":me", "! usage: :me TEXT"),
    ] {
        alice.send(line);
        alice.expect(usage);
    }
    alice.assert_quiet();
    bob.assert_quiet();
    assert_eq!(users(&mut alice), "* users in #lobby: alice bob");
}

#[test]
fn msg_without_arguments_gets_usage() {
    let server = start();
    let mut alice = Client::connect(server.addr());
    for line in [":msg", ":msg bob"] {
        alice.send(line);
        let got = alice.line();
        assert!(
            got == "! usage: :msg NAME TEXT" || got == "! usage: :pm NAME TEXT",
            "{line:?} got {got:?}"
        );
    }
}

#[test]
fn auth_without_password_gets_usage_before_authentication() {
    let server = start_with_password("s3cret");
    let mut raw = Client::connect_raw(server.addr());
    raw.expect("* password required");
    raw.send(":auth");
    raw.expect("! usage: :auth PASSWORD");
}

#[test]
fn command_names_are_case_insensitive() {
    let server = start();
    let [mut alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    alice.send(":PING x");
    alice.expect("* pong x");
    assert_eq!(
        ask(&mut alice, ":HeLp").len(),
        loopchat::protocol::HelpRow::rows(false).count()
    );
    alice.send(":NICK alicia");
    alice.expect("* alice is now known as alicia");
    bob.expect("* alice is now known as alicia");
    alice.send(":USERS");
    alice.expect("* users in #lobby: alicia bob");
    alice.send(":Rooms");
    alice.expect("* rooms: #lobby (2)");
    alice.send(":PM bob a");
    bob.expect("[pm] alicia: a");
    alice.send(":MSG bob b");
    bob.expect("[pm] alicia: b");
    alice.send(":ME c");
    bob.expect("* alicia c");
    alice.send(":NICK");
    alice.expect("! usage: :nick NAME");
    alice.send(":JOIN rust");
    alice.expect("* alicia joined #rust");
    alice.send(":PART Lobby");
    alice.expect("[#lobby] * alicia left #lobby");
    bob.expect("* alicia left #lobby");
    alice.send(":QUIT");
    alice.expect("* bye");
    alice.expect_closed();
}

// ---------------------------------------------------------------- password

#[test]
fn password_prompt_is_the_first_line() {
    let server = start_with_password("s3cret");
    let mut raw = Client::connect_raw(server.addr());
    raw.expect("* password required");
    raw.assert_quiet();
}

#[test]
fn before_auth_other_commands_and_chat_are_refused() {
    let server = start_with_password("s3cret");
    let mut raw = Client::connect_raw(server.addr());
    raw.expect("* password required");
    for line in [
        "hello",
        "::hi",
        ":help",
        ":nick bob",
        ":pm x y",
        ":msg x y",
        ":users",
        ":join rust",
        ":rooms",
        ":me waves",
        ":foo",
    ] {
        raw.send(line);
        raw.expect("! authenticate first: :auth PASSWORD");
    }
}

#[test]
fn before_auth_ping_is_answered() {
    let server = start_with_password("s3cret");
    let mut raw = Client::connect_raw(server.addr());
    raw.expect("* password required");
    raw.send(":ping");
    raw.expect("* pong");
    raw.send(":ping tok");
    raw.expect("* pong tok");
}

#[test]
fn before_auth_quit_says_bye_and_closes_without_a_leave_line() {
    let server = start_with_password("s3cret");
    let mut member = Client::connect_raw(server.addr());
    member.expect("* password required");
    authenticate(&mut member, "s3cret");

    let mut raw = Client::connect_raw(server.addr());
    raw.expect("* password required");
    raw.send(":quit bored");
    raw.expect("* bye");
    raw.expect_closed();
    member.assert_quiet();
}

#[test]
fn unauthenticated_client_is_not_in_the_lobby() {
    let server = start_with_password("s3cret");
    let mut member = Client::connect_raw(server.addr());
    member.expect("* password required");
    let nick = authenticate(&mut member, "s3cret");

    let mut raw = Client::connect_raw(server.addr());
    raw.expect("* password required");
    raw.send(":ping here");
    raw.expect("* pong here");
    member.assert_quiet();
    assert_eq!(users(&mut member), format!("* users in #lobby: {nick}"));
    assert_eq!(rooms(&mut member), "* rooms: #lobby (1)");
    member.send("chat");
    raw.assert_quiet();
    drop(raw);
    member.assert_quiet();
}

#[test]
fn wrong_password_twice_then_too_many_attempts_closes() {
    let server = start_with_password("s3cret");
    let mut raw = Client::connect_raw(server.addr());
    raw.expect("* password required");
    raw.send(":auth nope");
    raw.expect("! wrong password");
    raw.send(":auth S3CRET");
    raw.expect("! wrong password");
    raw.send(":auth s3cret!");
    raw.expect("! too many attempts");
    raw.expect_closed();
}

#[test]
fn right_password_welcomes_then_joins_the_lobby() {
    let server = start_with_password("s3cret");
    let mut first = Client::connect_raw(server.addr());
    first.expect("* password required");
    first.send(":auth s3cret");
    first.expect("* welcome guest1");
    first.expect("* guest1 joined #lobby");

    let mut second = Client::connect_raw(server.addr());
    second.expect("* password required");
    let nick = authenticate(&mut second, "s3cret");
    first.expect(&format!("* {nick} joined #lobby"));
    second.send("hi");
    first.expect(&format!("{nick}: hi"));
}

#[test]
fn right_password_after_two_wrong_ones_is_accepted() {
    let server = start_with_password("s3cret");
    let mut raw = Client::connect_raw(server.addr());
    raw.expect("* password required");
    raw.send(":auth a");
    raw.expect("! wrong password");
    raw.send(":auth b");
    raw.expect("! wrong password");
    authenticate(&mut raw, "s3cret");
}

#[test]
fn password_is_the_rest_of_the_line_verbatim() {
    let server = start_with_password("open  sesame ");
    let mut raw = Client::connect_raw(server.addr());
    raw.expect("* password required");
    raw.send(":auth open sesame");
    raw.expect("! wrong password");
    authenticate(&mut raw, "open  sesame ");
}

#[test]
fn auth_without_a_server_password_is_an_unknown_command() {
    let server = start();
    let mut alice = Client::connect(server.addr());
    alice.send(":auth anything");
    alice.expect("! unknown command :auth (try :help)");
    alice.send(":AUTH");
    alice.expect("! unknown command :AUTH (try :help)");
}

#[test]
fn auth_once_authenticated_is_an_unknown_command() {
    let server = start_with_password("s3cret");
    let mut raw = Client::connect_raw(server.addr());
    raw.expect("* password required");
    authenticate(&mut raw, "s3cret");
    raw.send(":auth s3cret");
    raw.expect("! unknown command :auth (try :help)");
    raw.send(":auth wrong");
    raw.expect("! unknown command :auth (try :help)");
    raw.assert_quiet();
}

// ---------------------------------------------------------------- client limit

#[test]
fn server_full_tells_the_newcomer_then_closes() {
    let server = start_with(|c| c.max_clients = 2);
    let mut first = Client::connect(server.addr());
    let second = Client::connect(server.addr());
    first.expect(&format!("* {} joined #lobby", second.nick));
    let mut third = Client::connect_raw(server.addr());
    third.expect("! server full");
    third.expect_closed();
    first.assert_quiet();
    let expected = format!("* users in #lobby: {} {}", first.nick, second.nick);
    assert_eq!(users(&mut first), expected);
}

#[test]
fn server_full_frees_a_slot_when_a_client_leaves() {
    let server = start_with(|c| c.max_clients = 2);
    let mut first = Client::connect(server.addr());
    let mut second = Client::connect(server.addr());
    let mut rejected = Client::connect_raw(server.addr());
    rejected.expect("! server full");
    rejected.expect_closed();

    first.send(":quit");
    first.skip_until("* bye");
    first.expect_closed();
    drop(first);
    second.expect("* guest1 left #lobby");
    let newcomer = Client::connect(server.addr());
    second.expect(&format!("* {} joined #lobby", newcomer.nick));
}

#[test]
fn server_full_frees_a_slot_when_a_client_disconnects() {
    let server = start_with(|c| c.max_clients = 2);
    let first = Client::connect(server.addr());
    let mut second = Client::connect(server.addr());
    let first_nick = first.nick.clone();
    drop(first);
    second.expect(&format!("* {first_nick} left #lobby"));
    let _newcomer = Client::connect(server.addr());
}

#[test]
fn client_limit_counts_unauthenticated_connections() {
    let server = start_with(|c| {
        c.max_clients = 2;
        c.password = Some("s3cret".into());
    });
    let mut first = Client::connect_raw(server.addr());
    first.expect("* password required");
    let mut second = Client::connect_raw(server.addr());
    second.expect("* password required");
    let mut third = Client::connect_raw(server.addr());
    third.expect("! server full"); // instead of the password prompt
    third.expect_closed();
}

// ---------------------------------------------------------------- disconnects

#[test]
fn disconnect_without_quit_is_announced_without_reason() {
    let server = start();
    let [alice, mut bob] = named(server.addr(), ["alice", "bob"]);
    drop(alice);
    bob.expect("* alice left #lobby");
    assert_eq!(users(&mut bob), "* users in #lobby: bob");
}

#[test]
fn disconnect_from_a_room_is_announced_in_that_room() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "bob", "carol"]);
    move_to(&mut alice, "rust");
    move_to(&mut bob, "rust");
    alice.expect("* bob joined #rust");
    carol.skip_until("* bob left #lobby");
    drop(alice);
    bob.expect("* alice left #rust");
    carol.assert_quiet();
}

/// Reads raw bytes until the server closes; panics if it does not within
/// the read timeout. A cut-off client may get a last line cut short.
fn read_bytes_until_closed(client: &mut Client) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut buf = [0; 64 * 1024];
    loop {
        match std::io::Read::read(&mut client.reader, &mut buf) {
            Ok(0) => return bytes,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return bytes,
            Err(err) => panic!("connection not closed: {err}"),
        }
    }
}

#[test]
fn slow_consumer_is_disconnected_and_announced_too_slow() {
    // A flood on purpose: flood control off.
    let server = start_with(|c| {
        c.max_outbuf_bytes = 256 * 1024;
        c.flood = loopchat::policy::limits::FloodLimit::OFF;
    });
    let [mut alice, mut bob, mut slow] = named(server.addr(), ["alice", "bob", "slow"]);
    // `slow` never reads while alice floods the room; bob keeps reading.
    let done = Arc::new(AtomicBool::new(false));
    let flooder = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let batch: String = (0..500).map(|i| format!("{i:0>90}\n")).collect();
            while !done.load(Ordering::SeqCst) {
                alice.send_bytes(batch.as_bytes());
                alice.sync(); // keep pace with the server
            }
            alice
        })
    };
    // Nothing is lost for bob: every flood line, in order, until the cut.
    let mut n = 0;
    loop {
        let line = bob.line();
        if line == "* slow left #lobby (too slow)" {
            break;
        }
        assert_eq!(line, format!("alice: {:0>90}", n % 500));
        n += 1;
    }
    done.store(true, Ordering::SeqCst);
    let mut alice = flooder.join().expect("flooder");

    // Only flood lines reach it before the cut (the last maybe cut short).
    let got = read_bytes_until_closed(&mut slow);
    let stray = got
        .split(|&b| b == b'\n')
        .map(String::from_utf8_lossy)
        .find(|line| {
            !line.is_empty() && !line.starts_with("alice: ") && !"alice: ".starts_with(&**line)
        });
    assert_eq!(stray, None, "slow got a line that is not alice's chat");
    // alice may still have the leave line queued from the flood.
    alice.send(":users");
    alice.skip_until("* users in #lobby: alice bob");
}

// ---------------------------------------------------------------- order

#[test]
fn lines_from_one_sender_reach_each_recipient_in_order() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "bob", "carol"]);
    for i in 0..50 {
        alice.send(&format!("chat {i}"));
        alice.send(&format!(":me acts {i}"));
        alice.send(&format!(":pm bob private {i}"));
    }
    alice.send(":part");
    alice.expect("* alice left #lobby");
    for i in 0..50 {
        bob.expect(&format!("alice: chat {i}"));
        bob.expect(&format!("* alice acts {i}"));
        bob.expect(&format!("[pm] alice: private {i}"));
        carol.expect(&format!("alice: chat {i}"));
        carol.expect(&format!("* alice acts {i}"));
    }
    bob.expect("* alice left #lobby");
    carol.expect("* alice left #lobby");
}

#[test]
fn lines_from_two_senders_each_keep_their_order() {
    let server = start();
    let [mut alice, mut bob, mut carol] = named(server.addr(), ["alice", "bob", "carol"]);
    for i in 0..100 {
        alice.send(&format!("a{i}"));
        bob.send(&format!("b{i}"));
    }
    let lines: Vec<String> = (0..200).map(|_| carol.line()).collect();
    let from = |nick: &str| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{nick}: ")).map(str::to_string))
            .collect()
    };
    assert_eq!(
        from("alice"),
        (0..100).map(|i| format!("a{i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        from("bob"),
        (0..100).map(|i| format!("b{i}")).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------- shutdown

#[test]
fn stop_tells_everyone_server_shutting_down_then_closes() {
    let server = start();
    let addr = server.addr();
    let [alice, bob, mut carol] = named(addr, ["alice", "bob", "carol"]);
    move_to(&mut carol, "rust");
    let mut clients = [alice, bob, carol];

    let stopper = std::thread::spawn(move || server.stop());
    for client in &mut clients {
        client.skip_until("* server shutting down");
        client.expect_closed();
    }
    drop(clients);
    stopper
        .join()
        .expect("stop thread")
        .expect("stop returns Ok");
    assert!(TcpStream::connect(addr).is_err(), "still accepting");
}

#[test]
fn stop_reaches_unauthenticated_clients_too() {
    let server = start_with_password("s3cret");
    let mut raw = Client::connect_raw(server.addr());
    raw.expect("* password required");
    let stopper = std::thread::spawn(move || server.stop());
    raw.expect("* server shutting down");
    raw.expect_closed();
    drop(raw);
    stopper
        .join()
        .expect("stop thread")
        .expect("stop returns Ok");
}

#[test]
fn stop_closes_within_5_s_even_if_a_client_never_reads() {
    let server = start();
    let _sleeper = Client::connect_raw(server.addr()); // never reads, never closes
    let mut member = Client::connect(server.addr());
    member.send_bytes(b"unterminated"); // and one that leaves input unread
    let started = Instant::now();
    server.stop().expect("stop returns Ok");
    assert!(
        started.elapsed() < Duration::from_millis(6500),
        "stop took {:?}",
        started.elapsed()
    );
}
