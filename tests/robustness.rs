//! The server keeps serving everyone else whatever one client or the OS
//! does: slow consumers, floods, thousands of connections, descriptor
//! exhaustion, churn, and shutdown under load. Every test is bounded in time
//! and talks only to 127.0.0.1.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// `n` chat lines of about `size` bytes each, numbered, in one buffer.
fn numbered_lines(prefix: &str, n: usize, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * (size + 1));
    for i in 0..n {
        let head = format!("{prefix} {i} ");
        out.extend_from_slice(head.as_bytes());
        out.extend(std::iter::repeat_n(b'x', size.saturating_sub(head.len())));
        out.push(b'\n');
    }
    out
}

/// Reads lines on another thread until `last` arrives; returns how many
/// lines matched `prefix` and whether they came in order.
fn count_in_background(
    mut client: Client,
    prefix: String,
    last: String,
) -> thread::JoinHandle<(usize, bool, Client)> {
    thread::spawn(move || {
        let mut count = 0;
        let mut in_order = true;
        loop {
            let line = client.line();
            if let Some(rest) = line.strip_prefix(&prefix) {
                let seq: usize = rest
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("numbered line");
                in_order &= seq == count;
                count += 1;
            }
            if line.starts_with(&last) {
                return (count, in_order, client);
            }
        }
    })
}

#[test]
fn slow_consumer_is_cut_off_and_memory_stays_bounded() {
    let server = ServerProcess::start(&NO_FLOOD_CONTROL, None);
    let addr = server.addr;
    let rss_before = server.status_kb("VmRSS");
    // Never reads, with a small receive buffer so the kernel cannot hide the
    // backlog for it.
    let silent =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    silent.set_recv_buffer_size(4096).expect("rcvbuf");
    silent.connect(&addr.into()).expect("connect");
    let mut flooder = Client::named(addr, "flooder");
    let bystander = Client::named(addr, "bystander");
    // The silent client was welcomed before the others joined.
    let lines = 20_000;
    let flood = numbered_lines("f", lines, 1000);
    let counter = count_in_background(bystander, "flooder: f ".into(), "flooder: done".into());
    flooder.send_bytes(&flood);
    flooder.send("done");
    let (received, in_order, mut bystander) = counter.join().expect("bystander thread");
    assert_eq!(received, lines, "the bystander got every line");
    assert!(in_order, "in the order sent");
    // The silent client was announced as too slow, and both others still chat.
    let mut seen = flooder.sync();
    seen.extend(bystander.sync());
    assert!(
        seen.iter().any(|l| l == "* guest1 left #lobby (too slow)"),
        "too-slow announcement in {seen:?}"
    );
    flooder.send("still here");
    bystander.expect("flooder: still here");
    let peak = server.status_kb("VmHWM");
    eprintln!("slow consumer: 20 MB flooded, server RSS {rss_before} kB before, peak {peak} kB");
    assert!(
        peak < 64 * 1024,
        "peak RSS {peak} kB is not well under 64 MiB"
    );
    drop(silent);
}

#[test]
fn ping_is_answered_while_another_client_floods() {
    let server = start_flood_off();
    let addr = server.addr();
    let mut sink = Client::named(addr, "sink");
    let mut flooder = Client::named(addr, "flooder");
    sink.skip_until("* guest2 is now known as flooder");
    let mut pinger = Client::named(addr, "pinger");
    pinger.send(":join quiet");
    pinger.expect("* pinger joined #quiet");
    // Joining keeps #lobby (protocol 1.2): leave it, away from the flood.
    pinger.send(":part lobby");
    pinger.expect("[#lobby] * pinger left #lobby");
    // The sink reads everything the flooder sends, so nobody is cut off.
    let sink_thread = thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        let mut total = 0usize;
        while let Ok(n) = sink.reader.get_mut().read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let chunk = numbered_lines("flood", 2000, 100);
    let flood_thread = thread::spawn(move || {
        let mut sent = 0usize;
        // Bounded: stops when told, or after 400 MB.
        while stop_rx.try_recv().is_err() && sent < 400 << 20 {
            if flooder.writer.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let mut round_trips = Vec::new();
    for i in 0..300 {
        let start = Instant::now();
        pinger.send(&format!(":ping {i}"));
        pinger.expect(&format!("* pong {i}"));
        round_trips.push(start.elapsed());
    }
    let _ = stop_tx.send(());
    let flooded = flood_thread.join().expect("flooder");
    drop(server);
    let _ = sink_thread.join();
    round_trips.sort();
    let p = |q: f64| round_trips[((round_trips.len() - 1) as f64 * q) as usize];
    eprintln!(
        "ping under flood ({} MB sent): p50 {:?} p99 {:?} max {:?}",
        flooded >> 20,
        p(0.5),
        p(0.99),
        p(1.0)
    );
    assert_eq!(round_trips.len(), 300, "every ping was answered");
}

#[test]
fn two_thousand_clients_all_welcomed_and_reached() {
    const CLIENTS: usize = 2000;
    let limit = raise_fd_limit(2 * CLIENTS as u64 + 200);
    if limit < 2 * CLIENTS as u64 + 100 {
        eprintln!("skipped: descriptor limit {limit} cannot be raised for {CLIENTS} clients");
        return;
    }
    let server = start();
    let addr = server.addr();
    let mut clients: Vec<Client> = (0..CLIENTS).map(|_| Client::connect(addr)).collect();
    clients[0].send("hello everyone");
    for client in clients.iter_mut().skip(1) {
        client.skip_until("guest1: hello everyone");
    }
    // The first client saw every other join, in order.
    let joins = clients[0].sync();
    assert_eq!(joins.len(), CLIENTS - 1);
    assert_eq!(
        joins[CLIENTS - 2],
        format!("* guest{CLIENTS} joined #lobby")
    );
    // 1,999 leave at once; their departures are announced a work budget's
    // worth per turn, and the first client sees every one.
    let mut witness = clients.remove(0);
    drop(clients);
    for _ in 1..CLIENTS {
        let line = witness.line();
        assert!(line.ends_with(" left #lobby"), "{line:?}");
    }
    drop(witness);
    // Every slot and nick is free again.
    let mut after = Client::connect(addr);
    assert_eq!(after.nick, format!("guest{}", CLIENTS + 1));
    after.send(":users");
    let users = after.skip_until(&format!("* users in #lobby: {}", after.nick));
    assert!(
        users.iter().all(|l| l.contains(" left #lobby")),
        "{users:?}"
    );
    after.send(":rooms");
    after.expect("* rooms: #lobby (1)");
}

#[test]
fn out_of_descriptors_keeps_serving_and_recovers() {
    // Room for the server's own descriptors and a handful of clients.
    let server = ServerProcess::start(&[], Some(24));
    let addr = server.addr;
    let mut clients = Vec::new();
    let mut waiting = Vec::new();
    for _ in 0..40 {
        let mut client = Client::connect_raw(addr);
        client
            .reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        match client.try_line() {
            Ok(Some(line)) if line.starts_with("* welcome ") => {
                client.nick = line["* welcome ".len()..].to_string();
                clients.push(client);
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => waiting.push(client),
        }
    }
    assert!(clients.len() >= 2, "some clients got in");
    assert!(!waiting.is_empty(), "the descriptor limit was reached");
    server.expect_log("accept failed");
    // The loop neither dies nor spins: clients in chat still talk, and over
    // a quiet second the server uses little CPU.
    for client in &mut clients {
        client
            .reader
            .get_ref()
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        client.sync();
    }
    clients[0].send("still chatting");
    let expected = format!("{}: still chatting", clients[0].nick);
    clients[1].skip_until(&expected);
    let before = server.cpu_ticks();
    let mut quiet = [0u8; 1];
    clients[1]
        .reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    assert!(clients[1].reader.get_mut().read(&mut quiet).is_err());
    let used = server.cpu_ticks() - before;
    assert!(
        used < 50,
        "server used {used} ticks in a quiet second: spinning"
    );
    // Freeing descriptors lets the waiting connections in.
    let freed = clients.len();
    drop(clients);
    let mut welcomed = 0;
    for client in waiting.iter_mut().take(freed.saturating_sub(1)) {
        client
            .reader
            .get_ref()
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        let line = client.line();
        assert!(line.starts_with("* welcome "), "{line}");
        welcomed += 1;
    }
    assert!(welcomed >= 1);
}

#[test]
fn churn_loses_no_line_and_leaks_no_slot() {
    const CHURNERS: usize = 1500;
    let server = start();
    let addr = server.addr();
    let mut observer = Client::named(addr, "observer");
    for i in 0..CHURNERS {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut stream = stream;
        // Do not wait for the welcome: the line may arrive before it is sent.
        stream
            .write_all(format!("last words {i}\n").as_bytes())
            .expect("send");
        match i % 3 {
            // Half-close after sending, then wait for the server's close.
            0 => {
                stream
                    .shutdown(std::net::Shutdown::Write)
                    .expect("shutdown");
                stream
                    .set_read_timeout(Some(READ_TIMEOUT))
                    .expect("timeout");
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest);
            }
            // Abortive close: RST.
            1 => {
                let socket = socket2::Socket::from(stream);
                socket
                    .set_linger(Some(Duration::ZERO))
                    .expect("SO_LINGER 0");
                drop(socket);
            }
            // Plain close.
            _ => drop(stream),
        }
    }
    // Every churner's line and leave reached the observer, line first.
    let mut said = vec![false; CHURNERS];
    let mut left = 0;
    while left < CHURNERS {
        let line = observer.line();
        if let Some((nick, text)) = line.split_once(": last words ") {
            let i: usize = text.parse().expect("number");
            assert!(!said[i], "duplicate line {line}");
            said[i] = true;
            assert!(nick.starts_with("guest"));
        } else if line.contains(" left #lobby") {
            left += 1;
        }
    }
    let lost: Vec<usize> = (0..CHURNERS).filter(|&i| !said[i]).collect();
    assert!(lost.is_empty(), "lines lost: {lost:?}");
    let next = Client::connect(addr);
    assert_eq!(next.nick, format!("guest{}", CHURNERS + 2));
    observer.skip_until(&format!("* {} joined #lobby", next.nick));
    observer.send(":users");
    observer.expect(&format!("* users in #lobby: {} observer", next.nick));
}

/// Reads a socket to its end as fast as it can; returns the bytes read and
/// whether the last line was the shutdown goodbye. `progress` hears once
/// when a megabyte has arrived.
fn read_until_closed(
    mut stream: TcpStream,
    progress: Option<mpsc::Sender<()>>,
) -> thread::JoinHandle<(usize, bool)> {
    thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        let mut tail = Vec::new();
        let mut total = 0;
        let mut progress = progress;
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 4096 {
                tail.drain(..tail.len() - 64);
            }
            if total >= 1 << 20 {
                if let Some(progress) = progress.take() {
                    let _ = progress.send(());
                }
            }
        }
        (total, tail.ends_with(b"\n* server shutting down\n"))
    })
}

#[test]
fn sigterm_under_load_says_goodbye_and_exits_zero() {
    let server = ServerProcess::start(&NO_FLOOD_CONTROL, None);
    let addr = server.addr;
    let mut readers = Vec::new();
    for i in 0..8 {
        let client = Client::connect(addr);
        let mut writer = client.writer.try_clone().expect("clone");
        // Floods until the server closes; bounded by volume.
        thread::spawn(move || {
            let chunk = numbered_lines(&format!("c{i}"), 500, 80);
            for _ in 0..2000 {
                if writer.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        readers.push(read_until_closed(client.writer, None));
    }
    let (flowing_tx, flowing_rx) = mpsc::channel();
    let watcher = Client::connect(addr);
    let watcher = read_until_closed(watcher.writer, Some(flowing_tx));
    flowing_rx
        .recv_timeout(READ_TIMEOUT)
        .expect("the flood reaches the watcher");
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "exit status");
    readers.push(watcher);
    for reader in readers {
        let (bytes, goodbye) = reader.join().expect("reader");
        assert!(goodbye, "a client read {bytes} bytes but no goodbye last");
    }
}

#[test]
fn sigint_closes_a_client_that_never_reads() {
    let server = ServerProcess::start(&["--close-timeout", "2"], None);
    let addr = server.addr;
    let _silent = TcpStream::connect(addr).expect("connect");
    let mut reader = Client::connect(addr);
    server.signal(libc::SIGINT);
    reader.expect("* server shutting down");
    reader.expect_closed();
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn unfinished_line_is_timed_out_and_announced() {
    let server = start_with(|config| config.idle_timeout = Some(Duration::from_secs(1)));
    let mut watcher = Client::named(server.addr(), "watcher");
    let mut idle = Client::named(server.addr(), "sleepy");
    watcher.skip_until("* guest2 is now known as sleepy");
    // Only a line left unfinished counts: a quiet reader is never idle.
    idle.send_bytes(b"half a li");
    // The watcher keeps itself alive with pings while it waits.
    let left = loop {
        watcher.send(":ping alive");
        let lines = watcher.skip_until("* pong alive");
        if let Some(line) = lines.into_iter().find(|l| l.contains(" left ")) {
            break line;
        }
        let mut byte = [0u8; 1];
        watcher
            .reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        // Wait for the announcement (or the next round of pings).
        if let Ok(n) = watcher.reader.get_mut().peek(&mut byte) {
            assert!(n > 0, "watcher closed");
        }
        watcher
            .reader
            .get_ref()
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
    };
    assert_eq!(left, "* sleepy left #lobby");
    idle.expect("! idle timeout");
    idle.expect_closed();
}

#[test]
fn second_signal_closes_everything_at_once() {
    let server = ServerProcess::start(&["--close-timeout", "600"], None);
    // Never reads nor closes: the graceful close would wait its full timeout.
    let _silent = TcpStream::connect(server.addr).expect("connect");
    let mut reader = Client::connect(server.addr);
    server.signal(libc::SIGINT);
    reader.expect("* server shutting down");
    server.expect_log("shutting down");
    server.signal(libc::SIGINT);
    let status = server.wait_exit(READ_TIMEOUT);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_burst_past_the_limit_in_one_turn_does_not_cut_off_a_reader() {
    // 64 KiB of chat in one write is one read and one fan-out turn: eight
    // times the output limit queued for the reader before any flush. The
    // socket can take it, so the reader is busy, not slow.
    let server = start_with(|config| {
        config.max_outbuf_bytes = 8 * 1024;
        config.flood = loopchat::policy::limits::FloodLimit::OFF;
    });
    let mut reader = Client::named(server.addr(), "reader");
    let mut sender = Client::named(server.addr(), "sender");
    reader.skip_until("* guest2 is now known as sender");
    let burst = numbered_lines("b", 1000, 64);
    assert!(burst.len() >= 64 * 1000);
    sender.send_bytes(&burst);
    sender.send("end");
    let lines = reader.skip_until("sender: end");
    assert_eq!(lines.len(), 1000, "every burst line arrived");
    assert!(lines.iter().all(|l| l.starts_with("sender: b ")));
}

#[test]
fn input_past_the_read_budget_is_served_on_later_turns() {
    // With a 1 KiB budget, 1,000 lines in one write take many turns; with
    // edge-triggered readiness no new event comes for the rest, so only the
    // server's own read list can bring it in.
    let server = start_with(|config| {
        config.read_budget_bytes = 1024;
        config.flood = loopchat::policy::limits::FloodLimit::OFF;
    });
    let mut reader = Client::named(server.addr(), "reader");
    let mut sender = Client::named(server.addr(), "sender");
    reader.skip_until("* guest2 is now known as sender");
    sender.send_bytes(&numbered_lines("n", 1000, 100));
    for i in 0..1000 {
        let line = reader.line();
        let expected = format!("sender: n {i} ");
        assert!(line.starts_with(&expected), "{line:?} is not {expected:?}");
    }
    // Meanwhile others were served: a ping answers after the backlog.
    sender.send(":ping done");
    sender.skip_until("* pong done");
}
