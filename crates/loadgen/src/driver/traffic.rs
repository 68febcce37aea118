//! The measured traffic and the protocol around it: the barrier probe,
//! scheduled and windowed sends, and what each line from the server means
//! (welcome, join, delivery, error).

use std::time::Instant;

use super::{Driver, Phase, Slot, State, MAX_NICK, SEND_BACKLOG_LIMIT};
use crate::marker::{self, Marker};
use loopchat_protocol::{self as protocol, Event, Reply, ServerLine};

impl Driver<'_> {
    /// Sends the next barrier probe round from the first ready client.
    pub(super) fn send_probe(&mut self, now: Instant) {
        let Some(from) = self.clients.iter().position(|c| c.state == State::Ready) else {
            return;
        };
        self.probe_round += 1;
        self.probe_from = from;
        self.probe_at = now;
        let c = &mut self.clients[from];
        marker::encode_probe(&mut c.wbuf, self.probe_round);
        c.wbuf.push(b'\n');
        self.mark_dirty(from);
    }

    /// Queues message number `seq[s]` from sender `s`, stamped `sent_ns`;
    /// false when the sender's socket is backed up and it was skipped.
    pub(super) fn send_message(&mut self, s: usize, sent_ns: u64) -> bool {
        let c = &mut self.clients[s];
        if c.wbuf.len() > SEND_BACKLOG_LIMIT {
            if self.report.send_skipped == 0 {
                self.note(format!(
                    "client {s} has {} bytes unsent: the server is not reading it",
                    self.clients[s].wbuf.len()
                ));
            }
            self.report.send_skipped += 1;
            return false;
        }
        let seq = self.seq[s];
        let m = Marker {
            sender: s as u32,
            seq,
            sent_ns,
        };
        marker::encode(&mut c.wbuf, &m, self.plan.payload);
        c.wbuf.push(b'\n');
        self.seq[s] = seq + 1;
        self.report.sent_total += 1;
        if sent_ns >= self.w0_ns && sent_ns < self.w1_ns {
            self.report.sent_window += 1;
        }
        self.mark_dirty(s);
        true
    }

    /// When the `j`-th message of the run is due (rate mode): senders take
    /// turns, evenly spaced, so the load is smooth rather than bursty.
    pub(super) fn scheduled_ns(&self, j: u64) -> u64 {
        self.ns(self.t_run) + (j as f64 * self.interval_ns) as u64
    }

    /// Rate mode: sends every message whose scheduled time has come, each
    /// stamped with that time, not the time it actually leaves.
    pub(super) fn send_due(&mut self, now: Instant) {
        let now_ns = self.ns(now);
        let senders = self.plan.senders as u64;
        // Bounded, so a long stall cannot keep this loop from reading.
        for _ in 0..100_000 {
            let at = self.scheduled_ns(self.next_send);
            if at > now_ns || at >= self.w1_ns {
                break;
            }
            let s = (self.next_send % senders) as usize;
            self.next_send += 1;
            if self.clients[s].state != State::Ready {
                continue;
            }
            self.send_lag.saturating_record((now_ns - at) / 1000);
            self.send_message(s, at);
        }
    }

    /// Marks flood sender `s` as having room in its window.
    pub(super) fn want(&mut self, s: usize) {
        if !self.want_flag[s] {
            self.want_flag[s] = true;
            self.wanting.push(s);
        }
    }

    /// Flood mode: tops up every sender that has room in its window.
    pub(super) fn fill_windows(&mut self, now: Instant) {
        let now_ns = self.ns(now);
        let w = self.window;
        let wanting = std::mem::take(&mut self.wanting);
        for &s in &wanting {
            self.want_flag[s] = false;
            while (self.inflight[s] as usize) < w && self.clients[s].state == State::Ready {
                let seq = self.seq[s];
                let slot = s * w + seq as usize % w;
                // Receivers still owe this slot's previous message: only
                // possible when deliveries came out of order.
                if self.slots[slot].remaining > 0 {
                    break;
                }
                let receivers = (self.ready - 1) as u32;
                if receivers == 0 || !self.send_message(s, now_ns) {
                    break;
                }
                self.slots[slot] = Slot {
                    seq,
                    remaining: receivers,
                };
                self.inflight[s] += 1;
            }
        }
        let mut wanting = wanting;
        wanting.clear();
        if self.wanting.is_empty() {
            self.wanting = wanting;
        }
    }

    /// Flood mode: one receiver got (or will never get) `seq` from `s`.
    pub(super) fn settle(&mut self, s: usize, seq: u32) {
        let w = self.window;
        let slot = &mut self.slots[s * w + seq as usize % w];
        if slot.seq == seq && slot.remaining > 0 {
            slot.remaining -= 1;
            if slot.remaining == 0 {
                self.inflight[s] -= 1;
                self.want(s);
            }
        }
    }

    /// Deliveries owed to clients still connected by senders still connected.
    pub(super) fn count_outstanding(&self) -> u64 {
        let mut total = 0;
        for (r, rc) in self.clients.iter().enumerate() {
            if rc.state != State::Ready {
                continue;
            }
            for s in 0..self.plan.senders {
                if s != r && self.clients[s].state == State::Ready {
                    total += self.tracker.missing(r, s, self.seq[s]);
                }
            }
        }
        total
    }

    /// Flood mode: receiver `r` is gone; its share of every in-flight
    /// message is settled so senders are not stuck waiting for it.
    pub(super) fn release(&mut self, r: usize) {
        let w = self.window as u32;
        for s in 0..self.plan.senders {
            if s == r {
                continue;
            }
            let sent = self.seq[s];
            for seq in sent.saturating_sub(w)..sent {
                if !self.tracker.has(r, s, seq) {
                    self.settle(s, seq);
                }
            }
        }
    }

    /// Handles one line the server sent to client `i`.
    pub(super) fn line(&mut self, i: usize, line: &[u8], now_ns: u64) {
        let plan = self.plan;
        let setup = matches!(self.phase, Phase::Setup | Phase::Barrier);
        // The server sends UTF-8; a line that is not is no protocol line.
        // With tags on, the tag prefix goes: what follows is the line.
        let line = match line {
            [b'@', tagged @ ..] if plan.tags => match memchr::memchr(b' ', tagged) {
                Some(space) => &tagged[space + 1..],
                None => line,
            },
            _ => line,
        };
        let recognised = std::str::from_utf8(line).ok().and_then(protocol::recognise);
        match recognised {
            Some(ServerLine::Event(Event::Said { from, text, .. })) => {
                let (nick, text) = (from.as_bytes(), text.as_bytes());
                if let Some(m) = marker::parse(text) {
                    self.deliver(i, nick, m, now_ns);
                } else if marker::parse_probe(text).is_some() {
                    self.report.setup_lines += 1;
                    let c = &mut self.clients[i];
                    if !c.probe_seen && c.state == State::Ready {
                        c.probe_seen = true;
                        self.probe_hits += 1;
                    }
                } else {
                    self.report.foreign_chat += 1;
                }
            }
            Some(ServerLine::Reply(Reply::Welcome { nick })) => {
                self.report.setup_lines += 1;
                self.on_welcome(i, nick.as_bytes());
            }
            Some(ServerLine::Reply(Reply::PasswordRequired)) => {
                self.report.setup_lines += 1;
                match &plan.password {
                    Some(pw) => {
                        let c = &mut self.clients[i];
                        c.wbuf.extend_from_slice(b":auth ");
                        c.wbuf.extend_from_slice(pw.as_bytes());
                        c.wbuf.push(b'\n');
                        self.mark_dirty(i);
                    }
                    None => self.close(i, "the server wants a password: give --password"),
                }
            }
            Some(ServerLine::Event(Event::Joined { nick, room })) => {
                self.info_line(setup);
                let c = &self.clients[i];
                let own =
                    c.state == State::Handshake && c.nick_len > 0 && nick.as_bytes() == c.nick();
                if let (true, Some(want)) = (own, &plan.room) {
                    if room.eq_ignore_ascii_case(want) {
                        self.set_ready(i);
                    }
                }
            }
            Some(ServerLine::Event(Event::ShuttingDown)) => {
                if self.phase == Phase::Closing {
                    self.shutdown_lines += 1;
                } else {
                    self.report.info_lines += 1;
                    self.note(format!(
                        "client {i}: server shutting down in {:?}",
                        self.phase
                    ));
                }
            }
            Some(ServerLine::Event(Event::PrivateMessage { .. })) => self.report.info_lines += 1,
            Some(ServerLine::Error(_)) => self.server_error(i, line),
            // An error this version does not know is still an error.
            None if line.starts_with(b"! ") => self.server_error(i, line),
            Some(_) => self.info_line(setup),
            // So is information this version does not know.
            None if line.starts_with(b"* ") => self.info_line(setup),
            None => {
                self.report.unknown_lines += 1;
                if self.report.unknown_lines <= 3 {
                    let text = String::from_utf8_lossy(line).into_owned();
                    self.note(format!("client {i} got unrecognised line `{text}`"));
                }
            }
        }
    }

    /// Any other line: counted as setup or as information.
    fn info_line(&mut self, setup: bool) {
        if setup {
            self.report.setup_lines += 1;
        } else {
            self.report.info_lines += 1;
        }
    }

    /// Client `i` got a `! ` line: counted, and the first few noted.
    fn server_error(&mut self, i: usize, line: &[u8]) {
        self.report.server_errors += 1;
        if self.report.server_errors <= 3 {
            let text = String::from_utf8_lossy(line).into_owned();
            self.note(format!("client {i} got `{text}` in {:?}", self.phase));
        }
    }

    /// Client `i` is accepted: remember its nick, and join the room if asked.
    pub(super) fn on_welcome(&mut self, i: usize, nick: &[u8]) {
        let plan = self.plan;
        let c = &mut self.clients[i];
        if c.state != State::Handshake {
            self.report.info_lines += 1;
            return;
        }
        if nick.is_empty() || nick.len() > MAX_NICK {
            let text = String::from_utf8_lossy(nick).into_owned();
            self.close(i, &format!("welcome with an impossible nick `{text}`"));
            return;
        }
        c.nick[..nick.len()].copy_from_slice(nick);
        c.nick_len = nick.len() as u8;
        if plan.tags {
            c.wbuf.extend_from_slice(b":tags on\n");
        }
        match &plan.room {
            Some(room) => {
                c.wbuf.extend_from_slice(b":join ");
                c.wbuf.extend_from_slice(room.as_bytes());
                c.wbuf.push(b'\n');
                // Protocol 1.2 keeps the rooms one was in: leave #lobby, so
                // the client is in its room only, as before.
                if !is_lobby(room) {
                    c.wbuf.extend_from_slice(b":part #lobby\n");
                }
                self.mark_dirty(i);
            }
            None => {
                if plan.tags {
                    self.mark_dirty(i);
                }
                self.set_ready(i)
            }
        }
    }

    /// Client `i` is welcomed and in the room: it counts from now on.
    pub(super) fn set_ready(&mut self, i: usize) {
        let c = &mut self.clients[i];
        c.state = State::Ready;
        let us = c.started.elapsed().as_micros() as u64;
        self.connect_us.saturating_record(us);
        self.ready += 1;
        self.in_progress -= 1;
    }

    /// Client `r` received measured message `m`, relayed under `nick`:
    /// check who sent it, track its sequence, record its latency.
    pub(super) fn deliver(&mut self, r: usize, nick: &[u8], m: Marker, now_ns: u64) {
        let s = m.sender as usize;
        if s >= self.plan.senders || m.seq >= self.seq[s] || self.clients[s].nick() != nick {
            self.report.misattributed += 1;
            if self.report.misattributed == 1 {
                let who = String::from_utf8_lossy(nick).into_owned();
                self.note(format!(
                    "client {r} got message {}:{} from `{who}`, not from its sender",
                    m.sender, m.seq
                ));
            }
            return;
        }
        if s == r {
            // With tags on, a sender's own line comes back: expected.
            if !self.plan.tags {
                self.report.echoed += 1;
            }
            return;
        }
        if !self.tracker.record(r, s, m.seq).is_first() {
            return;
        }
        self.report.delivered_total += 1;
        if now_ns >= self.w0_ns && now_ns < self.w1_ns {
            self.report.delivered_window += 1;
        }
        if m.sent_ns >= self.w0_ns && m.sent_ns < self.w1_ns {
            self.latency
                .saturating_record(now_ns.saturating_sub(m.sent_ns) / 1000);
        }
        if self.window > 0 {
            self.settle(s, m.seq);
        }
    }
}

/// Whether `room` (`#` optional, any letter case) is `#lobby`.
fn is_lobby(room: &str) -> bool {
    room.strip_prefix('#')
        .unwrap_or(room)
        .eq_ignore_ascii_case(&loopchat_protocol::LOBBY[1..])
}
