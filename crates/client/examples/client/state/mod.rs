//! What the full-screen client knows about the chat: one buffer of lines per
//! room it is in and per private conversation, who is in each room, the
//! rooms, the connection. Plain data fed with server lines
//! ([`State::on_line`]) and the person's input ([`State::on_input`]); it
//! answers with the lines to send, and never touches a socket or the screen.
//!
//! Right after the welcome the client turns tags on (`:tags on`, protocol
//! 1.2), and from then on:
//!
//! - every room line is placed in its room's buffer by its `room` tag;
//!   switching buffers shows that room's lines only ([`State::switch_to`]
//!   also makes the room current on the server, so both stay in step);
//! - chat and history lines carry an `id`, so a line already shown (history
//!   asked again after a reconnect, the same line live and in history) is
//!   dropped; after a reconnect each room asks for the most history the
//!   server gives, which fills the gap;
//! - what the person types goes out with a `label`: an own chat line shows
//!   as *sending* until its echo (same label) arrives, and as *refused*,
//!   with the server's error, when the answer is a `! ` line; the answers
//!   to what the client asks on its own (`:users`, `:history`, `:rooms`)
//!   are recognised by their label and kept off the screen;
//! - times come from the `time` tag, shown in local time ([`crate::ui`]
//!   draws a separator where the day changes).
//!
//! A server without tags (`! unknown command :tags`) still works: lines are
//! placed by their `[#room] ` prefix, nothing is labelled, own lines count
//! as sent when typed.
//!
//! Buffer 0 is the server's own: the welcome, connection notes and whatever
//! belongs to no room. Unread lines and mentions are counted per buffer; a
//! mention of our nick or a private message asks for one bell
//! ([`State::bells`]). Member lists follow joined, left, kicked, renamed and
//! operator lines; `:users` is asked once per join.
//!
//! Layout: [`buffer`] the buffers and their lines, [`lines`] the server's
//! lines, [`input`] the person's, [`account`] the remembered login.

mod account;
mod buffer;
mod input;
mod lines;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Instant;

pub use account::token_path;
pub use buffer::{Buffer, Kind, Message, Status, Target};
pub use input::slash_command;

use crate::secure::{Secure, Taken};
use crate::text::for_screen;
use loopchat_client::e2e::Lock;

/// How many history lines to ask for on joining a room.
pub const HISTORY_ON_JOIN: u32 = 30;
/// How many to ask for on joining again after a reconnect: the server clamps
/// it to its maximum, and lines already shown are dropped by `id`.
pub const HISTORY_ON_REJOIN: u32 = 1000;

/// The keys, as `:help` lists them before the server's commands.
pub const KEYS_HELP: &[&str] = &[
    "keys: Enter send · Up/Down earlier lines · Tab complete a nick, :command or room",
    "keys: PgUp/PgDn or the wheel scroll · Esc or Ctrl-End newest · Ctrl-L redraw",
    "keys: Ctrl-W/U/K delete word/to start/to end · Ctrl-C, Ctrl-D or :quit leave",
    "keys: Alt-1…9 show the Nth room or conversation of the list · Alt-0 the server's",
    "rooms: +N unread lines, @ when one named you (the bell rings) · :pm NICK opens a conversation",
];

/// The connection as the status line shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Connected,
    Retrying { attempt: u32, at: Instant },
    Lost,
}

/// Why a labelled line was sent: what to do with its answers.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Purpose {
    /// An own chat, `:me` or `:pm` line: its echo or refusal updates the
    /// message with this `seq`.
    Own {
        seq: u64,
    },
    /// Asked on our own: the answers are kept off the screen.
    Users,
    History,
    Rooms,
    /// `:join` of a room we are in, to make it current after a switch.
    Switch,
    /// Typed by the person in the buffer of `target`: the answers show
    /// there.
    Typed {
        target: Target,
    },
}

pub struct State {
    /// Buffer 0 is the server's; then rooms and private conversations in
    /// the order they were opened.
    pub buffers: Vec<Buffer>,
    /// The buffer on screen.
    pub view: usize,
    pub server: String,
    pub link: Link,
    /// Our nick once welcomed.
    pub nick: Option<String>,
    /// The server's current room (where a chat line goes).
    pub room: Option<String>,
    /// Every room with its member count, from the last `* rooms:`.
    pub rooms: Vec<(String, String)>,
    /// Rows scrolled up from the bottom of the pane.
    pub scroll: usize,
    /// Messages that arrived below a scrolled-up view.
    pub unseen: usize,
    /// Width the pane was last drawn at, to keep a scrolled view still when
    /// lines arrive.
    pub pane_width: usize,
    /// Height of the pane when last drawn: one page for PgUp/PgDn.
    pub pane_height: usize,
    /// Whether we are welcomed (may chat).
    pub welcomed: bool,
    /// End-to-end encrypted private messages.
    pub secure: Secure,
    /// Bells to ring: one per line naming us (the screen takes them).
    pub bells: u32,
    /// Where this server's account token is kept ("remember me"); `None`
    /// keeps none.
    pub token_path: Option<std::path::PathBuf>,
    /// The nick to take again after a reconnect (`--nick`, then our renames).
    want_nick: Option<String>,
    password: Option<String>,
    /// Whether we sent the `:auth` (and so a `! wrong password` is about it).
    auth_sent: bool,
    /// `None` until the server answered `:tags on`.
    tags: Option<bool>,
    /// Lines waiting for that answer (they are labelled once tags are on).
    deferred: Vec<(Purpose, String)>,
    /// Labels in flight, by number.
    labels: BTreeMap<u64, Purpose>,
    next_label: u64,
    /// Numbers messages, so an echo finds its line.
    next_seq: u64,
    /// Keepalive pings whose pong to hide.
    pongs: u32,
    /// Rooms asked without a label (no tags) whose answer to hide.
    rooms_unlabelled: u32,
    /// `None` until we know; `Some(false)` after `! unknown command :history`.
    has_history: Option<bool>,
    /// The rooms to join again after a reconnect, the current one last.
    rejoin: Vec<String>,
    /// A `:resume` with the saved token is on its way.
    resuming: bool,
    /// The person typed `:login` or `:register`: keep a token when it works.
    remember: bool,
    /// Own end-to-end messages waiting for their session: (peer
    /// lower-cased, `seq`), oldest first.
    e2e_waiting: Vec<(String, u64)>,
}

impl State {
    pub fn new(
        server: String,
        nick: Option<String>,
        password: Option<String>,
        secure: Secure,
    ) -> State {
        State {
            buffers: vec![Buffer::new(Target::Server)],
            view: 0,
            server,
            link: Link::Connected,
            nick: None,
            room: None,
            rooms: Vec::new(),
            scroll: 0,
            unseen: 0,
            pane_width: 80,
            pane_height: 20,
            welcomed: false,
            secure,
            bells: 0,
            token_path: None,
            want_nick: nick,
            password,
            auth_sent: false,
            tags: None,
            deferred: Vec::new(),
            labels: BTreeMap::new(),
            next_label: 1,
            next_seq: 1,
            pongs: 0,
            rooms_unlabelled: 0,
            has_history: None,
            rejoin: Vec::new(),
            resuming: false,
            remember: false,
            e2e_waiting: Vec::new(),
        }
    }

    /// The buffer on screen.
    pub fn shown(&self) -> &Buffer {
        &self.buffers[self.view]
    }

    /// The members of the room on screen (empty for other buffers).
    pub fn users(&self) -> &[String] {
        &self.shown().users
    }

    /// The nicks Tab completes on screen: the room's members without
    /// their operator mark, or the private conversation's peer.
    pub fn nicks(&self) -> Vec<String> {
        match &self.shown().target {
            Target::Private(peer) => vec![peer.clone()],
            _ => (self.users().iter())
                .map(|u| u.trim_start_matches('@').to_string())
                .collect(),
        }
    }

    /// What the status line calls the buffer on screen: the room, `pm NICK`,
    /// or `-` for the server's.
    pub fn view_name(&self) -> String {
        match &self.shown().target {
            Target::Room(room) => room.clone(),
            Target::Private(nick) => format!("pm {nick}"),
            Target::Server => "-".to_string(),
        }
    }

    /// The buffers the list numbers (Alt-1…9): rooms we are in, then
    /// private conversations, as indexes into [`State::buffers`].
    pub fn listed(&self) -> Vec<usize> {
        let rooms = (1..self.buffers.len()).filter(|&i| {
            matches!(self.buffers[i].target, Target::Room(_)) && self.buffers[i].joined
        });
        let private = (1..self.buffers.len())
            .filter(|&i| matches!(self.buffers[i].target, Target::Private(_)));
        rooms.chain(private).collect()
    }

    /// The lock of the private conversation on screen; `None` for a room
    /// or the server's buffer.
    pub fn view_lock(&self) -> Option<Lock> {
        self.buffer_lock(self.view)
    }

    /// The lock of private conversation `index`; `None` for other buffers.
    pub fn buffer_lock(&self, index: usize) -> Option<Lock> {
        match &self.buffers.get(index)?.target {
            Target::Private(peer) => Some(self.secure.lock(peer)),
            _ => None,
        }
    }

    /// The name end-to-end sessions are bound to: our nick on the server.
    fn e2e_name(&self) -> String {
        self.nick.clone().unwrap_or_else(|| "me".to_string())
    }

    fn me(&self, name: &str) -> bool {
        self.nick
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    }

    /// Whether `text` has our nick as a word (any case).
    fn names_me(&self, text: &str) -> bool {
        let Some(nick) = self.nick.as_deref() else {
            return false;
        };
        text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .any(|word| word.eq_ignore_ascii_case(nick))
    }

    /// The index of the buffer of `target`, made when there is none.
    fn buffer(&mut self, target: &Target) -> usize {
        if let Some(i) = self.find(target) {
            return i;
        }
        self.buffers.push(Buffer::new(target.clone()));
        self.buffers.len() - 1
    }

    fn find(&self, target: &Target) -> Option<usize> {
        self.buffers.iter().position(|b| b.target.same(target))
    }

    fn room_buffer(&mut self, room: &str) -> usize {
        self.buffer(&Target::Room(room.to_string()))
    }

    /// Now, in unix milliseconds.
    fn now_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Adds a line to buffer `at` at time `at_ms` (at the bottom, or placed
    /// by time among the lines there for history); counts it unread and rings for a mention as its kind
    /// says. Returns the message's `seq`.
    fn put(&mut self, at: usize, kind: Kind, at_ms: i64, id: Option<u64>, history: bool) -> u64 {
        let mention = match &kind {
            Kind::Chat {
                text, own: false, ..
            }
            | Kind::Action {
                text, own: false, ..
            } => self.names_me(text),
            Kind::PmIn { .. } | Kind::E2eIn { .. } => true,
            _ => false,
        };
        let counts = !history
            && matches!(
                kind,
                Kind::Chat { own: false, .. }
                    | Kind::Action { own: false, .. }
                    | Kind::PmIn { .. }
                    | Kind::E2eIn { .. }
            );
        if mention && !history {
            self.bells += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let message = Message {
            at_ms,
            kind,
            history,
            mention,
            id,
            status: Status::Sent,
            seq,
        };
        if at == self.view {
            if self.scroll > 0 {
                // Keep a scrolled-up view where it is, and count what
                // arrived below it.
                self.scroll += crate::ui::rows_of(&message, self.pane_width);
                self.unseen += 1;
            }
        } else if counts {
            self.buffers[at].unread += 1;
            self.buffers[at].mention |= mention;
        }
        if history {
            self.buffers[at].insert(message);
        } else {
            self.buffers[at].push(message);
        }
        seq
    }

    /// A line of ours or the server's, at the bottom of buffer `at`, now.
    fn show(&mut self, at: usize, kind: Kind) {
        self.put(at, kind, State::now_ms(), None, false);
    }

    /// A line shown in the buffer on screen.
    pub fn push(&mut self, kind: Kind) {
        self.show(self.view, kind);
    }

    /// A note of the client's own, in the buffer on screen.
    pub fn notice(&mut self, text: impl Into<String>) {
        self.push(Kind::Notice(for_screen(&text.into())));
    }

    /// Shows buffer `index` (Alt-N, `:pm NICK`): its lines are seen; a room
    /// becomes the server's current room too. Returns the lines to send.
    pub fn switch_to(&mut self, index: usize) -> Vec<String> {
        if index >= self.buffers.len() || index == self.view {
            return Vec::new();
        }
        self.view = index;
        self.scroll = 0;
        self.unseen = 0;
        let buffer = &mut self.buffers[index];
        buffer.unread = 0;
        buffer.mention = false;
        let (target, joined) = (buffer.target.clone(), buffer.joined);
        match target {
            Target::Room(room) if joined && !self.is_current(&room) => {
                let line = format!(":join {room}");
                self.request(Purpose::Switch, line).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Whether `room` is the server's current room for us.
    fn is_current(&self, room: &str) -> bool {
        self.room
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case(room))
    }

    /// `line` to send for `purpose`: labelled when tags are on, as is when
    /// the server has none, held back (`None`) until the server answered
    /// `:tags on`.
    fn request(&mut self, purpose: Purpose, line: String) -> Option<String> {
        match self.tags {
            None => {
                self.deferred.push((purpose, line));
                None
            }
            Some(true) => {
                let label = self.next_label;
                self.next_label += 1;
                self.labels.insert(label, purpose);
                Some(format!("@label={label} {line}"))
            }
            Some(false) => {
                match purpose {
                    Purpose::Own { seq } => self.set_status(seq, Status::Sent, None, None),
                    Purpose::Rooms => self.rooms_unlabelled += 1,
                    _ => {}
                }
                Some(line)
            }
        }
    }

    /// The server answered `:tags on` (`on`) or does not know it: sends
    /// what waited.
    fn tags_known(&mut self, on: bool, send: &mut Vec<String>) {
        self.tags = Some(on);
        for (purpose, line) in std::mem::take(&mut self.deferred) {
            send.extend(self.request(purpose, line));
        }
    }

    /// The purpose of the line labelled `label`; labels answered before it
    /// are done (the server answers lines in order).
    fn purpose(&mut self, label: Option<&str>) -> Option<Purpose> {
        let label: u64 = label?.parse().ok()?;
        let purpose = self.labels.get(&label).cloned();
        self.labels = self.labels.split_off(&label);
        purpose
    }

    /// Updates the own message `seq` (wherever it is): its status, and the
    /// id and time the server gave it.
    fn set_status(&mut self, seq: u64, status: Status, id: Option<u64>, at_ms: Option<i64>) {
        for buffer in &mut self.buffers {
            if buffer.update(seq, &status, id, at_ms) {
                return;
            }
        }
    }

    /// The status of the own message `seq`, wherever it is.
    fn status_of(&self, seq: u64) -> Option<&Status> {
        self.buffers
            .iter()
            .find_map(|b| b.messages.iter().rev().find(|m| m.seq == seq))
            .map(|m| &m.status)
    }

    /// Shows what the end-to-end side took, in the peer's private buffer;
    /// returns its lines to send. An own message shows as sending until
    /// it is encrypted and sent (its session may still be on its way).
    fn taken(&mut self, taken: Taken) -> Vec<String> {
        for (peer, text, own) in taken.messages {
            let (peer, text) = (for_screen(&peer), for_screen(&text));
            let at = self.buffer(&Target::Private(peer.clone()));
            if own {
                // Talking to someone shows the conversation.
                self.switch_to(at);
                let id = peer.to_ascii_lowercase();
                let seq = self.put(
                    at,
                    Kind::E2eOut { to: peer, text },
                    State::now_ms(),
                    None,
                    false,
                );
                self.set_status(seq, Status::Sending, None, None);
                self.e2e_waiting.push((id, seq));
            } else {
                self.show(at, Kind::E2eIn { from: peer, text });
            }
        }
        // Each transport message sent is the oldest one waiting for its peer.
        for line in &taken.send {
            let sealed = line
                .strip_prefix(":e2e ")
                .and_then(|rest| rest.split_once(' '))
                .filter(|(_, payload)| payload.starts_with("v1.m."));
            let Some((peer, _)) = sealed else { continue };
            let peer = for_screen(peer).to_ascii_lowercase();
            if let Some(i) = self.e2e_waiting.iter().position(|(p, _)| *p == peer) {
                let (_, seq) = self.e2e_waiting.remove(i);
                self.set_status(seq, Status::Sent, None, None);
            }
        }
        for (text, warning) in taken.notes {
            let text = for_screen(&text);
            self.push(if warning {
                Kind::Error(format!("! e2e: {text}"))
            } else {
                Kind::Info(format!("* e2e: {text}"))
            });
        }
        taken.send
    }

    /// We sent a keepalive ping: hide its pong.
    pub fn keepalive_sent(&mut self) {
        self.pongs += 1;
    }

    /// The periodic `:rooms` (a fallback: joins and leaves refresh the list
    /// too); `None` while tags are not settled.
    pub fn refresh_rooms(&mut self) -> Option<String> {
        (self.tags.is_some()).then(|| self.request(Purpose::Rooms, ":rooms".into()))?
    }

    /// The error line the server sent last, if its last line was one
    /// (`! server full`): the reason to give on leaving.
    pub fn last_error(&self) -> Option<&str> {
        self.buffers
            .iter()
            .filter_map(|b| b.messages.back())
            .max_by_key(|m| m.seq)
            .and_then(|m| match &m.kind {
                Kind::Error(text) => Some(text.as_str()),
                _ => None,
            })
    }

    /// The connection ended: nothing we asked for will be answered; own
    /// lines still waiting for their echo may not have reached anyone.
    pub fn disconnected(&mut self) {
        // The last label answered is kept for more of its answer: an own
        // line echoed already is sent, not lost.
        for purpose in std::mem::take(&mut self.labels).into_values() {
            if let Purpose::Own { seq } = purpose {
                if self.status_of(seq) == Some(&Status::Sending) {
                    let lost = Status::Refused("the connection was lost before the echo".into());
                    self.set_status(seq, lost, None, None);
                }
            }
        }
        self.deferred.clear();
        self.tags = None;
        self.pongs = 0;
        self.rooms_unlabelled = 0;
        self.welcomed = false;
        self.auth_sent = false;
        self.rooms.clear();
        let current = self.room.take();
        let mut rejoin: Vec<String> = Vec::new();
        for buffer in &mut self.buffers {
            if let Target::Room(room) = &buffer.target {
                if buffer.joined {
                    rejoin.push(room.clone());
                }
            }
            buffer.joined = false;
            buffer.users.clear();
        }
        if let Some(current) = current {
            rejoin.retain(|r| !r.eq_ignore_ascii_case(&current));
            rejoin.push(current);
        }
        if !rejoin.is_empty() {
            self.rejoin = rejoin;
        }
    }
}

/// `guestN`: a nick the server assigned, not one to ask for again.
fn is_guest(nick: &str) -> bool {
    nick.strip_prefix("guest")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
