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
    PteRead {
        /// Page-table level.
        level: u32,
        /// Conventional name of the table (PML4, PT, ...).
        table_name: String,
        /// Index into the table.
        index: u64,
        /// Physical address of the entry.
        pte_addr: PhysAddr,
        /// Raw value read.
        raw: u64,
        /// The value decoded.
        pte: Pte,
        /// The raw value written back when the walker set Accessed or Dirty.
        updated: Option<u64>,
    },
    /// An entry was put in a TLB.
    TlbFill {
        /// The TLB.
        tlb: String,
        /// Size of the page cached.
        page_size: u64,
    },
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
    pub fn pte_reads(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::PteRead { .. }))
    }

    /// The name of the TLB that hit, if one did.
    pub fn tlb_hit(&self) -> Option<&str> {
        self.steps.iter().find_map(|s| match s {
            Step::Tlb { tlb, hit: true, .. } => Some(tlb.as_str()),
            _ => None,
        })
    }
}

impl Translation {
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
                Step::PteRead {
                    level,
                    table_name,
                    index,
                    pte_addr,
                    raw,
                    pte,
                    updated,
                } => {
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
        s
    }
}
