//! The loop that feeds trace events to the kernel and the MMU, and what it counts.
//!
//! OS events become system calls of the simulated kernel; accesses go through
//! [`Kernel::access_run`] in runs of one process and one kind, so TLB hits take the
//! MMU's run path.
//!
//! A process that the trace starts with `spawn` (or `fork`) has exactly the memory the
//! trace gives it: an access outside its mappings is a SIGSEGV. A process the trace
//! never spawned (every lackey, ChampSim, plain and oracleGeneral trace; and any pid
//! that first appears in an access, `mmap`, `brk` or shared-memory attach: see
//! [`Sim::creates`]; any other event on such a pid is refused) starts with an empty
//! address space, and its
//! regions are *inferred*: the first access to an unmapped address maps the free gap
//! around it within its aligned 2 MiB chunk as private anonymous memory (read-write-
//! execute; read-write or read-execute when the kernel enforces W^X, after the first
//! access). Its `brk` events map or unmap the range between the old and the new break.
//!
//! An access is translated once per page it touches, whatever its size.

use crate::addr::PhysAddr;
use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use crate::os::{AccessError, AccessStory, Kernel, MapSource, MmapArgs, Pid, Program, Prot};
use crate::trace::{for_each_batch, Event, EventReader, MapKind, TraceError, TracePid};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// Bytes of the aligned chunks regions are inferred in.
pub const INFER_CHUNK: u64 = 2 << 20;
const RUN: usize = 512;
const PAGE_CACHE: usize = 4096;

/// What the replay counted, beyond the kernel's and the hardware's counters.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct SimStats {
    /// Events read.
    pub events: u64,
    /// Accesses in the trace.
    pub accesses: u64,
    /// Translations made (an access that crosses a page boundary makes two).
    pub translations: u64,
    /// OS events applied.
    pub os_events: u64,
    /// Regions mapped by inference.
    pub inferred_regions: u64,
    /// Bytes mapped by inference.
    pub inferred_bytes: u64,
    /// Accesses skipped: by processes that had exited or been killed, or at addresses
    /// no user mapping can hold (the kernel half, beyond the address width).
    pub skipped_accesses: u64,
    /// Accesses that got a signal.
    pub signalled_accesses: u64,
    /// OS events the kernel refused.
    pub failed_events: u64,
    /// The first refusals, described.
    pub failures: Vec<String>,
}

/// One row of `--interval` output: the counters after `accesses` accesses.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct IntervalRow {
    /// Accesses so far.
    pub accesses: u64,
    /// Misses of the first-level TLBs so far.
    pub tlb_misses: u64,
    /// Page walks so far.
    pub walks: u64,
    /// Minor faults so far.
    pub minor_faults: u64,
    /// Major faults so far.
    pub major_faults: u64,
    /// Copy-on-write faults so far.
    pub cow_faults: u64,
    /// Violations (SIGSEGV/SIGBUS) so far.
    pub segv: u64,
    /// Pages swapped out so far.
    pub swap_outs: u64,
    /// Pages swapped in so far.
    pub swap_ins: u64,
    /// Frames reclaimed so far.
    pub evictions: u64,
    /// Resident pages of all running processes now.
    pub resident_pages: u64,
    /// Free frames now.
    pub free_frames: u64,
    /// Estimated cycles so far.
    pub cycles: u64,
}

impl IntervalRow {
    /// The CSV header.
    pub const CSV_HEADER: &'static str = "accesses,tlb_misses,walks,minor_faults,major_faults,cow_faults,segv,swap_outs,swap_ins,evictions,resident_pages,free_frames,cycles";

    /// The row as CSV.
    pub fn to_csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.accesses,
            self.tlb_misses,
            self.walks,
            self.minor_faults,
            self.major_faults,
            self.cow_faults,
            self.segv,
            self.swap_outs,
            self.swap_ins,
            self.evictions,
            self.resident_pages,
            self.free_frames,
            self.cycles
        )
    }

    /// Reads the counters of `k` after `accesses` accesses.
    pub fn sample(k: &Kernel, accesses: u64) -> IntervalRow {
        use crate::os::FaultClass;
        let mmu = &k.machine().mmu;
        let tlb_misses = mmu
            .tlbs()
            .iter()
            .filter(|t| t.level == 1)
            .map(|t| t.counters.total_misses())
            .sum();
        let c = &k.counters();
        IntervalRow {
            accesses,
            tlb_misses,
            walks: mmu.counters.walks,
            minor_faults: k.counters().faults_in(FaultClass::Minor),
            major_faults: k.counters().faults_in(FaultClass::Major),
            cow_faults: k.counters().faults_in(FaultClass::Cow),
            segv: k.counters().faults_in(FaultClass::Violation),
            swap_outs: c.swap_outs,
            swap_ins: c.swap_ins,
            evictions: c.pages_reclaimed,
            resident_pages: k
                .processes()
                .iter()
                .filter(|p| p.is_running())
                .map(|p| p.rss().total())
                .sum(),
            free_frames: k.frames().nr_free(),
            cycles: mmu.estimated_cycles() + c.fault_cycles,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Proc {
    pid: Pid,
    infer: bool,
    brk: Option<u64>,
}

/// Replays events into a kernel.
pub struct Sim<'k> {
    /// The kernel.
    pub kernel: &'k mut Kernel,
    procs: FxHashMap<TracePid, Proc>,
    shm: FxHashMap<u32, crate::os::ShmId>,
    files: FxHashMap<u32, (crate::os::FileId, u64)>,
    /// Known-mapped pages of inferring processes: (kernel pid << 52 | page), per slot.
    pages: Vec<u64>,
    last: Option<(TracePid, Proc)>,
    run_pid: Option<Pid>,
    run_kind: AccessKind,
    run: Vec<VirtAddr>,
    out: Vec<PhysAddr>,
    /// Counters.
    pub stats: SimStats,
    interval: u64,
    next_row: u64,
    /// The `--interval` rows taken so far.
    pub rows: Vec<IntervalRow>,
}

const MAX_FAILURES: usize = 10;

impl<'k> Sim<'k> {
    /// A replay into `kernel`; with `interval` > 0, a row of counters is taken every
    /// `interval` accesses.
    pub fn new(kernel: &'k mut Kernel, interval: u64) -> Sim<'k> {
        Sim {
            kernel,
            procs: FxHashMap::default(),
            shm: FxHashMap::default(),
            files: FxHashMap::default(),
            pages: vec![u64::MAX; PAGE_CACHE],
            last: None,
            run_pid: None,
            run_kind: AccessKind::Read,
            run: Vec::with_capacity(RUN + 2),
            out: vec![PhysAddr(0); RUN + 2],
            stats: SimStats::default(),
            interval,
            next_row: if interval == 0 { u64::MAX } else { interval },
            rows: Vec::new(),
        }
    }

    /// The kernel pid of a trace pid, if the trace made it.
    pub fn kernel_pid(&self, pid: TracePid) -> Option<Pid> {
        self.procs.get(&pid).map(|p| p.pid)
    }

    /// Replays every event of `reader`, calling `progress` with the events so far after
    /// each batch.
    pub fn run(
        &mut self,
        reader: &mut EventReader,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), TraceError> {
        for_each_batch(
            |b| reader.next_batch(b),
            |batch| {
                self.feed(batch);
                progress(self.stats.events);
                Ok::<_, TraceError>(())
            },
        )?;
        self.finish();
        Ok(())
    }

    /// Replays a batch of events.
    pub fn feed(&mut self, events: &[Event]) {
        for e in events {
            self.stats.events += 1;
            match *e {
                Event::Access(a) => {
                    self.stats.accesses += 1;
                    self.access(a);
                    if self.stats.accesses >= self.next_row {
                        self.flush();
                        self.rows
                            .push(IntervalRow::sample(self.kernel, self.stats.accesses));
                        self.next_row += self.interval;
                    }
                }
                _ => {
                    self.flush();
                    self.os_event(e);
                }
            }
        }
    }

    #[inline]
    fn access(&mut self, a: crate::trace::Access) {
        let Some(p) = self.proc_for(a.pid, true) else {
            self.stats.skipped_accesses += 1;
            return;
        };
        if self.run_pid != Some(p.pid) || self.run_kind != a.kind || self.run.len() >= RUN {
            self.flush();
            self.run_pid = Some(p.pid);
            self.run_kind = a.kind;
        }
        let Some((va, last)) = self.pages_of(p, &a) else {
            return;
        };
        // One or two pages (nearly every access): at most two pushes, which the run's
        // spare room holds.
        self.run.push(VirtAddr(va));
        if last > va {
            let ps = self.kernel.page_size();
            if last - (va & !(ps - 1)) == ps {
                self.run.push(VirtAddr(last));
            } else {
                self.push_pages((va & !(ps - 1)) + ps, last);
            }
        }
    }

    /// Adds the pages `from..=last` (page starts) of one long access to the run, making
    /// the run whenever it is full.
    #[cold]
    fn push_pages(&mut self, from: u64, last: u64) {
        let ps = self.kernel.page_size();
        let mut page = from;
        loop {
            if self.run.len() >= RUN {
                self.flush();
            }
            self.run.push(VirtAddr(page));
            if page >= last {
                break;
            }
            page += ps;
        }
    }

    /// The pages an access touches: its address and the start of its last page (in
    /// its first page when it does not cross one). Every page from the first to the
    /// last is translated. `None` (counted as skipped) when an inferring process cannot
    /// have all of that memory mapped.
    #[inline]
    fn pages_of(&mut self, p: Proc, a: &crate::trace::Access) -> Option<(u64, u64)> {
        let ps = self.kernel.page_size();
        // An access that would run past the top of the 64-bit space ends there.
        let last = a.va.0.saturating_add(a.size.max(1) as u64 - 1) & !(ps - 1);
        if p.infer {
            let first = a.va.align_down(ps).0;
            let mapped = self.ensure_mapped(p, a.va.0, a.kind)
                && (last == first
                    || (last - first == ps && self.ensure_mapped(p, last, a.kind))
                    || (last - first > ps && self.ensure_mapped_span(p, first + ps, last, a.kind)));
            if !mapped {
                self.stats.skipped_accesses += 1;
                return None;
            }
        }
        // `last` is below `va` when both are in one page; above it when the access
        // crosses into another.
        Some((a.va.0, last))
    }

    /// [`Sim::ensure_mapped`] for every page `from..=last` (page starts).
    #[cold]
    fn ensure_mapped_span(&mut self, p: Proc, from: u64, last: u64, kind: AccessKind) -> bool {
        let ps = self.kernel.page_size();
        let mut page = from;
        loop {
            if !self.ensure_mapped(p, page, kind) {
                return false;
            }
            if page >= last {
                return true;
            }
            page += ps;
        }
    }

    /// Replays one access alone through [`Kernel::access_explained`] and returns its
    /// story (two when it crosses a page boundary; none when it was skipped), counting
    /// it as [`Sim::feed`] would. The slow path of the step-by-step view: OS events still
    /// go through [`Sim::feed`], and the two may be mixed.
    pub fn access_explained(&mut self, a: crate::trace::Access) -> Vec<AccessStory> {
        self.flush();
        self.stats.events += 1;
        self.stats.accesses += 1;
        let Some(p) = self.proc_for(a.pid, true) else {
            self.stats.skipped_accesses += 1;
            return Vec::new();
        };
        let Some((va, last)) = self.pages_of(p, &a) else {
            return Vec::new();
        };
        let ps = self.kernel.page_size();
        let first = va & !(ps - 1);
        let pages =
            std::iter::once(va).chain((first..last).step_by(ps as usize).map(move |p| p + ps));
        let mut out = Vec::new();
        for va in pages {
            let story = self.kernel.access_explained(p.pid, VirtAddr(va), a.kind);
            self.stats.translations += 1;
            let gone = match &story.result {
                Ok(_) => false,
                Err(AccessError::Signal { .. }) => {
                    self.stats.signalled_accesses += 1;
                    false
                }
                Err(_) => {
                    self.stats.translations -= 1;
                    self.stats.skipped_accesses += 1;
                    true
                }
            };
            out.push(story);
            if gone {
                break;
            }
        }
        out
    }

    /// Ends the replay: the last run is made.
    pub fn finish(&mut self) {
        self.flush();
    }

    fn flush(&mut self) {
        let Some(pid) = self.run_pid else {
            return;
        };
        let mut start = 0;
        while start < self.run.len() {
            let n = self.run.len();
            match self.kernel.access_run(
                pid,
                &self.run[start..n],
                self.run_kind,
                &mut self.out[start..n],
            ) {
                Ok(()) => {
                    self.stats.translations += (n - start) as u64;
                    break;
                }
                Err((i, e)) => {
                    self.stats.translations += i as u64 + 1;
                    match e {
                        AccessError::Signal { .. } => self.stats.signalled_accesses += 1,
                        _ => {
                            // The process is gone: the rest of its run goes too.
                            self.stats.skipped_accesses += (n - start - i) as u64;
                            self.stats.translations -= 1;
                            break;
                        }
                    }
                    start += i + 1;
                }
            }
        }
        self.run.clear();
    }

    fn fail(&mut self, e: &Event, why: impl std::fmt::Display) {
        self.stats.failed_events += 1;
        if self.stats.failures.len() < MAX_FAILURES {
            self.stats.failures.push(format!(
                "event {} ({}): {why}",
                self.stats.events,
                crate::trace::text::format_event(e)
            ));
        }
    }

    fn spawn(&mut self, tpid: TracePid, infer: bool) -> Option<Proc> {
        let prog = Program::small("trace", self.kernel.page_size());
        let pid = match self.kernel.spawn(&prog) {
            Ok(p) => p,
            Err(e) => {
                self.fail(&Event::Spawn { pid: tpid }, e);
                return None;
            }
        };
        if infer {
            // An empty address space: every region comes from the trace.
            let top = self.kernel.task_size().0;
            let _ = self.kernel.munmap(pid, VirtAddr(0), top);
        }
        let p = Proc {
            pid,
            infer,
            brk: None,
        };
        self.procs.insert(tpid, p);
        self.last = None;
        Some(p)
    }

    /// The process of trace pid `tpid`. One the trace never made is made here (empty,
    /// its regions inferred) only when `create` is set: for the events that can be the
    /// first a trace shows of a process it did not start (see [`Sim::creates`]).
    #[inline]
    fn proc_for(&mut self, tpid: TracePid, create: bool) -> Option<Proc> {
        if let Some((t, p)) = self.last {
            if t == tpid {
                return Some(p);
            }
        }
        let p = match self.procs.get(&tpid) {
            Some(p) => *p,
            None if create => self.spawn(tpid, true)?,
            None => return None,
        };
        self.last = Some((tpid, p));
        Some(p)
    }

    /// Makes sure `va` is mapped for an inferring process; false if it cannot be.
    #[inline]
    fn ensure_mapped(&mut self, p: Proc, va: u64, kind: AccessKind) -> bool {
        let page = va >> self.kernel.page_size().trailing_zeros();
        let tag = (p.pid.0 as u64) << 52 | page;
        let slot = page as usize % PAGE_CACHE;
        if self.pages[slot] == tag {
            return true;
        }
        let ok = self.infer(p, va, kind);
        if ok {
            self.pages[slot] = tag;
        }
        ok
    }

    #[cold]
    fn infer(&mut self, p: Proc, va: u64, kind: AccessKind) -> bool {
        let top = self.kernel.task_size().0;
        if va >= top {
            return false;
        }
        let Some(mm) = self.kernel.process(p.pid).and_then(|pr| pr.mm.as_ref()) else {
            return false;
        };
        let vmas = &mm.vmas;
        if vmas.find(VirtAddr(va)).is_some() {
            return true;
        }
        // The free gap around `va` within its aligned chunk, above the lowest mappable
        // address.
        let lo = (va / INFER_CHUNK * INFER_CHUNK).max(self.kernel.mmap_min().0);
        let hi = (va / INFER_CHUNK * INFER_CHUNK + INFER_CHUNK).min(top);
        if va < lo {
            return false;
        }
        let start = vmas.before(VirtAddr(va)).map_or(lo, |v| v.end.0.max(lo));
        let end = vmas
            .find_from(VirtAddr(va))
            .map_or(hi, |v| v.start.0.min(hi));
        let prot = if !self.kernel.config().wx {
            Prot::RWX
        } else if kind == AccessKind::Execute {
            Prot::RX
        } else {
            Prot::RW
        };
        let args = MmapArgs {
            addr: Some(VirtAddr(start)),
            fixed: true,
            ..MmapArgs::anon(end - start, prot)
        };
        if self.kernel.mmap(p.pid, args).is_err() {
            return false;
        }
        self.stats.inferred_regions += 1;
        self.stats.inferred_bytes += end - start;
        true
    }

    fn forget_pages(&mut self) {
        self.pages.fill(u64::MAX);
    }

    /// Whether `e` may be the first event of a process the trace never started with
    /// `spawn` or `fork`, making it (with an empty, inferred address space). A traced
    /// program is first seen touching or getting memory: an access, `mmap`, `brk` or a
    /// shared-memory attach (every lackey, ChampSim, plain and oracleGeneral trace is
    /// one process that is never spawned). Every other event — `munmap`, `mprotect`,
    /// `exec`, `exit`, `switch`, and `fork` of a parent — acts on a process that must
    /// already exist; on any other pid it is refused.
    pub fn creates(e: &Event) -> bool {
        matches!(
            e,
            Event::Access(_) | Event::Mmap { .. } | Event::Brk { .. } | Event::ShmAttach { .. }
        )
    }

    /// The process of `pid` for event `e`: made if `e` may make it, else it must exist.
    fn proc_of(&mut self, pid: TracePid, e: &Event) -> Result<Proc, String> {
        let create = Self::creates(e);
        self.proc_for(pid, create).ok_or_else(|| {
            if create {
                format!("trace pid {pid}: the process could not be made")
            } else {
                format!(
                    "no process with trace pid {pid}: the trace never made it (a process starts with spawn, fork, or its first access, mmap, brk or shm attach)"
                )
            }
        })
    }

    fn os_event(&mut self, e: &Event) {
        self.stats.os_events += 1;
        if matches!(
            e,
            Event::Munmap { .. } | Event::Exec { .. } | Event::Exit { .. } | Event::Brk { .. }
        ) {
            self.forget_pages();
        }
        let r: Result<(), String> = match *e {
            Event::Access(_) => Ok(()),
            Event::Spawn { pid } => {
                if self.procs.contains_key(&pid) {
                    Err(format!("trace pid {pid} already exists"))
                } else {
                    self.spawn(pid, false);
                    Ok(())
                }
            }
            Event::Fork { parent, child } => {
                match (self.proc_of(parent, e), self.procs.contains_key(&child)) {
                    (_, true) => Err(format!("trace pid {child} already exists")),
                    (Err(why), _) => Err(why),
                    (Ok(p), false) => match self.kernel.fork(p.pid) {
                        Ok(c) => {
                            self.procs.insert(child, Proc { pid: c, ..p });
                            Ok(())
                        }
                        Err(e) => Err(e.to_string()),
                    },
                }
            }
            Event::Exec { pid } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => {
                    let prog = Program::small("trace", self.kernel.page_size());
                    let r = self.kernel.exec(p.pid, &prog).map_err(|e| e.to_string());
                    // After exec the process has a real image: nothing more is inferred.
                    self.procs.insert(
                        pid,
                        Proc {
                            infer: false,
                            brk: None,
                            ..p
                        },
                    );
                    self.last = None;
                    r
                }
            },
            Event::Exit { pid, code } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => self.kernel.exit(p.pid, code).map_err(|e| e.to_string()),
            },
            Event::Switch { pid } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => self.kernel.switch_to(p.pid).map_err(|e| e.to_string()),
            },
            Event::Mmap {
                pid,
                addr,
                len,
                prot,
                shared,
                kind,
            } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => {
                    let source = match kind {
                        MapKind::Anon => Ok(MapSource::Anon),
                        // The offset goes to the kernel as the trace gives it: `mmap`
                        // refuses one that is not page-aligned (EINVAL).
                        MapKind::File { file, offset } => self
                            .trace_file(file, offset, len)
                            .map(|id| MapSource::File(id, offset)),
                    };
                    match source {
                        Err(why) => Err(why),
                        Ok(source) => {
                            let args = MmapArgs {
                                addr: Some(VirtAddr(addr.0)),
                                len,
                                prot,
                                shared,
                                fixed: true,
                                source,
                            };
                            self.kernel
                                .mmap(p.pid, args)
                                .map(|_| ())
                                .map_err(|e| e.to_string())
                        }
                    }
                }
            },
            Event::Munmap { pid, addr, len } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => self
                    .kernel
                    .munmap(p.pid, VirtAddr(addr.0), len)
                    .map_err(|e| e.to_string()),
            },
            Event::Mprotect {
                pid,
                addr,
                len,
                prot,
            } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => self
                    .kernel
                    .mprotect(p.pid, VirtAddr(addr.0), len, prot)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            },
            Event::Brk { pid, addr } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) if !p.infer => self
                    .kernel
                    .brk(p.pid, Some(VirtAddr(addr.0)))
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Ok(p) => {
                    let r = self.recorded_brk(p, addr.0);
                    self.procs.insert(
                        pid,
                        Proc {
                            brk: Some(addr.0),
                            ..p
                        },
                    );
                    self.last = None;
                    r
                }
            },
            Event::ShmAttach {
                pid,
                key,
                addr,
                len,
                prot,
            } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => {
                    let id = match self.shm.get(&key) {
                        Some(&id) => Ok(id),
                        None => self.kernel.shm_open(&format!("trace-shm-{key}"), len),
                    };
                    match id {
                        Err(e) => Err(e.to_string()),
                        Ok(id) => {
                            self.shm.insert(key, id);
                            let args = MmapArgs {
                                addr: Some(VirtAddr(addr.0)),
                                len,
                                prot,
                                shared: true,
                                fixed: true,
                                source: MapSource::Shm(id, 0),
                            };
                            self.kernel
                                .mmap(p.pid, args)
                                .map(|_| ())
                                .map_err(|e| e.to_string())
                        }
                    }
                }
            },
        };
        if let Err(why) = r {
            self.fail(e, why);
        }
    }

    /// The simulated file standing for trace file `file`, at least large enough for
    /// `len` bytes from `offset` (a trace does not record files' contents: they read
    /// as zeros). A file that cannot be made is a refusal naming its size.
    fn trace_file(
        &mut self,
        file: u32,
        offset: u64,
        len: u64,
    ) -> Result<crate::os::FileId, String> {
        let ps = self.kernel.page_size();
        let need = offset
            .checked_add(len)
            .and_then(|end| end.checked_next_multiple_of(ps))
            .ok_or_else(|| {
                format!("file {file}: offset {offset:#x} + length {len:#x} is past 2^64 bytes")
            })?;
        if let Some(&(id, size)) = self.files.get(&file) {
            if size >= need {
                return Ok(id);
            }
        }
        let size = need.max(1 << 20);
        let data = crate::hw::ram::try_zeroed_vec::<u8>(size).ok_or_else(|| {
            format!(
                "file {file}: the mapping reaches byte {need:#x}, and the host cannot hold a {} simulated file",
                crate::size::format_size(size)
            )
        })?;
        let name = format!("trace-file-{file}-{size}");
        let id = self.kernel.create_file(&name, data);
        self.files.insert(file, (id, size));
        Ok(id)
    }

    /// A recorded `brk` of a process whose image the simulator does not know: the range
    /// between the old and the new break is mapped or unmapped.
    fn recorded_brk(&mut self, p: Proc, addr: u64) -> Result<(), String> {
        let ps = self.kernel.page_size();
        let Some(old) = p.brk else {
            return Ok(()); // the first call (brk(0)) tells where the heap starts
        };
        let (old_end, new_end) = (old.div_ceil(ps) * ps, addr.div_ceil(ps) * ps);
        if new_end > old_end {
            let args = MmapArgs {
                addr: Some(VirtAddr(old_end)),
                fixed: true,
                ..MmapArgs::anon(new_end - old_end, Prot::RW)
            };
            self.kernel
                .mmap(p.pid, args)
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else if new_end < old_end {
            self.kernel
                .munmap(p.pid, VirtAddr(new_end), old_end - new_end)
                .map_err(|e| e.to_string())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::MachineSpec;
    use crate::os::KernelConfig;
    use crate::trace::text::parse_line;

    fn kernel() -> Kernel {
        Kernel::boot(
            MachineSpec::preset("x86-64").unwrap(),
            KernelConfig::default(),
        )
    }

    fn events(text: &str) -> Vec<Event> {
        text.lines()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .map(|l| parse_line(l).unwrap())
            .collect()
    }

    /// Replays `text` (one event a line) on `k` to its end, with a row every `interval`
    /// accesses.
    fn replay<'k>(k: &'k mut Kernel, interval: u64, text: &str) -> Sim<'k> {
        let mut sim = Sim::new(k, interval);
        sim.feed(&events(text));
        sim.finish();
        sim
    }

    /// The regions mapped in process `pid` (a trace's process, which the replay made).
    fn vmas(pid: Option<Pid>, k: &Kernel) -> &crate::os::vma::VmaSet {
        &k.process(pid.unwrap()).unwrap().mm.as_ref().unwrap().vmas
    }

    #[test]
    fn a_scenario_makes_the_faults_it_should() {
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "spawn 1
             mmap 1 0x10000000 16KiB rw-
             W 1 0x10000000 8
             R 1 0x10001000 8
             fork 1 2
             W 2 0x10000000 8
             R 2 0x20000000 8
             R 1 0x10000008",
        );
        let s = sim.stats.clone();
        assert_eq!(s.accesses, 5);
        assert_eq!(s.signalled_accesses, 1, "pid 2 read outside its mappings");
        assert_eq!(s.inferred_regions, 0);
        use crate::os::{FaultClass, FaultKind};
        assert_eq!(k.counters().faults_of(FaultKind::DemandZero), 1);
        assert_eq!(k.counters().faults_of(FaultKind::ZeroPage), 1);
        assert_eq!(k.counters().faults_in(FaultClass::Cow), 1);
        assert_eq!(k.counters().faults_in(FaultClass::Violation), 1);
    }

    #[test]
    fn regions_of_an_unspawned_process_are_inferred_once_per_gap() {
        let mut k = kernel();
        let sim = replay(
            &mut k,
            2,
            "R 1 0x17000
             W 1 0x17008
             W 1 0x1fff000ff8 16
             X 1 0x400000 4
             mmap 1 0x500000 4KiB r--
             W 1 0x500000
             R 1 0xffffffffff600000",
        );
        let s = sim.stats.clone();
        let rows = sim.rows.len();
        let rows0 = sim.rows[0].clone();
        assert_eq!(s.inferred_regions, 3, "{s:?}");
        assert_eq!(s.skipped_accesses, 1, "the kernel half");
        assert_eq!(s.signalled_accesses, 1, "a store to the read-only mapping");
        // The access that crossed into the next page made two translations.
        assert_eq!(s.translations, 6);
        assert_eq!(rows, 3);
        assert!(rows0.minor_faults >= 1);
    }

    #[test]
    fn a_recorded_brk_maps_the_heap_between_breaks() {
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "brk 1 0x4035000
             brk 1 0x4056000
             W 1 0x4040000
             brk 1 0x4036000",
        );
        assert_eq!(sim.stats.inferred_regions, 0);
        assert_eq!(sim.stats.failed_events, 0, "{:?}", sim.stats.failures);
        let vmas = vmas(sim.kernel_pid(1), &k);
        assert!(vmas.find(VirtAddr(0x4035000)).is_some());
        assert!(vmas.find(VirtAddr(0x4036000)).is_none());
    }

    #[test]
    fn a_file_mapping_at_a_misaligned_offset_is_refused() {
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "spawn 1
             mmap 1 0x10000000 8KiB r-- file=3@0x1000
             mmap 1 0x20000000 8KiB r-- file=3@0x10
             mmap 1 0x30000000 8KiB r-- file=4@0xfffffffffffff000
             mmap 1 0x40000000 8KiB r-- file=5@0x7ffffffffffff000",
        );
        let f = &sim.stats.failures;
        assert_eq!(sim.stats.failed_events, 3, "{f:?}");
        assert!(
            f[0].starts_with("event 3 (mmap 1 0x20000000") && f[0].contains("EINVAL"),
            "{f:?}"
        );
        assert!(
            f[1].contains("file 4: offset 0xfffffffffffff000 + length 0x2000 is past 2^64 bytes"),
            "{f:?}"
        );
        assert!(
            f[2].contains("file 5: the mapping reaches byte 0x8000000000001000"),
            "{f:?}"
        );
        let vmas = vmas(sim.kernel_pid(1), &k);
        assert!(vmas.find(VirtAddr(0x10000000)).is_some());
        assert!(vmas.find(VirtAddr(0x20000000)).is_none());
    }

    #[test]
    fn events_on_a_pid_the_trace_never_made_are_refused() {
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "spawn 1
             exec 7
             exit 8 0
             munmap 9 0x10000000 4KiB
             mprotect 10 0x10000000 4KiB r--
             switch 11
             fork 12 13
             R 13 0x10000000",
        );
        let s = sim.stats.clone();
        assert_eq!(s.failed_events, 6, "{:?}", s.failures);
        for (f, (pid, event)) in s.failures.iter().zip([
            (7, "exec 7"),
            (8, "exit 8 0"),
            (9, "munmap 9"),
            (10, "mprotect 10"),
            (11, "switch 11"),
            (12, "fork 12 13"),
        ]) {
            assert!(f.contains(&format!("({event}")), "{f}");
            assert!(
                f.contains(&format!("no process with trace pid {pid}")),
                "{f}"
            );
        }
        for pid in 7..=12 {
            assert_eq!(sim.kernel_pid(pid), None, "pid {pid} was made");
        }
        // The child of the refused fork is one more unspawned process, first seen in
        // an access.
        assert!(sim.kernel_pid(13).is_some());
        assert_eq!(k.processes().len(), 2);
    }

    #[test]
    fn accesses_mmaps_and_brks_make_the_processes_of_traces_without_spawns() {
        for first in [
            "R 5 0x10000000",
            "mmap 5 0x10000000 4KiB rw-",
            "brk 5 0x4035000",
            "shm 5 7 0x30000000 8KiB rw-",
        ] {
            let mut k = kernel();
            let sim = replay(&mut k, 0, &format!("{first}\nexit 5 0"));
            assert_eq!(
                sim.stats.failed_events, 0,
                "{first}: {:?}",
                sim.stats.failures
            );
            let pid = sim.kernel_pid(5).unwrap();
            assert!(
                !k.process(pid).unwrap().is_running(),
                "{first}: the exit applied"
            );
        }
    }

    #[test]
    fn an_access_translates_every_page_it_touches() {
        use crate::os::FaultKind;
        // (offset in the page, size): pages touched.
        for (off, size, pages) in [
            (0, 1, 1),
            (0, 4096, 1),
            (4095, 2, 2),
            (0, 4097, 2),
            (8, 3 * 4096, 4),
            (0, 5 * 4096, 5),
            (0, 2000 * 4096, 2000),
            (1, 1 << 24, 4097),
        ] {
            for spawned in [true, false] {
                let mut k = kernel();
                let mut sim = Sim::new(&mut k, 0);
                let base = 0x10000000u64;
                let mut text = String::new();
                if spawned {
                    text += &format!("spawn 1\nmmap 1 {base:#x} 64MiB rw-\n");
                }
                text += &format!("W 1 {:#x} {size}\nR 1 {base:#x}", base + off);
                sim.feed(&events(&text));
                sim.finish();
                let s = sim.stats.clone();
                assert_eq!(
                    s.translations,
                    pages + 1,
                    "{off} + {size}, spawned {spawned}: {s:?}"
                );
                assert_eq!(
                    s.signalled_accesses + s.skipped_accesses + s.failed_events,
                    0
                );
                assert_eq!(
                    k.counters().faults_of(FaultKind::DemandZero),
                    pages,
                    "{off} + {size}"
                );
            }
        }
    }
}
