//! The page cache: the files of the simulated file system (and real files of the host
//! opened read-only), and the frames that hold their pages, each page once however many
//! processes map it. Dirty pages are remembered until reclaim writes them back.

use super::{FileId, Kernel, Pid};
use crate::addr::Pfn;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;

/// A file of the simulated file system.
#[derive(Debug)]
pub struct File {
    /// Its name.
    pub name: String,
    /// Its contents (for a simulated file); the part of its length past them reads as
    /// zeros (a trace's file, whose contents the trace does not record, holds none).
    pub data: Vec<u8>,
    /// A real file of the host, read page by page as the page cache fills (read-only).
    pub host: Option<std::fs::File>,
    /// Its length in bytes.
    pub len: u64,
    /// Mapped executable at some point: a program or a library, cached from the start.
    pub executable: bool,
    /// Mapped at some point: its pages cost the kernel page-table work one by one, so
    /// reading one in and evicting it cost a whole page's work even in a large folio
    /// (see [`super::Kernel::cost_shift`]).
    pub mapped: bool,
    /// The pages of a program or library that were in the page cache at start, as
    /// `vmsim record` found them, and not yet used; `None` where not recorded, and
    /// then every page was.
    pub cached_at_start: Option<PageRuns>,
    /// Its readahead state.
    pub ra: super::readahead::ReadaheadState,
    /// Most pages read ahead at once for it (its device's `read_ahead_kb`), where
    /// known; else the kernel's default.
    pub ra_pages: Option<u64>,
    /// How `posix_fadvise` last said the file is read (readahead off or doubled).
    pub access: super::fadvise::FileAccess,
    /// A file on tmpfs (`/dev/shm`, `memfd_create`): the shared-memory object that
    /// holds its pages, swap-backed, in place of the page cache (see
    /// [`Kernel::make_tmpfs_file`]).
    pub shmem: Option<super::ShmId>,
}

/// A set of page indices kept as sorted, disjoint runs `start..end`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRuns(Vec<(u64, u64)>);

impl PageRuns {
    /// Whether the set has no page.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether page `idx` is in the set.
    pub fn contains(&self, idx: u64) -> bool {
        let i = self.0.partition_point(|&(_, end)| end <= idx);
        self.0.get(i).is_some_and(|&(start, _)| start <= idx)
    }

    /// Adds pages `start..end`.
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let runs = &mut self.0;
        // The runs it touches or overlaps merge with it.
        let from = runs.partition_point(|&(_, e)| e < start);
        let to = runs.partition_point(|&(s, _)| s <= end);
        let (mut s, mut e) = (start, end);
        if from < to {
            s = s.min(runs[from].0);
            e = e.max(runs[to - 1].1);
        }
        runs.splice(from..to, [(s, e)]);
    }

    /// Whether the set is pages `start..end` and no others.
    pub fn is_just(&self, start: u64, end: u64) -> bool {
        self.0 == [(start, end)]
    }

    /// Takes page `idx` out of the set.
    pub fn remove(&mut self, idx: u64) {
        let i = self.0.partition_point(|&(_, end)| end <= idx);
        let Some(&(start, end)) = self.0.get(i).filter(|&&(s, _)| s <= idx) else {
            return;
        };
        let parts = [(start, idx), (idx + 1, end)];
        self.0
            .splice(i..=i, parts.into_iter().filter(|&(s, e)| s < e));
    }
}

impl File {
    /// Reads the page at byte `at` into `buf` (the part past the end reads as zeros);
    /// returns false if the host file could not be read.
    pub(super) fn read_page(&self, at: u64, buf: &mut [u8]) -> bool {
        use std::os::unix::fs::FileExt;
        buf.fill(0);
        let n = (self.len.saturating_sub(at) as usize).min(buf.len());
        match &self.host {
            Some(f) => f.read_exact_at(&mut buf[..n], at).is_ok(),
            None => {
                let held = self.data.get(at as usize..).unwrap_or_default();
                let n = n.min(held.len());
                buf[..n].copy_from_slice(&held[..n]);
                true
            }
        }
    }
}

/// The files and the frames caching their pages.
#[derive(Debug, Default)]
pub(super) struct PageCache {
    /// Every file, by [`FileId`].
    pub(super) files: Vec<File>,
    /// The frame holding each cached (file, page index).
    pub(super) pages: BTreeMap<(FileId, u64), Pfn>,
    /// The (file, page) each page-cache frame holds, by frame number.
    pub(super) owner: FxHashMap<u64, (FileId, u64)>,
    /// Page-cache frames written through a mapping since unmapped (to write back).
    pub(super) dirty: FxHashSet<u64>,
    /// Page-cache frames marked for readahead: a fault on one reads the next window.
    pub(super) readahead: FxHashSet<u64>,
    /// The order of the folio each page-cache frame belongs to, where above 0 (the
    /// folio is the aligned run of `2^order` pages holding it).
    pub(super) folio_order: FxHashMap<u64, u8>,
}

impl PageCache {
    /// Creates a simulated file (or replaces the contents of one of that name).
    pub(super) fn create_file(&mut self, name: &str, data: Vec<u8>) -> FileId {
        let len = data.len() as u64;
        if let Some(i) = self.files.iter().position(|f| f.name == name) {
            self.files[i].data = data;
            self.files[i].len = len;
            self.files[i].host = None;
            return FileId(i as u32);
        }
        self.files.push(File {
            name: name.to_string(),
            data,
            host: None,
            len,
            executable: false,
            mapped: false,
            cached_at_start: None,
            ra: Default::default(),
            ra_pages: None,
            access: Default::default(),
            shmem: None,
        });
        FileId(self.files.len() as u32 - 1)
    }

    /// Opens a real file of the host, read-only.
    pub(super) fn open_host_file(&mut self, path: &std::path::Path) -> std::io::Result<FileId> {
        let f = std::fs::File::open(path)?;
        let len = f.metadata()?.len();
        self.files.push(File {
            name: path.display().to_string(),
            data: Vec::new(),
            host: Some(f),
            len,
            executable: false,
            mapped: false,
            cached_at_start: None,
            ra: Default::default(),
            ra_pages: None,
            access: Default::default(),
            shmem: None,
        });
        Ok(FileId(self.files.len() as u32 - 1))
    }

    /// Records that frame `pfn` holds page `idx` of `file`, in both directions.
    pub(super) fn insert(&mut self, file: FileId, idx: u64, pfn: Pfn) {
        self.pages.insert((file, idx), pfn);
        self.owner.insert(pfn.0, (file, idx));
    }

    /// The file named `name`.
    pub(super) fn file_named(&self, name: &str) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| f.name == name)
            .map(|i| FileId(i as u32))
    }
}

impl Kernel {
    /// Drops a page-cache frame: unmaps it everywhere and writes it back if any
    /// mapping dirtied it. Counted as an eviction.
    pub(super) fn evict_file(&mut self, pfn: Pfn) -> bool {
        let dropped = self.uncache_page(pfn);
        self.log.counters.file_evictions += dropped as u64;
        dropped
    }

    /// [`Kernel::evict_file`] uncounted: the frame leaves the page cache.
    pub(super) fn uncache_page(&mut self, pfn: Pfn) -> bool {
        let Some(&(file, idx)) = self.cache.owner.get(&pfn.0) else {
            return false;
        };
        let mut dirty = self.cache.dirty.remove(&pfn.0);
        dirty |= self.unmap_everywhere(pfn);
        if dirty {
            self.write_back(pfn, file, idx);
        }
        self.cache.pages.remove(&(file, idx));
        self.cache.owner.remove(&pfn.0);
        self.cache.readahead.remove(&pfn.0);
        self.cache.folio_order.remove(&pfn.0);
        self.forget_read(pfn);
        self.forget_write(pfn);
        self.put_frame(pfn);
        true
    }

    /// `write` (or `pwrite`, `writev`, ...) of `len` bytes of `file` at byte `offset`
    /// by `pid`: the kernel copies them into the page cache and the pages are dirty,
    /// written back when reclaim drops them. A page not cached is made, charged to
    /// `pid`'s group, without reading it when the write covers it whole or it lies past
    /// the file's end (Linux's `write_begin`), and read first otherwise. The file grows
    /// to the write's end. Writing marks no page accessed, as Linux's buffered write
    /// does not. Returns the pages written (fewer when memory runs out: the write
    /// stops short, as a write can).
    pub fn write_file(&mut self, pid: Pid, file: FileId, offset: u64, len: u64) -> u64 {
        let ps = self.page_size();
        self.kmem_lookup(pid, file);
        // One call writes at most Linux's MAX_RW_COUNT.
        let len = len.min(super::MAX_RW_COUNT);
        let Some(end) = offset.checked_add(len).filter(|_| len > 0) else {
            return 0;
        };
        let Some(f) = self.cache.files.get(file.0 as usize) else {
            return 0;
        };
        let (old_len, shmem) = (f.len, f.shmem);
        self.grow_file(file, end);
        if let Some(obj) = shmem {
            self.tmpfs_hold(pid, obj);
            return self.shm_write(pid, obj, offset, len);
        }
        let mut written = 0;
        for idx in offset / ps..=(end - 1) / ps {
            let pfn = match self.cached_page(pid, file, idx) {
                Some(pfn) => pfn,
                None if (offset <= idx * ps && end - idx * ps >= ps) || idx * ps >= old_len => {
                    match self.alloc_frame_charged(pid, None, super::FrameKind::File, true) {
                        Ok(pfn) => {
                            self.zero_frame(pfn);
                            self.cache.insert(file, idx, pfn);
                            self.file_page_added(pfn, file, idx, false);
                            pfn
                        }
                        Err(_) => break,
                    }
                }
                None => match self.fill_cache_page(pid, false, file, idx, None, true) {
                    Ok(pfn) => pfn,
                    Err(_) => break,
                },
            };
            // A page being read is locked: the write waits for it.
            self.wait_read(pfn);
            self.cache.dirty.insert(pfn.0);
            written += 1;
        }
        self.log.counters.file_writes += written;
        self.log.counters.paging_cycles += written * self.config.write_page_cycles;
        written
    }

    /// Writes a page-cache page back into its file.
    pub(super) fn write_back(&mut self, pfn: Pfn, file: super::FileId, idx: u64) {
        let ps = self.page_size();
        let mut buf = vec![0u8; ps as usize];
        self.read_frame(pfn, &mut buf);
        if self.cache.files[file.0 as usize].host.is_some() {
            // Host files are read-only: nothing can have dirtied them.
            return;
        }
        let data = &mut self.cache.files[file.0 as usize].data;
        let from = (idx * ps) as usize;
        if from < data.len() {
            let to = (from + ps as usize).min(data.len());
            data[from..to].copy_from_slice(&buf[..to - from]);
        }
        self.log.counters.writebacks += 1;
        self.log.counters.io_busy_ns += self.config.storage.transfer_ns(ps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::test_support::*;

    #[test]
    fn page_runs_merge_split_and_answer() {
        let mut r = PageRuns::default();
        r.insert(10, 20);
        r.insert(0, 2);
        r.insert(5, 5);
        assert!(r.contains(0) && r.contains(1) && !r.contains(2) && r.contains(19));
        assert!(!r.contains(20) && !r.contains(5));
        // Touching and overlapping runs merge.
        r.insert(2, 4);
        r.insert(18, 25);
        r.insert(4, 10);
        assert_eq!(r.0, vec![(0, 25)]);
        r.remove(7);
        r.remove(0);
        r.remove(24);
        r.remove(30);
        assert_eq!(r.0, vec![(1, 7), (8, 24)]);
        assert!(!r.contains(7) && r.contains(8) && r.contains(6));
    }

    #[test]
    fn a_file_of_the_same_name_is_replaced_not_added() {
        let mut c = PageCache::default();
        let a = c.create_file("a", vec![1; 10]);
        let b = c.create_file("b", vec![2; 3]);
        assert_ne!(a, b);
        assert_eq!(c.create_file("a", vec![3; 5]), a);
        assert_eq!(c.files.len(), 2);
        assert_eq!(c.files[a.0 as usize].len, 5);
        assert_eq!(c.file_named("b"), Some(b));
        assert_eq!(c.file_named("c"), None);
    }

    #[test]
    fn a_page_past_the_end_reads_as_zeros() {
        let mut c = PageCache::default();
        let a = c.create_file("a", vec![7; 6]);
        let mut buf = [9u8; 8];
        assert!(c.files[a.0 as usize].read_page(4, &mut buf));
        assert_eq!(buf, [7, 7, 0, 0, 0, 0, 0, 0]);
        // Longer than its contents (a trace's file): the rest reads as zeros.
        c.files[a.0 as usize].len = 64;
        assert!(c.files[a.0 as usize].read_page(4, &mut buf));
        assert_eq!(buf, [7, 7, 0, 0, 0, 0, 0, 0]);
        assert!(c.files[a.0 as usize].read_page(16, &mut buf));
        assert_eq!(buf, [0; 8]);
    }

    #[test]
    fn file_pages_come_from_storage_once_then_from_the_cache() {
        let mut k = boot("x86-64");
        k.config.readahead_pages = 0;
        let f = k.create_file(
            "/data",
            (0..3 * 4096).map(|i| (i / 4096) as u8 + 1).collect(),
        );
        let a = spawn(&mut k);
        let b = spawn(&mut k);
        let map = |shared| MmapArgs {
            shared,
            source: MapSource::File(f, 4096),
            ..MmapArgs::anon(2 * 4096, Prot::RW)
        };
        let va = k.mmap(a, map(false)).unwrap();
        let reads = k.log.counters.file_reads;
        let mut x = [0u8; 1];
        k.read(a, va, &mut x).unwrap();
        assert_eq!(x, [2], "offset 4096 is the file's second page");
        assert_eq!(k.log.counters.file_reads, reads + 1);
        let vb = k.mmap(b, map(true)).unwrap();
        k.read(b, vb, &mut x).unwrap();
        assert_eq!(
            k.log.counters.file_reads,
            reads + 1,
            "second mapper hits the cache"
        );
        assert!(faults(&k, FaultKind::PageCache) >= 1);
        // A private write copies; the shared mapping and the cache keep the file's bytes.
        k.write(a, va, &[9]).unwrap();
        k.read(b, vb, &mut x).unwrap();
        assert_eq!(x, [2]);
        // A shared write is seen by a new mapper.
        k.write(b, vb, &[7]).unwrap();
        let c = spawn(&mut k);
        let vc = k.mmap(c, map(false)).unwrap();
        k.read(c, vc, &mut x).unwrap();
        assert_eq!(x, [7]);
    }

    #[test]
    fn written_pages_are_cached_dirty_and_read_only_where_the_write_is_partial() {
        let mut k = boot_small(2 << 20, 8 << 20, ReclaimPolicy::Clock);
        let pid = spawn(&mut k);
        // An existing file of 4 pages.
        let f = k.create_file("/log", vec![1u8; 4 * 4096]);
        let reads = k.log.counters.file_reads;
        // Whole pages 0 and 1: nothing read. Part of page 2 (inside the file): read
        // first. Part of page 5, past the end: nothing read. The file grows to 5 pages
        // and a bit.
        assert_eq!(k.write_file(pid, f, 0, 2 * 4096), 2);
        assert_eq!(k.log.counters.file_reads, reads);
        assert_eq!(k.write_file(pid, f, 2 * 4096 + 100, 50), 1);
        assert_eq!(k.log.counters.file_reads, reads + 1);
        assert_eq!(k.write_file(pid, f, 5 * 4096 + 10, 10), 1);
        assert_eq!(k.log.counters.file_reads, reads + 1);
        assert_eq!(k.file(f).unwrap().len, 5 * 4096 + 20);
        assert_eq!(k.log.counters.file_writes, 4);
        for idx in [0, 1, 2, 5] {
            let pfn = k.cache.pages[&(f, idx)];
            assert!(k.cache.dirty.contains(&pfn.0), "page {idx} is dirty");
        }
        assert!(!k.cache.pages.contains_key(&(f, 3)));
        // A read of what was written finds it cached: no storage.
        k.read_file(pid, f, 0, 3 * 4096);
        assert_eq!(k.log.counters.file_reads, reads + 1);
        // Pressure drops the written pages, writing each back.
        let writebacks = k.log.counters.writebacks;
        let a = k.mmap(pid, MmapArgs::anon(600 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, 600, |i| i);
        assert!(
            !k.cache.pages.contains_key(&(f, 0)),
            "dropped under pressure"
        );
        assert!(k.log.counters.writebacks >= writebacks + 4);
    }

    #[test]
    fn clean_file_pages_are_dropped_and_dirty_ones_written_back() {
        let mut k = boot_small(2 << 20, 8 << 20, ReclaimPolicy::Clock);
        let pages = 600u64;
        let f = k.create_file("/big", vec![7u8; (pages * 4096) as usize]);
        let pid = spawn(&mut k);
        let shared = MmapArgs {
            shared: true,
            source: MapSource::File(f, 0),
            ..MmapArgs::anon(pages * 4096, Prot::RW)
        };
        let m = k.mmap(pid, shared).unwrap();
        // Write one byte in the first page, then stream through the rest.
        k.write(pid, m, &[42]).unwrap();
        for i in 0..pages {
            let mut b = [0u8];
            k.read(pid, VirtAddr(m.0 + i * 4096), &mut b).unwrap();
            assert!(b[0] == 7 || (i == 0 && b[0] == 42));
        }
        // Anonymous pressure pushes the file pages out.
        let a = k.mmap(pid, MmapArgs::anon(400 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, 400, |i| i);
        assert!(k.log.counters.file_evictions > 0);
        assert!(k.log.counters.writebacks >= 1);
        assert_eq!(
            k.file(f).unwrap().data[0],
            42,
            "the dirty page reached the file"
        );
        let reads = k.log.counters.file_reads;
        let mut b = [0u8];
        k.read(pid, m, &mut b).unwrap();
        assert_eq!(b[0], 42);
        assert!(
            k.log.counters.file_reads > reads,
            "read back from the file: a major fault"
        );
    }

    #[test]
    fn host_files_are_really_read_and_stay_read_only() {
        let path = std::env::temp_dir().join(format!("vmsim-host-{}", std::process::id()));
        let bytes: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut k = boot("x86-64");
        let f = k.open_host_file(&path).unwrap();
        let pid = spawn(&mut k);
        let private = MmapArgs {
            source: MapSource::File(f, 0),
            ..MmapArgs::anon(4 * 4096, Prot::RW)
        };
        let a = k.mmap(pid, private).unwrap();
        let mut buf = vec![0u8; bytes.len()];
        k.read(pid, a, &mut buf).unwrap();
        assert_eq!(buf, bytes);
        let mut tail = [9u8; 4];
        k.read(pid, VirtAddr(a.0 + bytes.len() as u64), &mut tail)
            .unwrap();
        assert_eq!(
            tail, [0; 4],
            "past the end of the file, within its last page: zeros"
        );
        k.write(pid, a, b"private").unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "a private write stays private"
        );
        let shared_rw = MmapArgs {
            shared: true,
            ..private
        };
        assert_eq!(k.mmap(pid, shared_rw), Err(Errno::EACCES));
        let shared_ro = MmapArgs {
            shared: true,
            prot: Prot::READ,
            ..private
        };
        assert!(k.mmap(pid, shared_ro).is_ok());
        std::fs::remove_file(&path).ok();
    }
}
