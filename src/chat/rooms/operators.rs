//! Topics and room operators (protocol 1.2): who may change a room, and
//! what `:topic`, `:op`, `:deop`, `:kick`, `:ban`, `:unban` and `:bans`
//! do to it. The room model's own types; see the parent module for the
//! rules and what the chat state words.

use super::{ClientId, Departure, Refusal, RoomId, Rooms, Who};
use crate::protocol::is_valid_name;

/// The longest topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 390;

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

impl Rooms {
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

    /// Sets `room`'s topic and bans as another server of the cluster has
    /// them (no permission checked: the operator was checked there).
    /// Bans keep the account of a nick already banned here.
    pub fn set_shared_state(&mut self, room: RoomId, topic: Option<&str>, bans: &[&str]) {
        let Some(r) = self.rooms.get_mut(room.0) else {
            return;
        };
        r.topic = topic.map(str::to_string);
        let old = std::mem::take(&mut r.bans);
        let mut bans: Vec<Ban> = bans
            .iter()
            .filter(|nick| is_valid_name(nick))
            .map(|nick| {
                let nick_key = nick.to_ascii_lowercase();
                let account = old
                    .iter()
                    .find(|ban| ban.nick_key == nick_key)
                    .and_then(|ban| ban.account.clone());
                Ban {
                    nick: nick.to_string(),
                    nick_key,
                    account,
                }
            })
            .collect();
        bans.sort_by(|a, b| a.nick_key.cmp(&b.nick_key));
        bans.dedup_by(|a, b| a.nick_key == b.nick_key);
        r.bans = bans;
    }

    /// The current room of `client` when it is an operator of it (for a
    /// command on another server's member, which this model cannot name).
    pub fn operated(&self, client: ClientId) -> Result<RoomId, Refusal> {
        self.operated_room(client)
    }

    /// Sets `client`'s operator flag in `room` as another server's
    /// operator decided; `false` when it is not a member.
    pub fn set_operator_flag(&mut self, room: RoomId, client: ClientId, operator: bool) -> bool {
        let Some(slot) = self.slot(client, room) else {
            return false;
        };
        self.rooms[room.0].operators[slot] = operator;
        true
    }

    /// Takes `client` out of `room` because another server's operator
    /// banned its nick (as a kick would).
    pub fn evict(&mut self, client: ClientId, room: RoomId) -> Option<Departure> {
        self.leave(client, room)
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
}
