//! TLS: the line protocol over TLS on its own address, next to plain TCP.
//! Real sockets, certificates made by rcgen per test, `openssl s_client`
//! as an outside client, and the real binary where signals are involved.

mod common;
mod ws_support;

use common::tls::{TestPki, TlsClient};
use common::{Client, Lines, ServerProcess, READ_TIMEOUT};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn start_tls(
    pki: &TestPki,
    adjust: impl FnOnce(&mut loopchat::Config),
) -> (loopchat::RunningServer, SocketAddr) {
    let server = common::start_with(|config| {
        config.tls_cert = Some(pki.cert_file.clone());
        config.tls_key = Some(pki.key_file.clone());
        adjust(config);
    });
    let tls_addr = server.tls_addr().expect("a TLS address");
    (server, tls_addr)
}

/// Reads raw bytes until the server closes; panics if it does not within
/// the read timeout. Returns what arrived.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(err) => panic!("the server did not close the connection: {err}"),
        }
    }
}

#[test]
fn tls_client_chats_with_plain_client() {
    let pki = TestPki::new();
    // The burst below is 500 lines: flood control off, so it tests records,
    // not the rate limit.
    let (server, tls_addr) = start_tls(&pki, |config| {
        config.flood = loopchat::policy::limits::FloodLimit::OFF;
    });
    let mut plain = Client::named(server.addr(), "plain");
    let mut tls = TlsClient::connect(tls_addr, &pki);
    assert_eq!(tls.server_certificate(), pki.leaf_der);
    plain.expect(&format!("* {} joined #lobby", tls.nick));
    tls.send(":nick secure");
    tls.expect(&format!("* {} is now known as secure", tls.nick));
    plain.expect(&format!("* {} is now known as secure", tls.nick));
    tls.send("hello from TLS");
    plain.expect("secure: hello from TLS");
    plain.send("hello from TCP");
    tls.expect("plain: hello from TCP");
    plain.send(":pm secure a secret");
    tls.expect("[pm] plain: a secret");
    tls.send(":users");
    tls.expect("* users in #lobby: plain secure");
    // A burst arrives whole and in order (many lines per record).
    for i in 0..500 {
        plain.send(&format!("line {i}"));
    }
    for i in 0..500 {
        tls.expect(&format!("plain: line {i}"));
    }
    // :quit: the goodbye, then close_notify (a clean end, not a truncation).
    tls.send(":quit");
    tls.expect("* bye");
    assert!(
        matches!(tls.try_line(), Ok(None)),
        "closed with close_notify"
    );
    plain.expect("* secure left #lobby");
}

/// The client stream against a server whose records the test chooses: one
/// full 16 KB record, then small ones, all in the socket before the client
/// reads. A read that completed the big record and went on feeding rustls
/// the small ones failed with "received plaintext buffer full" (rustls
/// takes no more TLS while 16 KB of plaintext wait to be read); what
/// rustls cannot take now waits for the next read.
#[test]
fn the_client_stream_reads_a_full_record_then_small_ones() {
    let pki = TestPki::new();
    let config = loopchat::net::tls::load_server_config(&pki.cert_file, &pki.key_file)
        .expect("server config");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (sent_tx, sent_rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut conn = rustls::ServerConnection::new(config).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).unwrap();
        }
        // Each write is a record of its own: 16 KB, then twelve of 1 KB.
        let mut big = vec![b'a'; 16 * 1024 - 1];
        big.push(b'\n');
        conn.writer().write_all(&big).unwrap();
        for i in 0..12 {
            let small = format!("{i} {}\n", "b".repeat(1000));
            conn.writer().write_all(small.as_bytes()).unwrap();
        }
        while conn.wants_write() {
            conn.write_tls(&mut tcp).unwrap();
        }
        sent_tx.send(()).unwrap();
        // Open until the client is done.
        let _ = tcp.read(&mut [0u8; 1]);
    });
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let stream = loopchat_client::tls::connect_client(tcp, "localhost", pki.client_config())
        .expect("handshake");
    // Everything is in the socket before the first read.
    sent_rx.recv().unwrap();
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("the big record");
    assert_eq!(line.len(), 16 * 1024);
    for i in 0..12 {
        line.clear();
        reader.read_line(&mut line).expect("a small record");
        assert!(line.starts_with(&format!("{i} b")), "{i}: {line:.20}");
    }
    drop(reader);
    server.join().unwrap();
}

#[test]
fn the_server_name_is_verified() {
    let pki = TestPki::new();
    let (_server, tls_addr) = start_tls(&pki, |_| {});
    let err = TlsClient::try_connect_raw(tls_addr, "example.com", pki.client_config())
        .err()
        .expect("a certificate for localhost is not one for example.com");
    let message = err.to_string();
    assert!(message.contains("certificate"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    // By IP address too: the certificate names 127.0.0.1.
    let mut by_ip = TlsClient::try_connect_raw(tls_addr, "127.0.0.1", pki.client_config())
        .expect("127.0.0.1 is in the certificate");
    assert!(by_ip.line().starts_with("* welcome "));
    // A client trusting another CA refuses the server.
    let other = TestPki::new();
    let err = TlsClient::try_connect_raw(tls_addr, "localhost", other.client_config())
        .err()
        .expect("an unknown issuer is refused");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
}

#[test]
fn garbage_and_plain_text_on_the_tls_port_close_only_that_connection() {
    let pki = TestPki::new();
    let (server, tls_addr) = start_tls(&pki, |_| {});
    let mut alice = Client::named(server.addr(), "alice");
    let mut bob = TlsClient::connect(tls_addr, &pki);
    alice.expect(&format!("* {} joined #lobby", bob.nick));

    // 2 KB of garbage instead of a ClientHello.
    let garbage: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut junk = TcpStream::connect(tls_addr).unwrap();
    junk.write_all(&garbage).unwrap();
    let reply = read_until_closed(&mut junk);
    // At most an alert record, never a line.
    assert!(reply.is_empty() || reply[0] == 21, "{reply:?}");

    // A person typing the line protocol at the TLS port: one clear line,
    // in the clear, then the close.
    let mut typist = TcpStream::connect(tls_addr).unwrap();
    typist.write_all(b":nick mallory\nhello\n").unwrap();
    let reply = read_until_closed(&mut typist);
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "! this port speaks TLS: connect with TLS (the example client: --tls), or to the plain port\n"
    );

    // The bystanders chat on and saw nobody come or go.
    alice.send("still here");
    bob.expect("alice: still here");
    bob.send("me too");
    alice.expect(&format!("{}: me too", bob.nick));
    assert_eq!(alice.sync(), Vec::<String>::new());
    assert_eq!(bob.sync(), Vec::<String>::new());
}

#[test]
fn a_stalled_handshake_is_closed_at_the_close_timeout() {
    let pki = TestPki::new();
    let close_timeout = Duration::from_secs(1);
    let (server, tls_addr) = start_tls(&pki, |config| config.close_timeout = close_timeout);
    let mut alice = Client::named(server.addr(), "alice");
    let started = Instant::now();
    // One says nothing at all; one sends the start of a record and stops.
    let mut silent = TcpStream::connect(tls_addr).unwrap();
    let mut partial = TcpStream::connect(tls_addr).unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    assert!(read_until_closed(&mut silent).is_empty());
    assert!(read_until_closed(&mut partial).is_empty());
    assert!(
        started.elapsed() >= close_timeout,
        "not before the close timeout"
    );
    assert_eq!(alice.sync(), Vec::<String>::new());
}

#[test]
fn server_full_over_tls_says_so_then_closes_cleanly() {
    let pki = TestPki::new();
    let (_server, tls_addr) = start_tls(&pki, |config| config.max_clients = 1);
    let _first = TlsClient::connect(tls_addr, &pki);
    let mut second = TlsClient::try_connect_raw(tls_addr, "localhost", pki.client_config())
        .expect("the handshake completes");
    second.expect("! server full");
    assert!(
        matches!(second.try_line(), Ok(None)),
        "closed with close_notify"
    );
}

#[test]
fn a_tls_client_that_never_reads_is_cut_off_as_too_slow() {
    let pki = TestPki::new();
    // A flood on purpose: flood control off.
    let (server, tls_addr) = start_tls(&pki, |config| {
        config.max_outbuf_bytes = 64 * 1024;
        config.flood = loopchat::policy::limits::FloodLimit::OFF;
    });
    // A small receive buffer, so the kernel does not absorb the flood.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&tls_addr.into()).unwrap();
    let sleeper = TlsClient::connect_tcp(socket.into(), &pki);
    let mut flooder = Client::named(server.addr(), "flooder");
    let mut writer = flooder.writer.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flood = Arc::clone(&stop);
    let flood = std::thread::spawn(move || {
        let line = format!("{}\n", "x".repeat(1000));
        // Bounded: 100 MB at most; the cut-off comes long before.
        for _ in 0..100_000 {
            if stop_flood.load(Ordering::Relaxed) || writer.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
    });
    flooder.skip_until(&format!("* {} left #lobby (too slow)", sleeper.nick));
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
}

#[test]
fn openssl_s_client_chats() {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is missing in CI: .ci/run installs it"
        );
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let pki = TestPki::new();
    let (server, tls_addr) = start_tls(&pki, |_| {});
    let mut alice = Client::named(server.addr(), "alice");
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &tls_addr.to_string()])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .arg("-CAfile")
        .arg(&pki.ca_file)
        .args(["-verify_return_error", "-quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_client");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = || {
        lines
            .recv_timeout(READ_TIMEOUT)
            .expect("a line from s_client")
    };
    let welcome = next();
    let nick = welcome
        .strip_prefix("* welcome ")
        .expect("welcome")
        .to_string();
    assert_eq!(next(), format!("* {nick} joined #lobby"));
    alice.expect(&format!("* {nick} joined #lobby"));
    stdin.write_all(b"hello from openssl\n").unwrap();
    alice.expect(&format!("{nick}: hello from openssl"));
    alice.send("hi openssl");
    assert_eq!(next(), "alice: hi openssl");
    stdin.write_all(b":quit\n").unwrap();
    assert_eq!(next(), "* bye");
    alice.expect(&format!("* {nick} left #lobby"));
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("s_client did not end after the server closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The binary with TLS on free ports; returns it and its TLS address.
fn start_binary(pki: &TestPki) -> (ServerProcess, SocketAddr) {
    let mut flags = pki.server_flags();
    flags.extend(["--tls-addr".to_string(), "127.0.0.1:0".to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&flags, None);
    let line = server.expect_log("TLS line clients on ");
    let addr = line
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("a TLS address in the log");
    (server, addr)
}

#[test]
fn a_failed_handshake_is_logged_with_its_true_reason() {
    let pki = TestPki::new();
    let (server, tls_addr) = start_binary(&pki);
    // Garbage instead of a ClientHello: a TLS error, not a timeout.
    let mut junk = TcpStream::connect(tls_addr).unwrap();
    junk.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        .unwrap();
    read_until_closed(&mut junk);
    let peer = junk.local_addr().unwrap().to_string();
    let line = server.expect_log(&format!("{peer}: disconnected"));
    assert!(line.ends_with("disconnected (TLS error)"), "{line}");
    // A client that does not trust the certificate aborts the handshake
    // with an alert: a TLS error too.
    let other = TestPki::new();
    let tcp = TcpStream::connect(tls_addr).unwrap();
    let peer = tcp.local_addr().unwrap().to_string();
    assert!(loopchat_client::tls::connect_client(tcp, "localhost", other.client_config()).is_err());
    let line = server.expect_log(&format!("{peer}: disconnected"));
    assert!(line.ends_with("disconnected (TLS error)"), "{line}");
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_connected_clients() {
    let mut pki = TestPki::new();
    let (server, tls_addr) = start_binary(&pki);
    let first_cert = pki.leaf_der.clone();
    let mut early = TlsClient::connect(tls_addr, &pki);
    assert_eq!(early.server_certificate(), first_cert);

    let second_cert = pki.renew();
    assert_ne!(first_cert, second_cert);
    server.signal(libc::SIGHUP);
    server.expect_log("TLS certificate reloaded");
    let mut late = TlsClient::connect(tls_addr, &pki);
    assert_eq!(
        late.server_certificate(),
        second_cert,
        "new handshakes get the new one"
    );
    // The early client is still connected and chatting.
    early.expect(&format!("* {} joined #lobby", late.nick));
    late.send("hello");
    early.expect(&format!("{}: hello", late.nick));
    assert_eq!(early.sync(), Vec::<String>::new());

    // A broken key file: the old certificate stays.
    std::fs::write(&pki.key_file, b"-----BEGIN PRIVATE KEY-----\ngarbage\n").unwrap();
    server.signal(libc::SIGHUP);
    let line = server.expect_log("keeping the old TLS certificate");
    assert!(line.contains("key.pem"), "the log says which file: {line}");
    let later = TlsClient::connect(tls_addr, &pki);
    assert_eq!(later.server_certificate(), second_cert);
    late.sync();
    early.sync();
}

/// A TLS client session to the web address, as a browser would open.
fn https_stream(web: SocketAddr, pki: &TestPki) -> loopchat_client::tls::ClientStream {
    let tcp = TcpStream::connect(web).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    loopchat_client::tls::connect_client(tcp, "localhost", pki.client_config())
        .expect("TLS to the web address")
}

#[test]
fn the_web_address_speaks_https_and_wss() {
    let pki = TestPki::new();
    let (server, tls_addr) = start_tls(&pki, |_| {});
    let web = server.web_addr().expect("a web address");
    let host = format!("localhost:{}", web.port());

    // The page over HTTPS.
    let mut page = https_stream(web, &pki);
    write!(
        page,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    page.read_to_end(&mut response)
        .expect("the page, then close_notify");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("<html"), "{response}");

    // Plain HTTP on the TLS-only web address: an answer a browser can
    // show, in the clear, then the close.
    let mut plain_http = TcpStream::connect(web).unwrap();
    // One write: the server answers the first bytes that are not TLS.
    let _ = plain_http.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
    let reply = String::from_utf8(read_until_closed(&mut plain_http)).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    assert!(
        reply.ends_with("\r\n\r\nthis address speaks HTTPS: open it with https://\n"),
        "{reply}"
    );

    // wss:// with the page's own origin, chatting with TLS and TCP clients.
    let request = ws_support::upgrade_to(&format!("wss://{host}/ws"), &format!("https://{host}"));
    let (mut ws, response) =
        tungstenite::client(request, https_stream(web, &pki)).expect("wss handshake");
    assert_eq!(response.status(), 101);
    let mut next_text = || loop {
        match ws.read().expect("a message") {
            tungstenite::Message::Text(text) => return text.as_str().to_string(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("expected text, got {other:?}"),
        }
    };
    let welcome = next_text();
    let ws_nick = welcome
        .strip_prefix("* welcome ")
        .expect("welcome")
        .to_string();
    assert_eq!(next_text(), format!("* {ws_nick} joined #lobby"));
    let mut line_tls = TlsClient::connect(tls_addr, &pki);
    assert_eq!(next_text(), format!("* {} joined #lobby", line_tls.nick));
    let mut plain = Client::connect(server.addr());
    assert_eq!(next_text(), format!("* {} joined #lobby", plain.nick));
    line_tls.skip_until(&format!("* {} joined #lobby", plain.nick));
    plain.send("hello secure people");
    assert_eq!(next_text(), format!("{}: hello secure people", plain.nick));
    line_tls.expect(&format!("{}: hello secure people", plain.nick));
    ws.send(tungstenite::Message::text("hello from wss"))
        .unwrap();
    line_tls.expect(&format!("{ws_nick}: hello from wss"));
    plain.expect(&format!("{ws_nick}: hello from wss"));

    // The http:// origin is not the page's own on a TLS web address.
    let mut refused = https_stream(web, &pki);
    write!(
        refused,
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = String::new();
    BufReader::new(refused).read_line(&mut head).unwrap();
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
}
