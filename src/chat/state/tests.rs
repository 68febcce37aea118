//! The chat state's unit tests: the wording and who receives what, with
//! the [`Recorded`] outbox (no network). `rooms.rs` and `operators.rs`
//! beside it test the rules of protocol 1.2's rooms and operators,
//! `tags.rs` those of its tags (with an outbox that writes lines as a
//! tagged client reads them).

use super::*;
use crate::protocol::Dialect;

/// Collects every line sent, per recipient, as the line dialect
/// renders it; and, apart, which of them were answers.
#[derive(Default)]
struct Recorded(Vec<(ClientId, String)>, Vec<(ClientId, String)>);

impl Outbox for Recorded {
    fn queue(&mut self, to: ClientId, line: &ServerLine<'_>, how: Delivery) {
        let mut bytes = Vec::new();
        if how.prefixed {
            Dialect::Line.render_prefixed(line, &mut bytes);
        } else {
            Dialect::Line.render(line, &mut bytes);
        }
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        let text = text.strip_suffix('\n').expect("lines end in \\n");
        assert!(!text.contains('\n'), "one line at a time");
        self.0.push((to, text.to_string()));
        if how.answer {
            self.1.push((to, text.to_string()));
        }
    }
}

impl Recorded {
    /// Lines sent to `id`, emptying the record.
    fn take(&mut self, id: ClientId) -> Vec<String> {
        let (mine, rest) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|(to, _)| *to == id);
        self.0 = rest;
        mine.into_iter().map(|(_, line)| line).collect()
    }
}

/// Clients `0..nicks.len()`, in `#lobby`, each renamed to its nick; the
/// record emptied.
fn chat_of(nicks: &[&str]) -> (Chat, Recorded) {
    let ids: Vec<ClientId> = (0..nicks.len()).collect();
    let (mut chat, mut out) = chat_with(&ids);
    for (id, nick) in nicks.iter().enumerate() {
        chat.handle_line(id, &format!(":nick {nick}"), &mut out);
    }
    out.0.clear();
    out.1.clear();
    (chat, out)
}

/// Runs `line` from `id` and returns what `id` got from it (lines `id`
/// got before are dropped; the record keeps the others' lines).
fn run(chat: &mut Chat, out: &mut Recorded, id: ClientId, line: &str) -> Vec<String> {
    out.take(id);
    chat.handle_line(id, line, out);
    out.take(id)
}

mod operators;
mod rooms;
mod tags;

fn chat_with(ids: &[ClientId]) -> (Chat, Recorded) {
    let mut chat = Chat::new(None);
    let mut out = Recorded::default();
    for &id in ids {
        chat.connect(id, &mut out);
    }
    out.0.clear();
    (chat, out)
}

#[test]
fn welcome_then_join_to_everyone_in_the_lobby() {
    let mut chat = Chat::new(None);
    let mut out = Recorded::default();
    chat.connect(0, &mut out);
    chat.connect(5, &mut out);
    assert_eq!(out.take(5), ["* welcome guest2", "* guest2 joined #lobby"]);
    assert_eq!(
        out.take(0),
        [
            "* welcome guest1",
            "* guest1 joined #lobby",
            "* guest2 joined #lobby"
        ]
    );
}

#[test]
fn guest_numbers_skip_nicks_in_use() {
    let (mut chat, mut out) = chat_with(&[0]);
    chat.handle_line(0, ":nick GUEST2", &mut out);
    chat.connect(1, &mut out);
    assert_eq!(out.take(1)[0], "* welcome guest3");
}

#[test]
fn chat_reaches_others_in_the_room_only() {
    let (mut chat, mut out) = chat_with(&[0, 1, 2, 3]);
    chat.handle_line(2, ":join side", &mut out);
    chat.handle_line(3, ":join side", &mut out);
    chat.handle_line(3, ":part lobby", &mut out);
    out.0.clear();
    chat.handle_line(0, "hi \x1b[2J", &mut out);
    assert_eq!(out.take(1), ["guest1: hi \u{fffd}[2J"]);
    assert_eq!(
        out.take(2),
        ["[#lobby] guest1: hi \u{fffd}[2J"],
        "kept room"
    );
    assert!(out.0.is_empty(), "no echo, nothing to other rooms");
}

#[test]
fn leaving_keeps_room_membership_consistent() {
    let (mut chat, mut out) = chat_with(&[0, 1, 2, 3]);
    chat.disconnect(1, None, &mut out);
    chat.disconnect(0, Some("too slow"), &mut out);
    assert_eq!(
        out.take(3),
        ["* guest2 left #lobby", "* guest1 left #lobby (too slow)"]
    );
    chat.handle_line(3, ":users", &mut out);
    assert_eq!(out.take(3), ["* users in #lobby: guest3 guest4"]);
    out.0.clear();
    chat.disconnect(3, None, &mut out);
    chat.handle_line(2, "alone", &mut out);
    assert_eq!(out.take(2), ["* guest4 left #lobby"]);
    assert!(
        out.0.is_empty(),
        "a chat line to an empty room goes nowhere"
    );
}

#[test]
fn rooms_are_created_and_removed() {
    let (mut chat, mut out) = chat_with(&[0, 1]);
    chat.handle_line(0, ":join #Rust", &mut out);
    chat.handle_line(1, ":join rust", &mut out);
    out.0.clear();
    chat.handle_line(1, ":rooms", &mut out);
    assert_eq!(out.take(1), ["* rooms: #lobby (2), #Rust (2)"]);
    chat.handle_line(0, ":part", &mut out);
    chat.handle_line(0, ":part", &mut out);
    chat.handle_line(1, ":quit", &mut out);
    out.0.clear();
    chat.handle_line(0, ":rooms", &mut out);
    assert_eq!(out.take(0), ["* rooms: #lobby (0)"], "#lobby stays");
}

#[test]
fn history_records_chat_and_me_only_and_answers_from_memory() {
    let (mut chat, mut out) = chat_with(&[0, 1]);
    chat = chat.with_history(Tails::new(20, None, true, usize::MAX, 1));
    chat.handle_line(0, "hi", &mut out);
    chat.handle_line(0, ":me waves", &mut out);
    chat.handle_line(0, ":pm guest2 secret", &mut out);
    chat.handle_line(0, ":nick alice", &mut out);
    assert_eq!(chat.history_pending(), 2);
    out.0.clear();
    chat.handle_line(1, ":history 5", &mut out);
    let answer = out.take(1);
    assert_eq!(answer.len(), 3);
    assert_eq!(answer[0], "* history #lobby: 2 lines");
    assert!(answer[1].starts_with("[history 20") && answer[1].ends_with("Z] guest1: hi"));
    assert!(answer[2].ends_with("Z] * guest1 waves"));
    chat.history_mut().mark_unsaved("#lobby", 1);
    chat.handle_line(1, ":history 1", &mut out);
    let answer = out.take(1);
    assert_eq!(answer[0], "* history #lobby: 1 line");
    assert_eq!(
        answer[2],
        "! history incomplete: 1 line of #lobby could not be saved to disk and will be \
         missing after a restart"
    );
    let pending = chat.history_mut().take_pending();
    assert_eq!(pending[1].nick(), "guest1");
    assert_eq!(&*pending[1].room_key, "#lobby");
}

#[test]
fn outcomes_say_what_a_command_did() {
    let (mut chat, mut out) = chat_with(&[0, 1]);
    assert_eq!(chat.handle_line(0, ":ping", &mut out), Outcome::CONTINUE);
    let said = chat.handle_line(0, "hi", &mut out);
    assert_eq!((said.recorded, said.close), (1, false));
    assert_eq!(chat.handle_line(0, ":me waves", &mut out).recorded, 1);
    assert_eq!(chat.handle_line(0, ":pm guest2 x", &mut out).recorded, 0);
    // A room whose tail is on its way from the history file.
    chat = chat.with_history(Tails::new(20, None, true, usize::MAX, 1));
    chat.handle_line(1, ":join fresh", &mut out);
    let asked = chat.handle_line(1, ":history", &mut out);
    assert_eq!(asked.waits_for, Some(Awaited::HistoryTail));
    assert_eq!(chat.handle_line(1, ":quit", &mut out), Outcome::CLOSE);

    let mut chat = Chat::new(Some("pw".into()));
    chat.connect(0, &mut out);
    chat.connect(1, &mut out);
    let wrong = chat.handle_line(0, ":auth no", &mut out);
    assert_eq!(
        (wrong.auth, wrong.close),
        (Some(AuthResult::Refused), false)
    );
    let right = chat.handle_line(1, ":auth pw", &mut out);
    assert_eq!(right.auth, Some(AuthResult::Accepted));
    chat.handle_line(0, ":auth no", &mut out);
    let last = chat.handle_line(0, ":auth no", &mut out);
    assert_eq!((last.auth, last.close), (Some(AuthResult::Refused), true));
}

/// What a client gets as the answer to its own command is marked so
/// (the server holds answers while the asker's lines await their
/// commit); what others get because of it is not.
#[test]
fn answers_are_told_apart_from_deliveries() {
    let (mut chat, mut out) = chat_with(&[0, 1]);
    out.1.clear();
    chat.handle_line(0, ":join rust", &mut out);
    chat.handle_line(1, ":join rust", &mut out);
    chat.handle_line(0, ":nick alice", &mut out);
    chat.handle_line(0, ":pm guest2 hi", &mut out);
    chat.handle_line(0, ":pm alice me", &mut out);
    let answers: Vec<_> = out
        .1
        .iter()
        .map(|(to, line)| (*to, line.as_str()))
        .collect();
    assert_eq!(
        answers,
        [
            (0, "* guest1 joined #rust"),
            (1, "* guest2 joined #rust"),
            (0, "* guest1 is now known as alice"),
            (0, "[pm] alice: me"),
        ]
    );
    assert!(out.0.contains(&(0, "* guest2 joined #rust".to_string())));
    assert!(out.0.contains(&(1, "[pm] alice: hi".to_string())));
}

#[test]
fn reserved_nicks_are_refused_so_me_cannot_forge_server_lines() {
    let (mut chat, mut out) = chat_with(&[0, 1]);
    for nick in ["server", "Users", "BYE", "password", "Welcome"] {
        chat.handle_line(0, &format!(":nick {nick}"), &mut out);
        assert_eq!(out.take(0), [format!("! nick {nick} is reserved")]);
    }
    assert!(out.take(1).is_empty(), "nothing announced");
    chat.handle_line(0, ":me shutting down", &mut out);
    assert_eq!(out.take(1), ["* guest1 shutting down"]);
}

#[test]
fn departed_nicks_are_kept_for_the_log_once() {
    let (mut chat, mut out) = chat_with(&[0, 1]);
    chat.handle_line(0, ":nick alice", &mut out);
    chat.handle_line(0, ":quit", &mut out);
    assert_eq!(chat.departed_nick(0).as_deref(), Some("alice"));
    assert_eq!(chat.departed_nick(0), None);
    assert_eq!(chat.departed_nick(1).as_deref(), Some("guest2"));
}

#[test]
fn password_gate() {
    let mut chat = Chat::new(Some("pw".into()));
    let mut out = Recorded::default();
    chat.connect(0, &mut out);
    assert_eq!(out.take(0), ["* password required"]);
    assert!(!chat.handle_line(0, "hello", &mut out).close);
    assert!(!chat.handle_line(0, ":auth no", &mut out).close);
    assert!(!chat.handle_line(0, ":auth no", &mut out).close);
    assert!(chat.handle_line(0, ":auth no", &mut out).close);
    assert_eq!(
        out.take(0),
        [
            "! authenticate first: :auth PASSWORD",
            "! wrong password",
            "! wrong password",
            "! too many attempts"
        ]
    );
    chat.connect(1, &mut out);
    chat.handle_line(1, ":auth pw", &mut out);
    assert_eq!(
        out.take(1),
        [
            "* password required",
            "* welcome guest1",
            "* guest1 joined #lobby"
        ]
    );
    chat.handle_line(1, ":auth pw", &mut out);
    assert_eq!(out.take(1), ["! unknown command :auth (try :help)"]);
}
