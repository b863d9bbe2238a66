//! Populating a range: the kernel faults pages in on the program's behalf, as
//! Linux's `get_user_pages` does for `mmap(MAP_POPULATE)`, `MAP_LOCKED`, `mlock` and
//! `madvise(MADV_POPULATE_READ / MADV_POPULATE_WRITE)`.
//!
//! Each page the range covers is looked up in the page tables (GUP's `follow_page`):
//! one mapped with the access needed is left as it is; any other takes a fault
//! through the ordinary handler, with the access needed, as if the program had made
//! it. So every mechanism of a fault applies (demand zero, the zero page, fault-around
//! of a file's cached pages, readahead, swap-in, copy-on-write), and each fault is
//! counted where a program's would be: Linux counts a fault `get_user_pages` takes in
//! the task's `min_flt` or `maj_flt` and in `/proc/vmstat`'s `pgfault`, as this
//! machine shows (a 16 MiB `MAP_POPULATE` mapping: 4,096 minor faults in `getrusage`,
//! none afterwards when the program writes every page). Nothing goes through the TLBs:
//! the kernel walks the tables in software.
//!
//! Which access: `MADV_POPULATE_READ` reads, `MADV_POPULATE_WRITE` writes, and the
//! others ([`Populate::Map`]) follow `populate_vma_page_range`: a private writable
//! mapping is written (breaking copy-on-write and never mapping the zero page), any
//! other is read, and one without access (`PROT_NONE`) is skipped.

use super::fault::Violation;
use super::mlock::Mlock;
use super::vma::Prot;
use super::{Errno, Kernel, Pid};
use crate::addr::VirtAddr;
use crate::hw::{AccessKind, Fault, FaultCause, Flags, Privilege, Slot};

/// How a range is populated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Populate {
    /// As `mmap(MAP_POPULATE)`, `MAP_LOCKED` and `mlock` do: a write fault for a
    /// private writable mapping, a read fault for any other, none without access.
    Map,
    /// `madvise(MADV_POPULATE_READ)`: read faults.
    Read,
    /// `madvise(MADV_POPULATE_WRITE)`: write faults.
    Write,
}

impl Kernel {
    /// Faults in the pages of `len` bytes of `pid` from `addr` as `get_user_pages`
    /// does (see the module's docs). The range is rounded out to whole pages and must
    /// be mapped throughout (`ENOMEM` otherwise, before anything is done). Each page
    /// populated is left young, and dirty after a write, as Linux installs it. With
    /// [`Populate::Map`], a fault the handler refuses (a page past a file's end, no
    /// memory) ends that mapping's part and the next goes on, as `mm_populate` does.
    /// With [`Populate::Read`] or [`Populate::Write`], the start must be page-aligned
    /// and the mapping must allow the access (`EINVAL`, as Linux's `madvise`); a page
    /// past a file's end is `EFAULT`, any other refused fault `ENOMEM`, with the pages
    /// before it populated.
    pub fn populate(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
        how: Populate,
    ) -> Result<(), Errno> {
        let ps = self.page_size();
        // madvise wants a page-aligned start; mlock rounds it down.
        if how != Populate::Map && !addr.is_aligned(ps) {
            return Err(Errno::EINVAL);
        }
        let (start, len, vmas) = self.pages_mapped_throughout(pid, addr, len)?;
        let end = VirtAddr(start.0 + len);
        let paging = self.machine.spec.paging;
        for vma in vmas {
            let access = match how {
                Populate::Read => AccessKind::Read,
                Populate::Write => AccessKind::Write,
                Populate::Map if vma.prot == Prot::NONE => continue,
                // Locked on fault: left to the program's faults (Linux's
                // populate_vma_page_range returns at once for VM_LOCKONFAULT).
                Populate::Map if vma.locked == Mlock::OnFault => continue,
                Populate::Map if vma.prot.contains(Prot::WRITE) && !vma.shared => AccessKind::Write,
                Populate::Map => AccessKind::Read,
            };
            if !self.prot_allows(vma.prot, access) {
                return Err(Errno::EINVAL);
            }
            let (from, to) = (vma.start.max(start), vma.end.min(end));
            let mut va = from;
            while va < to {
                let pt = self.mm(pid)?.pt;
                let cause = match pt.slot(&paging, &self.machine.ram, va) {
                    Some(Slot::Leaf(m)) => {
                        if access == AccessKind::Write && !m.flags.contains(Flags::WRITE) {
                            Some(FaultCause::WriteProtect)
                        } else {
                            None
                        }
                    }
                    _ => Some(FaultCause::NotPresent { level: 1 }),
                };
                if let Some(cause) = cause {
                    let fault = Fault {
                        va,
                        access,
                        mode: Privilege::User,
                        cause,
                        entry: None,
                    };
                    match self.handle_fault(pid, fault) {
                        Ok(_) => {}
                        // Linux's mm_populate goes on with the next mapping; a
                        // page past a file's end is EFAULT for MADV_POPULATE_*.
                        Err(_) if how == Populate::Map => break,
                        Err(Violation::BeyondEnd) => return Err(Errno::EFAULT),
                        Err(_) => return Err(Errno::ENOMEM),
                    }
                    if !self.process(pid).is_some_and(|p| p.is_running()) {
                        return Err(Errno::ENOMEM);
                    }
                    // The handler may have switched away (an OOM kill elsewhere).
                    if self.tasks.current != Some(pid) {
                        self.switch_to(pid).map_err(|_| Errno::ENOMEM)?;
                    }
                    self.mark_used(pid, va, access == AccessKind::Write)?;
                }
                va = VirtAddr(va.0 + ps);
            }
        }
        Ok(())
    }

    /// Sets the Accessed bit (and Dirty, for a write) of `pid`'s entry at `va`, as the
    /// access that follows a program's fault would, and as Linux installs a page it
    /// populates.
    fn mark_used(&mut self, pid: Pid, va: VirtAddr, write: bool) -> Result<(), Errno> {
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid)?.pt;
        let Some(Slot::Leaf(m)) = pt.slot(&paging, &self.machine.ram, va) else {
            return Ok(());
        };
        let used = if write {
            Flags::ACCESSED | Flags::DIRTY
        } else {
            Flags::ACCESSED
        };
        if !m.flags.contains(used) {
            if let Ok(flush) = pt.set_flags(&paging, &mut self.machine.ram, va, m.flags | used) {
                self.flush_for(pid, flush);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::test_support::*;
    use crate::os::{FaultKind, MmapArgs};

    fn faults_of(k: &Kernel, pid: Pid) -> u64 {
        k.process(pid).unwrap().stats.faults.iter().sum()
    }

    #[test]
    fn a_private_writable_range_is_written_in_and_later_stores_take_no_fault() {
        let (mut k, pid) = booted();
        let a = k.mmap(pid, MmapArgs::anon(16 * 4096, Prot::RW)).unwrap();
        k.populate(pid, a, 16 * 4096, Populate::Map).unwrap();
        assert_eq!(
            faults_of(&k, pid),
            16,
            "a fault a page, as Linux counts them"
        );
        assert_eq!(
            faults(&k, FaultKind::DemandZero),
            16,
            "written: no zero page"
        );
        assert_eq!(k.process(pid).unwrap().rss().anon, 16);
        for i in 0..16 {
            k.write_u64(pid, VirtAddr(a.0 + i * 4096), i).unwrap();
        }
        assert_eq!(faults_of(&k, pid), 16, "the stores found their pages");
        let pt = k.mm(pid).unwrap().pt;
        let b = k.mmap(pid, MmapArgs::anon(2 * 4096, Prot::RW)).unwrap();
        k.populate(pid, b, 2 * 4096, Populate::Map).unwrap();
        match pt.slot(&k.machine.spec.paging, &k.machine.ram, b) {
            Some(Slot::Leaf(m)) => assert!(
                m.flags.contains(Flags::ACCESSED | Flags::DIRTY),
                "young and dirty, as Linux installs a written page"
            ),
            other => panic!("{other:?}"),
        }
        // Populated again: every page is there, so nothing happens.
        k.populate(pid, a, 16 * 4096, Populate::Map).unwrap();
        assert_eq!(faults_of(&k, pid), 16 + 2, "and b's two");
    }

    #[test]
    fn a_read_only_range_maps_the_zero_page_and_a_write_populate_breaks_it() {
        let (mut k, pid) = booted();
        let a = k.mmap(pid, MmapArgs::anon(8 * 4096, Prot::READ)).unwrap();
        k.populate(pid, a, 8 * 4096, Populate::Map).unwrap();
        assert_eq!(faults(&k, FaultKind::ZeroPage), 8);
        assert_eq!(
            k.populate(pid, a, 4096, Populate::Write),
            Err(Errno::EINVAL),
            "MADV_POPULATE_WRITE on a read-only mapping"
        );
        let b = k.mmap(pid, MmapArgs::anon(4 * 4096, Prot::RW)).unwrap();
        k.populate(pid, b, 4 * 4096, Populate::Read).unwrap();
        assert_eq!(faults(&k, FaultKind::ZeroPage), 12, "read: the zero page");
        k.populate(pid, b, 4 * 4096, Populate::Write).unwrap();
        assert_eq!(
            faults_of(&k, pid),
            16,
            "each zero-page mapping took a write fault"
        );
        assert_eq!(k.process(pid).unwrap().rss().anon, 4);
    }

    #[test]
    fn the_range_must_be_mapped_throughout_and_no_access_is_skipped() {
        let (mut k, pid) = booted();
        let a = k.mmap(pid, MmapArgs::anon(4 * 4096, Prot::RW)).unwrap();
        let hole = VirtAddr(a.0 + 4 * 4096);
        assert_eq!(
            k.populate(pid, hole, 4096, Populate::Map),
            Err(Errno::ENOMEM)
        );
        assert_eq!(
            k.populate(pid, a, 8 * 4096, Populate::Map),
            Err(Errno::ENOMEM),
            "a hole in the range: nothing is done"
        );
        assert_eq!(faults_of(&k, pid), 0);
        let n = k.mmap(pid, MmapArgs::anon(4 * 4096, Prot::NONE)).unwrap();
        k.populate(pid, n, 4 * 4096, Populate::Map).unwrap();
        assert_eq!(faults_of(&k, pid), 0, "PROT_NONE is left alone");
        // Unaligned: the pages the bytes touch for mlock; EINVAL for madvise.
        k.populate(pid, VirtAddr(a.0 + 100), 4096, Populate::Map)
            .unwrap();
        assert_eq!(faults_of(&k, pid), 2);
        assert_eq!(
            k.populate(pid, VirtAddr(a.0 + 100), 4096, Populate::Read),
            Err(Errno::EINVAL)
        );
    }
}
