//! One end-to-end conversation with one peer: the handshake over `:e2e`,
//! then padded transport messages with a rekey after each, the peer's key
//! checked against the pins.
//!
//! A [`Conversation`] is plain data: text and payloads in, [`Event`]s out;
//! the caller relays every [`Event::Send`] payload with `:e2e PEER PAYLOAD`
//! and shows the others. Rules:
//!
//! - Sending with no session starts one (the text waits for the handshake).
//!   Both sides starting at once: the lower account name (lower-cased)
//!   stays the initiator, the other answers.
//! - The prologue is `loopchat-e2e-v1`, the server's name, the initiator's
//!   and the responder's account names (lower-cased), each preceded by its
//!   length as 2 bytes big-endian.
//! - The peer's static key is checked against the pins: first contact pins
//!   it; a changed key finishes the handshake but holds what is sent and
//!   received until [`Conversation::accept_key`].
//! - Transport message N uses nonce N; both sides rekey after each message.
//!   A message with a number already passed (replayed, reordered) or that
//!   does not decrypt (changed) is rejected and changes nothing; a later
//!   number decrypts after rekeying forward and reports the gap as lost.
//! - A hello (handshake message 1) replaces any session: the peer started
//!   over (a reload, a restart).

use super::keys::{PinCheck, Pins};
use super::noise::{random_bytes, Handshake, KeyPair, NoiseError, Transport, KEY_LEN};
use super::wire::{pad, unpad, Kind, Payload, TooLong};

/// The label the prologue starts with.
pub const PROLOGUE_LABEL: &str = "loopchat-e2e-v1";
/// The most transport messages a gap may skip (more is rejected).
pub const MAX_SKIP: u64 = 1024;
/// The most messages held while a changed key waits for the user.
pub const MAX_HELD: usize = 256;

/// The prologue both sides bind their handshake to.
pub fn prologue(server: &str, initiator: &str, responder: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [
        PROLOGUE_LABEL.to_string(),
        server.to_string(),
        initiator.to_ascii_lowercase(),
        responder.to_ascii_lowercase(),
    ] {
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// What a conversation asks its caller to do or show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Relay this payload to the peer (`:e2e PEER PAYLOAD`).
    Send(String),
    /// A message from the peer, decrypted.
    Message(String),
    /// The session is up with this peer key.
    Secure {
        /// The peer's key.
        key: [u8; KEY_LEN],
        /// No key was pinned for the peer before: pinned now.
        first_contact: bool,
        /// The user compared the safety number for this key.
        verified: bool,
    },
    /// The peer's key is not one accepted before: nothing is sent or shown
    /// until the user accepts it.
    KeyChanged {
        /// The new key.
        key: [u8; KEY_LEN],
    },
    /// This many messages from the peer never arrived.
    Lost(u64),
    /// A payload was rejected; the reason is for the user.
    Rejected(Rejection),
}

/// Why a payload from the peer was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a valid payload.
    Malformed,
    /// A message number already passed: replayed or reordered.
    Replayed,
    /// Did not decrypt: changed on the way, or not made for this session.
    Tampered,
    /// A message for a session this side does not have (the handshake
    /// starts again).
    UnknownSession,
    /// A handshake message that does not fit the handshake under way.
    Unexpected,
    /// The handshake failed (changed on the way, or a weak key).
    HandshakeFailed,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rejection::Malformed => "an unreadable end-to-end message",
            Rejection::Replayed => "a replayed or out-of-order message",
            Rejection::Tampered => "a message that was changed or could not be decrypted",
            Rejection::UnknownSession => "a message from an unknown session",
            Rejection::Unexpected => "an unexpected handshake message",
            Rejection::HandshakeFailed => "a failed handshake (changed on the way?)",
        })
    }
}

/// Why a text was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Longer than one encrypted message carries.
    TooLong,
    /// The peer's key changed and the user has not accepted it.
    KeyChanged,
    /// Too many texts wait for the handshake.
    Busy,
}

impl From<TooLong> for SendError {
    fn from(_: TooLong) -> SendError {
        SendError::TooLong
    }
}

#[derive(Debug)]
enum State {
    Idle,
    Handshaking { sid: [u8; 8], hs: Box<Handshake> },
    Open { sid: [u8; 8], transport: Transport },
}

/// One end-to-end conversation (see the module's description).
#[derive(Debug)]
pub struct Conversation {
    server: String,
    me: String,
    peer: String,
    device: KeyPair,
    state: State,
    /// Texts waiting for the session (or for a changed key's acceptance).
    queued: Vec<String>,
    /// Decrypted messages held while a changed key waits.
    held: Vec<String>,
    /// The peer's key while it is not accepted.
    unaccepted: Option<[u8; KEY_LEN]>,
}

impl Conversation {
    /// A conversation on `server` between account `me` (this device's key
    /// pair `device`) and account `peer`.
    pub fn new(server: &str, me: &str, peer: &str, device: KeyPair) -> Conversation {
        Conversation {
            server: server.to_string(),
            me: me.to_string(),
            peer: peer.to_string(),
            device,
            state: State::Idle,
            queued: Vec::new(),
            held: Vec::new(),
            unaccepted: None,
        }
    }

    /// The peer's account name.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// This device's key pair.
    pub fn device(&self) -> &KeyPair {
        &self.device
    }

    /// Whether a session is open and sending is allowed.
    pub fn is_secure(&self) -> bool {
        matches!(self.state, State::Open { .. }) && self.unaccepted.is_none()
    }

    /// The peer's key once a handshake authenticated it.
    pub fn peer_key(&self) -> Option<[u8; KEY_LEN]> {
        match &self.state {
            State::Open { transport, .. } => Some(transport.remote_static),
            _ => None,
        }
    }

    /// The 60-digit safety number of this conversation, once a handshake
    /// authenticated the peer's key.
    pub fn safety_number(&self) -> Option<String> {
        let peer_key = self.peer_key()?;
        Some(super::safety::safety_number(
            &self.me,
            &self.device.public,
            &self.peer,
            &peer_key,
        ))
    }

    /// The user compared the safety number and it matched: the peer's
    /// current key is marked verified. `false` if there is no accepted key
    /// to mark.
    pub fn verify(&mut self, pins: &mut Pins) -> std::io::Result<bool> {
        match (self.peer_key(), self.unaccepted) {
            (Some(key), None) => pins.verify(&self.server, &self.peer, &key),
            _ => Ok(false),
        }
    }

    /// Whether end to end is under way with the peer: a handshake ran or
    /// runs, or texts wait for one.
    pub fn is_started(&self) -> bool {
        !matches!(self.state, State::Idle) || !self.queued.is_empty()
    }

    /// The peer's key that waits for the user's acceptance.
    pub fn unaccepted_key(&self) -> Option<[u8; KEY_LEN]> {
        self.unaccepted
    }

    fn payload(kind: Kind, sid: [u8; 8], data: Vec<u8>) -> Event {
        Event::Send(Payload { kind, sid, data }.encode())
    }

    /// Encrypts `text` for the peer, or starts the handshake and keeps it
    /// until the session is up.
    pub fn send(&mut self, text: &str) -> Result<Vec<Event>, SendError> {
        pad(text)?;
        if self.unaccepted.is_some() {
            return Err(SendError::KeyChanged);
        }
        match &mut self.state {
            State::Open { sid, transport } => {
                let sid = *sid;
                Ok(vec![seal(sid, transport, text)])
            }
            State::Handshaking { .. } => {
                if self.queued.len() >= MAX_HELD {
                    return Err(SendError::Busy);
                }
                self.queued.push(text.to_string());
                Ok(Vec::new())
            }
            State::Idle => {
                self.queued.push(text.to_string());
                Ok(vec![self.start()])
            }
        }
    }

    /// Starts a new handshake as the initiator (after a failure, or to
    /// replace a session).
    pub fn start(&mut self) -> Event {
        let sid = random_bytes();
        let mut hs = Handshake::new(
            true,
            &prologue(&self.server, &self.me, &self.peer),
            self.device.clone(),
        );
        let hello = hs
            .write(&[])
            .expect("the first message of a fresh handshake");
        self.state = State::Handshaking {
            sid,
            hs: Box::new(hs),
        };
        Conversation::payload(Kind::Hello, sid, hello)
    }

    /// Handles a payload from the peer.
    pub fn receive(&mut self, text: &str, pins: &mut Pins) -> Vec<Event> {
        let Ok(payload) = Payload::decode(text) else {
            return vec![Event::Rejected(Rejection::Malformed)];
        };
        match payload.kind {
            Kind::Hello => self.on_hello(payload),
            Kind::Reply => self.on_reply(payload, pins),
            Kind::Finish => self.on_finish(payload, pins),
            Kind::Message(n) => self.on_message(payload.sid, n, &payload.data),
        }
    }

    fn on_hello(&mut self, payload: Payload) -> Vec<Event> {
        if let State::Handshaking { hs, .. } = &self.state {
            // Both started: the lower name stays the initiator.
            if hs.is_initiator() && self.me.to_ascii_lowercase() < self.peer.to_ascii_lowercase() {
                return Vec::new();
            }
        }
        let mut hs = Handshake::new(
            false,
            &prologue(&self.server, &self.peer, &self.me),
            self.device.clone(),
        );
        let reply = hs.read(&payload.data).and_then(|_| hs.write(&[]));
        match reply {
            Ok(reply) => {
                self.state = State::Handshaking {
                    sid: payload.sid,
                    hs: Box::new(hs),
                };
                vec![Conversation::payload(Kind::Reply, payload.sid, reply)]
            }
            Err(_) => vec![Event::Rejected(Rejection::HandshakeFailed)],
        }
    }

    fn on_reply(&mut self, payload: Payload, pins: &mut Pins) -> Vec<Event> {
        let State::Handshaking { sid, hs } = &mut self.state else {
            return vec![Event::Rejected(Rejection::Unexpected)];
        };
        if *sid != payload.sid || !hs.is_initiator() || hs.is_my_turn() {
            return vec![Event::Rejected(Rejection::Unexpected)];
        }
        let sid = *sid;
        let finish = hs.read(&payload.data).and_then(|_| hs.write(&[]));
        match finish.and_then(|finish| Ok((finish, hs.finish()?))) {
            Ok((finish, transport)) => {
                let mut events = vec![Conversation::payload(Kind::Finish, sid, finish)];
                events.extend(self.open(sid, transport, pins));
                events
            }
            Err(err) => self.failed(err),
        }
    }

    fn on_finish(&mut self, payload: Payload, pins: &mut Pins) -> Vec<Event> {
        let State::Handshaking { sid, hs } = &mut self.state else {
            return vec![Event::Rejected(Rejection::Unexpected)];
        };
        if *sid != payload.sid || hs.is_initiator() || hs.is_my_turn() {
            return vec![Event::Rejected(Rejection::Unexpected)];
        }
        let sid = *sid;
        match hs.read(&payload.data).and_then(|_| hs.finish()) {
            Ok(transport) => self.open(sid, transport, pins),
            Err(err) => self.failed(err),
        }
    }

    fn failed(&mut self, _err: NoiseError) -> Vec<Event> {
        self.state = State::Idle;
        vec![Event::Rejected(Rejection::HandshakeFailed)]
    }

    /// The handshake is done: check the key, then send what waited.
    fn open(&mut self, sid: [u8; 8], transport: Transport, pins: &mut Pins) -> Vec<Event> {
        let key = transport.remote_static;
        self.state = State::Open { sid, transport };
        let mut events = Vec::new();
        match pins.check(&self.server, &self.peer, &key) {
            PinCheck::FirstContact => {
                // Pinned in memory even if the file cannot be written.
                let _ = pins.accept(&self.server, &self.peer, &key);
                events.push(Event::Secure {
                    key,
                    first_contact: true,
                    verified: false,
                });
            }
            PinCheck::Known { verified } => events.push(Event::Secure {
                key,
                first_contact: false,
                verified,
            }),
            PinCheck::Changed { .. } => {
                self.unaccepted = Some(key);
                return vec![Event::KeyChanged { key }];
            }
        }
        self.unaccepted = None;
        events.extend(self.flush());
        events
    }

    fn flush(&mut self) -> Vec<Event> {
        let mut events: Vec<Event> = self.held.drain(..).map(Event::Message).collect();
        if let State::Open { sid, transport } = &mut self.state {
            for text in self.queued.drain(..) {
                events.push(seal(*sid, transport, &text));
            }
        }
        events
    }

    /// The user accepts the peer's changed key: it is pinned, held
    /// messages are shown and waiting texts sent.
    pub fn accept_key(&mut self, pins: &mut Pins) -> std::io::Result<Vec<Event>> {
        let Some(key) = self.unaccepted else {
            return Ok(Vec::new());
        };
        pins.accept(&self.server, &self.peer, &key)?;
        self.unaccepted = None;
        let mut events = vec![Event::Secure {
            key,
            first_contact: false,
            verified: false,
        }];
        events.extend(self.flush());
        Ok(events)
    }

    fn on_message(&mut self, sid: [u8; 8], n: u64, data: &[u8]) -> Vec<Event> {
        let State::Open {
            sid: open,
            transport,
        } = &mut self.state
        else {
            return self.unknown_session();
        };
        if *open != sid {
            return self.unknown_session();
        }
        let expected = transport.recv.nonce();
        if n < expected {
            return vec![Event::Rejected(Rejection::Replayed)];
        }
        if n - expected > MAX_SKIP {
            return vec![Event::Rejected(Rejection::Tampered)];
        }
        // Decrypt on a copy: nothing changes unless it succeeds.
        let mut recv = transport.recv.clone();
        recv.skip_to(n);
        let Some(text) = recv.decrypt(&[], data).ok().and_then(|p| unpad(&p)) else {
            return vec![Event::Rejected(Rejection::Tampered)];
        };
        recv.rekey();
        transport.recv = recv;
        let mut events = Vec::new();
        if n > expected {
            events.push(Event::Lost(n - expected));
        }
        if self.unaccepted.is_some() {
            if self.held.len() < MAX_HELD {
                self.held.push(text);
            }
        } else {
            events.push(Event::Message(text));
        }
        events
    }

    /// A message for a session this side lost: start a new one so the
    /// peer's next messages can be read.
    fn unknown_session(&mut self) -> Vec<Event> {
        let mut events = vec![Event::Rejected(Rejection::UnknownSession)];
        if !matches!(self.state, State::Handshaking { .. }) {
            events.push(self.start());
        }
        events
    }
}

/// Encrypts one padded text with the next nonce and rekeys.
fn seal(sid: [u8; 8], transport: &mut Transport, text: &str) -> Event {
    let n = transport.send.nonce();
    let padded = pad(text).expect("checked by send");
    let data = transport
        .send
        .encrypt(&[], &padded)
        .expect("2^64 messages are never sent");
    transport.send.rekey();
    Conversation::payload(Kind::Message(n), sid, data)
}
