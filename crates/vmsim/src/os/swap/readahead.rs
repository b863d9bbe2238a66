//! Swap readahead: the slots a swap fault reads besides its own, into the swap cache,
//! in one of the two ways Linux 6.x chooses between (`swap_use_vma_readahead`).
//!
//! - **Cluster** (`swap_cluster_readahead`, the default): the aligned block of slots
//!   around the faulting slot on the device, whoever's pages they hold. Linux uses it
//!   unless every swap device is non-rotational: a swap file on a disk that reports
//!   itself rotational (as virtio disks of most virtual machines do) gets it. How
//!   well it guesses depends on the order pages went out in: a program that wrote
//!   its pages in a random order and reads them back in address order finds nothing
//!   it needs in the block, and its window shrinks to one page.
//! - **VMA** (`swap_vma_readahead`, for swap on SSDs that say so, and zram): the
//!   pages around the faulting address in its VMA, whatever slots they went to.
//!
//! Both size the window as `__swapin_nr_pages` does, from the readahead hits since
//! the last swap fault: the cluster way counts them for the whole machine, the VMA
//! way for each VMA. Pages read ahead are marked (`PG_readahead`); a fault that finds
//! one is a hit (`swap_ra_hit`).

use crate::addr::{SwapSlot, VirtAddr};
use crate::hw::{Slot, SoftPte};
use crate::os::frames::FrameKind;
use crate::os::{Kernel, Pid};
use serde::Serialize;

/// Which slots a swap fault reads ahead (see the module's notes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum SwapReadahead {
    /// The aligned block of slots around the faulting one (a rotational swap device).
    #[default]
    Cluster,
    /// The pages around the faulting address in its VMA (non-rotational swap).
    Vma,
}

impl SwapReadahead {
    /// Both, in the order the documentation lists them.
    pub const ALL: [SwapReadahead; 2] = [SwapReadahead::Cluster, SwapReadahead::Vma];

    /// The name flags and files use.
    pub fn name(self) -> &'static str {
        match self {
            SwapReadahead::Cluster => "cluster",
            SwapReadahead::Vma => "vma",
        }
    }

    /// Parses a name of [`SwapReadahead::name`].
    pub fn parse(s: &str) -> Option<SwapReadahead> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// Swap readahead's state, what sizes the next window: the place of the last swap
/// fault that read, the window it read, and the readahead hits since. The cluster way
/// keeps one for the machine (Linux's `swapin_nr_pages` statics), the VMA way one in
/// each [`Vma`](crate::os::Vma) (Linux's `swap_readahead_info`), where it goes where
/// Linux's goes: copied into both parts of a split and into a forked child's copy,
/// moved by `mremap`, gone with the area. Both start as Linux's do at boot and in a
/// new VMA: [`START_HITS`](super::START_HITS) hits, no window, place 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapReadaheadState {
    /// The last fault's place: for the cluster way the slot of the last fault that
    /// had no hits to go by, for the VMA way the virtual page number of the last
    /// fault.
    pub(in crate::os) prev: u64,
    /// The window the last fault read, in pages.
    pub(in crate::os) win: u32,
    /// Pages read ahead that faults have found since.
    pub(in crate::os) hits: u32,
}

impl Default for SwapReadaheadState {
    fn default() -> Self {
        SwapReadaheadState {
            prev: 0,
            win: 0,
            hits: super::START_HITS,
        }
    }
}

impl SwapReadaheadState {
    /// The pages a swap fault at place `at` reads, its own among them, with at most
    /// `max` a fault (1: none ahead).
    fn window(&self, at: u64, max: u32) -> u32 {
        if max <= 1 {
            1
        } else {
            swapin_pages(self.prev, at, self.hits, max, self.win)
        }
    }
}

/// Linux's `__swapin_nr_pages`: the pages a swap fault at page `page` reads, given the
/// last one's page and window and the readahead hits since ("+ 2" is Linux's
/// heuristic; it works).
fn swapin_pages(prev: u64, page: u64, hits: u32, max: u32, prev_win: u32) -> u32 {
    let mut pages = hits + 2;
    if pages == 2 {
        if page != prev + 1 && page + 1 != prev {
            pages = 1;
        }
    } else {
        pages = pages.next_power_of_two().max(4);
    }
    pages.min(max).max(prev_win / 2)
}

impl Kernel {
    /// Reads ahead around a swap fault by `pid` at `page` (in `vma`) on `slot`, the
    /// way the kernel is configured to, in a window of `win` pages (its
    /// [`Kernel::swap_window`]); returns the pages read.
    pub(super) fn swap_readahead(
        &mut self,
        pid: Pid,
        vma: &crate::os::Vma,
        page: VirtAddr,
        slot: SwapSlot,
        win: u32,
    ) -> u64 {
        match self.config.swap_readahead_by {
            SwapReadahead::Cluster => self.cluster_readahead(pid, slot, win),
            SwapReadahead::Vma => self.vma_readahead(pid, vma, page, win),
        }
    }

    /// The pages a swap fault at `page` (in `vma`) on `slot` reads, its own among
    /// them, as the kernel is configured to read ahead: 1 when it reads none ahead
    /// (then Linux reads the page alone, without a plug around it).
    pub(in crate::os) fn swap_window(
        &self,
        vma: &crate::os::Vma,
        page: VirtAddr,
        slot: SwapSlot,
    ) -> u32 {
        match self.config.swap_readahead_by {
            SwapReadahead::Cluster => self.cluster_window(slot),
            SwapReadahead::Vma => self.vma_window(vma, page),
        }
    }

    /// [`SwapReadahead::Cluster`]'s window for a fault on `slot`.
    pub(in crate::os) fn cluster_window(&self, slot: SwapSlot) -> u32 {
        self.swap
            .cluster
            .window(u64::from(slot.0), self.swap.ra_max)
    }

    /// [`SwapReadahead::Vma`]'s window for a fault at `page` in `vma` (the fault's
    /// copy, found as it began).
    fn vma_window(&self, vma: &crate::os::Vma, page: VirtAddr) -> u32 {
        vma.swap_ra
            .window(page.0 / self.page_size(), self.swap.ra_max)
    }

    /// A fault found its page in the swap cache, in frame `pfn`, read ahead or not
    /// (Linux's `swap_update_readahead`); `fault` is who faulted where (`None` for
    /// shared memory, which Linux counts for the machine). The page's
    /// readahead mark goes, and a marked page counts as a hit toward the next window:
    /// the VMA's under [`SwapReadahead::Vma`], the machine's otherwise. Under
    /// [`SwapReadahead::Vma`] every such fault also becomes the VMA's last one, so a
    /// reader going on past pages still cached reads on from where it is.
    pub(in crate::os) fn swap_cache_hit(
        &mut self,
        pfn: crate::addr::Pfn,
        fault: Option<(Pid, VirtAddr)>,
    ) {
        let marked = self.swap.ra_marked.remove(&pfn.0);
        if marked {
            self.log.counters.swap_readahead_hits += 1;
        }
        match (self.config.swap_readahead_by, fault) {
            (SwapReadahead::Vma, Some((pid, page))) => {
                let at = page.0 / self.page_size();
                self.update_swap_ra(pid, page, |ra| {
                    ra.hits += u32::from(marked);
                    ra.prev = at;
                });
            }
            _ => self.swap.cluster.hits += u32::from(marked),
        }
    }

    /// [`SwapReadahead::Cluster`], as Linux's `swap_cluster_readahead` does it: the
    /// window (`__swapin_nr_pages` over the machine's hits since the last swap fault,
    /// at most `1 << page-cluster`) is the aligned block of that many slots holding
    /// `slot`; every other slot of it in use and not cached is read into the swap
    /// cache, charged to `pid`'s group, and marked as read ahead. Returns the pages
    /// read.
    pub(in crate::os) fn cluster_readahead(&mut self, pid: Pid, slot: SwapSlot, win: u32) -> u64 {
        let last = self.swap.cluster;
        let at = u64::from(slot.0);
        self.swap.cluster = SwapReadaheadState {
            // Linux moves its last offset only on a fault with no hits to go by.
            prev: if last.hits == 0 { at } else { last.prev },
            win,
            hits: 0,
        };
        if win <= 1 {
            return 0;
        }
        // A block of a power of two slots (Linux's maximum is `1 << page-cluster`),
        // aligned on the device's offsets, where the header is offset 0 and slot `s`
        // is offset `s + 1`.
        let mask = (1u64 << (63 - u64::from(win).leading_zeros())) - 1;
        let slots = self.swap.dev.as_ref().map_or(0, |d| d.stats.slots);
        let off = at + 1;
        let start = (off & !mask).max(1) - 1;
        let end = ((off | mask) - 1).min(slots.saturating_sub(1));
        let mut read = 0;
        for s in start..=end {
            if s == at {
                continue;
            }
            match self.read_ahead_slot(pid, SwapSlot(s as u32)) {
                Some(true) => read += 1,
                Some(false) => {}
                None => break,
            }
        }
        read
    }

    /// Reads `slot` into the swap cache for `pid`, marked as read ahead, if it is in
    /// use and not cached: `Some(true)` if it did, `Some(false)` if there was nothing
    /// to read, `None` if no frame could be had (readahead stops).
    fn read_ahead_slot(&mut self, pid: Pid, slot: SwapSlot) -> Option<bool> {
        let wanted = |k: &Kernel| {
            k.mm(pid).is_ok()
                && k.swap
                    .dev
                    .as_ref()
                    .is_some_and(|d| d.count(slot) > 0 && d.cached(slot).is_none())
        };
        if !wanted(self) {
            return Some(false);
        }
        let pfn = self.alloc_readahead_frame(pid, FrameKind::Anon).ok()?;
        // Finding memory may have reclaimed: the slot may be cached by now, or (the
        // process gone) no longer wanted.
        if !wanted(self) {
            self.put_frame(pfn);
            return Some(false);
        }
        self.read_into_cache(slot, pfn);
        // Locked until the window's read is sent and done: reclaim passes over it.
        self.lock_for_read(pfn);
        self.swap.window.push(pfn);
        self.swap.ra_marked.insert(pfn.0);
        self.log.counters.swap_readahead += 1;
        Some(true)
    }

    /// Changes the readahead state of `pid`'s VMA holding `page` in its address space,
    /// where the next fault finds it.
    fn update_swap_ra(
        &mut self,
        pid: Pid,
        page: VirtAddr,
        f: impl FnOnce(&mut SwapReadaheadState),
    ) {
        if let Some(v) = self.mm_mut(pid).ok().and_then(|mm| mm.vmas.find_mut(page)) {
            f(&mut v.swap_ra);
        }
    }

    /// [`SwapReadahead::Vma`], as Linux's `swap_vma_readahead` does it: the window is in
    /// the faulting VMA's address space, not the device's. Its size follows
    /// `__swapin_nr_pages` (readahead hits since the last swap fault in the VMA, plus
    /// two, rounded up to a power of two from 4, at most `1 << page-cluster`, never
    /// below half the last window; with no hits, 2 if the fault is next to the last one
    /// and else 1). A fault just after the last one reads forward from it, one just
    /// before reads backward, any other centres the window; it stays inside the VMA and
    /// the fault's 2 MiB region. Every page of the window with a swap entry whose slot
    /// is not cached is read into the swap cache, charged to `pid`'s group, and marked
    /// as read ahead. Returns the pages read.
    fn vma_readahead(&mut self, pid: Pid, vma: &crate::os::Vma, page: VirtAddr, win: u32) -> u64 {
        let ps = self.page_size();
        let fpage = page.0 / ps;
        let last = vma.swap_ra;
        self.update_swap_ra(pid, page, |ra| {
            *ra = SwapReadaheadState {
                prev: fpage,
                win,
                hits: 0,
            }
        });
        if win <= 1 {
            return 0;
        }
        let win = u64::from(win);
        let left = if fpage == last.prev + 1 {
            fpage
        } else if last.prev == fpage + 1 {
            (fpage + 1).saturating_sub(win)
        } else {
            fpage.saturating_sub((win - 1) / 2)
        };
        let region = 512 * ps;
        let start = (left * ps).max(vma.start.0).max(page.0 & !(region - 1));
        let end = ((left + win) * ps)
            .min(vma.end.0)
            .min((page.0 & !(region - 1)) + region);
        let paging = self.machine.spec.paging;
        let mut read = 0;
        let mut va = start;
        while va < end {
            let at = VirtAddr(va);
            va += ps;
            if at == page {
                continue;
            }
            let Ok(mm) = self.mm(pid) else { break };
            let pt = mm.pt;
            let Some(s @ Slot::Soft { .. }) = pt.slot(&paging, &self.machine.ram, at) else {
                continue;
            };
            let Some(SoftPte::Swap(slot)) = s.soft() else {
                continue;
            };
            match self.read_ahead_slot(pid, slot) {
                Some(true) => read += 1,
                Some(false) => {}
                None => break,
            }
        }
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::swap::START_HITS;
    use crate::os::test_support::*;

    #[test]
    fn the_window_follows_linux_swapin_nr_pages() {
        // No hits: 2 next to the last fault, else 1.
        assert_eq!(swapin_pages(10, 11, 0, 8, 0), 2);
        assert_eq!(swapin_pages(10, 9, 0, 8, 0), 2);
        assert_eq!(swapin_pages(10, 20, 0, 8, 0), 1);
        // Hits + 2, rounded up to a power of two from 4, at most the maximum.
        assert_eq!(swapin_pages(10, 20, 1, 8, 0), 4);
        assert_eq!(swapin_pages(10, 20, 3, 8, 0), 8);
        assert_eq!(swapin_pages(10, 20, 7, 8, 0), 8);
        // Never below half the last window.
        assert_eq!(swapin_pages(10, 20, 0, 8, 8), 4);
    }

    /// Writes `n` pages in the order `order` gives (so that they go to swap in that
    /// order) on 2 MiB of RAM, then reads them back in address order: the swap-ins
    /// from the device, and the pages read ahead.
    fn read_back(how: SwapReadahead, n: u64, order: impl Fn(u64) -> u64) -> (u64, u64) {
        let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Fifo);
        k.config.swap_readahead_by = how;
        let pid = spawn(&mut k);
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        for i in 0..n {
            let p = order(i);
            k.write_u64(pid, VirtAddr(a.0 + p * 4096), p).unwrap();
        }
        let (majors, ahead) = (faults(&k, FaultKind::SwapIn), k.log.counters.swap_readahead);
        for i in 0..n {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i);
        }
        (
            faults(&k, FaultKind::SwapIn) - majors,
            k.log.counters.swap_readahead - ahead,
        )
    }

    #[test]
    fn cluster_readahead_reads_the_slots_around_a_fault_and_vma_the_pages() {
        // 8 MiB on 2 MiB of RAM, written in a scrambled order (a stride prime to n)
        // and read back in order.
        let n = 2048u64;
        let scrambled = |i: u64| (i * 1031) % n;
        let (cluster, cluster_ahead) = read_back(SwapReadahead::Cluster, n, scrambled);
        let (vma, vma_ahead) = read_back(SwapReadahead::Vma, n, scrambled);
        // The slots around a fault hold pages far from it: the window shrinks to one
        // page and nearly every page is a swap-in, as Linux on a rotational device.
        assert!(
            cluster > n * 3 / 4,
            "{cluster} swap-ins, {cluster_ahead} ahead"
        );
        // The pages around it in the VMA are the next ones read: one fault in 8.
        assert!(
            vma * 6 < n && vma_ahead > n / 2,
            "{vma} swap-ins, {vma_ahead} ahead"
        );
        // Written in order, both read ahead alike.
        let (cluster, _) = read_back(SwapReadahead::Cluster, n, |i| i);
        let (vma, _) = read_back(SwapReadahead::Vma, n, |i| i);
        assert!(
            cluster * 6 < n && vma * 6 < n,
            "{cluster} and {vma} swap-ins"
        );
    }

    /// Before any swap fault, Linux counts 4 readahead hits (machine-wide for the
    /// cluster way, in each VMA for the VMA way): the first fault reads a window of 8
    /// pages, and faults far apart after it, finding none of what was read, halve it
    /// each time down to the page alone.
    #[test]
    fn the_first_swap_fault_reads_a_full_window_and_the_next_ones_halve_it() {
        for how in SwapReadahead::ALL {
            let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Fifo);
            k.config.swap_readahead_by = how;
            let pid = spawn(&mut k);
            let n = 1024u64;
            let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
            write_pages(&mut k, pid, a, n, |i| i);
            let mut read = Vec::new();
            for i in [10u64, 110, 210, 310] {
                let ahead = k.log.counters.swap_readahead;
                assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i);
                read.push(k.log.counters.swap_readahead - ahead);
            }
            assert_eq!(read, [7, 3, 1, 0], "{}", how.name());
        }
    }

    #[test]
    fn every_swap_cache_hit_becomes_the_vma_s_last_fault_and_a_marked_one_a_hit() {
        let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Fifo);
        k.config.swap_readahead_by = SwapReadahead::Vma;
        let pid = spawn(&mut k);
        let a = k.mmap(pid, MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
        let state = |k: &Kernel| k.mm(pid).unwrap().vmas.find(a).unwrap().swap_ra;
        let page = |i: u64| VirtAddr(a.0 + i * 4096);
        // A page found in the swap cache that was not read ahead (Linux's
        // `swap_update_readahead` stores the address whatever the flag).
        let pfn = Pfn(1234);
        k.swap_cache_hit(pfn, Some((pid, page(10))));
        // The VMA had no state: it starts from Linux's 4 hits.
        let ra = state(&k);
        assert_eq!((ra.prev, ra.hits), (page(10).0 / 4096, START_HITS));
        assert_eq!(k.log.counters.swap_readahead_hits, 0);
        // One read ahead counts, once.
        k.swap.ra_marked.insert(pfn.0);
        k.swap_cache_hit(pfn, Some((pid, page(11))));
        let ra = state(&k);
        assert_eq!((ra.prev, ra.hits), (page(11).0 / 4096, START_HITS + 1));
        assert_eq!(k.log.counters.swap_readahead_hits, 1);
        assert!(!k.swap.ra_marked.contains(&pfn.0), "the mark is gone");
        assert_eq!(
            k.swap.cluster.hits, START_HITS,
            "the VMA's hit, not the machine's"
        );
    }

    #[test]
    fn a_vma_s_readahead_state_is_copied_with_it_and_goes_with_it() {
        let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Fifo);
        k.config.swap_readahead_by = SwapReadahead::Vma;
        let pid = spawn(&mut k);
        let len = 64 * 4096;
        let a = k.mmap(pid, MmapArgs::anon(len, Prot::RW)).unwrap();
        let page = |i: u64| VirtAddr(a.0 + i * 4096);
        let state =
            |k: &Kernel, pid: Pid, va: VirtAddr| k.mm(pid).unwrap().vmas.find(va).unwrap().swap_ra;
        k.swap.ra_marked.insert(1);
        k.swap_cache_hit(Pfn(1), Some((pid, page(10))));
        let set = state(&k, pid, a);
        assert_ne!(set, SwapReadaheadState::default());
        // Split by `mprotect`: both parts keep it (Linux's `vm_area_dup`).
        k.mprotect(pid, page(32), 32 * 4096, Prot::READ).unwrap();
        assert_eq!(state(&k, pid, page(40)), set);
        // Forked: the child's copies have it.
        let child = k.fork(pid).unwrap();
        assert_eq!(state(&k, child, a), set);
        assert_eq!(state(&k, child, page(40)), set);
        // Unmapped and mapped again at the same place: a new VMA starts afresh.
        k.munmap(pid, a, len).unwrap();
        let args = MmapArgs {
            addr: Some(a),
            fixed: true,
            ..MmapArgs::anon(len, Prot::RW)
        };
        assert_eq!(k.mmap(pid, args).unwrap(), a);
        assert_eq!(state(&k, pid, a), SwapReadaheadState::default());
        assert_eq!(state(&k, child, a), set, "the child's own copy stays");
    }

    #[test]
    fn the_cluster_window_is_aligned_on_the_device_s_offsets_past_the_header() {
        let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Fifo);
        let pid = spawn(&mut k);
        let n = 1024u64; // twice the RAM: the first pages go to the first slots
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        for i in 0..n {
            k.write_u64(pid, VirtAddr(a.0 + i * 4096), i).unwrap();
        }
        fn dev(k: &Kernel) -> &crate::os::swap::SwapDevice {
            k.swap.dev.as_ref().unwrap()
        }
        assert!((0..16)
            .all(|s| dev(&k).count(SwapSlot(s)) == 1 && dev(&k).cached(SwapSlot(s)).is_none()));
        // Enough hits for the largest window, 8 slots; a fault on slot 7, which is
        // offset 8: the block is offsets 8 to 15, slots 7 to 14.
        k.swap.cluster = SwapReadaheadState {
            prev: 0,
            win: 8,
            hits: 6,
        };
        let win = k.cluster_window(SwapSlot(7));
        assert_eq!(k.cluster_readahead(pid, SwapSlot(7), win), 7);
        let cached: Vec<u32> = (0..16)
            .filter(|&s| dev(&k).cached(SwapSlot(s)).is_some())
            .collect();
        assert_eq!(cached, (8..15).collect::<Vec<u32>>());
    }

    #[test]
    fn pages_read_ahead_are_not_reclaimed_to_make_room_for_the_rest_of_their_window() {
        // A group so small that finding each frame of a window reclaims, and its
        // inactive list holds little more than the window: the pages read ahead are
        // locked until their read is sent and done, as Linux's are, so reclaim takes
        // other pages and a reader going through them in order finds every one.
        for limit in [24u64, 32, 48] {
            let mut k = boot_with("x86-64", |c| {
                c.memory_max = Some(limit * 4096);
                c.swap_bytes = 16 << 20;
                c.reclaim = ReclaimPolicy::TwoList;
            });
            let pid = spawn(&mut k);
            let n = 512u64;
            let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
            write_pages(&mut k, pid, a, n, |i| i + 1);
            let (ahead, hits) = (
                k.log.counters.swap_readahead,
                k.log.counters.swap_readahead_hits,
            );
            for i in 0..n {
                assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i + 1);
            }
            let ahead = k.log.counters.swap_readahead - ahead;
            let hits = k.log.counters.swap_readahead_hits - hits;
            assert!(ahead > n / 2, "limit {limit}: {ahead} read ahead");
            assert!(
                ahead - hits <= 8,
                "limit {limit}: {ahead} read ahead, {hits} found"
            );
        }
    }

    #[test]
    fn names_parse_back() {
        for how in SwapReadahead::ALL {
            assert_eq!(SwapReadahead::parse(how.name()), Some(how));
        }
        assert_eq!(SwapReadahead::parse("both"), None);
    }
}
