//! Membership across servers (`--cluster`, docs/cluster.md "Who is
//! where"): this server's joins, leaves, renames and quits published for
//! the others, theirs applied to the chat's mirror of them (and announced
//! to the members here), servers found dead announced as lost.
//!
//! In Redis each server keeps its membership in a hash of its own (field:
//! the lower-cased nick; value: the nick and its rooms, space-separated),
//! written by the same function call that publishes the change, so a
//! server that (re)connects reads every hash and is up to date; changes
//! are sets, so one that arrives twice (before and after a snapshot)
//! changes nothing.

use super::EventLoop;
use crate::chat::remote::room_key;
use crate::chat::{Change, RoomEvent, RoomState};
use crate::cluster::{Cluster, ClusterEvent};

/// A change as the servers pass it: a letter and fields, one a line.
pub(crate) fn encode_change(change: &Change) -> Vec<u8> {
    let (mut fields, reason): (Vec<&str>, &Option<String>) = match change {
        Change::Joined { nick, room } => (vec!["J", nick, room], &None),
        Change::Left {
            nick,
            room,
            reason,
            by: None,
        } => (vec!["L", nick, room], reason),
        Change::Left {
            nick,
            room,
            reason,
            by: Some(by),
        } => (vec!["K", nick, room, by], reason),
        Change::Renamed { old, new } => (vec!["N", old, new], &None),
        Change::Quit { nick, reason } => (vec!["Q", nick], reason),
        Change::Operator {
            room,
            by,
            nick,
            operator,
        } => (
            vec!["O", room, by, nick, if *operator { "+" } else { "-" }],
            &None,
        ),
        Change::Refresh { nick } => (vec!["M", nick], &None),
        Change::NotMaker { room, nick } => (vec!["F", room, nick], &None),
        Change::Made { room } => (vec!["E", room], &None),
        Change::Kick {
            room,
            by,
            nick,
            reason,
        } => (vec!["X", room, by, nick], reason),
        Change::Room {
            room,
            by,
            event,
            state: _,
        } => {
            let (kind, arg) = match event {
                RoomEvent::TopicSet(text) => ("T", text.as_str()),
                RoomEvent::TopicCleared => ("C", ""),
                RoomEvent::Banned(nick) => ("B", nick.as_str()),
                RoomEvent::Unbanned(nick) => ("U", nick.as_str()),
            };
            (vec!["R", room, by, kind, arg], &None)
        }
    };
    if let Change::Room { state, .. } = change {
        let mut msg = fields.join("\n");
        msg.push('\n');
        msg.push_str(&state.encode());
        return msg.into_bytes();
    }
    if let Some(reason) = reason {
        fields.push(reason);
    }
    fields.join("\n").into_bytes()
}

/// Reads a message written by [`encode_change`]; `None` for anything else.
pub(crate) fn decode_change(msg: &[u8]) -> Option<Change> {
    let msg = std::str::from_utf8(msg).ok()?;
    let fields: Vec<&str> = msg.split('\n').collect();
    let reason = |at: usize| fields.get(at).map(|r| (*r).to_owned());
    let change = match (fields[0], fields.len()) {
        ("J", 3) => Change::Joined {
            nick: fields[1].to_owned(),
            room: fields[2].to_owned(),
        },
        ("L", 3 | 4) => Change::Left {
            nick: fields[1].to_owned(),
            room: fields[2].to_owned(),
            reason: reason(3),
            by: None,
        },
        ("K", 4 | 5) => Change::Left {
            nick: fields[1].to_owned(),
            room: fields[2].to_owned(),
            reason: reason(4),
            by: Some(fields[3].to_owned()),
        },
        ("N", 3) => Change::Renamed {
            old: fields[1].to_owned(),
            new: fields[2].to_owned(),
        },
        ("Q", 2 | 3) => Change::Quit {
            nick: fields[1].to_owned(),
            reason: reason(2),
        },
        ("O", 5) => Change::Operator {
            room: fields[1].to_owned(),
            by: fields[2].to_owned(),
            nick: fields[3].to_owned(),
            operator: match fields[4] {
                "+" => true,
                "-" => false,
                _ => return None,
            },
        },
        ("X", 4 | 5) => Change::Kick {
            room: fields[1].to_owned(),
            by: fields[2].to_owned(),
            nick: fields[3].to_owned(),
            reason: reason(4),
        },
        ("M", 2) => Change::Refresh {
            nick: fields[1].to_owned(),
        },
        ("E", 2) => Change::Made {
            room: fields[1].to_owned(),
        },
        ("F", 3) => Change::NotMaker {
            room: fields[1].to_owned(),
            nick: fields[2].to_owned(),
        },
        ("R", 6) => Change::Room {
            room: fields[1].to_owned(),
            by: fields[2].to_owned(),
            event: match fields[3] {
                "T" => RoomEvent::TopicSet(fields[4].to_owned()),
                "C" => RoomEvent::TopicCleared,
                "B" => RoomEvent::Banned(fields[4].to_owned()),
                "U" => RoomEvent::Unbanned(fields[4].to_owned()),
                _ => return None,
            },
            state: RoomState::decode(fields[5])?,
        },
        _ => return None,
    };
    Some(change)
}

/// A member's value in its server's hash: the nick, then its rooms.
pub(crate) fn member_value<S: AsRef<str>>(nick: &str, rooms: &[S]) -> Vec<u8> {
    let mut value = nick.to_owned();
    for room in rooms {
        value.push(' ');
        value.push_str(room.as_ref());
    }
    value.into_bytes()
}

/// Reads a value written by [`member_value`]: (nick, rooms).
pub(crate) fn read_member(value: &[u8]) -> Option<(String, Vec<String>)> {
    let value = std::str::from_utf8(value).ok()?;
    let mut words = value.split(' ');
    let nick = words.next().filter(|n| !n.is_empty())?.to_owned();
    Some((nick, words.map(str::to_owned).collect()))
}

/// A whole membership as published by `loopchat_sync`: `S`, then one
/// member value a line.
fn encode_snapshot(members: &[Vec<u8>]) -> Vec<u8> {
    let mut msg = b"S".to_vec();
    for value in members {
        msg.push(b'\n');
        msg.extend_from_slice(value);
    }
    msg
}

impl EventLoop {
    /// Publishes the chat's membership changes since the last call (one
    /// function call each, in order). While Redis is away they are
    /// dropped: the whole membership is published again when it is back.
    pub(super) fn cluster_share(&mut self) {
        let Cluster::Redis(redis) = &mut self.cluster else {
            return;
        };
        if redis.is_up() {
            for room in self.chat.take_made_rooms() {
                let keep = self.chat.history_mut().keep();
                let _ = redis.read_backlog(&room, keep);
            }
            // Of two servers making one room at once, one maker stays
            // its operator: the one whose claim Redis took first.
            for (room, maker) in self.chat.take_founded_rooms() {
                if let Ok(ticket) = redis.claim_room(&room) {
                    self.cluster_link.room_claims.insert(ticket, (room, maker));
                }
            }
            for room in self.chat.take_unmade_rooms() {
                redis.release_room(&room);
            }
        }
        if !self.chat.has_changes() {
            return;
        }
        for change in self.chat.take_changes() {
            if let Change::Renamed { old, new } = &change {
                // A rename the chat made itself (`:login`, `:resume`,
                // `:logout`'s new guest, a takeover) claims its nick like
                // `:nick` does; one `:nick` claimed is held already.
                if let Ok(ticket) = redis.claim_nick(&new.to_ascii_lowercase()) {
                    self.cluster_link.adopt(ticket);
                }
                if !self.chat.nick_taken_here(usize::MAX, old) {
                    redis.release_nick(&old.to_ascii_lowercase());
                }
            }
            let msg = encode_change(&change);
            let fresh = RoomState::default();
            let shared_state = match &change {
                Change::Room { room, state, .. } => Some((room, state)),
                // (Its field holds an empty state: a server started later
                // must not take the old one back.)
                Change::Made { room } => Some((room, &fresh)),
                _ => None,
            };
            if let Some((room, state)) = shared_state {
                let (key, state) = (room_key(room), state.encode());
                if redis
                    .publish_room(&msg, key.as_bytes(), state.as_bytes())
                    .is_err()
                {
                    return;
                }
                continue;
            }
            let value = |nick: &str| match self.chat.rooms_of_nick(nick) {
                Some((nick, rooms)) => member_value(nick, &rooms),
                None => Vec::new(),
            };
            let fields: Vec<(Vec<u8>, Vec<u8>)> = match &change {
                Change::Joined { nick, .. }
                | Change::Left { nick, .. }
                | Change::Refresh { nick }
                | Change::NotMaker { nick, .. } => {
                    vec![(nick.to_ascii_lowercase().into_bytes(), value(nick))]
                }
                // The member's entry, when it is this server's.
                Change::Operator { nick, .. } => match self.chat.rooms_of_nick(nick) {
                    Some(_) => vec![(nick.to_ascii_lowercase().into_bytes(), value(nick))],
                    None => Vec::new(),
                },
                Change::Renamed { old, new } => vec![
                    (old.to_ascii_lowercase().into_bytes(), Vec::new()),
                    (new.to_ascii_lowercase().into_bytes(), value(new)),
                ],
                Change::Quit { nick, .. } => {
                    vec![(nick.to_ascii_lowercase().into_bytes(), Vec::new())]
                }
                Change::Room { .. } | Change::Kick { .. } | Change::Made { .. } => Vec::new(),
            };
            let fields: Vec<(&[u8], &[u8])> = fields
                .iter()
                .map(|(f, v)| (f.as_slice(), v.as_slice()))
                .collect();
            if redis.publish_presence(&msg, &fields).is_err() {
                return; // Down: sent whole when it is back.
            }
        }
    }

    /// Publishes this server's whole membership (after Redis was away, or
    /// when the others counted this server lost).
    pub(super) fn cluster_sync(&mut self) {
        let Cluster::Redis(redis) = &mut self.cluster else {
            return;
        };
        self.chat.take_changes();
        let members: Vec<(Vec<u8>, Vec<u8>)> = self
            .chat
            .membership()
            .into_iter()
            .map(|(nick, rooms)| {
                (
                    nick.to_ascii_lowercase().into_bytes(),
                    member_value(nick, &rooms),
                )
            })
            .collect();
        let values: Vec<Vec<u8>> = members.iter().map(|(_, v)| v.clone()).collect();
        let fields: Vec<(&[u8], &[u8])> = members
            .iter()
            .map(|(f, v)| (f.as_slice(), v.as_slice()))
            .collect();
        let _ = redis.sync_presence(&encode_snapshot(&values), &fields);
    }

    /// What the engine reported about who is where.
    pub(super) fn presence_event(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::Presence { node, msg } => {
                if msg.starts_with(b"A\x1f") {
                    self.remote_account_writes(&[msg], false);
                } else if let Some(rest) = msg.strip_prefix(b"S") {
                    let members = rest
                        .split(|&b| b == b'\n')
                        .filter_map(read_member)
                        .collect();
                    self.chat.remote_snapshot(&node, members, &mut self.clients);
                } else if msg == b"X" {
                    self.chat.remote_node_stopped(&node, &mut self.clients);
                } else if let Some(change) = decode_change(&msg) {
                    let gone = match &change {
                        Change::Quit { nick, .. } | Change::Renamed { old: nick, .. } => {
                            Some(nick.to_ascii_lowercase())
                        }
                        _ => None,
                    };
                    self.chat.remote_change(&node, change, &mut self.clients);
                    if let Some(nick) = gone {
                        self.reclaim_taken_over(&nick);
                    }
                } else {
                    log::warn!("cluster: a presence message that is not one");
                }
            }
            ClusterEvent::Nodes { present, live } => {
                for node in self.chat.remote_nodes() {
                    if !live.contains(&node) {
                        log::warn!(
                            "cluster: server {node} is gone: its clients are announced as lost"
                        );
                        self.chat.remote_node_lost(&node, &mut self.clients);
                    }
                }
                if !present {
                    self.cluster_sync();
                }
            }
            ClusterEvent::Members {
                nodes,
                rooms,
                accounts,
            } => {
                self.remote_account_writes(&accounts, true);
                let rooms = rooms
                    .iter()
                    .filter_map(|(key, state)| {
                        let state = RoomState::decode(std::str::from_utf8(state).ok()?)?;
                        Some((key.clone(), state))
                    })
                    .collect();
                self.chat.remote_rooms_state(rooms);
                let listed: Vec<String> = nodes.iter().map(|(node, _)| node.clone()).collect();
                for (node, fields) in nodes {
                    let members = fields.iter().filter_map(|v| read_member(v)).collect();
                    self.chat.remote_snapshot(&node, members, &mut self.clients);
                }
                for node in self.chat.remote_nodes() {
                    if !listed.contains(&node) {
                        self.chat.remote_node_lost(&node, &mut self.clients);
                    }
                }
            }
            _ => {}
        }
    }

    /// A stopping server says so: the others forget it at once.
    pub(super) fn cluster_leave(&mut self) {
        if let Cluster::Redis(redis) = &mut self.cluster {
            redis.leave_cluster(b"X");
            redis.flush(self.poll.registry(), self.now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_pass_through_redis_and_back() {
        let changes = [
            Change::Joined {
                nick: "bob".into(),
                room: "#Rust".into(),
            },
            Change::Left {
                nick: "bob".into(),
                room: "#rust".into(),
                reason: Some("bye now".into()),
                by: None,
            },
            Change::Left {
                nick: "bob".into(),
                room: "#rust".into(),
                reason: None,
                by: None,
            },
            Change::Left {
                nick: "bob".into(),
                room: "#rust".into(),
                reason: Some("spam".into()),
                by: Some("alice".into()),
            },
            Change::Left {
                nick: "bob".into(),
                room: "#rust".into(),
                reason: None,
                by: Some("alice".into()),
            },
            Change::Renamed {
                old: "bob".into(),
                new: "robert".into(),
            },
            Change::Quit {
                nick: "bob".into(),
                reason: None,
            },
            Change::Quit {
                nick: "bob".into(),
                reason: Some("too slow".into()),
            },
            Change::Room {
                room: "#Rust".into(),
                by: "alice".into(),
                event: RoomEvent::TopicSet("all\tabout rust".into()),
                state: RoomState {
                    topic: Some("all\tabout rust".into()),
                    bans: vec!["bob".into(), "Carol".into()],
                },
            },
            Change::Operator {
                room: "#rust".into(),
                by: "alice".into(),
                nick: "bob".into(),
                operator: true,
            },
            Change::Operator {
                room: "#rust".into(),
                by: "alice".into(),
                nick: "bob".into(),
                operator: false,
            },
            Change::Refresh { nick: "bob".into() },
            Change::NotMaker {
                room: "#Rust".into(),
                nick: "bob".into(),
            },
            Change::Made {
                room: "#Rust".into(),
            },
            Change::Kick {
                room: "#rust".into(),
                by: "alice".into(),
                nick: "bob".into(),
                reason: Some("spam".into()),
            },
            Change::Kick {
                room: "#rust".into(),
                by: "alice".into(),
                nick: "bob".into(),
                reason: None,
            },
            Change::Room {
                room: "#rust".into(),
                by: "alice".into(),
                event: RoomEvent::TopicCleared,
                state: RoomState::default(),
            },
            Change::Room {
                room: "#rust".into(),
                by: "alice".into(),
                event: RoomEvent::Unbanned("bob".into()),
                state: RoomState {
                    topic: Some(String::new()),
                    bans: vec![],
                },
            },
        ];
        for change in changes {
            assert_eq!(decode_change(&encode_change(&change)), Some(change));
        }
        for bad in [&b""[..], b"J\nbob", b"Z\nbob\n#x", b"N\na\nb\nc", b"\xff"] {
            assert_eq!(decode_change(bad), None);
        }
    }

    #[test]
    fn member_values_hold_the_nick_and_its_rooms() {
        let value = member_value("Bob", &["#lobby", "#Rust"]);
        assert_eq!(
            read_member(&value),
            Some(("Bob".into(), vec!["#lobby".into(), "#Rust".into()]))
        );
        assert_eq!(read_member(b""), None);
        assert_eq!(
            encode_snapshot(&[value, b"al".to_vec()]),
            b"S\nBob #lobby #Rust\nal"
        );
    }
}
