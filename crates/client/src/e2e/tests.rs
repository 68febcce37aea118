//! The e2e module's tests: the shared vectors (`vectors.json`, which the
//! page runs too), our Noise against `snow`, and conversations through an
//! in-memory relay that tampers, replays, drops and swaps keys.
//!
//! `LOOPCHAT_WRITE_E2E_VECTORS=1 cargo test -p loopchat-client e2e` writes
//! the `noise_xx` and `safety` sections anew (after a deliberate change).

use super::noise::{self, CipherState, Handshake, KeyPair, NoiseError, Transport};
use super::session::{prologue, Conversation, Event, Rejection, SendError};
use super::wire::{pad, Kind, Payload};
use super::{encode_key, safety_number, Pins};
use serde_json::{json, Value};

const VECTORS: &str = include_str!("vectors.json");

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key32(text: &str) -> [u8; 32] {
    unhex(text).try_into().expect("32 bytes")
}

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("vectors.json is JSON")
}

#[test]
fn x25519_vectors() {
    let v = vectors();
    for case in v["x25519"].as_array().unwrap() {
        let pair = KeyPair::from_secret(key32(case["private"].as_str().unwrap()));
        if let Some(public) = case["public"].as_str() {
            assert_eq!(hex(&pair.public), public);
        }
        let shared = pair.dh(&key32(case["peer_public"].as_str().unwrap()));
        assert_eq!(hex(&shared.unwrap()), case["shared"].as_str().unwrap());
    }
    for case in v["x25519_refused"].as_array().unwrap() {
        let pair = KeyPair::from_secret(key32(case["private"].as_str().unwrap()));
        let shared = pair.dh(&key32(case["peer_public"].as_str().unwrap()));
        assert_eq!(shared, Err(NoiseError::WeakKey), "{}", case["why"]);
    }
}

#[test]
fn hkdf_and_aes_gcm_vectors() {
    let v = vectors();
    for case in v["hkdf_sha256"].as_array().unwrap() {
        let field = |name: &str| unhex(case[name].as_str().unwrap());
        let okm = field("okm");
        let mut out = vec![0; okm.len()];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(&field("salt")), &field("ikm"))
            .expand(&field("info"), &mut out)
            .unwrap();
        assert_eq!(out, okm);
    }
    for case in v["aes256gcm"].as_array().unwrap() {
        let field = |name: &str| unhex(case[name].as_str().unwrap());
        let (key, iv) = (field("key"), field("iv"));
        let aes = aes_with_iv(&key, &iv);
        use aes_gcm::aead::{Aead, Payload};
        let plaintext = field("plaintext");
        let ad = field("ad");
        let nonce = aes_gcm::aead::Nonce::<aes_gcm::Aes256Gcm>::try_from(&iv[..]).unwrap();
        let sealed = aes
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: &ad,
                },
            )
            .unwrap();
        assert_eq!(hex(&sealed), case["ciphertext"].as_str().unwrap());
    }
    for case in v["aes256gcm_refused"].as_array().unwrap() {
        let field = |name: &str| unhex(case[name].as_str().unwrap());
        let aes = aes_with_iv(&field("key"), &field("iv"));
        use aes_gcm::aead::{Aead, Payload};
        let iv = field("iv");
        let nonce = aes_gcm::aead::Nonce::<aes_gcm::Aes256Gcm>::try_from(&iv[..]).unwrap();
        let opened = aes.decrypt(
            &nonce,
            Payload {
                msg: &field("ciphertext"),
                aad: &field("ad"),
            },
        );
        assert!(opened.is_err(), "{}", case["why"]);
    }
    // Noise's HKDF is RFC 5869's with the chaining key as salt.
    let (a, b) = noise::hkdf2(&[1; 32], b"input");
    let mut out = [0; 64];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&[1; 32]), b"input")
        .expand(&[], &mut out)
        .unwrap();
    assert_eq!([a, b].concat(), out);
}

fn aes_with_iv(key: &[u8], iv: &[u8]) -> aes_gcm::Aes256Gcm {
    use aes_gcm::aead::KeyInit;
    assert_eq!(iv.len(), 12);
    aes_gcm::Aes256Gcm::new_from_slice(key).unwrap()
}

/// The fixed keys of the Noise vector.
struct Fixed {
    initiator_static: [u8; 32],
    initiator_ephemeral: [u8; 32],
    responder_static: [u8; 32],
    responder_ephemeral: [u8; 32],
    sid: [u8; 8],
}

fn fixed() -> Fixed {
    let pattern = |start: u8| std::array::from_fn(|i| start + i as u8);
    Fixed {
        initiator_static: pattern(0x00),
        initiator_ephemeral: pattern(0x20),
        responder_static: pattern(0x40),
        responder_ephemeral: pattern(0x60),
        sid: [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef],
    }
}

/// The transport messages of the vector: who sends, what.
const TRANSPORT: &[(&str, &str)] = &[
    ("initiator", "hello bob"),
    ("initiator", "a second message, same text length class"),
    ("responder", "hi alice, ünïcödé and 🦀"),
    (
        "initiator",
        "a message long enough to need more than one block of sixty-four bytes",
    ),
    ("responder", ""),
];

/// Our side of the vector: the handshake payloads, the handshake hash and
/// the transport payloads.
fn our_transcript(f: &Fixed) -> (Vec<String>, [u8; 32], Vec<String>) {
    let p = prologue("loopchat", "alice", "bob");
    let mut i = Handshake::with_ephemeral(
        true,
        &p,
        KeyPair::from_secret(f.initiator_static),
        KeyPair::from_secret(f.initiator_ephemeral),
    );
    let mut r = Handshake::with_ephemeral(
        false,
        &p,
        KeyPair::from_secret(f.responder_static),
        KeyPair::from_secret(f.responder_ephemeral),
    );
    let m1 = i.write(&[]).unwrap();
    r.read(&m1).unwrap();
    let m2 = r.write(&[]).unwrap();
    i.read(&m2).unwrap();
    let m3 = i.write(&[]).unwrap();
    r.read(&m3).unwrap();
    let (mut ti, mut tr) = (i.finish().unwrap(), r.finish().unwrap());
    assert_eq!(ti.handshake_hash, tr.handshake_hash);
    assert_eq!(
        ti.remote_static,
        KeyPair::from_secret(f.responder_static).public
    );
    assert_eq!(
        tr.remote_static,
        KeyPair::from_secret(f.initiator_static).public
    );
    let encode = |kind, data| {
        Payload {
            kind,
            sid: f.sid,
            data,
        }
        .encode()
    };
    let handshake = vec![
        encode(Kind::Hello, m1),
        encode(Kind::Reply, m2),
        encode(Kind::Finish, m3),
    ];
    let mut transport = Vec::new();
    for (from, text) in TRANSPORT {
        let (sender, receiver): (&mut Transport, &mut Transport) = if *from == "initiator" {
            (&mut ti, &mut tr)
        } else {
            (&mut tr, &mut ti)
        };
        let n = sender.send.nonce();
        let data = sender.send.encrypt(&[], &pad(text).unwrap()).unwrap();
        sender.send.rekey();
        let opened = receiver.recv.decrypt(&[], &data).unwrap();
        receiver.recv.rekey();
        assert_eq!(opened, pad(text).unwrap());
        transport.push(encode(Kind::Message(n), data));
    }
    (handshake, ti.handshake_hash, transport)
}

/// The same transcript made by `snow` with the same fixed keys.
fn snow_transcript(f: &Fixed) -> (Vec<Vec<u8>>, Vec<u8>, Vec<Vec<u8>>) {
    let params: snow::params::NoiseParams = "Noise_XX_25519_AESGCM_SHA256".parse().unwrap();
    let p = prologue("loopchat", "alice", "bob");
    let mut i = snow::Builder::new(params.clone())
        .local_private_key(&f.initiator_static)
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(&f.initiator_ephemeral)
        .prologue(&p)
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut r = snow::Builder::new(params)
        .local_private_key(&f.responder_static)
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(&f.responder_ephemeral)
        .prologue(&p)
        .unwrap()
        .build_responder()
        .unwrap();
    let mut buf = [0u8; 1024];
    let mut scratch = [0u8; 1024];
    let mut messages = Vec::new();
    for step in 0..3 {
        let (writer, reader) = if step % 2 == 0 {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let n = writer.write_message(&[], &mut buf).unwrap();
        reader.read_message(&buf[..n], &mut scratch).unwrap();
        messages.push(buf[..n].to_vec());
    }
    let hash = i.get_handshake_hash().to_vec();
    let mut ti = i.into_transport_mode().unwrap();
    let mut tr = r.into_transport_mode().unwrap();
    let mut transport = Vec::new();
    for (from, text) in TRANSPORT {
        let (sender, receiver) = if *from == "initiator" {
            (&mut ti, &mut tr)
        } else {
            (&mut tr, &mut ti)
        };
        let n = sender.write_message(&pad(text).unwrap(), &mut buf).unwrap();
        sender.rekey_outgoing();
        receiver.read_message(&buf[..n], &mut scratch).unwrap();
        receiver.rekey_incoming();
        transport.push(buf[..n].to_vec());
    }
    (messages, hash, transport)
}

fn noise_vector(f: &Fixed) -> Value {
    let (handshake, hash, transport) = our_transcript(f);
    let public = |secret| hex(&KeyPair::from_secret(secret).public);
    json!({
        "protocol": "Noise_XX_25519_AESGCM_SHA256",
        "server": "loopchat",
        "initiator": "alice",
        "responder": "bob",
        "prologue": hex(&prologue("loopchat", "alice", "bob")),
        "initiator_static": hex(&f.initiator_static),
        "initiator_static_public": public(f.initiator_static),
        "initiator_ephemeral": hex(&f.initiator_ephemeral),
        "responder_static": hex(&f.responder_static),
        "responder_static_public": public(f.responder_static),
        "responder_ephemeral": hex(&f.responder_ephemeral),
        "sid": hex(&f.sid),
        "handshake": handshake,
        "handshake_hash": hex(&hash),
        "transport": TRANSPORT.iter().zip(transport).map(|((from, text), payload)| {
            json!({"from": from, "text": text, "payload": payload})
        }).collect::<Vec<_>>(),
    })
}

fn safety_vector(f: &Fixed) -> Value {
    let a = KeyPair::from_secret(f.initiator_static).public;
    let b = KeyPair::from_secret(f.responder_static).public;
    let cases = [("alice", a, "bob", b), ("Zoe", [9; 32], "adam", [0xfe; 32])];
    Value::Array(
        cases
            .iter()
            .map(|(me, key, peer, peer_key)| {
                json!({
                    "account": me, "key": encode_key(key),
                    "peer": peer, "peer_key": encode_key(peer_key),
                    "number": safety_number(me, key, peer, peer_key),
                })
            })
            .collect(),
    )
}

#[test]
fn the_noise_vector_is_ours_and_snows_byte_for_byte() {
    let f = fixed();
    let (handshake, hash, transport) = our_transcript(&f);
    let (snow_handshake, snow_hash, snow_transport) = snow_transcript(&f);
    for (ours, theirs) in handshake.iter().zip(&snow_handshake) {
        assert_eq!(Payload::decode(ours).unwrap().data, *theirs);
    }
    assert_eq!(hash.to_vec(), snow_hash);
    for (ours, theirs) in transport.iter().zip(&snow_transport) {
        assert_eq!(Payload::decode(ours).unwrap().data, *theirs);
    }

    let mut v = vectors();
    let fresh = (noise_vector(&f), safety_vector(&f));
    if std::env::var_os("LOOPCHAT_WRITE_E2E_VECTORS").is_some() {
        v["noise_xx"] = fresh.0;
        v["safety"] = fresh.1;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/e2e/vectors.json");
        let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
        std::fs::write(path, text).unwrap();
        return;
    }
    assert_eq!(v["noise_xx"], fresh.0, "vectors.json's noise_xx");
    assert_eq!(v["safety"], fresh.1, "vectors.json's safety numbers");
}

#[test]
fn our_noise_talks_to_snow_with_random_keys_both_ways() {
    // Random keys, ours as initiator against snow as responder; then
    // transport messages both ways, rekeyed after each.
    let params: snow::params::NoiseParams = "Noise_XX_25519_AESGCM_SHA256".parse().unwrap();
    let p = prologue("loopchat", "alice", "bob");
    let bob = KeyPair::generate();
    let mut theirs = snow::Builder::new(params)
        .local_private_key(&bob.secret_bytes())
        .unwrap()
        .prologue(&p)
        .unwrap()
        .build_responder()
        .unwrap();
    let alice = KeyPair::generate();
    let mut ours = Handshake::new(true, &p, alice.clone());
    let mut buf = [0u8; 1024];
    let mut out = [0u8; 1024];
    let m1 = ours.write(b"one").unwrap();
    assert_eq!(theirs.read_message(&m1, &mut out).unwrap(), 3);
    let n = theirs.write_message(b"two", &mut buf).unwrap();
    assert_eq!(ours.read(&buf[..n]).unwrap(), b"two");
    let m3 = ours.write(b"three").unwrap();
    theirs.read_message(&m3, &mut out).unwrap();
    assert_eq!(theirs.get_remote_static().unwrap(), alice.public);
    let mut ours = ours.finish().unwrap();
    assert_eq!(ours.remote_static, bob.public);
    let mut theirs = theirs.into_transport_mode().unwrap();
    for round in 0..3 {
        let sealed = ours.send.encrypt(&[], b"to snow").unwrap();
        ours.send.rekey();
        let n = theirs.read_message(&sealed, &mut out).unwrap();
        theirs.rekey_incoming();
        assert_eq!(&out[..n], b"to snow", "round {round}");
        let n = theirs.write_message(b"from snow", &mut buf).unwrap();
        theirs.rekey_outgoing();
        assert_eq!(ours.recv.decrypt(&[], &buf[..n]).unwrap(), b"from snow");
        ours.recv.rekey();
    }
}

#[test]
fn rekey_changes_the_key_after_each_message_and_old_keys_stop_working() {
    let mut sender = CipherState::with_key([5; 32]);
    let mut receiver = sender.clone();
    let first = sender.key().unwrap();
    let a = sender.encrypt(&[], &pad("same").unwrap()).unwrap();
    sender.rekey();
    let second = sender.key().unwrap();
    assert_ne!(first, second);
    assert_eq!(second, noise::rekeyed(&first));
    let b = sender.encrypt(&[], &pad("same").unwrap()).unwrap();
    assert_ne!(a, b, "the same text twice is not the same ciphertext");
    // The receiver without the rekey cannot read the second message.
    let mut stale = receiver.clone();
    stale.decrypt(&[], &a).unwrap();
    assert_eq!(stale.decrypt(&[], &b), Err(NoiseError::Decrypt));
    receiver.decrypt(&[], &a).unwrap();
    receiver.rekey();
    assert_eq!(receiver.decrypt(&[], &b).unwrap(), pad("same").unwrap());
}

#[test]
fn safety_number_vectors() {
    for case in vectors()["safety"].as_array().unwrap() {
        let s = |name: &str| case[name].as_str().unwrap();
        let key = super::decode_key(s("key")).unwrap();
        let peer_key = super::decode_key(s("peer_key")).unwrap();
        assert_eq!(
            safety_number(s("account"), &key, s("peer"), &peer_key),
            s("number")
        );
        assert_eq!(
            safety_number(s("peer"), &peer_key, s("account"), &key),
            s("number")
        );
    }
}

// Conversations through an in-memory relay.

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
