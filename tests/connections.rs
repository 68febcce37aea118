//! Connections and credentials: quiet readers stay, dribblers and dead
//! peers go, per-address limits, password lockouts, reserved nicks, logs
//! that name the true reason, and a prompt shutdown. Real sockets on
//! loopback; other loopback addresses (127.0.0.2, ...) stand in for other
//! hosts.

mod common;

use common::{raise_fd_limit, start_with, Client, Lines, ServerProcess, READ_TIMEOUT};
use socket2::{Domain, SockAddr, Socket, Type};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

/// Connects to `addr` from the loopback address `from` (e.g. 127.0.0.2)
/// without reading anything.
fn connect_from(from: &str, addr: SocketAddr) -> Client {
    let from: IpAddr = from.parse().expect("an IP");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SockAddr::from(SocketAddr::new(from, 0)))
        .expect("bind the source address");
    socket.connect(&SockAddr::from(addr)).expect("connect");
    let stream = TcpStream::from(socket);
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    let writer = stream.try_clone().expect("clone");
    Client {
        reader: std::io::BufReader::new(stream),
        writer,
        nick: String::new(),
    }
}

/// Reads with a short timeout and asserts that nothing came and the
/// connection is still open.
fn assert_nothing_for(client: &mut Client, wait: Duration) {
    client
        .reader
        .get_ref()
        .set_read_timeout(Some(wait))
        .expect("timeout");
    match client.try_line() {
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected silence for {wait:?}, got {other:?}"),
    }
    client
        .reader
        .get_ref()
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
}

// ------------------------------------------------------- quiet is not dead

#[test]
fn a_reader_that_never_sends_outlives_the_idle_timeout() {
    let server = start_with(|config| config.idle_timeout = Some(Duration::from_secs(1)));
    let mut reader = Client::named(server.addr(), "reader");
    let mut talker = Client::named(server.addr(), "talker");
    reader.expect("* guest2 joined #lobby");
    reader.expect("* guest2 is now known as talker");
    // Three idle timeouts of silence from the reader: no notice, no close.
    assert_nothing_for(&mut reader, Duration::from_secs(3));
    talker.send("still there?");
    reader.expect("talker: still there?");
    talker.send(":users");
    talker.expect("* users in #lobby: reader talker");
}

#[test]
fn a_dribbler_that_never_finishes_a_line_is_closed() {
    let server = start_with(|config| config.idle_timeout = Some(Duration::from_secs(1)));
    let mut watcher = Client::named(server.addr(), "watcher");
    let mut dribbler = Client::named(server.addr(), "drip");
    watcher.skip_until("* guest2 is now known as drip");
    // One byte every 100 ms, never a newline: under the old rule every
    // byte was activity and this held its slot forever.
    let mut writer = dribbler.writer.try_clone().expect("clone");
    let drip = thread::spawn(move || {
        for _ in 0..100 {
            if writer.write_all(b"x").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    dribbler.expect("! idle timeout");
    dribbler.expect_closed();
    watcher.expect("* drip left #lobby");
    drip.join().expect("dribbler thread");
}

/// Reads an integer socket option of `fd`.
fn sockopt(fd: i32, level: i32, name: i32) -> i32 {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt: {}", io::Error::last_os_error());
    value
}

/// The descriptors of this process that are TCP sockets bound to `local`
/// and connected to `peer`: with an in-process server, its accepted socket.
fn socket_fds(local: SocketAddr, peer: SocketAddr) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let Ok(fd) = entry
            .expect("fd")
            .file_name()
            .to_string_lossy()
            .parse::<i32>()
        else {
            continue;
        };
        // SAFETY: the descriptor is only borrowed for two queries; a
        // ManuallyDrop socket never closes it.
        let socket = std::mem::ManuallyDrop::new(unsafe {
            <Socket as std::os::fd::FromRawFd>::from_raw_fd(fd)
        });
        let addrs = socket.local_addr().ok().zip(socket.peer_addr().ok());
        if let Some((l, p)) = addrs {
            if l.as_socket() == Some(local) && p.as_socket() == Some(peer) {
                found.push(fd);
            }
        }
    }
    found
}

#[test]
fn every_accepted_socket_has_tcp_keepalive() {
    let server = start_with(|config| {
        config.guard.keepalive = Some(loopchat::policy::guard::Keepalive {
            idle: Duration::from_secs(7),
            interval: Duration::from_secs(3),
            count: 4,
        })
    });
    let client = Client::connect(server.addr());
    let client_addr = client.writer.local_addr().expect("local addr");
    let fds = socket_fds(server.addr(), client_addr);
    assert_eq!(fds.len(), 1, "the server's accepted socket");
    let fd = fds[0];
    assert_eq!(sockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
    assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 7);
    assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 3);
    assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 4);
    // Unacknowledged data is held to the same bound: 7 + 3 * 4 s.
    assert_eq!(
        sockopt(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
        19_000
    );
    // The client's own socket is untouched: the option is the server's.
    assert_eq!(
        sockopt(
            client.writer.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE
        ),
        0
    );
}

/// Sets the loopback interface of the calling thread's network namespace
/// up or down.
fn set_loopback_up(up: bool) -> io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request);
        if rc == 0 {
            let flags = &mut request.ifr_ifru.ifru_flags;
            if up {
                *flags |= libc::IFF_UP as libc::c_short;
            } else {
                *flags &= !(libc::IFF_UP as libc::c_short);
            }
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &request);
        }
        let err = io::Error::last_os_error();
        libc::close(fd);
        if rc == 0 {
            Ok(())
        } else {
            Err(err)
        }
    }
}

/// Whether a TCP socket from `local` to `remote` exists in the calling
/// thread's network namespace.
fn tcp_socket_exists(local: SocketAddr, remote: SocketAddr) -> bool {
    let table = std::fs::read_to_string("/proc/thread-self/net/tcp").expect("read net/tcp");
    let hex = |addr: SocketAddr| match addr {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => unreachable!("IPv4 only"),
    };
    let (local, remote) = (hex(local), hex(remote));
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str())
    })
}

/// A peer that vanishes without a FIN or a reset (its network goes away) is
/// found by keepalive and dropped. Runs in a private network namespace of
/// its own thread, whose loopback it can take down without touching
/// anyone else's; needs root (CAP_NET_ADMIN), which CI has.
#[test]
fn a_dead_peer_is_found_by_keepalive() {
    let outcome = thread::spawn(|| {
        // SAFETY: unshare only changes this thread's network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!(
                "cannot create a network namespace: {}",
                io::Error::last_os_error()
            ));
        }
        set_loopback_up(true).map_err(|err| format!("cannot bring lo up: {err}"))?;
        // Threads started from here live in the same namespace.
        let server = start_with(|config| {
            config.guard.keepalive = Some(loopchat::policy::guard::Keepalive {
                idle: Duration::from_secs(1),
                interval: Duration::from_secs(1),
                count: 2,
            })
        });
        let addr = server.addr();
        let ghost = Client::named(addr, "ghost");
        let ghost_addr = ghost.writer.local_addr().expect("local addr");
        assert!(tcp_socket_exists(addr, ghost_addr), "the server's socket");
        set_loopback_up(false).expect("take lo down");
        let started = Instant::now();
        while tcp_socket_exists(addr, ghost_addr) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server still holds the dead peer's socket"
            );
            thread::sleep(Duration::from_millis(100));
        }
        let found_after = started.elapsed();
        set_loopback_up(true).expect("bring lo back up");
        let mut fresh = Client::connect(addr);
        fresh.send(":users");
        let users = fresh.line();
        assert_eq!(users, format!("* users in #lobby: {}", fresh.nick));
        drop(ghost);
        Ok(found_after)
    })
    .join()
    .expect("namespace thread");
    match outcome {
        Ok(after) => println!("dead peer dropped {after:?} after its network went away"),
        Err(reason) if std::env::var("CI").as_deref() != Ok("true") => {
            println!("skipped: {reason}")
        }
        Err(reason) => panic!("{reason} (CI runs as root)"),
    }
}

// ---------------------------------------------------- per-address limit

#[test]
fn per_address_limit_refuses_the_next_and_spares_other_addresses() {
    let server = start_with(|config| {
        config.guard.max_per_address = 3;
        config.guard.limit_loopback = true;
    });
    let addr = server.addr();
    let mut first: Vec<Client> = (0..3).map(|_| Client::connect(addr)).collect();
    let mut fourth = Client::connect_raw(addr);
    fourth.expect("! too many connections from your address");
    fourth.expect_closed();
    // Another address has its own count.
    let mut other = connect_from("127.0.0.2", addr);
    other.read_welcome();
    other.send(":users");
    let users = other.line();
    assert!(users.starts_with("* users in #lobby: "), "{users}");
    // Once one of the three leaves, its address may connect again.
    let mut leaving = first.pop().expect("a client");
    leaving.send(":quit");
    leaving.skip_until("* bye");
    leaving.expect_closed();
    drop(leaving);
    let started = Instant::now();
    loop {
        let mut again = Client::connect_raw(addr);
        let line = again.line();
        if line.starts_with("* welcome ") {
            break;
        }
        assert_eq!(line, "! too many connections from your address");
        assert!(
            started.elapsed() < READ_TIMEOUT,
            "the slot was never given back"
        );
        thread::sleep(Duration::from_millis(20));
    }
    for client in &mut first {
        client.send(":ping ok");
        client.skip_until("* pong ok");
    }
}

#[test]
fn loopback_is_exempt_from_the_per_address_limit_by_default() {
    let server = start_with(|config| config.guard.max_per_address = 2);
    let addr = server.addr();
    let clients: Vec<Client> = (0..5).map(|_| Client::connect(addr)).collect();
    assert_eq!(clients.len(), 5);
}

// ---------------------------------------------------------- passwords

#[test]
fn an_unauthenticated_connection_is_closed_after_the_auth_timeout() {
    let server = start_with(|config| {
        config.password = Some("pw".into());
        config.guard.auth_timeout = Some(Duration::from_secs(1));
    });
    let mut slow = Client::connect_raw(server.addr());
    slow.expect("* password required");
    let mut fast = Client::connect_raw(server.addr());
    fast.expect("* password required");
    fast.send(":auth pw");
    fast.read_welcome();
    slow.expect("! auth timeout");
    slow.expect_closed();
    // An authenticated client is never held to it.
    assert_nothing_for(&mut fast, Duration::from_millis(1500));
    fast.send(":ping");
    fast.expect("* pong");
}

#[test]
fn guessing_locks_the_address_out_and_logs_it_once() {
    let server = ServerProcess::start(
        &[
            "--password",
            "s3cret",
            "--auth-max-failures",
            "4",
            "--auth-lockout",
            "5",
        ],
        None,
    );
    let addr = server.addr;
    // Three wrong on one connection (closed, as always), one more on the
    // next: the fourth from this address locks it out.
    let mut guesser = Client::connect_raw(addr);
    guesser.expect("* password required");
    for guess in ["a", "b"] {
        guesser.send(&format!(":auth {guess}"));
        guesser.expect("! wrong password");
    }
    guesser.send(":auth c");
    guesser.expect("! too many attempts");
    guesser.expect_closed();
    let mut second = Client::connect_raw(addr);
    second.expect("* password required");
    second.send(":auth d");
    second.expect("! wrong password");
    let refusal = second.line();
    assert!(
        refusal.starts_with("! too many attempts from your address, try again in "),
        "{refusal}"
    );
    second.expect_closed();
    server.expect_log("127.0.0.1: 4 wrong passwords, :auth refused for 5 s");
    // Even the right password is refused while the lockout lasts...
    let mut right = Client::connect_raw(addr);
    right.expect("* password required");
    right.send(":auth s3cret");
    let refusal = right.line();
    assert!(
        refusal.starts_with("! too many attempts from your address"),
        "{refusal}"
    );
    right.expect_closed();
    // ...but another address is unaffected.
    let mut other = connect_from("127.0.0.2", addr);
    other.expect("* password required");
    other.send(":auth s3cret");
    other.read_welcome();
    // Once it ends, the right password works again from the locked address.
    let started = Instant::now();
    loop {
        let mut retry = Client::connect_raw(addr);
        retry.expect("* password required");
        retry.send(":auth s3cret");
        let line = retry.line();
        if line.starts_with("* welcome ") {
            break;
        }
        assert!(line.starts_with("! too many attempts from your address"));
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never unlocked"
        );
        thread::sleep(Duration::from_millis(200));
    }
    // One warning for the lockout, none for the refused attempts.
    server.signal(libc::SIGTERM);
    let mut warnings = 0;
    while let Ok(line) = server.log.recv_timeout(READ_TIMEOUT) {
        if line.contains("wrong passwords") {
            warnings += 1;
        }
        if line.contains("shut down") && !line.contains("shutting") {
            break;
        }
    }
    assert_eq!(warnings, 0, "the lockout is logged once");
}

// ---------------------------------------------------------- reserved nicks

#[test]
fn reserved_nicks_are_refused_and_me_cannot_forge_a_server_line() {
    let server = start_with(|_| {});
    let mut forger = Client::connect(server.addr());
    let mut victim = Client::named(server.addr(), "victim");
    forger.skip_until("* guest2 is now known as victim");
    for nick in [
        "server", "Users", "BYE", "password", "welcome", "pong", "you",
    ] {
        forger.send(&format!(":nick {nick}"));
        forger.expect(&format!("! nick {nick} is reserved"));
    }
    forger.send(":me shutting down");
    let seen = victim.line();
    assert_eq!(seen, format!("* {} shutting down", forger.nick));
    assert_ne!(seen, "* server shutting down");
    victim.assert_quiet();
}

// ---------------------------------------------------------------- logs

#[test]
fn disconnect_logs_name_the_true_reason_and_the_nick() {
    let server = ServerProcess::start(&["--close-timeout", "1"], None);
    let addr = server.addr;
    let mut quitter = Client::named(addr, "alice");
    quitter.send(":quit");
    quitter.skip_until("* bye");
    quitter.expect_closed();
    let connected = server.expect_log("connected as");
    assert!(connected.contains(": connected as guest"), "{connected}");
    // Alice never closes her side: the close timeout ends the connection,
    // but it ended because she quit.
    let line = server.expect_log("alice disconnected");
    assert!(line.ends_with("alice disconnected (quit)"), "{line}");
    drop(quitter);
    let mut leaver = Client::named(addr, "bob");
    leaver.half_close();
    leaver.expect_closed();
    let line = server.expect_log("bob disconnected");
    assert!(
        line.ends_with("bob disconnected (closed by peer)"),
        "{line}"
    );
}

#[test]
fn churn_from_one_address_is_summarised() {
    let server = ServerProcess::start(&["--log-lines-per-address", "7"], None);
    let addr = server.addr;
    // 200 connections from 127.0.0.9 that come and go.
    for _ in 0..200 {
        let mut client = connect_from("127.0.0.9", addr);
        client.read_welcome();
        drop(client);
    }
    let mut last = connect_from("127.0.0.9", addr);
    last.read_welcome();
    server.signal(libc::SIGTERM);
    let mut about_churner = 0;
    let mut summaries = Vec::new();
    while let Ok(line) = server.log.recv_timeout(READ_TIMEOUT) {
        if line.contains("127.0.0.9:") {
            about_churner += 1;
        }
        if let Some((_, rest)) = line.split_once("and ") {
            if rest.contains(" more from 127.0.0.9 in the last ") {
                let more: usize = rest
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a count");
                summaries.push((more, line.clone()));
            }
        }
        if line.ends_with("shut down") {
            break;
        }
    }
    assert!(
        !summaries.is_empty(),
        "a summary line for the churning address"
    );
    let more: usize = summaries.iter().map(|(more, _)| more).sum();
    println!("{about_churner} lines logged about 127.0.0.9, then {summaries:?}");
    // One window's share of 7 (or two, should the churn straddle windows).
    assert!(
        (7..=14).contains(&about_churner),
        "{about_churner} lines about one address"
    );
    // 201 connects and 201 disconnects: every one logged or counted.
    assert_eq!(about_churner + more, 402);
}

// ------------------------------------------------------------- shutdown

#[test]
fn sigterm_with_500_readers_that_never_close_tells_all_and_exits_zero() {
    const CLIENTS: usize = 500;
    raise_fd_limit(4 * CLIENTS as u64);
    // A close timeout far past 5 s: shutdown must not wait for it.
    let server = ServerProcess::start(&["--close-timeout", "600"], None);
    let addr = server.addr;
    let mut clients: Vec<Client> = (0..CLIENTS).map(|_| Client::connect(addr)).collect();
    // Everyone is in: the last one's join reached the first.
    let last = clients.last().expect("clients").nick.clone();
    clients[0].skip_until(&format!("* {last} joined #lobby"));
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    for client in &mut clients {
        let lines = client.read_to_close();
        assert_eq!(
            lines.last().map(String::as_str),
            Some("* server shutting down"),
            "{} got {} lines",
            client.nick,
            lines.len()
        );
    }
    let told = signalled.elapsed();
    let status = server.wait_exit(Duration::from_secs(30));
    let exited = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "exit status");
    println!(
        "SIGTERM with {CLIENTS} readers that never close: all told and at EOF after {told:?}, \
         process exited after {exited:?}"
    );
    drop(clients);
}

// ---------------------------------------------------------------- --addr

#[test]
fn addr_accepts_a_host_name() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(["--addr", "localhost:0", "--web-addr", "127.0.0.1:0"])
        .args(["--irc-addr", "off"])
        .args(["--history-file", ":memory:"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let listening = loop {
        let line = rx.recv_timeout(READ_TIMEOUT).expect("a listening line");
        if let Some((_, rest)) = line.split_once("listening on ") {
            break rest
                .split_whitespace()
                .next()
                .expect("an address")
                .to_string();
        }
    };
    let addr: SocketAddr = listening.parse().expect("a socket address");
    assert!(addr.ip().is_loopback(), "localhost resolved to {addr}");
    let mut client = Client::connect(addr);
    client.send(":ping host");
    client.expect("* pong host");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_taken_address_is_named_with_its_listener() {
    // Held open for the whole test, so each run of the binary finds its
    // port taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let cases = [
        ("--addr", "line address"),
        ("--web-addr", "web address"),
        ("--metrics-addr", "metrics address"),
        ("--irc-addr", "IRC address"),
    ];
    for (flag, name) in cases {
        let mut args = vec!["--history-file", ":memory:", flag, &addr];
        for other in ["--addr", "--web-addr", "--irc-addr"] {
            if other != flag {
                args.extend([other, "127.0.0.1:0"]);
            }
        }
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"))
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run the binary");
        assert!(!output.status.success(), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("cannot listen on the {name} {addr}: ")),
            "{flag}: {stderr}"
        );
        assert!(!stderr.contains("listening on"), "{stderr}");
    }
}
