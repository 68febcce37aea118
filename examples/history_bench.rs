//! Measures the history writer and start-up with a big history file.
//!
//! ```text
//! cargo run --release --example history_bench -- --dir /tmp/hb
//! ```
//!
//! 1. Writer throughput: lines go through the server's own path (chat tails
//!    -> one batch per simulated loop turn -> writer thread -> commit ->
//!    waker), at several lines per turn; prints sustained rows/s.
//! 2. Fills `history-1m.db` with `--lines` lines (default 1,000,000) over
//!    `--rooms` rooms (`#lobby` among them), in bounded batches, then times
//!    opening it the way the server does at start (open, migrate, load
//!    `#lobby`'s tail), next to a file of 10,000 lines; then the time to
//!    read one room's tail back, as when a room is created again.
//!
//! Everything is written under `--dir`; nothing else is touched.

use argh::FromArgs;
use loopchat::chat::completion::{Completion, Completions};
use loopchat::chat::history::store::{NewLine, Store};
use loopchat::chat::history::{HistoryConfig, HistoryLink};
use mio::{Events, Poll, Token, Waker};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// History writer and start-up measurements.
#[derive(FromArgs)]
struct Flags {
    /// directory for the history files (created if missing)
    #[argh(option)]
    dir: PathBuf,
    /// lines in the big file (default 1000000)
    #[argh(option, default = "1_000_000")]
    lines: u64,
    /// rooms the lines are spread over (default 100)
    #[argh(option, default = "100")]
    rooms: u64,
    /// seconds per writer throughput run (default 3)
    #[argh(option, default = "3")]
    seconds: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let flags: Flags = argh::from_env();
    std::fs::create_dir_all(&flags.dir)?;
    println!("| lines per loop turn | rows/s committed (writer thread, WAL, synchronous=NORMAL) |");
    println!("| --- | --- |");
    for per_turn in [1, 10, 100, 1000] {
        let path = flags.dir.join(format!("writer-{per_turn}.db"));
        remove_db(&path);
        let rate = writer_rate(&path, per_turn, Duration::from_secs(flags.seconds))?;
        println!("| {per_turn} | {rate:.0} |");
        remove_db(&path);
    }
    println!();
    println!(
        "| history file | lines | rooms | file size | start (open + #lobby's tail) | one room's tail read back |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, lines) in [("history-10k.db", 10_000), ("history-1m.db", flags.lines)] {
        let path = flags.dir.join(name);
        if !path.exists() {
            fill(&path, lines, flags.rooms)?;
        }
        let size = std::fs::metadata(&path)?.len();
        let mut best = Duration::MAX;
        for _ in 0..3 {
            best = best.min(start_time(&path)?);
        }
        let store = Store::open(&path)?;
        let mut tail_best = Duration::MAX;
        for room in 1..=flags.rooms.min(20) {
            let started = Instant::now();
            let tail = store.load_tail(&format!("#room{room}"), 100)?;
            tail_best = tail_best.min(started.elapsed());
            assert_eq!(tail.len(), 100);
        }
        println!(
            "| {name} | {lines} | {} | {} MB | {:.1} ms | {:.2} ms |",
            flags.rooms,
            size / 1_000_000,
            best.as_secs_f64() * 1000.0,
            tail_best.as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

fn line(i: u64, rooms: u64, ts: i64) -> NewLine {
    let nick = format!("user{}", i % 500);
    let room_key = match i % rooms {
        0 => "#lobby".to_string(),
        room => format!("#room{room}"),
    };
    let line = format!("{nick}: message number {i} with some ordinary chat text in it");
    NewLine::new(i as i64 + 1, room_key.into(), ts, &nick, line.into())
}

/// Lines per second through the server's path: tails, one batch per turn,
/// the writer thread, acknowledgements through a waker.
fn writer_rate(
    path: &Path,
    per_turn: u64,
    window: Duration,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), Token(0))?);
    let config = HistoryConfig {
        file: Some(path.to_path_buf()),
        max_in_flight: 50_000,
        ..HistoryConfig::default()
    };
    let (mut completions, completer) = Completions::new(waker);
    let (mut link, mut tails) = HistoryLink::start(&config, completer)?;
    let mut events = Events::with_capacity(16);
    let now = loopchat::chat::history::tails::unix_now_ms();
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < window {
        if link.congested() {
            // As the loop does: wait for a commit before reading more.
            poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        } else {
            for _ in 0..per_turn {
                let l = line(sent, 100, now);
                tails.record(&l.room_key, l.nick(), &l.line, l.ts);
                sent += 1;
            }
            link.submit(&mut tails);
            poll.poll(&mut events, Some(Duration::ZERO))?;
        }
        while let Ok(Completion::History(ack)) = completions.try_recv() {
            link.on_ack(ack, &mut tails);
        }
    }
    // Everything sent is committed before the clock stops.
    link.finish();
    let elapsed = started.elapsed().as_secs_f64();
    Ok(sent as f64 / elapsed)
}

/// Writes `lines` lines over `rooms` rooms, 10,000 per transaction.
fn fill(path: &Path, lines: u64, rooms: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut store = Store::open(path)?;
    let start_ts = loopchat::chat::history::tails::unix_now_ms() - 86_400_000;
    let started = Instant::now();
    let mut i = 0;
    while i < lines {
        let batch: Vec<NewLine> = (i..(i + 10_000).min(lines))
            .map(|n| line(n, rooms, start_ts + n as i64))
            .collect();
        store.insert_batch(&batch)?;
        i += batch.len() as u64;
    }
    eprintln!(
        "filled {} with {lines} lines in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What the server does with its history file before it listens.
fn start_time(path: &Path) -> Result<Duration, Box<dyn std::error::Error>> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), Token(0))?);
    let config = HistoryConfig {
        file: Some(path.to_path_buf()),
        keep_days: 0,
        ..HistoryConfig::default()
    };
    let started = Instant::now();
    let (_completions, completer) = Completions::new(waker);
    let (link, _tails) = HistoryLink::start(&config, completer)?;
    let elapsed = started.elapsed();
    drop(link);
    Ok(elapsed)
}
