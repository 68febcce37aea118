//! Chat state: who is connected under which nick, which rooms exist, and who
//! hears what. Plain data, no sockets: every line a command produces goes to
//! an [`Outbox`], which the server backs with per-connection write buffers
//! and the unit tests back with a `Vec`.

use crate::chat::history::tails::{format_utc, unix_now};
use crate::chat::history::Tails;
use crate::protocol::{self, Command};
use slab::Slab;
use std::collections::HashMap;

/// Identifies one connected client; the server uses its connection's slab key.
pub type ClientId = usize;

/// Where the chat state puts the lines it produces.
pub trait Outbox {
    /// Queues one complete line (ending in `\n`) for client `to`. A recipient
    /// that can no longer take output is the outbox's business: the chat
    /// state never needs to know.
    fn send(&mut self, to: ClientId, line: &[u8]);

    /// Told what the chat did, for the server's metrics; ignored by default.
    fn note(&mut self, _event: ChatEvent) {}
}

/// Something worth counting that only the chat state can see.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum ChatEvent {
    /// A chat or `:me` line went to a room, to this many members.
    RoomLine {
        /// Members it was sent to (the sender not included).
        recipients: usize,
    },
    /// A private message was delivered.
    PrivateMessage,
    /// A wrong password was given to `:auth`.
    AuthFailure,
}

/// What the connection should do after a command.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Outcome {
    /// Keep reading.
    Continue,
    /// Deliver what is queued for this client, then close (`:quit`, too many
    /// password attempts). The client has already left the chat.
    Close,
}

pub use crate::protocol::LOBBY;

/// Wrong passwords allowed before the connection is closed.
const MAX_PASSWORD_ATTEMPTS: u8 = 3;

/// One client as the chat sees it.
#[derive(Debug)]
enum Member {
    /// Connected to a server with a password, not yet authenticated.
    AwaitingPassword { failures: u8 },
    /// Welcomed: has a nick and is in exactly one room.
    Joined(Joined),
}

#[derive(Debug)]
struct Joined {
    nick: String,
    /// Key of the current room in [`Chat::rooms`].
    room: usize,
    /// Position of this client in that room's member list, so leaving is
    /// O(1) even in a room of thousands.
    slot: usize,
}

/// A room and its members, in no particular order.
#[derive(Debug)]
struct Room {
    /// The spelling of the join that created it, with its `#`.
    name: String,
    /// The name lower-cased: what its history belongs to.
    key: String,
    members: Vec<ClientId>,
}

/// All chat state of one server.
#[derive(Debug)]
pub struct Chat {
    /// When set, clients must `:auth` before they are welcomed.
    password: Option<String>,
    /// Indexed by [`ClientId`]; `None` for ids not in use.
    members: Vec<Option<Member>>,
    /// Lower-cased nick to client, for uniqueness and `:pm`.
    nicks: HashMap<String, ClientId>,
    rooms: Slab<Room>,
    /// Lower-cased room name (with `#`) to its key in `rooms`.
    room_keys: HashMap<String, usize>,
    lobby: usize,
    /// N of the next `guestN`; counts up over the server's lifetime.
    next_guest: u64,
    /// Scratch space for the line being built, reused so a fan-out formats
    /// its line once and allocates nothing.
    line: Vec<u8>,
    /// Every room's recent lines, for `:history`, and the lines accepted
    /// since the server last took them for the history file.
    history: Tails,
    /// `:history` commands waiting for their room's tail.
    history_waits: Vec<HistoryWait>,
    /// Nicks of clients that left the chat, until the server has logged
    /// their disconnect ([`Chat::departed_nick`]).
    departed: HashMap<ClientId, String>,
}

impl Chat {
    /// Empty chat state with only `#lobby`. `password` of `None` (or empty)
    /// lets everyone in at once.
    pub fn new(password: Option<String>) -> Self {
        let mut rooms = Slab::new();
        let lobby = rooms.insert(Room {
            name: LOBBY.to_string(),
            key: LOBBY.to_string(),
            members: Vec::new(),
        });
        Chat {
            password: password.filter(|p| !p.is_empty()),
            members: Vec::new(),
            nicks: HashMap::new(),
            rooms,
            room_keys: HashMap::from([(LOBBY.to_string(), lobby)]),
            lobby,
            next_guest: 1,
            line: Vec::with_capacity(512),
            history: Tails::in_memory(crate::chat::history::HistoryConfig::default().max_lines),
            history_waits: Vec::new(),
            departed: HashMap::new(),
        }
    }

    /// Uses `history` (loaded from the history file, say) for `:history`.
    pub fn with_history(mut self, history: Tails) -> Self {
        self.history = history;
        self
    }

    /// The rooms' recent lines, and the accepted lines waiting to be written.
    pub fn history_mut(&mut self) -> &mut Tails {
        &mut self.history
    }

    /// Accepted lines not yet taken for the history file.
    pub fn history_pending(&self) -> usize {
        self.history.pending_len()
    }

    /// Whether client `id` is connected to a password server and has not
    /// authenticated yet.
    pub fn awaiting_password(&self, id: ClientId) -> bool {
        matches!(
            self.members.get(id),
            Some(Some(Member::AwaitingPassword { .. }))
        )
    }

    /// The nick of client `id`, while it is in the chat.
    pub fn nick(&self, id: ClientId) -> Option<&str> {
        match self.members.get(id) {
            Some(Some(Member::Joined(joined))) => Some(&joined.nick),
            _ => None,
        }
    }

    /// The nick client `id` had, for its disconnect log line: the one it
    /// left the chat with, or its current one if it never left (shutdown).
    /// Forgets a departed nick once asked.
    pub fn departed_nick(&mut self, id: ClientId) -> Option<String> {
        self.departed
            .remove(&id)
            .or_else(|| self.nick(id).map(str::to_string))
    }

    /// A new connection: welcomes it into `#lobby`, or asks for the password.
    pub fn connect(&mut self, id: ClientId, out: &mut impl Outbox) {
        if self.members.len() <= id {
            self.members.resize_with(id + 1, || None);
        }
        if self.password.is_some() {
            self.members[id] = Some(Member::AwaitingPassword { failures: 0 });
            self.reply(id, out, format_args!("* password required"));
        } else {
            self.welcome(id, out);
        }
    }

    /// A connection ended without `:quit`: announces the leave, with
    /// `reason` (e.g. `too slow`) when given. Does nothing for a client that
    /// already left.
    pub fn disconnect(&mut self, id: ClientId, reason: Option<&str>, out: &mut impl Outbox) {
        if let Some(Member::Joined(joined)) = self.members.get_mut(id).and_then(Option::take) {
            self.nicks.remove(&joined.nick.to_ascii_lowercase());
            self.leave_room(id, &joined, reason, out);
            self.departed.insert(id, joined.nick);
        }
    }

    /// Rooms that exist, `#lobby` included.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Runs one complete, valid UTF-8, non-empty line from client `id`.
    pub fn handle_line(&mut self, id: ClientId, line: &str, out: &mut impl Outbox) -> Outcome {
        let command = protocol::parse(line);
        let joined = match self.members.get(id) {
            Some(Some(Member::Joined(_))) => true,
            Some(Some(Member::AwaitingPassword { .. })) => false,
            _ => return Outcome::Continue,
        };
        if !joined {
            return self.handle_unauthenticated(id, command, out);
        }
        match command {
            Command::Chat(text) | Command::Me(text) => {
                let Some(Some(Member::Joined(me))) = self.members.get(id) else {
                    return Outcome::Continue;
                };
                let text = protocol::sanitize(text);
                if matches!(command, Command::Chat(_)) {
                    write_line(&mut self.line, format_args!("{}: {text}", me.nick));
                } else {
                    write_line(&mut self.line, format_args!("* {} {text}", me.nick));
                }
                let room = &self.rooms[me.room];
                let recipients = send_to_room(room, &self.line, Some(id), out);
                out.note(ChatEvent::RoomLine { recipients });
                // The line is in :history from the moment it is accepted.
                let delivered = &self.line[..self.line.len() - 1];
                let delivered = std::str::from_utf8(delivered).unwrap_or_default();
                self.history
                    .record(&room.key, &me.nick, delivered, unix_now());
            }
            Command::History(arg) => self.history(id, arg, out),
            Command::Help => {
                for row in protocol::help_lines(self.password.is_some()) {
                    self.reply(id, out, format_args!("{row}"));
                }
            }
            Command::Nick(name) => self.change_nick(id, name, out),
            Command::PrivateMessage { to, text } => self.private_message(id, to, text, out),
            Command::Users => self.list_users(id, out),
            Command::Join(name) => self.join(id, name, out),
            Command::Rooms => self.list_rooms(id, out),
            Command::Ping(token) => self.pong(id, token, out),
            Command::Quit(reason) => return self.quit(id, reason, out),
            Command::Usage(usage) if usage.starts_with(":auth") => {
                self.unknown_command(id, line, out)
            }
            Command::Auth(_) => self.unknown_command(id, line, out),
            Command::Usage(usage) => self.reply(id, out, format_args!("! usage: {usage}")),
            Command::Unknown(word) => self.reply(
                id,
                out,
                format_args!("! unknown command {word} (try :help)"),
            ),
        }
        Outcome::Continue
    }

    /// Before the password: only `:auth`, `:ping` and `:quit`.
    fn handle_unauthenticated(
        &mut self,
        id: ClientId,
        command: Command<'_>,
        out: &mut impl Outbox,
    ) -> Outcome {
        match command {
            Command::Auth(attempt) => {
                let secret = self.password.as_deref().unwrap_or_default();
                if protocol::password_matches(attempt, secret) {
                    self.welcome(id, out);
                    return Outcome::Continue;
                }
                let Some(Some(Member::AwaitingPassword { failures })) = self.members.get_mut(id)
                else {
                    return Outcome::Continue;
                };
                *failures += 1;
                out.note(ChatEvent::AuthFailure);
                if *failures >= MAX_PASSWORD_ATTEMPTS {
                    self.members[id] = None;
                    self.reply(id, out, format_args!("! too many attempts"));
                    return Outcome::Close;
                }
                self.reply(id, out, format_args!("! wrong password"));
            }
            Command::Usage(usage) if usage.starts_with(":auth") => {
                self.reply(id, out, format_args!("! usage: {usage}"))
            }
            Command::Ping(token) => self.pong(id, token, out),
            Command::Quit(_) => {
                self.members[id] = None;
                self.reply(id, out, format_args!("* bye"));
                return Outcome::Close;
            }
            _ => self.reply(
                id,
                out,
                format_args!("! authenticate first: :auth PASSWORD"),
            ),
        }
        Outcome::Continue
    }

    fn welcome(&mut self, id: ClientId, out: &mut impl Outbox) {
        let nick = loop {
            let candidate = format!("guest{}", self.next_guest);
            self.next_guest += 1;
            if !self.nicks.contains_key(&candidate) {
                break candidate;
            }
        };
        self.nicks.insert(nick.clone(), id);
        self.reply(id, out, format_args!("* welcome {nick}"));
        let lobby = self.lobby;
        let slot = self.rooms[lobby].members.len();
        self.rooms[lobby].members.push(id);
        self.members[id] = Some(Member::Joined(Joined {
            nick,
            room: lobby,
            slot,
        }));
        self.announce_join(id, out);
    }

    fn change_nick(&mut self, id: ClientId, name: &str, out: &mut impl Outbox) {
        if !protocol::is_valid_name(name) {
            return self.reply(id, out, format_args!("! invalid name {name}"));
        }
        if protocol::is_reserved_nick(name) {
            return self.reply(id, out, format_args!("! nick {name} is reserved"));
        }
        let key = name.to_ascii_lowercase();
        if self.nicks.get(&key).is_some_and(|&owner| owner != id) {
            return self.reply(id, out, format_args!("! nick {name} is taken"));
        }
        let Some(Some(Member::Joined(joined))) = self.members.get_mut(id) else {
            return;
        };
        if joined.nick == name {
            return self.reply(id, out, format_args!("* you are already known as {name}"));
        }
        let old = std::mem::replace(&mut joined.nick, name.to_string());
        let room = joined.room;
        self.nicks.remove(&old.to_ascii_lowercase());
        self.nicks.insert(key, id);
        write_line(
            &mut self.line,
            format_args!("* {old} is now known as {name}"),
        );
        send_to_room(&self.rooms[room], &self.line, None, out);
    }

    fn private_message(&mut self, id: ClientId, to: &str, text: &str, out: &mut impl Outbox) {
        let Some(&recipient) = self.nicks.get(&to.to_ascii_lowercase()) else {
            return self.reply(id, out, format_args!("! no such user {to}"));
        };
        let Some(Some(Member::Joined(me))) = self.members.get(id) else {
            return;
        };
        let text = protocol::sanitize(text);
        write_line(&mut self.line, format_args!("[pm] {}: {text}", me.nick));
        out.send(recipient, &self.line);
        out.note(ChatEvent::PrivateMessage);
    }

    fn list_users(&mut self, id: ClientId, out: &mut impl Outbox) {
        let room = &self.rooms[self.room_of(id)];
        let mut nicks: Vec<&str> = room
            .members
            .iter()
            .filter_map(|&member| match &self.members[member] {
                Some(Member::Joined(joined)) => Some(joined.nick.as_str()),
                _ => None,
            })
            .collect();
        nicks.sort_by_cached_key(|nick| nick.to_ascii_lowercase());
        let line = format!("* users in {}: {}", room.name, nicks.join(" "));
        self.reply(id, out, format_args!("{line}"));
    }

    fn list_rooms(&mut self, id: ClientId, out: &mut impl Outbox) {
        let mut rooms: Vec<(&str, usize)> = self
            .rooms
            .iter()
            .map(|(_, room)| (room.name.as_str(), room.members.len()))
            .collect();
        rooms.sort_by_cached_key(|(name, _)| name.to_ascii_lowercase());
        let listed: Vec<String> = rooms
            .iter()
            .map(|(name, count)| format!("{name} ({count})"))
            .collect();
        let line = format!("* rooms: {}", listed.join(", "));
        self.reply(id, out, format_args!("{line}"));
    }

    fn join(&mut self, id: ClientId, typed: &str, out: &mut impl Outbox) {
        let bare = typed.strip_prefix('#').unwrap_or(typed);
        if !protocol::is_valid_name(bare) {
            return self.reply(id, out, format_args!("! invalid name {typed}"));
        }
        let key = format!("#{}", bare.to_ascii_lowercase());
        let target = self.room_keys.get(&key).copied();
        let Some(Some(Member::Joined(joined))) = self.members.get(id) else {
            return;
        };
        if target == Some(joined.room) {
            return self.reply(id, out, format_args!("! already in #{bare}"));
        }
        let Some(Some(Member::Joined(mut joined))) = self.members.get_mut(id).map(Option::take)
        else {
            return;
        };
        self.leave_room(id, &joined, None, out);
        let room = target.unwrap_or_else(|| {
            self.history.room_created(&key);
            let room = self.rooms.insert(Room {
                name: format!("#{bare}"),
                key: key.clone(),
                members: Vec::new(),
            });
            self.room_keys.insert(key, room);
            room
        });
        joined.room = room;
        joined.slot = self.rooms[room].members.len();
        self.rooms[room].members.push(id);
        self.members[id] = Some(Member::Joined(joined));
        self.announce_join(id, out);
    }

    /// `:history [N]`: the header, then the room's newest N lines from
    /// memory, oldest first; a last `! history incomplete: ...` line when
    /// some of the room's lines could not be written to the history file.
    fn history(&mut self, id: ClientId, arg: Option<&str>, out: &mut impl Outbox) {
        let Some(n) = protocol::history_count(arg, self.history.keep()) else {
            return self.reply(
                id,
                out,
                format_args!("! usage: {}", protocol::HISTORY_USAGE),
            );
        };
        let room = &self.rooms[self.room_of(id)];
        if self.history.is_loading(&room.key) {
            // Its older lines are on their way from the history file.
            self.history_waits.push(HistoryWait {
                id,
                room_key: room.key.clone(),
                room_name: room.name.clone(),
                n,
            });
            return;
        }
        for line in history_answer(&self.history, &room.key, &room.name, n) {
            out.send(id, line.as_bytes());
        }
    }

    /// `:history` answers waiting for a room's tail, taken once.
    pub fn history_waits(&self) -> usize {
        self.history_waits.len()
    }

    /// Forgets the `:history` commands a connection still waits for: it is
    /// gone, and its id may be given to the next one. (A client that left
    /// the chat by `:quit` still gets its answers before its `* bye`.)
    pub fn forget_history_waits(&mut self, id: ClientId) {
        self.history_waits.retain(|wait| wait.id != id);
    }

    /// Takes the `:history` commands whose rooms' tails have arrived, in
    /// the order they were asked; [`Chat::history_answer`] answers each.
    pub fn take_ready_history_waits(&mut self) -> Vec<HistoryWait> {
        let history = &self.history;
        let (ready, waiting) = std::mem::take(&mut self.history_waits)
            .into_iter()
            .partition(|wait| !history.is_loading(&wait.room_key));
        self.history_waits = waiting;
        ready
    }

    /// The whole answer to a `:history` that waited for its room's tail.
    pub fn history_answer(&self, wait: &HistoryWait) -> Vec<u8> {
        history_answer(&self.history, &wait.room_key, &wait.room_name, wait.n)
            .concat()
            .into_bytes()
    }

    fn pong(&mut self, id: ClientId, token: Option<&str>, out: &mut impl Outbox) {
        match token {
            Some(token) => self.reply(id, out, format_args!("* pong {token}")),
            None => self.reply(id, out, format_args!("* pong")),
        }
    }

    fn quit(&mut self, id: ClientId, reason: Option<&str>, out: &mut impl Outbox) -> Outcome {
        self.reply(id, out, format_args!("* bye"));
        let reason = reason.map(protocol::sanitize);
        self.disconnect(id, reason.as_deref(), out);
        Outcome::Close
    }

    fn unknown_command(&mut self, id: ClientId, line: &str, out: &mut impl Outbox) {
        let word = line.split(' ').next().unwrap_or(line);
        self.reply(
            id,
            out,
            format_args!("! unknown command {word} (try :help)"),
        );
    }

    /// Takes a member out of its room (the member is already out of
    /// `members`) and tells those left behind.
    fn leave_room(
        &mut self,
        id: ClientId,
        joined: &Joined,
        reason: Option<&str>,
        out: &mut impl Outbox,
    ) {
        let room = &mut self.rooms[joined.room];
        debug_assert_eq!(room.members.get(joined.slot), Some(&id));
        room.members.swap_remove(joined.slot);
        if let Some(&moved) = room.members.get(joined.slot) {
            if let Some(Some(Member::Joined(other))) = self.members.get_mut(moved) {
                other.slot = joined.slot;
            }
        }
        let room = &self.rooms[joined.room];
        match reason {
            Some(reason) => write_line(
                &mut self.line,
                format_args!("* {} left {} ({reason})", joined.nick, room.name),
            ),
            None => write_line(
                &mut self.line,
                format_args!("* {} left {}", joined.nick, room.name),
            ),
        }
        send_to_room(room, &self.line, None, out);
        if room.members.is_empty() && joined.room != self.lobby {
            let removed = self.rooms.remove(joined.room);
            self.room_keys.remove(&removed.key);
            self.history.room_removed(&removed.key);
        }
    }

    fn announce_join(&mut self, id: ClientId, out: &mut impl Outbox) {
        let Some(Some(Member::Joined(me))) = self.members.get(id) else {
            return;
        };
        let room = &self.rooms[me.room];
        write_line(
            &mut self.line,
            format_args!("* {} joined {}", me.nick, room.name),
        );
        send_to_room(room, &self.line, None, out);
    }

    /// Sends one line to client `id` alone.
    fn reply(&mut self, id: ClientId, out: &mut impl Outbox, text: std::fmt::Arguments<'_>) {
        write_line(&mut self.line, text);
        out.send(id, &self.line);
    }

    fn room_of(&self, id: ClientId) -> usize {
        match &self.members[id] {
            Some(Member::Joined(joined)) => joined.room,
            _ => self.lobby,
        }
    }
}

/// A `:history` waiting for its room's tail to be loaded.
#[derive(Debug)]
pub struct HistoryWait {
    /// Who asked.
    pub id: ClientId,
    room_key: String,
    /// The room's spelling when asked.
    room_name: String,
    n: usize,
}

/// The lines (each with its `\n`) answering `:history N` in a room: the
/// header, the newest `n` lines oldest first, and a last `! history
/// incomplete: ...` line when some of the room's lines are missing.
fn history_answer(history: &Tails, room_key: &str, room_name: &str, n: usize) -> Vec<String> {
    let lines = history.recent(room_key, n, unix_now());
    let plural = if lines.len() == 1 { "line" } else { "lines" };
    let mut answer = Vec::with_capacity(lines.len() + 2);
    answer.push(format!("* history {room_name}: {} {plural}\n", lines.len()));
    for entry in lines {
        answer.push(format!(
            "[history {}] {}\n",
            format_utc(entry.ts),
            entry.line
        ));
    }
    let unsaved = history.unsaved(room_key);
    let unsaved_lines = if unsaved == 1 { "line" } else { "lines" };
    if unsaved > 0 && history.persists() {
        answer.push(format!(
            "! history incomplete: {unsaved} {unsaved_lines} of {room_name} could not be saved \
             to disk and will be missing after a restart\n"
        ));
    } else if unsaved > 0 {
        answer.push(format!(
            "! history incomplete: {unsaved} {unsaved_lines} of {room_name} were dropped from \
             memory (history is kept in memory only)\n"
        ));
    }
    if history.unreadable(room_key) {
        answer.push(format!(
            "! history incomplete: older lines of {room_name} could not be read from disk\n"
        ));
    }
    answer
}

/// Sends one formatted line to every member of `room` but `except`: the
/// fan-out, formatted once and copied into each recipient's queue. Returns
/// how many it went to.
fn send_to_room(
    room: &Room,
    line: &[u8],
    except: Option<ClientId>,
    out: &mut impl Outbox,
) -> usize {
    let mut recipients = 0;
    for &member in &room.members {
        if Some(member) != except {
            out.send(member, line);
            recipients += 1;
        }
    }
    recipients
}

/// Formats one line, adding its `\n`, into a reused buffer.
fn write_line(line: &mut Vec<u8>, text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    line.clear();
    // Writing into a Vec cannot fail.
    let _ = line.write_fmt(text);
    line.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects every line sent, per recipient.
    #[derive(Default)]
    struct Recorded(Vec<(ClientId, String)>);

    impl Outbox for Recorded {
        fn send(&mut self, to: ClientId, line: &[u8]) {
            let text = std::str::from_utf8(line).expect("utf-8");
            let text = text.strip_suffix('\n').expect("lines end in \\n");
            assert!(!text.contains('\n'), "one line at a time");
            self.0.push((to, text.to_string()));
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
        let (mut chat, mut out) = chat_with(&[0, 1, 2]);
        chat.handle_line(2, ":join side", &mut out);
        out.0.clear();
        chat.handle_line(0, "hi \x1b[2J", &mut out);
        assert_eq!(out.take(1), ["guest1: hi \u{fffd}[2J"]);
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
        assert_eq!(out.take(1), ["* rooms: #lobby (0), #Rust (2)"]);
        chat.handle_line(0, ":join lobby", &mut out);
        chat.handle_line(1, ":quit", &mut out);
        out.0.clear();
        chat.handle_line(0, ":rooms", &mut out);
        assert_eq!(out.take(0), ["* rooms: #lobby (1)"]);
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
        assert_eq!(chat.handle_line(0, "hello", &mut out), Outcome::Continue);
        assert_eq!(chat.handle_line(0, ":auth no", &mut out), Outcome::Continue);
        assert_eq!(chat.handle_line(0, ":auth no", &mut out), Outcome::Continue);
        assert_eq!(chat.handle_line(0, ":auth no", &mut out), Outcome::Close);
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

    /// Every information line the server's own modules send starts with a
    /// reserved word or a nick (`{...}` in the format string): a new
    /// `* WORD` line must add WORD to [`RESERVED_NICKS`], or `:me` could
    /// forge it. Scans every server module that produces client lines (those that
    /// name the `Outbox`) and the event loop's (`src/server/`).
    #[test]
    fn every_information_word_is_reserved() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let server = src.join("server");
        let mut words = std::collections::BTreeSet::new();
        let mut dirs = vec![src];
        let mut files = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read a source folder") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        for path in files {
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            if !text.contains("Outbox") && !path.starts_with(&server) {
                continue;
            }
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (at, _) in code.match_indices("\"* ") {
                let word: String = code[at + 3..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect();
                if !word.is_empty() {
                    words.insert((word, path.file_name().unwrap().to_owned()));
                }
            }
        }
        assert!(
            words.len() >= 8,
            "the scan finds the server's lines: {words:?}"
        );
        for (word, file) in words {
            assert!(
                protocol::is_reserved_nick(&word),
                "* {word} in {file:?} is not reserved"
            );
        }
    }
}
