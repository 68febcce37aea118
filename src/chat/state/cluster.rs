//! What the server's cluster step (`src/server/cluster.rs`, with
//! `--cluster`) asks of the chat state: with several servers, chat and
//! `:me` lines are not fanned out when said but when Redis has numbered
//! them, on every server; guest numbers come in blocks from Redis; private
//! messages for a client here may come from another server. Plain data, as
//! the rest of the chat state.

use super::{record_room_line, Chat, ChatEvent, ClientId, Member, Outbox};
use crate::protocol::{Event, ServerLine, Stamp};

impl Chat {
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
    /// this one's included: delivered to the room's members here as `say`
    /// delivers it on a server alone (its sender excepted when it is here,
    /// unless its tags are on; `[#room] ` for those whose current room it
    /// is not) and kept for `:history`. Returns the recipients.
    pub fn deliver_room_line(
        &mut self,
        room_key: &str,
        id: u64,
        from: &str,
        text: &str,
        action: bool,
        out: &mut impl Outbox,
    ) -> usize {
        let Some(room) = self
            .rooms
            .find(room_key)
            .and_then(|room| self.rooms.get(room))
        else {
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
        let in_room = Some(room.name());
        let said = |stamp| -> ServerLine<'_> {
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
        let (_, time_ms) = record_room_line(
            &mut self.history,
            &mut self.line,
            room.key(),
            from,
            &said(None),
        );
        // The id every server gives the line: the cluster's.
        let line = said(Some(Stamp { id, time_ms }));
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
