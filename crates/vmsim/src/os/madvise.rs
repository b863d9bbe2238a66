//! `madvise`: the advice vmsim models, by Linux's number ([`Kernel::madvise`]).
//! `MADV_DONTNEED` drops a range's pages while its mapping stays (the next touch
//! faults in zeros or the file's bytes again); `MADV_FREE` lets a range's private
//! anonymous pages go lazily; `MADV_PAGEOUT` reclaims them now and `MADV_COLD` moves
//! them to where reclaim looks first; the access advice
//! (`MADV_RANDOM`, ...) and the huge-page advice are kept in the VMAs; `MADV_WILLNEED`
//! reads ahead (`readahead.rs`) and `MADV_POPULATE_*` faults in (`populate.rs`);
//! `MADV_DONTFORK` and `MADV_WIPEONFORK` (and their undoing) are kept in the VMAs for
//! `fork` (`fork.rs`); `MADV_DONTNEED_LOCKED` drops pages as `MADV_DONTNEED` does,
//! locked ones too.

use super::frames::FrameKind;
use super::readahead::AccessAdvice;
use super::thp::HugeAdvice;
use super::vma::Backing;
use super::{Errno, Kernel, Pid, Populate};
use crate::addr::{Pfn, VirtAddr};
use crate::hw::{Flags, Slot, SoftPte, TlbFlush};

/// `MADV_NORMAL`: no advice on how the range is read.
pub const MADV_NORMAL: u32 = 0;
/// `MADV_RANDOM`: the range is read at random (no readahead).
pub const MADV_RANDOM: u32 = 1;
/// `MADV_SEQUENTIAL`: the range is read in order.
pub const MADV_SEQUENTIAL: u32 = 2;
/// `MADV_WILLNEED`: the range will be used soon (read its file pages ahead).
pub const MADV_WILLNEED: u32 = 3;
/// `MADV_DONTNEED`: drop the range's pages.
pub const MADV_DONTNEED: u32 = 4;
/// `MADV_FREE`: the range's pages may be dropped lazily.
pub const MADV_FREE: u32 = 8;
/// `MADV_DONTFORK`: a child made by `fork` does not get the range.
pub const MADV_DONTFORK: u32 = 10;
/// `MADV_DOFORK`: undoes `MADV_DONTFORK`.
pub const MADV_DOFORK: u32 = 11;
/// `MADV_WIPEONFORK`: a child made by `fork` gets the range empty.
pub const MADV_WIPEONFORK: u32 = 18;
/// `MADV_KEEPONFORK`: undoes `MADV_WIPEONFORK`.
pub const MADV_KEEPONFORK: u32 = 19;
/// `MADV_COLD`: the range's pages are not wanted soon (reclaim may take them first).
pub const MADV_COLD: u32 = 20;
/// `MADV_HUGEPAGE`: the range may have transparent huge pages.
pub const MADV_HUGEPAGE: u32 = 14;
/// `MADV_NOHUGEPAGE`: the range must not.
pub const MADV_NOHUGEPAGE: u32 = 15;
/// `MADV_PAGEOUT`: reclaim the range's pages now.
pub const MADV_PAGEOUT: u32 = 21;
/// `MADV_POPULATE_READ`: fault the range in for reading.
pub const MADV_POPULATE_READ: u32 = 22;
/// `MADV_POPULATE_WRITE`: fault the range in for writing.
pub const MADV_POPULATE_WRITE: u32 = 23;
/// `MADV_DONTNEED_LOCKED`: `MADV_DONTNEED`, locked ranges included (Linux 5.18).
pub const MADV_DONTNEED_LOCKED: u32 = 24;

impl Kernel {
    /// `madvise(addr, len, advice)`, by Linux's `MADV_*` number, as `do_madvise`
    /// dispatches it: `None` for advice vmsim does not model (a caller counts it), and
    /// `Ok` without doing anything for a length of 0, as Linux does.
    pub fn madvise(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
        advice: u32,
    ) -> Option<Result<(), Errno>> {
        let act: fn(&mut Kernel, Pid, VirtAddr, u64) -> Result<(), Errno> = match advice {
            MADV_NORMAL => |k, p, a, l| k.madvise_access(p, a, l, AccessAdvice::Normal),
            MADV_RANDOM => |k, p, a, l| k.madvise_access(p, a, l, AccessAdvice::Random),
            MADV_SEQUENTIAL => |k, p, a, l| k.madvise_access(p, a, l, AccessAdvice::Sequential),
            MADV_WILLNEED => Kernel::madvise_willneed,
            MADV_DONTNEED => Kernel::madvise_dontneed,
            MADV_FREE => Kernel::madvise_free,
            MADV_PAGEOUT => Kernel::madvise_pageout,
            MADV_COLD => Kernel::madvise_cold,
            MADV_HUGEPAGE => |k, p, a, l| k.madvise_huge(p, a, l, HugeAdvice::Huge),
            MADV_NOHUGEPAGE => |k, p, a, l| k.madvise_huge(p, a, l, HugeAdvice::NoHuge),
            MADV_POPULATE_READ => |k, p, a, l| k.populate(p, a, l, Populate::Read),
            MADV_POPULATE_WRITE => |k, p, a, l| k.populate(p, a, l, Populate::Write),
            MADV_DONTNEED_LOCKED => Kernel::madvise_dontneed_locked,
            MADV_DONTFORK => |k, p, a, l| k.madvise_fork(p, a, l, MADV_DONTFORK),
            MADV_DOFORK => |k, p, a, l| k.madvise_fork(p, a, l, MADV_DOFORK),
            MADV_WIPEONFORK => |k, p, a, l| k.madvise_fork(p, a, l, MADV_WIPEONFORK),
            MADV_KEEPONFORK => |k, p, a, l| k.madvise_fork(p, a, l, MADV_KEEPONFORK),
            _ => return None,
        };
        Some(if len == 0 {
            Ok(())
        } else {
            act(self, pid, addr, len)
        })
    }

    /// `madvise(MADV_DONTNEED)`: drops the pages of the range (the next touch finds
    /// zeros for private anonymous memory, the object's contents otherwise). The range
    /// must be mapped throughout.
    pub fn madvise_dontneed(&mut self, pid: Pid, addr: VirtAddr, len: u64) -> Result<(), Errno> {
        self.drop_advised(pid, addr, len, false)
    }

    /// `madvise(MADV_DONTNEED_LOCKED)`: [`madvise_dontneed`](Self::madvise_dontneed)
    /// on locked ranges too; their pages go (counted munlocked), the areas stay
    /// locked, and a touch faults a page in locked again.
    pub fn madvise_dontneed_locked(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
    ) -> Result<(), Errno> {
        self.drop_advised(pid, addr, len, true)
    }

    /// The pages of the range dropped, for `MADV_DONTNEED` (`EINVAL` if any of it is
    /// locked, unless `locked_too`).
    fn drop_advised(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
        locked_too: bool,
    ) -> Result<(), Errno> {
        // Other CPUs hear of the call's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            let len = k.round_len(len)?;
            let end = k.check_range(addr, len)?;
            let vmas = k.mapped_throughout(pid, addr, end)?;
            // Linux's madvise_dontneed_free_valid_vma: locked pages stay.
            if !locked_too && vmas.iter().any(|v| v.locked.is_locked()) {
                return Err(Errno::EINVAL);
            }
            k.hugetlb_aligned(pid, addr, end)?;
            k.zap(pid, addr, end)
        })
    }

    /// The end of the `len` bytes from `addr` that advice about reclaim (`free`,
    /// `pageout`) acts on: `ENOMEM` unless mapped throughout, `EINVAL` if any of it is
    /// hugetlb or locked (Linux's `can_madv_lru_vma`).
    fn lru_range(&self, pid: Pid, addr: VirtAddr, len: u64) -> Result<VirtAddr, Errno> {
        let len = self.round_len(len)?;
        let end = self.check_range(addr, len)?;
        let vmas = self.mapped_throughout(pid, addr, end)?;
        if vmas
            .iter()
            .any(|v| matches!(v.backing, Backing::HugeTlb { .. }) || v.locked.is_locked())
        {
            return Err(Errno::EINVAL);
        }
        Ok(end)
    }

    /// Whether `pfn` is an anonymous or file page that one mapping alone maps: what
    /// `MADV_PAGEOUT` and `MADV_COLD` act on (Linux: a folio whose mapcount is its
    /// number of pages).
    fn mapped_here_only(&self, pfn: Pfn) -> bool {
        matches!(self.frames.kind(pfn), FrameKind::Anon | FrameKind::File)
            && self.rmap.of(pfn).nth(1).is_none()
    }

    /// `madvise(MADV_PAGEOUT)`: reclaims the range's pages now, as Linux's
    /// `madvise_pageout` does (`reclaim_pages`): an anonymous page only this process
    /// maps goes to swap (with two-list reclaim it stays in the swap cache until its
    /// write completes, so a touch before reclaim frees it is a minor fault), a file
    /// page is written back if dirty and dropped; pages mapped more than once, and
    /// anonymous ones without swap space, stay. Nothing is counted as reclaim's
    /// (`pgscan`, `pgsteal`); `pswpout` counts the writes. The range must be mapped
    /// throughout; hugetlb ranges are `EINVAL`.
    pub fn madvise_pageout(&mut self, pid: Pid, addr: VirtAddr, len: u64) -> Result<(), Errno> {
        self.gathered(|k| {
            let end = k.lru_range(pid, addr, len)?;
            // Huge pages are paged out as their base pages: split first (those across
            // the range's ends, then those inside it).
            k.split_huge_edges(pid, addr, end)?;
            let paging = k.machine.spec.paging;
            let pt = k.mm(pid)?.pt;
            let huge: Vec<Pfn> = pt
                .entries(&paging, &k.machine.ram, addr, end)
                .into_iter()
                .filter_map(|(_, slot)| match slot {
                    Slot::Leaf(m) if m.level > 1 => Some(m.pfn),
                    _ => None,
                })
                .collect();
            for head in huge {
                k.split_huge_for_reclaim(head);
            }
            let mut victims: Vec<Pfn> = Vec::new();
            for (_, slot) in pt.entries(&paging, &k.machine.ram, addr, end) {
                // Only a folio this mapping alone maps (Linux: its mapcount is its
                // number of pages).
                if let Slot::Leaf(m) = slot {
                    if k.mapped_here_only(m.pfn) {
                        victims.push(m.pfn);
                    }
                }
            }
            // One request for the range's swap writes, as reclaim's plug makes one.
            let own = k.plug_writes();
            for pfn in victims {
                // A page still being written from an earlier pageout stays, as
                // Linux keeps a folio under writeback.
                if !k.writing_at(pfn, k.io_now()) {
                    k.page_out(pfn, None);
                }
            }
            k.end_writes(own);
            Ok(())
        })
    }

    /// `madvise(MADV_COLD)`: the range's pages that only this mapping maps, anonymous
    /// or file, look unused to reclaim, as Linux's `madvise_cold` makes them: their
    /// Accessed bits are cleared (and their translations flushed), they lose
    /// `PG_referenced`, and under two-list reclaim an active one moves to the head
    /// of its inactive list, marked workingset, counted in `pgdeactivate`. Nothing is
    /// freed. A huge page the range covers whole is deactivated whole; one it covers
    /// in part is split first. The range must be mapped throughout; locked and
    /// hugetlb ranges are `EINVAL`.
    pub fn madvise_cold(&mut self, pid: Pid, addr: VirtAddr, len: u64) -> Result<(), Errno> {
        // Other CPUs hear of the call's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            let end = k.lru_range(pid, addr, len)?;
            k.split_huge_edges(pid, addr, end)?;
            let paging = k.machine.spec.paging;
            let pt = k.mm(pid)?.pt;
            let mut pending: Option<TlbFlush> = None;
            for (va, slot) in pt.entries(&paging, &k.machine.ram, addr, end) {
                let Slot::Leaf(m) = slot else { continue };
                if !k.mapped_here_only(m.pfn) {
                    continue;
                }
                if m.flags.contains(Flags::ACCESSED) {
                    let f = pt
                        .set_flags(&paging, &mut k.machine.ram, va, m.flags & !Flags::ACCESSED)
                        .map_err(|_| Errno::EFAULT)?;
                    f.add_to(&mut pending);
                }
                k.lru_deactivate(m.pfn);
            }
            if let Some(f) = pending {
                k.flush_for(pid, f);
            }
            Ok(())
        })
    }

    /// `madvise(MADV_NORMAL / MADV_RANDOM / MADV_SEQUENTIAL)`: how the range will be
    /// read, which decides how its file faults read ahead (see
    /// [`AccessAdvice`](super::readahead::AccessAdvice)). The range must be mapped
    /// throughout; its VMAs are split where it ends inside one.
    pub fn madvise_access(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
        advice: super::readahead::AccessAdvice,
    ) -> Result<(), Errno> {
        self.advise_vmas(pid, addr, len, |v| v.access = advice)?;
        if advice != super::readahead::AccessAdvice::Normal {
            self.reclaim.advised = true;
        }
        Ok(())
    }

    /// `madvise(MADV_DONTFORK / MADV_DOFORK / MADV_WIPEONFORK / MADV_KEEPONFORK)`:
    /// what a child made by `fork` gets of the range ([`ForkAdvice`]). `EINVAL` for a
    /// device mapping (Linux's `VM_IO`) under the first two, and under
    /// `MADV_WIPEONFORK` for any part that is not private anonymous memory.
    ///
    /// [`ForkAdvice`]: super::ForkAdvice
    pub fn madvise_fork(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
        advice: u32,
    ) -> Result<(), Errno> {
        let end = self.check_range(addr, self.round_len(len)?)?;
        let vmas = self.mapped_throughout(pid, addr, end)?;
        let refused = |v: &super::Vma| match advice {
            MADV_DONTFORK | MADV_DOFORK => matches!(v.backing, Backing::Device(_)),
            MADV_WIPEONFORK => v.shared || !matches!(v.backing, Backing::Anon),
            _ => false,
        };
        if vmas.iter().any(refused) {
            return Err(Errno::EINVAL);
        }
        self.advise_vmas(pid, addr, len, |v| match advice {
            MADV_DONTFORK => v.fork.dont_copy = true,
            MADV_DOFORK => v.fork.dont_copy = false,
            MADV_WIPEONFORK => v.fork.wipe = true,
            _ => v.fork.wipe = false,
        })
    }

    /// Advice kept in the VMAs of `len` bytes from `addr` (`set` on each): the range
    /// must be mapped throughout, its VMAs are split where it ends inside one, and a
    /// huge page straddling an end is split first.
    pub(super) fn advise_vmas(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
        set: impl Fn(&mut super::vma::Vma),
    ) -> Result<(), Errno> {
        let len = self.round_len(len)?;
        let end = self.check_range(addr, len)?;
        self.mapped_throughout(pid, addr, end)?;
        self.split_huge_edges(pid, addr, end)?;
        self.mm_mut(pid)?.vmas.update_range(addr, end, set);
        Ok(())
    }

    /// `madvise(MADV_FREE)`: the range's private anonymous pages that only this
    /// process maps stay mapped, but clean, old and marked (Linux 6.18's
    /// `madvise_free_pte_range`), and go to the inactive file list (two-list reclaim),
    /// to be found before anonymous memory: reclaim discards one that was not written
    /// since (the next touch finds zeros) instead of swapping it, and a write keeps
    /// it, anonymous again. A page in the swap cache gives its slot up first; one whose
    /// slot another entry names, or whose swap write is in flight, is left alone.
    /// Swapped-out pages are dropped at once. Shared and file pages are left alone, as
    /// Linux leaves them. The range must be mapped throughout.
    pub fn madvise_free(&mut self, pid: Pid, addr: VirtAddr, len: u64) -> Result<(), Errno> {
        // Other CPUs hear of the call's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            // Linux: MADV_FREE is for private anonymous memory only.
            let end = k.lru_range(pid, addr, len)?;
            // A huge page the range covers whole is let go whole (Linux's
            // `madvise_free_huge_pmd`); one it covers in part is split first.
            k.split_huge_edges(pid, addr, end)?;
            let paging = k.machine.spec.paging;
            let pt = k.mm(pid)?.pt;
            let ps = k.page_size();
            let mut pending: Option<TlbFlush> = None;
            for (va, slot) in pt.entries(&paging, &k.machine.ram, addr, end) {
                let vma = *k.mm(pid)?.vmas.find(va).ok_or(Errno::ENOMEM)?;
                if vma.shared || vma.backing != Backing::Anon {
                    continue;
                }
                match slot {
                    Slot::Leaf(m)
                        if k.frames.kind(m.pfn) == FrameKind::Anon
                            && k.free_swap_for_lazyfree(m.pfn) =>
                    {
                        // Clean and old: reclaim reads neither a use nor a write that
                        // came before the advice (`clear_young_dirty_ptes`).
                        let flags = m.flags & !(Flags::DIRTY | Flags::ACCESSED);
                        let f = pt
                            .set_flags(&paging, &mut k.machine.ram, va, flags)
                            .map_err(|_| Errno::EFAULT)?;
                        f.add_to(&mut pending);
                        k.mark_lazyfree(m.pfn);
                    }
                    s @ Slot::Soft { .. } if matches!(s.soft(), Some(SoftPte::Swap(_))) => {
                        k.zap(pid, va, VirtAddr(va.0 + ps))?;
                    }
                    _ => {}
                }
            }
            if let Some(f) = pending {
                k.flush_for(pid, f);
            }
            Ok(())
        })
    }

    /// Whether anonymous page `pfn`, which one entry maps, can be let go lazily, as
    /// Linux's `madvise_free_pte_range` decides: no other reference holds it, or only
    /// the swap cache does (a page a read fault brought back kept its slot), and then
    /// the slot is freed here (`folio_free_swap`). A page whose slot other entries
    /// still name, or whose swap write is in flight, is not.
    fn free_swap_for_lazyfree(&mut self, pfn: Pfn) -> bool {
        let refs = self.frames.refs(pfn);
        let Some((slot, only_cache)) = self.swap.dev.as_ref().and_then(|s| {
            let slot = s.cached_slot(pfn)?;
            Some((slot, s.owns(slot) && s.count(slot) == 1))
        }) else {
            return refs == 1;
        };
        if refs != 2 || !only_cache || self.writing_at(pfn, self.io_now()) {
            return false;
        }
        // The cache's reference goes with the slot; the mapping's stays.
        self.drop_swap_cache(slot);
        true
    }

    /// Reclaim found a frame `madvise(MADV_FREE)` let go: if no mapping wrote it since,
    /// it is dropped from every mapping (they will find zeros) rather than swapped.
    /// False if it was written (it is swapped as any other page).
    pub(super) fn discard_lazyfree(&mut self, pfn: Pfn) -> bool {
        let maps: Vec<_> = self.rmap.of(pfn).collect();
        if maps.is_empty() || self.mapped_dirty(pfn) {
            return false;
        }
        let ps = self.page_size();
        for (pid, va, _) in maps {
            if self.zap(pid, va, VirtAddr(va.0 + ps)).is_err() {
                return false;
            }
        }
        self.log.counters.lazyfree_discards += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn madvise_cold_deactivates_the_range_and_clears_its_accessed_bits() {
        use crate::os::reclaim::ReclaimPolicy;
        use crate::policy::two_list::{ACTIVE, INACTIVE};
        let mut k = boot_small(64 << 20, 0, ReclaimPolicy::TwoList);
        let pid = spawn(&mut k);
        let a = k.mmap(pid, MmapArgs::anon(8 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, 8, |i| i + 1);
        let page = |i: u64| VirtAddr(a.0 + i * 4096);
        let frames: Vec<u32> = (0..8)
            .map(|i| leaf(&k, pid, page(i)).pfn.0 as u32)
            .collect();
        for &f in &frames {
            k.activate(Pfn(f as u64));
        }
        let deact = k.counters().deactivations;
        assert_eq!(k.madvise(pid, page(2), 4 * 4096, MADV_COLD), Some(Ok(())));
        assert_eq!(k.counters().deactivations - deact, 4);
        for (i, &f) in frames.iter().enumerate() {
            let cold = (2..6).contains(&i);
            let list = k.reclaim.lists.list_of(f);
            assert_eq!(list, Some(if cold { INACTIVE } else { ACTIVE }), "page {i}");
            let young = leaf(&k, pid, page(i as u64))
                .flags
                .contains(Flags::ACCESSED);
            assert_eq!(young, !cold, "page {i}");
        }
        // Nothing was freed: the bytes are there.
        assert_eq!(k.read_u64(pid, page(3)).unwrap(), 4);
        k.mlock(pid, a, 4096, Mlock::Locked).unwrap();
        assert_eq!(k.madvise(pid, a, 4096, MADV_COLD), Some(Err(Errno::EINVAL)));
    }

    #[test]
    fn dontneed_locked_drops_locked_pages_where_dontneed_may_not() {
        let mut k = boot("x86-64");
        let pid = spawn(&mut k);
        let a = k.mmap(pid, MmapArgs::anon(4 * 4096, Prot::RW)).unwrap();
        k.mlock(pid, a, 4 * 4096, Mlock::Locked).unwrap();
        write_pages(&mut k, pid, a, 4, |i| i + 1);
        assert_eq!(
            k.madvise(pid, a, 4096, MADV_DONTNEED),
            Some(Err(Errno::EINVAL))
        );
        let munlocked = k.counters().mlock.munlocked;
        let rss = k.mm(pid).unwrap().rss.anon;
        assert_eq!(
            k.madvise(pid, a, 2 * 4096, MADV_DONTNEED_LOCKED),
            Some(Ok(()))
        );
        assert_eq!(k.mm(pid).unwrap().rss.anon, rss - 2);
        assert_eq!(k.counters().mlock.munlocked - munlocked, 2);
        assert_eq!(k.read_u64(pid, a).unwrap(), 0, "zeros again");
        assert_eq!(k.read_u64(pid, VirtAddr(a.0 + 2 * 4096)).unwrap(), 3);
        assert!(k.mm(pid).unwrap().vmas.find(a).unwrap().locked.is_locked());
    }

    #[test]
    fn madvise_pageout_swaps_private_pages_and_a_touch_finds_them_in_the_swap_cache() {
        use crate::os::FaultKind;
        let mut k = boot_small(8 << 20, 16 << 20, ReclaimPolicy::TwoList);
        let pid = spawn(&mut k);
        let n = 64u64;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i + 1);
        // Half of them shared with a child: those stay.
        let child = k.fork(pid).unwrap();
        k.madvise_dontneed(child, VirtAddr(a.0 + n / 2 * 4096), n / 2 * 4096)
            .unwrap();
        let outs = k.log.counters.swap_outs;
        let scanned = k.log.counters.pages_scanned;
        k.madvise_pageout(pid, a, n * 4096).unwrap();
        assert_eq!(k.log.counters.swap_outs - outs, n / 2, "the private half");
        assert_eq!(k.log.counters.pages_scanned, scanned, "not reclaim's scan");
        // Their writes are in flight or done; either way a touch is a minor fault.
        for i in 0..n {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i + 1);
        }
        assert_eq!(faults(&k, FaultKind::SwapCache), n / 2);
        assert_eq!(faults(&k, FaultKind::SwapIn), 0);
        assert_eq!(
            k.madvise_pageout(pid, VirtAddr(a.0 + n * 4096), 4096),
            Err(Errno::ENOMEM)
        );
    }

    #[test]
    fn madvise_pageout_pages_out_every_base_page_of_the_huge_pages_in_range() {
        use crate::os::thp::ThpMode;
        let mut k = boot_with("x86-64", |c| {
            c.thp = ThpMode::Always;
            c.swap_bytes = 64 << 20;
            c.reclaim = ReclaimPolicy::TwoList;
        });
        let pid = spawn(&mut k);
        let huge = 2u64 << 20;
        let a = k.mmap(pid, MmapArgs::anon(2 * huge, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, 1024, |i| i + 1);
        assert!(k.log.counters.thp.fault_alloc >= 2, "two huge pages");
        let outs = k.log.counters.swap_outs;
        // From the middle of the first to the end of the second.
        k.madvise_pageout(pid, VirtAddr(a.0 + huge / 2), huge / 2 * 3)
            .unwrap();
        assert_eq!(k.log.counters.swap_outs - outs, 256 + 512);
        for i in 0..1024 {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i + 1);
        }
    }

    #[test]
    fn madvise_dontneed_drops_pages() {
        let (mut k, pid) = booted();
        let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
        k.write_u64(pid, a, 5).unwrap();
        k.madvise_dontneed(pid, a, 4096).unwrap();
        assert_eq!(k.process(pid).unwrap().rss().anon, 0);
        assert_eq!(k.read_u64(pid, a).unwrap(), 0);
        assert_eq!(
            k.madvise_dontneed(pid, VirtAddr(0x10000), 4096),
            Err(Errno::ENOMEM)
        );
    }

    #[test]
    fn madvise_free_keeps_pages_until_reclaim_wants_them_and_a_write_keeps_them_for_good() {
        let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Fifo);
        let pid = spawn(&mut k);
        let n = 128u64;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i + 1);
        k.madvise_free(pid, a, n * 4096).unwrap();
        let faults = |k: &Kernel| k.process(pid).unwrap().stats.faults.iter().sum::<u64>();
        let before = faults(&k);
        // Without pressure nothing goes: read back, no faults.
        assert_eq!(k.read_u64(pid, VirtAddr(a.0 + 4096)).unwrap(), 2);
        assert_eq!(faults(&k), before);
        // Write the first half again; then pressure from another process.
        for i in 0..n / 2 {
            k.write_u64(pid, VirtAddr(a.0 + i * 4096), 100 + i).unwrap();
        }
        let outs = k.log.counters.swap_outs;
        let hog = spawn(&mut k);
        let h = k.mmap(hog, MmapArgs::anon(600 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, hog, h, 600, |_| 7);
        assert!(
            k.log.counters.lazyfree_discards > 0,
            "clean pages were dropped"
        );
        // The written half kept its bytes (swapped if need be); dropped pages read zeros.
        for i in 0..n {
            let got = k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap();
            if i < n / 2 {
                assert_eq!(got, 100 + i, "page {i}");
            } else {
                assert!(got == i + 1 || got == 0, "page {i}: {got}");
            }
        }
        assert!(
            k.log.counters.swap_outs - outs <= 600 + n / 2,
            "dropped pages were not written"
        );
    }

    #[test]
    fn madvise_free_moves_pages_to_the_inactive_file_list_where_reclaim_drops_them_first() {
        use crate::os::reclaim::{Scope, FILE_LISTS};
        use crate::policy::two_list::INACTIVE;
        let mut k = boot_small(8 << 20, 16 << 20, ReclaimPolicy::TwoList);
        let pid = spawn(&mut k);
        let n = 128u64;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        let b = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i + 1);
        write_pages(&mut k, pid, b, n, |i| i + 1);
        // `b`, the younger, is let go; its last quarter is written again after.
        k.madvise_free(pid, b, n * 4096).unwrap();
        assert_eq!(k.log.counters.lazyfree, n, "pglazyfree");
        let list =
            |k: &Kernel, va: VirtAddr| k.reclaim.lists.list_of(leaf(k, pid, va).pfn.0 as u32);
        for i in 0..n {
            let va = VirtAddr(b.0 + i * 4096);
            assert_eq!(list(&k, va), Some(FILE_LISTS + INACTIVE), "page {i}");
        }
        for i in n / 4 * 3..n {
            k.write_u64(pid, VirtAddr(b.0 + i * 4096), 500 + i).unwrap();
        }
        let outs = k.log.counters.swap_outs;
        k.reclaim(n as usize, Scope::Global);
        // The clean pages of `b` went, unwritten; `a`'s stayed.
        assert_eq!(k.log.counters.lazyfree_discards, n / 4 * 3);
        assert_eq!(k.log.counters.swap_outs, outs, "nothing swapped");
        for i in 0..n {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i + 1);
        }
        // The pages written again were used since: kept a round (Linux's
        // `FOLIOREF_KEEP`), with their bytes.
        for i in n / 4 * 3..n {
            let va = VirtAddr(b.0 + i * 4096);
            assert_eq!(list(&k, va), Some(FILE_LISTS + INACTIVE), "page {i}");
            assert_eq!(k.read_u64(pid, va).unwrap(), 500 + i);
        }
        assert_eq!(k.read_u64(pid, b).unwrap(), 0, "a dropped page reads zeros");
    }

    #[test]
    fn madvise_free_of_a_page_in_the_swap_cache_frees_its_slot() {
        let mut k = boot_small(8 << 20, 16 << 20, ReclaimPolicy::TwoList);
        let pid = spawn(&mut k);
        let n = 32u64;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i + 1);
        k.madvise_pageout(pid, a, n * 4096).unwrap();
        // Their writes done.
        k.advance_clock_for_test(1_000_000_000);
        k.complete_writes();
        // Read back: each keeps its slot, owned by the swap cache.
        for i in 0..n {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i + 1);
        }
        let used = |k: &Kernel| k.swap.dev.as_ref().unwrap().stats.used;
        assert_eq!(used(&k), n);
        k.madvise_free(pid, a, n * 4096).unwrap();
        assert_eq!(used(&k), 0, "the slots were freed");
        assert_eq!(k.log.counters.lazyfree, n);
    }
}
