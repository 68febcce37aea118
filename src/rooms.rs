//! The room model of protocol 1.2 as plain data: which rooms exist, who is
//! in which (several rooms per client, one of them current), operators,
//! bans and topics. It answers questions and applies changes, returning
//! typed results; it holds no nicks, sends no lines and has no wording, so
//! the chat state decides what each result says and to whom.
//!
//! # Rules it applies (`docs/protocol.md`, version 1.2)
//!
//! *Rooms*
//! - A client is in any number of rooms up to the per-client limit
//!   ([`Rooms::new`]; at least [`MIN_ROOMS_PER_CLIENT`]), `#lobby`
//!   included, and has a current room while it is in one; on arrival it
//!   is in `#lobby`, current ([`Rooms::arrive`]).
//! - `:join` ([`Rooms::join`]): a new room is entered, made current, and
//!   the other rooms are kept; created on first join with the joiner's
//!   spelling (`#` optional, names as nicks, compared case-insensitively);
//!   a member room that is not current becomes current; the current room
//!   is `AlreadyIn`; over the limit or banned nothing changes.
//! - `:part` ([`Rooms::part`]) and `:kick`: leaving the current room makes
//!   the remaining room that was most recently current the current one, or
//!   leaves none; leaving another room changes nothing else; a room the
//!   client is not in is refused. An empty room other than `#lobby`
//!   disappears, and its topic and bans with it.
//! - Room lines reach the members whose current room it is without a
//!   prefix and the others with `[ROOM] `: each room keeps its members in
//!   those two parts ([`Room::current_members`], [`Room::other_members`]),
//!   moved between them as current rooms change, so a fan-out never asks
//!   per recipient.
//! - Chat-room commands act on the current room and are refused without
//!   one ([`Refusal::NoCurrentRoom`]); `:users` may name any existing room
//!   ([`Rooms::users_room`]).
//! - A nick change reaches the renamer and everyone sharing a room with it
//!   once each ([`Rooms::sharing`]); a client that goes leaves every room
//!   ([`Rooms::depart`]).
//!
//! *Topics and room operators*
//! - A topic is unset on creation, kept while the room exists, shown to
//!   anyone, set (at most [`MAX_TOPIC_BYTES`]) or cleared (`-`) by an
//!   operator only ([`Rooms::topic`], [`Rooms::edit_topic`]).
//! - The client whose join created a room is its operator; `#lobby` has
//!   none until one is given; operator status ends when the operator leaves.
//! - `:op`, `:deop`, `:kick`, `:ban`, `:unban`, `:bans` in the current room,
//!   for operators only, with the protocol's order of refusals: not an
//!   operator, then no such user, then not in the room.
//! - A ban holds a nick (any valid nick, online or not, case-insensitive)
//!   and, when that nick was logged in, its account; it stops `:join` while
//!   the room exists, and a banned member is kicked.
//! - A server administrator ([`Rooms::set_admin`]) is an operator of every
//!   room it is in (so it may `:op` itself, `:kick` and `:ban` anywhere).
//!
//! # What the chat state still has to do when it is wired in
//! - Own the nicks and accounts: resolve `NICK` to a client (`None` is
//!   `! no such user`), pass the joiner's nick and account to `join`, the
//!   banned nick's client and account to `ban`, mark administrators.
//! - Word every result and send it to the right people: the joined and
//!   left lines to the room with the joiner/leaver included (the leaver's
//!   copy prefixed when [`Departure::was_current`] is false), the `[ROOM] `
//!   prefix for the room's [`Room::other_members`] with tags off,
//!   `* current room …` and `* not in any room …` from [`CurrentChange`],
//!   `* topic …` to a joiner of a room with a topic, `@` in `:users`,
//!   sorting by nick, the banned line before the kicked one.
//! - Clean control characters out of topics and reasons before they reach
//!   this model (the topic limit counts the cleaned text's bytes).
//! - Tell the history store when a room disappears ([`Left::removed`]).
//! - Choose the wording where the protocol is silent and write it down:
//!   [`Refusal::AlreadyOperator`], [`Refusal::TargetNotOperator`],
//!   [`Refusal::AlreadyBanned`], [`Refusal::NotBanned`].

use crate::chat::{ClientId, LOBBY};
use crate::protocol::is_valid_name;
use slab::Slab;
use std::collections::HashMap;

/// The protocol's default per-client room limit (`--max-rooms-per-client`).
pub const DEFAULT_ROOMS_PER_CLIENT: usize = 20;

/// The lowest per-client room limit the protocol allows an operator to set.
pub const MIN_ROOMS_PER_CLIENT: usize = 20;

/// The longest topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 390;

/// Identifies a room while it exists. A room that disappears gives its id
/// up, and a room created later may get it: never keep one across a
/// [`Left`] whose `removed` is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(usize);

/// A room: its name, its members, its topic and its bans.
///
/// Its members are kept in two parts, so a fan-out knows without a
/// question per recipient who gets the line plain and who gets it with the
/// `[ROOM] ` prefix: first those whose current room it is
/// ([`Room::current_members`]), then the others ([`Room::other_members`]).
/// Moving between the parts, joining and leaving are swaps, O(1) whatever
/// the room's size; within a part, the order is not meaningful.
#[derive(Debug)]
pub struct Room {
    /// The spelling of the join that created it, with its `#`.
    name: String,
    /// The name lower-cased: what history and lookups go by.
    key: String,
    /// Members whose current room it is (`members[..current]`), then the
    /// others.
    members: Vec<ClientId>,
    /// Beside `members`, slot for slot: an operator of this room by
    /// creation or `:op` (administrators are operators without it).
    operators: Vec<bool>,
    /// How many members have it as their current room.
    current: usize,
    topic: Option<String>,
    bans: Vec<Ban>,
}

/// A ban: a nick, and the account that nick was logged in to when it was
/// banned (accounts arrive with a sibling issue; `None` until then).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// The nick as the operator typed it.
    pub nick: String,
    /// The nick lower-cased, as bans compare.
    nick_key: String,
    /// The account of the banned nick, when it was logged in.
    pub account: Option<String>,
}

impl Room {
    /// The room as currently spelled, with its `#`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name lower-cased (with `#`): the key of its history.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How many members it has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has no members (only `#lobby` can be empty and exist).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// All its members (the current part first).
    pub fn members(&self) -> &[ClientId] {
        &self.members
    }

    /// The members whose current room it is: with tags off, they get its
    /// room lines without a prefix.
    pub fn current_members(&self) -> &[ClientId] {
        &self.members[..self.current]
    }

    /// The members whose current room is another one: with tags off, they
    /// get its room lines with the `[ROOM] ` prefix.
    pub fn other_members(&self) -> &[ClientId] {
        &self.members[self.current..]
    }

    /// Its topic, if one is set.
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }

    /// Its bans, sorted by lower-cased nick.
    pub fn bans(&self) -> &[Ban] {
        &self.bans
    }
}

/// The rooms one client is in.
#[derive(Debug, Default)]
struct Memberships {
    /// Least recently current first: the last one is the current room.
    joined: Vec<Membership>,
    /// A server administrator: operator of every room it is in.
    admin: bool,
}

/// One room a client is in, and where the client is in its member list.
#[derive(Clone, Copy, Debug)]
struct Membership {
    room: RoomId,
    slot: usize,
}

/// Who is joining, for the ban check: its nick and, when logged in, its
/// account.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    /// The joiner's nick.
    pub nick: &'a str,
    /// The joiner's account, when logged in.
    pub account: Option<&'a str>,
}

/// What `:join ROOM` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Entered the room, now current (`* alice joined #rust` to the room,
    /// then `* topic #rust: …` to the joiner when it has one).
    Joined {
        /// The room.
        room: RoomId,
        /// Whether this join created it (the joiner is its operator).
        created: bool,
    },
    /// Already a member; the room is now current (`* current room #rust`).
    Switched(RoomId),
    /// The room is already current (`! already in #rust`).
    AlreadyIn(RoomId),
    /// Banned from the room (`! banned from #rust`).
    Banned(RoomId),
    /// In as many rooms as allowed (`! too many rooms (max 20)`).
    TooManyRooms {
        /// The per-client limit.
        max: usize,
    },
    /// Not a room name (`! invalid name NAME`).
    InvalidName,
    /// The client has not arrived, or has departed: the caller's mistake;
    /// nothing changes.
    NotInChat,
}

/// What became of a client's current room when it left a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CurrentChange {
    /// The room left was not current: nothing else changes.
    Unchanged,
    /// The room left was current; this one, the most recently current of
    /// those remaining, is now (`* current room #lobby`).
    Now(RoomId),
    /// The room left was the last one (`* not in any room (try :join ROOM)`).
    NoRoom,
}

/// A room someone left, and whether it disappeared.
#[derive(Debug)]
pub struct Left {
    /// The room left; stale when `removed` is set.
    pub room: RoomId,
    /// The room itself when it became empty and disappeared (never
    /// `#lobby`): the chat state still needs its name for the line, and
    /// tells history it is gone.
    pub removed: Option<Room>,
}

impl Left {
    /// The room's name, whether it still exists or not.
    pub fn room_name<'a>(&'a self, rooms: &'a Rooms) -> &'a str {
        match &self.removed {
            Some(room) => room.name(),
            None => rooms.get(self.room).map_or("", Room::name),
        }
    }
}

/// A client that left a room by `:part`, `:kick` or a ban, still connected.
#[derive(Debug)]
pub struct Departure {
    /// Who left.
    pub client: ClientId,
    /// The room, and whether it disappeared.
    pub left: Left,
    /// Whether that room was the client's current room (its copy of the
    /// room's line then has no `[ROOM] ` prefix).
    pub was_current: bool,
    /// The client's current room now.
    pub current: CurrentChange,
}

/// What `:ban NICK` did.
#[derive(Debug)]
pub struct Banned {
    /// The room (`* bob was banned from #rust by alice`); stale when the
    /// kick emptied it.
    pub room: RoomId,
    /// The banned nick's client, kicked because it was a member.
    pub kicked: Option<Departure>,
}

/// `:topic TEXT` as a change: `-` clears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicEdit<'a> {
    /// Set the topic to this text.
    Set(&'a str),
    /// Clear it (`:topic -`).
    Clear,
}

impl<'a> TopicEdit<'a> {
    /// The change `:topic TEXT` asks for.
    pub fn parse(text: &'a str) -> Self {
        if text == "-" {
            TopicEdit::Clear
        } else {
            TopicEdit::Set(text)
        }
    }
}

/// Why a command on a room was refused; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No current room (`! not in any room (try :join ROOM)`).
    NoCurrentRoom,
    /// `:part ROOM` of a room the client is not in (`! not in #rust`).
    NotMember,
    /// `:users ROOM` of a room that does not exist (`! no such room #x`).
    NoSuchRoom,
    /// A room or nick name outside the rules (`! invalid name NAME`).
    InvalidName,
    /// The client is not an operator of the room
    /// (`! not an operator of #rust`).
    NotOperator(RoomId),
    /// NICK is nobody (`! no such user bob`).
    NoSuchUser,
    /// NICK is not in the room (`! bob is not in #rust`).
    NotInRoom(RoomId),
    /// The topic is over [`MAX_TOPIC_BYTES`]
    /// (`! topic too long (max 390 bytes)`).
    TopicTooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// `:op` of an operator (the protocol is silent).
    AlreadyOperator(RoomId),
    /// `:deop` of a member that is not an operator (the protocol is silent).
    TargetNotOperator(RoomId),
    /// `:ban` of a nick already banned (the protocol is silent).
    AlreadyBanned(RoomId),
    /// `:unban` of a nick that is not banned (the protocol is silent).
    NotBanned(RoomId),
}

/// Every room of one server and every client's memberships.
#[derive(Debug)]
pub struct Rooms {
    rooms: Slab<Room>,
    /// Lower-cased name (with `#`) to room.
    by_key: HashMap<String, RoomId>,
    lobby: RoomId,
    /// Indexed by client; `None` for clients not in the chat.
    clients: Vec<Option<Memberships>>,
    /// The per-client room limit.
    max_per_client: usize,
    /// Marks for [`Rooms::sharing`], indexed by client: a client whose mark
    /// is `epoch` has been counted already.
    marks: Vec<u64>,
    epoch: u64,
}

impl Rooms {
    /// Only `#lobby`, empty; each client may be in `max_per_client` rooms
    /// (the operator's setting; at least 1 here, the configuration holds it
    /// to [`MIN_ROOMS_PER_CLIENT`]).
    pub fn new(max_per_client: usize) -> Rooms {
        let mut rooms = Slab::new();
        let lobby = RoomId(rooms.insert(Room {
            name: LOBBY.to_string(),
            key: LOBBY.to_string(),
            members: Vec::new(),
            operators: Vec::new(),
            current: 0,
            topic: None,
            bans: Vec::new(),
        }));
        Rooms {
            rooms,
            by_key: HashMap::from([(LOBBY.to_string(), lobby)]),
            lobby,
            clients: Vec::new(),
            max_per_client: max_per_client.max(1),
            marks: Vec::new(),
            epoch: 0,
        }
    }

    /// The per-client room limit.
    pub fn max_per_client(&self) -> usize {
        self.max_per_client
    }

    /// `#lobby`, which always exists.
    pub fn lobby(&self) -> RoomId {
        self.lobby
    }

    /// A room, while it exists.
    pub fn get(&self, room: RoomId) -> Option<&Room> {
        self.rooms.get(room.0)
    }

    /// How many rooms exist, `#lobby` included.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Always false: `#lobby` always exists.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Every room, in no particular order (`:rooms` sorts by name).
    pub fn iter(&self) -> impl Iterator<Item = (RoomId, &Room)> {
        self.rooms.iter().map(|(key, room)| (RoomId(key), room))
    }

    /// The room named `name` (`#` optional, any letter case), if it exists.
    pub fn find(&self, name: &str) -> Option<RoomId> {
        let (_, key) = room_name(name)?;
        self.by_key.get(&key).copied()
    }

    /// The client's current room; `None` without one (or for a client not
    /// in the chat).
    pub fn current(&self, client: ClientId) -> Option<RoomId> {
        self.memberships(client)?.joined.last().map(|m| m.room)
    }

    /// Whether the client is in `room`.
    pub fn is_member(&self, client: ClientId, room: RoomId) -> bool {
        self.memberships(client)
            .is_some_and(|c| c.joined.iter().any(|m| m.room == room))
    }

    /// The rooms the client is in, least recently current first (the
    /// current room last).
    pub fn rooms_of(&self, client: ClientId) -> impl Iterator<Item = RoomId> + '_ {
        self.memberships(client)
            .into_iter()
            .flat_map(|c| c.joined.iter().map(|m| m.room))
    }

    /// Whether the client is an operator of `room`: a member given it by
    /// creation or `:op`, or an administrator in it (`@` in `:users`).
    pub fn is_operator(&self, room: RoomId, client: ClientId) -> bool {
        let Some(memberships) = self.memberships(client) else {
            return false;
        };
        let Some(membership) = memberships.joined.iter().find(|m| m.room == room) else {
            return false;
        };
        memberships.admin || self.rooms[room.0].operators[membership.slot]
    }

    /// Makes the client a server administrator or not (it logged in to an
    /// account the operator named at start, or out of it).
    pub fn set_admin(&mut self, client: ClientId, admin: bool) {
        if let Some(Some(memberships)) = self.clients.get_mut(client) {
            memberships.admin = admin;
        }
    }

    /// A welcomed client enters `#lobby`, its current room. Bans are not
    /// checked: the protocol puts every arrival in `#lobby`. A client
    /// already in the chat is left as it is.
    pub fn arrive(&mut self, client: ClientId) -> RoomId {
        if self.clients.len() <= client {
            self.clients.resize_with(client + 1, || None);
            self.marks.resize(client + 1, 0);
        }
        if self.clients[client].is_none() {
            self.clients[client] = Some(Memberships::default());
            self.enter(client, self.lobby, false);
        }
        self.lobby
    }

    /// `:join ROOM` (`#` optional) by a client in the chat.
    pub fn join(&mut self, client: ClientId, name: &str, who: Who<'_>) -> JoinOutcome {
        let Some((name, key)) = room_name(name) else {
            return JoinOutcome::InvalidName;
        };
        let Some(Some(memberships)) = self.clients.get_mut(client) else {
            return JoinOutcome::NotInChat;
        };
        let existing = self.by_key.get(&key).copied();
        if let Some(room) = existing {
            let joined = &mut memberships.joined;
            if joined.last().is_some_and(|m| m.room == room) {
                return JoinOutcome::AlreadyIn(room);
            }
            if let Some(at) = joined.iter().position(|m| m.room == room) {
                let membership = joined.remove(at);
                let before = joined.last().copied();
                joined.push(membership);
                if let Some(before) = before {
                    self.demote(before.room, before.slot);
                }
                self.promote(room, membership.slot);
                return JoinOutcome::Switched(room);
            }
        }
        if memberships.joined.len() >= self.max_per_client {
            return JoinOutcome::TooManyRooms {
                max: self.max_per_client,
            };
        }
        if let Some(room) = existing.filter(|&room| self.is_banned(room, who)) {
            return JoinOutcome::Banned(room);
        }
        let (room, created) = match existing {
            Some(room) => (room, false),
            None => {
                let room = RoomId(self.rooms.insert(Room {
                    name,
                    key: key.clone(),
                    members: Vec::new(),
                    operators: Vec::new(),
                    current: 0,
                    topic: None,
                    bans: Vec::new(),
                }));
                self.by_key.insert(key, room);
                (room, true)
            }
        };
        self.enter(client, room, created);
        JoinOutcome::Joined { room, created }
    }

    /// `:part [ROOM]`: leaves ROOM (`#` optional), the current room when
    /// none is given.
    pub fn part(&mut self, client: ClientId, name: Option<&str>) -> Result<Departure, Refusal> {
        let room = match name {
            None => self.current(client).ok_or(Refusal::NoCurrentRoom)?,
            Some(name) => {
                room_name(name).ok_or(Refusal::InvalidName)?;
                self.find(name)
                    .filter(|&room| self.is_member(client, room))
                    .ok_or(Refusal::NotMember)?
            }
        };
        self.leave(client, room).ok_or(Refusal::NotMember)
    }

    /// The client leaves the chat (`:quit`, disconnect): it leaves every
    /// room, its current room last, and is forgotten. Empty for a client
    /// not in the chat.
    pub fn depart(&mut self, client: ClientId) -> Vec<Left> {
        let Some(memberships) = self.clients.get_mut(client).and_then(Option::take) else {
            return Vec::new();
        };
        memberships
            .joined
            .iter()
            .map(|m| self.remove_member(m.room, m.slot))
            .collect()
    }

    /// Fills `out` with the client and everyone who shares at least one
    /// room with it, once each (who hears its nick change). Touches each
    /// membership of the rooms once; allocates nothing once `out` has grown.
    pub fn sharing(&mut self, client: ClientId, out: &mut Vec<ClientId>) {
        out.clear();
        let Some(Some(memberships)) = self.clients.get(client) else {
            return;
        };
        self.epoch += 1;
        let epoch = self.epoch;
        self.marks[client] = epoch;
        out.push(client);
        for membership in &memberships.joined {
            for &member in &self.rooms[membership.room.0].members {
                let mark = &mut self.marks[member];
                if *mark != epoch {
                    *mark = epoch;
                    out.push(member);
                }
            }
        }
    }

    /// The room `:users [ROOM]` lists: ROOM (any existing room), or the
    /// current room.
    pub fn users_room(&self, client: ClientId, name: Option<&str>) -> Result<RoomId, Refusal> {
        match name {
            None => self.current(client).ok_or(Refusal::NoCurrentRoom),
            Some(name) => {
                room_name(name).ok_or(Refusal::InvalidName)?;
                self.find(name).ok_or(Refusal::NoSuchRoom)
            }
        }
    }

    /// The members of `room` with whether each is an operator (`@` in
    /// `:users`), in fan-out order.
    pub fn members_with_operators(
        &self,
        room: RoomId,
    ) -> impl Iterator<Item = (ClientId, bool)> + '_ {
        self.get(room).into_iter().flat_map(move |r| {
            r.members
                .iter()
                .zip(&r.operators)
                .map(move |(&client, &operator)| {
                    let admin = self.memberships(client).is_some_and(|c| c.admin);
                    (client, operator || admin)
                })
        })
    }

    /// `:topic`: the current room and its topic.
    pub fn topic(&self, client: ClientId) -> Result<(RoomId, Option<&str>), Refusal> {
        let room = self.current(client).ok_or(Refusal::NoCurrentRoom)?;
        Ok((room, self.rooms[room.0].topic()))
    }

    /// `:topic TEXT` or `:topic -` by an operator of the current room.
    /// `TEXT` is already cleaned of control characters; its bytes count.
    pub fn edit_topic(&mut self, client: ClientId, edit: TopicEdit<'_>) -> Result<RoomId, Refusal> {
        let room = self.operated_room(client)?;
        let topic = match edit {
            TopicEdit::Set(text) if text.len() > MAX_TOPIC_BYTES => {
                return Err(Refusal::TopicTooLong {
                    max: MAX_TOPIC_BYTES,
                })
            }
            TopicEdit::Set(text) => Some(text.to_string()),
            TopicEdit::Clear => None,
        };
        self.rooms[room.0].topic = topic;
        Ok(room)
    }

    /// `:op NICK` in the current room; `target` is NICK's client, `None`
    /// when nobody has that nick.
    pub fn op(&mut self, client: ClientId, target: Option<ClientId>) -> Result<RoomId, Refusal> {
        self.set_operator(client, target, true)
    }

    /// `:deop NICK` in the current room, as [`Rooms::op`].
    pub fn deop(&mut self, client: ClientId, target: Option<ClientId>) -> Result<RoomId, Refusal> {
        self.set_operator(client, target, false)
    }

    /// `:kick NICK` in the current room: NICK leaves it as after `:part`.
    pub fn kick(
        &mut self,
        client: ClientId,
        target: Option<ClientId>,
    ) -> Result<Departure, Refusal> {
        let (room, target) = self.operated_target(client, target)?;
        self.leave(target, room).ok_or(Refusal::NotInRoom(room))
    }

    /// `:ban NICK` in the current room: NICK (any valid nick, online or
    /// not) and `account` (NICK's account when it is logged in) may not join
    /// while the room exists; `target` (NICK's client, if online) is kicked
    /// when it is a member.
    pub fn ban(
        &mut self,
        client: ClientId,
        nick: &str,
        target: Option<ClientId>,
        account: Option<&str>,
    ) -> Result<Banned, Refusal> {
        let room = self.operated_room(client)?;
        if !is_valid_name(nick) {
            return Err(Refusal::InvalidName);
        }
        let nick_key = nick.to_ascii_lowercase();
        let bans = &mut self.rooms[room.0].bans;
        let at = match bans.binary_search_by(|ban| ban.nick_key.cmp(&nick_key)) {
            Ok(_) => return Err(Refusal::AlreadyBanned(room)),
            Err(at) => at,
        };
        bans.insert(
            at,
            Ban {
                nick: nick.to_string(),
                nick_key,
                account: account.map(str::to_string),
            },
        );
        let kicked = target.and_then(|target| self.leave(target, room));
        Ok(Banned { room, kicked })
    }

    /// `:unban NICK` in the current room.
    pub fn unban(&mut self, client: ClientId, nick: &str) -> Result<RoomId, Refusal> {
        let room = self.operated_room(client)?;
        if !is_valid_name(nick) {
            return Err(Refusal::InvalidName);
        }
        let nick_key = nick.to_ascii_lowercase();
        let bans = &mut self.rooms[room.0].bans;
        let at = bans
            .binary_search_by(|ban| ban.nick_key.cmp(&nick_key))
            .map_err(|_| Refusal::NotBanned(room))?;
        bans.remove(at);
        Ok(room)
    }

    /// `:bans`: the current room, whose [`Room::bans`] an operator may see.
    pub fn bans(&self, client: ClientId) -> Result<RoomId, Refusal> {
        self.operated_room(client)
    }

    /// Whether `who` may not join `room`: its nick or its account is banned.
    pub fn is_banned(&self, room: RoomId, who: Who<'_>) -> bool {
        let Some(room) = self.get(room) else {
            return false;
        };
        room.bans.iter().any(|ban| {
            ban.nick_key.eq_ignore_ascii_case(who.nick)
                || (ban.account.is_some() && ban.account.as_deref() == who.account)
        })
    }

    fn memberships(&self, client: ClientId) -> Option<&Memberships> {
        self.clients.get(client)?.as_ref()
    }

    /// The current room, if the client is an operator of it.
    fn operated_room(&self, client: ClientId) -> Result<RoomId, Refusal> {
        let room = self.current(client).ok_or(Refusal::NoCurrentRoom)?;
        if !self.is_operator(room, client) {
            return Err(Refusal::NotOperator(room));
        }
        Ok(room)
    }

    /// The current room and `target`, a member of it, for an operator's
    /// command on a nick.
    fn operated_target(
        &self,
        client: ClientId,
        target: Option<ClientId>,
    ) -> Result<(RoomId, ClientId), Refusal> {
        let room = self.operated_room(client)?;
        let target = target.ok_or(Refusal::NoSuchUser)?;
        if !self.is_member(target, room) {
            return Err(Refusal::NotInRoom(room));
        }
        Ok((room, target))
    }

    fn set_operator(
        &mut self,
        client: ClientId,
        target: Option<ClientId>,
        operator: bool,
    ) -> Result<RoomId, Refusal> {
        let (room, target) = self.operated_target(client, target)?;
        let slot = self.slot(target, room).ok_or(Refusal::NotInRoom(room))?;
        let flag = &mut self.rooms[room.0].operators[slot];
        match (*flag, operator) {
            (true, true) => Err(Refusal::AlreadyOperator(room)),
            (false, false) => Err(Refusal::TargetNotOperator(room)),
            _ => {
                *flag = operator;
                Ok(room)
            }
        }
    }

    fn slot(&self, client: ClientId, room: RoomId) -> Option<usize> {
        let memberships = self.memberships(client)?;
        let membership = memberships.joined.iter().find(|m| m.room == room)?;
        Some(membership.slot)
    }

    /// Puts a client in the chat into `room` and makes it current.
    fn enter(&mut self, client: ClientId, room: RoomId, operator: bool) {
        let Some(Some(memberships)) = self.clients.get_mut(client) else {
            return;
        };
        let before = memberships.joined.last().copied();
        let r = &mut self.rooms[room.0];
        let slot = r.members.len();
        r.members.push(client);
        r.operators.push(operator);
        memberships.joined.push(Membership { room, slot });
        if let Some(before) = before {
            self.demote(before.room, before.slot);
        }
        self.promote(room, slot);
    }

    /// Takes a client out of one of its rooms; its current room follows
    /// the protocol's rule. `None` when it is not a member.
    fn leave(&mut self, client: ClientId, room: RoomId) -> Option<Departure> {
        let memberships = self.clients.get_mut(client)?.as_mut()?;
        let at = memberships.joined.iter().position(|m| m.room == room)?;
        let was_current = at + 1 == memberships.joined.len();
        let membership = memberships.joined.remove(at);
        let next = memberships.joined.last().copied();
        let left = self.remove_member(room, membership.slot);
        let current = match (was_current, next) {
            (false, _) => CurrentChange::Unchanged,
            (true, Some(next)) => {
                self.promote(next.room, next.slot);
                CurrentChange::Now(next.room)
            }
            (true, None) => CurrentChange::NoRoom,
        };
        Some(Departure {
            client,
            left,
            was_current,
            current,
        })
    }

    /// Removes the member at `slot` of `room` (its membership is already
    /// gone) and removes the room if it is then empty and not `#lobby`.
    fn remove_member(&mut self, room: RoomId, slot: usize) -> Left {
        let slot = self.demote(room, slot);
        let last = self.rooms[room.0].members.len() - 1;
        self.swap(room, slot, last);
        let r = &mut self.rooms[room.0];
        r.members.pop();
        r.operators.pop();
        let removed = (r.members.is_empty() && room != self.lobby).then(|| {
            let removed = self.rooms.remove(room.0);
            self.by_key.remove(&removed.key);
            removed
        });
        Left { room, removed }
    }

    /// Moves the member at `slot` into the current part of `room` (it is
    /// now the member's current room).
    fn promote(&mut self, room: RoomId, slot: usize) {
        let first_other = self.rooms[room.0].current;
        if slot >= first_other {
            self.swap(room, slot, first_other);
            self.rooms[room.0].current += 1;
        }
    }

    /// Moves the member at `slot` out of the current part of `room` (it is
    /// no longer the member's current room); returns its new slot.
    fn demote(&mut self, room: RoomId, slot: usize) -> usize {
        let current = self.rooms[room.0].current;
        if slot >= current {
            return slot;
        }
        self.swap(room, slot, current - 1);
        self.rooms[room.0].current -= 1;
        current - 1
    }

    /// Swaps two members of `room` and tells each membership its new slot
    /// (a client that has already let go of its membership is skipped).
    fn swap(&mut self, room: RoomId, a: usize, b: usize) {
        if a == b {
            return;
        }
        let r = &mut self.rooms[room.0];
        r.members.swap(a, b);
        r.operators.swap(a, b);
        let moved = [(r.members[a], a), (r.members[b], b)];
        for (client, slot) in moved {
            let Some(Some(memberships)) = self.clients.get_mut(client) else {
                continue;
            };
            if let Some(m) = memberships.joined.iter_mut().find(|m| m.room == room) {
                m.slot = slot;
            }
        }
    }
}

/// A typed room name (`#` optional) as the room's name (with `#`) and its
/// key (lower-cased); `None` when it breaks the name rules.
fn room_name(typed: &str) -> Option<(String, String)> {
    let bare = typed.strip_prefix('#').unwrap_or(typed);
    if !is_valid_name(bare) {
        return None;
    }
    let name = format!("#{bare}");
    let key = name.to_ascii_lowercase();
    Some((name, key))
}

#[cfg(test)]
mod tests {
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
}
