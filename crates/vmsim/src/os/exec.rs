//! `exec` (and `spawn`, a new process that execs at once): a fresh address space
//! holding the program's text and data (private mappings of its file), its bss, heap
//! and stack. `exec_empty` (and `spawn_empty`) make a fresh address space with nothing
//! in it, for a recorded program whose image arrives as mappings of its own.

use super::process::{AddressSpace, ProcState, ProcStats, Process, Rss};
use super::vma::{Backing, Prot, Vma, VmaRole, VmaSet};
use super::{Errno, Kernel, Pid};
use crate::addr::VirtAddr;

/// A program to `exec`: the sizes of its segments. Its text and data come from a file
/// named after it (made up on first use, with deterministic contents), as an ELF's
/// segments are file mappings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Its name (`/bin/<name>` in the file system).
    pub name: String,
    /// Bytes of text (read-execute).
    pub text: u64,
    /// Bytes of initialised data (read-write, private).
    pub data: u64,
    /// Bytes of zero-initialised data after it.
    pub bss: u64,
}

impl Program {
    /// A program named `name` with small segments scaled to the page size.
    pub fn small(name: &str, page_size: u64) -> Program {
        Program {
            name: name.to_string(),
            text: 8 * page_size,
            data: 2 * page_size,
            bss: 2 * page_size,
        }
    }
}

impl Kernel {
    /// Commits `bytes` for a new address space of `pid` and makes its page table,
    /// charged to `pid`'s memory group; on failure nothing stays committed.
    pub(super) fn committed_table(
        &mut self,
        bytes: u64,
        pid: Pid,
    ) -> Result<crate::hw::PageTable, Errno> {
        let group = self.process(pid).ok_or(Errno::ESRCH)?.group;
        self.commit(bytes)?;
        self.new_user_table(group)
            .inspect_err(|_| self.uncommit(bytes))
    }

    /// A new process called `name`, running, with no address space yet.
    fn new_process(&mut self, name: &str) -> Pid {
        let pid = Pid(self.tasks.procs.len() as u32 + 1);
        self.tasks.procs.push(Process {
            pid,
            ppid: None,
            name: name.to_string(),
            state: ProcState::Running,
            mm: None,
            group: self.groups.workload,
            stats: ProcStats::default(),
            final_rss: Rss::default(),
            thp_disabled: false,
        });
        pid
    }

    /// Gives a process that `new_process` made its first image with `exec`; if that
    /// fails, the process ends (exit status -1) and the error is returned.
    fn first_image(
        &mut self,
        pid: Pid,
        exec: impl FnOnce(&mut Kernel) -> Result<(), Errno>,
    ) -> Result<Pid, Errno> {
        if let Err(e) = exec(self) {
            if let Some(p) = self.proc_mut(pid) {
                p.state = ProcState::Exited(-1);
            }
            return Err(e);
        }
        self.refresh_kmem(pid);
        Ok(pid)
    }

    /// Starts a new process running `program` (as `fork` of init followed by `exec`).
    pub fn spawn(&mut self, program: &Program) -> Result<Pid, Errno> {
        let pid = self.new_process(&program.name);
        self.first_image(pid, |k| k.exec(pid, program))
    }

    /// Starts a new process called `name` with an empty address space (as `fork` of
    /// init followed by [`Kernel::exec_empty`]).
    pub fn spawn_empty(&mut self, name: &str) -> Result<Pid, Errno> {
        let pid = self.new_process(name);
        self.first_image(pid, |k| k.exec_empty(pid))
    }

    /// Where a new image's stack and mappings go: the bytes of stack it starts with
    /// (below the top of user space) and the mmap base, a gap below them.
    fn stack_and_mmap_base(&self) -> (u64, VirtAddr) {
        let ps = self.page_size();
        let top = self.space.task_size.0;
        let (stack_init, mmap_gap) = if top >= 1 << 32 {
            (32 * ps, 128 << 20)
        } else {
            (ps, self.config.stack_limit.min(top / 8))
        };
        let stack_init = stack_init.min(self.config.stack_limit);
        (
            stack_init,
            VirtAddr(top.saturating_sub(mmap_gap + stack_init)),
        )
    }

    /// `execve` as a recorder sees it: replaces `pid`'s address space with an empty one
    /// — no text, data, heap or stack — whose mappings the caller makes afterwards
    /// (`mmap` with fixed addresses). The heap has no place until the first `brk` names
    /// an address (see [`AddressSpace::heap_placed`]); `mmap` without a fixed address
    /// places mappings top-down from the same base as [`Kernel::exec`]. The process
    /// keeps its name.
    pub fn exec_empty(&mut self, pid: Pid) -> Result<(), Errno> {
        // Other CPUs hear of the call's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            if !k.process(pid).is_some_and(|p| p.is_running()) {
                return Err(Errno::ESRCH);
            }
            let (_, mmap_base) = k.stack_and_mmap_base();
            let pt = k.committed_table(0, pid)?;
            k.sched_forget(pid, true);
            k.release_mm(pid);
            let stack_top = k.space.task_size;
            let p = k.proc_mut(pid).ok_or(Errno::ESRCH)?;
            p.mm = Some(AddressSpace {
                vmas: VmaSet::default(),
                pt,
                asid_gen: u64::MAX,
                start_brk: VirtAddr(0),
                brk: VirtAddr(0),
                heap_placed: false,
                stack_top,
                mmap_base,
                rss: Rss::default(),
                committed: 0,
                swap_pages: 0,
                lock_future: Default::default(),
                recorded: true,
            });
            k.log.counters.execs += 1;
            Ok(())
        })
    }

    /// Replaces `pid`'s address space with a fresh one running `program`: text and data
    /// mapped privately from the program's file, bss and heap anonymous, a stack at the
    /// top of user space that grows down.
    pub fn exec(&mut self, pid: Pid, program: &Program) -> Result<(), Errno> {
        // Other CPUs hear of the call's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            if !k.process(pid).is_some_and(|p| p.is_running()) {
                return Err(Errno::ESRCH);
            }
            let ps = k.page_size();
            let text = k.round_len(program.text.max(1))?;
            let data = k.round_len(program.data.max(1))?;
            let bss = if program.bss == 0 {
                0
            } else {
                k.round_len(program.bss)?
            };
            let file_name = format!("/bin/{}", program.name);
            let file = match k.file_named(&file_name) {
                Some(f) if k.cache.files[f.0 as usize].len >= text + data => f,
                _ => {
                    let contents = program_bytes(&program.name, text + data);
                    k.create_file(&file_name, contents)
                }
            };
            let big = k.space.task_size.0 >= 1 << 32;
            let text_base = if big { 0x40_0000 } else { k.space.mmap_min.0 };
            let stack_top = k.space.task_size;
            let (stack_init, mmap_base) = k.stack_and_mmap_base();
            let data_base = text_base + text;
            let start_brk = data_base + data + bss;
            if start_brk + ps > mmap_base.0 || stack_top.0 < stack_init {
                return Err(Errno::ENOMEM);
            }
            let committed = data + bss + stack_init;
            let pt = k.committed_table(committed, pid)?;
            // The old image goes only once the new one can be built.
            k.sched_forget(pid, true);
            k.release_mm(pid);
            let mut vmas = VmaSet::default();
            let vma = |start: u64, len: u64, prot, backing, role, accounted| Vma {
                start: VirtAddr(start),
                end: VirtAddr(start + len),
                prot,
                shared: false,
                backing,
                role,
                accounted,
                huge: Default::default(),
                access: Default::default(),
                locked: Default::default(),
                fork: Default::default(),
                swap_ra: Default::default(),
            };
            vmas.insert(vma(
                text_base,
                text,
                Prot::RX,
                Backing::File { file, offset: 0 },
                VmaRole::Text,
                false,
            ));
            vmas.insert(vma(
                data_base,
                data,
                Prot::RW,
                Backing::File { file, offset: text },
                VmaRole::Data,
                true,
            ));
            if bss > 0 {
                vmas.insert(vma(
                    data_base + data,
                    bss,
                    Prot::RW,
                    Backing::Anon,
                    VmaRole::Data,
                    true,
                ));
            }
            vmas.insert(vma(
                stack_top.0 - stack_init,
                stack_init,
                Prot::RW,
                Backing::Anon,
                VmaRole::Stack,
                true,
            ));
            let p = k.proc_mut(pid).ok_or(Errno::ESRCH)?;
            p.name = program.name.clone();
            p.mm = Some(AddressSpace {
                vmas,
                pt,
                asid_gen: u64::MAX,
                start_brk: VirtAddr(start_brk),
                brk: VirtAddr(start_brk),
                heap_placed: true,
                stack_top,
                mmap_base,
                rss: Rss::default(),
                committed,
                swap_pages: 0,
                lock_future: Default::default(),
                recorded: false,
            });
            k.log.counters.execs += 1;
            Ok(())
        })
    }
}

/// Deterministic contents for a program's file: a byte pattern seeded by its name.
fn program_bytes(name: &str, len: u64) -> Vec<u8> {
    let mut s = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn exec_replaces_the_address_space() {
        let (mut k, pid) = booted();
        let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
        k.write_u64(pid, a, 1).unwrap();
        k.exec(pid, &Program::small("other", 4096)).unwrap();
        assert!(k.access(pid, a, AccessKind::Read).is_err());
        assert_eq!(k.process(pid).unwrap().name, "other");
    }

    #[test]
    fn exec_empty_leaves_nothing_mapped() {
        let (mut k, pid) = booted();
        let committed = k.committed();
        let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
        k.write_u64(pid, a, 1).unwrap();
        k.exec_empty(pid).unwrap();
        let mm = k.mm(pid).unwrap();
        assert!(mm.vmas.is_empty());
        assert_eq!((mm.committed, mm.rss.total()), (0, 0));
        assert!(!mm.heap_placed);
        assert!(k.committed() < committed, "the old image's commitment went");
        assert!(k.access(pid, a, AccessKind::Read).is_err());
        assert_eq!(k.process(pid).unwrap().name, "test");
        // Mappings made afterwards work as in any image.
        let (mut k, _) = booted();
        let e = k.spawn_empty("img").unwrap();
        let b = k.mmap(e, MmapArgs::anon(8192, Prot::RW)).unwrap();
        k.write_u64(e, b, 7).unwrap();
        assert_eq!(k.read_u64(e, b).unwrap(), 7);
        assert_eq!(k.exec_empty(Pid(99)), Err(Errno::ESRCH));
    }

    #[test]
    fn a_textbook_machine_runs_processes_too() {
        let mut k = boot("textbook");
        assert!(
            k.display().is_none(),
            "12-bit physical addresses hold no devices"
        );
        let base = k.frame_baseline();
        let pid = spawn(&mut k);
        let ps = k.page_size();
        let a = k.mmap(pid, MmapArgs::anon(4 * ps, Prot::RW)).unwrap();
        assert!(a.0 < k.task_size().0);
        k.write(pid, a, b"course").unwrap();
        let child = k.fork(pid).unwrap();
        k.write(child, a, b"COURSE").unwrap();
        let mut buf = [0u8; 6];
        k.read(pid, a, &mut buf).unwrap();
        assert_eq!(&buf, b"course");
        k.exit(child, 0).unwrap();
        assert!(k.frames.nr_free() < base.free);
        let kva = k.phys_to_virt(PhysAddr(0x80)).unwrap();
        assert!(k.access(pid, kva, AccessKind::Read).is_err());
        assert_eq!(
            k.process(pid).unwrap().state,
            ProcState::Killed(Signal::Segv)
        );
        k.drop_caches();
        assert_eq!(k.frame_baseline(), base);
    }
}
