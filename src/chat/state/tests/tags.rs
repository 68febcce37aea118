//! The chat state's rules of protocol 1.2's tags, with no network: an
//! outbox that writes each line as the server does for its recipient
//! (tagged when that client turned tags on, with the command's label on
//! answers) and records it.

use crate::chat::{Chat, ClientId, Delivery, Outbox};
use crate::protocol::tags::{self, Label};
use crate::protocol::{Dialect, ServerLine};
use std::collections::HashSet;

/// Every line sent, per recipient, as its client reads it.
#[derive(Default)]
struct Written {
    lines: Vec<(ClientId, String)>,
    tagged: HashSet<ClientId>,
    label: Option<Label>,
}

impl Outbox for Written {
    fn queue(&mut self, to: ClientId, line: &ServerLine<'_>, how: Delivery) {
        let answer = how.answer;
        let mut bytes = Vec::new();
        if self.tagged.contains(&to) {
            let mut shared = Vec::new();
            Dialect::Line.render_tagged(line, 1_796_638_503_123, &mut shared);
            match self.label.filter(|_| answer) {
                Some(label) => tags::insert_label(&shared, label.as_str(), &mut bytes),
                None => bytes = shared,
            }
        } else if how.prefixed {
            Dialect::Line.render_prefixed(line, &mut bytes);
        } else {
            Dialect::Line.render(line, &mut bytes);
        }
        let text = String::from_utf8(bytes).expect("utf-8");
        let text = text.strip_suffix('\n').expect("lines end in \\n");
        self.lines.push((to, text.to_string()));
    }

    fn set_tags(&mut self, to: ClientId, on: bool) {
        if on {
            self.tagged.insert(to);
        } else {
            self.tagged.remove(&to);
        }
    }

    fn answering(&mut self, label: Option<Label>) {
        self.label = label;
    }
}

impl Written {
    /// Lines sent to `id`, emptying the record, with each `time` tag
    /// written `T` (see [`Written::take_timed`] for the times).
    fn take(&mut self, id: ClientId) -> Vec<String> {
        self.take_timed(id)
            .into_iter()
            .map(|l| untimed(&l))
            .collect()
    }

    /// Lines sent to `id`, emptying the record, times included.
    fn take_timed(&mut self, id: ClientId) -> Vec<String> {
        let (mine, rest) = std::mem::take(&mut self.lines)
            .into_iter()
            .partition(|(to, _)| *to == id);
        self.lines = rest;
        mine.into_iter().map(|(_, line)| line).collect()
    }
}

/// `line` with the value of its `time` tag replaced by `T`.
fn untimed(line: &str) -> String {
    match line.strip_prefix("@time=") {
        Some(rest) => {
            let end = rest.find([';', ' ']).unwrap_or(rest.len());
            format!("@time=T{}", &rest[end..])
        }
        None => line.to_string(),
    }
}

/// The value of `key` in a tagged line.
fn tag<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (tags, _) = line.strip_prefix('@')?.split_once(' ')?;
    tags.split(';')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// Clients `ids` connected (guest1, guest2, ...), their arrival drained.
fn chat_with(ids: &[ClientId]) -> (Chat, Written) {
    let mut chat = Chat::new(None);
    let mut out = Written::default();
    for &id in ids {
        chat.connect(id, &mut out);
    }
    out.lines.clear();
    (chat, out)
}

#[test]
fn tags_on_is_tagged_tags_off_is_not_and_anything_else_is_usage() {
    let (mut chat, mut out) = chat_with(&[0]);
    assert_eq!(chat.handle_line(0, ":tags on", &mut out).tags, Some(true));
    chat.handle_line(0, ":tags maybe", &mut out);
    chat.handle_line(0, ":ping", &mut out);
    assert!(chat.tags_on(0));
    assert_eq!(chat.handle_line(0, ":tags off", &mut out).tags, Some(false));
    chat.handle_line(0, ":ping", &mut out);
    chat.handle_line(0, ":tags", &mut out);
    assert_eq!(
        out.take(0),
        [
            "@time=T * tags on",
            "@time=T ! usage: :tags on|off",
            "@time=T * pong",
            "* tags off",
            "* pong",
            "! usage: :tags on|off",
        ]
    );
    assert!(!chat.tags_on(0));
}

#[test]
fn chat_and_me_carry_room_id_and_time_and_echo_to_a_tagged_sender() {
    let (mut chat, mut out) = chat_with(&[0, 1, 2]);
    chat.handle_line(0, ":tags on", &mut out);
    chat.handle_line(2, ":tags on", &mut out);
    out.lines.clear();
    chat.handle_line(0, "hello", &mut out);
    chat.handle_line(0, ":me waves", &mut out);
    chat.handle_line(1, "untagged sender", &mut out);
    let sender = out.take_timed(0);
    let other = out.take_timed(2);
    assert_eq!(sender, other, "the echo is the room's line, time included");
    assert_eq!(
        sender.iter().map(|l| untimed(l)).collect::<Vec<_>>(),
        [
            "@time=T;room=#lobby;id=1 guest1: hello",
            "@time=T;room=#lobby;id=2 * guest1 waves",
            "@time=T;room=#lobby;id=3 guest2: untagged sender",
        ]
    );
    assert_eq!(
        out.take(1),
        ["guest1: hello", "* guest1 waves"],
        "tags off: no tags, and no echo of its own line"
    );
    // The time is the line's acceptance, not the render's.
    let time = tag(&sender[0], "time").unwrap();
    assert_ne!(time, "2026-12-07T10:15:03.123Z");
    assert!(tags::parse_time_ms(time).is_some(), "{time}");
}

#[test]
fn history_replays_ids_and_times_as_first_delivered() {
    let (mut chat, mut out) = chat_with(&[0, 1]);
    chat.handle_line(0, ":tags on", &mut out);
    chat.handle_line(1, "first", &mut out);
    chat.handle_line(0, ":me second", &mut out);
    chat.handle_line(0, ":join Rust", &mut out);
    chat.handle_line(0, "in rust", &mut out);
    chat.handle_line(0, ":join lobby", &mut out);
    let delivered: Vec<String> = out
        .take_timed(0)
        .into_iter()
        .filter(|l| tag(l, "id").is_some())
        .collect();
    chat.handle_line(0, ":history", &mut out);
    let replay = out.take_timed(0);
    assert_eq!(untimed(&replay[0]), "@time=T * history #lobby: 2 lines");
    for (past, first) in replay[1..].iter().zip([&delivered[0], &delivered[1]]) {
        assert_eq!(tag(past, "id"), tag(first, "id"));
        assert_eq!(tag(past, "time"), tag(first, "time"));
        assert_eq!(tag(past, "room"), Some("#lobby"));
        let stamp = &tag(first, "time").unwrap()[..19];
        let text = first.split_once(' ').unwrap().1;
        assert!(
            past.ends_with(&format!(" [history {stamp}Z] {text}")),
            "{past} / {first}"
        );
    }
    assert_eq!(replay.len(), 3);
    assert_eq!(tag(&delivered[2], "id"), Some("3"), "ids go on over rooms");
    assert_eq!(tag(&delivered[2], "room"), Some("#Rust"));
    // Untagged, the same history as in version 1.1.
    out.take(1);
    chat.handle_line(1, ":history 1", &mut out);
    let plain = out.take(1);
    assert_eq!(plain[0], "* history #lobby: 1 line");
    assert!(plain[1].starts_with("[history ") && plain[1].ends_with("] * guest1 second"));
}

#[test]
fn a_private_message_echo_names_the_recipient() {
    let (mut chat, mut out) = chat_with(&[0, 1]);
    chat.handle_line(0, ":tags on", &mut out);
    out.lines.clear();
    chat.handle_line(0, ":pm GUEST2 psst", &mut out);
    chat.handle_line(0, ":pm guest1 note to self", &mut out);
    assert_eq!(
        out.take(0),
        [
            "@time=T;to=guest2 [pm] guest1: psst",
            "@time=T;to=guest1 [pm] guest1: note to self",
        ]
    );
    assert_eq!(out.take(1), ["[pm] guest1: psst"]);
    chat.handle_line(1, ":pm guest1 back", &mut out);
    assert_eq!(out.take(1), [] as [&str; 0], "tags off: no echo");
    assert_eq!(out.take(0), ["@time=T [pm] guest2: back"]);
}

#[test]
fn labels_come_back_on_answers_echoes_and_errors_only() {
    let (mut chat, mut out) = chat_with(&[0, 1]);
    chat.handle_line(0, ":tags on", &mut out);
    chat.handle_line(1, ":tags on", &mut out);
    out.lines.clear();
    chat.handle_line(0, "@label=a1 :nick 9", &mut out);
    chat.handle_line(0, "@label=a2;x=y :ping tok", &mut out);
    chat.handle_line(0, "@label=a3 hi all", &mut out);
    chat.handle_line(0, "@label=a4 :pm guest2 psst", &mut out);
    chat.handle_line(0, "@label=a5 @all lunch?", &mut out);
    chat.handle_line(0, "@label=a6 :nick alice", &mut out);
    assert_eq!(
        out.take(0),
        [
            "@time=T;label=a1 ! invalid name 9",
            "@time=T;label=a2 * pong tok",
            "@time=T;room=#lobby;id=1;label=a3 guest1: hi all",
            "@time=T;to=guest2;label=a4 [pm] guest1: psst",
            "@time=T;room=#lobby;id=2;label=a5 guest1: @all lunch?",
            "@time=T;label=a6 * guest1 is now known as alice",
        ]
    );
    assert_eq!(
        out.take(1),
        [
            "@time=T;room=#lobby;id=1 guest1: hi all",
            "@time=T [pm] guest1: psst",
            "@time=T;room=#lobby;id=2 guest1: @all lunch?",
            "@time=T * guest1 is now known as alice",
        ],
        "others' copies carry no label"
    );
}

#[test]
fn bad_tags_are_refused_with_tags_on_and_chat_with_tags_off() {
    let (mut chat, mut out) = chat_with(&[0, 1]);
    chat.handle_line(1, "@all hi", &mut out);
    assert_eq!(out.take(0), ["guest2: @all hi"], "tags off: chat as in 1.1");
    chat.handle_line(0, ":tags on", &mut out);
    out.lines.clear();
    let long = "x".repeat(65);
    for bad in [
        "@all hi".to_string(),
        "@label=1".to_string(),
        "@label=1 ".to_string(),
        "@label=a.b hi".to_string(),
        format!("@label={long} :ping"),
        "@ hi".to_string(),
    ] {
        chat.handle_line(0, &bad, &mut out);
        assert_eq!(out.take(0), ["@time=T ! bad tags"], "{bad:?}");
    }
    assert!(out.take(1).is_empty(), "nothing reached the room");
    let fits = "x".repeat(64);
    chat.handle_line(0, &format!("@label={fits} :ping"), &mut out);
    assert_eq!(out.take(0), [format!("@time=T;label={fits} * pong")]);
}

#[test]
fn a_history_that_waits_for_its_tail_keeps_its_label() {
    use crate::chat::history::Tails;
    use crate::chat::Awaited;
    let (chat, mut out) = chat_with(&[0]);
    // A room whose tail is on its way from the history file.
    let mut chat = chat.with_history(Tails::new(20, None, true, usize::MAX, 1));
    chat.handle_line(0, ":tags on", &mut out);
    chat.handle_line(0, ":join fresh", &mut out);
    out.lines.clear();
    let asked = chat.handle_line(0, "@label=h1 :history", &mut out);
    assert_eq!(asked.waits_for, Some(Awaited::HistoryTail));
    assert!(out.take(0).is_empty(), "the answer waits");
    chat.handle_line(0, "@label=p2 :ping", &mut out);
    assert_eq!(out.take(0), ["@time=T;label=p2 * pong"]);
    assert!(chat.take_ready_history_waits().is_empty());
    chat.history_mut().loaded("#fresh", Vec::new());
    let ready = chat.take_ready_history_waits();
    assert_eq!(ready.len(), 1);
    assert_eq!(
        ready[0].label.map(|l| l.as_str().to_string()),
        Some("h1".into())
    );
    let unlabelled = chat.handle_line(0, ":history", &mut out);
    assert_eq!(unlabelled.waits_for, None, "the tail is here now");
    assert_eq!(out.take(0), ["@time=T * history #fresh: 0 lines"]);
}

/// Rooms and tags together: a tagged room line carries no `[ROOM] `
/// prefix, whatever the recipient's current room; its `room` tag says
/// which room, operators' lines included.
#[test]
fn a_tagged_member_of_two_rooms_gets_the_other_rooms_lines_by_their_room_tag() {
    let (mut chat, mut out) = chat_with(&[0, 1, 2]);
    chat.handle_line(1, ":tags on", &mut out);
    chat.handle_line(0, ":join rust", &mut out);
    chat.handle_line(1, ":join rust", &mut out);
    chat.handle_line(2, ":join rust", &mut out);
    chat.handle_line(1, ":join lobby", &mut out); // guest2: #lobby current
    out.lines.clear();
    chat.handle_line(0, "in rust", &mut out);
    chat.handle_line(0, ":kick guest3 bye", &mut out);
    assert_eq!(
        out.take(1),
        [
            "@time=T;room=#rust;id=1 guest1: in rust",
            "@time=T;room=#rust * guest3 was kicked from #rust by guest1 (bye)",
        ]
    );
    assert_eq!(
        out.take(2),
        [
            "guest1: in rust",
            "* guest3 was kicked from #rust by guest1 (bye)",
            "* current room #lobby",
        ]
    );
    out.take(0);
    chat.handle_line(2, "in the lobby", &mut out);
    assert_eq!(
        out.take(0),
        ["[#lobby] guest3: in the lobby"],
        "untagged: prefixed"
    );
    assert_eq!(
        out.take(1),
        ["@time=T;room=#lobby;id=2 guest3: in the lobby"]
    );
}
