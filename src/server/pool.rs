//! A core's free buffers of one kind, kept for reuse and given back when not needed.
//!
//! Reuse matters under load: the most recently freed buffer is the one still in cache, and
//! taking it costs no allocation. But a pool sized for a burst would keep the burst's
//! high-water mark for ever, so the pool is bounded (by count and, through the buffer size,
//! by bytes) and trimmed: every [`trim`](BufferPool::trim) frees the buffers that sat unused
//! since the one before (the fewest the pool held in that time), so an idle core ends up
//! with none and a busy one keeps what it reuses.

use std::cell::{Cell, RefCell};

/// Free buffers of one kind; see the module docs.
pub(crate) struct BufferPool {
    free: RefCell<Vec<Vec<u8>>>,
    max_free: usize,
    /// The fewest free buffers held since the last trim: that many were not needed.
    low_water: Cell<usize>,
    /// Whether a buffer was taken since the last trim.
    used: Cell<bool>,
}

impl BufferPool {
    /// A pool that keeps at most `max_bytes` of buffers of `buffer_bytes` each.
    pub(crate) fn new(max_bytes: usize, buffer_bytes: usize) -> BufferPool {
        BufferPool {
            free: RefCell::new(Vec::new()),
            max_free: max_bytes / buffer_bytes.max(1),
            low_water: Cell::new(0),
            used: Cell::new(false),
        }
    }

    /// A free buffer, if the pool has one.
    pub(crate) fn take(&self) -> Option<Vec<u8>> {
        let mut free = self.free.borrow_mut();
        self.used.set(true);
        let buffer = free.pop();
        self.low_water.set(self.low_water.get().min(free.len()));
        buffer
    }

    /// Keeps `buffer` for reuse unless the pool is full (then it is freed).
    pub(crate) fn give(&self, buffer: Vec<u8>) {
        let mut free = self.free.borrow_mut();
        if free.len() < self.max_free {
            free.push(buffer);
        }
    }

    /// Frees the buffers no one needed since the last trim. Returns whether any buffer was
    /// taken in that time.
    pub(crate) fn trim(&self) -> bool {
        let mut free = self.free.borrow_mut();
        let unneeded = self.low_water.get().min(free.len());
        let keep = free.len() - unneeded;
        free.truncate(keep);
        if free.is_empty() {
            *free = Vec::new(); // The list itself goes too.
        }
        self.low_water.set(free.len());
        self.used.replace(false)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.free.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_bounded_by_bytes() {
        let pool = BufferPool::new(64, 16);
        for _ in 0..10 {
            pool.give(vec![0; 16]);
        }
        assert_eq!(pool.len(), 4);
    }

    #[test]
    fn a_trim_frees_what_sat_unused_since_the_last_one() {
        let pool = BufferPool::new(1 << 20, 16);
        for _ in 0..8 {
            pool.give(vec![0; 16]);
        }
        assert!(!pool.trim(), "nothing was taken");
        assert_eq!(pool.len(), 8, "the first trim has no record of use yet");
        // Three taken and given back: the pool never fell below five.
        let taken: Vec<_> = (0..3).filter_map(|_| pool.take()).collect();
        taken.into_iter().for_each(|b| pool.give(b));
        assert!(pool.trim());
        assert_eq!(pool.len(), 3, "the five never needed are freed");
        assert!(!pool.trim());
        assert_eq!(pool.len(), 0, "idle for a whole period: all freed");
    }
}
