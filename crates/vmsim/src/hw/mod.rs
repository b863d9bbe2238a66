//! What the silicon does: physical memory, page-table formats, the walker with its
//! page-structure caches, the TLB hierarchy and the MMU. The hardware never decides
//! policy; it reports.

pub mod assoc;
pub mod cache;
pub mod machine;
pub mod mmio;
pub mod mmu;
pub mod page_table;
pub mod paging;
pub mod pte;
pub mod ram;
pub mod state;
pub mod story;
pub mod tlb;
pub mod walk_cache;

pub use machine::{MachineError, MachineSpec};
pub use mmu::{AccessKind, AsidScope, Fault, FaultCause, Mmu, MmuCounters, Privilege};
pub use page_table::{
    FrameAlloc, MapError, Mapping, PageTable, SetSoftError, SimpleFrames, Slot, SwapOutError,
    TlbFlush, UnmapFrameError,
};
pub use paging::Paging;
pub use pte::{Flags, Pte, SoftPte};
pub use ram::PhysMem;
pub use story::Translation;
pub use tlb::{Tlb, TlbCounters};

use crate::addr::{PhysAddr, VirtAddr};

/// A whole machine: its description, its RAM and its MMU.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The description it was built from.
    pub spec: MachineSpec,
    /// Physical memory.
    pub ram: PhysMem,
    /// The MMU.
    pub mmu: Mmu,
    /// The data caches the description names (used by [`Machine::explain`]).
    pub caches: Vec<cache::DataCache>,
}

impl Machine {
    /// A machine with zeroed RAM and empty TLBs.
    pub fn new(spec: MachineSpec) -> Machine {
        let ram = PhysMem::new(spec.paging.page_shift, spec.nr_frames());
        let mmu = Mmu::new(&spec);
        let caches = spec
            .caches
            .iter()
            .cloned()
            .map(cache::DataCache::new)
            .collect();
        Machine {
            spec,
            ram,
            mmu,
            caches,
        }
    }

    /// The paging geometry.
    pub fn paging(&self) -> &Paging {
        &self.spec.paging
    }

    /// Translates in the current context (see [`Mmu::translate`]).
    #[inline]
    pub fn translate(
        &mut self,
        va: VirtAddr,
        access: AccessKind,
        mode: Privilege,
    ) -> Result<PhysAddr, Fault> {
        self.mmu.translate(&mut self.ram, va, access, mode)
    }

    /// Translates and returns every step (see [`Mmu::translate_explained`]); where the
    /// machine has data caches, the physical address is then looked up in them, level
    /// by level until one hits.
    pub fn explain(&mut self, va: VirtAddr, access: AccessKind, mode: Privilege) -> Translation {
        let mut t = self
            .mmu
            .translate_explained(&mut self.ram, va, access, mode);
        if let Ok(pa) = t.result {
            for c in &mut self.caches {
                let a = c.access(pa);
                let hit = a.hit;
                t.steps.push(story::Step::Cache(a));
                if hit {
                    break;
                }
            }
        }
        t
    }
}
