//! Chat state: who is connected under which nick, which rooms exist, and who
//! hears what. Plain data, no sockets, no wording: a command comes in typed
//! ([`Command`]), and what it causes goes out typed ([`ServerLine`]) to an
//! [`Outbox`], which the server backs with per-connection write buffers
//! (rendering each line in its recipient's dialect) and the unit tests back
//! with a `Vec`. What the command did that the connection must act on comes
//! back as an [`Outcome`].

use crate::chat::history::tails::unix_now_ms;
use crate::chat::history::Tails;
use crate::protocol::tags::{self, ClientLine, Label, TagError};
use crate::protocol::{
    self, Command, Dialect, Error, Event, HelpRow, Missing, Reply, ServerLine, Stamp,
};
use slab::Slab;
use std::collections::HashMap;

#[path = "state_accounts.rs"]
mod accounts;
pub use accounts::{AccountJob, JobDone, JobKind};

/// Identifies one connected client; the server uses its connection's slab key.
pub type ClientId = usize;

/// Where the chat state puts the lines it produces. A recipient that can no
/// longer take output is the outbox's business: the chat state never needs
/// to know.
///
/// An implementation provides [`Outbox::queue`] (and [`Outbox::new_line`]
/// when it caches renderings); the chat state calls the three provided
/// methods, which say who a line is for and whether it is an answer.
pub trait Outbox {
    /// Queues the current line (see [`Outbox::new_line`]) for client `to`.
    /// `answer`: it answers `to`'s own command (or arrival), so the server
    /// holds it back while `to` waits for earlier work (its chat lines'
    /// history commit).
    fn queue(&mut self, to: ClientId, line: &ServerLine<'_>, answer: bool);

    /// A new line begins: the same line is queued for each of its
    /// recipients before the next begins, so it is rendered once per
    /// dialect among them, never once per recipient. Nothing by default.
    fn new_line(&mut self) {}

    /// Told what the chat did, for the server's metrics; ignored by default.
    fn note(&mut self, _event: ChatEvent) {}

    /// Client `to` turned tags on or off (protocol 1.2): from now on its
    /// lines are written tagged, or not. Called before the answer is
    /// queued, so `* tags on` is tagged and `* tags off` is not, as the
    /// protocol says. Ignored by default.
    fn set_tags(&mut self, _to: ClientId, _on: bool) {}

    /// The command being run carried `label` (a client with tags on sent
    /// `@label=L …`): every answer queued until the next call (`None`)
    /// carries it. Ignored by default.
    fn answering(&mut self, _label: Option<Label>) {}

    /// Queues `line` for client `to` as the answer to its own command (or
    /// its arrival).
    fn reply(&mut self, to: ClientId, line: &ServerLine<'_>) {
        self.new_line();
        self.queue(to, line, true);
    }

    /// Queues `line` for client `to`, who did not ask for it (a private
    /// message).
    fn deliver(&mut self, to: ClientId, line: &ServerLine<'_>) {
        self.new_line();
        self.queue(to, line, false);
    }

    /// Queues `line` for every client in `members` but `except`: a
    /// fan-out, one line for all. `asker`, when among them, gets its copy
    /// as an answer (as by [`Outbox::reply`]). Returns how many it went to.
    fn fan_out(
        &mut self,
        members: &[ClientId],
        except: Option<ClientId>,
        asker: Option<ClientId>,
        line: &ServerLine<'_>,
    ) -> usize {
        self.new_line();
        let mut recipients = 0;
        for &member in members {
            if Some(member) != except {
                self.queue(member, line, Some(member) == asker);
                recipients += 1;
            }
        }
        recipients
    }
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
    /// A login was tried: with a password (`:login`, `:register`) or a
    /// token (`:resume`), and whether it worked.
    Login {
        /// By `:resume TOKEN`.
        token: bool,
        /// It logged the client in.
        ok: bool,
    },
    /// An account was registered (and stored).
    Registered,
    /// A token was issued.
    TokenIssued,
}

/// What one command did that the connection must act on: whether it ends
/// the connection, what it recorded and what its answer waits for. The
/// loop reads this instead of comparing the chat's counters before and
/// after a call.
#[derive(Debug, PartialEq, Eq, Clone, Copy, Default)]
pub struct Outcome {
    /// Deliver what is queued for this client, then close (`:quit`, too
    /// many password attempts). The client has already left the chat.
    pub close: bool,
    /// Chat lines the command accepted for history: the client's later
    /// answers wait until the batch holding them is committed.
    pub recorded: usize,
    /// Work finished elsewhere that the command's answer waits for.
    pub waits_for: Option<Awaited>,
    /// An `:auth` was tried, and how it went: the server counts wrong
    /// passwords per address.
    pub auth: Option<AuthResult>,
    /// `:tags on` or `:tags off` was run: the client's tags are now this
    /// (the outbox was told as it happened, [`Outbox::set_tags`]).
    pub tags: Option<bool>,
}

impl Outcome {
    /// Nothing for the connection to do: keep reading.
    pub const CONTINUE: Outcome = Outcome {
        close: false,
        recorded: 0,
        waits_for: None,
        auth: None,
        tags: None,
    };

    /// Close once what is queued is delivered.
    pub const CLOSE: Outcome = Outcome {
        close: true,
        ..Outcome::CONTINUE
    };
}

/// Work finished outside the chat state that an answer waits for. Today the
/// history writer's; protocol 1.2 adds password hashing and the cluster.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Awaited {
    /// `:history` in a room whose tail is being read from the history
    /// file: its answer (and everything after it for this client) waits
    /// for [`Chat::take_ready_history_waits`].
    HistoryTail,
    /// `:register`, `:login` or `:passwd` waits for the hashing worker:
    /// the client's input waits until [`Chat::account_job_done`] (or
    /// [`Chat::account_job_refused`]).
    Password,
}

/// How an `:auth` went.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum AuthResult {
    /// The password was right: the client is welcomed.
    Accepted,
    /// The password was wrong.
    Refused,
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
    /// Tags on (protocol 1.2): its lines come tagged, its labels are
    /// read, and it gets the echo of its own chat, `:me` and `:pm`.
    tags: bool,
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
    /// Scratch space for a chat line as the history file keeps it (the
    /// line dialect), reused so recording allocates only the stored copy.
    line: Vec<u8>,
    /// Every room's recent lines, for `:history`, and the lines accepted
    /// since the server last took them for the history file.
    history: Tails,
    /// `:history` commands waiting for their room's tail.
    history_waits: Vec<HistoryWait>,
    /// Nicks of clients that left the chat, until the server has logged
    /// their disconnect ([`Chat::departed_nick`]).
    departed: HashMap<ClientId, String>,
    /// Accounts, logins and the hashing jobs in flight (`state_accounts.rs`).
    accounts: accounts::AccountsSide,
    /// The label of the command being run (see [`Chat::apply_labelled`]),
    /// kept by a `:history` that waits.
    label: Option<Label>,
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
            accounts: accounts::AccountsSide::new(crate::accounts::Accounts::new(
                crate::accounts::AccountsConfig::default(),
            )),
            label: None,
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
            out.reply(id, &Reply::PasswordRequired.into());
        } else {
            self.welcome(id, out);
        }
    }

    /// A connection ended without `:quit`: announces the leave, with
    /// `reason` (e.g. `too slow`) when given. Does nothing for a client that
    /// already left.
    pub fn disconnect(&mut self, id: ClientId, reason: Option<&str>, out: &mut impl Outbox) {
        self.accounts_forget(id);
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

    /// Runs one complete, valid UTF-8, non-empty line from client `id`:
    /// takes its tag prefix off (tags on), parses it and applies the
    /// command, as the server does.
    pub fn handle_line(&mut self, id: ClientId, line: &str, out: &mut impl Outbox) -> Outcome {
        match self.client_line(id, line) {
            Ok(ClientLine { label, line }) => {
                self.apply_labelled(id, line, protocol::parse(line), label, out)
            }
            Err(_) => {
                out.reply(id, &Error::BadTags.into());
                Outcome::CONTINUE
            }
        }
    }

    /// Whether client `id` has tags on.
    pub fn tags_on(&self, id: ClientId) -> bool {
        matches!(self.members.get(id), Some(Some(Member::Joined(joined))) if joined.tags)
    }

    /// A line from client `id` with its tag prefix taken off, when it has
    /// tags on (with tags off a line starting with `@` is chat). An error
    /// is answered `! bad tags`, without a label: the prefix is not
    /// trusted.
    pub fn client_line<'a>(&self, id: ClientId, line: &'a str) -> Result<ClientLine<'a>, TagError> {
        if line.starts_with('@') && self.tags_on(id) {
            tags::parse_client_line(line)
        } else {
            Ok(ClientLine { label: None, line })
        }
    }

    /// [`Chat::apply`] for a line that carried `label`: every answer to it
    /// carries the label ([`Outbox::answering`]), a waiting `:history`'s
    /// included.
    pub fn apply_labelled(
        &mut self,
        id: ClientId,
        line: &str,
        command: Command<'_>,
        label: Option<Label>,
        out: &mut impl Outbox,
    ) -> Outcome {
        if label.is_none() {
            return self.apply(id, line, command, out);
        }
        self.label = label;
        out.answering(label);
        let outcome = self.apply(id, line, command, out);
        out.answering(None);
        self.label = None;
        outcome
    }

    /// Applies `command`, parsed from `line` (whose first word names a
    /// command refused as unknown), for client `id`.
    pub fn apply(
        &mut self,
        id: ClientId,
        line: &str,
        command: Command<'_>,
        out: &mut impl Outbox,
    ) -> Outcome {
        match self.members.get(id) {
            Some(Some(Member::Joined(_))) => {}
            Some(Some(Member::AwaitingPassword { .. })) => {
                return self.apply_unauthenticated(id, command, out)
            }
            _ => return Outcome::CONTINUE,
        }
        match command {
            Command::Chat(text) => return self.say(id, text, false, out),
            Command::Me(text) => return self.say(id, text, true, out),
            Command::History(arg) => return self.history(id, arg, out),
            Command::Tags(on) => return self.set_tags(id, on, out),
            Command::Help => {
                for row in HelpRow::rows(self.password.is_some()) {
                    out.reply(id, &Reply::Help(row).into());
                }
            }
            Command::Nick(name) => self.change_nick(id, name, out),
            Command::PrivateMessage { to, text } => self.private_message(id, to, text, out),
            Command::Users => self.list_users(id, out),
            Command::Join(name) => self.join(id, name, out),
            Command::Rooms => self.list_rooms(id, out),
            Command::Ping(token) => out.reply(id, &Reply::Pong { token }.into()),
            Command::Quit(reason) => return self.quit(id, reason, out),
            Command::Usage(usage) if usage.starts_with(":auth") => {
                self.unknown_command(id, line, out)
            }
            Command::Auth(_) => self.unknown_command(id, line, out),
            Command::Register(_)
            | Command::Login { .. }
            | Command::Token
            | Command::Resume(_)
            | Command::Logout
            | Command::Passwd { .. }
            | Command::Whois(_) => return self.account_command(id, command, out),
            Command::Usage(usage) => out.reply(id, &Error::Usage(usage).into()),
            Command::Unknown(word) => out.reply(id, &Error::UnknownCommand(word).into()),
        }
        Outcome::CONTINUE
    }

    /// Before the password: only `:auth`, `:ping` and `:quit`.
    fn apply_unauthenticated(
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
                    return Outcome {
                        auth: Some(AuthResult::Accepted),
                        ..Outcome::CONTINUE
                    };
                }
                let Some(Some(Member::AwaitingPassword { failures })) = self.members.get_mut(id)
                else {
                    return Outcome::CONTINUE;
                };
                *failures += 1;
                out.note(ChatEvent::AuthFailure);
                let refused = Outcome {
                    auth: Some(AuthResult::Refused),
                    ..Outcome::CONTINUE
                };
                if *failures >= MAX_PASSWORD_ATTEMPTS {
                    self.members[id] = None;
                    out.reply(id, &Error::TooManyAttempts.into());
                    return Outcome {
                        close: true,
                        ..refused
                    };
                }
                out.reply(id, &Error::WrongPassword.into());
                return refused;
            }
            Command::Usage(usage) if usage.starts_with(":auth") => {
                out.reply(id, &Error::Usage(usage).into())
            }
            Command::Ping(token) => out.reply(id, &Reply::Pong { token }.into()),
            Command::Quit(_) => {
                self.members[id] = None;
                out.reply(id, &Reply::Bye.into());
                return Outcome::CLOSE;
            }
            _ => out.reply(id, &Error::AuthenticateFirst.into()),
        }
        Outcome::CONTINUE
    }

    /// A chat line (or a `:me` action, `action`) to the sender's room: the
    /// hot path. It goes into `:history` first, from the moment it is
    /// accepted, which gives it its id and time (its `id` and `time`
    /// tags); then one typed line, one fan-out. With tags on the sender
    /// gets it too (its echo, as an answer, so with its label).
    fn say(&mut self, id: ClientId, text: &str, action: bool, out: &mut impl Outbox) -> Outcome {
        let Some(Some(Member::Joined(me))) = self.members.get(id) else {
            return Outcome::CONTINUE;
        };
        let text = protocol::sanitize(text);
        let room = &self.rooms[me.room];
        let (from, in_room) = (me.nick.as_str(), Some(room.name.as_str()));
        let said = |stamp| -> ServerLine<'_> {
            if action {
                Event::Acted {
                    from,
                    room: in_room,
                    text: &text,
                    stamp,
                }
            } else {
                Event::Said {
                    from,
                    room: in_room,
                    text: &text,
                    stamp,
                }
            }
            .into()
        };
        // The history file keeps the line as the line dialect delivered it.
        self.line.clear();
        Dialect::Line.render(&said(None), &mut self.line);
        let delivered = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        let delivered = std::str::from_utf8(delivered).unwrap_or_default();
        let time_ms = unix_now_ms();
        let line_id = self.history.record(&room.key, &me.nick, delivered, time_ms);
        let stamp = Stamp {
            id: u64::try_from(line_id).unwrap_or_default(),
            time_ms,
        };
        let line = said(Some(stamp));
        let recipients = if me.tags {
            out.fan_out(&room.members, None, Some(id), &line) - 1
        } else {
            out.fan_out(&room.members, Some(id), None, &line)
        };
        out.note(ChatEvent::RoomLine { recipients });
        Outcome {
            recorded: 1,
            ..Outcome::CONTINUE
        }
    }

    /// `:tags on|off`: `* tags on` is itself tagged, `* tags off` is not.
    fn set_tags(&mut self, id: ClientId, on: bool, out: &mut impl Outbox) -> Outcome {
        let Some(Some(Member::Joined(me))) = self.members.get_mut(id) else {
            return Outcome::CONTINUE;
        };
        me.tags = on;
        out.set_tags(id, on);
        let answer = if on { Reply::TagsOn } else { Reply::TagsOff };
        out.reply(id, &answer.into());
        Outcome {
            tags: Some(on),
            ..Outcome::CONTINUE
        }
    }

    /// The next free `guestN`.
    fn new_guest_nick(&mut self) -> String {
        loop {
            let candidate = format!("guest{}", self.next_guest);
            self.next_guest += 1;
            if !self.nicks.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    fn welcome(&mut self, id: ClientId, out: &mut impl Outbox) {
        let nick = self.new_guest_nick();
        self.nicks.insert(nick.clone(), id);
        out.reply(id, &Reply::Welcome { nick: &nick }.into());
        let lobby = self.lobby;
        let slot = self.rooms[lobby].members.len();
        self.rooms[lobby].members.push(id);
        self.members[id] = Some(Member::Joined(Joined {
            nick,
            tags: false,
            room: lobby,
            slot,
        }));
        self.announce_join(id, out);
    }

    fn change_nick(&mut self, id: ClientId, name: &str, out: &mut impl Outbox) {
        if !protocol::is_valid_name(name) {
            return out.reply(id, &Error::InvalidName(name).into());
        }
        if protocol::is_reserved_nick(name) {
            return out.reply(id, &Error::NickReserved(name).into());
        }
        if self.refuse_nick(id, name, out) {
            return;
        }
        let key = name.to_ascii_lowercase();
        if self.nicks.get(&key).is_some_and(|&owner| owner != id) {
            return out.reply(id, &Error::NickTaken(name).into());
        }
        if self.nick(id) == Some(name) {
            return out.reply(id, &Reply::AlreadyKnownAs { nick: name }.into());
        }
        self.rename(id, name, out);
    }

    /// Gives client `id` the nick `name` (free, valid) and tells its room,
    /// `id`'s copy as an answer.
    fn rename(&mut self, id: ClientId, name: &str, out: &mut impl Outbox) {
        let key = name.to_ascii_lowercase();
        let Some(Some(Member::Joined(joined))) = self.members.get_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut joined.nick, name.to_string());
        let room = joined.room;
        self.nicks.remove(&old.to_ascii_lowercase());
        self.nicks.insert(key, id);
        let line = Event::Renamed {
            old: &old,
            new: name,
        }
        .into();
        out.fan_out(&self.rooms[room].members, None, Some(id), &line);
    }

    fn private_message(&mut self, id: ClientId, to: &str, text: &str, out: &mut impl Outbox) {
        let Some(&recipient) = self.nicks.get(&to.to_ascii_lowercase()) else {
            return out.reply(id, &Error::NoSuchUser(to).into());
        };
        let Some(Some(Member::Joined(me))) = self.members.get(id) else {
            return;
        };
        let text = protocol::sanitize(text);
        let line = Event::PrivateMessage {
            from: &me.nick,
            text: &text,
            to: None,
        };
        // With tags on, the sender's echo names the recipient (`to`); a
        // message to yourself is that echo, the answer to your command.
        let to_nick = match (me.tags, self.members.get(recipient)) {
            (true, Some(Some(Member::Joined(them)))) => Some(them.nick.as_str()),
            _ => None,
        };
        let echo = Event::PrivateMessage {
            from: &me.nick,
            text: &text,
            to: to_nick,
        };
        if recipient == id {
            out.reply(recipient, &echo.into());
        } else {
            out.deliver(recipient, &line.into());
            if me.tags {
                out.reply(id, &echo.into());
            }
        }
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
        let room = &room.name;
        out.reply(id, &Reply::Users { room, nicks }.into());
    }

    fn list_rooms(&mut self, id: ClientId, out: &mut impl Outbox) {
        let mut rooms: Vec<(&str, usize)> = self
            .rooms
            .iter()
            .map(|(_, room)| (room.name.as_str(), room.members.len()))
            .collect();
        rooms.sort_by_cached_key(|(name, _)| name.to_ascii_lowercase());
        out.reply(id, &Reply::Rooms { rooms }.into());
    }

    fn join(&mut self, id: ClientId, typed: &str, out: &mut impl Outbox) {
        let bare = typed.strip_prefix('#').unwrap_or(typed);
        if !protocol::is_valid_name(bare) {
            return out.reply(id, &Error::InvalidName(typed).into());
        }
        let key = format!("#{}", bare.to_ascii_lowercase());
        let target = self.room_keys.get(&key).copied();
        let Some(Some(Member::Joined(joined))) = self.members.get(id) else {
            return;
        };
        if target == Some(joined.room) {
            return out.reply(id, &Error::AlreadyIn(bare).into());
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
    fn history(&mut self, id: ClientId, arg: Option<&str>, out: &mut impl Outbox) -> Outcome {
        let Some(n) = protocol::history_count(arg, self.history.keep()) else {
            out.reply(id, &Error::Usage(protocol::HISTORY_USAGE).into());
            return Outcome::CONTINUE;
        };
        let room = &self.rooms[self.room_of(id)];
        if self.history.is_loading(&room.key) {
            // Its older lines are on their way from the history file.
            self.history_waits.push(HistoryWait {
                id,
                room_key: room.key.clone(),
                room_name: room.name.clone(),
                n,
                label: self.label,
            });
            return Outcome {
                waits_for: Some(Awaited::HistoryTail),
                ..Outcome::CONTINUE
            };
        }
        history_answer(&self.history, &room.key, &room.name, n, |line| {
            out.reply(id, line)
        });
        Outcome::CONTINUE
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

    /// The whole answer to a `:history` that waited for its room's tail,
    /// line by line.
    pub fn history_answer(&self, wait: &HistoryWait, each: impl FnMut(&ServerLine<'_>)) {
        history_answer(&self.history, &wait.room_key, &wait.room_name, wait.n, each);
    }

    fn quit(&mut self, id: ClientId, reason: Option<&str>, out: &mut impl Outbox) -> Outcome {
        out.reply(id, &Reply::Bye.into());
        let reason = reason.map(protocol::sanitize);
        self.disconnect(id, reason.as_deref(), out);
        Outcome::CLOSE
    }

    fn unknown_command(&mut self, id: ClientId, line: &str, out: &mut impl Outbox) {
        let word = line.split(' ').next().unwrap_or(line);
        out.reply(id, &Error::UnknownCommand(word).into());
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
        let line = Event::Left {
            nick: &joined.nick,
            room: &room.name,
            reason,
        }
        .into();
        out.fan_out(&room.members, None, None, &line);
        if room.members.is_empty() && joined.room != self.lobby {
            let removed = self.rooms.remove(joined.room);
            self.room_keys.remove(&removed.key);
            self.history.room_removed(&removed.key);
        }
    }

    /// Tells everyone in client `id`'s room, `id` included (its copy an
    /// answer to its `:join` or `:auth`), that it joined.
    fn announce_join(&mut self, id: ClientId, out: &mut impl Outbox) {
        let Some(Some(Member::Joined(me))) = self.members.get(id) else {
            return;
        };
        let room = &self.rooms[me.room];
        let line = Event::Joined {
            nick: &me.nick,
            room: &room.name,
        }
        .into();
        out.fan_out(&room.members, None, Some(id), &line);
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
    /// The label of the `:history` line, for every line of its answer.
    pub label: Option<Label>,
}

/// The lines answering `:history N` in a room, each handed to `each`: the
/// header, the newest `n` lines oldest first, and a last `! history
/// incomplete: ...` line when some of the room's lines are missing.
fn history_answer(
    history: &Tails,
    room_key: &str,
    room: &str,
    n: usize,
    mut each: impl FnMut(&ServerLine<'_>),
) {
    let lines = history.recent(room_key, n, unix_now_ms());
    each(
        &Reply::HistoryHeader {
            room,
            count: lines.len(),
        }
        .into(),
    );
    for entry in lines {
        each(
            &Reply::HistoryLine {
                time_ms: entry.ts,
                line: &entry.line,
                room: Some(room),
                id: u64::try_from(entry.id).ok(),
            }
            .into(),
        );
    }
    let unsaved = usize::try_from(history.unsaved(room_key)).unwrap_or(usize::MAX);
    if unsaved > 0 {
        let missing = if history.persists() {
            Missing::Unsaved(unsaved)
        } else {
            Missing::Dropped(unsaved)
        };
        each(&Error::HistoryIncomplete { room, missing }.into());
    }
    if history.unreadable(room_key) {
        each(
            &Error::HistoryIncomplete {
                room,
                missing: Missing::Unreadable,
            }
            .into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects every line sent, per recipient, as the line dialect
    /// renders it; and, apart, which of them were answers.
    #[derive(Default)]
    struct Recorded(Vec<(ClientId, String)>, Vec<(ClientId, String)>);

    impl Outbox for Recorded {
        fn queue(&mut self, to: ClientId, line: &ServerLine<'_>, answer: bool) {
            let mut bytes = Vec::new();
            Dialect::Line.render(line, &mut bytes);
            let text = std::str::from_utf8(&bytes).expect("utf-8");
            let text = text.strip_suffix('\n').expect("lines end in \\n");
            assert!(!text.contains('\n'), "one line at a time");
            self.0.push((to, text.to_string()));
            if answer {
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
}
