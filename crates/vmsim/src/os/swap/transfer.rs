//! Swap-out and swap-in: anonymous pages written to their slots and their entries turned
//! into swap entries; a swap fault reading its page back (with readahead of the slots
//! around it into the swap cache), and the swap cache's frames dropped when no entry
//! needs them.

use crate::addr::{Pfn, SwapSlot, VirtAddr};
use crate::hw::{PageTable, Slot, SoftPte, SwapOutError};
use crate::os::frames::FrameKind;
use crate::os::{Kernel, Pid};

/// What swapping out a frame did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::os) enum SwapOut {
    /// The frame is free; its page is in this slot.
    Gone(SwapSlot),
    /// The page is unmapped and its write sent; the frame stays in the swap cache
    /// until the write completes (`os/inflight.rs`).
    Writing,
}

impl Kernel {
    /// Hints the host to cache what the next swap-out's fresh slot will touch: its
    /// state and its place for a shadow. Nothing computed changes.
    #[inline]
    fn prefetch_next_slot(&self) {
        if let Some(dev) = self.swap.dev.as_ref() {
            if let Some(next) = dev.next_slot() {
                dev.prefetch_slot(next);
                self.reclaim.shadows.prefetch_swap(next);
            }
        }
    }

    /// Swaps out an anonymous frame: writes it to a slot (unless the swap cache says
    /// its slot still holds its bytes) and turns every entry that maps it into a swap
    /// entry. During a two-list reclaim pass that collects its writes, a page written
    /// now stays in the swap cache under writeback ([`SwapOut::Writing`]); otherwise
    /// the frame is freed. `None` if it cannot go (no swap, no slot, a write error,
    /// pinned by a fault in progress).
    pub(in crate::os) fn swap_out(&mut self, pfn: Pfn) -> Option<SwapOut> {
        let paging = self.machine.spec.paging;
        // The charge goes with the frame: whose it was, before it is freed.
        let group = self.frames.group(pfn);
        let cached = self.swap.dev.as_ref().and_then(|s| s.cached_slot(pfn));
        if !self.rmap.is_mapped(pfn) {
            // Read ahead and never used: its bytes are in its slot already.
            if let Some(slot) = cached {
                self.drop_swap_cache(slot);
                return Some(SwapOut::Gone(slot));
            }
            // A frame on its way to being mapped is not a candidate.
            return None;
        }
        // In the swap cache, the slot holds the page's bytes unless a mapping wrote it
        // since it came back (a dirty entry): then they are written again. Otherwise
        // a fresh slot is written.
        let (slot, write) = match cached {
            Some(slot) => (slot, self.mapped_dirty(pfn)),
            None => match self.swap.dev.as_mut().and_then(|s| s.alloc()) {
                Some(slot) => {
                    self.prefetch_next_slot();
                    (slot, true)
                }
                None => return None,
            },
        };
        // Whether the page stays in the swap cache while its bytes are written.
        let mut writeback = false;
        if write && self.write_swap_page(pfn, slot, group, cached.is_none())? {
            writeback = self.collecting_writes();
        }
        // A page that stays in the swap cache must not leave it as its mappings go
        // (`put_frame` drops a cached page whose slot only the cache holds): the
        // cache's reference to the slot is the entries' from now on.
        let was_owned = writeback && self.swap.dev.as_mut().is_some_and(|s| s.disown(slot));
        if writeback && cached.is_none() {
            // The swap cache takes the page, and a reference to its frame.
            if let Some(s) = self.swap.dev.as_mut() {
                s.cache(slot, pfn);
            }
            self.frames.get(pfn);
        }
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
        let named = self
            .swap
            .dev
            .as_ref()
            .is_some_and(|s| s.count(slot) > u16::from(was_owned));
        if writeback && named {
            if was_owned {
                if let Some(s) = self.swap.dev.as_mut() {
                    s.put(slot);
                }
            }
            self.queue_write(pfn, slot);
            return Some(SwapOut::Writing);
        }
        if was_owned {
            // No entry took the page: as it was, for the cache to give back below.
            if let Some(s) = self.swap.dev.as_mut() {
                s.own(slot);
            }
        }
        if cached.is_some() || writeback {
            self.drop_swap_cache(slot);
        }
        if let Some(s) = self.swap.dev.as_mut() {
            if s.count(slot) == 0 {
                // Nothing mapped it after all: give the slot back.
                s.get(slot);
                s.put(slot);
            }
        }
        Some(SwapOut::Gone(slot))
    }

    /// A trace's mark: the page `pid` maps at `va` holds bytes other than zeros.
    pub fn mark_nonzero(&mut self, pid: Pid, va: VirtAddr) {
        let paging = self.machine.spec.paging;
        let Ok(mm) = self.mm(pid) else { return };
        if let Some(m) = mm.pt.lookup(&paging, &self.machine.ram, va) {
            self.frames.set_nonzero(m.frame_of(&paging, va), true);
        }
    }

    /// The trace marks the pages that hold bytes other than zeros: from now on an
    /// unmarked page goes to swap as a page of zeros.
    pub fn use_zero_marks(&mut self) {
        self.swap.zero_marks = true;
    }

    /// Whether `pfn`, whose bytes are `data`, goes out as a page of zeros (Linux's
    /// zeromap): by its bytes where stores carry them
    /// ([`KernelConfig::store_values`]); by the trace's marks where it gives them
    /// (a `values` event); otherwise never (the bytes are not known).
    ///
    /// [`KernelConfig::store_values`]: crate::os::KernelConfig::store_values
    fn is_zero_page(&self, pfn: Pfn, data: Option<&[u8]>) -> bool {
        if self.config.store_values {
            data.is_none_or(super::is_zero_filled)
        } else {
            self.swap.zero_marks && !self.frames.nonzero(pfn)
        }
    }

    /// Reads slot `slot` into the fresh frame `pfn` and puts it in the swap cache, whose
    /// reference is the frame's one. A page that went out as zeros reads nothing and
    /// counts in `swap_zero_ins`, not in `pswpin`; any other is marked as holding
    /// bytes (for a trace's marks). Whether it read from storage.
    pub(in crate::os) fn read_into_cache(&mut self, slot: SwapSlot, pfn: Pfn) -> bool {
        let ps = self.page_size() as usize;
        self.zero_frame(pfn);
        let mut read = None;
        let mut zero = false;
        if let Some(s) = self.swap.dev.as_mut() {
            zero = s.is_zero(slot);
            if s.has_data(slot) {
                let mut buf = vec![0u8; ps];
                match s.read(slot, &mut buf) {
                    Ok(_) => read = Some(buf),
                    Err(e) => self.swap_failed("read", slot, e),
                }
            } else {
                s.note_zero_read();
            }
        }
        self.frames.set_nonzero(pfn, !zero);
        if zero {
            self.log.counters.swap_zero_ins += 1;
        } else {
            self.group_of_frame(pfn).pswpin += 1;
            self.note_plugged_read(slot);
        }
        if let Some(buf) = read {
            self.write_frame(pfn, &buf);
        }
        if let Some(s) = self.swap.dev.as_mut() {
            s.cache(slot, pfn);
        }
        self.log.counters.paging_cycles +=
            self.config.page_in_cycles + self.config.swap_page_cycles;
        self.refault(pfn, crate::os::workingset::Refault::Swap(slot));
        !zero
    }

    /// Counts a failed `op` (`write` or `read`) of `slot` and keeps the first such
    /// failure for the run to report.
    fn swap_failed(&mut self, op: &'static str, slot: SwapSlot, e: std::io::Error) {
        self.log.counters.swap_errors += 1;
        self.swap.note_failure(op, slot, e);
    }

    /// Sends the read of a swap fault's window of `pages` (its own page first), read
    /// into the swap cache since `swap_zero_ins` was `zeros_before`: a page that went
    /// out as zeros reads nothing (Linux's zeromap), so the request carries only the
    /// others, and none is sent if there are none. If the fault's own page read
    /// nothing (`own_read` false) the fault waits for nothing, and is noted so.
    ///
    /// The pages read ahead were locked as they were added (a reclaim that finding
    /// their frames set off passed over them, as Linux's passes over folios locked for
    /// their read); they stay locked until the request completes, and a fault that
    /// finds one before then waits for it.
    pub(in crate::os) fn read_swap_window(
        &mut self,
        pages: u64,
        zeros_before: u64,
        own_read: bool,
    ) {
        let zeros = self.log.counters.swap_zero_ins - zeros_before;
        let read = pages.saturating_sub(zeros);
        if read > 0 {
            self.read_swap(read * self.page_size());
        }
        // The request completes when the device has sent its last byte.
        let done = self.inflight.free_at;
        let mut window = std::mem::take(&mut self.swap.window);
        for pfn in window.drain(..) {
            self.unlock_read_at(pfn, done);
        }
        self.swap.window = window;
        if !own_read {
            self.own_read = crate::os::OwnRead::Nothing;
        }
        self.log.counters.swap_ins += 1;
    }

    /// Writes the bytes of frame `pfn`, charged to `group`, to `slot` and counts the
    /// swap-out; a page of zeros is only marked, with no I/O and no `pswpout` (Linux's
    /// zeromap). `None` if the device failed (a `fresh` slot is given back); else
    /// whether bytes went out.
    pub(in crate::os) fn write_swap_page(
        &mut self,
        pfn: Pfn,
        slot: SwapSlot,
        group: u16,
        fresh: bool,
    ) -> Option<bool> {
        let data = self.machine.ram.frame_contents(pfn.0);
        let zero = self.is_zero_page(pfn, data);
        let swap = self.swap.dev.as_mut()?;
        if let Err(e) = swap.write(slot, data.filter(|_| !zero)) {
            if fresh {
                swap.get(slot);
                swap.put(slot);
            }
            self.swap_failed("write", slot, e);
            return None;
        }
        swap.set_zero(slot, zero);
        self.log.counters.swap_outs += 1;
        self.log.counters.paging_cycles += self.config.swap_page_cycles;
        if zero {
            self.log.counters.swap_zero_outs += 1;
        } else {
            let bytes = self.page_size();
            self.log.counters.io_busy_ns += self.config.storage.transfer_ns(bytes);
            self.group_stat(group).pswpout += 1;
        }
        Some(!zero)
    }

    /// Gives back `pid`'s reference to `slot` (an entry naming it is gone): the slot's
    /// count drops, its swap-cache page goes with its last reference, and the process
    /// has one page fewer in swap.
    pub(in crate::os) fn release_swap_slot(&mut self, pid: Pid, slot: SwapSlot) {
        self.put_swap_slot(slot);
        if let Ok(mm) = self.mm_mut(pid) {
            mm.swap_pages = mm.swap_pages.saturating_sub(1);
        }
    }

    /// Drops a reference to `slot`; with the last, its swap-cache page goes too.
    pub(in crate::os) fn put_swap_slot(&mut self, slot: SwapSlot) {
        let gone = self.swap.dev.as_mut().is_some_and(|s| {
            s.put(slot);
            s.count(slot) == 0
        });
        if gone {
            self.drop_swap_cache(slot);
        }
    }

    /// Whether any entry mapping `pfn` has its Dirty bit set.
    pub(in crate::os) fn mapped_dirty(&self, pfn: Pfn) -> bool {
        let paging = self.machine.spec.paging;
        self.rmap.of(pfn).into_iter().any(|(_, _, pte)| {
            matches!(
                PageTable::slot_at(&paging, &self.machine.ram, pte),
                Some(Slot::Leaf(m)) if m.pfn == pfn && m.flags.contains(crate::hw::Flags::DIRTY)
            )
        })
    }

    /// Drops the swap cache's page for `slot`, if it holds one, and the cache's
    /// reference to the slot if it owned one.
    pub(in crate::os) fn drop_swap_cache(&mut self, slot: SwapSlot) {
        if let Some(s) = self.swap.dev.as_mut() {
            if s.disown(slot) {
                s.put(slot);
            }
        }
        if let Some(pfn) = self.swap.dev.as_mut().and_then(|s| s.uncache(slot)) {
            self.swap.ra_marked.remove(&pfn.0);
            self.forget_read(pfn);
            self.forget_write(pfn);
            self.put_frame(pfn);
        }
    }

    /// Hints the host to fetch what a fault on the entry at `pte` would look at first,
    /// if the entry names a swap slot: the slot's state and its shadow. A replay calls
    /// it an access ahead, with the entry already fetched ([`Mmu::prefetch_walk`]).
    /// Nothing computed changes.
    ///
    /// [`Mmu::prefetch_walk`]: crate::hw::Mmu::prefetch_walk
    #[inline]
    pub(in crate::os) fn prefetch_swap_entry(&self, pte: crate::addr::PhysAddr) {
        let Some(dev) = self.swap.dev.as_ref() else {
            return;
        };
        let paging = &self.machine.spec.paging;
        let entry = PageTable::slot_at(paging, &self.machine.ram, pte).and_then(|s| s.soft());
        if let Some(SoftPte::Swap(slot)) = entry {
            dev.prefetch_slot(slot);
            self.reclaim.shadows.prefetch_swap(slot);
        }
    }

    /// Brings a swapped-out page back for `pid` at `page`, whose entry (at `pte`) names
    /// `slot`: from the swap cache (minor)
    /// or from the device (major), with readahead. A page other entries still name is
    /// shared through the swap cache and mapped read-only (copy-on-write, as before it
    /// left); the last one to take it gets it writable. A `write` fault frees the slot;
    /// a read keeps it, owned by the swap cache, while swap is at most half full (Linux's
    /// `should_try_to_free_swap` and `vm_swap_full`), so a page that stays clean leaves
    /// again without a write.
    pub(in crate::os) fn swap_in(
        &mut self,
        pid: Pid,
        vma: &crate::os::Vma,
        page: VirtAddr,
        pte: crate::addr::PhysAddr,
        slot: SwapSlot,
        write: bool,
    ) -> Result<crate::os::FaultKind, crate::os::Violation> {
        let paging = self.machine.spec.paging;
        self.reclaim.shadows.prefetch_swap(slot);
        let (pfn, kind) = match self.swap.dev.as_ref().and_then(|s| s.cached(slot)) {
            Some(pfn) => {
                // Read ahead and still in flight: the fault waits for it (minor).
                self.wait_read(pfn);
                self.swap_cache_hit(pfn, Some((pid, page)));
                (pfn, crate::os::FaultKind::SwapCache)
            }
            None => {
                // A window read ahead goes in one plug, as `swap_cluster_readahead`
                // and `swap_vma_readahead` open one around finding and reading its
                // pages: the swap writes of reclaim that finding them runs are held in
                // it too. A page read alone has none.
                let win = self.swap_window(vma, page, slot);
                let plugged = win > 1 && self.plug_writes();
                let window = self.swap_in_window(pid, vma, page, pte, slot, win);
                self.end_writes(plugged);
                let Some(w) = window? else {
                    return Ok(crate::os::FaultKind::Spurious);
                };
                self.read_swap_window(1 + w.ahead, w.zeros, w.own_read);
                (w.pfn, crate::os::FaultKind::SwapIn)
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
        let (last, owned) = match self.swap.dev.as_mut() {
            Some(s) => {
                let last = s.count(slot) == 1;
                // A locked page never leaves again: its slot goes (Linux's
                // should_try_to_free_swap).
                let keep =
                    last && !write && !vma.locked.is_locked() && s.stats.used * 2 <= s.stats.slots;
                if keep {
                    // The entry's reference becomes the swap cache's.
                    s.own(slot);
                } else {
                    s.put(slot);
                }
                (last, keep)
            }
            None => (true, false),
        };
        self.frames.get(pfn);
        if last && !owned {
            // Nobody else names the slot: the page leaves the swap cache.
            self.drop_swap_cache(slot);
        }
        let writable = last && self.frames.refs(pfn) == 1 + u32::from(owned);
        let flags = self.user_flags(vma.prot, writable, false);
        if self.install_at(pid, page, pte, pfn, flags).is_err() {
            self.put_frame(pfn);
            return Err(crate::os::Violation::OutOfMemory);
        }
        Ok(kind)
    }

    /// Finds a frame for a swap fault's page (at `pte`, naming `slot`) and the frames
    /// of its readahead window of `win` pages ([`Kernel::swap_window`]), and puts them
    /// in the swap cache to be read; `None` if the entry changed meanwhile (the fault
    /// is retried).
    fn swap_in_window(
        &mut self,
        pid: Pid,
        vma: &crate::os::Vma,
        page: VirtAddr,
        pte: crate::addr::PhysAddr,
        slot: SwapSlot,
        win: u32,
    ) -> Result<Option<SwapWindow>, crate::os::Violation> {
        let paging = self.machine.spec.paging;
        let pfn = self.alloc_user_frame(pid, FrameKind::Anon)?;
        // The entry may have changed while memory was found (the OOM killer, or this
        // process exiting): then just retry. Tables are freed only by munmap and exit,
        // so while the process lives the entry is where it was.
        let still = self.mm(pid).is_ok()
            && matches!(
                PageTable::slot_at(&paging, &self.machine.ram, pte),
                Some(s @ Slot::Soft { .. }) if s.soft() == Some(SoftPte::Swap(slot))
            );
        if !still {
            self.put_frame(pfn);
            return if self.mm(pid).is_ok() {
                Ok(None)
            } else {
                Err(crate::os::Violation::OutOfMemory)
            };
        }
        let zeros = self.log.counters.swap_zero_ins;
        let own_read = self.read_into_cache(slot, pfn);
        // Finding frames for the window may reclaim: not this page.
        self.reclaim.pinned.push(pfn);
        let ahead = self.swap_readahead(pid, vma, page, slot, win);
        self.reclaim.pinned.pop();
        Ok(Some(SwapWindow {
            pfn,
            ahead,
            zeros,
            own_read,
        }))
    }
}

/// A swap fault's page and its readahead window, in the swap cache and to be read.
struct SwapWindow {
    /// The faulting page's frame.
    pfn: Pfn,
    /// The pages read ahead with it.
    ahead: u64,
    /// `swap_zero_ins` before the window was read (pages found all zeros since are
    /// not read from the device).
    zeros: u64,
    /// Whether the faulting page's own bytes are read from the device.
    own_read: bool,
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    /// `n` pages of anonymous memory written (page `i` holding `i + 1`) by a process
    /// in a group of `max_pages` under two-list reclaim, with `swap` bytes of swap and
    /// whatever else `f` sets.
    fn written_in_group(
        n: u64,
        swap: u64,
        max_pages: u64,
        f: impl FnOnce(&mut crate::os::KernelConfig),
    ) -> (Kernel, Pid, VirtAddr) {
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = ReclaimPolicy::TwoList;
            c.swap_bytes = swap;
            c.memory_max = Some(max_pages * 4096);
            f(c);
        });
        let pid = spawn(&mut k);
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i + 1);
        (k, pid, a)
    }

    /// Reclaim that finding a swap fault's readahead window sets off holds its swap
    /// writes in the window's plug, as Linux's `swap_cluster_readahead` does: however
    /// many passes it takes (each page written costs the kernel time), they go to the
    /// device together when the window is read, so adjacent slots make one request
    /// and none of them is done before the others.
    #[test]
    fn a_swap_faults_window_holds_the_writes_of_the_reclaim_it_sets_off() {
        let n = 400;
        let (mut k, pid, a) = written_in_group(n, 16 << 20, 96, |c| {
            // Writes done within a microsecond: sent as each pass ended, a pass's
            // would be done, at the tail and freed, before the next pass.
            c.storage = crate::os::Storage::Vm.with_writes(1_000, 100_000_000_000);
        });
        while k.wait_first_io() {}
        let mut windows = 0;
        for i in 0..n {
            let before = k.writes_done();
            let (outs, ahead) = (k.log.counters.swap_outs, k.log.counters.swap_readahead);
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i + 1);
            let written = k.log.counters.swap_outs - outs;
            if written < 2 {
                continue;
            }
            let mut new: Vec<u64> = k
                .writes_done()
                .into_iter()
                .filter(|(p, _)| !before.contains_key(p))
                .map(|(_, done)| done)
                .collect();
            new.sort_unstable();
            new.dedup();
            assert!(!new.contains(&u64::MAX), "page {i}: all sent");
            if k.log.counters.swap_readahead > ahead {
                assert_eq!(new.len(), 1, "page {i}: {written} writes done at {new:?}");
                windows += 1;
            }
        }
        assert!(windows > 0, "some window set off reclaim that wrote");
    }

    /// The window's read is the plug's first request once its page is found, so
    /// Linux's 128 KiB rule (a plug whose first request is that large sends what it
    /// holds when another starts) never sends the runs of writes the window's
    /// reclaim queues after it, however long: only the 32-request limit or a wait
    /// does.
    #[test]
    fn a_window_holds_runs_of_writes_longer_than_a_request() {
        use crate::os::inflight::MAX_REQUEST_PAGES;
        let n = 4096;
        let (mut k, pid, a) = written_in_group(n, 64 << 20, 1024, |_| {});
        let mut long = 0;
        for pass in 0..2u64 {
            for i in 0..n {
                let flushes = k.inflight.size_flushes;
                let (outs, ahead) = (k.log.counters.swap_outs, k.log.counters.swap_readahead);
                let va = VirtAddr(a.0 + i * 4096);
                let v = k.read_u64(pid, va).unwrap();
                let window = k.log.counters.swap_readahead > ahead;
                let written = k.log.counters.swap_outs - outs;
                if window {
                    assert_eq!(k.inflight.size_flushes, flushes, "pass {pass} page {i}");
                    long += u64::from(written > MAX_REQUEST_PAGES as u64);
                }
                k.write_u64(pid, va, v + 1).unwrap();
            }
        }
        assert!(
            long > 0,
            "some window's reclaim wrote more than a request holds"
        );
    }

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
    fn a_swap_file_that_fails_is_reported_not_taken_for_a_full_device() {
        // Every write fails: the first failure is kept for the run to report, with the
        // slot and the system's reason; no page went out, and the slot tried is free.
        let mut k = boot_small(2 << 20, 8 << 20, ReclaimPolicy::TwoList);
        k.swap.dev.as_mut().unwrap().break_file();
        let pid = spawn(&mut k);
        let n = 1024u64;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        for i in 0..n {
            if k.write_u64(pid, VirtAddr(a.0 + i * 4096), i + 1).is_err() {
                break;
            }
        }
        assert!(k.log.counters.swap_errors > 0);
        assert_eq!(k.log.counters.swap_outs, 0);
        let e = k.take_swap_failure().expect("the failure is kept");
        let text = e.to_string();
        assert!(
            text.starts_with("swap file (temporary): could not write slot "),
            "{text}"
        );
        assert!(text.contains("not trustworthy"), "{text}");
        assert!(k.take_swap_failure().is_none(), "taken once");
        assert_eq!(
            k.swap_stats().unwrap().used,
            0,
            "no slot kept by a failed write"
        );

        // A read that fails: the device is broken after the pages went out.
        let mut k = boot_small(2 << 20, 8 << 20, ReclaimPolicy::TwoList);
        let pid = spawn(&mut k);
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        for i in 0..n {
            k.write_u64(pid, VirtAddr(a.0 + i * 4096), i + 1).unwrap();
        }
        assert!(k.log.counters.swap_outs > 0);
        // The pages still in memory go, so that reading the others back needs no
        // reclaim, whose writes would fail first.
        k.munmap(pid, VirtAddr(a.0 + n / 2 * 4096), n / 2 * 4096)
            .unwrap();
        k.swap.dev.as_mut().unwrap().break_file();
        for i in 0..n / 2 {
            let _ = k.read_u64(pid, VirtAddr(a.0 + i * 4096));
        }
        let e = k.take_swap_failure().expect("a read failed").to_string();
        assert!(e.contains("could not read slot"), "{e}");
    }

    #[test]
    fn a_major_fault_and_a_swapped_page_cost_the_kernel_time() {
        // The same program with the kernel's time for major faults and swapped pages,
        // and without: the same faults, and the clock later by exactly those costs.
        let run = |costs: bool| {
            let mut k = boot_small(2 << 20, 8 << 20, ReclaimPolicy::Fifo);
            if !costs {
                k.config.major_fault_cycles = 0;
                k.config.swap_page_cycles = 0;
            }
            let pid = spawn(&mut k);
            let n = 1024u64;
            let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
            for pass in 0..2 {
                for i in 0..n {
                    k.write_u64(pid, VirtAddr(a.0 + i * 4096), i + pass + 1)
                        .unwrap();
                }
            }
            k
        };
        let (with, without) = (run(true), run(false));
        let (c, c0) = (&with.log.counters, &without.log.counters);
        assert_eq!(c.faults, c0.faults);
        assert_eq!((c.swap_ins, c.swap_outs), (c0.swap_ins, c0.swap_outs));
        let majors = c.faults_in(crate::os::FaultClass::Major);
        assert!(majors > 100 && c.swap_outs > 1000, "{c:?}");
        let cfg = KernelConfig::default();
        assert_eq!(
            c.fault_cycles - c0.fault_cycles,
            majors * cfg.major_fault_cycles
        );
        // Every page read from swap (readahead's too) and every page written.
        let read = crate::linux::Vmstat::from_counters(c, 4096).pswpin + c.swap_zero_ins;
        assert!(read > c.swap_ins, "readahead read pages no fault asked for");
        assert_eq!(
            c.paging_cycles - c0.paging_cycles,
            (read + c.swap_outs) * cfg.swap_page_cycles
        );
        assert!(with.io_now() > without.io_now());
    }

    #[test]
    fn a_swap_fault_on_a_page_of_zeros_is_major_but_waits_for_nothing() {
        // Linux counts the fault major (the page was not in the swap cache), but the
        // zeromap fills it without a read: no storage time, no request.
        let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Clock);
        let pid = spawn(&mut k);
        let n = 1024u64;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        for pass in 0..2 {
            for i in 0..n {
                let va = VirtAddr(a.0 + i * 4096);
                if pass == 0 {
                    k.write_u64(pid, va, 0).unwrap();
                } else {
                    assert_eq!(k.read_u64(pid, va).unwrap(), 0);
                }
            }
        }
        let c = &k.log.counters;
        let majors = c.faults_in(crate::os::FaultClass::Major);
        assert!(majors > 100 && c.swap_zero_ins > 100, "{c:?}");
        assert_eq!(c.io_wait_ns, 0, "nothing was read");
        let faults: u64 = c.faults.iter().sum();
        assert_eq!(c.fault_cycles, faults * k.config.minor_fault_cycles);
    }

    #[test]
    fn pages_of_zeros_go_and_come_back_without_io_or_pswpout() {
        // The bytes known; not known; not known but marked (a trace's `nonzero`).
        for (store_values, marks) in [(true, false), (false, false), (false, true)] {
            let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Clock);
            k.config.store_values = store_values;
            if marks {
                k.use_zero_marks();
            }
            let pid = spawn(&mut k);
            let n = 1024u64;
            let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
            // Even pages hold a value; odd ones were written with zeros.
            let value = |i: u64| if i % 2 == 0 { i + 1 } else { 0 };
            for i in 0..n {
                let va = VirtAddr(a.0 + i * 4096);
                k.write_u64(pid, va, value(i)).unwrap();
                if value(i) != 0 {
                    k.mark_nonzero(pid, va);
                }
            }
            for i in 0..n {
                let got = k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap();
                assert_eq!(got, value(i), "page {i}");
            }
            let c = k.log.counters.clone();
            let v = crate::linux::Vmstat::from_counters(&c, 4096);
            assert!(c.swap_outs > 100 && c.swap_ins > 100);
            assert_eq!(v.pswpout, c.swap_outs - c.swap_zero_outs);
            // The pages of zeros are reported under Linux's names, each its own.
            assert_eq!(
                (v.swpout_zero, v.swpin_zero),
                (c.swap_zero_outs, c.swap_zero_ins)
            );
            if store_values || marks {
                // About half the pages that left were zeros: neither written nor read.
                assert!(c.swap_zero_outs * 3 > c.swap_outs, "{c:?}");
                assert!(c.swap_zero_outs * 3 < 2 * c.swap_outs, "{c:?}");
                assert!(c.swap_zero_ins > 0);
            } else {
                // Values unknown (a replayed trace): every page counts.
                assert_eq!((c.swap_zero_outs, c.swap_zero_ins), (0, 0));
            }
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

    #[test]
    fn a_sequential_reader_of_swapped_pages_waits_once_per_window() {
        let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Fifo);
        let pid = spawn(&mut k);
        let n = 2048u64; // 8 MiB on 2 MiB of RAM
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        for i in 0..n {
            k.write_u64(pid, VirtAddr(a.0 + i * 4096), i).unwrap();
        }
        let (majors, hits) = (
            faults(&k, FaultKind::SwapIn),
            faults(&k, FaultKind::SwapCache),
        );
        let swapped = k.mm(pid).unwrap().swap_pages;
        for i in 0..n / 4 {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i);
        }
        let majors = faults(&k, FaultKind::SwapIn) - majors;
        let hits = faults(&k, FaultKind::SwapCache) - hits;
        assert!(swapped >= n / 4, "the first quarter was swapped out");
        // Once the window has grown to 8 pages, one fault in 8 reads from swap.
        assert!(
            majors * 7 <= n / 4 + 16 && hits >= majors * 6,
            "{majors} swap-ins, {hits} swap-cache hits"
        );
        assert_eq!(k.log.counters.swap_readahead_hits, hits);
    }

    #[test]
    fn a_write_to_a_shared_page_in_swap_copies_it_in_the_same_fault() {
        let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Fifo);
        let n = 64u64;
        let (parent, child, hog, a) = fork_under_pressure(&mut k, n, 400);
        assert!(k.mm(child).unwrap().swap_pages > 8);
        k.exit(hog, 0).unwrap();
        let before = k.process(child).unwrap().stats.faults.iter().sum::<u64>();
        for i in 0..n {
            k.write_u64(child, VirtAddr(a.0 + i * 4096), 1000 + i)
                .unwrap();
        }
        let taken = k.process(child).unwrap().stats.faults.iter().sum::<u64>() - before;
        assert_eq!(taken, n, "one fault a page, swap-in and copy together");
        for i in 0..n {
            assert_eq!(k.read_u64(parent, VirtAddr(a.0 + i * 4096)).unwrap(), i);
            assert_eq!(
                k.read_u64(child, VirtAddr(a.0 + i * 4096)).unwrap(),
                1000 + i
            );
        }
    }

    /// 4 MiB of anonymous memory written (page `i` holding `i`) on 2 MiB of RAM under
    /// FIFO reclaim: the first pages are in swap.
    fn written_past_ram() -> (Kernel, Pid, VirtAddr, u64) {
        let mut k = boot_small(2 << 20, 64 << 20, ReclaimPolicy::Fifo);
        let pid = spawn(&mut k);
        let n = 1024u64;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i);
        (k, pid, a, n)
    }

    /// A write fault that swaps a page in frees its slot, even when the page was read
    /// alone (no readahead, so Linux has not drained the CPU's LRU batch that still
    /// holds a reference to it). Measured on Linux 6.18 (2026-12-07): 64 MiB written
    /// under a 32 MiB group, then 2,000 swapped pages taken back at random left 216 to
    /// 512 kB in `SwapCached` when written, 7.4 MB when read.
    #[test]
    fn a_write_fault_frees_the_slot_of_the_page_it_swaps_in() {
        let (mut k, pid, a, _) = written_past_ram();
        // No readahead (`page-cluster` 0): every page is read alone.
        k.swap.ra_max = 1;
        let at = |i: u64| VirtAddr(a.0 + i * 4096);
        let (ins, ahead) = (k.log.counters.swap_ins, k.log.counters.swap_readahead);
        // Pages far apart among the first ones, which went out first.
        for i in (0..256).step_by(37) {
            k.write_u64(pid, at(i), 7000 + i).unwrap();
        }
        assert!(k.log.counters.swap_ins > ins, "the pages came from swap");
        assert_eq!(k.log.counters.swap_readahead, ahead, "each read alone");
        assert!(
            !k.swap.dev.as_ref().unwrap().owns_any(),
            "no slot is kept for a page written back in"
        );
        // A read of one does keep its slot.
        assert_eq!(k.read_u64(pid, at(300)).unwrap(), 300);
        assert!(k.swap.dev.as_ref().unwrap().owns_any());
    }

    #[test]
    fn a_page_read_back_keeps_its_slot_and_leaves_again_written_only_if_dirtied() {
        let (mut k, pid, a, n) = written_past_ram();
        let at = |i: u64| VirtAddr(a.0 + i * 4096);
        // Read the first 256 back: they keep their slots.
        for i in 0..256 {
            assert_eq!(k.read_u64(pid, at(i)).unwrap(), i);
        }
        assert!(k.swap.dev.as_ref().unwrap().owns_any());
        // Dirty half of them; reading the rest of the area pushes all 256 out again.
        let faults_before = k.process(pid).unwrap().stats.faults.iter().sum::<u64>();
        for i in 0..128 {
            k.write_u64(pid, at(i), 5000 + i).unwrap();
        }
        let outs = k.log.counters.swap_outs;
        for i in 256..n {
            k.read_u64(pid, at(i)).unwrap();
        }
        let written = k.log.counters.swap_outs - outs;
        assert!(
            written >= 128,
            "the dirtied pages were written again: {written}"
        );
        for i in 0..256 {
            let want = if i < 128 { 5000 + i } else { i };
            assert_eq!(k.read_u64(pid, at(i)).unwrap(), want, "page {i}");
        }
        assert!(
            k.process(pid).unwrap().stats.faults.iter().sum::<u64>() > faults_before,
            "they had left"
        );
        k.exit(pid, 0).unwrap();
        k.drop_caches();
        assert_eq!(k.swap_stats().unwrap().used, 0, "every slot freed");
    }
}
