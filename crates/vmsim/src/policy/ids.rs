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

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: u64,
    id: u32,
}

/// Page numbers to dense ids, in order of first appearance.
#[derive(Clone, Debug)]
pub struct PageIds {
    /// One more than the id of each page number below [`DIRECT`] (0: none yet);
    /// empty until such a number comes.
    direct: Vec<u32>,
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
            slots: vec![Slot { key: 0, id: EMPTY }; len],
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
    #[inline(never)]
    pub fn id(&mut self, key: u64) -> Option<u32> {
        if key < DIRECT {
            return self.direct_id(key as usize);
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let s = self.slots[i];
            if s.id == EMPTY {
                break;
            }
            if s.key == key {
                return Some(s.id);
            }
            i = (i + 1) & mask;
        }
        let id = self.fresh(key)?;
        self.hashed += 1;
        self.slots[i] = Slot { key, id };
        if self.hashed * 2 > self.slots.len() {
            self.grow();
        }
        Some(id)
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

    #[inline(always)]
    fn direct_id(&mut self, key: usize) -> Option<u32> {
        if self.direct.is_empty() {
            self.direct = vec![0; DIRECT as usize];
        }
        let d = self.direct[key];
        if d != 0 {
            return Some(d - 1);
        }
        let id = self.fresh(key as u64)?;
        self.direct[key] = id + 1;
        Some(id)
    }

    /// The id of `key` when it is where a page seen before usually is: its entry of
    /// the direct array, or its home slot. The common case, kept small enough to be
    /// inlined into [`PageIds::map`]'s loop; anything else is [`PageIds::id`]'s.
    #[inline(always)]
    fn known(&self, key: u64) -> Option<u32> {
        if key < DIRECT {
            let d = *self.direct.get(key as usize)?;
            d.checked_sub(1)
        } else {
            let s = self.slots[self.home(key)];
            (s.key == key && s.id != EMPTY).then_some(s.id)
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
    #[inline]
    pub fn map(&mut self, keys: &[u64], out: &mut Vec<u32>) -> Result<(), usize> {
        out.reserve(keys.len());
        for (i, &key) in keys.iter().enumerate() {
            if let Some(&ahead) = keys.get(i + AHEAD) {
                self.prefetch(ahead);
            }
            let id = match self.known(key) {
                Some(id) => id,
                None => self.id(key).ok_or(i)?,
            };
            out.push(id);
        }
        Ok(())
    }

    /// Doubles the table and puts every hashed page back (in id order, from `pages`).
    #[cold]
    fn grow(&mut self) {
        let len = self.slots.len() * 2;
        self.slots = crate::hw::ram::huge_vec(len, Slot { key: 0, id: EMPTY });
        self.shift = 64 - len.trailing_zeros();
        let mask = len - 1;
        for (id, &key) in self.pages.iter().enumerate() {
            if let Some(&ahead) = self.pages.get(id + AHEAD) {
                prefetch_host(&self.slots[self.home(ahead)]);
            }
            if key < DIRECT {
                continue;
            }
            let mut i = self.home(key);
            while self.slots[i].id != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = Slot { key, id: id as u32 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashMap;

    /// Ids are given in order of first appearance, whatever the numbers: sequential,
    /// strided by powers of two (which a weak hash would pile into a few slots), huge,
    /// and repeated; the table grows many times on the way.
    #[test]
    fn ids_follow_first_appearance() {
        let mut keys: Vec<u64> = (0..5000).collect();
        keys.extend((0..5000u64).map(|i| i << 32));
        keys.extend((0..5000u64).map(|i| u64::MAX - i * 4096));
        keys.extend((0..20000u64).map(|i| (i * 7919) % 15000));
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
        // Looking up again gives the same ids and no new pages.
        let before = ids.len();
        assert_eq!(ids.id(u64::MAX), Some(want[10000]));
        assert_eq!(ids.len(), before);
    }
}
