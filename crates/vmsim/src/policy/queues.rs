//! Recency lists kept as queues of stamped entries: the lists of LRU and ARC.
//!
//! Putting a page at the head of a list gives it a new stamp (a counter, so stamps
//! order the entries) and appends `(page, stamp)` to the list's queue; taking it out
//! only marks the page. The tail of a list is the oldest entry of its queue that is
//! still its page's current stamp; older entries are stale and are dropped as they
//! come to the front, or all at once when a queue holds more than eight times its
//! list's pages. A reference so touches one word of its own page and the ends of the
//! queues, and the driver can prefetch both, unlike relinking a doubly-linked list
//! ([`super::list`]), which writes to the page's two neighbours wherever they are.

pub use super::list::NONE;
use crate::hw::ram::prefetch_at;
use std::collections::VecDeque;

/// The stamp of a page in no list (never given to an entry).
const NO_STAMP: u32 = u32::MAX;

/// How far past a queue's front a look for the tail prefetches the next candidates'
/// states.
pub(super) const QUEUE_AHEAD: usize = 8;

/// Whether a queue of `entries` for a list of `live` pages holds so many stale
/// entries that it is time to [`compact`] it.
#[inline(always)]
pub(super) fn overgrown(entries: usize, live: usize) -> bool {
    entries > 8 * live + 4096
}

/// Several recency lists over the same pages; a page is in at most one.
#[derive(Clone, Debug)]
pub struct Queues {
    /// `(list, stamp)` of every page: the list it is in ([`NONE`]: none) and the stamp
    /// of its live entry.
    state: Vec<(u32, u32)>,
    /// Each list's entries `(page, stamp)`, oldest first.
    queues: Vec<VecDeque<(u32, u32)>>,
    /// Pages in each list.
    lens: Vec<usize>,
    /// The next stamp.
    clock: u32,
    /// Stamps are renumbered when the clock reaches this (`NO_STAMP` but in tests).
    clock_limit: u32,
}

impl Queues {
    /// `n` empty lists over `pages` pages, their queues sized for `frames` pages each.
    pub fn new(pages: usize, n: usize, frames: usize) -> Queues {
        Queues {
            state: vec![(NONE, NO_STAMP); pages],
            queues: (0..n)
                .map(|_| VecDeque::with_capacity(frames.min(pages) + 64))
                .collect(),
            lens: vec![0; n],
            clock: 0,
            clock_limit: NO_STAMP,
        }
    }

    /// Makes room for pages `0..pages`.
    pub fn grow(&mut self, pages: usize) {
        if pages > self.state.len() {
            self.state.resize(pages, (NONE, NO_STAMP));
        }
    }

    /// Hints the host to cache page `p`'s state (see [`super::Policy::prefetch`]).
    #[inline(always)]
    pub fn prefetch(&self, p: u32) {
        prefetch_at(&self.state, p as usize);
    }

    /// The list page `p` is in ([`NONE`] if none).
    #[inline(always)]
    pub fn list_of(&self, p: u32) -> u32 {
        self.state[p as usize].0
    }

    /// Pages in list `l`.
    #[inline(always)]
    pub fn len(&self, l: u32) -> usize {
        self.lens[l as usize]
    }

    /// Whether list `l` is empty.
    #[inline(always)]
    pub fn is_empty(&self, l: u32) -> bool {
        self.lens[l as usize] == 0
    }

    /// Takes `p` out of its list.
    #[inline(always)]
    pub fn remove(&mut self, p: u32) {
        let (l, _) = std::mem::replace(&mut self.state[p as usize], (NONE, NO_STAMP));
        debug_assert_ne!(l, NONE);
        self.lens[l as usize] -= 1;
    }

    /// Puts `p` (in no list) at the head (most recent end) of list `l`.
    #[inline(always)]
    pub fn push_head(&mut self, l: u32, p: u32) {
        debug_assert_eq!(self.state[p as usize].0, NONE);
        if self.clock == self.clock_limit {
            self.renumber();
        }
        let stamp = self.clock;
        self.clock += 1;
        self.state[p as usize] = (l, stamp);
        self.lens[l as usize] += 1;
        let q = &mut self.queues[l as usize];
        q.push_back((p, stamp));
        if overgrown(q.len(), self.lens[l as usize]) {
            compact_stamped(q, &self.state);
        }
    }

    /// Moves `p` to the head of list `l` (from whatever list it is in).
    #[inline(always)]
    pub fn move_to_head(&mut self, l: u32, p: u32) {
        self.remove(p);
        self.push_head(l, p);
    }

    /// The page at the tail (least recent end) of list `l`, dropping the stale entries
    /// in front of it.
    #[inline(always)]
    pub fn tail(&mut self, l: u32) -> Option<u32> {
        if self.lens[l as usize] == 0 {
            return None;
        }
        let q = &mut self.queues[l as usize];
        loop {
            let &(p, stamp) = q.front().expect("a list of pages has entries");
            if self.state[p as usize].1 == stamp {
                return Some(p);
            }
            q.pop_front();
            if let Some(&(ahead, _)) = q.get(QUEUE_AHEAD) {
                prefetch_at(&self.state, ahead as usize);
            }
        }
    }

    /// Takes the tail of list `l` out, if any.
    #[inline(always)]
    pub fn pop_tail(&mut self, l: u32) -> Option<u32> {
        let t = self.tail(l)?;
        self.remove(t);
        Some(t)
    }

    /// Drops every stale entry and gives the live ones stamps from 0 again, in order
    /// (stamps are only compared for equality, and order only within a queue).
    #[cold]
    fn renumber(&mut self) {
        let mut clock = 0;
        for q in &mut self.queues {
            compact_stamped(q, &self.state);
            let state = &mut self.state;
            for e in q.iter_mut() {
                e.1 = clock;
                state[e.0 as usize].1 = clock;
                clock += 1;
            }
        }
        self.clock = clock;
    }
}

/// [`compact`] of a queue of [`Queues`]: an entry is live while it holds its page's
/// stamp.
fn compact_stamped(q: &mut VecDeque<(u32, u32)>, state: &[(u32, u32)]) {
    compact(
        q,
        |p, s| state[p as usize].1 == s,
        |p| prefetch_at(state, p as usize),
    );
}

/// Drops the entries `(page, stamp)` of `q` that are not `live`, keeping the order of
/// the others; `prefetch(page)` is called a few entries ahead, since pages' states lie
/// anywhere.
#[cold]
pub(super) fn compact(
    q: &mut VecDeque<(u32, u32)>,
    live: impl Fn(u32, u32) -> bool,
    prefetch: impl Fn(u32),
) {
    let entries = q.make_contiguous();
    let mut kept = 0;
    for i in 0..entries.len() {
        if let Some(&(ahead, _)) = entries.get(i + 16) {
            prefetch(ahead);
        }
        let (p, stamp) = entries[i];
        if live(p, stamp) {
            entries[kept] = (p, stamp);
            kept += 1;
        }
    }
    q.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_move_between_lists_in_order() {
        let mut l = Queues::new(5, 2, 5);
        crate::policy::list::check_moves_between_lists!(l);
        l.grow(7);
        l.push_head(0, 6);
        assert_eq!(l.tail(0), Some(6));
    }

    /// The same operations on the queues and on linked lists give the same tails,
    /// through compactions and through renumbering the stamps many times.
    #[test]
    fn queues_agree_with_linked_lists() {
        use crate::policy::list::Lists;
        let pages = 300u32;
        let mut q = Queues::new(pages as usize, 3, 10);
        q.clock_limit = 5000;
        let mut l = Lists::new(pages as usize, 3);
        let mut rng = crate::rng::Rng(0x9e37_79b9_7f4a_7c15u64);
        for _ in 0..200_000 {
            let s = rng.next();
            let p = (s % pages as u64) as u32;
            let list = ((s >> 20) % 3) as u32;
            match (s >> 40) % 4 {
                0 | 1 => {
                    if l.list_of(p) == NONE {
                        l.push_head(list, p);
                        q.push_head(list, p);
                    } else {
                        l.move_to_head(list, p);
                        q.move_to_head(list, p);
                    }
                }
                2 => assert_eq!(q.pop_tail(list), l.pop_tail(list)),
                _ => {
                    if l.list_of(p) != NONE {
                        l.remove(p);
                        q.remove(p);
                    }
                }
            }
            assert_eq!(q.list_of(p), l.list_of(p));
            assert_eq!(q.len(list), l.len(list));
            assert_eq!(q.tail(list), l.tail(list));
        }
        assert!(q.clock < 5000);
    }
}
