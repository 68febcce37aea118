//! The accounts engine on real threads and real files: the hashing worker
//! hands results back through a real `mio::Waker`, refuses work when its
//! queue is full, and accounts written through the real history writer
//! come back when the file is opened again (and not in memory-only mode).

use loopchat::accounts::persist::AccountWrite;
use loopchat::accounts::worker::{Busy, Finished, HashWorker, Job, JobResult};
use loopchat::accounts::{Accounts, AccountsConfig};
use loopchat::chat::completion::{Completion, Completions};
use loopchat::chat::history::{HistoryConfig, HistoryLink};
use mio::{Events, Poll, Token, Waker};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

/// A poll with a waker, and a worker whose results arrive on a channel
/// and wake the poll.
fn worker_on_a_poll(queue: usize) -> (HashWorker, mpsc::Receiver<Finished>, Poll) {
    let poll = Poll::new().unwrap();
    let waker = Arc::new(Waker::new(poll.registry(), Token(7)).unwrap());
    let (tx, rx) = mpsc::channel();
    let worker = HashWorker::spawn(queue, move |done| {
        let sent = tx.send(done).is_ok();
        waker.wake().unwrap();
        sent
    })
    .unwrap();
    (worker, rx, poll)
}

/// Waits on the poll (not a sleep) until a result arrives.
fn next(rx: &mpsc::Receiver<Finished>, poll: &mut Poll) -> Finished {
    let deadline = Instant::now() + LIMIT;
    let mut events = Events::with_capacity(4);
    loop {
        if let Ok(done) = rx.try_recv() {
            return done;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no result within {LIMIT:?}");
        poll.poll(&mut events, Some(left)).unwrap();
    }
}

#[test]
fn results_come_back_through_the_loops_waker_in_order() {
    let (worker, rx, mut poll) = worker_on_a_poll(8);
    worker
        .submit(
            1,
            Job::Hash {
                password: "hunter22".into(),
            },
        )
        .unwrap();
    let done = next(&rx, &mut poll);
    assert_eq!(done.ticket, 1);
    let JobResult::Hashed(Some(phc)) = done.result else {
        panic!("{:?}", done.result);
    };
    assert!(phc.starts_with("$argon2id$"));
    for (ticket, phc, password) in [
        (2, Some(phc.clone()), "hunter22"),
        (3, Some(phc.clone()), "hunter23"),
        (4, None, "hunter22"),
    ] {
        worker
            .submit(
                ticket,
                Job::Verify {
                    phc,
                    password: password.into(),
                },
            )
            .unwrap();
    }
    let results: Vec<(u64, JobResult)> = (0..3)
        .map(|_| {
            let done = next(&rx, &mut poll);
            (done.ticket, done.result)
        })
        .collect();
    let no = JobResult::Verified {
        ok: false,
        rehashed: None,
    };
    assert_eq!(
        results,
        [
            (
                2,
                JobResult::Verified {
                    ok: true,
                    rehashed: None
                }
            ),
            (3, no.clone()),
            (4, no),
        ]
    );
    assert_eq!(worker.depth(), 0);
}

#[test]
fn a_full_queue_is_refused_at_once_and_takes_work_again_when_drained() {
    // The callback blocks until the test lets it go, so the worker is
    // known to be busy with job 1 and its queue (one place) empty.
    let (started_tx, started) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel();
    let mut worker = HashWorker::spawn(1, move |finished| {
        started_tx.send(finished.ticket).unwrap();
        go.recv().unwrap();
        done_tx.send(finished.ticket).is_ok()
    })
    .unwrap();
    let job = || Job::Verify {
        phc: None,
        password: "whatever".into(),
    };
    worker.submit(1, job()).unwrap();
    assert_eq!(started.recv_timeout(LIMIT).unwrap(), 1);
    worker.submit(2, job()).unwrap();
    // Refused there and then (the worker is still held in its callback).
    assert_eq!(worker.submit(3, job()), Err(Busy));
    assert_eq!(worker.depth(), 1, "job 2 waits; job 3 was never queued");
    go_tx.send(()).unwrap();
    assert_eq!(done.recv_timeout(LIMIT).unwrap(), 1);
    assert_eq!(started.recv_timeout(LIMIT).unwrap(), 2);
    worker.submit(4, job()).unwrap();
    go_tx.send(()).unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(done.recv_timeout(LIMIT).unwrap(), 2);
    assert_eq!(done.recv_timeout(LIMIT).unwrap(), 4);
    worker.finish();
    assert_eq!(worker.submit(5, job()), Err(Busy), "a stopped worker");
}

/// A history writer on `file` (or in memory), the loop's completion path
/// and its poll.
fn history(
    file: Option<&std::path::Path>,
) -> (
    HistoryLink,
    loopchat::chat::history::Tails,
    Completions,
    Poll,
) {
    let poll = Poll::new().unwrap();
    let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
    let (completions, completer) = Completions::new(waker);
    completions.want_wake(true);
    let config = HistoryConfig {
        file: file.map(|path| path.to_path_buf()),
        ..HistoryConfig::default()
    };
    let (link, tails) = HistoryLink::start(&config, completer).unwrap();
    (link, tails, completions, poll)
}

fn hashed(password: &str) -> String {
    match loopchat::accounts::worker::perform(Job::Hash {
        password: password.into(),
    }) {
        JobResult::Hashed(Some(phc)) => phc,
        other => panic!("{other:?}"),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn accounts_written_by_the_history_writer_come_back_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let (mut link, mut tails, mut completions, mut poll) = history(Some(&path));
    assert!(link.take_loaded_accounts().accounts.is_empty());
    let mut accounts = Accounts::new(AccountsConfig::default());
    accounts
        .register("alice", hashed("hunter22"), now())
        .unwrap();
    let (token, _) = accounts.issue_token("alice", now()).unwrap();
    let writes = accounts.take_writes();
    assert!(matches!(writes[0], AccountWrite::Create(_)));
    // Written with the next batch; its acknowledgement says it is committed.
    let mark = link.mark();
    assert!(mark > 0);
    link.submit_accounts(writes);
    link.submit(&mut tails);
    let deadline = Instant::now() + LIMIT;
    let mut events = Events::with_capacity(4);
    while link.acked() < mark {
        match completions.try_recv() {
            Ok(Completion::History(ack)) => {
                link.on_ack(ack, &mut tails);
            }
            Ok(_) => {}
            Err(_) => {
                assert!(Instant::now() < deadline, "no commit");
                poll.poll(&mut events, Some(Duration::from_millis(100)))
                    .unwrap();
            }
        }
    }
    // Committed: another process reading the file now sees the account
    // (what `kill -9` right after `* registered` would leave).
    let conn = rusqlite::Connection::open(&path).unwrap();
    let stored: String = conn
        .query_row("SELECT name FROM accounts", [], |row| row.get(0))
        .unwrap();
    assert_eq!(stored, "alice");
    let digests: i64 = conn
        .query_row("SELECT count(*) FROM tokens", [], |row| row.get(0))
        .unwrap();
    assert_eq!(digests, 1);
    let raw: i64 = conn
        .query_row(
            "SELECT count(*) FROM tokens WHERE instr(CAST(digest AS TEXT), ?1) > 0",
            [&token],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(raw, 0, "the token itself is never stored");
    drop(conn);
    link.finish();
    drop(link);

    let (mut link, _tails, _completions, _poll) = history(Some(&path));
    let mut again = Accounts::load(
        AccountsConfig::default(),
        link.take_loaded_accounts(),
        now(),
    );
    assert_eq!(again.name("ALICE"), Some("alice"));
    let Some(phc) = again.password_hash("alice").map(str::to_string) else {
        panic!("no hash");
    };
    assert!(loopchat::accounts::hash::verify_password(&phc, "hunter22"));
    assert_eq!(
        again.resume(&token, now()).map(|(name, _)| name),
        Some("alice".into())
    );
}

#[test]
fn memory_only_accounts_stay_in_memory() {
    let (mut link, mut tails, _completions, _poll) = history(None);
    assert_eq!(link.mark(), 0, "nothing to wait for");
    let mut accounts = Accounts::new(AccountsConfig::default());
    accounts
        .register("alice", hashed("hunter22"), now())
        .unwrap();
    link.submit_accounts(accounts.take_writes());
    link.submit(&mut tails);
    assert!(link.take_loaded_accounts().accounts.is_empty());
    assert!(accounts.is_registered("alice"));
}
