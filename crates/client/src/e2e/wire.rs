//! The `:e2e` payload: what one client hands the server for the other, in
//! the printable ASCII without spaces the protocol allows.
//!
//! ```text
//! v1.a.SID.DATA       handshake message 1 (initiator -> responder: e)
//! v1.b.SID.DATA       handshake message 2 (responder -> initiator: e, ee, s, es)
//! v1.c.SID.DATA       handshake message 3 (initiator -> responder: s, se)
//! v1.m.SID.N.DATA     transport message number N (decimal, from 0) of session SID
//! ```
//!
//! SID is 16 lowercase hexadecimal digits the initiator picks at random;
//! DATA is the Noise message in base64url without padding. A transport
//! message's plaintext is [`pad`]ded: a 2-byte big-endian length, the
//! UTF-8 text, zeros up to a multiple of [`PAD_STEP`] bytes. N is the
//! AES-GCM nonce, so a changed N fails like a changed byte.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The version prefix every payload starts with.
pub const VERSION: &str = "v1";
/// Transport plaintexts are padded to a multiple of this many bytes.
pub const PAD_STEP: usize = 64;
/// The largest padded plaintext: its payload stays well within the
/// protocol's 4096-byte line with `:e2e NICK ` in front.
pub const MAX_PADDED: usize = 44 * PAD_STEP;
/// The longest text one encrypted message carries, in bytes of UTF-8.
pub const MAX_TEXT: usize = MAX_PADDED - 2;
/// The longest payload this side accepts.
pub const MAX_PAYLOAD: usize = 4000;

/// Which message of a session a payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Handshake message 1.
    Hello,
    /// Handshake message 2.
    Reply,
    /// Handshake message 3.
    Finish,
    /// A transport message with its number.
    Message(u64),
}

/// A parsed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The message's place in its session.
    pub kind: Kind,
    /// The session id (8 bytes, shown as 16 hex digits).
    pub sid: [u8; 8],
    /// The Noise message.
    pub data: Vec<u8>,
}

/// Why a payload could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Not of the form above (or another version).
    Malformed,
    /// Longer than [`MAX_PAYLOAD`].
    TooLong,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WireError::Malformed => "not a loopchat end-to-end payload",
            WireError::TooLong => "an end-to-end payload that is too long",
        })
    }
}

impl std::error::Error for WireError {}

impl Payload {
    /// The payload's text.
    pub fn encode(&self) -> String {
        let sid = hex(&self.sid);
        let data = URL_SAFE_NO_PAD.encode(&self.data);
        match self.kind {
            Kind::Hello => format!("{VERSION}.a.{sid}.{data}"),
            Kind::Reply => format!("{VERSION}.b.{sid}.{data}"),
            Kind::Finish => format!("{VERSION}.c.{sid}.{data}"),
            Kind::Message(n) => format!("{VERSION}.m.{sid}.{n}.{data}"),
        }
    }

    /// Reads a payload's text.
    pub fn decode(text: &str) -> Result<Payload, WireError> {
        if text.len() > MAX_PAYLOAD {
            return Err(WireError::TooLong);
        }
        let mut parts = text.split('.');
        let mut next = || parts.next().ok_or(WireError::Malformed);
        if next()? != VERSION {
            return Err(WireError::Malformed);
        }
        let kind = next()?;
        let sid = unhex(next()?).ok_or(WireError::Malformed)?;
        let kind = match kind {
            "a" => Kind::Hello,
            "b" => Kind::Reply,
            "c" => Kind::Finish,
            "m" => {
                let n = next()?;
                // Canonical decimal only: no sign, no leading zero.
                if n.is_empty() || (n.len() > 1 && n.starts_with('0')) {
                    return Err(WireError::Malformed);
                }
                if !n.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(WireError::Malformed);
                }
                Kind::Message(n.parse().map_err(|_| WireError::Malformed)?)
            }
            _ => return Err(WireError::Malformed),
        };
        let data = URL_SAFE_NO_PAD
            .decode(next()?)
            .map_err(|_| WireError::Malformed)?;
        if parts.next().is_some() {
            return Err(WireError::Malformed);
        }
        Ok(Payload { kind, sid, data })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 8]> {
    if text.len() != 16 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0; 8];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A text too long for one encrypted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// Pads a text for encryption (see the module's description).
pub fn pad(text: &str) -> Result<Vec<u8>, TooLong> {
    let len = text.len();
    if len > MAX_TEXT {
        return Err(TooLong);
    }
    let total = (2 + len).div_ceil(PAD_STEP) * PAD_STEP;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.resize(total, 0);
    Ok(out)
}

/// The text in a padded plaintext; `None` unless the length, padding
/// (all zeros) and UTF-8 are exactly right.
pub fn unpad(padded: &[u8]) -> Option<String> {
    if padded.is_empty() || !padded.len().is_multiple_of(PAD_STEP) || padded.len() > MAX_PADDED {
        return None;
    }
    let len = u16::from_be_bytes([padded[0], padded[1]]) as usize;
    let body = padded.get(2..2 + len)?;
    if (2 + len).div_ceil(PAD_STEP) * PAD_STEP != padded.len() {
        return None;
    }
    if padded[2 + len..].iter().any(|&b| b != 0) {
        return None;
    }
    String::from_utf8(body.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_goes_in_64_byte_steps() {
        assert_eq!(pad("").unwrap().len(), 64);
        assert_eq!(pad(&"x".repeat(62)).unwrap().len(), 64);
        assert_eq!(pad(&"x".repeat(63)).unwrap().len(), 128);
        assert_eq!(pad(&"x".repeat(MAX_TEXT)).unwrap().len(), MAX_PADDED);
        assert_eq!(pad(&"x".repeat(MAX_TEXT + 1)), Err(TooLong));
        for text in ["", "hi", "héllo wörld", &"y".repeat(200)] {
            assert_eq!(unpad(&pad(text).unwrap()).as_deref(), Some(text));
        }
    }

    #[test]
    fn bad_padding_is_refused() {
        let good = pad("hello").unwrap();
        let mut nonzero = good.clone();
        nonzero[40] = 1;
        assert_eq!(unpad(&nonzero), None);
        let mut long = good.clone();
        long[1] = 63;
        assert_eq!(unpad(&long), None, "a length past the block");
        let mut short = good.clone();
        short.truncate(63);
        assert_eq!(unpad(&short), None);
        // A whole extra block of zeros: not the shortest padding.
        let mut extra = good.clone();
        extra.resize(128, 0);
        assert_eq!(unpad(&extra), None);
        let mut invalid = pad("ab").unwrap();
        invalid[2] = 0xff;
        assert_eq!(unpad(&invalid), None);
    }

    #[test]
    fn payloads_round_trip_and_stay_printable() {
        for kind in [Kind::Hello, Kind::Reply, Kind::Finish, Kind::Message(0)] {
            let payload = Payload {
                kind,
                sid: [0, 1, 2, 0xfe, 4, 5, 6, 0xff],
                data: (0..=255).collect(),
            };
            let text = payload.encode();
            assert!(text.bytes().all(|b| b.is_ascii_graphic()), "{text}");
            assert_eq!(Payload::decode(&text), Ok(payload));
        }
        let m = Payload {
            kind: Kind::Message(u64::MAX),
            sid: [9; 8],
            data: vec![1, 2, 3],
        };
        assert!(m
            .encode()
            .starts_with("v1.m.0909090909090909.18446744073709551615."));
        assert_eq!(Payload::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn malformed_payloads_are_refused() {
        for text in [
            "",
            "hello",
            "v2.a.0001020304050607.AAAA",
            "v1.x.0001020304050607.AAAA",
            "v1.a.000102030405060.AAAA",
            "v1.a.00010203040506XY.AAAA",
            "v1.a.0001020304050607.AA+A",
            "v1.a.0001020304050607.AAAA.extra",
            "v1.m.0001020304050607.AAAA",
            "v1.m.0001020304050607.01.AAAA",
            "v1.m.0001020304050607.-1.AAAA",
            "v1.m.0001020304050607.18446744073709551616.AAAA",
        ] {
            assert_eq!(Payload::decode(text), Err(WireError::Malformed), "{text}");
        }
        let long = format!("v1.a.0001020304050607.{}", "A".repeat(MAX_PAYLOAD));
        assert_eq!(Payload::decode(&long), Err(WireError::TooLong));
    }

    #[test]
    fn the_largest_message_fits_a_protocol_line() {
        let payload = Payload {
            kind: Kind::Message(u64::MAX),
            sid: [0; 8],
            data: vec![0; MAX_PADDED + 16],
        };
        let text = payload.encode();
        assert!(text.len() <= MAX_PAYLOAD, "{}", text.len());
        // `:e2e ` and a 32-character nick, then the payload and `\n`.
        let line = format!(":e2e {} {text}\n", "n".repeat(32));
        assert!(line.len() <= 4096, "{}", line.len());
    }
}
