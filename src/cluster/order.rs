//! One room's order: lines come in by id (from the subscription, from a
//! fill out of the room's stream, in any order and possibly twice) and go
//! out in id order, each once; a gap asks for a fill, and a gap the
//! stream no longer holds is reported as lost, never skipped silently.
//!
//! Plain data, no I/O: the engine feeds it and acts on what it returns.

use std::collections::BTreeMap;

/// What a room's order asks of the engine after taking lines in.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing: every line it holds has gone out, or a fill is on its way.
    Wait,
    /// Read ids `from..=to` from the room's stream.
    Fill {
        /// The first missing id.
        from: u64,
        /// The last missing id.
        to: u64,
    },
}

/// Where one room stands on this server.
#[derive(Debug, Default)]
pub struct RoomOrder {
    /// The next id to deliver; `None` until the first line is seen (a
    /// server owes nothing of a room before it heard of it).
    expected: Option<u64>,
    /// Lines that came in ahead of a gap, by id.
    held: BTreeMap<u64, Vec<u8>>,
    /// A fill is on its way: no second one is asked for meanwhile.
    filling: bool,
    /// `expected` came from the room's sequence read when a member
    /// arrived here ([`RoomOrder::start_at`]), not from a line: the
    /// first line to come may be one that Redis numbered before that
    /// read answered and published after it (a line racing the join); it
    /// is delivered, not taken for one delivered already.
    tentative: bool,
}

impl RoomOrder {
    /// The next id this server will deliver, once it has seen the room.
    pub fn expected(&self) -> Option<u64> {
        self.expected
    }

    /// Starts following the room at `id`, unless it is followed already.
    pub fn start_at(&mut self, id: u64) {
        if self.expected.is_none() {
            self.expected = Some(id);
            self.tentative = true;
        }
    }

    /// Lines held behind a gap.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Takes in line `id`; every line now in order goes to `deliver`.
    pub fn arrive(&mut self, id: u64, line: &[u8], deliver: &mut impl FnMut(u64, &[u8])) -> Next {
        if std::mem::take(&mut self.tentative) && self.held.is_empty() && !self.filling {
            // Every line is published in id order on the one channel this
            // server follows from its start: a first line below the
            // position read was not seen here, and the ones after it come.
            if self.expected.is_some_and(|expected| id < expected) {
                self.expected = Some(id);
            }
        }
        let expected = *self.expected.get_or_insert(id);
        if id < expected {
            return self.next(); // delivered already
        }
        if id == expected && self.held.is_empty() {
            // The common case: in order, nothing held.
            deliver(id, line);
            self.expected = Some(id + 1);
            return Next::Wait;
        }
        self.held.entry(id).or_insert_with(|| line.to_vec());
        self.drain(deliver);
        self.next()
    }

    /// The room's sequence stood at `last` in Redis (its last id): if
    /// this server has not delivered up to it, the rest is asked for.
    pub fn position(&mut self, last: u64) -> Next {
        match self.expected {
            Some(expected) if last >= expected && !self.filling => {
                self.filling = true;
                self.tentative = false;
                Next::Fill {
                    from: expected,
                    to: last,
                }
            }
            _ => Next::Wait,
        }
    }

    /// A fill of `from..=to` came back with `entries` (id, line), the ones
    /// the stream still holds. Lines go to `deliver` in order; the range
    /// of ids the stream no longer had goes to `lost` (the members of the
    /// room missed them: the caller disconnects them).
    pub fn filled(
        &mut self,
        to: u64,
        entries: Vec<(u64, Vec<u8>)>,
        deliver: &mut impl FnMut(u64, &[u8]),
        lost: &mut impl FnMut(u64, u64),
    ) -> Next {
        self.filling = false;
        let Some(mut expected) = self.expected else {
            return Next::Wait;
        };
        for (id, line) in entries {
            if id >= expected {
                self.held.entry(id).or_insert(line);
            }
        }
        self.drain(deliver);
        expected = self.expected.unwrap_or(expected);
        // Whatever is still missing up to `to` is gone from the stream.
        let last_missing = match self.held.keys().next() {
            Some(&first_held) => (first_held - 1).min(to),
            None => to,
        };
        if expected <= last_missing {
            lost(expected, last_missing);
            self.expected = Some(last_missing + 1);
            self.drain(deliver);
        }
        self.next()
    }

    /// The fill on its way will not come (the connection dropped): the
    /// next position check asks again.
    pub fn fill_failed(&mut self) {
        self.filling = false;
    }

    fn drain(&mut self, deliver: &mut impl FnMut(u64, &[u8])) {
        let Some(mut expected) = self.expected else {
            return;
        };
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() < expected {
                entry.remove();
            } else if *entry.key() == expected {
                deliver(expected, &entry.remove());
                expected += 1;
            } else {
                break;
            }
        }
        self.expected = Some(expected);
    }

    fn next(&mut self) -> Next {
        match (self.expected, self.held.keys().next()) {
            (Some(from), Some(&first_held)) if !self.filling => {
                self.filling = true;
                Next::Fill {
                    from,
                    to: first_held - 1,
                }
            }
            _ => Next::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(order: &mut RoomOrder, id: u64, out: &mut Vec<u64>) -> Next {
        order.arrive(id, format!("l{id}").as_bytes(), &mut |id, line| {
            assert_eq!(line, format!("l{id}").as_bytes());
            out.push(id)
        })
    }

    #[test]
    fn in_order_lines_go_straight_out_and_duplicates_are_dropped() {
        let mut order = RoomOrder::default();
        let mut out = Vec::new();
        for id in [5, 6, 7, 6, 5, 8] {
            assert_eq!(run(&mut order, id, &mut out), Next::Wait);
        }
        assert_eq!(out, [5, 6, 7, 8]);
        assert_eq!(order.expected(), Some(9));
    }

    #[test]
    fn a_gap_holds_later_lines_and_asks_for_one_fill() {
        let mut order = RoomOrder::default();
        let mut out = Vec::new();
        run(&mut order, 1, &mut out);
        assert_eq!(run(&mut order, 4, &mut out), Next::Fill { from: 2, to: 3 });
        assert_eq!(
            run(&mut order, 5, &mut out),
            Next::Wait,
            "one fill at a time"
        );
        assert_eq!(out, [1]);
        let next = order.filled(
            3,
            vec![(2, b"l2".to_vec()), (3, b"l3".to_vec())],
            &mut |id, _| out.push(id),
            &mut |_, _| panic!("nothing lost"),
        );
        assert_eq!(next, Next::Wait);
        assert_eq!(out, [1, 2, 3, 4, 5]);
        assert_eq!(order.held(), 0);
    }

    #[test]
    fn a_gap_the_stream_lost_is_reported_then_delivery_resumes() {
        let mut order = RoomOrder::default();
        let mut out = Vec::new();
        run(&mut order, 1, &mut out);
        assert_eq!(run(&mut order, 10, &mut out), Next::Fill { from: 2, to: 9 });
        let mut lost = Vec::new();
        // The stream was trimmed: only 8 and 9 are left.
        order.filled(
            9,
            vec![(8, b"l8".to_vec()), (9, b"l9".to_vec())],
            &mut |id, _| out.push(id),
            &mut |from, to| lost.push((from, to)),
        );
        assert_eq!(lost, [(2, 7)]);
        assert_eq!(out, [1, 8, 9, 10]);
    }

    #[test]
    fn a_position_check_fills_what_the_subscription_missed() {
        let mut order = RoomOrder::default();
        let mut out = Vec::new();
        run(&mut order, 1, &mut out);
        assert_eq!(order.position(1), Next::Wait, "up to date");
        assert_eq!(order.position(3), Next::Fill { from: 2, to: 3 });
        // The subscription delivers 2 while the fill is on its way.
        run(&mut order, 2, &mut out);
        let mut lost = Vec::new();
        order.filled(
            3,
            vec![(2, b"l2".to_vec()), (3, b"l3".to_vec())],
            &mut |id, _| out.push(id),
            &mut |from, to| lost.push((from, to)),
        );
        assert_eq!(out, [1, 2, 3]);
        assert!(lost.is_empty());
        // An empty stream: everything asked for is lost.
        assert_eq!(order.position(5), Next::Fill { from: 4, to: 5 });
        order.filled(5, Vec::new(), &mut |id, _| out.push(id), &mut |f, t| {
            lost.push((f, t))
        });
        assert_eq!(lost, [(4, 5)]);
        assert_eq!(order.expected(), Some(6));
    }

    /// A member arrives, the room's position is read (3), and line 3,
    /// numbered before the read answered, comes in after it: delivered.
    #[test]
    fn a_line_racing_the_position_read_of_a_join_is_delivered() {
        let mut order = RoomOrder::default();
        order.start_at(4);
        let mut out = Vec::new();
        assert_eq!(run(&mut order, 3, &mut out), Next::Wait);
        assert_eq!(run(&mut order, 4, &mut out), Next::Wait);
        assert_eq!(run(&mut order, 3, &mut out), Next::Wait, "a duplicate");
        assert_eq!(out, [3, 4]);
        // Once anchored by a line, an older one is a duplicate.
        let mut order = RoomOrder::default();
        order.start_at(4);
        let mut out = Vec::new();
        run(&mut order, 4, &mut out);
        run(&mut order, 2, &mut out);
        assert_eq!(out, [4]);
    }

    #[test]
    fn a_room_never_seen_owes_nothing() {
        let mut order = RoomOrder::default();
        assert_eq!(order.position(100), Next::Wait);
        let mut out = Vec::new();
        run(&mut order, 101, &mut out);
        assert_eq!(out, [101]);
    }
}
