//! The full-screen client as a chat app, in tmux (the harness is
//! tests/common/tui.rs): several rooms with unread counts, the mention
//! mark and the bell, a remembered login after a restart of the client,
//! no history twice after a restart of the server, the topic and `:kick`,
//! and the page (chromium) and the terminal client together.

mod common;
use common::tui::*;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Instant;

/// Two rooms, one pane each: lines of the room not shown are counted
/// unread beside it in the room list, a mention marks it `@` and rings the
/// bell, once per mention (counted with tmux's alert-bell hook); switching (Alt-1, `:join`) shows that room's lines only; links are
/// underlined.
#[test]
fn other_rooms_count_unread_and_a_mention_rings_the_bell() {
    if !have_tmux("other_rooms_count_unread_and_a_mention_rings_the_bell") {
        return;
    }
    let server = real_server();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    alice.start_client(server.addr(), "--nick alice");
    let mut bob = Peer::new(TcpStream::connect(server.addr()).expect("connect"));
    bob.send(":nick bob");
    alice.line(":join #rust");
    alice.wait_for("#rust current", |s| {
        status_line(s).contains("│ alice │ #rust")
    });
    alice.line("only in rust");
    alice.wait_text("alice: only in rust");
    tmux.run(&["set-option", "-g", "bell-action", "any"]);
    tmux.run(&["set-option", "-g", "monitor-bell", "on"]);
    // Every bell tmux sees is a line in a file: the bells can be counted.
    let dir = tempfile::tempdir().expect("temp dir");
    let rung = dir.path().join("bells");
    let hook = format!("run-shell 'echo bell >> {}'", rung.display());
    tmux.run(&["set-hook", "-g", "alert-bell", &hook]);
    let bells = || {
        std::fs::read_to_string(&rung)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let wait_bells = |n: usize| {
        let deadline = Instant::now() + TIMEOUT;
        while bells() != n {
            assert!(Instant::now() < deadline, "{} bells, not {n}", bells());
            thread::sleep(POLL);
        }
    };
    assert_eq!(alice.display("#{window_bell_flag}"), "0");
    bob.send("just chatting");
    let screen = alice.wait_for("one unread in #lobby", |s| {
        panel(s).iter().any(|p| p == "1 #lobby 2 +1")
    });
    assert!(!screen.contains("just chatting"), "{screen}");
    assert_eq!(
        alice.display("#{window_bell_flag}"),
        "0",
        "no bell without a mention"
    );
    bob.send("alice: see https://example.com/x");
    alice.wait_for("two unread and the mention mark", |s| {
        panel(s).iter().any(|p| p == "1 #lobby 2 +2@")
    });
    assert_eq!(
        alice.display("#{window_bell_flag}"),
        "1",
        "the mention rang"
    );
    wait_bells(1);
    // Alt-1 shows #lobby, and makes it current on the server: seen, and
    // only its lines.
    alice.press("M-1");
    let screen = alice.wait_for("#lobby current, nothing unread", |s| {
        status_line(s).contains("│ alice │ #lobby")
            && panel(s).iter().any(|p| p == "1 #lobby 2")
            && s.contains("bob: just chatting")
    });
    assert!(!screen.contains("only in rust"), "{screen}");
    alice.line("in the lobby now");
    bob.expect("alice: in the lobby now");
    // Once per mention: none for a line without one, one more for the next.
    bob.send("no names here");
    alice.wait_text("bob: no names here");
    assert_eq!(bells(), 1, "a line without a mention rang");
    bob.send("ALICE, once more");
    alice.wait_text("bob: ALICE, once more");
    wait_bells(2);
    // The link underlined (SGR 4 right before it).
    let styled = tmux.run(&["capture-pane", "-p", "-e", "-t", "alice"]);
    let styled = String::from_utf8_lossy(&styled.stdout);
    assert!(
        styled.contains("4mhttps://example.com/x"),
        "the link is underlined: {styled:?}"
    );
    // `:join` of a room we are in switches back.
    alice.line(":join #rust");
    let screen = alice.wait_for("#rust again", |s| {
        status_line(s).contains("│ alice │ #rust") && s.contains("alice: only in rust")
    });
    assert!(!screen.contains("just chatting"), "{screen}");
    drop(tmux);
    drop(bob);
    server.stop().expect("stop the server");
}

/// Accounts: `:register` keeps a token in a 0600 file under the config
/// folder; after a restart the client logs in again with it, without the
/// password; a token the server no longer accepts is forgotten and the
/// client goes on as a guest.
#[test]
fn a_restarted_client_resumes_with_its_saved_token() {
    if !have_tmux("a_restarted_client_resumes_with_its_saved_token") {
        return;
    }
    let config = tempfile::tempdir().expect("temp dir");
    let env = format!("XDG_CONFIG_HOME='{}'", config.path().display());
    let server = real_server();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    alice.start_client_with(server.addr(), "--nick alice", &env);
    alice.line(":register correct horse battery");
    alice.wait_text("* registered alice");
    alice.wait_text("this client remembers you");
    let file = config
        .path()
        .join("loopchat")
        .join(format!("token-{}", server.addr()).replace(':', "_"));
    let token = std::fs::read_to_string(&file).expect("the token file");
    assert!(token.len() >= 20, "{token:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is private");
    assert!(!alice.screen().contains(&token), "the token is never shown");
    alice.line(":quit");
    alice.wait_text("EXITED:0");

    // Restarted without --nick or password: the same person.
    alice.line("clear");
    alice.start_client_with(server.addr(), "", &env);
    alice.wait_text("* logged in as alice");
    alice.wait_for("alice in the status line", |s| {
        status_line(s).contains("│ alice │ #lobby")
    });
    alice.line(":quit");
    alice.wait_text("EXITED:0");

    // A token the server does not know: forgotten, a guest again.
    std::fs::write(&file, "not-a-valid-token-at-all-xyz").expect("write");
    alice.line("clear");
    alice.start_client_with(server.addr(), "", &env);
    alice.wait_text("the saved login no longer works: continuing as a guest");
    alice.wait_for("a guest nick", |s| status_line(s).contains("│ guest"));
    assert!(!file.exists(), "the bad token is forgotten");
    drop(tmux);
    server.stop().expect("stop the server");
}

/// The server restarts with its history file: the client comes back to its
/// rooms and asks for their history again, and lines it already shows
/// (the same ids) are not shown twice; a line said while it was away is;
/// its own line, echoed before the restart, stays sent.
#[test]
fn no_history_is_shown_twice_after_the_server_restarts() {
    if !have_tmux("no_history_is_shown_twice_after_the_server_restarts") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("history.db");
    let start = |addr: Option<SocketAddr>| {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let mut config = loopchat::Config::ephemeral();
            config.history.file = Some(file.clone());
            if let Some(addr) = addr {
                config.addr = addr;
            }
            match loopchat::Server::bind(config) {
                Ok(server) => break server.spawn().expect("start the server"),
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot bind {addr:?} again: {e}");
                    thread::sleep(POLL);
                }
            }
        }
    };
    let server = start(None);
    let addr = server.addr();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    alice.start_client(addr, "--nick alice");
    alice.line(":join #rust");
    alice.wait_for("#rust current", |s| {
        status_line(s).contains("│ alice │ #rust")
    });
    alice.line("said before the restart");
    // Sent means echoed: the line is in the server's history.
    alice.wait_for("the echo", |s| {
        s.contains("alice: said before the restart") && !s.contains("(sending)")
    });
    let mut bob = Peer::new(TcpStream::connect(addr).expect("connect"));
    bob.send(":nick bob");
    bob.send(":join #rust");
    bob.send("bob was here too");
    alice.wait_text("bob: bob was here too");
    drop(bob);
    server.stop().expect("stop the server");
    alice.wait_for("the reconnect countdown", |s| {
        status_line(s).contains("reconnecting in")
    });
    // While the client is away, someone speaks in #rust.
    let server = start(Some(addr));
    let mut carol = Peer::new(TcpStream::connect(addr).expect("connect"));
    carol.send(":nick carol");
    carol.send(":join #rust");
    carol.send("said while you were away");
    carol.send(":ping");
    carol.expect("* pong");
    let screen = alice.wait_for("back in #rust with the missed line", |s| {
        status_line(s).contains("│ alice │ #rust")
            && !status_line(s).contains("reconnecting")
            && s.contains("carol: said while you were away")
    });
    assert_eq!(
        screen.matches("alice: said before the restart").count(),
        1,
        "{screen}"
    );
    // Echoed before the restart: sent, not lost with the connection.
    assert!(!screen.contains("refused"), "{screen}");
    assert_eq!(
        screen.matches("bob: bob was here too").count(),
        1,
        "{screen}"
    );
    alice.line(":quit");
    alice.wait_text("EXITED:0");
    drop(tmux);
    drop(carol);
    server.stop().expect("stop the server");
}

/// Moderation by command: the room's creator is marked `@`, its topic is
/// the pane's first row, and `:kick` takes a member out of the list.
#[test]
fn the_topic_shows_and_an_operator_kicks_by_command() {
    if !have_tmux("the_topic_shows_and_an_operator_kicks_by_command") {
        return;
    }
    let server = real_server();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    alice.start_client(server.addr(), "--nick alice");
    alice.line(":join #den");
    alice.wait_for("#den current", |s| {
        status_line(s).contains("│ alice │ #den")
    });
    let mut dave = Peer::new(TcpStream::connect(server.addr()).expect("connect"));
    dave.send(":nick dave");
    dave.send(":join #den");
    dave.expect("* dave joined #den");
    alice.wait_for("dave in the list, alice an operator", |s| {
        panel_users(s) == ["•@alice", "dave"]
    });
    alice.line(":topic a cosy corner");
    dave.expect("* alice set the topic of #den: a cosy corner");
    alice.wait_for("the topic on the first row", |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.starts_with("topic: a cosy corner"))
    });
    alice.line(":kick dave enough");
    dave.expect("* dave was kicked from #den by alice (enough)");
    alice.wait_for("dave out of the list", |s| {
        panel_users(s) == ["•@alice"] && s.contains("* dave was kicked from #den by alice (enough)")
    });
    drop(tmux);
    drop(dave);
    server.stop().expect("stop the server");
}

/// The page and the terminal client in two rooms: each hears the other in
/// #rust, and a mention from the page in #lobby reaches the terminal
/// client as an unread, marked, bell-ringing line of #lobby while it shows
/// #rust.
#[test]
fn a_page_and_the_terminal_client_chat_in_two_rooms() {
    if !have_tmux("a_page_and_the_terminal_client_chat_in_two_rooms") {
        return;
    }
    let Some((chromium, chromedriver)) = common::browser::tools_or_skip() else {
        return;
    };
    let server = real_server();
    let url = format!("http://{}/", server.web_addr().expect("web address"));
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    alice.start_client(server.addr(), "--nick alice");
    let browser = common::browser::Browser::start(&chromium, &chromedriver);
    browser.open(&url);
    browser.wait_until(
        "the page's welcome",
        "return [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('* welcome '));",
    );
    browser.run(
        "document.querySelector('#nick-input').value = '';",
        serde_json::json!([]),
    );
    browser.type_into("#nick-input", "bob\u{E007}");
    browser.wait_for_line("is now known as bob");
    alice.wait_for("bob in alice's #lobby", |s| {
        panel_users(s) == ["•alice", "bob"]
    });

    alice.line(":join #rust");
    alice.wait_for("#rust current", |s| {
        status_line(s).contains("│ alice │ #rust")
    });
    browser.say(":join #rust");
    alice.wait_for("bob in #rust", |s| panel_users(s) == ["•@alice", "bob"]);
    browser.say("hello from the page");
    alice.wait_text("bob: hello from the page");
    alice.line("hello from the terminal");
    browser.wait_for_line("alice hello from the terminal");

    tmux.run(&["set-option", "-g", "bell-action", "any"]);
    tmux.run(&["set-option", "-g", "monitor-bell", "on"]);
    browser.click("#rooms button[data-key=\"#lobby\"]");
    browser.wait_until(
        "#lobby on the page",
        "return document.querySelector('#room-name').textContent === '#lobby';",
    );
    browser.say("alice: a word in the lobby?");
    let screen = alice.wait_for("#lobby unread with the mention mark", |s| {
        panel(s).iter().any(|p| p == "1 #lobby 2 +1@")
    });
    assert!(!screen.contains("a word in the lobby"), "{screen}");
    assert_eq!(
        alice.display("#{window_bell_flag}"),
        "1",
        "the mention rang"
    );
    alice.press("M-1");
    alice.wait_for("the mention in #lobby", |s| {
        s.contains("bob: alice: a word in the lobby?")
            && status_line(s).contains("│ alice │ #lobby")
    });
    let errors = browser.run(
        "return window.__loopchatErrors || [];",
        serde_json::json!([]),
    );
    assert_eq!(
        errors,
        serde_json::json!([]),
        "no script errors on the page"
    );
    drop(browser);
    drop(tmux);
    server.stop().expect("stop the server");
}
