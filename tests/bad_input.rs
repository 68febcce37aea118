//! Transport rules of `docs/protocol.md` under awkward input: framing across
//! writes, `\r`, empty lines, the line limit, invalid UTF-8, control
//! characters and half-close.
//!
//! To check that a client did NOT receive a line, `Client::assert_quiet` does a
//! `:ping` round trip on it: the server handles lines in order, so anything
//! it owed that client would arrive before the pong.

mod common;

use common::*;
use loopchat::policy::limits::FloodLimit;
use std::io::Write;
use std::net::SocketAddr;

/// `alice` and `bob` in `#lobby`, with every setup line drained.
fn pair(addr: SocketAddr) -> (Client, Client) {
    let mut alice = Client::named(addr, "alice");
    let mut bob = Client::named(addr, "bob");
    alice.sync();
    bob.sync();
    (alice, bob)
}

/// Writes `bytes` one byte per write (TCP_NODELAY is set, so one segment
/// per byte in practice).
fn send_byte_by_byte(client: &mut Client, bytes: &[u8]) {
    for byte in bytes {
        client.send_bytes(&[*byte]);
        client.writer.flush().expect("flush");
    }
}

const TOO_LONG: &str = "! line too long (max 4096 bytes)";

// ---------------------------------------------------------------- \r and empty lines

#[test]
fn crlf_line_ending_is_dropped() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send_bytes(b"hello\r\n");
    bob.expect("alice: hello");
    alice.send_bytes(b":ping tok\r\n");
    alice.expect("* pong tok");
    alice.send_bytes(b":nick alicia\r\n");
    alice.expect("* alice is now known as alicia");
    bob.expect("* alice is now known as alicia");
}

#[test]
fn only_one_cr_before_lf_is_dropped() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send_bytes(b"hi\r\r\n");
    bob.expect("alice: hi\u{FFFD}");
}

#[test]
fn lone_cr_inside_a_line_becomes_a_replacement_character() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send_bytes(b"a\rb\n");
    bob.expect("alice: a\u{FFFD}b");
    alice.send_bytes(b"\rstart\r\n");
    bob.expect("alice: \u{FFFD}start");
}

#[test]
fn empty_lines_are_ignored() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send_bytes(b"\n\r\n\n\r\n");
    alice.send("after");
    bob.expect("alice: after");
    alice.assert_quiet();
    bob.assert_quiet();
}

// ---------------------------------------------------------------- framing

#[test]
fn line_split_byte_by_byte_is_delivered_whole() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    send_byte_by_byte(&mut alice, "héllo wörld ✓ 🦀\n".as_bytes());
    bob.expect("alice: héllo wörld ✓ 🦀");
    send_byte_by_byte(&mut alice, b":ping split\r\n");
    alice.expect("* pong split");
    bob.assert_quiet();
}

#[test]
fn framing_depends_only_on_newlines() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    for chunk in [
        &b"hel"[..],
        b"lo\nwor",
        b"ld\n:pi",
        b"ng x\n:me ",
        b"waves\n",
    ] {
        alice.send_bytes(chunk);
        alice.writer.flush().expect("flush");
    }
    bob.expect("alice: hello");
    bob.expect("alice: world");
    bob.expect("* alice waves");
    alice.expect("* pong x");
}

#[test]
fn thousand_lines_in_one_write_arrive_in_order() {
    // Framing, not flood control, is under test: 1,000 lines at once would
    // otherwise be read at the default rate.
    let server = start_flood_off();
    let (mut alice, mut bob) = pair(server.addr());
    let batch: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    alice.send_bytes(batch.as_bytes());
    for i in 0..1000 {
        bob.expect(&format!("alice: line {i}"));
    }
    bob.assert_quiet();
    alice.assert_quiet();
}

#[test]
fn commands_in_one_write_are_all_answered_in_order() {
    let server = start();
    let (mut alice, _bob) = pair(server.addr());
    alice.send_bytes(b":ping 1\n:users\n:ping 2\n:rooms\n:ping 3\n");
    alice.expect("* pong 1");
    alice.expect("* users in #lobby: alice bob");
    alice.expect("* pong 2");
    alice.expect("* rooms: #lobby (2)");
    alice.expect("* pong 3");
}

// ---------------------------------------------------------------- line limit

#[test]
fn line_of_exactly_4096_bytes_is_delivered() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    let text = "a".repeat(4096);
    alice.send(&text);
    bob.expect(&format!("alice: {text}"));
    alice.assert_quiet();
}

#[test]
fn line_of_4096_bytes_ended_by_crlf_is_delivered() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    let text = "b".repeat(4096);
    alice.send_bytes(format!("{text}\r\n").as_bytes());
    bob.expect(&format!("alice: {text}"));
    alice.assert_quiet();
}

#[test]
fn line_limit_counts_bytes_not_characters() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    let text = "é".repeat(2048); // 4096 bytes
    alice.send(&text);
    bob.expect(&format!("alice: {text}"));
    alice.send(&format!("{text}a"));
    alice.expect(TOO_LONG);
    bob.assert_quiet();
}

#[test]
fn line_of_4097_bytes_is_too_long_once_and_the_connection_stays_open() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send_bytes(format!("{}\nafter\n", "c".repeat(4097)).as_bytes());
    alice.expect(TOO_LONG);
    bob.expect("alice: after");
    alice.assert_quiet();
    bob.assert_quiet();
}

#[test]
fn cr_not_right_before_lf_counts_toward_the_limit() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send_bytes(format!("{}\r\r\n", "d".repeat(4096)).as_bytes());
    alice.expect(TOO_LONG);
    alice.assert_quiet();
    bob.assert_quiet();
}

#[test]
fn too_long_line_in_many_chunks_is_answered_once_and_discarded() {
    // 1 MiB at once is a flood: flood control off, so it is read in one go.
    let server = start_with(|config| config.flood = FloodLimit::OFF);
    let (mut alice, mut bob) = pair(server.addr());
    // 1 MiB without a newline, in 1 KiB writes, that would be commands and
    // chat if it were ever framed.
    let chunk = ":quit x :ping y zz".repeat(57); // 1026 bytes
    for _ in 0..1024 {
        alice.send_bytes(chunk.as_bytes());
    }
    alice.send_bytes(b"\nafter\n");
    bob.expect("alice: after");
    assert_eq!(alice.sync(), [TOO_LONG]);
    bob.assert_quiet();
}

#[test]
fn too_long_command_is_not_run() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send(&format!(":nick {}", "n".repeat(4096)));
    alice.send(&format!(":ping {}", "p".repeat(4096)));
    assert_eq!(alice.sync(), [TOO_LONG, TOO_LONG]);
    bob.assert_quiet();
}

#[test]
fn line_limit_is_configurable_and_reported() {
    let server = start_with(|c| c.max_line_bytes = 10);
    // Guests: `:nick alice` would be over the limit; `:ping sync` is 10 bytes.
    let mut first = Client::connect(server.addr());
    let mut second = Client::connect(server.addr());
    first.expect(&format!("* {} joined #lobby", second.nick));
    first.send("0123456789");
    second.expect(&format!("{}: 0123456789", first.nick));
    first.send("0123456789\r");
    second.expect(&format!("{}: 0123456789", first.nick));
    first.send("01234567890");
    first.expect("! line too long (max 10 bytes)");
    first.assert_quiet();
    second.assert_quiet();
}

// ---------------------------------------------------------------- UTF-8

#[test]
fn invalid_utf8_is_reported_and_dropped_and_the_connection_stays_open() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send_bytes(b"bad \xff\xfe bytes\n");
    alice.expect("! invalid UTF-8");
    alice.send("good");
    bob.expect("alice: good");
    bob.assert_quiet();
    alice.assert_quiet();
}

#[test]
fn invalid_utf8_in_a_command_is_reported() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send_bytes(b":nick al\xc3\n");
    alice.expect("! invalid UTF-8");
    alice.send_bytes(b":pm bob \xff\r\n");
    alice.expect("! invalid UTF-8");
    bob.assert_quiet();
    alice.send(":users");
    alice.expect("* users in #lobby: alice bob");
}

#[test]
fn overlong_surrogate_and_stray_bytes_are_invalid_utf8() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    for bad in [
        &b"\xc0\xaf\n"[..],      // overlong '/'
        b"\xed\xa0\x80\n",       // surrogate U+D800
        b"\xf4\x90\x80\x80\n",   // above U+10FFFF
        b"\x80\n",               // lone continuation byte
        b"truncated \xe2\x82\n", // truncated sequence
    ] {
        alice.send_bytes(bad);
        alice.expect("! invalid UTF-8");
    }
    bob.assert_quiet();
}

#[test]
fn invalid_utf8_split_across_writes_is_reported() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send_bytes(b"ab\xe2\x82");
    alice.writer.flush().expect("flush");
    alice.send_bytes(b"(\n");
    alice.expect("! invalid UTF-8");
    alice.send_bytes(b"cd\xe2");
    alice.writer.flush().expect("flush");
    alice.send_bytes(b"\n");
    alice.expect("! invalid UTF-8");
    bob.assert_quiet();
}

#[test]
fn valid_utf8_split_across_writes_is_delivered() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    for chunk in [
        &b"price \xe2"[..],
        b"\x82",
        b"\xac 5 \xf0\x9f",
        b"\xa6\x80\n",
    ] {
        alice.send_bytes(chunk);
        alice.writer.flush().expect("flush");
    }
    bob.expect("alice: price € 5 🦀");
    alice.assert_quiet();
}

// ---------------------------------------------------------------- control characters

#[test]
fn control_characters_in_chat_are_replaced() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send("a\u{0}b\u{1b}[31mred\u{7}\u{8}\u{1f}");
    bob.expect("alice: a\u{FFFD}b\u{FFFD}[31mred\u{FFFD}\u{FFFD}\u{FFFD}");
}

#[test]
fn del_and_c1_controls_in_chat_are_replaced() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send("\u{7f}x\u{80}y\u{9b}2J\u{9f}");
    bob.expect("alice: \u{FFFD}x\u{FFFD}y\u{FFFD}2J\u{FFFD}");
}

#[test]
fn tab_and_printable_neighbours_are_kept() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send("a\tb ~ \u{a0}\u{ff}\u{2028}");
    bob.expect("alice: a\tb ~ \u{a0}\u{ff}\u{2028}");
}

#[test]
fn control_characters_in_double_colon_chat_are_replaced() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send("::\u{1b}]0;title\u{7}");
    bob.expect("alice: :\u{FFFD}]0;title\u{FFFD}");
}

#[test]
fn control_characters_in_me_text_are_replaced() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send(":me waves\u{1b}[2J\u{0}");
    bob.expect("* alice waves\u{FFFD}[2J\u{FFFD}");
}

#[test]
fn control_characters_in_pm_text_are_replaced() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send(":pm bob hi\u{1b}[31m\u{0}\u{9b}");
    bob.expect("[pm] alice: hi\u{FFFD}[31m\u{FFFD}\u{FFFD}");
    alice.send(":msg bob \u{7f}");
    bob.expect("[pm] alice: \u{FFFD}");
}

#[test]
fn control_characters_in_quit_reason_are_replaced() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send(":quit bye\u{1b}[2J\u{0}now");
    alice.expect("* bye");
    alice.expect_closed();
    bob.expect("* alice left #lobby (bye\u{FFFD}[2J\u{FFFD}now)");
}

#[test]
fn nick_with_a_control_character_is_invalid() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    // The error echoes the name with its control characters replaced: it
    // must not paint the typist's terminal either.
    for (name, shown) in [
        ("al\u{1b}ce", "al\u{FFFD}ce"),
        ("a\u{0}", "a\u{FFFD}"),
        ("a\u{7f}", "a\u{FFFD}"),
        ("a\u{85}b", "a\u{FFFD}b"),
    ] {
        alice.send(&format!(":nick {name}"));
        assert_eq!(alice.line(), format!("! invalid name {shown}"), "{name:?}");
    }
    alice.send(":pm b\u{1b}[2Job hi");
    alice.expect("! no such user b\u{FFFD}[2Job");
    bob.assert_quiet();
    alice.send(":users");
    alice.expect("* users in #lobby: alice bob");
}

#[test]
fn room_with_a_control_character_is_invalid() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    for (room, shown) in [
        ("r\u{1b}[31m", "r\u{FFFD}[31m"),
        ("#r\u{0}", "#r\u{FFFD}"),
        ("r\u{9b}", "r\u{FFFD}"),
    ] {
        alice.send(&format!(":join {room}"));
        assert_eq!(alice.line(), format!("! invalid name {shown}"), "{room:?}");
    }
    bob.assert_quiet();
    alice.send(":rooms");
    alice.expect("* rooms: #lobby (2)");
}

// ---------------------------------------------------------------- half-close
//
// The client sends its last bytes and shuts down its sending side at once,
// as `printf 'hi\n' | nc -N` does: the data and the FIN usually arrive
// together.

#[test]
fn half_close_handles_complete_lines_then_announces_the_leave_and_closes() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send_bytes(b"one\ntwo\r\n:ping before\npartial");
    alice.half_close();
    bob.expect("alice: one");
    bob.expect("alice: two");
    bob.expect("* alice left #lobby");
    alice.expect("* pong before");
    alice.expect_closed();
    bob.assert_quiet();
}

#[test]
fn half_close_discards_an_unterminated_last_line() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send_bytes(b"never delivered");
    alice.half_close();
    bob.expect("* alice left #lobby");
    alice.expect_closed();
    bob.assert_quiet();
}

#[test]
fn half_close_with_nothing_pending_announces_the_leave_and_closes() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send("hello");
    bob.expect("alice: hello");
    alice.assert_quiet(); // the server has read everything: the FIN comes alone
    alice.half_close();
    bob.expect("* alice left #lobby");
    alice.expect_closed();
}

#[test]
fn half_close_flushes_everything_owed_first() {
    // 1,001 lines at once is a flood: flood control off.
    let server = start_with(|config| config.flood = FloodLimit::OFF);
    let (mut alice, mut bob) = pair(server.addr());
    let pings: String = (0..1000).map(|i| format!(":ping {i}\n")).collect();
    alice.send_bytes(pings.as_bytes());
    alice.send_bytes(b":help\n");
    alice.half_close();
    bob.expect("* alice left #lobby");
    for i in 0..1000 {
        alice.expect(&format!("* pong {i}"));
    }
    for _ in loopchat::protocol::HelpRow::rows(false) {
        let help = alice.line();
        assert!(help.starts_with("* :"), "{help:?}");
    }
    alice.expect_closed();
}

#[test]
fn half_close_in_a_room_is_announced_in_that_room() {
    let server = start();
    let (mut alice, mut bob) = pair(server.addr());
    alice.send(":join rust");
    alice.expect("* alice joined #rust");
    bob.send(":join rust");
    bob.expect("* bob joined #rust");
    alice.expect("* bob joined #rust");
    bob.send(":part lobby");
    bob.expect("[#lobby] * bob left #lobby");
    alice.expect("[#lobby] * bob left #lobby"); // #rust is current for alice
    alice.send_bytes(b"bye all\n:quit");
    alice.half_close();
    bob.expect("alice: bye all");
    bob.expect("* alice left #rust"); // the unterminated :quit is discarded
    alice.expect_closed();
}
