//! Reclaim: what the kernel does when free frames run low. Reclaimable frames (private
//! anonymous memory and the page cache) sit on lists kept by the chosen policy; the
//! policy reads and clears the Accessed bits of every page-table entry that maps a
//! frame (through the reverse map), as a kernel does, and picks victims. An anonymous
//! victim is written to swap and every entry that mapped it is replaced by a swap entry;
//! a file page is written back if dirty and dropped. Every entry unmapped is flushed
//! from the TLBs.
//!
//! Watermarks, as Linux's per-zone ones: below `low` free frames after an allocation,
//! background reclaim (kswapd) frees frames up to `high`; an allocation that finds
//! `min` or fewer free reclaims directly. A group at its limit reclaims its own frames
//! first. Shared-memory pages are not reclaimed (vmsim keeps them resident).

use super::frames::FrameKind;
use super::{GroupId, Kernel, Pid};
use crate::addr::{Pfn, SwapSlot, VirtAddr};
use crate::hw::ram::FrameArray;
use crate::hw::{Flags, PageTable, Slot, SoftPte, SwapOutError, TlbFlush};
use serde::Serialize;

/// How victims are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ReclaimPolicy {
    /// The oldest resident frame.
    Fifo,
    /// CLOCK: a frame whose mappings were accessed since the last pass gets a second
    /// chance (its bits cleared); the first one found idle goes.
    Clock,
    /// Linux-like active and inactive lists (see `policy/two_list.rs`), with the
    /// Accessed bits read from the page tables.
    TwoList,
}

impl ReclaimPolicy {
    /// Parses `fifo`, `clock` or `two-list`.
    pub fn parse(s: &str) -> Option<ReclaimPolicy> {
        match s {
            "fifo" => Some(ReclaimPolicy::Fifo),
            "clock" => Some(ReclaimPolicy::Clock),
            "two-list" | "linux" => Some(ReclaimPolicy::TwoList),
            _ => None,
        }
    }
}

const INACTIVE: u32 = 0;
const ACTIVE: u32 = 1;

/// Lists of frames threaded through arrays indexed by frame number; every link is
/// stored plus one so that the arrays start zeroed (and cost no host memory for frames
/// never used).
#[derive(Clone, Debug)]
pub struct FrameLists {
    /// `[prev + 1, next + 1, list + 1]` per frame, then per sentinel.
    links: FrameArray<[u32; 3]>,
    lens: [usize; 2],
    frames: u32,
}

impl FrameLists {
    /// Two empty lists over `frames` frames.
    pub fn new(frames: u64) -> FrameLists {
        let n = frames as u32;
        let mut links = FrameArray::new(frames + 2);
        for l in 0..2u32 {
            let s = n + l;
            links.set(s as u64, [s + 1, s + 1, l + 1]);
        }
        FrameLists {
            links,
            lens: [0; 2],
            frames: n,
        }
    }

    fn list_of(&self, f: u32) -> Option<u32> {
        self.links.get(f as u64)?[2].checked_sub(1)
    }

    fn remove(&mut self, f: u32) {
        let [p, n, l] = self.links.load(f as u64);
        if l == 0 {
            return;
        }
        self.links.get_mut((p - 1) as u64)[1] = n;
        self.links.get_mut((n - 1) as u64)[0] = p;
        self.links.set(f as u64, [0; 3]);
        self.lens[(l - 1) as usize] -= 1;
    }

    fn push_head(&mut self, l: u32, f: u32) {
        let s = self.frames + l;
        let first = self.links.load(s as u64)[1];
        self.links.set(f as u64, [s + 1, first, l + 1]);
        self.links.get_mut((first - 1) as u64)[0] = f + 1;
        self.links.get_mut(s as u64)[1] = f + 1;
        self.lens[l as usize] += 1;
    }

    fn move_to_head(&mut self, l: u32, f: u32) {
        self.remove(f);
        self.push_head(l, f);
    }

    /// The frame before `f` in its list (towards the head): the next tail once `f`
    /// moves.
    fn prev(&self, f: u32) -> Option<u32> {
        let p = self.links.get(f as u64)?[0].checked_sub(1)?;
        (p < self.frames).then_some(p)
    }

    fn tail(&self, l: u32) -> Option<u32> {
        let t = self.links.load((self.frames + l) as u64)[0] - 1;
        (t < self.frames).then_some(t)
    }

    fn len(&self, l: u32) -> usize {
        self.lens[l as usize]
    }
}

/// How many frames ahead of the CLOCK hand the scan prefetches entries.
const SCAN_AHEAD: usize = 4;

/// Which frames a reclaim may take.
#[derive(Clone, Copy, Debug)]
pub(super) enum Scope {
    /// Any.
    Global,
    /// Frames charged to this group.
    Group(GroupId),
    /// Frames this process maps (local replacement).
    Process(Pid),
}

/// Free-frame thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Watermarks {
    /// Direct reclaim at or below this.
    pub min: u64,
    /// Background reclaim starts below this.
    pub low: u64,
    /// Background reclaim stops at this.
    pub high: u64,
}

impl Watermarks {
    /// Linux's proportions: `min` about sqrt(16 × RAM in KiB) KiB, clamped to
    /// 128 KiB..64 MiB and to a sixteenth of RAM; `low` = 5/4 `min`, `high` = 3/2 `min`.
    pub fn for_ram(frames: u64, page_size: u64) -> Watermarks {
        let kib = frames * page_size / 1024;
        let min_kib = ((16 * kib) as f64).sqrt() as u64;
        let min = (min_kib.clamp(128, 65536) * 1024 / page_size)
            .min(frames / 16)
            .max(1);
        Watermarks {
            min,
            low: min * 5 / 4 + 1,
            high: min * 3 / 2 + 2,
        }
    }
}

/// Reclaim's state: the lists it scans, where the scan is, and its thresholds.
#[derive(Debug)]
pub(super) struct Reclaim {
    /// The inactive and active lists (one list for FIFO and CLOCK).
    pub(super) lists: FrameLists,
    /// The frame whose entry the CLOCK scan last prefetched, a few ahead of the hand
    /// (a hint only: any frame is safe).
    pub(super) scan_hint: u32,
    /// The two-list policy's `PG_referenced`, per frame (0 or 1).
    pub(super) referenced: FrameArray<u8>,
    /// Frames a fault in progress is using, which reclaim must leave alone.
    pub(super) pinned: Vec<Pfn>,
    /// Free-frame thresholds.
    pub(super) watermarks: Watermarks,
}

impl Reclaim {
    /// Nothing on the lists yet, for a machine of `frames` frames.
    pub(super) fn new(frames: u64, watermarks: Watermarks) -> Reclaim {
        Reclaim {
            lists: FrameLists::new(frames),
            scan_hint: u32::MAX,
            referenced: FrameArray::new(frames),
            pinned: Vec::new(),
            watermarks,
        }
    }
}

/// Frames reclaimed per pass (Linux's `SWAP_CLUSTER_MAX`).
pub const RECLAIM_BATCH: usize = 32;

impl Kernel {
    /// Puts a frame that just became resident on the reclaim lists.
    pub(super) fn lru_add(&mut self, pfn: Pfn) {
        if matches!(self.frames.kind(pfn), FrameKind::Anon | FrameKind::File) {
            self.reclaim.lists.remove(pfn.0 as u32);
            self.reclaim.lists.push_head(INACTIVE, pfn.0 as u32);
            self.reclaim.referenced.set(pfn.0, 0);
        }
    }

    /// Takes a freed frame off the reclaim lists.
    pub(super) fn lru_del(&mut self, pfn: Pfn) {
        if pfn.0 < self.reclaim.referenced.len() {
            self.reclaim.lists.remove(pfn.0 as u32);
        }
    }

    /// Whether any mapping of `pfn` was accessed since the last look; clears the bits.
    /// The entries are read and written where the reverse map says they are (as
    /// Linux's `ptep_test_and_clear_young`, without a TLB flush).
    pub(super) fn young(&mut self, pfn: Pfn) -> bool {
        let paging = &self.machine.spec.paging;
        let ram = &mut self.machine.ram;
        let mut young = false;
        self.rmap.each(pfn, |_, _, pte| {
            young |= PageTable::test_and_clear_accessed_at(paging, ram, pte, pfn);
        });
        young
    }

    fn in_scope(&self, pfn: Pfn, scope: Scope) -> bool {
        match scope {
            Scope::Global => true,
            Scope::Group(g) => self.frames.group(pfn) == g.0,
            Scope::Process(p) => {
                let mut mine = false;
                self.rmap.each(pfn, |q, _, _| mine |= q == p);
                mine
            }
        }
    }

    /// Frees up to `want` frames in `scope`; returns how many went.
    pub(super) fn reclaim(&mut self, want: usize, scope: Scope) -> usize {
        let mut freed = 0;
        // Every frame may be looked at twice (once to clear its bits): then give up.
        let mut budget =
            2 * (self.reclaim.lists.len(INACTIVE) + self.reclaim.lists.len(ACTIVE)) + 2;
        while freed < want && budget > 0 {
            let Some(victim) = self.pick_victim(scope, &mut budget) else {
                break;
            };
            if self.evict(Pfn(victim as u64)) {
                freed += 1;
            } else {
                // Not evictable now (no swap space): keep it, behind the others.
                let l = self.reclaim.lists.list_of(victim).unwrap_or(INACTIVE);
                self.reclaim.lists.move_to_head(l, victim);
            }
        }
        self.log.counters.pages_reclaimed += freed as u64;
        freed
    }

    /// The next victim the policy offers in `scope`, spending scan budget.
    fn pick_victim(&mut self, scope: Scope, budget: &mut usize) -> Option<u32> {
        while *budget > 0 {
            *budget -= 1;
            self.log.counters.pages_scanned += 1;
            match self.config.reclaim {
                ReclaimPolicy::Fifo => {
                    let f = self.reclaim.lists.tail(INACTIVE)?;
                    if self.in_scope(Pfn(f as u64), scope) {
                        return Some(f);
                    }
                    self.reclaim.lists.move_to_head(INACTIVE, f);
                }
                ReclaimPolicy::Clock => {
                    let f = self.reclaim.lists.tail(INACTIVE)?;
                    let pfn = Pfn(f as u64);
                    // The hand's next frames: start fetching their entries now, so the
                    // scan does not wait on each one in turn. The frame last fetched
                    // moves one step, as the hand did; only when it has left the list
                    // (or reached its head) is it found again from the hand.
                    let hint = self.reclaim.scan_hint;
                    let next = match self.reclaim.lists.list_of(hint) {
                        Some(INACTIVE) if hint != f => self.reclaim.lists.prev(hint),
                        _ => None,
                    };
                    let ahead = next.unwrap_or_else(|| {
                        let mut a = f;
                        for _ in 0..SCAN_AHEAD {
                            let Some(n) = self.reclaim.lists.prev(a) else {
                                break;
                            };
                            a = n;
                        }
                        a
                    });
                    self.reclaim.scan_hint = ahead;
                    if let Some(pte) = self.rmap.first_pte(Pfn(ahead as u64)) {
                        self.machine.ram.prefetch(pte);
                    }
                    // And the reverse map of the frame after it, whose entry is
                    // fetched next time.
                    if let Some(after) = self.reclaim.lists.prev(ahead) {
                        self.rmap.prefetch(Pfn(after as u64));
                    }
                    if !self.in_scope(pfn, scope) || self.young(pfn) {
                        self.reclaim.lists.move_to_head(INACTIVE, f);
                        continue;
                    }
                    return Some(f);
                }
                ReclaimPolicy::TwoList => {
                    while self.reclaim.lists.len(INACTIVE) < self.reclaim.lists.len(ACTIVE) {
                        let Some(a) = self.reclaim.lists.tail(ACTIVE) else {
                            break;
                        };
                        if self.young(Pfn(a as u64)) {
                            self.reclaim.lists.move_to_head(ACTIVE, a);
                        } else {
                            self.reclaim.lists.move_to_head(INACTIVE, a);
                            self.reclaim.referenced.set(a as u64, 0);
                        }
                    }
                    let f = match self.reclaim.lists.tail(INACTIVE) {
                        Some(f) => f,
                        None => {
                            let a = self.reclaim.lists.tail(ACTIVE)?;
                            self.reclaim.lists.move_to_head(INACTIVE, a);
                            continue;
                        }
                    };
                    let pfn = Pfn(f as u64);
                    if !self.in_scope(pfn, scope) {
                        self.reclaim.lists.move_to_head(INACTIVE, f);
                        continue;
                    }
                    if self.young(pfn) {
                        if self.reclaim.referenced.load(f as u64) != 0 {
                            self.reclaim.referenced.set(f as u64, 0);
                            self.reclaim.lists.move_to_head(ACTIVE, f);
                        } else {
                            self.reclaim.referenced.set(f as u64, 1);
                            self.reclaim.lists.move_to_head(INACTIVE, f);
                        }
                        continue;
                    }
                    return Some(f);
                }
            }
        }
        None
    }

    /// Evicts one frame: swaps out anonymous memory, writes back and drops file pages.
    /// Returns false when it cannot (no swap space, or a kind that stays resident).
    pub(super) fn evict(&mut self, pfn: Pfn) -> bool {
        if self.reclaim.pinned.contains(&pfn) {
            return false;
        }
        let paging = self.machine.spec.paging;
        match self.frames.kind(pfn) {
            FrameKind::Anon => {
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
            FrameKind::File => {
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
            _ => false,
        }
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

    /// Background reclaim: when free frames fell below `low`, reclaim up to `high`.
    pub(super) fn kswapd(&mut self) {
        let w = self.reclaim.watermarks;
        if self.frames.nr_free() >= w.low {
            return;
        }
        self.log.counters.kswapd_runs += 1;
        while self.frames.nr_free() < w.high {
            let before = self.frames.nr_free();
            let want = ((w.high - before) as usize).min(RECLAIM_BATCH);
            if self.reclaim(want, Scope::Global) == 0 || self.frames.nr_free() <= before {
                break;
            }
        }
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

    /// Drops the swap cache's page for `slot`, if it holds one.
    pub(super) fn drop_swap_cache(&mut self, slot: SwapSlot) {
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
    pub(super) fn swap_in(
        &mut self,
        pid: Pid,
        vma: &super::Vma,
        page: VirtAddr,
        pte: crate::addr::PhysAddr,
        slot: SwapSlot,
    ) -> Result<super::FaultKind, super::Violation> {
        let paging = self.machine.spec.paging;
        let (pfn, kind) = match self.swap.dev.as_ref().and_then(|s| s.cached(slot)) {
            Some(pfn) => {
                self.swap.ra_hits += 1;
                (pfn, super::FaultKind::SwapCache)
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
                        Ok(super::FaultKind::Spurious)
                    } else {
                        Err(super::Violation::OutOfMemory)
                    };
                }
                self.read_into_cache(slot, pfn);
                let ahead = self.swap_readahead(slot);
                let bytes = (1 + ahead) * self.page_size();
                self.log.counters.io_wait_ns += self.config.storage.transfer_ns(bytes);
                self.log.counters.swap_ins += 1;
                (pfn, super::FaultKind::SwapIn)
            }
        };
        self.mm(pid).map_err(|_| super::Violation::OutOfMemory)?;
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
            return Err(super::Violation::OutOfMemory);
        }
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lists_start_zeroed_and_keep_order() {
        let mut l = FrameLists::new(8);
        assert!((0..8).all(|i| l.links.load(i) == [0; 3]));
        for f in [3, 5, 7] {
            l.push_head(INACTIVE, f);
        }
        assert_eq!(l.tail(INACTIVE), Some(3));
        l.move_to_head(ACTIVE, 3);
        assert_eq!(l.tail(INACTIVE), Some(5));
        assert_eq!((l.len(INACTIVE), l.len(ACTIVE)), (2, 1));
        l.remove(5);
        l.remove(5);
        assert_eq!(l.tail(INACTIVE), Some(7));
        assert_eq!(l.list_of(3), Some(ACTIVE));
        assert_eq!(l.list_of(5), None);
    }

    #[test]
    fn watermarks_scale_with_ram() {
        let w = Watermarks::for_ram(4 << 20, 4096); // 16 GiB
        assert!(w.min > 1000 && w.min < w.low && w.low < w.high);
        let small = Watermarks::for_ram(64, 64);
        assert!(small.min >= 1 && small.high < 64);
    }
}
