//! `munmap`: an area's pages removed, its frames and swap slots released, the TLBs
//! told, and the page tables that map nothing more freed.

use super::frames::FrameKind;
use super::limits::GroupTables;
use super::vma::{Backing, Vma};
use super::{Errno, Kernel, Pid};
use crate::addr::VirtAddr;
use crate::hw::{Flags, PageTable, TlbFlush};

impl Kernel {
    /// `munmap`: removes every mapping in the range (holes are fine).
    pub fn munmap(&mut self, pid: Pid, addr: VirtAddr, len: u64) -> Result<(), Errno> {
        // Other CPUs hear of the call's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            let len = k.round_len(len)?;
            let end = k.check_range(addr, len)?;
            k.mm(pid)?;
            k.hugetlb_aligned(pid, addr, end)?;
            k.hugetlb_unreserve(pid, addr, end);
            k.zap(pid, addr, end)?;
            let gone = k.mm_mut(pid)?.vmas.remove_range(addr, end);
            let mut objs = Vec::new();
            for v in &gone {
                if v.accounted {
                    k.uncommit(v.len());
                    let mm = k.mm_mut(pid)?;
                    mm.committed = mm.committed.saturating_sub(v.len());
                }
                if let Backing::Shm { obj, .. } = v.backing {
                    objs.push(obj);
                }
            }
            k.free_tables_around(pid, addr, end);
            for o in objs {
                k.shm_release_if_unused(o);
            }
            Ok(())
        })
    }

    /// The pages `len` bytes of `pid` from `addr` touch, as `mlock` and populating
    /// take a range (the start rounded down, the end up): their start, their length
    /// and the VMAs covering them; `ENOMEM` if there is a hole.
    pub(super) fn pages_mapped_throughout(
        &self,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
    ) -> Result<(VirtAddr, u64, Vec<Vma>), Errno> {
        let start = addr.align_down(self.page_size());
        let len = self.round_len(len.saturating_add(addr.0 - start.0))?;
        let end = self.check_range(start, len)?;
        Ok((start, len, self.mapped_throughout(pid, start, end)?))
    }

    /// The VMAs covering `[addr, end)`, or ENOMEM if there is a hole.
    pub(super) fn mapped_throughout(
        &self,
        pid: Pid,
        addr: VirtAddr,
        end: VirtAddr,
    ) -> Result<Vec<Vma>, Errno> {
        let parts = self.mm(pid)?.vmas.overlapping(addr, end);
        let mut at = addr;
        for v in &parts {
            if v.start > at {
                return Err(Errno::ENOMEM);
            }
            at = v.end;
        }
        if at < end {
            return Err(Errno::ENOMEM);
        }
        Ok(parts)
    }

    /// Removes every page of `pid` in `[start, end)`: unmaps them, drops the frames'
    /// references, and invalidates what the TLBs and walk caches hold for the range.
    pub(super) fn zap(&mut self, pid: Pid, start: VirtAddr, end: VirtAddr) -> Result<(), Errno> {
        self.split_huge_edges(pid, start, end)?;
        // Pages a locked VMA stops mapping, if still in use, are unlocked.
        let locked: Vec<(VirtAddr, VirtAddr)> = (self.mm(pid)?.vmas.overlapping(start, end))
            .iter()
            .filter(|v| v.locked.is_locked())
            .map(|v| (v.start, v.end))
            .collect();
        let in_locked = |va: VirtAddr| locked.iter().any(|&(s, e)| s <= va && va < e);
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid)?.pt;
        let slots = pt.entries(&paging, &self.machine.ram, start, end);
        let mut pending: Option<TlbFlush> = None;
        for (va, slot) in slots {
            match slot {
                crate::hw::Slot::Leaf(m) if m.level > 1 && self.is_hugetlb_page(m.pfn) => {
                    let flush = self.zap_hugetlb(pid, va, m.pfn)?;
                    flush.add_to(&mut pending);
                }
                crate::hw::Slot::Leaf(m) if m.level > 1 => {
                    if in_locked(va) {
                        self.munlock_frame(m.pfn);
                    }
                    let flush = self.zap_huge(pid, va, m.pfn)?;
                    flush.add_to(&mut pending);
                }
                crate::hw::Slot::Leaf(m) => {
                    let (last, flush) = pt
                        .unmap(&paging, &mut self.machine.ram, va)
                        .map_err(|_| Errno::EFAULT)?;
                    flush.add_to(&mut pending);
                    if self.frames.kind(m.pfn) == FrameKind::File
                        && last.flags.contains(Flags::DIRTY)
                        && last.flags.contains(Flags::WRITE)
                    {
                        self.cache.dirty.insert(m.pfn.0);
                    }
                    self.uncount(pid, m.pfn);
                    self.rmap.remove(m.pfn, pid, va);
                    // Unlocked as the locked mapping goes (Linux's munlock_vma_folio
                    // at rmap removal), then let go.
                    if in_locked(va) {
                        self.munlock_frame(m.pfn);
                    }
                    self.put_frame(m.pfn);
                }
                s @ crate::hw::Slot::Soft { pte_addr, .. } => {
                    // The walk just read the entry: clearing it cannot fail, and it was
                    // not present, so no flush is owed.
                    let cleared =
                        PageTable::clear_soft_at(&paging, &mut self.machine.ram, pte_addr);
                    debug_assert!(cleared.is_ok(), "entry at {pte_addr} outside RAM");
                    let soft = s.soft();
                    if let Some(pfn) = soft.and_then(crate::hw::SoftPte::prot_none_frame) {
                        self.uncount(pid, pfn);
                        self.rmap.remove(pfn, pid, va);
                        if in_locked(va) {
                            self.munlock_frame(pfn);
                        }
                        self.put_frame(pfn);
                    }
                    if let Some(slot) = soft.and_then(crate::hw::SoftPte::swap_slot) {
                        self.release_swap_slot(pid, slot);
                    }
                }
            }
        }
        if let Some(f) = pending {
            self.flush_for(pid, f);
        }
        Ok(())
    }

    /// Frees the page-table pages that map nothing between the VMAs around
    /// `[start, end)` (Linux's `free_pgtables`).
    pub(super) fn free_tables_around(&mut self, pid: Pid, start: VirtAddr, end: VirtAddr) {
        let Ok(mm) = self.mm(pid) else { return };
        let floor = mm.vmas.before(start).map_or(VirtAddr(0), |v| v.end);
        let ceiling = mm
            .vmas
            .find_from(end)
            .map_or(self.space.task_size, |v| v.start);
        self.free_tables_in(pid, floor, ceiling);
    }

    /// Frees the page-table pages that map nothing and lie wholly inside
    /// `[floor, ceiling)`, and flushes the walk caches that may point at them.
    pub(super) fn free_tables_in(&mut self, pid: Pid, floor: VirtAddr, ceiling: VirtAddr) {
        let Ok(pt) = self.mm(pid).map(|m| m.pt) else {
            return;
        };
        let paging = self.machine.spec.paging;
        let n = pt.prune(
            &paging,
            &mut self.machine.ram,
            &mut GroupTables::of(
                &mut self.frames,
                &mut self.groups,
                pt.root().pfn(paging.page_shift),
            ),
            floor,
            ceiling,
        );
        if n > 0 {
            self.log.counters.tables_freed += n;
            // Walk caches may still point at the freed tables.
            let here = self.tasks.current == Some(pid) || self.machine.spec.asid_tagged;
            self.flush_freed_tables(pid, pt.asid(), here);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn munmap_splits_and_frees_page_tables() {
        let (mut k, pid) = booted();
        let tables0 = k.table_pages(pid);
        let far = VirtAddr(0x5000_0000_0000);
        let a = k
            .mmap(
                pid,
                MmapArgs {
                    addr: Some(far),
                    fixed: true,
                    ..MmapArgs::anon(3 * 4096, Prot::RW)
                },
            )
            .unwrap();
        assert_eq!(a, far);
        write_pages(&mut k, pid, a, 3, |i| i);
        assert_eq!(k.table_pages(pid), tables0 + 3, "PDPT, PD and PT");
        k.munmap(pid, VirtAddr(a.0 + 4096), 4096).unwrap();
        assert_eq!(
            k.mm(pid)
                .unwrap()
                .vmas
                .overlapping(a, VirtAddr(a.0 + 3 * 4096))
                .len(),
            2
        );
        assert_eq!(k.read_u64(pid, VirtAddr(a.0 + 2 * 4096)).unwrap(), 2);
        k.munmap(pid, a, 3 * 4096).unwrap();
        assert_eq!(
            k.table_pages(pid),
            tables0,
            "the tables went with the last page"
        );
        assert!(k.access(pid, a, AccessKind::Read).is_err());
    }
}
