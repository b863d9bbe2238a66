//! Swap-out and swap-in: anonymous pages written to their slots and their entries turned
//! into swap entries; a swap fault reading its page back (with readahead of the slots
//! around it into the swap cache), and the swap cache's frames dropped when no entry
//! needs them.

use crate::addr::{Pfn, SwapSlot, VirtAddr};
use crate::hw::{PageTable, Slot, SoftPte, SwapOutError};
use crate::os::frames::FrameKind;
use crate::os::{Kernel, Pid};

impl Kernel {
    /// Swaps out an anonymous frame: writes it to a slot (unless the swap cache says
    /// its slot still holds its bytes) and turns every entry that maps it into a swap
    /// entry. False if it cannot go (no swap, no slot, a write error, pinned by a
    /// fault in progress).
    pub(in crate::os) fn swap_out(&mut self, pfn: Pfn) -> bool {
        let paging = self.machine.spec.paging;
        let cached = self.swap.dev.as_ref().and_then(|s| s.cached_slot(pfn));
        if !self.rmap.is_mapped(pfn) {
            // Read ahead and never used: its bytes are in its slot already.
            if let Some(slot) = cached {
                self.drop_swap_cache(slot);
                return true;
            }
            // A frame on its way to being mapped is not a candidate.
            return false;
        }
        let Some(swap) = self.swap.dev.as_mut() else {
            return false;
        };
        let slot = match cached {
            // In the swap cache, mapped read-only since it came back: the slot
            // still holds its bytes.
            Some(slot) => slot,
            None => {
                let Some(slot) = swap.alloc() else {
                    return false;
                };
                let data = self.machine.ram.frame_contents(pfn.0);
                if swap.write(slot, data).is_err() {
                    swap.get(slot);
                    swap.put(slot);
                    self.log.counters.swap_errors += 1;
                    return false;
                }
                let bytes = self.page_size();
                self.log.counters.io_busy_ns += self.config.storage.transfer_ns(bytes);
                slot
            }
        };
        for (pid, va, pte) in self.rmap.of(pfn) {
            let Ok(mm) = self.mm(pid) else { continue };
            let pt = mm.pt;
            // The entry becomes the swap entry in place.
            match pt.swap_out_at(&paging, &mut self.machine.ram, pte, va, pfn, slot) {
                Ok(Some(flush)) => self.flush_for(pid, flush),
                Ok(None) => {}
                // Changed since the reverse map recorded it, or (never) outside
                // RAM: the entry does not hold this frame.
                Err(SwapOutError::NotThisFrame { .. } | SwapOutError::Ram(_)) => continue,
            }
            if let Some(s) = self.swap.dev.as_mut() {
                s.get(slot);
            }
            self.uncount(pid, pfn);
            if let Ok(mm) = self.mm_mut(pid) {
                mm.swap_pages += 1;
            }
            self.rmap.remove(pfn, pid, va);
            self.put_frame(pfn);
        }
        if cached.is_some() {
            self.drop_swap_cache(slot);
        } else {
            self.log.counters.swap_outs += 1;
        }
        if let Some(s) = self.swap.dev.as_mut() {
            if s.count(slot) == 0 {
                // Nothing mapped it after all: give the slot back.
                s.get(slot);
                s.put(slot);
            }
        }
        true
    }

    /// Reads slot `slot` into the fresh frame `pfn` and puts it in the swap cache, whose
    /// reference is the frame's one.
    fn read_into_cache(&mut self, slot: SwapSlot, pfn: Pfn) {
        let ps = self.page_size() as usize;
        self.zero_frame(pfn);
        let mut read = None;
        if let Some(s) = self.swap.dev.as_mut() {
            if s.has_data(slot) {
                let mut buf = vec![0u8; ps];
                match s.read(slot, &mut buf) {
                    Ok(_) => read = Some(buf),
                    Err(_) => self.log.counters.swap_errors += 1,
                }
            } else {
                s.note_zero_read();
            }
        }
        if let Some(buf) = read {
            self.write_frame(pfn, &buf);
        }
        if let Some(s) = self.swap.dev.as_mut() {
            s.cache(slot, pfn);
        }
    }

    /// Gives back `pid`'s reference to `slot` (an entry naming it is gone): the slot's
    /// count drops, its swap-cache page goes with its last reference, and the process
    /// has one page fewer in swap.
    pub(in crate::os) fn release_swap_slot(&mut self, pid: Pid, slot: SwapSlot) {
        let gone = self.swap.dev.as_mut().is_some_and(|s| {
            s.put(slot);
            s.count(slot) == 0
        });
        if gone {
            self.drop_swap_cache(slot);
        }
        if let Ok(mm) = self.mm_mut(pid) {
            mm.swap_pages = mm.swap_pages.saturating_sub(1);
        }
    }

    /// Drops the swap cache's page for `slot`, if it holds one.
    pub(in crate::os) fn drop_swap_cache(&mut self, slot: SwapSlot) {
        if let Some(pfn) = self.swap.dev.as_mut().and_then(|s| s.uncache(slot)) {
            self.put_frame(pfn);
        }
    }

    /// Swap readahead: the next slots after `slot` that are in use and not cached are
    /// read into the swap cache in the same request (slots are handed out in order, so
    /// neighbours were usually evicted together). The window adapts as Linux's
    /// `swapin_nr_pages` does: it doubles (up to `swap_readahead`) when pages read
    /// ahead were used since the last readahead, and halves (down to none) when they
    /// were not. Only free frames above the `low` watermark are used.
    fn swap_readahead(&mut self, slot: SwapSlot) -> u64 {
        let max = self.config.swap_readahead.max(1);
        self.swap.ra_window = if self.swap.ra_hits > 0 {
            (self.swap.ra_window * 2).clamp(2, max)
        } else {
            (self.swap.ra_window / 2).max(1)
        };
        self.swap.ra_hits = 0;
        let mut read = 0;
        for s in slot.0 + 1..slot.0.saturating_add(self.swap.ra_window) {
            let s = SwapSlot(s);
            let wanted = self.swap.dev.as_ref().is_some_and(|d| {
                (s.0 as u64) < d.stats.slots && d.count(s) > 0 && d.cached(s).is_none()
            });
            if !wanted {
                continue;
            }
            if self.frames.nr_free() <= self.reclaim.watermarks.low {
                break;
            }
            let Some(pfn) = self.frames.alloc(1, FrameKind::Anon, 0) else {
                break;
            };
            self.groups.list[0].charged += 1;
            self.lru_add(pfn);
            self.read_into_cache(s, pfn);
            self.log.counters.swap_readahead += 1;
            read += 1;
        }
        read
    }

    /// Brings a swapped-out page back for `pid` at `page`, whose entry (at `pte`) names
    /// `slot`: from the swap cache (minor)
    /// or from the device (major), with readahead. A page other entries still name is
    /// shared through the swap cache and mapped read-only (copy-on-write, as before it
    /// left); the last one to take it gets it writable and the slot is freed.
    pub(in crate::os) fn swap_in(
        &mut self,
        pid: Pid,
        vma: &crate::os::Vma,
        page: VirtAddr,
        pte: crate::addr::PhysAddr,
        slot: SwapSlot,
    ) -> Result<crate::os::FaultKind, crate::os::Violation> {
        let paging = self.machine.spec.paging;
        let (pfn, kind) = match self.swap.dev.as_ref().and_then(|s| s.cached(slot)) {
            Some(pfn) => {
                self.swap.ra_hits += 1;
                (pfn, crate::os::FaultKind::SwapCache)
            }
            None => {
                let pfn = self.alloc_user_frame(pid, FrameKind::Anon)?;
                // The entry may have changed while memory was found (the OOM killer,
                // or this process exiting): then just retry. Tables are freed only by
                // munmap and exit, so while the process lives the entry is where it was.
                let still = self.mm(pid).is_ok()
                    && matches!(
                        PageTable::slot_at(&paging, &self.machine.ram, pte),
                        Some(s @ Slot::Soft { .. }) if s.soft() == Some(SoftPte::Swap(slot))
                    );
                if !still {
                    self.put_frame(pfn);
                    return if self.mm(pid).is_ok() {
                        Ok(crate::os::FaultKind::Spurious)
                    } else {
                        Err(crate::os::Violation::OutOfMemory)
                    };
                }
                self.read_into_cache(slot, pfn);
                let ahead = self.swap_readahead(slot);
                let bytes = (1 + ahead) * self.page_size();
                self.log.counters.io_wait_ns += self.config.storage.transfer_ns(bytes);
                self.log.counters.swap_ins += 1;
                (pfn, crate::os::FaultKind::SwapIn)
            }
        };
        self.mm(pid)
            .map_err(|_| crate::os::Violation::OutOfMemory)?;
        // The entry was just read (the process lives, so its tables stay): clearing it
        // cannot fail; it was not present, so no flush is owed.
        let cleared = PageTable::clear_soft_at(&paging, &mut self.machine.ram, pte);
        debug_assert!(cleared.is_ok(), "swap entry at {pte} outside RAM");
        if let Ok(mm) = self.mm_mut(pid) {
            mm.swap_pages = mm.swap_pages.saturating_sub(1);
        }
        let last = match self.swap.dev.as_mut() {
            Some(s) => {
                s.put(slot);
                s.count(slot) == 0
            }
            None => true,
        };
        self.frames.get(pfn);
        if last {
            // Nobody else names the slot: the page leaves the swap cache.
            self.drop_swap_cache(slot);
        }
        let writable = last && self.frames.refs(pfn) == 1;
        let flags = self.user_flags(vma.prot, writable, false);
        if self.install_at(pid, page, pte, pfn, flags).is_err() {
            self.put_frame(pfn);
            return Err(crate::os::Violation::OutOfMemory);
        }
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn pages_beyond_ram_go_to_swap_and_come_back_intact() {
        for policy in [
            ReclaimPolicy::Fifo,
            ReclaimPolicy::Clock,
            ReclaimPolicy::TwoList,
        ] {
            let mut k = boot_small(2 << 20, 8 << 20, policy);
            let base = k.frame_baseline();
            let pid = spawn(&mut k);
            let n = 1024u64; // 4 MiB of data on 2 MiB of RAM
            let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
            for i in 0..n {
                k.write_u64(pid, VirtAddr(a.0 + i * 4096 + 8 * (i % 500)), i * 7 + 1)
                    .unwrap();
            }
            assert!(k.log.counters.swap_outs > 0, "{policy:?}");
            for i in (0..n).rev() {
                let got = k
                    .read_u64(pid, VirtAddr(a.0 + i * 4096 + 8 * (i % 500)))
                    .unwrap();
                assert_eq!(got, i * 7 + 1, "{policy:?} page {i}");
            }
            assert!(k.log.counters.swap_ins > 0);
            assert_eq!(faults(&k, FaultKind::SwapIn), k.log.counters.swap_ins);
            assert!(k.log.counters.io_wait_ns > 0);
            let p = k.process(pid).unwrap();
            let swapped = k.mm(pid).unwrap().swap_pages;
            assert!(p.rss().anon < n && swapped > 0);
            assert!(
                p.rss().anon + swapped >= n,
                "every page resident or in swap"
            );
            k.exit(pid, 0).unwrap();
            k.drop_caches();
            assert_eq!(k.swap_stats().unwrap().used, 0, "{policy:?}: slots freed");
            assert_eq!(k.frame_baseline(), base, "{policy:?}");
        }
    }

    #[test]
    fn the_swap_cache_shares_a_page_that_left_shared_and_readahead_fills_it() {
        let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Fifo);
        let n = 64u64;
        // Push everything out with a third process.
        let (parent, child, hog, a) = fork_under_pressure(&mut k, n, 400);
        let swapped = k.mm(parent).unwrap().swap_pages;
        assert!(swapped > 8, "{swapped}");
        k.exit(hog, 0).unwrap();
        // The parent reads its pages back: some from the device, the rest read ahead.
        for i in 0..n {
            assert_eq!(k.read_u64(parent, VirtAddr(a.0 + i * 4096)).unwrap(), i);
        }
        assert!(k.log.counters.swap_readahead > 0);
        assert!(faults(&k, FaultKind::SwapCache) > 0);
        let major = faults(&k, FaultKind::SwapIn);
        // The child's copies of the same pages come from the swap cache: no more reads.
        for i in 0..n {
            assert_eq!(k.read_u64(child, VirtAddr(a.0 + i * 4096)).unwrap(), i);
        }
        assert_eq!(
            faults(&k, FaultKind::SwapIn),
            major,
            "the child found them cached"
        );
        // And they are still copy-on-write.
        k.write_u64(child, a, 999).unwrap();
        assert_eq!(k.read_u64(parent, a).unwrap(), 0);
        k.exit(child, 0).unwrap();
        k.exit(parent, 0).unwrap();
        assert_eq!(k.swap_stats().unwrap().used, 0);
    }
}
