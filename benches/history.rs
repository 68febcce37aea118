//! `cargo bench --bench history`: the history writer's cost per chat line,
//! on a real SQLite file in a temporary directory: batches of chat lines
//! committed by [`Store::commit_batch`] as the writer thread commits them,
//! then one pruning pass over the rooms (no per-room limit, the default).
//!
//! ```text
//! cargo bench --bench history              # 400,000 lines, batches of 200
//! cargo bench --bench history -- --quick   # 40,000 lines, a smoke test
//! ```
//!
//! Prints lines per second and microseconds per line (wall clock, so
//! noisy on a shared machine); under `valgrind --tool=callgrind` the
//! instruction count divided by the lines is repeatable (docs/benchmarks-fanout.md).

use loopchat::chat::history::store::{NewLine, Store};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let lines_total: usize = if quick { 40_000 } else { 400_000 };
    let batch = 200;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut store = Store::open(&dir.path().join("history.db")).expect("a history file");
    let rooms: Vec<Arc<str>> = ["#lobby", "#rust", "#help"]
        .iter()
        .map(|room| Arc::from(*room))
        .collect();
    let nicks: Vec<String> = (0..100).map(|i| format!("user{i}")).collect();
    let started = Instant::now();
    let mut id = 0i64;
    while (id as usize) < lines_total {
        let lines: Vec<NewLine> = (0..batch)
            .map(|i| {
                id += 1;
                let nick = &nicks[i % nicks.len()];
                // Mostly one busy room, as in a flood of #lobby.
                let room = &rooms[usize::from(i % 10 == 0) + usize::from(i % 50 == 0)];
                let line: Arc<str> =
                    format!("{nick}: message {id} of the history benchmark, a typical length")
                        .into();
                NewLine::new(id, room.clone(), 1_800_000_000_000 + id, nick, line)
            })
            .collect();
        store.insert_batch(&lines).expect("a commit");
    }
    let inserted = started.elapsed();
    let pruned_at = Instant::now();
    for room in store.rooms() {
        store.prune_room(&room, None, 500).expect("a pruning step");
    }
    let pruned = pruned_at.elapsed();
    println!("| lines | batch | lines/s | µs per line | pruning pass (no limit) |");
    println!("|---|---|---|---|---|");
    println!(
        "| {lines_total} | {batch} | {:.0} | {:.2} | {:.2} ms |",
        lines_total as f64 / inserted.as_secs_f64(),
        inserted.as_secs_f64() * 1e6 / lines_total as f64,
        pruned.as_secs_f64() * 1e3
    );
}
