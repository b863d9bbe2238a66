//! The loop that feeds trace events to the kernel and the MMU, and what it counts.
//!
//! OS events become system calls of the simulated kernel; accesses go through
//! [`Kernel::access_run`] in runs of one process, loads, stores and instruction
//! fetches mixed, so TLB hits take the MMU's run path.
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
//! `exec-image` (what a recorder of real programs writes for `execve`) empties a
//! process's address space, or makes a process with an empty one, and nothing is
//! inferred afterwards: the image comes as `mmap` events, and the first `brk` places
//! the heap ([`Kernel::exec_empty`]). Such a process, and its forks, is not killed by
//! an access its mappings refuse (its recording saw the access complete): the access
//! is counted as signalled and the replay goes on. Threads share their process's
//! address space: the replay keeps each process's current thread (the last `thread`
//! event's) and counts them.
//!
//! An access is translated once per page it touches, whatever its size.

use crate::addr::PhysAddr;
use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use crate::os::{
    AccessError, AccessStory, Kernel, MapSource, MmapArgs, Pid, Populate, Program, Prot,
};
use crate::trace::{
    for_each_batch_pipelined, Batch, Event, EventReader, MapKind, PlainRun, TraceError, TracePid,
    TraceTid,
};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

/// Bytes of the aligned chunks regions are inferred in.
pub const INFER_CHUNK: u64 = 2 << 20;
const RUN: usize = 512;
const MAPPED_SLOTS: usize = 4096;
/// How many events ahead the fast path of a replay prefetches its batch.
const EVENTS_AHEAD: usize = 64;
/// A slot of [`Sim::mapped`] that knows nothing (no address is in its stretch).
const NOT_KNOWN: (u64, u64, u64) = (u64::MAX, 0, 0);

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
    /// Processes the replay made (spawned, forked, or first seen).
    pub processes: u64,
    /// Threads that ran: each process's main thread and each new thread a `thread`
    /// event started.
    pub threads: u64,
    /// Calls counted and otherwise ignored: `syscall` events, and `madvise` with
    /// advice the kernel does not model ([`Kernel::madvise`] gives `None`).
    pub other_syscalls: u64,
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
    /// Simulated time so far, in nanoseconds (the run's clock: cycles at the clock,
    /// storage queues, sleeps), to set beside a native run's samples.
    pub elapsed_ns: u64,
    /// Linux's counters so far.
    pub linux: crate::linux::LinuxRow,
}

impl IntervalRow {
    /// The CSV header.
    pub const CSV_HEADER: &'static str = concat!(
        "accesses,tlb_misses,walks,minor_faults,major_faults,cow_faults,segv,swap_outs,swap_ins,evictions,resident_pages,free_frames,cycles,elapsed_ns,",
        crate::linux_row_csv_header!()
    );

    /// The row as CSV.
    pub fn to_csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
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
            self.cycles,
            self.elapsed_ns,
            self.linux.csv()
        )
    }

    /// Reads the counters of `k` after `accesses` accesses.
    pub fn sample(k: &Kernel, accesses: u64) -> IntervalRow {
        use crate::os::FaultClass;
        let m = k.machine();
        let tlb_misses = m
            .mmus()
            .flat_map(|mmu| mmu.tlbs())
            .filter(|t| t.level == 1)
            .map(|t| t.counters.total_misses())
            .sum();
        let c = &k.counters();
        IntervalRow {
            accesses,
            tlb_misses,
            walks: m.mmus().map(|mmu| mmu.counters.walks).sum(),
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
            cycles: m.estimated_cycles() + c.fault_cycles + c.tlb.cycles,
            elapsed_ns: k.io_now(),
            linux: crate::linux::LinuxRow::from_counters(c, k.page_size()),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Proc {
    pid: Pid,
    infer: bool,
    brk: Option<u64>,
    /// The thread running the process's accesses.
    tid: TraceTid,
    /// A vfork child: `pid` is its parent's, whose address space it runs in until it
    /// execs or exits.
    vfork: bool,
}

/// Replays events into a kernel.
pub struct Sim<'k> {
    /// The kernel.
    pub kernel: &'k mut Kernel,
    procs: FxHashMap<TracePid, Proc>,
    /// The threads alive, main threads included.
    threads: FxHashSet<(TracePid, TraceTid)>,
    shm: FxHashMap<u32, crate::os::ShmId>,
    files: FxHashMap<u32, crate::os::FileId>,
    /// Known-mapped stretches of inferring processes, one per slot by aligned
    /// [`INFER_CHUNK`]: (kernel pid << 52 | chunk, start, end), the part of the chunk
    /// that one area covered when it was last looked up.
    mapped: Vec<(u64, u64, u64)>,
    last: Option<(TracePid, Proc)>,
    /// A process whose `exec-image` came and that has mapped nothing since: its first
    /// mapping, if of a file from its start, is the image, whose first bytes the exec
    /// read.
    exec_pending: Option<TracePid>,
    run_pid: Option<Pid>,
    /// The trace pid whose accesses may join the run without a look at the process:
    /// the run's, when it infers nothing. Cleared with the run.
    run_fast: Option<TracePid>,
    /// The machine's page size, less one.
    page_mask: u64,
    /// The run's addresses and kinds: the first `run_len` of each.
    run: Box<[VirtAddr; RUN + 2]>,
    kinds: Box<[AccessKind; RUN + 2]>,
    run_len: usize,
    /// Bytes of instructions the run's fetches fetched, not yet given to the kernel.
    fetched: u64,
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
        let page_mask = kernel.page_size() - 1;
        Sim {
            kernel,
            procs: FxHashMap::default(),
            threads: FxHashSet::default(),
            shm: FxHashMap::default(),
            files: FxHashMap::default(),
            mapped: vec![NOT_KNOWN; MAPPED_SLOTS],
            last: None,
            exec_pending: None,
            run_pid: None,
            run_fast: None,
            page_mask,
            run: Box::new([VirtAddr(0); RUN + 2]),
            kinds: Box::new([AccessKind::Read; RUN + 2]),
            run_len: 0,
            fetched: 0,
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

    /// The thread of trace pid `pid` that runs its accesses (the last `thread` event's;
    /// 0, the main thread, until one comes), if the trace made the process.
    pub fn current_thread(&self, pid: TracePid) -> Option<TraceTid> {
        self.procs.get(&pid).map(|p| p.tid)
    }

    /// The threads of trace pid `pid` alive now (main thread included), in order.
    pub fn threads_of(&self, pid: TracePid) -> Vec<TraceTid> {
        let mut v: Vec<TraceTid> = self
            .threads
            .iter()
            .filter(|t| t.0 == pid)
            .map(|t| t.1)
            .collect();
        v.sort_unstable();
        v
    }

    /// Replays every event of `reader`, calling `progress` with the events so far after
    /// each batch. A trace's threads take turns by their clocks
    /// ([`crate::interleave`]) unless the kernel's `thread_order` is `Recorded`; a
    /// synthetic workload's take the turns it gives them.
    pub fn run(
        &mut self,
        reader: &mut EventReader,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), TraceError> {
        let mut order = crate::interleave::Interleave::new();
        // A synthetic workload's threads take the turns its parameters give them.
        let by_clock = self.kernel.config().thread_order == crate::interleave::ThreadOrder::Clock
            && !matches!(reader, EventReader::Synth(_));
        // Runs of accesses are packed for `feed_batch`; the interleaving, once a second
        // thread comes, takes events.
        let pack = Some(self.kernel.page_size());
        for_each_batch_pipelined(reader, pack, |batch| {
            if !by_clock || order.pass(batch.events().len(), batch.one_task()) {
                self.feed_batch(batch);
            } else {
                order.push(batch.events(), self);
            }
            progress(self.stats.events);
            Ok::<_, TraceError>(())
        })?;
        order.finish(self);
        self.finish();
        Ok(())
    }

    /// Replays a batch of events.
    pub fn feed(&mut self, events: &[Event]) {
        let mut i = 0;
        while let Some(e) = events.get(i) {
            match *e {
                Event::Access(a) => {
                    let n = match self.fast_accesses(&events[i..]) {
                        0 => {
                            self.stats.events += 1;
                            self.stats.accesses += 1;
                            self.access_slow(a);
                            1
                        }
                        n => n,
                    };
                    i += n;
                    self.row_if_due();
                }
                _ => {
                    self.stats.events += 1;
                    i += 1;
                    self.flush();
                    self.os_event(e);
                }
            }
        }
    }

    /// Replays a batch as [`Sim::feed`] replays its events, taking the accesses of its
    /// [`PlainRun`]s from their packed addresses and kinds ([`Batch::pack`]) rather
    /// than from the events.
    pub fn feed_batch(&mut self, batch: &Batch) {
        let events = batch.events();
        let mut i = 0;
        for run in batch.runs() {
            self.feed(&events[i..run.start]);
            let mut k = 0;
            while k < run.end - run.start {
                match self.fast_packed(batch, run, k) {
                    0 => {
                        // Another process's run is open, or this one is full: the
                        // access that makes the next one.
                        let at = run.start + k;
                        self.feed(&events[at..at + 1]);
                        k += 1;
                    }
                    n => {
                        k += n;
                        self.row_if_due();
                    }
                }
            }
            i = run.end;
        }
        self.feed(&events[i..]);
    }

    /// [`Sim::fast_accesses`] for the packed accesses of `batch`'s `run` from its `k`th.
    #[inline(always)]
    fn fast_packed(&mut self, batch: &Batch, run: &PlainRun, k: usize) -> usize {
        let len = self.run_len;
        if self.run_fast != Some(run.pid) || len >= RUN {
            return 0;
        }
        let (vas, kinds) = batch.packed(run);
        let (vas, kinds) = (&vas[k..], &kinds[k..]);
        let n = self.room().min(vas.len());
        self.run[len..len + n].copy_from_slice(&vas[..n]);
        self.kinds[len..len + n].copy_from_slice(&kinds[..n]);
        self.fetched += batch.fetched(run, k, n);
        self.run_len = len + n;
        self.stats.events += n as u64;
        self.stats.accesses += n as u64;
        n
    }

    /// How many accesses the fast paths may add to the run: its room (the run is
    /// shorter than [`RUN`]), no further than the next `--interval` row.
    #[inline(always)]
    fn room(&self) -> usize {
        let due = usize::try_from(self.next_row.saturating_sub(self.stats.accesses))
            .unwrap_or(usize::MAX);
        (RUN - self.run_len).min(due)
    }

    /// Takes an `--interval` row when the accesses so far reach the next one's.
    #[inline(always)]
    fn row_if_due(&mut self) {
        if self.stats.accesses >= self.next_row {
            self.flush();
            self.rows
                .push(IntervalRow::sample(self.kernel, self.stats.accesses));
            self.next_row += self.interval;
        }
    }

    /// Makes thread `tid` of `pid` run the accesses that follow, as a `thread` event
    /// does, without counting an event.
    fn run_thread(&mut self, pid: TracePid, tid: TraceTid) {
        self.flush();
        let e = Event::Thread { pid, tid };
        if let Err(why) = self.thread_event(pid, tid, &e) {
            self.fail(&e, why);
        }
    }

    fn thread_event(&mut self, pid: TracePid, tid: TraceTid, e: &Event) -> Result<(), String> {
        let p = self.proc_of(pid, e)?;
        self.running(p)?;
        if self.threads.insert((pid, tid)) {
            self.stats.threads += 1;
        }
        self.procs.insert(pid, Proc { tid, ..p });
        self.last = None;
        self.kernel
            .run_thread(p.pid, tid)
            .map_err(|e| e.to_string())
    }

    /// Adds one address to the run; the run has room for it (flushes keep it at most
    /// [`RUN`] long before an access adds its one or two pages).
    #[inline(always)]
    fn push_run(&mut self, va: VirtAddr, kind: AccessKind) {
        self.run[self.run_len] = va;
        self.kinds[self.run_len] = kind;
        self.run_len += 1;
    }

    /// Adds to the run the accesses that lead `events` and may join it without a look
    /// at their process, and returns how many (counted). The fast path, nearly every
    /// access of a long replay: the run's process (one that infers nothing), room in
    /// the run, one page touched, and no interval row due.
    #[inline(always)]
    fn fast_accesses(&mut self, events: &[Event]) -> usize {
        let Some(tpid) = self.run_fast else {
            return 0;
        };
        // A page-crossing access may have left the run a page past full: the slow
        // path makes it.
        let len = self.run_len;
        if len >= RUN {
            return 0;
        }
        let in_page = !self.page_mask;
        let room = self.room().min(events.len());
        let run = &mut self.run[len..len + room];
        let kinds = &mut self.kinds[len..len + room];
        let mut n = 0;
        let mut fetched = 0;
        for (k, e) in events[..room].iter().enumerate() {
            // The batch was written on the reader's CPU: asking for its lines a few
            // hundred bytes ahead overlaps their transfers, which the loop would
            // otherwise wait for one by one.
            if let Some(ahead) = events.get(k + EVENTS_AHEAD) {
                crate::hw::ram::prefetch_host(ahead);
            }
            let Event::Access(a) = *e else { break };
            if a.pid != tpid || (a.last_byte() ^ a.va.0) & in_page != 0 {
                break;
            }
            run[n] = a.va;
            kinds[n] = a.kind;
            fetched += crate::trace::fetched_by(&a);
            n += 1;
        }
        self.fetched += fetched;
        self.run_len = len + n;
        self.stats.events += n as u64;
        self.stats.accesses += n as u64;
        n
    }

    /// Adds an access to the run, looking at its process (and making it, or inferring
    /// its mappings, as needed), and starting a new run when it cannot join this one.
    #[inline(never)]
    fn access_slow(&mut self, a: crate::trace::Access) {
        let Some(p) = self.proc_for(a.pid, true) else {
            self.stats.skipped_accesses += 1;
            return;
        };
        if self.run_pid != Some(p.pid) || self.run_len >= RUN {
            self.flush();
            self.run_pid = Some(p.pid);
        }
        let Some((va, last)) = self.pages_of(p, &a) else {
            return;
        };
        self.fetched += crate::trace::fetched_by(&a);
        // One or two pages (nearly every access): at most two pushes, which the run's
        // spare room holds.
        self.push_run(VirtAddr(va), a.kind);
        self.run_fast = (!p.infer).then_some(a.pid);
        if last > va {
            let ps = self.kernel.page_size();
            if last - (va & !(ps - 1)) == ps {
                self.push_run(VirtAddr(last), a.kind);
            } else {
                self.push_pages((va & !(ps - 1)) + ps, last, a.kind);
            }
        }
    }

    /// Adds the pages `from..=last` (page starts) of one long access to the run, making
    /// the run whenever it is full.
    #[cold]
    fn push_pages(&mut self, from: u64, last: u64, kind: AccessKind) {
        let ps = self.kernel.page_size();
        let mut page = from;
        loop {
            if self.run_len >= RUN {
                self.flush();
            }
            self.push_run(VirtAddr(page), kind);
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
        let last = a.last_byte() & !(ps - 1);
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
        // The program ran the run's instructions before it made the run's accesses.
        if self.fetched > 0 {
            self.kernel.executed(std::mem::take(&mut self.fetched));
        }
        let Some(pid) = self.run_pid else {
            return;
        };
        let mut start = 0;
        let n = self.run_len;
        while start < n {
            match self.kernel.access_run(
                pid,
                &self.run[start..n],
                &self.kinds[start..n],
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
        self.run_len = 0;
        self.run_fast = None;
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
        Some(self.made(
            tpid,
            Proc {
                pid,
                infer,
                brk: None,
                tid: 0,
                vfork: false,
            },
        ))
    }

    /// Records that trace pid `tpid` is the new process `p`, its main thread running.
    fn made(&mut self, tpid: TracePid, p: Proc) -> Proc {
        self.procs.insert(tpid, p);
        self.threads.insert((tpid, 0));
        self.stats.processes += 1;
        self.stats.threads += 1;
        self.last = None;
        p
    }

    /// After an exec: only the process's main thread is left (the one that called it
    /// takes its place), and it runs.
    fn only_main_thread(&mut self, tpid: TracePid) {
        self.threads.retain(|t| t.0 != tpid);
        self.threads.insert((tpid, 0));
    }

    /// Ok if the kernel process of `p` is running; ESRCH's message if it has ended.
    fn running(&self, p: Proc) -> Result<(), String> {
        if self.kernel.process(p.pid).is_some_and(|x| x.is_running()) {
            Ok(())
        } else {
            Err(crate::os::Errno::ESRCH.to_string())
        }
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
        let chunk = va / INFER_CHUNK;
        let tag = (p.pid.0 as u64) << 52 | chunk;
        let slot = chunk as usize % MAPPED_SLOTS;
        let (known, start, end) = self.mapped[slot];
        if known == tag && start <= va && va < end {
            return true;
        }
        if !self.infer(p, va, kind) {
            return false;
        }
        // Remember the stretch of the chunk that the area holding `va` covers: the
        // accesses after it in that stretch need no lookup.
        if let Some(v) = self
            .kernel
            .process(p.pid)
            .and_then(|pr| pr.mm.as_ref())
            .and_then(|mm| mm.vmas.find(VirtAddr(va)))
        {
            let lo = chunk * INFER_CHUNK;
            let hi = lo.saturating_add(INFER_CHUNK);
            self.mapped[slot] = (tag, v.start.0.max(lo), v.end.0.min(hi));
        }
        true
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

    fn forget_mapped(&mut self) {
        self.mapped.fill(NOT_KNOWN);
    }

    /// Whether `e` may be the first event of a process the trace never started with
    /// `spawn` or `fork`, making it: with an empty, inferred address space, or for
    /// `exec-image` an empty one that the events after it fill. A traced program is
    /// first seen touching or getting memory: an access, `mmap`, `brk` or a
    /// shared-memory attach (every lackey, ChampSim, plain and oracleGeneral trace is
    /// one process that is never spawned), or, recorded with its image, the `execve`
    /// that started it. Every other event — `munmap`, `mprotect`, `mremap`, `madvise`,
    /// `shmdt`, `exec`, `exit`, `switch`, `thread`, `thread-exit`, `syscall`,
    /// `thp-disable`, `sleep`, `populate`, `mlock`, `munlock`, `mlockall`,
    /// `munlockall`, and `fork` of a parent — acts on a process that must already
    /// exist; on any other pid it is refused.
    pub fn creates(e: &Event) -> bool {
        matches!(
            e,
            Event::Access(_)
                | Event::Mmap { .. }
                | Event::Brk { .. }
                | Event::ShmAttach { .. }
                | Event::ExecImage { .. }
        )
    }

    /// The process of `pid` for event `e`: made if `e` may make it, else it must exist.
    /// Calls the kernel with the process that trace pid `pid` names (as
    /// [`Sim::proc_of`] finds it for event `e`); the call's errno is the event's
    /// failure.
    fn kernel_call<T>(
        &mut self,
        pid: TracePid,
        e: &Event,
        call: impl FnOnce(&mut Kernel, Pid) -> Result<T, crate::os::Errno>,
    ) -> Result<(), String> {
        let p = self.proc_of(pid, e)?;
        call(self.kernel, p.pid)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn proc_of(&mut self, pid: TracePid, e: &Event) -> Result<Proc, String> {
        let create = Self::creates(e);
        let p = self.proc_for(pid, create);
        if let Some(p) = p {
            if self.kernel.nr_cpus() > 1 && !matches!(e, Event::Thread { .. }) {
                // The process's running thread makes the call, on its own CPU: the
                // CPU a shootdown starts from. (One CPU runs everything already.)
                let _ = self.kernel.switch_to(p.pid);
            }
        }
        p.ok_or_else(|| {
            if create {
                format!("trace pid {pid}: the process could not be made")
            } else {
                format!(
                    "no process with trace pid {pid}: the trace never made it (a process starts with spawn, fork, exec-image, or its first access, mmap, brk or shm attach)"
                )
            }
        })
    }

    fn os_event(&mut self, e: &Event) {
        self.stats.os_events += 1;
        if matches!(
            e,
            Event::Munmap { .. }
                | Event::Exec { .. }
                | Event::Exit { .. }
                | Event::Brk { .. }
                | Event::ExecImage { .. }
                | Event::Mremap { .. }
                | Event::ShmDetach { .. }
        ) {
            self.forget_mapped();
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
            Event::Fork { parent, child } | Event::Vfork { parent, child } => {
                let vfork = matches!(e, Event::Vfork { .. });
                match (self.proc_of(parent, e), self.procs.contains_key(&child)) {
                    (_, true) => Err(format!("trace pid {child} already exists")),
                    (Err(why), _) => Err(why),
                    (Ok(p), false) => {
                        // A vfork child runs in its parent's process until it execs.
                        let made = if vfork {
                            Ok(p.pid)
                        } else {
                            self.kernel.fork(p.pid)
                        };
                        made.map_err(|e| e.to_string()).map(|c| {
                            // The child's one thread is the one that forked.
                            let child_proc = Proc {
                                pid: c,
                                tid: 0,
                                vfork,
                                ..p
                            };
                            self.made(child, child_proc);
                        })
                    }
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
                            tid: 0,
                            ..p
                        },
                    );
                    self.only_main_thread(pid);
                    self.last = None;
                    r
                }
            },
            Event::ExecImage { pid } => self.exec_image(pid),
            Event::Exit { pid, code } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) if p.vfork => {
                    // A vfork child that never exec'd: its parent's address space
                    // lives on.
                    self.procs.remove(&pid);
                    self.threads.retain(|t| t.0 != pid);
                    self.last = None;
                    Ok(())
                }
                Ok(p) => {
                    let r = self.kernel.exit(p.pid, code).map_err(|e| e.to_string());
                    if r.is_ok() {
                        self.threads.retain(|t| t.0 != pid);
                    }
                    r
                }
            },
            Event::Thread { pid, tid } => self.thread_event(pid, tid, e),
            Event::ThreadExit { pid, tid, .. } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => self.running(p).and_then(|()| {
                    if self.threads.remove(&(pid, tid)) {
                        self.kernel.thread_exit(p.pid, tid);
                        Ok(())
                    } else {
                        Err(format!("trace pid {pid} has no thread {tid} running"))
                    }
                }),
            },
            Event::Mremap {
                pid,
                old,
                old_len,
                new,
                new_len,
            } => self.kernel_call(pid, e, |k, p| k.mremap(p, old, old_len, new, new_len)),
            Event::Madvise {
                pid,
                addr,
                len,
                advice,
            } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => match self.kernel.madvise(p.pid, addr, len, advice) {
                    None => {
                        self.stats.other_syscalls += 1;
                        self.running(p)
                    }
                    Some(_) if len == 0 => self.running(p),
                    Some(r) => r.map_err(|e| e.to_string()),
                },
            },
            Event::ShmDetach { pid, addr } => {
                self.kernel_call(pid, e, |k, p| k.shm_detach(p, addr))
            }
            Event::Nonzero { pid, addr } => self.proc_of(pid, e).map(|p| {
                self.kernel.mark_nonzero(p.pid, addr);
            }),
            Event::Values { .. } => {
                self.kernel.use_zero_marks();
                Ok(())
            }
            Event::FileReadahead { file, bytes, .. } => self
                .trace_file(file, 0, 0)
                .map(|id| self.kernel.set_file_readahead(id, bytes)),
            Event::FileSize { file, bytes, .. } => self.trace_file(file, 0, bytes).map(|_| ()),
            Event::Fadvise {
                pid,
                file,
                offset,
                len,
                advice,
            } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => self.trace_file(file, 0, 0).and_then(|id| {
                    self.kernel
                        .fadvise(p.pid, id, offset, len, advice)
                        .map_err(|e| format!("fadvise of file {file}: {e}"))
                }),
            },
            Event::FileDrop { pid, file } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                // A vfork child's descriptors are its own: its letting go is not its
                // parent's, whose process it runs as.
                Ok(p) if p.vfork => Ok(()),
                Ok(p) => self.trace_file(file, 0, 0).and_then(|id| {
                    self.kernel
                        .drop_tmpfs_file(p.pid, id)
                        .map_err(|e| format!("file {file} is not on tmpfs: {e}"))
                }),
            },
            Event::FileShmem { file, .. } => self.trace_file(file, 0, 0).and_then(|id| {
                match self.kernel.make_tmpfs_file(id) {
                    // Used before the mark came (a program on tmpfs, mapped by the
                    // loader before the recorder looked): it stays a page-cache file.
                    Ok(_) | Err(crate::os::Errno::EBUSY) => Ok(()),
                    Err(e) => Err(format!("file {file} cannot be made a tmpfs file: {e}")),
                }
            }),
            Event::FileCached {
                file, offset, len, ..
            } => self
                .trace_file(file, 0, 0)
                .map(|id| self.kernel.set_cached_at_start(id, offset, len)),
            Event::FileRead {
                pid,
                file,
                offset,
                len,
                buf,
            } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => self.trace_file(file, offset, len).map(|id| {
                    self.kernel.read_file_to(p.pid, id, offset, len, buf);
                }),
            },
            Event::FileWrite {
                pid,
                file,
                offset,
                len,
            } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                // The kernel grows the file itself: it must know the length before.
                Ok(p) => file_end(file, offset, len)
                    .and_then(|_| self.trace_file(file, 0, 0))
                    .map(|id| {
                        self.kernel.write_file(p.pid, id, offset, len);
                    }),
            },
            Event::ThpDisable { pid, disable } => {
                self.kernel_call(pid, e, |k, p| k.set_thp_disabled(p, disable))
            }
            Event::Syscall { pid, .. } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => {
                    self.stats.other_syscalls += 1;
                    self.running(p)
                }
            },
            Event::Populate { pid, addr, len } => {
                self.kernel_call(pid, e, |k, p| k.populate(p, addr, len, Populate::Map))
            }
            Event::Mlock {
                pid,
                addr,
                len,
                mode,
            } => self.kernel_call(pid, e, |k, p| k.mlock(p, addr, len, mode)),
            Event::Mlockall { pid, flags } => self.kernel_call(pid, e, |k, p| k.mlockall(p, flags)),
            Event::Sleep { pid, ns } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => self.running(p).and_then(|()| {
                    self.kernel.sleep(ns).map_err(|e| {
                        format!(
                            "{e}: the sleeps would add up to more than {} ns",
                            crate::os::MAX_SLEEP_NS
                        )
                    })
                }),
            },
            Event::FsMetadata { pid, pages } => match self.proc_of(pid, e) {
                Err(why) => Err(why),
                Ok(p) => self.running(p).map(|()| {
                    self.kernel.read_fs_metadata(p.pid, pages);
                }),
            },
            Event::Switch { pid } => self.kernel_call(pid, e, |k, p| k.switch_to(p)),
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
                        MapKind::HugeTlb {
                            page_bytes,
                            noreserve,
                        } => Ok(MapSource::HugeTlb {
                            page_bytes,
                            noreserve,
                        }),
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
                            let mapped = self.kernel.mmap(p.pid, args);
                            // The first mapping after an exec is the image's, from
                            // its start.
                            let image = self.exec_pending.take_if(|&mut t| t == pid).is_some();
                            if let (true, Ok(_), MapSource::File(id, 0)) = (image, &mapped, source)
                            {
                                self.kernel.exec_read(p.pid, id);
                            }
                            mapped.map(|_| ()).map_err(|e| e.to_string())
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
        // The call may have changed the process's mappings or threads: its kernel
        // objects follow (`os/kmem.rs`).
        if let Some(p) = self.procs.get(&e.pid()) {
            self.kernel.refresh_kmem(p.pid);
        }
    }

    /// `exec-image`: the process's address space is emptied, or a process with an empty
    /// one is made for a pid the trace has not named; nothing is inferred afterwards.
    fn exec_image(&mut self, tpid: TracePid) -> Result<(), String> {
        self.exec_pending = Some(tpid);
        let known = self.procs.get(&tpid).copied();
        let Some(p) = known.filter(|p| !p.vfork) else {
            // A new process, or a vfork child leaving its parent's address space.
            return match self.kernel.spawn_empty("trace") {
                Ok(pid) => {
                    let p = Proc {
                        pid,
                        infer: false,
                        brk: None,
                        tid: 0,
                        vfork: false,
                    };
                    if known.is_some() {
                        self.procs.insert(tpid, p);
                        self.only_main_thread(tpid);
                        self.last = None;
                    } else {
                        self.made(tpid, p);
                    }
                    Ok(())
                }
                Err(e) => Err(format!(
                    "trace pid {tpid}: the process could not be made: {e}"
                )),
            };
        };
        let r = self.kernel.exec_empty(p.pid).map_err(|e| e.to_string());
        if r.is_ok() {
            self.procs.insert(
                tpid,
                Proc {
                    infer: false,
                    brk: None,
                    tid: 0,
                    ..p
                },
            );
            self.only_main_thread(tpid);
            self.last = None;
        }
        r
    }

    /// The simulated file standing for trace file `file`, at least `offset + len` bytes
    /// long. A trace does not record files' contents: they read as zeros, and nothing is
    /// allocated for them. The file is as long as its `file-size` record says, or as the
    /// furthest any mapping or read of it reaches: readahead stops there, as at the end
    /// of a file.
    fn trace_file(
        &mut self,
        file: u32,
        offset: u64,
        len: u64,
    ) -> Result<crate::os::FileId, String> {
        let end = file_end(file, offset, len)?;
        let id = match self.files.get(&file) {
            Some(&id) => id,
            None => {
                let id = self
                    .kernel
                    .create_file(&format!("trace-file-{file}"), Vec::new());
                self.files.insert(file, id);
                id
            }
        };
        self.kernel.grow_file(id, end);
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

/// The end of `len` bytes of trace file `file` from byte `offset`, if it is below 2^64.
fn file_end(file: u32, offset: u64, len: u64) -> Result<u64, String> {
    offset.checked_add(len).ok_or_else(|| {
        format!("file {file}: offset {offset:#x} + length {len:#x} is past 2^64 bytes")
    })
}

impl crate::interleave::Replayer for Sim<'_> {
    fn replay(&mut self, events: &[Event]) {
        self.feed(events);
    }

    fn switch(&mut self, pid: TracePid, tid: TraceTid) {
        self.run_thread(pid, tid);
    }

    fn clock_ns(&mut self) -> u64 {
        self.flush();
        self.kernel.io_now()
    }

    fn count(&mut self, _: &Event) {
        self.stats.events += 1;
        self.stats.os_events += 1;
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

    /// A program that runs 48-byte blocks between its loads, as text.
    fn blocks_and_loads(n: u64) -> String {
        let mut t = String::from("spawn 1\nmmap 1 0x400000 64KiB r-x\nmmap 1 0x800000 64KiB rw-\n");
        for i in 0..n {
            t += &format!(
                "X 1 {:#x} 48\nR 1 {:#x} 8\n",
                0x400000 + i % 64 * 64,
                0x800000 + i * 8
            );
        }
        t
    }

    #[test]
    fn the_clock_counts_the_bytes_of_instructions_fetched_by_either_path() {
        let text = blocks_and_loads(100);
        let ends = |pct: u64, packed: bool| {
            let mut k = Kernel::boot(
                MachineSpec::preset("x86-64").unwrap(),
                KernelConfig {
                    fetch_clock_pct: pct,
                    ..KernelConfig::default()
                },
            );
            let mut sim = Sim::new(&mut k, 0);
            if packed {
                let mut b = Batch::with_capacity(256);
                b.events_mut().extend(events(&text));
                b.pack(4096);
                assert!(!b.runs().is_empty(), "the accesses make a packed run");
                sim.feed_batch(&b);
            } else {
                sim.feed(&events(&text));
            }
            sim.finish();
            (k.counters().fetched_bytes, k.now_ns())
        };
        for packed in [false, true] {
            let (bytes, none) = ends(0, packed);
            assert_eq!(bytes, 100 * 48, "packed: {packed}");
            // 4,800 bytes at 50 cycles per 100 are 2,400 cycles: 800 ns at 3 GHz.
            let (_, half) = ends(50, packed);
            assert_eq!(half - none, 800, "packed: {packed}");
        }
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
    fn an_exec_reads_its_images_first_bytes_unless_the_image_was_cached_before() {
        // The recorder found the image's first four pages cached: what a read of its
        // first bytes brings in, the exec's own. They are read at the exec, page 1
        // marked, so the first touch of page 1 reads the next window. Found cached
        // further, the image was cached before: nothing is read, and nothing marked.
        for (cached, at_exec) in [("0x4000", 4), ("0x8000", 0)] {
            let mut k = kernel();
            let text = format!(
                "exec-image 1
                 file-size 1 0 0x40000
                 file-cached 1 0 0x0 {cached}
                 mmap 1 0x400000 0x40000 r-x file=0@0x0"
            );
            drop(replay(&mut k, 0, &text));
            assert_eq!(k.counters().file_reads, at_exec, "cached {cached}");
            let mut k = kernel();
            drop(replay(&mut k, 0, &format!("{text}\nR 1 0x401000 8")));
            let ahead = k.counters().file_reads - at_exec;
            if at_exec > 0 {
                assert!(ahead >= 8, "page 1's mark read the next window: {ahead}");
            } else {
                assert_eq!(ahead, 0, "a cached page, unmarked");
            }
        }
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
    fn a_recorded_file_size_lets_read_read_ahead() {
        // Without its length, a file ends where the reads so far reach: a read
        // stream's readahead could read nothing ahead.
        let mut reads = Vec::new();
        for size in ["", "file-size 1 0 0x400000\n"] {
            let mut k = kernel();
            let text = format!("spawn 1\n{size}read 1 0 0 0x10000\nread 1 0 0x10000 0x10000");
            let sim = replay(&mut k, 0, &text);
            assert_eq!(sim.stats.failed_events, 0, "{:?}", sim.stats.failures);
            reads.push(k.counters().file_reads);
        }
        assert_eq!(reads[0], 32, "only what the reads asked for");
        assert!(reads[1] > 32, "readahead went past the reads: {reads:?}");
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
        assert_eq!(sim.stats.failed_events, 2, "{f:?}");
        assert!(
            f[0].starts_with("event 3 (mmap 1 0x20000000") && f[0].contains("EINVAL"),
            "{f:?}"
        );
        assert!(
            f[1].contains("file 4: offset 0xfffffffffffff000 + length 0x2000 is past 2^64 bytes"),
            "{f:?}"
        );
        let vmas = vmas(sim.kernel_pid(1), &k);
        assert!(vmas.find(VirtAddr(0x10000000)).is_some());
        assert!(vmas.find(VirtAddr(0x20000000)).is_none());
        // A file reaching past 2^63 bytes costs the host nothing: a trace's files hold
        // no contents.
        assert!(vmas.find(VirtAddr(0x40000000)).is_some());
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
    fn threads_are_tracked_per_process_and_counted() {
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "spawn 1
             mmap 1 0x10000000 16KiB rw-
             thread 1 1
             W 1 0x10000000 8
             thread 1 2
             thread 1 1
             W 1 0x10001000 8
             fork 1 2
             thread-exit 1 2 0
             thread-exit 1 2 0
             thread 9 1
             thread-exit 9 1 0",
        );
        let s = sim.stats.clone();
        assert_eq!(s.failed_events, 3, "{:?}", s.failures);
        assert!(
            s.failures[0].contains("(thread-exit 1 2 0): trace pid 1 has no thread 2 running"),
            "{:?}",
            s.failures
        );
        assert!(s.failures[1].contains("no process with trace pid 9"));
        assert_eq!((s.processes, s.threads), (2, 4));
        assert_eq!(sim.current_thread(1), Some(1));
        assert_eq!(sim.threads_of(1), [0, 1]);
        assert_eq!(
            sim.current_thread(2),
            Some(0),
            "the child runs its main thread"
        );
        assert_eq!(sim.threads_of(2), [0]);
        assert_eq!(s.signalled_accesses, 0, "threads share the address space");
        assert!(crate::run::replay_text(&s).contains("2 processes, 4 threads"));
    }

    #[test]
    fn a_vfork_child_runs_in_its_parents_address_space_until_it_execs() {
        use crate::os::FaultKind;
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "exec-image 1
             mmap 1 0x10000000 16KiB rw-
             W 1 0x10000000 8
             vfork 1 2
             W 2 0x10000000 8
             W 2 0x10001000 8
             exec-image 2
             mmap 2 0x20000000 4KiB rw-
             W 2 0x20000000 8
             exit 2 0
             W 1 0x10001000 8
             vfork 1 3
             exit 3 0
             W 1 0x10002000 8
             exit 1 0",
        );
        let s = sim.stats.clone();
        assert_eq!(s.failed_events, 0, "{:?}", s.failures);
        // The child's writes before exec land in the parent's pages: no copy, and the
        // parent then finds the second page mapped; after exec the child has its own.
        let c = sim.kernel.counters();
        assert_eq!(c.faults_of(FaultKind::CowCopy), 0);
        assert_eq!(c.faults_of(FaultKind::DemandZero), 4, "{:?}", c.faults);
        assert_eq!(s.processes, 3);
    }

    #[test]
    fn exec_image_empties_the_address_space_and_the_first_brk_places_the_heap() {
        use crate::os::FaultKind;
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "exec-image 3
             mmap 3 0x400000 8KiB r-x file=1@0
             X 3 0x400000 4
             brk 3 0x4a1000
             brk 3 0x4c3000
             W 3 0x4b0000 8
             thread 3 1
             exec-image 3
             brk 3 0x5000000
             brk 3 0x5002000
             W 3 0x5000000
             R 3 0x400000",
        );
        let s = sim.stats.clone();
        assert_eq!(s.failed_events, 0, "{:?}", s.failures);
        assert_eq!(
            s.inferred_regions, 0,
            "nothing is inferred after exec-image"
        );
        assert_eq!(
            sim.kernel.counters().faults_of(FaultKind::DemandZero),
            2,
            "a store in each heap"
        );
        // The second image does not hold the first's text.
        assert_eq!(s.signalled_accesses, 1, "{s:?}");
        assert_eq!(sim.threads_of(3), [0], "exec leaves one thread");
        assert_eq!((s.processes, s.threads), (1, 2));
        // A process that exec-image empties keeps its pid.
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "spawn 1
             mmap 1 0x10000000 4KiB rw-
             exec-image 1
             brk 1 0x4a1000
             brk 1 0x4a3000
             W 1 0x4a1000",
        );
        assert_eq!(sim.stats.failed_events, 0, "{:?}", sim.stats.failures);
        assert_eq!(sim.stats.signalled_accesses, 0);
        let vmas = vmas(sim.kernel_pid(1), &k);
        assert!(vmas.find(VirtAddr(0x10000000)).is_none());
        assert_eq!(vmas.len(), 1, "only the heap");
        assert_eq!(
            vmas.find(VirtAddr(0x4a2000)).map(|v| v.role),
            Some(crate::os::VmaRole::Heap)
        );
    }

    #[test]
    fn mremap_madvise_and_shmdt_reach_the_kernel() {
        use crate::os::FaultKind;
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "exec-image 1
             mmap 1 0x10000000 8KiB rw-
             W 1 0x10000000 8
             mremap 1 0x10000000 8KiB 0x20000000 16KiB
             R 1 0x20000000 8
             W 1 0x20003000 8
             madvise 1 0x20000000 4KiB dontneed
             R 1 0x20000000 8
             madvise 1 0x20003000 4KiB free
             madvise 1 0x20000000 16KiB mergeable
             madvise 1 0x20000000 0 dontneed
             madvise 1 0x50000000 4KiB dontneed
             shm 1 7 0x30000000 8KiB rw-
             W 1 0x30000000
             shmdt 1 0x30000000
             shmdt 1 0x30000000
             syscall 1 msync
             thp-disable 1 1
             mremap 1 0x40000000 4KiB 0x40000000 8KiB",
        );
        let s = sim.stats.clone();
        let f = &s.failures;
        assert_eq!(s.failed_events, 3, "{f:?}");
        assert!(
            f[0].contains("(madvise 1 0x50000000 0x1000 dontneed): ENOMEM"),
            "{f:?}"
        );
        assert!(f[1].contains("(shmdt 1 0x30000000): EINVAL"), "{f:?}");
        assert!(
            f[2].contains("(mremap 1 0x40000000 0x1000 0x40000000 0x2000): EFAULT"),
            "{f:?}"
        );
        // thp-disable is the kernel's now (prctl's flag on the process).
        assert_eq!(s.other_syscalls, 2, "mergeable, msync");
        assert!(sim
            .kernel
            .process(crate::os::Pid(1))
            .is_some_and(|p| p.thp_disabled));
        assert_eq!(s.signalled_accesses, 0);
        // The stores before the move, at 0x20003000 and to the shm page; the read after
        // dontneed finds the zero page. The moved page did not fault again.
        let c = sim.kernel.counters();
        assert_eq!(c.faults_of(FaultKind::DemandZero), 3, "{c:?}");
        assert_eq!(c.faults_of(FaultKind::ZeroPage), 1, "{c:?}");
        assert_eq!(c.fault_cycles, 4 * 1000, "four faults in all");
        let vmas = vmas(sim.kernel_pid(1), &k);
        assert!(vmas.find(VirtAddr(0x10000000)).is_none());
        assert_eq!(
            vmas.find(VirtAddr(0x20003000)).map(|v| v.end.0),
            Some(0x20004000)
        );
        assert!(vmas.find(VirtAddr(0x30000000)).is_none());
        assert!(crate::run::replay_text(&s).contains("2 calls counted only"));
    }

    #[test]
    fn fork_advice_in_a_trace_shapes_the_child() {
        use crate::os::FaultKind;
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "exec-image 1
             mmap 1 0x10000000 16KiB rw-
             W 1 0x10000000 8
             W 1 0x10001000 8
             W 1 0x10002000 8
             madvise 1 0x10001000 4KiB wipeonfork
             madvise 1 0x10002000 4KiB dontfork
             fork 1 2
             R 2 0x10000000 8
             R 2 0x10001000 8",
        );
        let c = &sim.kernel.counters();
        assert_eq!(sim.stats.failed_events, 0, "{:?}", sim.stats.failures);
        assert_eq!(sim.stats.other_syscalls, 0, "both acted on");
        // The wiped page is a new one for the child; the page left out is not there.
        assert_eq!(
            c.faults_of(FaultKind::DemandZero) + c.faults_of(FaultKind::ZeroPage),
            4
        );
        let child = vmas(sim.kernel_pid(2), &k);
        assert!(child.find(VirtAddr(0x10002000)).is_none());
        assert!(child.find(VirtAddr(0x10001000)).is_some());
    }

    #[test]
    fn the_new_events_on_a_pid_the_trace_never_made_are_refused() {
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "thread 5 1
             thread-exit 5 1 0
             mremap 5 0x1000 4KiB 0x2000 4KiB
             madvise 5 0x1000 4KiB dontneed
             shmdt 5 0x1000
             syscall 5 mlock
             thp-disable 5 0
             sleep 5 1000
             populate 5 0x1000 4KiB
             mlock 5 0x1000 4KiB
             mlockall 5 current",
        );
        assert_eq!(sim.stats.failed_events, 11, "{:?}", sim.stats.failures);
        for f in &sim.stats.failures {
            assert!(f.contains("no process with trace pid 5"), "{f}");
        }
        assert_eq!(sim.kernel_pid(5), None);
        assert_eq!(sim.stats.other_syscalls, 0);
    }

    #[test]
    fn lock_events_lock_fault_in_and_unlock() {
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "spawn 1
             mmap 1 0x10000000 16KiB rw-
             mlock 1 0x10000000 16KiB
             munlock 1 0x10000000 8KiB
             mmap 1 0x20000000 8KiB rw-
             mlock 1 0x20000000 8KiB onfault
             madvise 1 0x20000000 4KiB dontneed
             mlockall 1 current,future
             mmap 1 0x30000000 4KiB rw-
             munlockall 1
             mlock 1 0x40000000 4KiB",
        );
        let f = &sim.stats.failures;
        assert_eq!(sim.stats.failed_events, 2, "{f:?}");
        assert!(f[0].contains("dontneed): EINVAL"), "{f:?}");
        assert!(
            f[1].contains("(mlock 1 0x40000000 0x1000): ENOMEM"),
            "{f:?}"
        );
        let c = sim.kernel.counters();
        // 4 populated by mlock, 2 by mlockall's MCL_CURRENT (with the image's
        // pages), 1 by MCL_FUTURE's mmap; munlock and munlockall unlock them all.
        assert!(c.mlock.mlocked > 4 + 2 + 1, "{:?}", c.mlock);
        assert_eq!(c.mlock.munlocked, c.mlock.mlocked, "{:?}", c.mlock);
        assert_eq!(c.mlock.cleared, 0, "{:?}", c.mlock);
        assert_eq!(sim.stats.other_syscalls, 0, "locking is acted on");
    }

    #[test]
    fn tmpfs_files_are_shared_memory_until_dropped() {
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "spawn 1
             file-shmem 1 0
             file-size 1 0 0x4000
             write 1 0 0 0x4000
             vfork 1 3
             file-drop 3 0
             exit 3 0
             mmap 1 0x10000000 16KiB r-- shared file=0@0
             R 1 0x10000000 8
             munmap 1 0x10000000 16KiB
             file-drop 1 0
             mmap 1 0x20000000 4KiB r-- file=1@0
             file-shmem 1 1
             file-drop 1 2",
        );
        let f = &sim.stats.failures;
        // A file used before its mark stays a page-cache file; a drop of one not on
        // tmpfs is refused.
        assert_eq!(sim.stats.failed_events, 1, "{f:?}");
        assert!(f[0].contains("file 2 is not on tmpfs"), "{f:?}");
        let c = sim.kernel.counters();
        // Written by write(), kept through a vfork child's letting go (its
        // descriptors are its own), mapped by fault-around, never read from storage.
        assert_eq!(c.file_reads, 0);
        assert_eq!(c.file_writes, 4);
        assert_eq!(c.faults[crate::os::FaultKind::Shared as usize], 1);
        // Dropped and unmapped: its pages are gone.
        assert_eq!(sim.kernel.page_cache_pages(), 0);
        let shm = sim.kernel.frames().nr_of(crate::os::FrameKind::Shm);
        assert_eq!(shm, 0);
    }

    #[test]
    fn populate_events_and_advice_fault_ranges_in_as_the_programs_faults() {
        use crate::os::FaultKind;
        let mut k = kernel();
        let sim = replay(
            &mut k,
            0,
            "spawn 1
             mmap 1 0x10000000 16KiB rw-
             populate 1 0x10000000 16KiB
             W 1 0x10000000 8
             mmap 1 0x20000000 8KiB rw-
             madvise 1 0x20000000 8KiB populate_read
             madvise 1 0x20000000 8KiB populate_write
             mmap 1 0x30000000 4KiB r--
             madvise 1 0x30000000 4KiB populate_write
             populate 1 0x40000000 4KiB",
        );
        let f = &sim.stats.failures;
        assert_eq!(sim.stats.failed_events, 2, "{f:?}");
        assert!(f[0].contains("populate_write): EINVAL"), "{f:?}");
        assert!(
            f[1].contains("(populate 1 0x40000000 0x1000): ENOMEM"),
            "{f:?}"
        );
        assert_eq!(sim.stats.other_syscalls, 0, "populate advice is acted on");
        let c = sim.kernel.counters();
        // 4 written in (the store then found its page), 2 zero-page reads, each
        // broken by the write populate.
        assert_eq!(c.faults_of(FaultKind::DemandZero), 4, "{c:?}");
        assert_eq!(c.faults_of(FaultKind::ZeroPage), 2, "{c:?}");
        assert_eq!(c.faults_of(FaultKind::ZeroPageCopy), 2, "{c:?}");
        let faults: u64 = sim
            .kernel
            .process(crate::os::Pid(1))
            .unwrap()
            .stats
            .faults
            .iter()
            .sum();
        assert_eq!(faults, 4 + 2 + 2);
    }

    #[test]
    fn a_sleep_moves_the_clock_on_by_its_length() {
        let mut k = kernel();
        let mut sim = Sim::new(&mut k, 0);
        sim.feed(&events("spawn 1\nmmap 1 0x10000 8KiB rw-\nW 1 0x10000 8\n"));
        let before = crate::interleave::Replayer::clock_ns(&mut sim);
        sim.feed(&events("sleep 1 2500000\nsleep 1 500000\n"));
        sim.finish();
        assert_eq!(sim.stats.failed_events, 0, "{:?}", sim.stats.failures);
        assert_eq!(sim.kernel.io_now(), before + 3_000_000);
        assert_eq!(sim.kernel.counters().sleep_ns, 3_000_000);
        // A sleep past the clock's range is refused, and takes no time.
        sim.feed(&events("sleep 1 18446744073709551615\n"));
        sim.finish();
        assert_eq!(sim.stats.failed_events, 1);
        assert!(
            sim.stats.failures[0].contains("(sleep 1 18446744073709551615): EINVAL"),
            "{:?}",
            sim.stats.failures
        );
        assert_eq!(sim.kernel.counters().sleep_ns, 3_000_000);
    }

    #[test]
    fn a_traced_fadvise_sets_how_far_reads_of_its_file_go_ahead() {
        let pages_read = |advice: &str| {
            let mut k = kernel();
            let mut text =
                String::from("spawn 1\nfile-readahead 1 0 0x20000\nfile-size 1 0 0x1000000\n");
            if !advice.is_empty() {
                text += &format!("fadvise 1 0 0 0 {advice}\n");
            }
            text += "read 1 0 0 0x8000\nread 1 0 0x8000 0x8000\nread 1 0 0x10000 0x8000\n";
            let sim = replay(&mut k, 0, &text);
            assert!(sim.stats.failures.is_empty(), "{:?}", sim.stats.failures);
            k.counters().file_reads
        };
        let (normal, seq, random) = (
            pages_read(""),
            pages_read("sequential"),
            pages_read("random"),
        );
        assert_eq!(random, 24);
        assert!(seq > normal && normal > random, "{seq} {normal} {random}");
        assert_eq!(pages_read("normal"), normal);
    }

    #[test]
    fn interval_rows_have_as_many_fields_as_the_header_names() {
        let mut k = kernel();
        let sim = replay(
            &mut k,
            1,
            "spawn 1\nmmap 1 0x10000 8KiB rw-\nW 1 0x10000 8\n",
        );
        let header = IntervalRow::CSV_HEADER.split(',').count();
        assert!(!sim.rows.is_empty());
        for r in &sim.rows {
            assert_eq!(r.to_csv().split(',').count(), header, "{}", r.to_csv());
        }
        assert!(IntervalRow::CSV_HEADER.ends_with(crate::linux::LinuxRow::CSV_HEADER));
    }

    #[test]
    fn a_page_crossing_access_that_fills_the_run_loses_no_page() {
        // Runs of loads and stores mixed, the one access that crosses a page landing
        // at the end of a run: every page is translated, and the process made as many
        // accesses.
        for at in [RUN - 3, RUN - 2, RUN - 1, RUN] {
            let mut k = kernel();
            let mut sim = Sim::new(&mut k, 0);
            let base = 0x10000000u64;
            let mut text = format!("spawn 1\nmmap 1 {base:#x} 64MiB rw-\n");
            for i in 0..at {
                let op = if i % 3 == 0 { "W" } else { "R" };
                text += &format!("{op} 1 {:#x} 8\n", base + (i as u64 % 64) * 4096);
            }
            text += &format!("R 1 {:#x} 8\n", base + 4096 - 4);
            for i in 0..20u64 {
                text += &format!("W 1 {:#x} 8\n", base + i * 4096);
            }
            sim.feed(&events(&text));
            sim.finish();
            let want = at as u64 + 2 + 20;
            assert_eq!(sim.stats.translations, want, "crossing at {at}");
            let made: u64 = k.processes().iter().map(|p| p.stats.accesses).sum();
            assert_eq!(made, want, "crossing at {at}");
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
