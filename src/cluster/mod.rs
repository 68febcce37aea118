//! Several servers, one chat: the Redis side (protocol 1.2, "Several
//! servers, one chat"; design in `docs/cluster.md`).
//!
//! Sans-IO in the sense that matters here: the sockets are the event
//! loop's (non-blocking, on its `mio::Poll`), the loop hands readiness in
//! and gets typed [`ClusterEvent`]s out; no thread, nothing that blocks.
//!
//! - `resp`: RESP2: commands encoded by hand, replies decoded by the
//!   `redis-protocol` crate with a pure, fuzzable [`resp::decode`];
//! - `script`: the Redis function library (number, store and publish a
//!   room's batch in one call; hold and release nicks) and the pure
//!   decoder of a published batch;
//! - `order`: one room's order: lines out in id order, gaps filled from
//!   the room's stream, what the stream lost reported as lost;
//! - `presence`: each server's membership in Redis, its changes on the
//!   presence channel, the servers alive, the snapshot after a reconnect;
//! - `probe`: the blocking check at start that the address is a Redis 7;
//! - `conn`: one non-blocking Redis connection with its buffers and its
//!   reconnect backoff;
//! - `engine`: [`RedisCluster`], the two connections (pipelined commands
//!   with their queue of pending replies; the subscriber) and everything
//!   above put together; `replies`: what each reply does, and reading the
//!   rooms' streams; `nicks`: nicks, guest numbers, private messages
//!   (both split from `engine` to keep files short).
//!
//! [`Cluster`] is what the server holds: `Single` (no `--cluster`, the
//! server as it always was, paying one predictable branch per accepted
//! line) or `Redis`.
//!
//! Depends on nothing of the server but `mio`: `chat` and `server` can
//! both use it.

pub mod conn;
pub mod engine;
mod nicks;
pub mod order;
pub mod presence;
pub mod probe;
mod replies;
pub mod resp;
pub mod script;

pub use engine::RedisCluster;

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The cluster cannot be reached: the request was not sent. The protocol's
/// `! cluster unavailable`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable;

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cluster unavailable")
    }
}

impl std::error::Error for Unavailable {}

/// How a server uses its Redis.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// Redis's address.
    pub addr: SocketAddr,
    /// Every key and channel starts with this and `:` (one Redis can hold
    /// several chats).
    pub prefix: String,
    /// Lines kept per room in its stream, for filling gaps (approximate:
    /// Redis trims whole nodes of the stream, `MAXLEN ~`).
    pub stream_len: u64,
    /// How long a nick stays held after its server stops refreshing it
    /// (refreshed every third of that).
    pub nick_ttl: Duration,
    /// Lines sent to Redis and not yet answered past which senders wait.
    pub max_in_flight_lines: usize,
}

impl ClusterSettings {
    /// The defaults for a Redis at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        ClusterSettings {
            addr,
            prefix: "loopchat".into(),
            stream_len: 10_000,
            nick_ttl: Duration::from_secs(20),
            max_in_flight_lines: 20_000,
        }
    }
}

/// Reads `redis://HOST:PORT` (or `HOST:PORT`) into an address, resolving
/// the host once, now.
pub fn parse_address(url: &str) -> Result<SocketAddr, String> {
    let rest = url.strip_prefix("redis://").unwrap_or(url);
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') || rest.contains('@') {
        return Err(format!(
            "{url:?} is not redis://HOST:PORT (no user, password or database)"
        ));
    }
    let with_port = if rest
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        rest.to_owned()
    } else {
        format!("{rest}:6379")
    };
    with_port
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {url:?}: {err}"))?
        .next()
        .ok_or_else(|| format!("{url:?} resolves to no address"))
}

/// What the engine reports to the server, in the order it happened.
#[derive(Debug, PartialEq, Eq)]
pub enum ClusterEvent {
    /// The command connection is ready: requests are taken again. (The
    /// subscriber connection comes and goes without this: what it missed
    /// is filled from the rooms' streams once it is back.)
    Up,
    /// The command connection was lost: requests are [`Unavailable`]
    /// until [`ClusterEvent::Up`].
    Down,
    /// Redis came back without the data it had (no persistence, or lost):
    /// every room's ids start over and this server follows them from the
    /// next line it sees; lines published before the loss that it had not
    /// delivered are gone, in every room (the chat state disconnects the
    /// members of every room).
    Restarted,
    /// A room's line, numbered by Redis, in id order with none skipped
    /// since the room's last `Line` (or its last `Lost`). Every server
    /// gets it, the sender's included.
    Line {
        /// The room, as the publisher named it.
        room: String,
        /// The room's id of the line.
        id: u64,
        /// The line, as published.
        line: Vec<u8>,
    },
    /// Ids `from..=to` of `room` were published but are gone from its
    /// stream before this server could deliver them: the room's members
    /// here missed them (the protocol disconnects them).
    Lost {
        /// The room.
        room: String,
        /// The first missing id.
        from: u64,
        /// The last missing id.
        to: u64,
    },
    /// A batch was numbered, stored and published: ids `first..first+count`.
    Accepted {
        /// The room.
        room: String,
        /// Its first line's id.
        first: u64,
        /// How many lines.
        count: usize,
    },
    /// A batch that Redis refused, or that was in flight when the command
    /// connection dropped (then it may still have been published: its
    /// lines are delivered like any other if so).
    Failed {
        /// The room.
        room: String,
        /// How many lines.
        count: usize,
        /// The mark the batch was published under
        /// ([`RedisCluster::publish_from`]).
        mark: u64,
        /// Who sent its lines, as given to [`RedisCluster::publish_from`]
        /// (in order; a sender's consecutive lines name it once).
        senders: Vec<u64>,
    },
    /// The answer to [`RedisCluster::claim_nick`]: whether this server
    /// holds the nick now.
    Nick {
        /// The claim's ticket.
        ticket: u64,
        /// The nick claimed.
        nick: String,
        /// `Ok(true)`: held; `Ok(false)`: another server holds it.
        won: Result<bool, Unavailable>,
    },
    /// A private message for a client of this server, from another (or
    /// this) server, as given to [`RedisCluster::send_private`].
    Private {
        /// The message, as sent.
        line: Vec<u8>,
    },
    /// The answer to [`RedisCluster::send_private`]: `Ok(true)` when the
    /// server holding the nick took it, `Ok(false)` when no server did.
    PrivateSent {
        /// The request's ticket.
        ticket: u64,
        /// Whether a server took it.
        delivered: Result<bool, Unavailable>,
    },
    /// The answer to [`RedisCluster::claim_room`]: whether this server
    /// made the room first.
    RoomMade {
        /// The claim's ticket.
        ticket: u64,
        /// `Ok(true)`: first (or made here before, within the claim's
        /// span); `Ok(false)`: another server made it a moment before.
        won: Result<bool, Unavailable>,
    },
    /// A nick this server held is held by another now (its expiry passed
    /// while Redis or this server was unreachable, and someone took it).
    NickLost {
        /// The nick.
        nick: String,
    },
    /// A message another server published with
    /// [`RedisCluster::publish_presence`] (or `sync_presence`,
    /// `leave_cluster`).
    Presence {
        /// The publishing server's token.
        node: String,
        /// The message, as published.
        msg: Vec<u8>,
    },
    /// The servers alive, asked every third of the nick lifetime.
    Nodes {
        /// Whether this server was still counted alive (`false`: its
        /// expiry passed, the others announced its clients as lost, and it
        /// must publish its whole membership again).
        present: bool,
        /// The other servers alive.
        live: Vec<String>,
    },
    /// Every other server's membership, read once both connections are
    /// ready (at the start and after any reconnect).
    Members {
        /// (server, its members' values).
        nodes: Vec<(String, presence::Membership)>,
        /// Every room's shared state: (room key, value), as published
        /// with [`RedisCluster::publish_room`].
        rooms: Vec<(String, Vec<u8>)>,
        /// Every account and every account's published keys, as set with
        /// [`RedisCluster::publish_shared`].
        accounts: Vec<Vec<u8>>,
    },
    /// The answer to [`RedisCluster::read_backlog`]: the room's newest
    /// lines in its stream, oldest first, with their ids.
    Backlog {
        /// The room.
        room: String,
        /// (id, line as published).
        lines: Vec<(u64, Vec<u8>)>,
    },
    /// The answer to [`RedisCluster::guest_number`].
    Guest {
        /// The request's ticket.
        ticket: u64,
        /// The number.
        number: Result<u64, Unavailable>,
    },
}

/// Counters of the engine, for `/metrics` and the tests.
#[derive(Clone, Debug, Default)]
pub struct ClusterStats {
    /// Times the engine came up (connected, subscribed).
    pub ups: u64,
    /// Connections lost (either of the two).
    pub disconnects: u64,
    /// Calls to the publish function (one per room per turn).
    pub batches_sent: u64,
    /// Lines Redis numbered for this server.
    pub lines_accepted: u64,
    /// Lines delivered in order (every server's).
    pub lines_delivered: u64,
    /// Gaps seen on the subscription.
    pub gaps: u64,
    /// Fills read from the streams (gaps and position checks).
    pub fills: u64,
    /// Lines lost: gone from the stream before they could be delivered.
    pub lines_lost: u64,
    /// Times Redis came back without its data.
    pub restarts: u64,
    /// Rounds of nick refreshes answered.
    pub nick_refreshes: u64,
}

/// What the server holds: one server alone, or one of a cluster.
pub enum Cluster {
    /// No `--cluster`: lines fan out at once, nicks and guest numbers are
    /// local. Nothing of the cluster runs.
    Single,
    /// Lines, nicks and guest numbers go through Redis.
    Redis(Box<RedisCluster>),
}

impl Cluster {
    /// The engine, when there is one. Inlined: on the single-server path
    /// this is one comparison of a discriminant per call, with no call
    /// and no data touched beyond it.
    #[inline(always)]
    pub fn redis(&mut self) -> Option<&mut RedisCluster> {
        match self {
            Cluster::Single => None,
            Cluster::Redis(redis) => Some(redis),
        }
    }

    /// Whether this server is alone (no cluster).
    #[inline(always)]
    pub fn is_single(&self) -> bool {
        matches!(self, Cluster::Single)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_with_or_without_scheme_and_port() {
        assert_eq!(
            parse_address("redis://127.0.0.1:6380").unwrap(),
            "127.0.0.1:6380".parse().unwrap()
        );
        assert_eq!(
            parse_address("127.0.0.1").unwrap(),
            "127.0.0.1:6379".parse().unwrap()
        );
        assert_eq!(
            parse_address("redis://[::1]:7000/").unwrap(),
            "[::1]:7000".parse().unwrap()
        );
        assert!(parse_address("redis://user:pw@host:1").is_err());
        assert!(parse_address("redis://127.0.0.1:6379/2").is_err());
        assert!(parse_address("").is_err());
    }

    #[test]
    fn the_single_server_holds_no_engine() {
        let mut cluster = Cluster::Single;
        assert!(cluster.is_single());
        assert!(cluster.redis().is_none());
    }
}
