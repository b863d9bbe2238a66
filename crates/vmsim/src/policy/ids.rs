//! Dense ids for page numbers: the first page a stream names is 0, the next new one 1,
//! and so on, so that replacement policies keep their state in plain arrays.
//!
//! Page numbers below [`DIRECT`] (most synthetic traces', and block traces' offsets)
//! index a plain array of ids, allocated zeroed so that the host maps only the parts
//! a trace touches. Others go to an open-addressing table (linear probing, at most
//! half full) of 16-byte slots. A trace's page numbers are known ahead, so [`PageIds::map`] asks the host to
//! bring the slot of the page [`AHEAD`] references on into its cache while it looks up
//! the current one: on a table larger than the host's caches, lookups overlap instead
//! of waiting for memory one after another. Turning numbers into ids was most of
//! `vmsim policy`'s time on large traces with a general-purpose hash map.

use crate::hw::ram::{prefetch_at, prefetch_host};

/// "No page here", in a slot's id.
const EMPTY: u32 = u32::MAX;

/// How many references ahead [`PageIds::map`] prefetches.
pub const AHEAD: usize = 48;

/// Page numbers below this have their ids in a plain array.
pub const DIRECT: u64 = 1 << 22;

/// The most distinct pages: every id below [`EMPTY`].
pub const MAX_PAGES: usize = u32::MAX as usize - 1;

/// A page number of the table, its id ([`EMPTY`]: a free slot) and one more than the
/// index of its latest reference (0: none, or not followed).
#[derive(Clone, Copy, Debug)]
struct Slot {
    key: u64,
    id: u32,
    last: u32,
}

/// A free slot.
const EMPTY_SLOT: Slot = Slot {
    key: 0,
    id: EMPTY,
    last: 0,
};

/// Page numbers to dense ids, in order of first appearance.
#[derive(Clone, Debug)]
pub struct PageIds {
    /// One more than the id of each page number below [`DIRECT`] (0: none yet), and
    /// one more than the index of its latest reference (as in [`Slot`]); empty until
    /// such a number comes.
    direct: Vec<[u32; 2]>,
    slots: Vec<Slot>,
    /// `64 - log2(slots.len())`: a key's home slot is the top bits of its hash.
    shift: u32,
    /// Pages in the table (those not in `direct`).
    hashed: usize,
    pages: Vec<u64>,
}

impl Default for PageIds {
    fn default() -> PageIds {
        PageIds::new()
    }
}

/// Mixes a page number so that its top bits depend on all of its bits (numbers that
/// differ only in low or only in high bits still spread over the table).
#[inline(always)]
fn hash(key: u64) -> u64 {
    (key ^ (key >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

impl PageIds {
    /// An empty map.
    pub fn new() -> PageIds {
        let len = 1usize << 10;
        PageIds {
            direct: Vec::new(),
            slots: vec![EMPTY_SLOT; len],
            shift: 64 - len.trailing_zeros(),
            hashed: 0,
            pages: Vec::new(),
        }
    }

    /// Distinct pages so far.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether no page has been seen.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The page number of each id.
    pub fn pages(&self) -> &[u64] {
        &self.pages
    }

    /// [`PageIds::pages`], taken.
    pub fn into_pages(self) -> Vec<u64> {
        self.pages
    }

    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        (hash(key) >> self.shift) as usize
    }

    /// The id of `key`, a new one if it has none; `None` when [`MAX_PAGES`] pages have
    /// ids already.
    pub fn id(&mut self, key: u64) -> Option<u32> {
        self.find::<false>(key, 0).map(|(id, _)| id)
    }

    /// `key`'s id and, with `PREV`, its latest use before `now` (0: none), `now` then
    /// becoming its latest: [`PageIds::known`] for a page where pages seen before
    /// usually are, else the whole look (and a new id).
    #[inline(always)]
    fn lookup<const PREV: bool>(&mut self, key: u64, now: u32) -> Option<(u32, u32)> {
        match self.known::<PREV>(key, now) {
            Some(found) => Some(found),
            None => self.find::<PREV>(key, now),
        }
    }

    /// [`PageIds::lookup`] the whole way: probing on past the home slot, or giving a
    /// new id (a new page has no use before `now`).
    #[inline(never)]
    fn find<const PREV: bool>(&mut self, key: u64, now: u32) -> Option<(u32, u32)> {
        if key < DIRECT {
            if self.direct.is_empty() {
                self.direct = crate::hw::ram::huge_zeroed_vec(DIRECT as usize);
            }
            let e = self.direct[key as usize];
            if e[0] != 0 {
                if PREV {
                    self.direct[key as usize][1] = now;
                }
                return Some((e[0] - 1, e[1]));
            }
            let id = self.fresh(key)?;
            self.direct[key as usize] = [id + 1, now];
            return Some((id, 0));
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let s = self.slots[i];
            if s.id == EMPTY {
                break;
            }
            if s.key == key {
                if PREV {
                    self.slots[i].last = now;
                }
                return Some((s.id, s.last));
            }
            i = (i + 1) & mask;
        }
        let id = self.fresh(key)?;
        self.hashed += 1;
        self.slots[i] = Slot { key, id, last: now };
        if self.hashed * 2 > self.slots.len() {
            self.grow();
        }
        Some((id, 0))
    }

    /// The next id, given to `key`; `None` when every id is taken.
    #[inline(always)]
    fn fresh(&mut self, key: u64) -> Option<u32> {
        let id = self.pages.len();
        if id >= MAX_PAGES {
            return None;
        }
        self.pages.push(key);
        Some(id as u32)
    }

    /// [`PageIds::lookup`] of a page where a page seen before usually is: its entry of
    /// the direct array, or its home slot. The common case, kept small enough to be
    /// inlined into [`PageIds::map`]'s loop; anything else is [`PageIds::find`]'s.
    #[inline(always)]
    fn known<const PREV: bool>(&mut self, key: u64, now: u32) -> Option<(u32, u32)> {
        if key < DIRECT {
            let e = self.direct.get_mut(key as usize)?;
            let id = e[0].checked_sub(1)?;
            let before = if PREV {
                std::mem::replace(&mut e[1], now)
            } else {
                0
            };
            Some((id, before))
        } else {
            let home = self.home(key);
            let s = &mut self.slots[home];
            if s.key != key || s.id == EMPTY {
                return None;
            }
            let before = if PREV {
                std::mem::replace(&mut s.last, now)
            } else {
                0
            };
            Some((s.id, before))
        }
    }

    /// Hints the host to cache where `key`'s id is kept.
    #[inline(always)]
    fn prefetch(&self, key: u64) {
        if key < DIRECT {
            prefetch_at(&self.direct, key as usize);
        } else {
            prefetch_host(&self.slots[self.home(key)]);
        }
    }

    /// Appends the id of every key in `keys` to `out`. On `Err(i)`, `keys[i]` was the
    /// first that could not have one (too many pages); the ids before it were appended.
    pub fn map(&mut self, keys: &[u64], out: &mut Vec<u32>) -> Result<(), usize> {
        self.map_keys::<false>(keys, 0, out, &mut Vec::new())
    }

    /// [`PageIds::map`] of the references from index `t0` on, appending to `prev` one
    /// more than the index of each one's page's previous reference (0: its first; see
    /// [`super::trace::prev_uses`]). A page's latest use is kept beside its id, where
    /// the lookup has brought it into the host's cache already. Every reference must go
    /// through here for the uses to be right (not through [`PageIds::map`]), and the
    /// indices must stay below `u32::MAX`.
    pub fn map_with_prev(
        &mut self,
        keys: &[u64],
        t0: u64,
        out: &mut Vec<u32>,
        prev: &mut Vec<u32>,
    ) -> Result<(), usize> {
        prev.reserve(keys.len());
        self.map_keys::<true>(keys, t0, out, prev)
    }

    #[inline(always)]
    fn map_keys<const PREV: bool>(
        &mut self,
        keys: &[u64],
        t0: u64,
        out: &mut Vec<u32>,
        prev: &mut Vec<u32>,
    ) -> Result<(), usize> {
        out.reserve(keys.len());
        for (i, &key) in keys.iter().enumerate() {
            if let Some(&ahead) = keys.get(i + AHEAD) {
                self.prefetch(ahead);
            }
            let now = if PREV { (t0 + i as u64 + 1) as u32 } else { 0 };
            let (id, before) = self.lookup::<PREV>(key, now).ok_or(i)?;
            out.push(id);
            if PREV {
                prev.push(before);
            }
        }
        Ok(())
    }

    /// Doubles the table and puts every hashed page back, with its latest use.
    #[cold]
    fn grow(&mut self) {
        let len = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, crate::hw::ram::huge_vec(len, EMPTY_SLOT));
        self.shift = 64 - len.trailing_zeros();
        let mask = len - 1;
        for (j, s) in old.iter().enumerate() {
            if let Some(ahead) = old.get(j + AHEAD) {
                prefetch_host(&self.slots[self.home(ahead.key)]);
            }
            if s.id == EMPTY {
                continue;
            }
            let mut i = self.home(s.key);
            while self.slots[i].id != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashMap;

    /// A page found past its home slot keeps its latest use as one found there does.
    #[test]
    fn previous_uses_of_pages_past_their_home_slot() {
        let mut ids = PageIds::new();
        let a = 1u64 << 40;
        let same: Vec<u64> = (a..)
            .filter(|&k| ids.home(k) == ids.home(a))
            .take(3)
            .collect();
        let keys = [same[0], same[1], same[2], same[1], same[2], same[1]];
        let (mut out, mut prev) = (Vec::new(), Vec::new());
        ids.map_with_prev(&keys, 10, &mut out, &mut prev).unwrap();
        assert_eq!(out, [0, 1, 2, 1, 2, 1]);
        assert_eq!(prev, [0, 0, 0, 12, 13, 14]);
    }

    /// Ids are given in order of first appearance, whatever the numbers: sequential,
    /// strided by powers of two (which a weak hash would pile into a few slots), huge,
    /// and repeated; the table grows many times on the way.
    #[test]
    fn ids_follow_first_appearance() {
        let mut keys: Vec<u64> = (0..5000).collect();
        keys.extend((0..5000u64).map(|i| i << 32));
        keys.extend((0..5000u64).map(|i| u64::MAX - i * 4096));
        keys.extend((0..20000u64).map(|i| (i * 7919) % 15000));
        // Huge numbers again, some found past their home slot.
        keys.extend((0..20000u64).map(|i| ((i * 7919) % 5000) << 32));
        let mut ids = PageIds::new();
        let mut got = Vec::new();
        ids.map(&keys, &mut got).unwrap();
        let mut want = Vec::new();
        let mut seen = FxHashMap::default();
        for &k in &keys {
            let next = seen.len() as u32;
            want.push(*seen.entry(k).or_insert(next));
        }
        assert_eq!(got, want);
        assert_eq!(ids.len(), seen.len());
        for (id, &page) in ids.pages().iter().enumerate() {
            assert_eq!(seen[&page], id as u32);
        }
        // The previous uses kept beside the ids, block by block and through the
        // table's growth, are those worked out from the ids.
        let mut again = PageIds::new();
        let (mut ids2, mut prev) = (Vec::new(), Vec::new());
        for (b, block) in keys.chunks(777).enumerate() {
            again
                .map_with_prev(block, (b * 777) as u64, &mut ids2, &mut prev)
                .unwrap();
        }
        assert_eq!(ids2, want);
        let mut last = vec![0; seen.len()];
        let mut from_ids = Vec::new();
        crate::policy::trace::prev_uses(&want, 0, &mut last, &mut from_ids);
        assert_eq!(prev, from_ids);
        assert!(prev.iter().filter(|&&p| p > 0).count() > 5_000);
        // Looking up again gives the same ids and no new pages.
        let before = ids.len();
        assert_eq!(ids.id(u64::MAX), Some(want[10000]));
        assert_eq!(ids.len(), before);
    }
}
