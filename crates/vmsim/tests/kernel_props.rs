//! Property test of the kernel: random sequences of syscalls and loads and stores across
//! several processes, checked against a plain reference model (per-process maps of
//! pages to contents, with shared and copy-on-write semantics). Every byte read must be
//! the model's, every access the model refuses must fault (and kill), and every access
//! it allows must succeed.
//!
//! Running out of memory is not a way out: with RAM to spare no call may fail with
//! ENOMEM and the OOM killer may not run, and under memory pressure they may only where
//! the model's own count of the pages and page tables the processes need says memory is
//! really short. Where the processes' written pages outgrow RAM, the kernel must have
//! swapped; and a scenario that fills more than RAM must swap out, read back every byte
//! and leave its process alive.

mod support;

use proptest::prelude::*;
use std::collections::BTreeMap;
use vmsim::addr::VirtAddr;
use vmsim::hw::MachineSpec;
use vmsim::os::thp::ThpMode;
use vmsim::os::{
    AccessError, Errno, Event, Kernel, KernelConfig, MmapArgs, Pid, ProcState, Program, Prot,
    ReclaimPolicy, Signal,
};

#[derive(Clone, Debug)]
enum Op {
    Spawn,
    Fork {
        p: usize,
    },
    Exit {
        p: usize,
    },
    Mmap {
        p: usize,
        pages: u64,
        prot: u8,
        shared: bool,
    },
    Munmap {
        p: usize,
        region: usize,
        first: u64,
        pages: u64,
    },
    Mprotect {
        p: usize,
        region: usize,
        prot: u8,
    },
    /// Writes `value` at `offset` of every page of a region (many pages at once).
    Fill {
        p: usize,
        region: usize,
        offset: u64,
        value: u8,
    },
    Write {
        p: usize,
        region: usize,
        page: u64,
        offset: u64,
        value: u8,
    },
    Read {
        p: usize,
        region: usize,
        page: u64,
        offset: u64,
    },
    DontNeed {
        p: usize,
        region: usize,
        page: u64,
    },
    /// One wake of khugepaged: ranges of base pages may become huge pages.
    Collapse,
    /// Thread `tid` of process `p` runs now (on its own CPU on a machine of several).
    Thread {
        p: usize,
        tid: u32,
    },
}

/// Operations on mappings of up to `6 * scale` pages, touching their first `3 * scale`,
/// with whole regions filled at weight `fill`.
fn op(scale: u64, fill: u32) -> impl Strategy<Value = Op> {
    let p = 0..6usize;
    prop_oneof![
        1 => Just(Op::Spawn),
        2 => p.clone().prop_map(|p| Op::Fork { p }),
        1 => p.clone().prop_map(|p| Op::Exit { p }),
        4 => (p.clone(), 1..6 * scale, 0..8u8, any::<bool>())
            .prop_map(|(p, pages, prot, shared)| Op::Mmap { p, pages, prot, shared }),
        2 => (p.clone(), 0..8usize, 0..6u64, 1..4u64)
            .prop_map(|(p, region, first, pages)| Op::Munmap { p, region, first, pages }),
        2 => (p.clone(), 0..8usize, 0..8u8).prop_map(|(p, region, prot)| Op::Mprotect { p, region, prot }),
        10 => (p.clone(), 0..4usize, 0..3 * scale, 0..4u64, any::<u8>())
            .prop_map(|(p, region, page, offset, value)| Op::Write { p, region, page, offset, value }),
        10 => (p.clone(), 0..4usize, 0..3 * scale, 0..4u64)
            .prop_map(|(p, region, page, offset)| Op::Read { p, region, page, offset }),
        2 => (p.clone(), 0..8usize, 0..3 * scale)
            .prop_map(|(p, region, page)| Op::DontNeed { p, region, page }),
        3 => Just(Op::Collapse),
        fill => (p, 0..4usize, 0..4u64, any::<u8>())
            .prop_map(|(p, region, offset, value)| Op::Fill { p, region, offset, value }),
    ]
}

/// [`op`]'s operations with thread switches among them: on a machine of several CPUs
/// each thread runs on its own, so accesses and changes come from every CPU.
fn op_threads(scale: u64, fill: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => op(scale, fill),
        2 => (0..6usize, 0..3u32).prop_map(|(p, tid)| Op::Thread { p, tid }),
    ]
}

const PROTS: [Prot; 8] = [
    Prot::NONE,
    Prot::READ,
    Prot::RW,
    Prot::RW,
    Prot::RW,
    Prot::RW,
    Prot::RW,
    Prot::RW,
];

#[derive(Clone, Debug)]
struct Page {
    prot: Prot,
    shared: bool,
    cell: usize,
}

#[derive(Clone, Debug)]
struct ModelProc {
    pid: Pid,
    alive: bool,
    pages: BTreeMap<u64, Page>,
    /// Mappings made, as (first page address, pages): what ops pick addresses from.
    regions: Vec<(u64, u64)>,
}

struct World {
    k: Kernel,
    procs: Vec<ModelProc>,
    /// Whether a violation kills the process.
    kill: bool,
    /// Page contents: sparse bytes (absent = 0).
    cells: Vec<BTreeMap<u64, u8>>,
    /// For each cell, the cell whose frame it may still share (a fork's copy shares
    /// its parent's frame until either is written; a written cell has its own).
    backing: Vec<usize>,
    ps: u64,
    /// Whether memory is meant to run short (else ENOMEM and OOM kills are bugs).
    pressure: bool,
    /// Frames in RAM, and free right after boot.
    ram_frames: u64,
    free_at_boot: u64,
    /// Swap slots.
    slots: u64,
    /// Kernel events already followed.
    events_seen: usize,
}

impl World {
    fn new(spec: MachineSpec, config: KernelConfig) -> World {
        let kill = config.kill_on_violation;
        let ram_frames = spec.nr_frames();
        let swap_bytes = config.swap_bytes;
        let pressure = swap_bytes > 0;
        let k = Kernel::boot(spec, config);
        let ps = k.page_size();
        let slots = swap_bytes / ps;
        let free_at_boot = k.frame_baseline().free;
        let mut w = World {
            k,
            procs: Vec::new(),
            kill,
            cells: Vec::new(),
            backing: Vec::new(),
            ps,
            pressure,
            ram_frames,
            free_at_boot,
            slots,
            events_seen: 0,
        };
        w.spawn();
        w
    }

    fn spawn(&mut self) {
        // Under memory pressure there may be no room even for a new process.
        let Ok(pid) = self.k.spawn(&Program::small("prop", self.ps)) else {
            assert!(self.exhausted(), "spawn refused: {}", self.demand());
            return;
        };
        self.procs.push(ModelProc {
            pid,
            alive: true,
            pages: BTreeMap::new(),
            regions: Vec::new(),
        });
    }

    fn addr(&self, p: usize, region: usize, page: u64) -> Option<u64> {
        let r = self.procs[p]
            .regions
            .get(region % self.procs[p].regions.len().max(1))?;
        Some(r.0 + (page % (r.1 + 1)) * self.ps)
    }

    fn violation(&mut self, p: usize) {
        if self.kill {
            self.kill(p);
        }
    }

    fn kill(&mut self, p: usize) {
        self.procs[p].alive = false;
        self.procs[p].pages.clear();
    }

    /// Frames the live processes' written pages need at the least: one per distinct
    /// frame a written cell may stand in.
    fn dirty_frames(&self) -> u64 {
        let mut frames = std::collections::BTreeSet::new();
        for q in self.procs.iter().filter(|q| q.alive) {
            for pg in q.pages.values() {
                if !self.cells[pg.cell].is_empty() {
                    frames.insert(self.backing[pg.cell]);
                }
            }
        }
        frames.len() as u64
    }

    /// Frames that cannot go to swap, at the most: every shared page mapped (vmsim
    /// never swaps shared memory: docs/kernel.md), and for every live process the page
    /// tables that could cover every region it ever mapped (4-level tables: a root, and
    /// one table per 512 GiB, 1 GiB and 2 MiB span touched), plus a generous allowance
    /// for the program's own segments and their tables.
    fn pinned_frames(&self) -> u64 {
        const PER_PROCESS: u64 = 32;
        let mut shared = std::collections::BTreeSet::new();
        for q in self.procs.iter().filter(|q| q.alive) {
            shared.extend(q.pages.values().filter(|pg| pg.shared).map(|pg| pg.cell));
        }
        let mut n = shared.len() as u64;
        for q in self.procs.iter().filter(|q| q.alive) {
            let mut spans = [
                std::collections::BTreeSet::new(),
                std::collections::BTreeSet::new(),
                std::collections::BTreeSet::new(),
            ];
            for &(va, pages) in &q.regions {
                // Ops reach one page past a region's end.
                for i in 0..=pages {
                    let a = va + i * self.ps;
                    spans[0].insert(a >> 39);
                    spans[1].insert(a >> 30);
                    spans[2].insert(a >> 21);
                }
            }
            n += 1 + PER_PROCESS + spans.iter().map(|s| s.len() as u64).sum::<u64>();
        }
        n
    }

    fn demand(&self) -> String {
        format!(
            "{} written pages and at most {} pinned frames for {} processes; {} frames free at boot, {} swap slots",
            self.dirty_frames(),
            self.pinned_frames(),
            self.procs.iter().filter(|q| q.alive).count(),
            self.free_at_boot,
            self.slots
        )
    }

    /// Whether the model says memory may really be exhausted (computed from the model
    /// alone, with a factor of two to spare for watermarks, the swap cache and
    /// transient frames): what cannot be swapped fills half of RAM, or everything
    /// fills half of RAM and swap together. Without pressure, never.
    fn exhausted(&self) -> bool {
        if !self.pressure {
            return false;
        }
        let pinned = self.pinned_frames();
        let total = pinned + self.dirty_frames() + 1;
        2 * pinned > self.free_at_boot || 2 * total > self.free_at_boot + self.slots
    }

    /// An ENOMEM or an OOM kill is allowed only where memory is exhausted.
    fn check_exhausted(&self, what: &str) -> Result<(), TestCaseError> {
        prop_assert!(
            self.exhausted(),
            "{} with memory to spare: {}",
            what,
            self.demand()
        );
        Ok(())
    }

    /// Written pages that outgrow RAM must have gone to swap.
    fn check_swapped(&self) -> Result<(), TestCaseError> {
        if self.pressure && self.dirty_frames() > self.ram_frames {
            prop_assert!(
                self.k.counters().swap_outs > 0,
                "{} written pages in {} frames of RAM, and no swap-out",
                self.dirty_frames(),
                self.ram_frames
            );
        }
        Ok(())
    }

    /// Whether the OOM killer took the model's process `p` (possible only under memory
    /// pressure; the model cannot foresee it, so it follows).
    fn oom_killed(&self, p: usize) -> bool {
        matches!(
            self.k.process(self.procs[p].pid).map(|q| q.state),
            Some(ProcState::Killed(Signal::OomKill))
        )
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.follow_oom_kills()?;
        self.apply_op(op)?;
        self.follow_oom_kills()?;
        self.check_swapped()
    }

    /// Follows the OOM killer's kills, each of which must be where memory is exhausted.
    /// One allocation may kill several processes (a victim whose pages others still
    /// map frees nothing), so kills are followed in the order the kernel logged them:
    /// each is judged with the earlier victims gone and the later ones alive.
    fn follow_oom_kills(&mut self) -> Result<(), TestCaseError> {
        let events = self.k.events();
        let killed: Vec<Pid> = events[self.events_seen.min(events.len())..]
            .iter()
            .filter_map(|e| match e {
                Event::OomKill { pid, .. } => Some(*pid),
                _ => None,
            })
            .collect();
        self.events_seen = events.len();
        for pid in killed {
            if let Some(p) = self.procs.iter().position(|q| q.alive && q.pid == pid) {
                self.oom_kill(p)?;
            }
        }
        // Kills past the log's cap are followed in the model's order.
        for p in 0..self.procs.len() {
            if self.procs[p].alive && self.oom_killed(p) {
                self.oom_kill(p)?;
            }
        }
        Ok(())
    }

    fn oom_kill(&mut self, p: usize) -> Result<(), TestCaseError> {
        self.check_exhausted("an OOM kill")?;
        self.kill(p);
        Ok(())
    }

    fn apply_op(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let n = self.procs.len();
        let ps = self.ps;
        match *op {
            Op::Spawn => {
                if n < 5 {
                    self.spawn();
                }
            }
            Op::Fork { p } => {
                let p = p % n;
                let r = self.k.fork(self.procs[p].pid);
                if !self.procs[p].alive {
                    prop_assert_eq!(r, Err(Errno::ESRCH));
                    return Ok(());
                }
                // Under pressure a fork may find no room for its page tables.
                let Ok(pid) = r else {
                    prop_assert_eq!(r, Err(Errno::ENOMEM));
                    return self.check_exhausted("fork's ENOMEM");
                };
                let mut child = self.procs[p].clone();
                child.pid = pid;
                for page in child.pages.values_mut() {
                    if !page.shared {
                        let copy = self.cells[page.cell].clone();
                        self.cells.push(copy);
                        self.backing.push(self.backing[page.cell]);
                        page.cell = self.cells.len() - 1;
                    }
                }
                self.procs.push(child);
            }
            Op::Exit { p } => {
                let p = p % n;
                let r = self.k.exit(self.procs[p].pid, 0);
                prop_assert_eq!(r.is_ok(), self.procs[p].alive);
                self.kill(p);
            }
            Op::Mmap {
                p,
                pages,
                prot,
                shared,
            } => {
                let p = p % n;
                let prot = PROTS[prot as usize];
                let args = if shared {
                    MmapArgs::shared_anon(pages * ps, prot)
                } else {
                    MmapArgs::anon(pages * ps, prot)
                };
                let r = self.k.mmap(self.procs[p].pid, args);
                if !self.procs[p].alive {
                    prop_assert_eq!(r, Err(Errno::ESRCH));
                    return Ok(());
                }
                let Ok(va) = r.map(|v| v.0) else {
                    prop_assert_eq!(r, Err(Errno::ENOMEM));
                    return self.check_exhausted("mmap's ENOMEM");
                };
                for i in 0..pages {
                    self.cells.push(BTreeMap::new());
                    let cell = self.cells.len() - 1;
                    self.backing.push(cell);
                    let old = self.procs[p]
                        .pages
                        .insert(va + i * ps, Page { prot, shared, cell });
                    prop_assert!(
                        old.is_none(),
                        "mmap reused a mapped page {:#x}",
                        va + i * ps
                    );
                }
                self.procs[p].regions.push((va, pages));
            }
            Op::Munmap {
                p,
                region,
                first,
                pages,
            } => {
                let p = p % n;
                let Some(start) = self.addr(p, region, first) else {
                    return Ok(());
                };
                let r = self
                    .k
                    .munmap(self.procs[p].pid, VirtAddr(start), pages * ps);
                if !self.procs[p].alive {
                    prop_assert_eq!(r, Err(Errno::ESRCH));
                    return Ok(());
                }
                prop_assert_eq!(r, Ok(()));
                for i in 0..pages {
                    self.procs[p].pages.remove(&(start + i * ps));
                }
            }
            Op::Mprotect { p, region, prot } => {
                let p = p % n;
                let Some(start) = self.addr(p, region, 0) else {
                    return Ok(());
                };
                let len = self.procs[p].regions[region % self.procs[p].regions.len()].1;
                let prot = PROTS[prot as usize];
                let r = self
                    .k
                    .mprotect(self.procs[p].pid, VirtAddr(start), len * ps, prot);
                if !self.procs[p].alive {
                    prop_assert_eq!(r, Err(Errno::ESRCH));
                    return Ok(());
                }
                let whole = (0..len).all(|i| self.procs[p].pages.contains_key(&(start + i * ps)));
                if whole {
                    prop_assert_eq!(r, Ok(()));
                    for i in 0..len {
                        self.procs[p].pages.get_mut(&(start + i * ps)).unwrap().prot = prot;
                    }
                } else {
                    prop_assert_eq!(r, Err(Errno::ENOMEM));
                }
            }
            Op::Thread { p, tid } => {
                let p = p % n;
                let r = self.k.run_thread(self.procs[p].pid, tid);
                prop_assert_eq!(r.is_ok(), self.procs[p].alive, "{:?}", r);
            }
            Op::Collapse => {
                // Copies bytes, changes nothing a process can see.
                self.k.khugepaged_scan();
            }
            Op::DontNeed { p, region, page } => {
                let p = p % n;
                let Some(start) = self.addr(p, region, page) else {
                    return Ok(());
                };
                let r = self
                    .k
                    .madvise_dontneed(self.procs[p].pid, VirtAddr(start), ps);
                if !self.procs[p].alive {
                    return Ok(());
                }
                match self.procs[p].pages.get(&start) {
                    Some(page) => {
                        prop_assert_eq!(r, Ok(()));
                        if !page.shared {
                            // Private anonymous memory reads zeros again.
                            let c = page.cell;
                            self.cells[c].clear();
                        }
                    }
                    None => prop_assert_eq!(r, Err(Errno::ENOMEM)),
                }
            }
            Op::Fill {
                p,
                region,
                offset,
                value,
            } => {
                let p = p % n;
                let Some(r) = self.procs[p]
                    .regions
                    .get(region % self.procs[p].regions.len().max(1))
                    .copied()
                else {
                    return Ok(());
                };
                for i in 0..r.1 {
                    let va = r.0 + i * ps;
                    let pid = self.procs[p].pid;
                    if !self.procs[p].alive {
                        break;
                    }
                    let res = self.k.write(pid, VirtAddr(va + offset), &[value]);
                    match self.procs[p].pages.get(&va) {
                        _ if self.oom_killed(p) => self.follow_oom_kills()?,
                        Some(pg) if pg.prot.contains(Prot::WRITE) => {
                            prop_assert_eq!(res, Ok(()), "fill of {:#x}", va);
                            self.cells[pg.cell].insert(offset, value);
                            self.backing[pg.cell] = pg.cell;
                        }
                        _ => {
                            prop_assert!(
                                matches!(res, Err(AccessError::Signal { .. })),
                                "{:?}",
                                res
                            );
                            self.violation(p);
                        }
                    }
                }
            }
            Op::Write {
                p,
                region,
                page,
                offset,
                value,
            } => {
                let p = p % n;
                let Some(va) = self.addr(p, region, page) else {
                    return Ok(());
                };
                let pid = self.procs[p].pid;
                let r = self.k.write(pid, VirtAddr(va + offset % ps), &[value]);
                if !self.procs[p].alive {
                    prop_assert_eq!(r, Err(AccessError::NotRunning(pid)));
                    return Ok(());
                }
                match self.procs[p].pages.get(&va) {
                    _ if self.oom_killed(p) => self.follow_oom_kills()?,
                    Some(pg) if pg.prot.contains(Prot::WRITE) => {
                        prop_assert_eq!(r, Ok(()), "write to {:#x}", va);
                        self.cells[pg.cell].insert(offset % ps, value);
                        self.backing[pg.cell] = pg.cell;
                    }
                    _ => {
                        prop_assert!(matches!(r, Err(AccessError::Signal { .. })), "{:?}", r);
                        self.violation(p);
                    }
                }
            }
            Op::Read {
                p,
                region,
                page,
                offset,
            } => {
                let p = p % n;
                let Some(va) = self.addr(p, region, page) else {
                    return Ok(());
                };
                let pid = self.procs[p].pid;
                let mut b = [0u8];
                let r = self.k.read(pid, VirtAddr(va + offset % ps), &mut b);
                if !self.procs[p].alive {
                    prop_assert_eq!(r, Err(AccessError::NotRunning(pid)));
                    return Ok(());
                }
                match self.procs[p].pages.get(&va) {
                    _ if self.oom_killed(p) => self.follow_oom_kills()?,
                    Some(pg) if pg.prot != Prot::NONE => {
                        prop_assert_eq!(r, Ok(()), "read of {:#x}", va);
                        let want = self.cells[pg.cell]
                            .get(&(offset % ps))
                            .copied()
                            .unwrap_or(0);
                        prop_assert_eq!(b[0], want, "byte at {:#x}+{}", va, offset % ps);
                    }
                    _ => {
                        prop_assert!(matches!(r, Err(AccessError::Signal { .. })), "{:?}", r);
                        self.violation(p);
                    }
                }
            }
        }
        Ok(())
    }

    /// No CPU's TLB grants what the model does not: for every page of every region a
    /// live process mapped, an entry any CPU holds for it must be for a page the model
    /// maps, writable only if the model's is, readable only if it is not `PROT_NONE`.
    fn check_tlbs(&self) -> Result<(), TestCaseError> {
        use vmsim::hw::tlb::perm;
        let m = self.k.machine();
        for q in self.procs.iter().filter(|q| q.alive) {
            let Some(asid) = self
                .k
                .process(q.pid)
                .and_then(|p| p.mm.as_ref())
                .map(|mm| mm.pt.asid())
            else {
                continue;
            };
            for &(start, pages) in &q.regions {
                for i in 0..=pages {
                    let va = start + i * self.ps;
                    for c in 0..m.nr_cpus() {
                        let Some(e) = m.mmu_of(c).peek(VirtAddr(va), asid) else {
                            continue;
                        };
                        let page = q.pages.get(&va);
                        prop_assert!(
                            page.is_some(),
                            "CPU {} still maps unmapped page {:#x} of pid {:?}",
                            c,
                            va,
                            q.pid
                        );
                        let prot = page.map_or(Prot::NONE, |pg| pg.prot);
                        prop_assert!(
                            e.perms & perm::W == 0 || prot.contains(Prot::WRITE),
                            "CPU {} may write page {:#x} of pid {:?}, which is {:?}",
                            c,
                            va,
                            q.pid,
                            prot
                        );
                        prop_assert!(
                            e.perms & perm::R == 0 || prot != Prot::NONE,
                            "CPU {} may read PROT_NONE page {:#x} of pid {:?}",
                            c,
                            va,
                            q.pid
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Once every process has ended, every frame and table is back.
    fn finish(&mut self, base: vmsim::os::FrameBaseline) -> Result<(), TestCaseError> {
        for i in 0..self.procs.len() {
            if self.procs[i].alive {
                self.k.exit(self.procs[i].pid, 0).unwrap();
            }
        }
        self.k.drop_caches();
        prop_assert_eq!(self.k.frame_baseline(), base);
        prop_assert_eq!(self.k.committed(), 0);
        if let Some(s) = self.k.swap_stats() {
            prop_assert_eq!(s.used, 0, "swap slots leaked");
        }
        Ok(())
    }
}

/// Runs `ops` on a fresh machine `spec` booted with `config`, calling `check` after
/// each, then ends every process and checks that every frame came back.
fn run_ops(
    spec: MachineSpec,
    config: KernelConfig,
    ops: &[Op],
    check: impl Fn(&World) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let base = Kernel::boot(spec.clone(), config.clone()).frame_baseline();
    let mut w = World::new(spec, config);
    for op in ops {
        w.apply(op)?;
        check(&w)?;
    }
    w.finish(base)
}

fn pressure_spec() -> MachineSpec {
    // 1 MiB of RAM: about 150 frames for processes once the kernel and the PC's
    // device hole have theirs.
    support::machine("x86-64", Some(1 << 20))
}

fn pressure_config(reclaim: ReclaimPolicy) -> KernelConfig {
    KernelConfig {
        kill_on_violation: false,
        swap_bytes: 16 << 20,
        reclaim,
        ..KernelConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Far less RAM than the processes touch: pages go to swap and come back, file and
    /// copy-on-write pages are shared and split, and every byte read is still the last
    /// one written there.
    #[test]
    fn bytes_survive_memory_pressure(ops in proptest::collection::vec(op(20, 16), 1..150)) {
        for reclaim in [ReclaimPolicy::Clock, ReclaimPolicy::TwoList, ReclaimPolicy::Fifo] {
            run_ops(pressure_spec(), pressure_config(reclaim), &ops, |_| Ok(()))?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn processes_see_exactly_the_memory_the_model_says(
        ops in proptest::collection::vec(op(1, 3), 1..120)
    ) {
        for preset in ["x86-64", "sv39"] {
            // Violations handled (the process runs on: more sharing to check), and
            // violations fatal (the default).
            for kill in [false, true] {
                let config = KernelConfig {
                    kill_on_violation: kill,
                    ..KernelConfig::default()
                };
                run_ops(support::machine(preset, None), config, &ops, |_| Ok(()))?;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Transparent huge pages in every private anonymous mapping (mode `always`):
    /// regions of up to a few huge pages are written and read, split by `munmap`,
    /// `mprotect` and `MADV_DONTNEED`, collapsed again by khugepaged, shared by fork and
    /// copied on write, with RAM to spare and under memory pressure (huge pages split and
    /// swapped): every byte read is
    /// the model's, and every access the model refuses faults, so no TLB entry outlives
    /// a split that narrows access.
    #[test]
    fn bytes_survive_huge_pages(ops in proptest::collection::vec(op(400, 2), 1..60)) {
        for (ram, swap) in [(None, 0), (Some(12 << 20), 64 << 20)] {
            let spec = || support::machine("x86-64", ram);
            let config = KernelConfig {
                thp: ThpMode::Always,
                kill_on_violation: false,
                swap_bytes: swap,
                reclaim: ReclaimPolicy::TwoList,
                ..KernelConfig::default()
            };
            run_ops(spec(), config, &ops, |_| Ok(()))?;
        }
    }
}

/// Writes a different byte to each of `pages` pages of one process (more than RAM
/// holds), then reads them all back: the pages must have gone to swap and come back
/// intact, and the process must still be running. Returns the kernel for its counters.
fn fill_beyond_ram(reclaim: ReclaimPolicy, pages: u64, fork: bool) -> Kernel {
    let (mut k, pid) = support::boot_with(pressure_spec(), pressure_config(reclaim), "fill");
    let ps = k.page_size();
    let ram = pressure_spec().nr_frames();
    assert!(pages > ram, "{pages} pages fit in {ram} frames");
    let va = k.mmap(pid, MmapArgs::anon(pages * ps, Prot::RW)).unwrap().0;
    let byte = |i: u64, who: u64| (i * 7 + 1 + who * 101) as u8;
    for i in 0..pages {
        k.write(pid, VirtAddr(va + i * ps + i % 64), &[byte(i, 0)])
            .unwrap_or_else(|e| panic!("{reclaim:?}: write to page {i}: {e:?}"));
    }
    let mut pids = vec![(pid, 0)];
    if fork {
        // The child writes its own copy of every other page: both must read their own.
        let child = k.fork(pid).unwrap();
        for i in (0..pages).step_by(2) {
            k.write(child, VirtAddr(va + i * ps + i % 64), &[byte(i, 1)])
                .unwrap_or_else(|e| panic!("{reclaim:?}: child's write to page {i}: {e:?}"));
        }
        pids.push((child, 1));
    }
    for &(pid, who) in &pids {
        for i in 0..pages {
            let mut b = [0u8];
            k.read(pid, VirtAddr(va + i * ps + i % 64), &mut b)
                .unwrap_or_else(|e| panic!("{reclaim:?}: read of page {i}: {e:?}"));
            let want = byte(i, if who == 1 && i % 2 == 0 { 1 } else { 0 });
            assert_eq!(b[0], want, "{reclaim:?}: pid {pid:?} page {i}");
        }
        assert!(
            k.process(pid).map(|q| q.state) == Some(ProcState::Running),
            "{reclaim:?}: {pid:?} did not survive: {:?}",
            k.process(pid).map(|q| q.state)
        );
    }
    assert_eq!(k.counters().oom_kills, 0, "{reclaim:?}: OOM kills");
    assert!(
        k.counters().swap_outs >= pages - ram,
        "{reclaim:?}: {} swap-outs",
        k.counters().swap_outs
    );
    assert!(k.counters().swap_ins > 0, "{reclaim:?}: no swap-ins");
    k
}

/// The pressure scenarios really swap: twice and three times RAM's worth of written
/// pages go out to swap and come back intact, under every reclaim policy, with and
/// without a fork sharing them copy-on-write.
#[test]
fn pressure_really_swaps_and_the_process_survives() {
    for reclaim in [
        ReclaimPolicy::Clock,
        ReclaimPolicy::TwoList,
        ReclaimPolicy::Fifo,
    ] {
        fill_beyond_ram(reclaim, 512, false);
        fill_beyond_ram(reclaim, 400, true);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// khugepaged in an advised area of four huge-page ranges: pages written one by
    /// one in base pages or huge ones, let go by `MADV_DONTNEED`, huge mappings split
    /// and ranges collapsed again, in any order: every byte read back is the last one
    /// written (zero where never written or let go), before and after each collapse,
    /// and every collapse the scan counts leaves a huge page mapped.
    #[test]
    fn bytes_survive_khugepaged_collapses(
        ops in proptest::collection::vec((0..4u8, 0..2048u64, 1..=255u8), 1..120)
    ) {
        use vmsim::os::thp::HugeAdvice;
        const HUGE: u64 = 2 << 20;
        let (mut k, pid) =
            support::boot_with(support::machine("x86-64", None), KernelConfig::default(), "collapse");
        let args = MmapArgs {
            addr: Some(VirtAddr(0x10_0000_0000)),
            ..MmapArgs::anon(4 * HUGE, Prot::RW)
        };
        let at = k.mmap(pid, args).unwrap().0;
        prop_assert_eq!(at % HUGE, 0);
        let mut model: BTreeMap<u64, u8> = BTreeMap::new();
        let va = |page: u64| VirtAddr(at + page * 4096 + page % 7);
        for (kind, page, value) in ops {
            match kind {
                0 => {
                    k.write(pid, va(page), &[value]).unwrap();
                    model.insert(page, value);
                }
                1 => {
                    k.madvise_dontneed(pid, VirtAddr(at + page * 4096), 4096).unwrap();
                    model.remove(&page);
                }
                2 => {
                    // Advice flips between none and huge: in madvise mode, faults after
                    // it take huge pages or base pages.
                    let advice = if value % 2 == 0 { HugeAdvice::Huge } else { HugeAdvice::Default };
                    k.madvise_huge(pid, VirtAddr(at), 4 * HUGE, advice).unwrap();
                }
                _ => {
                    k.madvise_huge(pid, VirtAddr(at), 4 * HUGE, HugeAdvice::Huge).unwrap();
                    let before = k.nr_anon_huge_pages();
                    let n = k.khugepaged_scan();
                    prop_assert_eq!(k.nr_anon_huge_pages(), before + n);
                }
            }
        }
        k.madvise_huge(pid, VirtAddr(at), 4 * HUGE, HugeAdvice::Huge).unwrap();
        k.khugepaged_scan();
        for page in 0..2048 {
            let mut b = [0u8];
            k.read(pid, va(page), &mut b).unwrap();
            prop_assert_eq!(b[0], model.get(&page).copied().unwrap_or(0), "page {}", page);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The threads of each process run on CPUs of their own (three on x86-64, two on
    /// sv39, two sharing their L2 TLB), with RAM to spare and under memory pressure: after every operation no
    /// CPU's TLB grants an access the model refuses (munmap, mprotect, DONTNEED, swap
    /// and fork's write-protection all narrow access with a shootdown), and every byte
    /// one thread wrote is what another thread, on another CPU, reads.
    #[test]
    fn no_cpu_keeps_a_translation_a_change_took_away(
        ops in proptest::collection::vec(op_threads(20, 4), 1..150)
    ) {
        for (preset, cpus, shared, ram, swap) in [
            ("x86-64", 3, false, None, 0),
            ("sv39", 2, false, None, 0),
            ("x86-64", 2, true, None, 0),
            ("x86-64", 2, false, Some(1 << 20), 16 << 20),
        ] {
            let spec = || MachineSpec {
                shared_last_level_tlb: shared,
                ..support::machine(preset, ram).with_cpus(cpus, "test").unwrap()
            };
            let config = KernelConfig {
                kill_on_violation: false,
                swap_bytes: swap,
                reclaim: ReclaimPolicy::TwoList,
                ..KernelConfig::default()
            };
            run_ops(spec(), config, &ops, World::check_tlbs)?;
        }
    }
}
