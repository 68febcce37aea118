//! The test IRC client: raw IRC lines over a blocking socket, every read
//! bounded by [`READ_TIMEOUT`].

use crate::common::{self, READ_TIMEOUT};
use loopchat::{Config, RunningServer};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

/// The server name the tests' servers use, so the tests show it is a
/// setting and not a constant.
pub const SERVER: &str = "irc.test";

/// Starts a server with IRC on a free port, named [`SERVER`], after
/// `adjust`.
pub fn start_with(adjust: impl FnOnce(&mut Config)) -> RunningServer {
    common::start_with(|config| {
        config.server_name = SERVER.to_string();
        adjust(config);
    })
}

/// [`start_with`] with nothing adjusted.
pub fn start() -> RunningServer {
    start_with(|_| {})
}

/// The IRC address of `server`.
pub fn irc_addr(server: &RunningServer) -> SocketAddr {
    server.irc_addr().expect("the IRC address is on")
}

/// An IRC client of the tests.
pub struct Irc {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// Its nick once registered.
    pub nick: String,
    pings: u32,
}

impl Irc {
    /// Connects without sending anything.
    pub fn connect(addr: SocketAddr) -> Irc {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let writer = stream.try_clone().unwrap();
        Irc {
            reader: BufReader::new(stream),
            writer,
            nick: "*".to_string(),
            pings: 0,
        }
    }

    /// Connects, registers as `nick` (NICK, USER) and reads the welcome
    /// burst to its end (`422`: the tests' servers have no MOTD).
    pub fn register(addr: SocketAddr, nick: &str) -> Irc {
        let mut irc = Irc::connect(addr);
        irc.send(&format!("NICK {nick}"));
        irc.send(&format!("USER {nick} 0 * :{nick} the tester"));
        irc.until(&format!(":{SERVER} 422 {nick} :MOTD File is missing"));
        irc.nick = nick.to_string();
        irc
    }

    /// Sends one line; CR LF is added.
    pub fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\r\n").as_bytes());
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send");
    }

    /// The next line, without its CR LF; `Ok(None)` when the server closed.
    pub fn try_line(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        assert!(buf.ends_with(b"\r\n"), "not CR LF: {buf:?}");
        buf.truncate(buf.len() - 2);
        assert!(buf.len() <= 510, "over 512 bytes: {}", buf.len());
        Ok(Some(String::from_utf8(buf).expect("UTF-8")))
    }

    /// The next line; panics on a timeout or a close.
    pub fn line(&mut self) -> String {
        match self.try_line() {
            Ok(Some(line)) => line,
            Ok(None) => panic!("{}: closed while a line was expected", self.nick),
            Err(err) => panic!("{}: no line within {READ_TIMEOUT:?}: {err}", self.nick),
        }
    }

    /// Asserts the next line.
    pub fn expect(&mut self, expected: &str) {
        assert_eq!(self.line(), expected);
    }

    /// Reads up to the line `expected`; returns the lines before it.
    pub fn until(&mut self, expected: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let line = self.line();
            if line == expected {
                return before;
            }
            before.push(line);
        }
    }

    /// A round trip: everything sent before has been handled, and every
    /// line the server queued for us before the `PONG` is returned.
    pub fn sync(&mut self) -> Vec<String> {
        self.pings += 1;
        let token = format!("sync-{}", self.pings);
        self.send(&format!("PING {token}"));
        self.until(&format!(":{SERVER} PONG {SERVER} :{token}"))
    }

    /// Sends `line` and returns what it was answered, up to a round trip.
    pub fn ask(&mut self, line: &str) -> Vec<String> {
        self.send(line);
        self.sync()
    }

    /// Asserts the server closes the connection next (after `ERROR`,
    /// whose line is returned).
    pub fn expect_error_then_close(&mut self) -> String {
        let error = self.line();
        assert!(error.starts_with("ERROR :"), "{error}");
        self.expect_closed();
        error
    }

    /// Asserts the server closes the connection next, with no more lines.
    pub fn expect_closed(&mut self) {
        match self.try_line() {
            Ok(None) => {}
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("expected close, got {other:?}"),
        }
    }

    /// This client's nickmask, as others see it.
    pub fn mask(&self) -> String {
        format!("{0}!{0}@{SERVER}", self.nick)
    }
}

/// `:irc.test NUMERIC NICK REST`: a numeric's line as the tests expect it.
pub fn numeric(code: &str, nick: &str, rest: &str) -> String {
    format!(":{SERVER} {code} {nick} {rest}")
}
