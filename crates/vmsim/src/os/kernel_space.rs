//! The kernel's own half of every address space: its page tables (shared by every
//! process below the root), the direct map of physical memory, the shared zero page,
//! the devices it maps, and where user space ends.

use super::limits::GroupTables;
use super::{Display, GroupId, Kernel};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::hw::PageTable;

/// What boot laid out in the kernel's half.
#[derive(Debug)]
pub(super) struct KernelSpace {
    /// The kernel's own page tables (the direct map).
    pub(super) pt: PageTable,
    /// Root-table entries `[root_index, entries)` are the kernel's, shared by every
    /// process.
    pub(super) root_index: u64,
    /// Table pages of the kernel's own tables below the root (shared by every process).
    pub(super) tables: u64,
    /// The first address of the kernel's half.
    pub(super) start: VirtAddr,
    /// Where physical address 0 appears in the kernel's half.
    pub(super) direct_map: VirtAddr,
    /// Bytes of physical memory the direct map covers.
    pub(super) direct_map_len: u64,
    /// Top of user space (exclusive).
    pub(super) task_size: VirtAddr,
    /// Lowest address `mmap` hands out.
    pub(super) mmap_min: VirtAddr,
    /// The shared zero page.
    pub(super) zero_pfn: Pfn,
    /// The text-mode display, if the machine has one.
    pub(super) display: Option<Display>,
}

impl KernelSpace {
    /// The kernel virtual address of physical address `pa` in the direct map.
    pub(super) fn phys_to_virt(&self, pa: PhysAddr) -> Option<VirtAddr> {
        (pa.0 < self.direct_map_len).then(|| VirtAddr(self.direct_map.0 + pa.0))
    }
}

impl Kernel {
    /// A fresh page table for a process: an empty root whose kernel-half entries are the
    /// kernel's own (so every process shares the kernel's tables below the root). Its
    /// tables are charged to `group`.
    pub(super) fn new_user_table(&mut self, group: GroupId) -> Result<PageTable, super::Errno> {
        let paging = self.machine.spec.paging;
        let mut tables = GroupTables::charged_to(&mut self.frames, &mut self.groups, group);
        let pt = PageTable::new(&paging, &mut self.machine.ram, &mut tables, 0)?;
        let kernel_half = self.space.root_index..paging.entries(paging.levels);
        // Both roots are tables this kernel allocated in RAM: this cannot fail.
        let shared =
            pt.share_root_entries(&paging, &mut self.machine.ram, &self.space.pt, kernel_half);
        debug_assert!(shared.is_ok(), "a root table outside RAM");
        Ok(pt)
    }

    /// Frees a process's page tables, leaving the kernel's shared ones alone.
    pub(super) fn free_user_table(&mut self, pt: PageTable) -> u64 {
        let paging = self.machine.spec.paging;
        let kernel_half = self.space.root_index..paging.entries(paging.levels);
        // Both roots are tables this kernel allocated in RAM: this cannot fail.
        let unshared = pt.unshare_root_entries(&paging, &mut self.machine.ram, kernel_half);
        debug_assert!(unshared.is_ok(), "a root table outside RAM");
        let mut tables = GroupTables::of(
            &mut self.frames,
            &mut self.groups,
            pt.root().pfn(paging.page_shift),
        );
        pt.destroy(&paging, &mut self.machine.ram, &mut tables)
    }
}

#[cfg(test)]
mod tests {
    use crate::addr::{PhysAddr, VirtAddr};
    use crate::hw::MachineSpec;
    use crate::os::test_support::*;
    use crate::os::{Kernel, KernelConfig};

    #[test]
    fn the_direct_map_covers_ram_and_nothing_past_it() {
        let k = Kernel::boot(
            MachineSpec::preset("x86-64").unwrap(),
            KernelConfig::default(),
        );
        let len = k.space.direct_map_len;
        assert!(len > 0);
        assert_eq!(k.space.phys_to_virt(PhysAddr(0)), Some(k.space.direct_map));
        assert_eq!(
            k.space.phys_to_virt(PhysAddr(len - 1)),
            Some(VirtAddr(k.space.direct_map.0 + len - 1))
        );
        assert_eq!(k.space.phys_to_virt(PhysAddr(len)), None);
        assert!(k.space.direct_map >= k.space.start);
        assert!(k.space.task_size <= k.space.start);
    }

    #[test]
    fn a_user_table_shares_the_kernel_half_and_frees_only_its_own() {
        let mut k = Kernel::boot(
            MachineSpec::preset("x86-64").unwrap(),
            KernelConfig::default(),
        );
        let before = k.frames.nr_free();
        let pt = k.new_user_table(GroupId(0)).unwrap();
        assert_eq!(k.frames.nr_free(), before - 1);
        assert_eq!(k.free_user_table(pt), 1);
        assert_eq!(k.frames.nr_free(), before);
    }

    #[test]
    fn boot_builds_a_direct_map_the_kernel_can_read_and_users_cannot() {
        let mut k = boot("x86-64");
        assert!(k.log.boot.iter().any(|l| l.contains("direct map")));
        // Write through physical memory, read back through the direct map.
        k.machine.ram.write(PhysAddr(0x12_3456), b"kernel").unwrap();
        let va = k.phys_to_virt(PhysAddr(0x12_3456)).unwrap();
        assert_eq!(va.0, 0xffff_8880_0012_3456);
        let mut buf = [0u8; 6];
        k.kernel_read(va, &mut buf).unwrap();
        assert_eq!(&buf, b"kernel");
        // A process shares the kernel's tables but cannot touch them.
        let pid = spawn(&mut k);
        let e = k.access(pid, va, AccessKind::Read).unwrap_err();
        assert!(
            matches!(
                e,
                AccessError::Signal {
                    reason: Violation::KernelAddress,
                    signal: Signal::Segv,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            k.process(pid).unwrap().state,
            ProcState::Killed(Signal::Segv)
        );
        assert_eq!(faults(&k, FaultKind::SegvKernel), 1);
    }

    #[test]
    fn the_kernel_range_is_shared_by_every_process() {
        let mut k = boot("sv39");
        let a = spawn(&mut k);
        let b = spawn(&mut k);
        let va = k.phys_to_virt(PhysAddr(0x4000)).unwrap();
        for pid in [a, b] {
            k.switch_to(pid).unwrap();
            assert_eq!(k.kernel_access(va, AccessKind::Read), Ok(PhysAddr(0x4000)));
            // Supervisor-only, no-execute.
            assert_eq!(k.kernel_access(va, AccessKind::Execute), Err(Errno::EFAULT));
        }
        // Each process has its own root but no kernel tables of its own.
        assert_eq!(k.table_pages(a), 1);
    }
}
