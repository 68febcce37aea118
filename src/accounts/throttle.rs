//! Guessing is slowed, never locked: per-name login throttling, and
//! registration limits per address and for the whole server.
//!
//! **Logins.** Each name (whether or not an account has it, so the delay
//! does not tell which names exist) has a budget of failures, a
//! generic cell rate algorithm: `burst` failures pass at once, then one per
//! `interval`. An attempt past the budget is not refused: it waits (and
//! its connection's input with it) until the budget allows it, at most
//! one `interval`, and is then checked as any other. So the owner of the
//! account, with the right password, always gets in, at worst one
//! interval late; a guesser gets `burst` guesses, then one per interval
//! per connection it holds (and the per-address lockout of `:auth` bounds
//! those). A success clears the name's failures. `:resume` never looks
//! here.
//!
//! **Registrations.** At most `per_address` an hour from one address and
//! `per_hour` an hour over the server, counted over the last hour.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The login budget of one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginBudget {
    /// Failures allowed at once before attempts are slowed (at least 1).
    pub burst: u32,
    /// Then one attempt per this long.
    pub interval: Duration,
}

/// Failed logins per name.
#[derive(Debug)]
pub struct LoginThrottle {
    budget: LoginBudget,
    /// Per lower-cased name: the time at which its failures are paid off
    /// (the cell rate algorithm's "theoretical arrival time"). Names whose
    /// time has passed are forgotten by [`LoginThrottle::prune`].
    paid_at: HashMap<String, Instant>,
}

impl LoginThrottle {
    /// A throttle with `budget`.
    pub fn new(budget: LoginBudget) -> Self {
        LoginThrottle {
            budget: LoginBudget {
                burst: budget.burst.max(1),
                interval: budget.interval,
            },
            paid_at: HashMap::new(),
        }
    }

    /// How long an attempt on `key` made at `now` waits before it is
    /// checked: zero within the budget, at most one interval.
    pub fn delay(&self, key: &str, now: Instant) -> Duration {
        let Some(&paid_at) = self.paid_at.get(key) else {
            return Duration::ZERO;
        };
        let free = self.budget.interval * (self.budget.burst - 1);
        paid_at
            .saturating_duration_since(now)
            .saturating_sub(free)
            .min(self.budget.interval)
    }

    /// An attempt on `key`, checked at `at`, failed.
    pub fn failed(&mut self, key: &str, at: Instant) {
        let interval = self.budget.interval;
        let cap = at + interval * self.budget.burst;
        let paid_at = self.paid_at.entry(key.to_string()).or_insert(at);
        *paid_at = ((*paid_at).max(at) + interval).min(cap);
    }

    /// An attempt on `key` succeeded: its failures are forgiven.
    pub fn succeeded(&mut self, key: &str) {
        self.paid_at.remove(key);
    }

    /// Forgets the names whose failures are paid off.
    pub fn prune(&mut self, now: Instant) {
        self.paid_at.retain(|_, paid_at| *paid_at > now);
    }

    /// Names with unpaid failures.
    pub fn len(&self) -> usize {
        self.paid_at.len()
    }

    /// Whether no name has unpaid failures.
    pub fn is_empty(&self) -> bool {
        self.paid_at.is_empty()
    }
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationLimit {
    /// This address registered its share this hour.
    Address,
    /// The server registered its share this hour.
    Server,
}

/// The window registrations are counted over.
const WINDOW: Duration = Duration::from_secs(3600);

/// Registrations over the last hour, per address (`K`: the address as the
/// server counts it, an IPv6 /64 for instance) and in all.
#[derive(Debug)]
pub struct RegistrationLimits<K> {
    per_address: u32,
    per_hour: u32,
    by_address: HashMap<K, VecDeque<Instant>>,
    all: VecDeque<Instant>,
}

impl<K: Hash + Eq + Clone> RegistrationLimits<K> {
    /// At most `per_address` an hour from one address and `per_hour` an
    /// hour in all; 0 is no limit.
    pub fn new(per_address: u32, per_hour: u32) -> Self {
        RegistrationLimits {
            per_address,
            per_hour,
            by_address: HashMap::new(),
            all: VecDeque::new(),
        }
    }

    /// Whether `address` may register at `now`.
    pub fn check(&mut self, address: &K, now: Instant) -> Result<(), RegistrationLimit> {
        self.prune(now);
        if self.per_hour > 0 && self.all.len() >= self.per_hour as usize {
            return Err(RegistrationLimit::Server);
        }
        let mine = self.by_address.get(address).map_or(0, VecDeque::len);
        if self.per_address > 0 && mine >= self.per_address as usize {
            return Err(RegistrationLimit::Address);
        }
        Ok(())
    }

    /// `address` registered at `now` (or is about to: a registration counts
    /// from when it was asked for, so parallel ones cannot pass the limit).
    pub fn record(&mut self, address: &K, now: Instant) {
        self.all.push_back(now);
        self.by_address
            .entry(address.clone())
            .or_default()
            .push_back(now);
    }

    /// Forgets registrations older than an hour.
    pub fn prune(&mut self, now: Instant) {
        let old = |at: &Instant| now.saturating_duration_since(*at) >= WINDOW;
        while self.all.front().is_some_and(old) {
            self.all.pop_front();
        }
        self.by_address.retain(|_, times| {
            while times.front().is_some_and(old) {
                times.pop_front();
            }
            !times.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_few_failures_at_once_then_one_a_minute_never_a_lock() {
        let mut throttle = LoginThrottle::new(LoginBudget {
            burst: 3,
            interval: MIN,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.delay("alice", t0), Duration::ZERO);
            throttle.failed("alice", t0);
        }
        // The fourth waits a minute; other names are not affected.
        assert_eq!(throttle.delay("alice", t0), MIN);
        assert_eq!(throttle.delay("bob", t0), Duration::ZERO);
        // However many fail meanwhile, the wait never passes one interval.
        for _ in 0..100 {
            throttle.failed("alice", t0 + MIN);
        }
        assert_eq!(throttle.delay("alice", t0 + MIN), MIN);
        // A minute later the next guess is checked at once: one a minute.
        assert_eq!(throttle.delay("alice", t0 + MIN * 2), Duration::ZERO);
        throttle.failed("alice", t0 + MIN * 2);
        assert_eq!(throttle.delay("alice", t0 + MIN * 2), MIN);
        // Paid off after burst intervals of quiet.
        assert_eq!(throttle.delay("alice", t0 + MIN * 5), Duration::ZERO);
        throttle.prune(t0 + MIN * 5);
        assert!(throttle.is_empty());
    }

    #[test]
    fn a_success_forgives() {
        let mut throttle = LoginThrottle::new(LoginBudget {
            burst: 1,
            interval: MIN,
        });
        let t0 = Instant::now();
        throttle.failed("alice", t0);
        assert_eq!(throttle.delay("alice", t0), MIN);
        assert_eq!(throttle.delay("alice", t0 + MIN / 2), MIN / 2);
        throttle.succeeded("alice");
        assert_eq!(throttle.delay("alice", t0), Duration::ZERO);
    }

    #[test]
    fn registrations_per_address_and_per_server_over_an_hour() {
        let mut limits = RegistrationLimits::new(2, 3);
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(limits.check(&"a", t0), Ok(()));
            limits.record(&"a", t0);
        }
        assert_eq!(limits.check(&"a", t0), Err(RegistrationLimit::Address));
        assert_eq!(limits.check(&"b", t0), Ok(()));
        limits.record(&"b", t0);
        assert_eq!(limits.check(&"c", t0), Err(RegistrationLimit::Server));
        let later = t0 + WINDOW;
        assert_eq!(limits.check(&"a", later), Ok(()));
        assert!(limits.by_address.is_empty());
        let mut open = RegistrationLimits::new(0, 0);
        for _ in 0..100 {
            open.record(&"a", t0);
        }
        assert_eq!(open.check(&"a", t0), Ok(()));
    }
}
