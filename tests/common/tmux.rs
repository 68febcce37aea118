//! A real terminal for the tests: tmux, with a server of its own (no
//! config file, its socket in the temp directory, killed with everything
//! in it on drop), sessions running `sh`, keys typed with `send-keys` and
//! the screen read with `capture-pane`. Every wait polls the screen until
//! the expected text shows or a deadline passes; a failure prints the
//! screen. `tests/common/tui.rs` adds the full-screen client tests' helpers
//! (their screen size, a real or scripted server) on top of these.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Generous, because two cores are shared with parallel builds; a passing
/// test never waits this long.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Between two looks at the screen while waiting for it to change.
pub const POLL: Duration = Duration::from_millis(50);
/// The size of every session.
pub const WIDTH: u16 = 120;
/// The size of every session.
pub const HEIGHT: u16 = 40;

/// Whether tmux is here; in CI (`CI=true`) its absence fails the test.
pub fn have_tmux(test: &str) -> bool {
    super::tool_or_skip("tmux", test).is_some()
}

/// One tmux server of our own; its sessions have one size.
pub struct Tmux {
    socket: PathBuf,
    width: u16,
    height: u16,
}

impl Default for Tmux {
    fn default() -> Self {
        Self::new()
    }
}

impl Tmux {
    /// A tmux server on a socket of its own (started by the first session),
    /// with sessions of [`WIDTH`] by [`HEIGHT`].
    pub fn new() -> Tmux {
        Tmux::sized(WIDTH, HEIGHT)
    }

    /// [`Tmux::new`] with sessions of `width` by `height`.
    pub fn sized(width: u16, height: u16) -> Tmux {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = std::env::temp_dir().join(format!(
            "loopchat-tmux-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        Tmux {
            socket,
            width,
            height,
        }
    }

    /// Runs a tmux command on this server; panics when it fails.
    pub fn run(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .args(["-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .env_remove("LOOPCHAT_PASSWORD")
            .env("TERM", "xterm-256color")
            // tmux shows wide characters only when the locale says UTF-8.
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("run tmux");
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// A new session running `sh` with a recognisable prompt.
    pub fn session(&self, name: &str) -> Session<'_> {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &self.width.to_string(),
            "-y",
            &self.height.to_string(),
            "env PS1='PROMPT$ ' sh",
        ]);
        let session = Session {
            tmux: self,
            name: name.to_string(),
        };
        session.wait_for("the shell prompt", |s| s.contains("PROMPT$"));
        session
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// One terminal in the tmux server.
pub struct Session<'a> {
    pub(super) tmux: &'a Tmux,
    pub(super) name: String,
}

impl Session<'_> {
    /// Types `text` literally (no key names).
    pub fn type_text(&self, text: &str) {
        self.tmux.run(&["send-keys", "-t", &self.name, "-l", text]);
    }

    /// Presses keys by tmux name: `Enter`, `C-c`, ...
    pub fn press(&self, key: &str) {
        self.tmux.run(&["send-keys", "-t", &self.name, key]);
    }

    /// Types `text` and presses Enter.
    pub fn line(&self, text: &str) {
        self.type_text(text);
        self.press("Enter");
    }

    /// What the terminal shows now.
    pub fn screen(&self) -> String {
        let output = self.tmux.run(&["capture-pane", "-p", "-t", &self.name]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A tmux format expanded for this session (`#{pane_pid}`, ...).
    pub fn display(&self, format: &str) -> String {
        let output = self
            .tmux
            .run(&["display-message", "-p", "-t", &self.name, format]);
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Polls the screen until `check` holds; returns that screen.
    pub fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] never showed {what}; the screen:\n{screen}",
                self.name
            );
            std::thread::sleep(POLL);
        }
    }

    /// Polls the screen until it shows `text`; returns that screen.
    pub fn wait_text(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?}"), |s| s.contains(text))
    }

    /// Polls the screen until its message pane (rows joined, see
    /// [`pane_text`]) has `text`, which may wrap; returns that screen.
    pub fn wait_pane(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?}"), |s| pane_text(s).contains(text))
    }

    /// Starts the full-screen client (`examples/client`) from the shell
    /// with `args`, `env` (`NAME=value ...`) set, and waits for its status
    /// line to say it is connected.
    pub fn start_client_env(&self, addr: SocketAddr, args: &str, env: &str) {
        self.line(&format!(
            "{env} '{}' --addr {addr} {args}; echo \"EXITED:$?\"",
            super::client_bin().display()
        ));
        self.wait_for("the client's status line", |s| {
            status_line(s).contains("connected")
        });
    }
}

/// The status line: the second line from the bottom of a full screen.
pub fn status_line(screen: &str) -> &str {
    screen
        .lines()
        .nth(usize::from(HEIGHT) - 2)
        .unwrap_or_default()
}

/// The message pane of a terminal screen as one line: each row without
/// the side panel, joined with spaces (so wrapped lines read on).
pub fn pane_text(screen: &str) -> String {
    screen
        .lines()
        .map(|row| row.rsplit_once('│').map_or(row, |(pane, _)| pane).trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The safety number a screen or page showed: the 60 digits after
/// "safety number with NICK: ".
pub fn safety_digits(shown: &str, peer: &str) -> String {
    let after = shown
        .split(&format!("safety number with {peer}: "))
        .nth(1)
        .unwrap_or_else(|| panic!("no safety number with {peer} in {shown}"));
    let digits: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ' ')
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(digits.len(), 60, "{after}");
    digits
}
