//! `exit`: a process's address space torn down, its frames, swap slots and page
//! tables given back.

use super::process::{ProcState, Rss};
use super::vma::{Backing, ShmId};
use super::{Errno, Kernel, Pid};

impl Kernel {
    /// Ends `pid` with `code`: every page, every page table and its ASID's TLB entries
    /// go.
    pub fn exit(&mut self, pid: Pid, code: i32) -> Result<(), Errno> {
        if !self.process(pid).is_some_and(|p| p.is_running()) {
            return Err(Errno::ESRCH);
        }
        self.teardown(pid, ProcState::Exited(code));
        Ok(())
    }

    /// Frees a process's address space and marks it ended.
    pub(super) fn teardown(&mut self, pid: Pid, state: ProcState) {
        // Other CPUs hear of the exit's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            let rss = k.process(pid).map_or(Rss::default(), |p| p.rss());
            k.sched_forget(pid, false);
            k.release_mm(pid);
            k.tmpfs_exit(pid);
            if let Some(p) = k.proc_mut(pid) {
                p.state = state;
                p.final_rss = rss;
            }
            k.log.counters.exits += 1;
            k.refresh_kmem(pid);
        });
    }

    /// Frees an address space: its pages, its tables, its commitment, its TLB entries.
    pub(super) fn release_mm(&mut self, pid: Pid) {
        let Some(mm) = self.mm(pid).ok().cloned() else {
            return;
        };
        let objs: Vec<ShmId> = mm
            .vmas
            .iter()
            .filter_map(|v| match v.backing {
                Backing::Shm { obj, .. } => Some(obj),
                _ => None,
            })
            .collect();
        for v in mm.vmas.iter() {
            // The process still has its address space and the entries were just found
            // by a walk: zap cannot fail here.
            self.hugetlb_unreserve(pid, v.start, v.end);
            let zapped = self.zap(pid, v.start, v.end);
            debug_assert!(zapped.is_ok(), "exit: {zapped:?}");
        }
        if self.tasks.current == Some(pid) {
            self.switch_to_kernel();
        }
        // Other CPUs that ran it idle with it loaded: the tables go, so they hear.
        let live = mm.asid_gen == self.tasks.asids.gen;
        self.flush_freed_tables(pid, mm.pt.asid(), self.machine.spec.asid_tagged && live);
        // No CPU may keep the freed root loaded (a RISC-V fence leaves it there, and
        // exec gives the process a new one that a switch must load).
        self.unload_everywhere(pid);
        let n = self.free_user_table(mm.pt);
        self.log.counters.tables_freed += n;
        self.uncommit(mm.committed);
        if let Some(p) = self.proc_mut(pid) {
            p.mm = None;
        }
        for o in objs {
            self.shm_release_if_unused(o);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn exit_frees_every_frame_and_page_table() {
        for preset in ["x86-64", "x86-64-la57", "sv39", "textbook-2level"] {
            let mut k = boot(preset);
            let base = k.frame_baseline();
            let ps = k.page_size();
            let a = spawn(&mut k);
            let m = k.mmap(a, MmapArgs::anon(16 * ps, Prot::RW)).unwrap();
            let far = k
                .mmap(
                    a,
                    MmapArgs {
                        addr: Some(VirtAddr((k.task_size().0 / 2) & !(ps - 1))),
                        ..MmapArgs::anon(ps, Prot::RW)
                    },
                )
                .unwrap();
            let shared = k.mmap(a, MmapArgs::shared_anon(4 * ps, Prot::RW)).unwrap();
            for i in 0..16 {
                k.write_u64(a, VirtAddr(m.0 + i * ps), i).unwrap();
            }
            k.write_u64(a, far, 1).unwrap();
            k.write_u64(a, shared, 1).unwrap();
            let text = k.mm(a).unwrap().vmas.iter().next().unwrap().start;
            k.access(a, text, AccessKind::Execute).unwrap();
            let b = k.fork(a).unwrap();
            k.write_u64(b, m, 5).unwrap();
            k.brk(b, Some(VirtAddr(k.mm(b).unwrap().brk.0 + 3 * ps)))
                .unwrap();
            let brk0 = k.mm(b).unwrap().start_brk;
            k.write_u64(b, brk0, 5).unwrap();
            assert!(k.frames.nr_free() < base.free);
            k.exit(b, 0).unwrap();
            k.exit(a, 0).unwrap();
            k.drop_caches();
            assert_eq!(k.frame_baseline(), base, "{preset}");
            assert_eq!(k.committed(), 0, "{preset}");
            for g in k.groups() {
                assert_eq!(g.charged, 0, "{preset}");
            }
        }
    }
}
