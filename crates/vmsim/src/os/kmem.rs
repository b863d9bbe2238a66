//! Kernel memory charged to a memory group: the objects the kernel allocates for a
//! process, besides its page tables (`limits.rs` charges those as frames).
//!
//! Linux charges to the group of the task that allocates them the kernel stack of
//! every thread (`memcg_charge_kernel_stack`) and the slab objects whose caches are
//! made with `SLAB_ACCOUNT`: the `task_struct`, its `pid`, the process's `mm_struct`,
//! `signal_struct`, `sighand_struct`, `files_struct` and credentials, and one
//! `vm_area_struct` and `anon_vma_chain` per mapping. They count against the group's
//! limit as its pages do (cgroup v1 charges them to `memory.usage_in_bytes` as well
//! as `memory.kmem.usage_in_bytes`), but they are not on its LRU lists: reclaim
//! cannot take them, so a group with more of them has fewer pages for the program.
//! Linux charges objects by the byte and the group by the page (`obj_cgroup`), so
//! the group's charge is its objects' bytes rounded up to pages.
//!
//! vmsim keeps each process's objects up to date with its threads and mappings: at
//! `spawn`, `fork`, `exec`, a new or ended thread, after each OS event of a trace
//! (`Sim` calls [`Kernel::refresh_kmem`]; a caller of the kernel's own `mmap` and
//! the like calls it too, or the mappings it made count from the next of those),
//! and to nothing at exit. A file a process maps, reads or
//! writes for the first time, none of whose pages was cached at the start, charges
//! its group its dentry and inode once, for good: `drop_caches` freed them with its
//! pages, and the lookup made them again (a file with cached pages was in use, and
//! its dentry and inode stayed). The sizes are this kernel's object sizes
//! (`/proc/slabinfo` on Linux 6.18, x86-64). Not modelled: directories' and failed
//! lookups' dentries, the slab shrinkers that free unused dentries and inodes under
//! pressure, page-cache tree nodes (584 bytes for each 64 pages of a file), open
//! file objects and pipes. On the validation machine (cgroup v1,
//! `memory.kmem.usage_in_bytes` less `VmPTE`): a C program 16 to 28 KiB besides the
//! kernel stack and task of the task that starts it (the model: 12 to 14 KiB), each
//! more thread 24 KiB (22), each cold file opened and read 1.26 KiB (1.29).

use super::{FileId, GroupId, Kernel, Pid};

/// Bytes a thread costs: its kernel stack (`THREAD_SIZE`, 16 KiB on x86-64), its
/// `task_struct` (5,888 bytes) and its `struct pid` (192).
pub const THREAD_BYTES: u64 = 16_384 + 5_888 + 192;

/// Bytes a process costs besides its threads: the `mm_struct` (1,600), the
/// `signal_struct` (1,152), the `sighand_struct` (2,112), the `files_struct` (704)
/// and its credentials (192).
pub const PROCESS_BYTES: u64 = 1_600 + 1_152 + 2_112 + 704 + 192;

/// Bytes a mapping costs: its `vm_area_struct` (192) and the `anon_vma_chain` (64)
/// that links it to its anonymous pages.
pub const VMA_BYTES: u64 = 192 + 64;

/// Bytes a file costs the group of the first process that uses it: its `dentry`
/// (192) and its inode (`ext4_inode_cache`, 1,128). They stay after the process
/// ends, as the dentry cache keeps them.
pub const FILE_BYTES: u64 = 192 + 1_128;

/// What one process has charged, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Charge {
    /// Bytes of kernel objects charged now.
    bytes: u64,
    /// The group they are charged to.
    group: GroupId,
}

/// Every process's kernel-memory charge, by pid, and the files whose dentry and
/// inode are charged, by file id.
#[derive(Clone, Debug, Default)]
pub(super) struct Ledger {
    by_pid: Vec<Charge>,
    files: Vec<bool>,
}

impl Ledger {
    fn slot(&mut self, pid: Pid) -> &mut Charge {
        let i = pid.0 as usize;
        if self.by_pid.len() <= i {
            self.by_pid.resize(
                i + 1,
                Charge {
                    bytes: 0,
                    group: GroupId(0),
                },
            );
        }
        &mut self.by_pid[i]
    }
}

impl Kernel {
    /// `pid` uses `file` (maps, reads or writes it): the first use of a file none of
    /// whose pages was cached at the start charges its dentry and inode to `pid`'s
    /// group, for good (not to the root group). A file with pages cached at the start
    /// was in use (the C library, the loader): its dentry and inode were too, and
    /// `drop_caches` left them.
    pub(super) fn kmem_lookup(&mut self, pid: Pid, file: FileId) {
        let Some(g) = self.process(pid).map(|p| p.group) else {
            return;
        };
        let i = file.0 as usize;
        if !self.config.kmem || g.0 == 0 || self.groups.kmem.files.get(i) == Some(&true) {
            return;
        }
        if i >= self.cache.files.len() {
            return;
        }
        let in_use = self.warm_at_start(file, None);
        if self.groups.kmem.files.len() <= i {
            self.groups.kmem.files.resize(i + 1, false);
        }
        self.groups.kmem.files[i] = true;
        if in_use {
            return;
        }
        let ps = self.page_size();
        if let Some(grp) = self.groups.list.get_mut(g.0 as usize) {
            grp.set_kernel_bytes(grp.kernel_bytes + FILE_BYTES, ps);
        }
    }

    /// Bytes of kernel objects `pid` holds now: its threads, its process structures
    /// and its mappings; nothing once it has ended.
    pub fn kmem_bytes_of(&self, pid: Pid) -> u64 {
        let Some(mm) = self
            .process(pid)
            .filter(|p| p.is_running())
            .and_then(|p| p.mm.as_ref())
        else {
            return 0;
        };
        let threads = self.threads_of(pid).max(1) as u64;
        threads * THREAD_BYTES + PROCESS_BYTES + mm.vmas.len() as u64 * VMA_BYTES
    }

    /// Brings `pid`'s kernel-memory charge up to date: the difference goes to the
    /// group its objects are charged to (the process's group when it first charged
    /// any; none in the root group, which Linux does not charge), in whole pages.
    /// Like a page-table page, the charge never reclaims: the group's next page
    /// reclaims what it went over.
    pub fn refresh_kmem(&mut self, pid: Pid) {
        if !self.config.kmem {
            return;
        }
        let Charge { bytes: old, group } = *self.groups.kmem.slot(pid);
        let g = if old == 0 {
            self.process(pid).map_or(GroupId(0), |p| p.group)
        } else {
            group
        };
        // Linux charges nothing to the root group (`try_charge` returns at once).
        let now = if g.0 == 0 { 0 } else { self.kmem_bytes_of(pid) };
        if now == old {
            return;
        }
        *self.groups.kmem.slot(pid) = Charge {
            bytes: now,
            group: g,
        };
        let ps = self.page_size();
        if let Some(grp) = self.groups.list.get_mut(g.0 as usize) {
            grp.set_kernel_bytes(grp.kernel_bytes + now - old, ps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::test_support::*;

    /// A two-list kernel whose workload group has `pages` pages, one process in it.
    fn in_group(pages: u64, kmem: bool) -> (Kernel, Pid) {
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = ReclaimPolicy::TwoList;
            c.swap_bytes = 16 << 20;
            c.memory_max = Some(pages * 4096);
            c.kmem = kmem;
        });
        let pid = spawn(&mut k);
        (k, pid)
    }

    #[test]
    fn a_process_charges_its_group_for_its_threads_structures_and_mappings() {
        let (mut k, pid) = in_group(64, true);
        let vmas = k.mm(pid).unwrap().vmas.len() as u64;
        let bytes = THREAD_BYTES + PROCESS_BYTES + vmas * VMA_BYTES;
        assert_eq!(k.kmem_bytes_of(pid), bytes);
        let g = &k.groups()[1];
        assert_eq!(g.kernel_bytes, bytes);
        assert_eq!(g.stat.kernel, bytes.div_ceil(4096));
        let s = g.stat;
        assert_eq!(
            g.charged,
            s.anon + s.file + s.shmem + s.pagetables + s.kernel
        );
        // A new mapping costs one more vm_area_struct once the charge is refreshed.
        k.mmap(pid, MmapArgs::anon(3 * 4096, Prot::RW)).unwrap();
        k.refresh_kmem(pid);
        assert_eq!(k.groups()[1].kernel_bytes, bytes + VMA_BYTES);
        // A second thread costs a kernel stack and a task_struct; its end gives them
        // back.
        k.run_thread(pid, 0).unwrap();
        assert_eq!(k.groups()[1].kernel_bytes, bytes + VMA_BYTES);
        k.run_thread(pid, 7).unwrap();
        assert_eq!(k.groups()[1].kernel_bytes, bytes + VMA_BYTES + THREAD_BYTES);
        k.thread_exit(pid, 7);
        assert_eq!(k.groups()[1].kernel_bytes, bytes + VMA_BYTES);
        k.exit(pid, 0).unwrap();
        let g = &k.groups()[1];
        assert_eq!((g.kernel_bytes, g.stat.kernel), (0, 0), "{g:?}");
    }

    #[test]
    fn a_cold_file_charges_its_dentry_and_inode_once_and_a_file_in_use_none() {
        let (mut k, pid) = in_group(64, true);
        let before = k.groups()[1].kernel_bytes;
        let cold = k.create_file("cold", vec![7; 8192]);
        k.set_cached_at_start(cold, 0, 0);
        let warm = k.create_file("warm", vec![7; 8192]);
        k.set_cached_at_start(warm, 0, 4096);
        k.read_file(pid, cold, 0, 4096);
        assert_eq!(k.groups()[1].kernel_bytes, before + FILE_BYTES);
        // Used again, by a read or a mapping: charged once.
        k.read_file(pid, cold, 4096, 4096);
        let args = MmapArgs {
            source: MapSource::File(cold, 0),
            ..MmapArgs::anon(8192, Prot::READ)
        };
        k.mmap(pid, args).unwrap();
        k.refresh_kmem(pid);
        assert_eq!(k.groups()[1].kernel_bytes, before + FILE_BYTES + VMA_BYTES);
        // A file with pages cached at the start was in use: its dentry and inode
        // were kept.
        k.read_file(pid, warm, 0, 4096);
        assert_eq!(k.groups()[1].kernel_bytes, before + FILE_BYTES + VMA_BYTES);
        // The file's charge stays after the process ends, its own goes.
        k.exit(pid, 0).unwrap();
        assert_eq!(k.groups()[1].kernel_bytes, FILE_BYTES);
    }

    #[test]
    fn switched_off_nothing_is_charged() {
        let (mut k, pid) = in_group(64, false);
        k.refresh_kmem(pid);
        assert_eq!(k.groups()[1].kernel_bytes, 0);
        assert_eq!(k.groups()[1].stat.kernel, 0);
    }

    #[test]
    fn kernel_memory_leaves_a_group_fewer_pages_for_the_program() {
        // A 64-page group: the process's objects take a few pages of it, so writing
        // 56 anonymous pages pushes more out than without them.
        let swapped = |kmem: bool| {
            let (mut k, pid) = in_group(64, kmem);
            let a = k.mmap(pid, MmapArgs::anon(56 * 4096, Prot::RW)).unwrap();
            k.refresh_kmem(pid);
            write_pages(&mut k, pid, a, 56, |i| i);
            write_pages(&mut k, pid, a, 56, |i| i + 1);
            k.groups()[1].stat.pswpout
        };
        let (with, without) = (swapped(true), swapped(false));
        assert!(with > without, "{with} with against {without} without");
    }
}
