//! Measures the cluster's Redis path: lines per second through one Redis,
//! and the latency Redis adds between a line's publish on one server and
//! its delivery on another.
//!
//! ```text
//! cargo run --release --example cluster_bench
//! cargo run --release --example cluster_bench -- --redis redis://127.0.0.1:6379
//! ```
//!
//! Without `--redis` it starts its own `redis-server` (Debian's) on a free
//! loopback port with no persistence, and stops it at the end. Two engines
//! ("servers" A and B) share one thread and one `mio::Poll`, as two loops
//! would on their own cores; Redis runs on the other core.
//!
//! 1. Throughput: A publishes `--lines` lines, `BATCH` lines per room per
//!    turn over `--rooms` rooms, keeping at most 20,000 in flight (the
//!    default bound); timed until B has every line, in order. Also Redis's
//!    CPU per accepted line (`INFO cpu`).
//! 2. Latency: one line per turn every 2 ms (a light load); publish on A
//!    to delivery on B, p50/p99/max.

use argh::FromArgs;
use loopchat::cluster::resp::{self, Reply};
use loopchat::cluster::{ClusterEvent, ClusterSettings, RedisCluster};
use mio::{Events, Poll, Token};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Cluster (Redis) path measurements.
#[derive(FromArgs)]
struct Flags {
    /// a running Redis to use (default: start redis-server on a free port)
    #[argh(option)]
    redis: Option<String>,
    /// lines per throughput run (default 300000)
    #[argh(option, default = "300_000")]
    lines: usize,
    /// rooms the lines are spread over (default 10)
    #[argh(option, default = "10")]
    rooms: usize,
    /// lines in the latency run (default 2000)
    #[argh(option, default = "2000")]
    latency_lines: usize,
}

struct OwnRedis(Child);

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> (OwnRedis, SocketAddr) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("cluster-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--logfile", ""])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server (apt-get install redis-server, or pass --redis)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line
            .unwrap_or_default()
            .contains("Ready to accept connections")
        {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    (OwnRedis(child), SocketAddr::from(([127, 0, 0, 1], port)))
}

fn call(addr: SocketAddr, args: &[&str]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut out = Vec::new();
    resp::encode(&mut out, args);
    stream.write_all(&out).unwrap();
    let mut input = Vec::new();
    loop {
        if let Some((reply, _)) = resp::decode(&input).unwrap() {
            return reply;
        }
        let mut chunk = [0u8; 65536];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0);
        input.extend_from_slice(&chunk[..n]);
    }
}

/// Redis's CPU seconds so far (user + system, main thread and others).
fn redis_cpu(addr: SocketAddr) -> f64 {
    let Reply::Bulk(info) = call(addr, &["INFO", "cpu"]) else {
        panic!()
    };
    String::from_utf8(info)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            matches!(key, "used_cpu_sys" | "used_cpu_user")
                .then(|| value.trim().parse::<f64>().ok())?
        })
        .sum()
}

/// Two engines on one poller.
struct Pair {
    poll: Poll,
    events: Events,
    a: RedisCluster,
    b: RedisCluster,
}

impl Pair {
    fn new(addr: SocketAddr) -> Pair {
        let poll = Poll::new().unwrap();
        let a = RedisCluster::new(
            ClusterSettings::new(addr),
            poll.registry(),
            [Token(1), Token(2)],
        );
        let b = RedisCluster::new(
            ClusterSettings::new(addr),
            poll.registry(),
            [Token(3), Token(4)],
        );
        let mut pair = Pair {
            poll,
            events: Events::with_capacity(64),
            a,
            b,
        };
        while !(pair.a.is_up() && pair.b.is_up()) {
            pair.turn(Duration::from_millis(10), |_, _| {});
        }
        pair
    }

    /// One turn of both "servers"; `on_b` sees B's events.
    fn turn(&mut self, wait: Duration, mut on_b: impl FnMut(&ClusterEvent, Instant)) {
        self.poll.poll(&mut self.events, Some(wait)).unwrap();
        let now = Instant::now();
        for event in self.events.iter() {
            if self.a.owns(event.token()) {
                self.a.ready(event.token(), self.poll.registry(), now);
            } else {
                self.b.ready(event.token(), self.poll.registry(), now);
            }
        }
        self.a.turn(self.poll.registry(), now);
        self.b.turn(self.poll.registry(), now);
        self.a.take_events();
        let now = Instant::now();
        for event in self.b.take_events() {
            on_b(&event, now);
        }
    }
}

fn throughput(addr: SocketAddr, flags: &Flags, batch: usize) {
    let mut pair = Pair::new(addr);
    let rooms: Vec<String> = (0..flags.rooms)
        .map(|i| format!("#bench{batch}-{i}"))
        .collect();
    let line = vec![b'x'; 64];
    let cpu_before = redis_cpu(addr);
    let start = Instant::now();
    let (mut sent, mut received) = (0, 0);
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut in_order = true;
    while received < flags.lines {
        // One loop turn's worth of lines, unless Redis is behind.
        if sent < flags.lines && !pair.a.congested() {
            for room in &rooms {
                for _ in 0..batch.min(flags.lines - sent) {
                    pair.a.publish(room, &line).unwrap();
                    sent += 1;
                }
            }
        }
        pair.turn(Duration::from_millis(1), |event, _| {
            if let ClusterEvent::Line { room, id, .. } = event {
                let expected = next.entry(room.clone()).or_insert(*id);
                in_order &= *id == *expected;
                *expected = id + 1;
                received += 1;
            }
        });
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = redis_cpu(addr) - cpu_before;
    println!(
        "{batch:>5} lines/room/turn, {} rooms: {:>9.0} lines/s through Redis, Redis CPU {:.2} µs/line, calls {}, in order: {in_order}",
        flags.rooms,
        flags.lines as f64 / secs,
        cpu * 1e6 / flags.lines as f64,
        pair.a.stats().batches_sent,
    );
}

fn latency(addr: SocketAddr, flags: &Flags) {
    let mut pair = Pair::new(addr);
    let mut sent_at: HashMap<Vec<u8>, Instant> = HashMap::new();
    let mut samples = Vec::with_capacity(flags.latency_lines);
    let mut next_send = Instant::now();
    let mut sent = 0;
    while samples.len() < flags.latency_lines {
        let now = Instant::now();
        if sent < flags.latency_lines && now >= next_send {
            let line = format!("line {sent}").into_bytes();
            pair.a.publish("#latency", &line).unwrap();
            sent_at.insert(line, now);
            sent += 1;
            next_send = now + Duration::from_millis(2);
        }
        let wait = next_send.saturating_duration_since(Instant::now());
        pair.turn(wait, |event, at| {
            if let ClusterEvent::Line { line, .. } = event {
                if let Some(sent) = sent_at.remove(line) {
                    samples.push(at - sent);
                }
            }
        });
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "latency, publish on A to delivery on B, one line every 2 ms: p50 {:?}, p99 {:?}, max {:?}",
        pick(0.5),
        pick(0.99),
        samples.last().unwrap()
    );
}

fn main() {
    let flags: Flags = argh::from_env();
    let (_own, addr) = match &flags.redis {
        Some(url) => (None, loopchat::cluster::parse_address(url).unwrap()),
        None => {
            let (own, addr) = start_redis();
            (Some(own), addr)
        }
    };
    let Reply::Bulk(info) = call(addr, &["INFO", "server"]) else {
        panic!()
    };
    let version = String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:").map(str::to_owned))
        .unwrap_or_default();
    println!(
        "Redis {version} at {addr}; {} lines of 64 bytes per run",
        flags.lines
    );
    for batch in [1, 8, 32, 128] {
        throughput(addr, &flags, batch);
    }
    latency(addr, &flags);
}
