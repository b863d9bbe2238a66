//! `mremap`: an area resized in place, or moved with its pages.

use super::frames::FrameKind;
use super::limits::GroupTables;
use super::vma::{Backing, Vma};
use super::{Errno, Kernel, Pid};
use crate::addr::VirtAddr;
use crate::hw::{Flags, PageTable, Slot, SoftPte, TlbFlush};

impl Kernel {
    /// `mremap` as a trace records it: the `old_len` bytes at `old` become the
    /// `new_len` bytes at `new` (the address the real call returned). Lengths are
    /// rounded up to pages; the old range must lie inside one VMA.
    ///
    /// - `new == old`, shrinking: the tail is unmapped.
    /// - `new == old`, growing: the VMA extends with the same backing, protection and
    ///   flags (a file's offset continues); the old range must end where the VMA does
    ///   and the room above it must be free.
    /// - `new != old`: the area moves. Whatever was at `new` is unmapped first (as
    ///   `MREMAP_FIXED` does), a VMA with the old one's backing (from the old range's
    ///   offset), protection and flags is made there, and the pages move with it:
    ///   present pages, swapped-out pages and `PROT_NONE` pages keep their frames or
    ///   slots, with their Accessed and Dirty bits, so a moved page does not fault
    ///   again. Pages past a smaller new length are dropped.
    ///
    /// Errors: `EINVAL` (a zero length, a misaligned address, a range outside user
    /// space, a new range below `mmap_min_addr` or overlapping the old one), `EFAULT`
    /// (the old range is not inside one VMA; a device mapping that would grow),
    /// `ENOMEM` (no room to grow in place, the commit limit), `ESRCH`.
    pub fn mremap(
        &mut self,
        pid: Pid,
        old: VirtAddr,
        old_len: u64,
        new: VirtAddr,
        new_len: u64,
    ) -> Result<(), Errno> {
        // Other CPUs hear of the call's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            let old_len = k.round_len(old_len)?;
            let new_len = k.round_len(new_len)?;
            let old_end = k.check_range(old, old_len)?;
            let new_end = k.check_range(new, new_len)?;
            let vma = k.mm(pid)?.vmas.find(old).copied().ok_or(Errno::EFAULT)?;
            if old_end > vma.end {
                return Err(Errno::EFAULT);
            }
            if matches!(vma.backing, Backing::Device(_)) && new_len > old_len {
                return Err(Errno::EFAULT);
            }
            if matches!(vma.backing, Backing::HugeTlb { .. }) {
                return Err(Errno::EINVAL);
            }
            if new == old {
                match new_len.cmp(&old_len) {
                    std::cmp::Ordering::Less => return k.munmap(pid, new_end, old_len - new_len),
                    std::cmp::Ordering::Equal => return Ok(()),
                    std::cmp::Ordering::Greater => k.grow_in_place(pid, &vma, old_end, new_end)?,
                }
            } else {
                if new < k.space.mmap_min || (new < old_end && old < new_end) {
                    return Err(Errno::EINVAL);
                }
                k.move_area(pid, &vma, (old, old_len), (new, new_len))?;
            }
            if new_len > old_len {
                let grown = VirtAddr(new.0 + old_len);
                k.populate_new_locked(pid, grown, new_len - old_len, vma.locked);
            }
            Ok(())
        })
    }

    /// Extends `vma`, whose part in the call ends at `old_end`, up to `new_end`.
    fn grow_in_place(
        &mut self,
        pid: Pid,
        vma: &Vma,
        old_end: VirtAddr,
        new_end: VirtAddr,
    ) -> Result<(), Errno> {
        if old_end != vma.end || self.mm(pid)?.vmas.overlaps(old_end, new_end) {
            return Err(Errno::ENOMEM);
        }
        let grow = new_end.0 - old_end.0;
        if vma.accounted {
            self.commit(grow)?;
        }
        let mm = self.mm_mut(pid)?;
        mm.vmas.insert(Vma {
            start: old_end,
            end: new_end,
            backing: vma.backing.advanced(old_end.0 - vma.start.0),
            ..*vma
        });
        if vma.accounted {
            mm.committed += grow;
        }
        Ok(())
    }

    /// Moves the part `(old, old_len)` of `vma` to `(new, new_len)`, which do not
    /// overlap.
    fn move_area(
        &mut self,
        pid: Pid,
        vma: &Vma,
        (old, old_len): (VirtAddr, u64),
        (new, new_len): (VirtAddr, u64),
    ) -> Result<(), Errno> {
        let extra = new_len.saturating_sub(old_len);
        if vma.accounted && extra > 0 {
            self.commit(extra)?;
        }
        if let Err(e) = self.munmap(pid, new, new_len) {
            if vma.accounted {
                self.uncommit(extra);
            }
            return Err(e);
        }
        let old_end = VirtAddr(old.0 + old_len);
        let kept = old_len.min(new_len);
        // Huge mappings move whole where they land on a huge-page boundary (Linux's
        // `move_huge_pmd`); the others split first and move page by page.
        self.split_huge_unmovable(pid, old, VirtAddr(old.0 + kept), new)?;
        self.split_huge_range(pid, VirtAddr(old.0 + kept), old_end)?;
        self.move_pages(pid, old, new, kept)?;
        self.zap(pid, VirtAddr(old.0 + kept), old_end)?;
        let mm = self.mm_mut(pid)?;
        mm.vmas.remove_range(old, old_end);
        mm.vmas.insert(Vma {
            start: new,
            end: VirtAddr(new.0 + new_len),
            backing: vma.backing.advanced(old.0 - vma.start.0),
            ..*vma
        });
        if vma.accounted {
            let dropped = old_len.saturating_sub(new_len);
            mm.committed = (mm.committed + extra).saturating_sub(dropped);
            self.uncommit(dropped);
        }
        self.free_tables_around(pid, old, old_end);
        Ok(())
    }

    /// Moves the entries of `pid`'s pages in `[from, from + len)` to the same places
    /// from `to` (whose entries are empty): frames, swap slots and `PROT_NONE` frames
    /// keep their references, the reverse map and the resident counts follow, and the
    /// TLBs forget the old addresses. A page whose new entry cannot be written (no
    /// frame for a page table) is dropped, as `munmap` would drop it.
    fn move_pages(
        &mut self,
        pid: Pid,
        from: VirtAddr,
        to: VirtAddr,
        len: u64,
    ) -> Result<(), Errno> {
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid)?.pt;
        let slots = pt.entries(&paging, &self.machine.ram, from, VirtAddr(from.0 + len));
        let mut pending: Option<TlbFlush> = None;
        for (va, slot) in slots {
            let dst = VirtAddr(to.0 + (va.0 - from.0));
            match slot {
                Slot::Leaf(m) if m.level > 1 => {
                    let moved = self.move_huge(pid, va, dst, m);
                    let Ok(flush) = moved else {
                        if let Some(f) = pending.take() {
                            self.flush_for(pid, f);
                        }
                        return Err(Errno::EFAULT);
                    };
                    flush.add_to(&mut pending);
                }
                Slot::Leaf(m) => {
                    let unmapped = pt.unmap(&paging, &mut self.machine.ram, va);
                    let Ok((last, flush)) = unmapped else {
                        if let Some(f) = pending.take() {
                            self.flush_for(pid, f);
                        }
                        return Err(Errno::EFAULT);
                    };
                    flush.add_to(&mut pending);
                    self.uncount(pid, m.pfn);
                    self.rmap.remove(m.pfn, pid, va);
                    if self.install(pid, dst, m.pfn, last.flags).is_err() {
                        if self.frames.kind(m.pfn) == FrameKind::File
                            && last.flags.contains(Flags::DIRTY)
                            && last.flags.contains(Flags::WRITE)
                        {
                            self.cache.dirty.insert(m.pfn.0);
                        }
                        self.put_frame(m.pfn);
                    }
                }
                s @ Slot::Soft { pte_addr, .. } => {
                    // The walk just read the entry: clearing it cannot fail, and it was
                    // not present, so no flush is owed.
                    let cleared =
                        PageTable::clear_soft_at(&paging, &mut self.machine.ram, pte_addr);
                    debug_assert!(cleared.is_ok(), "entry at {pte_addr} outside RAM");
                    let Some(soft) = s.soft() else { continue };
                    let frame = soft.prot_none_frame();
                    if let Some(pfn) = frame {
                        self.uncount(pid, pfn);
                        self.rmap.remove(pfn, pid, va);
                    }
                    let written = pt.set_soft(
                        &paging,
                        &mut self.machine.ram,
                        &mut GroupTables::of(
                            &mut self.frames,
                            &mut self.groups,
                            pt.root().pfn(paging.page_shift),
                        ),
                        dst,
                        soft,
                        Flags::RWX | Flags::USER,
                    );
                    match (written, frame) {
                        (Ok(pte), Some(pfn)) => {
                            self.count_resident(pid, pfn);
                            self.rmap.add(pfn, pid, dst, pte);
                        }
                        (Ok(_), None) => {}
                        (Err(_), _) => self.drop_soft(pid, soft),
                    }
                }
            }
        }
        if let Some(f) = pending {
            self.flush_for(pid, f);
        }
        Ok(())
    }

    /// Gives back what a software entry of `pid` that is gone referenced: a `PROT_NONE`
    /// page's frame (already uncounted), or a swap slot.
    fn drop_soft(&mut self, pid: Pid, soft: SoftPte) {
        if let Some(pfn) = soft.prot_none_frame() {
            self.put_frame(pfn);
        }
        if let Some(slot) = soft.swap_slot() {
            self.release_swap_slot(pid, slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    const PS: u64 = 4096;

    fn fixed(addr: u64, len: u64, prot: Prot) -> MmapArgs {
        MmapArgs {
            addr: Some(VirtAddr(addr)),
            fixed: true,
            ..MmapArgs::anon(len, prot)
        }
    }

    fn spans(k: &Kernel, pid: Pid) -> Vec<(u64, u64)> {
        k.mm(pid)
            .unwrap()
            .vmas
            .iter()
            .filter(|v| v.role == VmaRole::Mmap)
            .map(|v| (v.start.0, v.end.0))
            .collect()
    }

    #[test]
    fn shrinking_in_place_unmaps_the_tail() {
        let (mut k, pid) = booted();
        let a = VirtAddr(0x1000_0000);
        k.mmap(pid, fixed(a.0, 4 * PS, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, 4, |i| i + 1);
        let committed = k.mm(pid).unwrap().committed;
        k.mremap(pid, a, 4 * PS, a, PS + 1).unwrap();
        assert_eq!(spans(&k, pid), [(a.0, a.0 + 2 * PS)]);
        assert_eq!(k.read_u64(pid, VirtAddr(a.0 + PS)).unwrap(), 2);
        assert_eq!(k.mm(pid).unwrap().committed, committed - 2 * PS);
        assert_eq!(k.process(pid).unwrap().rss().anon, 2);
    }

    #[test]
    fn growing_in_place_continues_the_backing() {
        let (mut k, pid) = booted();
        let file = k.create_file("f", (0..8 * PS).map(|i| (i / PS) as u8).collect());
        let a = VirtAddr(0x2000_0000);
        let args = MmapArgs {
            source: MapSource::File(file, PS),
            ..fixed(a.0, 2 * PS, Prot::READ)
        };
        k.mmap(pid, args).unwrap();
        k.mremap(pid, a, 2 * PS, a, 5 * PS).unwrap();
        let v = *k.mm(pid).unwrap().vmas.find(a).unwrap();
        assert_eq!((v.start, v.end), (a, VirtAddr(a.0 + 5 * PS)), "one VMA");
        let mut b = [0u8; 1];
        k.read(pid, VirtAddr(a.0 + 4 * PS), &mut b).unwrap();
        assert_eq!(b[0], 5, "file page 5: the offset went on from page 1");
        // Anonymous memory commits what it grows by; no room is ENOMEM.
        let c = VirtAddr(0x3000_0000);
        k.mmap(pid, fixed(c.0, PS, Prot::RW)).unwrap();
        k.mmap(pid, fixed(c.0 + 3 * PS, PS, Prot::RW)).unwrap();
        let committed = k.mm(pid).unwrap().committed;
        k.mremap(pid, c, PS, c, 2 * PS).unwrap();
        assert_eq!(k.mm(pid).unwrap().committed, committed + PS);
        assert_eq!(k.mremap(pid, c, 2 * PS, c, 4 * PS), Err(Errno::ENOMEM));
        // Growing from a range that ends inside its VMA has no room either.
        k.mmap(pid, fixed(0x4000_0000, 4 * PS, Prot::RW)).unwrap();
        let d = VirtAddr(0x4000_0000);
        assert_eq!(k.mremap(pid, d, PS, d, 2 * PS), Err(Errno::ENOMEM));
    }

    #[test]
    fn a_move_carries_the_pages_without_faults() {
        let (mut k, pid) = booted();
        let (a, b) = (VirtAddr(0x1000_0000), VirtAddr(0x5000_0000));
        k.mmap(pid, fixed(a.0, 4 * PS, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, 3, |i| 100 + i);
        // Something in the way at the destination goes.
        k.mmap(pid, fixed(b.0 + 8 * PS, PS, Prot::READ)).unwrap();
        let (committed, faults0) = (k.committed(), k.counters().faults_in(FaultClass::Minor));
        k.mremap(pid, a, 4 * PS, b, 10 * PS).unwrap();
        assert_eq!(spans(&k, pid), [(b.0, b.0 + 10 * PS)]);
        for i in 0..3 {
            assert_eq!(k.read_u64(pid, VirtAddr(b.0 + i * PS)).unwrap(), 100 + i);
        }
        assert_eq!(
            k.counters().faults_in(FaultClass::Minor),
            faults0,
            "no refaults"
        );
        assert_eq!(k.process(pid).unwrap().rss().anon, 3);
        assert_eq!(k.committed(), committed + 6 * PS);
        // A PROT_NONE page keeps its frame through a move.
        let (c, d) = (VirtAddr(0x7000_0000), VirtAddr(0x7100_0000));
        k.mmap(pid, fixed(c.0, PS, Prot::RW)).unwrap();
        k.write_u64(pid, c, 77).unwrap();
        k.mprotect(pid, c, PS, Prot::NONE).unwrap();
        k.mremap(pid, c, PS, d, PS).unwrap();
        k.mprotect(pid, d, PS, Prot::RW).unwrap();
        assert_eq!(k.read_u64(pid, d).unwrap(), 77);
        assert_eq!(
            k.counters().faults_in(FaultClass::Minor),
            faults0 + 1,
            "c's first write"
        );
        assert!(
            k.access(pid, a, AccessKind::Read).is_err(),
            "the old range is gone"
        );
    }

    #[test]
    fn a_shrinking_move_drops_the_pages_past_the_new_end_and_keeps_swapped_ones() {
        let mut k = boot_small(8 << 20, 16 << 20, ReclaimPolicy::Clock);
        let base = k.frame_baseline();
        let pid = spawn(&mut k);
        let n = 64;
        let a = VirtAddr(0x1000_0000);
        k.mmap(pid, fixed(a.0, n * PS, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i * 3);
        // Push some of them to swap with a hog.
        let hog = spawn(&mut k);
        let h = k.mmap(hog, MmapArgs::anon(2000 * PS, Prot::RW)).unwrap();
        write_pages(&mut k, hog, h, 2000, |_| 1);
        k.exit(hog, 0).unwrap();
        assert!(k.mm(pid).unwrap().swap_pages > 0, "some pages are in swap");
        let b = VirtAddr(0x6000_0000);
        k.mremap(pid, a, n * PS, b, (n / 2) * PS).unwrap();
        for i in 0..n / 2 {
            assert_eq!(k.read_u64(pid, VirtAddr(b.0 + i * PS)).unwrap(), i * 3);
        }
        // The access past the new end is a SIGSEGV, which ends the process.
        assert!(k
            .access(pid, VirtAddr(b.0 + (n / 2) * PS), AccessKind::Read)
            .is_err());
        k.drop_caches();
        assert_eq!(k.frame_baseline(), base, "nothing leaked");
    }

    #[test]
    fn bad_ranges_are_refused() {
        let (mut k, pid) = booted();
        let a = VirtAddr(0x1000_0000);
        k.mmap(pid, fixed(a.0, 2 * PS, Prot::RW)).unwrap();
        let other = VirtAddr(0x2000_0000);
        assert_eq!(k.mremap(pid, a, 0, other, PS), Err(Errno::EINVAL));
        assert_eq!(k.mremap(pid, a, PS, other, 0), Err(Errno::EINVAL));
        assert_eq!(
            k.mremap(pid, VirtAddr(a.0 + 1), PS, other, PS),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            k.mremap(pid, VirtAddr(0x9000_0000), PS, other, PS),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            k.mremap(pid, a, 3 * PS, other, PS),
            Err(Errno::EFAULT),
            "past the VMA"
        );
        assert_eq!(
            k.mremap(pid, a, 2 * PS, VirtAddr(a.0 + PS), 2 * PS),
            Err(Errno::EINVAL),
            "overlapping"
        );
        assert_eq!(k.mremap(pid, a, PS, VirtAddr(0), PS), Err(Errno::EINVAL));
        assert_eq!(k.mremap(Pid(99), a, PS, other, PS), Err(Errno::ESRCH));
        assert_eq!(spans(&k, pid), [(a.0, a.0 + 2 * PS)], "nothing changed");
    }
}
