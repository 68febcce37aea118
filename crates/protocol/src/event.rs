//! The server's vocabulary: every line it can send, as typed data (who,
//! what, which room, which answer to which command) with no wording in it.
//!
//! The chat state and the event loop build a [`ServerLine`]; a dialect's
//! renderer ([`Dialect::render`], today only [`super::line`]) turns it
//! into bytes; clients turn bytes back into a [`ServerLine`] with that
//! dialect's recogniser ([`super::line::recognise`]). Fields borrow: a
//! fan-out builds its line from the chat state's own strings and allocates
//! nothing.
//!
//! Three kinds, as the protocol tells them apart by their first character:
//! [`Event`]s happen in the chat and reach whoever they concern,
//! [`Reply`]s answer one client's command (or its arrival), and [`Error`]s
//! (`! ` lines) refuse one.

use crate::tags::ServerTags;

/// One line the server sends, before it is written in a dialect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerLine<'a> {
    /// Something that happened in the chat.
    Event(Event<'a>),
    /// An answer to one client.
    Reply(Reply<'a>),
    /// A refusal or a problem, told to one client.
    Error(Error<'a>),
}

/// Something that happened in the chat, told to everyone it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A chat line (`alice: hello`).
    Said {
        /// The sender's nick.
        from: &'a str,
        /// The room it was said in; `None` when the dialect does not show
        /// it (the line dialect shows room lines of the current room
        /// without it).
        room: Option<&'a str>,
        /// The text, already cleaned of control characters.
        text: &'a str,
        /// Its `id` and `time` tags (protocol 1.2), once the server has
        /// accepted it; `None` where they are not known (a line read back
        /// from the line dialect).
        stamp: Option<Stamp>,
    },
    /// A `:me` action (`* alice waves`).
    Acted {
        /// The actor's nick.
        from: &'a str,
        /// As for [`Event::Said`].
        room: Option<&'a str>,
        /// The action, already cleaned.
        text: &'a str,
        /// As for [`Event::Said`].
        stamp: Option<Stamp>,
    },
    /// A private message (`[pm] alice: hello`).
    PrivateMessage {
        /// The sender's nick.
        from: &'a str,
        /// The message, already cleaned.
        text: &'a str,
        /// On the sender's own copy (its echo, with tags on), the
        /// recipient's nick: the `to` tag. `None` on the recipient's.
        to: Option<&'a str>,
    },
    /// Someone entered a room (`* alice joined #rust`).
    Joined {
        /// Who.
        nick: &'a str,
        /// The room as currently spelled, with its `#`.
        room: &'a str,
    },
    /// Someone left a room (`* alice left #lobby`, with ` (REASON)`).
    Left {
        /// Who.
        nick: &'a str,
        /// The room as currently spelled.
        room: &'a str,
        /// Why, when a reason was given or the server cut the client off.
        reason: Option<&'a str>,
        /// It left the chat (quit, or its connection ended), not only the
        /// room: IRC shows a `QUIT`, the line dialect the same `left`
        /// line (and reads every `left` line back as not a quit).
        quit: bool,
    },
    /// A nick change (`* alice is now known as alicia`).
    Renamed {
        /// The nick before.
        old: &'a str,
        /// The nick after.
        new: &'a str,
    },
    /// The server is stopping (`* server shutting down`).
    ShuttingDown,
    /// An operator kicked someone out of a room
    /// (`* bob was kicked from #rust by alice`, with ` (REASON)`).
    Kicked {
        /// Who was kicked.
        nick: &'a str,
        /// The room as currently spelled.
        room: &'a str,
        /// The operator.
        by: &'a str,
        /// Why, when the operator said.
        reason: Option<&'a str>,
    },
    /// An operator banned a nick from a room
    /// (`* bob was banned from #rust by alice`).
    Banned {
        /// The nick banned, as the operator typed it.
        nick: &'a str,
        /// The room as currently spelled.
        room: &'a str,
        /// The operator.
        by: &'a str,
    },
    /// An operator lifted a ban (`* alice lifted the ban on bob in #rust`).
    Unbanned {
        /// The nick no longer banned, as the operator typed it.
        nick: &'a str,
        /// The room as currently spelled.
        room: &'a str,
        /// The operator.
        by: &'a str,
    },
    /// An operator set a room's topic
    /// (`* alice set the topic of #rust: TEXT`).
    TopicSet {
        /// The room as currently spelled.
        room: &'a str,
        /// The operator.
        by: &'a str,
        /// The topic, already cleaned.
        text: &'a str,
    },
    /// An operator cleared a room's topic
    /// (`* alice cleared the topic of #rust`).
    TopicCleared {
        /// The room as currently spelled.
        room: &'a str,
        /// The operator.
        by: &'a str,
    },
    /// An operator made a member an operator
    /// (`* alice made bob an operator of #rust`).
    Opped {
        /// The room as currently spelled.
        room: &'a str,
        /// The operator.
        by: &'a str,
        /// The new operator.
        nick: &'a str,
    },
    /// An operator took operator status from a member
    /// (`* alice took operator from bob in #rust`).
    Deopped {
        /// The room as currently spelled.
        room: &'a str,
        /// The operator.
        by: &'a str,
        /// The member who is no longer an operator.
        nick: &'a str,
    },
    /// An end-to-end encrypted payload relayed from `from`, unchanged
    /// (`[e2e] alice: PAYLOAD`, protocol 1.2).
    E2e {
        /// The sender's nick.
        from: &'a str,
        /// The opaque payload, as sent.
        payload: &'a str,
    },
}

impl<'a> ServerLine<'a> {
    /// The room a *room line* happened in (chat, `:me`, joined, left,
    /// kicked, banned, unbanned, topic, operator lines), as currently
    /// spelled: what its `[ROOM] ` prefix shows to a member whose current
    /// room it is not. `None` for every other line (and for chat built
    /// without its room).
    pub fn room(&self) -> Option<&'a str> {
        match self {
            ServerLine::Event(event) => match *event {
                Event::Said { room, .. } | Event::Acted { room, .. } => room,
                Event::Joined { room, .. }
                | Event::Left { room, .. }
                | Event::Kicked { room, .. }
                | Event::Banned { room, .. }
                | Event::Unbanned { room, .. }
                | Event::TopicSet { room, .. }
                | Event::TopicCleared { room, .. }
                | Event::Opped { room, .. }
                | Event::Deopped { room, .. } => Some(room),
                Event::PrivateMessage { .. }
                | Event::E2e { .. }
                | Event::Renamed { .. }
                | Event::ShuttingDown => None,
            },
            ServerLine::Reply(_) | ServerLine::Error(_) => None,
        }
    }
}

/// An answer to one client: to a command it sent, or to its arrival.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// The client is in (`* welcome guest7`).
    Welcome {
        /// The nick it was given.
        nick: &'a str,
    },
    /// The server wants `:auth` first (`* password required`).
    PasswordRequired,
    /// One row of `:help`.
    Help(HelpRow),
    /// `:users`: who is in a room, sorted as the protocol says.
    Users {
        /// The room as currently spelled.
        room: &'a str,
        /// The members' nicks, in order.
        nicks: Vec<&'a str>,
    },
    /// `:rooms`: every room with its member count, in order.
    Rooms {
        /// Each room as currently spelled, with its member count.
        rooms: Vec<(&'a str, usize)>,
    },
    /// `:ping` answered (`* pong`, `* pong TOKEN`).
    Pong {
        /// The token given, verbatim.
        token: Option<&'a str>,
    },
    /// `:quit` answered; the connection closes next (`* bye`).
    Bye,
    /// `:nick` to the nick one already has.
    AlreadyKnownAs {
        /// That nick.
        nick: &'a str,
    },
    /// The header of a `:history` answer (`* history #rust: 2 lines`).
    HistoryHeader {
        /// The room as currently spelled.
        room: &'a str,
        /// How many `[history …]` lines follow.
        count: usize,
    },
    /// A line from the past (`[history 2026-11-22T10:15:03Z] alice: hi`).
    HistoryLine {
        /// When the server accepted it, in Unix milliseconds (the line
        /// dialect shows the second; the `time` tag all of it).
        time_ms: i64,
        /// The line as it was delivered then, in the line dialect, as the
        /// history file keeps it (`alice: hi` or `* alice waves`).
        line: &'a str,
        /// The room it was said in, as currently spelled: its `room` tag.
        room: Option<&'a str>,
        /// Its number in its room, as when it was first delivered: its
        /// `id` tag.
        id: Option<u64>,
    },
    /// `:register` done, the account stored (`* registered alice`).
    Registered {
        /// The account's name.
        name: &'a str,
    },
    /// Logged in (`* logged in as alice`).
    LoggedIn {
        /// The account's name.
        name: &'a str,
    },
    /// Another connection logged in to this one's account; this one
    /// closes (`* logged in elsewhere`).
    LoggedInElsewhere,
    /// `:token` answered (`* token TOKEN`), once the token is stored.
    Token {
        /// The secret.
        token: &'a str,
    },
    /// `:logout` answered (`* logged out`).
    LoggedOut,
    /// `:passwd` done (`* password changed`).
    PasswordChanged,
    /// `:whois` answered (`* whois alice: account alice, rooms #lobby #rust`
    /// or `* whois guest3: guest, rooms #lobby`).
    Whois {
        /// The nick asked about, as its holder spells it.
        nick: &'a str,
        /// Its account, when logged in.
        account: Option<&'a str>,
        /// Its rooms, as spelled.
        rooms: Vec<&'a str>,
    },
    /// `:tags on` answered (`* tags on`, itself tagged).
    TagsOn,
    /// `:tags off` answered (`* tags off`, not tagged).
    TagsOff,
    /// `:join` of a room one is in already, now current, or the new current
    /// room after leaving the current one (`* current room #rust`).
    CurrentRoom {
        /// The room as currently spelled.
        room: &'a str,
    },
    /// The client left its last room (`* not in any room (try :join ROOM)`).
    NoRoomLeft,
    /// `:topic`, or a joiner told the topic of the room it entered
    /// (`* topic #rust: TEXT`).
    Topic {
        /// The room as currently spelled.
        room: &'a str,
        /// The topic.
        text: &'a str,
    },
    /// `:topic` in a room without one (`* no topic for #rust`).
    NoTopic {
        /// The room as currently spelled.
        room: &'a str,
    },
    /// `:bans` (`* bans in #rust: bob carol`, or `none`).
    Bans {
        /// The room as currently spelled.
        room: &'a str,
        /// The banned nicks, in order (sorted by lower-cased nick).
        nicks: Vec<&'a str>,
    },
    /// `:key` done (`* key published`, protocol 1.2).
    KeyPublished,
    /// `:keys` answered (`* keys alice: KEY1 KEY2`, or `none`).
    Keys {
        /// The name asked about, as typed.
        name: &'a str,
        /// Its keys, oldest first.
        keys: Vec<&'a str>,
    },
}

/// A refusal or a problem, told to one client (`! ` lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error<'a> {
    /// A known command used wrongly; holds its usage (`:nick NAME`).
    Usage(&'a str),
    /// A command word nobody knows, as typed with its colon.
    UnknownCommand(&'a str),
    /// A nick or room name outside the rules, as typed.
    InvalidName(&'a str),
    /// A nick reserved for the server's own words, as typed.
    NickReserved(&'a str),
    /// A nick someone else has, as typed.
    NickTaken(&'a str),
    /// `:pm` to a nick nobody has, as typed.
    NoSuchUser(&'a str),
    /// `:join` to the current room, as `#` and the name typed.
    AlreadyIn(&'a str),
    /// A command other than `:auth`, `:ping`, `:quit` before the password.
    AuthenticateFirst,
    /// A wrong password, not yet the last allowed.
    WrongPassword,
    /// The last wrong password; the connection closes.
    TooManyAttempts,
    /// `:auth` from an address locked out; the connection closes.
    LockedOut {
        /// Seconds until the address may try again (at least 1).
        retry_secs: u64,
    },
    /// Part of a room's history is missing.
    HistoryIncomplete {
        /// The room as currently spelled.
        room: &'a str,
        /// What is missing.
        missing: Missing,
    },
    /// The server is at its client limit; the connection closes.
    ServerFull,
    /// The server cannot reach its cluster (protocol 1.2, several servers):
    /// the command was not run; a new connection closes.
    ClusterUnavailable,
    /// The address has as many connections as it may; the connection closes.
    TooManyFromAddress,
    /// A line was left unfinished too long; the connection closes.
    IdleTimeout,
    /// No password within the time allowed; the connection closes.
    AuthTimeout,
    /// A line that is not UTF-8 was dropped.
    InvalidUtf8,
    /// With tags on, a line starting with `@` but not with a valid tag
    /// prefix, or with a label that is not a valid one (`! bad tags`).
    BadTags,
    /// A line over the limit was dropped.
    LineTooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// `:register` with a guest nick.
    GuestCannotRegister,
    /// `:register` of a name that has an account.
    AlreadyRegistered(&'a str),
    /// A password outside the bounds in force, in bytes.
    PasswordBounds {
        /// The shortest allowed.
        min: usize,
        /// The longest allowed.
        max: usize,
    },
    /// A wrong name, password or token: one answer for all.
    LoginFailed,
    /// An account command from a client not logged in.
    LogInFirst,
    /// `:key` with something that is not a key (`! invalid key`).
    InvalidKey,
    /// `:e2e` to a user who is not logged in (`! bob is not logged in`).
    NotLoggedIn(&'a str),
    /// `:nick` to a name with an account the client is not logged in to.
    NickRegistered(&'a str),
    /// `:nick` to another name while logged in.
    LoggedInAs(&'a str),
    /// A password on a plain connection from another address.
    UseTls,
    /// The hashing queue is full.
    ServerBusy,
    /// The address, or the server, registered its share this hour.
    TooManyRegistrations,
    /// A command that needs a current room, from a client in none
    /// (`! not in any room (try :join ROOM)`).
    NotInAnyRoom,
    /// `:part` of a room the client is not in, as `#` and the name typed
    /// (`! not in #rust`).
    NotIn(&'a str),
    /// `:users ROOM` of a room that does not exist, as `#` and the name
    /// typed (`! no such room #nowhere`).
    NoSuchRoom(&'a str),
    /// `:join` over the per-client room limit (`! too many rooms (max 20)`).
    TooManyRooms {
        /// The per-client limit.
        max: usize,
    },
    /// `:join` of a room the client is banned from, as `#` and the name
    /// typed (`! banned from #rust`).
    BannedFrom(&'a str),
    /// An operator's command from a client that is not one
    /// (`! not an operator of #rust`).
    NotOperator {
        /// The current room as currently spelled.
        room: &'a str,
    },
    /// `:op`, `:deop` or `:kick` of a nick not in the room
    /// (`! bob is not in #rust`).
    UserNotInRoom {
        /// The nick as typed.
        nick: &'a str,
        /// The room as currently spelled.
        room: &'a str,
    },
    /// A topic over the limit (`! topic too long (max 390 bytes)`).
    TopicTooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// `:op` of an operator (`! bob is already an operator of #rust`; the
    /// protocol is silent, `docs/choices.md`).
    AlreadyOperator {
        /// The nick as typed.
        nick: &'a str,
        /// The room as currently spelled.
        room: &'a str,
    },
    /// `:deop` of a member that is not an operator
    /// (`! bob is not an operator of #rust`; the protocol is silent).
    TargetNotOperator {
        /// The nick as typed.
        nick: &'a str,
        /// The room as currently spelled.
        room: &'a str,
    },
    /// `:ban` of a nick already banned (`! bob is already banned from
    /// #rust`; the protocol is silent).
    AlreadyBanned {
        /// The nick as typed.
        nick: &'a str,
        /// The room as currently spelled.
        room: &'a str,
    },
    /// `:unban` of a nick that is not banned (`! bob is not banned from
    /// #rust`; the protocol is silent).
    NotBanned {
        /// The nick as typed.
        nick: &'a str,
        /// The room as currently spelled.
        room: &'a str,
    },
}

/// What part of a room's history an [`Error::HistoryIncomplete`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// This many lines could not be written to the history file.
    Unsaved(usize),
    /// This many lines were dropped from memory (no history file).
    Dropped(usize),
    /// Older lines could not be read from the history file.
    Unreadable,
}

/// The rows of `:help`, one line each, in the order they are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelpRow {
    /// `:help`
    Help,
    /// `:nick NAME`
    Nick,
    /// `:pm NAME TEXT` and its alias `:msg`
    Pm,
    /// `:users [ROOM]`
    Users,
    /// `:join ROOM`
    Join,
    /// `:part [ROOM [REASON]]`
    Part,
    /// `:rooms`
    Rooms,
    /// `:me TEXT`
    Me,
    /// `:ping [TOKEN]`
    Ping,
    /// `:quit [REASON]`
    Quit,
    /// `:history [N]`
    History,
    /// `:tags on|off`
    Tags,
    /// `:topic [TEXT]`
    Topic,
    /// `:op`, `:deop`, `:kick`, `:ban`, `:unban`, `:bans` on one line.
    Operators,
    /// `:auth PASSWORD`, listed only when the server has a password.
    Auth,
    /// `:register PASSWORD`
    Register,
    /// `:login NAME PASSWORD`
    Login,
    /// `:token` and `:resume TOKEN`
    Token,
    /// `:logout`
    Logout,
    /// `:passwd OLD NEW`
    Passwd,
    /// `:whois NICK`
    Whois,
    /// `:key KEY`, `:keys NICK`, `:e2e NICK PAYLOAD` on one line.
    E2e,
}

impl HelpRow {
    /// Every row, in the order `:help` sends them.
    pub const ALL: [HelpRow; 22] = [
        HelpRow::Help,
        HelpRow::Nick,
        HelpRow::Pm,
        HelpRow::Users,
        HelpRow::Join,
        HelpRow::Part,
        HelpRow::Rooms,
        HelpRow::Me,
        HelpRow::Ping,
        HelpRow::Quit,
        HelpRow::History,
        HelpRow::Tags,
        HelpRow::Topic,
        HelpRow::Operators,
        HelpRow::Auth,
        HelpRow::Register,
        HelpRow::Login,
        HelpRow::Token,
        HelpRow::Logout,
        HelpRow::Passwd,
        HelpRow::Whois,
        HelpRow::E2e,
    ];

    /// The rows of `:help` on a server with (`with_auth`) or without a
    /// password.
    pub fn rows(with_auth: bool) -> impl Iterator<Item = HelpRow> {
        HelpRow::ALL
            .into_iter()
            .filter(move |row| with_auth || *row != HelpRow::Auth)
    }
}

/// When the server accepted a chat or `:me` line, and its number in its
/// room: the line's `time` and `id` tags (protocol 1.2, section "Tags"),
/// the same for every recipient and in `:history`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The line's number in its room: increasing, never reused.
    pub id: u64,
    /// When it was accepted, in Unix milliseconds.
    pub time_ms: i64,
}

impl<'a> ServerLine<'a> {
    /// The tags this line carries for a client with tags on (label aside):
    /// its own `time` when it has one (an accepted chat line, a history
    /// line), else `now_ms`; `room` on room lines ([`ServerLine::room`])
    /// and history lines; `id` on chat, `:me` and history lines; `to` on a
    /// private message's echo.
    pub fn tags(&self, now_ms: i64) -> ServerTags<'a> {
        let mut tags = ServerTags::at(now_ms);
        tags.room = self.room();
        match *self {
            ServerLine::Event(
                Event::Said {
                    stamp: Some(stamp), ..
                }
                | Event::Acted {
                    stamp: Some(stamp), ..
                },
            ) => {
                tags.id = Some(stamp.id);
                tags.time_ms = stamp.time_ms;
            }
            ServerLine::Event(Event::PrivateMessage { to, .. }) => tags.to = to,
            ServerLine::Reply(Reply::HistoryLine {
                time_ms, room, id, ..
            }) => {
                tags.time_ms = time_ms;
                tags.room = room;
                tags.id = id;
            }
            _ => {}
        }
        tags
    }
}

/// How a client wants its lines written: each dialect has a renderer, and
/// a fan-out renders its line once per dialect among its recipients.
///
/// Today every client speaks [`Dialect::Line`]. Protocol 1.2 adds tagged
/// lines (`@time=…;id=…;room=… ` before the line, `[#room] ` before room
/// lines of a room that is not the recipient's current one) and IRC: each
/// becomes a variant here with its own renderer, and what else changes the
/// bytes (tags on, current room) joins the fan-out cache's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// The line protocol of `docs/protocol.md`, version 1.1.
    #[default]
    Line,
    /// IRC (`docs/irc.md`): [`crate::irc::render`]. Its numerics name the
    /// recipient and the server; [`Dialect::render`] uses
    /// [`crate::irc::render::Context::DEFAULT`], the server its own.
    Irc,
}

impl Dialect {
    /// How many dialects there are: the size of a per-dialect cache.
    pub const COUNT: usize = 2;

    /// A small index, for per-dialect caches.
    pub fn index(self) -> usize {
        match self {
            Dialect::Line => 0,
            Dialect::Irc => 1,
        }
    }

    /// Appends `line` as this dialect writes it, with its line end.
    pub fn render(self, line: &ServerLine<'_>, out: &mut Vec<u8>) {
        match self {
            Dialect::Line => super::line::render(line, out),
            Dialect::Irc => {
                super::irc::render::render(line, &super::irc::render::Context::DEFAULT, out)
            }
        }
    }

    /// Appends `line` as this dialect writes it for a client with tags on:
    /// its tag prefix (see [`ServerLine::tags`]; `now_ms` is the time of a
    /// line that has none of its own), then the line as [`Dialect::render`]
    /// writes it, without a `[ROOM] ` prefix (the `room` tag says it). No
    /// label: the asker's copy gets one with [`crate::tags::insert_label`].
    pub fn render_tagged(self, line: &ServerLine<'_>, now_ms: i64, out: &mut Vec<u8>) {
        line.tags(now_ms).write_prefix(out);
        self.render(line, out);
    }

    /// Appends `line` as this dialect writes it for a member of its room
    /// whose current room is another one (version 1.2): the line dialect
    /// puts `[ROOM] ` before it. A line that is not a room line
    /// ([`ServerLine::room`]) is written as by [`Dialect::render`].
    pub fn render_prefixed(self, line: &ServerLine<'_>, out: &mut Vec<u8>) {
        match self {
            Dialect::Line => super::line::render_prefixed(line, out),
            // IRC names the channel in every room line.
            Dialect::Irc => self.render(line, out),
        }
    }

    /// `line` as this dialect writes it, without its line end: for tests
    /// and logs, not the hot path.
    pub fn render_text(self, line: &ServerLine<'_>) -> String {
        let mut out = Vec::new();
        self.render(line, &mut out);
        out.pop();
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl<'a> From<Event<'a>> for ServerLine<'a> {
    fn from(event: Event<'a>) -> Self {
        ServerLine::Event(event)
    }
}

impl<'a> From<Reply<'a>> for ServerLine<'a> {
    fn from(reply: Reply<'a>) -> Self {
        ServerLine::Reply(reply)
    }
}

impl<'a> From<Error<'a>> for ServerLine<'a> {
    fn from(error: Error<'a>) -> Self {
        ServerLine::Error(error)
    }
}
