//! The server's part of end-to-end encryption (protocol 1.2, `:key`,
//! `:keys`, `:e2e`): a directory of the public keys each account
//! published, and the checks on keys and payloads. Plain data; the server
//! never reads a payload beyond checking its characters.
//!
//! Where the protocol is silent: publishing a key the account already has
//! moves it to the newest place (each login publishes its device's key, so
//! the keys of devices in use are the last to be dropped), and account
//! names compare lower-cased, as nicks do.

use std::collections::{HashMap, VecDeque};

/// An account has at most this many keys; a ninth drops the oldest.
pub const MAX_KEYS_PER_ACCOUNT: usize = 8;
/// Characters of a key: 32 bytes in base64url without padding.
pub const KEY_CHARS: usize = 43;

/// Whether `text` is a key as `:key` takes it: 43 characters of base64url
/// without padding that decode to exactly 32 bytes (the last character
/// carries 2 bits that must be zero).
pub fn is_key(text: &str) -> bool {
    let bytes = text.as_bytes();
    let value = |b: u8| match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    };
    bytes.len() == KEY_CHARS
        && bytes.iter().all(|&b| value(b).is_some())
        && value(bytes[KEY_CHARS - 1]).is_some_and(|last| last & 0b11 == 0)
}

/// Whether `text` is an `:e2e` payload: 1 or more printable ASCII
/// characters other than space.
pub fn is_payload(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic())
}

/// The keys each account published, oldest first.
#[derive(Debug, Default, Clone)]
pub struct KeyDirectory {
    accounts: HashMap<String, VecDeque<String>>,
}

impl KeyDirectory {
    /// An empty directory.
    pub fn new() -> KeyDirectory {
        KeyDirectory::default()
    }

    /// Replaces every key of `account` by `keys` (oldest first), as
    /// another server of a cluster has them.
    pub fn replace(&mut self, account: &str, keys: &[String]) {
        let published = self
            .accounts
            .entry(account.to_ascii_lowercase())
            .or_default();
        published.clear();
        published.extend(keys.iter().cloned());
    }

    /// Publishes `key` (checked with [`is_key`] by the caller) for
    /// `account`; returns the key dropped to stay within
    /// [`MAX_KEYS_PER_ACCOUNT`], if any.
    pub fn publish(&mut self, account: &str, key: &str) -> Option<String> {
        let keys = self
            .accounts
            .entry(account.to_ascii_lowercase())
            .or_default();
        keys.retain(|known| known != key);
        keys.push_back(key.to_string());
        if keys.len() > MAX_KEYS_PER_ACCOUNT {
            keys.pop_front()
        } else {
            None
        }
    }

    /// The keys of `account`, oldest first (empty when it has none).
    pub fn keys(&self, account: &str) -> Vec<&str> {
        self.accounts
            .get(&account.to_ascii_lowercase())
            .map(|keys| keys.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The `* keys` answer's text after `* keys NAME: `.
    pub fn answer(&self, account: &str) -> String {
        let keys = self.keys(account);
        if keys.is_empty() {
            "none".to_string()
        } else {
            keys.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn keys_are_43_characters_of_base64url_for_32_bytes() {
        assert!(is_key(KEY));
        assert!(is_key(&format!("{}w", "_".repeat(42))));
        // Every key the clients make passes.
        for _ in 0..64 {
            let pair = loopchat_client::e2e::KeyPair::generate();
            assert!(is_key(&loopchat_client::e2e::encode_key(&pair.public)));
        }
        for bad in [
            "",
            &KEY[..42],
            &format!("{KEY}A"),
            &format!("{}=", &KEY[..42]),
            &KEY.replace('A', "+"),
            &KEY.replace('A', "/"),
            &format!("{}B", &KEY[..42]),
            &format!("{} ", &KEY[..42]),
        ] {
            assert!(!is_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn payloads_are_printable_ascii_without_spaces() {
        assert!(is_payload("v1.a.0123456789abcdef.AAAA"));
        assert!(is_payload("!~"));
        for bad in ["", "a b", "é", "a\tb", "a\u{7f}"] {
            assert!(!is_payload(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_account_keeps_its_8_newest_keys_oldest_first() {
        let mut directory = KeyDirectory::new();
        assert_eq!(directory.answer("alice"), "none");
        let keys: Vec<String> = (0..9)
            .map(|i| {
                format!(
                    "{}{}",
                    &KEY[..41],
                    ["AA", "BA", "CA", "DA", "EA", "FA", "GA", "HA", "IA"][i]
                )
            })
            .collect();
        for key in &keys[..8] {
            assert_eq!(directory.publish("Alice", key), None);
        }
        assert_eq!(
            directory.keys("alice"),
            keys[..8].iter().map(String::as_str).collect::<Vec<_>>()
        );
        // Publishing a known key again moves it to the newest place.
        assert_eq!(directory.publish("alice", &keys[0]), None);
        assert_eq!(directory.keys("ALICE").last(), Some(&keys[0].as_str()));
        // A ninth drops the oldest (now keys[1]).
        assert_eq!(directory.publish("alice", &keys[8]), Some(keys[1].clone()));
        assert_eq!(directory.keys("alice").len(), 8);
        assert_eq!(directory.answer("alice").split(' ').count(), 8);
        assert_eq!(directory.answer("bob"), "none");
    }
}
