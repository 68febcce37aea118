//! The full-screen client in a real terminal: tmux. Each test starts its
//! own tmux server (no config file, its socket in the temp directory,
//! removed afterwards), runs `sh` in fixed-size sessions, types the
//! client's command line into it, and reads the screen with
//! `capture-pane`. Every wait polls the screen until the expected text
//! appears or a deadline passes; a failure prints the screen. tmux is
//! installed by `.ci/run`; without it the tests are skipped locally (with a
//! message) and fail in CI (`CI=true`). Used by tests/tui.rs and
//! tests/tui_chat.rs.

use super::client_bin;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

pub const WIDTH: u16 = 100;
pub const HEIGHT: u16 = 30;

// The tmux driving itself is tests/common/tmux.rs's; these tests' sessions
// are WIDTH by HEIGHT (`Tmux::sized`).
#[allow(unused_imports)]
pub use super::tmux::{have_tmux, Session, Tmux, POLL, TIMEOUT};

/// The full-screen client in a session.
impl Session<'_> {
    /// Starts the client from the shell; `echo` marks its exit.
    pub fn start_client(&self, addr: SocketAddr, args: &str) {
        self.start_client_with(addr, args, "");
    }

    /// As [`Session::start_client`], with `env` (`NAME=value ...`) set.
    pub fn start_client_with(&self, addr: SocketAddr, args: &str, env: &str) {
        self.line(&format!(
            "{env} '{}' --addr {addr} {args}; echo \"EXITED:$?\"",
            client_bin().display()
        ));
        // With --nick, ready means renamed.
        let nick = args
            .split_whitespace()
            .skip_while(|a| *a != "--nick")
            .nth(1)
            .map(|n| format!("│ {n} │ #"))
            .unwrap_or_else(|| " │ #".to_string());
        self.wait_for("the client's status line", |s| {
            status_line(s).contains("connected") && status_line(s).contains(&nick)
        });
    }

    /// The shell is back, the screen is the main one and the tty is cooked.
    pub fn assert_restored(&self, exit_code: u8) {
        self.wait_text(&format!("EXITED:{exit_code}"));
        assert_eq!(self.display("#{alternate_on}"), "0", "{}", self.screen());
        self.line("stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' '; echo");
        let screen = self.wait_text("icanon echo");
        assert!(!screen.contains("-icanon"), "{screen}");
        assert!(!screen.contains("-echo "), "{screen}");
    }
}

/// The status line: the second line from the bottom of a full screen.
pub fn status_line(screen: &str) -> &str {
    let lines: Vec<&str> = screen.lines().collect();
    if lines.len() >= usize::from(HEIGHT) - 1 {
        lines[usize::from(HEIGHT) - 2]
    } else {
        ""
    }
}

/// The input line: the last line of a full screen.
pub fn input_line(screen: &str) -> String {
    screen
        .lines()
        .nth(usize::from(HEIGHT) - 1)
        .unwrap_or("")
        .trim_end()
        .to_string()
}

/// The side panel's entries: what follows the panel border on each row.
pub fn panel(screen: &str) -> Vec<String> {
    screen
        .lines()
        .take(usize::from(HEIGHT) - 2)
        .filter_map(|l| l.rsplit_once('│').map(|(_, p)| p.trim().to_string()))
        .filter(|p| !p.is_empty())
        .collect()
}

/// The users listed in the side panel.
pub fn panel_users(screen: &str) -> Vec<String> {
    panel(screen)
        .into_iter()
        .skip_while(|p| !p.starts_with("users ("))
        .skip(1)
        .take_while(|p| p != "rooms")
        .collect()
}

pub fn real_server() -> loopchat::RunningServer {
    loopchat::Server::bind(loopchat::Config::ephemeral())
        .expect("bind the server")
        .spawn()
        .expect("start the server")
}

/// A raw protocol connection, like `nc`.
pub struct Peer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Peer {
    pub fn new(stream: TcpStream) -> Peer {
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("set read timeout");
        let writer = stream.try_clone().expect("clone the stream");
        Peer {
            reader: BufReader::new(stream),
            writer,
        }
    }

    pub fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .expect("send to the peer");
    }

    /// Reads until a line satisfies `wanted`; panics at the end of stream.
    pub fn expect(&mut self, wanted: &str) {
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read a line");
            assert!(n > 0, "closed before {wanted:?}; saw {seen:?}");
            let line = line.trim_end_matches('\n').to_string();
            if line == wanted {
                return;
            }
            seen.push(line);
        }
    }
}

/// A fake server for what the real one never sends: accepts one client on
/// a free loopback port and runs `script` with it on a thread. Returns the
/// address and the thread (join it to see the script's assertions).
pub fn scripted_server(
    script: impl FnOnce(Peer) + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake server");
    let addr = listener.local_addr().expect("fake server address");
    let thread = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept the client");
        script(Peer::new(stream));
    });
    (addr, thread)
}
