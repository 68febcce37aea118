//! `--ws`: every client speaks WebSocket to the server's web address. Lines
//! are queued in `wbuf` as for TCP and framed (masked text frames) just
//! before they are written; the server's frames are decoded back into lines
//! before the same line handler sees them, so every workload and every
//! measurement is the same over both transports.

use super::{Driver, MAX_PARTIAL_LINE};

/// The mask key of every client frame. Any key is valid; the server unmasks
/// every byte whatever it is.
const MASK: [u8; 4] = [0x5a, 0xa5, 0x3c, 0xc3];

/// Where a WebSocket client is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WsState {
    /// Not a WebSocket client (line protocol over TCP).
    Off,
    /// The upgrade request is sent; the `101` head has not been read.
    Upgrading,
    /// Frames both ways.
    Open,
}

impl Driver<'_> {
    /// Connected: queue the upgrade request before anything else.
    pub(super) fn ws_connected(&mut self, i: usize) {
        let host = self.plan.addr;
        let c = &mut self.clients[i];
        c.ws = WsState::Upgrading;
        c.wbuf.extend_from_slice(
            format!(
                "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: bG9hZGdlbiBjbGllbnQgIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        );
        c.framed = c.wbuf.len();
        self.mark_dirty(i);
    }

    /// Turns the lines queued after `framed` into masked text frames.
    pub(super) fn ws_frame_pending(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if c.ws == WsState::Off || c.framed >= c.wbuf.len() {
            return;
        }
        let lines = c.wbuf.split_off(c.framed);
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            push_frame(&mut c.wbuf, 0x81, line);
        }
        c.framed = c.wbuf.len();
    }

    /// Bytes read from a WebSocket client: the `101` head, then frames.
    pub(super) fn ws_input(&mut self, i: usize, data: &[u8], now_ns: u64) {
        // Frames are read straight from `data` unless a partial one waits.
        let mut held = std::mem::take(&mut self.clients[i].rbuf);
        let buf: &[u8] = if held.is_empty() {
            data
        } else {
            held.extend_from_slice(data);
            &held
        };
        let mut at = 0;
        if self.clients[i].ws == WsState::Upgrading {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                if buf.len() > MAX_PARTIAL_LINE {
                    self.close(i, "upgrade response too long");
                } else {
                    self.clients[i].rbuf = buf.to_vec();
                }
                return;
            };
            if !buf.starts_with(b"HTTP/1.1 101 ") {
                let status = String::from_utf8_lossy(&buf[..end.min(40)]).into_owned();
                self.close(i, &format!("upgrade refused: {status}"));
                return;
            }
            self.clients[i].ws = WsState::Open;
            at = end + 4;
        }
        while let Some((first, payload, used)) = parse_frame(&buf[at..]) {
            at += used;
            match first & 0x0f {
                0x1 => {
                    self.line(i, payload, now_ns);
                    if self.clients[i].sock.is_none() {
                        return;
                    }
                }
                0x9 => {
                    self.ws_frame_pending(i);
                    let c = &mut self.clients[i];
                    push_frame(&mut c.wbuf, 0x8a, payload);
                    c.framed = c.wbuf.len();
                    self.mark_dirty(i);
                }
                0x8 => {
                    self.close(i, "server sent a close frame");
                    return;
                }
                _ => {}
            }
        }
        let rest = &buf[at..];
        if rest.len() > MAX_PARTIAL_LINE + 16 {
            self.report.unknown_lines += 1;
            self.note(format!(
                "client {i}: frame over {MAX_PARTIAL_LINE} bytes dropped"
            ));
        } else if self.clients[i].sock.is_some() && !rest.is_empty() {
            self.clients[i].rbuf = rest.to_vec();
        }
    }
}

/// Appends one masked frame.
fn push_frame(out: &mut Vec<u8>, first: u8, payload: &[u8]) {
    loopchat::net::ws::masked_frame(out, first, MASK, payload);
}

/// One unmasked server frame at the start of `buf`: its first byte, its
/// payload and its length; `None` until it is complete.
fn parse_frame(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (len, at): (usize, usize) = match *buf.get(1)? & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at.checked_add(len)?)?;
    Some((buf[0], payload, at + len))
}
