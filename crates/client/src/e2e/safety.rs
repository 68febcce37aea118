//! Safety numbers: 60 digits both people see the same and can compare (in
//! person, on a call) to know no one sits between their devices.
//!
//! Each party's half is SHA-256 over [`LABEL`], a zero byte, the account
//! name lower-cased, a zero byte and its 32-byte public key; the first 30
//! bytes, as six 5-byte big-endian numbers each taken modulo 100000, give
//! 30 digits. The two halves, sorted, make the 60 digits, so both sides
//! compute the same number.

use super::noise::{hash, KEY_LEN};

/// The fixed label hashed into each half.
pub const LABEL: &[u8] = b"loopchat safety number v1";

/// The 30 digits of one party.
pub fn half(account: &str, key: &[u8; KEY_LEN]) -> String {
    let account = account.to_ascii_lowercase();
    let digest = hash(&[LABEL, &[0], account.as_bytes(), &[0], key]);
    digest[..30]
        .chunks(5)
        .map(|chunk| {
            let value = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64);
            format!("{:05}", value % 100_000)
        })
        .collect()
}

/// The 60-digit safety number of two parties (the order does not matter).
pub fn safety_number(
    account: &str,
    key: &[u8; KEY_LEN],
    peer: &str,
    peer_key: &[u8; KEY_LEN],
) -> String {
    let mut halves = [half(account, key), half(peer, peer_key)];
    halves.sort();
    halves.concat()
}

/// The number in twelve groups of five digits, as shown to users.
pub fn grouped(number: &str) -> String {
    number
        .as_bytes()
        .chunks(5)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_numbers_are_60_digits_symmetric_and_stable() {
        let (a, b) = ([7; 32], [9; 32]);
        let number = safety_number("alice", &a, "bob", &b);
        assert_eq!(number.len(), 60);
        assert!(number.bytes().all(|c| c.is_ascii_digit()));
        assert_eq!(number, safety_number("bob", &b, "alice", &a));
        assert_eq!(number, safety_number("Alice", &a, "BOB", &b));
        // Any other key or name gives another number.
        assert_ne!(number, safety_number("alice", &a, "bob", &[8; 32]));
        assert_ne!(number, safety_number("alice", &a, "bobby", &b));
        assert_eq!(grouped(&number).split(' ').count(), 12);
    }
}
