//! `mprotect`: new permissions on a range, written into every present entry (with
//! W^X checked), and the TLB entries that held the old ones flushed.

use super::frames::FrameKind;
use super::limits::GroupTables;
use super::vma::{Backing, Prot};
use super::{Errno, Kernel, Pid};
use crate::addr::VirtAddr;
use crate::hw::{Flags, Slot, SoftPte, TlbFlush};

impl Kernel {
    /// `mprotect`: changes the protection of every page in the range, which must be
    /// mapped throughout (else ENOMEM, and nothing changes).
    pub fn mprotect(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
        prot: Prot,
    ) -> Result<(), Errno> {
        // Other CPUs hear of the call's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            let len = k.round_len(len)?;
            let end = k.check_range(addr, len)?;
            k.check_wx(prot)?;
            let parts = k.mapped_throughout(pid, addr, end)?;
            k.hugetlb_aligned(pid, addr, end)?;
            // Private mappings that become writable are committed now (hugetlb pages come
            // from their pool, not the commit limit).
            let hugetlb =
                |v: &&super::Vma| matches!(v.backing, super::vma::Backing::HugeTlb { .. });
            let newly: u64 = parts
                .iter()
                .filter(|v| !v.shared && !v.accounted && prot.contains(Prot::WRITE) && !hugetlb(v))
                .map(|v| v.end.0.min(end.0) - v.start.0.max(addr.0))
                .sum();
            k.commit(newly)?;
            {
                let mm = k.mm_mut(pid)?;
                mm.committed += newly;
                mm.vmas.update_range(addr, end, |v| {
                    if !v.shared && prot.contains(Prot::WRITE) {
                        v.accounted = true;
                    }
                    v.prot = prot;
                });
            }
            k.reprotect(pid, addr, end)
        })
    }

    /// Rewrites the entries of `[start, end)` to match their VMAs' protection.
    fn reprotect(&mut self, pid: Pid, start: VirtAddr, end: VirtAddr) -> Result<(), Errno> {
        // Huge pages split where the range ends inside one, and wherever it becomes
        // inaccessible (its entries keep their frames as base-page software entries).
        let none = self
            .mm(pid)?
            .vmas
            .overlapping(start, end)
            .iter()
            .any(|v| v.prot == Prot::NONE);
        if none {
            self.split_huge_range(pid, start, end)?;
        } else {
            self.split_huge_edges(pid, start, end)?;
        }
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid)?.pt;
        let mut pending: Option<TlbFlush> = None;
        for (va, slot) in pt.entries(&paging, &self.machine.ram, start, end) {
            let vma = *self.mm(pid)?.vmas.find(va).ok_or(Errno::EFAULT)?;
            let (pfn, old) = match slot {
                Slot::Leaf(m) => (m.pfn, Some(m.flags)),
                s @ Slot::Soft { .. } => match s.soft().and_then(SoftPte::prot_none_frame) {
                    Some(pfn) => (pfn, None),
                    // Swapped out: the protection applies when it comes back.
                    None => continue,
                },
            };
            if vma.prot == Prot::NONE {
                if old.is_some() {
                    let (_, f) = pt
                        .unmap(&paging, &mut self.machine.ram, va)
                        .map_err(|_| Errno::EFAULT)?;
                    f.add_to(&mut pending);
                    pt.set_prot_none(
                        &paging,
                        &mut self.machine.ram,
                        &mut GroupTables::of(
                            &mut self.frames,
                            &mut self.groups,
                            pt.root().pfn(paging.page_shift),
                        ),
                        va,
                        pfn,
                        Flags::RWX | Flags::USER,
                    )?;
                }
                continue;
            }
            // Writable only where no copy-on-write is pending.
            let sole = pfn != self.space.zero_pfn
                && (vma.shared
                    || (self.frames.kind(pfn) == FrameKind::Anon && self.frames.refs(pfn) == 1));
            let device = matches!(vma.backing, Backing::Device(_));
            let mut flags = self.user_flags(vma.prot, sole, device);
            match old {
                Some(o) => {
                    flags = flags | (o & (Flags::ACCESSED | Flags::DIRTY));
                    if flags != o {
                        let f = pt
                            .set_flags(&paging, &mut self.machine.ram, va, flags)
                            .map_err(|_| Errno::EFAULT)?;
                        f.add_to(&mut pending);
                    }
                }
                None => {
                    pt.clear_soft(&paging, &mut self.machine.ram, va)
                        .map_err(|_| Errno::EFAULT)?;
                    self.uncount(pid, pfn);
                    self.rmap.remove(pfn, pid, va);
                    self.install(pid, va, pfn, flags)?;
                }
            }
        }
        if let Some(f) = pending {
            self.flush_for(pid, f);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn w_xor_x_refuses_writable_code_and_a_jit_flips_pages() {
        let mut k = boot_with("x86-64", |c| c.wx = true);
        let pid = spawn(&mut k);
        assert_eq!(
            k.mmap(pid, MmapArgs::anon(4096, Prot::RWX)),
            Err(Errno::EACCES)
        );
        // The JIT: write code into a RW buffer, flip it to RX, run it.
        let code = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
        k.write(pid, code, &[0x90, 0x90, 0xc3]).unwrap();
        assert_eq!(k.mprotect(pid, code, 4096, Prot::RWX), Err(Errno::EACCES));
        k.mprotect(pid, code, 4096, Prot::RX).unwrap();
        k.access(pid, code, AccessKind::Execute).unwrap();
        let mut b = [0u8; 3];
        k.read(pid, code, &mut b).unwrap();
        assert_eq!(b, [0x90, 0x90, 0xc3]);
        // The TLB held the page writable; mprotect's flush means the write now faults.
        let e = k.access(pid, code, AccessKind::Write).unwrap_err();
        assert!(matches!(
            e,
            AccessError::Signal {
                reason: Violation::Access,
                ..
            }
        ));
    }

    #[test]
    fn mprotect_narrowing_reaches_the_tlb() {
        let (mut k, pid) = booted();
        let a = k.mmap(pid, MmapArgs::anon(8 * 4096, Prot::RW)).unwrap();
        k.write_u64(pid, a, 1).unwrap();
        k.write_u64(pid, VirtAddr(a.0 + 4096), 1).unwrap();
        let before = k.mm(pid).unwrap().vmas.len();
        // Cached writable in the TLB now. Narrow the first page of the range.
        k.mprotect(pid, a, 4096, Prot::READ).unwrap();
        let vmas = &k.mm(pid).unwrap().vmas;
        assert_eq!(vmas.len(), before + 1, "the VMA split in two");
        assert_eq!(vmas.find(a).unwrap().prot, Prot::READ);
        assert_eq!(vmas.find(VirtAddr(a.0 + 4096)).unwrap().prot, Prot::RW);
        assert!(k
            .access(pid, VirtAddr(a.0 + 4096), AccessKind::Write)
            .is_ok());
        assert!(k.access(pid, a, AccessKind::Write).is_err());
    }

    #[test]
    fn prot_none_keeps_the_data_and_munmap_forgets_it() {
        let mut k = boot_with("sv48", |c| c.kill_on_violation = false);
        let pid = spawn(&mut k);
        let a = k.mmap(pid, MmapArgs::anon(2 * 4096, Prot::RW)).unwrap();
        k.write_u64(pid, a, 0xfeed).unwrap();
        k.mprotect(pid, a, 8192, Prot::NONE).unwrap();
        assert!(k.access(pid, a, AccessKind::Read).is_err());
        assert_eq!(k.process(pid).unwrap().rss().anon, 1, "still resident");
        let child = k.fork(pid).unwrap();
        k.mprotect(pid, a, 8192, Prot::READ).unwrap();
        assert_eq!(k.read_u64(pid, a).unwrap(), 0xfeed);
        k.mprotect(child, a, 8192, Prot::RW).unwrap();
        k.write_u64(child, a, 1).unwrap();
        assert_eq!(
            k.read_u64(pid, a).unwrap(),
            0xfeed,
            "copy-on-write survived"
        );
        k.munmap(pid, a, 8192).unwrap();
        assert!(k.access(pid, a, AccessKind::Read).is_err());
        assert_eq!(k.process(pid).unwrap().rss().anon, 0);
    }
}
