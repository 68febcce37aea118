//! Unit tests of the room model, one per rule of the protocol's sections
//! "Rooms" and "Topics and room operators", and a property test of its
//! bookkeeping.

use super::*;

const ALICE: ClientId = 0;
const BOB: ClientId = 1;
const CAROL: ClientId = 2;

fn who(nick: &str) -> Who<'_> {
    Who {
        nick,
        account: None,
    }
}

/// Rooms with `clients` arrived in `#lobby`.
fn rooms_with(clients: &[ClientId]) -> Rooms {
    let mut rooms = Rooms::new(DEFAULT_ROOMS_PER_CLIENT);
    for &client in clients {
        rooms.arrive(client);
    }
    rooms
}

fn joined(rooms: &mut Rooms, client: ClientId, name: &str) -> RoomId {
    match rooms.join(client, name, who("anyone")) {
        JoinOutcome::Joined { room, .. } => room,
        other => panic!("{name}: {other:?}"),
    }
}

fn name(rooms: &Rooms, room: Option<RoomId>) -> Option<&str> {
    room.and_then(|room| rooms.get(room)).map(Room::name)
}

fn members(rooms: &Rooms, room: RoomId) -> Vec<ClientId> {
    let mut members = rooms.get(room).unwrap().members().to_vec();
    members.sort_unstable();
    members
}

/// Every membership points at its client in its room, and every room
/// member has the matching membership; no empty room but `#lobby`.
fn assert_consistent(rooms: &Rooms) {
    for (client, memberships) in rooms.clients.iter().enumerate() {
        let Some(memberships) = memberships else {
            continue;
        };
        assert!(memberships.joined.len() <= rooms.max_per_client);
        for (at, m) in memberships.joined.iter().enumerate() {
            let room = &rooms.rooms[m.room.0];
            assert_eq!(room.members[m.slot], client);
            let is_current = at + 1 == memberships.joined.len();
            assert_eq!(m.slot < room.current, is_current, "in the right part");
        }
    }
    for (key, room) in &rooms.rooms {
        assert!(!room.members.is_empty() || RoomId(key) == rooms.lobby);
        assert_eq!(rooms.by_key.get(&room.key), Some(&RoomId(key)));
        assert_eq!(room.members.len(), room.operators.len());
        for &member in &room.members {
            assert!(rooms.is_member(member, RoomId(key)));
        }
        let current = room
            .members
            .iter()
            .filter(|&&m| rooms.current(m) == Some(RoomId(key)));
        assert_eq!(current.count(), room.current);
    }
    assert_eq!(rooms.by_key.len(), rooms.rooms.len());
}

#[test]
fn on_arrival_a_client_is_in_lobby_which_is_current() {
    let mut rooms = rooms_with(&[ALICE]);
    assert_eq!(rooms.current(ALICE), Some(rooms.lobby()));
    assert_eq!(rooms.arrive(ALICE), rooms.lobby(), "arriving twice");
    assert_eq!(members(&rooms, rooms.lobby()), [ALICE]);
    assert_eq!(rooms.current(BOB), None, "not in the chat");
    assert_consistent(&rooms);
}

#[test]
fn join_keeps_the_rooms_the_client_was_in_and_makes_the_new_one_current() {
    let mut rooms = rooms_with(&[ALICE]);
    let rust = joined(&mut rooms, ALICE, "#rust");
    let go = joined(&mut rooms, ALICE, "go");
    assert_eq!(rooms.current(ALICE), Some(go));
    let all: Vec<_> = rooms.rooms_of(ALICE).collect();
    assert_eq!(all, [rooms.lobby(), rust, go]);
    assert_eq!(members(&rooms, rooms.lobby()), [ALICE]);
    assert_consistent(&rooms);
}

#[test]
fn join_of_a_member_room_that_is_not_current_makes_it_current() {
    let mut rooms = rooms_with(&[ALICE]);
    let rust = joined(&mut rooms, ALICE, "rust");
    let lobby = rooms.lobby();
    assert_eq!(
        rooms.join(ALICE, "#LOBBY", who("alice")),
        JoinOutcome::Switched(lobby)
    );
    assert_eq!(rooms.current(ALICE), Some(lobby));
    assert_eq!(members(&rooms, rust), [ALICE], "still a member");
}

#[test]
fn join_of_the_current_room_is_already_in() {
    let mut rooms = rooms_with(&[ALICE]);
    let rust = joined(&mut rooms, ALICE, "rust");
    assert_eq!(
        rooms.join(ALICE, "#Rust", who("alice")),
        JoinOutcome::AlreadyIn(rust)
    );
}

#[test]
fn join_over_the_limit_counts_lobby_and_changes_nothing() {
    let mut rooms = rooms_with(&[ALICE]);
    for n in 1..DEFAULT_ROOMS_PER_CLIENT {
        joined(&mut rooms, ALICE, &format!("r{n}"));
    }
    let before = rooms.current(ALICE);
    let count = rooms.len();
    assert_eq!(
        rooms.join(ALICE, "one-more", who("alice")),
        JoinOutcome::TooManyRooms { max: 20 }
    );
    assert_eq!(rooms.current(ALICE), before);
    assert_eq!(rooms.len(), count, "the room was not created");
    assert_eq!(rooms.find("one-more"), None);
    // Switching between member rooms is never over the limit.
    assert!(matches!(
        rooms.join(ALICE, "lobby", who("alice")),
        JoinOutcome::Switched(_)
    ));
    assert_consistent(&rooms);
}

/// Sorted copies of a room's two parts: (plain, prefixed).
fn parts(rooms: &Rooms, room: RoomId) -> (Vec<ClientId>, Vec<ClientId>) {
    let r = rooms.get(room).unwrap();
    let (mut plain, mut prefixed) = (r.current_members().to_vec(), r.other_members().to_vec());
    plain.sort_unstable();
    prefixed.sort_unstable();
    (plain, prefixed)
}

#[test]
fn room_lines_go_plain_to_members_for_whom_it_is_current_and_prefixed_to_the_others() {
    let mut rooms = rooms_with(&[ALICE, BOB, CAROL]);
    let lobby = rooms.lobby();
    assert_eq!(parts(&rooms, lobby), (vec![ALICE, BOB, CAROL], vec![]));
    let rust = joined(&mut rooms, ALICE, "rust");
    joined(&mut rooms, BOB, "rust");
    assert_eq!(parts(&rooms, lobby), (vec![CAROL], vec![ALICE, BOB]));
    assert_eq!(parts(&rooms, rust), (vec![ALICE, BOB], vec![]));
    // The prefix switches when the current room changes.
    rooms.join(BOB, "lobby", who("bob"));
    assert_eq!(parts(&rooms, lobby), (vec![BOB, CAROL], vec![ALICE]));
    assert_eq!(parts(&rooms, rust), (vec![ALICE], vec![BOB]));
    // Leaving the current room makes the next one plain again.
    rooms.part(ALICE, None).unwrap();
    assert_eq!(parts(&rooms, lobby), (vec![ALICE, BOB, CAROL], vec![]));
    assert_eq!(parts(&rooms, rust), (vec![], vec![BOB]));
    rooms.depart(CAROL);
    assert_eq!(parts(&rooms, lobby), (vec![ALICE, BOB], vec![]));
    assert_consistent(&rooms);
}

#[test]
fn room_names_follow_the_nick_rules_with_an_optional_hash() {
    let mut rooms = rooms_with(&[ALICE]);
    for bad in ["", "#", "##rust", "9lives", "a b", &"a".repeat(33)] {
        assert_eq!(
            rooms.join(ALICE, bad, who("alice")),
            JoinOutcome::InvalidName,
            "{bad:?}"
        );
    }
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms.find("a".repeat(33).as_str()), None);
}

#[test]
fn a_room_keeps_the_spelling_of_the_join_that_created_it() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "RuSt");
    assert_eq!(
        rooms.join(BOB, "#rust", who("bob")),
        JoinOutcome::Joined {
            room: rust,
            created: false
        }
    );
    assert_eq!(name(&rooms, Some(rust)), Some("#RuSt"));
    assert_eq!(rooms.get(rust).unwrap().key(), "#rust");
    assert_eq!(rooms.find("rust"), Some(rust));
}

#[test]
fn part_of_the_current_room_makes_the_most_recently_current_remaining_room_current() {
    let mut rooms = rooms_with(&[ALICE]);
    let a = joined(&mut rooms, ALICE, "a");
    let b = joined(&mut rooms, ALICE, "b");
    joined(&mut rooms, ALICE, "c");
    rooms.join(ALICE, "a", who("alice")); // order: lobby, b, c, a
    rooms.join(ALICE, "b", who("alice")); // order: lobby, c, a, b
    let part = rooms.part(ALICE, None).unwrap();
    assert_eq!(part.left.room, b);
    assert!(part.was_current);
    assert_eq!(part.current, CurrentChange::Now(a));
    assert_eq!(part.left.room_name(&rooms), "#b", "named though gone");
    assert_eq!(rooms.current(ALICE), Some(a));
    assert_consistent(&rooms);
}

#[test]
fn part_of_the_last_room_leaves_no_current_room() {
    let mut rooms = rooms_with(&[ALICE]);
    let part = rooms.part(ALICE, Some("#lobby")).unwrap();
    assert_eq!(part.current, CurrentChange::NoRoom);
    assert_eq!(rooms.current(ALICE), None);
    assert_eq!(rooms.part(ALICE, None).unwrap_err(), Refusal::NoCurrentRoom);
    // Still in the chat: it can join again.
    assert!(matches!(
        rooms.join(ALICE, "lobby", who("alice")),
        JoinOutcome::Joined { created: false, .. }
    ));
}

#[test]
fn part_of_a_room_that_is_not_current_changes_nothing_else() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    let part = rooms.part(ALICE, Some("LOBBY")).unwrap();
    assert!(!part.was_current);
    assert_eq!(part.current, CurrentChange::Unchanged);
    assert_eq!(rooms.current(ALICE), Some(rust));
    assert_eq!(members(&rooms, rooms.lobby()), [BOB]);
}

#[test]
fn part_of_a_room_the_client_is_not_in_is_refused() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    joined(&mut rooms, BOB, "rust");
    assert_eq!(
        rooms.part(ALICE, Some("rust")).unwrap_err(),
        Refusal::NotMember
    );
    assert_eq!(
        rooms.part(ALICE, Some("nowhere")).unwrap_err(),
        Refusal::NotMember
    );
    assert_eq!(
        rooms.part(ALICE, Some("9x")).unwrap_err(),
        Refusal::InvalidName
    );
    assert_eq!(rooms.current(ALICE), Some(rooms.lobby()));
}

#[test]
fn an_empty_room_other_than_lobby_disappears_with_its_topic_and_bans() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    rooms.edit_topic(ALICE, TopicEdit::Set("crabs")).unwrap();
    rooms.ban(ALICE, "bob", None, None).unwrap();
    let part = rooms.part(ALICE, None).unwrap();
    let removed = part.left.removed.expect("removed");
    assert_eq!((removed.name(), removed.topic()), ("#rust", Some("crabs")));
    assert_eq!(rooms.get(rust).map(Room::name), None);
    assert_eq!(rooms.find("rust"), None);
    // Created again: no topic, no bans, a new operator.
    let again = rooms.join(BOB, "RUST", who("bob"));
    let JoinOutcome::Joined {
        room,
        created: true,
    } = again
    else {
        panic!("{again:?}")
    };
    assert_eq!(rooms.get(room).unwrap().topic(), None);
    assert!(rooms.is_operator(room, BOB));
    assert_eq!(name(&rooms, Some(room)), Some("#RUST"));
    assert_consistent(&rooms);
}

#[test]
fn lobby_never_disappears() {
    let mut rooms = rooms_with(&[ALICE]);
    let part = rooms.part(ALICE, None).unwrap();
    assert!(part.left.removed.is_none());
    assert_eq!(rooms.find("#lobby"), Some(rooms.lobby()));
    assert!(rooms.get(rooms.lobby()).unwrap().is_empty());
}

#[test]
fn room_commands_act_on_the_current_room_and_need_one() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    rooms.part(ALICE, None).unwrap();
    assert_eq!(rooms.topic(ALICE).unwrap_err(), Refusal::NoCurrentRoom);
    let set = rooms.edit_topic(ALICE, TopicEdit::Set("x"));
    assert_eq!(set.unwrap_err(), Refusal::NoCurrentRoom);
    assert_eq!(
        rooms.op(ALICE, Some(BOB)).unwrap_err(),
        Refusal::NoCurrentRoom
    );
    assert_eq!(
        rooms.deop(ALICE, Some(BOB)).unwrap_err(),
        Refusal::NoCurrentRoom
    );
    assert_eq!(
        rooms.kick(ALICE, Some(BOB)).unwrap_err(),
        Refusal::NoCurrentRoom
    );
    let ban = rooms.ban(ALICE, "bob", Some(BOB), None);
    assert_eq!(ban.unwrap_err(), Refusal::NoCurrentRoom);
    assert_eq!(
        rooms.unban(ALICE, "bob").unwrap_err(),
        Refusal::NoCurrentRoom
    );
    assert_eq!(rooms.bans(ALICE).unwrap_err(), Refusal::NoCurrentRoom);
    assert_eq!(
        rooms.users_room(ALICE, None).unwrap_err(),
        Refusal::NoCurrentRoom
    );
}

#[test]
fn users_lists_any_existing_room_or_the_current_one() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, BOB, "rust");
    assert_eq!(rooms.users_room(ALICE, None), Ok(rooms.lobby()));
    assert_eq!(rooms.users_room(ALICE, Some("RUST")), Ok(rust));
    assert_eq!(
        rooms.users_room(ALICE, Some("#nowhere")),
        Err(Refusal::NoSuchRoom)
    );
    assert_eq!(
        rooms.users_room(ALICE, Some("#")),
        Err(Refusal::InvalidName)
    );
    let listed: Vec<_> = rooms.members_with_operators(rust).collect();
    assert_eq!(listed, [(BOB, true)]);
}

#[test]
fn a_nick_change_reaches_everyone_sharing_a_room_once() {
    let mut rooms = rooms_with(&[ALICE, BOB, CAROL, 3]);
    joined(&mut rooms, ALICE, "a");
    joined(&mut rooms, BOB, "a");
    joined(&mut rooms, ALICE, "b");
    joined(&mut rooms, BOB, "b");
    joined(&mut rooms, CAROL, "c");
    rooms.part(CAROL, Some("lobby")).unwrap();
    let mut out = Vec::with_capacity(8);
    rooms.sharing(ALICE, &mut out);
    out.sort_unstable();
    assert_eq!(
        out,
        [ALICE, BOB, 3],
        "bob once though in three shared rooms"
    );
    rooms.sharing(CAROL, &mut out);
    assert_eq!(out, [CAROL], "alone in #c");
    rooms.part(CAROL, None).unwrap();
    rooms.sharing(CAROL, &mut out);
    assert_eq!(out, [CAROL], "in no room: the renamer alone");
    rooms.sharing(99, &mut out);
    assert!(out.is_empty(), "not in the chat");
}

#[test]
fn a_client_that_goes_leaves_every_room() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    joined(&mut rooms, BOB, "rust");
    let solo = joined(&mut rooms, ALICE, "solo");
    let left = rooms.depart(ALICE);
    let names: Vec<_> = left.iter().map(|l| l.room_name(&rooms)).collect();
    assert_eq!(names, ["#lobby", "#rust", "#solo"], "current room last");
    assert!(left[2].removed.is_some() && left[1].removed.is_none());
    assert_eq!(members(&rooms, rust), [BOB]);
    assert_eq!(rooms.get(solo).map(Room::name), None);
    assert_eq!(rooms.current(ALICE), None);
    assert!(rooms.depart(ALICE).is_empty(), "gone already");
    assert_consistent(&rooms);
}

#[test]
fn the_creator_of_a_room_is_its_operator_and_lobby_has_none() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let lobby = rooms.lobby();
    assert!(!rooms.is_operator(lobby, ALICE));
    let rust = joined(&mut rooms, ALICE, "rust");
    assert_eq!(
        rooms.join(BOB, "rust", who("bob")),
        JoinOutcome::Joined {
            room: rust,
            created: false
        }
    );
    assert!(rooms.is_operator(rust, ALICE));
    assert!(!rooms.is_operator(rust, BOB));
    assert!(
        !rooms.is_operator(lobby, ALICE),
        "only in the room it created"
    );
}

#[test]
fn operator_status_ends_when_the_operator_leaves() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    joined(&mut rooms, BOB, "rust");
    rooms.part(ALICE, Some("rust")).unwrap();
    joined(&mut rooms, ALICE, "rust");
    assert!(!rooms.is_operator(rust, ALICE));
    assert_eq!(rooms.op(ALICE, Some(BOB)), Err(Refusal::NotOperator(rust)));
}

#[test]
fn op_and_deop_by_an_operator() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    joined(&mut rooms, BOB, "rust");
    assert_eq!(rooms.op(ALICE, Some(BOB)), Ok(rust));
    assert!(rooms.is_operator(rust, BOB));
    assert_eq!(
        rooms.op(ALICE, Some(BOB)),
        Err(Refusal::AlreadyOperator(rust))
    );
    // The new operator may take it from the one who gave it.
    assert_eq!(rooms.deop(BOB, Some(ALICE)), Ok(rust));
    assert!(!rooms.is_operator(rust, ALICE));
    assert_eq!(
        rooms.deop(BOB, Some(ALICE)),
        Err(Refusal::TargetNotOperator(rust))
    );
    let listed: Vec<_> = rooms.members_with_operators(rust).collect();
    assert_eq!(listed, [(ALICE, false), (BOB, true)]);
}

#[test]
fn a_non_operator_is_refused_before_anything_else() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    joined(&mut rooms, BOB, "rust");
    let not_op = Err(Refusal::NotOperator(rust));
    assert_eq!(rooms.op(BOB, None), not_op);
    assert_eq!(rooms.deop(BOB, Some(ALICE)), not_op);
    let not_op_error = Refusal::NotOperator(rust);
    assert_eq!(rooms.kick(BOB, Some(ALICE)).unwrap_err(), not_op_error);
    assert_eq!(
        rooms.ban(BOB, "9 bad", None, None).unwrap_err(),
        not_op_error
    );
    assert_eq!(rooms.unban(BOB, "alice"), not_op);
    assert_eq!(rooms.bans(BOB), not_op, "for :bans too");
    assert_eq!(
        rooms.edit_topic(BOB, TopicEdit::Set("mine")),
        not_op,
        "setting the topic"
    );
    assert_eq!(rooms.edit_topic(BOB, TopicEdit::Clear), not_op);
    assert_eq!(
        rooms.topic(BOB),
        Ok((rust, None)),
        "showing it is for anyone"
    );
}

#[test]
fn a_nick_that_does_not_exist_then_one_not_in_the_room() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    assert_eq!(rooms.op(ALICE, None), Err(Refusal::NoSuchUser));
    assert_eq!(rooms.deop(ALICE, None), Err(Refusal::NoSuchUser));
    assert_eq!(rooms.kick(ALICE, None).unwrap_err(), Refusal::NoSuchUser);
    assert_eq!(rooms.op(ALICE, Some(BOB)), Err(Refusal::NotInRoom(rust)));
    assert_eq!(rooms.deop(ALICE, Some(BOB)), Err(Refusal::NotInRoom(rust)));
    assert_eq!(
        rooms.kick(ALICE, Some(BOB)).unwrap_err(),
        Refusal::NotInRoom(rust)
    );
}

#[test]
fn a_kicked_member_leaves_as_after_part() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    joined(&mut rooms, BOB, "rust");
    let kick = rooms.kick(ALICE, Some(BOB)).unwrap();
    assert_eq!((kick.client, kick.left.room), (BOB, rust));
    assert!(kick.was_current);
    assert_eq!(kick.current, CurrentChange::Now(rooms.lobby()));
    assert_eq!(rooms.current(BOB), Some(rooms.lobby()));
    // Kicked from a room that was not its current one: nothing else.
    joined(&mut rooms, BOB, "rust");
    rooms.join(BOB, "lobby", who("bob"));
    let kick = rooms.kick(ALICE, Some(BOB)).unwrap();
    assert!(!kick.was_current);
    assert_eq!(kick.current, CurrentChange::Unchanged);
    // The last room: none remains.
    rooms.part(BOB, None).unwrap();
    joined(&mut rooms, BOB, "rust");
    let kick = rooms.kick(ALICE, Some(BOB)).unwrap();
    assert_eq!(kick.current, CurrentChange::NoRoom);
    assert_consistent(&rooms);
}

#[test]
fn an_operator_kicking_itself_from_its_last_room_empties_it() {
    let mut rooms = rooms_with(&[ALICE]);
    joined(&mut rooms, ALICE, "rust");
    let kick = rooms.kick(ALICE, Some(ALICE)).unwrap();
    assert!(kick.left.removed.is_some());
    assert_eq!(kick.current, CurrentChange::Now(rooms.lobby()));
}

#[test]
fn a_ban_holds_a_nick_online_or_not_compared_case_insensitively() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    let banned = rooms.ban(ALICE, "Dave", None, None).unwrap();
    assert_eq!((banned.room, banned.kicked.is_none()), (rust, true));
    assert_eq!(
        rooms.join(BOB, "rust", who("DAVE")),
        JoinOutcome::Banned(rust)
    );
    assert!(!rooms.is_member(BOB, rust), "nothing changed");
    assert!(matches!(
        rooms.join(BOB, "rust", who("bob")),
        JoinOutcome::Joined { .. }
    ));
    assert_eq!(
        rooms.ban(ALICE, "dave", None, None).unwrap_err(),
        Refusal::AlreadyBanned(rust)
    );
    assert_eq!(
        rooms.ban(ALICE, "9x", None, None).unwrap_err(),
        Refusal::InvalidName
    );
}

#[test]
fn a_banned_member_is_kicked() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    joined(&mut rooms, BOB, "rust");
    let banned = rooms.ban(ALICE, "bob", Some(BOB), None).unwrap();
    let kicked = banned.kicked.expect("kicked");
    assert_eq!((kicked.client, kicked.left.room), (BOB, rust));
    assert_eq!(kicked.current, CurrentChange::Now(rooms.lobby()));
    assert_eq!(
        rooms.join(BOB, "#RUST", who("bob")),
        JoinOutcome::Banned(rust)
    );
    // Online but not a member: banned, nobody kicked.
    let banned = rooms.ban(ALICE, "carol", Some(CAROL), None).unwrap();
    assert!(banned.kicked.is_none());
}

#[test]
fn a_ban_holds_the_account_of_a_logged_in_nick() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    rooms.ban(ALICE, "bob", Some(BOB), Some("bob")).unwrap();
    let renamed = Who {
        nick: "robert",
        account: Some("bob"),
    };
    assert_eq!(rooms.join(BOB, "rust", renamed), JoinOutcome::Banned(rust));
    let other = Who {
        nick: "robert",
        account: Some("rob"),
    };
    assert!(matches!(
        rooms.join(BOB, "rust", other),
        JoinOutcome::Joined { .. }
    ));
}

#[test]
fn unban_lifts_a_ban_and_bans_lists_them_sorted() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    for nick in ["carol", "Bob", "alice2"] {
        rooms.ban(ALICE, nick, None, None).unwrap();
    }
    assert_eq!(rooms.bans(ALICE), Ok(rust));
    let listed: Vec<_> = rooms
        .get(rust)
        .unwrap()
        .bans()
        .iter()
        .map(|b| b.nick.as_str())
        .collect();
    assert_eq!(listed, ["alice2", "Bob", "carol"]);
    assert_eq!(rooms.unban(ALICE, "BOB"), Ok(rust));
    assert_eq!(rooms.unban(ALICE, "bob"), Err(Refusal::NotBanned(rust)));
    assert!(matches!(
        rooms.join(BOB, "rust", who("bob")),
        JoinOutcome::Joined { .. }
    ));
    assert_eq!(rooms.get(rust).unwrap().bans().len(), 2);
}

#[test]
fn bans_last_while_the_room_exists() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    joined(&mut rooms, ALICE, "rust");
    rooms.ban(ALICE, "bob", None, None).unwrap();
    rooms.part(ALICE, None).unwrap();
    assert!(matches!(
        rooms.join(BOB, "rust", who("bob")),
        JoinOutcome::Joined { created: true, .. }
    ));
}

#[test]
fn topics_are_shown_set_by_operators_up_to_390_bytes_and_cleared() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    joined(&mut rooms, BOB, "rust");
    assert_eq!(rooms.topic(BOB), Ok((rust, None)), "unset when created");
    let longest = "é".repeat(MAX_TOPIC_BYTES / 2);
    assert_eq!(
        rooms.edit_topic(ALICE, TopicEdit::parse(&longest)),
        Ok(rust)
    );
    assert_eq!(rooms.topic(BOB), Ok((rust, Some(longest.as_str()))));
    let too_long = format!("{longest}x");
    assert_eq!(
        rooms.edit_topic(ALICE, TopicEdit::parse(&too_long)),
        Err(Refusal::TopicTooLong { max: 390 })
    );
    assert_eq!(
        rooms.topic(BOB).unwrap().1,
        Some(longest.as_str()),
        "unchanged"
    );
    assert_eq!(TopicEdit::parse("-"), TopicEdit::Clear);
    assert_eq!(TopicEdit::parse("- x"), TopicEdit::Set("- x"));
    assert_eq!(rooms.edit_topic(ALICE, TopicEdit::Clear), Ok(rust));
    assert_eq!(rooms.topic(BOB), Ok((rust, None)));
}

#[test]
fn a_topic_is_kept_while_the_room_exists_and_seen_by_joiners() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, ALICE, "rust");
    rooms.edit_topic(ALICE, TopicEdit::Set("crabs")).unwrap();
    joined(&mut rooms, BOB, "rust");
    rooms.part(ALICE, Some("rust")).unwrap();
    assert_eq!(rooms.get(rust).unwrap().topic(), Some("crabs"));
    rooms.part(BOB, Some("lobby")).unwrap();
    assert_eq!(rooms.topic(BOB), Ok((rust, Some("crabs"))));
}

#[test]
fn an_administrator_is_operator_of_every_room_it_is_in() {
    let mut rooms = rooms_with(&[ALICE, BOB]);
    let rust = joined(&mut rooms, BOB, "rust");
    joined(&mut rooms, ALICE, "rust");
    rooms.set_admin(ALICE, true);
    assert!(rooms.is_operator(rust, ALICE));
    assert!(rooms.is_operator(rooms.lobby(), ALICE));
    let listed: Vec<_> = rooms.members_with_operators(rooms.lobby()).collect();
    assert_eq!(listed, [(ALICE, true), (BOB, false)]);
    // It may :op itself (the room's own status, kept after logout).
    assert_eq!(rooms.op(ALICE, Some(ALICE)), Ok(rust));
    // Its :kick and :ban work in a room it did not create.
    assert!(rooms.kick(ALICE, Some(BOB)).is_ok());
    rooms.join(ALICE, "lobby", who("alice"));
    assert!(rooms
        .ban(ALICE, "bob", Some(BOB), None)
        .unwrap()
        .kicked
        .is_some());
    rooms.set_admin(ALICE, false);
    assert!(!rooms.is_operator(rooms.lobby(), ALICE));
    assert!(rooms.is_operator(rust, ALICE), "by its own :op");
    assert_consistent(&rooms);
}

proptest::proptest! {
    /// Whatever clients do, memberships and member lists agree, no
    /// client passes the limit, empty rooms other than `#lobby` are
    /// gone, and the current room is the most recently current one.
    #[test]
    fn memberships_stay_consistent(
        steps in proptest::collection::vec((0usize..6, 0usize..6, 0u8..5), 1..200)
    ) {
        let mut rooms = Rooms::new(3);
        let names = ["lobby", "a", "b", "c", "d", "e"];
        for client in 0..6 {
            rooms.arrive(client);
        }
        for (client, arg, action) in steps {
            match action {
                0 => {
                    let before = rooms.current(client);
                    let outcome = rooms.join(client, names[arg], who("x"));
                    match outcome {
                        JoinOutcome::Joined { room, .. } | JoinOutcome::Switched(room) => {
                            proptest::prop_assert_eq!(rooms.current(client), Some(room));
                        }
                        _ => proptest::prop_assert_eq!(rooms.current(client), before),
                    }
                }
                1 => {
                    let order: Vec<_> = rooms.rooms_of(client).collect();
                    if let Ok(part) = rooms.part(client, Some(names[arg])) {
                        let expected = order.iter().rev().copied().find(|&r| r != part.left.room);
                        if part.was_current {
                            proptest::prop_assert_eq!(rooms.current(client), expected);
                        }
                    }
                }
                2 => {
                    let _ = rooms.kick(client, Some(arg));
                }
                3 => {
                    let _ = rooms.op(client, Some(arg));
                }
                _ => {
                    rooms.depart(client);
                    rooms.arrive(client);
                }
            }
            assert_consistent(&rooms);
        }
    }
}
