//! Real IRC clients for the tests: Debian's `irssi` in a tmux of our own
//! (typed into with `send-keys`, read with `capture-pane`), and
//! `weechat-headless` (commands written to its fifo plugin's pipe, what it
//! shows read from its logger plugin's buffer logs, flushed at once).
//!
//! Each client gets a fresh home directory, removed afterwards, and
//! connects to the address it is given. Every wait polls what the client
//! shows until the expected text appears or [`TIMEOUT`] passes; a failure
//! prints what it showed. A client is killed on drop if the test did not
//! quit it. The tools are installed by `.ci/run`; without them the tests
//! are skipped locally (with a message) and fail in CI (`CI=true`).

#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Generous, because two cores are shared with parallel builds; a passing
/// test never waits this long.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Between two looks at what a client shows while waiting for it.
const POLL: Duration = Duration::from_millis(50);

/// `name`'s path, or `None` (skip) with a note; in CI a missing tool fails.
pub fn tool(name: &str, test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run {test}: {name} is not installed (.ci/run installs it)"
        );
        eprintln!("skipping {test}: {name} is not installed");
    }
    found
}

/// Whether WeeChat's fifo plugin is installed (Debian's `weechat-plugins`),
/// which the WeeChat tests type through; in CI its absence fails.
pub fn weechat_fifo_plugin(test: &str) -> bool {
    let found = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .any(|lib| Path::new(lib).join("weechat/plugins/fifo.so").is_file());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run {test}: WeeChat's fifo plugin is missing (.ci/run installs \
             weechat-plugins)"
        );
        eprintln!("skipping {test}: WeeChat's fifo plugin is missing (weechat-plugins)");
    }
    found
}

/// A fresh directory, removed on drop.
pub struct Home(PathBuf);

impl Home {
    fn new(what: &str) -> Home {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "loopchat-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make a home directory");
        Home(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `look` until `check` holds on what it returns; returns that.
/// Panics after [`TIMEOUT`], showing the last look.
pub fn wait_until(
    who: &str,
    what: &str,
    look: impl Fn() -> String,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let seen = look();
        if check(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{who} never showed {what}; it showed:\n{seen}"
        );
        std::thread::sleep(POLL);
    }
}

/// irssi in a tmux server of our own (its socket in the temp directory),
/// in one window 160 columns wide so lines are not wrapped.
pub struct Irssi {
    socket: PathBuf,
    home: Home,
    nick: String,
}

impl Irssi {
    /// Starts irssi as `nick`, connecting to `addr` at once; returns once
    /// it shows the end of the welcome (the MOTD, or its absence).
    pub fn start(irssi: &Path, addr: SocketAddr, nick: &str) -> Irssi {
        let home = Home::new("irssi");
        let socket = home.path().join("tmux.sock");
        // No theme timestamps: what the tests read is the text alone.
        std::fs::write(
            home.path().join("config"),
            format!(
                "settings = {{\n  core = {{ real_name = \"{nick}\"; user_name = \"{nick}\"; \
                 nick = \"{nick}\"; }};\n  \"fe-common/core\" = {{ timestamps = \"no\"; }};\n}};\n"
            ),
        )
        .expect("write irssi's config");
        let client = Irssi {
            socket,
            home,
            nick: nick.to_string(),
        };
        let command = format!(
            "'{}' --home='{}' -n {nick} -c {} -p {}",
            irssi.display(),
            client.home.path().display(),
            addr.ip(),
            addr.port()
        );
        client.tmux(&[
            "new-session",
            "-d",
            "-s",
            "irssi",
            "-x",
            "160",
            "-y",
            "50",
            &command,
        ]);
        client.wait_for("376|422", |s| {
            s.contains("End of /MOTD")
                || s.contains("MOTD File is missing")
                || s.contains("End of MOTD")
        });
        client
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .args(["-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
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

    /// Types `line` into irssi's input line and presses Enter.
    pub fn send(&self, line: &str) {
        self.tmux(&["send-keys", "-t", "irssi", "-l", line]);
        self.tmux(&["send-keys", "-t", "irssi", "Enter"]);
    }

    /// What irssi shows now in its active window, with the scrollback.
    pub fn screen(&self) -> String {
        let output = self.tmux(&["capture-pane", "-p", "-J", "-S", "-300", "-t", "irssi"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the active window shows something `check` accepts.
    pub fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_until(
            &format!("irssi ({})", self.nick),
            what,
            || self.screen(),
            check,
        )
    }

    /// Waits until the active window shows `text`.
    pub fn wait_text(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?}"), |s| s.contains(text))
    }

    /// `/quit MESSAGE`, then waits until irssi has exited (its tmux
    /// session closes with it).
    pub fn quit(self, message: &str) {
        self.send(&format!("/quit {message}"));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let alive = Command::new("tmux")
                .args(["-f", "/dev/null", "-S"])
                .arg(&self.socket)
                .args(["has-session", "-t", "irssi"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if !alive {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "irssi did not exit after /quit:\n{}",
                self.screen()
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Irssi {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `weechat-headless`, its fifo for commands and its logs for what it
/// shows. The server is added as `test`, so the server buffer is
/// `irc.server.test` and a channel's is `irc.test.#channel`.
pub struct Weechat {
    child: Option<Child>,
    home: Home,
    fifo: PathBuf,
    nick: String,
}

impl Weechat {
    /// Starts WeeChat as `nick` connecting to `addr`; returns once the
    /// server buffer shows the end of the welcome.
    pub fn start(weechat: &Path, addr: SocketAddr, nick: &str) -> Weechat {
        Weechat::start_with(weechat, addr, nick, None)
    }

    /// As [`Weechat::start`], logging in with SASL `PLAIN` as
    /// `(account, password)` when given.
    pub fn start_with(
        weechat: &Path,
        addr: SocketAddr,
        nick: &str,
        sasl: Option<(&str, &str)>,
    ) -> Weechat {
        let home = Home::new("weechat");
        let mut commands = vec![
            // Logs written at once, no time column to parse around.
            "/set logger.file.flush_delay 0".to_string(),
            "/set logger.file.time_format \"\"".to_string(),
            format!("/server add test {}/{} -notls", addr.ip(), addr.port()),
            format!("/set irc.server.test.nicks {nick}"),
            format!("/set irc.server.test.username {nick}"),
            format!("/set irc.server.test.realname {nick}"),
        ];
        if let Some((account, password)) = sasl {
            commands.push("/set irc.server.test.sasl_mechanism plain".to_string());
            commands.push(format!("/set irc.server.test.sasl_username {account}"));
            commands.push(format!("/set irc.server.test.sasl_password {password}"));
        }
        commands.push("/connect test".to_string());
        let child = Command::new(weechat)
            .arg("--dir")
            .arg(home.path())
            .args(["-P", "irc,fifo,logger", "-r", &commands.join(";")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start weechat-headless");
        let fifo = home.path().join(format!("weechat_fifo_{}", child.id()));
        let client = Weechat {
            child: Some(child),
            home,
            fifo,
            nick: nick.to_string(),
        };
        client.wait_for_log("irc.server.test", "the end of the welcome", |log| {
            log.contains("End of /MOTD")
                || log.contains("MOTD File is missing")
                || log.contains("End of MOTD")
        });
        client
    }

    /// Runs `text` (a command or a line to say) in `buffer` (its full
    /// name, `irc.test.#room`) through the fifo.
    pub fn send(&self, buffer: &str, text: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.fifo.exists() {
            assert!(
                Instant::now() < deadline,
                "WeeChat made no fifo at {}",
                self.fifo.display()
            );
            std::thread::sleep(POLL);
        }
        let mut pipe = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.fifo)
            .expect("open WeeChat's fifo");
        pipe.write_all(format!("{buffer} *{text}\n").as_bytes())
            .expect("write to WeeChat's fifo");
    }

    /// What `buffer` has shown so far (its log; empty before it has one).
    pub fn log(&self, buffer: &str) -> String {
        let path = self
            .home
            .path()
            .join("logs")
            .join(format!("{buffer}.weechatlog"));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Waits until `buffer` has shown something `check` accepts.
    pub fn wait_for_log(&self, buffer: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_until(
            &format!("WeeChat ({}) in {buffer}", self.nick),
            what,
            || self.log(buffer),
            check,
        )
    }

    /// Waits until `buffer` has shown `text`.
    pub fn wait_text(&self, buffer: &str, text: &str) -> String {
        self.wait_for_log(buffer, &format!("{text:?}"), |log| log.contains(text))
    }

    /// `/quit MESSAGE`, then waits until WeeChat has exited by itself.
    pub fn quit(mut self, message: &str) {
        self.send("core.weechat", &format!("/quit {message}"));
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for WeeChat") {
                assert!(status.success(), "WeeChat exited with {status}");
                return;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("WeeChat did not exit after /quit");
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Weechat {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
