//! The line dialect held to today's text, line by line, and to its
//! recogniser.

use super::super::{Dialect, RESERVED_NICKS};
use super::*;

fn to_text(line: &ServerLine<'_>) -> String {
    Dialect::Line.render_text(line)
}

/// One of every line the server sends, with its exact text today.
fn samples() -> Vec<(ServerLine<'static>, &'static str)> {
    let room = Some("#lobby");
    let mut samples: Vec<(ServerLine<'static>, &'static str)> = vec![
        (
            Event::Said {
                from: "alice",
                room,
                text: "hello",
                stamp: None,
            }
            .into(),
            "alice: hello",
        ),
        (
            Event::Said {
                from: "bob",
                room,
                text: "a: b ::",
                stamp: None,
            }
            .into(),
            "bob: a: b ::",
        ),
        (
            Event::Acted {
                from: "alice",
                room,
                text: "waves",
                stamp: None,
            }
            .into(),
            "* alice waves",
        ),
        (
            Event::PrivateMessage {
                from: "alice",
                text: "psst: hi",
                to: None,
            }
            .into(),
            "[pm] alice: psst: hi",
        ),
        (
            Event::Joined {
                nick: "alice",
                room: "#rust",
            }
            .into(),
            "* alice joined #rust",
        ),
        (
            Event::Left {
                nick: "alice",
                room: "#lobby",
                reason: None,
                quit: false,
            }
            .into(),
            "* alice left #lobby",
        ),
        (
            Event::Left {
                nick: "bob",
                room: "#lobby",
                reason: Some("too slow"),
                quit: false,
            }
            .into(),
            "* bob left #lobby (too slow)",
        ),
        (
            Event::Renamed {
                old: "alice",
                new: "alicia",
            }
            .into(),
            "* alice is now known as alicia",
        ),
        (Event::ShuttingDown.into(), "* server shutting down"),
        (Reply::Welcome { nick: "guest7" }.into(), "* welcome guest7"),
        (Reply::PasswordRequired.into(), "* password required"),
        (
            Reply::Users {
                room: "#lobby",
                nicks: vec!["alice", "bob", "carol"],
            }
            .into(),
            "* users in #lobby: alice bob carol",
        ),
        (
            Reply::Rooms {
                rooms: vec![("#lobby", 3), ("#Rust", 1), ("#x", 0)],
            }
            .into(),
            "* rooms: #lobby (3), #Rust (1), #x (0)",
        ),
        (Reply::Pong { token: None }.into(), "* pong"),
        (
            Reply::Pong {
                token: Some("tok en"),
            }
            .into(),
            "* pong tok en",
        ),
        (Reply::Bye.into(), "* bye"),
        (
            Reply::AlreadyKnownAs { nick: "alice" }.into(),
            "* you are already known as alice",
        ),
        (
            Reply::HistoryHeader {
                room: "#rust",
                count: 2,
            }
            .into(),
            "* history #rust: 2 lines",
        ),
        (
            Reply::HistoryHeader {
                room: "#rust",
                count: 1,
            }
            .into(),
            "* history #rust: 1 line",
        ),
        (
            Reply::HistoryHeader {
                room: "#rust",
                count: 0,
            }
            .into(),
            "* history #rust: 0 lines",
        ),
        (
            Reply::HistoryLine {
                time_ms: 1_795_342_503_000,
                line: "alice: hello",
                room: None,
                id: None,
            }
            .into(),
            "[history 2026-11-22T10:15:03Z] alice: hello",
        ),
        (
            Reply::HistoryLine {
                time_ms: 1_795_342_509_000,
                line: "* bob waves",
                room: None,
                id: None,
            }
            .into(),
            "[history 2026-11-22T10:15:09Z] * bob waves",
        ),
        (Error::Usage(":nick NAME").into(), "! usage: :nick NAME"),
        (
            Error::UnknownCommand(":foo").into(),
            "! unknown command :foo (try :help)",
        ),
        (Error::InvalidName("9lives").into(), "! invalid name 9lives"),
        (
            Error::NickReserved("server").into(),
            "! nick server is reserved",
        ),
        (Error::NickTaken("alice").into(), "! nick alice is taken"),
        (Error::NoSuchUser("bob").into(), "! no such user bob"),
        (Error::AlreadyIn("rust").into(), "! already in #rust"),
        (
            Error::AuthenticateFirst.into(),
            "! authenticate first: :auth PASSWORD",
        ),
        (Error::WrongPassword.into(), "! wrong password"),
        (Error::TooManyAttempts.into(), "! too many attempts"),
        (
            Error::LockedOut { retry_secs: 30 }.into(),
            "! too many attempts from your address, try again in 30 s",
        ),
        (
            Error::HistoryIncomplete {
                room: "#lobby",
                missing: Missing::Unsaved(1),
            }
            .into(),
            "! history incomplete: 1 line of #lobby could not be saved to disk and will be \
             missing after a restart",
        ),
        (
            Error::HistoryIncomplete {
                room: "#lobby",
                missing: Missing::Dropped(3),
            }
            .into(),
            "! history incomplete: 3 lines of #lobby were dropped from memory (history is \
             kept in memory only)",
        ),
        (
            Error::HistoryIncomplete {
                room: "#lobby",
                missing: Missing::Unreadable,
            }
            .into(),
            "! history incomplete: older lines of #lobby could not be read from disk",
        ),
        (Error::ServerFull.into(), "! server full"),
        (Error::ClusterUnavailable.into(), "! cluster unavailable"),
        (
            Error::TooManyFromAddress.into(),
            "! too many connections from your address",
        ),
        (Error::IdleTimeout.into(), "! idle timeout"),
        (Error::AuthTimeout.into(), "! auth timeout"),
        (Error::InvalidUtf8.into(), "! invalid UTF-8"),
        (Error::BadTags.into(), "! bad tags"),
        (Reply::TagsOn.into(), "* tags on"),
        (Reply::TagsOff.into(), "* tags off"),
        (
            Error::LineTooLong { max: 4096 }.into(),
            "! line too long (max 4096 bytes)",
        ),
        (
            Reply::Registered { name: "alice" }.into(),
            "* registered alice",
        ),
        (
            Reply::LoggedIn { name: "alice" }.into(),
            "* logged in as alice",
        ),
        (Reply::LoggedInElsewhere.into(), "* logged in elsewhere"),
        (
            Reply::Token {
                token: "lc_0123456789abcdefghij",
            }
            .into(),
            "* token lc_0123456789abcdefghij",
        ),
        (Reply::LoggedOut.into(), "* logged out"),
        (Reply::PasswordChanged.into(), "* password changed"),
        (
            Reply::Whois {
                nick: "Alice",
                account: Some("alice"),
                rooms: vec!["#lobby", "#rust"],
            }
            .into(),
            "* whois Alice: account alice, rooms #lobby #rust",
        ),
        (
            Reply::Whois {
                nick: "guest3",
                account: None,
                rooms: vec!["#lobby"],
            }
            .into(),
            "* whois guest3: guest, rooms #lobby",
        ),
        (
            Error::GuestCannotRegister.into(),
            "! guest nicks cannot be registered (:nick NAME first)",
        ),
        (
            Error::AlreadyRegistered("alice").into(),
            "! alice is already registered",
        ),
        (
            Error::PasswordBounds { min: 8, max: 256 }.into(),
            "! password must be 8 to 256 bytes",
        ),
        (Error::LoginFailed.into(), "! login failed"),
        (Error::LogInFirst.into(), "! log in first"),
        (Error::InvalidKey.into(), "! invalid key"),
        (Error::NotLoggedIn("bob").into(), "! bob is not logged in"),
        (Reply::KeyPublished.into(), "* key published"),
        (
            Reply::Keys {
                name: "alice",
                keys: vec!["K1", "K2"],
            }
            .into(),
            "* keys alice: K1 K2",
        ),
        (
            Reply::Keys {
                name: "bob",
                keys: vec![],
            }
            .into(),
            "* keys bob: none",
        ),
        (
            Event::E2e {
                from: "alice",
                payload: "v1.a.0123456789abcdef.AAAA:!~",
            }
            .into(),
            "[e2e] alice: v1.a.0123456789abcdef.AAAA:!~",
        ),
        (
            Error::NickRegistered("alice").into(),
            "! nick alice is registered",
        ),
        (
            Error::LoggedInAs("alice").into(),
            "! logged in as alice (:logout first)",
        ),
        (Error::UseTls.into(), "! use TLS to send a password"),
        (Error::ServerBusy.into(), "! server busy"),
        (
            Error::TooManyRegistrations.into(),
            "! too many registrations, try again later",
        ),
    ];
    samples.extend(room_samples());
    let help = [
        "* :help - list the commands",
        "* :nick NAME - change your nick (1-32 of A-Z a-z 0-9 _ -, starting with a letter)",
        "* :pm NAME TEXT (alias :msg) - private message to one user, wherever they are",
        "* :users [ROOM] - who is in your current room, or in ROOM",
        "* :join ROOM - enter ROOM and make it your current room, keeping your other rooms \
         (created on first join; # optional)",
        "* :part [ROOM [REASON]] - leave ROOM, your current room by default",
        "* :rooms - every room with its member count",
        "* :me TEXT - an action line to your current room",
        "* :ping [TOKEN] - liveness check, answered * pong [TOKEN]",
        "* :quit [REASON] - leave; the server says * bye and closes",
        "* :history [N] - the last N (default 20) chat and :me lines of your current room",
        "* :tags on|off - tag every line sent to you with its time, room, id and label",
        "* :topic [TEXT] - show your current room's topic, or set it (- clears it; operators \
         only)",
        "* :op NICK, :deop NICK, :kick NICK [REASON], :ban NICK, :unban NICK, :bans - room \
         operators' commands in your current room",
        "* :auth PASSWORD - authenticate to a server with a password",
        "* :register PASSWORD - register your nick as an account, and log in to it",
        "* :login NAME PASSWORD - log in to account NAME (your nick becomes NAME)",
        "* :token - a token to log in later with :resume TOKEN, without the password",
        "* :logout - log out (and revoke the token you logged in with)",
        "* :passwd OLD NEW - change your password (revokes every token)",
        "* :whois NICK - who NICK is: account or guest, and rooms",
        "* :key KEY, :keys NICK, :e2e NICK PAYLOAD - end-to-end encryption: publish your \
         device's key, list an account's keys, relay an encrypted payload (logged in)",
    ];
    for (row, text) in HelpRow::ALL.into_iter().zip(help) {
        samples.push((Reply::Help(row).into(), text));
    }
    samples
}

/// One of every line protocol 1.2 adds for rooms, topics and operators.
fn room_samples() -> Vec<(ServerLine<'static>, &'static str)> {
    let (room, by) = ("#rust", "alice");
    vec![
        (
            Event::Kicked {
                nick: "bob",
                room,
                by,
                reason: None,
            }
            .into(),
            "* bob was kicked from #rust by alice",
        ),
        (
            Event::Kicked {
                nick: "bob",
                room,
                by,
                reason: Some("spam (again)"),
            }
            .into(),
            "* bob was kicked from #rust by alice (spam (again))",
        ),
        (
            Event::Banned {
                nick: "Bob",
                room,
                by,
            }
            .into(),
            "* Bob was banned from #rust by alice",
        ),
        (
            Event::Unbanned {
                nick: "bob",
                room,
                by,
            }
            .into(),
            "* alice lifted the ban on bob in #rust",
        ),
        (
            Event::TopicSet {
                room,
                by,
                text: "Rust: safe; fast",
            }
            .into(),
            "* alice set the topic of #rust: Rust: safe; fast",
        ),
        (
            Event::TopicCleared { room, by }.into(),
            "* alice cleared the topic of #rust",
        ),
        (
            Event::Opped {
                room,
                by,
                nick: "bob",
            }
            .into(),
            "* alice made bob an operator of #rust",
        ),
        (
            Event::Deopped {
                room,
                by,
                nick: "bob",
            }
            .into(),
            "* alice took operator from bob in #rust",
        ),
        (Reply::CurrentRoom { room }.into(), "* current room #rust"),
        (
            Reply::NoRoomLeft.into(),
            "* not in any room (try :join ROOM)",
        ),
        (
            Reply::Topic {
                room,
                text: "all: things",
            }
            .into(),
            "* topic #rust: all: things",
        ),
        (Reply::NoTopic { room }.into(), "* no topic for #rust"),
        (
            Reply::Bans {
                room,
                nicks: vec!["bob", "Carol"],
            }
            .into(),
            "* bans in #rust: bob Carol",
        ),
        (
            Reply::Bans {
                room,
                nicks: vec![],
            }
            .into(),
            "* bans in #rust: none",
        ),
        (
            Error::NotInAnyRoom.into(),
            "! not in any room (try :join ROOM)",
        ),
        (Error::NotIn("Rust").into(), "! not in #Rust"),
        (
            Error::NoSuchRoom("nowhere").into(),
            "! no such room #nowhere",
        ),
        (
            Error::TooManyRooms { max: 20 }.into(),
            "! too many rooms (max 20)",
        ),
        (Error::BannedFrom("rust").into(), "! banned from #rust"),
        (
            Error::NotOperator { room }.into(),
            "! not an operator of #rust",
        ),
        (
            Error::UserNotInRoom { nick: "bob", room }.into(),
            "! bob is not in #rust",
        ),
        (
            Error::TopicTooLong { max: 390 }.into(),
            "! topic too long (max 390 bytes)",
        ),
        (
            Error::AlreadyOperator { nick: "bob", room }.into(),
            "! bob is already an operator of #rust",
        ),
        (
            Error::TargetNotOperator { nick: "bob", room }.into(),
            "! bob is not an operator of #rust",
        ),
        (
            Error::AlreadyBanned { nick: "bob", room }.into(),
            "! bob is already banned from #rust",
        ),
        (
            Error::NotBanned { nick: "bob", room }.into(),
            "! bob is not banned from #rust",
        ),
    ]
}

/// Which variant a line is; exhaustive, so a new variant does not
/// compile until it is named here, and then the coverage test asks
/// for a sample of it.
fn variant(line: &ServerLine<'_>) -> &'static str {
    match line {
        ServerLine::Event(event) => match event {
            Event::Said { .. } => "Said",
            Event::Acted { .. } => "Acted",
            Event::PrivateMessage { .. } => "PrivateMessage",
            Event::E2e { .. } => "E2e",
            Event::Joined { .. } => "Joined",
            Event::Left { .. } => "Left",
            Event::Renamed { .. } => "Renamed",
            Event::ShuttingDown => "ShuttingDown",
            Event::Kicked { .. } => "Kicked",
            Event::Banned { .. } => "Banned",
            Event::Unbanned { .. } => "Unbanned",
            Event::TopicSet { .. } => "TopicSet",
            Event::TopicCleared { .. } => "TopicCleared",
            Event::Opped { .. } => "Opped",
            Event::Deopped { .. } => "Deopped",
        },
        ServerLine::Reply(reply) => match reply {
            Reply::Welcome { .. } => "Welcome",
            Reply::PasswordRequired => "PasswordRequired",
            Reply::Help(_) => "Help",
            Reply::Users { .. } => "Users",
            Reply::Rooms { .. } => "Rooms",
            Reply::Pong { .. } => "Pong",
            Reply::Bye => "Bye",
            Reply::AlreadyKnownAs { .. } => "AlreadyKnownAs",
            Reply::HistoryHeader { .. } => "HistoryHeader",
            Reply::HistoryLine { .. } => "HistoryLine",
            Reply::Registered { .. } => "Registered",
            Reply::LoggedIn { .. } => "LoggedIn",
            Reply::LoggedInElsewhere => "LoggedInElsewhere",
            Reply::Token { .. } => "Token",
            Reply::LoggedOut => "LoggedOut",
            Reply::PasswordChanged => "PasswordChanged",
            Reply::Whois { .. } => "Whois",
            Reply::KeyPublished => "KeyPublished",
            Reply::Keys { .. } => "Keys",
            Reply::TagsOn => "TagsOn",
            Reply::TagsOff => "TagsOff",
            Reply::CurrentRoom { .. } => "CurrentRoom",
            Reply::NoRoomLeft => "NoRoomLeft",
            Reply::Topic { .. } => "Topic",
            Reply::NoTopic { .. } => "NoTopic",
            Reply::Bans { .. } => "Bans",
        },
        ServerLine::Error(error) => match error {
            Error::Usage(_) => "Usage",
            Error::UnknownCommand(_) => "UnknownCommand",
            Error::InvalidName(_) => "InvalidName",
            Error::NickReserved(_) => "NickReserved",
            Error::NickTaken(_) => "NickTaken",
            Error::NoSuchUser(_) => "NoSuchUser",
            Error::AlreadyIn(_) => "AlreadyIn",
            Error::AuthenticateFirst => "AuthenticateFirst",
            Error::WrongPassword => "WrongPassword",
            Error::TooManyAttempts => "TooManyAttempts",
            Error::LockedOut { .. } => "LockedOut",
            Error::HistoryIncomplete { .. } => "HistoryIncomplete",
            Error::ServerFull => "ServerFull",
            Error::ClusterUnavailable => "ClusterUnavailable",
            Error::TooManyFromAddress => "TooManyFromAddress",
            Error::IdleTimeout => "IdleTimeout",
            Error::AuthTimeout => "AuthTimeout",
            Error::InvalidUtf8 => "InvalidUtf8",
            Error::BadTags => "BadTags",
            Error::LineTooLong { .. } => "LineTooLong",
            Error::GuestCannotRegister => "GuestCannotRegister",
            Error::AlreadyRegistered(_) => "AlreadyRegistered",
            Error::PasswordBounds { .. } => "PasswordBounds",
            Error::LoginFailed => "LoginFailed",
            Error::LogInFirst => "LogInFirst",
            Error::InvalidKey => "InvalidKey",
            Error::NotLoggedIn(_) => "NotLoggedIn",
            Error::NickRegistered(_) => "NickRegistered",
            Error::LoggedInAs(_) => "LoggedInAs",
            Error::UseTls => "UseTls",
            Error::ServerBusy => "ServerBusy",
            Error::TooManyRegistrations => "TooManyRegistrations",
            Error::NotInAnyRoom => "NotInAnyRoom",
            Error::NotIn(_) => "NotIn",
            Error::NoSuchRoom(_) => "NoSuchRoom",
            Error::TooManyRooms { .. } => "TooManyRooms",
            Error::BannedFrom(_) => "BannedFrom",
            Error::NotOperator { .. } => "NotOperator",
            Error::UserNotInRoom { .. } => "UserNotInRoom",
            Error::TopicTooLong { .. } => "TopicTooLong",
            Error::AlreadyOperator { .. } => "AlreadyOperator",
            Error::TargetNotOperator { .. } => "TargetNotOperator",
            Error::AlreadyBanned { .. } => "AlreadyBanned",
            Error::NotBanned { .. } => "NotBanned",
        },
    }
}

/// Every name [`variant`] can return: keep in step with it.
const VARIANTS: [&str; 85] = [
    "Said",
    "Acted",
    "PrivateMessage",
    "Joined",
    "Left",
    "Renamed",
    "ShuttingDown",
    "Welcome",
    "PasswordRequired",
    "Help",
    "Users",
    "Rooms",
    "Pong",
    "Bye",
    "AlreadyKnownAs",
    "HistoryHeader",
    "HistoryLine",
    "TagsOn",
    "TagsOff",
    "Usage",
    "UnknownCommand",
    "InvalidName",
    "NickReserved",
    "NickTaken",
    "NoSuchUser",
    "AlreadyIn",
    "AuthenticateFirst",
    "WrongPassword",
    "TooManyAttempts",
    "LockedOut",
    "HistoryIncomplete",
    "ServerFull",
    "ClusterUnavailable",
    "TooManyFromAddress",
    "IdleTimeout",
    "AuthTimeout",
    "InvalidUtf8",
    "BadTags",
    "LineTooLong",
    "Registered",
    "LoggedIn",
    "LoggedInElsewhere",
    "Token",
    "LoggedOut",
    "PasswordChanged",
    "Whois",
    "GuestCannotRegister",
    "AlreadyRegistered",
    "PasswordBounds",
    "LoginFailed",
    "LogInFirst",
    "InvalidKey",
    "NotLoggedIn",
    "KeyPublished",
    "Keys",
    "E2e",
    "NickRegistered",
    "LoggedInAs",
    "UseTls",
    "ServerBusy",
    "TooManyRegistrations",
    "Kicked",
    "Banned",
    "Unbanned",
    "TopicSet",
    "TopicCleared",
    "Opped",
    "Deopped",
    "CurrentRoom",
    "NoRoomLeft",
    "Topic",
    "NoTopic",
    "Bans",
    "NotInAnyRoom",
    "NotIn",
    "NoSuchRoom",
    "TooManyRooms",
    "BannedFrom",
    "NotOperator",
    "UserNotInRoom",
    "TopicTooLong",
    "AlreadyOperator",
    "TargetNotOperator",
    "AlreadyBanned",
    "NotBanned",
];

/// What the line dialect shows of a line: room lines of the current
/// room carry no room.
fn as_shown(line: ServerLine<'_>) -> ServerLine<'_> {
    match line {
        ServerLine::Event(Event::Said { from, text, .. }) => Event::Said {
            from,
            room: None,
            text,
            stamp: None,
        }
        .into(),
        ServerLine::Event(Event::Acted { from, text, .. }) => Event::Acted {
            from,
            room: None,
            text,
            stamp: None,
        }
        .into(),
        other => other,
    }
}

#[test]
fn every_line_renders_byte_for_byte_as_before() {
    for (line, text) in samples() {
        let mut out = b"kept ".to_vec();
        render(&line, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("kept {text}\n"),
            "{line:?}"
        );
    }
}

#[test]
fn every_line_is_recognised_as_what_was_rendered() {
    for (line, text) in samples() {
        let rendered = to_text(&line);
        assert_eq!(recognise(&rendered), Some(as_shown(line.clone())), "{text}");
        assert_eq!(recognise(&format!("{rendered}\n")), Some(as_shown(line)));
    }
}

/// Version 1.2: a room line of a room that is not the recipient's
/// current one starts with `[ROOM] `, and reads back with its room.
#[test]
fn room_lines_of_other_rooms_carry_their_room() {
    for (line, text) in samples() {
        let mut out = Vec::new();
        render_prefixed(&line, &mut out);
        let prefixed = String::from_utf8(out).unwrap();
        let Some(room) = line.room() else {
            assert_eq!(prefixed, format!("{text}\n"), "no prefix on {text}");
            continue;
        };
        assert_eq!(prefixed, format!("[{room}] {text}\n"));
        assert_eq!(
            split_room_prefix(&prefixed[..prefixed.len() - 1]),
            Some((room, text))
        );
        assert_eq!(recognise(&prefixed), Some(line.clone()), "{prefixed}");
    }
    assert_eq!(split_room_prefix("[pm] alice: hi"), None);
    assert_eq!(
        split_room_prefix("[history 2026-11-22T10:15:03Z] a: b"),
        None
    );
    assert_eq!(
        recognise("[#lobby] * carol joined #rust"),
        None,
        "a room line names the room of its prefix"
    );
    assert_eq!(recognise("[#lobby] * pong"), None, "only room lines");
}

#[test]
fn every_variant_has_a_sample() {
    let seen: std::collections::BTreeSet<_> =
        samples().iter().map(|(line, _)| variant(line)).collect();
    for name in VARIANTS {
        assert!(seen.contains(name), "no sample of {name}");
    }
    assert_eq!(seen.len(), VARIANTS.len());
}

/// The real rule behind reserved nicks: the first word of every
/// information line the server can send is either the nick of the
/// person it is about (joined, left, renamed, `:me`) or one of
/// [`RESERVED_NICKS`], and every reserved nick is such a word. So no
/// nick can make `:me` forge a server line, and the list holds no
/// word the server does not use.
#[test]
fn server_words_are_exactly_the_reserved_nicks() {
    let mut words = std::collections::BTreeSet::new();
    for (line, text) in samples() {
        let Some(info) = text.strip_prefix("* ") else {
            continue;
        };
        let first: String = info
            .chars()
            .take_while(|c| !matches!(c, ' ' | ':'))
            .collect();
        let about = match &line {
            ServerLine::Event(
                Event::Joined { nick, .. }
                | Event::Left { nick, .. }
                | Event::Renamed { old: nick, .. }
                | Event::Acted { from: nick, .. }
                | Event::Kicked { nick, .. }
                | Event::Banned { nick, .. }
                | Event::Unbanned { by: nick, .. }
                | Event::TopicSet { by: nick, .. }
                | Event::TopicCleared { by: nick, .. }
                | Event::Opped { by: nick, .. }
                | Event::Deopped { by: nick, .. },
            ) => Some(*nick),
            _ => None,
        };
        match about {
            Some(nick) => assert_eq!(first, nick, "{text}"),
            None if first.is_empty() => {} // :help rows: never a nick
            None => {
                words.insert(first);
            }
        }
    }
    let reserved: std::collections::BTreeSet<_> =
        RESERVED_NICKS.iter().map(|w| w.to_string()).collect();
    assert_eq!(words, reserved);
}

#[test]
fn server_words_are_not_read_as_actions() {
    for word in RESERVED_NICKS {
        let line = format!("* {word} did something");
        let acted = matches!(
            recognise(&line),
            Some(ServerLine::Event(Event::Acted { .. }))
        );
        assert!(!acted, "{line}");
    }
    assert_eq!(
        recognise("* alice joined the party"),
        Some(
            Event::Acted {
                from: "alice",
                room: None,
                text: "joined the party",
                stamp: None,
            }
            .into()
        ),
        "only a room makes a join"
    );
    assert_eq!(
        recognise("* alice left #lobby for good"),
        Some(
            Event::Acted {
                from: "alice",
                room: None,
                text: "left #lobby for good",
                stamp: None,
            }
            .into()
        )
    );
}

#[test]
fn history_lines_are_chat_or_actions() {
    let acted = |text| Event::Acted {
        from: "bob",
        room: None,
        text,
        stamp: None,
    };
    assert_eq!(recognise_history("* bob waves"), Some(acted("waves")));
    assert_eq!(
        recognise_history("* bob joined #rust"),
        Some(acted("joined #rust")),
        "history keeps no joins"
    );
    assert_eq!(
        recognise_history("bob: hi"),
        Some(Event::Said {
            from: "bob",
            room: None,
            text: "hi",
            stamp: None,
        })
    );
    assert_eq!(recognise_history("! not chat"), None);
}

/// Fuzzing (`server_lines`): `* bob` with no space was read from history
/// as an action with no text, which renders as `* bob ` (with the space):
/// another line. The server never stores one.
#[test]
fn a_history_action_without_its_space_is_not_recognised() {
    assert_eq!(recognise_history("* bob"), None);
    assert_eq!(
        recognise_history("* bob "),
        Some(Event::Acted {
            from: "bob",
            room: None,
            text: "",
            stamp: None,
        })
    );
}

#[test]
fn lines_of_no_known_form_are_not_recognised() {
    for line in [
        "",
        "*",
        "* ",
        "!",
        "! something new",
        "hello",
        "no colon here",
        "two words: text",
        ": text",
        "[pm] nocolon",
        "[history yesterday] alice: hi",
        "* rooms: #lobby (x)",
        "* history #rust: many lines",
        "! nick alice is cool",
        "* bans in #rust: bo b!",
        "! bob is not in rust",
    ] {
        assert_eq!(recognise(line), None, "{line:?}");
    }
}

/// The same invariant as the `server_lines` target (recognise → render is
/// the identity), for numbers: a leading zero, or `line`/`lines` not
/// agreeing with the count, is not a line the server writes.
#[test]
fn numbers_are_read_only_as_the_server_writes_them() {
    for line in [
        "* rooms: #lobby (02)",
        "* history #rust: 007 lines",
        "* history #rust: 1 lines",
        "* history #rust: 2 line",
        "! line too long (max 04096 bytes)",
        "! too many attempts from your address, try again in 030 s",
        "! history incomplete: 1 lines of #rust could not be saved to disk and will be missing after a restart",
        "! history incomplete: 3 line of #rust could not be saved to disk and will be missing after a restart",
        "! history incomplete: 03 lines of #rust could not be saved to disk and will be missing after a restart",
    ] {
        assert_eq!(recognise(line), None, "{line:?}");
    }
    for line in [
        "* rooms: #lobby (0)",
        "* history #rust: 0 lines",
        "* history #rust: 1 line",
        "! history incomplete: 1 line of #rust could not be saved to disk and will be missing after a restart",
    ] {
        let seen = recognise(line).expect(line);
        assert_eq!(to_text(&seen), line);
    }
}

/// Fuzzing (`server_lines`, finding 9): a line with two room prefixes was
/// read as the line with one, so it rendered back as another line.
#[test]
fn a_line_with_two_room_prefixes_is_not_recognised() {
    assert_eq!(recognise("[#p-pm] [#p-pm] al: "), None);
    assert_eq!(recognise("[#a] [#b] alice: hi"), None);
    assert!(recognise("[#a] alice: hi").is_some());
}

/// Fuzzing (`server_lines`): a user list with an empty nick (two spaces,
/// a leading or a trailing one) was read as the list without it, so it
/// rendered back as another line. The server never sends one.
#[test]
fn a_user_list_with_an_empty_nick_is_not_recognised() {
    for line in [
        "* users in #a:  x",
        "* users in #a: x ",
        "* users in #a: x  y",
        "* users in #a:  ",
    ] {
        assert_eq!(recognise(line), None, "{line:?}");
    }
    assert_eq!(
        recognise("* users in #a: "),
        Some(ServerLine::Reply(Reply::Users {
            room: "#a",
            nicks: Vec::new()
        }))
    );
}

proptest::proptest! {
    /// Recognising never panics, whatever the line.
    #[test]
    fn any_line_is_recognised_or_not(line in "\\PC*|[*!] .{0,40}|\\[(pm|history) .{0,30}") {
        let _ = recognise(&line);
    }

    /// Any chat line, private message or action comes back as sent.
    #[test]
    fn chat_round_trips(
        nick in "[a-zA-Z][a-zA-Z0-9_-]{0,31}",
        text in "[^\n]{0,60}",
    ) {
        let said: ServerLine<'_> = Event::Said { from: &nick, room: None, text: &text, stamp: None }.into();
        let text = to_text(&said);
        proptest::prop_assert_eq!(recognise(&text), Some(said));
        let pm: ServerLine<'_> = Event::PrivateMessage { from: &nick, text: &text, to: None }.into();
        let text = to_text(&pm);
        proptest::prop_assert_eq!(recognise(&text), Some(pm));
    }
}

/// The tags each kind of line carries (protocol 1.2), and the tagged
/// rendering: the prefix, then the line as the dialect writes it.
#[test]
fn lines_carry_the_tags_the_protocol_names() {
    use crate::event::Stamp;
    use crate::tags::ServerTags;
    let now = 1_796_638_503_123;
    let stamp = Some(Stamp {
        id: 7,
        time_ms: 1_796_638_500_001,
    });
    let said: ServerLine<'_> = Event::Said {
        from: "alice",
        room: Some("#rust"),
        text: "hi; there",
        stamp,
    }
    .into();
    assert_eq!(
        said.tags(now),
        ServerTags {
            room: Some("#rust"),
            id: Some(7),
            ..ServerTags::at(1_796_638_500_001)
        }
    );
    let mut out = Vec::new();
    Dialect::Line.render_tagged(&said, now, &mut out);
    assert_eq!(
        out,
        b"@time=2026-12-07T10:15:00.001Z;room=#rust;id=7 alice: hi; there\n"
    );
    let echo: ServerLine<'_> = Event::PrivateMessage {
        from: "alice",
        text: "psst",
        to: Some("bob"),
    }
    .into();
    assert_eq!(
        echo.tags(now),
        ServerTags {
            to: Some("bob"),
            ..ServerTags::at(now)
        }
    );
    let past: ServerLine<'_> = Reply::HistoryLine {
        time_ms: 1_796_638_500_001,
        line: "alice: hi",
        room: Some("#rust"),
        id: Some(7),
    }
    .into();
    out.clear();
    Dialect::Line.render_tagged(&past, now, &mut out);
    assert_eq!(
        out,
        b"@time=2026-12-07T10:15:00.001Z;room=#rust;id=7 \
          [history 2026-12-07T10:15:00Z] alice: hi\n"
    );
    let left: ServerLine<'_> = Event::Left {
        nick: "bob",
        room: "#rust",
        reason: None,
        quit: false,
    }
    .into();
    assert_eq!(left.tags(now).room, Some("#rust"));
    assert_eq!(left.tags(now).id, None);
    for plain in [
        ServerLine::from(Reply::TagsOn),
        Error::BadTags.into(),
        Event::Renamed { old: "a", new: "b" }.into(),
    ] {
        assert_eq!(plain.tags(now), ServerTags::at(now), "{plain:?}");
    }
}
