//! The IRC dialect: the chat's typed lines ([`ServerLine`]) as IRC
//! messages, with CR LF. Events (room lines, renames, kicks, mode
//! changes) become messages from the user's nickmask
//! (`:alice!alice@SERVER PRIVMSG #rust :hi`); replies and errors become
//! numerics addressed to the recipient, or nothing where IRC has no such
//! line (`* welcome`, `* current room`: an IRC client registered and
//! joined its own way). A line IRC has no word for reaches the client as
//! a `NOTICE` with the line dialect's text, so nothing is lost.
//!
//! [`render`] writes an [`Event`] without looking at [`Context::nick`]
//! (except a private message's target, which goes to one recipient): the
//! server renders a fan-out's event once for every IRC recipient with the
//! same key, and must not find a recipient's nick in it.

use super::mask::nickmask;
use super::message::Message;
use super::numeric::{self, Numeric};
use super::replies::write_names;
use super::text::{write_action_messages, write_text_messages};
use crate::event::{Error, Event, Reply, ServerLine};

/// What an IRC rendering needs besides the line: the server's name (the
/// source of numerics and the host of every nickmask) and the recipient's
/// nick (the first parameter of a numeric; `*` before it has one).
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The server's name (`--server-name`).
    pub server: &'a str,
    /// The recipient's nick.
    pub nick: &'a str,
}

impl Context<'static> {
    /// The context [`crate::Dialect::render`] uses for [`crate::Dialect::Irc`]
    /// when it is not given one: the default server name and `*`.
    pub const DEFAULT: Context<'static> = Context {
        server: "loopchat",
        nick: "*",
    };
}

/// Whether `line` is written for IRC without the recipient's nick: events
/// other than a private message (whose target is the recipient). Those
/// are rendered once per fan-out; the others once per recipient.
#[inline]
pub fn is_shared(line: &ServerLine<'_>) -> bool {
    matches!(line, ServerLine::Event(event) if !matches!(event, Event::PrivateMessage { .. } | Event::E2e { .. }))
}

/// Appends `line` as IRC messages (none, one or several, each with CR LF).
pub fn render(line: &ServerLine<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) {
    match line {
        ServerLine::Event(event) => render_event(event, ctx, out),
        ServerLine::Reply(reply) => render_reply(reply, ctx, out),
        ServerLine::Error(error) => render_error(error, ctx, out),
    }
}

/// A message from `nick`'s nickmask.
fn from_user(out: &mut Vec<u8>, ctx: &Context<'_>, nick: &str, command: &str, params: &[&str]) {
    let source = nickmask(nick, ctx.server);
    Message::new(command, params)
        .from_source(&source)
        .write(out);
}

/// Like [`from_user`], the last parameter written after `:` whatever it is.
fn from_user_text(
    out: &mut Vec<u8>,
    ctx: &Context<'_>,
    nick: &str,
    command: &str,
    params: &[&str],
) {
    let source = nickmask(nick, ctx.server);
    Message::new(command, params)
        .from_source(&source)
        .with_trailing()
        .write(out);
}

fn render_event(event: &Event<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) {
    match *event {
        Event::Said {
            from,
            room: Some(room),
            text,
            ..
        } => write_text_messages(out, &nickmask(from, ctx.server), "PRIVMSG", room, text),
        Event::Acted {
            from,
            room: Some(room),
            text,
            ..
        } => write_action_messages(out, &nickmask(from, ctx.server), room, text),
        // A room line without its room cannot be addressed: not sent.
        Event::Said { room: None, .. } | Event::Acted { room: None, .. } => {}
        Event::PrivateMessage { from, text, to } => {
            let target = to.unwrap_or(ctx.nick);
            write_text_messages(out, &nickmask(from, ctx.server), "PRIVMSG", target, text)
        }
        Event::Joined { nick, room } => from_user(out, ctx, nick, "JOIN", &[room]),
        Event::Left {
            nick,
            reason,
            quit: true,
            ..
        } => from_user_text(out, ctx, nick, "QUIT", &[reason.unwrap_or("Client Quit")]),
        Event::Left {
            nick, room, reason, ..
        } => match reason {
            Some(reason) => from_user_text(out, ctx, nick, "PART", &[room, reason]),
            None => from_user(out, ctx, nick, "PART", &[room]),
        },
        Event::Renamed { old, new } => from_user(out, ctx, old, "NICK", &[new]),
        Event::ShuttingDown => {
            let text = format!("Closing link: {} (server shutting down)", ctx.server);
            Message::new("ERROR", &[&text]).with_trailing().write(out);
        }
        Event::Kicked {
            nick,
            room,
            by,
            reason,
        } => from_user_text(out, ctx, by, "KICK", &[room, nick, reason.unwrap_or(by)]),
        Event::Banned { nick, room, by } => {
            let mask = format!("{nick}!*@*");
            from_user(out, ctx, by, "MODE", &[room, "+b", &mask]);
        }
        Event::Unbanned { nick, room, by } => {
            let mask = format!("{nick}!*@*");
            from_user(out, ctx, by, "MODE", &[room, "-b", &mask]);
        }
        Event::TopicSet { room, by, text } => from_user_text(out, ctx, by, "TOPIC", &[room, text]),
        Event::TopicCleared { room, by } => from_user_text(out, ctx, by, "TOPIC", &[room, ""]),
        Event::Opped { room, by, nick } => from_user(out, ctx, by, "MODE", &[room, "+o", nick]),
        Event::Deopped { room, by, nick } => from_user(out, ctx, by, "MODE", &[room, "-o", nick]),
        Event::E2e { from, payload } => {
            let text = format!("[e2e] {payload}");
            write_text_messages(out, &nickmask(from, ctx.server), "NOTICE", ctx.nick, &text)
        }
    }
}

/// A numeric to the recipient.
fn num(
    out: &mut Vec<u8>,
    ctx: &Context<'_>,
    numeric: Numeric,
    params: &[&str],
    text: Option<&str>,
) {
    numeric::write(out, ctx.server, numeric, ctx.nick, params, text);
}

/// A `NOTICE` from the server to the recipient with the line dialect's
/// text of `line`: for the lines IRC has no word for.
fn notice(out: &mut Vec<u8>, ctx: &Context<'_>, line: &ServerLine<'_>) {
    let mut text = Vec::new();
    crate::line::render(line, &mut text);
    let text = String::from_utf8_lossy(text.strip_suffix(b"\n").unwrap_or(&text)).into_owned();
    Message::new("NOTICE", &[ctx.nick, &text])
        .from_source(ctx.server)
        .with_trailing()
        .write(out);
}

fn render_reply(reply: &Reply<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) {
    match reply {
        // IRC clients register, join and switch in their own way.
        Reply::Welcome { .. }
        | Reply::PasswordRequired
        | Reply::AlreadyKnownAs { .. }
        | Reply::CurrentRoom { .. }
        | Reply::NoRoomLeft
        | Reply::TagsOn
        | Reply::TagsOff => {}
        Reply::Users { room, nicks } => {
            write_names(out, ctx.server, ctx.nick, room, nicks.iter().copied())
        }
        Reply::Rooms { rooms } => {
            for (room, count) in rooms.iter().filter(|(_, count)| *count > 0) {
                let count = count.to_string();
                num(out, ctx, Numeric::List, &[room, &count], Some(""));
            }
            num(out, ctx, Numeric::ListEnd, &[], None);
        }
        Reply::Pong { token } => {
            let token = token.unwrap_or(ctx.server);
            Message::new("PONG", &[ctx.server, token])
                .from_source(ctx.server)
                .with_trailing()
                .write(out);
        }
        Reply::Bye => {
            let text = format!("Closing link: {} (Quit)", ctx.nick);
            Message::new("ERROR", &[&text]).with_trailing().write(out);
        }
        Reply::Whois {
            nick,
            account,
            rooms,
        } => {
            num(
                out,
                ctx,
                Numeric::WhoisUser,
                &[nick, nick, ctx.server, "*"],
                Some(nick),
            );
            if !rooms.is_empty() {
                let list = rooms.join(" ");
                num(out, ctx, Numeric::WhoisChannels, &[nick], Some(&list));
            }
            num(
                out,
                ctx,
                Numeric::WhoisServer,
                &[nick, ctx.server],
                Some("loopchat"),
            );
            if let Some(account) = account {
                // 330 RPL_WHOISACCOUNT is not in the numeric table.
                let line = Message::new("330", &[ctx.nick, nick, account, "is logged in as"])
                    .from_source(ctx.server)
                    .with_trailing();
                line.write(out);
            }
            num(out, ctx, Numeric::EndOfWhois, &[nick], None);
        }
        Reply::Topic { room, text } => num(out, ctx, Numeric::Topic, &[room], Some(text)),
        Reply::NoTopic { room } => num(out, ctx, Numeric::NoTopic, &[room], None),
        Reply::Bans { room, nicks } => {
            for nick in nicks {
                let mask = format!("{nick}!*@*");
                num(out, ctx, Numeric::BanList, &[room, &mask], None);
            }
            num(out, ctx, Numeric::EndOfBanList, &[room], None);
        }
        Reply::LoggedIn { name } => {
            let mask = nickmask(ctx.nick, ctx.server);
            let text = format!("You are now logged in as {name}");
            num(out, ctx, Numeric::LoggedIn, &[&mask, name], Some(&text));
        }
        Reply::Help(_)
        | Reply::HistoryHeader { .. }
        | Reply::HistoryLine { .. }
        | Reply::Registered { .. }
        | Reply::LoggedInElsewhere
        | Reply::Token { .. }
        | Reply::LoggedOut
        | Reply::PasswordChanged
        | Reply::KeyPublished
        | Reply::Keys { .. } => notice(out, ctx, &ServerLine::Reply(reply.clone())),
    }
}

fn render_error(error: &Error<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) {
    let channel = |bare: &str| format!("#{bare}");
    match *error {
        Error::UnknownCommand(word) => num(out, ctx, Numeric::UnknownCommand, &[word], None),
        Error::InvalidName(name) => num(out, ctx, Numeric::ErroneusNickname, &[name], None),
        Error::NickReserved(name) => num(out, ctx, Numeric::ErroneusNickname, &[name], None),
        Error::NickTaken(name) => num(out, ctx, Numeric::NicknameInUse, &[name], None),
        Error::NoSuchUser(nick) => num(out, ctx, Numeric::NoSuchNick, &[nick], None),
        Error::NotIn(bare) => num(out, ctx, Numeric::NotOnChannel, &[&channel(bare)], None),
        Error::NoSuchRoom(bare) => num(out, ctx, Numeric::NoSuchChannel, &[&channel(bare)], None),
        Error::BannedFrom(bare) => num(out, ctx, Numeric::BannedFromChan, &[&channel(bare)], None),
        Error::NotOperator { room } => num(out, ctx, Numeric::ChanOPrivsNeeded, &[room], None),
        Error::UserNotInRoom { nick, room } => {
            num(out, ctx, Numeric::UserNotInChannel, &[nick, room], None)
        }
        Error::AuthenticateFirst => num(out, ctx, Numeric::NotRegistered, &[], None),
        Error::WrongPassword | Error::TooManyAttempts | Error::LoginFailed => {
            num(out, ctx, Numeric::PasswdMismatch, &[], None)
        }
        Error::LineTooLong { .. } => num(out, ctx, Numeric::InputTooLong, &[], None),
        Error::InvalidUtf8 => Message::new(
            "FAIL",
            &["*", "INVALID_UTF8", super::message::INVALID_UTF8_TEXT],
        )
        .from_source(ctx.server)
        .with_trailing()
        .write(out),
        // Already in: IRC clients are told nothing; the server never sends
        // a JOIN for a channel the client is in.
        Error::AlreadyIn(_) | Error::NotInAnyRoom => {}
        Error::ServerFull
        | Error::ClusterUnavailable
        | Error::TooManyFromAddress
        | Error::IdleTimeout
        | Error::AuthTimeout => {
            let mut text = Vec::new();
            crate::line::render(&ServerLine::Error(error.clone()), &mut text);
            let text = String::from_utf8_lossy(&text);
            let why = text.trim_start_matches("! ").trim_end();
            let text = format!("Closing link: {} ({why})", ctx.nick);
            Message::new("ERROR", &[&text]).with_trailing().write(out);
        }
        _ => notice(out, ctx, &ServerLine::Error(error.clone())),
    }
}
