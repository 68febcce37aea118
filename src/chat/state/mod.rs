//! Chat state: who is connected under which nick, which rooms exist, and who
//! hears what. Plain data, no sockets, no wording: a command comes in typed
//! ([`Command`]), and what it causes goes out typed ([`ServerLine`]) to an
//! [`Outbox`], which the server backs with per-connection write buffers
//! (rendering each line once per encoding among its recipients) and the
//! unit tests back with a `Vec`. What the command did that the connection
//! must act on comes back as an [`Outcome`].
//!
//! The rooms themselves (memberships, the current room, operators, bans,
//! topics) are the room model's ([`crate::chat::rooms`]); this module owns
//! the nicks and words each of the model's results. Its files:
//!
//! - `mod.rs`: the [`Chat`], arrival, departure, nicks, private messages,
//!   the commands' dispatch;
//! - `outbox.rs`: the [`Outbox`] trait and [`Delivery`];
//! - `rooms_cmds.rs`: the room commands of protocol 1.2 (`:join`, `:part`,
//!   `:users`, `:rooms`, chat and `:me`, `:history`);
//! - `operators.rs`: topics and room operators (`:topic`, `:op`, `:deop`,
//!   `:kick`, `:ban`, `:unban`, `:bans`);
//! - `cluster.rs`: what the server's cluster step asks of the chat with
//!   `--cluster` (room lines numbered by Redis delivered here, guest
//!   number blocks, private messages from other servers, the other
//!   servers' joins and leaves); `cluster_rooms.rs`: topics and bans
//!   shared across servers;
//! - `tags.rs`: protocol 1.2's tags as the chat state sees them (`:tags`,
//!   the tags flag, labels read off client lines); the stamps, echoes and
//!   history tags are in the commands that send those lines;
//! - `accounts.rs`: the account commands (`:register`, `:login`, `:token`,
//!   `:resume`, `:logout`, `:passwd`, `:whois`), the nick rules of
//!   registered names, takeover, administrators;
//! - `sasl.rs`: SASL (IRC `AUTHENTICATE`): credentials checked by the
//!   hashing worker for a connection that may not be in the chat yet;
//! - `irc.rs`: what the IRC side asks of the chat: an arrival in no room
//!   under a registered nick, read-only views of channels and nicks;
//! - `e2e.rs`: end-to-end encryption's `:key`, `:keys` (the key directory,
//!   stored with the accounts) and `:e2e` (the opaque relay).

use crate::chat::history::tails::unix_now_ms;
use crate::chat::history::Tails;
use crate::chat::rooms::{
    CurrentChange, Departure, Left, Refusal, RoomId, Rooms, DEFAULT_ROOMS_PER_CLIENT,
};
use crate::protocol::tags::{ClientLine, Label};
use crate::protocol::{self, Command, Error, Event, HelpRow, Missing, Reply, ServerLine};
use std::collections::HashMap;

mod accounts;
mod cluster;
mod cluster_rooms;
mod e2e;
mod irc;
mod operators;
mod outbox;
mod rooms_cmds;
mod sasl;
mod tags;

pub use accounts::{AccountJob, JobDone, JobKind, RemoteWhois};
pub use cluster::Change;
pub use cluster_rooms::{RoomEvent, RoomState};
pub use irc::IrcChannel;
pub use outbox::{Delivery, Outbox};

/// Identifies one connected client; the server uses its connection's slab key.
pub type ClientId = usize;

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
    /// A login was tried: with a password (`:login`, `:passwd`) or a
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
    /// Welcomed: has a nick, and rooms in [`Chat::rooms`].
    Joined(Joined),
}

#[derive(Debug)]
struct Joined {
    nick: String,
    /// Tags on (protocol 1.2): its labels are read, and it gets the echo
    /// of its own chat, `:me` and `:pm`.
    tags: bool,
}

/// Records a room line in `history`, stamped now, as the line dialect
/// delivers it to the members whose current room it is (`plain`: no
/// prefix, no stamp), rendered into `scratch`. Returns its history id and
/// its time (Unix milliseconds): the line's `id` and `time` tags.
fn record_room_line(
    history: &mut Tails,
    scratch: &mut Vec<u8>,
    room_key: &str,
    from: &str,
    plain: &ServerLine<'_>,
) -> (i64, i64) {
    scratch.clear();
    crate::protocol::Dialect::Line.render(plain, scratch);
    let delivered = scratch.strip_suffix(b"\n").unwrap_or(scratch);
    let delivered = std::str::from_utf8(delivered).unwrap_or_default();
    let time_ms = unix_now_ms();
    (history.record(room_key, from, delivered, time_ms), time_ms)
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
    /// Every room and every welcomed client's memberships.
    rooms: Rooms,
    /// N of the next `guestN`; counts up over the server's lifetime.
    next_guest: u64,
    /// Scratch space for a chat line as the history file keeps it (the
    /// line dialect), reused so recording allocates only the stored copy.
    line: Vec<u8>,
    /// Scratch space for who hears a nick change, reused.
    sharing: Vec<ClientId>,
    /// Every room's recent lines, for `:history`, and the lines accepted
    /// since the server last took them for the history file.
    history: Tails,
    /// `:history` commands waiting for their room's tail.
    history_waits: Vec<HistoryWait>,
    /// Nicks of clients that left the chat, until the server has logged
    /// their disconnect ([`Chat::departed_nick`]).
    departed: HashMap<ClientId, String>,
    /// The label of the command being run (see [`Chat::apply_labelled`]),
    /// kept by a `:history` that waits.
    label: Option<Label>,
    /// Accounts, logins and the hashing jobs in flight (`accounts.rs`).
    accounts: accounts::AccountsSide,
    /// With `--cluster`: the other servers' members and this server's
    /// membership changes for them (`cluster.rs`); `None` alone.
    shared: Option<Box<cluster::Shared>>,
}

impl Chat {
    /// Empty chat state with only `#lobby`. `password` of `None` (or empty)
    /// lets everyone in at once.
    pub fn new(password: Option<String>) -> Self {
        Chat {
            password: password.filter(|p| !p.is_empty()),
            members: Vec::new(),
            nicks: HashMap::new(),
            rooms: Rooms::new(DEFAULT_ROOMS_PER_CLIENT),
            next_guest: 1,
            line: Vec::with_capacity(512),
            sharing: Vec::new(),
            history: Tails::in_memory(crate::chat::history::HistoryConfig::default().max_lines),
            history_waits: Vec::new(),
            departed: HashMap::new(),
            label: None,
            accounts: accounts::AccountsSide::new(crate::accounts::Accounts::new(
                crate::accounts::AccountsConfig::default(),
            )),
            shared: None,
        }
    }

    /// Lets each client be in at most `max` rooms (the operator's
    /// `--max-rooms-per-client`). Call before anyone connects.
    pub fn with_max_rooms_per_client(mut self, max: usize) -> Self {
        self.rooms = Rooms::new(max);
        self
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
            self.share(|| Change::Quit {
                nick: joined.nick.clone(),
                reason: reason.map(str::to_owned),
            });
            for left in self.rooms.depart(id) {
                let line = Event::Left {
                    nick: &joined.nick,
                    room: left.room_name(&self.rooms),
                    reason,
                    quit: true,
                }
                .into();
                self.fan_out_room(left.room, None, &line, out);
                self.forget_if_removed(&left);
            }
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
            Command::Users(name) => self.list_users(id, name, out),
            Command::Join(name) => self.join(id, name, out),
            Command::Part { room, reason } => self.part(id, room, reason, out),
            Command::Topic(text) => self.topic(id, text, out),
            Command::Op(nick) => self.set_operator(id, nick, true, out),
            Command::Deop(nick) => self.set_operator(id, nick, false, out),
            Command::Kick { nick, reason } => self.kick(id, nick, reason, out),
            Command::Ban(nick) => self.ban(id, nick, out),
            Command::Unban(nick) => self.unban(id, nick, out),
            Command::Bans => self.bans(id, out),
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
            Command::Key(key) => self.publish_key(id, key, out),
            Command::Keys(name) => self.list_keys(id, name, out),
            Command::E2e { to, payload } => self.relay_e2e(id, to, payload, out),
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
        let lobby = self.rooms.arrive(id);
        let line = Event::Joined {
            nick: &nick,
            room: protocol::LOBBY,
        }
        .into();
        self.fan_out_room(lobby, Some(id), &line, out);
        self.share(|| Change::Joined {
            nick: nick.clone(),
            room: protocol::LOBBY.to_owned(),
        });
        self.members[id] = Some(Member::Joined(Joined { nick, tags: false }));
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

    /// Gives client `id` the nick `name` (free, valid) and tells it and
    /// everyone sharing a room with it, `id`'s copy as an answer.
    fn rename(&mut self, id: ClientId, name: &str, out: &mut impl Outbox) {
        let key = name.to_ascii_lowercase();
        let Some(Some(Member::Joined(joined))) = self.members.get_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut joined.nick, name.to_string());
        self.nicks.remove(&old.to_ascii_lowercase());
        self.nicks.insert(key, id);
        self.share(|| Change::Renamed {
            old: old.clone(),
            new: name.to_owned(),
        });
        let line = Event::Renamed {
            old: &old,
            new: name,
        }
        .into();
        // The renamer and everyone sharing a room with it, once each, no
        // prefix: a rename is not a room line.
        self.rooms.sharing(id, &mut self.sharing);
        out.fan_out(&self.sharing, &[], None, Some(id), &line);
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
        history_answer(
            &self.history,
            &wait.room_key,
            &wait.room_name,
            wait.n,
            Some(wait.mark),
            each,
        );
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

    /// Sends a room line to every member of `room` (no prefix for those
    /// whose current room it is, `[ROOM] ` for the others); `asker`'s copy
    /// is an answer. Nothing when the room is gone. Returns how many it
    /// went to.
    fn fan_out_room(
        &self,
        room: RoomId,
        asker: Option<ClientId>,
        line: &ServerLine<'_>,
        out: &mut impl Outbox,
    ) -> usize {
        let Some(room) = self.rooms.get(room) else {
            return 0;
        };
        out.fan_out(
            room.current_members(),
            room.other_members(),
            None,
            asker,
            line,
        )
    }

    /// Tells the history store about a room that disappeared.
    fn forget_if_removed(&mut self, left: &Left) {
        if let Some(room) = &left.removed {
            self.history.room_removed(room.key());
            if let Some(shared) = &mut self.shared {
                shared.unmade.push(room.key().to_owned());
            }
        }
    }

    /// A client left a room by `:part`, `:kick` or a ban: `line` (its left
    /// or kicked line) to the room's remaining members and to the client
    /// (prefixed when the room was not its current one; an answer when it
    /// is `asker`), then its new current room, if that changed.
    fn announce_departure(
        &mut self,
        departure: &Departure,
        asker: ClientId,
        line: &ServerLine<'_>,
        out: &mut impl Outbox,
    ) {
        let client = departure.client;
        self.fan_out_room(departure.left.room, Some(asker), line, out);
        let how = Delivery {
            answer: client == asker,
            prefixed: !departure.was_current,
        };
        out.send(client, line, how);
        let current = match departure.current {
            CurrentChange::Unchanged => None,
            CurrentChange::Now(room) => self
                .rooms
                .get(room)
                .map(|room| Reply::CurrentRoom { room: room.name() }.into()),
            CurrentChange::NoRoom => Some(Reply::NoRoomLeft.into()),
        };
        if let Some(current) = current {
            out.send(
                client,
                &current,
                Delivery {
                    answer: client == asker,
                    prefixed: false,
                },
            );
        }
        self.forget_if_removed(&departure.left);
    }

    /// The nick of a client in the chat; empty for anyone else.
    fn nick_of(&self, id: ClientId) -> &str {
        match self.members.get(id) {
            Some(Some(Member::Joined(joined))) => &joined.nick,
            _ => "",
        }
    }

    /// The client with nick `nick` (any letter case), if any.
    fn client_named(&self, nick: &str) -> Option<ClientId> {
        self.nicks.get(&nick.to_ascii_lowercase()).copied()
    }

    /// A refusal of the room model as the error line it is. `typed` is the
    /// name the command gave (a room for `:join`, `:part`, `:users`; a
    /// nick for the operators' commands), shown as typed.
    fn refusal<'a>(&'a self, refusal: Refusal, typed: &'a str) -> ServerLine<'a> {
        let bare = typed.strip_prefix('#').unwrap_or(typed);
        let name = |room: RoomId| self.rooms.get(room).map_or("", |r| r.name());
        let nick = typed;
        match refusal {
            Refusal::NoCurrentRoom => Error::NotInAnyRoom,
            Refusal::NotMember => Error::NotIn(bare),
            Refusal::NoSuchRoom => Error::NoSuchRoom(bare),
            Refusal::InvalidName => Error::InvalidName(typed),
            Refusal::NotOperator(room) => Error::NotOperator { room: name(room) },
            Refusal::NoSuchUser => Error::NoSuchUser(nick),
            Refusal::NotInRoom(room) => Error::UserNotInRoom {
                nick,
                room: name(room),
            },
            Refusal::TopicTooLong { max } => Error::TopicTooLong { max },
            Refusal::AlreadyOperator(room) => Error::AlreadyOperator {
                nick,
                room: name(room),
            },
            Refusal::TargetNotOperator(room) => Error::TargetNotOperator {
                nick,
                room: name(room),
            },
            Refusal::AlreadyBanned(room) => Error::AlreadyBanned {
                nick,
                room: name(room),
            },
            Refusal::NotBanned(room) => Error::NotBanned {
                nick,
                room: name(room),
            },
        }
        .into()
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
    /// Where it stands among the lines recorded while the tail loads: those
    /// after it went to the asker live ([`Tails::wait_mark`]).
    mark: usize,
}

/// The lines answering `:history N` in a room, each handed to `each`: the
/// header, the newest `n` lines oldest first (as of `mark`, for one that
/// waited), and a last `! history
/// incomplete: ...` line when some of the room's lines are missing.
fn history_answer(
    history: &Tails,
    room_key: &str,
    room: &str,
    n: usize,
    mark: Option<usize>,
    mut each: impl FnMut(&ServerLine<'_>),
) {
    let lines = history.recent_as_of(room_key, n, unix_now_ms(), mark);
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
mod tests;
