//! The WebSocket section of the protocol, over real sockets: the page and
//! the upgrade on the web address, WebSocket and TCP clients chatting, and
//! every close rule. Frames that break the rules are written by hand
//! ([`ws_support::RawWs`]); well-behaved clients are tungstenite's.

mod common;
mod ws_support;

use common::{start, start_with, Client, Lines};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use ws_support::*;

fn web(server: &loopchat::RunningServer) -> std::net::SocketAddr {
    server.web_addr().expect("the web address is on by default")
}

#[test]
fn handshake_answers_the_rfc_accept_key() {
    let server = start();
    let addr = web(&server);
    let (head, _, _stream) = http_request(addr, &upgrade_request(addr, ""));
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains(&format!("Sec-WebSocket-Accept: {SAMPLE_ACCEPT}\r\n")));
    assert!(head.to_ascii_lowercase().contains("upgrade: websocket\r\n"));
}

#[test]
fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let server = start();
    let addr = web(&server);
    let page = http_response(
        addr,
        &format!("GET /?room=x HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    );
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    let lower = page.to_ascii_lowercase();
    assert!(lower.contains("content-type: text/html"));
    assert!(lower.contains("content-security-policy: default-src 'none'; script-src 'self';"));
    assert!(lower.contains("x-content-type-options: nosniff"));
    assert!(lower.contains("referrer-policy: no-referrer"));
    assert!(lower.contains("frame-ancestors 'none'"));
    assert!(
        page.contains("<script src=\"/app.js\""),
        "the page links its script"
    );
    assert!(!page.contains("<script>"), "no inline script");
    for (path, kind) in [("/app.js", "text/javascript"), ("/style.css", "text/css")] {
        let asset = http_response(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
        );
        assert!(asset.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {asset}");
        assert!(asset.to_ascii_lowercase().contains(kind), "{path}");
    }
    let head = http_response(addr, &format!("HEAD / HTTP/1.1\r\nHost: {addr}\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body");
}

#[test]
fn unknown_paths_are_404_wrong_methods_405_big_heads_431() {
    let server = start();
    let addr = web(&server);
    let status = |request: String| {
        let response = http_response(addr, &request);
        response[9..12].to_string()
    };
    assert_eq!(
        status(format!("GET /nope HTTP/1.1\r\nHost: {addr}\r\n\r\n")),
        "404"
    );
    assert_eq!(
        status(format!(
            "POST /nope HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
        )),
        "404"
    );
    assert_eq!(
        status(format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
        )),
        "405"
    );
    assert_eq!(
        status(format!("PUT /ws HTTP/1.1\r\nHost: {addr}\r\n\r\n")),
        "405"
    );
    assert_eq!(
        status(format!("HEAD /ws HTTP/1.1\r\nHost: {addr}\r\n\r\n")),
        "405"
    );
    assert_eq!(
        status(format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\n\r\n")),
        "426"
    );
    // Fuzzing finding (docs/fuzzing.md): errors to HEAD had a body.
    let head = http_response(
        addr,
        &format!("HEAD /nope HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    assert_eq!(status(big), "431");
    // A head that never ends is refused once past the limit, not buffered.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nX: ").unwrap();
    let _ = stream.write_all(&[b'a'; 10_000]);
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    assert_eq!(status("nonsense\r\n\r\n".to_string()), "400");
}

#[test]
fn a_slow_request_head_is_closed_within_the_close_timeout() {
    let server = start_with(|c| c.close_timeout = Duration::from_millis(300));
    let addr = web(&server);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut rest = Vec::new();
    let n = stream
        .read_to_end(&mut rest)
        .expect("closed, not timed out");
    assert_eq!(n, 0, "nothing is answered to an unfinished head");
}

#[test]
fn websocket_and_tcp_clients_chat_both_ways() {
    let server = start();
    let mut tcp = Client::named(server.addr(), "tcpuser");
    let mut ws = tungstenite_client(web(&server));
    let ws_nick = tung_welcome(&mut ws);
    tcp.expect(&format!("* {ws_nick} joined #lobby"));
    tung_send(&mut ws, ":nick webuser");
    assert_eq!(
        tung_text(&mut ws),
        format!("* {ws_nick} is now known as webuser")
    );
    tcp.expect(&format!("* {ws_nick} is now known as webuser"));
    tung_send(&mut ws, "hello from the browser");
    tcp.expect("webuser: hello from the browser");
    tcp.send("hello from the terminal");
    assert_eq!(tung_text(&mut ws), "tcpuser: hello from the terminal");
    tung_send(&mut ws, ":me waves");
    tcp.expect("* webuser waves");
    // :pm across, both ways.
    tung_send(&mut ws, ":pm tcpuser psst");
    tcp.expect("[pm] webuser: psst");
    tcp.send(":msg webuser hi back");
    assert_eq!(tung_text(&mut ws), "[pm] tcpuser: hi back");
    tung_send(&mut ws, ":users");
    assert_eq!(tung_text(&mut ws), "* users in #lobby: tcpuser webuser");
}

#[test]
fn a_trailing_newline_is_dropped_an_inner_one_is_a_control_character() {
    let server = start();
    let mut tcp = Client::named(server.addr(), "reader");
    let mut ws = RawWs::connect(web(&server));
    tcp.expect(&format!("* {} joined #lobby", ws.nick));
    ws.send("one\n");
    tcp.expect(&format!("{}: one", ws.nick));
    ws.send("two\r\n");
    tcp.expect(&format!("{}: two", ws.nick));
    ws.send("three\n\n");
    tcp.expect(&format!("{}: three\u{fffd}", ws.nick));
    ws.send("a\nb\rc");
    tcp.expect(&format!("{}: a\u{fffd}b\u{fffd}c", ws.nick));
    ws.send("\n");
    ws.send("");
    assert!(ws.sync().is_empty(), "empty messages are ignored");
    tcp.assert_quiet();
}

#[test]
fn a_too_long_message_is_answered_and_the_connection_stays_open() {
    // 2 MB of frames at once: flood control off, so it is read in one go.
    let server = start_with(|c| {
        c.max_line_bytes = 100;
        c.flood = loopchat::policy::limits::FloodLimit::OFF;
    });
    let mut tcp = Client::named(server.addr(), "reader");
    let mut ws = RawWs::connect(web(&server));
    tcp.expect(&format!("* {} joined #lobby", ws.nick));
    ws.send(&"x".repeat(100));
    tcp.expect(&format!("{}: {}", ws.nick, "x".repeat(100)));
    ws.send(&format!("{}\r\n", "y".repeat(100)));
    tcp.expect(&format!("{}: {}", ws.nick, "y".repeat(100)));
    ws.send(&"z".repeat(101));
    assert_eq!(ws.text(), "! line too long (max 100 bytes)");
    // Over many frames and far past any buffer: answered once, discarded.
    ws.frame(TEXT, &[b'q'; 50]);
    for _ in 0..200 {
        ws.frame(CONT, &[b'q'; 10_000]);
    }
    ws.frame(FIN | CONT, b"end");
    assert_eq!(ws.text(), "! line too long (max 100 bytes)");
    ws.send("still here");
    tcp.expect(&format!("{}: still here", ws.nick));
    tcp.assert_quiet();
}

fn expect_violation_close(frames: &[Vec<u8>], code: u16) {
    let server = start();
    let mut tcp = Client::named(server.addr(), "watcher");
    let mut ws = RawWs::connect(web(&server));
    tcp.expect(&format!("* {} joined #lobby", ws.nick));
    for frame in frames {
        ws.raw(frame);
    }
    ws.expect_close(code);
    tcp.expect(&format!("* {} left #lobby", ws.nick));
}

#[test]
fn a_binary_message_closes_with_1003() {
    expect_violation_close(&[masked_frame(FIN | BINARY, b"\x00\x01")], 1003);
}

#[test]
fn invalid_utf8_closes_with_1007() {
    expect_violation_close(&[masked_frame(FIN | TEXT, b"ok \xff")], 1007);
}

#[test]
fn an_unmasked_frame_closes_with_1002() {
    expect_violation_close(&[vec![FIN | TEXT, 2, b'h', b'i']], 1002);
}

#[test]
fn reserved_bits_close_with_1002() {
    expect_violation_close(&[masked_frame(FIN | 0x40 | TEXT, b"hi")], 1002);
}

#[test]
fn a_fragmented_control_frame_closes_with_1002() {
    expect_violation_close(
        &[masked_frame(PING, b"a"), masked_frame(FIN | CONT, b"b")],
        1002,
    );
}

#[test]
fn a_ping_between_fragments_is_answered_and_the_message_arrives_whole() {
    let server = start();
    let mut tcp = Client::named(server.addr(), "reader");
    let mut ws = RawWs::connect(web(&server));
    tcp.expect(&format!("* {} joined #lobby", ws.nick));
    ws.frame(TEXT, b"frag");
    ws.frame(FIN | PING, b"tick");
    let pong = ws.next().unwrap();
    assert_eq!(
        pong,
        ServerFrame {
            first: FIN | PONG,
            payload: b"tick".to_vec()
        }
    );
    ws.frame(CONT, b"men");
    ws.frame(FIN | CONT, b"ted");
    tcp.expect(&format!("{}: fragmented", ws.nick));
}

#[test]
fn quit_sends_its_line_then_close_1000() {
    let server = start();
    let mut tcp = Client::named(server.addr(), "watcher");
    let mut ws = tungstenite_client(web(&server));
    let nick = tung_welcome(&mut ws);
    tcp.expect(&format!("* {nick} joined #lobby"));
    tung_send(&mut ws, ":quit see you");
    assert_eq!(tung_text(&mut ws), "* bye");
    match ws.read().expect("the close frame") {
        tungstenite::Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected close 1000, got {other:?}"),
    }
    tcp.expect(&format!("* {nick} left #lobby (see you)"));
    // tungstenite answered the close; the server then ends the TCP stream.
    let _ = ws.flush();
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed) => {}
        Err(err) => panic!("expected a clean close, got {err}"),
        Ok(message) => panic!("nothing after close, got {message:?}"),
    }
}

#[test]
fn shutdown_sends_its_line_then_close_1001() {
    let server = start();
    let mut ws = tungstenite_client(web(&server));
    tung_welcome(&mut ws);
    let mut raw = RawWs::connect(web(&server));
    let handle = server.shutdown_handle();
    handle.shutdown();
    while tung_text(&mut ws) != "* server shutting down" {}
    match ws.read().expect("the close frame") {
        tungstenite::Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    assert_eq!(
        raw.skip_until("* server shutting down"),
        Vec::<String>::new()
    );
    raw.expect_close(1001);
    server.stop().unwrap();
}

#[test]
fn a_client_close_is_echoed_and_the_client_leaves() {
    let server = start();
    let mut tcp = Client::named(server.addr(), "watcher");
    let mut ws = RawWs::connect(web(&server));
    tcp.expect(&format!("* {} joined #lobby", ws.nick));
    ws.frame(FIN | CLOSE, &[0x0f, 0xa0, b'b', b'y', b'e']);
    let close = ws.next().unwrap();
    assert_eq!(close.close_code(), Some(4000));
    assert_eq!(ws.next(), None);
    tcp.expect(&format!("* {} left #lobby", ws.nick));
}

#[test]
fn origin_rule_refuses_other_sites_and_allows_listed_ones() {
    let server = start_with(|c| c.web_origins = vec!["https://friend.example".into()]);
    let addr = web(&server);
    let status = |extra: &str| {
        let (head, _, _) = http_request(addr, &upgrade_request(addr, extra));
        head[9..12].to_string()
    };
    assert_eq!(status(""), "101", "no Origin: not a browser");
    assert_eq!(status(&format!("Origin: http://{addr}\r\n")), "101");
    assert_eq!(
        status(&format!(
            "Origin: HTTP://{}\r\n",
            addr.to_string().to_uppercase()
        )),
        "101"
    );
    assert_eq!(status("Origin: https://friend.example\r\n"), "101");
    assert_eq!(status("Origin: http://evil.example\r\n"), "403");
    assert_eq!(status("Origin: null\r\n"), "403");
    assert_eq!(status(&format!("Origin: https://{addr}\r\n")), "403");
}

/// Fuzzing finding (docs/fuzzing.md): an Origin as long as the server's own
/// with a two-byte character across the end of `http://` panicked the event
/// loop. It is refused, and the server goes on serving.
#[test]
fn an_origin_with_a_wide_character_is_refused_and_the_server_lives_on() {
    let server = start();
    let addr = web(&server);
    let host = addr.to_string();
    let origin = format!("http:/\u{460}{}", &host[1..]);
    assert_eq!(origin.len(), "http://".len() + host.len());
    let extra = format!("Origin: {origin}\r\n");
    let (head, _, _) = http_request(addr, &upgrade_request(addr, &extra));
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    let (head, _, _) = http_request(addr, &upgrade_request(addr, ""));
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
}

#[test]
fn a_slow_websocket_consumer_is_cut_off_without_a_close_frame() {
    // A flood on purpose: flood control off.
    let server = start_with(|c| {
        c.max_outbuf_bytes = 64 * 1024;
        c.flood = loopchat::policy::limits::FloodLimit::OFF;
    });
    let mut sleeper = RawWs::connect(web(&server));
    // Shrink its receive buffer's share by never reading; flood the room.
    let mut flooder = Client::named(server.addr(), "flooder");
    let mut watcher = Client::named(server.addr(), "watcher");
    let line = "f".repeat(1000);
    let mut cut = false;
    for i in 0..20_000 {
        flooder.send(&line);
        // The watcher reads every 20 KB, well inside its own 64 KiB limit,
        // so only the sleeper can be the slow one.
        if i % 20 == 19 {
            let lines = watcher.sync();
            if lines
                .iter()
                .any(|l| l == &format!("* {} left #lobby (too slow)", sleeper.nick))
            {
                cut = true;
                break;
            }
        }
    }
    assert!(cut, "the sleeping WebSocket client was cut off as too slow");
    // It got only whole chat frames (whatever the kernel took, perhaps
    // ending inside one), never a close frame.
    let mut bytes = Vec::new();
    let _ = sleeper.stream.read_to_end(&mut bytes);
    let mut at = 0;
    while at + 4 <= bytes.len() {
        assert_eq!(bytes[at], FIN | TEXT, "only text frames, at byte {at}");
        let len = match bytes[at + 1] {
            126 => 4 + u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize,
            n => 2 + n as usize,
        };
        at += len;
    }
}

#[test]
fn a_newcomer_over_the_limit_is_upgraded_then_told_server_full_with_1013() {
    let server = start_with(|c| c.max_clients = 1);
    let _first = Client::connect(server.addr());
    let mut ws = RawWs::connect_raw(web(&server));
    assert_eq!(ws.text(), "! server full");
    ws.expect_close(1013);
}

#[test]
fn a_silent_websocket_client_is_pinged() {
    let server = start_with(|c| c.ws_ping_interval = Duration::from_millis(200));
    let mut ws = RawWs::connect(web(&server));
    let ping = ws.next().unwrap();
    assert_eq!(ping.opcode(), PING);
    ws.frame(FIN | PONG, &ping.payload);
    let again = ws.next().unwrap();
    assert_eq!(again.opcode(), PING, "pinged again after another silence");
    assert!(ws.sync().iter().all(|f| f.opcode() == PING));
}

#[test]
fn order_holds_across_many_websocket_and_tcp_clients() {
    let server = start();
    const SENDERS: usize = 6;
    const LINES: usize = 200;
    let mut tcp: Vec<Client> = (0..SENDERS / 2)
        .map(|_| Client::connect(server.addr()))
        .collect();
    let mut ws: Vec<RawWs> = (0..SENDERS / 2)
        .map(|_| RawWs::connect(web(&server)))
        .collect();
    let mut tcp_reader = Client::named(server.addr(), "tcpreader");
    let mut ws_reader = RawWs::connect(web(&server));
    let mut senders: Vec<String> = tcp.iter().map(|c| c.nick.clone()).collect();
    senders.extend(ws.iter().map(|w| w.nick.clone()));
    for i in 0..LINES {
        for client in tcp.iter_mut() {
            client.send(&format!("n{i}"));
        }
        for client in ws.iter_mut() {
            client.send(&format!("n{i}"));
        }
    }
    let check = |lines: Vec<String>| {
        let mut next = vec![0usize; senders.len()];
        for line in lines {
            let Some((nick, text)) = line.split_once(": ") else {
                continue;
            };
            let Some(who) = senders.iter().position(|s| s == nick) else {
                continue;
            };
            assert_eq!(text, format!("n{}", next[who]), "order of {nick}");
            next[who] += 1;
        }
        assert!(
            next.iter().all(|&n| n == LINES),
            "every line arrived: {next:?}"
        );
    };
    // The senders sync after sending, so every line is in before the readers sync.
    for client in tcp.iter_mut() {
        client.sync();
    }
    for client in ws.iter_mut() {
        client.sync();
    }
    check(tcp_reader.sync());
    let ws_lines = ws_reader.sync().into_iter().map(|f| f.text()).collect();
    check(ws_lines);
}

#[test]
fn the_web_address_can_be_turned_off() {
    let server = start_with(|c| c.web_addr = None);
    assert_eq!(server.web_addr(), None);
    let mut tcp = Client::connect(server.addr());
    tcp.assert_quiet();
}
