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
    let start = out.len();
    match line {
        ServerLine::Event(event) => render_event(event, out),
        ServerLine::Reply(reply) => render_reply(reply, out),
        ServerLine::Error(error) => {
            out.extend_from_slice(b"! ");
            render_error(error, out);
        }
    }
    strip_format_codes(out, start);
    out.push(b'\n');
}

/// Removes IRC formatting codes (bold, colours…, `irc::text`) from what
/// was appended to `out` since `start`: the chat keeps them for IRC
/// clients, and the line dialect never shows them (protocol 1.2, "IRC").
/// One scan of the line when there are none: a fold with no early exit,
/// which the compiler turns into a few instructions per 16 bytes, where
/// the exact test per byte (an early exit each) cost about 8 per byte.
fn strip_format_codes(out: &mut Vec<u8>, start: usize) {
    let appended = &out[start..];
    let any_control = appended.iter().fold(false, |seen, &b| seen | (b < 0x20));
    if !any_control
        || !appended
            .iter()
            .any(|&b| b < 0x20 && crate::irc::text::is_format_code(char::from(b)))
    {
        return;
    }
    let Ok(text) = std::str::from_utf8(appended) else {
        return;
    };
    let stripped = crate::irc::text::strip_formatting(text).into_owned();
    out.truncate(start);
    out.extend_from_slice(stripped.as_bytes());
}

/// Appends `line` for a member of its room whose current room is another
/// one: `[ROOM] ` and then the line as [`render`] writes it. A line that is
/// not a room line ([`ServerLine::room`]) gets no prefix.
pub fn render_prefixed(line: &ServerLine<'_>, out: &mut Vec<u8>) {
    if let Some(room) = line.room() {
        put(out, &["[", room, "] "]);
    }
    render(line, out);
}

fn render_event(event: &Event<'_>, out: &mut Vec<u8>) {
    match event {
        Event::Said { from, text, .. } => put(out, &[from, ": ", text]),
        Event::Acted { from, text, .. } => put(out, &["* ", from, " ", text]),
        Event::PrivateMessage { from, text, .. } => put(out, &["[pm] ", from, ": ", text]),
        Event::E2e { from, payload } => put(out, &["[e2e] ", from, ": ", payload]),
        Event::Joined { nick, room } => put(out, &["* ", nick, " joined ", room]),
        Event::Left {
            nick, room, reason, ..
        } => {
            put(out, &["* ", nick, " left ", room]);
            if let Some(reason) = reason {
                put(out, &[" (", reason, ")"]);
            }
        }
        Event::Renamed { old, new } => put(out, &["* ", old, " is now known as ", new]),
        Event::ShuttingDown => put(out, &["* server shutting down"]),
        Event::Kicked {
            nick,
            room,
            by,
            reason,
        } => {
            put(out, &["* ", nick, " was kicked from ", room, " by ", by]);
            if let Some(reason) = reason {
                put(out, &[" (", reason, ")"]);
            }
        }
        Event::Banned { nick, room, by } => {
            put(out, &["* ", nick, " was banned from ", room, " by ", by])
        }
        Event::Unbanned { nick, room, by } => {
            put(out, &["* ", by, " lifted the ban on ", nick, " in ", room])
        }
        Event::TopicSet { room, by, text } => {
            put(out, &["* ", by, " set the topic of ", room, ": ", text])
        }
        Event::TopicCleared { room, by } => put(out, &["* ", by, " cleared the topic of ", room]),
        Event::Opped { room, by, nick } => {
            put(out, &["* ", by, " made ", nick, " an operator of ", room])
        }
        Event::Deopped { room, by, nick } => {
            put(out, &["* ", by, " took operator from ", nick, " in ", room])
        }
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
        Reply::TagsOn => put(out, &["* tags on"]),
        Reply::TagsOff => put(out, &["* tags off"]),
        Reply::AlreadyKnownAs { nick } => put(out, &["* you are already known as ", nick]),
        Reply::HistoryHeader { room, count } => {
            put(out, &["* history ", room, ": "]);
            push_decimal(out, *count as u64);
            out.extend_from_slice(lines(*count).as_bytes());
        }
        Reply::HistoryLine { time_ms, line, .. } => {
            out.extend_from_slice(b"[history ");
            write_utc(time_ms.div_euclid(1000), out);
            out.extend_from_slice(b"] ");
            out.extend_from_slice(line.as_bytes());
        }
        Reply::Registered { name } => put(out, &["* registered ", name]),
        Reply::LoggedIn { name } => put(out, &["* logged in as ", name]),
        Reply::LoggedInElsewhere => put(out, &["* logged in elsewhere"]),
        Reply::Token { token } => put(out, &["* token ", token]),
        Reply::LoggedOut => put(out, &["* logged out"]),
        Reply::PasswordChanged => put(out, &["* password changed"]),
        Reply::Whois {
            nick,
            account,
            rooms,
        } => {
            put(out, &["* whois ", nick, ": "]);
            match account {
                Some(account) => put(out, &["account ", account]),
                None => put(out, &["guest"]),
            }
            out.extend_from_slice(b", rooms");
            for room in rooms {
                put(out, &[" ", room]);
            }
        }
        Reply::CurrentRoom { room } => put(out, &["* current room ", room]),
        Reply::NoRoomLeft => put(out, &["* ", NOT_IN_ANY_ROOM]),
        Reply::Topic { room, text } => put(out, &["* topic ", room, ": ", text]),
        Reply::NoTopic { room } => put(out, &["* no topic for ", room]),
        Reply::KeyPublished => put(out, &["* key published"]),
        Reply::Keys { name, keys } => {
            put(out, &["* keys ", name, ": "]);
            if keys.is_empty() {
                out.extend_from_slice(b"none");
            }
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(key.as_bytes());
            }
        }
        Reply::Bans { room, nicks } => {
            put(out, &["* bans in ", room, ": "]);
            if nicks.is_empty() {
                out.extend_from_slice(b"none");
            }
            for (i, nick) in nicks.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(nick.as_bytes());
            }
        }
    }
}

/// Appends an error line's words. Names in errors are shown as the client
/// typed them, but a control character there becomes U+FFFD as in chat
/// text (`! invalid name al\u{FFFD}ce`): the error must not paint the
/// typist's terminal either.
fn render_error(error: &Error<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    render_error_words(error, out);
    let tail = &out[start..];
    let dirty = tail
        .iter()
        .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f || b == 0xc2);
    if dirty {
        let text = String::from_utf8_lossy(tail);
        let clean = crate::sanitize(&text).into_owned();
        out.truncate(start);
        out.extend_from_slice(clean.as_bytes());
    }
}

fn render_error_words(error: &Error<'_>, out: &mut Vec<u8>) {
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
        Error::ClusterUnavailable => put(out, &["cluster unavailable"]),
        Error::TooManyFromAddress => put(out, &["too many connections from your address"]),
        Error::IdleTimeout => put(out, &["idle timeout"]),
        Error::AuthTimeout => put(out, &["auth timeout"]),
        Error::InvalidUtf8 => put(out, &["invalid UTF-8"]),
        Error::BadTags => put(out, &["bad tags"]),
        Error::LineTooLong { max } => {
            put(out, &["line too long (max "]);
            push_decimal(out, *max as u64);
            out.extend_from_slice(b" bytes)");
        }
        Error::NotInAnyRoom => put(out, &[NOT_IN_ANY_ROOM]),
        Error::NotIn(bare) => put(out, &["not in #", bare]),
        Error::NoSuchRoom(bare) => put(out, &["no such room #", bare]),
        Error::TooManyRooms { max } => {
            out.extend_from_slice(b"too many rooms (max ");
            push_decimal(out, *max as u64);
            out.push(b')');
        }
        Error::BannedFrom(bare) => put(out, &["banned from #", bare]),
        Error::NotOperator { room } => put(out, &["not an operator of ", room]),
        Error::UserNotInRoom { nick, room } => put(out, &[nick, " is not in ", room]),
        Error::TopicTooLong { max } => {
            out.extend_from_slice(b"topic too long (max ");
            push_decimal(out, *max as u64);
            out.extend_from_slice(b" bytes)");
        }
        Error::AlreadyOperator { nick, room } => {
            put(out, &[nick, " is already an operator of ", room])
        }
        Error::TargetNotOperator { nick, room } => {
            put(out, &[nick, " is not an operator of ", room])
        }
        Error::AlreadyBanned { nick, room } => put(out, &[nick, " is already banned from ", room]),
        Error::NotBanned { nick, room } => put(out, &[nick, " is not banned from ", room]),
        Error::GuestCannotRegister => put(out, &[GUEST_CANNOT_REGISTER]),
        Error::AlreadyRegistered(name) => put(out, &[name, " is already registered"]),
        Error::PasswordBounds { min, max } => {
            put(out, &["password must be "]);
            push_decimal(out, *min as u64);
            put(out, &[" to "]);
            push_decimal(out, *max as u64);
            put(out, &[" bytes"]);
        }
        Error::LoginFailed => put(out, &["login failed"]),
        Error::LogInFirst => put(out, &["log in first"]),
        Error::InvalidKey => put(out, &["invalid key"]),
        Error::NotLoggedIn(nick) => put(out, &[nick, " is not logged in"]),
        Error::NickRegistered(nick) => put(out, &["nick ", nick, " is registered"]),
        Error::LoggedInAs(name) => put(out, &["logged in as ", name, " (:logout first)"]),
        Error::UseTls => put(out, &["use TLS to send a password"]),
        Error::ServerBusy => put(out, &["server busy"]),
        Error::TooManyRegistrations => put(out, &["too many registrations, try again later"]),
    }
}

const GUEST_CANNOT_REGISTER: &str = "guest nicks cannot be registered (:nick NAME first)";

const NOT_IN_ANY_ROOM: &str = "not in any room (try :join ROOM)";
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
        HelpRow::Users => "* :users [ROOM] - who is in your current room, or in ROOM",
        HelpRow::Join => {
            "* :join ROOM - enter ROOM and make it your current room, keeping your other rooms \
             (created on first join; # optional)"
        }
        HelpRow::Part => "* :part [ROOM [REASON]] - leave ROOM, your current room by default",
        HelpRow::Rooms => "* :rooms - every room with its member count",
        HelpRow::Me => "* :me TEXT - an action line to your current room",
        HelpRow::Ping => "* :ping [TOKEN] - liveness check, answered * pong [TOKEN]",
        HelpRow::Quit => "* :quit [REASON] - leave; the server says * bye and closes",
        HelpRow::History => {
            "* :history [N] - the last N (default 20) chat and :me lines of your current room"
        }
        HelpRow::Topic => {
            "* :topic [TEXT] - show your current room's topic, or set it (- clears it; operators \
             only)"
        }
        HelpRow::Operators => {
            "* :op NICK, :deop NICK, :kick NICK [REASON], :ban NICK, :unban NICK, :bans - room \
             operators' commands in your current room"
        }
        HelpRow::Tags => {
            "* :tags on|off - tag every line sent to you with its time, room, id and label"
        }
        HelpRow::Auth => "* :auth PASSWORD - authenticate to a server with a password",
        HelpRow::Register => {
            "* :register PASSWORD - register your nick as an account, and log in to it"
        }
        HelpRow::Login => {
            "* :login NAME PASSWORD - log in to account NAME (your nick becomes NAME)"
        }
        HelpRow::Token => {
            "* :token - a token to log in later with :resume TOKEN, without the password"
        }
        HelpRow::Logout => "* :logout - log out (and revoke the token you logged in with)",
        HelpRow::Passwd => "* :passwd OLD NEW - change your password (revokes every token)",
        HelpRow::Whois => "* :whois NICK - who NICK is: account or guest, and rooms",
        HelpRow::E2e => {
            "* :key KEY, :keys NICK, :e2e NICK PAYLOAD - end-to-end encryption: publish your \
             device's key, list an account's keys, relay an encrypted payload (logged in)"
        }
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
    if let Some((room, rest)) = split_room_prefix(line) {
        // One prefix: the server never writes `[#a] [#b] …`.
        if split_room_prefix(rest).is_some() {
            return None;
        }
        return in_room(recognise(rest)?, room);
    }
    if let Some(info) = line.strip_prefix("* ") {
        return recognise_info(info);
    }
    if let Some(error) = line.strip_prefix("! ") {
        // The server replaces control characters in the names it echoes:
        // an error line with one is none it sends.
        if error.chars().any(crate::is_forbidden_control) {
            return None;
        }
        return recognise_error(error).map(ServerLine::Error);
    }
    if let Some(pm) = line.strip_prefix("[pm] ") {
        let (from, text) = pm.split_once(": ")?;
        return is_valid_name(from).then_some(ServerLine::Event(Event::PrivateMessage {
            from,
            text,
            to: None,
        }));
    }
    if let Some(relayed) = line.strip_prefix("[e2e] ") {
        let (from, payload) = relayed.split_once(": ")?;
        return is_valid_name(from).then_some(ServerLine::Event(Event::E2e { from, payload }));
    }
    if let Some(past) = line.strip_prefix("[history ") {
        let (stamp, line) = past.split_once("] ")?;
        let time_ms = parse_utc(stamp)?.checked_mul(1000)?;
        return Some(ServerLine::Reply(Reply::HistoryLine {
            time_ms,
            line,
            room: None,
            id: None,
        }));
    }
    // A chat line: nicks hold no `:`, so the first one ends the nick.
    let colon = memchr::memchr(b':', line.as_bytes())?;
    let (from, rest) = line.split_at(colon);
    let text = rest.strip_prefix(": ")?;
    is_valid_name(from).then_some(ServerLine::Event(Event::Said {
        from,
        room: None,
        text,
        stamp: None,
    }))
}

/// Splits the `[ROOM] ` prefix (version 1.2) off a room line of a room
/// that is not the recipient's current one: `Some((room, rest))` for
/// `[#rust] alice: hi`, `None` for a line without one. Nicks never start
/// with `[`, and `[pm] `, `[history …] ` and `[e2e] ` are no room.
pub fn split_room_prefix(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('[')?;
    let (room, rest) = rest.split_once("] ")?;
    is_room(room).then_some((room, rest))
}

/// A recognised line as a room line of `room` (from its `[ROOM] ` prefix):
/// chat and actions get the room, room lines must name it, other lines
/// have no prefix.
fn in_room<'a>(line: ServerLine<'a>, prefix: &'a str) -> Option<ServerLine<'a>> {
    let line = match line {
        ServerLine::Event(Event::Said {
            from, text, stamp, ..
        }) => Event::Said {
            from,
            room: Some(prefix),
            text,
            stamp,
        }
        .into(),
        ServerLine::Event(Event::Acted {
            from, text, stamp, ..
        }) => Event::Acted {
            from,
            room: Some(prefix),
            text,
            stamp,
        }
        .into(),
        other => other,
    };
    (line.room() == Some(prefix)).then_some(line)
}

/// Reads the line a `[history TIME] ` line carries
/// ([`Reply::HistoryLine`]'s `line`) as the chat or `:me` line it was:
/// history keeps nothing else, so `* NICK TEXT` there is always an action.
pub fn recognise_history(line: &str) -> Option<Event<'_>> {
    if let Some(action) = line.strip_prefix("* ") {
        // `* NICK TEXT`: an action always has its space (the server
        // writes one even before an empty text).
        let (from, text) = action.split_once(' ')?;
        return is_valid_name(from).then_some(Event::Acted {
            from,
            room: None,
            text,
            stamp: None,
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
        "logged in elsewhere" => return reply(Reply::LoggedInElsewhere),
        "logged out" => return reply(Reply::LoggedOut),
        "password changed" => return reply(Reply::PasswordChanged),
        "tags on" => return reply(Reply::TagsOn),
        "tags off" => return reply(Reply::TagsOff),
        "key published" => return reply(Reply::KeyPublished),
        _ => {}
    }
    if let Some(name) = info.strip_prefix("registered ") {
        return reply(Reply::Registered { name });
    }
    if let Some(name) = info.strip_prefix("logged in as ") {
        return reply(Reply::LoggedIn { name });
    }
    if let Some((name, list)) = info
        .strip_prefix("keys ")
        .and_then(|rest| rest.split_once(": "))
    {
        let keys = match list {
            "none" => Vec::new(),
            list => list.split(' ').collect(),
        };
        let valid = is_valid_name(name) && keys.iter().all(|key| !key.is_empty());
        return valid.then_some(ServerLine::Reply(Reply::Keys { name, keys }));
    }
    if let Some(token) = info.strip_prefix("token ") {
        return reply(Reply::Token { token });
    }
    if let Some(whois) = info.strip_prefix("whois ") {
        let (nick, rest) = whois.split_once(": ")?;
        let (who, rooms) = rest.split_once(", rooms")?;
        let account = match who {
            "guest" => None,
            _ => Some(who.strip_prefix("account ")?),
        };
        let rooms = rooms.split(' ').filter(|room| !room.is_empty()).collect();
        return reply(Reply::Whois {
            nick,
            account,
            rooms,
        });
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
        // The server writes the nicks with one space between them (none
        // for an empty room): an empty nick means a line it never sends.
        let nicks: Vec<&str> = match nicks {
            "" => Vec::new(),
            nicks => nicks.split(' ').collect(),
        };
        if nicks.contains(&"") {
            return None;
        }
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
    if info == NOT_IN_ANY_ROOM {
        return reply(Reply::NoRoomLeft);
    }
    if let Some(room) = info.strip_prefix("current room ").filter(|r| is_room(r)) {
        return reply(Reply::CurrentRoom { room });
    }
    if let Some(room) = info.strip_prefix("no topic for ").filter(|r| is_room(r)) {
        return reply(Reply::NoTopic { room });
    }
    if let Some((room, text)) = info
        .strip_prefix("topic ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(room, _)| is_room(room))
    {
        return reply(Reply::Topic { room, text });
    }
    if let Some((room, list)) = info
        .strip_prefix("bans in ")
        .and_then(|r| r.split_once(": "))
    {
        let nicks = match list {
            "none" => Vec::new(),
            list => list.split(' ').collect(),
        };
        let valid = is_room(room) && nicks.iter().all(|nick| is_valid_name(nick));
        return valid.then_some(ServerLine::Reply(Reply::Bans { room, nicks }));
    }
    if let Some(header) = info.strip_prefix("history ") {
        let (room, text) = header.rsplit_once(": ")?;
        let (digits, _) = text.split_once(' ')?;
        let count = number(digits)?;
        // ` line` for one, ` lines` for any other count, as rendered.
        (&text[digits.len()..] == lines(count)).then_some(())?;
        return reply(Reply::HistoryHeader { room, count });
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
    if let Some(event) = recognise_operation(nick, tail) {
        return Some(ServerLine::Event(event));
    }
    let event = if let Some(room) = tail.strip_prefix("joined ").filter(|r| is_room(r)) {
        Event::Joined { nick, room }
    } else if let Some(left) = tail.strip_prefix("left ").and_then(left_room) {
        let (room, reason) = left;
        Event::Left {
            nick,
            room,
            reason,
            quit: false,
        }
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
            stamp: None,
        }
    };
    Some(ServerLine::Event(event))
}

/// An operator's room line (version 1.2) after `* NICK `: kicked, banned,
/// unbanned, topic set or cleared, operator given or taken.
fn recognise_operation<'a>(first: &'a str, tail: &'a str) -> Option<Event<'a>> {
    if let Some(rest) = tail.strip_prefix("was kicked from ") {
        let (room, rest) = rest.split_once(" by ")?;
        let (by, reason) = match rest.split_once(' ') {
            None => (rest, None),
            Some((by, reason)) => (by, Some(reason.strip_prefix('(')?.strip_suffix(')')?)),
        };
        return (is_room(room) && is_valid_name(by)).then_some(Event::Kicked {
            nick: first,
            room,
            by,
            reason,
        });
    }
    if let Some(rest) = tail.strip_prefix("was banned from ") {
        let (room, by) = rest.split_once(" by ")?;
        return (is_room(room) && is_valid_name(by)).then_some(Event::Banned {
            nick: first,
            room,
            by,
        });
    }
    let by = first;
    if let Some(rest) = tail.strip_prefix("lifted the ban on ") {
        let (nick, room) = rest.split_once(" in ")?;
        return (is_valid_name(nick) && is_room(room)).then_some(Event::Unbanned {
            nick,
            room,
            by,
        });
    }
    if let Some(rest) = tail.strip_prefix("set the topic of ") {
        let (room, text) = rest.split_once(": ")?;
        return is_room(room).then_some(Event::TopicSet { room, by, text });
    }
    if let Some(room) = tail.strip_prefix("cleared the topic of ") {
        return is_room(room).then_some(Event::TopicCleared { room, by });
    }
    if let Some(rest) = tail.strip_prefix("made ") {
        let (nick, room) = rest.split_once(" an operator of ")?;
        return (is_valid_name(nick) && is_room(room)).then_some(Event::Opped { room, by, nick });
    }
    if let Some(rest) = tail.strip_prefix("took operator from ") {
        let (nick, room) = rest.split_once(" in ")?;
        return (is_valid_name(nick) && is_room(room)).then_some(Event::Deopped { room, by, nick });
    }
    None
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
        "cluster unavailable" => Error::ClusterUnavailable,
        "too many connections from your address" => Error::TooManyFromAddress,
        "idle timeout" => Error::IdleTimeout,
        "auth timeout" => Error::AuthTimeout,
        "invalid UTF-8" => Error::InvalidUtf8,
        GUEST_CANNOT_REGISTER => Error::GuestCannotRegister,
        "login failed" => Error::LoginFailed,
        "log in first" => Error::LogInFirst,
        "invalid key" => Error::InvalidKey,
        "use TLS to send a password" => Error::UseTls,
        "server busy" => Error::ServerBusy,
        "too many registrations, try again later" => Error::TooManyRegistrations,
        "bad tags" => Error::BadTags,
        NOT_IN_ANY_ROOM => Error::NotInAnyRoom,
        _ => return recognise_error_with_words(error),
    })
}

fn recognise_error_with_words(error: &str) -> Option<Error<'_>> {
    if let Some(refusal) = recognise_room_error(error) {
        return Some(refusal);
    }
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
        if let Some(nick) = rest.strip_suffix(" is registered") {
            return Some(Error::NickRegistered(nick));
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
    if let Some(rest) = error.strip_prefix("password must be ") {
        let (min, max) = rest.strip_suffix(" bytes")?.split_once(" to ")?;
        let (min, max) = (number(min)?, number(max)?);
        return Some(Error::PasswordBounds { min, max });
    }
    if let Some(rest) = error.strip_prefix("logged in as ") {
        return Some(Error::LoggedInAs(rest.strip_suffix(" (:logout first)")?));
    }
    if let Some(name) = error.strip_suffix(" is already registered") {
        return Some(Error::AlreadyRegistered(name));
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
        .strip_prefix(&lines(count)[1..])?
        .strip_prefix(" of ")?;
    let (room, missing) = if let Some(room) = rest.strip_suffix(UNSAVED) {
        (room, Missing::Unsaved(count))
    } else {
        (rest.strip_suffix(DROPPED)?, Missing::Dropped(count))
    };
    Some(Error::HistoryIncomplete { room, missing })
}

/// The refusals of rooms and room operators (version 1.2).
fn recognise_room_error(error: &str) -> Option<Error<'_>> {
    if let Some(bare) = error.strip_prefix("not in #") {
        return Some(Error::NotIn(bare));
    }
    if let Some(bare) = error.strip_prefix("no such room #") {
        return Some(Error::NoSuchRoom(bare));
    }
    if let Some(bare) = error.strip_prefix("banned from #") {
        return Some(Error::BannedFrom(bare));
    }
    if let Some(room) = error.strip_prefix("not an operator of ") {
        return Some(Error::NotOperator { room });
    }
    if let Some(rest) = error.strip_prefix("too many rooms (max ") {
        let max = number(rest.strip_suffix(')')?)?;
        return Some(Error::TooManyRooms { max });
    }
    if let Some(rest) = error.strip_prefix("topic too long (max ") {
        let max = number(rest.strip_suffix(" bytes)")?)?;
        return Some(Error::TopicTooLong { max });
    }
    let (nick, _) = error.split_once(' ')?;
    if !is_valid_name(nick) {
        return None;
    }
    let rest = &error[nick.len()..];
    if rest == " is not logged in" {
        return Some(Error::NotLoggedIn(nick));
    }
    let room = |words: &str| rest.strip_prefix(words).filter(|room| is_room(room));
    if let Some(room) = room(" is not in ") {
        return Some(Error::UserNotInRoom { nick, room });
    }
    if let Some(room) = room(" is already an operator of ") {
        return Some(Error::AlreadyOperator { nick, room });
    }
    if let Some(room) = room(" is not an operator of ") {
        return Some(Error::TargetNotOperator { nick, room });
    }
    if let Some(room) = room(" is already banned from ") {
        return Some(Error::AlreadyBanned { nick, room });
    }
    room(" is not banned from ").map(|room| Error::NotBanned { nick, room })
}

/// ASCII digits as a number; `None` for anything else, and for a leading
/// zero (the server never writes one, so `007` is not a line it sends).
fn number(digits: &str) -> Option<usize> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests;
