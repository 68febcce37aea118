//! What the server's cluster step (`src/server/cluster.rs`, with
//! `--cluster`) asks of the chat state: with several servers, chat and
//! `:me` lines are not fanned out when said but when Redis has numbered
//! them, on every server; guest numbers come in blocks from Redis; private
//! messages for a client here may come from another server. Plain data, as
//! the rest of the chat state.

use super::cluster_rooms::{RoomEvent, RoomState};
use super::{Chat, ChatEvent, ClientId, Member, Outbox};
use crate::chat::remote::{room_key, Moved, Remote};
use crate::protocol::{Event, ServerLine, Stamp};

/// A change of this server's membership that the other servers must hear
/// of (with `--cluster`), queued by the chat state as it happens and
/// taken by the server's cluster step ([`Chat::take_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `nick` entered `room` (as spelled; `@` first when it entered as
    /// the room's operator, having made it).
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
    /// An operator (`by`) made `nick` an operator of `room`, or not
    /// (`:op`, `:deop`), whichever server `nick` is on.
    Operator {
        /// The room as spelled.
        room: String,
        /// The operator.
        by: String,
        /// The member.
        nick: String,
        /// Made an operator (`true`) or not.
        operator: bool,
    },
    /// An operator (`by`) of `room` kicked `nick`, a client of another
    /// server: a request to that server, which takes it out (and then
    /// publishes its leaving, which every server announces).
    Kick {
        /// The room as spelled.
        room: String,
        /// The operator.
        by: String,
        /// The member.
        nick: String,
        /// Why, when the operator said.
        reason: Option<String>,
    },
    /// Nothing to announce: `nick`'s membership here changed in a way the
    /// other servers already heard of (its operator flag, set at another
    /// server's word); only its entry in Redis is rewritten.
    Refresh {
        /// Who.
        nick: String,
    },
    /// `room` was made anew (no server had members in it): what was kept
    /// of an earlier room of that name (topic, bans) is dropped. Nothing
    /// is announced.
    Made {
        /// The room as spelled.
        room: String,
    },
    /// `nick` made `room` here, but another server made it a moment
    /// before (its claim reached Redis first): `nick` is not its operator
    /// after all. Nothing is announced.
    NotMaker {
        /// The room as spelled.
        room: String,
        /// Who.
        nick: String,
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

/// The chat state's part of the cluster: the other servers' members and
/// this server's changes not yet taken.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) changes: Vec<Change>,
    pub(super) remote: Remote,
    /// Rooms made here since the server last asked (their history before
    /// this server followed them is read from their streams).
    pub(super) made: Vec<String>,
    /// Every room's topic and bans as last heard (rooms not here too),
    /// by room key.
    pub(super) rooms: std::collections::HashMap<String, RoomState>,
    /// Rooms made here whose maker became their operator (no other
    /// server had members in them): (key, maker's nick), for the server
    /// to claim the making in Redis.
    pub(super) founded: Vec<(String, String)>,
    /// Rooms gone here (their last member left): their making, if claimed,
    /// is given back.
    pub(super) unmade: Vec<String>,
}

/// The reason given for the clients of a server that is gone.
pub const SERVER_LOST: &str = "server lost";

/// The reason given for the clients of a server that stopped cleanly.
pub const SERVER_STOPPED: &str = "server shutting down";

impl Chat {
    /// Shares this server's membership with the other servers of a
    /// cluster: from now on joins, leaves, renames and quits are queued
    /// for [`Chat::take_changes`], and `:users`, `:rooms` count the other
    /// servers' members given to [`Chat::remote_change`].
    pub fn share_membership(&mut self) {
        let shared = self.shared.get_or_insert_with(Default::default);
        // `#lobby` exists from the start: what was said in it before is
        // read from its stream as for a room made later.
        shared.made.push(crate::protocol::LOBBY.to_owned());
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

    /// The rooms made here since the last call whose maker became their
    /// operator: (key, the maker's nick). The server claims each making
    /// in Redis; a claim lost ([`Chat::made_elsewhere_first`]) ends that
    /// operator status.
    pub fn take_founded_rooms(&mut self) -> Vec<(String, String)> {
        match &mut self.shared {
            Some(shared) => std::mem::take(&mut shared.founded),
            None => Vec::new(),
        }
    }

    /// The keys of the rooms gone here since the last call (their making
    /// is given back in Redis).
    pub fn take_unmade_rooms(&mut self) -> Vec<String> {
        match &mut self.shared {
            Some(shared) => std::mem::take(&mut shared.unmade),
            None => Vec::new(),
        }
    }

    /// The keys of the rooms made here since the last call: the server
    /// reads what was said in them before from their streams
    /// ([`Chat::backfill_room`]).
    pub fn take_made_rooms(&mut self) -> Vec<String> {
        match &mut self.shared {
            Some(shared) => std::mem::take(&mut shared.made),
            None => Vec::new(),
        }
    }

    /// A room's newest lines as its stream holds them (oldest first: id,
    /// time, sender, text, whether a `:me`), for `:history` here: the ones
    /// older than what this server recorded are added (a room made here
    /// after lines were said in it elsewhere, this server not running),
    /// and all are written to the history file (where those it has are
    /// left as they are).
    pub fn backfill_room(&mut self, room_key: &str, lines: &[(u64, i64, &str, &str, bool)]) {
        let mut stored = Vec::with_capacity(lines.len());
        for &(id, ts, from, text, action) in lines {
            let plain: ServerLine<'_> = if action {
                Event::Acted {
                    from,
                    room: None,
                    text,
                    stamp: None,
                }
            } else {
                Event::Said {
                    from,
                    room: None,
                    text,
                    stamp: None,
                }
            }
            .into();
            self.line.clear();
            crate::protocol::Dialect::Line.render(&plain, &mut self.line);
            let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
            let stored_line = crate::chat::history::store::StoredLine {
                id: i64::try_from(id).unwrap_or(i64::MAX),
                ts,
                line: String::from_utf8_lossy(line).into_owned(),
            };
            stored.push((stored_line, from));
        }
        // (`#lobby`'s tail may not exist yet: made, and loaded from the
        // file too when there is one.)
        self.history.room_created(room_key);
        self.history.backfilled(room_key, stored);
    }

    /// Whether changes are queued.
    pub fn has_changes(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| !s.changes.is_empty())
    }

    /// The rooms (as spelled, `@` before those it is an operator of) of
    /// the client here called `nick`; `None` when no one here is.
    pub fn rooms_of_nick(&self, nick: &str) -> Option<(&str, Vec<String>)> {
        let &id = self.nicks.get(&nick.to_ascii_lowercase())?;
        let nick = self.nick(id)?;
        let rooms = self
            .rooms
            .rooms_of(id)
            .filter_map(|room| {
                let op = self.rooms.is_operator(room, id);
                let name = self.rooms.get(room)?.name();
                Some(if op {
                    format!("@{name}")
                } else {
                    name.to_owned()
                })
            })
            .collect();
        Some((nick, rooms))
    }

    /// Every client here with its rooms (as [`Chat::rooms_of_nick`]):
    /// this server's whole membership, for a snapshot.
    pub fn membership(&self) -> Vec<(&str, Vec<String>)> {
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
                let (operator, room) = match room.strip_prefix('@') {
                    Some(room) => (true, room.to_owned()),
                    None => (false, room),
                };
                let joined = shared.remote.join(node, &nick, &room);
                shared.remote.set_op(&nick, &room, operator);
                if joined {
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
            Change::Operator {
                room,
                by,
                nick,
                operator,
            } => self.remote_operator(&room, &by, &nick, operator, out),
            Change::Kick {
                room,
                by,
                nick,
                reason,
            } => self.remote_kick(&room, &by, &nick, reason.as_deref(), out),
            Change::Refresh { .. } => {}
            Change::Made { room } => {
                shared.rooms.remove(&room_key(&room));
            }
            Change::NotMaker { room, nick } => {
                shared.remote.set_op(&nick, &room_key(&room), false);
            }
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
        self.remote_node_gone(node, SERVER_LOST, out);
    }

    /// Server `node` stopped cleanly (it said so): its clients are
    /// announced as leaving every room they were in, `(server shutting
    /// down)`, as its own clients were told.
    pub fn remote_node_stopped(&mut self, node: &str, out: &mut impl Outbox) {
        self.remote_node_gone(node, SERVER_STOPPED, out);
    }

    fn remote_node_gone(&mut self, node: &str, reason: &str, out: &mut impl Outbox) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let gone = shared.remote.node_lost(node);
        self.announce_moves(gone, Some(reason), out);
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

    /// The other servers' members of the room with key `key`, each with
    /// whether it is an operator there (empty when alone).
    pub(super) fn remote_members<'a>(&'a self, key: &'a str) -> Vec<(&'a str, bool)> {
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
