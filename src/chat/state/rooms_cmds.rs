//! The room commands of protocol 1.2, as the chat state words them: chat
//! and `:me` to the current room, `:join` (keeping the other rooms),
//! `:part`, `:users [ROOM]`, `:rooms`, `:history`. The room model
//! ([`crate::chat::rooms`]) decides; these functions say what each result
//! means to whom.

use super::{
    history_answer, record_room_line, Awaited, Change, Chat, ChatEvent, ClientId, HistoryWait,
    Member, Outbox, Outcome,
};
use crate::chat::remote::room_key;
use crate::chat::rooms::{JoinOutcome, Refusal, Who};
use crate::protocol::{self, Error, Event, Reply, ServerLine, Stamp};

impl Chat {
    /// A chat line (or a `:me` action, `action`) to the sender's current
    /// room: the hot path. The line goes into `:history` from the moment
    /// it is accepted, which gives it its id and time; then one typed
    /// line, one fan-out (plain to the members whose current room it is,
    /// prefixed to the others, tagged to those with tags on, the sender
    /// included when its tags are on).
    pub(super) fn say(
        &mut self,
        id: ClientId,
        text: &str,
        action: bool,
        out: &mut impl Outbox,
    ) -> Outcome {
        let Some(Some(Member::Joined(me))) = self.members.get(id) else {
            return Outcome::CONTINUE;
        };
        let Some(room) = self.rooms.current(id).and_then(|room| self.rooms.get(room)) else {
            out.reply(id, &Error::NotInAnyRoom.into());
            return Outcome::CONTINUE;
        };
        let text = protocol::sanitize(text);
        let (from, in_room) = (me.nick.as_str(), Some(room.name()));
        let said = |stamp| -> ServerLine<'_> {
            if action {
                Event::Acted {
                    from,
                    room: in_room,
                    text: &text,
                    stamp,
                }
            } else {
                Event::Said {
                    from,
                    room: in_room,
                    text: &text,
                    stamp,
                }
            }
            .into()
        };
        // Into history first, from the moment it is accepted: that gives
        // the line its id and time (its `id` and `time` tags). The history
        // file keeps the line as the line dialect delivered it to the
        // members whose current room it was (no prefix).
        let (line_id, time_ms) = record_room_line(
            &mut self.history,
            &mut self.line,
            room.key(),
            &me.nick,
            &said(None),
        );
        let stamp = Stamp {
            id: u64::try_from(line_id).unwrap_or_default(),
            time_ms,
        };
        let line = said(Some(stamp));
        // With tags on the sender gets it too: its echo, as an answer (so
        // with its label).
        let (except, asker) = if me.tags {
            (None, Some(id))
        } else {
            (Some(id), None)
        };
        out.sender_account(self.accounts.account(id));
        out.rendered_plain(&self.line);
        let delivered = out.fan_out(
            room.current_members(),
            room.other_members(),
            except,
            asker,
            &line,
        );
        let recipients = delivered - usize::from(me.tags);
        out.note(ChatEvent::RoomLine { recipients });
        Outcome {
            recorded: 1,
            ..Outcome::CONTINUE
        }
    }

    /// `:join ROOM`: enter it (keeping the other rooms) and make it
    /// current, or make a room one is already in current.
    pub(super) fn join(&mut self, id: ClientId, typed: &str, out: &mut impl Outbox) {
        let Some(Some(Member::Joined(me))) = self.members.get(id) else {
            return;
        };
        let who = Who {
            nick: &me.nick,
            account: self.accounts.account(id),
        };
        let bare = typed.strip_prefix('#').unwrap_or(typed);
        if self.banned_elsewhere(typed, &me.nick) {
            return out.reply(id, &Error::BannedFrom(bare).into());
        }
        match self.rooms.join(id, typed, who) {
            JoinOutcome::Joined { room, created } => {
                if created {
                    self.room_made_here(room, id);
                }
                let Some(Some(Member::Joined(me))) = self.members.get(id) else {
                    return;
                };
                let Some(r) = self.rooms.get(room) else {
                    return;
                };
                if created {
                    self.history.room_created(r.key());
                    if self.shared.is_some() {
                        // With `--cluster` its older lines come from its
                        // stream: a `:history` waits for them.
                        self.history.await_backlog(r.key());
                    }
                }
                let line = Event::Joined {
                    nick: &me.nick,
                    room: r.name(),
                }
                .into();
                let operator = self.rooms.is_operator(room, id);
                if let Some(shared) = &mut self.shared {
                    shared.changes.push(Change::Joined {
                        nick: me.nick.clone(),
                        room: format!("{}{}", if operator { "@" } else { "" }, r.name()),
                    });
                }
                // The joiner is in the room's current part: its copy has
                // no prefix, and answers its `:join`.
                out.sender_account(self.accounts.account(id));
                self.fan_out_room(room, Some(id), &line, out);
                if let Some(text) = r.topic() {
                    let room = r.name();
                    out.reply(id, &Reply::Topic { room, text }.into());
                }
            }
            JoinOutcome::Switched(room) => {
                let room = self.rooms.get(room).map_or("", |r| r.name());
                out.reply(id, &Reply::CurrentRoom { room }.into());
            }
            JoinOutcome::AlreadyIn(_) => out.reply(id, &Error::AlreadyIn(bare).into()),
            JoinOutcome::Banned(_) => out.reply(id, &Error::BannedFrom(bare).into()),
            JoinOutcome::TooManyRooms { max } => out.reply(id, &Error::TooManyRooms { max }.into()),
            JoinOutcome::InvalidName => out.reply(id, &Error::InvalidName(typed).into()),
            JoinOutcome::NotInChat => {}
        }
    }

    /// `:part [ROOM [REASON]]`: leaves ROOM, the current room by default.
    pub(super) fn part(
        &mut self,
        id: ClientId,
        typed: Option<&str>,
        reason: Option<&str>,
        out: &mut impl Outbox,
    ) {
        let departure = match self.rooms.part(id, typed) {
            Ok(departure) => departure,
            Err(refusal) => {
                return out.reply(id, &self.refusal(refusal, typed.unwrap_or_default()));
            }
        };
        let reason = reason.map(protocol::sanitize);
        let nick = self.nick_of(id).to_string();
        let room = departure.left.room_name(&self.rooms).to_string();
        self.share(|| Change::Left {
            nick: nick.clone(),
            room: room.clone(),
            reason: reason.as_ref().map(|r| r.to_string()),
            by: None,
        });
        let line = Event::Left {
            nick: &nick,
            room: &room,
            reason: reason.as_deref(),
            quit: false,
        }
        .into();
        self.announce_departure(&departure, id, &line, out);
    }

    /// `:users [ROOM]`: the members of ROOM or of the current room, sorted
    /// by lower-cased nick, operators with `@`. With `--cluster`, the
    /// other servers' members too (a room only they are in included).
    pub(super) fn list_users(&mut self, id: ClientId, typed: Option<&str>, out: &mut impl Outbox) {
        let (room, key, name) = match self.rooms.users_room(id, typed) {
            Ok(room) => {
                let r = self.rooms.get(room);
                let key = r.map_or(String::new(), |r| r.key().to_owned());
                (Some(room), key, r.map_or("", |r| r.name()))
            }
            Err(Refusal::NoSuchRoom) => match typed.and_then(|t| self.remote_room_name(t)) {
                Some(name) => (None, room_key(name), name),
                None => {
                    return out.reply(
                        id,
                        &self.refusal(Refusal::NoSuchRoom, typed.unwrap_or_default()),
                    )
                }
            },
            Err(refusal) => {
                return out.reply(id, &self.refusal(refusal, typed.unwrap_or_default()));
            }
        };
        let mut members: Vec<(&str, bool)> = room
            .into_iter()
            .flat_map(|room| self.rooms.members_with_operators(room))
            .filter_map(|(member, operator)| match &self.members[member] {
                Some(Member::Joined(joined)) => Some((joined.nick.as_str(), operator)),
                _ => None,
            })
            .collect();
        for (nick, operator) in self.remote_members(&key) {
            if !members.iter().any(|(n, _)| n.eq_ignore_ascii_case(nick)) {
                members.push((nick, operator));
            }
        }
        members.sort_by_cached_key(|(nick, _)| nick.to_ascii_lowercase());
        let shown: Vec<String> = members
            .iter()
            .map(|&(nick, operator)| {
                if operator {
                    format!("@{nick}")
                } else {
                    nick.to_string()
                }
            })
            .collect();
        let nicks = shown.iter().map(String::as_str).collect();
        out.reply(id, &Reply::Users { room: name, nicks }.into());
    }

    /// `:rooms`: every room with its member count, sorted by name. With
    /// `--cluster`, every server's rooms and members.
    pub(super) fn list_rooms(&mut self, id: ClientId, out: &mut impl Outbox) {
        let mut rooms: Vec<(&str, &str, usize)> = self
            .rooms
            .iter()
            .map(|(_, room)| (room.key(), room.name(), room.len()))
            .collect();
        for (key, name, count) in self.remote_rooms() {
            match rooms.iter_mut().find(|(k, _, _)| *k == key) {
                Some(room) => room.2 += count,
                None => rooms.push((key, name, count)),
            }
        }
        rooms.sort_by_cached_key(|(_, name, _)| name.to_ascii_lowercase());
        let rooms = rooms
            .into_iter()
            .map(|(_, name, count)| (name, count))
            .collect();
        out.reply(id, &Reply::Rooms { rooms }.into());
    }

    /// `:history [N]`: the header, then the current room's newest N lines
    /// from memory, oldest first; a last `! history incomplete: ...` line
    /// when some of the room's lines could not be written to the history
    /// file.
    pub(super) fn history(
        &mut self,
        id: ClientId,
        arg: Option<&str>,
        out: &mut impl Outbox,
    ) -> Outcome {
        let Some(room) = self.rooms.current(id).and_then(|room| self.rooms.get(room)) else {
            out.reply(id, &self.refusal(Refusal::NoCurrentRoom, ""));
            return Outcome::CONTINUE;
        };
        let Some(n) = protocol::history_count(arg, self.history.keep()) else {
            out.reply(id, &Error::Usage(protocol::HISTORY_USAGE).into());
            return Outcome::CONTINUE;
        };
        if self.history.is_loading(room.key()) {
            // Its older lines are on their way from the history file.
            self.history_waits.push(HistoryWait {
                id,
                room_key: room.key().to_string(),
                room_name: room.name().to_string(),
                n,
                label: self.label,
                mark: self.history.wait_mark(room.key()),
            });
            return Outcome {
                waits_for: Some(Awaited::HistoryTail),
                ..Outcome::CONTINUE
            };
        }
        history_answer(&self.history, room.key(), room.name(), n, None, |line| {
            out.reply(id, line)
        });
        Outcome::CONTINUE
    }
}
