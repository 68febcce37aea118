//! The same attacks on the page (`web/app.js` and `web/e2e.js` in headless
//! chromium), through the proxy in its HTTP and WebSocket mode: the page
//! is loaded through it, so its WebSocket runs through it too. What the
//! user sees is read from the page's log.

use super::proxy::{Attack, Framing, Proxy};
use super::{message, Bob};
use crate::common;
use common::browser::{tools_or_skip, Browser};
use common::page::{entries, page_logged_in, page_welcomed, wait_entry};
use serde_json::json;

/// Entries that end with `text`.
fn count(page: &Browser, classes: &str, text: &str) -> usize {
    entries(page, classes)
        .iter()
        .filter(|entry| entry.ends_with(text))
        .count()
}

/// Whether any entry of the page contains `text`.
fn anywhere(page: &Browser, text: &str) -> bool {
    entries(page, "").iter().any(|entry| entry.contains(text))
}

#[test]
fn the_page_reports_every_attack_and_never_shows_a_tampered_message() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start();
    let mut bob = Bob::new(server.addr());
    let proxy = Proxy::start(
        server.web_addr().expect("a web address"),
        Framing::WebSocket,
    );
    let url = format!("http://{}/", proxy.addr);
    let page = Browser::start(&chromium, &chromedriver);
    page_logged_in(&page, &url, "alice");
    page.say(":e2e bob first through the proxy");
    bob.until(message("first through the proxy"));
    page.wait_for_line(
        "* e2e: messages with bob are end-to-end encrypted \
         (first contact: compare safety numbers to be sure)",
    );
    bob.send("and back");
    wait_entry(&page, ".pm.e2e:not(.own)", "bob and back");

    // A flipped byte: rejected; the next message counts it as lost.
    let lost = "! e2e: 1 end-to-end message(s) from bob never arrived";
    proxy.arm(Attack::Flip);
    bob.send("flipped on the way");
    proxy.wait_done(Attack::Flip);
    page.wait_for_line("! e2e: a message from bob was rejected (tampered)");
    bob.send("after the flip");
    wait_entry(&page, ".pm.e2e:not(.own)", "bob after the flip");
    assert_eq!(count(&page, ".error", lost), 1);

    // A replay: shown once, the copy rejected.
    proxy.arm(Attack::Replay);
    bob.send("sent once");
    proxy.wait_done(Attack::Replay);
    page.wait_for_line("! e2e: a message from bob was rejected (replayed)");
    assert_eq!(count(&page, ".pm.e2e", "bob sent once"), 1);

    // A dropped message: said when the next one comes.
    proxy.arm(Attack::Drop);
    bob.send("dropped on the way");
    proxy.wait_done(Attack::Drop);
    bob.send("after the drop");
    wait_entry(&page, ".pm.e2e:not(.own)", "bob after the drop");
    assert_eq!(count(&page, ".error", lost), 2);
    assert!(!anywhere(&page, "flipped on the way") && !anywhere(&page, "dropped on the way"));

    // A man in the middle with his own key: sending stops, his message is
    // held, and the typed text never leaves the page.
    proxy.impersonate_bob("trust me, I am bob");
    page.wait_for_line(
        "! e2e: bob's key changed: nothing is sent to bob until you accept the new key \
         (compare safety numbers first, then :e2e-accept bob)",
    );
    // The conversation is marked in the list and its header; a line typed
    // in it without `:e2e` is refused too, never sent as a plain `:pm`.
    page.wait_until(
        "the changed-key mark",
        "return !!document.querySelector('#rooms button[data-key=\"pm:bob\"] .e2e-mark.changed') \
         && document.querySelector('#room-e2e').dataset.lock === 'changed';",
    );
    page.say(":e2e bob the secret");
    page.wait_for_line(
        "! e2e: bob's key changed: compare safety numbers, then :e2e-accept bob (nothing was sent)",
    );
    page.say("typed as plain");
    page.wait_until(
        "the second refusal",
        "return [...document.querySelectorAll('#log li')].filter(li => li.textContent.endsWith(\
         \"! e2e: bob's key changed: compare safety numbers, then :e2e-accept bob (nothing was sent)\")).length === 2;",
    );
    assert!(!anywhere(&page, "trust me"), "held, not shown");
    let sent = proxy.sent_by_client();
    assert!(
        !sent
            .iter()
            .any(|line| line.contains("secret") || line.contains("typed as plain")),
        "{sent:?}"
    );
    assert!(proxy.plan.lock().unwrap().mitm_read.is_empty());
    page.say(":e2e-accept bob");
    wait_entry(&page, ".pm.e2e:not(.own)", "bob trust me, I am bob");
    page.wait_until(
        "the lock back",
        "return document.querySelector('#room-e2e').dataset.lock === 'secure';",
    );
    proxy.stop_impersonating();

    // After a reload the page starts a new handshake; the proxy answers its
    // `:keys bob` with a key it never accepted.
    let swapped =
        loopchat_client::e2e::encode_key(&loopchat_client::e2e::KeyPair::generate().public);
    proxy.plan.lock().unwrap().swap_keys = Some(swapped);
    page_welcomed(&page, &url);
    page.say(":login alice hunter22");
    page.wait_for_line("* key published");
    page.say(":e2e bob hello again");
    page.wait_for_line(
        "! e2e: the server lists keys for bob that you never accepted (a new device, or someone \
         in between): the handshake will tell, and nothing is sent to a changed key until you accept it",
    );
    bob.until(message("hello again"));
    page.wait_for_line("* e2e: messages with bob are end-to-end encrypted");
    let errors = page.run("return window.__loopchatErrors || [];", json!([]));
    assert_eq!(errors, json!([]), "no script errors on the page");
}
