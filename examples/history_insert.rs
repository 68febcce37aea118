//! Micro-benchmark of the history writer's batch insert: CPU per row on
//! the inserting thread (`CLOCK_THREAD_CPUTIME_ID`) and rows/s, for the
//! current schema (version 3: one B-tree clustered by (room, id) WITHOUT
//! ROWID, integer room ids) and others (version 2's rowid table with a
//! `(room_key, id)` index and variants of it: no room index, an integer
//! room key, `synchronous=OFF`, a bigger page cache and checkpoint), in
//! batches of 100 and 1000 lines.
//!
//! ```text
//! cargo run --release --example history_insert -- ROWS ROOMS   # default 300000 1
//! ```
//!
//! Files go to /tmp/loopchat-history-insert/ and are replaced each run.

use rusqlite::{params, Connection};
use std::time::Instant;

fn cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[allow(clippy::too_many_arguments)]
fn run(
    name: &str,
    pragmas: &str,
    schema: &str,
    insert: &str,
    int_room: bool,
    n: u64,
    batch: u64,
    rooms_used: u64,
) {
    let path = format!("/tmp/loopchat-history-insert/{name}.db");
    for s in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{s}"));
    }
    let mut conn = Connection::open(&path).unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(pragmas).unwrap();
    conn.execute_batch(schema).unwrap();
    let rooms: Vec<String> = (0..100).map(|r| format!("#room{r}")).collect();
    let lines: Vec<(String, String)> = (0..1000)
        .map(|i| {
            let nick = format!("guest{}", i % 100);
            (
                format!(
                    "{nick}: ~b:{}:{}:123456789012345:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                    i % 100,
                    i
                ),
                nick,
            )
        })
        .collect();
    let c0 = cpu();
    let t0 = Instant::now();
    let mut i = 0u64;
    while i < n {
        let tx = conn.transaction().unwrap();
        {
            let mut st = tx.prepare_cached(insert).unwrap();
            for j in i..i + batch {
                let (line, nick) = &lines[(j % 1000) as usize];
                let r = (j % rooms_used) as usize;
                if int_room {
                    st.execute(params![
                        j as i64 + 1,
                        r as i64,
                        1_700_000_000i64 + (j / 100000) as i64,
                        line.as_str(),
                        nick.as_str()
                    ])
                    .unwrap();
                } else {
                    st.execute(params![
                        j as i64 + 1,
                        rooms[r].as_str(),
                        1_700_000_000i64 + (j / 100000) as i64,
                        line.as_str(),
                        nick.as_str()
                    ])
                    .unwrap();
                }
            }
        }
        tx.commit().unwrap();
        i += batch;
    }
    let cpu_s = cpu() - c0;
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "{name:28} rooms={rooms_used} batch={batch:5} rows/s={:9.0} cpu_us/row={:.3}",
        n as f64 / wall,
        cpu_s * 1e6 / n as f64
    );
}

fn main() {
    std::fs::create_dir_all("/tmp/loopchat-history-insert").unwrap();
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .map(|s| s.parse().unwrap())
            .unwrap_or(default)
    };
    let (n, rooms_used) = (arg(1, 300_000), arg(2, 1));
    let current = "CREATE TABLE lines (room INTEGER NOT NULL, id INTEGER NOT NULL, ts INTEGER NOT NULL, line TEXT NOT NULL, nick TEXT NOT NULL, PRIMARY KEY (room, id)) WITHOUT ROWID;";
    let current_ins = "INSERT INTO lines (room, id, ts, line, nick) VALUES (?2, ?1, ?3, ?4, ?5)";
    let base = "CREATE TABLE lines (id INTEGER PRIMARY KEY, room_key TEXT NOT NULL, ts INTEGER NOT NULL, line TEXT NOT NULL, nick TEXT NOT NULL); CREATE INDEX lines_room_id ON lines (room_key, id);";
    let ins = "INSERT INTO lines (id, room_key, ts, line, nick) VALUES (?1, ?2, ?3, ?4, ?5)";
    let normal = "PRAGMA synchronous=NORMAL;";
    for batch in [100, 1000] {
        run(
            "current_v3",
            normal,
            current,
            current_ins,
            true,
            n,
            batch,
            rooms_used,
        );
        run("v2", normal, base, ins, false, n, batch, rooms_used);
        run(
            "v2_sync_off",
            "PRAGMA synchronous=OFF;",
            base,
            ins,
            false,
            n,
            batch,
            rooms_used,
        );
        run("v2_noindex", normal, "CREATE TABLE lines (id INTEGER PRIMARY KEY, room_key TEXT NOT NULL, ts INTEGER NOT NULL, line TEXT NOT NULL, nick TEXT NOT NULL);", ins, false, n, batch, rooms_used);
        run("int_room", normal, "CREATE TABLE lines (id INTEGER PRIMARY KEY, room INTEGER NOT NULL, ts INTEGER NOT NULL, line TEXT NOT NULL, nick TEXT NOT NULL); CREATE INDEX lines_room_id ON lines (room, id);", "INSERT INTO lines (id, room, ts, line, nick) VALUES (?1, ?2, ?3, ?4, ?5)", true, n, batch, rooms_used);
        run("int_room_cache64m_ckpt10k", &format!("{normal} PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=10000;"), "CREATE TABLE lines (id INTEGER PRIMARY KEY, room INTEGER NOT NULL, ts INTEGER NOT NULL, line TEXT NOT NULL, nick TEXT NOT NULL); CREATE INDEX lines_room_id ON lines (room, id);", "INSERT INTO lines (id, room, ts, line, nick) VALUES (?1, ?2, ?3, ?4, ?5)", true, n, batch, rooms_used);
        run(
            "v2_cache64m_ckpt10k",
            &format!("{normal} PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=10000;"),
            base,
            ins,
            false,
            n,
            batch,
            rooms_used,
        );
    }
}
