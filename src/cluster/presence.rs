//! Who is where, across servers: each server's membership (its clients'
//! nicks and rooms) in a Redis hash of its own, every change published on
//! the presence channel in the same function call, a `nodes` hash of the
//! servers alive with their expiry, and the snapshot read after a
//! (re)connect. Part of [`RedisCluster`], split from `engine`.
//!
//! The engine carries the messages; what they say (joins, leaves, renames)
//! is the server's (`src/server/cluster_presence.rs`): here a message is
//! bytes, tagged with the server that published it.

use super::engine::RedisCluster;
use super::replies::Pending;
use super::resp;
use super::{ClusterEvent, Unavailable};
use std::time::{Duration, Instant};

/// The longest a server is counted alive after its last word: a dead
/// server's clients are announced lost within this and a third of it
/// (20 s), inside the protocol's 30 s whatever `--cluster-nick-ttl`.
const MAX_NODE_LIFETIME: Duration = Duration::from_secs(15);

/// How long a server is counted alive after it said so: the nicks'
/// lifetime, at most [`MAX_NODE_LIFETIME`].
fn node_lifetime(nick_ttl: Duration) -> Duration {
    nick_ttl.min(MAX_NODE_LIFETIME)
}

/// One server's membership as read from Redis: the values of its hash (one
/// per member), as the server wrote them.
pub type Membership = Vec<Vec<u8>>;

impl RedisCluster {
    fn nodes_key(&self) -> String {
        format!("{}:nodes", self.settings.prefix)
    }

    fn members_prefix(&self) -> String {
        format!("{}:members:", self.settings.prefix)
    }

    fn rooms_key(&self) -> String {
        format!("{}:rooms", self.settings.prefix)
    }

    fn members_key(&self) -> String {
        format!("{}{}", self.members_prefix(), self.node)
    }

    fn presence_message(&self, msg: &[u8]) -> Vec<u8> {
        [self.node.as_bytes(), b"\n", msg].concat()
    }

    /// Publishes `msg` on the presence channel (it reaches every other
    /// server as [`ClusterEvent::Presence`]) and, in the same call, sets
    /// the fields of this server's membership hash in `fields` (an empty
    /// value deletes the field). Lines queued this turn go first, so the
    /// others see what was said before the change in that order.
    pub fn publish_presence(
        &mut self,
        msg: &[u8],
        fields: &[(&[u8], &[u8])],
    ) -> Result<(), Unavailable> {
        let key = self.members_key();
        self.presence_call(b"loopchat_presence", &key, msg, fields)
    }

    /// Like [`RedisCluster::publish_presence`], setting the field
    /// `room_key` of the cluster's `rooms` hash (each room's topic and
    /// bans) to `state`.
    pub fn publish_room(
        &mut self,
        msg: &[u8],
        room_key: &[u8],
        state: &[u8],
    ) -> Result<(), Unavailable> {
        let key = self.rooms_key();
        self.presence_call(b"loopchat_presence", &key, msg, &[(room_key, state)])
    }

    /// Like [`RedisCluster::publish_presence`], setting `fields` of the
    /// cluster's hash `hash` (`accounts`, `keys`: what a server reads when
    /// it connects) instead of this server's membership.
    pub fn publish_shared(
        &mut self,
        hash: &str,
        msg: &[u8],
        fields: &[(&[u8], &[u8])],
    ) -> Result<(), Unavailable> {
        let key = format!("{}:{hash}", self.settings.prefix);
        self.presence_call(b"loopchat_presence", &key, msg, fields)
    }

    /// Like [`RedisCluster::publish_presence`], with `fields` the whole
    /// membership of this server (the hash is replaced).
    pub fn sync_presence(
        &mut self,
        msg: &[u8],
        fields: &[(&[u8], &[u8])],
    ) -> Result<(), Unavailable> {
        let key = self.members_key();
        self.presence_call(b"loopchat_sync", &key, msg, fields)
    }

    fn presence_call(
        &mut self,
        function: &[u8],
        key: &str,
        msg: &[u8],
        fields: &[(&[u8], &[u8])],
    ) -> Result<(), Unavailable> {
        if !self.up {
            return Err(Unavailable);
        }
        self.send_batches();
        let msg = self.presence_message(msg);
        let channel = self.presence.clone();
        let out = self.cmd.queue();
        resp::array_header(out, 6 + 2 * fields.len());
        for arg in [
            &b"FCALL"[..],
            function,
            b"1",
            key.as_bytes(),
            &channel,
            &msg,
        ] {
            resp::bulk(out, arg);
        }
        for (field, value) in fields {
            resp::bulk(out, field);
            resp::bulk(out, value);
        }
        self.pending.push_back(Pending::Ignore);
        Ok(())
    }

    /// A stopping server takes itself out of the cluster: its nicks are
    /// released, its membership deleted and `msg` published, so the others
    /// announce its clients (and may take their nicks) at once rather than
    /// after the expiry.
    pub fn leave_cluster(&mut self, msg: &[u8]) {
        if !self.loaded {
            return;
        }
        let owned: Vec<String> = self.owned.iter().cloned().collect();
        for nick in owned {
            self.release_nick(&nick);
        }
        let (nodes, prefix) = (self.nodes_key(), self.members_prefix());
        let msg = self.presence_message(msg);
        let channel = self.presence.clone();
        resp::encode(
            self.cmd.queue(),
            &[
                &b"FCALL"[..],
                b"loopchat_leave",
                b"1",
                nodes.as_bytes(),
                self.node.as_bytes(),
                prefix.as_bytes(),
                &channel,
                &msg,
            ],
        );
        self.pending.push_back(Pending::Ignore);
    }

    /// Says this server is alive for another lifetime and asks which are
    /// (answered on this server's inbox, as [`ClusterEvent::Nodes`]).
    pub(super) fn ask_alive(&mut self, now: Instant) {
        let lifetime = node_lifetime(self.settings.nick_ttl);
        self.next_alive = now + lifetime / 3;
        let (nodes, prefix) = (self.nodes_key(), self.members_prefix());
        let ttl = lifetime.as_millis().to_string();
        let inbox = self.inbox.clone();
        resp::encode(
            self.cmd.queue(),
            &[
                &b"FCALL"[..],
                b"loopchat_alive",
                b"1",
                nodes.as_bytes(),
                self.node.as_bytes(),
                ttl.as_bytes(),
                prefix.as_bytes(),
                &inbox,
            ],
        );
        self.pending.push_back(Pending::Ignore);
    }

    /// Reads every server's membership (answered on this server's inbox,
    /// in order with the presence channel, as [`ClusterEvent::Members`]).
    pub(super) fn ask_members(&mut self) {
        let (nodes, prefix) = (self.nodes_key(), self.members_prefix());
        let (inbox, rooms) = (self.inbox.clone(), self.rooms_key());
        let accounts = format!("{}:accounts", self.settings.prefix);
        let keys = format!("{}:keys", self.settings.prefix);
        resp::encode(
            self.cmd.queue(),
            &[
                &b"FCALL"[..],
                b"loopchat_members",
                b"4",
                nodes.as_bytes(),
                rooms.as_bytes(),
                accounts.as_bytes(),
                keys.as_bytes(),
                prefix.as_bytes(),
                &inbox,
            ],
        );
        self.pending.push_back(Pending::Ignore);
    }

    /// A message on this server's inbox that is an answer of
    /// `loopchat_alive` (`#N`) or `loopchat_members` (`#M`); `false` for
    /// anything else (a private message).
    pub(super) fn inbox_answer(&mut self, msg: &[u8]) -> bool {
        let mut lines = msg.split(|&b| b == b'\n');
        let head = lines.next().unwrap_or_default();
        let text = |line: &[u8]| std::str::from_utf8(line).ok().map(str::to_owned);
        match head {
            b"#N0" | b"#N1" => {
                let live = lines
                    .filter_map(text)
                    .filter(|node| *node != self.node)
                    .collect();
                let present = head == b"#N1";
                self.events.push(ClusterEvent::Nodes { present, live });
                true
            }
            b"#M" => {
                let mut nodes: Vec<(String, Membership)> = Vec::new();
                let mut rooms = Vec::new();
                let mut accounts = Vec::new();
                for line in lines {
                    if line.starts_with(b"A\x1f") {
                        accounts.push(line.to_vec());
                    } else if let Some(room) = line.strip_prefix(b"%") {
                        if let Some(at) = memchr::memchr(b' ', room) {
                            if let Some(key) = text(&room[..at]) {
                                rooms.push((key, room[at + 1..].to_vec()));
                            }
                        }
                    } else if let Some(node) = line.strip_prefix(b"=") {
                        if let Some(node) = text(node) {
                            nodes.push((node, Vec::new()));
                        }
                    } else if let Some((_, members)) = nodes.last_mut() {
                        members.push(line.to_vec());
                    }
                }
                nodes.retain(|(node, _)| *node != self.node);
                self.events.push(ClusterEvent::Members {
                    nodes,
                    rooms,
                    accounts,
                });
                true
            }
            _ => false,
        }
    }

    /// A message on the presence channel: `NODE\nMSG`; this server's own
    /// are dropped.
    pub(super) fn presence_arrived(&mut self, msg: Vec<u8>) {
        let Some(at) = memchr::memchr(b'\n', &msg) else {
            return;
        };
        let Ok(node) = std::str::from_utf8(&msg[..at]) else {
            return;
        };
        if node == self.node {
            return;
        }
        let node = node.to_owned();
        self.events.push(ClusterEvent::Presence {
            node,
            msg: msg[at + 1..].to_vec(),
        });
    }
}
