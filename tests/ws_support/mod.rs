//! WebSocket helpers for the integration tests: a raw client that writes
//! frames byte by byte (so it can break every rule on purpose) and reads the
//! server's frames with a timeout, and a tungstenite client.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a test waits for a frame it expects.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The key of RFC 6455's example handshake, and its accept value.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `Sec-WebSocket-Accept` for [`SAMPLE_KEY`].
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Opcodes (first byte without FIN).
pub const CONT: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;
pub const FIN: u8 = 0x80;

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    pub first: u8,
    pub payload: Vec<u8>,
}

impl ServerFrame {
    pub fn opcode(&self) -> u8 {
        self.first & 0x0f
    }
    pub fn text(&self) -> String {
        assert_eq!(self.first, FIN | TEXT, "expected a text frame: {self:?}");
        String::from_utf8(self.payload.clone()).expect("server text is UTF-8")
    }
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode() == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Sends an HTTP request and reads the response head (and what follows it
/// in the same reads). Returns the head and the stream.
pub fn http_request(addr: SocketAddr, request: &str) -> (String, Vec<u8>, TcpStream) {
    let mut stream = TcpStream::connect(addr).expect("connect to the web address");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.write_all(request.as_bytes()).expect("send request");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return (String::from_utf8(buf).unwrap(), rest, stream);
        }
        let n = stream
            .read(&mut chunk)
            .expect("response within the timeout");
        assert!(n > 0, "closed before a response head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads everything until the server closes; returns the whole response.
pub fn http_response(addr: SocketAddr, request: &str) -> String {
    let (head, mut body, mut stream) = http_request(addr, request);
    stream.read_to_end(&mut body).expect("body until close");
    head + &String::from_utf8_lossy(&body)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An upgrade request for `/ws` with extra header lines.
pub fn upgrade_request(addr: SocketAddr, extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A WebSocket client that writes raw frames.
pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub nick: String,
}

impl RawWs {
    /// Upgrades without reading anything after the `101`.
    pub fn connect_raw(addr: SocketAddr) -> RawWs {
        let (head, rest, stream) = http_request(addr, &upgrade_request(addr, ""));
        assert!(head.starts_with("HTTP/1.1 101 "), "upgrade refused: {head}");
        RawWs {
            stream,
            buf: rest,
            nick: String::new(),
        }
    }

    /// Upgrades and reads the welcome and own join.
    pub fn connect(addr: SocketAddr) -> RawWs {
        let mut ws = RawWs::connect_raw(addr);
        let welcome = ws.text();
        let nick = welcome
            .strip_prefix("* welcome ")
            .unwrap_or_else(|| panic!("expected a welcome, got {welcome:?}"))
            .to_string();
        assert_eq!(ws.text(), format!("* {nick} joined #lobby"));
        ws.nick = nick;
        ws
    }

    /// Sends one masked frame: `first` is FIN/RSV/opcode.
    pub fn frame(&mut self, first: u8, payload: &[u8]) {
        let bytes = masked_frame(first, payload);
        self.raw(&bytes);
    }

    /// Sends bytes as they are.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends one text message (one frame).
    pub fn send(&mut self, text: &str) {
        self.frame(FIN | TEXT, text.as_bytes());
    }

    /// The next frame; `None` when the server closed the TCP connection.
    pub fn next(&mut self) -> Option<ServerFrame> {
        self.try_next().expect("a frame within the timeout")
    }

    /// The next frame, or the read error.
    pub fn try_next(&mut self) -> io::Result<Option<ServerFrame>> {
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; 65536];
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => 0,
                Err(err) => return Err(err),
            };
            if n == 0 {
                assert!(self.buf.is_empty(), "closed inside a frame: {:?}", self.buf);
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next frame, which must be a text frame.
    pub fn text(&mut self) -> String {
        match self.next() {
            Some(frame) => frame.text(),
            None => panic!("closed while a text frame was expected"),
        }
    }

    /// Reads text frames until one equals `expected`; returns those before.
    pub fn skip_until(&mut self, expected: &str) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            let text = self.text();
            if text == expected {
                return skipped;
            }
            skipped.push(text);
        }
    }

    /// Round trip: every frame the server sent before answering `:ping sync`.
    pub fn sync(&mut self) -> Vec<ServerFrame> {
        self.send(":ping sync");
        let mut before = Vec::new();
        loop {
            let frame = self.next().expect("open while syncing");
            if frame.first == FIN | TEXT && frame.payload == b"* pong sync" {
                return before;
            }
            before.push(frame);
        }
    }

    /// The next frame is a close with `code`, and then the server ends the
    /// TCP connection once we answer with our close.
    pub fn expect_close(&mut self, code: u16) {
        let frame = self
            .next()
            .expect("a close frame, not the end of the stream");
        assert_eq!(
            frame.opcode(),
            CLOSE,
            "expected close {code}, got {frame:?}"
        );
        assert_eq!(frame.close_code(), Some(code), "close code");
        self.frame(FIN | CLOSE, &code.to_be_bytes());
        assert_eq!(self.next(), None, "nothing after the close frame");
    }
}

/// A masked client frame.
pub fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loopchat::net::ws::masked_frame(&mut out, first, [0x37, 0xfa, 0x21, 0x3d], payload);
    out
}

/// Parses one unmasked server frame; `None` until it is complete.
fn parse_server_frame(buf: &[u8]) -> Option<(ServerFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "server frames are unmasked");
    let (len, at) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((
        ServerFrame {
            first: buf[0],
            payload,
        },
        at + len,
    ))
}

/// A tungstenite client over a blocking socket, with a read timeout.
pub type Tung = tungstenite::WebSocket<TcpStream>;

/// A tungstenite upgrade request for `url` (`ws://HOST/ws` or
/// `wss://HOST/ws`) sent from a page at `origin`.
pub fn upgrade_to(url: &str, origin: &str) -> tungstenite::http::Request<()> {
    let host = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .expect("a URL with a host");
    tungstenite::http::Request::builder()
        .uri(url)
        .header("Host", host)
        .header("Origin", origin)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header(
            "Sec-WebSocket-Key",
            tungstenite::handshake::client::generate_key(),
        )
        .body(())
        .unwrap()
}

/// Connects a tungstenite client to `/ws` with an Origin of the page's own.
pub fn tungstenite_client(addr: SocketAddr) -> Tung {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    let request = upgrade_to(&format!("ws://{addr}/ws"), &format!("http://{addr}"));
    let (ws, response) = tungstenite::client(request, stream).expect("handshake");
    assert_eq!(response.status(), 101);
    ws
}

/// The next text message.
pub fn tung_text(ws: &mut Tung) -> String {
    loop {
        match ws.read().expect("a message within the timeout") {
            tungstenite::Message::Text(text) => return text.as_str().to_string(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Reads the welcome and own join; returns the nick.
pub fn tung_welcome(ws: &mut Tung) -> String {
    let welcome = tung_text(ws);
    let nick = welcome
        .strip_prefix("* welcome ")
        .expect("welcome")
        .to_string();
    assert_eq!(tung_text(ws), format!("* {nick} joined #lobby"));
    nick
}

/// Sends one text message.
pub fn tung_send(ws: &mut Tung, text: &str) {
    ws.send(tungstenite::Message::text(text)).expect("send");
}
