//! Turning counters into reports: a serialisable summary of the hardware counters and
//! its text rendering.

use crate::hw::mmu::FaultCause;
use crate::hw::Mmu;
use crate::size::format_size;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One TLB's counters.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TlbStats {
    /// Name (`L1d`).
    pub name: String,
    /// Hierarchy level.
    pub level: u32,
    /// Lookups.
    pub lookups: u64,
    /// Hits.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
    /// hits / lookups (0 when there were none).
    pub hit_rate: f64,
    /// Hits by page size (`"4 KiB"`).
    pub hits_by_page_size: BTreeMap<String, u64>,
    /// Misses by the size of the page the walk found (`"fault"` when it faulted).
    pub misses_by_page_size: BTreeMap<String, u64>,
    /// Valid entries pushed out by fills.
    pub evictions: u64,
}

/// One page-walk cache's counters.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WalkCacheStats {
    /// Page-table level whose entries it caches.
    pub level: u32,
    /// Hits.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
}

/// Everything the hardware counted.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HwStats {
    /// Translations asked for.
    pub accesses: u64,
    /// Loads, stores, fetches.
    pub reads: u64,
    /// Stores.
    pub writes: u64,
    /// Instruction fetches.
    pub fetches: u64,
    /// TLBs, in level order.
    pub tlbs: Vec<TlbStats>,
    /// Page walks.
    pub walks: u64,
    /// PTEs read by walks.
    pub pte_reads: u64,
    /// PTEs written by walks (Accessed/Dirty updates).
    pub pte_writes: u64,
    /// Walk caches, from the lowest level up.
    pub walk_caches: Vec<WalkCacheStats>,
    /// Faults by cause.
    pub faults: BTreeMap<String, u64>,
    /// Estimated cycles spent translating.
    pub cycles: u64,
    /// cycles / accesses.
    pub cycles_per_access: f64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl HwStats {
    /// Reads the counters of `mmu`.
    pub fn from_mmu(mmu: &Mmu) -> HwStats {
        let p = mmu.paging();
        let size_name = |level: usize| -> String {
            if level == 0 {
                "fault".into()
            } else {
                format_size(p.leaf_size(level as u32))
            }
        };
        let tlbs = mmu
            .tlbs()
            .iter()
            .map(|t| {
                let c = &t.counters;
                let by = |v: &[u64]| -> BTreeMap<String, u64> {
                    v.iter()
                        .enumerate()
                        .filter(|(_, &n)| n > 0)
                        .map(|(l, &n)| (size_name(l), n))
                        .collect()
                };
                let (hits, misses) = (c.total_hits(), c.total_misses());
                TlbStats {
                    name: t.name.clone(),
                    level: t.level,
                    lookups: hits + misses,
                    hits,
                    misses,
                    hit_rate: ratio(hits, hits + misses),
                    hits_by_page_size: by(&c.hits),
                    misses_by_page_size: by(&c.misses),
                    evictions: c.evictions,
                }
            })
            .collect();
        let c = &mmu.counters;
        let accesses = c.total_translations();
        let cycles = mmu.estimated_cycles();
        HwStats {
            accesses,
            reads: c.translations[0],
            writes: c.translations[1],
            fetches: c.translations[2],
            tlbs,
            walks: c.walks,
            pte_reads: c.pte_reads,
            pte_writes: c.pte_writes,
            walk_caches: mmu
                .walk_caches()
                .iter()
                .map(|w| WalkCacheStats {
                    level: w.level,
                    hits: w.counters.hits,
                    misses: w.counters.misses,
                })
                .collect(),
            faults: FaultCause::ALL
                .iter()
                .map(|f| (f.name().to_string(), c.faults_of(*f)))
                .collect(),
            cycles,
            cycles_per_access: ratio(cycles, accesses),
        }
    }

    /// A readable table.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "accesses      {:>14}  (reads {}, writes {}, fetches {})",
            self.accesses, self.reads, self.writes, self.fetches
        );
        let _ = writeln!(
            s,
            "\n{:<10} {:>14} {:>14} {:>12} {:>9}  hits by page size",
            "TLB", "lookups", "hits", "misses", "hit rate"
        );
        for t in &self.tlbs {
            let by: Vec<String> = t
                .hits_by_page_size
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = writeln!(
                s,
                "{:<10} {:>14} {:>14} {:>12} {:>8.2}%  {}",
                t.name,
                t.lookups,
                t.hits,
                t.misses,
                t.hit_rate * 100.0,
                by.join(", ")
            );
        }
        let _ = writeln!(s, "\nwalks         {:>14}", self.walks);
        let _ = writeln!(
            s,
            "PTE reads     {:>14}  ({:.2} per walk)",
            self.pte_reads,
            ratio(self.pte_reads, self.walks)
        );
        let _ = writeln!(
            s,
            "PTE writes    {:>14}  (Accessed/Dirty set by the walker)",
            self.pte_writes
        );
        for w in &self.walk_caches {
            let _ = writeln!(
                s,
                "walk cache L{} {:>14} hits, {} misses ({:.2}%)",
                w.level,
                w.hits,
                w.misses,
                ratio(w.hits, w.hits + w.misses) * 100.0
            );
        }
        let faults: Vec<String> = self
            .faults
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            s,
            "faults        {:>14}  {}",
            self.faults.values().sum::<u64>(),
            faults.join(", ")
        );
        let _ = writeln!(
            s,
            "est. cycles   {:>14}  ({:.2} per access)",
            self.cycles, self.cycles_per_access
        );
        s
    }
}
