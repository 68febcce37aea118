//! Connection and credential limits that look past one connection: how many
//! connections one address holds, how many wrong passwords it has sent, and
//! the TCP keepalive that finds dead peers.
//!
//! The loop asks [`Guard`] before it admits a connection and tells it when
//! one ends, and asks it before and after every `:auth`. Nothing here touches
//! a socket except [`set_keepalive`], so the counting is unit-tested without
//! a network and works the same for every transport.

use crate::chat::ClientId;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// TCP keepalive timing: after `idle` without traffic the kernel probes the
/// peer every `interval`; after `count` unanswered probes the connection
/// fails with a timeout, and the server drops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence before the first probe.
    pub idle: Duration,
    /// Time between probes.
    pub interval: Duration,
    /// Unanswered probes before the peer is declared dead.
    pub count: u32,
}

impl Keepalive {
    /// Longest a dead peer can hold its slot once the line goes quiet.
    pub fn detection_time(&self) -> Duration {
        self.idle + self.interval * self.count
    }
}

/// The limits [`Guard`] enforces, with their defaults (see docs/limits.md
/// for the reasoning behind each).
#[derive(Clone, Debug)]
pub struct GuardConfig {
    /// Open connections allowed from one address (IPv6: one /64); the next
    /// gets `! too many connections from your address`. 0: no limit.
    pub max_per_address: usize,
    /// Apply `max_per_address` to loopback clients too. Off by default: the
    /// load generator and local tools connect from 127.0.0.x by the
    /// thousand.
    pub limit_loopback: bool,
    /// On a password server, how long a connection may stay
    /// unauthenticated before it is closed (`! auth timeout`). `None`: no
    /// limit.
    pub auth_timeout: Option<Duration>,
    /// Wrong passwords from one address, over any number of connections,
    /// that lock it out of `:auth` for `auth_lockout`.
    pub auth_max_failures: u32,
    /// How long an address stays locked out; also how long its earlier
    /// failures are remembered.
    pub auth_lockout: Duration,
    /// TCP keepalive on every accepted socket; `None` leaves the kernel's
    /// default (off).
    pub keepalive: Option<Keepalive>,
    /// Connect and disconnect lines one address may log per 10 s before
    /// the rest are summarised in one line (see [`crate::policy::logsum`]).
    pub log_lines_per_address: u32,
    /// The same for all addresses together.
    pub log_lines_total: u32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            max_per_address: 16,
            limit_loopback: false,
            auth_timeout: Some(Duration::from_secs(30)),
            auth_max_failures: 5,
            auth_lockout: Duration::from_secs(60),
            keepalive: Some(Keepalive {
                idle: Duration::from_secs(60),
                interval: Duration::from_secs(10),
                count: 6,
            }),
            log_lines_per_address: crate::policy::logsum::LINES_PER_WINDOW,
            log_lines_total: crate::policy::logsum::TOTAL_LINES_PER_WINDOW,
        }
    }
}

/// One client address as the limits count it: an IPv4 address, or the /64
/// network of an IPv6 one (one subscriber usually holds a whole /64, so
/// counting single IPv6 addresses would limit nothing). IPv4-mapped IPv6
/// addresses count as their IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddrKey(IpAddr);

impl AddrKey {
    /// The key of a peer address.
    pub fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(v4) => AddrKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    AddrKey(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }

    /// Whether this is a loopback address (127.0.0.0/8 or ::1's /64).
    pub fn is_loopback(&self) -> bool {
        match self.0 {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => v6 == Ipv6Addr::UNSPECIFIED,
        }
    }
}

impl fmt::Display for AddrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Addresses with wrong passwords remembered at once. Past it, failures
/// from addresses not yet tracked share one overflow record, so an attacker
/// with many addresses locks out only those new addresses together, and
/// memory stays bounded.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// Wrong passwords from one address.
#[derive(Debug, Clone, Copy)]
struct AuthRecord {
    failures: u32,
    /// When the last wrong password came; failures are forgotten
    /// `auth_lockout` after it.
    last_failure: Instant,
    /// While set and in the future, `:auth` from this address is refused.
    locked_until: Option<Instant>,
}

/// What [`Guard::auth_failed`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// Counted; the address may try again.
    Counted,
    /// This failure started a lockout of the address: log it once.
    LockedOut {
        /// The address (or /64) locked out.
        key: AddrKey,
        /// Failures that led to it.
        failures: u32,
        /// How long `:auth` is refused.
        lockout: Duration,
    },
}

/// Per-address connection counts and password failures.
#[derive(Debug)]
pub struct Guard {
    config: GuardConfig,
    /// Open connections per address, for those admitted and counted.
    open: HashMap<AddrKey, u32>,
    /// The address each counted connection was admitted under.
    counted: HashMap<ClientId, AddrKey>,
    auth: HashMap<Option<AddrKey>, AuthRecord>,
}

impl Guard {
    /// A guard enforcing `config`.
    pub fn new(config: GuardConfig) -> Self {
        Guard {
            config,
            open: HashMap::new(),
            counted: HashMap::new(),
            auth: HashMap::new(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// New limits (SIGHUP): connections already counted stay counted, a
    /// lower per-address limit refuses only new ones, and failures already
    /// recorded count toward the new lockout rule.
    pub fn set_config(&mut self, config: GuardConfig) {
        self.config = config;
    }

    /// Admits connection `id` from `ip` unless its address already holds
    /// `max_per_address` connections; returns whether it was admitted.
    /// Every admitted connection must be [`release`](Self::release)d.
    pub fn admit(&mut self, id: ClientId, ip: IpAddr) -> bool {
        let key = AddrKey::of(ip);
        let limit = self.config.max_per_address;
        if limit == 0 || (key.is_loopback() && !self.config.limit_loopback) {
            return true;
        }
        let open = self.open.entry(key).or_insert(0);
        if *open as usize >= limit {
            return false;
        }
        *open += 1;
        self.counted.insert(id, key);
        true
    }

    /// Connection `id` is gone; its address may open another.
    pub fn release(&mut self, id: ClientId) {
        let Some(key) = self.counted.remove(&id) else {
            return;
        };
        if let Some(open) = self.open.get_mut(&key) {
            *open -= 1;
            if *open == 0 {
                self.open.remove(&key);
            }
        }
    }

    fn auth_key(&self, ip: IpAddr) -> Option<AddrKey> {
        let key = AddrKey::of(ip);
        (self.auth.contains_key(&Some(key)) || self.auth.len() < MAX_TRACKED_ADDRESSES)
            .then_some(key)
    }

    /// How much longer `ip` is locked out of `:auth`, if it is.
    pub fn auth_locked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let record = self.auth.get(&self.auth_key(ip))?;
        let until = record.locked_until?;
        (until > now).then(|| until - now)
    }

    /// A wrong password from `ip`. The `auth_max_failures`-th one within
    /// `auth_lockout` of each other locks the address out.
    pub fn auth_failed(&mut self, ip: IpAddr, now: Instant) -> AuthFailure {
        let key = self.auth_key(ip);
        let lockout = self.config.auth_lockout;
        let max = self.config.auth_max_failures.max(1);
        let record = self.auth.entry(key).or_insert(AuthRecord {
            failures: 0,
            last_failure: now,
            locked_until: None,
        });
        if now.duration_since(record.last_failure) >= lockout {
            record.failures = 0;
        }
        record.failures += 1;
        record.last_failure = now;
        if record.failures < max {
            return AuthFailure::Counted;
        }
        let failures = std::mem::take(&mut record.failures);
        record.locked_until = Some(now + lockout);
        AuthFailure::LockedOut {
            // The overflow record is logged under the address that tripped it.
            key: key.unwrap_or(AddrKey::of(ip)),
            failures,
            lockout,
        }
    }

    /// The right password from `ip`: its earlier failures are forgiven.
    pub fn auth_succeeded(&mut self, ip: IpAddr) {
        let key = Some(AddrKey::of(ip));
        if self
            .auth
            .get(&key)
            .is_some_and(|record| record.locked_until.is_none())
        {
            self.auth.remove(&key);
        }
    }

    /// Forgets failures and lockouts that have run out; call about once a
    /// second.
    pub fn prune(&mut self, now: Instant) {
        let lockout = self.config.auth_lockout;
        self.auth.retain(|_, record| {
            let locked = record.locked_until.is_some_and(|until| until > now);
            locked || now.duration_since(record.last_failure) < lockout
        });
    }
}

/// Turns on TCP keepalive with `timing` on an accepted socket.
///
/// Keepalive probes only an idle connection; a peer that vanishes while our
/// data is in flight is retransmitted to for 15 minutes or more. So on
/// Linux the same bound is also set as `TCP_USER_TIMEOUT`: data left
/// unacknowledged for [`Keepalive::detection_time`] fails the connection
/// too.
pub fn set_keepalive(socket: &mio::net::TcpStream, timing: &Keepalive) -> std::io::Result<()> {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(timing.idle)
        .with_interval(timing.interval)
        .with_retries(timing.count);
    let socket = socket2::SockRef::from(socket);
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    socket.set_tcp_user_timeout(Some(timing.detection_time()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            AddrKey::of(ip("2001:db8:1:2:aaaa::1")),
            AddrKey::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            AddrKey::of(ip("2001:db8:1:2::1")),
            AddrKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddrKey::of(ip("::ffff:10.0.0.1")),
            AddrKey::of(ip("10.0.0.1"))
        );
        assert_eq!(
            AddrKey::of(ip("2001:db8:1:2::1")).to_string(),
            "2001:db8:1:2::/64"
        );
        assert!(AddrKey::of(ip("::1")).is_loopback());
        assert!(AddrKey::of(ip("127.0.0.9")).is_loopback());
        assert!(!AddrKey::of(ip("10.0.0.1")).is_loopback());
    }

    #[test]
    fn per_address_limit_counts_and_releases() {
        let mut guard = Guard::new(GuardConfig {
            max_per_address: 2,
            ..GuardConfig::default()
        });
        assert!(guard.admit(1, ip("10.0.0.1")));
        assert!(guard.admit(2, ip("10.0.0.1")));
        assert!(!guard.admit(3, ip("10.0.0.1")));
        assert!(guard.admit(4, ip("10.0.0.2")));
        guard.release(1);
        guard.release(3); // never admitted: no effect
        assert!(guard.admit(5, ip("10.0.0.1")));
        assert!(!guard.admit(6, ip("10.0.0.1")));
        // Loopback is exempt unless asked.
        for id in 10..20 {
            assert!(guard.admit(id, ip("127.0.0.1")));
        }
    }

    #[test]
    fn failures_lock_out_once_then_expire() {
        let lockout = Duration::from_secs(60);
        let mut guard = Guard::new(GuardConfig {
            auth_max_failures: 3,
            auth_lockout: lockout,
            ..GuardConfig::default()
        });
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        assert_eq!(guard.auth_failed(a, t0), AuthFailure::Counted);
        assert_eq!(guard.auth_failed(a, t0), AuthFailure::Counted);
        assert!(matches!(
            guard.auth_failed(a, t0),
            AuthFailure::LockedOut { failures: 3, .. }
        ));
        assert_eq!(guard.auth_locked(a, t0), Some(lockout));
        assert_eq!(guard.auth_locked(ip("10.0.0.2"), t0), None);
        guard.auth_succeeded(a); // a right password does not lift a lockout
        assert!(guard.auth_locked(a, t0 + Duration::from_secs(59)).is_some());
        let later = t0 + lockout;
        assert_eq!(guard.auth_locked(a, later), None);
        guard.prune(later);
        assert!(guard.auth.is_empty());
        // Failures far apart never add up.
        assert_eq!(guard.auth_failed(a, later), AuthFailure::Counted);
        assert_eq!(guard.auth_failed(a, later + lockout), AuthFailure::Counted);
        assert_eq!(
            guard.auth_failed(a, later + lockout * 2),
            AuthFailure::Counted
        );
    }
}
