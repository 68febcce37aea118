//! The cluster's Redis in the loop (`--cluster`, docs/cluster.md): its
//! readiness events, its turn, the commands that go through it, and what
//! it reports, applied to the chat. Nothing here runs without `--cluster`:
//! the loop's only cost then is the test of `Cluster::Single`.
//!
//! - Chat and `:me` lines are not fanned out when said: they go to Redis
//!   (one call per room per turn), and every server, this one included,
//!   delivers them to its members when they come back numbered, in id
//!   order ([`crate::chat::Chat::deliver_room_line`]).
//! - `:nick NAME` is claimed in Redis first (one owner across servers);
//!   the rename runs when the claim is won. Guests' nicks are claimed too,
//!   and guest numbers come in blocks from one Redis counter.
//! - While Redis is unreachable, what needs it is answered
//!   `! cluster unavailable` and new connections are turned away with it.
//! - Lines of a room lost before this server got them disconnect the
//!   room's members here (`missed lines`).

use super::EventLoop;
use crate::chat::{ClientId, Outbox};
use crate::cluster::{Cluster, ClusterEvent};
use crate::end_reason::EndReason;
use crate::protocol::tags::Label;
use crate::protocol::{self, Command, Error, Event};
use log::warn;
use mio::Token;
use std::collections::HashMap;

/// Guest numbers taken from Redis at a time.
const GUEST_BLOCK: u64 = 1000;

/// What the loop keeps about the cluster besides the engine.
#[derive(Default)]
pub(super) struct ClusterLink {
    /// Nick claims waiting for Redis, by ticket.
    claims: HashMap<u64, Claim>,
    /// Private messages to other servers' clients, by ticket.
    privates: HashMap<u64, PrivateOut>,
    /// The block of guest numbers in use (first, last), and the next one.
    guests: Option<(u64, u64)>,
    next_guests: Option<(u64, u64)>,
    /// A block asked for and not yet answered.
    guest_ticket: Option<u64>,
    /// Whether the other servers' members, rooms and accounts were read
    /// since Redis was last reached ([`ClusterEvent::Members`]): until
    /// then a new client could not log in to an account made elsewhere,
    /// so it is turned away as while Redis is away.
    synced: bool,
    /// The engine's accepted mark when last seen: when it moves, the
    /// senders parked behind it are read again.
    accepted: u64,
    /// Nicks (lower-cased) that a login here took while another server's
    /// client, logged in to the same account, held them there: that
    /// server was asked to let it go, and the nick is claimed again when
    /// its holder there leaves.
    pub(super) takeovers: std::collections::HashSet<String>,
    /// Claims of rooms' making waiting for Redis, by ticket: (room key,
    /// its maker's nick).
    pub(super) room_claims: HashMap<u64, (String, String)>,
}

/// What a nick claim is for.
enum Claim {
    /// `:nick new` from `id`, known as `old` when it asked, with the
    /// label its answer carries. Its input waits for the answer (as on one
    /// server, its next lines run under the nick it asked for); `since` is
    /// when its connection was accepted, so a connection that took the id
    /// after it left is not the one resumed.
    Rename {
        id: ClientId,
        old: String,
        new: String,
        label: Option<Label>,
        since: Option<std::time::Instant>,
    },
    /// A guest's nick, given on arrival.
    Guest,
    /// The nick an IRC client registers with: it enters the chat when
    /// the claim is won (`server::irc`).
    Register { id: ClientId, nick: String },
    /// A nick the chat gave (a login's, a new guest's): held already here.
    Adopted,
}

impl ClusterLink {
    /// Tracks the claim `ticket` of a nick the chat gave itself.
    pub(super) fn adopt(&mut self, ticket: u64) {
        self.claims.insert(ticket, Claim::Adopted);
    }
}

/// A private message (or an `:e2e`) on its way to another server: who sent
/// it to whom, its text when the sender gets an echo (tags on), and the
/// label the answer (echo or error) carries.
struct PrivateOut {
    id: ClientId,
    from: String,
    to: String,
    echo: Option<String>,
    label: Option<Label>,
}

/// What starts an `:e2e` passed between servers on a server's own channel
/// (no nick starts with `!`): then sender, recipient, payload, a line
/// each.
const E2E_MARK: &[u8] = b"!e2e\n";

/// What starts an undeliverable private message's or `:e2e`'s way back to
/// its sender's server: then sender, recipient, and `U` (no such user:
/// it left as the message came) or `L` (not logged in, for an `:e2e`), a
/// line each. The sender gets the error it would get on one server.
const BOUNCE_MARK: &[u8] = b"!bounce\n";

/// What starts a takeover passed to the server holding a nick: then the
/// account's name. Its client logged in to that account leaves (`* logged
/// in elsewhere`): a client of the sending server logged in to it.
const TAKEOVER_MARK: &[u8] = b"!takeover\n";

/// A room line as the servers pass it through Redis.
#[derive(Clone, Copy, Debug, PartialEq)]
struct PassedLine<'a> {
    /// When the sending server accepted it (Unix milliseconds).
    time_ms: i64,
    /// The sender's nick.
    from: &'a str,
    /// The label of the sender's line (tags on): its echo, made by the
    /// sender's server when the line comes back, carries it.
    label: Option<Label>,
    /// The text, already sanitized.
    text: &'a str,
    /// `:me` rather than chat.
    action: bool,
}

/// A room line as the servers pass it: `S` (chat) or `A` (`:me`), the time
/// and a space, the sender's nick, a space and the label when there is
/// one, `\n`, the text.
fn encode_line(line: &PassedLine<'_>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(24 + line.from.len() + line.text.len());
    bytes.push(if line.action { b'A' } else { b'S' });
    bytes.extend_from_slice(line.time_ms.to_string().as_bytes());
    bytes.push(b' ');
    bytes.extend_from_slice(line.from.as_bytes());
    if let Some(label) = &line.label {
        bytes.push(b' ');
        bytes.extend_from_slice(label.as_str().as_bytes());
    }
    bytes.push(b'\n');
    bytes.extend_from_slice(line.text.as_bytes());
    bytes
}

/// A private message as the servers pass it: sender, `\n`, recipient,
/// `\n`, text (already sanitized).
fn encode_private(from: &str, to: &str, text: &str) -> Vec<u8> {
    [
        from.as_bytes(),
        b"\n",
        to.as_bytes(),
        b"\n",
        text.as_bytes(),
    ]
    .concat()
}

/// Reads a message written by [`encode_private`]: (from, to, text).
fn decode_private(line: &[u8]) -> Option<(&str, &str, &str)> {
    let line = std::str::from_utf8(line).ok()?;
    let (from, rest) = line.split_once('\n')?;
    let (to, text) = rest.split_once('\n')?;
    (protocol::is_valid_name(from) && protocol::is_valid_name(to)).then_some((from, to, text))
}

/// Reads a line written by [`encode_line`]. A label that is not one is
/// left out (the line still counts).
fn decode_line(line: &[u8]) -> Option<PassedLine<'_>> {
    let (&kind, rest) = line.split_first()?;
    let action = match kind {
        b'S' => false,
        b'A' => true,
        _ => return None,
    };
    let space = memchr::memchr(b' ', rest)?;
    let time_ms = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
    let rest = &rest[space + 1..];
    let at = memchr::memchr(b'\n', rest)?;
    let head = std::str::from_utf8(&rest[..at]).ok()?;
    let (from, label) = match head.split_once(' ') {
        Some((from, label)) => (from, Label::new(label).ok()),
        None => (head, None),
    };
    let text = std::str::from_utf8(&rest[at + 1..]).ok()?;
    protocol::is_valid_name(from).then_some(PassedLine {
        time_ms,
        from,
        label,
        text,
        action,
    })
}

impl EventLoop {
    /// A readiness event on one of the cluster's connections.
    pub(super) fn cluster_ready(&mut self, token: Token) {
        if let Cluster::Redis(redis) = &mut self.cluster {
            redis.ready(token, self.poll.registry(), self.now);
        }
    }

    /// Whether a new client may join: with `--cluster`, only while Redis
    /// is reachable, the other servers' state (accounts among it) has been
    /// read, and a guest number is at hand. Otherwise it gets
    /// `! cluster unavailable` and is closed.
    pub(super) fn cluster_admits(&mut self, id: ClientId) -> bool {
        let Cluster::Redis(redis) = &self.cluster else {
            return true;
        };
        let next = self.chat.next_guest();
        let link = &mut self.cluster_link;
        let in_block = link.guests.is_some_and(|(_, last)| next <= last);
        if !in_block {
            link.guests = link.next_guests.take();
            if let Some((first, _)) = link.guests {
                self.chat.set_next_guest(first);
            }
        }
        if redis.is_up() && link.synced && link.guests.is_some() {
            return true;
        }
        self.queue_last_line(
            &[id],
            &Error::ClusterUnavailable.into(),
            EndReason::ClusterUnavailable,
        );
        false
    }

    /// After a command ran in the chat: the room its client is in now is
    /// followed (a `:join` may have made it a member of a new one).
    pub(super) fn cluster_after(&mut self, id: ClientId) {
        self.cluster_share();
        if let Cluster::Redis(redis) = &mut self.cluster {
            for room in self.chat.room_keys_of_member(id) {
                redis.follow(room);
            }
        }
    }

    /// A client joined the chat: its room is followed, its guest nick
    /// claimed in Redis.
    pub(super) fn cluster_joined(&mut self, id: ClientId) {
        self.cluster_after(id);
        let Cluster::Redis(redis) = &mut self.cluster else {
            return;
        };
        if let Some(nick) = self.chat.nick(id) {
            if let Ok(ticket) = redis.claim_nick(&nick.to_ascii_lowercase()) {
                self.cluster_link.claims.insert(ticket, Claim::Guest);
            }
        }
    }

    /// With `--cluster`, claims `nick` in Redis for IRC client `id`, which
    /// registers with it (see [`EventLoop::irc_claim_answered`]); `false`
    /// when the cluster cannot take the claim now.
    pub(super) fn cluster_claim_for_irc(&mut self, id: ClientId, nick: &str) -> bool {
        let Cluster::Redis(redis) = &mut self.cluster else {
            return false;
        };
        let Ok(ticket) = redis.claim_nick(&nick.to_ascii_lowercase()) else {
            return false;
        };
        let claim = Claim::Register {
            id,
            nick: nick.to_owned(),
        };
        self.cluster_link.claims.insert(ticket, claim);
        true
    }

    /// Frees `nick` in Redis (a claim won for a client that is gone).
    pub(super) fn cluster_release(&mut self, nick: &str) {
        if let Cluster::Redis(redis) = &mut self.cluster {
            redis.release_nick(&nick.to_ascii_lowercase());
        }
    }

    /// A client left the chat known as `nick`: its nick is freed in Redis
    /// (unless someone here took it meanwhile).
    pub(super) fn cluster_departed(&mut self, nick: &str) {
        // Its leaving goes out before its nick is free.
        self.cluster_share();
        let Cluster::Redis(redis) = &mut self.cluster else {
            return;
        };
        if self.chat.nick_taken_here(usize::MAX, nick) {
            return;
        }
        redis.release_nick(&nick.to_ascii_lowercase());
    }

    /// A private message or `:e2e` from `from` (a client of another
    /// server) could not be delivered to `to` here: it goes back to the
    /// sender's server, which answers the sender (`kind`: see
    /// [`BOUNCE_MARK`]).
    fn bounce(&mut self, from: &str, to: &str, kind: &str) {
        let Cluster::Redis(redis) = &mut self.cluster else {
            return;
        };
        let msg = [BOUNCE_MARK, &encode_private(from, to, kind)].concat();
        if redis
            .send_private(&from.to_ascii_lowercase(), &msg)
            .is_err()
        {
            warn!("cluster: a message from {from} for {to}, who is not here, was dropped");
        }
    }

    /// Another server's client called `nick` (lower-cased) left the chat
    /// or took another nick: when a login here waits for that nick (see
    /// [`ClusterLink::takeovers`]), it is claimed again.
    pub(super) fn reclaim_taken_over(&mut self, nick: &str) {
        if !self.cluster_link.takeovers.remove(nick) {
            return;
        }
        if let Cluster::Redis(redis) = &mut self.cluster {
            if let Ok(ticket) = redis.claim_nick(nick) {
                self.cluster_link.adopt(ticket);
            }
        }
    }

    /// With `--cluster`, the commands that go through Redis; `true` when
    /// the command was handled here (the chat must not run it).
    pub(super) fn cluster_command(&mut self, id: ClientId, command: &Command<'_>) -> bool {
        let Cluster::Redis(redis) = &mut self.cluster else {
            return false;
        };
        let Some(nick) = self.chat.nick(id) else {
            return false; // not in the chat yet (password)
        };
        let needs_cluster = matches!(
            command,
            Command::Chat(_)
                | Command::Me(_)
                | Command::Nick(_)
                | Command::PrivateMessage { .. }
                | Command::Users(_)
                | Command::Part { .. }
                | Command::Topic(_)
                | Command::Op(_)
                | Command::Deop(_)
                | Command::Kick { .. }
                | Command::Ban(_)
                | Command::Unban(_)
                | Command::Bans
                | Command::Register(_)
                | Command::Login { .. }
                | Command::Token
                | Command::Resume(_)
                | Command::Logout
                | Command::Passwd { .. }
                | Command::Whois(_)
                | Command::Join(_)
                | Command::Rooms
                | Command::History(_)
                | Command::E2e { .. }
        );
        if !needs_cluster {
            return false;
        }
        if !redis.is_up() {
            self.clients.reply(id, &Error::ClusterUnavailable.into());
            return true;
        }
        match *command {
            Command::Chat(text) | Command::Me(text) => {
                let Some((room, _)) = self.chat.room_of_member(id) else {
                    return false;
                };
                let line = encode_line(&PassedLine {
                    time_ms: crate::chat::history::tails::unix_now_ms(),
                    from: nick,
                    label: self.clients.label,
                    text: &protocol::sanitize(text),
                    action: matches!(command, Command::Me(_)),
                });
                match redis.publish_from(room, &line, id as u64) {
                    Ok(mark) => {
                        if let Some(conn) = self.clients.conns.get_mut(id) {
                            conn.cluster_mark = mark;
                        }
                    }
                    Err(_) => self.clients.reply(id, &Error::ClusterUnavailable.into()),
                }
                true
            }
            Command::Nick(name) => {
                // What the chat refuses (or a change of case only) it
                // answers itself; a new nick is claimed first.
                if !protocol::is_valid_name(name)
                    || protocol::is_reserved_nick(name)
                    || name.eq_ignore_ascii_case(nick)
                    || self.chat.nick_taken_here(id, name)
                {
                    return false;
                }
                match redis.claim_nick(&name.to_ascii_lowercase()) {
                    Ok(ticket) => {
                        // Its next lines wait for the answer.
                        let since = self.clients.conns.get_mut(id).map(|conn| {
                            conn.account_wait = true;
                            conn.accepted_at()
                        });
                        let claim = Claim::Rename {
                            id,
                            old: nick.to_owned(),
                            new: name.to_owned(),
                            label: self.clients.label,
                            since,
                        };
                        self.cluster_link.claims.insert(ticket, claim);
                    }
                    Err(_) => self.clients.reply(id, &Error::ClusterUnavailable.into()),
                }
                true
            }
            Command::E2e { to, payload } => {
                // A recipient here, or what the chat refuses itself.
                if self.chat.nick_taken_here(usize::MAX, to)
                    || self.chat.account_of(id).is_none()
                    || !crate::chat::keys::is_payload(payload)
                {
                    return false;
                }
                let line = [E2E_MARK, &encode_private(nick, to, payload)].concat();
                match redis.send_private(&to.to_ascii_lowercase(), &line) {
                    Ok(ticket) => {
                        let sent = PrivateOut {
                            id,
                            from: nick.to_owned(),
                            to: to.to_owned(),
                            echo: None,
                            label: self.clients.label,
                        };
                        self.cluster_link.privates.insert(ticket, sent);
                    }
                    Err(_) => self.clients.reply(id, &Error::ClusterUnavailable.into()),
                }
                true
            }
            Command::PrivateMessage { to, text } => {
                // A recipient here: the chat delivers it as alone.
                if self.chat.nick_taken_here(usize::MAX, to) {
                    return false;
                }
                let text = protocol::sanitize(text);
                let line = encode_private(nick, to, &text);
                let echo = self.chat.tags_on(id).then(|| text.into_owned());
                match redis.send_private(&to.to_ascii_lowercase(), &line) {
                    Ok(ticket) => {
                        let sent = PrivateOut {
                            id,
                            from: nick.to_owned(),
                            to: to.to_owned(),
                            echo,
                            label: self.clients.label,
                        };
                        self.cluster_link.privates.insert(ticket, sent);
                    }
                    Err(_) => self.clients.reply(id, &Error::ClusterUnavailable.into()),
                }
                true
            }
            // The rest runs on this server's own state (docs/cluster.md).
            _ => false,
        }
    }

    /// Once per turn, after the turn's input: the engine sends the turn's
    /// lines (one call per room) and runs its clocks; what it reported is
    /// applied to the chat.
    pub(super) fn cluster_turn(&mut self) {
        if self.cluster.is_single() {
            return;
        }
        self.cluster_share();
        let Cluster::Redis(redis) = &mut self.cluster else {
            return;
        };
        let link = &mut self.cluster_link;
        let (next, guests) = (self.chat.next_guest(), link.guests);
        let half_used = guests.is_none_or(|(first, last)| next >= first + (last - first) / 2);
        if redis.is_up() && half_used && link.next_guests.is_none() && link.guest_ticket.is_none() {
            link.guest_ticket = redis.guest_numbers(GUEST_BLOCK).ok();
        }
        redis.turn(self.poll.registry(), self.now);
        let events = redis.take_events();
        if redis.accepted_mark() != link.accepted {
            link.accepted = redis.accepted_mark();
            self.reads.unpark();
        }
        for event in events {
            self.cluster_event(event);
        }
        self.settle_departures();
        self.cluster_share();
        // What the events asked of Redis (releases, claims) goes now.
        if let Cluster::Redis(redis) = &mut self.cluster {
            redis.flush(self.poll.registry(), self.now);
        }
    }

    fn cluster_event(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::Line { room, id, line } => match decode_line(&line) {
                Some(line) => {
                    // The sender's echo (if it is here) answers its line.
                    self.clients.label = line.label;
                    self.chat.deliver_room_line(
                        &room,
                        id,
                        line.time_ms,
                        line.from,
                        line.text,
                        line.action,
                        &mut self.clients,
                    );
                    self.clients.label = None;
                }
                None => warn!("cluster: a line of {room} that is not a chat line"),
            },
            ClusterEvent::Lost { room, from, to } => {
                let members = self.chat.room_members(&room).to_vec();
                warn!(
                    "cluster: lines {from} to {to} of {room} were lost before this server got them: \
                     its {} members here are disconnected",
                    members.len()
                );
                for id in members {
                    self.clients.kill(id, EndReason::MissedLines);
                }
            }
            ClusterEvent::Nick { ticket, nick, won } => self.claim_answered(ticket, &nick, won),
            ClusterEvent::Private { line } if line.starts_with(TAKEOVER_MARK) => {
                let name = std::str::from_utf8(&line[TAKEOVER_MARK.len()..]).unwrap_or_default();
                if self.chat.logged_in_elsewhere(name, &mut self.clients) {
                    for other in self.chat.take_taken_over() {
                        self.close_gracefully(other, EndReason::LoggedInElsewhere);
                    }
                    // Its leaving and the nick's release go to Redis in
                    // one write: the server that asked claims the nick
                    // again when it hears of the leaving.
                    self.cluster_departed(name);
                }
            }
            ClusterEvent::Private { line } if line.starts_with(BOUNCE_MARK) => {
                let Some((from, to, kind)) = decode_private(&line[BOUNCE_MARK.len()..]) else {
                    return warn!("cluster: a returned message that is not one");
                };
                let Some((sender, _)) = self.chat.find_nick(from) else {
                    return; // the sender left meanwhile
                };
                let error = match kind {
                    "L" => Error::NotLoggedIn(to),
                    _ => Error::NoSuchUser(to),
                };
                self.clients.reply(sender, &error.into());
            }
            ClusterEvent::Private { line } if line.starts_with(E2E_MARK) => {
                match decode_private(&line[E2E_MARK.len()..]) {
                    Some((from, to, payload)) => {
                        if !self.chat.deliver_e2e(from, to, payload, &mut self.clients) {
                            // Gone, or here but not logged in.
                            let kind = match self.chat.find_nick(to) {
                                Some(_) => "L",
                                None => "U",
                            };
                            self.bounce(from, to, kind);
                        }
                    }
                    None => warn!("cluster: an :e2e that is not one"),
                }
            }
            ClusterEvent::Private { line } => match decode_private(&line) {
                Some((from, to, text)) => {
                    if !self.chat.deliver_private(from, to, text, &mut self.clients) {
                        self.bounce(from, to, "U");
                    }
                }
                None => warn!("cluster: a private message that is not one"),
            },
            ClusterEvent::PrivateSent { ticket, delivered } => {
                let Some(sent) = self.cluster_link.privates.remove(&ticket) else {
                    return;
                };
                if self.chat.nick(sent.id) != Some(sent.from.as_str()) {
                    return; // the sender left or was renamed meanwhile
                }
                self.clients.label = sent.label;
                match delivered {
                    Ok(true) => {
                        // With tags on, the echo names the recipient.
                        if let Some(text) = &sent.echo {
                            let echo = Event::PrivateMessage {
                                from: &sent.from,
                                text,
                                to: Some(&sent.to),
                            };
                            self.clients.reply(sent.id, &echo.into());
                        }
                    }
                    Ok(false) => self
                        .clients
                        .reply(sent.id, &Error::NoSuchUser(&sent.to).into()),
                    Err(_) => self
                        .clients
                        .reply(sent.id, &Error::ClusterUnavailable.into()),
                }
                self.clients.label = None;
            }
            ClusterEvent::RoomMade { ticket, won } => {
                let Some((room, maker)) = self.cluster_link.room_claims.remove(&ticket) else {
                    return;
                };
                if won == Ok(false) && self.chat.made_elsewhere_first(&room, &maker) {
                    warn!(
                        "cluster: {room} was made on another server a moment before: \
                         {maker}, who made it here too, is not its operator"
                    );
                }
            }
            ClusterEvent::NickLost { nick } => {
                warn!("cluster: the nick {nick} of a client here is held by another server now");
            }
            ClusterEvent::Guest { ticket, number } => {
                let link = &mut self.cluster_link;
                if link.guest_ticket == Some(ticket) {
                    link.guest_ticket = None;
                    if let Ok(last) = number {
                        let block = (last + 1 - GUEST_BLOCK, last);
                        if link.guests.is_none() {
                            link.guests = Some(block);
                            self.chat.set_next_guest(block.0);
                        } else {
                            link.next_guests = Some(block);
                        }
                    }
                }
            }
            ClusterEvent::Failed {
                room,
                count,
                mark,
                senders,
            } => {
                warn!(
                    "cluster: {count} lines of {room} may not have reached redis: \
                     their senders are told `! cluster unavailable`"
                );
                let mut told = Vec::new();
                for sender in senders {
                    let id = usize::try_from(sender).unwrap_or(usize::MAX);
                    // (A slot taken since by a client that published
                    // nothing under this mark is not the sender.)
                    let sent = (self.clients.conns.get(id)).is_some_and(|c| c.cluster_mark >= mark);
                    if sent && !told.contains(&id) {
                        told.push(id);
                        self.clients.reply(id, &Error::ClusterUnavailable.into());
                    }
                }
            }
            ClusterEvent::Restarted => {
                warn!("cluster: redis lost its data; rooms' ids start over");
            }
            ClusterEvent::Up => self.cluster_sync(),
            ClusterEvent::Backlog { room, lines } => {
                let lines: Vec<(u64, i64, &str, &str, bool)> = lines
                    .iter()
                    .filter_map(|(id, line)| {
                        let line = decode_line(line)?;
                        Some((*id, line.time_ms, line.from, line.text, line.action))
                    })
                    .collect();
                self.chat.backfill_room(&room, &lines);
                // `:history` requests that waited for these lines.
                self.release_held(true);
            }
            event @ (ClusterEvent::Presence { .. }
            | ClusterEvent::Nodes { .. }
            | ClusterEvent::Members { .. }) => {
                if matches!(event, ClusterEvent::Members { .. }) {
                    self.cluster_link.synced = true;
                }
                self.presence_event(event)
            }
            ClusterEvent::Down => self.cluster_link.synced = false,
            ClusterEvent::Accepted { .. } => {}
        }
    }

    /// The answer to a nick claim.
    fn claim_answered(
        &mut self,
        ticket: u64,
        nick: &str,
        won: Result<bool, crate::cluster::Unavailable>,
    ) {
        let Some(claim) = self.cluster_link.claims.remove(&ticket) else {
            return;
        };
        let Cluster::Redis(redis) = &mut self.cluster else {
            return;
        };
        if let Claim::Register { id, nick } = claim {
            return self.irc_claim_answered(id, &nick, won.map_err(|_| ()));
        }
        let Claim::Rename {
            id,
            old,
            new,
            label,
            since,
        } = claim
        else {
            if won != Ok(false) {
                return;
            }
            // A login here whose account's client on another server holds
            // the nick: that one leaves (as a login here takes over), and
            // the nick is claimed again once it has.
            let login_here = self.chat.find_nick(nick).is_some_and(|(who, _)| {
                self.chat
                    .account_of(who)
                    .is_some_and(|a| a.eq_ignore_ascii_case(nick))
            });
            if login_here && !self.cluster_link.takeovers.contains(nick) {
                let msg = [TAKEOVER_MARK, nick.as_bytes()].concat();
                if redis.send_private(nick, &msg).is_ok() {
                    self.cluster_link.takeovers.insert(nick.to_owned());
                    return;
                }
            }
            warn!(
                "cluster: the nick {nick} of a client here (a guest's or a login's) \
                 is held by another server"
            );
            return;
        };
        let still_here = self.chat.nick(id) == Some(old.as_str());
        // The answer, whichever it is, carries the `:nick`'s label.
        self.clients.label = label;
        match won {
            Ok(true) if still_here => {
                self.chat
                    .apply_labelled(id, "", Command::Nick(&new), label, &mut self.clients);
                let renamed = self.chat.nick(id) == Some(new.as_str());
                let Cluster::Redis(redis) = &mut self.cluster else {
                    return;
                };
                redis.release_nick(&if renamed { old } else { new }.to_ascii_lowercase());
            }
            Ok(true) => redis.release_nick(nick),
            Ok(false) if still_here => self.clients.reply(id, &Error::NickTaken(&new).into()),
            Err(_) if still_here => self.clients.reply(id, &Error::ClusterUnavailable.into()),
            _ => {}
        }
        self.clients.label = None;
        let asker = self.clients.conns.get(id);
        if asker.is_some_and(|conn| Some(conn.accepted_at()) == since) {
            self.resume_input(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_messages_pass_through_redis_and_back() {
        let line = encode_private("alice", "bob", "hi\nthere");
        assert_eq!(decode_private(&line), Some(("alice", "bob", "hi\nthere")));
        for bad in [
            &b"alice\nbob"[..],
            b"al ice\nbob\nx",
            b"alice\n\nx",
            b"\xff\nbob\nx",
        ] {
            assert_eq!(decode_private(bad), None);
        }
    }

    #[test]
    fn room_lines_pass_through_redis_and_back() {
        let alice = PassedLine {
            time_ms: 1_796_000_000_123,
            from: "alice",
            label: None,
            text: "hi\tthere",
            action: false,
        };
        let bob = PassedLine {
            time_ms: -5,
            from: "bob",
            label: Label::new("a-1_Z").ok(),
            text: "",
            action: true,
        };
        for line in [alice, bob] {
            assert_eq!(decode_line(&encode_line(&line)), Some(line));
        }
        // A label that is not one is left out; the line stays.
        assert_eq!(
            decode_line(b"S1 alice no;label\nhi").map(|line| (line.from, line.label)),
            Some(("alice", None))
        );
        for bad in [
            &b""[..],
            b"X1 alice\nhi",
            b"S1 alice",
            b"Salice\nhi",
            b"S1 \nhi",
            b"Sx alice\nhi",
            b"S1  ice\nhi",
            b"S1 \xff\nhi",
        ] {
            assert_eq!(decode_line(bad), None);
        }
    }
}
