//! `fork`: a child with a copy of the parent's address space, private pages shared
//! copy-on-write until either side writes. An area advised `MADV_DONTFORK` is left
//! out of the child, and one advised `MADV_WIPEONFORK` reaches it empty
//! ([`ForkAdvice`]).

use super::limits::GroupTables;
use super::process::{AddressSpace, ProcState, ProcStats, Process, Rss};
use super::{Errno, Kernel, Pid};
use crate::hw::{Flags, Slot, SoftPte, TlbFlush};

/// What `fork` gives a child of an area, as `madvise` set it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkAdvice {
    /// `MADV_DONTFORK` (`VM_DONTCOPY`): the child does not get the area at all (nor
    /// is it charged the area's commitment).
    pub dont_copy: bool,
    /// `MADV_WIPEONFORK` (`VM_WIPEONFORK`, private anonymous areas only): the child
    /// gets the area with none of its pages, zeros at each first touch.
    pub wipe: bool,
}

impl Kernel {
    /// Forks `parent`: the child gets a copy of the address space in which private
    /// pages are shared copy-on-write (both sides lose write access until one writes)
    /// and shared pages are shared; areas advised so are left out or given empty
    /// ([`ForkAdvice`]). Returns the child's id.
    pub fn fork(&mut self, parent: Pid) -> Result<Pid, Errno> {
        // Other CPUs hear of the call's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            let (
                vmas,
                (start_brk, brk, stack_top, mmap_base, heap_placed, recorded),
                committed,
                name,
                group,
                thp_disabled,
            ) = {
                let p = k.process(parent).ok_or(Errno::ESRCH)?;
                let mm = p.mm.as_ref().ok_or(Errno::ESRCH)?;
                (
                    mm.vmas.clone(),
                    (
                        mm.start_brk,
                        mm.brk,
                        mm.stack_top,
                        mm.mmap_base,
                        mm.heap_placed,
                        mm.recorded,
                    ),
                    mm.committed,
                    p.name.clone(),
                    p.group,
                    p.thp_disabled,
                )
            };
            // Areas left out of the child are not committed for it (Linux's
            // `dup_mmap` charges only the areas it copies).
            let left_out: u64 = vmas
                .iter()
                .filter(|v| v.fork.dont_copy && v.accounted)
                .map(|v| v.len())
                .sum();
            let committed = committed.saturating_sub(left_out);
            let pt = k.committed_table(committed, parent)?;
            let child = Pid(k.tasks.procs.len() as u32 + 1);
            k.tasks.procs.push(Process {
                pid: child,
                ppid: Some(parent),
                name,
                state: ProcState::Running,
                mm: Some(AddressSpace {
                    // The child's areas are not locked (Linux's dup_mmap), and those
                    // advised `MADV_DONTFORK` are not there.
                    vmas: {
                        let mut v = vmas.clone();
                        v.unlock_all();
                        for gone in vmas.iter().filter(|v| v.fork.dont_copy) {
                            v.remove_range(gone.start, gone.end);
                        }
                        v
                    },
                    pt,
                    asid_gen: u64::MAX,
                    start_brk,
                    brk,
                    heap_placed,
                    stack_top,
                    mmap_base,
                    rss: Rss::default(),
                    committed,
                    swap_pages: 0,
                    lock_future: Default::default(),
                    recorded,
                }),
                group,
                stats: ProcStats::default(),
                final_rss: Rss::default(),
                thp_disabled,
            });
            let paging = k.machine.spec.paging;
            let ppt = k.mm(parent)?.pt;
            let mut pending: Option<TlbFlush> = None;
            for vma in vmas.iter() {
                if vma.fork.dont_copy || vma.fork.wipe || !k.fork_copies(ppt, vma) {
                    continue;
                }
                for (va, slot) in ppt.entries(&paging, &k.machine.ram, vma.start, vma.end) {
                    let ok = match slot {
                        Slot::Leaf(m) => {
                            let mut flags = m.flags;
                            if !vma.shared && flags.contains(Flags::WRITE) {
                                flags = flags & !Flags::WRITE;
                                let f = ppt
                                    .set_flags(&paging, &mut k.machine.ram, va, flags)
                                    .map_err(|_| Errno::EFAULT)?;
                                f.add_to(&mut pending);
                            }
                            if m.level > 1 {
                                let r = if k.is_hugetlb_page(m.pfn) {
                                    k.hugetlb_share(child, va, m.pfn, flags & !Flags::ACCESSED)
                                } else {
                                    k.share_huge(child, va, m.pfn, flags & !Flags::ACCESSED)
                                };
                                if let Err(e) = r {
                                    if let Some(f) = pending.take() {
                                        k.flush_for(parent, f);
                                    }
                                    k.teardown(child, ProcState::Exited(-1));
                                    return Err(e);
                                }
                                continue;
                            }
                            k.frames.get(m.pfn);
                            // The child's entry starts old, and clean where the page is
                            // shared (Linux's `copy_present_pte`): reclaim sees the
                            // child's use only once it uses the page.
                            let mut child_flags = flags & !Flags::ACCESSED;
                            if vma.shared {
                                child_flags = child_flags & !Flags::DIRTY;
                            }
                            let r = k.install(child, va, m.pfn, child_flags);
                            if r.is_err() {
                                k.put_frame(m.pfn);
                            }
                            r
                        }
                        s @ Slot::Soft { .. } => {
                            // A page kept by PROT_NONE (a frame reference) or swapped out
                            // (a slot reference): the child's entry names the same.
                            let soft = s.soft();
                            let kept = soft.and_then(SoftPte::prot_none_frame);
                            let slot = soft.and_then(SoftPte::swap_slot);
                            if let Some(pfn) = kept {
                                k.frames.get(pfn);
                            }
                            let written = match soft {
                                Some(soft) => pt
                                    .set_soft(
                                        &paging,
                                        &mut k.machine.ram,
                                        &mut GroupTables::of(
                                            &mut k.frames,
                                            &mut k.groups,
                                            pt.root().pfn(paging.page_shift),
                                        ),
                                        va,
                                        soft,
                                        Flags::RWX | Flags::USER,
                                    )
                                    .map(Some),
                                None => Ok(None),
                            };
                            match written {
                                Ok(pte) => {
                                    if let (Some(pfn), Some(pte)) = (kept, pte) {
                                        k.count_resident(child, pfn);
                                        k.rmap.add(pfn, child, va, pte);
                                    }
                                    if let Some(slot) = slot {
                                        if let Some(s) = k.swap.dev.as_mut() {
                                            s.get(slot);
                                        }
                                        if let Ok(mm) = k.mm_mut(child) {
                                            mm.swap_pages += 1;
                                        }
                                    }
                                    Ok(())
                                }
                                Err(_) => {
                                    if let Some(pfn) = kept {
                                        k.put_frame(pfn);
                                    }
                                    Err(Errno::ENOMEM)
                                }
                            }
                        }
                    };
                    if let Err(e) = ok {
                        if let Some(f) = pending.take() {
                            k.flush_for(parent, f);
                        }
                        k.teardown(child, ProcState::Exited(-1));
                        return Err(e);
                    }
                }
            }
            if let Some(f) = pending {
                k.flush_for(parent, f);
            }
            k.tmpfs_fork(parent, child);
            k.log.counters.forks += 1;
            k.refresh_kmem(child);
            Ok(child)
        })
    }

    /// Whether fork copies `vma`'s entries (Linux's `vma_needs_copy`): only a private
    /// VMA holding anonymous pages (or swap entries, or pages kept by `PROT_NONE`), whose
    /// contents exist nowhere else, and a device's. Shared memory and file pages the
    /// child finds again by faulting, which is cheaper than copying tables it may never
    /// use.
    fn fork_copies(&self, pt: crate::hw::PageTable, vma: &super::Vma) -> bool {
        use super::frames::FrameKind;
        use super::vma::Backing;
        match vma.backing {
            // hugetlb pages are found through the tables only (Linux copies them
            // always, `copy_hugetlb_page_range`).
            Backing::Device(_) | Backing::HugeTlb { .. } => true,
            _ if vma.shared => false,
            Backing::Anon => true,
            _ => {
                let paging = self.machine.spec.paging;
                pt.entries(&paging, &self.machine.ram, vma.start, vma.end)
                    .into_iter()
                    .any(|(_, slot)| match slot {
                        Slot::Leaf(m) => self.frames.kind(m.pfn) == FrameKind::Anon,
                        Slot::Soft { .. } => true,
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    /// A parent with 6 pages written (page `i` holds `10 + i`), pages 2 and 3 advised
    /// `advice`, then forked.
    fn forked_after(advice: u32) -> (Kernel, Pid, Pid, VirtAddr) {
        let mut k = boot("x86-64");
        let parent = spawn(&mut k);
        let a = k.mmap(parent, MmapArgs::anon(6 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, parent, a, 6, |i| 10 + i);
        let mid = VirtAddr(a.0 + 2 * 4096);
        k.madvise(parent, mid, 2 * 4096, advice).unwrap().unwrap();
        let child = k.fork(parent).unwrap();
        (k, parent, child, a)
    }

    /// Copy-on-write faults so far, copies and reuses.
    fn cow_faults(k: &Kernel) -> u64 {
        faults(k, FaultKind::CowCopy) + faults(k, FaultKind::CowReuse)
    }

    /// Pages 2 and 3 of `a` advised `advice` (the undoing one), then `parent` forked
    /// again: the new child.
    fn undo_and_fork(k: &mut Kernel, parent: Pid, a: VirtAddr, advice: u32) -> Pid {
        let mid = VirtAddr(a.0 + 2 * 4096);
        k.madvise(parent, mid, 2 * 4096, advice).unwrap().unwrap();
        k.fork(parent).unwrap()
    }

    #[test]
    fn a_child_does_not_get_an_area_advised_dontfork() {
        let (mut k, parent, child, a) = forked_after(MADV_DONTFORK);
        let page = |i: u64| VirtAddr(a.0 + i * 4096);
        let vmas = &k.mm(child).unwrap().vmas;
        assert!(vmas.find(page(2)).is_none() && vmas.find(page(3)).is_none());
        assert!(vmas.find(page(1)).is_some() && vmas.find(page(4)).is_some());
        // Not committed for the child either.
        let (pc, cc) = (
            k.mm(parent).unwrap().committed,
            k.mm(child).unwrap().committed,
        );
        assert_eq!(pc - cc, 2 * 4096);
        assert_eq!(k.read_u64(child, page(4)).unwrap(), 14);
        // The parent's pages there were never shared: its writes copy nothing.
        let cow = cow_faults(&k);
        k.write_u64(parent, page(2), 1).unwrap();
        k.write_u64(parent, page(3), 1).unwrap();
        assert_eq!(cow_faults(&k), cow);
        // MADV_DOFORK undoes it for the next child.
        let second = undo_and_fork(&mut k, parent, a, MADV_DOFORK);
        assert_eq!(k.read_u64(second, page(2)).unwrap(), 1);
        assert!(k.read_u64(child, page(2)).is_err(), "no area there");
    }

    #[test]
    fn a_child_gets_an_area_advised_wipeonfork_empty() {
        let (mut k, parent, child, a) = forked_after(MADV_WIPEONFORK);
        let page = |i: u64| VirtAddr(a.0 + i * 4096);
        let zero = faults(&k, FaultKind::DemandZero);
        assert_eq!(k.read_u64(child, page(2)).unwrap(), 0);
        assert_eq!(k.read_u64(child, page(3)).unwrap(), 0);
        assert_eq!(
            faults(&k, FaultKind::DemandZero) + faults(&k, FaultKind::ZeroPage) - zero,
            2
        );
        assert_eq!(
            k.read_u64(child, page(1)).unwrap(),
            11,
            "the rest is shared"
        );
        assert_eq!(k.read_u64(parent, page(2)).unwrap(), 12);
        let cow = cow_faults(&k);
        k.write_u64(parent, page(3), 1).unwrap();
        assert_eq!(cow_faults(&k), cow);
        // MADV_KEEPONFORK undoes it.
        let second = undo_and_fork(&mut k, parent, a, MADV_KEEPONFORK);
        assert_eq!(k.read_u64(second, page(2)).unwrap(), 12);
    }

    #[test]
    fn wipeonfork_is_for_private_anonymous_memory_only() {
        let mut k = boot("x86-64");
        let pid = spawn(&mut k);
        let shared = MmapArgs {
            shared: true,
            ..MmapArgs::anon(4096, Prot::RW)
        };
        let s = k.mmap(pid, shared).unwrap();
        assert_eq!(
            k.madvise(pid, s, 4096, MADV_WIPEONFORK),
            Some(Err(Errno::EINVAL))
        );
        assert_eq!(k.madvise(pid, s, 4096, MADV_DONTFORK), Some(Ok(())));
    }

    #[test]
    fn fork_then_write_copies_exactly_the_pages_written() {
        for preset in ["x86-64", "sv48", "textbook-2level"] {
            let mut k = boot(preset);
            let ps = k.page_size();
            let parent = spawn(&mut k);
            let n = 12u64;
            let a = k.mmap(parent, MmapArgs::anon(n * ps, Prot::RW)).unwrap();
            for i in 0..n {
                k.write_u64(parent, VirtAddr(a.0 + i * ps), 100 + i)
                    .unwrap();
            }
            let child = k.fork(parent).unwrap();
            let before = faults(&k, FaultKind::CowCopy);
            let written = 5u64;
            for i in 0..written {
                k.write_u64(child, VirtAddr(a.0 + i * ps), 900 + i).unwrap();
            }
            assert_eq!(
                faults(&k, FaultKind::CowCopy) - before,
                written,
                "{preset}: one copy per page written"
            );
            // Both see their own values.
            for i in 0..n {
                let va = VirtAddr(a.0 + i * ps);
                let want_child = if i < written { 900 + i } else { 100 + i };
                assert_eq!(k.read_u64(child, va).unwrap(), want_child, "{preset}");
                assert_eq!(k.read_u64(parent, va).unwrap(), 100 + i, "{preset}");
            }
            // The parent is now the last owner of the pages the child copied: it writes in
            // place. The rest are still shared and are copied.
            let reuse = faults(&k, FaultKind::CowReuse);
            let copies = faults(&k, FaultKind::CowCopy);
            for i in 0..n {
                k.write_u64(parent, VirtAddr(a.0 + i * ps), 1).unwrap();
            }
            assert_eq!(faults(&k, FaultKind::CowReuse) - reuse, written, "{preset}");
            assert_eq!(
                faults(&k, FaultKind::CowCopy) - copies,
                n - written,
                "{preset}"
            );
            assert_eq!(k.read_u64(child, VirtAddr(a.0 + 6 * ps)).unwrap(), 106);
        }
    }

    #[test]
    fn shared_and_untouched_file_pages_are_found_again_by_faulting_not_copied() {
        let mut k = boot("x86-64");
        let parent = spawn(&mut k);
        let n = 8u64;
        let shared = MmapArgs {
            shared: true,
            ..MmapArgs::anon(n * 4096, Prot::RW)
        };
        let s = k.mmap(parent, shared).unwrap();
        let f = k.create_file("/lib", vec![5u8; (n * 4096) as usize]);
        let file = MmapArgs {
            source: MapSource::File(f, 0),
            ..MmapArgs::anon(n * 4096, Prot::READ)
        };
        let r = k.mmap(parent, file).unwrap();
        let a = k.mmap(parent, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        for i in 0..n {
            k.write_u64(parent, VirtAddr(s.0 + i * 4096), i).unwrap();
            k.read_u64(parent, VirtAddr(r.0 + i * 4096)).unwrap();
            k.write_u64(parent, VirtAddr(a.0 + i * 4096), i).unwrap();
        }
        let child = k.fork(parent).unwrap();
        let before = k.process(child).unwrap().stats.faults.iter().sum::<u64>();
        for i in 0..n {
            assert_eq!(k.read_u64(child, VirtAddr(s.0 + i * 4096)).unwrap(), i);
            assert_eq!(k.read_u64(child, VirtAddr(a.0 + i * 4096)).unwrap(), i);
        }
        let mut b = [0u8];
        k.read(child, r, &mut b).unwrap();
        assert_eq!(b, [5]);
        let taken = k.process(child).unwrap().stats.faults.iter().sum::<u64>() - before;
        // The shared pages come back by one fault and fault-around, and so do the
        // file's; the private anonymous pages were copied, so read without faults.
        assert_eq!(taken, 2, "{taken} faults in the child");
    }
}
