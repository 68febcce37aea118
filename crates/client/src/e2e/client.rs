//! What a client needs to add end-to-end messages to its chat: this
//! device's key and pins from a folder, one [`Conversation`] per peer, and
//! the translation between the user's intent, the protocol's lines and
//! what to show.
//!
//! - [`E2e::publish`]: the `:key KEY` line to send after logging in.
//! - [`E2e::send`]: the user asked for an encrypted message to a peer; the
//!   lines to send (`:e2e PEER PAYLOAD`), never the text in the clear.
//!   Before a new handshake it also asks the server's key directory
//!   (`:keys PEER`), so the user learns at once that a peer has no key
//!   (and can only be reached by a plain `:pm`, which the server reads), or
//!   that the directory lists none of the keys accepted before.
//! - [`E2e::on_line`]: a server line; an `[e2e] PEER: PAYLOAD` line gives
//!   lines to send back and [`Shown`] items, and so does the `* keys PEER:
//!   …` answer to a question [`E2e::send`] asked; any other line `None`.
//! - [`E2e::accept`], [`E2e::verify`], [`E2e::safety_number`]: the user's
//!   answers to a key change and the safety number.

use super::keys::{decode_key, encode_key, load_or_create_device_key, PinCheck, Pins};
use super::noise::KeyPair;
use super::session::{Conversation, Event, Rejection, SendError};
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;

/// The prefix of a relayed payload from the server.
pub const RELAYED: &str = "[e2e] ";
/// The prefix of the server's answer to `:keys NAME`.
pub const KEYS_ANSWER: &str = "* keys ";
/// The file of the device key in the folder given to [`E2e::open`].
pub const KEY_FILE: &str = "device.key";
/// The file of the pins in the same folder.
pub const PINS_FILE: &str = "pins";

/// What the user should see from one end-to-end event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// A decrypted message from `peer`: show it with a lock.
    Message {
        /// Who sent it.
        peer: String,
        /// What they wrote.
        text: String,
    },
    /// Information about the conversation with `peer` (a secure session,
    /// lost messages); `warning` when it needs the user's attention (a
    /// changed key, a rejected message).
    Notice {
        /// The conversation.
        peer: String,
        /// The sentence to show.
        text: String,
        /// Shown as an error.
        warning: bool,
    },
}

/// What a private conversation is now, as the user should see it: the
/// lock, or the mark that the server can read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Nothing end to end with this peer: private messages go as plain
    /// `:pm`, which the server can read.
    Plain,
    /// End to end was used with this peer (a key is pinned, or a handshake
    /// ran or runs), but no session is up: what the user types waits for
    /// one, never goes in the clear.
    Pending,
    /// A session is up and its key accepted; `verified` when the user
    /// compared the safety number.
    Secure {
        /// The key is marked verified.
        verified: bool,
    },
    /// The peer's key changed: nothing is sent until the user accepts it.
    KeyChanged,
}

/// A client's end-to-end side (see the module's description).
pub struct E2e {
    server: String,
    me: String,
    device: KeyPair,
    pins: Pins,
    conversations: HashMap<String, Conversation>,
    /// Peers (lower-cased) whose `:keys` answer we wait for.
    asked: HashSet<String>,
}

impl E2e {
    /// The device key and pins in `folder` (made with mode 0600 when
    /// missing), for account `me` on the server named `server`.
    pub fn open(folder: &Path, server: &str, me: &str) -> io::Result<E2e> {
        std::fs::create_dir_all(folder)?;
        let device = load_or_create_device_key(&folder.join(KEY_FILE))?;
        let pins = Pins::open(&folder.join(PINS_FILE))?;
        Ok(E2e::with(device, pins, server, me))
    }

    /// An end-to-end side with a given key and pins (tests).
    pub fn with(device: KeyPair, pins: Pins, server: &str, me: &str) -> E2e {
        E2e {
            server: server.to_string(),
            me: me.to_string(),
            device,
            pins,
            conversations: HashMap::new(),
            asked: HashSet::new(),
        }
    }

    /// This device's public key, as `:key` takes it.
    pub fn public_key(&self) -> String {
        encode_key(&self.device.public)
    }

    /// The line that publishes this device's key.
    pub fn publish(&self) -> String {
        format!(":key {}", self.public_key())
    }

    fn conversation(&mut self, peer: &str) -> &mut Conversation {
        let id = peer.to_ascii_lowercase();
        let (server, me, device) = (&self.server, &self.me, &self.device);
        self.conversations
            .entry(id)
            .or_insert_with(|| Conversation::new(server, me, peer, device.clone()))
    }

    /// Whether messages to `peer` go end to end right now (a session is up
    /// and its key accepted): the lock.
    pub fn is_secure(&self, peer: &str) -> bool {
        self.conversations
            .get(&peer.to_ascii_lowercase())
            .is_some_and(Conversation::is_secure)
    }

    /// What the conversation with `peer` is now (see [`Lock`]).
    pub fn lock(&self, peer: &str) -> Lock {
        let conversation = self
            .conversations
            .get(&peer.to_ascii_lowercase())
            .filter(|c| c.is_started());
        match conversation {
            Some(c) if c.unaccepted_key().is_some() => Lock::KeyChanged,
            Some(c) => match c.peer_key().filter(|_| c.is_secure()) {
                Some(key) => Lock::Secure {
                    verified: matches!(
                        self.pins.check(&self.server, peer, &key),
                        PinCheck::Known { verified: true }
                    ),
                },
                None => Lock::Pending,
            },
            None if self.pins.has(&self.server, peer) => Lock::Pending,
            None => Lock::Plain,
        }
    }

    /// Encrypts `text` for `peer`: the lines to send. The text waits for
    /// the handshake when there is no session yet; it is never sent in the
    /// clear.
    pub fn send(&mut self, peer: &str, text: &str) -> Result<Vec<String>, SendError> {
        let events = self.conversation(peer).send(text)?;
        let (mut lines, _) = self.sort(peer, events);
        let hello = format!(":e2e {peer} v1.a.");
        if lines.iter().any(|line| line.starts_with(&hello)) {
            // A new handshake: ask the directory first, its answer comes
            // before any answer of the peer's.
            self.asked.insert(peer.to_ascii_lowercase());
            lines.insert(0, format!(":keys {peer}"));
        }
        Ok(lines)
    }

    /// The server's `* keys PEER: …` answer to a question of
    /// [`E2e::send`]: a warning when PEER has no key, or none of its keys
    /// is one accepted before; nothing to show otherwise.
    fn on_keys(&mut self, rest: &str) -> Option<(Vec<String>, Vec<Shown>)> {
        let (peer, keys) = rest.split_once(": ")?;
        if !self.asked.remove(&peer.to_ascii_lowercase()) {
            return None;
        }
        let warning = |text: String| Shown::Notice {
            peer: peer.to_string(),
            text,
            warning: true,
        };
        let listed: Vec<_> = keys.split(' ').filter_map(decode_key).collect();
        let shown = if keys == "none" || listed.is_empty() {
            vec![warning(format!(
                "{peer} has published no end-to-end key, so cannot read end-to-end \
                 messages yet (yours waits; nothing was sent in the clear); a plain \
                 :pm reaches {peer} but is readable by the server"
            ))]
        } else if listed.iter().all(|key| {
            matches!(
                self.pins.check(&self.server, peer, key),
                PinCheck::Changed { .. }
            )
        }) {
            vec![warning(format!(
                "the server lists keys for {peer} that you never accepted (a new \
                 device, or someone in between): the handshake will tell, and nothing \
                 is sent to a changed key until you accept it"
            ))]
        } else {
            Vec::new()
        };
        Some((Vec::new(), shown))
    }

    /// Handles a server line: `None` unless it is `[e2e] PEER: PAYLOAD`;
    /// otherwise the lines to send back and what to show.
    pub fn on_line(&mut self, line: &str) -> Option<(Vec<String>, Vec<Shown>)> {
        if let Some(rest) = line.strip_prefix(KEYS_ANSWER) {
            return self.on_keys(rest);
        }
        let rest = line.strip_prefix(RELAYED)?;
        let (peer, payload) = rest.split_once(": ")?;
        if peer.is_empty() || peer.contains(' ') {
            return None;
        }
        let peer = peer.to_string();
        self.conversation(&peer);
        let conversation = self
            .conversations
            .get_mut(&peer.to_ascii_lowercase())
            .expect("made above");
        let events = conversation.receive(payload, &mut self.pins);
        Some(self.sort(&peer, events))
    }

    /// The user accepts `peer`'s changed key.
    pub fn accept(&mut self, peer: &str) -> io::Result<(Vec<String>, Vec<Shown>)> {
        let events = match self.conversations.get_mut(&peer.to_ascii_lowercase()) {
            Some(conversation) => conversation.accept_key(&mut self.pins)?,
            None => Vec::new(),
        };
        Ok(self.sort(peer, events))
    }

    /// The user compared the safety number with `peer`: marks the key
    /// verified (`false` if there is no accepted key to mark).
    pub fn verify(&mut self, peer: &str) -> io::Result<bool> {
        match self.conversations.get_mut(&peer.to_ascii_lowercase()) {
            Some(conversation) => conversation.verify(&mut self.pins),
            None => Ok(false),
        }
    }

    /// The safety number with `peer`, in groups of five digits.
    pub fn safety_number(&self, peer: &str) -> Option<String> {
        let conversation = self.conversations.get(&peer.to_ascii_lowercase())?;
        Some(super::safety::grouped(&conversation.safety_number()?))
    }

    /// Splits events into lines to send and things to show.
    fn sort(&self, peer: &str, events: Vec<Event>) -> (Vec<String>, Vec<Shown>) {
        let mut lines = Vec::new();
        let mut shown = Vec::new();
        let notice = |text: String, warning: bool| Shown::Notice {
            peer: peer.to_string(),
            text,
            warning,
        };
        for event in events {
            match event {
                Event::Send(payload) => lines.push(format!(":e2e {peer} {payload}")),
                Event::Message(text) => shown.push(Shown::Message {
                    peer: peer.to_string(),
                    text,
                }),
                Event::Secure {
                    first_contact,
                    verified,
                    ..
                } => shown.push(notice(
                    format!(
                        "messages with {peer} are end-to-end encrypted{}",
                        if verified {
                            " (verified)"
                        } else if first_contact {
                            " (first contact: compare safety numbers to be sure)"
                        } else {
                            ""
                        }
                    ),
                    false,
                )),
                Event::KeyChanged { .. } => shown.push(notice(
                    format!(
                        "{peer}'s key changed: nothing is sent to {peer} until you accept \
                         the new key (compare safety numbers first)"
                    ),
                    true,
                )),
                Event::Lost(count) => shown.push(notice(
                    format!("{count} end-to-end message(s) from {peer} never arrived"),
                    true,
                )),
                Event::Rejected(reason) => shown.push(notice(
                    format!("{} from {peer} was rejected", rejection_text(reason)),
                    true,
                )),
            }
        }
        (lines, shown)
    }
}

fn rejection_text(reason: Rejection) -> String {
    let text = reason.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relays `:e2e PEER PAYLOAD` lines as the server does, until quiet.
    fn relay(a: &mut E2e, b: &mut E2e, mut from_a: Vec<String>) -> (Vec<Shown>, Vec<Shown>) {
        let (mut shown_a, mut shown_b) = (Vec::new(), Vec::new());
        let mut from_b: Vec<String> = Vec::new();
        while !from_a.is_empty() || !from_b.is_empty() {
            // The directory's answers are the tests' business, not the relay's.
            from_a.retain(|line| !line.starts_with(":keys "));
            for line in std::mem::take(&mut from_a) {
                let payload = line.strip_prefix(":e2e bob ").expect("to bob");
                let (lines, shown) = b.on_line(&format!("[e2e] alice: {payload}")).unwrap();
                from_b.extend(lines);
                shown_b.extend(shown);
            }
            from_b.retain(|line| !line.starts_with(":keys "));
            for line in std::mem::take(&mut from_b) {
                let payload = line.strip_prefix(":e2e alice ").expect("to alice");
                let (lines, shown) = a.on_line(&format!("[e2e] bob: {payload}")).unwrap();
                from_a.extend(lines);
                shown_a.extend(shown);
            }
        }
        (shown_a, shown_b)
    }

    #[test]
    fn two_clients_talk_through_relayed_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut alice = E2e::open(&dir.path().join("alice"), "loopchat", "alice").unwrap();
        let mut bob = E2e::with(KeyPair::generate(), Pins::in_memory(), "loopchat", "bob");
        assert!(alice.publish().starts_with(":key ") && alice.publish().len() == 5 + 43);
        assert!(!alice.is_secure("bob"));
        assert_eq!(alice.lock("bob"), Lock::Plain);
        assert_eq!(alice.lock("carol"), Lock::Plain);
        let lines = alice.send("bob", "hello bob").unwrap();
        assert_eq!(
            alice.lock("Bob"),
            Lock::Pending,
            "asked for, no session yet"
        );
        assert_eq!(lines[0], ":keys bob", "the directory first");
        assert!(lines[1].starts_with(":e2e bob v1.a."), "{lines:?}");
        assert!(!lines.iter().any(|l| l.contains("hello bob")));
        let (shown_a, shown_b) = relay(&mut alice, &mut bob, lines);
        assert!(alice.is_secure("bob") && bob.is_secure("alice"));
        assert!(matches!(
            &shown_a[..],
            [Shown::Notice { warning: false, .. }]
        ));
        assert_eq!(
            shown_b.last(),
            Some(&Shown::Message {
                peer: "alice".into(),
                text: "hello bob".into()
            })
        );
        assert_eq!(alice.safety_number("bob"), bob.safety_number("alice"));
        assert_eq!(alice.safety_number("bob").unwrap().len(), 60 + 11);
        assert_eq!(alice.lock("bob"), Lock::Secure { verified: false });
        assert_eq!(bob.lock("alice"), Lock::Secure { verified: false });
        assert!(alice.verify("bob").unwrap());
        assert_eq!(alice.lock("bob"), Lock::Secure { verified: true });
        assert_eq!(alice.on_line("* welcome guest1"), None);
        assert_eq!(alice.on_line("[pm] bob: not encrypted"), None);

        // The pins and key are on disk: a restarted alice knows bob.
        let mut again = E2e::open(&dir.path().join("alice"), "loopchat", "alice").unwrap();
        assert_eq!(again.public_key(), alice.public_key());
        assert_eq!(
            again.lock("bob"),
            Lock::Pending,
            "a pinned key: never plain"
        );
        assert_eq!(again.lock("carol"), Lock::Plain);
        let lines = again.send("bob", "after a restart").unwrap();
        let (shown_a, shown_b) = relay(&mut again, &mut bob, lines);
        assert_eq!(
            shown_a,
            vec![Shown::Notice {
                peer: "bob".into(),
                text: "messages with bob are end-to-end encrypted (verified)".into(),
                warning: false
            }]
        );
        assert!(shown_b.contains(&Shown::Message {
            peer: "alice".into(),
            text: "after a restart".into()
        }));
    }

    #[test]
    fn a_changed_key_warns_and_blocks_until_accepted() {
        let mut alice = E2e::with(KeyPair::generate(), Pins::in_memory(), "loopchat", "alice");
        let mut bob = E2e::with(KeyPair::generate(), Pins::in_memory(), "loopchat", "bob");
        let lines = alice.send("bob", "one").unwrap();
        relay(&mut alice, &mut bob, lines);
        let mut new_bob = E2e::with(KeyPair::generate(), Pins::in_memory(), "loopchat", "bob");
        let lines = alice.send("bob", "two").unwrap();
        // Bob's new device has no session: it starts one.
        let (shown_a, _) = relay(&mut alice, &mut new_bob, lines);
        assert!(
            shown_a
                .iter()
                .any(|s| matches!(s, Shown::Notice { warning: true, text, .. }
                if text.contains("key changed"))),
            "{shown_a:?}"
        );
        assert_eq!(alice.send("bob", "three"), Err(SendError::KeyChanged));
        assert_eq!(alice.lock("bob"), Lock::KeyChanged);
        let (lines, shown) = alice.accept("bob").unwrap();
        assert!(lines.is_empty());
        assert!(matches!(&shown[..], [Shown::Notice { warning: false, .. }]));
        assert_eq!(alice.send("bob", "four").unwrap().len(), 1);
    }

    #[test]
    fn the_directory_is_asked_before_a_handshake_and_its_answer_is_checked() {
        let mut alice = E2e::with(KeyPair::generate(), Pins::in_memory(), "loopchat", "alice");
        let mut bob = E2e::with(KeyPair::generate(), Pins::in_memory(), "loopchat", "bob");
        let bob_key = bob.public_key();
        let warned = |answer: Option<(Vec<String>, Vec<Shown>)>, needle: &str| {
            let (lines, shown) = answer.expect("the answer is ours");
            assert!(lines.is_empty());
            match &shown[..] {
                [Shown::Notice {
                    text,
                    warning: true,
                    ..
                }] => assert!(text.contains(needle), "{text}"),
                other => panic!("{other:?}"),
            }
        };
        // No key: said before any handshake, and nothing in the clear.
        let lines = alice.send("carol", "hi carol").unwrap();
        assert_eq!(lines[0], ":keys carol");
        assert!(!lines.iter().any(|l| l.contains("hi carol")));
        warned(
            alice.on_line("* keys Carol: none"),
            "Carol has published no end-to-end key",
        );
        assert_eq!(
            alice.on_line("* keys carol: none"),
            None,
            "an answer not asked for is the user's own (shown as the server sent it)"
        );

        // A first contact: the directory's key is not judged.
        let lines = alice.send("bob", "hello").unwrap();
        assert_eq!(lines[0], ":keys bob");
        assert_eq!(
            alice.on_line(&format!("* keys bob: {bob_key}")),
            Some((Vec::new(), Vec::new()))
        );
        relay(&mut alice, &mut bob, lines);
        assert!(alice.is_secure("bob"));
        // The session is up: sending asks nothing more.
        let lines = alice.send("bob", "again").unwrap();
        assert!(lines.len() == 1 && lines[0].starts_with(":e2e bob v1.m."));

        // A restarted alice (same pins) asks again: the pinned key listed
        // with others is fine; only keys never accepted are flagged.
        let pins = std::mem::take(&mut alice.pins);
        let mut again = E2e::with(alice.device.clone(), pins, "loopchat", "alice");
        let other = encode_key(&KeyPair::generate().public);
        again.send("bob", "after a restart").unwrap();
        assert_eq!(
            again.on_line(&format!("* keys bob: {other} {bob_key}")),
            Some((Vec::new(), Vec::new()))
        );
        let mut third = E2e::with(
            alice.device.clone(),
            std::mem::take(&mut again.pins),
            "loopchat",
            "alice",
        );
        third.send("bob", "swapped").unwrap();
        warned(
            third.on_line(&format!("* keys bob: {other}")),
            "the server lists keys for bob that you never accepted",
        );
    }
}
