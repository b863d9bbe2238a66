//! Locking pages in RAM: `mlock`, `mlock2`, `munlock`, `mlockall`, `munlockall` and
//! `mmap(MAP_LOCKED)`, as Linux's `mm/mlock.c` does them.
//!
//! A locked VMA (`VM_LOCKED`) has its pages faulted in when it is locked, unless it is
//! locked on fault (`MLOCK_ONFAULT`, `MCL_ONFAULT`: `VM_LOCKONFAULT`), and every page
//! it maps is taken off the reclaim lists: reclaim never sees it, so it is never
//! swapped out or dropped (Linux's unevictable list). A page becomes locked when it is
//! locked in place (`mlock` of a range it is mapped in), when a fault maps it into a
//! locked VMA, and when the kernel populates it there; it goes back to the inactive
//! list when `munlock` unlocks the range, when a locked VMA stops mapping it (unmap,
//! copy-on-write) while another mapping keeps it alive, and it leaves the lists
//! altogether when it is freed. A memory group's locked pages stay charged to it;
//! when nothing else can be reclaimed, its limit ends in the OOM killer.
//!
//! `mlockall(MCL_FUTURE)` locks the mappings made afterwards (`mmap`, `brk`), which
//! are populated as they are made. A forked child's VMAs are not locked, and neither
//! is anything after `exec`.
//!
//! Where vmsim departs from Linux: a page is locked or not, with no count of the
//! locked VMAs mapping it (Linux's `mlock_count`), so unlocking one of two locked
//! mappings of a shared page unlocks it; `RLIMIT_MEMLOCK` is not checked (the
//! recording says the call succeeded); reclaim does not look for locked mappings of a
//! page on its lists (Linux's `try_to_unmap_one` culls such a page), so a page only a
//! path not listed above maps into a locked VMA may still be reclaimed.

use super::populate::Populate;
use super::vma::Backing;
use super::{Errno, Kernel, Pid};
use crate::addr::{Pfn, VirtAddr};
use crate::hw::{Slot, SoftPte};
use serde::Serialize;

/// How a VMA's pages are locked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mlock {
    /// Not locked.
    #[default]
    Unlocked,
    /// Locked, and faulted in when locked (`VM_LOCKED`).
    Locked,
    /// Locked as the program faults pages in (`VM_LOCKED | VM_LOCKONFAULT`).
    OnFault,
}

impl Mlock {
    /// Whether pages it maps are locked.
    pub fn is_locked(self) -> bool {
        self != Mlock::Unlocked
    }

    /// Its number in binary traces and Python's records: 0 unlocked, 1 locked, 2 on
    /// fault.
    pub fn code(self) -> u64 {
        self as u64
    }

    /// The mode numbered `code` (see [`Mlock::code`]).
    pub fn from_code(code: u64) -> Option<Mlock> {
        [Mlock::Unlocked, Mlock::Locked, Mlock::OnFault]
            .get(usize::try_from(code).ok()?)
            .copied()
    }
}

/// `mlockall`'s `MCL_CURRENT`: lock every mapping there is.
pub const MCL_CURRENT: u32 = 1;
/// `mlockall`'s `MCL_FUTURE`: lock every mapping made from now on.
pub const MCL_FUTURE: u32 = 2;
/// `mlockall`'s `MCL_ONFAULT`: lock pages as they are faulted in.
pub const MCL_ONFAULT: u32 = 4;

/// `/proc/vmstat`'s `unevictable_pgs_*` events that vmsim models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MlockCounters {
    /// Pages locked (`unevictable_pgs_mlocked`).
    pub mlocked: u64,
    /// Pages unlocked while still in use (`unevictable_pgs_munlocked`).
    pub munlocked: u64,
    /// Pages freed while locked (`unevictable_pgs_cleared`).
    pub cleared: u64,
}

/// Whether a VMA of this backing can be locked: Linux leaves hugetlb and device
/// (`VM_SPECIAL`) mappings as they are, and their pages are never reclaimed anyway.
fn lockable(backing: Backing) -> bool {
    !matches!(backing, Backing::HugeTlb { .. } | Backing::Device(_))
}

impl Kernel {
    /// `mlock`, `mlock2` (`mode` [`Mlock::Locked`], or [`Mlock::OnFault`] for
    /// `MLOCK_ONFAULT`) and `munlock` ([`Mlock::Unlocked`]) of `len` bytes of `pid`
    /// from `addr`: the start is rounded down and the end up to pages, and the range
    /// must be mapped throughout (`ENOMEM`, before anything changes). The range's VMAs
    /// take the mode; the pages mapped there now are locked or unlocked; with
    /// [`Mlock::Locked`], the rest are faulted in ([`Kernel::populate`]).
    pub fn mlock(&mut self, pid: Pid, addr: VirtAddr, len: u64, mode: Mlock) -> Result<(), Errno> {
        if len == 0 {
            // Linux: nothing to do.
            return Ok(());
        }
        let (start, len, _) = self.pages_mapped_throughout(pid, addr, len)?;
        self.lock_range(pid, start, VirtAddr(start.0 + len), mode)?;
        if mode == Mlock::Locked {
            self.populate(pid, start, len, Populate::Map)?;
        }
        Ok(())
    }

    /// `mlockall` with `flags` (`MCL_*`), or `munlockall` with none: `MCL_CURRENT`
    /// locks every VMA (faulting each in unless `MCL_ONFAULT` is given, past any
    /// failure), `MCL_FUTURE` the ones made from now on; each call replaces what the
    /// last said of future mappings. `EINVAL` for unknown flags, or `MCL_ONFAULT`
    /// alone.
    pub fn mlockall(&mut self, pid: Pid, flags: u32) -> Result<(), Errno> {
        if flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
            return Err(Errno::EINVAL);
        }
        let mode = if flags & MCL_ONFAULT != 0 {
            Mlock::OnFault
        } else {
            Mlock::Locked
        };
        let mm = self.mm_mut(pid)?;
        mm.lock_future = if flags & MCL_FUTURE != 0 {
            mode
        } else {
            Mlock::Unlocked
        };
        if flags != 0 && flags & MCL_CURRENT == 0 {
            return Ok(());
        }
        let mode = if flags == 0 { Mlock::Unlocked } else { mode };
        let spans: Vec<(VirtAddr, VirtAddr)> = mm.vmas.iter().map(|v| (v.start, v.end)).collect();
        for &(start, end) in &spans {
            self.lock_range(pid, start, end, mode)?;
        }
        if mode == Mlock::Locked {
            for (start, end) in spans {
                // Linux's mlockall populates past failures (mm_populate ignores them).
                let _ = self.populate(pid, start, end.0 - start.0, Populate::Map);
            }
        }
        Ok(())
    }

    /// Gives the lockable VMAs in `[start, end)` (mapped throughout) `mode`, and locks
    /// or unlocks the pages they map now: those of a VMA that becomes locked are
    /// locked; those of one that stops being locked are unlocked.
    fn lock_range(
        &mut self,
        pid: Pid,
        start: VirtAddr,
        end: VirtAddr,
        mode: Mlock,
    ) -> Result<(), Errno> {
        let before = self.mm(pid)?.vmas.overlapping(start, end);
        if before
            .iter()
            .all(|v| !lockable(v.backing) || v.locked == mode)
        {
            return Ok(());
        }
        // A VMA split inside a huge page splits the page (as for madvise).
        self.split_huge_edges(pid, start, end)?;
        self.mm_mut(pid)?.vmas.update_range(start, end, |v| {
            if lockable(v.backing) {
                v.locked = mode;
            }
        });
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid)?.pt;
        for v in before {
            if !lockable(v.backing) || v.locked.is_locked() == mode.is_locked() {
                continue;
            }
            let (from, to) = (v.start.max(start), v.end.min(end));
            for (_, slot) in pt.entries(&paging, &self.machine.ram, from, to) {
                // A page kept by a PROT_NONE entry is mapped all the same.
                let pfn = match slot {
                    Slot::Leaf(m) => m.pfn,
                    s => match s.soft().and_then(SoftPte::prot_none_frame) {
                        Some(pfn) => pfn,
                        None => continue,
                    },
                };
                if mode.is_locked() {
                    self.mlock_frame(pfn);
                } else {
                    self.munlock_frame(pfn);
                }
            }
        }
        Ok(())
    }

    /// Faults in `len` bytes of `pid` from `start`, a mapping `mmap`, `brk` or
    /// `mremap` just made or grew, if it is `locked` (and not on fault), past any
    /// failure: Linux's `mm_populate` after those calls ignores them.
    pub(super) fn populate_new_locked(
        &mut self,
        pid: Pid,
        start: VirtAddr,
        len: u64,
        locked: Mlock,
    ) {
        if locked == Mlock::Locked {
            let _ = self.populate(pid, start, len, Populate::Map);
        }
    }

    /// Locks frame `pfn` (off the reclaim lists), counting its pages as
    /// `unevictable_pgs_mlocked`.
    pub(super) fn mlock_frame(&mut self, pfn: Pfn) {
        self.log.counters.mlock.mlocked += self.lru_mlock(pfn);
    }

    /// Unlocks frame `pfn` (back on the reclaim lists), counting its pages as
    /// `unevictable_pgs_munlocked`.
    pub(super) fn munlock_frame(&mut self, pfn: Pfn) {
        self.log.counters.mlock.munlocked += self.lru_munlock(pfn);
    }

    /// A fault just mapped a page at `page` of `pid` in a locked VMA: locks it (Linux
    /// locks a page as it maps it into a `VM_LOCKED` VMA).
    pub(super) fn mlock_faulted(&mut self, pid: Pid, page: VirtAddr) {
        let paging = self.machine.spec.paging;
        let Ok(mm) = self.mm(pid) else { return };
        if let Some(Slot::Leaf(m)) = mm.pt.slot(&paging, &self.machine.ram, page) {
            self.mlock_frame(m.pfn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::AccessKind;
    use crate::os::test_support::*;
    use crate::os::{FaultKind, MmapArgs, Prot, ReclaimPolicy};

    #[test]
    fn locked_pages_are_never_swapped_out() {
        // 4 MiB of RAM, a 1 MiB range locked, then 8 MiB of other memory written.
        let mut k = boot_small(4 << 20, 32 << 20, ReclaimPolicy::TwoList);
        let pid = spawn(&mut k);
        let ps = k.page_size();
        let locked = k.mmap(pid, MmapArgs::anon(1 << 20, Prot::RW)).unwrap();
        k.mlock(pid, locked, 1 << 20, Mlock::Locked).unwrap();
        let pages = (1 << 20) / ps;
        assert_eq!(k.counters().mlock.mlocked, pages, "populated and locked");
        assert_eq!(k.counters().faults_of(FaultKind::DemandZero), pages);
        let other = k.mmap(pid, MmapArgs::anon(8 << 20, Prot::RW)).unwrap();
        for i in 0..(8 << 20) / ps {
            k.access(pid, VirtAddr(other.0 + i * ps), AccessKind::Write)
                .unwrap();
        }
        assert!(k.counters().swap_outs > 0, "the other memory swapped");
        let before = k.counters().faults_of(FaultKind::SwapIn);
        for i in 0..pages {
            k.access(pid, VirtAddr(locked.0 + i * ps), AccessKind::Read)
                .unwrap();
        }
        assert_eq!(
            k.counters().faults_of(FaultKind::SwapIn),
            before,
            "no locked page left RAM"
        );
        // Unlocked, they are reclaimable again.
        k.mlock(pid, locked, 1 << 20, Mlock::Unlocked).unwrap();
        assert_eq!(k.counters().mlock.munlocked, pages);
        for i in 0..(8 << 20) / ps {
            k.access(pid, VirtAddr(other.0 + i * ps), AccessKind::Write)
                .unwrap();
        }
        for i in 0..pages {
            k.access(pid, VirtAddr(locked.0 + i * ps), AccessKind::Read)
                .unwrap();
        }
        assert!(k.counters().faults_of(FaultKind::SwapIn) > before);
    }

    #[test]
    fn a_group_with_only_locked_pages_left_ends_in_the_oom_killer() {
        for policy in [ReclaimPolicy::Clock, ReclaimPolicy::TwoList] {
            let mut k = boot_small(16 << 20, 16 << 20, policy);
            let g = k.create_group("/locked", Some(64 * 4096)).unwrap();
            let pid = spawn(&mut k);
            k.set_group(pid, g).unwrap();
            let a = k.mmap(pid, MmapArgs::anon(48 * 4096, Prot::RW)).unwrap();
            k.mlock(pid, a, 48 * 4096, Mlock::Locked).unwrap();
            // The other pages share what is left of the limit.
            let b = k.mmap(pid, MmapArgs::anon(256 * 4096, Prot::RW)).unwrap();
            write_pages(&mut k, pid, b, 256, |i| i);
            assert!(k.process(pid).unwrap().is_running(), "{policy:?}");
            assert!(k.counters().swap_outs >= 256 - 16, "{policy:?}");
            let swapped_in = k.counters().faults_of(FaultKind::SwapIn);
            write_pages(&mut k, pid, a, 48, |i| i);
            assert_eq!(k.counters().faults_of(FaultKind::SwapIn), swapped_in);
            // Locking past the limit leaves nothing to reclaim.
            let c = k.mmap(pid, MmapArgs::anon(32 * 4096, Prot::RW)).unwrap();
            let _ = k.mlock(pid, c, 32 * 4096, Mlock::Locked);
            assert_eq!(
                k.process(pid).unwrap().state,
                crate::os::ProcState::Killed(crate::os::Signal::OomKill),
                "{policy:?}"
            );
            assert_eq!(k.groups()[g.0 as usize].oom_kills, 1, "{policy:?}");
        }
    }

    #[test]
    fn cached_file_pages_a_locked_mapping_leaves_go_back_to_the_lists() {
        let (mut k, pid) = booted();
        let ps = k.page_size();
        let f = k.create_file("/data", vec![7u8; 64 * ps as usize]);
        let args = MmapArgs {
            source: crate::os::MapSource::File(f, 0),
            ..MmapArgs::anon(64 * ps, Prot::READ)
        };
        let a = k.mmap(pid, args).unwrap();
        k.mlock(pid, a, 64 * ps, Mlock::Locked).unwrap();
        // Every page, those fault-around mapped included.
        assert_eq!(k.counters().mlock.mlocked, 64, "{:?}", k.counters().mlock);
        let pfn = match k
            .mm(pid)
            .unwrap()
            .pt
            .slot(&k.machine.spec.paging, &k.machine.ram, a)
        {
            Some(Slot::Leaf(m)) => m.pfn,
            other => panic!("{other:?}"),
        };
        assert!(k.is_mlocked(pfn));
        k.munmap(pid, a, 64 * ps).unwrap();
        // Still cached, and reclaimable again.
        assert_eq!(k.counters().mlock.munlocked, 64);
        assert_eq!(k.counters().mlock.cleared, 0);
        assert!(!k.is_mlocked(pfn));
    }

    #[test]
    fn a_copy_on_write_moves_the_lock_to_the_copy_and_mremap_grows_it() {
        let (mut k, pid) = booted();
        let ps = k.page_size();
        // Room above for mremap to grow it in place.
        let a = k.mmap(pid, MmapArgs::anon(8 * ps, Prot::RW)).unwrap();
        k.munmap(pid, VirtAddr(a.0 + 4 * ps), 4 * ps).unwrap();
        k.mlock(pid, a, 4 * ps, Mlock::Locked).unwrap();
        let child = k.fork(pid).unwrap();
        for i in 0..4 {
            k.access(pid, VirtAddr(a.0 + i * ps), AccessKind::Write)
                .unwrap();
        }
        let m = k.counters().mlock;
        assert_eq!(m.mlocked, 4 + 4, "the copies locked: {m:?}");
        // mremap grows the locked mapping: its new part is faulted in and locked.
        let faults = k.counters().faults_of(FaultKind::DemandZero);
        k.mremap(pid, a, 4 * ps, a, 6 * ps).unwrap();
        assert_eq!(k.counters().faults_of(FaultKind::DemandZero), faults + 2);
        assert_eq!(k.counters().mlock.mlocked, 4 + 4 + 2);
        assert_eq!(m.munlocked, 4, "the child's pages unlocked: {m:?}");
        k.exit(child, 0).unwrap();
        assert_eq!(
            k.counters().mlock.cleared,
            0,
            "the child's pages were not locked"
        );
    }

    #[test]
    fn on_fault_locks_what_the_program_touches_and_munmap_unlocks_it() {
        let (mut k, pid) = booted();
        let ps = k.page_size();
        let a = k.mmap(pid, MmapArgs::anon(16 * ps, Prot::RW)).unwrap();
        k.mlock(pid, a, 16 * ps, Mlock::OnFault).unwrap();
        assert_eq!(k.counters().mlock.mlocked, 0, "nothing faulted in");
        let vma = *k.mm(pid).unwrap().vmas.find(a).unwrap();
        assert_eq!(vma.locked, Mlock::OnFault);
        k.access(pid, VirtAddr(a.0 + 3 * ps), AccessKind::Write)
            .unwrap();
        assert_eq!(k.counters().mlock.mlocked, 1);
        k.munmap(pid, a, 16 * ps).unwrap();
        // Unlocked as its locked mapping went, then freed (Linux 6.x).
        assert_eq!(k.counters().mlock.munlocked, 1);
        assert_eq!(k.counters().mlock.cleared, 0);
    }

    #[test]
    fn mlock_splits_vmas_and_needs_the_range_mapped() {
        let (mut k, pid) = booted();
        let ps = k.page_size();
        let a = k.mmap(pid, MmapArgs::anon(8 * ps, Prot::RW)).unwrap();
        // An unaligned start is rounded down; the end rounded up.
        k.mlock(pid, VirtAddr(a.0 + 2 * ps + 5), 2 * ps, Mlock::Locked)
            .unwrap();
        let spans: Vec<_> = k
            .mm(pid)
            .unwrap()
            .vmas
            .overlapping(a, VirtAddr(a.0 + 8 * ps))
            .iter()
            .map(|v| ((v.start.0 - a.0) / ps, (v.end.0 - a.0) / ps, v.locked))
            .collect();
        assert_eq!(
            spans,
            [
                (0, 2, Mlock::Unlocked),
                (2, 5, Mlock::Locked),
                (5, 8, Mlock::Unlocked)
            ]
        );
        assert_eq!(k.counters().mlock.mlocked, 3);
        assert_eq!(
            k.mlock(pid, VirtAddr(a.0 + 7 * ps), 4 * ps, Mlock::Locked),
            Err(Errno::ENOMEM)
        );
        // munlock merges the VMAs back.
        k.mlock(pid, a, 8 * ps, Mlock::Unlocked).unwrap();
        assert_eq!(
            k.mm(pid)
                .unwrap()
                .vmas
                .overlapping(a, VirtAddr(a.0 + 8 * ps))
                .len(),
            1
        );
        assert_eq!(k.counters().mlock.munlocked, 3);
    }

    #[test]
    fn mlockall_future_locks_and_populates_new_mappings_but_not_a_childs() {
        let (mut k, pid) = booted();
        let ps = k.page_size();
        assert_eq!(k.mlockall(pid, MCL_ONFAULT), Err(Errno::EINVAL));
        assert_eq!(k.mlockall(pid, 8), Err(Errno::EINVAL));
        k.mlockall(pid, MCL_FUTURE).unwrap();
        let a = k.mmap(pid, MmapArgs::anon(4 * ps, Prot::RW)).unwrap();
        assert_eq!(k.counters().mlock.mlocked, 4, "populated as it was made");
        let child = k.fork(pid).unwrap();
        let cm = k.mm(child).unwrap();
        assert_eq!(cm.lock_future, Mlock::Unlocked);
        assert!(!cm.vmas.find(a).unwrap().locked.is_locked());
        // munlockall unlocks everything and stops locking new mappings.
        k.mlockall(pid, 0).unwrap();
        assert_eq!(k.counters().mlock.munlocked, 4);
        let b = k.mmap(pid, MmapArgs::anon(4 * ps, Prot::RW)).unwrap();
        assert!(!k.mm(pid).unwrap().vmas.find(b).unwrap().locked.is_locked());
        // MCL_CURRENT | MCL_ONFAULT locks without faulting in.
        let faults = k.counters().faults_of(FaultKind::DemandZero);
        k.mlockall(pid, MCL_CURRENT | MCL_ONFAULT).unwrap();
        assert_eq!(k.counters().faults_of(FaultKind::DemandZero), faults);
        assert_eq!(
            k.mm(pid).unwrap().vmas.find(b).unwrap().locked,
            Mlock::OnFault
        );
    }
}
