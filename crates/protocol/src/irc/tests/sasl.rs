//! SASL PLAIN, as the IRCv3 `sasl` specification's exchange shows it.

use crate::irc::sasl::{decode_base64, Credentials, Sasl, Step, CHUNK};

fn credentials(account: &str, password: &str) -> Step {
    Step::Verify(Credentials {
        account: account.into(),
        password: password.into(),
    })
}

#[test]
fn plain_in_one_chunk_yields_the_credentials() {
    let mut sasl = Sasl::default();
    assert_eq!(sasl.handle(Some("PLAIN")), Step::Continue);
    assert!(sasl.in_progress());
    // "jilles\0jilles\0sesame", the specification's example.
    assert_eq!(
        sasl.handle(Some("amlsbGVzAGppbGxlcwBzZXNhbWU=")),
        credentials("jilles", "sesame")
    );
    assert!(!sasl.in_progress());
    // An empty authzid is the authcid.
    let mut sasl = Sasl::default();
    sasl.handle(Some("plain"));
    assert_eq!(
        sasl.handle(Some("AGFsaWNlAGh1bnRlcjI=")),
        credentials("alice", "hunter2")
    );
}

#[test]
fn a_payload_of_whole_chunks_ends_with_a_plus() {
    let password = "p".repeat(293);
    let payload = format!("\0alice\0{password}");
    let encoded = encode(payload.as_bytes());
    assert_eq!(encoded.len(), 400, "exactly one chunk");
    let mut sasl = Sasl::default();
    sasl.handle(Some("PLAIN"));
    assert_eq!(sasl.handle(Some(&encoded)), Step::More);
    assert_eq!(sasl.handle(Some("+")), credentials("alice", &password));
    // Two chunks, the second short.
    let password = "q".repeat(400);
    let encoded = encode(format!("\0bob\0{password}").as_bytes());
    let mut sasl = Sasl::default();
    sasl.handle(Some("PLAIN"));
    assert_eq!(sasl.handle(Some(&encoded[..CHUNK])), Step::More);
    assert_eq!(
        sasl.handle(Some(&encoded[CHUNK..])),
        credentials("bob", &password)
    );
}

#[test]
fn bad_exchanges_get_their_numerics_steps() {
    let mut sasl = Sasl::default();
    assert_eq!(sasl.handle(None), Step::NeedMoreParams);
    assert_eq!(sasl.handle(Some("EXTERNAL")), Step::Mechanisms);
    assert_eq!(sasl.handle(Some("PLAIN")), Step::Continue);
    assert_eq!(sasl.handle(Some("*")), Step::Aborted);
    assert!(!sasl.in_progress());
    for bad in [
        "not base64!",
        "YWJj",             // "abc": no NULs
        "YWxpY2UAYm9iAHB3", // authzid "alice" for authcid "bob"
        "AGFsaWNlAA==",     // no password
        "AABwdw==",         // no account
        "//79",             // not UTF-8
    ] {
        sasl.handle(Some("PLAIN"));
        assert_eq!(sasl.handle(Some(bad)), Step::Fail, "{bad}");
        assert!(!sasl.in_progress());
    }
    sasl.handle(Some("PLAIN"));
    assert_eq!(sasl.handle(Some(&"A".repeat(CHUNK + 1))), Step::TooLong);
    sasl.handle(Some("PLAIN"));
    let mut step = Step::More;
    for _ in 0..4 {
        step = sasl.handle(Some(&"A".repeat(CHUNK)));
        if step != Step::More {
            break;
        }
    }
    assert_eq!(step, Step::TooLong, "the payload has a bound");
    assert!(!sasl.in_progress());
}

#[test]
fn base64_decodes_with_padding_only_at_the_end() {
    assert_eq!(decode_base64("").unwrap(), b"");
    assert_eq!(decode_base64("Zg==").unwrap(), b"f");
    assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
    assert_eq!(decode_base64("Zm9v").unwrap(), b"foo");
    assert!(decode_base64("Zg=").is_none());
    assert!(decode_base64("Zg==Zm9v").is_none());
    assert!(decode_base64("Z===").is_none());
    for bytes in [&b"\x00\xff\x10abc"[..], b"hello world", &[0xfb; 7]] {
        assert_eq!(decode_base64(&encode(bytes)).unwrap(), bytes);
    }
}

/// Standard base64, for building payloads.
fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | b as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
