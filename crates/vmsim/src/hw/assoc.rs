//! A set-associative store of tagged entries with a replacement policy: the storage
//! behind every TLB array and page-walk cache.
//!
//! Keys, address-space ids and values live in flat parallel arrays (`set * ways + way`),
//! so a lookup touches one contiguous run of keys and allocates nothing.

use super::machine::Replacement;

/// A key no real entry has.
pub const INVALID: u64 = u64::MAX;
/// The address-space id of a global entry: it matches every id.
pub const GLOBAL: u32 = u32::MAX;

/// The tag of one entry: its key and address-space id, side by side so a set scan reads
/// one contiguous run and compares both halves at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(16))]
struct Tag {
    key: u64,
    asid: u64,
}

const NOT_FOUND: usize = usize::MAX;

/// Scans a set of exactly `W` ways without branching on which way matches (that is
/// data-dependent and would mispredict); `W` is known, so the loop unrolls.
#[inline(always)]
fn scan_fixed<const W: usize>(set: &[Tag], want: Tag) -> usize {
    let Ok(set) = <&[Tag; W]>::try_from(set) else {
        return scan_any(set, want);
    };
    let mut found = NOT_FOUND;
    for (w, &t) in set.iter().enumerate() {
        // One test of both halves, so there is no early-out branch to mispredict.
        let same = ((t.key ^ want.key) | (t.asid ^ want.asid)) == 0;
        found = if same { w } else { found };
    }
    found
}

#[inline(always)]
fn scan_any(set: &[Tag], want: Tag) -> usize {
    set.iter().position(|&t| t == want).unwrap_or(NOT_FOUND)
}

#[inline(always)]
fn scan(set: &[Tag], ways: usize, want: Tag) -> usize {
    match ways {
        1 => scan_fixed::<1>(set, want),
        2 => scan_fixed::<2>(set, want),
        4 => scan_fixed::<4>(set, want),
        8 => scan_fixed::<8>(set, want),
        12 => scan_fixed::<12>(set, want),
        16 => scan_fixed::<16>(set, want),
        _ => scan_any(set, want),
    }
}

/// A set-associative array of `(key, asid) -> V` entries.
#[derive(Clone, Debug)]
pub struct SetAssoc<V> {
    ways: usize,
    set_mask: u64,
    set_bits: u32,
    tags: Vec<Tag>,
    vals: Vec<V>,
    /// The replacement policy.
    policy: Replacement,
    /// LRU: time of last use per slot. PLRU: tree bits per set (ways - 1 of them; bit `n`
    /// is heap node `n`; each points toward the half to evict from next). Random: empty.
    repl_state: Vec<u64>,
    /// LRU: the clock. Random: xorshift64* state.
    clock: u64,
    /// Valid global entries: while there are none, a lookup makes one scan, not two.
    nr_global: usize,
}

/// An entry pushed out by an insertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evicted<V> {
    /// Its key.
    pub key: u64,
    /// Its address-space id ([`GLOBAL`] for a global entry).
    pub asid: u32,
    /// Its value.
    pub val: V,
}

impl<V: Copy + Default> SetAssoc<V> {
    /// An empty store of `entries` entries in sets of `ways` (validated by the machine
    /// description: `entries / ways` is a power of two; PLRU ways are a power of two).
    pub fn new(entries: u32, ways: u32, replacement: Replacement, seed: u64) -> Self {
        let sets = (entries / ways) as u64;
        let n = entries as usize;
        let (repl_state, clock) = match replacement {
            Replacement::Lru => (vec![0; n], 0),
            Replacement::Plru => (vec![0; sets as usize], 0),
            Replacement::Random => (Vec::new(), seed | 1),
        };
        SetAssoc {
            ways: ways as usize,
            set_mask: sets - 1,
            set_bits: sets.trailing_zeros(),
            tags: vec![
                Tag {
                    key: INVALID,
                    asid: 0
                };
                n
            ],
            nr_global: 0,
            vals: vec![V::default(); n],
            policy: replacement,
            repl_state,
            clock,
        }
    }

    /// Number of ways per set.
    pub fn ways(&self) -> usize {
        self.ways
    }

    /// Number of bits of the index source that select the set.
    pub fn set_bits(&self) -> u32 {
        self.set_bits
    }

    /// The set that `index_src` selects.
    #[inline(always)]
    pub fn set_of(&self, index_src: u64) -> usize {
        (index_src & self.set_mask) as usize
    }

    /// The ways of the set starting at slot `base`.
    #[inline(always)]
    fn set_at(&self, base: usize) -> &[Tag] {
        debug_assert!(base + self.ways <= self.tags.len());
        // SAFETY: every caller computes `base` as `set_of(_) * ways`; `set_of` masks with
        // `set_mask = sets - 1`, and `tags` holds `sets * ways` entries, so
        // `base + ways <= tags.len()`.
        unsafe { self.tags.get_unchecked(base..base + self.ways) }
    }

    /// Finds the way of the entry with `key` that matches `asid` (or is global) in the
    /// set at `base`, and marks it used.
    #[inline(always)]
    fn find(&mut self, base: usize, key: u64, asid: u32) -> Option<usize> {
        let set = self.set_at(base);
        let mut found = scan(
            set,
            self.ways,
            Tag {
                key,
                asid: asid as u64,
            },
        );
        if found == NOT_FOUND {
            if self.nr_global == 0 {
                return None;
            }
            found = scan(
                set,
                self.ways,
                Tag {
                    key,
                    asid: GLOBAL as u64,
                },
            );
            if found == NOT_FOUND {
                return None;
            }
        }
        self.touch(base, found);
        Some(base + found)
    }

    /// Finds the entry with `key` that matches `asid` (or is global) in the set that
    /// `index_src` selects, marks it used, and returns its slot.
    #[inline(always)]
    pub fn lookup(&mut self, index_src: u64, key: u64, asid: u32) -> Option<usize> {
        self.find(self.set_of(index_src) * self.ways, key, asid)
    }

    /// Like [`SetAssoc::lookup`], returning the entry's value rather than its slot.
    #[inline(always)]
    pub fn lookup_value(&mut self, index_src: u64, key: u64, asid: u32) -> Option<V> {
        let slot = self.lookup(index_src, key, asid)?;
        debug_assert!(slot < self.vals.len());
        // SAFETY: `find` returns `base + way` with `way < ways` and
        // `base + ways <= tags.len() == vals.len()`.
        Some(unsafe { *self.vals.get_unchecked(slot) })
    }

    /// The value in `slot`.
    #[inline(always)]
    pub fn get(&self, slot: usize) -> V {
        self.vals[slot]
    }

    /// The value in `slot`, to change in place.
    #[inline(always)]
    pub fn get_mut(&mut self, slot: usize) -> &mut V {
        &mut self.vals[slot]
    }

    /// The key and address-space id in `slot`.
    pub fn tag(&self, slot: usize) -> (u64, u32) {
        (self.tags[slot].key, self.tags[slot].asid as u32)
    }

    fn set_tag(&mut self, slot: usize, t: Tag) {
        let old = self.tags[slot];
        if old.key != INVALID && old.asid == GLOBAL as u64 {
            self.nr_global -= 1;
        }
        if t.key != INVALID && t.asid == GLOBAL as u64 {
            self.nr_global += 1;
        }
        self.tags[slot] = t;
    }

    #[inline(always)]
    fn touch(&mut self, base: usize, way: usize) {
        match self.policy {
            Replacement::Lru => {
                self.clock += 1;
                debug_assert!(base + way < self.repl_state.len());
                // SAFETY: `base + way` is a slot of this store (see `set_at`), and LRU
                // keeps one stamp per slot.
                unsafe { *self.repl_state.get_unchecked_mut(base + way) = self.clock };
            }
            Replacement::Plru => {
                let tree = &mut self.repl_state;
                let set = base / self.ways;
                let depth = self.ways.trailing_zeros();
                let mut node = 1usize;
                let mut bits = tree[set];
                for d in (0..depth).rev() {
                    let right = (way >> d) & 1;
                    // Point away from the half just used.
                    if right == 1 {
                        bits &= !(1 << node);
                    } else {
                        bits |= 1 << node;
                    }
                    node = 2 * node + right;
                }
                tree[set] = bits;
            }
            Replacement::Random => {}
        }
    }

    fn victim(&mut self, base: usize) -> usize {
        if let Some(w) = self.tags[base..base + self.ways]
            .iter()
            .position(|t| t.key == INVALID)
        {
            return w;
        }
        match self.policy {
            Replacement::Lru => {
                let s = &self.repl_state[base..base + self.ways];
                (0..s.len()).min_by_key(|&w| s[w]).unwrap_or(0)
            }
            Replacement::Plru => {
                let bits = self.repl_state[base / self.ways];
                let mut node = 1usize;
                let mut way = 0usize;
                for _ in 0..self.ways.trailing_zeros() {
                    let right = ((bits >> node) & 1) as usize;
                    way = 2 * way + right;
                    node = 2 * node + right;
                }
                way
            }
            Replacement::Random => {
                let state = &mut self.clock;
                *state ^= *state >> 12;
                *state ^= *state << 25;
                *state ^= *state >> 27;
                let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
                ((r >> 32) % self.ways as u64) as usize
            }
        }
    }

    /// Puts an entry in the set that `index_src` selects, replacing an entry with the same
    /// key and id if there is one, else an invalid way, else the policy's victim. Returns
    /// the slot used and the valid entry it pushed out, if any.
    pub fn insert(
        &mut self,
        index_src: u64,
        key: u64,
        asid: u32,
        val: V,
    ) -> (usize, Option<Evicted<V>>) {
        let base = self.set_of(index_src) * self.ways;
        let way = (0..self.ways)
            .find(|&w| {
                self.tags[base + w]
                    == Tag {
                        key,
                        asid: asid as u64,
                    }
            })
            .unwrap_or_else(|| self.victim(base));
        let slot = base + way;
        let old = self.tags[slot];
        let new = Tag {
            key,
            asid: asid as u64,
        };
        let evicted = (old.key != INVALID && old != new).then(|| Evicted {
            key: old.key,
            asid: old.asid as u32,
            val: self.vals[slot],
        });
        self.set_tag(slot, new);
        self.vals[slot] = val;
        self.touch(base, way);
        (slot, evicted)
    }

    /// Invalidates the entries with `key` in the set `index_src` selects whose id
    /// satisfies `asid_matches`. Returns how many.
    pub fn invalidate_key(
        &mut self,
        index_src: u64,
        key: u64,
        asid_matches: impl Fn(u32) -> bool,
    ) -> u32 {
        let base = self.set_of(index_src) * self.ways;
        let mut n = 0;
        for slot in base..base + self.ways {
            let t = self.tags[slot];
            if t.key == key && asid_matches(t.asid as u32) {
                self.set_tag(
                    slot,
                    Tag {
                        key: INVALID,
                        asid: 0,
                    },
                );
                n += 1;
            }
        }
        n
    }

    /// Invalidates every valid entry for which `pred(key, asid)` holds. Returns how many.
    pub fn invalidate_where(&mut self, pred: impl Fn(u64, u32) -> bool) -> u32 {
        let mut n = 0;
        for slot in 0..self.tags.len() {
            let t = self.tags[slot];
            if t.key != INVALID && pred(t.key, t.asid as u32) {
                self.set_tag(
                    slot,
                    Tag {
                        key: INVALID,
                        asid: 0,
                    },
                );
                n += 1;
            }
        }
        n
    }

    /// Number of valid entries.
    pub fn occupancy(&self) -> usize {
        self.tags.iter().filter(|t| t.key != INVALID).count()
    }

    /// The valid entries of set `set`, as (way, key, asid, value).
    pub fn set_entries(&self, set: usize) -> impl Iterator<Item = (usize, u64, u32, V)> + '_ {
        let base = set * self.ways;
        (0..self.ways).filter_map(move |w| {
            let s = base + w;
            let t = self.tags[s];
            (t.key != INVALID).then(|| (w, t.key, t.asid as u32, self.vals[s]))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(sa: &mut SetAssoc<u32>, keys: &[u64]) {
        for &k in keys {
            sa.insert(0, k, 0, k as u32);
        }
    }

    #[test]
    fn lru_evicts_least_recently_used() {
        let mut sa = SetAssoc::<u32>::new(4, 4, Replacement::Lru, 1);
        fill(&mut sa, &[1, 2, 3, 4]);
        assert!(sa.lookup(0, 1, 0).is_some());
        let (_, ev) = sa.insert(0, 5, 0, 5);
        assert_eq!(ev.map(|e| e.key), Some(2));
        assert!(sa.lookup(0, 2, 0).is_none());
        assert!(sa.lookup(0, 1, 0).is_some());
    }

    #[test]
    fn tree_plru_follows_the_tree() {
        let mut sa = SetAssoc::<u32>::new(4, 4, Replacement::Plru, 1);
        fill(&mut sa, &[10, 11, 12, 13]);
        // After touching ways 0,1,2,3 in order the tree points at way 0.
        let (slot, ev) = sa.insert(0, 14, 0, 14);
        assert_eq!((slot, ev.map(|e| e.key)), (0, Some(10)));
        // Way 0 was just used; left half used -> victim in right half; way 2 used after 3? No:
        // order was 1,2,3 then 0, so within the right half (2,3) way 2 is older.
        let (slot, ev) = sa.insert(0, 15, 0, 15);
        assert_eq!((slot, ev.map(|e| e.key)), (2, Some(12)));
    }

    #[test]
    fn random_is_seeded() {
        let run = |seed| {
            let mut sa = SetAssoc::<u32>::new(8, 8, Replacement::Random, seed);
            (0..100u64)
                .map(|k| sa.insert(0, k, 0, 0).0)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn asids_and_globals() {
        let mut sa = SetAssoc::<u32>::new(8, 2, Replacement::Lru, 1);
        sa.insert(5, 5, 1, 100);
        sa.insert(6, 6, GLOBAL, 200);
        assert!(sa.lookup(5, 5, 1).is_some());
        assert!(sa.lookup(5, 5, 2).is_none());
        assert!(
            sa.lookup(6, 6, 2).is_some(),
            "global entries match every id"
        );
        assert_eq!(sa.invalidate_where(|_, a| a != GLOBAL), 1);
        assert_eq!(sa.occupancy(), 1);
        assert_eq!(sa.invalidate_key(6, 6, |_| true), 1);
        assert_eq!(sa.occupancy(), 0);
    }

    #[test]
    fn sets_are_selected_by_low_bits() {
        let mut sa = SetAssoc::<u32>::new(8, 2, Replacement::Lru, 1);
        assert_eq!(sa.set_bits(), 2);
        sa.insert(1, 100, 0, 1);
        sa.insert(5, 200, 0, 2);
        sa.insert(9, 300, 0, 3); // same set (1): evicts the LRU of the set
        assert_eq!(sa.set_entries(1).count(), 2);
        assert_eq!(sa.set_entries(0).count(), 0);
        assert!(sa.lookup(1, 100, 0).is_none());
    }
}
