//! Exact LRU: evict the page whose last use is oldest. The stack algorithm against which
//! the others are measured (Mattson, Gecsei, Slutz and Traiger, "Evaluation techniques
//! for storage hierarchies", IBM Systems Journal 9(2), 1970): it never shows Belady's
//! anomaly.
//!
//! Kept as one recency list of stamped entries, as [`super::queues`] keeps ARC's
//! lists, with the reference's index as the stamp: the time of each resident page's
//! last use, and a queue of every use in time order. The least recently used page is
//! the queue's oldest entry that is still its page's last use. A reference reads and
//! writes one word of its page and appends to the queue; an eviction reads the queue's
//! front; the driver prefetches both. With one list and the time as its stamp, there
//! is no list to keep in the page's word and no clock to renumber.

use super::queues::{compact, overgrown, Entries, QUEUE_AHEAD};
use super::Policy;
use crate::hw::ram::prefetch_at;

/// "Not resident", in [`Lru`]'s last-use times.
const OUT: u32 = u32::MAX;

/// LRU over last-use times and a queue of uses.
#[derive(Clone, Debug)]
pub struct Lru {
    /// The time (reference index) of each resident page's last use; [`OUT`] for pages
    /// not resident.
    last: Vec<u32>,
    /// `(page, time)` of uses, oldest first, back to the least recent resident page's
    /// last use; an entry whose time is not its page's `last` is stale.
    queue: Entries,
    len: usize,
    cap: usize,
}

impl Lru {
    /// `frames` frames over `pages` pages (sized by [`super::frames_needed`]).
    pub fn new(frames: usize, pages: usize) -> Lru {
        Lru {
            last: vec![OUT; pages],
            queue: Entries::with_capacity(super::frames_needed(frames, pages) + 64),
            len: 0,
            cap: super::capacity(frames),
        }
    }

    /// Takes the least recently used page out.
    #[inline(always)]
    fn evict(&mut self) {
        while let Some((q, time)) = self.queue.pop_front() {
            if let Some(&(ahead, _)) = self.queue.get(QUEUE_AHEAD) {
                prefetch_at(&self.last, ahead as usize);
            }
            if self.last[q as usize] == time {
                self.last[q as usize] = OUT;
                return;
            }
        }
    }

    /// Appends a use, dropping the stale entries when the queue is
    /// [`overgrown`].
    #[inline(always)]
    fn record(&mut self, p: u32, time: u32) {
        self.queue.push_back((p, time));
        if overgrown(self.queue.len(), self.len) {
            let last = &self.last;
            compact(
                &mut self.queue,
                |q, t| last[q as usize] == t,
                |q| prefetch_at(last, q as usize),
            );
        }
    }
}

impl Policy for Lru {
    #[inline(always)]
    fn access(&mut self, p: u32, t: usize) -> bool {
        // Traces hold fewer than 2^32 references, so `t` fits and is never `OUT`.
        let time = t as u32;
        let hit = self.last[p as usize] != OUT;
        if !hit {
            if self.len == self.cap {
                self.evict();
            } else {
                self.len += 1;
            }
        }
        self.last[p as usize] = time;
        self.record(p, time);
        hit
    }

    #[inline(always)]
    fn prefetch(&self, p: u32) {
        prefetch_at(&self.last, p as usize);
    }

    fn grow(&mut self, pages: usize) {
        self.last.resize(pages, OUT);
    }

    fn resident(&self) -> usize {
        self.len
    }
}
