//! Password hashing: Argon2id with OWASP's parameters (the `argon2`
//! crate's defaults: 19 MiB, two passes, one lane), stored as PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`), so the cost can be raised
//! later and an old hash redone at the next login ([`needs_rehash`]).
//!
//! These functions take tens of milliseconds each: only the hashing worker
//! ([`super::worker`]) calls them, never the event loop.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::OnceLock;

/// The hasher with the parameters this build writes.
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// A PHC string of `password` under a fresh random 16-byte salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| "no randomness for a salt".to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|err| err.to_string())?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| err.to_string())
}

/// Whether `password` matches the PHC string `phc`. A string that does not
/// parse never matches (and costs as much as one that does: the dummy
/// hash is checked instead).
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => {
            verify_dummy(password);
            false
        }
    }
}

/// Checks `password` against a hash no password matches, with the same
/// parameters as a real one: an unknown name then costs what a wrong
/// password does, so timing does not tell which names exist.
pub fn verify_dummy(password: &str) {
    let dummy = dummy_hash();
    if let Ok(hash) = PasswordHash::new(dummy) {
        let _ = Argon2::default().verify_password(password.as_bytes(), &hash);
    }
}

/// The dummy hash: made once, from a random password nobody knows.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 32];
        let _ = SystemRandom::new().fill(&mut secret);
        let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        hash_password(&secret).unwrap_or_default()
    })
}

/// Whether `phc` was made with other parameters than this build's (an
/// older, cheaper setting): the worker hashes the password again at the
/// next successful login.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return true;
    };
    let current = Params::default();
    hash.algorithm.as_str() != "argon2id"
        || params.m_cost() != current.m_cost()
        || params.t_cost() != current.t_cost()
        || params.p_cost() != current.p_cost()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_a_phc_string_with_owasp_parameters_that_verifies() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "correct horsE"));
        assert!(!needs_rehash(&phc));
        // Same password, fresh salt: another string.
        assert_ne!(phc, hash_password("correct horse").unwrap());
    }

    #[test]
    fn garbage_never_matches_and_old_parameters_ask_for_a_rehash() {
        assert!(!verify_password("not a phc string", ""));
        assert!(!verify_password("", "x"));
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let old = weak.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_password(&old, "pw"), "old hashes still verify");
        assert!(needs_rehash(&old));
        assert!(needs_rehash("garbage"));
    }
}
