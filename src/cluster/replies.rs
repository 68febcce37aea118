//! What each Redis reply does: the queue of awaited replies on the command
//! connection ([`Pending`]), the subscriber's messages, fills of rooms' gaps.
//! Part of [`RedisCluster`], split from `engine` to keep each file short.

use super::conn::ConnError;
use super::engine::RedisCluster;
use super::order::{Next, RoomOrder};
use super::resp::{self, Reply};
use super::script;
use super::{ClusterEvent, Unavailable};
use log::warn;
use std::time::Instant;

/// What one awaited reply on the command connection answers, in order.
#[derive(Debug)]
pub(super) enum Pending {
    /// `FUNCTION LOAD REPLACE`, first on every connection.
    Load,
    /// One room's batch; `mark` is the turn's, `last` when it is the
    /// turn's last batch (its reply accepts the whole turn).
    Publish {
        room: String,
        lines: usize,
        mark: u64,
        last: bool,
        senders: Vec<u64>,
    },
    /// `GET epoch`, after `SET epoch NX`: the identity of Redis's data.
    Epoch,
    /// `SET nick owner NX PX ttl`.
    Claim { ticket: u64, nick: String },
    /// `SET made:room owner NX GET PX span`.
    RoomClaim { ticket: u64 },
    /// `loopchat_hold` of these nicks.
    Hold { nicks: Vec<String> },
    /// `loopchat_release`, `CLIENT SETNAME`: nothing to do with the answer.
    Ignore,
    /// `INCR guests`.
    Guest { ticket: u64 },
    /// `loopchat_pm`: a private message to the server holding a nick.
    Private { ticket: u64 },
    /// `GET` of a room's sequence after a reconnect.
    Position { room: String },
    /// `GET` of a room's sequence when this server starts following it.
    Start { room: String },
    /// `XRANGE` of a room's stream.
    Fill { room: String, to: u64 },
    /// `XREVRANGE` of a room's newest lines, for its history here.
    Backlog { room: String },
}

impl RedisCluster {
    pub(super) fn command_reply(&mut self, reply: Reply, now: Instant) -> Result<(), ConnError> {
        let Some(pending) = self.pending.pop_front() else {
            return Err(ConnError::Unexpected(format!(
                "{reply:?} with nothing asked"
            )));
        };
        match pending {
            Pending::Load => {
                if let Reply::Error(err) = reply {
                    return Err(ConnError::Unexpected(format!(
                        "FUNCTION LOAD failed (Redis 7 or later needed): {err}"
                    )));
                }
            }
            Pending::Epoch => {
                let Some(epoch) = reply.as_bytes().map(<[u8]>::to_vec) else {
                    return Err(ConnError::Unexpected(format!("{reply:?} as the epoch")));
                };
                if self.epoch.as_ref().is_some_and(|seen| *seen != epoch) {
                    warn!(
                        "cluster: redis at {} came back without its data: every room starts over",
                        self.settings.addr
                    );
                    self.stats.restarts += 1;
                    for order in self.rooms.values_mut() {
                        *order = RoomOrder::default();
                    }
                    self.events.push(ClusterEvent::Restarted);
                }
                self.epoch = Some(epoch);
                self.loaded = true;
                self.next_hold = now;
            }
            Pending::Publish {
                room,
                lines,
                mark,
                last,
                senders,
            } => {
                self.in_flight -= lines;
                if last {
                    self.accepted = mark;
                }
                match reply.as_int().and_then(|first| u64::try_from(first).ok()) {
                    Some(first) => {
                        self.stats.lines_accepted += lines as u64;
                        self.events.push(ClusterEvent::Accepted {
                            room,
                            first,
                            count: lines,
                        });
                    }
                    None => {
                        warn!(
                            "cluster: redis refused a batch of {lines} lines for {room}: {reply:?}"
                        );
                        self.events.push(ClusterEvent::Failed {
                            room,
                            count: lines,
                            mark,
                            senders,
                        });
                    }
                }
            }
            Pending::Claim { ticket, nick } => {
                let won = matches!(reply, Reply::Simple(ref ok) if ok == b"OK");
                if won {
                    self.owned.insert(nick.clone());
                }
                self.events.push(ClusterEvent::Nick {
                    ticket,
                    nick,
                    won: Ok(won),
                });
            }
            Pending::RoomClaim { ticket } => {
                // Set (nothing was there), or this server's already.
                let won = match reply {
                    Reply::Nil => true,
                    Reply::Bulk(owner) => owner == self.node.as_bytes(),
                    _ => false,
                };
                self.events.push(ClusterEvent::RoomMade {
                    ticket,
                    won: Ok(won),
                });
            }
            Pending::Hold { nicks } => {
                self.stats.nick_refreshes += 1;
                if let Reply::Array(lost) = reply {
                    for index in lost.iter().filter_map(Reply::as_int) {
                        let Some(nick) = usize::try_from(index - 1).ok().and_then(|i| nicks.get(i))
                        else {
                            continue;
                        };
                        if self.owned.remove(nick) {
                            self.events
                                .push(ClusterEvent::NickLost { nick: nick.clone() });
                        }
                    }
                }
            }
            Pending::Ignore => {}
            Pending::Guest { ticket } => {
                let number = reply
                    .as_int()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or(Unavailable);
                self.events.push(ClusterEvent::Guest { ticket, number });
            }
            Pending::Position { room } => {
                if let Some(last) = reply.as_int().and_then(|n| u64::try_from(n).ok()) {
                    let next = self.rooms.get_mut(&room).map(|order| order.position(last));
                    if let Some(Next::Fill { from, to }) = next {
                        self.ask_fill(&room, from, to);
                    }
                }
            }
            Pending::Private { ticket } => {
                let delivered = match reply.as_int() {
                    Some(receivers) => Ok(receivers > 0),
                    None => Err(Unavailable),
                };
                self.events
                    .push(ClusterEvent::PrivateSent { ticket, delivered });
            }
            Pending::Start { room } => {
                let last = reply
                    .as_int()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0);
                self.rooms.entry(room).or_default().start_at(last + 1);
            }
            Pending::Fill { room, to } => self.fill_reply(room, to, reply),
            Pending::Backlog { room } => {
                let mut lines: Vec<(u64, Vec<u8>)> = match reply {
                    Reply::Array(entries) => entries.into_iter().filter_map(stream_entry).collect(),
                    _ => Vec::new(),
                };
                lines.reverse();
                self.events.push(ClusterEvent::Backlog { room, lines });
            }
        }
        Ok(())
    }

    pub(super) fn fill_reply(&mut self, room: String, to: u64, reply: Reply) {
        self.stats.fills += 1;
        let entries: Vec<(u64, Vec<u8>)> = match reply {
            Reply::Array(entries) => entries.into_iter().filter_map(stream_entry).collect(),
            _ => Vec::new(),
        };
        let Some(order) = self.rooms.get_mut(&room) else {
            return;
        };
        // Lines and losses go out interleaved in the order they happen.
        let events = std::cell::RefCell::new(&mut self.events);
        let stats = &mut self.stats;
        let mut lost_lines = 0;
        let next = order.filled(
            to,
            entries,
            &mut |id, line| {
                stats.lines_delivered += 1;
                events.borrow_mut().push(ClusterEvent::Line {
                    room: room.clone(),
                    id,
                    line: line.to_vec(),
                });
            },
            &mut |from, to| {
                lost_lines += to - from + 1;
                events.borrow_mut().push(ClusterEvent::Lost {
                    room: room.clone(),
                    from,
                    to,
                });
            },
        );
        if lost_lines > 0 {
            warn!("cluster: {lost_lines} lines of {room} are gone from its stream: its members here missed them");
            self.stats.lines_lost += lost_lines;
        }
        if let Next::Fill { from, to } = next {
            self.ask_fill(&room, from, to);
        }
    }

    /// Reads the newest `count` lines of `room` from its stream (what was
    /// said before this server followed it), answered as
    /// [`ClusterEvent::Backlog`].
    pub fn read_backlog(&mut self, room: &str, count: usize) -> Result<(), Unavailable> {
        if !self.up {
            return Err(Unavailable);
        }
        let (_, log) = self.room_keys(room);
        let count = count.to_string();
        resp::encode(
            self.cmd.queue(),
            &[
                &b"XREVRANGE"[..],
                log.as_bytes(),
                b"+",
                b"-",
                b"COUNT",
                count.as_bytes(),
            ],
        );
        self.pending.push_back(Pending::Backlog {
            room: room.to_owned(),
        });
        Ok(())
    }

    pub(super) fn ask_fill(&mut self, room: &str, from: u64, to: u64) {
        if !self.loaded {
            if let Some(order) = self.rooms.get_mut(room) {
                order.fill_failed();
            }
            return;
        }
        let (_, log) = self.room_keys(room);
        let (from_id, to_id) = (format!("{from}"), format!("{to}-1"));
        resp::encode(
            self.cmd.queue(),
            &[
                &b"XRANGE"[..],
                log.as_bytes(),
                from_id.as_bytes(),
                to_id.as_bytes(),
            ],
        );
        self.pending.push_back(Pending::Fill {
            room: room.to_owned(),
            to,
        });
    }

    pub(super) fn subscriber_reply(&mut self, reply: Reply) -> Result<(), ConnError> {
        let mut parts = match reply {
            Reply::Array(parts) => parts,
            Reply::Simple(ok) if ok == b"OK" => return Ok(()), // CLIENT SETNAME
            _ => {
                return Err(ConnError::Unexpected(format!(
                    "{reply:?} on the subscriber connection"
                )))
            }
        };
        let kind = parts
            .first()
            .and_then(Reply::as_bytes)
            .unwrap_or_default()
            .to_ascii_lowercase();
        match &kind[..] {
            b"message" if parts.len() == 3 => {
                let Some(Reply::Bulk(msg)) = parts.pop() else {
                    return Ok(());
                };
                let channel = parts.get(1).and_then(Reply::as_bytes);
                if channel == Some(&self.inbox[..]) {
                    if !self.inbox_answer(&msg) {
                        self.events.push(ClusterEvent::Private { line: msg });
                    }
                } else if channel == Some(&self.presence[..]) {
                    self.presence_arrived(msg);
                } else {
                    self.batch_arrived(&msg);
                }
            }
            // The last of the three channels (lines, this server's inbox,
            // presence).
            b"subscribe" if parts.get(2).and_then(Reply::as_int) == Some(3) => {
                self.subscribed = true;
                self.sub_ping_sent = None;
                if self.loaded {
                    self.resume();
                }
            }
            b"pong" => {
                self.sub_ping_sent = None;
                self.sub_ping_at = Instant::now() + super::engine::SUB_PING_EVERY;
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn batch_arrived(&mut self, msg: &[u8]) {
        let Some(batch) = script::decode_batch(msg) else {
            warn!(
                "cluster: a message on {} that is not a batch of lines",
                String::from_utf8_lossy(&self.channel)
            );
            return;
        };
        let Ok(room) = std::str::from_utf8(batch.room) else {
            return;
        };
        let order = match self.rooms.get_mut(room) {
            Some(order) => order,
            None => self.rooms.entry(room.to_owned()).or_default(),
        };
        let events = &mut self.events;
        let stats = &mut self.stats;
        let mut fill = None;
        for (i, line) in batch.lines.iter().enumerate() {
            let next = order.arrive(batch.first + i as u64, line, &mut |id, line| {
                stats.lines_delivered += 1;
                events.push(ClusterEvent::Line {
                    room: room.to_owned(),
                    id,
                    line: line.to_vec(),
                });
            });
            if let Next::Fill { from, to } = next {
                fill = Some((from, to));
            }
        }
        if let Some((from, to)) = fill {
            self.stats.gaps += 1;
            self.ask_fill(room, from, to);
        }
    }
}

/// An `XRANGE` entry `[ID-1, [l, LINE]]` as (id, line).
fn stream_entry(entry: Reply) -> Option<(u64, Vec<u8>)> {
    let Reply::Array(mut parts) = entry else {
        return None;
    };
    let Some(Reply::Array(mut fields)) = parts.pop() else {
        return None;
    };
    let id = script::entry_id(parts.first()?.as_bytes()?)?;
    match fields.pop() {
        Some(Reply::Bulk(line)) => Some((id, line)),
        _ => None,
    }
}
