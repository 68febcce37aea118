//! Topics and bans across servers (with `--cluster`): an operator's change
//! on one server is published with the room's whole shared state
//! ([`RoomState`]); the others set it on their room (or keep it for when
//! the room is made there), announce it to their members, and take out a
//! member of theirs whose nick was banned. Plain data, as the rest of the
//! chat state.

use super::cluster::{Change, RoomEvent, RoomState};
use super::{Chat, ClientId, Outbox};
use crate::chat::remote::room_key;
use crate::chat::rooms::RoomId;
use crate::protocol::{Event, ServerLine};

/// No client: the asker of an announcement no client asked for.
const NO_ONE: ClientId = usize::MAX;

impl Chat {
    /// The shared state of the room with key `key`: this server's room's
    /// when it exists here, else the last heard.
    fn room_state(&self, key: &str) -> RoomState {
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
            self.evict_banned(id, &name, nick, by, out);
        }
    }

    /// A member here banned from `room` by another server's operator
    /// leaves it as if kicked (and the others hear of it from here).
    fn evict_banned(
        &mut self,
        room: RoomId,
        name: &str,
        nick: &str,
        by: &str,
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
            reason: None,
            by: Some(by.to_owned()),
        });
        let line = Event::Kicked {
            nick: &kicked_nick,
            room: name,
            by,
            reason: None,
        }
        .into();
        self.announce_departure(&departure, NO_ONE, &line, out);
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

    /// A room just made here takes the topic and bans the cluster has for
    /// it.
    pub(super) fn room_made_here(&mut self, room: RoomId) {
        let Some(key) = self.rooms.get(room).map(|r| r.key().to_owned()) else {
            return;
        };
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

    /// Whether `nick` is banned from the room named `name` by the
    /// cluster's last word on it, when the room does not exist here (a
    /// room that does checks its own bans).
    pub(super) fn banned_elsewhere(&self, name: &str, nick: &str) -> bool {
        let key = room_key(name);
        if self.rooms.find(&key).is_some() {
            return false;
        }
        self.shared
            .as_ref()
            .and_then(|shared| shared.rooms.get(&key))
            .is_some_and(|state| state.bans.iter().any(|b| b.eq_ignore_ascii_case(nick)))
    }
}
