//! Log summarising: connection churn from one address cannot fill a disk.
//!
//! Each address (IPv6: each /64) may write `--log-lines-per-address`
//! (default [`LINES_PER_WINDOW`]) connect and disconnect lines per window;
//! the rest are counted, and when the window closes one line says how many
//! were left out: `and 412 more from 127.0.0.9 in the last 10 s`. All
//! addresses together are held to `--log-lines-total` (default
//! [`TOTAL_LINES_PER_WINDOW`]) the same way, so a churn spread over many
//! addresses is bounded too.

use crate::policy::guard::AddrKey;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Length of one summarising window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Lines one address may log per window before the rest are summarised
/// (the default of `--log-lines-per-address`).
pub const LINES_PER_WINDOW: u32 = 20;
/// Lines all addresses together may log per window (the default of
/// `--log-lines-total`).
pub const TOTAL_LINES_PER_WINDOW: u32 = 1000;

#[derive(Debug)]
struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

impl Window {
    fn new(now: Instant) -> Self {
        Window {
            started: now,
            logged: 0,
            suppressed: 0,
        }
    }
}

/// Decides which per-connection log lines are written.
#[derive(Debug)]
pub struct LogSummary {
    per_address: HashMap<AddrKey, Window>,
    total: Window,
    /// Addresses whose lines were all dropped by the total cap this window.
    total_addresses: HashSet<AddrKey>,
    /// Lines one address may log per window.
    per_address_limit: u32,
    /// Lines all addresses together may log per window.
    total_limit: u32,
}

impl LogSummary {
    /// An empty summary starting now, letting each address log
    /// `per_address` lines per window and all of them `total`.
    pub fn new(now: Instant, per_address: u32, total: u32) -> Self {
        LogSummary {
            per_address: HashMap::new(),
            total: Window::new(now),
            total_addresses: HashSet::new(),
            per_address_limit: per_address,
            total_limit: total,
        }
    }

    /// Whether a line about `ip` may be written now; if not, it is counted
    /// for the summary.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = AddrKey::of(ip);
        let window = self
            .per_address
            .entry(key)
            .or_insert_with(|| Window::new(now));
        if window.logged >= self.per_address_limit {
            window.suppressed += 1;
            return false;
        }
        if self.total.logged >= self.total_limit {
            self.total.suppressed += 1;
            if self.total_addresses.len() < 100_000 {
                self.total_addresses.insert(key);
            }
            return false;
        }
        window.logged += 1;
        self.total.logged += 1;
        true
    }

    /// Closes the windows that have run their length (all of them when
    /// `all`, at shutdown) and returns one summary line for each that left
    /// lines out. Call about once a second.
    pub fn summaries(&mut self, now: Instant, all: bool) -> Vec<String> {
        let mut lines = Vec::new();
        let over = |window: &Window| all || now.duration_since(window.started) >= WINDOW;
        self.per_address.retain(|key, window| {
            if !over(window) {
                return true;
            }
            if window.suppressed > 0 {
                let secs = now.duration_since(window.started).as_secs().max(1);
                lines.push(format!(
                    "and {} more from {key} in the last {secs} s",
                    window.suppressed
                ));
            }
            false
        });
        if over(&self.total) {
            if self.total.suppressed > 0 {
                let secs = now.duration_since(self.total.started).as_secs().max(1);
                lines.push(format!(
                    "and {} more from {} addresses in the last {secs} s (over {} lines per {} s)",
                    self.total.suppressed,
                    self.total_addresses.len(),
                    self.total_limit,
                    WINDOW.as_secs()
                ));
            }
            self.total = Window::new(now);
            self.total_addresses.clear();
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_is_summarised_after_its_share() {
        let t0 = Instant::now();
        let mut summary = LogSummary::new(t0, LINES_PER_WINDOW, TOTAL_LINES_PER_WINDOW);
        let churner: IpAddr = "127.0.0.9".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let allowed = (0..432).filter(|_| summary.allow(churner, t0)).count();
        assert_eq!(allowed, LINES_PER_WINDOW as usize);
        assert!(
            summary.allow(other, t0),
            "another address has its own share"
        );
        assert!(summary.summaries(t0 + WINDOW / 2, false).is_empty());
        assert_eq!(
            summary.summaries(t0 + WINDOW, false),
            ["and 412 more from 127.0.0.9 in the last 10 s"]
        );
        assert!(summary.allow(churner, t0 + WINDOW), "a new window");
    }

    #[test]
    fn the_shares_are_settings() {
        let t0 = Instant::now();
        let mut summary = LogSummary::new(t0, 100, 150);
        let churner: IpAddr = "127.0.0.9".parse().unwrap();
        let allowed = (0..130).filter(|_| summary.allow(churner, t0)).count();
        assert_eq!(allowed, 100);
        let allowed = (0..100u32)
            .filter(|&i| summary.allow(IpAddr::from(i.to_be_bytes()), t0))
            .count();
        assert_eq!(allowed, 50, "the total is 150");
    }

    #[test]
    fn many_addresses_are_held_to_the_total() {
        let t0 = Instant::now();
        let mut summary = LogSummary::new(t0, LINES_PER_WINDOW, TOTAL_LINES_PER_WINDOW);
        let allowed = (0..5000u32)
            .filter(|&i| summary.allow(IpAddr::from(i.to_be_bytes()), t0))
            .count();
        assert_eq!(allowed, TOTAL_LINES_PER_WINDOW as usize);
        let lines = summary.summaries(t0, true);
        assert_eq!(
            lines,
            ["and 4000 more from 4000 addresses in the last 1 s (over 1000 lines per 10 s)"]
        );
    }
}
