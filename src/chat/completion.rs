//! Work finished on other threads, handed back to the event loop along one
//! path: one channel of [`Completion`]s and the loop's one `mio::Waker`.
//!
//! A worker holds a [`Completer`]: it sends what it finished, then wakes
//! the loop, but only while the loop says it waits for something
//! ([`Completions::want_wake`]); otherwise the loop takes completions on its
//! next turn, and a flood of work costs no extra turns. The loop drains
//! [`Completions`] in one place each turn and on every wake-up.
//!
//! Workers: the history writer (its acknowledgements, and its end) and
//! the accounts' hashing worker (its results); the cluster link of
//! protocol 1.2 adds a variant, not a new path.

use crate::accounts::worker::Finished;
use crate::chat::history::Ack;
use log::warn;
use mio::Waker;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;

/// Something a worker thread finished.
#[derive(Debug)]
pub enum Completion {
    /// The history writer committed (or failed) a batch.
    History(Ack),
    /// The history writer is gone (its threads ended). The channel stays
    /// open while other workers run, so the writer says so itself.
    HistoryGone,
    /// The hashing worker finished an account job.
    Accounts(Finished),
}

/// A worker's end: sends completions and wakes the loop. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Completer {
    tx: Sender<Completion>,
    waker: Arc<Waker>,
    /// Set while the loop waits for a completion: only then is it woken.
    wake_wanted: Arc<AtomicBool>,
}

impl Completer {
    /// Hands `done` to the loop, without waking it (see
    /// [`Completer::wake`]). False when the loop is gone.
    pub fn send(&self, done: Completion) -> bool {
        self.tx.send(done).is_ok()
    }

    /// Wakes the loop if it waits for a completion: once after a worker's
    /// sends, not once per send.
    pub fn wake(&self) {
        if self.wake_wanted.load(Ordering::SeqCst) {
            if let Err(err) = self.waker.wake() {
                warn!("cannot wake the event loop: {err}");
            }
        }
    }
}

/// The loop's end of the completion path.
#[derive(Debug)]
pub struct Completions {
    rx: Receiver<Completion>,
    wake_wanted: Arc<AtomicBool>,
    /// A completion taken early by [`Completions::waiting`].
    peeked: Option<Completion>,
}

impl Completions {
    /// A new path whose workers wake the loop through `waker`.
    pub fn new(waker: Arc<Waker>) -> (Completions, Completer) {
        let (tx, rx) = mpsc::channel();
        let wake_wanted = Arc::new(AtomicBool::new(false));
        let completer = Completer {
            tx,
            waker,
            wake_wanted: wake_wanted.clone(),
        };
        let completions = Completions {
            rx,
            wake_wanted,
            peeked: None,
        };
        (completions, completer)
    }

    /// Whether workers should wake the loop when they finish something:
    /// set while the loop waits for a completion (held output, parked
    /// readers).
    pub fn want_wake(&self, want: bool) {
        self.wake_wanted.store(want, Ordering::SeqCst);
    }

    /// Whether the loop waits for a completion and one is already there
    /// (checked after [`Completions::want_wake`], so none slips between the
    /// two): the loop then polls without waiting.
    pub fn waiting(&mut self) -> bool {
        if !self.wake_wanted.load(Ordering::SeqCst) {
            return false;
        }
        if self.peeked.is_none() {
            self.peeked = self.rx.try_recv().ok();
        }
        self.peeked.is_some()
    }

    /// The next completion, if one is there. `Disconnected` once every
    /// worker is gone (the history writer died, or was never started).
    pub fn try_recv(&mut self) -> Result<Completion, TryRecvError> {
        match self.peeked.take() {
            Some(done) => Ok(done),
            None => self.rx.try_recv(),
        }
    }
}
