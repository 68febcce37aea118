//! Topics and bans across servers (with `--cluster`): an operator's change
//! on one server is published with the room's whole shared state
//! ([`RoomState`]); the others set it on their room (or keep it for when
//! the room is made there), announce it to their members, and take out a
//! member of theirs whose nick was banned. Plain data, as the rest of the
//! chat state.

use super::cluster::Change;
use super::{Chat, ClientId, Outbox};
use crate::chat::remote::room_key;
use crate::chat::rooms::Refusal;
use crate::chat::rooms::RoomId;
use crate::protocol::{Event, ServerLine};

/// What an operator did to a room, as the other servers announce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// `:topic TEXT`.
    TopicSet(String),
    /// `:topic -`.
    TopicCleared,
    /// `:ban NICK`.
    Banned(String),
    /// `:unban NICK`.
    Unbanned(String),
}

/// A room's state that every server shares: its topic and banned nicks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomState {
    /// The topic, if any.
    pub topic: Option<String>,
    /// The banned nicks, as typed.
    pub bans: Vec<String>,
}

impl RoomState {
    /// One line of text (no `\n`: topics and nicks hold no control
    /// character): `-` or `T` and the topic, then each ban, separated by
    /// `\x1e`.
    pub fn encode(&self) -> String {
        let mut text = match &self.topic {
            Some(topic) => format!("T{topic}"),
            None => "-".to_owned(),
        };
        for ban in &self.bans {
            text.push('\x1e');
            text.push_str(ban);
        }
        text
    }

    /// Reads what [`RoomState::encode`] wrote.
    pub fn decode(text: &str) -> Option<RoomState> {
        let mut fields = text.split('\x1e');
        let topic = match fields.next()? {
            "-" => None,
            topic => Some(topic.strip_prefix('T')?.to_owned()),
        };
        let bans = fields
            .filter(|nick| crate::protocol::is_valid_name(nick))
            .map(str::to_owned)
            .collect();
        Some(RoomState { topic, bans })
    }
}

/// `* BY made NICK an operator of ROOM` or its opposite.
fn operator_line<'a>(room: &'a str, by: &'a str, nick: &'a str, operator: bool) -> ServerLine<'a> {
    if operator {
        Event::Opped { room, by, nick }.into()
    } else {
        Event::Deopped { room, by, nick }.into()
    }
}

/// No client: the asker of an announcement no client asked for.
const NO_ONE: ClientId = usize::MAX;

impl Chat {
    /// The shared state of the room with key `key`: this server's room's
    /// when it exists here, else the last heard.
    pub(super) fn room_state(&self, key: &str) -> RoomState {
        if let Some(room) = self.rooms.find(key).and_then(|room| self.rooms.get(room)) {
            return RoomState {
                topic: room.topic().map(str::to_owned),
                bans: room.bans().iter().map(|ban| ban.nick.clone()).collect(),
            };
        }
        self.shared
            .as_ref()
            .and_then(|shared| shared.rooms.get(key).cloned())
            .unwrap_or_default()
    }

    /// An operator here changed `room`'s topic or bans: the change goes to
    /// the other servers with the room's state now (`banned` is added to
    /// its bans when the ban's kick emptied the room here).
    pub(super) fn share_room(&mut self, room: &str, by: &str, event: RoomEvent) {
        if self.shared.is_none() {
            return;
        }
        let key = room_key(room);
        let mut state = self.room_state(&key);
        if let RoomEvent::Banned(nick) = &event {
            if !state.bans.iter().any(|b| b.eq_ignore_ascii_case(nick)) {
                state.bans.push(nick.clone());
            }
        }
        if let Some(shared) = &mut self.shared {
            shared.rooms.insert(key, state.clone());
            shared.changes.push(Change::Room {
                room: room.to_owned(),
                by: by.to_owned(),
                event,
                state,
            });
        }
    }

    /// Another server's operator changed `room`: kept, set on the room
    /// here, announced to its members here; a member here whose nick was
    /// banned is taken out of it.
    pub(super) fn remote_room_change(
        &mut self,
        room: &str,
        by: &str,
        event: RoomEvent,
        state: RoomState,
        out: &mut impl Outbox,
    ) {
        let key = room_key(room);
        if let Some(shared) = &mut self.shared {
            shared.rooms.insert(key.clone(), state.clone());
        }
        let Some(id) = self.rooms.find(&key) else {
            return;
        };
        let bans: Vec<&str> = state.bans.iter().map(String::as_str).collect();
        self.rooms
            .set_shared_state(id, state.topic.as_deref(), &bans);
        let name = self.rooms.get(id).map_or("", |r| r.name()).to_owned();
        let line: ServerLine<'_> = match &event {
            RoomEvent::TopicSet(text) => Event::TopicSet {
                room: &name,
                by,
                text,
            },
            RoomEvent::TopicCleared => Event::TopicCleared { room: &name, by },
            RoomEvent::Banned(nick) => Event::Banned {
                nick,
                room: &name,
                by,
            },
            RoomEvent::Unbanned(nick) => Event::Unbanned {
                nick,
                room: &name,
                by,
            },
        }
        .into();
        self.fan_out_room(id, None, &line, out);
        if let RoomEvent::Banned(nick) = &event {
            self.evict(id, &name, nick, by, None, out);
        }
    }

    /// A member here banned from (or kicked out of) `room` by another
    /// server's operator leaves it as if kicked here (and the others hear
    /// of it from here).
    fn evict(
        &mut self,
        room: RoomId,
        name: &str,
        nick: &str,
        by: &str,
        reason: Option<&str>,
        out: &mut impl Outbox,
    ) {
        let Some(client) = self.client_named(nick) else {
            return;
        };
        let Some(departure) = self.rooms.evict(client, room) else {
            return;
        };
        let kicked_nick = self.nick_of(client).to_owned();
        self.share(|| Change::Left {
            nick: kicked_nick.clone(),
            room: name.to_owned(),
            reason: reason.map(str::to_owned),
            by: Some(by.to_owned()),
        });
        let line = Event::Kicked {
            nick: &kicked_nick,
            room: name,
            by,
            reason,
        }
        .into();
        self.announce_departure(&departure, NO_ONE, &line, out);
    }

    /// `:op NICK` or `:deop NICK` by `id` where NICK is another server's
    /// member of the current room: checked here (an operator of it, NICK
    /// a member there), announced here, and sent to every server.
    /// `false` when NICK is no other server's member of the room (the
    /// chat answers as alone).
    pub(super) fn operator_elsewhere(
        &mut self,
        id: ClientId,
        nick: &str,
        operator: bool,
        out: &mut impl Outbox,
    ) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        let Some(room) = self.rooms.current(id) else {
            return false;
        };
        let key = self.rooms.get(room).map_or("", |r| r.key()).to_owned();
        let Some(now) = shared.remote.is_op(nick, &key) else {
            return false;
        };
        if let Err(refusal) = self.rooms.operated(id) {
            out.reply(id, &self.refusal(refusal, nick));
            return true;
        }
        if now == operator {
            let refusal = if operator {
                Refusal::AlreadyOperator(room)
            } else {
                Refusal::TargetNotOperator(room)
            };
            out.reply(id, &self.refusal(refusal, nick));
            return true;
        }
        if let Some(shared) = &mut self.shared {
            shared.remote.set_op(nick, &key, operator);
        }
        let name = self.rooms.get(room).map_or("", |r| r.name()).to_owned();
        let by = self.nick_of(id).to_owned();
        let spelled = self
            .remote_members(&key)
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(nick))
            .map_or(nick.to_owned(), |(n, _)| n.to_owned());
        self.share(|| Change::Operator {
            room: name.clone(),
            by: by.clone(),
            nick: spelled.clone(),
            operator,
        });
        let line = operator_line(&name, &by, &spelled, operator);
        self.fan_out_room(room, Some(id), &line, out);
        true
    }

    /// `:kick NICK [REASON]` by `id` where NICK is another server's member
    /// of the current room: checked here, sent to NICK's server, which
    /// takes it out; every server (this one included) announces the kick
    /// when that server publishes it. `false` when NICK is no other
    /// server's member of the room (the chat answers as alone).
    pub(super) fn kick_elsewhere(
        &mut self,
        id: ClientId,
        nick: &str,
        reason: Option<&str>,
        out: &mut impl Outbox,
    ) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        let Some(room) = self.rooms.current(id) else {
            return false;
        };
        let key = self.rooms.get(room).map_or("", |r| r.key()).to_owned();
        if shared.remote.is_op(nick, &key).is_none() {
            return false;
        }
        if let Err(refusal) = self.rooms.operated(id) {
            out.reply(id, &self.refusal(refusal, nick));
            return true;
        }
        let name = self.rooms.get(room).map_or("", |r| r.name()).to_owned();
        let by = self.nick_of(id).to_owned();
        let reason = reason.map(|r| crate::protocol::sanitize(r).into_owned());
        self.share(|| Change::Kick {
            room: name,
            by,
            nick: nick.to_owned(),
            reason,
        });
        true
    }

    /// Another server's operator kicked `nick` out of `room`: taken out
    /// here when it is a member here (nothing otherwise: its server does).
    pub(super) fn remote_kick(
        &mut self,
        room: &str,
        by: &str,
        nick: &str,
        reason: Option<&str>,
        out: &mut impl Outbox,
    ) {
        let Some(id) = self.rooms.find(room) else {
            return;
        };
        let name = self.rooms.get(id).map_or("", |r| r.name()).to_owned();
        self.evict(id, &name, nick, by, reason, out);
    }

    /// Another server's operator made `nick` an operator of `room`, or
    /// not: set here when `nick` is a member here (and its entry in Redis
    /// rewritten), noted in the mirror otherwise, announced here.
    pub(super) fn remote_operator(
        &mut self,
        room: &str,
        by: &str,
        nick: &str,
        operator: bool,
        out: &mut impl Outbox,
    ) {
        let key = room_key(room);
        let local = self.client_named(nick);
        match (local, self.rooms.find(&key)) {
            (Some(client), Some(id)) => {
                if self.rooms.set_operator_flag(id, client, operator) {
                    let nick = nick.to_owned();
                    self.share(|| Change::Refresh { nick });
                }
            }
            _ => {
                if let Some(shared) = &mut self.shared {
                    shared.remote.set_op(nick, &key, operator);
                }
            }
        }
        if let Some(id) = self.rooms.find(&key) {
            let name = self.rooms.get(id).map_or("", |r| r.name()).to_owned();
            self.fan_out_room(id, None, &operator_line(&name, by, nick, operator), out);
        }
    }

    /// Every room's shared state as read from Redis after a (re)connect:
    /// kept, and set on the rooms here (nothing announced).
    pub fn remote_rooms_state(&mut self, rooms: Vec<(String, RoomState)>) {
        for (key, state) in rooms {
            if let Some(id) = self.rooms.find(&key) {
                let bans: Vec<&str> = state.bans.iter().map(String::as_str).collect();
                self.rooms
                    .set_shared_state(id, state.topic.as_deref(), &bans);
            }
            if let Some(shared) = &mut self.shared {
                shared.rooms.insert(key, state);
            }
        }
    }

    /// A room just made here by `creator`: when it has members on other
    /// servers (it was made there first) it takes the topic and bans the
    /// cluster has for it and its creator is not its operator; otherwise
    /// it is new everywhere, as a room made on one server: no topic, no
    /// bans (what the cluster kept of an earlier room of that name is
    /// dropped on every server, [`Change::Made`]).
    pub(super) fn room_made_here(&mut self, room: RoomId, creator: ClientId) {
        let Some(key) = self.rooms.get(room).map(|r| r.key().to_owned()) else {
            return;
        };
        let founded = self.remote_members(&key).is_empty();
        if !founded {
            self.rooms.set_operator_flag(room, creator, false);
        }
        let maker = self.nick_of(creator).to_owned();
        let name = self.rooms.get(room).map_or("", |r| r.name()).to_owned();
        if let Some(shared) = &mut self.shared {
            shared.made.push(key.clone());
            if founded {
                shared.founded.push((key.clone(), maker));
                if shared.rooms.remove(&key).is_some() {
                    shared.changes.push(Change::Made { room: name });
                }
                return;
            }
        }
        let Some(state) = self
            .shared
            .as_ref()
            .and_then(|s| s.rooms.get(&key))
            .cloned()
        else {
            return;
        };
        let bans: Vec<&str> = state.bans.iter().map(String::as_str).collect();
        self.rooms
            .set_shared_state(room, state.topic.as_deref(), &bans);
    }

    /// Another server made room `key` a moment before this one did (both
    /// before either heard of the other's member; its claim in Redis came
    /// first): `maker`, who made it here, is not its operator after all.
    /// Nothing is announced; the other servers learn it with its
    /// membership. `false` when nothing changed (the maker left, or is no
    /// operator any more).
    pub fn made_elsewhere_first(&mut self, key: &str, maker: &str) -> bool {
        let (Some(room), Some(client)) = (self.rooms.find(key), self.client_named(maker)) else {
            return false;
        };
        if !self.rooms.is_operator(room, client) {
            return false;
        }
        self.rooms.set_operator_flag(room, client, false);
        let name = self.rooms.get(room).map_or("", |r| r.name()).to_owned();
        let nick = maker.to_owned();
        self.share(|| Change::NotMaker { room: name, nick });
        true
    }

    /// Whether `nick` is banned from the room named `name` by the
    /// cluster's last word on it, when the room does not exist here (a
    /// room that does checks its own bans).
    pub(super) fn banned_elsewhere(&self, name: &str, nick: &str) -> bool {
        let key = room_key(name);
        // (No member anywhere: the room is gone, and its bans with it.)
        if self.rooms.find(&key).is_some() || self.remote_members(&key).is_empty() {
            return false;
        }
        self.shared
            .as_ref()
            .and_then(|shared| shared.rooms.get(&key))
            .is_some_and(|state| state.bans.iter().any(|b| b.eq_ignore_ascii_case(nick)))
    }
}
