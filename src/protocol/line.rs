//! The line dialect (`docs/protocol.md`): [`render`] writes a
//! [`ServerLine`] as the line every client sees today, and [`recognise`]
//! reads such a line back. The two mirror each other, and the unit tests
//! hold them to it line by line; clients (the example client, the load
//! generator, the tests) use [`recognise`] instead of parsing prose each
//! in their own way.
//!
//! The renderer appends with `extend_from_slice` rather than `format!`: a
//! fan-out renders its line once, but every chat line goes through here.

use super::event::{Error, Event, HelpRow, Missing, Reply, ServerLine};
use super::time::{parse_utc, write_utc};
use super::{is_reserved_nick, is_valid_name};

/// Appends `line` as the line dialect writes it, ending in `\n`.
pub fn render(line: &ServerLine<'_>, out: &mut Vec<u8>) {
    match line {
        ServerLine::Event(event) => render_event(event, out),
        ServerLine::Reply(reply) => render_reply(reply, out),
        ServerLine::Error(error) => {
            out.extend_from_slice(b"! ");
            render_error(error, out);
        }
    }
    out.push(b'\n');
}

fn render_event(event: &Event<'_>, out: &mut Vec<u8>) {
    match event {
        Event::Said { from, text, .. } => put(out, &[from, ": ", text]),
        Event::Acted { from, text, .. } => put(out, &["* ", from, " ", text]),
        Event::PrivateMessage { from, text } => put(out, &["[pm] ", from, ": ", text]),
        Event::Joined { nick, room } => put(out, &["* ", nick, " joined ", room]),
        Event::Left { nick, room, reason } => {
            put(out, &["* ", nick, " left ", room]);
            if let Some(reason) = reason {
                put(out, &[" (", reason, ")"]);
            }
        }
        Event::Renamed { old, new } => put(out, &["* ", old, " is now known as ", new]),
        Event::ShuttingDown => put(out, &["* server shutting down"]),
    }
}

fn render_reply(reply: &Reply<'_>, out: &mut Vec<u8>) {
    match reply {
        Reply::Welcome { nick } => put(out, &["* welcome ", nick]),
        Reply::PasswordRequired => put(out, &["* password required"]),
        Reply::Help(row) => put(out, &[help_text(*row)]),
        Reply::Users { room, nicks } => {
            put(out, &["* users in ", room, ": "]);
            for (i, nick) in nicks.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(nick.as_bytes());
            }
        }
        Reply::Rooms { rooms } => {
            out.extend_from_slice(b"* rooms: ");
            for (i, (name, count)) in rooms.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b" (");
                push_decimal(out, *count as u64);
                out.push(b')');
            }
        }
        Reply::Pong { token: None } => put(out, &["* pong"]),
        Reply::Pong { token: Some(token) } => put(out, &["* pong ", token]),
        Reply::Bye => put(out, &["* bye"]),
        Reply::AlreadyKnownAs { nick } => put(out, &["* you are already known as ", nick]),
        Reply::HistoryHeader { room, count } => {
            put(out, &["* history ", room, ": "]);
            push_decimal(out, *count as u64);
            out.extend_from_slice(lines(*count).as_bytes());
        }
        Reply::HistoryLine { time, line } => {
            out.extend_from_slice(b"[history ");
            write_utc(*time, out);
            out.extend_from_slice(b"] ");
            out.extend_from_slice(line.as_bytes());
        }
    }
}

fn render_error(error: &Error<'_>, out: &mut Vec<u8>) {
    match error {
        Error::Usage(usage) => put(out, &["usage: ", usage]),
        Error::UnknownCommand(word) => put(out, &["unknown command ", word, " (try :help)"]),
        Error::InvalidName(name) => put(out, &["invalid name ", name]),
        Error::NickReserved(nick) => put(out, &["nick ", nick, " is reserved"]),
        Error::NickTaken(nick) => put(out, &["nick ", nick, " is taken"]),
        Error::NoSuchUser(nick) => put(out, &["no such user ", nick]),
        Error::AlreadyIn(bare) => put(out, &["already in #", bare]),
        Error::AuthenticateFirst => put(out, &[AUTHENTICATE_FIRST]),
        Error::WrongPassword => put(out, &["wrong password"]),
        Error::TooManyAttempts => put(out, &["too many attempts"]),
        Error::LockedOut { retry_secs } => {
            put(out, &[LOCKED_OUT]);
            push_decimal(out, *retry_secs);
            out.extend_from_slice(b" s");
        }
        Error::HistoryIncomplete { room, missing } => {
            out.extend_from_slice(b"history incomplete: ");
            let (count, rest) = match missing {
                Missing::Unsaved(n) => (*n, UNSAVED),
                Missing::Dropped(n) => (*n, DROPPED),
                Missing::Unreadable => {
                    return put(out, &["older lines of ", room, UNREADABLE]);
                }
            };
            push_decimal(out, count as u64);
            out.extend_from_slice(lines(count).as_bytes());
            put(out, &[" of ", room, rest]);
        }
        Error::ServerFull => put(out, &["server full"]),
        Error::TooManyFromAddress => put(out, &["too many connections from your address"]),
        Error::IdleTimeout => put(out, &["idle timeout"]),
        Error::AuthTimeout => put(out, &["auth timeout"]),
        Error::InvalidUtf8 => put(out, &["invalid UTF-8"]),
        Error::LineTooLong { max } => {
            put(out, &["line too long (max "]);
            push_decimal(out, *max as u64);
            out.extend_from_slice(b" bytes)");
        }
    }
}

const AUTHENTICATE_FIRST: &str = "authenticate first: :auth PASSWORD";
const LOCKED_OUT: &str = "too many attempts from your address, try again in ";
const UNSAVED: &str = " could not be saved to disk and will be missing after a restart";
const DROPPED: &str = " were dropped from memory (history is kept in memory only)";
const UNREADABLE: &str = " could not be read from disk";

/// ` line` or ` lines`, after a count.
fn lines(count: usize) -> &'static str {
    if count == 1 {
        " line"
    } else {
        " lines"
    }
}

/// The whole line of one `:help` row.
pub fn help_text(row: HelpRow) -> &'static str {
    match row {
        HelpRow::Help => "* :help - list the commands",
        HelpRow::Nick => {
            "* :nick NAME - change your nick (1-32 of A-Z a-z 0-9 _ -, starting with a letter)"
        }
        HelpRow::Pm => {
            "* :pm NAME TEXT (alias :msg) - private message to one user, wherever they are"
        }
        HelpRow::Users => "* :users - who is in your room",
        HelpRow::Join => {
            "* :join ROOM - leave your room and enter ROOM (created on first join; # optional)"
        }
        HelpRow::Rooms => "* :rooms - every room with its member count",
        HelpRow::Me => "* :me TEXT - an action line to your room",
        HelpRow::Ping => "* :ping [TOKEN] - liveness check, answered * pong [TOKEN]",
        HelpRow::Quit => "* :quit [REASON] - leave; the server says * bye and closes",
        HelpRow::History => {
            "* :history [N] - the last N (default 20) chat and :me lines of your room"
        }
        HelpRow::Auth => "* :auth PASSWORD - authenticate to a server with a password",
    }
}

/// Appends each of `parts`.
fn put(out: &mut Vec<u8>, parts: &[&str]) {
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
}

/// Appends `n` in decimal, without `format!`: for hot paths on both sides
/// (the renderer, the load generator's markers).
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Reads one line from the server (without its `\n`; one trailing `\n` is
/// ignored) back into what the server meant. `None` for a line this
/// version of the protocol does not have: a client shows it as it is, by
/// its first character (`* ` information, `! ` error).
///
/// Where the wire is ambiguous the server's own lines win: `:me joined
/// #rust` from alice reads as alice joining #rust, as every client has
/// always shown it. Room lines carry no room in this dialect: `room` is
/// `None` in what comes back.
pub fn recognise(line: &str) -> Option<ServerLine<'_>> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    if let Some(info) = line.strip_prefix("* ") {
        return recognise_info(info);
    }
    if let Some(error) = line.strip_prefix("! ") {
        return recognise_error(error).map(ServerLine::Error);
    }
    if let Some(pm) = line.strip_prefix("[pm] ") {
        let (from, text) = pm.split_once(": ")?;
        return is_valid_name(from)
            .then_some(ServerLine::Event(Event::PrivateMessage { from, text }));
    }
    if let Some(past) = line.strip_prefix("[history ") {
        let (stamp, line) = past.split_once("] ")?;
        let time = parse_utc(stamp)?;
        return Some(ServerLine::Reply(Reply::HistoryLine { time, line }));
    }
    // A chat line: nicks hold no `:`, so the first one ends the nick.
    let colon = memchr::memchr(b':', line.as_bytes())?;
    let (from, rest) = line.split_at(colon);
    let text = rest.strip_prefix(": ")?;
    is_valid_name(from).then_some(ServerLine::Event(Event::Said {
        from,
        room: None,
        text,
    }))
}

/// Reads the line a `[history TIME] ` line carries
/// ([`Reply::HistoryLine`]'s `line`) as the chat or `:me` line it was:
/// history keeps nothing else, so `* NICK TEXT` there is always an action.
pub fn recognise_history(line: &str) -> Option<Event<'_>> {
    if let Some(action) = line.strip_prefix("* ") {
        let (from, text) = action.split_once(' ').unwrap_or((action, ""));
        return is_valid_name(from).then_some(Event::Acted {
            from,
            room: None,
            text,
        });
    }
    match recognise(line)? {
        ServerLine::Event(said @ Event::Said { .. }) => Some(said),
        _ => None,
    }
}

fn recognise_info(info: &str) -> Option<ServerLine<'_>> {
    let reply = |reply| Some(ServerLine::Reply(reply));
    match info {
        "password required" => return reply(Reply::PasswordRequired),
        "server shutting down" => return Some(ServerLine::Event(Event::ShuttingDown)),
        "bye" => return reply(Reply::Bye),
        "pong" => return reply(Reply::Pong { token: None }),
        _ => {}
    }
    if let Some(token) = info.strip_prefix("pong ") {
        return reply(Reply::Pong { token: Some(token) });
    }
    if let Some(nick) = info.strip_prefix("welcome ") {
        return reply(Reply::Welcome { nick });
    }
    if let Some(nick) = info.strip_prefix("you are already known as ") {
        return reply(Reply::AlreadyKnownAs { nick });
    }
    if let Some(list) = info.strip_prefix("users in ") {
        let (room, nicks) = list.split_once(": ")?;
        let nicks = nicks.split(' ').filter(|nick| !nick.is_empty()).collect();
        return reply(Reply::Users { room, nicks });
    }
    if let Some(list) = info.strip_prefix("rooms: ") {
        let rooms = list
            .split(", ")
            .map(|entry| {
                let (name, count) = entry.rsplit_once(" (")?;
                Some((name, number(count.strip_suffix(')')?)?))
            })
            .collect::<Option<Vec<_>>>()?;
        return reply(Reply::Rooms { rooms });
    }
    if let Some(header) = info.strip_prefix("history ") {
        let (room, count) = header.rsplit_once(": ")?;
        let count = count
            .strip_suffix(" lines")
            .or_else(|| count.strip_suffix(" line"))?;
        return reply(Reply::HistoryHeader {
            room,
            count: number(count)?,
        });
    }
    if info.starts_with(':') {
        let whole = HelpRow::ALL
            .into_iter()
            .find(|&row| help_text(row).get(2..) == Some(info))?;
        return reply(Reply::Help(whole));
    }
    // `* NICK ...`: someone's presence, or a `:me` action.
    let (nick, tail) = info.split_once(' ')?;
    if !is_valid_name(nick) || is_reserved_nick(nick) {
        return None;
    }
    let event = if let Some(room) = tail.strip_prefix("joined ").filter(|r| is_room(r)) {
        Event::Joined { nick, room }
    } else if let Some(left) = tail.strip_prefix("left ").and_then(left_room) {
        let (room, reason) = left;
        Event::Left { nick, room, reason }
    } else if let Some(new) = tail
        .strip_prefix("is now known as ")
        .filter(|new| is_valid_name(new))
    {
        Event::Renamed { old: nick, new }
    } else {
        Event::Acted {
            from: nick,
            room: None,
            text: tail,
        }
    };
    Some(ServerLine::Event(event))
}

/// `#ROOM` or `#ROOM (REASON)`, after `left `.
fn left_room(rest: &str) -> Option<(&str, Option<&str>)> {
    match rest.split_once(' ') {
        None => is_room(rest).then_some((rest, None)),
        Some((room, reason)) => {
            let reason = reason.strip_prefix('(')?.strip_suffix(')')?;
            is_room(room).then_some((room, Some(reason)))
        }
    }
}

fn is_room(room: &str) -> bool {
    room.strip_prefix('#').is_some_and(is_valid_name)
}

fn recognise_error(error: &str) -> Option<Error<'_>> {
    Some(match error {
        AUTHENTICATE_FIRST => Error::AuthenticateFirst,
        "wrong password" => Error::WrongPassword,
        "too many attempts" => Error::TooManyAttempts,
        "server full" => Error::ServerFull,
        "too many connections from your address" => Error::TooManyFromAddress,
        "idle timeout" => Error::IdleTimeout,
        "auth timeout" => Error::AuthTimeout,
        "invalid UTF-8" => Error::InvalidUtf8,
        _ => return recognise_error_with_words(error),
    })
}

fn recognise_error_with_words(error: &str) -> Option<Error<'_>> {
    if let Some(usage) = error.strip_prefix("usage: ") {
        return Some(Error::Usage(usage));
    }
    if let Some(rest) = error.strip_prefix("unknown command ") {
        return Some(Error::UnknownCommand(rest.strip_suffix(" (try :help)")?));
    }
    if let Some(name) = error.strip_prefix("invalid name ") {
        return Some(Error::InvalidName(name));
    }
    if let Some(rest) = error.strip_prefix("nick ") {
        if let Some(nick) = rest.strip_suffix(" is reserved") {
            return Some(Error::NickReserved(nick));
        }
        return Some(Error::NickTaken(rest.strip_suffix(" is taken")?));
    }
    if let Some(nick) = error.strip_prefix("no such user ") {
        return Some(Error::NoSuchUser(nick));
    }
    if let Some(bare) = error.strip_prefix("already in #") {
        return Some(Error::AlreadyIn(bare));
    }
    if let Some(rest) = error.strip_prefix(LOCKED_OUT) {
        let retry_secs = number(rest.strip_suffix(" s")?)? as u64;
        return Some(Error::LockedOut { retry_secs });
    }
    if let Some(rest) = error.strip_prefix("line too long (max ") {
        let max = number(rest.strip_suffix(" bytes)")?)?;
        return Some(Error::LineTooLong { max });
    }
    let rest = error.strip_prefix("history incomplete: ")?;
    if let Some(rest) = rest.strip_prefix("older lines of ") {
        let room = rest.strip_suffix(UNREADABLE)?;
        return Some(Error::HistoryIncomplete {
            room,
            missing: Missing::Unreadable,
        });
    }
    let (count, rest) = rest.split_once(' ')?;
    let count = number(count)?;
    let rest = rest
        .strip_prefix("lines of ")
        .or_else(|| rest.strip_prefix("line of "))?;
    let (room, missing) = if let Some(room) = rest.strip_suffix(UNSAVED) {
        (room, Missing::Unsaved(count))
    } else {
        (rest.strip_suffix(DROPPED)?, Missing::Dropped(count))
    };
    Some(Error::HistoryIncomplete { room, missing })
}

/// ASCII digits as a number; `None` for anything else.
fn number(digits: &str) -> Option<usize> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::{Dialect, RESERVED_NICKS};

    fn to_text(line: &ServerLine<'_>) -> String {
        Dialect::Line.render_text(line)
    }

    /// One of every line the server sends, with its exact text today.
    fn samples() -> Vec<(ServerLine<'static>, &'static str)> {
        let room = Some("#lobby");
        let mut samples: Vec<(ServerLine<'static>, &'static str)> =
            vec![
            (Event::Said { from: "alice", room, text: "hello" }.into(), "alice: hello"),
            (Event::Said { from: "bob", room, text: "a: b ::" }.into(), "bob: a: b ::"),
            (Event::Acted { from: "alice", room, text: "waves" }.into(), "* alice waves"),
            (
                Event::PrivateMessage { from: "alice", text: "psst: hi" }.into(),
                "[pm] alice: psst: hi",
            ),
            (Event::Joined { nick: "alice", room: "#rust" }.into(), "* alice joined #rust"),
            (
                Event::Left { nick: "alice", room: "#lobby", reason: None }.into(),
                "* alice left #lobby",
            ),
            (
                Event::Left { nick: "bob", room: "#lobby", reason: Some("too slow") }.into(),
                "* bob left #lobby (too slow)",
            ),
            (
                Event::Renamed { old: "alice", new: "alicia" }.into(),
                "* alice is now known as alicia",
            ),
            (Event::ShuttingDown.into(), "* server shutting down"),
            (Reply::Welcome { nick: "guest7" }.into(), "* welcome guest7"),
            (Reply::PasswordRequired.into(), "* password required"),
            (
                Reply::Users { room: "#lobby", nicks: vec!["alice", "bob", "carol"] }.into(),
                "* users in #lobby: alice bob carol",
            ),
            (
                Reply::Rooms { rooms: vec![("#lobby", 3), ("#Rust", 1), ("#x", 0)] }.into(),
                "* rooms: #lobby (3), #Rust (1), #x (0)",
            ),
            (Reply::Pong { token: None }.into(), "* pong"),
            (Reply::Pong { token: Some("tok en") }.into(), "* pong tok en"),
            (Reply::Bye.into(), "* bye"),
            (
                Reply::AlreadyKnownAs { nick: "alice" }.into(),
                "* you are already known as alice",
            ),
            (
                Reply::HistoryHeader { room: "#rust", count: 2 }.into(),
                "* history #rust: 2 lines",
            ),
            (
                Reply::HistoryHeader { room: "#rust", count: 1 }.into(),
                "* history #rust: 1 line",
            ),
            (
                Reply::HistoryHeader { room: "#rust", count: 0 }.into(),
                "* history #rust: 0 lines",
            ),
            (
                Reply::HistoryLine { time: 1_795_342_503, line: "alice: hello" }.into(),
                "[history 2026-11-22T10:15:03Z] alice: hello",
            ),
            (
                Reply::HistoryLine { time: 1_795_342_509, line: "* bob waves" }.into(),
                "[history 2026-11-22T10:15:09Z] * bob waves",
            ),
            (Error::Usage(":nick NAME").into(), "! usage: :nick NAME"),
            (Error::UnknownCommand(":foo").into(), "! unknown command :foo (try :help)"),
            (Error::InvalidName("9lives").into(), "! invalid name 9lives"),
            (Error::NickReserved("server").into(), "! nick server is reserved"),
            (Error::NickTaken("alice").into(), "! nick alice is taken"),
            (Error::NoSuchUser("bob").into(), "! no such user bob"),
            (Error::AlreadyIn("rust").into(), "! already in #rust"),
            (Error::AuthenticateFirst.into(), "! authenticate first: :auth PASSWORD"),
            (Error::WrongPassword.into(), "! wrong password"),
            (Error::TooManyAttempts.into(), "! too many attempts"),
            (
                Error::LockedOut { retry_secs: 30 }.into(),
                "! too many attempts from your address, try again in 30 s",
            ),
            (
                Error::HistoryIncomplete { room: "#lobby", missing: Missing::Unsaved(1) }.into(),
                "! history incomplete: 1 line of #lobby could not be saved to disk and will be \
                 missing after a restart",
            ),
            (
                Error::HistoryIncomplete { room: "#lobby", missing: Missing::Dropped(3) }.into(),
                "! history incomplete: 3 lines of #lobby were dropped from memory (history is \
                 kept in memory only)",
            ),
            (
                Error::HistoryIncomplete { room: "#lobby", missing: Missing::Unreadable }.into(),
                "! history incomplete: older lines of #lobby could not be read from disk",
            ),
            (Error::ServerFull.into(), "! server full"),
            (
                Error::TooManyFromAddress.into(),
                "! too many connections from your address",
            ),
            (Error::IdleTimeout.into(), "! idle timeout"),
            (Error::AuthTimeout.into(), "! auth timeout"),
            (Error::InvalidUtf8.into(), "! invalid UTF-8"),
            (Error::LineTooLong { max: 4096 }.into(), "! line too long (max 4096 bytes)"),
        ];
        let help = [
            "* :help - list the commands",
            "* :nick NAME - change your nick (1-32 of A-Z a-z 0-9 _ -, starting with a letter)",
            "* :pm NAME TEXT (alias :msg) - private message to one user, wherever they are",
            "* :users - who is in your room",
            "* :join ROOM - leave your room and enter ROOM (created on first join; # optional)",
            "* :rooms - every room with its member count",
            "* :me TEXT - an action line to your room",
            "* :ping [TOKEN] - liveness check, answered * pong [TOKEN]",
            "* :quit [REASON] - leave; the server says * bye and closes",
            "* :history [N] - the last N (default 20) chat and :me lines of your room",
            "* :auth PASSWORD - authenticate to a server with a password",
        ];
        for (row, text) in HelpRow::ALL.into_iter().zip(help) {
            samples.push((Reply::Help(row).into(), text));
        }
        samples
    }

    /// Which variant a line is; exhaustive, so a new variant does not
    /// compile until it is named here, and then the coverage test asks
    /// for a sample of it.
    fn variant(line: &ServerLine<'_>) -> &'static str {
        match line {
            ServerLine::Event(event) => match event {
                Event::Said { .. } => "Said",
                Event::Acted { .. } => "Acted",
                Event::PrivateMessage { .. } => "PrivateMessage",
                Event::Joined { .. } => "Joined",
                Event::Left { .. } => "Left",
                Event::Renamed { .. } => "Renamed",
                Event::ShuttingDown => "ShuttingDown",
            },
            ServerLine::Reply(reply) => match reply {
                Reply::Welcome { .. } => "Welcome",
                Reply::PasswordRequired => "PasswordRequired",
                Reply::Help(_) => "Help",
                Reply::Users { .. } => "Users",
                Reply::Rooms { .. } => "Rooms",
                Reply::Pong { .. } => "Pong",
                Reply::Bye => "Bye",
                Reply::AlreadyKnownAs { .. } => "AlreadyKnownAs",
                Reply::HistoryHeader { .. } => "HistoryHeader",
                Reply::HistoryLine { .. } => "HistoryLine",
            },
            ServerLine::Error(error) => match error {
                Error::Usage(_) => "Usage",
                Error::UnknownCommand(_) => "UnknownCommand",
                Error::InvalidName(_) => "InvalidName",
                Error::NickReserved(_) => "NickReserved",
                Error::NickTaken(_) => "NickTaken",
                Error::NoSuchUser(_) => "NoSuchUser",
                Error::AlreadyIn(_) => "AlreadyIn",
                Error::AuthenticateFirst => "AuthenticateFirst",
                Error::WrongPassword => "WrongPassword",
                Error::TooManyAttempts => "TooManyAttempts",
                Error::LockedOut { .. } => "LockedOut",
                Error::HistoryIncomplete { .. } => "HistoryIncomplete",
                Error::ServerFull => "ServerFull",
                Error::TooManyFromAddress => "TooManyFromAddress",
                Error::IdleTimeout => "IdleTimeout",
                Error::AuthTimeout => "AuthTimeout",
                Error::InvalidUtf8 => "InvalidUtf8",
                Error::LineTooLong { .. } => "LineTooLong",
            },
        }
    }

    /// Every name [`variant`] can return: keep in step with it.
    const VARIANTS: [&str; 35] = [
        "Said",
        "Acted",
        "PrivateMessage",
        "Joined",
        "Left",
        "Renamed",
        "ShuttingDown",
        "Welcome",
        "PasswordRequired",
        "Help",
        "Users",
        "Rooms",
        "Pong",
        "Bye",
        "AlreadyKnownAs",
        "HistoryHeader",
        "HistoryLine",
        "Usage",
        "UnknownCommand",
        "InvalidName",
        "NickReserved",
        "NickTaken",
        "NoSuchUser",
        "AlreadyIn",
        "AuthenticateFirst",
        "WrongPassword",
        "TooManyAttempts",
        "LockedOut",
        "HistoryIncomplete",
        "ServerFull",
        "TooManyFromAddress",
        "IdleTimeout",
        "AuthTimeout",
        "InvalidUtf8",
        "LineTooLong",
    ];

    /// What the line dialect shows of a line: room lines of the current
    /// room carry no room.
    fn as_shown(line: ServerLine<'_>) -> ServerLine<'_> {
        match line {
            ServerLine::Event(Event::Said { from, text, .. }) => Event::Said {
                from,
                room: None,
                text,
            }
            .into(),
            ServerLine::Event(Event::Acted { from, text, .. }) => Event::Acted {
                from,
                room: None,
                text,
            }
            .into(),
            other => other,
        }
    }

    #[test]
    fn every_line_renders_byte_for_byte_as_before() {
        for (line, text) in samples() {
            let mut out = b"kept ".to_vec();
            render(&line, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("kept {text}\n"),
                "{line:?}"
            );
        }
    }

    #[test]
    fn every_line_is_recognised_as_what_was_rendered() {
        for (line, text) in samples() {
            let rendered = to_text(&line);
            assert_eq!(recognise(&rendered), Some(as_shown(line.clone())), "{text}");
            assert_eq!(recognise(&format!("{rendered}\n")), Some(as_shown(line)));
        }
    }

    #[test]
    fn every_variant_has_a_sample() {
        let seen: std::collections::BTreeSet<_> =
            samples().iter().map(|(line, _)| variant(line)).collect();
        for name in VARIANTS {
            assert!(seen.contains(name), "no sample of {name}");
        }
        assert_eq!(seen.len(), VARIANTS.len());
    }

    /// The real rule behind reserved nicks: the first word of every
    /// information line the server can send is either the nick of the
    /// person it is about (joined, left, renamed, `:me`) or one of
    /// [`RESERVED_NICKS`], and every reserved nick is such a word. So no
    /// nick can make `:me` forge a server line, and the list holds no
    /// word the server does not use.
    #[test]
    fn server_words_are_exactly_the_reserved_nicks() {
        let mut words = std::collections::BTreeSet::new();
        for (line, text) in samples() {
            let Some(info) = text.strip_prefix("* ") else {
                continue;
            };
            let first: String = info
                .chars()
                .take_while(|c| !matches!(c, ' ' | ':'))
                .collect();
            let about = match &line {
                ServerLine::Event(
                    Event::Joined { nick, .. }
                    | Event::Left { nick, .. }
                    | Event::Renamed { old: nick, .. }
                    | Event::Acted { from: nick, .. },
                ) => Some(*nick),
                _ => None,
            };
            match about {
                Some(nick) => assert_eq!(first, nick, "{text}"),
                None if first.is_empty() => {} // :help rows: never a nick
                None => {
                    words.insert(first);
                }
            }
        }
        let reserved: std::collections::BTreeSet<_> =
            RESERVED_NICKS.iter().map(|w| w.to_string()).collect();
        assert_eq!(words, reserved);
    }

    #[test]
    fn server_words_are_not_read_as_actions() {
        for word in RESERVED_NICKS {
            let line = format!("* {word} did something");
            let acted = matches!(
                recognise(&line),
                Some(ServerLine::Event(Event::Acted { .. }))
            );
            assert!(!acted, "{line}");
        }
        assert_eq!(
            recognise("* alice joined the party"),
            Some(
                Event::Acted {
                    from: "alice",
                    room: None,
                    text: "joined the party"
                }
                .into()
            ),
            "only a room makes a join"
        );
        assert_eq!(
            recognise("* alice left #lobby for good"),
            Some(
                Event::Acted {
                    from: "alice",
                    room: None,
                    text: "left #lobby for good"
                }
                .into()
            )
        );
    }

    #[test]
    fn history_lines_are_chat_or_actions() {
        let acted = |text| Event::Acted {
            from: "bob",
            room: None,
            text,
        };
        assert_eq!(recognise_history("* bob waves"), Some(acted("waves")));
        assert_eq!(
            recognise_history("* bob joined #rust"),
            Some(acted("joined #rust")),
            "history keeps no joins"
        );
        assert_eq!(
            recognise_history("bob: hi"),
            Some(Event::Said {
                from: "bob",
                room: None,
                text: "hi"
            })
        );
        assert_eq!(recognise_history("! not chat"), None);
    }

    #[test]
    fn lines_of_no_known_form_are_not_recognised() {
        for line in [
            "",
            "*",
            "* ",
            "!",
            "! something new",
            "hello",
            "no colon here",
            "two words: text",
            ": text",
            "[pm] nocolon",
            "[history yesterday] alice: hi",
            "* rooms: #lobby (x)",
            "* history #rust: many lines",
            "! nick alice is cool",
        ] {
            assert_eq!(recognise(line), None, "{line:?}");
        }
    }

    proptest::proptest! {
        /// Recognising never panics, whatever the line.
        #[test]
        fn any_line_is_recognised_or_not(line in "\\PC*|[*!] .{0,40}|\\[(pm|history) .{0,30}") {
            let _ = recognise(&line);
        }

        /// Any chat line, private message or action comes back as sent.
        #[test]
        fn chat_round_trips(
            nick in "[a-zA-Z][a-zA-Z0-9_-]{0,31}",
            text in "[^\n]{0,60}",
        ) {
            let said: ServerLine<'_> = Event::Said { from: &nick, room: None, text: &text }.into();
            let text = to_text(&said);
            proptest::prop_assert_eq!(recognise(&text), Some(said));
            let pm: ServerLine<'_> = Event::PrivateMessage { from: &nick, text: &text }.into();
            let text = to_text(&pm);
            proptest::prop_assert_eq!(recognise(&text), Some(pm));
        }
    }
}
