//! A buffer: the lines of one room or one private conversation (or the
//! server's own), in time order, with its members and what is unread.

use std::collections::{HashSet, VecDeque};

/// How many lines a buffer keeps.
const SCROLLBACK: usize = 5000;

/// What a buffer holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The server's lines that belong to no room.
    Server,
    /// A room, as the server spells it.
    Room(String),
    /// A private conversation with a nick.
    Private(String),
}

impl Target {
    /// The same buffer: names compare case-insensitively.
    pub fn same(&self, other: &Target) -> bool {
        match (self, other) {
            (Target::Server, Target::Server) => true,
            (Target::Room(a), Target::Room(b)) | (Target::Private(a), Target::Private(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            _ => false,
        }
    }
}

/// What one line on the pane is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Someone's chat line, `alice: hi`; `own` for ours.
    Chat {
        nick: String,
        text: String,
        own: bool,
    },
    /// `* alice waves`; `own` for ours.
    Action {
        nick: String,
        text: String,
        own: bool,
    },
    /// `[pm] alice: hi`.
    PmIn { from: String, text: String },
    /// Our own `:pm bob hi`.
    PmOut { to: String, text: String },
    /// An end-to-end message from someone, decrypted.
    E2eIn { from: String, text: String },
    /// Our own end-to-end message (`:e2e bob hi`), as typed.
    E2eOut { to: String, text: String },
    /// Joins, leaves and renames.
    Presence(String),
    /// Any other `* ` line.
    Info(String),
    /// `! ` lines.
    Error(String),
    /// The client's own notes (connection lost, reconnecting, ...).
    Notice(String),
}

/// Where an own line is: sent and echoed, on its way, or refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Someone else's line, or ours once the server echoed it.
    Sent,
    /// Ours, sent, its echo not yet back.
    Sending,
    /// Ours, refused: the server's error (or why no answer came).
    Refused(String),
}

#[derive(Clone, Debug)]
pub struct Message {
    /// When: the `time` tag (the moment the server accepted the line) or,
    /// without one, when it arrived; unix milliseconds, UTC.
    pub at_ms: i64,
    pub kind: Kind,
    /// A line from `:history`.
    pub history: bool,
    /// Someone else's line that names us, or a private message to us.
    pub mention: bool,
    /// The `id` tag: the line's number in its room.
    pub id: Option<u64>,
    pub status: Status,
    /// The client's own number for the message, so an echo finds it.
    pub seq: u64,
}

/// One room, conversation, or the server's buffer.
#[derive(Clone, Debug)]
pub struct Buffer {
    pub target: Target,
    pub messages: VecDeque<Message>,
    /// A room's members, sorted as the server sorts (`@` for operators).
    pub users: Vec<String>,
    /// A room's topic.
    pub topic: Option<String>,
    /// Chat, `:me` and private lines that arrived while not on screen.
    pub unread: u32,
    /// Whether one of them named us.
    pub mention: bool,
    /// A room we are in now (a room's buffer stays after a disconnect, to
    /// take up again).
    pub joined: bool,
    /// The (`id`, `time`) of the room lines shown: a server without a
    /// history file numbers from 1 again after a restart, and a replayed
    /// line keeps the time of its first delivery.
    ids: HashSet<(u64, i64)>,
}

impl Buffer {
    pub fn new(target: Target) -> Buffer {
        Buffer {
            target,
            messages: VecDeque::new(),
            users: Vec::new(),
            topic: None,
            unread: 0,
            mention: false,
            joined: false,
            ids: HashSet::new(),
        }
    }

    /// The buffer's name in the list: the room, the nick, or `server`.
    pub fn name(&self) -> &str {
        match &self.target {
            Target::Room(name) | Target::Private(name) => name,
            Target::Server => "server",
        }
    }

    /// Whether the line `id` of time `at_ms` is shown already.
    pub fn has_id(&self, id: u64, at_ms: i64) -> bool {
        self.ids.contains(&(id, at_ms))
    }

    /// Whether a history line without an id (a server without tags) is
    /// shown already: the same text within two seconds.
    pub fn has_line(&self, kind: &Kind, at_ms: i64) -> bool {
        self.messages
            .iter()
            .any(|m| same_words(&m.kind, kind) && (m.at_ms - at_ms).abs() <= 2000)
    }

    /// Adds a live `message` at the bottom: live lines keep their order of
    /// arrival, which is the server's order.
    pub fn push(&mut self, message: Message) {
        self.place(self.messages.len(), message);
    }

    /// Adds a history `message` in time order, after every line of the same
    /// time or earlier.
    pub fn insert(&mut self, message: Message) {
        let at = self
            .messages
            .iter()
            .rposition(|m| m.at_ms <= message.at_ms)
            .map_or(0, |i| i + 1);
        self.place(at, message);
    }

    fn place(&mut self, at: usize, message: Message) {
        if let Some(id) = message.id {
            self.ids.insert((id, message.at_ms));
        }
        self.messages.insert(at, message);
        if self.messages.len() > SCROLLBACK {
            if let Some(dropped) = self.messages.pop_front() {
                if let Some(id) = dropped.id {
                    self.ids.remove(&(id, dropped.at_ms));
                }
            }
        }
    }

    /// Updates the message `seq`, if here: its status, and the id and time
    /// the server gave it. True when found.
    pub fn update(
        &mut self,
        seq: u64,
        status: &Status,
        id: Option<u64>,
        at_ms: Option<i64>,
    ) -> bool {
        let Some(message) = self.messages.iter_mut().rev().find(|m| m.seq == seq) else {
            return false;
        };
        message.status = status.clone();
        if let Some(at_ms) = at_ms {
            message.at_ms = at_ms;
        }
        if let Some(id) = id {
            message.id = Some(id);
            self.ids.insert((id, message.at_ms));
        }
        true
    }

    /// `old` renamed `new` in the member list; true when `old` was there.
    pub fn rename(&mut self, old: &str, new: &str) -> bool {
        let Some(user) = self.users.iter_mut().find(|u| same_user(u, old)) else {
            return false;
        };
        let operator = if user.starts_with('@') { "@" } else { "" };
        *user = format!("{operator}{new}");
        sort_names(&mut self.users);
        true
    }

    /// `nick` joined the room.
    pub fn add_user(&mut self, nick: &str) {
        if !self.has_user(nick) {
            self.users.push(nick.to_string());
            sort_names(&mut self.users);
        }
    }

    /// `nick` left the room.
    pub fn remove_user(&mut self, nick: &str) {
        self.users.retain(|u| !same_user(u, nick));
    }

    /// Whether `nick` is a member.
    pub fn has_user(&self, nick: &str) -> bool {
        self.users.iter().any(|u| same_user(u, nick))
    }

    /// Marks `nick` an operator (`@`) or not.
    pub fn set_operator(&mut self, nick: &str, operator: bool) {
        if let Some(user) = self.users.iter_mut().find(|u| same_user(u, nick)) {
            let bare = user.trim_start_matches('@').to_string();
            *user = if operator { format!("@{bare}") } else { bare };
        }
    }
}

/// The words of a chat or `:me` line, to compare a history line without
/// an id with one shown.
fn same_words(a: &Kind, b: &Kind) -> bool {
    match (a, b) {
        (
            Kind::Chat {
                nick: n1, text: t1, ..
            },
            Kind::Chat {
                nick: n2, text: t2, ..
            },
        )
        | (
            Kind::Action {
                nick: n1, text: t1, ..
            },
            Kind::Action {
                nick: n2, text: t2, ..
            },
        ) => n1.eq_ignore_ascii_case(n2) && t1 == t2,
        _ => false,
    }
}

/// Sorts as the server does: by the lower-cased name (an operator's `@`
/// aside).
pub fn sort_names(names: &mut [String]) {
    names.sort_by_key(|n| n.trim_start_matches('@').to_lowercase());
}

/// Whether an entry of the users list (`alice`, or `@alice` for an
/// operator) is `nick`, in any case.
pub fn same_user(entry: &str, nick: &str) -> bool {
    entry.trim_start_matches('@').eq_ignore_ascii_case(nick)
}
