//! The check of the Redis reply decoder (`cluster::resp`): what a cluster
//! node reads from Redis, through the `redis-protocol` crate.

use super::Split;
use crate::cluster::resp::{self, Reply};

/// The input as [`Split`] (reads of a stream from Redis):
///
/// - decoded as the node does (bytes appended to a buffer, then every
///   whole reply taken off the front), read by read, it gives the same
///   replies and the same error (or none) as the stream in one piece; a
///   decoded reply uses at least one byte and no more than the buffer
///   holds, and decoding exactly those bytes gives the same reply;
/// - the stream's lines (at most 16) as a command (`resp::encode`) decode
///   back to an array of those bulk strings, using every byte; a number
///   as a bulk argument (`bulk_u64`) decodes to its digits.
pub fn check_resp(data: &[u8]) {
    let split = Split::new(data);
    let whole = replies(&[split.stream]);
    let pieces = replies(&split.chunks);
    assert_eq!(pieces, whole, "{split:?}");

    let args: Vec<&[u8]> = split.stream.split(|&b| b == b'\n').take(16).collect();
    let mut out = Vec::new();
    resp::encode(&mut out, &args);
    let expected = Reply::Array(args.iter().map(|arg| Reply::Bulk(arg.to_vec())).collect());
    assert_eq!(resp::decode(&out), Ok(Some((expected, out.len()))));
    let n = u64::from_le_bytes(std::array::from_fn(|i| data.get(i).copied().unwrap_or(0)));
    out.clear();
    resp::bulk_u64(&mut out, n);
    let digits = n.to_string().into_bytes();
    assert_eq!(
        resp::decode(&out),
        Ok(Some((Reply::Bulk(digits), out.len())))
    );
}

/// The replies in `reads`, decoded as they arrive, and whether the stream
/// ended in an error.
fn replies(reads: &[&[u8]]) -> (Vec<Reply>, bool) {
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            match resp::decode(&buf) {
                Ok(Some((reply, used))) => {
                    assert!(
                        used > 0 && used <= buf.len(),
                        "used {used} of {}",
                        buf.len()
                    );
                    assert_eq!(resp::decode(&buf[..used]), Ok(Some((reply.clone(), used))));
                    seen.push(reply);
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(_) => return (seen, true),
            }
        }
    }
    (seen, false)
}
