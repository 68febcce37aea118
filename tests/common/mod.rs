//! Shared helpers for the integration tests: start a real server on
//! 127.0.0.1:0 in-process and talk to it over real sockets, with every read
//! bounded by a timeout (never a sleep).

#![allow(dead_code)]

pub mod browser;
pub mod capture;
pub mod page;
pub mod redis;
pub mod tls;
pub mod tmux;
pub mod tui;

use loopchat::protocol::{recognise, Event, Reply, ServerLine};
use loopchat::{Config, RunningServer, Server};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a test waits for a line it expects before failing.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Flags that turn flood control off, for tests that flood on purpose.
pub const NO_FLOOD_CONTROL: [&str; 4] =
    ["--flood-lines-per-sec", "0", "--flood-bytes-per-sec", "0"];

/// Starts a server with flood control off: for tests whose point is a
/// flood (throughput, slow consumers, read budgets), not its rate limit.
pub fn start_flood_off() -> RunningServer {
    start_with(|config| config.flood = loopchat::policy::limits::FloodLimit::OFF)
}

/// Starts a server with default settings on a free port.
pub fn start() -> RunningServer {
    start_with(|_| {})
}

/// Starts a server on a free port after `adjust` changed its settings.
pub fn start_with(adjust: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = Config::ephemeral();
    adjust(&mut config);
    Server::bind(config)
        .expect("server binds")
        .spawn()
        .expect("server starts")
}

/// A test client: a blocking socket with a line reader and a timeout.
/// What every line client in the tests (plain, TLS, counting) does the
/// same way on top of reading one line and sending one.
pub trait Lines {
    /// The next line; `Ok(None)` when the server closed the connection.
    fn try_line(&mut self) -> io::Result<Option<String>>;

    /// Sends one line (the `\n` is added).
    fn send(&mut self, line: &str);

    /// The next line, without its `\n`. Panics on timeout or close.
    fn line(&mut self) -> String {
        match self.try_line() {
            Ok(Some(line)) => line,
            Ok(None) => panic!("connection closed while a line was expected"),
            Err(err) => panic!("no line within {READ_TIMEOUT:?}: {err}"),
        }
    }

    /// Asserts the next line.
    fn expect(&mut self, expected: &str) {
        assert_eq!(self.line(), expected);
    }

    /// Reads lines until one equals `expected`; returns the lines before it.
    fn skip_until(&mut self, expected: &str) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            let line = self.line();
            if line == expected {
                return skipped;
            }
            skipped.push(line);
        }
    }

    /// Reads `* welcome NICK` and the own join line (read with the
    /// protocol's recogniser); returns the nick.
    fn welcome(&mut self) -> String {
        let welcome = self.line();
        let Some(ServerLine::Reply(Reply::Welcome { nick })) = recognise(&welcome) else {
            panic!("expected a welcome, got {welcome:?}");
        };
        let nick = nick.to_string();
        let joined = self.line();
        assert_eq!(
            recognise(&joined),
            Some(ServerLine::Event(Event::Joined {
                nick: &nick,
                room: "#lobby"
            })),
            "{joined:?}"
        );
        nick
    }

    /// Round trip through the server: everything sent before is handled, and
    /// every line the server queued for us before the pong is returned.
    fn sync(&mut self) -> Vec<String> {
        self.send(":ping sync");
        self.skip_until("* pong sync")
    }
}

pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
    /// The guest nick from the welcome line, when it was read.
    pub nick: String,
}

impl Client {
    /// Connects without reading anything.
    pub fn connect_raw(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let writer = stream.try_clone().expect("clone");
        Client {
            reader: BufReader::new(stream),
            writer,
            nick: String::new(),
        }
    }

    /// Connects and reads the welcome and own join line (no password).
    pub fn connect(addr: SocketAddr) -> Client {
        let mut client = Client::connect_raw(addr);
        client.read_welcome();
        client
    }

    /// Reads `* welcome NICK` and the own join line; remembers and returns
    /// the nick.
    pub fn read_welcome(&mut self) -> String {
        let nick = self.welcome();
        self.nick = nick.clone();
        nick
    }

    /// Connects, then renames itself to `nick` and reads the rename line.
    pub fn named(addr: SocketAddr, nick: &str) -> Client {
        let mut client = Client::connect(addr);
        client.send(&format!(":nick {nick}"));
        client.expect(&format!("* {} is now known as {nick}", client.nick));
        client.nick = nick.to_string();
        client
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send");
    }
}

impl Lines for Client {
    fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes());
    }

    fn try_line(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        assert_eq!(buf.pop(), Some(b'\n'), "line without newline: {buf:?}");
        Ok(Some(String::from_utf8(buf).expect("server sends UTF-8")))
    }
}

impl Client {
    /// Asserts that the server closes the connection next, with no more lines.
    pub fn expect_closed(&mut self) {
        match self.try_line() {
            Ok(None) => {}
            Ok(Some(line)) => panic!("expected close, got {line:?}"),
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {}
            Err(err) => panic!("expected close, got {err}"),
        }
    }

    /// Asserts the server owes this client nothing right now.
    pub fn assert_quiet(&mut self) {
        let lines = self.sync();
        assert!(
            lines.is_empty(),
            "{} should have received nothing, got {lines:?}",
            self.nick
        );
    }

    /// Shuts down our sending side (like `nc -N`).
    pub fn half_close(&mut self) {
        self.writer.shutdown(Shutdown::Write).expect("shutdown");
    }

    /// Reads everything until the server closes; for tests that expect a
    /// disconnect after some lines.
    pub fn read_to_close(&mut self) -> Vec<String> {
        let mut rest = String::new();
        let _ = self.reader.read_to_string(&mut rest);
        rest.lines().map(str::to_string).collect()
    }
}

/// Waits until `check` holds, polling; for state the server exposes only
/// through the OS (e.g. /proc). Panics after `limit`.
pub fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        std::thread::yield_now();
    }
}

/// The `loopchat` binary running as a child process, for what an in-process
/// server cannot show: signals, exit status, its own memory and CPU, its own
/// descriptor limit. Killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    /// Log lines the server wrote to stderr, as they arrive.
    pub log: std::sync::mpsc::Receiver<String>,
}

impl ServerProcess {
    /// Starts the binary on 127.0.0.1:0 with extra flags, and an optional
    /// descriptor limit, and waits for its "listening on" log line.
    pub fn start(flags: &[&str], max_fds: Option<u64>) -> ServerProcess {
        Self::start_command(
            std::process::Command::new(env!("CARGO_BIN_EXE_loopchat")),
            flags,
            max_fds,
        )
    }

    /// [`ServerProcess::start`] with the command that starts the server
    /// given (e.g. `cargo run --release --`, which replaces itself with the
    /// server on Unix, so the child is the server).
    pub fn start_command(
        command: std::process::Command,
        flags: &[&str],
        max_fds: Option<u64>,
    ) -> ServerProcess {
        let mut args = vec!["--addr", "127.0.0.1:0", "--web-addr", "127.0.0.1:0"];
        if !flags.contains(&"--irc-addr") {
            // Never the default 6667: tests run side by side.
            args.extend(["--irc-addr", "off"]);
        }
        if !flags.contains(&"--history-file") {
            // Tests never write a history file into the repository.
            args.extend(["--history-file", ":memory:"]);
        }
        args.extend(flags);
        Self::launch(command, &args, max_fds)
    }

    /// Starts the binary with exactly these arguments (for settings that
    /// come from a `--config` file: the caller keeps it off the repository's
    /// history file and fixed ports) and waits for its "listening on" line.
    pub fn start_exactly(args: &[&str], max_fds: Option<u64>) -> ServerProcess {
        Self::start_with_env(args, max_fds, &[])
    }

    /// [`Self::start_exactly`] with extra environment variables.
    pub fn start_with_env(
        args: &[&str],
        max_fds: Option<u64>,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> ServerProcess {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"));
        command.envs(env.iter().copied());
        Self::launch(command, args, max_fds)
    }

    /// Runs `command` with exactly `args` and waits for the server's
    /// "listening on" line.
    fn launch(
        mut command: std::process::Command,
        args: &[&str],
        max_fds: Option<u64>,
    ) -> ServerProcess {
        use std::os::unix::process::CommandExt;
        use std::process::Stdio;
        // `info` unless the caller asked for another level.
        if !command.get_envs().any(|(name, _)| name == "RUST_LOG") {
            command.env("RUST_LOG", "info");
        }
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(limit) = max_fds {
            // SAFETY: setrlimit is async-signal-safe and touches only the child.
            unsafe {
                command.pre_exec(move || {
                    let rlim = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("start the loopchat binary");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = loop {
            let line = log
                .recv_timeout(READ_TIMEOUT)
                .expect("the server logs its address");
            if let Some((_, rest)) = line.split_once("listening on ") {
                let addr = rest.split_whitespace().next().expect("an address");
                break addr.parse().expect("a socket address");
            }
        };
        ServerProcess { child, addr, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of /proc/PID/status in kB (VmRSS, VmHWM, ...).
    pub fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// CPU time (user + system) the server has used, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("read /proc stat");
        let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let utime: u64 = fields[11].parse().expect("utime");
        let stime: u64 = fields[12].parse().expect("stime");
        utime + stime
    }

    /// Sends a signal (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.pid()).expect("pid fits");
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill failed");
    }

    /// Waits for the process to exit, at most `limit`; returns its status.
    pub fn wait_exit(mut self, limit: Duration) -> std::process::ExitStatus {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut child = std::mem::replace(
            &mut self.child,
            std::process::Command::new("true")
                .spawn()
                .expect("spawn true"),
        );
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = rx
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("server did not exit within {limit:?}"))
            .expect("wait");
        let _ = self.child.wait();
        status
    }

    /// The metrics address, from the "metrics on http://ADDR/metrics" log
    /// line (the server must have been given a metrics address).
    pub fn metrics_addr(&self) -> SocketAddr {
        let line = self.expect_log("metrics on http://");
        line.split("http://")
            .nth(1)
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
    }

    /// Waits for a log line containing `needle`.
    pub fn expect_log(&self, needle: &str) -> String {
        loop {
            let line = self
                .log
                .recv_timeout(READ_TIMEOUT)
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raises this process's descriptor limit toward `wanted`; returns the
/// soft limit now in force.
pub fn raise_fd_limit(wanted: u64) -> u64 {
    loopchat::net::fd_limit::raise(wanted).unwrap_or(0)
}

/// Examples get no `CARGO_BIN_EXE_*`, so build it once per test binary, with
/// the profile and target directory this test binary was built with.
pub fn client_bin() -> &'static std::path::PathBuf {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("path of the test binary");
        // The test binary lives in <target>/<profile-dir>/deps/.
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("test binary in <target>/<profile>/deps")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target directory");
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--quiet",
                "-p",
                "loopchat-client",
                "--example",
                "client",
            ])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cargo.arg("--release");
            }
            Some(other) => {
                cargo.args(["--profile", other]);
            }
            None if cfg!(debug_assertions) => {}
            None => {
                cargo.arg("--release");
            }
        }
        let status = cargo.status().expect("run cargo build --example client");
        assert!(status.success(), "cargo build --example client failed");
        profile_dir
            .join("examples")
            .join(format!("client{}", std::env::consts::EXE_SUFFIX))
    })
}

/// The path of an outside tool a test drives (looked up in PATH, then in
/// /usr/sbin and /sbin, where Debian puts daemons such as haproxy), or
/// `None` with a note when it is missing. Under CI (CI=true) a missing tool
/// fails the test instead: `.ci/run` installs it.
pub fn tool_or_skip(name: &str, test: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(std::path::PathBuf::from))
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

/// One client per nick, in order, each past the lines the others'
/// arrivals and renames caused.
pub fn named<const N: usize>(addr: SocketAddr, nicks: [&str; N]) -> [Client; N] {
    let mut clients: [Client; N] = std::array::from_fn(|i| Client::named(addr, nicks[i]));
    for client in &mut clients {
        client.sync();
    }
    clients
}

/// Sends `line` and returns every line answered before a pong.
pub fn ask(client: &mut Client, line: &str) -> Vec<String> {
    client.send(line);
    client.sync()
}
