//! [`LineCache`]: the bytes of the line being sent, rendered once per
//! (dialect, variant) and framed once per (dialect, variant, framing),
//! whoever it goes to. A client with tags on gets [`Variant::Tagged`]: the
//! tag prefix and the line, rendered once per fan-out like any variant;
//! the asker's labelled copy is made from those bytes
//! ([`LineCache::labelled`]), never rendered again.
//!
//! The chat state hands the server typed lines ([`ServerLine`]); what a
//! recipient gets depends only on its [`RenderKey`]. A fan-out to ten
//! thousand members renders its line once per dialect among them and, for
//! WebSocket members, frames it once: each recipient costs a key lookup and
//! a copy into its queue, never a render, a comparison of line bytes or an
//! allocation.

use crate::chat::history::tails::unix_now_ms;
use crate::net::connection::Connection;
use crate::net::irc::IrcState;
use crate::net::transport::{Encoder, Framing};
use crate::net::ws;
use crate::protocol::irc::{self, Cap, CapSet};
use crate::protocol::tags::{self, Label};
use crate::protocol::{Dialect, Event, ServerLine};

/// Which form of a line a recipient gets (protocol 1.2): a room line
/// reaches the members whose current room it is [`Variant::Plain`] and the
/// others [`Variant::Prefixed`]; every member with tags on gets
/// [`Variant::Tagged`]. Each form is a slot of [`LineCache`] per dialect
/// and framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Variant {
    /// The line as version 1.1 wrote it: any line that is not a room line,
    /// and room lines of the recipient's current room.
    Plain,
    /// A room line of a room that is not the recipient's current one:
    /// `[ROOM] ` and the plain line.
    Prefixed,
    /// For a client with tags on, whatever its current room: the tag
    /// prefix (`time`, and `room`, `id`, `to` where the line has them),
    /// then the line without a `[ROOM] ` prefix.
    Tagged,
}

impl Variant {
    /// How many variants there are: a dimension of [`LineCache`].
    const COUNT: usize = 3;

    /// The variant of a line meant as `prefixed` (see
    /// [`crate::chat::Delivery::prefixed`]).
    #[inline]
    pub fn of(prefixed: bool) -> Variant {
        if prefixed {
            Variant::Prefixed
        } else {
            Variant::Plain
        }
    }

    fn index(self) -> usize {
        match self {
            Variant::Plain => 0,
            Variant::Prefixed => 1,
            Variant::Tagged => 2,
        }
    }
}

/// What decides the bytes one recipient gets for a line: its dialect,
/// which form of the line it gets, its framing and, for IRC, the
/// negotiated capabilities that change the bytes; each is a dimension of
/// [`LineCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RenderKey {
    /// How the recipient's lines are worded.
    pub dialect: Dialect,
    /// Which form of the line it gets.
    pub variant: Variant,
    /// How its transport carries a line.
    pub framing: Framing,
    /// IRC: the capabilities that change the bytes
    /// ([`crate::net::irc::IrcState::render_caps`]); empty for every line
    /// client. A key with some has a slot of its own, made on first use.
    pub caps: CapSet,
}

impl RenderKey {
    /// The key of a line-dialect connection with this encoder and tags on
    /// or off, for a line meant in `variant` (tags on makes any line
    /// [`Variant::Tagged`]).
    #[inline]
    pub fn of(encoder: &Encoder, tags: bool, variant: Variant) -> RenderKey {
        RenderKey {
            dialect: Dialect::Line,
            variant: if tags { Variant::Tagged } else { variant },
            framing: encoder.framing(),
            caps: CapSet::EMPTY,
        }
    }

    /// The key of `conn` for a line meant in `variant`: an IRC connection
    /// gets the IRC dialect (which names the channel in every room line,
    /// so `Prefixed` is `Plain` there) with its capabilities.
    #[inline]
    pub fn for_conn(conn: &Connection, variant: Variant) -> RenderKey {
        match &conn.irc {
            None => RenderKey::of(&conn.codec.encoder, conn.tags, variant),
            Some(irc) => RenderKey {
                dialect: Dialect::Irc,
                variant: Variant::Plain,
                framing: conn.codec.encoder.framing(),
                caps: irc.render_caps(),
            },
        }
    }
}

/// Who an IRC rendering for `conn` addresses (its numerics name its
/// nick); `None` for anyone else. The state is not read here: a room line
/// already rendered for the key never looks at it (one pointer copied
/// per recipient, no cache miss).
#[inline]
pub(super) fn recipient(conn: &Connection) -> Option<&IrcState> {
    conn.irc.as_deref()
}

/// One cached rendering and the line it belongs to.
#[derive(Debug, Default)]
struct Slot {
    /// The [`LineCache::line`] number these bytes are for.
    line: u64,
    bytes: Vec<u8>,
}

/// How many framings there are (see [`RenderKey::index`]).
const FRAMINGS: usize = 3;
/// [`LineCache`]'s slots: every key's, rounded up to a power of two.
const SLOTS: usize = (Dialect::COUNT * Variant::COUNT * FRAMINGS).next_power_of_two();
/// Masks a slot number into `0..SLOTS` (a no-op for a key's slot).
const SLOT_MASK: usize = SLOTS - 1;
/// The slot an IRC connection keeps ([`refresh_slots`]): no slot, its key
/// is worked out per line ([`RenderKey::for_conn`], [`LineCache::bytes`]).
pub(super) const IRC_SLOT: u8 = u8::MAX;
const _: () = assert!(SLOTS <= IRC_SLOT as usize);

/// The [`LineCache`] slots a connection's lines come from, by the variant
/// a fan-out sends ([`Variant::Plain`], [`Variant::Prefixed`]), as the
/// connection keeps them ([`crate::net::connection::Connection::render_slots`]):
/// worked out here, from the same [`RenderKey::of`] as every other
/// rendering, whenever what decides the key changes (the connection is
/// taken in, its codec or its tags change), so the fan-out reads a byte
/// per recipient instead of working its key out. A dialect, when the key
/// gains one, is one more input here; a slot is a `u8` however many
/// there are.
pub(super) fn refresh_slots(conn: &mut crate::net::connection::Connection) {
    if conn.irc.is_some() {
        // IRC keys carry the negotiated caps and some lines are rendered
        // per recipient: worked out per line ([`RenderKey::for_conn`]).
        conn.render_slots = [IRC_SLOT; 2];
        return;
    }
    let slot = |variant| RenderKey::of(&conn.codec.encoder, conn.tags, variant).slot();
    conn.render_slots = [slot(Variant::Plain), slot(Variant::Prefixed)];
}

impl Variant {
    /// This variant's place in [`crate::net::connection::Connection::render_slots`]
    /// (a fan-out sends only these two).
    #[inline]
    pub fn fan_out_index(self) -> usize {
        match self {
            Variant::Plain => 0,
            Variant::Prefixed => 1,
            Variant::Tagged => unreachable!("a fan-out's variants are plain and prefixed"),
        }
    }
}

impl RenderKey {
    /// [`RenderKey::index`] as the byte a connection keeps
    /// ([`refresh_slots`]).
    pub fn slot(self) -> u8 {
        const _: () = assert!(SLOTS <= 256);
        self.index() as u8
    }

    /// The key's slot in a [`LineCache`].
    fn index(self) -> usize {
        let framing = match self.framing {
            Framing::Plain => 0,
            Framing::WebSocket => 1,
            Framing::WebSocketBinary => 2,
        };
        (self.dialect.index() * Variant::COUNT + self.variant.index()) * FRAMINGS + framing
    }
}

/// The line dialect's plain key: no prefix, no tags, no WebSocket frame.
const LINE_PLAIN: RenderKey = RenderKey {
    dialect: Dialect::Line,
    variant: Variant::Plain,
    framing: Framing::Plain,
    caps: CapSet::EMPTY,
};

/// The current line's bytes per [`RenderKey`], built on first use.
#[derive(Debug, Default)]
pub(super) struct LineCache {
    /// Numbers the lines; a slot holding another number is stale. Empty
    /// slots hold 0, and no line is numbered 0 (see [`LineCache::new_line`]).
    line: u64,
    /// The line's bytes per [`RenderKey::index`]: as each dialect writes
    /// each variant (with its `\n`), and as a WebSocket text frame of that
    /// (a power of two of them, so an index masked with [`SLOT_MASK`]
    /// needs no bounds check; the ones past the keys stay empty).
    slots: [Slot; SLOTS],
    /// The current line's `time` tag when it has none of its own: the
    /// moment its first tagged copy was rendered, the same for all.
    time_ms: Option<i64>,
    /// A labelled copy for the asker ([`LineCache::labelled`]), and its
    /// WebSocket frame.
    labelled: Vec<u8>,
    labelled_frame: Vec<u8>,
    /// IRC keys with capabilities ([`RenderKey::caps`]): a slot each,
    /// made on first use (few: one per set of capabilities in use).
    irc_slots: Vec<(RenderKey, Slot)>,
    /// The server's name, for IRC renderings (`--server-name`).
    server: String,
    /// The current line's sender's account, when it is logged in (set by
    /// a fan-out after [`LineCache::new_line`]): IRC's `account-tag` and
    /// `extended-join`.
    pub account: Option<String>,
    /// Renderings done (not served from the cache), for tests.
    pub renders: u64,
    /// WebSocket frames built (not served from the cache), for tests.
    pub frames: u64,
}

impl LineCache {
    /// An empty cache whose IRC renderings name `server` as the server.
    pub fn new(server: &str) -> LineCache {
        LineCache {
            server: server.to_string(),
            ..LineCache::default()
        }
    }

    /// Starts a new line: what the cache holds belongs to the last one.
    pub fn new_line(&mut self) {
        self.line += 1;
        self.time_ms = None;
        self.account = None;
    }

    /// Takes `bytes` (swapped with the slot's old buffer) as the current
    /// line's plain line dialect rendering, made by the chat already
    /// ([`crate::chat::Outbox::rendered_plain`]): its first plain
    /// recipient, and its WebSocket frame, start from them.
    pub fn preset_plain(&mut self, bytes: &mut Vec<u8>) {
        let slot = &mut self.slots[LINE_PLAIN.index()];
        std::mem::swap(&mut slot.bytes, bytes);
        slot.line = self.line;
    }

    /// The bytes to queue for `line` (the current line: the same one since
    /// [`LineCache::new_line`]) for a recipient with `key`. Per recipient
    /// this is an index and a comparison; the first recipient of a key
    /// pays for building its bytes.
    /// `nick` is the recipient's, for the IRC lines that name it (see
    /// [`irc::render::is_shared`]: those are rendered for each recipient).
    #[inline]
    pub fn bytes(
        &mut self,
        line: &ServerLine<'_>,
        key: RenderKey,
        recipient: Option<&IrcState>,
    ) -> &[u8] {
        debug_assert!(self.line > 0, "new_line() before the first line");
        if key.dialect == Dialect::Irc {
            return self.irc_bytes(line, key, recipient);
        }
        let i = key.index();
        if self.slots[i].line != self.line {
            self.fill(line, key);
        }
        &self.slots[i].bytes
    }

    /// [`LineCache::bytes`] for an IRC key: once per line and key for a
    /// line every IRC recipient gets alike, once per recipient for one
    /// that names it (numerics, private messages). The common case (a
    /// room line already rendered for this key) is an index and a check.
    #[inline]
    fn irc_bytes(
        &mut self,
        line: &ServerLine<'_>,
        key: RenderKey,
        recipient: Option<&IrcState>,
    ) -> &[u8] {
        if key.caps == CapSet::EMPTY {
            let i = key.index();
            if self.slots[i].line == self.line && irc::render::is_shared(line) {
                return &self.slots[i].bytes;
            }
        }
        self.fill_irc(line, key, recipient)
    }

    /// Renders `key`'s IRC bytes of the current line (see
    /// [`LineCache::irc_bytes`]).
    #[cold]
    fn fill_irc(
        &mut self,
        line: &ServerLine<'_>,
        key: RenderKey,
        recipient: Option<&IrcState>,
    ) -> &[u8] {
        let nick = recipient.map_or("*", |irc| irc.nick.as_str());
        let shared = irc::render::is_shared(line);
        let at = if key.caps == CapSet::EMPTY {
            None
        } else {
            let found = self.irc_slots.iter().position(|(k, _)| *k == key);
            Some(found.unwrap_or_else(|| {
                self.irc_slots.push((key, Slot::default()));
                self.irc_slots.len() - 1
            }))
        };
        let line_number = self.line;
        let slot = match at {
            None => &mut self.slots[key.index()],
            Some(at) => &mut self.irc_slots[at].1,
        };
        if !shared || slot.line != line_number {
            slot.bytes.clear();
            let ctx = irc::render::Context {
                server: &self.server,
                nick,
            };
            match line {
                ServerLine::Event(Event::Joined { nick, room })
                    if key.caps.contains(Cap::ExtendedJoin) =>
                {
                    // `extended-join`: the account (`*` for none) and the
                    // real name (the nick: the chat keeps no other).
                    let source = irc::mask::nickmask(nick, &self.server);
                    let account = self.account.as_deref().unwrap_or("*");
                    irc::Message::new("JOIN", &[room, account, nick])
                        .from_source(&source)
                        .with_trailing()
                        .write(&mut slot.bytes);
                }
                _ => irc::render::render(line, &ctx, &mut slot.bytes),
            }
            if key.caps != CapSet::EMPTY {
                // The tags its capabilities ask for, on every message:
                // the same for every recipient with this key.
                let stamp = line.tags(*self.time_ms.get_or_insert_with(unix_now_ms));
                let tags = irc::delivery::Tags {
                    time_ms: Some(stamp.time_ms),
                    msgid: stamp.id,
                    account: self.account.as_deref(),
                    ..irc::delivery::Tags::default()
                };
                let mut prefix = Vec::new();
                if tags.write_prefix(key.caps, &mut prefix) {
                    let bare = std::mem::take(&mut slot.bytes);
                    irc::delivery::prefix_each(&prefix, &bare, &mut slot.bytes);
                }
            }
            slot.line = line_number;
            self.renders += 1;
            if key.framing != Framing::Plain {
                // One frame per message (IRC over WebSocket): text, or
                // binary for `binary.ircv3.net`.
                let frame = if key.framing == Framing::WebSocketBinary {
                    ws::binary_frame
                } else {
                    ws::text_frame
                };
                let text = std::mem::take(&mut slot.bytes);
                for message in text.split_inclusive(|&b| b == b'\n') {
                    let message = message.strip_suffix(b"\n").unwrap_or(message);
                    let message = message.strip_suffix(b"\r").unwrap_or(message);
                    frame(message, &mut slot.bytes);
                }
                self.frames += 1;
            }
        }
        let slot = match at {
            None => &self.slots[key.index()],
            Some(at) => &self.irc_slots[at].1,
        };
        &slot.bytes
    }

    /// [`LineCache::bytes`] by slot (a connection's
    /// [`crate::net::connection::Connection::render_slots`]): per
    /// recipient an index and a comparison; `key` (the slot's key) is
    /// asked only to fill a stale slot.
    #[inline(always)]
    pub fn bytes_at(
        &mut self,
        line: &ServerLine<'_>,
        slot: u8,
        key: impl FnOnce() -> RenderKey,
    ) -> &[u8] {
        debug_assert!(self.line > 0, "new_line() before the first line");
        let i = usize::from(slot) & SLOT_MASK;
        if self.slots[i].line != self.line {
            let key = key();
            debug_assert_eq!(key.index(), i, "a connection's slot is stale");
            self.fill(line, key);
        }
        &self.slots[i].bytes
    }

    /// Builds `key`'s bytes of the current line (and its dialect's text of
    /// that variant, when a framing needs it and it is stale).
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
            match key.variant {
                Variant::Plain => key.dialect.render(line, &mut text.bytes),
                Variant::Prefixed => key.dialect.render_prefixed(line, &mut text.bytes),
                Variant::Tagged => {
                    let now = *self.time_ms.get_or_insert_with(unix_now_ms);
                    key.dialect.render_tagged(line, now, &mut text.bytes);
                }
            }
            text.line = self.line;
            self.renders += 1;
        }
        if key.framing == Framing::WebSocket {
            let [text, frame] = &mut self.slots[plain..plain + 2] else {
                unreachable!("a (dialect, variant) has one slot per framing");
            };
            let payload = text.bytes.strip_suffix(b"\n").unwrap_or_default();
            frame.bytes.clear();
            ws::text_frame(payload, &mut frame.bytes);
            frame.line = self.line;
            self.frames += 1;
        }
    }
}

impl LineCache {
    /// The current line for a recipient with tags on (`key` is a tagged
    /// one) answering a command that carried `label`: the shared tagged
    /// bytes with `label=` added (two copies, no render), framed for
    /// WebSocket when `key` says so. Built per call, for the one asker.
    pub fn labelled(&mut self, line: &ServerLine<'_>, key: RenderKey, label: &Label) -> &[u8] {
        let text = RenderKey {
            framing: Framing::Plain,
            ..key
        };
        self.bytes(line, text, None);
        let shared = &self.slots[text.index()].bytes;
        self.labelled.clear();
        tags::insert_label(shared, label.as_str(), &mut self.labelled);
        if key.framing == Framing::Plain {
            return &self.labelled;
        }
        let payload = self.labelled.strip_suffix(b"\n").unwrap_or_default();
        self.labelled_frame.clear();
        ws::text_frame(payload, &mut self.labelled_frame);
        &self.labelled_frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Event, Reply};

    const PLAIN: RenderKey = LINE_PLAIN;
    const WS: RenderKey = RenderKey {
        dialect: Dialect::Line,
        variant: Variant::Plain,
        framing: Framing::WebSocket,
        caps: CapSet::EMPTY,
    };
    const PREFIXED: RenderKey = RenderKey {
        variant: Variant::Prefixed,
        ..PLAIN
    };
    const WS_PREFIXED: RenderKey = RenderKey {
        variant: Variant::Prefixed,
        ..WS
    };
    const TAGGED: RenderKey = RenderKey {
        variant: Variant::Tagged,
        ..PLAIN
    };
    const WS_TAGGED: RenderKey = RenderKey {
        variant: Variant::Tagged,
        ..WS
    };

    /// With tags, a room line has a third encoding, rendered once and
    /// framed once whatever the number of tagged recipients, with one time
    /// and no `[ROOM] ` prefix; the asker's labelled copy is made from it
    /// without a render.
    /// `alice: hi` in `room`, unstamped.
    fn alice_says_hi(room: &str) -> ServerLine<'_> {
        Event::Said {
            from: "alice",
            room: Some(room),
            text: "hi",
            stamp: None,
        }
        .into()
    }

    #[test]
    fn a_tagged_line_renders_once_and_labels_without_rendering() {
        use crate::protocol::Stamp;
        let mut cache = LineCache::default();
        let hi: ServerLine<'_> = Event::Said {
            from: "alice",
            room: Some("#rust"),
            text: "hi there",
            stamp: Some(Stamp {
                id: 8412,
                time_ms: 1_796_638_503_123,
            }),
        }
        .into();
        let tagged = b"@time=2026-12-07T10:15:03.123Z;room=#rust;id=8412 alice: hi there\n";
        cache.new_line();
        for _ in 0..100 {
            assert_eq!(cache.bytes(&hi, PLAIN, None), b"alice: hi there\n");
            assert_eq!(
                cache.bytes(&hi, PREFIXED, None),
                b"[#rust] alice: hi there\n"
            );
            assert_eq!(cache.bytes(&hi, TAGGED, None), tagged);
            let frame = cache.bytes(&hi, WS_TAGGED, None);
            assert_eq!(&frame[2..], &tagged[..tagged.len() - 1]);
        }
        assert_eq!((cache.renders, cache.frames), (3, 1));
        let label = Label::new("q-1").unwrap();
        assert_eq!(
            cache.labelled(&hi, TAGGED, &label),
            b"@time=2026-12-07T10:15:03.123Z;room=#rust;id=8412;label=q-1 alice: hi there\n"
        );
        let text = cache.labelled(&hi, TAGGED, &label).to_vec();
        let frame = cache.labelled(&hi, WS_TAGGED, &label).to_vec();
        assert_eq!(frame[..2], [0x81, text.len() as u8 - 1]);
        assert_eq!(frame[2..], text[..text.len() - 1]);
        assert_eq!(
            (cache.renders, cache.frames),
            (3, 1),
            "no render for labels"
        );
        // A line with no time of its own gets one, the same for everyone.
        cache.new_line();
        let pong: ServerLine<'_> = Reply::Pong { token: None }.into();
        let first = cache.bytes(&pong, TAGGED, None).to_vec();
        assert!(first.starts_with(b"@time=") && first.ends_with(b"Z * pong\n"));
        assert_eq!(
            cache.bytes(&pong, WS_TAGGED, None)[2..],
            first[..first.len() - 1]
        );
    }

    /// A room line: two encodings, plain and prefixed, each rendered once
    /// and framed once, whatever the number of recipients.
    #[test]
    fn a_room_line_renders_once_per_variant() {
        let mut cache = LineCache::default();
        let hi = alice_says_hi("#rust");
        cache.new_line();
        for _ in 0..100 {
            assert_eq!(cache.bytes(&hi, PLAIN, None), b"alice: hi\n");
            assert_eq!(cache.bytes(&hi, PREFIXED, None), b"[#rust] alice: hi\n");
            assert_eq!(
                cache.bytes(&hi, WS_PREFIXED, None),
                b"\x81\x11[#rust] alice: hi"
            );
            assert_eq!(cache.bytes(&hi, WS, None), b"\x81\x09alice: hi");
        }
        assert_eq!((cache.renders, cache.frames), (2, 2));
    }

    #[test]
    fn a_preset_plain_rendering_is_served_and_framed_without_a_render() {
        let mut cache = LineCache::default();
        let hi = alice_says_hi("#rust");
        cache.new_line();
        let mut given = b"alice: hi\n".to_vec();
        cache.preset_plain(&mut given);
        for _ in 0..10 {
            assert_eq!(cache.bytes(&hi, PLAIN, None), b"alice: hi\n");
            assert_eq!(cache.bytes(&hi, WS, None), b"\x81\x09alice: hi");
        }
        assert_eq!((cache.renders, cache.frames), (0, 1));
        // It held for that line only: the next one renders.
        cache.new_line();
        assert_eq!(cache.bytes(&hi, PLAIN, None), b"alice: hi\n");
        assert_eq!(cache.renders, 1);
    }

    #[test]
    fn a_fan_out_renders_once_and_frames_once() {
        let mut cache = LineCache::default();
        let hi = alice_says_hi("#lobby");
        cache.new_line();
        for _ in 0..100 {
            assert_eq!(cache.bytes(&hi, WS, None), b"\x81\x09alice: hi");
            assert_eq!(cache.bytes(&hi, PLAIN, None), b"alice: hi\n");
        }
        assert_eq!((cache.renders, cache.frames), (1, 1));
        let yo: ServerLine<'_> = Reply::Pong { token: Some("yo") }.into();
        cache.new_line();
        assert_eq!(cache.bytes(&yo, PLAIN, None), b"* pong yo\n");
        assert_eq!(cache.bytes(&yo, WS, None), b"\x81\x09* pong yo");
        assert_eq!((cache.renders, cache.frames), (2, 2));
    }

    #[test]
    fn a_new_line_with_equal_bytes_is_rendered_again() {
        // Keyed by the line's number, not its bytes: no comparison per
        // recipient, and never a stale line.
        let mut cache = LineCache::default();
        let bye: ServerLine<'_> = Reply::Bye.into();
        cache.new_line();
        assert_eq!(cache.bytes(&bye, PLAIN, None), b"* bye\n");
        cache.new_line();
        assert_eq!(cache.bytes(&bye, PLAIN, None), b"* bye\n");
        assert_eq!(cache.renders, 2);
    }

    /// An IRC connection's state, registered as `nick`.
    fn named(nick: &str) -> IrcState {
        IrcState {
            nick: nick.to_string(),
            ..IrcState::new()
        }
    }

    const IRC: RenderKey = RenderKey {
        dialect: Dialect::Irc,
        variant: Variant::Plain,
        framing: Framing::Plain,
        caps: CapSet::EMPTY,
    };

    /// A room line to IRC recipients is rendered once for them all, with
    /// the server's name; a numeric names each recipient, so it is
    /// rendered for each (a reply has one recipient).
    #[test]
    fn an_irc_room_line_renders_once_and_a_numeric_per_recipient() {
        let mut cache = LineCache::new("irc.example");
        let hi = alice_says_hi("#rust");
        cache.new_line();
        for i in 0..100 {
            let state = named(&format!("user{i}"));
            let nick = Some(&state);
            assert_eq!(
                cache.bytes(&hi, IRC, nick),
                b":alice!alice@irc.example PRIVMSG #rust :hi\r\n"
            );
            assert_eq!(cache.bytes(&hi, PLAIN, nick), b"alice: hi\n");
        }
        assert_eq!(cache.renders, 2);
        let pong: ServerLine<'_> = Reply::Topic {
            room: "#rust",
            text: "crabs",
        }
        .into();
        cache.new_line();
        assert_eq!(
            cache.bytes(&pong, IRC, Some(&named("bob"))),
            b":irc.example 332 bob #rust :crabs\r\n"
        );
        assert_eq!(
            cache.bytes(&pong, IRC, Some(&named("carol"))),
            b":irc.example 332 carol #rust :crabs\r\n"
        );
    }

    /// With `server-time` and `message-tags` a room line is still rendered
    /// once per set of those capabilities among its IRC recipients (at
    /// most four), never per recipient; over WebSocket, once per framing.
    #[test]
    fn an_irc_room_line_renders_once_per_cap_set_that_changes_its_bytes() {
        use crate::protocol::event::Stamp;
        use crate::protocol::irc::Cap;
        let mut cache = LineCache::new("irc.example");
        let hi: ServerLine<'_> = Event::Said {
            from: "alice",
            room: Some("#rust"),
            text: "hi",
            stamp: Some(Stamp {
                id: 42,
                time_ms: 1_546_612_406_123,
            }),
        }
        .into();
        let with = |caps: &[Cap]| RenderKey {
            caps: irc::delivery::render_caps(CapSet::of(caps)),
            ..IRC
        };
        let tags = with(&[Cap::ServerTime, Cap::MessageTags, Cap::EchoMessage]);
        let time = with(&[Cap::ServerTime]);
        let binary = RenderKey {
            framing: Framing::WebSocketBinary,
            ..with(&[Cap::MessageTags])
        };
        cache.new_line();
        for i in 0..100 {
            let state = named(&format!("user{i}"));
            let nick = Some(&state);
            assert_eq!(
                cache.bytes(&hi, tags, nick),
                b"@time=2019-01-04T14:33:26.123Z;msgid=42 :alice!alice@irc.example PRIVMSG #rust :hi\r\n"
            );
            assert_eq!(
                cache.bytes(&hi, time, nick),
                b"@time=2019-01-04T14:33:26.123Z :alice!alice@irc.example PRIVMSG #rust :hi\r\n"
            );
            assert_eq!(
                cache.bytes(&hi, IRC, nick),
                b":alice!alice@irc.example PRIVMSG #rust :hi\r\n"
            );
            let frame = cache.bytes(&hi, binary, nick);
            assert_eq!(frame[0], 0x82, "a binary frame");
            assert!(frame.ends_with(b"@msgid=42 :alice!alice@irc.example PRIVMSG #rust :hi"));
        }
        assert_eq!(cache.renders, 4, "one per key, whatever the recipients");
        assert_eq!(
            tags,
            with(&[Cap::ServerTime, Cap::MessageTags]),
            "echo-message does not change the bytes: same key"
        );
    }
}
