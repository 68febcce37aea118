//! The limits every client has, for IRC clients: a line client's long
//! line split for IRC at character boundaries, the output bound (an IRC
//! client that stops reading is cut off), flood control.

use crate::client::{irc_addr, start_with, Irc, SERVER};
use crate::common::{Client, Lines};
use std::time::{Duration, Instant};

/// A line client's line longer than an IRC message allows reaches IRC
/// clients as several PRIVMSGs, each within 512 bytes, split between
/// characters, which joined are the line.
#[test]
fn a_long_line_reaches_irc_split_at_character_boundaries() {
    let server = start_with(|_| {});
    let mut bob = Client::named(server.addr(), "bob");
    bob.send(":join #rust");
    bob.sync();
    let mut alice = Irc::register(irc_addr(&server), "alice");
    alice.ask("JOIN #rust");
    let text: String = "é€x".repeat(300); // 6 bytes a time, 1800 bytes
    bob.send(&text);
    let prefix = format!(":bob!bob@{SERVER} PRIVMSG #rust :");
    let mut got = String::new();
    let mut messages = 0;
    while got.len() < text.len() {
        let line = alice.line();
        let piece = line
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{line}"));
        got.push_str(piece);
        messages += 1;
    }
    assert_eq!(got, text);
    assert!(messages >= 4, "{messages} messages for 1800 bytes");
}

/// An IRC client that stops reading is cut off once its queue passes the
/// output bound, like any client: the channel hears it leave, too slow.
#[test]
fn an_irc_client_that_stops_reading_is_cut_off() {
    let server = start_with(|config| {
        config.flood = loopchat::policy::limits::FloodLimit::OFF;
        config.max_outbuf_bytes = 64 * 1024;
        config.send_buffer_bytes = 4096;
    });
    let mut stuck = Irc::register(irc_addr(&server), "stuck");
    stuck.ask("JOIN #flood");
    let mut bob = Client::named(server.addr(), "bob");
    bob.send(":join #flood");
    bob.expect("* bob joined #flood");
    // Never read again. Bob floods: at most 64 MiB, far past any buffer.
    let line = "z".repeat(1000);
    let started = Instant::now();
    let mut sent = 0;
    let left = loop {
        for _ in 0..64 {
            bob.send(&line);
        }
        sent += 64;
        bob.send(":ping mark");
        let lines = bob.skip_until("* pong mark");
        if let Some(left) = lines.into_iter().find(|l| l.starts_with("* stuck left")) {
            break left;
        }
        assert!(sent < 65_536, "still not cut off after {sent} lines");
        assert!(started.elapsed() < Duration::from_secs(60));
    };
    assert_eq!(left, "* stuck left #flood (too slow)");
}
