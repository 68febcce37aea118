//! End-to-end tests of the terminal client's line mode (`examples/client/`;
//! the full screen is tests/tui.rs): the built example runs as a child
//! process with piped stdin, against either the real
//! server in-process or a scripted fake server on a plain `TcpListener` (for
//! what the real server never does: escape sequences, vanishing mid-session).
//!
//! Every wait is bounded: a client that hangs is killed and the test fails
//! with what it printed so far.

mod common;

use common::client_bin;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Generous, because two cores are shared with parallel builds; a passing
/// test never waits this long.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A running client with its output collected by background threads.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout_lines: Receiver<Vec<u8>>,
    stdout_seen: Vec<u8>,
    stderr: Receiver<Vec<u8>>,
}

/// What a finished client printed.
struct Output {
    status: ExitStatus,
    /// Raw bytes, to check that nothing unescaped got through.
    stdout_bytes: Vec<u8>,
    stdout: String,
    stderr: String,
}

impl Output {
    fn describe(&self) -> String {
        format!(
            "status: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl Client {
    fn spawn(args: &[&str]) -> Client {
        Client::spawn_with_env(args, None)
    }

    fn spawn_with_env(args: &[&str], password_env: Option<&str>) -> Client {
        let mut command = Command::new(client_bin());
        command
            .args(args)
            .env_remove("LOOPCHAT_PASSWORD")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(password) = password_env {
            command.env("LOOPCHAT_PASSWORD", password);
        }
        let mut child = command.spawn().expect("start the client");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut stderr = child.stderr.take().expect("piped stderr");

        let (line_tx, stdout_lines) = mpsc::channel();
        thread::spawn(move || loop {
            let mut line = Vec::new();
            match stdout.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if line_tx.send(line).is_err() {
                        return;
                    }
                }
            }
        });
        let (err_tx, stderr_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stderr.read_to_end(&mut all);
            let _ = err_tx.send(all);
        });
        Client {
            child,
            stdin,
            stdout_lines,
            stdout_seen: Vec::new(),
            stderr: stderr_rx,
        }
    }

    /// Runs the client with `input` as its whole stdin (then EOF).
    fn run(args: &[&str], input: &str) -> Output {
        let mut client = Client::spawn(args);
        client.write_stdin(input);
        client.close_stdin();
        client.finish()
    }

    fn write_stdin(&mut self, input: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        // The client may already have exited (that is for the test to
        // judge from its output), so a broken pipe is not a failure here.
        let _ = stdin.write_all(input.as_bytes());
        let _ = stdin.flush();
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for a stdout line containing `needle`.
    fn expect_stdout(&mut self, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self
                .stdout_lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    self.stdout_seen.extend_from_slice(&line);
                    if String::from_utf8_lossy(&line).contains(needle) {
                        return;
                    }
                }
                Err(_) => {
                    let output = self.kill();
                    panic!("client never printed {needle:?}\n{}", output.describe());
                }
            }
        }
    }

    /// Closes stdin and waits for the client to exit.
    fn finish(mut self) -> Output {
        self.close_stdin();
        self.wait_for_exit()
    }

    /// Waits for the client to exit without touching its stdin: while stdin
    /// is open, the client cannot be ending because its input ended.
    fn wait_for_exit(&mut self) -> Output {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self
                .stdout_lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.stdout_seen.extend_from_slice(&line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let output = self.kill();
                    panic!("client did not exit in time\n{}", output.describe());
                }
            }
        }
        // stdout is closed, so the client is exiting; stderr closes with it.
        let stderr = self
            .stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        let status = self.child.wait().expect("wait for the client");
        self.output(status, stderr)
    }

    fn kill(&mut self) -> Output {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the killed client");
        while let Ok(line) = self.stdout_lines.recv_timeout(Duration::from_secs(1)) {
            self.stdout_seen.extend_from_slice(&line);
        }
        let stderr = self
            .stderr
            .recv_timeout(Duration::from_secs(1))
            .unwrap_or_default();
        self.output(status, stderr)
    }

    fn output(&mut self, status: ExitStatus, stderr: Vec<u8>) -> Output {
        let stdout_bytes = std::mem::take(&mut self.stdout_seen);
        Output {
            status,
            stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
            stdout_bytes,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

/// A raw protocol connection: a user like `nc`, or the fake server's side.
struct Peer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Peer {
    fn connect(addr: SocketAddr) -> Peer {
        Peer::new(TcpStream::connect(addr).expect("connect to the server"))
    }

    fn new(stream: TcpStream) -> Peer {
        // Short reads so the overall deadline in `read_line` is honoured.
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("set read timeout");
        let writer = stream.try_clone().expect("clone the stream");
        Peer {
            reader: BufReader::new(stream),
            writer,
        }
    }

    fn send(&mut self, line: &[u8]) {
        self.writer.write_all(line).expect("send to the peer");
    }

    /// The next line without its `\n`, or `None` at end of stream.
    fn read_line(&mut self) -> Option<String> {
        let deadline = Instant::now() + TIMEOUT;
        let mut line = Vec::new();
        loop {
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(_) if line.ends_with(b"\n") => {
                    line.pop();
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read from the peer: {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "no complete line within {TIMEOUT:?}; got {:?}",
                String::from_utf8_lossy(&line)
            );
        }
    }

    /// Reads lines until one satisfies `wanted`, and returns it.
    fn expect(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let mut seen = Vec::new();
        loop {
            match self.read_line() {
                Some(line) if wanted(&line) => return line,
                Some(line) => seen.push(line),
                None => panic!("connection closed before {what}; saw {seen:?}"),
            }
        }
    }

    /// Connects to the real server and waits to be welcomed; returns the nick.
    fn welcomed(addr: SocketAddr) -> (Peer, String) {
        let mut peer = Peer::connect(addr);
        let welcome = peer.expect("the welcome", |l| l.starts_with("* welcome "));
        let nick = welcome["* welcome ".len()..].to_string();
        (peer, nick)
    }

    /// Welcomed as `bob`, so other clients can address it.
    fn bob(addr: SocketAddr) -> Peer {
        let (mut bob, guest) = Peer::welcomed(addr);
        bob.send(b":nick bob\n");
        let renamed = format!("* {guest} is now known as bob");
        bob.expect(&renamed, |l| l == renamed);
        bob
    }
}

/// A one-connection server following `script`, which returns what the test
/// wants to check afterwards (usually the lines the client sent).
fn fake_server<T: Send + 'static>(
    script: impl FnOnce(Peer) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake server");
    let addr = listener.local_addr().expect("fake server address");
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept the client");
        script(Peer::new(stream))
    });
    (addr, handle)
}

/// Reads the client's lines up to and including `:quit`.
fn lines_until_quit(peer: &mut Peer) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(line) = peer.read_line() {
        let quit = line.to_ascii_lowercase().starts_with(":quit");
        lines.push(line);
        if quit {
            break;
        }
    }
    lines
}

fn real_server(password: Option<&str>) -> loopchat::RunningServer {
    let mut config = loopchat::Config::ephemeral();
    config.password = password.map(String::from);
    loopchat::Server::bind(config)
        .expect("bind the server")
        .spawn()
        .expect("start the server")
}

/// Closes the raw connection first: on shutdown the server waits (up to its
/// close timeout) for each peer to close its side, and `bob` never would.
fn stop(server: loopchat::RunningServer, bob: Peer) {
    drop(bob);
    server.stop().expect("stop the server");
}

fn assert_clean_exit(output: &Output) {
    assert!(output.status.success(), "{}", output.describe());
    assert!(output.stdout.contains("* bye"), "{}", output.describe());
    assert!(!output.stderr.contains("panicked"), "{}", output.describe());
}

#[test]
fn piped_line_reaches_the_room_and_the_client_leaves_cleanly() {
    let server = real_server(None);
    let addr = server.addr();
    let addr_arg = addr.to_string();
    let (mut bob, _) = Peer::welcomed(addr);

    let output = Client::run(&["--addr", &addr_arg], "hello there\n");

    assert_clean_exit(&output);
    let hint = format!("connected to {addr}; type :help for commands, :quit to leave");
    assert!(output.stderr.contains(&hint), "{}", output.describe());
    // stdout is the server's lines only: the hint is not there.
    assert!(
        !output.stdout.contains("connected to"),
        "{}",
        output.describe()
    );
    let welcome = output
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("* welcome "))
        .unwrap_or_else(|| panic!("no welcome\n{}", output.describe()))
        .to_string();
    let expected = format!("{welcome}: hello there");
    bob.expect(&expected, |l| l == expected);
    let left = format!("* {welcome} left #lobby");
    bob.expect(&left, |l| l == left);
    stop(server, bob);
}

#[test]
fn nick_is_taken_before_the_piped_private_message() {
    let server = real_server(None);
    let addr = server.addr().to_string();
    let mut bob = Peer::bob(server.addr());

    let output = Client::run(&["--addr", &addr, "--nick", "alice"], ":pm bob hi\n");

    assert_clean_exit(&output);
    assert!(
        output.stdout.contains("is now known as alice"),
        "{}",
        output.describe()
    );
    bob.expect("[pm] alice: hi", |l| l == "[pm] alice: hi");
    stop(server, bob);
}

#[test]
fn control_characters_from_the_server_are_escaped() {
    let (addr, server) = fake_server(|mut peer| {
        peer.send(b"* welcome guest1\n");
        peer.send("mallory: \x1b[31mred\u{9b}2J\x07\x7f\tend\n".as_bytes());
        peer.send(b"mallory: bad \xff utf8 and a \x1b]0;title\x07\n");
        let lines = lines_until_quit(&mut peer);
        peer.send(b"* bye\n");
        lines
    });

    let output = Client::run(&["--addr", &addr.to_string()], "");

    assert_clean_exit(&output);
    assert!(
        output
            .stdout
            .contains("mallory: \\x1b[31mred\\u{9b}2J\\x07\\x7f\tend\n"),
        "{}",
        output.describe()
    );
    assert!(
        output
            .stdout
            .contains("mallory: bad \u{fffd} utf8 and a \\x1b]0;title\\x07\n"),
        "{}",
        output.describe()
    );
    let raw = &output.stdout_bytes;
    assert!(!raw.contains(&0x1b), "raw ESC on stdout: {raw:?}");
    assert!(!raw.contains(&0x07), "raw BEL on stdout: {raw:?}");
    assert!(!raw.contains(&0x7f), "raw DEL on stdout: {raw:?}");
    assert!(
        !raw.windows(2).any(|w| w == [0xc2, 0x9b]),
        "raw CSI on stdout: {raw:?}"
    );
    assert_eq!(server.join().expect("fake server"), [":quit"]);
}

#[test]
fn piped_lines_wait_for_the_welcome_and_follow_the_nick() {
    let (addr, server) = fake_server(|mut peer| {
        // Nothing may arrive before the welcome; the first line after it
        // must be the nick, then stdin in order, then the automatic :quit.
        peer.send(b"* welcome guest1\n");
        let lines = lines_until_quit(&mut peer);
        peer.send(b"* bye\n");
        lines
    });

    let output = Client::run(
        &["--addr", &addr.to_string(), "--nick", "alice"],
        "one\r\n\ntwo\nno newline at the end",
    );

    assert_clean_exit(&output);
    assert_eq!(
        server.join().expect("fake server"),
        [
            ":nick alice",
            "one\r",
            "",
            "two",
            "no newline at the end",
            ":quit"
        ]
    );
}

#[test]
fn typed_quit_with_a_reason_ends_the_session() {
    let (addr, server) = fake_server(|mut peer| {
        peer.send(b"* welcome guest1\n");
        let lines = lines_until_quit(&mut peer);
        peer.send(b"* bye\n");
        // Anything after the :quit would show up here before the close.
        let after: Vec<String> = std::iter::from_fn(|| peer.read_line()).collect();
        (lines, after)
    });

    let output = Client::run(
        &["--addr", &addr.to_string()],
        "before\n:QUIT gone fishing\nafter\n",
    );

    assert_clean_exit(&output);
    let (lines, after) = server.join().expect("fake server");
    assert_eq!(lines, ["before", ":QUIT gone fishing"]);
    assert!(after.is_empty(), "sent after :quit: {after:?}");
}

#[test]
fn lines_arrive_while_stdin_stays_open() {
    let server = real_server(None);
    let addr = server.addr().to_string();
    let mut bob = Peer::bob(server.addr());

    let mut client = Client::spawn(&["--addr", &addr, "--nick", "alice"]);
    // Bob sees alice arrive only once she is in the room and named.
    bob.expect("alice's nick", |l| l.ends_with("is now known as alice"));
    bob.send(b"are you there?\n");
    client.expect_stdout("bob: are you there?");
    client.write_stdin("yes\n");
    bob.expect("alice: yes", |l| l == "alice: yes");
    client.close_stdin();
    let output = client.finish();

    assert_clean_exit(&output);
    bob.expect("alice leaving", |l| l == "* alice left #lobby");
    stop(server, bob);
}

#[test]
fn unreachable_server_is_reported_without_a_panic() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
        // Dropped here: nothing listens on this port any more.
    };

    let output = Client::run(&["--addr", &addr.to_string()], "hi\n");

    assert_eq!(output.status.code(), Some(2), "{}", output.describe());
    let expected = format!("cannot connect to {addr}: ");
    assert!(output.stderr.contains(&expected), "{}", output.describe());
    assert!(
        output
            .stderr
            .contains("is the server running? start it with cargo run --release"),
        "{}",
        output.describe()
    );
    assert!(!output.stderr.contains("panicked"), "{}", output.describe());
    assert!(output.stdout.is_empty(), "{}", output.describe());
}

#[test]
fn vanishing_server_is_reported() {
    let (addr, server) = fake_server(|mut peer| {
        peer.send(b"* welcome guest1\n");
        // Dropping the peer closes the connection.
    });

    // Stdin stays open: the client must notice the close by itself.
    let mut client = Client::spawn(&["--addr", &addr.to_string()]);
    server.join().expect("fake server");
    let output = client.wait_for_exit();

    assert_eq!(output.status.code(), Some(1), "{}", output.describe());
    assert!(
        output
            .stderr
            .contains(&format!("* disconnected from {addr}")),
        "{}",
        output.describe()
    );
    assert!(
        output.stdout.contains("* welcome guest1"),
        "{}",
        output.describe()
    );
    assert!(!output.stderr.contains("panicked"), "{}", output.describe());
}

#[test]
fn full_server_is_reported() {
    let (addr, server) = fake_server(|mut peer| {
        peer.send(b"! server full\n");
    });

    let mut client = Client::spawn(&["--addr", &addr.to_string()]);
    server.join().expect("fake server");
    let output = client.wait_for_exit();

    assert_eq!(output.status.code(), Some(1), "{}", output.describe());
    assert!(
        output.stdout.contains("! server full"),
        "{}",
        output.describe()
    );
    assert!(
        output
            .stderr
            .contains(&format!("* disconnected from {addr}")),
        "{}",
        output.describe()
    );
}

#[test]
fn wrong_password_is_reported() {
    let (addr, server) = fake_server(|mut peer| {
        peer.send(b"* password required\n");
        let auth = peer.read_line();
        peer.send(b"! wrong password\n");
        auth
    });

    let output = Client::run(&["--addr", &addr.to_string(), "--password", "nope"], "hi\n");

    assert_eq!(output.status.code(), Some(1), "{}", output.describe());
    assert!(
        output.stdout.contains("! wrong password"),
        "{}",
        output.describe()
    );
    assert!(
        output.stderr.contains("refused the password"),
        "{}",
        output.describe()
    );
    assert_eq!(
        server.join().expect("fake server").as_deref(),
        Some(":auth nope")
    );
}

#[test]
fn password_comes_from_the_environment() {
    let (addr, server) = fake_server(|mut peer| {
        peer.send(b"* password required\n");
        let auth = peer.read_line();
        peer.send(b"* welcome guest1\n");
        let lines = lines_until_quit(&mut peer);
        peer.send(b"* bye\n");
        (auth, lines)
    });

    let mut client = Client::spawn_with_env(&["--addr", &addr.to_string()], Some("s3cret"));
    client.write_stdin("hi\n");
    client.close_stdin();
    let output = client.finish();

    assert_clean_exit(&output);
    let (auth, lines) = server.join().expect("fake server");
    assert_eq!(auth.as_deref(), Some(":auth s3cret"));
    assert_eq!(lines, ["hi", ":quit"]);
}

#[test]
fn long_server_lines_are_printed_whole() {
    let names: Vec<String> = (0..20_000).map(|i| format!("user{i}")).collect();
    let users = format!("* users in #lobby: {}", names.join(" "));
    let expected = users.clone();
    let (addr, server) = fake_server(move |mut peer| {
        peer.send(b"* welcome guest1\n");
        peer.send(format!("{users}\n").as_bytes());
        lines_until_quit(&mut peer);
        peer.send(b"* bye\n");
    });

    let output = Client::run(&["--addr", &addr.to_string()], "");

    assert_clean_exit(&output);
    assert!(expected.len() > 100_000);
    assert!(
        output.stdout.lines().any(|l| l == expected),
        "the long line was not printed whole ({} bytes of stdout)",
        output.stdout.len()
    );
    server.join().expect("fake server");
}

#[test]
fn password_protected_server() {
    let server = real_server(Some("secret"));
    let addr = server.addr().to_string();
    let mut bob = Peer::connect(server.addr());
    bob.expect("the password prompt", |l| l == "* password required");
    bob.send(b":auth secret\n");
    bob.expect("the welcome", |l| l.starts_with("* welcome "));

    let output = Client::run(&["--addr", &addr, "--password", "secret"], "hi\n");

    assert_clean_exit(&output);
    assert!(
        !output.stdout.contains("authenticate first"),
        "{}",
        output.describe()
    );
    bob.expect("the chat line", |l| l.ends_with(": hi"));
    stop(server, bob);
}

#[test]
fn tls_with_a_ca_file_chats() {
    let pki = common::tls::TestPki::new();
    let server = common::start_with(|config| {
        config.tls_cert = Some(pki.cert_file.clone());
        config.tls_key = Some(pki.key_file.clone());
    });
    let (mut bob, _) = Peer::welcomed(server.addr());
    let tls_port = server.tls_addr().expect("TLS address").port();
    let addr_arg = format!("localhost:{tls_port}");
    let ca = pki.ca_file.display().to_string();

    let output = Client::run(&["--tls", "--ca", &ca, "--addr", &addr_arg], "over tls\n");

    assert_clean_exit(&output);
    let welcome = output
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("* welcome "))
        .unwrap_or_else(|| panic!("no welcome\n{}", output.describe()))
        .to_string();
    let expected = format!("{welcome}: over tls");
    bob.expect(&expected, |l| l == expected);
    stop(server, bob);
}

#[test]
fn tls_with_an_untrusted_certificate_is_a_one_line_error() {
    let pki = common::tls::TestPki::new();
    let server = common::start_with(|config| {
        config.tls_cert = Some(pki.cert_file.clone());
        config.tls_key = Some(pki.key_file.clone());
    });
    let tls_port = server.tls_addr().expect("TLS address").port();
    let addr_arg = format!("localhost:{tls_port}");
    // The system's roots do not know the test CA; neither does a CA file
    // naming another one.
    let other = common::tls::TestPki::new();
    let other_ca = other.ca_file.display().to_string();
    for args in [
        vec!["--tls", "--addr", &addr_arg],
        vec!["--tls", "--ca", &other_ca, "--addr", &addr_arg],
    ] {
        let output = Client::run(&args, "never sent\n");
        assert_eq!(output.status.code(), Some(2), "{}", output.describe());
        assert!(
            output.stderr.contains("invalid peer certificate"),
            "{}",
            output.describe()
        );
        assert_eq!(
            output.stderr.trim_end().lines().count(),
            1,
            "{}",
            output.describe()
        );
        assert!(!output.stderr.contains("panicked"), "{}", output.describe());
        assert!(output.stdout.is_empty(), "{}", output.describe());
    }
}

/// `--tls` to the plain port: the server answers in plain text, and the
/// client says so in one line.
#[test]
fn tls_to_the_plain_port_is_a_one_line_error() {
    let server = common::start();
    let addr_arg = format!("localhost:{}", server.addr().port());
    let pki = common::tls::TestPki::new();
    let ca = pki.ca_file.display().to_string();
    let output = Client::run(&["--tls", "--ca", &ca, "--addr", &addr_arg], "never sent\n");
    assert_eq!(output.status.code(), Some(2), "{}", output.describe());
    assert!(
        output
            .stderr
            .contains("answered in plain text: not a TLS port"),
        "{}",
        output.describe()
    );
    assert_eq!(
        output.stderr.trim_end().lines().count(),
        1,
        "{}",
        output.describe()
    );
    assert!(output.stdout.is_empty(), "{}", output.describe());
}

#[test]
fn an_idle_client_pings_and_does_not_print_the_pong() {
    let (addr, server) = fake_server(|mut peer| {
        peer.send(b"* welcome guest1\n");
        let ping = peer.read_line();
        peer.send(b"* pong keepalive\n");
        peer.send(b"bob: after the pong\n");
        let lines = lines_until_quit(&mut peer);
        peer.send(b"* bye\n");
        (ping, lines)
    });

    // Stdin stays open and silent, so the client is idle.
    let mut client = Client::spawn(&["--addr", &addr.to_string(), "--keepalive", "1"]);
    client.expect_stdout("bob: after the pong");
    let output = client.finish();

    assert_clean_exit(&output);
    assert!(
        !output.stdout.contains("pong keepalive"),
        "{}",
        output.describe()
    );
    let (ping, lines) = server.join().expect("fake server");
    assert_eq!(ping.as_deref(), Some(":ping keepalive"));
    assert_eq!(lines, [":quit"]);
}

#[test]
fn a_piped_e2e_line_is_never_sent_in_the_clear() {
    let server = real_server(None);
    let addr = server.addr().to_string();
    let mut bob = Peer::bob(server.addr());

    let output = Client::run(
        &["--addr", &addr, "--nick", "alice"],
        ":e2e bob the canary 31337\n:E2E bob again\n:pm bob after\n",
    );

    assert_clean_exit(&output);
    // Had either line gone out, the server would have answered it (an
    // unknown command today, a relay later) before the `:pm`.
    bob.expect("[pm] alice: after", |l| l == "[pm] alice: after");
    assert!(
        !output.stdout.contains("e2e") && !output.stdout.contains("canary"),
        "{}",
        output.describe()
    );
    assert_eq!(
        output
            .stderr
            .matches("not sent: end-to-end messages")
            .count(),
        2,
        "{}",
        output.describe()
    );
    stop(server, bob);
}
