//! The full story of one translation, step by step, for the explain mode and for tests.
//!
//! The MMU's translation code is generic over a [`Recorder`]; the fast path uses
//! [`NoRecord`], whose `ENABLED` is false, so every recording call compiles away.

use super::pte::Pte;
use super::tlb::TlbProbe;
use crate::addr::{PhysAddr, VirtAddr};

/// One thing the hardware did while translating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A TLB was probed.
    Tlb {
        /// The TLB (`L1d`).
        tlb: String,
        /// Every array and page size probed, in order, with the way that hit.
        probes: Vec<TlbProbe>,
        /// Whether an entry matched.
        hit: bool,
    },
    /// A TLB entry matched but did not allow the access (a write to a page whose entry
    /// was filled before Dirty was set, or an entry made stale by a change that widened
    /// access); it was dropped and the tables were walked again.
    TlbEntryDropped {
        /// The TLB.
        tlb: String,
        /// Why.
        reason: &'static str,
    },
    /// A page-walk cache was probed.
    WalkCache {
        /// Level of the entries it caches.
        level: u32,
        /// The address bits it is keyed by.
        prefix: u64,
        /// The next-level table it gave, on a hit.
        table: Option<PhysAddr>,
    },
    /// A PTE was read from memory during a walk.
    PteRead(PteRead),
    /// The physical address was looked up in a data cache.
    Cache(super::cache::CacheAccess),
    /// An entry was put in a TLB.
    TlbFill {
        /// The TLB.
        tlb: String,
        /// Size of the page cached.
        page_size: u64,
    },
}

/// A PTE the walker read from memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PteRead {
    /// Page-table level.
    pub level: u32,
    /// Conventional name of the table (PML4, PT, ...).
    pub table_name: String,
    /// Index into the table.
    pub index: u64,
    /// Physical address of the entry.
    pub pte_addr: PhysAddr,
    /// Raw value read.
    pub raw: u64,
    /// The value decoded.
    pub pte: Pte,
    /// The raw value written back when the walker set Accessed or Dirty.
    pub updated: Option<u64>,
}

/// Receives steps as the MMU takes them.
pub trait Recorder {
    /// Whether steps are wanted at all; when false, no step is even built.
    const ENABLED: bool;
    /// Records one step.
    fn step(&mut self, s: Step);
}

/// Records nothing: the fast path.
pub struct NoRecord;

impl Recorder for NoRecord {
    const ENABLED: bool = false;
    #[inline(always)]
    fn step(&mut self, _: Step) {}
}

/// Keeps every step.
#[derive(Default, Debug)]
pub struct Story {
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Recorder for Story {
    const ENABLED: bool = true;
    fn step(&mut self, s: Step) {
        self.steps.push(s);
    }
}

/// The whole account of one translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The address translated.
    pub va: VirtAddr,
    /// The steps taken.
    pub steps: Vec<Step>,
    /// The outcome.
    pub result: Result<PhysAddr, super::mmu::Fault>,
}

impl Translation {
    /// The PTE reads of the walk, if there was one.
    pub fn pte_reads(&self) -> impl Iterator<Item = &PteRead> {
        self.steps.iter().filter_map(|s| match s {
            Step::PteRead(read) => Some(read),
            _ => None,
        })
    }

    /// The name of the TLB that hit, if one did.
    pub fn tlb_hit(&self) -> Option<&str> {
        self.steps.iter().find_map(|s| match s {
            Step::Tlb { tlb, hit: true, .. } => Some(tlb.as_str()),
            _ => None,
        })
    }
}

/// One PTE read of a walk, for machine-readable output. `N` is how its addresses, raw
/// value and frame number are given: numbers for `vmsim explain --json`; the
/// step-by-step view ([`crate::viz::WalkEntry`]) gives them as hex strings.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WalkStep<N = u64> {
    /// Page-table level (1 = the table of base pages).
    pub level: u32,
    /// The table's conventional name.
    pub table: String,
    /// Index into it.
    pub index: u64,
    /// Physical address of the entry.
    pub pte_addr: N,
    /// Raw value read.
    pub raw: N,
    /// What it says: `absent`, `reserved`, `table` or `leaf`.
    pub kind: &'static str,
    /// The frame it names, if any.
    pub pfn: Option<N>,
    /// Its flags as `RWXUGADCT` letters, if any.
    pub flags: Option<String>,
}

impl WalkStep {
    /// The PTE read `step` records, if it is one.
    pub fn of(step: &Step) -> Option<WalkStep> {
        let Step::PteRead(read) = step else {
            return None;
        };
        let (kind, pfn, flags) = match read.pte {
            Pte::Absent => ("absent", None, None),
            Pte::Reserved => ("reserved", None, None),
            Pte::Table { pfn, flags } => ("table", Some(pfn.0), Some(flags.to_string())),
            Pte::Leaf { pfn, flags } => ("leaf", Some(pfn.0), Some(flags.to_string())),
        };
        Some(WalkStep {
            level: read.level,
            table: read.table_name.clone(),
            index: read.index,
            pte_addr: read.pte_addr.0,
            raw: read.raw,
            kind,
            pfn,
            flags,
        })
    }

    /// The same read with its address, raw value and frame number given as `f` gives
    /// them.
    pub fn map<M>(self, f: impl Fn(u64) -> M) -> WalkStep<M> {
        WalkStep {
            level: self.level,
            table: self.table,
            index: self.index,
            pte_addr: f(self.pte_addr),
            raw: f(self.raw),
            kind: self.kind,
            pfn: self.pfn.map(&f),
            flags: self.flags,
        }
    }
}

/// A translation's story as numbers: what `vmsim explain --json` prints.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// The virtual address.
    pub va: u64,
    /// Its virtual page number (base pages).
    pub vpn: u64,
    /// Its offset in the base page (VPO).
    pub vpo: u64,
    /// The index at each level, from the root down.
    pub indices: Vec<u64>,
    /// The set index of the first TLB lookup (the first TLB, its base-page array).
    pub tlb_index: Option<u64>,
    /// The tag of that lookup.
    pub tlb_tag: Option<u64>,
    /// Whether any TLB hit.
    pub tlb_hit: bool,
    /// The PTEs read, in order.
    pub walk: Vec<WalkStep>,
    /// Whether the translation faulted.
    pub page_fault: bool,
    /// Why, in words, on a fault.
    pub fault: Option<String>,
    /// The physical frame number (base pages), or none on a fault.
    pub ppn: Option<u64>,
    /// The physical address, or none on a fault.
    pub pa: Option<u64>,
    /// Data-cache lookups of the physical address, first level first (empty on a fault
    /// or on a machine without caches).
    pub cache: Vec<super::cache::CacheAccess>,
}

impl Translation {
    /// The story as numbers.
    pub fn summary(&self, paging: &super::paging::Paging) -> Summary {
        let p = paging;
        let first = self.steps.iter().find_map(|s| match s {
            Step::Tlb { probes, .. } => probes.first().cloned(),
            _ => None,
        });
        let walk = self.steps.iter().filter_map(WalkStep::of).collect();
        Summary {
            va: self.va.0,
            vpn: self.va.0 >> p.page_shift,
            vpo: self.va.page_offset(p.page_size()),
            indices: (1..=p.levels).rev().map(|l| p.index(self.va, l)).collect(),
            tlb_index: first.as_ref().map(|f| f.set),
            tlb_tag: first.as_ref().map(|f| f.tag),
            tlb_hit: self.tlb_hit().is_some(),
            walk,
            page_fault: self.result.is_err(),
            fault: self.result.as_ref().err().map(|f| f.to_string()),
            ppn: self.result.as_ref().ok().map(|pa| pa.0 >> p.page_shift),
            pa: self.result.as_ref().ok().map(|pa| pa.0),
            cache: self
                .steps
                .iter()
                .filter_map(|s| match s {
                    Step::Cache(a) => Some(a.clone()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The story as text, one step a line, in the order the hardware lived it.
    pub fn to_text(&self, paging: &super::paging::Paging) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let va = self.va.0;
        let p = paging;
        let _ = writeln!(s, "VA {:#x}", va);
        let fields: Vec<String> = (1..=p.levels)
            .rev()
            .map(|l| {
                format!(
                    "{}[{}] = {}",
                    p.table_name(l),
                    p.level_bits(l),
                    p.index(self.va, l)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "  VPN {:#x}  offset {:#x}  ({})",
            va >> p.page_shift,
            self.va.page_offset(p.page_size()),
            fields.join(", ")
        );
        for step in &self.steps {
            match step {
                Step::Tlb { tlb, probes, hit } => {
                    for pr in probes {
                        let _ = writeln!(
                            s,
                            "  {tlb:<5} {:<10} {:>7} page: VPN {:#x} -> set {} tag {:#x}: {}",
                            pr.array,
                            crate::size::format_size(pr.page_size),
                            pr.vpn,
                            pr.set,
                            pr.tag,
                            match pr.way {
                                Some(w) => format!("hit in way {w}"),
                                None => "miss".into(),
                            }
                        );
                    }
                    if probes.is_empty() {
                        let _ = writeln!(s, "  {tlb:<5} {}", if *hit { "hit" } else { "miss" });
                    }
                }
                Step::TlbEntryDropped { tlb, reason } => {
                    let _ = writeln!(s, "  {tlb:<5} {reason}");
                }
                Step::WalkCache {
                    level,
                    prefix,
                    table,
                } => {
                    let _ = writeln!(
                        s,
                        "  walk cache for level {level}: prefix {prefix:#x}: {}",
                        match table {
                            Some(t) => format!("hit, next table at {t}"),
                            None => "miss".into(),
                        }
                    );
                }
                Step::PteRead(PteRead {
                    level,
                    table_name,
                    index,
                    pte_addr,
                    raw,
                    pte,
                    updated,
                }) => {
                    let what = match pte {
                        Pte::Absent => "not present".to_string(),
                        Pte::Reserved => "reserved bits set".to_string(),
                        Pte::Table { pfn, flags } => format!("table at frame {pfn} [{flags}]"),
                        Pte::Leaf { pfn, flags } => format!("leaf: frame {pfn} [{flags}]"),
                    };
                    let _ = writeln!(
                        s,
                        "  walk {table_name:<5} (level {level}) index {index:>3}: PTE at {pte_addr} = {raw:#018x}: {what}{}",
                        match updated {
                            Some(u) => format!("; set A/D -> {u:#x}"),
                            None => String::new(),
                        }
                    );
                }
                Step::Cache(_) => {}
                Step::TlbFill { tlb, page_size } => {
                    let _ = writeln!(
                        s,
                        "  fill {tlb} with the {} page",
                        crate::size::format_size(*page_size)
                    );
                }
            }
        }
        let _ = match &self.result {
            Ok(pa) => writeln!(
                s,
                "  => PA {pa} (frame {:#x}, offset {:#x})",
                pa.0 >> p.page_shift,
                pa.page_offset(p.page_size())
            ),
            Err(f) => writeln!(s, "  => page fault: {f}"),
        };
        for step in &self.steps {
            if let Step::Cache(a) = step {
                let _ = writeln!(
                    s,
                    "  {:<5} PA -> tag {:#x}  set {}  offset {}: {}{}",
                    a.cache,
                    a.tag,
                    a.index,
                    a.offset,
                    if a.hit {
                        format!("hit in way {}", a.way)
                    } else {
                        format!("miss, filled way {}", a.way)
                    },
                    match a.byte {
                        Some(b) => format!(", byte {b:#04x}"),
                        None => String::new(),
                    }
                );
            }
        }
        s
    }
}
