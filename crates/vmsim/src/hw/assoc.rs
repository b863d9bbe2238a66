//! A set-associative store of tagged entries with a replacement policy: the storage
//! behind every TLB array and page-walk cache.
//!
//! Keys, address-space ids and values live in flat parallel arrays (`set * ways + way`),
//! so a lookup touches one contiguous run of each and allocates nothing. Keys are kept
//! as two 32-bit halves beside the 32-bit ids, so a set of 4 or 8 ways is compared in
//! a few vector instructions (the compiler vectorises the fixed-width scan).

use super::machine::Replacement;

/// A key no real entry has.
pub const INVALID: u64 = u64::MAX;
/// The address-space id of a global entry: it matches every id.
pub const GLOBAL: u32 = u32::MAX;

const NOT_FOUND: usize = usize::MAX;

/// Finds the way of a set of exactly `W` ways that holds `key` for `asid`, preferring an
/// entry of that id to a global one. Every way is compared (no data-dependent branch
/// to mispredict); `W` is known, so the loop unrolls and vectorises.
#[inline(always)]
fn scan_fixed<const W: usize>(lo: &[u32], hi: &[u32], ids: &[u32], key: u64, asid: u32) -> usize {
    let (Ok(lo), Ok(hi), Ok(ids)) = (
        <&[u32; W]>::try_from(lo),
        <&[u32; W]>::try_from(hi),
        <&[u32; W]>::try_from(ids),
    ) else {
        return scan_any(lo, hi, ids, key, asid);
    };
    let (klo, khi) = (key as u32, (key >> 32) as u32);
    let mut exact = 0u32;
    let mut global = 0u32;
    for w in 0..W {
        let k = (lo[w] == klo) & (hi[w] == khi);
        exact |= ((k & (ids[w] == asid)) as u32) << w;
        global |= ((k & (ids[w] == GLOBAL)) as u32) << w;
    }
    pick(exact, global)
}

/// The way a scan found: the first matching entry of the address space, else the first
/// global one.
#[inline(always)]
fn pick(exact: u32, global: u32) -> usize {
    if exact != 0 {
        exact.trailing_zeros() as usize
    } else if global != 0 {
        global.trailing_zeros() as usize
    } else {
        NOT_FOUND
    }
}

#[inline(always)]
fn scan_any(lo: &[u32], hi: &[u32], ids: &[u32], key: u64, asid: u32) -> usize {
    let (klo, khi) = (key as u32, (key >> 32) as u32);
    let at = |want: u32| (0..lo.len()).find(|&w| lo[w] == klo && hi[w] == khi && ids[w] == want);
    at(asid).or_else(|| at(GLOBAL)).unwrap_or(NOT_FOUND)
}

/// Scans `W` ways (a multiple of 4) four at a time with SSE2 (part of the x86-64
/// baseline): per group, three loads, four compares, two ands and a mask extraction.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn scan_simd<const W: usize>(lo: &[u32], hi: &[u32], ids: &[u32], key: u64, asid: u32) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_castsi128_ps, _mm_cmpeq_epi32, _mm_loadu_si128,
        _mm_movemask_ps, _mm_set1_epi32,
    };
    debug_assert!(W % 4 == 0 && lo.len() >= W && hi.len() >= W && ids.len() >= W);
    if lo.len() < W || hi.len() < W || ids.len() < W {
        return scan_any(lo, hi, ids, key, asid);
    }
    // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics are available on
    // every x86-64 target. Each slice holds at least `W` u32s (checked above), so the 16
    // bytes loaded at `4 * g` are inside it; the loads are unaligned ones.
    let (exact, global) = unsafe {
        let klo = _mm_set1_epi32(key as u32 as i32);
        let khi = _mm_set1_epi32((key >> 32) as u32 as i32);
        let want = _mm_set1_epi32(asid as i32);
        let glob = _mm_set1_epi32(GLOBAL as i32);
        let mut exact = 0u32;
        let mut global = 0u32;
        for g in 0..W / 4 {
            let l = _mm_loadu_si128(lo.as_ptr().add(4 * g) as *const __m128i);
            let h = _mm_loadu_si128(hi.as_ptr().add(4 * g) as *const __m128i);
            let i = _mm_loadu_si128(ids.as_ptr().add(4 * g) as *const __m128i);
            let k = _mm_and_si128(_mm_cmpeq_epi32(l, klo), _mm_cmpeq_epi32(h, khi));
            let e = _mm_movemask_ps(_mm_castsi128_ps(_mm_and_si128(k, _mm_cmpeq_epi32(i, want))));
            let gl = _mm_movemask_ps(_mm_castsi128_ps(_mm_and_si128(k, _mm_cmpeq_epi32(i, glob))));
            exact |= (e as u32) << (4 * g);
            global |= (gl as u32) << (4 * g);
        }
        (exact, global)
    };
    pick(exact, global)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn scan_simd<const W: usize>(lo: &[u32], hi: &[u32], ids: &[u32], key: u64, asid: u32) -> usize {
    scan_fixed::<W>(lo, hi, ids, key, asid)
}

/// For an insert into a set of `W` ways (a multiple of 4, at most 32): bit `w` of the
/// first mask set where way `w` holds `key` for `asid` exactly, of the second where way
/// `w` is empty, four ways at a time with SSE2 (see [`scan_simd`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn insert_masks<const W: usize>(
    lo: &[u32],
    hi: &[u32],
    ids: &[u32],
    key: u64,
    asid: u32,
) -> (u32, u32) {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_castsi128_ps, _mm_cmpeq_epi32, _mm_loadu_si128,
        _mm_movemask_ps, _mm_set1_epi32,
    };
    if W % 4 != 0 || W > 32 || lo.len() < W || hi.len() < W || ids.len() < W {
        return insert_masks_any(lo, hi, ids, key, asid);
    }
    // SAFETY: SSE2 is part of the x86-64 baseline. Each slice holds at least `W` u32s
    // (checked above), so the 16 bytes loaded at `4 * g` for `g < W / 4` are inside it;
    // the loads are unaligned ones.
    unsafe {
        let klo = _mm_set1_epi32(key as u32 as i32);
        let khi = _mm_set1_epi32((key >> 32) as u32 as i32);
        let want = _mm_set1_epi32(asid as i32);
        let ilo = _mm_set1_epi32(INVALID as u32 as i32);
        let ihi = _mm_set1_epi32((INVALID >> 32) as u32 as i32);
        let (mut same, mut empty) = (0u32, 0u32);
        for g in 0..W / 4 {
            let l = _mm_loadu_si128(lo.as_ptr().add(4 * g) as *const __m128i);
            let h = _mm_loadu_si128(hi.as_ptr().add(4 * g) as *const __m128i);
            let i = _mm_loadu_si128(ids.as_ptr().add(4 * g) as *const __m128i);
            let k = _mm_and_si128(_mm_cmpeq_epi32(l, klo), _mm_cmpeq_epi32(h, khi));
            let s = _mm_movemask_ps(_mm_castsi128_ps(_mm_and_si128(k, _mm_cmpeq_epi32(i, want))));
            let e = _mm_and_si128(_mm_cmpeq_epi32(l, ilo), _mm_cmpeq_epi32(h, ihi));
            same |= (s as u32) << (4 * g);
            empty |= (_mm_movemask_ps(_mm_castsi128_ps(e)) as u32) << (4 * g);
        }
        (same, empty)
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn insert_masks<const W: usize>(
    lo: &[u32],
    hi: &[u32],
    ids: &[u32],
    key: u64,
    asid: u32,
) -> (u32, u32) {
    insert_masks_any(lo, hi, ids, key, asid)
}

/// [`insert_masks`] for any set of at most 32 ways, a way at a time.
#[inline(always)]
fn insert_masks_any(lo: &[u32], hi: &[u32], ids: &[u32], key: u64, asid: u32) -> (u32, u32) {
    let (klo, khi) = (key as u32, (key >> 32) as u32);
    let (ilo, ihi) = (INVALID as u32, (INVALID >> 32) as u32);
    let (mut same, mut empty) = (0u32, 0u32);
    for w in 0..lo.len().min(hi.len()).min(ids.len()).min(32) {
        same |= ((lo[w] == klo && hi[w] == khi && ids[w] == asid) as u32) << w;
        empty |= ((lo[w] == ilo && hi[w] == ihi) as u32) << w;
    }
    (same, empty)
}

/// Marks `way` of `set` used in a tree pseudo-LRU: every node on the way's path points
/// away from the half just used.
#[inline(always)]
fn plru_touch(tree: &mut [u64], set: usize, way: usize, ways: usize) {
    let depth = ways.trailing_zeros();
    let mut node = 1usize;
    let mut bits = tree[set];
    for d in (0..depth).rev() {
        let right = (way >> d) & 1;
        if right == 1 {
            bits &= !(1 << node);
        } else {
            bits |= 1 << node;
        }
        node = 2 * node + right;
    }
    tree[set] = bits;
}

/// [`scan_simd`] where `W` is a multiple of 4, else [`scan_fixed`].
#[inline(always)]
fn scan_simd_or_fixed<const W: usize>(
    lo: &[u32],
    hi: &[u32],
    ids: &[u32],
    key: u64,
    asid: u32,
) -> usize {
    if W % 4 == 0 {
        scan_simd::<W>(lo, hi, ids, key, asid)
    } else {
        scan_fixed::<W>(lo, hi, ids, key, asid)
    }
}

#[inline(always)]
fn scan(ways: usize, lo: &[u32], hi: &[u32], ids: &[u32], key: u64, asid: u32) -> usize {
    // The common widths first, as plain compares: a store's width never changes, so
    // these branches predict perfectly.
    if ways == 4 {
        scan_simd::<4>(lo, hi, ids, key, asid)
    } else if ways == 8 {
        scan_simd::<8>(lo, hi, ids, key, asid)
    } else {
        match ways {
            1 => scan_fixed::<1>(lo, hi, ids, key, asid),
            2 => scan_fixed::<2>(lo, hi, ids, key, asid),
            12 => scan_simd::<12>(lo, hi, ids, key, asid),
            16 => scan_simd::<16>(lo, hi, ids, key, asid),
            _ => scan_any(lo, hi, ids, key, asid),
        }
    }
}

/// Bit `w` set where way `w` holds `key`, whatever its id (at most 64 ways).
#[inline(always)]
fn key_mask_fixed<const W: usize>(lo: &[u32], hi: &[u32], key: u64) -> u64 {
    let (Ok(lo), Ok(hi)) = (<&[u32; W]>::try_from(lo), <&[u32; W]>::try_from(hi)) else {
        return key_mask_any(lo, hi, key);
    };
    let (klo, khi) = (key as u32, (key >> 32) as u32);
    let mut m = 0u64;
    for w in 0..W {
        m |= (((lo[w] == klo) & (hi[w] == khi)) as u64) << w;
    }
    m
}

fn key_mask_any(lo: &[u32], hi: &[u32], key: u64) -> u64 {
    let (klo, khi) = (key as u32, (key >> 32) as u32);
    let mut m = 0u64;
    for w in 0..lo.len().min(hi.len()).min(64) {
        m |= (((lo[w] == klo) & (hi[w] == khi)) as u64) << w;
    }
    m
}

/// [`key_mask_fixed`] at the set's width, unrolled for the common ones.
#[inline(always)]
fn key_mask(lo: &[u32], hi: &[u32], key: u64) -> u64 {
    match lo.len() {
        1 => key_mask_fixed::<1>(lo, hi, key),
        2 => key_mask_fixed::<2>(lo, hi, key),
        4 => key_mask_fixed::<4>(lo, hi, key),
        8 => key_mask_fixed::<8>(lo, hi, key),
        12 => key_mask_fixed::<12>(lo, hi, key),
        16 => key_mask_fixed::<16>(lo, hi, key),
        _ => key_mask_any(lo, hi, key),
    }
}

/// A set-associative array of `(key, asid) -> V` entries.
#[derive(Clone, Debug)]
pub struct SetAssoc<V> {
    ways: usize,
    set_mask: u64,
    set_bits: u32,
    /// Low and high halves of each slot's key ([`INVALID`] when empty).
    key_lo: Vec<u32>,
    key_hi: Vec<u32>,
    /// Each slot's address-space id ([`GLOBAL`] for a global entry).
    ids: Vec<u32>,
    vals: Vec<V>,
    /// The replacement policy.
    policy: Replacement,
    /// LRU: time of last use per slot. PLRU: tree bits per set (ways - 1 of them; bit `n`
    /// is heap node `n`; each points toward the half to evict from next). Random: empty.
    repl_state: Vec<u64>,
    /// LRU: the clock. Random: xorshift64* state.
    clock: u64,
    /// Valid entries (kept by `set_tag`): a store with none answers every probe and
    /// invalidation at once.
    valid: usize,
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
            key_lo: vec![INVALID as u32; n],
            key_hi: vec![(INVALID >> 32) as u32; n],
            ids: vec![0; n],
            vals: vec![V::default(); n],
            policy: replacement,
            repl_state,
            clock,
            valid: 0,
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

    /// Finds the way of the entry with `key` that matches `asid` (or is global) in the
    /// set at `base`, and marks it used.
    #[inline(always)]
    fn find(&mut self, base: usize, key: u64, asid: u32) -> Option<usize> {
        let end = base + self.ways;
        debug_assert!(end <= self.ids.len());
        // SAFETY: every caller computes `base` as `set_of(_) * ways`; `set_of` masks with
        // `set_mask = sets - 1`, and each array holds `sets * ways` slots, so
        // `base + ways` is within all three.
        let (lo, hi, ids) = unsafe {
            (
                self.key_lo.get_unchecked(base..end),
                self.key_hi.get_unchecked(base..end),
                self.ids.get_unchecked(base..end),
            )
        };
        let found = scan(self.ways, lo, hi, ids, key, asid);
        if found == NOT_FOUND {
            return None;
        }
        self.touch(base, found);
        Some(base + found)
    }

    /// Finds the entry with `key` that matches `asid` (or is global) in the set that
    /// `index_src` selects, marks it used, and returns its slot.
    #[inline(always)]
    pub fn lookup(&mut self, index_src: u64, key: u64, asid: u32) -> Option<usize> {
        if self.valid == 0 {
            return None;
        }
        self.find(self.set_of(index_src) * self.ways, key, asid)
    }

    /// Like [`SetAssoc::lookup`], returning the entry's value rather than its slot.
    #[inline(always)]
    pub fn lookup_value(&mut self, index_src: u64, key: u64, asid: u32) -> Option<V> {
        // The hit path of an L1: no emptiness check, which only a miss would gain from.
        let slot = self.find(self.set_of(index_src) * self.ways, key, asid)?;
        debug_assert!(slot < self.vals.len());
        // SAFETY: `find` returns `base + way` with `way < ways` and
        // `base + ways <= ids.len() == vals.len()`.
        Some(unsafe { *self.vals.get_unchecked(slot) })
    }

    /// Looks up a run of entries, `probe(i)` giving the `i`th one's (index source, key)
    /// (or `None` to stop), and hands each value found to `take`, until one misses or
    /// `take` refuses it. Returns how many were found and taken; each of those is marked
    /// used, in order, exactly as `lookup` would. The store's width must be `W`.
    ///
    /// This is the loop of a run of TLB hits: the store's shape and the LRU clock stay
    /// in registers for the whole run.
    #[inline(always)]
    pub fn lookup_run<const W: usize>(
        &mut self,
        n: usize,
        asid: u32,
        mut probe: impl FnMut(usize) -> Option<(u64, u64)>,
        mut take: impl FnMut(usize, &V) -> bool,
    ) -> usize {
        if self.ways != W || self.ids.len() < W {
            return 0;
        }
        let set_mask = self.set_mask;
        let policy = self.policy;
        let mut clock = self.clock;
        let (lo, hi, ids, vals) = (&self.key_lo, &self.key_hi, &self.ids, &self.vals);
        let state = &mut self.repl_state;
        let mut i = 0;
        while i < n {
            let Some((src, key)) = probe(i) else { break };
            let base = (src & set_mask) as usize * W;
            debug_assert!(base + W <= ids.len());
            // SAFETY: `set_mask = sets - 1` and every array holds `sets * W` slots, so
            // `base + W` is within each of them.
            let (l, h, d) = unsafe {
                (
                    lo.get_unchecked(base..base + W),
                    hi.get_unchecked(base..base + W),
                    ids.get_unchecked(base..base + W),
                )
            };
            let way = scan_simd_or_fixed::<W>(l, h, d, key, asid);
            if way == NOT_FOUND {
                break;
            }
            let slot = base + way;
            // SAFETY: `way < W`, so `slot` is inside the set checked above.
            if !take(i, unsafe { vals.get_unchecked(slot) }) {
                break;
            }
            match policy {
                Replacement::Lru => {
                    clock += 1;
                    debug_assert!(slot < state.len());
                    // SAFETY: LRU keeps one stamp per slot, and `slot` is a slot.
                    unsafe { *state.get_unchecked_mut(slot) = clock };
                }
                Replacement::Plru => plru_touch(state, base / W, way, W),
                Replacement::Random => {}
            }
            i += 1;
        }
        if policy == Replacement::Lru {
            self.clock = clock;
        }
        i
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
        (self.key(slot), self.ids[slot])
    }

    fn key(&self, slot: usize) -> u64 {
        self.key_lo[slot] as u64 | (self.key_hi[slot] as u64) << 32
    }

    fn set_tag(&mut self, slot: usize, key: u64, asid: u32) {
        let was = self.key(slot) != INVALID;
        let is = key != INVALID;
        self.valid = self.valid + is as usize - was as usize;
        self.key_lo[slot] = key as u32;
        self.key_hi[slot] = (key >> 32) as u32;
        self.ids[slot] = asid;
    }

    #[inline(always)]
    fn touch(&mut self, base: usize, way: usize) {
        match self.policy {
            Replacement::Lru => {
                self.clock += 1;
                debug_assert!(base + way < self.repl_state.len());
                // SAFETY: `base + way` is a slot of this store (see `find`), and LRU
                // keeps one stamp per slot.
                unsafe { *self.repl_state.get_unchecked_mut(base + way) = self.clock };
            }
            Replacement::Plru => plru_touch(&mut self.repl_state, base / self.ways, way, self.ways),
            Replacement::Random => {}
        }
    }

    /// The way the policy evicts from the full set at `base`.
    fn victim(&mut self, base: usize) -> usize {
        match self.policy {
            Replacement::Lru => {
                let s = &self.repl_state[base..base + self.ways];
                // The first of the least recently used ways, without a branch per way
                // (which way is oldest is a coin toss the predictor loses).
                let (mut best, mut oldest) = (0, u64::MAX);
                for (w, &t) in s.iter().enumerate() {
                    let older = t < oldest;
                    best = if older { w } else { best };
                    oldest = if older { t } else { oldest };
                }
                best
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
        let end = base + self.ways;
        // The way already holding (key, asid), else the first empty way, else the
        // policy's victim: for the common widths, both found in one pass of compares.
        let (klo, khi) = (key as u32, (key >> 32) as u32);
        let (ilo, ihi) = (INVALID as u32, (INVALID >> 32) as u32);
        let (lo, hi, ids) = (
            &self.key_lo[base..end],
            &self.key_hi[base..end],
            &self.ids[base..end],
        );
        let mut same = NOT_FOUND;
        let mut empty = NOT_FOUND;
        let masks = match self.ways {
            4 => Some(insert_masks::<4>(lo, hi, ids, key, asid)),
            8 => Some(insert_masks::<8>(lo, hi, ids, key, asid)),
            12 => Some(insert_masks::<12>(lo, hi, ids, key, asid)),
            16 => Some(insert_masks::<16>(lo, hi, ids, key, asid)),
            _ => None,
        };
        if let Some((s, e)) = masks {
            // The lowest way of each mask is the first a scan in way order finds.
            if s != 0 {
                same = s.trailing_zeros() as usize;
            } else if e != 0 {
                empty = e.trailing_zeros() as usize;
            }
        } else {
            for w in 0..lo.len().min(hi.len()).min(ids.len()) {
                if lo[w] == klo && hi[w] == khi && ids[w] == asid {
                    same = w;
                    break;
                }
                if empty == NOT_FOUND && lo[w] == ilo && hi[w] == ihi {
                    empty = w;
                }
            }
        }
        let way = if same != NOT_FOUND {
            same
        } else if empty != NOT_FOUND {
            empty
        } else {
            self.victim(base)
        };
        let slot = base + way;
        let old = self.tag(slot);
        let evicted = (old.0 != INVALID && old != (key, asid)).then(|| Evicted {
            key: old.0,
            asid: old.1,
            val: self.vals[slot],
        });
        self.set_tag(slot, key, asid);
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
        if self.valid == 0 {
            return 0;
        }
        let base = self.set_of(index_src) * self.ways;
        let mut n = 0;
        if self.ways <= 64 {
            // The ways holding `key`, found without a branch per way; usually none.
            let lo = &self.key_lo[base..base + self.ways];
            let hi = &self.key_hi[base..base + self.ways];
            let mut m = key_mask(lo, hi, key);
            while m != 0 {
                let slot = base + m.trailing_zeros() as usize;
                m &= m - 1;
                if asid_matches(self.ids[slot]) {
                    self.set_tag(slot, INVALID, 0);
                    n += 1;
                }
            }
            return n;
        }
        for slot in base..base + self.ways {
            let (k, a) = self.tag(slot);
            if k == key && asid_matches(a) {
                self.set_tag(slot, INVALID, 0);
                n += 1;
            }
        }
        n
    }

    /// Invalidates every valid entry for which `pred(key, asid)` holds. Returns how many.
    pub fn invalidate_where(&mut self, pred: impl Fn(u64, u32) -> bool) -> u32 {
        if self.valid == 0 {
            return 0;
        }
        // Empty slots are passed over with two compares: a flush of one address space
        // (a reclaim batch's shootdown) often finds most of a large array empty.
        let (ilo, ihi) = (INVALID as u32, (INVALID >> 32) as u32);
        let mut n = 0;
        let slots = self.ids.len().min(self.key_lo.len()).min(self.key_hi.len());
        for slot in 0..slots {
            let (lo, hi) = (self.key_lo[slot], self.key_hi[slot]);
            if lo == ilo && hi == ihi {
                continue;
            }
            if pred(lo as u64 | (hi as u64) << 32, self.ids[slot]) {
                self.key_lo[slot] = ilo;
                self.key_hi[slot] = ihi;
                self.ids[slot] = 0;
                n += 1;
            }
        }
        self.valid -= n as usize;
        n
    }

    /// Number of valid entries.
    pub fn occupancy(&self) -> usize {
        debug_assert_eq!(
            self.valid,
            (0..self.ids.len())
                .filter(|&s| self.key(s) != INVALID)
                .count()
        );
        self.valid
    }

    /// The valid entries of set `set`, as (way, key, asid, value).
    pub fn set_entries(&self, set: usize) -> impl Iterator<Item = (usize, u64, u32, V)> + '_ {
        let base = set * self.ways;
        (0..self.ways).filter_map(move |w| {
            let s = base + w;
            let (k, a) = self.tag(s);
            (k != INVALID).then(|| (w, k, a, self.vals[s]))
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

    /// The masks an insert takes at the common widths are the way-by-way ones: over
    /// sets of random keys, ids and empty ways, with the key sought in none, one or
    /// several ways (under other ids too).
    #[test]
    fn insert_masks_are_the_way_by_way_ones() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let key = next() % 4;
            let asid = (next() % 3) as u32;
            let set: Vec<(u64, u32)> = (0..16)
                .map(|_| match next() % 3 {
                    0 => (INVALID, 0),
                    _ => ((next() % 4) | ((next() % 2) << 40), (next() % 3) as u32),
                })
                .collect();
            let lo: Vec<u32> = set.iter().map(|e| e.0 as u32).collect();
            let hi: Vec<u32> = set.iter().map(|e| (e.0 >> 32) as u32).collect();
            let ids: Vec<u32> = set.iter().map(|e| e.1).collect();
            let want = |w: usize| insert_masks_any(&lo[..w], &hi[..w], &ids[..w], key, asid);
            assert_eq!(
                insert_masks::<4>(&lo[..4], &hi[..4], &ids[..4], key, asid),
                want(4)
            );
            assert_eq!(
                insert_masks::<8>(&lo[..8], &hi[..8], &ids[..8], key, asid),
                want(8)
            );
            assert_eq!(
                insert_masks::<12>(&lo[..12], &hi[..12], &ids[..12], key, asid),
                want(12)
            );
            assert_eq!(insert_masks::<16>(&lo, &hi, &ids, key, asid), want(16));
            let (same, empty) = want(16);
            for (w, e) in set.iter().enumerate() {
                assert_eq!(same >> w & 1 == 1, *e == (key, asid));
                assert_eq!(empty >> w & 1 == 1, e.0 == INVALID);
            }
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
