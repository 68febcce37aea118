//! IRCv3 over real sockets (`docs/irc.md`, "IRCv3"): each capability's
//! behaviour, `draft/chathistory` replies in their batch (from memory and
//! from a real history file), SASL `PLAIN` through the accounts' worker,
//! and IRC over WebSocket with both subprotocols in both orders. The test
//! IRC client is `tests/irc/client.rs`'s.
//!
//! - `ircv3/caps.rs`: `CAP LS`, tags (`server-time`, `message-tags`),
//!   `echo-message`, `multi-prefix`, `userhost-in-names`;
//! - `ircv3/labels.rs`: `labeled-response` (one message, `ACK`, a batch,
//!   a `chathistory` batch nested in it);
//! - `ircv3/chathistory.rs`: every subcommand, msgid and timestamp
//!   references, the batch, the `FAIL`s, the file behind the tails;
//! - `ircv3/sasl.rs`: `AUTHENTICATE PLAIN` before and after registration,
//!   `900`/`903`, `904`, `906`, `907`, `908`;
//! - `ircv3/websocket.rs`: `text.ircv3.net` and `binary.ircv3.net`.

mod common;
mod ws_support;

#[path = "ircv3/caps.rs"]
mod caps;
#[path = "ircv3/chathistory.rs"]
mod chathistory;
#[path = "irc/client.rs"]
mod client;
#[path = "ircv3/labels.rs"]
mod labels;
#[path = "ircv3/sasl.rs"]
mod sasl;
#[path = "ircv3/websocket.rs"]
mod websocket;

use client::{Irc, SERVER};

/// Registers `nick` after requesting `caps` (space-separated) with
/// `CAP LS 302`/`CAP REQ`/`CAP END`, as irssi and WeeChat do; returns the
/// client past its welcome burst.
pub fn with_caps(addr: std::net::SocketAddr, nick: &str, caps: &str) -> Irc {
    let mut irc = Irc::connect(addr);
    irc.send("CAP LS 302");
    irc.send(&format!("NICK {nick}"));
    irc.send(&format!("USER {nick} 0 * :{nick}"));
    let ls = irc.line();
    assert!(ls.starts_with(&format!(":{SERVER} CAP * LS :")), "{ls}");
    irc.send(&format!("CAP REQ :{caps}"));
    irc.expect(&format!(":{SERVER} CAP * ACK :{caps}"));
    irc.send("CAP END");
    irc.until(&format!(":{SERVER} 422 {nick} :MOTD File is missing"));
    irc.nick = nick.to_string();
    irc
}

/// The tags of a message line (`@a=1;b=2 rest`), and the rest.
pub fn split_tags(line: &str) -> (Vec<(String, String)>, &str) {
    let Some(tagged) = line.strip_prefix('@') else {
        return (Vec::new(), line);
    };
    let (tags, rest) = tagged.split_once(' ').expect("tags then a message");
    let tags = tags
        .split(';')
        .map(|tag| {
            let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
            (key.to_string(), value.to_string())
        })
        .collect();
    (tags, rest)
}

/// The value of tag `key` in `line`.
pub fn tag(line: &str, key: &str) -> Option<String> {
    split_tags(line)
        .0
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}
