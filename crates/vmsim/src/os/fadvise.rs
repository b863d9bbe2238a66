//! `posix_fadvise`: what a program tells the kernel about its coming use of a file,
//! taken as Linux 6.x's `generic_fadvise` takes it.
//!
//! - `normal`, `random` and `sequential` set how the file is read ahead: `sequential`
//!   doubles its window (`ra_pages` twice the device's), `random` turns off the
//!   readahead of `read` (a missing page reads just what the call asks for; Linux's
//!   `FMODE_RANDOM`), `normal` undoes either. Faults of a mapping of the file see the
//!   doubled window too; `random` leaves them alone (that is `madvise`'s
//!   `MADV_RANDOM`, kept in the VMA).
//! - `willneed` reads the range into the page cache now, as a `madvise(MADV_WILLNEED)`
//!   of a mapping of it does: at most a window's worth from the range's first page.
//! - `dontneed` drops the range's whole pages from the page cache where nothing maps
//!   them, no read or write of them is in flight and they are clean (no shadow is left:
//!   reading them again later is no refault). Dirty pages stay, for the flusher.
//! - `noreuse` does nothing (as on Linux 6.x).
//!
//! Linux keeps the readahead mode in each open file; vmsim keeps it per file, so advice
//! given through one descriptor holds for every reader of the file (docs/kernel.md).
//! A file on tmpfs takes no advice (its backing device has no readahead, and Linux
//! returns at once).

use super::{Errno, FileId, Kernel, Pid};
use crate::os::readahead::ReadaheadState;

/// `POSIX_FADV_NORMAL`.
pub const POSIX_FADV_NORMAL: u32 = 0;
/// `POSIX_FADV_RANDOM`.
pub const POSIX_FADV_RANDOM: u32 = 1;
/// `POSIX_FADV_SEQUENTIAL`.
pub const POSIX_FADV_SEQUENTIAL: u32 = 2;
/// `POSIX_FADV_WILLNEED`.
pub const POSIX_FADV_WILLNEED: u32 = 3;
/// `POSIX_FADV_DONTNEED`.
pub const POSIX_FADV_DONTNEED: u32 = 4;
/// `POSIX_FADV_NOREUSE`.
pub const POSIX_FADV_NOREUSE: u32 = 5;

/// How a file is read ahead, as `posix_fadvise` last set it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileAccess {
    /// The device's readahead.
    #[default]
    Normal,
    /// No readahead for `read`.
    Random,
    /// Twice the device's readahead.
    Sequential,
}

impl Kernel {
    /// `posix_fadvise(fd, offset, len, advice)` by `pid` on `file` (`len` 0: to the
    /// file's end); see the module's notes. `EINVAL` for advice Linux does not know.
    pub fn fadvise(
        &mut self,
        pid: Pid,
        file: FileId,
        offset: u64,
        len: u64,
        advice: u32,
    ) -> Result<(), Errno> {
        if advice > POSIX_FADV_NOREUSE {
            return Err(Errno::EINVAL);
        }
        let Some(f) = self.cache.files.get_mut(file.0 as usize) else {
            return Err(Errno::ENOENT);
        };
        if f.shmem.is_some() {
            return Ok(());
        }
        match advice {
            POSIX_FADV_NORMAL => f.access = FileAccess::Normal,
            POSIX_FADV_RANDOM => f.access = FileAccess::Random,
            POSIX_FADV_SEQUENTIAL => f.access = FileAccess::Sequential,
            POSIX_FADV_WILLNEED => self.fadvise_willneed(pid, file, offset, len),
            POSIX_FADV_DONTNEED => self.fadvise_dontneed(file, offset, len),
            _ => {}
        }
        Ok(())
    }

    /// The last page (inclusive) of a range of `len` bytes from `offset` (0: to the
    /// end), clamped to the file's, or `None` for an empty file.
    fn advised_last(&self, file: FileId, offset: u64, len: u64) -> Option<u64> {
        let ps = self.page_size();
        let pages = self.cache.files[file.0 as usize].len.div_ceil(ps);
        let end_byte = match len {
            0 => u64::MAX,
            _ => offset.saturating_add(len - 1),
        };
        pages.checked_sub(1).map(|last| (end_byte / ps).min(last))
    }

    /// `POSIX_FADV_WILLNEED`: reads the range's pages ahead of use (Linux's
    /// `force_page_cache_readahead`), single pages, none marked, at most the file's
    /// readahead window.
    fn fadvise_willneed(&mut self, pid: Pid, file: FileId, offset: u64, len: u64) {
        let first = offset / self.page_size();
        let Some(last) = self.advised_last(file, offset, len).filter(|&l| l >= first) else {
            return;
        };
        let window = ReadaheadState {
            start: first,
            size: (last - first + 1).min(self.ra_pages(file)),
            async_size: 0,
            ..self.cache.files[file.0 as usize].ra
        };
        if window.size > 0 {
            self.read_window(pid, file, window, 0);
        }
    }

    /// `POSIX_FADV_DONTNEED`: drops the clean, unmapped, idle pages wholly inside the
    /// range (Linux's `mapping_try_invalidate` from the first whole page to the last).
    fn fadvise_dontneed(&mut self, file: FileId, offset: u64, len: u64) {
        let ps = self.page_size();
        let first = offset.div_ceil(ps);
        let Some(mut last) = self.advised_last(file, offset, len) else {
            return;
        };
        // A range ending inside a page leaves that page.
        if len != 0
            && offset.saturating_add(len) % ps != 0
            && offset.saturating_add(len) / ps == last
        {
            let Some(l) = last.checked_sub(1) else {
                return;
            };
            last = l;
        }
        if first > last {
            return;
        }
        // The range's cached pages, in page order: looked up one by one, or, for a
        // range longer than the whole cache (a large file advised to its end), found
        // among the cached pages.
        let cached: Vec<(u64, crate::addr::Pfn)> = if last - first < self.cache.pages.len() as u64 {
            (first..=last)
                .filter_map(|i| self.cache.pages.get(&(file, i)).map(|&p| (i, p)))
                .collect()
        } else {
            let mut v: Vec<_> = self
                .cache
                .pages
                .iter()
                .filter(|((f, i), _)| *f == file && (first..=last).contains(i))
                .map(|(&(_, i), &p)| (i, p))
                .collect();
            v.sort_unstable();
            v
        };
        let now = self.io_now();
        for (_, pfn) in cached {
            if self.cache.dirty.contains(&pfn.0)
                || self.rmap.is_mapped(pfn)
                || self.reading_at(pfn, now)
                || self.writing_at(pfn, now)
                || self.reclaim.pinned.contains(&pfn)
            {
                continue;
            }
            self.uncache_page(pfn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::test_support::booted;

    /// A fresh 16 MiB file read with `read` in 32 KiB calls from its start, `calls`
    /// of them, after `advice`: the pages read from storage.
    fn pages_read(advice: u32, calls: u64) -> u64 {
        let (mut k, pid) = booted();
        let f = k.create_file("/data", vec![1; 16 << 20]);
        k.set_file_readahead(f, 128 << 10);
        k.fadvise(pid, f, 0, 0, advice).unwrap();
        for i in 0..calls {
            k.read_file(pid, f, i * (32 << 10), 32 << 10);
        }
        k.log.counters.file_reads
    }

    #[test]
    fn sequential_doubles_the_window_and_random_reads_only_what_is_asked() {
        let (normal, seq, random) = (
            pages_read(POSIX_FADV_NORMAL, 3),
            pages_read(POSIX_FADV_SEQUENTIAL, 3),
            pages_read(POSIX_FADV_RANDOM, 3),
        );
        assert_eq!(random, 24, "three reads of 8 pages, nothing ahead");
        assert!(seq > normal && normal > random, "{seq} {normal} {random}");
        // Read through, every advice reads each page once.
        for advice in [POSIX_FADV_NORMAL, POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM] {
            assert_eq!(pages_read(advice, 512), 4096, "advice {advice}");
        }
    }

    #[test]
    fn willneed_reads_ahead_and_dontneed_drops_clean_whole_pages() {
        let (mut k, pid) = booted();
        let f = k.create_file("/data", vec![1; 64 * 4096]);
        k.set_file_readahead(f, 128 << 10);
        k.fadvise(pid, f, 0, 16 * 4096, POSIX_FADV_WILLNEED)
            .unwrap();
        let cached = |k: &Kernel| {
            (0..64)
                .filter(|&i| k.cache.pages.contains_key(&(f, i)))
                .count()
        };
        assert_eq!(cached(&k), 16);
        // Pages still being read stay.
        k.fadvise(pid, f, 0, 0, POSIX_FADV_DONTNEED).unwrap();
        assert_eq!(cached(&k), 16);
        for i in 0..16 {
            let pfn = k.cache.pages[&(f, i)];
            k.wait_read(pfn);
        }
        // Bytes 100 to 5 pages + 100: whole pages 1 to 4 go; 0 and 5 stay.
        k.fadvise(pid, f, 100, 5 * 4096, POSIX_FADV_DONTNEED)
            .unwrap();
        assert_eq!(cached(&k), 12);
        assert!(k.cache.pages.contains_key(&(f, 0)) && k.cache.pages.contains_key(&(f, 5)));
        // A dirty page stays; length 0 reaches the end.
        k.write_file(pid, f, 6 * 4096, 4096);
        k.fadvise(pid, f, 0, 0, POSIX_FADV_DONTNEED).unwrap();
        assert_eq!(cached(&k), 1);
        assert_eq!(k.fadvise(pid, f, 0, 0, 6), Err(Errno::EINVAL));
    }
}
