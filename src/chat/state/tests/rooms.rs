//! "Rooms" (protocol 1.2) as the chat state words it: one test per rule,
//! the exact lines each client gets.

use super::*;

const NOT_IN_ANY_ROOM: &str = "! not in any room (try :join ROOM)";

#[test]
fn join_keeps_the_rooms_and_makes_the_new_one_current() {
    let (mut chat, mut out) = chat_of(&["alice", "bob"]);
    assert_eq!(
        run(&mut chat, &mut out, 0, ":join Rust"),
        ["* alice joined #Rust"]
    );
    assert!(out.take(1).is_empty(), "bob is not in #Rust");
    assert_eq!(
        run(&mut chat, &mut out, 0, ":users lobby"),
        ["* users in #lobby: alice bob"],
        "still in #lobby"
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":join LOBBY"),
        ["* current room #lobby"]
    );
    assert!(
        out.take(1).is_empty(),
        "a switch is told to the client alone"
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":join lobby"),
        ["! already in #lobby"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":join #9x"),
        ["! invalid name #9x"]
    );
}

#[test]
fn room_lines_of_other_rooms_are_prefixed_by_the_current_room_of_each() {
    // bob in #lobby and #rust (current); carol in #lobby; dave in #rust.
    let (mut chat, mut out) = chat_of(&["bob", "carol", "dave"]);
    chat.handle_line(0, ":join rust", &mut out);
    chat.handle_line(2, ":join rust", &mut out);
    assert_eq!(
        run(&mut chat, &mut out, 2, ":part lobby"),
        ["[#lobby] * dave left #lobby"],
        "the leaver's copy is prefixed: #lobby was not its current room"
    );
    assert_eq!(
        out.take(0),
        [
            "* bob joined #rust",
            "* dave joined #rust",
            "[#lobby] * dave left #lobby"
        ]
    );
    assert_eq!(out.take(1), ["* dave left #lobby"]);
    chat.handle_line(1, "hi", &mut out);
    chat.handle_line(2, "yo", &mut out);
    assert_eq!(out.take(0), ["[#lobby] carol: hi", "dave: yo"]);
    assert_eq!(
        run(&mut chat, &mut out, 0, ":join lobby"),
        ["* current room #lobby"]
    );
    chat.handle_line(1, "hi", &mut out);
    chat.handle_line(2, "yo", &mut out);
    chat.handle_line(2, ":me waves", &mut out);
    assert_eq!(
        out.take(0),
        ["carol: hi", "[#rust] dave: yo", "[#rust] * dave waves"]
    );
}

#[test]
fn part_of_the_current_room_makes_the_most_recent_other_current() {
    let (mut chat, mut out) = chat_of(&["alice", "bob"]);
    chat.handle_line(0, ":join rust", &mut out);
    chat.handle_line(0, ":join go", &mut out);
    chat.handle_line(1, ":join rust", &mut out);
    chat.handle_line(0, ":join rust", &mut out);
    out.0.clear();
    assert_eq!(
        run(&mut chat, &mut out, 0, ":part #rust see you (later)"),
        ["* alice left #rust (see you (later))", "* current room #go"]
    );
    assert_eq!(out.take(1), ["* alice left #rust (see you (later))"]);
    assert_eq!(
        run(&mut chat, &mut out, 0, ":part"),
        ["* alice left #go", "* current room #lobby"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":part rust"),
        ["! not in #rust"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":part Nowhere"),
        ["! not in #Nowhere"]
    );
    assert_eq!(run(&mut chat, &mut out, 0, ":part 9"), ["! invalid name 9"]);
    assert_eq!(
        run(&mut chat, &mut out, 0, ":rooms"),
        ["* rooms: #lobby (2), #rust (1)"],
        "#go emptied and disappeared"
    );
}

#[test]
fn without_a_room_room_commands_are_refused_and_join_still_works() {
    let (mut chat, mut out) = chat_of(&["alice", "bob"]);
    assert_eq!(
        run(&mut chat, &mut out, 0, ":part"),
        ["* alice left #lobby", "* not in any room (try :join ROOM)"]
    );
    for line in [
        "hi",
        ":me waves",
        ":history",
        ":topic",
        ":topic x",
        ":op bob",
        ":deop bob",
        ":kick bob",
        ":ban bob",
        ":unban bob",
        ":bans",
        ":part",
        ":users",
    ] {
        assert_eq!(
            run(&mut chat, &mut out, 0, line),
            [NOT_IN_ANY_ROOM],
            "{line}"
        );
    }
    assert_eq!(out.take(1), ["* alice left #lobby"], "nothing reached bob");
    assert_eq!(
        run(&mut chat, &mut out, 0, ":users lobby"),
        ["* users in #lobby: bob"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":pm bob still here"),
        Vec::<String>::new()
    );
    assert_eq!(out.take(1), ["[pm] alice: still here"]);
    assert_eq!(
        run(&mut chat, &mut out, 0, ":join lobby"),
        ["* alice joined #lobby"]
    );
}

#[test]
fn the_room_limit_counts_every_room_and_changes_nothing_when_reached() {
    let mut chat = Chat::new(None).with_max_rooms_per_client(20);
    let mut out = Recorded::default();
    chat.connect(0, &mut out);
    for n in 1..20 {
        chat.handle_line(0, &format!(":join r{n}"), &mut out);
    }
    out.0.clear();
    assert_eq!(
        run(&mut chat, &mut out, 0, ":join r20"),
        ["! too many rooms (max 20)"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":join r1"),
        ["* current room #r1"],
        "a room one is in may still become current"
    );
    chat.handle_line(0, ":part r2", &mut out);
    out.0.clear();
    assert_eq!(
        run(&mut chat, &mut out, 0, ":join r20"),
        ["* guest1 joined #r20"]
    );
}

#[test]
fn users_names_any_existing_room_with_operators_marked() {
    let (mut chat, mut out) = chat_of(&["alice", "Bob", "carol"]);
    chat.handle_line(0, ":join rust", &mut out);
    chat.handle_line(1, ":join rust", &mut out);
    out.0.clear();
    assert_eq!(
        run(&mut chat, &mut out, 2, ":users #RUST"),
        ["* users in #rust: @alice Bob"],
        "from outside, sorted, the creator an operator"
    );
    assert_eq!(
        run(&mut chat, &mut out, 1, ":users"),
        ["* users in #rust: @alice Bob"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 2, ":users nowhere"),
        ["! no such room #nowhere"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 2, ":users #"),
        ["! invalid name #"]
    );
}

#[test]
fn a_rename_reaches_everyone_sharing_a_room_once() {
    let (mut chat, mut out) = chat_of(&["alice", "bob", "carol", "dave"]);
    // alice and bob share #lobby and #rust; carol only #lobby; dave
    // shares nothing with alice.
    chat.handle_line(0, ":join rust", &mut out);
    chat.handle_line(1, ":join rust", &mut out);
    chat.handle_line(3, ":join go", &mut out);
    chat.handle_line(3, ":part lobby", &mut out);
    out.0.clear();
    chat.handle_line(0, ":nick alicia", &mut out);
    let renamed = "* alice is now known as alicia";
    assert_eq!(out.take(0), [renamed]);
    assert_eq!(out.take(1), [renamed], "once, without a prefix");
    assert_eq!(out.take(2), [renamed]);
    assert!(out.take(3).is_empty());
}

#[test]
fn a_departure_is_announced_in_every_room() {
    let (mut chat, mut out) = chat_of(&["alice", "bob", "carol"]);
    chat.handle_line(0, ":join rust", &mut out);
    chat.handle_line(1, ":join rust", &mut out);
    chat.handle_line(1, ":join lobby", &mut out);
    chat.handle_line(2, ":join go", &mut out);
    chat.handle_line(0, ":join go", &mut out);
    out.0.clear();
    assert_eq!(run(&mut chat, &mut out, 0, ":quit gone"), ["* bye"]);
    let mut bob = out.take(1);
    bob.sort();
    assert_eq!(
        bob,
        [
            "* alice left #lobby (gone)",
            "[#rust] * alice left #rust (gone)"
        ]
    );
    let mut carol = out.take(2);
    carol.sort();
    assert_eq!(
        carol,
        [
            "* alice left #go (gone)",
            "[#lobby] * alice left #lobby (gone)"
        ]
    );
    assert_eq!(
        run(&mut chat, &mut out, 1, ":rooms"),
        ["* rooms: #go (1), #lobby (2), #rust (1)"]
    );
}

#[test]
fn a_joiner_is_told_the_topic_after_its_join() {
    let (mut chat, mut out) = chat_of(&["alice", "bob"]);
    chat.handle_line(0, ":join rust", &mut out);
    chat.handle_line(0, ":topic safe: fast", &mut out);
    out.0.clear();
    assert_eq!(
        run(&mut chat, &mut out, 1, ":join rust"),
        ["* bob joined #rust", "* topic #rust: safe: fast"]
    );
    assert_eq!(
        out.take(0),
        ["* bob joined #rust"],
        "the topic to the joiner only"
    );
}

#[test]
fn history_is_the_current_rooms_and_keeps_lines_unprefixed() {
    let (mut chat, mut out) = chat_of(&["alice", "bob"]);
    chat.handle_line(1, ":join rust", &mut out);
    out.0.clear();
    chat.handle_line(0, "in the lobby", &mut out);
    assert_eq!(out.take(1), ["[#lobby] alice: in the lobby"]);
    let answer = run(&mut chat, &mut out, 1, ":history");
    assert_eq!(answer, ["* history #rust: 0 lines"]);
    chat.handle_line(1, ":join lobby", &mut out);
    out.0.clear();
    let answer = run(&mut chat, &mut out, 1, ":history");
    assert_eq!(answer[0], "* history #lobby: 1 line");
    assert!(answer[1].ends_with("Z] alice: in the lobby"), "{answer:?}");
}
