//! `draft/chathistory` (IRCv3, work in progress): the `CHATHISTORY`
//! command read into a typed request, its `FAIL` answers, and the reply
//! rendered as a `chathistory` batch.
//!
//! ```text
//! CHATHISTORY LATEST  <target> <* | msgref> <limit>
//! CHATHISTORY BEFORE  <target> <msgref> <limit>
//! CHATHISTORY AFTER   <target> <msgref> <limit>
//! CHATHISTORY AROUND  <target> <msgref> <limit>
//! CHATHISTORY BETWEEN <target> <msgref> <msgref> <limit>
//! msgref: msgid=<room line id> | timestamp=YYYY-MM-DDThh:mm:ss.sssZ
//! ```
//!
//! The reply is `BATCH +ID chathistory <target>`, one `PRIVMSG` per line,
//! oldest first, each tagged `batch=ID` (with `batch`), `time=…` (with
//! `server-time`) and `msgid=…` (with `message-tags`), then `BATCH -ID`;
//! an empty batch when there is nothing. `TARGETS` is not served
//! (`FAIL CHATHISTORY UNKNOWN_COMMAND TARGETS`).

use super::caps::{Cap, CapSet};
use super::message::Message;
use super::text;
use crate::tags::{parse_time_ms, write_time_ms};

/// Where a query starts or ends: a message by its id, or a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgRef {
    /// `msgid=N`: the room line whose `id` (and IRC `msgid`) is N.
    Id(i64),
    /// `timestamp=…`: Unix milliseconds.
    Time(i64),
}

impl MsgRef {
    /// Reads `msgid=N` or `timestamp=YYYY-MM-DDThh:mm:ss.sssZ`.
    pub fn parse(text: &str) -> Option<MsgRef> {
        if let Some(id) = text.strip_prefix("msgid=") {
            let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
            return valid.then(|| id.parse().ok().map(MsgRef::Id)).flatten();
        }
        text.strip_prefix("timestamp=")
            .and_then(parse_time_ms)
            .map(MsgRef::Time)
    }
}

/// Which lines a request selects (before its limit is applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The newest lines; with a reference, only those after it.
    Latest(Option<MsgRef>),
    /// The lines just before the reference.
    Before(MsgRef),
    /// The lines just after the reference.
    After(MsgRef),
    /// Lines on both sides of the reference (the referenced one included).
    Around(MsgRef),
    /// The lines strictly between the two, counted from the first: the
    /// oldest when the first is the older, the newest otherwise.
    Between(MsgRef, MsgRef),
}

/// A well-formed `CHATHISTORY` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The subcommand as sent (for `FAIL` parameters).
    pub subcommand: &'a str,
    /// The channel (or nick) asked about, as sent.
    pub target: &'a str,
    /// What to select.
    pub selector: Selector,
    /// The most lines wanted: at least 1, at most the server's maximum.
    pub limit: usize,
}

/// A `CHATHISTORY` request refused before any history is read: rendered
/// as the `FAIL` the specification gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail<'a> {
    /// `FAIL CHATHISTORY NEED_MORE_PARAMS <subcommand> :Missing parameters`.
    NeedMoreParams(&'a str),
    /// `FAIL CHATHISTORY UNKNOWN_COMMAND <subcommand> :Unknown command`.
    UnknownCommand(&'a str),
    /// `FAIL CHATHISTORY INVALID_PARAMS <subcommand> <param> :…`: a message
    /// reference or a limit that cannot be read.
    InvalidParams(&'a str, &'a str),
    /// `FAIL CHATHISTORY INVALID_TARGET <subcommand> <target> :…`: not a
    /// channel the client may read.
    InvalidTarget(&'a str, &'a str),
    /// `FAIL CHATHISTORY MESSAGE_ERROR <subcommand> <target> :…`: the
    /// history could not be read now (the file, or the reader is busy).
    MessageError(&'a str, &'a str),
}

impl Fail<'_> {
    /// Appends the `FAIL` line, from `server`.
    pub fn write(&self, server: &str, out: &mut Vec<u8>) {
        let (code, params, text): (&str, &[&str], &str) = match self {
            Fail::NeedMoreParams(sub) => ("NEED_MORE_PARAMS", &[sub], "Missing parameters"),
            Fail::UnknownCommand(sub) => ("UNKNOWN_COMMAND", &[sub], "Unknown command"),
            Fail::InvalidParams(sub, param) => {
                ("INVALID_PARAMS", &[sub, param], "Invalid parameters")
            }
            Fail::InvalidTarget(sub, target) => (
                "INVALID_TARGET",
                &[sub, target],
                "Messages could not be retrieved",
            ),
            Fail::MessageError(sub, target) => (
                "MESSAGE_ERROR",
                &[sub, target],
                "Messages could not be retrieved",
            ),
        };
        let mut all = vec!["CHATHISTORY", code];
        all.extend(params.iter().map(|param| middle_or_star(param)));
        all.push(text);
        Message::new("FAIL", &all)
            .from_source(server)
            .with_trailing()
            .write(out);
    }
}

/// A parameter echoed in a `FAIL` as a middle parameter (a client's bytes
/// may hold a `:` first, or be empty).
fn middle_or_star(param: &str) -> &str {
    if super::message::is_middle(param) {
        param
    } else {
        "*"
    }
}

/// Reads a `CHATHISTORY` message (its parameters after the command) into a
/// request; `max` is the server's limit (`CHATHISTORY=max`): a larger
/// limit is lowered to it, 0 or a non-number is refused.
pub fn parse<'a>(message: &Message<'a>, max: usize) -> Result<Request<'a>, Fail<'a>> {
    let params = message.params.as_slice();
    let Some(&subcommand) = params.first() else {
        return Err(Fail::NeedMoreParams("*"));
    };
    let refs = match subcommand.to_ascii_uppercase().as_str() {
        "LATEST" | "BEFORE" | "AFTER" | "AROUND" => 1,
        "BETWEEN" => 2,
        _ => return Err(Fail::UnknownCommand(subcommand)),
    };
    // Subcommand, target, the references, the limit.
    if params.len() < 3 + refs {
        return Err(Fail::NeedMoreParams(subcommand));
    }
    let target = params[1];
    let read_ref =
        |param: &'a str| MsgRef::parse(param).ok_or(Fail::InvalidParams(subcommand, param));
    let limit_param = params[2 + refs];
    let limit = match limit_param.parse::<usize>() {
        Ok(limit) if limit > 0 && limit_param.bytes().all(|b| b.is_ascii_digit()) => {
            limit.min(max.max(1))
        }
        _ => return Err(Fail::InvalidParams(subcommand, limit_param)),
    };
    let selector = match subcommand.to_ascii_uppercase().as_str() {
        "LATEST" if params[2] == "*" => Selector::Latest(None),
        "LATEST" => Selector::Latest(Some(read_ref(params[2])?)),
        "BEFORE" => Selector::Before(read_ref(params[2])?),
        "AFTER" => Selector::After(read_ref(params[2])?),
        "AROUND" => Selector::Around(read_ref(params[2])?),
        _ => Selector::Between(read_ref(params[2])?, read_ref(params[3])?),
    };
    Ok(Request {
        subcommand,
        target,
        selector,
        limit,
    })
}

/// One history line as IRC shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// Its room line `id`: the `msgid` tag.
    pub id: i64,
    /// When it was accepted, Unix milliseconds: the `time` tag.
    pub time_ms: i64,
    /// Who sent it.
    pub nick: &'a str,
    /// What they said (for an action, the action's text).
    pub text: &'a str,
    /// A `:me` (sent as CTCP `ACTION`).
    pub action: bool,
}

impl<'a> Line<'a> {
    /// A line as history keeps it (as the line dialect delivered it:
    /// `NICK: TEXT`, or `* NICK TEXT` for `:me`), with its id and time.
    /// `None` for anything else.
    pub fn from_delivered(id: i64, time_ms: i64, delivered: &'a str) -> Option<Line<'a>> {
        if let Some(rest) = delivered.strip_prefix("* ") {
            let (nick, text) = rest.split_once(' ').unwrap_or((rest, ""));
            return (!nick.is_empty()).then_some(Line {
                id,
                time_ms,
                nick,
                text,
                action: true,
            });
        }
        let (nick, text) = delivered.split_once(": ")?;
        let valid = !nick.is_empty() && !nick.contains([' ', ':']);
        valid.then_some(Line {
            id,
            time_ms,
            nick,
            text,
            action: false,
        })
    }
}

/// How a `chathistory` batch is rendered for one client.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// The server's name: the source of `BATCH`.
    pub server: &'a str,
    /// The batch's reference tag, unique on the connection.
    pub id: &'a str,
    /// The channel, as the client named it.
    pub target: &'a str,
    /// The client's caps: `batch`, `server-time`, `message-tags` decide
    /// which tags the lines carry (without `batch`, no `BATCH` lines).
    pub caps: CapSet,
}

/// Appends the reply to a `CHATHISTORY` request: `lines` (oldest first)
/// as `PRIVMSG`s from `nick!nick@server`, split to fit 512 bytes as live
/// lines are, in a `chathistory` batch when the client has `batch`.
pub fn write_batch<'l>(
    batch: &Batch<'_>,
    lines: impl IntoIterator<Item = Line<'l>>,
    out: &mut Vec<u8>,
) {
    let batched = batch.caps.contains(Cap::Batch);
    if batched {
        let open = format!("+{}", batch.id);
        Message::new("BATCH", &[&open, "chathistory", batch.target])
            .from_source(batch.server)
            .write(out);
    }
    let mut tags = Vec::new();
    let mut piece_out = Vec::new();
    for line in lines {
        tags.clear();
        if batched {
            tags.extend_from_slice(b"batch=");
            tags.extend_from_slice(batch.id.as_bytes());
        }
        if batch.caps.contains(Cap::ServerTime) {
            push_sep(&mut tags);
            tags.extend_from_slice(b"time=");
            write_time_ms(line.time_ms, &mut tags);
        }
        if batch.caps.contains(Cap::MessageTags) {
            push_sep(&mut tags);
            tags.extend_from_slice(format!("msgid={}", line.id).as_bytes());
        }
        let source = format!("{}!{}@{}", line.nick, line.nick, batch.server);
        piece_out.clear();
        if line.action {
            text::write_action_messages(&mut piece_out, &source, batch.target, line.text);
        } else {
            text::write_text_messages(&mut piece_out, &source, "PRIVMSG", batch.target, line.text);
        }
        // Each message the line became gets the tags.
        for message in piece_out.split_inclusive(|&b| b == b'\n') {
            if !tags.is_empty() {
                out.push(b'@');
                out.extend_from_slice(&tags);
                out.push(b' ');
            }
            out.extend_from_slice(message);
        }
    }
    if batched {
        let close = format!("-{}", batch.id);
        Message::new("BATCH", &[&close])
            .from_source(batch.server)
            .write(out);
    }
}

fn push_sep(tags: &mut Vec<u8>) {
    if !tags.is_empty() {
        tags.push(b';');
    }
}
