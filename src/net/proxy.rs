//! HAProxy's PROXY protocol, versions 1 (text) and 2 (binary), as a pure
//! parser over bytes: a proxy in front of the server sends one header at the
//! start of each connection, naming the client's real address.
//!
//! [`parse`] looks at the bytes received so far and says whether the header
//! is [`Parse::Incomplete`] (wait for more), [`Parse::Done`] (the real
//! source address, if the header names one, and how many bytes the header
//! took) or [`Parse::Error`]. It never reads a socket, so a header split
//! across reads is simply parsed again when more bytes came, and a fuzzer
//! can call it on anything. [`Cidr`] is the `--trusted-proxy` address
//! range: only peers inside one may send a header.
//!
//! Spec: <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// The twelve bytes every version 2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest version 1 header, `\r\n` included (spec section 2.1).
pub const V1_MAX_BYTES: usize = 107;

/// The longest version 2 header: 16 fixed bytes and a 16-bit length.
pub const V2_MAX_BYTES: usize = 16 + u16::MAX as usize;

/// What the bytes received so far hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// A valid beginning of a header: wait for more bytes.
    Incomplete,
    /// A whole header.
    Done {
        /// The client's address, or `None` when the header names none (v1
        /// `UNKNOWN`, v2 `LOCAL` such as a proxy's health check, or a
        /// non-IP family): then the connection's own peer address counts.
        source: Option<SocketAddr>,
        /// Bytes the header took; what follows is the client's own data.
        consumed: usize,
    },
    /// Not a PROXY header, or a malformed one: close the connection.
    Error(&'static str),
}

/// Parses the PROXY header at the start of `input` (v1 or v2, told apart by
/// the first byte).
pub fn parse(input: &[u8]) -> Parse {
    match input.first() {
        None => Parse::Incomplete,
        Some(b'P') => parse_v1(input),
        Some(b'\r') => parse_v2(input),
        Some(_) => Parse::Error("no PROXY header"),
    }
}

/// Whether `input` starts with what a PROXY header starts with: how a
/// connection from an untrusted peer that sends one is recognised.
pub fn starts_with_header(input: &[u8]) -> bool {
    input.starts_with(b"PROXY ") || input.starts_with(&V2_SIGNATURE)
}

fn parse_v1(input: &[u8]) -> Parse {
    const PREFIX: &[u8] = b"PROXY ";
    let seen = input.len().min(PREFIX.len());
    if input[..seen] != PREFIX[..seen] {
        return Parse::Error("no PROXY header");
    }
    let window = &input[..input.len().min(V1_MAX_BYTES)];
    let Some(end) = window.windows(2).position(|pair| pair == b"\r\n") else {
        return if input.len() >= V1_MAX_BYTES {
            Parse::Error("PROXY v1 header longer than 107 bytes")
        } else {
            Parse::Incomplete
        };
    };
    let Ok(line) = std::str::from_utf8(&input[PREFIX.len()..end]) else {
        return Parse::Error("PROXY v1 header is not text");
    };
    let consumed = end + 2;
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.as_slice() {
        ["UNKNOWN", ..] => Parse::Done {
            source: None,
            consumed,
        },
        [family @ ("TCP4" | "TCP6"), source, destination, source_port, destination_port] => {
            let v4 = *family == "TCP4";
            let (Some(ip), Some(_), Some(port), Some(_)) = (
                v1_ip(source, v4),
                v1_ip(destination, v4),
                v1_port(source_port),
                v1_port(destination_port),
            ) else {
                return Parse::Error("PROXY v1 header with a bad address or port");
            };
            Parse::Done {
                source: Some(SocketAddr::new(ip, port)),
                consumed,
            }
        }
        _ => Parse::Error("PROXY v1 header is not TCP4, TCP6 or UNKNOWN with four fields"),
    }
}

fn v1_ip(text: &str, v4: bool) -> Option<IpAddr> {
    if v4 {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    } else {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    }
}

/// A decimal port without a sign or leading zeros (spec section 2.1).
fn v1_port(text: &str) -> Option<u16> {
    let digits = text.bytes().all(|b| b.is_ascii_digit());
    if !digits || text.is_empty() || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

fn parse_v2(input: &[u8]) -> Parse {
    let seen = input.len().min(V2_SIGNATURE.len());
    if input[..seen] != V2_SIGNATURE[..seen] {
        return Parse::Error("no PROXY header");
    }
    if input.len() < 16 {
        return Parse::Incomplete;
    }
    let version_command = input[12];
    if version_command >> 4 != 2 {
        return Parse::Error("PROXY v2 header with an unknown version");
    }
    let local = match version_command & 0x0f {
        0 => true,
        1 => false,
        _ => return Parse::Error("PROXY v2 header with an unknown command"),
    };
    let family = input[13];
    let length = usize::from(u16::from_be_bytes([input[14], input[15]]));
    let consumed = 16 + length;
    if input.len() < consumed {
        return Parse::Incomplete;
    }
    let block = &input[16..consumed];
    if local {
        // The proxy speaking for itself (a health check): addresses ignored.
        return Parse::Done {
            source: None,
            consumed,
        };
    }
    let source = match family {
        // UNSPEC: the proxy does not know the address.
        0x00 => None,
        // TCP over IPv4: source, destination, source port, destination port.
        0x11 => {
            if block.len() < 12 {
                return Parse::Error("PROXY v2 IPv4 address block too short");
            }
            let ip: [u8; 4] = block[..4].try_into().expect("4 bytes");
            let port = u16::from_be_bytes([block[8], block[9]]);
            Some(SocketAddr::new(IpAddr::from(ip), port))
        }
        // TCP over IPv6.
        0x21 => {
            if block.len() < 36 {
                return Parse::Error("PROXY v2 IPv6 address block too short");
            }
            let ip: [u8; 16] = block[..16].try_into().expect("16 bytes");
            let port = u16::from_be_bytes([block[32], block[33]]);
            Some(SocketAddr::new(IpAddr::from(ip), port))
        }
        // A unix socket behind the proxy: no IP to count.
        0x31 => None,
        _ => return Parse::Error("PROXY v2 header for a protocol other than TCP"),
    };
    Parse::Done { source, consumed }
}

/// An address range, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a
/// range of one. `--trusted-proxy` takes these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this range. An IPv4-mapped IPv6 peer (a
    /// dual-stack listener) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Whether any range in `ranges` contains `ip`.
pub fn trusted(ranges: &[Cidr], ip: IpAddr) -> bool {
    ranges.iter().any(|range| range.contains(ip))
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an address range like 10.0.0.0/8"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut header = V2_SIGNATURE.to_vec();
        header.push(0x20 | command);
        header.push(family);
        header.extend_from_slice(&(block.len() as u16).to_be_bytes());
        header.extend_from_slice(block);
        header
    }

    fn addr(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn v1_tcp4_and_tcp6_give_the_source_and_leave_the_rest() {
        let input = b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 7878\r\nhello\n";
        assert_eq!(
            parse(input),
            Parse::Done {
                source: addr("192.0.2.7:56324"),
                consumed: input.len() - 6
            }
        );
        let input = b"PROXY TCP6 2001:db8::1 ::1 4000 7878\r\n";
        assert_eq!(
            parse(input),
            Parse::Done {
                source: addr("[2001:db8::1]:4000"),
                consumed: input.len()
            }
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN whatever\r\n"),
            Parse::Done {
                source: None,
                consumed: 24
            }
        );
    }

    #[test]
    fn every_split_of_a_header_is_incomplete_until_the_end() {
        let mut block = vec![192, 0, 2, 9, 127, 0, 0, 1];
        block.extend_from_slice(&4242u16.to_be_bytes());
        block.extend_from_slice(&7878u16.to_be_bytes());
        block.extend_from_slice(&[0x04, 0, 1, 0]); // a NOOP TLV, skipped
        for header in [
            b"PROXY TCP4 192.0.2.9 127.0.0.1 4242 7878\r\n".to_vec(),
            v2(1, 0x11, &block),
        ] {
            for cut in 0..header.len() {
                assert_eq!(parse(&header[..cut]), Parse::Incomplete, "cut at {cut}");
            }
            assert_eq!(
                parse(&header),
                Parse::Done {
                    source: addr("192.0.2.9:4242"),
                    consumed: header.len()
                }
            );
        }
    }

    #[test]
    fn v2_ipv6_local_unspec_and_unix() {
        let mut block = [0u8; 36].to_vec();
        block[..16].copy_from_slice(&"2001:db8::5".parse::<Ipv6Addr>().unwrap().octets());
        block[32..34].copy_from_slice(&999u16.to_be_bytes());
        let header = v2(1, 0x21, &block);
        assert_eq!(
            parse(&header),
            Parse::Done {
                source: addr("[2001:db8::5]:999"),
                consumed: header.len()
            }
        );
        for header in [
            v2(0, 0x11, &[1; 12]),
            v2(1, 0x00, &[]),
            v2(1, 0x31, &[0; 216]),
        ] {
            assert_eq!(
                parse(&header),
                Parse::Done {
                    source: None,
                    consumed: header.len()
                }
            );
        }
    }

    #[test]
    fn malformed_headers_are_errors() {
        let too_long = format!("PROXY TCP4 {}\r\n", "1".repeat(120));
        let bad: [&[u8]; 10] = [
            b"GET / HTTP/1.1\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 1 2 3\r\n",
            b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 65536 2\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 080 2\r\n",
            b"PROXY UDP4 192.0.2.1 10.0.0.1 1 2\r\n",
            b"PROXY  TCP4 192.0.2.1 10.0.0.1 1 2\r\n",
            b"PROXX TCP4",
            b"\r\n\r\n\0\r\nQUIX\n!\x11\0\x0c",
            too_long.as_bytes(),
        ];
        for input in bad {
            assert!(
                matches!(parse(input), Parse::Error(_)),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert!(matches!(parse(&v2(1, 0x11, &[0; 11])), Parse::Error(_)));
        assert!(matches!(parse(&v2(1, 0x12, &[0; 12])), Parse::Error(_)));
        assert!(matches!(parse(&v2(2, 0x11, &[0; 12])), Parse::Error(_)));
        let mut version_one = v2(1, 0x11, &[0; 12]);
        version_one[12] = 0x11;
        assert!(matches!(parse(&version_one), Parse::Error(_)));
    }

    #[test]
    fn cidr_ranges_parse_and_contain() {
        let range: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(range.contains("10.1.200.3".parse().unwrap()));
        assert!(range.contains("::ffff:10.1.0.1".parse().unwrap()));
        assert!(!range.contains("10.2.0.1".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1/128");
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("127.0.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("ten/8".parse::<Cidr>().is_err());
    }
}
