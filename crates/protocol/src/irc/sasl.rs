//! SASL `PLAIN` over `AUTHENTICATE` (IRCv3 `sasl` 3.1/3.2), sans I/O: the
//! exchange as a state machine that yields what to answer, and the
//! credentials once they are complete. Checking them is the caller's
//! business (the accounts' worker: hashing never runs on the loop).
//!
//! ```text
//! C: AUTHENTICATE PLAIN          S: AUTHENTICATE +
//! C: AUTHENTICATE <base64>       (chunks of 400; a last chunk of exactly
//!                                 400 is followed by `AUTHENTICATE +`)
//!                                S: 900 and 903, or 904
//! C: AUTHENTICATE *              S: 906 (aborted)
//! ```
//!
//! The payload is `authzid NUL authcid NUL password`; an authzid other than
//! empty or the authcid is refused (no logging in as someone else).

/// The mechanisms offered (`CAP LS 302`'s `sasl=PLAIN`, `908`).
pub const MECHANISMS: &str = "PLAIN";

/// The longest base64 chunk one `AUTHENTICATE` carries.
pub const CHUNK: usize = 400;

/// The most payload bytes (decoded) an exchange may carry: two names of
/// 32 bytes, a password of 256, and room to spare. More is `905`.
pub const MAX_PAYLOAD_BYTES: usize = 1024;

/// What the client sent, as the exchange sees it.
#[derive(Debug, Default)]
pub struct Sasl {
    /// Base64 received so far, once `PLAIN` was chosen.
    pending: Option<String>,
}

/// What to do after one `AUTHENTICATE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send `AUTHENTICATE +`: the mechanism is accepted, send the payload.
    Continue,
    /// A full chunk arrived: wait for the next (nothing to send).
    More,
    /// The credentials are complete: check them, then answer `900` and
    /// `903`, or `904`.
    Verify(Credentials),
    /// `904`: a payload that is not PLAIN's, or an unknown mechanism (after
    /// `908` with [`MECHANISMS`] for the latter, see [`Step::Mechanisms`]).
    Fail,
    /// `908` then `904`: a mechanism other than PLAIN.
    Mechanisms,
    /// `905`: the payload is too long.
    TooLong,
    /// `906`: the client aborted with `AUTHENTICATE *`.
    Aborted,
    /// `461`: `AUTHENTICATE` without a parameter.
    NeedMoreParams,
}

/// Credentials from a PLAIN payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The account to log in to (the authcid).
    pub account: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    /// The password is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Sasl {
    /// Whether an exchange is under way (between `AUTHENTICATE PLAIN` and
    /// its end).
    pub fn in_progress(&self) -> bool {
        self.pending.is_some()
    }

    /// Handles `AUTHENTICATE <param>` (`None`: no parameter). A client
    /// already logged in is answered `907` by the caller, before this.
    pub fn handle(&mut self, param: Option<&str>) -> Step {
        let Some(param) = param.filter(|p| !p.is_empty()) else {
            return Step::NeedMoreParams;
        };
        if param == "*" {
            self.pending = None;
            return Step::Aborted;
        }
        let Some(pending) = &mut self.pending else {
            if param.eq_ignore_ascii_case("PLAIN") {
                self.pending = Some(String::new());
                return Step::Continue;
            }
            return Step::Mechanisms;
        };
        if param.len() > CHUNK {
            self.pending = None;
            return Step::TooLong;
        }
        if param != "+" {
            pending.push_str(param);
            if pending.len() > MAX_PAYLOAD_BYTES.div_ceil(3) * 4 {
                self.pending = None;
                return Step::TooLong;
            }
            if param.len() == CHUNK {
                return Step::More;
            }
        }
        let payload = self.pending.take().unwrap_or_default();
        match decode_base64(&payload).and_then(|bytes| plain(&bytes)) {
            Some(credentials) => Step::Verify(credentials),
            None => Step::Fail,
        }
    }
}

/// `authzid NUL authcid NUL password`, UTF-8, the authzid empty or the
/// authcid.
fn plain(payload: &[u8]) -> Option<Credentials> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || password.is_empty() {
        return None;
    }
    if !authzid.is_empty() && authzid != authcid {
        return None;
    }
    Some(Credentials {
        account: authcid.to_string(),
        password: password.to_string(),
    })
}

/// Standard base64 with padding (RFC 4648); `None` for anything else.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.chunks(4);
    let count = quads.len();
    for (i, quad) in quads.enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != count) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}
