//! The PROXY protocol over real sockets: from a trusted proxy, the address
//! a v1 or v2 header names is the one per-address limits, password lockouts
//! and logs see; untrusted and malformed headers close only their own
//! connection; without `--trusted-proxy` nothing changes; and a real
//! HAProxy with `send-proxy-v2` in front of the server.

mod common;

use common::{start_with, tool_or_skip, Client, Lines, ServerProcess, READ_TIMEOUT};
use loopchat::net::proxy::V2_SIGNATURE;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A v1 header naming `client` (IPv4) as the source.
fn v1(client: &str) -> Vec<u8> {
    let (ip, port) = client.split_once(':').unwrap();
    format!("PROXY TCP4 {ip} 127.0.0.1 {port} 7878\r\n").into_bytes()
}

/// A v2 PROXY header over TCP/IPv4 naming `client` as the source, with a
/// TLV after the addresses (HAProxy may send some; they are skipped).
fn v2(client: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(client) = client else {
        panic!("IPv4 only here")
    };
    let mut block = client.ip().octets().to_vec();
    block.extend_from_slice(&[127, 0, 0, 1]);
    block.extend_from_slice(&client.port().to_be_bytes());
    block.extend_from_slice(&7878u16.to_be_bytes());
    block.extend_from_slice(&[0x04, 0x00, 0x02, 0, 0]); // PP2_TYPE_NOOP
    let mut header = V2_SIGNATURE.to_vec();
    header.extend_from_slice(&[0x21, 0x11]);
    header.extend_from_slice(&(block.len() as u16).to_be_bytes());
    header.extend_from_slice(&block);
    header
}

/// Connects to `addr` and sends `header` first, as a proxy does.
fn through_proxy(addr: SocketAddr, header: &[u8]) -> Client {
    let mut client = Client::connect_raw(addr);
    client.send_bytes(header);
    client
}

#[test]
fn v1_real_addresses_count_for_the_per_address_limit_and_the_logs() {
    let server = ServerProcess::start(
        &["--trusted-proxy", "127.0.0.1", "--max-per-address", "1"],
        None,
    );
    let mut first = through_proxy(server.addr, &v1("192.0.2.1:4001"));
    let nick = first.read_welcome();
    let line = server.expect_log(&format!("connected as {nick}"));
    assert!(line.contains("192.0.2.1:4001: connected"), "{line}");
    // The same client address again, through the same proxy: over its limit.
    let mut second = through_proxy(server.addr, &v1("192.0.2.1:4002"));
    second.expect("! too many connections from your address");
    let line = server.expect_log("rejected");
    assert!(line.contains("192.0.2.1:4002: rejected"), "{line}");
    // Another client behind the same proxy is its own address.
    let mut third = through_proxy(server.addr, &v1("192.0.2.2:4003"));
    third.read_welcome();
}

#[test]
fn v2_real_addresses_count_for_the_password_lockout() {
    let server = start_with(|config| {
        config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        config.password = Some("pw".into());
        config.guard.auth_max_failures = 1;
    });
    let attacker: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    let mut wrong = through_proxy(server.addr(), &v2(attacker));
    wrong.expect("* password required");
    wrong.send(":auth guess");
    let lines = wrong.read_to_close();
    assert!(
        lines.iter().any(|l| l.starts_with("! too many attempts")),
        "{lines:?}"
    );
    // The attacker's address is locked out, even with the right password.
    let mut again = through_proxy(server.addr(), &v2("198.51.100.7:5001".parse().unwrap()));
    again.expect("* password required");
    again.send(":auth pw");
    assert!(again
        .line()
        .starts_with("! too many attempts from your address"));
    // Everyone else behind the same proxy is not.
    let mut other = through_proxy(server.addr(), &v2("198.51.100.8:5002".parse().unwrap()));
    other.expect("* password required");
    other.send(":auth pw");
    other.read_welcome();
}

#[test]
fn a_header_split_across_reads_is_waited_for() {
    let server = start_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    });
    let header = v2("203.0.113.5:7000".parse().unwrap());
    let mut client = Client::connect_raw(server.addr());
    client.send_bytes(&header[..7]);
    // Nothing comes back while the header is incomplete.
    client
        .reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = client.reader.get_mut().read(&mut byte);
    assert!(
        matches!(&early, Err(err) if err.kind() == std::io::ErrorKind::WouldBlock
            || err.kind() == std::io::ErrorKind::TimedOut),
        "{early:?}"
    );
    client
        .reader
        .get_ref()
        .set_read_timeout(Some(READ_TIMEOUT))
        .unwrap();
    client.send_bytes(&header[7..]);
    // The line sent right behind the header is the client's own.
    client.send_bytes(b":nick behind\n");
    client.read_welcome();
    client.expect(&format!("* {} is now known as behind", client.nick));
}

#[test]
fn an_untrusted_header_closes_only_its_connection() {
    let server = start_with(|config| {
        config.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    });
    let mut bystander = Client::named(server.addr(), "bystander");
    for header in [v1("192.0.2.9:1"), v2("192.0.2.9:1".parse().unwrap())] {
        // Not from 10/8: a direct client, which must not name an address.
        let mut spoofer = Client::connect(server.addr());
        spoofer.send_bytes(&header);
        spoofer.read_to_close();
        bystander.skip_until(&format!("* {} left #lobby", spoofer.nick));
    }
    bystander.send("still here");
    bystander.sync();
}

#[test]
fn a_malformed_header_from_a_trusted_proxy_closes_only_its_connection() {
    let server = ServerProcess::start(
        &["--trusted-proxy", "127.0.0.1", "--close-timeout", "1"],
        None,
    );
    let mut good = through_proxy(server.addr, &v1("192.0.2.3:1"));
    good.read_welcome();
    for bad in [
        &b"PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n"[..],
        b"hello, no header\n",
        &[
            0x0d, 0x0a, 0x0d, 0x0a, 0, 0x0d, 0x0a, b'Q', b'U', b'I', b'T', b'\n', 0x21, 0x99, 0, 0,
        ],
    ] {
        let mut client = through_proxy(server.addr, bad);
        assert!(client.read_to_close().is_empty(), "closed without a word");
        server.expect_log("closed: bad PROXY header");
    }
    // A proxied connection that sends nothing is closed after the close
    // timeout.
    let mut silent = Client::connect_raw(server.addr);
    assert!(silent.read_to_close().is_empty(), "closed without a word");
    server.expect_log("closed: no PROXY header in time");
    good.send("fine");
    good.sync();
}

#[test]
fn without_trusted_proxies_a_proxy_line_is_just_chat() {
    let server = start_with(|_| {});
    let mut listener = Client::named(server.addr(), "listener");
    let mut talker = Client::named(server.addr(), "talker");
    talker.send("PROXY TCP4 192.0.2.1 127.0.0.1 1 2");
    listener.skip_until("talker: PROXY TCP4 192.0.2.1 127.0.0.1 1 2");
}

#[test]
fn the_web_address_takes_the_header_too() {
    let server = start_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    });
    let web = server.web_addr().expect("a web address");
    let mut stream = TcpStream::connect(web).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut request = v1("192.0.2.4:9");
    request.extend_from_slice(b"GET / HTTP/1.1\r\nHost: chat\r\nConnection: close\r\n\r\n");
    stream.write_all(&request).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response:.80}");
}

#[test]
fn the_tls_address_takes_the_header_before_the_handshake() {
    let pki = common::tls::TestPki::new();
    let mut flags = pki.server_flags();
    flags.extend(["--tls-addr", "127.0.0.1:0", "--trusted-proxy", "127.0.0.1"].map(String::from));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&flags, None);
    let line = server.expect_log("TLS line clients on ");
    let tls_addr: SocketAddr = line
        .rsplit(' ')
        .next()
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no TLS address in {line:?}"));
    let mut tcp = TcpStream::connect(tls_addr).unwrap();
    // The header and the ClientHello may share a segment: the handshake
    // starts right behind the header.
    tcp.write_all(&v1("192.0.2.77:1234")).unwrap();
    let client = common::tls::TlsClient::connect_tcp(tcp, &pki);
    let line = server.expect_log(&format!("connected over TLS as {}", client.nick));
    assert!(line.contains("192.0.2.77:1234: connected"), "{line}");
}

/// A client socket bound to `source` (any 127/8 address is loopback on
/// Linux), connected to `addr`.
fn connect_from(source: &str, addr: SocketAddr) -> Client {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let source: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&source.into()).expect("bind a loopback source");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let writer = stream.try_clone().unwrap();
    Client {
        reader: std::io::BufReader::new(stream),
        writer,
        nick: String::new(),
    }
}

/// HAProxy running a generated configuration; stopped when dropped.
struct Haproxy {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts HAProxy on a free loopback port, forwarding TCP to `backend` with
/// a v2 PROXY header; returns it with its address once it accepts.
fn start_haproxy(binary: &std::path::Path, backend: SocketAddr) -> (Haproxy, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let front: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "global\n  maxconn 100\n\
             defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
             frontend chat\n  bind {front}\n  default_backend loopchat\n\
             backend loopchat\n  server chat {backend} send-proxy-v2\n"
        ),
    )
    .unwrap();
    let child = std::process::Command::new(binary)
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start haproxy");
    let haproxy = Haproxy { child, _dir: dir };
    common::wait_for(READ_TIMEOUT, || TcpStream::connect(front).is_ok());
    (haproxy, front)
}

#[test]
fn haproxy_in_front_with_send_proxy_v2() {
    let Some(binary) = tool_or_skip("haproxy", "the HAProxy test") else {
        return;
    };
    let server = ServerProcess::start(
        &[
            "--trusted-proxy",
            "127.0.0.1/32",
            "--max-per-address",
            "1",
            "--limit-loopback",
        ],
        None,
    );
    let (_haproxy, front) = start_haproxy(&binary, server.addr);
    // Two clients on different loopback addresses, both through HAProxy,
    // which connects from 127.0.0.1 for both: the server sees each one.
    let mut five = connect_from("127.0.0.5", front);
    let nick = five.read_welcome();
    let line = server.expect_log(&format!("connected as {nick}"));
    let port = five.writer.local_addr().unwrap().port();
    assert!(
        line.contains(&format!("127.0.0.5:{port}: connected")),
        "{line}"
    );
    let mut six = connect_from("127.0.0.6", front);
    six.read_welcome();
    // A second client from 127.0.0.5 is over that address's limit.
    let mut again = connect_from("127.0.0.5", front);
    again.expect("! too many connections from your address");
    five.send("through haproxy");
    // The readiness probe of start_haproxy went through HAProxy too: its
    // guest may be seen leaving first.
    six.skip_until(&format!("{nick}: through haproxy"));
}
