//! The welcome burst.

use super::parse;
use crate::irc::burst::{self, Lusers, ServerInfo};
use crate::irc::message::is_middle;

fn info<'a>(motd: &'a [&'a str], chathistory: Option<usize>) -> ServerInfo<'a> {
    ServerInfo {
        server: "loopchat",
        network: "loopchat",
        version: "loopchat-0.1.0",
        created: "2026-12-07T10:00:00Z",
        chathistory,
        motd,
    }
}

#[test]
fn the_welcome_burst_is_001_to_005_lusers_and_motd_in_order() {
    let mut out = Vec::new();
    let counts = Lusers {
        users: 3,
        invisible: 1,
        operators: 0,
        unknown: 2,
        channels: 1,
    };
    burst::write_welcome(&mut out, &info(&["be nice"], Some(100)), "alice", counts);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    let codes: Vec<&str> = lines.iter().map(|l| parse(l).command).collect();
    assert_eq!(
        codes,
        [
            "001", "002", "003", "004", "005", "251", "252", "253", "254", "255", "375", "372",
            "376"
        ]
    );
    assert_eq!(
        lines[0],
        ":loopchat 001 alice :Welcome to the loopchat Network, alice"
    );
    assert_eq!(
        lines[1],
        ":loopchat 002 alice :Your host is loopchat, running version loopchat-0.1.0"
    );
    assert_eq!(
        lines[2],
        ":loopchat 003 alice :This server was created 2026-12-07T10:00:00Z"
    );
    assert_eq!(
        lines[3],
        ":loopchat 004 alice loopchat loopchat-0.1.0 i bnot bo"
    );
    assert_eq!(
        lines[4],
        ":loopchat 005 alice CASEMAPPING=ascii CHANTYPES=# PREFIX=(o)@ CHANMODES=b,,,nt \
         NICKLEN=32 CHANNELLEN=33 TOPICLEN=390 NETWORK=loopchat UTF8ONLY CHATHISTORY=100 \
         MSGREFTYPES=msgid,timestamp :are supported by this server"
    );
    assert_eq!(
        lines[5],
        ":loopchat 251 alice :There are 2 users and 1 invisible on 1 servers"
    );
    assert_eq!(lines[6], ":loopchat 252 alice 0 :operator(s) online");
    assert_eq!(lines[7], ":loopchat 253 alice 2 :unknown connection(s)");
    assert_eq!(lines[8], ":loopchat 254 alice 1 :channels formed");
    assert_eq!(
        lines[9],
        ":loopchat 255 alice :I have 3 clients and 0 servers"
    );
    assert_eq!(
        lines[10],
        ":loopchat 375 alice :- loopchat Message of the day - "
    );
    assert_eq!(lines[11], ":loopchat 372 alice :- be nice");
    assert_eq!(lines[12], ":loopchat 376 alice :End of /MOTD command.");
}

#[test]
fn no_motd_is_422_and_isupport_stays_within_the_limits() {
    let mut out = Vec::new();
    burst::write_motd(&mut out, &info(&[], None), "alice");
    assert_eq!(out, b":loopchat 422 alice :MOTD File is missing\r\n");
    let tokens = burst::isupport_tokens(&info(&[], None));
    assert!(!tokens.iter().any(|t| t.starts_with("CHATHISTORY")));
    let odd = ServerInfo {
        network: "my net=1\\é",
        ..info(&[], None)
    };
    let tokens = burst::isupport_tokens(&odd);
    assert!(tokens.contains(&"NETWORK=my\\x20net\\x3D1\\x5C".to_owned()));
    for token in &tokens {
        assert!(token.is_ascii() && is_middle(token), "{token}");
    }
    assert!(tokens.len() <= burst::ISUPPORT_PER_LINE);
}
