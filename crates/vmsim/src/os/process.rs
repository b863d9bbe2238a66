//! Processes and their address spaces (Linux's `task_struct` and `mm_struct`, cut down).

use super::fault::{FaultKind, NR_FAULT_KINDS};
use super::vma::VmaSet;
use super::GroupId;
use crate::addr::VirtAddr;
use crate::hw::PageTable;
use serde::Serialize;
use std::fmt;

/// A process id. Ids start at 1 and are never reused within a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Pid(pub u32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The signal that ended a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Signal {
    /// SIGSEGV: an access no mapping allows.
    Segv,
    /// SIGBUS: an access to a file mapping beyond the end of the file.
    Bus,
    /// SIGKILL from the OOM killer.
    OomKill,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Segv => "SIGSEGV",
            Signal::Bus => "SIGBUS",
            Signal::OomKill => "SIGKILL (out of memory)",
        })
    }
}

/// Where a process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ProcState {
    /// Alive.
    Running,
    /// Called `exit` with this code.
    Exited(i32),
    /// Killed by a signal.
    Killed(Signal),
}

/// Resident pages of a process, by what backs them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rss {
    /// Anonymous pages (private, including copy-on-write shares).
    pub anon: u64,
    /// Page-cache pages of files.
    pub file: u64,
    /// Shared-memory pages.
    pub shmem: u64,
    /// Of `anon`, the pages huge mappings map (`AnonHugePages` in
    /// `/proc/PID/smaps_rollup`, in pages).
    pub anon_huge: u64,
    /// Pages of hugetlb mappings (`HugetlbPages` in `/proc/PID/status`; not part of
    /// the resident set).
    pub hugetlb: u64,
}

impl Rss {
    /// All resident pages.
    pub fn total(&self) -> u64 {
        self.anon + self.file + self.shmem
    }
}

/// Per-process counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProcStats {
    /// Memory accesses made (loads, stores and fetches through the MMU).
    pub accesses: u64,
    /// Page faults handled, by [`FaultKind`] (in the order of [`FaultKind::ALL`]).
    pub faults: [u64; NR_FAULT_KINDS],
    /// Most pages resident at once.
    pub peak_rss: u64,
}

impl ProcStats {
    /// Faults of one kind.
    pub fn faults_of(&self, kind: FaultKind) -> u64 {
        self.faults[kind as usize]
    }
}

/// An address space: the VMAs, the page tables and the address-space id.
#[derive(Clone, Debug)]
pub struct AddressSpace {
    /// The areas.
    pub vmas: VmaSet,
    /// The page tables (root and id).
    pub pt: PageTable,
    /// The generation of the ASID allocator `pt`'s id belongs to (stale after a
    /// roll-over: a new id is taken at the next switch).
    pub asid_gen: u64,
    /// Where the heap starts.
    pub start_brk: VirtAddr,
    /// The program break.
    pub brk: VirtAddr,
    /// Whether the heap has a place. An empty image ([`Kernel::exec_empty`]) has none
    /// until its first `brk` that names an address: that address becomes the heap's
    /// start and the break (what a program's first `brk` reports is where the loader
    /// put the heap).
    ///
    /// [`Kernel::exec_empty`]: super::Kernel::exec_empty
    pub heap_placed: bool,
    /// The top of the stack.
    pub stack_top: VirtAddr,
    /// Where `mmap` looks for room, downward.
    pub mmap_base: VirtAddr,
    /// Resident pages.
    pub rss: Rss,
    /// Bytes committed for overcommit accounting.
    pub committed: u64,
    /// Pages swapped out (entries naming a swap slot).
    pub swap_pages: u64,
    /// How mappings made from now on are locked (`mlockall(MCL_FUTURE)`: Linux's
    /// `VM_LOCKED` in `mm->def_flags`).
    pub lock_future: super::Mlock,
    /// A recorded image ([`Kernel::exec_empty`], and its forks): every access its
    /// trace holds completed when the program ran, so one the model refuses (an
    /// address no recorded mapping holds, a protection the recording did not see
    /// change) is counted and signalled but does not kill the process.
    ///
    /// [`Kernel::exec_empty`]: super::Kernel::exec_empty
    pub recorded: bool,
}

/// A process.
#[derive(Clone, Debug)]
pub struct Process {
    /// Its id.
    pub pid: Pid,
    /// Its parent's id (`None` for processes the simulation started).
    pub ppid: Option<Pid>,
    /// The program it runs.
    pub name: String,
    /// Alive, exited or killed.
    pub state: ProcState,
    /// Its address space, while it is alive.
    pub mm: Option<AddressSpace>,
    /// The memory group it is in.
    pub group: GroupId,
    /// Its counters.
    pub stats: ProcStats,
    /// Resident pages when it ended.
    pub final_rss: Rss,
    /// `prctl(PR_SET_THP_DISABLE)`: no transparent huge pages (inherited by fork,
    /// kept across exec).
    pub thp_disabled: bool,
}

impl Process {
    /// Resident pages now (or when it ended).
    pub fn rss(&self) -> Rss {
        self.mm.as_ref().map_or(self.final_rss, |m| m.rss)
    }

    /// Whether it is alive.
    pub fn is_running(&self) -> bool {
        self.state == ProcState::Running
    }
}

/// The process table: every process the run has seen (pid `n` at index `n - 1`), the
/// one whose address space is loaded, and the ASIDs they are given.
#[derive(Debug, Default)]
pub(super) struct Tasks {
    /// Every process, alive or not.
    pub(super) procs: Vec<Process>,
    /// The process whose address space is loaded.
    pub(super) current: Option<Pid>,
    /// The ASID allocator.
    pub(super) asids: super::asid::Asids,
}

impl Tasks {
    /// The process with id `pid`.
    pub(super) fn get(&self, pid: Pid) -> Option<&Process> {
        (pid.0 as usize)
            .checked_sub(1)
            .and_then(|i| self.procs.get(i))
    }

    /// The process with id `pid`, to change.
    pub(super) fn get_mut(&mut self, pid: Pid) -> Option<&mut Process> {
        (pid.0 as usize)
            .checked_sub(1)
            .and_then(|i| self.procs.get_mut(i))
    }
}
