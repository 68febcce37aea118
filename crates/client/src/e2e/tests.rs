//! The e2e module's tests: the shared vectors (`vectors.json`, which the
//! page runs too) and our Noise against `snow`; conversations through a
//! relay are in `tests_relay.rs`.
//!
//! `LOOPCHAT_WRITE_E2E_VECTORS=1 cargo test -p loopchat-client e2e` writes
//! the `noise_xx` and `safety` sections anew (after a deliberate change).

use super::noise::{self, CipherState, Handshake, KeyPair, NoiseError, Transport};
use super::session::prologue;
use super::wire::{pad, Kind, Payload};
use super::{encode_key, safety_number};
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
