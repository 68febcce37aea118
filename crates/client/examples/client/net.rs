//! The connection: one thread owns the stream, reading and writing it.
//!
//! A TLS stream (rustls) can be neither cloned nor split between a reader and
//! a writer thread, so nothing here relies on `try_clone`: the network thread
//! waits in `poll(2)` for the socket or for a wake-up byte on a pipe, which
//! [`Net::send`] writes after queueing its line on the channel, so a typed
//! line goes out at once and an idle connection sleeps. [`connect`] is the
//! one place that makes a stream; a TLS client wraps the `TcpStream` there
//! and nothing else changes.
//!
//! The thread frames the server's bytes into lines and hands them, and the
//! connection's ups and downs, to a callback ([`NetEvent`]). In full-screen
//! mode it reconnects with backoff when the server goes away.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// A dead address fails fast with "refused"; an unroutable one would otherwise
/// hang in connect for minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one blocking read or write may wait: reads come after `poll`
/// said the socket is readable (or to drain what TLS holds), so this only
/// bounds a read that finds nothing after all.
const IO_TIMEOUT: Duration = Duration::from_millis(50);
/// The longest `poll` sleeps with nothing to do (a line to send wakes it).
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// A server that takes none of our bytes for this long is treated as gone.
const WRITE_STALL: Duration = Duration::from_secs(30);
/// After a failed write the server may still have last words for us
/// (`! server full`): keep reading this long.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Server lines can be long (`* users in #lobby: ...` with thousands of
/// names); this only stops a broken server from filling our memory. A longer
/// line is handed on in pieces of this size.
pub const MAX_SERVER_LINE: usize = 16 * 1024 * 1024;
/// Reconnect delays grow from the first to the last and stay there.
const BACKOFF: [u64; 6] = [1, 2, 4, 8, 15, 30];

/// Anything the client can chat over: a `TcpStream`, or the TLS stream
/// around one. It must honour the read timeout set in [`connect`]
/// (a `WouldBlock`/`TimedOut` error when nothing arrived in time).
pub trait ChatStream: Read + Write + Send {
    /// Whether a read would find bytes already here, without the socket
    /// (TLS keeps what it read and decrypted): read before waiting.
    fn has_buffered(&self) -> bool;
}

impl ChatStream for TcpStream {
    fn has_buffered(&self) -> bool {
        false
    }
}

impl ChatStream for loopchat_client::tls::ClientStream {
    fn has_buffered(&self) -> bool {
        loopchat_client::tls::ClientStream::has_buffered(self)
    }
}

/// With `--tls`: the configuration every connection (and reconnection)
/// uses; see [`use_tls`].
static TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// Makes [`connect`] speak TLS, verifying the server's certificate for the
/// host part of the address.
pub fn use_tls(config: Arc<rustls::ClientConfig>) {
    let _ = TLS.set(config);
}

/// A connected stream, its socket's descriptor (for `poll`) and the address
/// to show for it.
pub struct Connection {
    pub stream: Box<dyn ChatStream>,
    pub fd: RawFd,
    pub peer: String,
}

/// Connects to `addr`, trying every address the name resolves to with a
/// bounded wait for each, and readies the stream for [`spawn`].
pub fn connect(addr: &str) -> io::Result<Connection> {
    let mut last_error = None;
    for candidate in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&candidate, CONNECT_TIMEOUT) {
            Ok(stream) => {
                // Chat lines are small and interactive; do not let Nagle
                // hold them back.
                let _ = stream.set_nodelay(true);
                stream.set_read_timeout(Some(IO_TIMEOUT))?;
                stream.set_write_timeout(Some(IO_TIMEOUT))?;
                let fd = stream.as_raw_fd();
                let peer = stream
                    .peer_addr()
                    .map_or_else(|_| addr.to_string(), |a| a.to_string());
                let stream: Box<dyn ChatStream> = match TLS.get() {
                    None => Box::new(stream),
                    // A refused certificate is final, not a reason to try
                    // the next address.
                    Some(config) => Box::new(loopchat_client::tls::connect_client(
                        stream,
                        loopchat_client::tls::server_name_of(addr),
                        Arc::clone(config),
                    )?),
                };
                return Ok(Connection { stream, fd, peer });
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(ErrorKind::InvalidInput, "the name resolves to no address")
    }))
}

/// What the network thread reports.
#[derive(Debug)]
pub enum NetEvent {
    /// One server line without its `\n` (and without a `\r` before it).
    /// `ended` is false for a piece of a line cut at [`MAX_SERVER_LINE`] or an
    /// unterminated last line.
    Line { bytes: Vec<u8>, ended: bool },
    /// The connection ended: closed by the server (`None`) or failed.
    Closed(Option<io::Error>),
    /// Only when reconnecting: the next attempt starts in `delay`.
    Retrying { attempt: u32, delay: Duration },
    /// Only when reconnecting: a new connection is up.
    Connected(String),
}

/// What the main thread asks of the network thread.
pub enum NetCommand {
    /// Bytes to send, usually one line with its `\n`.
    Send(Vec<u8>),
    /// Send what is queued, then close and stop (no reconnect).
    Close,
}

/// The main thread's handle on the network thread.
pub struct Net {
    commands: Sender<NetCommand>,
    /// The pipe's write end: a byte wakes the thread from `poll` (and its
    /// closing, when `Net` is dropped, wakes it to stop).
    wake: OwnedFd,
    /// Disconnects when the thread ends.
    done: Receiver<()>,
}

impl Net {
    /// Queues bytes for the server; silently dropped once the thread ended.
    pub fn send(&self, bytes: Vec<u8>) {
        let _ = self.commands.send(NetCommand::Send(bytes));
        self.wake();
    }

    /// Asks the thread to flush and close, and waits for it at most `limit`.
    pub fn close(&self, limit: Duration) {
        let _ = self.commands.send(NetCommand::Close);
        self.wake();
        let _ = self.done.recv_timeout(limit);
    }

    /// One byte down the pipe; a full pipe has a wake-up waiting already.
    fn wake(&self) {
        let byte = 1u8;
        // SAFETY: writes one byte from a live buffer to a descriptor we own.
        let _ = unsafe { libc::write(self.wake.as_raw_fd(), (&raw const byte).cast(), 1) };
    }
}

/// A pipe with both ends non-blocking: (read end, write end).
fn wake_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `pipe2` fills the two descriptors, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just made by `pipe2` and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Empties the pipe's read end (the wake-ups are only a signal).
fn drain_pipe(fd: RawFd) {
    let mut buf = [0u8; 64];
    // SAFETY: reads into a live buffer of its length; the end is
    // non-blocking, so this stops at an empty pipe.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// What `poll` saw.
struct Ready {
    socket: bool,
    wake: bool,
}

/// Waits up to `timeout` for the socket to be readable or a wake-up on the
/// pipe `wake`; neither when the time ran out.
fn wait(socket: RawFd, wake: RawFd, timeout: Duration) -> Ready {
    let mut fds = [
        libc::pollfd {
            fd: socket,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is a live array of two `pollfd`s.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    if n <= 0 {
        // A timeout, or an interruption: look again (reads are bounded).
        return Ready {
            socket: n < 0,
            wake: n < 0,
        };
    }
    Ready {
        // An error or hang-up shows as readable: the read reports it.
        socket: fds[0].revents != 0,
        wake: fds[1].revents != 0,
    }
}

/// Starts the network thread on an established connection. With
/// `reconnect_to`, a lost connection is made again (with backoff) to that
/// address; otherwise the thread ends after reporting [`NetEvent::Closed`].
/// `report` returns false once nobody listens any more.
pub fn spawn(
    first: Connection,
    reconnect_to: Option<String>,
    report: impl Fn(NetEvent) -> bool + Send + 'static,
) -> io::Result<Net> {
    let (commands, inbox) = mpsc::channel();
    let (done_tx, done) = mpsc::channel::<()>();
    let (woken, wake) = wake_pipe()?;
    thread::Builder::new()
        .name("network".into())
        .spawn(move || {
            let _done = done_tx;
            run(first, reconnect_to, &inbox, woken.as_raw_fd(), &report);
        })?;
    Ok(Net {
        commands,
        wake,
        done,
    })
}

/// Why one connection's session ended.
enum End {
    /// The server closed or failed; maybe reconnect.
    Lost,
    /// We were asked to close, or nobody listens: stop for good.
    Stop,
}

fn run(
    first: Connection,
    reconnect_to: Option<String>,
    inbox: &Receiver<NetCommand>,
    woken: RawFd,
    report: &impl Fn(NetEvent) -> bool,
) {
    let mut connection = first;
    loop {
        if let End::Stop = serve(connection, inbox, woken, report) {
            return;
        }
        let Some(addr) = &reconnect_to else { return };
        let mut attempt = 0u32;
        connection = loop {
            let delay = Duration::from_secs(BACKOFF[(attempt as usize).min(BACKOFF.len() - 1)]);
            attempt += 1;
            if !report(NetEvent::Retrying { attempt, delay }) {
                return;
            }
            // Wait out the delay; lines typed meanwhile are dropped (the
            // screen says we are not connected).
            let until = Instant::now() + delay;
            loop {
                match inbox.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok(NetCommand::Send(_)) => {}
                    Ok(NetCommand::Close) | Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            if let Ok(connection) = connect(addr) {
                break connection;
            }
        };
        // Anything queued before the new connection was up belongs to the
        // old one.
        while let Ok(command) = inbox.try_recv() {
            if let NetCommand::Close = command {
                return;
            }
        }
        if !report(NetEvent::Connected(connection.peer.clone())) {
            return;
        }
    }
}

/// Runs one connection until it ends.
fn serve(
    connection: Connection,
    inbox: &Receiver<NetCommand>,
    woken: RawFd,
    report: &impl Fn(NetEvent) -> bool,
) -> End {
    let Connection { mut stream, fd, .. } = connection;
    // Whether the last read may have left bytes in the stream (TLS holds
    // what it decrypted): read again before sleeping in `poll`.
    let mut more = true;
    let mut framer = Framer::default();
    let mut out: Vec<u8> = Vec::new();
    let mut closing = false;
    // Since when the queued output has not moved.
    let mut stalled_since: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Take what the main thread queued.
        loop {
            match inbox.try_recv() {
                Ok(NetCommand::Send(bytes)) => {
                    if !closing {
                        out.extend_from_slice(&bytes);
                    }
                }
                Ok(NetCommand::Close) => closing = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return End::Stop,
            }
        }
        if !out.is_empty() {
            match stream.write(&out) {
                Ok(0) => return drain(stream, &mut framer, report),
                Ok(n) => {
                    out.drain(..n);
                    stalled_since = None;
                    let _ = stream.flush();
                }
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {
                    let since = *stalled_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > WRITE_STALL {
                        let stalled = io::Error::new(
                            ErrorKind::TimedOut,
                            format!("the server took nothing for {} s", WRITE_STALL.as_secs()),
                        );
                        return finish(Some(stalled), report);
                    }
                }
                // The read side's end is the better report; the write error
                // is only what made us look.
                Err(_) => return drain(stream, &mut framer, report),
            }
        }
        if closing && out.is_empty() {
            return End::Stop;
        }
        if !more {
            // Queued bytes the socket did not take yet: try again soon.
            let timeout = if out.is_empty() {
                IDLE_WAKE
            } else {
                IO_TIMEOUT
            };
            let ready = wait(fd, woken, timeout);
            if ready.wake {
                drain_pipe(woken);
                if !ready.socket {
                    // Lines to send: at once.
                    continue;
                }
            }
            // Readable, or a quiet second: a (bounded) read either way, so
            // nothing TLS kept back waits longer than that.
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                if !framer.flush(report) {
                    return End::Stop;
                }
                return finish(None, report);
            }
            Ok(n) => {
                // A full buffer, or TLS, may have kept more.
                more = n == buf.len() || stream.has_buffered();
                if !framer.push(&buf[..n], report) {
                    return End::Stop;
                }
            }
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => more = false,
            Err(e) => {
                if !framer.flush(report) {
                    return End::Stop;
                }
                return finish(Some(e), report);
            }
        }
    }
}

/// A write failed: the server may still have sent its last words. Read them
/// (for a bounded time), then report the end.
fn drain(
    mut stream: Box<dyn ChatStream>,
    framer: &mut Framer,
    report: &impl Fn(NetEvent) -> bool,
) -> End {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !framer.push(&buf[..n], report) {
                    return End::Stop;
                }
            }
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if !framer.flush(report) {
        return End::Stop;
    }
    finish(None, report)
}

fn finish(error: Option<io::Error>, report: &impl Fn(NetEvent) -> bool) -> End {
    if report(NetEvent::Closed(error)) {
        End::Lost
    } else {
        End::Stop
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Cuts the byte stream into lines.
#[derive(Default)]
struct Framer {
    partial: Vec<u8>,
}

impl Framer {
    /// Reports every complete line in `bytes`; false once nobody listens.
    fn push(&mut self, mut bytes: &[u8], report: &impl Fn(NetEvent) -> bool) -> bool {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&bytes[..end]);
            bytes = &bytes[end + 1..];
            let mut line = std::mem::take(&mut self.partial);
            // The loopchat server sends `\n` alone, but other servers may
            // not; a trailing `\r` would otherwise show on every line.
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if !report(NetEvent::Line {
                bytes: line,
                ended: true,
            }) {
                return false;
            }
        }
        self.partial.extend_from_slice(bytes);
        while self.partial.len() >= MAX_SERVER_LINE {
            let rest = self.partial.split_off(MAX_SERVER_LINE);
            let piece = std::mem::replace(&mut self.partial, rest);
            if !report(NetEvent::Line {
                bytes: piece,
                ended: false,
            }) {
                return false;
            }
        }
        true
    }

    /// Reports an unterminated last line, if any.
    fn flush(&mut self, report: &impl Fn(NetEvent) -> bool) -> bool {
        if self.partial.is_empty() {
            return true;
        }
        report(NetEvent::Line {
            bytes: std::mem::take(&mut self.partial),
            ended: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn frame(chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let seen = RefCell::new(Vec::new());
        let report = |event: NetEvent| {
            if let NetEvent::Line { bytes, ended } = event {
                seen.borrow_mut()
                    .push((String::from_utf8(bytes).unwrap(), ended));
            }
            true
        };
        let mut framer = Framer::default();
        for chunk in chunks {
            assert!(framer.push(chunk, &report));
        }
        assert!(framer.flush(&report));
        seen.into_inner()
    }

    #[test]
    fn lines_are_cut_at_newlines_whatever_the_chunks() {
        assert_eq!(
            frame(&[b"* wel", b"come a\r\nbob: h", b"i\n\nlast"]),
            [
                ("* welcome a".to_string(), true),
                ("bob: hi".to_string(), true),
                (String::new(), true),
                ("last".to_string(), false),
            ]
        );
    }
}
