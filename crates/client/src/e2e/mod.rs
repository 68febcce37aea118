//! End-to-end encrypted private messages (protocol 1.2's `:e2e`): the
//! server relays payloads it cannot read; only the two clients can.
//!
//! - [`noise`]: `Noise_XX_25519_AESGCM_SHA256` over RustCrypto's crates.
//! - [`wire`]: the `:e2e` payload's text, and the 64-byte padding.
//! - [`session`]: one conversation: handshake, pins, transport messages
//!   rekeyed after each, replay and loss detection.
//! - [`keys`]: the device key file (mode 0600) and the pinned peer keys.
//! - [`safety`]: the 60-digit safety number.
//! - [`client`]: a client's end-to-end side: the device key and pins in a
//!   folder, a conversation per peer, `:key`, `:e2e` and `[e2e]` lines.
//!
//! The page does the same in `web/e2e.js` over WebCrypto; `vectors.json`
//! holds the test vectors both run. What this protects and what it does
//! not: `docs/e2e.md`.

pub mod client;
pub mod keys;
pub mod noise;
pub mod safety;
pub mod session;
pub mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_relay;

pub use client::{E2e, Lock, Shown};
pub use keys::{decode_key, encode_key, load_or_create_device_key, PinCheck, Pins};
pub use noise::KeyPair;
pub use safety::safety_number;
pub use session::{Conversation, Event, Rejection, SendError};
