//! One hostile client hurts no one: the global output bound with eviction
//! of the biggest queues, the soft output limit over time, flood control,
//! and fairness by the output a client's lines cause. Real sockets on
//! 127.0.0.1, every read bounded by a timeout, no timing thresholds.

mod common;
mod ws_support;

use common::*;
use loopchat::policy::limits::{FloodLimit, SoftLimit};
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// `n` chat lines of `size` bytes each, numbered from `from`.
fn numbered_lines(prefix: &str, from: usize, n: usize, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * (size + 1));
    for i in from..from + n {
        let head = format!("{prefix} {i} ");
        out.extend_from_slice(head.as_bytes());
        out.extend(std::iter::repeat_n(b'x', size.saturating_sub(head.len())));
        out.push(b'\n');
    }
    out
}

/// A client with a 4 KiB receive buffer, so the kernel cannot hide a
/// backlog for it; renamed to `nick`, after which the test stops reading.
fn small_buffer_client(addr: SocketAddr, nick: &str) -> Client {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    let mut client = Client {
        reader: BufReader::new(stream.try_clone().expect("clone")),
        writer: stream,
        nick: String::new(),
    };
    client.read_welcome();
    client.send(&format!(":nick {nick}"));
    client.expect(&format!("* {} is now known as {nick}", client.nick));
    client.nick = nick.to_string();
    client
}

/// The nick in a `* NICK left #ROOM (too slow)` line.
fn cut_off_nick(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("* ")?;
    rest.ends_with(" (too slow)")
        .then(|| rest.split(' ').next())
        .flatten()
}

/// Reads the bystander's lines up to `last`, checking that the flooder's
/// numbered lines arrive complete and in order from `*next`; returns who
/// was cut off, in the order announced.
fn read_flood(bystander: &mut Client, next: &mut usize, last: &str) -> Vec<String> {
    let mut cut = Vec::new();
    loop {
        let line = bystander.line();
        if let Some(rest) = line.strip_prefix("flooder: f ") {
            let seq: usize = rest.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(seq, *next, "flood lines complete and in order");
            *next += 1;
        } else if let Some(nick) = cut_off_nick(&line) {
            cut.push(nick.to_string());
        }
        if line == last {
            return cut;
        }
    }
}

#[test]
fn global_bound_cuts_the_biggest_queues_first_and_holds_memory() {
    // 16 clients that never read, each allowed 4 MiB: 64 MiB if nothing
    // but the per-client limit held; the global bound is 8 MiB.
    let server = ServerProcess::start(
        &[
            "--max-outbuf-bytes",
            "4194304",
            "--max-output-total-bytes",
            "8388608",
            "--sndbuf-bytes",
            "16384",
            "--soft-outbuf-secs",
            "0",
            "--flood-lines-per-sec",
            "0",
            "--flood-bytes-per-sec",
            "0",
        ],
        None,
    );
    let addr = server.addr;
    let rss_before = server.status_kb("VmRSS");
    let mut bystander = Client::named(addr, "bystander");
    let mut flooder = Client::named(addr, "flooder");
    // Early non-readers: in the room from the start, so always ahead.
    let early: Vec<Client> = (0..8)
        .map(|i| small_buffer_client(addr, &format!("early{i}")))
        .collect();
    bystander.skip_until("* guest10 is now known as early7");
    let mut next = 0;
    // 400 KB queued for each early client (in 512 KiB buffers): 4 MiB of
    // output memory, under the bound.
    let head = numbered_lines("f", 0, 400, 1000);
    flooder.send_bytes(&head);
    flooder.send("mark 0");
    let cut = read_flood(&mut bystander, &mut next, "flooder: mark 0");
    assert!(cut.is_empty(), "nobody cut before the bound: {cut:?}");
    let late: Vec<Client> = (0..8)
        .map(|i| small_buffer_client(addr, &format!("late{i}")))
        .collect();
    bystander.skip_until("* guest18 is now known as late7");
    // Flood on until every early client was cut off; bounded at 60 MB.
    let mut order = Vec::new();
    let mut round = 1;
    while order
        .iter()
        .filter(|n: &&String| n.starts_with("early"))
        .count()
        < early.len()
    {
        assert!(round <= 200, "early clients still not all cut: {order:?}");
        flooder.send_bytes(&numbered_lines("f", next, 300, 1000));
        flooder.send(&format!("mark {round}"));
        order.extend(read_flood(
            &mut bystander,
            &mut next,
            &format!("flooder: mark {round}"),
        ));
        round += 1;
    }
    let first_late = order.iter().position(|n| n.starts_with("late"));
    let last_early = order.iter().rposition(|n| n.starts_with("early"));
    assert!(
        first_late.is_none_or(|late| Some(late) > last_early),
        "the biggest queues (early) go first: {order:?}"
    );
    bystander.send(":ping alive");
    bystander.skip_until("* pong alive");
    let peak = server.status_kb("VmHWM");
    eprintln!(
        "16 non-readers, {} MB flooded, bound 8 MiB: server RSS {rss_before} kB before, \
         peak {peak} kB; cut off in order {order:?}",
        next / 1000
    );
    // The bound, plus the pool of spare buffers (16 MiB at most), plus the
    // process itself.
    assert!(
        peak < 40 * 1024,
        "peak RSS {peak} kB is past the 8 MiB bound plus overhead"
    );
    drop((early, late));
}

#[test]
fn queue_hovering_under_the_hard_limit_is_cut_off_after_the_soft_period() {
    let server = start_with(|config| {
        config.flood = FloodLimit::OFF;
        config.send_buffer_bytes = 16 * 1024;
        config.soft_outbuf = SoftLimit {
            bytes: 64 * 1024,
            period: Some(Duration::from_secs(1)),
        };
    });
    let addr = server.addr();
    let mut bystander = Client::named(addr, "bystander");
    let mut flooder = Client::named(addr, "flooder");
    let hover = small_buffer_client(addr, "hover");
    bystander.skip_until("* guest3 is now known as hover");
    // About 300 KB for the hoverer: far under the 1 MiB hard limit, well
    // over the 64 KiB soft one.
    flooder.send_bytes(&numbered_lines("f", 0, 300, 1000));
    flooder.send("done");
    let mut next = 0;
    let mut cut = read_flood(&mut bystander, &mut next, "flooder: done");
    assert_eq!(next, 300);
    // Nothing more is sent; the queue just stays where it is.
    if cut.is_empty() {
        cut.extend(cut_off_nick(&bystander.line()).map(str::to_string));
    }
    assert_eq!(cut, ["hover"], "cut off as too slow after the soft period");
    flooder.send("still here");
    bystander.expect("flooder: still here");
    drop(hover);
}

#[test]
fn private_message_burst_at_default_flood_control_cuts_off_no_reader() {
    let server = start();
    let addr = server.addr();
    let mut victim = small_buffer_client(addr, "victim");
    let mut attacker = Client::named(addr, "attacker");
    victim.skip_until("* guest2 is now known as attacker");
    // 1.25 MiB of private messages in one write: more than the victim's
    // whole output limit, at once.
    let lines = 320;
    let mut burst = Vec::new();
    for i in 0..lines {
        let text = format!("p {i} {}", "y".repeat(4000));
        burst.extend_from_slice(format!(":pm victim {text}\n").as_bytes());
    }
    let writer = thread::spawn(move || {
        attacker.send_bytes(&burst);
        attacker.send(":pm victim end");
        attacker
    });
    for i in 0..lines {
        let line = victim.line();
        let expected = format!("[pm] attacker: p {i} ");
        assert!(line.starts_with(&expected), "{line:?} is not {expected:?}");
    }
    victim.expect("[pm] attacker: end");
    let mut attacker = writer.join().expect("attacker");
    attacker.send(":ping still");
    attacker.expect("* pong still");
    victim.send(":ping still");
    victim.expect("* pong still");
}

#[test]
fn flooder_at_default_flood_control_is_slowed_and_loses_nothing() {
    let flood = FloodLimit::default();
    let server = start();
    let addr = server.addr();
    let mut reader = Client::named(addr, "reader");
    let mut flooder = Client::named(addr, "flooder");
    reader.skip_until("* guest2 is now known as flooder");
    let mut pinger = Client::named(addr, "pinger");
    pinger.send(":join quiet");
    pinger.expect("* pinger joined #quiet");
    pinger.send(":part lobby");
    pinger.expect("[#lobby] * pinger left #lobby");
    // Twice the byte burst, in 4000-byte lines (the byte rate binds first).
    let lines = (2.0 * flood.byte_burst() / 4000.0) as usize;
    let payload = numbered_lines("f", 0, lines, 3999);
    let started = Instant::now();
    let writer = thread::spawn(move || {
        flooder.send_bytes(&payload);
        flooder.send("done");
        flooder
    });
    // Others are served meanwhile.
    for i in 0..20 {
        pinger.send(&format!(":ping {i}"));
        pinger.expect(&format!("* pong {i}"));
    }
    let mut next = 0;
    read_flood(&mut reader, &mut next, "flooder: done");
    let elapsed = started.elapsed();
    assert_eq!(next, lines, "every flood line arrived, in order");
    // The rate limit makes this a lower bound, whatever the machine: the
    // bytes past the burst came in no faster than the byte rate.
    let past_burst = (lines * 4000) as f64 - flood.byte_burst();
    let at_least = Duration::from_secs_f64(past_burst / flood.bytes_per_sec as f64 * 0.9);
    eprintln!(
        "{lines} lines flooded at default flood control: took {elapsed:?} (at least {at_least:?})"
    );
    assert!(
        elapsed >= at_least,
        "flood took {elapsed:?}, faster than the rate allows"
    );
    let mut flooder = writer.join().expect("flooder");
    flooder.send(":ping after");
    flooder.skip_until("* pong after");
}

#[test]
fn pipelined_rooms_and_users_answers_do_not_starve_pings() {
    raise_fd_limit(8192);
    let server = start_with(|config| config.flood = FloodLimit::OFF);
    let addr = server.addr();
    // 1,000 rooms of one member each, and 500 members in #big.
    let mut members = Vec::new();
    for i in 0..1500 {
        let mut client = Client::connect(addr);
        let room = if i < 1000 {
            format!("r{i}")
        } else {
            "big".to_string()
        };
        client.send(&format!(":join {room}"));
        client.skip_until(&format!("* {} joined #{room}", client.nick));
        client.send(":part lobby");
        client.skip_until(&format!("[#lobby] * {} left #lobby", client.nick));
        members.push(client.writer);
    }
    let mut pinger = Client::named(addr, "pinger");
    pinger.send(":join quiet");
    pinger.expect("* pinger joined #quiet");
    pinger.send(":part lobby");
    pinger.expect("[#lobby] * pinger left #lobby");
    let mut attackers = Vec::new();
    for a in 0..2 {
        let mut attacker = Client::connect(addr);
        attacker.send(":join big");
        attacker.skip_until(&format!("* {} joined #big", attacker.nick));
        let batch: String = (0..1000)
            .map(|i| format!(":rooms\n:users\n:ping {a}-{i}\n"))
            .collect();
        attackers.push(thread::spawn(move || {
            attacker.send_bytes(batch.as_bytes());
            // Read all the answers (they read, so they are not cut off).
            let mut answered = 0usize;
            let mut buf = vec![0; 256 * 1024];
            let mut tail = Vec::new();
            let last = format!("* pong {a}-999\n");
            // The other attacker may leave #big right after its last pong.
            while !String::from_utf8_lossy(&tail).contains(&last) {
                let n = attacker.reader.read(&mut buf).unwrap_or_else(|err| {
                    panic!(
                        "attacker {a} read {answered} bytes, then {err}; tail {:?}",
                        String::from_utf8_lossy(&tail)
                    )
                });
                assert!(n > 0, "attacker was closed");
                answered += n;
                tail.extend_from_slice(&buf[..n]);
                let keep = tail.len().saturating_sub(256);
                tail.drain(..keep);
            }
            answered
        }));
    }
    let mut round_trips = Vec::new();
    for i in 0..50 {
        let start = Instant::now();
        pinger.send(&format!(":ping {i}"));
        pinger.expect(&format!("* pong {i}"));
        round_trips.push(start.elapsed());
    }
    let answered: usize = attackers
        .into_iter()
        .map(|t| t.join().expect("attacker"))
        .sum();
    round_trips.sort();
    eprintln!(
        "pipelined :rooms/:users, {} MB answered: ping p50 {:?} max {:?}",
        answered >> 20,
        round_trips[25],
        round_trips[49]
    );
    assert_eq!(round_trips.len(), 50, "every ping was answered");
    for mut member in members {
        let _ = member.write_all(b":quit\n");
    }
}

#[test]
fn input_held_back_by_flood_control_does_not_count_as_idle() {
    // 10 lines a second, 10 at once, and a 1 s idle timeout for unfinished
    // lines: 40 pings and the start of a line, sent at once, are held back
    // for about 3 s. The server holds the line back, not the client.
    let server = start_with(|config| {
        config.idle_timeout = Some(Duration::from_secs(1));
        config.flood = FloodLimit {
            lines_per_sec: 10,
            bytes_per_sec: 0,
            burst_secs: 1,
        };
    });
    let mut client = Client::connect(server.addr());
    let batch: String = (0..40).map(|i| format!(":ping {i}\n")).collect();
    client.send_bytes(format!("{batch}:ping la").as_bytes());
    for i in 0..40 {
        client.expect(&format!("* pong {i}"));
    }
    client.send_bytes(b"st\n");
    client.expect("* pong last");
}

#[test]
fn websocket_lines_held_by_flood_control_all_run_before_its_close() {
    // 10 lines at once, then 10 a second: 30 messages and a close frame in
    // one write. The close waits behind the held-back lines, so every line
    // reaches the room before the leave.
    let server = start_with(|config| {
        config.flood = FloodLimit {
            lines_per_sec: 10,
            bytes_per_sec: 0,
            burst_secs: 1,
        };
    });
    let mut watcher = Client::named(server.addr(), "watcher");
    let web = server.web_addr().expect("a web address");
    let mut ws = ws_support::RawWs::connect(web);
    watcher.expect(&format!("* {} joined #lobby", ws.nick));
    let mut burst = Vec::new();
    for i in 0..30 {
        burst.extend(ws_support::masked_frame(
            ws_support::FIN | ws_support::TEXT,
            format!("w {i}").as_bytes(),
        ));
    }
    burst.extend(ws_support::masked_frame(
        ws_support::FIN | ws_support::CLOSE,
        &1000u16.to_be_bytes(),
    ));
    ws.raw(&burst);
    for i in 0..30 {
        watcher.expect(&format!("{}: w {i}", ws.nick));
    }
    watcher.expect(&format!("* {} left #lobby", ws.nick));
}

#[test]
fn many_departures_at_once_are_announced_in_order_with_the_room_served_between() {
    // A work budget of one byte: one departure is announced per loop turn,
    // the rest wait for the next turns, with everyone served in between.
    let server = start_with(|config| {
        config.flood = FloodLimit::OFF;
        config.work_budget_bytes = 1;
    });
    let addr = server.addr();
    const LEAVERS: usize = 300;
    let mut bystander = Client::named(addr, "bystander");
    let mut leavers: Vec<Client> = (0..LEAVERS)
        .map(|i| Client::named(addr, &format!("leaver{i}")))
        .collect();
    let joined = bystander.sync();
    assert!(joined
        .iter()
        .any(|l| l.ends_with("is now known as leaver299")));
    // Each says goodbye and shuts its sending side: 300 departures within
    // a few turns, each announced to the 301 members still there.
    for (i, leaver) in leavers.iter_mut().enumerate() {
        leaver.send(&format!("bye {i}"));
        leaver.half_close();
    }
    let mut said_bye = vec![false; LEAVERS];
    let mut left = vec![false; LEAVERS];
    let mut leaves = 0;
    let mut first_leave_at = None;
    let mut pongs_between = 0;
    let mut ping = 0;
    let mut ping_out = false;
    while leaves < LEAVERS {
        if first_leave_at.is_some() && !ping_out {
            ping += 1;
            bystander.send(&format!(":ping p{ping}"));
            ping_out = true;
        }
        let line = bystander.line();
        if let Some(rest) = line.strip_prefix("leaver") {
            let (n, text) = rest.split_once(": ").expect("a leaver's chat line");
            let n: usize = n.parse().unwrap();
            assert_eq!(text, format!("bye {n}"));
            assert!(!said_bye[n] && !left[n], "bye {n} once, before its leave");
            said_bye[n] = true;
        } else if let Some(rest) = line.strip_prefix("* leaver") {
            let n: usize = rest
                .strip_suffix(" left #lobby")
                .unwrap_or_else(|| panic!("a leave line, got {line:?}"))
                .parse()
                .unwrap();
            assert!(said_bye[n], "leaver{n}'s bye comes before its leave");
            assert!(!left[n], "leaver{n} announced once");
            left[n] = true;
            leaves += 1;
            first_leave_at.get_or_insert(leaves);
        } else if line.starts_with("* pong p") {
            ping_out = false;
            if leaves < LEAVERS {
                pongs_between += 1;
            }
        } else {
            panic!("unexpected line {line:?}");
        }
    }
    assert!(
        pongs_between > 0,
        "pings are answered while the departures are being announced"
    );
    // Every departure was announced and its nick freed: nobody else left.
    let rest = bystander.sync();
    assert!(
        rest.iter().all(|l| l.starts_with("* pong p")),
        "nothing after the last leave but pongs: {rest:?}"
    );
    bystander.send(":nick leaver0");
    bystander.expect("* bystander is now known as leaver0");
    eprintln!("{LEAVERS} departures at once: {pongs_between} pongs between the leave lines");
    drop(leavers);
}
