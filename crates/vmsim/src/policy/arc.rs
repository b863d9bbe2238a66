//! ARC, the adaptive replacement cache (Megiddo and Modha, "ARC: A Self-Tuning, Low
//! Overhead Replacement Cache", FAST 2003). Two LRU lists of resident pages, T1 (seen
//! once recently) and T2 (seen at least twice), and two ghost lists of pages recently
//! evicted from each, B1 and B2. A hit in a ghost list moves the target size `p` of T1
//! toward the list that would have hit: by max(|B2|/|B1|, 1) up on a B1 hit, by
//! max(|B1|/|B2|, 1) down on a B2 hit, within [0, c]. The ratios are taken as real
//! numbers and `p` is kept as one, as libCacheSim does; the paper's Figure 4 writes
//! the same formulas without saying how to round.
//! REPLACE evicts T1's LRU page into B1 when |T1| > p (or = p on a B2 hit, or T2 is
//! empty), else T2's into B2. On a complete miss with the cache full: if |T1| + |B1| = c, forget B1's LRU
//! page and REPLACE (or, with B1 empty, evict T1's LRU page outright); otherwise, when
//! the four lists hold 2c pages, forget B2's LRU page, then REPLACE.

use super::queues::{Queues, LOWER, MAX_LIVE};
use super::Policy;

/// The most frames ARC keeps over any number of pages: its lists hold up to twice its
/// frames in pages, and those of one pair of lists must stay within [`MAX_LIVE`]
/// (134,217,727 frames, 512 GiB of 4 KiB pages). With more frames, the distinct pages
/// must stay within [`MAX_LIVE`] ([`fits`]).
pub const MAX_FRAMES: usize = MAX_LIVE / 2;

/// Whether ARC at `frames` frames keeps `pages` distinct pages: its lists hold at most
/// all of them and at most twice its frames.
pub fn fits(frames: usize, pages: usize) -> bool {
    frames <= MAX_FRAMES || pages <= MAX_LIVE
}

const T1: u32 = 0;
const T2: u32 = 1;
const B1: u32 = T1 + LOWER;
const B2: u32 = T2 + LOWER;

/// ARC.
#[derive(Clone, Debug)]
pub struct Arc {
    /// The lists (boxed: they are several times the size of the other policies).
    lists: Box<Queues>,
    cap: usize,
    p: f64,
}

impl Arc {
    /// `frames` frames over `pages` pages (sized by [`super::frames_needed`]: with at
    /// least a frame per page, no miss finds the cache full, so the ghost lists stay
    /// empty and the size makes no difference).
    pub fn new(frames: usize, pages: usize) -> Arc {
        assert!(fits(frames, pages), "{}", too_many(frames));
        Arc {
            lists: Box::new(Queues::new(pages, 2, frames)),
            cap: super::capacity(frames),
            p: 0.0,
        }
    }

    #[inline(always)]
    fn replace(&mut self, in_b2: bool) {
        let t1 = self.lists.len(T1);
        let t1f = t1 as f64;
        let from_t1 =
            (t1 > 0 && (t1f > self.p || (t1f == self.p && in_b2))) || self.lists.is_empty(T2);
        // T1's tail goes to B1's head, T2's to B2's: each pair shares a queue.
        self.lists.demote(if from_t1 { T1 } else { T2 });
    }
}

/// Why ARC cannot run at `frames` frames over so many pages.
fn too_many(frames: usize) -> String {
    format!("ARC at {frames} frames keeps at most {MAX_LIVE} distinct pages")
}

impl Policy for Arc {
    #[inline(always)]
    fn access(&mut self, p: u32, _t: usize, _prev: u32) -> bool {
        let l = self.lists.list_of(p);
        match l {
            T1 | T2 => {
                self.lists.move_to_head(T2, p);
                return true;
            }
            B1 => {
                let delta = (self.lists.len(B2) as f64 / self.lists.len(B1) as f64).max(1.0);
                self.p = (self.p + delta).min(self.cap as f64);
                self.replace(false);
                self.lists.move_to_head(T2, p);
            }
            B2 => {
                let delta = (self.lists.len(B1) as f64 / self.lists.len(B2) as f64).max(1.0);
                self.p = (self.p - delta).max(0.0);
                self.replace(true);
                self.lists.move_to_head(T2, p);
            }
            _ => {
                let (t1, t2, b1, b2) = (
                    self.lists.len(T1),
                    self.lists.len(T2),
                    self.lists.len(B1),
                    self.lists.len(B2),
                );
                if t1 + t2 >= self.cap {
                    if t1 + b1 >= self.cap {
                        if b1 > 0 {
                            self.lists.pop_tail(B1);
                            self.replace(false);
                        } else {
                            self.lists.pop_tail(T1);
                        }
                    } else {
                        if t1 + t2 + b1 + b2 >= 2 * self.cap {
                            self.lists.pop_tail(B2);
                        }
                        self.replace(false);
                    }
                }
                self.lists.push_head(T1, p);
            }
        }
        false
    }

    #[inline(always)]
    fn prefetch(&self, p: u32) {
        self.lists.prefetch(p);
    }

    fn grow(&mut self, pages: usize) {
        assert!(fits(self.cap, pages), "{}", too_many(self.cap));
        self.lists.grow(pages);
    }

    fn resident(&self) -> usize {
        self.lists.len(T1) + self.lists.len(T2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ARC runs at any frames over up to [`MAX_LIVE`] pages, and over any pages at up
    /// to [`MAX_FRAMES`] frames, but not both past their limits.
    #[test]
    fn arc_keeps_its_pages_within_its_limits() {
        assert!(fits(MAX_FRAMES, usize::MAX));
        assert!(fits(usize::MAX, MAX_LIVE));
        assert!(!fits(MAX_FRAMES + 1, MAX_LIVE + 1));
        let mut a = Arc::new(1 << 40, 10);
        a.grow(1000);
        // Refused before any room is made.
        let grown = std::panic::catch_unwind(move || a.grow(MAX_LIVE + 1));
        assert!(grown.is_err());
    }
}
