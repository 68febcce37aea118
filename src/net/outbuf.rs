//! Output queued for clients: one contiguous [`OutputQueue`] per
//! connection, written with one syscall per turn, and the [`BufferPool`]
//! its buffers are borrowed from, so an idle connection holds no output
//! memory and the output memory of all clients is known at once (the
//! global output bound).

use std::io::{self, Write};

/// Output queued for one client: a contiguous buffer and how much of it the
/// socket has already taken. Lines are appended whole, so one write sends
/// every line queued since the last one.
#[derive(Debug, Default)]
pub struct OutputQueue {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already written.
    sent: usize,
}

impl OutputQueue {
    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Whether nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Appends a line, taking a buffer from `pool` if this queue holds none.
    #[inline]
    pub fn push(&mut self, line: &[u8], pool: &mut BufferPool) {
        self.append(line, pool);
    }

    /// Appends a line like [`OutputQueue::push`] and says whether the
    /// output memory grew (a buffer was taken from `pool` or enlarged):
    /// only then can the global output bound have been passed. Inlined
    /// into the fan-out; the rare growth is out of line.
    #[inline]
    pub fn append(&mut self, line: &[u8], pool: &mut BufferPool) -> bool {
        let grew = self.buf.capacity() - self.buf.len() < line.len();
        if grew {
            self.grow(line.len(), pool);
        }
        // `extend_from_slice` would check the capacity a second time (and
        // keep the growth path inline); this is the fan-out's inner copy.
        let len = self.buf.len();
        // SAFETY: the check above, or `grow` (which reserves `line.len()`
        // more), leaves `capacity - len >= line.len()`; the bytes are copied
        // into that spare capacity before the length covers them, and
        // `line` cannot overlap a buffer this queue owns mutably.
        unsafe {
            std::ptr::copy_nonoverlapping(
                line.as_ptr(),
                self.buf.as_mut_ptr().add(len),
                line.len(),
            );
            self.buf.set_len(len + line.len());
        }
        grew
    }

    /// Makes room for `extra` more bytes, taking a buffer from `pool` if
    /// this queue holds none; the pool counts the memory lent.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, extra: usize, pool: &mut BufferPool) {
        if self.buf.capacity() == 0 {
            self.buf = pool.take();
        }
        let before = self.buf.capacity();
        self.buf.reserve(extra);
        pool.lent += self.buf.capacity() - before;
    }

    /// Writes as much as the socket takes in one call. Returns the bytes
    /// written; `WouldBlock` and other errors are returned as they are.
    pub fn write_to(&mut self, socket: &mut impl Write) -> io::Result<usize> {
        let written = socket.write(&self.buf[self.sent..])?;
        self.sent += written;
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        } else if self.sent >= self.buf.len() / 2 {
            // Keep appends cheap and memory bounded without moving the
            // unsent tail on every short write.
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
        Ok(written)
    }

    /// Drops everything queued (a cut-off client gets nothing more) and
    /// gives the buffer back.
    pub fn discard(&mut self, pool: &mut BufferPool) {
        self.buf.clear();
        self.sent = 0;
        self.release(pool);
    }

    /// Hands an empty buffer back to the pool so an idle connection holds
    /// no output memory.
    pub fn release(&mut self, pool: &mut BufferPool) {
        if self.is_empty() && self.buf.capacity() > 0 {
            pool.put(std::mem::take(&mut self.buf));
            self.sent = 0;
        }
    }
}

/// Spare output buffers, so busy connections reuse memory instead of
/// allocating (and page-faulting) per burst, and idle connections hold none.
#[derive(Debug, Default)]
pub struct BufferPool {
    spare: Vec<Vec<u8>>,
    /// Capacity held in `spare`, bounded by [`Self::MAX_SPARE_BYTES`].
    spare_bytes: usize,
    /// Whether a buffer was taken since the last [`Self::trim`].
    taken_since_trim: bool,
    /// The fewest buffers `spare` held since the last [`Self::trim`]: that
    /// many at the bottom of the stack were not needed all that time.
    low_water: usize,
    /// Capacity of the buffers lent out to output queues: the output
    /// memory of all clients, which the global output bound limits.
    lent: usize,
}

impl BufferPool {
    /// Memory the pool may hold for reuse; past it, returned buffers are
    /// freed. About what one turn queues at most before it is flushed.
    const MAX_SPARE_BYTES: usize = 16 * 1024 * 1024;
    /// What a new buffer starts with: a few lines. It grows as a client's
    /// turns need, and the grown buffer is what the pool hands out again.
    const INITIAL_CAPACITY: usize = 1024;

    /// An empty buffer, reused when one is spare.
    pub fn take(&mut self) -> Vec<u8> {
        self.taken_since_trim = true;
        let buf = match self.spare.pop() {
            Some(buf) => {
                self.spare_bytes -= buf.capacity();
                buf
            }
            None => Vec::with_capacity(Self::INITIAL_CAPACITY),
        };
        self.low_water = self.low_water.min(self.spare.len());
        self.lent += buf.capacity();
        buf
    }

    /// Heap bytes held by all output queues together (their buffers'
    /// capacity, not only the bytes waiting in them).
    pub fn lent_bytes(&self) -> usize {
        self.lent
    }

    /// Called once a second: frees every spare buffer if none was taken
    /// since the last call (the burst is over), else the ones no take
    /// reached since then (the bottom of the stack, below its low-water
    /// mark), so a busy server keeps what it keeps reusing, grown to the
    /// size its turns need (a buffer freed and taken new starts small and
    /// is copied as it doubles), and an idle one gives its memory back.
    pub fn trim(&mut self) {
        let unused = if self.taken_since_trim {
            self.low_water.min(self.spare.len())
        } else {
            self.spare.len()
        };
        self.taken_since_trim = false;
        if unused > 0 {
            for buf in self.spare.drain(..unused) {
                self.spare_bytes -= buf.capacity();
            }
            if self.spare.is_empty() {
                release_free_heap();
            }
        }
        self.low_water = self.spare.len();
    }

    /// Returns an emptied buffer.
    pub fn put(&mut self, mut buf: Vec<u8>) {
        self.lent = self.lent.saturating_sub(buf.capacity());
        if self.spare_bytes + buf.capacity() <= Self::MAX_SPARE_BYTES {
            buf.clear();
            self.spare_bytes += buf.capacity();
            self.spare.push(buf);
        }
    }
}

/// Asks the allocator to hand free heap pages back to the OS. glibc keeps
/// freed small blocks resident otherwise, so a burst of 10,000 buffers would
/// pin its memory long after the burst.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `room` bytes per call.
    struct Trickle {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_order_and_release_memory() {
        let mut pool = BufferPool::default();
        let mut queue = OutputQueue::default();
        let mut sink = Trickle {
            taken: Vec::new(),
            room: 3,
        };
        for i in 0..50 {
            queue.push(format!("line {i}\n").as_bytes(), &mut pool);
            queue.write_to(&mut sink).unwrap();
        }
        while !queue.is_empty() {
            queue.write_to(&mut sink).unwrap();
        }
        let expected: String = (0..50).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8(sink.taken).unwrap(), expected);
        assert_eq!(pool.lent_bytes(), queue.capacity());
        queue.release(&mut pool);
        assert_eq!(queue.capacity(), 0);
        assert_eq!(pool.spare.len(), 1);
        assert_eq!(pool.lent_bytes(), 0);
    }

    #[test]
    fn trim_frees_the_buffers_nobody_took_and_all_of_them_when_idle() {
        let mut pool = BufferPool::default();
        // A burst: six buffers lent, grown, returned.
        let mut bufs: Vec<Vec<u8>> = (0..6).map(|_| pool.take()).collect();
        for buf in &mut bufs {
            buf.reserve(64 * 1024);
        }
        for buf in bufs {
            pool.put(buf);
        }
        pool.trim();
        // Then a busier second that takes two at a time: the two on top
        // are reused, the four below them were not needed and go.
        for _ in 0..3 {
            let (a, b) = (pool.take(), pool.take());
            assert!(a.capacity() >= 64 * 1024, "a grown buffer is reused");
            pool.put(a);
            pool.put(b);
        }
        pool.trim();
        assert_eq!(pool.spare.len(), 2);
        assert!(pool.spare.iter().all(|b| b.capacity() >= 64 * 1024));
        assert_eq!(
            pool.spare_bytes,
            pool.spare.iter().map(Vec::capacity).sum::<usize>()
        );
        // An idle second frees the rest.
        pool.trim();
        assert!(pool.spare.is_empty());
        assert_eq!(pool.spare_bytes, 0);
    }

    #[test]
    fn would_block_leaves_the_queue_intact() {
        let mut pool = BufferPool::default();
        let mut queue = OutputQueue::default();
        queue.push(b"hello\n", &mut pool);
        let mut full = Trickle {
            taken: Vec::new(),
            room: 0,
        };
        let err = queue.write_to(&mut full).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(queue.len(), 6);
    }

    #[test]
    fn append_says_when_output_memory_grew_and_the_pool_counts_it() {
        let mut pool = BufferPool::default();
        let mut queue = OutputQueue::default();
        let line = [b'x'; 100];
        assert!(queue.append(&line, &mut pool), "first line takes a buffer");
        assert_eq!(pool.lent_bytes(), queue.capacity());
        let mut grew = 0;
        for _ in 0..100 {
            let before = queue.capacity();
            let said = queue.append(&line, &mut pool);
            assert_eq!(said, queue.capacity() > before);
            grew += usize::from(said);
            assert_eq!(pool.lent_bytes(), queue.capacity());
        }
        assert!(grew > 0 && grew < 10, "grown {grew} times for 101 lines");
        assert_eq!(queue.len(), 101 * 100);
        let mut sink = Trickle {
            taken: Vec::new(),
            room: usize::MAX,
        };
        queue.write_to(&mut sink).unwrap();
        assert_eq!(sink.taken.len(), 101 * 100);
        assert!(
            !queue.append(&line, &mut pool),
            "room again after the write"
        );
    }
}
