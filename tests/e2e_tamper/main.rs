//! A tampering relay between a real client and the real server: a TCP
//! proxy in this test ([`proxy`]) passes everything on until told to flip
//! a byte of an end-to-end payload, replay one, drop one, play a man in
//! the middle (answering the handshake as "bob" with a key of its own),
//! or swap the key directory's answer. The clients: the full-screen
//! terminal client in a real terminal (tmux), here, and the page in
//! headless chromium, loaded through the proxy so its WebSocket runs
//! through it too ([`page`]). The peer is the client library
//! (`loopchat_client::e2e`) on its own connection to the same server.
//! Each attack must show to the user as a warning, and nothing it carried
//! may show as a message.
//!
//! CI (`CI=true`) never skips these; elsewhere they skip with a printed
//! reason when tmux, chromium or chromedriver is missing.

#[path = "../common/mod.rs"]
mod common;

mod page;
mod proxy;

use common::tmux::{have_tmux, pane_text, safety_digits, status_line, Session, Tmux};
use common::{ask, Client, Lines};
use loopchat_client::e2e::{E2e, KeyPair, Pins, Shown};
use proxy::{Attack, Framing, Proxy};
use std::net::SocketAddr;

/// The peer: a logged-in connection straight to the server and the client
/// library's end-to-end side.
pub struct Bob {
    client: Client,
    e2e: E2e,
    shown: Vec<Shown>,
}

impl Bob {
    /// Registers bob and publishes his key.
    pub fn new(server: SocketAddr) -> Bob {
        let mut client = Client::named(server, "bob");
        assert_eq!(ask(&mut client, ":register hunter22"), ["* registered bob"]);
        let e2e = E2e::with(KeyPair::generate(), Pins::in_memory(), "loopchat", "bob");
        assert_eq!(ask(&mut client, &e2e.publish()), ["* key published"]);
        Bob {
            client,
            e2e,
            shown: Vec::new(),
        }
    }

    /// Reads lines (each within the read timeout), answering `[e2e]` ones,
    /// until something shown satisfies `wanted`.
    pub fn until(&mut self, wanted: impl Fn(&Shown) -> bool) {
        while !self.shown.iter().any(&wanted) {
            let line = self.client.line();
            if let Some((answers, shown)) = self.e2e.on_line(&line) {
                for answer in answers {
                    self.client.send(&answer);
                }
                self.shown.extend(shown);
            }
        }
    }

    /// Sends `text` to alice, encrypted.
    pub fn send(&mut self, text: &str) {
        for line in self.e2e.send("alice", text).expect("bob sends") {
            self.client.send(&line);
        }
    }
}

/// Whether a shown item is the message `text`.
fn message(text: &str) -> impl Fn(&Shown) -> bool + '_ {
    move |shown| matches!(shown, Shown::Message { text: t, .. } if t == text)
}

/// How many times the screen's message pane shows `text`.
fn count(screen: &str, text: &str) -> usize {
    pane_text(screen).matches(text).count()
}

/// Starts the terminal client through the proxy, its key, pins and token
/// in `dir`.
fn start_alice(alice: &Session, dir: &std::path::Path, proxy: &Proxy) {
    alice.start_client_env(
        proxy.addr,
        &format!(
            "--nick alice --no-reconnect --e2e-dir '{}'",
            dir.join("e2e").display()
        ),
        &format!("XDG_CONFIG_HOME='{}'", dir.join("config").display()),
    );
}

/// The terminal client through the proxy, registered as alice, with an
/// end-to-end session with bob that carried one message each way.
fn connected<'a>(
    tmux: &'a Tmux,
    dir: &std::path::Path,
    proxy: &Proxy,
    bob: &mut Bob,
) -> Session<'a> {
    let alice = tmux.session("alice");
    start_alice(&alice, dir, proxy);
    alice.wait_text("is now known as alice");
    alice.line(":register hunter22");
    alice.wait_text("* key published");
    alice.line(":e2e bob first through the proxy");
    bob.until(message("first through the proxy"));
    alice.wait_text("* e2e: messages with bob are end-to-end encrypted");
    bob.send("and back");
    alice.wait_text("[e2e 🔒] bob: and back");
    alice
}

#[test]
fn a_flipped_replayed_or_dropped_message_is_reported_never_shown() {
    if !have_tmux("a_flipped_replayed_or_dropped_message_is_reported_never_shown") {
        return;
    }
    let server = common::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bob = Bob::new(server.addr());
    let proxy = Proxy::start(server.addr(), Framing::Lines);
    let tmux = Tmux::new();
    let alice = connected(&tmux, dir.path(), &proxy, &mut bob);

    // A flipped byte: rejected, the session goes on.
    proxy.arm(Attack::Flip);
    bob.send("flipped on the way");
    proxy.wait_done(Attack::Flip);
    alice.wait_pane(
        "! e2e: A message that was changed or could not be decrypted from bob was rejected",
    );
    bob.send("after the flip");
    let screen = alice.wait_text("[e2e 🔒] bob: after the flip");
    assert_eq!(count(&screen, "flipped on the way"), 0, "{screen}");
    // The rejected one counts as lost once the next one arrived.
    let lost = "! e2e: 1 end-to-end message(s) from bob never arrived";
    assert_eq!(count(&screen, lost), 1, "{screen}");

    // A replay: shown once, the copy rejected.
    proxy.arm(Attack::Replay);
    bob.send("sent once");
    proxy.wait_done(Attack::Replay);
    let screen = alice.wait_pane("! e2e: A replayed or out-of-order message from bob was rejected");
    assert_eq!(count(&screen, "[e2e 🔒] bob: sent once"), 1, "{screen}");

    // A dropped message: the next one says one never arrived.
    proxy.arm(Attack::Drop);
    bob.send("dropped on the way");
    proxy.wait_done(Attack::Drop);
    bob.send("after the drop");
    let screen = alice.wait_text("[e2e 🔒] bob: after the drop");
    assert_eq!(count(&screen, lost), 2, "{screen}");
    assert_eq!(count(&screen, "dropped on the way"), 0, "{screen}");

    // Through it all the session stayed up: alice to bob still works.
    alice.line(":e2e bob still here");
    bob.until(message("still here"));
    alice.line(":quit");
    alice.wait_text("EXITED:0");
}

#[test]
fn a_swapped_key_stops_sending_until_accepted_and_holds_what_arrives() {
    if !have_tmux("a_swapped_key_stops_sending_until_accepted_and_holds_what_arrives") {
        return;
    }
    let server = common::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bob = Bob::new(server.addr());
    let proxy = Proxy::start(server.addr(), Framing::Lines);
    let tmux = Tmux::new();
    let alice = connected(&tmux, dir.path(), &proxy, &mut bob);

    // The proxy answers as "bob" with its own key: the handshake works,
    // the key is not the one alice pinned.
    proxy.impersonate_bob("trust me, I am bob");
    alice.wait_pane(
        "! e2e: bob's key changed: nothing is sent to bob until you accept the new key \
         (compare safety numbers first)",
    );
    // The conversation on screen says so; a line typed there, without
    // `:e2e`, is refused the same way: never sent as a plain `:pm`.
    alice.wait_for("the changed key on the status line", |s| {
        status_line(s).contains("│ pm bob (⚠ key changed, nothing sent until :e2e-accept)")
    });
    alice.line(":e2e bob the secret");
    let screen = alice.wait_pane("! e2e: bob's key changed: nothing was sent;");
    assert_eq!(count(&screen, "trust me"), 0, "held, not shown: {screen}");
    alice.line("typed as plain");
    let screen = alice.wait_for("the second refusal", |s| {
        count(s, "! e2e: bob's key changed: nothing was sent;") == 2
    });
    assert!(screen.contains("2 bob ⚠"), "the list's mark: {screen}");
    let sent = proxy.sent_by_client();
    assert!(
        !sent
            .iter()
            .any(|line| line.contains("secret") || line.contains("typed as plain")),
        "{sent:?}"
    );
    assert!(
        proxy.plan.lock().unwrap().mitm_read.is_empty(),
        "the man in the middle read nothing"
    );
    // The safety number differs from the one bob computes with his key.
    alice.line(":e2e-safety bob");
    let screen = alice.wait_text("safety number with bob: ");
    let theirs = bob.e2e.safety_number("alice").expect("bob's number");
    let theirs: String = theirs.chars().filter(char::is_ascii_digit).collect();
    assert_ne!(
        safety_digits(&pane_text(&screen), "bob"),
        theirs,
        "{screen}"
    );

    // Accepting (the user's choice, after comparing) releases what was held.
    alice.line(":e2e-accept bob");
    alice.wait_text("[e2e 🔒] bob: trust me, I am bob");
    alice.wait_for("the lock back on the status line", |s| {
        status_line(s).contains("│ pm bob (🔒 end-to-end)")
    });
    alice.line(":quit");
    alice.wait_text("EXITED:0");
}

#[test]
fn a_swapped_key_in_the_directory_is_flagged_and_a_peer_without_a_key_is_said() {
    if !have_tmux("a_swapped_key_in_the_directory_is_flagged_and_a_peer_without_a_key_is_said") {
        return;
    }
    let server = common::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bob = Bob::new(server.addr());
    let proxy = Proxy::start(server.addr(), Framing::Lines);
    let tmux = Tmux::new();
    let alice = connected(&tmux, dir.path(), &proxy, &mut bob);

    // carol is logged in but never published a key: said before any
    // handshake, and the text never leaves in the clear.
    let mut carol = Client::named(server.addr(), "carol");
    assert_eq!(
        ask(&mut carol, ":register hunter22"),
        ["* registered carol"]
    );
    alice.line(":e2e carol are you there");
    alice.wait_pane(
        "! e2e: carol has published no end-to-end key, so cannot read end-to-end messages \
         yet (yours waits; nothing was sent in the clear); a plain :pm reaches carol but is \
         readable by the server",
    );
    let sent = proxy.sent_by_client();
    assert!(sent.contains(&":keys carol".to_string()), "{sent:?}");
    assert!(
        !sent.iter().any(|line| line.contains("are you there")),
        "{sent:?}"
    );

    // A restarted alice (her pins kept) starts a new handshake with bob;
    // the proxy answers her `:keys bob` with a key she never accepted.
    alice.line(":quit");
    alice.wait_text("EXITED:0");
    let swapped = loopchat_client::e2e::encode_key(&KeyPair::generate().public);
    proxy.plan.lock().unwrap().swap_keys = Some(swapped);
    start_alice(&alice, dir.path(), &proxy);
    alice.wait_text("* key published");
    alice.line(":e2e bob hello again");
    alice.wait_pane(
        "! e2e: the server lists keys for bob that you never accepted (a new device, or \
         someone in between): the handshake will tell",
    );
    // The handshake reaches the real bob, whose key alice knows.
    bob.until(message("hello again"));
    alice.wait_text("* e2e: messages with bob are end-to-end encrypted");
    alice.line(":quit");
    alice.wait_text("EXITED:0");
}
