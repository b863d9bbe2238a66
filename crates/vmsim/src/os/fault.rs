//! The page-fault handler, step by step as Linux's `do_page_fault` / `handle_mm_fault`
//! take it:
//!
//! 1. A non-canonical address, or a user access to the kernel's half: a violation.
//! 2. Find the VMA that holds the address. None, but a stack just above: grow the stack
//!    down to the page (within `RLIMIT_STACK` and a guard gap above the VMA below).
//!    Otherwise a violation.
//! 3. Check the access against the VMA's protection. Refused: a violation.
//! 4. No page-table entry: demand paging, by what backs the VMA. Anonymous memory maps
//!    the shared zero page on a read and a fresh zeroed frame on a write (minor); a file
//!    page comes from the page cache (minor) or is read into it (major); a
//!    shared-memory page is the object's frame; a device page is the device.
//! 5. A present entry that refuses a write in a private writable VMA: copy-on-write.
//!    The last owner of an anonymous frame writes in place; otherwise the frame is
//!    copied (the zero page is replaced by a zeroed frame).
//! 6. Anything else was spurious (a stale TLB entry): retry.
//!
//! A swapped-out page is a not-present entry naming its swap slot ([`SoftPte::Swap`](crate::hw::SoftPte::Swap)): the
//! fault reads it back (major) at step 4.

use super::frames::FrameKind;
use super::process::Signal;
use super::vma::{Backing, Prot, Vma, VmaRole};
use super::{Kernel, Pid};
use crate::addr::{Pfn, VirtAddr};
use crate::hw::paging::Format;
use crate::hw::{AccessKind, Fault, FaultCause, Flags, PageTable, Slot, SoftPte};
use serde::Serialize;

/// How a fault was resolved, or which violation it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum FaultKind {
    /// A fresh zeroed frame for anonymous memory (or a new shared-memory page).
    DemandZero = 0,
    /// The shared zero page mapped read-only for a first read of anonymous memory.
    ZeroPage = 1,
    /// A file page already in the page cache.
    PageCache = 2,
    /// A shared-memory page some process had already touched.
    Shared = 3,
    /// A device page.
    Device = 4,
    /// A file page read from storage into the page cache (major).
    FileRead = 5,
    /// Copy-on-write: the frame was copied.
    CowCopy = 6,
    /// Copy-on-write: the last owner made its page writable in place.
    CowReuse = 7,
    /// A write to the zero page: replaced by a fresh zeroed frame.
    ZeroPageCopy = 8,
    /// A swapped-out page read back from the swap device (major).
    SwapIn = 14,
    /// A swapped-out page found in the swap cache (read ahead, or brought back by
    /// another process that shared it).
    SwapCache = 15,
    /// Nothing to do: the TLB held a stale entry.
    Spurious = 9,
    /// No VMA holds the address.
    SegvNoVma = 10,
    /// The VMA does not allow the access.
    SegvAccess = 11,
    /// A user access to the kernel's half, or a non-canonical address.
    SegvKernel = 12,
    /// A file mapping beyond the end of the file.
    Bus = 13,
}

/// Number of [`FaultKind`]s.
pub const NR_FAULT_KINDS: usize = 16;

/// The classes faults are reported in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum FaultClass {
    /// Resolved without storage: demand-zero, zero page, page cache, shared, device.
    Minor,
    /// Needed storage (a file read, a swap-in).
    Major,
    /// Copy-on-write breaks.
    Cow,
    /// Nothing to do.
    Spurious,
    /// Refused: a signal was delivered.
    Violation,
}

impl FaultKind {
    /// Every kind, in counter order.
    pub const ALL: [FaultKind; NR_FAULT_KINDS] = [
        FaultKind::DemandZero,
        FaultKind::ZeroPage,
        FaultKind::PageCache,
        FaultKind::Shared,
        FaultKind::Device,
        FaultKind::SwapCache,
        FaultKind::FileRead,
        FaultKind::SwapIn,
        FaultKind::CowCopy,
        FaultKind::CowReuse,
        FaultKind::ZeroPageCopy,
        FaultKind::Spurious,
        FaultKind::SegvNoVma,
        FaultKind::SegvAccess,
        FaultKind::SegvKernel,
        FaultKind::Bus,
    ];

    /// Its class.
    pub fn class(self) -> FaultClass {
        use FaultKind::*;
        match self {
            DemandZero | ZeroPage | PageCache | Shared | Device | SwapCache => FaultClass::Minor,
            FileRead | SwapIn => FaultClass::Major,
            CowCopy | CowReuse | ZeroPageCopy => FaultClass::Cow,
            Spurious => FaultClass::Spurious,
            SegvNoVma | SegvAccess | SegvKernel | Bus => FaultClass::Violation,
        }
    }

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        use FaultKind::*;
        match self {
            DemandZero => "demand-zero",
            ZeroPage => "zero-page",
            PageCache => "page-cache",
            Shared => "shared",
            Device => "device",
            FileRead => "file-read",
            SwapIn => "swap-in",
            SwapCache => "swap-cache",
            CowCopy => "cow-copy",
            CowReuse => "cow-reuse",
            ZeroPageCopy => "zero-page-copy",
            Spurious => "spurious",
            SegvNoVma => "segv-no-vma",
            SegvAccess => "segv-access",
            SegvKernel => "segv-kernel",
            Bus => "sigbus",
        }
    }
}

/// Where fault-around finds the pages it maps: a file's in the page cache, or a
/// shared-memory object's resident ones.
#[derive(Clone, Copy, Debug)]
enum Around {
    File(super::FileId),
    Shm(super::ShmId),
}

/// Why an access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Violation {
    /// No VMA holds the address (and no stack can grow to it).
    NoVma,
    /// The VMA does not allow this access.
    Access,
    /// A user access to the kernel's half.
    KernelAddress,
    /// The address is not canonical.
    NonCanonical,
    /// A file or shared-memory mapping beyond the end of its object.
    BeyondEnd,
    /// No memory could be found (the OOM killer took this process, or had nobody to
    /// take).
    OutOfMemory,
    /// A hugetlb mapping's pool had no page to give.
    HugePoolEmpty,
}

impl Violation {
    /// The signal it delivers.
    pub fn signal(self) -> Signal {
        match self {
            Violation::BeyondEnd | Violation::HugePoolEmpty => Signal::Bus,
            Violation::OutOfMemory => Signal::OomKill,
            _ => Signal::Segv,
        }
    }

    /// In words.
    pub fn reason(self) -> &'static str {
        match self {
            Violation::NoVma => "no mapping at this address",
            Violation::Access => "the mapping does not allow this access",
            Violation::KernelAddress => "user access to kernel memory",
            Violation::NonCanonical => "address is not canonical",
            Violation::BeyondEnd => "beyond the end of the mapped object",
            Violation::OutOfMemory => "out of memory",
            Violation::HugePoolEmpty => "no free page in the hugetlb pool",
        }
    }

    /// The fault kind it is counted as (none for running out of memory).
    pub fn kind(self) -> Option<FaultKind> {
        match self {
            Violation::NoVma => Some(FaultKind::SegvNoVma),
            Violation::Access => Some(FaultKind::SegvAccess),
            Violation::KernelAddress | Violation::NonCanonical => Some(FaultKind::SegvKernel),
            Violation::BeyondEnd | Violation::HugePoolEmpty => Some(FaultKind::Bus),
            Violation::OutOfMemory => None,
        }
    }
}

impl Kernel {
    /// Whether an access of `kind` is allowed by `prot` as the hardware can enforce it
    /// (x86 and textbook pages are readable whenever they are present).
    pub(super) fn prot_allows(&self, prot: Prot, kind: AccessKind) -> bool {
        match kind {
            AccessKind::Read => {
                prot.contains(Prot::READ)
                    || prot.contains(Prot::WRITE)
                    || (prot.contains(Prot::EXEC)
                        && self.machine.spec.paging.format != Format::Riscv)
            }
            AccessKind::Write => prot.contains(Prot::WRITE),
            AccessKind::Execute => prot.contains(Prot::EXEC),
        }
    }

    /// Handles a page fault of `pid`. On success the access can be retried; a violation
    /// is returned for the caller to deliver.
    pub(super) fn handle_fault(&mut self, pid: Pid, f: Fault) -> Result<FaultKind, Violation> {
        match f.cause {
            FaultCause::NonCanonical => return Err(Violation::NonCanonical),
            FaultCause::SupervisorExecUser => return Err(Violation::Access),
            _ => {}
        }
        if f.va >= self.space.task_size {
            return Err(Violation::KernelAddress);
        }
        let ps = self.page_size();
        let page = f.va.align_down(ps);
        // Set by this fault's read, not by anything before.
        self.own_read = super::OwnRead::Timed;
        let mm = self.mm(pid).map_err(|_| Violation::NoVma)?;
        let vma = match mm.vmas.find(f.va) {
            Some(v) => *v,
            None => self.grow_stack(pid, page)?,
        };
        if !self.prot_allows(vma.prot, f.access) {
            return Err(Violation::Access);
        }
        self.reserve_table_frames(pid)?;
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid).map_err(|_| Violation::NoVma)?.pt;
        // The entry the hardware's walk stopped at, if it reached a base-page entry (the
        // tables above stay while the process lives); else a software walk.
        let slot = match f.entry {
            Some(at) => PageTable::slot_at(&paging, &self.machine.ram, at),
            None => pt.slot(&paging, &self.machine.ram, page),
        };
        let kind = match slot {
            None => self.demand(pid, &vma, page, f.access)?,
            Some(s @ Slot::Soft { pte_addr, .. }) => match s.soft() {
                Some(SoftPte::Swap(slot)) => {
                    let write = f.access == AccessKind::Write;
                    let kind = self.swap_in(pid, &vma, page, pte_addr, slot, write)?;
                    // A write to a page that came back shared breaks copy-on-write in
                    // the same fault, as Linux's do_swap_page does (do_wp_page).
                    if write && !vma.shared {
                        if let Some(Slot::Leaf(m)) = pt.slot(&paging, &self.machine.ram, page) {
                            if !m.flags.contains(Flags::WRITE) {
                                self.cow(pid, &vma, page, m.pfn, m.flags)?;
                            }
                        }
                    }
                    kind
                }
                Some(SoftPte::ProtNone(pfn)) => {
                    // mprotect restores these when it widens access; be safe anyway.
                    // The walk just read the entry: clearing it cannot fail.
                    let cleared =
                        PageTable::clear_soft_at(&paging, &mut self.machine.ram, pte_addr);
                    debug_assert!(cleared.is_ok(), "entry at {pte_addr} outside RAM");
                    self.uncount(pid, pfn);
                    self.rmap.remove(pfn, pid, page);
                    let flags = self.user_flags(vma.prot, false, false);
                    self.install(pid, page, pfn, flags)
                        .map_err(|_| Violation::OutOfMemory)?;
                    FaultKind::Spurious
                }
                None => return Err(Violation::NoVma),
            },
            Some(Slot::Leaf(m)) => {
                if f.access == AccessKind::Write && !m.flags.contains(Flags::WRITE) {
                    if matches!(vma.backing, Backing::HugeTlb { .. }) && !vma.shared {
                        self.hugetlb_write_fault(pid, &vma, page, m)?
                    } else if vma.shared {
                        let flush = pt
                            .set_flags(&paging, &mut self.machine.ram, page, m.flags | Flags::WRITE)
                            .map_err(|_| Violation::NoVma)?;
                        self.flush_for(pid, flush);
                        // A file page mapped read-only for write notification (or
                        // cleaned by writeback) is dirty from this store on.
                        if matches!(vma.backing, Backing::File { .. }) {
                            self.dirty_folio(m.pfn);
                        }
                        FaultKind::Spurious
                    } else if m.level > 1 {
                        // A huge page: reused or replaced whole, or split and the
                        // base page copied.
                        match self.thp_write_protect_fault(pid, &vma, page, m)? {
                            Some(kind) => kind,
                            None => match pt.slot(&paging, &self.machine.ram, page) {
                                Some(Slot::Leaf(b)) => self.cow(pid, &vma, page, b.pfn, b.flags)?,
                                _ => return Err(Violation::NoVma),
                            },
                        }
                    } else {
                        self.cow(pid, &vma, page, m.pfn, m.flags)?
                    }
                } else {
                    FaultKind::Spurious
                }
            }
        };
        if vma.locked.is_locked() {
            self.mlock_faulted(pid, page);
        }
        self.log.counters.faults[kind as usize] += 1;
        let own_read = std::mem::take(&mut self.own_read);
        self.log.counters.fault_cycles += match kind.class() {
            FaultClass::Major if own_read == super::OwnRead::Nothing => {
                self.config.minor_fault_cycles
            }
            FaultClass::Major if own_read == super::OwnRead::Waited => {
                self.config.minor_fault_cycles + self.config.major_fault_cycles
            }
            FaultClass::Major => {
                self.config.storage.transfer_ns(ps) * self.config.cpu_mhz / 1000
                    + self.config.minor_fault_cycles
                    + self.config.major_fault_cycles
            }
            FaultClass::Cow if kind != FaultKind::CowReuse => {
                self.config.minor_fault_cycles + self.config.copy_cycles
            }
            _ => self.config.minor_fault_cycles,
        };
        if let Some(p) = self.proc_mut(pid) {
            p.stats.faults[kind as usize] += 1;
            let g = p.group.0;
            let stat = self.group_stat(g);
            stat.pgfault += 1;
            stat.pgmajfault += u64::from(crate::linux::is_major(kind));
        }
        Ok(kind)
    }

    /// Makes sure the frames a fault may need beyond its page (a page table at every
    /// level) are free, reclaiming or calling the OOM killer as an allocation would:
    /// page tables are never reclaimed, so they must not find memory exhausted.
    fn reserve_table_frames(&mut self, pid: Pid) -> Result<(), Violation> {
        use super::reclaim::{Scope, RECLAIM_BATCH};
        let p = &self.machine.spec.paging;
        // Tables below the root (the root always exists), and the page itself.
        let need = (1..p.levels).map(|l| p.table_frames(l)).sum::<u64>() + 1;
        while self.frames.nr_free() < need {
            // Nothing to take but pages being written: wait for the first, as an
            // allocation does.
            if self.reclaim(RECLAIM_BATCH, Scope::Global) == 0 && !self.wait_first_io() {
                self.oom_kill(None, "no free frames for page tables".into())?;
                if !self.process(pid).is_some_and(|p| p.is_running()) {
                    return Err(Violation::OutOfMemory);
                }
            }
        }
        Ok(())
    }

    /// Grows the stack VMA just above `page` down to it, if the limits allow.
    fn grow_stack(&mut self, pid: Pid, page: VirtAddr) -> Result<Vma, Violation> {
        let ps = self.page_size();
        let guard = if self.space.task_size.0 >= 1 << 32 {
            256 * ps
        } else {
            ps
        };
        let limit = self.config.stack_limit;
        let mm = self.mm(pid).map_err(|_| Violation::NoVma)?;
        let stack = *mm
            .vmas
            .find_from(page)
            .filter(|v| v.role == VmaRole::Stack)
            .ok_or(Violation::NoVma)?;
        if stack.end.0 - page.0 > limit {
            return Err(Violation::NoVma);
        }
        if let Some(below) = mm.vmas.before(page) {
            if below.end.0.saturating_add(guard) > page.0 {
                return Err(Violation::NoVma);
            }
        }
        let grown = stack.start.0 - page.0;
        self.commit(grown).map_err(|_| Violation::NoVma)?;
        let new = Vma {
            start: page,
            ..stack
        };
        let mm = self.mm_mut(pid).map_err(|_| Violation::NoVma)?;
        mm.vmas.replace(stack.start, new);
        mm.committed += grown;
        self.log.counters.stack_growths += 1;
        Ok(new)
    }

    /// Fills a page that has no entry, by what backs the VMA.
    fn demand(
        &mut self,
        pid: Pid,
        vma: &Vma,
        page: VirtAddr,
        access: AccessKind,
    ) -> Result<FaultKind, Violation> {
        let ps = self.page_size();
        let write = access == AccessKind::Write;
        let oom = |_| Violation::OutOfMemory;
        match vma.backing {
            Backing::HugeTlb { .. } => self.hugetlb_fault(pid, vma, page, write),
            Backing::Anon => {
                if let Some(kind) = self.thp_demand(pid, vma, page, write)? {
                    return Ok(kind);
                }
                if !write && self.config.zero_page {
                    let flags = self.user_flags(vma.prot, false, false);
                    self.install(pid, page, self.space.zero_pfn, flags)
                        .map_err(oom)?;
                    return Ok(FaultKind::ZeroPage);
                }
                let pfn = self.alloc_user_frame(pid, FrameKind::Anon)?;
                self.zero_frame(pfn);
                let flags = self.user_flags(vma.prot, true, false);
                self.install(pid, page, pfn, flags).map_err(oom)?;
                Ok(FaultKind::DemandZero)
            }
            Backing::Shm { obj, offset } => {
                let idx = vma.object_page(offset, page, ps);
                let size = self.shm.objects[obj.0 as usize]
                    .as_ref()
                    .ok_or(Violation::BeyondEnd)?
                    .size;
                if idx * ps >= size {
                    return Err(Violation::BeyondEnd);
                }
                // A read maps the object's resident pages around it first, as for a
                // file (shmem's `map_pages` is the page cache's).
                if !write && self.fault_around(pid, vma, page, Around::Shm(obj), offset) {
                    return Ok(FaultKind::Shared);
                }
                let (pfn, kind) = self
                    .shm_get(pid, obj, idx, true)?
                    .ok_or(Violation::OutOfMemory)?;
                self.map_object_page(pid, vma, page, pfn, write, kind)
            }
            Backing::File { file, offset } => {
                let idx = vma.object_page(offset, page, ps);
                let len = self.cache.files[file.0 as usize].len;
                if idx * ps >= len {
                    return Err(Violation::BeyondEnd);
                }
                // A read maps the cached pages around it first, the page itself among
                // them if it is cached and not marked for readahead (Linux's
                // `do_read_fault`): then the fault is done.
                if !write && self.fault_around(pid, vma, page, Around::File(file), offset) {
                    return Ok(FaultKind::PageCache);
                }
                let exec = vma.prot.contains(Prot::EXEC).then(|| {
                    let first = vma.object_page(offset, vma.start, ps);
                    first..first + vma.len() / ps
                });
                let (pfn, kind, waited) = self.filemap_fault(pid, file, idx, vma.access, exec)?;
                // Waited for its read: the fault is retried, and a read maps the pages
                // around it whose reads are done by now, itself among them.
                if waited && !write && self.fault_around(pid, vma, page, Around::File(file), offset)
                {
                    return Ok(FaultKind::PageCache);
                }
                let kind = self.map_object_page(pid, vma, page, pfn, write, kind)?;
                if write && vma.shared {
                    self.dirty_folio(pfn);
                    self.map_rest_of_folio(pid, vma, page, pfn, (file, idx));
                }
                Ok(kind)
            }
            Backing::Device(d) => {
                let pfn = d.range().0.pfn(self.machine.spec.paging.page_shift);
                let flags = self.user_flags(vma.prot, true, true);
                self.install(pid, page, pfn, flags).map_err(oom)?;
                Ok(FaultKind::Device)
            }
        }
    }

    /// Fault-around (Linux's `do_fault_around`): before a read fault on a page of a
    /// file or a shared-memory object is handled, the pages of the aligned window of
    /// `fault_around_pages` around it that are already in the page cache (their reads
    /// complete, not marked for readahead) or resident in the object (not in swap),
    /// inside the VMA and not yet mapped, are mapped (read-only in a private mapping),
    /// saving the faults a sequential reader would take. Nothing is read from storage
    /// for them. True if the faulting page itself was mapped.
    fn fault_around(
        &mut self,
        pid: Pid,
        vma: &Vma,
        page: VirtAddr,
        object: Around,
        offset: u64,
    ) -> bool {
        let window = self.config.fault_around_pages;
        if window <= 1 {
            return false;
        }
        let ps = self.page_size();
        // The faulting page's folio, if cached, unmarked and larger than the window,
        // is the window (within the 2 MiB region the page's last table maps).
        let idx = vma.object_page(offset, page, ps);
        let folio = match object {
            Around::File(file) => self
                .cache
                .pages
                .get(&(file, idx))
                .filter(|&&pfn| !self.readahead_marked(pfn))
                .map_or(0, |&pfn| 1u64 << self.folio_of(pfn)),
            Around::Shm(_) => 0,
        };
        let (start, end) = if folio > window {
            folio_span(vma, page, idx, folio, ps)
        } else {
            let span = window * ps;
            (
                VirtAddr(page.0 & !(span - 1)).max(vma.start),
                VirtAddr((page.0 & !(span - 1)).saturating_add(span)).min(vma.end),
            )
        };
        let paging = self.machine.spec.paging;
        let Ok(mm) = self.mm(pid) else { return false };
        let pt = mm.pt;
        let (mut va, mut mapped, mut hit) = (start, 0, false);
        // Pages of the window found in the page cache, mapped or not, that count as
        // hits against the file's misses (see `note_mapped_around`).
        let mut found = 0;
        while va < end {
            let unmapped = pt.slot(&paging, &self.machine.ram, va).is_none();
            let idx = vma.object_page(offset, va, ps);
            let resident = match object {
                Around::File(file) => {
                    let cached = if unmapped {
                        self.cached_page(pid, file, idx)
                    } else {
                        self.cache.pages.get(&(file, idx)).copied()
                    };
                    // Read and not marked: mapped if not yet, and a hit whether
                    // mapped already or not, unless of the working set
                    // (`PG_workingset`: back soon after it was evicted from the
                    // active list, or deactivated since). Linux 6.9 on: a file whose
                    // pages keep coming back is thrashing, and its read-around, only
                    // more reads, should stop.
                    let ready = cached.filter(|&pfn| self.ready_around(pfn));
                    found +=
                        u64::from(ready.is_some_and(|pfn| {
                            !self.reclaim.flag(pfn, super::reclaim::PG_WORKINGSET)
                        }));
                    ready.filter(|_| unmapped)
                }
                // Not one in swap, nor one read ahead into the swap cache.
                Around::Shm(obj) if unmapped => self.shm_page(pid, obj, idx),
                Around::Shm(_) => None,
            };
            if let Some(pfn) = resident {
                // Young, as Linux makes them where the architecture does not ask for
                // old prefaulted entries (x86, RISC-V): the protection's bits include
                // Accessed.
                // Read-only in a shared file mapping too, for write notification.
                let writable = vma.shared && matches!(object, Around::Shm(_));
                let flags = self.user_flags(vma.prot, writable, false) | Flags::ACCESSED;
                if self.prefault(pid, vma, va, pfn, flags) {
                    mapped += 1;
                    hit |= va == page;
                }
            }
            va = VirtAddr(va.0 + ps);
        }
        self.log.counters.fault_around_pages += mapped - u64::from(hit);
        if let Around::File(file) = object {
            self.note_mapped_around(file, found);
        }
        hit
    }

    /// After a write fault on `page` of a shared file mapping mapped `pfn`, page `idx`
    /// of `file`: maps the other pages of its page-cache folio that are not mapped yet,
    /// writable and dirty, within the VMA and the 2 MiB region of the page's last
    /// table, as Linux 6.18's `finish_fault` maps a large folio at once (for every
    /// file since 6.18, shmem alone before). One fault so dirties the whole folio,
    /// as the folio's one dirty flag says on Linux.
    fn map_rest_of_folio(
        &mut self,
        pid: Pid,
        vma: &Vma,
        page: VirtAddr,
        pfn: Pfn,
        (file, idx): (super::FileId, u64),
    ) {
        let n = 1u64 << self.folio_of(pfn);
        if n == 1 {
            return;
        }
        let ps = self.page_size();
        let (start, end) = folio_span(vma, page, idx, n, ps);
        let paging = self.machine.spec.paging;
        let Ok(mm) = self.mm(pid) else { return };
        let pt = mm.pt;
        let flags = self.user_flags(vma.prot, true, false) | Flags::ACCESSED | Flags::DIRTY;
        // The file page `start` maps (the faulting page, mapped already, is passed).
        let first = idx - (page.0 - start.0) / ps;
        let mut va = start;
        while va < end {
            if pt.slot(&paging, &self.machine.ram, va).is_none() {
                let i = first + (va.0 - start.0) / ps;
                if let Some(&other) = self.cache.pages.get(&(file, i)) {
                    if !self.reading(other) {
                        self.prefault(pid, vma, va, other, flags);
                    }
                }
            }
            va = VirtAddr(va.0 + ps);
        }
    }

    /// Maps `pfn`, a page the cache or an object holds, at `va` with `flags` ahead of
    /// any fault on it (fault-around, the rest of a folio), locked in a locked VMA;
    /// whether it was mapped.
    fn prefault(&mut self, pid: Pid, vma: &Vma, va: VirtAddr, pfn: Pfn, flags: Flags) -> bool {
        self.frames.get(pfn);
        if self.install(pid, va, pfn, flags).is_err() {
            self.put_frame(pfn);
            return false;
        }
        if vma.locked.is_locked() {
            self.mlock_frame(pfn);
        }
        true
    }

    /// Maps a page of a file or shared-memory object held by the cache or the object: the
    /// frame itself for a shared mapping or a read, a private copy for a write to a
    /// private mapping.
    fn map_object_page(
        &mut self,
        pid: Pid,
        vma: &Vma,
        page: VirtAddr,
        pfn: Pfn,
        write: bool,
        kind: FaultKind,
    ) -> Result<FaultKind, Violation> {
        let oom = |_| Violation::OutOfMemory;
        if write && !vma.shared {
            // Hold the source while memory is found: reclaim may take it from the cache.
            self.frames.get(pfn);
            self.reclaim.pinned.push(pfn);
            let copy = self.alloc_user_frame(pid, FrameKind::Anon);
            self.reclaim.pinned.pop();
            let copy = match copy {
                Ok(c) => c,
                Err(e) => {
                    self.put_frame(pfn);
                    return Err(e);
                }
            };
            self.copy_frame(pfn, copy);
            self.put_frame(pfn);
            let flags = self.user_flags(vma.prot, true, false);
            self.install(pid, page, copy, flags).map_err(oom)?;
            // A page that waited for I/O stays a major fault.
            return Ok(if matches!(kind, FaultKind::FileRead | FaultKind::SwapIn) {
                kind
            } else {
                FaultKind::CowCopy
            });
        }
        self.frames.get(pfn);
        // A shared file mapping is writable only from a store on (write
        // notification: the store dirties the page); shared memory at once.
        let file = matches!(vma.backing, Backing::File { .. });
        let flags = self.user_flags(vma.prot, vma.shared && (write || !file), false);
        if let Err(e) = self.install(pid, page, pfn, flags) {
            self.put_frame(pfn);
            return Err(oom(e));
        }
        Ok(kind)
    }

    /// Delivers a violation to `pid`: logs it and, by default, kills the process.
    pub(super) fn deliver(&mut self, pid: Pid, va: VirtAddr, v: Violation) {
        if let Some(k) = v.kind() {
            self.log.counters.faults[k as usize] += 1;
            if let Some(p) = self.proc_mut(pid) {
                p.stats.faults[k as usize] += 1;
            }
        }
        if v == Violation::OutOfMemory {
            // The OOM killer has usually acted and logged already; if memory ran out
            // some other way, the process still cannot go on.
            if self.process(pid).is_some_and(|p| p.is_running()) {
                self.log.counters.oom_kills += 1;
                let (name, rss_pages) = self
                    .process(pid)
                    .map_or((String::new(), 0), |p| (p.name.clone(), p.rss().total()));
                self.log(super::Event::OomKill {
                    pid,
                    name,
                    rss_pages,
                    group: None,
                    reason: "memory ran out while handling its fault".into(),
                });
                self.teardown(pid, super::ProcState::Killed(Signal::OomKill));
            }
            return;
        }
        self.log.counters.signals += 1;
        let kill = self.config.kill_on_violation
            && !self
                .process(pid)
                .and_then(|p| p.mm.as_ref())
                .is_some_and(|m| m.recorded);
        let name = self.process(pid).map_or(String::new(), |p| p.name.clone());
        self.log(super::Event::Signal {
            pid,
            name,
            signal: v.signal(),
            va: va.0,
            reason: v.reason().to_string(),
            killed: kill,
        });
        if kill {
            self.teardown(pid, super::ProcState::Killed(v.signal()));
        }
    }
}

/// The addresses `[start, end)` of the `pages`-page folio holding page `idx` of
/// `vma`'s object, mapped at `page`, within the VMA and the 2 MiB region the page's
/// last table maps.
fn folio_span(vma: &Vma, page: VirtAddr, idx: u64, pages: u64, ps: u64) -> (VirtAddr, VirtAddr) {
    let head = page.0 - (idx & (pages - 1)) * ps;
    let region = page.0 & !(512 * ps - 1);
    (
        VirtAddr(head.max(region)).max(vma.start),
        VirtAddr((head + pages * ps).min(region + 512 * ps)).min(vma.end),
    )
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn mapping_allocates_nothing_and_first_touch_faults() {
        let (mut k, pid) = booted();
        let free = k.frames.nr_free();
        let a = k.mmap(pid, MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
        assert_eq!(k.frames.nr_free(), free, "mmap allocates nothing");
        // A read maps the zero page: still nothing allocated but maybe a table.
        assert_eq!(k.read_u64(pid, a).unwrap(), 0);
        assert_eq!(faults(&k, FaultKind::ZeroPage), 1);
        let after_read = k.frames.nr_free();
        assert!(free - after_read <= 3, "only page tables");
        // The write breaks the zero page.
        k.write_u64(pid, a, 42).unwrap();
        assert_eq!(faults(&k, FaultKind::ZeroPageCopy), 1);
        assert_eq!(k.read_u64(pid, a).unwrap(), 42);
        // A first write elsewhere is a plain demand-zero fault.
        k.write_u64(pid, VirtAddr(a.0 + 4096), 7).unwrap();
        assert_eq!(faults(&k, FaultKind::DemandZero), 1);
        assert_eq!(k.process(pid).unwrap().rss().anon, 2);
        // The zero page read fresh elsewhere still reads zero: nobody wrote into it.
        assert_eq!(k.read_u64(pid, VirtAddr(a.0 + 8192)).unwrap(), 0);
    }

    #[test]
    fn without_the_zero_page_switch_a_read_allocates() {
        let mut k = boot_with("x86-64", |c| c.zero_page = false);
        let pid = spawn(&mut k);
        let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
        assert_eq!(k.read_u64(pid, a).unwrap(), 0);
        assert_eq!(faults(&k, FaultKind::ZeroPage), 0);
        assert_eq!(faults(&k, FaultKind::DemandZero), 1);
    }

    #[test]
    fn the_stack_grows_down_on_faults_within_its_limit() {
        let (mut k, pid) = booted();
        let stack = *k
            .mm(pid)
            .unwrap()
            .vmas
            .iter()
            .find(|v| v.role == VmaRole::Stack)
            .unwrap();
        let below = VirtAddr(stack.start.0 - 3 * 4096 + 8);
        k.write_u64(pid, below, 9).unwrap();
        assert_eq!(k.log.counters.stack_growths, 1);
        let grown = k.mm(pid).unwrap().vmas.find(below).copied().unwrap();
        assert_eq!(grown.start, below.align_down(4096));
        assert_eq!(grown.end, stack.end);
        // Past RLIMIT_STACK: no growth, a violation.
        let far = VirtAddr(stack.end.0 - (8 << 20) - 4096);
        let e = k.access(pid, far, AccessKind::Write).unwrap_err();
        assert!(matches!(
            e,
            AccessError::Signal {
                reason: Violation::NoVma,
                ..
            }
        ));
        assert_eq!(faults(&k, FaultKind::SegvNoVma), 1);
    }

    #[test]
    fn a_recorded_image_survives_what_the_model_refuses_and_so_do_its_forks() {
        // A recorded image's accesses all completed when it ran: one the model refuses
        // is signalled and counted, and the process goes on. A process the simulation
        // started is killed as before.
        let (mut k, _) = booted();
        let img = k.spawn_empty("img").unwrap();
        let a = k.mmap(img, MmapArgs::anon(4096, Prot::RW)).unwrap();
        let unmapped = VirtAddr(a.0 - (1 << 30));
        let e = k.access(img, unmapped, AccessKind::Read).unwrap_err();
        assert!(
            matches!(
                e,
                AccessError::Signal {
                    reason: Violation::NoVma,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(k.process(img).unwrap().is_running());
        k.write_u64(img, a, 5).unwrap();
        let child = k.fork(img).unwrap();
        assert!(k.access(child, unmapped, AccessKind::Write).is_err());
        assert!(k.process(child).unwrap().is_running());
        assert_eq!(k.log.counters.signals, 2);
        let plain = spawn(&mut k);
        assert!(k.access(plain, unmapped, AccessKind::Read).is_err());
        assert!(!k.process(plain).unwrap().is_running());
    }

    #[test]
    fn each_violation_is_reported_and_by_default_kills() {
        let mut k = boot_with("x86-64", |c| c.kill_on_violation = false);
        let pid = spawn(&mut k);
        let ro = k.mmap(pid, MmapArgs::anon(4096, Prot::READ)).unwrap();
        let e = k.access(pid, ro, AccessKind::Write).unwrap_err();
        assert!(matches!(
            e,
            AccessError::Signal {
                reason: Violation::Access,
                ..
            }
        ));
        let e = k.access(pid, ro, AccessKind::Execute).unwrap_err();
        assert!(matches!(
            e,
            AccessError::Signal {
                reason: Violation::Access,
                ..
            }
        ));
        let e = k.access(pid, VirtAddr(0x10), AccessKind::Read).unwrap_err();
        assert!(matches!(
            e,
            AccessError::Signal {
                reason: Violation::NoVma,
                ..
            }
        ));
        let e = k
            .access(pid, VirtAddr(0x8000_0000_0000), AccessKind::Read)
            .unwrap_err();
        assert!(matches!(
            e,
            AccessError::Signal {
                reason: Violation::NonCanonical,
                ..
            }
        ));
        assert!(k.process(pid).unwrap().is_running(), "handled, not killed");
        assert_eq!(faults(&k, FaultKind::SegvAccess), 2);
        assert_eq!(faults(&k, FaultKind::SegvNoVma), 1);
        assert_eq!(faults(&k, FaultKind::SegvKernel), 1);
        assert_eq!(k.log.events.len(), 4);
        // With the default, the first one kills.
        let (mut k, pid) = booted();
        assert!(k.access(pid, VirtAddr(0x10), AccessKind::Read).is_err());
        assert_eq!(
            k.access(pid, VirtAddr(0x10), AccessKind::Read),
            Err(AccessError::NotRunning(pid))
        );
        assert!(matches!(
            k.log.events[0],
            Event::Signal {
                killed: true,
                signal: Signal::Segv,
                ..
            }
        ));
    }

    #[test]
    fn a_fault_on_a_page_that_allows_the_access_is_spurious() {
        // The MMU re-walks stale TLB entries itself, so the kernel sees such a fault only
        // when another path fixed the entry first (as another CPU would on real hardware):
        // deliver one by hand.
        let (mut k, pid) = booted();
        let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
        k.write_u64(pid, a, 1).unwrap();
        let fault = crate::hw::Fault {
            va: a,
            access: AccessKind::Write,
            mode: crate::hw::Privilege::User,
            cause: crate::hw::FaultCause::WriteProtect,
            entry: None,
        };
        assert_eq!(k.handle_fault(pid, fault), Ok(FaultKind::Spurious));
        assert_eq!(faults(&k, FaultKind::Spurious), 1);
        assert_eq!(k.read_u64(pid, a).unwrap(), 1);
    }

    #[test]
    fn fault_around_maps_cached_neighbours() {
        let mut k = boot("x86-64");
        k.config.readahead_pages = 0;
        let f = k.create_file("/seq", vec![1u8; 32 * 4096]);
        let a = spawn(&mut k);
        let b = spawn(&mut k);
        let map = MmapArgs {
            source: MapSource::File(f, 0),
            ..MmapArgs::anon(32 * 4096, Prot::READ)
        };
        let va = k.mmap(a, map).unwrap();
        for i in 0..32 {
            k.read_u64(a, VirtAddr(va.0 + i * 4096)).unwrap();
        }
        assert_eq!(
            k.log.counters.file_reads, 32,
            "every page read from the file once"
        );
        assert_eq!(
            k.log.counters.fault_around_pages, 0,
            "a sequential first reader finds no neighbours cached"
        );
        // At a 64 KiB-aligned address, so that the 16 pages are one window.
        let vb = k
            .mmap(
                b,
                MmapArgs {
                    addr: Some(VirtAddr(0x1000_0000)),
                    ..map
                },
            )
            .unwrap();
        assert_eq!(vb, VirtAddr(0x1000_0000));
        let before = k.process(b).unwrap().stats.faults.iter().sum::<u64>();
        for i in 0..16 {
            k.read_u64(b, VirtAddr(vb.0 + i * 4096)).unwrap();
        }
        let faults_b = k.process(b).unwrap().stats.faults.iter().sum::<u64>() - before;
        assert_eq!(faults_b, 1, "one fault maps the whole 16-page window");
        assert_eq!(k.log.counters.fault_around_pages, 15);
    }

    /// A write fault on a shared file mapping maps the page-cache folio around it
    /// whole, writable and dirty (Linux 6.18's `finish_fault`): a writer through a
    /// file read ahead in large folios takes a fault per folio, and every page it
    /// wrote is dirty where reclaim looks. A private mapping copies page by page.
    #[test]
    fn a_shared_write_fault_maps_its_whole_folio() {
        let pages = 256u64;
        let run = |shared: bool| {
            let mut k = boot("x86-64");
            let f = k.create_file("/data", vec![1u8; (pages * 4096) as usize]);
            let pid = spawn(&mut k);
            let map = MmapArgs {
                source: MapSource::File(f, 0),
                shared,
                ..MmapArgs::anon(pages * 4096, Prot::RW)
            };
            let va = k.mmap(pid, map).unwrap();
            let before = k.process(pid).unwrap().stats.faults.iter().sum::<u64>();
            for i in 0..pages {
                k.write_u64(pid, VirtAddr(va.0 + i * 4096), i + 7).unwrap();
            }
            let faults = k.process(pid).unwrap().stats.faults.iter().sum::<u64>() - before;
            for i in 0..pages {
                assert_eq!(k.read_u64(pid, VirtAddr(va.0 + i * 4096)).unwrap(), i + 7);
            }
            // Another process writes one page of the cached file, in the middle (the
            // first folios read ahead are single pages): how many of its pages that
            // maps dirty.
            let other = spawn(&mut k);
            let vb = k.mmap(other, map).unwrap();
            k.write_u64(other, VirtAddr(vb.0 + pages / 2 * 4096), 1)
                .unwrap();
            let paging = k.machine.spec.paging;
            let pt = k.mm(other).unwrap().pt;
            let dirty = (0..pages)
                .filter(|i| {
                    let m = pt.lookup(&paging, &k.machine.ram, VirtAddr(vb.0 + i * 4096));
                    m.is_some_and(|m| m.flags.contains(Flags::DIRTY))
                })
                .count() as u64;
            (faults, dirty)
        };
        let (faults, dirty) = run(true);
        assert!(faults < pages / 4, "{faults} faults for {pages} pages");
        assert!(dirty > 1, "the page's folio is dirty: {dirty} pages");
        assert_eq!(run(false), (pages, 1), "a private copy per page");
    }
}
