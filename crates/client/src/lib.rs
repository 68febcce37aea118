//! loopchat's client side.
//!
//! - [`tls`]: the blocking TLS client stream the terminal client, the load
//!   generator and the tests connect with.
//! - [`e2e`]: end-to-end encrypted private messages: Noise XX, the `:e2e`
//!   payload, device keys, pins and safety numbers.
//!
//! The terminal client itself is this crate's example, run from the
//! repository root as `cargo run --example client` (the design card's
//! command): `examples/client/` (`main.rs` says how its parts fit).

#![warn(missing_docs)]

pub mod e2e;
pub mod tls;
