//! Exact LRU: evict the page whose last use is oldest. The stack algorithm against which
//! the others are measured (Mattson, Gecsei, Slutz and Traiger, "Evaluation techniques
//! for storage hierarchies", IBM Systems Journal 9(2), 1970): it never shows Belady's
//! anomaly.
//!
//! Kept with no state per page, from each reference's previous use (which the driver
//! gives, [`super::trace::prev_uses`]). LRU evicts pages in the order of their last
//! uses, so the last use of each page it evicts is later than that of the one before:
//! a reference hits exactly when its page's previous use came after the last use of
//! the latest page evicted. The resident pages are then the uses since that one that
//! were not followed by another use of their page: a bit per reference, set when its
//! page is used again, and the least recently used page is the first clear bit after
//! the latest eviction. A hit sets a bit of a window of the trace a few times the
//! frames long; an eviction reads on through the bits a word at a time.

use super::Policy;

/// LRU over the bits of the references since the latest eviction.
#[derive(Clone, Debug)]
pub struct Lru {
    /// One more than the index of the last use of the latest page evicted (0: none
    /// yet); a reference whose page's previous use is one more than this or later hits.
    evicted: u32,
    /// A bit per reference from index `base` on, set once its page is used again.
    stale: Vec<u64>,
    /// The index of the reference of `stale`'s first bit (a multiple of 64).
    base: u32,
    len: usize,
    cap: usize,
}

impl Lru {
    /// `frames` frames (the pages are not needed: LRU here keeps nothing per page).
    pub fn new(frames: usize, _pages: usize) -> Lru {
        Lru {
            evicted: 0,
            stale: Vec::new(),
            base: 0,
            len: 0,
            cap: super::capacity(frames),
        }
    }

    /// Adds the word of bits that reference `time` (its first) starts, first dropping
    /// the words before the latest eviction if they are half or more: the bits kept
    /// span the references since then, and each is moved about once.
    #[cold]
    fn add_word(&mut self) {
        let dead = ((self.evicted - self.base) / 64) as usize;
        if dead > 0 && 2 * dead >= self.stale.len() {
            self.stale.drain(..dead);
            self.base += 64 * dead as u32;
        }
        self.stale.push(0);
    }

    /// Takes the least recently used page out: the first reference since the latest
    /// eviction whose bit is clear.
    #[inline(always)]
    fn evict(&mut self) {
        let mut i = (self.evicted - self.base) as usize;
        loop {
            let live = !self.stale[i / 64] >> (i % 64);
            if live != 0 {
                i += live.trailing_zeros() as usize;
                break;
            }
            i = (i / 64 + 1) * 64;
        }
        self.evicted = self.base + i as u32 + 1;
    }
}

impl Policy for Lru {
    const NEEDS_PREV: bool = true;

    #[inline(always)]
    fn access(&mut self, _p: u32, t: usize, prev: u32) -> bool {
        // Traces hold fewer than 2^32 - 1 references, so `t` fits.
        let time = t as u32;
        if ((time - self.base) / 64) as usize == self.stale.len() {
            self.add_word();
        }
        let hit = prev > self.evicted;
        if hit {
            // The previous use is no longer its page's last.
            let i = (prev - 1 - self.base) as usize;
            self.stale[i / 64] |= 1 << (i % 64);
        } else if self.len == self.cap {
            // The resident pages' last uses are the clear bits before `time`, `cap` of
            // them, so the look ends before it.
            self.evict();
        } else {
            self.len += 1;
        }
        hit
    }

    fn grow(&mut self, _pages: usize) {}

    fn resident(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::trace::prev_uses;

    /// Hits from the bits agree with a list kept in recency order, over frame counts
    /// from one to more than the pages, through many dropped words.
    #[test]
    fn hits_agree_with_a_recency_list() {
        let mut rng = crate::rng::Rng(0x2545_f491_4f6c_dd1d);
        let pages = 200u32;
        let refs: Vec<u32> = (0..50_000)
            .map(|i| {
                let s = rng.next();
                // A hot set, a cold set and scans, so that reuse distances vary.
                match s % 10 {
                    0..=5 => (s >> 8) as u32 % 20,
                    6..=7 => (s >> 8) as u32 % pages,
                    _ => (i / 3) as u32 % pages,
                }
            })
            .collect();
        let mut last = vec![0; pages as usize];
        let mut prev = Vec::new();
        prev_uses(&refs, 0, &mut last, &mut prev);
        for frames in [1, 2, 7, 19, 20, 64, 150, 200, 1000] {
            let mut lru = Lru::new(frames, 0);
            let mut list: Vec<u32> = Vec::new(); // most recent last
            for (t, &p) in refs.iter().enumerate() {
                let want = match list.iter().position(|&q| q == p) {
                    Some(i) => {
                        list.remove(i);
                        true
                    }
                    None => {
                        if list.len() == frames {
                            list.remove(0);
                        }
                        false
                    }
                };
                list.push(p);
                assert_eq!(lru.access(p, t, prev[t]), want, "frames {frames}, t {t}");
                assert_eq!(lru.resident(), list.len());
            }
            // The bits kept span little more than the references since the latest
            // eviction, not the trace.
            if frames < 64 {
                assert!(lru.stale.len() < 200, "{} words", lru.stale.len());
            }
        }
    }
}
