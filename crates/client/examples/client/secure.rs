//! End-to-end encrypted private messages in the full-screen client, over
//! the library's [`loopchat_client::e2e::E2e`] (docs/e2e.md).
//!
//! The client's own commands, never sent as typed:
//!
//! - `:e2e NICK TEXT`: TEXT encrypted for NICK; the wire only ever carries
//!   `:e2e NICK PAYLOAD`. If it cannot be encrypted nothing is sent.
//! - `:e2e-accept NICK`: accept NICK's changed key (after comparing).
//! - `:e2e-safety NICK`: show the safety number to compare with NICK.
//! - `:e2e-verify NICK`: mark NICK's key verified (the numbers matched).
//! - `:key` with nothing after it: publish this device's key.
//!
//! `[e2e] NICK: PAYLOAD` lines from the server are decrypted; what cannot
//! be is shown as a warning, never as a message. The device key and the
//! pins live in `--e2e-dir` (made on first use, mode 0600).
//! [`Secure::lock`] says what a private conversation is (the lock the
//! screen shows, and whether a line typed there goes end to end).

use loopchat_client::e2e::{E2e, Lock, SendError, Shown};
use std::path::PathBuf;

/// What the chat state should do with an input line or server line the
/// end-to-end side took.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// Lines to send.
    pub send: Vec<String>,
    /// Decrypted messages in (`from`, text), or ours out (`to`, text).
    pub messages: Vec<(String, String, bool)>,
    /// Information (`false`) and warnings (`true`) to show.
    pub notes: Vec<(String, bool)>,
}

impl Taken {
    fn note(text: impl Into<String>, warning: bool) -> Taken {
        Taken {
            notes: vec![(text.into(), warning)],
            ..Taken::default()
        }
    }

    fn shown(&mut self, shown: Vec<Shown>) {
        for item in shown {
            match item {
                Shown::Message { peer, text } => self.messages.push((peer, text, false)),
                Shown::Notice { text, warning, .. } => self.notes.push((text, warning)),
            }
        }
    }
}

/// The client's end-to-end side: opened on first use, for the nick we have
/// then (the account name once accounts exist).
pub struct Secure {
    dir: PathBuf,
    server_name: String,
    side: Option<(String, E2e)>,
}

impl Secure {
    /// Keys and pins in `dir`; `server_name` goes into every handshake.
    pub fn new(dir: PathBuf, server_name: String) -> Secure {
        Secure {
            dir,
            server_name,
            side: None,
        }
    }

    /// The end-to-end side for `me`, opened (or opened again after a
    /// rename: sessions are bound to names) when needed.
    fn side(&mut self, me: &str) -> Result<&mut E2e, String> {
        if self.side.as_ref().is_none_or(|(name, _)| name != me) {
            let side = E2e::open(&self.dir, &self.server_name, me)
                .map_err(|e| format!("end-to-end keys in {}: {e}", self.dir.display()))?;
            self.side = Some((me.to_string(), side));
        }
        Ok(&mut self.side.as_mut().expect("opened above").1)
    }

    /// Whether messages to `peer` go end to end now (the lock).
    #[cfg(test)]
    pub fn is_secure(&self, peer: &str) -> bool {
        self.side.as_ref().is_some_and(|(_, s)| s.is_secure(peer))
    }

    /// What the private conversation with `peer` is now: the lock to show,
    /// and whether what is typed there goes end to end (anything but
    /// [`Lock::Plain`]).
    pub fn lock(&self, peer: &str) -> Lock {
        self.side
            .as_ref()
            .map_or(Lock::Plain, |(_, s)| s.lock(peer))
    }

    /// An input line: `None` unless it is one of this module's commands.
    pub fn on_input(&mut self, me: &str, input: &str) -> Option<Taken> {
        let (word, args) = input.split_once(' ').unwrap_or((input, ""));
        let word = word.to_ascii_lowercase();
        let peer = args.split(' ').next().unwrap_or("");
        let taken = match word.as_str() {
            ":key" if args.trim().is_empty() => self.side(me).map(|side| Taken {
                send: vec![side.publish()],
                ..Taken::default()
            }),
            ":e2e" => Ok(self.send(me, args)),
            ":e2e-accept" if !peer.is_empty() => {
                self.side(me).map(|side| match side.accept(peer) {
                    Ok((send, shown)) => {
                        let mut taken = Taken {
                            send,
                            ..Taken::default()
                        };
                        taken.shown(shown);
                        if taken.notes.is_empty() {
                            taken.notes.push((format!("no key of {peer} waits"), false));
                        }
                        taken
                    }
                    Err(e) => Taken::note(format!("cannot save the pins: {e}"), true),
                })
            }
            ":e2e-safety" if !peer.is_empty() => {
                self.side(me).map(|side| match side.safety_number(peer) {
                    Some(number) => Taken::note(
                        format!(
                            "safety number with {peer}: {number} (the same on both \
                             screens: no one in between; then :e2e-verify {peer})"
                        ),
                        false,
                    ),
                    None => Taken::note(format!("no end-to-end session with {peer} yet"), true),
                })
            }
            ":e2e-verify" if !peer.is_empty() => {
                self.side(me).map(|side| match side.verify(peer) {
                    Ok(true) => Taken::note(format!("{peer}'s key is marked verified"), false),
                    Ok(false) => Taken::note(format!("no accepted key of {peer} to verify"), true),
                    Err(e) => Taken::note(format!("cannot save the pins: {e}"), true),
                })
            }
            ":e2e-accept" | ":e2e-safety" | ":e2e-verify" => {
                Ok(Taken::note(format!("usage: {word} NICK"), true))
            }
            _ => return None,
        };
        Some(taken.unwrap_or_else(|e| Taken::note(e, true)))
    }

    fn send(&mut self, me: &str, args: &str) -> Taken {
        let Some((peer, text)) = args
            .split_once(' ')
            .filter(|(p, t)| !p.is_empty() && !t.is_empty())
        else {
            return Taken::note("usage: :e2e NICK TEXT (nothing was sent)", true);
        };
        let side = match self.side(me) {
            Ok(side) => side,
            Err(e) => return Taken::note(format!("{e} (nothing was sent)"), true),
        };
        match side.send(peer, text) {
            Ok(send) => Taken {
                send,
                messages: vec![(peer.to_string(), text.to_string(), true)],
                notes: Vec::new(),
            },
            Err(SendError::KeyChanged) => Taken::note(
                format!(
                    "{peer}'s key changed: nothing was sent; compare safety numbers \
                     (:e2e-safety {peer}) and accept the key with :e2e-accept {peer}"
                ),
                true,
            ),
            Err(SendError::TooLong) => Taken::note(
                "too long for one end-to-end message (nothing was sent)",
                true,
            ),
            Err(SendError::Busy) => Taken::note(
                format!("too many messages wait for {peer}'s answer (nothing was sent)"),
                true,
            ),
        }
    }

    /// A server line saying we logged in (`* logged in as NAME`,
    /// `* registered NAME`): the `:key` line that publishes this device's
    /// key for the account, as the protocol expects of a client on login.
    pub fn on_login(&mut self, line: &str) -> Option<String> {
        let name = line
            .strip_prefix("* logged in as ")
            .or_else(|| line.strip_prefix("* registered "))
            .filter(|name| !name.is_empty() && !name.contains(' '))?;
        self.side(name).ok().map(|side| side.publish())
    }

    /// A server line: `None` unless it is an `[e2e]` line or the answer to
    /// a `:keys` the end-to-end side asked before a handshake.
    pub fn on_line(&mut self, me: &str, line: &str) -> Option<Taken> {
        use loopchat_client::e2e::client::{KEYS_ANSWER, RELAYED};
        let keys = line.starts_with(KEYS_ANSWER);
        if !line.starts_with(RELAYED) && !keys || keys && self.side.is_none() {
            return None;
        }
        let side = match self.side(me) {
            Ok(side) => side,
            Err(e) => return Some(Taken::note(e, true)),
        };
        let (send, shown) = side.on_line(line)?;
        let mut taken = Taken {
            send,
            ..Taken::default()
        };
        taken.shown(shown);
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (tempfile::TempDir, Secure, Secure) {
        let dir = tempfile::tempdir().unwrap();
        let a = Secure::new(dir.path().join("a"), "loopchat".into());
        let b = Secure::new(dir.path().join("b"), "loopchat".into());
        (dir, a, b)
    }

    /// Relays `:e2e` lines as the server does, until quiet.
    fn relay(a: &mut Secure, b: &mut Secure, mut to_b: Vec<String>) -> (Taken, Taken) {
        let (mut seen_a, mut seen_b) = (Taken::default(), Taken::default());
        let mut to_a: Vec<String> = Vec::new();
        while !to_a.is_empty() || !to_b.is_empty() {
            // The directory's answers are not the relay's business.
            to_b.retain(|line| !line.starts_with(":keys "));
            for line in std::mem::take(&mut to_b) {
                let payload = line.strip_prefix(":e2e bob ").unwrap();
                let taken = b
                    .on_line("bob", &format!("[e2e] alice: {payload}"))
                    .unwrap();
                to_a.extend(taken.send);
                seen_b.messages.extend(taken.messages);
                seen_b.notes.extend(taken.notes);
            }
            to_a.retain(|line| !line.starts_with(":keys "));
            for line in std::mem::take(&mut to_a) {
                let payload = line.strip_prefix(":e2e alice ").unwrap();
                let taken = a
                    .on_line("alice", &format!("[e2e] bob: {payload}"))
                    .unwrap();
                to_b.extend(taken.send);
                seen_a.messages.extend(taken.messages);
                seen_a.notes.extend(taken.notes);
            }
        }
        (seen_a, seen_b)
    }

    #[test]
    fn typed_e2e_lines_are_encrypted_never_sent_as_typed() {
        let (_dir, mut a, mut b) = pair();
        let taken = a.on_input("alice", ":e2e bob the secret plan").unwrap();
        assert_eq!(
            taken.messages,
            vec![("bob".into(), "the secret plan".into(), true)]
        );
        assert_eq!(taken.send.len(), 2);
        assert_eq!(taken.send[0], ":keys bob", "the directory first");
        assert!(taken.send[1].starts_with(":e2e bob v1.a."));
        assert!(!taken.send.iter().any(|line| line.contains("secret")));
        let (seen_a, seen_b) = relay(&mut a, &mut b, taken.send);
        assert_eq!(
            seen_b.messages,
            vec![("alice".into(), "the secret plan".into(), false)]
        );
        assert!(seen_a.notes[0].0.contains("end-to-end encrypted"));
        assert!(a.is_secure("bob") && b.is_secure("alice"));
        let safety = a.on_input("alice", ":e2e-safety bob").unwrap();
        let theirs = b.on_input("bob", ":e2e-safety alice").unwrap();
        let number = |t: &Taken| {
            let after = t.notes[0].0.split_once(": ").unwrap().1;
            after.split_once(" (").unwrap().0.to_string()
        };
        assert_eq!(number(&safety).len(), 71, "{safety:?}");
        assert_eq!(
            number(&safety).chars().filter(char::is_ascii_digit).count(),
            60
        );
        assert_eq!(number(&safety), number(&theirs));
        let verified = a.on_input("alice", ":e2e-verify bob").unwrap();
        assert_eq!(
            verified.notes,
            vec![("bob's key is marked verified".into(), false)]
        );
        let publish = a.on_input("alice", ":key").unwrap();
        assert!(publish.send[0].starts_with(":key ") && publish.send[0].len() == 48);
        // Logging in publishes the same key.
        assert_eq!(
            a.on_login("* logged in as alice"),
            Some(publish.send[0].clone())
        );
        assert_eq!(
            a.on_login("* registered alice"),
            Some(publish.send[0].clone())
        );
        assert_eq!(a.on_login("* alice joined #lobby"), None);
    }

    #[test]
    fn bad_input_sends_nothing_and_other_lines_are_left_alone() {
        let (_dir, mut a, _) = pair();
        for input in [
            ":e2e",
            ":e2e bob",
            ":e2e  text",
            ":e2e-accept",
            ":e2e-safety",
        ] {
            let taken = a.on_input("alice", input).unwrap();
            assert!(taken.send.is_empty(), "{input}");
            assert!(taken.notes[0].1, "{input}: a warning");
        }
        assert_eq!(a.on_input("alice", ":pm bob hi"), None);
        assert_eq!(
            a.on_input("alice", ":key ABC"),
            None,
            "a typed key goes as typed"
        );
        assert_eq!(a.on_line("alice", "[pm] bob: hi"), None);
        let garbage = a.on_line("alice", "[e2e] bob: not-a-payload").unwrap();
        assert!(garbage.messages.is_empty());
        assert!(garbage.notes[0].1, "a warning: {:?}", garbage.notes);
        let too_long = a.on_input("alice", &format!(":e2e bob {}", "x".repeat(3000)));
        assert!(too_long.unwrap().send.is_empty());
    }

    #[test]
    fn the_screen_shows_locked_messages_both_ways() {
        use crate::state::{Kind, State, Status, Target};
        let dir = tempfile::tempdir().unwrap();
        let welcomed = |nick: &str| {
            let secure = Secure::new(dir.path().join(nick), "loopchat".into());
            let mut state = State::new("test".into(), None, None, secure);
            state.on_line(format!("* welcome {nick}").as_bytes());
            state
        };
        let (mut alice, mut bob) = (welcomed("alice"), welcomed("bob"));
        let relay = |alice: &mut State, bob: &mut State, mut to_bob: Vec<String>| {
            let mut to_alice: Vec<String> = Vec::new();
            while !to_bob.is_empty() || !to_alice.is_empty() {
                to_bob.retain(|line| !line.starts_with(":keys "));
                for line in std::mem::take(&mut to_bob) {
                    let payload = line.strip_prefix(":e2e bob ").unwrap();
                    to_alice.extend(bob.on_line(format!("[e2e] alice: {payload}").as_bytes()));
                }
                for line in std::mem::take(&mut to_alice) {
                    let payload = line.strip_prefix(":e2e alice ").unwrap();
                    to_bob.extend(alice.on_line(format!("[e2e] bob: {payload}").as_bytes()));
                }
            }
        };
        assert_eq!(alice.view_lock(), None, "the server's buffer");
        let to_bob = alice.on_input(":e2e bob hi \u{1b}[31m bob");
        // Shown in the private buffer, waiting for the session.
        assert_eq!(alice.view_name(), "pm bob");
        assert_eq!(alice.view_lock(), Some(Lock::Pending));
        let waiting = alice.shown().messages.back().unwrap();
        assert!(matches!(waiting.kind, Kind::E2eOut { .. }));
        assert_eq!(waiting.status, Status::Sending);
        relay(&mut alice, &mut bob, to_bob);
        assert_eq!(
            alice
                .shown()
                .messages
                .iter()
                .map(|m| &m.status)
                .collect::<Vec<_>>(),
            vec![&Status::Sent; alice.shown().messages.len()],
            "sent once the session was up"
        );
        assert_eq!(alice.view_lock(), Some(Lock::Secure { verified: false }));
        let at = bob
            .buffers
            .iter()
            .position(|b| b.target.same(&Target::Private("alice".into())))
            .expect("bob's buffer with alice");
        assert_eq!(bob.buffer_lock(at), Some(Lock::Secure { verified: false }));
        assert_eq!(bob.view_lock(), None, "bob is where he was");

        // Typed in the private buffer now: end to end, never a plain :pm.
        let typed = alice.on_input("typed secret");
        assert_eq!(typed.len(), 1, "{typed:?}");
        assert!(typed[0].starts_with(":e2e bob v1.m."), "{typed:?}");
        relay(&mut alice, &mut bob, typed);
        alice.on_input(":e2e-verify bob");
        assert_eq!(alice.view_lock(), Some(Lock::Secure { verified: true }));
        // A conversation never used end to end stays plain, and says so.
        alice.on_input(":pm carol hello");
        let carol = alice.buffers.len() - 1;
        assert!(matches!(
            alice.buffers[carol].messages.back().map(|m| &m.kind),
            Some(Kind::PmOut { .. })
        ));
        assert_eq!(alice.buffer_lock(carol), Some(Lock::Plain));
        let kinds = |s: &State| {
            s.buffers
                .iter()
                .flat_map(|b| &b.messages)
                .map(|m| m.kind.clone())
                .collect::<Vec<_>>()
        };
        // Control characters never reach the screen, from either side.
        let sent = kinds(&alice).into_iter().find_map(|k| match k {
            Kind::E2eOut { to, text } if to == "bob" => Some(text),
            _ => None,
        });
        let got = kinds(&bob).into_iter().find_map(|k| match k {
            Kind::E2eIn { from, text } if from == "alice" => Some(text),
            _ => None,
        });
        let sent = sent.expect("alice sees her message");
        assert_eq!(Some(sent.clone()), got, "bob sees it as alice does");
        assert!(
            sent.starts_with("hi ") && sent.ends_with(" bob"),
            "{sent:?}"
        );
        assert!(!sent.chars().any(char::is_control), "{sent:?}");
        assert!(kinds(&bob)
            .iter()
            .any(|k| matches!(k, Kind::Info(t) if t.contains("end-to-end encrypted"))));
        assert!(kinds(&bob)
            .iter()
            .any(|k| matches!(k, Kind::E2eIn { text, .. } if text == "typed secret")));
    }
}
