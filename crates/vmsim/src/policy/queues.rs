//! Recency lists kept as queues of pages with holes: ARC's lists.
//!
//! Putting a page at the head of a list appends the page to its list's queue and
//! writes, in the page's state word, its list and its entry's position in that queue.
//! Taking a page out of its list writes a hole ([`HOLE`]) over its entry, found from
//! that position. The tail of a list is the oldest entry of its queue that is not a
//! hole; holes are passed over as they come to the front, and dropped all at once when
//! a queue holds more than eight times its list's pages. A reference so reads one word
//! of its own page (which the driver prefetches) and writes one word of its old entry,
//! and a look for a tail reads its queue in order. Entries that carried a stamp to be
//! compared with their page's state each needed a read of that state, wherever it
//! lies; a doubly-linked list ([`super::list`]) writes to the page's two neighbours.
//!
//! Lists come in pairs sharing a queue ([`Queues`]): ARC's T1 and B1, and T2 and B2,
//! since a ghost list only ever takes its list's least recent page.

pub use super::list::NONE;
use crate::hw::ram::prefetch_at;

/// Bits of a page's state word that hold its list; its entry's position is in the rest.
const LIST_BITS: u32 = 3;

/// The list field of a page in no list; lists are numbered below it.
const NO_LIST: u32 = (1 << LIST_BITS) - 1;

/// Positions in a queue are below this; a queue whose next position would reach it is
/// renumbered from 0 ([`Queues::compact`]).
pub const MAX_POSITION: u32 = u32::MAX >> LIST_BITS;

/// The most pages a pair's two lists hold together, so that their entries' positions
/// fit in a state word after a renumbering, with room to go on: ARC at `c` frames holds
/// up to `2c` pages in one pair.
pub const MAX_LIVE: usize = (MAX_POSITION / 2) as usize;

/// A page's state word: its entry's position `pos` above its list `l` ([`NO_LIST`]
/// for none). One word per page keeps the states of a million pages within 4 MiB,
/// about a host core's second-level cache.
#[inline(always)]
const fn pack(l: u32, pos: u32) -> u32 {
    (pos << LIST_BITS) | l
}

/// The state word of a page in no list.
const OUT: u32 = u32::MAX;

/// The position in a state word.
#[inline(always)]
const fn position_of(state: u32) -> u32 {
    state >> LIST_BITS
}

/// An entry whose page has left its list (no page has this id: see
/// [`super::ids::MAX_PAGES`]).
const HOLE: u32 = u32::MAX;

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

/// The most entries a queue for lists of `live` pages holds before it is time to
/// [`Queues::compact`] its holes away.
#[inline(always)]
fn most_entries(live: usize) -> usize {
    8 * live + 4096
}

/// Whether a queue of `entries` for lists of `live` pages holds so many holes that it
/// is time to [`Queues::compact`] it.
#[inline(always)]
fn overgrown(entries: usize, live: usize) -> bool {
    entries > most_entries(live)
}

/// Recency lists over the same pages, in pairs; a page is in at most one list.
///
/// Pair `k` is an upper list `k` and a lower list `k + LOWER`, whose head only ever
/// takes the upper list's tail ([`Queues::demote`]), as ARC's ghost list B1 takes T1's
/// least recent page. Every page of the lower list is then older than every page of
/// the upper one, so the pair shares one queue: the lower list's entries first, then
/// from a mark on the upper list's. A demotion moves the mark past one entry and
/// relabels the page; it appends nothing and leaves no hole behind.
#[derive(Clone, Debug)]
pub struct Queues {
    /// The state word ([`pack`]) of every page: the list it is in and its entry's
    /// position in the list's queue; [`OUT`] for a page in none.
    state: Vec<u32>,
    /// Each pair's entries, oldest first; [`Entries::mid`] is where the upper list's
    /// may begin (every entry before it that is not a hole is the lower list's).
    queues: [Entries; LOWER as usize],
    /// Pages in each list.
    lens: [usize; 2 * LOWER as usize],
    /// A queue is renumbered when its next position would reach this ([`MAX_POSITION`]
    /// but in tests).
    position_limit: u32,
}

impl Queues {
    /// `pairs` pairs of empty lists over `pages` pages, each pair's queue sized for
    /// `frames` pages. At most [`MAX_PAIRS`] pairs; the pages of one pair must stay
    /// within [`MAX_LIVE`].
    pub fn new(pages: usize, pairs: usize, frames: usize) -> Queues {
        assert!(pairs <= MAX_PAIRS, "at most {MAX_PAIRS} pairs");
        Queues {
            state: vec![OUT; pages],
            queues: std::array::from_fn(|k| {
                Entries::with_capacity(if k < pairs { frames.min(pages) + 64 } else { 0 })
            }),
            lens: [0; 2 * LOWER as usize],
            position_limit: MAX_POSITION,
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
        let w = std::mem::replace(&mut self.state[p as usize], OUT);
        let l = w & NO_LIST;
        debug_assert_ne!(l, NO_LIST);
        self.lens[list_index(l)] -= 1;
        let q = &mut self.queues[pair_index(l)];
        q.v[position_of(w).wrapping_sub(q.base) as usize] = HOLE;
    }

    /// Puts `p` (in no list) at the head (most recent end) of upper list `l`.
    #[inline(always)]
    pub fn push_head(&mut self, l: u32, p: u32) {
        debug_assert_eq!(self.state[p as usize], OUT);
        debug_assert!(l < LOWER, "only an upper list takes new pages");
        let (k, i) = (pair_index(l), list_index(l));
        self.lens[i] += 1;
        let live = self.lens[i] + self.lens[i + LOWER as usize];
        if self.queues[k].v.len() >= self.queues[k].check_at {
            self.make_room(k, live);
        }
        let q = &mut self.queues[k];
        let pos = q.base + q.v.len() as u32;
        q.v.push(p);
        self.state[p as usize] = pack(l, pos);
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
        let at = self.tail_at(u)?;
        let i = list_index(u);
        self.lens[i] -= 1;
        self.lens[i + LOWER as usize] += 1;
        // The tail's entry is at the mark, which now passes it.
        let q = &mut self.queues[pair_index(u)];
        let t = q.v[at];
        self.state[t as usize] = pack(u | LOWER, q.base + at as u32);
        q.mid = at + 1;
        Some(t)
    }

    /// The page at the tail (least recent end) of list `l`, passing over the holes in
    /// front of it.
    #[inline(always)]
    pub fn tail(&mut self, l: u32) -> Option<u32> {
        let at = self.tail_at(l)?;
        let p = self.queues[pair_index(l)].v[at];
        debug_assert_eq!(self.state[p as usize] & NO_LIST, l);
        Some(p)
    }

    /// Where the tail of list `l` is in its pair's queue (`None`: the list is empty),
    /// the look's start moved past the holes in front of it. The list has a page, so its
    /// entry is ahead: the upper list's at or past the mark (holes past it stay for the
    /// lower list's look or a compaction to drop; the mark only moves over them), the
    /// lower list's before it, from the front.
    #[inline(always)]
    fn tail_at(&mut self, l: u32) -> Option<usize> {
        if self.lens[list_index(l)] == 0 {
            return None;
        }
        let q = &mut self.queues[pair_index(l)];
        let at = if l < LOWER { &mut q.mid } else { &mut q.front };
        while q.v[*at] == HOLE {
            *at += 1;
        }
        Some(*at)
    }

    /// Takes the tail of list `l` out, if any.
    #[inline(always)]
    pub fn pop_tail(&mut self, l: u32) -> Option<u32> {
        let at = self.tail_at(l)?;
        // The tail's entry is where the look stopped: it and the page's state are
        // written without a read of the state, which may be anywhere.
        self.lens[list_index(l)] -= 1;
        let t = std::mem::replace(&mut self.queues[pair_index(l)].v[at], HOLE);
        self.state[t as usize] = OUT;
        Some(t)
    }

    /// Room in pair `k`'s queue, whose lists hold `live` pages, for another entry: the
    /// holes are dropped and the entries renumbered when there are too many of them or
    /// the positions run out ([`Queues::compact`]); else the entries already passed are
    /// dropped when they are at least half of a full vector, or the vector grows. Each
    /// entry is so moved a bounded number of times on average, and the vector stays
    /// within a few times the queue.
    #[cold]
    fn make_room(&mut self, k: usize, live: usize) {
        let q = &mut self.queues[k];
        if overgrown(q.len(), live) || q.base as usize + q.v.len() >= self.position_limit as usize {
            self.compact(k);
        } else if 2 * q.front >= q.v.len() && q.front > 0 {
            q.drop_passed();
        }
        let q = &mut self.queues[k];
        if q.v.len() == q.v.capacity() {
            q.v.reserve(q.v.len().max(64));
        }
        q.check_at =
            q.v.capacity()
                .min((self.position_limit - q.base) as usize)
                .min(q.front + most_entries(live) + 1);
        assert!(
            (q.v.len() as u64) < self.position_limit as u64,
            "a pair of lists holds more than {} pages",
            self.position_limit
        );
    }

    /// Drops the holes of pair `k`'s queue, keeping the order of its entries and the
    /// mark's place among them, and numbers the entries from position 0, writing each
    /// page's new position in its state (an entry's list is known from its side of the
    /// mark, so the states are written, not read).
    #[cold]
    fn compact(&mut self, k: usize) {
        let q = &mut self.queues[k];
        let (upper, lower) = (k as u32, k as u32 | LOWER);
        let mid = q.mid;
        let mut kept = 0;
        for i in q.front..q.v.len() {
            if i == mid {
                q.mid = kept;
            }
            let p = q.v[i];
            if p != HOLE {
                let l = if i < mid { lower } else { upper };
                self.state[p as usize] = pack(l, kept as u32);
                q.v[kept] = p;
                kept += 1;
            }
        }
        if mid >= q.v.len() {
            q.mid = kept;
        }
        q.v.truncate(kept);
        q.front = 0;
        q.base = 0;
    }
}

/// A queue of pages (or holes), oldest first: a vector read from a moving front. A
/// push, a look and a pop index the vector directly, with none of a ring buffer's
/// wrapping; the passed prefix is dropped when the vector is full
/// ([`Queues::make_room`]).
#[derive(Clone, Debug, Default)]
struct Entries {
    v: Vec<u32>,
    /// Every entry before this is a hole.
    front: usize,
    /// A mark at or past `front` that its owner moves (see [`Queues`]); it keeps its
    /// place among the entries as passed ones are dropped and holes compacted.
    mid: usize,
    /// The position of `v[0]`: positions name entries however many passed ones are
    /// dropped from the vector.
    base: u32,
    /// The length of the vector at which [`Queues::make_room`] is due: it is full, its
    /// positions run out, or it may hold too many holes.
    check_at: usize,
}

impl Entries {
    /// An empty queue with room for `n` entries.
    fn with_capacity(n: usize) -> Entries {
        Entries {
            v: Vec::with_capacity(n),
            ..Entries::default()
        }
    }

    /// Entries in the queue.
    #[inline(always)]
    fn len(&self) -> usize {
        self.v.len() - self.front
    }

    /// Drops the entries before the front from the vector; positions stay.
    fn drop_passed(&mut self) {
        self.v.drain(..self.front);
        self.base += self.front as u32;
        self.mid -= self.front;
        self.front = 0;
    }
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

    /// A pair's queue stays within a few times the pages of its lists while pages come,
    /// move and go (holes are dropped, passed entries too), and its positions stay
    /// below the limit by renumbering.
    #[test]
    fn a_queue_stays_within_a_few_times_its_pages() {
        let pages = 2000u32;
        let mut q = Queues::new(pages as usize, 1, 4);
        q.position_limit = 100_000;
        let mut rng = crate::rng::Rng(7);
        for step in 0..400_000u32 {
            let s = rng.next();
            let p = (s % pages as u64) as u32;
            match (s >> 32) % 4 {
                0 if step % 3 == 0 => {
                    q.demote(0);
                }
                0 | 1 => {
                    q.pop_tail(if (s >> 40) & 1 == 1 { LOWER } else { 0 });
                }
                _ if q.list_of(p) == NONE => q.push_head(0, p),
                _ => q.move_to_head(0, p),
            }
            let e = &q.queues[0];
            let live = q.len(0) + q.len(LOWER);
            assert!(
                e.v.capacity() <= 2 * (8 * live + 4096) + 128,
                "{} entries' room for {live} pages",
                e.v.capacity()
            );
            assert!((e.base as usize + e.v.len()) <= 100_000);
        }
    }

    /// The same operations on the queues and on linked lists give the same tails and
    /// lengths, demotions included (on the linked lists, a move of the upper list's
    /// tail to the lower list's head), through the queues' compactions, the dropping of
    /// passed entries and, with a low limit on positions, many renumberings.
    #[test]
    fn queues_agree_with_linked_lists() {
        for limit in [5000, MAX_POSITION] {
            queues_agree_with_linked_lists_at(limit);
        }
    }

    fn queues_agree_with_linked_lists_at(limit: u32) {
        use crate::policy::list::Lists;
        let pages = 300u32;
        let mut q = Queues::new(pages as usize, MAX_PAIRS, 10);
        q.position_limit = limit;
        let mut pushed = 0;
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
                    pushed += 1;
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
        // Far more pushes than positions below the limit: renumbered many times.
        assert!(pushed > 10 * 5000);
        assert!(q
            .queues
            .iter()
            .all(|e| e.base as usize + e.v.len() <= limit as usize));
    }
}
