//! The file system's own blocks in the page cache: the inode tables, directories and
//! extent blocks a program's path lookups and opens read (a trace's `fs-metadata`
//! events; `--no-fs-metadata` ignores them).
//!
//! On Linux, ext4 reads its metadata through the block device's page cache (the
//! `Buffers:` line of `/proc/meminfo`), and those pages are charged to the memory
//! group of the task whose lookup read them, as file pages. They go on the active
//! list at once: the buffer is marked accessed again while its page still waits in
//! the per-CPU batch on its way to the LRU (`__lru_cache_activate_folio`, which
//! counts no `pgactivate`). A program that opens many files after the caches were
//! dropped (an interpreter importing its library, a compiler reading headers) starts
//! with hundreds of such pages in its group: measured on this project's machines,
//! `python3` reading a file read 387 pages of metadata, `gcc -O2 -c` about 260, `cat`
//! a few. Under a tight limit they take room from the program's other pages.
//!
//! `vmsim record` measures it: across each path lookup of the program (`open`,
//! `stat`, `access`, `readlink`, `getdents` and the like) it reads `Buffers` before
//! and after, and a growth becomes an `fs-metadata PID PAGES` event at that point of
//! the trace. The replay reads as many pages for the process then, charged to its
//! group and active: from storage (counted in `pgpgin`, not as faults), in requests
//! of up to `READ_PAGES` (32) blocks that the process waits for, as a lookup waits for
//! its buffers; a request goes short where the group has no room for its next block
//! while the ones before are in flight. Where the group cannot make room for a block
//! without the OOM killer, the rest are not read (Linux charges them over the limit:
//! `__GFP_NOFAIL`). Reclaim may take them like any clean file page; vmsim does not
//! read them again later (Linux would, at the next lookup that needs an evicted
//! block), since the trace does not say which blocks they were.

use super::{Kernel, Pid};

/// The name of the pseudo-file that holds the metadata pages (the block device's page
/// cache, as Linux keeps it).
pub const FS_METADATA_FILE: &str = "[fs metadata]";

/// The most blocks one metadata read asks for: ext4 reads an inode table this many
/// blocks at a time (`inode_readahead_blks`, 32 by default).
const READ_PAGES: u64 = 32;

impl Kernel {
    /// Reads `pages` pages of file-system metadata into the page cache for `pid` (see
    /// the module's notes), unless [`KernelConfig::fs_metadata`] is off; at most the
    /// machine's frames at once. Returns the pages read: fewer than asked when the
    /// group cannot make room for them without the OOM killer, which they never call.
    ///
    /// [`KernelConfig::fs_metadata`]: super::KernelConfig::fs_metadata
    pub fn read_fs_metadata(&mut self, pid: Pid, pages: u64) -> u64 {
        if !self.config.fs_metadata || pages == 0 {
            return 0;
        }
        let ps = self.page_size();
        let file = match self.file_named(FS_METADATA_FILE) {
            Some(f) => f,
            None => self.create_file(FS_METADATA_FILE, Vec::new()),
        };
        // New blocks each time: the file grows by what this lookup read.
        let first = self.cache.files[file.0 as usize].len / ps;
        let pages = pages.min(self.frames.nr_frames());
        self.grow_file(file, (first + pages).saturating_mul(ps));
        let end = first + pages;
        let mut idx = first;
        while idx < end {
            // A request of up to READ_PAGES blocks, which the lookup waits for: cut
            // short where the group has no room for the next block while the ones
            // before are in flight, the rest in the next request.
            let mut batch = self.begin_reads();
            let mut last = None;
            let chunk_end = end.min(idx + READ_PAGES);
            while idx < chunk_end {
                // Never the OOM killer: Linux charges such a page even over the limit
                // (`__GFP_NOFAIL`); vmsim reads fewer.
                let Ok(pfn) = self.fill_cache_page(pid, false, file, idx, Some(0), false) else {
                    break;
                };
                self.queue_read(&mut batch, pfn);
                if self.lru_activate(pfn) {
                    // `workingset_activation`: the group's non-resident clock moves.
                    self.age_nonresident(self.frames.group(pfn));
                }
                last = Some(pfn);
                idx += 1;
            }
            self.send_reads(batch);
            match last {
                Some(pfn) => {
                    self.wait_read(pfn);
                }
                // Not one block had room: nothing here can be reclaimed.
                None => break,
            }
        }
        idx - first
    }
}

#[cfg(test)]
mod tests {
    use crate::os::reclaim::FILE_LISTS;
    use crate::os::test_support::*;

    fn with_metadata(on: bool) -> (Kernel, Pid, GroupId) {
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = ReclaimPolicy::TwoList;
            c.fs_metadata = on;
        });
        let pid = spawn(&mut k);
        let g = k.create_group("prog", Some(1 << 20)).unwrap();
        k.set_group(pid, g).unwrap();
        (k, pid, g)
    }

    #[test]
    fn metadata_is_read_from_storage_charged_to_the_group_and_active() {
        let (mut k, pid, g) = with_metadata(true);
        let file_before = k.groups()[g.0 as usize].stat.file;
        let reads = k.log.counters.file_reads;
        let activations = k.log.counters.activations;
        assert_eq!(k.read_fs_metadata(pid, 40), 40);
        assert_eq!(k.groups()[g.0 as usize].stat.file, file_before + 40);
        assert_eq!(k.log.counters.file_reads, reads + 40, "read from storage");
        assert_eq!(
            k.reclaim.lists.len_in(g.0, FILE_LISTS + 1),
            40,
            "on the active file list"
        );
        assert_eq!(k.log.counters.activations, activations, "no pgactivate");
        // Another lookup reads other blocks.
        assert_eq!(k.read_fs_metadata(pid, 2), 2);
        assert_eq!(k.groups()[g.0 as usize].stat.file, file_before + 42);
        assert_eq!(k.reclaim.lists.len_in(g.0, FILE_LISTS + 1), 42);
    }

    #[test]
    fn none_is_read_when_switched_off() {
        let (mut k, pid, g) = with_metadata(false);
        let reads = k.log.counters.file_reads;
        assert_eq!(k.read_fs_metadata(pid, 40), 0);
        assert_eq!(k.log.counters.file_reads, reads);
        assert_eq!(k.reclaim.lists.len_in(g.0, FILE_LISTS + 1), 0);
    }

    #[test]
    fn metadata_beyond_the_limit_is_reclaimed_not_fatal() {
        // 300 pages in a group of 256 (1 MiB): reclaim makes room by taking the
        // oldest of them, and no process is killed.
        let (mut k, pid, g) = with_metadata(true);
        assert_eq!(k.read_fs_metadata(pid, 300), 300);
        let grp = &k.groups()[g.0 as usize];
        assert!(grp.stat.file <= 256, "{} pages charged", grp.stat.file);
        assert_eq!(k.log.counters.oom_kills, 0);
        assert!(k.process(pid).is_some_and(|p| p.is_running()));
    }

    #[test]
    fn a_group_with_nothing_to_reclaim_reads_less_and_kills_nobody() {
        // No swap: the group's 256 pages of anonymous memory cannot go.
        let (mut k, pid, g) = with_metadata(true);
        let a = k.mmap(pid, MmapArgs::anon(256 * 4096, Prot::RW)).unwrap();
        let mut written = 0;
        while written < 256 && k.groups()[g.0 as usize].charged < 256 {
            k.write_u64(pid, VirtAddr(a.0 + written * 4096), 1).unwrap();
            written += 1;
        }
        let read = k.read_fs_metadata(pid, 10);
        assert!(read < 10, "{read} read");
        assert_eq!(k.log.counters.oom_kills, 0);
        assert!(k.process(pid).is_some_and(|p| p.is_running()));
    }
}
