//! A built-in demonstration on the hardware alone (no kernel yet): one address space
//! with code, heap and stack regions (and a huge page where the machine has them),
//! mapped eagerly, and a seeded synthetic access stream over it.
//!
//! Region sizes scale with the machine, so the same demo runs on a 14-bit textbook
//! machine and on x86-64.

use crate::addr::{Pfn, VirtAddr};
use crate::hw::{
    AccessKind, Flags, Machine, MachineSpec, MapError, PageTable, Privilege, SimpleFrames,
};

/// One mapped region of the demo address space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Name (`code`, `heap`, `stack`, `huge`).
    pub name: &'static str,
    /// First address.
    pub start: VirtAddr,
    /// Bytes.
    pub len: u64,
    /// Page size used.
    pub page_size: u64,
    /// Permissions.
    pub flags: Flags,
}

/// A machine with the demo address space loaded into its MMU.
pub struct Demo {
    /// The machine.
    pub machine: Machine,
    /// The page table.
    pub page_table: PageTable,
    /// The regions mapped.
    pub regions: Vec<Region>,
}

/// The address-space id the demo uses.
pub const DEMO_ASID: u32 = 1;

impl Demo {
    /// Builds the demo address space on a machine of `spec`.
    pub fn new(spec: MachineSpec) -> Result<Demo, MapError> {
        let mut machine = Machine::new(spec);
        let p = machine.spec.paging;
        let page = p.page_size();
        let frames = machine.ram.nr_frames();
        let mut alloc = SimpleFrames::new(1, frames);
        let pt = PageTable::new(&p, &mut machine.ram, &mut alloc, DEMO_ASID)?;
        let user_top = if p.sign_extend {
            1u64 << (p.va_bits - 1)
        } else {
            1u64 << (p.va_bits.min(63))
        };
        let user_pages = user_top / page;
        let budget = (frames / 4).max(4);
        let code_pages = 4.min(user_pages / 8).max(1);
        let heap_pages = 256.min(budget).min(user_pages / 4).max(1);
        let stack_pages = 4.min(user_pages / 8).max(1);
        let mut regions = vec![
            Region {
                name: "code",
                start: VirtAddr(page),
                len: code_pages * page,
                page_size: page,
                flags: Flags::RX | Flags::USER,
            },
            Region {
                name: "heap",
                start: VirtAddr((code_pages + 2) * page),
                len: heap_pages * page,
                page_size: page,
                flags: Flags::RW | Flags::USER,
            },
            Region {
                name: "stack",
                start: VirtAddr(user_top - stack_pages * page),
                len: stack_pages * page,
                page_size: page,
                flags: Flags::RW | Flags::USER,
            },
        ];
        // One huge page, if the machine has a second page size whose page fits in a
        // quarter of RAM and of the user half.
        if let Some(level) = p.leaf_levels().find(|&l| l > 1) {
            let size = p.leaf_size(level);
            if size <= machine.ram.size() / 4 && size * 4 <= user_top {
                regions.push(Region {
                    name: "huge",
                    start: VirtAddr(size * 2),
                    len: size,
                    page_size: size,
                    flags: Flags::RW | Flags::USER,
                });
            }
        }
        let table = Flags::RWX | Flags::USER;
        for r in &regions {
            let level = p.level_of_page_size(r.page_size).unwrap_or(1);
            let n = r.page_size / page;
            for i in 0..r.len / r.page_size {
                // A huge page needs a frame aligned to its size: take it from the top.
                let pfn = if n > 1 {
                    Pfn((frames / n - 1) * n)
                } else {
                    alloc.alloc_frames_or_err()?
                };
                pt.map(
                    &p,
                    &mut machine.ram,
                    &mut alloc,
                    VirtAddr(r.start.0 + i * r.page_size),
                    pfn,
                    level,
                    r.flags,
                    table,
                )?;
            }
        }
        machine
            .mmu
            .set_context(pt.root(), DEMO_ASID)
            .expect("the demo ASID fits every machine");
        Ok(Demo {
            machine,
            page_table: pt,
            regions,
        })
    }

    /// Runs `n` accesses of the demo workload: a quarter instruction fetches walking the
    /// code, the rest loads and stores (one in three a store) spread over the heap
    /// (uniformly at random, and in a strided sweep), the stack and the huge page.
    /// Returns the number of faults (none are expected: every address is mapped).
    pub fn run(&mut self, n: u64, seed: u64) -> u64 {
        let mut rng = seed | 1;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let find = |name: &str| self.regions.iter().find(|r| r.name == name).cloned();
        let (code, heap, stack) = (
            find("code").unwrap(),
            find("heap").unwrap(),
            find("stack").unwrap(),
        );
        let huge = find("huge");
        let mut faults = 0;
        let mut pc = code.start.0;
        let mut sweep = 0u64;
        for i in 0..n {
            let r = next();
            let (va, kind) = if i % 4 == 0 {
                pc += 4;
                if pc >= code.start.0 + code.len {
                    pc = code.start.0;
                }
                (pc, AccessKind::Execute)
            } else {
                let kind = if r % 3 == 0 {
                    AccessKind::Write
                } else {
                    AccessKind::Read
                };
                let va = match (r >> 8) % 8 {
                    0..=3 => heap.start.0 + (r >> 16) % heap.len,
                    4 => {
                        sweep = (sweep + 64) % heap.len;
                        heap.start.0 + sweep
                    }
                    5 | 6 => stack.start.0 + stack.len - 1 - (r >> 16) % stack.len.min(4096),
                    _ => match &huge {
                        Some(h) => h.start.0 + (r >> 16) % h.len,
                        None => heap.start.0 + (r >> 16) % heap.len,
                    },
                };
                (va, kind)
            };
            if self
                .machine
                .translate(VirtAddr(va), kind, Privilege::User)
                .is_err()
            {
                faults += 1;
            }
        }
        faults
    }
}

trait AllocOrErr {
    fn alloc_frames_or_err(&mut self) -> Result<Pfn, MapError>;
}

impl AllocOrErr for SimpleFrames {
    fn alloc_frames_or_err(&mut self) -> Result<Pfn, MapError> {
        crate::hw::FrameAlloc::alloc_frames(self, 1).ok_or(MapError::OutOfFrames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::machine::PRESETS;

    #[test]
    fn the_demo_runs_without_faults_on_every_preset() {
        for (name, _) in PRESETS {
            let mut d = Demo::new(MachineSpec::preset(name).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(d.run(20_000, 42), 0, "{name}");
            let c = &d.machine.mmu.counters;
            assert_eq!(c.total_translations(), 20_000);
            assert!(c.walks > 0 && c.walks < 20_000, "{name}: {} walks", c.walks);
        }
    }

    #[test]
    fn the_demo_is_deterministic() {
        let run = || {
            let mut d = Demo::new(MachineSpec::preset("x86-64").unwrap()).unwrap();
            d.run(10_000, 7);
            (
                d.machine.mmu.counters.clone(),
                d.machine.mmu.estimated_cycles(),
            )
        };
        assert_eq!(run(), run());
    }
}
