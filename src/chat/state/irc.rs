//! What the IRC side of the server asks of the chat (`docs/irc.md`): an
//! arrival in no room under the nick the client registered, and read-only
//! views (a channel and its members, a nick as spelled, counts) for the
//! IRC commands the line protocol has no command for (`WHO`, `ISON`,
//! `USERHOST`, `LUSERS`). Everything that changes the chat goes through
//! the line protocol's typed commands, as for every client.

use super::{Chat, ClientId, Joined, Member};
use crate::chat::rooms::{JoinOutcome, Who};

/// A channel as an IRC client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrcChannel {
    /// The room as currently spelled, with its `#`.
    pub name: String,
    /// Whether the asking client is in it.
    pub member: bool,
    /// Its members: nick as spelled and whether an operator, sorted by
    /// lower-cased nick.
    pub members: Vec<(String, bool)>,
    /// Its topic.
    pub topic: Option<String>,
    /// The nicks banned from it, as typed, in the order banned.
    pub bans: Vec<String>,
}

impl Chat {
    /// An IRC client registered as `nick` (valid, checked free by the
    /// caller): it is in the chat under that nick, in no room, and nobody
    /// is told. `false` (and nothing changes) when the nick is taken.
    pub fn connect_irc(&mut self, id: ClientId, nick: &str) -> bool {
        let key = nick.to_ascii_lowercase();
        if self.nicks.contains_key(&key) {
            return false;
        }
        if self.members.len() <= id {
            self.members.resize_with(id + 1, || None);
        }
        self.nicks.insert(key, id);
        self.rooms.arrive_nowhere(id);
        self.members[id] = Some(Member::Joined(Joined {
            nick: nick.to_string(),
            tags: false,
        }));
        true
    }

    /// Clients in the chat (welcomed, any protocol).
    pub fn member_count(&self) -> usize {
        self.members
            .iter()
            .filter(|m| matches!(m, Some(Member::Joined(_))))
            .count()
    }

    /// Clients in the chat logged in to a server administrator's account
    /// (`LUSERS`' operators online).
    pub fn admins_online(&self) -> usize {
        (0..self.members.len())
            .filter(|&id| matches!(self.members[id], Some(Member::Joined(_))) && self.is_admin(id))
            .count()
    }

    /// Rooms that have members.
    pub fn rooms_with_members(&self) -> usize {
        self.rooms
            .iter()
            .filter(|(_, room)| !room.is_empty())
            .count()
    }

    /// The client with nick `nick` (any letter case) and its nick as it
    /// spells it.
    pub fn find_nick(&self, nick: &str) -> Option<(ClientId, &str)> {
        let id = self.client_named(nick)?;
        Some((id, self.nick(id)?))
    }

    /// Channel `typed` (with its `#`) as client `id` sees it; `None` when
    /// no such room exists.
    pub fn irc_channel(&self, id: ClientId, typed: &str) -> Option<IrcChannel> {
        let here =
            (self.rooms.find(typed)).and_then(|room_id| Some((room_id, self.rooms.get(room_id)?)));
        // With `--cluster`, a room may have members only on other servers.
        let name = match here {
            Some((_, room)) => room.name().to_string(),
            None => self.remote_room_name(typed)?.to_string(),
        };
        let key = crate::chat::remote::room_key(&name);
        let mut members: Vec<(String, bool)> = here
            .into_iter()
            .flat_map(|(room_id, _)| self.rooms.members_with_operators(room_id))
            .filter_map(|(member, op)| self.nick(member).map(|nick| (nick.to_string(), op)))
            .collect();
        for (nick, op) in self.remote_members(&key) {
            if !members.iter().any(|(n, _)| n.eq_ignore_ascii_case(nick)) {
                members.push((nick.to_string(), op));
            }
        }
        members.sort_by_cached_key(|(nick, _)| nick.to_ascii_lowercase());
        // (This server's room's when it has one, else the cluster's.)
        let state = self.room_state(&key);
        Some(IrcChannel {
            name,
            member: here.is_some_and(|(room_id, _)| self.rooms.is_member(id, room_id)),
            members,
            topic: state.topic,
            bans: state.bans,
        })
    }

    /// Whether room `typed` exists (`None` if not) and client `id` is in
    /// it: what a channel message checks, without building the channel's
    /// view ([`Chat::irc_channel`]).
    pub fn irc_membership(&self, id: ClientId, typed: &str) -> Option<bool> {
        let room = self.rooms.find(typed)?;
        Some(self.rooms.is_member(id, room))
    }

    /// `LIST`: every room with members, as spelled, with its member count
    /// and topic, sorted by lower-cased name.
    pub fn irc_list(&self) -> Vec<(String, usize, Option<String>)> {
        let mut rooms: Vec<(String, usize, Option<String>)> = self
            .rooms
            .iter()
            .filter(|(_, room)| !room.is_empty())
            .map(|(_, room)| {
                let topic = room.topic().map(str::to_string);
                (room.name().to_string(), room.len(), topic)
            })
            .collect();
        // With `--cluster`, every server's rooms and members (as `:rooms`).
        for (key, name, count) in self.remote_rooms() {
            let here = rooms
                .iter_mut()
                .find(|(n, _, _)| crate::chat::remote::room_key(n) == key);
            match here {
                Some(room) => room.1 += count,
                None => rooms.push((name.to_string(), count, self.room_state(key).topic)),
            }
        }
        rooms.sort_by_cached_key(|(name, _, _)| name.to_ascii_lowercase());
        rooms
    }

    /// The rooms client `id` is in, as spelled, each with whether it is an
    /// operator there.
    pub fn rooms_of_member(&self, id: ClientId) -> Vec<(String, bool)> {
        self.rooms
            .rooms_of(id)
            .filter_map(|room_id| {
                let room = self.rooms.get(room_id)?;
                Some((room.name().to_string(), self.rooms.is_operator(room_id, id)))
            })
            .collect()
    }

    /// Makes room `typed`, which client `id` is in, its current room,
    /// silently: an IRC command names its channel, and the line protocol's
    /// commands it maps onto act on the current room. `false` when `id`
    /// is not in such a room.
    pub fn make_current(&mut self, id: ClientId, typed: &str) -> bool {
        let Some(room) = self.rooms.find(typed) else {
            return false;
        };
        if !self.rooms.is_member(id, room) {
            return false;
        }
        if self.rooms.current(id) == Some(room) {
            return true;
        }
        let Some(Some(Member::Joined(me))) = self.members.get(id) else {
            return false;
        };
        let who = Who {
            nick: &me.nick,
            account: self.accounts.account(id),
        };
        matches!(
            self.rooms.join(id, typed, who),
            JoinOutcome::Switched(_) | JoinOutcome::AlreadyIn(_)
        )
    }
}
