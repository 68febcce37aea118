//! What runs inside Redis, and the bytes it sends back.
//!
//! One Redis function library ([`LIBRARY`], loaded with `FUNCTION LOAD
//! REPLACE` at the start of every command connection, before anything else
//! in the same pipeline, so no round trip is spent waiting for it):
//!
//! - `loopchat_publish(seq, log; channel, cap, room, line...)`: numbers a
//!   batch of a room's lines with one `INCRBY` (the room's ids), appends
//!   each to the room's capped stream as entry `ID-1` (so `XRANGE log A B`
//!   is ids `A..=B`), publishes the whole batch as one message, and
//!   returns the first id. Atomic: every server sees the batch whole or
//!   not at all, in the room's order.
//! - `loopchat_hold(nick...; owner, ttl_ms)`: pushes the expiry of each
//!   nick the owner still holds (or holds again one that expired and no
//!   one took, after Redis was paused or restarted); returns the indices
//!   (1-based) of the ones another owner holds now.
//! - `loopchat_pm(nick; inboxes, line)`: publishes `line` on the channel
//!   of the server holding the nick (`inboxes` + its owner token);
//!   returns the number of receivers (0: no one holds it, or its server
//!   is not subscribed).
//! - `loopchat_release(nick; owner)`: deletes the nick only if the owner
//!   holds it (compare-and-delete).
//! - `loopchat_presence(members; channel, msg, field, value...)`: sets
//!   (or, for an empty value, deletes) fields of a server's membership
//!   hash and publishes `msg` on the presence channel, atomically;
//!   `loopchat_sync` is the same after deleting the whole hash (a server
//!   republishing its whole membership).
//! - `loopchat_alive(nodes; node, ttl_ms, members_prefix, inbox)`:
//!   pushes the server's expiry (Redis's clock) in the `nodes` hash, drops
//!   the servers whose expiry passed (with their membership hashes), and
//!   publishes on the asking server's inbox whether it was there and the
//!   servers alive (`#N1` or `#N0`, then one node a line).
//! - `loopchat_members(nodes, rooms, accounts, keys; members_prefix,
//!   inbox)`: publishes on the asking server's inbox every server with its
//!   membership (`#M`, then `=NODE` lines each followed by its members'
//!   values), every room's shared state (`%KEY STATE` lines) and every
//!   account and account's keys (lines starting `A` and 0x1f): the snapshot
//!   read after a (re)connect. Both answers come on the subscription, so
//!   they are in order with the presence channel's messages.
//! - `loopchat_leave(nodes; node, members_prefix, channel, msg)`: a
//!   server stopping takes itself out and says so.
//!
//! The published message ([`decode_batch`], a pure function):
//! `FIRST COUNT ROOMLEN\nROOM` then, per line, `LEN\nLINE`.

/// The function library, Redis 7's `FUNCTION LOAD` format.
pub const LIBRARY: &str = r#"#!lua name=loopchat_v1
redis.register_function('loopchat_publish', function(keys, args)
  local n = #args - 3
  local room = args[3]
  local last = redis.call('INCRBY', keys[1], n)
  local first = last - n + 1
  local parts = {first .. ' ' .. n .. ' ' .. #room .. '\n' .. room}
  for i = 1, n do
    local line = args[i + 3]
    redis.call('XADD', keys[2], 'MAXLEN', '~', args[2], (first + i - 1) .. '-1', 'l', line)
    parts[i + 1] = #line .. '\n' .. line
  end
  redis.call('PUBLISH', args[1], table.concat(parts))
  return first
end)
redis.register_function('loopchat_hold', function(keys, args)
  local lost = {}
  for i, key in ipairs(keys) do
    local owner = redis.call('GET', key)
    if owner == args[1] or owner == false then
      redis.call('SET', key, args[1], 'PX', args[2])
    else
      lost[#lost + 1] = i
    end
  end
  return lost
end)
redis.register_function('loopchat_pm', function(keys, args)
  local owner = redis.call('GET', keys[1])
  if not owner then
    return 0
  end
  return redis.call('PUBLISH', args[1] .. owner, args[2])
end)
redis.register_function('loopchat_presence', function(keys, args)
  for i = 3, #args - 1, 2 do
    if args[i + 1] == '' then
      redis.call('HDEL', keys[1], args[i])
    else
      redis.call('HSET', keys[1], args[i], args[i + 1])
    end
  end
  redis.call('PUBLISH', args[1], args[2])
  return 1
end)
redis.register_function('loopchat_sync', function(keys, args)
  redis.call('DEL', keys[1])
  for i = 3, #args - 1, 2 do
    redis.call('HSET', keys[1], args[i], args[i + 1])
  end
  redis.call('PUBLISH', args[1], args[2])
  return 1
end)
redis.register_function('loopchat_alive', function(keys, args)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local present = redis.call('HEXISTS', keys[1], args[1])
  redis.call('HSET', keys[1], args[1], now + tonumber(args[2]))
  local all = redis.call('HGETALL', keys[1])
  local parts = {'#N' .. present}
  for i = 1, #all, 2 do
    if tonumber(all[i + 1]) < now then
      redis.call('HDEL', keys[1], all[i])
      redis.call('DEL', args[3] .. all[i])
    else
      parts[#parts + 1] = all[i]
    end
  end
  return redis.call('PUBLISH', args[4], table.concat(parts, '\n'))
end)
redis.register_function('loopchat_members', function(keys, args)
  local parts = {'#M'}
  for _, node in ipairs(redis.call('HKEYS', keys[1])) do
    parts[#parts + 1] = '=' .. node
    for _, value in ipairs(redis.call('HVALS', args[1] .. node)) do
      parts[#parts + 1] = value
    end
  end
  local rooms = redis.call('HGETALL', keys[2])
  for i = 1, #rooms, 2 do
    parts[#parts + 1] = '%' .. rooms[i] .. ' ' .. rooms[i + 1]
  end
  for k = 3, 4 do
    for _, value in ipairs(redis.call('HVALS', keys[k])) do
      parts[#parts + 1] = value
    end
  end
  return redis.call('PUBLISH', args[2], table.concat(parts, '\n'))
end)
redis.register_function('loopchat_leave', function(keys, args)
  redis.call('HDEL', keys[1], args[1])
  redis.call('DEL', args[2] .. args[1])
  redis.call('PUBLISH', args[3], args[4])
  return 1
end)
redis.register_function('loopchat_release', function(keys, args)
  if redis.call('GET', keys[1]) == args[1] then
    return redis.call('DEL', keys[1])
  end
  return 0
end)
"#;

/// One published batch: a room's lines numbered `first..first + len`.
#[derive(Debug, PartialEq, Eq)]
pub struct Batch<'a> {
    /// The room, as the publisher named it.
    pub room: &'a [u8],
    /// The id of the first line.
    pub first: u64,
    /// The lines, in id order.
    pub lines: Vec<&'a [u8]>,
}

/// Reads a published batch; `None` when the message is not one (a
/// message from another program on the channel, or a truncated one).
/// Pure, never panics (fuzzable).
pub fn decode_batch(msg: &[u8]) -> Option<Batch<'_>> {
    let (head, rest) = split_line(msg)?;
    let mut fields = head.split(|&b| b == b' ');
    let first = parse_u64(fields.next()?)?;
    let count = usize::try_from(parse_u64(fields.next()?)?).ok()?;
    let room_len = usize::try_from(parse_u64(fields.next()?)?).ok()?;
    if fields.next().is_some() || first == 0 || rest.len() < room_len {
        return None;
    }
    let (room, mut rest) = rest.split_at(room_len);
    // Each line takes at least two bytes ("0\n"): a count larger than that
    // is a lie, not a reason to reserve memory.
    let mut lines = Vec::with_capacity(count.min(rest.len() / 2));
    for _ in 0..count {
        let (len, after) = split_line(rest)?;
        let len = usize::try_from(parse_u64(len)?).ok()?;
        if after.len() < len {
            return None;
        }
        let (line, after) = after.split_at(len);
        lines.push(line);
        rest = after;
    }
    first.checked_add(count as u64)?;
    rest.is_empty().then_some(Batch { room, first, lines })
}

/// The room's id of an `XRANGE` entry id (`ID-1`).
pub fn entry_id(id: &[u8]) -> Option<u64> {
    let (seq, _) = id.split_at(id.iter().position(|&b| b == b'-')?);
    parse_u64(seq)
}

fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = memchr::memchr(b'\n', bytes)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_decode_with_lines_containing_anything() {
        let msg = b"41 3 5\n#rust5\nhello0\n4\na\nb\n";
        let batch = decode_batch(msg).unwrap();
        assert_eq!(batch.room, b"#rust");
        assert_eq!(batch.first, 41);
        assert_eq!(batch.lines, vec![&b"hello"[..], b"", b"a\nb\n"]);
    }

    #[test]
    fn truncated_or_foreign_messages_are_not_batches() {
        let msg = b"41 2 5\n#rust5\nhello2\nhi";
        for cut in 0..msg.len() {
            assert_eq!(decode_batch(&msg[..cut]), None, "cut at {cut}");
        }
        assert!(decode_batch(msg).is_some());
        for bad in [
            &b"hello"[..],
            b"0 1 1\nx1\ny",
            b"1 1 1\nx1\nyz",
            b"1 99999999999999 1\nx",
            b"18446744073709551615 2 1\nx1\na1\nb",
            b"-1 1 1\nx1\ny",
        ] {
            assert_eq!(decode_batch(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn entry_ids_are_room_ids() {
        assert_eq!(entry_id(b"17-1"), Some(17));
        assert_eq!(entry_id(b"17"), None);
        assert_eq!(entry_id(b"x-1"), None);
    }
}
