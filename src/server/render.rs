//! [`LineCache`]: the bytes of the line being sent, rendered once per
//! dialect and framed once per (dialect, framing), whoever it goes to.
//!
//! The chat state hands the server typed lines ([`ServerLine`]); what a
//! recipient gets depends only on its [`RenderKey`]. A fan-out to ten
//! thousand members renders its line once per dialect among them and, for
//! WebSocket members, frames it once: each recipient costs a key lookup and
//! a copy into its queue, never a render, a comparison of line bytes or an
//! allocation.

use crate::net::transport::{Encoder, Framing};
use crate::net::ws;
use crate::protocol::{Dialect, ServerLine};

/// What decides the bytes one recipient gets for a line. Protocol 1.2 adds
/// what else changes them (tags on or off, whether the line's room is the
/// recipient's current room); each is a field here and a dimension of
/// [`LineCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RenderKey {
    /// How the recipient's lines are worded.
    pub dialect: Dialect,
    /// How its transport carries a line.
    pub framing: Framing,
}

impl RenderKey {
    /// The key of a connection with this encoder. Every client speaks the
    /// line dialect today.
    pub fn of(encoder: &Encoder) -> RenderKey {
        RenderKey {
            dialect: Dialect::Line,
            framing: encoder.framing(),
        }
    }
}

/// One cached rendering and the line it belongs to.
#[derive(Debug, Default)]
struct Slot {
    /// The [`LineCache::line`] number these bytes are for.
    line: u64,
    bytes: Vec<u8>,
}

/// How many framings there are (see [`RenderKey::index`]).
const FRAMINGS: usize = 2;

impl RenderKey {
    /// The key's slot in a [`LineCache`].
    fn index(self) -> usize {
        let framing = match self.framing {
            Framing::Plain => 0,
            Framing::WebSocket => 1,
        };
        self.dialect.index() * FRAMINGS + framing
    }
}

/// The current line's bytes per [`RenderKey`], built on first use.
#[derive(Debug, Default)]
pub(super) struct LineCache {
    /// Numbers the lines; a slot holding another number is stale. Empty
    /// slots hold 0, and no line is numbered 0 (see [`LineCache::new_line`]).
    line: u64,
    /// The line's bytes per [`RenderKey::index`]: as each dialect writes
    /// it (with its `\n`), and as a WebSocket text frame of that.
    slots: [Slot; Dialect::COUNT * FRAMINGS],
    /// Renderings done (not served from the cache), for tests.
    pub renders: u64,
    /// WebSocket frames built (not served from the cache), for tests.
    pub frames: u64,
}

impl LineCache {
    /// Starts a new line: what the cache holds belongs to the last one.
    pub fn new_line(&mut self) {
        self.line += 1;
    }

    /// The bytes to queue for `line` (the current line: the same one since
    /// [`LineCache::new_line`]) for a recipient with `key`. Per recipient
    /// this is an index and a comparison; the first recipient of a key
    /// pays for building its bytes.
    #[inline]
    pub fn bytes(&mut self, line: &ServerLine<'_>, key: RenderKey) -> &[u8] {
        debug_assert!(self.line > 0, "new_line() before the first line");
        let i = key.index();
        if self.slots[i].line != self.line {
            self.fill(line, key);
        }
        &self.slots[i].bytes
    }

    /// Builds `key`'s bytes of the current line (and its dialect's text,
    /// when a framing needs it and it is stale).
    #[cold]
    fn fill(&mut self, line: &ServerLine<'_>, key: RenderKey) {
        let plain = RenderKey {
            framing: Framing::Plain,
            ..key
        }
        .index();
        if self.slots[plain].line != self.line {
            let text = &mut self.slots[plain];
            text.bytes.clear();
            key.dialect.render(line, &mut text.bytes);
            text.line = self.line;
            self.renders += 1;
        }
        if key.framing == Framing::WebSocket {
            let [text, frame] = &mut self.slots[plain..plain + FRAMINGS] else {
                unreachable!("a dialect has one slot per framing");
            };
            let payload = text.bytes.strip_suffix(b"\n").unwrap_or_default();
            frame.bytes.clear();
            ws::text_frame(payload, &mut frame.bytes);
            frame.line = self.line;
            self.frames += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Event, Reply};

    const PLAIN: RenderKey = RenderKey {
        dialect: Dialect::Line,
        framing: Framing::Plain,
    };
    const WS: RenderKey = RenderKey {
        dialect: Dialect::Line,
        framing: Framing::WebSocket,
    };

    #[test]
    fn a_fan_out_renders_once_and_frames_once() {
        let mut cache = LineCache::default();
        let hi: ServerLine<'_> = Event::Said {
            from: "alice",
            room: Some("#lobby"),
            text: "hi",
            stamp: None,
        }
        .into();
        cache.new_line();
        for _ in 0..100 {
            assert_eq!(cache.bytes(&hi, WS), b"\x81\x09alice: hi");
            assert_eq!(cache.bytes(&hi, PLAIN), b"alice: hi\n");
        }
        assert_eq!((cache.renders, cache.frames), (1, 1));
        let yo: ServerLine<'_> = Reply::Pong { token: Some("yo") }.into();
        cache.new_line();
        assert_eq!(cache.bytes(&yo, PLAIN), b"* pong yo\n");
        assert_eq!(cache.bytes(&yo, WS), b"\x81\x09* pong yo");
        assert_eq!((cache.renders, cache.frames), (2, 2));
    }

    #[test]
    fn a_new_line_with_equal_bytes_is_rendered_again() {
        // Keyed by the line's number, not its bytes: no comparison per
        // recipient, and never a stale line.
        let mut cache = LineCache::default();
        let bye: ServerLine<'_> = Reply::Bye.into();
        cache.new_line();
        assert_eq!(cache.bytes(&bye, PLAIN), b"* bye\n");
        cache.new_line();
        assert_eq!(cache.bytes(&bye, PLAIN), b"* bye\n");
        assert_eq!(cache.renders, 2);
    }
}
