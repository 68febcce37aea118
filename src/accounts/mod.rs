//! Accounts (protocol 1.2): owned nicks, passwords, login tokens, and the
//! throttles that slow guessing without ever locking an account.
//!
//! This module is the engine, with no chat and no sockets in it; the chat
//! state asks it questions and the event loop feeds its worker.
//!
//! - [`hash`]: Argon2id with OWASP's parameters, PHC strings, the dummy
//!   hash that makes an unknown name cost what a wrong password does.
//! - [`tokens`]: 256-bit random tokens, of which only the SHA-256 is kept.
//! - [`throttle`]: failed logins per name (a few at once, then one per
//!   interval, delayed and never refused), registrations per address and
//!   per server.
//! - [`store`]: the accounts and tokens in memory, and the writes that
//!   mirror each change into the history file.
//! - [`persist`]: the tables in the history file, their migration step,
//!   reading them at start and applying writes (by the history writer
//!   thread, in the same transaction as chat lines).
//! - [`worker`]: the hashing thread, its bounded queue (full: the server
//!   answers `! server busy`), and logins held back by the throttle.
//!
//! It depends on nothing else of the crate, so `chat` (and its history
//! writer) can use it without a circle: the worker hands its results to
//! a callback, which the server points at the loop's completion path.
//! Design, choices and measured costs: `docs/accounts.md`.

pub mod hash;
pub mod persist;
pub mod store;
pub mod throttle;
pub mod tokens;
pub mod worker;

pub use store::{Accounts, AlreadyRegistered, PasswordBounds, MAX_PASSWORD_BYTES};

use std::time::Duration;

/// The account settings (flags of the same names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsConfig {
    /// The shortest password accepted, in bytes (`--min-password-bytes`);
    /// the longest is [`MAX_PASSWORD_BYTES`].
    pub min_password_bytes: usize,
    /// Days a token stays valid after its last use (`--token-days`).
    pub token_days: u32,
    /// Registrations allowed from one address per hour; 0: no limit
    /// (`--registrations-per-address`).
    pub registrations_per_address: u32,
    /// Registrations allowed over the whole server per hour; 0: no limit
    /// (`--registrations-per-hour`).
    pub registrations_per_hour: u32,
    /// Hashing jobs that may wait for the worker; past it, `! server busy`
    /// (`--accounts-queue`).
    pub queue: usize,
    /// Failed logins of one name allowed at once before they are slowed
    /// (`--login-burst`).
    pub login_burst: u32,
    /// Then one login of that name per this long (`--login-interval-secs`).
    pub login_interval: Duration,
    /// Accept passwords on plain connections from non-loopback addresses
    /// (`--allow-plain-passwords`): off, because anyone on the path reads
    /// them.
    pub allow_plain_passwords: bool,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            min_password_bytes: 8,
            token_days: 30,
            registrations_per_address: 5,
            registrations_per_hour: 100,
            queue: 64,
            login_burst: 5,
            login_interval: Duration::from_secs(60),
            allow_plain_passwords: false,
        }
    }
}

impl AccountsConfig {
    /// The login throttle's budget these settings make.
    pub fn login_budget(&self) -> throttle::LoginBudget {
        throttle::LoginBudget {
            burst: self.login_burst.max(1),
            interval: self.login_interval,
        }
    }
}
