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
        let room_id = self.rooms.find(typed)?;
        let room = self.rooms.get(room_id)?;
        let mut members: Vec<(String, bool)> = self
            .rooms
            .members_with_operators(room_id)
            .filter_map(|(member, op)| self.nick(member).map(|nick| (nick.to_string(), op)))
            .collect();
        members.sort_by_cached_key(|(nick, _)| nick.to_ascii_lowercase());
        Some(IrcChannel {
            name: room.name().to_string(),
            member: self.rooms.is_member(id, room_id),
            members,
            topic: room.topic().map(str::to_string),
            bans: room.bans().iter().map(|ban| ban.nick.clone()).collect(),
        })
    }

    /// Whether room `typed` exists (`None` if not) and client `id` is in
    /// it: what a channel message checks, without building the channel's
    /// view ([`Chat::irc_channel`]).
    pub fn irc_membership(&self, id: ClientId, typed: &str) -> Option<bool> {
        let room = self.rooms.find(typed)?;
        Some(self.rooms.is_member(id, room))
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
