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
pub use mmu::{AccessKind, AsidScope, Fault, FaultCause, Mmu, MmuCounters, Privilege, RunKinds};
pub use page_table::{
    Flushed, FrameAlloc, MapError, Mapping, PageTable, SetSoftError, SimpleFrames, Slot,
    SwapOutError, TlbFlush, UnmapFrameError,
};
pub use paging::Paging;
pub use pte::{Flags, Pte, SoftPte};
pub use ram::PhysMem;
pub use story::Translation;
pub use tlb::{Tlb, TlbCounters};

use crate::addr::{PhysAddr, VirtAddr};

/// A whole machine: its description, its RAM and the MMU of each CPU.
///
/// One CPU runs at a time (a trace is one serial order of execution): its MMU is
/// [`Machine::mmu`], and [`Machine::run_on`] makes another CPU the running one. The
/// other CPUs' MMUs keep their TLBs and walk caches while they wait, and a TLB
/// shootdown reaches them through [`Machine::mmu_of_mut`]. With
/// [`MachineSpec::shared_last_level_tlb`] the last-level TLBs are one set that moves
/// to the running CPU's MMU (a parked MMU holds an empty stand-in, never filled).
#[derive(Clone, Debug)]
pub struct Machine {
    /// The description it was built from.
    pub spec: MachineSpec,
    /// Physical memory.
    pub ram: PhysMem,
    /// The running CPU's MMU.
    pub mmu: Mmu,
    /// The data caches the description names (used by [`Machine::explain`]).
    pub caches: Vec<cache::DataCache>,
    /// Every CPU's MMU but the running one's, by CPU number (`None` at the running
    /// CPU's place: its MMU is `mmu`).
    parked: Vec<Option<Mmu>>,
    /// The running CPU.
    cpu: usize,
}

impl Machine {
    /// A machine with zeroed RAM and empty TLBs.
    pub fn new(spec: MachineSpec) -> Machine {
        let ram = PhysMem::new(spec.paging.page_shift, spec.nr_frames());
        let mmu = Mmu::new(&spec);
        let parked = (0..spec.cpus.max(1))
            .map(|c| (c > 0).then(|| mmu.clone()))
            .collect();
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
            parked,
            cpu: 0,
        }
    }

    /// How many CPUs the machine has.
    pub fn nr_cpus(&self) -> usize {
        self.parked.len()
    }

    /// The running CPU.
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// Makes `cpu` the running CPU: its MMU becomes [`Machine::mmu`]. Out-of-range
    /// numbers are ignored.
    pub fn run_on(&mut self, cpu: usize) {
        if cpu == self.cpu || cpu >= self.parked.len() {
            return;
        }
        if let Some(next) = self.parked[cpu].take() {
            let mut prev = std::mem::replace(&mut self.mmu, next);
            if self.spec.shared_last_level_tlb {
                self.mmu.swap_tlbs_from(&mut prev, self.spec.tlb_levels());
            }
            self.parked[self.cpu] = Some(prev);
            self.cpu = cpu;
        }
    }

    /// The MMU of CPU `cpu` (the running one's is [`Machine::mmu`]).
    ///
    /// # Panics
    /// If the machine has no such CPU.
    pub fn mmu_of(&self, cpu: usize) -> &Mmu {
        if cpu == self.cpu {
            &self.mmu
        } else {
            self.parked[cpu].as_ref().expect("a parked CPU has its MMU")
        }
    }

    /// The MMU of CPU `cpu`, to change (a shootdown's flush).
    ///
    /// # Panics
    /// If the machine has no such CPU.
    pub fn mmu_of_mut(&mut self, cpu: usize) -> &mut Mmu {
        if cpu == self.cpu {
            &mut self.mmu
        } else {
            self.parked[cpu].as_mut().expect("a parked CPU has its MMU")
        }
    }

    /// Every CPU's MMU, in CPU order.
    pub fn mmus(&self) -> impl Iterator<Item = &Mmu> + '_ {
        (0..self.parked.len()).map(|c| self.mmu_of(c))
    }

    /// Estimated cycles spent translating on every CPU (see [`Mmu::estimated_cycles`]).
    pub fn estimated_cycles(&self) -> u64 {
        if self.parked.len() == 1 {
            return self.mmu.estimated_cycles();
        }
        self.mmus().map(Mmu::estimated_cycles).sum()
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
