//! Topics and room operators (protocol 1.2) as the chat state words them:
//! `:topic`, `:op`, `:deop`, `:kick`, `:ban`, `:unban`, `:bans`, all in the
//! current room. The room model ([`crate::chat::rooms`]) checks who may do
//! what and applies it; these functions resolve nicks and send the lines.

use super::{Change, Chat, ClientId, Delivery, Outbox, RoomEvent};
use crate::chat::rooms::TopicEdit;
use crate::protocol::{self, Event, Reply};

impl Chat {
    /// `:topic` shows the current room's topic; `:topic TEXT` sets it and
    /// `:topic -` clears it (operators only).
    pub(super) fn topic(&mut self, id: ClientId, text: Option<&str>, out: &mut impl Outbox) {
        let Some(text) = text else {
            let line = match self.rooms.topic(id) {
                Ok((room, topic)) => {
                    let room = self.rooms.get(room).map_or("", |r| r.name());
                    match topic {
                        Some(text) => Reply::Topic { room, text }.into(),
                        None => Reply::NoTopic { room }.into(),
                    }
                }
                Err(refusal) => self.refusal(refusal, ""),
            };
            return out.reply(id, &line);
        };
        let text = protocol::sanitize(text);
        let edit = TopicEdit::parse(&text);
        let room = match self.rooms.edit_topic(id, edit) {
            Ok(room) => room,
            Err(refusal) => return out.reply(id, &self.refusal(refusal, "")),
        };
        let (name, by) = (
            self.rooms.get(room).map_or("", |r| r.name()).to_owned(),
            self.nick_of(id).to_owned(),
        );
        let event = match edit {
            TopicEdit::Set(text) => RoomEvent::TopicSet(text.to_owned()),
            TopicEdit::Clear => RoomEvent::TopicCleared,
        };
        self.share_room(&name, &by, event);
        let (name, by) = (name.as_str(), by.as_str());
        let line = match edit {
            TopicEdit::Set(text) => Event::TopicSet {
                room: name,
                by,
                text,
            },
            TopicEdit::Clear => Event::TopicCleared { room: name, by },
        }
        .into();
        self.fan_out_room(room, Some(id), &line, out);
    }

    /// `:op NICK` (`operator`) or `:deop NICK`.
    pub(super) fn set_operator(
        &mut self,
        id: ClientId,
        nick: &str,
        operator: bool,
        out: &mut impl Outbox,
    ) {
        let target = self.client_named(nick);
        if target.is_none() && self.operator_elsewhere(id, nick, operator, out) {
            return;
        }
        let result = if operator {
            self.rooms.op(id, target)
        } else {
            self.rooms.deop(id, target)
        };
        let room = match result {
            Ok(room) => room,
            Err(refusal) => return out.reply(id, &self.refusal(refusal, nick)),
        };
        let name = self.rooms.get(room).map_or("", |r| r.name()).to_owned();
        let by = self.nick_of(id).to_owned();
        let nick = target.map_or(nick, |t| self.nick_of(t)).to_owned();
        self.share(|| Change::Operator {
            room: name.clone(),
            by: by.clone(),
            nick: nick.clone(),
            operator,
        });
        let (name, by, nick) = (name.as_str(), by.as_str(), nick.as_str());
        let line = if operator {
            Event::Opped {
                room: name,
                by,
                nick,
            }
        } else {
            Event::Deopped {
                room: name,
                by,
                nick,
            }
        }
        .into();
        self.fan_out_room(room, Some(id), &line, out);
    }

    /// `:kick NICK [REASON]`: the kicked line to the room, NICK included,
    /// then NICK's new current room when it was kicked from its current one.
    pub(super) fn kick(
        &mut self,
        id: ClientId,
        nick: &str,
        reason: Option<&str>,
        out: &mut impl Outbox,
    ) {
        let target = self.client_named(nick);
        if target.is_none() && self.kick_elsewhere(id, nick, reason, out) {
            return;
        }
        let departure = match self.rooms.kick(id, target) {
            Ok(departure) => departure,
            Err(refusal) => return out.reply(id, &self.refusal(refusal, nick)),
        };
        let reason = reason.map(protocol::sanitize);
        let room = departure.left.room_name(&self.rooms).to_string();
        let (by, nick) = (
            self.nick_of(id).to_string(),
            self.nick_of(departure.client).to_string(),
        );
        self.share(|| Change::Left {
            nick: nick.clone(),
            room: room.clone(),
            reason: reason.as_ref().map(|r| r.to_string()),
            by: Some(by.clone()),
        });
        let line = Event::Kicked {
            nick: &nick,
            room: &room,
            by: &by,
            reason: reason.as_deref(),
        }
        .into();
        self.announce_departure(&departure, id, &line, out);
    }

    /// `:ban NICK`: the banned line to the room (and to NICK when it is a
    /// member), then NICK, if a member, is kicked as by `:kick`.
    pub(super) fn ban(&mut self, id: ClientId, nick: &str, out: &mut impl Outbox) {
        let target = self.client_named(nick);
        // A logged-in nick's account is banned with it.
        let account = target
            .and_then(|target| self.accounts.account(target))
            .map(str::to_string);
        let banned = match self.rooms.ban(id, nick, target, account.as_deref()) {
            Ok(banned) => banned,
            Err(refusal) => return out.reply(id, &self.refusal(refusal, nick)),
        };
        let room = match &banned.kicked {
            Some(departure) => departure.left.room_name(&self.rooms),
            None => self.rooms.get(banned.room).map_or("", |r| r.name()),
        }
        .to_string();
        let by = self.nick_of(id).to_string();
        self.share_room(&room, &by, RoomEvent::Banned(nick.to_owned()));
        let line = Event::Banned {
            nick,
            room: &room,
            by: &by,
        }
        .into();
        self.fan_out_room(banned.room, Some(id), &line, out);
        let Some(departure) = banned.kicked else {
            return;
        };
        let how = Delivery {
            answer: departure.client == id,
            prefixed: !departure.was_current,
        };
        out.send(departure.client, &line, how);
        let kicked_nick = self.nick_of(departure.client).to_string();
        self.share(|| Change::Left {
            nick: kicked_nick.clone(),
            room: room.clone(),
            reason: None,
            by: Some(by.clone()),
        });
        let kicked = Event::Kicked {
            nick: &kicked_nick,
            room: &room,
            by: &by,
            reason: None,
        }
        .into();
        self.announce_departure(&departure, id, &kicked, out);
    }

    /// `:unban NICK`.
    pub(super) fn unban(&mut self, id: ClientId, nick: &str, out: &mut impl Outbox) {
        let room = match self.rooms.unban(id, nick) {
            Ok(room) => room,
            Err(refusal) => return out.reply(id, &self.refusal(refusal, nick)),
        };
        let name = self.rooms.get(room).map_or("", |r| r.name()).to_owned();
        let by = self.nick_of(id).to_owned();
        self.share_room(&name, &by, RoomEvent::Unbanned(nick.to_owned()));
        let line = Event::Unbanned {
            nick,
            room: &name,
            by: &by,
        }
        .into();
        self.fan_out_room(room, Some(id), &line, out);
    }

    /// `:bans`: the current room's bans, sorted by lower-cased nick, for
    /// its operators.
    pub(super) fn bans(&mut self, id: ClientId, out: &mut impl Outbox) {
        let line = match self.rooms.bans(id) {
            Ok(room) => {
                let room = self.rooms.get(room);
                Reply::Bans {
                    room: room.map_or("", |r| r.name()),
                    nicks: room
                        .map(|r| r.bans().iter().map(|ban| ban.nick.as_str()).collect())
                        .unwrap_or_default(),
                }
                .into()
            }
            Err(refusal) => self.refusal(refusal, ""),
        };
        out.reply(id, &line);
    }
}
