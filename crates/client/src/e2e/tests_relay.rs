//! Conversations through an in-memory relay that tampers, replays, drops
//! and swaps keys; property tests against arbitrary payloads.

use super::noise::KeyPair;
use super::session::{Conversation, Event, Rejection, SendError};
use super::wire::{Kind, Payload};
use super::{safety_number, Pins};

struct Side {
    conversation: Conversation,
    pins: Pins,
}

fn side(me: &str, peer: &str, device: &KeyPair) -> Side {
    Side {
        conversation: Conversation::new("loopchat", me, peer, device.clone()),
        pins: Pins::in_memory(),
    }
}

fn sends(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Send(payload) => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

/// Delivers payloads back and forth until both are quiet; returns what
/// each side showed (everything but `Send`).
fn relay(a: &mut Side, b: &mut Side, mut to_b: Vec<String>) -> (Vec<Event>, Vec<Event>) {
    let (mut shown_a, mut shown_b) = (Vec::new(), Vec::new());
    let mut to_a = Vec::new();
    while !to_a.is_empty() || !to_b.is_empty() {
        for payload in std::mem::take(&mut to_b) {
            let events = b.conversation.receive(&payload, &mut b.pins);
            to_a.extend(sends(&events));
            shown_b.extend(events.into_iter().filter(|e| !matches!(e, Event::Send(_))));
        }
        for payload in std::mem::take(&mut to_a) {
            let events = a.conversation.receive(&payload, &mut a.pins);
            to_b.extend(sends(&events));
            shown_a.extend(events.into_iter().filter(|e| !matches!(e, Event::Send(_))));
        }
    }
    (shown_a, shown_b)
}

fn established() -> (Side, Side, KeyPair, KeyPair) {
    let (ka, kb) = (KeyPair::generate(), KeyPair::generate());
    let (mut a, mut b) = (side("alice", "bob", &ka), side("bob", "alice", &kb));
    let hello = sends(&a.conversation.send("first").unwrap());
    assert_eq!(hello.len(), 1);
    assert!(hello[0].starts_with("v1.a."), "{}", hello[0]);
    let (shown_a, shown_b) = relay(&mut a, &mut b, hello);
    let secure = |key| Event::Secure {
        key,
        first_contact: true,
        verified: false,
    };
    assert_eq!(shown_a, vec![secure(kb.public)]);
    assert_eq!(
        shown_b,
        vec![secure(ka.public), Event::Message("first".into())]
    );
    (a, b, ka, kb)
}

fn one(side: &mut Side, text: &str) -> String {
    let payload = sends(&side.conversation.send(text).unwrap());
    assert_eq!(payload.len(), 1);
    payload[0].clone()
}

fn receive(side: &mut Side, payload: &str) -> Vec<Event> {
    side.conversation.receive(payload, &mut side.pins)
}

#[test]
fn messages_go_both_ways_padded_and_the_pins_are_set() {
    let (mut a, mut b, ka, kb) = established();
    assert!(a.conversation.is_secure() && b.conversation.is_secure());
    let short = one(&mut b, "hi");
    let empty = one(&mut b, "");
    let longer = one(&mut b, &"x".repeat(61));
    // Lengths in the same 64-byte step look the same.
    let data = |p: &str| Payload::decode(p).unwrap().data.len();
    assert_eq!(data(&short), 64 + 16);
    assert_eq!(data(&short), data(&empty));
    assert_eq!(data(&short), data(&longer));
    assert_eq!(data(&one(&mut b, &"x".repeat(63))), 128 + 16);
    for (payload, text) in [(short, "hi"), (empty, ""), (longer, &"x".repeat(61))] {
        assert_eq!(receive(&mut a, &payload), vec![Event::Message(text.into())]);
    }
    assert_eq!(
        a.pins.check("loopchat", "bob", &kb.public),
        super::PinCheck::Known { verified: false }
    );
    assert_eq!(
        b.pins.check("loopchat", "alice", &ka.public),
        super::PinCheck::Known { verified: false }
    );
    assert_eq!(
        a.conversation.send(&"y".repeat(super::wire::MAX_TEXT + 1)),
        Err(SendError::TooLong)
    );
}

#[test]
fn both_sides_see_one_safety_number_and_verify_marks_the_key() {
    let (mut a, mut b, ka, kb) = established();
    let number = a.conversation.safety_number().unwrap();
    assert_eq!(Some(number.clone()), b.conversation.safety_number());
    assert_eq!(
        number,
        safety_number("alice", &ka.public, "bob", &kb.public)
    );
    assert!(a.conversation.verify(&mut a.pins).unwrap());
    assert_eq!(
        a.pins.check("loopchat", "bob", &kb.public),
        super::PinCheck::Known { verified: true }
    );
    // The next session with the same key says so.
    let Event::Send(hello) = b.conversation.start() else {
        panic!("a hello")
    };
    let (shown_b, shown_a) = relay(&mut b, &mut a, vec![hello]);
    assert_eq!(
        shown_a,
        vec![Event::Secure {
            key: kb.public,
            first_contact: false,
            verified: true
        }]
    );
    assert!(matches!(
        shown_b[..],
        [Event::Secure {
            verified: false,
            ..
        }]
    ));
}

#[test]
fn a_flipped_byte_is_rejected_and_the_session_goes_on() {
    let (mut a, mut b, ..) = established();
    let payload = one(&mut a, "the real one");
    for at in [payload.len() - 1, payload.len() - 30, 30] {
        let mut bytes = payload.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        let events = receive(&mut b, &flipped);
        assert!(
            matches!(
                events[..],
                [Event::Rejected(Rejection::Tampered | Rejection::Malformed)]
            ),
            "byte {at}: {events:?}"
        );
    }
    // Another message number: the nonce differs, so it fails too.
    let mut renumbered = Payload::decode(&payload).unwrap();
    let Kind::Message(n) = renumbered.kind else {
        panic!("a transport message")
    };
    renumbered.kind = Kind::Message(n + 1);
    let renumbered = renumbered.encode();
    assert_eq!(
        receive(&mut b, &renumbered),
        vec![Event::Rejected(Rejection::Tampered)]
    );
    assert_eq!(
        receive(&mut b, &payload),
        vec![Event::Message("the real one".into())]
    );
}

#[test]
fn replayed_reordered_and_dropped_messages_are_caught() {
    let (mut a, mut b, ..) = established();
    let m0 = one(&mut a, "zero");
    let m1 = one(&mut a, "one");
    let m2 = one(&mut a, "two");
    let m3 = one(&mut a, "three");
    assert_eq!(receive(&mut b, &m0), vec![Event::Message("zero".into())]);
    assert_eq!(
        receive(&mut b, &m0),
        vec![Event::Rejected(Rejection::Replayed)],
        "replayed"
    );
    // m2 before m1: m2 is read and m1 reported lost; m1 late is refused.
    assert_eq!(
        receive(&mut b, &m2),
        vec![Event::Lost(1), Event::Message("two".into())]
    );
    assert_eq!(
        receive(&mut b, &m1),
        vec![Event::Rejected(Rejection::Replayed)],
        "reordered"
    );
    assert_eq!(receive(&mut b, &m3), vec![Event::Message("three".into())]);
    // Dropped: two never arrive.
    let _ = one(&mut a, "four");
    let _ = one(&mut a, "five");
    let m6 = one(&mut a, "six");
    assert_eq!(
        receive(&mut b, &m6),
        vec![Event::Lost(2), Event::Message("six".into())]
    );
}

#[test]
fn a_tampered_handshake_fails_and_nothing_is_shown() {
    let (ka, kb) = (KeyPair::generate(), KeyPair::generate());
    let (mut a, mut b) = (side("alice", "bob", &ka), side("bob", "alice", &kb));
    let hello = sends(&a.conversation.send("secret").unwrap());
    let reply = sends(&receive(&mut b, &hello[0]));
    let mut bytes = reply[0].clone().into_bytes();
    let at = bytes.len() - 5;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let events = receive(&mut a, &String::from_utf8(bytes).unwrap());
    assert_eq!(events, vec![Event::Rejected(Rejection::HandshakeFailed)]);
    assert!(!a.conversation.is_secure());
    // Another server name in the prologue: the handshake cannot complete.
    let mut c = Side {
        conversation: Conversation::new("elsewhere", "bob", "alice", kb.clone()),
        pins: Pins::in_memory(),
    };
    let hello = sends(&a.conversation.send("again").unwrap());
    let reply = sends(&receive(&mut c, &hello[0]));
    assert_eq!(
        receive(&mut a, &reply[0]),
        vec![Event::Rejected(Rejection::HandshakeFailed)]
    );
}

#[test]
fn a_changed_key_blocks_sending_and_holds_messages_until_accepted() {
    let (mut a, mut b, _, kb) = established();
    // Bob's device changes (or someone sits in between with another key).
    let other = KeyPair::generate();
    let mut b2 = Side {
        conversation: Conversation::new("loopchat", "bob", "alice", other.clone()),
        pins: std::mem::take(&mut b.pins),
    };
    let hello = b2.conversation.start();
    let Event::Send(hello) = hello else { panic!() };
    let (shown_a, _) = relay(&mut a, &mut b2, Vec::new());
    assert!(shown_a.is_empty());
    let events = receive(&mut a, &hello);
    let (shown_a, shown_b) = relay(&mut a, &mut b2, sends(&events));
    assert_eq!(shown_a, vec![Event::KeyChanged { key: other.public }]);
    assert!(shown_b.iter().any(|e| matches!(e, Event::Secure { .. })));
    assert_eq!(a.conversation.send("x"), Err(SendError::KeyChanged));
    assert!(!a.conversation.is_secure());
    // What the new key sends is held, not shown.
    let held = one(&mut b2, "trust me");
    assert_eq!(receive(&mut a, &held), vec![]);
    assert_eq!(a.conversation.unaccepted_key(), Some(other.public));
    assert_eq!(
        a.pins.check("loopchat", "bob", &other.public),
        super::PinCheck::Changed {
            accepted: vec![kb.public]
        }
    );
    let events = a.conversation.accept_key(&mut a.pins).unwrap();
    assert_eq!(
        events,
        vec![
            Event::Secure {
                key: other.public,
                first_contact: false,
                verified: false
            },
            Event::Message("trust me".into())
        ]
    );
    let reply = one(&mut a, "ok then");
    assert_eq!(
        receive(&mut b2, &reply),
        vec![Event::Message("ok then".into())]
    );
}

#[test]
fn a_man_in_the_middle_with_his_own_keys_is_seen_as_a_key_change() {
    let (mut a, mut b, ..) = established();
    // Mallory answers alice as "bob" and bob as "alice", with his key.
    let mallory = KeyPair::generate();
    let mut to_alice = side("bob", "alice", &mallory);
    let mut to_bob = side("alice", "bob", &mallory);
    let Event::Send(hello) = a.conversation.start() else {
        panic!()
    };
    let (_, shown_m) = relay(&mut a, &mut to_alice, vec![hello]);
    assert!(shown_m.iter().any(|e| matches!(e, Event::Secure { .. })));
    assert_eq!(a.conversation.unaccepted_key(), Some(mallory.public));
    let Event::Send(hello) = to_bob.conversation.start() else {
        panic!()
    };
    relay(&mut to_bob, &mut b, vec![hello]);
    assert_eq!(b.conversation.unaccepted_key(), Some(mallory.public));
    assert_eq!(a.conversation.send("x"), Err(SendError::KeyChanged));
    assert_eq!(b.conversation.send("x"), Err(SendError::KeyChanged));
}

#[test]
fn both_starting_at_once_end_in_one_session() {
    let (ka, kb) = (KeyPair::generate(), KeyPair::generate());
    let (mut a, mut b) = (side("alice", "bob", &ka), side("bob", "alice", &kb));
    let from_a = sends(&a.conversation.send("from alice").unwrap());
    let from_b = sends(&b.conversation.send("from bob").unwrap());
    // Both hellos cross: alice (lower) stays initiator, bob answers.
    let to_a = sends(&receive(&mut a, &from_b[0]));
    assert!(to_a.is_empty());
    let to_a = sends(&receive(&mut b, &from_a[0]));
    let (shown_a, shown_b) = relay(&mut b, &mut a, to_a);
    assert!(
        shown_a.contains(&Event::Message("from alice".into())),
        "{shown_a:?}"
    );
    assert!(
        shown_b.contains(&Event::Message("from bob".into())),
        "{shown_b:?}"
    );
    assert!(a.conversation.is_secure() && b.conversation.is_secure());
}

#[test]
fn a_restarted_peer_gets_a_new_session() {
    let (mut a, mut b, ..) = established();
    // Bob restarts: same key, no session.
    let kb = b.conversation.peer_key();
    assert!(kb.is_some());
    let mut fresh = Side {
        conversation: Conversation::new("loopchat", "bob", "alice", b_device(&b)),
        pins: std::mem::take(&mut b.pins),
    };
    let old = one(&mut a, "to the old session");
    let events = receive(&mut fresh, &old);
    assert_eq!(events[0], Event::Rejected(Rejection::UnknownSession));
    let (shown_a, _) = relay(&mut a, &mut fresh, Vec::new());
    assert!(shown_a.is_empty());
    let (shown_fresh, shown_a) = relay(&mut fresh, &mut a, sends(&events));
    assert!(matches!(
        shown_a[..],
        [Event::Secure {
            first_contact: false,
            ..
        }]
    ));
    assert!(matches!(
        shown_fresh[..],
        [Event::Secure {
            first_contact: false,
            ..
        }]
    ));
    let next = one(&mut a, "to the new session");
    assert_eq!(
        receive(&mut fresh, &next),
        vec![Event::Message("to the new session".into())]
    );
}

/// The device key of an established side (its peer knows it).
fn b_device(b: &Side) -> KeyPair {
    b.conversation.device().clone()
}

#[test]
fn garbage_payloads_are_rejected_not_shown() {
    let (_, mut b, ..) = established();
    for junk in ["", "hello", "v1.m.0000000000000000.0.AAAA", "v9.a.x.y"] {
        let events = receive(&mut b, junk);
        assert!(
            matches!(
                events.first(),
                Some(Event::Rejected(
                    Rejection::Malformed | Rejection::UnknownSession
                ))
            ),
            "{junk}: {events:?}"
        );
        assert!(!events.iter().any(|e| matches!(e, Event::Message(_))));
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any text as a payload: never a panic, never a message shown.
        #[test]
        fn any_payload_is_refused_without_a_panic(text in ".{0,200}") {
            let (_, mut b, ..) = established();
            let events = receive(&mut b, &text);
            prop_assert!(!events.iter().any(|e| matches!(e, Event::Message(_))));
        }

        /// Well-formed payloads with random data, for each kind and number.
        #[test]
        fn forged_payloads_are_refused(
            kind in 0u8..4,
            n in 0u64..2000,
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let (_, mut b, ..) = established();
            let kind = match kind {
                0 => Kind::Hello,
                1 => Kind::Reply,
                2 => Kind::Finish,
                _ => Kind::Message(n),
            };
            let payload = Payload { kind, sid: [7; 8], data }.encode();
            let events = receive(&mut b, &payload);
            prop_assert!(!events.iter().any(|e| matches!(e, Event::Message(_))));
        }

        /// Texts round-trip through a session, padded to 64-byte steps.
        #[test]
        fn texts_round_trip(text in "\\PC{0,300}") {
            let (mut a, mut b, ..) = established();
            let payload = one(&mut a, &text);
            let data = Payload::decode(&payload).unwrap().data;
            prop_assert_eq!((data.len() - 16) % 64, 0);
            prop_assert_eq!(receive(&mut b, &payload), vec![Event::Message(text)]);
        }
    }
}
