//! End-to-end tests of the full-screen client (`examples/client/`) in a real
//! terminal: tmux. Each test starts its own tmux server (no config file, its
//! socket in the temp directory, removed afterwards), runs `sh` in
//! fixed-size sessions, types the client's command line into it, and reads
//! the screen with `capture-pane`.
//!
//! Every wait polls the screen until the expected text appears or a
//! deadline passes; a failure prints the screen. tmux is installed by
//! `.ci/run`; without it these tests are skipped locally (with a message)
//! and fail in CI (`CI=true`).
//!
//! The harness is tests/common/tui.rs; the chat-app tests (rooms, unread,
//! the bell, accounts, history after restarts) are in tests/tui_chat.rs.

mod common;
use common::client_bin;
use common::tui::*;
use std::net::TcpStream;
use std::thread;
use std::time::Instant;

#[test]
fn two_clients_chat_and_a_half_typed_line_survives_incoming_lines() {
    if !have_tmux("two_clients_chat_and_a_half_typed_line_survives_incoming_lines") {
        return;
    }
    let server = real_server();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    let bob = tmux.session("bob");
    alice.start_client(server.addr(), "--nick alice");
    alice.wait_for("alice's nick in the status line", |s| {
        status_line(s).contains("│ alice │ #lobby")
    });
    bob.start_client(server.addr(), "--nick bob");
    alice.wait_for("bob in alice's user list", |s| {
        panel_users(s) == ["•alice", "bob"]
    });

    // Own lines show with our nick; the other side gets them.
    alice.line("hello bob, 世界 👍");
    alice.wait_text("alice: hello bob, 世界 👍");
    bob.wait_text("alice: hello bob, 世界 👍");

    // A line arriving while bob types leaves his input line alone.
    bob.type_text("I am in the middle of typ");
    bob.wait_for("bob's half-typed line", |s| {
        input_line(s) == "> I am in the middle of typ"
    });
    alice.line("interrupting you");
    let screen = bob.wait_text("alice: interrupting you");
    assert_eq!(
        input_line(&screen),
        "> I am in the middle of typ",
        "{screen}"
    );
    bob.type_text("ing");
    bob.press("Enter");
    alice.wait_text("bob: I am in the middle of typing");
    bob.wait_for("bob's own line and an empty input line", |s| {
        s.contains("bob: I am in the middle of typing") && input_line(s) == ">"
    });

    // A private message opens a conversation of its own on both sides:
    // an entry in the list, counted unread and marked where it arrived.
    alice.line(":pm bob psst");
    alice.wait_for("the conversation with bob in the list", |s| {
        panel(s).iter().any(|p| p == "2 bob")
    });
    alice.press("M-2");
    alice.wait_for("the conversation with bob, shown", |s| {
        s.contains("[pm → bob] psst") && status_line(s).contains("│ alice │ pm bob")
    });
    let screen = bob.wait_for("a conversation with alice in the list", |s| {
        panel(s).iter().any(|p| p == "2 alice +1@")
    });
    assert!(!screen.contains("psst"), "not in #lobby: {screen}");
    bob.press("M-2");
    bob.wait_for("the conversation on screen", |s| {
        s.contains("[pm] alice: psst") && status_line(s).contains("│ bob │ pm alice")
    });
    // A plain line there answers privately.
    bob.line("psst back");
    alice.wait_text("[pm] bob: psst back");
    bob.press("M-1");
    bob.wait_for("#lobby again", |s| {
        status_line(s).contains("│ bob │ #lobby")
    });
    // Typed as in IRC: `/me` is `:me`.
    bob.line("/me waves");
    bob.wait_text("* bob waves");
    alice.wait_for("bob's action counted unread in #lobby", |s| {
        panel(s).iter().any(|p| p == "1 #lobby 2 +1")
    });
    alice.press("M-1");
    alice.wait_for("#lobby with bob's action", |s| {
        s.contains("* bob waves") && !s.contains("psst")
    });

    // Up recalls the last line; editing keys work on it.
    bob.press("Up");
    bob.wait_for("the recalled line", |s| input_line(s) == "> /me waves");
    bob.press("Home");
    bob.press("C-k");
    bob.type_text("ali");
    bob.press("Tab");
    bob.wait_for("the completed nick", |s| input_line(s) == "> alice:");
    drop(tmux);
    server.stop().expect("stop the server");
}

#[test]
fn user_list_follows_joins_renames_and_leaves() {
    if !have_tmux("user_list_follows_joins_renames_and_leaves") {
        return;
    }
    let server = real_server();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    alice.start_client(server.addr(), "--nick alice");
    alice.wait_for("alice alone", |s| panel_users(s) == ["•alice"]);

    let mut carol = Peer::new(TcpStream::connect(server.addr()).expect("connect"));
    alice.wait_for("the guest in the list", |s| panel_users(s).len() == 2);
    carol.send(":nick carol");
    alice.wait_for("carol in the list", |s| {
        panel_users(s) == ["•alice", "carol"]
    });
    carol.send(":nick Zed");
    alice.wait_for("carol renamed", |s| panel_users(s) == ["•alice", "Zed"]);
    carol.send(":quit");
    let screen = alice.wait_for("Zed gone", |s| panel_users(s) == ["•alice"]);
    // The server has no :history yet (or has it): either way no error shows.
    assert!(!screen.contains("unknown command"), "{screen}");
    assert!(panel(&screen).iter().any(|p| p == "1 #lobby 1"), "{screen}");

    // Joining a room shows its members at once.
    let mut dave = Peer::new(TcpStream::connect(server.addr()).expect("connect"));
    dave.send(":nick dave");
    dave.send(":join #rust");
    dave.expect("* dave joined #rust");
    alice.line(":join #rust");
    alice.wait_for("#rust with dave", |s| {
        status_line(s).contains("│ alice │ #rust") && panel_users(s) == ["•alice", "@dave"]
    });
    // #lobby is kept (protocol 1.2): its lines come marked with their room,
    // and :part leaves it.
    carol = Peer::new(TcpStream::connect(server.addr()).expect("connect"));
    carol.send(":nick carol");
    carol.send("still in the lobby");
    let screen = alice.wait_for("a line unread in #lobby", |s| {
        panel(s).iter().any(|p| p == "1 #lobby 3 +1")
    });
    assert!(!screen.contains("still in the lobby"), "{screen}");
    alice.line(":part lobby");
    carol.expect("* alice left #lobby");
    // #lobby leaves the numbered list: #rust is first now.
    alice.wait_for("#lobby out of the list", |s| {
        panel(s).iter().any(|p| p == "1 #rust 2") && !panel(s).iter().any(|p| p.starts_with('2'))
    });
    alice.line(":part");
    alice.wait_text("* not in any room (try :join ROOM)");
    // A line with nowhere to go is marked refused, with the server's error.
    alice.line("anyone?");
    alice.wait_text("alice: anyone? ✗ refused: ! not in any room (try :join ROOM)");
    drop(tmux);
    drop(carol);
    drop(dave);
    server.stop().expect("stop the server");
}

/// A scripted server speaking protocol 1.2 with tags: history goes above
/// the live lines in time order, a line had twice (live and in history,
/// the same `id`) shows once, times are the `time` tags in the local time
/// zone with a separator where the day changes, answers to what the client
/// asked on its own stay off the screen, and server text is shown safely.
#[test]
fn history_goes_above_live_lines_and_server_text_is_shown_safely() {
    if !have_tmux("history_goes_above_live_lines_and_server_text_is_shown_safely") {
        return;
    }
    let (addr, script) = scripted_server(move |mut peer| {
        peer.send("* welcome alice");
        peer.send("* alice joined #lobby");
        peer.expect(":tags on");
        peer.send("@time=2026-01-02T03:05:00.000Z * tags on");
        peer.expect("@label=1 :users");
        peer.expect("@label=2 :history 30");
        peer.expect("@label=3 :rooms");
        // A live line beats the answers to the screen.
        peer.send("@time=2026-01-02T03:05:01.000Z;room=#lobby;id=8 zed: live line");
        peer.send("@time=2026-01-02T03:05:01.000Z;label=1 * users in #lobby: alice zed");
        peer.send("@time=2026-01-02T03:05:01.000Z;label=2 * history #lobby: 3 lines");
        peer.send(
            "@time=2026-01-01T10:00:00.000Z;room=#lobby;id=6;label=2 \
             [history 2026-01-01T10:00:00Z] zed: old line",
        );
        peer.send(
            "@time=2026-01-02T03:04:06.000Z;room=#lobby;id=7;label=2 \
             [history 2026-01-02T03:04:06Z] * zed waved",
        );
        peer.send(
            "@time=2026-01-02T03:05:01.000Z;room=#lobby;id=8;label=2 \
             [history 2026-01-02T03:05:01Z] zed: live line",
        );
        peer.send("@time=2026-01-02T03:05:01.000Z;label=3 * rooms: #lobby (2), #rust (5)");
        peer.send("@time=2026-01-02T03:05:02.000Z;room=#lobby;id=9 zed: \x1b[2J\x1b[31mred\x07 and \u{9b}csi");
        peer.expect(":quit");
        peer.send("* bye");
    });
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    // Nine hours east of UTC (a POSIX TZ string needs no zone files).
    alice.start_client_with(addr, "", "TZ=XYZ-9");
    let screen = alice.wait_text("and \\u{9b}csi");
    let old = screen.find("19:00 zed: old line").expect("history line");
    assert!(
        screen.find("Thu 2026-01-01").is_some_and(|d| d < old),
        "{screen}"
    );
    let day = screen.find("Fri 2026-01-02").expect("the day separator");
    let waved = screen.find("12:04 * zed waved").expect("history action");
    let live = screen.find("12:05 zed: live line").expect("live line");
    assert!(old < day && day < waved && waved < live, "{screen}");
    assert_eq!(screen.matches("zed: live line").count(), 1, "{screen}");
    assert!(
        screen.contains("zed: \\x1b[2J\\x1b[31mred\\x07 and \\u{9b}csi"),
        "{screen}"
    );
    assert!(!screen.contains("* users in"), "asked on our own: {screen}");
    assert!(!screen.contains("* rooms:"), "asked on our own: {screen}");
    assert!(!screen.contains("* history"), "asked on our own: {screen}");
    assert!(!screen.contains("tags on"), "{screen}");
    assert_eq!(panel_users(&screen), ["•alice", "zed"], "{screen}");
    assert!(panel(&screen).iter().any(|p| p == "#rust 5"), "{screen}");
    alice.line(":quit");
    alice.assert_restored(0);
    script.join().expect("fake server");
}

#[test]
fn resize_redraws_the_layout() {
    if !have_tmux("resize_redraws_the_layout") {
        return;
    }
    let server = real_server();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    alice.start_client(server.addr(), "--nick alice");
    let long = "a long line that wraps on a narrow screen only";
    alice.line(long);
    alice.wait_text(long);
    alice.wait_text("users (1)");

    tmux.run(&["resize-window", "-t", "alice", "-x", "50", "-y", "15"]);
    // Until the client redraws, tmux shows the old frame cropped: the end of
    // the long line and the connection state (right-aligned) are cut off.
    let screen = alice.wait_for("the narrow layout", |s| {
        s.lines().nth(13).is_some_and(|l| l.contains("connected")) && s.contains("screen only")
    });
    assert!(screen.lines().all(|l| l.chars().count() <= 50), "{screen}");
    assert!(!screen.contains(long), "not wrapped: {screen}");
    assert!(
        !screen.contains("users ("),
        "no room for the panel: {screen}"
    );

    // Narrower still: the address gives way, the room name stays.
    tmux.run(&["resize-window", "-t", "alice", "-x", "32", "-y", "15"]);
    let screen = alice.wait_for("the narrow status line", |s| {
        s.lines()
            .nth(13)
            .is_some_and(|l| l.contains("#lobby") && l.contains("connected"))
    });
    assert!(
        !screen.lines().nth(13).unwrap_or("").contains("loopchat"),
        "{screen}"
    );

    tmux.run(&["resize-window", "-t", "alice", "-x", "100", "-y", "30"]);
    alice.wait_for("the wide layout", |s| {
        s.contains("users (1)") && s.contains(long)
    });
    drop(tmux);
    server.stop().expect("stop the server");
}

#[test]
fn scrollback_pages_up_and_down() {
    if !have_tmux("scrollback_pages_up_and_down") {
        return;
    }
    let server = real_server();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    alice.start_client(server.addr(), "--nick alice");
    let mut bob = Peer::new(TcpStream::connect(server.addr()).expect("connect"));
    bob.send(":nick bob");
    for i in 0..80 {
        bob.send(&format!("line number {i:02}"));
    }
    alice.wait_text("bob: line number 79");
    assert!(!alice.screen().contains("line number 40"));
    // One page up (the pane is 27 rows) shows lines 26 to 52.
    alice.press("PageUp");
    let screen = alice.wait_for("older lines", |s| s.contains("bob: line number 40"));
    assert!(status_line(&screen).contains("scrolled up"), "{screen}");
    assert!(!screen.contains("line number 79"), "{screen}");
    // A line arriving meanwhile leaves the view where it is and is counted.
    bob.send("one more");
    let screen = alice.wait_for("the count of new lines", |s| {
        status_line(s).contains("scrolled up, 1 new")
    });
    assert!(screen.contains("bob: line number 40"), "{screen}");
    // One page down is one row short of the bottom now; the next gets there.
    alice.press("PageDown");
    alice.press("PageDown");
    alice.wait_for("the newest line again", |s| {
        s.contains("bob: one more") && !status_line(s).contains("scrolled up")
    });
    // The mouse wheel, as the terminal reports it (SGR mouse mode): up three
    // rows, then down again.
    alice.type_text("\x1b[<64;10;10M");
    let screen = alice.wait_for("three rows up", |s| status_line(s).contains("scrolled up"));
    assert!(screen.contains("bob: line number 77"), "{screen}");
    assert!(!screen.contains("bob: line number 78"), "{screen}");
    alice.type_text("\x1b[<65;10;10M");
    alice.wait_for("the newest line after the wheel", |s| {
        s.contains("bob: one more") && !status_line(s).contains("scrolled up")
    });
    drop(tmux);
    drop(bob);
    server.stop().expect("stop the server");
}

#[test]
fn quit_ctrl_c_and_ctrl_d_restore_the_terminal() {
    if !have_tmux("quit_ctrl_c_and_ctrl_d_restore_the_terminal") {
        return;
    }
    let server = real_server();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let shell = tmux.session("shell");
    let mut bob = Peer::new(TcpStream::connect(server.addr()).expect("connect"));
    bob.send(":nick bob");

    shell.start_client(server.addr(), "--nick alice");
    assert_eq!(shell.display("#{alternate_on}"), "1");
    // As in IRC, `/quit` is `:quit`.
    shell.line("/quit");
    shell.assert_restored(0);
    bob.expect("* alice left #lobby");

    shell.line("clear");
    shell.start_client(server.addr(), "--nick alice");
    shell.type_text("half a line");
    shell.press("C-c");
    shell.assert_restored(0);
    bob.expect("* alice left #lobby");

    shell.line("clear");
    shell.start_client(server.addr(), "--nick alice");
    shell.press("C-d");
    shell.assert_restored(0);
    bob.expect("* alice left #lobby");
    drop(tmux);
    drop(bob);
    server.stop().expect("stop the server");
}

#[test]
fn server_going_away_restores_the_terminal_or_reconnects() {
    if !have_tmux("server_going_away_restores_the_terminal_or_reconnects") {
        return;
    }
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let shell = tmux.session("shell");

    // --no-reconnect: the client leaves and the shell is back.
    let server = real_server();
    shell.start_client(server.addr(), "--nick alice --no-reconnect");
    server.stop().expect("stop the server");
    shell.assert_restored(1);
    shell.wait_text("* disconnected from");

    // By default it reconnects, taking its nick and room again.
    shell.line("clear");
    let server = real_server();
    let addr = server.addr();
    shell.start_client(addr, "--nick alice");
    shell.line(":join #rust");
    shell.wait_for("#rust", |s| status_line(s).contains("│ alice │ #rust"));
    server.stop().expect("stop the server");
    shell.wait_for("the reconnect countdown", |s| {
        status_line(s).contains("reconnecting in")
    });
    // The same port again: a server restarted in place.
    let deadline = Instant::now() + TIMEOUT;
    let server = loop {
        let mut config = loopchat::Config::ephemeral();
        config.addr = addr;
        match loopchat::Server::bind(config) {
            Ok(server) => break server.spawn().expect("start the server"),
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot bind {addr} again: {e}");
                thread::sleep(POLL);
            }
        }
    };
    shell.wait_for("connected again in #rust as alice", |s| {
        status_line(s).contains("│ alice │ #rust")
            && status_line(s).contains("connected")
            && !status_line(s).contains("reconnecting")
    });
    let mut bob = Peer::new(TcpStream::connect(addr).expect("connect"));
    bob.send(":join #rust");
    bob.send(":users");
    bob.expect("* users in #rust: @alice guest2"); // alice made it again
    shell.line(":quit");
    shell.assert_restored(0);
    drop(tmux);
    drop(bob);
    server.stop().expect("stop the server");
}

#[test]
fn a_panic_restores_the_terminal() {
    if !have_tmux("a_panic_restores_the_terminal") {
        return;
    }
    if !cfg!(debug_assertions) {
        eprintln!(
            "skipping a_panic_restores_the_terminal: the panic trigger is in debug builds only"
        );
        return;
    }
    let server = real_server();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let shell = tmux.session("shell");
    shell.start_client_with(server.addr(), "", "LOOPCHAT_CLIENT_PANIC_ON=boom");
    shell.line("boom");
    shell.assert_restored(101);
    shell.wait_text("panic requested with LOOPCHAT_CLIENT_PANIC_ON");
    drop(tmux);
    server.stop().expect("stop the server");
}

#[test]
fn an_idle_client_pings_and_hides_the_pong() {
    if !have_tmux("an_idle_client_pings_and_hides_the_pong") {
        return;
    }
    let (addr, script) = scripted_server(move |mut peer| {
        peer.send("* welcome alice");
        // Nothing else from us: the client has nothing to answer, so the
        // next thing it sends on its own is the keepalive.
        peer.expect(":ping keepalive");
        peer.send("* pong keepalive");
        peer.send("zed: after the pong");
        peer.expect(":quit");
        peer.send("* bye");
    });
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    alice.line(&format!(
        "'{}' --addr {addr} --keepalive 1; echo \"EXITED:$?\"",
        client_bin().display()
    ));
    let screen = alice.wait_text("zed: after the pong");
    assert!(!screen.contains("pong keepalive"), "{screen}");
    alice.line(":quit");
    alice.assert_restored(0);
    script.join().expect("fake server");
}

#[test]
fn a_full_server_is_reported_once_the_screen_is_restored() {
    if !have_tmux("a_full_server_is_reported_once_the_screen_is_restored") {
        return;
    }
    let (addr, script) = scripted_server(move |mut peer| {
        peer.send("! server full");
        // Dropping the stream closes the connection.
    });
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let shell = tmux.session("shell");
    shell.line(&format!(
        "'{}' --addr {addr} --no-reconnect; echo \"EXITED:$?\"",
        client_bin().display()
    ));
    script.join().expect("fake server");
    shell.assert_restored(1);
    shell.wait_text(&format!("* disconnected from {addr}: ! server full"));
}

#[test]
fn sigterm_restores_the_terminal() {
    if !have_tmux("sigterm_restores_the_terminal") {
        return;
    }
    let server = real_server();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let shell = tmux.session("shell");
    shell.start_client(server.addr(), "--nick alice");
    // The client is the shell's only child.
    let shell_pid = shell.display("#{pane_pid}");
    let children = std::fs::read_to_string(format!("/proc/{shell_pid}/task/{shell_pid}/children"))
        .expect("the shell's children");
    let client_pid: i32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no child of the shell: {children:?}"));
    // SAFETY: kill(2) with a pid we just read and a valid signal number.
    assert_eq!(unsafe { libc::kill(client_pid, libc::SIGTERM) }, 0);
    shell.assert_restored(1);
    drop(tmux);
    server.stop().expect("stop the server");
}

/// `:help` lists the client's keys, then the server's commands.
#[test]
fn help_lists_the_keys_and_the_commands() {
    if !have_tmux("help_lists_the_keys_and_the_commands") {
        return;
    }
    let server = real_server();
    let tmux = Tmux::sized(WIDTH, HEIGHT);
    let alice = tmux.session("alice");
    alice.start_client(server.addr(), "--nick alice");
    alice.line(":help");
    alice.wait_text("* :key KEY");
    // More rows than the pane: the keys come first, a page up.
    alice.press("PageUp");
    let screen = alice.wait_for("the keys", |s| status_line(s).contains("scrolled up"));
    for keys in [
        "keys: Enter send",
        "keys: PgUp/PgDn",
        "keys: Ctrl-W/U/K",
        "keys: Alt-1…9 show the Nth room",
    ] {
        assert!(screen.contains(keys), "{keys:?} missing: {screen}");
    }
    drop(tmux);
    server.stop().expect("stop the server");
}
