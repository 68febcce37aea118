//! A terminal client for loopchat: `cargo run --example client`.
//!
//! Lines typed on stdin go to the server; lines from the server are printed on
//! stdout as they arrive. There is no screen layout: incoming lines simply
//! interleave with what you type, as in `nc`, but safely (see below). The
//! client has no commands of its own; `:help`, `:nick`, `:quit` and the rest
//! are the server's, as described in `docs/protocol.md`.
//!
//! ```text
//! cargo run --release                                   # the server
//! cargo run --example client -- --nick alice            # a person
//! printf 'hi all\n' | cargo run --example client        # a script
//! LOOPCHAT_PASSWORD=secret cargo run --example client   # a server with a password
//! cargo run --example client -- --tls --addr chat.example.org:7443   # TLS, system roots
//! cargo run --example client -- --tls --ca cert.pem     # TLS, a private or self-signed cert
//! ```
//!
//! # Output
//!
//! stdout carries only the server's lines, so a script can parse it; the
//! client's own status messages (the start hint, disconnects, errors) go to
//! stderr. Server lines are never passed raw to the terminal: control
//! characters (C0 except TAB, DEL, C1) are shown escaped as `\x1b` or
//! `\u{9b}`, and invalid UTF-8 is shown as U+FFFD. The loopchat server already
//! scrubs other clients' text, but the client must not rely on the server it
//! happens to talk to.
//!
//! # Input
//!
//! Stdin is held back until the server has welcomed us (after `:auth` when
//! the server asks for a password, and after `:nick` when `--nick` is given),
//! so piped lines are not refused with `! authenticate first` or sent under
//! the guest nick. When stdin ends the client sends `:quit` and waits (at most
//! a few seconds) for `* bye`, so `printf 'hi\n' | client` delivers its line
//! and exits 0.
//!
//! # Exit status
//!
//! - 0: we quit (`:quit` typed or stdin ended) and the server said `* bye`.
//! - 1: the server closed or vanished without a `* bye` to our `:quit`
//!   (including `! server full`, `! too many attempts`, a wrong
//!   `--password`, shutdown), or did not answer in time.
//! - 2: the server could not be reached, its certificate was refused, or a
//!   flag was invalid.

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use argh::FromArgs;

/// A dead address fails fast with "refused"; an unroutable one would otherwise
/// hang in connect for minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for `* bye` after sending `:quit`.
const BYE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long piped input that has already ended waits for the welcome.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed write the socket is dead, but the reader may still have the
/// server's last words (`! server full`) to print; give it this long.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// A server that stops reading must not freeze the client forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Server lines can be long (`* users in #lobby: ...` with thousands of
/// names); this only stops a broken server from filling our memory. A longer
/// line is printed in pieces of this size.
const MAX_SERVER_LINE: u64 = 16 * 1024 * 1024;
/// Stdin is forwarded in pieces of at most this size, so a huge line without
/// `\n` does not have to fit in memory; the server judges its length.
const MAX_STDIN_CHUNK: u64 = 1024 * 1024;

/// Prints a client status message on stderr. Unlike `eprintln!`, a closed or
/// broken stderr is ignored rather than a panic: the message is only advice.
macro_rules! status {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr(), $($arg)*);
    }};
}

const EXIT_OK: u8 = 0;
const EXIT_DISCONNECTED: u8 = 1;
const EXIT_UNREACHABLE: u8 = 2;
const EXIT_USAGE: u8 = 2;

/// Chat with a loopchat server. Lines from stdin are sent to the server; the
/// server's lines are printed on stdout with control characters escaped.
/// Status messages go to stderr. Type :help for the server's commands and
/// :quit to leave; when stdin ends the client quits by itself.
#[derive(FromArgs)]
struct Args {
    /// server address, HOST:PORT (default: 127.0.0.1:7878, or
    /// 127.0.0.1:7443 with --tls)
    #[argh(option)]
    addr: Option<String>,

    /// connect with TLS, verifying that the server's certificate is valid
    /// for HOST (against the system's trusted roots, or --ca)
    #[argh(switch)]
    tls: bool,

    /// with --tls: trust the certificates in this PEM file instead of the
    /// system's roots (a private CA or a self-signed server certificate)
    #[argh(option)]
    ca: Option<std::path::PathBuf>,

    /// nick to take once welcomed, sent as `:nick NAME` before any line from
    /// stdin (default: none, keep the guestN nick the server assigns)
    #[argh(option)]
    nick: Option<String>,

    /// password for a server that asks for one, sent as `:auth PASSWORD`
    /// (default: the LOOPCHAT_PASSWORD environment variable when set and not
    /// empty, else none: type `:auth PASSWORD` yourself). Prefer the variable:
    /// command lines are visible to other users of the machine.
    #[argh(option)]
    password: Option<String>,
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    let password = args.password.or_else(|| {
        std::env::var("LOOPCHAT_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
    });
    // These strings are sent inside a protocol line; a line break or control
    // character in them would turn the rest into a command of its own.
    if let Some(nick) = &args.nick {
        if nick.is_empty() || nick.chars().any(|c| c.is_whitespace() || c.is_control()) {
            status!("invalid --nick {nick:?}: it must be one word without control characters");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if password
        .as_deref()
        .is_some_and(|p| p.contains(['\n', '\r']))
    {
        status!("invalid password: it must not contain a line break");
        return ExitCode::from(EXIT_USAGE);
    }

    if args.ca.is_some() && !args.tls {
        status!("--ca needs --tls");
        return ExitCode::from(EXIT_USAGE);
    }
    let addr = args.addr.unwrap_or_else(|| {
        String::from(if args.tls {
            loopchat::config::DEFAULT_TLS_ADDR
        } else {
            loopchat::config::DEFAULT_ADDR
        })
    });
    let tls_config = if args.tls {
        match loopchat::tls::client_config(args.ca.as_deref()) {
            Ok(config) => Some(config),
            Err(e) => {
                status!("{e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    } else {
        None
    };
    let stream = match connect(&addr) {
        Ok(stream) => stream,
        Err(e) => {
            status!(
                "cannot connect to {addr}: {e}; is the server running? start it with cargo run --release"
            );
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    let peer = stream.peer_addr().ok();
    let shown_addr = peer.map_or_else(|| addr.clone(), |a| a.to_string());

    // Chat lines are small and interactive; do not let Nagle hold them back.
    // Neither option matters for correctness, so a failure is not fatal.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));

    // With --tls the handshake happens here; a refused certificate is a
    // one-line error.
    let (reader, writer) = match split(stream, tls_config, &addr) {
        Ok(halves) => halves,
        Err(e) => {
            status!("{shown_addr}: {e}");
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    status!("connected to {shown_addr}; type :help for commands, :quit to leave");

    let (tx, rx) = mpsc::channel();
    let server_tx = tx.clone();
    // Neither thread is joined: both may sit in a blocking read forever (a
    // terminal that never sends EOF), and the process exit ends them.
    let spawned = thread::Builder::new()
        .name("server-reader".into())
        .spawn(move || read_server(reader, &server_tx))
        .and_then(|_| {
            thread::Builder::new()
                .name("stdin-reader".into())
                .spawn(move || read_stdin(&tx))
        });
    if let Err(e) = spawned {
        status!("cannot start the client's threads: {e}");
        return ExitCode::from(EXIT_DISCONNECTED);
    }

    let mut session = Session {
        writer,
        addr: shown_addr,
        nick: args.nick,
        password,
        phase: Phase::Connecting,
        held: Vec::new(),
        at_line_start: true,
        stdin_ended: false,
        quit_sent: false,
        broken: false,
        deadline: None,
    };
    loop {
        let event = match session.deadline {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some((when, _)) => rx.recv_timeout(when.saturating_duration_since(Instant::now())),
        };
        let outcome = match event {
            Ok(event) => session.handle(event),
            Err(RecvTimeoutError::Timeout) => Some(session.timed_out()),
            // Both readers have finished; each sends its last event first,
            // so this is only reached if one of them died unexpectedly.
            Err(RecvTimeoutError::Disconnected) => Some(session.disconnected(None)),
        };
        if let Some(code) = outcome {
            let _ = io::stdout().flush();
            return ExitCode::from(code);
        }
    }
}

/// A reading half for the server-reader thread and a writing half for the
/// main thread: the socket itself, or a TLS session over it.
type Halves = (Box<dyn Read + Send>, Box<dyn Write + Send>);

fn split(
    stream: TcpStream,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    addr: &str,
) -> io::Result<Halves> {
    match tls {
        None => Ok((Box::new(stream.try_clone()?), Box::new(stream))),
        Some(config) => {
            let name = loopchat::tls::server_name_of(addr);
            let secure = loopchat::tls::connect_client(stream, name, config)?;
            Ok((Box::new(secure.try_clone()?), Box::new(secure)))
        }
    }
}

/// Tries every address the name resolves to, like `TcpStream::connect`, but
/// with a bounded wait for each.
fn connect(addr: &str) -> io::Result<TcpStream> {
    let mut last_error = None;
    for candidate in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&candidate, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the name resolves to no address",
        )
    }))
}

/// What the two reader threads tell the main thread.
enum Event {
    /// A server line that changes what the client does next; it has already
    /// been printed.
    Server(Signal),
    /// The server closed the connection (`None`) or it failed.
    ServerClosed(Option<io::Error>),
    /// A piece of stdin, without its `\n`. `line_end` is false when the piece
    /// was cut at [`MAX_STDIN_CHUNK`] and the line goes on in the next one.
    Stdin {
        bytes: Vec<u8>,
        line_end: bool,
    },
    StdinEnded,
    /// Nobody reads our stdout any more (`client | head -1`).
    StdoutClosed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Welcome,
    PasswordRequired,
    WrongPassword,
    Bye,
}

impl Signal {
    /// Only these lines steer the client; everything else is just printed.
    fn of(line: &[u8]) -> Option<Signal> {
        match line {
            b"* password required" => Some(Signal::PasswordRequired),
            b"! wrong password" => Some(Signal::WrongPassword),
            b"* bye" => Some(Signal::Bye),
            _ if line.starts_with(b"* welcome ") => Some(Signal::Welcome),
            _ => None,
        }
    }
}

/// Prints every server line on stdout and reports the ones that matter.
fn read_server(stream: Box<dyn Read + Send>, events: &Sender<Event>) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_SERVER_LINE)
            .read_until(b'\n', &mut line);
        let ended = line.last() == Some(&b'\n');
        if ended {
            line.pop();
            // The server sends `\n` alone, but other servers may not; a
            // trailing `\r` would otherwise show up as `\x0d` on every line.
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        // A read error can follow part of a line, and the end of the stream
        // can follow an unterminated one: print what did arrive either way.
        if (ended || !line.is_empty()) && print_line(&line).is_err() {
            let _ = events.send(Event::StdoutClosed);
            return;
        }
        let signal = if ended { Signal::of(&line) } else { None };
        match read {
            Ok(0) => {
                let _ = events.send(Event::ServerClosed(None));
                return;
            }
            Ok(_) => {
                if let Some(signal) = signal {
                    if events.send(Event::Server(signal)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = events.send(Event::ServerClosed(Some(e)));
                return;
            }
        }
    }
}

fn print_line(line: &[u8]) -> io::Result<()> {
    let text = String::from_utf8_lossy(line);
    let mut out = io::stdout().lock();
    writeln!(out, "{}", escape_controls(&text))?;
    // Lines must show up as they arrive even when stdout is a pipe.
    out.flush()
}

/// Makes text safe to print: control characters that a terminal would act on
/// (C0 except TAB, DEL, C1) become visible escapes instead.
fn escape_controls(text: &str) -> Cow<'_, str> {
    // `char::is_control` is exactly C0, DEL and C1.
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\t' => shown.push(c),
            '\u{0}'..='\u{1f}' | '\u{7f}' => shown.push_str(&format!("\\x{:02x}", u32::from(c))),
            '\u{80}'..='\u{9f}' => shown.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            _ => shown.push(c),
        }
    }
    Cow::Owned(shown)
}

/// Forwards stdin to the main thread piece by piece.
fn read_stdin(events: &Sender<Event>) {
    let mut stdin = io::stdin().lock();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut stdin)
            .take(MAX_STDIN_CHUNK)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => break,
            Ok(n) => {
                let line_end = if buf.last() == Some(&b'\n') {
                    buf.pop();
                    true
                } else {
                    // Cut at the chunk limit, the line continues; otherwise
                    // this is a last line without `\n`, which still counts as
                    // a line (`printf hi | client` sends `hi`).
                    n as u64 != MAX_STDIN_CHUNK
                };
                let bytes = std::mem::take(&mut buf);
                if events.send(Event::Stdin { bytes, line_end }).is_err() {
                    return;
                }
            }
            Err(e) => {
                // A terminal that went away: nothing more will be typed, so
                // leave as if stdin had ended.
                status!("cannot read stdin: {e}");
                break;
            }
        }
    }
    let _ = events.send(Event::StdinEnded);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing from the server yet; stdin is held back.
    Connecting,
    /// We sent `:auth` and hold stdin back until the welcome.
    AuthSent,
    /// The server wants a password and we have none: the person types
    /// `:auth ...` themselves, so stdin flows.
    TypingAuth,
    /// Welcomed: stdin flows.
    Welcomed,
}

#[derive(Clone, Copy, Debug)]
enum Wait {
    Welcome,
    Bye,
    /// A write failed; waiting for the reader to see the end of the stream.
    Drain,
}

/// The main thread's state: everything that decides what to send and when to
/// stop. All writes to the socket happen here, so lines never interleave.
struct Session {
    writer: Box<dyn Write + Send>,
    addr: String,
    nick: Option<String>,
    password: Option<String>,
    phase: Phase,
    /// Stdin pieces read before the server let us talk.
    held: Vec<(Vec<u8>, bool)>,
    /// Whether the next stdin piece starts a line (only then can it be a
    /// `:quit`).
    at_line_start: bool,
    stdin_ended: bool,
    quit_sent: bool,
    /// A write failed: send nothing more.
    broken: bool,
    deadline: Option<(Instant, Wait)>,
}

impl Session {
    /// Returns the exit status once the client is done.
    fn handle(&mut self, event: Event) -> Option<u8> {
        match event {
            Event::Server(Signal::PasswordRequired) if self.phase == Phase::Connecting => {
                match self.password.clone() {
                    Some(password) => {
                        self.phase = Phase::AuthSent;
                        self.send(format!(":auth {password}").as_bytes(), true);
                    }
                    None => {
                        status!(
                            "{} wants a password: type :auth PASSWORD, or restart with \
                             LOOPCHAT_PASSWORD=... or --password",
                            self.addr
                        );
                        self.phase = Phase::TypingAuth;
                        self.release_held();
                    }
                }
                None
            }
            Event::Server(Signal::WrongPassword) if self.phase == Phase::AuthSent => {
                status!("{} refused the password", self.addr);
                // Best effort only: we are leaving whatever the server says.
                let _ = self.writer.write_all(b":quit\n");
                Some(EXIT_DISCONNECTED)
            }
            Event::Server(Signal::Welcome) if self.phase != Phase::Welcomed => {
                self.phase = Phase::Welcomed;
                if let Some(nick) = self.nick.clone() {
                    self.send(format!(":nick {nick}").as_bytes(), true);
                }
                self.release_held();
                None
            }
            // After our :quit the server has nothing more to say.
            Event::Server(Signal::Bye) if self.quit_sent => Some(EXIT_OK),
            Event::Server(_) => None,
            Event::ServerClosed(error) => Some(self.disconnected(error)),
            Event::Stdin { bytes, line_end } => {
                if self.stdin_flows() {
                    self.send(&bytes, line_end);
                } else if !self.quit_sent {
                    self.held.push((bytes, line_end));
                }
                None
            }
            Event::StdinEnded => {
                self.stdin_ended = true;
                if self.stdin_flows() {
                    self.quit();
                } else if !self.quit_sent {
                    self.deadline = Some((Instant::now() + WELCOME_TIMEOUT, Wait::Welcome));
                }
                None
            }
            Event::StdoutClosed => {
                status!("stdout closed; leaving {}", self.addr);
                let _ = self.writer.write_all(b":quit\n");
                Some(EXIT_DISCONNECTED)
            }
        }
    }

    fn stdin_flows(&self) -> bool {
        matches!(self.phase, Phase::Welcomed | Phase::TypingAuth)
    }

    fn release_held(&mut self) {
        for (bytes, line_end) in std::mem::take(&mut self.held) {
            self.send(&bytes, line_end);
        }
        if self.stdin_ended {
            self.quit();
        }
    }

    /// Sends `:quit` unless the person (or the script) already did.
    fn quit(&mut self) {
        if !self.at_line_start {
            // Ends a last piece that was cut at the chunk limit, so `:quit`
            // is not glued onto it.
            self.send(b"", true);
        }
        self.send(b":quit", true);
    }

    fn send(&mut self, bytes: &[u8], line_end: bool) {
        if self.quit_sent || self.broken {
            return;
        }
        let is_quit = self.at_line_start && line_end && is_quit_command(bytes);
        self.at_line_start = line_end;
        let written = self.writer.write_all(bytes).and_then(|()| {
            if line_end {
                self.writer.write_all(b"\n")
            } else {
                Ok(())
            }
        });
        if written.is_err() {
            // The reader will see the end of the stream too, after printing
            // whatever the server said last; that is the better report.
            self.broken = true;
            self.deadline = Some((Instant::now() + DRAIN_TIMEOUT, Wait::Drain));
        } else if is_quit {
            self.quit_sent = true;
            self.deadline = Some((Instant::now() + BYE_TIMEOUT, Wait::Bye));
        }
    }

    fn timed_out(&self) -> u8 {
        match self.deadline.map(|(_, wait)| wait) {
            Some(Wait::Welcome) => status!(
                "no welcome from {} within {} s; giving up",
                self.addr,
                WELCOME_TIMEOUT.as_secs()
            ),
            Some(Wait::Bye) => status!(
                "no * bye from {} within {} s of :quit; leaving anyway",
                self.addr,
                BYE_TIMEOUT.as_secs()
            ),
            Some(Wait::Drain) | None => status!("* disconnected from {}", self.addr),
        }
        EXIT_DISCONNECTED
    }

    fn disconnected(&self, error: Option<io::Error>) -> u8 {
        match error {
            Some(e) => status!("* disconnected from {} ({e})", self.addr),
            None => status!("* disconnected from {}", self.addr),
        }
        EXIT_DISCONNECTED
    }
}

/// Matches the server's parsing: the command word ends at the first space and
/// command names are case-insensitive. A `\r` before the `\n` is not part of
/// the line for the server either.
fn is_quit_command(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let word = line.split(|&b| b == b' ').next().unwrap_or(line);
    word.eq_ignore_ascii_case(b":quit")
}
