//! [`RedisCluster`]: the Redis side of one server, inside its event loop.
//!
//! Two connections on the loop's poller: a command connection, pipelined,
//! with the queue of what each awaited reply answers ([`Pending`]), and a
//! subscriber connection on the cluster's one channel. The loop hands it
//! readiness ([`RedisCluster::ready`]) and calls [`RedisCluster::turn`]
//! once per turn (which sends the turn's batches and runs the clocks); it
//! hands back typed [`ClusterEvent`]s ([`RedisCluster::take_events`]).
//! Nothing here blocks: a slow or paused Redis leaves lines in flight,
//! [`RedisCluster::congested`] tells the loop to stop reading the senders
//! whose lines are not yet accepted ([`RedisCluster::accepted_mark`]), the
//! way the history writer does.

use super::conn::{ConnError, RedisConn};
use super::order::RoomOrder;
use super::replies::Pending;
use super::resp::{self, Reply};
use super::script::LIBRARY;
use super::{ClusterEvent, ClusterSettings, ClusterStats, Unavailable};
use log::{info, warn};
use mio::{Registry, Token};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How often the subscriber connection is pinged, so a socket Redis
/// forgot is found even when no line flows.
pub(super) const SUB_PING_EVERY: Duration = Duration::from_secs(5);
/// A ping unanswered this long: the subscriber connection is dropped and
/// made again (after which every room's position is checked).
const SUB_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// The sender of a line published without one ([`RedisCluster::publish`]).
const NO_SENDER: u64 = u64::MAX;

/// The Redis side of one server; see the module docs.
pub struct RedisCluster {
    pub(super) settings: ClusterSettings,
    /// This server's owner token for the nicks it holds.
    pub(super) node: String,
    pub(super) channel: Vec<u8>,
    /// This server's own channel: private messages for its clients.
    pub(super) inbox: Vec<u8>,
    /// The channel of joins, leaves, renames and quits.
    pub(super) presence: Vec<u8>,
    /// When this server next says it is alive.
    pub(super) next_alive: Instant,
    pub(super) cmd: RedisConn,
    pub(super) sub: RedisConn,
    pub(super) pending: VecDeque<Pending>,
    /// `FUNCTION LOAD` and the epoch answered on the current command
    /// connection: it takes requests.
    pub(super) loaded: bool,
    /// The epoch of Redis's data when last connected.
    pub(super) epoch: Option<Vec<u8>>,
    /// The subscription is confirmed on the current subscriber connection.
    pub(super) subscribed: bool,
    /// What the last Up/Down event said.
    pub(super) up: bool,
    /// This turn's lines per room, in the order the rooms first spoke,
    /// with each line's sender ([`RedisCluster::publish_from`]).
    pub(super) batches: Vec<(String, Vec<Vec<u8>>, Vec<u64>)>,
    pub(super) batch_index: HashMap<String, usize>,
    pub(super) rooms: HashMap<String, RoomOrder>,
    /// Nicks this server holds.
    pub(super) owned: BTreeSet<String>,
    pub(super) next_hold: Instant,
    pub(super) sub_ping_at: Instant,
    pub(super) sub_ping_sent: Option<Instant>,
    /// The last turn whose batches were sent, and the last whose batches
    /// were all answered.
    pub(super) mark: u64,
    pub(super) accepted: u64,
    pub(super) in_flight: usize,
    pub(super) next_ticket: u64,
    pub(super) events: Vec<ClusterEvent>,
    pub(super) replies: Vec<Reply>,
    pub(super) stats: ClusterStats,
}

impl RedisCluster {
    /// The engine for `settings`, with its two connections on `tokens`
    /// (command, subscriber). It starts connecting at once; until the
    /// command connection is ready it is down (every request is
    /// [`Unavailable`]), then it says [`ClusterEvent::Up`].
    pub fn new(settings: ClusterSettings, registry: &Registry, tokens: [Token; 2]) -> Self {
        let now = Instant::now();
        let node = node_token();
        let mut cluster = RedisCluster {
            channel: format!("{}:lines", settings.prefix).into_bytes(),
            inbox: format!("{}:node:{node}", settings.prefix).into_bytes(),
            presence: format!("{}:presence", settings.prefix).into_bytes(),
            next_alive: now,
            node,
            cmd: RedisConn::new(settings.addr, tokens[0]),
            sub: RedisConn::new(settings.addr, tokens[1]),
            settings,
            pending: VecDeque::new(),
            loaded: false,
            epoch: None,
            subscribed: false,
            up: false,
            batches: Vec::new(),
            batch_index: HashMap::new(),
            rooms: HashMap::new(),
            owned: BTreeSet::new(),
            next_hold: now,
            sub_ping_at: now + SUB_PING_EVERY,
            sub_ping_sent: None,
            mark: 0,
            accepted: 0,
            in_flight: 0,
            next_ticket: 0,
            events: Vec::new(),
            replies: Vec::new(),
            stats: ClusterStats::default(),
        };
        cluster.reconnect(registry, now);
        cluster
    }

    /// This server's owner token (what its nicks hold in Redis).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether the command connection is ready: requests are taken.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether the poll token is one of this engine's.
    pub fn owns(&self, token: Token) -> bool {
        token == self.cmd.token() || token == self.sub.token()
    }

    /// Lines sent to Redis and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Too many lines in flight: the loop stops reading the senders whose
    /// lines are not accepted yet (their mark is above
    /// [`RedisCluster::accepted_mark`]) until Redis catches up.
    pub fn congested(&self) -> bool {
        self.in_flight >= self.settings.max_in_flight_lines
    }

    /// The last turn mark whose lines Redis answered (accepted, or failed
    /// with the connection); see [`RedisCluster::publish`].
    pub fn accepted_mark(&self) -> u64 {
        self.accepted
    }

    /// Counters for `/metrics` and the tests.
    pub fn stats(&self) -> &ClusterStats {
        &self.stats
    }

    /// The rooms this server follows and the next id it will deliver in
    /// each (tests, metrics).
    pub fn positions(&self) -> impl Iterator<Item = (&str, Option<u64>)> {
        self.rooms
            .iter()
            .map(|(room, order)| (room.as_str(), order.expected()))
    }

    /// Takes the events since the last call, in order.
    pub fn take_events(&mut self) -> Vec<ClusterEvent> {
        std::mem::take(&mut self.events)
    }

    /// Queues `line` for `room`: every line a room gets in one turn goes
    /// to Redis in one call at [`RedisCluster::turn`]. Returns the turn's
    /// mark, which [`RedisCluster::accepted_mark`] reaches once Redis has
    /// answered. The line is delivered (to this server's members too) when
    /// it comes back numbered, as [`ClusterEvent::Line`].
    pub fn publish(&mut self, room: &str, line: &[u8]) -> Result<u64, Unavailable> {
        self.publish_from(room, line, NO_SENDER)
    }

    /// [`RedisCluster::publish`] for `sender` (a number of the caller's:
    /// the server's client id), named in the [`ClusterEvent::Failed`] of
    /// its line's batch if that batch fails.
    pub fn publish_from(
        &mut self,
        room: &str,
        line: &[u8],
        sender: u64,
    ) -> Result<u64, Unavailable> {
        if !self.up {
            return Err(Unavailable);
        }
        let index = match self.batch_index.get(room) {
            Some(&index) => index,
            None => {
                self.batches.push((room.to_owned(), Vec::new(), Vec::new()));
                self.batch_index
                    .insert(room.to_owned(), self.batches.len() - 1);
                self.batches.len() - 1
            }
        };
        let batch = &mut self.batches[index];
        batch.1.push(line.to_vec());
        if sender != NO_SENDER && batch.2.last() != Some(&sender) {
            batch.2.push(sender);
        }
        self.in_flight += 1;
        Ok(self.mark + 1)
    }

    /// Follows `room` from now on (a member here joined it): its lines are
    /// delivered from the next id Redis gives it, and a gap in them is
    /// filled or reported even if none came before. Does nothing for a
    /// room already followed, or while down (it is followed from its first
    /// line then).
    pub fn follow(&mut self, room: &str) {
        if !self.up || self.rooms.contains_key(room) {
            return;
        }
        self.rooms.insert(room.to_owned(), RoomOrder::default());
        let (seq, _) = self.room_keys(room);
        resp::encode(self.cmd.queue(), &[&b"GET"[..], seq.as_bytes()]);
        self.pending.push_back(Pending::Start {
            room: room.to_owned(),
        });
    }

    /// When the engine needs a turn without an event: a reconnection, a
    /// nick refresh, a ping, or input left to read. `None`: only events.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.cmd.read_again() || self.sub.read_again() {
            return Some(Instant::now());
        }
        let mut at = self
            .cmd
            .retry_at()
            .into_iter()
            .chain(self.sub.retry_at())
            .min();
        if self.loaded && !self.owned.is_empty() {
            at = Some(at.map_or(self.next_hold, |at| at.min(self.next_hold)));
        }
        if self.loaded {
            at = Some(at.map_or(self.next_alive, |at| at.min(self.next_alive)));
        }
        if self.subscribed {
            let ping = match self.sub_ping_sent {
                Some(sent) => sent + SUB_PING_TIMEOUT,
                None => self.sub_ping_at,
            };
            at = Some(at.map_or(ping, |at| at.min(ping)));
        }
        at
    }

    /// A readiness event on one of the engine's tokens.
    pub fn ready(&mut self, token: Token, registry: &Registry, now: Instant) {
        if token == self.cmd.token() {
            self.serve_cmd(registry, now);
        } else if token == self.sub.token() {
            self.serve_sub(registry, now);
        }
    }

    /// Once per loop turn, after the turn's commands: reconnects what is
    /// due, reads input left over, refreshes the held nicks, pings the
    /// subscriber, sends the turn's batches (one call per room) and
    /// everything queued.
    pub fn turn(&mut self, registry: &Registry, now: Instant) {
        if self.cmd.retry_due(now) || self.sub.retry_due(now) {
            self.reconnect(registry, now);
        }
        if self.cmd.read_again() {
            self.serve_cmd(registry, now);
        }
        if self.sub.read_again() {
            self.serve_sub(registry, now);
        }
        if self.loaded && !self.owned.is_empty() && now >= self.next_hold {
            self.hold_nicks(now);
        }
        if self.loaded && now >= self.next_alive {
            self.ask_alive(now);
        }
        if self.subscribed {
            match self.sub_ping_sent {
                Some(sent) if now >= sent + SUB_PING_TIMEOUT => {
                    self.sub_failed(
                        registry,
                        now,
                        ConnError::Unexpected("no answer to PING".into()),
                    );
                }
                None if now >= self.sub_ping_at => {
                    resp::encode(self.sub.queue(), &[b"PING"]);
                    self.sub_ping_sent = Some(now);
                }
                _ => {}
            }
        }
        self.send_batches();
        if let Err(err) = self.cmd.send() {
            self.cmd_failed(registry, now, err);
        }
        if let Err(err) = self.sub.send() {
            self.sub_failed(registry, now, err);
        }
    }

    /// Sends what was queued since the turn (commands the loop asked for
    /// while handling the turn's events), without waiting for the next.
    pub fn flush(&mut self, registry: &Registry, now: Instant) {
        if let Err(err) = self.cmd.send() {
            self.cmd_failed(registry, now, err);
        }
        if let Err(err) = self.sub.send() {
            self.sub_failed(registry, now, err);
        }
    }

    pub(super) fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    pub(super) fn room_keys(&self, room: &str) -> (String, String) {
        let prefix = &self.settings.prefix;
        (
            format!("{prefix}:room:{room}:seq"),
            format!("{prefix}:room:{room}:log"),
        )
    }

    /// Starts whichever connection is closed and due, and queues its
    /// first commands (sent once the connect finishes).
    fn reconnect(&mut self, registry: &Registry, now: Instant) {
        if self.cmd.retry_due(now) {
            match self.cmd.start(registry, now) {
                Ok(()) => {
                    resp::encode(
                        self.cmd.queue(),
                        &[&b"FUNCTION"[..], b"LOAD", b"REPLACE", LIBRARY.as_bytes()],
                    );
                    self.pending.push_back(Pending::Load);
                    // The epoch names this Redis's data: a new one after a
                    // reconnect means the data (and the rooms' ids) is gone.
                    // A value of its own per connection: a Redis that lost
                    // its data gets a value no one saw before.
                    let epoch = format!("{}:epoch", self.settings.prefix);
                    let value = format!("{}-{}", self.node, self.stats.disconnects);
                    resp::encode(
                        self.cmd.queue(),
                        &[&b"SET"[..], epoch.as_bytes(), value.as_bytes(), b"NX"],
                    );
                    self.pending.push_back(Pending::Ignore);
                    resp::encode(self.cmd.queue(), &[&b"GET"[..], epoch.as_bytes()]);
                    self.pending.push_back(Pending::Epoch);
                    // Counted alive before anything this server publishes.
                    self.ask_alive(now);
                }
                Err(err) => warn!(
                    "cluster: cannot connect to redis at {}: {err}",
                    self.settings.addr
                ),
            }
        }
        if self.sub.retry_due(now) {
            match self.sub.start(registry, now) {
                Ok(()) => {
                    let name = format!("loopchat-sub-{}", self.node);
                    resp::encode(
                        self.sub.queue(),
                        &[&b"CLIENT"[..], b"SETNAME", name.as_bytes()],
                    );
                    let (lines, inbox) = (self.channel.clone(), self.inbox.clone());
                    let presence = self.presence.clone();
                    resp::encode(
                        self.sub.queue(),
                        &[&b"SUBSCRIBE"[..], &lines, &inbox, &presence],
                    );
                }
                Err(err) => warn!(
                    "cluster: cannot connect to redis at {}: {err}",
                    self.settings.addr
                ),
            }
        }
    }

    pub(super) fn send_batches(&mut self) {
        if self.batches.is_empty() {
            return;
        }
        self.mark += 1;
        let count = self.batches.len();
        let cap = self.settings.stream_len.to_string();
        let channel = self.channel.clone();
        for (i, (room, lines, senders)) in std::mem::take(&mut self.batches).into_iter().enumerate()
        {
            let (seq, log) = self.room_keys(&room);
            let out = self.cmd.queue();
            resp::array_header(out, 8 + lines.len());
            for arg in [
                &b"FCALL"[..],
                b"loopchat_publish",
                b"2",
                seq.as_bytes(),
                log.as_bytes(),
                &channel,
                cap.as_bytes(),
                room.as_bytes(),
            ] {
                resp::bulk(out, arg);
            }
            for line in &lines {
                resp::bulk(out, line);
            }
            self.stats.batches_sent += 1;
            self.pending.push_back(Pending::Publish {
                room,
                lines: lines.len(),
                mark: self.mark,
                last: i + 1 == count,
                senders,
            });
        }
        self.batch_index.clear();
    }

    fn serve_cmd(&mut self, registry: &Registry, now: Instant) {
        let mut replies = std::mem::take(&mut self.replies);
        let result = self.cmd.ready(&mut replies);
        let mut failure = result.err();
        for reply in replies.drain(..) {
            if failure.is_some() {
                break;
            }
            if let Err(err) = self.command_reply(reply, now) {
                failure = Some(err);
            }
        }
        self.replies = replies;
        match failure {
            Some(err) => self.cmd_failed(registry, now, err),
            None => self.check_up(),
        }
    }

    fn serve_sub(&mut self, registry: &Registry, now: Instant) {
        let mut replies = std::mem::take(&mut self.replies);
        let result = self.sub.ready(&mut replies);
        let mut failure = result.err();
        for reply in replies.drain(..) {
            if failure.is_some() {
                break;
            }
            if let Err(err) = self.subscriber_reply(reply) {
                failure = Some(err);
            }
        }
        self.replies = replies;
        match failure {
            Some(err) => self.sub_failed(registry, now, err),
            None => self.check_up(),
        }
    }

    /// Up while the command connection is ready: lines are numbered,
    /// stored and published, nicks claimed. The subscription may be
    /// remade meanwhile without making the cluster unavailable: nothing is
    /// lost, the streams hold what it missed ([`RedisCluster::resume`]).
    fn check_up(&mut self) {
        let up = self.loaded;
        if up == self.up {
            return;
        }
        self.up = up;
        if !up {
            info!("cluster: redis at {} unavailable", self.settings.addr);
            self.events.push(ClusterEvent::Down);
            return;
        }
        info!("cluster: connected to redis at {}", self.settings.addr);
        self.stats.ups += 1;
        self.events.push(ClusterEvent::Up);
        self.next_hold = Instant::now();
        if !self.owned.is_empty() {
            self.hold_nicks(Instant::now());
        }
        if self.subscribed {
            self.resume();
        }
    }

    /// Both connections ready again (after either was remade): every room
    /// this server follows has its position checked, and what the
    /// subscription missed is filled from the room's stream.
    pub(super) fn resume(&mut self) {
        self.ask_members();
        let rooms: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, order)| order.expected().is_some())
            .map(|(room, _)| room.clone())
            .collect();
        for room in rooms {
            let (seq, _) = self.room_keys(&room);
            resp::encode(self.cmd.queue(), &[&b"GET"[..], seq.as_bytes()]);
            self.pending.push_back(Pending::Position { room });
        }
    }

    fn cmd_failed(&mut self, registry: &Registry, now: Instant, err: ConnError) {
        warn!(
            "cluster: command connection to redis at {}: {err}",
            self.settings.addr
        );
        self.cmd.close(registry, now);
        self.loaded = false;
        self.stats.disconnects += 1;
        for pending in std::mem::take(&mut self.pending) {
            match pending {
                Pending::Publish {
                    room,
                    lines,
                    mark,
                    senders,
                    ..
                } => {
                    self.in_flight -= lines;
                    self.events.push(ClusterEvent::Failed {
                        room,
                        count: lines,
                        mark,
                        senders,
                    });
                }
                Pending::Claim { ticket, nick } => self.events.push(ClusterEvent::Nick {
                    ticket,
                    nick,
                    won: Err(Unavailable),
                }),
                Pending::Private { ticket } => self.events.push(ClusterEvent::PrivateSent {
                    ticket,
                    delivered: Err(Unavailable),
                }),
                Pending::RoomClaim { ticket } => self.events.push(ClusterEvent::RoomMade {
                    ticket,
                    won: Err(Unavailable),
                }),
                Pending::Guest { ticket } => self.events.push(ClusterEvent::Guest {
                    ticket,
                    number: Err(Unavailable),
                }),
                Pending::Fill { room, .. } => {
                    if let Some(order) = self.rooms.get_mut(&room) {
                        order.fill_failed();
                    }
                }
                // Nothing came: what waits for it is answered as it is.
                Pending::Backlog { room } => self.events.push(ClusterEvent::Backlog {
                    room,
                    lines: Vec::new(),
                }),
                Pending::Load
                | Pending::Epoch
                | Pending::Hold { .. }
                | Pending::Ignore
                | Pending::Position { .. } => {}
                Pending::Start { room } => {
                    // Asked again the next time a member joins it.
                    if self
                        .rooms
                        .get(&room)
                        .is_some_and(|o| o.expected().is_none())
                    {
                        self.rooms.remove(&room);
                    }
                }
            }
        }
        for (room, lines, senders) in std::mem::take(&mut self.batches) {
            self.in_flight -= lines.len();
            self.events.push(ClusterEvent::Failed {
                room,
                count: lines.len(),
                mark: self.mark + 1,
                senders,
            });
        }
        self.batch_index.clear();
        self.accepted = self.mark;
        self.check_up();
    }

    fn sub_failed(&mut self, registry: &Registry, now: Instant, err: ConnError) {
        warn!(
            "cluster: subscriber connection to redis at {}: {err}",
            self.settings.addr
        );
        self.sub.close(registry, now);
        self.subscribed = false;
        self.sub_ping_sent = None;
        self.stats.disconnects += 1;
        self.check_up();
    }
}

/// A token no other server will pick: the process id, the time and the
/// standard library's per-process random hash keys.
fn node_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(since.as_nanos());
    let high = hasher.finish();
    hasher.write_u64(high);
    format!("{:016x}{:016x}", high, hasher.finish())
}
