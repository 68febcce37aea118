//! The page's end-to-end encryption (`web/e2e.js`, served by the server)
//! in a real browser: Debian's headless chromium through chromedriver.
//!
//! - The page runs the shared vector file (`crates/client/src/e2e/
//!   vectors.json`, which `cargo test -p loopchat-client` runs too).
//! - The page and the Rust client library talk through a relay in this
//!   test: a handshake each way, messages both ways, the same safety
//!   number; a flipped byte, a replayed message, a dropped message and a
//!   swapped key are detected; the device key survives a reload in
//!   IndexedDB and cannot be exported.
//! - On a non-secure origin the page says end-to-end encryption is
//!   unavailable, and why.
//!
//! CI (`CI=true`) never skips these; elsewhere they skip with a printed
//! reason when chromium or chromedriver is missing.

mod common;

use common::browser::{tools_or_skip, Browser};
use loopchat_client::e2e::{
    encode_key, safety_number, Conversation, Event, KeyPair, Pins, Rejection,
};
use serde_json::{json, Value};

const VECTORS: &str = include_str!("../crates/client/src/e2e/vectors.json");

/// Runs every vector through `window.LoopchatE2E`; returns
/// `{checks, fails}`.
const RUN_VECTORS: &str = include_str!("e2e_page_vectors.js");

/// Sets up the page's side: its device key from IndexedDB, pins in
/// localStorage, one conversation; returns the public key and whether the
/// private key can be exported.
const SETUP: &str = r#"
const E = window.LoopchatE2E;
const device = await E.loadOrCreateDeviceKey();
let exported = true;
try { await crypto.subtle.exportKey("pkcs8", device.privateKey); } catch (_) { exported = false; }
const pins = new E.Pins("loopchat.e2e.pins");
window.__conv = new E.Conversation(args[0], args[1], args[2], device, pins);
window.__out = (events) => events.map((e) => e.key ? Object.assign({}, e, { key: E.encodeKey(e.key) }) : e);
return { public: E.encodeKey(device.public), extractable: device.privateKey.extractable, exported };
"#;

const SEND: &str = r#"
try { return window.__out(await window.__conv.send(args[0])); }
catch (e) { return { error: e.kind }; }
"#;

const RECEIVE: &str = "return window.__out(await window.__conv.receive(args[0]));";

/// A Rust event in the page's event shape, to compare both sides alike.
fn shape(event: &Event) -> Value {
    match event {
        Event::Send(payload) => json!({"type": "send", "payload": payload}),
        Event::Message(text) => json!({"type": "message", "text": text}),
        Event::Secure {
            key,
            first_contact,
            verified,
        } => json!({"type": "secure", "key": encode_key(key),
                    "firstContact": first_contact, "verified": verified}),
        Event::KeyChanged { key } => json!({"type": "key-changed", "key": encode_key(key)}),
        Event::Lost(count) => json!({"type": "lost", "count": count}),
        Event::Rejected(reason) => json!({"type": "rejected", "reason": match reason {
            Rejection::Malformed => "malformed",
            Rejection::Replayed => "replayed",
            Rejection::Tampered => "tampered",
            Rejection::UnknownSession => "unknown-session",
            Rejection::Unexpected => "unexpected",
            Rejection::HandshakeFailed => "handshake-failed",
        }}),
    }
}

/// The Rust side of the relay: bob's conversation with the page's alice.
struct Bob {
    conversation: Conversation,
    pins: Pins,
    device: KeyPair,
}

impl Bob {
    fn new(device: KeyPair, pins: Pins) -> Bob {
        Bob {
            conversation: Conversation::new("loopchat", "bob", "alice", device.clone()),
            pins,
            device,
        }
    }

    fn receive(&mut self, payload: &str) -> Vec<Value> {
        let events = self.conversation.receive(payload, &mut self.pins);
        events.iter().map(shape).collect()
    }

    fn send(&mut self, text: &str) -> String {
        let events = self.conversation.send(text).expect("bob can send");
        let [Event::Send(payload)] = &events[..] else {
            panic!("one payload, got {events:?}")
        };
        payload.clone()
    }
}

fn page_events(value: Value) -> Vec<Value> {
    value.as_array().expect("events").clone()
}

fn split(events: Vec<Value>) -> (Vec<String>, Vec<Value>) {
    let mut payloads = Vec::new();
    let mut shown = Vec::new();
    for event in events {
        if event["type"] == "send" {
            payloads.push(event["payload"].as_str().unwrap().to_string());
        } else {
            shown.push(event);
        }
    }
    (payloads, shown)
}

/// Relays payloads between the page and bob until both are quiet; returns
/// what the page and bob showed.
fn relay(
    page: &Browser,
    bob: &mut Bob,
    mut to_page: Vec<String>,
    mut to_bob: Vec<String>,
) -> (Vec<Value>, Vec<Value>) {
    let (mut shown_page, mut shown_bob) = (Vec::new(), Vec::new());
    while !to_page.is_empty() || !to_bob.is_empty() {
        for payload in std::mem::take(&mut to_page) {
            let (payloads, shown) = split(page_events(page.run_async(RECEIVE, json!([payload]))));
            to_bob.extend(payloads);
            shown_page.extend(shown);
        }
        for payload in std::mem::take(&mut to_bob) {
            let (payloads, shown) = split(bob.receive(&payload));
            to_page.extend(payloads);
            shown_bob.extend(shown);
        }
    }
    (shown_page, shown_bob)
}

/// Changes one character of a payload's data.
fn flip(payload: &str) -> String {
    let mut bytes = payload.as_bytes().to_vec();
    let at = bytes.len() - 10;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn page_url(server: &loopchat::RunningServer) -> String {
    format!("http://{}/", server.web_addr().expect("web address"))
}

fn wait_for_e2e(page: &Browser) {
    page.wait_until(
        "the page's e2e.js",
        "return typeof window.LoopchatE2E === 'object';",
    );
}

#[test]
fn the_page_runs_the_shared_test_vectors() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start();
    let page = Browser::start(&chromium, &chromedriver);
    page.open(&page_url(&server));
    wait_for_e2e(&page);
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let result = page.run_async(RUN_VECTORS, json!([vectors]));
    assert_eq!(result["fails"], json!([]), "vectors the page failed");
    let checks = result["checks"].as_u64().unwrap();
    assert!(checks >= 40, "only {checks} checks ran");
    println!("the page passed {checks} vector checks");
    let available = page.run_async("return await window.LoopchatE2E.availability;", json!([]));
    assert_eq!(available["ok"], json!(true), "{available}");
    assert_eq!(
        page.run("return document.querySelector('#e2e-status');", json!([])),
        Value::Null,
        "no unavailability note on loopback"
    );
}

#[test]
fn the_page_and_the_rust_client_talk_through_a_relay() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start();
    let url = page_url(&server);
    let page = Browser::start(&chromium, &chromedriver);
    page.open(&url);
    wait_for_e2e(&page);
    let alice = page.run_async(SETUP, json!(["loopchat", "alice", "bob"]));
    assert_eq!(alice["extractable"], json!(false));
    assert_eq!(
        alice["exported"],
        json!(false),
        "the device key cannot leave"
    );
    let alice_key = alice["public"].as_str().unwrap().to_string();
    let mut bob = Bob::new(KeyPair::generate(), Pins::in_memory());
    let bob_key = encode_key(&bob.device.public);

    // The page starts: the handshake, then its first message.
    let (hello, shown) = split(page_events(
        page.run_async(SEND, json!(["hello from the page"])),
    ));
    assert!(shown.is_empty() && hello.len() == 1, "{hello:?} {shown:?}");
    assert!(hello[0].starts_with("v1.a."), "{}", hello[0]);
    let (shown_page, shown_bob) = relay(&page, &mut bob, Vec::new(), hello);
    assert_eq!(
        shown_page,
        vec![json!({"type": "secure", "key": bob_key, "firstContact": true, "verified": false})]
    );
    assert_eq!(
        shown_bob,
        vec![
            json!({"type": "secure", "key": alice_key, "firstContact": true, "verified": false}),
            json!({"type": "message", "text": "hello from the page"}),
        ]
    );

    // Rust to the page, and the same safety number on both sides.
    let text = "hello from rust, ünïcödé 🦀";
    let payload = bob.send(text);
    assert_eq!(
        page_events(page.run_async(RECEIVE, json!([payload]))),
        vec![json!({"type": "message", "text": text})]
    );
    let page_number = page.run_async(
        "const E = window.LoopchatE2E; \
         return await E.safetyNumber('alice', E.decodeKey(args[0]), 'bob', E.decodeKey(args[1]));",
        json!([alice_key, bob_key]),
    );
    let alice_public = loopchat_client::e2e::decode_key(&alice_key).unwrap();
    assert_eq!(
        page_number,
        json!(safety_number(
            "bob",
            &bob.device.public,
            "alice",
            &alice_public
        ))
    );
    assert_eq!(
        page.run_async("return await window.__conv.safetyNumber();", json!([])),
        json!(bob.conversation.safety_number().unwrap())
    );
    assert_eq!(
        page.run_async("return window.__conv.verify();", json!([])),
        json!(true)
    );

    // A flipped byte, a replay, a dropped message: each seen, none shown.
    let one = bob.send("one");
    assert_eq!(
        page_events(page.run_async(RECEIVE, json!([flip(&one)]))),
        vec![json!({"type": "rejected", "reason": "tampered"})]
    );
    assert_eq!(
        page_events(page.run_async(RECEIVE, json!([one]))),
        vec![json!({"type": "message", "text": "one"})]
    );
    assert_eq!(
        page_events(page.run_async(RECEIVE, json!([one]))),
        vec![json!({"type": "rejected", "reason": "replayed"})]
    );
    let _dropped = bob.send("two");
    let three = bob.send("three");
    assert_eq!(
        page_events(page.run_async(RECEIVE, json!([three]))),
        vec![
            json!({"type": "lost", "count": 1}),
            json!({"type": "message", "text": "three"})
        ]
    );
    // And the other way: the page's message changed on the way.
    let (sent, _) = split(page_events(page.run_async(SEND, json!(["to bob"]))));
    assert_eq!(
        bob.receive(&flip(&sent[0])),
        vec![json!({"type": "rejected", "reason": "tampered"})]
    );
    assert_eq!(
        bob.receive(&sent[0]),
        vec![json!({"type": "message", "text": "to bob"})]
    );

    // A reload: the same device key from IndexedDB, the pins kept; bob's
    // next message is for a session the page lost, so it starts a new one.
    page.open(&url);
    wait_for_e2e(&page);
    let again = page.run_async(SETUP, json!(["loopchat", "alice", "bob"]));
    assert_eq!(again["public"], json!(alice_key), "the device key persists");
    let stale = bob.send("before the reload");
    let (hello, shown) = split(page_events(page.run_async(RECEIVE, json!([stale]))));
    assert_eq!(
        shown,
        vec![json!({"type": "rejected", "reason": "unknown-session"})]
    );
    let (shown_page, shown_bob) = relay(&page, &mut bob, Vec::new(), hello);
    assert_eq!(
        shown_page,
        vec![json!({"type": "secure", "key": bob_key, "firstContact": false, "verified": true})],
        "the page kept the pin and its verified mark"
    );
    assert_eq!(
        shown_bob,
        vec![json!({"type": "secure", "key": alice_key, "firstContact": false, "verified": false})]
    );

    // A swapped key: "bob" comes back with another key (a new device, or
    // someone in between). The page stops sending and holds what arrives.
    let pins = std::mem::take(&mut bob.pins);
    let mut other = Bob::new(KeyPair::generate(), pins);
    let other_key = encode_key(&other.device.public);
    let Event::Send(hello) = other.conversation.start() else {
        panic!("a hello")
    };
    let (shown_page, _) = relay(&page, &mut other, vec![hello], Vec::new());
    assert_eq!(
        shown_page,
        vec![json!({"type": "key-changed", "key": other_key})]
    );
    assert_eq!(
        page.run_async(SEND, json!(["not to a stranger"])),
        json!({"error": "key-changed"})
    );
    let held = other.send("trust me");
    assert_eq!(
        page_events(page.run_async(RECEIVE, json!([held]))),
        Vec::<Value>::new()
    );
    let accepted = page.run_async(
        "return window.__out(await window.__conv.acceptKey());",
        json!([]),
    );
    assert_eq!(
        page_events(accepted),
        vec![
            json!({"type": "secure", "key": other_key, "firstContact": false, "verified": false}),
            json!({"type": "message", "text": "trust me"}),
        ]
    );
    let errors = page.run("return window.__loopchatErrors || [];", json!([]));
    assert_eq!(errors, json!([]), "no script errors on the page");
}

/// Relays payloads between two pages (two browsers, so two device keys)
/// until both are quiet; returns what each showed.
fn relay_pages(a: &Browser, b: &Browser, mut to_b: Vec<String>) -> (Vec<Value>, Vec<Value>) {
    let (mut shown_a, mut shown_b) = (Vec::new(), Vec::new());
    let mut to_a = Vec::new();
    while !to_a.is_empty() || !to_b.is_empty() {
        for payload in std::mem::take(&mut to_b) {
            let (payloads, shown) = split(page_events(b.run_async(RECEIVE, json!([payload]))));
            to_a.extend(payloads);
            shown_b.extend(shown);
        }
        for payload in std::mem::take(&mut to_a) {
            let (payloads, shown) = split(page_events(a.run_async(RECEIVE, json!([payload]))));
            to_b.extend(payloads);
            shown_a.extend(shown);
        }
    }
    (shown_a, shown_b)
}

#[test]
fn two_pages_talk_through_a_relay() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start();
    let url = page_url(&server);
    let (carol, dave) = (
        Browser::start(&chromium, &chromedriver),
        Browser::start(&chromium, &chromedriver),
    );
    carol.open(&url);
    dave.open(&url);
    wait_for_e2e(&carol);
    wait_for_e2e(&dave);
    let carol_key = carol.run_async(SETUP, json!(["loopchat", "carol", "dave"]))["public"].clone();
    let dave_key = dave.run_async(SETUP, json!(["loopchat", "dave", "carol"]))["public"].clone();
    assert_ne!(carol_key, dave_key, "each browser has its own device key");

    // Both start at once: the hellos cross, one session results.
    let (from_carol, _) = split(page_events(carol.run_async(SEND, json!(["from carol"]))));
    let (from_dave, _) = split(page_events(dave.run_async(SEND, json!(["from dave"]))));
    let (to_dave, _) = split(page_events(carol.run_async(RECEIVE, json!([from_dave[0]]))));
    assert!(to_dave.is_empty(), "carol (lower) stays the initiator");
    let (to_carol, shown) = split(page_events(dave.run_async(RECEIVE, json!([from_carol[0]]))));
    assert!(shown.is_empty(), "{shown:?}");
    let (shown_dave, shown_carol) = relay_pages(&dave, &carol, to_carol);
    let secure = |key: &Value| json!({"type": "secure", "key": key, "firstContact": true, "verified": false});
    assert_eq!(
        shown_carol,
        vec![
            secure(&dave_key),
            json!({"type": "message", "text": "from dave"})
        ]
    );
    assert_eq!(
        shown_dave,
        vec![
            secure(&carol_key),
            json!({"type": "message", "text": "from carol"})
        ]
    );
    for round in 0..3 {
        let text = format!("round {round}: {}", "x".repeat(round * 70));
        let (sent, _) = split(page_events(dave.run_async(SEND, json!([text]))));
        let (_, shown) = relay_pages(&dave, &carol, sent);
        assert_eq!(shown, vec![json!({"type": "message", "text": text})]);
    }
}

/// Records every line the page sends on its WebSocket in `window.__sent`.
const RECORD_SENT: &str = "window.__sent = []; const send = WebSocket.prototype.send; \
     WebSocket.prototype.send = function (data) { window.__sent.push(String(data)); \
     return send.call(this, data); };";

fn welcomed(page: &Browser, url: &str) {
    page.open(url);
    page.wait_until(
        "the welcome",
        "return [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('* welcome '));",
    );
    wait_for_e2e(page);
    page.run(RECORD_SENT, json!([]));
}

fn sent(page: &Browser) -> Vec<String> {
    let sent = page.run("return window.__sent;", json!([]));
    serde_json::from_value(sent).expect("strings")
}

#[test]
fn the_page_encrypts_a_typed_e2e_line_and_never_sends_it_as_typed() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start();
    let page = Browser::start(&chromium, &chromedriver);
    welcomed(&page, &page_url(&server));
    page.say(":e2e bob the canary 4711");
    page.wait_until(
        "the handshake's first message",
        "return window.__sent.some(line => line.startsWith(':e2e bob v1.a.'));",
    );
    page.wait_for_line("🔒 e2e → bobthe canary 4711");
    page.say(":e2e-safety bob");
    page.wait_for_line("! e2e: no end-to-end session with bob yet");
    page.say(":e2e bob");
    page.wait_for_line("! e2e: usage: :e2e NICK TEXT (nothing was sent)");
    let lines = sent(&page);
    assert!(
        !lines.iter().any(|line| line.contains("canary")),
        "{lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|line| line.starts_with(":e2e")).count(),
        1,
        "{lines:?}"
    );
}

#[test]
fn on_a_non_secure_origin_the_page_says_e2e_is_unavailable() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start();
    let web = server.web_addr().expect("web address");
    // A host name that is not loopback to the browser, mapped to the
    // server: plain HTTP from "another host".
    let page = Browser::start_with(
        &chromium,
        &chromedriver,
        &["--host-resolver-rules=MAP insecure.e2e.test 127.0.0.1"],
    );
    page.open(&format!("http://insecure.e2e.test:{}/", web.port()));
    wait_for_e2e(&page);
    assert_eq!(
        page.run("return window.isSecureContext;", json!([])),
        json!(false)
    );
    let available = page.run_async("return await window.LoopchatE2E.availability;", json!([]));
    assert_eq!(available["ok"], json!(false));
    page.wait_until(
        "the note",
        "return !!document.querySelector('#e2e-status');",
    );
    let note = page.run(
        "return document.querySelector('#e2e-status').textContent;",
        json!([]),
    );
    let note = note.as_str().unwrap();
    assert!(
        note.starts_with("End-to-end encryption is unavailable: this page is not a secure context"),
        "{note}"
    );
    assert!(note.contains("readable by the server"), "{note}");

    // Asking for an end-to-end message there sends nothing.
    page.wait_until(
        "the welcome",
        "return [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('* welcome '));",
    );
    page.run(RECORD_SENT, json!([]));
    page.say(":e2e bob a secret");
    page.wait_until(
        "the refusal",
        "return [...document.querySelectorAll('#log li')].some(li => \
         li.textContent.includes('! e2e: unavailable: this page is not a secure context') \
         && li.textContent.endsWith('(nothing was sent)'));",
    );
    assert_eq!(sent(&page), Vec::<String>::new());
}
