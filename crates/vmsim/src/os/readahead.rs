//! File readahead on faults of file mappings, as Linux 6.x's `filemap_fault` does it,
//! and on `read(2)`, as its `filemap_read` does (mm/filemap.c, mm/readahead.c); and
//! which files start in the page cache.
//!
//! - **A miss** (the page is not cached) is a major fault. Unless the file misses far
//!   more than it hits, the fault reads around it: the window of `readahead_pages`
//!   (`read_ahead_kb` / page size: 32) starting half a window before the page, the
//!   page a quarter window from its end marked *readahead* (`do_sync_mmap_readahead`).
//!   In an executable mapping (`VM_EXEC`) the window starts at the page, ends at the
//!   mapping's end at most, and is not marked (Linux 6.16 on: code is read at
//!   random). The fault waits for its page's request (`inflight.rs`).
//! - **A hit on a marked page** (the reader has reached the window's last quarter)
//!   reads the next window ahead of it, marked at its first page, so a sequential
//!   reader stays ahead of storage (`do_async_mmap_readahead`, `page_cache_async_ra`).
//! - **The miss counter** (`mmap_miss`) counts misses up and hits (and pages mapped by
//!   fault-around) down; past 100 the file is read at random and read-around stops.
//! - **Advice** (`madvise`, [`AccessAdvice`]): in a mapping advised `MADV_RANDOM` a miss
//!   reads its page alone (in an executable mapping, code's window still) and a
//!   marked page reads nothing ahead (neither touches the miss counter); in one advised `MADV_SEQUENTIAL` a miss reads a window from the
//!   page on as a `read` would (`page_cache_sync_ra`), whatever the miss counter says.
//!   Fault-around maps cached pages whatever the advice.
//! - **Folios.** Readahead fills the cache in aligned folios of `2^order` pages, as
//!   Linux 6.18 does on file systems with large folios (ext4, xfs): read-around and
//!   a `read`'s first window in single pages, and each window read ahead of a
//!   sequential reader in folios two orders larger than the marked one's, up to the
//!   window's size (32 pages) and the PMD's order. The mark is the folio's. Two-list
//!   reclaim takes a folio whole (`reclaim/two_list.rs`).
//! - Fault-around does not map a marked folio, so the reader faults on it and the next
//!   window is read; it maps a larger folio whole (inside the VMA and the 2 MiB region
//!   of the fault).
//!
//! **The page cache at start.** Where the trace says which pages of a file were
//! cached when it was recorded (`file-cached`, taken when the program first opened or
//! mapped the file: after `drop_caches`, only what some running process maps), those
//! are found in the cache without storage, each until it is first used (charged to
//! the root group, as a page first read by someone else is); the others are read
//! from storage, charged to the reader's group. A file without such a record starts
//! cached if it is mapped executable (a program or a shared library, which the shell
//! or every other process using it has cached already), else cold; all files start
//! warm under [`KernelConfig::page_cache_warm`](super::KernelConfig::page_cache_warm).

use super::fault::{FaultKind, Violation};
use super::frames::FrameKind;
use super::{FileId, GroupId, Kernel, Pid};
use crate::addr::{Pfn, VirtAddr};

/// A mapping's advice on how it will be read (`madvise`), which decides its faults'
/// readahead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessAdvice {
    /// `MADV_NORMAL`: read-around on a miss, the next window on a marked page, and
    /// read-around stops once the file misses far more than it hits.
    #[default]
    Normal,
    /// `MADV_RANDOM` (`VM_RAND_READ`): a miss reads its page alone (in an executable
    /// mapping, code's window all the same), and nothing is read ahead.
    Random,
    /// `MADV_SEQUENTIAL` (`VM_SEQ_READ`): a miss reads a window from the page on, as
    /// a `read` there would (`page_cache_sync_ra`), whatever the misses so far.
    Sequential,
}

/// Bytes an exec reads of the program image before it maps it (Linux's
/// `BINPRM_BUF_SIZE`).
pub const BINPRM_BUF_SIZE: u64 = 256;

/// Misses past which read-around stops (Linux's `MMAP_LOTSAMISS`).
const LOTS_OF_MISSES: u32 = 100;

/// One file's readahead state (Linux's `file_ra_state`, one per file here rather than
/// per open file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadaheadState {
    /// First page of the current window.
    pub start: u64,
    /// Pages in it.
    pub size: u64,
    /// Pages at its end whose first is marked: reaching it reads the next window.
    pub async_size: u64,
    /// Misses less hits (`mmap_miss`).
    pub mmap_miss: u32,
    /// Where the last `read` ended (`prev_pos`): the byte after the last it copied;
    /// 0: none yet.
    pub prev_pos: u64,
    /// The folio order the last window was read in (`ra->order`): the next window
    /// asynchronous readahead reads goes two orders up from it.
    pub order: u32,
}

/// Linux's `get_init_ra_size`: the first window for a read of `req` pages.
fn first_window(req: u64, max: u64) -> u64 {
    let size = req.next_power_of_two();
    if size <= max / 32 {
        size * 4
    } else if size <= max / 4 {
        size * 2
    } else {
        max
    }
}

/// Folios a `read` gathers and holds before it copies them (Linux's
/// `PAGEVEC_SIZE`, the size of a `folio_batch`).
const READ_BATCH: u32 = 31;

/// The first page of the aligned folio of `order` holding page `idx`.
pub(super) fn folio_start(idx: u64, order: u32) -> u64 {
    idx & !((1u64 << order) - 1)
}

/// Largest folio order readahead makes (a PMD's: 2 MiB of 4 KiB pages).
const MAX_FOLIO_ORDER: u32 = 9;

/// The largest order whose folio fits in `pages` (`ilog2`), 0 for none.
fn order_within(pages: u64) -> u32 {
    pages.checked_ilog2().unwrap_or(0)
}

/// Linux's `get_next_ra_size`: the next window after one of `cur` pages.
fn next_window(cur: u64, max: u64) -> u64 {
    if cur < max / 16 {
        4 * cur
    } else if cur <= max / 2 {
        2 * cur
    } else {
        max
    }
}

/// Where a read's bytes go in the program's memory, and how far they have got.
struct CopyOut {
    /// The buffer's first byte.
    buf: u64,
    /// The byte after its last.
    end: u64,
    /// The first byte not yet stored.
    next: u64,
}

impl CopyOut {
    fn new(buf: u64, len: u64) -> CopyOut {
        CopyOut {
            buf,
            end: buf.saturating_add(len),
            next: buf,
        }
    }

    /// Stores the read's first `done` bytes that are not stored yet: one store to each
    /// page they reach (as the recorder gives a copy's stores), each page marked as
    /// holding bytes other than zeros. A store that fails (the buffer unmapped since
    /// the program read) stores nothing.
    fn upto(&mut self, k: &mut Kernel, pid: Pid, done: u64) {
        let ps = k.page_size();
        let to = self.buf.saturating_add(done).min(self.end);
        while self.next < to {
            let va = VirtAddr(self.next);
            if k.access(pid, va, crate::hw::AccessKind::Write).is_ok() {
                k.mark_nonzero(pid, va);
            }
            self.next = (self.next | (ps - 1)).saturating_add(1);
        }
    }
}

impl Kernel {
    /// The page-cache frame holding page `idx` of `file`, if cached. A page of a warm
    /// file (see the module's notes) is put in the cache without storage, charged to
    /// the root group; `None` if no frame can be had for it without the OOM killer
    /// (fault-around and `read` ask for many: none of them is worth a process).
    pub(super) fn cached_page(&mut self, pid: Pid, file: FileId, idx: u64) -> Option<Pfn> {
        if let Some(&pfn) = self.cache.pages.get(&(file, idx)) {
            return Some(pfn);
        }
        if !self.warm_at_start(file, Some(idx)) {
            return None;
        }
        let pfn = self
            .fill_cache_page(pid, true, file, idx, Some(0), false)
            .ok()?;
        if let Some(runs) = &mut self.cache.files[file.0 as usize].cached_at_start {
            // Cached at start, and now found: once evicted it is read from storage.
            runs.remove(idx);
        }
        Some(pfn)
    }

    /// Whether page `idx` of `file` (with `None`, any page of it) was in the page
    /// cache at the start (see the module's notes): every page with `--page-cache warm`, those a `file-cached`
    /// record names, else all of a file mapped executable.
    pub(super) fn warm_at_start(&self, file: FileId, idx: Option<u64>) -> bool {
        let f = &self.cache.files[file.0 as usize];
        self.config.page_cache_warm
            || match &f.cached_at_start {
                Some(runs) => idx.map_or(!runs.is_empty(), |i| runs.contains(i)),
                None => f.executable,
            }
    }

    /// Records that bytes `offset..offset + len` of `file` (rounded out to pages) were
    /// in the page cache when the program was recorded, before it used the file; with
    /// `len` 0, only that the file's cached pages were recorded (the trace's
    /// `file-cached`). Pages no such record names start out of the cache.
    pub fn set_cached_at_start(&mut self, file: FileId, offset: u64, len: u64) {
        let ps = self.page_size();
        let Some(f) = self.cache.files.get_mut(file.0 as usize) else {
            return;
        };
        let end = offset.saturating_add(len).div_ceil(ps);
        f.cached_at_start
            .get_or_insert_with(Default::default)
            .insert(offset / ps, end);
    }

    /// `pid` execs the program image in `file`: Linux's `prepare_binprm` reads its
    /// first bytes ([`BINPRM_BUF_SIZE`]) through the page cache, as a `read` of them
    /// does. The recorder looks at what is cached of an image after its own read of
    /// those bytes. Where that is just the pages such a read brings in (its first
    /// window, from page 0), they are taken as the exec's: read now, from storage,
    /// charged to `pid`'s group, with the window's readahead mark. An image found
    /// cached further was cached before the exec (run before, or mapped by another
    /// process), and nothing is read.
    pub fn exec_read(&mut self, pid: Pid, file: FileId) {
        let ps = self.page_size();
        let max = self.ra_pages(file);
        let Some(f) = self.cache.files.get_mut(file.0 as usize) else {
            return;
        };
        let len = f.len;
        let window = first_window(1, max).min(len.div_ceil(ps));
        match &mut f.cached_at_start {
            Some(runs) if max > 0 && window > 0 && runs.is_just(0, window) => {
                *runs = Default::default();
            }
            _ => return,
        }
        self.read_file(pid, file, 0, BINPRM_BUF_SIZE.min(len));
    }

    /// Page `idx` of `file` for a fault (Linux's `filemap_fault`): from the cache
    /// (minor; a marked page reads the next window ahead) or read from storage with
    /// read-around (major). True with a page from the cache whose read the fault
    /// waited for (Linux retries such a fault).
    pub(super) fn filemap_fault(
        &mut self,
        pid: Pid,
        file: FileId,
        idx: u64,
        advice: AccessAdvice,
        exec: Option<std::ops::Range<u64>>,
    ) -> Result<(Pfn, FaultKind, bool), Violation> {
        if let Some(pfn) = self.cached_page(pid, file, idx) {
            // `do_async_mmap_readahead`: nothing for a mapping read at random.
            if advice != AccessAdvice::Random {
                let ra = &mut self.cache.files[file.0 as usize].ra;
                ra.mmap_miss = ra.mmap_miss.saturating_sub(1);
                // A fault asks for the file's whole readahead (`ra_pages`).
                let req = self.ra_pages(file);
                self.hit_mark(pid, file, idx, pfn, req);
            }
            // Its read still in flight: the fault waits, and is minor (Linux drops the
            // VMA's lock to wait and retries under mmap's lock without
            // `FAULT_FLAG_TRIED`, since the first try found the folio in the cache).
            let waited = self.wait_read(pfn);
            return Ok((pfn, FaultKind::PageCache, waited));
        }
        match advice {
            // An executable mapping reads ahead whatever its advice: its window is
            // already meant for code's random access.
            AccessAdvice::Normal => self.sync_readahead(pid, file, idx, exec),
            AccessAdvice::Random if exec.is_some() => self.sync_readahead(pid, file, idx, exec),
            AccessAdvice::Random => {}
            AccessAdvice::Sequential => {
                let max = self.ra_pages(file);
                if max > 0 {
                    self.read_miss(pid, file, idx, max);
                }
            }
        }
        let pfn = match self.cache.pages.get(&(file, idx)) {
            Some(&pfn) => pfn,
            // Read-around was off, or found no room: the page alone.
            None => self.fill_cache_page(pid, false, file, idx, None, false)?,
        };
        // The fault waits for its page's read: behind the reads the device had queued,
        // and behind the pages before it in its window's requests.
        self.wait_read(pfn);
        self.own_read = super::OwnRead::Waited;
        Ok((pfn, FaultKind::FileRead, false))
    }

    /// `madvise(MADV_WILLNEED)` of `len` bytes of `pid` from `addr`: the file pages the
    /// range maps are read into the page cache ahead of use, as Linux's
    /// `force_page_cache_ra` does for each file VMA: at most the file's readahead
    /// (`max(io_pages, ra_pages)`; vmsim knows only the readahead) from the range's
    /// first page, in single pages, none marked, the cached ones skipped. Nothing is
    /// mapped and no fault is taken. Anonymous parts are left alone (Linux reads
    /// their swapped-out pages back ahead). The range must be mapped throughout.
    pub fn madvise_willneed(
        &mut self,
        pid: Pid,
        addr: crate::addr::VirtAddr,
        len: u64,
    ) -> Result<(), super::Errno> {
        let ps = self.page_size();
        let len = self.round_len(len)?;
        let end = self.check_range(addr, len)?;
        for vma in self.mapped_throughout(pid, addr, end)? {
            let super::vma::Backing::File { file, offset } = vma.backing else {
                continue;
            };
            let from = vma.start.max(addr);
            let pages = (vma.end.min(end).0 - from.0) / ps;
            let window = ReadaheadState {
                start: vma.object_page(offset, from, ps),
                size: pages.min(self.ra_pages(file)),
                async_size: 0,
                ..self.cache.files[file.0 as usize].ra
            };
            if window.size > 0 {
                self.read_window(pid, file, window, 0);
            }
        }
        Ok(())
    }

    /// `read(2)` of `len` bytes of `file` from byte `offset` by `pid`, as Linux's
    /// `filemap_read` does it: the pages come from the page cache, a missing one is
    /// read with readahead (`page_cache_sync_ra`: a read at the start of the file or
    /// just after the last one opens a window, a random one reads only what it asks
    /// for), a marked one reads the next window, and each folio is marked accessed
    /// once (not the one the last read ended in, if this read goes on in it). Nothing
    /// is mapped and no fault is taken; the pages are charged to `pid`'s group. The
    /// stores into the program's buffer are the caller's to make (see
    /// [`Kernel::read_file_to`]).
    pub fn read_file(&mut self, pid: Pid, file: FileId, offset: u64, len: u64) {
        self.read_file_to(pid, file, offset, len, None);
    }

    /// [`Kernel::read_file`] into the program's buffer at `buf`: each page copied is
    /// stored into the buffer as it is copied, a store of the program (it faults as
    /// `copy_to_user` does, in the middle of the read, so a buffer page that went to
    /// swap comes back, and may push out pages the read has yet to copy), and counts as
    /// holding bytes other than zeros. The bytes past what the page cache holds (a
    /// file vmsim knows no length of, such as one in /proc), and those of a tmpfs
    /// file, are stored at the end.
    pub fn read_file_to(
        &mut self,
        pid: Pid,
        file: FileId,
        offset: u64,
        len: u64,
        buf: Option<VirtAddr>,
    ) {
        let mut out = buf.map(|b| CopyOut::new(b.0, len));
        self.read_pages(pid, file, offset, len, &mut out);
        if let Some(out) = &mut out {
            out.upto(self, pid, len);
        }
    }

    /// The page-cache side of [`Kernel::read_file_to`]: `out`, if any, gets each
    /// page's bytes as they are copied.
    fn read_pages(
        &mut self,
        pid: Pid,
        file: FileId,
        offset: u64,
        len: u64,
        out: &mut Option<CopyOut>,
    ) {
        let ps = self.page_size();
        self.kmem_lookup(pid, file);
        // One call reads at most Linux's MAX_RW_COUNT.
        let len = len.min(super::MAX_RW_COUNT);
        if let Some(obj) = self.cache.files[file.0 as usize].shmem {
            self.tmpfs_hold(pid, obj);
            return self.shm_read(pid, obj, offset, len);
        }
        let size = self.cache.files[file.0 as usize].len;
        let pages = size.div_ceil(ps);
        let first = offset / ps;
        if len == 0 || offset >= size {
            return;
        }
        let last = ((offset + len - 1) / ps).min(pages - 1);
        // The byte last used, from the last read on: a read marks each folio it copies
        // from once, but not the one it goes on in (`filemap_read`'s `pos_same_folio`),
        // so reads of a few bytes, or of blocks that straddle pages, mark each folio
        // once, as one long read would.
        let mut used = self.cache.files[file.0 as usize].ra.prev_pos.checked_sub(1);
        let mut idx = first;
        while idx <= last {
            // The folios to copy next (`filemap_get_read_batch`), held while they are
            // copied, so reclaim cannot take them from under the copy.
            let held = self.reclaim.pinned.len();
            let end = self.read_batch(pid, file, idx, last);
            if end > idx {
                // Its last folio marked: the next window is read before the copy; one
                // still being read is waited for.
                // (`filemap_readahead` asks from the folio's first page on.)
                let tail = self.reclaim.pinned[self.reclaim.pinned.len() - 1];
                let head = folio_start(end - 1, self.folio_of(tail));
                self.hit_mark(pid, file, head, tail, last + 1 - head);
                for i in idx..end {
                    let pfn = self.reclaim.pinned[held + (i - idx) as usize];
                    self.wait_read(pfn);
                    let at = (i * ps).max(offset);
                    // Copied to the reader's buffer (`copy_to_user`): `copy_cycles` a
                    // page, stored into the buffer as it goes.
                    let copied = ((i + 1) * ps).min(offset + len).min(size) - at;
                    self.log.counters.paging_cycles += self.config.copy_cycles * copied / ps;
                    let shift = ps.trailing_zeros() + self.folio_of(pfn);
                    if used.is_none_or(|u| u >> shift != at >> shift) {
                        self.mark_accessed(pfn);
                    }
                    used = Some(at);
                    if let Some(out) = out {
                        out.upto(self, pid, at + copied - offset);
                    }
                }
                self.reclaim.pinned.truncate(held);
                idx = end;
                continue;
            }
            self.read_miss(pid, file, idx, last + 1 - idx);
            if !self.cache.pages.contains_key(&(file, idx))
                && self
                    .fill_cache_page(pid, false, file, idx, None, false)
                    .is_err()
            {
                // No memory: the read stops short, as a read can.
                break;
            }
        }
        self.cache.files[file.0 as usize].ra.prev_pos = (offset + len).min(size);
    }

    /// Gathers the pages a `read` copies next from page `idx` of `file` (up to `last`),
    /// as Linux's `filemap_get_read_batch` does: up to [`READ_BATCH`] folios, each
    /// cached, ending with one still being read or one marked for readahead. Their
    /// frames are pushed on `reclaim.pinned`, held until the caller lets them go;
    /// returns the page after the last gathered (`idx` for none).
    fn read_batch(&mut self, pid: Pid, file: FileId, idx: u64, last: u64) -> u64 {
        let mut j = idx;
        let mut folios = 0;
        // The folio gathered last ends the batch.
        let mut ends = false;
        while j <= last {
            let Some(pfn) = self.cached_page(pid, file, j) else {
                break;
            };
            let head = folio_start(j, self.folio_of(pfn));
            if j == idx || j == head {
                if ends || folios == READ_BATCH {
                    break;
                }
                folios += 1;
            }
            self.reclaim.pinned.push(pfn);
            ends |= self.reading(pfn) || self.readahead_marked(pfn);
            j += 1;
        }
        j
    }

    /// A fault or a `read` found page `idx` of `file` cached in `pfn`, `req` pages
    /// asked for from it: if its folio is marked, the mark goes and the next window is
    /// read, `pfn` held meanwhile (finding frames for the window may reclaim, but not
    /// the page being used).
    fn hit_mark(&mut self, pid: Pid, file: FileId, idx: u64, pfn: Pfn, req: u64) {
        if !self.readahead_marked(pfn) {
            return;
        }
        let order = self.folio_of(pfn);
        self.unmark_folio(file, idx, order);
        self.reclaim.pinned.push(pfn);
        self.async_readahead(pid, file, idx, order, req);
        self.reclaim.pinned.pop();
    }

    /// A `read` missed page `idx` with `req` pages still to go (`page_cache_sync_ra`).
    fn read_miss(&mut self, pid: Pid, file: FileId, idx: u64, req: u64) {
        let max = self.ra_pages(file);
        let ra = self.cache.files[file.0 as usize].ra;
        // Sequential: at the page where the last read ended, or the one after it.
        let prev = ra.prev_pos / self.page_size();
        let after_last = ra.prev_pos > 0 && (prev..=prev + 1).contains(&idx);
        let random = self.cache.files[file.0 as usize].access == super::fadvise::FileAccess::Random;
        let as_asked = ReadaheadState {
            start: idx,
            size: req,
            async_size: 0,
            ..ra
        };
        if max == 0 || random {
            // Readahead off, or `POSIX_FADV_RANDOM`: just what it asks for, state
            // untouched.
            self.read_window(pid, file, as_asked, 0);
            return;
        }
        let new = if idx == 0 || req > max || after_last {
            let size = first_window(req, max);
            ReadaheadState {
                start: idx,
                size,
                async_size: if size > req { size - req } else { size / 2 },
                order: 0,
                ..ra
            }
        } else {
            // Not where the last read ended: the pages cached just before the miss
            // tell a stream whose window was lost (reclaimed before it was copied)
            // from a random read.
            let (run, from_start) = self.cached_run_before(file, idx, max);
            if run <= req {
                // A small random read: just what it asks for, state untouched.
                self.read_window(pid, file, as_asked, 0);
                return;
            }
            // A stream: a window as long as the run behind it and the read together
            // (twice the run if the file is cached from its start), marked at its
            // last page.
            let run = if from_start { run * 2 } else { run };
            ReadaheadState {
                start: idx,
                size: (run + req).min(max),
                async_size: 1,
                order: 0,
                ..ra
            }
        };
        self.cache.files[file.0 as usize].ra = new;
        self.read_window(pid, file, new, 0);
    }

    /// How many pages of `file` just before page `idx` are cached, looking back at most
    /// `max` pages (Linux's `page_cache_prev_miss` from `idx - 1`, as
    /// `page_cache_sync_ra` counts `contig_count`): the run down to the first page not
    /// cached, `max` if there is none that far back, and `true` when the run goes back
    /// to the file's first page (within `max`).
    fn cached_run_before(&self, file: FileId, idx: u64, max: u64) -> (u64, bool) {
        let low = idx.saturating_sub(max);
        let mut run = 0;
        for (&(_, i), _) in self.cache.pages.range((file, low)..(file, idx)).rev() {
            if i + 1 + run != idx {
                break;
            }
            run += 1;
        }
        (run, run == idx)
    }

    /// Fault-around found `n` pages of `file` in the page cache that count as hits
    /// (see `fault_around`): as many hits for its miss count.
    pub(super) fn note_mapped_around(&mut self, file: FileId, n: u64) {
        let ra = &mut self.cache.files[file.0 as usize].ra;
        ra.mmap_miss = ra.mmap_miss.saturating_sub(n.min(u32::MAX as u64) as u32);
    }

    /// Whether page-cache frame `pfn`, found by fault-around, is read and not marked:
    /// one fault-around may map, and (unless of the working set) a hit against its
    /// file's misses (Linux's `filemap_map_pages`).
    pub(super) fn ready_around(&self, pfn: Pfn) -> bool {
        !self.readahead_marked(pfn) && !self.reading(pfn)
    }

    /// Whether page-cache frame `pfn` is marked: fault-around leaves it for the
    /// reader's fault.
    pub(super) fn readahead_marked(&self, pfn: Pfn) -> bool {
        self.cache.readahead.contains(&pfn.0)
    }

    /// Most pages read ahead at once for `file`: its device's readahead where the
    /// trace recorded it (and `--readahead` did not fix one for all), else the
    /// kernel's.
    pub(super) fn ra_pages(&self, file: FileId) -> u64 {
        let f = &self.cache.files[file.0 as usize];
        let pages = match f.ra_pages {
            Some(n) if !self.config.readahead_fixed => n,
            _ => self.config.readahead_pages,
        };
        // `POSIX_FADV_SEQUENTIAL` doubles it (`fadvise.rs`).
        if f.access == super::fadvise::FileAccess::Sequential {
            pages.saturating_mul(2)
        } else {
            pages
        }
    }

    /// Sets the readahead of `file`'s device, in bytes (rounded down to pages).
    pub fn set_file_readahead(&mut self, file: FileId, bytes: u64) {
        let ps = self.page_size();
        if let Some(f) = self.cache.files.get_mut(file.0 as usize) {
            f.ra_pages = Some(bytes / ps);
        }
    }

    /// The order of the folio page-cache frame `pfn` belongs to.
    pub(super) fn folio_of(&self, pfn: Pfn) -> u32 {
        self.cache.folio_order.get(&pfn.0).map_or(0, |&o| o as u32)
    }

    /// How much of a page's kernel work (`page_in_cycles`, `page_out_cycles`) a page
    /// of `file` in a folio of `order` costs, as a shift: most of what Linux does to
    /// read a page in or evict it is done once a folio (an allocation, a charge, one
    /// cache and one list entry, one segment of a request), so a page of an order-`o`
    /// folio of a file no process has mapped costs `1 / 2^o` of it. A page of a
    /// mapped file costs a whole page's work: page tables are set and cleared one
    /// entry at a time, and the costs were fitted on mapped files.
    fn cost_shift_in(&self, file: FileId, order: u32) -> u32 {
        if self.cache.files[file.0 as usize].mapped {
            0
        } else {
            order
        }
    }

    /// [`Kernel::cost_shift_in`] for frame `pfn`: 0 (a whole page's work) for a frame
    /// outside the page cache, found without a lookup for any but a file's.
    pub(super) fn cost_shift(&self, pfn: Pfn) -> u32 {
        if self.frames.kind(pfn) != FrameKind::File {
            return 0;
        }
        self.cache
            .owner
            .get(&pfn.0)
            .map_or(0, |&(file, _)| self.cost_shift_in(file, self.folio_of(pfn)))
    }

    /// Appends the frames of the folio page-cache frame `pfn` belongs to, `pfn` first
    /// and the other cached pages of its aligned run after it; `pfn` alone when it is
    /// no part of a larger folio.
    pub(super) fn folio_frames(&self, pfn: Pfn, out: &mut Vec<Pfn>) {
        out.push(pfn);
        let order = self.folio_of(pfn);
        let Some(&(file, idx)) = self.cache.owner.get(&pfn.0).filter(|_| order > 0) else {
            return;
        };
        let head = folio_start(idx, order);
        let run = self
            .cache
            .pages
            .range((file, head)..(file, head + (1 << order)));
        out.extend(
            run.map(|(_, &p)| p)
                .filter(|&p| p != pfn && self.folio_of(p) == order),
        );
    }

    /// Clears the readahead mark of the folio of `order` holding page `idx`.
    fn unmark_folio(&mut self, file: FileId, idx: u64, order: u32) {
        let head = folio_start(idx, order);
        for i in head..head + (1 << order) {
            if let Some(pfn) = self.cache.pages.get(&(file, i)) {
                self.cache.readahead.remove(&pfn.0);
            }
        }
    }

    /// Read-around for a miss on page `idx` (`do_sync_mmap_readahead`). In a mapping
    /// that is executable, `exec` holds the pages of the file it maps: Linux 6.16 and
    /// later read from the page on, up to a window or the mapping's end, and mark
    /// nothing (code is read at random, so nothing is read ahead of it later).
    fn sync_readahead(
        &mut self,
        pid: Pid,
        file: FileId,
        idx: u64,
        exec: Option<std::ops::Range<u64>>,
    ) {
        let max = self.ra_pages(file);
        if max == 0 {
            return;
        }
        let ra = &mut self.cache.files[file.0 as usize].ra;
        if ra.mmap_miss < LOTS_OF_MISSES * 10 {
            ra.mmap_miss += 1;
        }
        if ra.mmap_miss > LOTS_OF_MISSES {
            return;
        }
        *ra = match exec {
            Some(span) => {
                let start = idx.max(span.start);
                ReadaheadState {
                    start,
                    size: start
                        .saturating_add(max)
                        .min(span.end)
                        .saturating_sub(start),
                    async_size: 0,
                    order: 0,
                    ..*ra
                }
            }
            None => ReadaheadState {
                start: idx.saturating_sub(max / 2),
                size: max,
                async_size: max / 4,
                order: 0,
                ..*ra
            },
        };
        let ra = *ra;
        // Single pages: Linux 6.18's read-around starts its folios at order 0.
        self.read_window(pid, file, ra, 0);
    }

    /// The reader reached marked page `idx`, in a folio of `order`, asking for `req`
    /// pages: the next window (`page_cache_async_ra`), in folios two orders larger than
    /// the last window's.
    fn async_readahead(&mut self, pid: Pid, file: FileId, idx: u64, order: u32, req: u64) {
        let max = self.ra_pages(file);
        if max == 0 {
            return;
        }
        let mut ra = self.cache.files[file.0 as usize].ra;
        let expected = folio_start(ra.start + ra.size - ra.async_size, order);
        if folio_start(idx, order) == expected {
            // The expected mark: a sequential reader; push the window on.
            ra.start += ra.size;
            ra.size = ra.size.max(next_window(ra.size, max));
        } else {
            // A mark without the state that set it (interleaved readers): the cached
            // run after the page is the old lookahead; ramp up from it and the request.
            let Some(miss) = (idx + 1..=idx + max).find(|&i| !self.page_present(file, i)) else {
                return;
            };
            ra.start = miss;
            ra.size = next_window(miss - idx + req, max);
        }
        // Two orders up from the last window's (`ra->order`), not from the marked
        // folio's: a window that starts misaligned begins with smaller folios, but the
        // next one still grows.
        let grown = ra.order + 2;
        // The window ends on a boundary of that order, uncapped (Linux 6.18: after a
        // window of 896 pages from page 640, the next asks for order 10 and 1,792
        // pages from page 1,536, and reads 1,536 of them, up to page 3,072).
        let end = folio_start(ra.start + ra.size, grown.min(63));
        if end > ra.start {
            ra.size = end - ra.start;
        }
        ra.async_size = ra.size;
        let order = grown.min(order_within(ra.size)).min(MAX_FOLIO_ORDER);
        ra.order = order;
        self.cache.files[file.0 as usize].ra = ra;
        self.read_window(pid, file, ra, order);
    }

    /// Whether page `idx` of `file` is cached (a warm file's always is).
    fn page_present(&self, file: FileId, idx: u64) -> bool {
        self.warm_at_start(file, Some(idx)) || self.cache.pages.contains_key(&(file, idx))
    }

    /// Reads the window `ra` into the cache in aligned folios of up to `order` (smaller
    /// where alignment or the window's end ask), the folio holding the page
    /// `async_size` from the end marked; pages past the file's end are not read, and a
    /// run holding a cached page is read page by page around it
    /// (`page_cache_ra_order`). A large folio the reader's group cannot make room for
    /// is not made, and the rest of the window goes in single pages, as Linux falls
    /// back to `do_page_cache_ra`. Stops early when no frame can be had.
    pub(super) fn read_window(&mut self, pid: Pid, file: FileId, ra: ReadaheadState, order: u32) {
        let ps = self.page_size();
        let pages = self.cache.files[file.0 as usize].len.div_ceil(ps);
        let end = ra.start.saturating_add(ra.size).min(pages);
        let mark = (ra.async_size > 0).then(|| ra.start + ra.size - ra.async_size);
        let mut idx = ra.start;
        let mut batch = self.begin_reads();
        // Large folios until one cannot be charged; the rest of the window in single
        // pages (`page_cache_ra_order`'s fallback to `do_page_cache_ra`).
        let mut order = order;
        while idx < end {
            let mut o = order.min(idx.trailing_zeros());
            while o > 0 && idx + (1 << o) > end {
                o -= 1;
            }
            if (idx..idx + (1 << o)).any(|i| self.page_present(file, i)) {
                o = 0;
            }
            let n = 1u64 << o;
            if o > 0 && !self.make_room_for_folio(pid, n) {
                order = 0;
                continue;
            }
            let marked = mark.is_some_and(|m| (idx..idx + n).contains(&m));
            for i in idx..idx + n {
                if self.page_present(file, i) {
                    continue;
                }
                let Ok(pfn) = self.fill_cache_page(pid, false, file, i, Some(o), false) else {
                    self.send_reads(batch);
                    return;
                };
                self.queue_read(&mut batch, pfn);
                self.log.counters.file_readahead += 1;
                if o > 0 {
                    self.cache.folio_order.insert(pfn.0, o as u8);
                }
                if marked {
                    self.cache.readahead.insert(pfn.0);
                }
            }
            idx += n;
        }
        self.send_reads(batch);
    }

    /// Puts page `idx` of `file` in the page cache: read from storage into a frame
    /// charged to `pid`'s group, or, for a `warm` file, found there already (charged to
    /// the root group, no storage). `ahead` is the order of the folio the page is read
    /// ahead in, its read queued by the caller; `None` reads it alone, now. A page read
    /// for a `write` counts no refault.
    pub(super) fn fill_cache_page(
        &mut self,
        pid: Pid,
        warm: bool,
        file: FileId,
        idx: u64,
        ahead: Option<u32>,
        write: bool,
    ) -> Result<Pfn, Violation> {
        let ps = self.page_size();
        let group = warm.then_some(GroupId(0));
        let pfn = self.alloc_frame_charged(pid, group, FrameKind::File, ahead.is_none())?;
        self.zero_frame(pfn);
        let mut buf = vec![0u8; ps as usize];
        if !self.cache.files[file.0 as usize].read_page(idx * ps, &mut buf) {
            self.log.counters.file_errors += 1;
        }
        if buf.iter().any(|&b| b != 0) {
            self.write_frame(pfn, &buf);
        }
        self.cache.insert(file, idx, pfn);
        if warm {
            self.file_page_added(pfn, file, idx, false);
        } else {
            self.log.counters.file_reads += 1;
            let shift = self.cost_shift_in(file, ahead.unwrap_or(0));
            self.log.counters.paging_cycles += self.config.page_in_cycles >> shift;
            self.log.counters.io_busy_ns += self.config.storage.transfer_ns(ps);
            self.file_page_added(pfn, file, idx, !write);
            // Locked from now: a window's folios are sent once all are in the cache.
            self.lock_for_read(pfn);
            if ahead.is_none() {
                let mut batch = self.begin_reads();
                self.queue_read(&mut batch, pfn);
                self.send_reads(batch);
            }
        }
        Ok(pfn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::VirtAddr;
    use crate::os::test_support::*;

    fn mapped_file(k: &mut Kernel, pages: u64, prot: Prot) -> (Pid, VirtAddr) {
        let f = k.create_file("/data", vec![1; (pages * 4096) as usize]);
        let pid = spawn(k);
        let args = MmapArgs {
            source: MapSource::File(f, 0),
            ..MmapArgs::anon(pages * 4096, prot)
        };
        let va = k.mmap(pid, args).unwrap();
        (pid, va)
    }

    fn read_pages(k: &mut Kernel, pid: Pid, va: VirtAddr, pages: impl Iterator<Item = u64>) {
        let mut b = [0u8];
        for i in pages {
            k.read(pid, VirtAddr(va.0 + i * 4096), &mut b).unwrap();
            assert_eq!(b, [1]);
        }
    }

    #[test]
    fn advice_random_reads_each_missed_page_alone_and_sequential_reads_on() {
        // Every 8th page of a cold file, as this machine's Linux: 2,048 major faults
        // for 16,384 pages with MADV_RANDOM, 1 without advice.
        for (advice, majors) in [
            (AccessAdvice::Normal, 1),
            (AccessAdvice::Random, 128),
            (AccessAdvice::Sequential, 1),
        ] {
            let mut k = boot("x86-64");
            let (pid, va) = mapped_file(&mut k, 1024, Prot::READ);
            k.madvise_access(pid, va, 1024 * 4096, advice).unwrap();
            read_pages(&mut k, pid, va, (0..1024).step_by(8));
            assert_eq!(faults(&k, FaultKind::FileRead), majors, "{advice:?}");
            if advice == AccessAdvice::Random {
                assert_eq!(k.log.counters.file_reads, 128, "nothing read ahead");
                assert_eq!(k.log.counters.fault_around_pages, 0);
            }
        }
        // A part of the mapping advised: its VMA is split, the rest reads around.
        let mut k = boot("x86-64");
        let (pid, va) = mapped_file(&mut k, 1024, Prot::READ);
        k.madvise_access(
            pid,
            VirtAddr(va.0 + 512 * 4096),
            512 * 4096,
            AccessAdvice::Random,
        )
        .unwrap();
        let end = VirtAddr(va.0 + 1024 * 4096);
        let parts: Vec<AccessAdvice> = k
            .mm(pid)
            .unwrap()
            .vmas
            .iter()
            .filter(|v| v.start >= va && v.end <= end)
            .map(|v| v.access)
            .collect();
        assert_eq!(parts, [AccessAdvice::Normal, AccessAdvice::Random]);
        read_pages(&mut k, pid, va, (0..1024).step_by(8));
        // The second half's 64 pages miss alone, but for those the first half's last
        // windows read ahead (readahead is the file's, not the mapping's).
        let majors = faults(&k, FaultKind::FileRead);
        assert!((1 + 48..=1 + 64).contains(&majors), "{majors}");
        assert_eq!(
            k.madvise_access(
                pid,
                VirtAddr(va.0 + 1024 * 4096),
                4096,
                AccessAdvice::Normal
            ),
            Err(crate::os::Errno::ENOMEM),
            "past the mapping"
        );
    }

    #[test]
    fn willneed_reads_the_files_readahead_worth_from_the_range_start() {
        // As this machine's Linux: of a cold 64 MiB file with 8 MiB readahead, read at
        // random every 8th page, MADV_WILLNEED spares the first 8 MiB's faults.
        let mut k = boot("x86-64");
        let (pid, va) = mapped_file(&mut k, 1024, Prot::READ);
        let f = k.file_named("/data").unwrap();
        k.set_file_readahead(f, 256 * 4096);
        k.madvise_access(pid, va, 1024 * 4096, AccessAdvice::Random)
            .unwrap();
        k.madvise_willneed(pid, VirtAddr(va.0 + 64 * 4096), 1024 * 4096 - 64 * 4096)
            .unwrap();
        assert_eq!(k.log.counters.file_reads, 256, "the readahead's worth");
        assert_eq!(k.page_cache_pages(), 256);
        assert!(k.cache.pages.contains_key(&(f, 64)) && !k.cache.pages.contains_key(&(f, 63)));
        assert_eq!(k.process(pid).unwrap().stats.faults.iter().sum::<u64>(), 0);
        read_pages(&mut k, pid, va, (0..1024).step_by(8));
        assert_eq!(
            faults(&k, FaultKind::FileRead),
            128 - 32,
            "pages 64..320 were read"
        );
        assert_eq!(
            k.madvise_willneed(pid, VirtAddr(va.0 + 1024 * 4096), 4096),
            Err(crate::os::Errno::ENOMEM)
        );
    }

    #[test]
    fn a_sequential_reader_takes_one_major_fault_and_stays_ahead() {
        let mut k = boot("x86-64");
        let (pid, va) = mapped_file(&mut k, 1024, Prot::READ);
        read_pages(&mut k, pid, va, 0..1024);
        assert_eq!(
            faults(&k, FaultKind::FileRead),
            1,
            "only the first page waits"
        );
        // Every page was read once: the first window, then one per mark.
        assert_eq!(k.log.counters.file_reads, 1024);
        // Windows ahead are one 32-page folio each, marked, and the reader (faster than
        // storage) finds each still being read: one fault per window, which waits and,
        // retried, maps the whole folio.
        let minor = faults(&k, FaultKind::PageCache);
        assert!((31..=40).contains(&minor), "{minor} minor faults");
        assert!(k.log.counters.io_wait_ns > 0);
    }

    #[test]
    fn a_miss_in_executable_code_reads_from_the_page_to_the_mapping_s_end_unmarked() {
        // Linux 6.16 on (`do_sync_mmap_readahead`'s `VM_EXEC` case): code is read at
        // random, so a miss reads a window from its page on, stopped at the
        // mapping's end, and marks nothing to read ahead later. Data is read around.
        for (prot, advice, cached, marked) in [
            (Prot::READ | Prot::EXEC, AccessAdvice::Normal, 10..40, false),
            // `MADV_RANDOM` does not stop it (Linux returns early only for
            // `VM_RAND_READ` without `VM_EXEC`).
            (Prot::READ | Prot::EXEC, AccessAdvice::Random, 10..40, false),
            (Prot::READ, AccessAdvice::Normal, 0..32, true),
            (Prot::READ, AccessAdvice::Random, 10..11, false),
        ] {
            let mut k = boot("x86-64");
            let f = k.create_file("/prog", vec![1; 64 * 4096]);
            // Recorded with none of it cached (a program unrecorded is cached).
            k.set_cached_at_start(f, 0, 0);
            let pid = spawn(&mut k);
            let args = MmapArgs {
                source: MapSource::File(f, 0),
                ..MmapArgs::anon(40 * 4096, prot)
            };
            let va = k.mmap(pid, args).unwrap();
            k.madvise_access(pid, va, 40 * 4096, advice).unwrap();
            let mut b = [0u8];
            k.read(pid, VirtAddr(va.0 + 10 * 4096), &mut b).unwrap();
            let present: Vec<u64> = (0..64).filter(|&i| k.page_present(f, i)).collect();
            assert_eq!(present, cached.collect::<Vec<_>>(), "{prot:?} {advice:?}");
            assert_eq!(!k.cache.readahead.is_empty(), marked, "{prot:?} {advice:?}");
        }
    }

    #[test]
    fn a_major_fault_waits_for_its_page_s_request_behind_the_device_s_queue() {
        let mut k = boot("x86-64");
        let storage = k.config.storage;
        let (pid, va) = mapped_file(&mut k, 1024, Prot::READ);
        let other = k.create_file("/other", vec![1; 64 * 4096]);
        // Another file's pages queued first, read ahead and not waited for: the
        // second read finds the first window's mark and sends the next window.
        k.read_file(pid, other, 0, 4096);
        k.read_file(pid, other, 4096, 4096);
        let queued = k.inflight.free_at.saturating_sub(k.io_now());
        assert!(queued > 0, "nothing queued");
        let t0 = k.io_now();
        // A miss on page 0 reads pages 0-15 around it in one request (the window
        // starts half a window before the page, at 0) and waits for all of it.
        read_pages(&mut k, pid, va, 0..1);
        let f = k.cache.file_named("/data").unwrap();
        assert!((0..16).all(|i| !k.reading(k.cache.pages[&(f, i)])));
        let waited = k.io_now() - t0;
        let request = storage.transfer_ns(16 * 4096);
        assert!(
            waited >= queued + request,
            "{waited} < {queued} + {request}"
        );
    }

    #[test]
    fn read_around_reads_single_pages_and_fault_around_maps_them_young() {
        // Linux 6.18's read-around allocates order-0 folios, and x86 installs the
        // pages fault-around maps with Accessed set.
        let mut k = boot("x86-64");
        let (pid, va) = mapped_file(&mut k, 1024, Prot::READ);
        // A miss (read around it), then a hit that maps the pages around it, which
        // the program never touches.
        read_pages(&mut k, pid, va, 0..2);
        let f = k.cache.file_named("/data").unwrap();
        for i in 0..16 {
            let pfn = k.cache.pages[&(f, i)];
            assert_eq!(k.folio_of(pfn), 0, "page {i} is a folio of its own");
        }
        let (paging, pt) = (k.machine.spec.paging, k.mm(pid).unwrap().pt);
        for i in 2..16 {
            let slot = pt.slot(&paging, &k.machine.ram, VirtAddr(va.0 + i * 4096));
            let Some(crate::hw::Slot::Leaf(m)) = slot else {
                panic!("page {i} was mapped around the fault: {slot:?}");
            };
            assert!(
                m.flags.contains(crate::hw::Flags::ACCESSED),
                "page {i} young"
            );
        }
    }

    #[test]
    fn random_reads_stop_read_around_after_a_hundred_misses() {
        let mut k = boot("x86-64");
        let (pid, va) = mapped_file(&mut k, 1 << 16, Prot::READ);
        // Pages far apart: every touch misses, and read-around mostly wastes.
        read_pages(
            &mut k,
            pid,
            va,
            (0..300u64).map(|i| (i * 7919 * 64) % (1 << 16)),
        );
        let reads = k.log.counters.file_reads;
        assert_eq!(faults(&k, FaultKind::FileRead), 300);
        assert!(
            reads < 101 * 32 + 200,
            "read-around stopped after 100 misses: {reads} pages read"
        );
        assert!(reads > 100 * 16, "it read around before that: {reads}");
    }

    #[test]
    fn fault_around_counts_cached_pages_as_hits_unless_they_are_of_the_working_set() {
        let mut k = boot("x86-64");
        let (pid, va) = mapped_file(&mut k, 1024, Prot::READ);
        let f = k.cache.file_named("/data").unwrap();
        let miss = |k: &Kernel| k.cache.files[f.0 as usize].ra.mmap_miss;
        // A miss reads around page 0; its reads complete.
        read_pages(&mut k, pid, va, [0].into_iter());
        assert_eq!(miss(&k), 1);
        k.sleep(1_000_000_000).unwrap();
        k.cache.files[f.0 as usize].ra.mmap_miss = 50;
        // Page 5: fault-around finds the 16 pages of its window cached, page 0
        // already mapped among them, and maps the other 15.
        read_pages(&mut k, pid, va, [5].into_iter());
        assert_eq!(miss(&k), 50 - 16);
        // Pages that came back from eviction (of the working set) are no hits: a
        // file whose pages keep coming back is thrashing.
        for i in 16..32 {
            let pfn = k.cache.pages[&(f, i)];
            k.reclaim
                .set_flag(pfn, crate::os::reclaim::PG_WORKINGSET, true);
        }
        read_pages(&mut k, pid, va, [20].into_iter());
        assert_eq!(miss(&k), 50 - 16);
    }

    #[test]
    fn a_file_reads_ahead_by_its_devices_readahead_unless_one_is_fixed() {
        // The kernel's default reads ahead; the file's device says none; a fixed
        // readahead (`--readahead`) wins over the device's.
        for (fixed, want) in [(false, 64), (true, 1)] {
            let mut k = boot("x86-64");
            k.config.fault_around_pages = 0;
            k.config.readahead_fixed = fixed;
            let (pid, va) = mapped_file(&mut k, 64, Prot::READ);
            let f = k.cache.file_named("/data").unwrap();
            k.set_file_readahead(f, 0);
            read_pages(&mut k, pid, va, 0..64);
            assert_eq!(faults(&k, FaultKind::FileRead), want, "fixed {fixed}");
        }
    }

    #[test]
    fn no_readahead_reads_only_the_faulting_pages() {
        let mut k = boot("x86-64");
        k.config.readahead_pages = 0;
        k.config.fault_around_pages = 0;
        let (pid, va) = mapped_file(&mut k, 64, Prot::READ);
        read_pages(&mut k, pid, va, 0..64);
        assert_eq!(faults(&k, FaultKind::FileRead), 64);
        assert_eq!(k.log.counters.file_reads, 64);
    }

    #[test]
    fn an_executable_file_is_cached_from_the_start() {
        let mut k = boot("x86-64");
        let (pid, va) = mapped_file(&mut k, 64, Prot::READ | Prot::EXEC);
        // The reader runs in a group of its own: the pages are not charged to it.
        let g = k.create_group("reader", Some(16 << 20)).unwrap();
        k.set_group(pid, g).unwrap();
        read_pages(&mut k, pid, va, 0..64);
        assert_eq!(faults(&k, FaultKind::FileRead), 0);
        assert_eq!(k.log.counters.file_reads, 0, "nothing from storage");
        // Fault-around maps the 16-page windows whole (64 pages touch four or five).
        assert!((4..=5).contains(&faults(&k, FaultKind::PageCache)));
        assert_eq!(k.groups()[g.0 as usize].stat.file, 0, "not the reader's");
        assert!(k.groups()[0].stat.file >= 64, "charged to the root group");
    }

    #[test]
    fn a_program_recorded_partly_cached_starts_with_only_those_pages() {
        let mut k = boot("x86-64");
        k.config.fault_around_pages = 0;
        let (pid, va) = mapped_file(&mut k, 64, Prot::READ | Prot::EXEC);
        let f = k.cache.file_named("/data").unwrap();
        // The recorder found pages 0..4 and 40..48 cached (`file-cached`).
        k.set_cached_at_start(f, 0, 4 * 4096);
        k.set_cached_at_start(f, 40 * 4096, 8 * 4096);
        let g = k.create_group("reader", Some(16 << 20)).unwrap();
        k.set_group(pid, g).unwrap();
        read_pages(&mut k, pid, va, [1, 3, 44].into_iter());
        assert_eq!(faults(&k, FaultKind::FileRead), 0, "all three were cached");
        assert_eq!(k.groups()[g.0 as usize].stat.file, 0);
        // Page 20 was not: read from storage with readahead, charged to the reader.
        read_pages(&mut k, pid, va, [20].into_iter());
        assert_eq!(faults(&k, FaultKind::FileRead), 1);
        assert!(k.log.counters.file_reads > 0);
        assert!(k.groups()[g.0 as usize].stat.file > 0);
        // A page cached at start and dropped since comes back from storage.
        let p44 = k.cache.pages[&(f, 44)];
        let reads = k.log.counters.file_reads;
        assert!(k.evict_file(p44));
        assert!(!k.page_present(f, 44));
        k.machine.mmu.flush_all();
        read_pages(&mut k, pid, va, [44].into_iter());
        assert_eq!(faults(&k, FaultKind::FileRead), 2);
        assert!(k.log.counters.file_reads > reads);
    }

    #[test]
    fn a_data_file_recorded_partly_cached_starts_with_those_pages() {
        let mut k = boot("x86-64");
        k.config.fault_around_pages = 0;
        let (pid, va) = mapped_file(&mut k, 64, Prot::READ);
        let f = k.cache.file_named("/data").unwrap();
        // Not executable, and recorded with pages 8..16 cached (a locale file the
        // shell maps, say): those come without storage, the rest from it.
        k.set_cached_at_start(f, 8 * 4096, 8 * 4096);
        read_pages(&mut k, pid, va, [9, 15].into_iter());
        assert_eq!(faults(&k, FaultKind::FileRead), 0, "both were cached");
        read_pages(&mut k, pid, va, [40].into_iter());
        assert_eq!(faults(&k, FaultKind::FileRead), 1);
        // `read(2)` finds the recorded pages too: nothing from storage for them.
        let g = k.create_file("/words", vec![7; 16 * 4096]);
        k.set_cached_at_start(g, 0, 16 * 4096);
        let reads = k.log.counters.file_reads;
        k.read_file(pid, g, 0, 16 * 4096);
        assert_eq!(k.log.counters.file_reads, reads);
        // With no record, a data file starts cold.
        let h = k.create_file("/cold", vec![7; 4 * 4096]);
        k.read_file(pid, h, 0, 4 * 4096);
        assert_eq!(k.log.counters.file_reads, reads + 4);
    }

    #[test]
    fn a_warm_page_cache_has_every_file() {
        let mut k = boot("x86-64");
        k.config.page_cache_warm = true;
        let (pid, va) = mapped_file(&mut k, 64, Prot::READ);
        read_pages(&mut k, pid, va, 0..64);
        assert_eq!(faults(&k, FaultKind::FileRead), 0);
        assert!((4..=5).contains(&faults(&k, FaultKind::PageCache)));
    }

    #[test]
    fn read_goes_through_the_page_cache_with_readahead_and_maps_nothing() {
        let mut k = boot("x86-64");
        let f = k.create_file("/data", vec![1; 1024 * 4096]);
        let pid = spawn(&mut k);
        // A sequential reader, 64 KiB a call: every page read once, well ahead.
        for i in 0..64u64 {
            k.read_file(pid, f, i * 65536, 65536);
        }
        assert_eq!(k.log.counters.file_reads, 1024);
        assert!(
            k.log.counters.file_readahead > 900,
            "read ahead of the calls"
        );
        assert_eq!(k.counters().faults.iter().sum::<u64>(), 0, "no faults");
        assert_eq!(k.process(pid).unwrap().rss().file, 0, "nothing mapped");
        let cached = k.cache.pages.len();
        assert_eq!(cached, 1024);
        // Random small reads elsewhere read just what they ask for.
        let g = k.create_file("/big", vec![1; 4096 * 4096]);
        for i in [7u64, 900, 3001, 12, 2048] {
            k.read_file(pid, g, i * 4096 + 100, 200);
        }
        assert_eq!(k.cache.pages.len(), cached + 5);
        // Past the end: nothing.
        k.read_file(pid, g, 1 << 40, 4096);
        assert_eq!(k.cache.pages.len(), cached + 5);
    }

    #[test]
    fn a_read_into_a_buffer_stores_into_each_page_and_one_without_leaves_it() {
        use crate::os::mmap::MmapArgs;
        use crate::os::ReclaimPolicy;
        let mut k = boot_small(8 << 20, 16 << 20, ReclaimPolicy::TwoList);
        let f = k.create_file("/data", vec![1; 64 * 4096]);
        let pid = spawn(&mut k);
        let n = 8u64;
        let buf = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, buf, n, |i| i);
        k.madvise_pageout(pid, buf, n * 4096).unwrap();
        // Without the buffer: the copy's stores are the trace's to make.
        k.read_file(pid, f, 0, n * 4096);
        let back = |k: &Kernel| faults(k, FaultKind::SwapCache) + faults(k, FaultKind::SwapIn);
        assert_eq!(back(&k), 0);
        // With it: every page of the buffer is stored into, each fault a program's,
        // a page counts as holding bytes other than zeros.
        k.read_file_to(pid, f, 4096, n * 4096 - 100, Some(VirtAddr(buf.0 + 100)));
        assert_eq!(back(&k), n);
        for i in 0..n {
            let m = leaf(&k, pid, VirtAddr(buf.0 + i * 4096));
            assert!(
                m.flags.contains(crate::hw::Flags::DIRTY),
                "page {i} stored into"
            );
            assert!(
                k.frames.nonzero(m.pfn),
                "page {i} holds bytes other than zeros"
            );
        }
        // Bytes past what the file holds (a /proc file, to vmsim empty) are stored too.
        let empty = k.create_file("/proc-like", Vec::new());
        let other = k.mmap(pid, MmapArgs::anon(2 * 4096, Prot::RW)).unwrap();
        k.read_file_to(pid, empty, 0, 4097, Some(other));
        assert!(leaf(&k, pid, VirtAddr(other.0 + 4096))
            .flags
            .contains(crate::hw::Flags::DIRTY));
    }

    #[test]
    fn a_miss_after_a_long_cached_run_reads_a_window_and_a_short_one_what_it_asks() {
        let (mut k, pid) = booted();
        let f = k.create_file("/data", vec![1; 256 * 4096]);
        k.set_file_readahead(f, 128 << 10);
        k.read_file(pid, f, 0, 256 * 4096);
        assert_eq!(k.cache.pages.range((f, 0)..(f, 256)).count(), 256);
        assert_eq!(
            k.cached_run_before(f, 100, 32),
            (32, false),
            "at most the window"
        );
        assert_eq!(
            k.cached_run_before(f, 20, 32),
            (20, true),
            "back to the start"
        );
        // Pages 100 on dropped: a miss at 100 after a read elsewhere finds a whole
        // window's worth cached behind it: a window of the readahead size, marked at
        // its end.
        k.fadvise(
            pid,
            f,
            100 * 4096,
            0,
            super::super::fadvise::POSIX_FADV_DONTNEED,
        )
        .unwrap();
        assert_eq!(k.cache.pages.range((f, 0)..(f, 256)).count(), 100);
        assert_eq!(k.cached_run_before(f, 100, 32), (32, false));
        k.read_file(pid, f, 100 * 4096, 4 * 4096);
        assert_eq!(k.cache.pages.range((f, 100)..(f, 256)).count(), 32);
        let last = k.cache.pages[&(f, 131)];
        assert!(k.readahead_marked(last), "the window's last page is marked");
        // A miss with nothing cached just before it reads what it asks for.
        k.fadvise(
            pid,
            f,
            200 * 4096,
            0,
            super::super::fadvise::POSIX_FADV_DONTNEED,
        )
        .unwrap();
        k.read_file(pid, f, 210 * 4096, 4 * 4096);
        assert_eq!(k.cache.pages.range((f, 200)..(f, 256)).count(), 4);
    }

    #[test]
    fn reads_that_go_on_in_the_folio_they_ended_in_mark_it_once() {
        let mut k = boot("x86-64");
        k.config.reclaim = crate::os::ReclaimPolicy::TwoList;
        let f = k.create_file("/data", vec![1; 64 * 4096]);
        let pid = spawn(&mut k);
        // Blocks of 10 KiB straddle pages: each page is marked once, as by one read.
        for i in 0..(64 * 4096 / 10240) {
            k.read_file(pid, f, i * 10240, 10240);
        }
        assert_eq!(k.log.counters.activations, 0, "no page read twice");
        // The same bytes again, from where the last read ended: still once.
        let end = 64 * 4096 / 10240 * 10240;
        k.read_file(pid, f, end - 100, 100);
        assert_eq!(k.log.counters.activations, 0);
        // From elsewhere, the second use: the page goes to the active list.
        k.read_file(pid, f, 0, 100);
        assert_eq!(k.log.counters.activations, 1);
        // One long read uses every folio again: all of them go to the active list.
        k.read_file(pid, f, 0, 64 * 4096);
        let files = crate::os::reclaim::FILE_LISTS;
        assert_eq!(k.reclaim.lists.len_in(0, files), 0, "inactive file pages");
        assert_eq!(k.reclaim.lists.len_in(0, files + 1), 64, "active");
        assert_eq!(k.log.counters.activations, 64);
    }

    #[test]
    fn a_read_files_folios_cost_the_kernel_once_a_folio_a_mapped_files_once_a_page() {
        // 16 MiB read 8 KiB a call through windows of up to 2,048 pages, in folios of
        // up to order 9, then evicted: Linux reads a folio in and evicts it with one
        // allocation, charge, cache entry and list entry; pages a process may map
        // cost their page-table work one by one.
        let n = 4096;
        for mapped in [false, true] {
            let mut k = boot_with("x86-64", |c| c.reclaim = ReclaimPolicy::TwoList);
            let f = k.create_file("/data", vec![1; n as usize * 4096]);
            k.set_file_readahead(f, 8 << 20);
            let pid = spawn(&mut k);
            if mapped {
                let args = MmapArgs {
                    source: MapSource::File(f, 0),
                    ..MmapArgs::anon(4096, Prot::READ)
                };
                k.mmap(pid, args).unwrap();
            }
            let c = k.config.clone();
            let before = k.log.counters.paging_cycles;
            for i in 0..n / 2 {
                k.read_file(pid, f, i * 8192, 8192);
            }
            assert_eq!(k.log.counters.file_reads, n);
            assert!(k.cache.folio_order.values().any(|&o| o == 9));
            // Each page copied to the reader costs a page copy, mapped or not.
            let page_in = k.log.counters.paging_cycles - before - n * c.copy_cycles;
            if mapped {
                assert_eq!(page_in, n * c.page_in_cycles);
            } else {
                assert!(page_in < n * c.page_in_cycles / 20, "{page_in} cycles");
            }
            // A page read again costs its copy alone.
            let before = k.log.counters.paging_cycles;
            k.read_file(pid, f, 0, 8192);
            assert_eq!(k.log.counters.paging_cycles - before, 2 * c.copy_cycles);
            // Evicted: reads done, and every page taken.
            k.advance_clock_for_test(1_000_000_000);
            let before = k.log.counters.paging_cycles;
            k.reclaim(n as usize / 2, crate::os::reclaim::Scope::Global);
            let gone = k.log.counters.lru_reclaimed[1];
            assert!(gone > n / 2, "{gone} pages evicted");
            let page_out = k.log.counters.paging_cycles - before;
            if mapped {
                assert_eq!(page_out, gone * c.page_out_cycles);
            } else {
                assert!(
                    page_out < gone * c.page_out_cycles / 20,
                    "{page_out} cycles"
                );
            }
        }
    }

    #[test]
    fn folios_grow_two_orders_a_window_even_when_windows_start_misaligned() {
        let mut k = boot("x86-64");
        let f = k.create_file("/data", vec![1; 4096 * 4096]);
        k.set_file_readahead(f, 8 << 20);
        let pid = spawn(&mut k);
        for i in 0..2048u64 {
            k.read_file(pid, f, i * 8192, 8192);
        }
        // Windows of 8, 32, 128, 256 pages from page 0: the fourth starts at page 168,
        // aligned to 8 pages only, and its first folio (the marked one) is of order 3.
        // The orders still go 0, 2, 4, 6, 8, 9 (Linux's `ra->order`), not 5 for ever.
        let top = k.cache.folio_order.values().copied().max();
        assert_eq!(top, Some(9));
    }

    #[test]
    fn a_folio_the_group_has_no_room_for_is_not_made_and_its_pages_come_one_by_one() {
        // A window of 1,024 pages in folios of 512, for a reader in a group of 768:
        // the first folio fits; the second cannot be charged while the first is being
        // read, so it is not made (Linux's readahead charge gives up), and the rest of
        // the window comes in single pages until the group is full.
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = crate::os::ReclaimPolicy::TwoList;
        });
        let g = k.create_group("/reader", Some(768 * 4096)).unwrap();
        let pid = spawn(&mut k);
        k.set_group(pid, g).unwrap();
        let f = k.create_file("/data", vec![1; 4096 * 4096]);
        let ra = ReadaheadState {
            size: 1024,
            async_size: 1024,
            ..Default::default()
        };
        k.read_window(pid, f, ra, 9);
        let orders = |o: u8| k.cache.folio_order.values().filter(|&&x| x == o).count();
        assert_eq!(orders(9), 512, "one folio of 512 pages");
        let single = (512..1024)
            .filter(|&i| k.cache.pages.contains_key(&(f, i)))
            .count();
        assert!(single > 0, "single pages after it");
        assert!(k.groups()[g.0 as usize].charged <= 768);
    }

    #[test]
    fn async_windows_end_on_a_boundary_of_their_folio_order() {
        // python3 reading a file 8 KiB at a time, traced on Linux 6.18 with 8 MiB
        // readahead (`readahead/page_cache_ra_order`: index, size): each window ends on
        // a multiple of the order it asks for, two above the last (10 after 8, 11 after
        // the 9 it was capped to).
        let mut k = boot("x86-64");
        let f = k.create_file("/data", vec![1; 8192 * 4096]);
        k.set_file_readahead(f, 8 << 20);
        let pid = spawn(&mut k);
        let mut windows = vec![];
        for i in 0..4096u64 {
            k.read_file(pid, f, i * 8192, 8192);
            let ra = k.cache.files[f.0 as usize].ra;
            if windows.last() != Some(&(ra.start, ra.size)) {
                windows.push((ra.start, ra.size));
            }
        }
        assert_eq!(
            windows[..9],
            [
                (0, 8),
                (8, 32),
                (40, 120),
                (160, 480),
                (640, 896),
                (1536, 1536),
                (3072, 1024),
                (4096, 2048),
                (6144, 2048)
            ]
        );
    }

    #[test]
    fn a_mark_found_without_its_state_ramps_up_from_the_lookahead_and_the_request() {
        let mut k = boot("x86-64");
        let f = k.create_file("/data", vec![1; 4096 * 4096]);
        k.set_file_readahead(f, 8 << 20);
        let pid = spawn(&mut k);
        // A first read of 2 pages reads 8, marked at page 2.
        k.read_file(pid, f, 0, 8192);
        let ra = k.cache.files[f.0 as usize].ra;
        assert_eq!((ra.start, ra.size, ra.async_size), (0, 8, 6));
        // Another reader's window replaced the state (interleaved reads).
        k.cache.files[f.0 as usize].ra.start = 100;
        // A read of 2 pages from the marked page: the cached run after it (6 pages)
        // plus the request, ramped up (Linux's `page_cache_async_ra`: 8 pages, times
        // four), from the first page not cached.
        k.read_file(pid, f, 2 * 4096, 8192);
        let ra = k.cache.files[f.0 as usize].ra;
        assert_eq!((ra.start, ra.size), (8, 32));
    }

    #[test]
    fn window_sizes_ramp_as_linux_does() {
        assert_eq!(next_window(1, 32), 4);
        assert_eq!(next_window(4, 32), 8);
        assert_eq!(next_window(16, 32), 32);
        assert_eq!(next_window(32, 32), 32);
    }
}
