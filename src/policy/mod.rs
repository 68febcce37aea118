//! The policies that keep one client from hurting the others: plain rules
//! over counters and clocks, applied by the event loop.
//!
//! - [`limits`]: flood control, fairness by output work, the soft output
//!   limit over time, the global output bound with eviction, and departures
//!   announced a work budget at a time.
//! - [`guard`]: limits across connections: per-address connection counts,
//!   password failures and lockouts, TCP keepalive settings.
//! - [`logsum`]: summarises per-connection log lines, so churn from one
//!   address cannot fill a disk.

pub mod guard;
pub mod limits;
pub mod logsum;
