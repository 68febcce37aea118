//! Connection registration (Modern IRC documents, "Connection
//! Registration"; IRCv3 capability negotiation, version 302) as a state
//! machine with no I/O: each message goes in, one typed [`Outcome`] comes
//! out, and the caller (the connection) writes it ([`Outcome::write`]) and
//! acts on it (closing after [`Outcome::BadPassword`] or
//! [`Outcome::Quit`], claiming the nick and sending the welcome burst
//! after [`Outcome::Registered`]).
//!
//! The order real clients use: `CAP LS 302`, `NICK`, `USER`, `CAP REQ`,
//! `CAP END` (irssi and WeeChat), with `PASS` first when the server has a
//! password. `CAP LS` suspends registration until `CAP END`; without it,
//! registration completes as soon as `NICK` and `USER` are both in.
//! Before that, only `CAP`, `PASS`, `NICK`, `USER`, `PING`, `PONG` and
//! `QUIT` are answered; anything else gets `451`.

use super::caps::{Cap, CapSet};
use super::message::Message;
use super::numeric::{self, Numeric};
use crate::{is_reserved_nick, is_valid_name, password_matches};

/// What the server's settings and the chat say to registration: its
/// password, the capabilities it offers, and whether a nick is taken.
pub struct Rules<'r> {
    /// The server password (`PASS`), if there is one.
    pub password: Option<&'r str>,
    /// The capabilities offered in `CAP LS` (and accepted in `CAP REQ`).
    pub offered: CapSet,
    /// Whether a nick is in use (by anyone, any protocol).
    pub nick_taken: &'r dyn Fn(&str) -> bool,
}

/// The registration state of one IRC connection.
#[derive(Clone, Debug, Default)]
pub struct Registration {
    password: Option<String>,
    nick: Option<String>,
    user: Option<(String, String)>,
    negotiating: bool,
    cap_version: u16,
    caps: CapSet,
    registered: bool,
}

/// What one message means for registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Taken in; nothing to send (`PASS`, `NICK` or `USER` before the
    /// others, `PONG`, `CAP END` before `NICK`/`USER`).
    Continue,
    /// `CAP LS [302]`: send the offered capabilities, with their values
    /// when `values` (version 302).
    CapLs {
        /// Whether the client asked for version 302 or later.
        values: bool,
    },
    /// `CAP LIST`: send the enabled capabilities (these).
    CapList(CapSet),
    /// `CAP REQ`: every requested change was made; acknowledge the list
    /// as the client sent it.
    CapAck(&'a str),
    /// `CAP REQ`: a requested capability is not offered (or the list is
    /// empty); nothing changed.
    CapNak(&'a str),
    /// A numeric error; registration goes on. `param` is the parameter
    /// before the text (the command, the nick, the subcommand), if the
    /// numeric has one.
    Error {
        /// Which one.
        numeric: Numeric,
        /// Its parameter after the client's nick.
        param: Option<&'a str>,
    },
    /// `PING TOKEN`: answer `PONG SERVER TOKEN`.
    Ping(&'a str),
    /// `QUIT [REASON]`: send `ERROR` and close.
    Quit(Option<&'a str>),
    /// The password is wrong or missing: send `464`, then `ERROR`, and
    /// close.
    BadPassword,
    /// Registration is complete: claim [`Registration::nick`] and send
    /// the welcome burst (`001`–`005`, LUSERS, MOTD). If the nick was taken
    /// meanwhile, call [`Registration::nick_lost`] and send `433` instead.
    Registered,
    /// The client is registered and this is not registration's business:
    /// a chat command for the connection to run.
    Command,
}

impl Registration {
    /// A connection that has sent nothing yet.
    pub fn new() -> Self {
        Registration::default()
    }

    /// Whether registration has completed.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// The nick the client has asked for (before registration) or has.
    pub fn nick(&self) -> Option<&str> {
        self.nick.as_deref()
    }

    /// The capabilities the client has enabled.
    pub fn caps(&self) -> CapSet {
        self.caps
    }

    /// Whether the client negotiated with `CAP LS 302` or later (so
    /// `cap-notify` is implied and `CAP LS` shows values).
    pub fn cap_302(&self) -> bool {
        self.cap_version >= 302
    }

    /// `USER`'s username and realname, once given.
    pub fn user(&self) -> Option<(&str, &str)> {
        self.user
            .as_ref()
            .map(|(user, realname)| (user.as_str(), realname.as_str()))
    }

    /// The nick could not be claimed after [`Outcome::Registered`] (someone
    /// took it meanwhile): registration waits for another `NICK`.
    pub fn nick_lost(&mut self) {
        self.nick = None;
        self.registered = false;
    }

    /// Takes one message and says what it means.
    pub fn handle<'a>(&mut self, message: &Message<'a>, rules: &Rules<'_>) -> Outcome<'a> {
        let command = message.command;
        let is = |name: &str| command.eq_ignore_ascii_case(name);
        if is("CAP") {
            return self.cap(message, rules);
        }
        if is("PING") {
            return match message.param(0) {
                Some(token) if !token.is_empty() => Outcome::Ping(token),
                _ => need_more_params(command),
            };
        }
        if is("PONG") {
            return Outcome::Continue;
        }
        if is("QUIT") {
            return Outcome::Quit(message.param(0));
        }
        if self.registered {
            if is("PASS") || is("USER") {
                return error(Numeric::AlreadyRegistered, None);
            }
            return Outcome::Command;
        }
        if is("PASS") {
            let Some(password) = message.param(0).filter(|p| !p.is_empty()) else {
                return need_more_params(command);
            };
            self.password = Some(password.to_owned());
            return Outcome::Continue;
        }
        if is("NICK") {
            let Some(nick) = message.param(0).filter(|n| !n.is_empty()) else {
                return error(Numeric::NoNicknameGiven, None);
            };
            if !is_valid_name(nick) || is_reserved_nick(nick) {
                return error(Numeric::ErroneusNickname, message.param(0));
            }
            if (rules.nick_taken)(nick) {
                return error(Numeric::NicknameInUse, message.param(0));
            }
            self.nick = Some(nick.to_owned());
            return self.try_complete(rules);
        }
        if is("USER") {
            let params = message.params.as_slice();
            if params.len() < 4 || params[0].is_empty() {
                return need_more_params(command);
            }
            self.user = Some((params[0].to_owned(), params[3].to_owned()));
            return self.try_complete(rules);
        }
        error(Numeric::NotRegistered, None)
    }

    fn cap<'a>(&mut self, message: &Message<'a>, rules: &Rules<'_>) -> Outcome<'a> {
        let Some(sub) = message.param(0) else {
            return need_more_params(message.command);
        };
        if sub.eq_ignore_ascii_case("LS") {
            let version = message
                .param(1)
                .and_then(|v| v.parse::<u16>().ok())
                .unwrap_or(0);
            self.cap_version = self.cap_version.max(version);
            if self.cap_302() {
                self.caps.insert(Cap::CapNotify);
            }
            if !self.registered {
                self.negotiating = true;
            }
            return Outcome::CapLs {
                values: self.cap_302(),
            };
        }
        if sub.eq_ignore_ascii_case("LIST") {
            return Outcome::CapList(self.caps);
        }
        if sub.eq_ignore_ascii_case("REQ") {
            if !self.registered {
                self.negotiating = true;
            }
            let Some(list) = message.param(1) else {
                return need_more_params(message.command);
            };
            return match CapSet::apply_request(self.caps, list, rules.offered) {
                Some(caps) => {
                    self.caps = caps;
                    Outcome::CapAck(list)
                }
                None => Outcome::CapNak(list),
            };
        }
        if sub.eq_ignore_ascii_case("END") {
            if self.registered || !self.negotiating {
                return Outcome::Continue;
            }
            self.negotiating = false;
            return self.try_complete(rules);
        }
        error(Numeric::InvalidCapCmd, Some(sub))
    }

    /// Completes registration when `NICK` and `USER` are in and no
    /// capability negotiation is under way.
    fn try_complete<'a>(&mut self, rules: &Rules<'_>) -> Outcome<'a> {
        if self.negotiating || self.registered {
            return Outcome::Continue;
        }
        if self.nick.is_none() || self.user.is_none() {
            return Outcome::Continue;
        }
        if let Some(secret) = rules.password {
            let attempt = self.password.as_deref().unwrap_or("");
            if !password_matches(attempt, secret) {
                return Outcome::BadPassword;
            }
        }
        self.registered = true;
        Outcome::Registered
    }
}

fn error(numeric: Numeric, param: Option<&str>) -> Outcome<'_> {
    Outcome::Error { numeric, param }
}

fn need_more_params(command: &str) -> Outcome<'_> {
    error(Numeric::NeedMoreParams, Some(command))
}

impl Outcome<'_> {
    /// Appends what the server sends for this outcome to `client` (its
    /// nick, `*` before it has one), from `server`: the `CAP` replies, the
    /// error numerics, `PONG`, and for [`Outcome::BadPassword`] `464` and
    /// `ERROR`, for [`Outcome::Quit`] `ERROR`. Nothing for
    /// [`Outcome::Continue`], [`Outcome::Command`] and
    /// [`Outcome::Registered`] (the welcome burst is
    /// [`super::burst::write_welcome`]).
    pub fn write(&self, server: &str, client: &str, offered: CapSet, out: &mut Vec<u8>) {
        let cap = |sub: &str, list: &str, out: &mut Vec<u8>| {
            Message::new("CAP", &[client, sub, list])
                .from_source(server)
                .with_trailing()
                .write(out)
        };
        match self {
            Outcome::Continue | Outcome::Command | Outcome::Registered => {}
            Outcome::CapLs { values } => cap("LS", &offered.to_list(*values), out),
            Outcome::CapList(caps) => cap("LIST", &caps.to_list(false), out),
            Outcome::CapAck(list) => cap("ACK", list, out),
            Outcome::CapNak(list) => cap("NAK", list, out),
            Outcome::Error { numeric, param } => {
                let params: &[&str] = match param {
                    Some(param) => std::slice::from_ref(param),
                    None => &[],
                };
                numeric::write(out, server, *numeric, client, params, None);
            }
            Outcome::Ping(token) => Message::new("PONG", &[server, token])
                .from_source(server)
                .with_trailing()
                .write(out),
            Outcome::Quit(reason) => {
                let text = format!("Closing link: ({})", reason.unwrap_or("Client Quit"));
                Message::new("ERROR", &[&text]).with_trailing().write(out);
            }
            Outcome::BadPassword => {
                numeric::write(out, server, Numeric::PasswdMismatch, client, &[], None);
                Message::new("ERROR", &["Closing link: (Password incorrect)"])
                    .with_trailing()
                    .write(out);
            }
        }
    }
}
