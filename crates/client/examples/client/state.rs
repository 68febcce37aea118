//! What the full-screen client knows about the chat: the messages, who is in
//! the room, the rooms, the connection. Plain data fed with server lines
//! ([`State::on_line`]) and the person's input ([`State::on_input`]); it
//! answers with the lines to send, and never touches a socket or the screen.
//!
//! The server's lines are read with the protocol's recogniser
//! ([`loopchat_protocol::recognise`]), the same one the load generator and
//! the tests use; a line it does not know is shown by its first character
//! (`* ` information, `! ` error). `* NAME TEXT` is a `:me` action when
//! NAME is in the room: reserved nicks guarantee no user is called like a
//! server word.
//!
//! On joining a room the client asks for `:users`, `:history` and `:rooms`
//! on its own and keeps their answers off the message pane, except the
//! history lines, which go above whatever arrived live since the join. A
//! server without `:history` answers `! unknown command`; that is swallowed
//! and the client stops asking.
//!
//! Protocol 1.2 keeps the rooms one joined: the client follows its current
//! room from its own joined line, `* current room #x` (asking `:users`
//! again) and `* not in any room …`, and shows the lines of its other rooms
//! as they come, with their `[#room] ` prefix. `:users` marks operators
//! with `@`, which the list keeps and name matching ignores.
//!
//! The rooms one is in are kept in [`State::joined`] with the lines that
//! arrived in each while it was not current (unread) and whether one of
//! them named us (a mention); a mention in any room, or a private line
//! naming us, asks for one bell ([`State::bells`]).

use std::collections::VecDeque;
use std::time::Instant;

use crate::secure::{Secure, Taken};
use crate::text::{for_screen, Clock};
use crate::KEEPALIVE_TOKEN;
use loopchat_protocol::{recognise, recognise_history, Error, Event, Reply, ServerLine};

/// How many messages the pane keeps.
const SCROLLBACK: usize = 5000;
/// How many history lines to ask for on joining a room.
pub const HISTORY_ON_JOIN: u32 = 30;

/// The keys, as `:help` lists them before the server's commands.
const KEYS_HELP: &[&str] = &[
    "keys: Enter send · Up/Down earlier lines · Tab complete a nick, :command or room",
    "keys: PgUp/PgDn or the wheel scroll · Esc or Ctrl-End newest · Ctrl-L redraw",
    "keys: Ctrl-W/U/K delete word/to start/to end · Ctrl-C, Ctrl-D or :quit leave",
    "rooms: +N unread lines in a room you are in, @ when one named you (the bell rings)",
];

/// What one line on the pane is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Someone's chat line, `alice: hi`; `own` for ours.
    Chat {
        nick: String,
        text: String,
        own: bool,
    },
    /// `* alice waves`.
    Action { nick: String, text: String },
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

#[derive(Clone, Debug)]
pub struct Message {
    pub at: Clock,
    pub kind: Kind,
    /// A `[history TIME]` line: `at` is the time the server gave.
    pub history: bool,
    /// Someone else's line that names us.
    pub mention: bool,
}

/// A room we are in, with what we have not seen of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    pub room: String,
    /// Chat and `:me` lines that arrived while the room was not current.
    pub unread: u32,
    /// Whether one of them named us.
    pub mention: bool,
}

/// Where the account token of `server` is kept: `$XDG_CONFIG_HOME/loopchat/`,
/// else `~/.config/loopchat/`, one file per server address.
pub fn token_path(server: &str) -> Option<std::path::PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|home| std::path::Path::new(&home).join(".config"))
        })?;
    let name: String = server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(config.join("loopchat").join(format!("token-{name}")))
}

/// Writes `token` to `path` with mode 0600 (the folder made as needed).
fn save_token(path: &std::path::Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(token.as_bytes())
}

/// The connection as the status line shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Connected,
    Retrying { attempt: u32, at: Instant },
    Lost,
}

/// Requests the client made on its own, whose answers it hides.
#[derive(Default, Debug)]
struct Pending {
    users: u32,
    rooms: u32,
    history: u32,
    pongs: u32,
}

pub struct State {
    pub messages: VecDeque<Message>,
    pub server: String,
    pub link: Link,
    /// Our nick once welcomed.
    pub nick: Option<String>,
    /// The room we are in.
    pub room: Option<String>,
    /// Who is in `room`, sorted as the server sorts (`:users`).
    pub users: Vec<String>,
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
    /// The nick to take again after a reconnect (`--nick`, then our renames).
    want_nick: Option<String>,
    /// The room to go back to after a reconnect.
    want_room: Option<String>,
    password: Option<String>,
    /// Whether we sent the `:auth` (and so a `! wrong password` is about it).
    auth_sent: bool,
    pending: Pending,
    /// `None` until we know; `Some(false)` after `! unknown command :history`.
    has_history: Option<bool>,
    /// Where history lines go: just after our join line.
    history_at: Option<usize>,
    /// History lines still expected after the header.
    history_left: u32,
    /// Whether we are welcomed (may chat).
    pub welcomed: bool,
    /// End-to-end encrypted private messages.
    pub secure: Secure,
    /// The rooms we are in, in the order we joined them.
    pub joined: Vec<Joined>,
    /// Bells to ring: one per line naming us (the screen takes them).
    pub bells: u32,
    /// Where this server's account token is kept ("remember me"); `None`
    /// keeps none.
    pub token_path: Option<std::path::PathBuf>,
    /// A `:resume` with the saved token is on its way.
    resuming: bool,
    /// The person typed `:login` or `:register`: keep a token when it works.
    remember: bool,
    /// Chat and `:me` lines shown (unix seconds, `nick: text` or
    /// `* nick text`), so history asked again after a reconnect is not
    /// shown twice.
    shown: VecDeque<(i64, String)>,
}

impl State {
    pub fn new(
        server: String,
        nick: Option<String>,
        password: Option<String>,
        secure: Secure,
    ) -> State {
        State {
            messages: VecDeque::new(),
            server,
            link: Link::Connected,
            nick: None,
            room: None,
            users: Vec::new(),
            rooms: Vec::new(),
            scroll: 0,
            unseen: 0,
            pane_width: 80,
            pane_height: 20,
            want_nick: nick,
            want_room: None,
            password,
            auth_sent: false,
            pending: Pending::default(),
            has_history: None,
            history_at: None,
            history_left: 0,
            welcomed: false,
            secure,
            joined: Vec::new(),
            bells: 0,
            token_path: None,
            resuming: false,
            remember: false,
            shown: VecDeque::new(),
        }
    }

    /// The name end-to-end sessions are bound to: our nick on the server.
    fn e2e_name(&self) -> String {
        self.nick.clone().unwrap_or_else(|| "me".to_string())
    }

    /// Shows what the end-to-end side took; returns its lines to send.
    fn taken(&mut self, taken: Taken) -> Vec<String> {
        for (peer, text, own) in taken.messages {
            let (peer, text) = (for_screen(&peer), for_screen(&text));
            self.push(if own {
                Kind::E2eOut { to: peer, text }
            } else {
                Kind::E2eIn { from: peer, text }
            });
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

    fn in_room(&self, name: &str) -> bool {
        self.users.iter().any(|u| same_user(u, name))
    }

    /// Appends a message at the bottom of the pane.
    pub fn push(&mut self, kind: Kind) {
        self.insert(None, kind, Clock::now(), false);
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        self.push(Kind::Notice(for_screen(&text.into())));
    }

    fn insert(&mut self, at: Option<usize>, kind: Kind, clock: Clock, history: bool) {
        let mention = match &kind {
            Kind::Chat {
                text, own: false, ..
            }
            | Kind::Action { text, .. }
            | Kind::PmIn { text, .. } => self.names_me(text),
            _ => false,
        };
        if mention && !history {
            self.bells += 1;
        }
        let message = Message {
            at: clock,
            kind,
            history,
            mention,
        };
        if self.scroll > 0 {
            // Keep a scrolled-up view where it is, and count what arrived
            // below it.
            self.scroll += crate::ui::rows_of(&message, self.pane_width, Clock::now().day);
            self.unseen += 1;
        }
        match at {
            Some(i) if i < self.messages.len() => self.messages.insert(i, message),
            _ => self.messages.push_back(message),
        }
        if self.messages.len() > SCROLLBACK {
            self.messages.pop_front();
            self.history_at = self.history_at.map(|i| i.saturating_sub(1));
        }
    }

    /// A server line arrived; returns the lines to send in answer.
    pub fn on_line(&mut self, raw: &[u8]) -> Vec<String> {
        let line = for_screen(&String::from_utf8_lossy(raw));
        let me = self.e2e_name();
        if let Some(taken) = self.secure.on_line(&me, &line) {
            return self.taken(taken);
        }
        let mut send: Vec<String> = self.secure.on_login(&line).into_iter().collect();
        if self.account_line(&line, &mut send) {
            return send;
        }
        match recognise(&line) {
            Some(ServerLine::Error(error)) => self.on_error(&error, &line),
            Some(ServerLine::Event(Event::PrivateMessage { from, text, .. })) => {
                self.push(Kind::PmIn {
                    from: from.to_string(),
                    text: text.to_string(),
                })
            }
            // A room line of another room (`[#room] …`): shown as it came,
            // counted unread in its room.
            Some(ServerLine::Event(Event::Said {
                room: Some(room),
                from,
                text,
                ..
            }))
            | Some(ServerLine::Event(Event::Acted {
                room: Some(room),
                from,
                text,
                ..
            })) => {
                if !self.me(from) {
                    let mention = self.names_me(text);
                    self.unread(room, mention);
                }
                self.push(Kind::Info(line.clone()))
            }
            Some(ServerLine::Event(Event::Said { from, text, .. })) => {
                self.remember_shown(unix_now(), line.clone());
                let own = self.me(from);
                self.push(Kind::Chat {
                    nick: from.to_string(),
                    text: text.to_string(),
                    own,
                });
            }
            Some(ServerLine::Reply(Reply::HistoryLine {
                time_ms,
                line: body,
                ..
            })) => self.on_history_line(time_ms.div_euclid(1000), body),
            Some(other) => self.on_info(other, &line, &mut send),
            // A line this version does not know: shown as what its first
            // character says it is.
            None if line.starts_with("! ") => self.push(Kind::Error(line.clone())),
            None => self.push(Kind::Info(line.clone())),
        }
        send
    }

    fn on_error(&mut self, error: &Error<'_>, line: &str) {
        match error {
            Error::UnknownCommand(":history") if self.pending.history > 0 => {
                self.pending.history -= 1;
                self.has_history = Some(false);
                return;
            }
            Error::NickReserved(_) | Error::NickTaken(_) | Error::InvalidName(_) => {
                // A refused `:nick`: our lines go out under the old one,
                // which a reconnect takes again unless it was a guest nick.
                self.want_nick = self.nick.clone().filter(|n| !is_guest(n));
            }
            Error::WrongPassword if self.auth_sent => {
                // Do not try it again on the next reconnect.
                self.password = None;
                self.auth_sent = false;
            }
            _ => {}
        }
        self.push(Kind::Error(line.to_string()));
    }

    /// The accounts' lines: keeps the token (`* token` is never shown),
    /// forgets it on `* logged out` or a failed resume (then goes on as a
    /// guest under the wanted nick). True when the line is handled.
    fn account_line(&mut self, line: &str, send: &mut Vec<String>) -> bool {
        if let Some(token) = line.strip_prefix("* token ") {
            match self.token_path.clone() {
                Some(path) => match save_token(&path, token) {
                    Ok(()) => self.notice(format!(
                        "logged in; this client remembers you ({}), :logout forgets",
                        path.display()
                    )),
                    Err(e) => {
                        self.notice(format!("cannot keep the token in {}: {e}", path.display()))
                    }
                },
                None => self.notice("no config folder to keep the token in"),
            }
            return true;
        }
        if line.starts_with("* logged in as ") || line.starts_with("* registered ") {
            if self.remember && !self.resuming {
                send.push(":token".to_string());
            }
            self.remember = false;
            self.resuming = false;
            return false;
        }
        if line == "* logged out" {
            if let Some(path) = &self.token_path {
                let _ = std::fs::remove_file(path);
            }
            return false;
        }
        if line == "! login failed" && self.resuming {
            self.resuming = false;
            if let Some(path) = &self.token_path {
                let _ = std::fs::remove_file(path);
            }
            self.notice("the saved login no longer works: continuing as a guest");
            if let Some(want) = self.want_nick.clone() {
                send.push(format!(":nick {want}"));
            }
            return true;
        }
        false
    }

    /// One more unread line in `room` (one we are in), naming us or not.
    fn unread(&mut self, room: &str, mention: bool) {
        if let Some(joined) = self.joined_mut(room) {
            joined.unread += 1;
            joined.mention |= mention;
        }
        if mention {
            self.bells += 1;
        }
    }

    fn joined_mut(&mut self, room: &str) -> Option<&mut Joined> {
        self.joined
            .iter_mut()
            .find(|j| j.room.eq_ignore_ascii_case(room))
    }

    /// `room` became current: seen.
    fn seen(&mut self, room: &str) {
        match self.joined_mut(room) {
            Some(joined) => {
                joined.unread = 0;
                joined.mention = false;
            }
            None => self.joined.push(Joined {
                room: room.to_string(),
                unread: 0,
                mention: false,
            }),
        }
    }

    fn on_info(&mut self, info: ServerLine<'_>, line: &str, send: &mut Vec<String>) {
        // Leaving a room (parted or kicked), wherever it was.
        if let ServerLine::Event(Event::Left { nick, room, .. })
        | ServerLine::Event(Event::Kicked { nick, room, .. }) = &info
        {
            if self.me(nick) {
                self.joined.retain(|j| !j.room.eq_ignore_ascii_case(room));
            }
        }
        match info {
            ServerLine::Reply(Reply::Pong {
                token: Some(KEEPALIVE_TOKEN),
            }) if self.pending.pongs > 0 => self.pending.pongs -= 1,
            ServerLine::Reply(Reply::PasswordRequired) => {
                self.push(Kind::Info(line.to_string()));
                match self.password.clone() {
                    Some(password) => {
                        self.auth_sent = true;
                        send.push(format!(":auth {password}"));
                    }
                    None => self.notice("the server wants a password: type :auth PASSWORD"),
                }
            }
            ServerLine::Reply(Reply::Welcome { nick }) => {
                self.welcomed = true;
                self.nick = Some(nick.to_string());
                self.users.clear();
                self.push(Kind::Info(line.to_string()));
                let token = (self.token_path.as_ref())
                    .and_then(|path| std::fs::read_to_string(path).ok())
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty() && !t.contains(char::is_whitespace));
                if let Some(token) = token {
                    // Back as the same person, without the password.
                    self.resuming = true;
                    send.push(format!(":resume {token}"));
                } else if let Some(want) = self.want_nick.clone() {
                    if want != nick {
                        send.push(format!(":nick {want}"));
                    }
                }
                if let Some(room) = self.want_room.clone() {
                    if !room.eq_ignore_ascii_case("#lobby") {
                        send.push(format!(":join {room}"));
                    }
                }
            }
            ServerLine::Reply(Reply::Users { room, nicks }) => {
                if self
                    .room
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(room))
                {
                    self.users = nicks.into_iter().map(String::from).collect();
                }
                if self.pending.users > 0 {
                    self.pending.users -= 1;
                } else {
                    self.push(Kind::Info(line.to_string()));
                }
            }
            ServerLine::Reply(Reply::Rooms { rooms }) => {
                self.rooms = rooms
                    .into_iter()
                    .map(|(name, count)| (name.to_string(), count.to_string()))
                    .collect();
                if self.pending.rooms > 0 {
                    self.pending.rooms -= 1;
                } else {
                    self.push(Kind::Info(line.to_string()));
                }
            }
            ServerLine::Reply(Reply::HistoryHeader { count, .. }) if self.pending.history > 0 => {
                self.pending.history -= 1;
                self.has_history = Some(true);
                self.history_left = u32::try_from(count).unwrap_or(u32::MAX);
                if count > 0 {
                    let at = self.history_at;
                    self.insert(at, Kind::Info(line.to_string()), Clock::now(), false);
                    self.history_at = at.map(|i| i + 1);
                }
            }
            ServerLine::Event(Event::Joined { nick, room }) => {
                if self.me(nick) {
                    self.on_own_join(room, send);
                    self.push(Kind::Presence(line.to_string()));
                    self.history_at = Some(self.messages.len());
                    return;
                }
                if self.is_current(room) && !self.in_room(nick) {
                    self.users.push(nick.to_string());
                    sort_names(&mut self.users);
                }
                self.push(Kind::Presence(line.to_string()));
            }
            ServerLine::Event(Event::Left { nick, room, .. }) if self.is_current(room) => {
                self.users.retain(|u| !same_user(u, nick));
                self.push(Kind::Presence(line.to_string()));
            }
            ServerLine::Event(Event::Kicked { nick, room, .. }) if self.is_current(room) => {
                self.users.retain(|u| !same_user(u, nick));
                self.push(Kind::Presence(line.to_string()));
            }
            ServerLine::Reply(Reply::CurrentRoom { room }) => {
                // `:join` of a room we are in, or the room we left was
                // current: the same messages, another room's people.
                self.room = Some(room.to_string());
                self.want_room = Some(room.to_string());
                self.seen(room);
                self.users = self.nick.iter().cloned().collect();
                send.push(":users".to_string());
                self.pending.users += 1;
                self.push(Kind::Info(line.to_string()));
            }
            ServerLine::Reply(Reply::NoRoomLeft) => {
                self.room = None;
                self.want_room = None;
                self.users.clear();
                self.push(Kind::Info(line.to_string()));
            }
            ServerLine::Event(Event::Renamed { old, new }) => {
                if self.me(old) {
                    self.nick = Some(new.to_string());
                    self.want_nick = Some(new.to_string());
                }
                if let Some(user) = self.users.iter_mut().find(|u| same_user(u, old)) {
                    let operator = if user.starts_with('@') { "@" } else { "" };
                    *user = format!("{operator}{new}");
                    sort_names(&mut self.users);
                }
                self.push(Kind::Presence(line.to_string()));
            }
            // `* NAME TEXT` is an action when NAME is in the room.
            ServerLine::Event(Event::Acted { from, text, .. })
                if self.in_room(from) && !text.is_empty() =>
            {
                self.remember_shown(unix_now(), line.to_string());
                self.push(Kind::Action {
                    nick: from.to_string(),
                    text: text.to_string(),
                })
            }
            _ => self.push(Kind::Info(line.to_string())),
        }
    }

    /// Whether `room` is the room we are in.
    fn is_current(&self, room: &str) -> bool {
        self.room
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case(room))
    }

    fn on_own_join(&mut self, room: &str, send: &mut Vec<String>) {
        self.seen(room);
        self.room = Some(room.to_string());
        self.want_room = Some(room.to_string());
        self.users = self.nick.iter().cloned().collect();
        self.history_left = 0;
        send.push(":users".to_string());
        self.pending.users += 1;
        if self.has_history != Some(false) {
            send.push(format!(":history {HISTORY_ON_JOIN}"));
            self.pending.history += 1;
        }
        send.push(":rooms".to_string());
        self.pending.rooms += 1;
    }

    /// Remembers a chat or `:me` line shown at `time` (unix seconds).
    fn remember_shown(&mut self, time: i64, body: String) {
        self.shown.push_back((time, body));
        if self.shown.len() > SCROLLBACK {
            self.shown.pop_front();
        }
    }

    /// Whether `body` was shown at about `time` (live lines are timed on
    /// arrival, so a little apart from the server's time).
    fn was_shown(&self, time: i64, body: &str) -> bool {
        self.shown
            .iter()
            .any(|(t, b)| b == body && (t - time).abs() <= 2)
    }

    /// A `[history TIME] LINE` line: `body` is the chat or `:me` line it
    /// was, `time` when the server accepted it. One already on the pane
    /// (live, or from an earlier `:history`) is not shown again.
    fn on_history_line(&mut self, time: i64, body: &str) {
        if self.was_shown(time, body) {
            self.history_left = self.history_left.saturating_sub(1);
            return;
        }
        self.remember_shown(time, body.to_string());
        let clock = Clock::local(time);
        let kind = match recognise_history(body) {
            Some(Event::Acted { from, text, .. }) => Kind::Action {
                nick: from.to_string(),
                text: text.to_string(),
            },
            Some(Event::Said { from, text, .. }) => Kind::Chat {
                nick: from.to_string(),
                text: text.to_string(),
                own: self.me(from),
            },
            _ => Kind::Info(body.to_string()),
        };
        if self.history_left > 0 {
            self.history_left -= 1;
            let at = self.history_at;
            self.insert(at, kind, clock, true);
            self.history_at = at.map(|i| i + 1);
        } else {
            self.insert(None, kind, clock, true);
        }
    }

    /// The person pressed Enter on `input`; returns the lines to send
    /// after echoing what the server will not echo back to us. End-to-end
    /// commands go to [`Secure`] and are never sent as typed.
    pub fn on_input(&mut self, input: &str) -> Vec<String> {
        if input.is_empty() {
            return Vec::new();
        }
        let e2e_name = self.e2e_name();
        if let Some(taken) = self.secure.on_input(&e2e_name, input) {
            return self.taken(taken);
        }
        // A `:nick` on its way (from --nick) is the name the server will
        // have when it reads this line.
        let me = (self.want_nick.clone())
            .or_else(|| self.nick.clone())
            .unwrap_or_else(|| "me".to_string());
        let shown = for_screen(input);
        if !input.starts_with(':') || input.starts_with("::") {
            // `::text` is chat starting with one `:`.
            let text = match shown.strip_prefix("::") {
                Some(rest) => format!(":{rest}"),
                None => shown,
            };
            self.push(Kind::Chat {
                nick: me,
                text,
                own: true,
            });
            return vec![input.to_string()];
        }
        let (word, args) = shown.split_once(' ').unwrap_or((&shown, ""));
        match word.to_ascii_lowercase().as_str() {
            ":me" if !args.is_empty() => self.push(Kind::Action {
                nick: me,
                text: args.to_string(),
            }),
            ":pm" | ":msg" => {
                if let Some((to, text)) = args.split_once(' ') {
                    self.push(Kind::PmOut {
                        to: to.to_string(),
                        text: text.to_string(),
                    });
                }
            }
            ":auth" => self.password = Some(input[word.len()..].trim_start().to_string()),
            ":login" | ":register" => self.remember = true,
            // The server lists its commands; the keys are the client's.
            ":help" => {
                for keys in KEYS_HELP {
                    self.notice(*keys);
                }
            }
            _ => {}
        }
        vec![input.to_string()]
    }

    /// We sent a keepalive ping: hide its pong.
    pub fn keepalive_sent(&mut self) {
        self.pending.pongs += 1;
    }

    /// We asked for `:rooms` on our own (the periodic refresh).
    pub fn rooms_asked(&mut self) {
        self.pending.rooms += 1;
    }

    /// The error line the server sent last, if its last line was one
    /// (`! server full`): the reason to give on leaving.
    pub fn last_error(&self) -> Option<&str> {
        match self.messages.back().map(|m| &m.kind) {
            Some(Kind::Error(text)) => Some(text),
            _ => None,
        }
    }

    /// The connection ended: nothing we asked for will be answered.
    pub fn disconnected(&mut self) {
        self.pending = Pending::default();
        self.welcomed = false;
        self.auth_sent = false;
        self.history_left = 0;
        self.history_at = None;
        self.users.clear();
        self.rooms.clear();
        self.joined.clear();
    }
}

/// Now, in unix seconds.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `guestN`: a nick the server assigned, not one to ask for again.
fn is_guest(nick: &str) -> bool {
    nick.strip_prefix("guest")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Sorts as the server does: by the lower-cased name (an operator's `@`
/// aside).
fn sort_names(names: &mut [String]) {
    names.sort_by_key(|n| n.trim_start_matches('@').to_lowercase());
}

/// Whether an entry of the users list (`alice`, or `@alice` for an
/// operator) is `nick`, in any case.
fn same_user(entry: &str, nick: &str) -> bool {
    entry.trim_start_matches('@').eq_ignore_ascii_case(nick)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An end-to-end side whose folder is never made (opened on first use).
    fn no_e2e() -> Secure {
        Secure::new(std::env::temp_dir().join("loopchat-no-e2e"), "test".into())
    }

    fn state() -> State {
        let mut s = State::new("test".into(), Some("alice".into()), None, no_e2e());
        let send = s.on_line(b"* welcome guest1");
        assert_eq!(send, [":nick alice"]);
        s.on_line(b"* guest1 joined #lobby");
        s.on_line(b"* guest1 is now known as alice");
        s
    }

    fn kinds(s: &State) -> Vec<Kind> {
        s.messages.iter().map(|m| m.kind.clone()).collect()
    }

    #[test]
    fn other_rooms_count_unread_lines_and_mentions_ring_once_each() {
        let mut s = state();
        s.on_line(b"* alice joined #rust");
        let joined = |s: &State| -> Vec<(String, u32, bool)> {
            s.joined
                .iter()
                .map(|j| (j.room.clone(), j.unread, j.mention))
                .collect()
        };
        assert_eq!(
            joined(&s),
            [("#lobby".into(), 0, false), ("#rust".into(), 0, false)]
        );
        s.bells = 0;
        s.on_line(b"[#lobby] bob: hi all");
        s.on_line(b"[#lobby] bob: alice, lunch?");
        s.on_line(b"[#lobby] alice: my own line");
        assert_eq!(
            joined(&s),
            [("#lobby".into(), 2, true), ("#rust".into(), 0, false)]
        );
        assert_eq!(s.bells, 1, "one bell for the one mention");
        s.on_line(b"carol: ALICE here in rust");
        assert_eq!(s.bells, 2);
        s.on_line(b"* current room #lobby");
        assert_eq!(
            joined(&s),
            [("#lobby".into(), 0, false), ("#rust".into(), 0, false)]
        );
        s.on_line(b"[#rust] * alice left #rust");
        assert_eq!(joined(&s), [("#lobby".into(), 0, false)]);
    }

    #[test]
    fn help_lists_the_keys_and_asks_the_server_for_its_commands() {
        let mut s = state();
        assert_eq!(s.on_input(":help"), [":help"]);
        let notes: Vec<Kind> = kinds(&s)
            .into_iter()
            .filter(|k| matches!(k, Kind::Notice(t) if t.starts_with("keys: ")))
            .collect();
        assert_eq!(notes.len(), 3);
    }

    #[test]
    fn history_asked_again_after_a_reconnect_is_not_shown_twice() {
        let mut s = state();
        s.on_line(b"bob: live before the drop");
        let now = unix_now();
        s.disconnected();
        s.on_line(b"* welcome guest1");
        s.on_line(b"* guest1 joined #lobby");
        s.on_line(b"* history #lobby: 3 lines");
        let at = loopchat_protocol::time::format_utc;
        s.on_line(format!("[history {}] bob: live before the drop", at(now)).as_bytes());
        s.on_line(format!("[history {}] bob: older", at(now - 100)).as_bytes());
        s.on_line(format!("[history {}] bob: older", at(now - 100)).as_bytes());
        let chats: Vec<String> = kinds(&s)
            .into_iter()
            .filter_map(|k| match k {
                Kind::Chat { text, .. } => Some(text),
                _ => None,
            })
            .collect();
        assert_eq!(chats, ["live before the drop", "older"]);
    }

    #[test]
    fn joining_asks_for_users_history_and_rooms_and_hides_the_answers() {
        let mut s = State::new("test".into(), None, None, no_e2e());
        s.on_line(b"* welcome guest1");
        let send = s.on_line(b"* guest1 joined #lobby");
        assert_eq!(send, [":users", ":history 30", ":rooms"]);
        s.on_line(b"bob: live line");
        s.on_line(b"* users in #lobby: bob guest1");
        s.on_line(b"* history #lobby: 1 line");
        s.on_line(b"[history 2026-11-22T10:15:03Z] bob: old line");
        s.on_line(b"* rooms: #lobby (2), #rust (1)");
        assert_eq!(s.users, ["bob", "guest1"]);
        assert_eq!(s.rooms[1], ("#rust".to_string(), "1".to_string()));
        let texts: Vec<String> = s
            .messages
            .iter()
            .map(|m| match &m.kind {
                Kind::Chat { text, .. } => text.clone(),
                Kind::Info(t) | Kind::Presence(t) => t.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        // History goes above the live line that beat it.
        assert_eq!(
            texts,
            [
                "* welcome guest1",
                "* guest1 joined #lobby",
                "* history #lobby: 1 line",
                "old line",
                "live line"
            ]
        );
    }

    /// Protocol 1.2: rooms are kept; the client follows its current room
    /// and shows the other rooms' lines with their prefix.
    #[test]
    fn the_current_room_follows_the_server_and_other_rooms_come_prefixed() {
        let mut s = state();
        s.on_line(b"* alice joined #rust");
        s.on_line(b"* users in #rust: @alice bob");
        assert_eq!(s.users, ["@alice", "bob"]);
        s.on_line(b"* bob waves");
        s.on_line(b"[#lobby] carol: hi");
        s.on_line(b"[#lobby] * carol waves");
        let send = s.on_line(b"* current room #lobby");
        assert_eq!(send, [":users"]);
        assert_eq!(s.room.as_deref(), Some("#lobby"));
        s.on_line(b"* users in #lobby: alice carol");
        assert_eq!(s.users, ["alice", "carol"]);
        s.on_line(b"[#rust] * alice left #rust");
        s.on_line(b"* alice left #lobby");
        s.on_line(b"* not in any room (try :join ROOM)");
        assert_eq!(s.room, None);
        assert!(s.users.is_empty());
        let all = kinds(&s);
        assert_eq!(
            all[all.len() - 7..],
            [
                Kind::Action {
                    nick: "bob".into(),
                    text: "waves".into()
                },
                Kind::Info("[#lobby] carol: hi".into()),
                Kind::Info("[#lobby] * carol waves".into()),
                Kind::Info("* current room #lobby".into()),
                Kind::Info("[#rust] * alice left #rust".into()),
                Kind::Presence("* alice left #lobby".into()),
                Kind::Info("* not in any room (try :join ROOM)".into()),
            ]
        );
    }

    #[test]
    fn operators_are_matched_and_renamed_with_their_mark() {
        let mut s = state();
        s.on_line(b"* alice joined #rust");
        s.on_line(b"* users in #rust: alice @Bob");
        s.on_line(b"* Bob is now known as bobby");
        assert_eq!(s.users, ["alice", "@bobby"]);
        s.on_line(b"* bobby was kicked from #rust by alice");
        assert_eq!(s.users, ["alice"]);
    }

    #[test]
    fn a_server_without_history_is_asked_once_and_quietly() {
        let mut s = state();
        let before = s.messages.len();
        s.on_line(b"! unknown command :history (try :help)");
        assert_eq!(s.messages.len(), before);
        let send = s.on_line(b"* alice joined #rust");
        assert_eq!(send, [":users", ":rooms"]);
        // One typed by the person is shown.
        s.on_line(b"! unknown command :history (try :help)");
        assert_eq!(s.messages.len(), before + 2);
    }

    #[test]
    fn users_follow_joins_leaves_and_renames() {
        let mut s = state();
        s.on_line(b"* users in #lobby: alice bob");
        s.on_line(b"* carol joined #lobby");
        assert_eq!(s.users, ["alice", "bob", "carol"]);
        s.on_line(b"* Bob is now known as Zed");
        assert_eq!(s.users, ["alice", "carol", "Zed"]);
        s.on_line(b"* carol left #lobby (gone)");
        assert_eq!(s.users, ["alice", "Zed"]);
        s.on_line(b"* alice is now known as al");
        assert_eq!(s.nick.as_deref(), Some("al"));
        assert_eq!(s.users, ["al", "Zed"]);
    }

    #[test]
    fn actions_are_told_from_server_information() {
        let mut s = state();
        s.on_line(b"* users in #lobby: alice bob");
        s.on_line(b"* bob waves");
        s.on_line(b"* server shutting down");
        let k = kinds(&s);
        assert_eq!(
            k[k.len() - 2],
            Kind::Action {
                nick: "bob".into(),
                text: "waves".into()
            }
        );
        assert_eq!(k[k.len() - 1], Kind::Info("* server shutting down".into()));
    }

    #[test]
    fn own_lines_are_echoed_and_controls_never_stored() {
        let mut s = state();
        assert_eq!(s.on_input("hi"), ["hi"]);
        assert_eq!(s.on_input("::) smile"), ["::) smile"]);
        s.on_input(":pm bob psst");
        s.on_input(":ME waves");
        s.on_line(b"mallory: \x1b[2Jboo");
        let k = kinds(&s);
        let n = k.len();
        assert_eq!(
            k[n - 5..],
            [
                Kind::Chat {
                    nick: "alice".into(),
                    text: "hi".into(),
                    own: true
                },
                Kind::Chat {
                    nick: "alice".into(),
                    text: ":) smile".into(),
                    own: true
                },
                Kind::PmOut {
                    to: "bob".into(),
                    text: "psst".into()
                },
                Kind::Action {
                    nick: "alice".into(),
                    text: "waves".into()
                },
                Kind::Chat {
                    nick: "mallory".into(),
                    text: "\\x1b[2Jboo".into(),
                    own: false
                },
            ]
        );
    }

    #[test]
    fn own_lines_carry_the_nick_being_taken_until_it_is_refused() {
        let mut s = State::new("test".into(), Some("alice".into()), None, no_e2e());
        s.on_line(b"* welcome guest1");
        s.on_input("early");
        s.on_line(b"! nick alice is taken");
        s.on_input("later");
        let k = kinds(&s);
        let nicks: Vec<&str> = k
            .iter()
            .filter_map(|k| match k {
                Kind::Chat { nick, .. } => Some(nick.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(nicks, ["alice", "guest1"]);
        s.disconnected();
        // The guest nick is not asked for again.
        assert!(s.on_line(b"* welcome guest7").is_empty());
    }

    #[test]
    fn the_password_is_sent_when_asked_and_dropped_when_wrong() {
        let mut s = State::new("test".into(), None, Some("pw".into()), no_e2e());
        assert_eq!(s.on_line(b"* password required"), [":auth pw"]);
        s.on_line(b"! wrong password");
        s.disconnected();
        // A reconnect does not try it again: the person types :auth.
        assert!(s.on_line(b"* password required").is_empty());
        s.on_input(":auth better");
        s.disconnected();
        assert_eq!(s.on_line(b"* password required"), [":auth better"]);
    }

    #[test]
    fn lines_naming_us_are_mentions() {
        let mut s = state();
        s.on_line(b"bob: hi Alice!");
        s.on_line(b"bob: malice aforethought");
        s.on_input("alice here");
        let m: Vec<bool> = s.messages.iter().rev().take(3).map(|m| m.mention).collect();
        assert_eq!(m, [false, false, true]);
    }

    #[test]
    fn keepalive_pongs_are_hidden_but_typed_pings_are_not() {
        let mut s = state();
        let n = s.messages.len();
        s.keepalive_sent();
        s.on_line(b"* pong keepalive");
        assert_eq!(s.messages.len(), n);
        s.on_line(b"* pong keepalive");
        assert_eq!(s.messages.len(), n + 1);
    }

    #[test]
    fn reconnecting_takes_the_nick_and_room_again() {
        let mut s = state();
        s.on_line(b"* alice joined #rust");
        s.disconnected();
        assert_eq!(
            s.on_line(b"* welcome guest9"),
            [":nick alice", ":join #rust"]
        );
    }
}
