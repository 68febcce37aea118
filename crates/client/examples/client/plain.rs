//! Plain line mode: stdin lines go to the server, server lines go to stdout.
//!
//! This is the mode for pipes and scripts (and `--plain`): stdout carries
//! only the server's lines, with control characters escaped; the client's own
//! status messages go to stderr.
//!
//! Stdin is held back until the server has welcomed us (after `:auth` when
//! the server asks for a password, and after `:nick` when `--nick` is given),
//! so piped lines are not refused with `! authenticate first` or sent under
//! the guest nick. When stdin ends the client sends `:quit` and waits (at most
//! a few seconds) for `* bye`, so `printf 'hi\n' | client` delivers its line
//! and exits 0.
//!
//! Keepalive: after `--keepalive` seconds without sending anything, the
//! client sends `:ping keepalive` and does not print the `* pong keepalive`
//! it answers with, so stdout stays exactly the conversation.
//!
//! End-to-end messages need the full-screen client: a `:e2e` line read
//! from stdin is never sent (it would carry the text in the clear); stderr
//! says so.

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::net::{self, Connection, Net, NetEvent};
use crate::text::escape_controls;
use crate::{is_quit_command, Options, KEEPALIVE_PING, KEEPALIVE_TOKEN};
use loopchat_protocol::{recognise, Error, Reply, ServerLine};

/// How long to wait for `* bye` after sending `:quit`.
const BYE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long piped input that has already ended waits for the welcome.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// Stdin is forwarded in pieces of at most this size, so a huge line without
/// `\n` does not have to fit in memory; the server judges its length.
const MAX_STDIN_CHUNK: u64 = 1024 * 1024;
/// How long a last best-effort `:quit` may take to leave.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

pub const EXIT_OK: u8 = 0;
pub const EXIT_DISCONNECTED: u8 = 1;

/// Prints a client status message on stderr. Unlike `eprintln!`, a closed or
/// broken stderr is ignored rather than a panic: the message is only advice.
macro_rules! status {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr(), $($arg)*);
    }};
}

/// What the network and stdin threads tell the main thread.
enum Event {
    Net(NetEvent),
    /// A piece of stdin, without its `\n`. `line_end` is false when the piece
    /// was cut at [`MAX_STDIN_CHUNK`] and the line goes on in the next one.
    Stdin {
        bytes: Vec<u8>,
        line_end: bool,
    },
    StdinEnded,
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
        match recognise(std::str::from_utf8(line).ok()?)? {
            ServerLine::Reply(Reply::PasswordRequired) => Some(Signal::PasswordRequired),
            ServerLine::Error(Error::WrongPassword) => Some(Signal::WrongPassword),
            ServerLine::Reply(Reply::Bye) => Some(Signal::Bye),
            ServerLine::Reply(Reply::Welcome { .. }) => Some(Signal::Welcome),
            _ => None,
        }
    }
}

/// Whether `line` answers our keepalive ping (`* pong keepalive`).
/// Whether a line (or the first piece of one) is the `:e2e` command.
fn is_e2e_command(line: &[u8]) -> bool {
    let word = line.split(|&b| b == b' ').next().unwrap_or(line);
    word.strip_suffix(b"\r")
        .unwrap_or(word)
        .eq_ignore_ascii_case(b":e2e")
}

fn is_keepalive_pong(line: &[u8]) -> bool {
    let recognised = std::str::from_utf8(line).ok().and_then(recognise);
    matches!(
        recognised,
        Some(ServerLine::Reply(Reply::Pong {
            token: Some(KEEPALIVE_TOKEN)
        }))
    )
}

/// Runs the line mode on an established connection; returns the exit status.
pub fn run(options: Options, connection: Connection) -> u8 {
    let addr = connection.peer.clone();
    status!("connected to {addr}; type :help for commands, :quit to leave");

    let (tx, rx) = mpsc::channel();
    let net_tx = tx.clone();
    let net = match net::spawn(connection, None, move |event| {
        net_tx.send(Event::Net(event)).is_ok()
    }) {
        Ok(net) => net,
        Err(e) => {
            status!("cannot start the client's threads: {e}");
            return EXIT_DISCONNECTED;
        }
    };
    // Not joined: it may sit in a blocking read forever (a terminal that
    // never sends EOF), and the process exit ends it.
    if let Err(e) = thread::Builder::new()
        .name("stdin-reader".into())
        .spawn(move || read_stdin(&tx))
    {
        status!("cannot start the client's threads: {e}");
        return EXIT_DISCONNECTED;
    }

    let mut session = Session {
        net,
        addr,
        nick: options.nick,
        password: options.password,
        keepalive: options.keepalive,
        phase: Phase::Connecting,
        held: Vec::new(),
        at_line_start: true,
        dropping_e2e: false,
        stdin_ended: false,
        quit_sent: false,
        deadline: None,
        last_sent: Instant::now(),
        pongs_owed: 0,
    };
    loop {
        let wake = session.next_wake();
        let event = match wake {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(when) => rx.recv_timeout(when.saturating_duration_since(Instant::now())),
        };
        let outcome = match event {
            Ok(event) => session.handle(event),
            Err(RecvTimeoutError::Timeout) => session.tick(),
            // The network thread always reports its end first, so this is
            // only reached if it died unexpectedly.
            Err(RecvTimeoutError::Disconnected) => Some(session.disconnected(None)),
        };
        if let Some(code) = outcome {
            let _ = io::stdout().flush();
            return code;
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
}

/// The main thread's state: everything that decides what to send and when to
/// stop. Everything sent goes through the one network thread, in order.
struct Session {
    net: Net,
    addr: String,
    nick: Option<String>,
    password: Option<String>,
    keepalive: Option<Duration>,
    phase: Phase,
    /// Stdin pieces read before the server let us talk.
    held: Vec<(Vec<u8>, bool)>,
    /// Whether the next stdin piece starts a line (only then can it be a
    /// `:quit`, and only then may a keepalive go out).
    at_line_start: bool,
    stdin_ended: bool,
    quit_sent: bool,
    deadline: Option<(Instant, Wait)>,
    last_sent: Instant,
    /// Keepalive pings not answered yet: that many `* pong keepalive` lines
    /// are ours and not printed.
    pongs_owed: u32,
    /// The stdin line being read is a `:e2e` line: none of it is sent.
    dropping_e2e: bool,
}

impl Session {
    fn next_wake(&self) -> Option<Instant> {
        let keepalive = self
            .keepalive
            .filter(|_| self.may_ping())
            .map(|every| self.last_sent + every);
        match (self.deadline.map(|(when, _)| when), keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn may_ping(&self) -> bool {
        self.phase == Phase::Welcomed && self.at_line_start && !self.quit_sent
    }

    /// A wake-up without an event: a deadline passed or a keepalive is due.
    fn tick(&mut self) -> Option<u8> {
        let now = Instant::now();
        if let Some((when, wait)) = self.deadline {
            if now >= when {
                return Some(self.timed_out(wait));
            }
        }
        if let Some(every) = self.keepalive {
            if self.may_ping() && now >= self.last_sent + every {
                self.pongs_owed += 1;
                self.send(KEEPALIVE_PING.as_bytes(), true);
            }
        }
        None
    }

    /// Returns the exit status once the client is done.
    fn handle(&mut self, event: Event) -> Option<u8> {
        match event {
            Event::Net(NetEvent::Line { bytes, ended }) => {
                if ended && self.pongs_owed > 0 && is_keepalive_pong(&bytes) {
                    self.pongs_owed -= 1;
                    return None;
                }
                if print_line(&bytes).is_err() {
                    status!("stdout closed; leaving {}", self.addr);
                    self.net.send(b":quit\n".to_vec());
                    self.net.close(CLOSE_WAIT);
                    return Some(EXIT_DISCONNECTED);
                }
                match Signal::of(&bytes).filter(|_| ended) {
                    Some(signal) => self.signal(signal),
                    None => None,
                }
            }
            Event::Net(NetEvent::Closed(error)) => Some(self.disconnected(error)),
            // Only in reconnecting mode, which line mode does not use.
            Event::Net(NetEvent::Retrying { .. } | NetEvent::Connected(_)) => None,
            Event::Stdin { bytes, line_end } => {
                if self.stdin_flows() {
                    self.send_stdin(&bytes, line_end);
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
        }
    }

    fn signal(&mut self, signal: Signal) -> Option<u8> {
        match signal {
            Signal::PasswordRequired if self.phase == Phase::Connecting => {
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
            Signal::WrongPassword if self.phase == Phase::AuthSent => {
                status!("{} refused the password", self.addr);
                // Best effort only: we are leaving whatever the server says.
                self.net.send(b":quit\n".to_vec());
                self.net.close(CLOSE_WAIT);
                Some(EXIT_DISCONNECTED)
            }
            Signal::Welcome if self.phase != Phase::Welcomed => {
                self.phase = Phase::Welcomed;
                if let Some(nick) = self.nick.clone() {
                    self.send(format!(":nick {nick}").as_bytes(), true);
                }
                self.release_held();
                None
            }
            // After our :quit the server has nothing more to say.
            Signal::Bye if self.quit_sent => Some(EXIT_OK),
            _ => None,
        }
    }

    fn stdin_flows(&self) -> bool {
        matches!(self.phase, Phase::Welcomed | Phase::TypingAuth)
    }

    fn release_held(&mut self) {
        for (bytes, line_end) in std::mem::take(&mut self.held) {
            self.send_stdin(&bytes, line_end);
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

    /// Sends a piece of stdin, except a `:e2e` line (see the module's
    /// description).
    fn send_stdin(&mut self, bytes: &[u8], line_end: bool) {
        if self.at_line_start && is_e2e_command(bytes) {
            status!(
                "not sent: end-to-end messages (:e2e) need the full-screen client;                  a line client would send the text in the clear"
            );
            self.dropping_e2e = true;
        }
        if self.dropping_e2e {
            // The rest of the line is dropped too; the next starts afresh.
            self.dropping_e2e = !line_end;
            return;
        }
        self.send(bytes, line_end);
    }

    fn send(&mut self, bytes: &[u8], line_end: bool) {
        if self.quit_sent {
            return;
        }
        let is_quit = self.at_line_start && line_end && is_quit_command(bytes);
        self.at_line_start = line_end;
        let mut line = Vec::with_capacity(bytes.len() + 1);
        line.extend_from_slice(bytes);
        if line_end {
            line.push(b'\n');
        }
        self.net.send(line);
        self.last_sent = Instant::now();
        if is_quit {
            self.quit_sent = true;
            self.deadline = Some((Instant::now() + BYE_TIMEOUT, Wait::Bye));
        }
    }

    fn timed_out(&self, wait: Wait) -> u8 {
        match wait {
            Wait::Welcome => status!(
                "no welcome from {} within {} s; giving up",
                self.addr,
                WELCOME_TIMEOUT.as_secs()
            ),
            Wait::Bye => status!(
                "no * bye from {} within {} s of :quit; leaving anyway",
                self.addr,
                BYE_TIMEOUT.as_secs()
            ),
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
