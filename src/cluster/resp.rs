//! RESP2, the Redis wire format: commands encoded by hand (an array of bulk
//! strings, all a client ever sends), replies decoded by the
//! `redis-protocol` crate into our own [`Reply`].
//!
//! [`decode`] is a pure function from bytes to one reply and the bytes it
//! used (or "not yet", or an error): it holds no state and does no I/O, so
//! it can be unit-tested on captured bytes and fuzzed as it is.

use redis_protocol::resp2::decode::decode as decode_frame;
use redis_protocol::resp2::types::OwnedFrame;
use std::fmt;

/// One reply from Redis, as this client uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`, `+PONG`, ...
    Simple(Vec<u8>),
    /// `-ERR ...`: the command failed; the connection is fine.
    Error(String),
    /// `:42`
    Int(i64),
    /// `$n` bytes.
    Bulk(Vec<u8>),
    /// `*n` replies.
    Array(Vec<Reply>),
    /// `$-1` or `*-1`.
    Nil,
}

impl Reply {
    /// The integer of an `Int` reply, or of a bulk string holding one (what
    /// `GET` of a counter returns).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            Reply::Bulk(bytes) | Reply::Simple(bytes) => {
                std::str::from_utf8(bytes).ok()?.parse().ok()
            }
            _ => None,
        }
    }

    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(bytes) | Reply::Simple(bytes) => Some(bytes),
            _ => None,
        }
    }
}

impl From<OwnedFrame> for Reply {
    fn from(frame: OwnedFrame) -> Self {
        match frame {
            OwnedFrame::SimpleString(bytes) => Reply::Simple(bytes),
            OwnedFrame::Error(text) => Reply::Error(text),
            OwnedFrame::Integer(n) => Reply::Int(n),
            OwnedFrame::BulkString(bytes) => Reply::Bulk(bytes),
            OwnedFrame::Array(items) => Reply::Array(items.into_iter().map(Reply::from).collect()),
            OwnedFrame::Null => Reply::Nil,
        }
    }
}

/// Bytes that are not RESP2: the connection cannot be trusted any more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a Redis reply: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Decodes the first reply in `buf`: `Ok(Some((reply, used)))` when a whole
/// reply is there, `Ok(None)` when more bytes are needed, an error when the
/// bytes are not RESP2. Pure: no state, no I/O, never panics (fuzzable).
pub fn decode(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    match decode_frame(buf) {
        Ok(Some((frame, used))) => Ok(Some((Reply::from(frame), used))),
        Ok(None) => Ok(None),
        Err(err) => Err(ProtocolError(err.details().to_string())),
    }
}

/// Appends one command (an array of bulk strings) to `out`.
pub fn encode<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    array_header(out, args.len());
    for arg in args {
        bulk(out, arg.as_ref());
    }
}

/// Appends `*n\r\n`: the start of a command of `n` arguments, each then
/// appended with [`bulk`] (for commands whose arguments are not in one
/// slice, such as a batch of lines).
pub fn array_header(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    push_decimal(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends one argument as a bulk string.
pub fn bulk(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'$');
    push_decimal(out, arg.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// Appends a number as a bulk string argument.
pub fn bulk_u64(out: &mut Vec<u8>, n: u64) {
    let mut digits = Vec::with_capacity(20);
    push_decimal(&mut digits, n);
    bulk(out, &digits);
}

/// Appends `n` in decimal, without allocating.
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&mut out, &["SET", "k", "v"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
        out.clear();
        array_header(&mut out, 2);
        bulk(&mut out, b"");
        bulk_u64(&mut out, 1234567890);
        assert_eq!(out, b"*2\r\n$0\r\n\r\n$10\r\n1234567890\r\n");
    }

    #[test]
    fn captured_replies_decode() {
        // Bytes as redis-server 7.0 sent them.
        let cases: &[(&[u8], Reply)] = &[
            (b"+OK\r\n", Reply::Simple(b"OK".to_vec())),
            (b":1017\r\n", Reply::Int(1017)),
            (b"$-1\r\n", Reply::Nil),
            (b"$5\r\nhello\r\n", Reply::Bulk(b"hello".to_vec())),
            (
                b"-ERR unknown command 'FOO', with args beginning with: \r\n",
                Reply::Error("ERR unknown command 'FOO', with args beginning with: ".into()),
            ),
            (
                b"*3\r\n$7\r\nmessage\r\n$14\r\nloopchat:rooms\r\n$3\r\nabc\r\n",
                Reply::Array(vec![
                    Reply::Bulk(b"message".to_vec()),
                    Reply::Bulk(b"loopchat:rooms".to_vec()),
                    Reply::Bulk(b"abc".to_vec()),
                ]),
            ),
            // XRANGE: entries of [id, [field, value]].
            (
                b"*1\r\n*2\r\n$3\r\n7-1\r\n*2\r\n$1\r\nl\r\n$2\r\nhi\r\n",
                Reply::Array(vec![Reply::Array(vec![
                    Reply::Bulk(b"7-1".to_vec()),
                    Reply::Array(vec![
                        Reply::Bulk(b"l".to_vec()),
                        Reply::Bulk(b"hi".to_vec()),
                    ]),
                ])]),
            ),
        ];
        for (bytes, want) in cases {
            let (got, used) = decode(bytes).unwrap().unwrap();
            assert_eq!(&got, want, "{}", String::from_utf8_lossy(bytes));
            assert_eq!(used, bytes.len());
        }
    }

    #[test]
    fn partial_replies_wait_and_pipelined_replies_come_one_by_one() {
        let stream = b"+OK\r\n:5\r\n$5\r\nhello\r\n";
        for cut in 0..6 {
            assert_eq!(
                decode(&stream[..cut]).unwrap().map(|(_, n)| n),
                None.or((cut == 5).then_some(5))
            );
        }
        let mut at = 0;
        let mut got = Vec::new();
        while let Some((reply, used)) = decode(&stream[at..]).unwrap() {
            got.push(reply);
            at += used;
        }
        assert_eq!(at, stream.len());
        assert_eq!(
            got,
            vec![
                Reply::Simple(b"OK".to_vec()),
                Reply::Int(5),
                Reply::Bulk(b"hello".to_vec())
            ]
        );
        assert_eq!(decode(b"$5\r\nhel").unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"$abc\r\n",
            b"*-7\r\n",
            b"?\r\n",
        ] {
            let _ = decode(bytes); // must not panic
        }
        assert!(decode(b"HTTP/1.1 400 Bad Request\r\n").is_err());
    }

    #[test]
    fn integers_read_from_ints_and_bulk_counters() {
        assert_eq!(Reply::Int(3).as_int(), Some(3));
        assert_eq!(Reply::Bulk(b"42".to_vec()).as_int(), Some(42));
        assert_eq!(Reply::Nil.as_int(), None);
    }
}
