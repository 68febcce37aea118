//! `/metrics` over real sockets: the exposition passes `promtool check
//! metrics`, counters match the traffic that really happened (exactly, not
//! roughly), scrapes are bounded and never disturb chatting clients, and the
//! `process_*` metrics describe the server's own process.

mod common;
mod ws_support;

use common::tls::{TestPki, TlsClient};
use common::*;
use loopchat::policy::limits::FloodLimit;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Starts an in-process server with metrics on a free loopback port.
fn start_with_metrics(
    adjust: impl FnOnce(&mut loopchat::Config),
) -> (loopchat::RunningServer, SocketAddr) {
    let server = start_with(|config| {
        config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        adjust(config);
    });
    let metrics = server.metrics_addr().expect("metrics are served");
    (server, metrics)
}

/// One HTTP exchange: sends `request`, reads until the server closes.
/// Returns the status code, the header block and the body.
fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to metrics");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.write_all(request).expect("send request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("response ends with a close");
    let response = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head.to_string(), body.to_string())
}

/// `GET /metrics`: the body, after checking the status.
fn scrape(addr: SocketAddr) -> String {
    let (status, head, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: loopchat\r\n\r\n");
    assert_eq!(status, 200, "{head}");
    body
}

/// Every sample of an exposition, keyed by name and labels as written
/// (`loopchat_disconnects_total{reason="quit"}`).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (key, value) = line.rsplit_once(' ').expect("sample has a value");
            (key.to_string(), value.parse().expect("numeric value"))
        })
        .collect()
}

/// Scrapes until `done` holds for the samples (state the server settles a
/// turn after the clients can see it), at most [`READ_TIMEOUT`].
fn scrape_until(addr: SocketAddr, done: impl Fn(&Metrics) -> bool) -> Metrics {
    let start = Instant::now();
    loop {
        let metrics = Metrics(samples(&scrape(addr)));
        if done(&metrics) {
            return metrics;
        }
        assert!(
            start.elapsed() < READ_TIMEOUT,
            "metrics never settled: {:?}",
            metrics.0
        );
        thread::yield_now();
    }
}

struct Metrics(HashMap<String, f64>);

impl Metrics {
    fn get(&self, key: &str) -> u64 {
        let value = *self
            .0
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key} in {:?}", self.0));
        assert!(value >= 0.0 && value.fract() == 0.0, "{key} = {value}");
        value as u64
    }
}

/// Runs `promtool check metrics` on `text`. Returns false when promtool is
/// missing outside CI (the test is then skipped with a reason); in CI a
/// missing promtool fails.
fn promtool_check(text: &str) -> bool {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("promtool is required in CI (Debian package prometheus): {err}")
        }
        Err(err) => {
            eprintln!("skipped: promtool not found ({err}); apt-get install prometheus");
            return false;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().expect("promtool runs");
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics failed: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    true
}

/// A test client that counts every line and byte it sends and receives.
struct Counted {
    client: Client,
    lines_in: u64,
    bytes_in: u64,
    lines_out: u64,
    bytes_out: u64,
}

impl Lines for Counted {
    fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes());
    }

    /// The next line, counted.
    fn try_line(&mut self) -> std::io::Result<Option<String>> {
        let line = self.client.try_line()?;
        if let Some(line) = &line {
            self.lines_in += 1;
            self.bytes_in += line.len() as u64 + 1;
        }
        Ok(line)
    }
}

impl Counted {
    fn connect(addr: SocketAddr) -> Counted {
        let mut counted = Counted {
            client: Client::connect_raw(addr),
            lines_in: 0,
            bytes_in: 0,
            lines_out: 0,
            bytes_out: 0,
        };
        let welcome = counted.line();
        let nick = welcome
            .strip_prefix("* welcome ")
            .expect("welcome")
            .to_string();
        counted.expect(&format!("* {nick} joined #lobby"));
        counted.client.nick = nick;
        counted
    }

    fn nick(&self) -> &str {
        &self.client.nick
    }

    fn send_bytes(&mut self, bytes: &[u8]) {
        self.lines_out += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        self.bytes_out += bytes.len() as u64;
        self.client.send_bytes(bytes);
    }

    /// Reads to the server's close; counts it all.
    fn read_to_close(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        let _ = self.client.reader.read_to_end(&mut rest);
        self.bytes_in += rest.len() as u64;
        let text = String::from_utf8(rest).expect("UTF-8");
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        self.lines_in += lines.len() as u64;
        lines
    }
}

/// Two rounds of `:ping`: after the first, everything every client sent has
/// been handled; after the second, every client has read everything it was
/// sent. Returns what each client read.
fn settle(clients: &mut [Counted]) -> Vec<Vec<String>> {
    let mut seen: Vec<Vec<String>> = clients.iter_mut().map(Counted::sync).collect();
    for (client, seen) in clients.iter_mut().zip(&mut seen) {
        seen.extend(client.sync());
    }
    seen
}

#[test]
fn promtool_accepts_the_exposition() {
    let (server, metrics) = start_with_metrics(|_| {});
    let mut alice = Client::named(server.addr(), "alice");
    let mut bob = Client::named(server.addr(), "bob");
    alice.send("hello");
    alice.send(":me waves");
    alice.send(":pm bob psst");
    alice.send(":quit bye");
    alice.read_to_close();
    bob.sync();
    let text = scrape(metrics);
    for family in [
        "loopchat_connections_open",
        "loopchat_connections_accepted_total",
        "loopchat_connections_refused_total",
        "loopchat_disconnects_total",
        "loopchat_lines_sent_total",
        "loopchat_output_queued_bytes",
        "loopchat_loop_turn_duration_seconds",
        "loopchat_fanout_recipients",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing from\n{text}"
        );
    }
    promtool_check(&text);
}

#[test]
fn counters_match_the_traffic_exactly() {
    const N: usize = 4;
    const M: usize = 10;
    const FLOOD_CHUNK: usize = 500;
    const FLOOD_MAX: usize = 100 * FLOOD_CHUNK;
    const FLOOD_LINE: usize = 200;
    let (server, metrics) = start_with_metrics(|config| {
        config.max_clients = N + 2;
        config.max_outbuf_bytes = 64 * 1024;
        // The flood below is the point; flood control has its own test.
        config.flood = FloodLimit::OFF;
    });
    let addr = server.addr();

    // Phase A: N clients, M chat lines, a :me and a private message; every
    // client reads everything it was sent.
    let mut clients: Vec<Counted> = (0..N).map(|_| Counted::connect(addr)).collect();
    for i in 0..M {
        clients[0].send(&format!("line {i}"));
    }
    clients[3].send(":me waves");
    let to = clients[2].nick().to_string();
    clients[1].send(&format!(":pm {to} psst"));
    settle(&mut clients);
    let a = Metrics(samples(&scrape(metrics)));
    let sum = |f: &dyn Fn(&Counted) -> u64| clients.iter().map(f).sum::<u64>();
    assert_eq!(
        a.get("loopchat_connections_accepted_total{transport=\"tcp\"}"),
        N as u64
    );
    assert_eq!(
        a.get("loopchat_connections_open{transport=\"tcp\"}"),
        N as u64
    );
    assert_eq!(a.get("loopchat_clients"), N as u64);
    assert_eq!(a.get("loopchat_clients_limit"), N as u64 + 2);
    assert_eq!(
        a.get("loopchat_lines_received_total"),
        sum(&|c| c.lines_out)
    );
    assert_eq!(
        a.get("loopchat_lines_received_total"),
        M as u64 + 2 + 2 * N as u64
    );
    assert_eq!(
        a.get("loopchat_received_bytes_total"),
        sum(&|c| c.bytes_out)
    );
    assert_eq!(a.get("loopchat_lines_sent_total"), sum(&|c| c.lines_in));
    assert_eq!(a.get("loopchat_sent_bytes_total"), sum(&|c| c.bytes_in));
    assert_eq!(a.get("loopchat_room_lines_total"), M as u64 + 1);
    assert_eq!(a.get("loopchat_private_messages_total"), 1);
    assert_eq!(a.get("loopchat_fanout_recipients_count"), M as u64 + 1);
    assert_eq!(
        a.get("loopchat_fanout_recipients_sum"),
        (M as u64 + 1) * (N as u64 - 1)
    );
    assert_eq!(a.get("loopchat_fanout_recipients_bucket{le=\"2\"}"), 0);
    assert_eq!(
        a.get("loopchat_fanout_recipients_bucket{le=\"5\"}"),
        M as u64 + 1
    );
    assert_eq!(a.get("loopchat_output_queued_bytes"), 0);
    assert_eq!(a.get("loopchat_output_queued_max_bytes"), 0);
    assert_eq!(a.get("loopchat_discarded_bytes_total"), 0);
    assert_eq!(
        a.get("loopchat_connections_refused_total{reason=\"server_full\"}"),
        0
    );
    for (key, value) in &a.0 {
        if key.starts_with("loopchat_disconnects_total") {
            assert_eq!(*value, 0.0, "{key}");
        }
    }
    assert!(a.get("loopchat_loop_turn_duration_seconds_count") > 0);

    // Phase B: one client closes, one quits, one newcomer is refused, and
    // one client that never reads is cut off as too slow during a flood.
    let mut closer = clients.pop().unwrap();
    assert!(closer.sync().is_empty());
    let closer_nick = closer.nick().to_string();
    let (closer_lines, closer_bytes) = (closer.lines_in, closer.bytes_in);
    let (closer_lines_out, closer_bytes_out) = (closer.lines_out, closer.bytes_out);
    drop(closer);
    clients[0].skip_until(&format!("* {closer_nick} left #lobby"));

    let silent = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    silent.set_recv_buffer_size(4096).unwrap();
    silent.connect(&addr.into()).unwrap();
    let mut silent = TcpStream::from(silent);
    let silent_nick = {
        let joined = clients[0].line();
        joined
            .strip_prefix("* ")
            .and_then(|rest| rest.strip_suffix(" joined #lobby"))
            .unwrap_or_else(|| panic!("expected a join, got {joined:?}"))
            .to_string()
    };
    let mut quitter = Counted::connect(addr);
    clients[0].skip_until(&format!("* {} joined #lobby", quitter.nick()));
    // N - 1 + silent + quitter = N + 1 open; one more fits, then full.
    let mut last = Counted::connect(addr);
    let mut refused = Counted {
        client: Client::connect_raw(addr),
        lines_in: 0,
        bytes_in: 0,
        lines_out: 0,
        bytes_out: 0,
    };
    refused.expect("! server full");
    assert!(refused.read_to_close().is_empty());
    refused.client.half_close();
    quitter.send(":quit");
    quitter.skip_until("* bye");
    assert!(quitter.read_to_close().is_empty());
    // Our FIN lets the server drop the connection now, not at its close
    // timeout.
    quitter.client.half_close();
    last.sync();

    let flooder_nick = clients[0].nick().to_string();
    let readers: Vec<_> = clients
        .drain(1..)
        .chain(std::iter::once(last))
        .map(|mut reader| {
            let done = format!("{flooder_nick}: done");
            thread::spawn(move || {
                reader.skip_until(&done);
                reader
            })
        })
        .collect();
    // Flood the room until the silent client is cut off: how much the
    // kernel's socket buffers absorb first is the kernel's business.
    let cut_off = format!("* {silent_nick} left #lobby (too slow)");
    let mut flood_lines = 0;
    while flood_lines < FLOOD_MAX {
        let mut flood = Vec::new();
        for i in flood_lines..flood_lines + FLOOD_CHUNK {
            let head = format!("f {i} ");
            flood.extend_from_slice(head.as_bytes());
            flood.extend(std::iter::repeat_n(b'x', FLOOD_LINE - head.len()));
            flood.push(b'\n');
        }
        clients[0].send_bytes(&flood);
        flood_lines += FLOOD_CHUNK;
        if clients[0].sync().contains(&cut_off) {
            break;
        }
    }
    assert!(
        flood_lines < FLOOD_MAX,
        "the silent client was never cut off"
    );
    clients[0].send("done");
    clients.extend(
        readers
            .into_iter()
            .map(|reader| reader.join().expect("reader")),
    );
    settle(&mut clients);
    // The silent client now reads what the server wrote to it before the
    // cut-off, to the close.
    silent.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut silent_got = Vec::new();
    silent
        .read_to_end(&mut silent_got)
        .expect("silent client reads to the close");
    let silent_complete_lines = silent_got.iter().filter(|&&b| b == b'\n').count() as u64;

    let b = scrape_until(metrics, |m| {
        m.get("loopchat_connections_open{transport=\"tcp\"}") == N as u64
    });
    let others: Vec<&Counted> = clients.iter().chain([&quitter, &refused]).collect();
    let lines_in: u64 = others.iter().map(|c| c.lines_in).sum::<u64>() + closer_lines;
    let bytes_in: u64 = others.iter().map(|c| c.bytes_in).sum::<u64>() + closer_bytes;
    let lines_out: u64 = others.iter().map(|c| c.lines_out).sum::<u64>() + closer_lines_out;
    let bytes_out: u64 = others.iter().map(|c| c.bytes_out).sum::<u64>() + closer_bytes_out;
    assert_eq!(b.get("loopchat_disconnects_total{reason=\"too_slow\"}"), 1);
    assert_eq!(b.get("loopchat_too_slow_cutoffs_total{limit=\"queue\"}"), 1);
    assert_eq!(b.get("loopchat_too_slow_cutoffs_total{limit=\"soft\"}"), 0);
    assert_eq!(
        b.get("loopchat_too_slow_cutoffs_total{limit=\"global\"}"),
        0
    );
    assert_eq!(b.get("loopchat_flood_throttles_total"), 0);
    assert_eq!(b.get("loopchat_disconnects_total{reason=\"quit\"}"), 1);
    assert_eq!(
        b.get("loopchat_disconnects_total{reason=\"closed_by_peer\"}"),
        1
    );
    let disconnects: f64 =
        b.0.iter()
            .filter(|(key, _)| key.starts_with("loopchat_disconnects_total"))
            .map(|(_, value)| value)
            .sum();
    assert_eq!(disconnects, 3.0, "no other disconnect: {:?}", b.0);
    assert_eq!(
        b.get("loopchat_connections_accepted_total{transport=\"tcp\"}"),
        N as u64 + 3
    );
    assert_eq!(
        b.get("loopchat_connections_refused_total{reason=\"server_full\"}"),
        1
    );
    assert_eq!(b.get("loopchat_clients"), N as u64);
    assert_eq!(b.get("loopchat_lines_received_total"), lines_out);
    assert_eq!(b.get("loopchat_received_bytes_total"), bytes_out);
    assert_eq!(
        b.get("loopchat_sent_bytes_total"),
        bytes_in + silent_got.len() as u64,
        "every byte written reached a client"
    );
    let discarded = b.get("loopchat_discarded_bytes_total");
    assert!(discarded > 0, "the silent client's queue was thrown away");
    // Lines queued for the silent client: every line it read whole, at
    // most one it read in part, and those thrown away (20 bytes at least).
    let silent_queued = b.get("loopchat_lines_sent_total") - lines_in;
    assert!(
        (silent_complete_lines..=silent_complete_lines + 1 + discarded / 20)
            .contains(&silent_queued),
        "{silent_queued} lines queued for the silent client, {silent_complete_lines} read"
    );
    assert_eq!(
        b.get("loopchat_room_lines_total"),
        M as u64 + 1 + flood_lines as u64 + 1
    );
    let fanout = b.get("loopchat_fanout_recipients_count");
    assert_eq!(fanout, M as u64 + 1 + flood_lines as u64 + 1);
    let flood_recipients =
        b.get("loopchat_fanout_recipients_sum") - (M as u64 + 1) * (N as u64 - 1);
    // The flood reached the two readers, the last client and, until it was
    // cut off, the silent one.
    assert!(
        (3 * (flood_lines as u64 + 1)..4 * (flood_lines as u64 + 1)).contains(&flood_recipients),
        "{flood_recipients}"
    );
    assert_eq!(b.get("loopchat_output_queued_bytes"), 0);
    promtool_check(&scrape(metrics));
}

#[test]
fn http_answers_follow_the_rules() {
    let (_server, metrics) = start_with_metrics(|_| {});
    let (status, head, body) = http(metrics, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200);
    assert!(head.contains("\r\nConnection: close"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    let length = format!("\r\nContent-Length: {}", body.len());
    assert!(head.contains(&length), "{head} for {} bytes", body.len());

    let (status, head, body) = http(metrics, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(body.is_empty(), "HEAD has no body: {body:?}");
    assert!(head.contains("\r\nContent-Length: "), "{head}");

    let (status, head, _) = http(metrics, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 405);
    assert!(head.contains("\r\nAllow: GET, HEAD"), "{head}");
    let (status, _, _) = http(metrics, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 404);
    let (status, _, _) = http(metrics, b"GET /metricsX HTTP/1.1\r\n\r\n");
    assert_eq!(status, 404);
    let (status, _, _) = http(metrics, b"\x16\x03\x01 not http at all\r\n\r\n");
    assert_eq!(status, 400);
    // A request split across many writes is still one request.
    let mut stream = TcpStream::connect(metrics).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" {
        stream.write_all(&[*byte]).unwrap();
    }
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
}

#[test]
fn scrapes_are_bounded_in_size_number_and_time() {
    use loopchat::net::metrics_http::{MAX_REQUEST_BYTES, MAX_SCRAPES};
    let (server, metrics) = start_with_metrics(|config| {
        config.close_timeout = Duration::from_secs(2);
    });
    // Too large: answered 431 without reading on.
    let mut huge = b"GET /metrics HTTP/1.1\r\nX-Padding: ".to_vec();
    huge.resize(MAX_REQUEST_BYTES + 100, b'a');
    let (status, _, _) = http(metrics, &huge);
    assert_eq!(status, 431);

    // Scrapers that never finish their request fill every slot ...
    let stalled: Vec<TcpStream> = (0..MAX_SCRAPES)
        .map(|_| {
            let mut stream = TcpStream::connect(metrics).unwrap();
            stream.write_all(b"GET /met").unwrap();
            stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            stream
        })
        .collect();
    // ... the next one is closed unanswered ...
    let mut extra = TcpStream::connect(metrics).unwrap();
    extra.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let _ = extra.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
    let mut answer = Vec::new();
    let _ = extra.read_to_end(&mut answer);
    assert!(
        answer.is_empty(),
        "over the cap: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // ... chat goes on meanwhile ...
    let mut client = Client::connect(server.addr());
    client.send(":ping busy");
    client.expect("* pong busy");
    // ... and each stalled scraper is closed at its deadline, unanswered.
    for mut stream in stalled {
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer) {
            Ok(_) => assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer)),
            Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}"),
        }
    }
    // The slots are free again.
    let text = scrape(metrics);
    assert!(text.contains("loopchat_clients 1\n"), "{text}");
}

#[test]
fn scraping_while_a_thousand_clients_chat_disturbs_nobody() {
    const CLIENTS: usize = 1000;
    const ROOMS: usize = 20;
    const MIN_SCRAPES: usize = 20;
    const MAX_ROUNDS: usize = 200;
    let limit = raise_fd_limit(2 * CLIENTS as u64 + 200);
    if limit < 2 * CLIENTS as u64 + 100 {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "descriptor limit {limit} is too low for {CLIENTS} clients in CI"
        );
        eprintln!("skipped: descriptor limit {limit} cannot be raised for {CLIENTS} clients");
        return;
    }
    let (server, metrics) = start_with_metrics(|_| {});
    // Each client moves to its room at once, so joins stay within rooms.
    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|i| {
            let mut client = Client::connect(server.addr());
            client.send(&format!(":join r{}", i % ROOMS));
            client.expect(&format!("* {} joined #r{}", client.nick, i % ROOMS));
            // Version 1.2 keeps #lobby: leave it, so the lobby stays empty.
            client.send(":part lobby");
            client.expect(&format!("[#lobby] * {} left #lobby", client.nick));
            client
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicUsize::new(0));
    let scraper = {
        let (stop, scrapes) = (stop.clone(), scrapes.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let text = scrape(metrics);
                assert!(text.contains("loopchat_connections_open{transport=\"tcp\"} "));
                scrapes.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // Rounds of chat, each client saying one line to its room and pinging,
    // until the scraper has scraped many times in the middle of it.
    let mut chat_lines = vec![0usize; CLIENTS];
    let read_round = |clients: &mut [Client], token: &str, chat_lines: &mut [usize]| {
        for client in clients.iter_mut() {
            client.send(&format!(":ping {token}"));
        }
        for (i, client) in clients.iter_mut().enumerate() {
            for line in client.skip_until(&format!("* pong {token}")) {
                if line.contains(": round ") {
                    chat_lines[i] += 1;
                } else {
                    assert!(line.contains(" joined #r"), "unexpected {line:?}");
                }
            }
        }
    };
    let mut rounds = 0;
    while rounds < 3 || (scrapes.load(Ordering::SeqCst) < MIN_SCRAPES && rounds < MAX_ROUNDS) {
        for client in clients.iter_mut() {
            client.send(&format!("round {rounds}"));
        }
        read_round(&mut clients, &format!("r{rounds}"), &mut chat_lines);
        rounds += 1;
    }
    let during = scrapes.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    scraper.join().expect("every scrape succeeded");
    // One more round of pings: every line of every round has arrived.
    read_round(&mut clients, "end", &mut chat_lines);
    assert!(
        during >= MIN_SCRAPES,
        "only {during} scrapes in {rounds} rounds"
    );
    let per_room = CLIENTS / ROOMS;
    for (i, &got) in chat_lines.iter().enumerate() {
        assert_eq!(got, (per_room - 1) * rounds, "client {i} missed lines");
    }
    let m = Metrics(samples(&scrape(metrics)));
    assert_eq!(
        m.get("loopchat_connections_open{transport=\"tcp\"}"),
        CLIENTS as u64
    );
    assert_eq!(
        m.get("loopchat_room_lines_total"),
        (CLIENTS * rounds) as u64
    );
    assert_eq!(
        m.get("loopchat_fanout_recipients_sum"),
        (CLIENTS * rounds * (per_room - 1)) as u64
    );
    for (key, value) in &m.0 {
        if key.starts_with("loopchat_disconnects_total") {
            assert_eq!(*value, 0.0, "{key}");
        }
    }
    eprintln!("{CLIENTS} clients, {rounds} rounds of chat and ping, {during} scrapes meanwhile");
}

#[test]
fn process_metrics_describe_the_server_process() {
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let server = ServerProcess::start(
        &["--metrics-addr", "127.0.0.1:0", "--max-clients", "100"],
        Some(4096),
    );
    let addr = server.metrics_addr();
    let mut client = Client::connect(server.addr);
    client.send(":ping");
    client.expect("* pong");
    let text = scrape(addr);
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let m = samples(&text);
    let get = |key: &str| *m.get(key).unwrap_or_else(|| panic!("no {key} in\n{text}"));
    assert_eq!(get("process_max_fds"), 4096.0);
    let start = get("process_start_time_seconds");
    // /proc counts in clock ticks from boot: allow a couple of seconds.
    assert!(
        start > before - 2.0 && start < after + 2.0,
        "{before} {start} {after}"
    );
    let rss = get("process_resident_memory_bytes");
    let rss_now = server.status_kb("VmRSS") as f64 * 1024.0;
    assert!(
        rss > rss_now / 2.0 && rss < rss_now * 2.0,
        "{rss} vs VmRSS {rss_now}"
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .count() as f64;
    // The scrape's own socket was open while it was measured.
    assert!(
        (fds..=fds + 1.0).contains(&get("process_open_fds")),
        "{fds} {text}"
    );
    let cpu = get("process_cpu_seconds_total");
    assert!(
        cpu >= 0.0 && cpu <= server.cpu_ticks() as f64 / 100.0 + 1.0,
        "{cpu}"
    );
    assert_eq!(get("loopchat_clients"), 1.0);
    assert_eq!(get("loopchat_clients_limit"), 100.0);
    promtool_check(&text);
}

#[test]
fn no_metrics_listener_unless_asked() {
    let server = start();
    assert_eq!(server.metrics_addr(), None);
}

#[test]
fn wrong_passwords_and_bad_lines_are_counted() {
    let (server, metrics) = start_with_metrics(|config| {
        config.password = Some("sesame".into());
        config.max_line_bytes = 16;
    });
    let mut client = Client::connect_raw(server.addr());
    client.expect("* password required");
    client.send(":auth nope");
    client.expect("! wrong password");
    client.send(":auth still-nope");
    client.expect("! wrong password");
    client.send(":auth sesame");
    client.read_welcome();
    client.send_bytes(b"\xff\xfe not UTF-8\n");
    client.expect("! invalid UTF-8");
    client.send("this line is longer than sixteen bytes");
    client.expect("! line too long (max 16 bytes)");
    client.send("");
    client.sync();
    let m = Metrics(samples(&scrape(metrics)));
    assert_eq!(m.get("loopchat_auth_failures_total"), 2);
    // Three :auth, two bad lines and the :ping; the empty line is not one.
    assert_eq!(m.get("loopchat_lines_received_total"), 6);
    // The prompt, two refusals, welcome, join, two errors, pong.
    assert_eq!(m.get("loopchat_lines_sent_total"), 8);
    assert_eq!(m.get("loopchat_room_lines_total"), 0);
}

#[test]
fn refusals_and_lockouts_are_counted_by_reason() {
    let (server, metrics) = start_with_metrics(|config| {
        config.password = Some("sesame".into());
        config.guard.max_per_address = 2;
        config.guard.limit_loopback = true;
        config.guard.auth_max_failures = 2;
    });
    let mut first = Client::connect_raw(server.addr());
    first.expect("* password required");
    let mut second = Client::connect_raw(server.addr());
    second.expect("* password required");
    let mut third = Client::connect_raw(server.addr());
    third.expect("! too many connections from your address");
    third.expect_closed();
    first.send(":auth wrong");
    first.expect("! wrong password");
    first.send(":auth wrong again");
    let last = first.read_to_close();
    assert!(
        last.iter().any(|l| l.starts_with("! too many attempts")),
        "{last:?}"
    );
    // The address is locked out now: even the right password is refused.
    second.send(":auth sesame");
    let last = second.read_to_close();
    assert!(
        last.iter().any(|l| l.starts_with("! too many attempts")),
        "{last:?}"
    );
    drop((first, second, third));
    let m = scrape_until(metrics, |m| {
        m.get("loopchat_connections_open{transport=\"tcp\"}") == 0
    });
    assert_eq!(
        m.get("loopchat_connections_refused_total{reason=\"per_address_limit\"}"),
        1
    );
    assert_eq!(
        m.get("loopchat_connections_refused_total{reason=\"server_full\"}"),
        0
    );
    assert_eq!(
        m.get("loopchat_connections_accepted_total{transport=\"tcp\"}"),
        2
    );
    assert_eq!(m.get("loopchat_auth_failures_total"), 2);
    assert_eq!(m.get("loopchat_auth_lockouts_total"), 1);
    assert_eq!(
        m.get("loopchat_disconnects_total{reason=\"auth_lockout\"}"),
        2
    );
}

#[test]
fn each_transport_is_counted_apart() {
    // Plain TCP and WebSocket on one server; a page load is not a client.
    let (server, metrics) = start_with_metrics(|_| {});
    let web = server.web_addr().expect("the web address");
    let mut tcp = Client::connect(server.addr());
    let page = ws_support::http_response(web, &format!("GET / HTTP/1.1\r\nHost: {web}\r\n\r\n"));
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    let mut ws = ws_support::RawWs::connect(web);
    ws.send("hello from a browser");
    tcp.skip_until(&format!("{}: hello from a browser", ws.nick));
    let m = Metrics(samples(&scrape(metrics)));
    assert_eq!(m.get("loopchat_connections_open{transport=\"tcp\"}"), 1);
    assert_eq!(
        m.get("loopchat_connections_open{transport=\"websocket\"}"),
        1
    );
    assert_eq!(m.get("loopchat_connections_open{transport=\"tls\"}"), 0);
    assert_eq!(
        m.get("loopchat_connections_accepted_total{transport=\"websocket\"}"),
        1
    );
    assert_eq!(m.get("loopchat_room_lines_total"), 1);
    ws.send(":quit");
    assert_eq!(ws.text(), "* bye");
    ws.expect_close(1000);
    let m = scrape_until(metrics, |m| {
        m.get("loopchat_connections_open{transport=\"websocket\"}") == 0
    });
    assert_eq!(m.get("loopchat_disconnects_total{reason=\"quit\"}"), 1);
    assert_eq!(
        m.get("loopchat_connections_accepted_total{transport=\"tcp\"}"),
        1
    );
    promtool_check(&scrape(metrics));

    // TLS line clients on a server with a certificate.
    let pki = TestPki::new();
    let (server, metrics) = start_with_metrics(|config| {
        config.tls_cert = Some(pki.cert_file.clone());
        config.tls_key = Some(pki.key_file.clone());
        config.web_addr = None;
    });
    let mut tls = TlsClient::connect(server.tls_addr().expect("a TLS address"), &pki);
    tls.sync();
    let m = Metrics(samples(&scrape(metrics)));
    assert_eq!(m.get("loopchat_connections_open{transport=\"tls\"}"), 1);
    assert_eq!(
        m.get("loopchat_connections_accepted_total{transport=\"tls\"}"),
        1
    );
    assert_eq!(m.get("loopchat_connections_open{transport=\"tcp\"}"), 0);
    assert_eq!(m.get("loopchat_lines_received_total"), 1);
}

#[test]
fn flood_control_and_the_global_bound_are_visible() {
    let (server, metrics) = start_with_metrics(|config| {
        config.flood = FloodLimit {
            lines_per_sec: 200,
            bytes_per_sec: 0,
            burst_secs: 1,
        };
        config.max_output_total_bytes = 8 * 1024 * 1024;
    });
    let mut sender = Client::connect(server.addr());
    let mut listener = Client::connect(server.addr());
    sender.skip_until(&format!("* {} joined #lobby", listener.nick));
    // Three times the burst at once: held back, never dropped.
    let lines: String = (0..600).map(|i| format!("flood {i}\n")).collect();
    sender.send_bytes(lines.as_bytes());
    for i in 0..600 {
        listener.expect(&format!("{}: flood {i}", sender.nick));
    }
    let m = Metrics(samples(&scrape(metrics)));
    assert!(m.get("loopchat_flood_throttles_total") >= 1);
    assert_eq!(m.get("loopchat_room_lines_total"), 600);
    assert_eq!(m.get("loopchat_output_buffer_limit_bytes"), 8 * 1024 * 1024);
    assert!(
        m.get("loopchat_output_buffer_bytes") <= 8 * 1024 * 1024,
        "within the bound"
    );
    assert_eq!(m.get("loopchat_disconnects_total{reason=\"too_slow\"}"), 0);
}

#[test]
fn a_cut_off_by_the_global_bound_is_counted_as_such() {
    let (server, metrics) = start_with_metrics(|config| {
        config.flood = FloodLimit::OFF;
        config.max_outbuf_bytes = 4 * 1024 * 1024;
        config.max_output_total_bytes = 512 * 1024;
        config.send_buffer_bytes = 4096;
    });
    let addr = server.addr();
    let silent = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    silent.set_recv_buffer_size(4096).unwrap();
    silent.connect(&addr.into()).unwrap();
    let mut flooder = Client::connect(addr);
    // The silent client is guest1, welcomed before the flooder.
    let cut_off = "* guest1 left #lobby (too slow)";
    let line = format!("{}\n", "x".repeat(999));
    let mut sent = 0;
    loop {
        assert!(sent < 20_000, "the silent client was never cut off");
        flooder.send_bytes(line.repeat(200).as_bytes());
        sent += 200;
        if flooder.sync().iter().any(|l| l == cut_off) {
            break;
        }
    }
    let m = scrape_until(metrics, |m| {
        m.get("loopchat_connections_open{transport=\"tcp\"}") == 1
    });
    assert_eq!(
        m.get("loopchat_too_slow_cutoffs_total{limit=\"global\"}"),
        1
    );
    assert_eq!(m.get("loopchat_too_slow_cutoffs_total{limit=\"queue\"}"), 0);
    assert_eq!(m.get("loopchat_disconnects_total{reason=\"too_slow\"}"), 1);
    assert!(m.get("loopchat_discarded_bytes_total") > 0);
    drop(silent);
}

#[test]
fn the_history_writer_is_visible() {
    let dir = std::env::temp_dir().join(format!("loopchat-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("history.db");
    let (server, metrics) = start_with_metrics(|config| {
        config.history.file = Some(file.clone());
    });
    let mut alice = Client::connect(server.addr());
    let mut bob = Client::connect(server.addr());
    alice.skip_until(&format!("* {} joined #lobby", bob.nick));
    for i in 0..25 {
        alice.send(&format!("to be remembered {i}"));
    }
    alice.send(":me waves");
    bob.send(":pm nobody private lines are never stored");
    // The pong waits for the commit of alice's lines: they are written.
    alice.sync();
    bob.sync();
    let m = Metrics(samples(&scrape(metrics)));
    assert_eq!(m.get("loopchat_history_rows_written_total"), 26);
    assert!(m.get("loopchat_history_batches_written_total") >= 1);
    assert!(m.get("loopchat_history_batches_written_total") <= 26);
    assert_eq!(m.get("loopchat_history_write_errors_total"), 0);
    assert_eq!(m.get("loopchat_history_rows_failed_total"), 0);
    assert_eq!(m.get("loopchat_history_lag_lines"), 0);
    assert_eq!(m.get("loopchat_history_writer_up"), 1);
    promtool_check(&scrape(metrics));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_history_metrics_without_a_history_file() {
    let (_server, metrics) = start_with_metrics(|_| {});
    let text = scrape(metrics);
    assert!(!text.contains("loopchat_history_"), "{text}");
}

#[test]
fn connections_that_never_join_are_counted_by_how_they_ended() {
    let pki = TestPki::new();
    let (server, metrics) = start_with_metrics(|config| {
        config.tls_cert = Some(pki.cert_file.clone());
        config.tls_key = Some(pki.key_file.clone());
    });
    let web = server.web_addr().expect("the web address");
    let m = Metrics(samples(&scrape(metrics)));
    assert_eq!(
        m.get("loopchat_connections_not_joined_total{reason=\"tls_error\"}"),
        0,
        "seeded"
    );
    // A page served over HTTPS, then closed by the server.
    let mut page =
        TlsClient::try_connect_raw(web, "localhost", pki.client_config()).expect("HTTPS handshake");
    page.writer
        .write_all(format!("GET / HTTP/1.1\r\nHost: {web}\r\n\r\n").as_bytes())
        .unwrap();
    let mut response = Vec::new();
    let _ = page.reader.read_to_end(&mut response);
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
    drop(page);
    // Not TLS at all on the TLS address.
    let mut garbage = TcpStream::connect(server.tls_addr().expect("a TLS address")).unwrap();
    garbage.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    garbage.write_all(b"hello, is this chat?\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = garbage.read_to_end(&mut rest);
    // A web connection that gives up before its request.
    drop(TcpStream::connect(web).unwrap());
    let m = scrape_until(metrics, |m| {
        m.get("loopchat_connections_not_joined_total{reason=\"closed_by_peer\"}") == 1
            && m.get("loopchat_connections_not_joined_total{reason=\"http_response_sent\"}") == 1
    });
    assert_eq!(
        m.get("loopchat_connections_not_joined_total{reason=\"tls_error\"}"),
        1
    );
    // None of them was a client.
    assert_eq!(m.get("loopchat_disconnects_total{reason=\"tls_error\"}"), 0);
    assert_eq!(
        m.get("loopchat_disconnects_total{reason=\"closed_by_peer\"}"),
        0
    );
    promtool_check(&scrape(metrics));
}

#[test]
fn websocket_pings_count_as_bytes_sent() {
    let (server, metrics) = start_with_metrics(|config| {
        config.ws_ping_interval = Duration::from_millis(300);
    });
    let web = server.web_addr().expect("the web address");
    // Everything the server writes to this, its only client, until its
    // first ping: the 101 response, the welcome frames, the ping frame.
    let (head, mut bytes, mut stream) =
        ws_support::http_request(web, &ws_support::upgrade_request(web, ""));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut received = head.len() + bytes.len();
    loop {
        // Parse the frames read so far (the server's are short and unmasked).
        let mut at = 0;
        let mut pinged = false;
        while bytes.len() >= at + 2 && bytes.len() >= at + 2 + usize::from(bytes[at + 1] & 0x7f) {
            assert!(bytes[at + 1] < 126, "short frames only");
            pinged |= bytes[at] & 0x0f == ws_support::PING;
            at += 2 + usize::from(bytes[at + 1]);
        }
        if pinged {
            assert_eq!(at, bytes.len(), "nothing after the ping");
            break;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("a ping within the timeout");
        assert!(n > 0, "closed before a ping");
        received += n;
        bytes.extend_from_slice(&chunk[..n]);
    }
    let m = Metrics(samples(&scrape(metrics)));
    assert_eq!(m.get("loopchat_sent_bytes_total"), received as u64);
}

#[test]
fn a_request_head_that_never_comes_is_counted_as_its_timeout() {
    let (server, metrics) = start_with_metrics(|config| {
        config.close_timeout = Duration::from_millis(300);
    });
    let web = server.web_addr().expect("the web address");
    // Half a request head, then silence: the server closes it at the
    // close timeout.
    let mut slow = TcpStream::connect(web).unwrap();
    slow.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(rest.is_empty(), "no answer to half a request");
    let m = scrape_until(metrics, |m| {
        m.get("loopchat_connections_not_joined_total{reason=\"request_head_timeout\"}") == 1
    });
    // Not under a reason of its own.
    assert!(!m
        .0
        .contains_key("loopchat_connections_not_joined_total{reason=\"close_timeout\"}"));
    assert_eq!(
        m.get("loopchat_disconnects_total{reason=\"close_timeout\"}"),
        0
    );
}
