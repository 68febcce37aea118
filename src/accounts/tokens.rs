//! Login tokens: 256-bit random secrets handed to a client once
//! (`* token TOKEN`), of which the server keeps only the SHA-256.
//!
//! A token reads `lc_` and 43 characters of base64url (46 in all, within
//! the protocol's 20 to 128 of `A-Z a-z 0-9 _ -`). It stays valid for a
//! span after its last use (sliding expiry, `--token-days`) and until it
//! is revoked.

use base64ct::{Base64UrlUnpadded, Encoding};
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

/// What every token starts with, so one found in a log or a paste is
/// recognised for what it is.
pub const PREFIX: &str = "lc_";
/// Random bytes in a token.
const SECRET_BYTES: usize = 32;
/// The shortest and longest token the protocol allows.
const TOKEN_BYTES: std::ops::RangeInclusive<usize> = 20..=128;

/// The SHA-256 of a token: what the store keeps and looks tokens up by.
pub type Digest = [u8; 32];

/// A new token and its digest; `None` when the system has no randomness.
pub fn new_token() -> Option<(String, Digest)> {
    let mut secret = [0u8; SECRET_BYTES];
    SystemRandom::new().fill(&mut secret).ok()?;
    let token = format!("{PREFIX}{}", Base64UrlUnpadded::encode_string(&secret));
    let digest = digest_of(&token);
    Some((token, digest))
}

/// The digest of `token`, as stored.
pub fn digest_of(token: &str) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

/// Whether `token` has the protocol's shape (20 to 128 of
/// `A-Z a-z 0-9 _ -`): anything else is refused without a look-up.
pub fn well_formed(token: &str) -> bool {
    TOKEN_BYTES.contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_protocols_shape_and_differ() {
        let (a, da) = new_token().unwrap();
        let (b, db) = new_token().unwrap();
        assert_ne!(a, b);
        assert_ne!(da, db);
        assert_eq!(a.len(), 46);
        assert!(a.starts_with(PREFIX));
        assert!(well_formed(&a));
        assert_eq!(digest_of(&a), da);
    }

    #[test]
    fn garbage_is_not_well_formed() {
        assert!(!well_formed("short"));
        assert!(!well_formed(&"a".repeat(129)));
        assert!(!well_formed("lc_with space and more than twenty"));
        assert!(!well_formed("lc_ünïcødé_ünïcødé_ünïcødé"));
        assert!(well_formed(&"a".repeat(20)));
    }
}
