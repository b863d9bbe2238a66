//! Recency lists kept as queues of stamped entries: ARC's lists.
//!
//! Putting a page at the head of a list gives it a new stamp (from a counter) and
//! appends `(page, stamp)` to the list's queue; taking it out only marks the page. The
//! tail of a list is the oldest entry of its queue that still holds its page's current
//! stamp; older entries are stale and are dropped as they come to the front, or all at
//! once when a queue holds more than eight times its list's pages. A reference so
//! touches one word of its own page and the ends of the queues, and the driver can
//! prefetch both, unlike relinking a doubly-linked list ([`super::list`]), which writes
//! to the page's two neighbours wherever they are.
//!
//! Lists come in pairs sharing a queue ([`Queues`]): ARC's T1 and B1, and T2 and B2,
//! since a ghost list only ever takes its list's least recent page. A page's list and
//! stamp are one 32-bit word.

pub use super::list::NONE;
use crate::hw::ram::prefetch_at;

/// Bits of a page's state word that hold its list; the stamp is in the rest.
const LIST_BITS: u32 = 3;

/// The list field of a page in no list; lists are numbered below it.
const NO_LIST: u32 = (1 << LIST_BITS) - 1;

/// The stamp of a page in no list (never given to an entry), and the largest a state
/// word holds; the clock is renumbered before it gets there.
const NO_STAMP: u32 = u32::MAX >> LIST_BITS;

/// A page's state word: its `stamp` above its list `l` ([`NO_LIST`] for none). One
/// word per page keeps the states of a million pages within 4 MiB, about a host
/// core's second-level cache, where a pair of words took twice that.
#[inline(always)]
const fn pack(l: u32, stamp: u32) -> u32 {
    (stamp << LIST_BITS) | l
}

/// The state word of a page in no list.
const OUT: u32 = pack(NO_LIST, NO_STAMP);

/// The stamp in a state word.
#[inline(always)]
const fn stamp_of(state: u32) -> u32 {
    state >> LIST_BITS
}

/// The most pairs of lists a [`Queues`] holds.
pub const MAX_PAIRS: usize = 3;

/// The lower list of pair `k` is list `k + LOWER` (a bit of its own, so that a
/// demotion sets it and a list's pair is its low bits).
pub const LOWER: u32 = 4;

/// The index of list `l` in a table of lists (in range for any `l`, so unchecked).
#[inline(always)]
fn list_index(l: u32) -> usize {
    (l & (2 * LOWER - 1)) as usize
}

/// The index of list `l`'s pair (in range for any `l`).
#[inline(always)]
fn pair_index(l: u32) -> usize {
    (l & (LOWER - 1)) as usize
}

/// How far past a queue's front a look for the tail prefetches the next candidates'
/// states.
const QUEUE_AHEAD: usize = 8;

/// Whether a queue of `entries` for a list of `live` pages holds so many stale
/// entries that it is time to [`compact_stamped`] it.
#[inline(always)]
fn overgrown(entries: usize, live: usize) -> bool {
    entries > 8 * live + 4096
}

/// Recency lists over the same pages, in pairs; a page is in at most one list.
///
/// Pair `k` is an upper list `k` and a lower list `k + LOWER`, whose head only ever
/// takes the upper list's tail ([`Queues::demote`]), as ARC's ghost list B1 takes T1's
/// least recent page. Every page of the lower list is then older than every page of
/// the upper one, so the pair shares one queue: the lower list's entries first, then
/// from a mark on the upper list's. A demotion moves the mark past one entry and
/// relabels the page; it appends nothing and leaves no stale entry behind.
#[derive(Clone, Debug)]
pub struct Queues {
    /// The state word ([`pack`]) of every page: the list it is in and the stamp of its
    /// live entry; [`OUT`] for a page in none.
    state: Vec<u32>,
    /// Each pair's entries `(page, stamp)`, oldest first; [`Entries::mid`] is where the
    /// upper list's may begin (every live entry before it is the lower list's).
    queues: [Entries; LOWER as usize],
    /// Pages in each list.
    lens: [usize; 2 * LOWER as usize],
    /// The next stamp.
    clock: u32,
    /// Stamps are renumbered when the clock reaches this (`NO_STAMP` but in tests).
    clock_limit: u32,
}

impl Queues {
    /// `pairs` pairs of empty lists over `pages` pages, each pair's queue sized for
    /// `frames` pages. At most [`MAX_PAIRS`] pairs.
    pub fn new(pages: usize, pairs: usize, frames: usize) -> Queues {
        assert!(pairs <= MAX_PAIRS, "at most {MAX_PAIRS} pairs");
        Queues {
            state: vec![OUT; pages],
            queues: std::array::from_fn(|k| {
                Entries::with_capacity(if k < pairs { frames.min(pages) + 64 } else { 0 })
            }),
            lens: [0; 2 * LOWER as usize],
            clock: 0,
            clock_limit: NO_STAMP,
        }
    }

    /// Makes room for pages `0..pages`.
    pub fn grow(&mut self, pages: usize) {
        if pages > self.state.len() {
            self.state.resize(pages, OUT);
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
        let l = self.state[p as usize] & NO_LIST;
        if l == NO_LIST {
            NONE
        } else {
            l
        }
    }

    /// Pages in list `l`.
    #[inline(always)]
    pub fn len(&self, l: u32) -> usize {
        self.lens[list_index(l)]
    }

    /// Whether list `l` is empty.
    #[inline(always)]
    pub fn is_empty(&self, l: u32) -> bool {
        self.lens[list_index(l)] == 0
    }

    /// Takes `p` out of its list.
    #[inline(always)]
    pub fn remove(&mut self, p: u32) {
        let l = std::mem::replace(&mut self.state[p as usize], OUT) & NO_LIST;
        debug_assert_ne!(l, NO_LIST);
        self.lens[list_index(l)] -= 1;
    }

    /// Puts `p` (in no list) at the head (most recent end) of upper list `l`.
    #[inline(always)]
    pub fn push_head(&mut self, l: u32, p: u32) {
        debug_assert_eq!(self.state[p as usize], OUT);
        debug_assert!(l < LOWER, "only an upper list takes new pages");
        if self.clock == self.clock_limit {
            self.renumber();
        }
        let stamp = self.clock;
        self.clock += 1;
        self.state[p as usize] = pack(l, stamp);
        let (k, i) = (pair_index(l), list_index(l));
        self.lens[i] += 1;
        let live = self.lens[i] + self.lens[i + LOWER as usize];
        let q = &mut self.queues[k];
        q.push_back((p, stamp));
        if overgrown(q.len(), live) {
            compact_stamped(q, &self.state);
        }
    }

    /// Moves `p` to the head of upper list `l` (from whatever list it is in).
    #[inline(always)]
    pub fn move_to_head(&mut self, l: u32, p: u32) {
        self.remove(p);
        self.push_head(l, p);
    }

    /// Moves the tail of upper list `u` to the head of its lower list, and gives it;
    /// `None` if `u` is empty.
    #[inline(always)]
    pub fn demote(&mut self, u: u32) -> Option<u32> {
        debug_assert!(u < LOWER);
        let t = self.tail(u)?;
        let w = &mut self.state[t as usize];
        *w |= LOWER;
        let i = list_index(u);
        self.lens[i] -= 1;
        self.lens[i + LOWER as usize] += 1;
        self.queues[pair_index(u)].mid += 1;
        Some(t)
    }

    /// The page at the tail (least recent end) of list `l`, passing over the stale
    /// entries in front of it.
    #[inline(always)]
    pub fn tail(&mut self, l: u32) -> Option<u32> {
        if self.lens[list_index(l)] == 0 {
            return None;
        }
        let q = &mut self.queues[pair_index(l)];
        if l < LOWER {
            // Stale entries past the mark stay for the lower list's look (or a
            // compaction) to drop; the mark only moves over them.
            loop {
                let (p, stamp) = q.v[q.mid];
                if stamp_of(self.state[p as usize]) == stamp {
                    debug_assert_eq!(self.state[p as usize] & NO_LIST, l);
                    return Some(p);
                }
                q.mid += 1;
                if let Some(&(ahead, _)) = q.v.get(q.mid + QUEUE_AHEAD) {
                    prefetch_at(&self.state, ahead as usize);
                }
            }
        }
        loop {
            let &(p, stamp) = q.front().expect("a list of pages has entries");
            if stamp_of(self.state[p as usize]) == stamp {
                debug_assert_eq!(self.state[p as usize] & NO_LIST, l);
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

    /// Drops every stale entry and gives every live one stamp 0, so that the clock can
    /// start again from 1. Stamps are only compared for equality, and only between
    /// entries of one page: after this each page has at most one entry, and every stamp
    /// the clock gives until the next renumbering is new, so a page's stale entries
    /// never match its live one. (The order of entries is their place in a queue.)
    /// Giving the live entries distinct stamps instead would need as many stamps as
    /// there are pages in lists, more than a state word holds on huge traces.
    #[cold]
    fn renumber(&mut self) {
        for q in &mut self.queues {
            compact_stamped(q, &self.state);
            let state = &mut self.state;
            for e in q.iter_mut() {
                e.1 = 0;
                let w = &mut state[e.0 as usize];
                *w = pack(*w & NO_LIST, 0);
            }
        }
        self.clock = 1;
    }
}

/// A queue of `(page, stamp)` entries, oldest first: a vector read from a moving
/// front. A push, a look and a pop index the vector directly, with none of a ring
/// buffer's wrapping; the popped prefix is dropped when the vector is full
/// ([`Entries::make_room`]).
#[derive(Clone, Debug, Default)]
struct Entries {
    v: Vec<(u32, u32)>,
    front: usize,
    /// A mark at or past `front` that its owner moves (see [`Queues`]); it keeps its
    /// place among the entries as dead ones are dropped and stale ones compacted.
    mid: usize,
}

impl Entries {
    /// An empty queue with room for `n` entries.
    fn with_capacity(n: usize) -> Entries {
        Entries {
            v: Vec::with_capacity(n),
            front: 0,
            mid: 0,
        }
    }

    /// Entries in the queue.
    #[inline(always)]
    fn len(&self) -> usize {
        self.v.len() - self.front
    }

    /// Appends `e` as the newest entry.
    #[inline(always)]
    fn push_back(&mut self, e: (u32, u32)) {
        if self.v.len() == self.v.capacity() {
            self.make_room();
        }
        self.v.push(e);
    }

    /// Room for another entry in a full vector: the popped ones are dropped if they are
    /// at least half of it, else the vector grows. Each entry is so moved at most once
    /// more on average, and the vector stays within about twice the queue.
    #[cold]
    fn make_room(&mut self) {
        if 2 * self.front >= self.v.len() && self.front > 0 {
            self.drop_dead();
        } else {
            self.v.reserve(self.v.len().max(64));
        }
    }

    /// The entry `i` places after the oldest.
    #[inline(always)]
    fn get(&self, i: usize) -> Option<&(u32, u32)> {
        self.v.get(self.front + i)
    }

    /// The oldest entry.
    #[inline(always)]
    fn front(&self) -> Option<&(u32, u32)> {
        self.get(0)
    }

    /// Takes the oldest entry out.
    #[inline(always)]
    fn pop_front(&mut self) -> Option<(u32, u32)> {
        let e = *self.v.get(self.front)?;
        self.front += 1;
        Some(e)
    }

    /// Drops the entries already popped from the vector.
    #[cold]
    fn drop_dead(&mut self) {
        self.v.drain(..self.front);
        // The mark is at or past the front in a pair's queue (the lower list's look
        // stops at its live entries, all before the mark); a bare queue keeps it at 0.
        self.mid = self.mid.saturating_sub(self.front);
        self.front = 0;
    }

    /// The entries, oldest first.
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut (u32, u32)> {
        self.v[self.front..].iter_mut()
    }
}

/// Drops the stale entries of `q` (those no longer holding their page's stamp in
/// `state`), keeping the order of the others and the mark's place among them; pages'
/// states lie anywhere, so they are prefetched a few entries ahead.
#[cold]
fn compact_stamped(q: &mut Entries, state: &[u32]) {
    q.drop_dead();
    let entries = &mut q.v;
    let mut kept = 0;
    let mid = q.mid;
    for i in 0..entries.len() {
        if i == mid {
            q.mid = kept;
        }
        if let Some(&(ahead, _)) = entries.get(i + 16) {
            prefetch_at(state, ahead as usize);
        }
        let (p, stamp) = entries[i];
        if stamp_of(state[p as usize]) == stamp {
            entries[kept] = (p, stamp);
            kept += 1;
        }
    }
    if mid >= entries.len() {
        q.mid = kept;
    }
    entries.truncate(kept);
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

    /// A queue keeps its entries in order while popped ones are dropped to make room,
    /// and its vector stays within a few times the entries it holds.
    #[test]
    fn entries_keep_order_as_room_is_made() {
        let mut q = Entries::with_capacity(4);
        let (mut next, mut first) = (0u32, 0u32);
        for round in 0..10_000u32 {
            for _ in 0..(1 + round % 3) {
                q.push_back((next, next));
                next += 1;
            }
            for _ in 0..(round % 2 + 1) {
                if let Some(e) = q.pop_front() {
                    assert_eq!(e, (first, first));
                    first += 1;
                }
            }
            assert_eq!(q.len(), (next - first) as usize);
            assert_eq!(q.front().map(|e| e.0), (first < next).then_some(first));
            assert!(
                q.v.capacity() <= 4 * q.len() + 128,
                "{} for {}",
                q.v.capacity(),
                q.len()
            );
        }
    }

    /// The same operations on the queues and on linked lists give the same tails and
    /// lengths, demotions included (on the linked lists, a move of the upper list's
    /// tail to the lower list's head), through the queues' compactions, the dropping of
    /// popped entries and many renumberings of the stamps.
    #[test]
    fn queues_agree_with_linked_lists() {
        use crate::policy::list::Lists;
        let pages = 300u32;
        let mut q = Queues::new(pages as usize, MAX_PAIRS, 10);
        q.clock_limit = 5000;
        let mut l = Lists::new(pages as usize, 2 * LOWER as usize);
        let mut rng = crate::rng::Rng(0x9e37_79b9_7f4a_7c15u64);
        let mut demoted = 0;
        for _ in 0..300_000 {
            let s = rng.next();
            let p = (s % pages as u64) as u32;
            let upper = ((s >> 20) % MAX_PAIRS as u64) as u32;
            let list = upper + if (s >> 30) & 1 == 1 { LOWER } else { 0 };
            match (s >> 40) % 5 {
                0 | 1 => {
                    if l.list_of(p) == NONE {
                        l.push_head(upper, p);
                        q.push_head(upper, p);
                    } else {
                        l.move_to_head(upper, p);
                        q.move_to_head(upper, p);
                    }
                }
                2 => {
                    let t = l.tail(upper);
                    if let Some(t) = t {
                        l.move_to_head(upper + LOWER, t);
                        demoted += 1;
                    }
                    assert_eq!(q.demote(upper), t);
                }
                3 => assert_eq!(q.pop_tail(list), l.pop_tail(list)),
                _ => {
                    if l.list_of(p) != NONE {
                        l.remove(p);
                        q.remove(p);
                    }
                }
            }
            assert_eq!(q.list_of(p), l.list_of(p));
            for list in [upper, upper + LOWER] {
                assert_eq!(q.len(list), l.len(list));
                assert_eq!(q.tail(list), l.tail(list));
            }
        }
        assert!(demoted > 10_000);
        assert!(q.clock < 5000);
    }
}
