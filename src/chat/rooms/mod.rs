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

use crate::chat::ClientId;
use crate::protocol::{is_valid_name, LOBBY};
use slab::Slab;
use std::collections::HashMap;

mod operators;

pub use operators::{Ban, Banned, TopicEdit, MAX_TOPIC_BYTES};

/// The protocol's default per-client room limit (`--max-rooms-per-client`).
pub const DEFAULT_ROOMS_PER_CLIENT: usize = 20;

/// The lowest per-client room limit the protocol allows an operator to set.
pub const MIN_ROOMS_PER_CLIENT: usize = 20;

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

    /// A welcomed client enters the chat in no room (an IRC client: IRC
    /// clients start in no channel). A client already in the chat is left
    /// as it is.
    pub fn arrive_nowhere(&mut self, client: ClientId) {
        if self.clients.len() <= client {
            self.clients.resize_with(client + 1, || None);
            self.marks.resize(client + 1, 0);
        }
        if self.clients[client].is_none() {
            self.clients[client] = Some(Memberships::default());
        }
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

    fn memberships(&self, client: ClientId) -> Option<&Memberships> {
        self.clients.get(client)?.as_ref()
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
mod tests;
