//! The text of a measured chat line and the classification of what the
//! server sends back.
//!
//! A measured message's text is `~SENDER:SEQ:NANOS:` padded with `x` to the
//! payload size: the sending client's index, its sequence number and the send
//! time in nanoseconds on the load generator's clock. The server relays it as
//! `guestN: TEXT`, so any receiver can compute latency and check order
//! without shared state. The barrier probe is `~p:ROUND`.
//!
//! Everything works on bytes: the server's lines need not be valid UTF-8 for
//! the load generator to count them.

/// One measured message's identity, as carried in its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    /// Index of the sending client (0-based, senders come first).
    pub sender: u32,
    /// Per-sender sequence number, from 0.
    pub seq: u32,
    /// Send time, nanoseconds since the load generator's start; in rate mode
    /// the scheduled time.
    pub sent_ns: u64,
}

const PROBE: &[u8] = b"~p:";

/// Appends the text of `m`, padded with `x` to `payload` bytes (or longer
/// when the marker alone needs more), without a newline.
pub fn encode(out: &mut Vec<u8>, m: &Marker, payload: usize) {
    let start = out.len();
    out.push(b'~');
    push_num(out, m.sender as u64);
    out.push(b':');
    push_num(out, m.seq as u64);
    out.push(b':');
    push_num(out, m.sent_ns);
    out.push(b':');
    let used = out.len() - start;
    if payload > used {
        out.resize(start + payload, b'x');
    }
}

/// Reads a marker from chat text; `None` when the text is not one (another
/// person's chat line, a probe, or a mangled marker).
pub fn parse(text: &[u8]) -> Option<Marker> {
    let rest = text.strip_prefix(b"~")?;
    let (sender, rest) = parse_num(rest)?;
    let (seq, rest) = parse_num(rest)?;
    let (sent_ns, rest) = parse_num(rest)?;
    if !is_padding(rest) {
        return None;
    }
    Some(Marker {
        sender: u32::try_from(sender).ok()?,
        seq: u32::try_from(seq).ok()?,
        sent_ns,
    })
}

/// Appends the barrier probe text for `round`, without a newline.
pub fn encode_probe(out: &mut Vec<u8>, round: u32) {
    out.extend_from_slice(PROBE);
    push_num(out, round as u64);
}

/// The round of a barrier probe, or `None` when `text` is not a probe.
pub fn parse_probe(text: &[u8]) -> Option<u32> {
    let digits = text.strip_prefix(PROBE)?;
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + (d - b'0') as u32))
}

/// What one line from the server is, as far as the load generator cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerLine<'a> {
    /// `* welcome NICK`: the connection is accepted under NICK.
    Welcome(&'a [u8]),
    /// `* password required`.
    PasswordRequired,
    /// `* NICK joined ROOM`.
    Joined {
        /// Who joined.
        nick: &'a [u8],
        /// Where.
        room: &'a [u8],
    },
    /// `* NICK left ROOM...`.
    Left,
    /// `* server shutting down`.
    Shutdown,
    /// Any other `* ` line.
    Info,
    /// `! ...`: the server reports an error to this client.
    Error,
    /// `[pm] ...`.
    Private,
    /// `NICK: TEXT`.
    Chat {
        /// The sender's nick as the server names it.
        nick: &'a [u8],
        /// The chat text, verbatim.
        text: &'a [u8],
    },
    /// Anything else: not a protocol line.
    Unknown,
}

/// Classifies one line (without its `\n`).
pub fn classify(line: &[u8]) -> ServerLine<'_> {
    if let Some(info) = line.strip_prefix(b"* ") {
        if let Some(nick) = info.strip_prefix(b"welcome ") {
            return ServerLine::Welcome(nick);
        }
        if info == b"password required" {
            return ServerLine::PasswordRequired;
        }
        if info == b"server shutting down" {
            return ServerLine::Shutdown;
        }
        let mut words = info.splitn(3, |&b| b == b' ');
        let nick = words.next().unwrap_or_default();
        match (words.next(), words.next()) {
            (Some(b"joined"), Some(room)) => return ServerLine::Joined { nick, room },
            (Some(b"left"), Some(_)) => return ServerLine::Left,
            _ => return ServerLine::Info,
        }
    }
    if line.starts_with(b"! ") {
        return ServerLine::Error;
    }
    if line.starts_with(b"[pm] ") {
        return ServerLine::Private;
    }
    // Nicks hold no ':', so the first one ends the nick.
    match memchr::memchr(b':', line) {
        Some(i) if i > 0 && line.get(i + 1) == Some(&b' ') => ServerLine::Chat {
            nick: &line[..i],
            text: &line[i + 2..],
        },
        _ => ServerLine::Unknown,
    }
}

fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Whether `b` is all `x`, checked eight bytes at a time: this runs for
/// every delivery, in the load generator's hottest loop.
fn is_padding(b: &[u8]) -> bool {
    const XS: u64 = 0x7878_7878_7878_7878; // b"xxxxxxxx"
    let mut chunks = b.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if u64::from_le_bytes(word) != XS {
            return false;
        }
    }
    chunks.remainder().iter().all(|&c| c == b'x')
}

/// A decimal number ended by `:`, and what follows the `:`.
fn parse_num(b: &[u8]) -> Option<(u64, &[u8])> {
    // 19 digits always fit in a u64: only the 20th needs overflow checks.
    let mut n: u64 = 0;
    for (i, &c) in b.iter().enumerate().take(21) {
        if c == b':' {
            return (i > 0).then(|| (n, &b[i + 1..]));
        }
        let d = c.wrapping_sub(b'0');
        if d > 9 || i == 20 {
            return None;
        }
        n = if i < 19 {
            n * 10 + d as u64
        } else {
            n.checked_mul(10)?.checked_add(d as u64)?
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_and_pads() {
        let mut v = Vec::new();
        let m = Marker {
            sender: 3,
            seq: 17,
            sent_ns: 123_456,
        };
        encode(&mut v, &m, 20);
        assert_eq!(v, b"~3:17:123456:xxxxxxx");
        assert_eq!(parse(&v), Some(m));
        v.clear();
        encode(&mut v, &m, 1);
        assert_eq!(v, b"~3:17:123456:");
        assert_eq!(parse(&v), Some(m));
    }

    #[test]
    fn rejects_mangled() {
        for bad in [
            &b"~3:17:"[..],
            b"~3:17:12x:",
            b"~:1:2:",
            b"3:17:1:",
            b"~3:17:1:xxy",
            b"~3:17:1:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxy",
            b"~99999999999:1:1:",
            b"~1:1:99999999999999999999:",
            b"~1:1:18446744073709551616:",
            b"~1:1:123456789012345678901:",
            b"~p:3",
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn probes() {
        let mut v = Vec::new();
        encode_probe(&mut v, 42);
        assert_eq!(v, b"~p:42");
        assert_eq!(parse_probe(&v), Some(42));
        assert_eq!(parse_probe(b"~p:"), None);
        assert_eq!(parse_probe(b"~p:4x"), None);
        assert_eq!(parse_probe(b"~1:2:3:"), None);
    }

    #[test]
    fn classifies() {
        use ServerLine::*;
        assert_eq!(classify(b"* welcome guest7"), Welcome(b"guest7"));
        assert_eq!(classify(b"* password required"), PasswordRequired);
        assert_eq!(
            classify(b"* guest7 joined #lobby"),
            Joined {
                nick: b"guest7",
                room: b"#lobby"
            }
        );
        assert_eq!(classify(b"* guest7 left #lobby (too slow)"), Left);
        assert_eq!(classify(b"* server shutting down"), Shutdown);
        assert_eq!(classify(b"* pong"), Info);
        assert_eq!(classify(b"! server full"), Error);
        assert_eq!(classify(b"[pm] bob: hi"), Private);
        assert_eq!(
            classify(b"guest2: ~1:2:3:xx"),
            Chat {
                nick: b"guest2",
                text: b"~1:2:3:xx"
            }
        );
        assert_eq!(
            classify(b"guest2: a: b"),
            Chat {
                nick: b"guest2",
                text: b"a: b"
            }
        );
        assert_eq!(classify(b"no separator"), Unknown);
        assert_eq!(classify(b"a:b: c"), Unknown);
    }

    proptest! {
        #[test]
        fn roundtrip(sender: u32, seq: u32, sent_ns: u64, payload in 0usize..200) {
            let m = Marker { sender, seq, sent_ns };
            let mut v = b"prefix".to_vec();
            encode(&mut v, &m, payload);
            let text = &v[6..];
            prop_assert!(text.len() >= payload);
            prop_assert_eq!(parse(text), Some(m));
            let line = [b"guest1: ".as_slice(), text].concat();
            prop_assert_eq!(classify(&line), ServerLine::Chat { nick: b"guest1", text });
        }
    }
}
