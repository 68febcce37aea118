//! "Topics and room operators" (protocol 1.2) as the chat state words
//! them: one test per rule, the exact lines each client gets.

use super::*;

/// alice (0) created `#rust`; bob (1) and carol (2) are in it too, all
/// with `#rust` current; dave (3) is only in `#lobby`.
fn rust_room() -> (Chat, Recorded) {
    let (mut chat, mut out) = chat_of(&["alice", "bob", "carol", "dave"]);
    for id in 0..3 {
        chat.handle_line(id, ":join rust", &mut out);
    }
    out.0.clear();
    out.1.clear();
    (chat, out)
}

#[test]
fn the_creator_is_the_operator_and_lobby_has_none() {
    let (mut chat, mut out) = rust_room();
    assert_eq!(
        run(&mut chat, &mut out, 3, ":users rust"),
        ["* users in #rust: @alice bob carol"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 3, ":users"),
        ["* users in #lobby: alice bob carol dave"]
    );
    chat.handle_line(0, ":join lobby", &mut out);
    out.0.clear();
    assert_eq!(
        run(&mut chat, &mut out, 0, ":op bob"),
        ["! not an operator of #lobby"]
    );
}

#[test]
fn op_and_deop_are_told_to_the_room() {
    let (mut chat, mut out) = rust_room();
    assert_eq!(
        run(&mut chat, &mut out, 0, ":op BOB"),
        ["* alice made bob an operator of #rust"]
    );
    assert_eq!(out.take(2), ["* alice made bob an operator of #rust"]);
    assert!(out.take(3).is_empty());
    assert_eq!(
        run(&mut chat, &mut out, 1, ":op carol"),
        ["* bob made carol an operator of #rust"],
        "a new operator may op"
    );
    assert_eq!(
        run(&mut chat, &mut out, 1, ":deop alice"),
        ["* bob took operator from alice in #rust"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 3, ":users rust"),
        ["* users in #rust: alice @bob @carol"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 1, ":op carol"),
        ["! carol is already an operator of #rust"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 1, ":deop alice"),
        ["! alice is not an operator of #rust"]
    );
}

#[test]
fn refusals_come_in_the_protocols_order() {
    let (mut chat, mut out) = rust_room();
    for line in [
        ":op carol",
        ":deop alice",
        ":kick alice",
        ":ban x",
        ":unban x",
        ":bans",
    ] {
        assert_eq!(
            run(&mut chat, &mut out, 1, line),
            ["! not an operator of #rust"],
            "{line}"
        );
    }
    assert_eq!(
        run(&mut chat, &mut out, 1, ":topic mine"),
        ["! not an operator of #rust"]
    );
    for (line, error) in [
        (":op dave", "! dave is not in #rust"),
        (":deop Dave", "! Dave is not in #rust"),
        (":kick dave", "! dave is not in #rust"),
        (":op nobody", "! no such user nobody"),
        (":kick nobody", "! no such user nobody"),
        (":unban bob", "! bob is not banned from #rust"),
        (":ban 9", "! invalid name 9"),
    ] {
        assert_eq!(run(&mut chat, &mut out, 0, line), [error], "{line}");
    }
    assert!(out.0.is_empty(), "no refusal reaches anyone else");
}

#[test]
fn a_kick_from_the_current_room_moves_the_victim_on() {
    let (mut chat, mut out) = rust_room();
    let kicked = "* bob was kicked from #rust by alice (flooding)";
    assert_eq!(run(&mut chat, &mut out, 0, ":kick bob flooding"), [kicked]);
    assert_eq!(out.take(1), [kicked, "* current room #lobby"]);
    assert_eq!(out.take(2), [kicked]);
    assert!(out.take(3).is_empty());
    assert_eq!(
        run(&mut chat, &mut out, 1, "back in the lobby"),
        Vec::<String>::new()
    );
    assert_eq!(out.take(0), ["[#lobby] bob: back in the lobby"]);
    assert_eq!(
        run(&mut chat, &mut out, 1, ":join rust"),
        ["* bob joined #rust"],
        "a kick is no ban"
    );
}

#[test]
fn a_kick_from_another_room_changes_nothing_else() {
    let (mut chat, mut out) = rust_room();
    chat.handle_line(1, ":join lobby", &mut out);
    out.0.clear();
    assert_eq!(
        run(&mut chat, &mut out, 0, ":kick bob"),
        ["* bob was kicked from #rust by alice"]
    );
    assert_eq!(
        out.take(1),
        ["[#rust] * bob was kicked from #rust by alice"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 1, ":part rust"),
        ["! not in #rust"]
    );
}

#[test]
fn a_ban_of_an_offline_nick_stops_its_join() {
    let (mut chat, mut out) = rust_room();
    assert_eq!(
        run(&mut chat, &mut out, 0, ":ban Mallory"),
        ["* Mallory was banned from #rust by alice"]
    );
    assert_eq!(out.take(1), ["* Mallory was banned from #rust by alice"]);
    chat.handle_line(3, ":nick mallory", &mut out);
    out.0.clear();
    assert_eq!(
        run(&mut chat, &mut out, 3, ":join RUST"),
        ["! banned from #RUST"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":ban mallory"),
        ["! mallory is already banned from #rust"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":ban carl"),
        ["* carl was banned from #rust by alice"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":bans"),
        ["* bans in #rust: carl Mallory"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":unban MALLORY"),
        ["* alice lifted the ban on MALLORY in #rust"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 3, ":join rust"),
        ["* mallory joined #rust"]
    );
    chat.handle_line(0, ":unban carl", &mut out);
    out.0.clear();
    assert_eq!(
        run(&mut chat, &mut out, 0, ":bans"),
        ["* bans in #rust: none"]
    );
}

#[test]
fn a_ban_of_a_member_bans_then_kicks_it() {
    let (mut chat, mut out) = rust_room();
    let (banned, kicked) = (
        "* bob was banned from #rust by alice",
        "* bob was kicked from #rust by alice",
    );
    assert_eq!(run(&mut chat, &mut out, 0, ":ban bob"), [banned, kicked]);
    assert_eq!(out.take(1), [banned, kicked, "* current room #lobby"]);
    assert_eq!(out.take(2), [banned, kicked]);
    assert_eq!(
        run(&mut chat, &mut out, 3, ":users rust"),
        ["* users in #rust: @alice carol"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 1, ":join rust"),
        ["! banned from #rust"]
    );
}

#[test]
fn topics_are_shown_set_and_cleared() {
    let (mut chat, mut out) = rust_room();
    assert_eq!(
        run(&mut chat, &mut out, 1, ":topic"),
        ["* no topic for #rust"]
    );
    let set = "* alice set the topic of #rust: all things \u{fffd}[2J rust";
    assert_eq!(
        run(&mut chat, &mut out, 0, ":topic all things \x1b[2J rust"),
        [set]
    );
    assert_eq!(out.take(1), [set]);
    assert_eq!(
        run(&mut chat, &mut out, 1, ":topic"),
        ["* topic #rust: all things \u{fffd}[2J rust"]
    );
    assert_eq!(
        run(
            &mut chat,
            &mut out,
            0,
            &format!(":topic {}", "x".repeat(391))
        ),
        ["! topic too long (max 390 bytes)"]
    );
    let longest = "é".repeat(195);
    assert_eq!(
        run(&mut chat, &mut out, 0, &format!(":topic {longest}")),
        [format!("* alice set the topic of #rust: {longest}")],
        "390 bytes"
    );
    assert_eq!(
        run(&mut chat, &mut out, 0, ":topic -"),
        ["* alice cleared the topic of #rust"]
    );
    assert_eq!(
        run(&mut chat, &mut out, 2, ":topic"),
        ["* no topic for #rust"]
    );
}

#[test]
fn operator_status_topic_and_bans_end_with_the_room_or_the_membership() {
    let (mut chat, mut out) = rust_room();
    chat.handle_line(0, ":op bob", &mut out);
    chat.handle_line(1, ":part", &mut out);
    chat.handle_line(1, ":join rust", &mut out);
    out.0.clear();
    assert_eq!(
        run(&mut chat, &mut out, 1, ":bans"),
        ["! not an operator of #rust"],
        "operator status ended when bob left"
    );
    chat.handle_line(0, ":topic kept", &mut out);
    chat.handle_line(0, ":ban mallory", &mut out);
    for id in 0..3 {
        chat.handle_line(id, ":part rust", &mut out);
    }
    out.0.clear();
    assert_eq!(
        run(&mut chat, &mut out, 3, ":join rust"),
        ["* dave joined #rust"],
        "a new room: no topic"
    );
    assert_eq!(
        run(&mut chat, &mut out, 3, ":bans"),
        ["* bans in #rust: none"],
        "no bans, and dave created it"
    );
}
