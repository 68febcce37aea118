//! What the server sends once registration completes (Modern IRC
//! documents, "Connection Registration"): `001`–`004`, `005` (ISUPPORT)
//! lines, LUSERS (`251`–`255`), then the MOTD (`375`, `372`…, `376`) or
//! `422`. Rendered into the caller's buffer.

use super::numeric::{self, Numeric};
use crate::MAX_NAME_BYTES;

/// The longest topic (protocol 1.2, "Topics and room operators": 390
/// bytes), advertised as `TOPICLEN`.
pub const TOPICLEN: usize = 390;

/// The most ISUPPORT tokens on one `005` line (15 parameters less the
/// client and the text).
pub const ISUPPORT_PER_LINE: usize = 13;

/// What the server tells a client about itself at registration.
#[derive(Clone, Debug)]
pub struct ServerInfo<'a> {
    /// The server's name (`--server-name`): the source of numerics, `002`,
    /// `004`, `PONG`.
    pub server: &'a str,
    /// The network's name (`001`, ISUPPORT `NETWORK`).
    pub network: &'a str,
    /// The software and version (`002`, `004`).
    pub version: &'a str,
    /// When the server started, for `003`, as text.
    pub created: &'a str,
    /// `CHATHISTORY=N` (the most lines one request gives) once
    /// `draft/chathistory` is served; `None` leaves it out.
    pub chathistory: Option<usize>,
    /// The MOTD lines; empty sends `422`.
    pub motd: &'a [&'a str],
}

/// The counts LUSERS reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lusers {
    /// Registered users (IRC and line clients alike).
    pub users: usize,
    /// Of those, invisible (`+i`).
    pub invisible: usize,
    /// Server administrators online.
    pub operators: usize,
    /// Connections not registered yet.
    pub unknown: usize,
    /// Rooms with members.
    pub channels: usize,
}

/// The ISUPPORT tokens, in the order sent: ASCII only, `KEY` or
/// `KEY=VALUE`.
pub fn isupport_tokens(info: &ServerInfo<'_>) -> Vec<String> {
    let mut tokens = vec![
        "CASEMAPPING=ascii".to_owned(),
        "CHANTYPES=#".to_owned(),
        "PREFIX=(o)@".to_owned(),
        "CHANMODES=b,,,nt".to_owned(),
        format!("NICKLEN={MAX_NAME_BYTES}"),
        // The room name and its `#`.
        format!("CHANNELLEN={}", MAX_NAME_BYTES + 1),
        format!("TOPICLEN={TOPICLEN}"),
        format!("NETWORK={}", isupport_value(info.network)),
        "UTF8ONLY".to_owned(),
    ];
    if let Some(max) = info.chathistory {
        tokens.push(format!("CHATHISTORY={max}"));
        tokens.push("MSGREFTYPES=msgid,timestamp".to_owned());
    }
    tokens
}

/// An ISUPPORT value with the characters a token may not hold escaped
/// (`\x20` space, `\x5C` backslash, `\x3D` equals) and anything outside
/// printable ASCII dropped.
fn isupport_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            ' ' => out.push_str("\\x20"),
            '\\' => out.push_str("\\x5C"),
            '=' => out.push_str("\\x3D"),
            c if c.is_ascii_graphic() => out.push(c),
            _ => {}
        }
    }
    out
}

/// Appends the `005` lines: [`ISUPPORT_PER_LINE`] tokens at most on each.
pub fn write_isupport(out: &mut Vec<u8>, info: &ServerInfo<'_>, nick: &str) {
    let tokens = isupport_tokens(info);
    for chunk in tokens.chunks(ISUPPORT_PER_LINE) {
        let params: Vec<&str> = chunk.iter().map(String::as_str).collect();
        numeric::write(out, info.server, Numeric::ISupport, nick, &params, None);
    }
}

/// Appends LUSERS: `251`, `252`, `253`, `254`, `255`.
pub fn write_lusers(out: &mut Vec<u8>, server: &str, nick: &str, counts: Lusers) {
    let n = |value: usize| value.to_string();
    let text = numeric::luser_client_text(
        counts.users - counts.invisible.min(counts.users),
        counts.invisible,
        1,
    );
    numeric::write(out, server, Numeric::LuserClient, nick, &[], Some(&text));
    numeric::write(
        out,
        server,
        Numeric::LuserOp,
        nick,
        &[&n(counts.operators)],
        None,
    );
    numeric::write(
        out,
        server,
        Numeric::LuserUnknown,
        nick,
        &[&n(counts.unknown)],
        None,
    );
    numeric::write(
        out,
        server,
        Numeric::LuserChannels,
        nick,
        &[&n(counts.channels)],
        None,
    );
    let text = numeric::luser_me_text(counts.users, 0);
    numeric::write(out, server, Numeric::LuserMe, nick, &[], Some(&text));
}

/// Appends the MOTD (`375`, one `372` per line as `- LINE`, `376`), or
/// `422` when there is none.
pub fn write_motd(out: &mut Vec<u8>, info: &ServerInfo<'_>, nick: &str) {
    let server = info.server;
    if info.motd.is_empty() {
        numeric::write(out, server, Numeric::NoMotd, nick, &[], None);
        return;
    }
    let start = numeric::motd_start_text(server);
    numeric::write(out, server, Numeric::MotdStart, nick, &[], Some(&start));
    for line in info.motd {
        let line = format!("- {line}");
        numeric::write(out, server, Numeric::Motd, nick, &[], Some(&line));
    }
    numeric::write(out, server, Numeric::EndOfMotd, nick, &[], None);
}

/// Appends the whole welcome burst for `nick`: `001`–`004`, the `005`
/// lines, LUSERS and the MOTD, in the documents' order.
pub fn write_welcome(out: &mut Vec<u8>, info: &ServerInfo<'_>, nick: &str, counts: Lusers) {
    let server = info.server;
    let text = numeric::welcome_text(info.network, nick);
    numeric::write(out, server, Numeric::Welcome, nick, &[], Some(&text));
    let text = numeric::your_host_text(server, info.version);
    numeric::write(out, server, Numeric::YourHost, nick, &[], Some(&text));
    let text = numeric::created_text(info.created);
    numeric::write(out, server, Numeric::Created, nick, &[], Some(&text));
    // User modes: i; channel modes: b n o t; with a parameter: b o.
    let params = [server, info.version, "i", "bnot", "bo"];
    numeric::write(out, server, Numeric::MyInfo, nick, &params, None);
    write_isupport(out, info, nick);
    write_lusers(out, server, nick, counts);
    write_motd(out, info, nick);
}
