//! Shared helpers for the integration tests: start a real server on
//! 127.0.0.1:0 in-process and talk to it over real sockets, with every read
//! bounded by a timeout (never a sleep).

#![allow(dead_code)]

use loopchat::{Config, RunningServer, Server};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a test waits for a line it expects before failing.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a server with default settings on a free port.
pub fn start() -> RunningServer {
    start_with(|_| {})
}

/// Starts a server on a free port after `adjust` changed its settings.
pub fn start_with(adjust: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = Config::ephemeral();
    adjust(&mut config);
    Server::bind(config)
        .and_then(Server::spawn)
        .expect("server starts")
}

/// A test client: a blocking socket with a line reader and a timeout.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
    /// The guest nick from the welcome line, when it was read.
    pub nick: String,
}

impl Client {
    /// Connects without reading anything.
    pub fn connect_raw(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let writer = stream.try_clone().expect("clone");
        Client {
            reader: BufReader::new(stream),
            writer,
            nick: String::new(),
        }
    }

    /// Connects and reads the welcome and own join line (no password).
    pub fn connect(addr: SocketAddr) -> Client {
        let mut client = Client::connect_raw(addr);
        let welcome = client.line();
        let nick = welcome
            .strip_prefix("* welcome ")
            .unwrap_or_else(|| panic!("expected a welcome, got {welcome:?}"))
            .to_string();
        client.expect(&format!("* {nick} joined #lobby"));
        client.nick = nick;
        client
    }

    /// Connects, then renames itself to `nick` and reads the rename line.
    pub fn named(addr: SocketAddr, nick: &str) -> Client {
        let mut client = Client::connect(addr);
        client.send(&format!(":nick {nick}"));
        client.expect(&format!("* {} is now known as {nick}", client.nick));
        client.nick = nick.to_string();
        client
    }

    /// Sends one line (a `\n` is added).
    pub fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes());
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send");
    }

    /// The next line, without its `\n`. Panics on timeout or close.
    pub fn line(&mut self) -> String {
        match self.try_line() {
            Ok(Some(line)) => line,
            Ok(None) => panic!("connection closed while a line was expected"),
            Err(err) => panic!("no line within {READ_TIMEOUT:?}: {err}"),
        }
    }

    /// The next line; `Ok(None)` when the server closed the connection.
    pub fn try_line(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        assert_eq!(buf.pop(), Some(b'\n'), "line without newline: {buf:?}");
        Ok(Some(String::from_utf8(buf).expect("server sends UTF-8")))
    }

    /// Reads one line and asserts it is exactly `expected`.
    pub fn expect(&mut self, expected: &str) {
        let got = self.line();
        assert_eq!(got, expected);
    }

    /// Reads lines until one equals `expected`; returns the lines before it.
    pub fn skip_until(&mut self, expected: &str) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            let line = self.line();
            if line == expected {
                return skipped;
            }
            skipped.push(line);
        }
    }

    /// Asserts that the server closes the connection next, with no more lines.
    pub fn expect_closed(&mut self) {
        match self.try_line() {
            Ok(None) => {}
            Ok(Some(line)) => panic!("expected close, got {line:?}"),
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {}
            Err(err) => panic!("expected close, got {err}"),
        }
    }

    /// Round trip through the server: everything sent before is handled, and
    /// every line the server queued for us before the pong is returned.
    pub fn sync(&mut self) -> Vec<String> {
        self.send(":ping sync");
        self.skip_until("* pong sync")
    }

    /// Shuts down our sending side (like `nc -N`).
    pub fn half_close(&mut self) {
        self.writer.shutdown(Shutdown::Write).expect("shutdown");
    }

    /// Reads everything until the server closes; for tests that expect a
    /// disconnect after some lines.
    pub fn read_to_close(&mut self) -> Vec<String> {
        let mut rest = String::new();
        let _ = self.reader.read_to_string(&mut rest);
        rest.lines().map(str::to_string).collect()
    }
}

/// Waits until `check` holds, polling; for state the server exposes only
/// through the OS (e.g. /proc). Panics after `limit`.
pub fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "condition not met within {limit:?}");
        std::thread::yield_now();
    }
}
