//! Sockets: connecting, reading lines, writing buffered output, closing,
//! and waiting in `poll` until the next event or timer.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Events, Interest, Token};

use super::{Driver, Mode, Phase, State, DRAIN_CHECK, MAX_PARTIAL_LINE, PROBE_INTERVAL, TICK};
use crate::sys;

impl Driver<'_> {
    /// Starts connects until `--connect-concurrency` are in progress, so
    /// the server's listen backlog never overflows (a dropped SYN costs a
    /// one-second retransmit and would distort connect times).
    pub(super) fn start_connects(&mut self, now: Instant) {
        let p = self.plan;
        while self.in_progress < p.connect_concurrency && self.next_connect < self.clients.len() {
            let i = self.next_connect;
            self.next_connect += 1;
            let source = (!p.sources.is_empty()).then(|| p.sources[i % p.sources.len()]);
            self.clients[i].started = now;
            let addr = p.addrs[i % p.addrs.len()];
            let result = sys::start_connect(addr, source).and_then(|mut sock| {
                self.poll.registry().register(
                    &mut sock,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                Ok(sock)
            });
            let result = result.and_then(|sock| {
                let tls = match &p.tls {
                    Some((config, name)) => {
                        let mut conn = rustls::ClientConnection::new(config.clone(), name.clone())
                            .map_err(std::io::Error::other)?;
                        // Our own wbuf bounds what a sender queues.
                        conn.set_buffer_limit(None);
                        Some(Box::new(conn))
                    }
                    None => None,
                };
                Ok((sock, tls))
            });
            match result {
                Ok((sock, tls)) => {
                    let c = &mut self.clients[i];
                    c.sock = Some(sock);
                    c.tls = tls;
                    c.state = State::Connecting;
                    self.in_progress += 1;
                    self.open += 1;
                }
                Err(e) => {
                    self.connect_failed += 1;
                    self.clients[i].state = State::Closed;
                    let hint = match e.raw_os_error() {
                        Some(libc::EADDRNOTAVAIL) => " (out of source ports: try --source-ips)",
                        Some(libc::EMFILE | libc::ENFILE) => " (out of file descriptors)",
                        _ => "",
                    };
                    self.note(format!("client {i}: connect: {e}{hint}"));
                }
            }
        }
    }

    /// Queues client `i` for a flush at the end of this loop turn.
    pub(super) fn mark_dirty(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(i);
        }
    }

    /// Writes every client's pending output, once per turn, so several
    /// messages queued in one turn leave in one write.
    pub(super) fn flush_dirty(&mut self) {
        let mut list = std::mem::take(&mut self.dirty);
        for &i in &list {
            self.clients[i].dirty = false;
            self.flush(i);
        }
        list.clear();
        if self.dirty.is_empty() {
            self.dirty = list;
        }
    }

    /// Writes what the kernel takes; the rest waits for a writable event.
    pub(super) fn flush(&mut self, i: usize) {
        self.ws_frame_pending(i);
        let keep_buffer = i < self.plan.senders;
        let c = &mut self.clients[i];
        if let Some(tls) = c.tls.as_mut() {
            if c.blocked || c.sock.is_none() {
                return;
            }
            // One writer call per turn: every queued line in one record.
            if !c.wbuf.is_empty() {
                if let Err(e) = tls.writer().write_all(&c.wbuf) {
                    let e = format!("TLS write: {e}");
                    self.close(i, &e);
                    return;
                }
                c.wbuf.clear();
                c.framed = 0;
                if !keep_buffer {
                    c.wbuf = Vec::new();
                }
            }
            let mut error = None;
            if let Some(sock) = c.sock.as_mut() {
                while tls.wants_write() {
                    match tls.write_tls(sock) {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            c.blocked = true;
                            break;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => {
                            error = Some(format!("write: {e}"));
                            break;
                        }
                    }
                }
            }
            if let Some(e) = error {
                self.close(i, &e);
            }
            return;
        }
        if c.blocked || c.wbuf.is_empty() {
            return;
        }
        let Some(sock) = c.sock.as_mut() else { return };
        let mut done = 0;
        let mut error = None;
        while done < c.wbuf.len() {
            match sock.write(&c.wbuf[done..]) {
                Ok(0) => {
                    error = Some("write returned 0".to_string());
                    break;
                }
                Ok(m) => done += m,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    c.blocked = true;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(format!("write: {e}"));
                    break;
                }
            }
        }
        c.wbuf.drain(..done);
        c.framed = c.framed.saturating_sub(done);
        if c.wbuf.is_empty() && !keep_buffer {
            c.wbuf = Vec::new();
        }
        if let Some(e) = error {
            self.close(i, &e);
        }
    }

    /// Dispatches one readiness event to its client.
    pub(super) fn on_event(&mut self, ev: &Event) {
        let i = ev.token().0;
        let Some(c) = self.clients.get(i) else { return };
        match c.state {
            State::Idle | State::Closed => return,
            State::Connecting => {
                self.check_connected(i);
                if self.clients[i].state != State::Handshake {
                    return;
                }
            }
            State::Handshake | State::Ready => {}
        }
        if ev.is_writable() {
            let c = &mut self.clients[i];
            c.blocked = false;
            if !c.wbuf.is_empty() || c.tls.as_ref().is_some_and(|t| t.wants_write()) {
                self.mark_dirty(i);
            }
        }
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            self.read(i, ev.is_read_closed() || ev.is_error());
        }
    }

    /// A connecting socket got an event: connected, failed, or spurious.
    pub(super) fn check_connected(&mut self, i: usize) {
        let Some(sock) = self.clients[i].sock.as_ref() else {
            return;
        };
        let failure = match sock.take_error() {
            Ok(None) => match sock.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == ErrorKind::NotConnected => return,
                Err(e) => Some(e),
            },
            Ok(Some(e)) | Err(e) => Some(e),
        };
        match failure {
            None => {
                self.clients[i].state = State::Handshake;
                if self.clients[i].tls.is_some() {
                    // The ClientHello.
                    self.mark_dirty(i);
                }
                if self.plan.ws {
                    self.ws_connected(i);
                }
            }
            Some(e) => self.close(i, &format!("connect: {e}")),
        }
    }

    /// Reads everything the socket has. `to_end` reads until `WouldBlock`
    /// even after a short read, to see a pending end of stream.
    pub(super) fn read(&mut self, i: usize, to_end: bool) {
        let mut buf = std::mem::take(&mut self.scratch);
        while let Some(sock) = self.clients[i].sock.as_mut() {
            match sock.read(&mut buf) {
                Ok(0) => {
                    self.close(i, "server closed the connection");
                    break;
                }
                Ok(m) if self.clients[i].tls.is_some() => {
                    let now_ns = self.ns(Instant::now());
                    if let Err(e) = self.tls_input(i, &buf[..m], now_ns) {
                        self.close(i, &format!("TLS: {e}"));
                        break;
                    }
                    if m < buf.len() && !to_end {
                        break;
                    }
                }
                Ok(m) => {
                    let now_ns = self.ns(Instant::now());
                    self.input(i, &buf[..m], now_ns);
                    // On Linux every arrival raises a new edge, so a short
                    // read means the socket is empty until the next event:
                    // skip the extra read that would only say WouldBlock.
                    if m < buf.len() && !to_end {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close(i, &format!("read: {e}"));
                    break;
                }
            }
        }
        self.scratch = buf;
    }

    /// Decrypts bytes read by a TLS client and feeds the plaintext to the
    /// line handler; answers the server (handshake) when TLS wants to.
    fn tls_input(&mut self, i: usize, mut data: &[u8], now_ns: u64) -> std::io::Result<()> {
        let mut plain = std::mem::take(&mut self.plain);
        plain.clear();
        let mut wants_write = false;
        if let Some(tls) = self.clients[i].tls.as_mut() {
            while !data.is_empty() {
                tls.read_tls(&mut data)?;
                tls.process_new_packets()
                    .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
                let mut reader = tls.reader();
                match reader.read_to_end(&mut plain) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            wants_write = tls.wants_write();
        }
        if !plain.is_empty() {
            self.input(i, &plain, now_ns);
        }
        self.plain = plain;
        if wants_write && self.clients[i].state != State::Closed {
            self.mark_dirty(i);
        }
        Ok(())
    }

    /// Feeds bytes read from client `i` to the line handler, keeping an
    /// unfinished last line for the next read.
    pub(super) fn input(&mut self, i: usize, data: &[u8], now_ns: u64) {
        if self.clients[i].ws != super::ws::WsState::Off {
            self.ws_input(i, data, now_ns);
            return;
        }
        let mut rbuf = std::mem::take(&mut self.clients[i].rbuf);
        if rbuf.is_empty() {
            let used = self.lines(i, data, now_ns);
            rbuf.extend_from_slice(&data[used..]);
        } else {
            rbuf.extend_from_slice(data);
            let used = self.lines(i, &rbuf, now_ns);
            rbuf.drain(..used);
        }
        if rbuf.len() > MAX_PARTIAL_LINE {
            self.report.unknown_lines += 1;
            self.note(format!(
                "client {i}: line over {MAX_PARTIAL_LINE} bytes dropped"
            ));
            rbuf.clear();
        }
        let c = &mut self.clients[i];
        if c.state != State::Closed && !rbuf.is_empty() {
            c.rbuf = rbuf;
        }
    }

    /// Handles every complete line in `buf`; returns the bytes used.
    pub(super) fn lines(&mut self, i: usize, buf: &[u8], now_ns: u64) -> usize {
        let mut start = 0;
        // One iterator over the whole read, rather than a search per line:
        // lines are short and per-call setup would dominate.
        for nl in memchr::memchr_iter(b'\n', buf) {
            let mut line = &buf[start..nl];
            start = nl + 1;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if !line.is_empty() {
                self.line(i, line, now_ns);
                // A line can close the client (a welcome it cannot use);
                // what follows must not count as its deliveries.
                if self.clients[i].state == State::Closed {
                    return buf.len();
                }
            }
        }
        start
    }

    /// Closes client `i`, counting it as a failed connect or a disconnect
    /// by the state it was in.
    pub(super) fn close(&mut self, i: usize, why: &str) {
        let was = self.clients[i].state;
        if matches!(was, State::Idle | State::Closed) {
            return;
        }
        self.drop_socket(i);
        match was {
            State::Connecting | State::Handshake => {
                self.connect_failed += 1;
                self.note(format!("client {i} failed to connect: {why}"));
            }
            _ if self.phase == Phase::Closing => {}
            _ => {
                self.report.disconnects += 1;
                let nick = String::from_utf8_lossy(self.clients[i].nick()).into_owned();
                self.note(format!(
                    "client {i} ({nick}) disconnected in {:?}: {why}",
                    self.phase
                ));
                if self.window > 0 {
                    self.release(i);
                }
            }
        }
    }

    /// Closes a client still connecting when setup times out; counted, but
    /// one note covers them all.
    pub(super) fn fail_quietly(&mut self, i: usize) {
        match self.clients[i].state {
            State::Connecting | State::Handshake => {
                self.drop_socket(i);
                self.connect_failed += 1;
            }
            State::Idle => {
                self.clients[i].state = State::Closed;
                self.connect_failed += 1;
            }
            _ => {}
        }
    }

    /// Deregisters and drops client `i`'s socket, keeping the counters of
    /// open, ready and connecting clients right.
    pub(super) fn drop_socket(&mut self, i: usize) {
        let c = &mut self.clients[i];
        match c.state {
            State::Connecting | State::Handshake => self.in_progress -= 1,
            State::Ready => {
                self.ready -= 1;
                if c.probe_seen {
                    self.probe_hits -= 1;
                    c.probe_seen = false;
                }
            }
            State::Idle | State::Closed => {}
        }
        if c.state != State::Idle {
            c.state = State::Closed;
        }
        if let Some(mut sock) = c.sock.take() {
            // Dropping the socket closes it; deregistering first only keeps
            // epoll tidy, so its failure changes nothing.
            let _ = self.poll.registry().deregister(&mut sock);
            self.open -= 1;
        }
        c.rbuf = Vec::new();
        c.wbuf = Vec::new();
        c.tls = None;
        c.framed = 0;
    }

    /// How long `poll` may sleep before some timer is due, and whether that
    /// timer is a scheduled send (which must not be late).
    pub(super) fn wait(&self, now: Instant) -> (Duration, bool) {
        let mut d = TICK;
        let mut until = |t: Instant| d = d.min(t.saturating_duration_since(now));
        until(self.next_progress);
        match self.phase {
            Phase::Setup => {
                if self.in_progress < self.plan.connect_concurrency
                    && self.next_connect < self.clients.len()
                {
                    return (Duration::ZERO, false);
                }
                until(self.setup_deadline);
            }
            Phase::Barrier => {
                until(self.probe_at + PROBE_INTERVAL);
                until(self.barrier_deadline);
            }
            Phase::Run => {
                until(self.w1);
                if self.cpu0.is_none() {
                    until(self.w0);
                }
                match self.plan.mode {
                    Mode::Rate(_) => {
                        let at =
                            self.base + Duration::from_nanos(self.scheduled_ns(self.next_send));
                        let send = at.saturating_duration_since(now);
                        if send <= d {
                            return (send, true);
                        }
                    }
                    Mode::Flood(_) if !self.wanting.is_empty() => return (Duration::ZERO, false),
                    _ => {}
                }
            }
            Phase::Drain => {
                until(self.drain_checked + DRAIN_CHECK);
                until(self.drain_deadline);
            }
            Phase::Closing => until(self.closing_deadline),
            Phase::Done => return (Duration::ZERO, false),
        }
        (d, false)
    }

    /// `poll`, waking on time for a scheduled send. Latency counts from the
    /// scheduled time, so a late wakeup would be charged to the server:
    /// epoll's timeout is in whole milliseconds (mio rounds up), and even a
    /// precise sleep wakes ~0.1 ms late on a virtual machine. So the wait
    /// is cut short, and its last `--spin-us` is spent polling without
    /// sleeping (which also keeps reading deliveries meanwhile).
    pub(super) fn poll_for(
        &mut self,
        events: &mut Events,
        wait: Duration,
        send_due: bool,
    ) -> std::io::Result<()> {
        let spin = self.plan.spin;
        let timeout = if !send_due {
            wait
        } else if wait <= spin {
            Duration::ZERO
        } else if spin.is_zero() {
            // Never early: epoll rounds up to the next millisecond.
            wait
        } else if wait - spin >= Duration::from_millis(1) {
            Duration::from_millis((wait - spin).as_millis() as u64)
        } else {
            std::thread::sleep(wait - spin);
            Duration::ZERO
        };
        match self.poll.poll(events, Some(timeout)) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {
                events.clear();
                Ok(())
            }
            other => other,
        }
    }
}
