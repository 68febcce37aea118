//! The check of the messages servers of a cluster pass each other through
//! Redis (docs/cluster.md): membership changes on the presence channel,
//! members' values in their server's hash, a room's shared state,
//! account changes, and the batches of room lines the Lua script
//! publishes. Whatever Redis hands a server, it decodes without
//! panicking, and what it decodes it would publish the same way.

use crate::chat::RoomState;
use crate::cluster::script::decode_batch;
use crate::server::cluster_accounts::{decode_write, encode_write};
use crate::server::cluster_presence::{decode_change, encode_change, member_value, read_member};

/// The first byte picks what the rest is read as (its value modulo 5):
/// a presence change, a member's value, a room's state, an account
/// change, a batch of room lines. Each decodes without panicking, and one
/// that decodes, encoded again, decodes to the same value; a batch's
/// first id is at least 1 and its last does not overflow.
pub fn check_cluster_messages(data: &[u8]) {
    let Some((&kind, msg)) = data.split_first() else {
        return;
    };
    match kind % 5 {
        0 => {
            if let Some(change) = decode_change(msg) {
                assert_eq!(decode_change(&encode_change(&change)), Some(change));
            }
        }
        1 => {
            if let Some((nick, rooms)) = read_member(msg) {
                assert!(!nick.is_empty() && !nick.contains(' '));
                let value = member_value(&nick, &rooms);
                assert_eq!(read_member(&value), Some((nick, rooms)));
            }
        }
        2 => {
            let Ok(text) = std::str::from_utf8(msg) else {
                return;
            };
            if let Some(state) = RoomState::decode(text) {
                assert!(state
                    .bans
                    .iter()
                    .all(|nick| crate::protocol::is_valid_name(nick)));
                assert_eq!(RoomState::decode(&state.encode()), Some(state));
            }
        }
        3 => {
            if let Some(write) = decode_write(msg) {
                assert_eq!(decode_write(&encode_write(&write)), Some(write));
            }
        }
        _ => {
            if let Some(batch) = decode_batch(msg) {
                assert!(batch.first >= 1);
                assert!(batch.first.checked_add(batch.lines.len() as u64).is_some());
                // As `loopchat_publish` writes it: `FIRST COUNT ROOMLEN\n`,
                // the room, then each line as `LEN\n` and its bytes.
                let mut again = format!(
                    "{} {} {}\n",
                    batch.first,
                    batch.lines.len(),
                    batch.room.len()
                )
                .into_bytes();
                again.extend_from_slice(batch.room);
                for line in &batch.lines {
                    again.extend_from_slice(format!("{}\n", line.len()).as_bytes());
                    again.extend_from_slice(line);
                }
                assert_eq!(decode_batch(&again), Some(batch));
            }
        }
    }
}
