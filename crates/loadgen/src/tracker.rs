//! Per sender/receiver sequence tracking: which messages each receiver got
//! from each sender, so lost, duplicated and reordered messages are found
//! rather than guessed.
//!
//! The protocol promises per-sender order, so the common case is one
//! comparison against the next expected sequence number (4 bytes per pair).
//! Gaps are remembered in a side table that is empty in a healthy run: a
//! number that later fills a gap was reordered, a number seen twice is a
//! duplicate, and what is still missing at the end is lost.

use std::collections::HashMap;

/// Gaps remembered per pair; past this, later arrivals of older numbers are
/// counted as duplicates rather than reordered (a run that broken fails
/// anyway, and memory stays bounded).
const MAX_GAPS_PER_PAIR: usize = 4096;

/// What one arrival was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The next number expected.
    InOrder,
    /// Later than expected: this many numbers before it are missing so far.
    AfterGap(u32),
    /// Fills an earlier gap: it overtook, or was overtaken.
    Reordered,
    /// Seen before.
    Duplicate,
}

impl Arrival {
    /// Whether this is the first time the receiver got this message.
    pub fn is_first(self) -> bool {
        self != Arrival::Duplicate
    }
}

/// Sequence state of `receivers x senders` pairs.
#[derive(Debug)]
pub struct SeqTracker {
    senders: usize,
    /// One past the highest number seen, per pair (`receiver * senders +
    /// sender`).
    next: Vec<u32>,
    /// Numbers below `next` not yet seen, for the pairs that have any.
    gaps: HashMap<usize, Vec<u32>>,
    /// Gap numbers not remembered because a pair had too many.
    forgotten: u64,
    /// Arrivals counted as [`Arrival::Duplicate`].
    pub duplicated: u64,
    /// Arrivals counted as [`Arrival::Reordered`].
    pub reordered: u64,
}

impl SeqTracker {
    /// Tracks `receivers` clients each receiving from `senders` senders.
    pub fn new(receivers: usize, senders: usize) -> SeqTracker {
        SeqTracker {
            senders,
            next: vec![0; receivers * senders],
            gaps: HashMap::new(),
            forgotten: 0,
            duplicated: 0,
            reordered: 0,
        }
    }

    /// Records that `receiver` got `seq` from `sender`.
    pub fn record(&mut self, receiver: usize, sender: usize, seq: u32) -> Arrival {
        let pair = receiver * self.senders + sender;
        let next = self.next[pair];
        if seq == next {
            self.next[pair] = next + 1;
            return Arrival::InOrder;
        }
        if seq > next {
            let gaps = self.gaps.entry(pair).or_default();
            let room = MAX_GAPS_PER_PAIR.saturating_sub(gaps.len());
            let missing = seq - next;
            gaps.extend((next..seq).take(room));
            self.forgotten += (missing as usize).saturating_sub(room) as u64;
            self.next[pair] = seq + 1;
            return Arrival::AfterGap(missing);
        }
        if let Some(gaps) = self.gaps.get_mut(&pair) {
            if let Some(i) = gaps.iter().position(|&g| g == seq) {
                gaps.swap_remove(i);
                if gaps.is_empty() {
                    self.gaps.remove(&pair);
                }
                self.reordered += 1;
                return Arrival::Reordered;
            }
        }
        self.duplicated += 1;
        Arrival::Duplicate
    }

    /// Whether `receiver` has got `seq` from `sender`.
    pub fn has(&self, receiver: usize, sender: usize, seq: u32) -> bool {
        let pair = receiver * self.senders + sender;
        seq < self.next[pair] && !self.gaps.get(&pair).is_some_and(|g| g.contains(&seq))
    }

    /// How many of the `sent` messages `sender` sent (numbers `0..sent`)
    /// `receiver` has not got.
    pub fn missing(&self, receiver: usize, sender: usize, sent: u32) -> u64 {
        let pair = receiver * self.senders + sender;
        let gaps = self.gaps.get(&pair).map_or(0, |g| g.len()) as u64;
        sent.saturating_sub(self.next[pair]) as u64 + gaps
    }

    /// Gap numbers not remembered (see `MAX_GAPS_PER_PAIR`): lost or
    /// reordered, the tracker cannot tell, so they are reported as lost.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn in_order() {
        let mut t = SeqTracker::new(2, 2);
        for q in 0..5 {
            assert_eq!(t.record(1, 0, q), Arrival::InOrder);
        }
        assert_eq!(t.missing(1, 0, 5), 0);
        assert_eq!(t.missing(1, 0, 7), 2);
        assert_eq!(t.missing(0, 1, 3), 3);
        assert!(t.has(1, 0, 4));
        assert!(!t.has(1, 0, 5));
    }

    #[test]
    fn gap_reorder_duplicate() {
        let mut t = SeqTracker::new(1, 1);
        assert_eq!(t.record(0, 0, 0), Arrival::InOrder);
        assert_eq!(t.record(0, 0, 3), Arrival::AfterGap(2));
        assert!(!t.has(0, 0, 1));
        assert_eq!(t.missing(0, 0, 4), 2);
        assert_eq!(t.record(0, 0, 2), Arrival::Reordered);
        assert_eq!(t.record(0, 0, 2), Arrival::Duplicate);
        assert_eq!(t.record(0, 0, 3), Arrival::Duplicate);
        assert_eq!(t.missing(0, 0, 4), 1);
        assert_eq!((t.reordered, t.duplicated), (1, 2));
        assert_eq!(t.record(0, 0, 1), Arrival::Reordered);
        assert_eq!(t.missing(0, 0, 4), 0);
        assert!(t.gaps.is_empty());
    }

    proptest! {
        /// Whatever order and repetition the arrivals come in, the counts
        /// add up: every distinct number is seen once, extras are
        /// duplicates, and the rest is missing.
        #[test]
        fn accounting(arrivals in proptest::collection::vec(0u32..50, 0..200)) {
            let mut t = SeqTracker::new(1, 1);
            let mut firsts = 0u64;
            for &q in &arrivals {
                if t.record(0, 0, q).is_first() {
                    firsts += 1;
                }
            }
            let distinct: std::collections::BTreeSet<u32> = arrivals.iter().copied().collect();
            prop_assert_eq!(firsts, distinct.len() as u64);
            prop_assert_eq!(t.duplicated, arrivals.len() as u64 - firsts);
            prop_assert_eq!(t.missing(0, 0, 50), 50 - distinct.len() as u64);
            for q in 0..50 {
                prop_assert_eq!(t.has(0, 0, q), distinct.contains(&q));
            }
        }
    }
}
