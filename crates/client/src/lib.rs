//! loopchat's client side.
//!
//! - [`tls`]: the blocking TLS client stream the terminal client, the load
//!   generator and the tests connect with.
//!
//! The terminal client itself is this crate's example, run from the
//! repository root as `cargo run --example client` (the design card's
//! command): `examples/client/` (`main.rs` says how its parts fit).

#![warn(missing_docs)]

pub mod tls;
