//! The page cache: the files of the simulated file system (and real files of the host
//! opened read-only), and the frames that hold their pages, each page once however many
//! processes map it. Dirty pages are remembered until reclaim writes them back.

use super::{FileId, Kernel, Pid};
use crate::addr::Pfn;
use crate::hw::{Flags, TlbFlush};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;

/// A file of the simulated file system.
#[derive(Debug)]
pub struct File {
    /// Its name.
    pub name: String,
    /// Its contents (for a simulated file).
    pub data: Vec<u8>,
    /// A real file of the host, read page by page as the page cache fills (read-only).
    pub host: Option<std::fs::File>,
    /// Its length in bytes.
    pub len: u64,
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
                buf[..n].copy_from_slice(&self.data[at as usize..at as usize + n]);
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
        });
        Ok(FileId(self.files.len() as u32 - 1))
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
    /// mapping dirtied it.
    pub(super) fn evict_file(&mut self, pfn: Pfn) -> bool {
        let paging = self.machine.spec.paging;
        let Some(&(file, idx)) = self.cache.owner.get(&pfn.0) else {
            return false;
        };
        let mut dirty = self.cache.dirty.remove(&pfn.0);
        let mut pending: Vec<(Pid, TlbFlush)> = Vec::new();
        for (pid, va, pte) in self.rmap.of(pfn) {
            let Ok(mm) = self.mm(pid) else { continue };
            let pt = mm.pt;
            // Anything else there (changed since the reverse map recorded it) is
            // left alone, but the frame's mapping is still dropped below.
            if let Ok((flags, flush)) =
                pt.unmap_frame_at(&paging, &mut self.machine.ram, pte, va, pfn)
            {
                dirty |= flags.contains(Flags::DIRTY) && flags.contains(Flags::WRITE);
                pending.push((pid, flush));
            }
            self.uncount(pid, pfn);
            self.rmap.remove(pfn, pid, va);
            self.put_frame(pfn);
        }
        for (pid, flush) in pending {
            self.flush_for(pid, flush);
        }
        if dirty {
            self.write_back(pfn, file, idx);
        }
        self.cache.pages.remove(&(file, idx));
        self.cache.owner.remove(&pfn.0);
        self.put_frame(pfn);
        self.log.counters.file_evictions += 1;
        true
    }

    /// Writes a page-cache page back into its file.
    fn write_back(&mut self, pfn: Pfn, file: super::FileId, idx: u64) {
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
    }
}
