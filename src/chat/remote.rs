//! The other servers' clients, as this server mirrors them (with
//! `--cluster`): which nick is in which room on which server. Plain data:
//! the server's cluster step feeds it what the other servers publish (each
//! join, leave, rename and quit, and whole snapshots after a reconnect),
//! and the chat state reads it to answer `:users` and `:rooms` and to
//! announce the others' joins and leaves to the members here.
//!
//! Every operation is a *set*: a join of someone already in, a leave of
//! someone not in, changes nothing and says so. Replaying messages older
//! than a snapshot therefore ends in the same state (see docs/cluster.md).

use std::collections::{BTreeMap, HashMap};

/// A client of another server: its nick as spelled and the keys of its
/// rooms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteMember {
    /// The nick as its owner spells it.
    pub nick: String,
    /// Its rooms' keys (lower case, with `#`).
    pub rooms: Vec<String>,
    /// The keys of the rooms it is an operator of.
    pub ops: Vec<String>,
}

#[derive(Debug, Default)]
struct RemoteRoom {
    /// The room as the server that announced it last spells it.
    name: String,
    /// Members: lower-cased nick to the server holding it.
    members: BTreeMap<String, String>,
}

/// What one change did to a member's rooms, for the announcements: the
/// rooms (as spelled) it entered and left.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// The nick as spelled.
    pub nick: String,
    /// Rooms entered.
    pub joined: Vec<String>,
    /// Rooms left.
    pub left: Vec<String>,
}

/// Every other server's members; see the module docs.
#[derive(Debug, Default)]
pub struct Remote {
    /// By server token, then lower-cased nick.
    nodes: HashMap<String, HashMap<String, RemoteMember>>,
    /// By room key.
    rooms: HashMap<String, RemoteRoom>,
}

/// A room's key: its name in lower case, with its `#`.
pub fn room_key(name: &str) -> String {
    let bare = name.strip_prefix('#').unwrap_or(name);
    format!("#{}", bare.to_ascii_lowercase())
}

impl Remote {
    /// `nick` of server `node` entered `room` (as spelled). `false` when
    /// it was in already.
    pub fn join(&mut self, node: &str, nick: &str, room: &str) -> bool {
        let key = room_key(room);
        let lower = nick.to_ascii_lowercase();
        let member = self
            .nodes
            .entry(node.to_owned())
            .or_default()
            .entry(lower.clone())
            .or_insert_with(|| RemoteMember {
                nick: nick.to_owned(),
                rooms: Vec::new(),
                ops: Vec::new(),
            });
        member.nick = nick.to_owned();
        if member.rooms.contains(&key) {
            return false;
        }
        member.rooms.push(key.clone());
        let entry = self.rooms.entry(key).or_default();
        entry.name = room.to_owned();
        entry.members.insert(lower, node.to_owned());
        true
    }

    /// `nick` of server `node` left the room with key or name `room`.
    /// `false` when it was not in.
    pub fn leave(&mut self, node: &str, nick: &str, room: &str) -> bool {
        let key = room_key(room);
        let lower = nick.to_ascii_lowercase();
        let Some(members) = self.nodes.get_mut(node) else {
            return false;
        };
        let Some(member) = members.get_mut(&lower) else {
            return false;
        };
        let Some(at) = member.rooms.iter().position(|r| *r == key) else {
            return false;
        };
        member.rooms.remove(at);
        member.ops.retain(|op| *op != key);
        if member.rooms.is_empty() {
            members.remove(&lower);
        }
        self.drop_from_room(&key, &lower, node);
        true
    }

    /// `old` of server `node` is now `new`: its rooms' keys (empty when
    /// it was not known).
    pub fn rename(&mut self, node: &str, old: &str, new: &str) -> Vec<String> {
        let (old_lower, new_lower) = (old.to_ascii_lowercase(), new.to_ascii_lowercase());
        let Some(members) = self.nodes.get_mut(node) else {
            return Vec::new();
        };
        let Some(mut member) = members.remove(&old_lower) else {
            return Vec::new();
        };
        member.nick = new.to_owned();
        let rooms = member.rooms.clone();
        members.insert(new_lower.clone(), member);
        for key in &rooms {
            if let Some(room) = self.rooms.get_mut(key) {
                room.members.remove(&old_lower);
                room.members.insert(new_lower.clone(), node.to_owned());
            }
        }
        rooms
    }

    /// `nick` of server `node` left the chat: the rooms it was in, as
    /// spelled.
    pub fn quit(&mut self, node: &str, nick: &str) -> Vec<String> {
        let lower = nick.to_ascii_lowercase();
        let Some(member) = self
            .nodes
            .get_mut(node)
            .and_then(|members| members.remove(&lower))
        else {
            return Vec::new();
        };
        self.leave_all(node, &lower, member.rooms)
    }

    /// Server `node` is gone: its members, each with the rooms it was in
    /// (as spelled), sorted by nick.
    pub fn node_lost(&mut self, node: &str) -> Vec<Moved> {
        let Some(members) = self.nodes.remove(node) else {
            return Vec::new();
        };
        let mut gone: Vec<Moved> = members
            .into_iter()
            .map(|(lower, member)| Moved {
                left: self.leave_all(node, &lower, member.rooms),
                nick: member.nick,
                joined: Vec::new(),
            })
            .collect();
        gone.sort_by(|a, b| a.nick.cmp(&b.nick));
        gone
    }

    /// Makes `nick` (of whichever server) an operator of the room with key
    /// or name `room`, or not. `false` when it is not a member there.
    pub fn set_op(&mut self, nick: &str, room: &str, op: bool) -> bool {
        let (key, lower) = (room_key(room), nick.to_ascii_lowercase());
        let Some(member) = self
            .nodes
            .values_mut()
            .find_map(|members| members.get_mut(&lower))
        else {
            return false;
        };
        if !member.rooms.contains(&key) {
            return false;
        }
        member.ops.retain(|r| *r != key);
        if op {
            member.ops.push(key);
        }
        true
    }

    /// Whether `nick` of another server is an operator of the room with
    /// key `key`: `None` when it is not a member there.
    pub fn is_op(&self, nick: &str, key: &str) -> Option<bool> {
        let lower = nick.to_ascii_lowercase();
        let member = self
            .nodes
            .values()
            .find_map(|members| members.get(&lower))?;
        member
            .rooms
            .iter()
            .any(|r| r == key)
            .then(|| member.ops.iter().any(|r| r == key))
    }

    /// Server `node`'s whole membership now (a snapshot): `members` of
    /// nick as spelled and rooms as spelled (`@` before those it is an
    /// operator of). Returns what changed, member by member, sorted by
    /// nick.
    pub fn replace_node(&mut self, node: &str, members: Vec<(String, Vec<String>)>) -> Vec<Moved> {
        let mut changes: BTreeMap<String, Moved> = BTreeMap::new();
        let wanted: HashMap<String, (String, Vec<String>)> = members
            .into_iter()
            .map(|(nick, rooms)| (nick.to_ascii_lowercase(), (nick, rooms)))
            .collect();
        let known: Vec<(String, RemoteMember)> = self
            .nodes
            .get(node)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (lower, member) in known {
            let keep: Vec<String> = wanted
                .get(&lower)
                .map(|(_, rooms)| {
                    rooms
                        .iter()
                        .map(|r| room_key(r.trim_start_matches('@')))
                        .collect()
                })
                .unwrap_or_default();
            for key in member.rooms.iter().filter(|key| !keep.contains(key)) {
                let name = self.room_name(key).unwrap_or(key).to_owned();
                if self.leave(node, &member.nick, key) {
                    let moved = changes.entry(lower.clone()).or_default();
                    moved.nick = member.nick.clone();
                    moved.left.push(name);
                }
            }
        }
        for (lower, (nick, rooms)) in wanted {
            for room in rooms {
                let (op, room) = match room.strip_prefix('@') {
                    Some(room) => (true, room.to_owned()),
                    None => (false, room),
                };
                if self.join(node, &nick, &room) {
                    let moved = changes.entry(lower.clone()).or_default();
                    moved.nick = nick.clone();
                    moved.joined.push(room.clone());
                }
                self.set_op(&nick, &room, op);
            }
        }
        changes.into_values().collect()
    }

    /// The servers mirrored.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// The nicks (as spelled) of the other servers' members of the room
    /// with key `key`, each with whether it is an operator there.
    pub fn members_of<'a>(&'a self, key: &'a str) -> impl Iterator<Item = (&'a str, bool)> + 'a {
        self.rooms.get(key).into_iter().flat_map(move |room| {
            room.members.iter().filter_map(move |(lower, node)| {
                let member = self.nodes.get(node)?.get(lower)?;
                Some((member.nick.as_str(), member.ops.iter().any(|r| r == key)))
            })
        })
    }

    /// The spelling of the room with key `key`, if any other server's
    /// client is in it.
    pub fn room_name(&self, key: &str) -> Option<&str> {
        self.rooms.get(key).map(|room| room.name.as_str())
    }

    /// Every room some other server's client is in: (key, name, members).
    pub fn rooms(&self) -> impl Iterator<Item = (&str, &str, usize)> {
        self.rooms
            .iter()
            .map(|(key, room)| (key.as_str(), room.name.as_str(), room.members.len()))
    }

    /// The member `nick` (any case) of another server, if one holds it.
    pub fn member(&self, nick: &str) -> Option<&RemoteMember> {
        let lower = nick.to_ascii_lowercase();
        self.nodes.values().find_map(|members| members.get(&lower))
    }

    /// The rooms' keys the member `nick` of another server is in (any
    /// server), empty when none.
    pub fn rooms_of(&self, nick: &str) -> Vec<String> {
        let lower = nick.to_ascii_lowercase();
        self.nodes
            .values()
            .find_map(|members| members.get(&lower))
            .map(|member| member.rooms.clone())
            .unwrap_or_default()
    }

    fn leave_all(&mut self, node: &str, lower: &str, rooms: Vec<String>) -> Vec<String> {
        rooms
            .into_iter()
            .map(|key| {
                let name = self.room_name(&key).unwrap_or(&key).to_owned();
                self.drop_from_room(&key, lower, node);
                name
            })
            .collect()
    }

    fn drop_from_room(&mut self, key: &str, lower: &str, node: &str) {
        if let Some(room) = self.rooms.get_mut(key) {
            if room.members.get(lower).is_some_and(|n| n == node) {
                room.members.remove(lower);
            }
            if room.members.is_empty() {
                self.rooms.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_leaves_are_sets() {
        let mut remote = Remote::default();
        assert!(remote.join("a", "Bob", "#Rust"));
        assert!(!remote.join("a", "bob", "#rust"));
        assert!(remote.join("a", "bob", "#lobby"));
        assert_eq!(
            remote.members_of("#rust").collect::<Vec<_>>(),
            [("bob", false)]
        );
        assert!(remote.set_op("BOB", "#Rust", true));
        assert_eq!(remote.is_op("bob", "#rust"), Some(true));
        assert_eq!(
            remote.members_of("#rust").collect::<Vec<_>>(),
            [("bob", true)]
        );
        assert!(!remote.set_op("bob", "#nowhere", true));
        assert!(remote.leave("a", "BOB", "#RUST"));
        assert!(!remote.leave("a", "bob", "#rust"));
        assert_eq!(remote.members_of("#rust").count(), 0);
        assert_eq!(remote.rooms().count(), 1);
        assert_eq!(remote.quit("a", "bob"), ["#lobby"]);
        assert_eq!(remote.rooms().count(), 0);
    }

    #[test]
    fn renames_move_a_member_in_every_room() {
        let mut remote = Remote::default();
        remote.join("a", "bob", "#lobby");
        remote.join("a", "bob", "#x");
        assert_eq!(remote.rename("a", "bob", "Robert"), ["#lobby", "#x"]);
        assert_eq!(
            remote.members_of("#x").collect::<Vec<_>>(),
            [("Robert", false)]
        );
        assert!(remote.rename("a", "bob", "x").is_empty());
    }

    #[test]
    fn a_lost_node_takes_its_members_and_a_snapshot_says_what_changed() {
        let mut remote = Remote::default();
        remote.join("a", "bob", "#lobby");
        remote.join("b", "carol", "#lobby");
        let lost = remote.node_lost("a");
        assert_eq!(lost.len(), 1);
        assert_eq!(
            (lost[0].nick.as_str(), &lost[0].left[..]),
            ("bob", &["#lobby".to_string()][..])
        );
        assert_eq!(
            remote.members_of("#lobby").collect::<Vec<_>>(),
            [("carol", false)]
        );
        let moved = remote.replace_node(
            "b",
            vec![
                ("carol".into(), vec!["#x".into()]),
                ("dan".into(), vec!["#lobby".into()]),
            ],
        );
        assert_eq!(
            moved,
            [
                Moved {
                    nick: "carol".into(),
                    joined: vec!["#x".into()],
                    left: vec!["#lobby".into()]
                },
                Moved {
                    nick: "dan".into(),
                    joined: vec!["#lobby".into()],
                    left: vec![]
                }
            ]
        );
        // The same snapshot again changes nothing.
        let again = remote.replace_node(
            "b",
            vec![
                ("carol".into(), vec!["#x".into()]),
                ("dan".into(), vec!["#lobby".into()]),
            ],
        );
        assert!(again.is_empty());
    }
}
