//! OPT, Belady's MIN ("A study of replacement algorithms for a virtual-storage
//! computer", IBM Systems Journal 5(2), 1966): evict the resident page whose next use is
//! farthest in the future (or never comes). It needs the future, so it runs in two
//! passes: the next use of every reference is computed first
//! ([`super::PageTrace::next_use`]). No policy faults less.
//!
//! The resident pages are kept as the set of their next uses, which are times (indices
//! of references): no two pages share one, since each time references one page, and
//! an eviction needs only the farthest of them taken out, not the page it belongs to.
//! The set is a bitmap over time with a summary bit per 64-bit word, level above level
//! ([`TimeSet`]), so finding the farthest next use reads one word per level; pages
//! never used again are kept apart, and evicted first, in any order (none of them is
//! ever referenced again, so which one goes changes no later hit). A reference at time
//! `t` hits exactly when `t` is in the set: a resident page's next use is the next time
//! it is referenced.

use super::trace::NEVER;
use super::Policy;

/// A set of times `0..n` as a bitmap with summary levels: bit `i` of a word at level
/// `k + 1` is set when word `i` of level `k` is not zero.
#[derive(Clone, Debug)]
pub struct TimeSet {
    /// Level 0 (one bit per time) first; the last level is one word.
    levels: Vec<Vec<u64>>,
}

impl TimeSet {
    /// An empty set of times below `n`.
    pub fn new(n: usize) -> TimeSet {
        let mut levels = Vec::new();
        let mut len = n.div_ceil(64).max(1);
        loop {
            levels.push(vec![0u64; len]);
            if len == 1 {
                return TimeSet { levels };
            }
            len = len.div_ceil(64);
        }
    }

    /// Whether `i` is in the set.
    #[inline(always)]
    pub fn contains(&self, i: usize) -> bool {
        self.levels[0][i / 64] & (1 << (i % 64)) != 0
    }

    /// Puts `i` in.
    #[inline(always)]
    pub fn insert(&mut self, mut i: usize) {
        for level in &mut self.levels {
            let w = &mut level[i / 64];
            let was = *w;
            *w |= 1 << (i % 64);
            if was != 0 {
                return;
            }
            i /= 64;
        }
    }

    /// Takes `i` out.
    #[inline(always)]
    pub fn remove(&mut self, mut i: usize) {
        for level in &mut self.levels {
            let w = &mut level[i / 64];
            *w &= !(1 << (i % 64));
            if *w != 0 {
                return;
            }
            i /= 64;
        }
    }

    /// The largest time in the set.
    #[inline(always)]
    pub fn max(&self) -> Option<usize> {
        let mut i = 0usize;
        for level in self.levels.iter().rev() {
            let w = level[i];
            if w == 0 {
                return None;
            }
            i = i * 64 + (63 - w.leading_zeros() as usize);
        }
        Some(i)
    }
}

/// OPT over the set of the resident pages' next uses.
#[derive(Clone, Debug)]
pub struct Opt<'a> {
    next: &'a [u32],
    /// The next uses of the resident pages that have one.
    due: TimeSet,
    /// The resident pages never used again.
    never: Vec<u32>,
    len: usize,
    cap: usize,
}

impl<'a> Opt<'a> {
    /// `frames` frames over a trace whose reference at `t` is next referenced at
    /// `next[t]` ([`NEVER`] if it is not).
    pub fn new(frames: usize, next: &'a [u32]) -> Opt<'a> {
        Opt {
            next,
            due: TimeSet::new(next.len()),
            never: Vec::new(),
            len: 0,
            cap: super::capacity(frames),
        }
    }
}

impl Policy for Opt<'_> {
    #[inline(always)]
    fn access(&mut self, p: u32, t: usize, _prev: u32) -> bool {
        let hit = self.due.contains(t);
        if hit {
            self.due.remove(t);
        } else if self.len == self.cap {
            // The victim: a page never used again, else the farthest next use's page.
            if self.never.pop().is_none() {
                let far = self.due.max().expect("a full memory holds pages");
                self.due.remove(far);
            }
        } else {
            self.len += 1;
        }
        match self.next[t] {
            NEVER => self.never.push(p),
            n => self.due.insert(n as usize),
        }
        hit
    }

    /// Never called: this policy needs the whole trace, so it does not run on streams.
    fn grow(&mut self, _pages: usize) {}

    fn resident(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bitmap agrees with a sorted set through inserts and removals on several
    /// levels (n = 300,000 needs four).
    #[test]
    fn time_sets_find_their_largest() {
        let n = 300_000;
        let mut set = TimeSet::new(n);
        assert_eq!(set.levels.len(), 4);
        let mut want = std::collections::BTreeSet::new();
        let mut rng = crate::rng::Rng(0x9e37_79b9_7f4a_7c15u64);
        for _ in 0..100_000 {
            let s = rng.next();
            let i = (s % n as u64) as usize;
            if s & (1 << 40) != 0 {
                set.insert(i);
                want.insert(i);
            } else if let Some(&m) = want.iter().next_back() {
                // Remove the largest sometimes, else a random member if present.
                let i = if s & (1 << 41) != 0 { m } else { i };
                set.remove(i);
                want.remove(&i);
            }
            assert_eq!(set.max(), want.iter().next_back().copied());
            assert_eq!(set.contains(i), want.contains(&i));
        }
        assert_eq!(TimeSet::new(0).max(), None);
    }
}
