//! Dense ids for page numbers: the first page a stream names is 0, the next new one 1,
//! and so on, so that replacement policies keep their state in plain arrays.
//!
//! Page numbers go to an open-addressing table (linear probing, at most half full) of
//! 16-byte slots, allocated zeroed (a zero slot is free) so that growing it writes
//! nothing the host has not cleared already. Once [`DENSE`] distinct numbers below
//! [`DIRECT`] have come (most synthetic traces', and block traces' offsets), those
//! numbers move to a plain array of ids instead, indexed by the number: one load
//! where the table takes a hash and a probe. The array waits for that many because
//! it spans 32 MiB of huge pages, which a trace that names a few hundred small
//! numbers among large ones would pay for in page clearing many times over. A trace's
//! page numbers are known ahead, so [`PageIds::map`] asks the host to bring the place
//! of the page [`AHEAD`] references on into its cache while it looks up the current
//! one: on a table larger than the host's caches, lookups overlap instead of waiting
//! for memory one after another. Turning numbers into ids was most of `vmsim
//! policy`'s time on large traces with a general-purpose hash map.

use crate::hw::ram::{prefetch_at, prefetch_host};

/// How many references ahead [`PageIds::map`] prefetches.
pub const AHEAD: usize = 48;

/// Page numbers below this have their ids in a plain array, once [`DENSE`] of them
/// have come.
pub const DIRECT: u64 = 1 << 22;

/// Distinct page numbers below [`DIRECT`] the table takes before they move to the
/// plain array (one in 256 of its entries used).
pub const DENSE: usize = 1 << 14;

/// The most distinct pages: ids below `u32::MAX - 1`, so that one more than any id
/// fits a `u32`.
pub const MAX_PAGES: usize = u32::MAX as usize - 1;

/// Slots of a new table.
const FIRST_SLOTS: usize = 1 << 14;

/// A slot of the table: a page number, then one more than its id (0: a free slot) in
/// the low half of the second word and one more than the index of its latest
/// reference (0: none, or not followed) in the high half. Plain words, so that a
/// table comes zeroed from the host, untouched until used.
type Slot = [u64; 2];

/// One more than the id in a slot (0: free).
#[inline(always)]
fn id1(s: &Slot) -> u32 {
    s[1] as u32
}

/// One more than the index of the latest reference in a slot (0: none).
#[inline(always)]
fn last(s: &Slot) -> u32 {
    (s[1] >> 32) as u32
}

/// A slot for page number `key`, `id1` and `last` as in [`Slot`].
#[inline(always)]
fn slot(key: u64, id1: u32, last: u32) -> Slot {
    [key, u64::from(id1) | u64::from(last) << 32]
}

/// Sets the latest use in a slot to `now` and returns the one it held.
#[inline(always)]
fn swap_last(s: &mut Slot, now: u32) -> u32 {
    let before = last(s);
    s[1] = u64::from(id1(s)) | u64::from(now) << 32;
    before
}

/// Page numbers to dense ids, in order of first appearance.
#[derive(Clone, Debug)]
pub struct PageIds {
    /// One more than the id of each page number below [`DIRECT`] (0: none yet), and
    /// one more than the index of its latest reference (as in [`Slot`]); empty until
    /// [`DENSE`] such numbers have come, and then the only home of those numbers.
    direct: Vec<[u32; 2]>,
    slots: Vec<Slot>,
    /// `64 - log2(slots.len())`: a key's home slot is the top bits of its hash.
    shift: u32,
    /// Pages in the table (those not in `direct`).
    hashed: usize,
    /// Pages in the table whose numbers are below [`DIRECT`].
    low: usize,
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

/// Where a look for a page ended when the page has no id yet.
enum Missing {
    /// In the plain array.
    Direct,
    /// At this free slot of the table, where the page goes.
    Slot(usize),
}

impl PageIds {
    /// An empty map.
    pub fn new() -> PageIds {
        PageIds {
            direct: Vec::new(),
            slots: crate::hw::ram::huge_zeroed_vec(FIRST_SLOTS),
            shift: 64 - FIRST_SLOTS.trailing_zeros(),
            hashed: 0,
            low: 0,
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
        self.lookup::<false>(key, 0).map(|(id, _)| id)
    }

    /// `key`'s id and, with `PREV`, its latest use before `now` (0: none), `now` then
    /// becoming its latest; a page seen for the first time is given the next id
    /// ([`PageIds::add`], out of line). `None` when every id is taken.
    #[inline(always)]
    fn lookup<const PREV: bool>(&mut self, key: u64, now: u32) -> Option<(u32, u32)> {
        match self.known::<PREV>(key, now) {
            Ok(found) => Some(found),
            Err(missing) => self.add(key, missing, now),
        }
    }

    /// [`PageIds::lookup`] of a page seen before: its entry of the plain array, or its
    /// slot along its probe from its home slot; else where the look ended.
    #[inline(always)]
    fn known<const PREV: bool>(&mut self, key: u64, now: u32) -> Result<(u32, u32), Missing> {
        // (A number is compared whole before it indexes: on a 32-bit host `as usize`
        // would cut a large one down to a small one.)
        if key < self.direct.len() as u64 {
            let e = &mut self.direct[key as usize];
            let id = e[0].checked_sub(1).ok_or(Missing::Direct)?;
            let before = if PREV {
                std::mem::replace(&mut e[1], now)
            } else {
                0
            };
            return Ok((id, before));
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let s = &mut self.slots[i];
            if id1(s) == 0 {
                return Err(Missing::Slot(i));
            }
            if s[0] == key {
                let before = if PREV { swap_last(s, now) } else { 0 };
                return Ok((id1(s) - 1, before));
            }
            i = (i + 1) & mask;
        }
    }

    /// Gives `key`, seen for the first time, the next id, where [`PageIds::known`]'s
    /// look ended; `None` when every id is taken. A new page has no use before `now`.
    #[cold]
    #[inline(never)]
    fn add(&mut self, key: u64, missing: Missing, now: u32) -> Option<(u32, u32)> {
        let id = self.pages.len();
        if id >= MAX_PAGES {
            return None;
        }
        self.pages.push(key);
        let id1 = id as u32 + 1;
        match missing {
            Missing::Direct => self.direct[key as usize] = [id1, now],
            Missing::Slot(i) => {
                self.slots[i] = slot(key, id1, now);
                self.hashed += 1;
                if key < DIRECT {
                    self.low += 1;
                }
                if self.low >= DENSE && self.direct.is_empty() {
                    self.direct = crate::hw::ram::huge_zeroed_vec(DIRECT as usize);
                    self.rebuild(self.slots.len());
                } else if self.hashed * 2 > self.slots.len() {
                    self.rebuild(self.slots.len() * 2);
                }
            }
        }
        Some((id as u32, 0))
    }

    /// Hints the host to cache where `key`'s id is kept.
    #[inline(always)]
    fn prefetch(&self, key: u64) {
        if key < self.direct.len() as u64 {
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
        // The outputs are sized first and written by index: pushing checked the room
        // twice a reference.
        let (start, n) = (out.len(), keys.len());
        let start_prev = prev.len();
        out.resize(start + n, 0);
        if PREV {
            prev.resize(start_prev + n, 0);
        }
        let ids = &mut out[start..];
        let uses: &mut [u32] = if PREV {
            &mut prev[start_prev..]
        } else {
            &mut []
        };
        for (i, &key) in keys.iter().enumerate() {
            if let Some(&ahead) = keys.get(i + AHEAD) {
                self.prefetch(ahead);
            }
            let now = if PREV { (t0 + i as u64 + 1) as u32 } else { 0 };
            let Some((id, before)) = self.lookup::<PREV>(key, now) else {
                out.truncate(start + i);
                if PREV {
                    prev.truncate(start_prev + i);
                }
                return Err(i);
            };
            ids[i] = id;
            if PREV {
                uses[i] = before;
            }
        }
        Ok(())
    }

    /// Puts every hashed page, with its latest use, into a new table of `len` slots,
    /// or into the plain array if there is one and its number is below [`DIRECT`].
    #[cold]
    fn rebuild(&mut self, len: usize) {
        let old = std::mem::replace(&mut self.slots, crate::hw::ram::huge_zeroed_vec(len));
        self.shift = 64 - len.trailing_zeros();
        let mask = len - 1;
        let direct = self.direct.len() as u64;
        for (j, s) in old.iter().enumerate() {
            if let Some(ahead) = old.get(j + AHEAD) {
                if ahead[0] >= direct {
                    prefetch_host(&self.slots[self.home(ahead[0])]);
                }
            }
            if id1(s) == 0 {
                continue;
            }
            if s[0] < direct {
                self.direct[s[0] as usize] = [id1(s), last(s)];
                self.hashed -= 1;
                self.low -= 1;
                continue;
            }
            let mut i = self.home(s[0]);
            while id1(&self.slots[i]) != 0 {
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
        let ids = check_ids(&keys);
        assert!(ids.direct.is_empty(), "{} small numbers", ids.low);
    }

    /// Small numbers move from the table to the plain array once [`DENSE`] of them have
    /// come, taking their ids and latest uses along, and the numbers left in the table
    /// are still found; ids and uses stay those of first appearance.
    #[test]
    fn small_numbers_move_to_the_plain_array() {
        let spread = DENSE as u64 + 20_000;
        let mut keys = Vec::new();
        for i in 0..3 * spread {
            keys.push((i * 7919) % spread);
            if i % 3 == 0 {
                keys.push(((i / 3 * 31) % 9_000 + 1) << 40);
            }
        }
        let ids = check_ids(&keys);
        assert_eq!(ids.direct.len() as u64, DIRECT);
        assert_eq!(ids.low, 0);
        assert_eq!(ids.hashed, 9_000);
    }

    /// Maps `keys` whole and in blocks with previous uses, checks the ids against a
    /// general-purpose map's order of first appearance and the uses against
    /// [`crate::policy::trace::prev_uses`], and returns the map.
    fn check_ids(keys: &[u64]) -> PageIds {
        let mut ids = PageIds::new();
        let mut got = Vec::new();
        ids.map(keys, &mut got).unwrap();
        let mut want = Vec::new();
        let mut seen = FxHashMap::default();
        for &k in keys {
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
        for i in [0, keys.len() / 2, keys.len() - 1] {
            assert_eq!(ids.id(keys[i]), Some(want[i]));
        }
        assert_eq!(ids.len(), before);
        ids
    }
}
