//! What the kernel does: boots the machine with its own direct map, keeps processes and
//! their address spaces, handles page faults, and offers the syscall surface (`mmap`,
//! `munmap`, `mprotect`, `mremap`, `brk`, `fork`, `exec`, `exit`, `madvise`, shared
//! memory) with Linux's semantics and error values.
//!
//! [`Kernel`] coordinates; each subsystem owns its state, in a file of its name:
//! `process` (the process table), `asid` (address-space ids), `kernel_space` (the
//! kernel's half and the direct map), `frames` and `buddy` (physical frames), `vma`
//! (areas), `rmap` (reverse map), `page_cache` (files and their cached pages), `swap`
//! (the device, its slots and cache; swap-out and swap-in), `shm` (shared memory),
//! `limits` (overcommit, memory groups, the OOM killer), `reclaim` (the lists and the
//! scan), `data` (bytes through the MMU), `boot`. The verbs
//! are one file each: `mmap`, `munmap`, `mprotect`, `mremap`, `brk`, `madvise`, `fork`,
//! `exec`, `exit`, `fault` (the page-fault handler) and `cow` (copy-on-write); `syscall` holds
//! what they share.

mod asid;
mod boot;
mod brk;
pub mod buddy;
pub mod clock;
mod cow;
pub use boot::{BootError, TooSmall};
pub mod data;
mod exec;
mod exit;
pub mod fadvise;
pub mod fault;
mod fork;
pub mod frames;
pub mod fs_metadata;
pub mod hugetlb;
mod inflight;
pub use inflight::MAX_SLEEP_NS;
mod kernel_space;
pub mod khugepaged;
pub mod kmem;
pub mod limits;
mod madvise;
pub use madvise::{
    MADV_COLD, MADV_DOFORK, MADV_DONTFORK, MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_FREE,
    MADV_HUGEPAGE, MADV_KEEPONFORK, MADV_NOHUGEPAGE, MADV_NORMAL, MADV_PAGEOUT, MADV_POPULATE_READ,
    MADV_POPULATE_WRITE, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_WIPEONFORK,
};
pub mod mlock;
pub use fork::ForkAdvice;
pub use mlock::{Mlock, MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT};
mod mmap;
mod mprotect;
mod populate;
pub use populate::Populate;
mod mremap;
mod munmap;
pub mod page_cache;
pub mod process;
pub mod readahead;
pub mod reclaim;
pub mod rmap;
pub mod rstat;
pub mod sched;
mod shm;
pub mod shootdown;
pub mod storage;
pub mod swap;
pub mod syscall;
pub mod thp;
pub mod vma;
mod workingset;
mod writeback;

pub use crate::hw::mmio::Display;
pub use data::{AccessError, AccessStory, Try};
pub use exec::Program;
pub use fault::{FaultClass, FaultKind, Violation};
pub use frames::{FrameKind, FrameTable};
pub use limits::{GroupStat, MemGroup, Overcommit};
pub use mmap::{MapSource, MmapArgs};
pub use page_cache::{File, PageRuns};
pub use process::{AddressSpace, Pid, ProcState, ProcStats, Process, Rss, Signal};
pub use reclaim::{ReclaimPolicy, Watermarks};
pub use shm::ShmObject;
pub use storage::Storage;
pub use swap::SwapStats;
pub use syscall::Errno;
pub use vma::{Backing, Device, FileId, Prot, ShmId, Vma, VmaRole};

use crate::addr::{Pfn, PhysAddr, SwapSlot, VirtAddr};
use crate::hw::{Flags, Machine, MachineSpec, PageTable};
use limits::GroupTables;
use serde::Serialize;

/// A memory group (a cgroup with `memory.max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct GroupId(pub u16);

/// Policy switches of the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    /// A first read of an anonymous page maps the shared zero page; a later write
    /// breaks it (Linux's behaviour). Off: every first touch allocates.
    pub zero_page: bool,
    /// W^X: refuse mappings and `mprotect` calls that are writable and executable.
    pub wx: bool,
    /// A process that makes an access no mapping allows is killed (SIGSEGV). Off: the
    /// access fails and is reported, and the process runs on (as if it had a handler
    /// that skips the instruction).
    pub kill_on_violation: bool,
    /// Overcommit policy (`vm.overcommit_memory`).
    pub overcommit: Overcommit,
    /// Percentage of RAM that may be committed under [`Overcommit::Never`]
    /// (`vm.overcommit_ratio`).
    pub overcommit_ratio: u32,
    /// Largest stack (`RLIMIT_STACK`), in bytes.
    pub stack_limit: u64,
    /// Cycles the kernel spends on a minor fault.
    pub minor_fault_cycles: u64,
    /// Cycles the kernel spends on a major fault besides a minor fault's and the
    /// storage's time: sending the request down the block layer, the device's
    /// interrupt and the read's completion, sleeping and waking the faulting thread.
    pub major_fault_cycles: u64,
    /// Cycles the kernel spends on a page it reads from storage into the page cache or
    /// the swap cache, besides waiting for the storage: allocating and charging it,
    /// adding it to the cache and a list, completing its read.
    pub page_in_cycles: u64,
    /// Cycles reclaim spends on a page it evicts: the reverse map, unmapping it, the
    /// TLB flush, freeing it.
    pub page_out_cycles: u64,
    /// Cycles the kernel spends on an anonymous page it reads from swap or writes to
    /// swap, besides `page_in_cycles` or `page_out_cycles`: a swap slot, the swap
    /// cache, its entry in the page table, the charge of the swap space.
    pub swap_page_cycles: u64,
    /// Cycles `write` spends on each page it copies into the page cache: finding or
    /// allocating the page, copying, marking it dirty.
    pub write_page_cycles: u64,
    /// Where swap and files live: the cost of a major fault and of a write-back.
    pub storage: Storage,
    /// Bytes of swap (0: none).
    pub swap_bytes: u64,
    /// The swap file (`None`: a temporary file, unlinked as soon as it is open).
    pub swap_path: Option<std::path::PathBuf>,
    /// Use `swap_path` even if it exists and vmsim did not make it (its contents are
    /// lost).
    pub swap_force: bool,
    /// How reclaim picks victims.
    pub reclaim: ReclaimPolicy,
    /// Local replacement: a process short of memory reclaims only its own pages.
    pub local_reclaim: bool,
    /// Slots read per swap-in, the faulting one included (Linux's `page-cluster` 3:
    /// 8); 1: no readahead.
    pub swap_readahead: u32,
    /// Which slots a swap fault reads ahead: the block around its slot, or the pages
    /// around it in its VMA (`swap/readahead.rs`).
    pub swap_readahead_by: swap::SwapReadahead,
    /// The order a replay takes the threads' accesses in (`--thread-order`): by their
    /// clocks, or as recorded (see [`crate::interleave`]).
    pub thread_order: crate::interleave::ThreadOrder,
    /// Pages mapped around a file read fault from the page cache (Linux's
    /// `fault_around_bytes` / page size: 16); 0 or 1: none.
    pub fault_around_pages: u64,
    /// Most pages file readahead reads at once (Linux's `read_ahead_kb` / page size:
    /// 32) for a file whose device's is not known; 0: none (every missing page is
    /// read alone).
    pub readahead_pages: u64,
    /// `readahead_pages` holds for every file, even one whose device's readahead the
    /// trace recorded (`--readahead` given).
    pub readahead_fixed: bool,
    /// Stores write the program's real bytes, so a page's contents are known: a page
    /// of zeros goes to swap without a write and without counting in `pswpout`, as
    /// Linux's swap zeromap has it since 6.12. A replayed trace and the synthetic
    /// workloads store no values (every page would read as zeros): there, every page
    /// swapped out counts.
    pub store_values: bool,
    /// Every file starts in the page cache (`--page-cache warm`); otherwise only the
    /// pages a trace's `file-cached` records name, and files mapped executable
    /// (programs and libraries) that have no such record.
    pub page_cache_warm: bool,
    /// A trace's `fs-metadata` events read the file system's own blocks into the
    /// page cache, charged to the process's group (`fs_metadata.rs`); off with
    /// `--no-fs-metadata`.
    pub fs_metadata: bool,
    /// Processes charge their memory group for their kernel objects: kernel stacks,
    /// task and mm structures and one `vm_area_struct` a mapping (`kmem.rs`); off
    /// with `--no-kmem`.
    pub kmem: bool,
    /// Cycles a page copy costs (copy-on-write).
    pub copy_cycles: u64,
    /// Clock rate of the simulated CPU, in MHz (turns cycles into time).
    pub cpu_mhz: u64,
    /// Percent of the translation cycles (every TLB lookup, walk-cache lookup and PTE
    /// read at its latency: `est. cycles`) the run's clock counts as the program's
    /// time ([`clock::TRANSLATION_CLOCK_PERCENT`] by default; 100: all of them).
    pub translation_clock_pct: u64,
    /// Cycles the run's clock counts for every 100 bytes of instructions the program
    /// fetched ([`clock::FETCH_CLOCK_PERCENT`] by default): the program's own work,
    /// which a trace that gives its fetches' lengths carries (`vmsim record`'s, one
    /// fetch per block it ran; valgrind lackey's, one per instruction).
    pub fetch_clock_pct: u64,
    /// Nanoseconds between flushes of a memory group's statistics, which two-list
    /// reclaim's heuristics read as of the last flush ([`rstat`]; Linux's 2 s); 0:
    /// always as they are.
    pub stats_flush_ns: u64,
    /// When the first of those flushes comes, in nanoseconds of the run's clock;
    /// `None`: half a period in (the average of Linux's, whose flusher keeps the
    /// machine's phase, not the program's).
    pub stats_flush_phase_ns: Option<u64>,
    /// `--memory-max`: every process `spawn` starts (and so every descendant) runs in
    /// the memory group `workload` with this `memory.max` in bytes; `None`: in the
    /// root group, with no limit but RAM.
    pub memory_max: Option<u64>,
    /// When anonymous memory gets transparent huge pages
    /// (`/sys/kernel/mm/transparent_hugepage/enabled`).
    pub thp: thp::ThpMode,
    /// Whether a huge-page fault may reclaim when memory is short
    /// (`/sys/kernel/mm/transparent_hugepage/defrag`).
    pub thp_defrag: thp::ThpDefrag,
    /// khugepaged's settings.
    pub khugepaged: khugepaged::KhugepagedConfig,
    /// hugetlb pools made at boot: (page size in bytes, pages) pairs.
    pub hugepages: Vec<(u64, u64)>,
}

/// How a major fault's own read from storage is timed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum OwnRead {
    /// The fault's cycles count one page's transfer.
    #[default]
    Timed,
    /// It read nothing (a swapped page that went out as zeros: Linux counts the
    /// fault major, but the zeromap reads nothing and waits for nothing), so it costs
    /// a minor fault's time.
    Nothing,
    /// It waited on the clock for its page's read in flight (behind what the device
    /// had queued and the pages before it in its request): its cycles count no
    /// transfer.
    Waited,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            zero_page: true,
            wx: false,
            kill_on_violation: true,
            overcommit: Overcommit::Heuristic,
            overcommit_ratio: 50,
            stack_limit: 8 << 20,
            minor_fault_cycles: 1_000,
            // Linux 6.18 on this project's machines (a virtual machine, whose device
            // requests and interrupts exit to the host), fitted to the system time of
            // `validation/programs/anon_random.c` (19.8k major faults, 48k pages swapped
            // in and out, 0.69 s) and `anon_seq.c` (4.1k, 80.8k pages, 0.33 s): 28 us a
            // major fault and 2.6 us a page. `anon_scrambled`, `hot_cold` and
            // `file_mmap_random` agree within 15%.
            major_fault_cycles: 85_000,
            // A file reader under a memory limit spends 0.11-0.13 s of system time on
            // about 135,000 pages read in and evicted, 0.9 us each
            // (`validation/programs/file_mmap_reread.c`); a page that goes through
            // swap costs 2 us more (the fit above).
            page_in_cycles: 2_700,
            page_out_cycles: 2_700,
            swap_page_cycles: 6_000,
            // 0.85 us a page: this project's machine `write`s 48 MiB into a new file,
            // 64 KiB at a time, at 0.8-0.9 us a page without a limit.
            write_page_cycles: 2_600,
            storage: Storage::Vm,
            swap_bytes: 0,
            swap_path: None,
            swap_force: false,
            reclaim: ReclaimPolicy::Clock,
            local_reclaim: false,
            fault_around_pages: 16,
            readahead_pages: 32,
            readahead_fixed: false,
            store_values: true,
            page_cache_warm: false,
            fs_metadata: true,
            kmem: true,
            swap_readahead: 8,
            swap_readahead_by: swap::SwapReadahead::Cluster,
            thread_order: crate::interleave::ThreadOrder::Clock,
            copy_cycles: 1_000,
            cpu_mhz: 3_000,
            translation_clock_pct: clock::TRANSLATION_CLOCK_PERCENT,
            fetch_clock_pct: clock::FETCH_CLOCK_PERCENT,
            stats_flush_ns: rstat::STATS_FLUSH_NS,
            stats_flush_phase_ns: None,
            memory_max: None,
            thp: thp::ThpMode::Madvise,
            thp_defrag: thp::ThpDefrag::Madvise,
            khugepaged: khugepaged::KhugepagedConfig::default(),
            hugepages: Vec::new(),
        }
    }
}

/// Something the kernel reports: a process killed, an OOM decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Event {
    /// A process got a signal for a bad access.
    Signal {
        /// Who.
        pid: Pid,
        /// Its program.
        name: String,
        /// Which signal.
        signal: Signal,
        /// The address.
        va: u64,
        /// Why, in words.
        reason: String,
        /// Whether it was killed.
        killed: bool,
    },
    /// The OOM killer chose a victim.
    OomKill {
        /// The victim.
        pid: Pid,
        /// Its program.
        name: String,
        /// Its resident pages.
        rss_pages: u64,
        /// The group whose limit was hit, if a group's.
        group: Option<String>,
        /// Why, in words.
        reason: String,
    },
}

/// Kernel-wide counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KernelCounters {
    /// Page faults handled, by [`FaultKind`].
    pub faults: [u64; fault::NR_FAULT_KINDS],
    /// Stack VMAs grown by a fault below them.
    pub stack_growths: u64,
    /// Pages read from files into the page cache.
    pub file_reads: u64,
    /// Pages `write` put in the page cache (dirty, each time it wrote them).
    pub file_writes: u64,
    /// ASID roll-overs (every TLB flushed).
    pub asid_rollovers: u64,
    /// Context switches.
    pub switches: u64,
    /// `fork` calls that succeeded.
    pub forks: u64,
    /// `exec` calls that succeeded.
    pub execs: u64,
    /// Processes that exited or were killed.
    pub exits: u64,
    /// Processes the OOM killer killed.
    pub oom_kills: u64,
    /// Processes sent SIGSEGV or SIGBUS.
    pub signals: u64,
    /// Page-table pages freed by `munmap` and `exit`.
    pub tables_freed: u64,
    /// Cycles spent in the fault handler.
    pub fault_cycles: u64,
    /// Cycles the kernel spent reading pages into the page cache and the swap cache,
    /// evicting them, and copying `write`s into the page cache
    /// ([`KernelConfig::page_in_cycles`], `page_out_cycles`, `write_page_cycles`),
    /// besides `fault_cycles` and the time waited on storage.
    pub paging_cycles: u64,
    /// Bytes of instructions the program fetched, as its trace gives them
    /// ([`Kernel::executed`]).
    pub fetched_bytes: u64,
    /// Events dropped because the log was full.
    pub events_dropped: u64,
    /// Anonymous pages written to swap.
    pub swap_outs: u64,
    /// Pages read back from swap.
    pub swap_ins: u64,
    /// Swap file reads or writes that failed (the page stayed or came back as zeros).
    pub swap_errors: u64,
    /// Page-cache pages dropped by reclaim.
    pub file_evictions: u64,
    /// Dirty file pages written back.
    pub writebacks: u64,
    /// Frames reclaimed.
    pub pages_reclaimed: u64,
    /// Frames looked at by reclaim.
    pub pages_scanned: u64,
    /// Pages two-list reclaim looked at on the inactive lists, anonymous and file
    /// (`pgscan_anon`, `pgscan_file`; a page on a file list counts as file).
    pub lru_scanned: [u64; 2],
    /// Of those, pages it freed (`pgsteal_anon`, `pgsteal_file`).
    pub lru_reclaimed: [u64; 2],
    /// Of those, looked at by background reclaim (kswapd; the rest by direct reclaim).
    pub pages_scanned_kswapd: u64,
    /// Frames reclaimed by background reclaim (the rest by direct reclaim).
    pub pages_reclaimed_kswapd: u64,
    /// Of `pages_scanned`, those a memory group's own reclaim (at its limit) looked at.
    pub pages_scanned_group: u64,
    /// Of `pages_reclaimed`, those a memory group's own reclaim freed.
    pub pages_reclaimed_group: u64,
    /// Pages the two-list scan moved from the inactive list to the active one.
    pub activations: u64,
    /// Pages the two-list scan moved from the active list to the inactive one.
    pub deactivations: u64,
    /// Pages moved to the inactive tail when their swap write completed (Linux's
    /// `pgrotated`).
    pub rotated: u64,
    /// Active-list pages the two-list scan looked at (kept active or deactivated).
    pub active_scanned: u64,
    /// Of `active_scanned`, those a memory group's own reclaim (at its limit) looked
    /// at.
    pub active_scanned_group: u64,
    /// Allocations that had to reclaim first (at or below the `min` watermark).
    pub direct_reclaims: u64,
    /// Background reclaim runs (below the `low` watermark).
    pub kswapd_runs: u64,
    /// Nanoseconds processes waited on storage (major faults).
    pub io_wait_ns: u64,
    /// Nanoseconds processes slept (a trace's `sleep` events).
    pub sleep_ns: u64,
    /// Host file reads that failed (the page read as zeros).
    pub file_errors: u64,
    /// Pages mapped by fault-around.
    pub fault_around_pages: u64,
    /// File pages read ahead of the faults that wanted them.
    pub file_readahead: u64,
    /// Pages read into the swap cache by readahead.
    pub swap_readahead: u64,
    /// Pages `madvise(MADV_FREE)` let go that reclaim dropped without swapping
    /// (`pglazyfreed`).
    pub lazyfree_discards: u64,
    /// Pages `madvise(MADV_FREE)` let go (`pglazyfree`).
    pub lazyfree: u64,
    /// Pages read ahead into the swap cache that a fault then found (`swap_ra_hit`).
    pub swap_readahead_hits: u64,
    /// Nanoseconds the storage spent writing (swap-outs, write-backs), in the background.
    pub io_busy_ns: u64,
    /// Of `swap_outs`, pages of zeros: nothing written, and not in `pswpout` (Linux's
    /// swap zeromap, since 6.12).
    pub swap_zero_outs: u64,
    /// Swap-ins and swap readahead of such pages: nothing read, not in `pswpin`.
    pub swap_zero_ins: u64,
    /// Evicted pages read back, anonymous and file (`workingset_refault_*`).
    pub workingset_refault: [u64; 2],
    /// Of those, the ones that came back on the active list (`workingset_activate_*`).
    pub workingset_activate: [u64; 2],
    /// Of those, the ones that were active before they left (`workingset_restore_*`).
    pub workingset_restore: [u64; 2],
    /// Page-cache nodes of shadow entries the shadow shrinker freed
    /// (`workingset_nodereclaim`).
    pub workingset_nodereclaim: u64,
    /// Transparent huge pages: faults, fallbacks, splits (see [`thp::ThpCounters`]).
    pub thp: thp::ThpCounters,
    /// TLB flushes, local and by shootdown (see [`shootdown::TlbFlushCounters`]).
    pub tlb: shootdown::TlbFlushCounters,
    /// Pages locked and unlocked (see [`mlock::MlockCounters`]).
    pub mlock: mlock::MlockCounters,
}

impl KernelCounters {
    /// Faults of one kind.
    pub fn faults_of(&self, kind: FaultKind) -> u64 {
        self.faults[kind as usize]
    }
    /// Faults of one class.
    pub fn faults_in(&self, class: FaultClass) -> u64 {
        FaultKind::ALL
            .iter()
            .filter(|k| k.class() == class)
            .map(|&k| self.faults[k as usize])
            .sum()
    }
}

/// The most bytes one `read` or `write` moves (Linux's `MAX_RW_COUNT`, 2 GiB less a
/// page): a longer one returns short.
pub const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// Most events kept; later ones are counted, not kept.
pub const MAX_EVENTS: usize = 10_000;

/// The kernel and the machine it runs on. It coordinates; each subsystem owns its
/// state in a file of its name.
#[derive(Debug)]
pub struct Kernel {
    /// The hardware.
    machine: Machine,
    /// Policy switches.
    config: KernelConfig,
    /// Physical frames.
    frames: FrameTable,
    /// Processes, the one running, and the ASID allocator.
    tasks: process::Tasks,
    /// The kernel's own half: its tables, the direct map, the zero page, devices.
    space: kernel_space::KernelSpace,
    /// Files and the page cache.
    cache: page_cache::PageCache,
    /// Page-cache reads the storage device has not completed.
    inflight: inflight::InFlight,
    /// Memory groups' statistics as of their last flush.
    rstat: rstat::Rstat,
    /// The run's clock: cycles shared among busy CPUs.
    clock: clock::Clock,
    /// Which (process, page) maps each frame.
    rmap: rmap::Rmap,
    /// Transparent huge pages mapped whole, and the huge zero page.
    thp: thp::Thp,
    /// khugepaged's clock and place.
    khugepaged: khugepaged::Khugepaged,
    /// hugetlb pools and the pages mapped from them.
    hugetlb: hugetlb::HugeTlb,
    /// Which CPU each thread runs on, and what each CPU has loaded.
    sched: sched::Sched,
    /// While a system call or a reclaim pass gathers its flushes: the CPUs it owes a
    /// shootdown, one bit each.
    gathering: Option<u64>,
    /// While a reclaim pass runs: the flush of the running address space it owes the
    /// running CPU, if it unmapped any of it yet.
    owed: Option<Option<crate::hw::TlbFlush>>,
    /// How a major fault's own read is timed, set by the fault and taken by its
    /// accounting.
    own_read: OwnRead,
    /// Reclaim's lists, scan state and thresholds.
    reclaim: reclaim::Reclaim,
    /// The swap device with its cache, and the readahead window.
    swap: swap::Swap,
    /// Shared-memory objects.
    shm: shm::SharedMemory,
    /// Memory groups and commit accounting.
    groups: limits::Groups,
    /// What boot did, the counters, and what happened to processes.
    log: Log,
}

/// What the kernel records: its boot steps, its counters, its events.
#[derive(Debug, Default)]
struct Log {
    boot: Vec<String>,
    counters: KernelCounters,
    events: Vec<Event>,
}

/// Frames held at boot: the kernel's tables, the zero page, reserved holes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameBaseline {
    /// Free frames.
    pub free: u64,
    /// Page-table frames.
    pub tables: u64,
}

impl Kernel {
    /// Boots a machine: see [`boot`](self) for the steps.
    ///
    /// # Panics
    /// If RAM is too small to boot; [`Kernel::try_boot`] says so as an error instead
    /// (use it for machines that come from users).
    pub fn boot(spec: MachineSpec, config: KernelConfig) -> Kernel {
        match boot::boot(spec, config) {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }

    /// Boots a machine, or says why its RAM is too small.
    pub fn try_boot(spec: MachineSpec, config: KernelConfig) -> Result<Kernel, BootError> {
        boot::boot(spec, config)
    }

    /// The hardware.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The policy switches the kernel booted with.
    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    /// The physical frames: what each holds, how many are free.
    pub fn frames(&self) -> &FrameTable {
        &self.frames
    }

    /// Reclaim's free-frame thresholds.
    pub fn watermarks(&self) -> Watermarks {
        self.reclaim.watermarks
    }

    /// What boot did, step by step.
    pub fn boot_log(&self) -> &[String] {
        &self.log.boot
    }

    /// Kernel-wide counters.
    pub fn counters(&self) -> &KernelCounters {
        &self.log.counters
    }

    /// What happened to processes (at most [`MAX_EVENTS`]; later ones are counted in
    /// [`KernelCounters::events_dropped`]).
    pub fn events(&self) -> &[Event] {
        &self.log.events
    }

    /// The page size.
    pub fn page_size(&self) -> u64 {
        self.machine.spec.paging.page_size()
    }

    /// Every process the run has seen, alive or not, by pid.
    pub fn processes(&self) -> &[Process] {
        &self.tasks.procs
    }

    /// The process with id `pid`.
    pub fn process(&self, pid: Pid) -> Option<&Process> {
        self.tasks.get(pid)
    }

    fn proc_mut(&mut self, pid: Pid) -> Option<&mut Process> {
        self.tasks.get_mut(pid)
    }

    /// The address space of a running process.
    fn mm(&self, pid: Pid) -> Result<&AddressSpace, Errno> {
        self.process(pid)
            .and_then(|p| p.mm.as_ref())
            .ok_or(Errno::ESRCH)
    }

    fn mm_mut(&mut self, pid: Pid) -> Result<&mut AddressSpace, Errno> {
        self.proc_mut(pid)
            .and_then(|p| p.mm.as_mut())
            .ok_or(Errno::ESRCH)
    }

    /// The process whose address space is loaded.
    pub fn current(&self) -> Option<Pid> {
        self.tasks.current
    }

    /// The first address of the kernel's half of the address space.
    pub fn kernel_start(&self) -> VirtAddr {
        self.space.start
    }

    /// The top of user space (exclusive).
    pub fn task_size(&self) -> VirtAddr {
        self.space.task_size
    }

    /// The kernel virtual address of physical address `pa` in the direct map.
    pub fn phys_to_virt(&self, pa: PhysAddr) -> Option<VirtAddr> {
        self.space.phys_to_virt(pa)
    }

    /// The lowest address a user mapping may start at (`vm.mmap_min_addr`).
    pub fn mmap_min(&self) -> VirtAddr {
        self.space.mmap_min
    }

    /// The frame of the shared zero page.
    pub fn zero_pfn(&self) -> Pfn {
        self.space.zero_pfn
    }

    /// Free and page-table frames now, to compare with the values right after boot.
    pub fn frame_baseline(&self) -> FrameBaseline {
        FrameBaseline {
            free: self.frames.nr_free(),
            tables: self.frames.nr_of(FrameKind::Table),
        }
    }

    /// Page tables of one process's own, root included (the kernel's shared tables not
    /// counted).
    pub fn table_pages(&self, pid: Pid) -> u64 {
        let Ok(mm) = self.mm(pid) else { return 0 };
        let p = &self.machine.spec.paging;
        mm.pt
            .table_frames(p, &self.machine.ram)
            .saturating_sub(self.space.tables)
    }

    /// The text-mode display, if this machine has one.
    pub fn display(&self) -> Option<&Display> {
        self.space.display.as_ref()
    }

    /// Simulated time: every translation's cycles (the share the clock counts, see
    /// [`clock`]), the program's instructions' and every fault's at the configured
    /// clock rate, summed over CPUs.
    pub fn now_ns(&self) -> u64 {
        let translation = self.machine.estimated_cycles() * self.config.translation_clock_pct / 100;
        let cycles = translation
            + self.program_cycles()
            + self.log.counters.fault_cycles
            + self.log.counters.paging_cycles
            + self.log.counters.tlb.cycles;
        cycles.saturating_mul(1000) / self.config.cpu_mhz.max(1)
    }

    /// Creates a file of the simulated file system (or replaces the contents of one of
    /// that name that no page cache holds yet).
    pub fn create_file(&mut self, name: &str, data: Vec<u8>) -> FileId {
        self.cache.create_file(name, data)
    }

    /// Grows a simulated file to `len` bytes (a trace's file seen longer than before):
    /// the part past its contents reads as zeros, and nothing is allocated for it.
    /// Never shrinks one; false for a host file (whose length is its own) or no file.
    pub fn grow_file(&mut self, file: FileId, len: u64) -> bool {
        match self.cache.files.get_mut(file.0 as usize) {
            Some(f) if f.host.is_none() => {
                f.len = f.len.max(len);
                if let Some(o) = f
                    .shmem
                    .and_then(|id| self.shm.objects[id.0 as usize].as_mut())
                {
                    o.size = o.size.max(len);
                }
                true
            }
            _ => false,
        }
    }

    /// Opens a real file of the host, read-only: it can be mapped privately or
    /// read-only shared, and its pages are really read (with `pread`) as they fault in.
    pub fn open_host_file(&mut self, path: &std::path::Path) -> std::io::Result<FileId> {
        self.cache.open_host_file(path)
    }

    /// The file named `name`.
    pub fn file_named(&self, name: &str) -> Option<FileId> {
        self.cache.file_named(name)
    }

    /// A file.
    pub fn file(&self, id: FileId) -> Option<&File> {
        self.cache.files.get(id.0 as usize)
    }

    /// Pages in the page cache.
    pub fn page_cache_pages(&self) -> u64 {
        self.cache.pages.len() as u64
    }

    /// Drops every page-cache page no process maps (`echo 1 > drop_caches`), writing
    /// back the dirty ones; the huge zero page goes too if nothing maps it (as
    /// `echo 3`'s shrinkers free it).
    pub fn drop_caches(&mut self) -> u64 {
        self.release_huge_zero_page();
        let idle: Vec<_> = self
            .cache
            .pages
            .values()
            .copied()
            .chain(self.swap.dev.iter().flat_map(|s| s.cached_frames()))
            .filter(|&pfn| self.frames.refs(pfn) == 1)
            .collect();
        for &pfn in &idle {
            self.evict(pfn);
        }
        idle.len() as u64
    }

    /// The swap device's counters, if there is swap.
    pub fn swap_stats(&self) -> Option<&SwapStats> {
        self.swap.dev.as_ref().map(|s| &s.stats)
    }

    /// The first write or read of the swap file that failed during the run, taken
    /// (a run that has one cannot be trusted: the page was kept, or came back as
    /// zeros).
    pub fn take_swap_failure(&mut self) -> Option<swap::SwapFileError> {
        self.swap.failed.take()
    }

    /// The named swap file, if there is swap in one (a temporary file has no name).
    pub fn swap_path(&self) -> Option<&std::path::Path> {
        self.swap.dev.as_ref().and_then(|s| s.path())
    }

    /// The swap device, if there is swap (read-only: for reports and the step-by-step
    /// view).
    pub fn swap_device(&self) -> Option<&swap::SwapDevice> {
        self.swap.dev.as_ref()
    }

    /// The frame holding swap slot `slot` in the swap cache, if it is there.
    pub fn swap_cache_frame(&self, slot: SwapSlot) -> Option<Pfn> {
        self.swap.dev.as_ref()?.cached(slot)
    }

    /// Every mapping of frame `pfn` the reverse map knows (anonymous, file and
    /// shared-memory pages):
    /// (process, page address).
    pub fn mappings_of(&self, pfn: Pfn) -> Vec<(Pid, VirtAddr)> {
        let mut out = Vec::new();
        self.rmap.each(pfn, |pid, va, _| out.push((pid, va)));
        out
    }

    fn log(&mut self, e: Event) {
        if self.log.events.len() < MAX_EVENTS {
            self.log.events.push(e);
        } else {
            self.log.counters.events_dropped += 1;
        }
    }

    // ---- Context switches and ASIDs ----

    /// Loads `pid`'s address space on the running CPU (a context switch). Takes a fresh
    /// ASID if its one belongs to an earlier generation; when the ids run out, every
    /// TLB is flushed and a new generation starts (ARM64-style roll-over).
    pub(super) fn load_mm(&mut self, pid: Pid) -> Result<(), Errno> {
        if self.tasks.current == Some(pid) {
            return Ok(());
        }
        let gen = self.tasks.asids.gen;
        let stale = self.mm(pid)?.asid_gen != gen;
        if stale && self.machine.spec.asid_tagged {
            let asid = self.new_asid(pid);
            let mm = self.mm_mut(pid)?;
            mm.pt = PageTable::from_root(mm.pt.root(), asid);
        }
        let gen = self.tasks.asids.gen;
        let (root, asid) = {
            let mm = self.mm_mut(pid)?;
            mm.asid_gen = gen;
            (mm.pt.root(), mm.pt.asid())
        };
        self.log.counters.switches += 1;
        self.tasks.current = Some(pid);
        // The id was taken within the machine's width, so this cannot fail.
        let loaded = self.machine.mmu.set_context(root, asid);
        debug_assert!(loaded.is_ok(), "ASID {asid} refused");
        Ok(())
    }

    fn new_asid(&mut self, for_pid: Pid) -> u32 {
        let max = (1u32 << self.machine.spec.asid_bits.min(31)) - 1;
        let (asid, rolled) = self.tasks.asids.take(max);
        if rolled {
            // Every id of the old generation is stale.
            self.log.counters.asid_rollovers += 1;
            for c in 0..self.nr_cpus() {
                self.machine.mmu_of_mut(c).flush_all();
            }
            if self.nr_cpus() > 1 {
                self.reserve_loaded_asids(for_pid);
            } else if let Some(cur) = self.tasks.current.filter(|&c| c != for_pid) {
                // The running process keeps running until the switch completes; it
                // gets a new id the next time it is switched to.
                if let Ok(mm) = self.mm_mut(cur) {
                    mm.asid_gen = u64::MAX;
                }
            }
        }
        asid
    }

    /// After a roll-over on a machine of several CPUs: every address space loaded on
    /// a CPU keeps running there, so it gets an id of the new generation at once (as
    /// ARM64 reserves each CPU's active ASID) and every CPU that has it loaded reloads
    /// it. Without this, an old id could be handed to another address space while a
    /// CPU still fills its TLB under it.
    fn reserve_loaded_asids(&mut self, for_pid: Pid) {
        let max = (1u32 << self.machine.spec.asid_bits.min(31)) - 1;
        let mut pids: Vec<Pid> = (0..self.nr_cpus())
            .filter_map(|c| self.loaded_on(c))
            .filter(|&p| p != for_pid && self.mm(p).is_ok())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        for p in pids {
            // The machine has more ids than CPUs (`check_asids_for_cpus`), and at most
            // one address space per CPU takes one here: the ids cannot run out again.
            let (asid, rolled) = self.tasks.asids.take(max);
            debug_assert!(!rolled, "ASIDs rolled over twice");
            let gen = self.tasks.asids.gen;
            let Ok(mm) = self.mm_mut(p) else { continue };
            mm.pt = PageTable::from_root(mm.pt.root(), asid);
            mm.asid_gen = gen;
            let root = mm.pt.root();
            for c in 0..self.nr_cpus() {
                if self.loaded_on(c) == Some(p) {
                    let loaded = self.machine.mmu_of_mut(c).set_context(root, asid);
                    debug_assert!(loaded.is_ok(), "ASID {asid} refused");
                }
            }
        }
    }

    /// Loads the kernel's own tables (no process current).
    fn switch_to_kernel(&mut self) {
        self.tasks.current = None;
        // ASID 0 fits every width: this cannot fail.
        let loaded = self.machine.mmu.set_context(self.space.pt.root(), 0);
        debug_assert!(loaded.is_ok(), "ASID 0 refused");
    }

    // ---- Frames ----

    /// Drops one reference to a user frame, uncharging its group when it is freed.
    fn put_frame(&mut self, pfn: Pfn) {
        let kind = self.frames.kind(pfn);
        if matches!(kind, FrameKind::Reserved | FrameKind::Kernel) {
            return;
        }
        let g = self.frames.group(pfn);
        if self.frames.put(pfn) {
            self.lru_del(pfn);
            if !self.reclaim.lazyfree.is_empty() {
                self.reclaim.lazyfree.remove(&pfn.0);
            }
            if let Some(grp) = self.groups.list.get_mut(g as usize) {
                grp.uncharge(kind);
            }
        } else if self.frames.refs(pfn) == 1 {
            // The last mapping of a page whose slot only the swap cache holds went:
            // nobody needs the slot (Linux's free_swap_cache at unmap).
            let owned = self
                .swap
                .dev
                .as_ref()
                .filter(|s| s.owns_any())
                .and_then(|s| s.cached_slot(pfn).filter(|&slot| s.owns(slot)));
            if let Some(slot) = owned {
                self.drop_swap_cache(slot);
            }
        }
    }

    /// The flags of a user PTE for `prot`, writable or not.
    fn user_flags(&self, prot: Prot, writable: bool, device: bool) -> Flags {
        use crate::hw::paging::Format;
        let mut f = Flags::USER;
        let x86ish = self.machine.spec.paging.format != Format::Riscv;
        if prot.contains(Prot::READ) || prot.contains(Prot::WRITE) || x86ish {
            f = f | Flags::READ;
        }
        if writable && prot.contains(Prot::WRITE) {
            f = f | Flags::WRITE;
        }
        if prot.contains(Prot::EXEC) {
            f = f | Flags::EXEC;
        }
        if device {
            f = f | Flags::NO_CACHE;
        }
        f
    }

    /// Writes a user leaf of `level` in `pt` mapping `va` to `pfn` with `flags`, making
    /// the tables on the way (linked for any user access); returns the entry's address.
    fn map_user_leaf(
        &mut self,
        pt: PageTable,
        va: VirtAddr,
        pfn: Pfn,
        level: u32,
        flags: Flags,
    ) -> Result<PhysAddr, crate::hw::MapError> {
        let paging = self.machine.spec.paging;
        pt.map(
            &paging,
            &mut self.machine.ram,
            &mut GroupTables::of(
                &mut self.frames,
                &mut self.groups,
                pt.root().pfn(paging.page_shift),
            ),
            va,
            pfn,
            level,
            flags,
            Flags::RWX | Flags::USER,
        )
    }

    /// Maps one base page of `pid` to `pfn`; counts it resident by the frame's kind.
    fn install(&mut self, pid: Pid, page: VirtAddr, pfn: Pfn, flags: Flags) -> Result<(), Errno> {
        let pt = self.mm(pid)?.pt;
        let pte = self.map_user_leaf(pt, page, pfn, 1, flags)?;
        self.installed(pid, page, pfn, pte);
        Ok(())
    }

    /// As [`Kernel::install`], over the not-present entry at `pte` that the fault
    /// handler found for `page` (no second walk).
    fn install_at(
        &mut self,
        pid: Pid,
        page: VirtAddr,
        pte: PhysAddr,
        pfn: Pfn,
        flags: Flags,
    ) -> Result<(), Errno> {
        self.mm(pid)?;
        let paging = self.machine.spec.paging;
        PageTable::map_at(&paging, &mut self.machine.ram, pte, page, pfn, flags)?;
        self.installed(pid, page, pfn, pte);
        Ok(())
    }

    /// The bookkeeping of a new mapping of `pfn` at `page` through the entry at `pte`:
    /// the reverse map and the resident counts.
    fn installed(&mut self, pid: Pid, page: VirtAddr, pfn: Pfn, pte: PhysAddr) {
        if self.frames.kind(pfn).is_user_page() {
            self.rmap.add(pfn, pid, page, pte);
        }
        self.count_resident(pid, pfn);
    }

    /// Counts `pfn` resident in `pid` by what it holds (the zero page and devices do
    /// not count), and keeps the peak.
    fn count_resident(&mut self, pid: Pid, pfn: Pfn) {
        let kind = self.frames.kind(pfn);
        if let Some(p) = self.proc_mut(pid) {
            if let Some(mm) = p.mm.as_mut() {
                match kind {
                    FrameKind::Anon => mm.rss.anon += 1,
                    FrameKind::File => mm.rss.file += 1,
                    FrameKind::Shm => mm.rss.shmem += 1,
                    _ => {}
                }
                p.stats.peak_rss = p.stats.peak_rss.max(mm.rss.total());
            }
        }
    }

    fn uncount(&mut self, pid: Pid, pfn: Pfn) {
        let kind = self.frames.kind(pfn);
        if let Ok(mm) = self.mm_mut(pid) {
            match kind {
                FrameKind::Anon => mm.rss.anon -= 1,
                FrameKind::File => mm.rss.file -= 1,
                FrameKind::Shm => mm.rss.shmem -= 1,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support;
