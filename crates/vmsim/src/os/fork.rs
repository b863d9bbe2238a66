//! `fork`: a child with a copy of the parent's address space, private pages shared
//! copy-on-write until either side writes.

use super::limits::GroupTables;
use super::process::{AddressSpace, ProcState, ProcStats, Process, Rss};
use super::{Errno, Kernel, Pid};
use crate::hw::{Flags, Slot, SoftPte, TlbFlush};

impl Kernel {
    /// Forks `parent`: the child gets a copy of the address space in which private
    /// pages are shared copy-on-write (both sides lose write access until one writes)
    /// and shared pages are shared. Returns the child's id.
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
            let pt = k.committed_table(committed, parent)?;
            let child = Pid(k.tasks.procs.len() as u32 + 1);
            k.tasks.procs.push(Process {
                pid: child,
                ppid: Some(parent),
                name,
                state: ProcState::Running,
                mm: Some(AddressSpace {
                    // The child's areas are not locked (Linux's dup_mmap).
                    vmas: {
                        let mut v = vmas.clone();
                        v.unlock_all();
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
                if !k.fork_copies(ppt, vma) {
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
