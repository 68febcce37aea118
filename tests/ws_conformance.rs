//! A conformance table in the spirit of the Autobahn testsuite (which is
//! Python 2 only and cannot run here): its framing, ping/pong, reserved
//! bits, opcodes, fragmentation, UTF-8 and close groups, as cases written
//! frame by frame over a raw socket. Each case runs on its own connection;
//! "echo" is `:ping TOKEN`, answered `* pong TOKEN`, so a message that
//! arrived whole is seen coming back whole.

mod common;
mod ws_support;

use ws_support::*;

/// What the server must do with a case's bytes.
enum Expect {
    /// Send exactly these frames (before the answer to a `:ping sync`), and
    /// stay open.
    Frames(Vec<ServerFrame>),
    /// Send these frames, then a close frame with this status, then end.
    Close(Vec<ServerFrame>, u16),
}

struct Case {
    id: &'static str,
    what: String,
    /// The bytes to send, and the size of the writes (0: one write).
    send: Vec<u8>,
    write_size: usize,
    expect: Expect,
}

fn text(payload: &[u8]) -> ServerFrame {
    ServerFrame {
        first: FIN | TEXT,
        payload: payload.to_vec(),
    }
}

fn pong(payload: &[u8]) -> ServerFrame {
    ServerFrame {
        first: FIN | PONG,
        payload: payload.to_vec(),
    }
}

/// `:ping TOKEN` as one text frame, and its answer.
fn echo(token: &str) -> (Vec<u8>, ServerFrame) {
    (
        masked_frame(FIN | TEXT, format!(":ping {token}").as_bytes()),
        text(format!("* pong {token}").as_bytes()),
    )
}

/// `:ping TOKEN` split into frames of `size` payload bytes.
fn echo_fragmented(token: &str, size: usize) -> Vec<u8> {
    let line = format!(":ping {token}");
    let pieces: Vec<&[u8]> = line.as_bytes().chunks(size.max(1)).collect();
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 { TEXT } else { CONT };
        let fin = if i + 1 == pieces.len() { FIN } else { 0 };
        out.extend(masked_frame(fin | opcode, piece));
    }
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn case(id: &'static str, what: &str, send: Vec<u8>, expect: Expect) -> Case {
    Case {
        id,
        what: what.to_string(),
        send,
        write_size: 0,
        expect,
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let ok = |frames: Vec<ServerFrame>| Expect::Frames(frames);
    let close = |code| Expect::Close(Vec::new(), code);

    // 1. Framing: text messages of every length encoding.
    cases.push(case(
        "1.1.1",
        "empty text message (ignored)",
        masked_frame(FIN | TEXT, b""),
        ok(vec![]),
    ));
    for (id, len) in [
        ("1.1.2", 125),
        ("1.1.3", 126),
        ("1.1.4", 127),
        ("1.1.5", 65535),
        ("1.1.6", 65536),
    ] {
        let token = "t".repeat(len - ":ping ".len());
        let (send, answer) = echo(&token);
        cases.push(case(
            id,
            &format!("text message of {len} bytes"),
            send,
            ok(vec![answer]),
        ));
    }
    let (send, answer) = echo(&"s".repeat(65530));
    cases.push(Case {
        write_size: 997,
        ..case(
            "1.1.7",
            "65536-byte message in 997-byte writes",
            send,
            ok(vec![answer]),
        )
    });
    let (send, answer) = echo("slow");
    cases.push(Case {
        write_size: 1,
        ..case(
            "1.1.8",
            "a message written one byte at a time",
            send,
            ok(vec![answer]),
        )
    });

    // 2. Ping and pong.
    cases.push(case(
        "2.1",
        "empty ping",
        masked_frame(FIN | PING, b""),
        ok(vec![pong(b"")]),
    ));
    cases.push(case(
        "2.2",
        "ping with text",
        masked_frame(FIN | PING, b"Hello"),
        ok(vec![pong(b"Hello")]),
    ));
    let binary: Vec<u8> = (0..8).collect();
    cases.push(case(
        "2.3",
        "ping with binary payload",
        masked_frame(FIN | PING, &binary),
        ok(vec![pong(&binary)]),
    ));
    cases.push(case(
        "2.4",
        "ping of 125 bytes",
        masked_frame(FIN | PING, &[0xfe; 125]),
        ok(vec![pong(&[0xfe; 125])]),
    ));
    cases.push(case(
        "2.5",
        "ping of 126 bytes",
        masked_frame(FIN | PING, &[0xfe; 126]),
        close(1002),
    ));
    cases.push(Case {
        write_size: 1,
        ..case(
            "2.6",
            "ping of 125 bytes, one byte per write",
            masked_frame(FIN | PING, &[0x61; 125]),
            ok(vec![pong(&[0x61; 125])]),
        )
    });
    cases.push(case(
        "2.7",
        "unsolicited empty pong (ignored)",
        masked_frame(FIN | PONG, b""),
        ok(vec![]),
    ));
    cases.push(case(
        "2.8",
        "unsolicited pong with payload (ignored)",
        masked_frame(FIN | PONG, b"x"),
        ok(vec![]),
    ));
    cases.push(case(
        "2.9",
        "unsolicited pong, then ping",
        cat(&[
            &masked_frame(FIN | PONG, b"u"),
            &masked_frame(FIN | PING, b"p"),
        ]),
        ok(vec![pong(b"p")]),
    ));
    let mut ten = Vec::new();
    let mut pongs = Vec::new();
    for i in 0..10u8 {
        ten.extend(masked_frame(FIN | PING, &[b'0' + i]));
        pongs.push(pong(&[b'0' + i]));
    }
    cases.push(case(
        "2.10",
        "ten pings in one write, answered in order",
        ten,
        ok(pongs),
    ));

    // 3. Reserved bits.
    for (id, bits) in [("3.1", 0x40), ("3.2", 0x20), ("3.3", 0x10), ("3.4", 0x70)] {
        cases.push(case(
            id,
            &format!("text with RSV bits {bits:#x}"),
            masked_frame(FIN | bits | TEXT, b"hi"),
            close(1002),
        ));
    }
    cases.push(case(
        "3.5",
        "ping with RSV1",
        masked_frame(FIN | 0x40 | PING, b""),
        close(1002),
    ));
    let (good, answer) = echo("first");
    cases.push(case(
        "3.6",
        "a good message, then one with RSV2: the first is handled",
        cat(&[&good, &masked_frame(FIN | 0x20 | TEXT, b"x")]),
        Expect::Close(vec![answer], 1002),
    ));

    // 4. Opcodes.
    for opcode in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        let id: &'static str = Box::leak(format!("4.{opcode}").into_boxed_str());
        cases.push(case(
            id,
            &format!("reserved opcode {opcode:#x}"),
            masked_frame(FIN | opcode, b"x"),
            close(1002),
        ));
    }
    cases.push(case(
        "4.16",
        "binary message",
        masked_frame(FIN | BINARY, b"\x00"),
        close(1003),
    ));

    // 5. Fragmentation.
    cases.push(case(
        "5.1",
        "fragmented ping",
        cat(&[&masked_frame(PING, b"a"), &masked_frame(FIN | CONT, b"b")]),
        close(1002),
    ));
    cases.push(case(
        "5.2",
        "fragmented pong",
        cat(&[&masked_frame(PONG, b"a"), &masked_frame(FIN | CONT, b"b")]),
        close(1002),
    ));
    let (_, answer) = echo("fragments");
    cases.push(case(
        "5.3",
        "text in two fragments",
        echo_fragmented("fragments", 8),
        ok(vec![answer.clone()]),
    ));
    cases.push(case(
        "5.4",
        "text in one-byte fragments",
        echo_fragmented("fragments", 1),
        ok(vec![answer.clone()]),
    ));
    cases.push(case(
        "5.5",
        "ping between the fragments of a text message",
        cat(&[
            &masked_frame(TEXT, b":ping frag"),
            &masked_frame(FIN | PING, b"mid"),
            &masked_frame(FIN | CONT, b"ments"),
        ]),
        ok(vec![pong(b"mid"), answer.clone()]),
    ));
    cases.push(case(
        "5.6",
        "empty fragments around the text",
        cat(&[
            &masked_frame(TEXT, b""),
            &masked_frame(CONT, b":ping fragments"),
            &masked_frame(FIN | CONT, b""),
        ]),
        ok(vec![answer]),
    ));
    cases.push(case(
        "5.7",
        "continuation with no message",
        masked_frame(FIN | CONT, b"x"),
        close(1002),
    ));
    cases.push(case(
        "5.8",
        "unfinished continuation with no message",
        masked_frame(CONT, b"x"),
        close(1002),
    ));
    cases.push(case(
        "5.9",
        "a new text message inside a fragmented one",
        cat(&[&masked_frame(TEXT, b"a"), &masked_frame(FIN | TEXT, b"b")]),
        close(1002),
    ));
    cases.push(case(
        "5.10",
        "a binary frame inside a fragmented text message",
        cat(&[&masked_frame(TEXT, b"a"), &masked_frame(FIN | BINARY, b"b")]),
        close(1002),
    ));

    // 6. UTF-8.
    let (send, answer) = echo("κόσμε");
    cases.push(case(
        "6.1",
        "valid multi-byte text",
        send,
        ok(vec![answer.clone()]),
    ));
    cases.push(case(
        "6.2",
        "valid text split inside its characters",
        echo_fragmented("κόσμε", 1),
        ok(vec![answer]),
    ));
    let (send, answer) = echo("\u{10ffff}\u{fffd}\u{feff}");
    cases.push(case("6.3", "edge code points", send, ok(vec![answer])));
    for (id, what, bad) in [
        ("6.4.1", "byte 0xff", &b"\xff"[..]),
        ("6.4.2", "overlong slash", b"\xc0\xaf"),
        ("6.4.3", "overlong 3-byte", b"\xe0\x80\xaf"),
        ("6.4.4", "UTF-16 surrogate", b"\xed\xa0\x80"),
        ("6.4.5", "above U+10FFFF", b"\xf4\x90\x80\x80"),
        ("6.4.6", "truncated at the end", b"ok \xe2\x82"),
        ("6.4.7", "lone continuation byte", b"\x80"),
    ] {
        cases.push(case(
            id,
            &format!("invalid UTF-8: {what}"),
            masked_frame(FIN | TEXT, bad),
            close(1007),
        ));
    }
    cases.push(case(
        "6.5",
        "invalid UTF-8 in the second fragment",
        cat(&[
            &masked_frame(TEXT, b"good "),
            &masked_frame(FIN | CONT, b"\xce\xba\xff"),
        ]),
        close(1007),
    ));
    cases.push(case(
        "6.6",
        "fail fast: invalid UTF-8 in an unfinished message",
        masked_frame(TEXT, b"\xed\xa0\x80 and more to come"),
        close(1007),
    ));
    cases.push(case(
        "6.7",
        "a character split across fragments, truncated at the end",
        cat(&[
            &masked_frame(TEXT, b"\xe2"),
            &masked_frame(FIN | CONT, b"\x82"),
        ]),
        close(1007),
    ));

    // 7. Close.
    cases.push(case(
        "7.1",
        "empty close",
        masked_frame(FIN | CLOSE, b""),
        close(1000),
    ));
    cases.push(case(
        "7.2",
        "close 1000",
        masked_frame(FIN | CLOSE, &1000u16.to_be_bytes()),
        close(1000),
    ));
    cases.push(case(
        "7.3",
        "close 1000 with a reason",
        masked_frame(FIN | CLOSE, b"\x03\xe8bye"),
        close(1000),
    ));
    cases.push(case(
        "7.4",
        "close with a 1-byte payload",
        masked_frame(FIN | CLOSE, b"\x03"),
        close(1002),
    ));
    let long_reason = cat(&[&1000u16.to_be_bytes(), &[b'r'; 123]]);
    cases.push(case(
        "7.5",
        "close with a 123-byte reason",
        masked_frame(FIN | CLOSE, &long_reason),
        close(1000),
    ));
    let too_long = cat(&[&1000u16.to_be_bytes(), &[b'r'; 124]]);
    cases.push(case(
        "7.6",
        "close with a 124-byte reason",
        masked_frame(FIN | CLOSE, &too_long),
        close(1002),
    ));
    for code in [
        1001u16, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let id: &'static str = Box::leak(format!("7.7.{code}").into_boxed_str());
        cases.push(case(
            id,
            &format!("valid close code {code}, echoed"),
            masked_frame(FIN | CLOSE, &code.to_be_bytes()),
            close(code),
        ));
    }
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let id: &'static str = Box::leak(format!("7.9.{code}").into_boxed_str());
        cases.push(case(
            id,
            &format!("invalid close code {code}"),
            masked_frame(FIN | CLOSE, &code.to_be_bytes()),
            close(1002),
        ));
    }
    cases.push(case(
        "7.10",
        "close reason not UTF-8",
        masked_frame(FIN | CLOSE, b"\x03\xe8\xff"),
        close(1007),
    ));
    let (after, _) = echo("after");
    cases.push(case(
        "7.11",
        "a text message after the close is ignored",
        cat(&[&masked_frame(FIN | CLOSE, &1000u16.to_be_bytes()), &after]),
        close(1000),
    ));
    cases.push(case(
        "7.12",
        "a ping after the close is ignored",
        cat(&[
            &masked_frame(FIN | CLOSE, &1000u16.to_be_bytes()),
            &masked_frame(FIN | PING, b"x"),
        ]),
        close(1000),
    ));
    cases.push(case(
        "7.13",
        "close inside a fragmented message",
        cat(&[
            &masked_frame(TEXT, b"half"),
            &masked_frame(FIN | CLOSE, &1000u16.to_be_bytes()),
        ]),
        close(1000),
    ));
    cases
}

/// Runs one case; returns what went wrong, if anything.
fn run(addr: std::net::SocketAddr, case: &Case) -> Result<(), String> {
    let mut ws = RawWs::connect(addr);
    if case.write_size == 0 {
        ws.raw(&case.send);
    } else {
        for piece in case.send.chunks(case.write_size) {
            ws.raw(piece);
        }
    }
    match &case.expect {
        Expect::Frames(frames) => {
            let got = ws.sync();
            if &got != frames {
                return Err(format!("expected {frames:?}, got {got:?}"));
            }
        }
        Expect::Close(frames, code) => {
            for frame in frames {
                let got = ws.next().ok_or("closed early")?;
                if &got != frame {
                    return Err(format!("expected {frame:?}, got {got:?}"));
                }
            }
            let got = ws
                .next()
                .ok_or("the TCP stream ended without a close frame")?;
            if got.close_code() != Some(*code) {
                return Err(format!("expected close {code}, got {got:?}"));
            }
            ws.frame(FIN | CLOSE, &code.to_be_bytes());
            if let Some(extra) = ws.next() {
                return Err(format!("a frame after the close: {extra:?}"));
            }
        }
    }
    Ok(())
}

#[test]
fn autobahn_style_conformance_table() {
    let server = common::start_with(|c| c.max_line_bytes = 70_000);
    let addr = server.web_addr().expect("web address");
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let result = run(addr, case);
        let mark = if result.is_ok() { "pass" } else { "FAIL" };
        println!("{:<9} {mark}  {}", case.id, case.what);
        if let Err(err) = result {
            failures.push(format!("{} {}: {err}", case.id, case.what));
        }
    }
    println!("{} cases, {} failed", cases.len(), failures.len());
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
}
