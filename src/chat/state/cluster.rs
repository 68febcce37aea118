//! What the server's cluster step (`src/server/cluster.rs`, with
//! `--cluster`) asks of the chat state: with several servers, chat and
//! `:me` lines are not fanned out when said but when Redis has numbered
//! them, on every server; guest numbers come in blocks from Redis; private
//! messages for a client here may come from another server. Plain data, as
//! the rest of the chat state.

use super::{Chat, ChatEvent, ClientId, Member, Outbox};
use crate::chat::remote::{room_key, Moved, Remote};
use crate::protocol::{Event, ServerLine, Stamp};

/// A change of this server's membership that the other servers must hear
/// of (with `--cluster`), queued by the chat state as it happens and
/// taken by the server's cluster step ([`Chat::take_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `nick` entered `room` (as spelled).
    Joined {
        /// Who.
        nick: String,
        /// The room.
        room: String,
    },
    /// `nick` left `room` by `:part` (`by` is `None`) or was kicked out of
    /// it by `by` (`:kick`, `:ban`).
    Left {
        /// Who.
        nick: String,
        /// The room.
        room: String,
        /// The reason given, if any.
        reason: Option<String>,
        /// The operator who kicked, if it was a kick.
        by: Option<String>,
    },
    /// `old` is now known as `new`.
    Renamed {
        /// The nick before.
        old: String,
        /// The nick after.
        new: String,
    },
    /// `nick` left the chat (every room), with `reason` when one was given
    /// or the server cut it off.
    Quit {
        /// Who.
        nick: String,
        /// Why.
        reason: Option<String>,
    },
    /// An operator (`by`) changed `room`'s topic or bans: what to
    /// announce, and the room's whole shared state after it.
    Room {
        /// The room as spelled.
        room: String,
        /// The operator.
        by: String,
        /// What happened.
        event: RoomEvent,
        /// The room's topic and bans now.
        state: RoomState,
    },
}

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

/// The chat state's part of the cluster: the other servers' members and
/// this server's changes not yet taken.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) changes: Vec<Change>,
    remote: Remote,
    /// Every room's topic and bans as last heard (rooms not here too),
    /// by room key.
    pub(super) rooms: std::collections::HashMap<String, RoomState>,
}

/// The reason given for the clients of a server that is gone.
pub const SERVER_LOST: &str = "server lost";

impl Chat {
    /// Shares this server's membership with the other servers of a
    /// cluster: from now on joins, leaves, renames and quits are queued
    /// for [`Chat::take_changes`], and `:users`, `:rooms` count the other
    /// servers' members given to [`Chat::remote_change`].
    pub fn share_membership(&mut self) {
        self.shared.get_or_insert_with(Default::default);
    }

    /// Queues a change for the other servers (nothing when alone).
    pub(super) fn share(&mut self, change: impl FnOnce() -> Change) {
        if let Some(shared) = &mut self.shared {
            shared.changes.push(change());
        }
    }

    /// The membership changes since the last call, in order.
    pub fn take_changes(&mut self) -> Vec<Change> {
        match &mut self.shared {
            Some(shared) => std::mem::take(&mut shared.changes),
            None => Vec::new(),
        }
    }

    /// Whether changes are queued.
    pub fn has_changes(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| !s.changes.is_empty())
    }

    /// The rooms (as spelled) of the client here called `nick`; `None`
    /// when no one here is.
    pub fn rooms_of_nick(&self, nick: &str) -> Option<(&str, Vec<&str>)> {
        let &id = self.nicks.get(&nick.to_ascii_lowercase())?;
        let nick = self.nick(id)?;
        let rooms = self
            .rooms
            .rooms_of(id)
            .filter_map(|room| self.rooms.get(room))
            .map(|room| room.name())
            .collect();
        Some((nick, rooms))
    }

    /// Every client here with its rooms (as spelled): this server's whole
    /// membership, for a snapshot.
    pub fn membership(&self) -> Vec<(&str, Vec<&str>)> {
        self.nicks
            .keys()
            .filter_map(|nick| self.rooms_of_nick(nick))
            .collect()
    }

    /// A change published by server `node`: the mirror is updated and the
    /// members here who share a room with it are told, as they would be
    /// of a client here.
    pub fn remote_change(&mut self, node: &str, change: Change, out: &mut impl Outbox) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        match change {
            Change::Joined { nick, room } => {
                if shared.remote.join(node, &nick, &room) {
                    self.announce_remote(
                        &room,
                        &Event::Joined {
                            nick: &nick,
                            room: &room,
                        }
                        .into(),
                        out,
                    );
                }
            }
            Change::Left {
                nick,
                room,
                reason,
                by,
            } => {
                if shared.remote.leave(node, &nick, &room) {
                    let reason = reason.as_deref();
                    let line = match &by {
                        None => Event::Left {
                            nick: &nick,
                            room: &room,
                            reason,
                            quit: false,
                        },
                        Some(by) => Event::Kicked {
                            nick: &nick,
                            room: &room,
                            by,
                            reason,
                        },
                    };
                    self.announce_remote(&room, &line.into(), out);
                }
            }
            Change::Renamed { old, new } => {
                let rooms = shared.remote.rename(node, &old, &new);
                let mut sharing: Vec<ClientId> = rooms
                    .iter()
                    .filter_map(|key| self.rooms.find(key).and_then(|r| self.rooms.get(r)))
                    .flat_map(|room| room.members().iter().copied())
                    .collect();
                sharing.sort_unstable();
                sharing.dedup();
                let line = Event::Renamed {
                    old: &old,
                    new: &new,
                }
                .into();
                out.fan_out(&sharing, &[], None, None, &line);
            }
            Change::Room {
                room,
                by,
                event,
                state,
            } => self.remote_room_change(&room, &by, event, state, out),
            Change::Quit { nick, reason } => {
                for room in shared.remote.quit(node, &nick) {
                    let line = Event::Left {
                        nick: &nick,
                        room: &room,
                        reason: reason.as_deref(),
                        quit: true,
                    };
                    self.announce_remote(&room, &line.into(), out);
                }
            }
        }
    }

    /// Server `node` is gone (or cut off): its clients are announced as
    /// leaving every room they were in, `(server lost)`.
    pub fn remote_node_lost(&mut self, node: &str, out: &mut impl Outbox) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let lost = shared.remote.node_lost(node);
        self.announce_moves(lost, Some(SERVER_LOST), out);
    }

    /// Server `node`'s whole membership (nick, rooms as spelled), read
    /// after a reconnect or republished by it: whatever changed since the
    /// mirror last knew is announced as joins and leaves.
    pub fn remote_snapshot(
        &mut self,
        node: &str,
        members: Vec<(String, Vec<String>)>,
        out: &mut impl Outbox,
    ) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let moved = shared.remote.replace_node(node, members);
        self.announce_moves(moved, None, out);
    }

    /// The servers whose members are mirrored here.
    pub fn remote_nodes(&self) -> Vec<String> {
        match &self.shared {
            Some(shared) => shared.remote.nodes().map(str::to_owned).collect(),
            None => Vec::new(),
        }
    }

    /// The other servers' members of the room with key `key` (empty when
    /// alone).
    pub(super) fn remote_members(&self, key: &str) -> Vec<&str> {
        match &self.shared {
            Some(shared) => shared.remote.members_of(key).collect(),
            None => Vec::new(),
        }
    }

    /// The rooms other servers' clients are in: (key, name, members).
    pub(super) fn remote_rooms(&self) -> Vec<(&str, &str, usize)> {
        match &self.shared {
            Some(shared) => shared.remote.rooms().collect(),
            None => Vec::new(),
        }
    }

    /// The room with key or name `name` exists on some other server: its
    /// spelling there.
    pub(super) fn remote_room_name(&self, name: &str) -> Option<&str> {
        self.shared.as_ref()?.remote.room_name(&room_key(name))
    }

    fn announce_moves(&mut self, moved: Vec<Moved>, reason: Option<&str>, out: &mut impl Outbox) {
        for moved in moved {
            let nick = moved.nick.as_str();
            for room in &moved.left {
                // A lost server's clients left the chat; a resync only
                // moves members between rooms.
                let quit = reason.is_some();
                let line = Event::Left {
                    nick,
                    room,
                    reason,
                    quit,
                };
                self.announce_remote(room, &line.into(), out);
            }
            for room in &moved.joined {
                self.announce_remote(room, &Event::Joined { nick, room }.into(), out);
            }
        }
    }

    /// A room line about another server's client to the members here of
    /// `room` (key or name), if the room exists here.
    fn announce_remote(&self, room: &str, line: &ServerLine<'_>, out: &mut impl Outbox) {
        if let Some(room) = self.rooms.find(room) {
            self.fan_out_room(room, None, line, out);
        }
    }

    /// The current room of client `id`: its key (lower case) and its name.
    pub fn room_of_member(&self, id: ClientId) -> Option<(&str, &str)> {
        let room = self.rooms.get(self.rooms.current(id)?)?;
        Some((room.key(), room.name()))
    }

    /// The keys of every room client `id` is in.
    pub fn room_keys_of_member(&self, id: ClientId) -> Vec<&str> {
        self.rooms
            .rooms_of(id)
            .filter_map(|room| self.rooms.get(room))
            .map(|room| room.key())
            .collect()
    }

    /// Whether `nick` is someone's on this server other than client `id`'s.
    pub fn nick_taken_here(&self, id: ClientId, nick: &str) -> bool {
        self.nicks
            .get(&nick.to_ascii_lowercase())
            .is_some_and(|&owner| owner != id)
    }

    /// The members on this server of the room with key `key`.
    pub fn room_members(&self, key: &str) -> &[ClientId] {
        match self.rooms.find(key).and_then(|room| self.rooms.get(room)) {
            Some(room) => room.members(),
            None => &[],
        }
    }

    /// N of the next `guestN`.
    pub fn next_guest(&self) -> u64 {
        self.next_guest
    }

    /// Makes the next guest `guestN` (the cluster hands out blocks of
    /// numbers unique across servers).
    pub fn set_next_guest(&mut self, n: u64) {
        self.next_guest = n;
    }

    /// A room line numbered by the cluster (its `id`), from any server,
    /// this one's included, sent at `time_ms` (the sending server's
    /// clock): delivered to the room's members here as `say` delivers it
    /// on a server alone (its sender excepted when it is here, unless its
    /// tags are on; `[#room] ` for those whose current room it is not) and
    /// kept for `:history` with that id and time, so every server's
    /// history is the same. A room no one here is in gets it recorded
    /// too (a member who joins later finds it in `:history`). Returns the
    /// recipients.
    #[allow(clippy::too_many_arguments)]
    pub fn deliver_room_line(
        &mut self,
        room_key: &str,
        id: u64,
        time_ms: i64,
        from: &str,
        text: &str,
        action: bool,
        out: &mut impl Outbox,
    ) -> usize {
        let room = self
            .rooms
            .find(room_key)
            .and_then(|room| self.rooms.get(room));
        let said = |in_room, stamp| -> ServerLine<'_> {
            if action {
                Event::Acted {
                    from,
                    room: in_room,
                    text,
                    stamp,
                }
            } else {
                Event::Said {
                    from,
                    room: in_room,
                    text,
                    stamp,
                }
            }
            .into()
        };
        // As the line dialect delivers it to the members whose current
        // room it is, like `record_room_line`.
        let key = room.map_or(room_key, |room| room.key());
        self.line.clear();
        crate::protocol::Dialect::Line.render(&said(Some(key), None), &mut self.line);
        let plain = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        let plain = std::str::from_utf8(plain).unwrap_or_default();
        let history_id = i64::try_from(id).unwrap_or(i64::MAX);
        self.history
            .record_as(key, history_id, from, plain, time_ms, room.is_some());
        let Some(room) = room else {
            return 0;
        };
        let sender = self
            .nicks
            .get(&from.to_ascii_lowercase())
            .copied()
            .filter(|sender| room.members().contains(sender));
        let sender_tags = sender.is_some_and(
            |sender| matches!(self.members.get(sender), Some(Some(Member::Joined(me))) if me.tags),
        );
        // The id every server gives the line: the cluster's.
        let line = said(Some(room.name()), Some(Stamp { id, time_ms }));
        let (except, asker) = if sender_tags {
            (None, sender)
        } else {
            (sender, None)
        };
        let delivered = out.fan_out(
            room.current_members(),
            room.other_members(),
            except,
            asker,
            &line,
        );
        let recipients = delivered - usize::from(sender_tags);
        out.note(ChatEvent::RoomLine { recipients });
        recipients
    }

    /// A private message from a client of another server, for `to` here:
    /// delivered as `:pm` does. `false` when no one here has that nick
    /// (any more).
    pub fn deliver_private(
        &mut self,
        from: &str,
        to: &str,
        text: &str,
        out: &mut impl Outbox,
    ) -> bool {
        let Some(&recipient) = self.nicks.get(&to.to_ascii_lowercase()) else {
            return false;
        };
        let line = Event::PrivateMessage {
            from,
            text,
            to: None,
        };
        out.deliver(recipient, &line.into());
        out.note(ChatEvent::PrivateMessage);
        true
    }
}
