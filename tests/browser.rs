//! A real browser: Debian's headless chromium, driven through chromedriver
//! (W3C WebDriver over HTTP), opens the chat page twice next to a TCP client
//! in one room. Each sees the others' lines, a nick change, a `:pm`, a room
//! switch through the room list, and a message `<img src=x onerror=alert(1)>`
//! shown as text. Screenshots of both pages go to `target/browser/`.
//!
//! CI (`CI=true`) installs chromium and chromium-driver and never skips this;
//! elsewhere it skips with a printed reason when they are missing.

mod common;

use common::browser::{tools_or_skip, Browser, WAIT};
use common::{start, Client, Lines};
use loopchat::protocol::{recognise, Event, ServerLine};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const XSS: &str = "<img src=x onerror=alert(1)>";

/// Opens the page in the current window and sets its nick.
fn join_as(browser: &Browser, url: &str, nick: &str, tcp: &mut Client) -> String {
    browser.open(url);
    browser.wait_until(
        "the welcome",
        "return document.querySelector('#status').classList.contains('online') \
         && [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('* welcome '));",
    );
    let joined = tcp.line();
    let guest = match recognise(&joined) {
        Some(ServerLine::Event(Event::Joined {
            nick,
            room: "#lobby",
        })) => nick.to_string(),
        _ => panic!("expected a join, got {joined:?}"),
    };
    let nick_input = browser.element("#nick-input");
    browser.call(
        "POST",
        &browser.session_path(&format!("/element/{nick_input}/clear")),
        Some(json!({})),
    );
    browser.type_into("#nick-input", &format!("{nick}\u{E007}"));
    tcp.expect(&format!("* {guest} is now known as {nick}"));
    browser.wait_for_line(&format!("* {guest} is now known as {nick}"));
    guest
}

/// Waits for conversation `key` (`#room` or `pm:nick`) in the list and
/// opens it.
fn open_conversation(browser: &Browser, key: &str) {
    let css = format!("#rooms button[data-key=\"{key}\"]");
    browser.wait_until(
        &format!("{key} in the conversations"),
        &format!("return !!document.querySelector({css:?});"),
    );
    browser.click(&css);
    browser.wait_until(
        &format!("{key} shown"),
        &format!("return document.querySelector({css:?}).getAttribute('aria-current') === 'true';"),
    );
}

#[test]
fn two_pages_and_a_terminal_chat_in_a_real_browser() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = start();
    let url = format!("http://{}/", server.web_addr().expect("web address"));
    let mut tcp = Client::named(server.addr(), "terminal");
    let browser = Browser::start(&chromium, &chromedriver);

    let alice = browser.window();
    join_as(&browser, &url, "alice", &mut tcp);
    let bob = browser.new_window();
    browser.switch_to(&bob);
    let bob_guest = join_as(&browser, &url, "bob", &mut tcp);
    browser.switch_to(&alice);
    browser.wait_for_line(&format!("* {bob_guest} is now known as bob"));
    browser.wait_until(
        "the user list to show all three",
        "return [...document.querySelectorAll('#users li')].map(li => li.textContent).join(' ') \
         === 'alice bob terminal';",
    );

    // Each sees the others' lines.
    browser.say("hello from alice");
    tcp.expect("alice: hello from alice");
    browser.switch_to(&bob);
    browser.wait_for_line("alice hello from alice");
    browser.say("hello from bob");
    tcp.expect("bob: hello from bob");
    tcp.send("hello from the terminal");
    browser.wait_for_line("terminal hello from the terminal");
    browser.switch_to(&alice);
    browser.wait_for_line("bob hello from bob");
    browser.wait_for_line("terminal hello from the terminal");
    assert!(
        browser
            .log()
            .iter()
            .any(|l| l.ends_with("alice hello from alice")),
        "alice's own line is shown to her"
    );

    // A private message, from a page to the other page and to the terminal.
    browser.switch_to(&bob);
    browser.say(":pm alice just between us");
    browser.switch_to(&alice);
    open_conversation(&browser, "pm:bob");
    browser.wait_for_line("bob just between us");
    open_conversation(&browser, "#lobby");
    tcp.send(":pm bob psst from the terminal");
    browser.switch_to(&bob);
    open_conversation(&browser, "pm:terminal");
    browser.wait_for_line("terminal psst from the terminal");
    open_conversation(&browser, "#lobby");

    // Markup is text, never HTML: from the terminal and from a page.
    tcp.send(XSS);
    browser.wait_for_line(&format!("terminal {XSS}"));
    browser.say(&format!(":me says {XSS}"));
    tcp.expect(&format!("* bob says {XSS}"));
    // Typed as in IRC: `/me` is `:me`; `//` sends one `/`.
    browser.say("/me waves");
    tcp.expect("* bob waves");
    browser.say("//etc is a folder");
    tcp.expect("bob: /etc is a folder");
    browser.switch_to(&alice);
    browser.wait_for_line(&format!("terminal {XSS}"));
    browser.wait_for_line(&format!("bob says {XSS}"));
    assert_eq!(
        browser.run(
            "return document.querySelectorAll('#log img, #log [onerror]').length;",
            json!([])
        ),
        json!(0),
        "no element was made from a message"
    );

    // A nick change, seen by everyone.
    browser.type_into("#say-input", ":nick alicia\u{E007}");
    tcp.expect("* alice is now known as alicia");
    browser.switch_to(&bob);
    browser.wait_for_line("* alice is now known as alicia");
    browser.wait_until(
        "bob's user list to follow the rename",
        "return [...document.querySelectorAll('#users li')].map(li => li.textContent).join(' ') \
         === 'alicia bob terminal';",
    );

    // A room joined through the list of other rooms (protocol 1.2 keeps
    // #lobby): both rooms are conversations of alicia's.
    tcp.send(":join #rust");
    tcp.expect("* terminal joined #rust");
    browser.switch_to(&alice);
    browser.click("#refresh-rooms");
    browser.wait_until(
        "#rust in the other rooms",
        "return [...document.querySelectorAll('#all-rooms button')].some(b => b.textContent.startsWith('#rust'));",
    );
    browser.run(
        "[...document.querySelectorAll('#all-rooms button')].find(b => b.textContent.startsWith('#rust')).id = 'rust-room';",
        json!([]),
    );
    browser.click("#rust-room");
    tcp.expect("* alicia joined #rust");
    browser.wait_until(
        "the room title",
        "return document.querySelector('#room-name').textContent === '#rust';",
    );
    tcp.send("welcome to rust");
    browser.wait_for_line("terminal welcome to rust");
    browser.say("glad to be here");
    tcp.expect("alicia: glad to be here");
    browser.wait_until(
        "alicia's own line confirmed by its echo",
        "return [...document.querySelectorAll('#log li.own.sent')].some(li => li.textContent.endsWith('alicia glad to be here'));",
    );
    // #lobby's lines reach alicia in #lobby's conversation: counted unread,
    // not shown in #rust's log; a mention marks the room.
    browser.switch_to(&bob);
    browser.say("still in the lobby");
    tcp.expect("[#lobby] bob: still in the lobby");
    browser.say("alicia: are you there?");
    tcp.expect("[#lobby] bob: alicia: are you there?");
    browser.switch_to(&alice);
    browser.wait_until(
        "two unread in #lobby with the mention mark",
        "const b = document.querySelector('#rooms button[data-key=\"#lobby\"]'); \
         return !!b && b.querySelector('.unread')?.textContent === '2' && !!b.querySelector('.mention-mark');",
    );
    assert_eq!(
        browser.run("return document.title;", json!([])),
        json!("(2) #rust · loopchat"),
        "the unread count in the title"
    );
    assert!(
        !browser
            .log()
            .iter()
            .any(|l| l.contains("still in the lobby")),
        "#rust's log shows #rust's lines only"
    );
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    browser.screenshot(&shots.join("alice-unread.png"));
    // Switching to #lobby: its lines, the mention highlighted, none unread.
    browser.click("#rooms button[data-key=\"#lobby\"]");
    browser.wait_until(
        "#lobby shown",
        "return document.querySelector('#room-name').textContent === '#lobby';",
    );
    browser.wait_for_line("bob still in the lobby");
    browser.wait_until(
        "the mention highlighted",
        "return [...document.querySelectorAll('#log li.mention mark')].some(m => m.textContent === 'alicia');",
    );
    assert!(!browser.log().iter().any(|l| l.contains("welcome to rust")));
    assert_eq!(
        browser.run(
            "return [document.title, document.querySelectorAll('#rooms .unread, #rooms .mention-mark').length];",
            json!([])
        ),
        json!(["#lobby · loopchat", 0])
    );
    browser.say("here, in the lobby");
    tcp.expect("[#lobby] alicia: here, in the lobby");
    // :part lobby leaves #lobby; #rust becomes current again.
    browser.say(":part lobby");
    tcp.expect("[#lobby] * alicia left #lobby");
    browser.wait_until(
        "#rust current again, #lobby gone from the list",
        "return document.querySelector('#room-name').textContent === '#rust' \
         && !document.querySelector('#rooms button[data-key=\"#lobby\"]');",
    );
    browser.wait_for_line("terminal welcome to rust");
    browser.switch_to(&bob);
    browser.wait_for_line("* alicia left #lobby");
    browser.say("anyone still here?");
    tcp.expect("[#lobby] bob: anyone still here?");
    tcp.assert_quiet();
    assert!(
        !browser.log().iter().any(|l| l.contains("welcome to rust")),
        "bob, still in #lobby, does not hear #rust"
    );

    browser.switch_to(&alice);
    browser.screenshot(&shots.join("alice.png"));
    browser.switch_to(&bob);
    browser.screenshot(&shots.join("bob.png"));
    browser.set_size(390, 844);
    browser.screenshot(&shots.join("bob-phone.png"));
    let errors = browser.run("return window.__loopchatErrors || [];", json!([]));
    assert_eq!(errors, json!([]), "no script errors on the page");
}

/// The page over HTTPS and its WebSocket over `wss://`, next to a TLS line
/// client. The test CA is not in the browser's store, so this browser
/// session (only this one) ignores certificate errors.
#[test]
fn the_page_over_https_and_wss() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let pki = common::tls::TestPki::new();
    let server = common::start_with(|config| {
        config.tls_cert = Some(pki.cert_file.clone());
        config.tls_key = Some(pki.key_file.clone());
    });
    let web = server.web_addr().expect("web address");
    let url = format!("https://localhost:{}/", web.port());
    let mut tcp = Client::named(server.addr(), "terminal");
    let mut secure = common::tls::TlsClient::connect(server.tls_addr().expect("TLS address"), &pki);
    tcp.expect(&format!("* {} joined #lobby", secure.nick));
    let browser = Browser::start_with(&chromium, &chromedriver, &["--ignore-certificate-errors"]);

    let guest = join_as(&browser, &url, "carol", &mut tcp);
    assert_eq!(
        browser.run("return location.protocol;", json!([])),
        json!("https:")
    );
    secure.skip_until(&format!("* {guest} is now known as carol"));
    browser.say("hello over wss");
    tcp.expect("carol: hello over wss");
    secure.expect("carol: hello over wss");
    secure.send("hello from a TLS terminal");
    browser.wait_for_line(&format!("{} hello from a TLS terminal", secure.nick));
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    browser.screenshot(&shots.join("https.png"));
}

#[test]
fn the_page_asks_for_the_password_of_a_password_server() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start_with(|c| c.password = Some("open sesame".into()));
    let url = format!("http://{}/", server.web_addr().expect("web address"));
    let browser = Browser::start(&chromium, &chromedriver);
    browser.open(&url);
    browser.wait_until(
        "the password dialog",
        "return document.querySelector('#password-dialog').open;",
    );
    browser.type_into("#password-input", "wrong\u{E007}");
    browser.wait_for_line("! wrong password");
    browser.wait_until(
        "the dialog again, with the error",
        "return document.querySelector('#password-dialog').open \
         && document.querySelector('#password-error').textContent === 'wrong password';",
    );
    browser.type_into("#password-input", "open sesame\u{E007}");
    browser.wait_until(
        "the welcome, the dialog closed",
        "return !document.querySelector('#password-dialog').open \
         && [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('* welcome '));",
    );
    let mut tcp = Client::connect_raw(server.addr());
    tcp.expect("* password required");
    tcp.send(":auth open sesame");
    tcp.read_welcome();
    browser.say("the page got in");
    tcp.expect("guest1: the page got in");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    browser.screenshot(&shots.join("password.png"));
}

#[test]
fn the_page_reconnects_after_a_restart_and_keeps_its_nick_and_rooms() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start();
    let web = server.web_addr().expect("web address");
    let url = format!("http://{web}/");
    let browser = Browser::start(&chromium, &chromedriver);
    let mut tcp = Client::connect(server.addr());
    join_as(&browser, &url, "phoenix", &mut tcp);
    // A room of its own, with a topic the restarted server will not have.
    browser.say(":join den");
    browser.say(":topic the phoenix rises");
    browser.wait_until(
        "the topic shown",
        "const t = document.querySelector('#room-topic'); \
         return !t.hidden && t.textContent === 'the phoenix rises';",
    );
    drop(tcp);
    server.stop().expect("the first server stops");
    browser.wait_for_line("* server went away; reconnecting…");
    browser.wait_until(
        "the offline status",
        "return document.querySelector('#status').classList.contains('offline');",
    );
    // A new server on the same web address: the page comes back by itself
    // and asks for its nick again.
    let server = common::start_with(|c| c.web_addr = Some(web));
    let mut tcp = Client::connect(server.addr());
    // Whether the page came back before or after this client: ask.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        tcp.send(":users");
        // Skipping the page's join and rename, if they come meanwhile.
        let users = loop {
            let line = tcp.line();
            if line.starts_with("* users in #lobby: ") {
                break line;
            }
        };
        let names: Vec<&str> = users["* users in #lobby: ".len()..].split(' ').collect();
        if names.contains(&"phoenix") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never came back as phoenix: {users:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    browser.wait_until(
        "the online status",
        "return document.querySelector('#status').classList.contains('online');",
    );
    // Back in #den, made again: no topic (not the old one kept).
    browser.wait_until(
        "#den again, without its old topic",
        "return document.querySelector('#room-name').textContent === '#den' \
         && document.querySelector('#room-topic').hidden;",
    );
    tcp.sync();
    browser.say(":part den");
    browser.say("risen again");
    tcp.expect("phoenix: risen again");
    // `:quit` leaves for good: no reconnect until Enter.
    browser.say(":quit");
    tcp.expect("* phoenix left #lobby");
    browser.wait_for_line("* you left the chat; press Enter to come back");
    assert_eq!(
        browser.run(
            "return document.querySelector('#status').textContent.trim();",
            json!([])
        ),
        json!("you left"),
        "left, not retrying"
    );
    browser.type_into("#say-input", "\u{E007}");
    let back = tcp.line();
    assert!(
        back.starts_with("* guest") && back.ends_with(" joined #lobby"),
        "{back}"
    );
    tcp.expect(&format!(
        "* {} is now known as phoenix",
        back["* ".len()..].split(' ').next().unwrap()
    ));
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    browser.screenshot(&shots.join("reconnected.png"));
}

/// Counts the log entries (of the conversation shown) that end with `text`.
fn count_lines(browser: &Browser, text: &str) -> usize {
    browser.log().iter().filter(|l| l.ends_with(text)).count()
}

/// The page as a chat app: links, a refused line, a notification for a
/// mention while the page is in the background, no duplicate after a
/// reload or after the server restarts (the history file keeps the ids).
#[test]
fn links_refusals_notifications_and_no_duplicates() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let history = dir.path().join("history.db");
    let file = history.clone();
    let server = common::start_with(move |c| c.history.file = Some(file));
    let web = server.web_addr().expect("web address");
    let url = format!("http://{web}/");
    let mut tcp = Client::named(server.addr(), "terminal");
    let browser = Browser::start(&chromium, &chromedriver);
    join_as(&browser, &url, "alice", &mut tcp);

    // Links: http(s) as anchors that open safely, javascript: as text.
    tcp.send("see https://example.com/a?b=1, or javascript:alert(1) and <a href=x>");
    browser.wait_for_line("see https://example.com/a?b=1, or javascript:alert(1) and <a href=x>");
    assert_eq!(
        browser.run(
            "return [...document.querySelectorAll('#log a')].map(a => [a.getAttribute('href'), a.rel, a.textContent]);",
            json!([])
        ),
        json!([["https://example.com/a?b=1", "noopener noreferrer", "https://example.com/a?b=1"]]),
        "one anchor: the https link, and not the javascript: one"
    );

    // A line over the limit is refused before it is sent, the limit shown.
    browser.run(
        "document.querySelector('#say-input').value = 'x'.repeat(5000);",
        json!([]),
    );
    browser.type_into("#say-input", "\u{E007}");
    browser.wait_for_line("! not sent: 5000 bytes, the limit is 4000 (shorten it or split it)");
    assert_eq!(
        browser.run(
            "return document.querySelector('#say-input').value.length;",
            json!([])
        ),
        json!(5000),
        "the text stays in the input"
    );
    browser.run(
        "document.querySelector('#say-input').value = '';",
        json!([]),
    );
    let meanwhile = tcp.sync();
    assert!(
        !meanwhile.iter().any(|l| l.contains("xxxxxxxxxx")),
        "nothing was sent: {meanwhile:?}"
    );

    // A refused line: marked refused with the server's error, never sent.
    browser.say(":pm ghost are you there?");
    open_conversation(&browser, "pm:ghost");
    browser.wait_until(
        "the line marked refused",
        "return [...document.querySelectorAll('#log li.refused')].some(li => \
         li.textContent.includes('alice are you there?') && li.textContent.endsWith('refused: no such user ghost'));",
    );
    assert_eq!(
        browser.run(
            "return document.querySelectorAll('#log li.sent').length;",
            json!([])
        ),
        json!(0)
    );
    open_conversation(&browser, "#lobby");

    // A mention while the page is in the background: a notification.
    browser.call(
        "POST",
        &browser.session_path("/permissions"),
        Some(json!({"descriptor": {"name": "notifications"}, "state": "granted"})),
    );
    browser.call(
        "POST",
        &browser.session_path("/window/minimize"),
        Some(json!({})),
    );
    assert_eq!(
        browser.run("return document.visibilityState;", json!([])),
        json!("hidden")
    );
    tcp.send("alice: lunch?");
    browser.wait_until(
        "a notification for the mention",
        "return window.__loopchatNotifications.some(n => n.body.includes('alice: lunch?') && !n.error);",
    );
    assert_eq!(
        browser.run("return document.title;", json!([])),
        json!("(1) #lobby · loopchat"),
        "the unread count in the title while hidden"
    );
    browser.call(
        "POST",
        &browser.session_path("/window/maximize"),
        Some(json!({})),
    );
    browser.wait_until(
        "the count gone once the page is seen",
        "return document.title === '#lobby · loopchat';",
    );

    // Own lines shown once, after a reload and after a server restart.
    browser.say("said before the reload");
    tcp.expect("alice: said before the reload");
    browser.wait_until(
        "the echo",
        "return document.querySelectorAll('#log li.own.sent').length === 1;",
    );
    browser.open(&url);
    browser.wait_for_line(" is now known as alice");
    browser.wait_for_line("alice said before the reload");
    tcp.sync();
    assert_eq!(count_lines(&browser, "alice said before the reload"), 1);
    assert_eq!(count_lines(&browser, "terminal alice: lunch?"), 1);
    drop(tcp);
    server.stop().expect("the server stops");
    browser.wait_for_line("* server went away; reconnecting…");
    let file = history.clone();
    let server = common::start_with(move |c| {
        c.web_addr = Some(web);
        c.history.file = Some(file);
    });
    // Sent before or after the page is back: the page has it either way
    // (live, or from the history it asks for on joining).
    let mut tcp = Client::named(server.addr(), "terminal");
    tcp.send("after the restart");
    browser.wait_for_line("terminal after the restart");
    assert_eq!(count_lines(&browser, "alice said before the reload"), 1);
    assert_eq!(count_lines(&browser, "terminal alice: lunch?"), 1);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    browser.screenshot(&shots.join("after-restart.png"));

    // A room alice creates: she is its operator, marked `@`; the topic
    // under the room name; kick offered in the member list.
    browser.say(":join #den");
    browser.wait_until(
        "#den current",
        "return document.querySelector('#room-name').textContent === '#den';",
    );
    browser.say(":topic a cosy corner");
    browser.wait_until(
        "the topic under the room name",
        "return document.querySelector('#room-topic').textContent === 'a cosy corner';",
    );
    tcp.send(":join #den");
    tcp.skip_until("* topic #den: a cosy corner");
    browser.wait_until(
        "alice marked operator, a kick button for terminal",
        "return [...document.querySelectorAll('#users li')].map(li => li.textContent).join('|')          === '@alice|terminalkickban';",
    );
    browser.screenshot(&shots.join("operator.png"));
    browser.click("#users li:not(.self) .kick");
    tcp.expect("* terminal was kicked from #den by alice");
    browser.wait_for_line("* terminal was kicked from #den by alice");
    browser.wait_until(
        "terminal gone from the member list",
        "return [...document.querySelectorAll('#users li')].map(li => li.textContent).join('|') === '@alice';",
    );
    let errors = browser.run("return window.__loopchatErrors || [];", json!([]));
    assert_eq!(errors, json!([]), "no script errors on the page");
}

/// Reads lines until one ends with `end`; returns it.
fn read_until(tcp: &mut Client, end: &str) -> String {
    loop {
        let line = tcp.line();
        if line.ends_with(end) {
            return line;
        }
    }
}

/// Accounts in the page: register with "remember me", reload and a new
/// tab come back logged in without the password; log out forgets; a token
/// the server no longer accepts falls back to a guest cleanly.
#[test]
fn register_reload_still_logged_in_and_a_bad_token_falls_back_to_guest() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start();
    let url = format!("http://{}/", server.web_addr().expect("web address"));
    let mut tcp = Client::named(server.addr(), "terminal");
    let browser = Browser::start(&chromium, &chromedriver);
    join_as(&browser, &url, "alice", &mut tcp);

    browser.click("#account-button");
    browser.wait_until(
        "the account dialog",
        "return document.querySelector('#account-dialog').open;",
    );
    browser.type_into("#account-password", "correct horse battery");
    browser.click("#account-register");
    browser.wait_for_line("* registered alice");
    browser.wait_until(
        "the token kept, the dialog closed, the button saying who",
        "return !!localStorage.getItem('loopchat.token') \
         && !document.querySelector('#account-dialog').open \
         && document.querySelector('#account-button').textContent === '✓ alice';",
    );
    assert!(
        !browser.log().iter().any(|l| l.contains("* token ")),
        "the token is never shown"
    );

    // A reload: logged in again by the token, no password typed.
    browser.open(&url);
    browser.wait_for_line("* logged in as alice");
    read_until(&mut tcp, "is now known as alice");
    browser.wait_until(
        "the button says alice",
        "return document.querySelector('#account-button').textContent === '✓ alice';",
    );
    browser.say("back without a password");
    read_until(&mut tcp, "alice: back without a password");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    browser.screenshot(&shots.join("logged-in.png"));

    // A token the server does not know: forgotten, and the page is a guest.
    browser.run(
        "localStorage.setItem('loopchat.token', 'not-a-valid-token-at-all-xyz'); \
         sessionStorage.removeItem('loopchat.nick');",
        json!([]),
    );
    browser.open(&url);
    browser.wait_for_line("* the saved login no longer works: continuing as a guest");
    assert_eq!(
        browser.run(
            "return [localStorage.getItem('loopchat.token'), document.querySelector('#account-button').textContent];",
            json!([])
        ),
        json!([null, "Log in"])
    );
    browser.say("a guest again");
    let line = read_until(&mut tcp, ": a guest again");
    assert!(line.starts_with("guest"), "{line:?}");
    let errors = browser.run("return window.__loopchatErrors || [];", json!([]));
    assert_eq!(errors, json!([]), "no script errors on the page");
}

/// The page's details: times in the reader's time zone, Tab completes a
/// nick and a command, clicking a
/// member opens a private conversation, the nick field does not keep a
/// nick the server refused, a new tab comes back logged in with the
/// remembered token, and logging out forgets it.
#[test]
fn local_times_tab_completion_click_to_message_refused_nick_new_tab_and_logout() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start();
    let url = format!("http://{}/", server.web_addr().expect("web address"));
    let mut tcp = Client::named(server.addr(), "terminal");
    let browser = Browser::start(&chromium, &chromedriver);
    // The reader is in Tokyo (UTC+9, no daylight saving time).
    browser.call(
        "POST",
        &browser.session_path("/goog/cdp/execute"),
        Some(
            json!({"cmd": "Emulation.setTimezoneOverride", "params": {"timezoneId": "Asia/Tokyo"}}),
        ),
    );
    join_as(&browser, &url, "alice", &mut tcp);
    tcp.send("what time is it?");
    browser.wait_for_line("terminal what time is it?");
    // Times are the `time` tag's moment in the reader's time zone.
    let times = browser.run(
        "return [...document.querySelectorAll('#log time')].map(t => [t.dateTime, t.textContent]);",
        json!([]),
    );
    let times = times.as_array().expect("an array");
    assert!(!times.is_empty());
    for pair in times {
        let (utc, shown) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        let ms = loopchat::protocol::tags::parse_time_ms(utc).expect("an ISO time");
        let tokyo = ms.div_euclid(1000) + 9 * 3600;
        let expected = format!(
            "{:02}:{:02}",
            tokyo.rem_euclid(86_400) / 3600,
            tokyo.rem_euclid(3600) / 60
        );
        assert_eq!(shown, expected, "{utc} in Tokyo");
    }
    browser.wait_until(
        "terminal in the member list",
        "return [...document.querySelectorAll('#users li')].some(li => li.textContent === 'terminal');",
    );

    // Tab: a nick at the start of a line, then a command.
    browser.type_into("#say-input", "ter\u{E004}");
    browser.wait_until(
        "the nick completed",
        "return document.querySelector('#say-input').value === 'terminal: ';",
    );
    browser.run(
        "document.querySelector('#say-input').value = '';",
        json!([]),
    );
    browser.type_into("#say-input", ":jo\u{E004}");
    browser.wait_until(
        "the command completed",
        "return document.querySelector('#say-input').value === ':join ';",
    );
    browser.run(
        "document.querySelector('#say-input').value = '';",
        json!([]),
    );
    // Begun as in IRC, it completes as begun.
    browser.type_into("#say-input", "/jo\u{E004}");
    browser.wait_until(
        "the /command completed",
        "return document.querySelector('#say-input').value === '/join ';",
    );
    browser.run(
        "document.querySelector('#say-input').value = '';",
        json!([]),
    );

    // A nick the server refuses does not stay in the nick field.
    browser.run(
        "document.querySelector('#nick-input').value = '';",
        json!([]),
    );
    browser.type_into("#nick-input", "terminal\u{E007}");
    browser.wait_for_line("! nick terminal is taken");
    browser.wait_until(
        "the nick field back to alice",
        "return document.querySelector('#nick-input').value === 'alice';",
    );

    // Clicking a member opens a private conversation with it.
    browser.click("#users li:not(.self) .member");
    browser.wait_until(
        "the conversation with terminal",
        "return document.querySelector('#room-name').textContent === '@ terminal' \
         && document.querySelector('#rooms button[data-key=\"pm:terminal\"]')?.getAttribute('aria-current') === 'true';",
    );
    browser.say("just you and me");
    tcp.expect("[pm] alice: just you and me");

    // Remembered: a new tab comes back as alice without the password.
    browser.click("#account-button");
    browser.wait_until(
        "the account dialog",
        "return document.querySelector('#account-dialog').open;",
    );
    browser.type_into("#account-password", "correct horse battery");
    browser.click("#account-register");
    browser.wait_for_line("* registered alice");
    browser.wait_until(
        "the token kept",
        "return !!localStorage.getItem('loopchat.token');",
    );
    let tab = browser.call(
        "POST",
        &browser.session_path("/window/new"),
        Some(json!({"type": "tab"})),
    )["handle"]
        .as_str()
        .expect("a tab")
        .to_string();
    browser.switch_to(&tab);
    browser.open(&url);
    browser.wait_for_line("* logged in as alice");
    browser.wait_until(
        "the new tab's button says alice",
        "return document.querySelector('#account-button').textContent === '✓ alice';",
    );
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    browser.screenshot(&shots.join("new-tab.png"));

    // Log out: the token is forgotten, the page a guest.
    browser.click("#account-button");
    browser.wait_until(
        "the log out button",
        "return document.querySelector('#account-dialog').open \
         && !document.querySelector('#account-logout').hidden;",
    );
    browser.click("#account-logout");
    browser.wait_for_line("* logged out");
    browser.wait_until(
        "the token forgotten, the button saying Log in",
        "return localStorage.getItem('loopchat.token') === null \
         && document.querySelector('#account-button').textContent === 'Log in';",
    );
    let errors = browser.run("return window.__loopchatErrors || [];", json!([]));
    assert_eq!(errors, json!([]), "no script errors on the page");
}
