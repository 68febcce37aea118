//! Line framing: turns the bytes of one connection into complete lines.
//!
//! Framing depends only on `\n`, so a line may arrive split over any number
//! of reads and one read may carry many lines. Only the unfinished tail of
//! the input is kept between reads; complete lines are handed out as slices
//! of the caller's buffer, with no copy in the common case. A line longer
//! than the limit is reported once and the rest of it, up to its `\n`, is
//! dropped as it arrives instead of being buffered.

/// One unit of input, as the framer hands it to the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line without its `\n` and without one `\r` right before it.
    /// May be empty; may be invalid UTF-8 (the caller decides).
    Line(&'a [u8]),
    /// A line passed the limit; its bytes up to the next `\n` are discarded.
    TooLong,
}

/// Splits one connection's byte stream into lines.
///
/// Holds no memory while the stream sits on a line boundary, which is the
/// usual state of an idle connection.
#[derive(Debug, Default)]
pub struct LineFramer {
    /// The start of a line whose `\n` has not arrived yet.
    partial: Vec<u8>,
    /// Set after a line passed the limit, until its `\n` arrives.
    discarding: bool,
}

impl LineFramer {
    /// Feeds the next bytes of the stream and calls `on_frame` for every
    /// complete line (or over-long line) they finish, in order.
    ///
    /// `max_line` counts the bytes of a line without its `\n` and without a
    /// `\r` right before it.
    pub fn feed(&mut self, mut input: &[u8], max_line: usize, mut on_frame: impl FnMut(Frame<'_>)) {
        // A line may hold max_line bytes plus the `\r` that is dropped.
        let keep_at_most = max_line.saturating_add(1);
        while !input.is_empty() {
            let newline = memchr::memchr(b'\n', input);
            let (head, rest) = match newline {
                Some(at) => (&input[..at], Some(&input[at + 1..])),
                None => (input, None),
            };
            if self.discarding {
                if rest.is_some() {
                    self.discarding = false;
                }
            } else if rest.is_some() {
                if self.partial.is_empty() {
                    emit_line(head, max_line, &mut on_frame);
                } else if self.partial.len() + head.len() > keep_at_most {
                    self.partial.clear();
                    on_frame(Frame::TooLong);
                } else {
                    self.partial.extend_from_slice(head);
                    emit_line(&self.partial, max_line, &mut on_frame);
                    self.partial = Vec::new();
                }
            } else if self.partial.len() + head.len() > keep_at_most {
                self.partial = Vec::new();
                self.discarding = true;
                on_frame(Frame::TooLong);
            } else {
                self.partial.extend_from_slice(head);
            }
            input = rest.unwrap_or(&[]);
        }
    }

    /// Whether the stream stopped in the middle of a line (held, or being
    /// discarded as too long).
    pub fn mid_line(&self) -> bool {
        self.discarding || !self.partial.is_empty()
    }

    /// Bytes of an unfinished line held for the next read.
    pub fn pending_bytes(&self) -> usize {
        self.partial.len()
    }

    /// Heap bytes this framer holds.
    pub fn capacity(&self) -> usize {
        self.partial.capacity()
    }
}

/// Strips the optional `\r` and applies the length limit to a complete line.
fn emit_line(line: &[u8], max_line: usize, on_frame: &mut impl FnMut(Frame<'_>)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > max_line {
        on_frame(Frame::TooLong);
    } else {
        on_frame(Frame::Line(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the framer produced, owned, for comparisons.
    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Owned {
        Line(Vec<u8>),
        TooLong,
    }

    fn frame_chunks(chunks: &[&[u8]], max: usize) -> Vec<Owned> {
        let mut framer = LineFramer::default();
        let mut out = Vec::new();
        for chunk in chunks {
            framer.feed(chunk, max, |f| {
                out.push(match f {
                    Frame::Line(l) => Owned::Line(l.to_vec()),
                    Frame::TooLong => Owned::TooLong,
                })
            });
        }
        out
    }

    fn line(s: &str) -> Owned {
        Owned::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn splits_lines_and_drops_one_cr() {
        let got = frame_chunks(&[b"a\nbc\r\n\r\r\n\n"], 10);
        assert_eq!(got, vec![line("a"), line("bc"), line("\r"), line("")]);
    }

    #[test]
    fn keeps_unterminated_tail_for_the_next_read() {
        let mut framer = LineFramer::default();
        let mut out = Vec::new();
        framer.feed(b"hel", 10, |f| out.push(format!("{f:?}")));
        assert!(out.is_empty());
        assert_eq!(framer.pending_bytes(), 3);
        framer.feed(b"lo\n", 10, |f| out.push(format!("{f:?}")));
        assert_eq!(out.len(), 1);
        assert_eq!(framer.pending_bytes(), 0);
        assert_eq!(framer.capacity(), 0, "an idle framer holds no memory");
    }

    #[test]
    fn every_split_point_frames_the_same() {
        let input: &[u8] = b"one\r\ntwo\n\nthree-is-too-long\nfour\r\n\xff\xfe\nfive";
        let whole = frame_chunks(&[input], 8);
        assert_eq!(
            whole,
            vec![
                line("one"),
                line("two"),
                line(""),
                Owned::TooLong,
                line("four"),
                Owned::Line(b"\xff\xfe".to_vec()),
            ]
        );
        for a in 0..=input.len() {
            for b in a..=input.len() {
                let got = frame_chunks(&[&input[..a], &input[a..b], &input[b..]], 8);
                assert_eq!(got, whole, "split at {a} and {b}");
            }
        }
    }

    #[test]
    fn limit_counts_neither_newline_nor_cr() {
        let max = 4;
        assert_eq!(frame_chunks(&[b"abcd\n"], max), vec![line("abcd")]);
        assert_eq!(frame_chunks(&[b"abcd\r\n"], max), vec![line("abcd")]);
        assert_eq!(frame_chunks(&[b"abcde\n"], max), vec![Owned::TooLong]);
        assert_eq!(
            frame_chunks(&[b"abcd", b"\r", b"\n"], max),
            vec![line("abcd")]
        );
        assert_eq!(
            frame_chunks(&[b"abcd", b"e", b"\n"], max),
            vec![Owned::TooLong]
        );
    }

    #[test]
    fn over_long_line_is_reported_once_and_not_buffered() {
        let mut framer = LineFramer::default();
        let mut too_long = 0;
        let chunk = [b'x'; 1000];
        for _ in 0..100 {
            framer.feed(&chunk, 64, |f| {
                assert_eq!(f, Frame::TooLong);
                too_long += 1;
            });
            assert!(framer.capacity() <= 65, "discarded bytes are not kept");
        }
        assert_eq!(too_long, 1);
        let mut after = Vec::new();
        framer.feed(b"tail\nok\n", 64, |f| after.push(format!("{f:?}")));
        assert_eq!(after, vec![format!("{:?}", Frame::Line(b"ok"))]);
    }

    proptest::proptest! {
        /// Any byte stream, split at any points, frames exactly as it does
        /// in one piece, and never panics.
        #[test]
        fn any_split_frames_identically(
            input in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b'\n'),
                    proptest::strategy::Just(b'\r'),
                    proptest::num::u8::ANY,
                ],
                0..300,
            ),
            cuts in proptest::collection::vec(0usize..300, 0..8),
            max in 0usize..40,
        ) {
            let whole = frame_chunks(&[&input], max);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(&input[start..cut]);
                start = cut;
            }
            chunks.push(&input[start..]);
            proptest::prop_assert_eq!(frame_chunks(&chunks, max), whole);
        }
    }
}
