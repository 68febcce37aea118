//! Nicks and guest numbers across servers, and private messages to the
//! server holding a nick: part of [`RedisCluster`], split from `engine`.
//! A nick is `SET NICK OWNER NX PX ttl` (one winner however many servers
//! race), refreshed by its owner every third of its lifetime, released by
//! a compare-and-delete; guest numbers come from one counter. A room's
//! making is claimed the same way, for a few seconds: of two servers
//! making one room at once, one maker is its operator.

use super::engine::RedisCluster;
use super::replies::Pending;
use super::resp;
use super::{ClusterEvent, Unavailable};
use std::time::{Duration, Instant};

/// How long a room's making stays claimed ([`RedisCluster::claim_room`]):
/// far longer than a server takes to hear of another's new member, after
/// which every server knows the room has members and makes no operator.
pub const ROOM_CLAIM: Duration = Duration::from_secs(10);

impl RedisCluster {
    /// Claims `nick` (its canonical form) for this server; the answer is a
    /// [`ClusterEvent::Nick`] with the returned ticket. A won nick is held
    /// (its expiry refreshed) until [`RedisCluster::release_nick`].
    pub fn claim_nick(&mut self, nick: &str) -> Result<u64, Unavailable> {
        if !self.up {
            return Err(Unavailable);
        }
        let ticket = self.ticket();
        if self.owned.contains(nick) {
            // Already this server's (given up here, not yet released).
            let nick = nick.to_owned();
            self.events.push(ClusterEvent::Nick {
                ticket,
                nick,
                won: Ok(true),
            });
            return Ok(ticket);
        }
        let key = self.nick_key(nick);
        self.set_if_free(&key, self.settings.nick_ttl, false);
        self.pending.push_back(Pending::Claim {
            ticket,
            nick: nick.to_owned(),
        });
        Ok(ticket)
    }

    /// Gives `nick` up: deleted in Redis if this server still holds it.
    /// Down, it is only forgotten: its expiry frees it.
    pub fn release_nick(&mut self, nick: &str) {
        if !self.owned.remove(nick) || !self.loaded {
            return;
        }
        let key = self.nick_key(nick);
        self.release(&key);
    }

    /// `SET key TOKEN NX [GET] PX span`: `key` becomes this server's (its
    /// token) for `span` unless another holds it; with `get` the answer is
    /// the holder's token (nil when this server won), else `OK` or nil.
    fn set_if_free(&mut self, key: &str, span: std::time::Duration, get: bool) {
        let span = span.as_millis().to_string();
        let mut args: Vec<&[u8]> = vec![b"SET", key.as_bytes(), self.node.as_bytes(), b"NX"];
        if get {
            args.push(b"GET");
        }
        args.extend([&b"PX"[..], span.as_bytes()]);
        resp::encode(self.cmd.queue(), &args);
    }

    /// Deletes `key` in Redis if this server holds it (its value is this
    /// server's token): a compare-and-delete, `loopchat_release`.
    fn release(&mut self, key: &str) {
        resp::encode(
            self.cmd.queue(),
            &[
                b"FCALL",
                &b"loopchat_release"[..],
                b"1",
                key.as_bytes(),
                self.node.as_bytes(),
            ],
        );
        self.pending.push_back(Pending::Ignore);
    }

    /// Claims the making of room `room` (its key) for this server, for
    /// [`ROOM_CLAIM`]: two servers making one room before either heard of
    /// the other's member would each make their maker its operator. The
    /// answer is a [`ClusterEvent::RoomMade`] with the returned ticket.
    pub fn claim_room(&mut self, room: &str) -> Result<u64, Unavailable> {
        if !self.up {
            return Err(Unavailable);
        }
        let ticket = self.ticket();
        let key = self.room_claim_key(room);
        self.set_if_free(&key, ROOM_CLAIM, true);
        self.pending.push_back(Pending::RoomClaim { ticket });
        Ok(ticket)
    }

    /// Room `room` (its key) is gone here: its making, if this server
    /// claimed it, is given back (a compare-and-delete), so that whoever
    /// makes it next, anywhere, is its operator.
    pub fn release_room(&mut self, room: &str) {
        if !self.up || !self.loaded {
            return;
        }
        let key = self.room_claim_key(room);
        self.release(&key);
    }

    fn room_claim_key(&self, room: &str) -> String {
        format!("{}:made:{room}", self.settings.prefix)
    }

    /// Nicks this server holds.
    pub fn owned_nicks(&self) -> impl Iterator<Item = &str> {
        self.owned.iter().map(String::as_str)
    }

    /// Asks for the next guest number; the answer is a
    /// [`ClusterEvent::Guest`] with the returned ticket.
    pub fn guest_number(&mut self) -> Result<u64, Unavailable> {
        self.guest_numbers(1)
    }

    /// Asks for `count` guest numbers at once (one `INCRBY`); the answer
    /// is a [`ClusterEvent::Guest`] with the last of them.
    pub fn guest_numbers(&mut self, count: u64) -> Result<u64, Unavailable> {
        if !self.up {
            return Err(Unavailable);
        }
        let ticket = self.ticket();
        let key = format!("{}:guests", self.settings.prefix);
        let count = count.max(1).to_string();
        resp::encode(
            self.cmd.queue(),
            &[b"INCRBY", key.as_bytes(), count.as_bytes()],
        );
        self.pending.push_back(Pending::Guest { ticket });
        Ok(ticket)
    }

    pub(super) fn nick_key(&self, nick: &str) -> String {
        format!("{}:nick:{nick}", self.settings.prefix)
    }

    pub(super) fn hold_nicks(&mut self, now: Instant) {
        self.next_hold = now + self.settings.nick_ttl / 3;
        let nicks: Vec<String> = self.owned.iter().cloned().collect();
        let ttl = self.settings.nick_ttl.as_millis().to_string();
        let out = self.cmd.queue();
        resp::array_header(out, 3 + nicks.len() + 2);
        resp::bulk(out, b"FCALL");
        resp::bulk(out, b"loopchat_hold");
        resp::bulk_u64(out, nicks.len() as u64);
        for nick in &nicks {
            let key = format!("{}:nick:{nick}", self.settings.prefix);
            resp::bulk(self.cmd.queue(), key.as_bytes());
        }
        let out = self.cmd.queue();
        resp::bulk(out, self.node.as_bytes());
        resp::bulk(out, ttl.as_bytes());
        self.pending.push_back(Pending::Hold { nicks });
    }

    /// Sends `line` to the server holding `nick` (its canonical form), on
    /// that server's own channel: it arrives there as
    /// [`ClusterEvent::Private`]. The answer, [`ClusterEvent::PrivateSent`]
    /// with the returned ticket, says whether a server took it.
    pub fn send_private(&mut self, nick: &str, line: &[u8]) -> Result<u64, Unavailable> {
        if !self.up {
            return Err(Unavailable);
        }
        let ticket = self.ticket();
        let key = self.nick_key(nick);
        let inboxes = format!("{}:node:", self.settings.prefix);
        resp::encode(
            self.cmd.queue(),
            &[
                &b"FCALL"[..],
                b"loopchat_pm",
                b"1",
                key.as_bytes(),
                inboxes.as_bytes(),
                line,
            ],
        );
        self.pending.push_back(Pending::Private { ticket });
        Ok(ticket)
    }
}
