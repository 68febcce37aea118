//! Measures the accounts on this machine (docs/accounts.md, "Figures"):
//!
//! 1. one Argon2id verification (what a `:login` costs the worker);
//! 2. logins per second the worker sustains through a real server (8
//!    clients logging in and out of their own accounts, one login in
//!    flight each);
//! 3. `:resume` per second (the same clients resuming with tokens), with
//!    history in memory and with a history file (each resume moves the
//!    token's last use, written by the history writer).
//!
//! The login storm (a bystander's `:ping` while 200 clients send wrong
//! passwords) is the load generator's `--attack login`
//! (`crates/loadgen/src/attack/login.rs`), which runs against any server.
//!
//! Run: `cargo run --release --example accounts_bench [SECONDS]`.

use loopchat::accounts::worker::{perform, Job, JobResult};
use loopchat::{Config, Server};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        let mut client = Client {
            reader: BufReader::new(stream),
            writer,
        };
        client.until(|line| line.contains(" joined #lobby"));
        client
    }

    fn send(&mut self, line: &str) {
        let _ = self.writer.write_all(format!("{line}\n").as_bytes());
    }

    /// Reads until a line for which `done` holds; returns it (empty
    /// when the server closed the connection).
    fn until(&mut self, done: impl Fn(&str) -> bool) -> String {
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return String::new(),
                Ok(_) => {}
            }
            let line = line.trim_end().to_string();
            if done(&line) {
                return line;
            }
        }
    }
}

fn server(adjust: impl FnOnce(&mut Config)) -> loopchat::RunningServer {
    let mut config = Config::ephemeral();
    config.web_addr = None;
    config.flood = loopchat::policy::limits::FloodLimit::OFF;
    config.accounts.registrations_per_address = 0;
    config.accounts.registrations_per_hour = 0;
    config.accounts.queue = 1024;
    config.guard.auth_max_failures = u32::MAX;
    config.accounts.login_burst = u32::MAX;
    adjust(&mut config);
    Server::bind(config).unwrap().spawn().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// `clients` clients, each with an account `userN`, registered; returns
/// them logged in.
fn accounts(addr: SocketAddr, clients: usize) -> Vec<Client> {
    (0..clients)
        .map(|i| {
            let mut client = Client::connect(addr);
            client.send(&format!(":nick user{i}"));
            client.send(":register benchmark-password");
            client.until(|line| line.starts_with("* registered"));
            client
        })
        .collect()
}

/// Runs `work` on every client on its own thread for `secs`; returns the
/// operations done per second in all.
type Work = Arc<dyn Fn(&mut Client, usize) -> bool + Send + Sync>;

fn rate(clients: Vec<Client>, secs: u64, work: Work) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            let (stop, done, work) = (stop.clone(), done.clone(), work.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if work(&mut client, i) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for thread in threads {
        thread.join().unwrap();
    }
    count as f64 / elapsed
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);

    // 1. One verification, on this thread.
    let JobResult::Hashed(Some(phc)) = perform(Job::Hash {
        password: "benchmark-password".into(),
    }) else {
        panic!("hash");
    };
    let mut times: Vec<Duration> = (0..20)
        .map(|_| {
            let started = Instant::now();
            perform(Job::Verify {
                phc: Some(phc.clone()),
                password: "benchmark-password".into(),
            });
            started.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "argon2id verify (m=19456 KiB, t=2, p=1): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        percentile(&times, 0.5),
        percentile(&times, 0.0),
        percentile(&times, 1.0)
    );

    // 2. Logins per second through the worker.
    let running = server(|_| {});
    let clients = accounts(running.addr(), 8);
    let logins = rate(
        clients,
        secs,
        Arc::new(|client: &mut Client, i| {
            client.send(&format!(":login user{i} benchmark-password"));
            let answer =
                client.until(|line| line.starts_with("* logged in as") || line.starts_with("! "));
            client.send(":logout");
            client.until(|line| line.contains(" is now known as guest"));
            answer.starts_with("* logged in as")
        }),
    );
    println!("logins per second, 8 clients, one login in flight each: {logins:.1}");
    drop(running);

    // 3. :resume per second.
    for file in [false, true] {
        let dir = std::env::temp_dir().join(format!("loopchat-bench-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("history.db");
        let _ = std::fs::remove_file(&path);
        let running = server(|config| {
            if file {
                config.history.file = Some(path.clone());
            }
        });
        let mut clients = accounts(running.addr(), 8);
        let tokens: Vec<String> = clients
            .iter_mut()
            .map(|client| {
                client.send(":token");
                let line = client.until(|line| line.starts_with("* token "));
                line["* token ".len()..].to_string()
            })
            .collect();
        let tokens = Arc::new(tokens);
        let per_sec = rate(
            clients,
            secs,
            Arc::new(move |client: &mut Client, i| {
                client.send(&format!(":resume {}", tokens[i]));
                let answer = client
                    .until(|line| line.starts_with("* logged in as") || line.starts_with("! "));
                answer.starts_with("* logged in as")
            }),
        );
        let place = if file { "history file" } else { "memory" };
        println!("resumes per second, 8 clients, {place}: {per_sec:.0}");
        drop(running);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
