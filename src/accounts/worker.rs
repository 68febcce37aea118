//! The hashing worker: one thread that hashes and verifies passwords,
//! fed through a bounded queue, so Argon2id's tens of milliseconds never
//! run on the event loop.
//!
//! The loop [`HashWorker::submit`]s a [`Job`] with a ticket (the client's
//! id and a sequence number, say); a full queue is refused at once
//! ([`Busy`]: the client is answered `! server busy`). The thread sends
//! each [`Finished`] job to the callback given at spawn, which the server
//! points at its completion path (a channel and the loop's `mio::Waker`,
//! as the history writer's acknowledgements). The client's input waits
//! meanwhile, so its later lines are answered in order.
//!
//! [`Delayed`] holds the logins the throttle slows: they wait on the loop,
//! costing nothing, until due, and only then go to the worker.
//!
//! A job's `Debug` never shows a password.

use super::hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Work for the hashing thread.
pub enum Job {
    /// Hash a new password (`:register`).
    Hash {
        /// The password.
        password: String,
    },
    /// Check a password against a stored hash (`:login`); `None` for an
    /// unknown name, checked against the dummy hash at the same cost.
    Verify {
        /// The account's PHC string, if it exists.
        phc: Option<String>,
        /// The password tried.
        password: String,
    },
    /// Check the old password, then hash the new one (`:passwd`).
    Change {
        /// The account's PHC string.
        phc: String,
        /// The password tried.
        old: String,
        /// The new password.
        new: String,
    },
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Hash { .. } => "Hash { .. }",
            Job::Verify { .. } => "Verify { .. }",
            Job::Change { .. } => "Change { .. }",
        })
    }
}

/// What a job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    /// A new hash; `None` when hashing failed (no randomness for a salt).
    Hashed(Option<String>),
    /// Whether the password matched; when it did and the stored hash has
    /// older parameters, a new hash of it.
    Verified {
        /// The password matched.
        ok: bool,
        /// The password hashed again with this build's parameters.
        rehashed: Option<String>,
    },
    /// `Some(new hash)` when the old password matched (and the new one
    /// could be hashed); `None` otherwise.
    Changed(Option<String>),
}

/// A job done, for the loop.
#[derive(Debug)]
pub struct Finished {
    /// The ticket it was submitted with.
    pub ticket: u64,
    /// What it came to.
    pub result: JobResult,
    /// How long the hashing took (not counting the wait in the queue).
    pub took: Duration,
}

/// The queue is full: answer `! server busy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// The loop's end of the hashing thread.
pub struct HashWorker {
    tx: Option<SyncSender<(u64, Job)>>,
    thread: Option<JoinHandle<()>>,
    /// Jobs submitted and not finished (queued or running).
    depth: Arc<AtomicUsize>,
}

impl HashWorker {
    /// Starts the thread with room for `queue` waiting jobs (at least 1);
    /// each finished job goes to `deliver`, which returns false once
    /// nobody listens (the thread then ends).
    pub fn spawn(
        queue: usize,
        deliver: impl FnMut(Finished) -> bool + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(queue.max(1));
        let depth = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::Builder::new().name("accounts".into()).spawn({
            let depth = depth.clone();
            move || run(rx, depth, deliver)
        })?;
        Ok(HashWorker {
            tx: Some(tx),
            thread: Some(thread),
            depth,
        })
    }

    /// Queues `job`; refused at once when the queue is full (or the thread
    /// is gone).
    pub fn submit(&self, ticket: u64, job: Job) -> Result<(), Busy> {
        let Some(tx) = &self.tx else {
            return Err(Busy);
        };
        self.depth.fetch_add(1, Ordering::SeqCst);
        match tx.try_send((ticket, job)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.depth.fetch_sub(1, Ordering::SeqCst);
                Err(Busy)
            }
        }
    }

    /// Jobs submitted and not yet finished (waiting or running).
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::SeqCst)
    }

    /// Lets the thread finish the jobs it has, and waits for it.
    pub fn finish(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("accounts: the hashing thread panicked");
            }
        }
    }
}

impl Drop for HashWorker {
    fn drop(&mut self) {
        self.finish();
    }
}

fn run(
    rx: Receiver<(u64, Job)>,
    depth: Arc<AtomicUsize>,
    mut deliver: impl FnMut(Finished) -> bool,
) {
    while let Ok((ticket, job)) = rx.recv() {
        let started = Instant::now();
        let result = perform(job);
        depth.fetch_sub(1, Ordering::SeqCst);
        let finished = Finished {
            ticket,
            result,
            took: started.elapsed(),
        };
        if !deliver(finished) {
            return;
        }
    }
}

/// Does one job (tens of milliseconds).
pub fn perform(job: Job) -> JobResult {
    match job {
        Job::Hash { password } => JobResult::Hashed(hash::hash_password(&password).ok()),
        Job::Verify { phc, password } => match phc {
            Some(phc) => {
                let ok = hash::verify_password(&phc, &password);
                let rehashed = if ok && hash::needs_rehash(&phc) {
                    hash::hash_password(&password).ok()
                } else {
                    None
                };
                JobResult::Verified { ok, rehashed }
            }
            None => {
                hash::verify_dummy(&password);
                JobResult::Verified {
                    ok: false,
                    rehashed: None,
                }
            }
        },
        Job::Change { phc, old, new } => {
            let changed = hash::verify_password(&phc, &old)
                .then(|| hash::hash_password(&new).ok())
                .flatten();
            JobResult::Changed(changed)
        }
    }
}

/// Logins slowed by the throttle, waiting on the loop until due.
#[derive(Debug, Default)]
pub struct Delayed {
    jobs: Vec<(Instant, u64, Job)>,
}

impl Delayed {
    /// Holds `job` until `due`.
    pub fn push(&mut self, due: Instant, ticket: u64, job: Job) {
        self.jobs.push((due, ticket, job));
    }

    /// The jobs due by `now`, oldest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<(u64, Job)> {
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.jobs.len() {
            if self.jobs[i].0 <= now {
                let (at, ticket, job) = self.jobs.remove(i);
                due.push((at, ticket, job));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|(at, ..)| *at);
        due.into_iter()
            .map(|(_, ticket, job)| (ticket, job))
            .collect()
    }

    /// Drops the job of `ticket` (its client left).
    pub fn cancel(&mut self, ticket: u64) {
        self.jobs.retain(|(_, held, _)| *held != ticket);
    }

    /// When the next job is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.jobs.iter().map(|(at, ..)| *at).min()
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job waits.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_do_what_they_say_and_never_show_a_password() {
        let JobResult::Hashed(Some(phc)) = perform(Job::Hash {
            password: "hunter22".into(),
        }) else {
            panic!("hashed");
        };
        let verify = |phc: Option<&str>, password: &str| {
            perform(Job::Verify {
                phc: phc.map(str::to_string),
                password: password.into(),
            })
        };
        let no = JobResult::Verified {
            ok: false,
            rehashed: None,
        };
        assert_eq!(
            verify(Some(&phc), "hunter22"),
            JobResult::Verified {
                ok: true,
                rehashed: None
            }
        );
        assert_eq!(verify(Some(&phc), "hunter23"), no);
        assert_eq!(verify(None, "hunter22"), no);
        let changed = perform(Job::Change {
            phc: phc.clone(),
            old: "wrong".into(),
            new: "newpassword".into(),
        });
        assert_eq!(changed, JobResult::Changed(None));
        let JobResult::Changed(Some(new)) = perform(Job::Change {
            phc,
            old: "hunter22".into(),
            new: "newpassword".into(),
        }) else {
            panic!("changed");
        };
        assert!(hash::verify_password(&new, "newpassword"));
        let shown = format!(
            "{:?}",
            Job::Change {
                phc: "x".into(),
                old: "secret-old".into(),
                new: "secret-new".into()
            }
        );
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn delayed_jobs_come_out_when_due_in_order() {
        let mut delayed = Delayed::default();
        let t0 = Instant::now();
        let job = || Job::Hash {
            password: String::new(),
        };
        delayed.push(t0 + Duration::from_secs(2), 2, job());
        delayed.push(t0 + Duration::from_secs(1), 1, job());
        delayed.push(t0 + Duration::from_secs(3), 3, job());
        assert_eq!(delayed.next_due(), Some(t0 + Duration::from_secs(1)));
        assert!(delayed.take_due(t0).is_empty());
        delayed.cancel(3);
        let due: Vec<u64> = delayed
            .take_due(t0 + Duration::from_secs(5))
            .into_iter()
            .map(|(ticket, _)| ticket)
            .collect();
        assert_eq!(due, [1, 2]);
        assert!(delayed.is_empty());
    }
}
