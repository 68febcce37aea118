//! End-to-end encrypted private messages live, through the real server
//! (the `loopchat` binary with a real history file, logging at debug
//! level): the full-screen terminal client in a real terminal (tmux) and
//! pages in real browsers (headless chromium), each logged in to an
//! account, exchange encrypted messages both ways: terminal ↔ page and
//! page ↔ page, each pair seeing the same safety number. Their canaries
//! are then absent from the history file and its `-wal`, from everything
//! the server logged and from a capture of the traffic (tcpdump on
//! loopback), while a control word sent in the clear in the same test is
//! present in all three, so the check can fail.
//!
//! What each person sees of it is checked on the screen and in the DOM:
//! end-to-end messages in the private conversation with the peer (not in
//! the room), the conversation marked with a lock once a session is up,
//! lines typed in such a conversation sent end to end, and plain `:pm`
//! lines marked as readable by the server.
//!
//! CI (`CI=true`) never skips these; elsewhere they skip with a printed
//! reason when tmux, chromium, chromedriver or tcpdump is missing.

mod common;

use common::browser::{tools_or_skip, Browser};
use common::capture::Capture;
use common::page::{entries, page_logged_in, wait_entry};
use common::tmux::{have_tmux, pane_text, safety_digits, status_line, Tmux};
use common::{tool_or_skip, Client, Lines, ServerProcess, READ_TIMEOUT};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

/// The server binary with a history file at `path`, logging at debug
/// level; its line and web addresses.
fn server(path: &std::path::Path) -> (ServerProcess, SocketAddr, Vec<String>) {
    let server = ServerProcess::start_with_env(
        &[
            "--addr",
            "127.0.0.1:0",
            "--web-addr",
            "127.0.0.1:0",
            // Not the default IRC port: another server may hold it.
            "--irc-addr",
            "off",
            "--history-file",
            path.to_str().unwrap(),
            // Two pages fetch a dozen files each from 127.0.0.1 within
            // seconds: past the default 20 lines per address, the guest's
            // departure (the line with the control word) would be counted
            // in an `and N more` line instead.
            "--log-lines-per-address",
            "1000",
        ],
        None,
        &[("RUST_LOG", std::ffi::OsStr::new("debug"))],
    );
    // The log so far (the "listening on" line was read already).
    let mut log = Vec::new();
    let web = loop {
        let line = server
            .log
            .recv_timeout(READ_TIMEOUT)
            .expect("the server logs its chat page");
        log.push(line.clone());
        if let Some((_, rest)) = line.split_once("chat page on http://") {
            let addr = rest.split('/').next().expect("an address");
            break addr.parse().expect("a socket address");
        }
    };
    (server, web, log)
}

/// Waits until the page's list of conversations marks the private
/// conversation with `peer` with `lock` (`secure`, `verified`, `changed`).
fn wait_lock(page: &Browser, peer: &str, lock: &str) {
    page.wait_until(
        &format!("the {lock} mark on the conversation with {peer}"),
        &format!(
            "return !!document.querySelector('#rooms button[data-key=\"pm:{peer}\"] .e2e-mark.{lock}');"
        ),
    );
}

/// Waits until the list shows unread lines in the conversation `key`.
fn wait_unread(page: &Browser, key: &str) {
    page.wait_until(
        &format!("unread lines in {key}"),
        &format!("return !!document.querySelector('#rooms button[data-key=\"{key}\"] .unread');"),
    );
}

/// Clicks conversation `key` in the list (`pm:bob`, `#lobby`) and waits
/// for its header. The list is drawn again whenever a mark changes, so a
/// button found may be gone when clicked: then it is found again.
fn open(page: &Browser, key: &str, header: &str) {
    let css = format!("#rooms button[data-key=\"{key}\"]");
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    loop {
        let id = page.element(&css);
        let path = page.session_path(&format!("/element/{id}/click"));
        match page.try_call("POST", &path, Some(json!({}))) {
            Ok(_) => break,
            Err(e) if e.contains("stale element") && std::time::Instant::now() < deadline => {}
            Err(e) => panic!("clicking {key}: {e}"),
        }
    }
    page.wait_until(
        &format!("the header of {key}"),
        &format!(
            "return document.querySelector('#room-name').textContent.startsWith({});",
            serde_json::to_string(header).unwrap()
        ),
    );
}

/// The lock the header of the conversation shown says.
fn header_lock(page: &Browser) -> serde_json::Value {
    page.run(
        "const m = document.querySelector('#room-e2e'); return m && m.dataset.lock;",
        json!([]),
    )
}

#[test]
fn terminal_and_pages_talk_end_to_end_and_no_canary_reaches_the_file_the_log_or_the_wire() {
    const TEST: &str =
        "terminal_and_pages_talk_end_to_end_and_no_canary_reaches_the_file_the_log_or_the_wire";
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let Some(tcpdump) = tool_or_skip("tcpdump", TEST) else {
        return;
    };
    if !have_tmux(TEST) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.db");
    let (mut server, web, mut log) = server(&history);
    let capture = Capture::start(
        &tcpdump,
        &dir.path().join("traffic.pcap"),
        &[server.addr.port(), web.port()],
    );
    let url = format!("http://{web}/");

    // The canaries go end to end only; the control word goes in the clear:
    // as a room line (kept in the history file, sent to every page), as a
    // `:pm` (on the wire to the terminal client) and as a guest's nick
    // (which the server logs when it leaves: it logs no message text).
    let canaries = [
        "canary-xyzzy-terminal-to-page",
        "canary-xyzzy-page-to-terminal",
        "canary-xyzzy-page-to-page",
        "canary-xyzzy-page-to-page-back",
        "canary-xyzzy-terminal-typed",
    ];
    // (And "are you there", typed as an end-to-end message to a guest.)
    let control = "plugh4711";

    // alice: the terminal client, in tmux, with its key and token files in
    // the test's directory.
    let tmux = Tmux::new();
    let alice = tmux.session("alice");
    alice.start_client_env(
        server.addr,
        &format!(
            "--nick alice --e2e-dir '{}'",
            dir.path().join("e2e").display()
        ),
        &format!("XDG_CONFIG_HOME='{}'", dir.path().join("config").display()),
    );
    alice.wait_text("is now known as alice");
    alice.line(":register hunter22");
    alice.wait_text("* registered alice");
    alice.wait_text("* key published");

    // bob and carol: pages in two browsers (two device keys).
    let bob = Browser::start(&chromium, &chromedriver);
    let carol = Browser::start(&chromium, &chromedriver);
    page_logged_in(&bob, &url, "bob");
    page_logged_in(&carol, &url, "carol");

    // Terminal → page: the handshake runs, then the message shows locked,
    // in the private conversation (the terminal shows it), its own line no
    // longer waiting, and a lock on the conversation.
    alice.line(&format!(":e2e bob {}", canaries[0]));
    alice.wait_text(&format!("[e2e 🔒 → bob] {}", canaries[0]));
    alice.wait_text("* e2e: messages with bob are end-to-end encrypted (first contact");
    let screen = alice.wait_for("the lock on the status line", |s| {
        status_line(s).contains("│ pm bob (🔒 end-to-end)")
    });
    assert!(screen.contains("2 bob 🔒"), "the list's lock: {screen}");
    alice.wait_for("the message sent", |s| {
        !s.contains("waiting for the end-to-end session")
    });
    // On the page: the conversation with alice is locked and has the
    // message, unread; the room (shown) has the note but not the message.
    wait_lock(&bob, "alice", "secure");
    wait_unread(&bob, "pm:alice");
    bob.wait_for_line(
        "* e2e: messages with alice are end-to-end encrypted \
         (first contact: compare safety numbers to be sure)",
    );
    assert!(
        !entries(&bob, "").iter().any(|e| e.contains(canaries[0])),
        "not in the room: {:?}",
        bob.log()
    );
    open(&bob, "pm:alice", "@ alice");
    wait_entry(&bob, ".pm.e2e:not(.own)", &format!("alice {}", canaries[0]));
    assert_eq!(header_lock(&bob), json!("secure"));

    // Page → terminal, in the same session, typed as in IRC (`/e2e` is
    // `:e2e`: the capture below shows it never went in the clear).
    bob.say(&format!("/e2e alice {}", canaries[1]));
    wait_entry(&bob, ".pm.e2e.own", canaries[1]);
    alice.wait_text(&format!("[e2e 🔒] bob: {}", canaries[1]));

    // Both show the same safety number.
    alice.line("/e2e-safety bob");
    let screen = alice.wait_text("safety number with bob: ");
    bob.say(":e2e-safety alice");
    bob.wait_until(
        "bob's safety number",
        "return [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('safety number with alice: '));",
    );
    let on_page = bob.log().join("\n");
    assert_eq!(
        safety_digits(&pane_text(&screen), "bob"),
        safety_digits(&on_page, "alice")
    );

    // Page → page, both ways: carol's `:e2e` shows her conversation with
    // bob; bob opens his with carol and types a plain line there, which
    // goes end to end (a session is up).
    carol.say(&format!(":e2e bob {}", canaries[2]));
    wait_entry(&carol, ".pm.e2e.own:not(.pending)", canaries[2]);
    wait_lock(&bob, "carol", "secure");
    open(&bob, "pm:carol", "@ carol");
    wait_entry(&bob, ".pm.e2e:not(.own)", &format!("carol {}", canaries[2]));
    bob.say(canaries[3]);
    wait_entry(&bob, ".pm.e2e.own", canaries[3]);
    wait_entry(&carol, ".pm.e2e:not(.own)", &format!("bob {}", canaries[3]));
    assert_eq!(header_lock(&carol), json!("secure"));
    for (page, peer) in [(&bob, "carol"), (&carol, "bob")] {
        page.say(&format!(":e2e-safety {peer}"));
        page.wait_until(
            "the safety number",
            &format!(
                "return [...document.querySelectorAll('#log li')]\
                 .some(li => li.textContent.includes('safety number with {peer}: '));"
            ),
        );
    }
    assert_eq!(
        safety_digits(&bob.log().join("\n"), "carol"),
        safety_digits(&carol.log().join("\n"), "bob")
    );

    // The terminal types a plain line in its private buffer with bob: it
    // goes end to end too.
    alice.line(canaries[4]);
    alice.wait_text(&format!("[e2e 🔒 → bob] {}", canaries[4]));
    open(&bob, "pm:alice", "@ alice");
    wait_entry(&bob, ".pm.e2e:not(.own)", &format!("alice {}", canaries[4]));

    // The control word in the clear, by every path that should keep it:
    // a `:pm` each way, marked on both sides as readable by the server.
    bob.say(&format!(":pm alice a plain {control} private line"));
    wait_entry(
        &bob,
        ".chat.own.plain",
        &format!("bob a plain {control} private line"),
    );
    alice.wait_text(&format!("[pm] bob: a plain {control} private line (plain)"));
    alice.line(&format!(":pm bob a plain {control} answer"));
    alice.wait_text(&format!("[pm → bob] a plain {control} answer (plain)"));
    wait_entry(
        &bob,
        ".chat.plain:not(.own)",
        &format!("alice a plain {control} answer"),
    );
    let tag = bob.run(
        "return [...document.querySelectorAll('#log li.plain .tag.plain')].map(t => [t.textContent, t.title]);",
        json!([]),
    );
    assert_eq!(tag.as_array().map(Vec::len), Some(2), "{tag}");
    assert_eq!(tag[0][0], json!("not end-to-end"));
    assert!(tag[0][1].as_str().unwrap().contains("the server"), "{tag}");
    assert_eq!(
        entries(&bob, ".e2e.plain"),
        Vec::<String>::new(),
        "an end-to-end line is never marked plain"
    );
    assert_eq!(
        header_lock(&bob),
        json!("secure"),
        "the conversation stays locked"
    );
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    bob.screenshot(&shots.join("e2e-locked.png"));
    // And a room line, from the room (Alt-1), seen by carol in hers.
    alice.press("M-1");
    alice.wait_for("the room on the status line", |s| {
        status_line(s).contains("│ #lobby")
    });
    alice.line(&format!("a plain {control} room line"));
    open(&carol, "#lobby", "#lobby");
    wait_entry(
        &carol,
        ".chat",
        &format!("alice a plain {control} room line"),
    );
    let mut guest = Client::connect(server.addr);
    guest.send(&format!(":nick {control}"));
    guest.expect(&format!("* {} is now known as {control}", guest.nick));
    // A guest can only send a plain `:pm`: carol's conversation with it
    // says the server can read it, and so does its line.
    guest.send(&format!(":pm carol hello from {control}"));
    let guest_key = format!("pm:{}", control.to_lowercase());
    wait_unread(&carol, &guest_key);
    open(&carol, &guest_key, &format!("@ {control}"));
    wait_entry(
        &carol,
        ".chat.plain:not(.own)",
        &format!("{control} hello from {control}"),
    );
    assert_eq!(header_lock(&carol), json!("plain"));
    let header = carol.run(
        "return document.querySelector('#room-e2e').textContent;",
        json!([]),
    );
    assert_eq!(
        header,
        json!("not end-to-end: the server can read these messages")
    );
    carol.screenshot(&shots.join("e2e-plain.png"));
    // The guest has no account, so no key: the page says so before any
    // handshake (it asked the directory), and sends nothing readable.
    bob.say(&format!(":e2e {control} are you there"));
    bob.wait_for_line(&format!(
        "! e2e: {control} has published no end-to-end key, so cannot read end-to-end \
         messages yet (yours waits; nothing was sent in the clear); a plain :pm reaches \
         {control} but is readable by the server"
    ));
    // The message shows waiting in that conversation, which is not locked.
    wait_entry(&bob, ".pm.e2e.own.pending", "are you there");
    assert_eq!(header_lock(&bob), json!("pending"));
    guest.send(":quit");
    guest.expect("* bye");
    guest.expect_closed();

    for page in [&bob, &carol] {
        let errors = page.run("return window.__loopchatErrors || [];", json!([]));
        assert_eq!(errors, json!([]), "no script errors on the pages");
    }
    alice.line(":quit");
    alice.wait_text("EXITED:0");
    drop((bob, carol));

    // Everything the server wrote: its log to the end, the history file
    // and its -wal after a clean stop, and the capture.
    server.signal(libc::SIGTERM);
    assert!(server.child.wait().unwrap().success());
    while let Ok(line) = server.log.recv_timeout(Duration::from_secs(10)) {
        log.push(line);
    }
    let log = log.join("\n");
    let mut file = std::fs::read(&history).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("history.db-wal")) {
        file.extend(wal);
    }
    let in_file = |needle: &str| {
        file.windows(needle.len())
            .any(|window| window == needle.as_bytes())
    };
    let wire = capture.finish();
    println!(
        "captured {} bytes in {} TCP streams; {} log lines",
        wire.total(),
        wire.flows.len(),
        log.lines().count()
    );

    assert!(in_file(control), "the control word is in the history file");
    assert!(log.contains(control), "and in the log: {log}");
    assert!(wire.contains(&format!("a plain {control} private line")));
    assert!(wire.contains(&format!("a plain {control} room line")));
    assert!(
        wire.contains("[e2e] alice: v1.a."),
        "the capture has the relayed handshake"
    );
    for canary in canaries {
        assert!(!in_file(canary), "{canary} is in the history file");
        assert!(!log.contains(canary), "{canary} is in the log");
        assert!(!wire.contains(canary), "{canary} is on the wire");
    }
    // Not even a part of one (the common prefix).
    assert!(!wire.contains("xyzzy") && !in_file("xyzzy") && !log.contains("xyzzy"));
    assert!(!wire.contains("are you there") && !in_file("are you there"));
}
