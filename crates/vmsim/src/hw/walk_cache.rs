//! Page-structure (walk) caches: for one upper level, the recently used entries of that
//! level that point to a next-level table, keyed by the virtual-address bits that select
//! them (Intel's PML4E, PDPTE and PDE caches). A hit lets a walk skip the reads above.

use super::assoc::SetAssoc;
use super::machine::WalkCacheSpec;
use super::pte::Flags;
use crate::addr::{PhysAddr, VirtAddr};

/// What a walk-cache entry holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkCacheEntry {
    /// Physical address of the next-level table.
    pub table: u64,
    /// Restrictions accumulated from the root down to this entry (RWXU), and GLOBAL if a
    /// table entry on the way made the subtree global.
    pub flags: Flags,
}

/// Counters of one walk cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkCacheCounters {
    /// Lookups that hit.
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
    /// Entries filled.
    pub fills: u64,
    /// Entries removed by invalidations and flushes.
    pub invalidated: u64,
}

/// The walk cache of one page-table level.
#[derive(Clone, Debug)]
pub struct WalkCache {
    /// The level whose entries it caches.
    pub level: u32,
    shift: u32,
    store: SetAssoc<WalkCacheEntry>,
    /// Its counters.
    pub counters: WalkCacheCounters,
}

impl WalkCache {
    /// An empty cache; `shift` is the bit position of the level's index in an address.
    pub fn new(spec: &WalkCacheSpec, shift: u32, seed: u64) -> WalkCache {
        WalkCache {
            level: spec.level,
            shift,
            store: SetAssoc::new(spec.entries, spec.ways, spec.replacement, seed),
            counters: WalkCacheCounters::default(),
        }
    }

    /// The key for `va`: every address bit that selects entries down to this level.
    #[inline(always)]
    pub fn prefix(&self, va: VirtAddr) -> u64 {
        va.0 >> self.shift
    }

    /// Looks up the entry that `va` selects at this level, counting the outcome.
    #[inline]
    pub fn lookup(&mut self, va: VirtAddr, asid: u32) -> Option<WalkCacheEntry> {
        let p = self.prefix(va);
        match self.store.lookup(p, p, asid) {
            Some(slot) => {
                self.counters.hits += 1;
                Some(self.store.get(slot))
            }
            None => {
                self.counters.misses += 1;
                None
            }
        }
    }

    /// Records the entry that `va` selects at this level.
    pub fn fill(&mut self, va: VirtAddr, asid: u32, table: PhysAddr, flags: Flags) {
        let p = self.prefix(va);
        self.store.insert(
            p,
            p,
            asid,
            WalkCacheEntry {
                table: table.0,
                flags,
            },
        );
        self.counters.fills += 1;
    }

    /// Removes the entry for `va`'s prefix whose id satisfies `matches`.
    pub fn invalidate_va(&mut self, va: VirtAddr, matches: impl Fn(u32) -> bool) {
        let p = self.prefix(va);
        self.counters.invalidated += self.store.invalidate_key(p, p, matches) as u64;
    }

    /// Removes every entry whose id satisfies `matches`.
    pub fn invalidate_all(&mut self, matches: impl Fn(u32) -> bool) {
        self.counters.invalidated += self.store.invalidate_where(|_, a| matches(a)) as u64;
    }

    /// Number of valid entries.
    pub fn occupancy(&self) -> usize {
        self.store.occupancy()
    }
}
