//! IRC over WebSocket on the web address (IRCv3 `websocket`): an upgrade
//! on `/` or `/ws` offering `text.ircv3.net` or `binary.ircv3.net` speaks
//! IRC (the first the client lists); without them the page's line
//! protocol. Text frames for `text.ircv3.net`, binary for the other.

use crate::client::{start, SERVER};
use crate::common::{Client, Lines};
use crate::ws_support::{http_request, masked_frame, SAMPLE_KEY};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// An IRC client over WebSocket: frames in, frames out.
struct WsIrc {
    stream: TcpStream,
    buf: Vec<u8>,
    binary: bool,
}

impl WsIrc {
    /// Upgrades at `path` offering `protocols`; checks the subprotocol the
    /// server chose.
    fn connect(addr: SocketAddr, path: &str, protocols: &str, chosen: &str) -> WsIrc {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: {protocols}\r\n\r\n"
        );
        let (head, rest, stream) = http_request(addr, &request);
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert!(
            head.contains(&format!("\r\nSec-WebSocket-Protocol: {chosen}\r\n")),
            "{head}"
        );
        WsIrc {
            stream,
            buf: rest,
            binary: chosen == "binary.ircv3.net",
        }
    }

    fn send(&mut self, line: &str) {
        let first = if self.binary { 0x82 } else { 0x81 };
        let frame = masked_frame(first, line.as_bytes());
        self.stream.write_all(&frame).unwrap();
    }

    /// The next message: one frame, text or binary as the subprotocol says.
    fn line(&mut self) -> String {
        loop {
            if self.buf.len() >= 2 {
                let len = usize::from(self.buf[1] & 0x7f);
                let (start, len) = match len {
                    126 if self.buf.len() >= 4 => (
                        4,
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                    ),
                    126 => (usize::MAX, 0),
                    n => (2, n),
                };
                if start != usize::MAX && self.buf.len() >= start + len {
                    let opcode = self.buf[0];
                    let want = if self.binary { 0x82 } else { 0x81 };
                    assert_eq!(opcode, want, "frame type");
                    let payload = self.buf[start..start + len].to_vec();
                    self.buf.drain(..start + len);
                    let text = String::from_utf8(payload).unwrap();
                    assert!(!text.ends_with('\n'), "one message a frame, no line end");
                    return text;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .stream
                .read(&mut chunk)
                .expect("a frame within the timeout");
            assert!(n > 0, "closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn until(&mut self, expected: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let line = self.line();
            if line == expected {
                return before;
            }
            before.push(line);
        }
    }
}

/// Both subprotocols, both orders, on `/` and `/ws`: the client registers,
/// joins, and exchanges messages with a line client.
#[test]
fn irc_over_websocket_with_both_subprotocols_in_both_orders() {
    let server = start();
    let web = server.web_addr().expect("web address");
    let cases = [
        ("/", "text.ircv3.net", "text.ircv3.net"),
        ("/ws", "binary.ircv3.net", "binary.ircv3.net"),
        ("/ws", "text.ircv3.net, binary.ircv3.net", "text.ircv3.net"),
        ("/", "binary.ircv3.net, text.ircv3.net", "binary.ircv3.net"),
    ];
    let mut line = Client::named(server.addr(), "liner");
    line.send(":join #web");
    line.expect("* liner joined #web");
    for (i, (path, offered, chosen)) in cases.into_iter().enumerate() {
        let nick = format!("ws{i}");
        let mut ws = WsIrc::connect(web, path, offered, chosen);
        ws.send(&format!("NICK {nick}"));
        ws.send(&format!("USER {nick} 0 * :{nick}"));
        ws.until(&format!(":{SERVER} 422 {nick} :MOTD File is missing"));
        ws.send("JOIN #web");
        ws.until(&format!(":{SERVER} 366 {nick} #web :End of /NAMES list"));
        line.expect(&format!("* {nick} joined #web"));
        ws.send(&format!("PRIVMSG #web :hello over {chosen}"));
        line.expect(&format!("{nick}: hello over {chosen}"));
        line.send("hello back");
        assert_eq!(
            ws.line(),
            format!(":liner!liner@{SERVER} PRIVMSG #web :hello back")
        );
        ws.send("QUIT :done");
        line.expect(&format!("* {nick} left #web (done)"));
    }
}

/// The page's own WebSocket (no subprotocol) keeps the line protocol.
#[test]
fn without_an_irc_subprotocol_the_websocket_speaks_the_line_protocol() {
    let server = start();
    let web = server.web_addr().expect("web address");
    let ws = crate::ws_support::RawWs::connect(web);
    assert!(ws.nick.starts_with("guest"));
}

/// Binary frames with bytes that are not UTF-8 get IRC's answer
/// (`UTF8ONLY`: a `FAIL … INVALID_UTF8`), not a close.
#[test]
fn binary_frames_that_are_not_utf8_get_irc_s_answer() {
    let server = start();
    let web = server.web_addr().expect("web address");
    let mut ws = WsIrc::connect(web, "/ws", "binary.ircv3.net", "binary.ircv3.net");
    ws.send("NICK bin");
    ws.send("USER bin 0 * :bin");
    ws.until(&format!(":{SERVER} 422 bin :MOTD File is missing"));
    let frame = masked_frame(0x82, b"PRIVMSG #x :\xff\xfe");
    ws.stream.write_all(&frame).unwrap();
    let answer = ws.line();
    assert!(answer.contains("FAIL PRIVMSG INVALID_UTF8"), "{answer}");
}
