//! Writeback: dirty page-cache pages reach their files through the flusher, not
//! through reclaim (two-list reclaim, the Linux model).
//!
//! - **A page is dirty** from the store that dirties it: `write` marks the pages it
//!   copies into, and a store through a shared file mapping marks its folio when it
//!   faults (Linux's `fault_dirty_shared_page`). A shared file mapping is mapped
//!   read-only until the first store (a file with dirty accounting wants write
//!   notification), so that store faults even when the page is mapped.
//! - **Reclaim sets a dirty folio aside.** Reclaim does not write file pages itself
//!   (Linux's kswapd does, on a node it finds congested with dirty pages: not
//!   modelled): it unmaps an unreferenced dirty folio, sets its
//!   `PG_reclaim` and moves it to the active list (`shrink_folio_list`), and frees
//!   clean pages instead, read-ahead pages a reader has not reached among them. When
//!   every page a pass took was dirty and not yet being written, whether or not its
//!   references kept it, it wakes the flusher
//!   (`wakeup_flusher_threads(WB_REASON_VMSCAN)`).
//! - **The flusher writes every dirty page**, a file's pages in order, in requests of
//!   at most [`FLUSH_REQUEST_PAGES`] adjacent pages, [`FLUSH_DEPTH`] in flight at a
//!   time, the first [`FLUSH_START_NS`] after a resting flusher is woken
//!   ([`Kernel::send_file_write`]); a page waiting for its request to start is still
//!   dirty, one whose request has started is under writeback. A group's reclaim that
//!   woke the flusher then waits until a batch of pages has been written, or 100 ms
//!   (`reclaim_throttle`). Each page is cleaned when the flusher takes it: its mappings are
//!   write-protected and their Dirty bits cleared (`folio_mkclean`), so a later store
//!   faults and dirties it again. The file holds the page's bytes from then.
//! - **At completion** a page reclaim set aside moves to the inactive tail
//!   (`folio_rotate_reclaimable`) and the next pass frees it without another write.
//!   Reclaim that meets a page still being written passes over it, or, in a group at
//!   its limit, waits for the write of a page it had set aside (cgroup v1's reclaim has
//!   no dirty throttling).
//!
//! What decides the counters: a writer through a mapping larger than its group's
//! limit loses the clean pages read ahead of it, not the dirty ones behind it, and
//! takes a fault for each page it comes back to (Linux: 5,960 minor faults for a
//! 48 MiB shared file written once under 32 MiB, against 2,800 without the limit).
//!
//! Not modelled: periodic writeback of pages dirty longer than
//! `dirty_expire_centisecs`, the background threshold, and the throttling of a
//! writer past `dirty_ratio`; a page is written when reclaim wakes the flusher, when
//! it leaves the cache otherwise (`evict_file`), or never in the run.

use super::{FileId, Kernel};
use crate::addr::Pfn;

/// The most pages one writeback request carries (4 MiB of 4 KiB pages, the size of
/// the flusher's requests on this project's machines: the device's largest).
pub(super) const FLUSH_REQUEST_PAGES: usize = 1024;

/// The writeback requests the flusher keeps in flight.
pub(super) const FLUSH_DEPTH: usize = 4;

/// Nanoseconds from waking a resting flusher to its first request (its worker is
/// scheduled and maps the pages' blocks: 1.2 ms on this project's machines).
pub(super) const FLUSH_START_NS: u64 = 1_000_000;

impl Kernel {
    /// Marks the folio page-cache frame `pfn` belongs to dirty (a store through a
    /// shared mapping: the folio has one dirty flag).
    pub(super) fn dirty_folio(&mut self, pfn: Pfn) {
        let mut folio = Vec::new();
        self.folio_frames(pfn, &mut folio);
        self.cache.dirty.extend(folio.iter().map(|p| p.0));
    }

    /// Whether page-cache frame `pfn` is dirty (marked, or written through a writable
    /// mapping since it was last cleaned).
    pub(super) fn file_page_dirty(&self, pfn: Pfn) -> bool {
        self.cache.dirty.contains(&pfn.0)
    }

    /// Wakes the flusher: every dirty page-cache page is cleaned and written back, a
    /// file's pages in order, in requests of adjacent pages. Returns the pages sent.
    pub(super) fn wakeup_flusher(&mut self) -> u64 {
        if self.cache.dirty.is_empty() {
            return 0;
        }
        let mut pages: Vec<(FileId, u64, Pfn)> = self
            .cache
            .dirty
            .iter()
            .filter_map(|&p| self.cache.owner.get(&p).map(|&(f, i)| (f, i, Pfn(p))))
            .collect();
        pages.sort_unstable_by_key(|&(f, i, _)| (f.0, i));
        self.cache.dirty.clear();
        let now = self.io_now();
        // A flusher with nothing in flight is resting: it takes a while to start.
        let earliest = if self.flusher_busy() {
            now
        } else {
            now + FLUSH_START_NS
        };
        let mut frames = Vec::with_capacity(FLUSH_REQUEST_PAGES);
        for run in pages.chunk_by(|a, b| a.0 == b.0 && b.1 == a.1 + 1) {
            for request in run.chunks(FLUSH_REQUEST_PAGES) {
                frames.clear();
                for &(file, idx, pfn) in request {
                    self.mkclean(pfn);
                    self.write_back(pfn, file, idx);
                    frames.push(pfn);
                }
                self.send_file_write(&frames, earliest);
            }
        }
        pages.len() as u64
    }

    /// Write-protects and cleans every mapping of `pfn` (Linux's `folio_mkclean`),
    /// telling the TLBs; a Dirty bit found there is the page's (its bytes are what
    /// the write takes).
    fn mkclean(&mut self, pfn: Pfn) {
        let paging = self.machine.spec.paging;
        let mut pending = Vec::new();
        for (pid, va, pte) in self.rmap.of(pfn) {
            let Ok(mm) = self.mm(pid) else { continue };
            let pt = mm.pt;
            if let Ok(Some(flush)) = pt.clean_frame_at(&paging, &mut self.machine.ram, pte, va, pfn)
            {
                pending.push((pid, flush));
            }
        }
        for (pid, flush) in pending {
            self.flush_for(pid, flush);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::addr::VirtAddr;
    use crate::hw::Flags;
    use crate::os::test_support::*;

    /// The leaf flags of `va` in `pid`'s tables.
    fn flags(k: &Kernel, pid: Pid, va: VirtAddr) -> Flags {
        leaf(k, pid, va).flags
    }

    #[test]
    fn a_store_through_a_shared_mapping_faults_dirties_and_writeback_write_protects_again() {
        let mut k = boot_with("x86-64", |c| c.reclaim = ReclaimPolicy::TwoList);
        let f = k.create_file("/data", vec![1u8; 16 * 4096]);
        let pid = spawn(&mut k);
        let map = MmapArgs {
            source: MapSource::File(f, 0),
            shared: true,
            ..MmapArgs::anon(16 * 4096, Prot::RW)
        };
        let va = k.mmap(pid, map).unwrap();
        // A read maps the page read-only (write notification), clean.
        assert_eq!(k.read_u64(pid, va).unwrap(), 0x0101_0101_0101_0101);
        assert!(!flags(&k, pid, va).contains(Flags::WRITE));
        let pfn = k.cache.pages[&(f, 0)];
        assert!(!k.file_page_dirty(pfn));
        // The first store faults (a minor fault) and dirties the page.
        let before = faults(&k, FaultKind::Spurious);
        k.write_u64(pid, va, 7).unwrap();
        assert_eq!(faults(&k, FaultKind::Spurious), before + 1);
        assert!(k.file_page_dirty(pfn));
        assert!(flags(&k, pid, va).contains(Flags::WRITE));
        // The flusher writes it: the file holds the store, the page is clean and
        // write-protected again.
        assert_eq!(k.wakeup_flusher(), 1);
        assert!(!k.file_page_dirty(pfn));
        let fl = flags(&k, pid, va);
        assert!(!fl.contains(Flags::WRITE) && !fl.contains(Flags::DIRTY));
        assert_eq!(k.cache.files[f.0 as usize].data[0], 7);
        assert_eq!(k.wakeup_flusher(), 0, "nothing dirty");
        // So the next store faults and dirties it once more.
        k.write_u64(pid, va, 8).unwrap();
        assert_eq!(faults(&k, FaultKind::Spurious), before + 2);
        assert!(k.file_page_dirty(pfn));
        assert_eq!(k.wakeup_flusher(), 1);
        assert_eq!(k.cache.files[f.0 as usize].data[0], 8);
    }

    #[test]
    fn a_group_sets_dirty_pages_aside_for_the_flusher_and_frees_them_once_written() {
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = ReclaimPolicy::TwoList;
            c.readahead_pages = 0;
        });
        let g = k.create_group("/writer", Some(64 * 4096)).unwrap();
        let pid = spawn(&mut k);
        k.set_group(pid, g).unwrap();
        let f = k.create_file("/out", Vec::new());
        // The group fills with dirty pages.
        assert_eq!(k.write_file(pid, f, 0, 56 * 4096), 56);
        // A reclaim finds only dirty pages: it sets them aside, wakes the flusher and
        // waits for its first writes, which put their pages at the tail: it frees them.
        let t0 = k.io_now();
        let freed = k.reclaim(32, crate::os::reclaim::Scope::Group(g));
        assert!(freed > 0, "freed {freed} after waiting for writeback");
        assert!(k.io_now() > t0);
        // The writer goes on.
        let c0 = k.log.counters.clone();
        assert_eq!(k.write_file(pid, f, 56 * 4096, 64 * 4096), 64);
        let c = &k.log.counters;
        // Reclaim found dirty pages and set them aside, never writing one itself...
        assert!(c.activations > c0.activations, "dirty pages were set aside");
        // ...woke the flusher, which wrote them, and waited for it...
        assert!(
            c.writebacks >= c0.writebacks + 32,
            "{} written",
            c.writebacks
        );
        assert!(
            c.io_wait_ns > c0.io_wait_ns,
            "the writer waited for writeback"
        );
        // ...and freed them once written, from the inactive tail.
        assert!(c.rotated > c0.rotated, "written pages moved to the tail");
        assert!(c.file_evictions > c0.file_evictions);
        assert!(k.groups()[g.0 as usize].charged <= 64);
        // Every page that left was written first.
        assert!(c.file_evictions <= c.writebacks);
    }

    #[test]
    fn a_pass_of_dirty_pages_wakes_the_flusher_even_when_their_references_keep_them() {
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = ReclaimPolicy::TwoList;
            c.readahead_pages = 0;
        });
        let g = k.create_group("/writer", Some(256 * 4096)).unwrap();
        let pid = spawn(&mut k);
        k.set_group(pid, g).unwrap();
        let f = k.create_file("/data", vec![1u8; 64 * 4096]);
        let map = MmapArgs {
            source: MapSource::File(f, 0),
            shared: true,
            ..MmapArgs::anon(64 * 4096, Prot::RW)
        };
        let va = k.mmap(pid, map).unwrap();
        // Every page is written through the mapping: dirty, and just used.
        for i in 0..64 {
            k.write_u64(pid, VirtAddr(va.0 + i * 4096), i).unwrap();
        }
        let c0 = k.log.counters.clone();
        // The first pass takes dirty pages, none being written. Their Accessed bits
        // keep them on the list this time, yet the pass wakes the flusher, as Linux's
        // `shrink_inactive_list` does: it counts dirty folios before it looks at
        // their references. So the next pass finds them written, clean, and frees
        // them without setting one aside.
        let freed = k.reclaim(32, crate::os::reclaim::Scope::Group(g));
        let c = &k.log.counters;
        assert_eq!(
            c.writebacks - c0.writebacks,
            64,
            "the flusher wrote them all"
        );
        assert_eq!(c.activations, c0.activations, "none was set aside");
        assert!(freed >= 32, "freed {freed} once written");
    }
}
