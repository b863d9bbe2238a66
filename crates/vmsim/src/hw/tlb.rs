//! Translation lookaside buffers.
//!
//! A [`Tlb`] is one level of the hierarchy serving one kind of access (L1i, L1d, a
//! unified L2). It is made of arrays, each holding one or more page sizes; a lookup
//! probes every array for every page size it holds, as a split L1 DTLB probes its 4K, 2M
//! and 1G arrays in parallel. An entry's key is its virtual page number at its own page
//! size with the page-table level in the low four bits, so pages of different sizes never
//! alias; the set is chosen by the low bits of that page number.

use super::assoc::{SetAssoc, GLOBAL};
use super::machine::{Holds, TlbSpec};
use super::paging::{Paging, MAX_LEVELS};
use crate::addr::VirtAddr;

/// Permission bits cached in a TLB entry.
pub mod perm {
    /// Readable.
    pub const R: u8 = 1 << 0;
    /// Writable.
    pub const W: u8 = 1 << 1;
    /// Executable.
    pub const X: u8 = 1 << 2;
    /// User accessible.
    pub const U: u8 = 1 << 3;
    /// The PTE's Dirty bit was set when the entry was filled.
    pub const D: u8 = 1 << 4;
    /// Global.
    pub const G: u8 = 1 << 5;
}

/// What a TLB entry maps to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbEntry {
    /// Physical address of the first byte of the page.
    pub pa_base: u64,
    /// [`perm`] bits.
    pub perms: u8,
    /// Page-table level of the leaf (1 = base page).
    pub level: u8,
    /// log2 of the page size.
    pub shift: u8,
}

/// Per-TLB counters. Indexed by the page-table level of the page (1 = base page); a miss
/// that ended in a fault is counted at index 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlbCounters {
    /// Lookups that hit, by page level.
    pub hits: [u64; MAX_LEVELS + 1],
    /// Lookups that missed, by the level of the page the walk then found (0: it faulted).
    pub misses: [u64; MAX_LEVELS + 1],
    /// Entries filled.
    pub fills: u64,
    /// Valid entries pushed out by fills.
    pub evictions: u64,
    /// Entries removed by invalidations and flushes.
    pub invalidated: u64,
}

impl TlbCounters {
    /// All hits.
    pub fn total_hits(&self) -> u64 {
        self.hits.iter().sum()
    }
    /// All misses.
    pub fn total_misses(&self) -> u64 {
        self.misses.iter().sum()
    }
}

/// One array of a TLB.
#[derive(Clone, Debug)]
pub struct TlbArray {
    /// Name from the machine description.
    pub name: String,
    /// (page level, shift) of each page size held, smallest first.
    sizes: Vec<(u8, u32)>,
    store: SetAssoc<TlbEntry>,
}

/// Where a lookup found its entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbHit {
    /// The array.
    pub array: usize,
    /// The slot in the array.
    pub slot: usize,
    /// The entry.
    pub entry: TlbEntry,
}

/// One probe made by a lookup, for the explain mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlbProbe {
    /// The array probed.
    pub array: String,
    /// Size of the page size probed for, in bytes.
    pub page_size: u64,
    /// Virtual page number at that size.
    pub vpn: u64,
    /// Set index.
    pub set: u64,
    /// Tag (the page number above the set bits).
    pub tag: u64,
    /// The way that hit, if any.
    pub way: Option<usize>,
}

/// One TLB of the hierarchy.
#[derive(Clone, Debug)]
pub struct Tlb {
    /// Name (`L1d`, `L2`).
    pub name: String,
    /// Level in the hierarchy.
    pub level: u32,
    /// Which accesses it serves.
    pub holds: Holds,
    /// Cycles per lookup.
    pub latency: u32,
    arrays: Vec<TlbArray>,
    /// (page level, shift) of the first probe a lookup makes: the first array's smallest
    /// page size.
    first: (u8, u32),
    /// Per page level: the array that holds pages of that level and their shift (the
    /// first such array, as a fill picks), so fills do not search.
    for_level: [Option<(u8, u32)>; MAX_LEVELS + 1],
    /// Its counters.
    pub counters: TlbCounters,
}

#[inline(always)]
fn key(vpn: u64, level: u8) -> u64 {
    (vpn << 4) | level as u64
}

impl Tlb {
    /// An empty TLB shaped by `spec`.
    pub fn new(spec: &TlbSpec, paging: &Paging, seed: u64) -> Tlb {
        let arrays: Vec<TlbArray> = spec
            .arrays
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut sizes: Vec<(u8, u32)> = a
                    .page_levels
                    .iter()
                    .map(|&l| (l as u8, paging.level_shift(l)))
                    .collect();
                sizes.sort_by_key(|s| s.1);
                TlbArray {
                    name: a.name.clone(),
                    sizes,
                    store: SetAssoc::new(
                        a.entries,
                        a.ways,
                        a.replacement,
                        seed.wrapping_add(i as u64 * 0x9e37_79b9),
                    ),
                }
            })
            .collect();
        let first = arrays
            .first()
            .and_then(|a| a.sizes.first().copied())
            .unwrap_or((0, 0));
        let mut for_level = [None; MAX_LEVELS + 1];
        for (i, a) in arrays.iter().enumerate().rev() {
            for &(level, shift) in &a.sizes {
                if let Some(slot) = for_level.get_mut(level as usize) {
                    *slot = Some((i as u8, shift));
                }
            }
        }
        Tlb {
            first,
            for_level,
            name: spec.name.clone(),
            level: spec.level,
            holds: spec.holds,
            latency: spec.latency,
            arrays,
            counters: TlbCounters::default(),
        }
    }

    /// Looks `va` up for address space `asid`: the first array and page size whose entry
    /// matches. Marks the entry used. Counts nothing (the MMU counts once it knows whether
    /// the entry could be used).
    #[inline(always)]
    pub fn lookup(&mut self, va: VirtAddr, asid: u32) -> Option<TlbHit> {
        for (a, arr) in self.arrays.iter_mut().enumerate() {
            for &(level, shift) in &arr.sizes {
                let vpn = va.0 >> shift;
                if let Some(slot) = arr.store.lookup(vpn, key(vpn, level), asid) {
                    return Some(TlbHit {
                        array: a,
                        slot,
                        entry: arr.store.get(slot),
                    });
                }
            }
        }
        None
    }

    /// Makes only the first probe of a lookup (the first array, its smallest page size):
    /// the fast path of a hit in an L1 that holds base pages first. Marks the entry used.
    #[inline(always)]
    pub fn lookup_first(&mut self, va: VirtAddr, asid: u32) -> Option<TlbEntry> {
        let (level, shift) = self.first;
        let vpn = va.0 >> shift;
        self.arrays
            .first_mut()?
            .store
            .lookup_value(vpn, key(vpn, level), asid)
    }

    /// Looks up a run of addresses in the first probe only (see [`Tlb::lookup_first`]),
    /// handing each entry found to `take` until one misses or `take` refuses it.
    /// Returns how many were found and taken, each marked used; counts nothing.
    #[inline(always)]
    pub fn lookup_first_run(
        &mut self,
        n: usize,
        asid: u32,
        va_of: impl Fn(usize) -> Option<VirtAddr>,
        take: impl FnMut(usize, &TlbEntry) -> bool,
    ) -> usize {
        let (level, shift) = self.first;
        let Some(arr) = self.arrays.first_mut() else {
            return 0;
        };
        let probe = |i| {
            let vpn = va_of(i)?.0 >> shift;
            Some((vpn, key(vpn, level)))
        };
        match arr.store.ways() {
            4 => arr.store.lookup_run::<4>(n, asid, probe, take),
            8 => arr.store.lookup_run::<8>(n, asid, probe, take),
            16 => arr.store.lookup_run::<16>(n, asid, probe, take),
            2 => arr.store.lookup_run::<2>(n, asid, probe, take),
            1 => arr.store.lookup_run::<1>(n, asid, probe, take),
            _ => 0,
        }
    }

    /// Sets of the first array, and the page shift of its first probe.
    pub fn first_geometry(&self) -> Option<(u64, u32)> {
        let a = self.arrays.first()?;
        Some((1u64 << a.store.set_bits(), self.first.1))
    }

    /// Puts an entry for `va` in the first array at its first page size, as an exercise
    /// poses it (whatever the page tables say).
    pub fn preload_first(&mut self, va: VirtAddr, asid: u32, entry: TlbEntry) {
        let (level, shift) = self.first;
        let vpn = va.0 >> shift;
        if let Some(a) = self.arrays.first_mut() {
            a.store
                .insert(vpn, key(vpn, level), asid, TlbEntry { level, ..entry });
        }
    }

    /// The level of the page size the first probe looks for.
    pub fn first_level(&self) -> u8 {
        self.first.0
    }

    /// The probes a lookup of `va` makes, with the way that hits in each (for the
    /// explain mode; does not change replacement state).
    pub fn probes(&self, va: VirtAddr, asid: u32) -> Vec<TlbProbe> {
        let mut out = Vec::new();
        for arr in &self.arrays {
            for &(level, shift) in &arr.sizes {
                let vpn = va.0 >> shift;
                let set = arr.store.set_of(vpn);
                let way = arr
                    .store
                    .set_entries(set)
                    .find(|&(_, k, a, _)| k == key(vpn, level) && (a == asid || a == GLOBAL))
                    .map(|(w, ..)| w);
                out.push(TlbProbe {
                    array: arr.name.clone(),
                    page_size: 1 << shift,
                    vpn,
                    set: set as u64,
                    tag: vpn >> arr.store.set_bits(),
                    way,
                });
                if way.is_some() {
                    return out;
                }
            }
        }
        out
    }

    /// The entry a lookup of `va` for `asid` would find (its own or a global one),
    /// without marking it used: for checks that no TLB still grants what the page
    /// tables took away.
    pub fn peek(&self, va: VirtAddr, asid: u32) -> Option<TlbEntry> {
        for arr in &self.arrays {
            for &(level, shift) in &arr.sizes {
                let vpn = va.0 >> shift;
                let set = arr.store.set_of(vpn);
                let hit = arr
                    .store
                    .set_entries(set)
                    .find(|&(_, k, a, _)| k == key(vpn, level) && (a == asid || a == GLOBAL));
                if let Some((.., e)) = hit {
                    return Some(e);
                }
            }
        }
        None
    }

    /// Marks the entry in `hit` as dirty (after the walker set D in the PTE).
    pub fn set_dirty(&mut self, hit: &TlbHit) {
        self.arrays[hit.array].store.get_mut(hit.slot).perms |= perm::D;
    }

    /// Whether some array holds pages of `level`.
    pub fn holds_level(&self, level: u8) -> bool {
        self.for_level
            .get(level as usize)
            .is_some_and(|s| s.is_some())
    }

    /// Fills an entry for the page containing `va`; returns the (vpn key, asid) of a
    /// valid entry it pushed out, if any. Pages of a size no array holds are not cached.
    pub fn fill(&mut self, va: VirtAddr, asid: u32, entry: TlbEntry) -> Option<(u64, u32, u8)> {
        let (a, shift) = (*self.for_level.get(entry.level as usize)?)?;
        let arr = &mut self.arrays[a as usize];
        let vpn = va.0 >> shift;
        let asid = if entry.perms & perm::G != 0 {
            GLOBAL
        } else {
            asid
        };
        let (_, ev) = arr.store.insert(vpn, key(vpn, entry.level), asid, entry);
        self.counters.fills += 1;
        ev.map(|e| {
            self.counters.evictions += 1;
            (e.key >> 4, e.asid, (e.key & 0xf) as u8)
        })
    }

    /// Removes the entry for page `vpn` of `level` with id `asid` exactly (back-invalidation
    /// in an inclusive hierarchy).
    pub fn invalidate_exact(&mut self, vpn: u64, asid: u32, level: u8) {
        for arr in &mut self.arrays {
            if arr.sizes.iter().any(|s| s.0 == level) {
                let n = arr
                    .store
                    .invalidate_key(vpn, key(vpn, level), |a| a == asid);
                self.counters.invalidated += n as u64;
            }
        }
    }

    /// Removes every entry that maps `va`, of any page size, whose id satisfies `matches`.
    pub fn invalidate_va(&mut self, va: VirtAddr, matches: impl Fn(u32) -> bool + Copy) {
        for arr in &mut self.arrays {
            for &(level, shift) in &arr.sizes {
                let vpn = va.0 >> shift;
                let n = arr.store.invalidate_key(vpn, key(vpn, level), matches);
                self.counters.invalidated += n as u64;
            }
        }
    }

    /// Removes every entry whose id satisfies `matches`.
    pub fn invalidate_all(&mut self, matches: impl Fn(u32) -> bool + Copy) {
        for arr in &mut self.arrays {
            let n = arr.store.invalidate_where(|_, a| matches(a));
            self.counters.invalidated += n as u64;
        }
    }

    /// Number of valid entries.
    pub fn occupancy(&self) -> usize {
        self.arrays.iter().map(|a| a.store.occupancy()).sum()
    }

    /// The arrays, for reports.
    pub fn arrays(&self) -> &[TlbArray] {
        &self.arrays
    }
}

impl TlbArray {
    /// Page sizes held, in bytes.
    pub fn page_sizes(&self) -> impl Iterator<Item = u64> + '_ {
        self.sizes.iter().map(|s| 1u64 << s.1)
    }

    /// Number of sets.
    pub fn nr_sets(&self) -> u64 {
        1u64 << self.store.set_bits()
    }

    /// Ways per set.
    pub fn ways(&self) -> usize {
        self.store.ways()
    }

    /// The valid entries of a set: (way, vpn, page level, asid or `None` if global, entry).
    pub fn set_entries(&self, set: usize) -> Vec<(usize, u64, u8, Option<u32>, TlbEntry)> {
        self.store
            .set_entries(set)
            .map(|(w, k, a, e)| (w, k >> 4, (k & 0xf) as u8, (a != GLOBAL).then_some(a), e))
            .collect()
    }
}
