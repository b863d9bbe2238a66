//! Property: random mappings installed into the page tables, and random translations,
//! agree with a plain reference map, on every preset, with TLBs and walk caches on and
//! off, across context switches and random invalidations. Every narrowing change applies
//! its flush token, as a kernel must; extra flushes must never change an answer.

use proptest::prelude::*;
use std::collections::BTreeMap;
use vmsim::addr::{Pfn, PhysAddr, VirtAddr};
use vmsim::hw::machine::PRESETS;
use vmsim::hw::{
    AccessKind, AsidScope, Fault, Flags, Machine, MachineSpec, MmuCounters, PageTable, Privilege,
    SimpleFrames, TlbCounters,
};

#[derive(Clone, Debug)]
enum Op {
    Map {
        space: usize,
        slot: usize,
        huge: bool,
        frame: u64,
        flags: u8,
    },
    Unmap {
        space: usize,
        slot: usize,
        huge: bool,
    },
    Protect {
        space: usize,
        slot: usize,
        huge: bool,
        flags: u8,
    },
    Switch {
        space: usize,
    },
    Translate {
        slot: usize,
        huge: bool,
        offset: u64,
        access: u8,
        supervisor: bool,
    },
    FlushAll,
    FlushAsid {
        space: usize,
    },
    InvalidatePage {
        slot: usize,
        huge: bool,
        all: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..4usize;
    prop_oneof![
        3 => (0..2usize, slot.clone(), any::<bool>(), any::<u64>(), 0..16u8)
            .prop_map(|(space, slot, huge, frame, flags)| Op::Map { space, slot, huge, frame, flags }),
        1 => (0..2usize, slot.clone(), any::<bool>()).prop_map(|(space, slot, huge)| Op::Unmap { space, slot, huge }),
        1 => (0..2usize, slot.clone(), any::<bool>(), 0..16u8)
            .prop_map(|(space, slot, huge, flags)| Op::Protect { space, slot, huge, flags }),
        1 => (0..2usize).prop_map(|space| Op::Switch { space }),
        8 => (slot.clone(), any::<bool>(), any::<u64>(), 0..3u8, any::<bool>())
            .prop_map(|(slot, huge, offset, access, supervisor)| Op::Translate { slot, huge, offset, access, supervisor }),
        1 => Just(Op::FlushAll),
        1 => (0..2usize).prop_map(|space| Op::FlushAsid { space }),
        1 => (slot, any::<bool>(), any::<bool>()).prop_map(|(slot, huge, all)| Op::InvalidatePage { slot, huge, all }),
    ]
}

/// Flags from 4 random bits: R always where the format needs it; W, X, U, and one
/// encoding that is execute-only on RISC-V.
fn flags_of(bits: u8, riscv: bool) -> Flags {
    let mut f = Flags::READ;
    if bits & 1 != 0 {
        f = f | Flags::WRITE;
    }
    if bits & 2 != 0 {
        f = f | Flags::EXEC;
    }
    if bits & 4 != 0 {
        f = f | Flags::USER;
    }
    if riscv && bits & 8 != 0 && bits & 3 == 2 {
        f = Flags::EXEC.with(Flags::USER, bits & 4 != 0);
    }
    f
}

fn expect(flags: Flags, access: AccessKind, mode: Privilege) -> bool {
    if mode == Privilege::User && !flags.contains(Flags::USER) {
        return false;
    }
    match access {
        AccessKind::Read => flags.contains(Flags::READ),
        AccessKind::Write => flags.contains(Flags::WRITE),
        AccessKind::Execute => {
            flags.contains(Flags::EXEC)
                && !(mode == Privilege::Supervisor && flags.contains(Flags::USER))
        }
    }
}

/// The entry points of translation, which must agree exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// `Mmu::translate`.
    Fast,
    /// `Mmu::translate_explained`.
    Explained,
    /// `Mmu::translate_run` on a run of one, falling back to `translate`.
    Run,
}

struct World {
    m: Machine,
    frames: SimpleFrames,
    spaces: [PageTable; 2],
    current: usize,
    /// (space, page start) -> (frame, level, flags)
    model: BTreeMap<(usize, u64), (u64, u32, Flags)>,
    huge_level: Option<u32>,
    riscv: bool,
    /// Which entry point translates.
    path: Path,
    /// Every translation's outcome, to compare the two paths.
    outcomes: Vec<Result<u64, Fault>>,
}

impl World {
    fn new(mut spec: MachineSpec, caches: bool, path: Path) -> World {
        if !caches {
            spec.tlbs.clear();
            spec.walk_caches.clear();
        }
        let riscv = spec.paging.format == vmsim::hw::paging::Format::Riscv;
        let huge_level = spec
            .paging
            .leaf_levels()
            .find(|&l| l > 1 && spec.paging.leaf_size(l) <= spec.ram_bytes / 8);
        let mut m = Machine::new(spec);
        let n = m.ram.nr_frames();
        let mut frames = SimpleFrames::new(n - n / 4, n);
        let p = m.spec.paging;
        let a = PageTable::new(&p, &mut m.ram, &mut frames, 1).unwrap();
        let b = PageTable::new(&p, &mut m.ram, &mut frames, 2).unwrap();
        m.mmu.set_context(a.root(), 1).unwrap();
        World {
            m,
            frames,
            spaces: [a, b],
            current: 0,
            model: BTreeMap::new(),
            huge_level,
            riscv,
            path,
            outcomes: Vec::new(),
        }
    }

    /// The page a slot names: base pages in one region, huge pages in another.
    fn page(&self, slot: usize, huge: bool) -> Option<(u64, u32)> {
        let p = &self.m.spec.paging;
        match (huge, self.huge_level) {
            (true, Some(l)) => {
                let size = p.leaf_size(l);
                let top = if p.sign_extend {
                    1u64 << (p.va_bits - 1)
                } else {
                    1u64 << p.va_bits.min(63)
                };
                let va = size * (8 + slot as u64);
                (va + size <= top).then_some((va, l))
            }
            _ => Some((p.page_size() * (1 + slot as u64), 1)),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let p = self.m.spec.paging;
        match *op {
            Op::Map {
                space,
                slot,
                huge,
                frame,
                flags,
            } => {
                let Some((va, level)) = self.page(slot, huge) else {
                    return Ok(());
                };
                let align = p.leaf_size(level) >> p.page_shift;
                let pfn = (frame % (self.m.ram.nr_frames() / 2)) / align * align;
                let f = flags_of(flags, self.riscv);
                let r = self.spaces[space].map(
                    &p,
                    &mut self.m.ram,
                    &mut self.frames,
                    VirtAddr(va),
                    Pfn(pfn),
                    level,
                    f,
                    Flags::RWX | Flags::USER,
                );
                let taken = self.model.contains_key(&(space, va));
                prop_assert_eq!(r.is_err(), taken, "map {:#x}: {:?}", va, r);
                if !taken {
                    self.model.insert((space, va), (pfn, level, f));
                }
            }
            Op::Unmap { space, slot, huge } => {
                let Some((va, _)) = self.page(slot, huge) else {
                    return Ok(());
                };
                match self.spaces[space].unmap(&p, &mut self.m.ram, VirtAddr(va)) {
                    Ok((_, flush)) => {
                        prop_assert!(self.model.remove(&(space, va)).is_some());
                        flush.apply(&mut self.m.mmu);
                    }
                    Err(_) => prop_assert!(!self.model.contains_key(&(space, va))),
                }
            }
            Op::Protect {
                space,
                slot,
                huge,
                flags,
            } => {
                let Some((va, _)) = self.page(slot, huge) else {
                    return Ok(());
                };
                let f = flags_of(flags, self.riscv);
                match self.spaces[space].set_flags(&p, &mut self.m.ram, VirtAddr(va), f) {
                    Ok(flush) => {
                        let e = self
                            .model
                            .get_mut(&(space, va))
                            .expect("protect succeeded on an unmapped page");
                        e.2 = f;
                        flush.apply(&mut self.m.mmu);
                    }
                    Err(_) => prop_assert!(!self.model.contains_key(&(space, va))),
                }
            }
            Op::Switch { space } => {
                self.current = space;
                let pt = self.spaces[space];
                self.m.mmu.set_context(pt.root(), pt.asid()).unwrap();
            }
            Op::Translate {
                slot,
                huge,
                offset,
                access,
                supervisor,
            } => {
                let Some((va, level)) = self.page(slot, huge) else {
                    return Ok(());
                };
                let size = p.leaf_size(level);
                let addr = va + offset % size;
                let access =
                    [AccessKind::Read, AccessKind::Write, AccessKind::Execute][access as usize];
                let mode = if supervisor {
                    Privilege::Supervisor
                } else {
                    Privilege::User
                };
                let at = VirtAddr(addr);
                let got = match self.path {
                    Path::Explained => self.m.explain(at, access, mode).result,
                    Path::Fast => self.m.translate(at, access, mode),
                    Path::Run => {
                        let mut out = [PhysAddr(0)];
                        if self.m.mmu.translate_run(&[at], access, mode, &mut out) == 1 {
                            Ok(out[0])
                        } else {
                            self.m.translate(at, access, mode)
                        }
                    }
                };
                self.outcomes.push(got.map(|pa| pa.0));
                match self.model.get(&(self.current, va)) {
                    Some(&(pfn, _, flags)) if expect(flags, access, mode) => {
                        prop_assert_eq!(
                            got.map(|pa| pa.0),
                            Ok((pfn << p.page_shift) + offset % size),
                            "{:?} {:#x}",
                            access,
                            addr
                        );
                    }
                    other => prop_assert!(
                        got.is_err(),
                        "{:?} {:?} of {:#x} should fault (model {:?}), got {:?}",
                        mode,
                        access,
                        addr,
                        other,
                        got
                    ),
                }
            }
            Op::FlushAll => self.m.mmu.flush_all(),
            Op::FlushAsid { space } => self.m.mmu.flush_asid(self.spaces[space].asid()),
            Op::InvalidatePage { slot, huge, all } => {
                let Some((va, _)) = self.page(slot, huge) else {
                    return Ok(());
                };
                let scope = if all {
                    AsidScope::All
                } else {
                    AsidScope::One(self.spaces[self.current].asid())
                };
                self.m.mmu.invalidate_page(VirtAddr(va), scope);
            }
        }
        Ok(())
    }
}

/// What every translation gave, the MMU's counters and each TLB's.
type RunOutcome = (Vec<Result<u64, Fault>>, MmuCounters, Vec<TlbCounters>);

/// Runs `ops` on a fresh machine; returns what every translation gave and the counters.
fn run(preset: &str, caches: bool, path: Path, ops: &[Op]) -> Result<RunOutcome, TestCaseError> {
    let mut w = World::new(MachineSpec::preset(preset).unwrap(), caches, path);
    for op in ops {
        w.apply(op)?;
    }
    let tlbs = w.m.mmu.tlbs().iter().map(|t| t.counters.clone()).collect();
    Ok((w.outcomes, w.m.mmu.counters.clone(), tlbs))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn translations_agree_with_a_reference_map(ops in proptest::collection::vec(op(), 1..200)) {
        for (preset, _) in PRESETS {
            for caches in [true, false] {
                let fast = run(preset, caches, Path::Fast, &ops)?;
                // The explain path and the run path must take exactly the same steps as
                // the fast path: same answers, same counters.
                for path in [Path::Explained, Path::Run] {
                    let other = run(preset, caches, path, &ops)?;
                    prop_assert_eq!(&fast, &other, "{} caches={} {:?}", preset, caches, path);
                }
            }
        }
    }
}
