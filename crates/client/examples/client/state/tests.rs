use super::*;

/// An end-to-end side whose folder is never made (opened on first use).
fn no_e2e() -> Secure {
    Secure::new(std::env::temp_dir().join("loopchat-no-e2e"), "test".into())
}

const T: &str = "2026-12-07T10:15:03.123Z";

/// `line` tagged as the server tags it: `time`, then the rest.
fn tagged(tags: &str, line: &str) -> Vec<u8> {
    if tags.is_empty() {
        format!("@time={T} {line}").into_bytes()
    } else {
        format!("@time={T};{tags} {line}").into_bytes()
    }
}

/// Welcomed as alice with tags on, in #lobby; what was sent since is
/// returned with the state.
fn state() -> (State, Vec<String>) {
    let mut s = State::new("test".into(), Some("alice".into()), None, no_e2e());
    let mut sent = s.on_line(b"* welcome guest1");
    assert_eq!(sent, [":tags on", ":nick alice"]);
    // Before `* tags on` nothing is labelled: it waits.
    assert!(s.on_line(b"* guest1 joined #lobby").is_empty());
    sent = s.on_line(&tagged("", "* tags on"));
    assert_eq!(
        sent,
        ["@label=1 :users", "@label=2 :history 30", "@label=3 :rooms"]
    );
    s.on_line(&tagged("", "* guest1 is now known as alice"));
    s.on_line(&tagged("label=1", "* users in #lobby: alice bob"));
    s.on_line(&tagged("label=2", "* history #lobby: 0 lines"));
    s.on_line(&tagged("label=3", "* rooms: #lobby (2), #rust (1)"));
    (s, sent)
}

fn texts(buffer: &Buffer) -> Vec<String> {
    buffer
        .messages
        .iter()
        .map(|m| match &m.kind {
            Kind::Chat { nick, text, .. } => format!("{nick}: {text}"),
            Kind::Action { nick, text, .. } => format!("* {nick} {text}"),
            Kind::PmIn { from, text } => format!("[pm] {from}: {text}"),
            Kind::PmOut { to, text } => format!("[pm → {to}] {text}"),
            Kind::Info(t) | Kind::Presence(t) | Kind::Error(t) | Kind::Notice(t) => t.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

fn buffer<'a>(s: &'a State, name: &str) -> &'a Buffer {
    s.buffers
        .iter()
        .find(|b| b.name().eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("no buffer {name}"))
}

#[test]
fn answers_to_our_own_questions_are_hidden_and_fill_the_lists() {
    let (s, _) = state();
    let lobby = buffer(&s, "#lobby");
    assert_eq!(lobby.users, ["alice", "bob"]);
    assert_eq!(
        texts(lobby),
        ["* guest1 joined #lobby", "* guest1 is now known as alice"]
    );
    assert_eq!(s.rooms[1], ("#rust".to_string(), "1".to_string()));
    assert_eq!(s.view_name(), "#lobby");
}

#[test]
fn lines_go_to_their_rooms_buffer_and_count_unread_there() {
    let (mut s, _) = state();
    let sent = s.on_line(&tagged("room=#rust", "* alice joined #rust"));
    assert_eq!(
        sent,
        ["@label=4 :users", "@label=5 :history 30", "@label=6 :rooms"]
    );
    assert_eq!(s.view_name(), "#rust");
    s.bells = 0;
    s.on_line(&tagged("room=#lobby;id=7", "bob: hi all"));
    s.on_line(&tagged("room=#lobby;id=8", "bob: alice, lunch?"));
    s.on_line(&tagged("room=#rust;id=1", "carol: rust things"));
    let lobby = buffer(&s, "#lobby");
    assert_eq!((lobby.unread, lobby.mention), (2, true));
    assert_eq!(s.bells, 1, "one bell for the one mention");
    assert_eq!(texts(s.shown()).last().unwrap(), "carol: rust things");
    assert!(!texts(s.shown()).iter().any(|t| t.contains("lunch")));
    // Alt-1 is #lobby: shown, seen, made current on the server.
    let listed = s.listed();
    assert_eq!(s.buffers[listed[0]].name(), "#lobby");
    assert_eq!(s.switch_to(listed[0]), ["@label=7 :join #lobby"]);
    s.on_line(&tagged("label=7", "* current room #lobby"));
    assert_eq!(s.room.as_deref(), Some("#lobby"));
    let lobby = buffer(&s, "#lobby");
    assert_eq!((lobby.unread, lobby.mention), (0, false));
    assert!(!texts(lobby).iter().any(|t| t.contains("current room")));
}

#[test]
fn history_and_live_lines_are_deduplicated_by_id_and_ordered_by_time() {
    let (mut s, _) = state();
    s.on_line(&tagged("room=#lobby;id=5", "bob: live"));
    s.on_input("hello");
    s.on_line(b"@time=2026-12-07T10:15:04.000Z;room=#lobby;id=6;label=4 alice: hello");
    assert_eq!(s.on_input(":history 3"), ["@label=5 :history 3"]);
    s.on_line(&tagged("label=5", "* history #lobby: 3 lines"));
    for (id, at, line) in [
        (4, "2026-12-06T23:00:00", "bob: yesterday"),
        (5, "2026-12-07T10:15:03", "bob: live"),
        (6, "2026-12-07T10:15:04", "alice: hello"),
    ] {
        let time = if id == 5 {
            T.to_string()
        } else {
            format!("{at}.000Z")
        };
        let raw = format!("@time={time};room=#lobby;id={id} [history {at}Z] {line}");
        s.on_line(raw.as_bytes());
    }
    let lobby = buffer(&s, "#lobby");
    let chat: Vec<String> = texts(lobby)
        .into_iter()
        .filter(|t| t.contains(": ") && !t.starts_with("* "))
        .collect();
    assert_eq!(chat, ["bob: yesterday", "bob: live", "alice: hello"]);
}

#[test]
fn an_own_line_is_sending_until_its_echo_and_refused_with_the_error() {
    let (mut s, _) = state();
    assert_eq!(s.on_input("first"), ["@label=4 first"]);
    assert_eq!(s.shown().messages.back().unwrap().status, Status::Sending);
    assert_eq!(s.on_input("second"), ["@label=5 second"]);
    s.on_line(&tagged("room=#lobby;id=9;label=4", "alice: first"));
    s.on_line(&tagged("label=5", "! not in any room (try :join ROOM)"));
    let mine: Vec<(String, Status, Option<u64>)> = s
        .shown()
        .messages
        .iter()
        .filter_map(|m| match &m.kind {
            Kind::Chat {
                text, own: true, ..
            } => Some((text.clone(), m.status.clone(), m.id)),
            _ => None,
        })
        .collect();
    assert_eq!(
        mine,
        [
            ("first".into(), Status::Sent, Some(9)),
            (
                "second".into(),
                Status::Refused("! not in any room (try :join ROOM)".into()),
                None
            ),
        ]
    );
    // One line each: the echo is not shown again.
    assert_eq!(texts(s.shown()).len(), 4);
    // A line still waiting when the connection drops is marked too.
    s.on_input("third");
    s.disconnected();
    assert!(matches!(
        s.shown().messages.back().unwrap().status,
        Status::Refused(_)
    ));
}

/// The last line echoed before the connection drops was sent: its label
/// is kept for more answers, but the line is not marked lost.
#[test]
fn an_echoed_line_stays_sent_when_the_connection_drops() {
    let (mut s, _) = state();
    assert_eq!(s.on_input("last words"), ["@label=4 last words"]);
    s.on_line(&tagged("room=#lobby;id=9;label=4", "alice: last words"));
    s.on_line(&tagged("", "* server shutting down"));
    s.disconnected();
    let last = s
        .shown()
        .messages
        .iter()
        .rev()
        .find(|m| matches!(m.kind, Kind::Chat { own: true, .. }))
        .expect("the own line");
    assert_eq!((&last.status, last.id), (&Status::Sent, Some(9)));
}

#[test]
fn private_conversations_are_buffers_of_their_own() {
    let (mut s, _) = state();
    s.bells = 0;
    s.on_line(&tagged("", "[pm] bob: psst"));
    let bob = buffer(&s, "bob");
    assert_eq!((bob.unread, bob.mention), (1, true));
    assert_eq!(s.bells, 1);
    // `:pm bob` opens it; plain lines there go as `:pm bob`.
    assert!(s.on_input(":pm bob").is_empty());
    assert_eq!(s.view_name(), "pm bob");
    assert_eq!(s.on_input("hi back"), ["@label=4 :pm bob hi back"]);
    s.on_line(&tagged("to=bob;label=4", "[pm] alice: hi back"));
    assert_eq!(texts(s.shown()), ["[pm] bob: psst", "[pm → bob] hi back"]);
    assert_eq!(s.shown().messages[1].status, Status::Sent);
    // `:join` of a room we are in shows it, without asking the server
    // when it is current already; `:pm NICK TEXT` shows the conversation.
    assert!(s.on_input(":join lobby").is_empty());
    assert_eq!(s.view_name(), "#lobby");
    assert_eq!(
        s.on_input(":pm bob one more"),
        ["@label=5 :pm bob one more"]
    );
    assert_eq!(s.view_name(), "pm bob");
    // Renamed: the conversation follows.
    s.on_line(&tagged("", "* bob is now known as robert"));
    assert_eq!(s.view_name(), "pm robert");
    // A room line meanwhile does not take the screen away.
    s.on_line(&tagged("room=#rust", "* alice joined #rust"));
    assert_eq!(s.view_name(), "pm robert");
}

#[test]
fn member_lists_follow_joins_leaves_renames_and_operators() {
    let (mut s, _) = state();
    s.on_line(&tagged("room=#lobby", "* carol joined #lobby"));
    assert_eq!(s.users(), ["alice", "bob", "carol"]);
    s.on_line(&tagged("", "* bob is now known as Zed"));
    assert_eq!(s.users(), ["alice", "carol", "Zed"]);
    s.on_line(&tagged(
        "room=#lobby",
        "* alice made carol an operator of #lobby",
    ));
    assert_eq!(s.users(), ["alice", "@carol", "Zed"]);
    s.on_line(&tagged("room=#lobby", "* carol left #lobby (gone)"));
    assert_eq!(s.users(), ["alice", "Zed"]);
    s.on_line(&tagged(
        "room=#lobby",
        "* Zed was kicked from #lobby by alice",
    ));
    assert_eq!(s.users(), ["alice"]);
    s.on_line(&tagged(
        "room=#lobby",
        "* alice set the topic of #lobby: hello",
    ));
    assert_eq!(s.shown().topic.as_deref(), Some("hello"));
}

/// A room joined again after a reconnect shows the topic the server has
/// now: a server restarted has none (its rooms are new), and says nothing.
#[test]
fn a_topic_from_before_a_reconnect_is_not_kept() {
    let (mut s, _) = state();
    s.on_line(&tagged("room=#rust", "* alice joined #rust"));
    s.on_line(&tagged("room=#rust", "* topic #rust: Rust talk"));
    assert_eq!(buffer(&s, "#rust").topic.as_deref(), Some("Rust talk"));
    s.disconnected();
    s.on_line(b"* welcome guest9");
    s.on_line(b"* guest9 joined #lobby");
    s.on_line(&tagged("", "* tags on"));
    s.on_line(&tagged("", "* guest9 is now known as alice"));
    s.on_line(&tagged("room=#rust", "* alice joined #rust"));
    assert_eq!(buffer(&s, "#rust").topic, None);
    // Joined where a topic is set, the server says it after the join.
    s.on_line(&tagged("room=#rust", "* topic #rust: still Rust"));
    assert_eq!(buffer(&s, "#rust").topic.as_deref(), Some("still Rust"));
}

#[test]
fn a_reconnect_joins_every_room_again_and_asks_for_the_gap() {
    let (mut s, _) = state();
    s.on_line(&tagged("room=#rust", "* alice joined #rust"));
    s.on_line(&tagged("room=#rust;id=3", "bob: before the drop"));
    s.disconnected();
    let sent = s.on_line(b"* welcome guest9");
    assert_eq!(
        sent,
        [":tags on", ":nick alice", ":join #lobby", ":join #rust"]
    );
    s.on_line(b"* guest9 joined #lobby");
    s.on_line(&tagged("", "* tags on"));
    s.on_line(&tagged("", "* guest9 is now known as alice"));
    let sent = s.on_line(&tagged("room=#rust", "* alice joined #rust"));
    let history = sent
        .iter()
        .find_map(|l| l.strip_suffix(" :history 1000"))
        .unwrap_or_else(|| panic!("no :history 1000 in {sent:?}"));
    let label = history.strip_prefix("@").unwrap();
    s.on_line(&tagged(label, "* history #rust: 2 lines"));
    s.on_line(&tagged(
        "room=#rust;id=3",
        "[history 2026-12-07T10:15:03Z] bob: before the drop",
    ));
    s.on_line(&tagged(
        "room=#rust;id=4",
        "[history 2026-12-07T10:15:05Z] bob: while we were away",
    ));
    // A server restarted without its history file numbers from 1 again:
    // the same id at another time is another line.
    s.on_line(b"@time=2026-12-07T11:00:00.000Z;room=#rust;id=3 bob: a new line 3");
    let rust: Vec<String> = texts(buffer(&s, "#rust"))
        .into_iter()
        .filter(|t| t.starts_with("bob: "))
        .collect();
    assert_eq!(
        rust,
        [
            "bob: before the drop",
            "bob: while we were away",
            "bob: a new line 3"
        ]
    );
}

#[test]
fn a_server_without_tags_still_places_lines_by_their_prefix() {
    let mut s = State::new("test".into(), None, None, no_e2e());
    assert_eq!(s.on_line(b"* welcome guest1"), [":tags on"]);
    s.on_line(b"* guest1 joined #lobby");
    let sent = s.on_line(b"! unknown command :tags (try :help)");
    assert_eq!(sent, [":users", ":history 30", ":rooms"]);
    s.on_line(b"* users in #lobby: bob guest1");
    s.on_line(b"* rooms: #lobby (2)");
    s.on_line(b"* guest1 joined #rust");
    s.on_line(b"[#lobby] bob: over there");
    s.on_line(b"bob: here");
    assert_eq!(buffer(&s, "#lobby").unread, 1);
    assert!(texts(buffer(&s, "#rust")).contains(&"bob: here".to_string()));
    assert_eq!(s.on_input("plain"), ["plain"]);
    assert_eq!(s.shown().messages.back().unwrap().status, Status::Sent);
}

#[test]
fn help_lists_the_keys_and_asks_the_server_for_its_commands() {
    let (mut s, _) = state();
    assert_eq!(s.on_input(":help"), ["@label=4 :help"]);
    let keys = texts(s.shown())
        .into_iter()
        .filter(|t| t.starts_with("keys: "))
        .count();
    assert_eq!(keys, 4);
}

#[test]
fn own_lines_carry_the_nick_being_taken_and_controls_are_never_stored() {
    let mut s = State::new("test".into(), Some("alice".into()), None, no_e2e());
    s.on_line(b"* welcome guest1");
    s.on_line(b"* guest1 joined #lobby");
    s.on_line(b"! unknown command :tags (try :help)");
    s.on_input("early");
    s.on_line(b"! nick alice is taken");
    s.on_input("later");
    s.on_line(b"mallory: \x1b[2Jboo");
    assert_eq!(
        texts(s.shown())[2..],
        [
            "alice: early",
            "! nick alice is taken",
            "guest1: later",
            "mallory: \\x1b[2Jboo"
        ]
    );
    s.disconnected();
    // The guest nick is not asked for again.
    assert_eq!(s.on_line(b"* welcome guest7"), [":tags on"]);
}

#[test]
fn the_password_is_sent_when_asked_and_dropped_when_wrong() {
    let mut s = State::new("test".into(), None, Some("pw".into()), no_e2e());
    assert_eq!(s.on_line(b"* password required"), [":auth pw"]);
    s.on_line(b"! wrong password");
    s.disconnected();
    // A reconnect does not try it again: the person types :auth.
    assert!(s.on_line(b"* password required").is_empty());
    s.on_input(":auth better");
    s.disconnected();
    assert_eq!(s.on_line(b"* password required"), [":auth better"]);
}

#[test]
fn keepalive_pongs_are_hidden_but_typed_pings_are_not() {
    let (mut s, _) = state();
    let n = s.shown().messages.len();
    s.keepalive_sent();
    s.on_line(&tagged("", "* pong keepalive"));
    assert_eq!(s.shown().messages.len(), n);
    s.on_line(&tagged("", "* pong keepalive"));
    assert_eq!(s.shown().messages.len(), n + 1);
}

#[test]
fn tags_stay_on_and_a_line_starting_with_an_at_is_labelled() {
    let (mut s, _) = state();
    assert!(s.on_input(":tags off").is_empty());
    assert!(texts(s.shown()).last().unwrap().contains("keeps tags on"));
    assert_eq!(s.on_input("@all lunch?"), ["@label=4 @all lunch?"]);
}

#[test]
fn slash_commands_are_commands_and_a_double_slash_is_chat() {
    let (mut s, _) = state();
    let mut typed = |line: &str| s.on_input(&slash_command(line).unwrap_or(line.to_string()));
    assert_eq!(typed("/me waves"), ["@label=4 :me waves"]);
    assert_eq!(typed("/JOIN rust"), ["@label=5 :JOIN rust"]);
    assert_eq!(typed("//etc is a folder"), ["@label=6 /etc is a folder"]);
    assert_eq!(typed("/usr/bin too"), ["@label=7 /usr/bin too"]);
    assert_eq!(typed("/ shrug"), ["@label=8 / shrug"]);
    let shown = texts(s.shown());
    assert_eq!(
        shown[shown.len() - 4..],
        [
            "* alice waves",
            "alice: /etc is a folder",
            "alice: /usr/bin too",
            "alice: / shrug"
        ]
    );
    // `/e2e` is end to end as `:e2e` is: never sent in the clear.
    let sent = s.on_input(&slash_command("/e2e bob secret-words").unwrap());
    assert!(!sent.iter().any(|l| l.contains("secret-words")), "{sent:?}");
}

#[test]
fn a_line_with_a_bad_tag_prefix_is_shown_whole() {
    let (mut s, _) = state();
    s.on_line(b"@time=x;;; bob: hi");
    assert!(texts(s.shown()).last().unwrap().contains("bob: hi"));
}
