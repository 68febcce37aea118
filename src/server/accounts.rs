//! The loop's end of the accounts ([`crate::accounts`]): the hashing
//! worker and its results, the logins the throttle holds back, the login
//! throttle, the registration limits, and the checks made before a
//! password command runs (TLS or loopback, the per-address lockout, the
//! registration limits).
//!
//! A command that needs the worker pauses its client's input
//! ([`crate::net::connection::Connection::account_wait`]): its later lines
//! wait (in the connection, then in its socket: TCP pushes back) until the
//! result has been answered, so they run in order after it.

use super::EventLoop;
use crate::accounts::throttle::{LoginThrottle, RegistrationLimits};
use crate::accounts::worker::{Delayed, Finished, HashWorker, Job};
use crate::accounts::AccountsConfig;
use crate::chat::completion::{Completer, Completion};
use crate::chat::{ClientId, JobKind, Outbox};
use crate::policy::guard::AddrKey;
use crate::protocol::{Command, Error};
use log::info;
use std::time::{Duration, Instant};

/// How often tokens unused for longer than `--token-days` are forgotten
/// (they are refused when used in any case; this bounds their memory).
const EXPIRY_PASS: Duration = Duration::from_secs(3600);

/// The account machinery the loop owns.
pub(super) struct AccountsLink {
    worker: HashWorker,
    delayed: Delayed,
    throttle: LoginThrottle,
    registrations: RegistrationLimits<AddrKey>,
    allow_plain_passwords: bool,
    queue_limit: usize,
    /// When expired tokens are next forgotten.
    next_expiry: Instant,
}

impl AccountsLink {
    /// Starts the hashing worker, whose results go to `done`.
    pub(super) fn start(config: &AccountsConfig, done: Completer) -> std::io::Result<Self> {
        let worker = HashWorker::spawn(config.queue, move |finished| {
            let sent = done.send(Completion::Accounts(finished));
            done.wake();
            sent
        })?;
        Ok(AccountsLink {
            worker,
            delayed: Delayed::default(),
            throttle: LoginThrottle::new(config.login_budget()),
            registrations: RegistrationLimits::new(
                config.registrations_per_address,
                config.registrations_per_hour,
            ),
            allow_plain_passwords: config.allow_plain_passwords,
            queue_limit: config.queue,
            next_expiry: Instant::now() + EXPIRY_PASS,
        })
    }

    /// Jobs queued or running, and the queue's bound (for the metrics).
    pub(super) fn queue(&self) -> (usize, usize) {
        (self.worker.depth(), self.queue_limit)
    }

    /// Logins the throttle holds back.
    pub(super) fn delayed(&self) -> usize {
        self.delayed.len()
    }

    /// When the next held-back login is due.
    pub(super) fn next_due(&self) -> Option<std::time::Instant> {
        self.delayed.next_due()
    }

    /// Lets the worker finish and stops it.
    pub(super) fn finish(&mut self) {
        self.worker.finish();
    }
}

impl EventLoop {
    /// Before an account command runs: refuses a password on a plain
    /// connection from another address, a `:login` from an address locked
    /// out, and a `:register` past the registration limits. Returns true
    /// when the command was refused (and answered).
    pub(super) fn refuse_account_command(&mut self, id: ClientId, command: &Command<'_>) -> bool {
        let sends_password = matches!(
            command,
            Command::Register(_) | Command::Login { .. } | Command::Passwd { .. }
        );
        if !sends_password || self.chat.nick(id).is_none() {
            return false;
        }
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return false;
        };
        let peer = conn.peer();
        let private = conn.stream.tls_session().is_some() || AddrKey::of(peer.ip()).is_loopback();
        if !private && !self.accounts.allow_plain_passwords {
            self.clients.reply(id, &Error::UseTls.into());
            return true;
        }
        if matches!(command, Command::Login { .. } | Command::Passwd { .. }) {
            if let Some(left) = self.guard.auth_locked(peer.ip(), self.now) {
                let retry_secs = left.as_secs().max(1);
                self.clients
                    .reply(id, &Error::LockedOut { retry_secs }.into());
                return true;
            }
        }
        if matches!(command, Command::Register(_)) {
            let key = AddrKey::of(peer.ip());
            if self.accounts.registrations.check(&key, self.now).is_err() {
                self.clients.metrics.accounts.registrations_refused += 1;
                self.clients.reply(id, &Error::TooManyRegistrations.into());
                return true;
            }
        }
        false
    }

    /// After a command: hands the jobs it left to the worker (or holds a
    /// throttled login back), pausing the client's input until its answer.
    /// Closes the connections a login took over.
    pub(super) fn dispatch_account_jobs(&mut self) {
        for job in self.chat.take_account_jobs() {
            if let Some(conn) = self.clients.conns.get_mut(job.client) {
                conn.account_wait = true;
            }
            if job.throttle.is_none() {
                // A registration: it counts from when it was asked for.
                if let Some(peer) = self.clients.conns.get(job.client).map(|c| c.peer()) {
                    let key = AddrKey::of(peer.ip());
                    self.accounts.registrations.record(&key, self.now);
                }
            }
            let delay = job.throttle.as_deref().map_or(Duration::ZERO, |name| {
                self.accounts.throttle.delay(name, self.now)
            });
            if delay.is_zero() {
                self.submit_account_job(job.ticket, job.job);
            } else {
                self.clients.metrics.accounts.throttled += 1;
                let due = self.now + delay;
                self.accounts.delayed.push(due, job.ticket, job.job);
                self.next_timer_check = self.next_timer_check.min(due);
            }
        }
        for id in self.chat.take_taken_over() {
            self.close_gracefully(id, crate::end_reason::EndReason::LoggedInElsewhere);
        }
    }

    fn submit_account_job(&mut self, ticket: u64, job: Job) {
        if self.accounts.worker.submit(ticket, job).is_err() {
            self.clients.metrics.accounts.busy += 1;
            if let Some(id) = self.chat.account_job_refused(ticket, &mut self.clients) {
                self.irc_oper_done(id, false);
                self.irc_sasl_done(id, false);
                self.resume_input(id);
            }
        }
    }

    /// Held-back logins whose time has come go to the worker (those whose
    /// client left are dropped); the throttle forgets what is paid off.
    pub(super) fn account_timers(&mut self) {
        for (ticket, job) in self.accounts.delayed.take_due(self.now) {
            if self.chat.account_job_wanted(ticket) {
                self.submit_account_job(ticket, job);
            }
        }
        self.accounts.throttle.prune(self.now);
        self.accounts.registrations.prune(self.now);
        if self.now >= self.accounts.next_expiry {
            self.accounts.next_expiry = self.now + EXPIRY_PASS;
            let now = crate::chat::history::tails::unix_now_ms() / 1000;
            let expired = self.chat.accounts_mut().expire_tokens(now);
            if expired > 0 {
                info!("accounts: {expired} tokens unused for longer than --token-days forgotten");
            }
        }
    }

    /// A job came back: the chat answers it, the throttle and the
    /// per-address lockout learn how it went, and the client's input goes
    /// on.
    pub(super) fn on_account_job(&mut self, finished: Finished) {
        let took = finished.took;
        let accounts = &mut self.clients.metrics.accounts;
        accounts.hash_jobs += 1;
        accounts.hash_micros += took.as_micros() as u64;
        // Its answer may promise a stored change (`* registered`): it waits
        // for the batch the change goes out with.
        let client = self.chat.account_job_client(finished.ticket);
        if let Some(conn) = client.and_then(|id| self.clients.conns.get_mut(id)) {
            conn.history_mark = self.history.mark_for_accounts();
        }
        let Some(done) = self.chat.account_job_done(finished, &mut self.clients) else {
            return;
        };
        let id = done.client;
        if let (Some(name), true) = (&done.throttle, done.kind != JobKind::Register) {
            if done.ok {
                self.accounts.throttle.succeeded(name);
            } else {
                self.accounts.throttle.failed(name, self.now);
            }
        }
        if done.kind != JobKind::Register {
            self.count_login(id, done.ok);
            self.irc_oper_done(id, done.ok);
            self.irc_sasl_done(id, done.ok);
        }
        for other in self.chat.take_taken_over() {
            self.close_gracefully(other, crate::end_reason::EndReason::LoggedInElsewhere);
        }
        self.resume_input(id);
    }

    /// Counts a password check against the client's address (the lockout
    /// of `:auth`), or forgives the address on success.
    fn count_login(&mut self, id: ClientId, ok: bool) {
        let Some(peer) = self.clients.conns.get(id).map(|c| c.peer()) else {
            return;
        };
        if ok {
            self.guard.auth_succeeded(peer.ip());
            return;
        }
        self.password_failed(peer.ip(), ":login and :auth");
    }

    /// The client's account job is answered: its input runs again.
    pub(super) fn resume_input(&mut self, id: ClientId) {
        let Some(conn) = self.clients.conns.get_mut(id) else {
            return;
        };
        conn.account_wait = false;
        if let Some(at) = self.reads.paused.iter().position(|&paused| paused == id) {
            self.reads.paused.swap_remove(at);
            self.reads.ready.push(id);
        }
    }
}
