//! The connection: one thread owns the stream, reading and writing it.
//!
//! A TLS stream (rustls) can be neither cloned nor split between a reader and
//! a writer thread, so nothing here relies on `try_clone`: the network thread
//! reads with a short timeout and, between reads, writes whatever the main
//! thread queued on its channel. [`connect`] is the one place that makes a
//! stream; a TLS client wraps the `TcpStream` there and nothing else changes.
//!
//! The thread frames the server's bytes into lines and hands them, and the
//! connection's ups and downs, to a callback ([`NetEvent`]). In full-screen
//! mode it reconnects with backoff when the server goes away.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// A dead address fails fast with "refused"; an unroutable one would otherwise
/// hang in connect for minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one read waits before the thread looks at its outgoing queue.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
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

/// Anything the client can chat over: a `TcpStream` today, a TLS stream
/// around one tomorrow. It must honour the read timeout set in [`connect`]
/// (a `WouldBlock`/`TimedOut` error when nothing arrived in time).
pub trait ChatStream: Read + Write + Send {}
impl<T: Read + Write + Send> ChatStream for T {}

/// With `--tls`: the configuration every connection (and reconnection)
/// uses; see [`use_tls`].
static TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// Makes [`connect`] speak TLS, verifying the server's certificate for the
/// host part of the address.
pub fn use_tls(config: Arc<rustls::ClientConfig>) {
    let _ = TLS.set(config);
}

/// A connected stream and the address to show for it.
pub struct Connection {
    pub stream: Box<dyn ChatStream>,
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
                stream.set_read_timeout(Some(POLL_INTERVAL))?;
                stream.set_write_timeout(Some(POLL_INTERVAL))?;
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
                return Ok(Connection { stream, peer });
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
    /// Disconnects when the thread ends.
    done: Receiver<()>,
}

impl Net {
    /// Queues bytes for the server; silently dropped once the thread ended.
    pub fn send(&self, bytes: Vec<u8>) {
        let _ = self.commands.send(NetCommand::Send(bytes));
    }

    /// Asks the thread to flush and close, and waits for it at most `limit`.
    pub fn close(&self, limit: Duration) {
        let _ = self.commands.send(NetCommand::Close);
        let _ = self.done.recv_timeout(limit);
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
    thread::Builder::new()
        .name("network".into())
        .spawn(move || {
            let _done = done_tx;
            run(first, reconnect_to, &inbox, &report);
        })?;
    Ok(Net { commands, done })
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
    report: &impl Fn(NetEvent) -> bool,
) {
    let mut connection = first;
    loop {
        if let End::Stop = serve(connection.stream, inbox, report) {
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
    mut stream: Box<dyn ChatStream>,
    inbox: &Receiver<NetCommand>,
    report: &impl Fn(NetEvent) -> bool,
) -> End {
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
        match stream.read(&mut buf) {
            Ok(0) => {
                if !framer.flush(report) {
                    return End::Stop;
                }
                return finish(None, report);
            }
            Ok(n) => {
                if !framer.push(&buf[..n], report) {
                    return End::Stop;
                }
            }
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
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
