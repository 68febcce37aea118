//! A registered client's message as a typed command: what the connection
//! will map onto chat operations (`docs/irc.md`, "What wiring remains").
//! Checks only what the message itself shows (enough parameters, a
//! recipient, some text, a known command); whether a channel or nick
//! exists is the chat's business.

use super::message::{Message, Params};
use super::numeric::{self, Numeric};
use super::text::ctcp_action;
use crate::is_valid_name;

/// A command from a registered IRC client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `PRIVMSG`/`NOTICE TARGETS TEXT`: a chat line (to a channel) or a
    /// private message (to a nick), for each target of the comma list.
    Message {
        /// The comma-separated targets (iterate with [`list`]).
        targets: &'a str,
        /// The text as sent.
        text: &'a str,
        /// `NOTICE` (never answered with an error, as the documents ask).
        notice: bool,
    },
    /// `PRIVMSG TARGETS :\x01ACTION TEXT\x01`: a `:me`.
    Action {
        /// The comma-separated targets.
        targets: &'a str,
        /// The action.
        text: &'a str,
    },
    /// A CTCP request other than `ACTION` (`VERSION`, `PING`…): ignored.
    Ctcp,
    /// `JOIN CHANNELS [KEYS]`; `JOIN 0` is [`Command::PartAll`].
    Join {
        /// The comma-separated channels.
        channels: &'a str,
    },
    /// `JOIN 0`: leave every channel.
    PartAll,
    /// `PART CHANNELS [REASON]`.
    Part {
        /// The comma-separated channels.
        channels: &'a str,
        /// Why.
        reason: Option<&'a str>,
    },
    /// `NICK NICK` after registration.
    Nick(&'a str),
    /// `TOPIC CHANNEL [TOPIC]`: query, or set (empty clears).
    Topic {
        /// The channel.
        channel: &'a str,
        /// The new topic, if one is set.
        topic: Option<&'a str>,
    },
    /// `NAMES [CHANNELS]`.
    Names(Option<&'a str>),
    /// `LIST [CHANNELS]`.
    List(Option<&'a str>),
    /// `WHO [MASK]`.
    Who(Option<&'a str>),
    /// `WHOIS [SERVER] NICK`.
    Whois(&'a str),
    /// `MODE TARGET [MODESTRING [ARGUMENTS…]]`.
    Mode {
        /// A channel or a nick.
        target: &'a str,
        /// The mode string and its arguments, if any (a query without).
        changes: Params<'a>,
    },
    /// `KICK CHANNEL NICK [REASON]`.
    Kick {
        /// The channel.
        channel: &'a str,
        /// Who.
        nick: &'a str,
        /// Why.
        reason: Option<&'a str>,
    },
    /// `AWAY [TEXT]`: away with the text, back without (or with none).
    Away(Option<&'a str>),
    /// `ISON NICKS…`.
    Ison(Params<'a>),
    /// `USERHOST NICKS…`.
    Userhost(Params<'a>),
    /// `OPER NAME PASSWORD`.
    Oper {
        /// The account.
        name: &'a str,
        /// Its password.
        password: &'a str,
    },
    /// `MOTD`.
    Motd,
    /// `LUSERS`.
    Lusers,
    /// Refused with a numeric (the command's own shape is wrong).
    Refused(Refusal<'a>),
}

/// Why a command is refused before it reaches the chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal<'a> {
    /// `461 <command> :Not enough parameters`.
    NeedMoreParams(&'a str),
    /// `411 :No recipient given (<command>)`.
    NoRecipient(&'a str),
    /// `412 :No text to send`.
    NoTextToSend,
    /// `421 <command> :Unknown command`.
    UnknownCommand(&'a str),
    /// Nothing to send: an error a `NOTICE` must not cause.
    Silent,
}

impl Refusal<'_> {
    /// Appends the numeric, from `server` to `client`.
    pub fn write(&self, server: &str, client: &str, out: &mut Vec<u8>) {
        match *self {
            Refusal::NeedMoreParams(command) => numeric::write(
                out,
                server,
                Numeric::NeedMoreParams,
                client,
                &[command],
                None,
            ),
            Refusal::NoRecipient(command) => {
                let text = numeric::no_recipient_text(command);
                numeric::write(out, server, Numeric::NoRecipient, client, &[], Some(&text))
            }
            Refusal::NoTextToSend => {
                numeric::write(out, server, Numeric::NoTextToSend, client, &[], None)
            }
            Refusal::UnknownCommand(command) => numeric::write(
                out,
                server,
                Numeric::UnknownCommand,
                client,
                &[command],
                None,
            ),
            Refusal::Silent => {}
        }
    }
}

/// The items of a comma list (`#a,#b`), empty ones skipped.
pub fn list(items: &str) -> impl Iterator<Item = &str> {
    items.split(',').filter(|item| !item.is_empty())
}

/// The room name of a channel (`#rust` is `rust`), when it is one the chat
/// can have: `#` and a valid name. Anything else is `403`.
pub fn room_name(channel: &str) -> Option<&str> {
    channel.strip_prefix('#').filter(|name| is_valid_name(name))
}

/// `message` (from a registered client) as a [`Command`].
pub fn parse<'a>(message: &Message<'a>) -> Command<'a> {
    let name = message.command;
    let is = |command: &str| name.eq_ignore_ascii_case(command);
    let p = |i: usize| message.param(i);
    let need = Command::Refused(Refusal::NeedMoreParams(name));
    if is("PRIVMSG") || is("NOTICE") {
        let notice = is("NOTICE");
        let refuse = |refusal| Command::Refused(if notice { Refusal::Silent } else { refusal });
        let Some(targets) = p(0).filter(|t| !t.is_empty()) else {
            return refuse(Refusal::NoRecipient(name));
        };
        let Some(text) = p(1).filter(|t| !t.is_empty()) else {
            return refuse(Refusal::NoTextToSend);
        };
        if let Some(action) = ctcp_action(text) {
            return Command::Action {
                targets,
                text: action,
            };
        }
        if text.starts_with('\x01') {
            return Command::Ctcp;
        }
        return Command::Message {
            targets,
            text,
            notice,
        };
    }
    if is("JOIN") {
        return match p(0) {
            Some("0") => Command::PartAll,
            Some(channels) if !channels.is_empty() => Command::Join { channels },
            _ => need,
        };
    }
    if is("PART") {
        return match p(0) {
            Some(channels) if !channels.is_empty() => Command::Part {
                channels,
                reason: p(1).filter(|r| !r.is_empty()),
            },
            _ => need,
        };
    }
    if is("NICK") {
        return match p(0) {
            Some(nick) if !nick.is_empty() => Command::Nick(nick),
            _ => need,
        };
    }
    if is("TOPIC") {
        return match p(0) {
            Some(channel) => Command::Topic {
                channel,
                topic: p(1),
            },
            None => need,
        };
    }
    if is("NAMES") {
        return Command::Names(p(0));
    }
    if is("LIST") {
        return Command::List(p(0));
    }
    if is("WHO") {
        return Command::Who(p(0));
    }
    if is("WHOIS") {
        // `WHOIS SERVER NICK` names the nick last.
        let last = message.params.as_slice().last().copied();
        return match last.filter(|nick| !nick.is_empty()) {
            Some(nick) => Command::Whois(nick),
            None => Command::Refused(Refusal::NeedMoreParams(name)),
        };
    }
    if is("MODE") {
        let params = message.params.as_slice();
        return match params.split_first() {
            Some((target, changes)) => Command::Mode {
                target,
                changes: Params::new(changes).unwrap_or_default(),
            },
            None => need,
        };
    }
    if is("KICK") {
        return match (p(0), p(1)) {
            (Some(channel), Some(nick)) => Command::Kick {
                channel,
                nick,
                reason: p(2).filter(|r| !r.is_empty()),
            },
            _ => need,
        };
    }
    if is("AWAY") {
        return Command::Away(p(0).filter(|text| !text.is_empty()));
    }
    if is("ISON") || is("USERHOST") {
        if message.params.as_slice().is_empty() {
            return need;
        }
        return if is("ISON") {
            Command::Ison(message.params)
        } else {
            Command::Userhost(message.params)
        };
    }
    if is("OPER") {
        return match (p(0), p(1)) {
            (Some(name), Some(password)) => Command::Oper { name, password },
            _ => need,
        };
    }
    if is("MOTD") {
        return Command::Motd;
    }
    if is("LUSERS") {
        return Command::Lusers;
    }
    Command::Refused(Refusal::UnknownCommand(name))
}
