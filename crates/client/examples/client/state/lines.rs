//! The server's lines: split from their tags, recognised with the
//! protocol's recogniser ([`loopchat_protocol::recognise`]) and placed in
//! the buffer they belong to.

use loopchat_protocol::tags::{parse_server_line, ParsedTags};
use loopchat_protocol::{recognise, recognise_history, Error, Event, Reply, ServerLine};

use super::{is_guest, Kind, Purpose, State, Status, Target};
use super::{HISTORY_ON_JOIN, HISTORY_ON_REJOIN};
use crate::text::for_screen;
use crate::KEEPALIVE_TOKEN;

/// One server line's tags, as the handlers need them.
struct Tagged {
    at_ms: i64,
    room: Option<String>,
    id: Option<u64>,
    to: Option<String>,
    purpose: Option<Purpose>,
}

impl State {
    /// A server line arrived; returns the lines to send in answer.
    pub fn on_line(&mut self, raw: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(raw);
        // A prefix that cannot be read: the line is shown whole.
        let (tags, body) = parse_server_line(&text).unwrap_or((ParsedTags::default(), &text));
        let line = for_screen(body);
        let tagged = Tagged {
            at_ms: tags.time_ms.unwrap_or_else(State::now_ms),
            room: tags.room.as_deref().map(for_screen),
            id: tags.id,
            to: tags.to.as_deref().map(for_screen),
            purpose: self.purpose(tags.label.as_deref()),
        };
        let me = self.e2e_name();
        if let Some(taken) = self.secure.on_line(&me, &line) {
            return self.taken(taken);
        }
        let mut send: Vec<String> = self.secure.on_login(&line).into_iter().collect();
        if self.account_line(&line, &mut send) {
            return send;
        }
        match recognise(&line) {
            Some(ServerLine::Error(error)) => self.on_error(&error, &line, tagged, &mut send),
            Some(ServerLine::Event(event)) => self.on_event(event, &line, tagged, &mut send),
            Some(ServerLine::Reply(reply)) => self.on_reply(reply, &line, tagged, &mut send),
            // A line this version does not know: shown as what its first
            // character says it is.
            None => {
                let at = self.answer_buffer(&tagged);
                let kind = if line.starts_with("! ") {
                    Kind::Error(line.clone())
                } else {
                    Kind::Info(line.clone())
                };
                self.put(at, kind, tagged.at_ms, None, false);
            }
        }
        send
    }

    /// Where an answer goes: the buffer it was typed in, else the one on
    /// screen.
    fn answer_buffer(&mut self, tagged: &Tagged) -> usize {
        match &tagged.purpose {
            Some(Purpose::Typed { target }) => self.find(target).unwrap_or(self.view),
            _ => self.view,
        }
    }

    /// The room a room line happened in: its `room` tag, its `[#room] `
    /// prefix, else (no tags) the current room.
    fn line_room(&self, tagged: &Tagged, named: Option<&str>) -> Option<String> {
        tagged
            .room
            .clone()
            .or_else(|| named.map(str::to_string))
            .or_else(|| self.room.clone())
    }

    fn on_error(&mut self, error: &Error<'_>, line: &str, t: Tagged, send: &mut Vec<String>) {
        match (&t.purpose, error) {
            (Some(Purpose::Own { seq }), _) => {
                let seq = *seq;
                self.set_status(seq, Status::Refused(line.to_string()), None, None);
                return;
            }
            (_, Error::UnknownCommand(":tags")) if self.tags.is_none() => {
                self.tags_known(false, send);
                self.notice("this server has no tags: lines are placed by their [#room] prefix");
                return;
            }
            (Some(Purpose::History), Error::UnknownCommand(_)) => {
                self.has_history = Some(false);
                return;
            }
            // What we asked on our own is nobody's business.
            (Some(Purpose::Users | Purpose::History | Purpose::Rooms), _) => return,
            (_, Error::UnknownCommand(":history")) if self.tags == Some(false) => {
                self.has_history = Some(false);
            }
            (_, Error::NickReserved(_) | Error::NickTaken(_) | Error::InvalidName(_)) => {
                // A refused `:nick`: our lines go out under the old one,
                // which a reconnect takes again unless it was a guest nick.
                self.want_nick = self.nick.clone().filter(|n| !is_guest(n));
            }
            (_, Error::WrongPassword) if self.auth_sent => {
                // Do not try it again on the next reconnect.
                self.password = None;
                self.auth_sent = false;
            }
            _ => {}
        }
        let at = self.answer_buffer(&t);
        self.put(at, Kind::Error(line.to_string()), t.at_ms, None, false);
    }

    fn on_event(&mut self, event: Event<'_>, line: &str, t: Tagged, send: &mut Vec<String>) {
        match event {
            Event::Said {
                from, room, text, ..
            } => {
                let kind = Kind::Chat {
                    nick: from.to_string(),
                    text: text.to_string(),
                    own: self.me(from),
                };
                self.on_chat(kind, room, t);
            }
            // `* NAME TEXT` is an action when it is a room line (tagged
            // with its room, or prefixed), or NAME is in the room.
            Event::Acted {
                from, room, text, ..
            } if t.room.is_some() || room.is_some() || self.is_member_here(from) => {
                let kind = Kind::Action {
                    nick: from.to_string(),
                    text: text.to_string(),
                    own: self.me(from),
                };
                self.on_chat(kind, room, t);
            }
            Event::PrivateMessage { from, text, .. } => {
                if let (Some(to), true) = (&t.to, self.me(from)) {
                    // Our own, echoed.
                    if let Some(Purpose::Own { seq }) = t.purpose {
                        self.set_status(seq, Status::Sent, None, Some(t.at_ms));
                    } else {
                        let at = self.buffer(&Target::Private(to.clone()));
                        let kind = Kind::PmOut {
                            to: to.clone(),
                            text: text.to_string(),
                        };
                        self.put(at, kind, t.at_ms, None, false);
                    }
                } else {
                    let at = self.buffer(&Target::Private(from.to_string()));
                    let kind = Kind::PmIn {
                        from: from.to_string(),
                        text: text.to_string(),
                    };
                    self.put(at, kind, t.at_ms, None, false);
                }
            }
            Event::Joined { nick, room } => {
                let at = self.room_buffer(room);
                if self.me(nick) {
                    self.on_own_join(at, room, send);
                } else {
                    self.buffers[at].add_user(nick);
                }
                self.put(at, Kind::Presence(line.to_string()), t.at_ms, None, false);
            }
            Event::Left { nick, room, .. } | Event::Kicked { nick, room, .. } => {
                self.on_leave(nick, room, line, t, send)
            }
            Event::Renamed { old, new } => {
                if self.me(old) {
                    self.nick = Some(new.to_string());
                    self.want_nick = Some(new.to_string());
                }
                let mut shown = false;
                for at in 0..self.buffers.len() {
                    let buffer = &mut self.buffers[at];
                    let here = match &mut buffer.target {
                        Target::Room(_) => buffer.rename(old, new),
                        Target::Private(peer) if peer.eq_ignore_ascii_case(old) => {
                            *peer = new.to_string();
                            true
                        }
                        _ => false,
                    };
                    if here {
                        shown = true;
                        self.put(at, Kind::Presence(line.to_string()), t.at_ms, None, false);
                    }
                }
                if !shown {
                    self.put(
                        self.view,
                        Kind::Presence(line.to_string()),
                        t.at_ms,
                        None,
                        false,
                    );
                }
            }
            Event::Opped { room, nick, .. } | Event::Deopped { room, nick, .. } => {
                let operator = matches!(event, Event::Opped { .. });
                let at = self.room_buffer(room);
                self.buffers[at].set_operator(nick, operator);
                self.put(at, Kind::Info(line.to_string()), t.at_ms, None, false);
            }
            Event::TopicSet { room, text, .. } => {
                let at = self.room_buffer(room);
                self.buffers[at].topic = Some(text.to_string());
                self.put(at, Kind::Info(line.to_string()), t.at_ms, None, false);
            }
            Event::TopicCleared { room, .. } => {
                let at = self.room_buffer(room);
                self.buffers[at].topic = None;
                self.put(at, Kind::Info(line.to_string()), t.at_ms, None, false);
            }
            Event::Banned { room, .. } | Event::Unbanned { room, .. } => {
                let at = self.room_buffer(room);
                self.put(at, Kind::Info(line.to_string()), t.at_ms, None, false);
            }
            _ => {
                let at = self.answer_buffer(&t);
                self.put(at, Kind::Info(line.to_string()), t.at_ms, None, false);
            }
        }
    }

    /// Whether `nick` is in the current room (a `* NAME TEXT` line without
    /// tags is an action only then: reserved nicks guarantee no user is
    /// called like a server word).
    fn is_member_here(&self, nick: &str) -> bool {
        let room = self.room.clone();
        room.and_then(|r| self.find(&Target::Room(r)))
            .is_some_and(|at| self.buffers[at].has_user(nick))
    }

    /// A chat or `:me` line, live: our echo updates the line we showed as
    /// sending; a line already shown (by `id`) is dropped.
    fn on_chat(&mut self, kind: Kind, named: Option<&str>, t: Tagged) {
        if let Some(Purpose::Own { seq }) = t.purpose {
            self.set_status(seq, Status::Sent, t.id, Some(t.at_ms));
            return;
        }
        let Some(room) = self.line_room(&t, named) else {
            let at = self.view;
            self.put(at, kind, t.at_ms, t.id, false);
            return;
        };
        let at = self.room_buffer(&room);
        if t.id.is_some_and(|id| self.buffers[at].has_id(id, t.at_ms)) {
            return;
        }
        self.put(at, kind, t.at_ms, t.id, false);
    }

    fn on_leave(&mut self, nick: &str, room: &str, line: &str, t: Tagged, send: &mut Vec<String>) {
        let Some(at) = self.find(&Target::Room(room.to_string())) else {
            self.put(
                self.view,
                Kind::Presence(line.to_string()),
                t.at_ms,
                None,
                false,
            );
            return;
        };
        self.buffers[at].remove_user(nick);
        self.put(at, Kind::Presence(line.to_string()), t.at_ms, None, false);
        if self.me(nick) {
            // The room's buffer stays, to read; it leaves the list.
            self.buffers[at].joined = false;
            self.buffers[at].users.clear();
            self.rejoin.retain(|r| !r.eq_ignore_ascii_case(room));
            if self.is_current(room) {
                self.room = None;
            }
            send.extend(self.refresh_rooms());
        }
    }

    /// We entered `room` (buffer `at`): it is current, shown unless a
    /// private conversation is; ask who is there and what was said.
    fn on_own_join(&mut self, at: usize, room: &str, send: &mut Vec<String>) {
        let rejoined = !self.buffers[at].messages.is_empty();
        let buffer = &mut self.buffers[at];
        buffer.joined = true;
        // The server says the topic right after the join if there is one
        // (a room made again after a restart has none).
        buffer.topic = None;
        buffer.users = self.nick.iter().cloned().collect();
        self.room = Some(room.to_string());
        if !matches!(self.shown().target, Target::Private(_)) {
            self.view = at;
            self.scroll = 0;
            self.buffers[at].unread = 0;
            self.buffers[at].mention = false;
        }
        send.extend(self.request(Purpose::Users, ":users".into()));
        if self.has_history != Some(false) {
            // Again after a reconnect: as much as the server keeps, the
            // lines already shown dropped by id.
            let n = if rejoined {
                HISTORY_ON_REJOIN
            } else {
                HISTORY_ON_JOIN
            };
            send.extend(self.request(Purpose::History, format!(":history {n}")));
        }
        send.extend(self.request(Purpose::Rooms, ":rooms".into()));
    }

    fn on_reply(&mut self, reply: Reply<'_>, line: &str, t: Tagged, send: &mut Vec<String>) {
        let hidden = matches!(
            t.purpose,
            Some(Purpose::Users | Purpose::History | Purpose::Rooms | Purpose::Switch)
        );
        match reply {
            Reply::Pong {
                token: Some(KEEPALIVE_TOKEN),
            } if self.pongs > 0 => self.pongs -= 1,
            Reply::TagsOn => self.tags_known(true, send),
            Reply::PasswordRequired => {
                self.push(Kind::Info(line.to_string()));
                match self.password.clone() {
                    Some(password) => {
                        self.auth_sent = true;
                        send.push(format!(":auth {password}"));
                    }
                    None => self.notice("the server wants a password: type :auth PASSWORD"),
                }
            }
            Reply::Welcome { nick } => {
                self.on_welcome(nick, send);
                self.put(0, Kind::Info(line.to_string()), t.at_ms, None, false);
            }
            Reply::Users { room, nicks } => {
                if let Some(at) = self.find(&Target::Room(room.to_string())) {
                    self.buffers[at].users = nicks.into_iter().map(String::from).collect();
                }
                if !hidden {
                    self.answer(line, &t);
                }
            }
            Reply::Rooms { rooms } => {
                self.rooms = rooms
                    .into_iter()
                    .map(|(name, count)| (name.to_string(), count.to_string()))
                    .collect();
                if self.rooms_unlabelled > 0 {
                    self.rooms_unlabelled -= 1;
                } else if !hidden {
                    self.answer(line, &t);
                }
            }
            Reply::HistoryHeader { .. } if hidden => self.has_history = Some(true),
            Reply::HistoryLine {
                time_ms,
                line: body,
                room,
                id,
            } => self.on_history_line(time_ms, body, room, id, &t),
            Reply::CurrentRoom { room } => {
                self.room = Some(room.to_string());
                let at = self.room_buffer(room);
                if !matches!(self.shown().target, Target::Private(_)) {
                    self.view = at;
                    self.scroll = 0;
                    self.buffers[at].unread = 0;
                    self.buffers[at].mention = false;
                }
                if !hidden {
                    self.put(at, Kind::Info(line.to_string()), t.at_ms, None, false);
                }
            }
            Reply::NoRoomLeft => {
                self.room = None;
                if !matches!(self.shown().target, Target::Private(_)) {
                    self.view = 0;
                }
                self.put(0, Kind::Info(line.to_string()), t.at_ms, None, false);
            }
            Reply::Topic { room, text } => {
                let at = self.room_buffer(room);
                self.buffers[at].topic = Some(text.to_string());
                self.put(at, Kind::Info(line.to_string()), t.at_ms, None, false);
            }
            Reply::NoTopic { room } => {
                let at = self.room_buffer(room);
                self.buffers[at].topic = None;
                self.put(at, Kind::Info(line.to_string()), t.at_ms, None, false);
            }
            _ if hidden => {}
            _ => self.answer(line, &t),
        }
    }

    /// Shows an answer where it belongs.
    fn answer(&mut self, line: &str, t: &Tagged) {
        let at = self.answer_buffer(t);
        self.put(at, Kind::Info(line.to_string()), t.at_ms, None, false);
    }

    /// `* welcome NICK`: tags on first, then back as the same person (the
    /// saved token, else the wanted nick) in the same rooms.
    fn on_welcome(&mut self, nick: &str, send: &mut Vec<String>) {
        self.welcomed = true;
        self.nick = Some(nick.to_string());
        send.push(":tags on".to_string());
        if let Some(token) = self.saved_token() {
            // Back as the same person, without the password.
            self.resuming = true;
            send.push(format!(":resume {token}"));
        } else if let Some(want) = self.want_nick.clone() {
            if want != nick {
                send.push(format!(":nick {want}"));
            }
        }
        let rejoin = std::mem::take(&mut self.rejoin);
        let others = rejoin.iter().any(|r| !r.eq_ignore_ascii_case("#lobby"));
        for room in &rejoin {
            // The server puts us in #lobby; joining it again only makes it
            // current, which matters when it was.
            if !room.eq_ignore_ascii_case("#lobby") || others {
                send.push(format!(":join {room}"));
            }
        }
    }

    /// A `[history TIME] LINE` line: `body` is the chat or `:me` line it
    /// was, placed in its room by time; one shown already (by `id`, or
    /// without ids by its words and time) is dropped.
    fn on_history_line(
        &mut self,
        time_ms: i64,
        body: &str,
        room: Option<&str>,
        id: Option<u64>,
        t: &Tagged,
    ) {
        let kind = match recognise_history(body) {
            Some(Event::Acted { from, text, .. }) => Kind::Action {
                nick: from.to_string(),
                text: text.to_string(),
                own: self.me(from),
            },
            Some(Event::Said { from, text, .. }) => Kind::Chat {
                nick: from.to_string(),
                text: text.to_string(),
                own: self.me(from),
            },
            _ => Kind::Info(body.to_string()),
        };
        let id = id.or(t.id);
        // With tags, the `time` tag has the milliseconds of the first
        // delivery (the line itself only the second).
        let time_ms = if id.is_some() { t.at_ms } else { time_ms };
        let Some(room) = self.line_room(t, room) else {
            return;
        };
        let at = self.room_buffer(&room);
        let buffer = &self.buffers[at];
        let shown = match id {
            Some(id) => buffer.has_id(id, time_ms),
            None => buffer.has_line(&kind, time_ms),
        };
        if !shown {
            self.put(at, kind, time_ms, id, true);
        }
    }
}
