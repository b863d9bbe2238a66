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
