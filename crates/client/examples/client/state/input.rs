//! The person's lines: chat to the buffer on screen (a room, or `:pm` in a
//! private conversation), shown as *sending* until the server echoes them;
//! commands labelled so their answers show in the buffer they were typed in.

use super::{Kind, Purpose, State, Status, Target, KEYS_HELP};
use crate::text::for_screen;
use loopchat_client::e2e::Lock;

/// The peer of a typed `:e2e NICK TEXT` (a peer and a text given).
fn e2e_peer(input: &str) -> Option<&str> {
    let (word, args) = input.split_once(' ')?;
    let (peer, text) = args.split_once(' ')?;
    (word.eq_ignore_ascii_case(":e2e") && !peer.is_empty() && !text.is_empty()).then_some(peer)
}

/// A command typed as in IRC and most chats, `/word ...` (a letter, then
/// letters, digits and `-`: `/me`, `/e2e-safety`), is `:word ...`;
/// `//text` is chat starting with one `/`. `None`: as typed, which is
/// anything else (`/usr/bin` is chat).
pub fn slash_command(input: &str) -> Option<String> {
    if let Some(rest) = input.strip_prefix("//") {
        return Some(format!("/{rest}"));
    }
    let rest = input.strip_prefix('/')?;
    let word = rest.split(' ').next().unwrap_or(rest);
    let command = word.starts_with(|c: char| c.is_ascii_alphabetic())
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    command.then(|| format!(":{rest}"))
}

impl State {
    /// The person pressed Enter on `input`; returns the lines to send.
    /// End-to-end commands go to [`crate::secure::Secure`] and are never
    /// sent as typed.
    pub fn on_input(&mut self, input: &str) -> Vec<String> {
        if input.is_empty() {
            return Vec::new();
        }
        let e2e_name = self.e2e_name();
        if let Some(peer) = e2e_peer(input) {
            // An end-to-end message goes in the private conversation with
            // its peer, shown (notes show where the person is).
            let at = self.buffer(&Target::Private(for_screen(peer)));
            self.switch_to(at);
        }
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
            if let Target::Private(peer) = self.shown().target.clone() {
                let typed = input.strip_prefix(':').unwrap_or(input);
                if self.secure.lock(&peer) != Lock::Plain {
                    // End to end was used with this peer: never silently
                    // in the clear.
                    return self.on_input(&format!(":e2e {peer} {typed}"));
                }
                let line = format!(":pm {peer} {typed}");
                return self.own(self.view, Kind::PmOut { to: peer, text }, line);
            }
            let at = self.chat_buffer();
            let kind = Kind::Chat {
                nick: me,
                text,
                own: true,
            };
            return self.own(at, kind, input.to_string());
        }
        let (word, args) = shown.split_once(' ').unwrap_or((&shown, ""));
        match word.to_ascii_lowercase().as_str() {
            ":me" if !args.is_empty() => {
                let at = match self.shown().target {
                    Target::Private(_) => self.chat_buffer(),
                    _ => self.view,
                };
                let kind = Kind::Action {
                    nick: me,
                    text: args.to_string(),
                    own: true,
                };
                return self.own(at, kind, input.to_string());
            }
            ":pm" | ":msg" => match args.split_once(' ') {
                Some((to, text)) if !text.is_empty() => {
                    // Talking to someone shows the conversation.
                    let at = self.buffer(&Target::Private(to.to_string()));
                    self.switch_to(at);
                    let kind = Kind::PmOut {
                        to: to.to_string(),
                        text: text.to_string(),
                    };
                    return self.own(at, kind, input.to_string());
                }
                // `:pm NICK` alone opens the conversation.
                _ if !args.trim().is_empty() && !args.trim().contains(' ') => {
                    let at = self.buffer(&Target::Private(args.trim().to_string()));
                    return self.switch_to(at);
                }
                _ => {}
            },
            // `:join` of a room we are in shows it (and makes it current
            // when it is not): from a private conversation too.
            ":join" if !args.trim().is_empty() && !args.trim().contains(' ') => {
                let name = args.trim();
                let room = if name.starts_with('#') {
                    name.to_string()
                } else {
                    format!("#{name}")
                };
                if let Some(at) = self.find(&Target::Room(room)) {
                    if self.buffers[at].joined && at != self.view {
                        return self.switch_to(at);
                    }
                }
            }
            // The screen needs tags (rooms, echoes, labels): kept on.
            ":tags" => {
                self.notice(
                    "the full-screen client keeps tags on (the line mode, --plain, has them off)",
                );
                return Vec::new();
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
        let target = self.shown().target.clone();
        self.request(Purpose::Typed { target }, input.to_string())
            .into_iter()
            .collect()
    }

    /// The buffer a chat line typed here goes to: the room on screen, else
    /// the server's current room.
    fn chat_buffer(&mut self) -> usize {
        match (&self.shown().target, self.room.clone()) {
            (Target::Room(_), _) => self.view,
            (_, Some(room)) => self.room_buffer(&room),
            (_, None) => self.view,
        }
    }

    /// Shows an own line in buffer `at` as sending and sends `line`
    /// labelled, so its echo or refusal finds it.
    fn own(&mut self, at: usize, kind: Kind, line: String) -> Vec<String> {
        let seq = self.put(at, kind, State::now_ms(), None, false);
        self.set_status(seq, Status::Sending, None, None);
        self.request(Purpose::Own { seq }, line)
            .into_iter()
            .collect()
    }
}
