//! Walks over hand-built tables on every format: leaves at each level, each fault, the
//! TLB and walk caches, Accessed and Dirty, invalidation.

use super::*;
use crate::addr::Pfn;
use crate::hw::page_table::{PageTable, SimpleFrames, Slot};
use crate::hw::pte::{x86_64 as x86, Pte};
use crate::hw::story::Step;
use crate::hw::{Machine, MachineSpec};

const URW: Flags = Flags(Flags::RW.0 | Flags::USER.0);
const TABLE: Flags = Flags(Flags::RWX.0 | Flags::USER.0);

struct Rig {
    m: Machine,
    frames: SimpleFrames,
    pt: PageTable,
}

impl Rig {
    fn new(preset: &str) -> Rig {
        Self::with_spec(MachineSpec::preset(preset).unwrap())
    }

    fn with_spec(spec: MachineSpec) -> Rig {
        let mut m = Machine::new(spec);
        let n = m.ram.nr_frames();
        let mut frames = SimpleFrames::new(n / 2, n);
        let paging = m.spec.paging;
        let pt = PageTable::new(&paging, &mut m.ram, &mut frames, 1).unwrap();
        m.mmu.set_context(pt.root(), 1).unwrap();
        Rig { m, frames, pt }
    }

    fn map(&mut self, va: u64, pfn: u64, level: u32, flags: Flags) {
        let p = self.m.spec.paging;
        self.pt
            .map(
                &p,
                &mut self.m.ram,
                &mut self.frames,
                VirtAddr(va),
                Pfn(pfn),
                level,
                flags,
                TABLE,
            )
            .unwrap();
    }

    fn tr(&mut self, va: u64, a: AccessKind, mode: Privilege) -> Result<u64, FaultCause> {
        self.m
            .translate(VirtAddr(va), a, mode)
            .map(|p| p.0)
            .map_err(|f| f.cause)
    }

    fn read(&mut self, va: u64) -> Result<u64, FaultCause> {
        self.tr(va, AccessKind::Read, Privilege::User)
    }

    fn leaf_flags(&self, va: u64) -> Flags {
        self.pt
            .lookup(&self.m.spec.paging, &self.m.ram, VirtAddr(va))
            .unwrap()
            .flags
    }
}

#[test]
fn x86_four_level_walk_reads_every_level_and_sets_accessed() {
    let mut r = Rig::new("x86-64");
    r.map(0x7f12_3456_7000, 0x42, 1, URW);
    let t = r.m.explain(
        VirtAddr(0x7f12_3456_7abc),
        AccessKind::Read,
        Privilege::User,
    );
    assert_eq!(t.result, Ok(PhysAddr(0x42abc)));
    let reads: Vec<(u32, u64)> = t.pte_reads().map(|r| (r.level, r.index)).collect();
    let va = VirtAddr(0x7f12_3456_7abc);
    let p = r.m.spec.paging;
    assert_eq!(
        reads,
        (1..=4)
            .rev()
            .map(|l| (l, p.index(va, l)))
            .collect::<Vec<_>>()
    );
    // Accessed set at every level, Dirty not yet.
    for r in t.pte_reads() {
        assert_eq!(r.updated, Some(r.raw | x86::A));
    }
    assert!(r.leaf_flags(0x7f12_3456_7000).contains(Flags::ACCESSED));
    assert!(!r.leaf_flags(0x7f12_3456_7000).contains(Flags::DIRTY));
    // The second access hits the L1 DTLB and reads nothing.
    let t2 = r.m.explain(
        VirtAddr(0x7f12_3456_7000),
        AccessKind::Read,
        Privilege::User,
    );
    assert_eq!(t2.tlb_hit(), Some("L1d"));
    assert_eq!(t2.pte_reads().count(), 0);
    assert_eq!(r.m.mmu.counters.walks, 1);
    assert_eq!(r.m.mmu.counters.pte_reads, 4);
}

#[test]
fn writes_set_dirty_even_after_a_read_cached_the_page() {
    let mut r = Rig::new("x86-64");
    r.map(0x1000, 7, 1, URW);
    r.read(0x1000).unwrap();
    assert_eq!(r.tr(0x1008, AccessKind::Write, Privilege::User), Ok(0x7008));
    assert_eq!(r.m.mmu.counters.dirty_rewalks, 1);
    assert!(r.leaf_flags(0x1000).contains(Flags::DIRTY));
    // Now the entry is dirty: further writes hit.
    let walks = r.m.mmu.counters.walks;
    r.tr(0x1010, AccessKind::Write, Privilege::User).unwrap();
    assert_eq!(r.m.mmu.counters.walks, walks);
}

#[test]
fn huge_leaves_at_each_level() {
    let cases: &[(&str, u32, u64)] = &[
        ("x86-64", 2, 2 << 20),
        ("x86-64", 3, 1 << 30),
        ("x86-64-la57", 3, 1 << 30),
        ("sv39", 2, 2 << 20),
        ("sv39", 3, 1 << 30),
        ("sv48", 4, 512 << 30),
        ("textbook-2level", 2, 4 << 20),
    ];
    for &(preset, level, size) in cases {
        let mut spec = MachineSpec::preset(preset).unwrap();
        // Enough RAM for the frame the leaf names to be aligned.
        spec.ram_bytes = spec.ram_bytes.max(4 * size).min(1 << spec.paging.pa_bits);
        let mut r = Rig::with_spec(spec);
        let frames = size >> r.m.spec.paging.page_shift;
        let va = 3 * size;
        r.map(va, frames, level, URW);
        let off = size - 8;
        let t =
            r.m.explain(VirtAddr(va + off), AccessKind::Write, Privilege::User);
        assert_eq!(t.result, Ok(PhysAddr(size + off)), "{preset} level {level}");
        let reads = r.m.spec.paging.levels - level + 1;
        assert_eq!(
            t.pte_reads().count() as u32,
            reads,
            "{preset} level {level}"
        );
        let flags = r.leaf_flags(va);
        assert!(
            flags.contains(Flags::ACCESSED | Flags::DIRTY),
            "{preset}: {flags}"
        );
        // The page is cached as one entry where a TLB holds that size.
        let t =
            r.m.explain(VirtAddr(va + 8), AccessKind::Read, Privilege::User);
        assert_eq!(t.result, Ok(PhysAddr(size + 8)));
        if preset != "sv48" {
            assert!(
                t.tlb_hit().is_some(),
                "{preset} level {level}: huge page not cached"
            );
        }
    }
}

#[test]
fn each_fault_cause() {
    let mut r = Rig::new("x86-64");
    assert_eq!(r.read(0x5000), Err(FaultCause::NotPresent { level: 4 }));
    r.map(0x1000, 1, 1, URW);
    assert_eq!(r.read(0x3000), Err(FaultCause::NotPresent { level: 1 }));
    assert_eq!(r.read(0x40_0000), Err(FaultCause::NotPresent { level: 2 }));
    r.map(0x2000, 2, 1, Flags::READ | Flags::USER);
    assert_eq!(
        r.tr(0x2000, AccessKind::Write, Privilege::User),
        Err(FaultCause::WriteProtect)
    );
    assert_eq!(
        r.tr(0x2000, AccessKind::Execute, Privilege::User),
        Err(FaultCause::NoExecute)
    );
    r.map(0x4000, 4, 1, Flags::RWX);
    assert_eq!(r.read(0x4000), Err(FaultCause::UserToSupervisor));
    assert_eq!(
        r.tr(0x4000, AccessKind::Execute, Privilege::Supervisor),
        Ok(0x4000)
    );
    r.map(0x6000, 6, 1, Flags::RWX | Flags::USER);
    assert_eq!(
        r.tr(0x6000, AccessKind::Execute, Privilege::User),
        Ok(0x6000)
    );
    assert_eq!(
        r.tr(0x6000, AccessKind::Execute, Privilege::Supervisor),
        Err(FaultCause::SupervisorExecUser)
    );
    assert_eq!(
        r.tr(0x6000, AccessKind::Write, Privilege::Supervisor),
        Ok(0x6000)
    );
    assert_eq!(r.read(0x0000_8000_0000_0000), Err(FaultCause::NonCanonical));
    // Reserved: an address bit beyond MAXPHYADDR (46) in the leaf.
    let m =
        r.pt.lookup(&r.m.spec.paging, &r.m.ram, VirtAddr(0x1000))
            .unwrap();
    r.m.ram
        .write_uint(m.pte_addr, 8, x86::P | x86::US | (1 << 50))
        .unwrap();
    r.m.mmu.flush_all();
    assert_eq!(r.read(0x1000), Err(FaultCause::Reserved { level: 1 }));
    // A root outside RAM.
    r.m.mmu.set_context(PhysAddr(r.m.ram.size()), 3).unwrap();
    assert!(matches!(r.read(0x1000), Err(FaultCause::BusError { .. })));
    let c = &r.m.mmu.counters;
    assert_eq!(c.faults_of(FaultCause::NotPresent { level: 0 }), 3);
    assert_eq!(c.faults_of(FaultCause::WriteProtect), 1);
    assert_eq!(c.total_faults(), 10);
}

#[test]
fn permissions_are_the_and_of_every_level_on_x86() {
    let mut r = Rig::new("x86-64");
    let p = r.m.spec.paging;
    // The leaf says user-writable, but the table entries above say supervisor, read-only.
    r.pt.map(
        &p,
        &mut r.m.ram,
        &mut r.frames,
        VirtAddr(0x1000),
        Pfn(1),
        1,
        URW | Flags::EXEC,
        Flags::READ,
    )
    .unwrap();
    assert_eq!(r.read(0x1000), Err(FaultCause::UserToSupervisor));
    assert_eq!(
        r.tr(0x1000, AccessKind::Write, Privilege::Supervisor),
        Err(FaultCause::WriteProtect)
    );
    assert_eq!(
        r.tr(0x1000, AccessKind::Execute, Privilege::Supervisor),
        Err(FaultCause::NoExecute)
    );
}

#[test]
fn riscv_execute_only_and_reserved_encodings() {
    let mut r = Rig::new("sv39");
    r.map(0x1000, 1, 1, Flags::EXEC | Flags::USER);
    assert_eq!(
        r.tr(0x1000, AccessKind::Execute, Privilege::User),
        Ok(0x1000)
    );
    assert_eq!(r.read(0x1000), Err(FaultCause::NoRead));
    // Sv39 addresses are sign-extended from bit 38.
    assert_eq!(r.read(1 << 38), Err(FaultCause::NonCanonical));
    assert_eq!(
        r.read(0xffff_ffc0_0000_0000),
        Err(FaultCause::NotPresent { level: 3 })
    );
    // A pointer at level 1 is reserved.
    let m =
        r.pt.lookup(&r.m.spec.paging, &r.m.ram, VirtAddr(0x1000))
            .unwrap();
    r.m.ram.write_uint(m.pte_addr, 8, 1 | (9 << 10)).unwrap();
    r.m.mmu.flush_all();
    assert_eq!(r.read(0x1000), Err(FaultCause::Reserved { level: 1 }));
}

#[test]
fn textbook_single_level_table_spans_frames() {
    let mut r = Rig::new("textbook");
    let p = r.m.spec.paging;
    assert_eq!(p.table_frames(1), 8);
    // VPN 0xff is in the last frame of the 512-byte table.
    r.map(0x3fc0, 0x2d, 1, URW);
    let t =
        r.m.explain(VirtAddr(0x3fd5), AccessKind::Read, Privilege::User);
    assert_eq!(t.result, Ok(PhysAddr(0x2d << 6 | 0x15)));
    let read = t.pte_reads().next().unwrap();
    assert_eq!(read.index, 0xff);
    assert_eq!(read.pte_addr.0, r.pt.root().0 + 0xff * 2);
    assert!(matches!(read.pte, Pte::Leaf { pfn: Pfn(0x2d), .. }));
    assert_eq!(r.read(0x4000), Err(FaultCause::NonCanonical));
    // TLB: 4 sets; VPN 0xff -> set 3, tag 0x3f.
    let Some(Step::Tlb { probes, .. }) =
        r.m.explain(VirtAddr(0x3fd5), AccessKind::Read, Privilege::User)
            .steps
            .first()
            .cloned()
    else {
        panic!()
    };
    assert_eq!(
        (probes[0].set, probes[0].tag, probes[0].vpn),
        (3, 0x3f, 0xff)
    );
    assert!(probes[0].way.is_some());
}

#[test]
fn walk_caches_skip_upper_levels() {
    let mut r = Rig::new("x86-64");
    r.map(0x1000, 1, 1, URW);
    r.map(0x2000, 2, 1, URW);
    r.read(0x1000).unwrap();
    assert_eq!(r.m.mmu.counters.pte_reads, 4);
    r.read(0x2000).unwrap();
    // The PDE cache gives the PT: one read.
    assert_eq!(r.m.mmu.counters.pte_reads, 5);
    let pde = r.m.mmu.walk_caches().iter().find(|w| w.level == 2).unwrap();
    assert_eq!(pde.counters.hits, 1);
    // A page in another 2 MiB region of the same 1 GiB region hits the PDPTE cache.
    r.map(0x40_0000, 3, 1, URW);
    r.read(0x40_0000).unwrap();
    assert_eq!(r.m.mmu.counters.pte_reads, 7);
}

#[test]
fn unmap_needs_its_flush_and_the_flush_works() {
    let mut r = Rig::new("x86-64");
    let p = r.m.spec.paging;
    r.map(0x1000, 1, 1, URW);
    r.read(0x1000).unwrap();
    let (old, flush) = r.pt.unmap(&p, &mut r.m.ram, VirtAddr(0x1000)).unwrap();
    assert_eq!(old.pfn, Pfn(1));
    assert!(old.flags.contains(Flags::ACCESSED));
    // Before the flush the TLB still grants the old translation: the model is real.
    assert_eq!(r.read(0x1000), Ok(0x1000));
    flush.apply(&mut r.m.mmu);
    assert_eq!(r.read(0x1000), Err(FaultCause::NotPresent { level: 1 }));
    // Narrowing with set_flags, likewise.
    r.map(0x2000, 2, 1, URW);
    r.tr(0x2000, AccessKind::Write, Privilege::User).unwrap();
    r.pt.set_flags(
        &p,
        &mut r.m.ram,
        VirtAddr(0x2000),
        Flags::READ | Flags::USER,
    )
    .unwrap()
    .apply(&mut r.m.mmu);
    assert_eq!(
        r.tr(0x2000, AccessKind::Write, Privilege::User),
        Err(FaultCause::WriteProtect)
    );
    // Widening needs no flush: the stale entry is dropped and walked again.
    r.map(0x3000, 3, 1, Flags::READ | Flags::USER);
    r.read(0x3000).unwrap();
    let widen =
        r.pt.set_flags(&p, &mut r.m.ram, VirtAddr(0x3000), URW | Flags::DIRTY)
            .unwrap();
    assert_eq!(r.tr(0x3000, AccessKind::Write, Privilege::User), Ok(0x3000));
    assert_eq!(r.m.mmu.counters.stale_rewalks, 1);
    let (_, unmap) = r.pt.unmap(&p, &mut r.m.ram, VirtAddr(0x3000)).unwrap();
    widen.merge(unmap).apply(&mut r.m.mmu);
    assert_eq!(r.read(0x3000), Err(FaultCause::NotPresent { level: 1 }));
}

#[test]
fn context_switches_with_and_without_asids() {
    // x86-64 preset: PCID-tagged. Two address spaces map the same VA differently.
    let mut r = Rig::new("x86-64");
    let p = r.m.spec.paging;
    let pt2 = PageTable::new(&p, &mut r.m.ram, &mut r.frames, 2).unwrap();
    r.map(0x1000, 1, 1, URW);
    pt2.map(
        &p,
        &mut r.m.ram,
        &mut r.frames,
        VirtAddr(0x1000),
        Pfn(9),
        1,
        URW,
        TABLE,
    )
    .unwrap();
    assert_eq!(r.read(0x1000), Ok(0x1000));
    r.m.mmu.set_context(pt2.root(), 2).unwrap();
    assert_eq!(r.read(0x1000), Ok(0x9000));
    r.m.mmu.set_context(r.pt.root(), 1).unwrap();
    let walks = r.m.mmu.counters.walks;
    assert_eq!(r.read(0x1000), Ok(0x1000));
    assert_eq!(
        r.m.mmu.counters.walks, walks,
        "tagged entry survived the switch"
    );
    assert_eq!(
        r.m.mmu.set_context(r.pt.root(), 1 << 12),
        Err(MmuError::AsidTooWide {
            asid: 4096,
            bits: 12
        })
    );

    // textbook preset: untagged, so a switch flushes non-global entries.
    let mut t = Rig::new("textbook");
    t.map(0x40, 1, 1, URW);
    t.map(0x80, 2, 1, URW | Flags::GLOBAL);
    t.read(0x40).unwrap();
    t.read(0x80).unwrap();
    let root = t.pt.root();
    t.m.mmu.set_context(root, 0).unwrap();
    let walks = t.m.mmu.counters.walks;
    t.read(0x80).unwrap();
    assert_eq!(t.m.mmu.counters.walks, walks, "global entry survived");
    t.read(0x40).unwrap();
    assert_eq!(
        t.m.mmu.counters.walks,
        walks + 1,
        "non-global entry was flushed"
    );
}

#[test]
fn inclusive_hierarchy_back_invalidates() {
    let toml = r#"
        preset = "x86-64"
        [tlb]
        inclusion = "inclusive"
        [[tlb.array]]
        level = 1
        holds = "unified"
        entries = 4
        ways = "full"
        page_sizes = ["4KiB"]
        [[tlb.array]]
        level = 2
        holds = "unified"
        entries = 4
        ways = "full"
        page_sizes = ["4KiB"]
    "#;
    let spec = MachineSpec::from_toml(toml, "test").unwrap();
    let mut r = Rig::with_spec(spec);
    for i in 0..8u64 {
        r.map(0x1000 * (i + 1), i + 1, 1, URW);
    }
    // Touch 1..4, then re-touch 1 in L1 only (L1 hit: L2 LRU order unchanged), then 5:
    // L2 evicts its LRU (page 1), and inclusion removes page 1 from L1 too.
    for i in 1..=4u64 {
        r.read(0x1000 * i).unwrap();
    }
    r.read(0x1000).unwrap();
    r.read(0x5000).unwrap();
    let walks = r.m.mmu.counters.walks;
    r.read(0x1000).unwrap();
    assert_eq!(r.m.mmu.counters.walks, walks + 1, "page 1 left L1 with L2");
    assert!(r.m.mmu.tlbs()[0].counters.evictions + r.m.mmu.tlbs()[0].counters.invalidated > 0);
}

#[test]
fn counters_and_cycles_add_up() {
    let mut r = Rig::new("x86-64");
    for i in 0..100u64 {
        r.map(0x10_0000 + i * 0x1000, 100 + i, 1, URW);
    }
    for _ in 0..3 {
        for i in 0..100u64 {
            r.read(0x10_0000 + i * 0x1000).unwrap();
        }
    }
    let l1 =
        &r.m.mmu
            .tlbs()
            .iter()
            .find(|t| t.name == "L1d")
            .unwrap()
            .counters;
    assert_eq!(l1.total_hits() + l1.total_misses(), 300);
    assert_eq!(l1.misses[1], l1.total_misses());
    // 100 pages > 64 L1 entries but < 1536 L2 entries: the walks are the cold ones.
    assert_eq!(r.m.mmu.counters.walks, 100);
    let l2 =
        &r.m.mmu
            .tlbs()
            .iter()
            .find(|t| t.name == "L2")
            .unwrap()
            .counters;
    assert_eq!(l2.total_misses(), 100);
    assert_eq!(l2.total_hits(), l1.total_misses() - 100);
    assert!(r.m.mmu.estimated_cycles() > 300);
    assert_eq!(r.m.mmu.estimated_cycles(), r.m.mmu.cycles_from_counters());
    // A fault, a write to a page cached clean (a walk again) and a stepped
    // translation count their lookups too.
    assert!(r.read(0x90_0000).is_err());
    r.tr(0x10_0000, AccessKind::Write, Privilege::User).unwrap();
    let _ = r.m.mmu.translate_explained(
        &mut r.m.ram,
        VirtAddr(0x10_1000),
        AccessKind::Read,
        Privilege::User,
    );
    assert_eq!(r.m.mmu.estimated_cycles(), r.m.mmu.cycles_from_counters());
    r.m.mmu.reset_counters();
    assert_eq!(r.m.mmu.estimated_cycles(), 0);
}

#[test]
fn runs_translate_exactly_as_single_calls() {
    use crate::hw::machine::Replacement;
    for repl in [Replacement::Lru, Replacement::Plru, Replacement::Random] {
        let mut spec = MachineSpec::preset("x86-64").unwrap();
        for t in &mut spec.tlbs {
            for a in &mut t.arrays {
                a.replacement = repl;
            }
        }
        let mut one = Rig::with_spec(spec.clone());
        let mut run = Rig::with_spec(spec);
        for r in [&mut one, &mut run] {
            for i in 0..96 {
                r.map(0x10_0000 + i * 4096, 200 + i, 1, URW);
            }
        }
        // A stream with locality (runs of hits) and a working set larger than the L1
        // (misses and evictions in between), with a few faults.
        let mut s = 7u64;
        let vas: Vec<VirtAddr> = (0..20_000)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let page = if s % 8 == 0 { s % 100 } else { s % 40 };
                VirtAddr(0x10_0000 + page * 4096 + (s >> 40) % 4096)
            })
            .collect();
        for kind in [AccessKind::Read, AccessKind::Write] {
            let a: Vec<_> = vas
                .iter()
                .map(|&va| one.m.translate(va, kind, Privilege::User))
                .collect();
            let mut b = Vec::new();
            let mut out = vec![PhysAddr(0); vas.len()];
            let mut i = 0;
            while i < vas.len() {
                let n = run
                    .m
                    .mmu
                    .translate_run(&vas[i..], kind, Privilege::User, &mut out[i..]);
                b.extend(out[i..i + n].iter().map(|&p| Ok(p)));
                i += n;
                if i < vas.len() {
                    b.push(run.m.translate(vas[i], kind, Privilege::User));
                    i += 1;
                }
            }
            assert_eq!(a, b, "{repl:?} {kind:?}");
            assert_eq!(one.m.mmu.counters, run.m.mmu.counters, "{repl:?}");
            // The running cycle count is the one the counters make, both ways.
            for m in [&one.m.mmu, &run.m.mmu] {
                assert_eq!(m.estimated_cycles(), m.cycles_from_counters(), "{repl:?}");
            }
            for (x, y) in one.m.mmu.tlbs().iter().zip(run.m.mmu.tlbs()) {
                assert_eq!(x.counters, y.counters, "{repl:?} {}", x.name);
            }
        }
        // Loads and stores interleaved, with an instruction fetch now and then: one
        // run takes the loads and stores together and stops before each fetch.
        let kinds: Vec<AccessKind> = (0..vas.len())
            .map(|i| match (i * 7919) % 13 {
                0 => AccessKind::Execute,
                1..=4 => AccessKind::Write,
                _ => AccessKind::Read,
            })
            .collect();
        let a: Vec<_> = vas
            .iter()
            .zip(&kinds)
            .map(|(&va, &kind)| one.m.translate(va, kind, Privilege::User))
            .collect();
        let mut b = Vec::new();
        let mut out = vec![PhysAddr(0); vas.len()];
        let (mut i, mut runs) = (0, 0);
        while i < vas.len() {
            let n = run
                .m
                .mmu
                .translate_run(&vas[i..], &kinds[i..], Privilege::User, &mut out[i..]);
            runs += (n > 1) as u32;
            b.extend(out[i..i + n].iter().map(|&p| Ok(p)));
            i += n;
            if i < vas.len() {
                b.push(run.m.translate(vas[i], kinds[i], Privilege::User));
                i += 1;
            }
        }
        assert_eq!(a, b, "{repl:?} mixed");
        assert_eq!(one.m.mmu.counters, run.m.mmu.counters, "{repl:?} mixed");
        for (x, y) in one.m.mmu.tlbs().iter().zip(run.m.mmu.tlbs()) {
            assert_eq!(x.counters, y.counters, "{repl:?} mixed {}", x.name);
        }
        assert!(runs > 500, "{runs} runs of loads and stores");
        assert!(run.m.mmu.tlbs()[1].counters.total_hits() > 10_000);
        assert!(run.m.mmu.tlbs()[1].counters.evictions > 100);
    }
}

#[test]
fn a_fault_names_the_base_page_entry_it_stopped_at_and_only_that() {
    for preset in ["x86-64", "x86-64-la57", "sv39", "sv48"] {
        let mut r = Rig::new(preset);
        let p = r.m.spec.paging;
        // A read-only leaf: a write faults at level 1, naming the leaf's entry.
        r.map(0x40_0000, 0x42, 1, Flags(Flags::READ.0 | Flags::USER.0));
        let f =
            r.m.translate(VirtAddr(0x40_0008), AccessKind::Write, Privilege::User)
                .unwrap_err();
        let want = r.pt.slot(&p, &r.m.ram, VirtAddr(0x40_0000));
        assert!(matches!(want, Some(Slot::Leaf(_))), "{preset}");
        let at = f.entry.expect("the walk reached level 1");
        assert_eq!(PageTable::slot_at(&p, &r.m.ram, at), want, "{preset}");
        // A software entry beside it: not present at level 1, same entry as a walk.
        r.pt.write_soft(
            &p,
            &mut r.m.ram,
            &mut r.frames,
            VirtAddr(0x40_1000),
            77,
            TABLE,
        )
        .unwrap();
        let f =
            r.m.translate(VirtAddr(0x40_1000), AccessKind::Read, Privilege::User)
                .unwrap_err();
        assert_eq!(f.cause, FaultCause::NotPresent { level: 1 }, "{preset}");
        let want = r.pt.slot(&p, &r.m.ram, VirtAddr(0x40_1000));
        assert!(
            matches!(want, Some(Slot::Soft { value: 77, .. })),
            "{preset}"
        );
        assert_eq!(PageTable::slot_at(&p, &r.m.ram, f.entry.unwrap()), want);
        // Far away, a table above level 1 is missing: no entry to name.
        let f =
            r.m.translate(VirtAddr(0x1000_0000), AccessKind::Read, Privilege::User)
                .unwrap_err();
        assert!(matches!(f.cause, FaultCause::NotPresent { level } if level > 1));
        assert_eq!(f.entry, None, "{preset}");
    }
}

/// Each CPU fills its own TLBs; with the last level shared, a page one CPU translated
/// is an L2 hit on the next, and the running CPU's MMU holds the one L2.
#[test]
fn cpus_have_their_own_tlbs_unless_the_last_level_is_shared() {
    for shared in [false, true] {
        let mut spec = MachineSpec::preset("x86-64")
            .unwrap()
            .with_cpus(2, "test")
            .unwrap();
        spec.shared_last_level_tlb = shared;
        let mut r = Rig::with_spec(spec);
        r.map(0x1000, 0x10, 1, URW);
        let root = r.pt.root();
        assert!(r.read(0x1000).is_ok());
        r.m.run_on(1);
        assert_eq!(r.m.cpu(), 1);
        r.m.mmu.set_context(root, 1).unwrap();
        assert!(r.read(0x1000).is_ok());
        let l2 = |m: &Mmu| m.tlbs()[2].counters.total_hits();
        assert_eq!(l2(&r.m.mmu), shared as u64, "shared {shared}");
        // Every CPU walked once, or only the first.
        let walks: u64 = r.m.mmus().map(|m| m.counters.walks).sum();
        assert_eq!(walks, if shared { 1 } else { 2 });
        // The parked CPU's stand-in for the shared L2 holds nothing.
        let parked = r.m.mmu_of(0);
        assert!(parked.peek(VirtAddr(0x1000), 1).is_some());
        assert_eq!(parked.tlbs()[2].occupancy() > 0, !shared);
    }
}

#[test]
fn a_prefetched_walk_changes_nothing_the_next_walk_sees() {
    // (preset, a mapped page, its frame, an unmapped address)
    for (preset, page, pfn, hole) in [
        ("x86-64", 0x40_0000, 0x42, 0x80_0000),
        ("sv39", 0x40_0000, 0x42, 0x80_0000),
        ("textbook", 0x3fc0, 0x2d, 0x40),
    ] {
        let mut r = Rig::new(preset);
        let p = r.m.spec.paging;
        r.map(page, pfn, 1, URW);
        let before = r.m.mmu.counters.clone();
        let leaf = r.pt.lookup(&p, &r.m.ram, VirtAddr(page)).unwrap().pte_addr;
        // It names the level-1 entry it fetched; none where the walk would not reach
        // one (a non-canonical address).
        assert_eq!(
            r.m.mmu.prefetch_walk(&r.m.ram, VirtAddr(page + 1)),
            Some(leaf),
            "{preset}"
        );
        r.m.mmu.prefetch_walk(&r.m.ram, VirtAddr(hole));
        assert_eq!(
            r.m.mmu.prefetch_walk(&r.m.ram, VirtAddr(1 << 62)),
            None,
            "{preset}"
        );
        assert_eq!(r.m.mmu.counters, before, "{preset}: nothing counted");
        assert!(
            !r.leaf_flags(page).contains(Flags::ACCESSED),
            "{preset}: no bit set"
        );
        // The real walk still reads every level: no walk cache was filled.
        assert_eq!(r.read(page + 1), Ok((pfn << p.page_shift) + 1), "{preset}");
        assert_eq!(r.m.mmu.counters.walks, 1, "{preset}");
        assert_eq!(r.m.mmu.counters.pte_reads, p.levels as u64, "{preset}");
    }
}
