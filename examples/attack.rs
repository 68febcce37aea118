//! Hostile clients, for measuring the server's connection and credential
//! limits on loopback (the figures in docs/benchmarks.md, "Connections and
//! credentials"). Every mode is bounded by `--secs`.
//!
//! ```text
//! cargo run --release --example attack -- slowloris ADDR CONNS SECS [FROM_IP]
//! cargo run --release --example attack -- guess     ADDR CONNS SECS [PASSWORD]
//! cargo run --release --example attack -- churn     ADDR THREADS SECS [FROM_IP]
//! cargo run --release --example attack -- readers   ADDR CONNS SECS
//! ```
//!
//! - `slowloris`: CONNS connections that each send one byte (never a `\n`)
//!   every 3 s; each second it prints how many the server still holds and
//!   whether a newcomer from 127.0.0.1 is welcomed.
//! - `guess`: CONNS connections guessing passwords in parallel; prints the
//!   guesses the server judged (`! wrong password`, `! too many attempts`)
//!   and those it refused, then tries PASSWORD once.
//! - `churn`: THREADS threads connecting, reading the welcome and closing,
//!   as fast as they can; prints connections per second (the server's log
//!   growth is measured by the caller).
//! - `readers`: CONNS connections that read and never close (until SECS
//!   have passed); prints how many got `* server shutting down` and EOF
//!   after the caller signalled the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: attack slowloris|guess|churn|readers ADDR N SECS [EXTRA]";
    if args.len() < 4 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR is IP:PORT");
    let n: usize = args[2].parse().expect("N is a number");
    let secs: u64 = args[3].parse().expect("SECS is a number");
    let extra = args.get(4).cloned();
    let limit = Duration::from_secs(secs);
    match args[0].as_str() {
        "slowloris" => slowloris(addr, n, limit, extra),
        "guess" => guess(addr, n, limit, extra),
        "churn" => churn(addr, n, limit, extra),
        "readers" => readers(addr, n, limit),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}

/// Connects from `from` (a loopback address) when given.
fn connect(addr: SocketAddr, from: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(from) = from else {
        return TcpStream::connect(addr);
    };
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    socket.connect(&addr.into())?;
    Ok(socket.into())
}

/// Whether a newcomer is welcomed (or at least not refused) right now.
fn newcomer_welcomed(addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let ok = BufReader::new(&stream).read_line(&mut line).is_ok();
    ok && (line.starts_with("* welcome") || line.starts_with("* password required"))
}

fn slowloris(addr: SocketAddr, conns: usize, limit: Duration, from: Option<String>) {
    let from = from.map(|ip| ip.parse().expect("FROM_IP"));
    let mut open: Vec<TcpStream> = Vec::new();
    for _ in 0..conns {
        match connect(addr, from) {
            Ok(stream) => {
                stream.set_nonblocking(true).expect("nonblocking");
                open.push(stream);
            }
            Err(err) => {
                eprintln!("connect failed after {}: {err}", open.len());
                break;
            }
        }
    }
    let started = Instant::now();
    let mut next_drip = started;
    let mut buf = [0u8; 4096];
    let mut first_all_closed = None;
    while started.elapsed() < limit {
        if Instant::now() >= next_drip {
            open.retain_mut(|stream| stream.write(b"x").is_ok());
            next_drip += Duration::from_secs(3);
        }
        // Drain what the server sent; EOF or an error means it let go.
        open.retain_mut(|stream| loop {
            match stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(_) => continue,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        });
        let welcomed = newcomer_welcomed(addr);
        println!(
            "t={:>3} s  held={:>5}  newcomer {}",
            started.elapsed().as_secs(),
            open.len(),
            if welcomed { "welcomed" } else { "REFUSED" }
        );
        if open.is_empty() && first_all_closed.is_none() {
            first_all_closed = Some(started.elapsed());
        }
        thread::sleep(Duration::from_secs(1));
    }
    match first_all_closed {
        Some(at) => println!(
            "slowloris: every slot freed after {:.1} s",
            at.as_secs_f64()
        ),
        None => println!(
            "slowloris: {} slots still held after {} s",
            open.len(),
            limit.as_secs()
        ),
    }
}

fn guess(addr: SocketAddr, conns: usize, limit: Duration, password: Option<String>) {
    let judged = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|worker| {
            let (judged, refused) = (judged.clone(), refused.clone());
            thread::spawn(move || {
                let mut attempt = 0u64;
                while started.elapsed() < limit {
                    let Ok(stream) = TcpStream::connect(addr) else {
                        continue;
                    };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut writer = stream.try_clone().expect("clone");
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() || !line.starts_with("* password") {
                        continue;
                    }
                    // One guess at a time, each waiting for its answer.
                    loop {
                        attempt += 1;
                        if writer
                            .write_all(format!(":auth guess-{worker}-{attempt}\n").as_bytes())
                            .is_err()
                        {
                            break;
                        }
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(n) if n > 0 => {}
                            _ => break,
                        }
                        if line.starts_with("! wrong password") {
                            judged.fetch_add(1, Ordering::Relaxed);
                        } else if line.starts_with("! too many attempts from") {
                            refused.fetch_add(1, Ordering::Relaxed);
                            break;
                        } else if line.starts_with("! too many attempts") {
                            judged.fetch_add(1, Ordering::Relaxed);
                            break;
                        } else {
                            break;
                        }
                        if started.elapsed() >= limit {
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let judged = judged.load(Ordering::Relaxed);
    println!(
        "guess: {judged} guesses judged in {secs:.1} s ({:.0} per minute), {} refused unjudged",
        judged as f64 * 60.0 / secs,
        refused.load(Ordering::Relaxed)
    );
    if let Some(password) = password {
        let stream = TcpStream::connect(addr).expect("connect");
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = writer.write_all(format!(":auth {password}\n").as_bytes());
        line.clear();
        let _ = reader.read_line(&mut line);
        println!("guess: the right password now gets {:?}", line.trim_end());
    }
}

fn churn(addr: SocketAddr, threads: usize, limit: Duration, from: Option<String>) {
    let from: Option<IpAddr> = from.map(|ip| ip.parse().expect("FROM_IP"));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let done = done.clone();
            thread::spawn(move || {
                while started.elapsed() < limit {
                    let Ok(stream) = connect(addr, from) else {
                        continue;
                    };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut line = String::new();
                    let _ = BufReader::new(&stream).read_line(&mut line);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let done = done.load(Ordering::Relaxed);
    println!(
        "churn: {done} connections in {secs:.1} s ({:.0}/s)",
        done as f64 / secs
    );
}

fn readers(addr: SocketAddr, conns: usize, limit: Duration) {
    let started = Instant::now();
    let mut streams = Vec::new();
    for _ in 0..conns {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(limit)).expect("read timeout");
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .expect("welcome");
        streams.push(stream);
    }
    println!("readers: {conns} connected; waiting for the shutdown");
    let _ = std::io::stdout().flush();
    let mut told = 0;
    for stream in &streams {
        let mut rest = Vec::new();
        let _ = (&*stream).read_to_end(&mut rest);
        if rest.ends_with(b"* server shutting down\n") {
            told += 1;
        }
    }
    println!("readers: {told} of {conns} got `* server shutting down` then EOF");
    // Never close first: hold the sockets until SECS have passed.
    thread::sleep(limit.saturating_sub(started.elapsed()));
    drop(streams);
}
